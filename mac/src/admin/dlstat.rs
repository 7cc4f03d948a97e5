//! `dlstat`: link statistics.
//!
//! * `dlstat [-r | -t] [-p] [-o field,...] [-u R|K|M|G|T|P] [-i interval] [link]`:
//!   `LINK IPKTS RBYTES OPKTS OBYTES` for every link: a physical link's
//!   hardware rings summed, a VNIC's client counters, an etherstub's
//!   frames switched locally. `-r`: `LINK IPKTS RBYTES INTRS POLLS CH<10
//!   CH10-50 CH>50` (the link's lanes); `-t`: `LINK OPKTS OBYTES BLKCNT
//!   UBLKCNT`.
//! * `dlstat show-link -r [-F] | -t ...`: one row per lane. `ID` is `hw`
//!   (a hardware lane: an Rx ring and its soft ring set, owned by the
//!   physical link or by a VNIC that reserved the ring's group — then its
//!   rows are the VNIC's, not the physical link's), `sw` (a VNIC
//!   classified in software: one row from its client counters, `INTRS`
//!   and `POLLS` `--`), `local` (frames switched inside the host, to or
//!   from another client of the same link or etherstub) and `bcast`
//!   (broadcast/multicast copies received). A physical link shows `local`
//!   and `bcast` rows once VNICs share it; VNICs and etherstubs always.
//!   `-a`: every counter as `name value` lines, per lane and per client.
//! * `dlstat show-phys [-r | -t] ...`: one row per hardware ring, Rx rings
//!   then Tx rings, `LINK TYPE INDEX PKTS BYTES` (illumos' default form);
//!   `-r`: Rx rings only, `LINK TYPE INDEX IPKTS RBYTES`; `-t`: Tx rings
//!   only, `LINK TYPE INDEX OPKTS OBYTES`. `TYPE` is `rx` or `tx`.
//!
//! * `dlstat show-link -h [-F gnuplot] [-p] [-o field,...] [-u ...] [link]`:
//!   the usage history ([`crate::history`]): `LINK DURATION IPKTS RBYTES
//!   OPKTS OBYTES BANDWIDTH` per link, or with `-F gnuplot` a `# Time`
//!   header and one row per sample (seconds since boot, then each link's
//!   Kbps in the interval).
//!
//! Counters are scaled by 1000 with a K/M/G/T/P suffix and two decimals
//! unless `-u R` (raw) or `-p` (always raw); `-u K` etc. fix the unit.
//! With `-i N` the command prints every N seconds until interrupted: the
//! first rows are cumulative, later ones the change over the interval (a
//! counter that went backwards, i.e. was reset, counts from zero).
//!
//! Not yet: `dlstat reset`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use super::getopt::{Opts, getopt};
use super::table::{self, Field, Table};
use super::units::{Unit, format_count};
use super::{AdminEnv, Cmd, EXIT_FAILURE, EXIT_OK, valid_link_name, write_usage};
use super::dladm::etherstub_counters;
use crate::client::ClientCounters;
use crate::lanes;
use crate::link::Datalink;
use crate::srs::{RxSrsCounters, SoftRingCounters};
use crate::stats::RingCounters;

/// The usage of every `dlstat` form, one per line.
pub const DLSTAT_USAGE: &str = "dlstat [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n\
                                dlstat show-phys [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n\
                                dlstat show-link [-r [-F] | -t] [-a] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n\
                                dlstat show-link -h [-F gnuplot] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [link]\n\
                                dlstat reset [link]\n\
                                dlstat help [subcommand]";

const USAGE_RESET: &str = "dlstat reset [link]";
const USAGE_TOTAL: &str = "dlstat [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]";
const USAGE_LINK: &str =
    "dlstat show-link [-r [-F] | -t] [-a] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]";
const USAGE_PHYS: &str = "dlstat show-phys [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]";
const USAGE_HELP: &str = "dlstat help [subcommand]";
const USAGE_HISTORY: &str = "dlstat show-link -h [-F gnuplot] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [link]";

/// Subcommands illumos has that come with later issues.
const LATER: &[&str] = &["show-aggr"];

/// Counters as they were at the last `dlstat reset`, per link name: every
/// form shows counts since then. Traffic and the counters themselves are
/// untouched (a link deleted and re-created under the same name starts
/// from zero again: counts below the baseline are taken as fresh).
static BASELINES: spin::Mutex<Vec<(String, Snap)>> = spin::Mutex::new(Vec::new());

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

