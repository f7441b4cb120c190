//! `gpujobs watch`: a live terminal view of the cluster.

use crate::cli::WatchArgs;
use crate::connect;
use crate::error::CliError;
use crate::report;
use gpujobs_core::model::envelope::now_ms;
use gpujobs_core::queue::AdminQueue;
use gpujobs_core::scheduler::placement::fmt_seconds;
use gpujobs_queue::{Counts, RedisQueue};
use std::time::Duration;

/// Throughput is averaged over this window.
const WINDOW: Duration = Duration::from_secs(10);

/// The namespace's counters at an instant (submits and successes write no event).
type Sample = (Counts, std::time::Instant);

async fn sample(q: &RedisQueue) -> Result<Sample, CliError> {
    Ok((q.counts().await?, std::time::Instant::now()))
}

/// Jobs submitted and succeeded per second since `prev` (or over the next second
/// without one).
/// Also returns the graph jobs waiting for their parents now.
async fn rates(q: &RedisQueue, prev: &mut Option<Sample>) -> Result<(f64, f64, u64), CliError> {
    let before = match prev.take() {
        Some(s) => s,
        None => {
            let s = sample(q).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            s
        }
    };
    let now = sample(q).await?;
    *prev = Some(now);
    let dt = now.1.duration_since(before.1).as_secs_f64().max(1e-3);
    let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
    Ok((
        rate(now.0.submitted, before.0.submitted),
        rate(now.0.succeeded, before.0.succeeded),
        now.0.waiting,
    ))
}

/// What one refresh shows.
struct Snapshot {
    submitted_per_s: f64,
    succeeded_per_s: f64,
    waiting: u64,
    lanes: Vec<gpujobs_core::queue::LaneStats>,
    workers: Vec<gpujobs_core::queue::WorkerInfo>,
    events: Vec<(String, String)>,
    dead: u64,
}

impl Snapshot {
    fn count(&self, state: &str) -> usize {
        self.events.iter().filter(|(_, st)| st == state).count()
    }
}

async fn take(q: &RedisQueue, prev: &mut Option<Sample>) -> Result<Snapshot, CliError> {
    let (submitted_per_s, succeeded_per_s, waiting) = rates(q, prev).await?;
    Ok(Snapshot {
        submitted_per_s,
        succeeded_per_s,
        waiting,
        lanes: q.lane_stats().await?,
        workers: q.workers().await?,
        events: q.recent_events(WINDOW).await?,
        dead: q.dead_letter_count().await?,
    })
}

/// A snapshot as one JSON object (`watch --json`): the same figures as the text view.
fn json(snap: &Snapshot, ns: &str) -> serde_json::Value {
    let lanes: Vec<serde_json::Value> = snap
        .lanes
        .iter()
        .map(|l| {
            serde_json::json!({"lane": l.lane.as_str(), "ready": l.ready, "retry_wait": l.delayed,
                "in_flight": l.in_flight, "backlog_s": l.backlog_s})
        })
        .collect();
    let now = now_ms();
    let workers: Vec<serde_json::Value> = snap
        .workers
        .iter()
        .map(|w| {
            let mut v = serde_json::to_value(w).unwrap_or_default();
            v["heartbeat_age_s"] =
                serde_json::json!(now.saturating_sub(w.last_seen_ms) as f64 / 1e3);
            v
        })
        .collect();
    serde_json::json!({
        "namespace": ns,
        "lanes": lanes,
        "workers": workers,
        "submitted_per_s": snap.submitted_per_s,
        "succeeded_per_s": snap.succeeded_per_s,
        "window_s": WINDOW.as_secs(),
        "failed": snap.count("failed"),
        "dead": snap.count("dead"),
        "retries": snap.count("retrying"),
        "dead_letters": snap.dead,
        "graph_waiting": snap.waiting,
    })
}

fn text(q: &RedisQueue, snap: &Snapshot, ns: &str) -> String {
    let Snapshot {
        submitted_per_s,
        succeeded_per_s,
        waiting,
        lanes,
        workers,
        dead,
        ..
    } = snap;
    let mut out = format!(
        "gpujobs watch — namespace {ns}, {}\n\n",
        q.config().redacted_url()
    );
    let rows: Vec<Vec<String>> = lanes
        .iter()
        .map(|l| {
            vec![
                l.lane.to_string(),
                l.ready.to_string(),
                l.delayed.to_string(),
                l.in_flight.to_string(),
                fmt_seconds(l.backlog_s),
            ]
        })
        .collect();
    out += &report::table(
        &["lane", "ready", "retry wait", "in flight", "est. backlog"],
        &rows,
    );
    out += "\n";
    let now = now_ms();
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            vec![
                w.id.clone(),
                w.lane.to_string(),
                w.device.name.clone(),
                format!("{}/{}", w.in_flight, w.concurrency),
                w.jobs_done.to_string(),
                w.jobs_failed.to_string(),
                format!(
                    "{} jobs, {:.1} MiB",
                    w.cached_jobs.len(),
                    w.cache_bytes as f64 / f64::from(1u32 << 20)
                ),
                format!(
                    "{:.1}s ago",
                    now.saturating_sub(w.last_seen_ms) as f64 / 1e3
                ),
            ]
        })
        .collect();
    if rows.is_empty() {
        out += "no live workers\n";
    } else {
        out += &report::table(
            &[
                "worker",
                "lane",
                "device",
                "busy",
                "done",
                "failed",
                "cached outputs",
                "heartbeat",
            ],
            &rows,
        );
    }
    out += &format!(
        "\n{:.1} jobs/s submitted, {:.1} jobs/s succeeded (since the last refresh); last {} s: {} failed, {} dead, {} retries; dead letters in total: {dead}\n",
        submitted_per_s,
        succeeded_per_s,
        WINDOW.as_secs(),
        snap.count("failed"),
        snap.count("dead"),
        snap.count("retrying"),
    );
    if *waiting > 0 {
        out += &format!("{waiting} jobs of graphs waiting for their parents\n");
    }
    out
}

/// One refresh, as the arguments ask: text or a JSON line.
async fn render(
    q: &RedisQueue,
    args: &WatchArgs,
    prev: &mut Option<Sample>,
) -> Result<String, CliError> {
    let snap = take(q, prev).await?;
    let ns = &args.redis.namespace;
    Ok(if args.json {
        format!("{}\n", json(&snap, ns))
    } else {
        text(q, &snap, ns)
    })
}

/// Runs the command until Ctrl-C (or once with `--once`).
pub async fn run(args: WatchArgs) -> Result<(), CliError> {
    if !(args.interval.is_finite() && args.interval >= 0.1) {
        return Err(CliError::input("--interval must be at least 0.1 s"));
    }
    let q = connect::client(&args.redis).await?;
    if args.once {
        print!("{}", render(&q, &args, &mut None).await?);
        return Ok(());
    }
    let mut stop = crate::signals::on_signal();
    let mut prev = None;
    loop {
        match render(&q, &args, &mut prev).await {
            // JSON: one line per refresh, for a program to follow.
            Ok(line) if args.json => print!("{line}"),
            Ok(text) => print!("\x1b[2J\x1b[H{text}"),
            Err(e) if args.json => eprintln!("Redis unavailable: {e}; retrying"),
            // Clear the screen and draw from the top.
            Err(e) => println!("\x1b[2J\x1b[HRedis unavailable: {e}; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.interval)) => {}
            _ = stop.wait() => return Ok(()),
        }
    }
}
