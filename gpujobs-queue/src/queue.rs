//! `RedisQueue`: the [`Queue`] trait on Redis Streams.

use crate::codec::{
    blob_bytes, blob_refs, blob_values, excerpt, parse_submission, record_from_hash,
};
use crate::config::RedisConfig;
use crate::connection::{
    MAX_BLOCK, backend, ensure_groups, is_nogroup, open, warn_about_durability,
};
use crate::keys::{Keys, SCHEDULERS, WORKERS};
use crate::read::{Begun, Entry, begun_rows, entries_of, int, stream_reply, text};
use crate::scripts::Scripts;
use async_trait::async_trait;
use gpujobs_core::envelope::{now_ms, now_us};
use gpujobs_core::queue::{
    CancelOutcome, DeadLetter, Delivery, FailOutcome, Incoming, LaneStats, Lease, RenewOutcome,
    WorkerInfo,
};
use gpujobs_core::{
    Blobs, BufferPool, DeviceClass, ErrorClass, JobEnvelope, JobError, JobId, JobRecord, JobResult,
    JobState, PlacementDecision, Priority, Queue, QueueError, ValidationError,
};
use redis::Value;
use redis::aio::ConnectionManager;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The job queue on Redis Streams (see `docs/wire-format.md`).
pub struct RedisQueue {
    cfg: RedisConfig,
    keys: Keys,
    conn: ConnectionManager,
    /// One connection per consumer for blocking reads, so a BLOCK never holds up other
    /// commands (they share the multiplexed `conn`).
    blocking: tokio::sync::Mutex<HashMap<String, ConnectionManager>>,
    scripts: Arc<Scripts>,
    /// (lane, consumer) pairs whose own pending entries were drained at start.
    drained: Mutex<HashSet<(DeviceClass, String)>>,
    /// Fetch credits per consumer for the weighted round-robin over priorities.
    credits: Mutex<HashMap<String, [i64; 3]>>,
    /// Submit time of each job leased through this queue handle, for `total_s`.
    created: Mutex<HashMap<JobId, u64>>,
    /// When stale submit entries were last reclaimed.
    submit_reclaimed: Mutex<Option<Instant>>,
    /// Set after a failed command: a reply may have been lost with entries already
    /// delivered to our consumers, so they re-read their own pending entries next.
    reread_own: AtomicBool,
    /// Where blobs read from Redis land (page-aligned, recycled host buffers).
    buffers: BufferPool,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("url", &self.cfg.redacted_url())
            .field("namespace", &self.cfg.namespace)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fetch weights of high, normal and low priority (as in the embedded queue).
const WEIGHTS: [i64; 3] = [6, 3, 1];

/// Splits `max` fetch slots between priorities by smooth weighted round-robin, keeping
/// the credits between calls so that single-slot fetches still rotate.
fn quotas(credits: &mut [i64; 3], max: usize) -> [usize; 3] {
    let total: i64 = WEIGHTS.iter().sum();
    let mut q = [0usize; 3];
    for _ in 0..max {
        for i in 0..3 {
            credits[i] += WEIGHTS[i];
        }
        let pick = (0..3)
            .max_by_key(|&i| (credits[i], -(i as i64)))
            .unwrap_or(0);
        credits[pick] -= total;
        q[pick] += 1;
    }
    q
}

fn split_entry(lease: &Lease) -> Result<(&str, &str), QueueError> {
    lease
        .entry
        .rsplit_once('|')
        .ok_or_else(|| QueueError::LeaseLost(lease.job_id.to_string()))
}

impl RedisQueue {
    /// Connects once: fails with a clear error if Redis is unreachable. Creates the
    /// consumer groups and warns when Redis may evict or lose data.
    pub async fn connect(cfg: RedisConfig) -> Result<Self, QueueError> {
        let mut conn = open(&cfg, Duration::from_secs(30)).await?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(backend("PING"))?;
        if pong != "PONG" {
            return Err(QueueError::Backend(format!(
                "unexpected PING reply {pong:?}"
            )));
        }
        let keys = Keys::new(&cfg.namespace);
        ensure_groups(&mut conn, &keys).await?;
        if cfg.warn_durability {
            warn_about_durability(&mut conn, &cfg).await;
        }
        let scripts = Arc::new(Scripts::new(cfg.events_max, cfg.dead_letter_max));
        Ok(RedisQueue {
            cfg,
            keys,
            conn,
            blocking: tokio::sync::Mutex::new(HashMap::new()),
            scripts,
            drained: Mutex::default(),
            credits: Mutex::default(),
            created: Mutex::default(),
            submit_reclaimed: Mutex::new(None),
            reread_own: AtomicBool::new(false),
            buffers: BufferPool::global().clone(),
        })
    }

