//! [`ReplayBody`]: whether a request body can be sent a second time.

use bytes::Bytes;
use http_body_util::{Empty, Full};

/// A request body the client layer may send again after a `401` (with a new token). A
/// buffered body can; a stream cannot, and its request's `401` is returned as it is.
///
/// Implemented for the common buffered bodies, and as "never" for streaming ones; implement
/// it for your own body type (`Some(self.clone())` if it is cheap to clone).
pub trait ReplayBody: Sized {
    /// A copy to send again, or `None` when the body cannot be replayed.
    fn replay(&self) -> Option<Self>;
}

macro_rules! replayable {
    ($($body:ty),* $(,)?) => {
        $(impl ReplayBody for $body {
            fn replay(&self) -> Option<Self> {
                Some(self.clone())
            }
        })*
    };
}

replayable!(
    Full<Bytes>,
    Empty<Bytes>,
    Bytes,
    String,
    Vec<u8>,
    (),
    &'static str,
    &'static [u8],
);

impl ReplayBody for hyper::body::Incoming {
    fn replay(&self) -> Option<Self> {
        None
    }
}

/// A tonic call's body is its encoded message stream: never replayed. A tonic client is kept
/// signed in by renewing ahead of expiry instead.
#[cfg(feature = "tonic")]
impl ReplayBody for tonic::body::Body {
    fn replay(&self) -> Option<Self> {
        None
    }
}
