//! A bare hyper 1.x server: a `service_fn` behind `JwtAuthLayer`. `GET /` answers the
//! verified claims as JSON.
//!
//! `cargo run --example hyper` — prints a ready access token for `alice`, then
//! `curl -H "authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3001/`.
//! Settings: BIND (127.0.0.1:3001), JWT_PRIVATE_KEY, JWT_PUBLIC_KEY (only the public key:
//! verify-only, no token printed), REDIS_URL, ACCESS_TTL_SECS, JWT_ISSUER, JWT_AUDIENCE.
//! With no key at all an ephemeral one is generated (with a warning).

#[path = "../support/settings.rs"]
mod settings;

mod app;

use std::error::Error;

#[tokio::main]
async fn main() {
    settings::main(run).await
}

async fn run() -> Result<(), Box<dyn Error>> {
    let settings = settings::load("127.0.0.1:3001")?;
    let store = settings::store(settings.redis_url.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let addr = listener.local_addr()?;
    settings::print_ready(
        settings.issuer.as_ref(),
        &format!("curl -H \"authorization: Bearer $ACCESS_TOKEN\" http://{addr}/"),
        addr,
    )?;
    app::serve(listener, settings.validation, store, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
