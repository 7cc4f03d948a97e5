//! `dladm`: show, create and delete data links, and their properties.
//!
//! * `show-phys [-H] [-p] [-o field,...] [link]`:
//!   `LINK MEDIA STATE SPEED DUPLEX DEVICE`; `SPEED` in Mb/s as the driver
//!   reports it (0 when unknown). `-H`: `LINK RINGTYPE RINGS CLIENTS`, one
//!   row per hardware ring group, Rx groups first (`RX`/`TX`), rings as
//!   ranges (`0-3`, `0,2`), clients the MAC clients using the group
//!   ([`Mac::group_clients`]: the default Rx group holds the primary client
//!   and the software-classified VNICs, another group the hardware VNIC
//!   that reserved it; every client transmits through the default Tx
//!   group) or `--`.
//! * `show-link [-s] [-p] [-o field,...] [link]`:
//!   `LINK CLASS MTU STATE BRIDGE OVER` over every class (`phys`, `vnic`,
//!   `etherstub`; a VNIC is over its lower link, an etherstub is `up`).
//!   `-s`: `LINK IPACKETS RBYTES IERRORS OPACKETS OBYTES OERRORS`: a
//!   physical link's hardware rings summed, a VNIC's client counters, an
//!   etherstub's frames switched locally. `IERRORS` and `OERRORS` are the
//!   errors the rings report; packets dropped are not errors (`dlstat`).
//! * `create-vnic [-t] -l link [-m auto|random|factory|MAC] [-v vid]
//!   [-p prop=value[,...]] vnic`, `delete-vnic [-t] vnic`,
//!   `show-vnic [-l link] [-p] [-o field,...] [vnic]`
//!   (`LINK OVER SPEED MACADDRESS MACADDRTYPE VID`; `-l` names a physical
//!   link or an etherstub). `delete-vnic` is refused while an IP
//!   interface is plumbed on the VNIC or flows are defined on it.
//! * `create-etherstub [-t] name`, `delete-etherstub [-t] name`,
//!   `show-etherstub [-p] [-o field,...] [name]` (`LINK`).
//! * `set-linkprop [-t] -p prop=value[,...] link`,
//!   `reset-linkprop [-t] [-p prop[,...]] link`,
//!   `show-linkprop [-c] [-o field,...] [-p prop[,...]] [link]`
//!   (`LINK PROPERTY PERM VALUE DEFAULT POSSIBLE`; `-c` is the parseable
//!   form, as in illumos, since `-p` names properties). See
//!   [`crate::props`] for the properties.
//!
//! Everything is temporary (there is no persistent configuration): `-t`
//! is accepted and changes nothing. A command that fails changes nothing:
//! every operand and property value is checked before anything is created
//! or set.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

use super::getopt::{Opts, getopt};
use super::table::{self, Field, Table};
use super::{Cmd, DladmEnv, EXIT_OK, valid_link_name, write_usage};
use crate::client::ClientCounters;
use crate::link::{self, Datalink, LinkError, MacSpec};
use crate::mac::Mac;
use crate::props::{self, Limits, Prop, PropError, PropValue, Rings};
use crate::provider::{Duplex, MacProvider};

/// The usage of every `dladm` subcommand, one per line.
pub const DLADM_USAGE: &str = "dladm show-link [-s] [-p] [-o field[,...]] [link]\n\
                               dladm show-phys [-H] [-p] [-o field[,...]] [link]\n\
                               dladm create-vnic [-t] -l link [-m auto|random|factory|MAC] [-v vid] [-p prop=value[,...]] vnic\n\
                               dladm delete-vnic [-t] vnic\n\
                               dladm show-vnic [-l link] [-p] [-o field[,...]] [vnic]\n\
                               dladm create-etherstub [-t] etherstub\n\
                               dladm delete-etherstub [-t] etherstub\n\
                               dladm show-etherstub [-p] [-o field[,...]] [etherstub]\n\
                               dladm set-linkprop [-t] -p prop=value[,...] link\n\
                               dladm reset-linkprop [-t] [-p prop[,...]] link\n\
                               dladm show-linkprop [-c] [-o field[,...]] [-p prop[,...]] [link]\n\
                               dladm help [subcommand]";

