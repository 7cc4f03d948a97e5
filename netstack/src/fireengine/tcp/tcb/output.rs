//! What a connection sends now (illumos `tcp_output`/`tcp_send`, RFC 9293
//! 3.8.6, RFC 5681, RFC 6675 section 5): the SYN or SYN-ACK; new data
//! within min(SND.WND, cwnd) with Nagle (RFC 896, per-connection
//! `TCP_NODELAY`) and sender SWS avoidance (RFC 9293 3.8.6.2.1); in SACK
//! recovery the segments NextSeg() picks under the pipe; the FIN after
//! the last byte; and a pure ACK when one is owed and nothing carried it.
//! Every segment carries the options negotiated: timestamps, SACK blocks
//! for what the out-of-order queue holds.
//!
//! Large sends (illumos' LSO, `tcp_send` with `tcp_lso`): where the link
//! segments TCP itself ([`Tcb::set_lso`]), new data goes out as segments
//! of up to the link's limit (64 KiB), whole MSS multiples, marked with
//! the MSS ([`SegOut::lso_mss`]) for the link to cut. The windows and
//! cwnd bound them as any segment; Nagle and SWS avoidance apply per MSS:
//! a short tail rides along only where it could go alone (the last bytes
//! queued, with Nagle off or the FIN behind it). Retransmissions after a
//! timeout may be large too, up to the next SACKed block; SACK recovery's
//! NextSeg() resends one MSS at a time.
//!
//! [`Tcb::send_segment`] builds every data segment: new data,
//! retransmissions (fast, timeout, SACK), and window probes.

use super::{Tcb, TcpCtx};
use crate::fireengine::ip::mib::bump;
use crate::fireengine::tcp::scoreboard::NextSeg;
use crate::fireengine::tcp::segment::SegOut;
use crate::fireengine::tcp::seq::SeqNum;
use crate::fireengine::tcp::state::State;
use crate::fireengine::wire::tcp::{SackBlock, SackBlocks, TcpFlags, TcpOptions, Timestamps};
use alloc::vec::Vec;

/// Most segments one call sends (the rest go at the next ACK or call):
/// bounds the work one squeue entry does.
const MAX_BURST: usize = 64;

impl Tcb {
    /// Our timestamp clock now (ms, with the conn's random offset).
    pub(super) fn ts_now(&self, ctx: &TcpCtx<'_>) -> u32 {
        (ctx.now_ms() as u32).wrapping_add(self.ts_offset)
    }

    /// Bytes in flight outside SACK recovery: SND.NXT − SND.UNA.
    fn flight(&self) -> u32 {
        (self.snd_nxt - self.snd_una).max(0) as u32
    }

    /// The FIN's sequence number once queued (after the SYN, while that
    /// is unacknowledged, and the queued bytes).
    pub(super) fn fin_seq(&self) -> Option<SeqNum> {
        self.fin_queued.then(|| self.snd_una + self.sndbuf.len() + usize::from(!self.syn_acked))
    }

    /// Whether our FIN has been sent.
    pub(super) fn fin_sent(&self) -> bool {
        self.fin_seq().is_some_and(|f| self.snd_max.gt(f))
    }

    /// Sends what may be sent now (see the module doc).
    pub fn output(&mut self, ctx: &mut TcpCtx<'_>) {
        match self.state {
            State::Closed | State::Listen | State::TimeWait => {
                if self.state == State::TimeWait && self.ack_now {
                    self.emit_ack(ctx);
                }
            }
            State::SynSent | State::SynRcvd => {
                if self.snd_nxt == self.iss {
                    self.emit_syn(ctx);
                } else if self.ack_now && self.state == State::SynRcvd {
                    // An out-of-window segment in SYN_RCVD is answered
                    // with the SYN-ACK's ACK.
                    self.emit_ack(ctx);
                }
            }
            _ => {
                self.send_data(ctx);
                if self.ack_now {
                    self.emit_ack(ctx);
                }
            }
        }
    }

