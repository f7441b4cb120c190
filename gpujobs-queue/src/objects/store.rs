//! Object storage: `s3://` through the `object_store` crate (AWS S3 or any S3 API:
//! MinIO, Ceph, moto; configured by the `AWS_*` environment and
//! [`ObjectsConfig::options`]), `file://` through [`super::local`] (confined to the
//! allowed folders, links checked). Every operation ends within
//! [`ObjectsConfig::bound`], answered or failed.

use super::classify::{Op, classify};
use super::local::{self, Roots};
use super::{ObjectError, ObjectsConfig, allowed};
use gpujobs_core::QueueError;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
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
    /// The `file://` ones among them, as folders.
    roots: Roots,
    max_bytes: u64,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

/// Where a URL's object lives.
enum Target {
    File(PathBuf),
    S3(Arc<dyn ObjectStore>, Path),
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
        if cfg.request_timeout.is_zero() || cfg.connect_timeout.is_zero() {
            return Err(bad("timeouts", &"must be above zero"));
        }
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
            roots: Roots::new(&readable),
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

    /// Where a URL's object lives; refuses schemes other than `file` and `s3`.
    fn locate(&self, url: &str) -> Result<Target, ObjectError> {
        let refused = |why: String| ObjectError::Refused(format!("object URL `{url}`: {why}"));
        let parsed = Url::parse(url).map_err(|e| refused(e.to_string()))?;
        // object_store's path rules (no `..`, no empty segments) for every scheme.
        let path = Path::from_url_path(parsed.path()).map_err(|e| refused(e.to_string()))?;
        let key = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or(""));
        match parsed.scheme() {
            "file" => {
                if parsed.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(refused("a file URL names no host (file:///path)".into()));
                }
                let file = parsed
                    .to_file_path()
                    .map_err(|()| refused("not a file path".into()))?;
                return Ok(Target::File(file));
            }
            "s3" | "s3a" => {}
            other => {
                return Err(refused(format!(
                    "scheme `{other}` is not supported (file:// and s3:// are)"
                )));
            }
        }
        let mut stores = crate::queue::lock(&self.stores);
        if let Some(s) = stores.get(&key) {
            return Ok(Target::S3(s.clone(), path));
        }
        let ms = |d: std::time::Duration| format!("{}ms", d.as_millis());
        let mut b = AmazonS3Builder::from_env()
            .with_url(key.as_str())
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                ms(self.cfg.request_timeout),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                ms(self.cfg.connect_timeout),
            )
            .with_retry(RetryConfig {
                retry_timeout: self.cfg.retry_budget,
                ..RetryConfig::default()
            });
        for (k, v) in &self.cfg.options {
            let k: AmazonS3ConfigKey = k
                .to_ascii_lowercase()
                .parse()
                .map_err(|e| refused(format!("option `{k}`: {e}")))?;
            b = b.with_config(k, v);
        }
        let store: Arc<dyn ObjectStore> = Arc::new(b.build().map_err(|e| refused(e.to_string()))?);
        stores.insert(key, store.clone());
        Ok(Target::S3(store, path))
    }

    /// Runs one operation on the store at `url` within [`ObjectsConfig::bound`]; past it
    /// the store counts as unreachable (a hung NFS mount, a frozen server).
    async fn bounded<T>(
        &self,
        url: &str,
        op: impl Future<Output = Result<T, ObjectError>>,
    ) -> Result<T, ObjectError> {
        let bound = self.cfg.bound();
        tokio::time::timeout(bound, op).await.unwrap_or_else(|_| {
            Err(ObjectError::Unreachable(format!(
                "object storage at {url}: no answer within {:.1} s (request timeout {:.1} s \
                 + retry budget {:.1} s: --objects-timeout, --objects-retry-budget)",
                bound.as_secs_f64(),
                self.cfg.request_timeout.as_secs_f64(),
                self.cfg.retry_budget.as_secs_f64()
            )))
        })
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
        let max = self.max_bytes;
        match self.locate(normal.as_str())? {
            Target::File(path) => {
                let (roots, url2) = (self.roots.clone(), url.to_string());
                self.bounded(
                    url,
                    blocking(move || local::read(&roots, &path, &url2, max)),
                )
                .await
            }
            Target::S3(store, path) => {
                self.bounded(url, async {
                    let got = store
                        .get(&path)
                        .await
                        .map_err(|e| classify(url, Op::Read, e))?;
                    if got.meta.size > max {
                        return Err(ObjectError::Refused(format!(
                            "object {url} is {} bytes, over the blob limit of {max} bytes",
                            got.meta.size
                        )));
                    }
                    let bytes = got.bytes().await.map_err(|e| classify(url, Op::Read, e))?;
                    Ok(Vec::from(bytes))
                })
                .await
            }
        }
    }

    /// Writes one object (a `file://` one atomically, inside the allowed folders).
    async fn put(&self, url: &str, bytes: Vec<u8>) -> Result<(), ObjectError> {
        match self.locate(url)? {
            Target::File(path) => {
                let (roots, url2) = (self.roots.clone(), url.to_string());
                self.bounded(
                    url,
                    blocking(move || local::write(&roots, &path, &url2, &bytes)),
                )
                .await
            }
            Target::S3(store, path) => {
                self.bounded(url, async {
                    store
                        .put(&path, PutPayload::from(bytes))
                        .await
                        .map(|_| ())
                        .map_err(|e| classify(url, Op::Write, e))
                })
                .await
            }
        }
    }

    /// Deletes one object; one that is not there is not an error.
    async fn delete(&self, url: &str) -> Result<(), ObjectError> {
        match self.locate(url)? {
            Target::File(path) => {
                let (roots, url2) = (self.roots.clone(), url.to_string());
                self.bounded(url, blocking(move || local::delete(&roots, &path, &url2)))
                    .await
            }
            Target::S3(store, path) => {
                self.bounded(url, async {
                    match store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(classify(url, Op::Write, e)),
                    }
                })
                .await
            }
        }
    }

    /// Copies the object at `from` (this process's own, already written) to `to`: a
    /// server-side copy within one S3 store, else a read and a write.
    pub(crate) async fn copy(&self, from: &str, to: &str) -> Result<(), ObjectError> {
        if let (Target::S3(a, from_path), Target::S3(b, to_path)) =
            (self.locate(from)?, self.locate(to)?)
            && Arc::ptr_eq(&a, &b)
        {
            return self
                .bounded(to, async {
                    a.copy(&from_path, &to_path)
                        .await
                        .map_err(|e| classify(to, Op::Write, e))
                })
                .await;
        }
        let bytes = self.get(from).await?;
        self.put(to, bytes).await
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
            set.spawn(async move { (i, me.put(&url, bytes).await) });
        }
        collect(set).await.into_iter().collect()
    }

    /// Deletes objects, best effort (a failure is logged: the bucket's lifecycle rule
    /// removes what is left).
    pub(crate) async fn delete_all(self: &Arc<Self>, urls: Vec<String>) {
        for url in urls {
            if let Err(e) = self.delete(&url).await {
                tracing::debug!(%url, error = %e, "could not delete an object");
            }
        }
    }
}

/// Runs blocking file-system work on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ObjectError> + Send + 'static,
) -> Result<T, ObjectError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ObjectError::Unreachable(format!("file task failed: {e}"))))
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
