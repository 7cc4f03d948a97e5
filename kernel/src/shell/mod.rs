//! The admin shell of the serial console.
//!
//! The kernel feeds console bytes to a [`LineEditor`]; each finished line
//! goes to [`Shell::execute`], which splits it into words, finds the
//! [`Command`] and runs it with a [`Ctx`] holding the kernel (through the
//! [`ShellHost`] trait) and the console writer. The built-in commands
//! (`help`, `psrinfo`, `mpstat`, `uptime`, `echo`, `poweroff`) live in
//! `builtins`; the kernel adds its own with [`Shell::register`].
//!
//! Nothing here touches hardware, so all of it is unit-tested on the host
//! against a fake host.

pub mod args;
mod builtins;
mod command;
mod crlf;
mod host;
mod line;
#[cfg(test)]
mod testhost;
mod words;

use core::fmt::Write;

pub use args::{GetoptError, Parsed, getopt};
pub use command::{
    Command, CommandFn, CommandTable, Ctx, EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE,
    write_usage,
};
pub use crlf::Crlf;
pub use host::{CpuInfo, CpuStats, ShellHost};
pub use line::{DEFAULT_MAX_LINE, LineEditor, LineEvent};
pub use words::{WordsError, split};

/// How a command line ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A command ran (or failed to) with this exit status.
    Status(i32),
    /// The shell should end and the machine power off with this code
    /// (`poweroff [code]`).
    Exit(u32),
}

/// The command interpreter: a table of commands and the last exit status.
#[derive(Clone, Debug)]
pub struct Shell {
    commands: CommandTable,
    last_status: i32,
}

impl Default for Shell {
    fn default() -> Self {
        Shell::new()
    }
}

impl Shell {
    /// A shell with the built-in commands.
    pub fn new() -> Shell {
        let mut shell = Shell::without_builtins();
        for &cmd in builtins::ALL {
            shell.register(cmd);
        }
        shell
    }

    /// A shell with no commands at all.
    pub fn without_builtins() -> Shell {
        Shell {
            commands: CommandTable::new(),
            last_status: 0,
        }
    }

    /// Adds a command, replacing (and returning) one of the same name.
    pub fn register(&mut self, cmd: Command) -> Option<Command> {
        self.commands.insert(cmd.name, cmd)
    }

    /// The registered commands, sorted by name.
    pub fn commands(&self) -> impl Iterator<Item = &Command> {
        self.commands.values()
    }

    /// The exit status of the last command run (0 before any). Empty lines
    /// do not change it.
    pub fn last_status(&self) -> i32 {
        self.last_status
    }

