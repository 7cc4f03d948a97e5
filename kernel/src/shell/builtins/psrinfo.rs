//! `psrinfo [-v] [processor_id ...]`: processor status, as Solaris prints it.

use crate::shell::{Command, CpuInfo, Ctx, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::walltime::fmt_solaris_date;
use alloc::vec::Vec;

pub(super) const COMMAND: Command = Command {
    name: "psrinfo",
    usage: "psrinfo [-v] [processor_id ...]",
    summary: "display information about processors",
    run,
};

fn status(cpu: &CpuInfo) -> &'static str {
    if cpu.online { "on-line" } else { "off-line" }
}

fn run(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let Some(p) = ctx.getopt(argv, "v") else {
        return EXIT_USAGE;
    };
    let verbose = p.has('v');

    // Validate every operand before printing anything.
    let mut ids = Vec::new();
    for op in &p.operands {
        match op.parse::<u32>() {
            Ok(id) => ids.push(id),
            Err(_) => return ctx.bad_usage(format_args!("invalid processor id '{op}'")),
        }
    }

    let cpus = ctx.host.cpus();
    let now = ctx.host.unix_time();
    let selected: Vec<(u32, Option<&CpuInfo>)> = if ids.is_empty() {
        cpus.iter().map(|c| (c.id, Some(c))).collect()
    } else {
        ids.iter()
            .map(|&id| (id, cpus.iter().find(|c| c.id == id)))
            .collect()
    };

    let mut result = EXIT_OK;
    for (id, cpu) in selected {
        let Some(cpu) = cpu else {
            ctx.error(format_args!("processor {id}: Invalid argument"));
            result = EXIT_FAILURE;
            continue;
        };
        let since = fmt_solaris_date(cpu.online_since_unix);
        let _ = if verbose {
            writeln!(
                ctx.out,
                "Status of virtual processor {} as of: {}\n  {} since {}.\n  The x86_64 processor has APIC id {}.",
                cpu.id,
                fmt_solaris_date(now),
                status(cpu),
                since,
                cpu.apic_id
            )
        } else {
            writeln!(ctx.out, "{:<8}{:<10}since {}", cpu.id, status(cpu), since)
        };
    }
    result
}

#[cfg(test)]
mod tests {
    use crate::shell::testhost::{BOOT_UNIX, FakeHost, run};
    use crate::shell::{Outcome, Shell};

    fn host() -> FakeHost {
        let mut host = FakeHost::new(3);
        host.cpus[2].online = false;
        host.cpus[2].online_since_unix = BOOT_UNIX + 3600 + 125;
        host
    }

    #[test]
    fn plain() {
        let mut sh = Shell::new();
        let (o, out) = run(&mut sh, &host(), "psrinfo");
        assert_eq!(o, Outcome::Status(0));
        assert_eq!(
            out,
            "0       on-line   since 11/23/2026 22:00:00\r\n\
             1       on-line   since 11/23/2026 22:00:00\r\n\
             2       off-line  since 11/23/2026 23:02:05\r\n"
        );
    }

    #[test]
    fn wide_ids_still_separated() {
        let mut host = FakeHost::new(1);
        host.cpus[0].id = 123_456_789;
        let (_, out) = run(&mut Shell::new(), &host, "psrinfo");
        assert_eq!(out, "123456789on-line   since 11/23/2026 22:00:00\r\n");
    }

    #[test]
    fn verbose() {
        let mut sh = Shell::new();
        let (o, out) = run(&mut sh, &host(), "psrinfo -v 1");
        assert_eq!(o, Outcome::Status(0));
        assert_eq!(
            out,
            "Status of virtual processor 1 as of: 11/23/2026 22:01:00\r\n\
             \x20 on-line since 11/23/2026 22:00:00.\r\n\
             \x20 The x86_64 processor has APIC id 2.\r\n"
        );
        let (_, out) = run(&mut sh, &host(), "psrinfo -v");
        assert_eq!(out.matches("Status of virtual processor").count(), 3);
        assert!(out.contains("  off-line since 11/23/2026 23:02:05.\r\n"));
        assert!(out.contains("APIC id 4."));
    }

    #[test]
    fn operands() {
        let mut sh = Shell::new();
        let (o, out) = run(&mut sh, &host(), "psrinfo 2 0");
        assert_eq!(o, Outcome::Status(0));
        assert!(out.starts_with("2       off-line"));
        assert!(out.contains("\r\n0       on-line"));

        let (o, out) = run(&mut sh, &host(), "psrinfo 0 9 1");
        assert_eq!(o, Outcome::Status(1));
        assert_eq!(
            out,
            "0       on-line   since 11/23/2026 22:00:00\r\n\
             psrinfo: processor 9: Invalid argument\r\n\
             1       on-line   since 11/23/2026 22:00:00\r\n"
        );
    }

    #[test]
    fn bad_usage() {
        let mut sh = Shell::new();
        let (o, out) = run(&mut sh, &host(), "psrinfo -x");
        assert_eq!(o, Outcome::Status(2));
        assert_eq!(
            out,
            "psrinfo: illegal option -- x\r\nusage: psrinfo [-v] [processor_id ...]\r\n"
        );
        let (o, out) = run(&mut sh, &host(), "psrinfo 0 cpu1");
        assert_eq!(o, Outcome::Status(2));
        assert_eq!(
            out,
            "psrinfo: invalid processor id 'cpu1'\r\nusage: psrinfo [-v] [processor_id ...]\r\n"
        );
    }
}