    fn emit_syn(&mut self, ctx: &mut TcpCtx<'_>) {
        let rexmit = self.snd_max != self.iss;
        let mut o = TcpOptions::new();
        o.mss = Some(self.cfg.mss_local);
        let synack = self.state == State::SynRcvd;
        if self.cfg.wscale && (!synack || self.ws_ok) {
            o.window_scale = Some(self.cfg.rcv_wscale());
        }
        if (synack && self.sack_ok) || (!synack && self.cfg.sack_offer && self.cfg.sack_accept) {
            o.sack_permitted = true;
        }
        if self.cfg.tstamp && (!synack || self.ts_ok) {
            o.timestamps = Some(Timestamps { tsval: self.ts_now(ctx), tsecr: if synack { self.ts_recent } else { 0 } });
        }
        let flags = if synack { TcpFlags::SYN | TcpFlags::ACK } else { TcpFlags::SYN };
        // The window of a SYN is never scaled (RFC 7323 2.2).
        let wnd = self.rcv_space().min(65_535);
        if synack {
            self.rcv_adv = self.rcv_nxt + wnd as usize;
            self.last_ack_sent = self.rcv_nxt;
        }
        let seg = SegOut {
            seq: self.iss,
            ack: if synack { self.rcv_nxt } else { SeqNum(0) },
            flags,
            wnd: wnd as u16,
            urgent: 0,
            opts: o,
            data: Vec::new(),
            rexmit,
            lso_mss: None,
        };
        seg.count(ctx.mib);
        ctx.out.push(seg);
        self.snd_nxt = self.iss + 1;
        if self.snd_max.lt(self.snd_nxt) {
            self.snd_max = self.snd_nxt;
        }
        if !rexmit {
            self.rtt_seq = Some((self.snd_nxt, ctx.now_us));
        }
        self.ack_now = false;
        self.last_snd_ms = ctx.now_ms();
        if self.t_rexmit.is_none() {
            self.t_rexmit = Some(ctx.now_ms() + self.rto.rto_ms());
        }
    }

    /// The window to advertise now, as the wire carries it (scaled), and
    /// the right edge it stands for. The edge never moves left; it moves
    /// right only by enough to matter (receiver SWS avoidance).
    fn advertise(&mut self) -> u16 {
        let shift = if self.ws_ok { self.rcv_wscale } else { 0 };
        let space = self.rcv_space();
        let edge = self.rcv_nxt + space as usize;
        let grow = edge - self.rcv_adv;
        let threshold = self.snd_mss.min(self.rcv_limit / 2).max(1) as i32;
        if grow >= threshold || (self.rcv_adv - self.rcv_nxt) < 0 {
            // Round down to what the scale can say.
            let wnd = (space >> shift) << shift;
            let new_edge = self.rcv_nxt + wnd as usize;
            if new_edge.gt(self.rcv_adv) || (self.rcv_adv - self.rcv_nxt) < 0 {
                self.rcv_adv = new_edge;
            }
        }
        let offered = (self.rcv_adv - self.rcv_nxt).max(0) as u32;
        // Round up so the edge is not retracted by the shift.
        let scaled = offered.div_ceil(1 << shift).min(65_535);
        // The edge the peer sees is the one we keep: rounding up moved it
        // right by less than 2^shift, and it must never come back left
        // (the next RCV.NXT need not be a multiple of 2^shift away).
        let seen = self.rcv_nxt + ((scaled << shift) as usize);
        if seen.gt(self.rcv_adv) {
            self.rcv_adv = seen;
        }
        scaled as u16
    }

    /// The options of a non-SYN segment.
    fn seg_options(&self, ctx: &TcpCtx<'_>) -> TcpOptions {
        let mut o = TcpOptions::new();
        if self.ts_ok {
            o.timestamps = Some(Timestamps { tsval: self.ts_now(ctx), tsecr: self.ts_recent });
        }
        if self.sack_ok && !self.reass.is_empty() {
            let max = if self.ts_ok { 3 } else { 4 };
            let blocks: Vec<SackBlock> = self
                .reass
                .sack_blocks(self.rcv_nxt.0, max)
                .into_iter()
                .map(|(left, right)| SackBlock { left, right })
                .collect();
            o.sack_blocks = SackBlocks::from_slice(&blocks);
        }
        o
    }

