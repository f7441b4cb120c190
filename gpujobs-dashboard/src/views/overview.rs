//! `/`: per lane and priority what is queued, running and retrying, the backlog, the
//! counters, Redis's memory against its high-water mark, and ended jobs per minute.

use super::{Tab, bytes, charts, frame, redis_down};
use crate::app::State;
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use maud::html;

#[derive(serde::Deserialize)]
pub(crate) struct Params {
    hours: Option<u64>,
}

pub(crate) async fn page(
    axum::extract::State(state): State,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Response {
    let hours = p.hours.unwrap_or(3).clamp(1, 168);
    let read = async {
        let o = state.queue.overview().await?;
        let s = state.queue.series(hours * 60).await?;
        Ok::<_, gpujobs_core::QueueError>((o, s))
    };
    let (o, series) = match read.await {
        Ok(v) => v,
        Err(e) => return redis_down(&state, &headers, "Overview", Tab::Overview, &e),
    };
    let keeper = state
        .keeper
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mem_share = |n: u64| {
        if o.memory.max > 0 {
            format!("{:.0}%", 100.0 * n as f64 / o.memory.max as f64)
        } else {
            "no maxmemory".into()
        }
    };
    let body = html! {
        section.cards {
            div.card { b { (o.submitted) } span { "submitted" } }
            div.card { b { (o.succeeded) } span { "succeeded" } }
            div.card { b { (o.waiting) } span { "waiting (graphs)" } }
            div.card.dead { a href="/dead" { b { (o.dead_letters) } span { "dead letters" } } }
            div.card {
                b { (bytes(o.memory.used)) }
                span { "Redis memory (" (mem_share(o.memory.used)) ")" }
                small { "high-water " (bytes(o.memory.peak)) " · max " @if o.memory.max > 0 { (bytes(o.memory.max)) } @else { "none" } }
                meter min="0" max=(o.memory.peak.max(o.memory.max).max(1)) value=(o.memory.used) {}
            }
        }
        h2 { "Lanes" }
        table #lanes {
            thead { tr { th { "lane" } th { "priority" } th.n { "queued" } th.n { "running" } th.n { "retrying" } } }
            tbody {
                @for r in &o.lanes {
                    tr data-lane=(r.lane.as_str()) data-priority=(r.priority.map_or("near", |p| p.as_str())) {
                        td { (r.lane.as_str()) }
                        td { @match r.priority { Some(p) => (p.as_str()), None => span.muted title="placed on a worker by locality, or waiting out a retry backoff" { "near / backoff" } } }
                        td.n.queued { (r.queued) }
                        td.n.running { (r.running) }
                        td.n.retrying { (r.retrying) }
                    }
                }
            }
        }
        p.muted {
            "Backlog estimate: "
            @for (i, (lane, s)) in o.backlog_s.iter().enumerate() {
                @if i > 0 { " · " }
                (lane.as_str()) " " (format!("{s:.1}")) " s"
            }
        }
        h2 { "Ended jobs per minute" }
        p.range {
            @for h in [1u64, 3, 12, 24, 72, 168] {
                a href={ "/?hours=" (h) } class=[(h == hours).then_some("active")] { (h) " h" }
            }
        }
        (charts::bars("Succeeded", "ok", &series, |p| p.succeeded))
        (charts::bars("Failed, dead or cancelled", "bad", &series, |p| p.failed))
        p.muted.keeper {
            @if let Some(e) = &keeper.error { span.error { "History keeper: " (e) } }
            @else if keeper.standby { "History kept by another dashboard." }
            @else { "History keeper: " (keeper.indexed) " endings indexed since this dashboard started." }
        }
    };
    Html(frame(&state, &headers, "Overview", Tab::Overview, None, body).into_string())
        .into_response()
}
