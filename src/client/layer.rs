//! [`AuthClientLayer`]: keeps any tower HTTP client (a `hyper_util` client, a tonic
//! `Channel`, …) signed in.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::manager::TokenManager;
use super::replay::ReplayBody;
use super::ClientError;

/// Attaches the [`TokenManager`]'s access token to every request, renewing it ahead of
/// expiry, and after a `401` whose challenge says `error="invalid_token"` (or a gRPC
/// `UNAUTHENTICATED`, status 16, in a trailers-only answer) refreshes once and sends the
/// request once more, when its body can be replayed ([`ReplayBody`]). Never loops: a second
/// refusal is returned as it is. A `403`, `insufficient_scope`, or any other answer passes
/// through untouched.
///
/// ```no_run
/// # async fn demo(tokens: tower_jwt_auth::TokenResponse) -> Result<(), Box<dyn std::error::Error>> {
/// use tower::ServiceBuilder;
/// use tower_jwt_auth::client::{AuthClientLayer, HttpRefresh, TokenManager};
///
/// let transport = HttpRefresh::new(
///     "http://127.0.0.1:3000/auth/refresh".parse()?,
///     "http://127.0.0.1:3000/auth/logout".parse()?,
/// );
/// let manager = TokenManager::new(transport, tokens)?;      // from the login answer
/// let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
///     .build_http::<http_body_util::Full<bytes::Bytes>>();
/// let client = ServiceBuilder::new().layer(AuthClientLayer::new(manager)).service(http);
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AuthClientLayer {
    manager: TokenManager,
}

impl AuthClientLayer {
    /// A layer attaching `manager`'s tokens.
    pub fn new(manager: TokenManager) -> Self {
        AuthClientLayer { manager }
    }
}

impl<S> Layer<S> for AuthClientLayer {
    type Service = AuthClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthClient {
            inner,
            manager: self.manager.clone(),
        }
    }
}

/// The client built by [`AuthClientLayer`].
#[derive(Clone, Debug)]
pub struct AuthClient<S> {
    inner: S,
    manager: TokenManager,
}

impl<S> AuthClient<S> {
    /// The inner client.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner client, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the client, returning the inner one.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The token manager.
    pub fn manager(&self) -> &TokenManager {
        &self.manager
    }
}

/// An [`AuthClient`] call failed: no token could be had ([`ClientError`]), or the inner
/// client failed.
#[derive(Debug)]
pub enum AuthClientError<E> {
    /// Signed out, or the refresh endpoint is unavailable.
    Auth(ClientError),
    /// The inner client's own error.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for AuthClientError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthClientError::Auth(e) => e.fmt(f),
            AuthClientError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for AuthClientError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthClientError::Auth(e) => Some(e),
            AuthClientError::Inner(e) => Some(e),
        }
    }
}

/// Whether the server refused the access token itself (so a new one may help).
pub(crate) fn refused_token<B>(response: &Response<B>) -> bool {
    if response.status() == StatusCode::UNAUTHORIZED {
        return response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("error=\"invalid_token\""));
    }
    // gRPC: a trailers-only UNAUTHENTICATED carries its status in the headers.
    response.headers().get("grpc-status").is_some_and(|s| s == "16")
}

fn bearer(token: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ClientError::Unavailable("the access token is not a valid header value".into()))
}

/// A copy of `req` to send again, if its body can be replayed.
fn replay<B: ReplayBody>(req: &Request<B>) -> Option<Request<B>> {
    let mut copy = Request::new(req.body().replay()?);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

impl<S, B, ResB> Service<Request<B>> for AuthClient<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    B: ReplayBody + Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = AuthClientError<S::Error>;
    // The call awaits the token manager before the inner client: an async block is the
    // readable form, and its box costs nothing next to a network round trip.
    type Future = BoxFuture<'static, Result<Response<ResB>, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(AuthClientError::Inner)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The ready client goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let manager = self.manager.clone();
        Box::pin(async move {
            let token: Arc<str> = manager.access_token().await.map_err(AuthClientError::Auth)?;
            req.headers_mut()
                .insert(AUTHORIZATION, bearer(&token).map_err(AuthClientError::Auth)?);
            let again = replay(&req);
            let response = inner.call(req).await.map_err(AuthClientError::Inner)?;
            let Some(mut again) = again.filter(|_| refused_token(&response)) else {
                return Ok(response);
            };
            // Once: a new token (one refresh for every call refused with the same token),
            // then the same request again; a second refusal is the answer.
            let token = manager
                .after_rejection(&token)
                .await
                .map_err(AuthClientError::Auth)?;
            again
                .headers_mut()
                .insert(AUTHORIZATION, bearer(&token).map_err(AuthClientError::Auth)?);
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(AuthClientError::Inner)?;
            inner.call(again).await.map_err(AuthClientError::Inner)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_invalid_token_and_grpc_16_ask_for_a_new_token() {
        let response = |status: u16, headers: &[(&str, &str)]| {
            let mut r = Response::builder().status(status);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.body(()).unwrap()
        };
        assert!(refused_token(&response(
            401,
            &[(
                "www-authenticate",
                "Bearer error=\"invalid_token\", error_description=\"token expired\""
            )]
        )));
        assert!(refused_token(&response(
            401,
            &[(
                "www-authenticate",
                "Bearer realm=\"api\", ERROR=\"INVALID_TOKEN\""
            )]
        )));
        assert!(refused_token(&response(200, &[("grpc-status", "16")])));
        for r in [
            response(401, &[("www-authenticate", "Bearer")]),
            response(
                401,
                &[("www-authenticate", "Bearer error=\"insufficient_scope\"")],
            ),
            response(403, &[("www-authenticate", "Bearer error=\"invalid_token\"")]),
            response(200, &[("grpc-status", "7")]),
            response(503, &[]),
        ] {
            assert!(!refused_token(&r), "{r:?}");
        }
    }
}
