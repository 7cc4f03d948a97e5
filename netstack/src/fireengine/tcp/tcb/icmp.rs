//! ICMP errors about a connection's segments (illumos `tcp_icmp_input`,
//! RFC 5927, RFC 1191, RFC 1122 4.2.3.9), run in the conn's squeue:
//!
//! * the quoted sequence number must lie in [SND.UNA, SND.MAX) — what we
//!   have sent and not had acknowledged (RFC 5927 4.1; SND.MAX rather than
//!   SND.NXT since ours goes back to SND.UNA after a timeout) — else the
//!   error is ignored (`tcpInIcmpOutOfWindow`);
//! * "fragmentation needed" with a PMTU (the instance has already applied
//!   the floor and the plateau guess): the MSS becomes PMTU − 40, never
//!   under `_mss_min`, less the options every segment carries
//!   (timestamps), as the handshake's MSS is; only a decrease is taken
//!   (`tcpPmtuDecreases`, else `tcpPmtuIgnored`). The congestion
//!   controller hears of the new segment size, and what is unacknowledged
//!   goes again at once in the smaller size — not a congestion signal:
//!   cwnd, ssthresh and the RTO are left alone;
//! * port or protocol unreachable in SYN_SENT ends the connect with
//!   ECONNREFUSED (`tcpIcmpConnRefused`); every other error, and those in
//!   other states, is soft (`tcpIcmpSoftErrors`): kept, and given to the
//!   user only if the connection later times out.

use super::{Tcb, TcpCtx};
use crate::fireengine::ip::mib::bump;
use crate::fireengine::tcp::seq::SeqNum;
use crate::fireengine::tcp::state::State;
use crate::stack::NetError;

/// IPv4 + TCP headers without options: PMTU − this is the MSS.
const IP_TCP_HDRS: u16 = 40;

/// An ICMP error as the TCB sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpNotice {
    /// Fragmentation needed: the path carries datagrams of `pmtu` bytes.
    FragNeeded {
        /// The PMTU (floor and plateau already applied).
        pmtu: u16,
    },
    /// Port or protocol unreachable.
    Refused,
    /// Any other unreachable or time exceeded, with the error it stands
    /// for.
    Soft(NetError),
}

impl Tcb {
    /// Takes ICMP error `n` about our segment at `seq` (see the module
    /// doc). Returns true if it cut the MSS (the instance then keeps the
    /// PMTU for the destination).
    pub fn icmp_error(&mut self, n: IcmpNotice, seq: SeqNum, ctx: &mut TcpCtx<'_>) -> bool {
        bump(&ctx.mib.in_icmp_errors);
        if matches!(self.state, State::Closed | State::Listen | State::TimeWait)
            || seq.lt(self.snd_una)
            || seq.ge(self.snd_max)
        {
            bump(&ctx.mib.in_icmp_out_of_window);
            return false;
        }
        match n {
            IcmpNotice::FragNeeded { pmtu } => self.pmtu_decrease(pmtu, ctx),
            IcmpNotice::Refused if self.state == State::SynSent => {
                bump(&ctx.mib.icmp_refused);
                self.drop_with(NetError::ConnectionRefused, ctx);
                false
            }
            IcmpNotice::Refused => {
                bump(&ctx.mib.icmp_soft_errors);
                self.soft_error = Some(NetError::ConnectionRefused);
                false
            }
            IcmpNotice::Soft(e) => {
                bump(&ctx.mib.icmp_soft_errors);
                self.soft_error = Some(e);
                false
            }
        }
    }

    /// Caps the MSS at what a PMTU of `pmtu` carries, for a new conn (a
    /// cached PMTU): applied now and to the MSS the handshake settles.
    pub fn set_path_mtu(&mut self, pmtu: u16) {
        let base = self.path_base(pmtu);
        self.pmtu_mss = self.pmtu_mss.min(base);
        let mss = self.snd_mss.min(self.path_mss(base));
        if mss < self.snd_mss {
            self.snd_mss = mss;
            self.cc.set_mss(mss);
        }
    }

    /// The data bytes per segment a base MSS (PMTU − 40) leaves after the
    /// options every segment carries.
    fn path_mss(&self, base: u32) -> u32 {
        base.saturating_sub(if self.ts_ok { 12 } else { 0 }).max(1)
    }

    /// The MSS before options a PMTU gives: PMTU − 40, at least
    /// `_mss_min`.
    fn path_base(&self, pmtu: u16) -> u32 {
        u32::from(pmtu.saturating_sub(IP_TCP_HDRS).max(self.cfg.mss_min)).max(1)
    }

    fn pmtu_decrease(&mut self, pmtu: u16, ctx: &mut TcpCtx<'_>) -> bool {
        let base = self.path_base(pmtu);
        let mss = self.path_mss(base);
        if mss >= self.snd_mss {
            bump(&ctx.mib.pmtu_ignored);
            return false;
        }
        bump(&ctx.mib.pmtu_decreases);
        self.pmtu_mss = self.pmtu_mss.min(base);
        self.snd_mss = mss;
        self.cc.set_mss(mss);
        if self.state.synchronized() && self.snd_una != self.snd_max {
            // RFC 1191: the dropped segment is sent again, now, smaller.
            // Karn: no RTT sample from what is resent.
            self.rtt_seq = None;
            if self.in_recovery && self.sack_ok {
                self.high_rxt = self.snd_una;
            } else {
                self.snd_nxt = self.snd_una;
            }
            self.output(ctx);
        }
        true
    }
}
