//! [`TokenEndpoints`]: the HTTP side of [`Sessions`]: refresh, logout and logout everywhere
//! as tower services any stack can mount, the login response, and the refresh cookie.

mod cookie;
mod request;
mod response;

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

pub use self::cookie::{CookieConfig, DEFAULT_CSRF_HEADER, HOST_PREFIX, SECURE_PREFIX};
use self::request::{read_credentials, Limits};
pub use self::request::{DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT};
pub use self::response::TokenResponse;
use self::response::{error_response, ok_response, token_response, EndpointError};
use crate::auth::Anonymous;
use crate::claims::Subject;
use crate::clock::now_ms;
use crate::session::{Sessions, TokenPair};

/// The token endpoints of a [`Sessions`], with their HTTP settings: the refresh cookie and
/// how request bodies are read. Cheap to clone.
///
/// ```
/// # use tower_jwt_auth::{Issuer, MemoryStore, RefreshSecrets, Sessions, SigningKey};
/// # fn demo(sessions: Sessions) {
/// let endpoints = sessions.endpoints();
/// let app: axum::Router = axum::Router::new()
///     .route_service("/auth/logout-all", endpoints.logout_all())
///     .route_layer(sessions.auth_layer())          // logout-all sits behind the layer
///     .route_service("/auth/refresh", endpoints.refresh())
///     .route_service("/auth/logout", endpoints.logout());
/// # let _ = app; }
/// ```
#[derive(Clone)]
pub struct TokenEndpoints {
    inner: Arc<Settings>,
}

#[derive(Clone)]
struct Settings {
    sessions: Sessions,
    cookie: Option<CookieConfig>,
    limits: Limits,
}

impl fmt::Debug for TokenEndpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoints")
            .field("cookie", &self.inner.cookie)
            .field("body_limit", &self.inner.limits.body)
            .field("body_timeout", &self.inner.limits.timeout)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// The token endpoints, with the refresh cookie on (`Path=/auth`), a 4 KiB body limit and
    /// a 10 s body timeout.
    pub fn endpoints(&self) -> TokenEndpoints {
        TokenEndpoints {
            inner: Arc::new(Settings {
                sessions: self.clone(),
                cookie: Some(CookieConfig::default()),
                limits: Limits {
                    body: DEFAULT_BODY_LIMIT,
                    timeout: DEFAULT_BODY_TIMEOUT,
                },
            }),
        }
    }
}

impl TokenEndpoints {
    fn map(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// The refresh cookie's settings; `None` turns cookies off (JSON bodies only).
    pub fn cookie(self, cookie: Option<CookieConfig>) -> Self {
        self.map(|s| s.cookie = cookie)
    }

    /// Largest request body accepted (default 4 KiB); larger gets 413 without buffering.
    pub fn body_limit(self, limit: usize) -> Self {
        self.map(|s| s.limits.body = limit)
    }

    /// Time allowed to receive a request body (default 10 s); past it, 408.
    pub fn body_timeout(self, timeout: Duration) -> Self {
        self.map(|s| s.limits.timeout = timeout)
    }

    /// The sessions behind these endpoints.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    fn endpoint(&self, action: Action) -> TokenEndpoint {
        TokenEndpoint {
            endpoints: self.clone(),
            action,
        }
    }

    /// `POST` refresh: rotates the refresh token from the cookie, a JSON body
    /// `{"refresh_token": …}` or an RFC 6749 form (`grant_type=refresh_token`).
    pub fn refresh(&self) -> TokenEndpoint {
        self.endpoint(Action::Refresh)
    }

    /// `POST` logout: revokes the session of the presented refresh token (cookie or body)
    /// and/or of the `Authorization: Bearer` access token. Invalid credentials are ignored
    /// (RFC 7009).
    pub fn logout(&self) -> TokenEndpoint {
        self.endpoint(Action::Logout)
    }

    /// `POST` logout everywhere: ends every session of the requesting user and every access
    /// token issued before now. Mount it **behind the [`JwtAuthLayer`](crate::JwtAuthLayer)**:
    /// it reads the verified [`Subject`] the layer leaves in the request, so the layer's
    /// rules, realm, rejection and `Retry-After` apply. Without the layer it answers 500.
    pub fn logout_all(&self) -> TokenEndpoint {
        self.endpoint(Action::LogoutAll)
    }

    /// Starts a session and answers like a refresh: the token response JSON and, when
    /// cookies are on, the refresh cookie. For the application's login handler, after it
    /// checked the credentials; `request_headers` are the login request's.
    ///
    /// With cookies on, the application's page (a request showing it is the page's own, as
    /// a cookie refresh must, see [`CookieConfig`]) gets the refresh token in the cookie
    /// only, so script on the page can never read it. Native clients (no `Origin` or
    /// `Sec-Fetch-Site`) get it in the body, and no cookie. Another browser request (a forged
    /// cross-site or sibling-subdomain login form, or a page that does not send the header)
    /// is refused with 403 before any session starts: it could neither get the cookie nor
    /// keep the token from script.
    pub async fn login_response(&self, sub: &str, request_headers: &HeaderMap) -> Response<Full<Bytes>> {
        let cookie = self.inner.cookie.as_ref();
        let same_origin = cookie.map(|c| c.check_same_origin(request_headers));
        let browser = ["origin", "sec-fetch-site"]
            .iter()
            .any(|h| request_headers.contains_key(*h));
        let page =
            match same_origin {
                Some(Ok(())) => true,
                Some(Err(_)) if browser => return error_response(
                    &EndpointError::Forbidden(
                        "a browser login must come from the application's own page (send X-Requested-With)",
                    ),
                    None,
                ),
                _ => false,
            };
        match self.inner.sessions.login(sub).await {
            Ok(pair) => self.pair_response(&pair, page, page),
            Err(e) => error_response(&e.into(), None),
        }
    }

