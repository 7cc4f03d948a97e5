//! The socket calls (sockfs' role in illumos): what every in-kernel
//! service and the shell's tools use to talk to a FireEngine instance —
//! `socket`, `bind`, `listen`, `accept`, `connect`, `send`, `send_to`,
//! `recv_from`, `shutdown`, `close` (drop), and `poll` — over the
//! protocol's own handle ([`UdpSocket`] today; part 2 adds TCP's behind
//! the same calls).
//!
//! Every call returns at once. A caller that wants to wait registers an
//! upcall ([`Socket::set_upcall`]): it is called inside the conn's squeue
//! when the socket may have become readable (a datagram queued, an error
//! reported), must be short and must not block — a waiting thread is
//! woken from it, and then calls [`Socket::poll`] or
//! [`Socket::recv_datagram`] itself.
//!
//! Errors are the `errno`s a socket user expects, as [`NetError`]s:
//! `listen`/`accept` on a datagram socket → `NotSupported` (EOPNOTSUPP);
//! `bind` twice → `InvalidArgument` (EINVAL); `send` unconnected →
//! `NotConnected`; `shutdown` of an unconnected datagram socket →
//! `NotConnected` (ENOTCONN, as Linux and POSIX); `send` after
//! `shutdown(Write)` and `recv` after `shutdown(Read)` → `ShutDown`
//! (ESHUTDOWN); an ICMP error about a connected socket's peer is returned
//! once by the next `send` or `recv` (`ConnectionRefused`, ...). An
//! unbound socket is bound to an anonymous port by its first `send_to` or
//! `connect`, as BSD sockets are.

use alloc::sync::{Arc, Weak};
use core::net::{Ipv4Addr, SocketAddrV4};
use core::sync::atomic::{AtomicBool, Ordering};

use arbalest_mac::sync::Mutex;

use super::sock::{Datagram, Upcall};
use super::udp::UdpSocket;
use crate::stack::NetError;

/// A socket's type (`SOCK_DGRAM`; `SOCK_STREAM` comes with TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockType {
    /// Datagrams: UDP.
    Dgram,
}

/// What `shutdown` closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// No more receiving: what is queued is discarded, and so is what
    /// arrives (counted per socket).
    Read,
    /// No more sending.
    Write,
    /// Both.
    Both,
}

/// What [`Socket::poll`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A datagram is waiting (or reading would fail at once).
    pub readable: bool,
    /// A send would be taken now.
    pub writable: bool,
    /// An error is pending (the next `send` or `recv` returns it).
    pub error: bool,
    /// `shutdown(Read)` was called.
    pub read_shut: bool,
    /// `shutdown(Write)` was called.
    pub write_shut: bool,
}

/// What a socket needs from its instance: to make protocol handles.
pub trait SockHost: Send + Sync {
    /// A UDP conn bound to `laddr:port` (0: an anonymous port).
    fn sock_udp_bind(&self, laddr: Ipv4Addr, port: u16) -> Result<UdpSocket, NetError>;
}

/// A socket (see the module doc). Closed when dropped.
pub struct Socket {
    host: Weak<dyn SockHost>,
    ty: SockType,
    /// The protocol's handle, once bound. Calls clone it out and release
    /// the lock first: a send may drain the squeue and run this socket's
    /// own upcall, which may call back in.
    udp: Mutex<Option<Arc<UdpSocket>>>,
    upcall: Mutex<Option<Upcall>>,
    read_shut: AtomicBool,
    write_shut: AtomicBool,
}

impl Socket {
    /// `socket(AF_INET, ty, 0)` on the instance `host`: not bound yet.
    pub fn new(host: Weak<dyn SockHost>, ty: SockType) -> Socket {
        Socket {
            host,
            ty,
            udp: Mutex::new(None),
            upcall: Mutex::new(None),
            read_shut: AtomicBool::new(false),
            write_shut: AtomicBool::new(false),
        }
    }

    /// The socket's type.
    pub fn sock_type(&self) -> SockType {
        self.ty
    }

    /// Binds to `addr` (`0.0.0.0`: every address; port 0: an anonymous
    /// one). EINVAL if bound already.
    pub fn bind(&self, addr: SocketAddrV4) -> Result<(), NetError> {
        let mut g = self.udp.lock();
        if g.is_some() {
            return Err(NetError::InvalidArgument);
        }
        let host = self.host.upgrade().ok_or(NetError::NotConnected)?;
        let s = host.sock_udp_bind(*addr.ip(), addr.port())?;
        s.set_upcall(self.upcall.lock().clone());
        *g = Some(Arc::new(s));
        Ok(())
    }

    /// `listen`: a datagram socket does not listen (EOPNOTSUPP).
    pub fn listen(&self, _backlog: u32) -> Result<(), NetError> {
        match self.ty {
            SockType::Dgram => Err(NetError::NotSupported),
        }
    }

