//! The `gpujobs` binary: parses the command line, sets up logging, runs a command and
//! turns its error into an exit code (2 for bad usage or input, 1 for failures).

// A binary: `pub` inside its modules marks what a module offers to its siblings.
#![allow(unreachable_pub)]

mod backends;
mod cli;
mod commands;
mod error;
mod imageio;
mod inputs;
mod npy;
mod report;

use clap::Parser;
use cli::{Cli, Command, LogFormat};
use std::process::ExitCode;

fn init_logging(verbose: u8, format: LogFormat, default: &str) {
    let level = match verbose {
        0 => default,
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = result {
        eprintln!("warning: logging not initialised: {e}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.log_format, "warn");
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
            #[cfg(feature = "cuda")]
            Command::GpuCheck(args) => commands::gpu_check::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
