//! `/jobs/<id>/outputs/<path>.npy` (the tensor as numpy reads it) and `.png` (a grey
//! preview of a 2-D output, scaled to its minimum and maximum, at most 1024 pixels a
//! side).

use crate::app::State;
use crate::views::bad_request;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gpujobs_core::JobId;
use gpujobs_core::model::graph::find_output;
use gpujobs_core::queue::SubmitQueue;

const PREVIEW_SIDE: usize = 1024;

pub(crate) async fn file(
    axum::extract::State(state): State,
    headers: HeaderMap,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let refuse = |status, msg: &str| bad_request(&state, &headers, status, msg);
    let (path, png) = match (file.strip_suffix(".npy"), file.strip_suffix(".png")) {
        (Some(p), _) => (p, false),
        (_, Some(p)) => (p, true),
        _ => {
            return refuse(
                StatusCode::NOT_FOUND,
                "outputs are served as <path>.npy or <path>.png",
            );
        }
    };
    let Some(job) = JobId::parse(&id) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "a job id is 1–128 printable ASCII characters",
        );
    };
    let rec = match state.queue.status(&job).await {
        Ok(Some(r)) => r,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, &format!("no job {id}")),
        Err(e) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("cannot read the job's outputs: {e}"),
            );
        }
    };
    let Some(result) = rec.result else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("job {id} has no result ({})", rec.state.as_str()),
        );
    };
    let Some(tensor) = find_output(&result.output, &result.blobs, path) else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("job {id} has no stored output `{path}`"),
        );
    };
    let Some(values) = tensor.stored() else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("output `{path}` is not stored in Redis"),
        );
    };
    let shape = tensor.shape().to_vec();
    let data = values.as_slice();
    let name = format!("{}-{}", sanitize(&id), sanitize(path));
    if !png {
        let le: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let body = gpujobs_core::io::npy::encode(&shape, &le);
        return attachment(body, "application/octet-stream", &format!("{name}.npy"));
    }
    let [h, w] = shape[..] else {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("output `{path}` is not 2-D (shape {shape:?}): no preview"),
        );
    };
    match preview(data, h, w) {
        Some(bytes) => {
            let mut res = (StatusCode::OK, bytes).into_response();
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
            res
        }
        None => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the preview could not be encoded",
        ),
    }
}

fn attachment(body: Vec<u8>, mime: &'static str, filename: &str) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// Letters, digits, `-`, `_`, `.`; the rest `_` (a file name from a job id).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A PNG of `data` (h×w), min–max scaled, subsampled to at most `PREVIEW_SIDE` a side.
fn preview(data: &[f32], h: usize, w: usize) -> Option<Vec<u8>> {
    if h == 0 || w == 0 || data.len() < h.checked_mul(w)? {
        return None;
    }
    let step = h.max(w).div_ceil(PREVIEW_SIDE).max(1);
    let (ph, pw) = (h.div_ceil(step), w.div_ceil(step));
    let finite = data.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut px = Vec::with_capacity(ph * pw);
    for y in 0..ph {
        for x in 0..pw {
            let v = data[y * step * w + x * step];
            let g = if v.is_finite() {
                ((v - lo) / span * 255.0).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
            px.push(g);
        }
    }
    let img = image::GrayImage::from_raw(pw as u32, ph as u32, px)?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).ok()?;
    Some(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_scaled_and_bounded() {
        let data: Vec<f32> = (0..2048 * 3).map(|i| (i % 2048) as f32).collect();
        let png = preview(&data, 3, 2048).expect("encodes");
        let img = image::load_from_memory(&png).expect("decodes").to_luma8();
        assert_eq!((img.width(), img.height()), (1024, 2));
        assert_eq!(img.get_pixel(0, 0)[0], 0);
        assert_eq!(img.get_pixel(1023, 0)[0], 255);
        assert!(preview(&[1.0], 2, 2).is_none());
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(sanitize("{g}a/b\"c"), "_g_a_b_c");
    }
}
