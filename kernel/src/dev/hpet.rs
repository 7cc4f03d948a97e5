//! The HPET main counter: the kernel's reference clock for calibrating
//! the TSC and the local APIC timer.

use core::sync::atomic::{AtomicU64, Ordering};

static BASE: AtomicU64 = AtomicU64::new(0);
static PERIOD_FS: AtomicU64 = AtomicU64::new(0);

fn reg(off: u64) -> *mut u64 {
    (BASE.load(Ordering::Relaxed) + off) as *mut u64
}

/// Maps the HPET at `base` and starts its main counter.
pub fn init(base: u64) -> bool {
    crate::mem::paging::map_mmio(base, 4096);
    BASE.store(base, Ordering::Relaxed);
    // SAFETY: `base` is the HPET block from the ACPI HPET table, mapped
    // uncached just above; offsets are the architectural registers.
    let cap = unsafe { core::ptr::read_volatile(reg(0)) };
    let period = cap >> 32;
    if period == 0 || period > 100_000_000 {
        BASE.store(0, Ordering::Relaxed);
        return false;
    }
    PERIOD_FS.store(period, Ordering::Relaxed);
    // SAFETY: as above; bit 0 of the configuration register enables the counter.
    unsafe {
        let cfg = core::ptr::read_volatile(reg(0x10));
        core::ptr::write_volatile(reg(0x10), cfg | 1);
    }
    true
}

/// Whether an HPET is in use.
pub fn present() -> bool {
    BASE.load(Ordering::Relaxed) != 0
}

/// Counter frequency in Hz.
pub fn frequency() -> u64 {
    let p = PERIOD_FS.load(Ordering::Relaxed);
    if p == 0 { 0 } else { 1_000_000_000_000_000 / p }
}

/// Reads the main counter.
pub fn counter() -> u64 {
    // SAFETY: see `init`; 0xf0 is the main counter register.
    unsafe { core::ptr::read_volatile(reg(0xf0)) }
}
