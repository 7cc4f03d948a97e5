//! The bootable Arbalest kernel image. Everything lives in the library;
//! the entry point is `pvh_start` (see `arch::boot`), named by the linker
//! script.
#![no_std]
#![no_main]

extern crate arbalest_kernel;

/// Keeps the library's boot code in the link.
#[used]
static ENTRY: extern "C" fn(u32) -> ! = arbalest_kernel::kmain::kmain_bsp;
