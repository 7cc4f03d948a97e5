//! SEGMENT ARRIVES (RFC 9293 section 3.10.7.3 for SYN_SENT, 3.10.7.4 for
//! the rest), with:
//!
//! * RFC 7323: PAWS (an older TSval is dropped and answered with an ACK)
//!   and TS.Recent kept by the rule of section 4.3; a segment without
//!   timestamps on a conn that has them is accepted, as Linux and illumos
//!   do (RFC 7323's SHOULD-drop would strand a peer's bare RSTs' kin).
//! * RFC 5961: a RST must sit exactly at RCV.NXT to reset; one elsewhere
//!   in the window draws a challenge ACK (section 3.2). Any SYN on a
//!   synchronized conn draws a challenge ACK (section 4.2). An ACK below
//!   SND.UNA − MAX.SND.WND or above SND.MAX is answered and dropped
//!   (section 5.2). Challenge ACKs are rate limited per instance.
//! * Out-of-window segments are answered with an ACK (the peer's lost-ACK
//!   recovery needs it), those past the right edge under the same limit.
//!   A zero window still takes a probe's ACK, RST and URG, and answers it.
//! * ACK processing: the send window (SND.WL1/WL2), RTT samples (the
//!   timed segment, Karn's rule; or RFC 7323 RTTM), congestion control,
//!   duplicate ACKs (RFC 5681's definition) into fast retransmit with
//!   NewReno's partial ACKs (RFC 6582) or, with SACK, the scoreboard
//!   (RFC 6675), limited transmit (RFC 3042).
//! * Receive: in-order bytes straight into the receive queue, the rest
//!   through the out-of-order queue ([`RcvReass`](crate::fireengine::tcp_conn::rcv_reass::RcvReass));
//!   delayed ACKs as illumos does them (every `_deferred_acks_max`
//!   segments, or after `_deferred_ack_interval`; at once for anything
//!   out of order, a filled hole or a FIN).

use super::{Tcb, TcpCtx};
use crate::fireengine::ip::mib::{bump, bump_by};
use crate::fireengine::tcp::segment::SegIn;
use crate::fireengine::tcp::seq::SeqNum;
use crate::fireengine::tcp::state::State;
use crate::fireengine::tcp_conn::rcv_reass::{RcvInsert, RcvOutcome};
use crate::fireengine::wire::tcp::TcpFlags;
use crate::stack::NetError;
use alloc::vec::Vec;

/// PAWS does not apply to a TS.Recent older than 24 days (RFC 7323 5.5).
const PAWS_IDLE_MS: u64 = 24 * 24 * 3600 * 1000;

