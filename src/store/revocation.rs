//! What the middleware asks a store: is this verified access token revoked?

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::error::StoreError;

/// What the middleware asks about a verified access token.
#[derive(Clone, Copy, Debug)]
pub struct TokenRef<'a> {
    /// The token's `sub`.
    pub sub: &'a str,
    /// The token's `sid`.
    pub sid: &'a str,
    /// The token's `jti`.
    pub jti: &'a str,
    /// The token's `iat`, seconds.
    pub iat: u64,
}

/// The revocation state of an access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// Not revoked.
    Active,
    /// Its `jti` was denylisted (logout).
    Denied,
    /// Its session was revoked (logout, reuse detection, revoke by id).
    SessionRevoked,
    /// Issued before the user's not-before (logout everywhere).
    UserLoggedOut,
}

/// The revocation check: all the middleware needs from a store.
///
/// One atomic read, no scans. Implement just this for a store that only answers checks
/// (a test double, a service that never starts sessions); [`SessionStore`](super::SessionStore)
/// adds the session lifecycle. A store error is answered 503, never as an auth failure.
pub trait RevocationStore: Send + Sync + 'static {
    /// Revocation state of a verified access token: one round trip at most.
    fn check<'a>(&'a self, token: TokenRef<'a>) -> BoxFuture<'a, Result<TokenStatus, StoreError>>;

    /// An answer available without I/O (an in-process store, or a local mirror), so the
    /// middleware can skip the async path. `None` means "ask [`RevocationStore::check`]".
    fn check_local(&self, token: TokenRef<'_>) -> Option<TokenStatus> {
        let _ = token;
        None
    }

    /// Records that a verifier on this store accepts tokens for up to `window` after their
    /// `iat`, so revocations written through any handle to this store last that long.
    ///
    /// A store whose clones share state should share this record too, as
    /// [`MemoryStore`](super::MemoryStore) and `RedisStore` do. By default nothing is
    /// recorded here, and each [`Store`](super::Store) or [`Revocations`](super::Revocations)
    /// handle, with its clones, keeps its own record.
    fn widen_acceptance(&self, window: Duration) {
        let _ = window;
    }

    /// The widest window recorded by [`RevocationStore::widen_acceptance`] (zero by default).
    fn acceptance(&self) -> Duration {
        Duration::ZERO
    }
}