    /// Reads blobs into buffers from `pool` instead of the process's default pool.
    pub fn with_buffers(mut self, pool: BufferPool) -> Self {
        self.buffers = pool;
        self
    }

    /// Connects, retrying with exponential backoff (0.2 s doubling to 10 s) until Redis
    /// answers or `give_up_after` passes (`None`: forever), logging each failure.
    pub async fn connect_retrying(
        cfg: RedisConfig,
        give_up_after: Option<Duration>,
    ) -> Result<Self, QueueError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            match Self::connect(cfg.clone()).await {
                Ok(q) => return Ok(q),
                Err(e) => {
                    if give_up_after.is_some_and(|limit| start.elapsed() + delay > limit) {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, retry_in = ?delay, "Redis unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &RedisConfig {
        &self.cfg
    }

    /// The key names in use.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn blocking_conn(&self, consumer: &str) -> Result<ConnectionManager, QueueError> {
        let mut map = self.blocking.lock().await;
        if let Some(c) = map.get(consumer) {
            return Ok(c.clone());
        }
        let c = open(&self.cfg, MAX_BLOCK + Duration::from_secs(5)).await?;
        map.insert(consumer.to_string(), c.clone());
        Ok(c)
    }

    /// Runs a script invocation; re-creates the consumer groups once if Redis lost them.
    async fn eval(
        &self,
        what: &str,
        script: &redis::Script,
        args: Vec<Vec<u8>>,
    ) -> Result<Value, QueueError> {
        let mut conn = self.conn();
        for attempt in 0..2 {
            let mut inv = script.prepare_invoke();
            inv.arg(self.keys.ns());
            for a in &args {
                inv.arg(a.as_slice());
            }
            match inv.invoke_async::<Value>(&mut conn).await {
                Ok(v) => return Ok(v),
                Err(e) if attempt == 0 && is_nogroup(&e) => {
                    ensure_groups(&mut conn, &self.keys).await?
                }
                Err(e) => {
                    self.reread_own.store(true, Ordering::Release);
                    return Err(QueueError::Backend(format!("{what}: {e}")));
                }
            }
        }
        Err(QueueError::Backend(format!(
            "{what}: consumer groups keep disappearing"
        )))
    }

    /// XREADGROUP, non-blocking on the shared connection or blocking on the consumer's own.
    async fn read_group(
        &self,
        group: &str,
        consumer: &str,
        streams: &[String],
        ids: &[&str],
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, QueueError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count.max(1));
        if let Some(b) = block {
            cmd.arg("BLOCK")
                .arg(b.min(MAX_BLOCK).as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(streams).arg(ids);
        let mut conn = if block.is_some() {
            self.blocking_conn(consumer).await?
        } else {
            self.conn()
        };
        for attempt in 0..2 {
            match cmd.query_async::<Value>(&mut conn).await {
                Ok(v) => return Ok(stream_reply(&v)),
                Err(e) if attempt == 0 && is_nogroup(&e) => {
                    ensure_groups(&mut self.conn(), &self.keys).await?
                }
                Err(e) => {
                    self.reread_own.store(true, Ordering::Release);
                    return Err(QueueError::Backend(format!(
                        "reading {}: {e}",
                        streams.join(", ")
                    )));
                }
            }
        }
        Ok(Vec::new())
    }

    fn lane_streams(&self, lane: DeviceClass) -> Vec<String> {
        Priority::ALL
            .iter()
            .map(|&p| self.keys.lane(lane, p))
            .collect()
    }

    /// Reads up to `max` new entries of a lane, splitting slots between priorities.
    async fn read_lane(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Entry>, QueueError> {
        let streams = self.lane_streams(lane);
        if self.reread_own.swap(false, Ordering::AcqRel) {
            lock(&self.drained).clear();
        }
        let first = lock(&self.drained).insert((lane, consumer.to_string()));
        if first {
            // A worker that restarts under the same name first takes back what it held.
            let own = self
                .read_group(WORKERS, consumer, &streams, &["0", "0", "0"], max, None)
                .await?;
            if !own.is_empty() {
                tracing::info!(
                    consumer,
                    count = own.len(),
                    "re-delivering this consumer's pending entries"
                );
                return Ok(own);
            }
        }
        let q = quotas(
            lock(&self.credits)
                .entry(consumer.to_string())
                .or_insert([0; 3]),
            max,
        );
        let mut got = Vec::new();
        for (i, stream) in streams.iter().enumerate() {
            if q[i] > 0 {
                got.extend(
                    self.read_group(
                        WORKERS,
                        consumer,
                        std::slice::from_ref(stream),
                        &[">"],
                        q[i],
                        None,
                    )
                    .await?,
                );
            }
        }
        // Slots a priority left unused go to the others, most urgent first.
        for stream in &streams {
            if got.len() >= max {
                break;
            }
            let more = max - got.len();
            got.extend(
                self.read_group(
                    WORKERS,
                    consumer,
                    std::slice::from_ref(stream),
                    &[">"],
                    more,
                    None,
                )
                .await?,
            );
        }
        if got.is_empty() && !wait.is_zero() {
            got = self
                .read_group(
                    WORKERS,
                    consumer,
                    &streams,
                    &[">", ">", ">"],
                    max,
                    Some(wait),
                )
                .await?;
        }
        got.truncate(max.max(1));
        Ok(got)
    }

    /// Loads the blobs an envelope refers to.
    async fn load_blobs(
        &self,
        id: &JobId,
        payload: &serde_json::Value,
        prefix: &str,
    ) -> Result<Blobs, QueueError> {
        let mut refs = Vec::new();
        blob_refs(payload, &mut refs);
        let mut blobs = Blobs::new();
        if refs.is_empty() {
            return Ok(blobs);
        }
        let keys: Vec<String> = refs
            .iter()
            .map(|r| self.keys.blob(id, &format!("{prefix}{r}")))
            .collect();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading blobs"))?;
        for (name, bytes) in refs.into_iter().zip(values) {
            // A missing blob (expired) stays missing: the executor then fails the job
            // permanently with "blob `t0` is missing".
            if let Some(bytes) = bytes {
                let v = blob_values(&bytes, &self.buffers)
                    .map_err(|e| QueueError::Backend(format!("blob {name} of job {id}: {e}")))?;
                blobs.insert(name, v.into());
            }
        }
        Ok(blobs)
    }

    /// Turns BEGIN / RECLAIM rows into deliveries.
    async fn deliveries(
        &self,
        lane: DeviceClass,
        consumer: &str,
        rows: Vec<Begun>,
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut out = Vec::new();
        for row in rows.into_iter().filter(|r| r.status == 1) {
            let Some(id) = JobId::parse(&row.id) else {
                continue;
            };
            let lease = Lease {
                job_id: id.clone(),
                lane,
                attempt: row.attempts,
                consumer: consumer.to_string(),
                entry: format!("{}|{}", row.stream, row.entry),
            };
            let parsed = row.env.as_deref().map(serde_json::from_str::<JobEnvelope>);
            let mut env = match parsed {
                Some(Ok(env)) => env,
                other => {
                    let why = match other {
                        Some(Err(e)) => format!("stored envelope is unreadable: {e}"),
                        _ => "stored envelope is missing".to_string(),
                    };
                    self.fail(&lease, &JobError::permanent(why)).await?;
                    continue;
                }
            };
            env.id = id.clone();
            env.attempts = row.attempts;
            env.created_us = row.created_us.max(env.created_us);
            env.blobs = self.load_blobs(&id, &env.payload, "").await?;
            lock(&self.created).insert(id.clone(), env.created_us);
            if row.cancel {
                tracing::debug!(job = %id, "delivered with cancellation already requested");
            }
            out.push(Delivery {
                lease,
                envelope: env,
            });
        }
        Ok(out)
    }

    async fn promote(&self, lane: DeviceClass) -> Result<(), QueueError> {
        let args = vec![
            lane.as_str().into(),
            now_ms().to_string().into(),
            b"256".to_vec(),
        ];
        self.eval("promoting retries", &self.scripts.promote, args)
            .await
            .map(|_| ())
    }

    fn lease_args(lease: &Lease) -> Result<Vec<Vec<u8>>, QueueError> {
        let (stream, entry) = split_entry(lease)?;
        Ok(vec![
            stream.into(),
            entry.into(),
            lease.consumer.clone().into(),
            lease.attempt.to_string().into(),
            lease.job_id.to_string().into(),
        ])
    }

    /// State changes recorded in the last `window`: (job id, state) pairs, oldest first.
    pub async fn recent_events(
        &self,
        window: Duration,
    ) -> Result<Vec<(String, String)>, QueueError> {
        let since = now_ms().saturating_sub(window.as_millis() as u64);
        let v: Value = redis::cmd("XRANGE")
            .arg(self.keys.events())
            .arg(format!("{since}-0"))
            .arg("+")
            .arg("COUNT")
            .arg(200_000)
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading events"))?;
        Ok(entries_of("", &v)
            .into_iter()
            .map(|e| (e.text("id"), e.text("state")))
            .collect())
    }

    /// The states of many jobs at once (one pipelined round trip); `None` for unknown
    /// or expired records. Cheaper than `status` for watching a batch.
    pub async fn states(&self, ids: &[JobId]) -> Result<Vec<Option<JobState>>, QueueError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HGET").arg(self.keys.job(id)).arg("state");
        }
        let v: Vec<Option<String>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading job states"))?;
        Ok(v.into_iter()
            .map(|s| {
                s.and_then(|s| match s.as_str() {
                    "queued" => Some(JobState::Queued),
                    "placed" => Some(JobState::Placed),
                    "running" => Some(JobState::Running),
                    "succeeded" => Some(JobState::Succeeded),
                    "failed" => Some(JobState::Failed),
                    "dead" => Some(JobState::Dead),
                    "cancelled" => Some(JobState::Cancelled),
                    _ => None,
                })
            })
            .collect())
    }

    /// Number of entries in the dead-letter stream.
    pub async fn dead_letter_count(&self) -> Result<u64, QueueError> {
        redis::cmd("XLEN")
            .arg(self.keys.dead())
            .query_async(&mut self.conn())
            .await
            .map_err(backend("counting dead letters"))
    }

    /// Submits a raw entry to the submit stream, as a program in another language
    /// would (`XADD <ns>:submit * job <json>`). For tests and tools.
    pub async fn submit_raw(&self, job_field: &[u8]) -> Result<String, QueueError> {
        redis::cmd("XADD")
            .arg(self.keys.submit())
            .arg("*")
            .arg("job")
            .arg(job_field)
            .query_async(&mut self.conn())
            .await
            .map_err(backend("XADD submit"))
    }
}

#[async_trait]
impl Queue for RedisQueue {
    async fn submit(&self, mut job: JobEnvelope) -> Result<JobId, QueueError> {
        job.stamp_for_submit();
        let id = job.id.clone();
        let mut pipe = redis::pipe();
        for (name, values) in &job.blobs {
            let bytes = blob_bytes(values);
            if bytes.len() as u64 > self.cfg.max_blob_bytes {
                return Err(QueueError::Invalid(ValidationError::TooLarge {
                    needed: bytes.len() as u128,
                    limit: self.cfg.max_blob_bytes,
                    what: format!("tensor blob `{name}`"),
                }));
            }
            pipe.cmd("SET")
                .arg(self.keys.blob(&id, name))
                .arg(&*bytes)
                .arg("PX")
                .arg(self.cfg.blob_ttl.as_millis() as u64)
                .ignore();
        }
        if !job.blobs.is_empty() {
            pipe.query_async::<()>(&mut self.conn())
                .await
                .map_err(backend("storing blobs"))?;
        }
        let env_json = serde_json::to_string(&job)?;
        let args = vec![
            id.to_string().into(),
            env_json.into(),
            job.kind.clone().into(),
            job.priority.as_str().into(),
            serde_json::to_value(job.device)?
                .as_str()
                .unwrap_or("auto")
                .into(),
            job.max_attempts.to_string().into(),
            job.created_us.to_string().into(),
            now_ms().to_string().into(),
        ];
        self.eval("submitting", &self.scripts.submit, args).await?;
        Ok(id)
    }

