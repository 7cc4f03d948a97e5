//! The IP admin commands of the serial shell, as plain functions the
//! kernel's shell calls and host tests drive:
//!
//! * [`ipadm::ipadm`]: `create-ip`, `delete-ip`, `show-if`, `create-addr`,
//!   `delete-addr`, `show-addr`, `show-prop`, `set-prop`, `reset-prop`,
//!   `help`;
//! * [`ndd::ndd`]: FireEngine's `ndd` variables (`/dev/ip`, `/dev/icmp`,
//!   `/dev/udp`, `/dev/tcp`); the kernel's `ndd` hands these drivers here;
//! * [`route::route`]: `add`, `delete`, `help`;
//! * [`netstat::netstat`]: `-r` (`-rn`) and `-s`;
//! * [`sqstat::sqstat`]: per-squeue (vertical perimeter) statistics, as
//!   illumos statistics commands such as `mpstat` print them;
//! * [`ping::ping`]: illumos `ping`, with and without `-s`;
//! * [`arp::arp`]: `arp -a`, the neighbour caches;
//! * [`ttcp::ttcp`]: a TCP connection carrying a test pattern (to the
//!   echo service, verified), after the classic Test-TCP tool;
//! * [`svcs::svcs`], [`svcs::svcadm`]: the in-kernel services of each
//!   interface (echo, discard, chargen, UDP echo and discard, HTTP), listed
//!   and enabled or disabled as illumos' SMF commands do;
//! * [`udpecho::udpecho`]: numbered datagrams to a UDP echo service, each
//!   verified when it comes back, reported like `ping -s`.
//!
//! Each is a [`Command`]: `argv[0]` is the command name, output and error
//! messages go to `out` (there is one console), the result is the exit
//! status (0 success, 1 failure, 2 usage error). Wording, columns and
//! option rules follow illumos (`shared/ADMIN.md`).
//!
//! The commands reach the system only through [`AdminEnv`].

pub mod arp;
pub mod getopt;
pub mod ipadm;
pub mod ipadm_prop;
pub mod ndd;
pub mod netstat;
pub mod ofmt;
pub mod ping;
pub mod route;
pub mod sqstat;
pub mod svcs;
pub mod ttcp;
pub mod udpecho;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use core::net::Ipv4Addr;

use crate::stack::{IpStack, NetError, StackKind};

/// What the admin commands need from the kernel.
///
/// IP interfaces are stack instances, one per link (`net0`), created and
/// owned by the kernel: `create_if` opens a MAC client on the link and
/// starts an instance on it (its stack thread polling it), `delete_if`
/// stops and drops it. Time is the monotonic clock the stack threads pass
/// to [`IpStack::poll_us`]. `sleep_ms` blocks the shell (the stack threads
/// keep running); `poll_now` asks them to poll at once rather than at their
/// next deadline (after queueing an echo request, say). `interrupted` tells
/// whether the user asked to stop (a key on the console), for commands that
/// run until stopped.
pub trait AdminEnv {
    /// Every IP interface, in creation order.
    fn instances(&self) -> Vec<Arc<dyn IpStack>>;

    /// The IP interface on `link`, if there is one.
    fn instance(&self, link: &str) -> Option<Arc<dyn IpStack>> {
        self.instances().into_iter().find(|i| i.name() == link)
    }

    /// A snapshot of every FireEngine squeue's counters, in the set's
    /// order, for `sqstat`. The default is none (no squeue set running):
    /// `sqstat` then prints just its header.
    fn squeue_stats(&self) -> Vec<crate::fireengine::squeue::SqStats> {
        Vec::new()
    }

    /// FireEngine's protocol properties and `ndd` variables (shared by
    /// every FireEngine instance), for `ipadm show-prop`/`set-prop` and
    /// `ndd`. The default is none: those commands then say FireEngine is
    /// not available.
    fn fe_tunables(&self) -> Option<Arc<crate::fireengine::tunables::Tunables>> {
        None
    }

