//! End to end: the hyper example (a bare hyper `service_fn` behind the layer) over HTTP.
//! Its application is served in-process; the binary's start-up modes run the real binary.

#[path = "support/example.rs"]
mod example;
#[path = "support/tools.rs"]
mod tools;

#[path = "../examples/hyper/app.rs"]
mod app;

use std::time::Duration;

use example::{Example, Keys};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use tower_jwt_auth::{Issuer, MemoryStore, SigningKey};

/// The example's application on a loopback port, in-process, verifying with `keys`; stops
/// when the returned sender is dropped.
async fn serve(keys: &Keys) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let validation = Issuer::new(keys.key.clone()).validation();
    tokio::spawn(app::serve(listener, validation, MemoryStore::new(), async {
        let _ = stopped.await;
    }));
    (base, stop)
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

async fn json(r: Response) -> Value {
    assert_eq!(
        r.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap()),
        Some("application/json")
    );
    r.json().await.unwrap()
}

fn challenge(r: &Response) -> String {
    r.headers()
        .get(WWW_AUTHENTICATE)
        .expect("a WWW-Authenticate challenge")
        .to_str()
        .unwrap()
        .to_owned()
}

/// An RS256 `at+jwt` signed with `key` by an independent encoder, with these claims.
fn forge(key: &Keys, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.key.kid().to_owned());
    let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn the_binary_prints_a_working_token() {
    let keys = Keys::generate();
    let server = Example::start("hyper", &keys.env()).await;
    let url = format!("http://{}/", server.addr());
    let printed = server
        .printed("ACCESS_TOKEN")
        .expect("a ready token is printed")
        .to_owned();
    assert!(
        server.lines().iter().any(|l| l.starts_with("try: curl")),
        "a usage hint: {:?}",
        server.lines()
    );
    let r = client().get(&url).bearer_auth(&printed).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let claims = json(r).await;
    assert_eq!(claims["sub"], "alice");
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()), "{claims}");
    assert!(claims["exp"].as_u64().unwrap() > now());
    // The server really uses the key it was given.
    let token = Issuer::new(keys.key.clone())
        .issue_plain("bob", "s")
        .unwrap()
        .token;
    let r = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(json(r).await["sub"], "bob");
    server.stop().await;
}

