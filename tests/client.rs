//! The client side end to end: the demo's router served in-process (access tokens living
//! 2 s), driven by real clients wrapped in `AuthClientLayer` — a hyper client over HTTP and
//! a tonic health client over gRPC — and by reqwest through `AuthMiddleware`. Refreshes are
//! counted at the server (rotations reaching its store).

#[path = "../examples/axum/demo.rs"]
#[allow(dead_code)]
mod demo;

#[path = "../examples/tonic/grpc.rs"]
mod grpc;

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/tools.rs"]
mod tools;

#[path = "support/counting.rs"]
mod counting;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use counting::Counting;
use futures_util::future::BoxFuture;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_jwt_auth::client::{
    AuthClientError, AuthClientLayer, AuthMiddleware, ClientError, HttpRefresh, RefreshTransport,
    TokenManager, TransportError,
};
use tower_jwt_auth::store::Store;
use tower_jwt_auth::{Issuer, MemoryStore, RefreshSecrets, Sessions, SigningKey, TokenResponse};

/// The demo in-process with 2 s access tokens; `grace` for the refresh tokens.
struct Server {
    base: String,
    sessions: Sessions,
    rotations: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn server(store: Store, grace: Duration) -> Server {
    let rotations = Arc::new(AtomicUsize::new(0));
    let counting = Counting {
        inner: store,
        rotations: rotations.clone(),
    };
    let issuer = Issuer::new(SigningKey::generate().unwrap()).access_ttl(Duration::from_secs(2));
    let sessions = Sessions::new(issuer, counting, RefreshSecrets::generate()).grace(grace);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = demo::router(sessions.clone());
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Server {
        base,
        sessions,
        rotations,
        _stop: stop,
    }
}

impl Server {
    fn transport(&self) -> HttpRefresh {
        HttpRefresh::new(
            format!("{}/auth/refresh", self.base).parse().unwrap(),
            format!("{}/auth/logout", self.base).parse().unwrap(),
        )
    }

