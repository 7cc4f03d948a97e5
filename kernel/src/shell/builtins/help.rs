//! `help [command ...]`: lists the commands, or shows how to use some.

use crate::shell::{Command, Ctx, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, write_usage};

pub(super) const COMMAND: Command = Command {
    name: "help",
    usage: "help [command ...]",
    summary: "list the commands, or show how to use one",
    run,
};

fn run(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let Some(p) = ctx.getopt(argv, "") else {
        return EXIT_USAGE;
    };
    if p.operands.is_empty() {
        let width = ctx.commands().map(|c| c.name.len()).max().unwrap_or(0);
        for c in ctx.commands() {
            let _ = writeln!(ctx.out, "{:<width$}  {}", c.name, c.summary);
        }
        return EXIT_OK;
    }
    let mut status = EXIT_OK;
    for name in p.operands {
        match ctx.command(name) {
            Some(c) => {
                let _ = write_usage(ctx.out, c.usage);
                let _ = writeln!(ctx.out, "{}", c.summary);
            }
            None => {
                ctx.error(format_args!("no such command: {name}"));
                status = EXIT_FAILURE;
            }
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use crate::shell::testhost::{FakeHost, run};
    use crate::shell::{Command, Ctx, Outcome, Shell};

    #[test]
    fn lists_sorted() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        let (o, out) = run(&mut sh, &host, "help");
        assert_eq!(o, Outcome::Status(0));
        let names: alloc::vec::Vec<_> = out
            .lines()
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(
            names,
            ["echo", "help", "lockstat", "mpstat", "poweroff", "psrinfo", "uptime"]
        );
        assert!(out.contains("psrinfo   display information about processors\r\n"));
        assert!(out.contains("echo      print the arguments\r\n"));
    }

    #[test]
    fn one_command() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        let (o, out) = run(&mut sh, &host, "help psrinfo");
        assert_eq!(o, Outcome::Status(0));
        assert_eq!(
            out,
            "usage: psrinfo [-v] [processor_id ...]\r\ndisplay information about processors\r\n"
        );
    }

    #[test]
    fn multi_line_usage() {
        fn nop(_: &mut Ctx<'_>, _: &[&str]) -> i32 {
            0
        }
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        sh.register(Command {
            name: "dladm",
            usage: "dladm show-link [link]\ndladm show-phys [link]",
            summary: "administer data links",
            run: nop,
        });
        let (_, out) = run(&mut sh, &host, "help dladm");
        assert_eq!(
            out,
            "usage: dladm show-link [link]\r\n       dladm show-phys [link]\r\nadminister data links\r\n"
        );
    }

    #[test]
    fn unknown_and_bad_option() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        let (o, out) = run(&mut sh, &host, "help x");
        assert_eq!(o, Outcome::Status(1));
        assert_eq!(out, "help: no such command: x\r\n");
        let (o, out) = run(&mut sh, &host, "help -z");
        assert_eq!(o, Outcome::Status(2));
        assert_eq!(
            out,
            "help: illegal option -- z\r\nusage: help [command ...]\r\n"
        );
    }
}
