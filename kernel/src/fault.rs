//! What happens when things go wrong: CPU exception reports and the panic
//! handler. Both print a clear report on the console, stop the other CPUs
//! and end QEMU with a failure exit code.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::cpu;
use crate::arch::trap::TrapFrame;
use crate::dev::qemu_exit;

/// Set once the machine is going down; other CPUs halt on the NMI.
pub static STOPPING: AtomicBool = AtomicBool::new(false);

const NAMES: [(&str, &str); 32] = [
    ("#DE", "Divide Error"),
    ("#DB", "Debug"),
    ("NMI", "Non-maskable Interrupt"),
    ("#BP", "Breakpoint"),
    ("#OF", "Overflow"),
    ("#BR", "BOUND Range Exceeded"),
    ("#UD", "Invalid Opcode"),
    ("#NM", "Device Not Available"),
    ("#DF", "Double Fault"),
    ("#MF", "Coprocessor Segment Overrun"),
    ("#TS", "Invalid TSS"),
    ("#NP", "Segment Not Present"),
    ("#SS", "Stack-Segment Fault"),
    ("#GP", "General Protection"),
    ("#PF", "Page Fault"),
    ("#15", "Reserved"),
    ("#MF", "x87 Floating-Point Error"),
    ("#AC", "Alignment Check"),
    ("#MC", "Machine Check"),
    ("#XM", "SIMD Floating-Point"),
    ("#VE", "Virtualization Exception"),
    ("#CP", "Control Protection"),
    ("#22", "Reserved"),
    ("#23", "Reserved"),
    ("#24", "Reserved"),
    ("#25", "Reserved"),
    ("#26", "Reserved"),
    ("#27", "Reserved"),
    ("#HV", "Hypervisor Injection"),
    ("#VC", "VMM Communication"),
    ("#SX", "Security Exception"),
    ("#31", "Reserved"),
];

fn cpu_label() -> usize {
    crate::percpu::try_this().map(|p| p.id).unwrap_or(0)
}

/// Stops every other CPU (NMI broadcast) and switches the console to
/// emergency mode. Returns false if another CPU is already going down.
fn begin_stop() -> bool {
    let first = !STOPPING.swap(true, Ordering::SeqCst);
    crate::console::enter_emergency();
    if first {
        crate::dev::lapic::nmi_all_but_self();
    }
    first
}

/// Handles a CPU exception (vectors 0-31).
pub fn exception(f: &mut TrapFrame) {
    let v = f.vector as usize;
    if v == 2 && STOPPING.load(Ordering::SeqCst) {
        crate::arch::halt_forever();
    }
    if !begin_stop() {
        crate::arch::halt_forever();
    }
    let (mnemonic, name) = NAMES[v & 31];
    let cr2 = cpu::cr2();
    crate::kprintln!(
        "\nEXCEPTION {} ({}) vector={} error=0x{:016x} rip=0x{:016x} cr2=0x{:016x} cpu={}",
        mnemonic,
        name,
        v,
        f.error_code,
        f.rip,
        cr2,
        cpu_label()
    );
    if v == 8 {
        if let Some(top) = crate::mem::stack::guard_hit(cr2) {
            crate::kprintln!("  stack overflow: guard page of the stack with top 0x{top:016x}");
        }
    }
    if v == 14 {
        let e = f.error_code;
        crate::kprintln!(
            "  page fault: {} {} in {} mode{}",
            if e & 1 != 0 { "protection violation" } else { "page not present" },
            if e & 2 != 0 { "on write" } else if e & 16 != 0 { "on instruction fetch" } else { "on read" },
            if e & 4 != 0 { "user" } else { "kernel" },
            if cr2 < 4096 { " (null pointer)" } else { "" }
        );
        if let Some(top) = crate::mem::stack::guard_hit(cr2) {
            crate::kprintln!("  stack overflow: guard page of the stack with top 0x{top:016x}");
        }
    }
    crate::kprintln!(
        "  rax={:016x} rbx={:016x} rcx={:016x} rdx={:016x}\n  rsi={:016x} rdi={:016x} rbp={:016x} rsp={:016x}\n  r8 ={:016x} r9 ={:016x} r10={:016x} r11={:016x}\n  r12={:016x} r13={:016x} r14={:016x} r15={:016x}\n  cs={:04x} ss={:04x} rflags={:016x}",
        f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.rsp, f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14,
        f.r15, f.cs, f.ss, f.rflags
    );
    if let Some(t) = crate::sched::current_name() {
        crate::kprintln!("  thread: {t}");
    }
    qemu_exit::exit(qemu_exit::EXIT_EXCEPTION);
}

#[cfg(feature = "bare-metal")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if !begin_stop() {
        crate::arch::halt_forever();
    }
    crate::kprintln!("\nKERNEL PANIC on cpu {}: {}", cpu_label(), info);
    qemu_exit::exit(qemu_exit::EXIT_PANIC);
}
