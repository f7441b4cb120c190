//! The MLP from the command line as a user keeps it: refusals of data that would ruin
//! training (NaN, labels that overflow), divergence reported as such, held-out figures,
//! a saved model, and `mlp-predict` on it; and the check that says when it is skipped.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use std::path::Path;

/// Two well-separated classes in 3 features, labels as int64 (numpy's default).
fn blobs(dir: &Path, n: usize) -> (std::path::PathBuf, std::path::PathBuf, Vec<f32>) {
    let (x, y) = (p(dir, "X.npy"), p(dir, "y.npy"));
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..n {
        let c = (i % 2) as f32;
        let jitter = ((i * 37) % 100) as f32 / 500.0;
        xs.extend_from_slice(&[c * 2.0 - 1.0 + jitter, 1.0 - c * 2.0 - jitter, jitter]);
        ys.extend_from_slice(&((i % 2) as i64).to_le_bytes());
    }
    f32_npy(&x, &[n, 3], &xs);
    write_npy(&y, "<i8", &[n], &ys);
    (x, y, xs)
}

#[test]
fn a_nan_feature_is_refused_with_its_row_and_column() {
    let dir = tmp();
    let (x, y, mut xs) = blobs(dir.path(), 50);
    xs[7 * 3 + 2] = f32::NAN;
    f32_npy(&x, &[50, 3], &xs);
    refused(
        &[
            "run",
            "mlp-train",
            "--x",
            s(&x),
            "--y",
            s(&y),
            "--epochs",
            "1",
        ],
        "x holds NaN at row 7, column 2",
    );
}

#[test]
fn a_huge_label_is_named_not_a_valid_one() {
    let dir = tmp();
    let (x, y, _) = blobs(dir.path(), 6);
    f32_npy(&y, &[6], &[0.0, 1.0, 2.0, 3e38, 1.0, 0.0]);
    refused(
        &[
            "run",
            "mlp-train",
            "--x",
            s(&x),
            "--y",
            s(&y),
            "--epochs",
            "1",
        ],
        "label 300000000000000000000000000000000000000 at row 3",
    );
}

#[test]
fn divergence_is_reported_as_such_with_valid_json_and_the_job_failure_code() {
    let dir = tmp();
    let (x, y, _) = blobs(dir.path(), 200);
    let o = gpujobs(&[
        "run",
        "mlp-train",
        "--x",
        s(&x),
        "--y",
        s(&y),
        "--hidden",
        "16",
        "--epochs",
        "5",
        "--lr",
        "1e30",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&o)));
    assert_eq!(v["status"], "failed", "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("training diverged at epoch"), "{error}");
    assert!(error.contains("lower the learning rate"), "{error}");
    assert!(stderr(&o).contains("training diverged"), "{}", stderr(&o));
}

#[test]
fn held_out_figures_a_saved_model_and_predictions_from_it() {
    let dir = tmp();
    let (x, y, xs) = blobs(dir.path(), 400);
    let model = p(dir.path(), "m.safetensors");
    let o = gpujobs(&[
        "run",
        "mlp-train",
        "--x",
        s(&x),
        "--y",
        s(&y),
        "--hidden",
        "16",
        "--epochs",
        "4",
        "--batch",
        "32",
        "--val-split",
        "0.25",
        "--save-model",
        s(&model),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let epochs = v["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 4);
    for e in epochs {
        assert!(e["test_loss"].as_f64().unwrap().is_finite(), "{e}");
        assert!(e["test_accuracy"].as_f64().unwrap() <= 1.0, "{e}");
    }
    assert!(epochs[3]["test_accuracy"].as_f64().unwrap() >= 0.9, "{v}");
    assert_eq!(v["check"]["passed"], true, "{v}");
    assert_eq!(v["saved"][0], s(&model));
    // The same model predicts: probabilities that sum to 1 and labels that agree with them.
    let (probs, labels) = (p(dir.path(), "probs.npy"), p(dir.path(), "labels.npy"));
    let o = gpujobs(&[
        "run",
        "mlp-predict",
        "--model",
        s(&model),
        "--x",
        s(&x),
        "--out",
        s(&probs),
        "--labels-out",
        s(&labels),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["check"]["passed"], true, "{v}");
    let probs = read_f32_npy(&probs);
    assert_eq!(probs.len(), 400 * 2);
    let bytes = std::fs::read(&labels).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert!(
        std::str::from_utf8(&bytes[10..10 + header_len])
            .unwrap()
            .contains("'<i8'")
    );
    let labels: Vec<i64> = bytes[10 + header_len..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut right = 0;
    for (i, (p, &l)) in probs.chunks(2).zip(&labels).enumerate() {
        assert!((p[0] + p[1] - 1.0).abs() < 1e-5, "row {i}: {p:?}");
        assert_eq!(l, i64::from(p[1] > p[0]), "row {i}: {p:?}");
        right += usize::from(l == (i % 2) as i64);
    }
    assert!(right >= 360, "{right} of 400 right");
    // A model that does not fit the inputs is refused before anything runs.
    let wide = p(dir.path(), "wide.npy");
    f32_npy(&wide, &[2, 4], &xs[..8]);
    refused(
        &["run", "mlp-predict", "--model", s(&model), "--x", s(&wide)],
        "x has 4 features per row but the model takes 3",
    );
    let junk = p(dir.path(), "junk.safetensors");
    std::fs::write(&junk, b"not a model").unwrap();
    refused(
        &["run", "mlp-predict", "--model", s(&junk), "--x", s(&x)],
        "not a safetensors file",
    );
}

#[test]
fn a_skipped_check_says_so_in_text_and_json() {
    let dir = tmp();
    // Above the full check's size, with a NaN: no cheap check can judge it.
    let (a, b) = (p(dir.path(), "a.npy"), p(dir.path(), "b.npy"));
    let mut av = vec![0.5f32; 520 * 520];
    av[3] = f32::NAN;
    f32_npy(&a, &[520, 520], &av);
    f32_npy(&b, &[520, 520], &vec![0.25f32; 520 * 520]);
    let o = gpujobs(&["run", "matmul", "--a", s(&a), "--b", s(&b)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("check    skipped ("), "{}", stdout(&o));
    let o = gpujobs(&["run", "matmul", "--a", s(&a), "--b", s(&b), "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(
        v["check"]["skipped"]
            .as_str()
            .unwrap()
            .contains("NaN or inf"),
        "{v}"
    );
}
