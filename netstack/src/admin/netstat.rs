//! `netstat`: the routing table (`-r`, as illumos `netstat -rn`), the
//! per-instance counters (`-s`) and the endpoints (`-a`, illumos'
//! `UDP: IPv4` then `TCP: IPv4` tables, in the order illumos' `netstat.c`
//! prints them — `udp_report` before `tcp_report`; addresses are always
//! numeric).
//!
//! ```text
//! netstat -r [-n] [-f inet]
//! netstat -s [-f inet]
//! netstat -a [-n] [-f inet]
//! ```
//!
//! The routing table lists, per IP interface, the default route, the
//! on-link subnet of each address (gateway = the address, flag `U`, `UH`
//! for a /32), then the static routes (`UG`, `UGH` for hosts). smoltcp
//! keeps no per-route reference or use counts: `Ref` and `Use` print 0.

use alloc::string::{String, ToString};
use core::net::SocketAddrV4;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use super::getopt::{OptError, getopt};
use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE};
use crate::stack::IpStack;

const USAGE: &str = "usage: netstat -r [-n] [-f inet]\n       netstat -s [-f inet]\n       netstat -a [-n] [-f inet]";

/// `netstat` (`argv[0]` is `netstat`).
pub fn netstat(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let p = match getopt(argv.get(1..).unwrap_or(&[]), "rnsvaf:") {
        Ok(p) => p,
        Err(OptError::Unknown(c)) => return usage(out, &alloc::format!("illegal option -- {c}")),
        Err(OptError::MissingValue(c)) => return usage(out, &alloc::format!("option requires an argument -- {c}")),
    };
    if let Some(f) = p.value('f')
        && f != "inet"
    {
        let _ = writeln!(out, "netstat: {f}: unknown address family");
        return EXIT_FAIL;
    }
    if !p.operands.is_empty() {
        return usage(out, "extra arguments");
    }
    if !p.has('r') && !p.has('s') && !p.has('a') {
        return usage(out, "only the -a, -r and -s reports are available");
    }
    let instances = env.instances();
    if p.has('r') {
        routes(&instances, out);
    }
    if p.has('s') {
        statistics(&instances, out);
    }
    if p.has('a') {
        endpoints(&instances, out);
    }
    0
}

/// `address.port` as illumos prints an endpoint: `*` for INADDR_ANY,
/// right-aligned in 7 columns as `pr_ap` pads it, and `*` for port 0.
fn endpoint(a: SocketAddrV4) -> String {
    let port = if a.port() == 0 { String::from("*") } else { a.port().to_string() };
    if a.ip().is_unspecified() { alloc::format!("{:>7}.{port}", "*") } else { alloc::format!("{}.{port}", a.ip()) }
}

/// The unbound remote end of a TCP listener, as `pr_ap(0, 0)` prints it.
fn any_endpoint() -> String {
    endpoint(SocketAddrV4::new(core::net::Ipv4Addr::UNSPECIFIED, 0))
}

/// The `UDP: IPv4` table of every instance's UDP endpoints, then the
/// `TCP: IPv4` table of their TCP endpoints.
pub fn endpoints(instances: &[Arc<dyn IpStack>], out: &mut dyn Write) {
    let _ = writeln!(out, "\nUDP: IPv4");
    let _ = writeln!(out, "   Local Address        Remote Address      State");
    let _ = writeln!(out, "-------------------- -------------------- ----------");
    for inst in instances {
        for e in inst.udp_endpoints() {
            let remote = e.remote.map(endpoint).unwrap_or_default();
            let _ = writeln!(out, "{:<20} {:<20} {}", endpoint(e.local), remote, e.state());
        }
    }
    tcp_endpoints(instances, out);
}

/// The `TCP: IPv4` table (illumos' `tcp_report_item_v4`: `%-20s %-20s %5u
/// %6d %5u %6d %s`); as in illumos, the header comes with the first row,
/// so an instance set without TCP endpoints prints nothing.
pub fn tcp_endpoints(instances: &[Arc<dyn IpStack>], out: &mut dyn Write) {
    let mut first = true;
    for inst in instances {
        for e in inst.tcp_endpoints() {
            if first {
                let _ = writeln!(out, "\nTCP: IPv4");
                let _ = writeln!(out, "   Local Address        Remote Address    Swind Send-Q Rwind Recv-Q    State");
                let _ = writeln!(out, "-------------------- -------------------- ----- ------ ----- ------ -----------");
                first = false;
            }
            let remote = e.remote.map_or_else(any_endpoint, endpoint);
            let _ = writeln!(
                out,
                "{:<20} {:<20} {:>5} {:>6} {:>5} {:>6} {}",
                endpoint(e.local),
                remote,
                e.swind,
                e.send_q,
                e.rwind,
                e.recv_q,
                e.state
            );
        }
    }
}

