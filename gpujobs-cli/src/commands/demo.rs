//! `gpujobs demo`: every kind at a few sizes through an in-process cluster, checked
//! against the reference, summarised in a table.

use crate::backends;
use crate::cli::DemoArgs;
use crate::error::CliError;
use crate::report;
use gpujobs_core::kinds::{FilterOp, ImageFilter, Matmul, MlpPredict, MlpTrain, VectorAdd};
use gpujobs_core::scheduler::placement::fmt_seconds;
use gpujobs_core::{Job, JobEnvelope, JobState};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

fn envelope<J: Job>(job: J) -> (JobEnvelope, String) {
    let label = job.size_label();
    (
        JobEnvelope::new(job).expect("built-in jobs serialize"),
        label,
    )
}

fn mlp(
    samples: usize,
    features: usize,
    classes: usize,
    hidden: usize,
    epochs: u32,
    batch: usize,
) -> MlpTrain {
    let mut j = MlpTrain::synthetic(samples, features, classes, hidden, 7);
    j.epochs = epochs;
    j.batch = batch;
    j
}

/// The demo's jobs.
fn jobs(quick: bool) -> Vec<(JobEnvelope, String)> {
    let blur = FilterOp::GaussianBlur { sigma: 2.0 };
    if quick {
        vec![
            envelope(VectorAdd::synthetic(10_000, 1)),
            envelope(VectorAdd::synthetic(100_000, 2)),
            envelope(Matmul::synthetic(64, 64, 64, 3)),
            envelope(Matmul::synthetic(200, 100, 150, 4)),
            envelope(ImageFilter::synthetic(96, 128, blur, 5)),
            envelope(ImageFilter::synthetic(128, 128, FilterOp::Sobel, 6)),
            envelope(mlp(512, 16, 4, 32, 2, 64)),
            envelope(MlpPredict::synthetic(2048, &[16, 32, 4], 8)),
        ]
    } else {
        vec![
            envelope(VectorAdd::synthetic(1_000_000, 1)),
            envelope(VectorAdd::synthetic(16_000_000, 2)),
            envelope(Matmul::synthetic(256, 256, 256, 3)),
            envelope(Matmul::synthetic(1024, 1024, 1024, 4)),
            envelope(Matmul::synthetic(2048, 2048, 2048, 5)),
            envelope(ImageFilter::synthetic(1024, 1024, blur, 6)),
            envelope(ImageFilter::synthetic(4096, 4096, blur, 7)),
            envelope(ImageFilter::synthetic(4096, 4096, FilterOp::Sobel, 8)),
            envelope(mlp(8192, 64, 10, 256, 3, 128)),
            envelope(MlpPredict::synthetic(65_536, &[64, 256, 10], 9)),
        ]
    }
}

/// Runs the command.
pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    let backends = backends::detect();
    if !args.json {
        println!("backends:");
        println!("  {}", backends.cpu.device);
        for g in &backends.gpus {
            println!("  {}", g.device);
        }
        if backends.gpus.is_empty() {
            println!("  gpu: none ({})", backends.gpu_missing);
        }
    }
    let cluster = backends.start(args.concurrency);
    // The first placement decision should see every worker.
    cluster
        .wait_for_workers(std::time::Duration::from_secs(5))
        .await;
    let jobs = jobs(args.quick);
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(jobs.len() as u64 * 2)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("running");
    let mut ids = Vec::new();
    for (env, _) in &jobs {
        ids.push(cluster.client().submit_envelope(env.clone()).await?);
    }
    let mut records = Vec::new();
    for id in &ids {
        let rec = cluster.client().wait(id, Duration::from_secs(3600)).await?;
        bar.set_message(format!("finished {} {}", rec.kind, rec.state));
        bar.inc(1);
        records.push(rec);
    }
    cluster.shutdown().await;

    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    let mut bad = 0;
    for ((env, label), rec) in jobs.iter().zip(&records) {
        bar.set_message(format!("checking {} {label}", env.kind));
        let check = match &rec.result {
            Some(result) => {
                backends
                    .cpu
                    .registry
                    .check(&env.kind, &env.payload, &env.blobs, result)?
            }
            None => None,
        };
        bar.inc(1);
        let matched = match (&rec.state, &check) {
            (JobState::Succeeded, Some(c)) if c.skipped.is_some() => c.to_string(),
            (JobState::Succeeded, Some(c)) if c.passed() => {
                format!("yes ({} {:.1e})", c.metric, c.error)
            }
            (JobState::Succeeded, Some(c)) => {
                format!("NO ({} {:.1e} > {:.0e})", c.metric, c.error, c.tolerance)
            }
            (JobState::Succeeded, None) => "not checked".into(),
            (state, _) => format!(
                "{state}: {}",
                rec.error.as_ref().map_or("", |e| e.message.as_str())
            ),
        };
        if rec.state != JobState::Succeeded || check.as_ref().is_some_and(|c| !c.passed()) {
            bad += 1;
        }
        let (device, t) = match &rec.result {
            Some(r) => (
                format!(
                    "{}{}",
                    r.device.class,
                    if r.device.class == gpujobs_core::DeviceClass::Gpu {
                        r.device.ordinal.to_string()
                    } else {
                        String::new()
                    }
                ),
                Some(r.timings),
            ),
            None => ("-".into(), None),
        };
        let cell = |f: fn(&gpujobs_core::Timings) -> f64| {
            t.as_ref().map_or("-".into(), |t| fmt_seconds(f(t)))
        };
        rows.push(vec![
            env.kind.clone(),
            label.clone(),
            device,
            cell(|t| t.queue_wait_s),
            cell(|t| t.h2d_s + t.d2h_s),
            cell(|t| t.compute_s),
            cell(|t| t.total_s),
            matched,
        ]);
        json_rows.push(report::job_json(rec, label, check.as_ref(), Vec::new()));
    }
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::Value::Array(json_rows));
    } else {
        print!(
            "{}",
            report::table(
                &[
                    "kind",
                    "size",
                    "device",
                    "queue wait",
                    "transfers",
                    "compute",
                    "total",
                    "matches reference"
                ],
                &rows
            )
        );
    }
    if bad > 0 {
        return Err(CliError::runtime(format!(
            "{bad} of {} jobs failed or did not match the reference",
            jobs.len()
        )));
    }
    Ok(())
}
