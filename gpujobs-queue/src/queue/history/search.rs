//! Finding jobs: ended ones through the history indexes (one index range plus the
//! page's records), live ones from the heads of the lane streams. No request scans
//! the keyspace; a page reads O(page) keys, with a bounded look-ahead when several
//! filters must agree.

use crate::codec::entries_of;
use crate::connection::backend;
use crate::keys::Keys;
use crate::queue::RedisQueue;
use gpujobs_core::{DeviceClass, JobId, JobState, Priority, QueueError};
use redis::Value;
use std::collections::HashMap;

/// Which states a search wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    /// Every ended job (the history indexes).
    #[default]
    Ended,
    /// One state.
    Only(JobState),
}

/// What a search asks for. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Exactly this job.
    pub id: Option<String>,
    /// Its kind.
    pub kind: Option<String>,
    /// Its state.
    pub state: StateFilter,
    /// The lane it ran on.
    pub lane: Option<DeviceClass>,
    /// The worker that ran it.
    pub worker: Option<String>,
    /// Ended (live jobs: created) at or after this, ms since the epoch.
    pub from_ms: Option<u64>,
    /// Ended (live jobs: created) at or before this, ms since the epoch.
    pub to_ms: Option<u64>,
    /// Continue after this (score, id): the `next` of the previous page.
    pub after: Option<(u64, String)>,
    /// Rows per page (1–500).
    pub limit: usize,
}

/// One job in a listing: the record's small fields.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// The job's id.
    pub id: String,
    /// Current state.
    pub state: String,
    /// Kind.
    pub kind: String,
    /// Priority.
    pub priority: String,
    /// Lane it was placed on, if any.
    pub lane: Option<String>,
    /// The worker holding or last holding it.
    pub worker: Option<String>,
    /// Deliveries so far.
    pub attempts: u32,
    /// Submit time, µs since the epoch.
    pub created_us: u64,
    /// When it ended (ms), for ended jobs.
    pub finished_ms: Option<u64>,
    /// The last error's message, if any.
    pub error: Option<String>,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobPage {
    /// The jobs, most recently ended first (live ones: oldest first).
    pub rows: Vec<JobRow>,
    /// Where the next page starts, if there may be more.
    pub next: Option<(u64, String)>,
    /// Index entries looked at to fill the page.
    pub scanned: usize,
    /// Why the page is shorter than asked, when the look-ahead budget ran out or a
    /// state is only listed in part.
    pub note: Option<String>,
}

const ROW_FIELDS: [&str; 9] = [
    "state",
    "kind",
    "priority",
    "lane",
    "worker",
    "attempts",
    "created_us",
    "finished_ms",
    "error",
];

impl JobFilter {
    fn matches(&self, row: &JobRow) -> bool {
        let state_ok = match self.state {
            StateFilter::Ended => super::ENDED.contains(&row.state.as_str()),
            StateFilter::Only(s) => row.state == s.as_str(),
        };
        state_ok
            && self.kind.as_ref().is_none_or(|k| &row.kind == k)
            && self
                .lane
                .is_none_or(|l| row.lane.as_deref() == Some(l.as_str()))
            && self
                .worker
                .as_ref()
                .is_none_or(|w| row.worker.as_ref() == Some(w))
    }

    /// The index dimensions this filter could read, most selective unknown yet.
    fn dimensions(&self) -> Vec<String> {
        let mut d = Vec::new();
        if let StateFilter::Only(s) = self.state {
            d.push(format!("state:{}", s.as_str()));
        }
        if let Some(k) = &self.kind {
            d.push(format!("kind:{k}"));
        }
        if let Some(l) = self.lane {
            d.push(format!("lane:{l}"));
        }
        if let Some(w) = &self.worker {
            d.push(format!("worker:{w}"));
        }
        if d.is_empty() {
            d.push("all".into());
        }
        d
    }
}

/// One partition's position in an index while merging.
struct Cursor {
    buf: std::collections::VecDeque<(u64, String)>,
    hi: Option<u64>,
    seen_at_hi: usize,
    done: bool,
}

impl RedisQueue {
    /// One page of jobs matching `filter` (see [`JobFilter`]).
    pub async fn search_jobs(&self, filter: &JobFilter) -> Result<JobPage, QueueError> {
        let limit = filter.limit.clamp(1, 500);
        if let Some(id) = &filter.id {
            let row = match JobId::parse(id) {
                Some(id) => self.rows(&[id.to_string()]).await?.pop().flatten(),
                None => None,
            };
            return Ok(JobPage {
                rows: row
                    .filter(|r| id_filter_agrees(filter, r))
                    .into_iter()
                    .collect(),
                ..JobPage::default()
            });
        }
        match filter.state {
            StateFilter::Only(s) if !s.is_terminal() => self.search_live(filter, s, limit).await,
            _ => self.search_ended(filter, limit).await,
        }
    }

