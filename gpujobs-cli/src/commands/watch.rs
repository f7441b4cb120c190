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

async fn snapshot(q: &RedisQueue, ns: &str, prev: &mut Option<Sample>) -> Result<String, CliError> {
    let (submitted_per_s, succeeded_per_s, waiting) = rates(q, prev).await?;
    let lanes = q.lane_stats().await?;
    let workers = q.workers().await?;
    let events = q.recent_events(WINDOW).await?;
    let dead = q.dead_letter_count().await?;
    let count = |s: &str| events.iter().filter(|(_, st)| st == s).count();
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
        count("failed"),
        count("dead"),
        count("retrying"),
    );
    if waiting > 0 {
        out += &format!("{waiting} jobs of graphs waiting for their parents\n");
    }
    Ok(out)
}

/// Runs the command until Ctrl-C (or once with `--once`).
pub async fn run(args: WatchArgs) -> Result<(), CliError> {
    if !(args.interval.is_finite() && args.interval >= 0.1) {
        return Err(CliError::input("--interval must be at least 0.1 s"));
    }
    let q = connect::client(&args.redis).await?;
    if args.once {
        print!("{}", snapshot(&q, &args.redis.namespace, &mut None).await?);
        return Ok(());
    }
    let mut stop = crate::signals::on_signal();
    let mut prev = None;
    loop {
        let text = match snapshot(&q, &args.redis.namespace, &mut prev).await {
            Ok(t) => t,
            Err(e) => format!("Redis unavailable: {e}; retrying\n"),
        };
        // Clear the screen and draw from the top.
        print!("\x1b[2J\x1b[H{text}");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.interval)) => {}
            _ = stop.wait() => return Ok(()),
        }
    }
}
