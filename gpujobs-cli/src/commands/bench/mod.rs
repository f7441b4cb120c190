//! `gpujobs bench`: every kind at several sizes on every backend here, with statistics,
//! GPU-vs-CPU verification and speedups; writes JSON, CSV, PNG charts and a report.

mod cases;
mod charts;
mod report;
mod stats;

use crate::backends::{self, Backend};
use crate::error::CliError;
use clap::Args;
use gpujobs_core::{DeviceClass, ExecContext, JobResult, Limits};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use stats::Stats;
use std::path::PathBuf;

/// Options of `gpujobs bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Small and medium sizes, 3 repetitions (under two minutes on two cores).
    #[arg(long)]
    pub quick: bool,
    /// Kinds to run, comma-separated: vector-add, matmul, gaussian-blur, sobel, mlp-train.
    #[arg(long, value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Size rungs, comma-separated: tiny, small, medium, large, xlarge.
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<String>,
    /// Timed repetitions per cell, after the warm-up (default 10, or 3 with --quick).
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Warm-up runs per cell.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Folder for results.json, results.csv, the PNG charts and report.md.
    #[arg(long)]
    pub out: PathBuf,
    /// Instead of running, redraw the charts, CSV and report from an earlier run's
    /// results.json (say, one measured on a GPU machine).
    #[arg(long)]
    pub from_json: Option<PathBuf>,
}

/// One cell: a case on one device.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Row {
    /// Kind.
    pub kind: String,
    /// Size rung.
    pub rung: String,
    /// Size label.
    pub size: String,
    /// Size measure for plots.
    pub x: f64,
    /// `cpu` or `gpu`.
    pub device: String,
    /// The device's name.
    pub device_name: String,
    /// End-to-end times (the executor's whole run: preparation, transfers, compute).
    pub e2e: Stats,
    /// Compute (kernel) times alone.
    pub kernel: Stats,
    /// Median host-to-device time.
    pub h2d_median_s: f64,
    /// Median device-to-host time.
    pub d2h_median_s: f64,
    /// Throughput end to end (median), in `unit`.
    pub throughput_e2e: f64,
    /// Throughput of the compute alone (median), in `unit`.
    pub throughput_kernel: f64,
    /// Throughput unit.
    pub unit: String,
    /// CPU end-to-end median over this row's (GPU rows only).
    pub speedup_e2e: Option<f64>,
    /// CPU compute median over this row's kernel median (GPU rows only).
    pub speedup_kernel: Option<f64>,
    /// How the output was verified, and the result.
    pub verified: String,
    /// Whether it passed.
    pub verified_ok: bool,
}

/// Machine and software facts for the report.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Machine {
    /// CPU model and threads.
    pub cpu: String,
    /// Operating system.
    pub os: String,
    /// GPU name, if any.
    pub gpu: Option<String>,
    /// CUDA version of the driver, if any.
    pub driver_cuda: Option<String>,
    /// gpujobs version.
    pub gpujobs: String,
    /// Date of the run (UTC).
    pub date: String,
}

fn os_name() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("PRETTY_NAME="))
                .map(|l| l[12..].trim_matches('"').to_string())
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok();
    match (pretty, kernel) {
        (Some(p), Some(k)) => format!("{p}, Linux {k}"),
        (Some(p), None) => p,
        (None, Some(k)) => format!("Linux {k}"),
        _ => std::env::consts::OS.to_string(),
    }
}

async fn cell(
    backend: &Backend,
    class: DeviceClass,
    case: &cases::Case,
    warmup: usize,
    repeat: usize,
) -> Result<Vec<JobResult>, CliError> {
    let kind = case.envelope.kind.as_str();
    let exec = backend
        .registry
        .executor(kind, class)
        .ok_or_else(|| CliError::runtime(format!("no {class} executor for {kind}")))?;
    let ctx = ExecContext::standalone(Limits::detect());
    let mut out = Vec::new();
    for i in 0..warmup + repeat.max(1) {
        let r = exec
            .execute(&case.envelope.payload, &case.envelope.blobs, &ctx)
            .await
            .map_err(|e| CliError::runtime(format!("{kind} {} on {class}: {e}", case.label)))?;
        if i >= warmup {
            out.push(r);
        }
    }
    Ok(out)
}

