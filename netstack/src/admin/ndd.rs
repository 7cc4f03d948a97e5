//! `ndd` for FireEngine's drivers, as illumos ndd(8):
//!
//! ```text
//! ndd /dev/ip|/dev/icmp|/dev/udp|/dev/tcp [\?]     every variable, value, default, range
//! ndd [-get] /dev/ip|/dev/icmp|/dev/udp|/dev/tcp name   one value
//! ndd -set /dev/ip|/dev/icmp|/dev/udp|/dev/tcp name value
//! ```
//!
//! The variables are [`crate::fireengine::tunables`]' (the `ipadm`
//! properties under their `ndd` names, and the squeue tunables). A refused
//! `-set` says why, exits 1 and changes nothing. Values are numbers in
//! illumos' units (ms for intervals; 1/0 for on/off; `sack`'s and `ecn`'s
//! 0/1/2), except `tcp_congestion_control`, which is a name; `-set`
//! takes either form for named values. (`/dev/mac` is the MAC
//! layer's and stays with the kernel's `ndd`, which hands the others here.)

use core::fmt::Write;

use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE};
use alloc::string::ToString;

use crate::fireengine::tunables::{self, NddDev, NddShown, Possible, TunInfo, Tunables};

/// The usage lines.
pub const USAGE: &str = "ndd [-get] /dev/ip|/dev/icmp|/dev/udp|/dev/tcp [\\?|name]\nndd -set /dev/ip|/dev/icmp|/dev/udp|/dev/tcp name value";

/// `ndd` (`argv[0]` is `ndd`).
pub fn ndd(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let (set, rest) = match argv.get(1) {
        Some(&"-set") => (true, argv.get(2..).unwrap_or(&[])),
        Some(&"-get") => match argv.get(2..).unwrap_or(&[]) {
            r @ [_, _] => (false, r),
            _ => return usage(out),
        },
        _ => (false, argv.get(1..).unwrap_or(&[])),
    };
    let Some((&path, rest)) = rest.split_first() else { return usage(out) };
    let Some(dev) = NddDev::parse(path) else {
        let _ = writeln!(out, "ndd: {path}: no such driver (drivers with tunables: /dev/mac, /dev/ip, /dev/icmp, /dev/udp, /dev/tcp)");
        return EXIT_FAIL;
    };
    let Some(t) = env.fe_tunables() else {
        let _ = writeln!(out, "ndd: {path}: FireEngine is not available");
        return EXIT_FAIL;
    };
    match (set, rest) {
        (false, []) | (false, ["?"]) | (false, ["\\?"]) => {
            list(&t, dev, out);
            0
        }
        (false, [name]) => match tunables::find_ndd(dev, name) {
            Some(i) => {
                let _ = writeln!(out, "{}", NddShown(i.possible, t.get(i.tun)));
                0
            }
            None => no_such(out, path, name),
        },
        (true, [name, value]) => {
            let Some(i) = tunables::find_ndd(dev, name) else { return no_such(out, path, name) };
            match t.set_str(i.tun, value) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(out, "ndd: cannot set {name} to '{value}': {e}; nothing changed");
                    EXIT_FAIL
                }
            }
        }
        _ => usage(out),
    }
}

fn usage(out: &mut dyn Write) -> i32 {
    let _ = writeln!(out, "usage: {}", USAGE.replace('\n', "\n       "));
    EXIT_USAGE
}

fn no_such(out: &mut dyn Write, path: &str, name: &str) -> i32 {
    let _ = writeln!(out, "ndd: {path}: no such variable '{name}' (ndd {path} \\? lists them)");
    EXIT_FAIL
}

fn list(t: &Tunables, dev: NddDev, out: &mut dyn Write) {
    for i in tunables::ALL.iter().filter(|i| i.ndd.0 == dev) {
        let (now, default) = (NddShown(i.possible, t.get(i.tun)), NddShown(i.possible, i.default));
        let _ = writeln!(out, "{:<29} {:>9}  (read and write; default {default}, {}) {}", i.ndd.1, now.to_string(), range(i), i.description);
    }
}

fn range(i: &TunInfo) -> alloc::string::String {
    match i.possible {
        Possible::Range(lo, hi) => alloc::format!("{lo}..{hi}"),
        Possible::OnOff => alloc::string::String::from("0..1"),
        Possible::Enum { names, ndd_numeric: true } => {
            let listed: alloc::vec::Vec<alloc::string::String> =
                names.iter().enumerate().map(|(k, n)| alloc::format!("{k} {n}")).collect();
            alloc::format!("0..{}: {}", names.len().saturating_sub(1), listed.join(", "))
        }
        Possible::Enum { names, ndd_numeric: false } => names.join("|"),
    }
}