fn usage(out: &mut dyn Write, msg: &str) -> i32 {
    let _ = writeln!(out, "netstat: {msg}");
    let _ = writeln!(out, "{USAGE}");
    EXIT_USAGE
}

fn route_line(out: &mut dyn Write, dest: &str, gw: &str, flags: &str, ifname: &str) {
    let _ = writeln!(out, "{dest:<20} {gw:<20} {flags:<5} {:>5} {:>10} {ifname}", 0, 0);
}

/// Prints the IPv4 routing table.
pub fn routes(instances: &[Arc<dyn IpStack>], out: &mut dyn Write) {
    let _ = writeln!(out);
    let _ = writeln!(out, "Routing Table: IPv4");
    let _ = writeln!(out, "  Destination           Gateway           Flags  Ref     Use     Interface");
    let _ = writeln!(out, "-------------------- -------------------- ----- ----- ---------- ---------");
    for inst in instances {
        for r in inst.routes().iter().filter(|r| r.dest.is_default()) {
            route_line(out, "default", &r.gateway.to_string(), "UG", inst.name());
        }
    }
    for inst in instances {
        for a in inst.addrs() {
            if a.net.prefix() == 32 {
                route_line(out, &a.net.addr().to_string(), &a.net.addr().to_string(), "UH", inst.name());
            } else {
                route_line(out, &a.net.network().to_string(), &a.net.addr().to_string(), "U", inst.name());
            }
        }
    }
    for inst in instances {
        for r in inst.routes().iter().filter(|r| !r.dest.is_default()) {
            let flags = match (r.dest.prefix() == 32, r.redirect) {
                (true, true) => "UGHD",
                (true, false) => "UGH",
                (false, true) => "UGD",
                (false, false) => "UG",
            };
            route_line(out, &r.dest.network().to_string(), &r.gateway.to_string(), flags, inst.name());
        }
    }
}

/// Prints every instance's counters and its services' counters.
pub fn statistics(instances: &[Arc<dyn IpStack>], out: &mut dyn Write) {
    for inst in instances {
        let _ = writeln!(out);
        let _ = writeln!(out, "IP instance {} ({})", inst.name(), inst.kind());
        let fields: Vec<(&str, u64)> = inst.stats().fields().collect();
        for pair in fields.chunks(2) {
            let _ = write!(out, "        {:<20}={:>10}", pair[0].0, pair[0].1);
            if let Some((n, v)) = pair.get(1) {
                let _ = write!(out, "     {n:<20}={v:>10}");
            }
            let _ = writeln!(out);
        }
        for (section, counters) in inst.mib() {
            mib_section(out, section, &counters);
        }
        let services = inst.service_stats();
        if services.is_empty() {
            continue;
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<5} {:>5} {:<8} {:>10} {:>8} {:>6} {:>12} {:>12}",
            "PROTO", "PORT", "SERVICE", "ACCEPTED", "REFUSED", "ACTIVE", "IBYTES", "OBYTES"
        );
        for s in services {
            let _ = writeln!(
                out,
                "{:<5} {:>5} {:<8} {:>10} {:>8} {:>6} {:>12} {:>12}",
                s.proto.to_string(),
                s.port,
                s.name,
                s.accepted,
                s.refused,
                s.active,
                s.bytes_in,
                s.bytes_out
            );
        }
    }
}

/// One MIB section as illumos' `netstat -s` prints it: the section name in
/// the first 8 columns of its first line, two `name = value` pairs a line.
fn mib_section(out: &mut dyn Write, section: &str, counters: &[(&'static str, u64)]) {
    let _ = writeln!(out);
    for (i, pair) in counters.chunks(2).enumerate() {
        let label = if i == 0 { section } else { "" };
        let _ = write!(out, "{label:<8}{:<20}={:>6}", pair[0].0, pair[0].1);
        if let Some((n, v)) = pair.get(1) {
            let _ = write!(out, "     {n:<20}={v:>6}");
        }
        let _ = writeln!(out);
    }
}
