//! [`TokenManager`]: a client's access and refresh tokens, renewed ahead of expiry, with one
//! refresh in flight at a time however many calls need it.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::time::Instant;

use super::transport::{RefreshTransport, TransportError};
use super::ClientError;
use crate::endpoints::TokenResponse;

/// Default time before expiry at which the access token is renewed.
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(60);

/// Retries of a refresh that failed for want of the server, within one refresh.
const ATTEMPTS: u32 = 3;
/// First pause between them; doubled each time, up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// After a refresh failed for want of the server, calls within this long get that answer
/// instead of starting another one: no retry storm.
const COOL_DOWN: Duration = Duration::from_secs(1);

/// A callback that sees every rotated refresh token before it is used.
type OnRotate = Arc<dyn Fn(&str) + Send + Sync>;

type Flight = Shared<BoxFuture<'static, Result<Arc<str>, ClientError>>>;

/// The tokens of one signed-in client, shared by every call (cheap to clone).
///
/// - Attach [`TokenManager::access_token`] to each call (the client layer and the reqwest
///   middleware do).
/// - The access token is renewed `renew_before` its expiry (default 60 s, and never earlier
///   than half its lifetime), from the `expires_in` the server sent: the token itself is
///   never parsed.
/// - However many calls need a new token at once, **one** refresh request goes out and every
///   caller gets its result: a second refresh with the same one-time token would be reuse,
///   which ends the session.
/// - A refresh answered `invalid_grant` signs the client out ([`ClientError::SignedOut`],
///   for every later call too). A refresh that fails for want of the server (503, a
///   transport error) is retried with capped backoff and reported as
///   [`ClientError::Unavailable`]; it never signs the client out, and while the current
///   access token is still valid, calls keep using it.
/// - Every rotated refresh token goes to [`TokenManager::on_rotate`] before it is used, so
///   a CLI or desktop app can persist it; [`TokenManager::from_refresh_token`] starts from
///   a stored one.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<dyn RefreshTransport>,
    state: RwLock<State>,
    flight: Mutex<Option<Flight>>,
    /// The last refresh failed for want of the server, at this time.
    failed: Mutex<Option<(Instant, ClientError)>>,
    renew_before: Duration,
    on_rotate: Option<OnRotate>,
}

#[derive(Clone)]
enum State {
    /// Tokens in hand; `renew_at` is when to renew ahead of `expires_at`.
    SignedIn {
        access: Arc<str>,
        refresh: Arc<str>,
        expires_at: Instant,
        renew_at: Instant,
    },
    /// A refresh token only (restored from storage): the first call refreshes.
    RefreshOnly {
        refresh: Arc<str>,
    },
    SignedOut,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("signed_in", &self.is_signed_in())
            .field("renew_before", &self.inner.renew_before)
            .finish_non_exhaustive()
    }
}

/// When to renew a token that lives `lifetime`: `renew_before` its end, but not in its
/// first half (a token shorter than twice the margin would otherwise renew on every call).
fn renew_at(now: Instant, lifetime: Duration, renew_before: Duration) -> Instant {
    now + lifetime.saturating_sub(renew_before.min(lifetime / 2))
}

impl TokenManager {
    /// A client signed in with `tokens` (the login answer, which must carry a refresh token),
    /// refreshing through `transport`.
    pub fn new(transport: impl RefreshTransport, tokens: TokenResponse) -> Result<Self, ClientError> {
        let manager = Self::build(transport, State::SignedOut, DEFAULT_RENEW_BEFORE, None);
        manager.set(tokens)?;
        Ok(manager)
    }

    /// A client starting from a refresh token it kept (a CLI's config file, a keychain): the
    /// first call refreshes it.
    pub fn from_refresh_token(transport: impl RefreshTransport, refresh_token: impl Into<String>) -> Self {
        let state = State::RefreshOnly {
            refresh: refresh_token.into().into(),
        };
        Self::build(transport, state, DEFAULT_RENEW_BEFORE, None)
    }

