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
pub mod shell;
pub mod walltime;
