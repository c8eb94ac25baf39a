//! The Redis store, through `fred` (feature `redis`).
//!
//! Data model (DESIGN.md "Redis data model"): every key of one user shares the hash tag
//! `{u:<hex(sub)>}`, so the scripts and the one-round-trip check work on Redis Cluster.
//!
//! | key | type | TTL |
//! |---|---|---|
//! | `tja:{u:…}:sess:<sid>` | hash: gen, status, created, abs_exp, idle, last_used, rotated_at, epoch | until the session would expire (tombstone when revoked) |
//! | `tja:{u:…}:sessions` | zset sid → when it ends, for listing and the per-user cap | the latest absolute expiry |
//! | `tja:{u:…}:epoch` | logout-all counter | as long as any session may compare against it |
//! | `tja:{u:…}:nbf` | not-before, seconds | the revocation window, never shortened |
//! | `tja:{u:…}:sidrev:<sid>` | revoked session marker: the not-before that covers it | the revocation window |
//! | `tja:{u:…}:deny:<jti>` | denylisted access token: the not-before that covers it | until no verifier accepts it, relative |
//! | `tja:{u:…}:marks` | zset marker → when written: bounds and orders the user's markers | the revocation window |
//!
//! State changes are Lua scripts (EVALSHA, reloaded on NOSCRIPT) reading the clock with
//! `TIME`, except the not-before: it is compared with `iat`, which the application's clock
//! wrote, so the application sends it. Every TTL is relative (`PX`), so a Redis clock ahead
//! of the application's never drops a marker early. Every key a script touches is declared
//! in `KEYS`. The middleware's check is one `MGET`. No `KEYS`, no `SCAN`.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::error::{Error as RedisError, ErrorKind as RedisErrorKind};
use fred::interfaces::{ClientLike, KeysInterface, LuaInterface};
use fred::prelude::{Builder, Config, FromValue, Pool, ReconnectPolicy};
use fred::types::RespVersion;
use fred::types::{ClusterHash, CustomCommand, Value};
use futures_util::future::BoxFuture;

use self::mirror::Mirror;
pub use self::mirror::DEFAULT_MIRROR_CAPACITY;
use super::acceptance::Acceptance;
use super::{
    held_back, Grant, MarkPolicy, NewSession, RejectReason, RevocationStore, RotateOutcome, Rotation,
    SessionInfo, SessionStore, TokenRef, TokenStatus, MAX_NOT_BEFORE_LEAD,
};
use crate::clock::{ms, now_ms};
use crate::error::{StoreError, StoreErrorKind};

mod mirror;

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "tja";

struct Script {
    lua: &'static str,
    sha: String,
}

impl Script {
    fn new(lua: &'static str) -> Self {
        Script {
            lua,
            sha: fred::util::sha1_hash(lua),
        }
    }
}

struct Scripts {
    create: Script,
    rotate: Script,
    deny: Script,
    revoke: Script,
    revoke_all: Script,
    list: Script,
    sessions: Script,
}

/// A script that writes revocations: `marks.lua` (shared functions) first.
macro_rules! with_marks {
    ($file:literal) => {
        concat!(include_str!("redis/marks.lua"), include_str!($file))
    };
}

/// A [`SessionStore`](super::SessionStore) on Redis, generic over the `fred` client: a
/// [`fred::clients::Client`], a [`Pool`], or clients configured for Cluster, Sentinel or TLS.
///
/// Configure your own client with `max_command_attempts = 1` (as [`RedisStore::connect`]
/// does): a rotation replayed by the client after a dropped connection would look like
/// token reuse. A refresh retried by the *caller* is covered by the grace window.
pub struct RedisStore<C = Pool> {
    client: C,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
    mirror: Option<Arc<Mirror>>,
    replication: Option<Arc<Replication>>,
    /// Shared by clones, like the connections (see `RevocationStore::widen_acceptance`).
    acceptance: Arc<Acceptance>,
}

impl<C: Clone> Clone for RedisStore<C> {
    fn clone(&self) -> Self {
        RedisStore {
            client: self.client.clone(),
            prefix: self.prefix.clone(),
            scripts: self.scripts.clone(),
            mirror: self.mirror.clone(),
            replication: self.replication.clone(),
            acceptance: self.acceptance.clone(),
        }
    }
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("mirror", &self.mirror.is_some())
            .finish_non_exhaustive()
    }
}

