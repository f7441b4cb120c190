//! Turning command-line job arguments into jobs, and saving their outputs.

use crate::cli::{
    FilterArg, ImageFilterArgs, KindArgs, MatmulArgs, MlpArgs, MlpPredictArgs, VectorAddArgs,
};
use crate::error::CliError;
use crate::imageio;
use crate::npy::{self, NpyArray};
use gpujobs_core::BufferPool;
use gpujobs_core::kinds::{
    FilterOp, ImageFilter, ImageFilterOutput, Matmul, MatmulOutput, MlpData, MlpModel, MlpPredict,
    MlpPredictOutput, MlpTestData, MlpTrain, MlpTrainOutput, VectorAdd, VectorAddOutput,
};
use gpujobs_core::{Job, JobResult, Tensor, Validated};
use std::path::{Path, PathBuf};

/// A job built from arguments, with where its output goes.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The job, validated (the client submits it without validating it again).
    pub job: Validated,
    /// Its size for tables.
    pub label: String,
    /// Where to save the output, if anywhere.
    pub sink: Sink,
}

/// Where an output is saved.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Not saved.
    None,
    /// The output tensor as `.npy`.
    Npy(PathBuf),
    /// The output image as PNG/JPEG/.npy.
    Image {
        /// The file.
        path: PathBuf,
        /// Scale by the maximum before quantizing.
        normalize: bool,
    },
    /// The trained model of `mlp-train` as safetensors.
    Model(PathBuf),
    /// `mlp-predict`'s probabilities and labels as `.npy` (either may be absent).
    Predictions {
        /// Probabilities, float32 `rows × classes`.
        probs: Option<PathBuf>,
        /// Labels, int64 `rows`.
        labels: Option<PathBuf>,
    },
}

fn warn_converted(path: &Path, from: &Option<String>) {
    if let Some(from) = from {
        eprintln!(
            "warning: {}: converted from dtype {from} to float32",
            path.display()
        );
    }
}

/// Reads a `.npy` file into the process's buffer pool (the memory the job runs on),
/// warning on stderr when its dtype was converted; refuses one over `limit` bytes as
/// `f32` before reading its data.
pub fn read_npy(path: &Path, limit: u64) -> Result<NpyArray, CliError> {
    let a = npy::read_capped(path, BufferPool::global(), limit)
        .map_err(|e| CliError::input(e.to_string()))?;
    warn_converted(path, &a.converted_from);
    Ok(a)
}

fn tensor_from(path: &Path, rank: usize, limit: u64) -> Result<Tensor, CliError> {
    let a = read_npy(path, limit)?;
    if a.shape.len() != rank {
        return Err(CliError::input(format!(
            "{}: expected a {rank}-D array, got shape {:?}",
            path.display(),
            a.shape
        )));
    }
    Ok(Tensor::from_values(a.shape, a.data)?)
}

fn spec<J: Job>(job: J, sink: Sink) -> Result<JobSpec, CliError> {
    // The one validation of this process, on the typed job: some bad values (a NaN
    // sigma) would not survive JSON.
    let label = job.size_label();
    let job = Validated::job(job, &gpujobs_core::Limits::detect())?;
    Ok(JobSpec { job, label, sink })
}

fn npy_sink(out: &Option<PathBuf>) -> Sink {
    out.clone().map_or(Sink::None, Sink::Npy)
}

/// Builds the job the arguments describe. `limit`: the most bytes one input file may
/// take as `f32` (a queue's blob limit; `u64::MAX` for none), checked from the file's
/// header before its data is read.
pub fn build(args: &KindArgs, limit: u64) -> Result<JobSpec, CliError> {
    match args {
        KindArgs::Matmul(a) => matmul(a, limit),
        KindArgs::VectorAdd(a) => vector_add(a, limit),
        KindArgs::ImageFilter(a) => image_filter(a, limit),
        KindArgs::MlpTrain(a) => mlp(a, limit),
        KindArgs::MlpPredict(a) => mlp_predict(a, limit),
    }
}

fn matmul(args: &MatmulArgs, limit: u64) -> Result<JobSpec, CliError> {
    let job = match (&args.a, &args.b) {
        (Some(a), Some(b)) => {
            if args.m.is_some() || args.k.is_some() || args.n.is_some() {
                return Err(CliError::input(
                    "give either --a/--b files or --m/--k/--n sizes, not both",
                ));
            }
            Matmul {
                a: tensor_from(a, 2, limit)?,
                b: tensor_from(b, 2, limit)?,
            }
        }
        _ => {
            let m = args.m.unwrap_or(512);
            Matmul::synthetic(m, args.k.unwrap_or(m), args.n.unwrap_or(m), args.seed)
        }
    };
    spec(job, npy_sink(&args.out))
}

