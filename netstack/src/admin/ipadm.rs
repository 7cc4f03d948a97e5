//! `ipadm`: IP interfaces and their addresses, as illumos ipadm(8).
//!
//! ```text
//! ipadm create-ip [-t] [-s fireengine|smoltcp] <IP-interface>
//! ipadm delete-ip <IP-interface>
//! ipadm show-if [[-p] -o <field>,...] [<interface>]
//! ipadm create-addr [-t] -T static -a [local=]addr[/prefixlen] <addrobj>
//! ipadm delete-addr <addrobj>
//! ipadm show-addr [[-p] -o <field>,...] [<addrobj>]
//! ipadm show-prop|set-prop|reset-prop ...   (see `ipadm_prop`)
//! ipadm help [<subcommand>]
//! ```
//!
//! Differences from illumos: everything is temporary (`-t` is accepted and
//! implied); `create-addr` creates the IP interface when it does not exist
//! yet; an address object may be given as the bare interface (`net0`),
//! which names `net0/v4` (or `net0/_a`, `_b`, ... once `v4` is taken);
//! without a prefix the class mask applies; only `static` IPv4 addresses.
//!
//! The loopback: every FireEngine instance has its own `lo0` with
//! `lo0/v4` 127.0.0.1/8 (as every illumos zone has its own), made with
//! the instance and gone with it. `show-if` and `show-addr` list it once,
//! `show-if`'s OVER naming the instances that have one; `create-ip`,
//! `delete-ip` and address changes on `lo0` are refused.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use super::getopt::{OptError, getopt};
use super::ofmt::{Field, Ofmt};
use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE, valid_link_name};
use crate::config::{Ipv4Net, classful_prefix};
use crate::stack::{IpStack, NetError, StackKind};

const SUBCOMMANDS: &[(&str, &str)] = &[
    ("create-ip", "create-ip\t[-t] [-s fireengine|smoltcp] <IP-interface>"),
    ("delete-ip", "delete-ip\t<IP-interface>"),
    ("show-if", "show-if\t\t[[-p] -o <field>,...] [<interface>]"),
    ("create-addr", "create-addr\t[-t] -T static -a [local=]addr[/prefixlen] <addrobj>"),
    ("delete-addr", "delete-addr\t<addrobj>"),
    ("show-addr", "show-addr\t[[-p] -o <field>,...] [<addrobj>]"),
    ("show-prop", super::ipadm_prop::SHOW_USAGE),
    ("set-prop", super::ipadm_prop::SET_USAGE),
    ("reset-prop", super::ipadm_prop::RESET_USAGE),
    ("help", "help\t\t[<subcommand>]"),
];

static ADDR_FIELDS: [Field; 6] = [
    Field { name: "ADDROBJ", width: 18 },
    Field { name: "TYPE", width: 9 },
    Field { name: "STATE", width: 13 },
    Field { name: "CURRENT", width: 8 },
    Field { name: "PERSISTENT", width: 11 },
    Field { name: "ADDR", width: 46 },
];

static IF_FIELDS: [Field; 8] = [
    Field { name: "IFNAME", width: 11 },
    Field { name: "CLASS", width: 9 },
    Field { name: "STATE", width: 9 },
    Field { name: "ACTIVE", width: 7 },
    Field { name: "STACK", width: 11 },
    Field { name: "CURRENT", width: 14 },
    Field { name: "PERSISTENT", width: 11 },
    Field { name: "OVER", width: 44 },
];

/// The loopback interface's name.
pub const LOOPBACK: &str = "lo0";

/// The instances that have a loopback, by name.
fn loopback_owners(env: &dyn AdminEnv) -> Vec<String> {
    env.instances().iter().filter(|i| i.has_loopback()).map(|i| i.name().to_string()).collect()
}

/// Longest address object name (`IPADM_AOBJSIZ` less the NUL).
const AOBJ_MAX: usize = 63;

