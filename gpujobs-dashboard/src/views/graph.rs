//! `/jobs/<id>/graph`: the graph a job belongs to, drawn in layers (parents above
//! children), each job with its state, where it ran, and whether its outputs stayed
//! resident on a worker (ephemeral).

use super::{Tab, bad_request, frame, job_href, redis_down};
use crate::app::State;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use gpujobs_core::{JobId, JobRecord};
use maud::html;
use std::collections::HashMap;

const BOX_W: f64 = 170.0;
const BOX_H: f64 = 54.0;
const GAP_X: f64 = 30.0;
const GAP_Y: f64 = 50.0;

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
    let read = async {
        let ids = state.queue.graph_of(&job).await?;
        let mut recs = Vec::new();
        for i in &ids {
            if let Some(j) = JobId::parse(i)
                && let Some(r) = state.queue.record_fields(&j).await?
            {
                recs.push(r);
            }
        }
        Ok::<_, gpujobs_core::QueueError>(recs)
    };
    let recs = match read.await {
        Ok(r) if !r.is_empty() => r,
        Ok(_) => {
            return bad_request(
                &state,
                &headers,
                StatusCode::NOT_FOUND,
                &format!("no job {id} (unknown, or its record expired)"),
            );
        }
        Err(e) => return redis_down(&state, &headers, "Graph", Tab::Jobs, &e),
    };
    let layers = layers(recs.iter().map(|(r, _)| r).collect());
    let pos: HashMap<&str, (f64, f64)> = layers
        .iter()
        .enumerate()
        .flat_map(|(y, row)| {
            row.iter().enumerate().map(move |(x, r)| {
                (
                    r.id.as_str(),
                    (
                        x as f64 * (BOX_W + GAP_X) + 10.0,
                        y as f64 * (BOX_H + GAP_Y) + 10.0,
                    ),
                )
            })
        })
        .collect();
    let width = layers.iter().map(Vec::len).max().unwrap_or(1) as f64 * (BOX_W + GAP_X) + 20.0;
    let height = layers.len() as f64 * (BOX_H + GAP_Y) + 10.0;
    let ephemeral: HashMap<&str, bool> = recs
        .iter()
        .map(|(r, raw)| {
            (
                r.id.as_str(),
                raw.get("env")
                    .is_some_and(|e| e.contains("\"ephemeral\":true")),
            )
        })
        .collect();
    let body = html! {
        p.muted { "Parents above their children; an arrow runs from the job whose output is read. "
            "A dashed box kept its outputs only in its worker's cache (ephemeral)." }
        svg #graph viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) role="img" aria-label="job graph" {
            defs { marker #arrow viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" { path d="M 0 0 L 10 5 L 0 10 z" {} } }
            @for (r, _) in &recs {
                @for p in &r.parents {
                    @if let (Some(a), Some(b)) = (pos.get(p.as_str()), pos.get(r.id.as_str())) {
                        line.edge x1=(a.0 + BOX_W / 2.0) y1=(a.1 + BOX_H) x2=(b.0 + BOX_W / 2.0) y2=(b.1) marker-end="url(#arrow)" {}
                    }
                }
            }
            @for (r, _) in &recs {
                @if let Some((x, y)) = pos.get(r.id.as_str()) {
                    a href=(job_href(r.id.as_str())) class="node" data-id=(r.id.as_str()) data-state=(r.state.as_str()) {
                        rect class={ "node " (r.state.as_str()) @if ephemeral.get(r.id.as_str()) == Some(&true) { " ephemeral" } @if r.id.as_str() == id { " current" } }
                            x=(x) y=(y) width=(BOX_W) height=(BOX_H) rx="6" {}
                        text x=(x + 8.0) y=(y + 17.0) class="id" { (short(r.id.as_str())) }
                        text x=(x + 8.0) y=(y + 33.0) class="label" { (r.kind) " · " (r.state.as_str()) }
                        text x=(x + 8.0) y=(y + 48.0) class="label" { (r.worker.as_deref().map(short).unwrap_or_else(|| "not run".into())) }
                    }
                }
            }
        }
        table #graph-jobs {
            thead { tr { th { "job" } th { "state" } th { "kind" } th { "worker" } th { "reads" } } }
            tbody {
                @for (r, _) in &recs {
                    tr data-state=(r.state.as_str()) {
                        td { a href=(job_href(r.id.as_str())) { (r.id.as_str()) } }
                        td { (super::state_badge(r.state.as_str())) }
                        td { (r.kind) }
                        td { (r.worker.as_deref().unwrap_or("")) }
                        td { @for p in &r.parents { (p.as_str()) " " } }
                    }
                }
            }
        }
    };
    Html(
        frame(
            &state,
            &headers,
            &format!("Graph of {id}"),
            Tab::Jobs,
            None,
            body,
        )
        .into_string(),
    )
    .into_response()
}

/// Jobs by depth: roots first, each job one layer below its deepest parent.
fn layers(recs: Vec<&JobRecord>) -> Vec<Vec<&JobRecord>> {
    let by_id: HashMap<&str, &JobRecord> = recs.iter().map(|r| (r.id.as_str(), *r)).collect();
    let mut depth: HashMap<&str, usize> = HashMap::new();
    fn depth_of<'a>(
        id: &'a str,
        by_id: &HashMap<&'a str, &'a JobRecord>,
        memo: &mut HashMap<&'a str, usize>,
        guard: usize,
    ) -> usize {
        if let Some(d) = memo.get(id) {
            return *d;
        }
        let d = match by_id.get(id) {
            Some(r) if guard < 500 => r
                .parents
                .iter()
                .filter(|p| by_id.contains_key(p.as_str()))
                .map(|p| depth_of(p.as_str(), by_id, memo, guard + 1) + 1)
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        memo.insert(id, d);
        d
    }
    let mut out: Vec<Vec<&JobRecord>> = Vec::new();
    for r in &recs {
        let d = depth_of(r.id.as_str(), &by_id, &mut depth, 0);
        if out.len() <= d {
            out.resize_with(d + 1, Vec::new);
        }
        out[d].push(r);
    }
    out
}

/// Ids shortened for a box (the table below has them whole): without the graph's
/// `{tag}`, which every job of the graph shares, and cut at 24 characters.
fn short(s: &str) -> String {
    let s = match (s.find('{'), s.find('}')) {
        (Some(0), Some(close)) if close + 1 < s.len() => &s[close + 1..],
        _ => s,
    };
    if s.chars().count() > 24 {
        format!("{}…", s.chars().take(23).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn boxes_show_names_without_the_graph_tag() {
        assert_eq!(super::short("{01M98AB8}edges"), "edges");
        assert_eq!(super::short("plain-id"), "plain-id");
        assert_eq!(super::short("{only-a-tag}"), "{only-a-tag}");
        assert_eq!(super::short(&"x".repeat(30)).chars().count(), 24);
    }
}
