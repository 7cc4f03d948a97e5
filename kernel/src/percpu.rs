//! Per-CPU data, reached through the GS base: CPU id, APIC id, the
//! scheduler's per-CPU state and the counters `mpstat` reports.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use alloc::boxed::Box;

use crate::arch::cpu;
use crate::sched::CpuSched;

/// Most CPUs the kernel brings up.
pub const MAX_CPUS: usize = 64;

/// Counters per CPU, cumulative since boot.
#[derive(Default)]
pub struct CpuStats {
    /// Interrupts taken (device, timer and IPI vectors).
    pub interrupts: AtomicU64,
    /// Inter-processor interrupts received.
    pub ipis: AtomicU64,
    /// Context switches.
    pub csw: AtomicU64,
    /// Involuntary context switches (preemptions).
    pub icsw: AtomicU64,
    /// Nanoseconds spent in the idle thread.
    pub idle_ns: AtomicU64,
    /// Interrupts on vectors nobody registered.
    pub stray_interrupts: AtomicU64,
    /// Timer ticks.
    pub ticks: AtomicU64,
}

/// One CPU's data. Field `self_ptr` must stay first: `this()` reads it
/// through `gs:0`.
#[repr(C)]
pub struct PerCpu {
    self_ptr: u64,
    /// Logical CPU id (0 = boot CPU), as `psrinfo` numbers them.
    pub id: usize,
    /// Local APIC id.
    pub apic_id: u32,
    /// Whether the CPU finished start-up and runs threads.
    pub online: AtomicBool,
    /// Monotonic time at which it came on-line.
    pub online_since_ns: AtomicU64,
    pub stats: CpuStats,
    pub sched: CpuSched,
}

static CPUS: [AtomicPtr<PerCpu>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Creates the per-CPU block for CPU `id` (not yet installed).
pub fn create(id: usize, apic_id: u32) -> &'static PerCpu {
    let p = Box::leak(Box::new(PerCpu {
        self_ptr: 0,
        id,
        apic_id,
        online: AtomicBool::new(false),
        online_since_ns: AtomicU64::new(0),
        stats: CpuStats::default(),
        sched: CpuSched::new(id),
    }));
    p.self_ptr = p as *mut PerCpu as u64;
    CPUS[id].store(p, Ordering::Release);
    COUNT.fetch_max(id + 1, Ordering::AcqRel);
    p
}

/// Points this CPU's GS base at its block.
pub fn install(p: &'static PerCpu) {
    cpu::wrmsr(cpu::IA32_GS_BASE, p as *const PerCpu as u64);
}

/// This CPU's block. Only valid after `install`.
#[inline]
pub fn this() -> &'static PerCpu {
    let p: u64;
    // SAFETY: GS base points at this CPU's leaked, never-freed PerCpu whose
    // first field holds its own address (set up by `create` + `install`).
    unsafe {
        core::arch::asm!("mov {}, gs:0", out(reg) p, options(nostack, readonly, preserves_flags));
        &*(p as *const PerCpu)
    }
}

/// This CPU's block, or `None` this early in boot (used by fault reports).
pub fn try_this() -> Option<&'static PerCpu> {
    if cpu::rdmsr(cpu::IA32_GS_BASE) == 0 { None } else { Some(this()) }
}

/// This CPU's logical id.
#[inline]
pub fn cpu_id() -> usize {
    this().id
}

/// The block of CPU `id`, if it exists.
pub fn get(id: usize) -> Option<&'static PerCpu> {
    if id >= MAX_CPUS {
        return None;
    }
    let p = CPUS[id].load(Ordering::Acquire);
    // SAFETY: non-null entries point at leaked PerCpu blocks (never freed).
    if p.is_null() { None } else { Some(unsafe { &*p }) }
}

/// Number of CPUs known (started or being started).
pub fn count() -> usize {
    COUNT.load(Ordering::Acquire)
}

/// Iterates over all known CPUs.
pub fn all() -> impl Iterator<Item = &'static PerCpu> {
    (0..count()).filter_map(get)
}
