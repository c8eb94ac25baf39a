//! [`Store`] and [`Revocations`]: the type-erased handles the rest of the crate holds, so no
//! store type parameter reaches [`Sessions`](crate::Sessions) or the middleware.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::acceptance::Acceptance;
use super::{RevocationStore, SessionStore};

/// A [`SessionStore`], type-erased and cheap to clone: what [`Sessions`](crate::Sessions)
/// takes. Build it from any store, by value or in an `Arc`
/// (`MemoryStore::new().into()`, `Store::new(redis)`), and choose which at runtime.
///
/// Derefs to the store's methods. Clones share the store and what the verifiers built on
/// it accept (see [`Sessions::auth_layer`](crate::Sessions::auth_layer)); so do other
/// handles to the same [`MemoryStore`](crate::MemoryStore) or `RedisStore`, which record it
/// in the store itself ([`RevocationStore::widen_acceptance`]).
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn SessionStore>,
    acceptance: Arc<Acceptance>,
}

impl Store {
    /// Wraps `store`.
    pub fn new(store: impl SessionStore) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// Wraps a store already in an `Arc` (shared with other code).
    pub fn from_arc(store: Arc<dyn SessionStore>) -> Self {
        Store {
            inner: store,
            acceptance: Arc::default(),
        }
    }

    /// The revocation check of this store, for a [`JwtAuthLayer`](crate::JwtAuthLayer).
    pub fn revocations(&self) -> Revocations {
        Revocations {
            inner: self.inner.clone(),
            acceptance: self.acceptance.clone(),
        }
    }

    /// How long after `iat` the verifiers registered on this store accept a token.
    pub(crate) fn accepted(&self) -> Duration {
        self.acceptance.on(&*self.inner)
    }
}

impl Deref for Store {
    type Target = dyn SessionStore;

    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("accepts_for", &self.accepted())
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> From<S> for Store {
    fn from(store: S) -> Self {
        Store::new(store)
    }
}

impl<S: SessionStore> From<Arc<S>> for Store {
    fn from(store: Arc<S>) -> Self {
        Store::from_arc(store)
    }
}

/// A [`RevocationStore`], type-erased and cheap to clone: what
/// [`JwtAuthLayer`](crate::JwtAuthLayer) takes. From any revocation store, or from a
/// [`Store`] (sharing it).
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<dyn RevocationStore>,
    acceptance: Arc<Acceptance>,
}

impl Revocations {
    /// Wraps `store`.
    pub fn new(store: impl RevocationStore) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// Wraps a store already in an `Arc`.
    pub fn from_arc(store: Arc<dyn RevocationStore>) -> Self {
        Revocations {
            inner: store,
            acceptance: Arc::default(),
        }
    }

    /// Registers a verifier accepting tokens for `window` after their `iat`: revocations
    /// written through any handle sharing this store's record last at least that long.
    pub(crate) fn accept_for(&self, window: Duration) {
        self.acceptance.widen_on(&*self.inner, window);
    }

    /// The store as an `Arc`, for futures that outlive a borrow.
    pub(crate) fn shared(&self) -> Arc<dyn RevocationStore> {
        self.inner.clone()
    }
}

impl Deref for Revocations {
    type Target = dyn RevocationStore;

    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocations")
            .field("accepts_for", &self.acceptance.on(&*self.inner))
            .finish_non_exhaustive()
    }
}

impl From<Store> for Revocations {
    fn from(store: Store) -> Self {
        store.revocations()
    }
}

impl From<&Store> for Revocations {
    fn from(store: &Store) -> Self {
        store.revocations()
    }
}

impl<S: RevocationStore> From<S> for Revocations {
    fn from(store: S) -> Self {
        Revocations::new(store)
    }
}

impl<S: RevocationStore> From<Arc<S>> for Revocations {
    fn from(store: Arc<S>) -> Self {
        Revocations::from_arc(store)
    }
}
