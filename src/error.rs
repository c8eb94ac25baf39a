//! Error types: why a request was rejected, and why a key or the store failed.

use std::fmt;

/// Why the middleware refused a request.
///
/// The variants map onto RFC 6750 error codes; [`AuthError::description`] is the fixed,
/// short text sent to the client (never any part of the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials were presented (RFC 6750 §3.1: no error code).
    MissingToken,
    /// The request is malformed (RFC 6750 `invalid_request`, HTTP 400).
    InvalidRequest(InvalidRequest),
    /// The token is invalid, expired or revoked (RFC 6750 `invalid_token`, HTTP 401).
    InvalidToken(InvalidToken),
    /// The revocation store failed or timed out; the request is refused (HTTP 503).
    StoreUnavailable,
}

/// What was wrong with a malformed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidRequest {
    /// More than one `Authorization` header.
    MultipleAuthorizationHeaders,
    /// The `Authorization` header is not valid visible ASCII.
    MalformedAuthorizationHeader,
    /// An `access_token` was sent in the query string (RFC 6750 §2.3 is not supported).
    TokenInQuery,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidToken {
    /// Larger than the configured limit; not decoded.
    TooLarge,
    /// Not a well-formed JWS compact serialization with JSON header and payload.
    Malformed,
    /// The `alg` header is not the configured algorithm.
    Algorithm,
    /// `kid` missing or not in the configured key set.
    UnknownKey,
    /// The header carries a `crit` parameter.
    CriticalHeader,
    /// Signature does not verify (or has the wrong length).
    Signature,
    /// The `typ` header is not `at+jwt`.
    Type,
    /// A required claim is missing or has the wrong type.
    Claims,
    /// `exp` is in the past.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInFuture,
    /// `exp - iat` exceeds the configured access-token lifetime.
    LifetimeTooLong,
    /// `iss` does not match.
    Issuer,
    /// `aud` does not contain the configured audience.
    Audience,
    /// The token, its session or all of the user's tokens were revoked.
    Revoked,
}

impl AuthError {
    /// The fixed, client-safe description sent in `error_description`.
    pub fn description(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "authentication required",
            AuthError::InvalidRequest(r) => match r {
                InvalidRequest::MultipleAuthorizationHeaders => "multiple Authorization headers",
                InvalidRequest::MalformedAuthorizationHeader => "malformed Authorization header",
                InvalidRequest::TokenInQuery => "access tokens are not accepted in the query",
            },
            AuthError::InvalidToken(t) => match t {
                InvalidToken::TooLarge => "token too large",
                InvalidToken::Malformed => "malformed token",
                InvalidToken::Algorithm => "unsupported algorithm",
                InvalidToken::UnknownKey => "unknown signing key",
                InvalidToken::CriticalHeader => "unsupported critical header",
                InvalidToken::Signature => "invalid signature",
                InvalidToken::Type => "not an access token",
                InvalidToken::Claims => "invalid claims",
                InvalidToken::Expired => "token expired",
                InvalidToken::NotYetValid => "token not yet valid",
                InvalidToken::IssuedInFuture => "token issued in the future",
                InvalidToken::LifetimeTooLong => "token lifetime too long",
                InvalidToken::Issuer => "invalid issuer",
                InvalidToken::Audience => "invalid audience",
                InvalidToken::Revoked => "token revoked",
            },
            AuthError::StoreUnavailable => "authentication temporarily unavailable",
        }
    }

    /// The RFC 6750 error code, if any (`None` when no credentials were sent).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingToken => None,
            AuthError::InvalidRequest(_) => Some("invalid_request"),
            AuthError::InvalidToken(_) => Some("invalid_token"),
            AuthError::StoreUnavailable => Some("temporarily_unavailable"),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for AuthError {}

impl From<InvalidToken> for AuthError {
    fn from(t: InvalidToken) -> Self {
        AuthError::InvalidToken(t)
    }
}

/// A key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub(crate) String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key error: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

/// The store failed: unreachable, timed out, or answered something unexpected.
///
/// Never caused by client input; the middleware and the refresh service answer 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub(crate) String);

impl StoreError {
    /// A store error with a message (for custom [`Store`](crate::store::Store) implementations).
    pub fn new(msg: impl Into<String>) -> Self {
        StoreError(msg.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store error: {}", self.0)
    }
}

impl std::error::Error for StoreError {}
