//! `flowadm`: add, remove and show flows and their properties
//! (flowadm(1M), `shared/seeds/004_*.txt`; `shared/ADMIN.md`).
//!
//! * `show-flow [[-p] -o field,...] [-l link | flow]` (also with no
//!   subcommand): `FLOW LINK PROTO LADDR LPORT RADDR RPORT DSFLD`, `--`
//!   for an attribute not set.
//! * `add-flow [-t] -l link -a attr=value[,...] [-p prop=value[,...]] flow`
//!   (see [`crate::flow::desc`] for the attributes and their rules).
//! * `remove-flow [-t] {-l link | flow}`: one flow, or every flow on the
//!   link.
//! * `set-flowprop [-t] -p prop=value[,...] flow`,
//!   `reset-flowprop [-t] [-p prop[,...]] flow` (every property when no
//!   `-p`), `show-flowprop [[-c] -o field,...] [-l link] [-p prop,...]
//!   [flow]`: `FLOW PROPERTY PERM VALUE DEFAULT POSSIBLE`. Properties:
//!   `maxbw` (as for links — `N[K|M|G]`, no suffix Mb/s, at least 1.2M —
//!   and `0`, which drops every packet of the flow; shown in Mb/s like
//!   `dladm show-linkprop`, `500` for 500M; default unlimited, `--`),
//!   `priority` (`low|medium|high`, default `medium`), `hwflow`
//!   (read-only, always `off`: no driver classifies flows in hardware).
//! * `help [subcommand]`: the manual's example 10, adapted.
//!
//! Every flow is temporary: Arbalest keeps no persistent configuration,
//! so flows live in memory and are lost at reboot. `-t` is accepted and
//! changes nothing; `-R root-dir` and `-P` are refused as naming a store
//! that does not exist. Commands see the links of their [`DladmEnv`] and
//! the flows on those links. A command that fails prints `flowadm:` and
//! what was wrong, then the usage, exits non-zero and changes nothing.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use super::dladm::{all_values, check_dups, prop_assignments, prop_names};
use super::getopt::{Opts, getopt};
use super::table::{self, Field, Table};
use super::{Cmd, DladmEnv, EXIT_OK};
use crate::flow::entry::{FlowEntry, FlowProps};
use crate::flow::registry::{self, FlowError};
use crate::flow::desc::FlowDesc;
use crate::link::Datalink;
use crate::props::{self, Priority};

/// The usage of every `flowadm` subcommand, one per line.
pub const FLOWADM_USAGE: &str = "flowadm [show-flow] [[-p] -o field[,...]] [-l link | flow]\n\
                                 flowadm add-flow [-t] -l link -a attr=value[,...] [-p prop=value[,...]] flow\n\
                                 flowadm remove-flow [-t] {-l link | flow}\n\
                                 flowadm set-flowprop [-t] -p prop=value[,...] flow\n\
                                 flowadm reset-flowprop [-t] [-p prop[,...]] flow\n\
                                 flowadm show-flowprop [[-c] -o field[,...]] [-l link] [-p prop[,...]] [flow]\n\
                                 flowadm help [subcommand]";

