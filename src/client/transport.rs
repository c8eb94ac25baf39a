//! How a client reaches the refresh endpoint: the [`RefreshTransport`] trait, and
//! [`HttpRefresh`], its implementation for this crate's endpoints over HTTP (JSON bodies).

use std::fmt;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::endpoints::TokenResponse;

/// Largest token-endpoint answer read.
const MAX_ANSWER: usize = 16 * 1024;

/// Why a refresh (or logout) call did not give tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// The server refused the refresh token (RFC 6749 `invalid_grant`): the session is over.
    InvalidGrant,
    /// Anything else: the server is unavailable (503), unreachable, or answered something
    /// unexpected. Retried with backoff; never a logout.
    Unavailable(String),
}

/// Reaches the token endpoints. [`HttpRefresh`] speaks to this crate's over HTTP; an app
/// with another transport (a gRPC auth service, an IPC channel) implements this.
pub trait RefreshTransport: Send + Sync + 'static {
    /// Rotates `refresh_token`: the new token response (with the rotated refresh token).
    fn refresh<'a>(&'a self, refresh_token: &'a str) -> BoxFuture<'a, Result<TokenResponse, TransportError>>;

    /// Logs the session out (the refresh token's session, and the access token).
    fn logout<'a>(
        &'a self,
        refresh_token: &'a str,
        access_token: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), TransportError>>;
}

/// The HTTP transport to this crate's refresh and logout endpoints (JSON bodies), on a
/// `hyper` client. `http://` only with [`HttpRefresh::new`]; for `https://`, give it a client
/// with a TLS connector through [`HttpRefresh::with_client`].
pub struct HttpRefresh<C = HttpConnector> {
    client: Client<C, Full<Bytes>>,
    refresh: Uri,
    logout: Uri,
}

impl<C> fmt::Debug for HttpRefresh<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRefresh")
            .field("refresh", &self.refresh)
            .field("logout", &self.logout)
            .finish_non_exhaustive()
    }
}

impl HttpRefresh {
    /// Refreshes at `refresh` (e.g. `http://127.0.0.1:3000/auth/refresh`) and logs out at
    /// `logout`, over plain HTTP.
    pub fn new(refresh: Uri, logout: Uri) -> Self {
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        Self::with_client(client, refresh, logout)
    }
}

impl<C> HttpRefresh<C> {
    /// The same over your own `hyper` client (a TLS connector, a proxy).
    pub fn with_client(client: Client<C, Full<Bytes>>, refresh: Uri, logout: Uri) -> Self {
        HttpRefresh {
            client,
            refresh,
            logout,
        }
    }
}

fn unavailable(why: impl fmt::Display) -> TransportError {
    TransportError::Unavailable(why.to_string())
}

impl<C> HttpRefresh<C>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    /// POSTs `body` to `uri`: the status and (bounded) answer.
    async fn post(
        &self,
        uri: &Uri,
        body: String,
        bearer: Option<&str>,
    ) -> Result<(StatusCode, Bytes), TransportError> {
        let mut req = Request::post(uri.clone()).header(CONTENT_TYPE, "application/json");
        if let Some(token) = bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(unavailable)?;
        let response = self.client.request(req).await.map_err(unavailable)?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(unavailable)?
            .to_bytes();
        Ok((status, body))
    }
}

/// The `error` code of an RFC 6749 error body.
fn error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    serde_json::from_slice::<ErrorBody>(body).ok().map(|e| e.error)
}

impl<C> RefreshTransport for HttpRefresh<C>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    fn refresh<'a>(&'a self, refresh_token: &'a str) -> BoxFuture<'a, Result<TokenResponse, TransportError>> {
        Box::pin(async move {
            let body = serde_json::json!({ "refresh_token": refresh_token }).to_string();
            let (status, answer) = self.post(&self.refresh, body, None).await?;
            if status == StatusCode::OK {
                return serde_json::from_slice(&answer).map_err(unavailable);
            }
            match error_code(&answer).as_deref() {
                Some("invalid_grant") => Err(TransportError::InvalidGrant),
                code => Err(unavailable(format!(
                    "refresh answered {status} {}",
                    code.unwrap_or("")
                ))),
            }
        })
    }

    fn logout<'a>(
        &'a self,
        refresh_token: &'a str,
        access_token: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move {
            let body = serde_json::json!({ "refresh_token": refresh_token }).to_string();
            let (status, answer) = self.post(&self.logout, body, access_token).await?;
            if status.is_success() {
                Ok(())
            } else {
                Err(unavailable(format!(
                    "logout answered {status} {}",
                    error_code(&answer).unwrap_or_default()
                )))
            }
        })
    }
}