type SubFn = fn(&mut Cmd<'_>, &[&str], &dyn DladmEnv) -> i32;

const SUBCOMMANDS: &[(&str, &str, SubFn)] = &[
    ("show-link", "dladm show-link [-s] [-p] [-o field[,...]] [link]", show_link),
    ("show-phys", "dladm show-phys [-H] [-p] [-o field[,...]] [link]", show_phys),
    (
        "create-vnic",
        "dladm create-vnic [-t] -l link [-m auto|random|factory|MAC] [-v vid] [-p prop=value[,...]] vnic",
        create_vnic,
    ),
    ("delete-vnic", "dladm delete-vnic [-t] vnic", delete_vnic),
    ("show-vnic", "dladm show-vnic [-l link] [-p] [-o field[,...]] [vnic]", show_vnic),
    ("create-etherstub", "dladm create-etherstub [-t] etherstub", create_etherstub),
    ("delete-etherstub", "dladm delete-etherstub [-t] etherstub", delete_etherstub),
    ("show-etherstub", "dladm show-etherstub [-p] [-o field[,...]] [etherstub]", show_etherstub),
    ("set-linkprop", "dladm set-linkprop [-t] -p prop=value[,...] link", set_linkprop),
    ("reset-linkprop", "dladm reset-linkprop [-t] [-p prop[,...]] link", reset_linkprop),
    ("show-linkprop", "dladm show-linkprop [-c] [-o field[,...]] [-p prop[,...]] [link]", show_linkprop),
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

const VNIC: &[Field] = &[
    Field::left("LINK", 12),
    Field::left("OVER", 12),
    Field::right("SPEED", 6),
    Field::left("MACADDRESS", 18),
    Field::left("MACADDRTYPE", 12),
    Field::right("VID", 5),
];

const ETHERSTUB: &[Field] = &[Field::left("LINK", 12)];

const LINKPROP: &[Field] = &[
    Field::left("LINK", 12),
    Field::left("PROPERTY", 18),
    Field::left("PERM", 4),
    Field::left("VALUE", 10),
    Field::left("DEFAULT", 10),
    Field::left("POSSIBLE", 12),
];

/// Runs `dladm` (`argv[0]` is the command name) in `env`, printing to
/// `out`; returns the exit status.
pub fn dladm(argv: &[&str], env: &dyn DladmEnv, out: &mut dyn Write) -> i32 {
    let mut cmd = Cmd { name: "dladm", usage: DLADM_USAGE, out };
    let Some(&sub) = argv.get(1) else {
        return cmd.usage_error(format_args!("missing subcommand"));
    };
    match SUBCOMMANDS.iter().find(|s| s.0 == sub) {
        Some(&(_, usage, run)) => {
            cmd.usage = usage;
            run(&mut cmd, argv.get(2..).unwrap_or_default(), env)
        }
        None => cmd.usage_error(format_args!("unknown subcommand '{sub}'")),
    }
}

fn help(cmd: &mut Cmd<'_>, args: &[&str], _env: &dyn DladmEnv) -> i32 {
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

/// How a class is named in "is not a ..." errors.
fn class_noun(class: &str) -> &'static str {
    match class {
        "phys" => "a physical link",
        "vnic" => "a VNIC",
        "etherstub" => "an etherstub",
        _ => "a link of that class",
    }
}

/// Parses a show form's options, selects its fields and the links of
/// `class` (every class if `None`), and prints the rows `rows` makes for
/// each link. An operand of another class is an error.
fn show(
    cmd: &mut Cmd<'_>,
    o: &Opts<'_>,
    template: &[Field],
    links: &[Datalink],
    class: Option<&str>,
    rows: impl Fn(&Datalink, &mut Vec<Vec<String>>),
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
    if let (Some(class), Some(name)) = (class, operand)
        && picked.iter().any(|l| l.class() != class)
    {
        return cmd.fail(format_args!("link '{name}' is not {}", class_noun(class)));
    }
    let mut all = Vec::new();
    for l in picked.iter().filter(|l| class.is_none_or(|c| l.class() == c)) {
        rows(l, &mut all);
    }
    let _ = Table::new(template, cols, o.has('p')).print(cmd.out, &all);
    EXIT_OK
}

fn names(v: Vec<String>) -> String {
    if v.is_empty() { String::from("--") } else { v.join(",") }
}

fn show_phys(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "Hpo:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    let links = env.datalinks();
    if o.has('H') {
        return show(cmd, &o, PHYS_H, &links, Some("phys"), |l, rows| {
            let Datalink::Phys(m) = l else { return };
            let info = m.info();
            let rx: Vec<Vec<String>> = (0..info.rx_groups.len()).map(|g| m.group_clients(g)).collect();
            for (g, group) in info.rx_groups.iter().enumerate() {
                let clients = names(rx.get(g).cloned().unwrap_or_default());
                rows.push(alloc::vec![m.link().into(), "RX".into(), table::ranges(&group.rings), clients]);
            }
            for (g, group) in info.tx_groups.iter().enumerate() {
                let clients = if g == 0 {
                    let mut all: Vec<String> = Vec::new();
                    for n in rx.iter().flatten() {
                        if !all.contains(n) {
                            all.push(n.clone());
                        }
                    }
                    names(all)
                } else {
                    String::from("--")
                };
                rows.push(alloc::vec![m.link().into(), "TX".into(), table::ranges(&group.rings), clients]);
            }
        });
    }
    show(cmd, &o, PHYS, &links, Some("phys"), |l, rows| {
        let Datalink::Phys(m) = l else { return };
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
fn ring_sums(m: &Mac) -> [u64; 6] {
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

/// An etherstub's traffic: what its clients received and sent through it
/// (every frame on an etherstub is local).
pub(crate) fn etherstub_counters(s: &crate::switch::Switch) -> ClientCounters {
    let mut t = ClientCounters::default();
    for c in s.clients() {
        let k = c.stats.snapshot();
        t.ipackets = t.ipackets.wrapping_add(k.local_ipackets);
        t.rbytes = t.rbytes.wrapping_add(k.local_rbytes);
        t.opackets = t.opackets.wrapping_add(k.local_opackets);
        t.obytes = t.obytes.wrapping_add(k.local_obytes);
        t.local_ipackets = t.local_ipackets.wrapping_add(k.local_ipackets);
        t.local_rbytes = t.local_rbytes.wrapping_add(k.local_rbytes);
        t.local_opackets = t.local_opackets.wrapping_add(k.local_opackets);
        t.local_obytes = t.local_obytes.wrapping_add(k.local_obytes);
        t.bcast_ipackets = t.bcast_ipackets.wrapping_add(k.bcast_ipackets);
        t.tx_drops = t.tx_drops.wrapping_add(k.tx_drops);
    }
    t
}

fn show_link(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "spo:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    let links = env.datalinks();
    if o.has('s') {
        return show(cmd, &o, LINK_S, &links, None, |l, rows| {
            let s = match l {
                Datalink::Phys(m) => ring_sums(m),
                Datalink::Vnic(c) => {
                    let k = c.stats.snapshot();
                    [k.ipackets, k.rbytes, 0, k.opackets, k.obytes, 0]
                }
                Datalink::Etherstub(s) => {
                    let k = etherstub_counters(s);
                    [k.ipackets, k.rbytes, 0, k.opackets, k.obytes, 0]
                }
            };
            let mut row = alloc::vec![String::from(l.name())];
            row.extend(s.iter().map(|n| n.to_string()));
            rows.push(row);
        });
    }
    show(cmd, &o, LINK, &links, None, |l, rows| {
        let (mtu, state, over) = match l {
            Datalink::Phys(m) => (m.info().mtu, m.link_state(), String::from("--")),
            Datalink::Vnic(c) => (c.mtu(), c.link_state(), c.over()),
            Datalink::Etherstub(s) => (s.mtu(), s.link_state(), String::from("--")),
        };
        rows.push(alloc::vec![
            l.name().into(),
            l.class().into(),
            mtu.to_string(),
            state.name().into(),
            "--".into(),
            over,
        ]);
    })
}

/// The single operand of a create/delete form (errors printed).
pub(super) fn one_operand<'a>(cmd: &mut Cmd<'_>, o: &Opts<'a>, what: &str) -> Result<&'a str, i32> {
    match o.operands.as_slice() {
        [] => Err(cmd.usage_error(format_args!("missing {what} name"))),
        [name] => Ok(name),
        [_, extra, ..] => Err(cmd.usage_error(format_args!("unexpected operand '{extra}'"))),
    }
}

/// The name a new link is to have: valid and not taken (errors printed).
fn new_name(cmd: &mut Cmd<'_>, links: &[Datalink], name: &str) -> Result<(), i32> {
    if !valid_link_name(name) {
        return Err(cmd.fail(format_args!("{}", LinkError::InvalidName(String::from(name)))));
    }
    if links.iter().any(|l| l.name() == name) || link::datalink(name).is_some() {
        return Err(cmd.fail(format_args!("{}", LinkError::Exists(String::from(name)))));
    }
    Ok(())
}

/// Splits `-p` lists (illumos style: `a=1,2,b=3` is `a` = `1,2` and `b` =
/// `3`) into (name, value) pairs.
pub(super) fn prop_assignments(cmd: &mut Cmd<'_>, lists: &[&str]) -> Result<Vec<(String, String)>, i32> {
    let mut out: Vec<(String, String)> = Vec::new();
    for list in lists {
        for token in list.split(',') {
            match token.split_once('=') {
                Some((name, value)) if !name.is_empty() => out.push((String::from(name), String::from(value))),
                Some(_) => return Err(cmd.usage_error(format_args!("invalid property specification '{list}'"))),
                None => match out.last_mut() {
                    Some((_, v)) if !token.is_empty() => {
                        v.push(',');
                        v.push_str(token);
                    }
                    _ => return Err(cmd.usage_error(format_args!("invalid property specification '{list}'"))),
                },
            }
        }
    }
    Ok(out)
}

/// The property names of `-p prop,...` lists.
pub(super) fn prop_names<'a>(cmd: &mut Cmd<'_>, lists: &[&'a str]) -> Result<Vec<&'a str>, i32> {
    let mut out = Vec::new();
    for list in lists {
        for name in list.split(',') {
            if name.is_empty() || name.contains('=') {
                return Err(cmd.usage_error(format_args!("invalid property list '{list}'")));
            }
            out.push(name);
        }
    }
    Ok(out)
}

pub(super) fn all_values<'a>(o: &Opts<'a>, c: char) -> Vec<&'a str> {
    o.opts.iter().filter(|&&(x, _)| x == c).filter_map(|&(_, v)| v).collect()
}

pub(super) fn check_dups(cmd: &mut Cmd<'_>, o: &Opts<'_>, allow: &str) -> Result<(), i32> {
    match o.duplicate(allow) {
        Some(c) => Err(cmd.usage_error(format_args!("the option -{c} cannot be specified more than once"))),
        None => Ok(()),
    }
}

/// Parses a `-v` VLAN id: 1-4094.
fn parse_vid(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|v| (1..=4094).contains(v))
}

fn create_vnic(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "tl:m:v:p:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if let Err(st) = check_dups(cmd, &o, "pt") {
        return st;
    }
    let name = match one_operand(cmd, &o, "vnic") {
        Ok(n) => n,
        Err(st) => return st,
    };
    let Some(over) = o.value('l') else {
        return cmd.usage_error(format_args!("-l link is required"));
    };
    let links = env.datalinks();
    if let Err(st) = new_name(cmd, &links, name) {
        return st;
    }
    let lower = match cmd.find_link(&links, over) {
        Ok(l) => l,
        Err(st) => return st,
    };
    if matches!(lower, Datalink::Vnic(_)) {
        return cmd.fail(format_args!("{}", LinkError::BadLower(String::from(over))));
    }
    let spec = match o.value('m').map(MacSpec::parse) {
        None => MacSpec::Auto,
        Some(Ok(s)) => s,
        Some(Err(e)) => return cmd.fail(format_args!("{e}")),
    };
    let vid = match o.value('v') {
        None => 0,
        Some(v) => match parse_vid(v) {
            Some(n) => n,
            None => return cmd.fail(format_args!("invalid VLAN id '{v}' (1-4094)")),
        },
    };
    let assignments = match prop_assignments(cmd, &all_values(&o, 'p')) {
        Ok(a) => a,
        Err(st) => return st,
    };
    let pairs: Vec<(&str, &str)> = assignments.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let values = match props::validate(&pairs, &Limits::for_vnic_over(&lower, env.cpu_count())) {
        Ok(v) => v,
        Err(e) => return cmd.fail(format_args!("cannot create vnic '{name}': {e}")),
    };
    let hw_lane = !values.iter().any(|v| matches!(v, props::PropValue::Rxrings(Some(props::Rings::Sw))));
    if let Err(e) = link::create_vnic_with(name, over, spec, vid, env.entropy(), hw_lane) {
        return cmd.fail(format_args!("{e}"));
    }
    // Nothing stale from an earlier link of that name.
    props::forget(name);
    if !values.is_empty() {
        props::store(name, values);
    } else if link::datalink(name).and_then(|l| l.client()).is_some_and(|c| c.hw_group().is_some()) {
        // A ring group changed hands: its lanes leave the physical link's
        // `cpus`/`priority` for the new VNIC's (the defaults).
        props::reapply(name);
    }
    EXIT_OK
}

/// The link named by the single operand, which must be of `class`.
fn existing(cmd: &mut Cmd<'_>, o: &Opts<'_>, env: &dyn DladmEnv, class: &str) -> Result<Datalink, i32> {
    let name = one_operand(cmd, o, if class == "vnic" { "vnic" } else { class })?;
    let l = cmd.find_link(&env.datalinks(), name)?;
    if l.class() != class {
        return Err(cmd.fail(format_args!("link '{name}' is not {}", class_noun(class))));
    }
    Ok(l)
}

fn delete_vnic(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "t") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    let l = match existing(cmd, &o, env, "vnic") {
        Ok(l) => l,
        Err(st) => return st,
    };
    // Flows point at the VNIC's client: refused while any remain (as
    // illumos refuses).
    let flows = crate::flow::registry::on_link(l.name());
    if !flows.is_empty() {
        let names: Vec<&str> = flows.iter().map(|f| f.name()).collect();
        let why = alloc::format!(
            "{} flow(s) are defined on it ({}); remove them first with flowadm remove-flow -l {}",
            flows.len(),
            names.join(","),
            l.name()
        );
        return cmd.fail(format_args!("{}", LinkError::Busy(String::from(l.name()), why)));
    }
    // A hardware VNIC's ring group goes back to its physical link, whose
    // `cpus`/`priority` its lanes then follow again.
    let lower = l.client().filter(|c| c.hw_group().is_some()).and_then(|c| c.lower()).and_then(|s| s.wire());
    match link::delete_vnic(l.name()) {
        Ok(()) => {
            props::forget(l.name());
            if let Some(m) = lower {
                props::reapply(m.link());
            }
            EXIT_OK
        }
        Err(e) => cmd.fail(format_args!("{e}")),
    }
}

fn show_vnic(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "l:po:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if let Err(st) = check_dups(cmd, &o, "o") {
        return st;
    }
    let links = env.datalinks();
    let over = match o.value('l') {
        None => None,
        Some(l) => match cmd.find_link(&links, l) {
            // VNICs sit on physical links and etherstubs only.
            Ok(Datalink::Vnic(_)) => return cmd.fail(format_args!("{}", LinkError::BadLower(String::from(l)))),
            Ok(l) => Some(String::from(l.name())),
            Err(st) => return st,
        },
    };
    show(cmd, &o, VNIC, &links, Some("vnic"), |l, rows| {
        let Datalink::Vnic(c) = l else { return };
        let lower = c.over();
        if over.as_ref().is_some_and(|o| *o != lower) {
            return;
        }
        let speed = c.lower().and_then(|s| s.wire()).map_or(0, |m| m.provider().speed_mbps());
        rows.push(alloc::vec![
            c.name().into(),
            lower,
            speed.to_string(),
            link::fmt_mac(&c.addr()),
            c.addr_type().name().into(),
            c.vid().to_string(),
        ]);
    })
}

fn create_etherstub(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "t") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    let name = match one_operand(cmd, &o, "etherstub") {
        Ok(n) => n,
        Err(st) => return st,
    };
    if let Err(st) = new_name(cmd, &env.datalinks(), name) {
        return st;
    }
    match link::create_etherstub(name, env.dma()) {
        Ok(_) => {
            props::forget(name);
            EXIT_OK
        }
        Err(e) => cmd.fail(format_args!("{e}")),
    }
}