fn store_error(e: RedisError) -> StoreError {
    let kind = match e.kind() {
        RedisErrorKind::Timeout => StoreErrorKind::Timeout,
        RedisErrorKind::IO
        | RedisErrorKind::Canceled
        | RedisErrorKind::Routing
        | RedisErrorKind::Cluster
        | RedisErrorKind::Sentinel
        | RedisErrorKind::Backpressure => StoreErrorKind::Unavailable,
        RedisErrorKind::Config | RedisErrorKind::Url | RedisErrorKind::Auth => StoreErrorKind::Config,
        _ => StoreErrorKind::Backend,
    };
    StoreError::new(kind, "redis").with_source(e)
}

/// Redis answered something the scripts never return.
fn malformed(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Backend, format!("redis: malformed {what}"))
}

/// Refuses a TLS URL when TLS support is not built in (`fred` would only log a warning
/// through `log` and connect without TLS). The scheme is read by the parser `fred` uses,
/// which drops leading spaces, tabs and newlines: a stray one cannot hide it.
fn check_tls_support(url: &str, tls_built: bool) -> Result<(), StoreError> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(()); // fred refuses it with its own error
    };
    let scheme = parsed.scheme();
    let wants_tls = scheme.starts_with("rediss") || scheme.starts_with("valkeys");
    if wants_tls && !tls_built {
        return Err(StoreError::new(
            StoreErrorKind::Config,
            format!(
                "{scheme}:// asks for TLS, but tower-jwt-auth was built without the `redis-tls` \
                 feature: enable it, or use a redis:// URL on a trusted network"
            ),
        ));
    }
    Ok(())
}

impl RedisStore<Pool> {
    /// Connects to `url` (`redis://`, `redis-cluster://`, `redis-sentinel://`, and their
    /// `rediss` TLS forms with feature `redis-tls`) with a small pool that reconnects on its
    /// own with backoff, a 1 s command timeout (callers answer 503 past it) and no command
    /// retries (see the type's docs).
    ///
    /// The revocation mirror is on: one more connection, in RESP3 with `CLIENT TRACKING`,
    /// through which checks read, so a repeat check is answered locally and stays exact (see
    /// [`RedisStore::with_mirror`]). [`RedisStore::without_mirror`] turns it off.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Duration::from_secs(1)).await
    }

    /// [`RedisStore::connect`] with an explicit connection and command timeout.
    ///
    /// A TLS URL (`rediss://`, `rediss-cluster://`, `rediss-sentinel://`, `valkeys://`, …) is
    /// refused unless the crate is built with `redis-tls`: without it the client would connect
    /// in clear, sending the password and trusting whatever answers the revocation check.
    pub async fn connect_with(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        check_tls_support(url, cfg!(feature = "redis-tls"))?;
        Self::connect_config(Config::from_url(url).map_err(store_error)?, timeout).await
    }

    /// [`RedisStore::connect_with`] over TLS with your own settings (feature `redis-tls`):
    /// a private CA, client certificates. `tls` is typically a `fred::rustls::ClientConfig`
    /// turned into a connector (`TlsConnector::from(client_config)`); the URL's host is the
    /// name the server's certificate must carry.
    ///
    /// A server whose certificate does not chain to the configured roots is refused: the
    /// connection fails with the TLS error.
    #[cfg(feature = "redis-tls")]
    pub async fn connect_tls(
        url: &str,
        timeout: Duration,
        tls: fred::types::config::TlsConnector,
    ) -> Result<Self, StoreError> {
        let mut config = Config::from_url(url).map_err(store_error)?;
        config.tls = Some(tls.into());
        Self::connect_config(config, timeout).await
    }

    async fn connect_config(mut config: Config, timeout: Duration) -> Result<Self, StoreError> {
        config.fail_fast = true;
        // Every command bounded by `timeout` and tried once (a rotation replayed after a
        // dropped connection would look like token reuse); reconnecting in the background.
        let builder = |config: Config| {
            let mut builder = Builder::from_config(config);
            builder
                .with_connection_config(|c| {
                    c.connection_timeout = timeout;
                    c.internal_command_timeout = timeout;
                    c.max_command_attempts = 1;
                })
                .with_performance_config(|p| p.default_command_timeout = timeout)
                .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2));
            builder
        };
        let pool = builder(config).build_pool(4).map_err(store_error)?;
        pool.init().await.map_err(store_error)?;
        let tracked = builder(Config {
            version: RespVersion::RESP3,
            ..pool.client_config()
        })
        .build()
        .map_err(store_error)?;
        tracked.init().await.map_err(store_error)?;
        let store = RedisStore::new(pool)
            .with_mirror(tracked, DEFAULT_MIRROR_CAPACITY)
            .await?;
        match store.eviction_policy().await {
            Ok(policy) if policy != "noeviction" => tracing::warn!(
                policy = %policy,
                "Redis may evict keys under memory pressure (maxmemory-policy is not noeviction): \
                 an evicted revocation would let a revoked token through again"
            ),
            Ok(_) => {}
            // Managed services often disable CONFIG; the operator has to check there.
            Err(e) => tracing::debug!(error = %e, "cannot read Redis' maxmemory-policy"),
        }
        Ok(store)
    }
}

