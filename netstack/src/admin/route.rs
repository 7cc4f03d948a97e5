//! `route`: static routes, as illumos route(8) for the `add` and `delete`
//! commands.
//!
//! ```text
//! route [-n] [-q] add    [-net|-host] destination gateway [-netmask mask] [-ifp ifname]
//! route [-n] [-q] delete [-net|-host] destination [gateway] [-netmask mask] [-ifp ifname]
//! route help
//! ```
//!
//! `destination` is `default`, `ADDR/PREFIX`, or `ADDR` (a host unless
//! `-net`, `-netmask` or a zero host part under its class mask say it is a
//! network). The route goes to the IP interface whose subnet holds the
//! gateway (or the `-ifp` one). On success route prints
//! `add net default: gateway 10.0.0.1` (`-q` silences it); on failure the
//! same line ends in `: REASON`.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt::Write;
use core::net::Ipv4Addr;

use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE};
use crate::config::{Ipv4Net, classful_prefix, parse_addr, parse_prefix, prefix_from_mask};
use crate::stack::{IpStack, NetError};

const USAGE: &str = "usage: route [-nq] {add | delete} [-net | -host] destination [gateway] [-netmask mask] [-ifp ifname]";

/// `route` (`argv[0]` is `route`).
pub fn route(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let mut args = argv.get(1..).unwrap_or(&[]);
    let mut quiet = false;
    while let Some(a) = args.first().filter(|a| a.starts_with('-') && a.len() > 1) {
        for c in a[1..].chars() {
            match c {
                'n' | 'v' => {}
                'q' => quiet = true,
                _ => return usage(out, Some(&format!("illegal option -- {c}"))),
            }
        }
        args = &args[1..];
    }
    match args.first().copied() {
        Some("add") => change(true, &args[1..], quiet, env, out),
        Some("delete") | Some("del") => change(false, &args[1..], quiet, env, out),
        Some("help") => {
            let _ = writeln!(out, "{USAGE}");
            0
        }
        Some(other) => usage(out, Some(&format!("unknown command: {other}"))),
        None => usage(out, None),
    }
}

fn usage(out: &mut dyn Write, msg: Option<&str>) -> i32 {
    if let Some(m) = msg {
        let _ = writeln!(out, "route: {m}");
    }
    let _ = writeln!(out, "{USAGE}");
    EXIT_USAGE
}

/// What the command line asks for.
struct Request<'a> {
    dest: Ipv4Net,
    host: bool,
    gateway: Option<Ipv4Addr>,
    ifp: Option<&'a str>,
}

fn parse<'a>(args: &[&'a str]) -> Result<Request<'a>, String> {
    let (mut net_kw, mut host_kw) = (false, false);
    let (mut mask, mut ifp) = (None, None);
    let mut words = [""; 2];
    let mut n = 0;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        let mut value = || {
            i += 1;
            args.get(i - 1).copied().ok_or_else(|| format!("{a}: missing value"))
        };
        match a {
            "-net" => net_kw = true,
            "-host" => host_kw = true,
            "-inet" => {}
            "-netmask" => mask = Some(value()?),
            "-ifp" | "-interface" => ifp = Some(value()?),
            _ if a.starts_with('-') => return Err(format!("bad keyword: {a}")),
            _ if n < 2 => {
                words[n] = a;
                n += 1;
            }
            _ => return Err(format!("extra argument: {a}")),
        }
    }
    if net_kw && host_kw {
        return Err(String::from("-net and -host exclude each other"));
    }
    if n == 0 {
        return Err(String::from("missing destination"));
    }
    let d = words[0];
    let mask_prefix = match mask {
        Some(m) => Some(parse_addr(m).and_then(prefix_from_mask).ok_or_else(|| format!("bad netmask: {m}"))?),
        None => None,
    };
    let dest = if d == "default" {
        Ipv4Net::DEFAULT
    } else if let Some((a, p)) = d.split_once('/') {
        let addr = parse_addr(a).ok_or_else(|| format!("bad address: {d}"))?;
        let prefix = parse_prefix(p).ok_or_else(|| format!("bad prefix: {d}"))?;
        Ipv4Net::new(addr, prefix).ok_or_else(|| format!("bad prefix: {d}"))?
    } else {
        let addr = parse_addr(d).ok_or_else(|| format!("bad address: {d}"))?;
        let prefix = match mask_prefix {
            Some(p) => p,
            None if host_kw => 32,
            None if net_kw => classful_prefix(addr),
            None => {
                let c = Ipv4Net::new(addr, classful_prefix(addr)).unwrap_or(Ipv4Net::DEFAULT);
                if c.network() == addr { c.prefix() } else { 32 }
            }
        };
        Ipv4Net::new(addr, prefix).unwrap_or(Ipv4Net::DEFAULT)
    };
    if host_kw && dest.prefix() != 32 {
        return Err(format!("-host with a network destination: {d}"));
    }
    let gateway = match words[1] {
        "" => None,
        g => Some(parse_addr(g).ok_or_else(|| format!("bad gateway address: {g}"))?),
    };
    Ok(Request { dest: dest.trunc(), host: dest.prefix() == 32, gateway, ifp })
}

/// `add net default` / `add host 1.2.3.4` / `delete net 10.1.0.0/16`.
fn describe(add: bool, r: &Request<'_>) -> String {
    let verb = if add { "add" } else { "delete" };
    if r.dest.is_default() {
        format!("{verb} net default")
    } else if r.host {
        format!("{verb} host {}", r.dest.addr())
    } else {
        format!("{verb} net {}", r.dest)
    }
}

fn change(add: bool, args: &[&str], quiet: bool, env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let r = match parse(args) {
        Ok(r) => r,
        Err(m) => return usage(out, Some(&m)),
    };
    let what = describe(add, &r);
    let instances: alloc::vec::Vec<Arc<dyn IpStack>> = match r.ifp {
        Some(name) => match env.instance(name) {
            Some(i) => alloc::vec![i],
            None => {
                let _ = writeln!(out, "route: {name}: no such interface");
                return EXIT_FAIL;
            }
        },
        None => env.instances(),
    };
    let result = if add {
        let Some(gw) = r.gateway else { return usage(out, Some("missing gateway")) };
        let on_link = instances.iter().find(|i| {
            let addrs = i.addrs();
            addrs.iter().any(|a| a.net.contains(gw)) && !addrs.iter().any(|a| a.net.addr() == gw)
        });
        let owner = || instances.iter().find(|i| i.addrs().iter().any(|a| a.net.addr() == gw));
        // Without a better interface, the owner of the gateway address or
        // the `-ifp` one refuses with the precise reason.
        match on_link.or_else(owner).or(if r.ifp.is_some() { instances.first() } else { None }) {
            Some(inst) => inst.add_route(r.dest, gw),
            None => Err(NetError::Unreachable),
        }
    } else {
        instances
            .iter()
            .find_map(|i| i.del_route(r.dest, r.gateway).ok())
            .ok_or(NetError::RouteNotFound)
    };
    match result {
        Ok(done) => {
            if !quiet {
                let _ = writeln!(out, "{what}: gateway {}", done.gateway);
            }
            0
        }
        Err(e) => {
            match r.gateway {
                Some(g) => {
                    let _ = writeln!(out, "{what}: gateway {g}: {e}");
                }
                None => {
                    let _ = writeln!(out, "{what}: {e}");
                }
            }
            EXIT_FAIL
        }
    }
}
