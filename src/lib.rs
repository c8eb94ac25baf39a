//! Dual-token authentication for any tower stack (axum, tonic, hyper).
//!
//! - [`JwtAuthLayer`] verifies short-lived RS256 access tokens (`Authorization: Bearer`),
//!   checks them against a revocation [`Store`], and puts the verified [`Claims`] into the
//!   request extensions.
//! - [`Issuer`] mints access tokens with a key parsed once.
//! - [`MemoryStore`] is the embedded store; with feature `redis`, `store::redis::RedisStore`
//!   serves many instances.
//!
//! # Quick start
//!
//! ```
//! use std::sync::Arc;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use http::{Request, Response, StatusCode};
//! use tower_jwt_auth::{Claims, Issuer, JwtAuthLayer, MemoryStore, SigningKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Keys are parsed once; `SigningKey::from_env()` reads JWT_PRIVATE_KEY in production.
//! let issuer = Issuer::new(SigningKey::generate()?);
//! let store = Arc::new(MemoryStore::new());
//!
//! let service = ServiceBuilder::new()
//!     .layer(JwtAuthLayer::new(issuer.validation(), store))
//!     .service(service_fn(|req: Request<String>| async move {
//!         let claims = req.extensions().get::<Claims>().expect("verified claims");
//!         Ok::<_, std::convert::Infallible>(Response::new(format!("hello {}", claims.sub)))
//!     }));
//!
//! let token = issuer.issue_plain("alice", "session-1")?.token;
//! let request = Request::builder()
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(String::new())?;
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let anonymous = service.oneshot(Request::new(String::new())).await?;
//! assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `redis` (default): the Redis store, through [`fred`](https://docs.rs/fred).
//! - `redis-tls`: `rediss://` URLs for the Redis store (rustls).
//! - `axum`: extractors for the verified claims.
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod auth;
mod b64;
mod claims;
mod clock;
mod error;
#[cfg(feature = "axum")]
pub mod extract;
mod issue;
mod keys;
pub mod refresh;
mod refresh_token;
pub mod reject;
mod session;
pub mod store;
mod verify;

pub use auth::{JwtAuth, JwtAuthLayer};
pub use claims::{Audience, Claims, NoClaims};
pub use error::{AuthError, InvalidRequest, InvalidToken, KeyError, StoreError};
pub use issue::{AccessToken, Issuer};
pub use keys::{KeySet, SigningKey, VerifyingKey, PRIVATE_KEY_ENV, PUBLIC_KEY_ENV};
pub use refresh::{CookieConfig, RefreshService};
pub use refresh_token::{RefreshSecrets, MIN_SECRET_LEN, REFRESH_SECRET_ENV};
pub use reject::{DefaultRejection, Reject};
pub use session::{
    ClaimsProvider, NoClaimsProvider, SessionError, Sessions, TokenPair, TokenResponse, DEFAULT_GRACE,
    DEFAULT_MAX_REVOCATIONS_PER_USER, DEFAULT_MAX_SESSIONS_PER_USER, DEFAULT_SESSION_LIFETIME,
    DEFAULT_SESSION_STORE_TIMEOUT, MAX_GRACE,
};
#[cfg(feature = "redis")]
pub use store::RedisStore;
pub use store::{MemoryStore, Store};
pub use verify::{Validation, DEFAULT_ACCESS_TTL, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN};

#[cfg(feature = "redis")]
pub use fred;

/// The README's examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