impl RedisStore<Pool> {
    /// Acknowledges a revocation (logout, logout everywhere, session revoke, reuse
    /// detection) only once `replicas` replicas hold it (`WAIT replicas timeout`); past
    /// `timeout` the caller gets a store error (503) although the primary has it, and may
    /// retry (revocations are idempotent).
    ///
    /// Why: replication is asynchronous, so a revocation acknowledged by a primary that
    /// dies before replicating it would come back to life after a Sentinel failover. The
    /// cost: every revocation waits for a replica's round trip, and revocations fail (503)
    /// while fewer than `replicas` replicas are connected. Choose `replicas` so that any
    /// replica Sentinel may promote is among those counted (usually all of them), and keep
    /// `timeout` under the command timeout. Logins and refreshes do not wait.
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replication = Some(Arc::new(Replication {
            client: self.client.next().clone(),
            replicas: i64::from(replicas),
            timeout,
        }));
        self
    }
}

impl<C> RedisStore<C>
where
    C: KeysInterface + LuaInterface + ClientLike + Clone + Send + Sync + 'static,
{
    /// A store on an already-configured client (connected or not: `fred` queues or fails
    /// commands per its own settings). The client is used as configured: nothing here checks
    /// that a TLS URL it was built from got TLS (see [`RedisStore::connect`] for that).
    pub fn new(client: C) -> Self {
        let scripts = Scripts {
            create: Script::new(include_str!("redis/create.lua")),
            rotate: Script::new(with_marks!("redis/rotate.lua")),
            deny: Script::new(with_marks!("redis/deny.lua")),
            revoke: Script::new(with_marks!("redis/revoke.lua")),
            revoke_all: Script::new(with_marks!("redis/revoke_all.lua")),
            list: Script::new(include_str!("redis/list.lua")),
            sessions: Script::new(include_str!("redis/sessions.lua")),
        };
        RedisStore {
            client,
            prefix: DEFAULT_PREFIX.into(),
            scripts: Arc::new(scripts),
            mirror: None,
            replication: None,
            acceptance: Arc::default(),
        }
    }

    /// Answers repeat checks locally, kept exact by Redis client-side caching: checks read
    /// through `tracked` (a connected client in RESP3, used for nothing else) with
    /// `CLIENT TRACKING` on, and the server invalidates every key one of them read as soon as
    /// anything writes it. At most `capacity` keys are kept (three per token, about 130 bytes
    /// each). Any connection error or reconnection of `tracked` drops the whole mirror and
    /// leaves it off until tracking is back; a write through this store forgets what it
    /// touched at once.
    pub async fn with_mirror(mut self, tracked: Client, capacity: usize) -> Result<Self, StoreError> {
        let mirror = Mirror::start(tracked, capacity).await.map_err(store_error)?;
        self.mirror = Some(mirror);
        Ok(self)
    }

    /// The mirror's state, for metrics and tests: how many keys it holds and whether it is
    /// answering (off between a connection event and tracking being back). `None` without
    /// a mirror.
    pub fn mirror_state(&self) -> Option<(usize, bool)> {
        self.mirror.as_ref().map(|m| m.state())
    }

    /// Every check asks Redis (one `MGET`); no mirror.
    pub fn without_mirror(mut self) -> Self {
        self.mirror = None;
        self
    }

    /// Forgets, in the mirror, what a write for `sub` may have changed, once the write is
    /// done, failed or abandoned (the guard's drop): a later check of this instance then
    /// reads Redis, without waiting for the server's invalidation.
    fn forget_when_done<'a>(
        &'a self,
        sub: &'a str,
        deny: Option<&'a str>,
        sidrev: Option<&'a str>,
    ) -> Forget<'a> {
        Forget {
            mirror: self.mirror.as_deref(),
            sub,
            deny,
            sidrev,
        }
    }

    /// The server's `maxmemory-policy`. It must be `noeviction`: every key here has a TTL, so
    /// even the `volatile-*` policies may drop a revocation or a session under memory
    /// pressure. [`RedisStore::connect`] warns when it is not; an error usually means the
    /// service disables `CONFIG`.
    pub async fn eviction_policy(&self) -> Result<String, StoreError> {
        let command = CustomCommand::new("CONFIG", ClusterHash::Random, false);
        let reply: Vec<String> = self
            .client
            .custom(command, vec!["GET", "maxmemory-policy"])
            .await
            .map_err(store_error)?;
        reply
            .into_iter()
            .nth(1)
            .ok_or_else(|| malformed("CONFIG GET maxmemory-policy reply"))
    }

    /// Uses `prefix` instead of `tja` for every key. A prefix containing `{` or `}` is
    /// refused: it would move the hash tag that keeps one user's keys in one Cluster slot.
    pub fn prefix(mut self, prefix: &str) -> Result<Self, StoreError> {
        if prefix.contains(['{', '}']) {
            return Err(StoreError::new(
                StoreErrorKind::Config,
                format!(
                    "Redis key prefix {prefix:?} may not contain '{{' or '}}' (it would break the \
                     per-user hash tag)"
                ),
            ));
        }
        self.prefix = prefix.into();
        if let Some(mirror) = &self.mirror {
            mirror.clear();
        }
        Ok(self)
    }

    /// The client.
    pub fn client(&self) -> &C {
        &self.client
    }

    /// `<prefix>:{u:<hex(sub)>}:` — one hash tag, so one cluster slot, per user.
    fn user_prefix(&self, sub: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + 6 + sub.len() * 2 + 24);
        k.push_str(&self.prefix);
        k.push_str(":{u:");
        for b in sub.as_bytes() {
            let _ = write!(k, "{b:02x}");
        }
        k.push_str("}:");
        k
    }

    async fn run<R: FromValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<R, StoreError> {
        run_on(&self.client, script, keys, args).await
    }

    /// A script that revokes: with [`RedisStore::wait_for_replicas`], it runs on one
    /// connection, then `WAIT` on that connection holds the answer until the replicas have it
    /// (when `must_wait` says the script revoked anything).
    async fn revoke<R: FromValue>(
        &self,
        user: &str,
        script: &Script,
        mut keys: Vec<String>,
        mut args: Vec<Value>,
        must_wait: impl FnOnce(&R) -> bool,
    ) -> Result<R, StoreError> {
        // Every key of one user hashes to one slot: WAIT goes where the write went.
        let slot = fred::util::redis_keyslot(keys[0].as_bytes());
        let client = self.replication.as_ref().map(|r| &r.client);
        let (own_keys, own_args) = (keys.len(), args.len());
        // A script with no room for a marker names the oldest few, and the next run offers
        // them to fold, declaring their keys (`marks.lua`); concurrent revocations may fold
        // them first, so again. The last run folds none and raises the not-before past what any
        // marker covers (three seconds past now).
        for attempt in 1..=FOLD_ATTEMPTS {
            // The application's clock as of this run (see `mark_args`).
            args[NBF_CANDIDATE_ARG] = count(now_ms() / 1000 + 1);
            let reply: Value = match client {
                Some(client) => run_on(client, script, keys.clone(), args.clone()).await?,
                None => self.run(script, keys.clone(), args.clone()).await?,
            };
            if let Value::Array(items) = &reply {
                if let [Value::Integer(-1), members @ ..] = items.as_slice() {
                    keys.truncate(own_keys);
                    args.truncate(own_args);
                    if attempt + 1 < FOLD_ATTEMPTS {
                        for member in members {
                            let member = member.as_string().ok_or_else(|| malformed("marker to fold"))?;
                            keys.push(marker_key(user, &member).ok_or_else(|| malformed("marker to fold"))?);
                            args.push(Value::from(member));
                        }
                        args[FOLD_ARG] = count(members.len() as u64);
                    } else {
                        args[FOLD_ARG] = Value::Integer(-1);
                    }
                    continue;
                }
            }
            let answer = R::from_value(reply).map_err(store_error)?;
            if let Some(replication) = self.replication.as_ref().filter(|_| must_wait(&answer)) {
                replication.wait(slot).await?;
            }
            return Ok(answer);
        }
        Err(malformed("a request to fold a marker after folding none"))
    }
}

