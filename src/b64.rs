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

/// Decodes into `buf` (no allocation); `None` if malformed or longer than `buf`.
pub(crate) fn decode_slice<'a>(s: &str, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let n = URL_SAFE_NO_PAD.decode_slice(s, buf).ok()?;
    Some(&buf[..n])
}
