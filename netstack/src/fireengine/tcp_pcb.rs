//! TCP conns over the classifier: the `tcp_t` of a conn (a listener's
//! queues or a connection's [`Tcb`]), the socket layer's side of a
//! connection (sockfs' receive queue and send flow control), and the
//! handle services and tools hold ([`TcpSocket`]).
//!
//! A conn's [`Tcb`] is touched only inside the conn's squeue: every user
//! call becomes a [`TcpOp`] entered there ([`TcpHost::tcp_enter`]).
//! What a user thread reads or fills directly is the socket side
//! ([`SockSide`]): received bytes the TCB handed up (they count against
//! the window until the TCB's next squeue visit takes the reader's count,
//! [`SockSide::take_consumed`], as illumos' `tcp_rwnd_update`; a
//! [`TcpOp::Consumed`] asks for that visit, and a lost one loses no
//! count), and the send room (bytes entered and not
//! yet acknowledged, bounded by `send_buf`, as sockfs' `so_snd_qfull`).
//!
//! This room does not know the instance: entering a squeue goes through
//! the [`TcpHost`] the instance implements.

use alloc::sync::Weak;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use arbalest_mac::sync::Mutex;

use super::conn::{Conn, ConnRef};
use super::sock::Upcall;
use super::tcp::state::State;
use super::tcp::tcb::Tcb;
use super::tcp_conn::listen_q::{EagerId, ListenQueue};
use super::udp::CachedRoute;
use crate::stack::NetError;

/// A TCP conn.
pub type TcpConn = Conn<TcpPcb>;

/// What a TCP conn is.
pub enum TcpKind {
    /// A listener: its q0 and q of eager conns.
    Listener(Mutex<ListenQueue<ConnRef<TcpPcb>>>),
    /// A connection.
    Conn(Mutex<Tcb>),
}

/// A user's call, run inside the conn's squeue.
pub enum TcpOp {
    /// Send these segments the TCB built before the conn was published
    /// (the SYN of an active open, an eager's SYN-ACK).
    Start(Vec<super::tcp::segment::SegOut>),
    /// Queue these bytes (already counted in the send room).
    Send(Vec<u8>),
    /// The reader took bytes (counted in [`SockSide`]): the window may
    /// reopen.
    Consumed,
    /// `shutdown(SHUT_WR)`.
    ShutWrite,
    /// `close()`.
    Close,
    /// Reset now.
    Abort,
    /// Send one urgent byte after what is queued (already counted in
    /// the send room). A fused conn unfuses first.
    Urgent(u8),
}

/// A conn's side of TCP fusion (`tcp_fusion.c`; the instance's
/// `fusion` room does the work). Touched inside the conn's squeue, which
/// its fused peer shares.
#[derive(Default)]
pub struct Fusion {
    /// The fused peer, while fused.
    pub peer: Option<Weak<TcpConn>>,
    /// Bytes sent fused (they never entered the TCB).
    pub sent: u64,
    /// Of the bytes received fused, those not read yet.
    pub unread: u32,
    /// Bytes the TCB handed up before fusion that the reader has not
    /// read (as of the last look): while 0, a read while fused needs no
    /// visit of the TCB.
    pub tcb_unread: u32,
    /// The last fused send left no room (counted in `tcpFusionFlowctl`);
    /// the reader's next read wakes the sender (`tcpFusionBackenabled`).
    pub flow_stopped: bool,
    /// Fusion was decided for this conn (fused or counted not to be):
    /// it is not tried again unless it waited for the pair to be quiet.
    pub decided: bool,
}

