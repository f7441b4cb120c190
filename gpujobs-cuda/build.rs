//! Puts the PTX of every kernel module into OUT_DIR: rebuilt with the user's `nvcc`
//! when one is found (so the PTX version suits their driver), else the committed copy.

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
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=ptx");
    let nvcc = nvcc();
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
