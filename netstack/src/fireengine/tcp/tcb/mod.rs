//! The transmission control block: one TCP connection's whole state and
//! its RFC 9293 state machine, as a plain type. Nothing here knows CPUs,
//! locks, addresses or the wire: the instance calls it from inside the
//! conn's squeue (the only place a conn's state is touched) with the time
//! and a [`TcpCtx`] that collects the segments to send and the counters.
//!
//! The rooms of the machine:
//!
//! * this file: the block, opening it (active, passive, from a SYN
//!   cookie), the user's calls (send, receive, shutdown, close, abort) and
//!   what the instance reads for `netstat`;
//! * [`input`]: SEGMENT ARRIVES (RFC 9293 section 3.10.7) with RFC 5961's
//!   checks, RFC 7323's PAWS and RTTM, ACK processing, fast retransmit and
//!   recovery (NewReno, RFC 6582; SACK, RFC 6675), receive;
//! * [`output`]: what may be sent now (windows, Nagle, sender SWS
//!   avoidance, recovery's NextSeg), and building segments with options;
//! * [`icmp`]: ICMP errors about our segments (PMTU decreases, refused
//!   connects, soft errors);
//! * [`timers`]: retransmit, persist (zero-window probes), delayed ACK,
//!   keepalive, TIME_WAIT and FIN_WAIT_2, each a deadline in ms.
//!
//! Sequence space: SND.UNA ≤ SND.NXT ≤ SND.MAX; the send queue holds the
//! bytes from SND.UNA on; the SYN occupies ISS and the FIN the number
//! after the last queued byte. On the receive side the advertised right
//! edge (RCV.NXT + RCV.WND) never moves left (RFC 9293 3.8.6.2.2).

pub mod fusion;
pub mod icmp;
pub mod input;
pub mod output;
pub mod timers;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::cc::Cc;
use super::config::TcbConfig;
use super::rto::RtoEstimator;
use super::scoreboard::Scoreboard;
use super::segment::SegOut;
use super::seq::SeqNum;
use super::state::State;
use super::challenge::ChallengeLimiter;
use crate::fireengine::ip::mib::{TcpMib, bump};
use crate::fireengine::tcp_conn::rcv_reass::RcvReass;
use crate::stack::NetError;

/// What a call into the TCB needs besides the block: the time, where the
/// segments to send go, the instance's counters and challenge-ACK limit.
pub struct TcpCtx<'a> {
    /// Now, in µs (the instance's monotonic clock).
    pub now_us: u64,
    /// Segments to send, in order.
    pub out: &'a mut Vec<SegOut>,
    /// The instance's TCP MIB.
    pub mib: &'a TcpMib,
    /// The instance's challenge-ACK limiter.
    pub challenge: &'a ChallengeLimiter,
}

impl TcpCtx<'_> {
    /// Now, in ms.
    pub fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }
}

/// What happened that the socket layer should hear of; taken (and
/// cleared) with [`Tcb::take_events`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// Data, a FIN or an error may be readable.
    pub readable: bool,
    /// Send space may have opened.
    pub writable: bool,
    /// The handshake completed (an eager is ready for accept, a
    /// connect finished).
    pub established: bool,
    /// The connection reached CLOSED (orderly or not): the instance
    /// removes it.
    pub closed: bool,
    /// A SYN-ACK was retransmitted (SYN_RCVD's retransmit timer fired):
    /// the listener counts the eager's timeouts for its q0 drop policy.
    pub synack_rexmit: bool,
}

/// What a SYN cookie restores of a connection (its SYN's options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieState {
    /// The peer's ISN (SEG.SEQ of the ACK − 1).
    pub irs: SeqNum,
    /// Our ISN (SEG.ACK of the ACK − 1).
    pub iss: SeqNum,
    /// The MSS the cookie encoded.
    pub mss: u16,
    /// The peer's window scale, if it offered one.
    pub snd_wscale: Option<u8>,
    /// SACK permitted.
    pub sack: bool,
    /// The peer's TSval in the completing ACK, if timestamps are on.
    pub ts_recent: Option<u32>,
}

/// One connection (see the module doc).
pub struct Tcb {
    pub(super) cfg: TcbConfig,
    pub(super) state: State,