    /// Creates an IP interface on the data link `link` running `stack`
    /// (`None`: the system's default stack) ([`NetError::NoSuchInterface`]
    /// if there is no such link, [`NetError::InterfaceExists`] if it has
    /// one).
    fn create_if(&mut self, link: &str, stack: Option<StackKind>) -> Result<Arc<dyn IpStack>, NetError>;

    /// Removes the IP interface on `link`, addresses and routes included.
    fn delete_if(&mut self, link: &str) -> Result<(), NetError>;

    /// The monotonic clock, µs.
    fn now_us(&self) -> u64;

    /// The wall clock, seconds since 1970 (UTC), when the system has one
    /// (`svcs` prints `STIME` with it); `None` by default.
    fn unix_time(&self) -> Option<u64> {
        None
    }

    /// Sleeps `ms` milliseconds.
    fn sleep_ms(&mut self, ms: u64);

    /// Whether the user asked the running command to stop.
    fn interrupted(&mut self) -> bool;

    /// Asks the stack threads to poll now.
    fn poll_now(&mut self);

    /// Bytes of kernel heap in use, if the kernel says (`meminfo`'s
    /// "used"); for tools that show what a transfer holds.
    fn heap_used(&self) -> Option<usize> {
        None
    }
}

/// An admin command.
pub type Command = fn(&[&str], &mut dyn AdminEnv, &mut dyn Write) -> i32;

/// The commands by name.
pub const COMMANDS: &[(&str, Command)] = &[
    ("ipadm", ipadm::ipadm),
    ("ndd", ndd::ndd),
    ("route", route::route),
    ("netstat", netstat::netstat),
    ("sqstat", sqstat::sqstat),
    ("ping", ping::ping),
    ("arp", arp::arp),
    ("ttcp", ttcp::ttcp),
    ("udpecho", udpecho::udpecho),
    ("svcs", svcs::svcs),
    ("svcadm", svcs::svcadm),
];

/// Runs `argv` if `argv[0]` names one of [`COMMANDS`]; `None` otherwise.
pub fn run(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> Option<i32> {
    let name = *argv.first()?;
    let (_, cmd) = COMMANDS.iter().find(|(n, _)| *n == name)?;
    Some(cmd(argv, env, out))
}

/// Exit status of a failed operation.
pub const EXIT_FAIL: i32 = 1;
/// Exit status of a usage error.
pub const EXIT_USAGE: i32 = 2;

/// Whether `s` can be a link name: a letter, then letters, digits, `_` or
/// `.`, at most 31 characters.
pub fn valid_link_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 31
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
}

/// Why no IP instance can carry traffic to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoStack<'a> {
    /// `-i NAME` named no IP interface.
    NoSuchInterface(&'a str),
    /// No interface's subnet or route reaches the host.
    Unreachable,
}

/// The instance to reach `dst` from: `ifname` if given; else, for one
/// of an instance's own addresses, that instance when it has a loopback
/// (the traffic never leaves it); for 127/8, the first instance with a
/// loopback; else the one whose subnet holds `dst`, else one with a route
/// to it. An instance without a loopback cannot reach its own address.
pub fn pick_stack<'a>(
    env: &dyn AdminEnv,
    ifname: Option<&'a str>,
    dst: Ipv4Addr,
) -> Result<Arc<dyn IpStack>, NoStack<'a>> {
    if let Some(name) = ifname {
        return env.instance(name).ok_or(NoStack::NoSuchInterface(name));
    }
    let all = env.instances();
    let owns = |i: &Arc<dyn IpStack>| i.addrs().iter().any(|a| a.net.addr() == dst);
    if let Some(i) = all.iter().find(|i| i.has_loopback() && (owns(i) || dst.is_loopback())) {
        return Ok(i.clone());
    }
    let on_link = all.iter().find(|i| !owns(i) && i.addrs().iter().any(|a| a.net.contains(dst)));
    let routed = || all.iter().find(|i| !owns(i) && i.reaches(dst));
    on_link.or_else(routed).cloned().ok_or(NoStack::Unreachable)
}

/// Formats µs as milliseconds with three decimals (`0.512`).
pub struct Millis(pub u64);

impl core::fmt::Display for Millis {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}
