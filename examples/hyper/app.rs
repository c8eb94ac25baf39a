//! The hyper application: a `service_fn` behind the layer, and its accept loop. `main.rs`
//! serves it; the end-to-end tests serve it in-process.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_jwt_auth::{Claims, JwtAuthLayer, Revocations, Validation};

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
    let internal = || {
        json(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":"internal"}"#.to_vec(),
        )
    };
    // The layer puts the claims in every request it lets through.
    Ok(match req.extensions().get::<Claims>().map(serde_json::to_vec) {
        Some(Ok(body)) => json(StatusCode::OK, body),
        _ => internal(),
    })
}

/// Accepts connections on `listener` until `shutdown` completes, each request checked by
/// the layer.
pub(crate) async fn serve(
    listener: TcpListener,
    validation: Validation,
    revocations: impl Into<Revocations>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let service = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(validation, revocations))
        .service_fn(app);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
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
