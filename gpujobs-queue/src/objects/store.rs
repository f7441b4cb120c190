//! Object storage through the `object_store` crate: `file://` (the worker's file
//! system) and `s3://` (AWS S3 or any S3 API: MinIO, Ceph, moto; configured by the
//! `AWS_*` environment and [`ObjectsConfig::options`]).

use super::{ObjectError, ObjectsConfig, allowed};
use gpujobs_core::QueueError;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;
use url::Url;

/// The stores this process talks to (one per bucket), and what it may read.
#[derive(Debug)]
pub(crate) struct Objects {
    cfg: ObjectsConfig,
    /// The offload URL with no trailing `/`.
    offload: Option<String>,
    /// Prefixes that may be read: the offload URL and `cfg.allow`.
    readable: Vec<String>,
    max_bytes: u64,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Objects {
    /// Checks the configuration (URLs parse, schemes are supported, the offload store
    /// can be built); touches no store yet.
    pub(crate) fn new(cfg: &ObjectsConfig, max_bytes: u64) -> Result<Self, QueueError> {
        // reqwest is built without a crypto provider of its own: use ring (as the `tls`
        // feature does for Redis). Fails only when one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            QueueError::Misconfigured(format!("object storage: {what}: {e}"))
        };
        let offload = match &cfg.offload_url {
            Some(u) => {
                let url = Url::parse(u).map_err(|e| bad(&format!("offload URL `{u}`"), &e))?;
                Some(url.as_str().trim_end_matches('/').to_string())
            }
            None => None,
        };
        let mut readable: Vec<String> = offload.iter().cloned().collect();
        for p in &cfg.allow {
            let url = Url::parse(p).map_err(|e| bad(&format!("allowed prefix `{p}`"), &e))?;
            readable.push(url.as_str().to_string());
        }
        let objects = Objects {
            cfg: cfg.clone(),
            offload,
            readable,
            max_bytes,
            stores: Mutex::new(HashMap::new()),
        };
        if let Some(u) = &objects.offload {
            objects
                .locate(&format!("{u}/probe"))
                .map_err(|e| bad("offload URL", &e))?;
        }
        Ok(objects)
    }

    /// The URL prefix to write a blob of `bytes` to, when it is offloaded.
    pub(crate) fn offload_url(&self, bytes: usize) -> Option<&str> {
        self.offload
            .as_deref()
            .filter(|_| bytes as u64 > self.cfg.offload_above)
    }

