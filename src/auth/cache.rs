//! The verified-token cache: a repeat request skips the RSA verify and the JSON parsing.
//!
//! Keyed by the exact token bytes, hashed with a per-process random key (`ahash`'s
//! `RandomState`, through `quick_cache`), so no one can aim tokens at one bucket. Only
//! tokens that passed every rule are inserted: a flood of forgeries costs lookups, never
//! evictions. A hit re-checks `exp` and `nbf` against the clock; revocation is still checked
//! on every request by the caller. `quick_cache` was chosen over `moka` after measuring both
//! (DESIGN.md "Performance").

use std::sync::Arc;

use crate::claims::{Claims, Subject};
use crate::error::InvalidToken;

/// Default number of verified tokens kept per layer (about 1.5 KiB each).
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// A token that passed every verification rule, and what the request needs of it.
pub(crate) struct Verified<C> {
    pub(crate) claims: Claims<C>,
    pub(crate) subject: Subject,
}

impl<C> Verified<C> {
    pub(crate) fn new(claims: Claims<C>) -> Self {
        let subject = Subject::of(&claims);
        Verified { claims, subject }
    }
}

/// A bounded map from token to its verified claims; capacity 0 keeps nothing.
pub(crate) struct TokenCache<C> {
    cache: Option<quick_cache::sync::Cache<Box<[u8]>, Arc<Verified<C>>>>,
}

impl<C> TokenCache<C> {
    pub(crate) fn new(capacity: usize) -> Self {
        TokenCache {
            cache: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// The verified token, if cached: `Err` when it has expired since (or is somehow no
    /// longer valid yet), with the error the verifier would give.
    pub(crate) fn get(
        &self,
        token: &[u8],
        now: u64,
        leeway: u64,
    ) -> Option<Result<Arc<Verified<C>>, InvalidToken>> {
        let hit = self.cache.as_ref()?.get(token)?;
        let claims = &hit.claims;
        if now >= claims.exp.saturating_add(leeway) {
            self.remove(token);
            return Some(Err(InvalidToken::Expired));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Some(Err(InvalidToken::NotYetValid));
        }
        Some(Ok(hit))
    }

    /// Keeps a token that passed every rule.
    pub(crate) fn insert(&self, token: &[u8], verified: Verified<C>) -> Arc<Verified<C>> {
        let verified = Arc::new(verified);
        if let Some(cache) = &self.cache {
            cache.insert(token.into(), verified.clone());
        }
        verified
    }

    fn remove(&self, token: &[u8]) {
        if let Some(cache) = &self.cache {
            cache.remove(token);
        }
    }

    /// How many tokens are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::NoClaims;

    fn claims(exp: u64, nbf: Option<u64>) -> Claims<NoClaims> {
        Claims {
            sub: "alice".into(),
            iat: 100,
            exp,
            nbf,
            jti: "j".into(),
            sid: "s".into(),
            iss: None,
            aud: None,
            extra: NoClaims {},
        }
    }

    #[test]
    fn hits_recheck_the_clock() {
        let cache = TokenCache::new(8);
        cache.insert(b"t", Verified::new(claims(200, Some(150))));
        assert!(cache.get(b"t", 160, 0).unwrap().is_ok());
        assert_eq!(
            cache.get(b"t", 140, 0).unwrap().err(),
            Some(InvalidToken::NotYetValid)
        );
        assert!(cache.get(b"t", 140, 10).unwrap().is_ok(), "with leeway");
        assert_eq!(cache.get(b"t", 205, 10).unwrap().err(), None, "within leeway");
        assert_eq!(
            cache.get(b"t", 210, 10).unwrap().err(),
            Some(InvalidToken::Expired)
        );
        assert!(cache.get(b"t", 160, 0).is_none(), "an expired token is dropped");
        assert!(cache.get(b"other", 160, 0).is_none());
    }

    #[test]
    fn zero_capacity_keeps_nothing_and_the_cache_is_bounded() {
        let off = TokenCache::new(0);
        off.insert(b"t", Verified::new(claims(200, None)));
        assert!(off.get(b"t", 150, 0).is_none());
        let small = TokenCache::new(100);
        for i in 0..10_000 {
            small.insert(format!("t{i}").as_bytes(), Verified::new(claims(200, None)));
        }
        assert!(small.len() <= 110, "{}", small.len());
    }
}
