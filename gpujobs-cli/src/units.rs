//! One way to write durations and sizes on every flag: `500ms`, `2s`, `1.5m`, `1h` (a
//! bare number is seconds, as the flags always took), and `256MiB`, `4G`, `512K` (a bare
//! number is bytes). Clap's value parsers for them live here.

/// A duration in seconds: `500ms`, `2s`, `1.5m`, `1h`, or a bare number of seconds;
/// zero or more, at most a week.
pub fn seconds(text: &str) -> Result<f64, String> {
    let t = text.trim().to_ascii_lowercase();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t.as_str(), 1.0)
    };
    let bad = || format!("`{text}` is not a duration (say 500ms, 2s, 1.5m or a number of seconds)");
    let x: f64 = number.trim().parse().map_err(|_| bad())?;
    let s = x * scale;
    if !(s.is_finite() && (0.0..=7.0 * 86_400.0).contains(&s)) {
        return Err(format!("`{text}`: a duration from 0 to a week"));
    }
    Ok(s)
}

/// A duration above zero (see [`seconds`]).
pub fn positive_seconds(text: &str) -> Result<f64, String> {
    match seconds(text)? {
        s if s > 0.0 => Ok(s),
        _ => Err(format!("`{text}`: the duration must be above zero")),
    }
}

/// A size in bytes: `256MiB`, `4G`, `512K`, or a bare number of bytes.
pub fn bytes(text: &str) -> Result<u64, String> {
    gpujobs_core::buffer::parse_bytes(text)
}

/// A size of one queue entry (`--max-entry-bytes`): at least 1 KiB.
pub fn entry_bytes(text: &str) -> Result<u64, String> {
    match bytes(text)? {
        b if b >= 1024 => Ok(b),
        _ => Err(format!("`{text}`: at least 1K")),
    }
}

/// A size of one blob (`--max-blob-bytes`): from 1 KiB to Redis's 512 MiB.
pub fn blob_bytes(text: &str) -> Result<u64, String> {
    match bytes(text)? {
        b if (1024..=512 << 20).contains(&b) => Ok(b),
        _ => Err(format!(
            "`{text}`: from 1K to 512MiB (Redis's limit on one value)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_spelling() {
        for (text, want) in [
            ("500ms", 0.5),
            ("2s", 2.0),
            ("2", 2.0),
            ("0.25", 0.25),
            ("1.5m", 90.0),
            ("1h", 3600.0),
            (" 30S ", 30.0),
            ("0", 0.0),
        ] {
            assert_eq!(seconds(text), Ok(want), "{text}");
        }
        for bad in ["", "fast", "-1s", "2 weeks", "1e9", "nan"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert!(positive_seconds("0ms").is_err());
        assert_eq!(positive_seconds("10ms"), Ok(0.01));
    }

    #[test]
    fn sizes_in_every_spelling() {
        assert_eq!(bytes("256MiB"), Ok(256 << 20));
        assert_eq!(bytes("4G"), Ok(4 << 30));
        assert_eq!(bytes("1048576"), Ok(1 << 20));
        assert!(entry_bytes("512").is_err());
        assert_eq!(blob_bytes("512MiB"), Ok(512 << 20));
        assert!(blob_bytes("1G").is_err());
    }
}
