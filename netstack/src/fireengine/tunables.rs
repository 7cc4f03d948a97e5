//! FireEngine's tunables: the protocol properties that `ipadm
//! show-prop`/`set-prop`/`reset-prop` read and change (illumos'
//! `ipadm(8)` property table: `ttl` and `forwarding` of `ipv4`,
//! `send_buf`, `recv_buf`, `max_buf` of `icmp` and `udp`, and UDP's
//! anonymous port range), and the `ndd` variables of `/dev/ip`,
//! `/dev/icmp`, `/dev/udp` and `/dev/tcp` — the same values under their
//! `ndd` names plus the squeue tunables (`ip_squeue_fanout`,
//! `ip_squeue_wait`, `ip_squeue_bind`, `tcp_squeue_wput`, kept in the
//! squeue room's [`SqConfig`]).
//!
//! One [`Tunables`] belongs to the FireEngine system and is shared by
//! every FireEngine instance (illumos keeps one per netstack, that is per
//! zone; our instances are the interfaces of one host). Readers take no
//! lock; a change is validated against its range *and* the properties it
//! is tied to (`send_buf`/`recv_buf` ≤ `max_buf`, `smallest_anon_port` ≤
//! `largest_anon_port`) under one writer lock, and a refused change
//! changes nothing. Where each value acts:
//!
//! * `ttl`: every datagram FireEngine sends (and `ipDefaultTTL`);
//! * `_icmp_err_interval`, `_icmp_err_burst`: the ICMP error rate
//!   limit of every instance (illumos' private `ip` properties);
//! * `forwarding`: `off` only — FireEngine instances are hosts; `on` is
//!   refused until the virtual router forwards between interfaces;
//! * `udp` `recv_buf`: the receive queue of each socket opened after the
//!   change (illumos: the socket's `SO_RCVBUF` default); `send_buf`: the
//!   largest datagram a socket may send (EMSGSIZE beyond);
//! * `udp` anonymous ports: the range a bind to port 0 picks from;
//! * `icmp` `recv_buf`: the echo replies a `ping` requester may hold, in
//!   bytes; `send_buf`: the largest echo request `ping -s` may send.

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use arbalest_mac::sync::Mutex;

use super::squeue::SqConfig;

/// A protocol as `ipadm` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// `ipv4` (also reached as `ip`).
    Ipv4,
    /// `icmp`.
    Icmp,
    /// `udp`.
    Udp,
}

impl Proto {
    /// Every protocol, in the order `ipadm show-prop` lists them.
    pub const ALL: [Proto; 3] = [Proto::Ipv4, Proto::Icmp, Proto::Udp];

    /// The name `ipadm` prints in its `PROTO` column.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Ipv4 => "ipv4",
            Proto::Icmp => "icmp",
            Proto::Udp => "udp",
        }
    }

    /// The protocol a user typed (`ip` is IPv4: there is no IPv6 yet).
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "ip" | "ipv4" => Some(Proto::Ipv4),
            "icmp" => Some(Proto::Icmp),
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
}

/// Every tunable, one name for each place it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tun {
    Ttl,
    Forwarding,
    IcmpErrInterval,
    IcmpErrBurst,
    IcmpSendBuf,
    IcmpRecvBuf,
    IcmpMaxBuf,
    UdpSendBuf,
    UdpRecvBuf,
    UdpMaxBuf,
    UdpSmallestAnon,
    UdpLargestAnon,
    SqFanout,
    SqWait,
    SqBind,
    TcpSqWput,
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

