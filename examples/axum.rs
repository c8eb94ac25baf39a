//! The demo server: login, refresh, logout, logout everywhere, a protected `/me`, JWKS.
//!
//! `cargo run --example axum` works with no settings (in-memory store, ephemeral keys).
//! Settings (environment): BIND, JWT_PRIVATE_KEY, JWT_PUBLIC_KEY, REFRESH_TOKEN_SECRET,
//! REDIS_URL, ACCESS_TTL_SECS, REFRESH_TTL_SECS, REFRESH_GRACE_SECS, JWT_ISSUER, JWT_AUDIENCE.
//! Demo users: alice / wonderland, bob / builder.

#[path = "support/settings.rs"]
mod settings;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_jwt_auth::store::Store;
use tower_jwt_auth::{Claims, Issuer, JwtAuthLayer, RefreshSecrets, Sessions};

/// The application's own claims, carried in every access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AppClaims {
    role: String,
    email: String,
}

/// Demo users (a real application brings its own credential check).
const USERS: [(&str, &str, &str, &str); 2] = [
    ("alice", "wonderland", "admin", "alice@example.com"),
    ("bob", "builder", "user", "bob@example.com"),
];

fn user_claims(sub: &str) -> Option<AppClaims> {
    USERS
        .iter()
        .find(|(name, ..)| *name == sub)
        .map(|(_, _, role, email)| AppClaims {
            role: (*role).into(),
            email: (*email).into(),
        })
}

fn password_ok(username: &str, password: &str) -> bool {
    USERS.iter().any(|(name, pass, ..)| {
        *name == username
            && aws_lc_rs::constant_time::verify_slices_are_equal(pass.as_bytes(), password.as_bytes()).is_ok()
    })
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

#[tokio::main]
async fn main() {
    settings::main(run).await
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = settings::load("127.0.0.1:3000")?;
    let Some(issuer) = settings.issuer else {
        return Err(
            "the demo mints tokens: set JWT_PRIVATE_KEY (or neither key, for an ephemeral one)".into(),
        );
    };
    let secrets = match RefreshSecrets::from_env()? {
        Some(s) => s,
        None => {
            tracing::warn!("REFRESH_TOKEN_SECRET not set: using an ephemeral secret; refresh tokens die with this process");
            RefreshSecrets::generate()
        }
    };
    let bind = settings.bind;
    settings::with_store!(settings.redis_url, |store| serve(bind, issuer, secrets, store))
}

async fn serve<St: Store>(
    bind: SocketAddr,
    issuer: Issuer,
    secrets: RefreshSecrets,
    store: Arc<St>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut sessions = Sessions::new(issuer, store.clone(), secrets)
        .claims_provider(|sub: String| async move { user_claims(&sub) });
    if let Some(ttl) = settings::env_secs("REFRESH_TTL_SECS")? {
        sessions = sessions.absolute_lifetime(ttl);
    }
    if let Some(grace) = settings::env_secs("REFRESH_GRACE_SECS")? {
        sessions = sessions.grace(grace);
    }
    let jwks = sessions.validation().keys().jwks();
    let auth = JwtAuthLayer::new(sessions.validation().clone(), store).claims::<AppClaims>();

    let protected = Router::new()
        .route("/me", get(me))
        .route("/me/sessions", get(list_sessions))
        .route("/me/sessions/{sid}", delete(revoke_session))
        .route_layer(auth)
        .with_state(sessions.clone());

    let login_sessions = sessions.clone();
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/auth/login",
            post(move |headers: HeaderMap, body: Bytes| login(login_sessions.clone(), headers, body)),
        )
        .route_service("/auth/refresh", sessions.refresh_service())
        .route_service("/auth/logout", sessions.logout_service())
        .route_service("/auth/logout-all", sessions.logout_all_service())
        .route("/.well-known/jwks.json", get(move || async move { Json(jwks) }))
        .merge(protected);

    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("try: curl -s -X POST http://{bind}/auth/login -H 'content-type: application/json' -d '{{\"username\":\"alice\",\"password\":\"wonderland\"}}'");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn login<St: Store, P: tower_jwt_auth::ClaimsProvider>(
    sessions: Sessions<St, P>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "use application/json",
        );
    }
    let Ok(Login { username, password }) = serde_json::from_slice::<Login>(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected {\"username\", \"password\"}",
        );
    };
    if !password_ok(&username, &password) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        );
    }
    sessions.login_response(&username, &headers).await.into_response()
}

async fn me(claims: Claims<AppClaims>) -> Json<Claims<AppClaims>> {
    Json(claims)
}

async fn list_sessions<St: Store, P: tower_jwt_auth::ClaimsProvider>(
    axum::extract::State(sessions): axum::extract::State<Sessions<St, P>>,
    claims: Claims<AppClaims>,
) -> Response {
    match sessions.list(&claims.sub).await {
        Ok(list) => Json(serde_json::json!({"current": claims.sid, "sessions": list})).into_response(),
        Err(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "retry later",
        ),
    }
}

async fn revoke_session<St: Store, P: tower_jwt_auth::ClaimsProvider>(
    axum::extract::State(sessions): axum::extract::State<Sessions<St, P>>,
    claims: Claims<AppClaims>,
    Path(sid): Path<String>,
) -> Response {
    match sessions.revoke(&claims.sub, &sid).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => json_error(StatusCode::NOT_FOUND, "not_found", "no such active session"),
        Err(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "retry later",
        ),
    }
}
