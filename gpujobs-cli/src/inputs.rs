//! Turning command-line job arguments into jobs, and saving their outputs.

use crate::cli::{FilterArg, ImageFilterArgs, KindArgs, MatmulArgs, MlpArgs, VectorAddArgs};
use crate::error::CliError;
use crate::imageio;
use crate::npy::{self, NpyArray};
use gpujobs_core::BufferPool;
use gpujobs_core::jobs::{
    FilterOp, ImageFilter, ImageFilterOutput, Matmul, MatmulOutput, MlpData, MlpTrain, VectorAdd,
    VectorAddOutput,
};
use gpujobs_core::{Job, JobEnvelope, JobResult, Tensor};
use std::path::{Path, PathBuf};

/// A job built from arguments, with where its output goes.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The job, ready to submit.
    pub envelope: JobEnvelope,
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
/// warning on stderr when its dtype was converted.
pub fn read_npy(path: &Path) -> Result<NpyArray, CliError> {
    let a = npy::read(path, BufferPool::global()).map_err(|e| CliError::input(e.to_string()))?;
    warn_converted(path, &a.converted_from);
    Ok(a)
}

fn tensor_from(path: &Path, rank: usize) -> Result<Tensor, CliError> {
    let a = read_npy(path)?;
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
    // Validate the typed job: some bad values (a NaN sigma) would not survive JSON.
    job.validate(&gpujobs_core::Limits::detect())?;
    let label = job.size_label();
    let envelope = JobEnvelope::new(job).map_err(|e| CliError::runtime(e.to_string()))?;
    Ok(JobSpec {
        envelope,
        label,
        sink,
    })
}

fn npy_sink(out: &Option<PathBuf>) -> Sink {
    out.clone().map_or(Sink::None, Sink::Npy)
}

/// Builds the job the arguments describe.
pub fn build(args: &KindArgs) -> Result<JobSpec, CliError> {
    match args {
        KindArgs::Matmul(a) => matmul(a),
        KindArgs::VectorAdd(a) => vector_add(a),
        KindArgs::ImageFilter(a) => image_filter(a),
        KindArgs::MlpTrain(a) => mlp(a),
    }
}

fn matmul(args: &MatmulArgs) -> Result<JobSpec, CliError> {
    let job = match (&args.a, &args.b) {
        (Some(a), Some(b)) => {
            if args.m.is_some() || args.k.is_some() || args.n.is_some() {
                return Err(CliError::input(
                    "give either --a/--b files or --m/--k/--n sizes, not both",
                ));
            }
            Matmul {
                a: tensor_from(a, 2)?,
                b: tensor_from(b, 2)?,
            }
        }
        _ => {
            let m = args.m.unwrap_or(512);
            Matmul::synthetic(m, args.k.unwrap_or(m), args.n.unwrap_or(m), args.seed)
        }
    };
    spec(job, npy_sink(&args.out))
}

fn vector_add(args: &VectorAddArgs) -> Result<JobSpec, CliError> {
    let job = match (&args.a, &args.b) {
        (Some(a), Some(b)) => {
            if args.len.is_some() {
                return Err(CliError::input(
                    "give either --a/--b files or --len, not both",
                ));
            }
            VectorAdd {
                a: tensor_from(a, 1)?,
                b: tensor_from(b, 1)?,
            }
        }
        _ => VectorAdd::synthetic(args.len.unwrap_or(10_000_000), args.seed),
    };
    spec(job, npy_sink(&args.out))
}

fn image_filter(args: &ImageFilterArgs) -> Result<JobSpec, CliError> {
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
            let img = imageio::read(path, BufferPool::global())
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

fn mlp(args: &MlpArgs) -> Result<JobSpec, CliError> {
    let (data, classes) = match (&args.x, &args.y) {
        (Some(x), Some(y)) => {
            if args.samples.is_some() || args.features.is_some() {
                return Err(CliError::input(
                    "give either --x/--y files or --samples/--features, not both",
                ));
            }
            let x = tensor_from(x, 2)?;
            let y = tensor_from(y, 1)?;
            let max_label = y
                .values()?
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0f32, f32::max);
            let classes = args.classes.unwrap_or(max_label as usize + 1).max(2);
            (MlpData::Tensors { x, y }, classes)
        }
        _ => {
            let seed = gpujobs_core::synth::derive_seed(args.seed, "data");
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
    };
    spec(job, Sink::None)
}

/// Saves a result's output where the spec says.
pub fn save(spec: &JobSpec, result: &JobResult) -> Result<Option<PathBuf>, CliError> {
    let decode_err =
        |e: gpujobs_core::ValidationError| CliError::runtime(format!("cannot decode output: {e}"));
    match &spec.sink {
        Sink::None => Ok(None),
        Sink::Npy(path) => {
            let c = match spec.envelope.kind.as_str() {
                "matmul" => result.decode::<MatmulOutput>().map_err(decode_err)?.c,
                "vector-add" => result.decode::<VectorAddOutput>().map_err(decode_err)?.c,
                other => {
                    return Err(CliError::runtime(format!(
                        "no tensor output to save for {other}"
                    )));
                }
            };
            npy::write(path, c.shape(), &c.values()?)
                .map_err(|e| CliError::runtime(e.to_string()))?;
            Ok(Some(path.clone()))
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
            Ok(Some(path.clone()))
        }
    }
}
