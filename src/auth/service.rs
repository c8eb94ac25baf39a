//! [`JwtAuth`]: the middleware service.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::bearer::bearer_token;
use super::body::AuthBody;
use super::future::{CheckFuture, ResponseFuture};
use super::layer::Config;
use crate::claims::Claims;
use crate::error::{AuthError, InvalidToken, StoreError};
use crate::reject::Reject;
use crate::store::{Store, TokenRef, TokenStatus};

/// The middleware built by [`JwtAuthLayer`](crate::JwtAuthLayer).
pub struct JwtAuth<S, C, St, R> {
    inner: S,
    config: Arc<Config<St, R>>,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C, St, R> JwtAuth<S, C, St, R> {
    pub(crate) fn new(inner: S, config: Arc<Config<St, R>>) -> Self {
        JwtAuth {
            inner,
            config,
            _claims: PhantomData,
        }
    }
}

impl<S: Clone, C, St, R> Clone for JwtAuth<S, C, St, R> {
    fn clone(&self) -> Self {
        JwtAuth {
            inner: self.inner.clone(),
            config: self.config.clone(),
            _claims: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C, St, R> fmt::Debug for JwtAuth<S, C, St, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// What the revocation state means for the request.
pub(crate) fn status_result(status: TokenStatus) -> Result<(), AuthError> {
    match status {
        TokenStatus::Active => Ok(()),
        TokenStatus::Denied | TokenStatus::SessionRevoked | TokenStatus::UserLoggedOut => {
            Err(AuthError::InvalidToken(InvalidToken::Revoked))
        }
    }
}

impl<S, C, St, R, ReqB, ResB> Service<Request<ReqB>> for JwtAuth<S, C, St, R>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    C: DeserializeOwned + Clone + Send + Sync + 'static,
    St: Store,
    R: Reject,
{
    type Response = Response<AuthBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, St, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let config = &self.config;
        let token = match bearer_token(req.headers(), req.uri()) {
            Ok(Some(token)) => token,
            Ok(None) if config.optional => return ResponseFuture::inner(self.inner.call(req)),
            Ok(None) => return self.reject(AuthError::MissingToken, &req),
            Err(e) => return self.reject(e, &req),
        };
        let claims: Claims<C> = match config.validation.verify(token, crate::clock::now_secs()) {
            Ok(claims) => claims,
            Err(e) => return self.reject(e.into(), &req),
        };
        let token_ref = TokenRef {
            sub: &claims.sub,
            sid: &claims.sid,
            jti: &claims.jti,
            iat: claims.iat,
        };
        if let Some(status) = config.store.check_local(token_ref) {
            return match status_result(status) {
                Ok(()) => {
                    req.extensions_mut().insert(claims);
                    ResponseFuture::inner(self.inner.call(req))
                }
                Err(e) => self.reject(e, &req),
            };
        }

        let check = check_future(config, &claims);
        req.extensions_mut().insert(claims);
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::checking(check, req, inner, self.config.clone())
    }
}

impl<S, C, St, R> JwtAuth<S, C, St, R>
where
    R: Reject,
{
    fn reject<ReqB, F>(&self, error: AuthError, req: &Request<ReqB>) -> ResponseFuture<S, ReqB, St, R>
    where
        S: Service<Request<ReqB>, Future = F>,
    {
        tracing::debug!(error = %error, "request rejected");
        ResponseFuture::rejected(self.config.reject.reject(error, req.headers()))
    }
}

fn check_future<St: Store, R, C>(config: &Config<St, R>, claims: &Claims<C>) -> CheckFuture {
    let store = config.store.clone();
    let timeout = config.timeout;
    let (sub, sid, jti, iat) = (
        claims.sub.clone(),
        claims.sid.clone(),
        claims.jti.clone(),
        claims.iat,
    );
    Box::pin(async move {
        let check = store.check(TokenRef {
            sub: &sub,
            sid: &sid,
            jti: &jti,
            iat,
        });
        match tokio::time::timeout(timeout, check).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::new("revocation check timed out")),
        }
    })
}
