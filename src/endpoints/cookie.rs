//! The refresh-token cookie: HttpOnly, Secure, SameSite=Strict, scoped to the auth routes,
//! and the checks a request authenticated by it must pass.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::header::{COOKIE, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::response::EndpointError;

/// The `__Secure-` cookie-name prefix: browsers accept such a cookie only with `Secure` from
/// an HTTPS origin.
pub const SECURE_PREFIX: &str = "__Secure-";

/// The `__Host-` cookie-name prefix: browsers accept such a cookie only with `Secure`,
/// `Path=/` and no `Domain`, from this very host, so no sibling subdomain can plant one.
pub const HOST_PREFIX: &str = "__Host-";

/// The header a browser page sends to show a cookie-authenticated request is its own
/// (default of [`CookieConfig::csrf_header`]).
pub const DEFAULT_CSRF_HEADER: &str = "x-requested-with";

/// The refresh-token cookie of a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CookieToken {
    /// None sent (or none of several is valid).
    None,
    /// One, or the only valid one of several.
    One(String),
    /// Several whose MAC verifies: which one is the user's cannot be told.
    Ambiguous,
}

/// Settings of the refresh-token cookie.
///
/// **Cross-site requests.** `SameSite=Strict` keeps other *sites* from sending the cookie,
/// but every subdomain of the site is the same site. A request that relies on the cookie is
/// therefore served only when it shows it comes from the application's own page: a custom
/// header (default `X-Requested-With`, any value; cross-origin pages cannot send one without
/// a CORS preflight), `Sec-Fetch-Site: same-origin`, or an `Origin` listed with
/// [`CookieConfig::allowed_origin`]. Others get 403. Only such requests have the cookie
/// set or cleared: a refresh or logout naming its token in the body from elsewhere (a
/// forged form) is answered without `Set-Cookie`, so it can neither sign the user into the
/// attacker's session nor delete the user's cookie; a login from a browser that is not the
/// page is refused (403). (Logout-everywhere, which needs the `Authorization` header no
/// form can send, always clears it.)
///
/// **Cookie tossing.** A sibling subdomain can plant a second cookie of the same name
/// (`Domain=` the parent, a more specific `Path`). Of several, the one whose MAC verifies is
/// used (a planted junk value cannot lock the user out); when more than one does, a refresh
/// relying on them is refused as `invalid_request` and nothing is cleared, so a planted
/// token of the attacker's own session can neither swap the user into it nor make the
/// server delete the real one; a refresh token in the body wins over the cookies. A request
/// whose credential is in its body or `Authorization` header (logout, logout-everywhere) is
/// never refused for the cookies it also carries. **The limit:** a user with no cookie of
/// their own (signed out, or it expired) has only the planted one, and the page's next
/// refresh signs them into the attacker's session. Where subdomains are not all trusted,
/// use [`CookieConfig::host_prefix`]: browsers refuse a `__Host-` cookie with a `Domain`,
/// so no sibling can plant one (the cost: `Path=/`, so the refresh token travels with every
/// request to the host). [`CookieConfig::secure_prefix`] names the cookie `__Secure-…`,
/// which browsers only accept over HTTPS with `Secure`, so plain-HTTP pages of the site
/// cannot plant one, and keeps the cookie on the auth routes.
///
/// **The token stays in the cookie.** Answers to cookie clients leave `refresh_token` out of
/// the JSON body, so script on the page (an XSS) cannot read it:
/// [`CookieConfig::refresh_token_in_body`] keeps it there.
#[derive(Clone, Debug)]
pub struct CookieConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) csrf_header: HeaderName,
    pub(crate) allowed_origins: Vec<HeaderValue>,
    pub(crate) token_in_body: bool,
    pub(crate) host_only: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "refresh_token".into(),
            path: "/auth".into(),
            domain: None,
            csrf_header: HeaderName::from_static(DEFAULT_CSRF_HEADER),
            allowed_origins: Vec::new(),
            token_in_body: false,
            host_only: false,
        }
    }
}

