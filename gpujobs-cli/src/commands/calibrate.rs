//! `gpujobs calibrate` and `gpujobs simulate`.

use crate::backends::{self, Backend};
use crate::error::CliError;
use crate::report;
use clap::Args;
use gpujobs_core::scheduler::cost_model::{CostModelFile, LinearCost, MODEL_VERSION, Sample, fit};
use gpujobs_core::scheduler::placement::fmt_seconds;
use gpujobs_core::scheduler::simulate::{SimPolicy, mixed_workload, simulate};
use gpujobs_core::{CalibratedCostModel, CostModel, DeviceClass, ExecContext, Limits, Registry};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Options of `gpujobs calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Where to write the model.
    #[arg(long, default_value = "cost-model.json")]
    pub out: PathBuf,
    /// A smaller ladder of sizes (about a minute on two cores).
    #[arg(long)]
    pub quick: bool,
    /// Timed runs per size, after one warm-up; the median is kept.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Keep the entries of this model for device classes not measured here (say, the
    /// GPU entries measured on a GPU node when calibrating a CPU node).
    #[arg(long)]
    pub merge: Option<PathBuf>,
}

/// Options of `gpujobs simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Cost model file (default: the library's default model).
    #[arg(long, env = "GPUJOBS_COST_MODEL")]
    pub cost_model: Option<PathBuf>,
    /// CPU workers.
    #[arg(long, default_value_t = 2)]
    pub cpu_workers: usize,
    /// GPU workers.
    #[arg(long, default_value_t = 1)]
    pub gpu_workers: usize,
    /// Time over which the workload arrives (`2s`; 0: all at once).
    #[arg(long, default_value = "2s", value_parser = crate::units::seconds)]
    pub window: f64,
    /// Workloads (seeds) to average over.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// Print the comparison as one JSON object: the model, the workload and per policy
    /// the mean makespan and completion time (seconds) and jobs per lane.
    #[arg(long)]
    pub json: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `gpujobs calibrate`.
pub async fn calibrate(args: CalibrateArgs) -> Result<(), CliError> {
    let kinds = Registry::with_builtin_kinds();
    let detected = backends::detect();
    let mut targets: Vec<(DeviceClass, Backend)> = vec![(DeviceClass::Cpu, detected.cpu.clone())];
    if let Some(g) = detected.gpus.first() {
        targets.push((DeviceClass::Gpu, g.clone()));
    } else {
        eprintln!(
            "no GPU: {} (calibrating the CPU only)",
            detected.gpu_missing
        );
    }
    let mut plan = Vec::new();
    for kind in kinds.kinds() {
        let samples = kinds.calibration_samples(&kind, args.quick)?;
        for (class, backend) in &targets {
            if backend.registry.executor(&kind, *class).is_some() {
                plan.push((kind.clone(), *class, backend.clone(), samples.clone()));
            }
        }
    }
    let total: usize = plan.iter().map(|p| p.3.len()).sum();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ctx = ExecContext::standalone(Limits::detect());
    let mut fitted: BTreeMap<String, BTreeMap<DeviceClass, LinearCost>> = BTreeMap::new();
    for (kind, class, backend, samples) in plan {
        let exec = backend
            .registry
            .executor(&kind, class)
            .ok_or_else(|| CliError::runtime("executor vanished"))?;
        let mut points = Vec::new();
        for (env, cost) in samples {
            bar.set_message(format!("{kind} on {class}"));
            let mut times = Vec::new();
            for i in 0..=args.repeat.max(1) {
                let r = exec
                    .execute(&env.payload, &env.blobs, &ctx)
                    .await
                    .map_err(|e| CliError::runtime(format!("{kind} on {class}: {e}")))?;
                if i > 0 {
                    times.push(r.timings.run_s);
                }
            }
            points.push(Sample {
                cost,
                seconds: median(times),
            });
            bar.inc(1);
        }
        if let Some(model) = fit(&points, class == DeviceClass::Gpu) {
            fitted.entry(kind).or_default().insert(class, model);
        }
    }
    bar.finish_and_clear();
    let mut sources = vec![format!(
        "{}{} measured by `gpujobs calibrate{}` on {}",
        detected.cpu.device.name,
        targets
            .get(1)
            .map_or(String::new(), |(_, g)| format!(" and {}", g.device.name)),
        if args.quick { " --quick" } else { "" },
        report::date(gpujobs_core::model::envelope::now_ms())
    )];
    if let Some(path) = &args.merge {
        let other = CalibratedCostModel::load(Some(path)).map_err(CliError::input)?;
        for (kind, per_class) in &other.file().kinds {
            for (class, m) in per_class {
                fitted
                    .entry(kind.clone())
                    .or_default()
                    .entry(*class)
                    .or_insert(*m);
            }
        }
        sources.push(format!(
            "other classes kept from {} ({})",
            path.display(),
            other.file().source
        ));
    }
    let file = CostModelFile {
        version: MODEL_VERSION,
        calibrated: true,
        source: sources.join("; "),
        kinds: fitted,
    };
    let json = serde_json::to_string_pretty(&file).map_err(|e| CliError::runtime(e.to_string()))?;
    std::fs::write(&args.out, json + "\n")
        .map_err(|e| CliError::runtime(format!("{}: {e}", args.out.display())))?;
    print!("{}", model_table(&file));
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The fitted coefficients as a table, in rates a person can read.
pub fn model_table(file: &CostModelFile) -> String {
    let rate = |per: f64, unit: f64| {
        if per > 0.0 {
            format!("{:.1}", 1.0 / per / unit)
        } else {
            "-".into()
        }
    };
    let mut rows = Vec::new();
    for (kind, per_class) in &file.kinds {
        for (class, m) in per_class {
            rows.push(vec![
                kind.clone(),
                class.to_string(),
                fmt_seconds(m.overhead_s),
                rate(m.per_flop_s, 1e9),
                rate(m.per_byte_s, 1e9),
                rate(m.per_transfer_byte_s, 1e9),
                m.samples.to_string(),
                format!("{:.0}%", 100.0 * m.rel_rms_error),
            ]);
        }
    }
    report::table(
        &[
            "kind",
            "device",
            "overhead",
            "GFLOP/s",
            "GB/s",
            "transfer GB/s",
            "samples",
            "fit error",
        ],
        &rows,
    )
}

/// Runs `gpujobs simulate`.
pub async fn simulate_cmd(args: SimulateArgs) -> Result<(), CliError> {
    if args.cpu_workers == 0 || !(args.window.is_finite() && args.window >= 0.0) || args.seeds == 0
    {
        return Err(CliError::input(
            "need at least one CPU worker, one seed and a window of 0 s or more",
        ));
    }
    let model = CalibratedCostModel::load(args.cost_model.as_deref()).map_err(CliError::input)?;
    let model_name = model.description();
    if !args.json {
        println!("cost model: {model_name}");
    }
    let model: Arc<dyn CostModel> = Arc::new(model);
    let mut rows = Vec::new();
    let mut policies = Vec::new();
    for policy in SimPolicy::ALL {
        let (mut makespan, mut mean, mut gpu, mut cpu) = (0.0, 0.0, 0, 0);
        for seed in 1..=args.seeds {
            let jobs = mixed_workload(seed, args.window);
            let o = simulate(
                &jobs,
                args.cpu_workers,
                args.gpu_workers,
                model.clone(),
                policy,
                seed,
            );
            makespan += o.makespan_s;
            mean += o.mean_completion_s;
            gpu += o.on_gpu;
            cpu += o.on_cpu;
        }
        let n = args.seeds as f64;
        let name = serde_json::to_value(policy)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        policies.push(serde_json::json!({
            "policy": name,
            "makespan_s": makespan / n,
            "mean_completion_s": mean / n,
            "jobs_on_gpu": gpu as f64 / n,
            "jobs_on_cpu": cpu as f64 / n,
        }));
        rows.push(vec![
            name,
            fmt_seconds(makespan / n),
            fmt_seconds(mean / n),
            format!("{:.0}", gpu as f64 / n),
            format!("{:.0}", cpu as f64 / n),
        ]);
    }
    if args.json {
        let v = serde_json::json!({
            "cost_model": model_name,
            "workload": "300 vector adds (10k-1M), 20 matmuls (1024-4096), 40 blurs/Sobels (1024-4096), 4 MLP trainings",
            "cpu_workers": args.cpu_workers,
            "gpu_workers": args.gpu_workers,
            "window_s": args.window,
            "seeds": args.seeds,
            "policies": policies,
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "workload: 300 vector adds (10k-1M), 20 matmuls (1024-4096), 40 blurs/Sobels (1024-4096), 4 MLP trainings; {} CPU and {} GPU workers; arrivals over {} s; mean of {} seeds",
        args.cpu_workers, args.gpu_workers, args.window, args.seeds
    );
    print!(
        "{}",
        report::table(
            &[
                "policy",
                "makespan",
                "mean completion",
                "jobs on gpu",
                "jobs on cpu"
            ],
            &rows
        )
    );
    Ok(())
}
