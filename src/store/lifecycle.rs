//! The session lifecycle a store keeps: login, rotation, revocation, listing.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::RevocationStore;
use crate::error::StoreError;

/// A session to start at login.
#[derive(Clone, Copy, Debug)]
pub struct NewSession<'a> {
    /// The user.
    pub sub: &'a str,
    /// The new session id (random).
    pub sid: &'a str,
    /// Absolute lifetime: the session never outlives `now + absolute`.
    pub absolute: Duration,
    /// Idle timeout: the session ends when not refreshed for this long.
    pub idle: Option<Duration>,
    /// Most sessions one user may hold (active or revoked): starting one more ends the one
    /// ending soonest, so one account cannot fill the store.
    pub max_per_user: usize,
    /// The latest not-before the grant may carry (seconds): see [`Grant::not_before`].
    pub latest_not_before: u64,
}

/// How far a burst of logout-everywhere may push a user's not-before ahead of the clock
/// (each one in the same second moves it a second further). Sessions never mint a token
/// ahead of their own clock (they wait a moment for the not-before, or answer 503), so the
/// cap loses nothing; the revocation windows below still add it, as a margin for instances
/// whose clocks disagree.
pub const MAX_NOT_BEFORE_LEAD: Duration = Duration::from_secs(10);

/// A token's `iat` is at most this far past the second its store call (login or refresh)
/// started: sessions wait for a not-before up to this far ahead and refuse beyond (503). A
/// revocation marker counts on it: the not-before that covers every token it stops, even one
/// of the session minted meanwhile, is the second it was written plus this plus one.
pub(crate) const MAX_MINT_AHEAD: Duration = Duration::from_secs(2);

/// How revocation markers are sized and bounded; passed with every write that may add one
/// (a denylisted token, a revoked session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkPolicy {
    /// How long a revoked session's (or user's) access tokens must stay rejected: access
    /// lifetime + leeway + [`MAX_NOT_BEFORE_LEAD`] + one second, which covers the latest `iat`
    /// any of them can carry.
    pub window: Duration,
    /// Most markers one user may hold at once. With no room for one more (this cap, or a
    /// full store), the store folds the user's oldest marker into the not-before: raised to
    /// what covers that marker (three seconds past the second it was written: for a young
    /// marker, ahead of the clock, so a mint already waiting is caught too), ending the
    /// user's access tokens about as old, never sessions. Nothing is forgotten, and one
    /// account cannot fill the store. With a cap of 0 the not-before is raised three
    /// seconds past now at every revocation.
    pub max_per_user: usize,
}

/// One refresh attempt.
#[derive(Clone, Copy, Debug)]
pub struct Rotation<'a> {
    /// The user, from the refresh token.
    pub sub: &'a str,
    /// The session, from the refresh token.
    pub sid: &'a str,
    /// The generation the presented refresh token carries.
    pub generation: u64,
    /// How long the immediately previous generation is still answered (0 disables).
    pub grace: Duration,
    /// The revocation marker written when reuse is detected.
    pub marks: MarkPolicy,
    /// The latest not-before a grant may carry (seconds): see [`Grant::not_before`].
    pub latest_not_before: u64,
}

/// What a store answers when a session may be handed a token pair, read in the same
/// atomic step as the change it made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The session's current refresh-token generation: the one to hand out.
    pub generation: u64,
    /// When the session ends at the latest (its absolute lifetime), ms since the epoch.
    pub session_end_ms: u64,
    /// The user's not-before (seconds; 0 when none). The access token minted now gets an
    /// `iat` no earlier, so a login just after logout-all, in the same second, is not born
    /// revoked.
    ///
    /// A store grants nothing with a not-before past the caller's `latest_not_before`
    /// (sessions ask for two seconds past the start of their call, which markers count
    /// on, see [`MarkPolicy::max_per_user`]): it changes nothing then, and answers
    /// [`held_back`], so the client's retry finds its refresh token unspent.
    pub not_before: u64,
}

/// What a rotation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The presented token was current; the session moved to the grant's generation.
    Rotated(Grant),
    /// The presented token was the previous one, within the grace window: nothing was
    /// written; the grant carries the current generation (re-issue that refresh token).
    Grace(Grant),
    /// An old token was replayed: the session and its live access tokens were revoked.
    ReuseDetected,
    /// The token cannot be used; nothing changed (or an expired session was ended).
    Rejected(RejectReason),
}

/// Why a refresh was refused without reuse detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// No such session (never existed, or expired and gone).
    Missing,
    /// The session was revoked.
    Revoked,
    /// Past the absolute lifetime.
    Expired,
    /// Idle for longer than the idle timeout.
    Idle,
    /// The user logged out everywhere after this session started.
    UserLoggedOut,
    /// A generation newer than the current one: never issued.
    FutureGeneration,
}

