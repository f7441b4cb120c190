//! How Redis says "this blob is in object storage": the value at a blob key is
//! `gjref:<url>` padded with spaces to a length that is not a multiple of 4.
//!
//! Every real blob is whole little-endian `f32` values, so its length is a multiple of
//! 4: a reference can never be mistaken for data, and a reader that knows nothing of
//! object storage fails on it with "not a whole number of f32 values" instead of
//! computing on the text of a URL.

/// What every reference starts with.
pub(crate) const PREFIX: &str = "gjref:";

/// The value stored at a blob key for an object at `url`.
pub(crate) fn encode(url: &str) -> Vec<u8> {
    let mut v = format!("{PREFIX}{url}").into_bytes();
    // Lengths 4k+1 only, so a reader may also check `len % 4 == 1`.
    while v.len() % 4 != 1 {
        v.push(b' ');
    }
    v
}

/// The URL a blob value refers to, when it is a reference.
pub(crate) fn decode(bytes: &[u8]) -> Option<&str> {
    if bytes.len().is_multiple_of(4) {
        return None;
    }
    let text = std::str::from_utf8(bytes.strip_prefix(PREFIX.as_bytes())?).ok()?;
    Some(text.trim_end_matches(' '))
}

/// A job's id or blob name as one object-name segment: ASCII letters, digits, `.`, `-`
/// kept, everything else (`{`, `}`, `:`, `/`, `_`, ...) written `_XX` in hex, so names
/// stay distinct and no segment can climb out of its folder.
pub(crate) fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    if out.chars().all(|c| c == '.') {
        // `.` and `..` are not names.
        out = out.replace('.', "_2E");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_never_whole_f32s_and_round_trips() {
        for url in [
            "s3://b/k",
            "file:///tmp/x/y",
            "s3://bucket/ns/j/t0",
            "s3://a/bc",
        ] {
            let v = encode(url);
            assert_eq!(v.len() % 4, 1, "{url}");
            assert_eq!(decode(&v), Some(url));
        }
        // Real data, even data that starts with the prefix, is not a reference.
        let mut data = b"gjref:xy".to_vec();
        assert_eq!(data.len() % 4, 0);
        assert_eq!(decode(&data), None);
        data.push(0);
        assert_eq!(decode(&data), Some("xy\0"));
        assert_eq!(decode(&[1, 2, 3]), None);
    }

    #[test]
    fn segments_keep_names_apart_and_inside_their_folder() {
        assert_eq!(segment("{ab}1-2.x"), "_7Bab_7D1-2.x");
        assert_eq!(segment("out:t0"), "out_3At0");
        assert_eq!(segment("a/../b"), "a_2F.._2Fb");
        assert_eq!(segment(".."), "_2E_2E");
        assert_ne!(segment("a_3A"), segment("a:"));
    }
}