/// Runs `dlstat` (`argv[0]` is the command name) over `links` (every data
/// link: [`crate::link::datalinks`]), printing to `out`; `env` sleeps and
/// tells when to stop for `-i`.
pub fn dlstat(argv: &[&str], links: &[Datalink], out: &mut dyn Write, env: &dyn AdminEnv) -> i32 {
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
        Some("reset") => {
            cmd.usage = USAGE_RESET;
            reset(&mut cmd, args.get(1..).unwrap_or_default(), links)
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
        ["show-link"] => {
            let _ = write_usage(cmd.out, &alloc::format!("{USAGE_LINK}\n{USAGE_HISTORY}"));
            return EXIT_OK;
        }
        ["help"] => USAGE_HELP,
        ["reset"] => USAGE_RESET,
        [sub] => return cmd.usage_error(format_args!("unknown subcommand '{sub}'")),
        [_, extra, ..] => return cmd.usage_error(format_args!("unexpected operand '{extra}'")),
    };
    let _ = write_usage(cmd.out, usage);
    EXIT_OK
}

/// Options common to the statistics forms.
pub(super) struct StatOpts<'a> {
    pub parsable: bool,
    pub unit: Unit,
    pub interval: u64,
    /// The operand (a link, or for `flowstat` a flow).
    pub link: Option<&'a str>,
}

pub(super) fn stat_opts<'a>(cmd: &mut Cmd<'_>, o: &Opts<'a>) -> Result<StatOpts<'a>, i32> {
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


/// What a link is, for which rows it has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A physical link; `shared` once VNICs sit on it (then it shows
    /// `local` and `bcast` rows).
    Phys { shared: bool },
    /// A VNIC with its own ring group.
    HwVnic,
    /// A VNIC classified in software.
    SwVnic,
    /// A VNIC on an etherstub (all its traffic is local).
    StubVnic,
    Etherstub,
}

/// The counters of one link: the NIC's rings (physical links), the lanes
/// (Rx SRS) and soft rings the link owns, and its client's counters.
#[derive(Clone)]
struct Snap {
    kind: Kind,
    rx: Vec<(usize, RingCounters)>,
    tx: Vec<(usize, RingCounters)>,
    lanes: Vec<(usize, RxSrsCounters)>,
    /// (ring, soft ring name such as `tcp0`, counters)
    fanout: Vec<(usize, String, SoftRingCounters)>,
    client: ClientCounters,
}

fn d(cur: u64, prev: u64) -> u64 {
    // A counter that went backwards was reset: count from zero.
    if cur >= prev { cur - prev } else { cur }
}

fn client_since(c: &ClientCounters, p: &ClientCounters) -> ClientCounters {
    let mut o = *c;
    o.ipackets = d(c.ipackets, p.ipackets);
    o.rbytes = d(c.rbytes, p.rbytes);
    o.opackets = d(c.opackets, p.opackets);
    o.obytes = d(c.obytes, p.obytes);
    o.local_ipackets = d(c.local_ipackets, p.local_ipackets);
    o.local_rbytes = d(c.local_rbytes, p.local_rbytes);
    o.local_opackets = d(c.local_opackets, p.local_opackets);
    o.local_obytes = d(c.local_obytes, p.local_obytes);
    o.bcast_ipackets = d(c.bcast_ipackets, p.bcast_ipackets);
    o.rx_no_client = d(c.rx_no_client, p.rx_no_client);
    o.tx_drops = d(c.tx_drops, p.tx_drops);
    o.spoof_drops = d(c.spoof_drops, p.spoof_drops);
    o.tx_blocked = d(c.tx_blocked, p.tx_blocked);
    o.tx_unblocked = d(c.tx_unblocked, p.tx_unblocked);
    o
}

impl Snap {
    /// The counters of `l` since its last `dlstat reset`.
    fn take(l: &Datalink) -> Snap {
        let raw = Snap::raw(l);
        let base = BASELINES.lock().iter().find(|(n, _)| n == l.name()).map(|(_, s)| s.clone());
        match base {
            Some(b) => raw.since(&b),
            None => raw,
        }
    }