fn row(
    case: &cases::Case,
    backend: &Backend,
    class: DeviceClass,
    results: &[JobResult],
    verified: (String, bool),
) -> Row {
    let pick = |f: fn(&gpujobs_core::Timings) -> f64| {
        results.iter().map(|r| f(&r.timings)).collect::<Vec<f64>>()
    };
    let e2e = Stats::of(&pick(|t| t.run_s)).unwrap_or(Stats {
        n: 0,
        mean: 0.0,
        median: 0.0,
        min: 0.0,
        max: 0.0,
        std: 0.0,
        ci95_low: 0.0,
        ci95_high: 0.0,
    });
    let kernel = Stats::of(&pick(|t| t.compute_s)).unwrap_or(e2e);
    let med = |v: Vec<f64>| Stats::of(&v).map_or(0.0, |s| s.median);
    Row {
        kind: case.kind.to_string(),
        rung: case.rung.to_string(),
        size: case.label.clone(),
        x: case.x,
        device: class.to_string(),
        device_name: backend.device.name.clone(),
        e2e,
        kernel,
        h2d_median_s: med(pick(|t| t.h2d_s)),
        d2h_median_s: med(pick(|t| t.d2h_s)),
        throughput_e2e: case.work / e2e.median,
        throughput_kernel: case.work / kernel.median,
        unit: case.unit.to_string(),
        speedup_e2e: None,
        speedup_kernel: None,
        verified: verified.0,
        verified_ok: verified.1,
    }
}

/// Writes the CSV, the charts and the report of `rows` into `out`.
fn write_outputs(
    out: &std::path::Path,
    machine: &Machine,
    rows: &[Row],
    command: &str,
    repeat: usize,
    warmup: usize,
) -> Result<(), CliError> {
    let write = |name: &str, data: &[u8]| {
        let p = out.join(name);
        std::fs::write(&p, data).map_err(|e| CliError::runtime(format!("{}: {e}", p.display())))
    };
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    kinds.dedup();
    write("results.csv", report::csv(rows).as_bytes())?;
    charts::time_vs_size(&out.join("time_vs_size.png"), rows, &kinds)?;
    charts::speedup(&out.join("speedup.png"), rows)?;
    write(
        "report.md",
        report::markdown(machine, rows, command, repeat, warmup).as_bytes(),
    )
}

