//! The in-process store: the embedded default for one process, tests and development.

use std::collections::HashMap;
use std::future::{ready, Future};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{
    not_before_after, NewSession, RejectReason, RotateOutcome, Rotation, SessionInfo, Store, TokenRef,
    TokenStatus,
};
use crate::clock::{ms, now_ms};
use crate::error::StoreError;

/// Default bound on stored entries (sessions + denylisted tokens + revoked sessions).
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// How many writes between sweeps of expired entries.
const SWEEP_EVERY: u32 = 1024;

/// An in-memory [`Store`]. Bounded: expired entries are swept; when the bound is reached
/// even after a sweep, writes fail with a [`StoreError`] (callers answer 503) rather than
/// forget a revocation.
///
/// It lives in one process: several instances of a service need the Redis store.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    max_entries: usize,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, User>,
    /// Live entries: sessions + denylisted tokens + revoked sids. Grows by one per insert;
    /// recounted exactly on every sweep.
    entries: usize,
    writes: u32,
}

/// Everything of one user, like the Redis store's per-user hash tag: one user's calls
/// never touch another user's state.
#[derive(Debug, Default)]
struct User {
    /// Bumped by logout-all; sessions remember the epoch they started in.
    epoch: u64,
    /// (not-before in seconds, kept until ms).
    nbf: Option<(u64, u64)>,
    sessions: HashMap<String, Session>,
    /// jti → denied until (ms).
    deny: HashMap<String, u64>,
    /// sid → access tokens rejected until (ms).
    sidrev: HashMap<String, u64>,
}

impl User {
    fn len(&self) -> usize {
        self.sessions.len() + self.deny.len() + self.sidrev.len()
    }

    fn revoke_sid(&mut self, sid: &str, until: u64) {
        let e = self.sidrev.entry(sid.to_owned()).or_insert(0);
        *e = (*e).max(until);
    }
}

#[derive(Debug, Clone)]
struct Session {
    generation: u64,
    revoked: bool,
    created: u64,
    abs_exp: u64,
    idle: Option<u64>,
    last_used: u64,
    rotated_at: u64,
    epoch: u64,
}

impl Session {
    fn expires(&self) -> u64 {
        self.idle.map_or(self.abs_exp, |idle| {
            self.abs_exp.min(self.last_used.saturating_add(idle))
        })
    }

    fn info(&self, sid: &str) -> SessionInfo {
        SessionInfo {
            sid: sid.to_owned(),
            created_ms: self.created,
            last_used_ms: self.last_used,
            expires_ms: self.expires(),
            generation: self.generation,
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store bounded to [`DEFAULT_MAX_ENTRIES`].
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A store holding at most `max_entries` entries.
    pub fn with_max_entries(max_entries: usize) -> Self {
        MemoryStore {
            state: Mutex::new(State::default()),
            max_entries,
        }
    }

    /// Number of live entries (sessions, denylisted tokens, revoked sessions).
    pub fn len(&self) -> usize {
        let mut s = self.lock();
        s.sweep(now_ms());
        s.entries
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation below is a single insert/update, so a panic elsewhere while the
        // lock was held cannot have left half a change: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status(&self, t: TokenRef<'_>) -> TokenStatus {
        let now = now_ms();
        let s = self.lock();
        let Some(user) = s.users.get(t.sub) else {
            return TokenStatus::Active;
        };
        if user.deny.get(t.jti).is_some_and(|&until| until > now) {
            return TokenStatus::Denied;
        }
        if user.sidrev.get(t.sid).is_some_and(|&until| until > now) {
            return TokenStatus::SessionRevoked;
        }
        if user.nbf.is_some_and(|(nbf, until)| until > now && t.iat < nbf) {
            return TokenStatus::UserLoggedOut;
        }
        TokenStatus::Active
    }

    /// Locks the state after making room for one more entry (sweeping when due or full).
    fn lock_for_insert(&self, now: u64) -> Result<MutexGuard<'_, State>, StoreError> {
        let mut s = self.lock();
        s.writes = s.writes.wrapping_add(1);
        if s.entries >= self.max_entries || s.writes % SWEEP_EVERY == 0 {
            s.sweep(now);
        }
        if s.entries >= self.max_entries {
            return Err(StoreError::new("memory store is full"));
        }
        s.entries += 1;
        Ok(s)
    }
}

impl State {
    fn sweep(&mut self, now: u64) {
        let mut entries = 0;
        self.users.retain(|_, u| {
            u.sessions.retain(|_, s| s.expires() > now);
            u.deny.retain(|_, until| *until > now);
            u.sidrev.retain(|_, until| *until > now);
            if u.nbf.is_some_and(|(_, until)| until <= now) {
                u.nbf = None;
            }
            entries += u.len();
            // With no sessions left the epoch has nothing to compare against: drop the user.
            u.len() > 0 || u.nbf.is_some()
        });
        self.entries = entries;
    }

    fn user(&mut self, sub: &str) -> &mut User {
        self.users.entry(sub.to_owned()).or_default()
    }
}

impl Store for MemoryStore {
    fn check(&self, token: TokenRef<'_>) -> impl Future<Output = Result<TokenStatus, StoreError>> + Send {
        ready(Ok(self.status(token)))
    }

    fn check_local(&self, token: TokenRef<'_>) -> Option<TokenStatus> {
        Some(self.status(token))
    }

