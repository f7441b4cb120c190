//! The CUDA backend on a real GPU (feature `cuda`; run by `scripts/gpu-check.sh` on a
//! GPU machine). Every kind against the f64 reference at sizes that are not multiples of
//! any tile, synthetic data bit-identical to the host's, and errors that fail one job
//! while the device keeps serving.
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use gpujobs_core::kinds::{
    FilterOp, ImageFilter, Matmul, MlpPredict, MlpTestData, MlpTrain, VectorAdd, VectorAddOutput,
};
use gpujobs_core::{
    DeviceClass, ErrorClass, ExecContext, Job, JobEnvelope, Limits, Registry, Tensor,
};

fn registry() -> Registry {
    let exec = gpujobs_cuda::devices().expect("a CUDA device").remove(0);
    let mut r = Registry::with_builtin_kinds();
    gpujobs_cuda::register(&mut r, &exec);
    r
}

fn ctx() -> ExecContext {
    ExecContext::standalone(Limits::with_max_bytes(64 << 30))
}

async fn check<J: Job>(r: &Registry, job: J) {
    let env = JobEnvelope::new(job.clone()).unwrap();
    let exec = r.executor(J::KIND, DeviceClass::Gpu).unwrap();
    let result = exec
        .execute(&env.payload, &env.blobs, &ctx())
        .await
        .unwrap_or_else(|e| panic!("{} {}: {e}", J::KIND, job.size_label()));
    assert_eq!(result.device.class, DeviceClass::Gpu);
    let c = r
        .check(J::KIND, &env.payload, &env.blobs, &result)
        .unwrap()
        .unwrap();
    assert!(c.passed(), "{} {}: {c}", J::KIND, job.size_label());
}

#[tokio::test]
async fn every_kind_matches_the_reference_at_awkward_sizes() {
    let r = registry();
    for n in [1, 3, 4, 1_000_003] {
        check(&r, VectorAdd::synthetic(n, n as u64)).await;
    }
    for (m, k, n) in [
        (1, 1, 1),
        (7, 13, 5),
        (129, 67, 33),
        (128, 128, 128),
        (257, 260, 252),
        (300, 1, 500),
        (1, 300, 1),
    ] {
        check(&r, Matmul::synthetic(m, k, n, (m * k * n) as u64)).await;
    }
    for (h, w) in [(1, 1), (1, 7), (7, 1), (2, 3), (37, 101), (300, 257)] {
        for sigma in [0.5f32, 2.0, 7.0, 50.0, 1000.0] {
            check(
                &r,
                ImageFilter::synthetic(h, w, FilterOp::GaussianBlur { sigma }, 9),
            )
            .await;
        }
        check(&r, ImageFilter::synthetic(h, w, FilterOp::Sobel, 10)).await;
    }
    let mut mlp = MlpTrain::synthetic(1000, 12, 5, 33, 6);
    mlp.batch = 97;
    mlp.epochs = 3;
    check(&r, mlp).await;
    let mut deep = MlpTrain::synthetic(777, 20, 3, 64, 7);
    deep.hidden = vec![64, 31];
    deep.batch = 128;
    check(&r, deep).await;
    // Held-out figures after every epoch, against the reference's.
    let mut held = MlpTrain::synthetic(900, 12, 4, 40, 8);
    held.batch = 100;
    held.epochs = 3;
    let test = MlpTrain::synthetic(301, 12, 4, 40, 9).dataset().unwrap();
    held.test = Some(MlpTestData {
        x: Tensor::from_values(vec![301, 12], test.x.to_vec()).unwrap(),
        y: Tensor::from_values(
            vec![301],
            test.y.iter().map(|&c| c as f32).collect::<Vec<_>>(),
        )
        .unwrap(),
    });
    check(&r, held).await;
}

#[tokio::test]
async fn predictions_match_the_reference_at_awkward_sizes() {
    // Registered by hand: outside this check the executor is opt-in (GPUJOBS_CUDA_UNVERIFIED).
    let exec = gpujobs_cuda::devices().expect("a CUDA device").remove(0);
    let mut r = Registry::with_builtin_kinds();
    r.register::<MlpPredict, _>(&exec.device_info(), exec.clone());
    for (rows, dims) in [
        (1, vec![3, 2]),
        (4097, vec![20, 33, 5]),
        (5000, vec![7, 64, 31, 3]),
        (9000, vec![100, 257, 10]),
    ] {
        check(&r, MlpPredict::synthetic(rows, &dims, rows as u64)).await;
    }
}

#[tokio::test]
async fn synthetic_data_is_bit_identical_to_the_host() {
    let r = registry();
    let n = 100_003;
    let a = Tensor::synthetic(vec![n], 42, -3.0, 5.0);
    let job = VectorAdd {
        a: a.clone(),
        b: Tensor::from_values(vec![n], vec![0.0; n]).unwrap(),
    };
    let env = JobEnvelope::new(job).unwrap();
    let exec = r.executor("vector-add", DeviceClass::Gpu).unwrap();
    let result = exec
        .execute(&env.payload, &env.blobs, &ctx())
        .await
        .unwrap();
    let out: VectorAddOutput = result.decode().unwrap();
    let host = a.values().unwrap();
    let dev = out.c.values().unwrap();
    assert!(
        host.iter()
            .zip(dev.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
}

#[tokio::test]
async fn a_job_too_large_for_the_device_fails_and_the_device_keeps_serving() {
    let r = registry();
    let exec = r.executor("matmul", DeviceClass::Gpu).unwrap();
    let huge = JobEnvelope::new(Matmul::synthetic(200_000, 200_000, 8, 1)).unwrap();
    // Host limits far above the device's memory, so the device admission is what refuses.
    let ctx = ExecContext::standalone(Limits::with_max_bytes(1 << 50));
    let err = exec
        .execute(&huge.payload, &huge.blobs, &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert!(err.message.contains("device memory"), "{err}");
    check(&r, Matmul::synthetic(64, 64, 64, 2)).await;
}
