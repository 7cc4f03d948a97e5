//! `flowstat`: flow statistics (flowstat(1M); `shared/ADMIN.md`).
//!
//! * `flowstat [-r | -t] [-p] [-o field,...] [-u R|K|M|G|T|P]
//!   [-i interval] [-l link] [flow]`: `FLOW IPKTS RBYTES IERRS OPKTS
//!   OBYTES OERRS` for every flow (those on `link`, or the one named);
//!   `-r`: `FLOW IPKTS RBYTES IERRS`; `-t`: `FLOW OPKTS OBYTES OERRS`.
//!   `DROPS` (packets the flow dropped: `maxbw=0`, or its shaper's queue
//!   full — received, sent or both as the form) with `-o`.
//! * `flowstat -h [-F gnuplot] [-p] [-o field,...] [-u ...] [-l link]
//!   [flow]`: the usage history ([`crate::history`]), `FLOW DURATION
//!   IPKTS RBYTES OPKTS OBYTES BANDWIDTH`, or `-F gnuplot` rows.
//! * `flowstat help`.
//!
//! Scaling, `-p` and `-i` as `dlstat` (shared code): counters scaled by
//! 1000 with a suffix unless `-u R` or `-p`; with `-i N` a batch every N
//! seconds until interrupted, the first cumulative, later ones the change
//! over the interval. The flows shown are fixed when the command starts.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use super::dlstat::{StatOpts, history_opts, print_history, stat_opts, wait};
use super::getopt::{Opts, getopt};
use super::table::{self, Field, Table};
use super::units::format_count;
use super::{AdminEnv, Cmd, EXIT_OK, valid_link_name, write_usage};
use crate::flow::entry::{FlowCounters, FlowEntry};
use crate::flow::registry::{self, FlowError};
use crate::history::{self, Kind};
use crate::link;

/// The usage of `flowstat`, one form per line.
pub const FLOWSTAT_USAGE: &str = "flowstat [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [-l link] [flow]\n\
                                  flowstat -h [-F gnuplot] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-l link] [flow]\n\
                                  flowstat help";

const USAGE_STAT: &str = "flowstat [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [-l link] [flow]";
const USAGE_HISTORY: &str = "flowstat -h [-F gnuplot] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-l link] [flow]";

const ALL: &[Field] = &[
    Field::left("FLOW", 15),
    Field::right("IPKTS", 8),
    Field::right("RBYTES", 8),
    Field::right("IERRS", 8),
    Field::right("OPKTS", 8),
    Field::right("OBYTES", 8),
    Field::right("OERRS", 8),
    Field::right("DROPS", 8).extra(),
];

const RX: &[Field] = &[
    Field::left("FLOW", 15),
    Field::right("IPKTS", 8),
    Field::right("RBYTES", 8),
    Field::right("IERRS", 8),
    Field::right("DROPS", 8).extra(),
];

const TX: &[Field] = &[
    Field::left("FLOW", 15),
    Field::right("OPKTS", 8),
    Field::right("OBYTES", 8),
    Field::right("OERRS", 8),
    Field::right("DROPS", 8).extra(),
];

/// Runs `flowstat` (`argv[0]` is the command name) over the flows of the
/// registry, printing to `out`; `env` sleeps and tells when to stop for
/// `-i`.
pub fn flowstat(argv: &[&str], out: &mut dyn Write, env: &dyn AdminEnv) -> i32 {
    let mut cmd = Cmd { name: "flowstat", usage: USAGE_STAT, out };
    let args = argv.get(1..).unwrap_or_default();
    if args.first() == Some(&"help") {
        if let Some(extra) = args.get(1) {
            cmd.usage = FLOWSTAT_USAGE;
            return cmd.usage_error(format_args!("unexpected operand '{extra}'"));
        }
        let _ = write_usage(cmd.out, FLOWSTAT_USAGE);
        return EXIT_OK;
    }
    // -F takes a format only in the history form.
    let o = match getopt(args, "rthpi:o:u:l:F:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if o.has('h') {
        cmd.usage = USAGE_HISTORY;
        return history_form(&mut cmd, args);
    }
    if o.has('F') {
        return cmd.usage_error(format_args!("the option -F requires -h"));
    }
    let s = match stat_opts(&mut cmd, &o) {
        Ok(s) => s,
        Err(st) => return st,
    };
    let flows = match pick(&mut cmd, o.value('l'), s.link) {
        Ok(f) => f,
        Err(st) => return st,
    };
    let (template, rows): (&[Field], Values) = if o.has('r') {
        (RX, |c| alloc::vec![c.ipkts, c.rbytes, c.ierrs, c.idrops])
    } else if o.has('t') {
        (TX, |c| alloc::vec![c.opkts, c.obytes, c.oerrs, c.odrops])
    } else {
        (ALL, |c| alloc::vec![c.ipkts, c.rbytes, c.ierrs, c.opkts, c.obytes, c.oerrs, c.idrops.wrapping_add(c.odrops)])
    };
    run(&mut cmd, env, template, &o, &s, &flows, rows)
}

