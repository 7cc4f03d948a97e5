//! Per-CPU GDT and TSS. Each CPU gets its own TSS whose interrupt stack
//! table holds guarded stacks for the faults that must not run on a
//! possibly broken stack: double fault, NMI, machine check and page fault.

use alloc::boxed::Box;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (1-based in the IDT, 0-based here) of the double-fault stack.
pub const IST_DOUBLE_FAULT: u16 = 0;
/// IST slot of the NMI stack.
pub const IST_NMI: u16 = 1;
/// IST slot of the machine-check stack.
pub const IST_MACHINE_CHECK: u16 = 2;
/// IST slot of the page-fault stack: every page fault is fatal in this
/// kernel, and a stack overflow must still be reported (not double fault).
pub const IST_PAGE_FAULT: u16 = 3;

/// Kernel code selector (same on every CPU).
pub const KERNEL_CS: u16 = 0x08;

/// Builds and loads this CPU's GDT and TSS. `ist_tops` are the tops of
/// the stacks for the IST slots above.
pub fn init_this_cpu(ist_tops: [u64; 4]) {
    let mut tss = TaskStateSegment::new();
    for (i, top) in ist_tops.iter().enumerate() {
        tss.interrupt_stack_table[i] = VirtAddr::new(*top);
    }
    let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    let gdt: &'static GlobalDescriptorTable = Box::leak(Box::new(gdt));
    gdt.load();
    debug_assert_eq!(code.0, KERNEL_CS);
    // SAFETY: the selectors index the GDT just loaded; the TSS descriptor
    // points at a leaked (never freed) TSS, loaded once per CPU.
    unsafe {
        CS::set_reg(code);
        DS::set_reg(data);
        ES::set_reg(data);
        SS::set_reg(data);
        load_tss(tss_sel);
    }
    let _: SegmentSelector = tss_sel;
}
