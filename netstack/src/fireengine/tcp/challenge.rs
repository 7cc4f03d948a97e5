//! The instance-wide rate limit on RFC 5961 challenge ACKs (section 7:
//! "an implementation SHOULD include a rate-limiting mechanism"), and on
//! the ACKs that answer out-of-window segments: at most `limit` per
//! second across all conns of an instance, so a blind attacker cannot
//! turn the instance into an ACK amplifier. Lock-free: a one-second
//! window start and a count, both atomics.

use core::sync::atomic::{AtomicU64, Ordering};

/// The limiter (see the module doc).
#[derive(Debug)]
pub struct ChallengeLimiter {
    limit: AtomicU64,
    window_start_ms: AtomicU64,
    count: AtomicU64,
}

impl ChallengeLimiter {
    /// At most `per_second` challenge ACKs a second (0: none at all).
    pub const fn new(per_second: u64) -> ChallengeLimiter {
        ChallengeLimiter { limit: AtomicU64::new(per_second), window_start_ms: AtomicU64::new(0), count: AtomicU64::new(0) }
    }

    /// Changes the limit.
    pub fn set_limit(&self, per_second: u64) {
        self.limit.store(per_second, Ordering::Relaxed);
    }

    /// Whether one more may be sent at `now_ms` (and counts it if so).
    pub fn allow(&self, now_ms: u64) -> bool {
        let start = self.window_start_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(start) >= 1000
            && self.window_start_ms.compare_exchange(start, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed) < self.limit.load(Ordering::Relaxed)
    }
}