/// `ipadm` (`argv[0]` is `ipadm`).
pub fn ipadm(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let Some(&sub) = argv.get(1) else {
        usage_all(out);
        return EXIT_USAGE;
    };
    let args = &argv[2..];
    match sub {
        "create-ip" | "create-if" => create_ip(args, env, out),
        "delete-ip" | "delete-if" => delete_ip(args, env, out),
        "show-if" => show_if(args, env, out),
        "create-addr" => create_addr(args, env, out),
        "delete-addr" => delete_addr(args, env, out),
        "show-addr" => show_addr(args, env, out),
        "show-prop" => super::ipadm_prop::show_prop(args, env, out),
        "set-prop" => super::ipadm_prop::set_prop(args, env, out),
        "reset-prop" => super::ipadm_prop::reset_prop(args, env, out),
        "help" | "-?" | "--help" => help(args, out),
        _ => {
            let _ = writeln!(out, "ipadm: unknown subcommand '{sub}'");
            usage_all(out);
            EXIT_USAGE
        }
    }
}

fn usage_all(out: &mut dyn Write) {
    let _ = writeln!(out, "usage:  ipadm <subcommand> <args> ...");
    for (_, u) in SUBCOMMANDS {
        let _ = writeln!(out, "\t{u}");
    }
}

fn usage_of(sub: &str) -> &'static str {
    SUBCOMMANDS.iter().find(|(n, _)| *n == sub).map_or("", |(_, u)| u)
}

/// `ipadm: MSG` then the subcommand's usage; the usage status.
fn die_usage(out: &mut dyn Write, sub: &str, msg: &str) -> i32 {
    if !msg.is_empty() {
        let _ = writeln!(out, "ipadm: {msg}");
    }
    let _ = writeln!(out, "usage: {}", usage_of(sub));
    EXIT_USAGE
}

fn die_opt(out: &mut dyn Write, sub: &str, e: OptError) -> i32 {
    let msg = match e {
        OptError::Unknown(c) => format!("unrecognized option '-{c}'"),
        OptError::MissingValue(c) => format!("option '-{c}' requires a value"),
    };
    die_usage(out, sub, &msg)
}

fn die(out: &mut dyn Write, msg: core::fmt::Arguments<'_>) -> i32 {
    let _ = writeln!(out, "ipadm: {msg}");
    EXIT_FAIL
}

fn help(args: &[&str], out: &mut dyn Write) -> i32 {
    match args.first() {
        Some(sub) if SUBCOMMANDS.iter().any(|(n, _)| n == sub) => {
            let _ = writeln!(out, "usage: {}", usage_of(sub));
            0
        }
        Some(sub) => {
            let _ = writeln!(out, "ipadm: unknown subcommand '{sub}'");
            usage_all(out);
            EXIT_USAGE
        }
        None => {
            usage_all(out);
            0
        }
    }
}

fn create_ip(args: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let p = match getopt(args, "ts:") {
        Ok(p) => p,
        Err(e) => return die_opt(out, "create-ip", e),
    };
    let [ifname] = p.operands[..] else { return die_usage(out, "create-ip", "") };
    let stack = match p.value('s') {
        None => None,
        Some(s) => match StackKind::parse(s) {
            Some(k) => Some(k),
            None => return die_usage(out, "create-ip", &format!("invalid stack '{s}': expected fireengine or smoltcp")),
        },
    };
    if !valid_link_name(ifname) {
        return die(out, format_args!("cannot create interface {ifname}: Invalid interface name"));
    }
    if ifname == LOOPBACK {
        return die(out, format_args!("cannot create interface {ifname}: {}", NetError::InterfaceExists));
    }
    if env.instance(ifname).is_some() {
        return die(out, format_args!("cannot create interface {ifname}: {}", NetError::InterfaceExists));
    }
    match env.create_if(ifname, stack) {
        Ok(_) => 0,
        Err(e) => die(out, format_args!("cannot create interface {ifname}: {e}")),
    }
}

fn delete_ip(args: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let p = match getopt(args, "") {
        Ok(p) => p,
        Err(e) => return die_opt(out, "delete-ip", e),
    };
    let [ifname] = p.operands[..] else { return die_usage(out, "delete-ip", "") };
    if ifname == LOOPBACK {
        return die(out, format_args!("cannot delete interface {ifname}: the loopback is part of every FireEngine instance"));
    }
    match env.delete_if(ifname) {
        Ok(()) => 0,
        Err(e) => die(out, format_args!("cannot delete interface {ifname}: {e}")),
    }
}

