//! One test per verification rule, with forged tokens.

use std::sync::OnceLock;

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::*;
use crate::b64;
use crate::keys::SigningKey;
use crate::Issuer;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().unwrap())
}

fn other_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().unwrap())
}

fn validation() -> Validation {
    Validation::new(key().verifying_key())
}

const NOW: u64 = 1_800_000_000;

fn header() -> Value {
    json!({"alg": "RS256", "typ": "at+jwt", "kid": key().kid()})
}

fn claims() -> Value {
    json!({"sub": "alice", "iat": NOW, "exp": NOW + 900, "jti": "j1", "sid": "s1"})
}

fn forge_with(signer: &SigningKey, header: &Value, claims: &Value) -> String {
    let h = b64::encode(header.to_string().as_bytes());
    signer
        .sign_with_header(&h, claims.to_string().as_bytes())
        .unwrap()
}

fn forge(header: &Value, claims: &Value) -> String {
    forge_with(key(), header, claims)
}

fn verify(token: &str) -> Result<Claims<NoClaims>, InvalidToken> {
    validation().verify(token, NOW)
}

use crate::claims::NoClaims;

#[test]
fn accepts_a_well_formed_token() {
    let c = verify(&forge(&header(), &claims())).unwrap();
    assert_eq!(
        (c.sub.as_str(), c.jti.as_str(), c.sid.as_str()),
        ("alice", "j1", "s1")
    );
}

#[test]
fn accepts_tokens_from_the_issuer_with_app_claims() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct App {
        role: String,
        email: String,
    }
    let issuer = Issuer::new(key().clone())
        .issuer("https://issuer")
        .audience("api");
    let extra = App {
        role: "admin".into(),
        email: "a@example.com".into(),
    };
    let t = issuer.issue("alice", "sid-1", &extra).unwrap();
    let c: Claims<App> = issuer
        .validation()
        .verify(&t.token, crate::clock::now_secs())
        .unwrap();
    assert_eq!(c.extra, extra);
    assert_eq!(c.iss.as_deref(), Some("https://issuer"));
    assert_eq!(c.jti, t.jti);
    assert!(c.jti.len() >= 22, "jti carries at least 128 bits");
}

#[test]
fn issuer_refuses_app_claims_that_redefine_registered_ones() {
    let issuer = Issuer::new(key().clone());
    let err = issuer.issue("alice", "s", &json!({"sub": "root"})).unwrap_err();
    assert!(err.to_string().contains("redefine"), "{err}");
}

#[test]
fn jti_is_unique() {
    let issuer = Issuer::new(key().clone());
    let a = issuer.issue_plain("alice", "s").unwrap();
    let b = issuer.issue_plain("alice", "s").unwrap();
    assert_ne!(a.jti, b.jti);
}

// Rule 1: size.
#[test]
fn oversized_token_is_refused_before_decoding() {
    let big = "a".repeat(DEFAULT_MAX_TOKEN_LEN + 1);
    assert_eq!(verify(&big), Err(InvalidToken::TooLarge));
    let mut claims = claims();
    claims["pad"] = json!("x".repeat(DEFAULT_MAX_TOKEN_LEN));
    assert_eq!(verify(&forge(&header(), &claims)), Err(InvalidToken::TooLarge));
}