    /// The small fields of many records, `None` for unknown ones: one pipelined round
    /// trip per partition (a Redis Cluster routes each partition to its node).
    pub async fn rows(&self, ids: &[String]) -> Result<Vec<Option<JobRow>>, QueueError> {
        let n = self.shared.parts.len() as u32;
        let by_part = self.shared.by_partition(
            ids.iter()
                .enumerate()
                .map(|(i, id)| (crate::keys::partition_of(id, n), i)),
        );
        let mut out: Vec<Option<JobRow>> = vec![None; ids.len()];
        for (p, idx) in by_part.iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for &i in idx {
                pipe.cmd("HMGET")
                    .arg(format!("{}:job:{}", self.shared.parts[p].prefix(), ids[i]))
                    .arg(&ROW_FIELDS[..]);
            }
            let v: Vec<Vec<Option<String>>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading job rows"))?;
            for (&i, f) in idx.iter().zip(v) {
                out[i] = row_of(&ids[i], f);
            }
        }
        Ok(out)
    }

    async fn search_ended(&self, filter: &JobFilter, limit: usize) -> Result<JobPage, QueueError> {
        let dim = self.most_selective(&filter.dimensions()).await?;
        let parts = &self.shared.parts;
        let hi0 = match (&filter.after, filter.to_ms) {
            (Some((s, _)), Some(t)) => Some((*s).min(t)),
            (Some((s, _)), None) => Some(*s),
            (None, t) => t,
        };
        let mut cursors: Vec<Cursor> = parts
            .iter()
            .map(|_| Cursor {
                buf: Default::default(),
                hi: hi0,
                seen_at_hi: 0,
                done: false,
            })
            .collect();
        let chunk = (limit * 2).max(50);
        let budget = (limit * 20).max(1_000);
        let mut page = JobPage::default();
        let mut pending: Vec<(u64, String)> = Vec::new();
        loop {
            // Refill every empty buffer in one round trip per partition.
            for (keys, c) in parts.iter().zip(cursors.iter_mut()) {
                if c.buf.is_empty() && !c.done {
                    self.fill(keys, &dim, filter.from_ms, chunk, c).await?;
                }
            }
            // Merge: the most recent head across partitions.
            let best = cursors
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.buf.front().map(|h| (i, h)))
                .max_by(|a, b| a.1.cmp(b.1))
                .map(|(i, _)| i);
            let Some(i) = best else { break };
            let Some((score, id)) = cursors[i].buf.pop_front() else {
                break;
            };
            page.scanned += 1;
            if let Some((s, after)) = &filter.after
                && (score > *s || (score == *s && id >= *after))
            {
                continue;
            }
            pending.push((score, id));
            if pending.len() >= limit || page.scanned >= budget {
                self.check_rows(filter, &mut pending, &mut page, limit)
                    .await?;
            }
            if page.rows.len() >= limit {
                break;
            }
            if page.scanned >= budget {
                page.note = Some(format!(
                    "looked at {} ended jobs to fill this page; more may match further back",
                    page.scanned
                ));
                break;
            }
        }
        self.check_rows(filter, &mut pending, &mut page, limit)
            .await?;
        let exhausted = cursors.iter().all(|c| c.done && c.buf.is_empty());
        if exhausted && page.rows.len() < limit && page.note.is_none() {
            page.next = None;
        }
        Ok(page)
    }

    /// Reads the records of `pending` and keeps those that match, setting `next`.
    async fn check_rows(
        &self,
        filter: &JobFilter,
        pending: &mut Vec<(u64, String)>,
        page: &mut JobPage,
        limit: usize,
    ) -> Result<(), QueueError> {
        if pending.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = pending.iter().map(|(_, id)| id.clone()).collect();
        let rows = self.rows(&ids).await?;
        for ((score, id), row) in pending.drain(..).zip(rows) {
            if page.rows.len() >= limit {
                break;
            }
            page.next = Some((score, id));
            if let Some(row) = row.filter(|r| filter.matches(r)) {
                page.rows.push(row);
            }
        }
        Ok(())
    }

    /// Reads the next chunk of one partition's index into its cursor.
    async fn fill(
        &self,
        keys: &Keys,
        dim: &str,
        from_ms: Option<u64>,
        chunk: usize,
        c: &mut Cursor,
    ) -> Result<(), QueueError> {
        let hi = c.hi.map_or("+inf".to_string(), |h| h.to_string());
        let lo = from_ms.map_or("-inf".to_string(), |l| l.to_string());
        let v: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(keys.index(dim))
            .arg(&hi)
            .arg(&lo)
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(c.seen_at_hi)
            .arg(chunk)
            .arg("WITHSCORES")
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a history index"))?;
        if v.len() < chunk {
            c.done = true;
        }
        for (id, score) in v {
            let score = score as u64;
            if Some(score) == c.hi {
                c.seen_at_hi += 1;
            } else {
                c.hi = Some(score);
                c.seen_at_hi = 1;
            }
            c.buf.push_back((score, id));
        }
        Ok(())
    }

    /// The dimension with the fewest entries over all partitions.
    async fn most_selective(&self, dims: &[String]) -> Result<String, QueueError> {
        if dims.len() == 1 {
            return Ok(dims[0].clone());
        }
        let mut totals = vec![0u64; dims.len()];
        for keys in &self.shared.parts {
            let mut pipe = redis::pipe();
            for d in dims {
                pipe.cmd("ZCARD").arg(keys.index(d));
            }
            let n: Vec<u64> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(backend("sizing the history indexes"))?;
            for (t, n) in totals.iter_mut().zip(n) {
                *t += n;
            }
        }
        let best = totals
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| **n)
            .map_or(0, |(i, _)| i);
        Ok(dims[best].clone())
    }

    /// Live jobs in state `state`: the heads of the lane streams (placed, running), the
    /// retry sets (placed, waiting out a backoff) and the submit stream (queued), oldest
    /// first. Waiting graph jobs are not listed (find them by id or from their graph).
    async fn search_live(
        &self,
        filter: &JobFilter,
        state: JobState,
        limit: usize,
    ) -> Result<JobPage, QueueError> {
        let mut page = JobPage::default();
        if state == JobState::Waiting {
            page.note = Some(
                "jobs waiting for their parents are not listed: open one of the graph's jobs"
                    .into(),
            );
            return Ok(page);
        }
        let lanes: Vec<DeviceClass> = match filter.lane {
            Some(l) => vec![l],
            None => DeviceClass::ALL.to_vec(),
        };
        let mut ids: Vec<String> = Vec::new();
        for keys in &self.shared.parts {
            let mut pipe = redis::pipe();
            if state == JobState::Queued {
                pipe.cmd("XRANGE")
                    .arg(keys.submit())
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit);
            } else {
                for &lane in &lanes {
                    for p in Priority::ALL {
                        pipe.cmd("XRANGE")
                            .arg(keys.lane(lane, p))
                            .arg("-")
                            .arg("+")
                            .arg("COUNT")
                            .arg(limit);
                    }
                    pipe.cmd("ZRANGE")
                        .arg(keys.delayed(lane))
                        .arg(0)
                        .arg(limit as i64 - 1);
                }
            }
            let v: Vec<Value> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading the lane streams"))?;
            for reply in &v {
                match reply {
                    Value::Array(items) if items.iter().all(|i| !matches!(i, Value::Array(_))) => {
                        ids.extend(items.iter().filter_map(crate::codec::text));
                    }
                    _ => {
                        for e in entries_of("", reply) {
                            let id = e.text("id");
                            if !id.is_empty() {
                                ids.push(id);
                            } else if let Some(env) = e.field("job") {
                                ids.extend(envelope_id(env));
                            }
                        }
                    }
                }
            }
        }
        ids.dedup();
        let rows = self.rows(&ids).await?;
        let lo = filter.from_ms.unwrap_or(0).saturating_mul(1000);
        let hi = filter.to_ms.map_or(u64::MAX, |t| t.saturating_mul(1000));
        page.scanned = ids.len();
        page.rows = rows
            .into_iter()
            .flatten()
            .filter(|r| filter.matches(r) && (lo..=hi).contains(&r.created_us))
            .take(limit)
            .collect();
        page.note = Some(format!(
            "live jobs are listed from the head of each lane (up to {limit} per stream); find others by id"
        ));
        Ok(page)
    }
}

