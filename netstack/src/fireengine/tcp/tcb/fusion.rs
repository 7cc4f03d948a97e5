//! What TCP fusion (illumos `tcp_fusion.c`) needs of a TCB: whether it
//! is quiet enough to fuse, and bringing it up to date when it unfuses.
//!
//! While two conns of one instance are fused, their data goes from the
//! sender's socket straight into the peer's receive queue: no segment is
//! built and neither TCB sees the bytes. The instance counts them; when
//! the pair unfuses, [`unfuse_pair`] moves each side's sequence numbers
//! past them, as if every fused byte had been sent, received and
//! acknowledged, and makes each side's view of the other's window match
//! what the other has room for now (the fused bytes the reader has not
//! read yet fill its window). The connection then goes on as plain TCP,
//! with nothing lost and the stream in order.

use super::Tcb;
use crate::fireengine::tcp::state::State;

impl Tcb {
    /// Whether the connection may be fused now (illumos `tcp_fuse`'s
    /// conditions on one side): ESTABLISHED, nothing unsent or
    /// unacknowledged, no FIN queued, no urgent data either way, nothing
    /// out of order or undelivered on the receive side.
    pub fn fusion_quiet(&self) -> bool {
        self.state == State::Established
            && self.error.is_none()
            && self.sndbuf.is_empty()
            && self.snd_una == self.snd_nxt
            && self.snd_nxt == self.snd_max
            && !self.fin_queued
            && self.snd_up.is_none()
            && self.rcv_up.is_none()
            && self.rcvbuf.is_empty()
            && self.reass.is_empty()
    }

    /// Bytes handed to the socket layer and not yet read, as the TCB
    /// counts them (they fill its window).
    pub fn unread(&self) -> u32 {
        self.unread
    }
}

/// Brings a fused pair up to date as it unfuses (see the module doc).
/// `a_sent` / `b_sent`: bytes each side sent fused (modulo 2^32 is all
/// that matters); `a_unread` / `b_unread`: of the bytes each side
/// received fused, those its reader has not read yet.
pub fn unfuse_pair(a: &mut Tcb, b: &mut Tcb, a_sent: u64, b_sent: u64, a_unread: u32, b_unread: u32) {
    advance(a, b, a_sent, b_unread);
    advance(b, a, b_sent, a_unread);
    // Each side now sees the other's window as it is.
    sync_window(a, b);
    sync_window(b, a);
}

/// `tx` sent `n` bytes fused to `rx`, of which `rx_unread` are unread.
fn advance(tx: &mut Tcb, rx: &mut Tcb, n: u64, rx_unread: u32) {
    let n = n as u32 as usize;
    tx.snd_una += n;
    tx.snd_nxt += n;
    tx.snd_max += n;
    tx.recover = tx.snd_una;
    tx.high_rxt = tx.snd_una;
    rx.rcv_nxt += n;
    rx.last_ack_sent = rx.rcv_nxt;
    rx.unread = rx.unread.saturating_add(rx_unread);
}

/// `tx`'s view of `rx`'s window: what `rx` has room for, from `rx`'s
/// RCV.NXT on (a window update `rx` sends at once). `rx`'s advertised
/// right edge moves there too, never left.
fn sync_window(tx: &mut Tcb, rx: &mut Tcb) {
    let space = rx.rcv_space();
    // What the peer can express in its window field.
    let shift = if rx.ws_ok { rx.rcv_wscale } else { 0 };
    let space = space.min(65_535u32 << shift) >> shift << shift;
    let edge = rx.rcv_nxt + space as usize;
    if edge.gt(rx.rcv_adv) {
        rx.rcv_adv = edge;
    }
    tx.snd_wnd = (rx.rcv_adv - tx.snd_una).max(0) as u32;
    tx.max_snd_wnd = tx.max_snd_wnd.max(tx.snd_wnd);
    tx.snd_wl1 = rx.snd_nxt;
    tx.snd_wl2 = tx.snd_una;
}
