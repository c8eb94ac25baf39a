//! What an optional layer leaves on a request it let through without a token.

use std::sync::Arc;

use http::{HeaderMap, Response};

use super::layer::Settings;
use crate::error::AuthError;
use crate::reject::RejectBody;

/// Marks a request that an [`optional`](crate::JwtAuthLayer::optional) layer let through
/// without a token, so code that needs the caller after all (the logout-all endpoint)
/// answers with that layer's rejection: its realm, custom rejection, gRPC detection.
#[derive(Clone)]
pub(crate) struct Anonymous(Arc<Settings>);

impl Anonymous {
    pub(crate) fn new(settings: Arc<Settings>) -> Self {
        Anonymous(settings)
    }

    /// The layer's answer to a request without a token.
    pub(crate) fn reject(&self, headers: &HeaderMap) -> Response<RejectBody> {
        self.0.rejection.get().reject(AuthError::MissingToken, headers)
    }
}