    // Send side.
    pub(super) iss: SeqNum,
    pub(super) snd_una: SeqNum,
    pub(super) snd_nxt: SeqNum,
    pub(super) snd_max: SeqNum,
    pub(super) snd_wnd: u32,
    pub(super) max_snd_wnd: u32,
    pub(super) snd_wl1: SeqNum,
    pub(super) snd_wl2: SeqNum,
    pub(super) snd_wscale: u8,
    pub(super) sndbuf: super::sndbuf::SndBuf,
    /// The user shut down writing: a FIN follows the queued bytes.
    pub(super) fin_queued: bool,
    /// Our SYN has been acknowledged (SND.UNA is past ISS). Kept apart
    /// from `SND.UNA == ISS`, which holds again after 2^32 bytes.
    pub(super) syn_acked: bool,
    /// Data bytes per segment (the peer's MSS, our link's, less the
    /// timestamps option).
    pub(super) snd_mss: u32,
    /// Urgent data: the send urgent pointer (one past the urgent byte).
    pub(super) snd_up: Option<SeqNum>,
    /// The most data bytes of one large send (LSO), 0 without
    /// ([`Tcb::set_lso`]).
    pub(super) lso_max: u32,
    /// The path's MSS before options (PMTU − 40), `u32::MAX` while no
    /// PMTU is known ([`icmp`]).
    pub(super) pmtu_mss: u32,
    /// A soft ICMP error, reported only if the conn times out.
    pub(super) soft_error: Option<NetError>,

    // Receive side.
    pub(super) irs: SeqNum,
    pub(super) rcv_nxt: SeqNum,
    /// The right edge we advertised (RCV.NXT + RCV.WND when sent).
    pub(super) rcv_adv: SeqNum,
    pub(super) rcv_wscale: u8,
    pub(super) rcvbuf: VecDeque<u8>,
    pub(super) rcv_limit: u32,
    /// Bytes handed to the socket layer ([`Tcb::take_received`]) and not
    /// yet read there ([`Tcb::consumed`]): they still fill the window.
    pub(super) unread: u32,
    /// Data bytes acknowledged since [`Tcb::take_acked`] last ran.
    pub(super) acked_out: usize,
    pub(super) reass: RcvReass,
    /// The peer's FIN has been taken (RCV.NXT is past it).
    pub(super) fin_rcvd: bool,
    /// The receive urgent pointer (RFC 9293 3.8.5): one past the last
    /// urgent byte, kept while RCV.NXT has not passed it.
    pub(super) rcv_up: Option<SeqNum>,
    /// Urgent pointers received (for the socket layer's `SIOCATMARK`).
    pub(super) urg_seen: u64,

    // Options negotiated.
    pub(super) ws_ok: bool,
    pub(super) ts_ok: bool,
    pub(super) sack_ok: bool,
    pub(super) ts_recent: u32,
    pub(super) ts_recent_ms: u64,
    pub(super) ts_offset: u32,
    pub(super) last_ack_sent: SeqNum,

    // Algorithms.
    pub(super) rto: RtoEstimator,
    pub(super) cc: Cc,
    pub(super) sb: Scoreboard,
    /// The segment being timed (Karn: never a retransmitted one): the
    /// sequence number its ACK must pass, and when it was sent (µs).
    pub(super) rtt_seq: Option<(SeqNum, u64)>,
    pub(super) dupacks: u32,
    pub(super) in_recovery: bool,
    /// RFC 6582 / 6675 "recover": SND.MAX when recovery began.
    pub(super) recover: SeqNum,
    /// RFC 6675 HighRxt.
    pub(super) high_rxt: SeqNum,
    /// NewReno's window inflation during recovery (RFC 6582 step 3, 4).
    pub(super) rec_inflate: u32,
    /// Whether an RTO series is under way (only its first one cuts
    /// ssthresh).
    pub(super) rto_series: bool,

