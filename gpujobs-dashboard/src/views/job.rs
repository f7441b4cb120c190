//! `/jobs/<id>`: one job's record, placement and its reasons, attempts, a timing
//! waterfall, the error, its outputs (shapes, a preview for images, `.npy` downloads),
//! its graph and the actions on it.

use super::{Tab, bad_request, encode, frame, job_href, redis_down, state_badge, when};
use crate::app::State;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use gpujobs_core::model::tensor_json::{Source, tensors};
use gpujobs_core::{JobId, JobState, Timings};
use maud::{Markup, html};

pub(crate) async fn page(
    axum::extract::State(state): State,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(job) = JobId::parse(&id) else {
        return bad_request(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "a job id is 1–128 printable ASCII characters",
        );
    };
    let (rec, raw) = match state.queue.record_fields(&job).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return bad_request(
                &state,
                &headers,
                StatusCode::NOT_FOUND,
                &format!("no job {id} (unknown, or its record expired)"),
            );
        }
        Err(e) => return redis_down(&state, &headers, "Job", Tab::Jobs, &e),
    };
    let title = format!("Job {id}");
    // A dead-letter retry takes dead and failed jobs (not cancelled ones).
    let retryable = matches!(rec.state, JobState::Dead | JobState::Failed);
    let cancellable = !rec.state.is_terminal();
    let graph = raw.get("graph").filter(|g| !g.is_empty());
    let body = html! {
        dl.record {
            dt { "state" } dd #state { (state_badge(rec.state.as_str())) }
            dt { "kind" } dd { (rec.kind) }
            dt { "priority" } dd { (rec.priority.as_str()) }
            dt { "device asked" } dd { (rec.device.as_str()) }
            dt { "lane" } dd { (rec.lane.map(|l| l.as_str()).unwrap_or("—")) }
            dt { "worker" } dd { (rec.worker.as_deref().unwrap_or("—")) }
            dt { "attempts" } dd { (rec.attempts) " of " (rec.max_attempts) }
            dt { "submitted" } dd { (when(rec.created_us / 1000)) }
            @if let Some(s) = rec.started_ms { dt { "last attempt started" } dd { (when(s)) } }
            @if let Some(f) = rec.finished_ms { dt { "ended" } dd { (when(f)) } }
            @if !rec.parents.is_empty() {
                dt { "reads the outputs of" }
                dd { @for p in &rec.parents { a href=(job_href(p.as_str())) { (p.as_str()) } " " } }
            }
            @if let Some(g) = graph { dt { "graph" } dd { a #graph-link href={ (job_href(&id)) "/graph" } { (g) } } }
        }
        @if retryable || cancellable {
            div.actions {
                @if retryable {
                    form method="post" action={ (job_href(&id)) "/retry" } { button #retry type="submit" { "Retry" } }
                }
                @if cancellable {
                    form method="post" action={ (job_href(&id)) "/cancel" } { button #cancel type="submit" { "Cancel" } }
                }
            }
        }
        @if let Some(e) = &rec.error {
            h2 { "Error" }
            p.error #error { b { (format!("{:?}", e.class).to_lowercase()) } ": " (e.message) }
        }
        @if let Some(p) = &rec.placement {
            h2 { "Placement" }
            p #placement { "On the " b { (p.lane.as_str()) } " lane: " (p.reason) }
            p.muted {
                "Estimates: "
                @for (lane, s) in &p.estimates { (lane.as_str()) " " (format!("{s:.4}")) " s · " }
                "model " (p.model)
                @if let Some(w) = &p.worker { " · placed on " (w) " by locality (waits up to " (p.worker_wait_ms) " ms)" }
            }
        }
        @if let Some(r) = &rec.result {
            h2 { "Timings" }
            (waterfall(&r.timings))
            p.muted { "Ran on " (r.device.name) " · " (r.summary) }
            h2 { "Outputs" }
            (outputs(&id, &rec.kind, &r.output))
        }
        @if let Some(env) = raw.get("env") {
            details {
                summary { "Envelope" }
                pre { (shown_envelope(env)) }
            }
        }
    };
    Html(frame(&state, &headers, &title, Tab::Jobs, None, body).into_string()).into_response()
}

/// Bars for queue wait, prepare, host→device, compute, device→host, on one scale.
fn waterfall(t: &Timings) -> Markup {
    let stages = [
        ("queue wait", t.queue_wait_s),
        ("prepare", t.prepare_s),
        ("h2d", t.h2d_s),
        ("compute", t.compute_s),
        ("d2h", t.d2h_s),
    ];
    let total: f64 = stages
        .iter()
        .map(|(_, s)| s.max(0.0))
        .sum::<f64>()
        .max(t.total_s)
        .max(1e-9);
    // Each stage starts where the previous one ended.
    let starts: Vec<f64> = stages
        .iter()
        .scan(0.0, |at, (_, s)| {
            let start = *at;
            *at += s.max(0.0);
            Some(start)
        })
        .collect();
    html! {
        svg #waterfall viewBox="0 0 720 130" role="img" aria-label="timings" {
            @for (i, ((name, s), start)) in stages.iter().zip(&starts).enumerate() {
                @let s = s.max(0.0);
                @let x = 110.0 + 600.0 * start / total;
                @let w = (600.0 * s / total).max(1.0);
                text x="0" y=(i * 24 + 16) class="label" { (name) }
                rect class={ "stage s" (i) } x=(format!("{x:.1}")) y=(i * 24 + 4) width=(format!("{w:.1}")) height="16" {}
                text x=(format!("{:.1}", (x + w + 4.0).min(660.0))) y=(i * 24 + 16) class="label" { (fmt_s(s)) }
            }
        }
        p.muted { "total " (fmt_s(t.total_s)) " · run " (fmt_s(t.run_s)) }
    }
}

fn fmt_s(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// The output's tensors: path, shape, download, and a preview for images.
fn outputs(id: &str, kind: &str, output: &serde_json::Value) -> Markup {
    let found = tensors(output);
    html! {
        table #outputs {
            thead { tr { th { "output" } th { "shape" } th { "" } } }
            tbody {
                @for t in &found {
                    tr {
                        td { (t.path) }
                        td { (t.shape.as_ref().map(|s| format!("{s:?}")).unwrap_or_else(|| "?".into())) }
                        td {
                            @match t.source {
                                Source::Url(_) => span.muted { "in object storage" },
                                _ => a href={ (job_href(id)) "/outputs/" (encode(&t.path)) ".npy" } download { "download .npy" },
                            }
                        }
                    }
                }
                @if found.is_empty() { tr { td colspan="3" .muted { "No tensors (the result is in the summary)." } } }
            }
        }
        @for t in found.iter().filter(|t| kind == "image-filter" && t.shape.as_ref().is_some_and(|s| s.len() == 2) && !matches!(t.source, Source::Url(_))) {
            figure.preview {
                img src={ (job_href(id)) "/outputs/" (encode(&t.path)) ".png" } alt={ "preview of " (t.path) };
                figcaption { (t.path) " (grey levels scaled to its minimum and maximum)" }
            }
        }
    }
}

/// The envelope as stored, pretty-printed, with inline data cut and passwords in URLs
/// masked.
fn shown_envelope(env: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(env) else {
        return env.chars().take(4096).collect();
    };
    mask(&mut v);
    let s = serde_json::to_string_pretty(&v).unwrap_or_default();
    if s.len() > 8192 {
        format!(
            "{}\n… ({} bytes in all)",
            s.chars().take(8192).collect::<String>(),
            s.len()
        )
    } else {
        s
    }
}

fn mask(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains("://") => *s = gpujobs_queue::redact(s),
        serde_json::Value::Array(a) => {
            if a.len() > 16 && a.iter().all(|x| x.is_number()) {
                let n = a.len();
                a.truncate(8);
                a.push(serde_json::Value::String(format!("… {n} numbers")));
            } else {
                a.iter_mut().for_each(mask);
            }
        }
        serde_json::Value::Object(m) => m.values_mut().for_each(mask),
        _ => {}
    }
}
