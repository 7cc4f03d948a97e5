//! FireEngine's TCP tunables: the `tcp` protocol properties of `ipadm`
//! and the variables of `ndd /dev/tcp`, with illumos' names, defaults and
//! ranges (`usr/src/uts/common/inet/tcp/tcp_tunables.c`,
//! `tcp_propinfo_tbl`), the rules that tie some of them together, and the
//! typed snapshot ([`TcpTunables`]) the TCP code reads in one call.
//!
//! Units are illumos': every interval is in milliseconds, buffers in
//! bytes, rates per second. Where a value differs from what the brief of
//! this table suggested, the illumos source won:
//!
//! * `send_buf` is 49152 (`TCP_XMIT_HIWATER` in illumos' `tcp_impl.h`),
//!   not 128000 — that is `recv_buf` (`TCP_RECV_HIWATER`);
//! * `_fin_wait_2_flush_interval` is 60 s (60000 ms), as both the source
//!   and `FIREENGINE.md` say.
//!
//! Ours, not illumos': `congestion_control` offers `newreno` and `cubic`
//! and defaults to `cubic` (illumos has `sunreno` first); `_syn_cookies`,
//! `_challenge_ack_limit` (RFC 5961 challenge ACKs per second, Linux's
//! default 1000) and `_conn_max` (connections per instance) are new;
//! `_do_fusion` and `_fusion_rcv_unread_min` are illumos' global
//! `do_tcp_fusion` and `tcp_fusion_rcv_unread_min` made tunables. `ecn` is
//! kept with illumos' default (`passive`), but FireEngine does not do ECN
//! yet: the value is stored and shown, nothing reads it.
//!
//! Tied values, each refused with a reason and nothing changed:
//! `send_buf`, `recv_buf` ≤ `max_buf` (illumos' `mod_set_buf_prop`);
//! `smallest_anon_port` ≤ `largest_anon_port` (illumos'
//! `tcp_smallest_anon_set`/`tcp_largest_anon_set`); and ours:
//! `smallest_nonpriv_port` ≤ `smallest_anon_port`,
//! `_rexmit_interval_min` ≤ `_rexmit_interval_max`, `_mss_min` ≤
//! `_mss_def_ipv4` ≤ `_mss_max_ipv4`, `_conn_req_min` ≤ `_conn_req_max_q`.
//! `_rexmit_interval_initial` is not tied: the TCP code clamps the first
//! RTO into `[min, max]`, as illumos does.

use super::Possible::{Enum, OnOff, Range};
use super::{NddDev, Proto, Tun, TunError, TunInfo, info};

