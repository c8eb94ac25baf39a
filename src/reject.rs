//! Turning an [`AuthError`] into a response: RFC 6750 for HTTP, trailers-only for gRPC.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::error::AuthError;

/// The body type of rejection responses.
pub type RejectBody = Full<Bytes>;

/// Builds the response for a refused request. Replace it with
/// [`JwtAuthLayer::rejection`](crate::JwtAuthLayer::rejection); closures
/// `Fn(AuthError, &HeaderMap) -> Response<RejectBody>` implement it.
pub trait Reject: Send + Sync + 'static {
    /// The response for `error`; `request_headers` tell e.g. gRPC from HTTP.
    fn reject(&self, error: AuthError, request_headers: &HeaderMap) -> Response<RejectBody>;
}

impl<F> Reject for F
where
    F: Fn(AuthError, &HeaderMap) -> Response<RejectBody> + Send + Sync + 'static,
{
    fn reject(&self, error: AuthError, request_headers: &HeaderMap) -> Response<RejectBody> {
        self(error, request_headers)
    }
}

/// The default rejection: RFC 6750 challenges with a small JSON body for HTTP, and a
/// trailers-only `grpc-status` response for gRPC requests.
#[derive(Clone, Debug)]
pub struct DefaultRejection {
    realm: Option<String>,
    retry_after: HeaderValue,
}

impl Default for DefaultRejection {
    fn default() -> Self {
        DefaultRejection {
            realm: None,
            retry_after: HeaderValue::from_static("1"),
        }
    }
}

impl DefaultRejection {
    /// Adds `realm="…"` to the `WWW-Authenticate` challenge. Only printable ASCII and
    /// spaces are kept, without quotes and backslashes, so the header stays a well-formed
    /// quoted-string that every client decodes alike.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        let realm: String = realm
            .into()
            .chars()
            .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != '"' && *c != '\\')
            .collect();
        self.realm = Some(realm);
        self
    }

    /// The `Retry-After` (seconds) sent with 503 responses. Default 1.
    pub fn retry_after_secs(mut self, secs: u32) -> Self {
        self.retry_after = HeaderValue::from(secs);
        self
    }

    fn challenge(&self, error: &AuthError) -> Option<HeaderValue> {
        let mut value = String::from("Bearer");
        let mut sep = " ";
        if let Some(realm) = &self.realm {
            value.push_str(&format!(" realm=\"{realm}\""));
            sep = ", ";
        }
        match error {
            AuthError::StoreUnavailable => return None,
            AuthError::MissingToken => {}
            AuthError::InvalidRequest(_) | AuthError::InvalidToken(_) => {
                let code = error.code().unwrap_or("invalid_token");
                value.push_str(&format!(
                    "{sep}error=\"{code}\", error_description=\"{}\"",
                    error.description()
                ));
            }
        }
        HeaderValue::from_str(&value).ok()
    }
}

impl Reject for DefaultRejection {
    fn reject(&self, error: AuthError, request_headers: &HeaderMap) -> Response<RejectBody> {
        let challenge = self.challenge(&error);
        let mut response = if is_grpc(request_headers) {
            grpc_response(&error)
        } else {
            http_response(&error)
        };
        let headers = response.headers_mut();
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if matches!(error, AuthError::StoreUnavailable) {
            headers.insert(RETRY_AFTER, self.retry_after.clone());
        }
        response
    }
}

/// Whether a request is gRPC (`content-type: application/grpc` or `application/grpc+…`).
///
/// gRPC-Web (`application/grpc-web…`) is not: its clients expect their own framing, and
/// they map a plain 401/503 to UNAUTHENTICATED/UNAVAILABLE by the gRPC HTTP-status table.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.strip_prefix("application/grpc"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'))
}

/// The HTTP status of an error.
pub fn http_status(error: &AuthError) -> StatusCode {
    match error {
        AuthError::MissingToken | AuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        AuthError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        AuthError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The gRPC status code of an error: 16 UNAUTHENTICATED, or 14 UNAVAILABLE for store failures.
pub fn grpc_code(error: &AuthError) -> u16 {
    match error {
        AuthError::StoreUnavailable => 14,
        _ => 16,
    }
}

fn http_response(error: &AuthError) -> Response<RejectBody> {
    let body = serde_json::json!({
        "error": error.code().unwrap_or("unauthorized"),
        "error_description": error.description(),
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = http_status(error);
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// gRPC's percent-encoding of `grpc-message`: everything outside printable ASCII, and `%`.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

fn grpc_response(error: &AuthError) -> Response<RejectBody> {
    // Trailers-only: HTTP 200 with the status in the (only) header block, empty body.
    let mut response = Response::new(Full::new(Bytes::new()));
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from(grpc_code(error)));
    let message = utf8_percent_encode(error.description(), GRPC_MESSAGE).to_string();
    if let Ok(v) = HeaderValue::from_str(&message) {
        h.insert("grpc-message", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn grpc_but_not_grpc_web() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc;charset=utf-8",
        ] {
            assert!(is_grpc(&with_type(ct)), "{ct}");
        }
        for ct in [
            "application/grpc-web",
            "application/grpc-web-text+proto",
            "application/grpcx",
            "text/plain",
        ] {
            assert!(!is_grpc(&with_type(ct)), "{ct}");
        }
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn realm_keeps_printable_ascii_only() {
        let r = DefaultRejection::default().realm("caf\u{e9} \"x\"\\\r\n\tapi");
        let challenge = r.challenge(&AuthError::MissingToken).unwrap();
        assert_eq!(challenge, "Bearer realm=\"caf xapi\"");
    }
}
