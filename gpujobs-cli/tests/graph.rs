//! Job graphs through Redis with the real binaries: `gpujobs submit --graph` with file
//! inputs, waits visible in `gpujobs status`, outputs read from the worker's cache
//! (measured in Redis's own byte counters), and a failure reaching every dependant.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{f32_npy, read_f32_npy, run_on, spawn_on, stderr, stdout};
use gpujobs_queue::testkit::{RedisServer, connection};
use std::collections::HashMap;
use std::path::Path;

/// `gpujobs submit --graph <graph> --wait --out-dir <out>`, which must succeed.
fn run_graph(url: &str, graph: &Path, out: &Path) {
    let o = run_on(
        url,
        &[
            "submit",
            "--graph",
            graph.to_str().unwrap(),
            "--wait",
            "--out-dir",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
}

/// `name id` lines of `submit --graph`.
fn ids_by_name(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, id)| (n.to_string(), id.to_string()))
        .collect()
}

fn chain_file(dir: &Path, size: usize, ephemeral: bool) -> std::path::PathBuf {
    let image: Vec<f32> = (0..size * size)
        .map(|i| ((i * 7919) % 1013) as f32 / 1013.0)
        .collect();
    f32_npy(&dir.join("in.npy"), &[size, size], &image);
    let from = |job: &str| {
        format!(r#"{{"shape": [{size}, {size}], "from": {{"job": "{job}", "output": "image"}}}}"#)
    };
    let graph = format!(
        r#"{{"jobs": [
          {{"name": "blur", "kind": "image-filter", "ephemeral": {ephemeral}, "payload": {{"image": {{"npy": "in.npy"}}, "filter": {{"op": "gaussian-blur", "sigma": 2.0}}}}}},
          {{"name": "edges", "kind": "image-filter", "ephemeral": {ephemeral}, "payload": {{"image": {}, "filter": {{"op": "sobel"}}}}}},
          {{"name": "smooth", "kind": "image-filter", "payload": {{"image": {}, "filter": {{"op": "gaussian-blur", "sigma": 1.0}}}}}}
        ]}}"#,
        from("blur"),
        from("edges")
    );
    let path = dir.join(format!("chain-{ephemeral}.json"));
    std::fs::write(&path, graph).unwrap();
    path
}

/// The same three filters run one by one with `gpujobs run`: what the graph must equal.
fn chain_by_hand(dir: &Path) -> Vec<f32> {
    let steps = [
        (
            "in.npy",
            "a.npy",
            vec!["--op", "gaussian-blur", "--sigma", "2"],
        ),
        ("a.npy", "b.npy", vec!["--op", "sobel"]),
        (
            "b.npy",
            "c.npy",
            vec!["--op", "gaussian-blur", "--sigma", "1"],
        ),
    ];
    for (input, out, filter) in steps {
        let (i, o) = (dir.join(input), dir.join(out));
        let mut args = vec!["run", "image-filter", "--input", i.to_str().unwrap()];
        args.extend(filter.iter().copied());
        args.extend(["--out", o.to_str().unwrap()]);
        let r = common::gpujobs(&args);
        assert!(r.status.success(), "{}", stderr(&r));
    }
    read_f32_npy(&dir.join("c.npy"))
}

/// Redis's counters of bytes received and sent (`INFO stats`).
async fn net_bytes(url: &str) -> (u64, u64) {
    let mut conn = connection(url).await;
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut conn)
        .await
        .unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    (
        field("total_net_input_bytes:"),
        field("total_net_output_bytes:"),
    )
}

/// A chain of three filters on a real file: the result equals the three filters run
/// one by one. With the worker's cache, the intermediates are not read back from Redis
/// (its sent-bytes counter moves by two images instead of four); with ephemeral
/// intermediates they are not written to it either (two images received, not four).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_filters_equals_the_filters_run_one_by_one_and_reads_from_the_cache() {
    let server = RedisServer::start(false);
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let size = 512;
    let image = (size * size * 4) as u64;
    let want = {
        chain_file(dir.path(), size, false);
        chain_by_hand(dir.path())
    };
    let _sched = spawn_on(&url, &["scheduler"]);
    let mut moved = Vec::new();
    for (cache_mib, ephemeral) in [("0", false), ("64", false), ("64", true)] {
        let graph = chain_file(dir.path(), size, ephemeral);
        let worker = spawn_on(&url, &["worker", "--cache-mib", cache_mib]);
        let out = dir.path().join(format!("out-{cache_mib}-{ephemeral}"));
        let before = net_bytes(&url).await;
        run_graph(&url, &graph, &out);
        let after = net_bytes(&url).await;
        moved.push((after.0 - before.0, after.1 - before.1));
        let got = read_f32_npy(&out.join("smooth.image.npy"));
        assert_eq!(got.len(), want.len());
        assert!(
            got == want,
            "the graph's output differs from the filters run one by one"
        );
        drop(worker);
    }
    eprintln!("bytes Redis (received, sent) per run, image {image}: {moved:?}");
    let [plain, cached, ephemeral] = [moved[0], moved[1], moved[2]];
    // Without the cache Redis sends the input, both intermediates and the final image.
    assert!(plain.0 >= 4 * image && plain.1 >= 4 * image, "{plain:?}");
    // With it, only the input (to the worker) and the final image (to the client).
    assert!(cached.0 >= 4 * image && cached.1 < 3 * image, "{cached:?}");
    // Ephemeral intermediates are never stored: the input and the final image, each way.
    assert!(
        ephemeral.0 < 3 * image && ephemeral.1 < 3 * image,
        "{ephemeral:?}"
    );
}

