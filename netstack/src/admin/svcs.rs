//! `svcs` and `svcadm`: the in-kernel services of every IP interface, as
//! illumos' SMF commands show and change them.
//!
//! * `svcs [-aHl] [-i IFNAME] [pattern...]`: one row per service
//!   instance — `STATE` (`online`, `disabled`), `STIME` (when it entered
//!   that state, `HH:MM:SS` UTC; `-` when the stack does not know), `FMRI`
//!   (`svc:/network/echo:stream`, `svc:/network/http:default`, ...) and
//!   `IFNAME`, the IP interface (the instance) it runs in, as `svcs -Z`
//!   adds a zone. As in illumos, disabled services are listed only with
//!   `-a` or when named by a pattern. `-l` prints each in the long form,
//!   with its port and counters; `-H` omits the header.
//! * `svcadm enable|disable [-st] [-i IFNAME] pattern...`: `echo`,
//!   `discard`, `chargen` (TCP), `udp-echo`, `udp-discard`, `http`, or an
//!   FMRI or its tail (`network/http`, `http:default`). Without `-i`, on
//!   every interface whose stack can change its services. Disabling
//!   closes the listener or socket: a new TCP connection is refused with
//!   a RST; established connections are left to finish. `-s` and `-t`
//!   are accepted (every change is synchronous and temporary: nothing
//!   persists across boots).
//!
//! A pattern that matches nothing: `Pattern 'foo' doesn't match any
//! instances`, status 1; several services of one interface:
//! `Pattern 'echo' matches multiple instances`, status 1; a bad option:
//! the usage, status 2.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use super::getopt::getopt;
use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE};
use crate::stack::{IpStack, NetError, SvcInfo};

/// `svcs`' usage.
pub const SVCS_USAGE: &str = "svcs [-aHl] [-i ifname] [pattern ...]";
/// `svcadm`'s usage.
pub const SVCADM_USAGE: &str = "svcadm enable [-st] [-i ifname] pattern ...\nsvcadm disable [-st] [-i ifname] pattern ...";

/// Whether `pat` names `s`: its `svcadm` name, its FMRI, or the FMRI's
/// tail after any `/` (`network/http:default`, `http:default`), or the
/// service part alone (`http`, which for `echo` is both `echo:stream`
/// and `echo:dgram`).
fn matches(pat: &str, s: &SvcInfo) -> bool {
    if pat == s.name || pat == s.fmri {
        return true;
    }
    let tail = s.fmri.strip_prefix("svc:/").unwrap_or(s.fmri);
    if pat == tail || tail.ends_with(&alloc::format!("/{pat}")) {
        return true;
    }
    let svc = tail.rsplit('/').next().unwrap_or(tail);
    svc.split(':').next() == Some(pat) || tail.split(':').next() == Some(pat)
}

/// The services of `inst` `pat` picks: an exact `svcadm` name wins over
/// FMRI matches.
fn pick<'a>(pat: &str, svcs: &'a [SvcInfo]) -> Vec<&'a SvcInfo> {
    if let Some(s) = svcs.iter().find(|s| s.name == pat) {
        return alloc::vec![s];
    }
    svcs.iter().filter(|s| matches(pat, s)).collect()
}

fn stime(env: &dyn AdminEnv, since_us: Option<u64>) -> String {
    let (Some(since), Some(unix)) = (since_us, env.unix_time()) else { return String::from("-") };
    let ago = env.now_us().saturating_sub(since) / 1_000_000;
    let t = unix.saturating_sub(ago) % 86_400;
    alloc::format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

fn state(s: &SvcInfo) -> &'static str {
    if s.online { "online" } else { "disabled" }
}

fn instances(env: &dyn AdminEnv, ifname: Option<&str>, cmd: &str, out: &mut dyn Write) -> Result<Vec<Arc<dyn IpStack>>, i32> {
    match ifname {
        Some(n) => match env.instance(n) {
            Some(i) => Ok(alloc::vec![i]),
            None => {
                let _ = writeln!(out, "{cmd}: interface '{n}': No such interface");
                Err(EXIT_FAIL)
            }
        },
        None => Ok(env.instances()),
    }
}

