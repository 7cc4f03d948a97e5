//! What one connection is configured with when it is made: the TCP
//! tunables of its instance (`ipadm show-prop tcp`, `ndd /dev/tcp`, with
//! illumos' defaults, `FIREENGINE.md` section 5) and the socket's own
//! options (`TCP_NODELAY`, `SO_KEEPALIVE`, buffer sizes).

use super::cc::CcAlgo;
use super::rto::RtoConfig;
use crate::fireengine::tcp_conn::rcv_reass::RcvReassConfig;

/// A connection's configuration (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbConfig {
    /// The MSS our link carries (MTU − 40), offered in our SYN.
    pub mss_local: u16,
    /// The MSS assumed when the peer sends none (`_mss_def_ipv4`, 536).
    pub mss_def: u16,
    /// The smallest MSS taken from a peer (`_mss_min`, 108).
    pub mss_min: u16,
    /// Send queue bound (`send_buf`).
    pub snd_buf: u32,
    /// Receive buffer (`recv_buf`): the window offered at first.
    pub rcv_buf: u32,
    /// Largest buffer auto-tuning may grow the receive buffer to
    /// (`max_buf`); also sizes the window scale we offer.
    pub max_buf: u32,
    /// Retransmission timer bounds.
    pub rto: RtoConfig,
    /// Longest an ACK is deferred (`_deferred_ack_interval`, 100 ms).
    pub dack_interval_ms: u64,
    /// Segments received before an ACK goes out at once
    /// (`_deferred_acks_max`, 2).
    pub dacks_max: u32,
    /// TIME_WAIT length (`_time_wait_interval`, 60 s).
    pub time_wait_ms: u64,
    /// How long an orphaned FIN_WAIT_2 waits for the peer's FIN
    /// (`_fin_wait_2_flush_interval`).
    pub fin_wait_2_ms: u64,
    /// Idle time before the first keepalive probe (`_keepalive_interval`).
    pub keepalive_ms: u64,
    /// How long unanswered keepalive probes go on before the connection
    /// is dropped (`_keepalive_abort_interval`).
    pub keepalive_abort_ms: u64,
    /// How long retransmissions of data go on unanswered before the
    /// connection is dropped (`_ip_abort_interval`, 5 min).
    pub abort_ms: u64,
    /// The same for a SYN (`_ip_abort_cinterval`, 3 min).
    pub abort_conn_ms: u64,
    /// Offer and accept SACK (`sack` ≥ 1 accepts, 2 offers).
    pub sack_accept: bool,
    /// Offer SACK in our SYN (`sack` = 2).
    pub sack_offer: bool,
    /// Offer window scaling (`_wscale_always`).
    pub wscale: bool,
    /// Offer timestamps (`_tstamp_always`, or `_tstamp_if_wscale` with
    /// window scaling).
    pub tstamp: bool,
    /// Congestion control (`congestion_control`).
    pub cc: CcAlgo,
    /// Largest congestion window (`_cwnd_max`).
    pub cwnd_max: u32,
    /// Duplicate ACKs that start fast retransmit (`_dupack_fast_retransmit`).
    pub dupack_thresh: u32,
    /// `TCP_NODELAY`: Nagle off.
    pub nodelay: bool,
    /// `SO_KEEPALIVE`.
    pub keepalive: bool,
    /// Bounds of the out-of-order receive queue.
    pub reass: RcvReassConfig,
}

impl Default for TcbConfig {
    fn default() -> Self {
        TcbConfig {
            mss_local: 1460,
            mss_def: 536,
            mss_min: 108,
            snd_buf: 128_000,
            rcv_buf: 128_000,
            max_buf: 1 << 20,
            rto: RtoConfig::default(),
            dack_interval_ms: 100,
            dacks_max: 2,
            time_wait_ms: 60_000,
            fin_wait_2_ms: 60_000,
            keepalive_ms: 7_200_000,
            keepalive_abort_ms: 480_000,
            abort_ms: 300_000,
            abort_conn_ms: 180_000,
            sack_accept: true,
            sack_offer: true,
            wscale: true,
            tstamp: true,
            cc: CcAlgo::Cubic,
            cwnd_max: 1 << 20,
            dupack_thresh: 3,
            nodelay: false,
            keepalive: false,
            reass: RcvReassConfig::default(),
        }
    }
}

impl TcbConfig {
    /// The window scale we offer: the smallest shift that lets `max_buf`
    /// be advertised (RFC 7323 section 2.3), at most 14.
    pub fn rcv_wscale(&self) -> u8 {
        let mut s = 0u8;
        while s < 14 && (u64::from(self.max_buf.max(self.rcv_buf)) >> s) > 65_535 {
            s += 1;
        }
        s
    }
}