type SubFn = fn(&mut Cmd<'_>, &[&str], &dyn DladmEnv) -> i32;

struct Sub {
    name: &'static str,
    usage: &'static str,
    run: SubFn,
    /// `help <sub>`: the synopsis with placeholders, and an example.
    help: &'static str,
    example: &'static str,
}

const SUBCOMMANDS: &[Sub] = &[
    Sub {
        name: "show-flow",
        usage: "flowadm show-flow [[-p] -o field[,...]] [-l link | flow]",
        run: show_flow,
        help: "show-flow      [[-p] -o <field>,...] [-l <link> | <flow>]",
        example: "# flowadm show-flow -l net0",
    },
    Sub {
        name: "add-flow",
        usage: "flowadm add-flow [-t] -l link -a attr=value[,...] [-p prop=value[,...]] flow",
        run: add_flow,
        help: "add-flow       [-t] -l <link> -a <attr>=<value>[,...]\n               [-p <prop>=<value>,...] <flow>",
        example: "# flowadm add-flow -l net0 -a transport=tcp -p maxbw=100 tcpflow",
    },
    Sub {
        name: "remove-flow",
        usage: "flowadm remove-flow [-t] {-l link | flow}",
        run: remove_flow,
        help: "remove-flow    [-t] {-l <link> | <flow>}",
        example: "# flowadm remove-flow tcpflow",
    },
    Sub {
        name: "set-flowprop",
        usage: "flowadm set-flowprop [-t] -p prop=value[,...] flow",
        run: set_flowprop,
        help: "set-flowprop   [-t] -p <prop>=<value>[,...] <flow>",
        example: "# flowadm set-flowprop -p maxbw=500M,priority=high tcpflow",
    },
    Sub {
        name: "reset-flowprop",
        usage: "flowadm reset-flowprop [-t] [-p prop[,...]] flow",
        run: reset_flowprop,
        help: "reset-flowprop [-t] [-p <prop>,...] <flow>",
        example: "# flowadm reset-flowprop -p maxbw tcpflow",
    },
    Sub {
        name: "show-flowprop",
        usage: "flowadm show-flowprop [[-c] -o field[,...]] [-l link] [-p prop[,...]] [flow]",
        run: show_flowprop,
        help: "show-flowprop  [[-c] -o <field>,...] [-l <link>] [-p <prop>,...] [<flow>]",
        example: "# flowadm show-flowprop -p maxbw,priority tcpflow",
    },
    Sub {
        name: "help",
        usage: "flowadm help [subcommand]",
        run: help,
        help: "help           [<subcommand>]",
        example: "# flowadm help add-flow",
    },
];

/// `show-flow` columns (widths as the manual's examples).
const FLOW: &[Field] = &[
    Field::left("FLOW", 11),
    Field::left("LINK", 8),
    Field::left("PROTO", 5),
    Field::left("LADDR", 17),
    Field::left("LPORT", 5),
    Field::left("RADDR", 17),
    Field::left("RPORT", 5),
    Field::left("DSFLD", 5),
];

/// `show-flowprop` columns.
const FLOWPROP: &[Field] = &[
    Field::left("FLOW", 12),
    Field::left("PROPERTY", 15),
    Field::left("PERM", 4),
    Field::left("VALUE", 14),
    Field::left("DEFAULT", 14),
    Field::left("POSSIBLE", 15),
];

/// A flow property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowProp {
    Maxbw,
    Priority,
    Hwflow,
}

impl FlowProp {
    const ALL: [FlowProp; 3] = [FlowProp::Maxbw, FlowProp::Priority, FlowProp::Hwflow];

    fn name(self) -> &'static str {
        match self {
            FlowProp::Maxbw => "maxbw",
            FlowProp::Priority => "priority",
            FlowProp::Hwflow => "hwflow",
        }
    }

    fn from_name(n: &str) -> Option<FlowProp> {
        FlowProp::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(n))
    }
}

/// Runs `flowadm` (`argv[0]` is the command name) over the links of
/// `env`, printing to `out`; returns the exit status.
pub fn flowadm(argv: &[&str], env: &dyn DladmEnv, out: &mut dyn Write) -> i32 {
    let mut cmd = Cmd { name: "flowadm", usage: FLOWADM_USAGE, out };
    let args = argv.get(1..).unwrap_or_default();
    let (sub, rest) = match args.first() {
        // No subcommand (or options first): show-flow.
        None => ("show-flow", args),
        Some(a) if a.starts_with('-') => ("show-flow", args),
        Some(a) => (*a, args.get(1..).unwrap_or_default()),
    };
    match SUBCOMMANDS.iter().find(|s| s.name == sub) {
        Some(s) => {
            cmd.usage = s.usage;
            (s.run)(&mut cmd, rest, env)
        }
        None => cmd.usage_error(format_args!("unknown subcommand '{sub}'")),
    }
}

