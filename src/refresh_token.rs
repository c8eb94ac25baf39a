//! The opaque refresh-token format: `rt1.<key id>.<hex(sub)>.<sid>.<generation>.<mac>`.
//!
//! `mac = HMAC-SHA256(secret[key id], everything before it)`, truncated to 128 bits. The MAC
//! is checked in constant time before any store access, so garbage and forgeries cost no
//! store call and can never revoke anyone's session. The store keeps no token material: the
//! current token of a session is re-derived from (sub, sid, generation).

use std::fmt::{self, Write as _};

use aws_lc_rs::hmac;

use crate::error::KeyError;

const PREFIX: &str = "rt1";
/// MAC length in bytes (128 bits).
const MAC_LEN: usize = 16;
/// Longest refresh token accepted; longer input is refused before any work.
pub(crate) const MAX_REFRESH_TOKEN_LEN: usize = 1024;
/// Longest `sub` a refresh token can carry (its hex form must fit the limit above).
pub(crate) const MAX_SUB_LEN: usize = 256;
/// Smallest accepted secret.
pub const MIN_SECRET_LEN: usize = 32;
/// Environment variable the demo reads the secret from.
pub const REFRESH_SECRET_ENV: &str = "REFRESH_TOKEN_SECRET";

/// The HMAC secrets refresh tokens are signed with, by key id. New tokens use the current
/// secret; tokens under a previous secret keep working until their sessions rotate.
#[derive(Clone)]
pub struct RefreshSecrets {
    current: (String, hmac::Key),
    previous: Vec<(String, hmac::Key)>,
}

impl fmt::Debug for RefreshSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.previous.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("RefreshSecrets")
            .field("current", &self.current.0)
            .field("previous", &ids)
            .finish()
    }
}

fn check_secret(id: &str, secret: &[u8]) -> Result<hmac::Key, KeyError> {
    if id.is_empty()
        || id.len() > 16
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(KeyError(
            "refresh secret id must be 1-16 characters of [A-Za-z0-9_-]".into(),
        ));
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(KeyError(format!(
            "refresh token secret must be at least {MIN_SECRET_LEN} bytes"
        )));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, secret))
}

impl RefreshSecrets {
    /// The signing secret `secret` (≥ 32 bytes) under key id `id` (1–16 of `[A-Za-z0-9_-]`).
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        Ok(RefreshSecrets {
            current: (id.to_owned(), check_secret(id, secret)?),
            previous: Vec::new(),
        })
    }

    /// Also accept tokens signed under an older secret.
    pub fn with_previous(mut self, id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        if id == self.current.0 || self.previous.iter().any(|(p, _)| p == id) {
            return Err(KeyError(format!("refresh secret id {id:?} used twice")));
        }
        self.previous.push((id.to_owned(), check_secret(id, secret)?));
        Ok(self)
    }

    /// A random secret: refresh tokens die with the process. Development only.
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).expect("system random number generator failed");
        Self::new("k0", &secret).expect("a generated secret is valid")
    }

    /// Reads [`REFRESH_SECRET_ENV`] (key id `k1`); `Ok(None)` when unset or empty. A value
    /// that is not UTF-8 is an error, never mistaken for "unset".
    pub fn from_env() -> Result<Option<Self>, KeyError> {
        Self::from_var(std::env::var(REFRESH_SECRET_ENV))
    }

    fn from_var(value: Result<String, std::env::VarError>) -> Result<Option<Self>, KeyError> {
        match value {
            Ok(s) if s.is_empty() => Ok(None),
            Ok(s) => Self::new("k1", s.as_bytes()).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(KeyError(format!("{REFRESH_SECRET_ENV} is not UTF-8")))
            }
        }
    }

    fn key(&self, id: &str) -> Option<&hmac::Key> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|(k, _)| k == id)
            .map(|(_, key)| key)
    }

    /// Encodes a token for (sub, sid, generation) under the current secret.
    pub(crate) fn encode(&self, sub: &str, sid: &str, generation: u64) -> String {
        encode_with(&self.current.0, &self.current.1, sub, sid, generation)
    }

    /// Parses and authenticates a token. `None` for anything not minted by us.
    pub(crate) fn decode(&self, token: &str) -> Option<RefreshToken> {
        if token.len() > MAX_REFRESH_TOKEN_LEN {
            return None;
        }
        let (signed, mac) = token.rsplit_once('.')?;
        let mut parts = signed.split('.');
        let (Some(PREFIX), Some(id), Some(sub_hex), Some(sid), Some(generation), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let key = self.key(id)?;
        let mac = crate::b64::decode(mac)?;
        if mac.len() != MAC_LEN {
            return None;
        }
        // Constant-time comparison of the truncated tag.
        let expected = hmac::sign(key, signed.as_bytes());
        if !constant_time_eq(&expected.as_ref()[..MAC_LEN], &mac) {
            return None;
        }
        let sub = decode_hex(sub_hex)?;
        let generation = generation.parse().ok()?;
        Some(RefreshToken {
            sub,
            sid: sid.to_owned(),
            generation,
        })
    }
}

