//! Settings shared by the examples: bind address, keys, issuer, store choice.
// Each example uses a subset of these.
#![allow(dead_code)]

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use tower_jwt_auth::{Issuer, KeySet, SigningKey, Validation, VerifyingKey};

/// What the environment configured.
pub struct Settings {
    pub bind: SocketAddr,
    /// `None` in verify-only mode (only `JWT_PUBLIC_KEY` set).
    pub issuer: Option<Issuer>,
    pub validation: Validation,
    pub redis_url: Option<String>,
}

pub fn env_string(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn env_secs(name: &str) -> Result<Option<Duration>, Box<dyn Error>> {
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
pub fn load(default_bind: &str) -> Result<Settings, Box<dyn Error>> {
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

pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The Redis store for `REDIS_URL` (`redis://`, `rediss://`, `redis-cluster://`).
#[cfg(feature = "redis")]
pub async fn redis_store(url: &str) -> Result<tower_jwt_auth::store::RedisStore, Box<dyn Error>> {
    let store = tower_jwt_auth::store::RedisStore::connect(url).await?;
    tracing::info!("using the Redis store");
    Ok(store)
}

/// Without the `redis` feature there is no Redis store.
#[cfg(not(feature = "redis"))]
pub async fn redis_store(_url: &str) -> Result<tower_jwt_auth::MemoryStore, Box<dyn Error>> {
    Err("REDIS_URL is set but this build has no `redis` feature".into())
}

/// Runs an example's `run()`: tracing first, a clean exit code on error.
pub async fn main<F: std::future::Future<Output = Result<(), Box<dyn Error>>>>(run: impl FnOnce() -> F) {
    init_tracing();
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Calls the generic `$serve(.., store)` with the store `REDIS_URL` selects (a generic
/// function cannot be passed as a value, so this is a macro).
macro_rules! with_store {
    ($redis_url:expr, |$store:ident| $serve:expr) => {
        match $redis_url {
            Some(url) => {
                let $store = std::sync::Arc::new(settings::redis_store(&url).await?);
                $serve.await
            }
            None => {
                tracing::warn!("REDIS_URL not set: using the in-memory store (one process only)");
                let $store = std::sync::Arc::new(tower_jwt_auth::MemoryStore::new());
                $serve.await
            }
        }
    };
}
pub(crate) use with_store;
