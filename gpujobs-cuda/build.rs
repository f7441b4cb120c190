//! Puts the PTX of every kernel module into OUT_DIR: with the `cuda` feature, rebuilt
//! with the user's `nvcc` when one is found (so the PTX version suits their driver),
//! else (and always without the feature, which loads no PTX) the committed copy.
//!
//! `nvcc` is `GPUJOBS_NVCC` when set (`off` or `0`: never), else the first on `PATH`.
//! The build reruns when `GPUJOBS_NVCC`, the kernels or the committed PTX change, not
//! on every change of `PATH` (which would rebuild this crate and everything above it
//! whenever a shell's PATH differs): after installing a toolkit, set `GPUJOBS_NVCC` or
//! `cargo clean -p gpujobs-cuda`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODULES: [&str; 5] = ["synth", "vector_add", "sgemm", "image_filter", "mlp"];

fn nvcc() -> Option<PathBuf> {
    match env::var("GPUJOBS_NVCC") {
        Ok(v) if v == "off" || v == "0" => None,
        Ok(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => env::var_os("PATH").and_then(|paths| {
            env::split_paths(&paths)
                .map(|p| p.join("nvcc"))
                .find(|p| p.is_file())
        }),
    }
}

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=GPUJOBS_NVCC");
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=ptx");
    // Without the `cuda` feature nothing loads the PTX: never run a compiler for it.
    let nvcc = env::var_os("CARGO_FEATURE_CUDA").and_then(|_| nvcc());
    if let Some(nvcc) = &nvcc {
        println!("cargo:rerun-if-changed={}", nvcc.display());
    }
    for module in MODULES {
        let target = out.join(format!("{module}.ptx"));
        if let Some(nvcc) = &nvcc {
            if compile(
                nvcc,
                &manifest.join("kernels").join(format!("{module}.cu")),
                &target,
            ) {
                continue;
            }
            println!(
                "cargo:warning=gpujobs-cuda: {} failed on {module}.cu; using the committed PTX",
                nvcc.display()
            );
        }
        std::fs::copy(manifest.join("ptx").join(format!("{module}.ptx")), &target)
            .expect("committed PTX is present");
    }
}

fn compile(nvcc: &Path, source: &Path, target: &Path) -> bool {
    Command::new(nvcc)
        .args(["-ptx", "-arch=compute_75", "-O3", "-o"])
        .arg(target)
        .arg(source)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
