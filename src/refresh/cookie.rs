//! The refresh-token cookie: HttpOnly, Secure, SameSite=Strict, scoped to the auth routes.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

/// Settings of the refresh-token cookie.
#[derive(Clone, Debug)]
pub struct CookieConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "refresh_token".into(),
            path: "/auth".into(),
            domain: None,
        }
    }
}

impl CookieConfig {
    /// Cookie name (default `refresh_token`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Cookie path: the routes that read it (default `/auth`), so no other route ever
    /// receives the refresh token.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Cookie domain (default: host-only).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    fn build(&self, value: String, max_age: Duration) -> Cookie<'static> {
        let mut c = Cookie::build((self.name.clone(), value))
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .path(self.path.clone())
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .build();
        if let Some(d) = &self.domain {
            c.set_domain(d.clone());
        }
        c
    }

    /// `Set-Cookie` carrying `token`, kept for `max_age`.
    pub(crate) fn set(&self, token: &str, max_age: Duration) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.build(token.to_owned(), max_age).to_string()).ok()
    }

    /// `Set-Cookie` that deletes the cookie.
    pub(crate) fn clear(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.build(String::new(), Duration::ZERO).to_string()).ok()
    }

    /// The cookie's value in a request, if any (the first one: browsers send the most
    /// specific path first).
    pub(crate) fn read(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == self.name)
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty())
    }
}
