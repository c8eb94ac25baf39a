//! One million distinct valid tokens through one instance leave its memory within the caps
//! of the verified-token cache and the Redis mirror. Ignored by default (minting a million
//! RS256 tokens takes minutes); run it with
//!
//! ```sh
//! cargo test --release --test memory_bound -- --ignored --nocapture
//! ```

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/tools.rs"]
mod tools;

use std::convert::Infallible;
use std::time::Instant;

use http::{Request, Response, StatusCode};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_jwt_auth::{Issuer, JwtAuthLayer, MemoryStore, RedisStore, Revocations, SigningKey};

const TOKENS: usize = 1_000_000;

/// Resident set size of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Mints `count` distinct tokens on two threads, streaming them through a bounded channel.
fn mint(issuer: Issuer, count: usize) -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    for thread in 0..2 {
        let (issuer, tx) = (issuer.clone(), tx.clone());
        std::thread::spawn(move || {
            for i in (thread..count).step_by(2) {
                let token = issuer
                    .issue_plain(&format!("user-{}", i % 50_000), "s")
                    .unwrap()
                    .token;
                if tx.blocking_send(token).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

async fn run(name: &str, revocations: Revocations, issuer: &Issuer) -> u64 {
    let layer = JwtAuthLayer::new(issuer.validation(), revocations);
    let mut svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let before = rss_kib();
    let start = Instant::now();
    let mut tokens = mint(issuer.clone(), TOKENS);
    let mut served = 0;
    let mut peak = before;
    while let Some(token) = tokens.recv().await {
        let req = Request::builder()
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap();
        let r = svc.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        served += 1;
        if served % 100_000 == 0 {
            peak = peak.max(rss_kib());
            eprintln!("{name}: {served} tokens, RSS {} MiB", rss_kib() / 1024);
        }
    }
    assert_eq!(served, TOKENS);
    let after = rss_kib();
    eprintln!(
        "{name}: {TOKENS} distinct tokens in {:?}; RSS {} MiB before, {} MiB after, peak {} MiB",
        start.elapsed(),
        before / 1024,
        after / 1024,
        peak.max(after) / 1024
    );
    peak.max(after).saturating_sub(before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes: a million RS256 signatures"]
async fn a_million_distinct_tokens_stay_within_the_caps() {
    let issuer = Issuer::new(SigningKey::generate().unwrap());
    // The verified-token cache keeps 10 000 tokens (about 1.5 KiB each) whatever passes.
    let growth = run("memory store", MemoryStore::new().into(), &issuer).await;
    assert!(growth < 96 * 1024, "memory store: RSS grew {} MiB", growth / 1024);
    // Redis: the same cache, and a mirror of at most 100 000 keys (about 130 bytes each).
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let growth = run("redis store", store.clone().into(), &issuer).await;
    let (mirrored, live) = store.mirror_state().unwrap();
    eprintln!("redis store: {mirrored} keys mirrored (live: {live})");
    assert!(mirrored <= 110_000, "{mirrored}");
    assert!(growth < 128 * 1024, "redis store: RSS grew {} MiB", growth / 1024);
}
