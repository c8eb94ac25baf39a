//! RS256 key material: signing key, verification keys (several at once for rotation), JWKS.
//!
//! Keys are parsed once, here. The `kid` of every key is its RFC 7638 thumbprint, so it is
//! stable across restarts and identical on every instance that shares the key.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, ParsedPublicKey};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::error::KeyError;

/// Environment variable holding the PEM private key (PKCS#8 or PKCS#1).
pub const PRIVATE_KEY_ENV: &str = "JWT_PRIVATE_KEY";
/// Environment variable holding the PEM public key (SPKI or PKCS#1).
pub const PUBLIC_KEY_ENV: &str = "JWT_PUBLIC_KEY";

/// Smallest accepted RSA modulus, in bytes (2048 bits).
const MIN_MODULUS_LEN: usize = 256;

/// A public key that verifies RS256 signatures, with its `kid` and JWK form.
#[derive(Clone)]
pub struct VerifyingKey {
    inner: Arc<VerifyingInner>,
}

struct VerifyingInner {
    key: ParsedPublicKey,
    kid: String,
    modulus_len: usize,
    jwk: Jwk,
    /// DER `RSAPublicKey`, for re-encoding.
    pkcs1: Vec<u8>,
}

impl VerifyingKey {
    /// Parses a PEM public key (`PUBLIC KEY` SPKI or `RSA PUBLIC KEY` PKCS#1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let decoding = DecodingKey::from_rsa_pem(pem)
            .map_err(|e| KeyError(format!("invalid RSA public key PEM: {e}")))?;
        let der = decoding
            .try_get_as_bytes()
            .map_err(|e| KeyError(format!("invalid RSA public key: {e}")))?;
        Self::from_pkcs1_der(der)
    }

    /// Reads and parses [`PUBLIC_KEY_ENV`]; `Ok(None)` when it is unset.
    pub fn from_env() -> Result<Option<Self>, KeyError> {
        env_pem(PUBLIC_KEY_ENV)?
            .map(|pem| Self::from_pem(pem.as_bytes()))
            .transpose()
    }

    /// Parses a DER `RSAPublicKey` (PKCS#1) or `SubjectPublicKeyInfo`.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let public = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|e| KeyError(format!("invalid RSA public key: {e}")))?;
        Self::from_pkcs1_der(public.as_ref())
    }

    fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
            .map_err(|e| KeyError(format!("unusable RSA public key: {e}")))?;
        let mut jwk = Jwk::from_decoding_key(&DecodingKey::from_rsa_der(der), Some(Algorithm::RS256))
            .map_err(|e| KeyError(format!("cannot express key as JWK: {e}")))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| KeyError(format!("cannot compute thumbprint: {e}")))?;
        let modulus_len = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => modulus_len(&rsa.n),
            _ => return Err(KeyError("not an RSA key".into())),
        };
        if modulus_len < MIN_MODULUS_LEN {
            return Err(KeyError("RSA keys must be at least 2048 bits".into()));
        }
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
        Ok(VerifyingKey {
            inner: Arc::new(VerifyingInner {
                key,
                kid,
                modulus_len,
                jwk,
                pkcs1: der.to_vec(),
            }),
        })
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint, base64url.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// This key as a JWK (`kty`, `n`, `e`, `kid`, `use: sig`, `alg: RS256`).
    pub fn jwk(&self) -> &Jwk {
        &self.inner.jwk
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the format
    /// [`VerifyingKey::from_pem`] and `JWT_PUBLIC_KEY` accept.
    pub fn to_spki_pem(&self) -> Result<String, KeyError> {
        let public = aws_lc_rs::rsa::PublicKey::from_der(&self.inner.pkcs1)
            .map_err(|e| KeyError(format!("invalid RSA public key: {e}")))?;
        let spki = public
            .as_der()
            .map_err(|_| KeyError("cannot serialize key".into()))?;
        Ok(pem("PUBLIC KEY", spki.as_ref()))
    }

    /// Signature length in bytes (the modulus length).
    pub(crate) fn signature_len(&self) -> usize {
        self.inner.modulus_len
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.inner.key.verify_sig(message, signature).is_ok()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

/// Length of the modulus in octets, ignoring any leading zero octet of its encoding.
fn modulus_len(n_b64: &str) -> usize {
    crate::b64::decode(n_b64).map_or(0, |v| v.iter().skip_while(|b| **b == 0).count())
}

/// An RS256 private key, parsed once, with the pre-encoded JWS header it signs under.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<SigningInner>,
}

struct SigningInner {
    pair: KeyPair,
    verifying: VerifyingKey,
    /// `base64url({"alg":"RS256","typ":"at+jwt","kid":…})`, computed once.
    header_b64: String,
    rng: SystemRandom,
}

impl SigningKey {
    /// Parses a PEM private key (`PRIVATE KEY` PKCS#8 or `RSA PRIVATE KEY` PKCS#1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let encoding = EncodingKey::from_rsa_pem(pem)
            .map_err(|e| KeyError(format!("invalid RSA private key PEM: {e}")))?;
        let pair = KeyPair::from_der(encoding.as_bytes())
            .map_err(|e| KeyError(format!("invalid RSA private key: {e}")))?;
        Self::from_pair(pair)
    }

    /// Parses a private key and checks that `public_pem` is its public half: a mismatched pair
    /// would mint tokens that no verifier accepts.
    pub fn from_pem_pair(private_pem: &[u8], public_pem: &[u8]) -> Result<Self, KeyError> {
        let key = Self::from_pem(private_pem)?;
        let public = VerifyingKey::from_pem(public_pem)?;
        if public.kid() != key.kid() {
            return Err(KeyError(format!(
                "{PUBLIC_KEY_ENV} is not the public half of {PRIVATE_KEY_ENV}"
            )));
        }
        Ok(key)
    }

    /// Reads [`PRIVATE_KEY_ENV`] (and, when set, checks [`PUBLIC_KEY_ENV`] against it).
    /// `Ok(None)` when no private key is configured.
    pub fn from_env() -> Result<Option<Self>, KeyError> {
        let Some(private) = env_pem(PRIVATE_KEY_ENV)? else {
            return Ok(None);
        };
        match env_pem(PUBLIC_KEY_ENV)? {
            Some(public) => Self::from_pem_pair(private.as_bytes(), public.as_bytes()).map(Some),
            None => Self::from_pem(private.as_bytes()).map(Some),
        }
    }

    /// Generates a fresh RSA-2048 key. Tokens signed with it die with the process:
    /// for development and tests only.
    pub fn generate() -> Result<Self, KeyError> {
        let pair =
            KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError("RSA key generation failed".into()))?;
        Self::from_pair(pair)
    }

    fn from_pair(pair: KeyPair) -> Result<Self, KeyError> {
        use aws_lc_rs::signature::KeyPair as _;
        if pair.public_modulus_len() < MIN_MODULUS_LEN {
            return Err(KeyError("RSA keys must be at least 2048 bits".into()));
        }
        let verifying = VerifyingKey::from_pkcs1_der(pair.public_key().as_ref())?;
        let header = serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": verifying.kid()});
        let header_b64 = crate::b64::encode(header.to_string().as_bytes());
        Ok(SigningKey {
            inner: Arc::new(SigningInner {
                pair,
                verifying,
                header_b64,
                rng: SystemRandom::new(),
            }),
        })
    }

    /// The key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        self.inner.verifying.kid()
    }

    /// The public half, for a [`KeySet`].
    pub fn verifying_key(&self) -> VerifyingKey {
        self.inner.verifying.clone()
    }

    /// The private key as PKCS#8 DER, e.g. to hand an ephemeral key to another process.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        self.inner
            .pair
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| KeyError("cannot serialize key".into()))
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the format
    /// [`SigningKey::from_pem`] and `JWT_PRIVATE_KEY` accept.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        Ok(pem("PRIVATE KEY", &self.to_pkcs8_der()?))
    }

    /// Signs `payload` (JSON) under this key's header; returns the compact JWS.
    pub(crate) fn sign_payload(&self, payload: &[u8]) -> Result<String, KeyError> {
        self.sign_with_header(&self.inner.header_b64, payload)
    }

    /// Signs with an arbitrary pre-encoded header (tests forge tokens with it).
    pub(crate) fn sign_with_header(&self, header_b64: &str, payload: &[u8]) -> Result<String, KeyError> {
        let mut out = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 350);
        out.push_str(header_b64);
        out.push('.');
        crate::b64::encode_into(payload, &mut out);
        let mut sig = vec![0; self.inner.pair.public_modulus_len()];
        self.inner
            .pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.inner.rng,
                out.as_bytes(),
                &mut sig,
            )
            .map_err(|_| KeyError("signing failed".into()))?;
        out.push('.');
        crate::b64::encode_into(&sig, &mut out);
        Ok(out)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

