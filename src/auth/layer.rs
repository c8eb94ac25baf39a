//! [`JwtAuthLayer`]: configuration and the tower `Layer`.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::cache::{TokenCache, DEFAULT_CACHE_CAPACITY};
use super::service::JwtAuth;
use crate::claims::NoClaims;
use crate::reject::{DefaultRejection, Reject};
use crate::store::Revocations;
use crate::verify::Validation;

/// Default time allowed for the revocation check before answering 503.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// Verifies `Authorization: Bearer` access tokens, checks revocation, and puts the verified
/// [`Claims<C>`](crate::Claims) and the token's [`Subject`](crate::Subject) into the request
/// extensions.
///
/// Works as `axum::Router::layer`, `tonic::transport::Server::builder().layer` and around any
/// tower/hyper service. With sessions, build it with
/// [`Sessions::auth_layer`](crate::Sessions::auth_layer): same keys, same rules, same store.
///
/// Without sessions, give it the store the application revokes through (shared, not a new
/// one, which nothing would ever revoke in):
///
/// ```
/// use std::sync::Arc;
/// use tower_jwt_auth::{JwtAuthLayer, MemoryStore, SigningKey, Validation};
///
/// let key = SigningKey::generate().unwrap();
/// let store = Arc::new(MemoryStore::new()); // also handed to whatever revokes tokens
/// let layer = JwtAuthLayer::new(Validation::new(key.verifying_key()), store.clone())
///     .store_timeout(std::time::Duration::from_millis(250));
/// # let _ = layer;
/// ```
pub struct JwtAuthLayer<C = NoClaims> {
    settings: Arc<Settings>,
    pub(crate) cache: Arc<TokenCache<C>>,
    _claims: PhantomData<fn() -> C>,
}

/// Everything a [`JwtAuth`] needs, shared by every clone.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) validation: Validation,
    pub(crate) revocations: Revocations,
    pub(crate) rejection: Rejection,
    pub(crate) optional: bool,
    pub(crate) fail_open: bool,
    pub(crate) timeout: Duration,
    pub(crate) cache_capacity: usize,
}

/// The configured rejection: the default (which `realm` and `retry_after_secs` adjust) or
/// the application's own.
#[derive(Clone)]
pub(crate) enum Rejection {
    Default(DefaultRejection),
    Custom(Arc<dyn Reject>),
}

impl Rejection {
    pub(crate) fn get(&self) -> &dyn Reject {
        match self {
            Rejection::Default(d) => d,
            Rejection::Custom(c) => &**c,
        }
    }
}

impl JwtAuthLayer<NoClaims> {
    /// A layer that requires a valid, unrevoked token on every request, checked against
    /// `revocations` (any store, or a [`Store`](crate::store::Store) shared with
    /// [`Sessions`](crate::Sessions)). Use [`claims`](Self::claims) to set the application's
    /// claim type.
    ///
    /// The store learns how long `validation` accepts a token (its lifetime plus leeway):
    /// sessions on the same store keep revocations at least that long.
    pub fn new(validation: Validation, revocations: impl Into<Revocations>) -> Self {
        let revocations = revocations.into();
        revocations.accept_for(validation.acceptance());
        JwtAuthLayer {
            settings: Arc::new(Settings {
                validation,
                revocations,
                rejection: Rejection::Default(DefaultRejection::default()),
                optional: false,
                fail_open: false,
                timeout: DEFAULT_STORE_TIMEOUT,
                cache_capacity: DEFAULT_CACHE_CAPACITY,
            }),
            cache: Arc::new(TokenCache::new(DEFAULT_CACHE_CAPACITY)),
            _claims: PhantomData,
        }
    }
}

impl<C> JwtAuthLayer<C> {
    /// Builder step, copy-on-write: configuring a clone never changes the others.
    fn map(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }

    /// Sets the application's claims type: handlers receive `Claims<C2>`.
    pub fn claims<C2>(self) -> JwtAuthLayer<C2> {
        JwtAuthLayer {
            cache: Arc::new(TokenCache::new(self.settings.cache_capacity)),
            settings: self.settings,
            _claims: PhantomData,
        }
    }

    /// How many verified tokens to keep (default 10 000, about 1.5 KiB each; 0 turns the
    /// cache off). A repeat request with a cached token skips the RSA verify and the JSON
    /// parsing: its `exp` and `nbf` are checked against the clock again, and its revocation
    /// is checked as for any request. Only tokens that passed every rule are kept.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = Arc::new(TokenCache::new(capacity));
        self.map(|s| s.cache_capacity = capacity)
    }

    /// Optional authentication: requests without a token pass with no claims; requests with
    /// a bad token are still rejected.
    pub fn optional(self) -> Self {
        self.map(|s| s.optional = true)
    }

    /// Time allowed for the revocation check (default 1 s); past it the request gets 503.
    ///
    /// A store that answers asynchronously (Redis) is timed with Tokio's timer, so the
    /// runtime needs its time driver (`enable_all()`, as `#[tokio::main]` sets up).
    pub fn store_timeout(self, timeout: Duration) -> Self {
        self.map(|s| s.timeout = timeout)
    }

    /// Lets requests with a verified token through when the store fails or times out.
    ///
    /// Off by default (fail closed). With it on, a revoked token is accepted while the store
    /// is down, until it expires: choose it only if availability matters more than
    /// revocation for this service.
    pub fn fail_open(self, fail_open: bool) -> Self {
        self.map(|s| s.fail_open = fail_open)
    }

    /// Adds `realm` to the default rejection's challenge. A custom rejection
    /// ([`rejection`](Self::rejection)) writes its own challenges and ignores this.
    pub fn realm(self, realm: impl Into<String>) -> Self {
        let realm = realm.into();
        self.map_default(|d| d.realm(realm))
    }

    /// The `Retry-After` (seconds) the default rejection sends with 503 (default 1).
    pub fn retry_after_secs(self, secs: u32) -> Self {
        self.map_default(|d| d.retry_after_secs(secs))
    }

    fn map_default(self, f: impl FnOnce(DefaultRejection) -> DefaultRejection) -> Self {
        self.map(|s| {
            if let Rejection::Default(d) = &s.rejection {
                s.rejection = Rejection::Default(f(d.clone()));
            }
        })
    }

    /// Replaces the rejection response builder. A [`DefaultRejection`] stays the default:
    /// [`realm`](Self::realm) and [`retry_after_secs`](Self::retry_after_secs) still adjust
    /// it afterwards.
    pub fn rejection(self, reject: impl Reject) -> Self {
        let rejection = match (&reject as &dyn Any).downcast_ref::<DefaultRejection>() {
            Some(default) => Rejection::Default(default.clone()),
            None => Rejection::Custom(Arc::new(reject)),
        };
        self.map(|s| s.rejection = rejection)
    }

    /// The validation rules in force.
    pub fn validation(&self) -> &Validation {
        &self.settings.validation
    }
}

impl<C> Clone for JwtAuthLayer<C> {
    fn clone(&self) -> Self {
        JwtAuthLayer {
            settings: self.settings.clone(),
            cache: self.cache.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> fmt::Debug for JwtAuthLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("validation", &self.settings.validation)
            .field("optional", &self.settings.optional)
            .field("fail_open", &self.settings.fail_open)
            .field("timeout", &self.settings.timeout)
            .field("cache_capacity", &self.settings.cache_capacity)
            .finish_non_exhaustive()
    }
}

impl<S, C> Layer<S> for JwtAuthLayer<C> {
    type Service = JwtAuth<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::new(inner, self.settings.clone(), self.cache.clone())
    }
}
