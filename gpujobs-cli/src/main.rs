//! The `gpujobs` binary: parses the command line, sets up logging, runs a command and
//! turns its error into an exit code (2 for bad usage or input, 1 for failures).

// A binary: `pub` inside its modules marks what a module offers to its siblings.
#![allow(unreachable_pub)]

mod backends;
mod choices;
mod cli;
mod commands;
mod compare;
mod connect;
mod error;
mod graph_file;
mod inputs;
mod metrics;
mod report;
mod signals;
mod tally;
mod units;

use clap::Parser;
use cli::{Cli, Command, LogFormat};
use gpujobs_cli::{imageio, npy};
use std::process::ExitCode;

fn init_logging(verbose: u8, format: LogFormat, default: &str) {
    let level = match verbose {
        0 => default,
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = result {
        eprintln!("warning: logging not initialised: {e}");
    }
}

/// Parses the command line; a usage error is one line on stderr and exit code 2, like
/// every other refused input (help and version print as clap writes them).
fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
        // One line: the error with clap's tips and possible values, without the usage
        // block and the pointer to --help.
        let text = e.to_string();
        let parts: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
            })
            .collect();
        eprintln!("{}", parts.join("; "));
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // Daemons log their progress; one-shot commands only warnings.
    let default_level = match cli.command {
        Command::Scheduler(_) | Command::Worker(_) => "info",
        _ => "warn",
    };
    init_logging(cli.verbose, cli.log_format, default_level);
    let json_logs = matches!(cli.log_format, LogFormat::Json);
    if let Some(bytes) = cli.buffer_pool_bytes {
        gpujobs_core::BufferPool::global().set_budget(bytes);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => commands::demo::run(args).await,
            Command::Run(args) => commands::run::run(args).await,
            Command::Scheduler(args) => commands::scheduler::run(args).await,
            Command::Worker(args) => commands::worker::run(args).await,
            Command::Submit(args) => commands::submit::run(*args).await,
            Command::Wait(args) => commands::wait::run(args).await,
            Command::Status(args) => commands::status::status(args).await,
            Command::Cancel(args) => commands::status::cancel(args).await,
            Command::DeadLetter(args) => commands::status::dead_letter(args).await,
            Command::Watch(args) => commands::watch::run(args).await,
            Command::Dashboard(args) => commands::dashboard::run(args).await,
            Command::Doctor(args) => commands::doctor::run(args).await,
            Command::Healthcheck(args) => commands::healthcheck::run(args).await,
            Command::Calibrate(args) => commands::calibrate::calibrate(args).await,
            Command::Bench(args) => commands::bench::run(args).await,
            Command::Simulate(args) => commands::calibrate::simulate_cmd(args).await,
            Command::Completions(args) => commands::shell::completions(args),
            Command::Man(args) => commands::shell::man(args),
            #[cfg(feature = "cuda")]
            Command::GpuCheck(args) => commands::gpu_check::run(args).await,
        }
    });
    // Blocking compute a drain gave up on must not keep the process alive: cancelled
    // jobs stop at their next step, anything else is cut off after a short wait.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // With `--log-format json` every line on stderr is JSON, the last one too.
            if json_logs {
                tracing::error!(error = %e, exit_code = e.exit_code(), "command failed");
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
