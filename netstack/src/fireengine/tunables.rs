//! FireEngine's tunables: the protocol properties that `ipadm
//! show-prop`/`set-prop`/`reset-prop` read and change (illumos'
//! `ipadm(8)` property table: `ttl` and `forwarding` of `ipv4`,
//! `send_buf`, `recv_buf`, `max_buf` of `icmp` and `udp`, UDP's
//! anonymous port range, and TCP's properties, public and private, in
//! [`tcp`]), and the `ndd` variables of `/dev/ip`, `/dev/icmp`,
//! `/dev/udp` and `/dev/tcp` — the same values under their `ndd` names
//! plus the squeue tunables (`ip_squeue_fanout`, `ip_squeue_wait`,
//! `ip_squeue_bind`, `tcp_squeue_wput`, kept in the squeue room's
//! [`SqConfig`]).
//!
//! A tunable is an integer in a range, `on`/`off`, or one of a few names
//! ([`Possible::Enum`]: `sack`, `ecn`, `congestion_control`), kept as an
//! integer (the name's index) and shown and accepted by name.
//!
//! One [`Tunables`] belongs to the FireEngine system and is shared by
//! every FireEngine instance (illumos keeps one per netstack, that is per
//! zone; our instances are the interfaces of one host). Readers take no
//! lock; a change is validated against its range *and* the properties it
//! is tied to (`send_buf`/`recv_buf` ≤ `max_buf`, `smallest_anon_port` ≤
//! `largest_anon_port`, and TCP's rules in [`tcp`]) under one writer
//! lock, and a refused change changes nothing. The TCP code reads all of
//! TCP's values at once, consistently, with [`Tunables::tcp`]. Where each
//! value acts:
//!
//! * `ttl`: every datagram FireEngine sends (and `ipDefaultTTL`);
//! * `_icmp_err_interval`, `_icmp_err_burst`: the ICMP error rate
//!   limit of every instance (illumos' private `ip` properties);
//! * `_lso_outbound` (`ndd` `ip_lso_outbound`, as illumos): TCP sends
//!   segments of up to 64 KiB for the link to cut where the link offers
//!   LSO; off, every segment is one MSS (read at each send);
//! * `forwarding`: `off` only — FireEngine instances are hosts; `on` is
//!   refused until the virtual router forwards between interfaces;
//! * `udp` `recv_buf`: the receive queue of each socket opened after the
//!   change (illumos: the socket's `SO_RCVBUF` default); `send_buf`: the
//!   largest datagram a socket may send (EMSGSIZE beyond);
//! * `udp` anonymous ports: the range a bind to port 0 picks from;
//! * `icmp` `recv_buf`: the echo replies a `ping` requester may hold, in
//!   bytes; `send_buf`: the largest echo request `ping -s` may send;
//! * `tcp`: wherever FireEngine's TCP reads its [`TcpTunables`].

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering, fence};

use arbalest_mac::sync::Mutex;

use super::squeue::SqConfig;

pub mod tcp;

pub use tcp::{TcpCc, TcpEcnMode, TcpOptMode, TcpSackMode, TcpTun, TcpTunables};

/// A protocol as `ipadm` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// `ipv4` (also reached as `ip`).
    Ipv4,
    /// `icmp`.
    Icmp,
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
}

impl Proto {
    /// Every protocol, in the order `ipadm show-prop` lists them
    /// (illumos' `MOD_PROTO_*` order: IP, raw IP/ICMP, TCP, UDP).
    pub const ALL: [Proto; 4] = [Proto::Ipv4, Proto::Icmp, Proto::Tcp, Proto::Udp];

    /// The name `ipadm` prints in its `PROTO` column.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Ipv4 => "ipv4",
            Proto::Icmp => "icmp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The protocol a user typed (`ip` is IPv4: there is no IPv6 yet).
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "ip" | "ipv4" => Some(Proto::Ipv4),
            "icmp" => Some(Proto::Icmp),
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// An `ndd` driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NddDev {
    /// `/dev/ip`.
    Ip,
    /// `/dev/icmp`.
    Icmp,
    /// `/dev/udp`.
    Udp,
    /// `/dev/tcp`.
    Tcp,
}

