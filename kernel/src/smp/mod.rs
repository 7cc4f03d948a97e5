//! Starting the application processors: the real-mode start-up code at
//! 0x8000 (INIT-SIPI-SIPI), each AP's own guarded stack, GDT/TSS, per-CPU
//! block and idle thread.

mod trampoline;

use core::sync::atomic::{AtomicBool, Ordering};

use crate::dev::lapic;
use crate::mem::stack::Stack;
use crate::percpu;
use crate::time::clock::{now_ns, spin_ns};

/// Physical page the APs start at (the SIPI vector is its page number).
const TRAMPOLINE: u64 = 0x8000;

static AP_ALIVE: AtomicBool = AtomicBool::new(false);

/// Starts every enabled CPU in `apic_ids` other than this one, one at a
/// time, numbering them 1, 2, ... in order. Returns how many came up.
pub fn start_aps(apic_ids: &[u32]) -> usize {
    let me = lapic::id();
    let mut next_id = 1;
    for &apic in apic_ids.iter().filter(|&&a| a != me) {
        if next_id >= percpu::MAX_CPUS {
            log::warn!("smp: more than {} CPUs, ignoring APIC id {apic}", percpu::MAX_CPUS);
            break;
        }
        let Some(stack) = Stack::new(crate::sched::STACK_SIZE) else {
            log::error!("smp: no memory for the stack of APIC id {apic}");
            break;
        };
        percpu::create(next_id, apic);
        trampoline::install(TRAMPOLINE, crate::mem::paging::pml4_phys(), stack.top(), ap_main as *const () as u64, next_id as u64);
        core::mem::forget(stack); // becomes the AP's idle stack for good
        AP_ALIVE.store(false, Ordering::SeqCst);
        lapic::send_init(apic);
        spin_ns(10_000_000);
        lapic::send_startup(apic, (TRAMPOLINE >> 12) as u8);
        spin_ns(200_000);
        if !AP_ALIVE.load(Ordering::SeqCst) {
            lapic::send_startup(apic, (TRAMPOLINE >> 12) as u8);
        }
        let deadline = now_ns() + 2_000_000_000;
        while !AP_ALIVE.load(Ordering::SeqCst) && now_ns() < deadline {
            core::hint::spin_loop();
        }
        if !AP_ALIVE.load(Ordering::SeqCst) {
            log::error!("smp: CPU with APIC id {apic} did not start");
            continue;
        }
        next_id += 1;
    }
    next_id - 1
}

/// First Rust code on an application processor (called by the start-up
/// code in long mode on the AP's own stack).
extern "C" fn ap_main(id: u64) -> ! {
    let p = percpu::get(id as usize).expect("AP without a per-CPU block");
    percpu::install(p);
    crate::kmain::init_cpu_tables();
    lapic::enable_this_cpu();
    p.online_since_ns.store(now_ns(), Ordering::Relaxed);
    p.online.store(true, Ordering::Release);
    AP_ALIVE.store(true, Ordering::SeqCst);
    log::debug!("cpu{} on-line (APIC id {})", p.id, p.apic_id);
    crate::sched::run_this_cpu()
}