impl CookieConfig {
    /// Cookie name (default `refresh_token`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Prefixes the name with `__Secure-` (see the type's docs on cookie tossing).
    pub fn secure_prefix(mut self) -> Self {
        if !self.name.starts_with(SECURE_PREFIX) && !self.host_only {
            self.name = format!("{SECURE_PREFIX}{}", self.name);
        }
        self
    }

    /// Prefixes the name with `__Host-`, which makes the cookie `Path=/` with no `Domain`
    /// (whatever [`path`](Self::path) and [`domain`](Self::domain) say): browsers accept it
    /// only from this very host, so no sibling subdomain can plant one (see the type's docs
    /// on cookie tossing). The cost: the refresh token travels with every request to this
    /// host (still `HttpOnly`, `Secure`, `SameSite=Strict`), not only to the auth routes.
    /// For sites whose subdomains are not all trusted.
    pub fn host_prefix(mut self) -> Self {
        let base = self.name.strip_prefix(SECURE_PREFIX).unwrap_or(&self.name);
        if !base.starts_with(HOST_PREFIX) {
            self.name = format!("{HOST_PREFIX}{base}");
        }
        self.host_only = true;
        self
    }

    /// Cookie path: the routes that read it (default `/auth`), so no other route ever
    /// receives the refresh token.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Cookie domain (default: host-only, which is safer: no sibling host receives it).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The custom header that marks a cookie-authenticated request as the page's own
    /// (default `X-Requested-With`; any non-empty value).
    pub fn csrf_header(mut self, name: HeaderName) -> Self {
        self.csrf_header = name;
        self
    }

    /// Also serves cookie-authenticated requests whose `Origin` is exactly `origin`
    /// (e.g. `https://app.example.com`). An origin that is not a valid header value is
    /// ignored.
    pub fn allowed_origin(mut self, origin: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(origin.trim_end_matches('/')) {
            self.allowed_origins.push(v);
        }
        self
    }

    /// Keeps `refresh_token` in the JSON body for cookie clients too (default off). Native
    /// clients that send the token in the body always get it back in the body.
    pub fn refresh_token_in_body(mut self, keep: bool) -> Self {
        self.token_in_body = keep;
        self
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.name
    }

    fn build(&self, value: String, max_age: Duration) -> Cookie<'static> {
        let path = if self.host_only { "/" } else { &self.path };
        let mut c = Cookie::build((self.name.clone(), value))
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .path(path.to_owned())
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .build();
        if let Some(d) = self.domain.as_ref().filter(|_| !self.host_only) {
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

    /// The refresh token among the request's cookies of this name. Of several (one planted:
    /// cookie tossing), the only one that is `valid` (its MAC verifies), else ambiguous.
    pub(crate) fn read(&self, headers: &HeaderMap, valid: impl Fn(&str) -> bool) -> CookieToken {
        let mut values = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|c| c.name() == self.name && !c.value().is_empty())
            .map(|c| c.value().to_owned());
        let Some(first) = values.next() else {
            return CookieToken::None;
        };
        let Some(second) = values.next() else {
            return CookieToken::One(first);
        };
        // Every one (a MAC check is cheap, and the headers are bounded by the server): planted
        // ones sent first cannot hide the user's.
        let mut valid_ones = [first, second].into_iter().chain(values).filter(|v| valid(v));
        match (valid_ones.next(), valid_ones.next()) {
            (Some(only), None) => CookieToken::One(only),
            (None, _) => CookieToken::None,
            (Some(_), Some(_)) => CookieToken::Ambiguous,
        }
    }