/// A session as listed for "your devices".
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    /// Session id.
    pub sid: String,
    /// Created, ms since the Unix epoch.
    pub created_ms: u64,
    /// Last refreshed (or created), ms since the Unix epoch.
    pub last_used_ms: u64,
    /// When it ends unless refreshed (absolute lifetime or idle timeout), ms since the epoch.
    pub expires_ms: u64,
    /// Current refresh-token generation.
    pub generation: u64,
}

/// Storage for sessions and revocations: the [`RevocationStore`] check plus the session
/// lifecycle behind [`Sessions`](crate::Sessions).
///
/// Implementations must make each method atomic and must never scan; the rotation state
/// machine is the one in DESIGN.md ("Rotation"). [`MemoryStore`](super::MemoryStore) and
/// `RedisStore` implement exactly the same semantics, which the conformance suite checks.
pub trait SessionStore: RevocationStore {
    /// Starts a session at generation 0, first ending the user's sessions ending soonest
    /// beyond [`NewSession::max_per_user`] − 1.
    fn create_session<'a>(&'a self, session: NewSession<'a>) -> BoxFuture<'a, Result<Grant, StoreError>>;

    /// Rotates a session's refresh token, atomically.
    fn rotate<'a>(&'a self, rotation: Rotation<'a>) -> BoxFuture<'a, Result<RotateOutcome, StoreError>>;

    /// Denylists one access token for `ttl` (until its `exp` plus leeway), bounded by
    /// `marks.max_per_user`. Relative, so no second clock takes part.
    fn deny_token<'a>(
        &'a self,
        sub: &'a str,
        jti: &'a str,
        ttl: Duration,
        marks: MarkPolicy,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Revokes one session and, for `marks.window`, its access tokens. Returns whether an
    /// active session was found. An unknown `sid` writes nothing.
    fn revoke_session<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        marks: MarkPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Ends every session of `sub` and rejects every access token issued up to now, for
    /// `window` (as [`MarkPolicy::window`]).
    fn revoke_all<'a>(&'a self, sub: &'a str, window: Duration) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The user's active sessions.
    fn sessions<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Vec<SessionInfo>, StoreError>>;
}

/// The order every store lists sessions in: most recently used first.
pub(crate) fn sort_sessions(list: &mut [SessionInfo]) {
    list.sort_by(|a, b| {
        b.last_used_ms
            .cmp(&a.last_used_ms)
            .then_with(|| a.sid.cmp(&b.sid))
    });
}

/// The not-before a logout-all stores: tokens with `iat < nbf` are rejected. Never lowered.
///
/// `iat` has one-second resolution, so a token issued earlier in the same second must die
/// too: not-before is at least the *next* second. Sessions mint no token ahead of their
/// clock (with the not-before ahead, they wait for it, see [`Grant::not_before`]), but a
/// mint may be waiting for the current value right now: the logout-all also moves past it.
/// A burst of them pushes a second further each, up to [`MAX_NOT_BEFORE_LEAD`] ahead of now
/// (past it, no mint waits: sessions refuse one more than [`MAX_MINT_AHEAD`] ahead).
///
/// Revocations past the marker cap raise it differently (to what covers the folded marker,
/// see [`MarkPolicy::max_per_user`]).
pub(crate) fn not_before_after(now_ms: u64, current: u64) -> u64 {
    let now = now_ms / 1000;
    let past = current.saturating_add(1).min(now + MAX_NOT_BEFORE_LEAD.as_secs());
    (now + 1).max(past).max(current)
}

/// The answer of a store asked for a grant while the not-before is past the caller's
/// `latest_not_before` ([`StoreErrorKind::Unavailable`](crate::StoreErrorKind::Unavailable)):
/// a burst of revocations just now holds new tokens back a moment.
pub fn held_back() -> StoreError {
    StoreError::new(
        crate::StoreErrorKind::Unavailable,
        "revoked moments ago: new tokens are held back; retry in a few seconds",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_logout_all_moves_past_the_current_value_up_to_the_lead() {
        let now = 1_000_500;
        let mut nbf = not_before_after(now, 0);
        assert_eq!(nbf, 1_001);
        nbf = not_before_after(now, nbf);
        assert_eq!(nbf, 1_002);
        for _ in 0..50 {
            nbf = not_before_after(now, nbf);
        }
        assert_eq!(nbf, 1_000 + MAX_NOT_BEFORE_LEAD.as_secs());
        // Never lowered; a second later, one more moves it on from where it is.
        assert_eq!(not_before_after(now, 2_000), 2_000);
        assert_eq!(not_before_after(now + 1_000, nbf), nbf + 1);
    }
}
