//! `gpujobs wait`: waits on many jobs (see [`crate::tally`]), with `--by-kind` a table
//! of each kind and device with median timings.

use crate::connect::{self, RedisArgs};
use crate::error::CliError;
use crate::graph_file::save_outputs;
use crate::tally::{by_kind_table, records, report, until_done};
use clap::Args;
use gpujobs_core::{JobId, JobState};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `gpujobs wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Job ids (as `gpujobs submit` prints them).
    pub ids: Vec<String>,
    /// Also read ids from this file, one per line (`-`: standard input).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Give up after this long (`10m`, `600`; the jobs keep running).
    #[arg(long, default_value = "600", value_parser = crate::units::positive_seconds)]
    pub timeout: f64,
    /// Print a table by kind and device: jobs, succeeded, median queue wait, compute
    /// and total.
    #[arg(long)]
    pub by_kind: bool,
    /// Print the tally as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write each succeeded job's output tensors as `<dir>/<id>.<output>.npy`
    /// (`<id>.c.npy` of a matmul, `<id>.image.npy` of a filter), read through Redis or
    /// object storage wherever the worker put them.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// Reads ids from the arguments and `--from`.
fn read_ids(args: &WaitArgs) -> Result<Vec<JobId>, CliError> {
    let mut raw: Vec<String> = args.ids.clone();
    if let Some(path) = &args.from {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let f = std::fs::File::open(path)
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            Box::new(std::io::BufReader::new(f))
        };
        for line in reader.lines() {
            let line = line.map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                raw.push(line.to_string());
            }
        }
    }
    if raw.is_empty() {
        return Err(CliError::input(
            "no job ids: give them as arguments or --from FILE",
        ));
    }
    raw.iter()
        .map(|s| JobId::parse(s).ok_or_else(|| CliError::input(format!("`{s}` is not a job id"))))
        .collect()
}

/// Runs `gpujobs wait`.
pub async fn run(args: WaitArgs) -> Result<(), CliError> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(CliError::input(
            "--timeout must be a positive number of seconds",
        ));
    }
    let ids = read_ids(&args)?;
    let q = Arc::new(connect::client(&args.redis).await?);
    let started = Instant::now();
    let timeout = Duration::from_secs_f64(args.timeout);
    let tally = until_done(&q, &ids, started, timeout, !args.json).await?;
    if args.by_kind || args.out_dir.is_some() {
        let recs = records(&q, &ids).await?;
        if let Some(dir) = &args.out_dir {
            for rec in recs.iter().filter(|r| r.state == JobState::Succeeded) {
                for path in save_outputs(dir, rec)? {
                    eprintln!("wrote {}", path.display());
                }
            }
        }
        if args.by_kind {
            print!("{}", by_kind_table(&recs));
        }
    }
    report(ids.len(), &tally, None, args.json)
}
