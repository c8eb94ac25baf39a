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

/// An access token could not be minted: the application's claims do not serialize to a
/// JSON object, redefine a registered claim, or the signature failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueError(pub(crate) String);

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot issue token: {}", self.0)
    }
}

impl std::error::Error for IssueError {}

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store did not answer in time.
    Timeout,
    /// The store cannot be reached (connection refused, lost, reconnecting).
    Unavailable,
    /// The store is full (the memory store's bound).
    Full,
    /// The store answered with an error or something unexpected.
    Backend,
    /// The store's configuration is invalid (a bad URL, a feature not built in).
    Config,
}

/// The store failed: unreachable, timed out, full, or answered something unexpected.
///
/// Never caused by client input; the middleware and the token endpoints answer 503.
/// [`StoreError::kind`] tells the failures apart; [`std::error::Error::source`] is the
/// backend's own error, when there is one.
#[derive(Debug, Clone)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

/// Equal when kind and message are: sources are not compared.
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for StoreError {}

impl StoreError {
    /// A store error of `kind` with a message (for custom stores).
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error, reported by [`std::error::Error::source`].
    pub fn with_source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(source.into().into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// A timeout.
    pub(crate) fn timeout(what: &str) -> Self {
        Self::new(StoreErrorKind::Timeout, format!("{what} timed out"))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store error: {}", self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
