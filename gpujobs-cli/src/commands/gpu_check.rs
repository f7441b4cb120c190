//! `gpujobs gpu-check`: verifies a GPU against the CPU backend and times it.
//!
//! For every kind at several sizes (including ones that are not tile multiples), on
//! fresh random inputs: runs the CPU backend and the CUDA backend on the same data,
//! compares the outputs (and the GPU's against the f64 reference where affordable), and
//! times the GPU with CUDA events, kernel-only and end to end with transfers (warm-up,
//! median of `--reps`). Measures the device-to-device copy bandwidth (the roofline of
//! memory-bound kernels) and every SGEMM variant. Writes `gpu-check.json` and
//! `gpu-check.md` into `--out`.

use crate::backends::{self, Backend};
use crate::error::CliError;
use crate::report;
use clap::Args;
use gpujobs_core::kinds::{
    FilterOp, ImageFilter, Matmul, MlpModel, MlpPredict, MlpTrain, VectorAdd,
};
use gpujobs_core::scheduler::placement::fmt_seconds;
use gpujobs_core::{DeviceClass, ExecContext, Job, JobEnvelope, JobResult, Limits, Tensor, synth};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Options of `gpujobs gpu-check`.
#[derive(Debug, Args)]
pub struct GpuCheckArgs {
    /// Folder for gpu-check.json and gpu-check.md (`--out`, the old name, still works).
    #[arg(long = "out-dir", alias = "out", default_value = "gpu-check")]
    pub out: PathBuf,
    /// Timed GPU runs per case, after one warm-up (`--reps`, the old name, still works).
    #[arg(long = "repeat", alias = "reps", default_value_t = 20)]
    pub reps: usize,
    /// Small sizes only.
    #[arg(long)]
    pub quick: bool,
}

/// Said wherever gpu-check reports from the simulated driver.
const SIMULATED: &str = "SIMULATED DEVICE (gpujobs-cuda-sim): results check correctness only; no timing here is a measurement";

