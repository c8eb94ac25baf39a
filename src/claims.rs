//! Access-token claims, generic over the application's own claims.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The claims of an access token.
///
/// `T` holds the application's own claims (e.g. `role`, `email`); they are flattened into the
/// payload next to the registered ones. Use `()`-like [`NoClaims`] when there are none.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// struct App { role: String }
/// type MyClaims = tower_jwt_auth::Claims<App>;
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims<T = NoClaims> {
    /// Subject: the user id.
    pub sub: String,
    /// Issued at (seconds since the Unix epoch).
    pub iat: u64,
    /// Expires at (seconds since the Unix epoch).
    pub exp: u64,
    /// Not before, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Unique token id (128 random bits, base64url).
    pub jti: String,
    /// Session id: the refresh-token family this access token belongs to.
    pub sid: String,
    /// Issuer, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// The application's own claims.
    #[serde(flatten)]
    pub extra: T,
}

/// No application claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoClaims {}

/// The `aud` claim: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `expected`.
    pub fn contains(&self, expected: &str) -> bool {
        match self {
            Audience::One(a) => a == expected,
            Audience::Many(v) => v.iter().any(|a| a == expected),
        }
    }
}

/// Who a verified request is from, whatever the application's claims type:
/// [`JwtAuthLayer`](crate::JwtAuthLayer) inserts it next to `Claims<C>`, so code that does not
/// know `C` (the logout-all endpoint, a generic handler) can read it. With feature `axum` it
/// is an extractor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subject {
    /// The user (`sub`).
    pub sub: Arc<str>,
    /// The session (`sid`).
    pub sid: Arc<str>,
}

impl Subject {
    /// A subject, for tests of handlers that read one (in service, only the layer makes it).
    pub fn new(sub: impl Into<Arc<str>>, sid: impl Into<Arc<str>>) -> Self {
        Subject {
            sub: sub.into(),
            sid: sid.into(),
        }
    }

    pub(crate) fn of<C>(claims: &Claims<C>) -> Self {
        Subject {
            sub: claims.sub.as_str().into(),
            sid: claims.sid.as_str().into(),
        }
    }
}
