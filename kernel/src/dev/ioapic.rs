//! The I/O APIC: routes legacy (ISA) interrupt lines to vectors on a
//! chosen CPU, honouring the ACPI interrupt source overrides.

use spin::Mutex;

struct IoApic {
    base: u64,
    gsi_base: u32,
    lines: u32,
}

static IOAPICS: Mutex<alloc::vec::Vec<IoApic>> = Mutex::new(alloc::vec::Vec::new());

fn reg_read(base: u64, reg: u32) -> u32 {
    // SAFETY: `base` is an IOAPIC register window from the MADT, mapped
    // uncached; IOREGSEL at +0, IOWIN at +0x10. Callers hold IOAPICS.
    unsafe {
        core::ptr::write_volatile(base as *mut u32, reg);
        core::ptr::read_volatile((base + 0x10) as *const u32)
    }
}

fn reg_write(base: u64, reg: u32, val: u32) {
    // SAFETY: as for `reg_read`.
    unsafe {
        core::ptr::write_volatile(base as *mut u32, reg);
        core::ptr::write_volatile((base + 0x10) as *mut u32, val);
    }
}

/// Registers an IOAPIC and masks all its lines.
pub fn add(base: u64, gsi_base: u32) {
    crate::mem::paging::map_mmio(base, 4096);
    let lines = ((reg_read(base, 1) >> 16) & 0xff) + 1;
    for i in 0..lines {
        reg_write(base, 0x10 + 2 * i, 1 << 16);
        reg_write(base, 0x11 + 2 * i, 0);
    }
    crate::arch::without_interrupts(|| IOAPICS.lock().push(IoApic { base, gsi_base, lines }));
}

/// Routes global system interrupt `gsi` to `vector` on the CPU with APIC
/// id `dest`. Returns false if no IOAPIC serves that GSI.
pub fn route(gsi: u32, vector: u8, dest: u32, active_low: bool, level: bool) -> bool {
    crate::arch::without_interrupts(|| {
        let io = IOAPICS.lock();
        for a in io.iter() {
            if gsi >= a.gsi_base && gsi < a.gsi_base + a.lines {
                let pin = gsi - a.gsi_base;
                let mut lo = vector as u32;
                if active_low {
                    lo |= 1 << 13;
                }
                if level {
                    lo |= 1 << 15;
                }
                // Physical destination mode: the APIC id sits in bits 56..63.
                let hi = dest << 24;
                reg_write(a.base, 0x11 + 2 * pin, hi);
                reg_write(a.base, 0x10 + 2 * pin, lo);
                return true;
            }
        }
        false
    })
}
