//! Reading and writing NumPy `.npy` files as `f32` arrays.
//!
//! Written here rather than taken from a crate: the format is a magic string, a Python
//! dict literal and raw bytes, and the crates that parse it pull in a parser generator
//! for the dict. Supported: format versions 1–3; `f4` as is; `f8`, `f2` and integer
//! arrays converted to `f32` (the caller warns, since `f8` and large integers lose
//! precision); either byte order; Fortran order reordered to C order. Everything else
//! (booleans, complex, strings, objects, structured dtypes) is refused with its dtype.
//!
//! Arrays are read into page-aligned buffers from a [`BufferPool`], the memory a job
//! runs on and a device can register in place.

use crate::{BufferPool, HostBuf};
use std::fs;
use std::io::{Read, Write};
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
    /// The array, as `f32`, is larger than the caller's limit.
    #[error(
        "{path}: shape {shape:?} is {bytes} bytes as float32, over the limit of {limit} bytes for one input (a queue blob); split the data into smaller jobs"
    )]
    TooLarge {
        /// The file.
        path: String,
        /// Its shape.
        shape: Vec<usize>,
        /// Its size as `f32`.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// No memory for the array.
    #[error("{path}: {source}")]
    Memory {
        /// The file.
        path: String,
        /// What could not be allocated.
        source: crate::buffer::OutOfHostMemory,
    },
}

