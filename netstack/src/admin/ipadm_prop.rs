//! `ipadm`'s protocol properties, as illumos ipadm(8):
//!
//! ```text
//! ipadm show-prop [[-c] -o <field>,...] [-p <prop>,...] [ip|ipv4|icmp|tcp|udp]
//! ipadm set-prop [-t] -p <prop>=<value> ip|ipv4|icmp|tcp|udp
//! ipadm reset-prop [-t] -p <prop> ip|ipv4|icmp|tcp|udp
//! ```
//!
//! Columns `PROTO PROPERTY PERM CURRENT PERSISTENT DEFAULT POSSIBLE`. The
//! properties are FireEngine's ([`crate::fireengine::tunables`]), one set
//! for every FireEngine instance; smoltcp instances keep their own fixed
//! values. Differences from illumos: nothing persists (there is no
//! configuration store), so `-t` is implied and `PERSISTENT` is always
//! `--`; `ip` is IPv4 (there is no IPv6); one property per `set-prop`.
//! Every refused command line exits non-zero, says why, and changes
//! nothing.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

use super::getopt::{OptError, getopt};
use super::ofmt::{Field, Ofmt};
use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE};
use crate::fireengine::tunables::{self, Proto, Shown, TunInfo, Tunables};

/// The usage lines of the three subcommands.
pub const SHOW_USAGE: &str = "show-prop\t[[-c] -o <field>,...] [-p <prop>,...] [ip|ipv4|icmp|tcp|udp]";
/// `set-prop` usage.
pub const SET_USAGE: &str = "set-prop\t[-t] -p <prop>=<value> ip|ipv4|icmp|tcp|udp";
/// `reset-prop` usage.
pub const RESET_USAGE: &str = "reset-prop\t[-t] -p <prop> ip|ipv4|icmp|tcp|udp";

static PROP_FIELDS: [Field; 7] = [
    Field { name: "PROTO", width: 6 },
    Field { name: "PROPERTY", width: 22 },
    Field { name: "PERM", width: 5 },
    Field { name: "CURRENT", width: 13 },
    Field { name: "PERSISTENT", width: 13 },
    Field { name: "DEFAULT", width: 13 },
    Field { name: "POSSIBLE", width: 20 },
];

fn fail(out: &mut dyn Write, msg: core::fmt::Arguments<'_>) -> i32 {
    let _ = writeln!(out, "ipadm: {msg}");
    EXIT_FAIL
}

fn usage(out: &mut dyn Write, usage: &str, msg: &str) -> i32 {
    if !msg.is_empty() {
        let _ = writeln!(out, "ipadm: {msg}");
    }
    let _ = writeln!(out, "usage: {usage}");
    EXIT_USAGE
}

fn opt_msg(e: OptError) -> String {
    match e {
        OptError::Unknown(c) => format!("unrecognized option '-{c}'"),
        OptError::MissingValue(c) => format!("option '-{c}' requires a value"),
    }
}

fn tunables_of(env: &dyn AdminEnv, out: &mut dyn Write) -> Result<alloc::sync::Arc<Tunables>, i32> {
    env.fe_tunables().ok_or_else(|| fail(out, format_args!("protocol properties are FireEngine's, and FireEngine is not available")))
}

fn proto_of(s: &str, out: &mut dyn Write) -> Result<Proto, i32> {
    Proto::parse(s).ok_or_else(|| fail(out, format_args!("invalid protocol '{s}': expected ip, ipv4, icmp, tcp or udp")))
}

/// The properties of `proto` (all protocols: `None`), in illumos' order:
/// by protocol, then by name.
fn props(proto: Option<Proto>) -> Vec<&'static TunInfo> {
    let mut v: Vec<&TunInfo> = tunables::ALL.iter().filter(|i| i.prop.is_some_and(|(p, _)| proto.is_none_or(|q| q == p))).collect();
    let rank = |i: &TunInfo| i.prop.map(|(p, n)| (Proto::ALL.iter().position(|q| *q == p).unwrap_or(0), n));
    v.sort_by_key(|i| rank(i));
    v
}

