//! UDP (RFC 768) over the classifier: the `udp_t` of a conn, binding and
//! connecting (the UDP fanout table), classifying a datagram into its
//! conn, and the socket handle the in-kernel services use.
//!
//! A UDP endpoint is a [`Conn`]`<`[`UdpPcb`]`>` in the classifier's UDP
//! table, keyed by local port, with its local address (INADDR_ANY or one
//! of ours) and, once connected, the foreign address and port; lookups
//! prefer a conn connected to the sender, then an exact local address,
//! then the wildcard (`ipcl_classify_v4`).
//!
//! This room does not know the instance: what needs the rest of the stack
//! (entering the conn's squeue to send, choosing a source address, closing)
//! goes through the [`UdpHost`] the instance implements.
//!
//! Binding follows illumos without `SO_REUSEADDR`: a port held by any UDP
//! conn is in use. Port 0 picks an anonymous port from
//! `smallest_anon_port..=largest_anon_port`.

use alloc::sync::Weak;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::sync::atomic::{AtomicU16, Ordering};

use arbalest_mac::sync::Mutex;

use super::classifier::{ClassifyError, Classifier};
use super::conn::{Conn, ConnRef, ConnTuple, IPPROTO_UDP};
use super::icmp::IcmpErrorKind;
use super::ip::mib::{UdpMib, bump};
use super::sock::{Datagram, Delivery, RcvQueue, Upcall};
use super::wire::udp::{UDP_HEADER_LEN, UdpHeader};
use crate::config::is_unicast;
use crate::stack::{NetError, UdpEndpoint};

/// The largest UDP payload in one IPv4 datagram.
pub const UDP_MAX_PAYLOAD: usize = 65_507;

/// `udp_t`: what a UDP conn has beyond `conn_t`.
pub struct UdpPcb {
    /// Datagrams waiting to be read.
    pub rcvq: RcvQueue,
    /// The route of the last destination sent to (illumos caches it in
    /// the conn's `ixa`): reused while the instance's routing generation
    /// is unchanged. Touched only inside the conn's squeue.
    pub route: Mutex<Option<CachedRoute>>,
    /// An ICMP error reported for the peer of a connected socket
    /// (`so_error`), returned once by the next send or receive.
    pub error: Mutex<Option<NetError>>,
}

/// A route lookup a conn keeps: for `dst`, at routing `generation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedRoute {
    /// The destination it was looked up for.
    pub dst: Ipv4Addr,
    /// The next hop and source address.
    pub next_hop: Ipv4Addr,
    /// The source address the route gives.
    pub src: Ipv4Addr,
    /// The instance's routing generation at the lookup.
    pub generation: u64,
}

/// A UDP conn.
pub type UdpConn = Conn<UdpPcb>;

/// What a UDP socket needs from its instance.
pub trait UdpHost: Send + Sync {
    /// Sends `data` from `conn` to `to`, through the conn's squeue.
    fn udp_send(&self, conn: &ConnRef<UdpPcb>, to: SocketAddrV4, data: Vec<u8>) -> Result<(), NetError>;
    /// The source address the instance would use towards `dst`, if it
    /// reaches it.
    fn udp_source_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr>;
    /// The classifier the conn lives in.
    fn udp_classifier(&self) -> &Classifier<UdpPcb>;
    /// The conn is closing: the instance forgets it (its squeue's count).
    fn udp_closed(&self, conn: &ConnRef<UdpPcb>);
}

