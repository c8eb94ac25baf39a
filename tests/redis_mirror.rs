//! Revocation stays immediate across instances with the Redis mirror on: two `RedisStore`s
//! (two app servers) on one Redis node and on a 3-master cluster. Instance A revokes
//! (logout, logout everywhere, revoke by id, reuse detection); instance B, which answered the
//! token from its mirror a moment before, must refuse it. The time from A's call returning to
//! B refusing is measured over many trials. Then B's tracked connection is dropped (`CLIENT
//! KILL`, a Redis restart) while A revokes: B must never answer from a stale mirror.

#[path = "support/probe.rs"]
mod probe;

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/tools.rs"]
mod tools;

use std::time::{Duration, Instant};

use http::StatusCode;
use tower_jwt_auth::store::{RevocationStore, TokenRef, TokenStatus};
use tower_jwt_auth::{Issuer, JwtAuthLayer, RedisStore, RefreshSecrets, Sessions, SigningKey, TokenPair};

/// Trials per revocation kind.
const TRIALS: usize = 40;

struct Instances {
    a: Sessions,
    b: RedisStore,
    b_layer: JwtAuthLayer,
}

async fn instances(url: &str) -> Instances {
    let issuer = Issuer::new(SigningKey::generate().unwrap());
    let secrets = RefreshSecrets::new("k1", &[5u8; 32]).unwrap();
    let a =
        Sessions::new(issuer.clone(), RedisStore::connect(url).await.unwrap(), secrets).grace(Duration::ZERO);
    let b = RedisStore::connect(url).await.unwrap();
    let b_layer = JwtAuthLayer::new(issuer.validation(), b.clone());
    Instances { a, b, b_layer }
}

impl Instances {
    /// What B answers for `token` (through the middleware: mirror first, then Redis).
    async fn b_status(&self, token: &str) -> StatusCode {
        probe::status(&self.b_layer, token).await
    }

    /// Logs `sub` in on A and has B answer the token from its mirror.
    async fn warm(&self, sub: &str) -> TokenPair {
        let pair = self.a.login(sub).await.unwrap();
        assert_eq!(self.b_status(&pair.access.token).await, StatusCode::OK);
        let token = TokenRef {
            sub,
            sid: &pair.sid,
            jti: &pair.access.jti,
            iat: pair.access.issued_at,
        };
        assert_eq!(
            self.b.check_local(token),
            Some(TokenStatus::Active),
            "B answers from its mirror"
        );
        pair
    }

