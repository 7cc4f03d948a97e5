//! TCP fusion (illumos `tcp_fusion.c`; FIREENGINE.md section 4): two
//! conns of this instance, connected to each other over the loopback,
//! become a pair whose data skips TCP and IP altogether.
//!
//! * **When**: tried after every TCB visit of an ESTABLISHED loopback
//!   conn until decided, so in practice as the eager completes its
//!   handshake. The peer is the conn of the reversed 4-tuple. Both must
//!   be on one squeue (a loopback eager is given its active side's, see
//!   `tcp_listen_syn`), one the active and one the passive opener (a
//!   simultaneous open, or a conn to itself, is never fused), and both
//!   quiet ([`Tcb::fusion_quiet`]: nothing unsent or unacknowledged, no
//!   urgent data, nothing out of order); a pair that is not quiet yet is
//!   tried again on a later visit. `do_tcp_fusion` 0 leaves every pair
//!   unfused (`tcpFusionDisabled`); one that cannot qualify is counted in
//!   `tcpFusionUnqualified`; a fused one in `tcpFusionFused`.
//! * **Fused send**: the sender's bytes go straight onto the peer's
//!   receive queue, in the squeue they share (no segment, checksum, ACK
//!   or timer). The sender's room is its unread bytes at the peer: it
//!   stops when those reach the smaller of its `send_buf` and the peer's
//!   `recv_buf`, or while the peer holds `_fusion_rcv_unread_min` unread
//!   blocks (`tcpFusionFlowctl`), and is woken when the reader drains
//!   (`tcpFusionBackenabled`). Memory is bounded by that room.
//! * **Unfuse**: before urgent data (`tcpFusionUrg`), a shutdown, a close
//!   or a reset of either end, and when the peer has gone. Each TCB's
//!   sequence numbers move past the fused bytes
//!   ([`crate::fireengine::tcp::tcb::fusion::unfuse_pair`]); the reader's
//!   unread fused bytes count in its window from then on, and the
//!   sender's room for them is released. The data goes on as plain TCP
//!   over the loopback, in order, and the pair is not fused again (as
//!   illumos, which fuses only as the handshake completes).

use alloc::sync::Arc;

use super::Core;
use crate::fireengine::conn::{ConnRef, ConnTuple, IPPROTO_TCP};
use crate::fireengine::ip::mib::{bump, bump_by};
use crate::fireengine::tcp::state::State;
use crate::fireengine::tcp::tcb::fusion::unfuse_pair;
use crate::fireengine::tcp_pcb::{TcpKind, TcpPcb};

impl Core {
    /// Fuses `conn` with its loopback peer if the pair qualifies (see the
    /// module doc). Inside the conn's squeue, no TCB lock held.
    pub(super) fn tcp_try_fuse(&self, conn: &ConnRef<TcpPcb>) {
        {
            let f = conn.proto.fusion.lock();
            if f.decided || f.peer.is_some() {
                return;
            }
        }
        let key = ConnTuple::connected(IPPROTO_TCP, conn.faddr(), conn.fport(), conn.laddr(), conn.lport());
        let peer = self.tcp_classifier.lookup_connected(&key);
        let decide = |counter: &core::sync::atomic::AtomicU64, peer: Option<&ConnRef<TcpPcb>>| {
            conn.proto.fusion.lock().decided = true;
            if let Some(p) = peer {
                p.proto.fusion.lock().decided = true;
            }
            bump(counter);
        };
        if !self.sys.tunables.tcp().do_fusion {
            decide(&self.tcp_mib.fusion_disabled, peer.as_ref());
            return;
        }
        let Some(peer) = peer else {
            decide(&self.tcp_mib.fusion_unqualified, None);
            return;
        };
        if peer.proto.fusion.lock().decided {
            conn.proto.fusion.lock().decided = true;
            return;
        }
        if Arc::ptr_eq(&peer, conn) || !peer.proto.loopback || peer.sqp() != conn.sqp() {
            decide(&self.tcp_mib.fusion_unqualified, Some(&peer));
            return;
        }
        let (TcpKind::Conn(am), TcpKind::Conn(bm)) = (&conn.proto.kind, &peer.proto.kind) else { return };
        // One thread is inside the squeue the two share: holding both
        // TCBs cannot deadlock.
        let a = am.lock();
        let b = bm.lock();
        if a.is_passive() == b.is_passive() {
            drop((a, b));
            decide(&self.tcp_mib.fusion_unqualified, Some(&peer));
            return;
        }
        if b.state() == State::SynRcvd || b.state() == State::SynSent {
            // Its handshake is still finishing: its own visit tries.
            return;
        }
        if !(a.fusion_quiet() && b.fusion_quiet()) {
            // Closing already, or data in flight: no fusion now. A pair
            // past ESTABLISHED never fuses; one with data in flight is
            // tried again.
            let over = a.state() != State::Established || b.state() != State::Established;
            drop((a, b));
            if over {
                decide(&self.tcp_mib.fusion_unqualified, Some(&peer));
            }
            return;
        }
        let unread = [a.unread(), b.unread()];
        drop((a, b));
        let blocks = self.sys.tunables.tcp().fusion_rcv_unread_min as usize;
        for (i, (x, y)) in [(conn, &peer), (&peer, conn)].into_iter().enumerate() {
            let mut f = x.proto.fusion.lock();
            f.peer = Some(Arc::downgrade(y));
            f.tcb_unread = unread[i];
            f.sent = 0;
            f.unread = 0;
            f.decided = true;
            let cap = x.proto.sock.snd_limit().min(y.proto.sock.rcv_limit()).max(1);
            x.proto.sock.set_fused(cap, blocks);
        }
        bump(&self.tcp_mib.fusion_fused);
        conn.proto.sock.wake();
        peer.proto.sock.wake();
    }

