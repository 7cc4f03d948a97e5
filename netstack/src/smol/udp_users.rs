//! UDP sockets opened by local users (`udpecho`, through
//! [`crate::IpStack::udp_open`]): one smoltcp UDP socket per open
//! [`UdpId`], bound to a port of every address of the instance, with
//! bounded queues ([`QUEUE_PACKETS`] datagrams, [`QUEUE_BYTES`] bytes each
//! way), at most [`MAX_USER_UDP`] per instance.
//!
//! A port is in use while any UDP socket of the instance (the echo
//! service's too) holds it; port 0 picks a free one from illumos'
//! anonymous range (`32768..=65535`). Sending checks what smoltcp would
//! otherwise drop silently at transmit time: the destination must be a
//! unicast address that is not the instance's own, reached by one of its
//! subnets or routes, and the datagram must fit the fragmentation buffer
//! ([`MAX_TX_DATAGRAM`]). The source address is the one of the subnet
//! that reaches the destination (the caller picks it). Closing removes
//! the socket and what it still queues.

use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::{Socket, udp};
use smoltcp::wire::{IpAddress, IpEndpoint};

use super::device::MAX_TX_DATAGRAM;
use crate::config::is_unicast;
use crate::stack::{NetError, UdpEndpoint, UdpId};

/// Sockets one instance holds at most.
pub const MAX_USER_UDP: usize = 8;
/// Datagrams each queue of a socket holds.
pub const QUEUE_PACKETS: usize = 64;
/// Payload bytes each queue of a socket holds.
pub const QUEUE_BYTES: usize = 64 * 1024;
/// The largest payload a socket sends: the IPv4 and UDP headers and the
/// payload must fit [`MAX_TX_DATAGRAM`].
pub const MAX_PAYLOAD: usize = MAX_TX_DATAGRAM - 28;
/// First anonymous port (illumos `udp_smallest_anon_port`).
pub const ANON_FIRST: u16 = 32768;

struct User {
    id: UdpId,
    handle: SocketHandle,
}

/// The user sockets of an instance.
pub struct UdpUsers {
    open: Vec<User>,
    next_id: u32,
    next_port: u16,
}

/// The local port of every UDP socket in `sockets`.
fn ports_in_use<'a>(sockets: &'a SocketSet<'static>) -> impl Iterator<Item = u16> + 'a {
    sockets.iter().filter_map(|(_, s)| match s {
        Socket::Udp(u) => Some(u.endpoint().port),
        #[allow(unreachable_patterns)]
        _ => None,
    })
}

impl UdpUsers {
    /// No sockets; anonymous ports start at a place `seed` picks.
    pub fn new(seed: u64) -> UdpUsers {
        let span = u64::from(u16::MAX - ANON_FIRST) + 1;
        UdpUsers { open: Vec::new(), next_id: 1, next_port: ANON_FIRST + (seed % span) as u16 }
    }

    fn handle(&self, id: UdpId) -> Result<SocketHandle, NetError> {
        self.open.iter().find(|u| u.id == id).map(|u| u.handle).ok_or(NetError::NotFound)
    }

    fn anon_port(&mut self, sockets: &SocketSet<'static>) -> Option<u16> {
        let used: Vec<u16> = ports_in_use(sockets).collect();
        for _ in 0..=(u16::MAX - ANON_FIRST) {
            let p = self.next_port;
            self.next_port = if p == u16::MAX { ANON_FIRST } else { p + 1 };
            if !used.contains(&p) {
                return Some(p);
            }
        }
        None
    }

