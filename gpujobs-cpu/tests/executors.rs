//! Every built-in kind through the registry's type-erased executors, as a worker runs
//! them, checked against the reference; and bad input failing cleanly.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use gpujobs_core::kinds::{
    FilterOp, ImageFilter, Matmul, MlpData, MlpModel, MlpPredict, MlpTestData, MlpTrain,
    MlpTrainOutput, VectorAdd,
};
use gpujobs_core::{
    DeviceClass, ErrorClass, ExecContext, Job, JobEnvelope, Limits, Registry, Tensor,
};

fn limits() -> Limits {
    Limits::with_max_bytes(4 << 30)
}

async fn run_and_check<J: Job>(registry: &Registry, job: J) -> J::Output {
    let env = JobEnvelope::new(job.clone()).expect("envelope");
    let exec = registry
        .executor(J::KIND, DeviceClass::Cpu)
        .expect("cpu executor registered");
    let result = exec
        .execute(&env.payload, &env.blobs, &ExecContext::standalone(limits()))
        .await
        .expect("job runs");
    assert!(result.timings.compute_s > 0.0);
    assert_eq!(result.device.class, DeviceClass::Cpu);
    let check = registry
        .check(J::KIND, &env.payload, &env.blobs, &result)
        .expect("decodes")
        .expect("kind has a check");
    assert!(check.passed(), "{} {}: {check}", J::KIND, job.size_label());
    result.decode::<J::Output>().expect("output decodes")
}

#[tokio::test]
async fn every_kind_matches_the_reference() {
    let r = gpujobs_cpu::registry();
    run_and_check(&r, VectorAdd::synthetic(100_003, 1)).await;
    run_and_check(&r, Matmul::synthetic(67, 129, 31, 2)).await;
    run_and_check(&r, Matmul::synthetic(512, 512, 512, 3)).await;
    run_and_check(
        &r,
        ImageFilter::synthetic(123, 77, FilterOp::GaussianBlur { sigma: 2.0 }, 4),
    )
    .await;
    run_and_check(&r, ImageFilter::synthetic(64, 200, FilterOp::Sobel, 5)).await;
    let mut mlp = MlpTrain::synthetic(600, 12, 5, 32, 6);
    mlp.batch = 50;
    mlp.epochs = 4;
    run_and_check(&r, mlp).await;
    // Held-out figures after every epoch, against the reference's.
    let mut held = MlpTrain::synthetic(500, 12, 4, 40, 8);
    held.batch = 64;
    held.epochs = 3;
    held.hidden = vec![40, 17];
    let test = MlpTrain::synthetic(301, 12, 4, 40, 9).dataset().unwrap();
    held.test = Some(MlpTestData {
        x: Tensor::from_values(vec![301, 12], test.x.to_vec()).unwrap(),
        y: Tensor::from_values(
            vec![301],
            test.y.iter().map(|&c| c as f32).collect::<Vec<_>>(),
        )
        .unwrap(),
    });
    let out = run_and_check(&r, held).await;
    assert!(out.epochs.iter().all(|e| e.test_accuracy.is_some()));
    // Predictions in several batches (more rows than one batch holds), 1 to 3 layers.
    for (rows, dims) in [
        (1, vec![3, 2]),
        (4097, vec![20, 33, 5]),
        (9000, vec![7, 64, 31, 3]),
    ] {
        let out = run_and_check(&r, MlpPredict::synthetic(rows, &dims, rows as u64)).await;
        assert_eq!(out.probs.shape(), &[rows, *dims.last().unwrap()]);
    }
}

/// The kernels that digest their output while writing it give exactly the fingerprint
/// of the finished output, at sizes whose strips and rows do not line up with blocks.
#[tokio::test]
async fn fingerprints_made_while_writing_equal_those_of_the_output() {
    let r = gpujobs_cpu::registry();
    let image = || Tensor::synthetic(vec![777, 1029], 3, 0.0, 1.0);
    let jobs = [
        JobEnvelope::new(VectorAdd::synthetic(1_000_003, 2)).unwrap(),
        JobEnvelope::new(ImageFilter {
            image: image(),
            filter: FilterOp::GaussianBlur { sigma: 2.0 },
        })
        .unwrap(),
        JobEnvelope::new(ImageFilter {
            image: image(),
            filter: FilterOp::Sobel,
        })
        .unwrap(),
    ];
    for env in jobs {
        let exec = r.executor(&env.kind, DeviceClass::Cpu).unwrap();
        let result = exec
            .execute(&env.payload, &env.blobs, &ExecContext::standalone(limits()))
            .await
            .unwrap();
        let out = result.blobs.get("t0").expect("one output blob");
        assert_eq!(
            result.fingerprint,
            gpujobs_core::Fingerprint::of(out),
            "{}",
            env.kind
        );
    }
}

