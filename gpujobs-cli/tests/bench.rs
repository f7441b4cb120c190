//! `gpujobs bench` on tiny sizes: every output file exists and parses (JSON schema, CSV
//! columns, PNGs decode, the report has its sections); and `calibrate` / `simulate`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Command;

fn gpujobs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gpujobs"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bench_writes_json_csv_png_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let o = gpujobs(&[
        "bench",
        "--sizes",
        "tiny",
        "--repeat",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], "gpujobs-bench/1");
    assert!(
        json["machine"]["cpu"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "one tiny case per kind on the CPU");
    for r in rows {
        for key in ["kind", "size", "device", "unit", "verified"] {
            assert!(r[key].is_string(), "{key} in {r}");
        }
        for key in [
            "mean",
            "median",
            "min",
            "max",
            "std",
            "ci95_low",
            "ci95_high",
        ] {
            let v = r["e2e"][key].as_f64().unwrap();
            assert!(v.is_finite(), "{key} in {r}");
        }
        assert_eq!(r["e2e"]["n"], 2);
        assert!(r["e2e"]["min"].as_f64() <= r["e2e"]["median"].as_f64());
        assert!(r["e2e"]["median"].as_f64() <= r["e2e"]["max"].as_f64());
        assert!(r["throughput_e2e"].as_f64().unwrap() > 0.0);
        assert_eq!(r["verified_ok"], true, "{r}");
    }

    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[..6], ["kind", "rung", "size", "x", "device", "n"]);
    assert!(
        header.contains(&"median_s")
            && header.contains(&"ci95_high_s")
            && header.contains(&"speedup_e2e")
    );
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), 6);
    for line in body {
        let first: Vec<&str> = line.splitn(2, ',').collect();
        assert!(
            [
                "vector-add",
                "matmul",
                "gaussian-blur",
                "sobel",
                "mlp-train",
                "mlp-predict"
            ]
            .contains(&first[0]),
            "{line}"
        );
    }

    for png in ["time_vs_size.png", "speedup.png"] {
        let img = image::open(out.join(png)).unwrap();
        assert!(img.width() > 500 && img.height() > 300, "{png}");
    }

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for section in [
        "## Setup",
        "## Method",
        "## Results",
        "## Discussion",
        "## Threats to validity",
        "time_vs_size.png",
        "speedup.png",
    ] {
        assert!(report.contains(section), "report lacks {section}");
    }
}

#[test]
fn bench_refuses_unknown_kinds_and_sizes() {
    let o = gpujobs(&["bench", "--kinds", "teleport", "--out", "/tmp/never"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("invalid value 'teleport'")
            && err.contains(
                "possible values: vector-add, matmul, gaussian-blur, sobel, mlp-train, mlp-predict"
            )
            && err.lines().count() == 1,
        "{err}"
    );
    let o = gpujobs(&["bench", "--sizes", "huge", "--out", "/tmp/never"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn calibrate_writes_a_model_the_scheduler_can_load_and_simulate_compares_policies() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.json");
    let o = gpujobs(&[
        "calibrate",
        "--quick",
        "--repeat",
        "1",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&model).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["calibrated"], true);
    for kind in ["vector-add", "matmul", "image-filter", "mlp-train"] {
        assert!(
            json["kinds"][kind]["cpu"]["samples"].as_u64().unwrap() >= 3,
            "{kind}: {json}"
        );
    }
    let o = gpujobs(&[
        "simulate",
        "--seeds",
        "2",
        "--cost-model",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("calibrated") && text.contains("cost-based") && text.contains("round-robin"),
        "{text}"
    );
    let o = gpujobs(&["simulate", "--cost-model", "/nonexistent.json"]);
    assert_eq!(o.status.code(), Some(2));
}
