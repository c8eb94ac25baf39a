//! The rotation state machine, case by case, on the in-memory store (the conformance suite
//! runs the store-level cases on Redis too).

#[path = "support/held.rs"]
mod held;
#[path = "support/probe.rs"]
mod probe;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Request, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_jwt_auth::store::{
    Grant, MarkPolicy, NewSession, RevocationStore, RotateOutcome, Rotation, SessionInfo, SessionStore,
    Store, TokenRef, TokenStatus,
};
use tower_jwt_auth::{
    Issuer, JwtAuthLayer, MemoryStore, NoClaims, RefreshSecrets, SessionError, Sessions, SigningKey,
    StoreError,
};

/// A store that counts the calls reaching it.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    calls: AtomicUsize,
}

impl Counting {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl RevocationStore for Counting {
    fn check<'a>(&'a self, t: TokenRef<'a>) -> BoxFuture<'a, Result<TokenStatus, StoreError>> {
        self.hit();
        self.inner.check(t)
    }
}

impl SessionStore for Counting {
    fn create_session<'a>(&'a self, s: NewSession<'a>) -> BoxFuture<'a, Result<Grant, StoreError>> {
        self.hit();
        self.inner.create_session(s)
    }
    fn rotate<'a>(&'a self, r: Rotation<'a>) -> BoxFuture<'a, Result<RotateOutcome, StoreError>> {
        self.hit();
        self.inner.rotate(r)
    }
    fn deny_token<'a>(
        &'a self,
        sub: &'a str,
        jti: &'a str,
        ttl: Duration,
        m: MarkPolicy,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.hit();
        self.inner.deny_token(sub, jti, ttl, m)
    }
    fn revoke_session<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        m: MarkPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.hit();
        self.inner.revoke_session(sub, sid, m)
    }
    fn revoke_all<'a>(&'a self, sub: &'a str, w: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        self.hit();
        self.inner.revoke_all(sub, w)
    }
    fn sessions<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        self.hit();
        self.inner.sessions(sub)
    }
}

fn key() -> SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().unwrap()).clone()
}

fn sessions_with(store: impl Into<Store>, grace: Duration) -> Sessions {
    let secrets = RefreshSecrets::new("k1", &[42u8; 32]).unwrap();
    Sessions::new(Issuer::new(key()), store, secrets).grace(grace)
}

fn sessions(grace: Duration) -> Sessions {
    sessions_with(Arc::new(MemoryStore::new()), grace)
}

/// Status of an access token through the real middleware.
async fn access_status(s: &Sessions, token: &str) -> StatusCode {
    probe::status(&s.auth_layer(), token).await
}

#[tokio::test]
async fn rotate_gives_a_new_pair_and_the_old_token_is_spent() {
    let s = sessions(Duration::ZERO);
    let first = s.login("alice").await.unwrap();
    let second = s.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(first.refresh_token, second.refresh_token);
    assert_ne!(first.access.jti, second.access.jti);
    assert_eq!(first.sid, second.sid);
    // The session's end (the refresh cookie's lifetime) never moves.
    assert_eq!(first.session_end_ms, second.session_end_ms);
    let week_from_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 7 * 24 * 3600 * 1000;
    assert!(first.session_end_ms.abs_diff(week_from_now) < 5_000);
    let third = s.refresh(&second.refresh_token).await.unwrap();
    assert_eq!(access_status(&s, &third.access.token).await, StatusCode::OK);
}

