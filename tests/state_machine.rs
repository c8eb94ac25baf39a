//! The session state machine checked against a small reference model of DESIGN.md's
//! rotation table, with random operation sequences (proptest): login, refresh with the
//! current, previous (within and after the grace window), older and future generation,
//! concurrent duplicates, logout, revoke by id, logout everywhere, listing, idle and absolute
//! expiry, and clock advances — over the memory store, a Redis node and a 3-master cluster.
//! A divergence is a failing, shrunk case.
//!
//! Time is the real clock, made discrete: short lifetimes (idle 150 ms, absolute 300 ms,
//! grace 150 ms) always outlast the operations between two `Advance` steps and never
//! survive one (it sleeps 400 ms). `PROPTEST_CASES` sets the cases per store (default 12).

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/tools.rs"]
mod tools;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tower_jwt_auth::store::{
    Grant, MarkPolicy, NewSession, RotateOutcome, Rotation, Store, TokenRef, TokenStatus,
};
use tower_jwt_auth::{MemoryStore, RedisStore};

const SHORT_IDLE: Duration = Duration::from_millis(150);
const SHORT_ABSOLUTE: Duration = Duration::from_millis(300);
const SHORT_GRACE: Duration = Duration::from_millis(150);
const ADVANCE: Duration = Duration::from_millis(400);
const MARKS: MarkPolicy = MarkPolicy {
    window: Duration::from_secs(960),
    max_per_user: 10_000,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grace {
    Off,
    Short,
    Long,
}

impl Grace {
    fn duration(self) -> Duration {
        match self {
            Grace::Off => Duration::ZERO,
            Grace::Short => SHORT_GRACE,
            Grace::Long => Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Which {
    Current,
    Previous,
    Older,
    Future,
}

#[derive(Clone, Debug)]
enum Op {
    Login { short_idle: bool, short_absolute: bool },
    Refresh { session: usize, which: Which },
    Race { session: usize, callers: usize },
    Logout { session: usize },
    LogoutAll,
    Advance,
    List,
}

fn op() -> impl Strategy<Value = Op> {
    let which = prop_oneof![
        3 => Just(Which::Current),
        2 => Just(Which::Previous),
        1 => Just(Which::Older),
        1 => Just(Which::Future),
    ];
    prop_oneof![
        3 => (any::<bool>(), any::<bool>()).prop_map(|(i, a)| Op::Login { short_idle: i, short_absolute: a }),
        6 => (0..8usize, which).prop_map(|(session, which)| Op::Refresh { session, which }),
        1 => (0..8usize, 2..6usize).prop_map(|(session, callers)| Op::Race { session, callers }),
        1 => (0..8usize).prop_map(|session| Op::Logout { session }),
        1 => Just(Op::LogoutAll),
        1 => Just(Op::Advance),
        1 => Just(Op::List),
    ]
}

/// A rotation's outcome as the model predicts it: `Rejected` stands for every refusal
/// without reuse (stores may name the reason differently once a session is gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Out {
    Rotated(u64),
    Grace(u64),
    Reuse,
    Rejected,
}

fn out(o: &RotateOutcome) -> Out {
    match o {
        RotateOutcome::Rotated(g) => Out::Rotated(g.generation),
        RotateOutcome::Grace(g) => Out::Grace(g.generation),
        RotateOutcome::ReuseDetected => Out::Reuse,
        RotateOutcome::Rejected(_) => Out::Rejected,
    }
}

/// The reference model of one session.
#[derive(Clone, Debug)]
struct Session {
    sid: String,
    generation: u64,
    /// Revoked: logout, revoke by id, reuse (its access tokens die) or expiry seen by a
    /// refresh (they do not).
    revoked: bool,
    /// Revoked with a session marker: its access tokens must be refused.
    marked: bool,
    epoch: u64,
    short_idle: bool,
    short_absolute: bool,
    /// `advances` when it started, and when it was last used (created or rotated).
    created: u32,
    used: u32,
    rotated: Option<u32>,
    /// `iat` of the last access token a grant allowed.
    iat: u64,
}

#[derive(Debug)]
struct Model {
    sessions: Vec<Session>,
    epoch: u64,
    advances: u32,
    grace: Grace,
    /// Access tokens issued before this many logouts-everywhere must be refused.
    logged_out_before: Option<u64>,
}

impl Model {
    fn expired(&self, s: &Session) -> bool {
        (s.short_absolute && self.advances > s.created) || (s.short_idle && self.advances > s.used)
    }

    /// Whether a refresh of `s` could succeed (exists, not revoked, this epoch, alive).
    fn usable(&self, s: &Session) -> bool {
        !s.revoked && s.epoch == self.epoch && !self.expired(s)
    }

    /// The outcome of presenting generation `g` of session `i`, applied to the model.
    fn rotate(&mut self, i: usize, g: u64) -> Out {
        let (usable, expired) = (self.usable(&self.sessions[i]), self.expired(&self.sessions[i]));
        let advances = self.advances;
        let grace = self.grace;
        let s = &mut self.sessions[i];
        if !usable {
            if expired && !s.revoked && s.epoch == self.epoch {
                s.revoked = true; // the store ends an expired session it is asked about
            }
            return Out::Rejected;
        }
        let current = s.generation;
        if g == current {
            s.generation += 1;
            s.used = advances;
            s.rotated = Some(advances);
            return Out::Rotated(s.generation);
        }
        if g > current {
            return Out::Rejected;
        }
        let within = match grace {
            Grace::Off => false,
            Grace::Long => true,
            Grace::Short => s.rotated == Some(advances),
        };
        if g + 1 == current && within {
            return Out::Grace(current);
        }
        s.revoked = true;
        s.marked = true;
        Out::Reuse
    }

    fn active(&self) -> BTreeSet<String> {
        self.sessions
            .iter()
            .filter(|s| self.usable(s))
            .map(|s| s.sid.clone())
            .collect()
    }
}

fn rotation<'a>(sub: &'a str, sid: &'a str, generation: u64, grace: Grace) -> Rotation<'a> {
    Rotation {
        sub,
        sid,
        generation,
        grace: grace.duration(),
        marks: MARKS,
        latest_not_before: u64::MAX,
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn user() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "model-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// `iat` of an access token a grant allows, as `Sessions` mints it.
fn iat(asked_at: u64, grant: &Grant) -> u64 {
    asked_at.max(grant.not_before)
}

async fn status(store: &Store, sub: &str, s: &Session) -> TokenStatus {
    let token = TokenRef {
        sub,
        sid: &s.sid,
        jti: "model-jti",
        iat: s.iat,
    };
    match store.check_local(token) {
        Some(status) => status,
        None => store.check(token).await.unwrap(),
    }
}

/// Runs `ops` against `store` and the model, step by step; the first divergence fails.
async fn run(store: &Store, grace: Grace, ops: &[Op]) -> Result<(), String> {
    let sub = user();
    let mut model = Model {
        sessions: Vec::new(),
        epoch: 0,
        advances: 0,
        grace,
        logged_out_before: None,
    };
    for (step, op) in ops.iter().enumerate() {
        let at = format!("step {step} ({op:?})");
        match *op {
            Op::Login {
                short_idle,
                short_absolute,
            } => {
                let sid = format!("s{}", model.sessions.len());
                let asked = now_secs();
                let grant = store
                    .create_session(NewSession {
                        sub: &sub,
                        sid: &sid,
                        absolute: if short_absolute {
                            SHORT_ABSOLUTE
                        } else {
                            Duration::from_secs(3600)
                        },
                        idle: short_idle.then_some(SHORT_IDLE),
                        max_per_user: 1000,
                        latest_not_before: u64::MAX,
                    })
                    .await
                    .map_err(|e| format!("{at}: {e}"))?;
                if grant.generation != 0 {
                    return Err(format!("{at}: new session at generation {}", grant.generation));
                }
                model.sessions.push(Session {
                    sid,
                    generation: 0,
                    revoked: false,
                    marked: false,
                    epoch: model.epoch,
                    short_idle,
                    short_absolute,
                    created: model.advances,
                    used: model.advances,
                    rotated: None,
                    iat: iat(asked, &grant),
                });
            }
            Op::Refresh { session, which } => {
                if model.sessions.is_empty() {
                    continue;
                }
                let i = session % model.sessions.len();
                let current = model.sessions[i].generation;
                let g = match which {
                    Which::Current => current,
                    Which::Previous => current.saturating_sub(1),
                    Which::Older => current.saturating_sub(2),
                    Which::Future => current + 1,
                };
                let sid = model.sessions[i].sid.clone();
                let asked = now_secs();
                let got = store
                    .rotate(rotation(&sub, &sid, g, grace))
                    .await
                    .map_err(|e| format!("{at}: {e}"))?;
                let expected = model.rotate(i, g);
                if out(&got) != expected {
                    return Err(format!(
                        "{at}: store {got:?}, model {expected:?}; model {model:?}"
                    ));
                }
                if let RotateOutcome::Rotated(grant) | RotateOutcome::Grace(grant) = &got {
                    model.sessions[i].iat = iat(asked, grant);
                }
            }
            Op::Race { session, callers } => {
                if model.sessions.is_empty() {
                    continue;
                }
                let i = session % model.sessions.len();
                let (sid, g) = (model.sessions[i].sid.clone(), model.sessions[i].generation);
                let calls: Vec<_> = (0..callers)
                    .map(|_| store.rotate(rotation(&sub, &sid, g, grace)))
                    .collect();
                let mut got: Vec<Out> = futures_util::future::join_all(calls)
                    .await
                    .into_iter()
                    .map(|r| r.map(|o| out(&o)))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("{at}: {e}"))?;
                // The same presentations, one after another, in the model: the order the
                // store serialised them in does not change the multiset.
                let mut expected: Vec<Out> = (0..callers).map(|_| model.rotate(i, g)).collect();
                got.sort();
                expected.sort();
                if got != expected {
                    return Err(format!("{at}: store {got:?}, model {expected:?}"));
                }
            }
            Op::Logout { session } => {
                if model.sessions.is_empty() {
                    continue;
                }
                let i = session % model.sessions.len();
                let s = &model.sessions[i];
                let expected = model.usable(s);
                let got = store
                    .revoke_session(&sub, &s.sid, MARKS)
                    .await
                    .map_err(|e| format!("{at}: {e}"))?;
                if got != expected {
                    return Err(format!("{at}: store {got}, model {expected}"));
                }
                if expected {
                    let s = &mut model.sessions[i];
                    s.revoked = true;
                    s.marked = true;
                }
            }
            Op::LogoutAll => {
                store
                    .revoke_all(&sub, MARKS.window)
                    .await
                    .map_err(|e| format!("{at}: {e}"))?;
                model.epoch += 1;
                model.logged_out_before = Some(model.sessions.len() as u64);
            }
            Op::Advance => {
                tokio::time::sleep(ADVANCE).await;
                model.advances += 1;
            }
            Op::List => {
                let got: BTreeSet<String> = store
                    .sessions(&sub)
                    .await
                    .map_err(|e| format!("{at}: {e}"))?
                    .into_iter()
                    .map(|s| s.sid)
                    .collect();
                let expected = model.active();
                if got != expected {
                    return Err(format!("{at}: store lists {got:?}, model {expected:?}"));
                }
            }
        }
        // Access tokens: a session revoked with a marker refuses its tokens; one issued
        // before a logout-everywhere is refused; a live session's token passes.
        for (n, s) in model.sessions.iter().enumerate() {
            let before_logout_all = model.logged_out_before.is_some_and(|k| (n as u64) < k);
            let must_refuse = s.marked || (before_logout_all && s.epoch < model.epoch);
            let must_pass = model.usable(s) && !s.marked;
            let got = status(store, &sub, s).await;
            if must_refuse && got == TokenStatus::Active {
                return Err(format!("{at}: {}'s token passes after its revocation", s.sid));
            }
            if must_pass && got != TokenStatus::Active {
                return Err(format!("{at}: {}'s token refused ({got:?}) while live", s.sid));
            }
        }
    }
    Ok(())
}

/// Random sequences against `store`, each grace setting, shrunk on failure.
async fn model_check(name: &str, store: Store) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let strategy = (
        prop_oneof![Just(Grace::Off), Just(Grace::Short), Just(Grace::Long)],
        prop::collection::vec(op(), 1..40),
    )
        // At most two clock advances per case keep it quick.
        .prop_filter("at most two advances", |(_, ops)| {
            ops.iter().filter(|o| matches!(o, Op::Advance)).count() <= 2
        });
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |(grace, ops)| {
            let outcome = handle.block_on(run(&store, grace, &ops));
            prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{name}: the store diverges from the model: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_follows_the_model() {
    model_check("memory", MemoryStore::new().into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_node_follows_the_model() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url()).await.unwrap();
    model_check("redis node", store.into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_follows_the_model() {
    let Some(cluster) = redis_server::RedisCluster::start() else {
        return;
    };
    let store = RedisStore::connect(&cluster.url()).await.unwrap();
    model_check("redis cluster", store.into()).await;
}
