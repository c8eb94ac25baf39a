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

#[path = "support/settings.rs"]
mod settings;

use std::error::Error;
use std::io::Write;
use std::sync::Arc;

use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tower_jwt_auth::store::Store;
use tower_jwt_auth::{Issuer, JwtAuthLayer};

#[tokio::main]
async fn main() {
    settings::main(run).await
}

async fn run() -> Result<(), Box<dyn Error>> {
    let settings = settings::load("127.0.0.1:50051")?;
    // The store (in-memory, or Redis when REDIS_URL is set) is chosen in this one place.
    settings::with_store!(settings.redis_url.clone(), |store| serve(settings, store))
}

async fn serve<St: Store>(settings: settings::Settings, store: Arc<St>) -> Result<(), Box<dyn Error>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;

    // Bind first, then announce: whoever reads `listening on` can connect at once.
    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let addr = listener.local_addr()?;
    print_ready(
        settings.issuer.as_ref(),
        &format!(
            "grpcurl -plaintext -proto health.proto -H \"authorization: Bearer $ACCESS_TOKEN\" {addr} grpc.health.v1.Health/Check"
        ),
        addr,
    )?;

    Server::builder()
        .layer(JwtAuthLayer::new(settings.validation, store))
        .add_service(health)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Once the listener is bound: a ready token for `alice` (when this process holds the
/// private key), a usage hint and `listening on <addr>`, flushed so a reader sees them at once.
fn print_ready(
    issuer: Option<&Issuer>,
    hint: &str,
    addr: std::net::SocketAddr,
) -> Result<(), Box<dyn Error>> {
    let mut out = std::io::stdout().lock();
    match issuer {
        Some(issuer) => {
            let token = issuer.issue_plain("alice", &demo_session_id())?;
            writeln!(out, "ACCESS_TOKEN={}", token.token)?;
        }
        None => eprintln!("verify-only: present tokens minted with the matching private key"),
    }
    writeln!(out, "try: {hint}")?;
    // Last: readers (and the tests) take this line to mean "ready".
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    Ok(())
}

/// A fresh session id per start, so revoking one run's session never kills the next one's
/// ready token. (Demo only: real sessions start through `Sessions::login`.)
fn demo_session_id() -> String {
    use std::hash::BuildHasher;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let random = std::collections::hash_map::RandomState::new().hash_one((seed, std::process::id()));
    format!("demo-{random:016x}")
}
