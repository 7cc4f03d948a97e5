//! The commands every shell has.

mod echo;
mod help;
mod lockstat;
mod mpstat;
mod poweroff;
mod psrinfo;
mod uptime;

use super::Command;

/// The built-in commands.
pub(super) const ALL: &[Command] = &[
    echo::COMMAND,
    help::COMMAND,
    lockstat::COMMAND,
    mpstat::COMMAND,
    poweroff::COMMAND,
    psrinfo::COMMAND,
    uptime::COMMAND,
];
