//! Hot-path costs, each against a baseline measured in the same run:
//! - verify: our pre-parsed-key verifier vs `jsonwebtoken::decode` (key parsed per call, as
//!   the usual glue code does through `DecodingKey`), same token;
//! - sign: our pre-parsed signer vs `jsonwebtoken::encode`;
//! - middleware: a request through `JwtAuth` (verify + in-memory revocation check) vs the
//!   same inner service without it.
//!
//! `cargo bench --bench tokens` (plain harness: prints ns/op and ratios).

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_jwt_auth::{Claims, Issuer, JwtAuthLayer, MemoryStore, SigningKey, Validation};

/// Runs `f` repeatedly for about `budget`, returning ns per call (median of 5 rounds).
fn measure(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..50 {
        f();
    }
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget / 5 {
            for _ in 0..20 {
                f();
            }
            n += 20;
        }
        rounds.push(start.elapsed().as_nanos() as f64 / n as f64);
    }
    rounds.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rounds[2]
}

fn report(name: &str, ours: f64, baseline_name: &str, baseline: f64) {
    println!(
        "{name:<28} {:>10.1} µs   {baseline_name:<34} {:>10.1} µs   ratio {:.2}x",
        ours / 1000.0,
        baseline / 1000.0,
        baseline / ours
    );
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    let key = SigningKey::generate().unwrap();
    let issuer = Issuer::new(key.clone());
    let validation: Validation = issuer.validation();
    let token = issuer.issue_plain("alice", "sid-1").unwrap().token;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Verify.
    let ours = measure(budget, || {
        black_box(
            validation
                .verify::<tower_jwt_auth::NoClaims>(black_box(&token), now)
                .unwrap(),
        );
    });
    let jwk = key.verifying_key().jwk().clone();
    let mut jv = jsonwebtoken::Validation::new(Algorithm::RS256);
    jv.required_spec_claims = ["exp".to_owned()].into();
    jv.validate_aud = false;
    let baseline = measure(budget, || {
        let dk = DecodingKey::from_jwk(&jwk).unwrap();
        black_box(jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &dk, &jv).unwrap());
    });
    report("verify (ours)", ours, "jsonwebtoken::decode", baseline);
    let dk = DecodingKey::from_jwk(&jwk).unwrap();
    let baseline_cached_key = measure(budget, || {
        black_box(jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &dk, &jv).unwrap());
    });
    report(
        "verify (ours)",
        ours,
        "jsonwebtoken::decode, key reused",
        baseline_cached_key,
    );

    // Sign.
    let ours = measure(budget, || {
        black_box(issuer.issue_plain("alice", "sid-1").unwrap());
    });
    let pem = key.to_pkcs8_pem().unwrap();
    let ek = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.kid().to_owned());
    let claims = serde_json::json!({"sub": "alice", "iat": now, "exp": now + 900, "jti": "abcdefghijklmnopqrstuv", "sid": "sid-1"});
    let baseline = measure(budget, || {
        black_box(jsonwebtoken::encode(&header, black_box(&claims), &ek).unwrap());
    });
    report("sign (ours)", ours, "jsonwebtoken::encode, key reused", baseline);

    // Middleware round trip (tower oneshot, no network).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inner = service_fn(|req: Request<String>| async move {
        black_box(req.extensions().get::<Claims>());
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let mut bare = inner;
    let mut authed = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(
            validation.clone(),
            Arc::new(MemoryStore::new()),
        ))
        .service(inner);
    let bearer = format!("Bearer {token}");
    let request = || {
        Request::builder()
            .header("authorization", bearer.as_str())
            .body(String::new())
            .unwrap()
    };
    let baseline = measure(budget, || {
        rt.block_on(async { black_box(bare.ready().await.unwrap().call(request()).await.unwrap()) });
    });
    let ours = measure(budget, || {
        rt.block_on(async {
            let r = authed.ready().await.unwrap().call(request()).await.unwrap();
            assert_eq!(r.status(), 200);
            black_box(r)
        });
    });
    println!(
        "{:<28} {:>10.1} µs   {:<34} {:>10.1} µs   overhead {:.1} µs",
        "request through JwtAuth",
        ours / 1000.0,
        "same service, no auth",
        baseline / 1000.0,
        (ours - baseline) / 1000.0
    );
}
