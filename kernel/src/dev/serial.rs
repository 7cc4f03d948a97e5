//! The 16550 UART on COM1: polled output for the console, interrupt-driven
//! input feeding the shell.
//!
//! The receive FIFO is left disabled on purpose: QEMU holds back further
//! input until the guest reads the receive register, so nothing typed or
//! piped in before the kernel is ready is lost.

use crate::arch::port::{inb, outb};

const COM1: u16 = 0x3f8;
const THR: u16 = 0; // transmit holding (DLAB=0)
const RBR: u16 = 0; // receive buffer (DLAB=0)
const IER: u16 = 1; // interrupt enable (DLAB=0)
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const LSR_DATA_READY: u8 = 0x01;
const LSR_THR_EMPTY: u8 = 0x20;

/// The ISA IRQ line of COM1.
pub const COM1_IRQ: u8 = 4;

/// Programs 115200 8N1. Does not touch pending input.
pub fn init() {
    outb(COM1 + IER, 0x00);
    outb(COM1 + LCR, 0x80); // DLAB
    outb(COM1, 0x01); // divisor 1 = 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + LCR, 0x03); // 8N1
    outb(COM1 + MCR, 0x0b); // DTR | RTS | OUT2 (OUT2 gates the IRQ line)
}

/// Turns on the "data received" interrupt.
pub fn enable_rx_interrupt() {
    outb(COM1 + IER, 0x01);
}

/// Turns off the "data received" interrupt: what arrives waits in the
/// UART, and QEMU holds back the rest until the guest reads it.
pub fn disable_rx_interrupt() {
    outb(COM1 + IER, 0x00);
}

/// Sends one byte, waiting for the transmitter.
pub fn write_byte(b: u8) {
    let mut spins = 0u32;
    while inb(COM1 + LSR) & LSR_THR_EMPTY == 0 && spins < 1_000_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    outb(COM1 + THR, b);
}

/// Reads one received byte, if any.
pub fn read_byte() -> Option<u8> {
    if inb(COM1 + LSR) & LSR_DATA_READY != 0 {
        Some(inb(COM1 + RBR))
    } else {
        None
    }
}
