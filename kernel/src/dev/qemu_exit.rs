//! Ending the machine: QEMU's `isa-debug-exit` device at port 0xf4.
//!
//! Writing `v` makes QEMU exit with status `(v << 1) | 1`; `bootimage`
//! turns that back into `v`. The kernel's conventions for `v` live here.

use crate::arch::port::outl;

/// Kernel test passed / `poweroff` without a code.
pub const EXIT_SUCCESS: u32 = 0;
/// Kernel test failed.
pub const EXIT_FAILURE: u32 = 1;
/// Kernel panic.
pub const EXIT_PANIC: u32 = 101;
/// Unhandled CPU exception.
pub const EXIT_EXCEPTION: u32 = 102;

/// Ends QEMU with exit value `code`. Halts forever if the device is absent.
pub fn exit(code: u32) -> ! {
    outl(0xf4, code);
    loop {
        crate::arch::halt_forever();
    }
}