/// Every TCP tunable. The discriminant is the tunable's slot in
/// [`TABLE`] and in the live values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpTun {
    /// `send_buf`: the send buffer of a new connection, bytes.
    SendBuf,
    /// `recv_buf`: the receive buffer (window) of a new connection, bytes.
    RecvBuf,
    /// `max_buf`: the largest `send_buf`/`recv_buf` (and socket buffer).
    MaxBuf,
    /// `sack`: SACK permitted never, when asked (passive), or always asked.
    Sack,
    /// `ecn`: ECN never, when asked, or always asked (not implemented).
    Ecn,
    /// `smallest_anon_port`: first port of the ephemeral range.
    SmallestAnon,
    /// `largest_anon_port`: last port of the ephemeral range.
    LargestAnon,
    /// `smallest_nonpriv_port`: the first port an unprivileged bind takes.
    SmallestNonpriv,
    /// `congestion_control`: the algorithm of new connections.
    CongestionControl,
    /// `_time_wait_interval`, ms.
    TimeWaitInterval,
    /// `_fin_wait_2_flush_interval`, ms.
    FinWait2FlushInterval,
    /// `_rexmit_interval_initial`: the first RTO, ms.
    RexmitInitial,
    /// `_rexmit_interval_min`: the smallest RTO, ms.
    RexmitMin,
    /// `_rexmit_interval_max`: the largest RTO, ms.
    RexmitMax,
    /// `_dupack_fast_retransmit`: duplicate ACKs that start a fast
    /// retransmit.
    DupackFastRetransmit,
    /// `_deferred_ack_interval`: the delayed-ACK timer, ms.
    DeferredAckInterval,
    /// `_deferred_acks_max`: segments received before an ACK is forced.
    DeferredAcksMax,
    /// `_local_dack_interval`: the delayed-ACK timer on-link, ms.
    LocalDackInterval,
    /// `_local_dacks_max`: `_deferred_acks_max` on-link.
    LocalDacksMax,
    /// `_naglim_def`: the Nagle limit of a new connection, bytes.
    NaglimDef,
    /// `_mss_def_ipv4`: the MSS when the peer announces none.
    MssDefIpv4,
    /// `_mss_min`: the smallest MSS used.
    MssMin,
    /// `_mss_max_ipv4`: the largest MSS used.
    MssMaxIpv4,
    /// `_wscale_always`: ask for window scaling on every active open.
    WscaleAlways,
    /// `_tstamp_if_wscale`: ask for timestamps with window scaling.
    TstampIfWscale,
    /// `_tstamp_always`: ask for timestamps on every active open.
    TstampAlways,
    /// `_keepalive_interval`: idle time before the first probe, ms.
    KeepaliveInterval,
    /// `_keepalive_abort_interval`: unanswered probing before the
    /// connection is dropped, ms.
    KeepaliveAbortInterval,
    /// `_ip_abort_interval`: retransmitting before an established
    /// connection is dropped, ms.
    IpAbortInterval,
    /// `_ip_abort_cinterval`: retransmitting a SYN before giving up, ms.
    IpAbortCinterval,
    /// `_conn_req_max_q`: the largest accept queue (`listen` backlog).
    ConnReqMaxQ,
    /// `_conn_req_max_q0`: the largest half-open (SYN_RCVD) queue.
    ConnReqMaxQ0,
    /// `_conn_req_min`: the smallest accept queue.
    ConnReqMin,
    /// `_cwnd_max`: the largest congestion window, bytes.
    CwndMax,
    /// `_rst_sent_rate`: RSTs sent per second at most.
    RstSentRate,
    /// `_rst_sent_rate_enabled`: whether `_rst_sent_rate` applies.
    RstSentRateEnabled,
    /// `_syn_cookies` (ours): answer with SYN cookies when q0 is full.
    SynCookies,
    /// `_challenge_ack_limit` (ours): RFC 5961 challenge ACKs per second.
    ChallengeAckLimit,
    /// `_conn_max` (ours): TCP connections per instance.
    ConnMax,
    /// `_do_fusion` (`ndd` `do_tcp_fusion`): fuse loopback connections.
    DoFusion,
    /// `_fusion_rcv_unread_min`: unread blocks at which a fused sender
    /// stops (0: no block limit).
    FusionRcvUnreadMin,
}

/// How many TCP tunables there are.
pub const COUNT: usize = 41;

/// `sack` and `ecn`: `never`, `passive` (only when the peer asks),
/// `active` (ask, and accept) — illumos' 0, 1, 2.
pub const OPT_MODES: &[&str] = &["never", "passive", "active"];
/// `congestion_control`'s values, in the order they are stored.
pub const CC_NAMES: &[&str] = &["newreno", "cubic"];

/// `send_buf` default: illumos' `TCP_XMIT_HIWATER`.
pub const SEND_BUF_DEFAULT: u32 = 49_152;
/// `recv_buf` default: illumos' `TCP_RECV_HIWATER`.
pub const RECV_BUF_DEFAULT: u32 = 128_000;
/// `max_buf` default.
pub const MAX_BUF_DEFAULT: u32 = 1 << 20;
/// illumos' `ULP_MAX_BUF`: the largest buffer-like value.
pub const ULP_MAX_BUF: u32 = 1 << 30;
/// illumos' `TCP_MSS_MAX_IPV4`: 65535 − 20 − 20.
pub const MSS_MAX_IPV4: u32 = 65_495;

const fn opt(
    t: TcpTun,
    name: &'static str,
    ndd: &'static str,
    possible: super::Possible,
    default: u32,
    description: &'static str,
) -> TunInfo {
    info(Tun::Tcp(t), Some((Proto::Tcp, name)), (NddDev::Tcp, ndd), possible, default, description)
}