    /// Builds a segment at `seq` with `data` and `flags` (ACK added),
    /// counts and queues it.
    pub(super) fn emit(&mut self, seq: SeqNum, flags: TcpFlags, data: Vec<u8>, rexmit: bool, ctx: &mut TcpCtx<'_>) {
        let flags = flags | TcpFlags::ACK;
        let wnd = self.advertise();
        let mut urgent = 0u16;
        let mut flags = flags;
        if let Some(up) = self.snd_up {
            if up.gt(seq) {
                let off = (up - seq) as u32;
                if off <= 65_535 {
                    urgent = off as u16;
                    flags |= TcpFlags::URG;
                }
            } else {
                self.snd_up = None;
            }
        }
        // More than one MSS of data: a large send for the link to cut.
        let lso_mss = (data.len() > self.snd_mss as usize).then_some(self.snd_mss.min(65_535) as u16);
        let seg = SegOut { seq, ack: self.rcv_nxt, flags, wnd, urgent, opts: self.seg_options(ctx), data, rexmit, lso_mss };
        seg.count(ctx.mib);
        ctx.out.push(seg);
        self.last_ack_sent = self.rcv_nxt;
        self.ack_now = false;
        self.dack_segs = 0;
        self.t_dack = None;
    }

    /// A pure ACK.
    pub(super) fn emit_ack(&mut self, ctx: &mut TcpCtx<'_>) {
        self.emit(self.snd_nxt, TcpFlags::empty(), Vec::new(), false, ctx);
    }

    /// A RST at `seq` (with ACK, as RFC 9293 3.10.7.4 answers in
    /// synchronized states).
    pub(super) fn emit_rst(&mut self, seq: SeqNum, ctx: &mut TcpCtx<'_>) {
        let seg = SegOut {
            seq,
            ack: self.rcv_nxt,
            flags: TcpFlags::RST | TcpFlags::ACK,
            wnd: 0,
            urgent: 0,
            opts: TcpOptions::new(),
            data: Vec::new(),
            rexmit: false,
            lso_mss: None,
        };
        seg.count(ctx.mib);
        ctx.out.push(seg);
    }

    /// A challenge ACK (RFC 5961), if the instance's limit allows.
    pub(super) fn challenge_ack(&mut self, ctx: &mut TcpCtx<'_>) {
        if ctx.challenge.allow(ctx.now_ms()) {
            bump(&ctx.mib.out_challenge_acks);
            self.emit_ack(ctx);
        } else {
            bump(&ctx.mib.challenge_ack_limited);
        }
    }

    /// Sends one data segment of up to `len` bytes from `seq` (a
    /// retransmission if `seq` is below SND.MAX; a large send if `len`
    /// is more than one MSS), with PSH if it empties the queue and the
    /// FIN if it reaches it. The one builder of data segments (new data,
    /// every retransmission, window probes). Returns the sequence space
    /// used.
    pub(super) fn send_segment(&mut self, seq: SeqNum, len: usize, ctx: &mut TcpCtx<'_>) -> usize {
        let off = (seq - self.snd_una).max(0) as usize;
        let data = self.sndbuf.copy(off, len);
        let n = data.len();
        let mut flags = TcpFlags::empty();
        let fin_at = self.fin_seq();
        let with_fin = fin_at.is_some_and(|f| f == seq + n);
        if with_fin {
            flags |= TcpFlags::FIN;
        }
        if n > 0 && off + n == self.sndbuf.len() {
            flags |= TcpFlags::PSH;
        }
        let rexmit = seq.lt(self.snd_max);
        let used = n + usize::from(with_fin);
        if !rexmit && self.rtt_seq.is_none() && used > 0 {
            self.rtt_seq = Some((seq + used, ctx.now_us));
        }
        if rexmit && self.rtt_seq.is_some_and(|(s, _)| (seq + used).ge(s) || seq.lt(s)) {
            // Karn: a retransmission in the timed range spoils the sample.
            self.rtt_seq = None;
        }
        self.emit(seq, flags, data, rexmit, ctx);
        let end = seq + used;
        if self.snd_max.lt(end) {
            self.snd_max = end;
        }
        if used > 0 {
            self.last_snd_ms = ctx.now_ms();
            if self.t_rexmit.is_none() {
                self.t_rexmit = Some(ctx.now_ms() + self.rto.rto_ms());
            }
            self.t_persist = None;
        }
        used
    }

