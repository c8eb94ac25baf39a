//! The demo server: login, refresh, logout, logout everywhere, a protected `/me`, JWKS.
//!
//! `cargo run --example axum` works with no settings (in-memory store, ephemeral keys).
//! Settings (environment): BIND, JWT_PRIVATE_KEY, JWT_PUBLIC_KEY, REFRESH_TOKEN_SECRET,
//! REDIS_URL, ACCESS_TTL_SECS, REFRESH_TTL_SECS, REFRESH_GRACE_SECS, JWT_ISSUER, JWT_AUDIENCE.
//! Demo users: alice / wonderland, bob / builder.

#[path = "../support/settings.rs"]
mod settings;

mod demo;

use tower_jwt_auth::{RefreshSecrets, Sessions};

#[tokio::main]
async fn main() {
    settings::main(run).await
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = settings::load("127.0.0.1:3000")?;
    let Some(issuer) = settings.issuer else {
        return Err(
            "the demo mints tokens: set JWT_PRIVATE_KEY (or neither key, for an ephemeral one)".into(),
        );
    };
    let secrets = match RefreshSecrets::from_env()? {
        Some(s) => s,
        None => {
            tracing::warn!("REFRESH_TOKEN_SECRET not set: using an ephemeral secret; refresh tokens die with this process");
            RefreshSecrets::generate()
        }
    };
    let store = settings::store(settings.redis_url.as_deref()).await?;
    let mut sessions = Sessions::new(issuer, store, secrets);
    if let Some(ttl) = settings::env_secs("REFRESH_TTL_SECS")? {
        sessions = sessions.absolute_lifetime(ttl);
    }
    if let Some(grace) = settings::env_secs("REFRESH_GRACE_SECS")? {
        sessions = sessions.grace(grace);
    }

    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    println!("open http://{addr}/ in a browser for the sign-in page (alice / wonderland)");
    println!("try: curl -s -X POST http://{addr}/auth/login -H 'content-type: application/json' -d '{{\"username\":\"alice\",\"password\":\"wonderland\"}}'");
    axum::serve(listener, demo::router(sessions))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