    async fn status(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.job(id))
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a job record"))?;
        let Some(mut rec) = record_from_hash(id, &h) else {
            return Ok(None);
        };
        if let Some(result) = rec.result.as_mut() {
            result.blobs = self.load_blobs(id, &result.output, "out:").await?;
        }
        Ok(Some(rec))
    }

    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        let args = vec![
            id.to_string().into(),
            now_ms().to_string().into(),
            (self.cfg.finished_ttl.as_millis() as u64)
                .to_string()
                .into(),
        ];
        let v = self.eval("cancelling", &self.scripts.cancel, args).await?;
        let r = text(&v).unwrap_or_default();
        Ok(match r.as_str() {
            "notfound" => CancelOutcome::NotFound,
            "requested" => CancelOutcome::Requested,
            "cancelled" => CancelOutcome::Cancelled,
            other => {
                let state = match other.trim_start_matches("finished:") {
                    "succeeded" => JobState::Succeeded,
                    "failed" => JobState::Failed,
                    "dead" => JobState::Dead,
                    _ => JobState::Cancelled,
                };
                CancelOutcome::AlreadyFinished(state)
            }
        })
    }

    async fn wait(&self, id: &JobId, timeout: Duration) -> Result<Option<JobRecord>, QueueError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval = Duration::from_millis(1);
        loop {
            let state: Option<String> = redis::cmd("HGET")
                .arg(self.keys.job(id))
                .arg("state")
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading a job state"))?;
            let done = match state.as_deref() {
                None => true,
                Some(s) => matches!(s, "succeeded" | "failed" | "dead" | "cancelled"),
            };
            if done || tokio::time::Instant::now() >= deadline {
                return self.status(id).await;
            }
            tokio::time::sleep(
                interval.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
            interval = (interval * 2).min(Duration::from_millis(50));
        }
    }

