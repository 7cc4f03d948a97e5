//! `cargo run --release -- bench`: Arbalest against a stock Linux guest
//! under the identical QEMU command line, measured by one host client, in
//! one run.
//!
//! For every configuration (NIC × queues × CPUs × the kernel knobs) and
//! repetition, the harness boots each guest in turn (Arbalest then Linux,
//! the order flipped every other repetition) on a TAP inside a network
//! namespace it creates, runs the client phases ([`Phase`], [`client`])
//! from a thread inside that namespace, and stops the guest. Every phase
//! writes one JSON line ([`report`]); at the end a table with the
//! Arbalest/Linux ratios is printed and a PNG plot drawn ([`plot`]).
//!
//! The two guests' QEMU command lines differ only in `-kernel`, `-initrd`
//! and `-append`: machine, CPU model, CPU count, memory, accelerator, NIC
//! model, queues and TAP backend are the same ([`crate::qemu_args`]).
//!
//! Knobs that the kernel does not have yet (dynamic polling, our own IP
//! stack, maxbw) are accepted and recorded; a configuration asking for a
//! value that does not exist yet is reported as "not available yet" and
//! not run, rather than measured as something it is not.

pub mod client;
pub mod cpio;
pub mod linux;
pub mod plot;
pub mod profile;
pub mod report;

/// The JSON library of the records, for readers of them (tests).
pub use serde_json;

use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::net::{Nic, TapNamespace, TAP_GUEST_ADDR, TAP_HOST_ADDR, TAP_NAME, TAP_PREFIX};
use crate::{Accel, Config, Net};
use client::{Figures, Timing};

/// Which guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Guest {
    Arbalest,
    Linux,
}

impl Guest {
    pub fn parse(s: &str) -> Result<Guest, String> {
        match s {
            "arbalest" => Ok(Guest::Arbalest),
            "linux" => Ok(Guest::Linux),
            _ => Err(format!("unknown guest '{s}' (expected arbalest or linux)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Guest::Arbalest => "arbalest",
            Guest::Linux => "linux",
        }
    }
}

/// One measurement of the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// One connection streaming into discard (9).
    StreamTx,
    /// One connection receiving from chargen (19).
    StreamRx,
    /// 1-byte TCP request/response on echo (7).
    Rr1,
    /// 1 KiB TCP request/response on echo.
    Rr1k,
    /// Connect, 1-byte request/response, close.
    Crr,
    /// UDP echo request/response.
    UdpRr,
    /// UDP datagrams to echo as fast as the client can send them.
    UdpFlood,
    /// N connections streaming into discard.
    StreamTxPar,
    /// N connections receiving from chargen.
    StreamRxPar,
    /// N connections doing 1-byte request/response.
    RrPar,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::StreamTx,
        Phase::StreamRx,
        Phase::Rr1,
        Phase::Rr1k,
        Phase::Crr,
        Phase::UdpRr,
        Phase::UdpFlood,
        Phase::StreamTxPar,
        Phase::StreamRxPar,
        Phase::RrPar,
    ];

    /// Name in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Phase::StreamTx => "tcp_stream_tx",
            Phase::StreamRx => "tcp_stream_rx",
            Phase::Rr1 => "tcp_rr_1",
            Phase::Rr1k => "tcp_rr_1k",
            Phase::Crr => "tcp_crr",
            Phase::UdpRr => "udp_rr",
            Phase::UdpFlood => "udp_flood",
            Phase::StreamTxPar => "tcp_stream_tx_par",
            Phase::StreamRxPar => "tcp_stream_rx_par",
            Phase::RrPar => "tcp_rr_par",
        }
    }

    /// What it is, for people (`n`: parallel connections).
    pub fn title(self, n: usize) -> String {
        match self {
            Phase::StreamTx => "TCP stream host→guest (discard)".into(),
            Phase::StreamRx => "TCP stream guest→host (chargen)".into(),
            Phase::Rr1 => "TCP RR 1 B (echo)".into(),
            Phase::Rr1k => "TCP RR 1 KiB (echo)".into(),
            Phase::Crr => "TCP connect/RR/close".into(),
            Phase::UdpRr => format!("UDP RR {UDP_SIZE} B (echo)"),
            Phase::UdpFlood => format!("UDP flood {UDP_SIZE} B (echo)"),
            Phase::StreamTxPar => format!("TCP stream host→guest ×{n}"),
            Phase::StreamRxPar => format!("TCP stream guest→host ×{n}"),
            Phase::RrPar => format!("TCP RR 1 B ×{n}"),
        }
    }

    pub fn parse(s: &str) -> Result<Phase, String> {
        Phase::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown phase '{s}' (one of {})", Phase::ALL.map(|p| p.name()).join(", ")))
    }

    /// Does the phase use TCP?
    pub fn tcp(self) -> bool {
        !matches!(self, Phase::UdpRr | Phase::UdpFlood)
    }

    /// Runs the phase against `guest_ip` (call from inside the namespace);
    /// `parallel`: connections of the parallel phases, `senders`: sockets
    /// of the flood.
    pub fn run(self, guest_ip: Ipv4Addr, parallel: usize, senders: usize, t: Timing) -> Result<Figures, String> {
        let a = |port: u16| SocketAddr::V4(SocketAddrV4::new(guest_ip, port));
        match self {
            Phase::StreamTx => client::stream_to(a(DISCARD), 1, t),
            Phase::StreamRx => client::stream_from(a(CHARGEN), 1, t),
            Phase::Rr1 => client::tcp_rr(a(ECHO), 1, 1, t),
            Phase::Rr1k => client::tcp_rr(a(ECHO), 1024, 1, t),
            Phase::Crr => client::tcp_crr(a(ECHO), t),
            Phase::UdpRr => client::udp_rr(a(ECHO), UDP_SIZE, t),
            Phase::UdpFlood => client::udp_flood(a(ECHO), UDP_SIZE, senders, t),
            Phase::StreamTxPar => client::stream_to(a(DISCARD), parallel, t),
            Phase::StreamRxPar => client::stream_from(a(CHARGEN), parallel, t),
            Phase::RrPar => client::tcp_rr(a(ECHO), 1, parallel, t),
        }
    }
}

