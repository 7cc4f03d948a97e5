//! `dlstat`: link statistics.
//!
//! * `dlstat [-p] [-o field,...] [-u R|K|M|G|T|P] [-i interval] [link]`:
//!   `LINK IPKTS RBYTES OPKTS OBYTES`, summed over the hardware rings.
//! * `dlstat show-phys [-r | -t] ...`: one row per hardware ring, Rx rings
//!   then Tx rings, `LINK TYPE INDEX PKTS BYTES` (illumos' default form);
//!   `-r`: Rx rings only, `LINK TYPE INDEX IPKTS RBYTES`; `-t`: Tx rings
//!   only, `LINK TYPE INDEX OPKTS OBYTES`. `TYPE` is `rx` or `tx`.
//!
//! Counters are scaled by 1000 with a K/M/G/T/P suffix and two decimals
//! unless `-u R` (raw) or `-p` (always raw); `-u K` etc. fix the unit.
//! With `-i N` the command prints every N seconds until interrupted: the
//! first rows are cumulative, later ones the change over the interval (a
//! counter that went backwards, i.e. was reset, counts from zero).
//!
//! Not yet: `dlstat -r`/`-t` and `dlstat show-link` (per-lane counters come
//! with the soft ring sets), `dlstat reset`.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use super::getopt::{Opts, getopt};
use super::table::{self, Field, Table};
use super::units::{Unit, format_count};
use super::{AdminEnv, Cmd, EXIT_FAILURE, EXIT_OK, valid_link_name, write_usage};
use crate::mac::Mac;
use crate::srs::{RxSrsCounters, SoftRingCounters};
use crate::stats::RingCounters;

/// The usage of every `dlstat` form, one per line.
pub const DLSTAT_USAGE: &str = "dlstat [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n\
                                dlstat show-phys [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n\
                                dlstat show-link [-r [-F] | -t] [-a] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n\
                                dlstat help [subcommand]";

const USAGE_TOTAL: &str = "dlstat [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]";
const USAGE_LINK: &str =
    "dlstat show-link [-r [-F] | -t] [-a] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]";
const USAGE_PHYS: &str = "dlstat show-phys [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]";
const USAGE_HELP: &str = "dlstat help [subcommand]";

/// Subcommands illumos has that come with later issues.
const LATER: &[&str] = &["show-aggr", "reset"];

const TOTAL: &[Field] = &[
    Field::left("LINK", 14),
    Field::right("IPKTS", 8),
    Field::right("RBYTES", 8),
    Field::right("OPKTS", 8),
    Field::right("OBYTES", 8),
];

const RX_TOTAL: &[Field] = &[
    Field::left("LINK", 14),
    Field::right("IPKTS", 8),
    Field::right("RBYTES", 8),
    Field::right("INTRS", 8),
    Field::right("POLLS", 8),
    Field::right("CH<10", 8),
    Field::right("CH10-50", 8),
    Field::right("CH>50", 8),
];

const TX_TOTAL: &[Field] = &[
    Field::left("LINK", 14),
    Field::right("OPKTS", 8),
    Field::right("OBYTES", 8),
    Field::right("BLKCNT", 8),
    Field::right("UBLKCNT", 8),
];

/// `show-link -r`: one row per Rx lane.
const LINK_RX: &[Field] = &[
    Field::left("LINK", 14),
    Field::left("TYPE", 4),
    Field::left("ID", 5),
    Field::right("INDEX", 5),
    Field::right("IPKTS", 8),
    Field::right("RBYTES", 8),
    Field::right("INTRS", 8),
    Field::right("POLLS", 8),
    Field::right("CH<10", 8),
    Field::right("CH10-50", 8),
    Field::right("CH>50", 8),
    Field::right("SDROPS", 8).extra(),
];

/// `show-link -r -F`: one row per soft ring.
const LINK_FANOUT: &[Field] = &[
    Field::left("LINK", 14),
    Field::left("ID", 5),
    Field::right("INDEX", 5),
    Field::left("FOUT", 6),
    Field::right("IPKTS", 8),
    Field::right("RBYTES", 8),
    Field::right("DROPS", 8).extra(),
];