/// `tcp_t`: what a TCP conn has beyond `conn_t`.
pub struct TcpPcb {
    /// Listener or connection.
    pub kind: TcpKind,
    /// The route to the peer (touched inside the squeue).
    pub route: Mutex<Option<CachedRoute>>,
    /// The socket layer's side.
    pub sock: SockSide,
    /// The TCB's next timer deadline (ms; `u64::MAX`: none), readable
    /// without entering the squeue by the instance's timer scan.
    pub deadline_ms: AtomicU64,
    /// An eager's listener and its id there, until accepted.
    pub listener: Mutex<Option<(Weak<TcpConn>, EagerId)>>,
    /// Made over the instance's loopback: the peer is the instance
    /// itself (only such conns may fuse).
    pub loopback: bool,
    /// Fusion state.
    pub fusion: Mutex<Fusion>,
}

impl TcpPcb {
    /// A connection's block around `tcb`.
    pub fn conn(tcb: Tcb, rcv_limit: usize, snd_limit: usize) -> TcpPcb {
        let st = tcb.state();
        let p = TcpPcb {
            kind: TcpKind::Conn(Mutex::new(tcb)),
            route: Mutex::new(None),
            sock: SockSide::new(rcv_limit, snd_limit),
            deadline_ms: AtomicU64::new(u64::MAX),
            listener: Mutex::new(None),
            loopback: false,
            fusion: Mutex::new(Fusion::default()),
        };
        p.sock.set_state(st);
        p
    }

    /// The same, made over the loopback if `on`.
    pub fn on_loopback(mut self, on: bool) -> TcpPcb {
        self.loopback = on;
        self
    }

    /// The send room left, a fused sender's bounded by its peer's
    /// unread blocks too (see [`TcpSocket::send_room`]).
    pub fn send_room(&self) -> usize {
        let room = self.sock.send_room();
        if room > 0 && self.sock.is_fused() {
            let blocks = self.sock.fused_blocks();
            if blocks > 0
                && let Some(peer) = self.fused_peer()
                && peer.proto.sock.unread_blocks() >= blocks
            {
                return 0;
            }
        }
        room
    }

    /// The fused peer, if fused.
    pub fn fused_peer(&self) -> Option<alloc::sync::Arc<TcpConn>> {
        self.fusion.lock().peer.as_ref().and_then(|w| w.upgrade())
    }

    /// A listener's block.
    pub fn listener(q: ListenQueue<ConnRef<TcpPcb>>) -> TcpPcb {
        let p = TcpPcb {
            kind: TcpKind::Listener(Mutex::new(q)),
            route: Mutex::new(None),
            sock: SockSide::new(0, 0),
            deadline_ms: AtomicU64::new(u64::MAX),
            listener: Mutex::new(None),
            loopback: false,
            fusion: Mutex::new(Fusion::default()),
        };
        p.sock.set_state(State::Listen);
        p
    }

    /// Whether this is a listener.
    pub fn is_listener(&self) -> bool {
        matches!(self.kind, TcpKind::Listener(_))
    }
}

/// The socket layer's side of a connection (see the module doc).
pub struct SockSide {
    rcv: Mutex<crate::fireengine::bytes::ChunkQueue>,
    rcv_limit: usize,
    fin: AtomicBool,
    error: Mutex<Option<NetError>>,
    snd_pending: AtomicUsize,
    /// Bytes the reader took that the TCB has not been told of.
    consumed: AtomicUsize,
    snd_limit: usize,
    /// While fused: the send room's bound (the smaller of `send_buf` and
    /// the peer's `recv_buf`), and the peer's unread blocks that stop
    /// the sender (`_fusion_rcv_unread_min`, 0: none); `fused_cap` 0
    /// when not fused.
    fused_cap: AtomicUsize,
    fused_blocks: AtomicUsize,
    state: AtomicU8,
    upcall: Mutex<Option<Upcall>>,
    /// netstat's Swind, Rwind and Send-Q as of the last squeue visit.
    pub swind: AtomicU32,
    /// See `swind`.
    pub rwind: AtomicU32,
    /// See `swind`.
    pub send_q: AtomicU32,
}

