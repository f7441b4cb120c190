//! The CSV table, the Markdown report and the console summary of a benchmark run.

use super::{Machine, Row};
use gpujobs_core::scheduler::placement::fmt_seconds;

/// Columns of `results.csv`, in order.
pub const CSV_COLUMNS: [&str; 25] = [
    "kind",
    "rung",
    "size",
    "x",
    "device",
    "n",
    "mean_s",
    "median_s",
    "min_s",
    "max_s",
    "std_s",
    "ci95_low_s",
    "ci95_high_s",
    "kernel_median_s",
    "h2d_median_s",
    "d2h_median_s",
    "throughput_e2e",
    "throughput_kernel",
    "unit",
    "speedup_e2e",
    "speedup_kernel",
    "faults_per_job",
    "output_pages",
    "verified_ok",
    "verified",
];

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One line per row, with a header.
pub fn csv(rows: &[Row]) -> String {
    let mut out = CSV_COLUMNS.join(",") + "\n";
    for r in rows {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        let fields = [
            r.kind.clone(),
            r.rung.clone(),
            quote(&r.size),
            format!("{}", r.x),
            r.device.clone(),
            r.e2e.n.to_string(),
            format!("{:.9}", r.e2e.mean),
            format!("{:.9}", r.e2e.median),
            format!("{:.9}", r.e2e.min),
            format!("{:.9}", r.e2e.max),
            format!("{:.9}", r.e2e.std),
            format!("{:.9}", r.e2e.ci95_low),
            format!("{:.9}", r.e2e.ci95_high),
            format!("{:.9}", r.kernel.median),
            format!("{:.9}", r.h2d_median_s),
            format!("{:.9}", r.d2h_median_s),
            format!("{:.6}", r.throughput_e2e),
            format!("{:.6}", r.throughput_kernel),
            r.unit.clone(),
            opt(r.speedup_e2e),
            opt(r.speedup_kernel),
            opt(r.faults_per_job),
            opt(r.output_pages),
            r.verified_ok.to_string(),
            quote(&r.verified),
        ];
        out += &fields.join(",");
        out.push('\n');
    }
    out
}

fn rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The results table, one line per cell.
fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| kind | size | device | median (95% CI of the mean) | min / max | kernel median | transfers | throughput e2e / kernel | GPU speedup e2e / kernel | page faults / job (output pages) | verified |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let speed = match (r.speedup_e2e, r.speedup_kernel) {
            (Some(e), Some(k)) => format!("{e:.2}× / {k:.1}×"),
            _ => "—".into(),
        };
        out += &format!(
            "| {} | {} | {} | {} ({} – {}) | {} / {} | {} | {} | {} / {} {} | {} | {} | {} |\n",
            r.kind,
            r.size,
            r.device,
            fmt_seconds(r.e2e.median),
            fmt_seconds(r.e2e.ci95_low.max(0.0)),
            fmt_seconds(r.e2e.ci95_high),
            fmt_seconds(r.e2e.min),
            fmt_seconds(r.e2e.max),
            fmt_seconds(r.kernel.median),
            if r.device == "gpu" {
                fmt_seconds(r.h2d_median_s + r.d2h_median_s)
            } else {
                "—".into()
            },
            rate(r.throughput_e2e),
            rate(r.throughput_kernel),
            r.unit,
            speed,
            match (r.faults_per_job, r.output_pages) {
                (Some(f), Some(p)) => format!("{f:.0} ({p:.0})"),
                _ => "—".into(),
            },
            if r.verified_ok { "yes" } else { "**NO**" },
        );
    }
    out
}

/// What the numbers say, kind by kind.
fn discussion(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    kinds.dedup();
    let any_gpu = rows.iter().any(|r| r.device == "gpu");
    for kind in kinds {
        let cpu: Vec<&Row> = rows
            .iter()
            .filter(|r| r.kind == kind && r.device == "cpu")
            .collect();
        let gpu: Vec<&Row> = rows
            .iter()
            .filter(|r| r.kind == kind && r.device == "gpu")
            .collect();
        let (first, last) = (cpu.first(), cpu.last());
        out += &format!("- **{kind}**: ");
        if let (Some(a), Some(b)) = (first, last) {
            out += &format!(
                "the CPU goes from {} {} at {} to {} {} at {}",
                rate(a.throughput_e2e),
                a.unit,
                a.size,
                rate(b.throughput_e2e),
                b.unit,
                b.size
            );
        }
        if gpu.is_empty() {
            out += ".\n";
            continue;
        }
        let wins: Vec<String> = gpu
            .iter()
            .filter(|r| r.speedup_e2e.unwrap_or(0.0) > 1.0)
            .map(|r| format!("{} ({:.2}×)", r.size, r.speedup_e2e.unwrap_or(0.0)))
            .collect();
        // The crossover: the smallest size from which the GPU wins at every larger size.
        let crossover =
            (0..gpu.len()).find(|&i| gpu[i..].iter().all(|r| r.speedup_e2e.unwrap_or(0.0) > 1.0));
        let best_kernel = gpu
            .iter()
            .filter_map(|r| r.speedup_kernel)
            .fold(0.0, f64::max);
        let last_gpu = gpu[gpu.len() - 1];
        let transfer_share = (last_gpu.h2d_median_s + last_gpu.d2h_median_s) / last_gpu.e2e.median;
        let verdict = match (wins.is_empty(), crossover) {
            (true, _) => "the GPU never beats the CPU at the measured sizes: its transfers cost more than the CPU's whole run".to_string(),
            (false, Some(i)) => format!("the GPU wins from {} on (crossover); faster at {}", gpu[i].size, wins.join(", ")),
            (false, None) => format!("the GPU is faster only at {} and slower at the largest size measured, so there is no clean crossover", wins.join(", ")),
        };
        out += &format!(
            "; kernel-only the GPU is up to {best_kernel:.0}× faster. End to end, {verdict}; at {} transfers take {:.0}% of the GPU's time.\n",
            last_gpu.size,
            100.0 * transfer_share
        );
    }
    if !any_gpu {
        out += "\nNo GPU was available on this machine, so the run measures the CPU backend only; run it on a GPU machine (built with `--features cuda`) for speedups.\n";
    }
    out
}

