//! Calibration: measures the TSC and local-APIC-timer frequencies over a
//! window timed by a reference counter (HPET preferred, PM timer second),
//! and measures them again against the other source as a cross-check.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu::rdtsc;
use crate::dev::{hpet, lapic, pmtimer};

/// Result of one calibration run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calibration {
    /// Which reference timed the window.
    pub reference: &'static str,
    pub tsc_hz: u64,
    /// Local APIC timer input frequency (after the divide-by-16).
    pub lapic_hz: u64,
}

static LAPIC_HZ: AtomicU64 = AtomicU64::new(0);

/// The calibrated local APIC timer frequency (divided clock).
pub fn lapic_hz() -> u64 {
    LAPIC_HZ.load(Ordering::Relaxed)
}

/// Records the frequency the scheduler tick is derived from.
pub fn set_lapic_hz(hz: u64) {
    LAPIC_HZ.store(hz, Ordering::Relaxed);
}

/// Calibrates over `window_us` microseconds timed by the HPET.
pub fn against_hpet(window_us: u64) -> Option<Calibration> {
    if !hpet::present() {
        return None;
    }
    let f = hpet::frequency();
    let ticks = f * window_us / 1_000_000;
    lapic::timer_start_calibration(u32::MAX);
    let l0 = lapic::timer_current();
    let t0 = rdtsc();
    let h0 = hpet::counter();
    let mut h1 = h0;
    while h1.wrapping_sub(h0) < ticks {
        h1 = hpet::counter();
    }
    let t1 = rdtsc();
    let l1 = lapic::timer_current();
    let elapsed = h1.wrapping_sub(h0) as u128;
    Some(Calibration {
        reference: "hpet",
        tsc_hz: ((t1 - t0) as u128 * f as u128 / elapsed) as u64,
        lapic_hz: ((l0 - l1) as u128 * f as u128 / elapsed) as u64,
    })
}

/// Calibrates over `window_us` microseconds timed by the ACPI PM timer.
pub fn against_pmtimer(window_us: u64) -> Option<Calibration> {
    if !pmtimer::present() {
        return None;
    }
    let ticks = pmtimer::FREQUENCY * window_us / 1_000_000;
    lapic::timer_start_calibration(u32::MAX);
    let l0 = lapic::timer_current();
    let t0 = rdtsc();
    let p0 = pmtimer::read();
    let mut p1 = p0;
    while pmtimer::delta(p0, p1) < ticks {
        p1 = pmtimer::read();
    }
    let t1 = rdtsc();
    let l1 = lapic::timer_current();
    let elapsed = pmtimer::delta(p0, p1) as u128;
    Some(Calibration {
        reference: "pmtimer",
        tsc_hz: ((t1 - t0) as u128 * pmtimer::FREQUENCY as u128 / elapsed) as u64,
        lapic_hz: ((l0 - l1) as u128 * pmtimer::FREQUENCY as u128 / elapsed) as u64,
    })
}

/// Difference of `a` from `b` in parts per million.
pub fn ppm(a: u64, b: u64) -> u64 {
    if b == 0 {
        return u64::MAX;
    }
    ((a as i128 - b as i128).unsigned_abs() * 1_000_000 / b as u128) as u64
}