const STATES: [State; 11] = [
    State::Closed,
    State::Listen,
    State::SynSent,
    State::SynRcvd,
    State::Established,
    State::FinWait1,
    State::FinWait2,
    State::CloseWait,
    State::Closing,
    State::LastAck,
    State::TimeWait,
];

impl SockSide {
    fn new(rcv_limit: usize, snd_limit: usize) -> SockSide {
        SockSide {
            rcv: Mutex::new(crate::fireengine::bytes::ChunkQueue::new()),
            rcv_limit,
            fin: AtomicBool::new(false),
            error: Mutex::new(None),
            snd_pending: AtomicUsize::new(0),
            consumed: AtomicUsize::new(0),
            snd_limit,
            fused_cap: AtomicUsize::new(0),
            fused_blocks: AtomicUsize::new(0),
            state: AtomicU8::new(0),
            upcall: Mutex::new(None),
            swind: AtomicU32::new(0),
            rwind: AtomicU32::new(0),
            send_q: AtomicU32::new(0),
        }
    }

    /// The TCB's state as last seen.
    pub fn state(&self) -> State {
        STATES.get(usize::from(self.state.load(Ordering::Acquire))).copied().unwrap_or(State::Closed)
    }

    /// Records the TCB's state (inside the squeue).
    pub fn set_state(&self, s: State) {
        let i = STATES.iter().position(|x| *x == s).unwrap_or(0);
        self.state.store(i as u8, Ordering::Release);
    }

    /// Bytes the TCB handed up (inside the squeue). The TCB's window
    /// bounds them by `recv_buf`.
    pub fn deliver(&self, data: Vec<u8>) {
        self.rcv.lock().push(data);
    }

    /// Bytes read since the last call (inside the squeue: the TCB's
    /// window reopens by as much).
    pub fn take_consumed(&self) -> usize {
        self.consumed.swap(0, Ordering::AcqRel)
    }

    /// The peer's FIN arrived (inside the squeue).
    pub fn set_fin(&self) {
        self.fin.store(true, Ordering::Release);
    }

    /// The connection failed (inside the squeue).
    pub fn set_error(&self, e: NetError) {
        *self.error.lock() = Some(e);
    }

    /// Data bytes the peer acknowledged: the send room grows.
    pub fn acked(&self, n: usize) {
        if n > 0 {
            let _ = self.snd_pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| Some(p.saturating_sub(n)));
        }
    }

    /// Calls the upcall, if any (never with a TCB lock held).
    pub fn wake(&self) {
        let f = self.upcall.lock().clone();
        if let Some(f) = f {
            f();
        }
    }

    /// Bytes waiting to be read.
    pub fn readable(&self) -> usize {
        self.rcv.lock().len()
    }

    /// The send room left (not counting a fused peer's unread blocks:
    /// [`TcpSocket::send_room`] does).
    pub fn send_room(&self) -> usize {
        let cap = match self.fused_cap.load(Ordering::Acquire) {
            0 => self.snd_limit,
            c => c,
        };
        cap.saturating_sub(self.snd_pending.load(Ordering::Acquire))
    }

    /// Fused (`cap` > 0: the send room's bound, `blocks` the peer's
    /// unread blocks that stop us) or not (`cap` 0).
    pub fn set_fused(&self, cap: usize, blocks: usize) {
        self.fused_blocks.store(blocks, Ordering::Release);
        self.fused_cap.store(cap, Ordering::Release);
    }

    /// While fused, the peer's unread blocks that stop us (0: none).
    pub fn fused_blocks(&self) -> usize {
        self.fused_blocks.load(Ordering::Acquire)
    }

    /// Whether fused.
    pub fn is_fused(&self) -> bool {
        self.fused_cap.load(Ordering::Acquire) != 0
    }

    /// Unread blocks (vectors) in the receive queue.
    pub fn unread_blocks(&self) -> usize {
        self.rcv.lock().blocks()
    }

    /// The send buffer's size.
    pub fn snd_limit(&self) -> usize {
        self.snd_limit
    }

    /// Bytes handed to TCP and not yet acknowledged.
    pub fn send_pending(&self) -> usize {
        self.snd_pending.load(Ordering::Acquire)
    }

    /// The receive buffer's size.
    pub fn rcv_limit(&self) -> usize {
        self.rcv_limit
    }
}