    /// The token response; `cookie_client`: the client keeps its refresh token in the cookie,
    /// so the body leaves it out (unless configured otherwise); `page`: the request is the
    /// page's own, so the cookie is set (a forged form's answer sets none).
    fn pair_response(&self, pair: &TokenPair, cookie_client: bool, page: bool) -> Response<Full<Bytes>> {
        let cookie = self.inner.cookie.as_ref().filter(|_| page);
        let set_cookie = cookie.and_then(|c| {
            c.set(
                &pair.refresh_token,
                Duration::from_millis(pair.session_end_ms.saturating_sub(now_ms())),
            )
        });
        let in_body = !cookie.is_some_and(|c| cookie_client && !c.body_for_cookie_clients());
        token_response(&TokenResponse::new(pair, in_body), set_cookie)
    }

    fn clear_cookie(&self) -> Option<http::HeaderValue> {
        self.inner.cookie.as_ref().and_then(CookieConfig::clear)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Refresh,
    Logout,
    LogoutAll,
}

/// One token endpoint (`POST` only), from [`TokenEndpoints`]: mount it with axum's
/// `route_service`, beside a tonic server, or under plain hyper.
///
/// Answers: 200 (`Cache-Control: no-store`; a token response, with a refreshed cookie for
/// the page's own requests, or `{"revoked": …}`); 400 `invalid_grant` / `invalid_request` / `unsupported_grant_type`;
/// 403 a cookie-authenticated request that is not the page's own (see [`CookieConfig`]);
/// 405 not POST; 408 body too slow; 413 body over the limit; 415 other content types;
/// 503 store down. Cookie clients get no `refresh_token` in the body: it stays in the
/// `HttpOnly` cookie.
#[derive(Clone)]
pub struct TokenEndpoint {
    endpoints: TokenEndpoints,
    action: Action,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl TokenEndpoint {
    async fn handle<B>(self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let endpoints = &self.endpoints;
        let sessions = &endpoints.inner.sessions;
        let subject = req.extensions().get::<Subject>().cloned();
        if subject.is_none() && self.action == Action::LogoutAll {
            // Behind an optional layer, a request without a token: the layer's own 401.
            if let Some(anonymous) = req.extensions().get::<Anonymous>() {
                return anonymous.reject(req.headers());
            }
        }
        let grant_required = self.action == Action::Refresh;
        let cookie = endpoints.inner.cookie.as_ref();
        let valid = |token: &str| sessions.is_refresh_token(token);
        let creds = match read_credentials(req, cookie, endpoints.inner.limits, grant_required, valid).await {
            Ok(c) => c,
            Err(e) => return error_response(&e, None),
        };
        match self.action {
            Action::Refresh => {
                let Some(token) = creds.refresh_token else {
                    return error_response(&EndpointError::InvalidRequest("missing refresh_token"), None);
                };
                match sessions.refresh(&token).await {
                    Ok(pair) => endpoints.pair_response(&pair, creds.from_cookie, creds.page),
                    Err(e) => {
                        let e = EndpointError::from(e);
                        // A dead refresh token in a cookie only causes more failures: drop it
                        // (only it: a dead token in the body says nothing of the cookie).
                        let clear = if e == EndpointError::InvalidGrant && creds.from_cookie {
                            endpoints.clear_cookie()
                        } else {
                            None
                        };
                        error_response(&e, clear)
                    }
                }
            }
            Action::Logout => {
                if creds.refresh_token.is_none() && creds.access_token.is_none() {
                    return error_response(&EndpointError::InvalidRequest("no credentials to log out"), None);
                }
                match sessions
                    .logout(creds.refresh_token.as_deref(), creds.access_token.as_deref())
                    .await
                {
                    Ok(revoked) => {
                        let clear = if creds.page {
                            endpoints.clear_cookie()
                        } else {
                            None
                        };
                        ok_response(revoked, clear)
                    }
                    Err(e) => error_response(&e.into(), None),
                }
            }
            Action::LogoutAll => {
                let Some(subject) = subject else {
                    tracing::error!(
                        "the logout-all endpoint is not behind JwtAuthLayer: it cannot know who asks"
                    );
                    return error_response(&EndpointError::NotBehindLayer, None);
                };
                match sessions.logout_all(&subject.sub).await {
                    Ok(()) => ok_response(true, endpoints.clear_cookie()),
                    Err(e) => error_response(&e.into(), None),
                }
            }
        }
    }
}

impl<B> Service<Request<B>> for TokenEndpoint
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}
