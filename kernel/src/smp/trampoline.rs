//! The AP start-up code: 16-bit real mode at 0x8000 → 32-bit protected
//! mode → long mode with the kernel's page tables → `ap_main(id)` on the
//! stack the boot CPU prepared. Assembled position-dependent for 0x8000
//! and copied there before each start-up IPI, together with a mailbox
//! (CR3, stack, entry, argument).

use core::arch::global_asm;

global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .global ap_tramp_start
    .global ap_tramp_end
    .global ap_tramp_mailbox
    .set TBASE, 0x8000
    .code16
    ap_tramp_start:
        cli
        cld
        xorw %ax, %ax
        movw %ax, %ds
        lgdtl (TBASE + ap_tramp_gdt_ptr - ap_tramp_start)
        movl %cr0, %eax
        orl $1, %eax
        movl %eax, %cr0
        ljmpl $0x18, $(TBASE + ap_tramp_pm32 - ap_tramp_start)

    .code32
    ap_tramp_pm32:
        movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        movl %cr4, %eax
        orl $(1 << 5), %eax
        movl %eax, %cr4
        movl (TBASE + ap_tramp_mailbox - ap_tramp_start), %eax
        movl %eax, %cr3
        movl $0xC0000080, %ecx
        rdmsr
        orl $(1 << 8), %eax
        wrmsr
        movl %cr0, %eax
        orl $0x80010001, %eax
        movl %eax, %cr0
        ljmpl $0x08, $(TBASE + ap_tramp_lm64 - ap_tramp_start)

    .code64
    ap_tramp_lm64:
        movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        movq (TBASE + ap_tramp_mailbox - ap_tramp_start + 8), %rsp
        movq (TBASE + ap_tramp_mailbox - ap_tramp_start + 16), %rax
        movq (TBASE + ap_tramp_mailbox - ap_tramp_start + 24), %rdi
        xorq %rbp, %rbp
        callq *%rax
    1:  cli
        hlt
        jmp 1b

    .p2align 3
    ap_tramp_gdt:
        .quad 0
        .quad 0x00AF9A000000FFFF    /* 0x08: 64-bit code */
        .quad 0x00CF92000000FFFF    /* 0x10: data */
        .quad 0x00CF9A000000FFFF    /* 0x18: 32-bit code */
    ap_tramp_gdt_ptr:
        .word ap_tramp_gdt_ptr - ap_tramp_gdt - 1
        .long TBASE + ap_tramp_gdt - ap_tramp_start
    .p2align 3
    ap_tramp_mailbox:
        .quad 0     /* CR3 */
        .quad 0     /* stack top */
        .quad 0     /* entry */
        .quad 0     /* argument */
    ap_tramp_end:
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_tramp_start: u8;
    static ap_tramp_end: u8;
    static ap_tramp_mailbox: u8;
}

/// Copies the start-up code to `base` and fills in its mailbox.
pub fn install(base: u64, cr3: u64, stack_top: u64, entry: u64, arg: u64) {
    // Linker symbols of the assembled code: only their addresses are taken.
    let (start, end, mailbox) =
        (&raw const ap_tramp_start as u64, &raw const ap_tramp_end as u64, &raw const ap_tramp_mailbox as u64);
    let len = (end - start) as usize;
    assert!(len <= 4096);
    let mb = base + (mailbox - start);
    // SAFETY: `base` is the reserved page below 1 MiB that no allocator hands
    // out (frames under 1 MiB stay reserved), identity mapped; no AP runs
    // from it while we write (APs start one at a time).
    unsafe {
        core::ptr::copy_nonoverlapping(start as *const u8, base as *mut u8, len);
        core::ptr::write_volatile(mb as *mut u64, cr3);
        core::ptr::write_volatile((mb + 8) as *mut u64, stack_top);
        core::ptr::write_volatile((mb + 16) as *mut u64, entry);
        core::ptr::write_volatile((mb + 24) as *mut u64, arg);
    }
}
