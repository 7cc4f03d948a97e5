//! x86_64 architecture support: boot entry, descriptor tables, interrupt
//! entry, CPU control registers and model-specific registers.

pub mod boot;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod port;
pub mod trap;

/// Halts the CPU with interrupts off, forever.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Runs `f` with interrupts disabled on this CPU, restoring the previous state.
#[inline]
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(f)
}

/// Whether interrupts are enabled on this CPU.
#[inline]
pub fn interrupts_enabled() -> bool {
    x86_64::instructions::interrupts::are_enabled()
}

/// Switches to the stack whose top is `top` and calls `f(arg)` there.
pub fn call_on_stack(top: u64, arg: u64, f: extern "C" fn(u64) -> !) -> ! {
    // SAFETY: `top` is the top of a freshly mapped, exclusively owned stack;
    // `f` never returns, so nothing runs on the old stack again.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor rbp, rbp",
            "call {f}",
            "ud2",
            top = in(reg) top & !0xf,
            f = in(reg) f,
            in("rdi") arg,
            options(noreturn)
        )
    }
}
