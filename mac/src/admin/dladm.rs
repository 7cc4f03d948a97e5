//! `dladm`: show the data links.
//!
//! * `show-phys [-H] [-p] [-o field,...] [link]`:
//!   `LINK MEDIA STATE SPEED DUPLEX DEVICE`; `SPEED` in Mb/s as the driver
//!   reports it (0 when unknown). `-H`: `LINK RINGTYPE RINGS CLIENTS`, one
//!   row per hardware ring group, Rx groups first (`RX`/`TX`), rings as
//!   ranges (`0-3`, `0,2`), clients the MAC clients using the group (the
//!   primary client, named after the link, sits in the default group 0 of
//!   each type) or `--`.
//! * `show-link [-s] [-p] [-o field,...] [link]`:
//!   `LINK CLASS MTU STATE BRIDGE OVER` (physical links: class `phys`, no
//!   bridge, over nothing). `-s`: `LINK IPACKETS RBYTES IERRORS OPACKETS
//!   OBYTES OERRORS`, raw counts summed over the hardware rings. `IERRORS`
//!   and `OERRORS` are the errors the rings report; packets the driver
//!   dropped (no buffer, malformed) are not errors and show in `dlstat`.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use super::getopt::getopt;
use super::table::{self, Field, Table};
use super::{Cmd, EXIT_OK, write_usage};
use crate::mac::Mac;
use crate::provider::{Duplex, MacProvider};

/// The usage of every `dladm` subcommand, one per line.
pub const DLADM_USAGE: &str = "dladm show-link [-s] [-p] [-o field[,...]] [link]\n\
                               dladm show-phys [-H] [-p] [-o field[,...]] [link]\n\
                               dladm help [subcommand]";

type SubFn = fn(&mut Cmd<'_>, &[&str], &[Arc<Mac>]) -> i32;

const SUBCOMMANDS: &[(&str, &str, SubFn)] = &[
    ("show-link", "dladm show-link [-s] [-p] [-o field[,...]] [link]", show_link),
    ("show-phys", "dladm show-phys [-H] [-p] [-o field[,...]] [link]", show_phys),
    ("help", "dladm help [subcommand]", help),
];

const PHYS: &[Field] = &[
    Field::left("LINK", 12),
    Field::left("MEDIA", 20),
    Field::left("STATE", 10),
    Field::right("SPEED", 6),
    Field::left("DUPLEX", 9),
    Field::left("DEVICE", 12),
];

const PHYS_H: &[Field] =
    &[Field::left("LINK", 12), Field::left("RINGTYPE", 8), Field::left("RINGS", 20), Field::left("CLIENTS", 23)];

const LINK: &[Field] = &[
    Field::left("LINK", 11),
    Field::left("CLASS", 9),
    Field::right("MTU", 6),
    Field::left("STATE", 8),
    Field::left("BRIDGE", 10),
    Field::left("OVER", 29),
];

const LINK_S: &[Field] = &[
    Field::left("LINK", 14),
    Field::right("IPACKETS", 9),
    Field::right("RBYTES", 7),
    Field::right("IERRORS", 9),
    Field::right("OPACKETS", 11),
    Field::right("OBYTES", 11),
    Field::right("OERRORS", 7),
];

/// Runs `dladm` (`argv[0]` is the command name) over `links`, printing to
/// `out`; returns the exit status.
pub fn dladm(argv: &[&str], links: &[Arc<Mac>], out: &mut dyn Write) -> i32 {
    let mut cmd = Cmd { name: "dladm", usage: DLADM_USAGE, out };
    let Some(&sub) = argv.get(1) else {
        return cmd.usage_error(format_args!("missing subcommand"));
    };
    match SUBCOMMANDS.iter().find(|s| s.0 == sub) {
        Some(&(_, usage, run)) => {
            cmd.usage = usage;
            run(&mut cmd, argv.get(2..).unwrap_or_default(), links)
        }
        None => cmd.usage_error(format_args!("unknown subcommand '{sub}'")),
    }
}

fn help(cmd: &mut Cmd<'_>, args: &[&str], _links: &[Arc<Mac>]) -> i32 {
    match args {
        [] => {
            let _ = write_usage(cmd.out, DLADM_USAGE);
            EXIT_OK
        }
        [sub] => match SUBCOMMANDS.iter().find(|s| s.0 == *sub) {
            Some(s) => {
                let _ = write_usage(cmd.out, s.1);
                EXIT_OK
            }
            None => {
                cmd.usage = DLADM_USAGE;
                cmd.usage_error(format_args!("unknown subcommand '{sub}'"))
            }
        },
        [_, extra, ..] => cmd.usage_error(format_args!("unexpected operand '{extra}'")),
    }
}

fn duplex_name(d: Duplex) -> &'static str {
    match d {
        Duplex::Full => "full",
        Duplex::Half => "half",
        Duplex::Unknown => "unknown",
    }
}