impl Tcb {
    /// Processes one segment for this conn (the instance found it by its
    /// 4-tuple; a SYN to a listener goes to [`Tcb::accept`] instead).
    pub fn input(&mut self, seg: &SegIn<'_>, ctx: &mut TcpCtx<'_>) {
        match self.state {
            State::Closed | State::Listen => return,
            State::SynSent => {
                self.input_syn_sent(seg, ctx);
                return;
            }
            _ => {}
        }
        let now = ctx.now_ms();
        let rst = seg.has(TcpFlags::RST);

        // PAWS (RFC 7323 5.3 R1).
        if self.ts_ok && !rst {
            if let Some(ts) = seg.opts.timestamps {
                if (ts.tsval.wrapping_sub(self.ts_recent) as i32) < 0
                    && now.saturating_sub(self.ts_recent_ms) < PAWS_IDLE_MS
                {
                    bump(&ctx.mib.in_paws_drops);
                    self.ack_now = true;
                    self.output(ctx);
                    return;
                }
            }
        }

        // Sequence acceptability (RFC 9293 3.10.7.4, first check).
        let wnd = (self.rcv_adv - self.rcv_nxt).max(0) as usize;
        let len = seg.len();
        let acceptable = if len == 0 {
            if wnd == 0 { seg.seq == self.rcv_nxt } else { seg.seq.in_window(self.rcv_nxt, wnd) }
        } else {
            wnd > 0 && (seg.seq.in_window(self.rcv_nxt, wnd) || (seg.seq + (len - 1)).in_window(self.rcv_nxt, wnd))
        };
        // A zero window takes a segment at RCV.NXT for its ACK, RST and
        // URG only (a zero-window probe).
        let probe = !acceptable && wnd == 0 && seg.seq == self.rcv_nxt;
        if !acceptable && !probe {
            if seg.seq.lt(self.rcv_nxt) {
                bump(&ctx.mib.in_dup_segs);
                bump_by(&ctx.mib.in_dup_bytes, seg.data.len() as u64);
                if !rst {
                    self.ack_now = true;
                    self.output(ctx);
                }
            } else {
                bump(&ctx.mib.in_past_win_segs);
                bump_by(&ctx.mib.in_past_win_bytes, seg.data.len() as u64);
                if !rst {
                    self.challenge_ack(ctx);
                }
            }
            return;
        }

        // RST (RFC 5961 3.2).
        if rst {
            if seg.seq == self.rcv_nxt {
                match self.state {
                    State::SynRcvd if self.passive => {
                        bump(&ctx.mib.attempt_fails);
                        self.error = Some(NetError::ConnectionRefused);
                        self.set_state(State::Closed, ctx);
                    }
                    State::Closing | State::LastAck | State::TimeWait => self.set_state(State::Closed, ctx),
                    _ => self.drop_with(NetError::ConnectionReset, ctx),
                }
            } else {
                self.challenge_ack(ctx);
            }
            return;
        }

        // SYN (RFC 5961 4.2).
        if seg.has(TcpFlags::SYN) {
            if self.state == State::SynRcvd && seg.seq == self.irs && !seg.has(TcpFlags::ACK) {
                // The peer retransmitted its SYN: our SYN-ACK was lost.
                self.snd_nxt = self.iss;
                self.output(ctx);
            } else {
                self.challenge_ack(ctx);
            }
            return;
        }

        if !seg.has(TcpFlags::ACK) {
            return;
        }

        // TS.Recent (RFC 7323 4.3).
        if self.ts_ok {
            if let Some(ts) = seg.opts.timestamps {
                if seg.seq.le(self.last_ack_sent) && (ts.tsval.wrapping_sub(self.ts_recent) as i32) >= 0 {
                    self.ts_recent = ts.tsval;
                    self.ts_recent_ms = now;
                }
            }
        }

        self.last_rcv_ms = now;
        self.keep_probes = 0;
        if self.cfg.keepalive {
            self.t_keep = Some(now + self.cfg.keepalive_ms);
        }

        if self.state == State::SynRcvd {
            if seg.ack.gt(self.snd_una) && seg.ack.le(self.snd_max) {
                // A shutdown in SYN_RCVD queued the FIN: FIN_WAIT_1.
                self.set_state(if self.fin_queued { State::FinWait1 } else { State::Established }, ctx);
                self.events.established = true;
                // The window of this ACK is taken as the first scaled one.
                self.snd_wl1 = seg.seq - 1;
            } else {
                self.emit_rst_to(seg.ack, ctx);
                return;
            }
        }

        if !self.process_ack(seg, ctx) {
            return;
        }
        if self.state == State::Closed {
            return;
        }

        if probe {
            bump(&ctx.mib.in_win_probe);
            self.ack_now = true;
            self.output(ctx);
            return;
        }

        // URG (RFC 9293 3.8.5): remember the pointer.
        if seg.has(TcpFlags::URG) && self.state.can_receive() {
            let up = seg.seq + usize::from(seg.urgent);
            if up.gt(self.rcv_nxt) && self.rcv_up.is_none_or(|u| up.gt(u)) {
                self.rcv_up = Some(up);
                self.urg_seen += 1;
                self.events.readable = true;
            }
        }

        // Text and FIN.
        if !seg.data.is_empty() || seg.has(TcpFlags::FIN) {
            self.receive(seg, ctx);
        }
        if self.state != State::Closed {
            self.output(ctx);
        }
    }