    /// A fused send: `data` (already counted in `conn`'s send room) onto
    /// `peer`'s receive queue.
    pub(super) fn tcp_fused_send(&self, conn: &ConnRef<TcpPcb>, peer: &ConnRef<TcpPcb>, data: alloc::vec::Vec<u8>) {
        debug_assert_eq!(conn.sqp(), peer.sqp(), "a fused pair on two squeues");
        let n = data.len();
        if n == 0 {
            return;
        }
        conn.proto.fusion.lock().sent += n as u64;
        {
            let mut pf = peer.proto.fusion.lock();
            pf.unread = pf.unread.saturating_add(n as u32);
        }
        peer.proto.sock.deliver(data);
        bump_by(&self.tcp_mib.fusion_bytes, n as u64);
        if conn.proto.send_room() == 0 {
            conn.proto.fusion.lock().flow_stopped = true;
            bump(&self.tcp_mib.fusion_flowctl);
        }
        peer.proto.sock.wake();
    }

    /// A read on a fused conn whose TCB has nothing unread: all that was
    /// read came fused, and the TCB need not be visited. False (nothing
    /// done) otherwise.
    pub(super) fn tcp_fused_consumed(&self, conn: &ConnRef<TcpPcb>) -> bool {
        if conn.proto.fusion.lock().tcb_unread != 0 {
            return false;
        }
        let n = conn.proto.sock.take_consumed();
        if n > 0 {
            self.tcp_fused_read(conn, n);
        }
        true
    }

    /// `conn`'s reader took `n` bytes that came fused: its sender's room
    /// grows by as much and the sender is woken.
    pub(super) fn tcp_fused_read(&self, conn: &ConnRef<TcpPcb>, n: usize) {
        let peer = {
            let mut f = conn.proto.fusion.lock();
            f.unread = f.unread.saturating_sub(n as u32);
            f.peer.as_ref().and_then(|w| w.upgrade())
        };
        let Some(peer) = peer else { return };
        let stopped = core::mem::take(&mut peer.proto.fusion.lock().flow_stopped);
        peer.proto.sock.acked(n);
        if stopped {
            bump(&self.tcp_mib.fusion_backenabled);
        }
        peer.proto.sock.wake();
    }

    /// Unfuses `conn` and its peer (see the module doc). Inside the
    /// squeue they share.
    pub(super) fn tcp_unfuse(&self, conn: &ConnRef<TcpPcb>) {
        let peer = conn.proto.fused_peer();
        let (a_sent, a_unread) = Self::clear_fusion(conn);
        let Some(peer) = peer else {
            // The peer went (its instance is going): nothing to bring up
            // to date with; what we sent fused (all that is pending: the
            // pair fused quiet) is released.
            conn.proto.sock.set_fused(0, 0);
            conn.proto.sock.acked(conn.proto.sock.send_pending());
            let _ = (a_sent, a_unread);
            return;
        };
        let (b_sent, b_unread) = Self::clear_fusion(&peer);
        if let (TcpKind::Conn(am), TcpKind::Conn(bm)) = (&conn.proto.kind, &peer.proto.kind) {
            let mut a = am.lock();
            let mut b = bm.lock();
            unfuse_pair(&mut a, &mut b, a_sent, b_sent, a_unread, b_unread);
        }
        // What each sent fused and the other has not read is acknowledged
        // now (its reader's window holds it).
        conn.proto.sock.set_fused(0, 0);
        peer.proto.sock.set_fused(0, 0);
        conn.proto.sock.acked(b_unread as usize);
        peer.proto.sock.acked(a_unread as usize);
        bump(&self.tcp_mib.fusion_unfused);
        // The peer's socket side follows its TCB again.
        self.with_tcb(&peer, |_, _| {});
        peer.proto.sock.wake();
        conn.proto.sock.wake();
    }

    /// Takes a conn out of fusion for good: (bytes it sent fused, fused
    /// bytes it has not read).
    fn clear_fusion(conn: &ConnRef<TcpPcb>) -> (u64, u32) {
        let mut f = conn.proto.fusion.lock();
        f.peer = None;
        f.decided = true;
        (core::mem::take(&mut f.sent), core::mem::take(&mut f.unread))
    }
}