    /// Opens a socket on `port` (0: an anonymous one).
    pub fn open(&mut self, sockets: &mut SocketSet<'static>, port: u16) -> Result<UdpId, NetError> {
        if self.open.len() >= MAX_USER_UDP {
            return Err(NetError::TooManyConnections);
        }
        let port = if port == 0 {
            self.anon_port(sockets).ok_or(NetError::AddrInUse)?
        } else if ports_in_use(sockets).any(|p| p == port) {
            return Err(NetError::AddrInUse);
        } else {
            port
        };
        let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; QUEUE_PACKETS], vec![0u8; QUEUE_BYTES]);
        let mut s = udp::Socket::new(buffer(), buffer());
        s.bind(port).map_err(|_| NetError::InvalidArgument)?;
        let handle = sockets.add(s);
        let mut id = self.next_id;
        while id == 0 || self.open.iter().any(|u| u.id.0 == id) {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        self.open.push(User { id: UdpId(id), handle });
        Ok(UdpId(id))
    }

    /// Queues one datagram from `src` (the caller's choice of source for
    /// `to`; `None`: nothing reaches it) to `to`. `own`: whether `to` is
    /// one of the instance's addresses.
    pub fn send_to(
        &mut self,
        sockets: &mut SocketSet<'static>,
        id: UdpId,
        src: Option<Ipv4Addr>,
        own: bool,
        to: SocketAddrV4,
        data: &[u8],
    ) -> Result<(), NetError> {
        let handle = self.handle(id)?;
        if !is_unicast(*to.ip()) || to.port() == 0 {
            return Err(NetError::InvalidAddress);
        }
        if data.len() > MAX_PAYLOAD {
            return Err(NetError::MessageTooLong);
        }
        let src = match src {
            Some(s) if !own => s,
            _ => return Err(NetError::Unreachable),
        };
        let mut meta = udp::UdpMetadata::from(IpEndpoint::new(IpAddress::Ipv4(*to.ip()), to.port()));
        meta.local_address = Some(IpAddress::Ipv4(src));
        sockets.get_mut::<udp::Socket>(handle).send_slice(data, meta).map_err(|e| match e {
            udp::SendError::BufferFull => NetError::NoBuffers,
            udp::SendError::Unaddressable => NetError::InvalidAddress,
        })
    }

    /// Takes the oldest datagram received: copies what fits into `buf`,
    /// returns the sender and the datagram's whole length.
    pub fn recv_from(
        &mut self,
        sockets: &mut SocketSet<'static>,
        id: UdpId,
        buf: &mut [u8],
    ) -> Result<Option<(SocketAddrV4, usize)>, NetError> {
        let handle = self.handle(id)?;
        let s = sockets.get_mut::<udp::Socket>(handle);
        loop {
            let Ok((data, meta)) = s.recv() else { return Ok(None) };
            // Only IPv4 exists here; the `else` keeps this compiling should
            // IPv6 be enabled in smoltcp.
            #[allow(irrefutable_let_patterns)]
            let IpAddress::Ipv4(from) = meta.endpoint.addr else { continue };
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            return Ok(Some((SocketAddrV4::new(from, meta.endpoint.port), data.len())));
        }
    }

    /// Closes a socket (unknown ids are ignored).
    pub fn close(&mut self, sockets: &mut SocketSet<'static>, id: UdpId) {
        if let Some(i) = self.open.iter().position(|u| u.id == id) {
            let u = self.open.swap_remove(i);
            sockets.remove(u.handle);
        }
    }

    /// Open sockets.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// Every UDP endpoint in `sockets` (users' and services'), by port.
pub fn endpoints(sockets: &SocketSet<'static>) -> Vec<UdpEndpoint> {
    let mut v: Vec<UdpEndpoint> = sockets
        .iter()
        .filter_map(|(_, s)| match s {
            Socket::Udp(u) => {
                let ep = u.endpoint();
                #[allow(irrefutable_let_patterns)]
                let addr = match ep.addr {
                    Some(IpAddress::Ipv4(a)) => a,
                    _ => Ipv4Addr::UNSPECIFIED,
                };
                Some(UdpEndpoint { local: SocketAddrV4::new(addr, ep.port), remote: None })
            }
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .collect();
    v.sort_by_key(|e| e.local.port());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_ports_wrap_within_the_range() {
        let mut u = UdpUsers::new(u64::from(u16::MAX - ANON_FIRST) - 1);
        let s = SocketSet::new(Vec::new());
        assert_eq!(u.anon_port(&s), Some(65534));
        assert_eq!(u.anon_port(&s), Some(65535));
        assert_eq!(u.anon_port(&s), Some(ANON_FIRST));
    }
}
