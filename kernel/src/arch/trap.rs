//! Interrupt and exception entry: 256 entry stubs in one naked function,
//! a common path that saves the registers into a [`TrapFrame`], and the
//! dispatcher that routes CPU exceptions to the fault reporter and device
//! vectors to registered handlers.
//!
//! Each stub is 16 bytes: it pushes a zero error code when the CPU does not
//! push one, pushes its vector number and jumps to the common path.

use core::arch::naked_asm;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Registers saved on interrupt entry, lowest address first.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const STUB_SIZE: u64 = 16;

/// All 256 entry stubs. Vectors 8, 10-14, 17, 21, 29 and 30 come with an
/// error code pushed by the CPU; the others push a zero in its place.
#[unsafe(naked)]
unsafe extern "C" fn trap_stubs() {
    naked_asm!(
        r#"
        .set vec, 0
        .rept 256
            .p2align 4
            .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
            .else
                pushq $0
            .endif
            pushq $vec
            jmp {common}
            .set vec, vec + 1
        .endr
        "#,
        common = sym trap_common,
        options(att_syntax)
    );
}

/// Saves the general registers, calls [`trap_dispatch`] with the frame
/// and returns from the interrupt.
#[unsafe(naked)]
unsafe extern "C" fn trap_common() {
    naked_asm!(
        "push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi", "push rbp",
        "push r8", "push r9", "push r10", "push r11", "push r12", "push r13", "push r14", "push r15",
        "mov rdi, rsp",
        "cld",
        "call {dispatch}",
        "pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10", "pop r9", "pop r8",
        "pop rbp", "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rbx", "pop rax",
        "add rsp, 16",
        "iretq",
        dispatch = sym trap_dispatch,
    );
}

/// Address of the entry stub of `vector`.
pub fn stub_address(vector: u8) -> u64 {
    trap_stubs as *const () as u64 + vector as u64 * STUB_SIZE
}

/// A device or IPI interrupt handler. It runs with interrupts off; the
/// dispatcher sends the end-of-interrupt after it returns.
pub type Handler = fn(&mut TrapFrame);

static HANDLERS: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];

/// Installs `handler` for `vector` (>= 32).
pub fn register(vector: u8, handler: Handler) {
    assert!(vector >= 32, "vector {vector} is a CPU exception");
    HANDLERS[vector as usize].store(handler as usize, Ordering::Release);
}

/// The vector the local APIC uses for spurious interrupts (no EOI).
pub const SPURIOUS_VECTOR: u8 = 0xff;

extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector < 32 {
        crate::fault::exception(frame);
        return;
    }
    crate::percpu::this().stats.interrupts.fetch_add(1, Ordering::Relaxed);
    if vector == SPURIOUS_VECTOR {
        return;
    }
    let h = HANDLERS[vector as usize].load(Ordering::Acquire);
    if h != 0 {
        // SAFETY: only `register` stores into HANDLERS, and it stores a
        // valid `Handler` function pointer.
        let handler: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
        handler(frame);
    } else {
        crate::percpu::this().stats.stray_interrupts.fetch_add(1, Ordering::Relaxed);
    }
    crate::dev::lapic::eoi();
    crate::sched::preempt_point();
}
