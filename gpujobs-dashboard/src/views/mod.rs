//! The pages. Each module is one view; this one holds the frame every page shares and
//! the small formatting helpers. Templates are `maud`: every `(value)` is escaped, so
//! job data never becomes markup.

pub(crate) mod charts;
pub(crate) mod dead;
pub(crate) mod graph;
pub(crate) mod job;
pub(crate) mod jobs;
pub(crate) mod overview;
pub(crate) mod workers;

use crate::app::AppState;
use crate::security;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// Which tab is lit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    Overview,
    Workers,
    Jobs,
    Dead,
    None,
}

/// A whole page: header, navigation, the sign-in state, an optional banner, `body`.
pub(crate) fn frame(
    state: &AppState,
    headers: &HeaderMap,
    title: &str,
    tab: Tab,
    banner: Option<&str>,
    body: Markup,
) -> Markup {
    let signed_in = security::signed_in(state, headers);
    let tabs = [
        (Tab::Overview, "/", "Overview"),
        (Tab::Workers, "/workers", "Workers"),
        (Tab::Jobs, "/jobs", "Jobs"),
        (Tab::Dead, "/dead", "Dead letters"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · gpujobs" }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/app.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "gpujobs" }
                    nav {
                        @for (t, href, label) in tabs {
                            a href=(href) class=[(t == tab).then_some("active")] { (label) }
                        }
                    }
                    div.where {
                        span title="Redis (password masked)" { (state.redis_shown) }
                        " · namespace " b { (state.namespace) }
                    }
                    div.auth {
                        @if state.token.is_none() {
                            span.readonly title="start with --token-file to allow actions" { "read-only" }
                        } @else if signed_in {
                            form method="post" action="/logout" {
                                button type="submit" { "Sign out" }
                            }
                        } @else {
                            form method="post" action="/login" {
                                input type="password" name="token" placeholder="access token" autocomplete="current-password" required;
                                button type="submit" { "Sign in" }
                            }
                        }
                    }
                }
                @if let Some(b) = banner {
                    div.banner role="alert" { (b) }
                }
                main data-refresh=[matches!(tab, Tab::Overview | Tab::Workers).then_some("5")] {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page answered with `status`.
pub(crate) fn respond(status: StatusCode, page: Markup) -> Response {
    (status, Html(page.into_string())).into_response()
}

/// The page when Redis cannot be read: the frame with a banner saying why (503).
pub(crate) fn redis_down(
    state: &AppState,
    headers: &HeaderMap,
    title: &str,
    tab: Tab,
    err: &gpujobs_core::QueueError,
) -> Response {
    let banner = format!("Redis cannot be read right now: {err}. This page retries by itself.");
    let page = frame(
        state,
        headers,
        title,
        tab,
        Some(&banner),
        html! { p.muted { "Nothing to show until Redis answers." } },
    );
    let mut res = respond(StatusCode::SERVICE_UNAVAILABLE, page);
    res.headers_mut()
        .insert("refresh", axum::http::HeaderValue::from_static("5"));
    res
}

/// A page saying what was wrong with the request (4xx).
pub(crate) fn bad_request(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    message: &str,
) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let page = frame(
        state,
        headers,
        title,
        Tab::None,
        None,
        html! { p.error { (message) } },
    );
    respond(status, page)
}

/// Unknown paths.
pub(crate) async fn not_found(
    axum::extract::State(state): crate::app::State,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    bad_request(
        &state,
        &headers,
        StatusCode::NOT_FOUND,
        &format!("no page at {}", uri.path()),
    )
}

/// `/jobs/<id>` with the id percent-encoded.
pub(crate) fn job_href(id: &str) -> String {
    format!("/jobs/{}", encode(id))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `2026-12-07 12:34:56` (UTC) for ms since the epoch.
pub(crate) fn when(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let (y, mo, d) = civil(secs / 86_400);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}")
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm).
pub(crate) fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}

/// `YYYY-MM-DDTHH:MM[:SS]` (UTC, as a datetime-local input sends it) → ms since the epoch.
pub(crate) fn parse_when(s: &str) -> Option<u64> {
    let (date, time) = s.trim().split_once(['T', ' '])?;
    let mut d = date.split('-').map(|p| p.parse::<u64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi) = (t.next()??, t.next()??);
    let sec = t.next().flatten().unwrap_or(0);
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&da)
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    // Days from civil (inverse of `civil`).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2 / 400;
    let yoe = y2 - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(((days * 86_400) + h * 3600 + mi * 60 + sec) * 1000)
}

/// `3 s ago`, `5 min ago`, ... for a past instant.
pub(crate) fn ago(ms: u64, now_ms: u64) -> String {
    let s = now_ms.saturating_sub(ms) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// `1.2 GiB`, `340 KiB`, ...
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A state as a coloured label.
pub(crate) fn state_badge(state: &str) -> Markup {
    html! { span class={ "state " (state) } { (state) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(when(0), "1970-01-01 00:00:00");
        let ms = parse_when("2026-12-07T12:34").expect("parses");
        assert_eq!(when(ms), "2026-12-07 12:34:00");
        assert_eq!(
            when(parse_when("2024-02-29 23:59:59").expect("leap day")),
            "2024-02-29 23:59:59"
        );
        assert_eq!(parse_when("2026-13-01T00:00"), None);
        assert_eq!(parse_when("yesterday"), None);
    }

    #[test]
    fn ids_are_percent_encoded_in_links() {
        assert_eq!(job_href("a/b c"), "/jobs/a%2Fb%20c");
        assert_eq!(job_href("{g1}blur"), "/jobs/%7Bg1%7Dblur");
        assert_eq!(job_href("<script>"), "/jobs/%3Cscript%3E");
    }
}
