//! The command line as parsed (clap derive). Validation into library objects happens
//! in `inputs` and the commands.

use crate::connect::RedisArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};
use gpujobs_core::{DevicePref, Priority};
use std::path::PathBuf;

/// Run compute jobs (vector add, matrix multiply, image filters, MLP training) on GPU
/// and CPU workers behind a durable queue.
///
/// `demo` and `run` need nothing else: they start an in-process queue, scheduler and
/// workers.
#[derive(Debug, Parser)]
#[command(
    name = "gpujobs",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// More log output on stderr (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Most host memory kept idle for reuse by later jobs (4G, 512M, or bytes). Job
    /// outputs and inputs come from a pool of recycled, pre-faulted buffers, so a
    /// worker running job after job pays no page faults; this bounds what the pool
    /// keeps between jobs (buffers in use are not counted). Default: an eighth of
    /// physical memory, at most 4G.
    #[arg(
        long,
        global = true,
        env = "GPUJOBS_BUFFER_POOL_BYTES",
        value_parser = gpujobs_core::buffer::parse_bytes,
        value_name = "BYTES"
    )]
    pub buffer_pool_bytes: Option<u64>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an in-process cluster, run every job kind at a few sizes on every backend
    /// available, check each result against the reference implementation, and print a
    /// table of devices and timings.
    Demo(DemoArgs),
    /// Run one job in-process (embedded queue, scheduler and workers) and print its
    /// result. Inputs are synthetic (a seed and a shape) or real files (.npy, PNG, JPEG).
    Run(RunArgs),
    /// Place submitted jobs on lanes (GPU or CPU) by estimated finish time. Run one or
    /// several; they share the work.
    Scheduler(SchedulerArgs),
    /// Serve a lane: run jobs on this machine's CPUs or GPUs, with heartbeats, lease
    /// renewal and a graceful drain on SIGTERM/SIGINT.
    Worker(WorkerArgs),
    /// Submit jobs to Redis (the same job arguments as `run`, or a JSON-lines file of
    /// envelopes), optionally waiting for the results.
    Submit(Box<SubmitArgs>),
    /// Wait for jobs (ids as arguments or in a file) to finish: progress, a tally and,
    /// with --by-kind, median timings by kind and device. Exit 0 if all succeeded.
    Wait(crate::commands::wait::WaitArgs),
    /// Show a job's record: state, placement and why, attempts, timings, error.
    Status(StatusArgs),
    /// Cancel a job: a queued one never runs, a running one is asked to stop.
    Cancel(CancelArgs),
    /// List dead-lettered jobs, or re-submit one.
    DeadLetter(DeadLetterArgs),
    /// A live view of lanes, workers, throughput and failures (until Ctrl-C).
    Watch(WatchArgs),
    /// Serve the web dashboard: lanes, workers, job search, graphs, dead letters (with
    /// retry and cancel when an access token is set), and the history behind them.
    Dashboard(crate::commands::dashboard::DashboardArgs),
    /// Check what an operator checks first: Redis (reachable, version, persistence,
    /// eviction, consumer groups, workers) and CUDA (driver, devices, our PTX).
    Doctor(crate::commands::doctor::DoctorArgs),
    /// Ask a running worker or scheduler (its --metrics-addr) whether it is alive or
    /// ready; exit 0 if so. For container health checks.
    Healthcheck(crate::commands::healthcheck::HealthcheckArgs),
    /// Measure every kind on every backend here and fit the cost model placement uses;
    /// writes a versioned JSON file for `gpujobs scheduler --cost-model`.
    Calibrate(crate::commands::calibrate::CalibrateArgs),
    /// Benchmark every kind at several sizes on every backend here: statistics, GPU
    /// verification and speedups, written as JSON, CSV, PNG charts and a report.
    Bench(crate::commands::bench::BenchArgs),
    /// Compare cost-based placement with always-GPU, always-CPU and round-robin on a
    /// simulated mixed workload (no GPU needed).
    Simulate(crate::commands::calibrate::SimulateArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(crate::commands::shell::CompletionsArgs),
    /// Print the man page (or write one per command with --out-dir).
    Man(crate::commands::shell::ManArgs),
    /// Verify a GPU: cross-check every kind against the CPU backend on fresh random
    /// inputs and time it (kernel-only and end to end) against the device's copy
    /// bandwidth. Built with the `cuda` feature only.
    #[cfg(feature = "cuda")]
    GpuCheck(crate::commands::gpu_check::GpuCheckArgs),
}