    fn build(
        transport: impl RefreshTransport,
        state: State,
        renew_before: Duration,
        on_rotate: Option<OnRotate>,
    ) -> Self {
        TokenManager {
            inner: Arc::new(Inner {
                transport: Arc::new(transport),
                state: RwLock::new(state),
                flight: Mutex::new(None),
                failed: Mutex::new(None),
                renew_before,
                on_rotate,
            }),
        }
    }

    /// Builder step on the shared state (before the manager is shared).
    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                f(&mut inner);
                TokenManager {
                    inner: Arc::new(inner),
                }
            }
            Err(shared) => {
                tracing::warn!("TokenManager configured after it was shared: ignored");
                TokenManager { inner: shared }
            }
        }
    }

    /// Renews the access token this long before it expires (default 60 s; at most half its
    /// lifetime).
    pub fn renew_before(self, margin: Duration) -> Self {
        self.map(|i| i.renew_before = margin)
    }

    /// Hands every rotated refresh token to `f` before it is used (persist it there).
    pub fn on_rotate(self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        let f: OnRotate = Arc::new(f);
        self.map(|i| i.on_rotate = Some(f))
    }

    fn state(&self) -> State {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn write_state(&self, state: State) {
        *self.inner.state.write().unwrap_or_else(|e| e.into_inner()) = state;
    }

    fn flight(&self) -> MutexGuard<'_, Option<Flight>> {
        self.inner.flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failed(&self) -> MutexGuard<'_, Option<(Instant, ClientError)>> {
        self.inner.failed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a token response (after passing its refresh token to the callback).
    fn set(&self, tokens: TokenResponse) -> Result<Arc<str>, ClientError> {
        let Some(refresh) = tokens.refresh_token else {
            return Err(ClientError::Unavailable(
                "the token response carries no refresh token".into(),
            ));
        };
        if let Some(f) = &self.inner.on_rotate {
            f(&refresh);
        }
        let now = Instant::now();
        let lifetime = Duration::from_secs(tokens.expires_in);
        let access: Arc<str> = tokens.access_token.into();
        self.write_state(State::SignedIn {
            access: access.clone(),
            refresh: refresh.into(),
            expires_at: now + lifetime,
            renew_at: renew_at(now, lifetime, self.inner.renew_before),
        });
        *self.failed() = None;
        Ok(access)
    }

    /// Whether the client holds tokens (it may still be signed out by the server at its
    /// next refresh).
    pub fn is_signed_in(&self) -> bool {
        !matches!(self.state(), State::SignedOut)
    }

    /// The access token to send now, renewed first when due (one refresh however many
    /// callers).
    pub async fn access_token(&self) -> Result<Arc<str>, ClientError> {
        if let State::SignedIn { access, renew_at, .. } = self.state() {
            if Instant::now() < renew_at {
                return Ok(access);
            }
        }
        match self.refreshed(None).await {
            // A renewal ahead of expiry that the server could not serve: the token in hand
            // still works.
            Err(ClientError::Unavailable(why)) => match self.state() {
                State::SignedIn {
                    access, expires_at, ..
                } if Instant::now() < expires_at => Ok(access),
                _ => Err(ClientError::Unavailable(why)),
            },
            other => other,
        }
    }

    /// A new access token after the server refused `rejected`: refreshed, unless another
    /// call already did.
    pub(crate) async fn after_rejection(&self, rejected: &str) -> Result<Arc<str>, ClientError> {
        self.refreshed(Some(rejected)).await
    }

    /// Joins the refresh in flight, or starts one when it is still needed.
    async fn refreshed(&self, rejected: Option<&str>) -> Result<Arc<str>, ClientError> {
        let flight = {
            let mut flight = self.flight();
            if let Some(f) = &*flight {
                f.clone()
            } else {
                // Decided under the flight lock: a refresh that just finished has already
                // stored its tokens, so nobody starts a second one for the same expiry.
                let now = Instant::now();
                let usable = match self.state() {
                    State::SignedOut => return Err(ClientError::SignedOut),
                    State::SignedIn {
                        access,
                        expires_at,
                        renew_at,
                        ..
                    } => {
                        let rejected_this = rejected.is_some_and(|r| *r == *access);
                        if !rejected_this && now < renew_at {
                            return Ok(access);
                        }
                        (!rejected_this && now < expires_at).then_some(access)
                    }
                    State::RefreshOnly { .. } => None,
                };
                // The server just failed us: keep a token that still works, or report.
                if let Some((at, error)) = self.failed().clone() {
                    if now < at + COOL_DOWN {
                        return usable.ok_or(error);
                    }
                }
                let this = self.clone();
                let f = async move {
                    let result = this.refresh_now().await;
                    *this.flight() = None;
                    result
                }
                .boxed()
                .shared();
                *flight = Some(f.clone());
                f
            }
        };
        flight.await
    }

    /// One refresh, retried with backoff while the server is unavailable.
    async fn refresh_now(&self) -> Result<Arc<str>, ClientError> {
        let refresh = match self.state() {
            State::SignedIn { refresh, .. } | State::RefreshOnly { refresh } => refresh,
            State::SignedOut => return Err(ClientError::SignedOut),
        };
        let mut pause = BACKOFF;
        let mut attempt = 1;
        loop {
            match self.inner.transport.refresh(&refresh).await {
                Ok(tokens) => return self.set(tokens),
                Err(TransportError::InvalidGrant) => {
                    tracing::info!("refresh token refused (invalid_grant): signed out");
                    self.write_state(State::SignedOut);
                    return Err(ClientError::SignedOut);
                }
                Err(TransportError::Unavailable(why)) if attempt < ATTEMPTS => {
                    tracing::debug!(attempt, %why, "refresh failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                Err(TransportError::Unavailable(why)) => {
                    tracing::warn!(%why, "refresh failed; still signed in, will retry");
                    let error = ClientError::Unavailable(why);
                    self.record_failure(error.clone());
                    return Err(error);
                }
            }
        }
    }

    fn record_failure(&self, error: ClientError) {
        *self.failed() = Some((Instant::now(), error));
    }

    /// Logs out: the server revokes the session (refresh token and access token), and the
    /// client forgets its tokens whatever the server answered.
    pub async fn logout(&self) -> Result<(), ClientError> {
        let (refresh, access) = match self.state() {
            State::SignedIn { refresh, access, .. } => (refresh, Some(access)),
            State::RefreshOnly { refresh } => (refresh, None),
            State::SignedOut => return Ok(()),
        };
        self.write_state(State::SignedOut);
        self.inner
            .transport
            .logout(&refresh, access.as_deref())
            .await
            .map_err(|e| match e {
                TransportError::InvalidGrant => ClientError::SignedOut,
                TransportError::Unavailable(why) => ClientError::Unavailable(why),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A transport answering from a script, counting calls.
    struct Scripted {
        calls: Arc<AtomicUsize>,
        answer: Box<dyn Fn(usize, &str) -> Result<TokenResponse, TransportError> + Send + Sync>,
        delay: Duration,
    }

    impl RefreshTransport for Scripted {
        fn refresh<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<TokenResponse, TransportError>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(self.delay).await;
                (self.answer)(n, token)
            })
        }

        fn logout<'a>(&'a self, _: &'a str, _: Option<&'a str>) -> BoxFuture<'a, Result<(), TransportError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn tokens(n: usize, expires_in: u64) -> TokenResponse {
        TokenResponse {
            access_token: format!("access-{n}"),
            token_type: "Bearer".into(),
            expires_in,
            refresh_token: Some(format!("refresh-{n}")),
        }
    }

    fn scripted(
        answer: impl Fn(usize, &str) -> Result<TokenResponse, TransportError> + Send + Sync + 'static,
    ) -> (Scripted, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let transport = Scripted {
            calls: calls.clone(),
            answer: Box::new(answer),
            delay: Duration::from_millis(20),
        };
        (transport, calls)
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_refresh_and_the_callback_sees_it_first() {
        let (transport, calls) = scripted(|n, presented| {
            assert_eq!(presented, "refresh-0", "the current refresh token, once");
            Ok(tokens(n + 1, 600))
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        // expires_in 0: due for renewal at once.
        let manager = TokenManager::new(transport, tokens(0, 0))
            .unwrap()
            .on_rotate(move |t| log.lock().unwrap().push(t.to_owned()));
        // Set after construction: the first token's callback ran before `on_rotate` existed.
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let m = manager.clone();
                tokio::spawn(async move { m.access_token().await })
            })
            .collect();
        for t in tasks {
            assert_eq!(&*t.await.unwrap().unwrap(), "access-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(*seen.lock().unwrap(), vec!["refresh-1".to_owned()]);
    }

    #[tokio::test]
    async fn invalid_grant_signs_out_once_and_for_all() {
        let (transport, calls) = scripted(|_, _| Err(TransportError::InvalidGrant));
        let manager = TokenManager::from_refresh_token(transport, "stored");
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let m = manager.clone();
                tokio::spawn(async move { m.access_token().await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap_err(), ClientError::SignedOut);
        }
        assert_eq!(manager.access_token().await.unwrap_err(), ClientError::SignedOut);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry storm");
        assert!(!manager.is_signed_in());
    }

    #[tokio::test(start_paused = true)]
    async fn an_unavailable_server_is_retried_with_backoff_and_never_signs_out() {
        let (transport, calls) = scripted(|n, _| {
            if n < 6 {
                Err(TransportError::Unavailable("503".into()))
            } else {
                Ok(tokens(n, 600))
            }
        });
        let manager = TokenManager::from_refresh_token(transport, "stored");
        let err = manager.access_token().await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)), "{err:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "three attempts, then report");
        assert!(manager.is_signed_in());
        // Within the cool-down, callers get the answer without another request.
        let err = manager.access_token().await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Still failing: the next call retries (after the cool-down) and succeeds at last.
        tokio::time::sleep(COOL_DOWN).await;
        let err = manager.access_token().await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)));
        tokio::time::sleep(COOL_DOWN).await;
        assert_eq!(&*manager.access_token().await.unwrap(), "access-6");
        assert_eq!(calls.load(Ordering::SeqCst), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_keeps_the_token_that_is_still_valid() {
        let (transport, _) = scripted(|_, _| Err(TransportError::Unavailable("down".into())));
        let manager = TokenManager::new(transport, tokens(0, 100)).unwrap();
        // Due for renewal (half its life gone) but still valid: the renewal fails, the call
        // carries on with the current token.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(&*manager.access_token().await.unwrap(), "access-0");
        assert_eq!(
            &*manager.access_token().await.unwrap(),
            "access-0",
            "within the cool-down"
        );
        // Once it has expired, the failure is reported.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let err = manager.access_token().await;
        assert!(matches!(err, Err(ClientError::Unavailable(_))), "{err:?}");
        assert!(manager.is_signed_in());
    }

    #[tokio::test]
    async fn a_rejected_token_is_refreshed_once_for_every_caller_that_saw_it() {
        let (transport, calls) = scripted(|n, _| Ok(tokens(n + 1, 600)));
        let manager = TokenManager::new(transport, tokens(0, 600)).unwrap();
        let rejected = manager.access_token().await.unwrap();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (m, r) = (manager.clone(), rejected.clone());
                tokio::spawn(async move { m.after_rejection(&r).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(&*t.await.unwrap().unwrap(), "access-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn short_lifetimes_renew_at_half_their_life() {
        let now = Instant::now();
        assert_eq!(
            renew_at(now, Duration::from_secs(900), DEFAULT_RENEW_BEFORE),
            now + Duration::from_secs(840)
        );
        assert_eq!(
            renew_at(now, Duration::from_secs(2), DEFAULT_RENEW_BEFORE),
            now + Duration::from_secs(1)
        );
        assert_eq!(renew_at(now, Duration::ZERO, DEFAULT_RENEW_BEFORE), now);
    }
}
