//! The in-process store: the embedded default for one process, tests and development.
//!
//! Users live in a sharded concurrent map (`dashmap`), so a revocation check takes one
//! shard's read lock and never waits for writes to other users; expired entries are swept by
//! a background thread, never on the request path.

mod user;

use std::future::ready;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::Thread;
use std::time::Duration;

use dashmap::DashMap;
use futures_util::future::BoxFuture;

use self::user::{rotate, Mark, User};
use super::acceptance::Acceptance;
use super::{
    Grant, MarkPolicy, NewSession, RevocationStore, RotateOutcome, Rotation, SessionInfo, SessionStore,
    TokenRef, TokenStatus,
};
use crate::clock::{ms, now_ms};
use crate::error::StoreError;

/// Default bound on stored entries (sessions + denylisted tokens + revoked sessions).
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// How often the background thread sweeps expired entries (sooner when nearly full).
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Shards of the user map: a sweep write-locks one at a time, so fewer users wait.
const SHARDS: usize = 64;

/// An in-memory store. Bounded: expired entries are swept in the background; when the bound
/// is reached, a new session is refused with a [`StoreError`] (callers answer 503), while a
/// revocation is never refused (see [`MarkPolicy`]).
///
/// It lives in one process: several instances of a service need the Redis store.
#[derive(Debug)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Everything of one user, like the Redis store's per-user hash tag: one user's calls
    /// never touch another user's state.
    users: DashMap<String, User>,
    /// Live entries: sessions + denylisted tokens + revoked sids (moved by every change).
    entries: AtomicUsize,
    max_entries: usize,
    sweeper: OnceLock<Thread>,
    acceptance: Acceptance,
}

impl Shared {
    /// Drops every expired entry, one shard at a time.
    fn sweep(&self, now: u64) {
        let mut removed = 0;
        self.users.retain(|_, user| {
            removed += user.purge(now);
            !user.is_idle()
        });
        self.entries.fetch_sub(removed, Ordering::Relaxed);
    }

