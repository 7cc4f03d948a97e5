//! `mpstat [interval [count]]`: per-processor statistics.
//!
//! The first report covers the time since boot; with an interval, each
//! later report shows what happened during the last interval (counts, not
//! per-second rates). It stops after `count` reports, or when a key is
//! pressed.

use alloc::vec::Vec;
use core::fmt::Write;

use crate::shell::{Command, CpuStats, Ctx, EXIT_OK, EXIT_USAGE, ShellHost};

pub(super) const COMMAND: Command = Command {
    name: "mpstat",
    usage: "mpstat [interval [count]]",
    summary: "report per-processor statistics",
    run,
};

/// Longest single sleep while waiting out an interval, so that a key press
/// is noticed promptly.
const SLEEP_STEP_MS: u64 = 100;

/// illumos' columns that Arbalest has: `ithr` is illumos' "interrupts as
/// threads (not counting clock interrupt)", here every interrupt that was
/// neither a clock tick nor an IPI (the device interrupts).
const HEADER: &str = "CPU  intr  ithr  ipi   csw  icsw   sys  idl";

/// Busy and idle time as whole percentages `(sys, idl)` summing to 100.
fn percentages(idle_ns: u64, total_ns: u64) -> (u64, u64) {
    if total_ns == 0 {
        return (0, 100);
    }
    let idle = u128::from(idle_ns.min(total_ns));
    let total = u128::from(total_ns);
    let idl = ((idle * 100 + total / 2) / total) as u64;
    (100 - idl, idl)
}

/// The counters of `now` minus those of the same CPU in `before`.
fn delta(now: &CpuStats, before: &[CpuStats]) -> CpuStats {
    let Some(b) = before.iter().find(|b| b.id == now.id) else {
        return *now;
    };
    CpuStats {
        id: now.id,
        interrupts: now.interrupts.saturating_sub(b.interrupts),
        ipis: now.ipis.saturating_sub(b.ipis),
        ticks: now.ticks.saturating_sub(b.ticks),
        csw: now.csw.saturating_sub(b.csw),
        icsw: now.icsw.saturating_sub(b.icsw),
        idle_ns: now.idle_ns.saturating_sub(b.idle_ns),
        total_ns: now.total_ns.saturating_sub(b.total_ns),
    }
}

/// Interrupts that were neither clock ticks nor IPIs.
fn ithr(s: &CpuStats) -> u64 {
    s.interrupts.saturating_sub(s.ipis).saturating_sub(s.ticks)
}

/// One report: the header and a row per CPU.
fn report(out: &mut dyn Write, now: &[CpuStats], before: &[CpuStats]) {
    let _ = writeln!(out, "{HEADER}");
    for s in now.iter().map(|s| delta(s, before)) {
        let (sys, idl) = percentages(s.idle_ns, s.total_ns);
        let _ = writeln!(
            out,
            "{:>3} {:>5} {:>5} {:>4} {:>5} {:>5} {:>5} {:>4}",
            s.id,
            s.interrupts,
            ithr(&s),
            s.ipis,
            s.csw,
            s.icsw,
            sys,
            idl
        );
    }
}

/// Sleeps `ms` in steps; false if a key was pressed (lockstat's wait too).
pub(super) fn wait(host: &dyn ShellHost, ms: u64) -> bool {
    let mut left = ms;
    while left > 0 {
        if host.interrupted() {
            return false;
        }
        let step = left.min(SLEEP_STEP_MS);
        host.sleep_ms(step);
        left -= step;
    }
    !host.interrupted()
}

/// A positive integer operand.
fn positive(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().filter(|&n| n > 0)
}