#[tokio::test]
async fn claims_and_rejections() {
    let keys = Keys::generate();
    let (base, _stop) = serve(&keys).await;
    let url = format!("{base}/");
    let http = client();
    let printed = Issuer::new(keys.key.clone())
        .issue_plain("alice", "s")
        .unwrap()
        .token;

    // A token minted here with the same key: the server really uses the key it was given.
    let token = Issuer::new(keys.key.clone())
        .issue_plain("bob", "s")
        .unwrap()
        .token;
    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["sub"], "bob");
    // The scheme is case-insensitive.
    let r = http
        .get(&url)
        .header(AUTHORIZATION, format!("bEaReR {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // No token: a bare challenge, a JSON error.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&r), "Bearer");
    let body = json(r).await;
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(body["error_description"], "authentication required");

    // Bad tokens, each with its fixed description and never an echo of the token.
    let foreign = Issuer::new(SigningKey::generate().unwrap())
        .issue_plain("alice", "s")
        .unwrap()
        .token;
    let (head, sig) = printed.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{head}.{flipped}{}", &sig[1..]);
    let expired = forge(
        &keys,
        &serde_json::json!({
            "sub": "alice", "sid": "s", "jti": "expired-0123456789abcdef",
            "iat": now() - 3600, "exp": now() - 3000,
        }),
    );
    let confused = {
        // HS256 keyed with the public key: the classic algorithm-confusion forgery.
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(keys.key.kid().to_owned());
        let claims = serde_json::json!({
            "sub": "alice", "sid": "s", "jti": "confused-0123456789abcdef",
            "iat": now(), "exp": now() + 60,
        });
        let secret = jsonwebtoken::EncodingKey::from_secret(keys.public_pem.as_bytes());
        jsonwebtoken::encode(&header, &claims, &secret).unwrap()
    };
    for (bad, description) in [
        (foreign.as_str(), "unknown signing key"),
        (tampered.as_str(), "invalid signature"),
        (expired.as_str(), "token expired"),
        (confused.as_str(), "unsupported algorithm"),
        ("garbage", "malformed token"),
    ] {
        let r = http.get(&url).bearer_auth(bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{description}");
        let challenge = challenge(&r);
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!("error_description=\"{description}\"")),
            "{challenge}"
        );
        let text = r.text().await.unwrap();
        assert!(!text.contains(bad), "the token is echoed: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["error_description"], description);
    }

    // Malformed requests: 400 invalid_request, even with a valid token.
    let r = http
        .get(&url)
        .header(AUTHORIZATION, format!("Bearer {printed}"))
        .header(AUTHORIZATION, format!("Bearer {printed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(challenge(&r).contains("error=\"invalid_request\""));
    assert_eq!(json(r).await["error"], "invalid_request");

    for query in [
        format!("?access_token={printed}"),
        format!("?x=1&access_token={printed}"),
    ] {
        let r = http
            .get(format!("{url}{query}"))
            .bearer_auth(&printed)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let text = r.text().await.unwrap();
        assert!(!text.contains(&printed), "the token is echoed: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn the_layer_guards_every_route() {
    let keys = Keys::generate();
    let (base, _stop) = serve(&keys).await;
    let http = client();
    let token = Issuer::new(keys.key.clone())
        .issue_plain("alice", "s")
        .unwrap()
        .token;

    // Unknown paths and methods are refused before routing without a token…
    let r = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http.post(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // …and reach the application's own answers with one.
    let r = http
        .get(format!("{base}/nope"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http
        .post(format!("{base}/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET");

    // HTTP/2 (prior knowledge) is served too: auto::Builder.
    let h2 = Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{base}/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), StatusCode::OK);
    let r = h2.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn verify_only_mode_with_just_the_public_key() {
    let keys = Keys::generate();
    let server = Example::start("hyper", &[("JWT_PUBLIC_KEY", &keys.public_pem)]).await;
    assert!(
        server.printed("ACCESS_TOKEN").is_none(),
        "nothing to mint with: {:?}",
        server.lines()
    );
    let url = format!("http://{}/", server.addr());
    let token = Issuer::new(keys.key).issue_plain("carol", "s").unwrap().token;
    let r = client().get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["sub"], "carol");

    let foreign = Issuer::new(SigningKey::generate().unwrap())
        .issue_plain("carol", "s")
        .unwrap()
        .token;
    let r = client().get(&url).bearer_auth(foreign).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_keys_it_runs_on_an_ephemeral_key_and_says_so() {
    let server = Example::start("hyper", &[]).await;
    let token = server.printed("ACCESS_TOKEN").expect("a ready token").to_owned();
    let r = client()
        .get(format!("http://{}/", server.addr()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["sub"], "alice");
    assert!(
        server.wait_for_stderr("ephemeral").await,
        "a warning about the key: {}",
        server.stderr()
    );
}

#[tokio::test]
async fn a_public_key_that_does_not_match_the_private_key_is_refused_at_start() {
    let keys = Keys::generate();
    let other = Keys::generate();
    let failure = match Example::try_start(
        "hyper",
        &[
            ("JWT_PRIVATE_KEY", &keys.private_pem),
            ("JWT_PUBLIC_KEY", &other.public_pem),
        ],
    )
    .await
    {
        Ok(_) => panic!("the example started with a mismatched key pair"),
        Err(failure) => failure,
    };
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure:?}");
    assert!(
        !failure.stdout.iter().any(|l| l.starts_with("ACCESS_TOKEN=")),
        "{failure:?}"
    );
    assert!(failure.stderr.contains("JWT_PUBLIC_KEY"), "{failure:?}");
}
