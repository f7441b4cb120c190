//! Large data by reference: blobs kept in object storage with a reference in Redis
//! (see [`reference`]), and tensors given as URLs (`{"shape": [..], "url": ...}`).
//!
//! Reading an object is allowed only under the offload URL and the prefixes of
//! [`ObjectsConfig::allow`]: anyone who can write to Redis can write a reference or a
//! `url` tensor, and without the list a job could make a worker read any file it can
//! see (`file:///etc/...`) and store it as a result.

#[cfg(feature = "objects")]
mod classify;
#[cfg(feature = "objects")]
mod local;
mod reference;
#[cfg(feature = "objects")]
mod store;
#[cfg(not(feature = "objects"))]
#[path = "disabled.rs"]
mod store;

pub(crate) use reference::{decode, encode, segment};
pub(crate) use store::Objects;

use std::time::Duration;

/// Where large data lives outside Redis (part of [`crate::RedisConfig`]).
#[derive(Clone)]
pub struct ObjectsConfig {
    /// Blobs larger than [`ObjectsConfig::offload_above`] bytes are written under this URL
    /// (`file:///srv/gpujobs`, `s3://bucket/prefix`) as `<url>/<namespace>/<job>/<blob>`,
    /// and Redis keeps a reference. `None`: every blob stays in Redis.
    pub offload_url: Option<String>,
    /// Size above which a blob is offloaded, bytes (`0`: every blob).
    pub offload_above: u64,
    /// URL prefixes, besides the offload URL, under which `url` tensors may be read
    /// (`s3://datasets/`, `file:///data/`). Empty: only the offload URL.
    pub allow: Vec<String>,
    /// Settings for the S3 client beside the `AWS_*` environment (which is always
    /// read), as object_store names them: `aws_endpoint`, `aws_allow_http`,
    /// `aws_access_key_id`, `aws_region`, ...
    pub options: Vec<(String, String)>,
    /// Longest one request to the store may take, transfer included (S3; for `file://`
    /// the whole operation is bounded as below). Retried within `retry_budget`.
    pub request_timeout: Duration,
    /// Longest a connection to the store may take to open (S3).
    pub connect_timeout: Duration,
    /// How long retries of one operation may go on after its first request. One
    /// operation (a read, a write) therefore ends, answered or failed, within
    /// `request_timeout + retry_budget`: the bound a submit or a worker waits on a
    /// store that does not answer.
    pub retry_budget: Duration,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig {
            offload_url: None,
            offload_above: 0,
            allow: Vec::new(),
            options: Vec::new(),
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            retry_budget: Self::DEFAULT_RETRY_BUDGET,
        }
    }
}

impl ObjectsConfig {
    /// Default of [`ObjectsConfig::request_timeout`]: 15 s, a 512 MiB blob at 35 MB/s.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
    /// Default of [`ObjectsConfig::connect_timeout`].
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    /// Default of [`ObjectsConfig::retry_budget`]: with the request timeout, an
    /// operation ends within 30 s, the default worker lease (which the worker renews
    /// meanwhile).
    pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(15);

    /// The longest one operation on the store takes before it fails.
    pub fn bound(&self) -> Duration {
        self.request_timeout + self.retry_budget
    }
}

impl std::fmt::Debug for ObjectsConfig {
    /// Option values may be secrets (`aws_secret_access_key`): only their names show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ObjectsConfig")
            .field("offload_url", &self.offload_url)
            .field("offload_above", &self.offload_above)
            .field("allow", &self.allow)
            .field("options", &names)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry_budget", &self.retry_budget)
            .finish()
    }
}

/// Why an object could not be read or written.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(not(feature = "objects"), allow(dead_code))]
pub(crate) enum ObjectError {
    /// It can never work: a URL outside the allowed prefixes, malformed, too large, or
    /// object storage not built in.
    #[error("{0}")]
    Refused(String),
    /// No object at the URL.
    #[error("{0}")]
    Missing(String),
    /// The store answered that this can never work as asked: the bucket does not
    /// exist, access is denied, the credentials are wrong, the key is invalid. Retrying
    /// would get the same answer.
    #[error("{0}")]
    Rejected(String),
    /// The store did not answer in time (or answered with an error that may pass: a
    /// 5xx, a reset connection).
    #[error("{0}")]
    Unreachable(String),
}

/// Whether the normalised `url` lies under one of `prefixes`: a prefix matches whole
/// path segments (`s3://b/data` allows `s3://b/data/x`, not `s3://b/database`).
#[cfg_attr(not(feature = "objects"), allow(dead_code))]
pub(crate) fn allowed(url: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| {
        let p = p.trim_end_matches('/');
        !p.is_empty()
            && url
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefixes_match_whole_segments() {
        let allow = vec!["s3://b/data".to_string(), "file:///srv/x/".to_string()];
        assert!(super::allowed("s3://b/data/t0", &allow));
        assert!(super::allowed("file:///srv/x/a/b", &allow));
        assert!(!super::allowed("s3://b/database/t0", &allow));
        assert!(!super::allowed("s3://b/data", &allow));
        assert!(!super::allowed("file:///etc/passwd", &allow));
        assert!(!super::allowed("s3://b/data/t0", &[String::new()]));
    }

    #[test]
    fn debug_output_hides_option_values() {
        let cfg = super::ObjectsConfig {
            options: vec![("aws_secret_access_key".into(), "hunter2".into())],
            ..Default::default()
        };
        let text = format!("{cfg:?}");
        assert!(
            text.contains("aws_secret_access_key") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