    /// Whether a request relying on the cookie shows it comes from the application's own
    /// page (see the type's docs); 403 otherwise.
    pub(crate) fn check_same_origin(&self, headers: &HeaderMap) -> Result<(), EndpointError> {
        let custom = headers.get(&self.csrf_header).is_some_and(|v| !v.is_empty());
        let same_origin = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"same-origin"));
        let listed = headers
            .get(ORIGIN)
            .is_some_and(|o| self.allowed_origins.iter().any(|a| a == o));
        if custom || same_origin || listed {
            Ok(())
        } else {
            Err(EndpointError::Forbidden(
                "a request authenticated by the refresh cookie must come from the application's \
                 own page (send X-Requested-With)",
            ))
        }
    }

    /// Whether answers to a cookie client carry the refresh token in the body.
    pub(crate) fn body_for_cookie_clients(&self) -> bool {
        self.token_in_body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn of_two_cookies_of_the_name_only_a_valid_one_is_used() {
        let c = CookieConfig::default();
        let valid = |v: &str| v.starts_with("ok");
        let one = headers(&[("cookie", "theme=dark; refresh_token=abc")]);
        assert_eq!(
            c.read(&one, valid),
            CookieToken::One("abc".into()),
            "one is not checked"
        );
        for planted in [
            headers(&[("cookie", "refresh_token=junk; refresh_token=ok1")]),
            headers(&[("cookie", "refresh_token=junk"), ("cookie", "refresh_token=ok1")]),
            headers(&[("cookie", "refresh_token=ok1; refresh_token=junk; refresh_token=")]),
        ] {
            assert_eq!(c.read(&planted, valid), CookieToken::One("ok1".into()));
        }
        let two_valid = headers(&[("cookie", "refresh_token=ok2; refresh_token=ok1")]);
        assert_eq!(c.read(&two_valid, valid), CookieToken::Ambiguous);
        let junk = headers(&[("cookie", "refresh_token=a; refresh_token=b")]);
        assert_eq!(c.read(&junk, valid), CookieToken::None);
        // However many are planted before it.
        let many = headers(&[(
            "cookie",
            "refresh_token=a; refresh_token=b; refresh_token=c; refresh_token=d; refresh_token=ok",
        )]);
        assert_eq!(c.read(&many, valid), CookieToken::One("ok".into()));
        assert_eq!(
            c.read(&headers(&[("cookie", "refresh_token=")]), valid),
            CookieToken::None
        );
    }

    #[test]
    fn the_secure_prefix_is_added_once() {
        let c = CookieConfig::default().secure_prefix().secure_prefix();
        assert_eq!(c.cookie_name(), "__Secure-refresh_token");
        let set = c.set("t", Duration::from_secs(60)).unwrap();
        assert!(
            set.to_str().unwrap().starts_with("__Secure-refresh_token=t;"),
            "{set:?}"
        );
        let h = headers(&[("cookie", "refresh_token=x; __Secure-refresh_token=t")]);
        assert_eq!(c.read(&h, |_| false), CookieToken::One("t".into()));
    }

    #[test]
    fn the_host_prefix_pins_the_cookie_to_this_host() {
        let c = CookieConfig::default()
            .secure_prefix()
            .host_prefix()
            .domain("example.com")
            .path("/auth")
            .host_prefix()
            .secure_prefix();
        assert_eq!(c.cookie_name(), "__Host-refresh_token");
        for set in [c.set("t", Duration::from_secs(60)), c.clear()] {
            let set = set.unwrap();
            let set = set.to_str().unwrap();
            assert!(set.starts_with("__Host-refresh_token="), "{set}");
            assert!(set.contains("Path=/;") || set.ends_with("Path=/"), "{set}");
            assert!(set.contains("Secure"), "{set}");
            assert!(!set.contains("Domain"), "{set}");
        }
        // Only the host's own cookie is read; one a sibling planted cannot carry the prefix.
        let h = headers(&[("cookie", "refresh_token=x; __Host-refresh_token=t")]);
        assert_eq!(c.read(&h, |t| t == "t"), CookieToken::One("t".into()));
    }

    #[test]
    fn cookie_requests_must_come_from_the_page() {
        let c = CookieConfig::default().allowed_origin("https://app.example.com/");
        for ok in [
            headers(&[("x-requested-with", "fetch")]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("origin", "https://app.example.com")]),
        ] {
            assert!(c.check_same_origin(&ok).is_ok(), "{ok:?}");
        }
        for refused in [
            headers(&[]),
            headers(&[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://evil.example.com"),
            ]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("x-requested-with", "")]),
        ] {
            assert!(
                matches!(c.check_same_origin(&refused), Err(EndpointError::Forbidden(_))),
                "{refused:?}"
            );
        }
    }
}
