//! The middleware through tower: claims in extensions, optional mode, store failures
//! (fail closed, timeouts, fail open), gRPC rejections, a custom rejection.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_jwt_auth::reject::{DefaultRejection, RejectBody};
use tower_jwt_auth::store::{
    Grant, MarkPolicy, NewSession, RevocationStore, RotateOutcome, Rotation, SessionInfo, SessionStore,
    TokenRef, TokenStatus,
};
use tower_jwt_auth::{
    AuthError, Claims, Issuer, JwtAuthLayer, MemoryStore, SigningKey, StoreError, StoreErrorKind, Subject,
};

/// A store whose revocation check fails, or hangs. The middleware needs nothing more.
#[derive(Clone, Copy)]
enum Broken {
    Fails,
    Hangs,
}

impl RevocationStore for Broken {
    fn check<'a>(&'a self, _: TokenRef<'a>) -> BoxFuture<'a, Result<TokenStatus, StoreError>> {
        Box::pin(async move {
            match self {
                Broken::Fails => Err(StoreError::new(StoreErrorKind::Unavailable, "connection refused")),
                Broken::Hangs => std::future::pending().await,
            }
        })
    }
}

/// A session store that never answers.
struct Hangs;

fn hang<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, StoreError>> {
    Box::pin(std::future::pending())
}

impl RevocationStore for Hangs {
    fn check<'a>(&'a self, _: TokenRef<'a>) -> BoxFuture<'a, Result<TokenStatus, StoreError>> {
        hang()
    }
}

impl SessionStore for Hangs {
    fn create_session<'a>(&'a self, _: NewSession<'a>) -> BoxFuture<'a, Result<Grant, StoreError>> {
        hang()
    }
    fn rotate<'a>(&'a self, _: Rotation<'a>) -> BoxFuture<'a, Result<RotateOutcome, StoreError>> {
        hang()
    }
    fn deny_token<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Duration,
        _: MarkPolicy,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        hang()
    }
    fn revoke_session<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: MarkPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        hang()
    }
    fn revoke_all<'a>(&'a self, _: &'a str, _: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        hang()
    }
    fn sessions<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        hang()
    }
}

fn issuer() -> Issuer {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    Issuer::new(KEY.get_or_init(|| SigningKey::generate().unwrap()).clone())
}

async fn echo(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let who = req
        .extensions()
        .get::<Claims>()
        .map_or("anonymous".to_owned(), |c| c.sub.clone());
    Ok(Response::new(Full::new(Bytes::from(who))))
}

