//! A CUDA worker among CPU workers, as processes against a private redis-server, on the
//! simulated driver (`.ci/run sim` builds with `--features cuda` and runs this with
//! `LD_LIBRARY_PATH` at `scripts/cuda-sim.sh`'s library): pinned GPU jobs beside CPU
//! jobs, the CUDA worker killed with SIGKILL mid-run and restarted, and a filter graph
//! on the GPU lane (device pipeline on) whose result must equal the CPU's.
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{f32_npy, read_f32_npy, run_on, spawn_on, stdout, tmp};
use gpujobs_queue::testkit::RedisServer;
use std::time::{Duration, Instant};

fn ids(out: &std::process::Output) -> Vec<String> {
    assert!(out.status.success(), "{}", common::stderr(out));
    stdout(out)
        .split_whitespace()
        .map(str::to_string)
        .filter(|s| s.len() == 26)
        .collect()
}

/// A field of many job records in one pipeline (one partition).
fn states(url: &str, ids: &[&String], field: &str) -> Vec<Option<String>> {
    let prefix = gpujobs_queue::keys::Keys::new("gpujobs", 0)
        .prefix()
        .to_string();
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HGET")
            .arg(format!("{prefix}:job:{id}"))
            .arg(field);
    }
    pipe.query(&mut conn).unwrap()
}