/// Service ports (the same on both guests).
pub const ECHO: u16 = 7;
pub const DISCARD: u16 = 9;
pub const CHARGEN: u16 = 19;
/// UDP request size (sequence number and pattern).
pub const UDP_SIZE: usize = 64;

/// Dynamic polling of the Rx lanes (Crossbow's interrupt ↔ poll switch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Polling {
    Off,
    On,
}

/// The IP stack behind Arbalest's services (kernel argument `stack=`;
/// the Linux guest has its own and ignores this knob).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stack {
    Smol,
    FireEngine,
}

impl Stack {
    /// The kernel argument that selects it.
    pub fn kernel_arg(self) -> &'static str {
        match self {
            Stack::Smol => "stack=smoltcp",
            Stack::FireEngine => "stack=fireengine",
        }
    }

    /// The stack's own name (the JSON's `ip_stack`).
    pub fn ip_stack(self) -> &'static str {
        match self {
            Stack::Smol => "smoltcp",
            Stack::FireEngine => "fireengine",
        }
    }
}

/// QEMU's `-cpu` model, the same for both guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cpu(pub &'static str);

/// The CPU model when `--cpu` is not given: QEMU's own default for x86_64
/// (what it runs without `-cpu`). Under TCG the Linux guest is faster on it
/// than on `max` (issue 17; `docs/bench.md`, "UDP: FireEngine, smoltcp,
/// Linux"), and Arbalest boots on it (xAPIC instead of x2APIC).
pub const DEFAULT_CPU: Cpu = Cpu("qemu64");

impl Cpu {
    /// A model name (letters, digits, `-`, `_`, `.`); interned for the run.
    pub fn parse(s: &str) -> Result<Cpu, String> {
        let ok = !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(format!("--cpu: '{s}' is not a QEMU CPU model name (e.g. qemu64, max, host)"));
        }
        if s == DEFAULT_CPU.0 {
            return Ok(DEFAULT_CPU);
        }
        if s == "max" {
            return Ok(Cpu("max"));
        }
        Ok(Cpu(Box::leak(s.to_string().into_boxed_str())))
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A kernel knob's value and whether the kernel has it today.
pub trait Knob: Copy {
    fn knob_name() -> &'static str;
    fn value_name(self) -> String;
    /// `Err(why)` when the kernel cannot run with this value yet.
    fn available(self) -> Result<(), String>;
}

impl Knob for Polling {
    fn knob_name() -> &'static str {
        "polling"
    }
    fn value_name(self) -> String {
        match self {
            Polling::Off => "off".into(),
            Polling::On => "on".into(),
        }
    }
    fn available(self) -> Result<(), String> {
        match self {
            Polling::Off => Ok(()),
            Polling::On => Err("dynamic polling (interrupt/poll switching of the Rx SRS) is not available yet".into()),
        }
    }
}

impl Knob for Stack {
    fn knob_name() -> &'static str {
        "stack"
    }
    fn value_name(self) -> String {
        match self {
            Stack::Smol => "smol".into(),
            Stack::FireEngine => "fireengine".into(),
        }
    }
    fn available(self) -> Result<(), String> {
        Ok(())
    }
}

/// `maxbw` of the link: none, or a limit in Mbit/s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Maxbw(pub Option<u64>);

impl Knob for Maxbw {
    fn knob_name() -> &'static str {
        "maxbw"
    }
    fn value_name(self) -> String {
        match self.0 {
            None => "none".into(),
            Some(m) => format!("{m}M"),
        }
    }
    fn available(self) -> Result<(), String> {
        match self.0 {
            None => Ok(()),
            Some(_) => Err("link bandwidth limits (maxbw) are not available yet".into()),
        }
    }
}

fn parse_polling(s: &str) -> Result<Polling, String> {
    match s {
        "off" => Ok(Polling::Off),
        "on" => Ok(Polling::On),
        _ => Err(format!("--polling: '{s}' (expected off or on)")),
    }
}

fn parse_stack(s: &str) -> Result<Stack, String> {
    match s {
        "smol" | "smoltcp" => Ok(Stack::Smol),
        "fireengine" | "fe" => Ok(Stack::FireEngine),
        _ => Err(format!("--stack: '{s}' (expected smol or fireengine)")),
    }
}

fn parse_maxbw(s: &str) -> Result<Maxbw, String> {
    if s == "none" {
        return Ok(Maxbw(None));
    }
    let n = s.strip_suffix(['M', 'm']).unwrap_or(s);
    n.parse::<u64>().ok().filter(|&v| v > 0).map(|v| Maxbw(Some(v))).ok_or_else(|| format!("--maxbw: '{s}' (expected none or N[M], Mbit/s)"))
}

/// One boot's settings: everything but the guest. The stack is Arbalest's
/// only: it picks a column of the table, not a row ([`Knobs::row`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knobs {
    pub nic: Nic,
    pub queues: usize,
    pub smp: usize,
    pub polling: Polling,
    pub stack: Stack,
    pub maxbw: Maxbw,
    pub cpu: Cpu,
}

impl fmt::Display for Knobs {
    /// `virtio q4 smp2`, plus the knobs that differ from today's defaults
    /// (the CPU model when it is not [`DEFAULT_CPU`]). Not the stack: the
    /// stacks of one configuration are columns side by side.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} q{} smp{}", self.nic, self.queues, self.smp)?;
        if self.cpu != DEFAULT_CPU {
            write!(f, " cpu={}", self.cpu)?;
        }
        if self.polling != Polling::Off {
            write!(f, " polling={}", self.polling.value_name())?;
        }
        if self.maxbw.0.is_some() {
            write!(f, " maxbw={}", self.maxbw.value_name())?;
        }
        Ok(())
    }
}

impl Knobs {
    /// The same settings with the stack cleared: one row of the table.
    pub fn row(&self) -> Knobs {
        Knobs { stack: Stack::Smol, ..*self }
    }

    /// Why this configuration cannot run today, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        self.polling.available().err().or_else(|| self.stack.available().err()).or_else(|| self.maxbw.available().err())
    }
}