impl NddDev {
    /// Every driver, in listing order.
    pub const ALL: [NddDev; 4] = [NddDev::Ip, NddDev::Icmp, NddDev::Udp, NddDev::Tcp];

    /// The device path.
    pub fn path(self) -> &'static str {
        match self {
            NddDev::Ip => "/dev/ip",
            NddDev::Icmp => "/dev/icmp",
            NddDev::Udp => "/dev/udp",
            NddDev::Tcp => "/dev/tcp",
        }
    }

    /// The driver at `path`.
    pub fn parse(path: &str) -> Option<NddDev> {
        NddDev::ALL.into_iter().find(|d| d.path() == path)
    }
}

/// Which values a tunable takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Possible {
    /// An integer in `[min, max]`.
    Range(u32, u32),
    /// `on` or `off` (ndd: 1 or 0).
    OnOff,
    /// One of `names`, kept as its index. `ipadm` shows the name; `ndd`
    /// shows the index if `ndd_numeric` (illumos' `ndd /dev/tcp
    /// tcp_sack_permitted` says 2), else the name. Both take either.
    Enum {
        /// The names, index 0 first.
        names: &'static [&'static str],
        /// Whether `ndd` shows the index rather than the name.
        ndd_numeric: bool,
    },
}

impl Possible {
    /// The smallest and largest value kept.
    pub fn bounds(self) -> (u32, u32) {
        match self {
            Possible::Range(lo, hi) => (lo, hi),
            Possible::OnOff => (0, 1),
            Possible::Enum { names, .. } => (0, u32::try_from(names.len()).unwrap_or(1).saturating_sub(1)),
        }
    }

    /// Parses a value as a user typed it (`on`/`off` or 1/0; a name or its
    /// index; a decimal number).
    pub fn parse(self, value: &str) -> Result<u32, TunError> {
        match self {
            Possible::OnOff => match value {
                "on" | "1" => Ok(1),
                "off" | "0" => Ok(0),
                _ => Err(TunError::NotAValue),
            },
            Possible::Enum { names, .. } => match names.iter().position(|n| *n == value) {
                Some(i) => u32::try_from(i).map_err(|_| TunError::NotOneOf(names)),
                None => match parse_u32(value) {
                    Some(i) if (i as usize) < names.len() => Ok(i),
                    _ => Err(TunError::NotOneOf(names)),
                },
            },
            Possible::Range(..) => parse_u32(value).ok_or(TunError::NotAValue),
        }
    }
}

/// Every tunable, one name for each place it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tun {
    /// `ipv4` `ttl`.
    Ttl,
    /// `ipv4` `forwarding`.
    Forwarding,
    /// `ipv4` `_icmp_err_interval`.
    IcmpErrInterval,
    /// `ipv4` `_icmp_err_burst`.
    IcmpErrBurst,
    /// `icmp` `send_buf`.
    IcmpSendBuf,
    /// `icmp` `recv_buf`.
    IcmpRecvBuf,
    /// `icmp` `max_buf`.
    IcmpMaxBuf,
    /// `udp` `send_buf`.
    UdpSendBuf,
    /// `udp` `recv_buf`.
    UdpRecvBuf,
    /// `udp` `max_buf`.
    UdpMaxBuf,
    /// `udp` `smallest_anon_port`.
    UdpSmallestAnon,
    /// `udp` `largest_anon_port`.
    UdpLargestAnon,
    /// `ndd` `ip_squeue_fanout`.
    SqFanout,
    /// `ndd` `ip_squeue_wait`.
    SqWait,
    /// `ndd` `ip_squeue_bind`.
    SqBind,
    /// `ndd` `tcp_squeue_wput`.
    TcpSqWput,
    /// `ipv4` `_lso_outbound` (`ip_lso_outbound`).
    LsoOutbound,
    /// A `tcp` property ([`tcp`]).
    Tcp(TcpTun),
}

