//! How long after its `iat` any verifier sharing a store accepts a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::RevocationStore;
use crate::clock::ms;

/// The longest `max_lifetime + leeway` of the [`Validation`](crate::Validation)s registered
/// on a store. Revocation markers are sized from it, so a layer accepting tokens longer than
/// the sessions expect widens the markers instead of outliving them (DESIGN.md "Revocation
/// window"). Only grows.
#[derive(Debug, Default)]
pub(crate) struct Acceptance(AtomicU64);

impl Acceptance {
    pub(crate) fn widen(&self, window: Duration) {
        self.0.fetch_max(ms(window), Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }

    /// Widens this record and the store's own, which its clones share.
    pub(crate) fn widen_on(&self, store: &dyn RevocationStore, window: Duration) {
        self.widen(window);
        store.widen_acceptance(window);
    }

    /// The wider of this record and the store's own.
    pub(crate) fn on(&self, store: &dyn RevocationStore) -> Duration {
        self.get().max(store.acceptance())
    }
}