/// What a TCP handle needs from its instance.
pub trait TcpHost: Send + Sync {
    /// Runs `op` for `conn` inside its squeue.
    fn tcp_enter(&self, conn: &ConnRef<TcpPcb>, op: TcpOp) -> Result<(), NetError>;
    /// `accept()` on the listener `conn`: the oldest completed connection.
    fn tcp_accept(&self, conn: &ConnRef<TcpPcb>) -> Option<ConnRef<TcpPcb>>;
    /// The listener `conn` is closed: its eagers are reset, it leaves the
    /// classifier.
    fn tcp_unlisten(&self, conn: &ConnRef<TcpPcb>);
}

/// A TCP socket handle: a connection or a listener. Dropping it closes
/// the socket (a connection finishes in the background).
pub struct TcpSocket {
    conn: ConnRef<TcpPcb>,
    host: Weak<dyn TcpHost>,
    closed: AtomicBool,
}

impl TcpSocket {
    /// A handle on `conn`.
    pub fn new(conn: ConnRef<TcpPcb>, host: Weak<dyn TcpHost>) -> TcpSocket {
        TcpSocket { conn, host, closed: AtomicBool::new(false) }
    }

    /// The conn.
    pub fn conn(&self) -> &ConnRef<TcpPcb> {
        &self.conn
    }

    fn side(&self) -> &SockSide {
        &self.conn.proto.sock
    }

    fn enter(&self, op: TcpOp) -> Result<(), NetError> {
        let host = self.host.upgrade().ok_or(NetError::NotConnected)?;
        host.tcp_enter(&self.conn, op)
    }

