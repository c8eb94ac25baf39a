//! End to end: the demo application (`examples/axum`) driven over HTTP with reqwest. The
//! demo's router is served in-process on a loopback port; one test starts the real binary.

#[path = "support/example.rs"]
mod example;
#[path = "support/tools.rs"]
mod tools;

#[path = "../examples/axum/demo.rs"]
#[allow(dead_code)]
mod demo;

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use tower_jwt_auth::store::Store;
use tower_jwt_auth::{Issuer, MemoryStore, RefreshSecrets, Sessions, SigningKey};

struct Demo {
    base: String,
    http: Client,
    /// Stops the in-process server when dropped.
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
    _binary: Option<example::Example>,
}

impl Demo {
    /// The demo's router in-process, configured as the binary would be by `settings`
    /// (`REFRESH_GRACE_SECS`, `ACCESS_TTL_SECS`, `REDIS_URL`).
    async fn start(settings: &[(&str, &str)]) -> Demo {
        let setting = |name: &str| settings.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let secs = |name: &str| setting(name).map(|v| Duration::from_secs(v.parse().unwrap()));
        let mut issuer = Issuer::new(SigningKey::generate().unwrap());
        if let Some(ttl) = secs("ACCESS_TTL_SECS") {
            issuer = issuer.access_ttl(ttl);
        }
        let store: Store = match setting("REDIS_URL") {
            Some(url) => tower_jwt_auth::RedisStore::connect(url).await.unwrap().into(),
            None => MemoryStore::new().into(),
        };
        let mut sessions = Sessions::new(issuer, store, RefreshSecrets::generate());
        if let Some(grace) = secs("REFRESH_GRACE_SECS") {
            sessions = sessions.grace(grace);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, demo::router(sessions))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Demo {
            base,
            http: Client::new(),
            _stop: Some(stop),
            _binary: None,
        }
    }

