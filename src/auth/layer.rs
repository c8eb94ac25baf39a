//! [`JwtAuthLayer`]: configuration and the tower `Layer`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::service::JwtAuth;
use crate::claims::NoClaims;
use crate::reject::{DefaultRejection, Reject};
use crate::store::{MemoryStore, Store};
use crate::verify::Validation;

/// Default time allowed for the revocation check before answering 503.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// Verifies `Authorization: Bearer` access tokens, checks revocation, and puts the verified
/// [`Claims<C>`](crate::Claims) into the request extensions.
///
/// Works as `axum::Router::layer`, `tonic::transport::Server::builder().layer` and around any
/// tower/hyper service.
///
/// ```
/// use std::sync::Arc;
/// use tower_jwt_auth::{JwtAuthLayer, KeySet, MemoryStore, SigningKey, Validation};
///
/// let key = SigningKey::generate().unwrap();
/// let layer = JwtAuthLayer::new(Validation::new(key.verifying_key()), Arc::new(MemoryStore::new()))
///     .store_timeout(std::time::Duration::from_millis(250));
/// # let _ = layer;
/// ```
pub struct JwtAuthLayer<C = NoClaims, St = MemoryStore, R = DefaultRejection> {
    pub(crate) config: Arc<Config<St, R>>,
    _claims: PhantomData<fn() -> C>,
}

pub(crate) struct Config<St, R> {
    pub(crate) validation: Validation,
    pub(crate) store: Arc<St>,
    pub(crate) reject: R,
    pub(crate) optional: bool,
    pub(crate) fail_open: bool,
    pub(crate) timeout: Duration,
}

impl<St, R: Clone> Clone for Config<St, R> {
    fn clone(&self) -> Self {
        Config {
            validation: self.validation.clone(),
            store: self.store.clone(),
            reject: self.reject.clone(),
            optional: self.optional,
            fail_open: self.fail_open,
            timeout: self.timeout,
        }
    }
}

impl<St: Store> JwtAuthLayer<NoClaims, St, DefaultRejection> {
    /// A layer that requires a valid, unrevoked token on every request. Use
    /// [`claims`](Self::claims) to set the application's claim type.
    pub fn new(validation: Validation, store: Arc<St>) -> Self {
        JwtAuthLayer {
            config: Arc::new(Config {
                validation,
                store,
                reject: DefaultRejection::default(),
                optional: false,
                fail_open: false,
                timeout: DEFAULT_STORE_TIMEOUT,
            }),
            _claims: PhantomData,
        }
    }
}

impl<C, St: Store> JwtAuthLayer<C, St, DefaultRejection> {
    /// Adds `realm` to the default rejection's challenge, keeping its other settings.
    /// (A custom rejection sets its own realm.)
    pub fn realm(self, realm: impl Into<String>) -> Self {
        let realm = realm.into();
        self.map_config(|c| c.reject = c.reject.clone().realm(realm))
    }
}

impl<C, St: Store, R: Reject> JwtAuthLayer<C, St, R> {
    fn map_config(mut self, f: impl FnOnce(&mut Config<St, R>)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Sets the application's claims type: handlers receive `Claims<C2>`.
    pub fn claims<C2>(self) -> JwtAuthLayer<C2, St, R> {
        JwtAuthLayer {
            config: self.config,
            _claims: PhantomData,
        }
    }

    /// Optional authentication: requests without a token pass with no claims; requests with
    /// a bad token are still rejected.
    pub fn optional(self) -> Self {
        self.map_config(|c| c.optional = true)
    }

    /// Time allowed for the revocation check (default 1 s); past it the request gets 503.
    ///
    /// A store that answers asynchronously (Redis) is timed with Tokio's timer, so the
    /// runtime needs its time driver (`enable_all()`, as `#[tokio::main]` sets up).
    pub fn store_timeout(self, timeout: Duration) -> Self {
        self.map_config(|c| c.timeout = timeout)
    }

    /// Lets requests with a verified token through when the store fails or times out.
    ///
    /// Off by default (fail closed). With it on, a revoked token is accepted while the store
    /// is down, until it expires: choose it only if availability matters more than
    /// revocation for this service.
    pub fn fail_open(self, fail_open: bool) -> Self {
        self.map_config(|c| c.fail_open = fail_open)
    }

    /// Replaces the rejection response builder.
    pub fn rejection<R2: Reject>(self, reject: R2) -> JwtAuthLayer<C, St, R2> {
        let c = Arc::unwrap_or_clone(self.config);
        JwtAuthLayer {
            config: Arc::new(Config {
                validation: c.validation,
                store: c.store,
                reject,
                optional: c.optional,
                fail_open: c.fail_open,
                timeout: c.timeout,
            }),
            _claims: PhantomData,
        }
    }

    /// The validation rules in force.
    pub fn validation(&self) -> &Validation {
        &self.config.validation
    }
}

impl<C, St, R> Clone for JwtAuthLayer<C, St, R> {
    fn clone(&self) -> Self {
        JwtAuthLayer {
            config: self.config.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C, St, R> fmt::Debug for JwtAuthLayer<C, St, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("validation", &self.config.validation)
            .field("optional", &self.config.optional)
            .field("fail_open", &self.config.fail_open)
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

impl<S, C, St, R> Layer<S> for JwtAuthLayer<C, St, R> {
    type Service = JwtAuth<S, C, St, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::new(inner, self.config.clone())
    }
}
