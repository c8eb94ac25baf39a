//! The gRPC server of the tonic example: `grpc.health.v1.Health` behind the layer.
//! `main.rs` serves it; the end-to-end tests serve it in-process.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tower_jwt_auth::{JwtAuthLayer, Revocations, Validation};

/// Serves the health service on `listener`, every call checked by the layer, until
/// `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    validation: Validation,
    revocations: impl Into<Revocations>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;
    Server::builder()
        .layer(JwtAuthLayer::new(validation, revocations))
        .add_service(health)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await
}