/// Options of `gpujobs demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Small sizes only (a few seconds even in a debug build).
    #[arg(long)]
    pub quick: bool,
    /// Print the results as one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Jobs each worker runs at once. With 1, compute times are not disturbed by other
    /// jobs and queue waits show the backlog.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
}

/// Options of `gpujobs run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job kind and its inputs.
    #[command(subcommand)]
    pub job: KindArgs,
    /// Where to run: auto (the placement policy decides), cpu, or gpu (alias cuda).
    #[arg(long, default_value = "auto", global = true, value_parser = crate::choices::device())]
    pub device: DevicePref,
    /// Print the result as one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Skip checking the result against the f64 reference implementation.
    #[arg(long, global = true)]
    pub no_check: bool,
    /// Give up waiting after this long (`90s`, `1h`; a bare number is seconds).
    #[arg(long, default_value = "3600", global = true, value_parser = crate::units::positive_seconds)]
    pub timeout: f64,
}

/// A job kind with its inputs, shared by `run` and `submit`.
#[derive(Debug, Clone, Subcommand)]
pub enum KindArgs {
    /// C = A·B in f32. Synthetic with --m --k --n (values in [-1, 1)), or --a A.npy --b B.npy.
    Matmul(MatmulArgs),
    /// c = a + b in f32. Synthetic with --len, or --a X.npy --b Y.npy.
    VectorAdd(VectorAddArgs),
    /// Gaussian blur or Sobel magnitude of a grayscale image, with OpenCV's semantics.
    /// Synthetic with --width --height, or --input photo.png (PNG/JPEG, converted to
    /// luma in [0, 1]) or a 2-D .npy.
    ImageFilter(ImageFilterArgs),
    /// Train an MLP classifier (ReLU, softmax cross-entropy, minibatch SGD). Synthetic
    /// clusters with --samples --features --classes, or --x X.npy --y y.npy; held-out
    /// figures with --x-test/--y-test or --val-split; --save-model keeps the model.
    MlpTrain(MlpArgs),
    /// Class probabilities and labels from a trained MLP: --model m.safetensors --x X.npy
    /// (the model from `mlp-train --save-model`), or a synthetic model and inputs with
    /// --rows --features --hidden --classes.
    MlpPredict(MlpPredictArgs),
}