/// An address object as given: interface and optional name after `/`.
fn parse_addrobj(s: &str) -> Option<(&str, Option<&str>)> {
    if s.len() > AOBJ_MAX {
        return None;
    }
    let (ifname, name) = match s.split_once('/') {
        Some((i, n)) => (i, Some(n)),
        None => (s, None),
    };
    if !valid_link_name(ifname) {
        return None;
    }
    if let Some(n) = name {
        let b = n.as_bytes();
        let first_ok = !b.is_empty() && (b[0].is_ascii_alphabetic() || b[0] == b'_');
        if !first_ok || !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            return None;
        }
    }
    Some((ifname, name))
}

/// The name `create-addr IFNAME` gives: `v4`, else `_a`, `_b`, ...
fn auto_name(inst: &dyn IpStack) -> Option<String> {
    let ifname = inst.name();
    let taken = inst.addrs();
    let free = |n: &str| !taken.iter().any(|a| a.name == n);
    let v4 = format!("{ifname}/v4");
    if free(&v4) {
        return Some(v4);
    }
    (b'a'..=b'z').map(|c| format!("{ifname}/_{}", c as char)).find(|n| free(n))
}

fn create_addr(args: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    const SUB: &str = "create-addr";
    let p = match getopt(args, "T:a:t") {
        Ok(p) => p,
        Err(e) => return die_opt(out, SUB, e),
    };
    let (Some(atype), [aobj]) = (p.value('T'), &p.operands[..]) else {
        return die_usage(out, SUB, "invalid arguments");
    };
    let Some((ifname, name)) = parse_addrobj(aobj) else {
        return die_usage(out, SUB, &format!("invalid address object name: {aobj}"));
    };
    if ifname == LOOPBACK {
        return die(out, format_args!("cannot create address: lo0 has 127.0.0.1/8 only"));
    }
    match atype {
        "static" => {}
        "dhcp" | "addrconf" => return die(out, format_args!("cannot create address: {}", NetError::NotSupported)),
        _ => return die(out, format_args!("invalid address type {atype}")),
    }
    let Some(addr_arg) = p.value('a') else {
        return die_usage(out, SUB, &format!("invalid arguments for type {atype}"));
    };
    if p.count('a') > 1 {
        return die(out, format_args!("multiple local addresses provided"));
    }
    let local = match addr_arg.split_once('=') {
        None => addr_arg,
        Some(("local", v)) => v,
        Some(("remote", _)) => return die(out, format_args!("cannot create address: {}", NetError::NotSupported)),
        Some(_) => return die_usage(out, SUB, "invalid address provided"),
    };
    let net = match Ipv4Net::parse_with(local, classful_prefix) {
        Some(n) if crate::config::check_host_addr(n).is_ok() => n,
        _ => return die(out, format_args!("cannot set local address: {}", NetError::InvalidAddress)),
    };
    if env.instances().iter().any(|i| i.addrs().iter().any(|a| a.net.addr() == net.addr())) {
        return die(out, format_args!("cannot create address: {}", NetError::AddrInUse));
    }
    let inst: Arc<dyn IpStack> = match env.instance(ifname) {
        Some(i) => i,
        None => match env.create_if(ifname, None) {
            Ok(i) => i,
            Err(e) => return die(out, format_args!("cannot create address: {e}")),
        },
    };
    let full = match name {
        Some(n) => format!("{ifname}/{n}"),
        None => match auto_name(&*inst) {
            Some(n) => n,
            None => return die(out, format_args!("cannot create address: {}", NetError::TooManyAddresses)),
        },
    };
    match inst.add_addr(&full, net) {
        Ok(()) => {
            env.poll_now();
            0
        }
        Err(e) => die(out, format_args!("cannot create address: {e}")),
    }
}

fn delete_addr(args: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    const SUB: &str = "delete-addr";
    let p = match getopt(args, "") {
        Ok(p) => p,
        Err(e) => return die_opt(out, SUB, e),
    };
    let [aobj] = p.operands[..] else { return die_usage(out, SUB, "") };
    let Some((ifname, name)) = parse_addrobj(aobj) else {
        return die(out, format_args!("cannot delete address: {}", NetError::NotFound));
    };
    let full = format!("{ifname}/{}", name.unwrap_or("v4"));
    if ifname == LOOPBACK {
        return die(out, format_args!("cannot delete address: lo0/v4 is part of every FireEngine instance"));
    }
    let Some(inst) = env.instance(ifname) else {
        return die(out, format_args!("cannot delete address: {}", NetError::NotFound));
    };
    match inst.del_addr(&full) {
        Ok(_) => 0,
        Err(e) => die(out, format_args!("cannot delete address: {e}")),
    }
}

