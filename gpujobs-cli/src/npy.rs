//! Reading and writing NumPy `.npy` files as `f32` arrays.
//!
//! Written here rather than taken from a crate: the format is a magic string, a Python
//! dict literal and raw bytes, and the crates that parse it pull in a parser generator
//! for the dict. Supported: format versions 1–3; `f4` as is; `f8`, `f2`? no; integer
//! and `f8` arrays converted to `f32` (with a warning, since `f8` and large integers lose
//! precision); either byte order; Fortran order reordered to C order. Everything else
//! (booleans, complex, strings, objects, structured dtypes) is refused with its dtype.

use std::fs;
use std::io::Write;
use std::path::Path;

/// A `.npy` file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid `.npy`.
    #[error("{path}: not a valid .npy file: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The dtype cannot be converted to `f32`.
    #[error(
        "{path}: dtype `{dtype}` is not supported (use float32; float64 and integer arrays are converted)"
    )]
    Dtype {
        /// The file.
        path: String,
        /// Its dtype.
        dtype: String,
    },
}

/// An array read from a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Its shape (C order).
    pub shape: Vec<usize>,
    /// Its values in C order.
    pub data: Vec<f32>,
    /// Set when values were converted from another dtype (say which).
    pub converted_from: Option<String>,
}

#[derive(Clone, Copy)]
enum Elem {
    F4,
    F8,
    F2,
    Int { bytes: usize, signed: bool },
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::F4 => 4,
            Elem::F8 => 8,
            Elem::F2 => 2,
            Elem::Int { bytes, .. } => bytes,
        }
    }
}

/// Reads an `.npy` file into `f32`.
pub fn read(path: &Path) -> Result<NpyArray, NpyError> {
    let p = path.display().to_string();
    let bytes = fs::read(path).map_err(|source| NpyError::Io {
        path: p.clone(),
        source,
    })?;
    parse(&bytes, &p)
}

fn format_err(path: &str, reason: impl Into<String>) -> NpyError {
    NpyError::Format {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Parses the bytes of an `.npy` file.
pub fn parse(bytes: &[u8], path: &str) -> Result<NpyArray, NpyError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format_err(path, "missing the \\x93NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (
            usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
            10usize,
        ),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format_err(path, format!("unsupported format version {v}"))),
    };
    let header = bytes
        .get(start..start.saturating_add(header_len))
        .ok_or_else(|| format_err(path, "truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| format_err(path, "header is not text"))?;
    let descr =
        dict_value(header, "descr").ok_or_else(|| format_err(path, "header has no 'descr'"))?;
    let descr = descr
        .trim()
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    let fortran = dict_value(header, "fortran_order")
        .ok_or_else(|| format_err(path, "header has no 'fortran_order'"))?;
    let fortran = match fortran.trim() {
        "True" => true,
        "False" => false,
        other => return Err(format_err(path, format!("bad fortran_order `{other}`"))),
    };
    let shape_text =
        dict_value(header, "shape").ok_or_else(|| format_err(path, "header has no 'shape'"))?;
    let shape = parse_shape(&shape_text)
        .ok_or_else(|| format_err(path, format!("bad shape `{shape_text}`")))?;

    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        _ => (false, descr.as_str()),
    };
    let elem = match code {
        "f4" => Elem::F4,
        "f8" => Elem::F8,
        "f2" => Elem::F2,
        "i1" | "i2" | "i4" | "i8" | "u1" | "u2" | "u4" | "u8" => Elem::Int {
            bytes: usize::from(code.as_bytes()[1] - b'0'),
            signed: code.starts_with('i'),
        },
        _ => {
            return Err(NpyError::Dtype {
                path: path.to_string(),
                dtype: descr.clone(),
            });
        }
    };
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format_err(path, "shape overflows"))?;
    let data_start = start + header_len;
    let need = count
        .checked_mul(elem.size())
        .ok_or_else(|| format_err(path, "shape overflows"))?;
    let raw = &bytes[data_start.min(bytes.len())..];
    if raw.len() < need {
        return Err(format_err(
            path,
            format!(
                "truncated: shape {shape:?} needs {need} bytes of data, the file has {}",
                raw.len()
            ),
        ));
    }
    if raw.len() > need {
        return Err(format_err(
            path,
            format!("{} unexpected bytes after the data", raw.len() - need),
        ));
    }
    let mut data: Vec<f32> = raw
        .chunks_exact(elem.size())
        .map(|c| decode(c, elem, big_endian))
        .collect();
    if fortran && shape.len() > 1 {
        data = fortran_to_c(&data, &shape);
    }
    let converted_from = (!matches!(elem, Elem::F4)).then(|| descr.clone());
    Ok(NpyArray {
        shape,
        data,
        converted_from,
    })
}

