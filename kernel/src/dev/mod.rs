//! Platform devices the kernel itself drives: the console UART, interrupt
//! controllers, timers and clocks, and QEMU's exit device.

pub mod fwcfg;
pub mod hpet;
pub mod ioapic;
pub mod lapic;
pub mod pmtimer;
pub mod qemu_exit;
pub mod rtc;
pub mod serial;