    // Timers: absolute deadlines in ms.
    pub(super) t_rexmit: Option<u64>,
    pub(super) t_persist: Option<u64>,
    pub(super) t_dack: Option<u64>,
    pub(super) t_keep: Option<u64>,
    pub(super) t_close: Option<u64>,
    /// When the first unanswered retransmission went out (for the abort
    /// intervals).
    pub(super) rexmit_since_ms: Option<u64>,
    pub(super) persist_shift: u32,
    pub(super) keep_probes: u32,
    /// When the peer was last heard from (ms).
    pub(super) last_rcv_ms: u64,
    /// When data or a SYN/FIN was last sent (ms), for the idle restart.
    pub(super) last_snd_ms: u64,

    // ACK generation.
    pub(super) ack_now: bool,
    pub(super) dack_segs: u32,

    // Outcome.
    pub(super) error: Option<NetError>,
    pub(super) events: Events,
    /// The user closed the socket: nobody reads any more.
    pub(super) orphan: bool,
    /// Whether the conn counts in `tcpCurrEstab` now.
    pub(super) counted_estab: bool,
    /// Passive open (an eager of a listener).
    pub(super) passive: bool,
}

/// The window scale and MSS options a SYN or SYN-ACK offers.
fn mss_for(peer: Option<u16>, cfg: &TcbConfig) -> u32 {
    let peer = peer.unwrap_or(cfg.mss_def).max(cfg.mss_min);
    u32::from(peer.min(cfg.mss_local)).max(1)
}

impl Tcb {
    fn blank(cfg: TcbConfig, iss: SeqNum, ts_offset: u32, now_ms: u64) -> Tcb {
        let mss = u32::from(cfg.mss_def.min(cfg.mss_local)).max(1);
        Tcb {
            state: State::Closed,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: iss,
            snd_wscale: 0,
            sndbuf: super::sndbuf::SndBuf::new(cfg.snd_buf as usize),
            fin_queued: false,
            syn_acked: false,
            snd_mss: mss,
            snd_up: None,
            lso_max: 0,
            pmtu_mss: u32::MAX,
            soft_error: None,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            rcv_wscale: 0,
            rcvbuf: VecDeque::new(),
            rcv_limit: cfg.rcv_buf.max(1),
            unread: 0,
            acked_out: 0,
            reass: RcvReass::new(cfg.reass),
            fin_rcvd: false,
            rcv_up: None,
            urg_seen: 0,
            ws_ok: false,
            ts_ok: false,
            sack_ok: false,
            ts_recent: 0,
            ts_recent_ms: now_ms,
            ts_offset,
            last_ack_sent: SeqNum(0),
            rto: RtoEstimator::new(cfg.rto),
            cc: Cc::new(cfg.cc, mss, cfg.cwnd_max),
            sb: Scoreboard::new(),
            rtt_seq: None,
            dupacks: 0,
            in_recovery: false,
            recover: iss,
            high_rxt: iss,
            rec_inflate: 0,
            rto_series: false,
            t_rexmit: None,
            t_persist: None,
            t_dack: None,
            t_keep: None,
            t_close: None,
            rexmit_since_ms: None,
            persist_shift: 0,
            keep_probes: 0,
            last_rcv_ms: now_ms,
            last_snd_ms: now_ms,
            ack_now: false,
            dack_segs: 0,
            error: None,
            events: Events::default(),
            orphan: false,
            counted_estab: false,
            passive: false,
            cfg,
        }
    }

    /// An active open: sends the SYN (MSS, and window scale, timestamps
    /// and SACK-permitted as configured). `iss` from RFC 6528's
    /// generator; `ts_offset` a per-connection random offset of the
    /// timestamp clock.
    pub fn connect(cfg: TcbConfig, iss: SeqNum, ts_offset: u32, ctx: &mut TcpCtx<'_>) -> Tcb {
        let mut t = Tcb::blank(cfg, iss, ts_offset, ctx.now_ms());
        t.state = State::SynSent;
        t.rcv_wscale = if cfg.wscale { cfg.rcv_wscale() } else { 0 };
        bump(&ctx.mib.active_opens);
        t.output(ctx);
        t
    }

