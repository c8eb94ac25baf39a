//! Launches a compiled example on a free loopback port and waits until it listens.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running example; killed on drop.
pub struct Example {
    child: Child,
    addr: SocketAddr,
    /// Start-up lines printed before `listening on`.
    lines: Vec<String>,
}

/// The example binary, brought up to date: a filtered `cargo test --test …` does not rebuild
/// examples, and a stale one would test old code. A no-op when `cargo test` just built it.
fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", name, "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --example {name} failed");
        built.push(name.to_owned());
    }
    dir.join("examples").join(name)
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Example {
    /// Starts example `name` with `BIND` on a free loopback port and `env` set.
    pub async fn start(name: &str, env: &[(&str, &str)]) -> Example {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(binary(name));
        for var in [
            "JWT_PRIVATE_KEY",
            "JWT_PUBLIC_KEY",
            "REFRESH_TOKEN_SECRET",
            "REDIS_URL",
            "ACCESS_TTL_SECS",
            "REFRESH_TTL_SECS",
            "REFRESH_GRACE_SECS",
            "JWT_ISSUER",
            "JWT_AUDIENCE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("BIND", addr.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn example {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout).lines();
        let mut lines = Vec::new();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = reader.next_line().await.unwrap() {
                let listening = line.starts_with("listening on");
                lines.push(line);
                if listening {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "example {name} did not start: {lines:?}"
        );
        // Keep draining stdout so the example never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = reader.next_line().await {} });
        Example { child, addr, lines }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value of a `KEY=value` start-up line.
    pub fn printed(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.lines.iter().find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    /// Stops it now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
