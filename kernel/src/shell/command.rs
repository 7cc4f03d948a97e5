//! Commands and the context they run in.
//!
//! A [`Command`] is a name, a usage line, a one-line summary and a plain
//! function. The function receives a [`Ctx`] — the host, the output and
//! helpers for the error conventions every command shares — and the words
//! of the command line, `argv[0]` (the command name) included. It returns
//! the exit status: 0 success, 1 failure, 2 usage error.

use alloc::collections::BTreeMap;
use core::fmt::{self, Write};

use super::args::{Parsed, getopt};
use super::host::ShellHost;

/// Exit status of a successful command.
pub const EXIT_OK: i32 = 0;
/// Exit status of a failed command.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status of a command given bad options or operands.
pub const EXIT_USAGE: i32 = 2;
/// Exit status for a command that does not exist.
pub const EXIT_NOT_FOUND: i32 = 127;

/// The function that runs a command.
pub type CommandFn = fn(&mut Ctx<'_>, &[&str]) -> i32;

/// A shell command.
#[derive(Clone, Copy, Debug)]
pub struct Command {
    /// What the user types.
    pub name: &'static str,
    /// The synopsis, command name included: `psrinfo [-v] [processor_id ...]`.
    /// May hold several lines (one per subcommand).
    pub usage: &'static str,
    /// One line for `help`.
    pub summary: &'static str,
    /// The implementation.
    pub run: CommandFn,
}

/// The commands known to a shell, by name.
pub type CommandTable = BTreeMap<&'static str, Command>;

/// What a running command can reach.
pub struct Ctx<'a> {
    /// The kernel.
    pub host: &'a dyn ShellHost,
    /// The console. `\n` is written as `\r\n`.
    pub out: &'a mut dyn Write,
    command: &'a Command,
    commands: &'a CommandTable,
    exit: Option<u32>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(
        host: &'a dyn ShellHost,
        out: &'a mut dyn Write,
        command: &'a Command,
        commands: &'a CommandTable,
    ) -> Ctx<'a> {
        Ctx {
            host,
            out,
            command,
            commands,
            exit: None,
        }
    }

    /// The running command's name.
    pub fn name(&self) -> &'static str {
        self.command.name
    }

    /// The running command's usage synopsis.
    pub fn usage(&self) -> &'static str {
        self.command.usage
    }

    /// Every registered command, sorted by name.
    pub fn commands(&self) -> impl Iterator<Item = &'a Command> + use<'a> {
        let table: &'a CommandTable = self.commands;
        table.values()
    }

    /// A registered command by name.
    pub fn command(&self, name: &str) -> Option<&'a Command> {
        let table: &'a CommandTable = self.commands;
        table.get(name)
    }

    /// Prints `name: message`.
    pub fn error(&mut self, message: fmt::Arguments<'_>) {
        let _ = writeln!(self.out, "{}: {}", self.command.name, message);
    }

    /// Prints the `usage:` line(s) and returns [`EXIT_USAGE`].
    pub fn usage_error(&mut self) -> i32 {
        let _ = write_usage(self.out, self.command.usage);
        EXIT_USAGE
    }

    /// Prints `name: message` and the usage, and returns [`EXIT_USAGE`].
    pub fn bad_usage(&mut self, message: fmt::Arguments<'_>) -> i32 {
        self.error(message);
        self.usage_error()
    }

    /// Runs [`getopt`] on the command's words `argv`, skipping the first
    /// (the command name, as C `getopt` does; for a subcommand pass the
    /// slice that starts at the subcommand's name). On an error prints
    /// `name: illegal option -- z` and the usage, and returns `None`; the
    /// command then returns [`EXIT_USAGE`].
    pub fn getopt<'w>(&mut self, argv: &[&'w str], spec: &str) -> Option<Parsed<'w>> {
        match getopt(argv.get(1..).unwrap_or_default(), spec) {
            Ok(p) => Some(p),
            Err(e) => {
                self.bad_usage(format_args!("{e}"));
                None
            }
        }
    }

    /// Asks the shell to end with `code` once this command returns
    /// ([`Outcome::Exit`](super::Outcome::Exit)).
    pub fn request_exit(&mut self, code: u32) {
        self.exit = Some(code);
    }

    pub(super) fn exit_requested(&self) -> Option<u32> {
        self.exit
    }
}

/// Prints a usage synopsis: `usage: ` before the first line, the following
/// lines (further forms of the command) aligned under it.
pub fn write_usage(out: &mut dyn Write, usage: &str) -> fmt::Result {
    for (i, line) in usage.lines().enumerate() {
        let lead = if i == 0 { "usage: " } else { "       " };
        writeln!(out, "{lead}{line}")?;
    }
    Ok(())
}
