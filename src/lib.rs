//! Dual-token authentication for any tower stack (axum, tonic, hyper).
//!
//! - [`JwtAuthLayer`] verifies short-lived RS256 access tokens (`Authorization: Bearer`),
//!   checks them against a revocation store, and puts the verified [`Claims`] (and the
//!   token's [`Subject`]) into the request extensions.
//! - [`Sessions`] starts sessions at login and rotates one-time refresh tokens, with reuse
//!   detection, logout and logout everywhere; [`TokenEndpoints`] serves them over HTTP.
//! - [`Issuer`] mints access tokens with a key parsed once.
//! - Stores: [`MemoryStore`] (one process) and, with feature `redis`, `RedisStore` (many
//!   instances, Redis Cluster), behind the type-erased [`store::Store`].
//!
//! The design, its invariants and why each choice was made: `DESIGN.md` in the repository.
//!
//! # Quick start
//!
//! ```
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use http::{Request, Response, StatusCode};
//! use tower_jwt_auth::{Claims, Issuer, MemoryStore, RefreshSecrets, Sessions, SigningKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Keys are parsed once; `SigningKey::from_env()` reads JWT_PRIVATE_KEY in production.
//! let issuer = Issuer::new(SigningKey::generate()?);
//! let sessions = Sessions::new(issuer, MemoryStore::new(), RefreshSecrets::generate());
//!
//! let service = ServiceBuilder::new()
//!     .layer(sessions.auth_layer())
//!     .service(service_fn(|req: Request<String>| async move {
//!         let claims = req.extensions().get::<Claims>().expect("verified claims");
//!         Ok::<_, std::convert::Infallible>(Response::new(format!("hello {}", claims.sub)))
//!     }));
//!
//! let pair = sessions.login("alice").await?; // after checking alice's password
//! let request = Request::builder()
//!     .header("authorization", format!("Bearer {}", pair.access.token))
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
//! None is on by default, so a service compiles only what it uses.
//! - `redis`: the Redis store, through [`fred`](https://docs.rs/fred) (re-exported).
//! - `redis-tls`: `rediss://` URLs for the Redis store (rustls).
//! - `axum`: extractors for the verified [`Claims`] and [`Subject`].
//! - `client`: the client side: a tower layer that keeps any HTTP or gRPC client signed in
//!   (`client::AuthClientLayer`), its token manager and HTTP transport.
//! - `reqwest`: the same for reqwest, as `reqwest-middleware` middleware.
//! - `tonic`: lets the client layer wrap a tonic `Channel`.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod b64;
mod claims;
#[cfg(feature = "client")]
pub mod client;
mod clock;
mod endpoints;
mod error;
#[cfg(feature = "axum")]
pub mod extract;
mod issue;
mod keys;
mod provider;
mod refresh_token;
pub mod reject;
mod session;
pub mod store;
mod verify;

pub use auth::{JwtAuth, JwtAuthLayer};
pub use claims::{Audience, Claims, NoClaims, Subject};
pub use endpoints::{
    CookieConfig, TokenEndpoint, TokenEndpoints, TokenResponse, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT,
    DEFAULT_CSRF_HEADER, HOST_PREFIX, SECURE_PREFIX,
};
pub use error::{AuthError, InvalidRequest, InvalidToken, IssueError, KeyError, StoreError, StoreErrorKind};
pub use issue::{AccessToken, Issuer};
pub use keys::{KeySet, SigningKey, VerifyingKey, PRIVATE_KEY_ENV, PUBLIC_KEY_ENV};
pub use provider::{ClaimsProvider, NoClaimsProvider};
pub use refresh_token::{RefreshSecrets, MIN_SECRET_LEN, REFRESH_SECRET_ENV};
pub use reject::{DefaultRejection, Reject};
pub use session::{
    SessionError, Sessions, TokenPair, DEFAULT_GRACE, DEFAULT_MAX_REVOCATIONS_PER_USER,
    DEFAULT_MAX_SESSIONS_PER_USER, DEFAULT_SESSION_LIFETIME, DEFAULT_SESSION_STORE_TIMEOUT, MAX_GRACE,
};
#[cfg(feature = "redis")]
pub use store::RedisStore;
pub use store::{MemoryStore, Revocations, Store};
pub use verify::{Validation, DEFAULT_ACCESS_TTL, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN};

#[cfg(feature = "redis")]
pub use fred;

/// The README's examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
