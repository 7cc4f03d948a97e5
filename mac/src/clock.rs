//! The monotonic clock the MAC layer reads (for `maxbw`), set by the
//! kernel once at boot; 0 until then (and in host tests unless set).

use spin::Once;

static CLOCK: Once<fn() -> u64> = Once::new();

/// Installs the clock (nanoseconds since boot).
pub fn set(f: fn() -> u64) {
    CLOCK.call_once(|| f);
}

/// Nanoseconds since boot.
#[inline]
pub fn now_ns() -> u64 {
    CLOCK.get().map(|f| f()).unwrap_or(0)
}