/// Parsed `bench` options.
#[derive(Clone, Debug)]
pub struct Opts {
    pub quick: bool,
    pub out: PathBuf,
    pub duration: f64,
    pub reps: usize,
    pub warmup: f64,
    pub guests: Vec<Guest>,
    pub configs: Vec<Knobs>,
    pub phases: Vec<Phase>,
    pub parallel: usize,
    pub plot: Option<PathBuf>,
    pub accel: Accel,
    pub mem: String,
    /// Only report (table and plot) from an existing JSON-lines file.
    pub from: Option<PathBuf>,
    /// After the runs, sample Arbalest's RIP during these phases.
    pub profile: Option<f64>,
    /// The Markdown table also goes here.
    pub table: Option<PathBuf>,
    /// Linux's queue pairs: `None` keeps the driver's default
    /// (min(queues, CPUs), as Arbalest does); `Some("max")` or `Some(N)`.
    pub linux_channels: Option<String>,
    /// Sender sockets of the UDP flood.
    pub flood_senders: usize,
}

pub const USAGE: &str = "\
usage: cargo run --release -- bench [options]
  Boots Arbalest and a stock Debian Linux guest, one after the other, under the
  identical QEMU command line (NIC, queues, CPUs, memory, accelerator, TAP
  backend) in a network namespace it creates, measures both with the same host
  client and prints a table with the Arbalest/Linux ratios. Needs root.
  --quick               ~1 s per phase, 1 repetition, no warm-up
  --duration S          measured seconds per phase (default 5)
  --warmup S            seconds run before each phase's measurement (default 1)
  --reps N              repetitions of every configuration (default 3)
  --guests LIST         arbalest,linux (default both; runs alternate per configuration)
  --nic LIST            virtio,igb            } configurations: the product of
  --queues LIST         TAP queues, e.g. 1,4  } these (default: virtio q1,
  --smp LIST            CPUs, e.g. 2          } virtio q4, igb q1; 2 CPUs)
  --configs LIST        explicit NIC:QUEUES pairs instead of --nic × --queues,
                        e.g. virtio:1,virtio:4,igb:1
  --cpu LIST            QEMU CPU models, e.g. qemu64,max (default qemu64, QEMU's
                        own default, under which Linux is faster); both guests
                        run on each
  --stack LIST          smol[,fireengine]: Arbalest's IP stack (kernel argument
                        stack=); each is a column beside Linux, which boots
                        once per configuration
  --polling LIST        off[,on]   dynamic polling    } knobs of the kernel;
  --maxbw LIST          none[,N]   link limit, Mbit/s } values it does not have
                                                      } yet are reported as such
  --parallel N          connections of the parallel phases (default 4)
  --flood-senders N     sender sockets of udp_flood (default 1)
  --phases LIST         subset of: tcp_stream_tx,tcp_stream_rx,tcp_rr_1,tcp_rr_1k,
                        tcp_crr,udp_rr,udp_flood,tcp_stream_tx_par,tcp_stream_rx_par,
                        tcp_rr_par
  --out FILE.jsonl      JSON lines, one per configuration x phase x repetition
                        (default target/bench/last.jsonl)
  --plot FILE.png       the plot (default target/bench/last.png)
  --table FILE.md       also write the Markdown table here
  --accel tcg|kvm       accelerator (default: as `cargo run`: kvm only with
                        hardware KVM, else tcg)
  --mem SIZE            guest memory (default 512M)
  --linux-channels default|max|N
                        Linux's queue pairs: its driver default (min(queues, CPUs),
                        which is also what Arbalest uses; the default), all
                        of them, or N (recorded as linux_channels)
  --profile S           afterwards, boot Arbalest once more per configuration and
                        sample its RIP for S seconds during each phase (QMP),
                        printing the top functions
  --from FILE.jsonl     no runs: table and plot from an earlier run's JSON lines
  --help                this text
";

fn list<T>(v: &str, f: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let out: Result<Vec<T>, String> = v.split(',').filter(|s| !s.is_empty()).map(f).collect();
    let out = out?;
    if out.is_empty() {
        return Err(format!("empty list '{v}'"));
    }
    Ok(out)
}

fn positive_secs(flag: &str, v: &str, zero_ok: bool) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && (s > 0.0 || (zero_ok && s == 0.0)) && s <= 3600.0 => Ok(s),
        _ => Err(format!("{flag}: '{v}' is not a number of seconds")),
    }
}

fn count(flag: &str, v: &str, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{flag}: '{v}' is not a count in 1..={max}")),
    }
}