/// The report, in the shape of a paper's results section.
pub fn markdown(m: &Machine, rows: &[Row], command: &str, repeat: usize, warmup: usize) -> String {
    let gpu = m.gpu.clone().map_or("none".into(), |g| {
        format!(
            "{g}, driver for CUDA {}",
            m.driver_cuda.clone().unwrap_or_else(|| "?".into())
        )
    });
    let failed = rows.iter().filter(|r| !r.verified_ok).count();
    // The simulated driver (tests) names its device so: its times are no measurement.
    let simulated = if m
        .gpu
        .as_deref()
        .is_some_and(|g| g.contains("simulated, not a GPU"))
    {
        "**SIMULATED GPU (gpujobs-cuda-sim): the GPU rows check correctness only; their \
times and speedups are not measurements.**\n\n"
    } else {
        ""
    };
    format!(
        "# gpujobs benchmark report\n\n{simulated}\
## Setup\n\n\
- CPU: {cpu}\n- GPU: {gpu}\n- OS: {os}\n- gpujobs {version}, run on {date}\n- Command: `{command}`\n\n\
## Method\n\n\
Each job kind runs at a ladder of sizes on every backend available, as a worker runs \
it: jobs back to back through the same executors and the same host buffer pool a \
worker uses, each result dropped once measured so its buffers return to the pool. \
Inputs are uniform random `f32` data held in host memory (the MLP trains on synthetic \
clusters), so a GPU run pays for copying its inputs in and its output back. Every cell \
runs {warmup} warm-up time(s), which absorb the first-run costs a long-running worker \
pays once (module loading, SGEMM autotuning, the first allocation and page faults of \
pooled buffers), and then {repeat} timed run(s). *End to end* is the wall clock of the \
executor's whole call, as a worker makes it: decoding and validating the job, input \
preparation, host-to-device copies, compute, device-to-host copies, the output's \
fingerprint and encoding. *Page faults / job* are the process's minor page faults per \
timed job, next to the 4 KiB pages of the job's output (a worker with a warm pool \
pays none). *Kernel* is the compute alone: CUDA events \
around the kernels on the GPU, the wall clock around the computation on the CPU. We \
report the median, the extremes, and a 95% confidence interval of the mean (Student's \
t). Speedups are ratios of medians, CPU over GPU, measured in the same run. Every \
output is verified: the CPU's against the `f64` reference implementation (where the \
problem is small enough), the GPU's against the CPU's.\n\n\
## Results\n\n\
{table}\n\
![Median time against problem size](time_vs_size.png)\n\n\
*Figure 1: median time against problem size, log-log, per kind: CPU, GPU end to end, GPU kernel.*\n\n\
![GPU speedup](speedup.png)\n\n\
*Figure 2: GPU speedup over the CPU backend, end to end and kernel-only.*\n\n\
{verdict}\n\n\
## Discussion\n\n\
{discussion}\n\
## Threats to validity\n\n\
- One machine, one run: the confidence intervals cover run-to-run noise within this run, \
not differences between machines, drivers or thermal states.\n\
- The CPU backend uses every core of the machine, which the benchmark process and the \
operating system share; other load on the machine lowers CPU numbers.\n\
- End-to-end GPU times include staging through pinned host memory; an application \
that keeps its data on the device would see times closer to the kernel-only column.\n\
- Inputs are random uniform data; none of the kinds is data-dependent in speed, but \
real images or matrices may differ in cache behaviour.\n\
- Small cells (microseconds) are dominated by fixed overheads and timer resolution; \
read their ratios with their confidence intervals.\n\
- With `--quick` the repetition count is small and the sizes stop before the GPU's \
best regime.\n",
        cpu = m.cpu,
        os = m.os,
        version = m.gpujobs,
        date = m.date,
        table = table(rows),
        verdict = if failed == 0 {
            "All outputs verified.".to_string()
        } else {
            format!("**{failed} outputs did not verify** (see the table).")
        },
        discussion = discussion(rows),
    )
}

/// A short console table.
pub fn summary(rows: &[Row]) -> String {
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.kind.clone(),
                r.size.clone(),
                r.device.clone(),
                fmt_seconds(r.e2e.median),
                fmt_seconds(r.kernel.median),
                format!("{} {}", rate(r.throughput_e2e), r.unit),
                r.speedup_e2e.map_or("—".into(), |s| format!("{s:.2}×")),
                if r.verified_ok {
                    "ok".into()
                } else {
                    "FAIL".into()
                },
            ]
        })
        .collect();
    crate::report::table(
        &[
            "kind",
            "size",
            "device",
            "median",
            "kernel",
            "throughput",
            "speedup e2e",
            "verified",
        ],
        &lines,
    )
}
