//! One job's record for a detail page: the parsed record without its output blobs
//! (they may be large; a download reads them on its own), and the raw fields a page
//! shows beside it (`graph`, `env`, `dead_entry`).

use crate::codec::record_from_hash;
use crate::connection::backend;
use crate::queue::RedisQueue;
use gpujobs_core::{JobId, JobRecord, QueueError};
use std::collections::HashMap;

impl RedisQueue {
    /// The record of `id` and its raw hash, without output blobs; `None` if unknown.
    pub async fn record_fields(
        &self,
        id: &JobId,
    ) -> Result<Option<(JobRecord, HashMap<String, String>)>, QueueError> {
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.shared.keys_of(id).job(id))
            .query_async(&mut self.conn())
            .await
            .map_err(backend("reading a job record"))?;
        Ok(record_from_hash(id, &h).map(|r| (r, h)))
    }
}