/// EVALSHA, falling back to EVAL (which also caches the script) on NOSCRIPT — after a
/// restart, a failover or a `SCRIPT FLUSH`.
async fn run_on<C, R>(
    client: &C,
    script: &Script,
    keys: Vec<String>,
    args: Vec<Value>,
) -> Result<R, StoreError>
where
    C: LuaInterface + Send + Sync,
    R: FromValue,
{
    match client
        .evalsha::<R, _, _, _>(script.sha.as_str(), keys.clone(), args.clone())
        .await
    {
        Err(e) if e.details().starts_with("NOSCRIPT") => client
            .eval::<R, _, _, _>(script.lua, keys, args)
            .await
            .map_err(store_error),
        other => other.map_err(store_error),
    }
}

/// Revocations acknowledged only once `replicas` replicas hold them.
struct Replication {
    /// One connection (per node): `WAIT` counts the writes made on its own connection.
    client: Client,
    replicas: i64,
    timeout: Duration,
}

impl Replication {
    async fn wait(&self, slot: u16) -> Result<(), StoreError> {
        let command = CustomCommand::new("WAIT", ClusterHash::Custom(slot), true);
        let options = fred::types::config::Options {
            timeout: Some(self.timeout + Duration::from_secs(1)),
            ..Default::default()
        };
        let acked: i64 = self
            .client
            .with_options(&options)
            .custom(command, vec![Value::Integer(self.replicas), int(self.timeout)])
            .await
            .map_err(store_error)?;
        if acked < self.replicas {
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "redis: the revocation reached {acked} of {} replicas within {:?}",
                    self.replicas, self.timeout
                ),
            ));
        }
        Ok(())
    }
}

