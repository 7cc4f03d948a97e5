//! A bounded pool of TCP connections for one service port.
//!
//! A smoltcp TCP socket in `Listen` state takes one connection, so a
//! service keeps exactly one spare listener while fewer than `max` sockets
//! are in use, and none once all `max` are: a SYN that finds no listener is
//! answered with RST by smoltcp, which is the clean refusal. The listener is
//! re-armed right after each received frame ([`TcpService::rearm`]), so a
//! burst of SYNs in one poll is accepted up to the bound.
//!
//! smoltcp hands a segment to the first socket that accepts it, in the
//! order of its socket set, and a listener accepts any segment to its port
//! without ACK or RST — a SYN among them. A SYN on a connection that is
//! already synchronized (or half-open) belongs to that connection (RFC
//! 9293 3.10.7.4), so for such a SYN the listener is closed for that one
//! frame ([`TcpService::shield`]) and listens again right after it
//! ([`TcpService::rearm`]); otherwise the listener, when it comes first,
//! starts a second handshake on the connection's 4-tuple.
//!
//! Sockets are created on demand (each holds two `tcp_buffer` buffers) and
//! a few closed ones are kept for reuse, so an idle service costs one
//! socket and connection churn does not churn the heap.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Duration;
use smoltcp::wire::IpAddress;

use super::{chargen, discard, echo};
use crate::config::MAX_TCP_BUFFER;
use crate::smol::rxcheck::Syn;
use crate::stack::{Proto, ServiceStats};

/// Closed sockets kept for reuse per service.
const IDLE_KEEP: usize = 4;
/// Keep-alive interval of service connections.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// A peer silent this long (with data or keep-alives outstanding) is dropped.
const TIMEOUT: Duration = Duration::from_secs(180);

/// Which service a pool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RFC 862, port 7.
    Echo,
    /// RFC 863, port 9.
    Discard,
    /// RFC 864, port 19.
    Chargen,
}

impl Kind {
    /// Service name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Discard => "discard",
            Kind::Chargen => "chargen",
        }
    }

    /// Well-known port.
    pub fn port(self) -> u16 {
        match self {
            Kind::Echo => 7,
            Kind::Discard => 9,
            Kind::Chargen => 19,
        }
    }
}

/// Byte counters a connection handler updates.
#[derive(Debug, Default, Clone, Copy)]
pub struct Io {
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Payload bytes queued for sending.
    pub bytes_out: u64,
}

/// One connection slot.
struct Conn {
    handle: SocketHandle,
    established: bool,
    /// Chargen: position in the pattern.
    pos: usize,
}

/// The connections of one TCP service.
pub struct TcpService {
    kind: Kind,
    max: usize,
    buffer: usize,
    listener: Option<SocketHandle>,
    /// The listener is closed for the frame being processed (see
    /// [`TcpService::shield`]).
    shielded: bool,
    conns: Vec<Conn>,
    idle: Vec<SocketHandle>,
    accepted: u64,
    refused: u64,
    io: Io,
}

impl TcpService {
    /// A service allowing `max` sockets (at least 1) with `buffer`-byte
    /// buffers (1024 to [`MAX_TCP_BUFFER`]). Its listener appears at the
    /// first `rearm`.
    pub fn new(kind: Kind, max: usize, buffer: usize) -> TcpService {
        TcpService {
            kind,
            max: max.max(1),
            buffer: buffer.clamp(1024, MAX_TCP_BUFFER),
            listener: None,
            shielded: false,
            conns: Vec::new(),
            idle: Vec::new(),
            accepted: 0,
            refused: 0,
            io: Io::default(),
        }
    }

