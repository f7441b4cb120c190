//! A job's envelope from what Python gave: kind, inputs (see `payload`) and the
//! delivery options of `submit` (priority, device, max_attempts, timeout, id, ephemeral).

use crate::errors;
use crate::payload;
use gpujobs::{DevicePref, JobEnvelope, JobId, Priority};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::str::FromStr;

/// Builds the envelope (not validated yet).
pub(crate) fn build(
    kind: &str,
    inputs: &Bound<'_, PyDict>,
    options: &Bound<'_, PyDict>,
) -> PyResult<JobEnvelope> {
    let (json, blobs) = payload::convert(inputs)?;
    let mut env: JobEnvelope = serde_json::from_value(serde_json::json!({
        "kind": kind,
        "payload": json,
    }))
    .map_err(|e| errors::validation(format!("invalid job: {e}")))?;
    env.id = JobId::new();
    env.blobs = blobs;
    env.created_us = gpujobs::model::envelope::now_us();
    apply(&mut env, options)?;
    Ok(env)
}

/// Applies the options to an envelope.
pub(crate) fn apply(env: &mut JobEnvelope, options: &Bound<'_, PyDict>) -> PyResult<()> {
    for (k, v) in options.iter() {
        if v.is_none() {
            continue;
        }
        let key: String = k.extract()?;
        match key.as_str() {
            "priority" => {
                let p: String = v.extract()?;
                env.priority = Priority::from_str(&p).map_err(|_| {
                    errors::validation(format!(
                        "priority must be `high`, `normal` or `low`, got `{p}`"
                    ))
                })?;
            }
            "device" => {
                let d: String = v.extract()?;
                env.device = DevicePref::from_str(&d).map_err(|_| {
                    errors::validation(format!("device must be `auto`, `cpu` or `gpu`, got `{d}`"))
                })?;
            }
            "max_attempts" => {
                let n: i64 = v.extract()?;
                if !(1..=i64::from(u32::MAX)).contains(&n) {
                    return Err(errors::validation(format!(
                        "max_attempts must be at least 1, got {n}"
                    )));
                }
                env.max_attempts = n as u32;
            }
            "timeout" => {
                let s: f64 = v.extract()?;
                if !(s.is_finite() && s > 0.0) {
                    return Err(errors::validation(format!(
                        "timeout must be a positive number of seconds, got {s}"
                    )));
                }
                env.timeout_ms = (s * 1e3).ceil().min(u64::MAX as f64) as u64;
            }
            "id" => {
                let id: String = v.extract()?;
                env.id = JobId::parse(&id).ok_or_else(|| {
                    errors::validation(format!(
                        "id must be 1 to 128 printable ASCII characters, got {id:?}"
                    ))
                })?;
            }
            "ephemeral" => env.ephemeral = v.extract()?,
            other => {
                return Err(errors::validation(format!(
                    "unknown option `{other}` (priority, device, max_attempts, timeout, id)"
                )));
            }
        }
    }
    Ok(())
}
