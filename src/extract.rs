//! Axum extractors (feature `axum`): take [`Claims<C>`], `Option<Claims<C>>` or the
//! type-free [`Subject`] in a handler.
//!
//! ```
//! use tower_jwt_auth::Claims;
//!
//! async fn me(claims: Claims) -> String {
//!     format!("hello {}", claims.sub)
//! }
//!
//! async fn home(claims: Option<Claims>) -> String {
//!     claims.map_or("hello stranger".into(), |c| format!("hello {}", c.sub))
//! }
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/me", axum::routing::get(me))
//!     .route("/", axum::routing::get(home));
//! # let _ = app;
//! ```
//!
//! The claims come from [`JwtAuthLayer`](crate::JwtAuthLayer): put it in front of the
//! handler (in optional mode for `Option<Claims<C>>` routes). `C` must be the layer's claims
//! type.

use std::convert::Infallible;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::claims::{Claims, Subject};
use crate::error::AuthError;
use crate::reject::{DefaultRejection, Reject};

/// Rejection of the [`Claims`] extractor: no verified claims on the request (the route is
/// not behind the layer, or the layer runs in optional mode). Answers the default plain-HTTP
/// 401 with a `WWW-Authenticate: Bearer` challenge; it does not know the layer's realm or
/// custom rejection, so use `Option<Claims<C>>` and answer yourself where those matter.
#[derive(Debug, Clone, Copy)]
pub struct MissingClaims;

impl IntoResponse for MissingClaims {
    fn into_response(self) -> Response {
        DefaultRejection::default()
            .reject(AuthError::MissingToken, &http::HeaderMap::new())
            .map(axum_core::body::Body::new)
    }
}

impl<S, C> FromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Claims<C>>().cloned().ok_or(MissingClaims)
    }
}

impl<S, C> OptionalFromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Claims<C>>().cloned())
    }
}

impl<S> FromRequestParts<S> for Subject
where
    S: Send + Sync,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Subject>().cloned().ok_or(MissingClaims)
    }
}
