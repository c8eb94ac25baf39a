//! The client side (feature `client`): stay signed in automatically.
//!
//! A [`TokenManager`] holds a client's tokens and renews them (one refresh in flight, ahead
//! of expiry, every rotated refresh token handed to a callback first). [`AuthClientLayer`]
//! wraps any tower HTTP client with it (a `hyper_util` client, a tonic `Channel`); with
//! feature `reqwest`, [`AuthMiddleware`] does the same for reqwest through
//! `reqwest-middleware`, sharing the same manager. The refresh call goes through a
//! [`RefreshTransport`]: [`HttpRefresh`] speaks to this crate's endpoints over HTTP.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_jwt_auth::client::{HttpRefresh, TokenManager};
//!
//! let transport = HttpRefresh::new(
//!     "http://127.0.0.1:3000/auth/refresh".parse()?,
//!     "http://127.0.0.1:3000/auth/logout".parse()?,
//! );
//! // A CLI restores the refresh token it saved, and saves every rotated one.
//! let manager = TokenManager::from_refresh_token(transport, std::fs::read_to_string("token")?)
//!     .on_rotate(|token| {
//!         let _ = std::fs::write("token", token);
//!     });
//! let bearer = manager.access_token().await?; // refreshed once, however many callers
//! # let _ = bearer; Ok(()) }
//! ```

use std::fmt;

mod layer;
mod manager;
mod replay;
#[cfg(feature = "reqwest")]
mod reqwest;
mod transport;

pub use self::layer::{AuthClient, AuthClientError, AuthClientLayer};
pub use self::manager::{TokenManager, DEFAULT_RENEW_BEFORE};
pub use self::replay::ReplayBody;
#[cfg(feature = "reqwest")]
pub use self::reqwest::AuthMiddleware;
pub use self::transport::{HttpRefresh, RefreshTransport, TransportError};

/// Why a client has no access token to send.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server ended the session (the refresh token was refused, or the client logged
    /// out): sign in again.
    SignedOut,
    /// The refresh endpoint could not be reached or was unavailable (retried with backoff):
    /// try later. The client is still signed in.
    Unavailable(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::SignedOut => f.write_str("signed out: sign in again"),
            ClientError::Unavailable(why) => write!(f, "token refresh unavailable, try later: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}