    fn create_session(
        &self,
        n: NewSession<'_>,
    ) -> impl Future<Output = Result<SessionInfo, StoreError>> + Send {
        let now = now_ms();
        let result = self.lock_for_insert(now).map(|mut s| {
            let user = s.user(n.sub);
            let session = Session {
                generation: 0,
                revoked: false,
                created: now,
                abs_exp: now.saturating_add(ms(n.absolute)),
                idle: n.idle.map(ms),
                last_used: now,
                rotated_at: 0,
                epoch: user.epoch,
            };
            let info = session.info(n.sid);
            user.sessions.insert(n.sid.to_owned(), session);
            info
        });
        ready(result)
    }

    fn rotate(&self, r: Rotation<'_>) -> impl Future<Output = Result<RotateOutcome, StoreError>> + Send {
        let now = now_ms();
        let outcome = match self.lock().users.get_mut(r.sub) {
            Some(user) => rotate(user, &r, now),
            None => RotateOutcome::Rejected(RejectReason::Missing),
        };
        ready(Ok(outcome))
    }

    fn deny_token(
        &self,
        sub: &str,
        jti: &str,
        until_secs: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let now = now_ms();
        let until = until_secs.saturating_mul(1000);
        let result = if until <= now {
            Ok(()) // already expired: nothing to remember
        } else {
            self.lock_for_insert(now).map(|mut s| {
                s.user(sub).deny.insert(jti.to_owned(), until);
            })
        };
        ready(result)
    }

    fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        access_window: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let now = now_ms();
        let result = self.lock_for_insert(now).map(|mut s| {
            let user = s.user(sub);
            user.revoke_sid(sid, now.saturating_add(ms(access_window)));
            match user.sessions.get_mut(sid) {
                Some(session)
                    if !session.revoked && session.epoch == user.epoch && session.expires() > now =>
                {
                    session.revoked = true;
                    true
                }
                _ => false,
            }
        });
        ready(result)
    }

    fn revoke_all(
        &self,
        sub: &str,
        access_window: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let now = now_ms();
        let mut s = self.lock();
        let user = s.user(sub);
        user.epoch += 1;
        let nbf = not_before_after(now);
        let until = now.saturating_add(ms(access_window));
        user.nbf = Some(match user.nbf {
            Some((old, old_until)) => (old.max(nbf), old_until.max(until)),
            None => (nbf, until),
        });
        ready(Ok(()))
    }

    fn sessions(&self, sub: &str) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send {
        let now = now_ms();
        let s = self.lock();
        let mut list: Vec<SessionInfo> = s
            .users
            .get(sub)
            .map(|u| {
                u.sessions
                    .iter()
                    .filter(|(_, x)| !x.revoked && x.epoch == u.epoch && x.expires() > now)
                    .map(|(sid, x)| x.info(sid))
                    .collect()
            })
            .unwrap_or_default();
        super::sort_sessions(&mut list);
        ready(Ok(list))
    }
}

/// The rotation state machine (DESIGN.md "Rotation"), applied under the lock.
fn rotate(user: &mut User, r: &Rotation<'_>, now: u64) -> RotateOutcome {
    let epoch = user.epoch;
    let Some(session) = user.sessions.get_mut(r.sid) else {
        return RotateOutcome::Rejected(RejectReason::Missing);
    };
    if session.revoked {
        return RotateOutcome::Rejected(RejectReason::Revoked);
    }
    if session.epoch != epoch {
        return RotateOutcome::Rejected(RejectReason::UserLoggedOut);
    }
    if now >= session.expires() {
        let reason = if now >= session.abs_exp {
            RejectReason::Expired
        } else {
            RejectReason::Idle
        };
        session.revoked = true;
        return RotateOutcome::Rejected(reason);
    }
    let current = session.generation;
    if r.generation == current {
        session.generation += 1;
        session.rotated_at = now;
        session.last_used = now;
        return RotateOutcome::Rotated {
            generation: session.generation,
        };
    }
    if r.generation > current {
        return RotateOutcome::Rejected(RejectReason::FutureGeneration);
    }
    let in_grace = !r.grace.is_zero() && now.saturating_sub(session.rotated_at) <= ms(r.grace);
    if r.generation.checked_add(1) == Some(current) && in_grace {
        return RotateOutcome::Grace { generation: current };
    }
    session.revoked = true;
    user.revoke_sid(r.sid, now.saturating_add(ms(r.access_window)));
    RotateOutcome::ReuseDetected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_and_swept() {
        let store = MemoryStore::with_max_entries(3);
        let far = crate::clock::now_secs() + 3600;
        for jti in ["a", "b", "c"] {
            store.deny_token("u", jti, far).await.unwrap();
        }
        assert!(
            store.deny_token("u", "d", far).await.is_err(),
            "full: refuses rather than forgets"
        );
        // Entries that expire are swept and make room.
        let store = MemoryStore::with_max_entries(2);
        store
            .revoke_session("u", "s1", Duration::from_millis(50))
            .await
            .unwrap();
        store
            .revoke_session("u", "s2", Duration::from_millis(50))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        store
            .revoke_session("u", "s3", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn one_user_cannot_touch_another() {
        let store = MemoryStore::new();
        let t = TokenRef {
            sub: "alice",
            sid: "s",
            jti: "j",
            iat: crate::clock::now_secs(),
        };
        store
            .revoke_session("mallory", "s", Duration::from_secs(60))
            .await
            .unwrap();
        store
            .deny_token("mallory", "j", crate::clock::now_secs() + 60)
            .await
            .unwrap();
        assert_eq!(store.check(t).await.unwrap(), TokenStatus::Active);
    }
}
