//! What a dashboard reads: a searchable history of ended jobs, per-minute ending counts,
//! the lanes per priority, Redis's memory, and one job's graph.
//!
//! The hot path writes one entry per `complete` call to `<p>:finished` (failures already
//! go to `<p>:events`); a *keeper* (run by `gpujobs dashboard`, one per partition at a
//! time under a lease) turns those entries into sorted-set indexes, one per search
//! dimension (`<p>:ix:state:dead`, `<p>:ix:kind:matmul`, ...; score: when the job
//! ended), and into the per-minute series. A search then reads one index range and the
//! page's records: O(page) keys, never a scan of the keyspace. Indexes are bounded by
//! age and by count ([`HistorySettings`]); they live in Redis, so a restarted dashboard
//! keeps them.

mod keeper;
mod overview;
mod record;
mod search;

pub use keeper::{HistorySettings, KeeperPass};
pub use overview::{LaneRow, MemoryInfo, Overview, SeriesPoint};
pub use search::{JobFilter, JobPage, JobRow, StateFilter};

/// The states a job ends in that the history indexes (a `queued` event after a
/// dead-letter retry takes a job out of the failure indexes).
pub const ENDED: [&str; 4] = ["succeeded", "failed", "dead", "cancelled"];
