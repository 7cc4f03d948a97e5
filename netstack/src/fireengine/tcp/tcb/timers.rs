//! A connection's timers, each an absolute deadline in ms that the
//! instance arms in its timer wheel and fires into the conn's squeue:
//!
//! * retransmit (RFC 6298 5.4–5.7): go back to SND.UNA, back off the RTO,
//!   cut the window (only the first RTO of a series cuts ssthresh); give
//!   up after `_ip_abort_cinterval` for a SYN, `_ip_abort_interval` for
//!   data (`tcpTimRetransDrop`, ETIMEDOUT, or the soft ICMP error heard
//!   meanwhile);
//! * persist (RFC 9293 3.8.6.1): a zero window is probed with one byte of
//!   new data (or the probe byte again), backed off to 60 s; it never
//!   gives up while the peer answers;
//! * delayed ACK (`_deferred_ack_interval`);
//! * keepalive (RFC 9293 3.8.4, `SO_KEEPALIVE`): after
//!   `_keepalive_interval` idle, probes `<SEQ=SND.UNA−1>` backed off by
//!   the RTO until `_keepalive_abort_interval` passes unanswered;
//! * TIME_WAIT (`_time_wait_interval`) and an orphan's FIN_WAIT_2
//!   (`_fin_wait_2_flush_interval`): the conn is closed.

use super::{Tcb, TcpCtx};
use crate::fireengine::ip::mib::bump;
use crate::fireengine::tcp::state::State;
use crate::fireengine::wire::tcp::TcpFlags;
use crate::stack::NetError;
use alloc::vec::Vec;

impl Tcb {
    /// The earliest armed deadline (ms), if any.
    pub fn next_deadline(&self) -> Option<u64> {
        [self.t_rexmit, self.t_persist, self.t_dack, self.t_keep, self.t_close].into_iter().flatten().min()
    }

    /// Runs every timer due at `ctx`'s time.
    pub fn on_timer(&mut self, ctx: &mut TcpCtx<'_>) {
        let now = ctx.now_ms();
        if self.t_close.is_some_and(|t| t <= now) {
            self.t_close = None;
            if matches!(self.state, State::TimeWait | State::FinWait2) {
                self.set_state(State::Closed, ctx);
                return;
            }
        }
        if self.t_rexmit.is_some_and(|t| t <= now) {
            self.t_rexmit = None;
            self.rexmit_timeout(ctx);
            if self.state == State::Closed {
                return;
            }
        }
        if self.t_persist.is_some_and(|t| t <= now) {
            self.t_persist = None;
            self.persist_timeout(ctx);
        }
        if self.t_keep.is_some_and(|t| t <= now) {
            self.t_keep = None;
            self.keepalive_timeout(ctx);
            if self.state == State::Closed {
                return;
            }
        }
        if self.t_dack.is_some_and(|t| t <= now) {
            self.t_dack = None;
            if self.dack_segs > 0 || self.ack_now {
                bump(&ctx.mib.out_ack_delayed);
                self.ack_now = true;
                self.output(ctx);
            }
        }
    }

    fn rexmit_timeout(&mut self, ctx: &mut TcpCtx<'_>) {
        let now = ctx.now_ms();
        if self.snd_una == self.snd_max && !matches!(self.state, State::SynSent | State::SynRcvd) {
            return;
        }
        bump(&ctx.mib.tim_retrans);
        let since = *self.rexmit_since_ms.get_or_insert(now);
        let limit = if self.state.synchronized() { self.cfg.abort_ms } else { self.cfg.abort_conn_ms };
        if now.saturating_sub(since) >= limit {
            bump(&ctx.mib.tim_retrans_drop);
            if self.state.synchronized() || self.state == State::SynRcvd {
                self.emit_rst(self.snd_max, ctx);
            }
            // A soft ICMP error heard meanwhile says why (RFC 1122
            // 4.2.3.9, illumos' `tcp_client_errno`).
            self.drop_with(self.soft_error.unwrap_or(NetError::TimedOut), ctx);
            return;
        }
        self.rto.backoff();
        self.rtt_seq = None;
        if matches!(self.state, State::SynSent | State::SynRcvd) {
            self.events.synack_rexmit |= self.state == State::SynRcvd;
            self.snd_nxt = self.iss;
            self.output(ctx);
            return;
        }
        let flight = self.cc.in_use((self.snd_max - self.snd_una).max(0) as u32);
        self.cc.on_rto(flight, !self.rto_series, ctx.now_us);
        self.rto_series = true;
        self.in_recovery = false;
        self.rec_inflate = 0;
        self.dupacks = 0;
        // No fast retransmit until what was sent before the RTO is
        // acknowledged (RFC 6582 section 3.2 step 4 after a timeout).
        self.recover = self.snd_max;
        self.high_rxt = self.snd_una;
        // Go back to SND.UNA (RFC 6298 5.4): resend the first segment now,
        // the rest as the window reopens.
        self.snd_nxt = self.snd_una;
        self.output(ctx);
        if self.snd_wnd == 0 && self.snd_nxt == self.snd_una {
            // Nothing may go into a zero window: probe it instead (the
            // persist timer never gives up while the peer answers).
            self.t_rexmit = None;
            if self.t_persist.is_none() {
                self.arm_persist(ctx);
            }
            return;
        }
        if self.t_rexmit.is_none() && self.snd_una != self.snd_max {
            self.t_rexmit = Some(now + self.rto.rto_ms());
        }
    }