    /// A passive open: the eager conn for `syn` (a SYN to a listener),
    /// in SYN_RCVD, with the SYN-ACK sent. Options are those of the SYN
    /// that we also support.
    pub fn accept(cfg: TcbConfig, iss: SeqNum, ts_offset: u32, syn: &super::segment::SegIn<'_>, ctx: &mut TcpCtx<'_>) -> Tcb {
        let mut t = Tcb::blank(cfg, iss, ts_offset, ctx.now_ms());
        t.passive = true;
        t.state = State::SynRcvd;
        t.irs = syn.seq;
        t.rcv_nxt = syn.seq + 1;
        t.rcv_adv = t.rcv_nxt;
        t.take_syn_options(syn);
        t.snd_wnd = u32::from(syn.wnd);
        t.max_snd_wnd = t.snd_wnd;
        t.snd_wl1 = syn.seq;
        t.snd_wl2 = iss;
        t.last_rcv_ms = ctx.now_ms();
        bump(&ctx.mib.passive_opens);
        t.output(ctx);
        t
    }

    /// A connection restored from a valid SYN cookie by the ACK that
    /// completes it: ESTABLISHED at once (no state was kept for the SYN).
    pub fn from_cookie(cfg: TcbConfig, c: CookieState, wnd: u16, ts_offset: u32, ctx: &mut TcpCtx<'_>) -> Tcb {
        let mut t = Tcb::blank(cfg, c.iss, ts_offset, ctx.now_ms());
        t.passive = true;
        t.irs = c.irs;
        t.rcv_nxt = c.irs + 1;
        // The edge our cookie SYN-ACK advertised: its unscaled window,
        // min(receive buffer, 65535), as `emit_syn` offers.
        t.rcv_adv = t.rcv_nxt + t.rcv_space().min(65_535) as usize;
        t.snd_una = c.iss + 1;
        t.syn_acked = true;
        t.snd_nxt = t.snd_una;
        t.snd_max = t.snd_una;
        if let (Some(s), true) = (c.snd_wscale, cfg.wscale) {
            t.ws_ok = true;
            t.snd_wscale = s.min(14);
            t.rcv_wscale = cfg.rcv_wscale();
        }
        t.sack_ok = c.sack && cfg.sack_accept;
        if let (Some(ts), true) = (c.ts_recent, cfg.tstamp) {
            t.ts_ok = true;
            t.ts_recent = ts;
            t.ts_recent_ms = ctx.now_ms();
        }
        t.snd_mss = mss_for(Some(c.mss), &cfg).saturating_sub(if t.ts_ok { 12 } else { 0 }).max(1);
        t.cc = Cc::new(cfg.cc, t.snd_mss, cfg.cwnd_max);
        t.snd_wnd = u32::from(wnd) << t.snd_wscale;
        t.max_snd_wnd = t.snd_wnd;
        t.snd_wl1 = c.irs + 1;
        t.snd_wl2 = t.snd_una;
        t.last_ack_sent = t.rcv_nxt;
        bump(&ctx.mib.passive_opens);
        t.set_state(State::Established, ctx);
        t.events.established = true;
        t
    }

    /// Takes the options of a SYN (or SYN-ACK) that we also support.
    pub(super) fn take_syn_options(&mut self, syn: &super::segment::SegIn<'_>) {
        let o = &syn.opts;
        if let (Some(s), true) = (o.window_scale, self.cfg.wscale) {
            self.ws_ok = true;
            self.snd_wscale = s.min(14);
            self.rcv_wscale = self.cfg.rcv_wscale();
        } else {
            self.ws_ok = false;
            self.snd_wscale = 0;
            self.rcv_wscale = 0;
        }
        self.sack_ok = o.sack_permitted && self.cfg.sack_accept;
        if let (Some(ts), true) = (o.timestamps, self.cfg.tstamp) {
            self.ts_ok = true;
            self.ts_recent = ts.tsval;
        } else {
            self.ts_ok = false;
        }
        self.snd_mss = mss_for(o.mss, &self.cfg).min(self.pmtu_mss).saturating_sub(if self.ts_ok { 12 } else { 0 }).max(1);
        self.cc.set_mss(self.snd_mss);
    }

    /// Moves to `s`, keeping `tcpCurrEstab` right.
    pub(super) fn set_state(&mut self, s: State, ctx: &TcpCtx<'_>) {
        let was = self.counted_estab;
        let now = s.counts_established();
        if now && !was {
            ctx.mib.curr_estab.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        } else if was && !now {
            ctx.mib.curr_estab.fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
        }
        self.counted_estab = now;
        self.state = s;
        if s == State::Closed {
            self.events.closed = true;
            self.events.readable = true;
            self.events.writable = true;
            self.t_rexmit = None;
            self.t_persist = None;
            self.t_dack = None;
            self.t_keep = None;
            self.t_close = None;
        }
    }