const MS: u32 = 1;
const SECONDS: u32 = 1000 * MS;
const MINUTES: u32 = 60 * SECONDS;
const HOURS: u32 = 60 * MINUTES;
const DAYS: u32 = 24 * HOURS;
const OPT_ENUM: super::Possible = Enum { names: OPT_MODES, ndd_numeric: true };

/// Every TCP tunable, in [`TcpTun`] order (checked at compile time).
pub const TABLE: [TunInfo; COUNT] = {
    use TcpTun as T;
    [
        opt(T::SendBuf, "send_buf", "tcp_xmit_hiwat", Range(4096, ULP_MAX_BUF), SEND_BUF_DEFAULT, "send buffer of a new connection"),
        opt(T::RecvBuf, "recv_buf", "tcp_recv_hiwat", Range(2048, ULP_MAX_BUF), RECV_BUF_DEFAULT, "receive window of a new connection"),
        opt(T::MaxBuf, "max_buf", "tcp_max_buf", Range(8192, ULP_MAX_BUF), MAX_BUF_DEFAULT, "upper bound of send_buf and recv_buf"),
        opt(T::Sack, "sack", "tcp_sack_permitted", OPT_ENUM, 2, "SACK: 0 never, 1 when asked, 2 ask and accept"),
        opt(T::Ecn, "ecn", "tcp_ecn_permitted", OPT_ENUM, 1, "ECN: 0 never, 1 when asked, 2 ask (not implemented yet)"),
        opt(T::SmallestAnon, "smallest_anon_port", "tcp_smallest_anon_port", Range(1024, 65_535), 32_768, "first port of the anonymous range"),
        opt(T::LargestAnon, "largest_anon_port", "tcp_largest_anon_port", Range(1024, 65_535), 65_535, "last port of the anonymous range"),
        opt(T::SmallestNonpriv, "smallest_nonpriv_port", "tcp_smallest_nonpriv_port", Range(1024, 32 * 1024), 1024, "first port an unprivileged bind may take"),
        opt(T::CongestionControl, "congestion_control", "tcp_congestion_control", Enum { names: CC_NAMES, ndd_numeric: false }, 1, "congestion control of new connections"),
        opt(T::TimeWaitInterval, "_time_wait_interval", "tcp_time_wait_interval", Range(SECONDS, 10 * MINUTES), MINUTES, "ms a connection stays in TIME_WAIT"),
        opt(T::FinWait2FlushInterval, "_fin_wait_2_flush_interval", "tcp_fin_wait_2_flush_interval", Range(SECONDS, 2 * HOURS), 60 * SECONDS, "ms an orphaned FIN_WAIT_2 connection is kept"),
        opt(T::RexmitInitial, "_rexmit_interval_initial", "tcp_rexmit_interval_initial", Range(MS, 20 * SECONDS), SECONDS, "first retransmission timeout, ms"),
        opt(T::RexmitMin, "_rexmit_interval_min", "tcp_rexmit_interval_min", Range(MS, 2 * HOURS), 400 * MS, "smallest retransmission timeout, ms"),
        opt(T::RexmitMax, "_rexmit_interval_max", "tcp_rexmit_interval_max", Range(MS, 2 * HOURS), 60 * SECONDS, "largest retransmission timeout, ms"),
        opt(T::DupackFastRetransmit, "_dupack_fast_retransmit", "tcp_dupack_fast_retransmit", Range(1, 10_000), 3, "duplicate ACKs that trigger a fast retransmit"),
        opt(T::DeferredAckInterval, "_deferred_ack_interval", "tcp_deferred_ack_interval", Range(MS, MINUTES), 100 * MS, "delayed ACK timer, ms"),
        opt(T::DeferredAcksMax, "_deferred_acks_max", "tcp_deferred_acks_max", Range(0, 16), 2, "segments received before an ACK is sent at once"),
        opt(T::LocalDackInterval, "_local_dack_interval", "tcp_local_dack_interval", Range(10 * MS, 500 * MS), 50 * MS, "delayed ACK timer for on-link peers, ms"),
        opt(T::LocalDacksMax, "_local_dacks_max", "tcp_local_dacks_max", Range(0, 16), 8, "deferred ACKs for on-link peers"),
        opt(T::NaglimDef, "_naglim_def", "tcp_naglim_def", Range(1, 65_535), 4095, "Nagle limit of a new connection, bytes"),
        opt(T::MssDefIpv4, "_mss_def_ipv4", "tcp_mss_def_ipv4", Range(1, MSS_MAX_IPV4), 536, "MSS when the peer announces none"),
        opt(T::MssMin, "_mss_min", "tcp_mss_min", Range(1, MSS_MAX_IPV4), 108, "smallest MSS used"),
        opt(T::MssMaxIpv4, "_mss_max_ipv4", "tcp_mss_max_ipv4", Range(1, MSS_MAX_IPV4), MSS_MAX_IPV4, "largest MSS used"),
        opt(T::WscaleAlways, "_wscale_always", "tcp_wscale_always", OnOff, 1, "ask for window scaling on every active open"),
        opt(T::TstampIfWscale, "_tstamp_if_wscale", "tcp_tstamp_if_wscale", OnOff, 1, "ask for timestamps along with window scaling"),
        opt(T::TstampAlways, "_tstamp_always", "tcp_tstamp_always", OnOff, 0, "ask for timestamps on every active open"),
        opt(T::KeepaliveInterval, "_keepalive_interval", "tcp_keepalive_interval", Range(SECONDS, 10 * DAYS), 2 * HOURS, "idle ms before the first keepalive probe"),
        opt(T::KeepaliveAbortInterval, "_keepalive_abort_interval", "tcp_keepalive_abort_interval", Range(0, u32::MAX), 8 * MINUTES, "ms of unanswered probes before the connection is dropped"),
        opt(T::IpAbortInterval, "_ip_abort_interval", "tcp_ip_abort_interval", Range(500 * MS, u32::MAX), 5 * MINUTES, "ms of retransmission before a connection is dropped"),
        opt(T::IpAbortCinterval, "_ip_abort_cinterval", "tcp_ip_abort_cinterval", Range(SECONDS, u32::MAX), 3 * MINUTES, "ms of SYN retransmission before a connect fails"),
        opt(T::ConnReqMaxQ, "_conn_req_max_q", "tcp_conn_req_max_q", Range(1, u32::MAX), 128, "largest accept queue of a listener"),
        opt(T::ConnReqMaxQ0, "_conn_req_max_q0", "tcp_conn_req_max_q0", Range(0, u32::MAX), 1024, "largest half-open queue of a listener"),
        opt(T::ConnReqMin, "_conn_req_min", "tcp_conn_req_min", Range(1, 1024), 1, "smallest accept queue of a listener"),
        opt(T::CwndMax, "_cwnd_max", "tcp_cwnd_max", Range(128, ULP_MAX_BUF), 1 << 20, "largest congestion window, bytes"),
        opt(T::RstSentRate, "_rst_sent_rate", "tcp_rst_sent_rate", Range(0, u32::MAX), 40, "RSTs sent per second at most"),
        opt(T::RstSentRateEnabled, "_rst_sent_rate_enabled", "tcp_rst_sent_rate_enabled", OnOff, 1, "limit the RSTs sent to _rst_sent_rate"),
        opt(T::SynCookies, "_syn_cookies", "tcp_syn_cookies", OnOff, 1, "answer with SYN cookies when the half-open queue is full"),
        opt(T::ChallengeAckLimit, "_challenge_ack_limit", "tcp_challenge_ack_limit", Range(1, 1_000_000), 1000, "RFC 5961 challenge ACKs sent per second at most"),
        opt(T::ConnMax, "_conn_max", "tcp_conn_max", Range(1, 1 << 20), 16_384, "TCP connections per instance"),
        opt(T::DoFusion, "_do_fusion", "do_tcp_fusion", OnOff, 1, "fuse TCP connections between local endpoints"),
        opt(T::FusionRcvUnreadMin, "_fusion_rcv_unread_min", "tcp_fusion_rcv_unread_min", Range(0, 65_535), 8, "unread blocks that stop a fused sender (0: no limit)"),
    ]
};

