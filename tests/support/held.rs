//! Retrying what a burst of revocations holds back a moment, as a client would.

use std::future::Future;
use std::time::{Duration, Instant};

use tower_jwt_auth::SessionError;

/// Runs `op` until it is not held back (`SessionError::Unavailable`), for five seconds at
/// most; panics on any other error.
pub(crate) async fn retrying<T, F, Fut>(mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SessionError>>,
{
    let start = Instant::now();
    loop {
        match op().await {
            Err(SessionError::Unavailable(_)) if start.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other.unwrap(),
        }
    }
}