    /// Runs one command line, writing its output to `out` with `\r\n`
    /// newlines. Calls [`ShellHost::clear_interrupt`] before the command
    /// starts. An empty line gives `Status(0)`; an unknown command prints
    /// `name: command not found` and gives status 127; a line with an
    /// unterminated quote gives status 2. A word `$?` is replaced by the
    /// last exit status, so that `echo $?` tells how a command ended.
    pub fn execute(&mut self, line: &str, host: &dyn ShellHost, out: &mut dyn Write) -> Outcome {
        let mut out = Crlf::new(out);
        let words = match words::split(line) {
            Ok(mut w) => {
                for word in w.iter_mut().filter(|w| *w == "$?") {
                    *word = alloc::format!("{}", self.last_status);
                }
                w
            }
            Err(e) => {
                let _ = writeln!(out, "sh: {e}");
                self.last_status = EXIT_USAGE;
                return Outcome::Status(EXIT_USAGE);
            }
        };
        let Some(name) = words.first() else {
            return Outcome::Status(EXIT_OK);
        };
        let Some(cmd) = self.commands.get(name.as_str()) else {
            let _ = writeln!(out, "{name}: command not found");
            self.last_status = EXIT_NOT_FOUND;
            return Outcome::Status(EXIT_NOT_FOUND);
        };
        let argv: alloc::vec::Vec<&str> = words.iter().map(|w| w.as_str()).collect();

        host.clear_interrupt();
        let mut ctx = Ctx::new(host, &mut out, cmd, &self.commands);
        let status = (cmd.run)(&mut ctx, &argv);
        match ctx.exit_requested() {
            Some(code) => {
                self.last_status = code as i32;
                Outcome::Exit(code)
            }
            None => {
                self.last_status = status;
                Outcome::Status(status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testhost::{FakeHost, run};
    use super::*;

    fn custom(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
        let _ = writeln!(
            ctx.out,
            "custom {} args, version {}",
            argv.len() - 1,
            ctx.host.version()
        );
        7
    }

    #[test]
    fn empty_and_blank_lines() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        assert_eq!(run(&mut sh, &host, ""), (Outcome::Status(0), "".into()));
        assert_eq!(
            run(&mut sh, &host, "   \t"),
            (Outcome::Status(0), "".into())
        );
    }

    #[test]
    fn unknown_command() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        let (o, out) = run(&mut sh, &host, "frobnicate --now");
        assert_eq!(o, Outcome::Status(127));
        assert_eq!(out, "frobnicate: command not found\r\n");
        assert_eq!(sh.last_status(), 127);
        // An empty line leaves the status alone.
        run(&mut sh, &host, "");
        assert_eq!(sh.last_status(), 127);
    }

    #[test]
    fn quoting() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        let (o, out) = run(&mut sh, &host, r#"echo "a  b" 'c' d"e""#);
        assert_eq!(o, Outcome::Status(0));
        assert_eq!(out, "a  b c de\r\n");
        let (o, out) = run(&mut sh, &host, "echo \"oops");
        assert_eq!(o, Outcome::Status(2));
        assert_eq!(out, "sh: unterminated quote \"\r\n");
    }

    #[test]
    fn dollar_question_is_the_last_status() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        assert_eq!(run(&mut sh, &host, "echo $?").1, "0\r\n");
        let _ = run(&mut sh, &host, "nosuch");
        assert_eq!(run(&mut sh, &host, "echo $? x$?").1, "127 x$?\r\n", "only a whole word");
        assert_eq!(run(&mut sh, &host, "echo $?").1, "0\r\n", "echo itself succeeded");
    }

    #[test]
    fn register_and_replace() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        let cmd = Command {
            name: "dladm",
            usage: "dladm x",
            summary: "links",
            run: custom,
        };
        assert!(sh.register(cmd).is_none());
        let (o, out) = run(&mut sh, &host, "dladm show-link net0");
        assert_eq!(o, Outcome::Status(7));
        assert_eq!(out, "custom 2 args, version arbalest-test\r\n");
        assert_eq!(sh.last_status(), 7);
        // Replacing a builtin.
        let echo = Command {
            name: "echo",
            usage: "echo",
            summary: "x",
            run: custom,
        };
        assert_eq!(
            sh.register(echo).map(|c| c.summary),
            Some("print the arguments")
        );
        assert_eq!(
            run(&mut sh, &host, "echo").1,
            "custom 0 args, version arbalest-test\r\n"
        );
        let names: alloc::vec::Vec<_> = sh.commands().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "dladm", "echo", "help", "lockstat", "mpstat", "poweroff", "psrinfo", "uptime"
            ]
        );
        assert_eq!(Shell::without_builtins().commands().count(), 0);
    }

    fn with_options(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
        let Some(p) = ctx.getopt(argv, "lo:") else {
            return EXIT_USAGE;
        };
        let _ = writeln!(
            ctx.out,
            "l={} o={:?} {:?}",
            p.has('l'),
            p.value('o'),
            p.operands
        );
        EXIT_OK
    }

    #[test]
    fn registered_command_options() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        sh.register(Command {
            name: "ktest",
            usage: "ktest [-l] [-o field] [name]",
            summary: "kernel tests",
            run: with_options,
        });
        let (o, out) = run(&mut sh, &host, "ktest -l -ofoo smp");
        assert_eq!(o, Outcome::Status(0));
        assert_eq!(out, "l=true o=Some(\"foo\") [\"smp\"]\r\n");
        let (o, out) = run(&mut sh, &host, "ktest -q");
        assert_eq!(o, Outcome::Status(2));
        assert_eq!(
            out,
            "ktest: illegal option -- q\r\nusage: ktest [-l] [-o field] [name]\r\n"
        );
        let (o, out) = run(&mut sh, &host, "ktest -o");
        assert_eq!(o, Outcome::Status(2));
        assert!(out.starts_with("ktest: option requires an argument -- o\r\n"));
    }

    #[test]
    fn clears_interrupt_before_each_command() {
        let host = FakeHost::new(1);
        let mut sh = Shell::new();
        host.interrupted.set(true);
        run(&mut sh, &host, "echo hi");
        assert!(!host.interrupted.get());
    }

    #[test]
    fn line_editor_drives_shell() {
        let host = FakeHost::new(2);
        let mut sh = Shell::new();
        let mut ed = LineEditor::new();
        let mut console = alloc::string::String::new();
        let mut outcomes = alloc::vec::Vec::new();
        for &b in b"ech\x7fho  hi\r\npoweroff 3\r" {
            if let Some(LineEvent::Line(l)) = ed.feed(b, &mut console) {
                outcomes.push(sh.execute(&l, &host, &mut console));
            }
        }
        assert_eq!(outcomes, [Outcome::Status(0), Outcome::Exit(3)]);
        assert_eq!(console, "ech\x08 \x08ho  hi\r\nhi\r\npoweroff 3\r\n");
    }
}
