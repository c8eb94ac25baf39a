//! A tonic server whose gRPC services sit behind `JwtAuthLayer`: the standard
//! `grpc.health.v1.Health` service (from `tonic-health`), so any stock health client can
//! call it.
//!
//! `cargo run --example tonic` — prints a ready access token for `alice`, then e.g.
//! `grpcurl -plaintext -import-path … -proto health.proto -H "authorization: Bearer $ACCESS_TOKEN" 127.0.0.1:50051 grpc.health.v1.Health/Check`
//! (the server has no reflection service, so grpcurl needs the proto), or
//! `grpc-health-probe -addr 127.0.0.1:50051 -rpc-header "authorization: Bearer $ACCESS_TOKEN"`.
//! Without a valid token every call fails with UNAUTHENTICATED (a trailers-only response).
//! Settings: BIND (127.0.0.1:50051), JWT_PRIVATE_KEY, JWT_PUBLIC_KEY (only the public key:
//! verify-only, no token printed), REDIS_URL, ACCESS_TTL_SECS, JWT_ISSUER, JWT_AUDIENCE.
//! With no key at all an ephemeral one is generated (with a warning).

#[path = "../support/settings.rs"]
mod settings;

mod grpc;

use std::error::Error;

#[tokio::main]
async fn main() {
    settings::main(run).await
}

async fn run() -> Result<(), Box<dyn Error>> {
    let settings = settings::load("127.0.0.1:50051")?;
    let store = settings::store(settings.redis_url.as_deref()).await?;
    // Bind first, then announce: whoever reads `listening on` can connect at once.
    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let addr = listener.local_addr()?;
    settings::print_ready(
        settings.issuer.as_ref(),
        &format!(
            "grpcurl -plaintext -proto health.proto -H \"authorization: Bearer $ACCESS_TOKEN\" {addr} grpc.health.v1.Health/Check"
        ),
        addr,
    )?;
    grpc::serve(listener, settings.validation, store, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