/// What is known of one tunable: its names, values and default.
#[derive(Clone, Copy, Debug)]
pub struct TunInfo {
    /// Which tunable.
    pub tun: Tun,
    /// Its `ipadm` protocol and property name, if it is a property.
    pub prop: Option<(Proto, &'static str)>,
    /// Its `ndd` driver and variable name.
    pub ndd: (NddDev, &'static str),
    /// The values it takes.
    pub possible: Possible,
    /// Its default.
    pub default: u32,
    /// One line for `ndd DEV \?` listings.
    pub description: &'static str,
}

/// illumos' `udp_xmit_hiwat`/`icmp_xmit_hiwat` default (`send_buf`).
pub const SEND_BUF_DEFAULT: u32 = 57_344;
/// Our UDP `recv_buf` default: 128 KiB (illumos: 57 344), so that a burst
/// of full-size fragmented datagrams fits one socket.
pub const UDP_RECV_BUF_DEFAULT: u32 = 128 * 1024;
/// ICMP `recv_buf` default (illumos `icmp_recv_hiwat`).
pub const ICMP_RECV_BUF_DEFAULT: u32 = 8192;
/// `max_buf` default (illumos' UDP and ICMP `max_buf`: 2 MiB).
pub const MAX_BUF_DEFAULT: u32 = 2 << 20;
/// The smallest buffer property accepted (illumos' lower bound).
pub const BUF_MIN: u32 = 128;
/// The largest `max_buf` accepted.
pub const MAX_BUF_LIMIT: u32 = 16 << 20;
/// The first port an unprivileged bind may take; the anonymous range
/// starts at or above it.
pub const SMALLEST_NONPRIV_PORT: u32 = 1024;

const fn info(
    tun: Tun,
    prop: Option<(Proto, &'static str)>,
    ndd: (NddDev, &'static str),
    possible: Possible,
    default: u32,
    description: &'static str,
) -> TunInfo {
    TunInfo { tun, prop, ndd, possible, default, description }
}

use Possible::{OnOff, Range};

/// The tunables of IP, ICMP, UDP and the squeues, in listing order.
const BASE: [TunInfo; 17] = [
    info(Tun::Forwarding, Some((Proto::Ipv4, "forwarding")), (NddDev::Ip, "ip_forwarding"), OnOff, 0, "forward between interfaces (off: FireEngine instances are hosts)"),
    info(Tun::Ttl, Some((Proto::Ipv4, "ttl")), (NddDev::Ip, "ip_def_ttl"), Range(1, 255), 255, "TTL of datagrams sent"),
    info(Tun::IcmpErrInterval, Some((Proto::Ipv4, "_icmp_err_interval")), (NddDev::Ip, "ip_icmp_err_interval"), Range(0, 99_999), super::icmp::ICMP_ERR_INTERVAL_MS as u32, "ms per ICMP error token (0: no limit)"),
    info(Tun::IcmpErrBurst, Some((Proto::Ipv4, "_icmp_err_burst")), (NddDev::Ip, "ip_icmp_err_burst"), Range(1, 99_999), super::icmp::ICMP_ERR_BURST, "ICMP errors sent back to back"),
    info(Tun::LsoOutbound, Some((Proto::Ipv4, "_lso_outbound")), (NddDev::Ip, "ip_lso_outbound"), OnOff, 1, "send large TCP segments where the link segments them (LSO)"),
    info(Tun::SqFanout, None, (NddDev::Ip, "ip_squeue_fanout"), Range(0, 1), 0, "1: spread new conns over every CPU's squeue"),
    info(Tun::SqWait, None, (NddDev::Ip, "ip_squeue_wait"), Range(0, super::squeue::IP_SQUEUE_WAIT_MAX_MS), super::squeue::IP_SQUEUE_WAIT_DEFAULT_MS, "ms queued entries wait before the squeue worker runs (0: at once)"),
    info(Tun::SqBind, None, (NddDev::Ip, "ip_squeue_bind"), Range(0, 1), 1, "1: squeue workers stay on their own CPU"),
    info(Tun::IcmpSendBuf, Some((Proto::Icmp, "send_buf")), (NddDev::Icmp, "icmp_xmit_hiwat"), Range(BUF_MIN, MAX_BUF_LIMIT), SEND_BUF_DEFAULT, "largest echo request a requester may send"),
    info(Tun::IcmpRecvBuf, Some((Proto::Icmp, "recv_buf")), (NddDev::Icmp, "icmp_recv_hiwat"), Range(BUF_MIN, MAX_BUF_LIMIT), ICMP_RECV_BUF_DEFAULT, "bytes of echo replies a requester holds"),
    info(Tun::IcmpMaxBuf, Some((Proto::Icmp, "max_buf")), (NddDev::Icmp, "icmp_max_buf"), Range(65_536, MAX_BUF_LIMIT), MAX_BUF_DEFAULT, "upper bound of send_buf and recv_buf"),
    info(Tun::UdpSendBuf, Some((Proto::Udp, "send_buf")), (NddDev::Udp, "udp_xmit_hiwat"), Range(BUF_MIN, MAX_BUF_LIMIT), SEND_BUF_DEFAULT, "largest datagram a socket may send"),
    info(Tun::UdpRecvBuf, Some((Proto::Udp, "recv_buf")), (NddDev::Udp, "udp_recv_hiwat"), Range(BUF_MIN, MAX_BUF_LIMIT), UDP_RECV_BUF_DEFAULT, "receive queue of a new socket, bytes"),
    info(Tun::UdpMaxBuf, Some((Proto::Udp, "max_buf")), (NddDev::Udp, "udp_max_buf"), Range(65_536, MAX_BUF_LIMIT), MAX_BUF_DEFAULT, "upper bound of send_buf and recv_buf"),
    info(Tun::UdpSmallestAnon, Some((Proto::Udp, "smallest_anon_port")), (NddDev::Udp, "udp_smallest_anon_port"), Range(SMALLEST_NONPRIV_PORT, 65_535), 32_768, "first port of the anonymous range"),
    info(Tun::UdpLargestAnon, Some((Proto::Udp, "largest_anon_port")), (NddDev::Udp, "udp_largest_anon_port"), Range(SMALLEST_NONPRIV_PORT, 65_535), 65_535, "last port of the anonymous range"),
    info(Tun::TcpSqWput, None, (NddDev::Tcp, "tcp_squeue_wput"), Range(1, 2), super::squeue::TCP_SQUEUE_WPUT_DEFAULT, "1: a sender runs its own entry only; 2: it drains the squeue too"),
];

/// `a` then `b`, at compile time.
const fn concat<const N: usize>(a: &[TunInfo], b: &[TunInfo]) -> [TunInfo; N] {
    assert!(a.len() + b.len() == N && !a.is_empty());
    let mut out = [a[0]; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < a.len() { a[i] } else { b[i - a.len()] };
        i += 1;
    }
    out
}

/// Every tunable, in listing order: IP, ICMP, UDP and the squeues, then
/// TCP ([`tcp::TABLE`]).
pub const ALL: &[TunInfo] = &concat::<{ BASE.len() + tcp::COUNT }>(&BASE, &tcp::TABLE);

/// The entry of `tun` in [`ALL`].
pub fn info_of(tun: Tun) -> &'static TunInfo {
    ALL.iter().find(|i| i.tun == tun).unwrap_or(&ALL[0])
}

/// The tunable that `ipadm` calls `name` in `proto`.
pub fn find_prop(proto: Proto, name: &str) -> Option<&'static TunInfo> {
    ALL.iter().find(|i| i.prop == Some((proto, name)))
}

/// The tunable `ndd` calls `name` in `dev`.
pub fn find_ndd(dev: NddDev, name: &str) -> Option<&'static TunInfo> {
    ALL.iter().find(|i| i.ndd == (dev, name))
}

/// Why a change was refused; nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunError {
    /// The value is not a number (or not `on`/`off`).
    NotAValue,
    /// The value is none of these names (nor their index).
    NotOneOf(&'static [&'static str]),
    /// The value would put `low` above `high` (TCP's tied values).
    Order {
        /// The property that must be the smaller.
        low: &'static str,
        /// Its value after the change.
        low_value: u32,
        /// The property that must be the larger.
        high: &'static str,
        /// Its value after the change.
        high_value: u32,
    },
    /// Outside the tunable's range.
    OutOfRange { min: u32, max: u32 },
    /// Above `max_buf` (`send_buf`, `recv_buf`), or below a buffer property
    /// now set (`max_buf`).
    AboveMaxBuf { max_buf: u32 },
    /// `max_buf` below `send_buf` or `recv_buf`.
    BelowBuffer { buf: u32 },
    /// The anonymous range would be empty.
    AnonRange { smallest: u32, largest: u32 },
    /// A value the stack cannot honour yet (`forwarding=on`).
    Unsupported(&'static str),
}

