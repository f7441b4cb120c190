//! What an object store's error means for a job: never going to work (a missing bucket,
//! denied access, refused credentials, an invalid key: the job fails at once with that
//! reason) or may pass (a timeout, a 5xx, a reset connection: retried with backoff).
//! The table in docs/object-storage.md follows this file.

use super::ObjectError;

/// Which operation failed: a write's "not found" is a missing bucket, a read's is
/// usually a missing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Read,
    Write,
}

/// An `object_store` error as its class.
pub(super) fn classify(url: &str, op: Op, e: object_store::Error) -> ObjectError {
    use object_store::Error as E;
    let text = e.to_string();
    let at = |what: &str| format!("object storage at {url}: {what} ({})", one_line(&text));
    match e {
        E::NotFound { .. } if op == Op::Write || text.contains("NoSuchBucket") => {
            ObjectError::Rejected(at("the bucket does not exist"))
        }
        E::NotFound { .. } => ObjectError::Missing(format!("no object at {url}")),
        E::PermissionDenied { .. } => ObjectError::Rejected(at("access denied")),
        E::Unauthenticated { .. } => ObjectError::Rejected(at("the credentials were refused")),
        E::InvalidPath { .. } => ObjectError::Refused(format!("object URL `{url}`: {text}")),
        E::NotSupported { .. } | E::NotImplemented { .. } | E::UnknownConfigurationKey { .. } => {
            ObjectError::Rejected(at("the store cannot do this"))
        }
        E::Precondition { .. } | E::AlreadyExists { .. } | E::NotModified { .. } => {
            ObjectError::Unreachable(at("the object changed meanwhile"))
        }
        _ => match status_in(&text) {
            // Client errors other than "too many requests" and "request timeout" come
            // back the same however often they are asked.
            Some(s) if (400..500).contains(&s) && s != 408 && s != 429 => {
                ObjectError::Rejected(at(&format!("the store refused the request (HTTP {s})")))
            }
            _ => ObjectError::Unreachable(at("no usable answer")),
        },
    }
}

/// The HTTP status an object_store error message carries ("... status code: 400 ...").
fn status_in(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// An error text on one line, bounded (an S3 error body is XML over several lines).
fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(msg: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: msg.to_string().into(),
        }
    }

    #[test]
    fn each_error_lands_in_its_class() {
        let nf = || object_store::Error::NotFound {
            path: "k".into(),
            source: "Server returned non-2xx status code: 404 Not Found".into(),
        };
        assert!(matches!(
            classify("u", Op::Read, nf()),
            ObjectError::Missing(_)
        ));
        let m = classify("s3://nosuchbucket/k", Op::Write, nf()).to_string();
        assert!(
            m.contains("bucket does not exist") && m.contains("nosuchbucket"),
            "{m}"
        );
        let denied = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: "403".into(),
        };
        assert!(matches!(
            classify("u", Op::Read, denied),
            ObjectError::Rejected(_)
        ));
        let bad_request = generic(
            "Error performing PUT in 2ms - Server returned non-2xx status code: 400 Bad Request: <Error>\n<Code>InvalidBucketName</Code></Error>",
        );
        let m = classify("u", Op::Write, bad_request).to_string();
        assert!(m.contains("HTTP 400") && !m.contains('\n'), "{m}");
        for temporary in [
            "Server returned non-2xx status code: 503 Service Unavailable",
            "Server returned non-2xx status code: 429 Too Many Requests",
            "HTTP error: error sending request: connection reset",
            "request or response body error: operation timed out",
        ] {
            assert!(
                matches!(
                    classify("u", Op::Read, generic(temporary)),
                    ObjectError::Unreachable(_)
                ),
                "{temporary}"
            );
        }
    }
}