/// `ipadm show-prop`.
pub fn show_prop(args: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let p = match getopt(args, "co:p:") {
        Ok(p) => p,
        Err(e) => return usage(out, SHOW_USAGE, &opt_msg(e)),
    };
    let parsable = p.has('c');
    if parsable && p.value('o').is_none() {
        return fail(out, format_args!("-c requires -o"));
    }
    let proto = match p.operands[..] {
        [] => None,
        [s] => match proto_of(s, out) {
            Ok(pr) => Some(pr),
            Err(st) => return st,
        },
        _ => return usage(out, SHOW_USAGE, "more than one protocol given"),
    };
    let t = match tunables_of(env, out) {
        Ok(t) => t,
        Err(st) => return st,
    };
    let all = props(proto);
    let chosen: Vec<&TunInfo> = match p.value('p') {
        None => all,
        Some(list) => {
            let mut v = Vec::new();
            for name in list.split(',').filter(|n| !n.is_empty()) {
                let found: Vec<&TunInfo> = all.iter().copied().filter(|i| i.prop.is_some_and(|(_, n)| n == name)).collect();
                if found.is_empty() {
                    let what = proto.map_or("any protocol", Proto::name);
                    return fail(out, format_args!("show-prop: {name}: unknown property of {what}"));
                }
                v.extend(found);
            }
            v
        }
    };
    let mut o = match Ofmt::new(&PROP_FIELDS, p.value('o'), "proto,property,perm,current,persistent,default,possible", parsable) {
        Ok(o) => o,
        Err(e) => return fail(out, format_args!("{e}")),
    };
    for i in chosen {
        let Some((pr, name)) = i.prop else { continue };
        let row = [
            pr.name().to_string(),
            name.to_string(),
            "rw".to_string(),
            Shown(i.possible, t.get(i.tun)).to_string(),
            String::new(),
            Shown(i.possible, i.default).to_string(),
            i.possible.to_string(),
        ];
        let _ = o.row(out, &row);
    }
    0
}

/// Parses `[-t] -p ARG PROTO`, one `-p`.
fn one_prop<'a>(args: &[&'a str], use_: &str, out: &mut dyn Write) -> Result<(&'a str, Proto), i32> {
    let p = getopt(args, "tp:").map_err(|e| usage(out, use_, &opt_msg(e)))?;
    let arg = match p.count('p') {
        0 => return Err(usage(out, use_, "-p <prop> is required")),
        1 => p.value('p').unwrap_or(""),
        _ => return Err(usage(out, use_, "one property at a time")),
    };
    let proto = match p.operands[..] {
        [s] => proto_of(s, out)?,
        [] => return Err(usage(out, use_, "protocol name is required")),
        _ => return Err(usage(out, use_, "more than one protocol given")),
    };
    Ok((arg, proto))
}

fn find(out: &mut dyn Write, sub: &str, proto: Proto, name: &str) -> Result<&'static TunInfo, i32> {
    tunables::find_prop(proto, name)
        .ok_or_else(|| fail(out, format_args!("{sub}: {name}: unknown property of {}", proto.name())))
}

/// `ipadm set-prop`.
pub fn set_prop(args: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let (arg, proto) = match one_prop(args, SET_USAGE, out) {
        Ok(v) => v,
        Err(st) => return st,
    };
    let Some((name, value)) = arg.split_once('=') else {
        return usage(out, SET_USAGE, &format!("'{arg}': expected <prop>=<value>"));
    };
    if name.ends_with('+') || name.ends_with('-') {
        return fail(out, format_args!("set-prop: {}: not a multi-valued property", name.trim_end_matches(['+', '-'])));
    }
    let t = match tunables_of(env, out) {
        Ok(t) => t,
        Err(st) => return st,
    };
    let info = match find(out, "set-prop", proto, name) {
        Ok(i) => i,
        Err(st) => return st,
    };
    match t.set_str(info.tun, value) {
        Ok(()) => 0,
        Err(e) => fail(out, format_args!("cannot set {name}={value} on {}: {e}; nothing changed", proto.name())),
    }
}

/// `ipadm reset-prop`.
pub fn reset_prop(args: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let (name, proto) = match one_prop(args, RESET_USAGE, out) {
        Ok(v) => v,
        Err(st) => return st,
    };
    if name.contains('=') {
        return usage(out, RESET_USAGE, &format!("'{name}': reset-prop takes a property name, not a value"));
    }
    let t = match tunables_of(env, out) {
        Ok(t) => t,
        Err(st) => return st,
    };
    let info = match find(out, "reset-prop", proto, name) {
        Ok(i) => i,
        Err(st) => return st,
    };
    match t.reset(info.tun) {
        Ok(()) => 0,
        Err(e) => fail(out, format_args!("cannot reset {name} on {}: {e}; nothing changed", proto.name())),
    }
}
