//! [`ClaimsProvider`]: the application's claims for a user, at login and every refresh.
//! Erased behind [`DynProvider`], so no provider type reaches [`Sessions`](crate::Sessions).

use std::future::Future;

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::claims::NoClaims;
use crate::error::IssueError;

/// Supplies the application's claims for a user at login and at every refresh, so a
/// changed role takes effect within one access-token lifetime. `None` means the user no
/// longer exists: the refresh is refused and the session revoked.
///
/// Any `Fn(String) -> impl Future<Output = Option<C>>` is a provider.
pub trait ClaimsProvider: Send + Sync + 'static {
    /// The application's claims type.
    type Claims: Serialize + Send;
    /// The current claims of `sub`.
    fn claims(&self, sub: &str) -> impl Future<Output = Option<Self::Claims>> + Send;
}

/// No application claims.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoClaimsProvider;

impl ClaimsProvider for NoClaimsProvider {
    type Claims = NoClaims;
    fn claims(&self, _sub: &str) -> impl Future<Output = Option<NoClaims>> + Send {
        std::future::ready(Some(NoClaims {}))
    }
}

impl<F, Fut, C> ClaimsProvider for F
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<C>> + Send,
    C: Serialize + Send,
{
    type Claims = C;
    fn claims(&self, sub: &str) -> impl Future<Output = Option<C>> + Send {
        self(sub.to_owned())
    }
}

/// A provider whose claims are already JSON: what `Sessions` holds. Minting costs an RSA
/// signature, so the extra serialization step is noise.
pub(crate) trait DynProvider: Send + Sync + 'static {
    fn claims<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Option<serde_json::Value>, IssueError>>;
}

impl<P: ClaimsProvider> DynProvider for P {
    fn claims<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Option<serde_json::Value>, IssueError>> {
        Box::pin(async move {
            match ClaimsProvider::claims(self, sub).await {
                Some(claims) => serde_json::to_value(claims)
                    .map(Some)
                    .map_err(|e| IssueError(format!("claims do not serialize: {e}"))),
                None => Ok(None),
            }
        })
    }
}
