//! The revocation mirror: the Redis store's check answers kept locally, and kept exact
//! with Redis client-side caching (RESP3 `CLIENT TRACKING`).
//!
//! Exactness (DESIGN.md "Revocation mirror"): the mirror holds the values of the keys the
//! check reads (`deny:<jti>`, `sidrev:<sid>`, `nbf`), each read through a connection the
//! server tracks, so any later write to one of them makes the server push an invalidation.
//! - An invalidation removes the keys it names.
//! - A connection error, a reconnection or a cluster change drops everything and turns the
//!   mirror off until tracking is on again on every connection.
//! - A write made through this instance removes what it touched as soon as it returns.
//! - A read is kept only if nothing of the above happened while it was in flight (the
//!   `epoch` is unchanged) and the mirror was on when it started: its answer may be older
//!   than an invalidation processed meanwhile.
//!
//! Tracking runs in the default mode, not `BCAST`: the server then tells this instance only
//! about keys it read, instead of every write to every user's keys under the prefix, and it
//! works on a Redis Cluster (fred sends `CLIENT TRACKING` to every primary).

use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, EventInterface, TrackingInterface};
use fred::types::Key;
use quick_cache::Equivalent;
use tokio::sync::broadcast::error::RecvError;

use crate::store::{TokenRef, TokenStatus};

/// Default number of Redis keys the mirror keeps (about 130 bytes each).
pub const DEFAULT_MIRROR_CAPACITY: usize = 100_000;

/// How long to wait before asking again for tracking that could not be turned on.
const RETRACK_DELAY: Duration = Duration::from_millis(500);

/// Which key of a user.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Kind {
    Deny,
    SidRev,
    NotBefore,
}

/// A mirrored key: `<prefix>:{u:<hex(sub)>}:deny:<id>`, `…:sidrev:<id>` or `…:nbf`.
#[derive(Debug, Hash, PartialEq, Eq)]
struct MirrorKey {
    kind: Kind,
    sub: Box<str>,
    id: Box<str>,
}

/// A borrowed [`MirrorKey`] for lookups: hashes the same (the derived `Hash` of `&str` and
/// `Box<str>` is `str`'s), so a lookup allocates nothing.
#[derive(Hash)]
struct KeyRef<'a> {
    kind: Kind,
    sub: &'a str,
    id: &'a str,
}

impl Equivalent<MirrorKey> for KeyRef<'_> {
    fn equivalent(&self, key: &MirrorKey) -> bool {
        self.kind == key.kind && self.sub == &*key.sub && self.id == &*key.id
    }
}

impl KeyRef<'_> {
    fn to_owned(&self) -> MirrorKey {
        MirrorKey {
            kind: self.kind,
            sub: self.sub.into(),
            id: self.id.into(),
        }
    }
}

/// The three keys one check reads, in `MGET` order.
fn token_keys<'a>(t: &TokenRef<'a>) -> [KeyRef<'a>; 3] {
    [
        KeyRef {
            kind: Kind::Deny,
            sub: t.sub,
            id: t.jti,
        },
        KeyRef {
            kind: Kind::SidRev,
            sub: t.sub,
            id: t.sid,
        },
        KeyRef {
            kind: Kind::NotBefore,
            sub: t.sub,
            id: "",
        },
    ]
}

/// The answer of one check from the three values (`None`: the key does not exist).
pub(super) fn status(values: [Option<u64>; 3], iat: u64) -> TokenStatus {
    let [deny, sidrev, nbf] = values;
    if deny.is_some() {
        TokenStatus::Denied
    } else if sidrev.is_some() {
        TokenStatus::SessionRevoked
    } else if nbf.is_some_and(|nbf| iat < nbf) {
        TokenStatus::UserLoggedOut
    } else {
        TokenStatus::Active
    }
}

/// The mirror of one store, with the tracked client its reads go through.
pub(crate) struct Mirror {
    client: Client,
    values: quick_cache::sync::Cache<MirrorKey, Option<u64>>,
    /// Moves on every invalidation, disconnection, reconnection and local write: a read is
    /// kept only if it did not move while the read was in flight.
    epoch: AtomicU64,
    /// Tracking is on for every connection of `client`.
    live: AtomicBool,
}

/// What a read needs to know, taken when it starts.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReadTicket {
    epoch: u64,
    live: bool,
}

