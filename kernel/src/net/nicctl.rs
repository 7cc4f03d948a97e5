//! `nicctl`: low-level NIC diagnostics below the MAC layer — per-ring
//! interrupt CPUs and counts, programming unicast filters into ring groups,
//! holding a lane (ring interrupt off, packets accumulate in the ring),
//! polling a ring by hand, and listing every buffer pool (for leak
//! checks). For checking the hardware lanes themselves; the
//! administrator's tools are `dladm` and `dlstat`.

use alloc::sync::Arc;
use alloc::vec::Vec;

use arbalest_mac::Mac;
use arbalest_mac::link::parse_mac;

use crate::shell::{Command, Ctx};

/// The command.
pub const COMMAND: Command = Command {
    name: "nicctl",
    usage: "nicctl rings [link]\nnicctl pools [link]\nnicctl unicast-add link group macaddr\nnicctl unicast-remove link group macaddr\nnicctl hold link ring|all\nnicctl release link ring|all\nnicctl poll link ring",
    summary: "NIC diagnostics: ring CPUs and interrupts, buffer pools, unicast filters, hold/poll a ring",
    run: cmd_nicctl,
};

fn link(ctx: &mut Ctx<'_>, name: &str) -> Option<Arc<Mac>> {
    let m = arbalest_mac::mac::by_name(name);
    if m.is_none() {
        ctx.error(format_args!("link '{name}' not found"));
    }
    m
}

fn rings_of(mac: &Mac, which: &str) -> Option<Vec<usize>> {
    if which == "all" {
        return Some((0..mac.info().rx_rings).collect());
    }
    let r: usize = which.parse().ok()?;
    (r < mac.info().rx_rings).then(|| alloc::vec![r])
}

fn cmd_nicctl(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let Some(&sub) = argv.get(1) else { return ctx.usage_error() };
    let args = &argv[2..];
    match (sub, args.len()) {
        ("rings", 0 | 1) => rings(ctx, args.first().copied()),
        ("pools", 0 | 1) => pools(ctx, args.first().copied()),
        ("unicast-add" | "unicast-remove", 3) => {
            let Some(mac) = link(ctx, args[0]) else { return 1 };
            let Ok(group) = args[1].parse::<usize>() else {
                ctx.error(format_args!("invalid group '{}'", args[1]));
                return 1;
            };
            let Some(addr) = parse_mac(args[2]) else {
                ctx.error(format_args!("invalid MAC address '{}'", args[2]));
                return 1;
            };
            let r = if sub == "unicast-add" {
                mac.provider().unicast_add(group, addr)
            } else {
                mac.provider().unicast_remove(group, addr)
            };
            match r {
                Ok(()) => 0,
                Err(e) => {
                    ctx.error(format_args!("{sub}: {e:?}"));
                    1
                }
            }
        }
        ("hold" | "release", 2) => {
            let Some(mac) = link(ctx, args[0]) else { return 1 };
            let Some(rings) = rings_of(&mac, args[1]) else {
                ctx.error(format_args!("invalid ring '{}'", args[1]));
                return 1;
            };
            let Some(st) = super::state() else { return 1 };
            for r in rings {
                match st.lane(mac.link(), r) {
                    Some(l) if sub == "hold" => l.hold(),
                    Some(l) => l.release(),
                    None => {
                        ctx.error(format_args!("ring {r} has no lane"));
                        return 1;
                    }
                }
            }
            0
        }
        ("poll", 2) => {
            let Some(mac) = link(ctx, args[0]) else { return 1 };
            let Some(r) = args[1].parse::<usize>().ok().filter(|&r| r < mac.info().rx_rings) else {
                ctx.error(format_args!("invalid ring '{}'", args[1]));
                return 1;
            };
            let held = super::state().and_then(|s| s.lane(mac.link(), r)).is_some_and(|l| l.is_held());
            if !held {
                ctx.error(format_args!("ring {r} is not held (nicctl hold {} {r} first)", mac.link()));
                return 1;
            }
            let Some(ring) = mac.provider().rx_ring(r) else { return 1 };
            let chain = ring.poll(usize::MAX);
            let _ = writeln!(ctx.out, "{} ring {r}: polled one chain of {} packets, {} bytes", mac.link(), chain.len(), chain.bytes());
            mac.rx_deliver(chain);
            0
        }
        ("rings" | "pools" | "unicast-add" | "unicast-remove" | "hold" | "release" | "poll", _) => ctx.usage_error(),
        _ => {
            ctx.error(format_args!("unknown subcommand '{sub}'"));
            ctx.usage_error()
        }
    }
}

