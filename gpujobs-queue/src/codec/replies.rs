//! Parsing stream replies and Lua script results.

use redis::Value;

/// One stream entry: its stream, id and fields (values kept as bytes).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) stream: String,
    pub(crate) id: String,
    pub(crate) fields: Vec<(String, Vec<u8>)>,
}

impl Entry {
    pub(crate) fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// A field as text (lossy), empty when absent.
    pub(crate) fn text(&self, name: &str) -> String {
        self.field(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

pub(crate) fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes().to_vec()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        _ => None,
    }
}

pub(crate) fn text(v: &Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) | Value::Set(a) => a.iter().collect(),
        _ => Vec::new(),
    }
}

/// Pairs of an array `[k1, v1, k2, v2, ...]` or a RESP3 map.
fn pairs(v: &Value) -> Vec<(&Value, &Value)> {
    match v {
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(a) => a.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        _ => Vec::new(),
    }
}

/// Parses the reply of XREADGROUP / XREAD / XRANGE-style reads:
/// `[[stream, [[id, [field, value, ...]], ...]], ...]` (or the RESP3 map form).
pub(crate) fn stream_reply(v: &Value) -> Vec<Entry> {
    let streams: Vec<(&Value, &Value)> = match v {
        Value::Map(_) => pairs(v),
        Value::Array(a) => a
            .iter()
            .filter_map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => Some((&kv[0], &kv[1])),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (name, entries) in streams {
        let stream = text(name).unwrap_or_default();
        out.extend(entries_of(&stream, entries));
    }
    out
}

/// Parses `[[id, [field, value, ...]], ...]` (XRANGE, XREVRANGE).
pub(crate) fn entries_of(stream: &str, v: &Value) -> Vec<Entry> {
    items(v)
        .into_iter()
        .filter_map(|e| {
            let parts = items(e);
            let id = text(parts.first()?)?;
            let fields = parts
                .get(1)
                .map(|f| {
                    pairs(f)
                        .into_iter()
                        .filter_map(|(k, v)| Some((text(k)?, bytes(v)?)))
                        .collect()
                })
                .unwrap_or_default();
            Some(Entry {
                stream: stream.to_string(),
                id,
                fields,
            })
        })
        .collect()
}

/// The rows of `begin_one` (lua/lib.lua): `{status, id, entry, attempts, env, cancel,
/// created_us, stream, est}`.
pub(crate) struct Begun {
    pub(crate) status: i64,
    pub(crate) id: String,
    pub(crate) entry: String,
    pub(crate) attempts: u32,
    pub(crate) env: Option<String>,
    pub(crate) cancel: bool,
    pub(crate) created_us: u64,
    pub(crate) stream: String,
    /// The placement's run estimate, seconds.
    pub(crate) est: Option<f64>,
}

pub(crate) fn begun_rows(v: &Value) -> Vec<Begun> {
    items(v)
        .into_iter()
        .filter_map(|row| {
            let f = items(row);
            Some(Begun {
                status: int(f.first()?)?,
                id: text(f.get(1)?)?,
                entry: text(f.get(2)?)?,
                attempts: f.get(3).and_then(|v| int(v)).unwrap_or(0) as u32,
                env: f.get(4).and_then(|v| text(v)),
                cancel: f.get(5).and_then(|v| text(v)).as_deref() == Some("1"),
                created_us: f.get(6).and_then(|v| int(v)).unwrap_or(0) as u64,
                stream: f.get(7).and_then(|v| text(v)).unwrap_or_default(),
                est: f
                    .get(8)
                    .and_then(|v| text(v))
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|e| e.is_finite() && *e >= 0.0),
            })
        })
        .collect()
}

/// The consumers of an `XINFO CONSUMERS` reply as `(name, idle ms)`.
pub(crate) fn consumers_idle(v: &Value) -> Vec<(String, i64)> {
    items(v)
        .into_iter()
        .filter_map(|c| {
            let fields = pairs(c);
            let get = |key: &str| {
                fields
                    .iter()
                    .find(|(k, _)| text(k).as_deref() == Some(key))
                    .map(|(_, v)| *v)
            };
            Some((text(get("name")?)?, int(get("idle")?)?))
        })
        .collect()
}
