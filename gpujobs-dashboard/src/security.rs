//! The dashboard's defences: response headers on every answer, the same-site check on
//! actions, and who may act (a session cookie or the token as a bearer header, compared
//! in constant time).

use crate::app::AppState;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

/// Scripts, styles, images and fetches only from the dashboard itself; no inline
/// script or style, no frames, forms only to itself.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The session cookie's name.
pub(crate) const COOKIE: &str = "gpujobs_session";

/// Adds the security headers to every response. On a loopback address it also refuses
/// requests naming another host: a page on another site cannot reach the dashboard by
/// pointing a name of its own at 127.0.0.1 (DNS rebinding).
pub(crate) async fn headers(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if state.loopback_only && !host_is_loopback(req.headers()) {
        let mut res = Response::new(axum::body::Body::from(
            "refused: this dashboard serves loopback only, and the request's Host is another \
             name (start it with --addr and a token to serve other hosts)\n",
        ));
        *res.status_mut() = axum::http::StatusCode::MISDIRECTED_REQUEST;
        return res;
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// Whether the request's `Host` names this machine (`localhost`, `127.x.y.z`, `[::1]`).
pub(crate) fn host_is_loopback(h: &HeaderMap) -> bool {
    let Some(host) = h.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(n, _)| n)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why an action was refused: `(status, message)`.
pub(crate) type Refusal = (axum::http::StatusCode, String);

/// Refuses a state-changing request another site made the browser send. A browser
/// that sends `Sec-Fetch-Site` (every current one) must say `same-origin`; an older one
/// is judged by its `Origin`, which must be this host. A client that sends neither
/// (curl, a script with the bearer token) is no browser being tricked, and passes on to
/// the token check.
pub(crate) fn same_origin(h: &HeaderMap) -> Result<(), Refusal> {
    let forbidden = |why: &str| {
        Err((
            axum::http::StatusCode::FORBIDDEN,
            format!("cross-site request refused: {why}"),
        ))
    };
    if let Some(site) = h.get("sec-fetch-site") {
        if site.as_bytes() == b"same-origin" {
            return Ok(());
        }
        return forbidden(&format!(
            "Sec-Fetch-Site is {}",
            String::from_utf8_lossy(site.as_bytes())
        ));
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let host = h
            .get(header::HOST)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let origin = origin.as_bytes();
        let host_of_origin = origin
            .strip_prefix(b"http://")
            .or_else(|| origin.strip_prefix(b"https://"));
        if host.is_empty() || host_of_origin != Some(host) {
            return forbidden("the Origin is another site");
        }
    }
    Ok(())
}

/// The session id the request's cookie carries.
pub(crate) fn session_of(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Whether `given` is the access token (constant time in the token's content).
pub(crate) fn token_matches(state: &AppState, given: &str) -> bool {
    match &state.token {
        Some(t) => t.as_bytes().ct_eq(given.as_bytes()).into(),
        None => false,
    }
}

/// Whether the request may act: a live session, or `Authorization: Bearer <token>`.
pub(crate) fn signed_in(state: &AppState, h: &HeaderMap) -> bool {
    if state.token.is_none() {
        return false;
    }
    if session_of(h).is_some_and(|s| state.sessions.valid(&s)) {
        return true;
    }
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| token_matches(state, t.trim()))
}

/// Refuses an action the request may not take (same-site first, then who).
pub(crate) fn may_act(state: &AppState, h: &HeaderMap) -> Result<(), Refusal> {
    same_origin(h)?;
    if state.token.is_none() {
        return Err((
            axum::http::StatusCode::FORBIDDEN,
            "this dashboard is read-only: start it with --token-file or \
             GPUJOBS_DASHBOARD_TOKEN to allow retry and cancel"
                .into(),
        ));
    }
    if !signed_in(state, h) {
        return Err((
            axum::http::StatusCode::UNAUTHORIZED,
            "sign in with the access token first".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_site_requests_pass_and_cross_site_ones_are_refused() {
        assert!(same_origin(&headers(&[])).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        // A same-origin form post may carry `Origin: null` (privacy settings).
        let null_ok = headers(&[("sec-fetch-site", "same-origin"), ("origin", "null")]);
        assert!(same_origin(&null_ok).is_ok());
        let ok = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(same_origin(&ok).is_ok());
        let evil = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(same_origin(&evil).is_err());
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(same_origin(&null).is_err());
    }

    #[test]
    fn loopback_hosts_are_told_apart_from_other_names() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.3.4.5",
        ] {
            assert!(host_is_loopback(&headers(&[("host", ok)])), "{ok}");
        }
        for bad in ["evil.example:8080", "10.0.0.1:8080", "[::2]:80", ""] {
            assert!(!host_is_loopback(&headers(&[("host", bad)])), "{bad}");
        }
        assert!(!host_is_loopback(&headers(&[])));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; gpujobs_session=abc; b=2")]);
        assert_eq!(session_of(&h).as_deref(), Some("abc"));
        assert_eq!(session_of(&headers(&[("cookie", "x=y")])), None);
    }
}
