//! Faults: Redis killed during load (fail closed, within the timeout, never a hang), recovery
//! without intervention after a restart, and revocations surviving a restart.

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/tools.rs"]
mod tools;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_jwt_auth::{Issuer, JwtAuthLayer, RedisStore, RefreshSecrets, Sessions, SigningKey};

const STORE_TIMEOUT: Duration = Duration::from_millis(300);
const MARKS: tower_jwt_auth::store::MarkPolicy = tower_jwt_auth::store::MarkPolicy {
    window: Duration::from_secs(960),
    max_per_user: 1000,
};

fn issuer() -> Issuer {
    Issuer::new(SigningKey::generate().unwrap())
}

async fn store(url: &str) -> Arc<RedisStore> {
    Arc::new(RedisStore::connect_with(url, STORE_TIMEOUT).await.unwrap())
}

fn request(token: &str, grpc: bool) -> Request<Full<Bytes>> {
    let mut b = Request::builder().header("authorization", format!("Bearer {token}"));
    if grpc {
        b = b.header("content-type", "application/grpc");
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

/// (HTTP status, grpc-status) of one request through the middleware, and how long it took.
async fn call(layer: &JwtAuthLayer, token: &str, grpc: bool) -> (StatusCode, Option<String>, Duration) {
    let svc =
        ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_req: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }));
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), svc.oneshot(request(token, grpc)))
        .await
        .expect("the middleware must never hang")
        .unwrap();
    let grpc_status = r
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), grpc_status, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_fails_closed_then_recovers() {
    let Some(mut server) = redis_server::RedisServer::start_persistent() else {
        return;
    };
    let issuer = issuer();
    let store = store(&server.url()).await;
    let layer = JwtAuthLayer::new(issuer.validation(), store.clone()).store_timeout(STORE_TIMEOUT);
    let good = issuer.issue_plain("alice", "s1").unwrap();
    let revoked = issuer.issue_plain("alice", "s2").unwrap();
    tower_jwt_auth::store::SessionStore::deny_token(
        &*store,
        "alice",
        &revoked.jti,
        Duration::from_secs(960),
        MARKS,
    )
    .await
    .unwrap();
    assert_eq!(call(&layer, &good.token, false).await.0, StatusCode::OK);
    assert_eq!(
        call(&layer, &revoked.token, false).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Load, with Redis killed part-way. Bounded: 75 rounds of 3 requests, 30 s at most.
    // (While fred reconnects, commands wait for the store timeout, so outage rounds are slow.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut ok, mut unavailable, mut grpc_unavailable) = (0, 0, 0);
    for i in 0..75 {
        if i == 60 {
            server.kill();
        }
        if Instant::now() > deadline {
            break;
        }
        let (status, _, took) = call(&layer, &revoked.token, false).await;
        assert_ne!(
            status,
            StatusCode::OK,
            "a revoked token was let through at request {i}"
        );
        let (status, _, took2) = call(&layer, &good.token, false).await;
        let (grpc_http, grpc_status, took3) = call(&layer, &good.token, true).await;
        for t in [took, took2, took3] {
            assert!(
                t < STORE_TIMEOUT + Duration::from_millis(700),
                "answered in {t:?}"
            );
        }
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("unexpected {other} at request {i}"),
        }
        if i >= 60 {
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "Redis is down: request {i} must fail closed"
            );
            assert_eq!((grpc_http, grpc_status.as_deref()), (StatusCode::OK, Some("14")));
            grpc_unavailable += 1;
        }
    }
    assert!(
        ok >= 60 && unavailable >= 10 && grpc_unavailable >= 10,
        "{ok} ok, {unavailable} 503"
    );

    // Back up on the same port: service resumes by itself.
    server.restart();
    let start = Instant::now();
    loop {
        let (status, _, _) = call(&layer, &good.token, false).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no recovery after restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The denylist entry was on disk: still revoked.
    assert_eq!(
        call(&layer, &revoked.token, false).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_survive_a_restart_and_refresh_fails_closed() {
    let Some(mut server) = redis_server::RedisServer::start_persistent() else {
        return;
    };
    let store = store(&server.url()).await;
    let secrets = RefreshSecrets::new("k1", &[9u8; 32]).unwrap();
    let sessions = Sessions::new(issuer(), store.clone(), secrets).grace(Duration::ZERO);
    let layer = sessions.auth_layer();

    let logged_out = sessions.login("alice").await.unwrap();
    let reused = sessions.login("alice").await.unwrap();
    let everywhere = sessions.login("bob").await.unwrap();
    let alive = sessions.login("carol").await.unwrap();
    sessions
        .logout(Some(&logged_out.refresh_token), Some(&logged_out.access.token))
        .await
        .unwrap();
    let rotated = sessions.refresh(&reused.refresh_token).await.unwrap();
    assert!(
        sessions.refresh(&reused.refresh_token).await.is_err(),
        "reuse detected"
    );
    sessions.logout_all("bob").await.unwrap();

    // Refresh while Redis is down: 503 through the refresh endpoint, never invalid_grant.
    server.kill();
    let svc = sessions.endpoints().refresh();
    let req = Request::post("/auth/refresh")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(
            "{{\"refresh_token\":\"{}\"}}",
            alive.refresh_token
        ))))
        .unwrap();
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), svc.clone().oneshot(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());

    server.restart();
    let start = Instant::now();
    let refreshed = loop {
        match sessions.refresh(&alive.refresh_token).await {
            Ok(pair) => break pair,
            Err(tower_jwt_auth::SessionError::Unavailable(_)) => {
                assert!(
                    start.elapsed() < Duration::from_secs(15),
                    "no recovery after restart"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the outage must not have spent or revoked the session: {e}"),
        }
    };
    assert_eq!(
        call(&layer, &refreshed.access.token, false).await.0,
        StatusCode::OK
    );

    // Every revocation made before the restart still holds.
    for token in [
        &logged_out.access.token,
        &rotated.access.token,
        &everywhere.access.token,
    ] {
        assert_eq!(call(&layer, token, false).await.0, StatusCode::UNAUTHORIZED);
    }
    for refresh in [
        &logged_out.refresh_token,
        &rotated.refresh_token,
        &everywhere.refresh_token,
    ] {
        assert_eq!(
            sessions.refresh(refresh).await.unwrap_err(),
            tower_jwt_auth::SessionError::InvalidGrant
        );
    }
}
