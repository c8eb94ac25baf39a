//! What the tests need from the machine: a free loopback port, and the external programs
//! (redis-server, chromium) found on `PATH` or reported missing.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

/// A free port on 127.0.0.1 (bound, read, released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

/// `binary`'s path on `PATH`, if any.
pub(crate) fn on_path(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(binary))
            .find(|p| p.is_file())
    })
}

/// `found`, or `None` after saying loudly that the tests needing `what` skipped. Under
/// `CI=true` a missing program is a failure, not a skip.
pub(crate) fn required<T>(found: Option<T>, what: &str, install: &str) -> Option<T> {
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{what} not found and CI=true: {install}");
        }
        eprintln!("SKIPPED: {what} not found; {install} to run the tests that need it");
    }
    found
}