/// `Ok(None)`: `--help`.
pub fn parse_opts(args: &[String]) -> Result<Option<Opts>, String> {
    let ws = crate::workspace_root();
    let mut quick = false;
    let (mut duration, mut reps, mut warmup) = (None, None, None);
    let mut out = ws.join("target/bench/last.jsonl");
    let mut plot = Some(ws.join("target/bench/last.png"));
    let mut guests = vec![Guest::Arbalest, Guest::Linux];
    let (mut nics, mut queues, mut smps): (Option<Vec<Nic>>, Option<Vec<usize>>, Vec<usize>) = (None, None, vec![2]);
    let mut pairs: Option<Vec<(Nic, usize)>> = None;
    let (mut pollings, mut stacks, mut maxbws) = (vec![Polling::Off], vec![Stack::FireEngine], vec![Maxbw(None)]);
    let mut phases = Phase::ALL.to_vec();
    let mut parallel = 4;
    let mut accel = Accel::from_env_or_detect()?;
    let mut mem = "512M".to_string();
    let mut from = None;
    let mut profile = None;
    let mut table = None;
    let mut linux_channels = None;
    let mut cpus = vec![DEFAULT_CPU];
    let mut flood_senders = 1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--help" | "-h" => return Ok(None),
            "--quick" => quick = true,
            "--out" => out = PathBuf::from(val()?),
            "--plot" => plot = Some(PathBuf::from(val()?)),
            "--no-plot" => plot = None,
            "--table" => table = Some(PathBuf::from(val()?)),
            "--duration" => duration = Some(positive_secs(a, &val()?, false)?),
            "--warmup" => warmup = Some(positive_secs(a, &val()?, true)?),
            "--reps" => reps = Some(count(a, &val()?, 1000)?),
            "--guests" => guests = list(&val()?, Guest::parse)?,
            "--nic" => nics = Some(list(&val()?, Nic::parse)?),
            "--queues" => queues = Some(list(&val()?, |s| count("--queues", s, crate::net::MAX_QUEUES))?),
            "--smp" => smps = list(&val()?, |s| count("--smp", s, 64))?,
            "--configs" => {
                pairs = Some(list(&val()?, |s| {
                    let (n, q) = s.split_once(':').ok_or_else(|| format!("--configs: '{s}' is not NIC:QUEUES"))?;
                    Ok((Nic::parse(n)?, count("--configs", q, crate::net::MAX_QUEUES)?))
                })?)
            }
            "--polling" => pollings = list(&val()?, parse_polling)?,
            "--stack" => stacks = list(&val()?, parse_stack)?,
            "--maxbw" => maxbws = list(&val()?, parse_maxbw)?,
            "--parallel" => parallel = count(a, &val()?, 32)?,
            "--flood-senders" => flood_senders = count(a, &val()?, 16)?,
            "--cpu" => cpus = list(&val()?, Cpu::parse)?,
            "--phases" => phases = list(&val()?, Phase::parse)?,
            "--accel" => accel = Accel::parse(&val()?)?,
            "--mem" => mem = val()?,
            "--from" => from = Some(PathBuf::from(val()?)),
            "--linux-channels" => {
                let v = val()?;
                linux_channels = match v.as_str() {
                    "default" => None,
                    "max" => Some(v),
                    n => Some(count(a, n, 64)?.to_string()),
                }
            }
            "--profile" => profile = Some(positive_secs(a, &val()?, false)?),
            _ => return Err(format!("unknown bench option '{a}'")),
        }
    }
    if pairs.is_some() && (nics.is_some() || queues.is_some()) {
        return Err("--configs replaces --nic and --queues: give one or the other".into());
    }
    let pairs = match (pairs, nics, queues) {
        (Some(p), _, _) => p,
        (None, None, None) => vec![(Nic::Virtio, 1), (Nic::Virtio, 4), (Nic::Igb, 1)],
        (None, n, q) => {
            let n = n.unwrap_or(vec![Nic::Virtio]);
            let q = q.unwrap_or(vec![1]);
            n.iter().flat_map(|&nic| q.iter().map(move |&qq| (nic, qq))).collect()
        }
    };
    let mut configs = Vec::new();
    for &cpu in &cpus {
        for &(nic, q) in &pairs {
            for &smp in &smps {
                for &polling in &pollings {
                    for &maxbw in &maxbws {
                        for &stack in &stacks {
                            let k = Knobs { nic, queues: q, smp, polling, stack, maxbw, cpu };
                            if !configs.contains(&k) {
                                configs.push(k);
                            }
                        }
                    }
                }
            }
        }
    }
    let mut g = Vec::new();
    for x in guests {
        if !g.contains(&x) {
            g.push(x);
        }
    }
    Ok(Some(Opts {
        quick,
        out,
        duration: duration.unwrap_or(if quick { 1.0 } else { 5.0 }),
        reps: reps.unwrap_or(if quick { 1 } else { 3 }),
        warmup: warmup.unwrap_or(if quick { 0.0 } else { 1.0 }),
        guests: g,
        configs,
        phases,
        parallel,
        plot,
        accel,
        mem,
        from,
        profile,
        table,
        linux_channels,
        flood_senders,
    }))
}

// ---------------------------------------------------------------------------
// Booting a guest.

/// Where the harness caches downloads and builds.
pub fn cache_dir() -> PathBuf {
    crate::workspace_root().join("target").join("bench-cache")
}

/// What to boot for each guest.
#[derive(Clone, Debug)]
pub struct Images {
    pub arbalest: Option<PathBuf>,
    pub linux: Option<linux::LinuxGuest>,
}

/// The kernel command line of a guest on the bench's TAP network
/// (`linux_channels`: see [`Opts::linux_channels`]).
/// Arbalest always gets `stack=`, so that a record says which stack ran
/// whatever the kernel's default.
pub fn append_for(guest: Guest, stack: Stack, linux_channels: Option<&str>) -> String {
    match guest {
        Guest::Arbalest => {
            let mut s = format!("{} ip={TAP_GUEST_ADDR}/{TAP_PREFIX},gw={TAP_HOST_ADDR}", crate::DEFAULT_APPEND);
            s.push(' ');
            s.push_str(stack.kernel_arg());
            s
        }
        Guest::Linux => {
            let mut s = format!("console=ttyS0 panic=-1 quiet arbip={TAP_GUEST_ADDR}/{TAP_PREFIX} arbgw={TAP_HOST_ADDR}");
            if let Some(c) = linux_channels {
                s.push_str(&format!(" arbchannels={c}"));
            }
            s
        }
    }
}

/// The QEMU configuration of `guest` with `knobs` on TAP `TAP_NAME` in `ns`.
/// Identical for both guests except `-kernel`, `-initrd` and `-append`.
pub fn qemu_config(guest: Guest, knobs: &Knobs, opts: &Opts, ns: &str, images: &Images) -> Result<(Config, PathBuf), String> {
    let mut cfg = Config {
        smp: knobs.smp,
        mem: opts.mem.clone(),
        accel: opts.accel,
        append: append_for(guest, knobs.stack, opts.linux_channels.as_deref()),
        net: Net::tap_in_netns(ns, TAP_NAME, knobs.queues).with_nic(knobs.nic),
        extra: Vec::new(),
    };
    let kernel = match guest {
        Guest::Arbalest => images.arbalest.clone().ok_or("no Arbalest kernel built")?,
        Guest::Linux => {
            let l = images.linux.as_ref().ok_or("no Linux guest prepared")?;
            cfg.extra.push("-initrd".into());
            cfg.extra.push(l.initrd.to_string_lossy().into_owned());
            l.kernel.clone()
        }
    };
    Ok((cfg, kernel))
}

