//! End to end: the tonic example (grpc.health.v1.Health behind the layer) driven by a real
//! tonic health client, and checked at the HTTP/2 level for trailers-only rejections. The
//! HTTP/2-level checks serve the example's server in-process; the rest run the binary.

#[path = "support/example.rs"]
mod example;
#[path = "support/tools.rs"]
mod tools;

#[path = "../examples/tonic/grpc.rs"]
mod grpc;

use std::time::Duration;

use example::{Example, Keys};
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_jwt_auth::{Issuer, MemoryStore, SigningKey};

async fn channel(server: &Example) -> Channel {
    Channel::from_shared(format!("http://{}", server.addr()))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

/// `Health/Check` for `service` with `authorization` set to `auth` (if any).
async fn check_service(channel: &Channel, service: &str, auth: Option<&str>) -> Result<i32, Status> {
    let mut request = Request::new(HealthCheckRequest {
        service: service.into(),
    });
    if let Some(auth) = auth {
        let value: MetadataValue<_> = auth.parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    HealthClient::new(channel.clone())
        .check(request)
        .await
        .map(|r| r.into_inner().status)
}

async fn check(channel: &Channel, token: Option<&str>) -> Result<i32, Status> {
    check_service(channel, "", token.map(|t| format!("Bearer {t}")).as_deref()).await
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn tonic_health_behind_the_layer() {
    let keys = Keys::generate();
    let server = Example::start("tonic", &keys.env()).await;
    assert!(
        server.lines().iter().any(|l| l.starts_with("try: grpcurl")),
        "a usage hint: {:?}",
        server.lines()
    );
    let channel = channel(&server).await;

    let printed = server
        .printed("ACCESS_TOKEN")
        .expect("a ready token is printed")
        .to_owned();
    assert_eq!(
        check(&channel, Some(&printed)).await.unwrap(),
        ServingStatus::Serving as i32
    );
    // The token reaches the real service: an unknown service name is its NOT_FOUND.
    let status = check_service(&channel, "no.such.Service", Some(&format!("Bearer {printed}")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let missing = check(&channel, None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.message(), "authentication required");

    let foreign = Issuer::new(SigningKey::generate().unwrap())
        .issue_plain("alice", "s")
        .unwrap()
        .token;
    let (head, sig) = printed.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{head}.{flipped}{}", &sig[1..]);
    let expired = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(keys.key.kid().to_owned());
        let claims = json!({
            "sub": "alice", "sid": "s", "jti": "expired-0123456789abcdef",
            "iat": now() - 3600, "exp": now() - 3000,
        });
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(keys.private_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    for (bad, description) in [
        (foreign.as_str(), "unknown signing key"),
        (tampered.as_str(), "invalid signature"),
        (expired.as_str(), "token expired"),
        ("garbage", "malformed token"),
    ] {
        let status = check(&channel, Some(bad)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{description}: {status:?}");
        assert_eq!(status.message(), description);
    }

    // Another scheme carries no bearer token; a malformed header is refused as such. Both
    // stop at the layer as UNAUTHENTICATED.
    for (auth, description) in [
        ("Basic YWxpY2U6d29uZGVybGFuZA==", "authentication required"),
        ("Bearer two words", "malformed Authorization header"),
    ] {
        let status = check_service(&channel, "", Some(auth)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{auth}: {status:?}");
        assert_eq!(status.message(), description);
    }

    // The channel survives all those rejections and still serves good calls.
    assert_eq!(
        check(&channel, Some(&printed)).await.unwrap(),
        ServingStatus::Serving as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn rejections_are_trailers_only_grpc_responses() {
    let keys = Keys::generate();
    let issuer = Issuer::new(keys.key.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(grpc::serve(
        listener,
        issuer.validation(),
        MemoryStore::new(),
        async {
            let _ = stopped.await;
        },
    ));
    let token = issuer.issue_plain("alice", "s").unwrap().token;
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap();
    let call = |path: &str, auth: Option<String>| {
        // An empty HealthCheckRequest: 5-byte gRPC frame header, zero-length message.
        let mut request = http2
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(vec![0u8; 5]);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    const CHECK: &str = "/grpc.health.v1.Health/Check";

    for (auth, message) in [
        (None, "authentication required"),
        (Some("Bearer garbage".to_owned()), "malformed token"),
    ] {
        let r = call(CHECK, auth).await.unwrap();
        assert_eq!(
            r.status(),
            reqwest::StatusCode::OK,
            "gRPC errors travel with HTTP 200"
        );
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.headers()["content-type"], "application/grpc");
        assert_eq!(r.headers()["grpc-status"], "16");
        assert_eq!(r.headers()["grpc-message"], message);
        assert!(r.bytes().await.unwrap().is_empty(), "trailers-only: no body");
    }

    // The layer sits in front of routing: an unknown method is refused the same way without a
    // token, and is the router's UNIMPLEMENTED (12) with one.
    let r = call("/no.such.Service/Call", None).await.unwrap();
    assert_eq!(r.headers()["grpc-status"], "16");
    let r = call("/no.such.Service/Call", Some(format!("Bearer {token}")))
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(r.headers()["grpc-status"], "12");

    // And a good token goes through to the real service: a message, the status in trailers.
    let r = call(CHECK, Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(
        r.headers().get("grpc-status").is_none(),
        "a real response carries its status in trailers"
    );
    let body = r.bytes().await.unwrap();
    // One uncompressed frame holding HealthCheckResponse { status: SERVING (1) }.
    assert_eq!(&body[..], &[0, 0, 0, 0, 2, 0x08, 0x01]);
    drop(stop);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn verify_only_mode_prints_no_token_and_verifies() {
    let keys = Keys::generate();
    let server = Example::start("tonic", &[("JWT_PUBLIC_KEY", &keys.public_pem)]).await;
    assert!(
        server.printed("ACCESS_TOKEN").is_none(),
        "nothing to mint with: {:?}",
        server.lines()
    );
    let channel = channel(&server).await;
    let token = Issuer::new(keys.key).issue_plain("carol", "s").unwrap().token;
    assert_eq!(
        check(&channel, Some(&token)).await.unwrap(),
        ServingStatus::Serving as i32
    );
    let foreign = Issuer::new(SigningKey::generate().unwrap())
        .issue_plain("carol", "s")
        .unwrap()
        .token;
    let status = check(&channel, Some(&foreign)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "unknown signing key");
}
