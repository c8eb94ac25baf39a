//! What the examples share: settings from the environment, the store choice, the ready
//! line with a printed token, and `main`.
// Each example uses a subset of these.
#![allow(dead_code)]

use std::error::Error;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tower_jwt_auth::store::Store;
use tower_jwt_auth::{Issuer, KeySet, MemoryStore, SigningKey, Validation, VerifyingKey};

/// What the environment configured.
pub(crate) struct Settings {
    pub(crate) bind: SocketAddr,
    /// `None` in verify-only mode (only `JWT_PUBLIC_KEY` set).
    pub(crate) issuer: Option<Issuer>,
    pub(crate) validation: Validation,
    pub(crate) redis_url: Option<String>,
}

pub(crate) fn env_string(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub(crate) fn env_secs(name: &str) -> Result<Option<Duration>, Box<dyn Error>> {
    match env_string(name) {
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(|s| Some(Duration::from_secs(s)))
            .map_err(|_| format!("{name} must be a whole number of seconds, got {v:?}").into()),
        None => Ok(None),
    }
}

/// Reads BIND, JWT_PRIVATE_KEY / JWT_PUBLIC_KEY, ACCESS_TTL_SECS, JWT_ISSUER, JWT_AUDIENCE
/// and REDIS_URL. With no key at all, generates an ephemeral one (and says so).
pub(crate) fn load(default_bind: &str) -> Result<Settings, Box<dyn Error>> {
    let bind = env_string("BIND")
        .unwrap_or_else(|| default_bind.into())
        .parse()?;
    let key = match (SigningKey::from_env()?, VerifyingKey::from_env()?) {
        (Some(key), _) => Some(key),
        (None, Some(_)) => None,
        (None, None) => {
            tracing::warn!(
                "JWT_PRIVATE_KEY not set: using an ephemeral RSA key; tokens die with this process"
            );
            Some(SigningKey::generate()?)
        }
    };
    let ttl = env_secs("ACCESS_TTL_SECS")?;
    let (iss, aud) = (env_string("JWT_ISSUER"), env_string("JWT_AUDIENCE"));
    let issuer = key.map(|key| {
        let mut issuer = Issuer::new(key);
        if let Some(ttl) = ttl {
            issuer = issuer.access_ttl(ttl);
        }
        if let Some(iss) = &iss {
            issuer = issuer.issuer(iss.clone());
        }
        if let Some(aud) = &aud {
            issuer = issuer.audience(aud.clone());
        }
        issuer
    });
    let validation = match &issuer {
        Some(issuer) => issuer.validation(),
        None => {
            tracing::info!("only JWT_PUBLIC_KEY set: verify-only mode, no tokens are minted");
            let public = VerifyingKey::from_env()?.ok_or("JWT_PUBLIC_KEY vanished")?;
            let mut v = Validation::new(KeySet::new(public));
            if let Some(ttl) = ttl {
                v = v.max_lifetime(ttl);
            }
            if let Some(iss) = iss {
                v = v.issuer(iss);
            }
            if let Some(aud) = aud {
                v = v.audience(aud);
            }
            v
        }
    };
    Ok(Settings {
        bind,
        issuer,
        validation,
        redis_url: env_string("REDIS_URL"),
    })
}

/// The store `REDIS_URL` selects: Redis (`redis://`, `rediss://`, `redis-cluster://`), or
/// the in-memory store when it is unset. Chosen at runtime: no type parameter follows it.
pub(crate) async fn store(redis_url: Option<&str>) -> Result<Store, Box<dyn Error>> {
    match redis_url {
        Some(url) => {
            let store = tower_jwt_auth::RedisStore::connect(url).await?;
            tracing::info!("using the Redis store");
            Ok(store.into())
        }
        None => {
            tracing::warn!("REDIS_URL not set: using the in-memory store (one process only)");
            Ok(MemoryStore::new().into())
        }
    }
}

pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs an example's `run()`: tracing first, a clean exit code on error.
pub(crate) async fn main<F: std::future::Future<Output = Result<(), Box<dyn Error>>>>(
    run: impl FnOnce() -> F,
) {
    init_tracing();
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        #[allow(clippy::exit)] // an example's main: the error is printed, the code says failed
        std::process::exit(1);
    }
}

/// Once the listener is bound: a ready token for `alice` (when this process holds the
/// private key), a usage hint and `listening on <addr>`, flushed so a reader sees them at once.
pub(crate) fn print_ready(
    issuer: Option<&Issuer>,
    hint: &str,
    addr: SocketAddr,
) -> Result<(), Box<dyn Error>> {
    let mut out = std::io::stdout().lock();
    match issuer {
        Some(issuer) => {
            let token = issuer.issue_plain("alice", &demo_session_id())?;
            writeln!(out, "ACCESS_TOKEN={}", token.token)?;
        }
        None => eprintln!("verify-only: present tokens minted with the matching private key"),
    }
    writeln!(out, "try: {hint}")?;
    // Last: readers (and the tests) take this line to mean "ready".
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    Ok(())
}

/// A fresh session id per start, so revoking one run's session never kills the next one's
/// ready token. (Demo only: real sessions start through `Sessions::login`.)
pub(crate) fn demo_session_id() -> String {
    use std::hash::BuildHasher;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let random = std::collections::hash_map::RandomState::new().hash_one((seed, std::process::id()));
    format!("demo-{random:016x}")
}