/// `svcs`.
pub fn svcs(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let o = match getopt(argv.get(1..).unwrap_or(&[]), "aHli:") {
        Ok(o) => o,
        Err(_) => {
            let _ = writeln!(out, "Usage: {SVCS_USAGE}");
            return EXIT_USAGE;
        }
    };
    let insts = match instances(env, o.value('i'), "svcs", out) {
        Ok(v) => v,
        Err(s) => return s,
    };
    let mut rows: Vec<(String, SvcInfo)> = Vec::new();
    let mut status = 0;
    if o.operands.is_empty() {
        for i in &insts {
            for s in i.services() {
                if s.online || o.has('a') {
                    rows.push((String::from(i.name()), s));
                }
            }
        }
    } else {
        for pat in &o.operands {
            let mut any = false;
            for i in &insts {
                let svcs = i.services();
                for s in svcs.iter().filter(|s| matches(pat, s)) {
                    any = true;
                    rows.push((String::from(i.name()), s.clone()));
                }
            }
            if !any {
                let _ = writeln!(out, "svcs: Pattern '{pat}' doesn't match any instances");
                status = EXIT_FAIL;
            }
        }
    }
    if o.has('l') {
        for (k, (ifname, s)) in rows.iter().enumerate() {
            if k > 0 {
                let _ = writeln!(out);
            }
            let _ = writeln!(out, "fmri         {}", s.fmri);
            let _ = writeln!(out, "name         {}", s.name);
            let _ = writeln!(out, "enabled      {}", s.online);
            let _ = writeln!(out, "state        {}", state(s));
            let _ = writeln!(out, "next_state   none");
            let _ = writeln!(out, "state_time   {}", stime(env, s.since_us));
            let _ = writeln!(out, "ifname       {ifname}");
            let _ = writeln!(out, "port         {}/{}", s.proto, s.port);
            let _ = writeln!(out, "manageable   {}", if s.manageable { "yes" } else { "no (fixed on this stack)" });
            for (name, v) in &s.counters {
                let _ = writeln!(out, "{:<12} {v}", alloc::format!("{name}"));
            }
        }
        return status;
    }
    if !o.has('H') && !rows.is_empty() {
        let _ = writeln!(out, "STATE          STIME    FMRI                              IFNAME");
    }
    for (ifname, s) in &rows {
        let _ = writeln!(out, "{:<14} {:<8} {:<33} {ifname}", state(s), stime(env, s.since_us), s.fmri);
    }
    status
}

/// Every service some stack has (to tell "no such service" from "not
/// on this stack").
fn known() -> Vec<SvcInfo> {
    ["echo", "discard", "chargen", "udp-echo", "udp-discard", "http"]
        .iter()
        .map(|&name| {
            let (wire, proto) = match name {
                "udp-echo" => ("echo", crate::stack::Proto::Udp),
                "udp-discard" => ("discard", crate::stack::Proto::Udp),
                n => (n, crate::stack::Proto::Tcp),
            };
            let fmri = crate::stack::service_fmri(wire, proto).map_or("", |f| f.1);
            SvcInfo { name, fmri, proto, port: 0, online: false, since_us: None, manageable: false, counters: Vec::new() }
        })
        .collect()
}

/// `svcadm`.
pub fn svcadm(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let usage = |out: &mut dyn Write| {
        let _ = writeln!(out, "Usage:");
        for l in SVCADM_USAGE.lines() {
            let _ = writeln!(out, "\t{l}");
        }
        EXIT_USAGE
    };
    let enable = match argv.get(1) {
        Some(&"enable") => true,
        Some(&"disable") => false,
        _ => return usage(out),
    };
    let o = match getopt(&argv[2..], "sti:") {
        Ok(o) => o,
        Err(_) => return usage(out),
    };
    if o.operands.is_empty() {
        return usage(out);
    }
    let insts = match instances(env, o.value('i'), "svcadm", out) {
        Ok(v) => v,
        Err(s) => return s,
    };
    if insts.is_empty() {
        let _ = writeln!(out, "svcadm: no IP interfaces");
        return EXIT_FAIL;
    }
    let mut status = 0;
    for pat in &o.operands {
        // What each interface calls it.
        let mut found = false;
        let mut acted = false;
        let mut unsupported = Vec::new();
        let mut fixed_stack = None;
        for i in &insts {
            let svcs = i.services();
            if !svcs.iter().any(|s| s.manageable) {
                fixed_stack = Some(i.stack_kind().name());
            }
            let hits = pick(pat, &svcs);
            if hits.len() > 1 {
                let names: Vec<&str> = hits.iter().map(|s| s.fmri).collect();
                let _ = writeln!(out, "svcadm: Pattern '{pat}' matches multiple instances:");
                for n in names {
                    let _ = writeln!(out, "    {n}");
                }
                status = EXIT_FAIL;
                found = true;
                break;
            }
            let Some(s) = hits.first() else {
                // A stack without it: http on smoltcp, say.
                if o.value('i').is_some() && i.set_service(pat, enable) == Err(NetError::NotSupported) {
                    unsupported.push(String::from(i.name()));
                }
                continue;
            };
            found = true;
            if !s.manageable {
                if o.value('i').is_some() {
                    unsupported.push(String::from(i.name()));
                }
                continue;
            }
            match i.set_service(s.name, enable) {
                Ok(()) => acted = true,
                Err(NetError::NotSupported) => unsupported.push(String::from(i.name())),
                Err(e) => {
                    let _ = writeln!(out, "svcadm: {}: cannot {} on {}: {e}", s.fmri, argv[1], i.name());
                    status = EXIT_FAIL;
                }
            }
        }
        for n in &unsupported {
            let stack = env.instance(n).map_or("this", |i| i.stack_kind().name());
            let _ = writeln!(out, "svcadm: {pat} on {n}: not supported on the {stack} stack");
            status = EXIT_FAIL;
        }
        if !found && unsupported.is_empty() {
            match fixed_stack {
                Some(stack) if pick(pat, &known()).len() == 1 => {
                    let _ = writeln!(out, "svcadm: {pat}: not supported on the {stack} stack");
                }
                _ => {
                    let _ = writeln!(out, "svcadm: Pattern '{pat}' doesn't match any instances");
                }
            }
            status = EXIT_FAIL;
        } else if found && !acted && unsupported.is_empty() && status == 0 {
            // Every interface that has it cannot change it.
            let _ = writeln!(out, "svcadm: {pat}: not supported on the {} stack", fixed_stack.unwrap_or("this"));
            status = EXIT_FAIL;
        }
    }
    status
}
