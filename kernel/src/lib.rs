//! The Arbalest kernel.
//!
//! Hardware-free modules (ACPI table parsing, the shell, the command line,
//! calendar arithmetic) build on the host and carry unit tests; everything
//! that touches the machine sits behind `cfg(target_os = "none")`.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod acpi;
pub mod cmdline;
pub mod prof;
pub mod shell;
pub mod walltime;

#[cfg(target_os = "none")]
#[macro_use]
pub mod console;
#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod dev;
#[cfg(target_os = "none")]
pub mod dma;
#[cfg(target_os = "none")]
pub mod hal;
#[cfg(target_os = "none")]
pub mod msi;
#[cfg(target_os = "none")]
pub mod net;
#[cfg(target_os = "none")]
pub mod pcicfg;
#[cfg(target_os = "none")]
pub mod fault;
#[cfg(target_os = "none")]
pub mod kmain;
#[cfg(target_os = "none")]
pub mod kshell;
#[cfg(target_os = "none")]
pub mod ktest;
#[cfg(target_os = "none")]
pub mod mem;
#[cfg(target_os = "none")]
pub mod percpu;
#[cfg(target_os = "none")]
pub mod pvh;
#[cfg(target_os = "none")]
pub mod sched;
#[cfg(target_os = "none")]
pub mod smp;
#[cfg(target_os = "none")]
pub mod time;