impl fmt::Display for TunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TunError::NotAValue => f.write_str("not a valid value"),
            TunError::NotOneOf(names) => {
                f.write_str("not one of ")?;
                write_names(f, names)
            }
            TunError::Order { low, low_value, high, high_value } => {
                write!(f, "would put {low} ({low_value}) above {high} ({high_value})")
            }
            TunError::OutOfRange { min, max } => write!(f, "out of range {min}-{max}"),
            TunError::AboveMaxBuf { max_buf } => write!(f, "above max_buf ({max_buf})"),
            TunError::BelowBuffer { buf } => write!(f, "below send_buf or recv_buf ({buf})"),
            TunError::AnonRange { smallest, largest } => {
                write!(f, "would make the anonymous port range empty ({smallest}-{largest})")
            }
            TunError::Unsupported(why) => f.write_str(why),
        }
    }
}

/// The live values (see the module doc).
#[derive(Debug)]
pub struct Tunables {
    /// The squeue tunables, shared with the squeue set.
    pub squeue: Arc<SqConfig>,
    ttl: AtomicU32,
    icmp_err_interval: AtomicU32,
    icmp_err_burst: AtomicU32,
    lso_outbound: AtomicU32,
    icmp_send_buf: AtomicU32,
    icmp_recv_buf: AtomicU32,
    icmp_max_buf: AtomicU32,
    udp_send_buf: AtomicU32,
    udp_recv_buf: AtomicU32,
    udp_max_buf: AtomicU32,
    /// `smallest << 16 | largest`, so that a reader sees a consistent pair.
    udp_anon: AtomicU32,
    /// TCP's values, indexed by [`TcpTun`].
    tcp: [AtomicU32; tcp::COUNT],
    /// TCP's change count, a sequence lock: odd while a change is being
    /// stored, so that [`Tunables::tcp`] sees every value of one moment.
    tcp_seq: AtomicU32,
    /// Serializes changes (checks of tied values, then the store).
    writer: Mutex<()>,
}