/// Forgets a write's keys in the mirror when dropped.
struct Forget<'a> {
    mirror: Option<&'a Mirror>,
    sub: &'a str,
    deny: Option<&'a str>,
    sidrev: Option<&'a str>,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(mirror) = self.mirror {
            mirror.forget(self.sub, self.deny, self.sidrev);
        }
    }
}

/// A key of one user: `<user prefix><suffix><id>`.
fn key(user: &str, suffix: &str, id: &str) -> String {
    let mut k = String::with_capacity(user.len() + suffix.len() + id.len());
    k.push_str(user);
    k.push_str(suffix);
    k.push_str(id);
    k
}

/// A duration argument in milliseconds, clamped so that Lua's numbers stay exact.
fn int(v: Duration) -> Value {
    Value::Integer(i64::try_from(ms(crate::clock::setting(v))).unwrap_or(i64::MAX))
}

fn count(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// ARGV 1-4 of the scripts that write revocations (see `marks.lua`): the cap, the
/// not-before candidate from the application's clock (see `store::not_before_after`), the
/// window, and no markers offered to fold yet.
fn mark_args(marks: MarkPolicy) -> Vec<Value> {
    vec![
        count(u64::try_from(marks.max_per_user).unwrap_or(u64::MAX)),
        count(now_ms() / 1000 + 1),
        int(marks.window),
        Value::Integer(0),
    ]
}

/// Where [`mark_args`] puts the not-before candidate.
const NBF_CANDIDATE_ARG: usize = 1;

/// Where [`mark_args`] puts how many markers are offered to fold.
const FOLD_ARG: usize = 3;

/// Runs of a revoking script, folding a marker when there is no room (see `revoke`).
const FOLD_ATTEMPTS: usize = 5;

/// The key of a marker from its member in the user's markers zset (`d:<jti>`, `s:<sid>`).
fn marker_key(user: &str, member: &str) -> Option<String> {
    if let Some(jti) = member.strip_prefix("d:") {
        Some(key(user, "deny:", jti))
    } else {
        member.strip_prefix("s:").map(|sid| key(user, "sidrev:", sid))
    }
}

/// How many times a login re-declares the sessions it must end before giving up (each try
/// is told the exact set; only concurrent logins of the same user can change it).
const CREATE_ATTEMPTS: usize = 4;

impl<C> RevocationStore for RedisStore<C>
where
    C: KeysInterface + LuaInterface + ClientLike + Clone + Send + Sync + 'static,
{
    fn check<'a>(&'a self, t: TokenRef<'a>) -> BoxFuture<'a, Result<TokenStatus, StoreError>> {
        let user = self.user_prefix(t.sub);
        let keys = vec![
            key(&user, "deny:", t.jti),
            key(&user, "sidrev:", t.sid),
            key(&user, "nbf", ""),
        ];
        Box::pin(async move {
            type Reply = (Option<String>, Option<String>, Option<u64>);
            let values = |(deny, sidrev, nbf): Reply| [deny.map(|_| 1), sidrev.map(|_| 1), nbf];
            let values = match &self.mirror {
                // Through the tracked connection, so the server invalidates what it read.
                Some(mirror) => {
                    let ticket = mirror.ticket();
                    match mirror.client().mget::<Reply, _>(keys.clone()).await {
                        Ok(reply) => {
                            let values = values(reply);
                            mirror.keep(ticket, &t, values);
                            values
                        }
                        // The tracked connection failed (a disconnection drops the mirror
                        // until tracking is back; anything else may have lost
                        // invalidations, so forget what it holds): answer from Redis
                        // through the pool meanwhile.
                        Err(_) => {
                            mirror.clear();
                            values(self.client.mget(keys).await.map_err(store_error)?)
                        }
                    }
                }
                None => values(self.client.mget(keys).await.map_err(store_error)?),
            };
            Ok(mirror::status(values, t.iat))
        })
    }

    fn check_local(&self, t: TokenRef<'_>) -> Option<TokenStatus> {
        self.mirror.as_ref()?.check(&t)
    }

    fn widen_acceptance(&self, window: Duration) {
        self.acceptance.widen(window);
    }

    fn acceptance(&self) -> Duration {
        self.acceptance.get()
    }
}

impl<C> SessionStore for RedisStore<C>
where
    C: KeysInterface + LuaInterface + ClientLike + Clone + Send + Sync + 'static,
{
    fn create_session<'a>(&'a self, n: NewSession<'a>) -> BoxFuture<'a, Result<Grant, StoreError>> {
        let user = self.user_prefix(n.sub);
        let keys = vec![
            key(&user, "sess:", n.sid),
            key(&user, "epoch", ""),
            key(&user, "sessions", ""),
            key(&user, "nbf", ""),
        ];
        let args = vec![
            Value::from(n.sid),
            int(n.absolute),
            int(n.idle.unwrap_or_default()),
            count(u64::try_from(n.max_per_user).unwrap_or(u64::MAX)),
            count(n.latest_not_before),
        ];
        Box::pin(async move {
            // Usually one call; at the cap, a second one declaring the sessions it ends.
            let mut ending: Vec<String> = Vec::new();
            for _ in 0..CREATE_ATTEMPTS {
                let mut keys = keys.clone();
                keys.extend(ending.iter().map(|sid| key(&user, "sess:", sid)));
                let mut args = args.clone();
                args.extend(ending.iter().map(|sid| Value::from(sid.as_str())));
                let reply: Vec<Value> = self.run(&self.scripts.create, keys, args).await?;
                match reply.as_slice() {
                    [Value::Integer(-1), sids @ ..] => {
                        ending = sids.iter().filter_map(Value::as_string).collect();
                    }
                    [Value::Integer(-2)] => return Err(held_back()),
                    [end, nbf] => {
                        let bad = || malformed("create answer");
                        return Ok(Grant {
                            generation: 0,
                            session_end_ms: end.as_u64().ok_or_else(bad)?,
                            not_before: nbf.as_u64().ok_or_else(bad)?,
                        });
                    }
                    _ => break,
                }
            }
            Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "redis: the sessions to end kept changing (concurrent logins of one user)",
            ))
        })
    }

    fn rotate<'a>(&'a self, r: Rotation<'a>) -> BoxFuture<'a, Result<RotateOutcome, StoreError>> {
        let user = self.user_prefix(r.sub);
        let keys = vec![
            key(&user, "sess:", r.sid),
            key(&user, "epoch", ""),
            key(&user, "sidrev:", r.sid),
            key(&user, "sessions", ""),
            key(&user, "nbf", ""),
            key(&user, "marks", ""),
        ];
        let mut args = mark_args(r.marks);
        args.extend([
            Value::from(r.sid),
            count(r.generation),
            int(r.grace),
            Value::from(format!("s:{}", r.sid)),
            count(r.latest_not_before),
        ]);
        Box::pin(async move {
            // A replay revokes the session (and may raise the not-before).
            let _forget = self.forget_when_done(r.sub, None, Some(r.sid));
            // Only a replay (code 12) revokes, and waits for the replicas.
            let (code, generation, session_end_ms, not_before): (i64, u64, u64, u64) = self
                .revoke(
                    &user,
                    &self.scripts.rotate,
                    keys,
                    args,
                    |answer: &(i64, u64, u64, u64)| answer.0 == 12,
                )
                .await?;
            let grant = Grant {
                generation,
                session_end_ms,
                not_before,
            };
            Ok(match code {
                10 => RotateOutcome::Rotated(grant),
                11 => RotateOutcome::Grace(grant),
                12 => RotateOutcome::ReuseDetected,
                0 => RotateOutcome::Rejected(RejectReason::Missing),
                1 => RotateOutcome::Rejected(RejectReason::Revoked),
                2 => RotateOutcome::Rejected(RejectReason::Expired),
                3 => RotateOutcome::Rejected(RejectReason::Idle),
                4 => RotateOutcome::Rejected(RejectReason::UserLoggedOut),
                5 => RotateOutcome::Rejected(RejectReason::FutureGeneration),
                6 => return Err(held_back()),
                other => return Err(malformed(&format!("rotate answer {other}"))),
            })
        })
    }

    fn deny_token<'a>(
        &'a self,
        sub: &'a str,
        jti: &'a str,
        ttl: Duration,
        marks: MarkPolicy,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let user = self.user_prefix(sub);
        let keys = vec![
            key(&user, "deny:", jti),
            key(&user, "marks", ""),
            key(&user, "nbf", ""),
        ];
        let mut args = mark_args(marks);
        args.extend([int(ttl), Value::from(format!("d:{jti}"))]);
        Box::pin(async move {
            if ttl.is_zero() {
                return Ok(()); // already expired: nothing to remember
            }
            let _forget = self.forget_when_done(sub, Some(jti), None);
            self.revoke::<Vec<i64>>(&user, &self.scripts.deny, keys, args, |_| true)
                .await
                .map(drop)
        })
    }

    fn revoke_session<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        marks: MarkPolicy,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let user = self.user_prefix(sub);
        let keys = vec![
            key(&user, "sess:", sid),
            key(&user, "sidrev:", sid),
            key(&user, "epoch", ""),
            key(&user, "marks", ""),
            key(&user, "nbf", ""),
        ];
        let mut args = mark_args(marks);
        args.push(Value::from(format!("s:{sid}")));
        Box::pin(async move {
            let _forget = self.forget_when_done(sub, None, Some(sid));
            let revoked: Vec<i64> = self
                .revoke(&user, &self.scripts.revoke, keys, args, |_| true)
                .await?;
            Ok(revoked == [1])
        })
    }

    fn revoke_all<'a>(&'a self, sub: &'a str, window: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        let user = self.user_prefix(sub);
        let keys = vec![
            key(&user, "epoch", ""),
            key(&user, "nbf", ""),
            key(&user, "sessions", ""),
        ];
        let mut args = mark_args(MarkPolicy {
            window,
            max_per_user: 0,
        });
        args.push(count(now_ms() / 1000 + MAX_NOT_BEFORE_LEAD.as_secs()));
        Box::pin(async move {
            let _forget = self.forget_when_done(sub, None, None);
            let _nbf: i64 = self
                .revoke(&user, &self.scripts.revoke_all, keys, args, |_| true)
                .await?;
            Ok(())
        })
    }

    fn sessions<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        let user = self.user_prefix(sub);
        Box::pin(async move {
            let sids: Vec<String> = self
                .run(&self.scripts.list, vec![key(&user, "sessions", "")], Vec::new())
                .await?;
            if sids.is_empty() {
                return Ok(Vec::new());
            }
            // Every session key is declared, so the script stays valid on Cluster.
            let mut keys = vec![key(&user, "epoch", "")];
            keys.extend(sids.iter().map(|sid| key(&user, "sess:", sid)));
            let args: Vec<Value> = sids.iter().map(|s| Value::from(s.as_str())).collect();
            let flat: Vec<Value> = self.run(&self.scripts.sessions, keys, args).await?;
            let mut list = Vec::with_capacity(flat.len() / 5);
            for row in flat.chunks_exact(5) {
                let num = |v: &Value| v.as_u64().ok_or_else(|| malformed("session row"));
                let sid = row[0].as_string().ok_or_else(|| malformed("session row"))?;
                list.push(SessionInfo {
                    sid,
                    created_ms: num(&row[1])?,
                    last_used_ms: num(&row[2])?,
                    expires_ms: num(&row[3])?,
                    generation: num(&row[4])?,
                });
            }
            super::sort_sessions(&mut list);
            Ok(list)
        })
    }
}

