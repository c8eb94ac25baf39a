//! One user's state in the memory store: sessions, revocation markers, epoch and
//! not-before, and the rotation state machine applied to them.

use std::collections::HashMap;

use crate::clock::ms;
use crate::error::{StoreError, StoreErrorKind};
use crate::store::{
    held_back, not_before_after, Grant, MarkPolicy, NewSession, RejectReason, RotateOutcome, Rotation,
    SessionInfo, TokenRef, TokenStatus, MAX_MINT_AHEAD,
};

/// The second after `now_ms`: the not-before that ends every token issued up to now.
fn next_second(now_ms: u64) -> u64 {
    now_ms / 1000 + 1
}

/// `added − removed`, as the store's entry count moves.
pub(super) fn delta(added: usize, removed: usize) -> isize {
    isize::try_from(added).unwrap_or(isize::MAX) - isize::try_from(removed).unwrap_or(isize::MAX)
}

/// Everything of one user, like the Redis store's per-user hash tag: one user's calls
/// never touch another user's state.
#[derive(Debug, Default)]
pub(super) struct User {
    /// Bumped by logout-all; sessions remember the epoch they started in.
    epoch: u64,
    /// (not-before in seconds, kept until ms).
    nbf: Option<(u64, u64)>,
    sessions: HashMap<String, Session>,
    /// jti → its denylisting.
    deny: HashMap<String, Marker>,
    /// sid → the revocation of its access tokens.
    sidrev: HashMap<String, Marker>,
}

/// A revocation marker.
#[derive(Clone, Copy, Debug)]
pub(super) struct Marker {
    /// Rejecting until (ms).
    until: u64,
    /// The not-before that would end every token it stops (seconds): past the clock when
    /// written by `MAX_MINT_AHEAD` and a second, as a token of the session minted meanwhile
    /// may carry an `iat` that far ahead.
    covered_by: u64,
    /// When it was written (ms): the oldest is folded first, as in the Redis store.
    written: u64,
}