/// Eight products summed by a tree of vector adds (each reads two outputs, the products
/// reshaped to vectors): the first sums wait visibly, the total is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_in_of_eight_products_waits_then_sums_them() {
    let server = RedisServer::start(false);
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let n = 8;
    let mut jobs = Vec::new();
    let mut want = vec![0f64; n * n];
    for k in 0..8 {
        let a: Vec<f32> = (0..n * n).map(|i| ((i + k) % 5) as f32 - 2.0).collect();
        let b: Vec<f32> = (0..n * n).map(|i| ((i * 3 + k) % 7) as f32 * 0.5).collect();
        for r in 0..n {
            for c in 0..n {
                want[r * n + c] += (0..n)
                    .map(|j| f64::from(a[r * n + j]) * f64::from(b[j * n + c]))
                    .sum::<f64>();
            }
        }
        jobs.push(format!(
            r#"{{"name": "p{k}", "kind": "matmul", "payload": {{"a": {{"shape": [{n}, {n}], "data": {a:?}}}, "b": {{"shape": [{n}, {n}], "data": {b:?}}}}}}}"#
        ));
    }
    let nn = n * n;
    let add = |name: &str, x: &str, y: &str, out: &str| {
        format!(
            r#"{{"name": "{name}", "kind": "vector-add", "payload": {{"a": {{"shape": [{nn}], "from": {{"job": "{x}", "output": "{out}"}}}}, "b": {{"shape": [{nn}], "from": {{"job": "{y}", "output": "{out}"}}}}}}}}"#
        )
    };
    for k in 0..4 {
        jobs.push(add(
            &format!("s{k}"),
            &format!("p{}", 2 * k),
            &format!("p{}", 2 * k + 1),
            "c",
        ));
    }
    jobs.push(add("t0", "s0", "s1", "c"));
    jobs.push(add("t1", "s2", "s3", "c"));
    jobs.push(add("total", "t0", "t1", "c"));
    let path = dir.path().join("fan-in.json");
    std::fs::write(&path, format!(r#"{{"jobs": [{}]}}"#, jobs.join(",\n"))).unwrap();

    // Submitted before any scheduler or worker runs: everything waits.
    let o = run_on(&url, &["submit", "--graph", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids = ids_by_name(&stdout(&o));
    assert_eq!(ids.len(), 15);
    let o = run_on(&url, &["status", &ids["total"]]);
    let shown = stdout(&o);
    assert!(shown.contains("waiting on 2 of 2 parent jobs"), "{shown}");
    assert!(
        shown.contains(&ids["p7"]) && shown.contains("queued"),
        "{shown}"
    );
    let o = run_on(&url, &["watch", "--once"]);
    assert!(
        stdout(&o).contains("7 jobs of graphs waiting for their parents"),
        "{}",
        stdout(&o)
    );

    let _sched = spawn_on(&url, &["scheduler"]);
    let _worker = spawn_on(&url, &["worker", "--concurrency", "2"]);
    let out = dir.path().join("out");
    run_graph(&url, &path, &out);
    let got = read_f32_npy(&out.join("total.c.npy"));
    assert_eq!(got.len(), nn);
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (f64::from(*g) - w).abs() <= 1e-3 * w.abs().max(1.0),
            "{g} vs {w}"
        );
    }
    let o = run_on(&url, &["status", &ids["total"]]);
    assert!(stdout(&o).contains("succeeded"), "{}", stdout(&o));
    // Both submits of the graph are done: nothing waits any more.
    let o = run_on(&url, &["watch", "--once"]);
    assert!(
        !stdout(&o).contains("waiting for their parents"),
        "{}",
        stdout(&o)
    );
}

/// A job whose input names an output its parent does not have fails for good, and the
/// job reading it fails naming it; `status` says so. Cycles are refused at submit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_parent_fails_its_dependants_and_cycles_are_refused() {
    let server = RedisServer::start(false);
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let graph = r#"{"jobs": [
      {"name": "a", "kind": "vector-add", "payload": {"a": {"shape": [4], "data": [1, 2, 3, 4]}, "b": {"shape": [4], "data": [1, 1, 1, 1]}}},
      {"name": "b", "kind": "vector-add", "payload": {"a": {"shape": [4], "from": {"job": "a", "output": "no-such-output"}}, "b": {"shape": [4], "data": [0, 0, 0, 0]}}},
      {"name": "c", "kind": "vector-add", "payload": {"a": {"shape": [4], "from": {"job": "b", "output": "c"}}, "b": {"shape": [4], "from": {"job": "a", "output": "c"}}}}
    ]}"#;
    let path = dir.path().join("g.json");
    std::fs::write(&path, graph).unwrap();
    let _sched = spawn_on(&url, &["scheduler"]);
    let _worker = spawn_on(&url, &["worker"]);
    let o = run_on(
        &url,
        &["submit", "--graph", path.to_str().unwrap(), "--wait"],
    );
    assert!(!o.status.success(), "b and c cannot succeed");
    let ids = ids_by_name(&stdout(&o));
    let o = run_on(&url, &["status", &ids["c"], "--json"]);
    let rec: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_eq!(rec["parents"].as_array().map(Vec::len), Some(2), "{rec}");
    let msg = rec["error"].as_str().unwrap_or_default();
    assert!(msg.contains(&ids["b"]) && msg.contains("failed"), "{msg}");
    let o = run_on(&url, &["status", &ids["b"], "--json"]);
    let rec: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let msg = rec["error"].as_str().unwrap_or_default();
    assert!(msg.contains("no-such-output"), "{msg}");

    let cyclic = graph.replace(
        r#""job": "a", "output": "no-such-output""#,
        r#""job": "c", "output": "c""#,
    );
    std::fs::write(&path, cyclic).unwrap();
    let o = run_on(&url, &["submit", "--graph", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cycle"), "{}", stderr(&o));
}

/// The state field of a job's record, read straight from Redis.
async fn state_of(url: &str, id: &str) -> Option<String> {
    let mut conn = connection(url).await;
    redis::cmd("HGET")
        .arg(format!("{{gpujobs}}:job:{id}"))
        .arg("state")
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn wait_state(url: &str, id: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while state_of(url, id).await.as_deref() != Some(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} never reached {want} (now {:?})",
            state_of(url, id).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The worker holding an ephemeral intermediate is SIGKILLed after making it, before
/// its reader runs: the reader is placed on it by locality (its heartbeat has not yet
/// lapsed), is not taken within the wait, moves to the lane, and another worker re-runs
/// the producer from its kept inputs; the chain's result is what the filters give one
/// by one. The order is set by which processes run when (a scheduler only while
/// something must be placed), not by timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_output_lost_with_its_killed_worker_is_made_again() {
    chain_with_a_killed_holder(true).await;
}

/// The same with a persisted intermediate: the other worker reads the stored copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_output_outlives_its_killed_worker() {
    chain_with_a_killed_holder(false).await;
}

async fn chain_with_a_killed_holder(ephemeral: bool) {
    let server = RedisServer::start(false);
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let size = 256;
    let want = {
        chain_file(dir.path(), size, false);
        chain_by_hand(dir.path())
    };
    let graph = chain_file(dir.path(), size, ephemeral);
    let o = run_on(&url, &["submit", "--graph", graph.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids = ids_by_name(&stdout(&o));

    // blur is placed, then the scheduler goes: nothing else can reach a lane.
    let sched = spawn_on(&url, &["scheduler"]);
    wait_state(&url, &ids["blur"], "placed").await;
    drop(sched);
    // The holder makes blur's output (if ephemeral, kept only in its memory), then is
    // SIGKILLed.
    let holder = spawn_on(&url, &["worker", "--id", "holder"]);
    wait_state(&url, &ids["blur"], "succeeded").await;
    drop(holder);
    assert_eq!(
        state_of(&url, &ids["edges"]).await.as_deref(),
        Some("queued")
    );
    let mut conn = connection(&url).await;
    let result: String = redis::cmd("HGET")
        .arg(format!("{{gpujobs}}:job:{}", ids["blur"]))
        .arg("result")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        result.contains(r#""held_by":"holder""#),
        ephemeral,
        "{result}"
    );
    let stored: u32 = redis::cmd("EXISTS")
        .arg(format!("{{gpujobs}}:blob:{}:out:t0", ids["blur"]))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        stored,
        u32::from(!ephemeral),
        "only a persisted output is stored in Redis"
    );

    // Another worker runs the rest, making blur's output again if it was ephemeral.
    let _sched = spawn_on(&url, &["scheduler"]);
    let _other = spawn_on(&url, &["worker", "--id", "other"]);
    wait_state(&url, &ids["smooth"], "succeeded").await;
    let bytes: Vec<u8> = redis::cmd("GET")
        .arg(format!("{{gpujobs}}:blob:{}:out:t0", ids["smooth"]))
        .query_async(&mut conn)
        .await
        .unwrap();
    let got: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert!(
        got == want,
        "the re-made chain differs from the filters run one by one"
    );
    let o = run_on(&url, &["status", &ids["edges"], "--json"]);
    let rec: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rec["worker"], "other", "{rec}");
    assert_eq!(rec["placement"]["worker"], "holder", "{rec}");
    let o = run_on(&url, &["status", &ids["edges"]]);
    assert!(
        stdout(&o).contains("inputs held by worker holder"),
        "{}",
        stdout(&o)
    );
}