    async fn take_submitted(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Incoming>, QueueError> {
        let submit = self.keys.submit();
        let mut entries = Vec::new();
        let due = {
            let mut last = lock(&self.submit_reclaimed);
            let due = last.is_none_or(|t| t.elapsed() >= self.cfg.scheduler_lease / 2);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            // Entries a scheduler took but never handed off (it died): take them over.
            let v: Result<Value, _> = redis::cmd("XAUTOCLAIM")
                .arg(&submit)
                .arg(SCHEDULERS)
                .arg(consumer)
                .arg(self.cfg.scheduler_lease.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(max.max(1))
                .query_async(&mut self.conn())
                .await;
            match v {
                Ok(Value::Array(parts)) if parts.len() >= 2 => {
                    entries = entries_of(&submit, &parts[1])
                }
                Ok(_) => {}
                Err(e) if is_nogroup(&e) => ensure_groups(&mut self.conn(), &self.keys).await?,
                Err(e) => return Err(QueueError::Backend(format!("reclaiming submissions: {e}"))),
            }
        }
        if entries.is_empty() && self.reread_own.swap(false, Ordering::AcqRel) {
            // After an error, entries may have been delivered to us with the reply lost.
            lock(&self.drained).clear();
            let own = std::slice::from_ref(&submit);
            entries = self
                .read_group(SCHEDULERS, consumer, own, &["0"], max, None)
                .await?;
        }
        if entries.is_empty() {
            let block = (!wait.is_zero()).then_some(wait);
            entries = self
                .read_group(
                    SCHEDULERS,
                    consumer,
                    std::slice::from_ref(&submit),
                    &[">"],
                    max,
                    block,
                )
                .await?;
        }
        Ok(entries
            .into_iter()
            .map(|e| {
                let field = e.field("job");
                let job = parse_submission(field);
                let raw = job.is_err().then(|| excerpt(field.unwrap_or(b"")));
                Incoming {
                    entry: e.id,
                    job,
                    raw,
                }
            })
            .collect())
    }

    async fn place(
        &self,
        incoming: &Incoming,
        decision: PlacementDecision,
    ) -> Result<(), QueueError> {
        let env = incoming
            .job
            .as_ref()
            .map_err(|e| QueueError::Backend(format!("cannot place an unreadable entry: {e}")))?;
        let args = vec![
            incoming.entry.clone().into(),
            env.id.to_string().into(),
            serde_json::to_string(env)?.into(),
            env.kind.clone().into(),
            env.priority.as_str().into(),
            serde_json::to_value(env.device)?
                .as_str()
                .unwrap_or("auto")
                .into(),
            env.max_attempts.to_string().into(),
            env.created_us.to_string().into(),
            decision.lane.as_str().into(),
            serde_json::to_string(&decision)?.into(),
            format!("{:.9}", decision.run_estimate_s.max(0.0)).into(),
            now_ms().to_string().into(),
        ];
        self.eval("placing a job", &self.scripts.place, args)
            .await
            .map(|_| ())
    }

    async fn reject(&self, incoming: &Incoming, reason: &str) -> Result<(), QueueError> {
        let (id, kind) = match &incoming.job {
            Ok(env) => (env.id.to_string(), env.kind.clone()),
            Err(_) => (String::new(), String::new()),
        };
        let error = serde_json::to_string(&JobError::permanent(reason))?;
        let args = vec![
            incoming.entry.clone().into(),
            id.into(),
            kind.into(),
            reason.to_string().into(),
            incoming.raw.clone().unwrap_or_default().into(),
            now_ms().to_string().into(),
            error.into(),
        ];
        self.eval("dead-lettering an entry", &self.scripts.reject, args)
            .await
            .map(|_| ())
    }

    async fn fetch(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            self.promote(lane).await?;
            // Block no longer than until the next retry comes due, so it is promoted.
            let next_due: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(self.keys.delayed(lane))
                .arg(0)
                .arg(0)
                .arg("WITHSCORES")
                .query_async(&mut self.conn())
                .await
                .map_err(backend("reading retries"))?;
            let mut block = deadline.saturating_duration_since(Instant::now());
            if let Some((_, due)) = next_due.first() {
                let until_due =
                    Duration::from_millis((*due as u64).saturating_sub(now_ms()).max(1));
                block = block.min(until_due);
            }
            let entries = self.read_lane(lane, consumer, max, block).await?;
            if !entries.is_empty() {
                let mut args: Vec<Vec<u8>> = vec![
                    lane.as_str().into(),
                    consumer.to_string().into(),
                    now_ms().to_string().into(),
                    (lease.as_millis() as u64).to_string().into(),
                ];
                for e in &entries {
                    let id = e.field("id").unwrap_or(b"").to_vec();
                    args.extend([e.stream.clone().into_bytes(), e.id.clone().into_bytes(), id]);
                }
                let v = self
                    .eval("starting jobs", &self.scripts.begin, args)
                    .await?;
                let got = self.deliveries(lane, consumer, begun_rows(&v)).await?;
                if !got.is_empty() {
                    return Ok(got);
                }
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    async fn renew(&self, lease: &Lease, extend: Duration) -> Result<RenewOutcome, QueueError> {
        let mut args = Self::lease_args(lease)?;
        args.push((extend.as_millis() as u64).to_string().into_bytes());
        let v = self
            .eval("renewing a lease", &self.scripts.renew, args)
            .await?;
        match int(&v) {
            Some(-1) => Err(QueueError::LeaseLost(lease.job_id.to_string())),
            Some(c) => Ok(RenewOutcome {
                cancel_requested: c == 1,
            }),
            None => Err(QueueError::Backend(
                "renewing a lease: unexpected reply".into(),
            )),
        }
    }

    async fn complete(&self, lease: &Lease, mut result: JobResult) -> Result<(), QueueError> {
        let id = &lease.job_id;
        let ttl = self.cfg.finished_ttl.as_millis() as u64;
        let mut pipe = redis::pipe();
        for (name, values) in &result.blobs {
            let bytes = blob_bytes(values);
            if bytes.len() as u64 > self.cfg.max_blob_bytes {
                let why = format!(
                    "output tensor `{name}` of {} bytes exceeds the blob limit of {} bytes",
                    bytes.len(),
                    self.cfg.max_blob_bytes
                );
                self.fail(lease, &JobError::permanent(why)).await?;
                return Ok(());
            }
            pipe.cmd("SET")
                .arg(self.keys.blob(id, &format!("out:{name}")))
                .arg(&*bytes)
                .arg("PX")
                .arg(ttl)
                .ignore();
        }
        if !result.blobs.is_empty() {
            pipe.query_async::<()>(&mut self.conn())
                .await
                .map_err(backend("storing result blobs"))?;
        }
        if let Some(created) = lock(&self.created).remove(id) {
            result.timings.total_s = now_us().saturating_sub(created) as f64 / 1e6;
        }
        let mut args = Self::lease_args(lease)?;
        args.extend([
            serde_json::to_string(&result)?.into_bytes(),
            now_ms().to_string().into_bytes(),
            ttl.to_string().into_bytes(),
        ]);
        let v = self
            .eval("completing a job", &self.scripts.complete, args)
            .await?;
        match int(&v) {
            Some(1) => Ok(()),
            _ => Err(QueueError::LeaseLost(id.to_string())),
        }
    }

    async fn fail(&self, lease: &Lease, error: &JobError) -> Result<FailOutcome, QueueError> {
        lock(&self.created).remove(&lease.job_id);
        let delay = self.cfg.retry.delay(lease.attempt, lease.job_id.as_str());
        let class = match error.class {
            ErrorClass::Permanent => "permanent",
            ErrorClass::Temporary => "temporary",
            ErrorClass::Cancelled => "cancelled",
        };
        let mut args = Self::lease_args(lease)?;
        args.extend([
            serde_json::to_string(error)?.into_bytes(),
            class.into(),
            (delay.as_millis() as u64).to_string().into_bytes(),
            now_ms().to_string().into_bytes(),
            (self.cfg.finished_ttl.as_millis() as u64)
                .to_string()
                .into_bytes(),
            lease.lane.as_str().into(),
            error.message.clone().into_bytes(),
        ]);
        let v = self
            .eval("recording a failure", &self.scripts.fail, args)
            .await?;
        match text(&v).as_deref() {
            Some("retrying") => Ok(FailOutcome::Retrying {
                attempts: lease.attempt,
                delay,
            }),
            Some("failed") => Ok(FailOutcome::Failed),
            Some("dead") => Ok(FailOutcome::Dead),
            Some("cancelled") => Ok(FailOutcome::Cancelled),
            _ => Err(QueueError::LeaseLost(lease.job_id.to_string())),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        lock(&self.created).remove(&lease.job_id);
        let mut args = Self::lease_args(lease)?;
        args.extend([
            lease.lane.as_str().into(),
            now_ms().to_string().into_bytes(),
            (self.cfg.finished_ttl.as_millis() as u64)
                .to_string()
                .into_bytes(),
        ]);
        let v = self
            .eval("releasing a job", &self.scripts.release, args)
            .await?;
        match int(&v) {
            Some(-1) => Err(QueueError::LeaseLost(lease.job_id.to_string())),
            _ => Ok(()),
        }
    }

    async fn reclaim_expired(
        &self,
        lane: DeviceClass,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let args = vec![
            lane.as_str().into(),
            consumer.to_string().into(),
            now_ms().to_string().into(),
            (lease.as_millis() as u64).to_string().into(),
            max.to_string().into(),
        ];
        let v = self
            .eval("reclaiming expired leases", &self.scripts.reclaim, args)
            .await?;
        self.deliveries(lane, consumer, begun_rows(&v)).await
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let v: Value = redis::cmd("XREVRANGE")
            .arg(self.keys.dead())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(max.max(1))
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading dead letters"))?;
        Ok(entries_of("", &v)
            .into_iter()
            .map(|e| {
                let f = |k: &str| e.text(k);
                let opt = |s: String| (!s.is_empty()).then_some(s);
                DeadLetter {
                    id: f("id"),
                    kind: opt(f("kind")),
                    reason: f("reason"),
                    attempts: f("attempts").parse().unwrap_or(0),
                    at_ms: f("at_ms").parse().unwrap_or(0),
                    raw: opt(f("raw")),
                }
            })
            .collect())
    }

    async fn retry_dead(&self, id: &JobId) -> Result<bool, QueueError> {
        let env: Option<String> = redis::cmd("HGET")
            .arg(self.keys.job(id))
            .arg("env")
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a job"))?;
        if let Some(env) = env.and_then(|e| serde_json::from_str::<serde_json::Value>(&e).ok()) {
            // Give the inputs a fresh lease on life: the retry may come long after submit.
            let mut refs = Vec::new();
            blob_refs(&env["payload"], &mut refs);
            if !refs.is_empty() {
                let mut pipe = redis::pipe();
                for r in refs {
                    pipe.cmd("PEXPIRE")
                        .arg(self.keys.blob(id, &r))
                        .arg(self.cfg.blob_ttl.as_millis() as u64)
                        .ignore();
                }
                pipe.query_async::<()>(&mut self.conn())
                    .await
                    .map_err(backend("extending blob lifetimes"))?;
            }
        }
        let v = self
            .eval(
                "retrying a dead letter",
                &self.scripts.retry_dead,
                vec![id.to_string().into(), now_ms().to_string().into()],
            )
            .await?;
        Ok(int(&v) == Some(1))
    }

    async fn heartbeat(&self, info: &WorkerInfo) -> Result<(), QueueError> {
        let mut info = info.clone();
        info.last_seen_ms = now_ms();
        redis::cmd("HSET")
            .arg(self.keys.workers())
            .arg(&info.id)
            .arg(serde_json::to_string(&info)?)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("heartbeat"))
    }

    async fn deregister(&self, worker_id: &str) -> Result<(), QueueError> {
        redis::cmd("HDEL")
            .arg(self.keys.workers())
            .arg(worker_id)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(backend("deregistering"))
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, QueueError> {
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.workers())
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading workers"))?;
        let now = now_ms();
        let live_after = now.saturating_sub(self.cfg.worker_ttl.as_millis() as u64);
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (id, json) in all {
            match serde_json::from_str::<WorkerInfo>(&json) {
                Ok(w) if w.last_seen_ms >= live_after => live.push(w),
                Ok(w) if w.last_seen_ms + 3_600_000 < now => gone.push(id),
                Ok(_) => {}
                Err(_) => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _: Result<(), _> = redis::cmd("HDEL")
                .arg(self.keys.workers())
                .arg(&gone)
                .query_async(&mut self.conn())
                .await;
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }

    async fn lane_stats(&self) -> Result<Vec<LaneStats>, QueueError> {
        let mut out = Vec::new();
        for lane in DeviceClass::ALL {
            let mut pipe = redis::pipe();
            for stream in self.lane_streams(lane) {
                pipe.cmd("XLEN").arg(&stream);
                pipe.cmd("XPENDING").arg(&stream).arg(WORKERS);
            }
            pipe.cmd("ZCARD").arg(self.keys.delayed(lane));
            pipe.cmd("GET").arg(self.keys.backlog(lane));
            let v: Vec<Value> = match pipe.query_async(&mut self.conn()).await {
                Ok(v) => v,
                Err(e) if is_nogroup(&e) => {
                    ensure_groups(&mut self.conn(), &self.keys).await?;
                    continue;
                }
                Err(e) => return Err(QueueError::Backend(format!("reading lane stats: {e}"))),
            };
            let (mut len, mut pending) = (0u64, 0u64);
            for i in 0..3 {
                len += int(&v[2 * i]).unwrap_or(0).max(0) as u64;
                if let Value::Array(summary) = &v[2 * i + 1] {
                    pending += summary.first().and_then(int).unwrap_or(0).max(0) as u64;
                }
            }
            let delayed = int(&v[6]).unwrap_or(0).max(0) as u64;
            let backlog_s = text(&v[7])
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0)
                .max(0.0);
            out.push(LaneStats {
                lane,
                ready: len.saturating_sub(pending),
                delayed,
                in_flight: pending,
                backlog_s,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::quotas;

    #[test]
    fn quotas_follow_the_weights_and_rotate() {
        let mut c = [0; 3];
        assert_eq!(quotas(&mut c, 10), [6, 3, 1]);
        let mut c = [0; 3];
        let picks: Vec<usize> = (0..10)
            .map(|_| quotas(&mut c, 1).iter().position(|&q| q == 1).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 6);
        assert_eq!(picks.iter().filter(|&&p| p == 2).count(), 1);
        assert_eq!(picks[0], 0, "high first");
    }
}