fn request(token: Option<&str>, grpc: bool) -> Request<Full<Bytes>> {
    let mut b = Request::builder().uri("/x");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if grpc {
        b = b.header("content-type", "application/grpc");
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

async fn body<B: http_body::Body>(r: Response<B>) -> String
where
    B::Error: std::fmt::Debug,
{
    String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn valid_token_reaches_the_service_with_claims() {
    let issuer = issuer();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(
            issuer.validation(),
            Arc::new(MemoryStore::new()),
        ))
        .service_fn(echo);
    let token = issuer.issue_plain("alice", "s").unwrap().token;
    let r = svc.clone().oneshot(request(Some(&token), false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await, "alice");
    let r = svc.oneshot(request(None, false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_but_not_bad_tokens() {
    let issuer = issuer();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(issuer.validation(), Arc::new(MemoryStore::new())).optional())
        .service_fn(echo);
    let r = svc.clone().oneshot(request(None, false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await, "anonymous");
    let token = issuer.issue_plain("alice", "s").unwrap().token;
    assert_eq!(
        body(svc.clone().oneshot(request(Some(&token), false)).await.unwrap()).await,
        "alice"
    );
    let r = svc.oneshot(request(Some("not-a-token"), false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoked_tokens_are_refused() {
    let issuer = issuer();
    let store = Arc::new(MemoryStore::new());
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(issuer.validation(), store.clone()))
        .service_fn(echo);
    let t = issuer.issue_plain("alice", "s").unwrap();
    let marks = MarkPolicy {
        window: Duration::from_secs(960),
        max_per_user: 1000,
    };
    store
        .deny_token("alice", &t.jti, Duration::from_secs(960), marks)
        .await
        .unwrap();
    let r = svc.oneshot(request(Some(&t.token), false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"invalid_token\"") && challenge.contains("token revoked"),
        "{challenge}"
    );
}

#[tokio::test]
async fn store_failure_fails_closed_with_503_and_grpc_14() {
    let issuer = issuer();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(issuer.validation(), Broken::Fails))
        .service_fn(echo);
    let token = issuer.issue_plain("alice", "s").unwrap().token;
    let r = svc.clone().oneshot(request(Some(&token), false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(
        r.headers().get("www-authenticate").is_none(),
        "not an auth failure: clients must not refresh"
    );
    let json: serde_json::Value = serde_json::from_str(&body(r).await).unwrap();
    assert_eq!(json["error"], "temporarily_unavailable");

    let r = svc.clone().oneshot(request(Some(&token), true)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "gRPC: trailers-only response");
    assert_eq!(r.headers()["grpc-status"], "14");
    assert_eq!(r.headers()["content-type"], "application/grpc");
    // A bad token never reaches the broken store: still a clean 401 / 16.
    let r = svc.clone().oneshot(request(Some("x.y.z"), true)).await.unwrap();
    assert_eq!(r.headers()["grpc-status"], "16");
    assert_eq!(r.headers()["grpc-message"], "malformed token");
}

#[tokio::test]
async fn a_hanging_store_times_out_into_503() {
    let issuer = issuer();
    let svc = ServiceBuilder::new()
        .layer(
            JwtAuthLayer::new(issuer.validation(), Broken::Hangs).store_timeout(Duration::from_millis(200)),
        )
        .service_fn(echo);
    let token = issuer.issue_plain("alice", "s").unwrap().token;
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), svc.oneshot(request(Some(&token), false)))
        .await
        .expect("the middleware must not hang")
        .unwrap();
    let took = start.elapsed();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn fail_open_is_an_explicit_choice() {
    let issuer = issuer();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(issuer.validation(), Broken::Fails).fail_open(true))
        .service_fn(echo);
    let token = issuer.issue_plain("alice", "s").unwrap().token;
    let r = svc.clone().oneshot(request(Some(&token), false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await, "alice");
    // Fail-open never waives verification.
    let r = svc.oneshot(request(Some("x.y.z"), false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn realm_and_custom_rejection() {
    let issuer = issuer();
    let layer = JwtAuthLayer::new(issuer.validation(), Arc::new(MemoryStore::new()));
    let svc = ServiceBuilder::new()
        .layer(layer.clone().realm("api \"v1\""))
        .service_fn(echo);
    let r = svc.oneshot(request(Some("x.y.z"), false)).await.unwrap();
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"api v1\", error=\"invalid_token\", error_description=\"malformed token\""
    );

    // Realm and Retry-After both adjust the default rejection, in any order, and the realm
    // is added to a configured default rejection, never replacing it.
    let token = issuer.issue_plain("alice", "s").unwrap().token;
    let layers = [
        JwtAuthLayer::new(issuer.validation(), Broken::Fails)
            .retry_after_secs(7)
            .realm("api"),
        JwtAuthLayer::new(issuer.validation(), Broken::Fails)
            .rejection(DefaultRejection::default().retry_after_secs(7))
            .realm("api"),
    ];
    for layer in layers {
        let svc = ServiceBuilder::new().layer(layer).service_fn(echo);
        let r = svc.clone().oneshot(request(Some(&token), false)).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "7");
        let r = svc.oneshot(request(None, false)).await.unwrap();
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"api\"");
    }

    let custom = |e: AuthError, _: &HeaderMap| -> Response<RejectBody> {
        let mut r = Response::new(Full::new(Bytes::from(format!("nope: {e}"))));
        *r.status_mut() = StatusCode::IM_A_TEAPOT;
        r
    };
    let svc = ServiceBuilder::new()
        .layer(layer.rejection(custom))
        .service_fn(echo);
    let r = svc.oneshot(request(None, false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(body(r).await, "nope: authentication required");
}

#[tokio::test]
async fn app_claims_are_typed() {
    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
    struct App {
        role: String,
    }
    let issuer = issuer();
    let token = issuer
        .issue("alice", "s", &App { role: "admin".into() })
        .unwrap()
        .token;
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(issuer.validation(), Arc::new(MemoryStore::new())).claims::<App>())
        .service(service_fn(|req: Request<Full<Bytes>>| async move {
            let role = req.extensions().get::<Claims<App>>().unwrap().extra.role.clone();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(role))))
        }));
    assert_eq!(
        body(svc.oneshot(request(Some(&token), false)).await.unwrap()).await,
        "admin"
    );
}

#[tokio::test]
async fn token_endpoints_time_out_into_503_too() {
    use tower_jwt_auth::{RefreshSecrets, SessionError, Sessions};
    let secrets = RefreshSecrets::new("k1", &[3u8; 32]).unwrap();
    let sessions = Sessions::new(issuer(), Hangs, secrets).store_timeout(Duration::from_millis(200));
    let start = Instant::now();
    assert!(matches!(
        sessions.login("alice").await,
        Err(SessionError::Unavailable(_))
    ));
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    let response = sessions
        .endpoints()
        .login_response("alice", &http::HeaderMap::new())
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
}

#[tokio::test]
async fn the_subject_is_there_whatever_the_claims_type() {
    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
    struct App {
        role: String,
    }
    let issuer = issuer();
    let token = issuer
        .issue("alice", "s-1", &App { role: "admin".into() })
        .unwrap()
        .token;
    let layer = JwtAuthLayer::new(issuer.validation(), MemoryStore::new()).claims::<App>();
    let mut svc =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|req: Request<Full<Bytes>>| async move {
                let who = req.extensions().get::<Subject>().cloned().unwrap();
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                    "{}/{}",
                    who.sub, who.sid
                )))))
            }));
    // The inner service is reachable, as in tower-http.
    let _: &_ = svc.get_ref();
    let _: &mut _ = svc.get_mut();
    assert_eq!(
        body(svc.clone().oneshot(request(Some(&token), false)).await.unwrap()).await,
        "alice/s-1"
    );
    let _inner = svc.into_inner();
}

