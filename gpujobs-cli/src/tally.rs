//! Waiting on many jobs until they end, shared by `gpujobs wait` and `gpujobs submit
//! --wait`: reads the streams of ended jobs (with a slow poll of the states beneath),
//! shows progress, prints a tally and a table of each kind and device with median
//! timings.

use crate::error::CliError;
use gpujobs_core::model::envelope::now_ms;
use gpujobs_core::queue::SubmitQueue;
use gpujobs_core::scheduler::placement::fmt_seconds;
use gpujobs_core::{JobId, JobRecord, JobState};
use gpujobs_queue::RedisQueue;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashSet};
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

/// How often the states of the oldest pending jobs are read, as a safety net under the
/// ended-jobs streams (entries trimmed from the capped streams, records that expired).
const SAFETY_POLL: Duration = Duration::from_secs(1);
/// The longest pause between two reads of the ended-jobs streams.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Waits until every job is terminal or `timeout` has passed since `started`.
///
/// Reads the streams of ended jobs (`RedisQueue::ended_since`: one `XREAD` per partition
/// and round, however many jobs end), and once a second the states of the oldest
/// pending jobs as a safety net. Polling every job's state instead cost about one Redis
/// command per job, as much as a fifth of what running it costs.
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
    let mut waiting = Waiting {
        pending: ids.iter().cloned().collect(),
        oldest: ids.to_vec(),
        states: BTreeMap::new(),
        bar,
    };
    // From when waiting began by this machine's clock, with a margin for the skew to
    // Redis's (entries of other jobs are read and ignored).
    let since = now_ms().saturating_sub(started.elapsed().as_millis() as u64 + 10_000);
    let mut cursor = q.ended_cursor(since);
    let mut pause = Duration::from_millis(2);
    // The first round reads the oldest states at once: jobs that ended before waiting
    // began (`gpujobs wait` on finished jobs) may be older than the streams' entries.
    let mut polled: Option<Instant> = None;
    while !waiting.pending.is_empty() && started.elapsed() < timeout {
        let ended = q.ended_since(&mut cursor, 10_000).await?;
        let mut progressed = false;
        for (id, state) in ended {
            progressed |= waiting.ended(&id, Some(state));
        }
        if polled.is_none_or(|t| t.elapsed() >= SAFETY_POLL) {
            waiting.poll_oldest(q).await?;
            polled = Some(Instant::now());
        }
        if waiting.pending.is_empty() {
            break;
        }
        if progressed {
            pause = Duration::from_millis(2);
        } else {
            let left = timeout.saturating_sub(started.elapsed());
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
    waiting.bar.finish_and_clear();
    let Waiting {
        pending,
        oldest,
        states,
        ..
    } = waiting;
    Ok(Tally {
        states,
        unfinished: oldest
            .into_iter()
            .filter(|id| pending.contains(id))
            .collect(),
    })
}

/// The jobs still waited for, and how the others ended.
struct Waiting {
    pending: HashSet<JobId>,
    /// Every job in submit order, trimmed of ended ones at each safety poll.
    oldest: Vec<JobId>,
    states: BTreeMap<&'static str, usize>,
    bar: ProgressBar,
}

impl Waiting {
    /// Records that `id` ended in `state` (`None`: its record is gone); `false` when it
    /// was not waited for (another client's job, or seen already).
    fn ended(&mut self, id: &JobId, state: Option<JobState>) -> bool {
        if !self.pending.remove(id) {
            return false;
        }
        let name = state.map_or("lost", |s| s.as_str());
        *self.states.entry(name).or_default() += 1;
        self.bar.inc(1);
        true
    }

    /// Reads the states of the oldest pending jobs, chunk by chunk, up to the first
    /// chunk that still has unfinished jobs (jobs finish roughly in submit order).
    async fn poll_oldest(&mut self, q: &RedisQueue) -> Result<(), CliError> {
        let pending = &self.pending;
        self.oldest.retain(|id| pending.contains(id));
        let oldest = std::mem::take(&mut self.oldest);
        for chunk in oldest.chunks(500) {
            let got = q.states(chunk).await?;
            let mut unfinished = false;
            for (id, state) in chunk.iter().zip(got) {
                match state {
                    Some(s) if !s.is_terminal() => unfinished = true,
                    other => {
                        self.ended(id, other);
                    }
                }
            }
            if unfinished {
                break;
            }
        }
        self.oldest = oldest;
        Ok(())
    }
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