    /// Logs alice in as a native client does (the refresh token in the body).
    async fn login(&self) -> TokenResponse {
        let r = reqwest::Client::new()
            .post(format!("{}/auth/login", self.base))
            .json(&serde_json::json!({"username": "alice", "password": "wonderland"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    fn rotations(&self) -> usize {
        self.rotations.load(Ordering::SeqCst)
    }
}

type Http = tower_jwt_auth::client::AuthClient<
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
>;

fn http_client(manager: TokenManager) -> Http {
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    ServiceBuilder::new()
        .layer(AuthClientLayer::new(manager))
        .service(http)
}

/// `GET /me` through the client: the status, or the client's own error.
async fn me(
    client: &Http,
    base: &str,
) -> Result<StatusCode, AuthClientError<hyper_util::client::legacy::Error>> {
    let req = Request::get(format!("{base}/me"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.clone().oneshot(req).await?;
    let status = response.status();
    let _ = response.into_body().collect().await;
    Ok(status)
}

/// `n` concurrent `GET /me`: how many answered 200.
async fn wave(client: &Http, base: &str, n: usize) -> usize {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let (client, base) = (client.clone(), base.to_owned());
            tokio::spawn(async move { me(&client, &base).await })
        })
        .collect();
    let mut ok = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(StatusCode::OK) => ok += 1,
            other => panic!("a call failed: {other:?}"),
        }
    }
    ok
}

async fn hundred_calls_across_expiries(grace: Duration) {
    let server = server(MemoryStore::new().into(), grace).await;
    let manager = TokenManager::new(server.transport(), server.login().await).unwrap();
    let client = http_client(manager);
    // t = 0: the login's token. Tokens live 2 s and renew at half their life, so each wave
    // 1.1 s apart finds the token due: exactly one refresh for its 100 calls.
    assert_eq!(wave(&client, &server.base, 100).await, 100);
    assert_eq!(server.rotations(), 0);
    for expected in 1..=3 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(wave(&client, &server.base, 100).await, 100, "0 failures");
        assert_eq!(server.rotations(), expected, "one refresh per expiry");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_client_100_calls_across_expiries_with_grace() {
    hundred_calls_across_expiries(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_client_100_calls_across_expiries_without_grace() {
    hundred_calls_across_expiries(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_once_and_every_call_retried_once() {
    let server = server(MemoryStore::new().into(), Duration::ZERO).await;
    let mut tokens = server.login().await;
    // The server refuses this access token (as it would a revoked or expired one), while
    // the refresh token is good: every call gets 401 invalid_token, one refresh follows,
    // and each call is sent once more.
    tokens.access_token = "not.a.token".into();
    tokens.expires_in = 900;
    let client = http_client(TokenManager::new(server.transport(), tokens).unwrap());
    assert_eq!(wave(&client, &server.base, 100).await, 100);
    assert_eq!(server.rotations(), 1);
}

/// A transport counting the refresh attempts leaving the client.
struct CountingTransport {
    inner: HttpRefresh,
    attempts: Arc<AtomicUsize>,
}

impl RefreshTransport for CountingTransport {
    fn refresh<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<TokenResponse, TransportError>> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.inner.refresh(token)
    }
    fn logout<'a>(&'a self, r: &'a str, a: Option<&'a str>) -> BoxFuture<'a, Result<(), TransportError>> {
        self.inner.logout(r, a)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_at_the_server_signs_the_client_out_after_one_attempt() {
    let server = server(MemoryStore::new().into(), Duration::from_secs(10)).await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let transport = CountingTransport {
        inner: server.transport(),
        attempts: attempts.clone(),
    };
    let rotated = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = rotated.clone();
    let manager = TokenManager::new(transport, server.login().await)
        .unwrap()
        .on_rotate(move |t| log.lock().unwrap().push(t.to_owned()));
    let client = http_client(manager.clone());
    assert_eq!(me(&client, &server.base).await.unwrap(), StatusCode::OK);
    // The user revokes this device from another one.
    let sid = server.sessions.list("alice").await.unwrap()[0].sid.clone();
    assert!(server.sessions.revoke("alice", &sid).await.unwrap());
    // The revoked access token is refused at once; the refresh is refused too: signed out.
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (client, base) = (client.clone(), server.base.clone());
            tokio::spawn(async move { me(&client, &base).await })
        })
        .collect();
    for call in calls {
        match call.await.unwrap() {
            Err(AuthClientError::Auth(ClientError::SignedOut)) => {}
            other => panic!("expected signed out, got {other:?}"),
        }
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "one refresh attempt for all");
    assert!(!manager.is_signed_in());
    assert!(matches!(
        me(&client, &server.base).await,
        Err(AuthClientError::Auth(ClientError::SignedOut))
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "no retry storm");
    assert!(rotated.lock().unwrap().is_empty(), "nothing rotated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_unavailable_never_signed_out_and_the_client_resumes() {
    let Some(mut redis) = redis_server::RedisServer::start_persistent() else {
        return;
    };
    let store = tower_jwt_auth::RedisStore::connect_with(&redis.url(), Duration::from_millis(300))
        .await
        .unwrap();
    let server = server(store.into(), Duration::from_secs(10)).await;
    let manager = TokenManager::new(server.transport(), server.login().await).unwrap();
    let client = http_client(manager.clone());
    assert_eq!(me(&client, &server.base).await.unwrap(), StatusCode::OK);

    redis.kill();
    // Past the token's expiry, no refresh can succeed: callers hear "unavailable".
    tokio::time::sleep(Duration::from_millis(2100)).await;
    match me(&client, &server.base).await {
        Err(AuthClientError::Auth(ClientError::Unavailable(_))) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(manager.is_signed_in(), "never treated as a logout");

    redis.restart();
    let start = std::time::Instant::now();
    loop {
        match me(&client, &server.base).await {
            Ok(StatusCode::OK) => break,
            Err(AuthClientError::Auth(ClientError::Unavailable(_))) | Ok(StatusCode::SERVICE_UNAVAILABLE) => {
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the client never resumed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(manager.is_signed_in());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_client_100_calls_across_expiries() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let server = server(MemoryStore::new().into(), Duration::from_secs(10)).await;
    // The gRPC service checks the same tokens against the same store.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let validation = server.sessions.validation().clone();
    let store = server.sessions.store().clone();
    tokio::spawn(grpc::serve(listener, validation, store, std::future::pending()));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let manager = TokenManager::new(server.transport(), server.login().await).unwrap();
    let client = ServiceBuilder::new()
        .layer(AuthClientLayer::new(manager))
        .service(channel);
    let health = HealthClient::new(client);
    for expected in 0..=2 {
        let calls: Vec<_> = (0..100)
            .map(|_| {
                let mut health = health.clone();
                tokio::spawn(async move {
                    health
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .map(|r| r.into_inner().status)
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), 1, "SERVING, 0 failures");
        }
        assert_eq!(server.rotations(), expected, "one refresh per expiry");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_middleware_shares_the_manager() {
    let server = server(MemoryStore::new().into(), Duration::ZERO).await;
    let manager = TokenManager::new(server.transport(), server.login().await).unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(manager.clone()))
        .build();
    let hyper = http_client(manager);
    let url = format!("{}/me", server.base);
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let claims: serde_json::Value = r.json().await.unwrap();
    assert_eq!(claims["sub"], "alice");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Both clients need a renewal at once: one refresh between them.
    let (a, b) = tokio::join!(client.get(&url).send(), me(&hyper, &server.base));
    assert_eq!(a.unwrap().status(), StatusCode::OK);
    assert_eq!(b.unwrap(), StatusCode::OK);
    assert_eq!(server.rotations(), 1);
    // Logout ends it for both.
    hyper.manager().logout().await.unwrap();
    let err = client.get(&url).send().await.unwrap_err();
    assert!(err.to_string().contains("signed out"), "{err}");
    assert!(matches!(
        me(&hyper, &server.base).await,
        Err(AuthClientError::Auth(ClientError::SignedOut))
    ));
}