/// Which kind of revocation marker.
#[derive(Clone, Copy)]
pub(super) enum Mark<'a> {
    /// One access token, by `jti`.
    Deny(&'a str),
    /// A session's access tokens, by `sid`.
    Session(&'a str),
}

impl User {
    /// Entries this user holds (sessions and markers).
    pub(super) fn len(&self) -> usize {
        self.sessions.len() + self.marks()
    }

    /// Whether the user holds nothing worth keeping (with no sessions left, the epoch has
    /// nothing to compare against).
    pub(super) fn is_idle(&self) -> bool {
        self.len() == 0 && self.nbf.is_none()
    }

    /// The revocation state of one of this user's tokens at `now`.
    pub(super) fn status(&self, t: TokenRef<'_>, now: u64) -> TokenStatus {
        if self.deny.get(t.jti).is_some_and(|m| m.until > now) {
            return TokenStatus::Denied;
        }
        if self.sidrev.get(t.sid).is_some_and(|m| m.until > now) {
            return TokenStatus::SessionRevoked;
        }
        if self.nbf.is_some_and(|(nbf, until)| until > now && t.iat < nbf) {
            return TokenStatus::UserLoggedOut;
        }
        TokenStatus::Active
    }

    /// Drops whatever has expired at `now`; returns how many entries went.
    pub(super) fn purge(&mut self, now: u64) -> usize {
        let before = self.len();
        self.sessions.retain(|_, s| s.expires() > now);
        self.deny.retain(|_, m| m.until > now);
        self.sidrev.retain(|_, m| m.until > now);
        if self.nbf.is_some_and(|(_, until)| until <= now) {
            self.nbf = None;
        }
        before - self.len()
    }

    /// Starts a session, first ending those beyond the cap; `room`: the store can hold one
    /// more entry. Returns the grant and the change in entries; an error when full, or when
    /// the not-before is past `n.latest_not_before` (nothing changed).
    pub(super) fn create(
        &mut self,
        n: &NewSession<'_>,
        room: bool,
        now: u64,
    ) -> Result<(Grant, isize), StoreError> {
        if self.not_before(now) > n.latest_not_before {
            return Err(held_back());
        }
        let removed = self.make_room(n.max_per_user, now);
        if !room && removed == 0 {
            return Err(StoreError::new(StoreErrorKind::Full, "memory store is full"));
        }
        let session = Session {
            generation: 0,
            revoked: false,
            created: now,
            abs_exp: now.saturating_add(ms(n.absolute)),
            idle: n.idle.map(ms),
            last_used: now,
            rotated_at: 0,
            epoch: self.epoch,
        };
        let grant = session.grant(self.not_before(now));
        let added = usize::from(self.sessions.insert(n.sid.to_owned(), session).is_none());
        Ok((grant, delta(added, removed)))
    }

    /// Marks an active session revoked; returns whether it was (an unknown one is left
    /// alone by the caller).
    pub(super) fn revoke(&mut self, sid: &str, now: u64) -> bool {
        let epoch = self.epoch;
        match self.sessions.get_mut(sid) {
            Some(session) if !session.revoked && session.epoch == epoch && session.expires() > now => {
                session.revoked = true;
                true
            }
            _ => false,
        }
    }

    /// Whether `sid` is one of this user's stored sessions (active or a tombstone).
    /// Expired ones not yet swept count as gone, as their Redis keys would be.
    pub(super) fn has_session(&self, sid: &str, now: u64) -> bool {
        self.sessions.get(sid).is_some_and(|s| s.expires() > now)
    }

    /// Logout everywhere: sessions die at their next refresh, access tokens at once.
    pub(super) fn revoke_all(&mut self, now: u64, window: u64) {
        self.epoch += 1;
        let nbf = not_before_after(now, self.not_before(now));
        self.cover(nbf, now, window);
    }

    /// The active sessions.
    pub(super) fn sessions(&self, now: u64) -> Vec<SessionInfo> {
        self.sessions
            .iter()
            .filter(|(_, x)| !x.revoked && x.epoch == self.epoch && x.expires() > now)
            .map(|(sid, x)| x.info(sid))
            .collect()
    }

    fn marks(&self) -> usize {
        self.deny.len() + self.sidrev.len()
    }

    /// Records `mark` until `until`. With no room for it (this user's cap, or `room` false
    /// because the store is full), the user's oldest marker is folded into the not-before
    /// first: raised to what covers it, which ends every token it stopped (and only tokens
    /// about as old). With none to fold, the not-before is raised to what this marker would
    /// cover (three seconds past now), ending every access token of the user issued so far
    /// or being minted. Nothing is forgotten and nothing grows.
    /// Returns the change in entries.
    pub(super) fn mark(
        &mut self,
        mark: Mark<'_>,
        until: u64,
        policy: MarkPolicy,
        room: bool,
        now: u64,
    ) -> isize {
        let covered_by = next_second(now) + MAX_MINT_AHEAD.as_secs();
        if let Some(e) = self.marker(mark) {
            e.until = e.until.max(until);
            e.covered_by = covered_by;
            e.written = now;
            return 0;
        }
        let before = self.marks();
        if before >= policy.max_per_user {
            self.deny.retain(|_, m| m.until > now);
            self.sidrev.retain(|_, m| m.until > now);
        }
        let mut removed = before - self.marks();
        let window = ms(policy.window);
        if policy.max_per_user > 0 && (!room || self.marks() >= policy.max_per_user) {
            removed += usize::from(self.fold_oldest(now, window));
        }
        if (room || removed > 0) && self.marks() < policy.max_per_user {
            let marker = Marker {
                until,
                covered_by,
                written: now,
            };
            match mark {
                Mark::Deny(jti) => self.deny.insert(jti.to_owned(), marker),
                Mark::Session(sid) => self.sidrev.insert(sid.to_owned(), marker),
            };
            delta(1, removed)
        } else {
            // Every token of the user so far, and every one a mint may be waiting to issue.
            self.cover(covered_by, now, window);
            delta(0, removed)
        }
    }

    /// Folds the oldest marker into the not-before (raised to what covers it: for a marker
    /// younger than the mint lead, ahead of the clock, so a mint already waiting is caught
    /// too); whether there was one.
    fn fold_oldest(&mut self, now: u64, window: u64) -> bool {
        let oldest = |map: &HashMap<String, Marker>| {
            map.iter()
                .min_by_key(|(_, m)| m.written)
                .map(|(k, m)| (k.clone(), m.written))
        };
        let folded = match (oldest(&self.deny), oldest(&self.sidrev)) {
            (Some(d), Some(s)) if s.1 < d.1 => self.sidrev.remove(&s.0),
            (Some(d), _) => self.deny.remove(&d.0),
            (None, Some(s)) => self.sidrev.remove(&s.0),
            (None, None) => None,
        };
        let Some(folded) = folded else {
            return false;
        };
        self.cover(folded.covered_by, now, window);
        true
    }

    fn marker(&mut self, mark: Mark<'_>) -> Option<&mut Marker> {
        match mark {
            Mark::Deny(jti) => self.deny.get_mut(jti),
            Mark::Session(sid) => self.sidrev.get_mut(sid),
        }
    }

    /// Sets the not-before to `nbf` (never lowered), kept for at least `window` ms.
    fn cover(&mut self, nbf: u64, now: u64, window: u64) {
        let nbf = nbf.max(self.not_before(now));
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

/// The rotation state machine (DESIGN.md "Rotation"), applied under the lock. On reuse the
/// caller adds the session's revocation marker.
/// The rotation state machine; `Err` (changing nothing) when a grant would carry a
/// not-before past `r.latest_not_before`.
pub(super) fn rotate(user: &mut User, r: &Rotation<'_>, now: u64) -> Result<RotateOutcome, StoreError> {
    let rejected = |reason| Ok(RotateOutcome::Rejected(reason));
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
    let held = not_before > r.latest_not_before;
    if r.generation == current {
        if held {
            return Err(held_back());
        }
        session.generation += 1;
        session.rotated_at = now;
        session.last_used = now;
        return Ok(RotateOutcome::Rotated(session.grant(not_before)));
    }
    if r.generation > current {
        return rejected(RejectReason::FutureGeneration);
    }
    let in_grace = !r.grace.is_zero() && now.saturating_sub(session.rotated_at) <= ms(r.grace);
    if r.generation.checked_add(1) == Some(current) && in_grace {
        if held {
            return Err(held_back());
        }
        return Ok(RotateOutcome::Grace(session.grant(not_before)));
    }
    session.revoked = true;
    Ok(RotateOutcome::ReuseDetected)
}
