//! `/dead`: the dead letters, newest first, filtered by kind and reason; retry or
//! cancel one, or retry every one the filter shows.

use super::{Tab, frame, job_href, redis_down, when};
use crate::app::State;
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use gpujobs_core::queue::{AdminQueue, DeadLetter};
use maud::html;

/// The filter (also what a bulk retry sends).
#[derive(serde::Deserialize, Default, Clone)]
pub(crate) struct DeadFilter {
    pub(crate) kind: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) limit: Option<usize>,
}

impl DeadFilter {
    pub(crate) fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }

    pub(crate) fn matches(&self, d: &DeadLetter) -> bool {
        let kind = self
            .kind
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let reason = self
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty());
        kind.is_none_or(|k| d.kind.as_deref() == Some(k))
            && reason.is_none_or(|r| d.reason.to_lowercase().contains(&r.to_lowercase()))
    }
}

pub(crate) async fn page(
    axum::extract::State(state): State,
    headers: HeaderMap,
    Query(f): Query<DeadFilter>,
) -> Response {
    let letters = match state.queue.dead_letters(f.limit()).await {
        Ok(v) => v,
        Err(e) => return redis_down(&state, &headers, "Dead letters", Tab::Dead, &e),
    };
    let shown: Vec<&DeadLetter> = letters.iter().filter(|d| f.matches(d)).collect();
    let body = html! {
        form #dead-filter method="get" action="/dead" {
            label { "kind " input name="kind" value=[f.kind.as_deref()]; }
            label { "reason contains " input name="reason" value=[f.reason.as_deref()]; }
            label { "newest " input type="number" name="limit" min="1" max="1000" value=(f.limit()); }
            button type="submit" { "Filter" }
        }
        @if !shown.is_empty() {
            form #retry-all method="post" action="/dead/retry" {
                input type="hidden" name="kind" value=[f.kind.as_deref()];
                input type="hidden" name="reason" value=[f.reason.as_deref()];
                input type="hidden" name="limit" value=(f.limit());
                button type="submit" { "Retry these " (shown.len()) }
            }
        }
        table #dead {
            thead { tr { th { "job" } th { "kind" } th { "attempts" } th { "when" } th { "reason" } th { "" } } }
            tbody {
                @for d in &shown {
                    tr {
                        td { a href=(job_href(&d.id)) { (d.id) } }
                        td { (d.kind.as_deref().unwrap_or("(unreadable entry)")) }
                        td.n { (d.attempts) }
                        td { (when(d.at_ms)) }
                        td.err { (d.reason) }
                        td.row-actions {
                            @if d.raw.is_none() {
                                form method="post" action={ (job_href(&d.id)) "/retry" } { button type="submit" { "Retry" } }
                            }
                        }
                    }
                }
                @if shown.is_empty() { tr { td colspan="6" .muted { "No dead letters match." } } }
            }
        }
    };
    Html(frame(&state, &headers, "Dead letters", Tab::Dead, None, body).into_string())
        .into_response()
}