fn delete_etherstub(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "t") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    let l = match existing(cmd, &o, env, "etherstub") {
        Ok(l) => l,
        Err(st) => return st,
    };
    match link::delete_etherstub(l.name()) {
        Ok(()) => {
            props::forget(l.name());
            EXIT_OK
        }
        Err(e) => cmd.fail(format_args!("{e}")),
    }
}

fn show_etherstub(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "po:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    show(cmd, &o, ETHERSTUB, &env.datalinks(), Some("etherstub"), |l, rows| {
        rows.push(alloc::vec![l.name().into()]);
    })
}

/// The one link operand of a property command (errors printed).
fn prop_link(cmd: &mut Cmd<'_>, o: &Opts<'_>, env: &dyn DladmEnv) -> Result<Datalink, i32> {
    let name = one_operand(cmd, o, "link")?;
    cmd.find_link(&env.datalinks(), name)
}

fn prop_fail(cmd: &mut Cmd<'_>, verb: &str, link: &str, e: &PropError) -> i32 {
    cmd.fail(format_args!("cannot {verb} link property '{}' on '{link}': {}", e.prop(), e.reason()))
}

fn set_linkprop(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "tp:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if let Err(st) = check_dups(cmd, &o, "pt") {
        return st;
    }
    let lists = all_values(&o, 'p');
    if lists.is_empty() {
        return cmd.usage_error(format_args!("-p prop=value is required"));
    }
    let l = match prop_link(cmd, &o, env) {
        Ok(l) => l,
        Err(st) => return st,
    };
    let assignments = match prop_assignments(cmd, &lists) {
        Ok(a) => a,
        Err(st) => return st,
    };
    let pairs: Vec<(&str, &str)> = assignments.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    match props::validate(&pairs, &Limits::of(&l, env.cpu_count())) {
        Ok(values) => {
            // `rxrings` on an existing VNIC moves it between a ring group
            // of its own and software classification, before anything is
            // stored (a refusal changes nothing).
            if let Datalink::Vnic(c) = &l {
                for v in &values {
                    if let PropValue::Rxrings(Some(r)) = v {
                        let hw = !matches!(r, Rings::Sw);
                        if hw != c.hw_group().is_some()
                            && let Err(e) = crate::link::set_vnic_hw_lane(l.name(), hw)
                        {
                            return cmd.fail(format_args!("cannot set rxrings on link '{}': {e}", l.name()));
                        }
                    }
                }
            }
            props::store(l.name(), values);
            EXIT_OK
        }
        Err(e) => prop_fail(cmd, "set", l.name(), &e),
    }
}