/// Parses a show form's options, selects its fields and links, and prints
/// the rows `rows` makes for each link.
fn show(
    cmd: &mut Cmd<'_>,
    o: &super::getopt::Opts<'_>,
    template: &[Field],
    links: &[Arc<Mac>],
    rows: impl Fn(&Mac, &mut Vec<Vec<String>>),
) -> i32 {
    let operand = match cmd.show_checks(o) {
        Ok(op) => op,
        Err(status) => return status,
    };
    let cols = match table::select(template, o.value('o')) {
        Ok(c) => c,
        Err(e) => return cmd.fail(format_args!("{e}")),
    };
    let picked = match cmd.pick_links(links, operand) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let mut all = Vec::new();
    for m in picked {
        rows(m, &mut all);
    }
    let _ = Table::new(template, cols, o.has('p')).print(cmd.out, &all);
    EXIT_OK
}

fn show_phys(cmd: &mut Cmd<'_>, args: &[&str], links: &[Arc<Mac>]) -> i32 {
    let o = match getopt(args, "Hpo:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if o.has('H') {
        return show(cmd, &o, PHYS_H, links, |m, rows| {
            let client = m.client_name().unwrap_or_else(|| String::from("--"));
            let info = m.info();
            for (kind, groups) in [("RX", &info.rx_groups), ("TX", &info.tx_groups)] {
                for (g, group) in groups.iter().enumerate() {
                    let clients = if g == 0 { client.clone() } else { String::from("--") };
                    rows.push(alloc::vec![m.link().into(), kind.into(), table::ranges(&group.rings), clients]);
                }
            }
        });
    }
    show(cmd, &o, PHYS, links, |m, rows| {
        let p: &dyn MacProvider = &**m.provider();
        rows.push(alloc::vec![
            m.link().into(),
            "Ethernet".into(),
            m.link_state().name().into(),
            p.speed_mbps().to_string(),
            duplex_name(p.duplex()).into(),
            m.device().into(),
        ]);
    })
}

/// Sums of a link's ring counters for `show-link -s`:
/// (ipackets, rbytes, ierrors, opackets, obytes, oerrors).
fn link_sums(m: &Mac) -> [u64; 6] {
    let mut s = [0u64; 6];
    for c in m.rx_ring_counters() {
        s[0] = s[0].wrapping_add(c.packets);
        s[1] = s[1].wrapping_add(c.bytes);
        s[2] = s[2].wrapping_add(c.errors);
    }
    for c in m.tx_ring_counters() {
        s[3] = s[3].wrapping_add(c.packets);
        s[4] = s[4].wrapping_add(c.bytes);
        s[5] = s[5].wrapping_add(c.errors);
    }
    s
}

fn show_link(cmd: &mut Cmd<'_>, args: &[&str], links: &[Arc<Mac>]) -> i32 {
    let o = match getopt(args, "spo:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if o.has('s') {
        return show(cmd, &o, LINK_S, links, |m, rows| {
            let mut row = alloc::vec![String::from(m.link())];
            row.extend(link_sums(m).iter().map(|n| n.to_string()));
            rows.push(row);
        });
    }
    show(cmd, &o, LINK, links, |m, rows| {
        rows.push(alloc::vec![
            m.link().into(),
            "phys".into(),
            m.info().mtu.to_string(),
            m.link_state().name().into(),
            "--".into(),
            "--".into(),
        ]);
    })
}
