//! The store behind revocation and sessions: the traits, their answers, the type-erased
//! handles the rest of the crate holds, and two implementations.
//!
//! Every operation is O(1) in the number of tokens and sessions: no scans.
//! [`MemoryStore`] (one process, tests, development) and, with feature `redis`,
//! `RedisStore` implement exactly the same semantics; one conformance suite tests both.
//!
//! - [`RevocationStore`]: the check the middleware makes. [`Revocations`] holds one.
//! - [`SessionStore`]: the session lifecycle on top. [`Store`] holds one, and is what
//!   [`Sessions`](crate::Sessions) takes: pick the implementation at runtime,
//!
//! ```
//! use tower_jwt_auth::{MemoryStore, store::Store};
//! # async fn pick(redis_url: Option<String>) -> Result<Store, tower_jwt_auth::StoreError> {
//! let store: Store = match redis_url {
//!     # #[cfg(feature = "redis")]
//!     Some(url) => tower_jwt_auth::RedisStore::connect(&url).await?.into(),
//!     _ => MemoryStore::new().into(),
//! };
//! # Ok(store) }
//! ```

mod acceptance;
mod handle;
mod lifecycle;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod revocation;

/// What store methods return: re-exported so a custom store needs no `futures` dependency.
pub use futures_util::future::BoxFuture;
pub use handle::{Revocations, Store};
pub use lifecycle::{
    held_back, Grant, MarkPolicy, NewSession, RejectReason, RotateOutcome, Rotation, SessionInfo,
    SessionStore, MAX_NOT_BEFORE_LEAD,
};
pub(crate) use lifecycle::{not_before_after, sort_sessions, MAX_MINT_AHEAD};
pub use memory::{MemoryStore, DEFAULT_MAX_ENTRIES};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, DEFAULT_MIRROR_CAPACITY, DEFAULT_PREFIX};
pub use revocation::{RevocationStore, TokenRef, TokenStatus};
