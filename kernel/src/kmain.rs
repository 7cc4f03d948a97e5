//! Boot sequence of the boot processor, and the per-CPU table set-up every
//! processor runs.
//!
//! Order matters: serial console → boot info → frames → page tables →
//! heap → per-CPU block, GDT/TSS, IDT → guarded stack → ACPI → APICs and
//! timers → calibration → scheduler → other CPUs → the shell (or a kernel
//! test named on the command line).

use alloc::string::String;
use core::sync::atomic::Ordering;

use crate::acpi::PhysMem;
use crate::arch::{gdt, idt, trap};
use crate::cmdline::Cmdline;
use crate::dev::{hpet, ioapic, lapic, pmtimer, qemu_exit, rtc, serial};
use crate::mem::stack::Stack;
use crate::mem::{frame, heap, paging};
use crate::time::{calibrate, clock};
use crate::{percpu, pvh, sched};

/// Console interrupt vector (COM1).
pub const UART_VECTOR: u8 = 0x24;

/// The kernel command line, copied at boot.
static CMDLINE: spin::Once<String> = spin::Once::new();
/// What ACPI told us.
static ACPI: spin::Once<crate::acpi::AcpiInfo> = spin::Once::new();

/// The kernel command line.
pub fn cmdline() -> Cmdline {
    Cmdline::parse(CMDLINE.get().map(|s| s.as_str()).unwrap_or(""))
}

/// The ACPI information found at boot.
pub fn acpi() -> &'static crate::acpi::AcpiInfo {
    ACPI.get().expect("ACPI not parsed yet")
}

struct DirectMap;

impl PhysMem for DirectMap {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> bool {
        if paddr < 4096 || paddr.checked_add(buf.len() as u64).is_none_or(|e| e > 0x1_0000_0000) {
            return false;
        }
        // SAFETY: the direct map identity-maps all of [4 KiB, 4 GiB); ACPI
        // tables are firmware data in that range, only read here.
        unsafe { core::ptr::copy_nonoverlapping(paddr as *const u8, buf.as_mut_ptr(), buf.len()) };
        true
    }
}

/// Loads GDT/TSS (with fresh IST stacks) and the IDT on this CPU.
pub fn init_cpu_tables() {
    let mut tops = [0u64; 4];
    for t in tops.iter_mut() {
        let s = Stack::new(16 * 1024).expect("no memory for IST stacks");
        *t = s.top();
        core::mem::forget(s);
    }
    gdt::init_this_cpu(tops);
    idt::load();
}

/// Entry from the PVH boot code on the boot stack.
pub extern "C" fn kmain_bsp(start_info: u32) -> ! {
    serial::init();
    let Some(info) = pvh::parse(start_info as u64) else {
        kprintln!("arbalest: not started through PVH (bad hvm_start_info magic)");
        qemu_exit::exit(qemu_exit::EXIT_PANIC);
    };
    let page = |a: u64| (a & !0xfff, (a & !0xfff) + 4096);
    let reserved = [
        page(info.start_info_paddr),
        (info.memmap_paddr & !0xfff, info.memmap_paddr + 24 * info.nregions as u64 + 4096),
        (info.cmdline_paddr & !0xfff, info.cmdline_paddr + info.cmdline_len as u64 + 4096),
    ];
    let top = frame::init(info.regions(), &reserved);
    paging::init(top);
    let (_, total) = frame::stats();
    heap::init((total / 8).clamp(8 << 20, 256 << 20) & !0xfff);
    CMDLINE.call_once(|| String::from(info.cmdline()));
    let rsdp = if info.rsdp_paddr != 0 { info.rsdp_paddr } else { pvh::scan_rsdp() };

    // A guarded stack for the rest of the boot processor's life.
    let stack = Stack::new(sched::STACK_SIZE).expect("no memory for the boot stack");
    let top = stack.top();
    core::mem::forget(stack);
    crate::arch::call_on_stack(top, rsdp, kmain_bsp_stage2)
}

extern "C" fn kmain_bsp_stage2(rsdp: u64) -> ! {
    let cmd = cmdline();
    let (level, warning) = cmd.log_level();
    crate::console::init_logger(level);
    if let Some(w) = warning {
        log::warn!("{w}");
    }

    let acpi = match crate::acpi::parse(rsdp, &DirectMap) {
        Ok(a) => ACPI.call_once(|| a),
        Err(e) => panic!("ACPI tables unusable: {e:?}"),
    };
    lapic::init_bsp(acpi.local_apic_addr);
    lapic::enable_this_cpu();
    let bsp = percpu::create(0, lapic::id());
    percpu::install(bsp);
    init_cpu_tables();

    if acpi.pcat_compat {
        mask_8259();
    }
    for io in &acpi.ioapics {
        ioapic::add(io.addr, io.gsi_base);
    }
    if let Some(h) = &acpi.hpet {
        hpet::init(h.base);
    }
    if let Some(pm) = &acpi.pm_timer {
        pmtimer::init(pm.port, pm.ext_32bit);
    }

    clock::set_epoch();
    let cal = calibrate::against_hpet(20_000)
        .or_else(|| calibrate::against_pmtimer(20_000))
        .unwrap_or_else(|| panic!("no reference timer (neither HPET nor ACPI PM timer)"));
    clock::set_tsc_hz(cal.tsc_hz);
    calibrate::set_lapic_hz(cal.lapic_hz);
    clock::set_epoch();
    clock::set_boot_unix(rtc::read_unix(acpi.century_reg));
    log::info!(
        "clock: TSC {} kHz, LAPIC timer {} kHz (reference {}), {} APIC",
        cal.tsc_hz / 1000,
        cal.lapic_hz / 1000,
        cal.reference,
        if lapic::is_x2apic() { "x2" } else { "x" }
    );

    if let Some(hz) = cmd.get("hz").and_then(|v| v.parse().ok()) {
        sched::set_hz(hz);
    }
    sched::init_vectors();
    trap::register(UART_VECTOR, crate::console::uart_interrupt);
    let (gsi, low, level) = acpi.irq_to_gsi(serial::COM1_IRQ);
    ioapic::route(gsi, UART_VECTOR, bsp.apic_id, low, level);
    serial::enable_rx_interrupt();

    bsp.online_since_ns.store(clock::now_ns(), Ordering::Relaxed);
    bsp.online.store(true, Ordering::Release);

    let apics: alloc::vec::Vec<u32> = acpi.usable_cpus().map(|c| c.apic_id).collect();
    let started = crate::smp::start_aps(&apics);
    let (free, total) = frame::stats();
    log::info!(
        "{} CPUs on-line, {} MiB RAM ({} MiB free), heap {} MiB",
        started + 1,
        total >> 20,
        (free * 4096) >> 20,
        heap::stats().1 >> 20
    );

    crate::net::init(acpi);

    let test = cmd.get("test").map(String::from);
    match test {
        Some(name) => {
            sched::spawn("ktest", sched::Priority::Medium, Some(0), move || crate::ktest::run(&name));
        }
        None => {
            // High, beside the default-priority lanes: the console stays
            // responsive while links are flooded.
            sched::spawn("shell", sched::Priority::High, Some(0), crate::kshell::run);
        }
    }
    sched::run_this_cpu()
}

/// Masks both 8259 PICs (the IOAPIC delivers legacy interrupts).
fn mask_8259() {
    crate::arch::port::outb(0x21, 0xff);
    crate::arch::port::outb(0xa1, 0xff);
}