    /// A RST for an unacceptable ACK in SYN_RCVD/SYN_SENT:
    /// `<SEQ=SEG.ACK><CTL=RST>`.
    fn emit_rst_to(&mut self, seq: SeqNum, ctx: &mut TcpCtx<'_>) {
        let seg = crate::fireengine::tcp::segment::SegOut {
            seq,
            ack: SeqNum(0),
            flags: TcpFlags::RST,
            wnd: 0,
            urgent: 0,
            opts: crate::fireengine::wire::tcp::TcpOptions::new(),
            data: Vec::new(),
            rexmit: false,
            lso_mss: None,
        };
        seg.count(ctx.mib);
        ctx.out.push(seg);
    }

    fn input_syn_sent(&mut self, seg: &SegIn<'_>, ctx: &mut TcpCtx<'_>) {
        let ack_ok = seg.has(TcpFlags::ACK) && seg.ack.gt(self.iss) && seg.ack.le(self.snd_max);
        if seg.has(TcpFlags::ACK) && !ack_ok {
            if !seg.has(TcpFlags::RST) {
                self.emit_rst_to(seg.ack, ctx);
            }
            return;
        }
        if seg.has(TcpFlags::RST) {
            if ack_ok {
                self.drop_with(NetError::ConnectionRefused, ctx);
            }
            return;
        }
        if !seg.has(TcpFlags::SYN) {
            return;
        }
        let now = ctx.now_ms();
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.take_syn_options(seg);
        if let (true, Some(ts)) = (self.ts_ok, seg.opts.timestamps) {
            self.ts_recent = ts.tsval;
            self.ts_recent_ms = now;
        }
        self.last_rcv_ms = now;
        if ack_ok {
            self.snd_una = seg.ack;
            self.syn_acked = true;
            if self.snd_nxt.lt(self.snd_una) {
                self.snd_nxt = self.snd_una;
            }
            self.snd_wnd = u32::from(seg.wnd);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            self.rtt_sample_on_ack(seg, ctx);
            if self.rto.backoffs() > 0 {
                self.rto.syn_retransmitted();
            }
            self.rto.reset_backoff();
            self.t_rexmit = None;
            self.rexmit_since_ms = None;
            self.set_state(State::Established, ctx);
            self.events.established = true;
            self.events.writable = true;
            if self.cfg.keepalive {
                self.t_keep = Some(now + self.cfg.keepalive_ms);
            }
            self.ack_now = true;
            // Data on a SYN-ACK is rare; it is taken like any other.
            if !seg.data.is_empty() || seg.has(TcpFlags::FIN) {
                let rest = SegIn { seq: seg.seq + 1, flags: seg.flags.without(TcpFlags::SYN), ..*seg };
                self.receive(&rest, ctx);
            }
            self.output(ctx);
        } else {
            // Simultaneous open: our SYN again, now as a SYN-ACK.
            self.snd_wnd = u32::from(seg.wnd);
            self.snd_wl1 = seg.seq;
            self.state = State::SynRcvd;
            self.snd_nxt = self.iss;
            self.output(ctx);
        }
    }

    /// An RTT sample from this ACK, if it gives one.
    fn rtt_sample_on_ack(&mut self, seg: &SegIn<'_>, ctx: &TcpCtx<'_>) {
        if let Some((s, t0)) = self.rtt_seq {
            if seg.ack.ge(s) {
                self.rto.sample(ctx.now_us.saturating_sub(t0));
                self.rtt_seq = None;
                bump(&ctx.mib.rtt_update);
                return;
            }
        }
        if self.ts_ok {
            if let Some(ts) = seg.opts.timestamps.filter(|t| t.tsecr != 0) {
                let d = self.ts_now(ctx).wrapping_sub(ts.tsecr) as i32;
                if d >= 0 {
                    self.rto.sample(d as u64 * 1000);
                    bump(&ctx.mib.rtt_update);
                    return;
                }
            }
        }
        bump(&ctx.mib.rtt_no_update);
    }