impl Mirror {
    /// A mirror reading through `client` (RESP3, connected), keeping `capacity` keys.
    /// Turns tracking on and listens for invalidations and connection events on the
    /// current Tokio runtime.
    pub(super) async fn start(client: Client, capacity: usize) -> Result<Arc<Self>, fred::error::Error> {
        let mirror = Arc::new(Mirror {
            client,
            values: quick_cache::sync::Cache::new(capacity.max(1)),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
        });
        // Listen before tracking starts, so no invalidation is missed.
        tokio::spawn(listen(Arc::downgrade(&mirror)));
        mirror
            .client
            .start_tracking(Vec::<String>::new(), false, false, false, false)
            .await?;
        mirror.bump();
        mirror.live.store(true, Ordering::Release);
        Ok(mirror)
    }

    /// The tracked client (checks read through it).
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The check answered from the mirror, when it holds all three keys.
    pub(super) fn check(&self, t: &TokenRef<'_>) -> Option<TokenStatus> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let [a, b, c] = token_keys(t).map(|k| self.values.get(&k));
        Some(status([a?, b?, c?], t.iat))
    }

    /// Taken before a read that may be kept.
    pub(super) fn ticket(&self) -> ReadTicket {
        let live = self.live.load(Ordering::Acquire);
        ReadTicket {
            epoch: self.epoch.load(Ordering::Acquire),
            live,
        }
    }

    /// Keeps a check's values, unless anything moved while it was in flight.
    pub(super) fn keep(&self, ticket: ReadTicket, t: &TokenRef<'_>, values: [Option<u64>; 3]) {
        if !ticket.live || !self.client.is_connected() {
            return;
        }
        for (key, value) in token_keys(t).iter().zip(values) {
            if self.epoch.load(Ordering::Acquire) != ticket.epoch {
                return;
            }
            // A present marker is not kept: its token is refused by Redis anyway, and Redis
            // may expire the marker before its invalidation reaches us (which would leave the
            // mirror refusing longer than the store; harmless, as the token is expired by
            // then, but not what Redis answers). Absences and the not-before are kept.
            if key.kind != Kind::NotBefore && value.is_some() {
                continue;
            }
            self.values.insert(key.to_owned(), value);
        }
        // An invalidation that landed between the check above and an insert may have removed
        // the key before it was inserted: then drop what this read inserted.
        if self.epoch.load(Ordering::Acquire) != ticket.epoch {
            for key in token_keys(t) {
                self.values.remove(&key);
            }
        }
    }

    /// A write through this instance touched `sub`'s marker `(deny, jti)` / `(sidrev, sid)`
    /// and perhaps its not-before: forget them now, without waiting for the server's push.
    pub(super) fn forget(&self, sub: &str, deny: Option<&str>, sidrev: Option<&str>) {
        self.bump();
        let nbf = KeyRef {
            kind: Kind::NotBefore,
            sub,
            id: "",
        };
        self.values.remove(&nbf);
        if let Some(jti) = deny {
            self.values.remove(&KeyRef {
                kind: Kind::Deny,
                sub,
                id: jti,
            });
        }
        if let Some(sid) = sidrev {
            self.values.remove(&KeyRef {
                kind: Kind::SidRev,
                sub,
                id: sid,
            });
        }
    }

    /// Everything goes, and the mirror stays off until tracking is on again.
    fn reset(&self) {
        self.live.store(false, Ordering::Release);
        self.clear();
    }

    /// Everything goes (tracking stays on).
    pub(super) fn clear(&self) {
        self.bump();
        self.values.clear();
    }

    /// The server invalidated `key`.
    fn invalidate(&self, key: &[u8]) {
        self.bump();
        // A key this mirror does not read cannot matter to it.
        if let Some((kind, sub, id)) = std::str::from_utf8(key).ok().and_then(parse) {
            self.values.remove(&KeyRef { kind, sub: &sub, id });
        }
    }

    /// Turns tracking on again after a reconnection, until it works or the mirror is gone.
    async fn retrack(mirror: &Weak<Mirror>) {
        loop {
            let Some(m) = mirror.upgrade() else { return };
            m.reset();
            match m
                .client
                .start_tracking(Vec::<String>::new(), false, false, false, false)
                .await
            {
                Ok(()) => {
                    m.bump();
                    m.live.store(true, Ordering::Release);
                    tracing::debug!("revocation mirror: tracking on again");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "revocation mirror: cannot turn tracking on; retrying"),
            }
            drop(m);
            tokio::time::sleep(RETRACK_DELAY).await;
        }
    }