    /// The store and path of a URL; refuses schemes other than `file` and `s3`.
    fn locate(&self, url: &str) -> Result<(Arc<dyn ObjectStore>, Path), ObjectError> {
        let refused = |why: String| ObjectError::Refused(format!("object URL `{url}`: {why}"));
        let parsed = Url::parse(url).map_err(|e| refused(e.to_string()))?;
        let path = Path::from_url_path(parsed.path()).map_err(|e| refused(e.to_string()))?;
        let key = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or(""));
        let mut stores = crate::queue::lock(&self.stores);
        if let Some(s) = stores.get(&key) {
            return Ok((s.clone(), path));
        }
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "file" => {
                if parsed.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(refused("a file URL names no host (file:///path)".into()));
                }
                Arc::new(LocalFileSystem::new())
            }
            "s3" | "s3a" => {
                let mut b = AmazonS3Builder::from_env().with_url(key.as_str());
                for (k, v) in &self.cfg.options {
                    let k: AmazonS3ConfigKey = k
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|e| refused(format!("option `{k}`: {e}")))?;
                    b = b.with_config(k, v);
                }
                Arc::new(b.build().map_err(|e| refused(e.to_string()))?)
            }
            other => {
                return Err(refused(format!(
                    "scheme `{other}` is not supported (file:// and s3:// are)"
                )));
            }
        };
        stores.insert(key, store.clone());
        Ok((store, path))
    }

    /// The normalised URL of a destination a job named (`results_to`), if it lies
    /// under the offload URL or an allowed prefix: a job must not make a worker write
    /// anywhere it can (`file:///etc/...`).
    pub(crate) fn check_writable(&self, url: &str) -> Result<String, ObjectError> {
        let normal = Url::parse(url)
            .map_err(|e| ObjectError::Refused(format!("object URL `{url}`: {e}")))?;
        let text = normal.as_str().trim_end_matches('/').to_string();
        if !allowed(&format!("{text}/x"), &self.readable) {
            return Err(ObjectError::Refused(format!(
                "`{url}` is outside the allowed prefixes ({}); a worker writes only under \
                 the offload URL and --objects-allow",
                self.readable.join(", ")
            )));
        }
        self.locate(&format!("{text}/x"))?;
        Ok(text)
    }

    /// Reads one object, if the URL is allowed and the object not over the blob limit.
    async fn get(&self, url: &str) -> Result<Vec<u8>, ObjectError> {
        let normal = Url::parse(url)
            .map_err(|e| ObjectError::Refused(format!("object URL `{url}`: {e}")))?;
        if !allowed(normal.as_str(), &self.readable) {
            return Err(ObjectError::Refused(format!(
                "object URL `{url}` is outside the readable prefixes ({}); a worker reads \
                 only under the offload URL and --objects-allow",
                if self.readable.is_empty() {
                    "none configured".to_string()
                } else {
                    self.readable.join(", ")
                }
            )));
        }
        let (store, path) = self.locate(normal.as_str())?;
        let got = store.get(&path).await.map_err(|e| classify(url, e))?;
        if got.meta.size > self.max_bytes {
            return Err(ObjectError::Refused(format!(
                "object {url} is {} bytes, over the blob limit of {} bytes",
                got.meta.size, self.max_bytes
            )));
        }
        let bytes = got.bytes().await.map_err(|e| classify(url, e))?;
        Ok(Vec::from(bytes))
    }

    /// Reads objects concurrently, each answer in the order of `urls`.
    pub(crate) async fn get_all(
        self: &Arc<Self>,
        urls: Vec<String>,
    ) -> Vec<Result<Vec<u8>, ObjectError>> {
        if urls.len() == 1 {
            return vec![self.get(&urls[0]).await];
        }
        let mut set = JoinSet::new();
        for (i, url) in urls.into_iter().enumerate() {
            let me = self.clone();
            set.spawn(async move { (i, me.get(&url).await) });
        }
        collect(set).await
    }

    /// Writes objects concurrently; the first error, if any.
    pub(crate) async fn put_all(
        self: &Arc<Self>,
        items: Vec<(String, Vec<u8>)>,
    ) -> Result<(), ObjectError> {
        let mut set = JoinSet::new();
        for (i, (url, bytes)) in items.into_iter().enumerate() {
            let me = self.clone();
            set.spawn(async move {
                let put = async {
                    let (store, path) = me.locate(&url)?;
                    store
                        .put(&path, PutPayload::from(bytes))
                        .await
                        .map_err(|e| classify(&url, e))?;
                    Ok(())
                };
                (i, put.await)
            });
        }
        collect(set).await.into_iter().collect()
    }

    /// Deletes objects, best effort (a failure is logged: the bucket's lifecycle rule
    /// removes what is left).
    pub(crate) async fn delete_all(self: &Arc<Self>, urls: Vec<String>) {
        for url in urls {
            let deleted = match self.locate(&url) {
                Ok((store, path)) => store.delete(&path).await.map_err(|e| classify(&url, e)),
                Err(e) => Err(e),
            };
            if let Err(e) = deleted {
                tracing::debug!(%url, error = %e, "could not delete an object");
            }
        }
    }
}

/// The answers of a join set, back in the order they were spawned.
async fn collect<T: Send + 'static>(
    mut set: JoinSet<(usize, Result<T, ObjectError>)>,
) -> Vec<Result<T, ObjectError>> {
    let mut out: Vec<Option<Result<T, ObjectError>>> = (0..set.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => out[i] = Some(r),
            Err(e) => tracing::error!(error = %e, "an object transfer task panicked"),
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ObjectError::Unreachable("transfer task failed".into()))))
        .collect()
}

fn classify(url: &str, e: object_store::Error) -> ObjectError {
    match e {
        object_store::Error::NotFound { .. } => ObjectError::Missing(format!("no object at {url}")),
        object_store::Error::InvalidPath { .. } => {
            ObjectError::Refused(format!("object URL `{url}`: {e}"))
        }
        e => ObjectError::Unreachable(format!("object storage at {url}: {e}")),
    }
}