/// `show-link -t`: one row per Tx lane.
const LINK_TX: &[Field] = &[
    Field::left("LINK", 14),
    Field::left("TYPE", 4),
    Field::left("ID", 5),
    Field::right("INDEX", 5),
    Field::right("OPKTS", 8),
    Field::right("OBYTES", 8),
    Field::right("BLKCNT", 8),
    Field::right("UBLKCNT", 8),
    Field::right("SDROPS", 8).extra(),
];

const RING: &[Field] = &[
    Field::left("LINK", 14),
    Field::left("TYPE", 4),
    Field::right("INDEX", 5),
    Field::right("PKTS", 8),
    Field::right("BYTES", 8),
];

const RX_RING: &[Field] = &[
    Field::left("LINK", 14),
    Field::left("TYPE", 4),
    Field::right("INDEX", 5),
    Field::right("IPKTS", 8),
    Field::right("RBYTES", 8),
];

const TX_RING: &[Field] = &[
    Field::left("LINK", 14),
    Field::left("TYPE", 4),
    Field::right("INDEX", 5),
    Field::right("OPKTS", 8),
    Field::right("OBYTES", 8),
];

/// Runs `dlstat` (`argv[0]` is the command name) over `links`, printing to
/// `out`; `env` sleeps and tells when to stop for `-i`.
pub fn dlstat(argv: &[&str], links: &[Arc<Mac>], out: &mut dyn Write, env: &dyn AdminEnv) -> i32 {
    let mut cmd = Cmd { name: "dlstat", usage: DLSTAT_USAGE, out };
    let args = argv.get(1..).unwrap_or_default();
    match args.first().copied() {
        Some("help") => help(&mut cmd, args.get(1..).unwrap_or_default()),
        Some("show-phys") => {
            cmd.usage = USAGE_PHYS;
            show_phys(&mut cmd, args.get(1..).unwrap_or_default(), links, env)
        }
        Some("show-link") => {
            cmd.usage = USAGE_LINK;
            show_link(&mut cmd, args.get(1..).unwrap_or_default(), links, env)
        }
        Some(sub) if LATER.contains(&sub) => {
            cmd.say(format_args!("{sub}: not yet supported"));
            EXIT_FAILURE
        }
        Some(word) if !word.starts_with('-') && !valid_link_name(word) => {
            cmd.usage_error(format_args!("unknown subcommand '{word}'"))
        }
        _ => {
            cmd.usage = USAGE_TOTAL;
            show_total(&mut cmd, args, links, env)
        }
    }
}

fn help(cmd: &mut Cmd<'_>, args: &[&str]) -> i32 {
    let usage = match args {
        [] => DLSTAT_USAGE,
        ["show-phys"] => USAGE_PHYS,
        ["show-link"] => USAGE_LINK,
        ["help"] => USAGE_HELP,
        [sub] => return cmd.usage_error(format_args!("unknown subcommand '{sub}'")),
        [_, extra, ..] => return cmd.usage_error(format_args!("unexpected operand '{extra}'")),
    };
    let _ = write_usage(cmd.out, usage);
    EXIT_OK
}

/// Options common to the statistics forms.
struct StatOpts<'a> {
    parsable: bool,
    unit: Unit,
    interval: u64,
    link: Option<&'a str>,
}

fn stat_opts<'a>(cmd: &mut Cmd<'_>, o: &Opts<'a>) -> Result<StatOpts<'a>, i32> {
    let link = cmd.show_checks(o)?;
    if o.has('r') && o.has('t') {
        return Err(cmd.usage_error(format_args!("the options -t and -r are not compatible")));
    }
    if o.has('u') && o.has('p') {
        return Err(cmd.usage_error(format_args!("the options -u and -p are not compatible")));
    }
    let interval = match o.value('i') {
        None => 0,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n > 0 && v.bytes().all(|b| b.is_ascii_digit()) => u64::from(n),
            _ => return Err(cmd.fail(format_args!("invalid interval value '{v}'"))),
        },
    };
    let unit = match o.value('u') {
        None => Unit::Auto,
        Some(v) => match Unit::parse(v) {
            Some(u) => u,
            None => return Err(cmd.fail(format_args!("invalid unit value '{v}', unit must be R|K|M|G|T|P"))),
        },
    };
    let parsable = o.has('p');
    Ok(StatOpts { parsable, unit: if parsable { Unit::Raw } else { unit }, interval, link })
}