/// An array read from a `.npy` file.
#[derive(Debug, PartialEq)]
pub struct NpyArray {
    /// Its shape (C order).
    pub shape: Vec<usize>,
    /// Its values in C order, in a page-aligned buffer from the pool it was read with.
    pub data: HostBuf,
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

/// What the header says.
struct Header {
    shape: Vec<usize>,
    count: usize,
    elem: Elem,
    big_endian: bool,
    fortran: bool,
    descr: String,
    /// Offset of the data in the file.
    data_start: usize,
    /// Bytes of data the shape needs.
    data_bytes: usize,
}

/// Most bytes a header may take (numpy writes at most a few hundred; version 2 allows
/// 4 GiB, which a hostile file could claim).
const MAX_HEADER: usize = 1 << 20;

/// Bytes converted per step when a dtype other than little-endian `f4` is read.
const CONVERT_CHUNK: usize = 1 << 20;

/// Reads an `.npy` file into `f32`, straight into a page-aligned buffer from `pool`:
/// little-endian `f4` data is read from the file into its final memory with no copy in
/// between; other dtypes are converted a chunk at a time. The file's size is checked
/// against its shape before anything large is allocated.
pub fn read(path: &Path, pool: &BufferPool) -> Result<NpyArray, NpyError> {
    read_capped(path, pool, u64::MAX)
}

/// [`read`], refusing from the header alone, before the data is read or memory
/// allocated, an array larger than `limit` bytes as `f32` (a queue's blob limit).
pub fn read_capped(path: &Path, pool: &BufferPool, limit: u64) -> Result<NpyArray, NpyError> {
    let p = path.display().to_string();
    let io = |source| NpyError::Io {
        path: p.clone(),
        source,
    };
    let mut f = fs::File::open(path).map_err(io)?;
    let file_len = f.metadata().map_err(io)?.len();
    let mut pre = Vec::with_capacity(12);
    (&mut f).take(12).read_to_end(&mut pre).map_err(io)?;
    let want = header_end(header_len(&pre, &p)?);
    let mut head = pre;
    (&mut f)
        .take(want.saturating_sub(head.len()) as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    let h = parse_header(&head, &p)?;
    let bytes = (h.count as u64).saturating_mul(4);
    if bytes > limit {
        return Err(NpyError::TooLarge {
            path: p,
            shape: h.shape,
            bytes,
            limit,
        });
    }
    check_length(&h, file_len.saturating_sub(h.data_start as u64), &p)?;
    let mut data = pool.take(h.count).map_err(|source| NpyError::Memory {
        path: p.clone(),
        source,
    })?;
    if matches!(h.elem, Elem::F4) && !h.big_endian && cfg!(target_endian = "little") {
        f.read_exact(data.as_bytes_mut()).map_err(io)?;
    } else {
        let size = h.elem.size();
        let mut chunk = vec![0u8; CONVERT_CHUNK / size * size];
        for out in data.chunks_mut(chunk.len() / size) {
            let bytes = &mut chunk[..out.len() * size];
            f.read_exact(bytes).map_err(io)?;
            decode_into(bytes, h.elem, h.big_endian, out);
        }
    }
    finish(h, data, pool, &p)
}

/// Parses the bytes of an `.npy` file held in memory.
pub fn parse(bytes: &[u8], path: &str, pool: &BufferPool) -> Result<NpyArray, NpyError> {
    let end = header_end(header_len(bytes, path)?);
    let h = parse_header(&bytes[..end.min(bytes.len())], path)?;
    let raw = &bytes[h.data_start.min(bytes.len())..];
    check_length(&h, raw.len() as u64, path)?;
    let mut data = pool.take(h.count).map_err(|source| NpyError::Memory {
        path: path.to_string(),
        source,
    })?;
    decode_into(raw, h.elem, h.big_endian, &mut data);
    finish(h, data, pool, path)
}

/// Reorders Fortran-order data and notes conversions.
fn finish(h: Header, data: HostBuf, pool: &BufferPool, path: &str) -> Result<NpyArray, NpyError> {
    let data = if h.fortran && h.shape.len() > 1 {
        let mut c = pool.take(h.count).map_err(|source| NpyError::Memory {
            path: path.to_string(),
            source,
        })?;
        fortran_to_c(&data, &h.shape, &mut c);
        c
    } else {
        data
    };
    let converted_from = (!matches!(h.elem, Elem::F4)).then(|| h.descr.clone());
    Ok(NpyArray {
        shape: h.shape,
        data,
        converted_from,
    })
}

fn format_err(path: &str, reason: impl Into<String>) -> NpyError {
    NpyError::Format {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// The header's length and where it starts, from the first 10 or 12 bytes.
fn header_len(bytes: &[u8], path: &str) -> Result<(usize, usize), NpyError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format_err(path, "missing the \\x93NUMPY magic"));
    }
    let (len, start) = match bytes[6] {
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
    if len > MAX_HEADER {
        return Err(format_err(
            path,
            format!("header of {len} bytes is too long"),
        ));
    }
    Ok((len, start))
}

/// Where the header ends (its length is at most [`MAX_HEADER`], so no overflow).
fn header_end((len, start): (usize, usize)) -> usize {
    start + len
}

fn parse_header(bytes: &[u8], path: &str) -> Result<Header, NpyError> {
    let (header_len, start) = header_len(bytes, path)?;
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
    let data_bytes = count
        .checked_mul(elem.size())
        .ok_or_else(|| format_err(path, "shape overflows"))?;
    Ok(Header {
        shape,
        count,
        elem,
        big_endian,
        fortran,
        descr,
        data_start: start + header_len,
        data_bytes,
    })
}

/// Refuses data shorter or longer than the shape says, before anything is allocated.
fn check_length(h: &Header, have: u64, path: &str) -> Result<(), NpyError> {
    let need = h.data_bytes as u64;
    if have < need {
        return Err(format_err(
            path,
            format!(
                "truncated: shape {:?} needs {need} bytes of data, the file has {have}",
                h.shape
            ),
        ));
    }
    if have > need {
        return Err(format_err(
            path,
            format!("{} unexpected bytes after the data", have - need),
        ));
    }
    Ok(())
}

/// Decodes whole elements of `raw` into `out` (as many as `out` holds).
fn decode_into(raw: &[u8], elem: Elem, big_endian: bool, out: &mut [f32]) {
    for (v, c) in out.iter_mut().zip(raw.chunks_exact(elem.size())) {
        *v = decode(c, elem, big_endian);
    }
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

/// Reorders column-major `data` of `shape` into row-major `out`.
fn fortran_to_c(data: &[f32], shape: &[usize], out: &mut [f32]) {
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
    // The values' own memory as bytes (little-endian machines): no copy of the data.
    write_raw(path, shape, "<f4", &crate::buffer::le_bytes(data))
}

/// Writes integer-valued `f32`s (class labels) as a little-endian `int64` `.npy`, the
/// dtype numpy gives integer arrays by default. Values must be integers that fit.
pub fn write_i64(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    let bytes: Vec<u8> = data
        .iter()
        .flat_map(|&v| (v as i64).to_le_bytes())
        .collect();
    write_raw(path, shape, "<i8", &bytes)
}

/// A C-order `.npy` (format 1.0) of little-endian `f32` bytes: what [`write()`] puts in a
/// file, for stores that take bytes (object storage).
pub fn encode(shape: &[usize], le_f32: &[u8]) -> Vec<u8> {
    let head = header_bytes(shape, "<f4");
    let mut out = Vec::with_capacity(head.len() + le_f32.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(le_f32);
    out
}

fn write_raw(path: &Path, shape: &[usize], descr: &str, bytes: &[u8]) -> Result<(), NpyError> {
    let p = path.display().to_string();
    let head = header_bytes(shape, descr);
    let io = |source| NpyError::Io {
        path: p.clone(),
        source,
    };
    let mut f = std::io::BufWriter::new(fs::File::create(path).map_err(io)?);
    f.write_all(&head).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.flush().map_err(io)
}

/// The magic, version 1.0 and the header dict, padded to 64 bytes as numpy does.
fn header_bytes(shape: &[usize], descr: &str) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut head = Vec::with_capacity(10 + header.len());
    head.extend_from_slice(b"\x93NUMPY\x01\x00");
    head.extend_from_slice(&(header.len() as u16).to_le_bytes());
    head.extend_from_slice(header.as_bytes());
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> BufferPool {
        BufferPool::new(64 << 20)
    }

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
    fn an_array_over_the_limit_is_refused_before_its_data_is_read() {
        let dir = tempfile::tempdir().unwrap();
        // 1000 uint8 values are 4000 bytes as f32.
        let f = dir.path().join("u8.npy");
        std::fs::write(&f, npy("|u1", false, "(1000,)", &[1u8; 1000])).unwrap();
        let err = read_capped(&f, &pool(), 3999).unwrap_err();
        assert!(
            matches!(
                err,
                NpyError::TooLarge {
                    bytes: 4000,
                    limit: 3999,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(read_capped(&f, &pool(), 4000).unwrap().data.len(), 1000);
        // Only the header is needed: a file with no data gets the size error, not
        // "truncated".
        let h = dir.path().join("header-only.npy");
        std::fs::write(&h, npy("<f8", false, "(10000,)", &[])).unwrap();
        assert!(matches!(
            read_capped(&h, &pool(), 1000).unwrap_err(),
            NpyError::TooLarge { bytes: 40000, .. }
        ));
    }

    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir().join(format!("npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.npy");
        write(&f, &[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
        let a = read(&f, &pool()).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1., 2., 3., 4., 5., 6.]);
        assert!(a.converted_from.is_none());
        write(&f, &[4], &[1., 2., 3., 4.]).unwrap();
        assert_eq!(read(&f, &pool()).unwrap().shape, vec![4]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn conversions() {
        let ints: Vec<u8> = [1i64, -2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy("<i8", false, "(3,)", &ints), "x", &pool()).unwrap();
        assert_eq!(a.data, vec![1., -2., 3.]);
        assert_eq!(a.converted_from.as_deref(), Some("<i8"));
        let f8: Vec<u8> = [0.5f64, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            parse(&npy(">f8", false, "(2,)", &f8), "x", &pool())
                .unwrap()
                .data,
            vec![0.5, 2.0]
        );
        // Fortran order [[1, 2, 3], [4, 5, 6]] is stored 1 4 2 5 3 6.
        let f4: Vec<u8> = [1f32, 4., 2., 5., 3., 6.]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            parse(&npy("<f4", true, "(2, 3)", &f4), "x", &pool())
                .unwrap()
                .data,
            vec![1., 2., 3., 4., 5., 6.]
        );
        assert_eq!(
            parse(&npy("|u1", false, "(2,)", &[7, 255]), "x", &pool())
                .unwrap()
                .data,
            vec![7., 255.]
        );
        assert_eq!(
            parse(
                &npy("<f2", false, "(1,)", &0x3c00u16.to_le_bytes()),
                "x",
                &pool()
            )
            .unwrap()
            .data,
            vec![1.0]
        );
    }

    #[test]
    fn refusals() {
        let four = [0u8; 4];
        assert!(matches!(
            parse(&npy("<c8", false, "(1,)", &[0; 8]), "x", &pool()),
            Err(NpyError::Dtype { .. })
        ));
        assert!(matches!(
            parse(&npy("|b1", false, "(1,)", &[1]), "x", &pool()),
            Err(NpyError::Dtype { .. })
        ));
        let e = parse(
            &npy("<f4", false, "(1000000, 1000000)", &four),
            "x",
            &pool(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(
            parse(&npy("<f4", false, "(2,)", &four), "x", &pool())
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        assert!(parse(b"hello world", "x", &pool()).is_err());
        assert!(parse(&npy("<f4", false, "(a,)", &four), "x", &pool()).is_err());
        assert!(
            parse(&npy("<f4", false, "(1,)", &[0u8; 8]), "x", &pool())
                .unwrap_err()
                .to_string()
                .contains("unexpected")
        );
    }
}
