//! The properties the fuzz targets check, one function per target. Included by the targets
//! (`fuzz/fuzz_targets/*.rs`, run with `cargo +nightly fuzz run <target>`) and by
//! `tests/fuzz_corpus.rs`, which replays every input in `fuzz/corpus/` on stable as part of
//! `cargo test`.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{service_fn, ServiceExt};
use tower_jwt_auth::{
    Issuer, JwtAuthLayer, MemoryStore, NoClaims, RefreshSecrets, SessionError, Sessions, SigningKey, Subject,
    TokenEndpoint, Validation,
};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    validation: Validation,
    sessions: Sessions,
    layer: JwtAuthLayer,
    /// A valid access token of the fixture's key.
    token: String,
    refresh: TokenEndpoint,
    logout: TokenEndpoint,
    logout_all: TokenEndpoint,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let issuer = Issuer::new(SigningKey::generate().unwrap());
        let sessions = Sessions::new(
            issuer,
            MemoryStore::new(),
            RefreshSecrets::new("k1", &[7; 32]).unwrap(),
        );
        let token = runtime.block_on(sessions.login("alice")).unwrap().access.token;
        let endpoints = sessions.endpoints().body_timeout(Duration::from_millis(50));
        Fixture {
            validation: sessions.validation().clone(),
            layer: sessions.auth_layer(),
            refresh: endpoints.refresh(),
            logout: endpoints.logout(),
            logout_all: endpoints.logout_all(),
            sessions,
            token,
            runtime,
        }
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Any bytes as a token: never a panic, never an acceptance (nothing but our key signs).
pub(crate) fn verify(data: &[u8]) {
    let f = fixture();
    if let Ok(text) = std::str::from_utf8(data) {
        let accepted = f.validation.verify::<NoClaims>(text, now()).is_ok();
        assert!(
            !accepted || text == f.token,
            "accepted a token not signed here: {text:?}"
        );
    }
}

/// A valid token, mutated by `data` (3-byte steps: replace, delete or insert one byte):
/// accepted only if the result is the exact signed bytes.
pub(crate) fn verify_mutated(data: &[u8]) {
    let f = fixture();
    let mut token = f.token.clone().into_bytes();
    for step in data.chunks(3) {
        let [op, at, byte] = [step[0], *step.get(1).unwrap_or(&0), *step.get(2).unwrap_or(&0)];
        if token.is_empty() {
            break;
        }
        // Spread the position over the whole token (header, payload, signature).
        let at = (usize::from(at) * token.len() / 256 + usize::from(byte)) % token.len();
        match op % 3 {
            0 => token[at] = byte,
            1 => {
                token.remove(at);
            }
            _ => token.insert(at, byte),
        }
    }
    let Ok(text) = std::str::from_utf8(&token) else {
        return;
    };
    let accepted = f.validation.verify::<NoClaims>(text, now()).is_ok();
    assert_eq!(accepted, text == f.token, "mutated token {text:?}");
}

async fn ok(_: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

/// Any `Authorization` header (before a 0 byte) and query (after it) through the layer:
/// 200 only for the valid token, otherwise 400 or 401, never a panic or a 5xx.
pub(crate) fn bearer(data: &[u8]) {
    let f = fixture();
    let (header, query) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let mut uri = String::from("/me");
    if let Some(query) = query.and_then(|q| std::str::from_utf8(q).ok()) {
        uri.push('?');
        uri.push_str(query);
    }
    let Ok(mut req) = Request::builder().uri(uri.as_str()).body(Full::new(Bytes::new())) else {
        return;
    };
    let Ok(value) = HeaderValue::from_bytes(header) else {
        return;
    };
    req.headers_mut().insert(http::header::AUTHORIZATION, value);
    let svc = tower::ServiceBuilder::new()
        .layer(f.layer.clone())
        .service(service_fn(ok));
    let status = f.runtime.block_on(svc.oneshot(req)).unwrap().status();
    match status {
        StatusCode::OK => {
            let sent = std::str::from_utf8(header).unwrap_or("");
            assert!(sent.trim_end().ends_with(&f.token), "200 for {sent:?}");
        }
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {}
        other => panic!("{other} for {:?}", String::from_utf8_lossy(data)),
    }
}

/// Any string as a refresh token: refused as `invalid_grant` before the store (only our
/// secret makes a MAC), never a panic.
pub(crate) fn refresh_token(data: &[u8]) {
    let f = fixture();
    let text = String::from_utf8_lossy(data);
    let result = f.runtime.block_on(f.sessions.refresh(&text));
    assert!(
        matches!(result, Err(SessionError::InvalidGrant)),
        "{text:?}: {result:?}"
    );
}

/// A whole token-endpoint request from `data`: byte 0 the method, byte 1 the endpoint (and
/// whether a verified subject is present), byte 2 the content type, then header lines up to
/// an empty line, then the body. Never a panic, never a 5xx.
pub(crate) fn endpoints(data: &[u8]) {
    let f = fixture();
    let [m, e, c, rest @ ..] = data else {
        return;
    };
    let method = [
        Method::POST,
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ][usize::from(*m) % 5]
        .clone();
    let endpoint = [&f.refresh, &f.logout, &f.logout_all][usize::from(*e) % 3].clone();
    let content_type = [
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        None,
        Some("application/json; charset=utf-8"),
    ][usize::from(*c) % 5];
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (&rest[..0], rest),
    };
    let mut req = Request::builder().method(method).uri("/auth/x");
    if let Some(ct) = content_type {
        req = req.header(http::header::CONTENT_TYPE, ct);
    }
    for line in head.split(|&b| b == b'\n') {
        let Some(i) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(&line[..i]),
            HeaderValue::from_bytes(line[i + 1..].trim_ascii()),
        ) else {
            continue;
        };
        req = req.header(name, value);
    }
    let Ok(mut req) = req.body(Full::new(Bytes::copy_from_slice(body))) else {
        return;
    };
    if e & 0x80 != 0 {
        // As the layer leaves it (another user than the other targets' alice).
        req.extensions_mut().insert(Subject::new("mallory", "s"));
    }
    let response = f.runtime.block_on(endpoint.oneshot(req)).unwrap();
    let status = response.status();
    // Logout-all without the layer's subject is a deployment mistake (500), not a request.
    let misplaced = e % 3 == 2 && e & 0x80 == 0;
    assert!(
        status.as_u16() < 500 || misplaced,
        "{status} for {:?}",
        String::from_utf8_lossy(data)
    );
}
