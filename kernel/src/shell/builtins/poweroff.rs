//! `poweroff [code]`: ends the shell; the kernel powers off (under QEMU,
//! exits with `code`).

use crate::shell::{Command, Ctx, EXIT_OK, EXIT_USAGE};

pub(super) const COMMAND: Command = Command {
    name: "poweroff",
    usage: "poweroff [code]",
    summary: "power off the machine, with an exit code 0-255 for QEMU",
    run,
};

fn run(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let Some(p) = ctx.getopt(argv, "") else {
        return EXIT_USAGE;
    };
    let code = match p.operands.as_slice() {
        [] => 0,
        [code] => match code.parse::<u8>() {
            Ok(c) => u32::from(c),
            Err(_) => return ctx.bad_usage(format_args!("invalid exit code '{code}'")),
        },
        _ => return ctx.usage_error(),
    };
    ctx.request_exit(code);
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use crate::shell::testhost::{FakeHost, run};
    use crate::shell::{Outcome, Shell};

    #[test]
    fn exit_codes() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        assert_eq!(
            run(&mut sh, &host, "poweroff"),
            (Outcome::Exit(0), "".into())
        );
        assert_eq!(
            run(&mut sh, &host, "poweroff 255"),
            (Outcome::Exit(255), "".into())
        );
        assert_eq!(sh.last_status(), 255);
        assert_eq!(run(&mut sh, &host, "poweroff 42").0, Outcome::Exit(42));
    }

    #[test]
    fn bad_codes() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        for line in [
            "poweroff 256",
            "poweroff -3",
            "poweroff x",
            "poweroff 1 2",
            "poweroff ''",
        ] {
            let (o, out) = run(&mut sh, &host, line);
            assert_eq!(o, Outcome::Status(2), "{line}");
            assert!(
                out.ends_with("usage: poweroff [code]\r\n"),
                "{line}: {out:?}"
            );
        }
        let (_, out) = run(&mut sh, &host, "poweroff 256");
        assert_eq!(
            out,
            "poweroff: invalid exit code '256'\r\nusage: poweroff [code]\r\n"
        );
        let (_, out) = run(&mut sh, &host, "poweroff -3");
        assert_eq!(
            out,
            "poweroff: illegal option -- 3\r\nusage: poweroff [code]\r\n"
        );
    }
}
