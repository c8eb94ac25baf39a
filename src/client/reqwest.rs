//! [`AuthMiddleware`]: the client layer's behaviour for reqwest (feature `reqwest`), as
//! `reqwest-middleware` middleware sharing a [`TokenManager`].

use std::future::Future;
use std::pin::Pin;

use http::header::AUTHORIZATION;
use http::{Extensions, HeaderValue};
use reqwest::{Request, Response};
use reqwest_middleware::{Error, Middleware, Next, Result};

use super::layer::refused_token;
use super::manager::TokenManager;
use super::ClientError;

/// Attaches the manager's access token to every request, renews it ahead of expiry, and
/// after a `401 invalid_token` refreshes once and retries once when the body can be cloned
/// (`Request::try_clone`), as [`AuthClientLayer`](super::AuthClientLayer) does.
///
/// ```no_run
/// # fn demo(manager: tower_jwt_auth::client::TokenManager) {
/// use tower_jwt_auth::client::AuthMiddleware;
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(AuthMiddleware::new(manager))
///     .build();
/// # let _ = client; }
/// ```
///
/// Errors from the token manager come back as `reqwest_middleware::Error::Middleware`
/// wrapping a [`ClientError`] (downcast it to tell signed-out from unavailable).
#[derive(Clone, Debug)]
pub struct AuthMiddleware {
    manager: TokenManager,
}

impl AuthMiddleware {
    /// Middleware attaching `manager`'s tokens.
    pub fn new(manager: TokenManager) -> Self {
        AuthMiddleware { manager }
    }
}

fn set_bearer(req: &mut Request, token: &str) -> Result<()> {
    let value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::middleware(ClientError::Unavailable("invalid access token".into())))?;
    req.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

/// `reqwest::Response` as an `http::Response` head, to share the refusal test.
fn refused(response: &Response) -> bool {
    let mut head = http::Response::new(());
    *head.status_mut() = response.status();
    *head.headers_mut() = response.headers().clone();
    refused_token(&head)
}

impl Middleware for AuthMiddleware {
    // The trait is declared with `async_trait`; this is its expansion, written out so the
    // crate needs no macro for one impl.
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        mut req: Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> Pin<Box<dyn Future<Output = Result<Response>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let token = self.manager.access_token().await.map_err(Error::middleware)?;
            set_bearer(&mut req, &token)?;
            let again = req.try_clone();
            let response = next.clone().run(req, extensions).await?;
            let Some(mut again) = again.filter(|_| refused(&response)) else {
                return Ok(response);
            };
            let token = self
                .manager
                .after_rejection(&token)
                .await
                .map_err(Error::middleware)?;
            set_bearer(&mut again, &token)?;
            next.run(again, extensions).await
        })
    }
}
