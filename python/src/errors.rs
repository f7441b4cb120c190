//! Rust errors as the exceptions of `gpujobs.errors`: the classes are defined in Python
//! (so they can also derive from `ValueError`, `TimeoutError`, ...), raised from here by
//! name. The messages are the CLI's.

use gpujobs::{ClientError, QueueError, ValidationError};
use pyo3::prelude::*;

/// Prefix of the message the Redis queue gives refused credentials.
const AUTH_FAILED: &str = "authentication failed";

/// An exception of `gpujobs.errors` by class name, with attributes set on it.
pub(crate) fn raise(class: &str, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    Python::attach(|py| {
        let made = (|| -> PyResult<PyErr> {
            let cls = py.import("gpujobs.errors")?.getattr(class)?;
            let err = cls.call1((message.clone(),))?;
            for (k, v) in attrs {
                err.setattr(*k, v)?;
            }
            Ok(PyErr::from_value(err))
        })();
        made.unwrap_or_else(|e| e)
    })
}

/// `ValidationError`: the job was refused before anything was stored.
pub(crate) fn validation(message: impl Into<String>) -> PyErr {
    raise("ValidationError", message.into(), &[])
}

/// A validation error with the CLI's wording.
pub(crate) fn validation_error(e: ValidationError) -> PyErr {
    validation(format!("invalid job: {e}"))
}

/// The exception class of a queue error.
pub(crate) fn queue_class(e: &QueueError) -> &'static str {
    match e {
        QueueError::NotFound(_) => "NotFound",
        QueueError::Invalid(_) => "ValidationError",
        QueueError::Full(_) => "QueueFull",
        QueueError::Misconfigured(m) if m.starts_with(AUTH_FAILED) => "AuthenticationError",
        QueueError::Misconfigured(_) => "ConfigurationError",
        QueueError::Backend(_) | QueueError::Closed => "ConnectionError",
        QueueError::Refused(_) => "Refused",
        _ => "GpujobsError",
    }
}

/// The exception class of a client error.
pub(crate) fn client_class(e: &ClientError) -> &'static str {
    match e {
        ClientError::Invalid(_) => "ValidationError",
        ClientError::Queue(q) => queue_class(q),
        ClientError::TimedOut(_) => "TimeoutError",
        ClientError::Failed { .. } => "JobFailed",
        _ => "GpujobsError",
    }
}

/// A queue error as its class.
pub(crate) fn queue(e: QueueError) -> PyErr {
    match e {
        QueueError::Invalid(v) => validation_error(v),
        e => raise(queue_class(&e), e.to_string(), &[]),
    }
}

/// A client error as its class.
pub(crate) fn client(e: ClientError) -> PyErr {
    match e {
        ClientError::Invalid(v) => validation_error(v),
        ClientError::Queue(q) => queue(q),
        ClientError::TimedOut(id) => timed_out(id.as_str()),
        e => raise(client_class(&e), e.to_string(), &[]),
    }
}

/// `TimeoutError`: the job did not end within the caller's timeout (it may still run).
pub(crate) fn timed_out(id: &str) -> PyErr {
    Python::attach(|py| match id.into_pyobject(py) {
        Ok(s) => raise(
            "TimeoutError",
            format!("job {id} did not finish in time (it may still run)"),
            &[("job_id", s.into_any().unbind())],
        ),
        Err(e) => PyErr::from(e),
    })
}