    fn persist_timeout(&mut self, ctx: &mut TcpCtx<'_>) {
        if !self.state.synchronized() {
            self.persist_shift = 0;
            return;
        }
        let fin_only = self.unsent() == 0 && self.snd_nxt == self.snd_una;
        if self.sndbuf.is_empty() && fin_only {
            return;
        }
        let room = ((self.snd_una + self.snd_wnd as usize) - self.snd_nxt).max(0) as usize;
        if room > 0 && self.unsent() > 0 {
            // A window too small for SWS avoidance: the override timeout
            // sends what fits (RFC 9293 3.8.6.2.1).
            let len = room.min(self.unsent()).min(self.snd_mss as usize);
            let seq = self.snd_nxt;
            let used = self.send_segment(seq, len, ctx);
            self.snd_nxt = seq + used;
            self.persist_shift = 0;
            return;
        }
        bump(&ctx.mib.out_win_probe);
        if self.snd_nxt != self.snd_una {
            // The last probe byte is still unacknowledged: send it again.
            let seq = self.snd_una;
            self.send_segment(seq, 1, ctx);
        } else {
            let seq = self.snd_nxt;
            let used = self.send_segment(seq, 1, ctx);
            self.snd_nxt = seq + used;
        }
        // The persist timer, not the retransmission timer, watches a probe.
        self.t_rexmit = None;
        self.persist_shift = self.persist_shift.saturating_add(1);
        self.arm_persist(ctx);
    }

    fn keepalive_timeout(&mut self, ctx: &mut TcpCtx<'_>) {
        bump(&ctx.mib.tim_keepalive);
        if !self.cfg.keepalive || !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        let now = ctx.now_ms();
        let idle = now.saturating_sub(self.last_rcv_ms);
        if idle < self.cfg.keepalive_ms {
            self.t_keep = Some(self.last_rcv_ms + self.cfg.keepalive_ms);
            return;
        }
        if self.keep_probes > 0 && idle >= self.cfg.keepalive_ms.saturating_add(self.cfg.keepalive_abort_ms) {
            bump(&ctx.mib.tim_keepalive_drop);
            self.emit_rst(self.snd_max, ctx);
            self.drop_with(NetError::TimedOut, ctx);
            return;
        }
        bump(&ctx.mib.tim_keepalive_probe);
        self.keep_probes += 1;
        // <SEQ=SND.UNA-1><ACK=RCV.NXT>, no data: the peer must answer.
        let seq = self.snd_una - 1;
        self.emit(seq, TcpFlags::empty(), Vec::new(), false, ctx);
        let base = self.rto.rto_ms().max(1000);
        let iv = base.saturating_mul(1u64 << self.keep_probes.min(6)).min(self.cfg.keepalive_abort_ms.max(base));
        // The last check falls when the abort interval ends, not at the
        // next backed-off probe after it.
        let give_up = self.last_rcv_ms.saturating_add(self.cfg.keepalive_ms).saturating_add(self.cfg.keepalive_abort_ms);
        self.t_keep = Some(now.saturating_add(iv).min(give_up.max(now + 1)));
    }
}
