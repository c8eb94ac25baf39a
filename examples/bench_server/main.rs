//! The server the load benchmark (`bench/load.sh`) measures: one small axum app, with or
//! without the layer, on the memory store or Redis. Not a usage example: see `axum`.
//!
//! `MODE`: `bare` (no layer), `memory`, `redis` (needs `REDIS_URL`), `nocache` (memory store,
//! verified-token cache off). `BIND` (default 127.0.0.1:0). Prints `ACCESS_TOKEN=…`,
//! `REFRESH_TOKENS=…` (64, comma-separated) and then `listening on <addr>`. With
//! `PUBLIC_KEY_OUT`, writes the verifying key there (SPKI PEM) for the comparison server.

use std::error::Error;
use std::io::Write;

use axum::routing::{get, post};
use axum::Router;
use tower_jwt_auth::store::Store;
use tower_jwt_auth::{Issuer, MemoryStore, RefreshSecrets, Sessions, SigningKey};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mode = std::env::var("MODE").unwrap_or_else(|_| "memory".into());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:0".into());
    let store: Store = match mode.as_str() {
        "redis" => {
            let url = std::env::var("REDIS_URL").map_err(|_| "MODE=redis needs REDIS_URL")?;
            tower_jwt_auth::RedisStore::connect(&url).await?.into()
        }
        "bare" | "memory" | "nocache" => MemoryStore::new().into(),
        other => return Err(format!("unknown MODE {other}").into()),
    };
    let key = SigningKey::generate()?;
    if let Ok(path) = std::env::var("PUBLIC_KEY_OUT") {
        std::fs::write(path, key.verifying_key().to_spki_pem()?)?;
    }
    let sessions = Sessions::new(Issuer::new(key), store, RefreshSecrets::generate());
    let endpoints = sessions.endpoints().cookie(None);

    let me = Router::new().route("/me", get(|| async { "ok" }));
    let me = match mode.as_str() {
        "bare" => me,
        "nocache" => me.route_layer(sessions.auth_layer().cache_capacity(0)),
        _ => me.route_layer(sessions.auth_layer()),
    };
    let login_sessions = sessions.clone();
    let churn_sessions = sessions.clone();
    let churn_users = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let users = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let app = me
        .route(
            "/auth/login",
            post(move || {
                let sessions = login_sessions.clone();
                // A new user each time: no per-user cap in play, one session written per login.
                let n = users.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    match sessions.login(&format!("user-{n}")).await {
                        Ok(_) => Ok("ok"),
                        Err(_) => Err(axum::http::StatusCode::SERVICE_UNAVAILABLE),
                    }
                }
            }),
        )
        .route_service("/auth/refresh", endpoints.refresh())
        .route(
            "/churn",
            post(move || {
                // Write-heavy traffic: a login and a logout, each a store write.
                let sessions = churn_sessions.clone();
                let n = churn_users.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let pair = sessions
                        .login(&format!("churn-{n}"))
                        .await
                        .map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE)?;
                    sessions
                        .logout(Some(&pair.refresh_token), Some(&pair.access.token))
                        .await
                        .map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE)?;
                    Ok::<_, axum::http::StatusCode>("ok")
                }
            }),
        );

    let access = sessions.login("alice").await?.access.token;
    // More sessions than connections, so the refresh script always has a token to spare.
    let mut refresh = Vec::new();
    for i in 0..64 {
        refresh.push(sessions.login(&format!("bob-{}", i % 4)).await?.refresh_token);
    }
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ACCESS_TOKEN={access}")?;
    writeln!(out, "REFRESH_TOKENS={}", refresh.join(","))?;
    writeln!(out, "listening on {}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    axum::serve(listener, app).await?;
    Ok(())
}
