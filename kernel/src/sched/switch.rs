//! The context switch: save the callee-saved registers on the old stack,
//! store its stack pointer, load the new one, restore, return. A new
//! thread's stack is laid out so that the first switch "returns" into
//! [`thread_entry`].

use core::arch::naked_asm;

/// Saves callee-saved registers and the stack pointer into `*save`, then
/// resumes the context whose stack pointer is `load`.
///
/// # Safety
/// Interrupts must be off; `load` must be a stack pointer saved by this
/// function or prepared by [`prepare_stack`], on a live stack.
#[unsafe(naked)]
pub unsafe extern "C" fn switch_stack(save: *mut u64, load: u64) {
    naked_asm!(
        "push rbp", "push rbx", "push r12", "push r13", "push r14", "push r15",
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "pop r15", "pop r14", "pop r13", "pop r12", "pop rbx", "pop rbp",
        "ret",
    );
}

/// First code a new thread runs: aligns the stack and calls the Rust
/// start routine.
#[unsafe(naked)]
unsafe extern "C" fn thread_entry() {
    naked_asm!(
        "and rsp, -16",
        "call {start}",
        "ud2",
        start = sym super::cpu::thread_start,
    );
}

/// Lays out a fresh stack with `top` as its top so that `switch_stack`
/// into the returned stack pointer starts [`thread_entry`].
pub fn prepare_stack(top: u64) -> u64 {
    let frame: [u64; 8] = [0, 0, 0, 0, 0, 0, thread_entry as *const () as u64, 0];
    let rsp = top - 8 * frame.len() as u64;
    // SAFETY: [rsp, top) lies in the freshly mapped stack this thread owns
    // exclusively; nothing else references it yet.
    unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), rsp as *mut u64, frame.len()) };
    rsp
}