    fn adjust(&self, delta: isize) {
        if delta >= 0 {
            self.entries.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.entries.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Whether one more entry fits; past 90 % the sweeper is woken.
    fn room(&self) -> bool {
        let entries = self.entries.load(Ordering::Relaxed);
        if entries >= self.max_entries - self.max_entries / 10 {
            if let Some(sweeper) = self.sweeper.get() {
                sweeper.unpark();
            }
        }
        entries < self.max_entries
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        // Let the sweeper find the store gone now rather than at its next round.
        if let Some(sweeper) = self.shared.sweeper.get() {
            sweeper.unpark();
        }
    }
}

impl MemoryStore {
    /// A store bounded to [`DEFAULT_MAX_ENTRIES`].
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A store holding at most `max_entries` entries.
    pub fn with_max_entries(max_entries: usize) -> Self {
        let shared = Arc::new(Shared {
            users: DashMap::with_shard_amount(SHARDS),
            entries: AtomicUsize::new(0),
            max_entries,
            sweeper: OnceLock::new(),
            acceptance: Acceptance::default(),
        });
        spawn_sweeper(&shared);
        MemoryStore { shared }
    }

    /// Number of live entries (sessions, denylisted tokens, revoked sessions), after a sweep.
    pub fn len(&self) -> usize {
        self.shared.sweep(now_ms());
        self.shared.entries.load(Ordering::Relaxed)
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn status(&self, t: TokenRef<'_>) -> TokenStatus {
        match self.shared.users.get(t.sub) {
            Some(user) => user.status(t, now_ms()),
            None => TokenStatus::Active,
        }
    }

    /// Runs `f` on `sub`'s state (created when missing) under its shard's write lock, with
    /// whether the store has room for one more entry; `f` answers the change in entries.
    /// A full store first drops this user's expired entries: bounded work (the per-user
    /// caps), unlike a sweep of everything.
    fn with_user<R>(&self, sub: &str, f: impl FnOnce(&mut User, bool, u64) -> (R, isize)) -> R {
        let mut user = self.shared.users.entry(sub.to_owned()).or_default();
        self.change(&mut user, f)
    }

    /// [`MemoryStore::with_user`] for a user the store knows; `None` for another.
    fn with_known_user<R>(&self, sub: &str, f: impl FnOnce(&mut User, bool, u64) -> (R, isize)) -> Option<R> {
        let mut user = self.shared.users.get_mut(sub)?;
        Some(self.change(&mut user, f))
    }

    fn change<R>(&self, user: &mut User, f: impl FnOnce(&mut User, bool, u64) -> (R, isize)) -> R {
        let now = now_ms();
        let shared = &self.shared;
        let mut room = shared.room();
        if !room {
            shared.adjust(user::delta(0, user.purge(now)));
            room = shared.room();
        }
        let (result, delta) = f(user, room, now);
        shared.adjust(delta);
        result
    }
}

/// The background sweeper: wakes every [`SWEEP_INTERVAL`] (or when the store nears its
/// bound), and ends once the store is gone.
fn spawn_sweeper(shared: &Arc<Shared>) {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let spawned = std::thread::Builder::new()
        .name("tja-memory-sweep".into())
        .spawn(move || loop {
            std::thread::park_timeout(SWEEP_INTERVAL);
            let Some(shared) = weak.upgrade() else {
                return;
            };
            shared.sweep(now_ms());
        });
    match spawned {
        Ok(handle) => {
            let _ = shared.sweeper.set(handle.thread().clone());
        }
        // No thread (a restricted platform): expired entries still go, user by user, when
        // the store is full, and on `len()`.
        Err(e) => tracing::warn!(error = %e, "memory store: no background sweeper"),
    }
}

/// The operations, answered at once (the trait impls below wrap them).
impl MemoryStore {
    fn create_now(&self, n: NewSession<'_>) -> Result<Grant, StoreError> {
        self.with_user(n.sub, |user, room, now| match user.create(&n, room, now) {
            Ok((grant, delta)) => (Ok(grant), delta),
            Err(e) => (Err(e), 0),
        })
    }

    fn rotate_now(&self, r: Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        // The rotation and, on reuse, the session's marker: one atomic change.
        let rotated = self.with_known_user(r.sub, |user, room, now| {
            let outcome = rotate(user, &r, now);
            let delta = if outcome == Ok(RotateOutcome::ReuseDetected) {
                let until = now.saturating_add(ms(r.marks.window));
                user.mark(Mark::Session(r.sid), until, r.marks, room, now)
            } else {
                0
            };
            (outcome, delta)
        });
        rotated.unwrap_or(Ok(RotateOutcome::Rejected(super::RejectReason::Missing)))
    }

    fn deny_now(&self, sub: &str, jti: &str, ttl: Duration, marks: MarkPolicy) {
        // An expired token has nothing left to deny.
        if !ttl.is_zero() {
            self.with_user(sub, |user, room, now| {
                let until = now.saturating_add(ms(ttl));
                ((), user.mark(Mark::Deny(jti), until, marks, room, now))
            });
        }
    }

    fn revoke_now(&self, sub: &str, sid: &str, marks: MarkPolicy) -> bool {
        // An unknown sid (never issued, or ended and gone) has nothing to revoke; writing a
        // marker for it would let any caller grow the store at will.
        let revoked = self.with_known_user(sub, |user, room, now| {
            if !user.has_session(sid, now) {
                return (false, 0);
            }
            let revoked = user.revoke(sid, now);
            let until = now.saturating_add(ms(marks.window));
            (revoked, user.mark(Mark::Session(sid), until, marks, room, now))
        });
        revoked.unwrap_or(false)
    }

    fn revoke_all_now(&self, sub: &str, window: Duration) {
        self.with_user(sub, |user, _, now| {
            user.revoke_all(now, ms(window));
            ((), 0)
        });
    }

    fn sessions_now(&self, sub: &str) -> Vec<SessionInfo> {
        let mut list = self
            .shared
            .users
            .get(sub)
            .map(|u| u.sessions(now_ms()))
            .unwrap_or_default();
        super::sort_sessions(&mut list);
        list
    }
}

impl RevocationStore for MemoryStore {
    fn check<'a>(&'a self, token: TokenRef<'a>) -> BoxFuture<'a, Result<TokenStatus, StoreError>> {
        Box::pin(ready(Ok(self.status(token))))
    }

    fn check_local(&self, token: TokenRef<'_>) -> Option<TokenStatus> {
        Some(self.status(token))
    }

    fn widen_acceptance(&self, window: Duration) {
        self.shared.acceptance.widen(window);
    }

    fn acceptance(&self) -> Duration {
        self.shared.acceptance.get()
    }
}

impl SessionStore for MemoryStore {
    fn create_session<'a>(&'a self, session: NewSession<'a>) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(ready(self.create_now(session)))
    }

    fn rotate<'a>(&'a self, rotation: Rotation<'a>) -> BoxFuture<'a, Result<RotateOutcome, StoreError>> {
        Box::pin(ready(self.rotate_now(rotation)))
    }

    fn deny_token<'a>(
        &'a self,
        sub: &'a str,
        jti: &'a str,
        ttl: Duration,
        marks: MarkPolicy,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.deny_now(sub, jti, ttl, marks);
        Box::pin(ready(Ok(())))
    }

    fn revoke_session<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        marks: MarkPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(ready(Ok(self.revoke_now(sub, sid, marks))))
    }

