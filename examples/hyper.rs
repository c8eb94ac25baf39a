//! A bare hyper 1.x server: a `service_fn` behind `JwtAuthLayer`. `GET /` answers the
//! verified claims as JSON.
//!
//! `cargo run --example hyper` — prints a ready access token for `alice`, then
//! `curl -H "authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3001/`.
//! Settings: BIND (127.0.0.1:3001), JWT_PRIVATE_KEY, JWT_PUBLIC_KEY (only the public key:
//! verify-only, no token printed), REDIS_URL, ACCESS_TTL_SECS, JWT_ISSUER, JWT_AUDIENCE.
//! With no key at all an ephemeral one is generated (with a warning).

#[path = "support/settings.rs"]
mod settings;

use std::convert::Infallible;
use std::error::Error;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower_jwt_auth::store::Store;
use tower_jwt_auth::{Claims, Issuer, JwtAuthLayer};

#[tokio::main]
async fn main() {
    settings::main(run).await
}

async fn run() -> Result<(), Box<dyn Error>> {
    let settings = settings::load("127.0.0.1:3001")?;
    // The store (in-memory, or Redis when REDIS_URL is set) is chosen in this one place.
    settings::with_store!(settings.redis_url.clone(), |store| serve(settings, store))
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The application: only ever reached with a verified token.
async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/" {
        return Ok(json(StatusCode::NOT_FOUND, br#"{"error":"not_found"}"#.to_vec()));
    }
    if req.method() != Method::GET {
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            br#"{"error":"method_not_allowed"}"#.to_vec(),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return Ok(response);
    }
    Ok(match req.extensions().get::<Claims>() {
        Some(claims) => match serde_json::to_vec(claims) {
            Ok(body) => json(StatusCode::OK, body),
            Err(_) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"error":"internal"}"#.to_vec(),
            ),
        },
        // The layer puts the claims in every request it lets through.
        None => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":"internal"}"#.to_vec(),
        ),
    })
}

async fn serve<St: Store>(settings: settings::Settings, store: Arc<St>) -> Result<(), Box<dyn Error>> {
    let service = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(settings.validation, store))
        .service_fn(app);

    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let addr = listener.local_addr()?;
    print_ready(
        settings.issuer.as_ref(),
        &format!("curl -H \"authorization: Bearer $ACCESS_TOKEN\" http://{addr}/"),
        addr,
    )?;

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