fn status_json(url: &str, id: &str) -> serde_json::Value {
    let o = run_on(url, &["status", id, "--json"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn a_cuda_worker_serves_the_gpu_lane_beside_cpu_workers_and_survives_sigkill() {
    let server = RedisServer::start(false);
    let url = server.url();
    let _sched = spawn_on(&url, &["scheduler"]);
    let _cpu = spawn_on(&url, &["worker", "--concurrency", "2", "--lease", "1"]);
    let gpu_worker = || spawn_on(&url, &["worker", "--backend", "cuda", "--lease", "1"]);
    let mut gpu = gpu_worker();
    let kinds: [&[&str]; 3] = [
        &["vector-add", "--len", "3001"],
        &["matmul", "--m", "300", "--k", "257", "--n", "260"],
        &[
            "image-filter",
            "--op",
            "sobel",
            "--width",
            "90",
            "--height",
            "40",
        ],
    ];
    // Each kind's output fingerprint on the CPU: what every GPU copy must match.
    let want: Vec<serde_json::Value> = kinds
        .iter()
        .map(|k| {
            let mut a = vec!["run"];
            a.extend_from_slice(k);
            a.extend_from_slice(&["--device", "cpu", "--json"]);
            let o = common::gpujobs(&a);
            assert!(o.status.success(), "{}", common::stderr(&o));
            let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            v["output"]["fingerprint"].clone()
        })
        .collect();
    let mut gpu_ids: Vec<(usize, String)> = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        let mut a = vec!["submit"];
        a.extend_from_slice(k);
        a.extend_from_slice(&[
            "--device",
            "gpu",
            "--count",
            if i == 1 { "60" } else { "100" },
        ]);
        gpu_ids.extend(ids(&run_on(&url, &a)).into_iter().map(|id| (i, id)));
    }
    let cpu_ids = ids(&run_on(
        &url,
        &[
            "submit",
            "vector-add",
            "--len",
            "100",
            "--device",
            "cpu",
            "--count",
            "100",
        ],
    ));
    // SIGKILL the CUDA worker once it has finished some GPU jobs and not all.
    let start = Instant::now();
    loop {
        let all: Vec<&String> = gpu_ids.iter().map(|(_, id)| id).collect();
        let done = states(&url, &all, "state")
            .iter()
            .filter(|s| s.as_deref() == Some("succeeded"))
            .count();
        if done >= 5 {
            assert!(
                done < gpu_ids.len(),
                "every GPU job finished before the kill"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no GPU job finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = gpu.0.kill();
    let _ = gpu.0.wait();
    gpu = gpu_worker();
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in gpu_ids.iter().map(|(_, id)| id).chain(&cpu_ids) {
        loop {
            let s = status_json(&url, id);
            match s["status"].as_str() {
                Some("succeeded") => break,
                Some("queued" | "placed" | "running") if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                other => panic!("job {id} ended {other:?}: {s}"),
            }
        }
    }
    let all: Vec<&String> = gpu_ids.iter().map(|(_, id)| id).collect();
    assert!(
        states(&url, &all, "completions")
            .iter()
            .all(|c| c.as_deref() == Some("1")),
        "a GPU job completed twice"
    );
    for (kind, id) in &gpu_ids {
        let s = status_json(&url, id);
        let text = s.to_string();
        assert_eq!(
            s["device"]["class"], "gpu",
            "a GPU-lane job ran elsewhere: {text}"
        );
        assert!(text.contains("simulated, not a GPU"), "{text}");
        let (got, want) = (&s["output"]["fingerprint"], &want[*kind]);
        assert_eq!(got["len"], want["len"], "{text}");
        if *kind == 0 {
            // Vector add of synthetic data is bit-identical on both backends.
            assert_eq!(got["hash"], want["hash"], "{text}");
        }
        let (a, b) = (got["l2"].as_f64().unwrap(), want["l2"].as_f64().unwrap());
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "GPU {a} vs CPU {b}: {text}"
        );
    }
    drop(gpu);
}

#[test]
fn a_filter_graph_on_the_gpu_lane_equals_the_cpu() {
    let server = RedisServer::start(false);
    let url = server.url();
    let dir = tmp();
    let (h, w) = (67, 129);
    let image: Vec<f32> = (0..h * w)
        .map(|i| ((i * 7919) % 1013) as f32 / 1013.0)
        .collect();
    f32_npy(&dir.path().join("in.npy"), &[h, w], &image);
    let from = |job: &str| {
        format!(r#"{{"shape": [{h}, {w}], "from": {{"job": "{job}", "output": "image"}}}}"#)
    };
    let graph = format!(
        r#"{{"jobs": [
          {{"name": "blur", "kind": "image-filter", "device": "gpu", "payload": {{"image": {{"npy": "in.npy"}}, "filter": {{"op": "gaussian-blur", "sigma": 2.0}}}}}},
          {{"name": "edges", "kind": "image-filter", "device": "gpu", "payload": {{"image": {}, "filter": {{"op": "sobel"}}}}}}
        ]}}"#,
        from("blur")
    );
    let path = dir.path().join("graph.json");
    std::fs::write(&path, graph).unwrap();
    let _sched = spawn_on(&url, &["scheduler"]);
    // With the device pipeline: inputs registered in place, outputs kept on the device
    // for the next step (checked against the CPU all the same).
    let _gpu = spawn_on(&url, &["worker", "--backend", "cuda", "--cuda-pipeline"]);
    let out = dir.path().join("out");
    let o = run_on(
        &url,
        &[
            "submit",
            "--graph",
            path.to_str().unwrap(),
            "--wait",
            "--out-dir",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), common::stderr(&o));
    // The same filters one by one on the CPU.
    let blurred = dir.path().join("blur.npy");
    let edges = dir.path().join("edges.npy");
    let input = dir.path().join("in.npy");
    for (args, file) in [
        (
            vec![
                "run",
                "--device",
                "cpu",
                "image-filter",
                "--input",
                input.to_str().unwrap(),
                "--op",
                "gaussian-blur",
                "--sigma",
                "2",
                "--out",
            ],
            &blurred,
        ),
        (
            vec![
                "run",
                "--device",
                "cpu",
                "image-filter",
                "--input",
                blurred.to_str().unwrap(),
                "--op",
                "sobel",
                "--out",
            ],
            &edges,
        ),
    ] {
        let mut a = args.clone();
        a.push(file.to_str().unwrap());
        let o = common::gpujobs(&a);
        assert!(o.status.success(), "{}", common::stderr(&o));
    }
    let want = read_f32_npy(&edges);
    let got_path = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("edges"))
        .unwrap_or_else(|| panic!("no output of `edges` in {}", out.display()));
    let got = read_f32_npy(&got_path);
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "GPU graph and CPU differ by {worst}");
}
