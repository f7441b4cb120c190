//! Waiting on many jobs until they end, shared by `gpujobs wait` and `gpujobs submit
//! --wait`: polls their states in chunks, shows progress, prints a tally and a table of
//! each kind and device with median timings.

use crate::error::CliError;
use gpujobs_core::queue::SubmitQueue;
use gpujobs_core::scheduler::placement::fmt_seconds;
use gpujobs_core::{JobId, JobRecord};
use gpujobs_queue::RedisQueue;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How waiting ended.
pub struct Tally {
    /// Terminal states seen, by name ("lost": the record is gone).
    pub states: BTreeMap<&'static str, usize>,
    /// Ids still unfinished at the deadline.
    pub unfinished: Vec<JobId>,
}

/// Polls until every job is terminal or `timeout` has passed since `started`.
pub async fn until_done(
    q: &RedisQueue,
    ids: &[JobId],
    started: Instant,
    timeout: Duration,
    progress: bool,
) -> Result<Tally, CliError> {
    let bar = if progress {
        ProgressBar::new(ids.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut pending: Vec<JobId> = ids.to_vec();
    let mut states: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut delay = Duration::from_millis(5);
    while !pending.is_empty() && started.elapsed() < timeout {
        let mut still = Vec::with_capacity(pending.len());
        // Jobs finish roughly in submit order: poll chunk by chunk from the oldest and
        // stop at the first chunk with unfinished jobs, so waiting on many jobs does not
        // load Redis more than running them.
        let mut chunks = pending.chunks(500);
        for chunk in chunks.by_ref() {
            let got = q.states(chunk).await?;
            let unfinished = got
                .iter()
                .any(|s| s.as_ref().is_some_and(|s| !s.is_terminal()));
            for (id, state) in chunk.iter().zip(got) {
                match state {
                    Some(s) if s.is_terminal() => {
                        *states.entry(s.as_str()).or_default() += 1;
                        bar.inc(1);
                    }
                    None => {
                        *states.entry("lost").or_default() += 1;
                        bar.inc(1);
                    }
                    Some(_) => still.push(id.clone()),
                }
            }
            if unfinished {
                break;
            }
        }
        for chunk in chunks {
            still.extend_from_slice(chunk);
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }
    bar.finish_and_clear();
    Ok(Tally {
        states,
        unfinished: pending,
    })
}

/// Prints the tally (text or JSON); `Ok` only if every job succeeded. `wall` is the
/// time from the first submission to the end of waiting, or `None` when only waiting
/// was timed (`gpujobs wait`), which says nothing about throughput.
pub fn report(total: usize, tally: &Tally, wall: Option<f64>, json: bool) -> Result<(), CliError> {
    report_with(total, tally, wall, json, serde_json::Map::new())
}

/// [`report`], with `extra` fields added to its JSON (`submit --graph`: the jobs' ids).
pub fn report_with(
    total: usize,
    tally: &Tally,
    wall: Option<f64>,
    json: bool,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<(), CliError> {
    let count = |s: &str| tally.states.get(s).copied().unwrap_or(0);
    let succeeded = count("succeeded");
    let rate = wall.map(|w| total as f64 / w.max(1e-9));
    if json {
        let mut summary = serde_json::json!({
            "submitted": total,
            "succeeded": succeeded,
            "failed": count("failed"),
            "dead": count("dead"),
            "cancelled": count("cancelled"),
            "lost": count("lost"),
            "unfinished": tally.unfinished.len(),
            "wall_s": wall,
            "jobs_per_s": rate,
        });
        if let Some(map) = summary.as_object_mut() {
            map.extend(extra);
        }
        println!("{summary}");
    } else {
        let timing = match (wall, rate) {
            (Some(w), Some(r)) => format!(" in {w:.2} s ({r:.0} jobs/s)"),
            _ => String::new(),
        };
        println!(
            "{total} jobs: {succeeded} succeeded, {} failed, {} dead, {} cancelled, {} unfinished{timing}",
            count("failed"),
            count("dead"),
            count("cancelled"),
            tally.unfinished.len(),
        );
    }
    if succeeded == total {
        Ok(())
    } else {
        Err(CliError::runtime(format!(
            "{} of {total} jobs did not succeed",
            total - succeeded
        )))
    }
}

/// The records of `ids` (missing ones left out), 64 requests at a time.
pub async fn records(q: &Arc<RedisQueue>, ids: &[JobId]) -> Result<Vec<JobRecord>, CliError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(64) {
        let mut set = JoinSet::new();
        for id in chunk {
            let (q, id) = (q.clone(), id.clone());
            set.spawn(async move { q.status(&id).await });
        }
        while let Some(r) = set.join_next().await {
            let r = r.map_err(|e| CliError::runtime(e.to_string()))?;
            out.extend(r?);
        }
    }
    Ok(out)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The table by kind and device (the lane a job ran on), and the span from the first
/// submission to the last finish with the throughput over it.
pub fn by_kind_table(recs: &[JobRecord]) -> String {
    #[derive(Default)]
    struct Row {
        jobs: usize,
        ok: usize,
        wait: Vec<f64>,
        compute: Vec<f64>,
        total: Vec<f64>,
    }
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for r in recs {
        let lane = r.lane.map_or("-".to_string(), |l| l.to_string());
        let row = rows.entry((r.kind.clone(), lane)).or_default();
        row.jobs += 1;
        if let Some(res) = &r.result {
            row.ok += 1;
            row.wait.push(res.timings.queue_wait_s);
            row.compute.push(res.timings.compute_s);
            row.total.push(res.timings.total_s.max(res.timings.run_s));
        }
    }
    let fmt = |v: &Vec<f64>| median(v.clone()).map_or("-".into(), fmt_seconds);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|((kind, lane), r)| {
            vec![
                kind.clone(),
                lane.clone(),
                r.jobs.to_string(),
                r.ok.to_string(),
                fmt(&r.wait),
                fmt(&r.compute),
                fmt(&r.total),
            ]
        })
        .collect();
    let mut out = crate::report::table(
        &[
            "kind",
            "device",
            "jobs",
            "succeeded",
            "wait p50",
            "compute p50",
            "total p50",
        ],
        &table,
    );
    let first_us = recs.iter().map(|r| r.created_us).min();
    let last_ms = recs.iter().filter_map(|r| r.finished_ms).max();
    if let (Some(first), Some(last)) = (first_us, last_ms) {
        let span = (last as f64 / 1e3 - first as f64 / 1e6).max(1e-3);
        out.push_str(&format!(
            "first submitted to last finished: {} ({:.1} jobs/s)\n",
            fmt_seconds(span),
            recs.len() as f64 / span
        ));
    }
    out
}
