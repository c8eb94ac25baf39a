//! Access-token verification: every rule of the reference design, in order, before any
//! store access. Pure CPU; keys were parsed at construction.

use std::time::Duration;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;

use crate::claims::Claims;
use crate::error::InvalidToken;
use crate::keys::KeySet;

/// Default cap on a bearer token's length, checked before decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default clock-skew allowance.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default access-token lifetime (also the largest `exp − iat` accepted).
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);

/// Largest decoded JOSE header accepted (ours is about 100 bytes).
const MAX_HEADER_LEN: usize = 1024;
/// Largest signature accepted: RSA-8192, the largest key aws-lc verifies.
const MAX_SIGNATURE_LEN: usize = 1024;
/// Deepest nesting of arrays and objects accepted in a header or payload. serde_json skips
/// unknown members without its own recursion limit, so the bound is ours.
const MAX_JSON_DEPTH: usize = 32;

/// What a token must satisfy. Build it once; it is shared by every request.
#[derive(Clone, Debug)]
pub struct Validation {
    pub(crate) keys: KeySet,
    pub(crate) leeway: u64,
    pub(crate) max_token_len: usize,
    pub(crate) max_lifetime: u64,
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Option<String>,
}

impl Validation {
    /// Accept RS256 tokens signed by any key of `keys`, with the defaults: 60 s leeway,
    /// 8 KiB size cap, 15 min maximum lifetime, no `iss`/`aud` requirement.
    pub fn new(keys: impl Into<KeySet>) -> Self {
        Validation {
            keys: keys.into(),
            leeway: DEFAULT_LEEWAY.as_secs(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            max_lifetime: DEFAULT_ACCESS_TTL.as_secs(),
            issuer: None,
            audience: None,
        }
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = crate::clock::setting(leeway).as_secs();
        self
    }

    /// Largest token (in bytes) that is decoded at all.
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// Largest accepted `exp − iat`: set it to the issuer's access-token lifetime.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = crate::clock::setting(lifetime).as_secs();
        self
    }

