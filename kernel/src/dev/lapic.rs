//! The local APIC: x2APIC (MSR access) when the CPU has it, xAPIC (MMIO)
//! otherwise. End-of-interrupt, the per-CPU timer, and inter-processor
//! interrupts (fixed, INIT, start-up, NMI).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::cpu;

static X2APIC: AtomicBool = AtomicBool::new(false);
static MMIO_BASE: AtomicU64 = AtomicU64::new(0xfee0_0000);

const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ESR: u32 = 0x280;
const REG_ICR_LO: u32 = 0x300;
const REG_ICR_HI: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INIT: u32 = 0x380;
const REG_TIMER_CUR: u32 = 0x390;
const REG_TIMER_DIV: u32 = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const TIMER_PERIODIC: u32 = 1 << 17;

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        cpu::rdmsr(0x800 + (reg >> 4)) as u32
    } else {
        // SAFETY: the xAPIC page is mapped uncached (map_mmio in `init_bsp`)
        // and `reg` is one of the architectural register offsets.
        unsafe { core::ptr::read_volatile((MMIO_BASE.load(Ordering::Relaxed) + reg as u64) as *const u32) }
    }
}

fn write(reg: u32, val: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        cpu::wrmsr(0x800 + (reg >> 4), val as u64);
    } else {
        // SAFETY: as for `read`.
        unsafe { core::ptr::write_volatile((MMIO_BASE.load(Ordering::Relaxed) + reg as u64) as *mut u32, val) }
    }
}

/// Whether the APICs run in x2APIC mode.
pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

/// Chooses the mode (x2APIC if CPUID says so) and maps the xAPIC page.
pub fn init_bsp(mmio_base: u64) {
    let (_, _, ecx, _) = cpu::cpuid(1, 0);
    X2APIC.store(ecx & (1 << 21) != 0, Ordering::Relaxed);
    MMIO_BASE.store(mmio_base, Ordering::Relaxed);
    if !is_x2apic() {
        crate::mem::paging::map_mmio(mmio_base, 4096);
    }
}

/// Enables this CPU's local APIC in the chosen mode, with all local
/// interrupts masked except the spurious vector.
pub fn enable_this_cpu() {
    let mut base = cpu::rdmsr(cpu::IA32_APIC_BASE);
    base |= 1 << 11; // global enable
    if is_x2apic() {
        base |= 1 << 10;
    }
    cpu::wrmsr(cpu::IA32_APIC_BASE, base);
    write(REG_TPR, 0);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_ESR, 0);
    write(REG_SVR, 0x100 | crate::arch::trap::SPURIOUS_VECTOR as u32);
    eoi();
}

/// This CPU's APIC id.
pub fn id() -> u32 {
    if is_x2apic() { read(REG_ID) } else { read(REG_ID) >> 24 }
}

/// Signals end of interrupt.
#[inline]
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Divide-by-16 setting of the timer divide register.
const DIV_16: u32 = 0b0011;
/// The timer counts at bus clock / 16.
pub const TIMER_DIVISOR: u64 = 16;

/// Starts the timer counting down from `initial` (one-shot, masked) for
/// calibration.
pub fn timer_start_calibration(initial: u32) {
    write(REG_TIMER_DIV, DIV_16);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INIT, initial);
}

/// The timer's current count.
pub fn timer_current() -> u32 {
    read(REG_TIMER_CUR)
}

/// Starts the periodic timer: `count` ticks of (bus clock / 16) per period.
pub fn timer_periodic(vector: u8, count: u32) {
    write(REG_TIMER_DIV, DIV_16);
    write(REG_LVT_TIMER, TIMER_PERIODIC | vector as u32);
    write(REG_TIMER_INIT, count.max(1));
}

fn send_icr(dest: u32, low: u32) {
    crate::arch::without_interrupts(|| {
        if is_x2apic() {
            cpu::wrmsr(0x830, ((dest as u64) << 32) | low as u64);
        } else {
            write(REG_ICR_HI, dest << 24);
            write(REG_ICR_LO, low);
            let mut spins = 0;
            while read(REG_ICR_LO) & (1 << 12) != 0 && spins < 1_000_000 {
                spins += 1;
                core::hint::spin_loop();
            }
        }
    })
}

/// Sends a fixed interrupt `vector` to the CPU with APIC id `dest`.
pub fn send_ipi(dest: u32, vector: u8) {
    send_icr(dest, vector as u32 | (1 << 14));
}

/// Sends INIT (assert, level) to `dest`.
pub fn send_init(dest: u32) {
    send_icr(dest, 0x4500);
}

/// Sends a start-up IPI to `dest`: the AP starts in real mode at
/// `page * 4096`.
pub fn send_startup(dest: u32, page: u8) {
    send_icr(dest, 0x4600 | page as u32);
}

/// Sends an NMI to every CPU but this one.
pub fn nmi_all_but_self() {
    // Destination shorthand "all excluding self", delivery mode NMI.
    send_icr(0, (0b11 << 18) | (1 << 14) | 0x400);
}