#[tokio::test]
async fn a_cached_token_is_still_checked_for_revocation_and_expiry() {
    use tower_jwt_auth::{RefreshSecrets, Sessions};
    // `iat` is whole seconds: a 1 s token minted late in a second could expire before the
    // first requests; 3 s leaves at least 2.
    let issuer = issuer().access_ttl(Duration::from_secs(3));
    let sessions =
        Sessions::new(issuer, MemoryStore::new(), RefreshSecrets::generate()).leeway(Duration::ZERO);
    let svc = ServiceBuilder::new()
        .layer(sessions.auth_layer())
        .service_fn(echo);
    let revoked = sessions.login("alice").await.unwrap();
    let expiring = sessions.login("bob").await.unwrap();
    for pair in [&revoked, &expiring] {
        for _ in 0..2 {
            let r = svc
                .clone()
                .oneshot(request(Some(&pair.access.token), false))
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "cached after the first");
        }
    }
    sessions.logout(None, Some(&revoked.access.token)).await.unwrap();
    let r = svc
        .clone()
        .oneshot(request(Some(&revoked.access.token), false))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "revocation is checked on a hit"
    );
    // Past `exp` (no leeway), the cached token is refused as expired.
    let wait = (expiring.access.expires_at * 1000).saturating_sub(now_ms()) + 50;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let r = svc
        .oneshot(request(Some(&expiring.access.token), false))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("token expired"));
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