    /// The data loop (see the module doc).
    fn send_data(&mut self, ctx: &mut TcpCtx<'_>) {
        if self.cc_idle_restart(ctx) {
            self.cc.on_idle_restart();
        }
        let mss = self.snd_mss as usize;
        for _ in 0..MAX_BURST {
            // SACK recovery: the pipe and NextSeg (RFC 6675 section 5).
            if self.in_recovery && self.sack_ok {
                let pipe = self.sb.pipe(self.snd_una, self.snd_max, self.high_rxt, self.snd_mss);
                if pipe.saturating_add(self.snd_mss) > self.cc.cwnd().max(self.snd_mss) && pipe > 0 {
                    break;
                }
                let have_new = self.unsent() > 0 || (self.fin_queued && !self.fin_sent());
                match self.sb.next_seg(self.snd_una, self.snd_max, self.high_rxt, self.snd_mss, have_new) {
                    Some(NextSeg::Rule1 { seq, len }) | Some(NextSeg::Rule3 { seq, len }) => {
                        let used = self.send_segment(seq, len as usize, ctx);
                        if used == 0 {
                            break;
                        }
                        bump(&ctx.mib.out_sack_retrans_segs);
                        if (seq + used).gt(self.high_rxt) {
                            self.high_rxt = seq + used;
                        }
                        continue;
                    }
                    Some(NextSeg::NewData) => {
                        if !self.send_new(mss, u32::MAX, ctx) {
                            break;
                        }
                        continue;
                    }
                    None => break,
                }
            }
            let cwnd = self.cc.cwnd().saturating_add(self.rec_inflate).saturating_add(self.limited_transmit());
            let room = cwnd.saturating_sub(self.flight());
            if !self.send_new(mss, room, ctx) {
                break;
            }
        }
        // Data waiting that the window does not let go (zero, or too
        // small for SWS avoidance with nothing in flight to bring an ACK):
        // the persist timer probes, or overrides SWS avoidance (RFC 9293
        // 3.8.6.2.1), or the conn would wait for a window update that may
        // have been lost.
        if self.unsent() > 0
            && self.t_persist.is_none()
            && self.snd_nxt == self.snd_max
            && (self.snd_wnd == 0 || self.snd_una == self.snd_max)
        {
            self.t_rexmit = None;
            self.arm_persist(ctx);
        }
    }

    /// Queued bytes not yet sent (from SND.NXT).
    pub(super) fn unsent(&self) -> usize {
        let off = (self.snd_nxt - self.snd_una).max(0) as usize;
        self.sndbuf.len().saturating_sub(off)
    }

    /// RFC 3042 limited transmit: a segment of new data for each of the
    /// first two duplicate ACKs.
    fn limited_transmit(&self) -> u32 {
        if !self.in_recovery && self.dupacks > 0 && self.dupacks < self.cfg.dupack_thresh {
            self.dupacks.min(2) * self.snd_mss
        } else {
            0
        }
    }

    /// RFC 5681 4.1: idle longer than an RTO with nothing in flight.
    fn cc_idle_restart(&self, ctx: &TcpCtx<'_>) -> bool {
        self.snd_una == self.snd_max
            && self.unsent() > 0
            && ctx.now_ms().saturating_sub(self.last_snd_ms) > self.rto.rto_ms()
            && self.last_snd_ms != 0
    }

