//! [`RefreshService`]: the token endpoints (refresh, logout, logout everywhere) as tower
//! services any stack can mount.

mod cookie;
mod request;
mod response;

use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

pub use self::cookie::{CookieConfig, DEFAULT_CSRF_HEADER, SECURE_PREFIX};
use self::request::{read_credentials, Limits};
pub use self::request::{DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT};
use self::response::{error_response, ok_response, token_response, EndpointError};
use crate::clock::now_ms;
use crate::session::{ClaimsProvider, Sessions, TokenPair, TokenResponse};
use crate::store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Refresh,
    Logout,
    LogoutAll,
}

/// A token endpoint: `POST` refresh, logout or logout-all. Build it from [`Sessions`]:
/// [`Sessions::refresh_service`], [`Sessions::logout_service`],
/// [`Sessions::logout_all_service`]. Mount it with axum's `route_service`, beside a tonic
/// server, or under plain hyper.
///
/// Refresh reads the token from the `refresh_token` cookie, a JSON body
/// `{"refresh_token": …}`, or an RFC 6749 form (`grant_type=refresh_token`). Answers:
/// 200 token response (`Cache-Control: no-store`, refreshed cookie); 400 `invalid_grant` /
/// `invalid_request` / `unsupported_grant_type`; 403 a cookie-authenticated request that
/// is not the page's own (see [`CookieConfig`]); 405 not POST; 408 body too slow; 413 body
/// over the limit; 415 other content types; 503 store down. Cookie clients get no
/// `refresh_token` in the body: it stays in the `HttpOnly` cookie.
pub struct RefreshService<St, P> {
    sessions: Sessions<St, P>,
    action: Action,
    limits: Limits,
}

impl<St, P> Clone for RefreshService<St, P> {
    fn clone(&self) -> Self {
        RefreshService {
            sessions: self.sessions.clone(),
            action: self.action,
            limits: self.limits,
        }
    }
}

impl<St, P> fmt::Debug for RefreshService<St, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshService")
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl<St: Store, P: ClaimsProvider> Sessions<St, P> {
    fn service(&self, action: Action) -> RefreshService<St, P> {
        RefreshService {
            sessions: self.clone(),
            action,
            limits: Limits {
                body: DEFAULT_BODY_LIMIT,
                timeout: DEFAULT_BODY_TIMEOUT,
            },
        }
    }

    /// `POST` refresh: rotates the presented refresh token.
    pub fn refresh_service(&self) -> RefreshService<St, P> {
        self.service(Action::Refresh)
    }

    /// `POST` logout: revokes the session of the presented refresh token (cookie or body)
    /// and/or of the `Authorization: Bearer` access token, whose `jti` is denylisted.
    pub fn logout_service(&self) -> RefreshService<St, P> {
        self.service(Action::Logout)
    }

    /// `POST` logout everywhere: requires a valid `Authorization: Bearer` access token;
    /// ends every session of its user and every access token issued before now.
    pub fn logout_all_service(&self) -> RefreshService<St, P> {
        self.service(Action::LogoutAll)
    }

    /// Starts a session and answers like a refresh: the token response JSON and, when
    /// cookies are on, the refresh cookie. For the application's login handler, after it
    /// checked the credentials; `request_headers` are the login request's.
    ///
    /// With cookies on, a browser (a request carrying `Origin` or `Sec-Fetch-Site`, which
    /// page script cannot remove) gets the refresh token in the cookie only, so script on
    /// the page can never read it; other clients get it in the body too.
    pub async fn login_response(
        &self,
        sub: &str,
        request_headers: &http::HeaderMap,
    ) -> Response<Full<Bytes>> {
        let browser = ["origin", "sec-fetch-site"]
            .iter()
            .any(|h| request_headers.contains_key(*h));
        match self.login(sub).await {
            Ok(pair) => self.pair_response(&pair, browser),
            Err(e) => error_response(&e.into(), None),
        }
    }

    /// The token response; `cookie_client`: the client keeps its refresh token in the cookie,
    /// so the body leaves it out (unless configured otherwise).
    fn pair_response(&self, pair: &TokenPair, cookie_client: bool) -> Response<Full<Bytes>> {
        let cookie = self.inner.cookie.as_ref();
        let set_cookie = cookie.and_then(|c| {
            c.set(
                &pair.refresh_token,
                Duration::from_millis(pair.session_end_ms.saturating_sub(now_ms())),
            )
        });
        let mut body = TokenResponse::from(pair);
        if cookie.is_some_and(|c| cookie_client && !c.body_for_cookie_clients()) {
            body.refresh_token = None;
        }
        token_response(&body, set_cookie)
    }

    fn clear_cookie(&self) -> Option<http::HeaderValue> {
        self.inner.cookie.as_ref().and_then(CookieConfig::clear)
    }
}

impl<St, P> RefreshService<St, P> {
    /// Largest request body accepted (default 4 KiB); larger gets 413 without buffering.
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.limits.body = limit;
        self
    }

    /// Time allowed to receive the request body (default 10 s); past it, 408.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }
}

impl<St: Store, P: ClaimsProvider> RefreshService<St, P> {
    async fn handle<B>(self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let sessions = &self.sessions;
        let grant_required = self.action == Action::Refresh;
        let cookie = sessions.inner.cookie.as_ref();
        let creds = match read_credentials(req, cookie, self.limits, grant_required).await {
            Ok(c) => c,
            Err(e) => return error_response(&e, None),
        };
        match self.action {
            Action::Refresh => {
                let Some(token) = creds.refresh_token else {
                    return error_response(&EndpointError::InvalidRequest("missing refresh_token"), None);
                };
                match sessions.refresh(&token).await {
                    Ok(pair) => sessions.pair_response(&pair, creds.from_cookie),
                    Err(e) => {
                        let e = EndpointError::from(e);
                        // A dead refresh token in a cookie only causes more failures: drop it.
                        let clear = if e == EndpointError::InvalidGrant {
                            sessions.clear_cookie()
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
                        ok_response(serde_json::json!({"revoked": revoked}), sessions.clear_cookie())
                    }
                    Err(e) => error_response(&e.into(), None),
                }
            }
            Action::LogoutAll => {
                let Some(access) = creds.access_token else {
                    return error_response(
                        &EndpointError::Unauthorized(crate::AuthError::MissingToken),
                        None,
                    );
                };
                let result = match sessions.authenticate(&access).await {
                    Ok(claims) => sessions.logout_all(&claims.sub).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => ok_response(serde_json::json!({"revoked": true}), sessions.clear_cookie()),
                    Err(e) => error_response(&e.into(), None),
                }
            }
        }
    }
}

impl<St, P, B> Service<Request<B>> for RefreshService<St, P>
where
    St: Store,
    P: ClaimsProvider,
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
