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
    /// jti → denied until (ms).
    deny: HashMap<String, u64>,
    /// sid → access tokens rejected until (ms).
    sidrev: HashMap<String, u64>,
    sessions: usize,
    writes: u32,
}

#[derive(Debug, Default)]
struct User {
    /// Bumped by logout-all; sessions remember the epoch they started in.
    epoch: u64,
    /// (not-before in seconds, kept until ms).
    nbf: Option<(u64, u64)>,
    sessions: HashMap<String, Session>,
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
        self.idle
            .map_or(self.abs_exp, |idle| self.abs_exp.min(self.last_used + idle))
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
        let s = self.lock();
        s.sessions + s.deny.len() + s.sidrev.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: every
        // mutation below is a single insert/update. Keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status(&self, t: TokenRef<'_>) -> TokenStatus {
        let now = now_ms();
        let s = self.lock();
        if s.deny.get(t.jti).is_some_and(|&until| until > now) {
            return TokenStatus::Denied;
        }
        if s.sidrev.get(t.sid).is_some_and(|&until| until > now) {
            return TokenStatus::SessionRevoked;
        }
        let nbf = s
            .users
            .get(t.sub)
            .and_then(|u| u.nbf)
            .filter(|&(_, until)| until > now);
        if nbf.is_some_and(|(nbf, _)| t.iat < nbf) {
            return TokenStatus::UserLoggedOut;
        }
        TokenStatus::Active
    }

    /// Makes room for one more entry, sweeping when due or when full.
    fn admit(&self, s: &mut State, now: u64) -> Result<(), StoreError> {
        s.writes = s.writes.wrapping_add(1);
        let full = s.sessions + s.deny.len() + s.sidrev.len() >= self.max_entries;
        if full || s.writes % SWEEP_EVERY == 0 {
            s.sweep(now);
        }
        if s.sessions + s.deny.len() + s.sidrev.len() >= self.max_entries {
            return Err(StoreError::new("memory store is full"));
        }
        Ok(())
    }
}

impl State {
    fn sweep(&mut self, now: u64) {
        self.deny.retain(|_, until| *until > now);
        self.sidrev.retain(|_, until| *until > now);
        let mut sessions = 0;
        self.users.retain(|_, u| {
            u.sessions.retain(|_, s| s.expires() > now);
            sessions += u.sessions.len();
            if u.nbf.is_some_and(|(_, until)| until <= now) {
                u.nbf = None;
            }
            // The epoch only matters to sessions that exist; with none left it can go.
            !u.sessions.is_empty() || u.nbf.is_some()
        });
        self.sessions = sessions;
    }

    fn revoke_sid(&mut self, sid: &str, until: u64) {
        let e = self.sidrev.entry(sid.to_owned()).or_insert(0);
        *e = (*e).max(until);
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
        let mut s = self.lock();
        let result = self.admit(&mut s, now).map(|()| {
            let user = s.users.entry(n.sub.to_owned()).or_default();
            let session = Session {
                generation: 0,
                revoked: false,
                created: now,
                abs_exp: now + ms(n.absolute),
                idle: n.idle.map(ms),
                last_used: now,
                rotated_at: 0,
                epoch: user.epoch,
            };
            let info = session.info(n.sid);
            if user.sessions.insert(n.sid.to_owned(), session).is_none() {
                s.sessions += 1;
            }
            info
        });
        ready(result)
    }

    fn rotate(&self, r: Rotation<'_>) -> impl Future<Output = Result<RotateOutcome, StoreError>> + Send {
        let now = now_ms();
        let mut s = self.lock();
        let outcome = rotate(&mut s, &r, now);
        ready(Ok(outcome))
    }

    fn deny_token(
        &self,
        _sub: &str,
        jti: &str,
        until_secs: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let now = now_ms();
        let until = until_secs.saturating_mul(1000);
        let mut s = self.lock();
        let result = if until <= now {
            Ok(()) // already expired: nothing to remember
        } else {
            self.admit(&mut s, now).map(|()| {
                s.deny.insert(jti.to_owned(), until);
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
        let mut s = self.lock();
        let result = self.admit(&mut s, now).map(|()| {
            s.revoke_sid(sid, now + ms(access_window));
            match s.users.get_mut(sub).and_then(|u| u.sessions.get_mut(sid)) {
                Some(session) if !session.revoked && session.expires() > now => {
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
        let user = s.users.entry(sub.to_owned()).or_default();
        user.epoch += 1;
        let nbf = not_before_after(now);
        let until = now + ms(access_window);
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
        list.sort_by(|a, b| {
            b.last_used_ms
                .cmp(&a.last_used_ms)
                .then_with(|| a.sid.cmp(&b.sid))
        });
        ready(Ok(list))
    }
}

/// The rotation state machine (DESIGN.md "Rotation"), applied under the lock.
fn rotate(s: &mut State, r: &Rotation<'_>, now: u64) -> RotateOutcome {
    let Some(user) = s.users.get_mut(r.sub) else {
        return RotateOutcome::Rejected(RejectReason::Missing);
    };
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
    if r.generation + 1 == current
        && now.saturating_sub(session.rotated_at) <= ms(r.grace)
        && !r.grace.is_zero()
    {
        return RotateOutcome::Grace { generation: current };
    }
    session.revoked = true;
    s.revoke_sid(r.sid, now + ms(r.access_window));
    RotateOutcome::ReuseDetected
}
