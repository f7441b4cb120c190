//! Inputs straight into their final memory: reading a 200 MB `.npy` and decoding a
//! 64 MB PNG into page-aligned pooled buffers, against a plain read of the same file
//! into a `Vec` and a plain decode into the `image` crate's own buffer (criterion).
//!
//! `cargo bench -p gpujobs-cli --bench host_io`. The files are written once to a
//! temporary folder and stay in the page cache, so both sides measure memory and
//! decoding, not the disk.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpujobs_cli::{imageio, npy};
use gpujobs_core::BufferPool;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

fn write_npy(path: &Path, n: usize) {
    let mut v = vec![0f32; n];
    gpujobs_core::model::synth::fill_uniform(&mut v, 7, 0, -1.0, 1.0);
    npy::write(path, &[n], &v).expect("write npy");
}

/// An RGBA photo-like image (smooth gradients plus noise) whose PNG is ~64 MB.
fn write_png(path: &Path, side: u32) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let img = image::RgbaImage::from_fn(side, side, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state & 0xff) as u8;
        image::Rgba([
            (x * 255 / side) as u8 ^ noise,
            (y * 255 / side) as u8,
            noise,
            255,
        ])
    });
    img.save(path).expect("write png");
}

fn host_io(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let npy_path = dir.path().join("a.npy");
    let n = 50_000_000;
    write_npy(&npy_path, n);
    let png_path = dir.path().join("photo.png");
    write_png(&png_path, 4096);
    let png_mb = std::fs::metadata(&png_path).map_or(0, |m| m.len()) as f64 / 1e6;
    eprintln!("png file: {png_mb:.1} MB");
    let pool = BufferPool::new(2 << 30);

    let mut g = c.benchmark_group("host_io_npy_200MB");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Bytes(4 * n as u64));
    g.bench_function("pooled", |b| {
        b.iter(|| black_box(npy::read(&npy_path, &pool).expect("reads")))
    });
    g.bench_function("plain_vec", |b| {
        b.iter(|| black_box(std::fs::read(&npy_path).expect("reads")))
    });
    g.finish();

    let mut g = c.benchmark_group("host_io_png_64MB");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(4096 * 4096));
    g.bench_function("pooled_gray", |b| {
        b.iter(|| black_box(imageio::read(&png_path, &pool).expect("decodes")))
    });
    g.bench_function("plain_decode", |b| {
        b.iter(|| black_box(image::open(&png_path).expect("decodes")))
    });
    g.finish();
}

criterion_group!(benches, host_io);
criterion_main!(benches);
