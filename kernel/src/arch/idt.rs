//! The interrupt descriptor table, shared by all CPUs. Every vector points
//! at its entry stub in [`super::trap`]; the faults with their own stacks
//! use the IST slots of [`super::gdt`].

use core::arch::asm;
use core::mem::size_of;

use super::gdt;

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const EMPTY: Gate = Gate { offset_low: 0, selector: 0, ist: 0, type_attr: 0, offset_mid: 0, offset_high: 0, reserved: 0 };

    fn interrupt(handler: u64, ist: Option<u16>) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: gdt::KERNEL_CS,
            ist: ist.map(|i| i as u8 + 1).unwrap_or(0),
            type_attr: 0x8e, // present, DPL 0, 64-bit interrupt gate
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: spin::Once<Idt> = spin::Once::new();

#[repr(C, packed)]
struct Pointer {
    limit: u16,
    base: u64,
}

/// Builds the IDT (once) and loads it on this CPU.
pub fn load() {
    let idt = IDT.call_once(|| {
        let mut gates = [Gate::EMPTY; 256];
        for (v, gate) in gates.iter_mut().enumerate() {
            let ist = match v {
                2 => Some(gdt::IST_NMI),
                8 => Some(gdt::IST_DOUBLE_FAULT),
                14 => Some(gdt::IST_PAGE_FAULT),
                18 => Some(gdt::IST_MACHINE_CHECK),
                _ => None,
            };
            *gate = Gate::interrupt(super::trap::stub_address(v as u8), ist);
        }
        Idt(gates)
    });
    let ptr = Pointer { limit: (size_of::<Idt>() - 1) as u16, base: idt as *const Idt as u64 };
    // SAFETY: the IDT is a 'static table of valid gates pointing at the
    // trap stubs; LIDT only reads the pointer structure.
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) };
}