/// Attempts [`Tunables::tcp`] makes at a consistent read before it takes
/// the last one and puts its tied values in order itself.
const TCP_READ_TRIES: usize = 64;

impl Default for Tunables {
    fn default() -> Self {
        Tunables::new(Arc::new(SqConfig::new()))
    }
}

impl Tunables {
    /// Every value at its default, with the squeue tunables in `squeue`.
    pub fn new(squeue: Arc<SqConfig>) -> Tunables {
        let d = |t: Tun| AtomicU32::new(info_of(t).default);
        Tunables {
            squeue,
            ttl: d(Tun::Ttl),
            icmp_err_interval: d(Tun::IcmpErrInterval),
            icmp_err_burst: d(Tun::IcmpErrBurst),
            lso_outbound: d(Tun::LsoOutbound),
            icmp_send_buf: d(Tun::IcmpSendBuf),
            icmp_recv_buf: d(Tun::IcmpRecvBuf),
            icmp_max_buf: d(Tun::IcmpMaxBuf),
            udp_send_buf: d(Tun::UdpSendBuf),
            udp_recv_buf: d(Tun::UdpRecvBuf),
            udp_max_buf: d(Tun::UdpMaxBuf),
            udp_anon: AtomicU32::new(pack(info_of(Tun::UdpSmallestAnon).default, info_of(Tun::UdpLargestAnon).default)),
            tcp: core::array::from_fn(|i| AtomicU32::new(tcp::TABLE.get(i).map_or(0, |t| t.default))),
            tcp_seq: AtomicU32::new(0),
            writer: Mutex::new(()),
        }
    }

