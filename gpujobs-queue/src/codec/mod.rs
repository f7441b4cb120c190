//! Conversions between the queue's Rust values and what is stored in Redis, and the
//! parsing of stream replies and script results (`replies`).

mod replies;

pub(crate) use replies::{
    Begun, Entry, begun_rows, consumers_idle, entries_of, int, stream_reply, text,
};

use gpujobs_core::buffer::le_bytes;
use gpujobs_core::{BufferPool, HostBuf};
use gpujobs_core::{
    DevicePref, JobEnvelope, JobError, JobId, JobRecord, JobResult, JobState, PlacementDecision,
    Priority, WIRE_VERSION,
};
use std::collections::HashMap;
use std::str::FromStr;

/// Blob values as stored in Redis (little-endian `f32`): a view of the values' own
/// memory on little-endian machines, so storing a blob copies it once, into the
/// command buffer.
pub(crate) fn blob_bytes(values: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    le_bytes(values)
}

/// Decodes a blob read from Redis into a page-aligned buffer from `pool` (one copy,
/// from the reply into the buffer the job will use).
pub(crate) fn blob_values(bytes: &[u8], pool: &BufferPool) -> Result<HostBuf, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "{} bytes is not a whole number of f32 values",
            bytes.len()
        ));
    }
    let mut buf = pool.take(bytes.len() / 4).map_err(|e| e.to_string())?;
    if cfg!(target_endian = "little") {
        buf.as_bytes_mut().copy_from_slice(bytes);
    } else {
        for (v, c) in buf.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
    }
    Ok(buf)
}

/// How a scheduler refuses a `job` field that is JSON but not an envelope (every
/// version so far: so `gpujobs doctor` recognises an older scheduler's refusal of an
/// id-only entry).
pub(crate) const NOT_AN_ENVELOPE: &str = "`job` field is not a valid job envelope";

/// An id-only submit entry's `job` value: `{"id":"<id>","ref":true}` (see
/// `queue/entry_form.rs`). Exactly these two fields, so no envelope is taken for one.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RefEntry {
    id: String,
    #[serde(rename = "ref")]
    is_ref: bool,
}

/// The job id an id-only entry names, `None` for anything else.
pub(crate) fn ref_of(field: &[u8]) -> Option<String> {
    if field.len() > 300 {
        return None;
    }
    let r: RefEntry = serde_json::from_slice(field).ok()?;
    r.is_ref.then_some(r.id)
}

/// Reads a submit-stream entry's `job` field as an envelope, or says why it cannot be.
pub(crate) fn parse_submission(field: Option<&[u8]>) -> Result<JobEnvelope, String> {
    let bytes = field.ok_or("entry has no `job` field")?;
    let text =
        std::str::from_utf8(bytes).map_err(|_| "`job` field is not UTF-8 text".to_string())?;
    let mut env: JobEnvelope =
        serde_json::from_str(text).map_err(|e| format!("{NOT_AN_ENVELOPE}: {e}"))?;
    if env.version > WIRE_VERSION {
        return Err(format!(
            "wire format version {} is newer than this scheduler's {WIRE_VERSION}",
            env.version
        ));
    }
    if env.id.as_str().is_empty() || JobId::parse(env.id.as_str()).is_none() {
        return Err(format!(
            "job id `{}` is not 1 to 128 printable ASCII characters",
            env.id
        ));
    }
    env.stamp_for_submit();
    Ok(env)
}

/// A short printable excerpt of raw bytes, for dead letters.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]);
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if bytes.len() > 1024 {
        s.push_str("...");
    }
    s
}

fn field<'a>(h: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    h.get(k).map(String::as_str).filter(|s| !s.is_empty())
}

fn num<T: FromStr>(h: &HashMap<String, String>, k: &str) -> Option<T> {
    field(h, k).and_then(|v| v.parse().ok())
}

/// Builds a record from a job hash (tolerant of fields an older or external writer
/// left out). `None` when the hash is empty.
pub(crate) fn record_from_hash(id: &JobId, h: &HashMap<String, String>) -> Option<JobRecord> {
    if h.is_empty() {
        return None;
    }
    let state: JobState = field(h, "state")?.parse().ok()?;
    let created_us: u64 = num(h, "created_us").unwrap_or(0);
    Some(JobRecord {
        id: id.clone(),
        kind: field(h, "kind").unwrap_or("").to_string(),
        state,
        priority: field(h, "priority")
            .and_then(|p| Priority::from_str(p).ok())
            .unwrap_or_default(),
        device: field(h, "device")
            .and_then(|d| DevicePref::from_str(d).ok())
            .unwrap_or_default(),
        lane: field(h, "lane").and_then(|l| l.parse().ok()),
        attempts: num(h, "attempts").unwrap_or(0),
        max_attempts: num(h, "max_attempts").unwrap_or(1),
        created_us,
        updated_ms: num(h, "updated_ms").unwrap_or(created_us / 1000),
        started_ms: num(h, "started_ms"),
        finished_ms: num(h, "finished_ms"),
        worker: field(h, "worker").map(str::to_string),
        placement: field(h, "placement")
            .and_then(|p| serde_json::from_str::<PlacementDecision>(p).ok()),
        result: field(h, "result").and_then(|r| serde_json::from_str::<JobResult>(r).ok()),
        error: field(h, "error").and_then(|e| serde_json::from_str::<JobError>(e).ok()),
        cancel_requested: field(h, "cancel") == Some("1"),
        parents: field(h, "parents")
            .map(|p| p.split(' ').filter_map(JobId::parse).collect())
            .unwrap_or_default(),
        waiting_on: num(h, "waiting_on").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_field_form_is_an_id_only_entry() {
        assert_eq!(
            ref_of(br#"{"id":"j-1","ref":true}"#).as_deref(),
            Some("j-1")
        );
        assert_eq!(
            ref_of(br#"{"ref":true,"id":"j-1"}"#).as_deref(),
            Some("j-1")
        );
        assert_eq!(ref_of(br#"{"id":"j-1","ref":false}"#), None);
        assert_eq!(ref_of(br#"{"id":"j-1","ref":true,"kind":"x"}"#), None);
        assert_eq!(ref_of(br#"{"id":"j-1"}"#), None);
        assert_eq!(ref_of(b"not json"), None);
    }

    #[test]
    fn submissions_are_checked() {
        assert!(parse_submission(None).is_err());
        assert!(
            parse_submission(Some(&[0xff, 0xfe]))
                .unwrap_err()
                .contains("UTF-8")
        );
        assert!(
            parse_submission(Some(b"{nope"))
                .unwrap_err()
                .contains("not a valid job envelope")
        );
        let e = parse_submission(Some(br#"{"kind":"vector-add","payload":{}}"#)).unwrap();
        assert_eq!(e.kind, "vector-add");
        assert!(e.created_us > 0);
        assert!(
            parse_submission(Some(br#"{"version":99,"kind":"x","payload":{}}"#))
                .unwrap_err()
                .contains("version")
        );
    }

    #[test]
    fn excerpts_are_printable() {
        assert_eq!(excerpt(&[b'a', 0, b'b']), "a.b");
        assert!(excerpt(&[b'x'; 2000]).ends_with("..."));
    }
}