    /// ACK processing; false if the segment is to be dropped here.
    fn process_ack(&mut self, seg: &SegIn<'_>, ctx: &mut TcpCtx<'_>) -> bool {
        let ack = seg.ack;
        if ack.gt(self.snd_max) {
            bump(&ctx.mib.in_ack_unsent);
            self.challenge_ack(ctx);
            return false;
        }
        let floor = self.snd_una - (self.max_snd_wnd.max(self.snd_mss) as usize);
        if ack.lt(floor) {
            self.challenge_ack(ctx);
            return false;
        }
        let now_us = ctx.now_us;
        let old_wnd = self.snd_wnd;
        // The send window (RFC 9293 3.10.7.4, fifth check).
        if self.snd_wl1.lt(seg.seq) || (self.snd_wl1 == seg.seq && self.snd_wl2.le(ack)) {
            let w = u32::from(seg.wnd) << self.snd_wscale;
            if w > self.snd_wnd && ack == self.snd_una && seg.data.is_empty() {
                bump(&ctx.mib.in_win_update);
            }
            self.snd_wnd = w;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(w);
            if w > 0 && self.t_persist.is_some() {
                self.t_persist = None;
                self.persist_shift = 0;
                // What the probes sent past SEG.ACK was not taken (the
                // window was closed): send it again with what follows,
                // at once, rather than after a loss is detected.
                if ack.ge(self.snd_una) {
                    self.snd_nxt = ack;
                    self.t_rexmit = (ack != self.snd_max).then(|| ctx.now_ms() + self.rto.rto_ms());
                }
            }
        }

        let newly_sacked = if self.sack_ok {
            let blocks: Vec<(SeqNum, SeqNum)> =
                seg.opts.sack_blocks.as_slice().iter().map(|b| (SeqNum(b.left), SeqNum(b.right))).collect();
            let una = if ack.gt(self.snd_una) { ack } else { self.snd_una };
            self.sb.update(una, self.snd_max, &blocks).newly_sacked
        } else {
            0
        };

        if ack.gt(self.snd_una) {
            let flight_before = (self.snd_max - self.snd_una).max(0) as u32;
            let acked = (ack - self.snd_una) as usize;
            let mut data_acked = acked;
            if !self.syn_acked {
                data_acked = data_acked.saturating_sub(1);
                self.syn_acked = true;
            }
            let fin_acked = self.fin_seq().is_some_and(|f| ack.gt(f));
            if fin_acked {
                data_acked = data_acked.saturating_sub(1);
            }
            self.sndbuf.ack(data_acked);
            self.acked_out = self.acked_out.saturating_add(data_acked);
            self.snd_una = ack;
            if self.snd_nxt.lt(self.snd_una) {
                self.snd_nxt = self.snd_una;
            }
            if self.high_rxt.lt(self.snd_una) {
                self.high_rxt = self.snd_una;
            }
            bump(&ctx.mib.in_ack_segs);
            bump_by(&ctx.mib.in_ack_bytes, acked as u64);
            self.rtt_sample_on_ack(seg, ctx);
            self.rto.reset_backoff();
            self.rto_series = false;
            self.rexmit_since_ms = None;
            if self.in_recovery {
                if ack.ge(self.recover) {
                    self.in_recovery = false;
                    self.rec_inflate = 0;
                    self.dupacks = 0;
                    let flight = (self.snd_max - self.snd_una).max(0) as u32;
                    self.cc.on_recovery_end(flight);
                } else if !self.sack_ok {
                    // NewReno partial ACK: deflate, resend the next hole.
                    self.rec_inflate = self.rec_inflate.saturating_sub(acked as u32).saturating_add(self.snd_mss);
                    self.retransmit_head(ctx);
                }
            } else {
                self.dupacks = 0;
                let cwnd_limited = flight_before.saturating_add(self.snd_mss) >= self.cc.cwnd();
                self.cc.on_ack(acked as u32, now_us, self.rto.srtt_us(), cwnd_limited);
            }
            if self.snd_una == self.snd_max {
                self.t_rexmit = None;
            } else if self.t_persist.is_none() {
                self.t_rexmit = Some(ctx.now_ms() + self.rto.rto_ms());
            }
            if self.sndbuf.space() > 0 {
                self.events.writable = true;
            }
            if fin_acked {
                match self.state {
                    State::FinWait1 => {
                        self.set_state(State::FinWait2, ctx);
                        if self.orphan {
                            self.t_close = Some(ctx.now_ms() + self.cfg.fin_wait_2_ms);
                        }
                    }
                    State::Closing => self.enter_time_wait(ctx),
                    State::LastAck => {
                        self.set_state(State::Closed, ctx);
                        return false;
                    }
                    _ => {}
                }
            }
        } else if ack == self.snd_una {
            // RFC 5681's duplicate ACK (or, with SACK, one that SACKs
            // something new). The answers to zero-window probes are not
            // (nothing was lost: the window is closed), as in BSD.
            let dup = self.snd_una != self.snd_max
                && self.t_persist.is_none()
                && self.snd_wnd > 0
                && seg.data.is_empty()
                && !seg.has(TcpFlags::FIN)
                && (u32::from(seg.wnd) << self.snd_wscale == old_wnd || newly_sacked > 0);
            if dup {
                self.dupacks = self.dupacks.saturating_add(1);
                bump(&ctx.mib.in_dup_ack);
                if !self.in_recovery {
                    let lost = self.dupacks >= self.cfg.dupack_thresh
                        || (self.sack_ok && self.sb.is_lost(self.snd_una, self.snd_mss));
                    if lost && self.snd_una.ge(self.recover) {
                        self.enter_recovery(ctx);
                    }
                } else if !self.sack_ok {
                    self.rec_inflate = self.rec_inflate.saturating_add(self.snd_mss);
                }
            }
        }
        true
    }

