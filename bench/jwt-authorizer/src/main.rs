//! `GET /me` behind jwt-authorizer, for bench/load.sh. `MODE`: `authorizer` (the layer;
//! `PUBLIC_KEY` names the SPKI PEM file of the key that signed the benchmark's token) or
//! `bare` (the same app without it: this axum version's baseline). `BIND` defaults to
//! 127.0.0.1:0. Prints `listening on <addr>`.

use std::error::Error;
use std::io::Write;

use axum::routing::get;
use axum::Router;
use jwt_authorizer::{Authorizer, IntoLayer, JwtAuthorizer, JwtClaims, Validation};
use serde::Deserialize;

/// What the handler reads from the token, as `tower-jwt-auth`'s layer hands it the subject.
#[derive(Clone, Debug, Deserialize)]
struct User {
    sub: String,
}

async fn me(JwtClaims(user): JwtClaims<User>) -> &'static str {
    // Read the claim, as a handler would.
    if user.sub.is_empty() {
        "anonymous"
    } else {
        "ok"
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mode = std::env::var("MODE").unwrap_or_else(|_| "authorizer".into());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:0".into());
    let app = match mode.as_str() {
        "bare" => Router::new().route("/me", get(|| async { "ok" })),
        "authorizer" => {
            let key = std::env::var("PUBLIC_KEY").map_err(|_| "PUBLIC_KEY names the SPKI PEM file")?;
            let pem = std::fs::read_to_string(&key)?;
            // Its defaults: the key's RSA algorithms, exp checked.
            let auth: Authorizer<User> = JwtAuthorizer::from_rsa_pem_text(&pem)
                .validation(Validation::new())
                .build()
                .await?;
            Router::new().route("/me", get(me)).layer(auth.into_layer())
        }
        other => return Err(format!("unknown MODE {other}").into()),
    };
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    axum::serve(listener, app).await?;
    Ok(())
}
