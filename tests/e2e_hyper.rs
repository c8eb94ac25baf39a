//! End to end: `examples/hyper.rs` (a bare hyper `service_fn` behind the layer) over HTTP.

#[path = "support/example.rs"]
mod example;

use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::Value;
use tower_jwt_auth::{Issuer, SigningKey};

#[tokio::test]
async fn hyper_example_verifies_tokens() {
    let key = SigningKey::generate().unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    let server = example::Example::start("hyper", &[("JWT_PRIVATE_KEY", &pem)]).await;
    let url = format!("http://{}/", server.addr());
    let http = reqwest::Client::new();

    // The printed token works as is.
    let printed = server
        .printed("ACCESS_TOKEN")
        .expect("a ready token is printed")
        .to_owned();
    let r = http.get(&url).bearer_auth(&printed).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let claims: Value = r.json().await.unwrap();
    assert_eq!(claims["sub"], "alice");

    // A token minted here with the same key (the server parsed JWT_PRIVATE_KEY).
    let token = Issuer::new(key.clone()).issue_plain("bob", "s").unwrap().token;
    let claims: Value = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(claims["sub"], "bob");

    // No token.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    // Bad tokens: another key, a tampered one.
    let foreign = Issuer::new(SigningKey::generate().unwrap())
        .issue_plain("alice", "s")
        .unwrap()
        .token;
    let mut tampered = printed.clone();
    tampered.insert(tampered.find('.').unwrap() + 5, 'A');
    for bad in [foreign, tampered, "garbage".into()] {
        let r = http.get(&url).bearer_auth(&bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }

    // Malformed requests.
    let r = http
        .get(&url)
        .header(AUTHORIZATION, format!("Bearer {printed}"))
        .header(AUTHORIZATION, format!("Bearer {printed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let r = http
        .get(format!("{url}?access_token={printed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn verify_only_mode_with_just_the_public_key() {
    let key = SigningKey::generate().unwrap();
    let public_pem = key.verifying_key().to_spki_pem().unwrap();
    let server = example::Example::start("hyper", &[("JWT_PUBLIC_KEY", &public_pem)]).await;
    assert!(server.printed("ACCESS_TOKEN").is_none(), "nothing to mint with");
    let token = Issuer::new(key).issue_plain("carol", "s").unwrap().token;
    let r = reqwest::Client::new()
        .get(format!("http://{}/", server.addr()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