    /// Waits (bounded) until B refuses `token`; how long that took.
    async fn until_refused(&self, token: &str) -> Duration {
        let start = Instant::now();
        loop {
            match self.b_status(token).await {
                StatusCode::UNAUTHORIZED => return start.elapsed(),
                StatusCode::OK => {}
                other => panic!("B answered {other}"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "B never saw the revocation"
            );
            // Tokio's timer ticks in milliseconds: yield instead, to measure below that.
            tokio::task::yield_now().await;
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Revocation {
    Logout,
    LogoutAll,
    RevokeById,
    Reuse,
}

impl Revocation {
    async fn on(self, a: &Sessions, sub: &str, pair: &TokenPair) {
        match self {
            Revocation::Logout => assert!(a.logout(None, Some(&pair.access.token)).await.unwrap()),
            Revocation::LogoutAll => a.logout_all(sub).await.unwrap(),
            Revocation::RevokeById => assert!(a.revoke(sub, &pair.sid).await.unwrap()),
            Revocation::Reuse => {
                a.refresh(&pair.refresh_token).await.unwrap();
                assert!(a.refresh(&pair.refresh_token).await.is_err(), "reuse detected");
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn revocations_reach_the_other_instance(url: &str, deployment: &str) {
    let it = instances(url).await;
    let mut all = Vec::new();
    for kind in [
        Revocation::Logout,
        Revocation::LogoutAll,
        Revocation::RevokeById,
        Revocation::Reuse,
    ] {
        let mut times = Vec::new();
        for trial in 0..TRIALS {
            let sub = format!("{deployment}-{kind:?}-{trial}-{}", std::process::id());
            let pair = it.warm(&sub).await;
            kind.on(&it.a, &sub, &pair).await;
            times.push(it.until_refused(&pair.access.token).await);
        }
        times.sort();
        eprintln!(
            "{deployment}: {kind:?} on A → refused on B: p50 {:?}, p99 {:?}, max {:?} ({TRIALS} trials)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times[times.len() - 1]
        );
        all.extend(times);
    }
    all.sort();
    eprintln!(
        "{deployment}: all revocations → refused on B: p50 {:?}, p99 {:?} ({} trials)",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.len()
    );
    assert!(percentile(&all, 0.99) < Duration::from_millis(100), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_on_one_instance_are_refused_on_another() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    revocations_reach_the_other_instance(&server.url(), "node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_on_one_instance_are_refused_on_another_in_a_cluster() {
    let Some(cluster) = redis_server::RedisCluster::start() else {
        return;
    };
    revocations_reach_the_other_instance(&cluster.url(), "cluster").await;
}

/// The ids of the connections with client tracking on (the mirrors').
fn tracked_connections(server: &redis_server::RedisServer) -> Vec<String> {
    server
        .cli(&["CLIENT", "LIST"])
        .lines()
        .filter(|l| l.split(' ').any(|f| f.starts_with("flags=") && f.contains('t')))
        .filter_map(|l| {
            l.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}

/// B must refuse `token` (401), or be unavailable (503) while it reconnects, and never let
/// it through; then, once tracking is back, refuse it from Redis and its mirror.
async fn never_stale(it: &Instances, token: &str) {
    let start = Instant::now();
    let mut refused = 0;
    while start.elapsed() < Duration::from_millis(500) || refused < 3 {
        let status = it.b_status(token).await;
        assert_ne!(
            status,
            StatusCode::OK,
            "B answered a revoked token from a stale mirror"
        );
        refused += usize::from(status == StatusCode::UNAUTHORIZED);
        assert!(start.elapsed() < Duration::from_secs(10), "B never recovered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    while !it.b.mirror_state().unwrap().1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "tracking never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(it.b_status(token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_drops_the_mirror_while_a_revocation_happens() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let it = instances(&server.url()).await;
    for round in 0..5 {
        let sub = format!("killed-{round}");
        let pair = it.warm(&sub).await;
        let other = it.warm(&format!("{sub}-live")).await;
        let tracked = tracked_connections(&server);
        assert!(tracked.len() >= 2, "both mirrors are tracked: {tracked:?}");
        // Kill every tracked connection while A logs out.
        let kill = {
            let ids = tracked.clone();
            let url_port = server.port();
            tokio::task::spawn_blocking(move || {
                for id in ids {
                    redis_server::cli_port(url_port, &["CLIENT", "KILL", "ID", &id]);
                }
            })
        };
        let logout = it.a.logout(None, Some(&pair.access.token));
        let (killed, logged_out) = tokio::join!(kill, logout);
        killed.unwrap();
        assert!(logged_out.unwrap());
        never_stale(&it, &pair.access.token).await;
        // A live session is still served.
        assert_eq!(it.b_status(&other.access.token).await, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_drops_the_mirror() {
    let Some(mut server) = redis_server::RedisServer::start_persistent() else {
        return;
    };
    let it = instances(&server.url()).await;
    let pair = it.warm("restart").await;
    let other = it.warm("restart-live").await;
    server.restart();
    // A revokes as soon as Redis answers again.
    let start = Instant::now();
    loop {
        match it.a.logout(None, Some(&pair.access.token)).await {
            Ok(revoked) => {
                assert!(revoked);
                break;
            }
            Err(_) => {
                assert!(start.elapsed() < Duration::from_secs(15), "no recovery");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    never_stale(&it, &pair.access.token).await;
    assert_eq!(it.b_status(&other.access.token).await, StatusCode::OK);
}
