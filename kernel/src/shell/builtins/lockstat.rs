//! `lockstat -I`: the kernel profiler, as illumos' `lockstat -kIW -D 20
//! sleep 10` is used. For the given seconds every scheduler tick (`hz`
//! per CPU) counts the program counter it interrupted; then the callers
//! are printed, the most sampled first:
//!
//! ```text
//! Profiling interrupt: 4002 events in 2.001 seconds (2000 events/sec)
//!
//! Count indv cuml CPU     Caller
//! -------------------------------------------------------------------------------
//!  1201  30%  30% cpu[1]  arbalest_kernel::sched::cpu::idle_loop+0x2b
//! ```
//!
//! * `-I` (required): the profiling interrupt; lock contention events,
//!   lockstat's default, do not exist here.
//! * `-k`: coalesce program counters within functions (no `+0x..`).
//! * `-W`: do not tell CPUs apart (the `CPU` column goes).
//! * `-D count`: only the first `count` rows.
//! * operands `sleep seconds` (1 to 3600): how long to sample; a key press
//!   ends the profile early and prints what it has.
//!
//! Names come from the symbol table bootimage attaches; without one,
//! callers are addresses. Ticks that arrive while a CPU runs with
//! interrupts masked land on the instruction that unmasks them.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::prof::sampler::Samples;
use crate::shell::{Command, Ctx, ShellHost, EXIT_OK, EXIT_USAGE};

pub(super) const COMMAND: Command = Command {
    name: "lockstat",
    usage: "lockstat -I [-kW] [-D count] sleep seconds",
    summary: "profile the kernel: where the CPUs spend their time",
    run,
};

const RULE: &str = "-------------------------------------------------------------------------------";

/// One printed row.
struct Row {
    count: u64,
    cpu: Option<u32>,
    caller: String,
}

/// The rows of `s`, merged as `-k` and `-W` ask, most counted first.
fn rows(s: &Samples, host: &dyn ShellHost, by_function: bool, by_cpu: bool) -> Vec<Row> {
    let mut merged: BTreeMap<(Option<u32>, String), u64> = BTreeMap::new();
    for h in &s.hits {
        let caller = match host.ksym(h.pc) {
            Some((name, _)) if by_function => name,
            Some((name, 0)) => name,
            Some((name, off)) => format!("{name}+0x{off:x}"),
            None => format!("0x{:x}", h.pc),
        };
        *merged.entry((by_cpu.then_some(h.cpu), caller)).or_default() += h.count;
    }
    let mut v: Vec<Row> = merged.into_iter().map(|((cpu, caller), count)| Row { count, cpu, caller }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.caller.cmp(&b.caller)).then(a.cpu.cmp(&b.cpu)));
    v
}

fn pct(n: u64, of: u64) -> u64 {
    if of == 0 {
        0
    } else {
        (n * 100 + of / 2) / of
    }
}

fn report(ctx: &mut Ctx<'_>, s: &Samples, ns: u64, by_function: bool, by_cpu: bool, limit: Option<usize>) {
    let secs_milli = ns / 1_000_000;
    let per_sec = if ns == 0 { 0 } else { (u128::from(s.samples) * 1_000_000_000 / u128::from(ns)) as u64 };
    let _ = writeln!(
        ctx.out,
        "Profiling interrupt: {} events in {}.{:03} seconds ({} events/sec)",
        s.samples,
        secs_milli / 1000,
        secs_milli % 1000,
        per_sec
    );
    let _ = writeln!(ctx.out);
    if by_cpu {
        let _ = writeln!(ctx.out, "Count indv cuml CPU     Caller");
    } else {
        let _ = writeln!(ctx.out, "Count indv cuml Caller");
    }
    let _ = writeln!(ctx.out, "{RULE}");
    let all = rows(s, ctx.host, by_function, by_cpu);
    let mut cuml = 0;
    for r in all.iter().take(limit.unwrap_or(usize::MAX)) {
        cuml += r.count;
        let (indv, cum) = (pct(r.count, s.samples), pct(cuml, s.samples));
        let _ = match r.cpu {
            Some(c) => writeln!(ctx.out, "{:>5} {:>3}% {:>3}% {:<7} {}", r.count, indv, cum, format!("cpu[{c}]"), r.caller),
            None => writeln!(ctx.out, "{:>5} {:>3}% {:>3}% {}", r.count, indv, cum, r.caller),
        };
    }
    let _ = writeln!(ctx.out, "{RULE}");
    if s.lost > 0 {
        let _ = writeln!(ctx.out, "lockstat: {} events lost (more distinct callers than the table holds)", s.lost);
    }
}