// Slot i of TABLE is the tunable whose discriminant is i.
const _: () = {
    let mut i = 0;
    while i < COUNT {
        match TABLE[i].tun {
            Tun::Tcp(t) => assert!(t as usize == i, "tunables::tcp::TABLE is out of TcpTun order"),
            _ => panic!("tunables::tcp::TABLE holds a non-TCP tunable"),
        }
        i += 1;
    }
};

/// The ipadm name of `t`, for messages.
fn name(t: TcpTun) -> &'static str {
    match TABLE.get(t as usize).and_then(|i| i.prop) {
        Some((_, n)) => n,
        None => "?",
    }
}

/// `low` must not exceed `high`.
fn order(low: TcpTun, low_value: u32, high: TcpTun, high_value: u32) -> Result<(), TunError> {
    if low_value > high_value {
        return Err(TunError::Order { low: name(low), low_value, high: name(high), high_value });
    }
    Ok(())
}

/// Checks that `t` may become `v` given the current values (`cur`): the
/// tied values of the module doc. The range is checked by the caller.
pub(super) fn check(t: TcpTun, v: u32, cur: impl Fn(TcpTun) -> u32) -> Result<(), TunError> {
    use TcpTun as T;
    match t {
        T::SendBuf | T::RecvBuf => {
            let m = cur(T::MaxBuf);
            if v > m {
                return Err(TunError::AboveMaxBuf { max_buf: m });
            }
            Ok(())
        }
        T::MaxBuf => {
            let b = cur(T::SendBuf).max(cur(T::RecvBuf));
            if v < b {
                return Err(TunError::BelowBuffer { buf: b });
            }
            Ok(())
        }
        T::SmallestAnon => {
            let l = cur(T::LargestAnon);
            if v > l {
                return Err(TunError::AnonRange { smallest: v, largest: l });
            }
            order(T::SmallestNonpriv, cur(T::SmallestNonpriv), T::SmallestAnon, v)
        }
        T::LargestAnon => {
            let s = cur(T::SmallestAnon);
            if s > v {
                return Err(TunError::AnonRange { smallest: s, largest: v });
            }
            Ok(())
        }
        T::SmallestNonpriv => order(T::SmallestNonpriv, v, T::SmallestAnon, cur(T::SmallestAnon)),
        T::RexmitMin => order(T::RexmitMin, v, T::RexmitMax, cur(T::RexmitMax)),
        T::RexmitMax => order(T::RexmitMin, cur(T::RexmitMin), T::RexmitMax, v),
        T::MssMin => order(T::MssMin, v, T::MssDefIpv4, cur(T::MssDefIpv4)),
        T::MssDefIpv4 => {
            order(T::MssMin, cur(T::MssMin), T::MssDefIpv4, v)?;
            order(T::MssDefIpv4, v, T::MssMaxIpv4, cur(T::MssMaxIpv4))
        }
        T::MssMaxIpv4 => order(T::MssDefIpv4, cur(T::MssDefIpv4), T::MssMaxIpv4, v),
        T::ConnReqMin => order(T::ConnReqMin, v, T::ConnReqMaxQ, cur(T::ConnReqMaxQ)),
        T::ConnReqMaxQ => order(T::ConnReqMin, cur(T::ConnReqMin), T::ConnReqMaxQ, v),
        _ => Ok(()),
    }
}