/// `-p`, `-o` handling shared by the show subcommands.
fn open_ofmt(
    sub: &str,
    fields: &'static [Field],
    default: &str,
    args: &[&str],
    out: &mut dyn Write,
) -> Result<(Ofmt, Option<String>), i32> {
    let p = getopt(args, "po:").map_err(|e| die_opt(out, sub, e))?;
    let parsable = p.has('p');
    let spec = p.value('o');
    if parsable && spec.is_none() {
        return Err(die(out, format_args!("-p requires -o")));
    }
    let target = match p.operands[..] {
        [] => None,
        [t] => Some(t.to_string()),
        _ => return Err(die_usage(out, sub, "")),
    };
    let o = Ofmt::new(fields, spec, default, parsable).map_err(|e| die(out, format_args!("{e}")))?;
    Ok((o, target))
}

fn show_addr(args: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let (mut o, target) = match open_ofmt("show-addr", &ADDR_FIELDS, "addrobj,type,state,addr", args, out) {
        Ok(v) => v,
        Err(status) => return status,
    };
    // `net0/` or `net0`: that interface; `net0/v4`: that object.
    let (ifname, aname) = match target.as_deref() {
        None => (None, None),
        Some(t) => match t.split_once('/') {
            Some((i, "")) => (Some(i), None),
            Some(_) => (t.split_once('/').map(|(i, _)| i), Some(t)),
            None => (Some(t), None),
        },
    };
    let lo = !loopback_owners(env).is_empty();
    if let Some(i) = ifname
        && env.instance(i).is_none()
        && !(i == LOOPBACK && lo)
    {
        return die(out, format_args!("cannot get address information: {}", NetError::NoSuchInterface));
    }
    let mut found = false;
    if lo && ifname.is_none_or(|i| i == LOOPBACK) && aname.is_none_or(|n| n == "lo0/v4") {
        found = true;
        let row = vec!["lo0/v4".to_string(), "static".to_string(), "ok".to_string(), "U--t-".to_string(), "---".to_string(), "127.0.0.1/8".to_string()];
        let _ = o.row(out, &row);
    }
    for inst in env.instances() {
        if ifname.is_some_and(|i| i != inst.name()) {
            continue;
        }
        let link_state = if inst.link().link_up() { "ok" } else { "inaccessible" };
        for a in inst.addrs() {
            if aname.is_some_and(|n| n != a.name) {
                continue;
            }
            found = true;
            let state = match inst.addr_state(&a.name) {
                Some(s) if link_state == "ok" => s,
                _ => link_state,
            };
            let row = vec![a.name.clone(), "static".to_string(), state.to_string(), "U--t-".to_string(), "---".to_string(), a.net.to_string()];
            let _ = o.row(out, &row);
        }
    }
    if aname.is_some() && !found {
        return die(out, format_args!("address object not found"));
    }
    0
}

fn show_if(args: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let (mut o, target) = match open_ofmt("show-if", &IF_FIELDS, "ifname,class,state,active,stack,over", args, out) {
        Ok(v) => v,
        Err(status) => return status,
    };
    let owners = loopback_owners(env);
    if !owners.is_empty() && target.as_deref().is_none_or(|t| t == LOOPBACK) {
        let row = vec![
            LOOPBACK.to_string(),
            "loopback".to_string(),
            "ok".to_string(),
            "yes".to_string(),
            StackKind::FireEngine.name().to_string(),
            "-m4---------".to_string(),
            "----".to_string(),
            owners.join(","),
        ];
        let _ = o.row(out, &row);
        if target.is_some() {
            return 0;
        }
    }
    let list: Vec<Arc<dyn IpStack>> = match target.as_deref() {
        None => env.instances(),
        Some(t) => match env.instance(t) {
            Some(i) => vec![i],
            None => {
                return die(out, format_args!("cannot get information for interface(s): {}", NetError::NoSuchInterface));
            }
        },
    };
    for inst in list {
        let state = if inst.link().link_up() { "ok" } else { "failed" };
        let row = vec![
            inst.name().to_string(),
            "ip".to_string(),
            state.to_string(),
            "yes".to_string(),
            inst.stack_kind().name().to_string(),
            "bm4---------".to_string(),
            "----".to_string(),
            String::new(),
        ];
        let _ = o.row(out, &row);
    }
    0
}
