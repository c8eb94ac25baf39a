//! Wall-clock time as the token formats count it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, ms)
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    now_ms() / 1000
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Longest duration any setting takes (100 years): keeps every `now + duration` in range of
/// `u64` milliseconds and exact in Redis' Lua numbers (2^53).
const MAX_SETTING: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A configured duration, clamped to [`MAX_SETTING`].
pub(crate) fn setting(d: Duration) -> Duration {
    d.min(MAX_SETTING)
}