/// `congestion_control`: the algorithm a new connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpCc {
    /// RFC 5681 slow start and congestion avoidance, RFC 6582 NewReno
    /// recovery.
    NewReno,
    /// RFC 9438 CUBIC (the default).
    Cubic,
}

impl TcpCc {
    /// The value stored for `congestion_control` (its index in
    /// [`CC_NAMES`]); anything unknown is the default, CUBIC.
    pub fn from_index(v: u32) -> TcpCc {
        if v == 0 { TcpCc::NewReno } else { TcpCc::Cubic }
    }

    /// The name `ipadm` shows.
    pub fn name(self) -> &'static str {
        match self {
            TcpCc::NewReno => "newreno",
            TcpCc::Cubic => "cubic",
        }
    }
}

/// `sack` and `ecn`: whether an option is used (illumos' 0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpOptMode {
    /// Never: not offered, and refused when the peer offers it.
    Never,
    /// Passive: used when the peer offers it, never offered first.
    Passive,
    /// Active: offered on active opens, and accepted.
    Active,
}

/// `sack`'s mode.
pub type TcpSackMode = TcpOptMode;
/// `ecn`'s mode.
pub type TcpEcnMode = TcpOptMode;

impl TcpOptMode {
    /// The mode for a stored value (0, 1, 2; anything larger is `Active`).
    pub fn from_index(v: u32) -> TcpOptMode {
        match v {
            0 => TcpOptMode::Never,
            1 => TcpOptMode::Passive,
            _ => TcpOptMode::Active,
        }
    }