    /// The link's large-send limit (its largest frame, headers included;
    /// `None`: no LSO). The instance sets it before each call, so a
    /// change of the link or of `_lso_outbound` applies at once.
    pub fn set_lso(&mut self, frame_max: Option<usize>) {
        // The IPv4 datagram is at most 65 535 bytes, after Ethernet's 14;
        // IP's 20 and TCP's 60 (options at most) come off it.
        self.lso_max = frame_max.map_or(0, |f| (f.saturating_sub(14).min(65_535).saturating_sub(80)) as u32);
    }

    /// The most data one segment may carry now: whole MSS multiples up
    /// to the large-send limit, or one MSS (no LSO, or urgent data, which
    /// is not cut by every device alike).
    pub(super) fn seg_max(&self) -> usize {
        let mss = self.snd_mss.max(1);
        if self.lso_max >= 2 * mss && self.snd_up.is_none() { (self.lso_max / mss * mss) as usize } else { mss as usize }
    }

    /// Bytes from `seq` (below SND.MAX) up to the next SACKed block or
    /// SND.MAX: what a large retransmission may cover.
    fn unsacked_run(&self, seq: SeqNum) -> usize {
        let mut end = self.snd_max;
        for (l, _) in self.sb.ranges() {
            if l.gt(seq) && l.lt(end) {
                end = l;
            }
        }
        (end - seq).max(0) as usize
    }

    /// Sends the next segment of new data (or the lone FIN) if the
    /// windows, Nagle and SWS avoidance allow; `room` is what cwnd leaves.
    fn send_new(&mut self, mss: usize, room: u32, ctx: &mut TcpCtx<'_>) -> bool {
        // Skip what the peer has SACKed past SND.NXT (after an RTO).
        while self.snd_nxt.lt(self.snd_max) && self.sb.is_sacked(self.snd_nxt, self.snd_mss) {
            self.snd_nxt += mss;
            if self.snd_nxt.gt(self.snd_max) {
                self.snd_nxt = self.snd_max;
            }
        }
        let avail = self.unsent();
        let fin_pending = self.fin_seq().is_some_and(|f| f.ge(self.snd_nxt));
        if avail == 0 && !fin_pending {
            return false;
        }
        let wnd_edge = self.snd_una + self.snd_wnd as usize;
        let wnd_room = (wnd_edge - self.snd_nxt).max(0) as usize;
        let mut len = avail.min(self.seg_max()).min(wnd_room).min(room as usize);
        if len > mss && self.snd_nxt.lt(self.snd_max) {
            // A large retransmission stops where the peer has data.
            len = len.min(self.unsacked_run(self.snd_nxt)).max(mss);
        }
        if avail > 0 && len == 0 {
            return false;
        }
        if len > mss {
            // Large: whole segments; the short tail only where it could
            // go alone (the last bytes, Nagle off or the FIN behind it).
            let tail = len % mss;
            if tail != 0 && !(len == avail && (self.cfg.nodelay || fin_pending)) {
                len -= tail;
            }
        } else if len < avail.min(mss) {
            // Sender SWS avoidance: a short segment only if it is at
            // least half the largest window the peer offered.
            if (len as u32) < self.max_snd_wnd / 2 || len == 0 {
                return false;
            }
        } else if len < mss
            && len == avail
            && !self.cfg.nodelay
            && self.snd_nxt != self.snd_una
            && !fin_pending
            && self.snd_up.is_none_or(|u| u.le(self.snd_nxt))
        {
            // Nagle: a small tail waits while data is unacknowledged
            // (urgent data does not wait, as in BSD).
            return false;
        }
        let seq = self.snd_nxt;
        let used = self.send_segment(seq, len, ctx);
        if used == 0 {
            return false;
        }
        self.snd_nxt = seq + used;
        true
    }

    /// Starts the persist timer (RTO-based, backed off, 60 s at most).
    pub(super) fn arm_persist(&mut self, ctx: &TcpCtx<'_>) {
        let base = self.rto.rto_ms().max(self.cfg.rto.min_ms);
        let iv = base.saturating_mul(1u64 << self.persist_shift.min(16)).min(self.cfg.rto.max_ms.max(base));
        self.t_persist = Some(ctx.now_ms() + iv);
    }
}