/// The keys a verifier accepts. Several at once let you rotate: publish the new key, start
/// signing with it, drop the old one after the access lifetime.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// A set with one key.
    pub fn new(key: VerifyingKey) -> Self {
        KeySet { keys: vec![key] }
    }

    /// Adds a key (a key already present is not added twice).
    pub fn with(mut self, key: VerifyingKey) -> Self {
        if self.find(key.kid()).is_none() {
            self.keys.push(key);
        }
        self
    }

    /// Looks a key up by `kid`. Only keys configured here are ever used.
    pub fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        // A handful of keys at most: a linear scan beats hashing.
        self.keys.iter().find(|k| k.kid() == kid)
    }

    /// The keys, in the order added.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The public keys as a JWKS document (serve it at `/.well-known/jwks.json`).
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.jwk().clone()).collect(),
        }
    }
}

impl From<VerifyingKey> for KeySet {
    fn from(key: VerifyingKey) -> Self {
        KeySet::new(key)
    }
}

/// PEM armour: base64 in 64-column lines between BEGIN/END lines.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Reads a PEM from the environment. Accepts literal `\n` escapes, since many deployment
/// tools cannot put real newlines in a variable.
fn env_pem(name: &str) -> Result<Option<String>, KeyError> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.replace("\\n", "\n"))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(KeyError(format!("{name} is not UTF-8"))),
    }
}