    /// Ends the connection with `err` (the peer reset it, a timer gave
    /// up, the user aborted), dropping what is queued.
    pub(super) fn drop_with(&mut self, err: NetError, ctx: &TcpCtx<'_>) {
        if matches!(self.state, State::SynSent | State::SynRcvd) {
            bump(&ctx.mib.attempt_fails);
        } else if self.state.counts_established() && err == NetError::ConnectionReset {
            bump(&ctx.mib.estab_resets);
        }
        self.error = Some(err);
        self.sndbuf.clear();
        self.reass.clear();
        self.set_state(State::Closed, ctx);
    }

    // ---- The user's calls -------------------------------------------

    /// Queues as much of `data` as the send buffer takes and sends what
    /// the windows allow; returns the bytes taken (0: full, try again on
    /// a writable event).
    pub fn send(&mut self, data: &[u8], ctx: &mut TcpCtx<'_>) -> Result<usize, NetError> {
        self.send_checked(ctx, |b| b.push(data))
    }

    /// As [`send`](Self::send), keeping the vector itself in the send
    /// queue (no copy); what does not fit is dropped, as `send` leaves it.
    pub fn send_vec(&mut self, data: Vec<u8>, ctx: &mut TcpCtx<'_>) -> Result<usize, NetError> {
        self.send_checked(ctx, |b| b.push_vec(data))
    }