    /// Whether to accept the option when the peer offers it.
    pub fn accepts(self) -> bool {
        self != TcpOptMode::Never
    }

    /// Whether to offer the option on an active open.
    pub fn offers(self) -> bool {
        self == TcpOptMode::Active
    }
}

/// Every TCP tunable at one moment, typed, in the units the TCP code
/// works in (intervals in ms as `u64`). Tied values hold their rules
/// (see the module doc): a snapshot never shows half of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpTunables {
    /// `send_buf`, bytes.
    pub send_buf: u32,
    /// `recv_buf`, bytes.
    pub recv_buf: u32,
    /// `max_buf`, bytes.
    pub max_buf: u32,
    /// `sack`.
    pub sack: TcpSackMode,
    /// `ecn` (not implemented: the TCP code may ignore it).
    pub ecn: TcpEcnMode,
    /// `smallest_anon_port`.
    pub smallest_anon_port: u16,
    /// `largest_anon_port` (≥ `smallest_anon_port`).
    pub largest_anon_port: u16,
    /// `smallest_nonpriv_port` (≤ `smallest_anon_port`).
    pub smallest_nonpriv_port: u16,
    /// `congestion_control`.
    pub congestion_control: TcpCc,
    /// `_time_wait_interval`.
    pub time_wait_interval_ms: u64,
    /// `_fin_wait_2_flush_interval`.
    pub fin_wait_2_flush_interval_ms: u64,
    /// `_rexmit_interval_initial`.
    pub rexmit_initial_ms: u64,
    /// `_rexmit_interval_min` (≤ `rexmit_max_ms`).
    pub rexmit_min_ms: u64,
    /// `_rexmit_interval_max`.
    pub rexmit_max_ms: u64,
    /// `_dupack_fast_retransmit`.
    pub dupack_fast_retransmit: u32,
    /// `_deferred_ack_interval`.
    pub deferred_ack_interval_ms: u64,
    /// `_deferred_acks_max`.
    pub deferred_acks_max: u32,
    /// `_local_dack_interval`.
    pub local_dack_interval_ms: u64,
    /// `_local_dacks_max`.
    pub local_dacks_max: u32,
    /// `_naglim_def`, bytes.
    pub naglim_def: u32,
    /// `_mss_def_ipv4` (between `mss_min` and `mss_max_ipv4`).
    pub mss_def_ipv4: u32,
    /// `_mss_min`.
    pub mss_min: u32,
    /// `_mss_max_ipv4`.
    pub mss_max_ipv4: u32,
    /// `_wscale_always`.
    pub wscale_always: bool,
    /// `_tstamp_if_wscale`.
    pub tstamp_if_wscale: bool,
    /// `_tstamp_always`.
    pub tstamp_always: bool,
    /// `_keepalive_interval`.
    pub keepalive_interval_ms: u64,
    /// `_keepalive_abort_interval`.
    pub keepalive_abort_interval_ms: u64,
    /// `_ip_abort_interval`.
    pub ip_abort_interval_ms: u64,
    /// `_ip_abort_cinterval`.
    pub ip_abort_cinterval_ms: u64,
    /// `_conn_req_max_q`.
    pub conn_req_max_q: u32,
    /// `_conn_req_max_q0`.
    pub conn_req_max_q0: u32,
    /// `_conn_req_min` (≤ `conn_req_max_q`).
    pub conn_req_min: u32,
    /// `_cwnd_max`, bytes.
    pub cwnd_max: u32,
    /// `_rst_sent_rate`, per second.
    pub rst_sent_rate: u32,
    /// `_rst_sent_rate_enabled`.
    pub rst_sent_rate_enabled: bool,
    /// `_syn_cookies`.
    pub syn_cookies: bool,
    /// `_challenge_ack_limit`, per second.
    pub challenge_ack_limit: u32,
    /// `_conn_max`.
    pub conn_max: u32,
    /// `_do_fusion` (`do_tcp_fusion`).
    pub do_fusion: bool,
    /// `_fusion_rcv_unread_min`.
    pub fusion_rcv_unread_min: u32,
}

