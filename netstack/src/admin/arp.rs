//! `arp -a`: the neighbour (ARP) caches of the IP interfaces, in illumos'
//! "Net to Media Table" layout: one row per neighbour, and one per local
//! address (flags `SPLA`: static, published, local, authoritative).
//! Unresolved neighbours carry the flag `U` and no physical address.

use alloc::string::ToString;
use core::fmt::Write;

use super::{AdminEnv, EXIT_USAGE};

/// The usage line.
pub const USAGE: &str = "arp -a";

fn mac_str(m: [u8; 6]) -> alloc::string::String {
    alloc::format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

/// `arp -a` (`-an` too: there are no names to look up).
pub fn arp(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    match argv.get(1..) {
        Some(["-a"]) | Some(["-an"]) | Some(["-na"]) => {}
        _ => {
            let _ = writeln!(out, "Usage: {USAGE}");
            return EXIT_USAGE;
        }
    }
    let _ = writeln!(out, "\nNet to Media Table: IPv4");
    let _ = writeln!(out, "Device   IP Address               Mask      Flags      Phys Addr");
    let _ = writeln!(out, "------ -------------------- --------------- -------- ---------------");
    let host_mask = "255.255.255.255";
    for inst in env.instances() {
        let dev = inst.name();
        for n in inst.neighbours() {
            let (flags, mac) = match n.mac {
                Some(m) if !n.unresolved => ("", mac_str(m)),
                _ => ("U", alloc::string::String::new()),
            };
            let _ = writeln!(out, "{dev:<6} {:<20} {host_mask:<15} {flags:<8} {mac}", n.ip.to_string());
        }
        let own = mac_str(inst.link().mac_addr());
        for a in inst.addrs() {
            if inst.addr_state(&a.name).is_some_and(|s| s != "ok") {
                continue;
            }
            let _ = writeln!(out, "{dev:<6} {:<20} {host_mask:<15} {:<8} {own}", a.net.addr().to_string(), "SPLA");
        }
    }
    0
}