/// The ring counters of one link, by ring index, with its lanes' (Rx
/// SRS) and soft rings' counters.
#[derive(Clone, Default)]
struct Snap {
    rx: Vec<(usize, RingCounters)>,
    tx: Vec<(usize, RingCounters)>,
    lanes: Vec<(usize, RxSrsCounters)>,
    /// (ring, soft ring name such as `tcp0`, counters)
    fanout: Vec<(usize, String, SoftRingCounters)>,
}

impl Snap {
    fn take(m: &Mac) -> Snap {
        let p = m.provider();
        let info = m.info();
        Snap {
            rx: (0..info.rx_rings).filter_map(|i| p.rx_ring(i).map(|r| (i, r.stats().snapshot()))).collect(),
            tx: (0..info.tx_rings).filter_map(|i| p.tx_ring(i).map(|r| (i, r.stats().snapshot()))).collect(),
            lanes: m.rx_srs().iter().map(|s| (s.ring, s.stats.snapshot())).collect(),
            fanout: m
                .rx_srs()
                .iter()
                .flat_map(|s| {
                    s.softrings()
                        .iter()
                        .map(move |sr| (s.ring, alloc::format!("{}{}", sr.proto.name(), sr.index), sr.stats.snapshot()))
                })
                .collect(),
        }
    }

    /// The change since `prev`.
    fn since(&self, prev: &Snap) -> Snap {
        fn d(cur: u64, prev: u64) -> u64 {
            if cur >= prev { cur - prev } else { cur }
        }
        fn rings(cur: &[(usize, RingCounters)], prev: &[(usize, RingCounters)]) -> Vec<(usize, RingCounters)> {
            cur.iter()
                .map(|&(i, c)| match prev.iter().find(|(j, _)| *j == i) {
                    Some((_, p)) => (
                        i,
                        RingCounters {
                            packets: d(c.packets, p.packets),
                            bytes: d(c.bytes, p.bytes),
                            drops: d(c.drops, p.drops),
                            errors: d(c.errors, p.errors),
                            interrupts: d(c.interrupts, p.interrupts),
                            blocked: d(c.blocked, p.blocked),
                            unblocked: d(c.unblocked, p.unblocked),
                        },
                    ),
                    None => (i, c),
                })
                .collect()
        }
        let lanes = self
            .lanes
            .iter()
            .map(|(i, c)| match prev.lanes.iter().find(|(j, _)| j == i) {
                Some((_, p)) => (*i, c.since(p)),
                None => (*i, *c),
            })
            .collect();
        let fanout = self
            .fanout
            .iter()
            .map(|(r, n, c)| match prev.fanout.iter().find(|(pr, pn, _)| pr == r && pn == n) {
                Some((_, _, p)) => (*r, n.clone(), c.since(p)),
                None => (*r, n.clone(), *c),
            })
            .collect();
        Snap { rx: rings(&self.rx, &prev.rx), tx: rings(&self.tx, &prev.tx), lanes, fanout }
    }
}

/// Prints the rows `rows` makes from each picked link's counters, once or
/// every `interval` seconds until interrupted.
fn run(
    cmd: &mut Cmd<'_>,
    env: &dyn AdminEnv,
    template: &[Field],
    o: &Opts<'_>,
    s: &StatOpts<'_>,
    links: &[Arc<Mac>],
    rows: impl Fn(&Mac, &Snap, &dyn Fn(u64) -> String, &mut Vec<Vec<String>>),
) -> i32 {
    let cols = match table::select(template, o.value('o')) {
        Ok(c) => c,
        Err(e) => return cmd.fail(format_args!("{e}")),
    };
    let picked = match cmd.pick_links(links, s.link) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let unit = s.unit;
    let num = move |n: u64| format_count(n, unit);
    let mut table = Table::new(template, cols, s.parsable);
    let mut prev: Vec<Option<Snap>> = alloc::vec![None; picked.len()];
    loop {
        let mut all = Vec::new();
        for (m, last) in picked.iter().zip(prev.iter_mut()) {
            let cur = Snap::take(m);
            let shown = match last {
                Some(p) => cur.since(p),
                None => cur.clone(),
            };
            rows(m, &shown, &num, &mut all);
            *last = Some(cur);
        }
        let _ = table.print(cmd.out, &all);
        if s.interval == 0 {
            return EXIT_OK;
        }
        let mut left = s.interval.saturating_mul(1000);
        while left > 0 {
            if env.interrupted() {
                return EXIT_OK;
            }
            let step = left.min(100);
            env.sleep_ms(step);
            left -= step;
        }
        if env.interrupted() {
            return EXIT_OK;
        }
    }
}