#[tokio::test]
async fn grace_window_answers_the_previous_token_with_the_current_one() {
    let s = sessions(Duration::from_secs(10));
    let first = s.login("alice").await.unwrap();
    let second = s.refresh(&first.refresh_token).await.unwrap();
    // A retry / second tab with the previous token: the *current* refresh token comes back.
    let retry = s.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(retry.refresh_token, second.refresh_token);
    assert_ne!(
        retry.access.jti, second.access.jti,
        "a new access token each time"
    );
    let retry2 = s.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(retry2.refresh_token, second.refresh_token, "grace writes nothing");
    // The current token still rotates normally.
    let third = s.refresh(&second.refresh_token).await.unwrap();
    assert_ne!(third.refresh_token, second.refresh_token);
    // Two generations back is outside the grace rule: reuse.
    assert_eq!(
        s.refresh(&first.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
    assert_eq!(
        s.refresh(&third.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
}

#[tokio::test]
async fn grace_window_ends() {
    let s = sessions(Duration::from_millis(300));
    let first = s.login("alice").await.unwrap();
    let second = s.refresh(&first.refresh_token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.refresh(&first.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
    assert_eq!(
        s.refresh(&second.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant,
        "reuse revoked it"
    );
}

#[tokio::test]
async fn reuse_revokes_the_session_and_its_live_access_tokens() {
    let s = sessions(Duration::ZERO);
    let first = s.login("alice").await.unwrap();
    let second = s.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(access_status(&s, &second.access.token).await, StatusCode::OK);
    // The stolen old token is replayed.
    assert_eq!(
        s.refresh(&first.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
    // The legitimate holder's tokens are dead too, at once.
    assert_eq!(
        s.refresh(&second.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
    assert_eq!(
        access_status(&s, &second.access.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        access_status(&s, &first.access.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(s.list("alice").await.unwrap().is_empty());
    // Other sessions of the user are untouched.
    let other = s.login("alice").await.unwrap();
    assert_eq!(access_status(&s, &other.access.token).await, StatusCode::OK);
}

#[tokio::test]
async fn forged_and_garbage_tokens_never_reach_the_store() {
    let store = Arc::new(Counting::default());
    let s = sessions_with(store.clone(), Duration::ZERO);
    let pair = s.login("alice").await.unwrap();
    let before = store.calls();
    let forged_generation = pair.refresh_token.replacen(".0.", ".1.", 1);
    let other_secret = RefreshSecrets::new("k1", &[1u8; 32]).unwrap();
    let foreign = Sessions::new(Issuer::new(key()), Arc::new(MemoryStore::new()), other_secret)
        .login("alice")
        .await
        .unwrap()
        .refresh_token;
    for bad in [
        "",
        "garbage",
        "rt1.k1.00.x.0.AAAA",
        &forged_generation,
        &foreign,
        &pair.access.token,
    ] {
        assert_eq!(
            s.refresh(bad).await.unwrap_err(),
            SessionError::InvalidGrant,
            "{bad}"
        );
    }
    assert_eq!(
        store.calls(),
        before,
        "no store call for a token that fails its MAC"
    );
    // And the real session is intact.
    assert!(s.refresh(&pair.refresh_token).await.is_ok());
}

#[tokio::test]
async fn future_generation_is_refused_without_revoking() {
    // A token with a higher generation can only be forged with the secret; the store still
    // refuses it and leaves the session alone.
    let store = Arc::new(MemoryStore::new());
    let s = sessions_with(store.clone(), Duration::ZERO);
    let pair = s.login("alice").await.unwrap();
    let r = store
        .rotate(Rotation {
            sub: "alice",
            sid: &pair.sid,
            generation: 5,
            grace: Duration::ZERO,
            marks: MarkPolicy {
                window: Duration::from_secs(960),
                max_per_user: 1000,
            },
            latest_not_before: u64::MAX,
        })
        .await
        .unwrap();
    assert!(matches!(r, RotateOutcome::Rejected(_)), "{r:?}");
    assert!(s.refresh(&pair.refresh_token).await.is_ok());
}

#[tokio::test]
async fn absolute_lifetime_is_never_extended() {
    let s = sessions(Duration::ZERO).absolute_lifetime(Duration::from_millis(1200));
    let mut pair = s.login("alice").await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        pair = s.refresh(&pair.refresh_token).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        s.refresh(&pair.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
}

#[tokio::test]
async fn idle_timeout_ends_unused_sessions() {
    let s = sessions(Duration::ZERO).idle_timeout(Duration::from_millis(400));
    let pair = s.login("alice").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pair = s.refresh(&pair.refresh_token).await.unwrap(); // activity keeps it alive
    tokio::time::sleep(Duration::from_millis(250)).await;
    let pair = s.refresh(&pair.refresh_token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        s.refresh(&pair.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
}

#[tokio::test]
async fn logout_revokes_the_session_and_denylists_the_access_token() {
    let s = sessions(Duration::from_secs(10));
    let pair = s.login("alice").await.unwrap();
    let other = s.login("alice").await.unwrap();
    assert!(s
        .logout(Some(&pair.refresh_token), Some(&pair.access.token))
        .await
        .unwrap());
    assert_eq!(
        s.refresh(&pair.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
    assert_eq!(
        access_status(&s, &pair.access.token).await,
        StatusCode::UNAUTHORIZED
    );
    // Only that session.
    assert_eq!(access_status(&s, &other.access.token).await, StatusCode::OK);
    assert!(s.refresh(&other.refresh_token).await.is_ok());
    // Logging out with just the access token ends its session as well.
    let third = s.login("alice").await.unwrap();
    assert!(s.logout(None, Some(&third.access.token)).await.unwrap());
    assert_eq!(
        s.refresh(&third.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
    // Garbage is ignored, not an error (RFC 7009).
    assert!(!s.logout(Some("garbage"), Some("garbage")).await.unwrap());
}

#[tokio::test]
async fn logout_all_ends_every_session_and_access_token_at_once() {
    let s = sessions(Duration::from_secs(10));
    let a = s.login("alice").await.unwrap();
    let b = s.login("alice").await.unwrap();
    let bob = s.login("bob").await.unwrap();
    assert_eq!(s.list("alice").await.unwrap().len(), 2);
    s.logout_all("alice").await.unwrap();
    for p in [&a, &b] {
        assert_eq!(access_status(&s, &p.access.token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            s.refresh(&p.refresh_token).await.unwrap_err(),
            SessionError::InvalidGrant
        );
    }
    assert!(s.list("alice").await.unwrap().is_empty());
    // Bob is untouched.
    assert_eq!(access_status(&s, &bob.access.token).await, StatusCode::OK);
    // Alice can log in again at once, in the logout's own second: her new access token is
    // issued no earlier than the not-before, so it is not born revoked.
    let fresh = s.login("alice").await.unwrap();
    assert_eq!(access_status(&s, &fresh.access.token).await, StatusCode::OK);
    let next = s.refresh(&fresh.refresh_token).await.unwrap();
    assert_eq!(access_status(&s, &next.access.token).await, StatusCode::OK);
    // Tokens issued before a second logout-all die with it, however close.
    s.logout_all("alice").await.unwrap();
    assert_eq!(
        access_status(&s, &next.access.token).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_login_past_the_per_user_cap_ends_the_oldest_session() {
    let store = Arc::new(MemoryStore::new());
    let s = sessions_with(store.clone(), Duration::ZERO).max_sessions_per_user(2);
    let first = s.login("alice").await.unwrap();
    // Sessions ending in the same millisecond tie (broken by their random ids): keep apart.
    tokio::time::sleep(Duration::from_millis(3)).await;
    let second = s.login("alice").await.unwrap();
    let bob = s.login("bob").await.unwrap();
    let third = s.login("alice").await.unwrap();
    assert_eq!(
        s.refresh(&first.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
    for p in [&second, &third, &bob] {
        assert!(s.refresh(&p.refresh_token).await.is_ok());
    }
    assert_eq!(s.list("alice").await.unwrap().len(), 2);
    assert_eq!(store.len(), 3, "the ended session is gone, not kept");
    // The ended session's access token lives out its short life, unless logged out: with
    // no session left to mark, the token itself is denylisted.
    assert_eq!(access_status(&s, &first.access.token).await, StatusCode::OK);
    assert!(s.logout(None, Some(&first.access.token)).await.unwrap());
    assert_eq!(
        access_status(&s, &first.access.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(store.len(), 4, "one deny entry");
}

#[tokio::test]
async fn sessions_can_be_listed_and_revoked_by_id() {
    let s = sessions(Duration::ZERO);
    let a = s.login("alice").await.unwrap();
    let b = s.login("alice").await.unwrap();
    let list = s.list("alice").await.unwrap();
    let mut ids: Vec<&str> = list.iter().map(|i| i.sid.as_str()).collect();
    ids.sort();
    let mut expected = vec![a.sid.as_str(), b.sid.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(list
        .iter()
        .all(|i| i.expires_ms > i.created_ms && i.last_used_ms >= i.created_ms));
    assert!(s.revoke("alice", &a.sid).await.unwrap());
    assert!(!s.revoke("alice", &a.sid).await.unwrap(), "already revoked");
    assert!(!s.revoke("bob", &b.sid).await.unwrap(), "not bob's session");
    assert_eq!(access_status(&s, &a.access.token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(access_status(&s, &b.access.token).await, StatusCode::OK);
    assert_eq!(s.list("alice").await.unwrap().len(), 1);
}

async fn race(grace: Duration) -> (Sessions, Vec<Result<String, SessionError>>) {
    let s = sessions(grace);
    let pair = s.login("alice").await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (s, token, barrier) = (s.clone(), pair.refresh_token.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.refresh(&token).await.map(|p| p.refresh_token)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    (s, results)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_refreshes_rotate_once_with_grace() {
    let (s, results) = race(Duration::from_secs(10)).await;
    let ok: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 50, "with grace every racer gets an answer: {results:?}");
    let distinct: std::collections::HashSet<&String> = ok.iter().copied().collect();
    assert_eq!(distinct.len(), 1, "exactly one rotation: one live refresh token");
    let live = distinct.into_iter().next().unwrap();
    assert_eq!(
        s.list("alice").await.unwrap()[0].generation,
        1,
        "the session rotated exactly once"
    );
    assert!(s.refresh(live).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_refreshes_rotate_once_without_grace() {
    let (s, results) = race(Duration::ZERO).await;
    let ok: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 1, "exactly one rotation");
    assert!(results
        .iter()
        .filter(|r| r.is_err())
        .all(|r| *r.as_ref().unwrap_err() == SessionError::InvalidGrant));
    // Without grace the losers look like replays: the session is revoked, so no refresh
    // token is live at all (never more than one).
    assert_eq!(s.refresh(ok[0]).await.unwrap_err(), SessionError::InvalidGrant);
}

#[tokio::test]
async fn grace_is_capped_at_sixty_seconds() {
    let s = sessions(Duration::from_secs(3600));
    assert!(format!("{s:?}").contains("grace: 60s"), "{s:?}");
}

#[tokio::test]
async fn rotating_the_refresh_secret_moves_sessions_to_the_new_one() {
    let store = Arc::new(MemoryStore::new());
    let old = sessions_with(store.clone(), Duration::from_secs(10));
    let first = old.login("alice").await.unwrap();
    assert!(first.refresh_token.starts_with("rt1.k1."));

    let secrets = RefreshSecrets::new("k2", &[7u8; 32])
        .unwrap()
        .with_previous("k1", &[42u8; 32])
        .unwrap();
    let rotated = Sessions::new(Issuer::new(key()), store.clone(), secrets).grace(Duration::from_secs(10));
    let second = rotated.refresh(&first.refresh_token).await.unwrap();
    assert!(
        second.refresh_token.starts_with("rt1.k2."),
        "{}",
        second.refresh_token
    );
    // The grace answer comes under the current secret too.
    let retry = rotated.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(retry.refresh_token, second.refresh_token);

    // Once k1 is retired entirely, the session lives on.
    let only_new = Sessions::new(
        Issuer::new(key()),
        store,
        RefreshSecrets::new("k2", &[7u8; 32]).unwrap(),
    );
    let third = only_new.refresh(&second.refresh_token).await.unwrap();
    assert_eq!(third.sid, first.sid);
}

#[tokio::test]
async fn zero_idle_timeout_means_none_and_huge_settings_are_clamped() {
    let s = sessions(Duration::ZERO)
        .idle_timeout(Duration::ZERO)
        .absolute_lifetime(Duration::MAX)
        .leeway(Duration::MAX);
    let first = s.login("alice").await.unwrap();
    let second = s.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(access_status(&s, &second.access.token).await, StatusCode::OK);
    let listed = s.list("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    s.logout_all("alice").await.unwrap();
    assert_eq!(
        s.refresh(&second.refresh_token).await.unwrap_err(),
        SessionError::InvalidGrant
    );
}

#[tokio::test]
async fn configuring_a_clone_leaves_the_original_alone() {
    let original = sessions(Duration::from_secs(10));
    let copy = original.clone();
    let changed = copy
        .grace(Duration::ZERO)
        .claims_provider(|_sub: String| async { Some(NoClaims {}) });
    assert!(format!("{original:?}").contains("grace: 10s"), "{original:?}");
    assert!(format!("{changed:?}").contains("grace: 0ns"), "{changed:?}");
}

#[tokio::test]
async fn logging_out_with_revoked_tokens_writes_nothing() {
    // Log in once, refresh many times keeping every access token, log out with each: the
    // first logout ends the session, the other tokens are already dead and add nothing.
    let store = Arc::new(MemoryStore::new());
    let s = sessions_with(store.clone(), Duration::ZERO);
    let mut pair = s.login("mallory").await.unwrap();
    let mut tokens = vec![pair.access.token.clone()];
    for _ in 0..50 {
        pair = s.refresh(&pair.refresh_token).await.unwrap();
        tokens.push(pair.access.token.clone());
    }
    let before = store.len();
    let mut revoked = 0;
    for t in &tokens {
        revoked += usize::from(s.logout(None, Some(t)).await.unwrap());
    }
    assert_eq!(revoked, 1, "only the first logout found anything to revoke");
    assert!(
        store.len() <= before + 2,
        "{} entries after {before}",
        store.len()
    );
    for t in &tokens {
        assert_eq!(access_status(&s, t).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn one_account_cannot_fill_the_store_and_no_revocation_is_lost() {
    let store = Arc::new(MemoryStore::new());
    let s = sessions_with(store.clone(), Duration::ZERO)
        .max_sessions_per_user(5)
        .max_revocations_per_user(4);
    let victim = s.login("victim").await.unwrap();
    let mut dead = Vec::new();
    // Every write path that revokes: logout by access token, by refresh token, by id, and
    // reuse detection. Past four markers, each revocation folds the oldest into mallory's
    // not-before; so fast, that pushes it up to three seconds ahead, and her next login
    // waits or is refused (503) until the clock catches up, as a client retrying would see.
    for i in 0..12 {
        let pair = held::retrying(|| s.login("mallory")).await;
        match i % 4 {
            0 => assert!(s.logout(None, Some(&pair.access.token)).await.unwrap()),
            1 => assert!(s.logout(Some(&pair.refresh_token), None).await.unwrap()),
            2 => assert!(s.revoke("mallory", &pair.sid).await.unwrap()),
            _ => {
                // Rotates (once not held back), then a replay.
                held::retrying(|| s.refresh(&pair.refresh_token)).await;
                assert!(s.refresh(&pair.refresh_token).await.is_err(), "reuse");
            }
        }
        dead.push(pair.access.token);
        let entries = store.len();
        assert!(entries <= 1 + 5 + 4, "after {i}: {entries} entries");
    }
    for t in &dead {
        assert_eq!(
            access_status(&s, t).await,
            StatusCode::UNAUTHORIZED,
            "a revocation was lost"
        );
    }
    // Another user is untouched, and mallory can still log in and work.
    assert_eq!(access_status(&s, &victim.access.token).await, StatusCode::OK);
    let fresh = held::retrying(|| s.login("mallory")).await;
    assert_eq!(access_status(&s, &fresh.access.token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_full_store_still_revokes() {
    let store = Arc::new(MemoryStore::with_max_entries(3));
    let s = sessions_with(store.clone(), Duration::ZERO);
    let pairs = [
        s.login("alice").await.unwrap(),
        s.login("bob").await.unwrap(),
        s.login("carol").await.unwrap(),
    ];
    assert!(
        matches!(s.login("dave").await, Err(SessionError::Unavailable(_))),
        "full"
    );
    for p in &pairs {
        assert!(s.logout(None, Some(&p.access.token)).await.unwrap());
        assert_eq!(access_status(&s, &p.access.token).await, StatusCode::UNAUTHORIZED);
        assert!(s.refresh(&p.refresh_token).await.is_err());
    }
}

#[tokio::test]
async fn the_not_before_leads_the_clock_by_ten_seconds_at_most() {
    let s = sessions(Duration::ZERO);
    let start = now_secs();
    for _ in 0..30 {
        s.logout_all("alice").await.unwrap();
    }
    // A login now would need an `iat` at least ten seconds ahead: it is refused as
    // temporarily unavailable (503) rather than minting a token the revocation windows
    // might not cover, and works again once the clock catches up.
    assert!(matches!(
        s.login("alice").await,
        Err(SessionError::Unavailable(_))
    ));
    let grant = s
        .store()
        .create_session(new_session("alice", "probe"))
        .await
        .unwrap();
    assert!(grant.not_before <= now_secs() + 10, "{grant:?} at {start}");
    assert!(grant.not_before >= start + 10, "{grant:?} at {start}");
}

#[tokio::test]
async fn revocations_past_the_cap_never_push_the_not_before_away() {
    // A busy shared account: revocations past the marker cap, four a second for five
    // seconds, so each fold takes a marker 2.5 s old. None raises the not-before past the
    // next second, so logins and refreshes keep working (they wait a second at most).
    let s = sessions(Duration::ZERO)
        .max_revocations_per_user(10)
        .max_sessions_per_user(100);
    let device = s.login("shared").await.unwrap();
    let mut doomed = Vec::new();
    for _ in 0..20 {
        doomed.push(s.login("shared").await.unwrap());
    }
    let start = std::time::Instant::now();
    for pair in &doomed {
        assert!(s.revoke("shared", &pair.sid).await.unwrap());
        let probe = s
            .store()
            .create_session(new_session("shared", &format!("probe-{}", pair.sid)))
            .await
            .unwrap();
        assert!(probe.not_before <= now_secs() + 1, "{probe:?} at {}", now_secs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(start.elapsed() >= Duration::from_secs(5));
    let waited = std::time::Instant::now();
    let renewed = s.refresh(&device.refresh_token).await.unwrap();
    assert!(
        waited.elapsed() <= Duration::from_millis(1_500),
        "{:?}",
        waited.elapsed()
    );
    assert_eq!(access_status(&s, &renewed.access.token).await, StatusCode::OK);
    assert!(
        renewed.access.issued_at <= now_secs(),
        "never minted ahead of the clock"
    );
    for pair in &doomed {
        assert_eq!(
            access_status(&s, &pair.access.token).await,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn a_refresh_held_back_by_a_revocation_burst_keeps_its_token() {
    // No marker room: each revocation raises the not-before three seconds past now, beyond
    // what a mint may wait for. A refresh then is answered 503 without spending the token
    // (with no grace, a spent one replayed would end the session), and works once retried.
    let s = sessions(Duration::ZERO)
        .max_revocations_per_user(0)
        .max_sessions_per_user(100);
    let mut device = s.login("busy").await.unwrap();
    let mut held = None;
    for _ in 0..5 {
        let doomed = match s.login("busy").await {
            Ok(doomed) => doomed,
            // Held back by the previous round's revocation.
            Err(SessionError::Unavailable(_)) => continue,
            Err(e) => panic!("{e}"),
        };
        assert!(s.revoke("busy", &doomed.sid).await.unwrap());
        match s.refresh(&device.refresh_token).await {
            Err(SessionError::Unavailable(e)) => {
                held = Some(e);
                break;
            }
            // The second turned between the two calls: the wait was short enough.
            Ok(renewed) => device = renewed,
            Err(e) => panic!("{e}"),
        }
    }
    let held = held.expect("a refresh right after the revocation is held back");
    assert!(held.to_string().contains("retry"), "{held}");
    let renewed = held::retrying(|| s.refresh(&device.refresh_token)).await;
    assert_eq!(access_status(&s, &renewed.access.token).await, StatusCode::OK);
    assert_eq!(renewed.sid, device.sid);
}

#[tokio::test]
async fn a_revoked_token_stays_refused_while_it_still_verifies() {
    // Logouts-everywhere in one second push the not-before ahead of the clock; the next
    // login waits for it instead of minting ahead, and its revocation lasts until it
    // expires.
    let secrets = RefreshSecrets::new("k1", &[42u8; 32]).unwrap();
    let issuer = Issuer::new(key()).access_ttl(Duration::from_secs(1));
    let s = Sessions::new(issuer, Arc::new(MemoryStore::new()), secrets)
        .grace(Duration::ZERO)
        .leeway(Duration::from_secs(1));
    let started = now_secs();
    for _ in 0..2 {
        s.logout_all("alice").await.unwrap();
    }
    let revoked = s.login("alice").await.unwrap();
    let live = s.login("alice").await.unwrap();
    let iat = revoked.access.issued_at;
    assert!(
        iat >= started + 2,
        "iat {iat} is not past the not-before (from {started})"
    );
    assert!(iat <= now_secs(), "iat {iat} is ahead of {}", now_secs());
    assert!(s.logout(Some(&revoked.refresh_token), None).await.unwrap());
    // Refused for as long as a token of the same second is accepted (exp + 1 s leeway).
    let mut checks = 0;
    while now_secs() < live.access.expires_at + 1 {
        let live_status = access_status(&s, &live.access.token).await;
        if now_secs() < live.access.expires_at + 1 {
            assert_eq!(live_status, StatusCode::OK, "it verifies");
            checks += 1;
        }
        assert_eq!(
            access_status(&s, &revoked.access.token).await,
            StatusCode::UNAUTHORIZED
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(checks >= 5, "{checks}");
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn new_session<'a>(sub: &'a str, sid: &'a str) -> NewSession<'a> {
    NewSession {
        sub,
        sid,
        absolute: Duration::from_secs(60),
        idle: None,
        max_per_user: 100,
        latest_not_before: u64::MAX,
    }
}

#[tokio::test]
async fn a_body_that_never_arrives_times_out() {
    use http_body_util::StreamBody;
    let s = sessions(Duration::ZERO);
    let svc = s.endpoints().body_timeout(Duration::from_millis(200)).refresh();
    // A slow-loris client: headers, then a body that never comes.
    let never =
        futures_util::stream::pending::<Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>>();
    let req = Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(StreamBody::new(never))
        .unwrap();
    let start = std::time::Instant::now();
    let r = svc.oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

#[tokio::test]
async fn a_layer_accepting_tokens_longer_widens_every_revocation() {
    // Mismatched settings: the sessions use no leeway, the layer a validation built by hand
    // with 15 s, on its own handle to the same store, built after the sessions. The layer
    // accepts a 1 s token until 16 s after its `iat`; a revocation sized from the sessions'
    // own settings (1 s + 0 s + the 10 s lead + 1 s) would lapse at 12 s.
    let secrets = RefreshSecrets::new("k1", &[42u8; 32]).unwrap();
    let issuer = Issuer::new(key()).access_ttl(Duration::from_secs(1));
    let memory = Arc::new(MemoryStore::new());
    let s = Sessions::new(issuer.clone(), memory.clone(), secrets)
        .leeway(Duration::ZERO)
        .grace(Duration::ZERO)
        .absolute_lifetime(Duration::from_secs(2));
    let lenient = issuer.validation().leeway(Duration::from_secs(15));
    let layer = JwtAuthLayer::new(lenient, memory);
    let status = |token: String| {
        let layer = layer.clone();
        async move { probe::status(&layer, &token).await }
    };

    let live = s.login("alice").await.unwrap();
    // Every way a token gets revoked:
    let by_refresh = s.login("alice").await.unwrap();
    assert!(s.logout(Some(&by_refresh.refresh_token), None).await.unwrap());
    let everywhere = s.login("bob").await.unwrap();
    s.logout_all("bob").await.unwrap();
    let reused = s.login("carol").await.unwrap();
    let rotated = s.refresh(&reused.refresh_token).await.unwrap();
    assert!(s.refresh(&reused.refresh_token).await.is_err(), "reuse detected");
    // Denylisted by itself: its session is over (2 s), and its `exp` is past the sessions'
    // own acceptance, but not the layer's.
    let ended = s.login("dave").await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert!(now_secs() > ended.access.expires_at, "expired for the sessions");
    assert!(
        s.logout(None, Some(&ended.access.token)).await.unwrap(),
        "a token the layer still accepts is revoked"
    );

    let revoked = [
        ("logout", &by_refresh.access.token),
        ("logout-all", &everywhere.access.token),
        ("reuse", &reused.access.token),
        ("reuse, rotated", &rotated.access.token),
        ("denylist", &ended.access.token),
    ];
    let acceptable_until = live.access.expires_at + 15;
    let mut checks = 0;
    // Every revoked token stays refused as long as the layer accepts the live one.
    while now_secs() < acceptable_until {
        for (how, token) in revoked {
            assert_eq!(
                status(token.clone()).await,
                StatusCode::UNAUTHORIZED,
                "{how}: revoked for its whole acceptable life"
            );
        }
        let before = now_secs();
        let live_status = status(live.access.token.clone()).await;
        if now_secs() < acceptable_until && before < acceptable_until {
            assert_eq!(live_status, StatusCode::OK, "the layer still accepts it");
            checks += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(checks >= 40, "checked through the last second: {checks}");
    assert_eq!(
        status(live.access.token).await,
        StatusCode::UNAUTHORIZED,
        "and then the layer refuses it too"
    );
}

#[tokio::test]
async fn logout_all_answers_with_the_layer_that_let_the_request_through() {
    let s = sessions(Duration::ZERO);
    let post = |token: Option<&str>| {
        let mut req = Request::builder().method("POST").uri("/auth/logout-all");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req.body(String::new()).unwrap()
    };
    // Behind an optional layer, no token: that layer's 401 (with its realm), not a 500.
    let optional = ServiceBuilder::new()
        .layer(s.auth_layer().optional().realm("api"))
        .service(s.endpoints().logout_all());
    let r = optional.clone().oneshot(post(None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"api\"");
    let pair = s.login("alice").await.unwrap();
    let r = optional.oneshot(post(Some(&pair.access.token))).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        access_status(&s, &pair.access.token).await,
        StatusCode::UNAUTHORIZED,
        "logged out everywhere"
    );
    // Not behind any layer: a deployment mistake, so a 500 the operator sees in the logs.
    let bare = s.endpoints().logout_all();
    let pair = s.login("alice").await.unwrap();
    let r = bare.oneshot(post(Some(&pair.access.token))).await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(access_status(&s, &pair.access.token).await, StatusCode::OK);
}