fn rings(ctx: &mut Ctx<'_>, which: Option<&str>) -> i32 {
    let links = arbalest_mac::mac::links();
    if let Some(w) = which {
        if !links.iter().any(|m| m.link() == w) {
            ctx.error(format_args!("link '{w}' not found"));
            return 1;
        }
    }
    let _ = writeln!(ctx.out, "{:<8} {:<4} {:>5} {:>5} {:>3} {:>10} {:>10} {:>8} {}", "LINK", "TYPE", "INDEX", "GROUP", "CPU", "INTRS", "PKTS", "DROPS", "LANE");
    for mac in links.iter().filter(|m| which.is_none_or(|w| m.link() == w)) {
        let info = mac.info();
        for i in 0..info.rx_rings {
            let Some(r) = mac.provider().rx_ring(i) else { continue };
            let s = r.stats().snapshot();
            let group = info.rx_groups.iter().position(|g| g.rings.contains(&i)).map(|g| alloc::format!("{g}")).unwrap_or("--".into());
            let lane = match super::state().and_then(|st| st.lane(mac.link(), i)) {
                Some(l) if l.is_held() => "held",
                Some(_) => "on",
                None => "--",
            };
            let _ = writeln!(ctx.out, "{:<8} {:<4} {:>5} {:>5} {:>3} {:>10} {:>10} {:>8} {}", mac.link(), "rx", i, group, r.cpu(), s.interrupts, s.packets, s.drops, lane);
        }
        for i in 0..info.tx_rings {
            let Some(r) = mac.provider().tx_ring(i) else { continue };
            let s = r.stats().snapshot();
            let _ = writeln!(ctx.out, "{:<8} {:<4} {:>5} {:>5} {:>3} {:>10} {:>10} {:>8} {}", mac.link(), "tx", i, "--", "--", s.interrupts, s.packets, s.drops, "--");
        }
    }
    0
}


/// `nicctl pools [link]`: every buffer pool, with the buffers in use. The
/// Tx rings are reclaimed first, so a Tx pool's INUSE counts only buffers
/// the NIC still holds (and those waiting in a backlog).
fn pools(ctx: &mut Ctx<'_>, which: Option<&str>) -> i32 {
    for mac in arbalest_mac::mac::links().iter().filter(|m| which.is_none_or(|w| m.link() == w)) {
        for i in 0..mac.info().tx_rings {
            if let Some(r) = mac.provider().tx_ring(i) {
                r.reclaim();
            }
        }
    }
    let all = arbalest_mac::pools::all();
    if let Some(w) = which {
        if !all.iter().any(|p| p.link == w) {
            ctx.error(format_args!("link '{w}' not found"));
            return 1;
        }
    }
    let _ = writeln!(ctx.out, "{:<12} {:<5} {:>7} {:>8} {:>8} {:>8} {:>12} {:>9}", "LINK", "POOL", "BUFSIZE", "CAPACITY", "FREE", "INUSE", "ALLOCS", "ALLOCFAIL");
    for p in all.iter().filter(|p| which.is_none_or(|w| p.link == w)) {
        let _ = writeln!(
            ctx.out,
            "{:<12} {:<5} {:>7} {:>8} {:>8} {:>8} {:>12} {:>9}",
            p.link,
            p.name,
            p.buf_size,
            p.capacity,
            p.free,
            p.in_use(),
            p.allocs,
            p.empty
        );
    }
    0
}
