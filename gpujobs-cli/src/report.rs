//! Printing results: one job as JSON or text, many jobs as a table.

use gpujobs_core::scheduler::placement::fmt_seconds;
use gpujobs_core::{Check, JobRecord, JobState};
use serde_json::{Value, json};

/// The JSON form of a finished job (`run --json`, `submit --wait --json`).
pub fn job_json(
    record: &JobRecord,
    label: &str,
    check: Option<&Check>,
    extra: Vec<(&str, Value)>,
) -> Value {
    let mut v = json!({
        "status": record.state.as_str(),
        "id": record.id.as_str(),
        "kind": record.kind,
        "size": label,
        "attempts": record.attempts,
        "worker": record.worker,
        "placement": record.placement.as_ref().map(|p| json!({"lane": p.lane, "reason": p.reason, "estimates_s": p.estimates, "model": p.model, "worker": p.worker, "worker_wait_ms": p.worker_wait_ms})),
        "error": record.error.as_ref().map(|e| e.message.clone()),
    });
    if !record.parents.is_empty() {
        v["parents"] = json!(record.parents);
        v["waiting_on"] = json!(record.waiting_on);
    }
    if let Some(r) = &record.result {
        v["device"] =
            json!({"class": r.device.class, "name": r.device.name, "ordinal": r.device.ordinal});
        v["output"] = json!({"summary": r.summary, "fingerprint": r.fingerprint});
        v["timings"] = json!({
            "queue_wait_s": r.timings.queue_wait_s,
            "prepare_s": r.timings.prepare_s,
            "h2d_s": r.timings.h2d_s,
            "compute_s": r.timings.compute_s,
            "d2h_s": r.timings.d2h_s,
            "run_s": r.timings.run_s,
            "total_s": r.timings.total_s,
        });
    }
    if let Some(c) = check {
        v["check"] = match &c.skipped {
            Some(why) => json!({"passed": true, "skipped": why}),
            None => {
                json!({"passed": c.passed(), "metric": c.metric, "error": c.error, "tolerance": c.tolerance})
            }
        };
    }
    for (key, value) in extra {
        v[key] = value;
    }
    v
}

/// The `saved` key of a job's JSON: the files its output was written to, if any.
pub fn saved_files(paths: &[std::path::PathBuf]) -> Option<(&'static str, Value)> {
    (!paths.is_empty()).then(|| {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        ("saved", json!(names))
    })
}

/// A human-readable report of one finished job.
pub fn job_text(record: &JobRecord, label: &str, check: Option<&Check>) -> String {
    let mut out = format!(
        "job {}  {} {}  {}\n",
        record.id, record.kind, label, record.state
    );
    if let Some(p) = &record.placement {
        out += &format!("  placed on {}: {}\n", p.lane, p.reason);
        if let Some(w) = &p.worker {
            out += &format!(
                "  offered to worker {w} alone for {}, then to any {} worker\n",
                fmt_seconds(p.worker_wait_ms as f64 / 1e3),
                p.lane
            );
        }
    }
    if let Some(r) = &record.result {
        let t = &r.timings;
        out += &format!("  device   {}\n", r.device);
        out += &format!("  output   {}\n", r.summary);
        out += &format!(
            "  timings  queue wait {}  prepare {}  h2d {}  compute {}  d2h {}  total {}\n",
            fmt_seconds(t.queue_wait_s),
            fmt_seconds(t.prepare_s),
            fmt_seconds(t.h2d_s),
            fmt_seconds(t.compute_s),
            fmt_seconds(t.d2h_s),
            fmt_seconds(t.total_s)
        );
    }
    if let Some(c) = check {
        out += &format!("  check    {c}\n");
    }
    if record.state != JobState::Succeeded
        && let Some(e) = &record.error
    {
        out += &format!("  error    {}\n", e.message);
    }
    out
}

/// Renders rows as an aligned text table with a header rule.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    out += &line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `YYYY-MM-DD` of a Unix time in milliseconds (proleptic Gregorian, UTC).
pub fn date(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