    /// The local address.
    pub fn local(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.conn.laddr(), self.conn.lport())
    }

    /// The peer (none for a listener).
    pub fn peer(&self) -> Option<SocketAddrV4> {
        self.conn.is_connected().then(|| SocketAddrV4::new(self.conn.faddr(), self.conn.fport()))
    }

    /// The state as last seen.
    pub fn state(&self) -> State {
        self.side().state()
    }

    /// The connection's error, if it failed.
    pub fn error(&self) -> Option<NetError> {
        *self.side().error.lock()
    }

    /// Hands as much of `data` to TCP as the send room allows; returns
    /// how much (0: full, wait for a writable upcall).
    pub fn send(&self, data: &[u8]) -> Result<usize, NetError> {
        self.send_owned(data.len(), |n| data[..n].to_vec())
    }

    /// As [`send`](Self::send), handing `data` itself to the TCB (no
    /// copy). Of a vector larger than the room only the first bytes are
    /// sent (their count is returned); the rest, and on an error all of
    /// it, is dropped: for a sender that can make its bytes again
    /// (chargen), not one that must keep them (echo).
    pub fn send_vec(&self, mut data: Vec<u8>) -> Result<usize, NetError> {
        let len = data.len();
        self.send_owned(len, move |n| {
            data.truncate(n);
            data
        })
    }

    fn send_owned(&self, len: usize, take: impl FnOnce(usize) -> Vec<u8>) -> Result<usize, NetError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        let st = self.state();
        if !st.can_send() {
            return Err(if st == State::Closed { NetError::NotConnected } else { NetError::ShutDown });
        }
        let side = self.side();
        let room = self.send_room();
        let n = len.min(room);
        if n == 0 {
            return Ok(0);
        }
        side.snd_pending.fetch_add(n, Ordering::AcqRel);
        if let Err(e) = self.enter(TcpOp::Send(take(n))) {
            side.acked(n);
            return Err(e);
        }
        Ok(n)
    }

    /// Moves received bytes into `buf`; 0 when none are waiting (then
    /// [`peer_closed`](Self::peer_closed) says whether the stream ended).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        let n = self.side().rcv.lock().copy_front(buf);
        if n == 0 {
            if let Some(e) = self.error() {
                return Err(e);
            }
            return Ok(0);
        }
        self.side().consumed.fetch_add(n, Ordering::AcqRel);
        let _ = self.enter(TcpOp::Consumed);
        Ok(n)
    }

    /// Up to `max` received bytes as a vector.
    pub fn recv_vec(&self, max: usize) -> Result<Vec<u8>, NetError> {
        let v: Vec<u8> = {
            self.side().rcv.lock().take_front(max)
        };
        if v.is_empty() {
            if let Some(e) = self.error() {
                return Err(e);
            }
            return Ok(v);
        }
        self.side().consumed.fetch_add(v.len(), Ordering::AcqRel);
        let _ = self.enter(TcpOp::Consumed);
        Ok(v)
    }

    /// Whether the peer finished sending and everything was read.
    pub fn peer_closed(&self) -> bool {
        self.side().fin.load(Ordering::Acquire) && self.side().readable() == 0
    }

    /// Bytes waiting to be read.
    pub fn readable(&self) -> usize {
        self.side().readable()
    }

    /// Send room left. A fused sender also stops while its peer holds
    /// `_fusion_rcv_unread_min` unread blocks (illumos'
    /// `tcp_fusion_rcv_unread_min`), until the reader drains.
    pub fn send_room(&self) -> usize {
        self.conn.proto.send_room()
    }

    /// Sends one urgent byte after what was sent (`send(MSG_OOB)`); a
    /// fused connection unfuses for it (illumos `tcp_fusion_urg`).
    /// `Ok(false)`: no send room now.
    pub fn send_urgent(&self, byte: u8) -> Result<bool, NetError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        if !self.state().can_send() {
            return Err(NetError::ShutDown);
        }
        // The byte needs room in the TCB's own queue too, which a fused
        // sender's count does not show: the plain bound applies.
        let side = self.side();
        if side.snd_limit.saturating_sub(side.snd_pending.load(Ordering::Acquire)) == 0 {
            return Ok(false);
        }
        side.snd_pending.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.enter(TcpOp::Urgent(byte)) {
            side.acked(1);
            return Err(e);
        }
        Ok(true)
    }

    /// Bytes sent and not yet acknowledged (or not yet sent).
    pub fn unacked(&self) -> usize {
        self.side().send_pending()
    }

    /// `shutdown(SHUT_WR)`.
    pub fn shutdown_write(&self) -> Result<(), NetError> {
        self.enter(TcpOp::ShutWrite)
    }

    /// Resets the connection.
    pub fn abort(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.enter(TcpOp::Abort);
    }

    /// Sets the upcall (inside the conn's squeue: short, non-blocking)
    /// called when the socket may have become readable or writable, a
    /// listener has a connection to accept, or the connection ended.
    pub fn set_upcall(&self, f: Option<Upcall>) {
        *self.side().upcall.lock() = f;
    }

    /// `accept()` on a listener: the oldest completed connection.
    pub fn accept(&self) -> Result<Option<TcpSocket>, NetError> {
        if !self.conn.proto.is_listener() {
            return Err(NetError::InvalidArgument);
        }
        let host = self.host.upgrade().ok_or(NetError::NotConnected)?;
        Ok(host.tcp_accept(&self.conn).map(|c| TcpSocket::new(c, self.host.clone())))
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.side().upcall.lock() = None;
        let Some(host) = self.host.upgrade() else { return };
        if self.conn.proto.is_listener() {
            host.tcp_unlisten(&self.conn);
        } else {
            let _ = host.tcp_enter(&self.conn, TcpOp::Close);
        }
    }
}