    /// The counters of `l` as they stand.
    fn raw(l: &Datalink) -> Snap {
        let lanes_of = lanes::rx_lanes(l);
        let lanes = lanes_of.iter().map(|s| (s.ring, s.stats.snapshot())).collect();
        let fanout = lanes_of
            .iter()
            .flat_map(|s| {
                s.softrings()
                    .iter()
                    .map(move |sr| (s.ring, alloc::format!("{}{}", sr.proto.name(), sr.index), sr.stats.snapshot()))
            })
            .collect();
        let (kind, rx, tx, client) = match l {
            Datalink::Phys(m) => {
                let p = m.provider();
                let info = m.info();
                (
                    Kind::Phys { shared: m.switch().clients().len() > 1 },
                    (0..info.rx_rings).filter_map(|i| p.rx_ring(i).map(|r| (i, r.stats().snapshot()))).collect(),
                    (0..info.tx_rings).filter_map(|i| p.tx_ring(i).map(|r| (i, r.stats().snapshot()))).collect(),
                    m.primary().stats.snapshot(),
                )
            }
            Datalink::Vnic(c) => {
                let kind = if lanes::is_hw_vnic(l) {
                    Kind::HwVnic
                } else if lanes::wire_of(l).is_some() {
                    Kind::SwVnic
                } else {
                    Kind::StubVnic
                };
                (kind, Vec::new(), Vec::new(), c.stats.snapshot())
            }
            Datalink::Etherstub(s) => (Kind::Etherstub, Vec::new(), Vec::new(), etherstub_counters(s)),
        };
        Snap { kind, rx, tx, lanes, fanout, client }
    }

    /// The change since `prev`.
    fn since(&self, prev: &Snap) -> Snap {
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
        Snap {
            kind: self.kind,
            rx: rings(&self.rx, &prev.rx),
            tx: rings(&self.tx, &prev.tx),
            lanes,
            fanout,
            client: client_since(&self.client, &prev.client),
        }
    }

    /// Whether the link has `local` and `bcast` rows.
    fn switched(&self) -> bool {
        !matches!(self.kind, Kind::Phys { shared: false })
    }

    fn lane_sum(&self, f: fn(&RxSrsCounters) -> u64) -> u64 {
        self.lanes.iter().fold(0u64, |a, (_, c)| a.wrapping_add(f(c)))
    }

    fn ring_sum(rings: &[(usize, RingCounters)], f: fn(&RingCounters) -> u64) -> u64 {
        rings.iter().fold(0u64, |a, (_, c)| a.wrapping_add(f(c)))
    }
}

/// Prints the rows `rows` makes from each picked link's counters, once or
/// every `interval` seconds until interrupted. `phys_only`: the operand
/// must be, and the links shown are, physical links.
#[allow(clippy::too_many_arguments)]
fn run(
    cmd: &mut Cmd<'_>,
    env: &dyn AdminEnv,
    template: &[Field],
    o: &Opts<'_>,
    s: &StatOpts<'_>,
    links: &[Datalink],
    phys_only: bool,
    rows: impl Fn(&Datalink, &Snap, &dyn Fn(u64) -> String, &mut Vec<Vec<String>>),
) -> i32 {
    let cols = match table::select(template, o.value('o')) {
        Ok(c) => c,
        Err(e) => return cmd.fail(format_args!("{e}")),
    };
    let picked = match pick(cmd, links, s.link, phys_only) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let unit = s.unit;
    let num = move |n: u64| format_count(n, unit);
    let mut table = Table::new(template, cols, s.parsable);
    let mut prev: Vec<Option<Snap>> = alloc::vec![None; picked.len()];
    loop {
        let mut all = Vec::new();
        for (l, last) in picked.iter().zip(prev.iter_mut()) {
            let cur = Snap::take(l);
            let shown = match last {
                Some(p) => cur.since(p),
                None => cur.clone(),
            };
            rows(l, &shown, &num, &mut all);
            *last = Some(cur);
        }
        let _ = table.print(cmd.out, &all);
        if s.interval == 0 || !wait(env, s.interval) {
            return EXIT_OK;
        }
    }
}

/// Sleeps `interval` seconds in steps; false if interrupted.
pub(super) fn wait(env: &dyn AdminEnv, interval: u64) -> bool {
    let mut left = interval.saturating_mul(1000);
    while left > 0 {
        if env.interrupted() {
            return false;
        }
        let step = left.min(100);
        env.sleep_ms(step);
        left -= step;
    }
    !env.interrupted()
}

