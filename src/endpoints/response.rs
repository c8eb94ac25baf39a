//! Token-endpoint responses: RFC 6749 §5.1 success, §5.2 errors.

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, SET_COOKIE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use serde::{Deserialize, Serialize};

use crate::session::{SessionError, TokenPair};

/// The RFC 6749 §5.1 token response body.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// The refresh token; absent for cookie clients, which keep it in the `HttpOnly`
    /// cookie only (see [`CookieConfig`](crate::CookieConfig)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    /// The response for `pair`, with its refresh token in the body or not.
    pub(crate) fn new(pair: &TokenPair, refresh_token_in_body: bool) -> Self {
        TokenResponse {
            access_token: pair.access.token.clone(),
            token_type: "Bearer".into(),
            expires_in: pair.access.expires_in,
            refresh_token: refresh_token_in_body.then(|| pair.refresh_token.clone()),
        }
    }
}

/// Why a token-endpoint request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointError {
    MethodNotAllowed,
    PayloadTooLarge,
    /// The body did not arrive within the body timeout.
    Timeout,
    /// A cookie-authenticated request that does not show it is the page's own (CSRF).
    Forbidden(&'static str),
    UnsupportedMediaType,
    InvalidRequest(&'static str),
    UnsupportedGrantType,
    InvalidGrant,
    Unavailable,
    Internal,
    /// Logout-all mounted without the layer in front: a deployment mistake.
    NotBehindLayer,
}

impl From<SessionError> for EndpointError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::InvalidGrant => EndpointError::InvalidGrant,
            SessionError::InvalidSubject => EndpointError::InvalidRequest("invalid subject"),
            SessionError::Unavailable(e) => {
                tracing::warn!(error = %e, "session store failed; answering 503");
                EndpointError::Unavailable
            }
            SessionError::Issue(e) => {
                tracing::error!(error = %e, "cannot mint tokens");
                EndpointError::Internal
            }
        }
    }
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// 200 with the token response (and the cookie, when given).
pub(crate) fn token_response(body: &TokenResponse, set_cookie: Option<HeaderValue>) -> Response<Full<Bytes>> {
    let mut r = json(StatusCode::OK, serde_json::to_string(body).unwrap_or_default());
    if let Some(c) = set_cookie {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r
}

/// 200 `{"revoked": …}` (logout).
pub(crate) fn ok_response(revoked: bool, set_cookie: Option<HeaderValue>) -> Response<Full<Bytes>> {
    let mut r = json(
        StatusCode::OK,
        serde_json::json!({ "revoked": revoked }).to_string(),
    );
    if let Some(c) = set_cookie {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r
}

/// The error response; `clear_cookie` deletes a refresh cookie that can no longer work.
pub(crate) fn error_response(e: &EndpointError, clear_cookie: Option<HeaderValue>) -> Response<Full<Bytes>> {
    let (status, code, description) = match e {
        EndpointError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "use POST"),
        EndpointError::PayloadTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "request body too large",
        ),
        EndpointError::Timeout => (
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request",
            "request body too slow",
        ),
        EndpointError::Forbidden(d) => (StatusCode::FORBIDDEN, "invalid_request", *d),
        EndpointError::UnsupportedMediaType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "use application/json or application/x-www-form-urlencoded",
        ),
        EndpointError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", *d),
        EndpointError::UnsupportedGrantType => (
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only refresh_token is supported",
        ),
        EndpointError::InvalidGrant => (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token is invalid, expired or revoked",
        ),
        EndpointError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "session store unavailable, retry later",
        ),
        EndpointError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "cannot issue tokens",
        ),
        EndpointError::NotBehindLayer => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "this endpoint must sit behind JwtAuthLayer",
        ),
    };
    let body = serde_json::json!({"error": code, "error_description": description});
    let mut r = json(status, body.to_string());
    let h = r.headers_mut();
    match e {
        EndpointError::MethodNotAllowed => {
            h.insert(ALLOW, HeaderValue::from_static("POST"));
        }
        EndpointError::Unavailable => {
            h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    if let Some(c) = clear_cookie {
        h.insert(SET_COOKIE, c);
    }
    r
}