fn decode(c: &[u8], elem: Elem, big_endian: bool) -> f32 {
    let mut b = [0u8; 8];
    b[..c.len()].copy_from_slice(c);
    if big_endian {
        b[..c.len()].reverse();
    }
    match elem {
        Elem::F4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        Elem::F8 => f64::from_le_bytes(b) as f32,
        Elem::F2 => half_to_f32(u16::from_le_bytes([b[0], b[1]])),
        Elem::Int { bytes, signed } => {
            let v = u64::from_le_bytes(b);
            if signed {
                let shift = 64 - 8 * bytes as u32;
                (((v << shift) as i64) >> shift) as f32
            } else {
                v as f32
            }
        }
    }
}

fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Reorders column-major data to row-major.
fn fortran_to_c(data: &[f32], shape: &[usize]) -> Vec<f32> {
    let n = data.len();
    let mut out = vec![0f32; n];
    let rank = shape.len();
    let mut idx = vec![0usize; rank];
    // Walk the data in storage order; `idx` is the current element's multi-index, whose
    // first index varies fastest in Fortran order.
    for &v in data {
        let c_pos = idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i);
        out[c_pos] = v;
        for d in 0..rank {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// The text of `key`'s value in a Python dict literal (up to the next top-level comma).
fn dict_value(header: &str, key: &str) -> Option<String> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?;
    let mut depth = 0;
    let mut end = rest.len();
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    Some(rest[..end].trim().to_string())
}

fn parse_shape(s: &str) -> Option<Vec<usize>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_end_matches('L').parse().ok())
        .collect()
}

/// Writes `data` of `shape` as a little-endian `f32` C-order `.npy` (format 1.0).
pub fn write(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    let p = path.display().to_string();
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut f = fs::File::create(path).map_err(|source| NpyError::Io {
        path: p.clone(),
        source,
    })?;
    f.write_all(&out)
        .map_err(|source| NpyError::Io { path: p, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, payload: &[u8]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        header.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir().join(format!("npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.npy");
        write(&f, &[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
        let a = read(&f).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1., 2., 3., 4., 5., 6.]);
        assert!(a.converted_from.is_none());
        write(&f, &[4], &[1., 2., 3., 4.]).unwrap();
        assert_eq!(read(&f).unwrap().shape, vec![4]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn conversions() {
        let ints: Vec<u8> = [1i64, -2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy("<i8", false, "(3,)", &ints), "x").unwrap();
        assert_eq!(a.data, vec![1., -2., 3.]);
        assert_eq!(a.converted_from.as_deref(), Some("<i8"));
        let f8: Vec<u8> = [0.5f64, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            parse(&npy(">f8", false, "(2,)", &f8), "x").unwrap().data,
            vec![0.5, 2.0]
        );
        // Fortran order [[1, 2, 3], [4, 5, 6]] is stored 1 4 2 5 3 6.
        let f4: Vec<u8> = [1f32, 4., 2., 5., 3., 6.]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            parse(&npy("<f4", true, "(2, 3)", &f4), "x").unwrap().data,
            vec![1., 2., 3., 4., 5., 6.]
        );
        assert_eq!(
            parse(&npy("|u1", false, "(2,)", &[7, 255]), "x")
                .unwrap()
                .data,
            vec![7., 255.]
        );
        assert_eq!(
            parse(&npy("<f2", false, "(1,)", &0x3c00u16.to_le_bytes()), "x")
                .unwrap()
                .data,
            vec![1.0]
        );
    }

    #[test]
    fn refusals() {
        let four = [0u8; 4];
        assert!(matches!(
            parse(&npy("<c8", false, "(1,)", &[0; 8]), "x"),
            Err(NpyError::Dtype { .. })
        ));
        assert!(matches!(
            parse(&npy("|b1", false, "(1,)", &[1]), "x"),
            Err(NpyError::Dtype { .. })
        ));
        let e = parse(&npy("<f4", false, "(1000000, 1000000)", &four), "x").unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(
            parse(&npy("<f4", false, "(2,)", &four), "x")
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        assert!(parse(b"hello world", "x").is_err());
        assert!(parse(&npy("<f4", false, "(a,)", &four), "x").is_err());
        assert!(
            parse(&npy("<f4", false, "(1,)", &[0u8; 8]), "x")
                .unwrap_err()
                .to_string()
                .contains("unexpected")
        );
    }
}
