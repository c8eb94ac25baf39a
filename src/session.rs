//! [`Sessions`]: login, refresh-token rotation, logout, logout everywhere, session listing.
//! The HTTP side of these lives in [`TokenEndpoints`](crate::TokenEndpoints).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::claims::NoClaims;
use crate::clock::{ms, now_ms, now_secs, setting};
use crate::error::{IssueError, StoreError};
use crate::issue::{random_id, AccessToken, Issuer};
use crate::provider::{ClaimsProvider, DynProvider, NoClaimsProvider};
use crate::refresh_token::{RefreshSecrets, RefreshToken, MAX_SUB_LEN};
use crate::store::{
    held_back, Grant, MarkPolicy, NewSession, RotateOutcome, Rotation, SessionInfo, Store, TokenRef,
    TokenStatus, MAX_MINT_AHEAD, MAX_NOT_BEFORE_LEAD,
};
use crate::verify::Validation;
use crate::JwtAuthLayer;

/// Default absolute session lifetime: 7 days, never extended by rotation.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Default grace window for the immediately previous refresh token.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// Default time allowed for one store operation of the token endpoints.
pub const DEFAULT_SESSION_STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest grace window accepted.
pub const MAX_GRACE: Duration = Duration::from_secs(60);
/// Default cap on one user's sessions: a login beyond it ends the session ending soonest.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 100;
/// Default cap on one user's live revocation markers (logged-out tokens, revoked sessions).
pub const DEFAULT_MAX_REVOCATIONS_PER_USER: usize = 1000;

/// An access token and the refresh token of the same session.
#[derive(Clone, Debug)]
pub struct TokenPair {
    /// The access token.
    pub access: AccessToken,
    /// The session's one live refresh token.
    pub refresh_token: String,
    /// The session id.
    pub sid: String,
    /// When the session ends at the latest (its absolute lifetime), ms since the Unix epoch:
    /// the refresh cookie lives no longer.
    pub session_end_ms: u64,
}