/// `matmul` inputs.
#[derive(Debug, Clone, Args)]
pub struct MatmulArgs {
    /// Rows of A and C (synthetic).
    #[arg(long)]
    pub m: Option<usize>,
    /// Columns of A, rows of B (synthetic).
    #[arg(long)]
    pub k: Option<usize>,
    /// Columns of B and C (synthetic).
    #[arg(long)]
    pub n: Option<usize>,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Left operand, a 2-D .npy file.
    #[arg(long, requires = "b")]
    pub a: Option<PathBuf>,
    /// Right operand, a 2-D .npy file.
    #[arg(long, requires = "a")]
    pub b: Option<PathBuf>,
    /// Write C to this .npy file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `vector-add` inputs.
#[derive(Debug, Clone, Args)]
pub struct VectorAddArgs {
    /// Length of the synthetic vectors.
    #[arg(long)]
    pub len: Option<usize>,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First operand, a 1-D .npy file.
    #[arg(long, requires = "b")]
    pub a: Option<PathBuf>,
    /// Second operand, a 1-D .npy file.
    #[arg(long, requires = "a")]
    pub b: Option<PathBuf>,
    /// Write the sum to this .npy file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The image filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FilterArg {
    /// cv2.GaussianBlur(img, (0, 0), sigma).
    GaussianBlur,
    /// sqrt(Sobel_x² + Sobel_y²), ksize 3.
    Sobel,
}

/// `image-filter` inputs.
#[derive(Debug, Clone, Args)]
pub struct ImageFilterArgs {
    /// The filter.
    #[arg(long, value_enum, default_value_t = FilterArg::GaussianBlur)]
    pub op: FilterArg,
    /// Standard deviation of the Gaussian, in pixels (kernel size is derived as OpenCV does).
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    pub sigma: f32,
    /// Width of the synthetic image.
    #[arg(long)]
    pub width: Option<usize>,
    /// Height of the synthetic image.
    #[arg(long)]
    pub height: Option<usize>,
    /// Seed of the synthetic image.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Input image: PNG, JPEG, or a 2-D .npy of f32.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Output: PNG/JPEG (8-bit, clamped to [0, 1]) or .npy (exact f32).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Scale the output by its maximum before saving as PNG/JPEG (for Sobel magnitudes).
    #[arg(long)]
    pub normalize: bool,
}

/// `mlp-train` inputs.
#[derive(Debug, Clone, Args)]
pub struct MlpArgs {
    /// Synthetic samples.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Features per synthetic sample.
    #[arg(long)]
    pub features: Option<usize>,
    /// Number of classes (default: 10 synthetic, or the largest label + 1).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Seed of the synthetic data, initial weights and shuffles.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Features, a 2-D .npy file (samples × features).
    #[arg(long, requires = "y")]
    pub x: Option<PathBuf>,
    /// Integer labels, a 1-D .npy file.
    #[arg(long, requires = "x")]
    pub y: Option<PathBuf>,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "256")]
    pub hidden: Vec<usize>,
    /// Passes over the data.
    #[arg(long, default_value_t = 5)]
    pub epochs: u32,
    /// Minibatch size.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub lr: f32,
    /// Held-out features, a 2-D .npy file: loss and accuracy on them after every epoch.
    #[arg(long, requires = "y_test", conflicts_with = "val_split")]
    pub x_test: Option<PathBuf>,
    /// Held-out integer labels, a 1-D .npy file.
    #[arg(long, requires = "x_test")]
    pub y_test: Option<PathBuf>,
    /// Hold out this share of --x/--y (rows drawn with --seed) instead of --x-test/--y-test.
    #[arg(long, requires = "x")]
    pub val_split: Option<f64>,
    /// Save the trained model here as safetensors (PyTorch's nn.Sequential layout; see
    /// docs/job-kinds.md), for `mlp-predict --model`.
    #[arg(long)]
    pub save_model: Option<PathBuf>,
}

/// `mlp-predict` inputs.
#[derive(Debug, Clone, Args)]
pub struct MlpPredictArgs {
    /// A model saved by `mlp-train --save-model` (or PyTorch: see docs/job-kinds.md).
    #[arg(long, requires = "x")]
    pub model: Option<PathBuf>,
    /// Inputs, a 2-D .npy file (rows × the model's features).
    #[arg(long, requires = "model")]
    pub x: Option<PathBuf>,
    /// Synthetic rows (with a synthetic model of --features, --hidden, --classes).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Features of the synthetic model.
    #[arg(long)]
    pub features: Option<usize>,
    /// Hidden layer widths of the synthetic model, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Classes of the synthetic model.
    #[arg(long)]
    pub classes: Option<usize>,
    /// Seed of the synthetic model and inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Save the class probabilities here (.npy, float32, rows × classes).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Save the predicted labels here (.npy, int64, rows).
    #[arg(long)]
    pub labels_out: Option<PathBuf>,
}