/// The words of the command that runs `cfg` (as [`crate::command_words`])
/// with QEMU's `-cpu` set to `cpu`.
pub fn command_words(cfg: &Config, kernel: &std::path::Path, cpu: Cpu) -> Vec<String> {
    let mut w = crate::command_words(cfg, kernel);
    match w.iter().position(|x| x == "-cpu") {
        Some(i) if i + 1 < w.len() => w[i + 1] = cpu.0.to_string(),
        _ => w.extend(["-cpu".to_string(), cpu.0.to_string()]),
    }
    w
}

/// [`command_words`], shell-quoted on one line.
pub fn command_line(cfg: &Config, kernel: &std::path::Path, cpu: Cpu) -> String {
    command_words(cfg, kernel, cpu).iter().map(|w| crate::shell_quote(w)).collect::<Vec<_>>().join(" ")
}

/// A running guest: QEMU in its namespace, the serial console collected.
pub struct RunningVm {
    pub guest: Guest,
    pub knobs: Knobs,
    child: Child,
    serial: Arc<Mutex<Vec<u8>>>,
    /// Dropped after QEMU is killed.
    ns: TapNamespace,
    pub command_line: String,
    pub boot_secs: f64,
    /// The QMP socket, when asked for ([`RunningVm::boot`] with `qmp`).
    pub qmp: Option<PathBuf>,
}

static NS_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A namespace name that `reap_stale_namespaces` recognises (`arbt<pid>n<seq>`).
fn ns_name() -> String {
    let seq = NS_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("arbt{}n{}", std::process::id(), 7000 + seq)
}

/// Longest wait for a guest's ready marker.
pub fn boot_timeout(guest: Guest) -> Duration {
    match guest {
        Guest::Arbalest => Duration::from_secs(90),
        Guest::Linux => Duration::from_secs(300),
    }
}

impl RunningVm {
    /// Creates the namespace, starts QEMU and waits until the guest answers
    /// on TCP echo from inside the namespace.
    pub fn boot(guest: Guest, knobs: &Knobs, opts: &Opts, images: &Images, qmp: bool) -> Result<RunningVm, String> {
        let name = ns_name();
        let ns = TapNamespace::create_default(&name, knobs.queues)?;
        let (mut cfg, kernel) = qemu_config(guest, knobs, opts, &name, images)?;
        let qmp_path = qmp.then(|| std::env::temp_dir().join(format!("{name}.qmp")));
        if let Some(p) = &qmp_path {
            let _ = std::fs::remove_file(p);
            cfg.extra.push("-qmp".into());
            cfg.extra.push(format!("unix:{},server=on,wait=off", p.display()));
        }
        let command_line = command_line(&cfg, &kernel, knobs.cpu);
        let words = command_words(&cfg, &kernel, knobs.cpu);
        let mut cmd = std::process::Command::new(&words[0]);
        cmd.args(&words[1..]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: prctl in the child between fork and exec only sets its
        // parent-death signal (async-signal-safe). QEMU dies with us.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", crate::QEMU))?;
        let serial = Arc::new(Mutex::new(Vec::new()));
        for r in [
            child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>),
            child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let serial = serial.clone();
            std::thread::spawn(move || {
                let mut r = r;
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut s = serial.lock().unwrap_or_else(|e| e.into_inner());
                    if s.len() < 4 << 20 {
                        s.extend_from_slice(&buf[..n]);
                    }
                }
            });
        }
        let mut vm = RunningVm { guest, knobs: *knobs, child, serial, ns, command_line, boot_secs: 0.0, qmp: qmp_path };
        let marker = match guest {
            Guest::Arbalest => "arbalest# ",
            Guest::Linux => linux::READY_MARKER,
        };
        let deadline = start + boot_timeout(guest);
        loop {
            if vm.serial_text().contains(marker) {
                break;
            }
            if let Ok(Some(st)) = vm.child.try_wait() {
                return Err(format!("{} QEMU exited ({st}) before it was ready; console:\n{}", guest.name(), vm.tail(3000)));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} not ready after {:?} (no '{marker}'); console:\n{}",
                    guest.name(),
                    boot_timeout(guest),
                    vm.tail(3000)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        vm.wait_ready(Duration::from_secs(60))?;
        vm.boot_secs = start.elapsed().as_secs_f64();
        Ok(vm)
    }

    /// The namespace's name.
    pub fn ns(&self) -> &str {
        self.ns.name()
    }

    /// Everything the console printed so far.
    pub fn serial_text(&self) -> String {
        String::from_utf8_lossy(&self.serial.lock().unwrap_or_else(|e| e.into_inner())).replace("\r\n", "\n")
    }

    /// The last `n` bytes of the console.
    pub fn tail(&self, n: usize) -> String {
        let t = self.serial_text();
        let mut i = t.len().saturating_sub(n);
        while !t.is_char_boundary(i) {
            i += 1;
        }
        t[i..].to_string()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Does the guest echo? A TCP echo round trip ([`RunningVm::wait_echo`]),
    /// retried until `timeout`.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        self.wait_echo(timeout)
    }