fn help(cmd: &mut Cmd<'_>, args: &[&str], _env: &dyn DladmEnv) -> i32 {
    match args {
        [] => {
            let _ = writeln!(cmd.out, "The following subcommands are supported:");
            let _ = writeln!(cmd.out, "Flow    : add-flow       remove-flow     reset-flowprop");
            let _ = writeln!(cmd.out, "          set-flowprop   show-flow       show-flowprop");
            let _ = writeln!(cmd.out, "Every flow is temporary: Arbalest has no persistent configuration store,");
            let _ = writeln!(cmd.out, "so flows live in memory only and are lost at reboot (-t is accepted;");
            let _ = writeln!(cmd.out, "-R and -P are not supported).");
            let _ = writeln!(cmd.out, "For more info, run: flowadm help <subcommand>");
            EXIT_OK
        }
        [sub] => match SUBCOMMANDS.iter().find(|s| s.name == *sub) {
            Some(s) => {
                let _ = writeln!(cmd.out, "usage:");
                for line in s.help.lines() {
                    let _ = writeln!(cmd.out, "        {line}");
                }
                let _ = writeln!(cmd.out, "\nexample:\n{}", s.example);
                EXIT_OK
            }
            None => {
                cmd.usage = FLOWADM_USAGE;
                cmd.usage_error(format_args!("unknown subcommand '{sub}'"))
            }
        },
        [_, extra, ..] => cmd.usage_error(format_args!("unexpected operand '{extra}'")),
    }
}