fn show_total(cmd: &mut Cmd<'_>, args: &[&str], links: &[Arc<Mac>], env: &dyn AdminEnv) -> i32 {
    let o = match getopt(args, "rtpi:o:u:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    let s = match stat_opts(cmd, &o) {
        Ok(s) => s,
        Err(status) => return status,
    };
    if o.has('r') {
        return run(cmd, env, RX_TOTAL, &o, &s, links, |m, snap, num, rows| {
            let sum = |f: fn(&RxSrsCounters) -> u64| snap.lanes.iter().fold(0u64, |a, (_, c)| a.wrapping_add(f(c)));
            rows.push(alloc::vec![
                String::from(m.link()),
                num(sum(|c| c.ipkts())),
                num(sum(|c| c.rbytes())),
                num(sum(|c| c.intr_pkts)),
                num(sum(|c| c.poll_pkts)),
                num(sum(|c| c.chain_under10)),
                num(sum(|c| c.chain_10to50)),
                num(sum(|c| c.chain_over50)),
            ]);
        });
    }
    if o.has('t') {
        return run(cmd, env, TX_TOTAL, &o, &s, links, |m, snap, num, rows| {
            let sum = |f: fn(&RingCounters) -> u64| snap.tx.iter().fold(0u64, |a, (_, c)| a.wrapping_add(f(c)));
            rows.push(alloc::vec![
                String::from(m.link()),
                num(sum(|c| c.packets)),
                num(sum(|c| c.bytes)),
                num(sum(|c| c.blocked)),
                num(sum(|c| c.unblocked)),
            ]);
        });
    }
    run(cmd, env, TOTAL, &o, &s, links, |m, snap, num, rows| {
        let sum = |rings: &[(usize, RingCounters)], f: fn(&RingCounters) -> u64| {
            rings.iter().fold(0u64, |a, (_, c)| a.wrapping_add(f(c)))
        };
        rows.push(alloc::vec![
            String::from(m.link()),
            num(sum(&snap.rx, |c| c.packets)),
            num(sum(&snap.rx, |c| c.bytes)),
            num(sum(&snap.tx, |c| c.packets)),
            num(sum(&snap.tx, |c| c.bytes)),
        ]);
    })
}

fn show_phys(cmd: &mut Cmd<'_>, args: &[&str], links: &[Arc<Mac>], env: &dyn AdminEnv) -> i32 {
    let o = match getopt(args, "rtpi:o:u:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    let s = match stat_opts(cmd, &o) {
        Ok(s) => s,
        Err(status) => return status,
    };
    let (rx, tx) = (!o.has('t'), !o.has('r'));
    let template = match (rx, tx) {
        (true, false) => RX_RING,
        (false, true) => TX_RING,
        _ => RING,
    };
    run(cmd, env, template, &o, &s, links, |m, snap, num, rows| {
        let kinds = [("rx", &snap.rx, rx), ("tx", &snap.tx, tx)];
        for (kind, rings, wanted) in kinds {
            if !wanted {
                continue;
            }
            for (i, c) in rings {
                rows.push(alloc::vec![
                    String::from(m.link()),
                    String::from(kind),
                    alloc::format!("{i}"),
                    num(c.packets),
                    num(c.bytes),
                ]);
            }
        }
    })
}

