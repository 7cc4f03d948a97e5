//! Port I/O: the one place the kernel executes `in`/`out`.

use core::arch::asm;

/// Writes a byte to an I/O port.
#[inline]
pub fn outb(port: u16, val: u8) {
    // SAFETY: port I/O has no memory effects; callers name ports of devices
    // the kernel owns (UART, PIC, PIT, RTC, debug-exit).
    unsafe { asm!("out dx, al", in("dx") port, in("al") val, options(nomem, nostack, preserves_flags)) }
}

/// Reads a byte from an I/O port.
#[inline]
pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: as for `outb`.
    unsafe { asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags)) }
    v
}

/// Writes a 32-bit value to an I/O port.
#[inline]
pub fn outl(port: u16, val: u32) {
    // SAFETY: as for `outb`.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") val, options(nomem, nostack, preserves_flags)) }
}

/// Reads a 32-bit value from an I/O port.
#[inline]
pub fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: as for `outb`.
    unsafe { asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack, preserves_flags)) }
    v
}

/// Writes a 16-bit value to an I/O port.
#[inline]
pub fn outw(port: u16, val: u16) {
    // SAFETY: as for `outb`.
    unsafe { asm!("out dx, ax", in("dx") port, in("ax") val, options(nomem, nostack, preserves_flags)) }
}
