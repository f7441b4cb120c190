//! `/jobs`: the search form and one page of results (see
//! [`gpujobs_queue::history`]: one index range plus the page's records).

use super::{Tab, bad_request, frame, job_href, parse_when, redis_down, state_badge, when};
use crate::app::State;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use gpujobs_core::{DeviceClass, JobState};
use gpujobs_queue::history::{JobFilter, StateFilter};
use maud::html;

/// The form's fields; empty ones are ignored.
#[derive(serde::Deserialize, Default)]
pub(crate) struct Params {
    id: Option<String>,
    kind: Option<String>,
    state: Option<String>,
    lane: Option<String>,
    worker: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    after_ms: Option<u64>,
    after_id: Option<String>,
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Params {
    fn filter(&self) -> Result<JobFilter, String> {
        let state = match some(&self.state).as_deref() {
            None | Some("ended") => StateFilter::Ended,
            Some(s) => StateFilter::Only(
                s.parse::<JobState>()
                    .map_err(|_| format!("unknown state `{s}`"))?,
            ),
        };
        let lane = some(&self.lane)
            .map(|l| {
                l.parse::<DeviceClass>()
                    .map_err(|_| format!("unknown lane `{l}` (cpu or gpu)"))
            })
            .transpose()?;
        let time = |v: &Option<String>, name: &str| {
            some(v)
                .map(|t| {
                    parse_when(&t).ok_or(format!(
                        "{name}: `{t}` is not a time like 2026-12-07T09:30 (UTC)"
                    ))
                })
                .transpose()
        };
        Ok(JobFilter {
            id: some(&self.id),
            kind: some(&self.kind),
            state,
            lane,
            worker: some(&self.worker),
            from_ms: time(&self.from, "from")?,
            to_ms: time(&self.to, "to")?,
            after: self.after_ms.zip(some(&self.after_id)),
            limit: self.limit.unwrap_or(50).clamp(1, 500),
        })
    }

    /// This search's query string for the next page.
    fn next_query(&self, after: &(u64, String)) -> String {
        let mut q: Vec<(String, String)> = [
            ("id", &self.id),
            ("kind", &self.kind),
            ("state", &self.state),
            ("lane", &self.lane),
            ("worker", &self.worker),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter_map(|(k, v)| some(v).map(|v| (k.to_string(), v)))
        .collect();
        if let Some(l) = self.limit {
            q.push(("limit".into(), l.to_string()));
        }
        q.push(("after_ms".into(), after.0.to_string()));
        q.push(("after_id".into(), after.1.clone()));
        q.iter()
            .map(|(k, v)| format!("{k}={}", super::encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

const STATES: [&str; 9] = [
    "ended",
    "succeeded",
    "failed",
    "dead",
    "cancelled",
    "running",
    "placed",
    "queued",
    "waiting",
];

pub(crate) async fn page(
    axum::extract::State(state): State,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Response {
    let filter = match p.filter() {
        Ok(f) => f,
        Err(e) => return bad_request(&state, &headers, StatusCode::BAD_REQUEST, &e),
    };
    let page = match state.queue.search_jobs(&filter).await {
        Ok(v) => v,
        Err(e) => return redis_down(&state, &headers, "Jobs", Tab::Jobs, &e),
    };
    let chosen = some(&p.state).unwrap_or_else(|| "ended".into());
    let body = html! {
        form #search method="get" action="/jobs" {
            label { "id " input type="search" name="id" value=[some(&p.id)] placeholder="exact id"; }
            label { "kind " input name="kind" value=[some(&p.kind)] placeholder="matmul"; }
            label { "state "
                select name="state" {
                    @for s in STATES { option value=(s) selected[s == chosen] { (s) } }
                }
            }
            label { "lane "
                select name="lane" {
                    option value="" { "any" }
                    @for l in DeviceClass::ALL { option value=(l.as_str()) selected[some(&p.lane).as_deref() == Some(l.as_str())] { (l.as_str()) } }
                }
            }
            label { "worker " input name="worker" value=[some(&p.worker)]; }
            label { "from " input type="datetime-local" step="1" name="from" value=[some(&p.from)]; }
            label { "to " input type="datetime-local" step="1" name="to" value=[some(&p.to)]; }
            button type="submit" { "Search" }
            span.muted { "times in UTC" }
        }
        @if let Some(n) = &page.note { p.muted.note { (n) } }
        table #results {
            thead { tr { th { "id" } th { "state" } th { "kind" } th { "lane" } th { "worker" } th.n { "attempts" } th { "submitted" } th { "ended" } th { "error" } } }
            tbody {
                @for r in &page.rows {
                    tr {
                        td { a href=(job_href(&r.id)) { (r.id) } }
                        td { (state_badge(&r.state)) }
                        td { (r.kind) }
                        td { (r.lane.as_deref().unwrap_or("")) }
                        td { (r.worker.as_deref().unwrap_or("")) }
                        td.n { (r.attempts) }
                        td { (when(r.created_us / 1000)) }
                        td { (r.finished_ms.map(when).unwrap_or_default()) }
                        td.err { (r.error.as_deref().map(|e| e.chars().take(160).collect::<String>()).unwrap_or_default()) }
                    }
                }
                @if page.rows.is_empty() { tr { td colspan="9" .muted { "No job matches." } } }
            }
        }
        @if let Some(next) = &page.next {
            @if page.rows.len() >= filter.limit || page.note.is_some() {
                p { a #next href={ "/jobs?" (p.next_query(next)) } { "Next page →" } }
            }
        }
        p.muted { "Looked at " (page.scanned) " index entries." }
    };
    Html(frame(&state, &headers, "Jobs", Tab::Jobs, None, body).into_string()).into_response()
}