    /// `ttl`.
    pub fn ttl(&self) -> u8 {
        self.ttl.load(Ordering::Relaxed) as u8
    }

    /// `_icmp_err_interval` (ms per token, 0: unlimited) and
    /// `_icmp_err_burst`: the ICMP error rate limit.
    pub fn icmp_err_rate(&self) -> (u64, u32) {
        (u64::from(self.icmp_err_interval.load(Ordering::Relaxed)), self.icmp_err_burst.load(Ordering::Relaxed))
    }

    /// `_lso_outbound`: whether TCP sends large segments (LSO) on links
    /// that segment them.
    pub fn lso_outbound(&self) -> bool {
        self.lso_outbound.load(Ordering::Relaxed) != 0
    }

    /// UDP `send_buf`: the largest datagram a socket may send.
    pub fn udp_send_buf(&self) -> usize {
        self.udp_send_buf.load(Ordering::Relaxed) as usize
    }

    /// UDP `recv_buf`: the receive queue of a new socket, in bytes.
    pub fn udp_recv_buf(&self) -> usize {
        self.udp_recv_buf.load(Ordering::Relaxed) as usize
    }

    /// UDP's anonymous port range, inclusive.
    pub fn udp_anon_ports(&self) -> (u16, u16) {
        let (s, l) = unpack(self.udp_anon.load(Ordering::Relaxed));
        (s as u16, l as u16)
    }

    /// ICMP `send_buf`: the largest echo request payload.
    pub fn icmp_send_buf(&self) -> usize {
        self.icmp_send_buf.load(Ordering::Relaxed) as usize
    }

    /// ICMP `recv_buf`: bytes of echo replies one requester holds.
    pub fn icmp_recv_buf(&self) -> usize {
        self.icmp_recv_buf.load(Ordering::Relaxed) as usize
    }

