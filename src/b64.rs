//! Strict base64url without padding (RFC 7515 §2), the only encoding tokens use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out)
}

/// Decodes strictly: no padding, no `+`/`/`, no whitespace, canonical trailing bits.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

pub(crate) fn decode_into(s: &str, out: &mut Vec<u8>) -> Option<()> {
    URL_SAFE_NO_PAD.decode_vec(s, out).ok()
}