    fn revoke_all<'a>(&'a self, sub: &'a str, window: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        self.revoke_all_now(sub, window);
        Box::pin(ready(Ok(())))
    }

    fn sessions<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        Box::pin(ready(Ok(self.sessions_now(sub))))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    const MARKS: MarkPolicy = MarkPolicy {
        window: Duration::from_secs(960),
        max_per_user: 1000,
    };
    const HOUR: Duration = Duration::from_secs(3600);

    fn token<'a>(sub: &'a str, jti: &'a str) -> TokenRef<'a> {
        TokenRef {
            sub,
            sid: "s",
            jti,
            iat: crate::clock::now_secs(),
        }
    }

    fn session(sid: &str, absolute: Duration) -> NewSession<'_> {
        NewSession {
            sub: "u",
            sid,
            absolute,
            idle: None,
            max_per_user: 10,
            latest_not_before: u64::MAX,
        }
    }

    #[tokio::test]
    async fn bounded_and_swept() {
        let store = MemoryStore::with_max_entries(3);
        for jti in ["a", "b", "c"] {
            store.deny_token("u", jti, HOUR, MARKS).await.unwrap();
        }
        assert!(
            store.create_session(session("s", HOUR)).await.is_err(),
            "full: a new session is refused"
        );
        // A revocation is never refused for want of room, nor forgotten: the user's oldest
        // marker is folded into the not-before to make room, and nothing is added.
        store.deny_token("u", "d", HOUR, MARKS).await.unwrap();
        assert_eq!(store.check(token("u", "d")).await.unwrap(), TokenStatus::Denied);
        let mut folded = 0;
        for jti in ["a", "b", "c"] {
            match store.check(token("u", jti)).await.unwrap() {
                TokenStatus::UserLoggedOut => folded += 1,
                status => assert_eq!(status, TokenStatus::Denied),
            }
        }
        assert_eq!(folded, 1, "one marker folded into the not-before");
        assert_eq!(store.len(), 3);
        // With none of the user's to fold, the user's not-before rises instead.
        store.deny_token("v", "e", HOUR, MARKS).await.unwrap();
        assert_eq!(
            store.check(token("v", "e")).await.unwrap(),
            TokenStatus::UserLoggedOut
        );
        assert_eq!(store.len(), 3);
        // Entries that expire are swept and make room.
        let store = MemoryStore::with_max_entries(2);
        for sid in ["s1", "s2"] {
            store
                .create_session(session(sid, Duration::from_millis(50)))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
        store
            .create_session(session("s3", Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(store.len(), 1);
        // Revoking a session adds its marker once, however often it is revoked.
        for _ in 0..3 {
            store.revoke_session("u", "s3", MARKS).await.unwrap();
        }
        assert_eq!(store.shared.entries.load(Ordering::Relaxed), 2);
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn the_request_path_never_sweeps_other_users() {
        let store = MemoryStore::with_max_entries(2);
        let brief = Duration::from_millis(30);
        store.deny_token("a", "j", brief, MARKS).await.unwrap();
        store.deny_token("b", "j", brief, MARKS).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        // Full of expired entries of a and b: c's login does not sweep them (bounded work
        // on the request path) and is refused, while the sweeper is woken.
        let mut session = session("s", HOUR);
        session.sub = "c";
        assert!(store.create_session(session).await.is_err());
        assert_eq!(store.shared.entries.load(Ordering::Relaxed), 2);
        // The background sweep makes room.
        let start = std::time::Instant::now();
        while store.shared.entries.load(Ordering::Relaxed) > 0 {
            assert!(start.elapsed() < Duration::from_secs(2), "the sweeper never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(store.create_session(session).await.is_ok());
    }

    #[test]
    fn the_sweeper_ends_with_the_store() {
        let store = MemoryStore::new();
        let sweeper = Arc::downgrade(&store.shared);
        drop(store);
        assert!(sweeper.upgrade().is_none(), "nothing keeps the store alive");
    }

    #[tokio::test]
    async fn one_user_cannot_touch_another() {
        let store = MemoryStore::new();
        store.revoke_session("mallory", "s", MARKS).await.unwrap();
        store.deny_token("mallory", "j", HOUR, MARKS).await.unwrap();
        assert_eq!(
            store.check(token("alice", "j")).await.unwrap(),
            TokenStatus::Active
        );
    }
}
