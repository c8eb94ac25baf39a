//! Every input the fuzzers kept (`fuzz/corpus/<target>/`), replayed on stable as an ordinary
//! test with the same checks (`fuzz/checks.rs`), so `cargo test` guards all of them.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/<target>`; how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "{target}: empty corpus");
    inputs
}

#[test]
fn verify_corpus() {
    replay("verify", checks::verify);
}

#[test]
fn verify_mutated_corpus() {
    replay("verify_mutated", checks::verify_mutated);
}

#[test]
fn bearer_corpus() {
    replay("bearer", checks::bearer);
}

#[test]
fn refresh_token_corpus() {
    replay("refresh_token", checks::refresh_token);
}

#[test]
fn endpoints_corpus() {
    replay("endpoints", checks::endpoints);
}