/// The numbers of a row, from a flow's counters.
type Values = fn(&FlowCounters) -> Vec<u64>;

/// The flows `-l link` and a flow operand select (every flow without
/// either); errors printed.
fn pick(cmd: &mut Cmd<'_>, link: Option<&str>, flow: Option<&str>) -> Result<Vec<Arc<FlowEntry>>, i32> {
    if let Some(l) = link {
        if !valid_link_name(l) {
            return Err(cmd.fail(format_args!("invalid link name '{l}'")));
        }
        if link::datalink(l).is_none() {
            return Err(cmd.fail(format_args!("link '{l}' is not valid: object not found")));
        }
    }
    if let Some(name) = flow {
        if !registry::valid_flow_name(name) {
            return Err(cmd.fail(format_args!("{}", FlowError::InvalidName(String::from(name)))));
        }
        let Some(f) = registry::flow(name) else {
            return Err(cmd.fail(format_args!("{}", FlowError::NotFound(String::from(name)))));
        };
        if let Some(l) = link
            && f.link() != l
        {
            return Err(cmd.fail(format_args!("flow '{name}' is not on link '{l}'")));
        }
        return Ok(alloc::vec![f]);
    }
    Ok(match link {
        Some(l) => registry::on_link(l),
        None => registry::flows(),
    })
}

/// Prints one batch of rows, then every `interval` seconds the change,
/// until interrupted.
fn run(
    cmd: &mut Cmd<'_>,
    env: &dyn AdminEnv,
    template: &[Field],
    o: &Opts<'_>,
    s: &StatOpts<'_>,
    flows: &[Arc<FlowEntry>],
    values: Values,
) -> i32 {
    let cols = match table::select(template, o.value('o')) {
        Ok(c) => c,
        Err(e) => return cmd.fail(format_args!("{e}")),
    };
    let mut table = Table::new(template, cols, s.parsable);
    let mut prev: Vec<Option<FlowCounters>> = alloc::vec![None; flows.len()];
    loop {
        let mut rows = Vec::with_capacity(flows.len());
        for (f, last) in flows.iter().zip(prev.iter_mut()) {
            let cur = f.counters();
            let shown = match last {
                Some(p) => cur.since(p),
                None => cur,
            };
            let mut row = alloc::vec![String::from(f.name())];
            row.extend(values(&shown).into_iter().map(|n| format_count(n, s.unit)));
            rows.push(row);
            *last = Some(cur);
        }
        let _ = table.print(cmd.out, &rows);
        if s.interval == 0 || !wait(env, s.interval) {
            return EXIT_OK;
        }
    }
}

/// `flowstat -h [-F gnuplot] [-l link] [flow]`: flows in the history,
/// also flows removed since.
fn history_form(cmd: &mut Cmd<'_>, args: &[&str]) -> i32 {
    let (o, gnuplot) = match history_opts(cmd, args, "rtpi:o:u:hF:l:") {
        Ok(x) => x,
        Err(st) => return st,
    };
    let s = match stat_opts(cmd, &o) {
        Ok(s) => s,
        Err(st) => return st,
    };
    let all = history::with(|h| h.summary(Kind::Flow));
    let link = o.value('l');
    if let Some(l) = link
        && !all.iter().any(|x| x.link == l)
    {
        if !valid_link_name(l) {
            return cmd.fail(format_args!("invalid link name '{l}'"));
        }
        if link::datalink(l).is_none() {
            return cmd.fail(format_args!("link '{l}' is not valid: object not found"));
        }
    }
    if let Some(name) = s.link {
        if !registry::valid_flow_name(name) {
            return cmd.fail(format_args!("{}", FlowError::InvalidName(String::from(name))));
        }
        if registry::flow(name).is_none() && !all.iter().any(|x| x.name == name) {
            return cmd.fail(format_args!("{}", FlowError::NotFound(String::from(name))));
        }
    }
    let picked: Vec<_> = all
        .into_iter()
        .filter(|x| s.link.is_none_or(|n| x.name == n) && link.is_none_or(|l| x.link == l))
        .collect();
    print_history(cmd, &o, &s, "FLOW", Kind::Flow, &picked, gnuplot)
}