/// `--from-json`: redraws the outputs of an earlier run.
fn replot(path: &std::path::Path, out: &std::path::Path) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    if doc["schema"] != "gpujobs-bench/1" {
        return Err(CliError::input(format!(
            "{}: not a gpujobs-bench/1 results file",
            path.display()
        )));
    }
    let bad = |e: serde_json::Error| CliError::input(format!("{}: {e}", path.display()));
    let machine: Machine = serde_json::from_value(doc["machine"].clone()).map_err(bad)?;
    let rows: Vec<Row> = serde_json::from_value(doc["rows"].clone()).map_err(bad)?;
    let c = &doc["config"];
    let repeat = c["repeat"].as_u64().unwrap_or(0) as usize;
    let warmup = c["warmup"].as_u64().unwrap_or(0) as usize;
    let list = |k: &str| {
        c[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let command = format!(
        "gpujobs bench --kinds {} --sizes {} --repeat {repeat} --warmup {warmup}",
        list("kinds"),
        list("sizes")
    );
    std::fs::create_dir_all(out)
        .map_err(|e| CliError::runtime(format!("{}: {e}", out.display())))?;
    if out.join("results.json") != *path {
        std::fs::write(out.join("results.json"), text)
            .map_err(|e| CliError::runtime(e.to_string()))?;
    }
    write_outputs(out, &machine, &rows, &command, repeat, warmup)?;
    println!(
        "redrew results.csv, time_vs_size.png, speedup.png and report.md in {}",
        out.display()
    );
    Ok(())
}

/// Runs the command.
pub async fn run(args: BenchArgs) -> Result<(), CliError> {
    if let Some(path) = &args.from_json {
        return replot(path, &args.out);
    }
    let kinds: Vec<&'static str> = if args.kinds.is_empty() {
        cases::KINDS.to_vec()
    } else {
        args.kinds
            .iter()
            .map(|k| {
                cases::KINDS
                    .iter()
                    .copied()
                    .find(|c| *c == k)
                    .ok_or_else(|| {
                        CliError::input(format!(
                            "unknown kind `{k}` (one of {})",
                            cases::KINDS.join(", ")
                        ))
                    })
            })
            .collect::<Result<_, _>>()?
    };
    let default_sizes: &[&str] = if args.quick {
        &["small", "medium"]
    } else {
        &["small", "medium", "large", "xlarge"]
    };
    let sizes: Vec<&'static str> = if args.sizes.is_empty() {
        default_sizes
            .iter()
            .map(|s| {
                cases::SIZES
                    .iter()
                    .copied()
                    .find(|c| c == s)
                    .unwrap_or("small")
            })
            .collect()
    } else {
        args.sizes
            .iter()
            .map(|s| {
                cases::SIZES
                    .iter()
                    .copied()
                    .find(|c| *c == s)
                    .ok_or_else(|| {
                        CliError::input(format!(
                            "unknown size `{s}` (one of {})",
                            cases::SIZES.join(", ")
                        ))
                    })
            })
            .collect::<Result<_, _>>()?
    };
    let repeat = args
        .repeat
        .unwrap_or(if args.quick { 3 } else { 10 })
        .max(1);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::runtime(format!("{}: {e}", args.out.display())))?;

    let detected = backends::detect();
    let gpu = detected.gpus.first().cloned();
    let machine = Machine {
        cpu: detected.cpu.device.name.clone(),
        os: os_name(),
        gpu: gpu.as_ref().map(|g| g.device.name.clone()),
        driver_cuda: gpujobs_cuda::driver_version(),
        gpujobs: env!("CARGO_PKG_VERSION").to_string(),
        date: crate::commands::calibrate::date(gpujobs_core::envelope::now_ms()),
    };
    let plan: Vec<cases::Case> = kinds
        .iter()
        .flat_map(|&k| sizes.iter().filter_map(move |&s| cases::build(k, s, 42)))
        .collect();
    let cells = plan.len() * (1 + usize::from(gpu.is_some()));
    let bar = ProgressBar::new(cells as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    for case in &plan {
        bar.set_message(format!("{} {} on cpu", case.kind, case.label));
        let cpu_results = cell(&detected.cpu, DeviceClass::Cpu, case, args.warmup, repeat).await?;
        let env = &case.envelope;
        let cpu_check =
            detected
                .cpu
                .registry
                .check(&env.kind, &env.payload, &env.blobs, &cpu_results[0])?;
        let verified = match cpu_check {
            Some(c) => (format!("vs f64 reference: {c}"), c.passed()),
            None => ("not checked (too large for the f64 reference)".into(), true),
        };
        let cpu_row = row(
            case,
            &detected.cpu,
            DeviceClass::Cpu,
            &cpu_results,
            verified,
        );
        bar.inc(1);
        if let Some(g) = &gpu {
            bar.set_message(format!("{} {} on gpu", case.kind, case.label));
            let gpu_results = cell(g, DeviceClass::Gpu, case, args.warmup, repeat).await?;
            let (metric, error, tol) =
                crate::compare::outputs(&env.kind, &gpu_results[0], &cpu_results[0])?;
            let ok = error <= tol;
            let mut gpu_row = row(
                case,
                g,
                DeviceClass::Gpu,
                &gpu_results,
                (format!("{metric} {error:.1e} (tol {tol:.0e})"), ok),
            );
            gpu_row.speedup_e2e = Some(cpu_row.e2e.median / gpu_row.e2e.median);
            gpu_row.speedup_kernel = Some(cpu_row.kernel.median / gpu_row.kernel.median);
            rows.push(cpu_row);
            rows.push(gpu_row);
            bar.inc(1);
        } else {
            rows.push(cpu_row);
        }
    }
    bar.finish_and_clear();

    let doc = serde_json::json!({
        "schema": "gpujobs-bench/1",
        "machine": machine,
        "config": {"kinds": kinds, "sizes": sizes, "repeat": repeat, "warmup": args.warmup, "quick": args.quick},
        "rows": rows,
    });
    let json = serde_json::to_string_pretty(&doc).unwrap_or_default();
    std::fs::write(args.out.join("results.json"), json)
        .map_err(|e| CliError::runtime(format!("{}: {e}", args.out.display())))?;
    let command = format!(
        "gpujobs bench{} --kinds {} --sizes {} --repeat {repeat} --warmup {} --out {}",
        if args.quick { " --quick" } else { "" },
        kinds.join(","),
        sizes.join(","),
        args.warmup,
        args.out.display()
    );
    write_outputs(&args.out, &machine, &rows, &command, repeat, args.warmup)?;
    print!("{}", report::summary(&rows));
    println!(
        "wrote results.json, results.csv, time_vs_size.png, speedup.png and report.md to {}",
        args.out.display()
    );
    if rows.iter().any(|r| !r.verified_ok) {
        return Err(CliError::runtime(
            "some outputs did not verify; see report.md",
        ));
    }
    Ok(())
}