fn show_link(cmd: &mut Cmd<'_>, args: &[&str], links: &[Arc<Mac>], env: &dyn AdminEnv) -> i32 {
    let o = match getopt(args, "rtFapi:o:u:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    let s = match stat_opts(cmd, &o) {
        Ok(s) => s,
        Err(status) => return status,
    };
    if o.has('F') && !o.has('r') {
        return cmd.usage_error(format_args!("the option -F requires -r"));
    }
    if o.has('a') {
        if o.has('o') || o.has('r') || o.has('t') {
            return cmd.usage_error(format_args!("the option -a cannot be combined with -o, -r or -t"));
        }
        return show_all(cmd, &s, links, env);
    }
    if o.has('F') {
        return run(cmd, env, LINK_FANOUT, &o, &s, links, |m, snap, num, rows| {
            for (ring, name, c) in &snap.fanout {
                rows.push(alloc::vec![
                    String::from(m.link()),
                    String::from("hw"),
                    alloc::format!("{ring}"),
                    name.clone(),
                    num(c.pkts),
                    num(c.bytes),
                    num(c.drops),
                ]);
            }
        });
    }
    if o.has('r') {
        return run(cmd, env, LINK_RX, &o, &s, links, |m, snap, num, rows| {
            for (ring, c) in &snap.lanes {
                rows.push(alloc::vec![
                    String::from(m.link()),
                    String::from("rx"),
                    String::from("hw"),
                    alloc::format!("{ring}"),
                    num(c.ipkts()),
                    num(c.rbytes()),
                    num(c.intr_pkts),
                    num(c.poll_pkts),
                    num(c.chain_under10),
                    num(c.chain_10to50),
                    num(c.chain_over50),
                    num(c.sdrops),
                ]);
            }
        });
    }
    if o.has('t') {
        let backlog_drops = |m: &Mac| m.stats.tx_backlog_drops.load(core::sync::atomic::Ordering::Relaxed);
        return run(cmd, env, LINK_TX, &o, &s, links, |m, snap, num, rows| {
            for (ring, c) in &snap.tx {
                rows.push(alloc::vec![
                    String::from(m.link()),
                    String::from("tx"),
                    String::from("hw"),
                    alloc::format!("{ring}"),
                    num(c.packets),
                    num(c.bytes),
                    num(c.blocked),
                    num(c.unblocked),
                    // Backlog drops are kept per link; shown on ring 0.
                    num(c.drops + if *ring == 0 { backlog_drops(m) } else { 0 }),
                ]);
            }
        });
    }
    show_total(cmd, args, links, env)
}

/// `show-link -a`: every counter of every lane as `name value` lines.
fn show_all(cmd: &mut Cmd<'_>, s: &StatOpts<'_>, links: &[Arc<Mac>], env: &dyn AdminEnv) -> i32 {
    let picked = match cmd.pick_links(links, s.link) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let mut prev: Vec<Option<Snap>> = alloc::vec![None; picked.len()];
    loop {
        for (m, last) in picked.iter().zip(prev.iter_mut()) {
            let cur = Snap::take(m);
            let shown = match last {
                Some(p) => cur.since(p),
                None => cur.clone(),
            };
            for (ring, c) in &shown.lanes {
                let _ = writeln!(cmd.out, "{} rx hw {ring}", m.link());
                let pairs = [
                    ("intrs", c.intr_pkts),
                    ("intrbytes", c.intr_bytes),
                    ("polls", c.poll_pkts),
                    ("pollbytes", c.poll_bytes),
                    ("sdrops", c.sdrops),
                    ("chainunder10", c.chain_under10),
                    ("chain10to50", c.chain_10to50),
                    ("chainover50", c.chain_over50),
                    ("emptypolls", c.empty_polls),
                    ("poll_on", c.poll_on),
                    ("poll_off", c.poll_off),
                    ("poll_pauses", c.poll_pauses),
                ];
                for (name, v) in pairs {
                    let _ = writeln!(cmd.out, "    {name:<14} {}", format_count(v, s.unit));
                }
            }
            for (ring, c) in &shown.tx {
                let _ = writeln!(cmd.out, "{} tx hw {ring}", m.link());
                for (name, v) in [("opkts", c.packets), ("obytes", c.bytes), ("blkcnt", c.blocked), ("ublkcnt", c.unblocked), ("sdrops", c.drops)] {
                    let _ = writeln!(cmd.out, "    {name:<14} {}", format_count(v, s.unit));
                }
            }
            *last = Some(cur);
        }
        if s.interval == 0 {
            return EXIT_OK;
        }
        let mut left = s.interval.saturating_mul(1000);
        while left > 0 {
            if env.interrupted() {
                return EXIT_OK;
            }
            let step = left.min(100);
            env.sleep_ms(step);
            left -= step;
        }
    }
}