    /// Fast retransmit (RFC 5681 3.2, RFC 6582, RFC 6675 5 step 4).
    fn enter_recovery(&mut self, ctx: &mut TcpCtx<'_>) {
        let flight = if self.sack_ok {
            self.sb.pipe(self.snd_una, self.snd_max, self.snd_una, self.snd_mss)
        } else {
            (self.snd_max - self.snd_una).max(0) as u32
        };
        self.in_recovery = true;
        self.recover = self.snd_max;
        self.high_rxt = self.snd_una;
        let flight = self.cc.in_use(flight.max(self.snd_mss));
        self.cc.on_loss(flight, ctx.now_us);
        self.rec_inflate = if self.sack_ok { 0 } else { self.cfg.dupack_thresh.saturating_mul(self.snd_mss) };
        bump(&ctx.mib.out_fast_retrans);
        self.retransmit_head(ctx);
    }

    /// Resends the first unacknowledged segment.
    fn retransmit_head(&mut self, ctx: &mut TcpCtx<'_>) {
        let end = self.snd_max;
        let len = ((end - self.snd_una).max(0) as u32).min(self.snd_mss) as usize;
        if len == 0 {
            return;
        }
        let saved = self.snd_nxt;
        let used = self.send_segment(self.snd_una, len, ctx);
        if (self.snd_una + used).gt(self.high_rxt) {
            self.high_rxt = self.snd_una + used;
        }
        self.snd_nxt = saved.max(self.snd_una + used);
        self.t_rexmit = Some(ctx.now_ms() + self.rto.rto_ms());
    }

    /// Moves to TIME_WAIT for `_time_wait_interval`.
    pub(super) fn enter_time_wait(&mut self, ctx: &TcpCtx<'_>) {
        self.set_state(State::TimeWait, ctx);
        self.t_rexmit = None;
        self.t_persist = None;
        self.t_keep = None;
        self.t_dack = None;
        self.t_close = Some(ctx.now_ms() + self.cfg.time_wait_ms);
        self.sndbuf.clear();
        self.reass.clear();
    }