fn random(shape: Vec<usize>, seed: u64, lo: f32, hi: f32) -> Tensor {
    let n = shape.iter().product();
    let mut v = vec![0f32; n];
    synth::fill_uniform(&mut v, seed, 0, lo, hi);
    Tensor::from_values(shape, v).expect("shape matches")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

struct Case {
    env: JobEnvelope,
    label: String,
    work: f64,
    unit: &'static str,
    /// Bytes a perfect kernel moves through device memory (for the roofline).
    kernel_bytes: f64,
}

fn case<J: Job>(job: J, work: f64, unit: &'static str, kernel_bytes: f64) -> Case {
    Case {
        label: job.size_label(),
        env: JobEnvelope::new(job).expect("built-in jobs serialize"),
        work,
        unit,
        kernel_bytes,
    }
}

fn cases(quick: bool, seed: u64) -> Vec<Case> {
    let mut v = Vec::new();
    let s = |i: u64| synth::derive_seed(seed, &i.to_string());
    let adds: &[usize] = if quick {
        &[1_000_003]
    } else {
        &[1_000_003, 50_000_000]
    };
    for (i, &n) in adds.iter().enumerate() {
        let job = VectorAdd {
            a: random(vec![n], s(i as u64), -1.0, 1.0),
            b: random(vec![n], s(100 + i as u64), -1.0, 1.0),
        };
        v.push(case(job, 12.0 * n as f64, "GB/s", 12.0 * n as f64));
    }
    let mms: &[(usize, usize, usize)] = if quick {
        &[(1023, 1025, 1021), (1024, 1024, 1024)]
    } else {
        &[
            (1023, 1025, 1021),
            (1000, 1000, 1000),
            (2048, 2048, 2048),
            (4096, 4096, 4096),
        ]
    };
    for (i, &(m, k, n)) in mms.iter().enumerate() {
        let job = Matmul {
            a: random(vec![m, k], s(200 + i as u64), -1.0, 1.0),
            b: random(vec![k, n], s(300 + i as u64), -1.0, 1.0),
        };
        v.push(case(
            job,
            2.0 * (m * k * n) as f64,
            "GFLOP/s",
            4.0 * (m * k + k * n + m * n) as f64,
        ));
    }
    let imgs: &[(usize, usize, Option<f32>)] = if quick {
        &[(999, 1000, Some(2.0)), (777, 1001, None)]
    } else {
        &[
            (999, 1000, Some(2.0)),
            (4096, 4096, Some(2.0)),
            (2048, 2048, Some(8.0)),
            (777, 1001, None),
            (4096, 4096, None),
        ]
    };
    for (i, &(h, w, sigma)) in imgs.iter().enumerate() {
        let filter = sigma.map_or(FilterOp::Sobel, |sigma| FilterOp::GaussianBlur { sigma });
        // A separable blur reads and writes the image twice; Sobel once.
        let passes = if sigma.is_some() { 2.0 } else { 1.0 };
        let job = ImageFilter {
            image: random(vec![h, w], s(400 + i as u64), 0.0, 1.0),
            filter,
        };
        v.push(case(
            job,
            (h * w) as f64,
            "Mpix/s",
            passes * 8.0 * (h * w) as f64,
        ));
    }
    // Inference: a model of real (not synthetic) parameters on real inputs, so the
    // upload of both is paid.
    let predicts: &[(usize, usize, usize)] = if quick {
        &[(10_007, 64, 128)]
    } else {
        &[(10_007, 64, 128), (262_144, 784, 1024)]
    };
    for (i, &(rows, features, hidden)) in predicts.iter().enumerate() {
        let dims = [features, hidden, 10];
        let shape = |w: &Tensor| w.shape().to_vec();
        let synthetic = MlpModel::synthetic(&dims, s(500 + i as u64));
        let job = MlpPredict {
            model: MlpModel {
                weights: synthetic
                    .weights
                    .iter()
                    .map(|w| random(shape(w), s(510 + i as u64), -0.1, 0.1))
                    .collect(),
                biases: synthetic
                    .biases
                    .iter()
                    .map(|b| random(shape(b), s(520 + i as u64), -0.1, 0.1))
                    .collect(),
            },
            x: random(vec![rows, features], s(530 + i as u64), -1.0, 1.0),
        };
        v.push(case(job, rows as f64, "rows/s", 0.0));
    }
    let mut small = MlpTrain::synthetic(2000, 20, 4, 64, seed);
    small.batch = 128;
    small.epochs = 3;
    v.push(case(small, 2000.0 * 3.0, "samples/s", 0.0));
    if !quick {
        let mut big = MlpTrain::synthetic(16_384, 784, 10, 1024, seed);
        big.batch = 1024;
        big.epochs = 2;
        big.lr = 0.05;
        v.push(case(big, 16_384.0 * 2.0, "samples/s", 0.0));
    }
    v
}

async fn run_case(c: &Case, cpu: &Backend, gpu: &Backend, reps: usize) -> Result<Value, CliError> {
    let kind = c.env.kind.as_str();
    let ctx = ExecContext::standalone(Limits::detect());
    let cpu_exec = cpu
        .registry
        .executor(kind, DeviceClass::Cpu)
        .ok_or_else(|| CliError::runtime("no CPU executor"))?;
    let gpu_exec = gpu
        .registry
        .executor(kind, DeviceClass::Gpu)
        .ok_or_else(|| CliError::runtime("no GPU executor"))?;
    let fail = |side: &str, e: gpujobs_core::JobError| {
        CliError::runtime(format!("{kind} {} on {side}: {e}", c.label))
    };
    let cpu_runs = if c.work > 1e10 || kind == "mlp-train" {
        1
    } else {
        3
    };
    let mut cpu_results = Vec::new();
    for _ in 0..cpu_runs {
        cpu_results.push(
            cpu_exec
                .execute(&c.env.payload, &c.env.blobs, &ctx)
                .await
                .map_err(|e| fail("cpu", e))?,
        );
    }
    let gpu_reps = if kind == "mlp-train" {
        reps.clamp(1, 5)
    } else {
        reps.max(1)
    };
    let warm = gpu_exec
        .execute(&c.env.payload, &c.env.blobs, &ctx)
        .await
        .map_err(|e| fail("gpu", e))?;
    let mut gpu_results = Vec::new();
    for _ in 0..gpu_reps {
        gpu_results.push(
            gpu_exec
                .execute(&c.env.payload, &c.env.blobs, &ctx)
                .await
                .map_err(|e| fail("gpu", e))?,
        );
    }
    let (metric, error, tolerance) = crate::compare::outputs(kind, &warm, &cpu_results[0])?;
    let reference = cpu
        .registry
        .check(kind, &c.env.payload, &c.env.blobs, &warm)?;
    let t = |rs: &[JobResult], f: fn(&gpujobs_core::Timings) -> f64| {
        median(rs.iter().map(|r| f(&r.timings)).collect())
    };
    let (cpu_compute, cpu_e2e) = (
        t(&cpu_results, |x| x.compute_s),
        t(&cpu_results, |x| x.run_s),
    );
    let (gpu_kernel, gpu_e2e) = (
        t(&gpu_results, |x| x.compute_s),
        t(&gpu_results, |x| x.run_s),
    );
    let (h2d, d2h) = (t(&gpu_results, |x| x.h2d_s), t(&gpu_results, |x| x.d2h_s));
    let scale = match c.unit {
        "GB/s" | "GFLOP/s" => 1e9,
        "Mpix/s" => 1e6,
        _ => 1.0,
    };
    Ok(json!({
        "kind": kind, "size": c.label, "unit": c.unit,
        "metric": metric, "error": error, "tolerance": tolerance, "passed": error <= tolerance,
        "reference": reference.as_ref().map(|r| json!({"metric": r.metric, "error": r.error, "tolerance": r.tolerance, "passed": r.passed(), "skipped": r.skipped})),
        "cpu_compute_s": cpu_compute, "cpu_e2e_s": cpu_e2e,
        "gpu_kernel_s": gpu_kernel, "gpu_e2e_s": gpu_e2e, "gpu_h2d_s": h2d, "gpu_d2h_s": d2h,
        "gpu_kernel_rate": c.work / gpu_kernel / scale, "cpu_rate": c.work / cpu_compute / scale,
        "speedup_kernel": cpu_compute / gpu_kernel, "speedup_e2e": cpu_e2e / gpu_e2e,
        "kernel_bytes": c.kernel_bytes, "gpu_reps": gpu_reps,
    }))
}

/// Runs the command.
pub async fn run(args: GpuCheckArgs) -> Result<(), CliError> {
    let gpus =
        backends::gpus().map_err(|why| CliError::runtime(format!("no GPU to check: {why}")))?;
    let gpu = gpus
        .first()
        .ok_or_else(|| CliError::runtime("no GPU to check"))?;
    let cpu = backends::cpu();
    let exec = gpu
        .cuda
        .clone()
        .ok_or_else(|| CliError::runtime("no CUDA executor to check"))?;
    eprintln!("gpu-check on {} (cpu: {})", gpu.device, cpu.device);
    let simulated = gpujobs_cuda::simulated();
    if simulated {
        eprintln!("{SIMULATED}");
    }
    let copy_bw = exec
        .copy_bandwidth(512 << 20, args.reps.max(5))
        .await
        .map_err(|e| CliError::runtime(e.to_string()))?;
    eprintln!(
        "device-to-device copy: {:.1} GB/s (read + write)",
        copy_bw / 1e9
    );
    let mut variants = Vec::new();
    let sizes: &[usize] = if args.quick { &[1024] } else { &[2048, 4096] };
    for &n in sizes {
        for (name, secs) in exec
            .sgemm_variants(n, n, n, 10)
            .await
            .map_err(|e| CliError::runtime(e.to_string()))?
        {
            let tflops = 2.0 * (n as f64).powi(3) / secs / 1e12;
            eprintln!("  {name} {n}³: {:.2} TFLOP/s", tflops);
            variants.push(json!({"variant": name, "n": n, "seconds": secs, "tflops": tflops}));
        }
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut rows = Vec::new();
    let mut failures = 0;
    for c in cases(args.quick, seed) {
        let row = run_case(&c, &cpu, gpu, args.reps).await?;
        let ok = row["passed"].as_bool().unwrap_or(false)
            && row["reference"]["passed"].as_bool().unwrap_or(true);
        failures += usize::from(!ok);
        eprintln!(
            "  {:<12} {:<24} {} {:.2e}  kernel {}  e2e {}  cpu {}  {}",
            row["kind"].as_str().unwrap_or(""),
            row["size"].as_str().unwrap_or(""),
            row["metric"].as_str().unwrap_or(""),
            row["error"].as_f64().unwrap_or(f64::NAN),
            fmt_seconds(row["gpu_kernel_s"].as_f64().unwrap_or(0.0)),
            fmt_seconds(row["gpu_e2e_s"].as_f64().unwrap_or(0.0)),
            fmt_seconds(row["cpu_compute_s"].as_f64().unwrap_or(0.0)),
            if ok { "ok" } else { "MISMATCH" }
        );
        rows.push(row);
    }
    let doc = json!({
        "gpu": gpu.device.name, "cpu": cpu.device.name, "simulated": simulated, "pipeline": gpujobs_cuda::pipeline_enabled(), "seed": seed, "reps": args.reps,
        "copy_bandwidth_bytes_per_s": copy_bw, "sgemm_variants": variants, "cases": rows,
    });
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::runtime(format!("{}: {e}", args.out.display())))?;
    let json_path = args.out.join("gpu-check.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .map_err(|e| CliError::runtime(format!("{}: {e}", json_path.display())))?;
    let md = markdown(&doc);
    std::fs::write(args.out.join("gpu-check.md"), &md)
        .map_err(|e| CliError::runtime(e.to_string()))?;
    print!("{md}");
    if failures > 0 {
        return Err(CliError::runtime(format!("{failures} cases did not match")));
    }
    Ok(())
}

fn markdown(doc: &Value) -> String {
    let copy = doc["copy_bandwidth_bytes_per_s"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let mut out = String::new();
    if doc["simulated"].as_bool() == Some(true) {
        out.push_str(&format!("**{SIMULATED}**\n\n"));
    }
    if doc["pipeline"].as_bool() == Some(true) {
        out.push_str("Device pipeline: on (GPUJOBS_CUDA_PIPELINE=1)\n");
    }
    out += &format!(
        "GPU: {}\nCPU: {}\nDevice-to-device copy bandwidth: {:.0} GB/s (read + write)\n\n",
        doc["gpu"].as_str().unwrap_or(""),
        doc["cpu"].as_str().unwrap_or(""),
        copy / 1e9
    );
    let mut rows = Vec::new();
    for r in doc["cases"].as_array().into_iter().flatten() {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let roofline = if f("kernel_bytes") > 0.0 {
            format!(
                "{:.0}%",
                100.0 * f("kernel_bytes") / copy / f("gpu_kernel_s")
            )
        } else {
            "-".into()
        };
        let check = format!(
            "{} {:.1e}{}",
            if r["passed"].as_bool().unwrap_or(false) {
                "ok"
            } else {
                "FAIL"
            },
            f("error"),
            r["reference"]["metric"]
                .as_str()
                .map_or(String::new(), |m| format!(
                    "; ref {m} {:.1e}",
                    r["reference"]["error"].as_f64().unwrap_or(f64::NAN)
                ))
        );
        rows.push(vec![
            r["kind"].as_str().unwrap_or("").to_string(),
            r["size"].as_str().unwrap_or("").to_string(),
            check,
            fmt_seconds(f("cpu_compute_s")),
            fmt_seconds(f("gpu_kernel_s")),
            fmt_seconds(f("gpu_e2e_s")),
            format!(
                "{:.1} {}",
                f("gpu_kernel_rate"),
                r["unit"].as_str().unwrap_or("")
            ),
            roofline,
            format!("{:.1}x", f("speedup_kernel")),
            format!("{:.1}x", f("speedup_e2e")),
        ]);
    }
    out += &report::table(
        &[
            "kind",
            "size",
            "GPU vs CPU",
            "CPU compute",
            "GPU kernel",
            "GPU end-to-end",
            "GPU kernel rate",
            "of copy BW",
            "speedup kernel",
            "speedup e2e",
        ],
        &rows,
    );
    out += "\nSGEMM variants (median of 10, CUDA events):\n";
    let vrows: Vec<Vec<String>> = doc["sgemm_variants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            vec![
                v["variant"].as_str().unwrap_or("").to_string(),
                v["n"].to_string(),
                format!("{:.2}", v["tflops"].as_f64().unwrap_or(f64::NAN)),
            ]
        })
        .collect();
    out += &report::table(&["variant", "n", "TFLOP/s"], &vrows);
    out
}
