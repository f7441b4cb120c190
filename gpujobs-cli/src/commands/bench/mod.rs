//! `gpujobs bench`: every kind at several sizes on every backend here, with statistics,
//! GPU-vs-CPU verification and speedups; writes JSON, CSV, PNG charts and a report.

mod cases;
mod charts;
mod report;
mod stats;
mod stream;
mod student_t;

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
    /// Kinds to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(cases::KINDS))]
    pub kinds: Vec<String>,
    /// Size rungs, comma-separated (default: all, or small and medium with --quick).
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(cases::SIZES))]
    pub sizes: Vec<String>,
    /// Timed repetitions per cell, after the warm-up (default 10, or 3 with --quick).
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Warm-up runs per cell.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Folder for results.json, results.csv, the PNG charts and report.md (default:
    /// `gpujobs-bench-<date>` in the current directory; `--out`, the old name, still
    /// works).
    #[arg(long = "out-dir", alias = "out")]
    pub out: Option<PathBuf>,
    /// Instead of the cells, measure a worker's steady state: this many vector adds
    /// back to back through the embedded queue, a scheduler and one CPU worker, with
    /// jobs/s and page faults per job (written to stream.json).
    #[arg(long)]
    pub stream: Option<usize>,
    /// Elements per vector for --stream.
    #[arg(long, default_value_t = 10_000_000)]
    pub stream_len: usize,
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
    /// Minor page faults of the process per timed job (Linux), against
    /// `output_pages`: zero when outputs come from a warm buffer pool.
    #[serde(default)]
    pub faults_per_job: Option<f64>,
    /// 4 KiB pages of one job's output tensors.
    #[serde(default)]
    pub output_pages: Option<f64>,
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

/// One cell's measurements: jobs run back to back through one executor, as a worker
/// runs them.
struct Cell {
    /// The first timed result, kept for verification (the others are dropped as soon
    /// as they are measured, so their buffers go back to the pool, as in a worker).
    first: JobResult,
    /// Each timed job's stage timings.
    timings: Vec<gpujobs_core::Timings>,
    /// Each timed job's wall-clock time of the whole executor call.
    wall: Vec<f64>,
    /// Minor page faults per timed job.
    faults_per_job: Option<f64>,
}

async fn cell(
    backend: &Backend,
    class: DeviceClass,
    case: &cases::Case,
    warmup: usize,
    repeat: usize,
) -> Result<Cell, CliError> {
    let kind = case.envelope.kind.as_str();
    let exec = backend
        .registry
        .executor(kind, class)
        .ok_or_else(|| CliError::runtime(format!("no {class} executor for {kind}")))?;
    let ctx = ExecContext::standalone(Limits::detect());
    let run = || async {
        let start = std::time::Instant::now();
        let r = exec
            .execute(&case.envelope.payload, &case.envelope.blobs, &ctx)
            .await
            .map_err(|e| CliError::runtime(format!("{kind} {} on {class}: {e}", case.label)))?;
        Ok::<_, CliError>((r, start.elapsed().as_secs_f64()))
    };
    for _ in 0..warmup {
        run().await?;
    }
    let faults_before = gpujobs_core::buffer::minor_faults();
    let mut first = None;
    let (mut timings, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..repeat.max(1) {
        let (r, w) = run().await?;
        timings.push(r.timings);
        wall.push(w);
        if first.is_none() {
            first = Some(r);
        }
    }
    let faults_per_job = faults_before
        .zip(gpujobs_core::buffer::minor_faults())
        .map(|(a, b)| b.saturating_sub(a) as f64 / wall.len() as f64);
    let first = first.ok_or_else(|| CliError::runtime("no timed run"))?;
    Ok(Cell {
        first,
        timings,
        wall,
        faults_per_job,
    })
}

fn row(
    case: &cases::Case,
    backend: &Backend,
    class: DeviceClass,
    cell: &Cell,
    verified: (String, bool),
) -> Row {
    let pick =
        |f: fn(&gpujobs_core::Timings) -> f64| cell.timings.iter().map(f).collect::<Vec<f64>>();
    let e2e = Stats::of(&cell.wall).unwrap_or(Stats {
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
    let output_bytes: usize = cell.first.blobs.values().map(|v| v.len() * 4).sum();
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
        faults_per_job: cell.faults_per_job,
        output_pages: Some(output_bytes as f64 / 4096.0),
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
pub async fn run(mut args: BenchArgs) -> Result<(), CliError> {
    let out = args.out.take().unwrap_or_else(|| {
        let date = crate::report::date(gpujobs_core::model::envelope::now_ms());
        PathBuf::from(format!("gpujobs-bench-{date}"))
    });
    if let Some(path) = &args.from_json {
        return replot(path, &out);
    }
    if let Some(jobs) = args.stream {
        return run_stream(jobs, args.stream_len, &out).await;
    }
    run_cells(args, out).await
}

async fn run_stream(jobs: usize, len: usize, out: &std::path::Path) -> Result<(), CliError> {
    if len == 0 {
        return Err(CliError::input("--stream-len must be at least 1"));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| CliError::runtime(format!("{}: {e}", out.display())))?;
    eprintln!("{jobs} vector adds of {len} values back to back through the embedded queue...");
    let r = stream::run(jobs, len).await?;
    let faults = r
        .faults_per_job
        .map_or("unknown".into(), |f| format!("{f:.1}"));
    println!(
        "{} jobs in {:.2} s: {:.1} jobs/s, {:.2} GB/s; page faults per job {faults} ({:.0} output pages); buffer pool {} hits, {} misses",
        r.jobs, r.seconds, r.jobs_per_s, r.gb_per_s, r.output_pages, r.pool_hits, r.pool_misses
    );
    let json = serde_json::to_string_pretty(&r).unwrap_or_default();
    let path = out.join("stream.json");
    std::fs::write(&path, json)
        .map_err(|e| CliError::runtime(format!("{}: {e}", path.display())))?;
    println!("wrote {}", path.display());
    Ok(())
}

async fn run_cells(args: BenchArgs, out: PathBuf) -> Result<(), CliError> {
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
    std::fs::create_dir_all(&out)
        .map_err(|e| CliError::runtime(format!("{}: {e}", out.display())))?;

    let detected = backends::detect();
    let gpu = detected.gpus.first().cloned();
    let machine = Machine {
        cpu: detected.cpu.device.name.clone(),
        os: os_name(),
        gpu: gpu.as_ref().map(|g| g.device.name.clone()),
        driver_cuda: gpujobs_cuda::driver_version(),
        gpujobs: env!("CARGO_PKG_VERSION").to_string(),
        date: crate::report::date(gpujobs_core::model::envelope::now_ms()),
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
        let cpu_cell = cell(&detected.cpu, DeviceClass::Cpu, case, args.warmup, repeat).await?;
        let env = &case.envelope;
        let cpu_check =
            detected
                .cpu
                .registry
                .check(&env.kind, &env.payload, &env.blobs, &cpu_cell.first)?;
        let verified = match cpu_check {
            Some(c) => (format!("vs f64 reference: {c}"), c.passed()),
            None => ("not checked (too large for the f64 reference)".into(), true),
        };
        let cpu_row = row(case, &detected.cpu, DeviceClass::Cpu, &cpu_cell, verified);
        bar.inc(1);
        if let Some(g) = &gpu {
            bar.set_message(format!("{} {} on gpu", case.kind, case.label));
            let gpu_cell = cell(g, DeviceClass::Gpu, case, args.warmup, repeat).await?;
            let (metric, error, tol) =
                crate::compare::outputs(&env.kind, &gpu_cell.first, &cpu_cell.first)?;
            let ok = error <= tol;
            let mut gpu_row = row(
                case,
                g,
                DeviceClass::Gpu,
                &gpu_cell,
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
    std::fs::write(out.join("results.json"), json)
        .map_err(|e| CliError::runtime(format!("{}: {e}", out.display())))?;
    let command = format!(
        "gpujobs bench{} --kinds {} --sizes {} --repeat {repeat} --warmup {} --out-dir {}",
        if args.quick { " --quick" } else { "" },
        kinds.join(","),
        sizes.join(","),
        args.warmup,
        out.display()
    );
    write_outputs(&out, &machine, &rows, &command, repeat, args.warmup)?;
    print!("{}", report::summary(&rows));
    println!(
        "wrote results.json, results.csv, time_vs_size.png, speedup.png and report.md to {}",
        out.display()
    );
    if rows.iter().any(|r| !r.verified_ok) {
        return Err(CliError::runtime(
            "some outputs did not verify; see report.md",
        ));
    }
    Ok(())
}