#[tokio::test]
async fn a_trained_model_predicts_what_it_learned() {
    let r = gpujobs_cpu::registry();
    let mut job = MlpTrain::synthetic(2048, 20, 4, 64, 11);
    job.batch = 64;
    job.epochs = 5;
    let data = job.dataset().unwrap();
    let trained: MlpTrainOutput = run_and_check(&r, job).await;
    // Through the file form and back, as `--save-model` and `--model` do.
    let model = MlpModel::from_safetensors(&trained.model().to_safetensors().unwrap()).unwrap();
    let x = Tensor::from_values(vec![2048, 20], data.x.to_vec()).unwrap();
    let out = run_and_check(&r, MlpPredict { model, x }).await;
    let labels = out.labels.values().unwrap();
    let right = labels
        .iter()
        .zip(&data.y)
        .filter(|(p, y)| **p == **y as f32)
        .count();
    let accuracy = right as f64 / 2048.0;
    let last = trained.epochs.last().unwrap().accuracy;
    // The epoch's accuracy is measured during the epoch, before the last updates.
    assert!(
        accuracy >= 0.9 && (accuracy - last).abs() < 0.05,
        "{accuracy} vs {last}"
    );
}

#[tokio::test]
async fn training_that_diverges_fails_with_the_reason() {
    let r = gpujobs_cpu::registry();
    let mut job = MlpTrain::synthetic(512, 8, 3, 16, 2);
    job.lr = 1e30;
    job.epochs = 4;
    let env = JobEnvelope::new(job).unwrap();
    let err = r
        .executor("mlp-train", DeviceClass::Cpu)
        .unwrap()
        .execute(&env.payload, &env.blobs, &ExecContext::standalone(limits()))
        .await
        .expect_err("diverges");
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(err.message.contains("training diverged at epoch"), "{err}");
}