/// `rt1.<id>.<hex(sub)>.<sid>.<generation>.<mac>` under the secret `key` named `id`.
fn encode_with(id: &str, key: &hmac::Key, sub: &str, sid: &str, generation: u64) -> String {
    let mut out = String::with_capacity(64 + sub.len() * 2);
    out.push_str(PREFIX);
    out.push('.');
    out.push_str(id);
    out.push('.');
    for b in sub.as_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out.push('.');
    out.push_str(sid);
    out.push('.');
    out.push_str(&generation.to_string());
    let tag = hmac::sign(key, out.as_bytes());
    out.push('.');
    crate::b64::encode_into(&tag.as_ref()[..MAC_LEN], &mut out);
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

fn decode_hex(s: &str) -> Option<String> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// An authenticated refresh token's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefreshToken {
    pub(crate) sub: String,
    pub(crate) sid: String,
    pub(crate) generation: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> RefreshSecrets {
        RefreshSecrets::new("k1", &[7u8; 32]).unwrap()
    }

    #[test]
    fn round_trips() {
        let s = secrets();
        let t = s.encode("alice@example.com", "SID_abc-123", 42);
        assert!(t.starts_with("rt1.k1.616c696365"), "{t}");
        let d = s.decode(&t).unwrap();
        assert_eq!(
            (d.sub.as_str(), d.sid.as_str(), d.generation),
            ("alice@example.com", "SID_abc-123", 42)
        );
    }

    #[test]
    fn any_change_breaks_the_mac() {
        let s = secrets();
        let t = s.encode("alice", "sid", 3);
        for (i, c) in t.char_indices() {
            let flipped = if c == 'a' { 'b' } else { 'a' };
            let mut forged = t.clone();
            forged.replace_range(i..i + 1, &flipped.to_string());
            assert!(s.decode(&forged).is_none(), "forgery at {i} accepted: {forged}");
        }
        let other = RefreshSecrets::new("k1", &[8u8; 32]).unwrap();
        assert!(other.decode(&t).is_none());
        let bumped = t.replace(".3.", ".4.");
        assert!(s.decode(&bumped).is_none());
    }

    #[test]
    fn garbage_is_refused() {
        let s = secrets();
        for g in [
            "",
            "rt1",
            "rt1.k1.61.sid.0",
            "rt1.k1.61.sid.0.",
            "x.k1.61.sid.0.AAAA",
            &"a".repeat(5000),
        ] {
            assert!(s.decode(g).is_none(), "{g}");
        }
    }

    #[test]
    fn previous_secrets_still_verify() {
        let old = RefreshSecrets::new("k1", &[1u8; 32]).unwrap();
        let t = old.encode("bob", "s", 0);
        let rotated = RefreshSecrets::new("k2", &[2u8; 32])
            .unwrap()
            .with_previous("k1", &[1u8; 32])
            .unwrap();
        assert_eq!(rotated.decode(&t).unwrap().sub, "bob");
        assert!(rotated.encode("bob", "s", 1).starts_with("rt1.k2."));
    }

    #[test]
    fn the_environment_secret_must_be_utf8() {
        use std::env::VarError;
        use std::ffi::OsString;
        #[cfg(unix)]
        let not_utf8 = {
            use std::os::unix::ffi::OsStringExt;
            OsString::from_vec(vec![0xff; 40])
        };
        #[cfg(not(unix))]
        let not_utf8 = OsString::from("x");
        let err = RefreshSecrets::from_var(Err(VarError::NotUnicode(not_utf8))).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert!(RefreshSecrets::from_var(Err(VarError::NotPresent))
            .unwrap()
            .is_none());
        assert!(RefreshSecrets::from_var(Ok(String::new())).unwrap().is_none());
        assert!(RefreshSecrets::from_var(Ok("s".repeat(32))).unwrap().is_some());
        assert!(RefreshSecrets::from_var(Ok("short".into())).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(RefreshSecrets::new("k1", b"too short").is_err());
        assert!(RefreshSecrets::new("bad id!", &[0; 32]).is_err());
    }
}