/// Prepended to a script in tests: any key it touches that is not in `KEYS` fails it
/// (Redis Cluster proxies and future servers may enforce what Redis does not).
#[cfg(test)]
const STRICT_KEYS: &str = r#"
local declared = {}
for _, k in ipairs(KEYS) do declared[k] = true end
local real = redis
local redis = setmetatable({
  call = function(cmd, ...)
    local keys = real.pcall('COMMAND', 'GETKEYS', cmd, ...)
    if not keys.err then
      for _, k in ipairs(keys) do
        if not declared[k] then error({err = 'undeclared key ' .. k .. ' in ' .. cmd}) end
      end
    end
    return real.call(cmd, ...)
  end,
}, {__index = real})
"#;

#[cfg(test)]
impl Script {
    fn strict(lua: &str) -> Self {
        Script::new(Box::leak(format!("{STRICT_KEYS}{lua}").into_boxed_str()))
    }
}

#[cfg(test)]
impl<C> RedisStore<C> {
    /// The same store, its scripts strict about `KEYS` (see [`STRICT_KEYS`]).
    fn strict_keys(mut self) -> Self {
        let strict = |s: &Script| Script::strict(s.lua);
        let s = &self.scripts;
        self.scripts = Arc::new(Scripts {
            create: strict(&s.create),
            rotate: strict(&s.rotate),
            deny: strict(&s.deny),
            revoke: strict(&s.revoke),
            revoke_all: strict(&s.revoke_all),
            list: strict(&s.list),
            sessions: strict(&s.sessions),
        });
        self
    }
}