/// An id search also honours the other filters a form sent along.
fn id_filter_agrees(filter: &JobFilter, row: &JobRow) -> bool {
    let mut f = filter.clone();
    if f.state == StateFilter::Ended {
        f.state = StateFilter::Only(match row.state.parse() {
            Ok(s) => s,
            Err(_) => return false,
        });
    }
    f.matches(row)
}

fn envelope_id(env: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<String>,
    }
    serde_json::from_slice::<Id>(env).ok()?.id
}

fn row_of(id: &str, f: Vec<Option<String>>) -> Option<JobRow> {
    let mut f: HashMap<&str, String> = ROW_FIELDS
        .iter()
        .copied()
        .zip(f)
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
    let state = f.remove("state")?;
    let error = f.remove("error").map(|e| {
        serde_json::from_str::<serde_json::Value>(&e)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or(e)
    });
    Some(JobRow {
        id: id.to_string(),
        state,
        kind: f.remove("kind").unwrap_or_default(),
        priority: f.remove("priority").unwrap_or_else(|| "normal".into()),
        lane: f.remove("lane"),
        worker: f.remove("worker"),
        attempts: f.get("attempts").and_then(|a| a.parse().ok()).unwrap_or(0),
        created_us: f
            .get("created_us")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        finished_ms: f.get("finished_ms").and_then(|a| a.parse().ok()),
        error,
    })
}