/// Parses a subcommand's options; `-R` and `-P` are refused as naming the
/// persistent store there is not.
fn options<'a>(cmd: &mut Cmd<'_>, args: &[&'a str], spec: &str) -> Result<Opts<'a>, i32> {
    let o = getopt(args, spec).map_err(|e| cmd.usage_error(format_args!("{e}")))?;
    if o.has('R') {
        return Err(cmd.usage_error(format_args!(
            "-R is not supported: Arbalest has no persistent configuration store (every flow is temporary)"
        )));
    }
    if o.has('P') {
        return Err(cmd.usage_error(format_args!(
            "-P is not supported: Arbalest has no persistent configuration store (every flow is temporary)"
        )));
    }
    Ok(o)
}

/// The flows on the links `env` shows, in the order added.
fn visible(env: &dyn DladmEnv) -> Vec<Arc<FlowEntry>> {
    let links = env.datalinks();
    registry::flows().into_iter().filter(|f| links.iter().any(|l| l.name() == f.link())).collect()
}

/// The visible flow named `name` (an error, printed, otherwise).
fn find_flow(cmd: &mut Cmd<'_>, env: &dyn DladmEnv, name: &str) -> Result<Arc<FlowEntry>, i32> {
    if !registry::valid_flow_name(name) {
        return Err(cmd.fail(format_args!("{}", FlowError::InvalidName(String::from(name)))));
    }
    match visible(env).into_iter().find(|f| f.name() == name) {
        Some(f) => Ok(f),
        None => Err(cmd.fail(format_args!("{}", FlowError::NotFound(String::from(name))))),
    }
}

/// The single flow operand (errors printed).
fn flow_operand<'a>(cmd: &mut Cmd<'_>, o: &Opts<'a>) -> Result<&'a str, i32> {
    match o.operands.as_slice() {
        [] => Err(cmd.usage_error(format_args!("missing flow name"))),
        [name] => Ok(name),
        [_, extra, ..] => Err(cmd.usage_error(format_args!("unexpected operand '{extra}'"))),
    }
}

fn show_flow(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match options(cmd, args, "Ppo:l:") {
        Ok(o) => o,
        Err(st) => return st,
    };
    let operand = match cmd.show_checks(&o) {
        Ok(op) => op,
        Err(st) => return st,
    };
    if let (Some(_), Some(name)) = (o.value('l'), operand) {
        return cmd.usage_error(format_args!("-l link and a flow name '{name}' cannot be given together"));
    }
    let cols = match table::select(FLOW, o.value('o')) {
        Ok(c) => c,
        Err(e) => return cmd.fail(format_args!("{e}")),
    };
    let flows = match pick_flows(cmd, env, o.value('l'), operand) {
        Ok(f) => f,
        Err(st) => return st,
    };
    let rows: Vec<Vec<String>> = flows
        .iter()
        .map(|f| {
            let mut row = alloc::vec![String::from(f.name()), String::from(f.link())];
            row.extend(f.desc().columns());
            row
        })
        .collect();
    let _ = Table::new(FLOW, cols, o.has('p')).print(cmd.out, &rows);
    EXIT_OK
}

/// The flows `-l link` and/or a flow operand select (all visible ones
/// without either); errors printed.
fn pick_flows(cmd: &mut Cmd<'_>, env: &dyn DladmEnv, link: Option<&str>, flow: Option<&str>) -> Result<Vec<Arc<FlowEntry>>, i32> {
    let link = match link {
        Some(l) => Some(cmd.find_link(&env.datalinks(), l)?),
        None => None,
    };
    if let Some(name) = flow {
        let f = find_flow(cmd, env, name)?;
        if let Some(l) = &link
            && f.link() != l.name()
        {
            return Err(cmd.fail(format_args!("flow '{name}' is not on link '{}'", l.name())));
        }
        return Ok(alloc::vec![f]);
    }
    let all = visible(env);
    Ok(match link {
        Some(l) => all.into_iter().filter(|f| f.link() == l.name()).collect(),
        None => all,
    })
}

/// Parses a flow's `maxbw`: as a link's, or `0` (drop everything).
pub fn parse_flow_maxbw(s: &str) -> Result<Option<u64>, String> {
    let num = s.strip_suffix(['k', 'K', 'm', 'M', 'g', 'G']).unwrap_or(s);
    let digits = num.bytes().filter(|b| b.is_ascii_digit()).count();
    let zero = digits > 0
        && num.bytes().filter(|&b| b == b'.').count() <= 1
        && num.bytes().all(|b| b == b'0' || b == b'.')
        && !num.ends_with('.');
    if zero {
        return Ok(Some(0));
    }
    props::parse_maxbw(s).map_err(|e| alloc::format!("{e} (or 0 to drop every packet of the flow)"))
}

/// A property problem: (property as named, what is wrong).
type PropProblem = (String, String);

/// Validates `pairs` onto `base`: every property known, writable, given
/// once, with a good value.
fn apply_props(base: FlowProps, pairs: &[(String, String)]) -> Result<FlowProps, PropProblem> {
    let mut p = base;
    let mut seen: Vec<FlowProp> = Vec::new();
    for (name, value) in pairs {
        let Some(prop) = FlowProp::from_name(name) else {
            return Err((name.clone(), String::from("unknown property (maxbw, priority)")));
        };
        if prop == FlowProp::Hwflow {
            return Err((String::from("hwflow"), String::from("read-only property")));
        }
        if seen.contains(&prop) {
            return Err((String::from(prop.name()), String::from("specified more than once")));
        }
        seen.push(prop);
        match prop {
            FlowProp::Maxbw => {
                p.maxbw = parse_flow_maxbw(value).map_err(|why| (String::from("maxbw"), alloc::format!("invalid value '{value}': {why}")))?
            }
            FlowProp::Priority => {
                p.priority = Priority::parse(value).ok_or_else(|| {
                    (String::from("priority"), alloc::format!("invalid value '{value}': expected low, medium or high"))
                })?
            }
            FlowProp::Hwflow => {}
        }
    }
    Ok(p)
}

fn add_flow(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match options(cmd, args, "tR:l:a:p:") {
        Ok(o) => o,
        Err(st) => return st,
    };
    if let Err(st) = check_dups(cmd, &o, "tap") {
        return st;
    }
    let name = match flow_operand(cmd, &o) {
        Ok(n) => n,
        Err(st) => return st,
    };
    let Some(link_name) = o.value('l') else {
        return cmd.usage_error(format_args!("-l link is required"));
    };
    let attr_lists = all_values(&o, 'a');
    if attr_lists.is_empty() {
        return cmd.usage_error(format_args!("-a attr=value[,...] is required"));
    }
    if !registry::valid_flow_name(name) {
        return cmd.fail(format_args!("{}", FlowError::InvalidName(String::from(name))));
    }
    if registry::flow(name).is_some() {
        return cmd.fail(format_args!("{}", FlowError::Exists(String::from(name))));
    }
    let link = match cmd.find_link(&env.datalinks(), link_name) {
        Ok(l) => l,
        Err(st) => return st,
    };
    let desc = match FlowDesc::parse(&attr_lists) {
        Ok(d) => d,
        Err(e) => return cmd.fail(format_args!("cannot add flow '{name}': {e}")),
    };
    let assignments = match prop_assignments(cmd, &all_values(&o, 'p')) {
        Ok(a) => a,
        Err(st) => return st,
    };
    let props = match apply_props(FlowProps::default(), &assignments) {
        Ok(p) => p,
        Err((prop, why)) => return cmd.fail(format_args!("cannot add flow '{name}': property '{prop}': {why}")),
    };
    if matches!(link, Datalink::Etherstub(_)) {
        return cmd.fail(format_args!("{}", FlowError::NoClient(String::from(link.name()))));
    }
    match registry::add(name, &link, desc, props, o.has('t')) {
        Ok(_) => EXIT_OK,
        Err(e) => cmd.fail(format_args!("{e}")),
    }
}

fn remove_flow(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match options(cmd, args, "tR:l:") {
        Ok(o) => o,
        Err(st) => return st,
    };
    if let Err(st) = check_dups(cmd, &o, "t") {
        return st;
    }
    match (o.value('l'), o.operands.as_slice()) {
        (Some(l), []) => {
            let link = match cmd.find_link(&env.datalinks(), l) {
                Ok(l) => l,
                Err(st) => return st,
            };
            registry::remove_link(link.name());
            EXIT_OK
        }
        (None, [name]) => {
            let f = match find_flow(cmd, env, name) {
                Ok(f) => f,
                Err(st) => return st,
            };
            match registry::remove(f.name()) {
                Ok(_) => EXIT_OK,
                Err(e) => cmd.fail(format_args!("{e}")),
            }
        }
        (Some(_), [name, ..]) => cmd.usage_error(format_args!("-l link and a flow name '{name}' cannot be given together")),
        (None, []) => cmd.usage_error(format_args!("a flow name or -l link is required")),
        (None, [_, extra, ..]) => cmd.usage_error(format_args!("unexpected operand '{extra}'")),
    }
}

fn set_flowprop(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match options(cmd, args, "tR:p:") {
        Ok(o) => o,
        Err(st) => return st,
    };
    if let Err(st) = check_dups(cmd, &o, "tp") {
        return st;
    }
    let lists = all_values(&o, 'p');
    if lists.is_empty() {
        return cmd.usage_error(format_args!("-p prop=value[,...] is required"));
    }
    let name = match flow_operand(cmd, &o) {
        Ok(n) => n,
        Err(st) => return st,
    };
    let f = match find_flow(cmd, env, name) {
        Ok(f) => f,
        Err(st) => return st,
    };
    let assignments = match prop_assignments(cmd, &lists) {
        Ok(a) => a,
        Err(st) => return st,
    };
    match apply_props(f.props(), &assignments) {
        Ok(p) => match registry::set_props(name, p) {
            Ok(()) => EXIT_OK,
            Err(e) => cmd.fail(format_args!("{e}")),
        },
        Err((prop, why)) => cmd.fail(format_args!("cannot set flow property '{prop}' on '{name}': {why}")),
    }
}

fn reset_flowprop(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match options(cmd, args, "tR:p:") {
        Ok(o) => o,
        Err(st) => return st,
    };
    if let Err(st) = check_dups(cmd, &o, "tp") {
        return st;
    }
    let name = match flow_operand(cmd, &o) {
        Ok(n) => n,
        Err(st) => return st,
    };
    let names = match prop_names(cmd, &all_values(&o, 'p')) {
        Ok(n) => n,
        Err(st) => return st,
    };
    let f = match find_flow(cmd, env, name) {
        Ok(f) => f,
        Err(st) => return st,
    };
    let mut picked: Vec<FlowProp> = Vec::new();
    for n in names {
        let why = match FlowProp::from_name(n) {
            None => "unknown property (maxbw, priority)",
            Some(FlowProp::Hwflow) => "read-only property",
            Some(p) if picked.contains(&p) => "specified more than once",
            Some(p) => {
                picked.push(p);
                continue;
            }
        };
        return cmd.fail(format_args!("cannot reset flow property '{n}' on '{name}': {why}"));
    }
    let dflt = FlowProps::default();
    let mut p = f.props();
    if picked.is_empty() {
        p = dflt;
    }
    for prop in picked {
        match prop {
            FlowProp::Maxbw => p.maxbw = dflt.maxbw,
            FlowProp::Priority => p.priority = dflt.priority,
            FlowProp::Hwflow => {}
        }
    }
    match registry::set_props(name, p) {
        Ok(()) => EXIT_OK,
        Err(e) => cmd.fail(format_args!("{e}")),
    }
}

fn show_flowprop(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match options(cmd, args, "Pco:l:p:") {
        Ok(o) => o,
        Err(st) => return st,
    };
    if let Err(st) = check_dups(cmd, &o, "op") {
        return st;
    }
    if let Err(st) = cmd.prop_show_checks(&o) {
        return st;
    }
    let cols = match table::select(FLOWPROP, o.value('o')) {
        Ok(c) => c,
        Err(e) => return cmd.fail(format_args!("{e}")),
    };
    let names = match prop_names(cmd, &all_values(&o, 'p')) {
        Ok(n) => n,
        Err(st) => return st,
    };
    let mut wanted: Vec<FlowProp> = Vec::new();
    for n in names {
        match FlowProp::from_name(n) {
            Some(p) if !wanted.contains(&p) => wanted.push(p),
            Some(_) => {}
            None => return cmd.fail(format_args!("unknown flow property '{n}' (maxbw, priority, hwflow)")),
        }
    }
    if wanted.is_empty() {
        wanted = FlowProp::ALL.to_vec();
    }
    let flows = match pick_flows(cmd, env, o.value('l'), o.operands.first().copied()) {
        Ok(f) => f,
        Err(st) => return st,
    };
    let dash = || String::from("--");
    let mut rows = Vec::new();
    for f in &flows {
        let p = f.props();
        for prop in &wanted {
            let (perm, value, default, possible) = match prop {
                FlowProp::Maxbw => ("rw", props::fmt_maxbw(p.maxbw), dash(), dash()),
                FlowProp::Priority => (
                    "rw",
                    String::from(p.priority.name()),
                    String::from(FlowProps::default().priority.name()),
                    String::from("low,medium,high"),
                ),
                FlowProp::Hwflow => ("r-", String::from(if f.hwflow() { "on" } else { "off" }), dash(), String::from("on,off")),
            };
            rows.push(alloc::vec![String::from(f.name()), prop.name().to_string(), perm.into(), value, default, possible]);
        }
    }
    let _ = Table::new(FLOWPROP, cols, o.has('c')).print(cmd.out, &rows);
    EXIT_OK
}
