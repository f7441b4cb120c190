//! Helpers shared by the CLI's integration tests: running the binary, and writing and
//! reading `.npy` files as NumPy does.

#![allow(dead_code)] // each test file uses some of them
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn gpujobs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpujobs"))
        .args(args)
        .output()
        .expect("binary runs")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes a little-endian `.npy` with the given dtype and raw bytes, as NumPy would.
pub(crate) fn write_npy(path: &Path, descr: &str, shape: &[usize], payload: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(payload);
    std::fs::write(path, bytes).unwrap();
}

pub(crate) fn f32_npy(path: &Path, shape: &[usize], values: &[f32]) {
    let payload: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<f4", shape, &payload);
}

/// Reads back an `f32` `.npy` the binary wrote (header up to the newline, then data).
pub(crate) fn read_f32_npy(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'<f4'"), "{header}");
    bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub(crate) fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub(crate) fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

pub(crate) fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `args`, expecting exit code 2 and a one-line error containing `needle`.
pub(crate) fn refused(args: &[&str], needle: &str) {
    let o = gpujobs(args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?}: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning:")).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got:\n{err}");
    assert!(
        lines[0].to_lowercase().contains(&needle.to_lowercase()),
        "{args:?}: {err}"
    );
}

/// A background `gpujobs` process, killed when dropped.
pub(crate) struct Proc(pub(crate) std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `gpujobs <args>` against the Redis at `url`, output discarded.
pub(crate) fn spawn_on(url: &str, args: &[&str]) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_gpujobs"))
        .args(args)
        .env("GPUJOBS_REDIS_URL", url)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

/// Runs `gpujobs <args>` against the Redis at `url`.
pub(crate) fn run_on(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpujobs"))
        .args(args)
        .env("GPUJOBS_REDIS_URL", url)
        .output()
        .unwrap()
}