    /// One 1-byte TCP echo round trip from inside the namespace, retried
    /// until `timeout`.
    pub fn wait_echo(&mut self, timeout: Duration) -> Result<(), String> {
        let addr = SocketAddr::V4(SocketAddrV4::new(TAP_GUEST_ADDR, ECHO));
        let deadline = Instant::now() + timeout;
        let ns = self.ns().to_string();
        let r = client::in_netns(&ns, || {
            let mut last = String::new();
            while Instant::now() < deadline {
                let one = || -> Result<(), String> {
                    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
                    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
                    s.write_all(b"?").map_err(|e| e.to_string())?;
                    let mut b = [0u8; 1];
                    s.read_exact(&mut b).map_err(|e| e.to_string())?;
                    if b[0] == b'?' { Ok(()) } else { Err("wrong echo".into()) }
                };
                match one() {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e,
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(format!("no TCP echo from {addr} within {timeout:?}: {last}"))
        });
        r.map_err(|e| format!("{e}; console:\n{}", self.tail(2000)))
    }

    /// `(numqueues, numdisabled)` of the multi-queue TAP: QEMU opens one
    /// queue per queue pair and detaches those the guest did not enable.
    pub fn tap_queues(&self) -> Option<(usize, usize)> {
        let out = std::process::Command::new("ip")
            .args(["-n", self.ns(), "-d", "link", "show", TAP_NAME])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let w: Vec<&str> = text.split_whitespace().collect();
        let num = |key: &str| w.iter().position(|x| *x == key).and_then(|i| w.get(i + 1)?.parse().ok());
        Some((num("numqueues")?, num("numdisabled")?))
    }

    /// Stops QEMU (SIGKILL) and deletes the namespace.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.ns.delete();
        if let Some(p) = &self.qmp {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The run.

fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Progress on stderr with an estimate of the time left.
struct Progress {
    start: Instant,
    /// Estimated boot seconds per guest (updated with what boots took).
    boot: [f64; 2],
    phase_secs: f64,
    /// Boots still to come (guest index per boot).
    boots_left: Vec<usize>,
    phases_per_boot: usize,
}

impl Progress {
    fn left(&self, phases_left_now: usize) -> f64 {
        let boots: f64 = self.boots_left.iter().map(|&g| self.boot[g] + self.phases_per_boot as f64 * self.phase_secs).sum();
        boots + phases_left_now as f64 * self.phase_secs
    }

    fn say(&self, what: &str, phases_left_now: usize) {
        eprintln!(
            "bench [{} elapsed, ~{} left] {what}",
            fmt_secs(self.start.elapsed().as_secs_f64()),
            fmt_secs(self.left(phases_left_now))
        );
    }
}

/// Runs `bench` with `args` (everything after the word `bench`); returns
/// the process exit status (0: every phase produced a figure).
pub fn main(args: &[String]) -> i32 {
    let opts = match parse_opts(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("bench: {e}");
            eprint!("{USAGE}");
            return 2;
        }
    };
    match run(&opts) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("bench: {e}");
            1
        }
    }
}

/// Everything `bench` does; `Ok(false)` when some phase failed.
pub fn run(opts: &Opts) -> Result<bool, String> {
    if let Some(from) = &opts.from {
        let text = std::fs::read_to_string(from).map_err(|e| format!("{}: {e}", from.display()))?;
        let recs = report::parse_lines(&text)?;
        finish(opts, &recs)?;
        return Ok(true);
    }
    let log = |s: &str| eprintln!("bench: {s}");
    for n in crate::reap_stale_namespaces() {
        log(&format!("removed stale network namespace {n}"));
    }
    // Set-up first: on a fresh machine QEMU arrives only now, and the
    // machine's description below names its version (it runs set-up
    // itself too, once per process, whoever asks first). A figure it
    // cannot read stops the run here, naming what is missing.
    crate::setup()?;
    let machine = report::machine_info(opts.accel)?;
    log(&format!("machine: {}", machine["summary"].as_str().unwrap_or_default()));
    let runnable: Vec<Knobs> = opts.configs.iter().copied().filter(|k| k.unavailable().is_none()).collect();
    let mut images = Images { arbalest: None, linux: None };
    if opts.guests.contains(&Guest::Arbalest) && !runnable.is_empty() {
        log("building the Arbalest kernel");
        images.arbalest = Some(crate::build_kernel()?);
    }
    if opts.guests.contains(&Guest::Linux) && !runnable.is_empty() {
        log("preparing the Linux guest (cached under target/bench-cache)");
        let l = linux::prepare(&cache_dir(), &log)?;
        log(&format!("Linux guest: {}, {}, modules {}", l.kernel_package, l.busybox_package, l.modules.join(" ")));
        images.linux = Some(l);
    }
    if let Some(dir) = opts.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut out = std::fs::File::create(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let run_id = format!("{}-{}", report::unix_now() as u64, std::process::id());
    let command = report::command_line(opts);
    let timing = Timing { warmup: Duration::from_secs_f64(opts.warmup), duration: Duration::from_secs_f64(opts.duration) };
    let gi = |g: Guest| if g == Guest::Arbalest { 0 } else { 1 };

    let plan = plan(&runnable, &opts.guests, opts.reps);
    let mut progress = Progress {
        start: Instant::now(),
        boot: [5.0, 40.0],
        phase_secs: opts.warmup + opts.duration + 1.0,
        boots_left: plan.iter().map(|p| gi(p.2)).collect(),
        phases_per_boot: opts.phases.len(),
    };
    let mut records: Vec<Value> = Vec::new();
    let mut emit = |rec: Value, records: &mut Vec<Value>| -> Result<(), String> {
        // No record leaves with a figure nobody read.
        let unknown = report::unknown_figures(&rec);
        if !unknown.is_empty() {
            return Err(format!("a record has unread figures ({}): {rec}", unknown.join("; ")));
        }
        writeln!(out, "{rec}").and_then(|_| out.flush()).map_err(|e| format!("{}: {e}", opts.out.display()))?;
        records.push(rec);
        Ok(())
    };
    // Configurations the kernel cannot run yet: one line each, no figures.
    for k in opts.configs.iter().filter(|k| k.unavailable().is_some()) {
        let why = k.unavailable().unwrap_or_default();
        log(&format!("{k}: not available yet: {why}"));
        for g in &opts.guests {
            let rec = report::record_unavailable(&run_id, &command, &machine, *g, k, &why);
            emit(rec, &mut records)?;
        }
    }
    let mut all_ok = true;
    for (i, (knobs, rep, guest)) in plan.iter().enumerate() {
        progress.boots_left.remove(0);
        let who = match guest {
            Guest::Arbalest => format!("arbalest ({})", knobs.stack.ip_stack()),
            Guest::Linux => guest.name().to_string(),
        };
        let label = format!("[{}/{}] {who} {knobs} rep {}/{}", i + 1, plan.len(), rep + 1, opts.reps);
        progress.say(&format!("{label}: booting"), opts.phases.len());
        let boot_start = Instant::now();
        let vm = RunningVm::boot(*guest, knobs, opts, &images, false);
        let boot_secs = boot_start.elapsed().as_secs_f64();
        let mut vm = match vm {
            Ok(v) => {
                progress.boot[gi(*guest)] = boot_secs;
                v
            }
            Err(e) => {
                all_ok = false;
                log(&format!("{label}: boot failed: {e}"));
                for p in &opts.phases {
                    let ctx = report::Ctx { run_id: &run_id, command: &command, machine: &machine, opts, images: &images };
                    emit(report::record(&ctx, *guest, knobs, *rep, *p, None, Err(&format!("boot failed: {e}")), None), &mut records)?;
                }
                continue;
            }
        };
        let info = report::guest_info(*guest, &images, &vm);
        let mut dead: Option<String> = None;
        for (pi, phase) in opts.phases.iter().enumerate() {
            progress.say(
                &format!("{label}: {} ({})", phase.name(), fmt_secs(timing.total().as_secs_f64())),
                opts.phases.len() - pi,
            );
            let t0 = report::unix_now();
            let r = match &dead {
                Some(e) => Err(e.clone()),
                None => {
                    let ns = vm.ns().to_string();
                    client::in_netns(&ns, || phase.run(TAP_GUEST_ADDR, opts.parallel, opts.flood_senders, timing))
                }
            };
            let t1 = report::unix_now();
            match &r {
                Ok(f) => eprintln!("    {}: {:.1} {} ({})", phase.name(), f.value(), f.unit(), f.summary()),
                Err(e) => {
                    all_ok = false;
                    eprintln!("    {}: FAILED: {e}", phase.name());
                }
            }
            // Let connections close and queues drain; check the guest lives.
            if dead.is_none() {
                std::thread::sleep(Duration::from_millis(300));
                if !vm.alive() {
                    dead = Some(format!("QEMU exited; console:\n{}", vm.tail(2000)));
                } else if let Err(e) = vm.wait_ready(Duration::from_secs(30)) {
                    dead = Some(format!("guest stopped answering after {}: {e}", phase.name()));
                }
                if let Some(d) = &dead {
                    log(&format!("{label}: {d}"));
                }
            }
            let ctx = report::Ctx { run_id: &run_id, command: &command, machine: &machine, opts, images: &images };
            let rec = report::record(
                &ctx,
                *guest,
                knobs,
                *rep,
                *phase,
                Some((&vm, &info, boot_secs)),
                r.as_ref().map_err(|e| e.as_str()),
                Some((t0, t1)),
            );
            emit(rec, &mut records)?;
        }
        vm.stop();
    }
    finish(opts, &records)?;
    if let Some(secs) = opts.profile
        && images.arbalest.is_some() {
            for k in &runnable {
                match profile::profile(k, opts, &images, secs) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("bench: profile of {k}: {e}");
                        all_ok = false;
                    }
                }
            }
        }
    Ok(all_ok)
}

