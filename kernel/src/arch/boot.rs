//! The PVH entry point: QEMU (or Xen) jumps here in 32-bit protected mode
//! with paging off and `%ebx` pointing at the `hvm_start_info` structure.
//!
//! The 32-bit code identity-maps the first 4 GiB with 2 MiB pages, enters
//! long mode and calls [`crate::kmain::kmain_bsp`] on the boot stack. The
//! kernel replaces these boot page tables with its own as soon as it knows
//! the memory map (see `mem::paging`).

use core::arch::global_asm;

/// Size of the boot processor's first stack (it moves to a guarded stack
/// once memory management is up).
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4             /* name size: "Xen\0" */
    .long 4             /* descriptor size */
    .long 18            /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .long pvh_start
    .p2align 2

    .section .bss.boot, "aw", @nobits
    .p2align 12
    boot_pml4: .skip 4096
    boot_pdpt: .skip 4096
    boot_pd:   .skip 4096 * 4
    .global boot_stack_bottom
    boot_stack_bottom: .skip {stack_size}
    .global boot_stack_top
    boot_stack_top:

    .section .rodata.boot, "a"
    .p2align 3
    boot_gdt:
        .quad 0
        .quad 0x00AF9A000000FFFF    /* 0x08: 64-bit code */
        .quad 0x00CF92000000FFFF    /* 0x10: data */
    boot_gdt_end:
    boot_gdt_ptr:
        .word boot_gdt_end - boot_gdt - 1
        .long boot_gdt

    .section .text.boot, "ax"
    .code32
    .global pvh_start
    pvh_start:
        cli
        cld
        movl %ebx, %edi                 /* hvm_start_info, kept in %edi */
        movl $boot_stack_top, %esp

        /* PML4[0] -> PDPT; PDPT[0..4] -> PD0..PD3 */
        movl $boot_pdpt, %eax
        orl $0x3, %eax
        movl %eax, boot_pml4
        xorl %ecx, %ecx
    1:  movl %ecx, %eax
        shll $12, %eax
        addl $boot_pd, %eax
        orl $0x3, %eax
        movl %eax, boot_pdpt(,%ecx,8)
        incl %ecx
        cmpl $4, %ecx
        jne 1b

        /* 2048 PD entries: 2 MiB pages covering 0..4 GiB */
        xorl %ecx, %ecx
    2:  movl %ecx, %eax
        shll $21, %eax
        orl $0x83, %eax                 /* present | writable | huge */
        movl %eax, boot_pd(,%ecx,8)
        movl %ecx, %eax
        shrl $11, %eax                  /* high dword: (i * 2 MiB) >> 32 */
        movl %eax, boot_pd+4(,%ecx,8)
        incl %ecx
        cmpl $2048, %ecx
        jne 2b

        movl %cr4, %eax
        orl $(1 << 5), %eax             /* PAE */
        movl %eax, %cr4
        movl $boot_pml4, %eax
        movl %eax, %cr3
        movl $0xC0000080, %ecx          /* EFER */
        rdmsr
        orl $(1 << 8), %eax             /* LME */
        wrmsr
        movl %cr0, %eax
        orl $0x80010001, %eax           /* PG | WP | PE */
        movl %eax, %cr0
        lgdt boot_gdt_ptr
        ljmp $0x08, $pvh_long_mode

    .code64
    pvh_long_mode:
        movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        xorw %ax, %ax
        movw %ax, %fs
        movw %ax, %gs
        movq $boot_stack_top, %rsp
        xorq %rbp, %rbp
        movl %edi, %edi                 /* zero-extend the start-info address */
        call {kmain}
    3:  cli
        hlt
        jmp 3b
    "#,
    stack_size = const BOOT_STACK_SIZE,
    kmain = sym crate::kmain::kmain_bsp,
    options(att_syntax)
);
