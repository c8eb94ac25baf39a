//! A Sentinel failover loses no revocation: with `wait_for_replicas`, a logout is
//! acknowledged only once the replica holds it; the primary is then killed, Sentinel promotes
//! the replica, the store reconnects through Sentinel on its own, the revoked token stays
//! refused and a live session keeps working. Nothing answers 200 for the revoked token at any
//! point: a checker asks all along.

#[path = "support/probe.rs"]
mod probe;

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/tools.rs"]
mod tools;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use tower_jwt_auth::{Issuer, RedisStore, RefreshSecrets, SessionError, Sessions, SigningKey};

use probe::status;

/// Retries `f` while the store is unavailable (the failover), for at most 30 s.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SessionError>>,
{
    let start = Instant::now();
    loop {
        match f().await {
            Ok(value) => return value,
            Err(SessionError::Unavailable(_)) => {
                assert!(start.elapsed() < Duration::from_secs(30), "{what}: no recovery");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_loses_no_revocation() {
    let Some(mut sentinel) = redis_server::RedisSentinel::start() else {
        return;
    };
    let first_primary = sentinel.primary_port().unwrap();
    let store = RedisStore::connect_with(&sentinel.url(), Duration::from_millis(500))
        .await
        .unwrap()
        .wait_for_replicas(1, Duration::from_millis(1000));
    let secrets = RefreshSecrets::new("k1", &[3u8; 32]).unwrap();
    let sessions = Sessions::new(Issuer::new(SigningKey::generate().unwrap()), store, secrets)
        .store_timeout(Duration::from_secs(3));
    let layer = sessions.auth_layer().store_timeout(Duration::from_millis(500));

    let revoked = sessions.login("alice").await.unwrap();
    let live = sessions.login("bob").await.unwrap();
    assert_eq!(status(&layer, &revoked.access.token).await, StatusCode::OK);
    assert_eq!(status(&layer, &live.access.token).await, StatusCode::OK);

    // A checker asks about the revoked token all along, from the logout to the end.
    let stop = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicUsize::new(0));
    let logged_out = Arc::new(AtomicBool::new(false));
    let checker = {
        let (layer, token) = (layer.clone(), revoked.access.token.clone());
        let (stop, asked, logged_out) = (stop.clone(), asked.clone(), logged_out.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let s = status(&layer, &token).await;
                if logged_out.load(Ordering::SeqCst) {
                    assert_ne!(
                        s,
                        StatusCode::OK,
                        "a revoked token answered 200 during the failover"
                    );
                    asked.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Acknowledged only once the replica has it; then the primary dies at once.
    assert!(sessions.logout(None, Some(&revoked.access.token)).await.unwrap());
    logged_out.store(true, Ordering::SeqCst);
    sentinel.kill_primary();

    // Sentinel promotes the replica.
    let start = Instant::now();
    while sentinel.primary_port() != Some(sentinel.replica_port()) {
        assert!(start.elapsed() < Duration::from_secs(30), "no failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(first_primary, sentinel.replica_port());

    // The store finds the new primary through Sentinel by itself: the live session works,
    // through the middleware and a refresh.
    let start = Instant::now();
    while status(&layer, &live.access.token).await != StatusCode::OK {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the live session never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refreshed = eventually("refresh", || sessions.refresh(&live.refresh_token)).await;
    assert_eq!(status(&layer, &refreshed.access.token).await, StatusCode::OK);

    // The revocation survived: refused by the middleware, and its refresh token too.
    assert_eq!(
        status(&layer, &revoked.access.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(matches!(
        sessions.refresh(&revoked.refresh_token).await,
        Err(SessionError::InvalidGrant)
    ));
    // A revocation on the new primary waits for a replica there is none of: 503, honestly.
    let err = sessions
        .logout(None, Some(&refreshed.access.token))
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::Unavailable(_)), "{err}");

    stop.store(true, Ordering::SeqCst);
    checker.await.unwrap();
    assert!(asked.load(Ordering::SeqCst) > 10, "the checker asked throughout");
}