    /// Every TCP value at one moment, typed (a few dozen atomic loads; no
    /// lock). A change being stored meanwhile makes it read again.
    pub fn tcp(&self) -> TcpTunables {
        let mut v = [0u32; tcp::COUNT];
        for _ in 0..TCP_READ_TRIES {
            let before = self.tcp_seq.load(Ordering::Acquire);
            for (slot, a) in v.iter_mut().zip(self.tcp.iter()) {
                *slot = a.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if before & 1 == 0 && self.tcp_seq.load(Ordering::Relaxed) == before {
                break;
            }
            core::hint::spin_loop();
        }
        // After TCP_READ_TRIES torn reads (a writer preempted mid-store),
        // `from_values` puts the tied values back in order.
        TcpTunables::from_values(&v)
    }

    /// The current value of TCP tunable `t`.
    fn tcp_get(&self, t: TcpTun) -> u32 {
        self.tcp.get(t as usize).map_or(0, |a| a.load(Ordering::Relaxed))
    }

    /// Stores `v` as TCP tunable `t` inside the sequence lock (the caller
    /// holds the writer lock).
    fn tcp_store(&self, t: TcpTun, v: u32) {
        let Some(a) = self.tcp.get(t as usize) else { return };
        self.tcp_seq.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        a.store(v, Ordering::Relaxed);
        self.tcp_seq.fetch_add(1, Ordering::Release);
    }

    /// The current value of `tun` (on/off as 1/0, a name as its index).
    pub fn get(&self, tun: Tun) -> u32 {
        let r = |a: &AtomicU32| a.load(Ordering::Relaxed);
        let sq = &self.squeue;
        match tun {
            Tun::Ttl => r(&self.ttl),
            Tun::Forwarding => 0,
            Tun::IcmpErrInterval => r(&self.icmp_err_interval),
            Tun::IcmpErrBurst => r(&self.icmp_err_burst),
            Tun::LsoOutbound => r(&self.lso_outbound),
            Tun::IcmpSendBuf => r(&self.icmp_send_buf),
            Tun::IcmpRecvBuf => r(&self.icmp_recv_buf),
            Tun::IcmpMaxBuf => r(&self.icmp_max_buf),
            Tun::UdpSendBuf => r(&self.udp_send_buf),
            Tun::UdpRecvBuf => r(&self.udp_recv_buf),
            Tun::UdpMaxBuf => r(&self.udp_max_buf),
            Tun::UdpSmallestAnon => unpack(r(&self.udp_anon)).0,
            Tun::UdpLargestAnon => unpack(r(&self.udp_anon)).1,
            Tun::SqFanout => sq.ip_squeue_fanout(),
            Tun::SqWait => sq.ip_squeue_wait_ms(),
            Tun::SqBind => sq.ip_squeue_bind(),
            Tun::TcpSqWput => sq.tcp_squeue_wput(),
            Tun::Tcp(t) => self.tcp_get(t),
        }
    }

    /// Parses `value` for `tun` (`on`/`off` or 1/0 for on/off
    /// properties, a name or its index for named values) and sets it; a
    /// refusal changes nothing.
    pub fn set_str(&self, tun: Tun, value: &str) -> Result<(), TunError> {
        let v = info_of(tun).possible.parse(value)?;
        self.set(tun, v)
    }

    /// Sets `tun` to `v` after checking its range and the values it is tied
    /// to; a refusal changes nothing.
    pub fn set(&self, tun: Tun, v: u32) -> Result<(), TunError> {
        let info = info_of(tun);
        let (min, max) = info.possible.bounds();
        if v < min || v > max {
            return Err(match info.possible {
                Possible::Enum { names, .. } => TunError::NotOneOf(names),
                _ => TunError::OutOfRange { min, max },
            });
        }
        let _w = self.writer.lock();
        let r = |a: &AtomicU32| a.load(Ordering::Relaxed);
        let w = |a: &AtomicU32, v: u32| a.store(v, Ordering::Relaxed);
        let buf = |a: &AtomicU32, max_buf: &AtomicU32| {
            let m = r(max_buf);
            if v > m {
                return Err(TunError::AboveMaxBuf { max_buf: m });
            }
            w(a, v);
            Ok(())
        };
        let max_buf = |a: &AtomicU32, s: &AtomicU32, rcv: &AtomicU32| {
            let b = r(s).max(r(rcv));
            if v < b {
                return Err(TunError::BelowBuffer { buf: b });
            }
            w(a, v);
            Ok(())
        };
        let sq = &self.squeue;
        // The squeue config checks the same ranges; a mismatch would be a
        // bug in the table above, reported as out of range.
        let sq_err = |_| TunError::OutOfRange { min, max };
        match tun {
            Tun::Ttl => {
                w(&self.ttl, v);
                Ok(())
            }
            Tun::Forwarding if v == 1 => {
                Err(TunError::Unsupported("FireEngine instances do not forward between interfaces yet"))
            }
            Tun::Forwarding => Ok(()),
            Tun::IcmpErrInterval => {
                w(&self.icmp_err_interval, v);
                Ok(())
            }
            Tun::IcmpErrBurst => {
                w(&self.icmp_err_burst, v);
                Ok(())
            }
            Tun::LsoOutbound => {
                w(&self.lso_outbound, v);
                Ok(())
            }
            Tun::IcmpSendBuf => buf(&self.icmp_send_buf, &self.icmp_max_buf),
            Tun::IcmpRecvBuf => buf(&self.icmp_recv_buf, &self.icmp_max_buf),
            Tun::IcmpMaxBuf => max_buf(&self.icmp_max_buf, &self.icmp_send_buf, &self.icmp_recv_buf),
            Tun::UdpSendBuf => buf(&self.udp_send_buf, &self.udp_max_buf),
            Tun::UdpRecvBuf => buf(&self.udp_recv_buf, &self.udp_max_buf),
            Tun::UdpMaxBuf => max_buf(&self.udp_max_buf, &self.udp_send_buf, &self.udp_recv_buf),
            Tun::UdpSmallestAnon | Tun::UdpLargestAnon => {
                let (mut s, mut l) = unpack(r(&self.udp_anon));
                if tun == Tun::UdpSmallestAnon {
                    s = v;
                } else {
                    l = v;
                }
                if s > l {
                    return Err(TunError::AnonRange { smallest: s, largest: l });
                }
                w(&self.udp_anon, pack(s, l));
                Ok(())
            }
            Tun::SqFanout => sq.set_ip_squeue_fanout(v).map_err(sq_err),
            Tun::SqWait => sq.set_ip_squeue_wait_ms(v).map_err(sq_err),
            Tun::SqBind => sq.set_ip_squeue_bind(v).map_err(sq_err),
            Tun::TcpSqWput => sq.set_tcp_squeue_wput(v).map_err(sq_err),
            Tun::Tcp(t) => {
                tcp::check(t, v, |o| self.tcp_get(o))?;
                self.tcp_store(t, v);
                Ok(())
            }
        }
    }

    /// Puts `tun` back to its default (tied values permitting).
    pub fn reset(&self, tun: Tun) -> Result<(), TunError> {
        self.set(tun, info_of(tun).default)
    }
}

/// A value as `ipadm` prints it (`on`/`off` for on/off properties, the
/// name for named values).
pub struct Shown(pub Possible, pub u32);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Possible::OnOff => f.write_str(if self.1 != 0 { "on" } else { "off" }),
            Possible::Range(..) => write!(f, "{}", self.1),
            Possible::Enum { names, .. } => match names.get(self.1 as usize) {
                Some(n) => f.write_str(n),
                None => write!(f, "{}", self.1),
            },
        }
    }
}

/// A value as `ndd` prints it: a number, except the name of a named value
/// that is not `ndd_numeric`.
pub struct NddShown(pub Possible, pub u32);

impl fmt::Display for NddShown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Possible::Enum { ndd_numeric: false, .. } => Shown(self.0, self.1).fmt(f),
            _ => write!(f, "{}", self.1),
        }
    }
}

impl fmt::Display for Possible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Possible::OnOff => f.write_str("on,off"),
            Possible::Range(lo, hi) => write!(f, "{lo}-{hi}"),
            Possible::Enum { names, .. } => write_names(f, names),
        }
    }
}

/// `a,b,c`.
fn write_names(f: &mut fmt::Formatter<'_>, names: &[&str]) -> fmt::Result {
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        f.write_str(n)?;
    }
    Ok(())
}

fn pack(smallest: u32, largest: u32) -> u32 {
    (smallest << 16) | (largest & 0xffff)
}

fn unpack(v: u32) -> (u32, u32) {
    (v >> 16, v & 0xffff)
}

/// A decimal `u32` with no sign, spaces or other characters.
fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
