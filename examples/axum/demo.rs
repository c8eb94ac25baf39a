//! The demo application: routes, handlers and demo users, for any [`Sessions`]. `main.rs`
//! serves it; the end-to-end tests serve it in-process.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_jwt_auth::{Claims, Sessions, Subject, TokenEndpoints};

/// The application's own claims, carried in every access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AppClaims {
    pub(crate) role: String,
    pub(crate) email: String,
}

/// Demo users (a real application brings its own credential check).
const USERS: [(&str, &str, &str, &str); 2] = [
    ("alice", "wonderland", "admin", "alice@example.com"),
    ("bob", "builder", "user", "bob@example.com"),
];

/// The claims of a demo user, at login and every refresh.
pub(crate) async fn user_claims(sub: String) -> Option<AppClaims> {
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

/// The browser page: plain HTML and JS, no build step (see its source).
const PAGE: &str = include_str!("page.html");

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct Demo {
    pub(crate) sessions: Sessions,
    pub(crate) endpoints: TokenEndpoints,
}

/// Every route of the demo (DESIGN.md "Demo server contract").
pub(crate) fn router(sessions: Sessions) -> Router {
    let sessions = sessions.claims_provider(user_claims);
    let state = Demo {
        endpoints: sessions.endpoints(),
        sessions: sessions.clone(),
    };
    let jwks = sessions.validation().keys().jwks();

    // Everything here sits behind the one verification path.
    let protected = Router::new()
        .route("/me", get(me))
        .route("/me/sessions", get(list_sessions))
        .route("/me/sessions/{sid}", delete(revoke_session))
        .route_service("/auth/logout-all", state.endpoints.logout_all())
        .route_layer(sessions.auth_layer().claims::<AppClaims>());

    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/health", get(|| async { "ok" }))
        .route("/auth/login", post(login))
        .route_service("/auth/refresh", state.endpoints.refresh())
        .route_service("/auth/logout", state.endpoints.logout())
        .route("/.well-known/jwks.json", get(move || async move { Json(jwks) }))
        .merge(protected)
        .with_state(state)
}

fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn unavailable() -> Response {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "retry later",
    )
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(State(demo): State<Demo>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
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
    demo.endpoints
        .login_response(&username, &headers)
        .await
        .into_response()
}

async fn me(claims: Claims<AppClaims>) -> Json<Claims<AppClaims>> {
    Json(claims)
}

async fn list_sessions(State(demo): State<Demo>, who: Subject) -> Response {
    match demo.sessions.list(&who.sub).await {
        Ok(list) => Json(serde_json::json!({"current": &*who.sid, "sessions": list})).into_response(),
        Err(_) => unavailable(),
    }
}

async fn revoke_session(State(demo): State<Demo>, who: Subject, Path(sid): Path<String>) -> Response {
    match demo.sessions.revoke(&who.sub, &sid).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => json_error(StatusCode::NOT_FOUND, "not_found", "no such active session"),
        Err(_) => unavailable(),
    }
}
