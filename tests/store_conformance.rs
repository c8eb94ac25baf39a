//! One conformance suite, run against the in-memory store, a single Redis node and a
//! 3-master Redis Cluster: the stores must agree case by case.

#[path = "support/held.rs"]
mod held;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/tools.rs"]
mod tools;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_jwt_auth::store::{
    Grant, MarkPolicy, NewSession, RejectReason, RotateOutcome, Rotation, Store, TokenRef, TokenStatus,
};
use tower_jwt_auth::{MemoryStore, RedisStore};

const WINDOW: Duration = Duration::from_secs(960);
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_PER_USER: usize = 100;
const MARKS: MarkPolicy = MarkPolicy {
    window: WINDOW,
    max_per_user: 1000,
};

/// The marker policy with another window.
fn marks(window: Duration) -> MarkPolicy {
    MarkPolicy { window, ..MARKS }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A user name no other case uses.
fn user(case: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{case}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn session<'a>(sub: &'a str, sid: &'a str) -> NewSession<'a> {
    NewSession {
        sub,
        sid,
        absolute: WEEK,
        idle: None,
        max_per_user: MAX_PER_USER,
        latest_not_before: u64::MAX,
    }
}

async fn create(s: &Store, sub: &str, sid: &str) -> Grant {
    s.create_session(session(sub, sid)).await.unwrap()
}

/// A rotation's outcome with its grant reduced to the generation, for comparisons.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Rotated(u64),
    Grace(u64),
    Reuse,
    Rejected(RejectReason),
}

impl From<RotateOutcome> for Out {
    fn from(o: RotateOutcome) -> Self {
        match o {
            RotateOutcome::Rotated(g) => Out::Rotated(g.generation),
            RotateOutcome::Grace(g) => Out::Grace(g.generation),
            RotateOutcome::ReuseDetected => Out::Reuse,
            RotateOutcome::Rejected(r) => Out::Rejected(r),
        }
    }
}

async fn rotate_grant(s: &Store, sub: &str, sid: &str, generation: u64, grace: Duration) -> RotateOutcome {
    s.rotate(Rotation {
        sub,
        sid,
        generation,
        grace,
        marks: MARKS,
        latest_not_before: u64::MAX,
    })
    .await
    .unwrap()
}

async fn rotate(s: &Store, sub: &str, sid: &str, generation: u64, grace: Duration) -> Out {
    rotate_grant(s, sub, sid, generation, grace).await.into()
}

/// As the middleware asks: the local answer when the store has one (the memory store, the
/// Redis mirror), else one round trip.
async fn check(s: &Store, sub: &str, sid: &str, jti: &str, iat: u64) -> TokenStatus {
    let token = TokenRef { sub, sid, jti, iat };
    match s.check_local(token) {
        Some(status) => status,
        None => s.check(token).await.unwrap(),
    }
}

const NO_GRACE: Duration = Duration::ZERO;
const GRACE: Duration = Duration::from_secs(10);

async fn rotation_and_grace(s: &Store) {
    let u = user("rotate");
    let grant = create(s, &u, "s1").await;
    assert_eq!(grant.generation, 0);
    let week_ms = WEEK.as_millis() as u64;
    let end = now_secs() * 1000 + week_ms;
    assert!(grant.session_end_ms.abs_diff(end) < 5_000, "{grant:?}");
    assert_eq!(grant.not_before, 0, "no logout-all yet");
    assert_eq!(check(s, &u, "s1", "j", now_secs()).await, TokenStatus::Active);
    assert_eq!(rotate(s, &u, "s1", 0, GRACE).await, Out::Rotated(1));
    // The previous token within grace: the current generation, nothing written.
    assert_eq!(rotate(s, &u, "s1", 0, GRACE).await, Out::Grace(1));
    assert_eq!(rotate(s, &u, "s1", 0, GRACE).await, Out::Grace(1));
    assert_eq!(rotate(s, &u, "s1", 1, GRACE).await, Out::Rotated(2));
    // Two generations back: reuse, even within the grace period.
    assert_eq!(rotate(s, &u, "s1", 0, GRACE).await, Out::Reuse);
    assert_eq!(
        check(s, &u, "s1", "j", now_secs()).await,
        TokenStatus::SessionRevoked
    );
    assert_eq!(
        rotate(s, &u, "s1", 2, GRACE).await,
        Out::Rejected(RejectReason::Revoked)
    );
}

async fn reuse_without_grace(s: &Store) {
    let u = user("reuse");
    create(s, &u, "s1").await;
    create(s, &u, "s2").await;
    assert_eq!(rotate(s, &u, "s1", 0, NO_GRACE).await, Out::Rotated(1));
    assert_eq!(rotate(s, &u, "s1", 0, NO_GRACE).await, Out::Reuse);
    assert_eq!(
        check(s, &u, "s1", "j", now_secs()).await,
        TokenStatus::SessionRevoked
    );
    assert_eq!(
        rotate(s, &u, "s1", 1, NO_GRACE).await,
        Out::Rejected(RejectReason::Revoked)
    );
    // The user's other session is untouched.
    assert_eq!(check(s, &u, "s2", "j", now_secs()).await, TokenStatus::Active);
    assert_eq!(rotate(s, &u, "s2", 0, NO_GRACE).await, Out::Rotated(1));
}

async fn grace_expires(s: &Store) {
    let u = user("grace-ends");
    create(s, &u, "s").await;
    let grace = Duration::from_millis(300);
    assert_eq!(rotate(s, &u, "s", 0, grace).await, Out::Rotated(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rotate(s, &u, "s", 0, grace).await, Out::Reuse);
}

async fn unknown_and_future(s: &Store) {
    let u = user("unknown");
    assert_eq!(
        rotate(s, &u, "nope", 0, GRACE).await,
        Out::Rejected(RejectReason::Missing)
    );
    create(s, &u, "s").await;
    assert_eq!(
        rotate(s, &u, "s", 3, GRACE).await,
        Out::Rejected(RejectReason::FutureGeneration)
    );
    assert_eq!(rotate(s, &u, "s", 0, GRACE).await, Out::Rotated(1), "left intact");
    // Another user naming the same sid finds nothing.
    assert_eq!(
        rotate(s, &user("other"), "s", 1, GRACE).await,
        Out::Rejected(RejectReason::Missing)
    );
}

async fn denylist(s: &Store) {
    let u = user("deny");
    s.deny_token(&u, "j1", Duration::from_secs(60), MARKS)
        .await
        .unwrap();
    assert_eq!(check(s, &u, "s", "j1", now_secs()).await, TokenStatus::Denied);
    assert_eq!(check(s, &u, "s", "j2", now_secs()).await, TokenStatus::Active);
    assert_eq!(
        check(s, &user("other"), "s", "j1", now_secs()).await,
        TokenStatus::Active
    );
    s.deny_token(&u, "old", Duration::ZERO, MARKS).await.unwrap();
    assert_eq!(check(s, &u, "s", "old", now_secs()).await, TokenStatus::Active);
    // Entries end with the token's life.
    s.deny_token(&u, "short", Duration::from_secs(1), MARKS)
        .await
        .unwrap();
    assert_eq!(check(s, &u, "s", "short", now_secs()).await, TokenStatus::Denied);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(check(s, &u, "s", "short", now_secs()).await, TokenStatus::Active);
}

async fn revoke_one(s: &Store) {
    let u = user("revoke");
    create(s, &u, "s1").await;
    create(s, &u, "s2").await;
    assert!(!s.revoke_session(&user("mallory"), "s1", MARKS).await.unwrap());
    assert_eq!(
        check(s, &u, "s1", "j", now_secs()).await,
        TokenStatus::Active,
        "only the owner can revoke"
    );
    assert!(s.revoke_session(&u, "s1", MARKS).await.unwrap());
    assert!(!s.revoke_session(&u, "s1", MARKS).await.unwrap());
    assert_eq!(
        check(s, &u, "s1", "j", now_secs()).await,
        TokenStatus::SessionRevoked
    );
    assert_eq!(
        rotate(s, &u, "s1", 0, GRACE).await,
        Out::Rejected(RejectReason::Revoked)
    );
    let listed: Vec<String> = s.sessions(&u).await.unwrap().into_iter().map(|i| i.sid).collect();
    assert_eq!(listed, vec!["s2".to_owned()]);
    // An unknown session id writes nothing, so no caller can grow the store at will.
    assert!(!s.revoke_session(&u, "never-issued", MARKS).await.unwrap());
    assert_eq!(
        check(s, &u, "never-issued", "j", now_secs()).await,
        TokenStatus::Active
    );
    // The access-token mark lasts the access window only.
    let short = user("revoke-short");
    create(s, &short, "s").await;
    assert!(s
        .revoke_session(&short, "s", marks(Duration::from_millis(300)))
        .await
        .unwrap());
    assert_eq!(
        check(s, &short, "s", "j", now_secs()).await,
        TokenStatus::SessionRevoked
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(check(s, &short, "s", "j", now_secs()).await, TokenStatus::Active);
}

async fn logout_everywhere(s: &Store) {
    let u = user("all");
    create(s, &u, "s1").await;
    create(s, &u, "s2").await;
    let issued = now_secs();
    s.revoke_all(&u, WINDOW).await.unwrap();
    assert_eq!(check(s, &u, "s1", "j", issued).await, TokenStatus::UserLoggedOut);
    assert_eq!(
        check(s, &u, "s9", "j", issued.saturating_sub(100)).await,
        TokenStatus::UserLoggedOut
    );
    assert_eq!(
        check(s, &user("other"), "s1", "j", issued).await,
        TokenStatus::Active
    );
    for sid in ["s1", "s2"] {
        assert_eq!(
            rotate(s, &u, sid, 0, GRACE).await,
            Out::Rejected(RejectReason::UserLoggedOut)
        );
    }
    assert!(s.sessions(&u).await.unwrap().is_empty());
    assert!(!s.revoke_session(&u, "s1", MARKS).await.unwrap(), "already dead");
    // A session started afterwards, even in the same second, learns the not-before
    // atomically: an access token issued at max(now, not_before) passes.
    let grant = create(s, &u, "s3").await;
    assert!(
        grant.not_before > issued && grant.not_before <= now_secs() + 1,
        "{grant:?}"
    );
    let iat = now_secs().max(grant.not_before);
    assert_eq!(check(s, &u, "s3", "j", iat).await, TokenStatus::Active);
    assert_eq!(check(s, &u, "s3", "j", iat - 1).await, TokenStatus::UserLoggedOut);
    let RotateOutcome::Rotated(g) = rotate_grant(s, &u, "s3", 0, GRACE).await else {
        panic!("the new session rotates");
    };
    assert_eq!((g.generation, g.not_before), (1, grant.not_before));
    assert_eq!(s.sessions(&u).await.unwrap().len(), 1);
    // A second logout-all, however soon, also ends the tokens issued at that not-before.
    s.revoke_all(&u, WINDOW).await.unwrap();
    assert_eq!(check(s, &u, "s3", "j", iat).await, TokenStatus::UserLoggedOut);
}

async fn listing(s: &Store) {
    let u = user("list");
    for sid in ["a", "b", "c"] {
        create(s, &u, sid).await;
    }
    rotate(s, &u, "b", 0, GRACE).await;
    s.revoke_session(&u, "c", MARKS).await.unwrap();
    let list = s.sessions(&u).await.unwrap();
    let mut sids: Vec<&str> = list.iter().map(|i| i.sid.as_str()).collect();
    sids.sort();
    assert_eq!(sids, vec!["a", "b"]);
    let b = list.iter().find(|i| i.sid == "b").unwrap();
    assert_eq!(b.generation, 1);
    assert!(b.last_used_ms >= b.created_ms && b.expires_ms > b.last_used_ms);
    assert!(s.sessions(&user("nobody")).await.unwrap().is_empty());
}

async fn lifetimes(s: &Store) {
    let u = user("life");
    let short = NewSession {
        sub: &u,
        sid: "abs",
        absolute: Duration::from_millis(800),
        idle: None,
        max_per_user: MAX_PER_USER,
        latest_not_before: u64::MAX,
    };
    s.create_session(short).await.unwrap();
    let idle = NewSession {
        sub: &u,
        sid: "idle",
        absolute: Duration::from_secs(60),
        idle: Some(Duration::from_millis(700)),
        max_per_user: MAX_PER_USER,
        latest_not_before: u64::MAX,
    };
    s.create_session(idle).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rotate(s, &u, "abs", 0, GRACE).await, Out::Rotated(1));
    assert_eq!(rotate(s, &u, "idle", 0, GRACE).await, Out::Rotated(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Rotation never extends the absolute lifetime; activity extends the idle one.
    assert!(matches!(rotate(s, &u, "abs", 1, GRACE).await, Out::Rejected(_)));
    assert_eq!(rotate(s, &u, "idle", 1, GRACE).await, Out::Rotated(2));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(matches!(rotate(s, &u, "idle", 2, GRACE).await, Out::Rejected(_)));
    assert!(s.sessions(&u).await.unwrap().is_empty());
    // Absurd durations are clamped, never an overflow or a store error.
    let forever = NewSession {
        sub: &u,
        sid: "forever",
        absolute: Duration::MAX,
        idle: Some(Duration::MAX),
        max_per_user: usize::MAX,
        latest_not_before: u64::MAX,
    };
    s.create_session(forever).await.unwrap();
    let far = Rotation {
        sub: &u,
        sid: "forever",
        generation: 0,
        grace: GRACE,
        marks: marks(Duration::MAX),
        latest_not_before: u64::MAX,
    };
    assert_eq!(Out::from(s.rotate(far).await.unwrap()), Out::Rotated(1));
    assert!(s
        .revoke_session(&u, "forever", marks(Duration::MAX))
        .await
        .unwrap());
    s.revoke_all(&u, Duration::MAX).await.unwrap();
}

async fn race(s: &Store, grace: Duration) -> Vec<Out> {
    let u = user("race");
    create(s, &u, "s").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (s, u, barrier) = (s.clone(), u.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                rotate(&s, &u, "s", 0, grace).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn concurrent_rotation(s: &Store) {
    let outcomes = race(s, GRACE).await;
    let rotated = outcomes.iter().filter(|o| matches!(o, Out::Rotated(_))).count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == Out::Grace(1)).count(), 49);
    let outcomes = race(s, NO_GRACE).await;
    assert_eq!(
        outcomes.iter().filter(|o| matches!(o, Out::Rotated(_))).count(),
        1,
        "{outcomes:?}"
    );
    // The first loser is a replay that revokes the session; the rest find it revoked.
    assert_eq!(
        outcomes.iter().filter(|o| **o == Out::Reuse).count(),
        1,
        "{outcomes:?}"
    );
    let revoked = Out::Rejected(RejectReason::Revoked);
    assert_eq!(
        outcomes.iter().filter(|o| **o == revoked).count(),
        48,
        "{outcomes:?}"
    );
}

async fn per_user_cap(s: &Store) {
    let u = user("cap");
    let capped = |sid| NewSession {
        max_per_user: 3,
        ..session(&u, sid)
    };
    for sid in ["a", "b", "c"] {
        s.create_session(capped(sid)).await.unwrap();
    }
    // Without an idle timeout sessions end in the order they started, so a login past the
    // cap ends the oldest; a revoked session (kept to recognise replays) still counts.
    s.revoke_session(&u, "c", MARKS).await.unwrap();
    s.create_session(capped("d")).await.unwrap();
    assert_eq!(
        rotate(s, &u, "a", 0, GRACE).await,
        Out::Rejected(RejectReason::Missing)
    );
    assert_eq!(rotate(s, &u, "b", 0, GRACE).await, Out::Rotated(1));
    assert_eq!(
        rotate(s, &u, "c", 0, GRACE).await,
        Out::Rejected(RejectReason::Revoked)
    );
    s.create_session(capped("e")).await.unwrap();
    // Rotation never moves the absolute end: "b" is now the oldest.
    assert_eq!(
        rotate(s, &u, "b", 1, GRACE).await,
        Out::Rejected(RejectReason::Missing)
    );
    let mut listed: Vec<String> = s.sessions(&u).await.unwrap().into_iter().map(|i| i.sid).collect();
    listed.sort();
    assert_eq!(listed, vec!["d".to_owned(), "e".to_owned()]);
    // Another user is not affected by this user's cap.
    let other = user("cap-other");
    create(s, &other, "a").await;
    assert_eq!(rotate(s, &other, "a", 0, GRACE).await, Out::Rotated(1));
}

async fn marker_cap(s: &Store) {
    let u = user("marks");
    let cap = MarkPolicy {
        max_per_user: 3,
        ..MARKS
    };
    for sid in ["s1", "s2", "s3"] {
        create(s, &u, sid).await;
    }
    let iat = now_secs();
    s.deny_token(&u, "j1", WINDOW, cap).await.unwrap();
    s.deny_token(&u, "j2", WINDOW, cap).await.unwrap();
    assert!(s.revoke_session(&u, "s1", cap).await.unwrap());
    // Marking again what is marked needs no room.
    s.deny_token(&u, "j1", WINDOW, cap).await.unwrap();
    assert!(!s.revoke_session(&u, "s1", cap).await.unwrap());
    assert_eq!(check(s, &u, "s2", "j1", iat).await, TokenStatus::Denied);
    assert_eq!(check(s, &u, "s1", "j", iat).await, TokenStatus::SessionRevoked);
    assert_eq!(check(s, &u, "s2", "j", iat).await, TokenStatus::Active);
    // No room for a fourth: the oldest marker is folded into the user's not-before, which
    // ends every access token of the user issued up to it (here, in this very second)...
    s.deny_token(&u, "j3", WINDOW, cap).await.unwrap();
    assert_eq!(check(s, &u, "s2", "j3", iat).await, TokenStatus::Denied);
    assert_eq!(check(s, &u, "s2", "j", iat).await, TokenStatus::UserLoggedOut);
    // ...but not the sessions: they refresh, and their new tokens pass.
    let RotateOutcome::Rotated(g) = rotate_grant(s, &u, "s2", 0, GRACE).await else {
        panic!("sessions outlive a raised not-before");
    };
    assert!(g.not_before > iat, "{g:?}");
    // Sessions mint no token ahead of the clock: they wait for the not-before.
    while now_secs() < g.not_before {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fresh = now_secs();
    assert_eq!(check(s, &u, "s2", "j4", fresh).await, TokenStatus::Active);
    // A session revoked with no room left is revoked all the same.
    assert!(s.revoke_session(&u, "s3", cap).await.unwrap());
    assert_eq!(
        rotate(s, &u, "s3", 0, GRACE).await,
        Out::Rejected(RejectReason::Revoked)
    );
    assert_eq!(check(s, &u, "s3", "j5", fresh).await, TokenStatus::SessionRevoked);
    // With no markers kept at all, a revocation ends every token of the user so far.
    let none = MarkPolicy {
        max_per_user: 0,
        ..MARKS
    };
    s.deny_token(&u, "j6", WINDOW, none).await.unwrap();
    assert_eq!(check(s, &u, "s2", "j6", fresh).await, TokenStatus::UserLoggedOut);
    // Only this user.
    assert_eq!(
        check(s, &user("other"), "s2", "j", iat).await,
        TokenStatus::Active
    );
}

/// A grant whose not-before would be past the caller's latest is refused, changing nothing:
/// no session is created, and the refresh token is not spent (nor its grace answer given).
async fn held_back(s: &Store) {
    use tower_jwt_auth::StoreErrorKind;
    let u = user("held");
    s.revoke_all(&u, WINDOW).await.unwrap();
    let nbf = create(s, &u, "s1").await.not_before;
    assert!(nbf > now_secs().saturating_sub(1), "a not-before now: {nbf}");
    let held = nbf - 1;
    let refused = s
        .create_session(NewSession {
            latest_not_before: held,
            ..session(&u, "s2")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), StoreErrorKind::Unavailable, "{refused}");
    let listed: Vec<String> = s.sessions(&u).await.unwrap().into_iter().map(|i| i.sid).collect();
    assert_eq!(listed, ["s1"], "nothing created");
    let rotation = |generation, latest_not_before| Rotation {
        sub: &u,
        sid: "s1",
        generation,
        grace: GRACE,
        marks: MARKS,
        latest_not_before,
    };
    let refused = s.rotate(rotation(0, held)).await.unwrap_err();
    assert_eq!(refused.kind(), StoreErrorKind::Unavailable, "{refused}");
    // Unspent: generation 0 is still current, and rotates now.
    let rotated = s.rotate(rotation(0, nbf)).await.unwrap();
    assert_eq!(Out::from(rotated), Out::Rotated(1));
    // The grace answer is held back too, and still given afterwards.
    assert!(s.rotate(rotation(0, held)).await.is_err());
    let grace = s.rotate(rotation(0, nbf)).await.unwrap();
    assert_eq!(Out::from(grace), Out::Grace(1));
    // Answers that grant nothing are not held back: a replay is still caught.
    let replay = Rotation {
        grace: NO_GRACE,
        ..rotation(0, held)
    };
    assert_eq!(Out::from(s.rotate(replay).await.unwrap()), Out::Reuse);
}

/// One test per case per store, each case reported by name (as tower-sessions'
/// `route_tests!`): `memory::denylist`, `redis_node::denylist`, `redis_cluster::denylist`…
/// `$store` makes the store, or `None` when its server cannot run here.
macro_rules! store_tests {
    ($module:ident, $store:expr) => {
        mod $module {
            use super::*;

            store_tests!(@cases $store;
                rotation_and_grace, reuse_without_grace, grace_expires, unknown_and_future,
                denylist, revoke_one, logout_everywhere, listing, lifetimes, per_user_cap,
                marker_cap, fold_order, held_back, concurrent_rotation,
            );
        }
    };
    (@cases $store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $store.await else { return };
                super::$case(&store).await;
            }
        )*
    };
}

async fn memory() -> Option<Store> {
    Some(MemoryStore::new().into())
}

/// A client of its own (fred's connections live on the test's runtime) on the shared node,
/// with the revocation mirror on or off.
async fn redis_node(mirror: bool) -> Option<Store> {
    let server = redis_server::RedisServer::shared()?;
    Some(mirrored(
        RedisStore::connect(&server.url()).await.unwrap(),
        mirror,
    ))
}

async fn redis_cluster(mirror: bool) -> Option<Store> {
    let cluster = redis_server::RedisCluster::shared()?;
    Some(mirrored(
        RedisStore::connect(&cluster.url()).await.unwrap(),
        mirror,
    ))
}

fn mirrored(store: RedisStore, mirror: bool) -> Store {
    if mirror {
        store.into()
    } else {
        store.without_mirror().into()
    }
}

/// Over TLS (`rediss://`, feature `redis-tls`), trusting the test's throwaway CA.
async fn redis_tls() -> Option<Store> {
    let server = redis_server::RedisServer::shared_tls()?;
    let tls = trusting(server.ca_der());
    let store = RedisStore::connect_tls(&server.tls_url(), Duration::from_secs(1), tls)
        .await
        .unwrap();
    Some(store.into())
}

/// A TLS connector trusting only the CA `ca_der`.
fn trusting(ca_der: &[u8]) -> tower_jwt_auth::fred::types::config::TlsConnector {
    use tower_jwt_auth::fred::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.to_vec().into()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.into()
}

store_tests!(memory, memory());
store_tests!(redis_tls, redis_tls());
store_tests!(redis_node, redis_node(true));
store_tests!(redis_node_unmirrored, redis_node(false));
store_tests!(redis_cluster, redis_cluster(true));
store_tests!(redis_cluster_unmirrored, redis_cluster(false));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_eviction_policy_is_read() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url()).await.unwrap();
    assert_eq!(store.eviction_policy().await.unwrap(), "noeviction");
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]);
    assert_eq!(store.eviction_policy().await.unwrap(), "volatile-lru");
}

