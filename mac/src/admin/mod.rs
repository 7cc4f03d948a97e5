//! The data-link admin commands (`dladm`, `dlstat`, `flowadm`,
//! `flowstat`), as functions the kernel's shell calls with the words of
//! the command line and the links to show. Formats, options and errors
//! follow `shared/ADMIN.md` and, where it is silent, illumos.
//!
//! Conventions shared by every command here:
//!
//! * errors are printed to `out` as `dladm: message`, followed by the
//!   usage line of the (sub)command;
//! * exit status [`EXIT_OK`] (0), [`EXIT_FAILURE`] (1: an unknown link,
//!   field or bad value), [`EXIT_USAGE`] (2: a bad option, conflicting
//!   options, a missing or extra operand, an unknown subcommand);
//! * `help [subcommand]` prints the usage and exits 0.
//!
//! Nothing here sleeps or reads a clock on its own: repeating commands get
//! an [`AdminEnv`]; `dladm` and `flowadm` get a [`DladmEnv`] (the links
//! to show, entropy for random MAC addresses, the CPU count for `cpus`,
//! memory for etherstubs); `flowstat` reads the flow registry itself.

mod dladm;
mod dlstat;
mod flowadm;
mod flowstat;
pub mod getopt;
#[cfg(test)]
mod link_tests;
pub mod table;
#[cfg(test)]
mod tests;
pub mod units;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write};

pub use dladm::{DLADM_USAGE, dladm};
pub use dlstat::{DLSTAT_USAGE, dlstat};
pub use flowadm::{FLOWADM_USAGE, flowadm, parse_flow_maxbw};
pub use flowstat::{FLOWSTAT_USAGE, flowstat};

pub(crate) use dlstat::link_totals;

use crate::dma::DmaAllocator;
use crate::link::Datalink;

/// Exit status of a successful command.
pub const EXIT_OK: i32 = 0;
/// Exit status of a failed command.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status of a command given bad options or operands.
pub const EXIT_USAGE: i32 = 2;

/// What repeating commands (`dlstat -i N`) need from the kernel.
pub trait AdminEnv {
    /// Sleeps about `ms` milliseconds (may return early when interrupted).
    fn sleep_ms(&self, ms: u64);
    /// Whether the user asked the command to stop (a key was pressed).
    fn interrupted(&self) -> bool;
}

/// What `dladm` needs from the kernel.
pub trait DladmEnv {
    /// The data links commands show and act on (every link by default).
    fn datalinks(&self) -> Vec<Datalink> {
        crate::link::datalinks()
    }
    /// A fresh random number (seeds random VNIC MAC addresses).
    fn entropy(&self) -> u64;
    /// CPUs online (`cpus` ids must be below it).
    fn cpu_count(&self) -> usize;
    /// DMA memory (an etherstub's buffer pool).
    fn dma(&self) -> Arc<dyn DmaAllocator>;
}

/// Longest link name (illumos `MAXLINKNAMELEN` - 1).
pub const MAX_LINK_NAME: usize = 31;

/// Whether `name` is a valid data-link name (illumos
/// `dladm_valid_linkname`): at most [`MAX_LINK_NAME`] characters of
/// `[A-Za-z0-9_.]`, not starting with a digit, ending in a number without
/// leading zeros (`net0`, `vnic12`, `stub0`).
pub fn valid_link_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > MAX_LINK_NAME || b[0].is_ascii_digit() {
        return false;
    }
    if !b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
        return false;
    }
    let digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    let first_digit = b.len() - digits;
    digits > 0 && (digits == 1 || b[first_digit] != b'0')
}

/// Writes a usage synopsis: `usage: ` before the first line, further lines
/// aligned under it (the kernel shell's style).
pub fn write_usage(out: &mut dyn Write, usage: &str) -> fmt::Result {
    for (i, line) in usage.lines().enumerate() {
        let lead = if i == 0 { "usage: " } else { "       " };
        writeln!(out, "{lead}{line}")?;
    }
    Ok(())
}

/// A running command: its name, its (sub)command usage and the output.
pub(crate) struct Cmd<'o> {
    pub name: &'static str,
    pub usage: &'static str,
    pub out: &'o mut dyn Write,
}

impl Cmd<'_> {
    /// Prints `name: message`.
    pub fn say(&mut self, msg: fmt::Arguments<'_>) {
        let _ = writeln!(self.out, "{}: {}", self.name, msg);
    }

    /// Prints `name: message` and the usage; returns [`EXIT_USAGE`].
    pub fn usage_error(&mut self, msg: fmt::Arguments<'_>) -> i32 {
        self.say(msg);
        let _ = write_usage(self.out, self.usage);
        EXIT_USAGE
    }

    /// Prints `name: message` and the usage; returns [`EXIT_FAILURE`].
    pub fn fail(&mut self, msg: fmt::Arguments<'_>) -> i32 {
        self.say(msg);
        let _ = write_usage(self.out, self.usage);
        EXIT_FAILURE
    }

    /// The links an optional `[link]` operand selects: all of them, or the
    /// one named (an error, already printed, otherwise).
    pub fn pick_links(&mut self, links: &[Datalink], operand: Option<&str>) -> Result<Vec<Datalink>, i32> {
        let Some(name) = operand else { return Ok(links.to_vec()) };
        match self.find_link(links, name) {
            Ok(l) => Ok(alloc::vec![l]),
            Err(status) => Err(status),
        }
    }

    /// The link named `name` (an error, already printed, otherwise).
    pub fn find_link(&mut self, links: &[Datalink], name: &str) -> Result<Datalink, i32> {
        if !valid_link_name(name) {
            return Err(self.fail(format_args!("invalid link name '{name}'")));
        }
        match links.iter().find(|l| l.name() == name) {
            Some(l) => Ok(l.clone()),
            None => Err(self.fail(format_args!("link '{name}' is not valid: object not found"))),
        }
    }

    /// The common checks of a `show-linkprop`/`show-flowprop` form: at
    /// most one operand, `-c` only with `-o`, not `-c -o all`.
    pub fn prop_show_checks(&mut self, o: &getopt::Opts<'_>) -> Result<(), i32> {
        if let Some(extra) = o.operands.get(1) {
            return Err(self.usage_error(format_args!("unexpected operand '{extra}'")));
        }
        if o.has('c') {
            match o.value('o') {
                None => return Err(self.usage_error(format_args!("-c requires -o"))),
                Some(f) if f.eq_ignore_ascii_case("all") => {
                    return Err(self.usage_error(format_args!("\"-o all\" is invalid with -c")));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The common checks of a `show` form: no option twice (`-o` may
    /// repeat, the last wins), at most one operand, `-p` only with `-o`,
    /// not `-p -o all`. Returns the operand.
    pub fn show_checks<'a>(&mut self, o: &getopt::Opts<'a>) -> Result<Option<&'a str>, i32> {
        if let Some(c) = o.duplicate("o") {
            return Err(self.usage_error(format_args!("the option -{c} cannot be specified more than once")));
        }
        if let Some(extra) = o.operands.get(1) {
            return Err(self.usage_error(format_args!("unexpected operand '{extra}'")));
        }
        if o.has('p') {
            match o.value('o') {
                None => return Err(self.usage_error(format_args!("-p requires -o"))),
                Some(f) if f.eq_ignore_ascii_case("all") => {
                    return Err(self.usage_error(format_args!("\"-o all\" is invalid with -p")));
                }
                Some(_) => {}
            }
        }
        Ok(o.operands.first().copied())
    }
}
