//! What a signed-in operator can do: sign in and out, retry or cancel a job, retry the
//! dead letters a filter shows. Every action is a POST that passes
//! [`security::may_act`] (same site, then a session or the bearer token).

use crate::app::State;
use crate::security::{self, COOKIE};
use crate::sessions::SESSION_TTL;
use crate::views::dead::DeadFilter;
use crate::views::{bad_request, job_href};
use axum::Form;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gpujobs_core::queue::{AdminQueue, CancelOutcome, SubmitQueue};
use gpujobs_core::{JobId, QueueError};

#[derive(serde::Deserialize)]
pub(crate) struct Login {
    token: String,
}

pub(crate) async fn login(
    axum::extract::State(state): State,
    headers: HeaderMap,
    Form(f): Form<Login>,
) -> Response {
    if let Err((status, msg)) = security::same_origin(&headers) {
        return bad_request(&state, &headers, status, &msg);
    }
    if state.token.is_none() {
        return bad_request(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            "this dashboard is read-only: it has no access token to sign in with",
        );
    }
    if !security::token_matches(&state, f.token.trim()) {
        // A wrong guess costs the guesser a second.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        return bad_request(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            "wrong access token",
        );
    }
    let Some(sid) = state.sessions.open() else {
        return bad_request(
            &state,
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            "no randomness for a session id",
        );
    };
    let mut res = back(&headers);
    let cookie = format!(
        "{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

pub(crate) async fn logout(axum::extract::State(state): State, headers: HeaderMap) -> Response {
    if let Err((status, msg)) = security::same_origin(&headers) {
        return bad_request(&state, &headers, status, &msg);
    }
    if let Some(s) = security::session_of(&headers) {
        state.sessions.close(&s);
    }
    let mut res = back(&headers);
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("gpujobs_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    res
}

/// Back to the page the form was on (same origin only), else the overview.
fn back(headers: &HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let to = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| {
            r.strip_prefix("http://")
                .or_else(|| r.strip_prefix("https://"))
        })
        .and_then(|r| r.strip_prefix(host))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or("/")
        .to_string();
    Redirect::to(&to).into_response()
}

pub(crate) async fn retry(
    axum::extract::State(state): State,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err((status, msg)) = security::may_act(&state, &headers) {
        return bad_request(&state, &headers, status, &msg);
    }
    let Some(job) = JobId::parse(&id) else {
        return bad_request(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "a job id is 1–128 printable ASCII characters",
        );
    };
    match state.queue.retry_dead(&job).await {
        Ok(true) => {
            tracing::info!(job = %id, "retried from the dashboard");
            Redirect::to(&job_href(&id)).into_response()
        }
        Ok(false) => bad_request(
            &state,
            &headers,
            StatusCode::CONFLICT,
            &format!("job {id} is not a dead letter (it may have been retried already)"),
        ),
        Err(QueueError::Refused(why)) => bad_request(&state, &headers, StatusCode::CONFLICT, &why),
        Err(e) => bad_request(
            &state,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot retry job {id}: {e}"),
        ),
    }
}

pub(crate) async fn cancel(
    axum::extract::State(state): State,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err((status, msg)) = security::may_act(&state, &headers) {
        return bad_request(&state, &headers, status, &msg);
    }
    let Some(job) = JobId::parse(&id) else {
        return bad_request(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "a job id is 1–128 printable ASCII characters",
        );
    };
    match state.queue.cancel(&job).await {
        Ok(CancelOutcome::Cancelled | CancelOutcome::Requested) => {
            tracing::info!(job = %id, "cancelled from the dashboard");
            Redirect::to(&job_href(&id)).into_response()
        }
        Ok(CancelOutcome::AlreadyFinished(s)) => bad_request(
            &state,
            &headers,
            StatusCode::CONFLICT,
            &format!("job {id} already ended: {}", s.as_str()),
        ),
        Ok(CancelOutcome::NotFound) => bad_request(
            &state,
            &headers,
            StatusCode::NOT_FOUND,
            &format!("no job {id}"),
        ),
        Err(e) => bad_request(
            &state,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot cancel job {id}: {e}"),
        ),
    }
}

/// Retries every dead letter the filter shows (the newest `limit`), reporting each.
pub(crate) async fn retry_many(
    axum::extract::State(state): State,
    headers: HeaderMap,
    Form(f): Form<DeadFilter>,
) -> Response {
    if let Err((status, msg)) = security::may_act(&state, &headers) {
        return bad_request(&state, &headers, status, &msg);
    }
    let letters = match state.queue.dead_letters(f.limit()).await {
        Ok(v) => v,
        Err(e) => {
            return bad_request(
                &state,
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("cannot read the dead letters: {e}"),
            );
        }
    };
    let (mut done, mut failed) = (0usize, Vec::new());
    for d in letters.iter().filter(|d| f.matches(d) && d.raw.is_none()) {
        let Some(job) = JobId::parse(&d.id) else {
            continue;
        };
        match state.queue.retry_dead(&job).await {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => failed.push(format!("{}: {e}", d.id)),
        }
    }
    tracing::info!(
        retried = done,
        refused = failed.len(),
        "bulk retry from the dashboard"
    );
    let body = maud::html! {
        p #bulk-result { "Retried " (done) " jobs." }
        @if !failed.is_empty() {
            p { (failed.len()) " could not be retried:" }
            ul { @for f in &failed { li.err { (f) } } }
        }
        p { a href="/dead" { "Back to the dead letters" } }
    };
    let page = crate::views::frame(
        &state,
        &headers,
        "Bulk retry",
        crate::views::Tab::Dead,
        None,
        body,
    );
    crate::views::respond(StatusCode::OK, page)
}