#[tokio::test]
async fn real_tensors_travel_as_blobs_and_come_back() {
    let r = gpujobs_cpu::registry();
    let a = Tensor::from_values(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let b = Tensor::from_values(vec![3, 2], vec![7., 8., 9., 10., 11., 12.]).unwrap();
    let out = run_and_check(&r, Matmul { a, b }).await;
    assert_eq!(&*out.c.values().unwrap(), &[58., 64., 139., 154.]);
}

#[tokio::test]
async fn mlp_learns_separable_data() {
    let r = gpujobs_cpu::registry();
    let mut job = MlpTrain::synthetic(2048, 20, 4, 64, 11);
    job.batch = 64;
    job.epochs = 5;
    let out: MlpTrainOutput = run_and_check(&r, job).await;
    let first = out.epochs.first().unwrap();
    let last = out.epochs.last().unwrap();
    assert!(
        last.loss < first.loss,
        "loss did not decrease: {:?}",
        out.epochs
    );
    assert!(
        last.accuracy >= 0.9,
        "accuracy {:.3} < 0.9: {:?}",
        last.accuracy,
        out.epochs
    );
    assert_eq!(out.weights.len(), 2);
    assert_eq!(out.weights[0].shape(), &[20, 64]);
}

#[tokio::test]
async fn bad_input_fails_the_job_permanently_without_panicking() {
    let r = gpujobs_cpu::registry();
    let exec = r.executor("matmul", DeviceClass::Cpu).unwrap();
    let ctx = ExecContext::standalone(limits());
    let cases = [
        serde_json::json!({"a": {"shape": [2, 3], "synthetic": {"seed": 1}}, "b": {"shape": [4, 2], "synthetic": {"seed": 2}}}),
        serde_json::json!({"a": {"shape": [0, 3], "synthetic": {"seed": 1}}, "b": {"shape": [3, 2], "synthetic": {"seed": 2}}}),
        serde_json::json!({"a": {"shape": [1000000, 1000000], "synthetic": {"seed": 1}}, "b": {"shape": [1000000, 1000000], "synthetic": {"seed": 2}}}),
        serde_json::json!({"a": {"shape": [2, 2], "data": [1, 2, 3]}, "b": {"shape": [2, 2], "data": [1, 2, 3, 4]}}),
        serde_json::json!({"a": "garbage"}),
    ];
    for payload in cases {
        let err = exec
            .execute(&payload, &Default::default(), &ctx)
            .await
            .expect_err("must fail");
        assert_eq!(err.class, ErrorClass::Permanent, "{err}");
        assert!(!err.message.is_empty());
    }
    let blur = r.executor("image-filter", DeviceClass::Cpu).unwrap();
    let nan_sigma = serde_json::json!({"image": {"shape": [4, 4], "synthetic": {"seed": 1}}, "filter": {"op": "gaussian-blur", "sigma": -1.0}});
    let err = blur
        .execute(&nan_sigma, &Default::default(), &ctx)
        .await
        .expect_err("must fail");
    assert!(err.message.contains("sigma"), "{err}");
    let mlp = r.executor("mlp-train", DeviceClass::Cpu).unwrap();
    let mut job = MlpTrain::synthetic(3, 2, 2, 4, 1);
    job.data = MlpData::Tensors {
        x: Tensor::from_values(vec![3, 2], vec![0.0; 6]).unwrap(),
        y: Tensor::from_values(vec![3], vec![0.0, 1.0, 7.0]).unwrap(),
    };
    let env = JobEnvelope::new(job).unwrap();
    let err = mlp
        .execute(&env.payload, &env.blobs, &ctx)
        .await
        .expect_err("labels out of range");
    assert!(err.message.contains("label 7"), "{err}");
}

/// The output of `job` run through a CPU backend whose pool hands out recycled
/// buffers full of NaN (what an earlier job could have left), next to the plain
/// kernel's output in fresh memory.
async fn pooled_and_fresh<J: Job>(job: J, fresh: Vec<f32>) {
    use gpujobs_core::BufferPool;
    let pool = BufferPool::new(1 << 30);
    let n = fresh.len();
    // Leave garbage in buffers of the output's size (and of the inputs', if synthetic).
    let dirty: Vec<_> = (0..4)
        .map(|_| {
            let mut b = pool.take(n).unwrap();
            b.fill(f32::NAN);
            b
        })
        .collect();
    drop(dirty);
    let r = Registry::for_backend(&gpujobs_cpu::CpuExecutor::with_pool(pool.clone()));
    let env = JobEnvelope::new(job).unwrap();
    let exec = r.executor(J::KIND, DeviceClass::Cpu).unwrap();
    let result = exec
        .execute(&env.payload, &env.blobs, &ExecContext::standalone(limits()))
        .await
        .unwrap();
    assert!(pool.stats().hits > 0, "the recycled buffers were used");
    let out = result.blobs.values().next().expect("one output blob");
    assert!(out.buf().is_page_aligned() && out.buf().is_pooled());
    let same = out
        .iter()
        .zip(&fresh)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(
        same && out.len() == n,
        "{} differs from fresh memory",
        J::KIND
    );
}

#[tokio::test]
async fn pooled_outputs_are_bit_identical_to_fresh_ones() {
    use gpujobs_cpu::ops;
    let vals = |n: usize, seed: u64| -> Vec<f32> {
        let mut v = vec![0f32; n];
        gpujobs_core::model::synth::fill_uniform(&mut v, seed, 0, -1.0, 1.0);
        v
    };
    let t = |shape: Vec<usize>, v: &[f32]| Tensor::from_values(shape, v.to_vec()).unwrap();
    let (a, b) = (vals(300_001, 1), vals(300_001, 2));
    let job = VectorAdd {
        a: t(vec![a.len()], &a),
        b: t(vec![b.len()], &b),
    };
    pooled_and_fresh(job, ops::vector_add(&a, &b)).await;
    let (a, b) = (vals(300 * 200, 3), vals(200 * 250, 4));
    let job = Matmul {
        a: t(vec![300, 200], &a),
        b: t(vec![200, 250], &b),
    };
    pooled_and_fresh(job, ops::matmul(&a, &b, 300, 200, 250)).await;
    let img = vals(257 * 301, 5);
    let blur = ImageFilter {
        image: t(vec![257, 301], &img),
        filter: FilterOp::GaussianBlur { sigma: 1.5 },
    };
    pooled_and_fresh(blur, ops::gaussian_blur(&img, 257, 301, 1.5)).await;
    let sobel = ImageFilter {
        image: t(vec![257, 301], &img),
        filter: FilterOp::Sobel,
    };
    pooled_and_fresh(sobel, ops::sobel_magnitude(&img, 257, 301)).await;
}
