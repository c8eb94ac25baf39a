//! Minting access tokens with a pre-parsed key.

use std::time::Duration;

use serde::Serialize;

use crate::claims::NoClaims;
use crate::error::IssueError;
use crate::keys::{KeySet, SigningKey};
use crate::verify::{Validation, DEFAULT_ACCESS_TTL};

/// Mints RS256 access tokens (`typ: at+jwt`, `kid`, `sub`, `iat`, `exp`, `jti`, `sid`,
/// `iss`/`aud` when configured, plus the application's claims).
#[derive(Clone, Debug)]
pub struct Issuer {
    key: SigningKey,
    access_ttl: Duration,
    issuer: Option<String>,
    audience: Option<String>,
}

/// A freshly minted access token.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `iat`, seconds since the Unix epoch.
    pub issued_at: u64,
    /// Its `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
    /// Its lifetime in seconds (the `expires_in` of a token response).
    pub expires_in: u64,
}

#[derive(Serialize)]
struct ClaimsOut<'a, C> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    jti: &'a str,
    sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(flatten)]
    extra: &'a C,
}

/// Registered claim names the application's claims may not redefine.
const REGISTERED: [&str; 8] = ["sub", "iat", "exp", "nbf", "jti", "sid", "iss", "aud"];

impl Issuer {
    /// An issuer signing with `key`, 15-minute tokens, no `iss`/`aud`.
    pub fn new(key: SigningKey) -> Self {
        Issuer {
            key,
            access_ttl: DEFAULT_ACCESS_TTL,
            issuer: None,
            audience: None,
        }
    }

    /// Access-token lifetime (default 15 min).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = crate::clock::setting(ttl);
        self
    }

    /// Sets `iss` on every token (and requires it in [`Issuer::validation`]).
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
    }

    /// Sets `aud` on every token (and requires it in [`Issuer::validation`]).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = Some(aud.into());
        self
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The access-token lifetime.
    pub fn ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Validation rules matching this issuer: its key, its lifetime as the maximum, its
    /// `iss`/`aud` required.
    pub fn validation(&self) -> Validation {
        let mut v = Validation::new(KeySet::new(self.key.verifying_key())).max_lifetime(self.access_ttl);
        if let Some(iss) = &self.issuer {
            v = v.issuer(iss.clone());
        }
        if let Some(aud) = &self.audience {
            v = v.audience(aud.clone());
        }
        v
    }

    /// Mints an access token for `sub` in session `sid`, carrying `extra` claims.
    ///
    /// `extra` must serialize to a JSON object (a struct or map) that does not redefine a
    /// registered claim.
    pub fn issue<C: Serialize>(&self, sub: &str, sid: &str, extra: &C) -> Result<AccessToken, IssueError> {
        self.issue_at(sub, sid, extra, crate::clock::now_secs())
    }

    /// [`Issuer::issue`] with `iat = now` (seconds): sessions pass the time they asked the
    /// store, raised to the user's not-before.
    pub(crate) fn issue_at<C: Serialize>(
        &self,
        sub: &str,
        sid: &str,
        extra: &C,
        now: u64,
    ) -> Result<AccessToken, IssueError> {
        let jti = random_id();
        let ttl = self.access_ttl.as_secs();
        let claims = ClaimsOut {
            sub,
            iat: now,
            exp: now + ttl,
            jti: &jti,
            sid,
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
            extra,
        };
        let payload = serde_json::to_vec(&claims)
            .map_err(|e| IssueError(format!("claims do not serialize to a JSON object: {e}")))?;
        check_no_redefinition(&payload)?;
        let token = self
            .key
            .sign_payload(&payload)
            .map_err(|e| IssueError(e.to_string()))?;
        Ok(AccessToken {
            token,
            jti,
            issued_at: now,
            expires_at: now + ttl,
            expires_in: ttl,
        })
    }

    /// [`Issuer::issue`] without application claims.
    pub fn issue_plain(&self, sub: &str, sid: &str) -> Result<AccessToken, IssueError> {
        self.issue(sub, sid, &NoClaims {})
    }
}

/// A flattened application claim named like a registered one would produce a duplicate key,
/// which verifiers resolve differently; refuse to mint such a token.
fn check_no_redefinition(payload: &[u8]) -> Result<(), IssueError> {
    use serde::de::IgnoredAny;
    // serde rejects a duplicate field, so naming every registered claim finds them all.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        sub: Option<IgnoredAny>,
        iat: Option<IgnoredAny>,
        exp: Option<IgnoredAny>,
        nbf: Option<IgnoredAny>,
        jti: Option<IgnoredAny>,
        sid: Option<IgnoredAny>,
        iss: Option<IgnoredAny>,
        aud: Option<IgnoredAny>,
    }
    if serde_json::from_slice::<Probe>(payload).is_err() {
        return Err(IssueError(format!(
            "application claims may not redefine any of {REGISTERED:?}"
        )));
    }
    Ok(())
}

/// 128 random bits, base64url: token ids and session ids.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // The system RNG failing means the OS cannot provide randomness at all; nothing safe
    // can be minted then.
    aws_lc_rs::rand::fill(&mut bytes).expect("system random number generator failed");
    crate::b64::encode(&bytes)
}