/// Options of `gpujobs scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Consumer name in the schedulers' group (default: host-pid-random).
    #[arg(long)]
    pub id: Option<String>,
    /// Most submissions taken at once (`--batch`, the old name, still works).
    #[arg(long = "take", alias = "batch", default_value_t = 256)]
    pub batch: usize,
    /// Cost model from `gpujobs calibrate` (default: the library's default model,
    /// measured on the development machines).
    #[arg(long, env = "GPUJOBS_COST_MODEL")]
    pub cost_model: Option<PathBuf>,
    /// How long a graph job placed on the worker whose cache holds its inputs is
    /// offered to that worker alone before any worker of its lane may take it (`2s`,
    /// `500ms`; 0 turns placement by locality off).
    #[arg(long, env = "GPUJOBS_LOCALITY_WAIT", default_value = "2s", value_parser = crate::units::seconds)]
    pub locality_wait: f64,
    /// The same in milliseconds (the old spelling; overrides --locality-wait).
    #[arg(long, env = "GPUJOBS_LOCALITY_WAIT_MS", hide = true)]
    pub locality_wait_ms: Option<u64>,
    /// Serve Prometheus metrics on this address (e.g. 0.0.0.0:9464): /metrics, /healthz.
    #[arg(long, env = "GPUJOBS_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// The backends a worker can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// This machine's CPUs (the cpu lane).
    Cpu,
    /// Every CUDA GPU of this machine, one worker per device (the gpu lane).
    Cuda,
}

/// Options of `gpujobs worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Which lane and executors to serve.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    pub backend: BackendArg,
    /// Jobs run at once (per device). Jobs the scheduler estimated tiny run besides
    /// these, up to --light-concurrency.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Jobs estimated under --light-below that run at once besides --concurrency
    /// (tiny jobs wait on round trips, not on cores; 0 turns this off).
    #[arg(long, default_value_t = 64)]
    pub light_concurrency: usize,
    /// A job estimated to run under this long on this lane is light (`2ms`).
    #[arg(long, default_value = "2ms", value_parser = crate::units::seconds)]
    pub light_below: f64,
    /// The same in milliseconds (the old spelling; overrides --light-below).
    #[arg(long, hide = true)]
    pub light_below_ms: Option<f64>,
    /// Visibility timeout (`30s`; a bare number is seconds): a job whose lease is not
    /// renewed this long is taken over by another worker. Leases are renewed every
    /// third of it.
    #[arg(long, default_value = "30s", value_parser = crate::units::positive_seconds)]
    pub lease: f64,
    /// How long in-flight jobs get to finish after SIGTERM/SIGINT (`30s`).
    #[arg(long, default_value = "30s", value_parser = crate::units::seconds)]
    pub grace: f64,
    /// Longest a job may wait for its inputs from object storage (`2m`), holding its
    /// slot with its lease renewed; then it is released to be tried again, without
    /// costing an attempt. Other jobs keep running meanwhile.
    #[arg(long, env = "GPUJOBS_INPUT_WAIT", default_value_t = gpujobs_core::worker::DEFAULT_INPUT_WAIT.as_secs_f64(), value_parser = crate::units::positive_seconds)]
    pub input_wait: f64,
    /// Consumer name (default: host-pid-lane-random). Give a stable one to have a
    /// restarted worker take back the jobs it held.
    #[arg(long)]
    pub id: Option<String>,
    /// How much of recent graph outputs to keep in host memory (`256MiB`, `1G`; least
    /// recently used out first), so a graph job that runs here after its parent reads
    /// the parent's output without a round trip to Redis. 0 turns the cache off.
    #[arg(long, env = "GPUJOBS_CACHE", default_value = "256MiB", value_parser = crate::units::bytes)]
    pub cache: u64,
    /// The same in MiB (the old spelling; overrides --cache).
    #[arg(long, env = "GPUJOBS_CACHE_MIB", hide = true)]
    pub cache_mib: Option<u64>,
    /// Serve Prometheus metrics on this address (e.g. 0.0.0.0:9464): /metrics, /healthz.
    #[arg(long, env = "GPUJOBS_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// CUDA workers: the device pipeline (inputs and outputs registered for DMA in
    /// place, large element-wise jobs in chunks over two streams). Off by default until
    /// verified on a GPU; GPUJOBS_CUDA_PIPELINE=1 does the same.
    #[arg(long, hide = !cfg!(feature = "cuda"))]
    pub cuda_pipeline: bool,
}