fn reset_linkprop(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "tp:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if let Err(st) = check_dups(cmd, &o, "pt") {
        return st;
    }
    let l = match prop_link(cmd, &o, env) {
        Ok(l) => l,
        Err(st) => return st,
    };
    let names = match prop_names(cmd, &all_values(&o, 'p')) {
        Ok(n) => n,
        Err(st) => return st,
    };
    let lim = Limits::of(&l, env.cpu_count());
    match props::validate_reset(&names, &lim) {
        Ok(ps) => {
            // Unset `rxrings` lets the system choose, as at creation: a
            // software-classified VNIC takes a free ring group if there
            // is one (best effort: none free leaves it in software).
            if let Datalink::Vnic(c) = &l
                && ps.contains(&Prop::Rxrings)
                && c.hw_group().is_none()
            {
                let _ = crate::link::set_vnic_hw_lane(l.name(), true);
            }
            props::reset_props(l.name(), &ps);
            EXIT_OK
        }
        Err(e) => prop_fail(cmd, "reset", l.name(), &e),
    }
}

fn show_linkprop(cmd: &mut Cmd<'_>, args: &[&str], env: &dyn DladmEnv) -> i32 {
    let o = match getopt(args, "cp:o:") {
        Ok(o) => o,
        Err(e) => return cmd.usage_error(format_args!("{e}")),
    };
    if let Err(st) = check_dups(cmd, &o, "op") {
        return st;
    }
    if let Err(st) = cmd.prop_show_checks(&o) {
        return st;
    }
    let cols = match table::select(LINKPROP, o.value('o')) {
        Ok(c) => c,
        Err(e) => return cmd.fail(format_args!("{e}")),
    };
    let names = match prop_names(cmd, &all_values(&o, 'p')) {
        Ok(n) => n,
        Err(st) => return st,
    };
    let mut wanted: Vec<Prop> = Vec::new();
    for n in names {
        match Prop::from_name(n) {
            Some(p) if !wanted.contains(&p) => wanted.push(p),
            Some(_) => {}
            None => return cmd.fail(format_args!("unknown property '{n}'")),
        }
    }
    let picked = match cmd.pick_links(&env.datalinks(), o.operands.first().copied()) {
        Ok(p) => p,
        Err(st) => return st,
    };
    let cpus = env.cpu_count();
    let mut rows = Vec::new();
    for l in &picked {
        let mut views = props::view(l, cpus);
        if !wanted.is_empty() {
            // In the order asked for.
            views.retain(|v| wanted.contains(&v.prop));
            views.sort_by_key(|v| wanted.iter().position(|p| *p == v.prop));
        }
        for v in views {
            rows.push(alloc::vec![String::from(l.name()), v.prop.name().into(), v.perm.into(), v.value, v.default, v.possible]);
        }
    }
    let _ = Table::new(LINKPROP, cols, o.has('c')).print(cmd.out, &rows);
    EXIT_OK
}