    /// How many keys are mirrored, and whether the mirror is on.
    pub(super) fn state(&self) -> (usize, bool) {
        (self.values.len(), self.live.load(Ordering::Acquire))
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        // The tracked connection belongs to the mirror alone: close it (which also ends the
        // listener) if a runtime is there to run the goodbye.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

/// `<prefix>:{u:<hex(sub)>}:<kind>[:<id>]` → (kind, sub, id). The prefix holds no brace
/// (`RedisStore::prefix` refuses one), so the first `{u:` is the hash tag.
fn parse(key: &str) -> Option<(Kind, String, &str)> {
    let (_, rest) = key.split_once(":{u:")?;
    let (hex, rest) = rest.split_once("}:")?;
    let sub = decode_hex(hex)?;
    let (kind, id) = if rest == "nbf" {
        (Kind::NotBefore, "")
    } else if let Some(jti) = rest.strip_prefix("deny:") {
        (Kind::Deny, jti)
    } else if let Some(sid) = rest.strip_prefix("sidrev:") {
        (Kind::SidRev, sid)
    } else {
        return None;
    };
    Some((kind, sub, id))
}

fn decode_hex(hex: &str) -> Option<String> {
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The listener: invalidations, errors, reconnections and cluster changes, in arrival order
/// per kind. Ends when the mirror or its client is gone.
async fn listen(mirror: Weak<Mirror>) {
    let Some(m) = mirror.upgrade() else { return };
    let mut invalidations = m.client.invalidation_rx();
    let mut errors = m.client.error_rx();
    let mut reconnects = m.client.reconnect_rx();
    let mut changes = m.client.cluster_change_rx();
    drop(m);
    loop {
        tokio::select! {
            invalidation = invalidations.recv() => match invalidation {
                Ok(invalidation) => {
                    let Some(m) = mirror.upgrade() else { return };
                    if invalidation.keys.is_empty() {
                        m.reset();
                        Mirror::retrack(&mirror).await;
                    }
                    for key in &invalidation.keys {
                        m.invalidate(key_bytes(key));
                    }
                }
                // Invalidations were dropped: nothing mirrored can be trusted.
                Err(RecvError::Lagged(_)) => {
                    let Some(m) = mirror.upgrade() else { return };
                    m.reset();
                    drop(m);
                    Mirror::retrack(&mirror).await;
                }
                Err(RecvError::Closed) => return,
            },
            error = errors.recv() => match error {
                Ok((error, _)) => {
                    let Some(m) = mirror.upgrade() else { return };
                    tracing::debug!(error = %error, "revocation mirror: connection error; dropped");
                    m.reset();
                }
                Err(RecvError::Lagged(_)) => {
                    let Some(m) = mirror.upgrade() else { return };
                    m.reset();
                }
                Err(RecvError::Closed) => return,
            },
            reconnect = reconnects.recv() => match reconnect {
                Ok(_) | Err(RecvError::Lagged(_)) => Mirror::retrack(&mirror).await,
                Err(RecvError::Closed) => return,
            },
            change = changes.recv() => match change {
                Ok(_) | Err(RecvError::Lagged(_)) => Mirror::retrack(&mirror).await,
                Err(RecvError::Closed) => return,
            },
        }
    }
}

fn key_bytes(key: &Key) -> &[u8] {
    key.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_keys_find_owned_ones() {
        let cache: quick_cache::sync::Cache<MirrorKey, Option<u64>> = quick_cache::sync::Cache::new(10);
        let t = TokenRef {
            sub: "alice",
            sid: "s",
            jti: "j",
            iat: 5,
        };
        for key in token_keys(&t) {
            cache.insert(key.to_owned(), Some(1));
        }
        for key in token_keys(&t) {
            assert_eq!(cache.get(&key), Some(Some(1)));
        }
        let other = TokenRef { sub: "bob", ..t };
        assert!(token_keys(&other).iter().all(|k| cache.get(k).is_none()));
    }

    #[test]
    fn invalidated_keys_are_parsed_back() {
        assert_eq!(
            parse("tja:{u:616c696365}:deny:j-1"),
            Some((Kind::Deny, "alice".to_owned(), "j-1"))
        );
        assert_eq!(
            parse("app:x:{u:626f62}:sidrev:s:1"),
            Some((Kind::SidRev, "bob".to_owned(), "s:1"))
        );
        assert_eq!(
            parse("tja:{u:616c696365}:nbf"),
            Some((Kind::NotBefore, "alice".to_owned(), ""))
        );
        for other in [
            "tja:{u:616c696365}:sess:x",
            "tja:{u:6}:nbf",
            "plain",
            "tja:{u:zz}:nbf",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn statuses_in_order() {
        assert_eq!(status([None, None, None], 5), TokenStatus::Active);
        assert_eq!(status([Some(1), Some(1), Some(9)], 5), TokenStatus::Denied);
        assert_eq!(status([None, Some(1), Some(9)], 5), TokenStatus::SessionRevoked);
        assert_eq!(status([None, None, Some(9)], 5), TokenStatus::UserLoggedOut);
        assert_eq!(status([None, None, Some(5)], 5), TokenStatus::Active);
    }
}
