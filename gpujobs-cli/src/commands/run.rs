//! `gpujobs run`: one job through an in-process cluster.

use crate::backends;
use crate::cli::RunArgs;
use crate::error::CliError;
use crate::inputs;
use crate::report;
use gpujobs_core::JobState;
use gpujobs_core::kinds::{EpochStats, MlpTrainOutput};
use std::time::Duration;

/// Runs the command.
pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let pref = args.device;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(CliError::input(format!(
            "--timeout must be a positive number of seconds, got {}",
            args.timeout
        )));
    }
    let spec = inputs::build(&args.job, u64::MAX)?;
    let backends = backends::detect();
    backends.check_pref(pref)?;
    // Bad input was refused by `inputs::build`, before anything started.
    let env = spec.job.get();

    let cluster = backends.start(1);
    // The first placement decision should see every worker.
    cluster
        .wait_for_workers(std::time::Duration::from_secs(5))
        .await;
    let submitted = spec
        .job
        .clone()
        .with_options(|env| env.with_device(pref).with_max_attempts(1))?;
    let id = cluster.client().submit_validated(submitted).await?;
    let waited = cluster
        .client()
        .wait(&id, Duration::from_secs_f64(args.timeout))
        .await;
    cluster.shutdown().await;
    let record = waited?;

    let mut check = None;
    let mut extra = Vec::new();
    let mut epochs = None;
    if let (JobState::Succeeded, Some(result)) = (record.state, &record.result) {
        if !args.no_check {
            check = backends
                .cpu
                .registry
                .check(&env.kind, &env.payload, &env.blobs, result)?;
        }
        let saved = inputs::save(&spec, result)?;
        for path in &saved {
            eprintln!("wrote {}", path.display());
        }
        extra.extend(report::saved_files(&saved));
        if env.kind == "mlp-train"
            && let Ok(out) = result.decode::<MlpTrainOutput>()
        {
            extra.push((
                "epochs",
                serde_json::to_value(&out.epochs).unwrap_or_default(),
            ));
            epochs = Some(out.epochs);
        }
    }
    if args.json {
        println!(
            "{}",
            report::job_json(&record, &spec.label, check.as_ref(), extra)
        );
    } else {
        print!("{}", report::job_text(&record, &spec.label, check.as_ref()));
        if let Some(epochs) = &epochs {
            print_epochs(epochs);
        }
    }
    if record.state != JobState::Succeeded {
        let why = record
            .error
            .map(|e| e.message)
            .unwrap_or_else(|| "no result".into());
        return Err(CliError::runtime(format!(
            "job {} ended {}: {why}",
            record.id, record.state
        )));
    }
    if let Some(c) = check.filter(|c| !c.passed()) {
        return Err(CliError::runtime(format!(
            "result does not match the reference: {c}"
        )));
    }
    Ok(())
}

fn print_epochs(epochs: &[EpochStats]) {
    let held_out = epochs.iter().any(|e| e.test_loss.is_some());
    let pct = |x: f64| format!("{:.2}%", 100.0 * x);
    let rows: Vec<Vec<String>> = epochs
        .iter()
        .map(|e| {
            let mut row = vec![
                e.epoch.to_string(),
                format!("{:.5}", e.loss),
                pct(e.accuracy),
            ];
            if held_out {
                row.push(e.test_loss.map_or("-".into(), |l| format!("{l:.5}")));
                row.push(e.test_accuracy.map_or("-".into(), pct));
            }
            row
        })
        .collect();
    let mut header = vec!["epoch", "loss", "accuracy"];
    if held_out {
        header.extend(["held-out loss", "held-out accuracy"]);
    }
    print!("{}", crate::report::table(&header, &rows));
}
