#![no_main]
//! See `fuzz/checks.rs`: the property this target checks, shared with the corpus replay
//! in `tests/fuzz_corpus.rs`.

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::verify(data));