fn vector_add(args: &VectorAddArgs, limit: u64) -> Result<JobSpec, CliError> {
    let job = match (&args.a, &args.b) {
        (Some(a), Some(b)) => {
            if args.len.is_some() {
                return Err(CliError::input(
                    "give either --a/--b files or --len, not both",
                ));
            }
            VectorAdd {
                a: tensor_from(a, 1, limit)?,
                b: tensor_from(b, 1, limit)?,
            }
        }
        _ => VectorAdd::synthetic(args.len.unwrap_or(10_000_000), args.seed),
    };
    spec(job, npy_sink(&args.out))
}

fn image_filter(args: &ImageFilterArgs, limit: u64) -> Result<JobSpec, CliError> {
    let filter = match args.op {
        FilterArg::GaussianBlur => FilterOp::GaussianBlur { sigma: args.sigma },
        FilterArg::Sobel => FilterOp::Sobel,
    };
    let job = match &args.input {
        Some(path) => {
            if args.width.is_some() || args.height.is_some() {
                return Err(CliError::input(
                    "give either --input or --width/--height, not both",
                ));
            }
            let img = imageio::read_capped(path, BufferPool::global(), limit)
                .map_err(|e| CliError::input(e.to_string()))?;
            warn_converted(path, &img.converted_from);
            ImageFilter {
                image: Tensor::from_values(vec![img.height, img.width], img.data)?,
                filter,
            }
        }
        None => ImageFilter::synthetic(
            args.height.unwrap_or(1024),
            args.width.unwrap_or(1024),
            filter,
            args.seed,
        ),
    };
    let sink = args.out.clone().map_or(Sink::None, |path| Sink::Image {
        path,
        normalize: args.normalize,
    });
    spec(job, sink)
}

/// Rows `rows` of a row-major `[n, width]` array, as a new tensor.
fn take_rows(values: &[f32], width: usize, rows: &[u32]) -> Result<Tensor, CliError> {
    let mut out = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        let r = r as usize;
        out.extend_from_slice(&values[r * width..(r + 1) * width]);
    }
    let shape = if width == 1 {
        vec![rows.len()]
    } else {
        vec![rows.len(), width]
    };
    Ok(Tensor::from_values(shape, out)?)
}

/// Splits `x`/`y` into training and held-out rows: a share `f` of the rows, drawn by a
/// permutation from `seed`, is held out (at least one row on each side).
fn val_split(x: Tensor, y: Tensor, f: f64, seed: u64) -> Result<(MlpData, MlpTestData), CliError> {
    if !(f.is_finite() && f > 0.0 && f < 1.0) {
        return Err(CliError::input(format!(
            "--val-split must be a share between 0 and 1 (exclusive), got {f}"
        )));
    }
    let (n, width) = (x.shape()[0], x.shape()[1]);
    if y.shape()[0] != n {
        return Err(CliError::input(format!(
            "--x has {n} rows but --y has {} labels",
            y.shape()[0]
        )));
    }
    let held = ((n as f64 * f).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    if n < 2 {
        return Err(CliError::input("--val-split needs at least 2 samples"));
    }
    let order = gpujobs_core::model::synth::permutation(
        n,
        gpujobs_core::model::synth::derive_seed(seed, "val-split"),
    );
    let (test_rows, train_rows) = order.split_at(held);
    let (xv, yv) = (x.values()?, y.values()?);
    Ok((
        MlpData::Tensors {
            x: take_rows(&xv, width, train_rows)?,
            y: take_rows(&yv, 1, train_rows)?,
        },
        MlpTestData {
            x: take_rows(&xv, width, test_rows)?,
            y: take_rows(&yv, 1, test_rows)?,
        },
    ))
}

fn mlp(args: &MlpArgs, limit: u64) -> Result<JobSpec, CliError> {
    let mut test = None;
    let (data, classes) = match (&args.x, &args.y) {
        (Some(x), Some(y)) => {
            if args.samples.is_some() || args.features.is_some() {
                return Err(CliError::input(
                    "give either --x/--y files or --samples/--features, not both",
                ));
            }
            let x = tensor_from(x, 2, limit)?;
            let y = tensor_from(y, 1, limit)?;
            let classes = match args.classes {
                Some(c) => c,
                None => gpujobs_core::kinds::mlp_train::infer_classes(&y.values()?)?,
            };
            match (args.val_split, &args.x_test, &args.y_test) {
                (Some(f), _, _) => {
                    let (data, held) = val_split(x, y, f, args.seed)?;
                    test = Some(held);
                    (data, classes)
                }
                (None, Some(xt), Some(yt)) => {
                    test = Some(MlpTestData {
                        x: tensor_from(xt, 2, limit)?,
                        y: tensor_from(yt, 1, limit)?,
                    });
                    (MlpData::Tensors { x, y }, classes)
                }
                _ => (MlpData::Tensors { x, y }, classes),
            }
        }
        _ => {
            let seed = gpujobs_core::model::synth::derive_seed(args.seed, "data");
            (
                MlpData::Synthetic {
                    samples: args.samples.unwrap_or(4096),
                    features: args.features.unwrap_or(64),
                    seed,
                },
                args.classes.unwrap_or(10),
            )
        }
    };
    let job = MlpTrain {
        data,
        classes,
        hidden: args.hidden.clone(),
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        test,
    };
    if args.x.is_none() && args.x_test.is_some() {
        return Err(CliError::input(
            "--x-test/--y-test need real training data (--x/--y)",
        ));
    }
    spec(job, args.save_model.clone().map_or(Sink::None, Sink::Model))
}

fn mlp_predict(args: &MlpPredictArgs, limit: u64) -> Result<JobSpec, CliError> {
    let job = match (&args.model, &args.x) {
        (Some(model), Some(x)) => {
            if args.rows.is_some() || args.features.is_some() || args.hidden.is_some() {
                return Err(CliError::input(
                    "give either --model/--x files or --rows/--features/--hidden/--classes, not both",
                ));
            }
            let bytes = std::fs::read(model).map_err(|e| {
                CliError::input(format!("{}: cannot read the model: {e}", model.display()))
            })?;
            let model = MlpModel::from_safetensors(&bytes).map_err(|e| {
                CliError::input(format!(
                    "{}: {e}",
                    args.model
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string())
                ))
            })?;
            MlpPredict {
                model,
                x: tensor_from(x, 2, limit)?,
            }
        }
        _ => {
            let features = args.features.unwrap_or(64);
            let mut dims = vec![features];
            dims.extend(args.hidden.clone().unwrap_or_else(|| vec![256]));
            dims.push(args.classes.unwrap_or(10));
            MlpPredict::synthetic(args.rows.unwrap_or(65_536), &dims, args.seed)
        }
    };
    let sink = Sink::Predictions {
        probs: args.out.clone(),
        labels: args.labels_out.clone(),
    };
    spec(job, sink)
}