/// The links an operand selects (physical links only for `show-phys`).
fn pick(cmd: &mut Cmd<'_>, links: &[Datalink], operand: Option<&str>, phys_only: bool) -> Result<Vec<Datalink>, i32> {
    let picked = cmd.pick_links(links, operand)?;
    if !phys_only {
        return Ok(picked);
    }
    if let Some(name) = operand
        && picked.iter().any(|l| !matches!(l, Datalink::Phys(_)))
    {
        return Err(cmd.fail(format_args!("link '{name}' is not a physical link")));
    }
    Ok(picked.into_iter().filter(|l| matches!(l, Datalink::Phys(_))).collect())
}

fn show_total(cmd: &mut Cmd<'_>, args: &[&str], links: &[Datalink], env: &dyn AdminEnv) -> i32 {
    let o = match getopt(args, "rtpi:o:u:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    let s = match stat_opts(cmd, &o) {
        Ok(s) => s,
        Err(status) => return status,
    };
    if o.has('r') {
        return run(cmd, env, RX_TOTAL, &o, &s, links, false, |l, snap, num, rows| {
            let (ipkts, rbytes) = match snap.kind {
                Kind::Phys { .. } => (snap.lane_sum(|c| c.ipkts()), snap.lane_sum(|c| c.rbytes())),
                _ => (snap.client.ipackets, snap.client.rbytes),
            };
            rows.push(alloc::vec![
                String::from(l.name()),
                num(ipkts),
                num(rbytes),
                num(snap.lane_sum(|c| c.intr_pkts)),
                num(snap.lane_sum(|c| c.poll_pkts)),
                num(snap.lane_sum(|c| c.chain_under10)),
                num(snap.lane_sum(|c| c.chain_10to50)),
                num(snap.lane_sum(|c| c.chain_over50)),
            ]);
        });
    }
    if o.has('t') {
        return run(cmd, env, TX_TOTAL, &o, &s, links, false, |l, snap, num, rows| {
            let (opkts, obytes) = match snap.kind {
                Kind::Phys { .. } => (Snap::ring_sum(&snap.tx, |c| c.packets), Snap::ring_sum(&snap.tx, |c| c.bytes)),
                _ => (snap.client.opackets, snap.client.obytes),
            };
            rows.push(alloc::vec![
                String::from(l.name()),
                num(opkts),
                num(obytes),
                num(Snap::ring_sum(&snap.tx, |c| c.blocked)),
                num(Snap::ring_sum(&snap.tx, |c| c.unblocked)),
            ]);
        });
    }
    run(cmd, env, TOTAL, &o, &s, links, false, |l, snap, num, rows| {
        let v = match snap.kind {
            Kind::Phys { .. } => [
                Snap::ring_sum(&snap.rx, |c| c.packets),
                Snap::ring_sum(&snap.rx, |c| c.bytes),
                Snap::ring_sum(&snap.tx, |c| c.packets),
                Snap::ring_sum(&snap.tx, |c| c.bytes),
            ],
            _ => [snap.client.ipackets, snap.client.rbytes, snap.client.opackets, snap.client.obytes],
        };
        let mut row = alloc::vec![String::from(l.name())];
        row.extend(v.iter().map(|&n| num(n)));
        rows.push(row);
    })
}

fn show_phys(cmd: &mut Cmd<'_>, args: &[&str], links: &[Datalink], env: &dyn AdminEnv) -> i32 {
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
    run(cmd, env, template, &o, &s, links, true, |l, snap, num, rows| {
        let kinds = [("rx", &snap.rx, rx), ("tx", &snap.tx, tx)];
        for (kind, rings, wanted) in kinds {
            if !wanted {
                continue;
            }
            for (i, c) in rings {
                rows.push(alloc::vec![
                    String::from(l.name()),
                    String::from(kind),
                    alloc::format!("{i}"),
                    num(c.packets),
                    num(c.bytes),
                ]);
            }
        }
    })
}

/// A `show-link -r` row with only packets and bytes (`--` elsewhere).
fn rx_row(link: &str, id: &str, ipkts: String, rbytes: String, sdrops: String) -> Vec<String> {
    let e = String::new;
    alloc::vec![
        String::from(link),
        String::from("rx"),
        String::from(id),
        String::from("--"),
        ipkts,
        rbytes,
        e(),
        e(),
        e(),
        e(),
        e(),
        sdrops,
    ]
}