/// The order of boots: per configuration row ([`Knobs::row`]), per
/// repetition, the guests — Arbalest once per stack of the row, Linux once
/// (with the row's first stack, which it ignores) — reversed every other
/// repetition (ABBA) so that drift cancels.
pub fn plan(configs: &[Knobs], guests: &[Guest], reps: usize) -> Vec<(Knobs, usize, Guest)> {
    let mut rows: Vec<Vec<Knobs>> = Vec::new();
    for k in configs {
        match rows.iter_mut().find(|r| r[0].row() == k.row()) {
            Some(r) => r.push(*k),
            None => rows.push(vec![*k]),
        }
    }
    let mut plan = Vec::new();
    for row in &rows {
        for rep in 0..reps {
            let mut boots: Vec<(Knobs, usize, Guest)> = Vec::new();
            for g in guests {
                match g {
                    Guest::Arbalest => boots.extend(row.iter().map(|k| (*k, rep, *g))),
                    Guest::Linux => boots.push((row[0], rep, *g)),
                }
            }
            if rep % 2 == 1 {
                boots.reverse();
            }
            plan.extend(boots);
        }
    }
    plan
}

/// Table (stdout, and `--table`) and plot.
fn finish(opts: &Opts, records: &[Value]) -> Result<(), String> {
    let table = report::table(records);
    println!("{table}");
    if let Some(t) = &opts.table {
        std::fs::write(t, &table).map_err(|e| format!("{}: {e}", t.display()))?;
    }
    if opts.from.is_none() {
        eprintln!("bench: wrote {} records to {}", records.len(), opts.out.display());
    }
    let any_figure = records.iter().any(|r| r["status"] == "ok");
    if let Some(p) = opts.plot.as_ref().filter(|_| any_figure) {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        plot::plot(records, p)?;
        eprintln!("bench: plot in {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options() {
        let o = parse_opts(&args("--quick")).unwrap().unwrap();
        assert_eq!((o.duration, o.reps, o.warmup), (1.0, 1, 0.0));
        assert_eq!(o.configs.len(), 3);
        assert_eq!(o.guests, [Guest::Arbalest, Guest::Linux]);
        assert_eq!(o.phases.len(), 10);
        assert_eq!(o.configs[0].cpu, DEFAULT_CPU);
        assert_eq!(o.flood_senders, 1);

        let o = parse_opts(&args("--nic virtio,igb --queues 1,4 --smp 2,4 --duration 3 --warmup 0.5 --reps 2")).unwrap().unwrap();
        assert_eq!(o.configs.len(), 8);
        assert_eq!((o.duration, o.reps, o.warmup), (3.0, 2, 0.5));
        assert_eq!(o.configs[0].to_string(), "virtio q1 smp2");

        let o = parse_opts(&args("--configs virtio:4,igb:1 --polling off,on --stack smol,fireengine --maxbw none,100")).unwrap().unwrap();
        assert_eq!(o.configs.len(), 16);
        let avail: Vec<_> = o.configs.iter().filter(|k| k.unavailable().is_none()).collect();
        assert_eq!(avail.len(), 4, "polling=off maxbw=none runs today, on either stack");
        let k = o.configs.iter().find(|k| k.polling == Polling::On).unwrap();
        assert!(k.unavailable().unwrap().contains("not available yet"));
        assert!(k.to_string().contains("polling=on"));

        assert!(parse_opts(&args("--configs virtio:1 --nic igb")).is_err());
        assert!(parse_opts(&args("--guests bsd")).is_err());
        assert!(parse_opts(&args("--duration 0")).is_err());
        assert!(parse_opts(&args("--phases tcp_rr_1,nope")).is_err());
        assert!(parse_opts(&args("--bogus")).is_err());
        assert!(parse_opts(&args("--help")).unwrap().is_none());
        let o = parse_opts(&args("--guests linux,linux --phases udp_rr")).unwrap().unwrap();
        assert_eq!((o.guests.len(), o.phases.as_slice()), (1, &[Phase::UdpRr][..]));

        let o = parse_opts(&args("--cpu qemu64,max --stack smol,fireengine --configs virtio:1 --flood-senders 3 --phases udp_rr,udp_flood"))
            .unwrap()
            .unwrap();
        assert_eq!(o.flood_senders, 3);
        assert_eq!(o.phases, [Phase::UdpRr, Phase::UdpFlood]);
        let names: Vec<String> = o.configs.iter().map(|k| format!("{k} {}", k.stack.value_name())).collect();
        assert_eq!(names, ["virtio q1 smp2 smol", "virtio q1 smp2 fireengine", "virtio q1 smp2 cpu=max smol", "virtio q1 smp2 cpu=max fireengine"]);
        assert!(parse_opts(&args("--cpu 'max;rm'")).is_err());
        assert!(parse_opts(&args("--flood-senders 0")).is_err());
    }

    #[test]
    fn stacks_and_plan() {
        assert_eq!(Phase::ALL.iter().filter(|p| !p.tcp()).count(), 2);
        let o = parse_opts(&args("--cpu qemu64,max --stack smol,fireengine --configs virtio:1 --reps 2")).unwrap().unwrap();
        let p = plan(&o.configs, &o.guests, o.reps);
        let s: Vec<String> = p.iter().map(|(k, rep, g)| format!("{k}/{}/{rep}/{}", k.stack.value_name(), g.name())).collect();
        assert_eq!(
            s,
            [
                "virtio q1 smp2/smol/0/arbalest",
                "virtio q1 smp2/fireengine/0/arbalest",
                "virtio q1 smp2/smol/0/linux",
                "virtio q1 smp2/smol/1/linux",
                "virtio q1 smp2/fireengine/1/arbalest",
                "virtio q1 smp2/smol/1/arbalest",
                "virtio q1 smp2 cpu=max/smol/0/arbalest",
                "virtio q1 smp2 cpu=max/fireengine/0/arbalest",
                "virtio q1 smp2 cpu=max/smol/0/linux",
                "virtio q1 smp2 cpu=max/smol/1/linux",
                "virtio q1 smp2 cpu=max/fireengine/1/arbalest",
                "virtio q1 smp2 cpu=max/smol/1/arbalest",
            ]
        );
        assert!(append_for(Guest::Arbalest, Stack::FireEngine, None).ends_with(" stack=fireengine"));
        assert!(append_for(Guest::Arbalest, Stack::Smol, None).ends_with(" stack=smoltcp"));
    }

    #[test]
    fn identical_command_lines() {
        use std::path::Path;
        let images = Images {
            arbalest: Some(PathBuf::from("/k/arbalest")),
            linux: Some(linux::LinuxGuest {
                kernel: PathBuf::from("/k/vmlinuz"),
                initrd: PathBuf::from("/k/initrd"),
                kernel_package: String::new(),
                busybox_package: String::new(),
                modules: vec![],
            }),
        };
        let k = Knobs { nic: Nic::Virtio, queues: 4, smp: 2, polling: Polling::Off, stack: Stack::Smol, maxbw: Maxbw(None), cpu: Cpu("max") };
        let mut opts = parse_opts(&args("--accel tcg")).unwrap().unwrap();
        let (a, ak) = qemu_config(Guest::Arbalest, &k, &opts, "ns1", &images).unwrap();
        let (l, lk) = qemu_config(Guest::Linux, &k, &opts, "ns1", &images).unwrap();
        let strip = |cfg: &Config, kernel: &Path| -> Vec<String> {
            let w = crate::qemu_args(cfg, kernel);
            let mut out = Vec::new();
            let mut i = 0;
            while i < w.len() {
                if ["-kernel", "-initrd", "-append"].contains(&w[i].as_str()) {
                    i += 2;
                    continue;
                }
                out.push(w[i].clone());
                i += 1;
            }
            out
        };
        assert_eq!(strip(&a, &ak), strip(&l, &lk));
        // -cpu is the configuration's, for both.
        for (c, kern) in [(&a, &ak), (&l, &lk)] {
            let w = command_words(c, kern, Cpu("qemu64"));
            assert!(w.windows(2).any(|w| w[0] == "-cpu" && w[1] == "qemu64"), "{w:?}");
            assert_eq!(w.iter().filter(|x| *x == "-cpu").count(), 1);
        }
        let fe = Knobs { stack: Stack::FireEngine, ..k };
        let (af, afk) = qemu_config(Guest::Arbalest, &fe, &opts, "ns1", &images).unwrap();
        assert_eq!(strip(&af, &afk), strip(&l, &lk));
        assert!(af.append.contains("ip=10.0.0.2/24,gw=10.0.0.1") && af.append.contains("stack=fireengine"));
        let la = crate::qemu_args(&l, &lk);
        assert!(la.windows(2).any(|w| w[0] == "-initrd" && w[1] == "/k/initrd"));
        assert!(la.iter().any(|w| w.contains("mq=on,vectors=10")));
        assert!(l.append.contains("console=ttyS0") && l.append.contains("arbip=10.0.0.2/24"));
        assert!(a.append.contains("ip=10.0.0.2/24,gw=10.0.0.1"));
        assert!(!l.append.contains("arbchannels"));
        opts.linux_channels = Some("max".into());
        let (l, _) = qemu_config(Guest::Linux, &k, &opts, "ns1", &images).unwrap();
        assert!(l.append.ends_with(" arbchannels=max"));
        assert!(parse_opts(&args("--linux-channels 3")).unwrap().unwrap().linux_channels.as_deref() == Some("3"));
        assert!(parse_opts(&args("--linux-channels lots")).is_err());
    }

    #[test]
    fn time_format() {
        assert_eq!(fmt_secs(5.4), "5s");
        assert_eq!(fmt_secs(125.0), "2m05s");
        assert_eq!(fmt_secs(3725.0), "1h02m");
    }
}
