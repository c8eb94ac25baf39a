//! A client that stays signed in: logs in to the demo (`cargo run --example axum` first),
//! then calls `/me` through a hyper client wrapped in `AuthClientLayer`, which renews the
//! access token ahead of expiry (one refresh however many calls) and hands every rotated
//! refresh token to a callback, where a real CLI would save it.
//!
//! `cargo run --example client` — settings: DEMO_URL (default http://127.0.0.1:3000),
//! CALLS (default 5), PAUSE_SECS between calls (default 1). Run the demo with
//! `ACCESS_TTL_SECS=2` to watch renewals happen.

use std::error::Error;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_jwt_auth::client::{AuthClientLayer, HttpRefresh, TokenManager};
use tower_jwt_auth::TokenResponse;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let base = std::env::var("DEMO_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into());
    let calls: u32 = std::env::var("CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let pause = std::env::var("PAUSE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);

    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    // The application's own login (the crate does not check passwords).
    let login = Request::post(format!("{base}/auth/login"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"username":"alice","password":"wonderland"}"#,
        )))?;
    let answer = http.request(login).await?.into_body().collect().await?.to_bytes();
    let tokens: TokenResponse = serde_json::from_slice(&answer)?;

    let transport = HttpRefresh::new(
        format!("{base}/auth/refresh").parse()?,
        format!("{base}/auth/logout").parse()?,
    );
    let manager = TokenManager::new(transport, tokens)?.on_rotate(|token| {
        println!(
            "rotated refresh token (a real client saves it now): {}…",
            &token[..24.min(token.len())]
        );
    });
    let client = ServiceBuilder::new()
        .layer(AuthClientLayer::new(manager.clone()))
        .service(http);

    for _ in 0..calls {
        let req = Request::get(format!("{base}/me")).body(Full::new(Bytes::new()))?;
        let response = client.clone().oneshot(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!("/me → {status} {}", String::from_utf8_lossy(&body));
        tokio::time::sleep(Duration::from_secs(pause)).await;
    }
    manager.logout().await?;
    println!("logged out");
    Ok(())
}