    /// Takes a segment's data and FIN (sequence already found acceptable).
    fn receive(&mut self, seg: &SegIn<'_>, ctx: &mut TcpCtx<'_>) {
        if !self.state.can_receive() {
            // The peer's FIN came already: a retransmission of it (or
            // data after it). Answer; TIME_WAIT starts over.
            self.ack_now = true;
            if self.state == State::TimeWait {
                self.t_close = Some(ctx.now_ms() + self.cfg.time_wait_ms);
            }
            return;
        }
        if self.orphan && !seg.data.is_empty() {
            // Nobody will read this: reset (RFC 9293 3.10.4, as Linux).
            self.emit_rst(self.snd_max, ctx);
            self.drop_with(NetError::ConnectionReset, ctx);
            return;
        }
        let wnd = (self.rcv_adv - self.rcv_nxt).max(0) as u32;
        let fin = seg.has(TcpFlags::FIN);
        let mut got_fin = false;
        let mut in_order = 0usize;
        if seg.seq == self.rcv_nxt && self.reass.is_empty() {
            let take = seg.data.len().min(wnd as usize);
            self.rcvbuf.extend(&seg.data[..take]);
            self.rcv_nxt += take;
            in_order = take;
            if take > 0 {
                bump(&ctx.mib.in_inorder_segs);
                bump_by(&ctx.mib.in_inorder_bytes, take as u64);
            }
            if take < seg.data.len() {
                bump(&ctx.mib.in_past_win_segs);
                bump_by(&ctx.mib.in_past_win_bytes, (seg.data.len() - take) as u64);
            } else if fin {
                got_fin = true;
                self.rcv_nxt += 1;
            }
        } else {
            let r = self.reass.insert(seg.seq.0, seg.data, fin, self.rcv_nxt.0, wnd);
            count_insert(&r, ctx);
            self.ack_now = true;
            // Everything held lies inside the window we advertised (the
            // queue trimmed it at the right edge): take it all, even past
            // what the buffer has room for now, or bytes at RCV.NXT would
            // wait for the next segment to be taken.
            if let Some(io) = self.reass.take_in_order_max(self.rcv_nxt.0, usize::MAX) {
                in_order = io.data.len();
                self.rcvbuf.extend(io.data);
                self.rcv_nxt = SeqNum(io.rcv_nxt);
                got_fin = io.fin;
            }
        }
        if in_order > 0 {
            self.events.readable = true;
            // A large receive (coalesced by the device) counts as the
            // full-sized segments it holds: two or more are ACKed at once.
            let rcv_mss = u32::from(self.cfg.mss_local).saturating_sub(if self.ts_ok { 12 } else { 0 }).max(1);
            if seg.data.len() > rcv_mss as usize {
                bump(&ctx.mib.in_large_segs);
            }
            self.dack_segs += (in_order as u32 / rcv_mss).max(1);
            if self.dack_segs >= self.cfg.dacks_max {
                self.ack_now = true;
            } else if self.t_dack.is_none() {
                self.t_dack = Some(ctx.now_ms() + self.cfg.dack_interval_ms);
            }
        }
        if let Some(up) = self.rcv_up {
            if self.rcv_nxt.ge(up) && self.rcvbuf.is_empty() {
                self.rcv_up = None;
            }
        }
        if got_fin {
            self.fin_rcvd = true;
            self.ack_now = true;
            self.events.readable = true;
            match self.state {
                State::SynRcvd | State::Established => self.set_state(State::CloseWait, ctx),
                State::FinWait1 => {
                    if self.fin_sent() && self.snd_una == self.snd_max {
                        self.enter_time_wait(ctx);
                    } else {
                        self.set_state(State::Closing, ctx);
                    }
                }
                State::FinWait2 => self.enter_time_wait(ctx),
                _ => {}
            }
        }
    }
}

/// The MIB counters of one out-of-order insertion.
fn count_insert(r: &RcvInsert, ctx: &TcpCtx<'_>) {
    let m = ctx.mib;
    if r.new_bytes > 0 {
        if r.in_order {
            bump(&m.in_inorder_segs);
            bump_by(&m.in_inorder_bytes, r.new_bytes as u64);
        } else {
            bump(&m.in_unorder_segs);
            bump_by(&m.in_unorder_bytes, r.new_bytes as u64);
        }
        if r.dup_bytes > 0 {
            bump(&m.in_part_dup_segs);
            bump_by(&m.in_part_dup_bytes, r.dup_bytes as u64);
        }
    } else if r.outcome == RcvOutcome::Duplicate {
        bump(&m.in_dup_segs);
        bump_by(&m.in_dup_bytes, r.dup_bytes as u64);
    }
    if r.past_window_bytes > 0 {
        bump(&m.in_past_win_segs);
        bump_by(&m.in_past_win_bytes, r.past_window_bytes as u64);
    }
}
