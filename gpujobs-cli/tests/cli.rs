//! The `gpujobs` binary end to end: `demo`, `run` with synthetic inputs and with .npy
//! and PNG files written here, and the refusals of bad input (exit code 2, one line).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;

#[test]
fn demo_runs_every_kind_and_matches_the_reference() {
    let o = gpujobs(&["demo", "--quick"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    for kind in [
        "vector-add",
        "matmul",
        "image-filter",
        "mlp-train",
        "mlp-predict",
    ] {
        assert!(out.contains(kind), "{out}");
    }
    assert_eq!(out.matches(" yes (").count(), 8, "{out}");
    assert!(
        out.contains("queue wait") && out.contains("compute"),
        "{out}"
    );
}

#[test]
fn run_json_reports_timings_and_the_check() {
    let o = gpujobs(&[
        "run", "matmul", "--m", "37", "--k", "53", "--n", "29", "--device", "cpu", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["device"]["class"], "cpu");
    assert_eq!(v["check"]["passed"], true);
    for key in ["queue_wait_s", "h2d_s", "compute_s", "d2h_s", "total_s"] {
        assert!(v["timings"][key].as_f64().is_some(), "missing {key}: {v}");
    }
    assert!(v["timings"]["compute_s"].as_f64().unwrap() > 0.0);
    assert!(
        v["timings"]["total_s"].as_f64().unwrap() >= v["timings"]["compute_s"].as_f64().unwrap()
    );
}

#[test]
fn matmul_and_vector_add_on_npy_files() {
    let dir = tmp();
    let (a, b, c) = (
        p(dir.path(), "a.npy"),
        p(dir.path(), "b.npy"),
        p(dir.path(), "c.npy"),
    );
    f32_npy(&a, &[2, 3], &[1., 2., 3., 4., 5., 6.]);
    // b as float64: converted with a warning.
    let b64: Vec<u8> = [7f64, 8., 9., 10., 11., 12.]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_npy(&b, "<f8", &[3, 2], &b64);
    let o = gpujobs(&["run", "matmul", "--a", s(&a), "--b", s(&b), "--out", s(&c)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("converted from dtype <f8"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read_f32_npy(&c), vec![58., 64., 139., 154.]);

    let (x, y, z) = (
        p(dir.path(), "x.npy"),
        p(dir.path(), "y.npy"),
        p(dir.path(), "z.npy"),
    );
    let xs: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5).collect();
    let ys: Vec<f32> = (0..1000).map(|i| 1.0 - i as f32).collect();
    f32_npy(&x, &[1000], &xs);
    f32_npy(&y, &[1000], &ys);
    let o = gpujobs(&[
        "run",
        "vector-add",
        "--a",
        s(&x),
        "--b",
        s(&y),
        "--out",
        s(&z),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expect: Vec<f32> = xs.iter().zip(&ys).map(|(a, b)| a + b).collect();
    assert_eq!(read_f32_npy(&z), expect);
}

/// Data holding NaN and inf: the right output is written and the reference check
/// passes, comparing non-finite values position by position (as numpy gives them).
#[test]
fn non_finite_inputs_pass_the_check_when_the_result_is_right() {
    let dir = tmp();
    let (a, b, c) = (
        p(dir.path(), "a.npy"),
        p(dir.path(), "b.npy"),
        p(dir.path(), "c.npy"),
    );
    f32_npy(&a, &[2, 2], &[1., f32::NAN, 3., 4.]);
    f32_npy(&b, &[2, 2], &[1., 0., 0., f32::INFINITY]);
    let o = gpujobs(&["run", "matmul", "--a", s(&a), "--b", s(&b), "--out", s(&c)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = read_f32_npy(&c);
    // numpy: [[1·1 + NaN·0, 1·0 + NaN·inf], [3·1 + 4·0, 3·0 + 4·inf]]
    //      = [[NaN, NaN], [3, inf]].
    assert!(got[0].is_nan() && got[1].is_nan(), "{got:?}");
    assert_eq!((got[2], got[3]), (3.0, f32::INFINITY));
    let (x, y, z) = (
        p(dir.path(), "x.npy"),
        p(dir.path(), "y.npy"),
        p(dir.path(), "z.npy"),
    );
    f32_npy(&x, &[3], &[f32::NAN, f32::INFINITY, 1.0]);
    f32_npy(&y, &[3], &[1.0, 1.0, 2.0]);
    let o = gpujobs(&[
        "run",
        "vector-add",
        "--a",
        s(&x),
        "--b",
        s(&y),
        "--out",
        s(&z),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["check"]["passed"], true, "{v}");
}

#[test]
fn image_filters_on_png_and_npy() {
    let dir = tmp();
    let png = p(dir.path(), "in.png");
    let img =
        image::GrayImage::from_fn(40, 30, |x, y| image::Luma([((x * 6 + y * 3) % 256) as u8]));
    img.save(&png).unwrap();
    let blurred = p(dir.path(), "blurred.png");
    let o = gpujobs(&[
        "run",
        "image-filter",
        "--op",
        "gaussian-blur",
        "--sigma",
        "2.0",
        "--input",
        s(&png),
        "--out",
        s(&blurred),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = image::open(&blurred).unwrap();
    assert_eq!((out.width(), out.height()), (40, 30));

    let edges = p(dir.path(), "edges.png");
    let o = gpujobs(&[
        "run",
        "image-filter",
        "--op",
        "sobel",
        "--input",
        s(&png),
        "--out",
        s(&edges),
        "--normalize",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        image::open(&edges)
            .unwrap()
            .to_luma8()
            .pixels()
            .any(|p| p.0[0] == 255)
    );

    // A constant .npy image stays constant under blur, exactly in f32 up to rounding.
    let flat = p(dir.path(), "flat.npy");
    let flat_out = p(dir.path(), "flat_out.npy");
    f32_npy(&flat, &[9, 11], &[0.25; 99]);
    let o = gpujobs(&[
        "run",
        "image-filter",
        "--sigma",
        "1.5",
        "--input",
        s(&flat),
        "--out",
        s(&flat_out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = read_f32_npy(&flat_out);
    assert_eq!(v.len(), 99);
    assert!(v.iter().all(|x| (x - 0.25).abs() < 1e-6), "{v:?}");
}

#[test]
fn mlp_on_npy_files_with_integer_labels() {
    let dir = tmp();
    let (x, y) = (p(dir.path(), "X.npy"), p(dir.path(), "y.npy"));
    // Two well-separated blobs in 3 features.
    let n = 400;
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
        "--batch",
        "32",
        "--lr",
        "0.1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let epochs = v["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 5);
    assert!(epochs[4]["accuracy"].as_f64().unwrap() >= 0.9, "{v}");
    assert!(epochs[4]["loss"].as_f64().unwrap() < epochs[0]["loss"].as_f64().unwrap());
    assert_eq!(v["check"]["passed"], true);
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    let dir = tmp();
    let a = p(dir.path(), "a.npy");
    let b = p(dir.path(), "b.npy");
    f32_npy(&a, &[2, 3], &[0.0; 6]);
    f32_npy(&b, &[4, 2], &[0.0; 8]);
    refused(
        &["run", "matmul", "--a", s(&a), "--b", s(&b)],
        "inner dimensions",
    );
    let empty = p(dir.path(), "empty.npy");
    f32_npy(&empty, &[0, 3], &[]);
    refused(&["run", "matmul", "--a", s(&empty), "--b", s(&b)], "empty");
    let complex = p(dir.path(), "complex.npy");
    write_npy(&complex, "<c8", &[2], &[0u8; 16]);
    refused(
        &["run", "vector-add", "--a", s(&complex), "--b", s(&complex)],
        "dtype `<c8`",
    );
    refused(&["run", "vector-add", "--a", s(&a), "--b", s(&a)], "1-D");
    let truncated = p(dir.path(), "truncated.npy");
    write_npy(&truncated, "<f4", &[100, 100], &[0u8; 40]);
    refused(
        &["run", "matmul", "--a", s(&truncated), "--b", s(&truncated)],
        "truncated",
    );
    refused(
        &["run", "matmul", "--a", "/nonexistent/a.npy", "--b", s(&b)],
        "No such file",
    );
    for sigma in ["nan", "0", "-1"] {
        refused(
            &[
                "run",
                "image-filter",
                "--width",
                "8",
                "--height",
                "8",
                "--sigma",
                sigma,
            ],
            "sigma",
        );
    }
    refused(
        &[
            "run", "matmul", "--m", "1000000", "--k", "1000000", "--n", "1000000",
        ],
        "memory",
    );
    refused(
        &[
            "run",
            "image-filter",
            "--width",
            "3000000",
            "--height",
            "3000000",
        ],
        "memory",
    );
    let x = p(dir.path(), "x.npy");
    let y = p(dir.path(), "y.npy");
    f32_npy(&x, &[3, 2], &[0.0; 6]);
    f32_npy(&y, &[3], &[0.0, 1.0, 7.0]);
    refused(
        &[
            "run",
            "mlp-train",
            "--x",
            s(&x),
            "--y",
            s(&y),
            "--classes",
            "3",
        ],
        "label 7",
    );
    let garbage = p(dir.path(), "garbage.png");
    std::fs::write(&garbage, b"definitely not a png").unwrap();
    refused(
        &["run", "image-filter", "--input", s(&garbage)],
        "garbage.png",
    );
    refused(
        &["run", "matmul", "--device", "tpu"],
        "invalid value 'tpu' for '--device <DEVICE>'; [possible values: auto, cpu, gpu, cuda]",
    );
}

#[test]
fn cuda_requested_without_a_gpu_is_refused() {
    let o = gpujobs(&["run", "vector-add", "--len", "10", "--device", "cuda"]);
    // Built without CUDA (the default), or with CUDA on a machine without a GPU.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no GPU available"), "{}", stderr(&o));
}

#[test]
fn help_explains_each_command() {
    let o = gpujobs(&["--help"]);
    assert!(o.status.success());
    let h = stdout(&o);
    assert!(h.contains("demo") && h.contains("run"), "{h}");
    let o = gpujobs(&["run", "image-filter", "--help"]);
    assert!(
        stdout(&o).contains("reflect") || stdout(&o).contains("OpenCV"),
        "{}",
        stdout(&o)
    );
}

/// `--help` lists the values `--device` and `--priority` take; a usage error is one
/// line that keeps clap's suggestion.
#[test]
fn help_lists_choices_and_usage_errors_keep_the_suggestion() {
    let h = stdout(&gpujobs(&["submit", "--help"]));
    assert!(h.contains("[possible values: auto, cpu, gpu, cuda]"), "{h}");
    assert!(h.contains("[possible values: high, normal, low]"), "{h}");
    let h = stdout(&gpujobs(&["run", "--help"]));
    assert!(h.contains("[possible values: auto, cpu, gpu, cuda]"), "{h}");
    let o = gpujobs(&["worker", "--lese", "30s"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("unexpected argument '--lese'") && err.contains("'--lease'"),
        "{err}"
    );
}

/// Durations and sizes in one spelling everywhere, the old ones still accepted: a bad
/// value is refused with the accepted forms.
#[test]
fn durations_and_sizes_take_units_and_old_spellings() {
    for (args, needle) in [
        (
            &["worker", "--lease", "soon"][..],
            "not a duration (say 500ms, 2s",
        ),
        (&["worker", "--cache", "lots"], "is not a byte count"),
        (
            &["submit", "vector-add", "--timeout", "0s"],
            "must be above zero",
        ),
        (&["wait", "x", "--timeout", "forever"], "not a duration"),
    ] {
        let o = gpujobs(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    // New and old spellings parse (`--help` after them: nothing runs).
    for args in [
        &[
            "worker",
            "--lease",
            "30s",
            "--grace",
            "500ms",
            "--cache",
            "64MiB",
            "--light-below",
            "2ms",
            "--help",
        ][..],
        &[
            "worker",
            "--lease",
            "30",
            "--cache-mib",
            "64",
            "--light-below-ms",
            "2",
            "--help",
        ],
        &[
            "scheduler",
            "--locality-wait",
            "1.5s",
            "--take",
            "64",
            "--help",
        ],
        &[
            "scheduler",
            "--locality-wait-ms",
            "1500",
            "--batch",
            "64",
            "--help",
        ],
        &[
            "submit",
            "--max-entry-bytes",
            "1MiB",
            "--offload-above",
            "4M",
            "--job-timeout",
            "10m",
            "--help",
        ],
    ] {
        let o = gpujobs(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    // The old names are hidden from --help, the new ones shown.
    let h = stdout(&gpujobs(&["worker", "--help"]));
    assert!(
        h.contains("--cache <CACHE>") && !h.contains("--cache-mib"),
        "{h}"
    );
    assert!(
        h.contains("--light-below") && !h.contains("--light-below-ms"),
        "{h}"
    );
}

/// Shell completions and the man page come from the same definitions as the parser.
#[test]
fn completions_and_man_page_are_generated() {
    let o = gpujobs(&["completions", "bash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bash = stdout(&o);
    assert!(
        bash.contains("_gpujobs()") && bash.contains("--offload-above"),
        "{bash}"
    );
    for shell in ["zsh", "fish"] {
        let o = gpujobs(&["completions", shell]);
        assert!(
            o.status.success() && stdout(&o).contains("worker"),
            "{shell}"
        );
    }
    let o = gpujobs(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(
        page.starts_with(".ie") || page.contains(".TH gpujobs"),
        "{page}"
    );
    assert!(page.contains("submit") && page.contains("worker"), "{page}");
    let dir = tmp();
    let o = gpujobs(&["man", "--out-dir", s(dir.path())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("gpujobs.1").exists());
    assert!(dir.path().join("gpujobs-worker.1").exists());
}

/// `simulate --json` (no Redis needed) is one JSON object.
#[test]
fn simulate_prints_json() {
    let o = gpujobs(&["simulate", "--seeds", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(
        v["policies"].as_array().is_some_and(|p| p.len() >= 3),
        "{v}"
    );
}

/// A password in GPUJOBS_REDIS_URL never shows in --help (clap prints env values).
#[test]
fn help_does_not_print_the_redis_password() {
    for cmd in ["worker", "scheduler", "submit", "status"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_gpujobs"))
            .args([cmd, "--help"])
            .env(
                "GPUJOBS_REDIS_URL",
                "redis://user:s3cret-pw@redis.example:6379",
            )
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
        let text = stdout(&o);
        assert!(text.contains("GPUJOBS_REDIS_URL"), "{cmd}: {text}");
        assert!(
            !text.contains("s3cret-pw"),
            "{cmd} --help printed the password"
        );
    }
}

/// `submit` refuses an input file over the queue's blob limit (512 MiB as float32) from
/// its header, before reading its data or reaching Redis: a client never loads what the
/// queue would refuse.
#[test]
fn submit_refuses_an_input_over_the_blob_limit_from_its_header() {
    let dir = tmp();
    // 300 M uint8 values (300 MB on disk, 1.2 GB as float32); only the header is
    // written, so a reader that looked past it would say "truncated" instead.
    let big = p(dir.path(), "big.npy");
    write_npy(&big, "|u1", &[300_000_000], &[]);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gpujobs"))
        .args(["submit", "vector-add", "--a", s(&big), "--b", s(&big)])
        .env("GPUJOBS_REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("1200000000 bytes as float32, over the limit of 536870912 bytes"),
        "{err}"
    );
    // The limit is the queue's, set by GPUJOBS_MAX_BLOB_BYTES (or --max-blob-bytes).
    let small = p(dir.path(), "small.npy");
    f32_npy(&small, &[2000], &[1.0; 2000]);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gpujobs"))
        .args(["submit", "vector-add", "--a", s(&small), "--b", s(&small)])
        .env("GPUJOBS_REDIS_URL", "redis://127.0.0.1:1")
        .env("GPUJOBS_MAX_BLOB_BYTES", "4096")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("8000 bytes as float32, over the limit of 4096 bytes"),
        "{}",
        stderr(&o)
    );
}
