//! `uptime`: the time, how long the system has been up, and the load
//! averages, in the Solaris format:
//! `  11:10pm  up 2 min(s),  0 users,  load average: 0.00, 0.00, 0.00`.

use crate::shell::{Command, Ctx, EXIT_OK, EXIT_USAGE};
use crate::walltime::fmt_clock_12h;
use alloc::format;
use alloc::string::String;

pub(super) const COMMAND: Command = Command {
    name: "uptime",
    usage: "uptime",
    summary: "show how long the system has been up, and the load averages",
    run,
};

/// The time up as Solaris `w` words it (rounded to the nearest minute):
/// ` 2 day(s), 3:04,`, ` 1 hr(s),`, ` 5 min(s),`.
fn fmt_up(secs: u64) -> String {
    let up = secs.saturating_add(30);
    let (days, hrs, mins) = (up / 86_400, up % 86_400 / 3600, up % 3600 / 60);
    let mut s = String::new();
    if days > 0 {
        s += &format!(" {days} day(s),");
    }
    if hrs > 0 && mins > 0 {
        s += &format!(" {hrs:>2}:{mins:02},");
    } else if hrs > 0 {
        s += &format!(" {hrs} hr(s),");
    } else if mins > 0 || days == 0 {
        s += &format!(" {mins} min(s),");
    }
    s
}

/// A load average in hundredths as `0.00`.
fn fmt_load(hundredths: u32) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

fn run(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let Some(p) = ctx.getopt(argv, "") else {
        return EXIT_USAGE;
    };
    if !p.operands.is_empty() {
        return ctx.usage_error();
    }
    let up_secs = ctx.host.monotonic_ns() / 1_000_000_000;
    let [l1, l5, l15] = ctx.host.load_average();
    let _ = writeln!(
        ctx.out,
        "  {}  up{}  0 users,  load average: {}, {}, {}",
        fmt_clock_12h(ctx.host.unix_time()),
        fmt_up(up_secs),
        fmt_load(l1),
        fmt_load(l5),
        fmt_load(l15)
    );
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::testhost::{FakeHost, run};
    use crate::shell::{Outcome, Shell};

    #[test]
    fn durations() {
        assert_eq!(fmt_up(0), " 0 min(s),");
        assert_eq!(fmt_up(29), " 0 min(s),");
        assert_eq!(fmt_up(30), " 1 min(s),");
        assert_eq!(fmt_up(125), " 2 min(s),");
        assert_eq!(fmt_up(3600), " 1 hr(s),");
        assert_eq!(fmt_up(3600 + 65), "  1:01,");
        assert_eq!(fmt_up(10 * 3600 + 59 * 60), " 10:59,");
        assert_eq!(fmt_up(2 * 86_400 + 3 * 3600 + 4 * 60), " 2 day(s),  3:04,");
        assert_eq!(fmt_up(2 * 86_400 + 13 * 3600 + 4 * 60), " 2 day(s), 13:04,");
        assert_eq!(fmt_up(86_400), " 1 day(s),");
        assert_eq!(fmt_up(86_400 + 5 * 3600), " 1 day(s), 5 hr(s),");
        assert_eq!(fmt_up(86_400 + 7 * 60), " 1 day(s), 7 min(s),");
        let _ = fmt_up(u64::MAX);
    }

    #[test]
    fn line() {
        let mut host = FakeHost::new(1);
        host.now_ns.set(130 * 1_000_000_000); // 22:02:10
        host.load = [3, 115, 1000];
        let (o, out) = run(&mut Shell::new(), &host, "uptime");
        assert_eq!(o, Outcome::Status(0));
        assert_eq!(
            out,
            "  10:02pm  up 2 min(s),  0 users,  load average: 0.03, 1.15, 10.00\r\n"
        );
        host.now_ns.set((3 * 3600 + 10 * 60) * 1_000_000_000); // 01:10 next day
        let (_, out) = run(&mut Shell::new(), &host, "uptime");
        assert_eq!(
            out,
            "  1:10am  up  3:10,  0 users,  load average: 0.03, 1.15, 10.00\r\n"
        );
    }

    #[test]
    fn bad_usage() {
        let host = FakeHost::new(1);
        let (o, out) = run(&mut Shell::new(), &host, "uptime -s");
        assert_eq!(o, Outcome::Status(2));
        assert_eq!(out, "uptime: illegal option -- s\r\nusage: uptime\r\n");
        let (o, out) = run(&mut Shell::new(), &host, "uptime now");
        assert_eq!(o, Outcome::Status(2));
        assert_eq!(out, "usage: uptime\r\n");
    }
}