/// Options of `gpujobs submit`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SubmitArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// The job kind and its inputs (as for `run`).
    #[command(subcommand)]
    pub job: Option<KindArgs>,
    /// Submit the job envelopes of a JSON-lines file, one per line (see docs/wire-format.md).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Submit a job graph: a JSON file `{"jobs": [{"name": ..., "kind": ..., "payload":
    /// ...}, ...]}` whose inputs may read other jobs' outputs (`{"shape": [..], "from":
    /// {"job": "<name>", "output": "image"}}`; see docs/USER_GUIDE.md). Prints
    /// `<name> <id>` per job.
    #[arg(long, conflicts_with = "file")]
    pub graph: Option<PathBuf>,
    /// With --graph --wait: write the output tensors of the jobs no other job reads as
    /// `<dir>/<name>.<output>.npy`.
    #[arg(long, requires = "graph")]
    pub out_dir: Option<PathBuf>,
    /// Fetch priority: high, normal or low.
    #[arg(long, default_value = "normal", global = true, value_parser = crate::choices::priority())]
    pub priority: Priority,
    /// Where to run: auto (the placement policy decides), cpu, or gpu (alias cuda).
    #[arg(long, default_value = "auto", global = true, value_parser = crate::choices::device())]
    pub device: DevicePref,
    /// Attempts before the job is dead-lettered.
    #[arg(long, default_value_t = 3, global = true)]
    pub max_attempts: u32,
    /// How long one attempt may run (`10m`, `600`; a bare number is seconds).
    #[arg(long, default_value = "600", global = true, value_parser = crate::units::positive_seconds)]
    pub job_timeout: f64,
    /// Submit this many copies.
    #[arg(long, default_value_t = 1, global = true)]
    pub count: usize,
    /// Have the worker write the outputs as `.npy` under this URL (`s3://bucket/run-7`,
    /// `file:///srv/out`): `<url>/<output>.npy`, or `<url>/<job id>/<output>.npy` for
    /// each copy with --count. Needs object storage on the worker, with the URL under
    /// its --offload-url or --objects-allow (docs/object-storage.md).
    #[arg(long, global = true)]
    pub results_to: Option<String>,
    /// Wait for the results (a progress bar and a summary for several jobs).
    #[arg(long, global = true)]
    pub wait: bool,
    /// Print JSON on stdout: `{"ids": [..]}` without --wait, the result (one job) or the
    /// tally (several, a graph: with `"jobs": {name: id}`) with it.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up waiting after this long (`90s`, `1h`; a bare number is seconds).
    #[arg(long, default_value = "3600", global = true, value_parser = crate::units::positive_seconds)]
    pub timeout: f64,
}

/// Options of `gpujobs status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// The job id.
    pub id: String,
    /// Print the record as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `gpujobs cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// The job id.
    pub id: String,
    /// Print the outcome as one JSON object: `{"id", "outcome": "cancelled" |
    /// "requested" | "already-finished", "state"?}`.
    #[arg(long)]
    pub json: bool,
}

/// Options of `gpujobs dead-letter`.
#[derive(Debug, Args)]
pub struct DeadLetterArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// What to do.
    #[command(subcommand)]
    pub action: DeadLetterAction,
}

/// `dead-letter` actions.
#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// The newest dead letters, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Re-submit a dead-lettered job with fresh attempts.
    Retry {
        /// The job id.
        id: String,
        /// Print the outcome as one JSON object: `{"id", "retried": true}`.
        #[arg(long)]
        json: bool,
    },
}

/// Options of `gpujobs watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Time between refreshes (`1s`, `500ms`).
    #[arg(long, default_value = "1s", value_parser = crate::units::seconds)]
    pub interval: f64,
    /// Print one snapshot and exit.
    #[arg(long)]
    pub once: bool,
    /// Print each snapshot as one JSON object on its own line (lanes, workers, rates,
    /// failures, dead letters) instead of drawing the screen.
    #[arg(long)]
    pub json: bool,
}