    /// `accept`: a datagram socket has no connections to accept
    /// (EOPNOTSUPP).
    pub fn accept(&self) -> Result<Socket, NetError> {
        match self.ty {
            SockType::Dgram => Err(NetError::NotSupported),
        }
    }

    /// Connects to `to` (binding an anonymous port first if unbound): only
    /// `to`'s datagrams are received from now on, and [`send`](Self::send)
    /// goes to it.
    pub fn connect(&self, to: SocketAddrV4) -> Result<(), NetError> {
        self.bound()?;
        self.with_udp(|s| s.connect(to))
    }

    /// Sends `data` to the connected peer.
    pub fn send(&self, data: &[u8]) -> Result<(), NetError> {
        if self.write_shut.load(Ordering::Acquire) {
            return Err(NetError::ShutDown);
        }
        self.with_udp(|s| s.send(data))
    }

    /// Sends `data` to `to` (binding an anonymous port first if unbound).
    pub fn send_to(&self, to: SocketAddrV4, data: &[u8]) -> Result<(), NetError> {
        if self.write_shut.load(Ordering::Acquire) {
            return Err(NetError::ShutDown);
        }
        self.bound()?;
        self.with_udp(|s| s.send_to(to, data))
    }

    /// [`send_to`](Self::send_to) of a buffer the caller gives away.
    pub fn send_vec(&self, to: SocketAddrV4, data: alloc::vec::Vec<u8>) -> Result<(), NetError> {
        if self.write_shut.load(Ordering::Acquire) {
            return Err(NetError::ShutDown);
        }
        self.bound()?;
        self.with_udp(|s| s.send_vec(to, data))
    }

    /// The oldest datagram, whole (for in-kernel users: no copy);
    /// `Ok(None)` when none is waiting (EWOULDBLOCK).
    pub fn recv_datagram(&self) -> Result<Option<Datagram>, NetError> {
        if self.read_shut.load(Ordering::Acquire) {
            return Err(NetError::ShutDown);
        }
        let Some(s) = self.udp() else { return Ok(None) };
        if let Some(e) = s.take_error() {
            return Err(e);
        }
        Ok(s.recv_from())
    }

    /// `recvfrom`: the oldest datagram's sender and length, its first
    /// `buf.len()` bytes copied into `buf` (the rest discarded, as
    /// `recvfrom` truncates); `Ok(None)` when none is waiting.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<Option<(SocketAddrV4, usize)>, NetError> {
        Ok(self.recv_datagram()?.map(|d| {
            let n = d.data.len().min(buf.len());
            buf[..n].copy_from_slice(&d.data[..n]);
            (d.from, d.data.len())
        }))
    }

    /// Shuts down reading, writing or both of a connected socket.
    pub fn shutdown(&self, how: Shutdown) -> Result<(), NetError> {
        let Some(s) = self.udp().filter(|s| s.peer().is_some()) else { return Err(NetError::NotConnected) };
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read_shut.store(true, Ordering::Release);
            s.shut_read();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.write_shut.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// What the socket could do now.
    pub fn poll(&self) -> Readiness {
        let read_shut = self.read_shut.load(Ordering::Acquire);
        let write_shut = self.write_shut.load(Ordering::Acquire);
        let (waiting, error) = self.udp().map_or((false, false), |s| (s.pending() > 0, s.has_error()));
        Readiness {
            readable: waiting || read_shut || error,
            writable: !write_shut,
            error,
            read_shut,
            write_shut,
        }
    }

    /// Calls `f` (inside the conn's squeue: short, non-blocking) whenever
    /// the socket may have become readable.
    pub fn set_upcall(&self, f: Option<Upcall>) {
        *self.upcall.lock() = f.clone();
        if let Some(s) = self.udp() {
            s.set_upcall(f);
        }
    }

    /// The local address, once bound.
    pub fn local(&self) -> Option<SocketAddrV4> {
        self.udp().map(|s| s.local())
    }

    /// The peer, once connected.
    pub fn peer(&self) -> Option<SocketAddrV4> {
        self.udp().and_then(|s| s.peer())
    }

    /// Datagrams the socket lost: its queue full, or arriving after
    /// `shutdown(Read)`.
    pub fn dropped(&self) -> u64 {
        self.udp().map_or(0, |s| s.overflows() + s.discarded())
    }

    /// Binds an anonymous port if not bound yet.
    fn bound(&self) -> Result<(), NetError> {
        if self.udp.lock().is_some() {
            return Ok(());
        }
        match self.bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)) {
            // Bound meanwhile by another caller: fine.
            Err(NetError::InvalidArgument) => Ok(()),
            r => r,
        }
    }

    fn udp(&self) -> Option<Arc<UdpSocket>> {
        self.udp.lock().clone()
    }

    fn with_udp<T>(&self, f: impl FnOnce(&UdpSocket) -> Result<T, NetError>) -> Result<T, NetError> {
        let s = self.udp().ok_or(NetError::NotConnected)?;
        f(&s)
    }
}
