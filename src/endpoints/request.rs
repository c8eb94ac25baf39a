//! Reading credentials from a token-endpoint request: cookie, JSON body or RFC 6749 form.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use super::cookie::{CookieConfig, CookieToken};
use super::response::EndpointError;

/// Default largest accepted request body.
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024;
/// Default time allowed to receive a request body: a client trickling it (slow loris)
/// holds a connection and a task no longer.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a token-endpoint request carried.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    pub(crate) refresh_token: Option<String>,
    /// The refresh token came from the cookie alone (a browser): it stays out of the body.
    pub(crate) from_cookie: bool,
    /// Cookies are on and the request shows it is the page's own (see
    /// `CookieConfig::check_same_origin`): only then may the answer set or clear the cookie,
    /// or a forged form naming a token in its body would swap the user into another
    /// session, or log them out.
    pub(crate) page: bool,
    pub(crate) access_token: Option<String>,
}

/// How a token endpoint reads requests.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) body: usize,
    pub(crate) timeout: Duration,
}

#[derive(serde::Deserialize)]
struct JsonBody {
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    grant_type: Option<String>,
}

/// `valid` tells a refresh token whose MAC verifies, to pick the user's cookie among
/// planted ones.
pub(crate) async fn read_credentials<B>(
    req: Request<B>,
    cookie: Option<&CookieConfig>,
    limits: Limits,
    grant_required: bool,
    valid: impl Fn(&str) -> bool,
) -> Result<Credentials, EndpointError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if req.method() != Method::POST {
        return Err(EndpointError::MethodNotAllowed);
    }
    let access_token = crate::auth::bearer_token(req.headers(), req.uri())
        .map_err(|_| EndpointError::InvalidRequest("malformed Authorization header"))?
        .map(str::to_owned);
    let (from_cookie, same_origin) = match cookie {
        Some(c) => (c.read(req.headers(), valid), c.check_same_origin(req.headers())),
        None => (CookieToken::None, Ok(())),
    };
    let page = cookie.is_some() && same_origin.is_ok();
    let limit = limits.body;

    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(EndpointError::PayloadTooLarge);
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());

    // Never buffer more than `limit`, whatever Content-Length claimed, nor wait for it longer
    // than the timeout.
    let collect = Limited::new(req.into_body(), limit).collect();
    let Ok(collected) = tokio::time::timeout(limits.timeout, collect).await else {
        return Err(EndpointError::Timeout);
    };
    let body = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Err(
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    EndpointError::PayloadTooLarge
                } else {
                    EndpointError::InvalidRequest("unreadable request body")
                },
            )
        }
    };

    let from_body = if body.is_empty() {
        None
    } else {
        match content_type.as_deref() {
            Some("application/json") => json_token(&body)?,
            Some("application/x-www-form-urlencoded") => form_token(&body, grant_required)?,
            _ => return Err(EndpointError::UnsupportedMediaType),
        }
    };
    // A credential in the body or (for a logout) the Authorization header stands on its own:
    // the cookies it came with may add the refresh token, never refuse the request (a
    // sibling subdomain can plant cookies).
    let other_credential = !grant_required && access_token.is_some();
    let (refresh_token, from_cookie) = match (from_body, from_cookie) {
        (Some(t), _) => (Some(t), false),
        (None, CookieToken::One(t)) if !other_credential || same_origin.is_ok() => (Some(t), true),
        (None, CookieToken::Ambiguous) if !other_credential => {
            // Several valid cookies: which one is the user's cannot be told.
            return Err(EndpointError::InvalidRequest(
                "the refresh token cookie was sent twice",
            ));
        }
        (None, _) => (None, false),
    };
    // A request that relies on the cookie must be the page's own (cross-site forms and
    // sibling subdomains are refused); one that names the token in its body cannot be forged.
    if from_cookie {
        same_origin?;
    }
    Ok(Credentials {
        refresh_token,
        from_cookie,
        page,
        access_token,
    })
}

fn check_grant_type(grant_type: Option<&str>) -> Result<(), EndpointError> {
    match grant_type {
        None | Some("refresh_token") => Ok(()),
        Some(_) => Err(EndpointError::UnsupportedGrantType),
    }
}

fn json_token(body: &Bytes) -> Result<Option<String>, EndpointError> {
    let parsed: JsonBody = serde_json::from_slice(body)
        .map_err(|_| EndpointError::InvalidRequest("body is not the expected JSON object"))?;
    check_grant_type(parsed.grant_type.as_deref())?;
    Ok(parsed.refresh_token.filter(|t| !t.is_empty()))
}

/// `grant_required`: a refresh form names its grant type (RFC 6749 §6); a logout form has
/// no grant, so there it is optional.
fn form_token(body: &Bytes, grant_required: bool) -> Result<Option<String>, EndpointError> {
    let mut grant_type = None;
    let mut token = None;
    for (k, v) in form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut grant_type,
            "refresh_token" => &mut token,
            _ => continue,
        };
        // RFC 6749 §3.2: parameters must not be included more than once.
        if slot.replace(v.into_owned()).is_some() {
            return Err(EndpointError::InvalidRequest("repeated parameter"));
        }
    }
    match grant_type.as_deref() {
        None if grant_required => return Err(EndpointError::InvalidRequest("missing grant_type")),
        other => check_grant_type(other)?,
    }
    Ok(token.filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_forms_name_their_grant_and_logout_forms_need_not() {
        let bare = Bytes::from_static(b"refresh_token=abc");
        assert!(matches!(
            form_token(&bare, true),
            Err(EndpointError::InvalidRequest("missing grant_type"))
        ));
        assert_eq!(form_token(&bare, false).unwrap().as_deref(), Some("abc"));
        let granted = Bytes::from_static(b"grant_type=refresh_token&refresh_token=abc");
        assert_eq!(form_token(&granted, true).unwrap().as_deref(), Some("abc"));
        let other = Bytes::from_static(b"grant_type=password&refresh_token=abc");
        assert!(matches!(
            form_token(&other, false),
            Err(EndpointError::UnsupportedGrantType)
        ));
        let twice = Bytes::from_static(b"grant_type=refresh_token&refresh_token=a&refresh_token=b");
        assert!(matches!(
            form_token(&twice, true),
            Err(EndpointError::InvalidRequest(_))
        ));
    }
}
