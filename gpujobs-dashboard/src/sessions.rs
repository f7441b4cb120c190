//! Signed-in browsers: random session ids kept in memory (a restart signs everyone
//! out; several dashboards each keep their own), valid for 12 hours.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the oldest go first): a flood of logins cannot grow memory.
const MAX_SESSIONS: usize = 10_000;

#[derive(Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// A new session's id (256 random bits, hex).
    pub(crate) fn open(&self) -> Option<String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).ok()?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        live.retain(|_, until| *until > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), now + SESSION_TTL);
        Some(id)
    }

    /// Whether `id` is a live session.
    pub(crate) fn valid(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(id).is_some_and(|until| *until > Instant::now())
    }

    /// Ends a session.
    pub(crate) fn close(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_check_and_close() {
        let s = Sessions::default();
        let a = s.open().expect("random");
        let b = s.open().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.valid(&a) && s.valid(&b));
        assert!(!s.valid("forged"));
        s.close(&a);
        assert!(!s.valid(&a) && s.valid(&b));
    }
}