/// Saves a result's output where the spec says; returns the files written.
pub fn save(spec: &JobSpec, result: &JobResult) -> Result<Vec<PathBuf>, CliError> {
    let decode_err =
        |e: gpujobs_core::ValidationError| CliError::runtime(format!("cannot decode output: {e}"));
    let write_err = |e: npy::NpyError| CliError::runtime(e.to_string());
    match &spec.sink {
        Sink::None => Ok(Vec::new()),
        Sink::Model(path) => {
            let out = result.decode::<MlpTrainOutput>().map_err(decode_err)?;
            let bytes = out
                .model()
                .to_safetensors()
                .map_err(|e| CliError::runtime(format!("cannot save the model: {e}")))?;
            std::fs::write(path, bytes).map_err(|e| {
                CliError::runtime(format!("{}: cannot write the model: {e}", path.display()))
            })?;
            Ok(vec![path.clone()])
        }
        Sink::Predictions { probs, labels } => {
            let out = result.decode::<MlpPredictOutput>().map_err(decode_err)?;
            let mut written = Vec::new();
            if let Some(path) = probs {
                npy::write(path, out.probs.shape(), &out.probs.values()?).map_err(write_err)?;
                written.push(path.clone());
            }
            if let Some(path) = labels {
                npy::write_i64(path, out.labels.shape(), &out.labels.values()?)
                    .map_err(write_err)?;
                written.push(path.clone());
            }
            Ok(written)
        }
        Sink::Npy(path) => {
            let c = match spec.job.get().kind.as_str() {
                "matmul" => result.decode::<MatmulOutput>().map_err(decode_err)?.c,
                "vector-add" => result.decode::<VectorAddOutput>().map_err(decode_err)?.c,
                other => {
                    return Err(CliError::runtime(format!(
                        "no tensor output to save for {other}"
                    )));
                }
            };
            npy::write(path, c.shape(), &c.values()?).map_err(write_err)?;
            Ok(vec![path.clone()])
        }
        Sink::Image { path, normalize } => {
            let img = result
                .decode::<ImageFilterOutput>()
                .map_err(decode_err)?
                .image;
            imageio::write(
                path,
                img.shape()[0],
                img.shape()[1],
                &img.values()?,
                *normalize,
            )
            .map_err(|e| CliError::runtime(e.to_string()))?;
            Ok(vec![path.clone()])
        }
    }
}
