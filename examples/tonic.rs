//! A tonic server whose gRPC services sit behind `JwtAuthLayer`: the standard
//! `grpc.health.v1.Health` service, so any stock health client can call it.
//!
//! `cargo run --example tonic` — prints a ready access token for `alice`, then e.g.
//! `grpcurl -plaintext -H "authorization: Bearer $TOKEN" 127.0.0.1:50051 grpc.health.v1.Health/Check`.
//! Settings: BIND (127.0.0.1:50051), JWT_PRIVATE_KEY, JWT_PUBLIC_KEY, REDIS_URL,
//! ACCESS_TTL_SECS, JWT_ISSUER, JWT_AUDIENCE.

#[path = "support/settings.rs"]
mod settings;

use std::error::Error;
use std::sync::Arc;

use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tower_jwt_auth::store::Store;
use tower_jwt_auth::JwtAuthLayer;

#[tokio::main]
async fn main() {
    settings::main(run).await
}

async fn run() -> Result<(), Box<dyn Error>> {
    let settings = settings::load("127.0.0.1:50051")?;
    settings::with_store!(settings.redis_url.clone(), |store| serve(settings, store))
}

async fn serve<St: Store>(settings: settings::Settings, store: Arc<St>) -> Result<(), Box<dyn Error>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;

    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let addr = listener.local_addr()?;
    settings::print_ready_token(settings.issuer.as_ref())?;
    println!("listening on {addr}");
    println!(
        "try: grpcurl -plaintext -H \"authorization: Bearer $ACCESS_TOKEN\" {addr} grpc.health.v1.Health/Check"
    );
    settings::print_ready_token(None)?; // flush

    Server::builder()
        .layer(JwtAuthLayer::new(settings.validation, store))
        .add_service(health)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