fn run(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let Some(p) = ctx.getopt(argv, "") else {
        return EXIT_USAGE;
    };
    if p.operands.len() > 2 {
        return ctx.usage_error();
    }
    let interval = match p.operands.first() {
        None => None,
        Some(s) => match positive(s) {
            Some(n) => Some(n),
            None => return ctx.bad_usage(format_args!("invalid interval '{s}'")),
        },
    };
    let count = match p.operands.get(1) {
        None => None,
        Some(s) => match positive(s) {
            Some(n) => Some(n),
            None => return ctx.bad_usage(format_args!("invalid count '{s}'")),
        },
    };

    let mut before: Vec<CpuStats> = ctx.host.cpu_stats();
    report(ctx.out, &before, &[]);
    let Some(interval) = interval else {
        return EXIT_OK;
    };

    let mut reports = 1;
    while count.is_none_or(|c| reports < c) {
        if !wait(ctx.host, interval.saturating_mul(1000)) {
            break;
        }
        let now = ctx.host.cpu_stats();
        report(ctx.out, &now, &before);
        before = now;
        reports += 1;
    }
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::testhost::{FakeHost, run};
    use crate::shell::{Outcome, Shell};

    const USAGE: &str = "usage: mpstat [interval [count]]\r\n";

    #[test]
    fn since_boot() {
        let host = FakeHost::new(2);
        let (o, out) = run(&mut Shell::new(), &host, "mpstat");
        assert_eq!(o, Outcome::Status(0));
        assert_eq!(
            out,
            "CPU  intr  ithr  ipi   csw  icsw   sys  idl\r\n  \
               0  1000   300  100   500    50    10   90\r\n  \
               1  1000   300  100   500    50    10   90\r\n"
        );
        assert_eq!(host.sleeps.get(), 0);
    }

    #[test]
    fn interval_and_count() {
        let host = FakeHost::new(2);
        let (o, out) = run(&mut Shell::new(), &host, "mpstat 2 3");
        assert_eq!(o, Outcome::Status(0));
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines.len(), 3 * 3 + 1);
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines[3], HEADER);
        assert_eq!(lines[6], HEADER);
        // Later reports: counts over the 2 s interval, not since boot.
        // ithr: neither the 1000 ticks nor the 2000 IPIs.
        assert_eq!(lines[4], "  0  4000  1000 2000  6000  2000    25   75");
        assert_eq!(lines[5], "  1  6000  3000 2000  6000  2000    25   75");
        assert_eq!(lines[7], lines[4]);
        assert_eq!(lines[9], "");
        assert_eq!(host.slept_ms.get(), 4000);
        assert!(host.sleeps.get() >= 40); // slept in short steps
    }

    #[test]
    fn interval_without_count_stops_on_key() {
        let host = FakeHost::new(1);
        host.interrupt_after_ms.set(Some(3500));
        let (o, out) = run(&mut Shell::new(), &host, "mpstat 1");
        assert_eq!(o, Outcome::Status(0));
        // Since boot, then three full intervals; the key lands mid-fourth.
        assert_eq!(out.matches(HEADER).count(), 4);
        assert_eq!(host.slept_ms.get(), 3500);
    }

    #[test]
    fn interrupt_already_pending_is_cleared_at_start() {
        let host = FakeHost::new(1);
        host.interrupted.set(true);
        let (_, out) = run(&mut Shell::new(), &host, "mpstat 1 2");
        assert_eq!(out.matches(HEADER).count(), 2);
    }

    #[test]
    fn count_one_does_not_sleep() {
        let host = FakeHost::new(1);
        let (_, out) = run(&mut Shell::new(), &host, "mpstat 5 1");
        assert_eq!(out.matches(HEADER).count(), 1);
        assert_eq!(host.sleeps.get(), 0);
    }

    #[test]
    fn bad_operands() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        for (line, first) in [
            ("mpstat 0", "mpstat: invalid interval '0'\r\n"),
            ("mpstat x", "mpstat: invalid interval 'x'\r\n"),
            ("mpstat 1 0", "mpstat: invalid count '0'\r\n"),
            ("mpstat 1 -2", "mpstat: invalid count '-2'\r\n"),
            ("mpstat 1 2 3", ""),
            ("mpstat -a", "mpstat: illegal option -- a\r\n"),
        ] {
            let (o, out) = run(&mut sh, &host, line);
            assert_eq!(o, Outcome::Status(2), "{line}");
            assert_eq!(out, alloc::format!("{first}{USAGE}"), "{line}");
        }
        assert_eq!(host.sleeps.get(), 0);
    }

    #[test]
    fn percentage_edges() {
        assert_eq!(percentages(0, 0), (0, 100));
        assert_eq!(percentages(5, 0), (0, 100));
        assert_eq!(percentages(10, 5), (0, 100));
        assert_eq!(percentages(0, 10), (100, 0));
        assert_eq!(percentages(u64::MAX, u64::MAX), (0, 100));
        assert_eq!(percentages(994, 1000), (1, 99));
        assert_eq!(percentages(995, 1000), (0, 100)); // rounds half up
    }

    #[test]
    fn cpu_appearing_between_reports() {
        let now = [CpuStats {
            id: 3,
            interrupts: 7,
            ..Default::default()
        }];
        assert_eq!(delta(&now[0], &[]).interrupts, 7);
    }
}