fn run(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let Some(p) = ctx.getopt(argv, "IkWD:") else {
        return EXIT_USAGE;
    };
    if !p.has('I') {
        return ctx.bad_usage(format_args!("only -I (the profiling interrupt) is supported"));
    }
    let limit = match p.value('D') {
        None => None,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return ctx.bad_usage(format_args!("invalid count '{v}'")),
        },
    };
    let secs = match p.operands.as_slice() {
        ["sleep", n] => match n.parse::<u64>() {
            Ok(s) if (1..=3600).contains(&s) => s,
            _ => return ctx.bad_usage(format_args!("invalid sleep time '{n}' (1 to 3600 seconds)")),
        },
        [] => return ctx.bad_usage(format_args!("missing 'sleep seconds'")),
        _ => return ctx.usage_error(),
    };
    if let Err(why) = ctx.host.profile_start() {
        let _ = writeln!(ctx.out, "lockstat: {why}");
        return 1;
    }
    let t0 = ctx.host.monotonic_ns();
    super::mpstat::wait(ctx.host, secs * 1000);
    let s = ctx.host.profile_stop();
    let ns = ctx.host.monotonic_ns().saturating_sub(t0);
    report(ctx, &s, ns, p.has('k'), !p.has('W'), limit);
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prof::sampler::Hit;
    use crate::shell::testhost::{run, FakeHost};
    use crate::shell::{Outcome, Shell};
    use alloc::borrow::ToOwned;
    use alloc::vec;

    fn host() -> FakeHost {
        let mut h = FakeHost::new(2);
        h.syms = vec![(0x1000, 0x100, "idle_loop"), (0x2000, 0x80, "tcp_input")];
        *h.profile.borrow_mut() = Some(Samples {
            hits: vec![
                Hit { cpu: 1, pc: 0x1010, count: 50 },
                Hit { cpu: 0, pc: 0x2000, count: 20 },
                Hit { cpu: 0, pc: 0x2010, count: 20 },
                Hit { cpu: 0, pc: 0x1010, count: 9 },
                Hit { cpu: 1, pc: 0x9999, count: 1 },
            ],
            samples: 100,
            lost: 0,
        });
        h
    }

    #[test]
    fn per_cpu_and_pc() {
        let h = host();
        let (o, out) = run(&mut Shell::new(), &h, "lockstat -I sleep 2");
        assert_eq!(o, Outcome::Status(0));
        assert_eq!(h.slept_ms.get(), 2000);
        let want = "Profiling interrupt: 100 events in 2.000 seconds (50 events/sec)\r\n\r\n\
            Count indv cuml CPU     Caller\r\n"
            .to_owned()
            + RULE
            + "\r\n   50  50%  50% cpu[1]  idle_loop+0x10\r\n   20  20%  70% cpu[0]  tcp_input\r\n   20  20%  90% cpu[0]  tcp_input+0x10\r\n    9   9%  99% cpu[0]  idle_loop+0x10\r\n    1   1% 100% cpu[1]  0x9999\r\n"
            + RULE
            + "\r\n";
        assert_eq!(out, want);
    }

    #[test]
    fn coalesced_by_function_and_cpu_merged() {
        let h = host();
        let (_, out) = run(&mut Shell::new(), &h, "lockstat -kIW -D 2 sleep 1");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[2], "Count indv cuml Caller");
        assert_eq!(lines[4], "   59  59%  59% idle_loop");
        assert_eq!(lines[5], "   40  40%  99% tcp_input");
        assert_eq!(lines[6], RULE);
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn errors() {
        let h = host();
        for (line, msg) in [
            ("lockstat sleep 1", "lockstat: only -I (the profiling interrupt) is supported\r\n"),
            ("lockstat -I", "lockstat: missing 'sleep seconds'\r\n"),
            ("lockstat -I sleep 0", "lockstat: invalid sleep time '0' (1 to 3600 seconds)\r\n"),
            ("lockstat -I sleep x", "lockstat: invalid sleep time 'x' (1 to 3600 seconds)\r\n"),
            ("lockstat -I -D 0 sleep 1", "lockstat: invalid count '0'\r\n"),
            ("lockstat -I -x sleep 1", "lockstat: illegal option -- x\r\n"),
        ] {
            let (o, out) = run(&mut Shell::new(), &h, line);
            assert_eq!(o, Outcome::Status(2), "{line}");
            assert!(out.starts_with(msg), "{line}: {out:?}");
            assert!(out.contains("usage: lockstat -I [-kW] [-D count] sleep seconds"), "{line}: {out:?}");
        }
        let (o, out) = run(&mut Shell::new(), &h, "lockstat -I echo 1");
        assert_eq!(o, Outcome::Status(2), "{out}");
        let none = FakeHost::new(1);
        let (o, out) = run(&mut Shell::new(), &none, "lockstat -I sleep 1");
        assert_eq!(o, Outcome::Status(1));
        assert_eq!(out, "lockstat: the profiling interrupt is not available\r\n");
    }

    #[test]
    fn a_key_press_ends_it_early_with_what_it_has() {
        let h = host();
        h.interrupt_after_ms.set(Some(300));
        let (o, out) = run(&mut Shell::new(), &h, "lockstat -I sleep 60");
        assert_eq!(o, Outcome::Status(0));
        assert!(h.slept_ms.get() < 1000, "{}", h.slept_ms.get());
        assert!(out.contains("100 events in 0.3"), "{out}");
    }
}
