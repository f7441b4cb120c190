//! `gpujobs doctor`: what an operator checks first, each as ok / warning / error with
//! the fix.

use crate::connect::RedisArgs;
use crate::error::CliError;
use clap::Args;
use gpujobs_core::DeviceClass;
use gpujobs_core::queue::AdminQueue;
use gpujobs_queue::{RECORD_LISTPACK_VALUE, RedisQueue};
use std::time::Duration;

/// Options of `gpujobs doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Check Redis only (a client machine, or before starting workers).
    #[arg(long)]
    pub redis_only: bool,
    /// Skip the Redis checks (a GPU node before Redis is up).
    #[arg(long, conflicts_with = "redis_only")]
    pub no_redis: bool,
    /// Print the checks as one JSON object: `{"worst": "ok"|"warning"|"error",
    /// "checks": [{"level", "what", "fix"}]}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warning,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

struct Report {
    lines: Vec<(Level, String, String)>,
}

impl Report {
    fn add(&mut self, level: Level, what: impl Into<String>, fix: impl Into<String>) {
        self.lines.push((level, what.into(), fix.into()));
    }

    fn worst(&self) -> Level {
        self.lines.iter().map(|l| l.0).max().unwrap_or(Level::Ok)
    }

    fn print(&self) {
        for (level, what, fix) in &self.lines {
            let tag = match level {
                Level::Ok => "ok     ",
                Level::Warning => "warning",
                Level::Error => "error  ",
            };
            println!("{tag}  {what}");
            if !fix.is_empty() {
                println!("         fix: {fix}");
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        let checks: Vec<serde_json::Value> = self
            .lines
            .iter()
            .map(|(level, what, fix)| {
                serde_json::json!({"level": level.as_str(), "what": what, "fix": fix})
            })
            .collect();
        serde_json::json!({"worst": self.worst().as_str(), "checks": checks})
    }
}

async fn redis_checks(args: &RedisArgs, r: &mut Report) {
    let mut cfg = crate::connect::config(args);
    cfg.warn_durability = false;
    let url = cfg.redacted_url();
    let q = match tokio::time::timeout(Duration::from_secs(5), RedisQueue::connect(cfg)).await {
        Ok(Ok(q)) => q,
        Ok(Err(e)) => {
            return r.add(Level::Error, format!("Redis at {url}: {e}"), "start Redis, or point --redis / GPUJOBS_REDIS_URL at it (redis://user:password@host:6379)");
        }
        Err(_) => {
            return r.add(
                Level::Error,
                format!("Redis at {url}: no answer within 5 s"),
                "check the address and any firewall or network policy in between",
            );
        }
    };
    let d = q.diagnose().await;
    let version = d.version.clone().unwrap_or_else(|| "?".into());
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if version == "?" {
        r.add(
            Level::Warning,
            format!("Redis at {url} answers, version unknown (INFO is not allowed)"),
            "gpujobs needs Redis 7 or newer; check the server's version by hand",
        );
    } else if major >= 7 {
        r.add(
            Level::Ok,
            format!("Redis at {url} answers (version {version})"),
            "",
        );
    } else {
        r.add(
            Level::Error,
            format!("Redis at {url} is version {version}"),
            "gpujobs needs Redis 7 or newer (XAUTOCLAIM, XPENDING IDLE)",
        );
    }
    match (d.appendonly.clone(), d.save.clone()) {
        (Some(aof), _) if aof == "yes" => r.add(Level::Ok, "persistence: append-only file on", ""),
        (Some(_), Some(save)) if !save.trim().is_empty() => r.add(
            Level::Warning,
            format!("persistence: RDB snapshots only ({save})"),
            "a crash loses jobs submitted since the last snapshot; set appendonly yes",
        ),
        (Some(_), _) => r.add(
            Level::Warning,
            "persistence is off: a Redis restart loses every queued job",
            "set appendonly yes (and appendfsync everysec or always)",
        ),
        (None, _) => r.add(
            Level::Warning,
            "persistence: unknown (CONFIG GET is not allowed)",
            "make sure the managed Redis keeps an append-only file",
        ),
    }
    match d.maxmemory_policy.clone() {
        Some(p) if p == "noeviction" => r.add(Level::Ok, "maxmemory-policy noeviction", ""),
        Some(p) => r.add(
            Level::Warning,
            format!("maxmemory-policy {p}: Redis may evict queued jobs under memory pressure"),
            "CONFIG SET maxmemory-policy noeviction (and in redis.conf)",
        ),
        None => r.add(
            Level::Warning,
            "maxmemory-policy: unknown (CONFIG GET is not allowed)",
            "make sure eviction is off",
        ),
    }
    // A managed Redis that forbids CONFIG GET gets no line: this is about memory, not
    // about losing jobs.
    match d.hash_listpack_value {
        Some(v) if v >= RECORD_LISTPACK_VALUE => r.add(
            Level::Ok,
            format!("hash-max-listpack-value {v}: job records use Redis's compact encoding"),
            "",
        ),
        Some(v) => r.add(
            Level::Warning,
            format!(
                "hash-max-listpack-value {v}: job records are stored as hash tables, up to twice the memory of the compact encoding"
            ),
            format!(
                "CONFIG SET hash-max-listpack-value {RECORD_LISTPACK_VALUE} (and in redis.conf); records written from then on are compact"
            ),
        ),
        None => {}
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    match (d.used_memory, d.maxmemory) {
        (Some(used), Some(max)) if max > 0 => {
            let share = used as f64 / max as f64;
            let line = format!(
                "memory: {:.0} MiB of maxmemory {:.0} MiB ({:.0}%); submits are refused above {:.0}%",
                mib(used),
                mib(max),
                100.0 * share,
                100.0 * d.high_water
            );
            if d.high_water > 0.0 && share > d.high_water {
                r.add(
                    Level::Error,
                    format!("queue full: {line}"),
                    "jobs finishing free their inputs; raise maxmemory if it stays full",
                );
            } else {
                r.add(Level::Ok, line, "");
            }
        }
        (Some(used), Some(_)) => r.add(
            Level::Warning,
            format!("memory: {:.0} MiB used, no maxmemory", mib(used)),
            "set maxmemory (with noeviction): without it Redis grows until the machine runs out, and submits are never refused in time",
        ),
        _ => r.add(
            Level::Warning,
            "memory: unknown (INFO memory is not allowed)",
            "watch the managed Redis's memory yourself",
        ),
    }
    // Consumer groups: connect() creates them, so a missing one means no rights.
    let missing = &d.missing_groups;
    if missing.is_empty() {
        r.add(
            Level::Ok,
            format!(
                "consumer groups present on the submit and lane streams of namespace `{}` ({} partition(s){})",
                args.namespace,
                d.partitions,
                if d.cluster { ", Redis Cluster" } else { "" }
            ),
            "",
        );
    } else {
        r.add(
            Level::Error,
            format!("consumer groups missing on {}", missing.join(", ")),
            "the Redis user needs the XGROUP command (ACL +@stream)",
        );
    }
    for (key, n) in &d.stray_submits {
        r.add(
            Level::Error,
            format!("{n} entries wait on `{key}`, a key nothing reads: those jobs never run"),
            format!(
                "submit to `{{{}}}:submit` (the braces are part of the key; docs/wire-format.md), then resubmit them: `redis-cli XRANGE {key} - +` lists them",
                args.namespace
            ),
        );
    }
    if !d.older_schedulers.is_empty() {
        let names: Vec<String> = d
            .older_schedulers
            .iter()
            .map(|(name, idle)| format!("{name} (read {:.1} s ago)", *idle as f64 / 1000.0))
            .collect();
        r.add(
            Level::Warning,
            format!(
                "{} scheduler(s) older than id-only submit entries read this namespace: {}",
                names.len(),
                names.join(", ")
            ),
            "clients write whole entries (the envelope twice in Redis) while one runs; upgrade \
             every scheduler (schedulers first, then clients: docs/wire-format.md, Id-only entries)",
        );
    }
    if !d.refs_refused.is_empty() {
        let shown: Vec<&str> = d.refs_refused.iter().take(5).map(String::as_str).collect();
        r.add(
            Level::Error,
            format!(
                "{} id-only submit entries were refused by a scheduler older than them (jobs {}{})",
                d.refs_refused.len(),
                shown.join(", "),
                if d.refs_refused.len() > shown.len() { ", ..." } else { "" }
            ),
            "upgrade every scheduler, then `gpujobs dead-letter retry <id>` runs each (its record kept the envelope)",
        );
    }
    match q.workers().await {
        Ok(w) if w.is_empty() => r.add(
            Level::Warning,
            "no live workers",
            "start `gpujobs worker --backend cpu` (and `--backend cuda` on GPU nodes)",
        ),
        Ok(w) => {
            let gpu = w.iter().filter(|w| w.lane == DeviceClass::Gpu).count();
            r.add(
                Level::Ok,
                format!(
                    "{} live workers ({} cpu, {gpu} gpu)",
                    w.len(),
                    w.len() - gpu
                ),
                "",
            );
        }
        Err(e) => r.add(Level::Error, format!("reading workers: {e}"), ""),
    }
    if let Ok(n) = q.dead_letter_count().await
        && n > 0
    {
        r.add(
            Level::Warning,
            format!("{n} dead letters"),
            "inspect with `gpujobs dead-letter list`, re-run with `gpujobs dead-letter retry <id>`",
        );
    }
}

async fn cuda_checks(r: &mut Report) {
    if !gpujobs_cuda::COMPILED {
        return r.add(
            Level::Warning,
            "this gpujobs has no CUDA support (CPU worker only)",
            "build with `--features cuda` for GPU workers",
        );
    }
    match gpujobs_cuda::driver_version() {
        Some(v) => r.add(Level::Ok, format!("CUDA driver present (CUDA {v})"), ""),
        None => {
            return r.add(
                Level::Error,
                "no CUDA driver",
                "install the NVIDIA driver (580+ for the committed PTX), or run a CPU worker",
            );
        }
    }
    // Opening the devices loads our PTX: a refusal names the PTX and driver versions.
    match gpujobs_cuda::devices() {
        Ok(devs) => {
            for d in devs {
                let mem = d
                    .memory_info()
                    .await
                    .map(|(free, total)| {
                        format!(
                            ", {:.1} of {:.1} GiB free",
                            free as f64 / 1073741824.0,
                            total as f64 / 1073741824.0
                        )
                    })
                    .unwrap_or_default();
                r.add(
                    Level::Ok,
                    format!("{}{mem}; the driver accepts our PTX", d.device_info()),
                    "",
                );
            }
        }
        Err(e) => r.add(
            Level::Error,
            format!("CUDA devices: {e}"),
            "see docs/cuda.md",
        ),
    }
}

/// Runs the command; exits 1 when any check is an error.
pub async fn run(args: DoctorArgs) -> Result<(), CliError> {
    let mut r = Report { lines: Vec::new() };
    if !args.no_redis {
        redis_checks(&args.redis, &mut r).await;
    }
    if !args.redis_only {
        cuda_checks(&mut r).await;
    }
    if args.json {
        println!("{}", r.json());
    } else {
        r.print();
    }
    match r.worst() {
        Level::Error => Err(CliError::runtime("doctor found errors")),
        _ => Ok(()),
    }
}