    /// Require `iss` to equal `issuer`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Require `aud` to contain `audience`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The accepted keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The configured leeway, in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway
    }

    /// The configured maximum lifetime, in seconds.
    pub fn max_lifetime_secs(&self) -> u64 {
        self.max_lifetime
    }

    /// How long after its `iat` a token may still be accepted: the maximum lifetime plus
    /// the leeway. Revocations must last at least this long.
    pub fn acceptance(&self) -> Duration {
        Duration::from_secs(self.max_lifetime.saturating_add(self.leeway))
    }

    /// Verifies `token` at time `now` (seconds since the Unix epoch).
    pub fn verify<C: DeserializeOwned>(&self, token: &str, now: u64) -> Result<Claims<C>, InvalidToken> {
        self.verify_late(token, now, 0)
    }

    /// [`Validation::verify`], accepting a token expired up to `late` seconds longer: for
    /// revoking a token some other verifier still accepts.
    pub(crate) fn verify_late<C: DeserializeOwned>(
        &self,
        token: &str,
        now: u64,
        late: u64,
    ) -> Result<Claims<C>, InvalidToken> {
        // Rule 1: size before any decoding.
        if token.len() > self.max_token_len {
            return Err(InvalidToken::TooLarge);
        }
        // Rule 2: exactly three non-empty segments.
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidToken::Malformed);
        };
        if h64.is_empty() || p64.is_empty() || s64.is_empty() {
            return Err(InvalidToken::Malformed);
        }
        // Header and signature decode into stack buffers: no allocation beyond the claims.
        let mut header_buf = [0u8; MAX_HEADER_LEN];
        let header_json = crate::b64::decode_slice(h64, &mut header_buf).ok_or(InvalidToken::Malformed)?;
        let header: Header<'_> = json_object(header_json).ok_or(InvalidToken::Malformed)?;

        // Rule 3: the algorithm is ours, never the token's; no critical extensions; the key
        // comes from the configured set only (jku/x5u/jwk/x5c are never read).
        if header.alg != Some("RS256") {
            return Err(InvalidToken::Algorithm);
        }
        if header.crit {
            return Err(InvalidToken::CriticalHeader);
        }
        let key = header
            .kid
            .and_then(|kid| self.keys.find(kid))
            .ok_or(InvalidToken::UnknownKey)?;

        // Rule 4: signature length, then the signature.
        let mut sig_buf = [0u8; MAX_SIGNATURE_LEN];
        let sig = crate::b64::decode_slice(s64, &mut sig_buf).ok_or(InvalidToken::Signature)?;
        if sig.len() != key.signature_len() {
            return Err(InvalidToken::Signature);
        }
        let signing_input = &token[..h64.len() + 1 + p64.len()];
        if !key.verify(signing_input.as_bytes(), sig) {
            return Err(InvalidToken::Signature);
        }

        // Rule 5: only access tokens.
        match header.typ {
            Some(t) if t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt") => {}
            _ => return Err(InvalidToken::Type),
        }

        // Rule 6: claims.
        let payload = crate::b64::decode(p64).ok_or(InvalidToken::Malformed)?;
        let claims: Claims<C> = json_object(&payload).ok_or(InvalidToken::Claims)?;
        if claims.sub.is_empty() || claims.jti.is_empty() || claims.sid.is_empty() {
            return Err(InvalidToken::Claims);
        }
        self.check_times(claims.iat, claims.exp, claims.nbf, now, late)?;
        if let Some(expected) = &self.issuer {
            if claims.iss.as_deref() != Some(expected.as_str()) {
                return Err(InvalidToken::Issuer);
            }
        }
        // RFC 7519 §4.1.3: a token whose `aud` does not name this service is refused; with no
        // audience configured, no `aud` names it.
        let audience_ok = match (&self.audience, &claims.aud) {
            (Some(expected), Some(aud)) => aud.contains(expected),
            (Some(_), None) => false,
            (None, aud) => aud.is_none(),
        };
        if !audience_ok {
            return Err(InvalidToken::Audience);
        }
        Ok(claims)
    }

    fn check_times(
        &self,
        iat: u64,
        exp: u64,
        nbf: Option<u64>,
        now: u64,
        late: u64,
    ) -> Result<(), InvalidToken> {
        if exp < iat {
            return Err(InvalidToken::Claims);
        }
        if now >= exp.saturating_add(self.leeway).saturating_add(late) {
            return Err(InvalidToken::Expired);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(InvalidToken::NotYetValid);
        }
        if iat > now.saturating_add(self.leeway) {
            return Err(InvalidToken::IssuedInFuture);
        }
        if exp - iat > self.max_lifetime {
            return Err(InvalidToken::LifetimeTooLong);
        }
        Ok(())
    }
}

/// The JOSE header fields we read. Unknown parameters (`jku`, `x5u`, `jwk`, `x5c`, …) are
/// ignored, never followed. Duplicate parameters are an error (serde rejects them), which
/// closes parser-differential tricks.
/// Borrowed, so reading a header allocates nothing; a value with JSON escapes cannot be
/// borrowed and makes the token malformed (no legitimate `alg`/`typ`/`kid` needs one).
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, default)]
    alg: Option<&'a str>,
    #[serde(borrow, default)]
    typ: Option<&'a str>,
    #[serde(borrow, default)]
    kid: Option<&'a str>,
    /// Whether `crit` is present at all, whatever its value (`null` included).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// Parses JSON that must be an object (serde would also read a struct from an array), UTF-8
/// throughout (RFC 8259 §8.1; serde_json does not check the strings it skips) and nested at
/// most [`MAX_JSON_DEPTH`] deep.
fn json_object<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.trim_start().starts_with('{') || nesting_depth(text.as_bytes()) > MAX_JSON_DEPTH {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// How deeply arrays and objects nest in `json`, outside strings. Only a bound: malformed
/// input is left for the parser to refuse.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests;
