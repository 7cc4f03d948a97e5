//! CPU registers, MSRs, CPUID and the time-stamp counter.

use core::arch::asm;

/// Reads a model-specific register.
#[inline]
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: callers read architectural MSRs that exist on every x86_64 CPU
    // we run on (APIC base, GS base, x2APIC registers when x2APIC is on).
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    ((hi as u64) << 32) | lo as u64
}

/// Writes a model-specific register.
#[inline]
pub fn wrmsr(msr: u32, val: u64) {
    // SAFETY: as for `rdmsr`; the values written are the documented ones.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") val as u32, in("edx") (val >> 32) as u32, options(nostack, preserves_flags))
    };
}

/// Executes CPUID for `leaf`/`subleaf`, returning (eax, ebx, ecx, edx).
#[inline]
pub fn cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC only reads the counter.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    ((hi as u64) << 32) | lo as u64
}

/// Reads CR2 (the faulting address of the last page fault).
#[inline]
pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR3.
#[inline]
pub fn cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Loads CR3 with a new top-level page table.
///
/// # Safety
/// `pml4` must be a valid PML4 that maps the running code, its stack and
/// everything the kernel touches afterwards.
#[inline]
pub unsafe fn write_cr3(pml4: u64) {
    // SAFETY: upheld by the caller.
    unsafe { asm!("mov cr3, {}", in(reg) pml4, options(nostack, preserves_flags)) };
}

/// Invalidates the TLB entry of one page on this CPU.
#[inline]
pub fn invlpg(addr: u64) {
    // SAFETY: INVLPG only drops a cached translation.
    unsafe { asm!("invlpg [{}]", in(reg) addr, options(nostack, preserves_flags)) };
}

/// Reloads CR3 to flush all non-global TLB entries on this CPU.
pub fn flush_tlb() {
    // SAFETY: reloading the current CR3 value keeps the same mappings.
    unsafe { write_cr3(cr3()) };
}

pub const IA32_APIC_BASE: u32 = 0x1b;
pub const IA32_GS_BASE: u32 = 0xc000_0101;
pub const IA32_EFER: u32 = 0xc000_0080;
