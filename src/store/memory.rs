//! The in-process store: the embedded default for one process, tests and development.

use std::collections::HashMap;
use std::future::ready;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{
    not_before_after, Grant, MarkPolicy, NewSession, RejectReason, RevocationStore, RotateOutcome, Rotation,
    SessionInfo, SessionStore, TokenRef, TokenStatus,
};
use crate::clock::{ms, now_ms};
use crate::error::{StoreError, StoreErrorKind};

/// Default bound on stored entries (sessions + denylisted tokens + revoked sessions).
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// How many writes between sweeps of expired entries.
const SWEEP_EVERY: u32 = 1024;

/// When full, how long before another full sweep is tried (ms): a full store answers writes
/// with an error at once instead of rescanning everything under the lock each time.
const FULL_SWEEP_EVERY_MS: u64 = 1000;

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
    /// When the last sweep ran (ms).
    swept_at: u64,
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

/// Which kind of revocation marker.
#[derive(Clone, Copy)]
enum Mark<'a> {
    /// One access token, by `jti`.
    Deny(&'a str),
    /// A session's access tokens, by `sid`.
    Session(&'a str),
}

impl User {
    fn len(&self) -> usize {
        self.sessions.len() + self.marks()
    }

    fn marks(&self) -> usize {
        self.deny.len() + self.sidrev.len()
    }

    /// Records `mark` until `until`, or, with no room for it (this user's cap, or `room` false
    /// because the store is full), raises the not-before instead, which rejects every access
    /// token issued so far: nothing is forgotten and nothing grows. Returns the change in
    /// entries.
    fn mark(&mut self, mark: Mark<'_>, until: u64, policy: MarkPolicy, room: bool, now: u64) -> isize {
        if let Some(e) = self.marker(mark) {
            *e = (*e).max(until);
            return 0;
        }
        let before = self.marks();
        if before >= policy.max_per_user {
            self.deny.retain(|_, u| *u > now);
            self.sidrev.retain(|_, u| *u > now);
        }
        let removed = isize::try_from(before - self.marks()).unwrap_or(isize::MAX);
        if room && self.marks() < policy.max_per_user {
            match mark {
                Mark::Deny(jti) => self.deny.insert(jti.to_owned(), until),
                Mark::Session(sid) => self.sidrev.insert(sid.to_owned(), until),
            };
            1 - removed
        } else {
            self.raise_not_before(now, ms(policy.window));
            -removed
        }
    }

    fn marker(&mut self, mark: Mark<'_>) -> Option<&mut u64> {
        match mark {
            Mark::Deny(jti) => self.deny.get_mut(jti),
            Mark::Session(sid) => self.sidrev.get_mut(sid),
        }
    }

    /// Rejects every access token issued up to `now` for `window` ms (logout-all does this
    /// and bumps the epoch too).
    fn raise_not_before(&mut self, now: u64, window: u64) {
        let nbf = not_before_after(now, self.not_before(now));
        let until = now.saturating_add(window);
        let until = self.nbf.map_or(until, |(_, old_until)| old_until.max(until));
        self.nbf = Some((nbf, until));
    }

    /// The not-before in force at `now` (0 when none).
    fn not_before(&self, now: u64) -> u64 {
        self.nbf
            .map_or(0, |(nbf, until)| if until > now { nbf } else { 0 })
    }

    /// Ends the sessions that would leave no room for one more under `max` (expired ones
    /// first, then those ending soonest, as the Redis store's listing zset orders them);
    /// returns how many entries it removed.
    fn make_room(&mut self, max: usize, now: u64) -> usize {
        let max = max.max(1);
        let before = self.sessions.len();
        if before < max {
            return 0;
        }
        self.sessions.retain(|_, s| s.expires() > now);
        while self.sessions.len() >= max {
            let Some(sid) = self
                .sessions
                .iter()
                .min_by(|a, b| (a.1.expires(), a.0).cmp(&(b.1.expires(), b.0)))
                .map(|(sid, _)| sid.clone())
            else {
                break;
            };
            self.sessions.remove(&sid);
        }
        before - self.sessions.len()
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

    /// What the store answers for this session, with the user's `not_before`.
    fn grant(&self, not_before: u64) -> Grant {
        Grant {
            generation: self.generation,
            session_end_ms: self.abs_exp,
            not_before,
        }
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

    /// Whether there is room for one more entry (sweeping when due, or when full at most
    /// once a second); the caller adjusts `entries` by what it inserts.
    fn has_room(&self, s: &mut State, now: u64) -> bool {
        s.writes = s.writes.wrapping_add(1);
        let full = s.entries >= self.max_entries;
        if (full && now.saturating_sub(s.swept_at) >= FULL_SWEEP_EVERY_MS) || s.writes % SWEEP_EVERY == 0 {
            s.sweep(now);
        }
        s.entries < self.max_entries
    }

    /// [`MemoryStore::has_room`], as the error a full store answers a new session with.
    fn room(&self, s: &mut State, now: u64) -> Result<(), StoreError> {
        if self.has_room(s, now) {
            Ok(())
        } else {
            Err(StoreError::new(StoreErrorKind::Full, "memory store is full"))
        }
    }

    /// Records a revocation marker for `sub` (see [`User::mark`]); never fails for want of
    /// room, so a revocation is never refused.
    fn mark(&self, s: &mut State, sub: &str, mark: Mark<'_>, until: u64, policy: MarkPolicy, now: u64) {
        let room = self.has_room(s, now);
        let delta = s.user(sub).mark(mark, until, policy, room, now);
        s.entries = s.entries.saturating_add_signed(delta);
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
        self.swept_at = now;
    }

    fn user(&mut self, sub: &str) -> &mut User {
        self.users.entry(sub.to_owned()).or_default()
    }
}

/// The operations, answered at once under the lock (the trait impls below wrap them).
impl MemoryStore {
    fn create_now(&self, n: NewSession<'_>) -> Result<Grant, StoreError> {
        let now = now_ms();
        let mut s = self.lock();
        let result = self.room(&mut s, now).map(|()| {
            let user = s.user(n.sub);
            let removed = user.make_room(n.max_per_user, now);
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
            let grant = session.grant(user.not_before(now));
            let added = usize::from(user.sessions.insert(n.sid.to_owned(), session).is_none());
            s.entries = (s.entries + added).saturating_sub(removed);
            grant
        });
        result
    }

    fn rotate_now(&self, r: Rotation<'_>) -> RotateOutcome {
        let now = now_ms();
        let mut s = self.lock();
        let outcome = match s.users.get_mut(r.sub) {
            Some(user) => rotate(user, &r, now),
            None => RotateOutcome::Rejected(RejectReason::Missing),
        };
        if outcome == RotateOutcome::ReuseDetected {
            let until = now.saturating_add(ms(r.marks.window));
            self.mark(&mut s, r.sub, Mark::Session(r.sid), until, r.marks, now);
        }
        outcome
    }

    fn deny_now(&self, sub: &str, jti: &str, ttl: Duration, marks: MarkPolicy) {
        // An expired token has nothing left to deny.
        if !ttl.is_zero() {
            let now = now_ms();
            let mut s = self.lock();
            self.mark(
                &mut s,
                sub,
                Mark::Deny(jti),
                now.saturating_add(ms(ttl)),
                marks,
                now,
            );
        }
    }

    fn revoke_now(&self, sub: &str, sid: &str, marks: MarkPolicy) -> bool {
        let now = now_ms();
        let mut s = self.lock();
        // An unknown sid (never issued, or ended and gone) has nothing to revoke; writing a
        // marker for it would let any caller grow the store at will.
        let Some(user) = s.users.get_mut(sub).filter(|u| u.sessions.contains_key(sid)) else {
            return false;
        };
        let epoch = user.epoch;
        let revoked = match user.sessions.get_mut(sid) {
            Some(session) if !session.revoked && session.epoch == epoch && session.expires() > now => {
                session.revoked = true;
                true
            }
            _ => false,
        };
        let until = now.saturating_add(ms(marks.window));
        self.mark(&mut s, sub, Mark::Session(sid), until, marks, now);
        revoked
    }

    fn revoke_all_now(&self, sub: &str, window: Duration) {
        let now = now_ms();
        let mut s = self.lock();
        let user = s.user(sub);
        user.epoch += 1;
        user.raise_not_before(now, ms(window));
    }

    fn sessions_now(&self, sub: &str) -> Vec<SessionInfo> {
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
}

impl SessionStore for MemoryStore {
    fn create_session<'a>(&'a self, session: NewSession<'a>) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(ready(self.create_now(session)))
    }

    fn rotate<'a>(&'a self, rotation: Rotation<'a>) -> BoxFuture<'a, Result<RotateOutcome, StoreError>> {
        Box::pin(ready(Ok(self.rotate_now(rotation))))
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

/// The rotation state machine (DESIGN.md "Rotation"), applied under the lock. On reuse the
/// caller adds the session's revocation marker.
fn rotate(user: &mut User, r: &Rotation<'_>, now: u64) -> RotateOutcome {
    let rejected = RotateOutcome::Rejected;
    let epoch = user.epoch;
    let not_before = user.not_before(now);
    let Some(session) = user.sessions.get_mut(r.sid) else {
        return rejected(RejectReason::Missing);
    };
    if session.revoked {
        return rejected(RejectReason::Revoked);
    }
    if session.epoch != epoch {
        return rejected(RejectReason::UserLoggedOut);
    }
    if now >= session.expires() {
        let reason = if now >= session.abs_exp {
            RejectReason::Expired
        } else {
            RejectReason::Idle
        };
        session.revoked = true;
        return rejected(reason);
    }
    let current = session.generation;
    if r.generation == current {
        session.generation += 1;
        session.rotated_at = now;
        session.last_used = now;
        return RotateOutcome::Rotated(session.grant(not_before));
    }
    if r.generation > current {
        return rejected(RejectReason::FutureGeneration);
    }
    let in_grace = !r.grace.is_zero() && now.saturating_sub(session.rotated_at) <= ms(r.grace);
    if r.generation.checked_add(1) == Some(current) && in_grace {
        return RotateOutcome::Grace(session.grant(not_before));
    }
    session.revoked = true;
    RotateOutcome::ReuseDetected
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
        // A revocation is never refused for want of room, nor forgotten: the user's
        // not-before rises instead, and nothing is added.
        store.deny_token("u", "d", HOUR, MARKS).await.unwrap();
        assert_eq!(
            store.check(token("u", "d")).await.unwrap(),
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
        assert_eq!(store.state.lock().unwrap().entries, 2);
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn a_full_store_does_not_rescan_on_every_write() {
        let store = MemoryStore::with_max_entries(1);
        store.deny_token("u", "a", HOUR, MARKS).await.unwrap();
        assert!(store.create_session(session("s1", HOUR)).await.is_err());
        let swept_at = store.state.lock().unwrap().swept_at;
        assert!(store.create_session(session("s2", HOUR)).await.is_err());
        assert_eq!(
            store.state.lock().unwrap().swept_at,
            swept_at,
            "no second sweep within a second"
        );
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
