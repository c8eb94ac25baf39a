//! A store wrapper for tests: counts the rotations (refreshes) that reach the store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower_jwt_auth::store::{
    BoxFuture, Grant, MarkPolicy, NewSession, RevocationStore, RotateOutcome, Rotation, SessionInfo,
    SessionStore, Store, TokenRef, TokenStatus,
};
use tower_jwt_auth::StoreError;

/// A store counting the rotations (refreshes) that reach it.
pub(crate) struct Counting {
    pub(crate) inner: Store,
    pub(crate) rotations: Arc<AtomicUsize>,
}

impl RevocationStore for Counting {
    fn check<'a>(&'a self, t: TokenRef<'a>) -> BoxFuture<'a, Result<TokenStatus, StoreError>> {
        self.inner.check(t)
    }
    fn check_local(&self, t: TokenRef<'_>) -> Option<TokenStatus> {
        self.inner.check_local(t)
    }
    fn widen_acceptance(&self, window: Duration) {
        self.inner.widen_acceptance(window)
    }
    fn acceptance(&self) -> Duration {
        self.inner.acceptance()
    }
}

impl SessionStore for Counting {
    fn create_session<'a>(&'a self, s: NewSession<'a>) -> BoxFuture<'a, Result<Grant, StoreError>> {
        self.inner.create_session(s)
    }
    fn rotate<'a>(&'a self, r: Rotation<'a>) -> BoxFuture<'a, Result<RotateOutcome, StoreError>> {
        self.rotations.fetch_add(1, Ordering::SeqCst);
        self.inner.rotate(r)
    }
    fn deny_token<'a>(
        &'a self,
        s: &'a str,
        j: &'a str,
        t: Duration,
        m: MarkPolicy,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.deny_token(s, j, t, m)
    }
    fn revoke_session<'a>(
        &'a self,
        s: &'a str,
        i: &'a str,
        m: MarkPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.revoke_session(s, i, m)
    }
    fn revoke_all<'a>(&'a self, s: &'a str, w: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.revoke_all(s, w)
    }
    fn sessions<'a>(&'a self, s: &'a str) -> BoxFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        self.inner.sessions(s)
    }
}