    fn send_checked(&mut self, ctx: &mut TcpCtx<'_>, push: impl FnOnce(&mut super::sndbuf::SndBuf) -> usize) -> Result<usize, NetError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.state.can_send() || self.fin_queued {
            return Err(if self.state == State::Closed { NetError::NotConnected } else { NetError::ShutDown });
        }
        let n = push(&mut self.sndbuf);
        if n > 0 {
            self.output(ctx);
        }
        Ok(n)
    }

    /// Queues one urgent byte after what is queued (RFC 9293 3.8.5: the
    /// urgent pointer points at the byte after it, as BSD and illumos
    /// send it).
    pub fn send_urgent(&mut self, byte: u8, ctx: &mut TcpCtx<'_>) -> Result<(), NetError> {
        if self.sndbuf.space() == 0 {
            return Err(NetError::NoBuffers);
        }
        let n = self.send(&[byte], ctx)?;
        if n == 1 {
            self.snd_up = Some(self.snd_una + self.sndbuf.len());
            self.output(ctx);
        }
        Ok(())
    }

    /// Moves received bytes into `buf`; returns how many (0 with
    /// [`peer_closed`](Self::peer_closed) true: end of stream). Reading
    /// may open the window: a window update goes out when it opened
    /// enough (receiver SWS avoidance).
    pub fn recv(&mut self, buf: &mut [u8], ctx: &mut TcpCtx<'_>) -> Result<usize, NetError> {
        let n = buf.len().min(self.rcvbuf.len());
        if n == 0 {
            if let Some(e) = self.error.filter(|_| self.rcvbuf.is_empty()) {
                return Err(e);
            }
            return Ok(0);
        }
        crate::fireengine::bytes::copy_front(&mut self.rcvbuf, &mut buf[..n]);
        self.after_read(ctx);
        Ok(n)
    }

    /// As [`recv`](Self::recv), into a new vector of at most `max` bytes.
    pub fn recv_vec(&mut self, max: usize, ctx: &mut TcpCtx<'_>) -> Result<Vec<u8>, NetError> {
        let n = max.min(self.rcvbuf.len());
        if n == 0 {
            if let Some(e) = self.error.filter(|_| self.rcvbuf.is_empty()) {
                return Err(e);
            }
            return Ok(Vec::new());
        }
        let v = crate::fireengine::bytes::take_front(&mut self.rcvbuf, n);
        self.after_read(ctx);
        Ok(v)
    }

    fn after_read(&mut self, ctx: &mut TcpCtx<'_>) {
        if self.rcvbuf.is_empty() {
            self.rcvbuf.shrink_to(self.snd_mss as usize);
        }
        if self.state.can_receive() && self.window_update_due() {
            self.ack_now = true;
            bump(&ctx.mib.out_win_update);
            self.output(ctx);
        }
    }

    /// Hands every received in-order byte to the socket layer (sockfs'
    /// receive queue, illumos `su_recv`): they count against the window
    /// until [`consumed`](Self::consumed) says they were read.
    pub fn take_received(&mut self) -> Vec<u8> {
        let v = crate::fireengine::bytes::take_front(&mut self.rcvbuf, usize::MAX);
        self.unread = self.unread.saturating_add(v.len() as u32);
        v
    }

    /// The socket layer's reader took `n` bytes of what
    /// [`take_received`](Self::take_received) handed over (illumos
    /// `tcp_rwnd_update`): the window reopens, and a window update goes
    /// out if it opened enough.
    pub fn consumed(&mut self, n: usize, ctx: &mut TcpCtx<'_>) {
        self.unread = self.unread.saturating_sub(n.min(u32::MAX as usize) as u32);
        self.after_read(ctx);
    }

    /// Data bytes the peer acknowledged since the last call (they left
    /// the send queue: the socket layer's send room grows by as much).
    pub fn take_acked(&mut self) -> usize {
        core::mem::take(&mut self.acked_out)
    }

    /// `shutdown(SHUT_WR)`: a FIN follows the queued data.
    pub fn shutdown_write(&mut self, ctx: &mut TcpCtx<'_>) {
        match self.state {
            State::SynSent | State::Closed | State::Listen => {
                if self.state == State::SynSent {
                    bump(&ctx.mib.attempt_fails);
                }
                self.set_state(State::Closed, ctx);
            }
            State::SynRcvd => {
                // RFC 9293 3.10.4: queued until ESTABLISHED, when the
                // FIN follows the data (our SYN is not acknowledged yet).
                self.fin_queued = true;
            }
            State::Established => {
                self.fin_queued = true;
                self.set_state(State::FinWait1, ctx);
                self.output(ctx);
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(State::LastAck, ctx);
                self.output(ctx);
            }
            _ => {}
        }
    }

    /// `close()`: nobody will read any more. With unread data (or data
    /// arriving later) the connection is reset, as RFC 9293 3.10.4
    /// allows and every major stack does; otherwise it shuts down writing
    /// and finishes in the background.
    pub fn close(&mut self, ctx: &mut TcpCtx<'_>) {
        self.orphan = true;
        if (!self.rcvbuf.is_empty() || self.unread > 0) && self.state.synchronized() {
            self.abort(ctx);
            return;
        }
        self.rcvbuf.clear();
        self.unread = 0;
        self.shutdown_write(ctx);
        if self.state == State::FinWait2 {
            self.t_close = Some(ctx.now_ms() + self.cfg.fin_wait_2_ms);
        }
    }

    /// Resets the connection at once (`SO_LINGER` 0): a RST if the peer
    /// knows of us, then CLOSED.
    pub fn abort(&mut self, ctx: &mut TcpCtx<'_>) {
        if !matches!(self.state, State::Closed | State::Listen | State::SynSent | State::TimeWait) {
            self.emit_rst(self.snd_max, ctx);
        }
        self.drop_with(NetError::ConnectionReset, ctx);
        self.error = Some(NetError::ConnectionReset);
    }

    /// Ends the connection without a word to the peer (a TIME_WAIT conn
    /// reused by a newer SYN).
    pub fn abort_quietly(&mut self, ctx: &mut TcpCtx<'_>) {
        self.sndbuf.clear();
        self.reass.clear();
        self.set_state(State::Closed, ctx);
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&mut self, on: bool, ctx: &mut TcpCtx<'_>) {
        self.cfg.nodelay = on;
        if on {
            self.output(ctx);
        }
    }

    /// Sets `SO_KEEPALIVE`.
    pub fn set_keepalive(&mut self, on: bool, ctx: &TcpCtx<'_>) {
        self.cfg.keepalive = on;
        self.t_keep = if on && self.state.synchronized() { Some(ctx.now_ms() + self.cfg.keepalive_ms) } else { None };
    }

    /// Takes what happened since the last call.
    pub fn take_events(&mut self) -> Events {
        core::mem::take(&mut self.events)
    }

    // ---- What the instance and the socket layer read -----------------

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The error that ended the connection, if one did.
    pub fn error(&self) -> Option<NetError> {
        self.error
    }

    /// Bytes waiting to be read.
    pub fn readable(&self) -> usize {
        self.rcvbuf.len()
    }

    /// Whether the peer's FIN has been received (reads return 0 once the
    /// queue is empty).
    pub fn peer_closed(&self) -> bool {
        self.fin_rcvd
    }

    /// Room in the send queue.
    pub fn send_space(&self) -> usize {
        if self.state.can_send() && !self.fin_queued { self.sndbuf.space() } else { 0 }
    }

    /// Bytes queued and not yet acknowledged (netstat's Send-Q).
    pub fn send_queued(&self) -> usize {
        self.sndbuf.len()
    }

    /// The peer's window (netstat's Swind).
    pub fn snd_wnd(&self) -> u32 {
        self.snd_wnd
    }

    /// The window we offer now (netstat's Rwind).
    pub fn rcv_wnd(&self) -> u32 {
        self.rcv_space()
    }

    /// Whether the conn was made by a listener.
    pub fn is_passive(&self) -> bool {
        self.passive
    }

    /// Whether the socket was closed by its user.
    pub fn is_orphan(&self) -> bool {
        self.orphan
    }

    /// The negotiated options: (window scaling, timestamps, SACK).
    pub fn options(&self) -> (bool, bool, bool) {
        (self.ws_ok, self.ts_ok, self.sack_ok)
    }

    /// Data bytes per segment.
    pub fn mss(&self) -> u32 {
        self.snd_mss
    }

    /// The congestion window and slow-start threshold.
    pub fn cwnd(&self) -> (u32, u32) {
        (self.cc.cwnd(), self.cc.ssthresh())
    }

    /// The smoothed RTT (µs), once measured, and the current RTO (ms).
    pub fn rtt(&self) -> (Option<u64>, u64) {
        (self.rto.srtt_us(), self.rto.rto_ms())
    }

    /// Our ISN and the peer's.
    pub fn isns(&self) -> (SeqNum, SeqNum) {
        (self.iss, self.irs)
    }

    /// RCV.NXT (the next byte expected).
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv_nxt
    }

    /// SND.NXT and SND.UNA.
    pub fn snd_seq(&self) -> (SeqNum, SeqNum) {
        (self.snd_nxt, self.snd_una)
    }

    /// SND.MAX (the highest sequence number sent, plus one).
    pub fn snd_max(&self) -> SeqNum {
        self.snd_max
    }

    /// The window scales in use: (the peer's, for SEG.WND; ours, for the
    /// windows we advertise). Both 0 without window scaling.
    pub fn window_scales(&self) -> (u8, u8) {
        if self.ws_ok { (self.snd_wscale, self.rcv_wscale) } else { (0, 0) }
    }

    /// The right edge of the window we last advertised (RCV.NXT +
    /// RCV.WND when sent).
    pub fn rcv_adv(&self) -> SeqNum {
        self.rcv_adv
    }

    /// Whether urgent data is pending in the receive queue, and how many
    /// urgent pointers arrived in all.
    pub fn urgent(&self) -> (bool, u64) {
        (self.rcv_up.is_some(), self.urg_seen)
    }

    /// Room in the receive buffer.
    pub(super) fn rcv_space(&self) -> u32 {
        self.rcv_limit.saturating_sub(self.rcvbuf.len() as u32).saturating_sub(self.unread)
    }

    /// Whether reading opened the window enough to say so now: the right
    /// edge would move by two segments or half the buffer (RFC 9293
    /// 3.8.6.2.2's receiver SWS avoidance, as illumos'
    /// `tcp_rwnd_reopen`), or the window we offered was closed.
    pub(super) fn window_update_due(&self) -> bool {
        let edge = self.rcv_nxt + self.rcv_space() as usize;
        let grow = edge - self.rcv_adv;
        let offered = (self.rcv_adv - self.rcv_nxt).max(0) as u32;
        grow > 0 && (offered < self.snd_mss || grow as u32 >= (2 * self.snd_mss).min(self.rcv_limit / 2))
    }
}