impl TcpTunables {
    /// The snapshot of the values `v` (indexed by [`TcpTun`]), with the
    /// tied values put back in order should `v` break them (it does not
    /// when it was read consistently; see [`super::Tunables::tcp`]).
    pub(super) fn from_values(v: &[u32; COUNT]) -> TcpTunables {
        use TcpTun as T;
        let g = |t: T| v.get(t as usize).copied().unwrap_or(0);
        let ms = |t: T| u64::from(g(t));
        let on = |t: T| g(t) != 0;
        let port = |t: T| u16::try_from(g(t)).unwrap_or(u16::MAX);
        let max_buf = g(T::MaxBuf);
        let largest_anon_port = port(T::LargestAnon);
        let smallest_anon_port = port(T::SmallestAnon).min(largest_anon_port);
        let rexmit_max_ms = ms(T::RexmitMax);
        let mss_max_ipv4 = g(T::MssMaxIpv4);
        let mss_min = g(T::MssMin).min(mss_max_ipv4);
        let conn_req_max_q = g(T::ConnReqMaxQ);
        TcpTunables {
            send_buf: g(T::SendBuf).min(max_buf),
            recv_buf: g(T::RecvBuf).min(max_buf),
            max_buf,
            sack: TcpOptMode::from_index(g(T::Sack)),
            ecn: TcpOptMode::from_index(g(T::Ecn)),
            smallest_anon_port,
            largest_anon_port,
            smallest_nonpriv_port: port(T::SmallestNonpriv).min(smallest_anon_port),
            congestion_control: TcpCc::from_index(g(T::CongestionControl)),
            time_wait_interval_ms: ms(T::TimeWaitInterval),
            fin_wait_2_flush_interval_ms: ms(T::FinWait2FlushInterval),
            rexmit_initial_ms: ms(T::RexmitInitial),
            rexmit_min_ms: ms(T::RexmitMin).min(rexmit_max_ms),
            rexmit_max_ms,
            dupack_fast_retransmit: g(T::DupackFastRetransmit),
            deferred_ack_interval_ms: ms(T::DeferredAckInterval),
            deferred_acks_max: g(T::DeferredAcksMax),
            local_dack_interval_ms: ms(T::LocalDackInterval),
            local_dacks_max: g(T::LocalDacksMax),
            naglim_def: g(T::NaglimDef),
            mss_def_ipv4: g(T::MssDefIpv4).clamp(mss_min, mss_max_ipv4),
            mss_min,
            mss_max_ipv4,
            wscale_always: on(T::WscaleAlways),
            tstamp_if_wscale: on(T::TstampIfWscale),
            tstamp_always: on(T::TstampAlways),
            keepalive_interval_ms: ms(T::KeepaliveInterval),
            keepalive_abort_interval_ms: ms(T::KeepaliveAbortInterval),
            ip_abort_interval_ms: ms(T::IpAbortInterval),
            ip_abort_cinterval_ms: ms(T::IpAbortCinterval),
            conn_req_max_q,
            conn_req_max_q0: g(T::ConnReqMaxQ0),
            conn_req_min: g(T::ConnReqMin).min(conn_req_max_q),
            cwnd_max: g(T::CwndMax),
            rst_sent_rate: g(T::RstSentRate),
            rst_sent_rate_enabled: on(T::RstSentRateEnabled),
            syn_cookies: on(T::SynCookies),
            challenge_ack_limit: g(T::ChallengeAckLimit),
            conn_max: g(T::ConnMax),
            do_fusion: on(T::DoFusion),
            fusion_rcv_unread_min: g(T::FusionRcvUnreadMin),
        }
    }
}

impl Default for TcpTunables {
    /// Every value at its default.
    fn default() -> TcpTunables {
        let mut v = [0u32; COUNT];
        for (slot, i) in v.iter_mut().zip(TABLE.iter()) {
            *slot = i.default;
        }
        TcpTunables::from_values(&v)
    }
}