/// Why a session operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The refresh token is invalid, expired, revoked or reused (RFC 6749 `invalid_grant`).
    InvalidGrant,
    /// The `sub` is unusable (empty or longer than 256 bytes), or the claims provider does
    /// not know it.
    InvalidSubject,
    /// The store failed or timed out: retry later (503). Never reported as `invalid_grant`.
    Unavailable(StoreError),
    /// Minting failed (the application's claims, or the key).
    Issue(IssueError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::InvalidGrant => f.write_str("invalid refresh token"),
            SessionError::InvalidSubject => f.write_str("invalid subject"),
            SessionError::Unavailable(e) => write!(f, "session store unavailable: {e}"),
            SessionError::Issue(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::Unavailable(e) => Some(e),
            SessionError::Issue(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        SessionError::Unavailable(e)
    }
}

impl From<IssueError> for SessionError {
    fn from(e: IssueError) -> Self {
        SessionError::Issue(e)
    }
}

/// The session side: starts sessions at login, rotates refresh tokens, logs out, and builds
/// the middleware that checks its tokens.
///
/// No type parameters: cheap to clone (an `Arc` inside), so an axum application holds it in
/// its `State` and writes plain handlers. The store is picked at runtime (any
/// [`Store`]); the application's claims come from a [`ClaimsProvider`].
///
/// ```
/// use tower_jwt_auth::{Issuer, MemoryStore, RefreshSecrets, Sessions, SigningKey};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let sessions = Sessions::new(Issuer::new(SigningKey::generate()?), MemoryStore::new(), RefreshSecrets::generate());
/// let auth = sessions.auth_layer();           // same keys, rules and store
/// let pair = sessions.login("alice").await?;  // after checking alice's password
/// let next = sessions.refresh(&pair.refresh_token).await?;
/// # let _ = (auth, next); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

/// Every setting of a [`Sessions`]: one `Clone` struct, copied on write.
#[derive(Clone)]
struct Inner {
    issuer: Issuer,
    /// The rules this side's tokens are checked by; the leeway and lifetime live here only.
    validation: Validation,
    store: Store,
    secrets: RefreshSecrets,
    provider: Arc<dyn DynProvider>,
    policy: Policy,
}

/// The session policy.
#[derive(Clone, Copy, Debug)]
struct Policy {
    absolute: Duration,
    idle: Option<Duration>,
    max_sessions: usize,
    max_marks: usize,
    grace: Duration,
    timeout: Duration,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("issuer", &self.inner.issuer)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions minting with `issuer`, stored in `store` (any store, by value or in an
    /// `Arc`, or a [`Store`]), refresh tokens signed with `secrets`. Defaults: 7-day absolute
    /// lifetime, no idle timeout, 10 s grace, 60 s leeway, 100 sessions and 1000 revocation
    /// markers per user, 2 s store timeout, no application claims.
    pub fn new(issuer: Issuer, store: impl Into<Store>, secrets: RefreshSecrets) -> Self {
        let validation = issuer.validation();
        let store = store.into();
        Sessions {
            inner: Arc::new(Inner {
                issuer,
                validation,
                store,
                secrets,
                provider: Arc::new(NoClaimsProvider),
                policy: Policy {
                    absolute: DEFAULT_SESSION_LIFETIME,
                    idle: None,
                    max_sessions: DEFAULT_MAX_SESSIONS_PER_USER,
                    max_marks: DEFAULT_MAX_REVOCATIONS_PER_USER,
                    grace: DEFAULT_GRACE,
                    timeout: DEFAULT_SESSION_STORE_TIMEOUT,
                },
            }),
        }
    }

    /// Builder step, copy-on-write: configuring a clone never changes the others.
    fn map(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Supplies the application's claims at login and at every refresh, so a changed role
    /// takes effect within one access-token lifetime. Any
    /// `Fn(String) -> impl Future<Output = Option<C>>` is a provider; `None` means the user
    /// no longer exists (the refresh is refused and the session revoked).
    pub fn claims_provider(self, provider: impl ClaimsProvider) -> Self {
        let provider: Arc<dyn DynProvider> = Arc::new(provider);
        self.map(|i| i.provider = provider)
    }

    /// Absolute session lifetime (default 7 days); rotation never extends it.
    pub fn absolute_lifetime(self, lifetime: Duration) -> Self {
        self.map(|i| i.policy.absolute = setting(lifetime))
    }

    /// End sessions not refreshed for `idle` (default: no idle timeout; zero turns it off,
    /// as a session that dies the instant it starts is never what is meant).
    pub fn idle_timeout(self, idle: Duration) -> Self {
        self.map(|i| i.policy.idle = (ms(idle) > 0).then(|| setting(idle)))
    }

    /// Most sessions one user may hold at once (default 100; at least 1). A login beyond
    /// it ends the user's session that would end soonest (an expired or idle one first):
    /// that session's refresh token stops working and its access tokens live out their
    /// short lifetime. This bounds what one account can make the store hold.
    pub fn max_sessions_per_user(self, max: usize) -> Self {
        self.map(|i| i.policy.max_sessions = max.max(1))
    }

    /// Most revocation markers (logged-out access tokens, revoked sessions) one user holds
    /// at once (default 1000). One more folds the oldest into the user's not-before: the
    /// user's access tokens about as old as it die (fresher ones and every session live
    /// on), no revocation is lost, and one account cannot fill the store however often it
    /// logs out.
    pub fn max_revocations_per_user(self, max: usize) -> Self {
        self.map(|i| i.policy.max_marks = max)
    }

    /// Grace window for the previous refresh token (default 10 s; 0 disables; values above
    /// 60 s are capped at 60 s).
    pub fn grace(self, grace: Duration) -> Self {
        if grace > MAX_GRACE {
            tracing::warn!(?grace, "refresh grace window capped at 60 s");
        }
        self.map(|i| i.policy.grace = grace.min(MAX_GRACE))
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat` (default 60 s). It is the leeway of
    /// [`Sessions::validation`] and so of [`Sessions::auth_layer`]; revocations last the
    /// access lifetime plus the longest leeway any layer on this store uses.
    pub fn leeway(self, leeway: Duration) -> Self {
        self.map(|i| i.validation = i.validation.clone().leeway(leeway))
    }

    /// Time allowed for one store operation (default 2 s); past it the endpoint answers
    /// 503 instead of hanging, whatever the store client's own settings. Needs Tokio's time
    /// driver (`enable_all()`, as `#[tokio::main]` sets up).
    pub fn store_timeout(self, timeout: Duration) -> Self {
        self.map(|i| i.policy.timeout = timeout)
    }
}

impl Sessions {
    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.inner.issuer
    }

    /// The rules access tokens are checked by: the issuer's key, lifetime, `iss` and `aud`,
    /// with the sessions' leeway.
    pub fn validation(&self) -> &Validation {
        &self.inner.validation
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The middleware for this side's access tokens: the same keys, rules and store, so
    /// revocations here are seen there at once and last as long as it accepts a token.
    /// Add `.claims::<C>()` for the application's claims type.
    pub fn auth_layer(&self) -> JwtAuthLayer {
        JwtAuthLayer::new(self.inner.validation.clone(), &self.inner.store)
    }

    /// A store call, bounded by the store timeout; failures are `Unavailable`.
    async fn within<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, SessionError> {
        match tokio::time::timeout(self.inner.policy.timeout, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::timeout("store operation").into()),
        }
    }

    /// How revocation markers are sized and bounded. The window outlives every access token
    /// a marker must stop: minted no later than now (see [`Sessions::pair`]; plus
    /// [`MAX_NOT_BEFORE_LEAD`] as a margin for instances whose clocks disagree), then
    /// accepted for as long as the longest-accepting verifier on this store accepts one, plus
    /// a second for `iat`'s rounding.
    fn marks(&self) -> MarkPolicy {
        MarkPolicy {
            window: self.accepted() + MAX_NOT_BEFORE_LEAD + Duration::from_secs(1),
            max_per_user: self.inner.policy.max_marks,
        }
    }

    /// Whether `token` is a refresh token these sessions made (its MAC verifies); says
    /// nothing about its state.
    pub(crate) fn is_refresh_token(&self, token: &str) -> bool {
        self.inner.secrets.decode(token).is_some()
    }

    /// How long after its `iat` a token is accepted by the widest of these sessions' own
    /// validation and every verifier registered on the store.
    fn accepted(&self) -> Duration {
        self.inner
            .store
            .accepted()
            .max(self.inner.validation.acceptance())
    }

    /// Starts a session for `sub` (after the application checked the credentials) and
    /// mints its first token pair.
    pub async fn login(&self, sub: &str) -> Result<TokenPair, SessionError> {
        if sub.is_empty() || sub.len() > MAX_SUB_LEN {
            return Err(SessionError::InvalidSubject);
        }
        let claims = self
            .inner
            .provider
            .claims(sub)
            .await?
            .ok_or(SessionError::InvalidSubject)?;
        let sid = random_id();
        let policy = &self.inner.policy;
        let now = now_secs();
        let session = NewSession {
            sub,
            sid: &sid,
            absolute: policy.absolute,
            idle: policy.idle,
            max_per_user: policy.max_sessions,
            latest_not_before: now + MAX_MINT_AHEAD.as_secs(),
        };
        let grant = self.within(self.inner.store.create_session(session)).await?;
        self.pair(sub, sid, &claims, now, grant).await
    }

    /// Mints the pair a grant allows. `asked_at` is when the store was asked: with the
    /// not-before read in the same atomic step, `iat` orders the token against logout-all
    /// exactly (before it: revoked; after it: live), whatever happens in between.
    async fn pair<C: Serialize>(
        &self,
        sub: &str,
        sid: String,
        claims: &C,
        asked_at: u64,
        grant: Grant,
    ) -> Result<TokenPair, SessionError> {
        // A revocation just now put the not-before a second ahead: no token is minted ahead
        // of the clock (so `now + 1` always ends every token so far, see
        // `store::not_before_after`), so wait for it. Further ahead than MAX_MINT_AHEAD past
        // the store call (which markers count on, see `MarkPolicy`), the store granted
        // nothing (`Grant::not_before`); a store that ignores `latest_not_before` is caught
        // here, though its change stands.
        if grant.not_before > asked_at + MAX_MINT_AHEAD.as_secs() {
            return Err(SessionError::Unavailable(held_back()));
        }
        let ahead = Duration::from_millis(grant.not_before.saturating_mul(1000).saturating_sub(now_ms()));
        if !ahead.is_zero() {
            tokio::time::sleep(ahead).await;
        }
        let iat = asked_at.max(grant.not_before);
        let access = self.inner.issuer.issue_at(sub, &sid, claims, iat)?;
        // Always the current secret: a token minted under a retired secret moves to the new
        // one at its next rotation, so retiring a secret logs nobody out. The store tracks
        // generations, not secrets, so the grace answer is valid whichever secret signs it.
        let refresh_token = self.inner.secrets.encode(sub, &sid, grant.generation);
        Ok(TokenPair {
            access,
            refresh_token,
            sid,
            session_end_ms: grant.session_end_ms,
        })
    }

    /// Rotates a refresh token: the new pair, the grace answer, or `InvalidGrant`.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, SessionError> {
        // Forgeries and garbage stop here, before any store access.
        let token = self
            .inner
            .secrets
            .decode(refresh_token)
            .ok_or(SessionError::InvalidGrant)?;
        let RefreshToken { sub, sid, generation } = token;
        let now = now_secs();
        let rotation = Rotation {
            sub: &sub,
            sid: &sid,
            generation,
            grace: self.inner.policy.grace,
            marks: self.marks(),
            latest_not_before: now + MAX_MINT_AHEAD.as_secs(),
        };
        let grant = match self.within(self.inner.store.rotate(rotation)).await? {
            RotateOutcome::Rotated(grant) => grant,
            RotateOutcome::Grace(grant) => {
                tracing::debug!(sub = %sub, sid = %sid, "previous refresh token used within the grace window");
                grant
            }
            RotateOutcome::ReuseDetected => {
                tracing::warn!(
                    target: "tower_jwt_auth::security",
                    sub = %sub,
                    sid = %sid,
                    presented_generation = generation,
                    "refresh token reuse detected: session revoked"
                );
                return Err(SessionError::InvalidGrant);
            }
            RotateOutcome::Rejected(reason) => {
                tracing::debug!(sub = %sub, sid = %sid, ?reason, "refresh refused");
                return Err(SessionError::InvalidGrant);
            }
        };
        let Some(claims) = self.inner.provider.claims(&sub).await? else {
            // The user is gone: end the session rather than mint for them.
            self.within(self.inner.store.revoke_session(&sub, &sid, self.marks()))
                .await?;
            return Err(SessionError::InvalidGrant);
        };
        self.pair(&sub, sid, &claims, now, grant).await
    }

    /// Logs out one session: the refresh token's session, or the access token's, is revoked
    /// (its live access tokens die at once); an access token whose session the store no
    /// longer knows is denylisted by its `jti` until it expires. Either credential suffices;
    /// invalid ones are ignored (RFC 7009 §2.2), and so is an access token already revoked:
    /// nothing is written for it. Returns whether anything was revoked.
    pub async fn logout(
        &self,
        refresh_token: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<bool, SessionError> {
        let mut revoked = false;
        let marks = self.marks();
        let store = &self.inner.store;
        if let Some(t) = refresh_token.and_then(|t| self.inner.secrets.decode(t)) {
            revoked |= self.within(store.revoke_session(&t.sub, &t.sid, marks)).await?;
        }
        let now = now_secs();
        // A verifier on the store may accept a token longer than our own validation does:
        // a token one of them still accepts is revoked too.
        let late = self.accepted().saturating_sub(self.inner.validation.acceptance());
        let claims = access_token.and_then(|t| {
            self.inner
                .validation
                .verify_late::<NoClaims>(t, now, late.as_secs())
                .ok()
        });
        if let Some(claims) = claims {
            let token = TokenRef {
                sub: &claims.sub,
                sid: &claims.sid,
                jti: &claims.jti,
                iat: claims.iat,
            };
            if self.within(store.check(token)).await? == TokenStatus::Active {
                // The session's marker outlives every token of the session (see `marks`).
                // Only a session the store no longer knows (ended, or evicted by the
                // per-user cap) needs this token denylisted by itself.
                if !self
                    .within(store.revoke_session(&claims.sub, &claims.sid, marks))
                    .await?
                {
                    // No verifier accepts it past `iat` + the widest acceptance (which bounds
                    // `exp + leeway`); a second more covers the rounding.
                    let until = claims.iat + self.accepted().as_secs() + 1;
                    let ttl = Duration::from_secs(until.saturating_sub(now));
                    self.within(store.deny_token(&claims.sub, &claims.jti, ttl, marks))
                        .await?;
                }
                revoked = true;
            }
        }
        Ok(revoked)
    }

    /// Ends every session of `sub` and rejects every access token issued up to now.
    pub async fn logout_all(&self, sub: &str) -> Result<(), SessionError> {
        self.within(self.inner.store.revoke_all(sub, self.marks().window))
            .await?;
        tracing::info!(target: "tower_jwt_auth::security", sub = %sub, "all sessions revoked");
        Ok(())
    }

    /// The user's active sessions ("your devices").
    pub async fn list(&self, sub: &str) -> Result<Vec<SessionInfo>, SessionError> {
        self.within(self.inner.store.sessions(sub)).await
    }

    /// Revokes one of the user's sessions by id. Returns whether it was active.
    pub async fn revoke(&self, sub: &str, sid: &str) -> Result<bool, SessionError> {
        self.within(self.inner.store.revoke_session(sub, sid, self.marks()))
            .await
    }
}
