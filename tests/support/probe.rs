//! What a `JwtAuthLayer` answers to a bearer token, through a service that checks the layer
//! left the verified subject in the request.

use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_jwt_auth::{JwtAuthLayer, Subject};

/// The status `layer` answers a request carrying `token`.
pub(crate) async fn status(layer: &JwtAuthLayer, token: &str) -> StatusCode {
    let svc = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(|req: Request<()>| async move {
            assert!(req.extensions().get::<Subject>().is_some(), "no subject");
            Ok::<_, Infallible>(Response::new(()))
        }));
    let req = Request::builder()
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    svc.oneshot(req).await.unwrap().status()
}