/// The oldest marker is the one folded, in every store.
async fn fold_order(s: &Store) {
    let u = user("order");
    let cap = MarkPolicy {
        max_per_user: 4,
        ..MARKS
    };
    let iat = now_secs();
    for jti in ["j1", "j2", "j3", "j4"] {
        s.deny_token(&u, jti, WINDOW, cap).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.deny_token(&u, "j5", WINDOW, cap).await.unwrap();
    let mut statuses = Vec::new();
    for jti in ["j1", "j2", "j3", "j4", "j5"] {
        statuses.push(check(s, &u, "s", jti, iat).await);
    }
    use TokenStatus::{Denied, UserLoggedOut};
    assert_eq!(statuses, [UserLoggedOut, Denied, Denied, Denied, Denied]);
}

/// Folding a marker ends only tokens about as old as it: a token issued after it (and past
/// the two seconds a token being minted may carry) lives on. Slow (it waits for that): one
/// store of each kind, side by side.
async fn folding_ends_only_old_tokens(s: &Store) {
    let u = user("fold");
    let cap = MarkPolicy {
        max_per_user: 8,
        ..MARKS
    };
    let old_sids: Vec<String> = (0..8).map(|i| format!("old{i}")).collect();
    let new_sids: Vec<String> = (0..8).map(|i| format!("new{i}")).collect();
    for sid in old_sids.iter().chain(&new_sids) {
        create(s, &u, sid).await;
    }
    create(s, &u, "live").await;
    let old = now_secs();
    for sid in &old_sids {
        assert!(s.revoke_session(&u, sid, cap).await.unwrap());
    }
    while now_secs() <= old + 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recent = now_secs();
    // No room for any: each folds one old marker, concurrently (a fold another revocation
    // made first is no reason to end every token).
    let revocations = new_sids.iter().map(|sid| s.revoke_session(&u, sid, cap));
    for revoked in futures_util::future::join_all(revocations).await {
        assert!(revoked.unwrap());
    }
    for sid in &old_sids {
        assert_eq!(check(s, &u, sid, "j", old).await, TokenStatus::UserLoggedOut);
    }
    for sid in &new_sids {
        assert_eq!(check(s, &u, sid, "j", recent).await, TokenStatus::SessionRevoked);
    }
    assert_eq!(
        check(s, &u, "live", "j", recent).await,
        TokenStatus::Active,
        "a recent token of a live session survives the folds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folding_a_marker_ends_only_old_tokens() {
    let memory: Store = MemoryStore::new().into();
    let server = redis_server::RedisServer::start();
    let redis: Option<Store> = match &server {
        Some(server) => Some(RedisStore::connect(&server.url()).await.unwrap().into()),
        None => None,
    };
    tokio::join!(folding_ends_only_old_tokens(&memory), async {
        if let Some(redis) = &redis {
            folding_ends_only_old_tokens(redis).await;
        }
    });
}

/// Every case side by side on one store (independent users), so each kind of key is written
/// and the users' calls interleave.
async fn every_case_at_once(store: &Store) {
    tokio::join!(
        rotation_and_grace(store),
        reuse_without_grace(store),
        grace_expires(store),
        unknown_and_future(store),
        denylist(store),
        revoke_one(store),
        logout_everywhere(store),
        listing(store),
        lifetimes(store),
        per_user_cap(store),
        marker_cap(store),
        fold_order(store),
        held_back(store),
    );
    concurrent_rotation(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_every_case_at_once() {
    every_case_at_once(&MemoryStore::new().into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_all_carry_a_ttl_and_one_account_stays_bounded() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let store: Store = RedisStore::connect(&server.url()).await.unwrap().into();
    every_case_at_once(&store).await;
    one_account_stays_bounded(&server, store.clone()).await;

    // Every key carries a TTL: nothing grows forever. (KEYS on a private test server only.)
    let keys = server.cli(&["--no-raw", "KEYS", "*"]);
    let keys: Vec<&str> = keys.lines().filter_map(|l| l.split('"').nth(1)).collect();
    assert!(keys.len() > 10, "{keys:?}");
    for key in keys {
        let ttl: i64 = server.cli(&["PTTL", key]).trim().parse().unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
        assert!(key.starts_with("tja:{u:"), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_keeps_each_user_in_one_slot() {
    let Some(cluster) = redis_server::RedisCluster::start() else {
        return;
    };
    let store: Store = RedisStore::connect(&cluster.url()).await.unwrap().into();
    every_case_at_once(&store).await;
    // Users spread over the cluster, each user's keys in one slot, each key with a TTL.
    let mut slots_per_user = std::collections::HashMap::<String, std::collections::HashSet<String>>::new();
    let mut nodes_used = 0;
    for port in cluster.ports() {
        let keys = redis_server::RedisCluster::cli(port, &["--no-raw", "KEYS", "*"]);
        let keys: Vec<String> = keys
            .lines()
            .filter_map(|l| l.split('"').nth(1))
            .map(str::to_owned)
            .collect();
        nodes_used += usize::from(!keys.is_empty());
        for key in keys {
            let user = key.split('}').next().unwrap().to_owned();
            let slot = redis_server::RedisCluster::cli(port, &["CLUSTER", "KEYSLOT", &key])
                .trim()
                .to_owned();
            slots_per_user.entry(user).or_default().insert(slot);
            let ttl: i64 = redis_server::RedisCluster::cli(port, &["PTTL", &key])
                .trim()
                .parse()
                .unwrap();
            assert!(ttl > 0, "{key} has no TTL");
        }
    }
    assert!(slots_per_user.len() > 5);
    assert!(
        slots_per_user.values().all(|slots| slots.len() == 1),
        "{slots_per_user:?}"
    );
    assert!(nodes_used >= 2, "users should spread over the masters");
}

/// Logins and every kind of revocation in a loop leave one account a bounded number of keys,
/// and every revoked token refused.
async fn one_account_stays_bounded(server: &redis_server::RedisServer, store: Store) {
    use tower_jwt_auth::{Issuer, RefreshSecrets, Sessions, SigningKey};
    let issuer = Issuer::new(SigningKey::generate().unwrap());
    let secrets = RefreshSecrets::new("k1", &[9u8; 32]).unwrap();
    let s = Sessions::new(issuer, store.clone(), secrets)
        .grace(NO_GRACE)
        .max_sessions_per_user(5)
        .max_revocations_per_user(4);
    let sub = user("mallory");
    let mut dead = Vec::new();
    // Past four markers, each revocation folds the oldest (a young one: the not-before
    // jumps ahead, and logins are held back a moment).
    for i in 0..12 {
        let pair = held::retrying(|| s.login(&sub)).await;
        match i % 4 {
            0 => assert!(s.logout(None, Some(&pair.access.token)).await.unwrap()),
            1 => assert!(s.logout(Some(&pair.refresh_token), None).await.unwrap()),
            2 => assert!(s.revoke(&sub, &pair.sid).await.unwrap()),
            _ => {
                held::retrying(|| s.refresh(&pair.refresh_token)).await;
                assert!(s.refresh(&pair.refresh_token).await.is_err(), "reuse");
            }
        }
        dead.push((pair.sid, pair.access));
    }
    let tag: String = sub.bytes().map(|b| format!("{b:02x}")).collect();
    let keys = server.cli(&["KEYS", &format!("tja:{{u:{tag}}}:*")]);
    let keys = keys.lines().count();
    // 5 sessions, 4 markers, the sessions and markers zsets, the epoch, the not-before.
    assert!((5..=5 + 4 + 4).contains(&keys), "{keys} keys");
    for (sid, t) in &dead {
        let status = check(&store, &sub, sid, &t.jti, t.issued_at).await;
        assert_ne!(status, TokenStatus::Active, "a revocation was lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_tls_with_a_wrong_ca_is_refused() {
    let Some(server) = redis_server::RedisServer::shared_tls() else {
        return;
    };
    // Another throwaway CA: the server's certificate does not chain to it.
    let other = tempdir_for_certs();
    let wrong = trusting(&other);
    let err = RedisStore::connect_tls(&server.tls_url(), Duration::from_secs(2), wrong)
        .await
        .unwrap_err();
    let text = err.to_string().to_lowercase();
    assert!(text.contains("certificate"), "a clear error: {text}");
    // Plain `redis://` against the TLS port fails too rather than speaking in clear.
    let plain = server.tls_url().replacen("rediss://", "redis://", 1);
    assert!(RedisStore::connect_with(&plain, Duration::from_secs(2))
        .await
        .is_err());
}

/// The DER of a CA made for nothing.
fn tempdir_for_certs() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().der().to_vec()
}