/// Every tunable, in listing order.
pub const ALL: &[TunInfo] = &[
    info(Tun::Forwarding, Some((Proto::Ipv4, "forwarding")), (NddDev::Ip, "ip_forwarding"), OnOff, 0, "forward between interfaces (off: FireEngine instances are hosts)"),
    info(Tun::Ttl, Some((Proto::Ipv4, "ttl")), (NddDev::Ip, "ip_def_ttl"), Range(1, 255), 255, "TTL of datagrams sent"),
    info(Tun::IcmpErrInterval, Some((Proto::Ipv4, "_icmp_err_interval")), (NddDev::Ip, "ip_icmp_err_interval"), Range(0, 99_999), super::icmp::ICMP_ERR_INTERVAL_MS as u32, "ms per ICMP error token (0: no limit)"),
    info(Tun::IcmpErrBurst, Some((Proto::Ipv4, "_icmp_err_burst")), (NddDev::Ip, "ip_icmp_err_burst"), Range(1, 99_999), super::icmp::ICMP_ERR_BURST, "ICMP errors sent back to back"),
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
    icmp_send_buf: AtomicU32,
    icmp_recv_buf: AtomicU32,
    icmp_max_buf: AtomicU32,
    udp_send_buf: AtomicU32,
    udp_recv_buf: AtomicU32,
    udp_max_buf: AtomicU32,
    /// `smallest << 16 | largest`, so that a reader sees a consistent pair.
    udp_anon: AtomicU32,
    /// Serializes changes (checks of tied values, then the store).
    writer: Mutex<()>,
}

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
            icmp_send_buf: d(Tun::IcmpSendBuf),
            icmp_recv_buf: d(Tun::IcmpRecvBuf),
            icmp_max_buf: d(Tun::IcmpMaxBuf),
            udp_send_buf: d(Tun::UdpSendBuf),
            udp_recv_buf: d(Tun::UdpRecvBuf),
            udp_max_buf: d(Tun::UdpMaxBuf),
            udp_anon: AtomicU32::new(pack(info_of(Tun::UdpSmallestAnon).default, info_of(Tun::UdpLargestAnon).default)),
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

    /// The current value of `tun` (on/off as 1/0).
    pub fn get(&self, tun: Tun) -> u32 {
        let r = |a: &AtomicU32| a.load(Ordering::Relaxed);
        let sq = &self.squeue;
        match tun {
            Tun::Ttl => r(&self.ttl),
            Tun::Forwarding => 0,
            Tun::IcmpErrInterval => r(&self.icmp_err_interval),
            Tun::IcmpErrBurst => r(&self.icmp_err_burst),
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
        }
    }

    /// Parses `value` for `tun` (`on`/`off` for on/off properties; ndd
    /// also takes 1/0) and sets it; a refusal changes nothing.
    pub fn set_str(&self, tun: Tun, value: &str) -> Result<(), TunError> {
        let v = match info_of(tun).possible {
            Possible::OnOff => match value {
                "on" | "1" => 1,
                "off" | "0" => 0,
                _ => return Err(TunError::NotAValue),
            },
            Possible::Range(..) => parse_u32(value).ok_or(TunError::NotAValue)?,
        };
        self.set(tun, v)
    }

    /// Sets `tun` to `v` after checking its range and the values it is tied
    /// to; a refusal changes nothing.
    pub fn set(&self, tun: Tun, v: u32) -> Result<(), TunError> {
        let info = info_of(tun);
        let (min, max) = match info.possible {
            Possible::Range(lo, hi) => (lo, hi),
            Possible::OnOff => (0, 1),
        };
        if v < min || v > max {
            return Err(TunError::OutOfRange { min, max });
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
        }
    }

    /// Puts `tun` back to its default (tied values permitting).
    pub fn reset(&self, tun: Tun) -> Result<(), TunError> {
        self.set(tun, info_of(tun).default)
    }
}

/// A value as `ipadm` prints it (`on`/`off` for on/off properties).
pub struct Shown(pub Possible, pub u32);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Possible::OnOff => f.write_str(if self.1 != 0 { "on" } else { "off" }),
            Possible::Range(..) => write!(f, "{}", self.1),
        }
    }
}

impl fmt::Display for Possible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Possible::OnOff => f.write_str("on,off"),
            Possible::Range(lo, hi) => write!(f, "{lo}-{hi}"),
        }
    }
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
