//! `gpujobs run`: one job through an in-process cluster.

use crate::backends;
use crate::cli::RunArgs;
use crate::error::CliError;
use crate::inputs;
use crate::report;
use gpujobs_core::jobs::MlpTrainOutput;
use gpujobs_core::{JobState, Limits};
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
    let spec = inputs::build(&args.job)?;
    let backends = backends::detect();
    backends.check_pref(pref)?;
    let env = &spec.envelope;
    // Refuse bad input before starting anything.
    backends
        .cpu
        .registry
        .inspect(&env.kind, &env.payload, &env.blobs, &Limits::detect())?;

    let cluster = backends.start(1);
    backends.wait_for_workers(&cluster).await;
    let submitted = env.clone().with_device(pref).with_max_attempts(1);
    let id = cluster.client().submit_envelope(submitted).await?;
    let waited = cluster
        .client()
        .wait(&id, Duration::from_secs_f64(args.timeout))
        .await;
    cluster.shutdown().await;
    let record = waited?;

    let mut check = None;
    let mut extra = None;
    if let (JobState::Succeeded, Some(result)) = (record.state, &record.result) {
        if !args.no_check {
            check = backends
                .cpu
                .registry
                .check(&env.kind, &env.payload, &env.blobs, result)?;
        }
        if let Some(path) = inputs::save(&spec, result)? {
            eprintln!("wrote {}", path.display());
        }
        if env.kind == "mlp-train"
            && let Ok(out) = result.decode::<MlpTrainOutput>()
        {
            extra = Some((
                "epochs",
                serde_json::to_value(&out.epochs).unwrap_or_default(),
            ));
        }
    }
    if args.json {
        println!(
            "{}",
            report::job_json(&record, &spec.label, check.as_ref(), extra.clone())
        );
    } else {
        print!("{}", report::job_text(&record, &spec.label, check.as_ref()));
        if let Some((_, epochs)) = &extra {
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

fn print_epochs(epochs: &serde_json::Value) {
    let Some(list) = epochs.as_array() else {
        return;
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e["epoch"].to_string(),
                format!("{:.5}", e["loss"].as_f64().unwrap_or(f64::NAN)),
                format!("{:.2}%", 100.0 * e["accuracy"].as_f64().unwrap_or(f64::NAN)),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::report::table(&["epoch", "loss", "accuracy"], &rows)
    );
}