// Rule 2: structure and strict base64url.
#[test]
fn malformed_structure_is_refused() {
    let good = forge(&header(), &claims());
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    for bad in [
        String::new(),
        "abc".into(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.x"),
        format!("{h}..{s}"),
        format!("{h}.{p}."),
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")),
        format!(" {h}.{p}.{s}"),
    ] {
        let r = verify(&bad);
        assert!(
            matches!(r, Err(InvalidToken::Malformed | InvalidToken::Signature)),
            "{bad:?} gave {r:?}"
        );
        assert!(r.is_err());
    }
}

#[test]
fn header_must_be_a_json_object_without_duplicates() {
    let array = b64::encode(br#"["RS256","at+jwt"]"#);
    assert_eq!(
        verify(
            &key()
                .sign_with_header(&array, claims().to_string().as_bytes())
                .unwrap()
        ),
        Err(InvalidToken::Malformed)
    );
    let dup = format!(
        r#"{{"alg":"none","alg":"RS256","typ":"at+jwt","kid":"{}"}}"#,
        key().kid()
    );
    let dup = b64::encode(dup.as_bytes());
    assert_eq!(
        verify(
            &key()
                .sign_with_header(&dup, claims().to_string().as_bytes())
                .unwrap()
        ),
        Err(InvalidToken::Malformed)
    );
}

#[test]
fn payload_must_be_a_json_object() {
    let h = b64::encode(header().to_string().as_bytes());
    let t = key().sign_with_header(&h, b"[1,2,3]").unwrap();
    assert_eq!(verify(&t), Err(InvalidToken::Claims));
    let t = key().sign_with_header(&h, b"not json").unwrap();
    assert_eq!(verify(&t), Err(InvalidToken::Claims));
}

// Rule 3: algorithm pinned, crit refused, keys from the set only.
#[test]
fn alg_none_is_refused() {
    let h = b64::encode(
        json!({"alg": "none", "typ": "at+jwt", "kid": key().kid()})
            .to_string()
            .as_bytes(),
    );
    let p = b64::encode(claims().to_string().as_bytes());
    assert_eq!(verify(&format!("{h}.{p}.")), Err(InvalidToken::Malformed));
    assert_eq!(verify(&format!("{h}.{p}.AAAA")), Err(InvalidToken::Algorithm));
    for none in ["None", "NONE", "nOnE"] {
        let h = b64::encode(json!({"alg": none, "typ": "at+jwt"}).to_string().as_bytes());
        assert_eq!(verify(&format!("{h}.{p}.AAAA")), Err(InvalidToken::Algorithm));
    }
}

#[test]
fn hs256_keyed_with_the_public_key_is_refused() {
    // The classic algorithm-confusion attack: HMAC with the RSA public key as the secret.
    let h = b64::encode(
        json!({"alg": "HS256", "typ": "at+jwt", "kid": key().kid()})
            .to_string()
            .as_bytes(),
    );
    let p = b64::encode(claims().to_string().as_bytes());
    let signing_input = format!("{h}.{p}");
    let public_jwk = serde_json::to_vec(key().verifying_key().jwk()).unwrap();
    let der = key().to_pkcs8_der().unwrap();
    for secret in [public_jwk.as_slice(), der.as_slice()] {
        let mac = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            signing_input.as_bytes(),
        );
        let token = format!("{signing_input}.{}", b64::encode(mac.as_ref()));
        assert_eq!(verify(&token), Err(InvalidToken::Algorithm));
    }
}

#[test]
fn other_algorithms_are_refused() {
    for alg in ["RS384", "RS512", "PS256", "ES256", "HS512", "EdDSA", "rs256"] {
        let mut h = header();
        h["alg"] = json!(alg);
        assert_eq!(
            verify(&forge(&h, &claims())),
            Err(InvalidToken::Algorithm),
            "{alg}"
        );
    }
    let mut h = header();
    h.as_object_mut().unwrap().remove("alg");
    assert_eq!(verify(&forge(&h, &claims())), Err(InvalidToken::Algorithm));
}

#[test]
fn crit_is_refused() {
    let mut h = header();
    h["crit"] = json!(["exp"]);
    assert_eq!(verify(&forge(&h, &claims())), Err(InvalidToken::CriticalHeader));
    h["crit"] = json!([]);
    assert_eq!(verify(&forge(&h, &claims())), Err(InvalidToken::CriticalHeader));
    h["crit"] = json!(null);
    assert_eq!(verify(&forge(&h, &claims())), Err(InvalidToken::CriticalHeader));
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let mut h = header();
    h["kid"] = json!("not-a-configured-key");
    assert_eq!(verify(&forge(&h, &claims())), Err(InvalidToken::UnknownKey));
    h.as_object_mut().unwrap().remove("kid");
    assert_eq!(verify(&forge(&h, &claims())), Err(InvalidToken::UnknownKey));
}

#[test]
fn embedded_keys_and_urls_are_never_followed() {
    // The attacker signs with their own key and points at it in every way JOSE allows.
    let attacker = other_key();
    let mut h = json!({"alg": "RS256", "typ": "at+jwt", "kid": attacker.kid()});
    h["jwk"] = serde_json::to_value(attacker.verifying_key().jwk()).unwrap();
    h["jku"] = json!("http://127.0.0.1:1/jwks.json");
    h["x5u"] = json!("http://127.0.0.1:1/cert.pem");
    h["x5c"] = json!(["MIIB"]);
    assert_eq!(
        verify(&forge_with(attacker, &h, &claims())),
        Err(InvalidToken::UnknownKey)
    );
    // Same, claiming our kid.
    h["kid"] = json!(key().kid());
    assert_eq!(
        verify(&forge_with(attacker, &h, &claims())),
        Err(InvalidToken::Signature)
    );
}

// Rule 4: signature.
#[test]
fn tampered_payload_is_refused() {
    let good = forge(&header(), &claims());
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut c = claims();
    c["sub"] = json!("admin");
    parts[1] = b64::encode(c.to_string().as_bytes());
    assert_eq!(verify(&parts.join(".")), Err(InvalidToken::Signature));
}

#[test]
fn signature_of_wrong_length_is_refused() {
    let good = forge(&header(), &claims());
    let (input, sig) = good.rsplit_once('.').unwrap();
    let mut raw = b64::decode(sig).unwrap();
    raw.pop();
    assert_eq!(
        verify(&format!("{input}.{}", b64::encode(&raw))),
        Err(InvalidToken::Signature)
    );
    raw.extend_from_slice(&[0, 0]);
    assert_eq!(
        verify(&format!("{input}.{}", b64::encode(&raw))),
        Err(InvalidToken::Signature)
    );
}

#[test]
fn rotated_keys_are_all_accepted() {
    let keys = KeySet::new(key().verifying_key()).with(other_key().verifying_key());
    let v = Validation::new(keys.clone());
    let mut h = header();
    h["kid"] = json!(other_key().kid());
    assert!(v
        .verify::<NoClaims>(&forge_with(other_key(), &h, &claims()), NOW)
        .is_ok());
    assert!(v.verify::<NoClaims>(&forge(&header(), &claims()), NOW).is_ok());
    assert_eq!(keys.jwks().keys.len(), 2);
}

// Rule 5: typ.
#[test]
fn typ_must_be_at_jwt() {
    for (typ, ok) in [
        (json!("at+jwt"), true),
        (json!("AT+JWT"), true),
        (json!("application/at+jwt"), true),
        (json!("JWT"), false),
        (json!("rt+jwt"), false),
        (json!(""), false),
        (json!(1), false),
    ] {
        let mut h = header();
        h["typ"] = typ.clone();
        let r = verify(&forge(&h, &claims()));
        if ok {
            assert!(r.is_ok(), "{typ}: {r:?}");
        } else {
            assert!(
                matches!(r, Err(InvalidToken::Type | InvalidToken::Malformed)),
                "{typ}: {r:?}"
            );
        }
    }
    let mut h = header();
    h.as_object_mut().unwrap().remove("typ");
    assert_eq!(verify(&forge(&h, &claims())), Err(InvalidToken::Type));
}

// Rule 6: claims and times.
fn with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Result<Claims<NoClaims>, InvalidToken> {
    let mut c = claims();
    f(c.as_object_mut().unwrap());
    verify(&forge(&header(), &c))
}

#[test]
fn expiry_is_required_and_enforced_with_leeway() {
    assert_eq!(with(|c| drop(c.remove("exp"))), Err(InvalidToken::Claims));
    assert_eq!(
        with(|c| drop(c.insert("exp".into(), json!(NOW - 61)))),
        Err(InvalidToken::Claims)
    );
    let v = validation();
    let t = forge(
        &header(),
        &json!({"sub": "a", "iat": NOW - 900, "exp": NOW - 61, "jti": "j", "sid": "s"}),
    );
    assert_eq!(v.verify::<NoClaims>(&t, NOW), Err(InvalidToken::Expired));
    let t = forge(
        &header(),
        &json!({"sub": "a", "iat": NOW - 900, "exp": NOW - 59, "jti": "j", "sid": "s"}),
    );
    assert!(v.verify::<NoClaims>(&t, NOW).is_ok(), "within leeway");
    assert_eq!(
        v.clone()
            .leeway(std::time::Duration::ZERO)
            .verify::<NoClaims>(&t, NOW),
        Err(InvalidToken::Expired)
    );
}

#[test]
fn future_nbf_and_iat_are_refused() {
    assert_eq!(
        with(|c| drop(c.insert("nbf".into(), json!(NOW + 61)))),
        Err(InvalidToken::NotYetValid)
    );
    assert!(with(|c| drop(c.insert("nbf".into(), json!(NOW + 59)))).is_ok());
    let t = forge(
        &header(),
        &json!({"sub": "a", "iat": NOW + 120, "exp": NOW + 500, "jti": "j", "sid": "s"}),
    );
    assert_eq!(verify(&t), Err(InvalidToken::IssuedInFuture));
}

#[test]
fn lifetime_is_bounded() {
    assert_eq!(
        with(|c| drop(c.insert("exp".into(), json!(NOW + 901)))),
        Err(InvalidToken::LifetimeTooLong)
    );
    assert!(with(|c| drop(c.insert("exp".into(), json!(NOW + 900)))).is_ok());
}

#[test]
fn numeric_claims_must_be_numbers() {
    assert_eq!(
        with(|c| drop(c.insert("exp".into(), json!("1800000900")))),
        Err(InvalidToken::Claims)
    );
    assert_eq!(
        with(|c| drop(c.insert("iat".into(), json!(null)))),
        Err(InvalidToken::Claims)
    );
    assert_eq!(
        with(|c| drop(c.insert("exp".into(), json!(-1)))),
        Err(InvalidToken::Claims)
    );
    assert_eq!(
        with(|c| drop(c.insert("nbf".into(), json!("soon")))),
        Err(InvalidToken::Claims)
    );
}

#[test]
fn sub_jti_and_sid_are_required_strings() {
    for claim in ["sub", "jti", "sid"] {
        assert_eq!(
            with(|c| drop(c.remove(claim))),
            Err(InvalidToken::Claims),
            "missing {claim}"
        );
        assert_eq!(
            with(|c| drop(c.insert(claim.into(), json!("")))),
            Err(InvalidToken::Claims),
            "empty {claim}"
        );
        assert_eq!(
            with(|c| drop(c.insert(claim.into(), json!(7)))),
            Err(InvalidToken::Claims),
            "number {claim}"
        );
    }
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let v = validation().issuer("https://issuer").audience("api");
    let check = |c: Value| v.verify::<NoClaims>(&forge(&header(), &c), NOW);
    let mut c = claims();
    assert_eq!(check(c.clone()), Err(InvalidToken::Issuer));
    c["iss"] = json!("https://evil");
    assert_eq!(check(c.clone()), Err(InvalidToken::Issuer));
    c["iss"] = json!("https://issuer");
    assert_eq!(check(c.clone()), Err(InvalidToken::Audience));
    c["aud"] = json!("other");
    assert_eq!(check(c.clone()), Err(InvalidToken::Audience));
    c["aud"] = json!(["other", "api"]);
    assert!(check(c.clone()).is_ok());
    c["aud"] = json!("api");
    assert!(check(c).is_ok());
}

#[test]
fn pem_round_trip_keeps_the_kid() {
    let pem = key().to_pkcs8_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(SigningKey::from_pem(pem.as_bytes()).unwrap().kid(), key().kid());
    assert!(SigningKey::from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
    let public = key().verifying_key().to_spki_pem().unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(
        crate::VerifyingKey::from_pem(public.as_bytes()).unwrap().kid(),
        key().kid()
    );
    assert!(SigningKey::from_pem_pair(pem.as_bytes(), public.as_bytes()).is_ok());
    let other = other_key().verifying_key().to_spki_pem().unwrap();
    assert!(
        SigningKey::from_pem_pair(pem.as_bytes(), other.as_bytes()).is_err(),
        "mismatched pair"
    );
}

#[test]
fn iat_is_required_and_exp_may_not_precede_it() {
    assert_eq!(with(|c| drop(c.remove("iat"))), Err(InvalidToken::Claims));
    let backwards = json!({"sub": "a", "iat": NOW, "exp": NOW - 1, "jti": "j", "sid": "s"});
    assert_eq!(verify(&forge(&header(), &backwards)), Err(InvalidToken::Claims));
}

#[test]
fn iss_is_ignored_when_not_configured() {
    let c = json!({"sub": "a", "iat": NOW, "exp": NOW + 900, "jti": "j", "sid": "s",
                   "iss": "https://anyone"});
    assert!(verify(&forge(&header(), &c)).is_ok());
}

#[test]
fn a_token_naming_an_audience_is_refused_when_none_is_configured() {
    // RFC 7519 §4.1.3, RFC 9068 §4: a token whose `aud` does not name this service is
    // rejected; with no audience configured, no `aud` names it.
    for aud in [json!("api"), json!(["x", "y"]), json!([])] {
        let c = json!({"sub": "a", "iat": NOW, "exp": NOW + 900, "jti": "j", "sid": "s",
                       "aud": aud});
        assert_eq!(
            verify(&forge(&header(), &c)),
            Err(InvalidToken::Audience),
            "{aud}"
        );
    }
}

/// A token signed over raw header bytes (which need not be valid JSON or UTF-8).
fn with_raw_header(raw: &[u8]) -> String {
    key()
        .sign_with_header(&b64::encode(raw), claims().to_string().as_bytes())
        .unwrap()
}

#[test]
fn headers_must_be_utf8_json_of_bounded_depth() {
    let kid = key().kid();
    let mut invalid_utf8 = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{kid}","x":""#).into_bytes();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, b'"', b'}']);
    assert_eq!(
        verify(&with_raw_header(&invalid_utf8)),
        Err(InvalidToken::Malformed)
    );
    let deep = format!(
        r#"{{"alg":"RS256","typ":"at+jwt","kid":"{kid}","x":{}{}}}"#,
        "[".repeat(129),
        "]".repeat(129)
    );
    assert_eq!(
        verify(&with_raw_header(deep.as_bytes())),
        Err(InvalidToken::Malformed)
    );
    // Brackets inside strings are not nesting; a little real nesting is fine.
    let fine = format!(
        r#"{{"alg":"RS256","typ":"at+jwt","kid":"{kid}","x":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[","y":[{{"z":[1]}}]}}"#
    );
    assert!(verify(&with_raw_header(fine.as_bytes())).is_ok());
}

#[test]
fn payloads_must_be_utf8_json_of_bounded_depth() {
    let h = b64::encode(header().to_string().as_bytes());
    let mut raw = br#"{"sub":"a","iat":1800000000,"exp":1800000900,"jti":"j","sid":"s","x":""#.to_vec();
    raw.extend_from_slice(&[0xc3, 0x28, b'"', b'}']);
    let t = key().sign_with_header(&h, &raw).unwrap();
    assert_eq!(verify(&t), Err(InvalidToken::Claims));
    let deep = format!(
        r#"{{"sub":"a","iat":1800000000,"exp":1800000900,"jti":"j","sid":"s","x":{}{}}}"#,
        "[".repeat(129),
        "]".repeat(129)
    );
    let t = key().sign_with_header(&h, deep.as_bytes()).unwrap();
    assert_eq!(verify(&t), Err(InvalidToken::Claims));
}

#[test]
fn escaped_or_oversized_headers_are_malformed() {
    // JSON escapes in a header value are never needed; refusing them keeps header reading
    // allocation-free ("RS256" spelled with an escape must not pass as RS256 either way).
    let escaped = format!(
        r#"{{"alg":"RS\u0032\u0035\u0036","typ":"at+jwt","kid":"{}"}}"#,
        key().kid()
    );
    let h = b64::encode(escaped.as_bytes());
    let t = key()
        .sign_with_header(&h, claims().to_string().as_bytes())
        .unwrap();
    assert_eq!(verify(&t), Err(InvalidToken::Malformed));
    // A header decoding past its 1 KiB buffer is refused, not truncated.
    let mut big = header();
    big["pad"] = json!("x".repeat(MAX_HEADER_LEN));
    assert_eq!(verify(&forge(&big, &claims())), Err(InvalidToken::Malformed));
}
