//! Prometheus metrics of `gpujobs worker` and `gpujobs scheduler` (`--metrics-addr`),
//! on the `prometheus-client` crate: counters and histograms fed by the worker and
//! scheduler observers, gauges refreshed from Redis every few seconds, served as
//! OpenMetrics text on `/metrics`, with `/healthz` (the process answers: liveness) and
//! `/readyz` (Redis answered within the last 20 s: readiness).

use gpujobs_core::worker::output_cache::OutputCache;
use gpujobs_core::{DeviceClass, Queue};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

mod observers;
mod serve;

pub use serve::{refresh_every_5s, serve_if_asked};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    device: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    kind: String,
    device: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    lane: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
    lane: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    worker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheReadLabels {
    worker: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GpuLabels {
    device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolRequestLabels {
    result: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type HistFamily = Family<StageLabels, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 10 µs to ~40 min in factors of 4.
    Histogram::new(exponential_buckets(1e-5, 4.0, 16))
}

/// A worker's output cache: its worker id, the cache, and its hits, misses and re-runs
/// at the last render.
type WatchedCache = (String, Arc<OutputCache>, [u64; 3]);

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    durations: HistFamily,
    lane_ready: Family<LaneLabels, Gauge>,
    lane_delayed: Family<LaneLabels, Gauge>,
    lane_in_flight: Family<LaneLabels, Gauge>,
    retries: Counter,
    dead_letters: Counter,
    placed: Family<LaneLabels, Counter>,
    placed_by_locality: Family<LaneLabels, Counter>,
    rejected: Counter,
    heartbeat_age: Family<WorkerLabels, FloatGauge>,
    gpu_memory_used: Family<GpuLabels, Gauge>,
    gpu_memory_total: Family<GpuLabels, Gauge>,
    redis_up: Gauge,
    pool_bytes: Family<PoolLabels, Gauge>,
    pool_requests: Family<PoolRequestLabels, Counter>,
    pool_released: Counter,
    cache_bytes: Family<CacheLabels, Gauge>,
    cache_reads: Family<CacheReadLabels, Counter>,
    cache_reruns: Family<CacheLabels, Counter>,
    /// The output caches of this process's workers, with their counters at the last
    /// render (hits, misses, re-runs).
    caches: Mutex<Vec<WatchedCache>>,
    /// The pool counters at the last render, to turn its totals into counter steps.
    pool_seen: std::sync::Mutex<gpujobs_core::buffer::PoolStats>,
    /// When Redis last answered a refresh (ms since the epoch; 0: never).
    redis_ok_ms: AtomicU64,
    /// What the last failed refresh was told by Redis, for `/readyz`.
    redis_error: Mutex<Option<String>>,
}

/// How long after Redis last answered `/readyz` stops saying ready, even with no refresh
/// failing (refreshes run every 5 s).
const READY_WINDOW_MS: u64 = 20_000;

impl Metrics {
    /// All metrics, zeroed.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("gpujobs");
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Job attempts that ended, by kind, device and outcome",
            jobs.clone(),
        );
        let durations = HistFamily::new_with_constructor(seconds_histogram);
        registry.register(
            "job_duration_seconds",
            "Time of succeeded jobs by stage: queue_wait, transfer (h2d + d2h), compute, total",
            durations.clone(),
        );
        let lane_ready = Family::<LaneLabels, Gauge>::default();
        registry.register(
            "lane_ready",
            "Jobs ready on a lane, not yet fetched",
            lane_ready.clone(),
        );
        let lane_delayed = Family::<LaneLabels, Gauge>::default();
        registry.register(
            "lane_delayed",
            "Jobs of a lane waiting out a retry backoff",
            lane_delayed.clone(),
        );
        let lane_in_flight = Family::<LaneLabels, Gauge>::default();
        registry.register(
            "lane_in_flight",
            "Jobs of a lane leased to workers",
            lane_in_flight.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "retries",
            "Failed attempts that will be retried",
            retries.clone(),
        );
        let dead_letters = Counter::default();
        registry.register(
            "dead_letters",
            "Jobs this process sent to the dead-letter stream",
            dead_letters.clone(),
        );
        let placed = Family::<LaneLabels, Counter>::default();
        registry.register(
            "placed",
            "Jobs placed on a lane by this scheduler",
            placed.clone(),
        );
        let placed_by_locality = Family::<LaneLabels, Counter>::default();
        registry.register(
            "placed_by_locality",
            "Jobs this scheduler placed on the worker holding their inputs (counted in placed too)",
            placed_by_locality.clone(),
        );
        let rejected = Counter::default();
        registry.register(
            "rejected",
            "Submissions this scheduler dead-lettered as invalid",
            rejected.clone(),
        );
        let heartbeat_age = Family::<WorkerLabels, FloatGauge>::default();
        registry.register(
            "worker_heartbeat_age_seconds",
            "Seconds since each live worker's last heartbeat",
            heartbeat_age.clone(),
        );
        let gpu_memory_used = Family::<GpuLabels, Gauge>::default();
        registry.register(
            "gpu_memory_used_bytes",
            "Device memory in use",
            gpu_memory_used.clone(),
        );
        let gpu_memory_total = Family::<GpuLabels, Gauge>::default();
        registry.register(
            "gpu_memory_total_bytes",
            "Device memory in total",
            gpu_memory_total.clone(),
        );
        let redis_up = Gauge::default();
        registry.register(
            "redis_up",
            "1 when the last refresh (every 5 s) reached Redis, else 0",
            redis_up.clone(),
        );
        let pool_bytes = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "buffer_pool_bytes",
            "Host buffer pool: bytes idle in the pool, handed out to jobs, and the budget for idle bytes",
            pool_bytes.clone(),
        );
        let pool_requests = Family::<PoolRequestLabels, Counter>::default();
        registry.register(
            "buffer_pool_requests",
            "Host buffers taken from the pool: hit (recycled memory, no page faults) or miss (new memory)",
            pool_requests.clone(),
        );
        let pool_released = Counter::default();
        registry.register(
            "buffer_pool_released_bytes",
            "Bytes the host buffer pool gave back to the OS to stay within its budget",
            pool_released.clone(),
        );
        let cache_bytes = Family::<CacheLabels, Gauge>::default();
        registry.register(
            "output_cache_bytes",
            "Bytes of graph outputs a worker's cache holds",
            cache_bytes.clone(),
        );
        let cache_reads = Family::<CacheReadLabels, Counter>::default();
        registry.register(
            "output_cache_reads",
            "Graph inputs looked up in a worker's cache: hit (no Redis read) or miss",
            cache_reads.clone(),
        );
        let cache_reruns = Family::<CacheLabels, Counter>::default();
        registry.register(
            "output_cache_reruns",
            "Ephemeral producers a worker re-ran because it did not hold their output",
            cache_reruns.clone(),
        );
        Arc::new(Metrics {
            registry,
            cache_bytes,
            cache_reads,
            cache_reruns,
            caches: Mutex::default(),
            pool_bytes,
            pool_requests,
            pool_released,
            pool_seen: std::sync::Mutex::default(),
            jobs,
            durations,
            lane_ready,
            lane_delayed,
            lane_in_flight,
            retries,
            dead_letters,
            placed,
            placed_by_locality,
            rejected,
            heartbeat_age,
            gpu_memory_used,
            gpu_memory_total,
            redis_up,
            redis_ok_ms: AtomicU64::new(0),
            redis_error: Mutex::new(None),
        })
    }

    /// `Ok` when the last refresh reached Redis and was within [`READY_WINDOW_MS`] (a
    /// refresh stuck on a silent network counts as a failure), else why not.
    fn ready(&self) -> Result<(), String> {
        let last = self.redis_ok_ms.load(Ordering::Relaxed);
        let age = gpujobs_core::model::envelope::now_ms().saturating_sub(last);
        // The last error Redis gave, so a probe says why (refused credentials, OOM).
        let why = match &*self.redis_error.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => format!(": {e}"),
            None => String::new(),
        };
        if last == 0 {
            Err(format!("Redis has not answered yet{why}"))
        } else if self.redis_up.get() == 1 && age <= READY_WINDOW_MS {
            Ok(())
        } else {
            Err(format!("Redis has not answered for {} s{why}", age / 1000))
        }
    }

    /// Reads the host buffer pool's counters (the process's default pool, which every
    /// backend of this binary uses).
    fn refresh_pool(&self) {
        let now = gpujobs_core::BufferPool::global().stats();
        for (state, v) in [
            ("idle", now.idle_bytes),
            ("out", now.out_bytes),
            ("budget", now.budget_bytes),
        ] {
            self.pool_bytes
                .get_or_create(&PoolLabels {
                    state: state.into(),
                })
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
        let mut seen = self.pool_seen.lock().unwrap_or_else(|p| p.into_inner());
        for (result, v, before) in [
            ("hit", now.hits, seen.hits),
            ("miss", now.misses, seen.misses),
        ] {
            self.pool_requests
                .get_or_create(&PoolRequestLabels {
                    result: result.into(),
                })
                .inc_by(v.saturating_sub(before));
        }
        self.pool_released
            .inc_by(now.released_bytes.saturating_sub(seen.released_bytes));
        *seen = now;
    }

    /// Reports the output cache of worker `worker` from now on.
    pub fn watch_cache(&self, worker: String, cache: Arc<OutputCache>) {
        self.caches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((worker, cache, [0; 3]));
    }

    /// Reads the workers' output caches.
    fn refresh_caches(&self) {
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        for (worker, cache, seen) in caches.iter_mut() {
            let labels = CacheLabels {
                worker: worker.clone(),
            };
            self.cache_bytes
                .get_or_create(&labels)
                .set(i64::try_from(cache.bytes()).unwrap_or(i64::MAX));
            let (hits, misses) = cache.hits_and_misses();
            let now = [hits, misses, cache.reruns()];
            for (i, result) in ["hit", "miss"].into_iter().enumerate() {
                self.cache_reads
                    .get_or_create(&CacheReadLabels {
                        worker: worker.clone(),
                        result: result.into(),
                    })
                    .inc_by(now[i].saturating_sub(seen[i]));
            }
            self.cache_reruns
                .get_or_create(&labels)
                .inc_by(now[2].saturating_sub(seen[2]));
            *seen = now;
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        self.refresh_pool();
        self.refresh_caches();
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }

    /// Records what Redis answered when it was not reachable (for `/readyz`).
    pub fn redis_failed(&self, e: &gpujobs_core::QueueError) {
        self.redis_up.set(0);
        *self.redis_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    /// Refreshes the gauges read from Redis and the GPUs.
    async fn refresh(&self, queue: &dyn Queue, backends: &[Arc<dyn gpujobs_core::Backend>]) {
        let lanes = queue.lane_stats().await;
        match &lanes {
            Ok(_) => {
                self.redis_up.set(1);
                self.redis_ok_ms
                    .store(gpujobs_core::model::envelope::now_ms(), Ordering::Relaxed);
            }
            Err(_) => {
                self.redis_up.set(0);
            }
        }
        *self.redis_error.lock().unwrap_or_else(|p| p.into_inner()) =
            lanes.as_ref().err().map(|e| e.to_string());
        if let Ok(lanes) = lanes {
            for l in lanes {
                let labels = LaneLabels {
                    lane: l.lane.to_string(),
                };
                self.lane_ready.get_or_create(&labels).set(l.ready as i64);
                self.lane_delayed
                    .get_or_create(&labels)
                    .set(l.delayed as i64);
                self.lane_in_flight
                    .get_or_create(&labels)
                    .set(l.in_flight as i64);
            }
        }
        if let Ok(workers) = queue.workers().await {
            self.heartbeat_age.clear();
            let now = gpujobs_core::model::envelope::now_ms();
            for w in workers {
                let age = now.saturating_sub(w.last_seen_ms) as f64 / 1e3;
                self.heartbeat_age
                    .get_or_create(&WorkerLabels {
                        worker: w.id,
                        lane: w.lane.to_string(),
                    })
                    .set(age);
            }
        }
        for g in backends
            .iter()
            .filter(|b| b.device().class == DeviceClass::Gpu)
        {
            if let Ok(gpujobs_core::DeviceMemory { free, total }) = g.memory().await {
                let labels = GpuLabels {
                    device: g.device().to_string(),
                };
                self.gpu_memory_used
                    .get_or_create(&labels)
                    .set(total.saturating_sub(free) as i64);
                self.gpu_memory_total
                    .get_or_create(&labels)
                    .set(total as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpujobs_core::{Outcome, SchedulerObserver, Timings, WorkerObserver};

    /// Every family with one sample, so each shows up in the text.
    fn populated() -> Arc<Metrics> {
        let m = Metrics::new();
        let t = Timings::default();
        m.attempt_ended("matmul", DeviceClass::Gpu, Outcome::Succeeded, Some(&t));
        m.attempt_ended("matmul", DeviceClass::Gpu, Outcome::Retrying, None);
        m.placed(DeviceClass::Cpu);
        m.placed_by_locality(DeviceClass::Cpu);
        m.rejected();
        let lane = LaneLabels { lane: "cpu".into() };
        m.lane_ready.get_or_create(&lane).set(1);
        m.lane_delayed.get_or_create(&lane).set(1);
        m.lane_in_flight.get_or_create(&lane).set(1);
        let worker = WorkerLabels {
            worker: "w".into(),
            lane: "cpu".into(),
        };
        m.heartbeat_age.get_or_create(&worker).set(1.0);
        let gpu = GpuLabels { device: "d".into() };
        m.gpu_memory_used.get_or_create(&gpu).set(1);
        m.gpu_memory_total.get_or_create(&gpu).set(2);
        m
    }

    /// A worker's output cache shows up as bytes held, hits, misses and re-runs, counted
    /// since the last render.
    #[test]
    fn output_caches_are_reported() {
        let m = Metrics::new();
        let cache = Arc::new(OutputCache::new(1 << 20));
        let job = gpujobs_core::JobId::parse("{g}a").unwrap();
        let mut blobs = gpujobs_core::Blobs::new();
        blobs.insert("t0".into(), vec![1.0f32; 4].into());
        let output = serde_json::json!({"c": {"shape": [4], "blob": "t0"}});
        assert!(cache.insert(&job, &output, &blobs));
        let key = gpujobs_core::OutputRef {
            job,
            output: "c".into(),
        };
        assert!(cache.get(&key).is_some());
        cache.count_rerun();
        m.watch_cache("w1".into(), cache.clone());
        let text = m.render();
        assert!(
            text.contains(r#"gpujobs_output_cache_bytes{worker="w1"} 16"#),
            "{text}"
        );
        assert!(
            text.contains(r#"gpujobs_output_cache_reads_total{worker="w1",result="hit"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"gpujobs_output_cache_reruns_total{worker="w1"} 1"#),
            "{text}"
        );
        // Counted once: a second render adds nothing new.
        assert!(cache.get(&key).is_some());
        let text = m.render();
        assert!(
            text.contains(r#"gpujobs_output_cache_reads_total{worker="w1",result="hit"} 2"#),
            "{text}"
        );
    }

    /// The alert rules shipped in deploy/ name only metrics that exist.
    #[test]
    fn alert_rules_use_real_metric_names() {
        let text = populated().render();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(families.len() >= 13, "{text}");
        assert!(
            text.contains(r#"gpujobs_placed_by_locality_total{lane="cpu"} 1"#),
            "{text}"
        );
        let rules = include_str!("../../../deploy/prometheus/alerts.yml");
        let mut used = 0;
        for token in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !token.starts_with("gpujobs_") {
                continue;
            }
            used += 1;
            let base = ["_bucket", "_count", "_sum", "_total"]
                .iter()
                .find_map(|s| token.strip_suffix(s))
                .unwrap_or(token);
            assert!(
                families.contains(&base),
                "alerts.yml uses {token}, which gpujobs does not export ({families:?})"
            );
        }
        assert!(used >= 10, "alerts.yml names {used} gpujobs metrics");
    }

    #[test]
    fn readiness_follows_redis() {
        let m = Metrics::new();
        assert!(m.ready().unwrap_err().contains("not answered yet"));
        m.redis_up.set(1);
        m.redis_ok_ms
            .store(gpujobs_core::model::envelope::now_ms(), Ordering::Relaxed);
        assert!(m.ready().is_ok());
        m.redis_up.set(0);
        assert!(m.ready().is_err());
        // A refresh stuck since long ago is not ready either.
        m.redis_up.set(1);
        m.redis_ok_ms.store(
            gpujobs_core::model::envelope::now_ms() - READY_WINDOW_MS - 1000,
            Ordering::Relaxed,
        );
        assert!(m.ready().unwrap_err().contains("not answered for"));
        // Why Redis did not answer, when it said (a refused password, a full Redis).
        *m.redis_error.lock().unwrap() = Some("WRONGPASS invalid username-password pair".into());
        let why = m.ready().unwrap_err();
        assert!(
            why.contains("not answered for") && why.contains("WRONGPASS"),
            "{why}"
        );
    }
}
