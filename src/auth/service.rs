//! [`JwtAuth`]: the middleware service.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::anonymous::Anonymous;
use super::bearer::{bearer_bytes, token_text};
use super::body::AuthBody;
use super::cache::{TokenCache, Verified};
use super::future::{CheckFuture, ResponseFuture};
use super::layer::Settings;
use crate::claims::Claims;
use crate::error::{AuthError, InvalidToken, StoreError};
use crate::store::{TokenRef, TokenStatus};

/// The middleware built by [`JwtAuthLayer`](crate::JwtAuthLayer).
pub struct JwtAuth<S, C> {
    inner: S,
    settings: Arc<Settings>,
    cache: Arc<TokenCache<C>>,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C> JwtAuth<S, C> {
    pub(crate) fn new(inner: S, settings: Arc<Settings>, cache: Arc<TokenCache<C>>) -> Self {
        JwtAuth {
            inner,
            settings,
            cache,
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
            cache: self.cache.clone(),
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
        let token = match bearer_bytes(req.headers(), req.uri()) {
            Ok(Some(token)) => token,
            Ok(None) if settings.optional => {
                req.extensions_mut().insert(Anonymous::new(settings.clone()));
                return ResponseFuture::inner(self.inner.call(req));
            }
            Ok(None) => return self.reject(AuthError::MissingToken, &req),
            Err(e) => return self.reject(e, &req),
        };
        // 2. Every verification rule, before any store access; a token seen before skips the
        //    RSA verify and the parsing, not the clock.
        let now = crate::clock::now_secs();
        let verified = match self.cache.get(token, now, settings.validation.leeway_secs()) {
            Some(Ok(hit)) => hit,
            Some(Err(e)) => return self.reject(e.into(), &req),
            None => {
                let text = match token_text(token) {
                    Ok(text) => text,
                    Err(e) => return self.reject(e, &req),
                };
                match settings.validation.verify::<C>(text, now) {
                    Ok(claims) => self.cache.insert(token, Verified::new(claims)),
                    Err(e) => return self.reject(e.into(), &req),
                }
            }
        };
        // 3. Revocation: answered at once when the store can, else asked below.
        if let Some(status) = settings.revocations.check_local(token_ref(&verified.claims)) {
            if let Err(e) = status_result(status) {
                return self.reject(e, &req);
            }
            insert(&mut req, &verified);
            return ResponseFuture::inner(self.inner.call(req));
        }
        insert(&mut req, &verified);
        let check = check_future(settings, verified);
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::checking(check, req, inner, self.settings.clone())
    }
}

/// The verified claims, and the subject for code that does not know their type.
fn insert<ReqB, C: Clone + Send + Sync + 'static>(req: &mut Request<ReqB>, verified: &Verified<C>) {
    req.extensions_mut().insert(verified.subject.clone());
    req.extensions_mut().insert(verified.claims.clone());
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

fn check_future<C: Send + Sync + 'static>(settings: &Settings, verified: Arc<Verified<C>>) -> CheckFuture {
    let store = settings.revocations.shared();
    let timeout = settings.timeout;
    Box::pin(async move {
        let check = store.check(token_ref(&verified.claims));
        match tokio::time::timeout(timeout, check).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::timeout("revocation check")),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{service_fn, ServiceExt};
    use tower_layer::Layer;

    use crate::{Issuer, JwtAuthLayer, MemoryStore, NoClaims, SigningKey};

    #[tokio::test]
    async fn only_tokens_that_pass_every_rule_are_cached() {
        let issuer = Issuer::new(SigningKey::generate().unwrap());
        let layer = JwtAuthLayer::new(issuer.validation(), MemoryStore::new());
        let cache = layer.cache.clone();
        let svc = layer.layer(service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(()))
        }));
        let call = |token: String| {
            let svc = svc.clone();
            async move {
                let req = http::Request::builder()
                    .header("authorization", format!("Bearer {token}"))
                    .body(())
                    .unwrap();
                svc.oneshot(req).await.unwrap().status()
            }
        };
        let good = issuer.issue_plain("alice", "s").unwrap().token;
        let (head, sig) = good.rsplit_once('.').unwrap();
        for i in 0..50 {
            // Distinct forgeries: a flipped signature, garbage, a foreign key.
            let forged = format!("{head}.{}{}", if i % 2 == 0 { 'A' } else { 'B' }, &sig[1..]);
            assert_eq!(call(forged).await, http::StatusCode::UNAUTHORIZED);
            assert_eq!(call(format!("x{i}.y.z")).await, http::StatusCode::UNAUTHORIZED);
        }
        let foreign = Issuer::new(SigningKey::generate().unwrap());
        assert_eq!(
            call(foreign.issue_plain("alice", "s").unwrap().token).await,
            http::StatusCode::UNAUTHORIZED
        );
        assert_eq!(cache.len(), 0, "nothing invalid is kept");
        assert_eq!(call(good.clone()).await, http::StatusCode::OK);
        assert_eq!(call(good).await, http::StatusCode::OK);
        assert_eq!(cache.len(), 1);
        let _: &super::TokenCache<NoClaims> = &cache;
    }
}
