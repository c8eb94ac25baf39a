//! Finding the bearer token in a request (RFC 6750 §2.1 only).

use http::header::AUTHORIZATION;
use http::{HeaderMap, Uri};

use crate::error::{AuthError, InvalidRequest};

/// The bearer token of a request: `Ok(None)` when none was sent.
pub(crate) fn bearer_token<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<Option<&'a str>, AuthError> {
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
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidRequest(InvalidRequest::MalformedAuthorizationHeader))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, …) carries no bearer credentials: challenge for one.
        return Ok(None);
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() || token.contains(' ') {
        return Err(AuthError::InvalidRequest(
            InvalidRequest::MalformedAuthorizationHeader,
        ));
    }
    Ok(Some(token))
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
