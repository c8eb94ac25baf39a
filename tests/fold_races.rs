//! A refresh waiting for the user's not-before (up to two seconds ahead after a fold) must
//! not mint a token that escapes a revocation of its session made meanwhile: not when the
//! revoked session's marker is folded young, nor when no marker is kept at all.

#[path = "support/probe.rs"]
mod probe;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/tools.rs"]
mod tools;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use tower_jwt_auth::store::Store;
use tower_jwt_auth::{Issuer, MemoryStore, RedisStore, RefreshSecrets, Sessions, SigningKey};

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

/// Waits for the start of the next second, so a sequence fits in one; returns it.
async fn start_of_a_second() -> u64 {
    let ms = now_ms();
    tokio::time::sleep(Duration::from_millis(1000 - ms % 1000 + 2)).await;
    now_ms() / 1000
}

/// A revocation in second S-1 leads to a not-before of S+2 in second S (with one marker
/// kept: its marker folded by the next revocation; with none: at once). In second S a
/// refresh of session A is granted and waits two seconds for it; meanwhile A is revoked,
/// which (one marker kept) folds the young marker written in S, or (none kept) raises the
/// not-before at once; one more revocation folds A's own marker. The token the refresh then
/// mints (iat S+2) must be refused.
async fn a_waiting_mint_is_caught(store: Store, cap: usize) {
    let secrets = RefreshSecrets::new("k1", &[42u8; 32]).unwrap();
    let s = Sessions::new(Issuer::new(SigningKey::generate().unwrap()), store, secrets)
        .grace(Duration::ZERO)
        .max_revocations_per_user(cap);
    let a = s.login("alice").await.unwrap();
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(s.login("alice").await.unwrap());
    }
    let before = start_of_a_second().await;
    assert!(s.revoke("alice", &others[0].sid).await.unwrap());
    let second = start_of_a_second().await;
    assert_eq!(second, before + 1);
    if cap > 0 {
        // No room: others[0]'s marker (written in S-1) is folded, the not-before is S+2.
        assert!(s.revoke("alice", &others[1].sid).await.unwrap());
    }
    let refreshing = {
        let (s, token) = (s.clone(), a.refresh_token.clone());
        tokio::spawn(async move { s.refresh(&token).await })
    };
    // Revoke A only once the refresh has rotated (it then waits for the not-before).
    loop {
        let listed = s.store().sessions("alice").await.unwrap();
        if listed.iter().any(|i| i.sid == a.sid && i.generation == 1) {
            break;
        }
        assert_eq!(now_ms() / 1000, second, "the refresh rotated within the second");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(s.revoke("alice", &a.sid).await.unwrap());
    assert!(s.revoke("alice", &others[2].sid).await.unwrap());
    assert_eq!(now_ms() / 1000, second, "the sequence ran within one second");
    let pair = refreshing
        .await
        .unwrap()
        .expect("granted before A was revoked, so it waits and mints");
    assert_eq!(
        probe::status(&s.auth_layer(), &pair.access.token).await,
        StatusCode::UNAUTHORIZED,
        "a token of a revoked session"
    );
    assert_eq!(pair.access.issued_at, second + 2, "it waited for the not-before");
}

async fn redis() -> Option<(redis_server::RedisServer, Store)> {
    let server = redis_server::RedisServer::start()?;
    let store = RedisStore::connect(&server.url()).await.unwrap().into();
    Some((server, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_young_marker_folded() {
    a_waiting_mint_is_caught(Arc::new(MemoryStore::new()).into(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_no_marker_kept() {
    a_waiting_mint_is_caught(Arc::new(MemoryStore::new()).into(), 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_young_marker_folded() {
    let Some((_server, store)) = redis().await else {
        return;
    };
    a_waiting_mint_is_caught(store, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_no_marker_kept() {
    let Some((_server, store)) = redis().await else {
        return;
    };
    a_waiting_mint_is_caught(store, 0).await;
}
