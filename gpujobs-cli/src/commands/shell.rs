//! `gpujobs completions <shell>` and `gpujobs man`: shell completions and a man page
//! generated from the same clap definitions as the command line itself, so they never
//! drift from it.

use crate::cli::Cli;
use crate::error::CliError;
use clap::{Args, CommandFactory};
use std::path::PathBuf;

/// Options of `gpujobs completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// Options of `gpujobs man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `gpujobs.1` and one `gpujobs-<command>.1` per command into this folder,
    /// instead of `gpujobs.1` on standard output.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script: `gpujobs completions bash > /etc/bash_completion.d/gpujobs`.
pub fn completions(args: CompletionsArgs) -> Result<(), CliError> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "gpujobs", &mut std::io::stdout());
    Ok(())
}

/// Prints (or writes) the man pages.
pub fn man(args: ManArgs) -> Result<(), CliError> {
    let cmd = Cli::command();
    let Some(dir) = args.out_dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| CliError::runtime(e.to_string()))?;
        use std::io::Write;
        return std::io::stdout()
            .write_all(&out)
            .map_err(|e| CliError::runtime(e.to_string()));
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::input(format!("{}: {e}", dir.display())))?;
    clap_mangen::generate_to(cmd, &dir)
        .map_err(|e| CliError::runtime(format!("{}: {e}", dir.display())))?;
    Ok(())
}