/// A `show-link -t` row of a software lane: packets, bytes, the times its
/// client was blocked and unblocked (empty where that does not apply),
/// drops.
fn tx_row(link: &str, id: &str, opkts: String, obytes: String, blk: [String; 2], sdrops: String) -> Vec<String> {
    let [b, u] = blk;
    alloc::vec![String::from(link), String::from("tx"), String::from(id), String::from("--"), opkts, obytes, b, u, sdrops]
}

fn show_link(cmd: &mut Cmd<'_>, args: &[&str], links: &[Datalink], env: &dyn AdminEnv) -> i32 {
    let o = match getopt(args, "rtFapi:o:u:h") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if o.has('h') {
        // The history form, where -F takes a format.
        cmd.usage = USAGE_HISTORY;
        return show_link_history(cmd, args, links);
    }
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
        return run(cmd, env, LINK_FANOUT, &o, &s, links, false, |l, snap, num, rows| {
            for (ring, name, c) in &snap.fanout {
                rows.push(alloc::vec![
                    String::from(l.name()),
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
        return run(cmd, env, LINK_RX, &o, &s, links, false, |l, snap, num, rows| {
            let name = l.name();
            for (ring, c) in &snap.lanes {
                rows.push(alloc::vec![
                    String::from(name),
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
            let k = &snap.client;
            if snap.kind == Kind::SwVnic {
                rows.push(rx_row(
                    name,
                    "sw",
                    num(k.ipackets.saturating_sub(k.local_ipackets)),
                    num(k.rbytes.saturating_sub(k.local_rbytes)),
                    num(k.rx_no_client),
                ));
            }
            if snap.switched() {
                rows.push(rx_row(name, "local", num(k.local_ipackets), num(k.local_rbytes), String::new()));
                rows.push(rx_row(name, "bcast", num(k.bcast_ipackets), String::new(), String::new()));
            }
        });
    }
    if o.has('t') {
        let backlog_drops = |l: &Datalink| match l {
            Datalink::Phys(m) => m.stats.tx_backlog_drops.load(core::sync::atomic::Ordering::Relaxed),
            _ => 0,
        };
        return run(cmd, env, LINK_TX, &o, &s, links, false, |l, snap, num, rows| {
            let name = l.name();
            for (ring, c) in &snap.tx {
                rows.push(alloc::vec![
                    String::from(name),
                    String::from("tx"),
                    String::from("hw"),
                    alloc::format!("{ring}"),
                    num(c.packets),
                    num(c.bytes),
                    num(c.blocked),
                    num(c.unblocked),
                    // Backlog drops are kept per link; shown on ring 0.
                    num(c.drops + if *ring == 0 { backlog_drops(l) } else { 0 }),
                ]);
            }
            let k = &snap.client;
            // A VNIC's frames to the wire go through the link's Tx rings.
            if matches!(snap.kind, Kind::SwVnic | Kind::HwVnic) {
                // BLKCNT/UBLKCNT: the times the VNIC was held back by a
                // blocked Tx ring below it, and let go again.
                rows.push(tx_row(
                    name,
                    "sw",
                    num(k.opackets.saturating_sub(k.local_opackets)),
                    num(k.obytes.saturating_sub(k.local_obytes)),
                    [num(k.tx_blocked), num(k.tx_unblocked)],
                    num(k.tx_drops.wrapping_add(k.spoof_drops)),
                ));
            }
            if snap.switched() {
                rows.push(tx_row(name, "local", num(k.local_opackets), num(k.local_obytes), [String::new(), String::new()], String::new()));
            }
        });
    }
    show_total(cmd, args, links, env)
}

/// `show-link -a`: every counter of every lane as `name value` lines.
fn show_all(cmd: &mut Cmd<'_>, s: &StatOpts<'_>, links: &[Datalink], env: &dyn AdminEnv) -> i32 {
    let picked = match cmd.pick_links(links, s.link) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let mut prev: Vec<Option<Snap>> = alloc::vec![None; picked.len()];
    loop {
        for (l, last) in picked.iter().zip(prev.iter_mut()) {
            let cur = Snap::take(l);
            let shown = match last {
                Some(p) => cur.since(p),
                None => cur.clone(),
            };
            let name = l.name();
            for (ring, c) in &shown.lanes {
                let _ = writeln!(cmd.out, "{name} rx hw {ring}");
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
                for (n, v) in pairs {
                    let _ = writeln!(cmd.out, "    {n:<14} {}", format_count(v, s.unit));
                }
            }
            for (ring, c) in &shown.tx {
                let _ = writeln!(cmd.out, "{name} tx hw {ring}");
                for (n, v) in [("opkts", c.packets), ("obytes", c.bytes), ("blkcnt", c.blocked), ("ublkcnt", c.unblocked), ("sdrops", c.drops)] {
                    let _ = writeln!(cmd.out, "    {n:<14} {}", format_count(v, s.unit));
                }
            }
            if shown.switched() {
                let k = &shown.client;
                let id = if shown.kind == Kind::SwVnic { "sw" } else { "local" };
                let _ = writeln!(cmd.out, "{name} client {id}");
                let pairs = [
                    ("ipkts", k.ipackets),
                    ("rbytes", k.rbytes),
                    ("opkts", k.opackets),
                    ("obytes", k.obytes),
                    ("local", k.local_ipackets),
                    ("localbytes", k.local_rbytes),
                    ("olocal", k.local_opackets),
                    ("olocalbytes", k.local_obytes),
                    ("bcast", k.bcast_ipackets),
                    ("nocl", k.rx_no_client),
                    ("txdrops", k.tx_drops),
                    ("spoofdrops", k.spoof_drops),
                    ("blkcnt", k.tx_blocked),
                    ("ublkcnt", k.tx_unblocked),
                ];
                for (n, v) in pairs {
                    let _ = writeln!(cmd.out, "    {n:<14} {}", format_count(v, s.unit));
                }
            }
            *last = Some(cur);
        }
        if s.interval == 0 || !wait(env, s.interval) {
            return EXIT_OK;
        }
    }
}

/// `dlstat reset [link]`: from now on every form counts from zero for the
/// link (or all links), without touching traffic or the counters below.
fn reset(cmd: &mut Cmd<'_>, args: &[&str], links: &[Datalink]) -> i32 {
    let o = match getopt(args, "") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if o.operands.len() > 1 {
        return cmd.usage_error(format_args!("unexpected operand '{}'", o.operands[1]));
    }
    let picked = match cmd.pick_links(links, o.operands.first().copied()) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let snaps: Vec<(String, Snap)> = picked.iter().map(|l| (String::from(l.name()), Snap::raw(l))).collect();
    let mut b = BASELINES.lock();
    for (name, snap) in snaps {
        b.retain(|(n, _)| *n != name);
        b.push((name, snap));
    }
    EXIT_OK
}

/// A link's traffic as `dlstat` shows it by default: (ipkts, rbytes,
/// opkts, obytes) — a physical link's rings summed, a VNIC's client
/// counters, an etherstub's local traffic — raw (not since a reset).
pub(crate) fn link_totals(l: &Datalink) -> [u64; 4] {
    match l {
        Datalink::Phys(m) => {
            let (mut v, p) = ([0u64; 4], m.provider());
            for i in 0..m.info().rx_rings {
                if let Some(r) = p.rx_ring(i) {
                    let c = r.stats().snapshot();
                    v[0] = v[0].wrapping_add(c.packets);
                    v[1] = v[1].wrapping_add(c.bytes);
                }
            }
            for i in 0..m.info().tx_rings {
                if let Some(r) = p.tx_ring(i) {
                    let c = r.stats().snapshot();
                    v[2] = v[2].wrapping_add(c.packets);
                    v[3] = v[3].wrapping_add(c.bytes);
                }
            }
            v
        }
        Datalink::Vnic(c) => {
            let k = c.stats.snapshot();
            [k.ipackets, k.rbytes, k.opackets, k.obytes]
        }
        Datalink::Etherstub(s) => {
            let k = etherstub_counters(s);
            [k.ipackets, k.rbytes, k.opackets, k.obytes]
        }
    }
}

/// `show-link -h` / `flowstat -h` columns (the first named by the caller).
pub(super) fn history_fields(first: &'static str) -> [Field; 7] {
    [
        Field::left(first, 14),
        Field::right("DURATION", 8),
        Field::right("IPKTS", 8),
        Field::right("RBYTES", 8),
        Field::right("OPKTS", 8),
        Field::right("OBYTES", 8),
        Field::right("BANDWIDTH", 12),
    ]
}

/// Options of a history form: `-h [-F gnuplot] [-p] [-o f,...] [-u U]`
/// with at most one operand; the other letters of `extra` are allowed
/// options with an argument (`flowstat`'s `l`). Returns the options.
pub(super) fn history_opts<'a>(cmd: &mut Cmd<'_>, args: &[&'a str], spec: &str) -> Result<(Opts<'a>, bool), i32> {
    let o = getopt(args, spec).map_err(|e| cmd.usage_error(format_args!("{e}")))?;
    for c in ['r', 't', 'i', 'a'] {
        if o.has(c) {
            return Err(cmd.usage_error(format_args!("the option -h cannot be combined with -{c}")));
        }
    }
    let gnuplot = match o.value('F') {
        None => false,
        Some("gnuplot") => true,
        Some(f) => return Err(cmd.fail(format_args!("invalid format '{f}': the only format is gnuplot"))),
    };
    if gnuplot && (o.has('o') || o.has('p') || o.has('u')) {
        return Err(cmd.usage_error(format_args!("-F gnuplot cannot be combined with -o, -p or -u")));
    }
    Ok((o, gnuplot))
}

/// Prints a history report: the `summaries` (already picked, in order)
/// as a table, or with `gnuplot` one row per sample for `names`.
pub(super) fn print_history(
    cmd: &mut Cmd<'_>,
    o: &Opts<'_>,
    s: &StatOpts<'_>,
    first: &'static str,
    kind: crate::history::Kind,
    summaries: &[crate::history::Summary],
    gnuplot: bool,
) -> i32 {
    if gnuplot {
        let names: Vec<&str> = summaries.iter().map(|x| x.name.as_str()).collect();
        let series = crate::history::with(|h| h.series(kind, &names));
        let mut head = String::from("# Time");
        for n in &names {
            head.push(' ');
            head.push_str(n);
        }
        let _ = writeln!(cmd.out, "{head}");
        for (t, rates) in series {
            let mut line = alloc::format!("{}.{:03}", t / 1_000_000_000, (t / 1_000_000) % 1000);
            for bps in rates {
                // Kbps with two decimals.
                let h = (u128::from(bps) + 5) / 10;
                let _ = write!(line, " {}.{:02}", h / 100, h % 100);
            }
            let _ = writeln!(cmd.out, "{line}");
        }
        return EXIT_OK;
    }
    let template = history_fields(first);
    let cols = match table::select(&template, o.value('o')) {
        Ok(c) => c,
        Err(e) => return cmd.fail(format_args!("{e}")),
    };
    let num = |n: u64| format_count(n, s.unit);
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|x| {
            let bw = if s.parsable || s.unit == Unit::Raw {
                alloc::format!("{}", x.bps())
            } else {
                alloc::format!("{}bps", format_count(x.bps(), s.unit))
            };
            alloc::vec![
                x.name.clone(),
                alloc::format!("{}", x.duration_ns / 1_000_000_000),
                num(x.counts[0]),
                num(x.counts[1]),
                num(x.counts[2]),
                num(x.counts[3]),
                bw,
            ]
        })
        .collect();
    let _ = Table::new(&template, cols, s.parsable).print(cmd.out, &rows);
    EXIT_OK
}

/// `dlstat show-link -h [-F gnuplot] [link]`.
fn show_link_history(cmd: &mut Cmd<'_>, args: &[&str], links: &[Datalink]) -> i32 {
    let (o, gnuplot) = match history_opts(cmd, args, "rtapi:o:u:hF:") {
        Ok(x) => x,
        Err(st) => return st,
    };
    let s = match stat_opts(cmd, &o) {
        Ok(s) => s,
        Err(st) => return st,
    };
    let picked = match cmd.pick_links(links, s.link) {
        Ok(p) => p,
        Err(st) => return st,
    };
    let all = crate::history::with(|h| h.summary(crate::history::Kind::Link));
    let summaries: Vec<crate::history::Summary> =
        picked.iter().filter_map(|l| all.iter().find(|x| x.name == l.name()).cloned()).collect();
    print_history(cmd, &o, &s, "LINK", crate::history::Kind::Link, &summaries, gnuplot)
}
