//! The monotonic clock: nanoseconds since boot from the TSC, scaled by
//! the frequency found at calibration; and the wall clock, anchored by the
//! RTC at boot.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu::rdtsc;

static TSC0: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick as a 32.32 fixed-point number.
static MULT: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static BOOT_UNIX: AtomicU64 = AtomicU64::new(0);

/// Marks the TSC value that counts as time zero.
pub fn set_epoch() {
    TSC0.store(rdtsc(), Ordering::Relaxed);
}

/// Sets the TSC frequency found by calibration.
pub fn set_tsc_hz(hz: u64) {
    TSC_HZ.store(hz, Ordering::Relaxed);
    MULT.store(((1_000_000_000u128 << 32) / hz.max(1) as u128) as u64, Ordering::Release);
}

/// The calibrated TSC frequency.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since boot (0 before calibration).
#[inline]
pub fn now_ns() -> u64 {
    let d = rdtsc().wrapping_sub(TSC0.load(Ordering::Relaxed));
    ((d as u128 * MULT.load(Ordering::Acquire) as u128) >> 32) as u64
}

/// Records the wall-clock time (Unix seconds) at boot.
pub fn set_boot_unix(t: u64) {
    BOOT_UNIX.store(t, Ordering::Relaxed);
}

/// Wall-clock time at boot, in Unix seconds.
pub fn boot_unix() -> u64 {
    BOOT_UNIX.load(Ordering::Relaxed)
}

/// Current wall-clock time, in Unix seconds.
pub fn unix_now() -> u64 {
    boot_unix() + now_ns() / 1_000_000_000
}

/// Busy-waits `ns` nanoseconds (for device start-up delays).
pub fn spin_ns(ns: u64) {
    let end = now_ns() + ns;
    while now_ns() < end {
        core::hint::spin_loop();
    }
}
