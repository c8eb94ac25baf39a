//! Finding the bearer token in a request (RFC 6750 §2.1 only).

use http::header::AUTHORIZATION;
use http::{HeaderMap, Uri};

use crate::error::{AuthError, InvalidRequest};

/// The bearer token of a request: `Ok(None)` when none was sent.
pub(crate) fn bearer_token<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<Option<&'a str>, AuthError> {
    bearer_bytes(headers, uri)?.map(token_text).transpose()
}

/// The bearer token's bytes, its syntax not yet checked: a token already verified (the
/// cache compares exact bytes) needs no second look, so the middleware checks only what it
/// must verify ([`token_text`]).
pub(crate) fn bearer_bytes<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<Option<&'a [u8]>, AuthError> {
    if uri.query().is_some_and(query_has_token) {
        return Err(AuthError::InvalidRequest(InvalidRequest::TokenInQuery));
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest(
            InvalidRequest::MultipleAuthorizationHeaders,
        ));
    }
    let value = value.as_bytes();
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        // Another scheme (Basic, …) carries no bearer credentials: challenge for one, unless
        // the header is not even visible ASCII.
        return if value
            .iter()
            .all(|&b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        {
            Ok(None)
        } else {
            Err(malformed())
        };
    }
    Ok(Some(trim_spaces(rest)))
}

/// The token as text: non-empty visible ASCII without spaces (RFC 6750 `b64token` is
/// narrower still; the verifier checks that).
pub(crate) fn token_text(token: &[u8]) -> Result<&str, AuthError> {
    if token.is_empty() || !token.iter().all(u8::is_ascii_graphic) {
        return Err(malformed());
    }
    std::str::from_utf8(token).map_err(|_| malformed())
}

fn malformed() -> AuthError {
    AuthError::InvalidRequest(InvalidRequest::MalformedAuthorizationHeader)
}

fn trim_spaces(mut bytes: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' '] = bytes {
        bytes = rest;
    }
    bytes
}

fn query_has_token(query: &str) -> bool {
    // Cheap prefilter; a percent-encoded name (`access%5Ftoken`) must still be caught.
    (query.contains("access_token") || query.contains('%'))
        && form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "access_token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let uri: Uri = "/".parse().unwrap();
        for v in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer   abc"] {
            assert_eq!(bearer_token(&headers(&[v]), &uri), Ok(Some("abc")), "{v}");
        }
    }

    #[test]
    fn two_headers_are_invalid_request() {
        let uri: Uri = "/".parse().unwrap();
        assert_eq!(
            bearer_token(&headers(&["Bearer a", "Bearer b"]), &uri),
            Err(AuthError::InvalidRequest(
                InvalidRequest::MultipleAuthorizationHeaders
            ))
        );
    }

    #[test]
    fn other_schemes_and_absence_are_no_token() {
        let uri: Uri = "/".parse().unwrap();
        assert_eq!(bearer_token(&headers(&[]), &uri), Ok(None));
        assert_eq!(bearer_token(&headers(&["Basic dXNlcjpwYXNz"]), &uri), Ok(None));
    }

    #[test]
    fn empty_or_spaced_token_is_malformed() {
        let uri: Uri = "/".parse().unwrap();
        for v in ["Bearer", "Bearer ", "Bearer a b"] {
            assert_eq!(
                bearer_token(&headers(&[v]), &uri),
                Err(AuthError::InvalidRequest(
                    InvalidRequest::MalformedAuthorizationHeader
                )),
                "{v}"
            );
        }
    }

    #[test]
    fn token_in_query_is_refused() {
        let uri: Uri = "/me?x=1&access_token=abc".parse().unwrap();
        assert_eq!(
            bearer_token(&headers(&[]), &uri),
            Err(AuthError::InvalidRequest(InvalidRequest::TokenInQuery))
        );
        for q in [
            "access%5Ftoken=abc",
            "%61ccess_token=abc",
            "a=%20&access%5ftoken=",
        ] {
            let uri: Uri = format!("/me?{q}").parse().unwrap();
            assert_eq!(
                bearer_token(&headers(&[]), &uri),
                Err(AuthError::InvalidRequest(InvalidRequest::TokenInQuery)),
                "{q}"
            );
        }
        let uri: Uri = "/me?not_access_token_really=1&q=%41".parse().unwrap();
        assert_eq!(bearer_token(&headers(&[]), &uri), Ok(None));
    }
}
