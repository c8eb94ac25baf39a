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
use super::layer::Settings;
use crate::claims::{Claims, Subject};
use crate::error::{AuthError, InvalidToken, StoreError};
use crate::store::{TokenRef, TokenStatus};

/// The middleware built by [`JwtAuthLayer`](crate::JwtAuthLayer).
pub struct JwtAuth<S, C> {
    inner: S,
    settings: Arc<Settings>,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C> JwtAuth<S, C> {
    pub(crate) fn new(inner: S, settings: Arc<Settings>) -> Self {
        JwtAuth {
            inner,
            settings,
            _claims: PhantomData,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the middleware, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C> Clone for JwtAuth<S, C> {
    fn clone(&self) -> Self {
        JwtAuth {
            inner: self.inner.clone(),
            settings: self.settings.clone(),
            _claims: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for JwtAuth<S, C> {
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

fn token_ref<C>(claims: &Claims<C>) -> TokenRef<'_> {
    TokenRef {
        sub: &claims.sub,
        sid: &claims.sid,
        jti: &claims.jti,
        iat: claims.iat,
    }
}

impl<S, C, ReqB, ResB> Service<Request<ReqB>> for JwtAuth<S, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    C: DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = Response<AuthBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let settings = &self.settings;
        // 1. The bearer token (RFC 6750 §2.1 only).
        let token = match bearer_token(req.headers(), req.uri()) {
            Ok(Some(token)) => token,
            Ok(None) if settings.optional => return ResponseFuture::inner(self.inner.call(req)),
            Ok(None) => return self.reject(AuthError::MissingToken, &req),
            Err(e) => return self.reject(e, &req),
        };
        // 2. Every verification rule, before any store access.
        let claims: Claims<C> = match settings.validation.verify(token, crate::clock::now_secs()) {
            Ok(claims) => claims,
            Err(e) => return self.reject(e.into(), &req),
        };
        // 3. Revocation: answered at once when the store can, else asked below.
        if let Some(status) = settings.revocations.check_local(token_ref(&claims)) {
            if let Err(e) = status_result(status) {
                return self.reject(e, &req);
            }
            insert(&mut req, claims);
            return ResponseFuture::inner(self.inner.call(req));
        }
        let check = check_future(settings, &claims);
        insert(&mut req, claims);
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::checking(check, req, inner, self.settings.clone())
    }
}

/// The verified claims, and the subject for code that does not know their type.
fn insert<ReqB, C: Clone + Send + Sync + 'static>(req: &mut Request<ReqB>, claims: Claims<C>) {
    req.extensions_mut().insert(Subject::of(&claims));
    req.extensions_mut().insert(claims);
}

impl<S, C> JwtAuth<S, C> {
    fn reject<ReqB>(&self, error: AuthError, req: &Request<ReqB>) -> ResponseFuture<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        tracing::debug!(error = %error, "request rejected");
        ResponseFuture::rejected(self.settings.rejection.get().reject(error, req.headers()))
    }
}

fn check_future<C>(settings: &Settings, claims: &Claims<C>) -> CheckFuture {
    let store = settings.revocations.shared();
    let timeout = settings.timeout;
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
            Err(_) => Err(StoreError::timeout("revocation check")),
        }
    })
}
