//! End to end: `examples/tonic.rs` (grpc.health.v1.Health behind the layer) driven by a real
//! tonic health client, and checked at the HTTP/2 level for trailers-only rejections.

#[path = "support/example.rs"]
mod example;

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_jwt_auth::{Issuer, SigningKey};

async fn check(channel: &Channel, token: Option<&str>) -> Result<i32, tonic::Status> {
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(t) = token {
        let value: MetadataValue<_> = format!("Bearer {t}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    HealthClient::new(channel.clone())
        .check(request)
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn tonic_health_behind_the_layer() {
    let key = SigningKey::generate().unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    let server = example::Example::start("tonic", &[("JWT_PRIVATE_KEY", &pem)]).await;
    let channel = Channel::from_shared(format!("http://{}", server.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let printed = server
        .printed("ACCESS_TOKEN")
        .expect("a ready token is printed")
        .to_owned();
    assert_eq!(
        check(&channel, Some(&printed)).await.unwrap(),
        ServingStatus::Serving as i32
    );

    let missing = check(&channel, None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.message(), "authentication required");

    let foreign = Issuer::new(SigningKey::generate().unwrap())
        .issue_plain("alice", "s")
        .unwrap()
        .token;
    let status = check(&channel, Some(&foreign)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "unknown signing key");

    let (head, sig) = printed.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}.{flipped}{}", &sig[1..]);
    let status = check(&channel, Some(&tampered)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "invalid signature");

    let status = check(&channel, Some("garbage")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn rejections_are_trailers_only_grpc_responses() {
    let key = SigningKey::generate().unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    let server = example::Example::start("tonic", &[("JWT_PRIVATE_KEY", &pem)]).await;
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let url = format!("http://{}/grpc.health.v1.Health/Check", server.addr());
    // An empty HealthCheckRequest: 5-byte gRPC frame header, zero-length message.
    let frame = vec![0u8, 0, 0, 0, 0];
    let r = http2
        .post(&url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(frame.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "gRPC errors travel with HTTP 200"
    );
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.headers()["content-type"], "application/grpc");
    assert_eq!(r.headers()["grpc-status"], "16");
    assert_eq!(r.headers()["grpc-message"], "authentication required");
    assert!(r.bytes().await.unwrap().is_empty(), "trailers-only: no body");

    // And a good token goes through to the real service.
    let token = Issuer::new(key).issue_plain("alice", "s").unwrap().token;
    let r = http2
        .post(&url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .bearer_auth(token)
        .body(frame)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(
        r.headers().get("grpc-status").is_none(),
        "a real response carries its status in trailers"
    );
    assert!(
        !r.bytes().await.unwrap().is_empty(),
        "a HealthCheckResponse message"
    );
}
