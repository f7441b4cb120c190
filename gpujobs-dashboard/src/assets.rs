//! The embedded script and stylesheet, served under `/static/` (the CSP allows only
//! scripts and styles from the dashboard itself).

use axum::http::header;
use axum::response::{IntoResponse, Response};

const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

pub(crate) async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        APP_JS,
    )
        .into_response()
}

pub(crate) async fn style_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLE_CSS,
    )
        .into_response()
}