    fn new_socket(&self) -> tcp::Socket<'static> {
        let rx = tcp::SocketBuffer::new(vec![0u8; self.buffer]);
        let tx = tcp::SocketBuffer::new(vec![0u8; self.buffer]);
        let mut s = tcp::Socket::new(rx, tx);
        s.set_keep_alive(Some(KEEPALIVE));
        s.set_timeout(Some(TIMEOUT));
        // Echo answers small requests at once; bulk services batch.
        s.set_nagle_enabled(self.kind != Kind::Echo);
        s
    }

    /// Counts a SYN to this port that no socket will take (smoltcp answers
    /// it with RST). Retransmitted SYNs of a connection in progress are not
    /// refusals.
    pub fn note_syn(&mut self, sockets: &SocketSet<'static>, syn: &Syn) {
        if syn.dst_port != self.kind.port() || self.listener.is_some() {
            return;
        }
        let taken = self.conns.iter().any(|c| {
            let s = sockets.get::<tcp::Socket>(c.handle);
            s.state() == State::Listen
                || s.remote_endpoint()
                    .is_some_and(|e| e.addr == IpAddress::Ipv4(syn.src) && e.port == syn.src_port)
        });
        if !taken {
            self.refused = self.refused.wrapping_add(1);
        }
    }

    /// Keeps the listener from taking `syn` when one of the service's
    /// connections (half-open or synchronized, not yet in TIME_WAIT, where
    /// a new SYN may open a new incarnation) holds its 4-tuple: the
    /// listener is closed until the next [`TcpService::rearm`]. Returns
    /// whether it was.
    pub fn shield(&mut self, sockets: &mut SocketSet<'static>, syn: &Syn) -> bool {
        if syn.dst_port != self.kind.port() {
            return false;
        }
        let Some(h) = self.listener else { return false };
        let owned = self.conns.iter().any(|c| {
            let s = sockets.get::<tcp::Socket>(c.handle);
            !matches!(s.state(), State::Listen | State::Closed | State::TimeWait)
                && s.remote_endpoint().is_some_and(|e| e.addr == IpAddress::Ipv4(syn.src) && e.port == syn.src_port)
                && s.local_endpoint().is_some_and(|e| e.addr == IpAddress::Ipv4(syn.dst))
        });
        if owned {
            // A listening socket has no peer: closing it sends nothing.
            sockets.get_mut::<tcp::Socket>(h).abort();
            self.shielded = true;
        }
        owned
    }

    /// Moves a listener that took a SYN to the connections and arms a new
    /// one while the bound allows.
    pub fn rearm(&mut self, sockets: &mut SocketSet<'static>) {
        if self.shielded
            && let Some(h) = self.listener
        {
            self.shielded = false;
            if sockets.get_mut::<tcp::Socket>(h).listen(self.kind.port()).is_err() {
                sockets.remove(h);
                self.listener = None;
            }
        }
        if let Some(h) = self.listener
            && sockets.get::<tcp::Socket>(h).state() != State::Listen
        {
            self.conns.push(Conn { handle: h, established: false, pos: 0 });
            self.listener = None;
        }
        if self.listener.is_some() || self.conns.len() >= self.max {
            return;
        }
        let h = match self.idle.pop() {
            Some(h) => h,
            None => {
                let s = self.new_socket();
                sockets.add(s)
            }
        };
        if sockets.get_mut::<tcp::Socket>(h).listen(self.kind.port()).is_ok() {
            self.listener = Some(h);
        } else {
            sockets.remove(h);
        }
    }

    /// Serves every connection; recycles closed ones.
    pub fn run(&mut self, sockets: &mut SocketSet<'static>, scratch: &mut [u8]) {
        let mut i = 0;
        while i < self.conns.len() {
            let handle = self.conns[i].handle;
            match sockets.get::<tcp::Socket>(handle).state() {
                State::Closed => {
                    self.conns.swap_remove(i);
                    self.recycle(sockets, handle);
                    continue;
                }
                // A half-open connection reset by the peer returns to Listen.
                State::Listen => {
                    self.conns.swap_remove(i);
                    if self.listener.is_none() {
                        self.listener = Some(handle);
                    } else {
                        sockets.get_mut::<tcp::Socket>(handle).abort();
                        self.recycle(sockets, handle);
                    }
                    continue;
                }
                State::SynReceived | State::SynSent => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let c = &mut self.conns[i];
            if !c.established {
                c.established = true;
                self.accepted = self.accepted.wrapping_add(1);
            }
            let s = sockets.get_mut::<tcp::Socket>(handle);
            match self.kind {
                Kind::Echo => echo::serve(s, scratch, &mut self.io),
                Kind::Discard => discard::serve(s, &mut self.io),
                Kind::Chargen => chargen::serve(s, &mut c.pos, &mut self.io),
            }
            // The peer has finished sending and everything is answered.
            if s.state() == State::CloseWait && s.recv_queue() == 0 {
                s.close();
            }
            i += 1;
        }
    }

    fn recycle(&mut self, sockets: &mut SocketSet<'static>, h: SocketHandle) {
        if self.idle.len() < IDLE_KEEP {
            self.idle.push(h);
        } else {
            sockets.remove(h);
        }
    }

    /// The service's counters.
    pub fn stats(&self) -> ServiceStats {
        ServiceStats {
            name: self.kind.name(),
            proto: Proto::Tcp,
            port: self.kind.port(),
            accepted: self.accepted,
            refused: self.refused,
            active: self.conns.len() as u64,
            bytes_in: self.io.bytes_in,
            bytes_out: self.io.bytes_out,
        }
    }
}
