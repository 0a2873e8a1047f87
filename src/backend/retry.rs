//! The wait between two attempts of a storage call that failed temporarily: exponential backoff
//! with jitter, shared by the calls a backend retries itself (whole listings, streamed uploads,
//! object-lock writes). It computes durations only (the jitter draws one random byte).

use std::time::Duration;

/// The first retry's delay; each later one doubles, up to [`MAX_DELAY`].
pub const MIN_DELAY: Duration = Duration::from_millis(200);
/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(20);

/// The wait before retry `attempt` (1-based): exponential from [`MIN_DELAY`], capped, with jitter
/// (a random 50–100 % of it), like the retry layer's.
pub fn backoff(attempt: u32) -> Duration {
    let full = MIN_DELAY.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(MAX_DELAY);
    let mut b = [0u8; 1];
    let _ = getrandom::getrandom(&mut b);
    full.mul_f64(0.5 + f64::from(b[0]) / 510.0)
}
