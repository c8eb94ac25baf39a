//! A bare hyper 1.x server: a `service_fn` behind `JwtAuthLayer`. `GET /` answers the
//! verified claims as JSON.
//!
//! `cargo run --example hyper` — prints a ready access token for `alice`, then
//! `curl -H "authorization: Bearer $TOKEN" 127.0.0.1:3001/`.
//! Settings: BIND (127.0.0.1:3001), JWT_PRIVATE_KEY, JWT_PUBLIC_KEY, REDIS_URL,
//! ACCESS_TTL_SECS, JWT_ISSUER, JWT_AUDIENCE.

#[path = "support/settings.rs"]
mod settings;

use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower_jwt_auth::store::Store;
use tower_jwt_auth::{Claims, JwtAuthLayer};

#[tokio::main]
async fn main() {
    settings::main(run).await
}

async fn run() -> Result<(), Box<dyn Error>> {
    let settings = settings::load("127.0.0.1:3001")?;
    settings::with_store!(settings.redis_url.clone(), |store| serve(settings, store))
}

async fn claims(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (req.method(), req.uri().path(), req.extensions().get::<Claims>()) {
        (&Method::GET, "/", Some(claims)) => (StatusCode::OK, serde_json::to_vec(claims).unwrap_or_default()),
        (&Method::GET, "/", None) => (StatusCode::UNAUTHORIZED, b"{}".to_vec()),
        _ => (StatusCode::NOT_FOUND, br#"{"error":"not_found"}"#.to_vec()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn serve<St: Store>(settings: settings::Settings, store: Arc<St>) -> Result<(), Box<dyn Error>> {
    let service = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(settings.validation, store))
        .service_fn(claims);

    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let addr = listener.local_addr()?;
    settings::print_ready_token(settings.issuer.as_ref())?;
    println!("listening on {addr}");
    println!("try: curl -H \"authorization: Bearer $ACCESS_TOKEN\" http://{addr}/");
    settings::print_ready_token(None)?; // flush

    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
