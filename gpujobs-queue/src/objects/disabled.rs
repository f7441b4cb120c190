//! Object storage when the crate is built without the `objects` feature: nothing can be
//! offloaded or read, and every attempt says which feature is missing.

use super::{ObjectError, ObjectsConfig};
use gpujobs_core::QueueError;

const WHY: &str = "this gpujobs was built without object storage (cargo feature `objects`)";

/// Object storage that refuses everything.
#[derive(Debug)]
pub(crate) struct Objects;

impl Objects {
    /// Refuses a configuration that asks for offload.
    pub(crate) fn new(cfg: &ObjectsConfig, _max_bytes: u64) -> Result<Self, QueueError> {
        match &cfg.offload_url {
            Some(url) => Err(QueueError::Misconfigured(format!(
                "offload to {url} is configured, but {WHY}"
            ))),
            None => Ok(Objects),
        }
    }

    /// Never: nothing is offloaded.
    pub(crate) fn offload_url(&self, _bytes: usize) -> Option<&str> {
        None
    }

    /// Refused: see [`WHY`].
    pub(crate) fn check_writable(&self, url: &str) -> Result<String, ObjectError> {
        Err(ObjectError::Refused(format!("cannot write {url}: {WHY}")))
    }

    /// Refused: see [`WHY`].
    pub(crate) async fn get_all(&self, urls: Vec<String>) -> Vec<Result<Vec<u8>, ObjectError>> {
        urls.into_iter()
            .map(|u| Err(ObjectError::Refused(format!("cannot read {u}: {WHY}"))))
            .collect()
    }

    /// Refused: see [`WHY`].
    pub(crate) async fn put_all(&self, items: Vec<(String, Vec<u8>)>) -> Result<(), ObjectError> {
        match items.first() {
            None => Ok(()),
            Some((u, _)) => Err(ObjectError::Refused(format!("cannot write {u}: {WHY}"))),
        }
    }

    /// Refused: see [`WHY`].
    pub(crate) async fn copy(&self, _from: &str, to: &str) -> Result<(), ObjectError> {
        Err(ObjectError::Refused(format!("cannot write {to}: {WHY}")))
    }

    /// Nothing to delete.
    pub(crate) async fn delete_all(&self, _urls: Vec<String>) {}
}
