//! The history keeper's loop inside the dashboard: a pass every second (at once again
//! while it is behind), trimming once a minute; what it last did is shown on the
//! overview.

use crate::app::AppState;
use gpujobs_queue::history::HistorySettings;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the keeper did last, for the overview.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeeperStatus {
    /// Job endings indexed since the dashboard started.
    pub(crate) indexed: u64,
    /// Whether another dashboard holds the lease of every partition.
    pub(crate) standby: bool,
    /// The last pass's error, if it failed.
    pub(crate) error: Option<String>,
}

pub(crate) fn spawn(
    state: Arc<AppState>,
    settings: HistorySettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut raw = [0u8; 8];
    let _ = getrandom::fill(&mut raw);
    let owner = format!(
        "dashboard-{}-{}",
        std::process::id(),
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    tokio::spawn(async move {
        let mut last_trim: Option<Instant> = None;
        loop {
            let trim = last_trim.is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
            let pass = state.queue.keep_history(&settings, &owner, trim).await;
            let behind = {
                let mut s = state.keeper.lock().unwrap_or_else(|e| e.into_inner());
                match pass {
                    Ok(p) => {
                        if trim {
                            last_trim = Some(Instant::now());
                        }
                        s.indexed += p.indexed;
                        s.standby = p.skipped as usize == state.queue.partitions().len();
                        s.error = None;
                        p.behind
                    }
                    Err(e) => {
                        s.error = Some(e.to_string());
                        false
                    }
                }
            };
            let pause = if behind {
                Duration::from_millis(10)
            } else {
                Duration::from_secs(1)
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
        }
    });
}
