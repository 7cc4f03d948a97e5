//! The ACPI power-management timer (3.579545 MHz, 24 or 32 bits): the
//! second, independent time source used to cross-check calibration.

use core::sync::atomic::{AtomicU32, AtomicBool, Ordering};

use crate::arch::port::inl;

/// Frequency of the PM timer.
pub const FREQUENCY: u64 = 3_579_545;

static PORT: AtomicU32 = AtomicU32::new(0);
static WIDE: AtomicBool = AtomicBool::new(false);

/// Uses the timer at I/O port `port`.
pub fn init(port: u32, ext_32bit: bool) {
    PORT.store(port, Ordering::Relaxed);
    WIDE.store(ext_32bit, Ordering::Relaxed);
}

/// Whether a PM timer is known.
pub fn present() -> bool {
    PORT.load(Ordering::Relaxed) != 0
}

/// Reads the counter (24 or 32 valid bits).
pub fn read() -> u32 {
    let v = inl(PORT.load(Ordering::Relaxed) as u16);
    if WIDE.load(Ordering::Relaxed) { v } else { v & 0x00ff_ffff }
}

/// Ticks elapsed from `a` to `b`, handling one wrap.
pub fn delta(a: u32, b: u32) -> u64 {
    let mask: u64 = if WIDE.load(Ordering::Relaxed) { 0xffff_ffff } else { 0x00ff_ffff };
    ((b as u64).wrapping_sub(a as u64)) & mask
}
