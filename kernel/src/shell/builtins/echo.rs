//! `echo [arg ...]`: prints its arguments joined by single spaces.

use crate::shell::{Command, Ctx, EXIT_OK};

pub(super) const COMMAND: Command = Command {
    name: "echo",
    usage: "echo [arg ...]",
    summary: "print the arguments",
    run,
};

fn run(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let args = argv.get(1..).unwrap_or_default();
    let _ = writeln!(ctx.out, "{}", args.join(" "));
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use crate::shell::testhost::{FakeHost, run};
    use crate::shell::{Outcome, Shell};

    #[test]
    fn echoes() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        assert_eq!(
            run(&mut sh, &host, "echo"),
            (Outcome::Status(0), "\r\n".into())
        );
        assert_eq!(
            run(&mut sh, &host, "echo  a   b -z"),
            (Outcome::Status(0), "a b -z\r\n".into())
        );
    }
}