/// Binds a new UDP conn to `laddr:port` in `cl` (`port` 0: the next free
/// port of `anon`, starting the search at `next`), bound to squeue `sqp`
/// with a receive queue of `recv_buf` bytes.
pub fn bind(
    cl: &Classifier<UdpPcb>,
    laddr: Ipv4Addr,
    port: u16,
    anon: (u16, u16),
    next: &AtomicU16,
    sqp: u32,
    recv_buf: usize,
) -> Result<ConnRef<UdpPcb>, NetError> {
    let port = if port != 0 {
        if cl.port_in_use(IPPROTO_UDP, port) {
            return Err(NetError::AddrInUse);
        }
        port
    } else {
        pick_anon(cl, anon, next)?
    };
    let conn = Conn::new(ConnTuple::bound(IPPROTO_UDP, laddr, port), sqp, UdpPcb { rcvq: RcvQueue::new(recv_buf), route: Mutex::new(None), error: Mutex::new(None) });
    cl.insert_udp(&conn).map_err(refusal)?;
    Ok(conn)
}

/// The next anonymous port of `lo..=hi` no UDP conn holds.
fn pick_anon(cl: &Classifier<UdpPcb>, (lo, hi): (u16, u16), next: &AtomicU16) -> Result<u16, NetError> {
    let (lo, hi) = (lo.min(hi).max(1), hi.max(lo).max(1));
    let span = u32::from(hi - lo) + 1;
    for _ in 0..span {
        let p = lo + (u32::from(next.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if !cl.port_in_use(IPPROTO_UDP, p) {
            return Ok(p);
        }
    }
    Err(NetError::AddrInUse)
}

fn refusal(e: ClassifyError) -> NetError {
    match e {
        ClassifyError::AddrInUse => NetError::AddrInUse,
        ClassifyError::TableFull(_) => NetError::TooManyConnections,
        ClassifyError::Invalid | ClassifyError::Condemned => NetError::InvalidArgument,
    }
}

/// The conn a datagram from `src:sport` to `dst:dport` goes to.
pub fn classify(cl: &Classifier<UdpPcb>, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Option<ConnRef<UdpPcb>> {
    cl.lookup_udp(src, sport, dst, dport)
}

/// The connected conn that sent the datagram an ICMP error quotes (from
/// `local` to `remote`), if there is one: only a connected socket hears of
/// errors (RFC 1122 4.1.3.3; BSD and illumos report them to connected
/// sockets only, since an unconnected one cannot tell whose they are).
pub fn conn_for_error(cl: &Classifier<UdpPcb>, local: SocketAddrV4, remote: SocketAddrV4) -> Option<ConnRef<UdpPcb>> {
    let c = cl.lookup_udp(*remote.ip(), remote.port(), *local.ip(), local.port())?;
    (c.is_connected() && c.faddr() == *remote.ip() && c.fport() == remote.port()).then_some(c)
}

/// What a socket's user sees of an ICMP error `kind` about its peer:
/// port or protocol unreachable → connection refused (ECONNREFUSED), other
/// unreachables → unreachable; `None` for errors a UDP socket does not
/// report (time exceeded, fragmentation needed: IP's business).
pub fn error_of(kind: IcmpErrorKind) -> Option<NetError> {
    match kind {
        IcmpErrorKind::PortUnreachable | IcmpErrorKind::ProtocolUnreachable => Some(NetError::ConnectionRefused),
        IcmpErrorKind::Unreachable { .. } => Some(NetError::Unreachable),
        _ => None,
    }
}

/// Records `err` on `conn` (inside its squeue) and wakes its reader.
pub fn report_error(conn: &UdpConn, err: NetError) {
    if conn.is_condemned() {
        return;
    }
    *conn.proto.error.lock() = Some(err);
    conn.proto.rcvq.wake();
}

/// Queues `dgram` on `conn` (inside its squeue), counting it.
pub fn deliver(conn: &UdpConn, dgram: Datagram, mib: &UdpMib) {
    if conn.is_condemned() {
        // Closed while the datagram was on its way.
        bump(&mib.udp_in_errors);
        return;
    }
    match conn.proto.rcvq.deliver(dgram) {
        // Shut for reading: delivered to the socket, which discards it
        // (counted there).
        Delivery::Queued | Delivery::Shut => bump(&mib.udp_in_datagrams),
        Delivery::Full => {
            bump(&mib.udp_in_overflows);
            bump(&mib.udp_in_errors);
        }
    }
}

/// The UDP header and payload of a datagram from `src:sport` to `to`,
/// checksummed.
pub fn build(src: Ipv4Addr, sport: u16, to: SocketAddrV4, data: &[u8], partial: bool) -> Option<Vec<u8>> {
    let mut dgram = alloc::vec![0u8; UDP_HEADER_LEN + data.len()];
    dgram[UDP_HEADER_LEN..].copy_from_slice(data);
    let h = UdpHeader { src_port: sport, dst_port: to.port() };
    if partial {
        h.emit_partial(&mut dgram, src, *to.ip()).ok()?;
    } else {
        h.emit(&mut dgram, src, *to.ip()).ok()?;
    }
    Some(dgram)
}

/// Offset of the checksum in the UDP header.
pub const UDP_CKSUM_OFFSET: u16 = 6;

/// Completes the UDP checksum of the IPv4 datagram `ip` in software, from
/// scratch, whatever its field holds (a complete sum, or the pseudo-header
/// sum a partial-checksum offload would have finished). Only for a whole,
/// unfragmented UDP datagram; anything else is left as it is.
pub fn finish_cksum_in(ip: &mut [u8]) {
    let Ok((h, _)) = super::wire::ipv4::Ipv4Header::parse_quoted(ip) else { return };
    if h.protocol != IPPROTO_UDP || h.more_frags || h.frag_offset != 0 {
        return;
    }
    let (hl, total) = (h.header_len(), h.total_len());
    if total > ip.len() || total < hl + UDP_HEADER_LEN {
        return;
    }
    let d = &mut ip[hl..total];
    let (src, dst) = (h.src, h.dst);
    let hdr = UdpHeader { src_port: u16::from_be_bytes([d[0], d[1]]), dst_port: u16::from_be_bytes([d[2], d[3]]) };
    let _ = hdr.emit(d, src, dst);
}

/// Every UDP conn of `cl`, for `netstat -an`, by local port.
pub fn endpoints(cl: &Classifier<UdpPcb>) -> Vec<UdpEndpoint> {
    let mut v = Vec::new();
    cl.walk(&mut |c| {
        if c.protocol() != IPPROTO_UDP {
            return;
        }
        let t = c.tuple();
        let remote = t.is_connected().then(|| SocketAddrV4::new(t.faddr, t.fport));
        v.push(UdpEndpoint { local: SocketAddrV4::new(t.laddr, t.lport), remote });
    });
    v.sort_by_key(|e| (e.local.port(), u32::from(*e.local.ip()), e.remote.map(|r| (u32::from(*r.ip()), r.port()))));
    v
}

/// An open UDP socket (the in-kernel socket interface's datagram socket).
/// Closed when dropped.
pub struct UdpSocket {
    conn: ConnRef<UdpPcb>,
    host: Weak<dyn UdpHost>,
}

impl UdpSocket {
    /// A socket for a conn already bound by [`bind`].
    pub fn new(conn: ConnRef<UdpPcb>, host: Weak<dyn UdpHost>) -> UdpSocket {
        UdpSocket { conn, host }
    }

    /// The conn (for the instance).
    pub fn conn(&self) -> &ConnRef<UdpPcb> {
        &self.conn
    }

    /// The local address and port.
    pub fn local(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.conn.laddr(), self.conn.lport())
    }

    /// The peer, once connected.
    pub fn peer(&self) -> Option<SocketAddrV4> {
        self.conn.is_connected().then(|| SocketAddrV4::new(self.conn.faddr(), self.conn.fport()))
    }

    /// Connects to `to`: only its datagrams are delivered from now on and
    /// [`UdpSocket::send`] goes to it. A wildcard local address becomes the
    /// source address of the route to `to`.
    pub fn connect(&self, to: SocketAddrV4) -> Result<(), NetError> {
        let host = self.host.upgrade().ok_or(NetError::NotConnected)?;
        if !(is_unicast(*to.ip()) || to.ip().is_loopback()) || to.port() == 0 {
            return Err(NetError::InvalidAddress);
        }
        let src = match self.conn.laddr() {
            a if a.is_unspecified() => host.udp_source_for(*to.ip()).ok_or(NetError::Unreachable)?,
            a => a,
        };
        let old = self.conn.tuple();
        self.conn.set_local(src, old.lport);
        self.conn.set_foreign(*to.ip(), to.port());
        if let Err(e) = host.udp_classifier().insert_udp(&self.conn) {
            // Put the old addresses back and keep the old binding.
            self.conn.set_local(old.laddr, old.lport);
            self.conn.set_foreign(old.faddr, old.fport);
            let _ = host.udp_classifier().insert_udp(&self.conn);
            return Err(refusal(e));
        }
        Ok(())
    }

    /// Sends `data` to `to` (through the conn's squeue). Datagrams larger
    /// than the link's MTU are fragmented.
    pub fn send_to(&self, to: SocketAddrV4, data: &[u8]) -> Result<(), NetError> {
        self.send_vec(to, data.to_vec())
    }

    /// [`send_to`](Self::send_to) of a buffer the caller gives away (an
    /// echo service sends back what it received, with no copy).
    pub fn send_vec(&self, to: SocketAddrV4, data: Vec<u8>) -> Result<(), NetError> {
        let host = self.host.upgrade().ok_or(NetError::NotConnected)?;
        if data.len() > UDP_MAX_PAYLOAD {
            return Err(NetError::InvalidArgument);
        }
        if !(is_unicast(*to.ip()) || to.ip().is_loopback()) || to.port() == 0 {
            return Err(NetError::InvalidAddress);
        }
        if let Some(peer) = self.peer()
            && peer != to
        {
            // A connected socket sends only to its peer (EISCONN).
            return Err(NetError::InvalidArgument);
        }
        if let Some(e) = self.take_error() {
            // The peer refused an earlier datagram: said once, here.
            return Err(e);
        }
        host.udp_send(&self.conn, to, data)
    }

    /// The pending ICMP error of a connected socket, taken (cleared).
    pub fn take_error(&self) -> Option<NetError> {
        self.conn.proto.error.lock().take()
    }

    /// Sends `data` to the connected peer; a pending error (the peer's
    /// port was unreachable, say) is returned instead, once.
    pub fn send(&self, data: &[u8]) -> Result<(), NetError> {
        let peer = self.peer().ok_or(NetError::NotConnected)?;
        self.send_to(peer, data)
    }

    /// The oldest datagram received, if any.
    pub fn recv_from(&self) -> Option<Datagram> {
        self.conn.proto.rcvq.recv()
    }

    /// Calls `f` (inside the conn's squeue: short, non-blocking) whenever a
    /// datagram has been queued.
    pub fn set_upcall(&self, f: Option<Upcall>) {
        self.conn.proto.rcvq.set_upcall(f);
    }

    /// Datagrams refused because the receive queue was full.
    pub fn overflows(&self) -> u64 {
        self.conn.proto.rcvq.overflows()
    }

    /// Datagrams waiting to be read.
    pub fn pending(&self) -> usize {
        self.conn.proto.rcvq.len()
    }

    /// Whether an ICMP error is pending.
    pub fn has_error(&self) -> bool {
        self.conn.proto.error.lock().is_some()
    }

    /// Stops receiving (`shutdown(Read)`): what waits is discarded, and
    /// what comes.
    pub fn shut_read(&self) {
        self.conn.proto.rcvq.shut();
    }

    /// Datagrams discarded because reading was shut down.
    pub fn discarded(&self) -> u64 {
        self.conn.proto.rcvq.discarded()
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.conn.proto.rcvq.set_upcall(None);
        if let Some(host) = self.host.upgrade() {
            if host.udp_classifier().remove(&self.conn) {
                host.udp_closed(&self.conn);
            }
        } else {
            self.conn.condemn();
        }
        self.conn.proto.rcvq.clear();
    }
}