    /// The real binary (`cargo run --example axum`), configured by its environment.
    async fn binary(env: &[(&str, &str)]) -> Demo {
        let server = example::Example::start("axum", env).await;
        Demo {
            base: format!("http://{}", server.addr()),
            http: Client::new(),
            _stop: None,
            _binary: Some(server),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn login(&self, user: &str, password: &str) -> Response {
        self.http
            .post(self.url("/auth/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Logs in and returns (access token, refresh token).
    async fn pair(&self, user: &str, password: &str) -> (String, String) {
        let r = self.login(user, password).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        (
            body["access_token"].as_str().unwrap().into(),
            body["refresh_token"].as_str().unwrap().into(),
        )
    }

    async fn me(&self, access: &str) -> Response {
        self.http
            .get(self.url("/me"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
    }

    async fn refresh_json(&self, refresh: &str) -> Response {
        self.http
            .post(self.url("/auth/refresh"))
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await
            .unwrap()
    }
}

async fn error_of(r: Response) -> String {
    let body: Value = r.json().await.unwrap();
    assert!(body["error_description"].is_string(), "{body}");
    body["error"].as_str().unwrap().to_owned()
}

fn set_cookie(r: &Response) -> String {
    r.headers()
        .get(SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The `refresh_token=…` pair of a Set-Cookie header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn login_me_and_rejections() {
    let demo = Demo::start(&[]).await;
    let health = demo.http.get(demo.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // The page's login: the refresh token in the cookie.
    let r = demo
        .http
        .post(demo.url("/auth/login"))
        .header("x-requested-with", "fetch")
        .json(&json!({"username": "alice", "password": "wonderland"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookie = set_cookie(&r);
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/auth"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let r = demo
        .http
        .post(demo.url("/auth/refresh"))
        .header(COOKIE, cookie_pair(&cookie))
        .header("x-requested-with", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the cookie's token works");

    // A native client's: in the body.
    let r = demo.login("alice", "wonderland").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let access = body["access_token"].as_str().unwrap();
    assert!(body["refresh_token"].as_str().unwrap().starts_with("rt1."));

    let me = demo.me(access).await;
    assert_eq!(me.status(), StatusCode::OK);
    let claims: Value = me.json().await.unwrap();
    assert_eq!(
        (claims["sub"].as_str(), claims["role"].as_str()),
        (Some("alice"), Some("admin"))
    );
    assert_eq!(claims["email"], "alice@example.com");

    // Bad credentials, bad bodies.
    let r = demo.login("alice", "wrong").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(r).await, "invalid_credentials");
    let r = demo.login("mallory", "wonderland").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = demo
        .http
        .post(demo.url("/auth/login"))
        .header(CONTENT_TYPE, "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = demo
        .http
        .post(demo.url("/auth/login"))
        .body("alice:wonderland")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // No token: a bare challenge.
    let r = demo.http.get(demo.url("/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
    assert_eq!(error_of(r).await, "unauthorized");
    // A bad token: invalid_token, fixed description, never the token.
    let tampered = format!("{}x", access);
    let r = demo.me(&tampered).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{challenge}"
    );
    assert!(!challenge.contains(&access[..20]));
    assert_eq!(error_of(r).await, "invalid_token");
    // A refresh token is not an access token.
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(demo.me(refresh).await.status(), StatusCode::UNAUTHORIZED);
    // Malformed requests: 400 invalid_request.
    let r = demo
        .http
        .get(demo.url("/me"))
        .header(AUTHORIZATION, format!("Bearer {access}"))
        .header(AUTHORIZATION, format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_request\""));
    assert_eq!(error_of(r).await, "invalid_request");
    let r = demo
        .http
        .get(demo.url(&format!("/me?access_token={access}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // JWKS names the key the token was signed with.
    let jwks: Value = demo
        .http
        .get(demo.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header: Value = serde_json::from_slice(&b64url(access.split('.').next().unwrap())).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(jwks["keys"][0].get("d").is_none(), "no private material");
}

fn b64url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[tokio::test]
async fn refresh_by_json_form_and_cookie() {
    let demo = Demo::start(&[]).await;
    let (_, refresh) = demo.pair("bob", "builder").await;

    // JSON.
    let r = demo.refresh_json(&refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        demo.me(body["access_token"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );

    // RFC 6749 form.
    let r = demo
        .http
        .post(demo.url("/auth/refresh"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // Cookie only, no body: only from the application's own page. A cross-site form, or a
    // sibling subdomain (same site, so SameSite lets the cookie through), is refused with
    // 403 and nothing is touched.
    let cookie_refresh = |cookie: String, extra: Option<(&'static str, &'static str)>| {
        let mut req = demo.http.post(demo.url("/auth/refresh")).header(COOKIE, cookie);
        if let Some((name, value)) = extra {
            req = req.header(name, value);
        }
        req.send()
    };
    let cookie = format!("theme=dark; refresh_token={refresh}");
    for extra in [
        None,
        Some(("sec-fetch-site", "same-site")),
        Some(("origin", "https://evil.example")),
    ] {
        let r = cookie_refresh(cookie.clone(), extra).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{extra:?}");
        assert!(r.headers().get(SET_COOKIE).is_none(), "nothing cleared");
        assert_eq!(error_of(r).await, "invalid_request");
    }
    let r = cookie_refresh(cookie.clone(), Some(("x-requested-with", "fetch")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let next_cookie = cookie_pair(&set_cookie(&r));
    assert!(next_cookie.starts_with("refresh_token=rt1."), "{next_cookie}");
    assert_ne!(next_cookie, format!("refresh_token={refresh}"), "rotated");
    let body: Value = r.json().await.unwrap();
    // The refresh token stays in the HttpOnly cookie: page script cannot read it.
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(
        demo.me(body["access_token"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
    // The rotated cookie works in turn, from a same-origin fetch.
    let r = cookie_refresh(next_cookie.clone(), Some(("sec-fetch-site", "same-origin")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let live_cookie = cookie_pair(&set_cookie(&r));

    // A second cookie of that name, planted by a sibling subdomain: junk cannot lock the user
    // out (the one whose MAC verifies is used)...
    let tossed = format!("refresh_token=junk; {live_cookie}");
    let r = cookie_refresh(tossed, Some(("x-requested-with", "fetch")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let live_cookie = cookie_pair(&set_cookie(&r));
    // ...and a valid token of the attacker's own session cannot swap the user into it: the
    // refresh is refused, and the real cookie is not cleared, so it still works afterwards.
    let (attacker_access, attacker_refresh) = demo.pair("alice", "wonderland").await;
    let tossed = format!("refresh_token={attacker_refresh}; {live_cookie}");
    let r = cookie_refresh(tossed.clone(), Some(("x-requested-with", "fetch")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get(SET_COOKIE).is_none(), "nothing cleared");
    assert_eq!(error_of(r).await, "invalid_request");
    let r = cookie_refresh(live_cookie, Some(("x-requested-with", "fetch")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let live_cookie = cookie_pair(&set_cookie(&r));
    // A logout-everywhere by bearer token is never blocked by the cookies it carries.
    let bob_access = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = demo
        .http
        .post(demo.url("/auth/logout-all"))
        .bearer_auth(&bob_access)
        .header(COOKIE, format!("refresh_token={attacker_refresh}; {live_cookie}"))
        .header("x-requested-with", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(demo.me(&bob_access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        demo.me(&attacker_access).await.status(),
        StatusCode::OK,
        "only bob's"
    );
    // Nor a logout by bearer token with a planted valid cookie and no page header: the cookie
    // is left out (its session lives on, and it is not cleared), the bearer token's ends.
    let (access, _) = demo.pair("bob", "builder").await;
    let r = demo
        .http
        .post(demo.url("/auth/logout"))
        .bearer_auth(&access)
        .header(COOKIE, format!("refresh_token={attacker_refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers().get(SET_COOKIE).is_none(),
        "not the page's: nothing cleared"
    );
    assert_eq!(demo.me(&access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        demo.refresh_json(&attacker_refresh).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn forged_forms_neither_set_nor_clear_the_cookie() {
    // A cross-site page (or a sibling subdomain) auto-submits forms naming a token in the
    // body: the browser would apply any Set-Cookie of the answer.
    let demo = Demo::start(&[]).await;
    let (_, user_refresh) = demo.pair("bob", "builder").await;
    let (_, attacker_refresh) = demo.pair("alice", "wonderland").await;
    let user_cookie = format!("refresh_token={user_refresh}");
    let forged = |path: &str, form: Vec<(&'static str, String)>| {
        demo.http
            .post(demo.url(path))
            .header(COOKIE, user_cookie.clone())
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .form(&form)
            .send()
    };
    // The attacker's own token: it rotates (it is theirs), but the user is not signed into
    // that session.
    let grant = ("grant_type", "refresh_token".to_owned());
    let r = forged(
        "/auth/refresh",
        vec![grant.clone(), ("refresh_token", attacker_refresh)],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get(SET_COOKIE).is_none(), "no session swap");
    // A junk token fails without clearing the user's cookie.
    let r = forged("/auth/refresh", vec![grant, ("refresh_token", "rt1.junk".into())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get(SET_COOKIE).is_none(), "not cleared");
    assert_eq!(error_of(r).await, "invalid_grant");
    // A logout naming a junk token neither clears the cookie nor ends anything.
    let r = forged("/auth/logout", vec![("refresh_token", "rt1.junk".into())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get(SET_COOKIE).is_none(), "not cleared");
    // A forged login (the attacker's credentials) is refused before any session starts.
    let r = demo
        .http
        .post(demo.url("/auth/login"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"username": "alice", "password": "wonderland"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(SET_COOKIE).is_none(), "no login CSRF");
    assert_eq!(error_of(r).await, "invalid_request");
    // The user's cookie still works, from the page.
    let r = demo
        .http
        .post(demo.url("/auth/refresh"))
        .header(COOKIE, user_cookie.clone())
        .header("x-requested-with", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(cookie_pair(&set_cookie(&r)).starts_with("refresh_token=rt1."));
}

#[tokio::test]
async fn browsers_get_the_refresh_token_in_the_cookie_only() {
    let demo = Demo::start(&[]).await;
    let login = |page: Option<(&'static str, &'static str)>| {
        let mut req = demo
            .http
            .post(demo.url("/auth/login"))
            .json(&json!({"username": "alice", "password": "wonderland"}));
        if let Some((name, value)) = page {
            req = req.header(name, value);
        }
        req.send()
    };
    // The page (its custom header, or a same-origin fetch): the cookie only.
    for page in [("x-requested-with", "fetch"), ("sec-fetch-site", "same-origin")] {
        let r = login(Some(page)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(cookie_pair(&set_cookie(&r)).starts_with("refresh_token=rt1."));
        let body: Value = r.json().await.unwrap();
        assert!(body.get("refresh_token").is_none(), "{page:?}: {body}");
        assert!(body["access_token"].is_string());
    }
    // A native client (no page header) gets it in the body to keep, and no cookie.
    let r = login(None).await.unwrap();
    assert!(r.headers().get(SET_COOKIE).is_none());
    let body: Value = r.json().await.unwrap();
    assert!(body["refresh_token"].as_str().unwrap().starts_with("rt1."));
}

#[tokio::test]
async fn refresh_errors_have_the_right_status_and_code() {
    let demo = Demo::start(&[]).await;
    let (_, refresh) = demo.pair("alice", "wonderland").await;
    let url = demo.url("/auth/refresh");

    // 400 invalid_grant for garbage and forgeries; a dead cookie is cleared (a dead token in
    // the body says nothing of the cookie).
    let dead = "rt1.k1.616c696365.c2lk.0.AAAAAAAAAAAAAAAAAAAAAA";
    let r = demo.refresh_json(dead).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert_eq!(error_of(r).await, "invalid_grant");
    let (_, ended) = demo.pair("alice", "wonderland").await;
    let r = demo
        .http
        .post(demo.url("/auth/logout"))
        .json(&json!({ "refresh_token": ended }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = demo
        .http
        .post(&url)
        .header(COOKIE, format!("refresh_token={ended}"))
        .header("x-requested-with", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(&r).contains("Max-Age=0"));
    assert_eq!(error_of(r).await, "invalid_grant");
    let forged = refresh.replacen(".0.", ".7.", 1);
    let r = demo.refresh_json(&forged).await;
    assert_eq!(error_of(r).await, "invalid_grant");

    // 400 invalid_request: nothing sent, form without grant_type, two different tokens.
    let r = demo.http.post(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(r).await, "invalid_request");
    let r = demo
        .http
        .post(&url)
        .form(&[("refresh_token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(r).await, "invalid_request");
    let r = demo
        .http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "a"),
            ("refresh_token", "b"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, "invalid_request");
    // A token named in the body stands on its own: a cookie sent with it (maybe planted by a
    // sibling subdomain) is ignored rather than failing the request.
    let r = demo
        .http
        .post(&url)
        .header(COOKIE, "refresh_token=other")
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let refresh = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = demo
        .http
        .post(&url)
        .header(CONTENT_TYPE, "application/json")
        .body("[1,2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(r).await, "invalid_request");
    // 400 unsupported_grant_type.
    let r = demo
        .http
        .post(&url)
        .form(&[("grant_type", "password"), ("username", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(r).await, "unsupported_grant_type");
    // 405 with Allow.
    let r = demo.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST");
    // 413, declared or streamed without a length. (Twice the limit: small enough that the
    // client finishes writing before the server answers and closes.)
    let big = "x".repeat(8 * 1024);
    let r = demo
        .http
        .post(&url)
        .header(CONTENT_TYPE, "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let stream = futures_stream(big);
    let r = demo
        .http
        .post(&url)
        .header(CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // 415.
    let r = demo
        .http
        .post(&url)
        .header(CONTENT_TYPE, "text/plain")
        .body(refresh.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // None of that hurt the session.
    assert_eq!(demo.refresh_json(&refresh).await.status(), StatusCode::OK);
}

fn futures_stream(body: String) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.into_bytes().chunks(1024).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn grace_window_and_reuse_detection_over_http() {
    // Default grace (10 s): a retry with the previous token gets the current one.
    let demo = Demo::start(&[]).await;
    let (_, first) = demo.pair("alice", "wonderland").await;
    let second: Value = demo.refresh_json(&first).await.json().await.unwrap();
    let retry = demo.refresh_json(&first).await;
    assert_eq!(retry.status(), StatusCode::OK);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["refresh_token"], second["refresh_token"]);

    // Grace off: replaying the old token revokes the session and its access tokens.
    let strict = Demo::start(&[("REFRESH_GRACE_SECS", "0")]).await;
    let (_, first) = strict.pair("alice", "wonderland").await;
    let second: Value = strict.refresh_json(&first).await.json().await.unwrap();
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(strict.me(access).await.status(), StatusCode::OK);
    let replay = strict.refresh_json(&first).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(replay).await, "invalid_grant");
    assert_eq!(strict.me(access).await.status(), StatusCode::UNAUTHORIZED);
    let r = strict
        .refresh_json(second["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_of(r).await, "invalid_grant");
}

#[tokio::test]
async fn logout_and_logout_everywhere() {
    let demo = Demo::start(&[]).await;
    let (a_access, a_refresh) = demo.pair("alice", "wonderland").await;
    let (b_access, b_refresh) = demo.pair("alice", "wonderland").await;
    let (bob_access, _) = demo.pair("bob", "builder").await;

    // The user sees both sessions and can end one by id.
    let list: Value = demo
        .http
        .get(demo.url("/me/sessions"))
        .bearer_auth(&a_access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2, "{list}");

    // Logout: cookie + bearer. Relying on the cookie, it must be the page's own request:
    // an auto-submitted form from a sibling subdomain logs nobody out.
    let r = demo
        .http
        .post(demo.url("/auth/logout"))
        .header(COOKIE, format!("refresh_token={a_refresh}"))
        .header("sec-fetch-site", "same-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        demo.me(&a_access).await.status(),
        StatusCode::OK,
        "still signed in"
    );
    let r = demo
        .http
        .post(demo.url("/auth/logout"))
        .bearer_auth(&a_access)
        .header(COOKIE, format!("refresh_token={a_refresh}"))
        .header("x-requested-with", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(&r).contains("Max-Age=0"));
    assert_eq!(demo.me(&a_access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        error_of(demo.refresh_json(&a_refresh).await).await,
        "invalid_grant"
    );
    assert_eq!(
        demo.me(&b_access).await.status(),
        StatusCode::OK,
        "only that session"
    );
    let r = demo.http.post(demo.url("/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Logout everywhere needs a valid bearer token.
    let r = demo.http.post(demo.url("/auth/logout-all")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
    let r = demo
        .http
        .post(demo.url("/auth/logout-all"))
        .bearer_auth(&a_access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a revoked token cannot log out everywhere"
    );
    assert!(r.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("error_description=\"token revoked\""));
    // The one verification path: the layer's own answers, not a second parser's.
    let r = demo
        .http
        .post(demo.url("/auth/logout-all"))
        .header(AUTHORIZATION, format!("Bearer {b_access}"))
        .header(AUTHORIZATION, format!("Bearer {b_access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("multiple Authorization headers"));
    let r = demo
        .http
        .post(demo.url(&format!("/auth/logout-all?access_token={b_access}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(r).await, "invalid_request");
    // …and its gRPC detection: a gRPC client gets a trailers-only UNAUTHENTICATED.
    let r = demo
        .http
        .post(demo.url("/auth/logout-all"))
        .bearer_auth("garbage")
        .header(CONTENT_TYPE, "application/grpc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["grpc-status"], "16");
    let r = demo
        .http
        .post(demo.url("/auth/logout-all"))
        .bearer_auth(&b_access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(demo.me(&b_access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        error_of(demo.refresh_json(&b_refresh).await).await,
        "invalid_grant"
    );
    assert_eq!(
        demo.me(&bob_access).await.status(),
        StatusCode::OK,
        "other users untouched"
    );
}

#[tokio::test]
async fn the_binary_reads_its_settings_from_the_environment() {
    let demo = Demo::binary(&[
        ("ACCESS_TTL_SECS", "120"),
        ("JWT_ISSUER", "https://demo.test"),
        ("JWT_AUDIENCE", "demo-api"),
        ("REFRESH_TOKEN_SECRET", "0123456789abcdef0123456789abcdef-demo"),
    ])
    .await;
    let r = demo.login("alice", "wonderland").await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    assert!(body["refresh_token"].as_str().unwrap().starts_with("rt1.k1."));
    let claims: Value = demo
        .me(body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(claims["iss"], "https://demo.test");
    assert_eq!(claims["aud"], "demo-api");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        120
    );
}

#[path = "support/redis_server.rs"]
mod redis_server;

#[tokio::test]
async fn demo_on_redis_fails_closed_and_recovers() {
    let Some(mut redis) = redis_server::RedisServer::start_persistent() else {
        return;
    };
    let demo = Demo::start(&[("REDIS_URL", &redis.url())]).await;
    let (access, refresh) = demo.pair("alice", "wonderland").await;
    assert_eq!(demo.me(&access).await.status(), StatusCode::OK);
    let body: Value = demo.refresh_json(&refresh).await.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap().to_owned();

    redis.kill();
    let r = demo.me(&access).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
    let r = demo.refresh_json(&refresh).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_of(r).await, "temporarily_unavailable");
    assert_eq!(
        demo.login("bob", "builder").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Bad input is still refused without the store.
    assert_eq!(demo.me("garbage").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        error_of(demo.refresh_json("garbage").await).await,
        "invalid_grant"
    );

    redis.restart();
    let start = std::time::Instant::now();
    while demo.me(&access).await.status() != StatusCode::OK {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "no recovery"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = demo.refresh_json(&refresh).await;
    assert_eq!(r.status(), StatusCode::OK, "the outage spent nothing");
}
