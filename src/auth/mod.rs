//! The resource-server middleware: [`JwtAuthLayer`], [`JwtAuth`], [`ResponseFuture`].

mod anonymous;
mod bearer;
mod body;
mod cache;
mod future;
mod layer;
mod service;

pub(crate) use anonymous::Anonymous;
pub(crate) use bearer::bearer_token;
pub use body::AuthBody;
pub use cache::DEFAULT_CACHE_CAPACITY;
pub use future::ResponseFuture;
pub use layer::{JwtAuthLayer, DEFAULT_STORE_TIMEOUT};
pub use service::JwtAuth;