/// The tests' private `redis-server` processes.
#[cfg(test)]
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;
#[cfg(test)]
#[path = "../../tests/support/tools.rs"]
mod tools;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_lead_is_the_crates() {
        let lead = format!("local lead = {}\n", crate::store::MAX_MINT_AHEAD.as_secs());
        assert!(include_str!("redis/marks.lua").contains(&lead));
    }

    #[test]
    fn tls_urls_need_tls_support() {
        for url in [
            "rediss://h:6380",
            "REDISS://h",
            "rediss-cluster://h:7000",
            "rediss-sentinel://h:26379/0?sentinelServiceName=m",
            "valkeys://h",
            " rediss://h:6380",
            "\nrediss://h:6380",
            "redi\tss://h:6380",
        ] {
            let err = check_tls_support(url, false).unwrap_err();
            assert!(err.to_string().contains("redis-tls"), "{url}: {err}");
            assert!(check_tls_support(url, true).is_ok(), "{url}");
        }
        for url in [
            "redis://h",
            "redis-cluster://h",
            "redis-sentinel://h",
            "valkey://h",
            "junk",
        ] {
            assert!(check_tls_support(url, false).is_ok(), "{url}");
        }
    }

    #[tokio::test]
    async fn prefixes_may_not_move_the_hash_tag() {
        let store = RedisStore::new(Pool::new(Config::default(), None, None, None, 1).unwrap());
        assert!(store.clone().prefix("app:{x}").is_err());
        assert!(store.clone().prefix("app}").is_err());
        let store = store.prefix("app").unwrap();
        assert_eq!(store.user_prefix("a"), "app:{u:61}:");
    }

    /// Every script, down every branch that writes, declares every key it touches.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_key_a_script_touches_is_declared() {
        let Some(server) = redis_server::RedisServer::start() else {
            return;
        };
        let store = RedisStore::connect(&server.url()).await.unwrap().strict_keys();
        let marks = MarkPolicy {
            window: Duration::from_secs(60),
            max_per_user: 1,
        };
        let new = |sid| NewSession {
            sub: "u",
            sid,
            absolute: Duration::from_secs(60),
            idle: Some(Duration::from_secs(30)),
            max_per_user: 2,
            latest_not_before: u64::MAX,
        };
        let rotation = |sid, generation| Rotation {
            sub: "u",
            sid,
            generation,
            grace: Duration::ZERO,
            marks,
            latest_not_before: u64::MAX,
        };
        for sid in ["s1", "s2", "s3", "s4"] {
            // Past two, each login ends the session ending soonest (the two-phase create).
            store.create_session(new(sid)).await.unwrap();
        }
        store.rotate(rotation("s4", 0)).await.unwrap();
        // Reuse: the session is revoked, with a marker.
        let reuse = store.rotate(rotation("s4", 0)).await.unwrap();
        assert_eq!(reuse, RotateOutcome::ReuseDetected);
        store
            .deny_token("u", "j1", Duration::from_secs(60), marks)
            .await
            .unwrap();
        // No room for another marker (one each time): the oldest is folded into the
        // not-before, its key declared on a second run.
        assert!(store.revoke_session("u", "s3", marks).await.unwrap());
        let folded = TokenRef {
            sub: "u",
            sid: "s9",
            jti: "j1",
            iat: 1,
        };
        assert_eq!(store.check(folded).await.unwrap(), TokenStatus::UserLoggedOut);
        store.create_session(new("s5")).await.unwrap();
        let listed = store.sessions("u").await.unwrap();
        assert_eq!(listed.iter().map(|s| s.sid.as_str()).collect::<Vec<_>>(), ["s5"]);
        store.revoke_all("u", Duration::from_secs(60)).await.unwrap();
        let token = TokenRef {
            sub: "u",
            sid: "s3",
            jti: "j2",
            iat: 1,
        };
        assert_eq!(store.check(token).await.unwrap(), TokenStatus::SessionRevoked);
        // And the check does fail on an undeclared key.
        let sloppy = Script::strict("redis.call('GET', 'undeclared'); return 1");
        let err = store
            .run::<i64>(&sloppy, Vec::new(), Vec::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("undeclared key"), "{err}");
    }
}
