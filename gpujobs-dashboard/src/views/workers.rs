//! `/workers`: every worker on record; one whose heartbeat stopped stands out.

use super::{Tab, ago, bytes, frame, redis_down};
use crate::app::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use gpujobs_core::model::envelope::now_ms;
use maud::html;

pub(crate) async fn page(axum::extract::State(state): State, headers: HeaderMap) -> Response {
    let (workers, ttl) = match state.queue.workers_seen().await {
        Ok(v) => v,
        Err(e) => return redis_down(&state, &headers, "Workers", Tab::Workers, &e),
    };
    let now = now_ms();
    let ttl_ms = ttl.as_millis() as u64;
    let stale = workers
        .iter()
        .filter(|w| w.last_seen_ms + ttl_ms < now)
        .count();
    let body = html! {
        p {
            (workers.len() - stale) " live"
            @if stale > 0 { " · " span.error { (stale) " stopped heart-beating (no heartbeat for over " (ttl.as_secs()) " s)" } }
        }
        table #workers {
            thead { tr {
                th { "worker" } th { "lane" } th { "device" } th.n { "slots" } th.n { "in flight" }
                th.n { "done" } th.n { "failed" } th { "last heartbeat" } th.n { "cached outputs" }
            } }
            tbody {
                @for w in &workers {
                    @let gone = w.last_seen_ms + ttl_ms < now;
                    tr class=[gone.then_some("stale")] {
                        td { (w.id) @if gone { " " span.badge { "no heartbeat" } } }
                        td { (w.lane.as_str()) }
                        td { (w.device.name) " #" (w.device.ordinal) }
                        td.n { (w.concurrency) }
                        td.n { (w.in_flight) }
                        td.n { (w.jobs_done) }
                        td.n { (w.jobs_failed) }
                        td title=(super::when(w.last_seen_ms)) { (ago(w.last_seen_ms, now)) }
                        td.n { (w.cached_jobs.len()) " (" (bytes(w.cache_bytes)) ")" }
                    }
                }
                @if workers.is_empty() { tr { td colspan="9" .muted { "No worker has sent a heartbeat." } } }
            }
        }
    };
    Html(frame(&state, &headers, "Workers", Tab::Workers, None, body).into_string()).into_response()
}
