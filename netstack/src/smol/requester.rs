//! ICMP echo requesters: one smoltcp ICMP socket per open [`PingId`], bound
//! to its ICMP identifier. Requests are queued in the socket and leave at
//! the next poll; replies are taken out of the socket during each poll and
//! stamped with that poll's clock, so the round-trip time does not depend
//! on when the shell looks.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
use smoltcp::wire::{IpAddress, Icmpv4Packet, Icmpv4Repr};

use crate::config::is_unicast;
use crate::stack::{EchoReply, NetError, PingId};

/// Requesters one instance holds at most.
pub const MAX_REQUESTERS: usize = 8;
/// Replies kept per requester until read.
const MAX_REPLIES: usize = 64;
/// Requests/replies each socket queues.
const SOCKET_PACKETS: usize = 16;

struct Requester {
    id: PingId,
    handle: SocketHandle,
    replies: VecDeque<EchoReply>,
}

/// The open requesters of an instance.
pub struct Requesters {
    open: Vec<Requester>,
    next_ident: u16,
    max_data: usize,
}

impl Requesters {
    /// No requesters; identifiers start at `seed`; requests carry at most
    /// `max_data` bytes of data.
    pub fn new(seed: u16, max_data: usize) -> Requesters {
        Requesters { open: Vec::new(), next_ident: seed, max_data }
    }

    /// Opens a requester with a fresh identifier.
    pub fn open(&mut self, sockets: &mut SocketSet<'static>) -> Result<PingId, NetError> {
        if self.open.len() >= MAX_REQUESTERS {
            return Err(NetError::TooManyRequesters);
        }
        let mut ident = self.next_ident;
        while self.open.iter().any(|r| r.id.0 == ident) {
            ident = ident.wrapping_add(1);
        }
        self.next_ident = ident.wrapping_add(1);
        let bytes = SOCKET_PACKETS * (self.max_data + 8);
        let buffer = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; SOCKET_PACKETS], vec![0u8; bytes]);
        let mut socket = icmp::Socket::new(buffer(), buffer());
        socket.bind(icmp::Endpoint::Ident(ident)).map_err(|_| NetError::InvalidArgument)?;
        let handle = sockets.add(socket);
        self.open.push(Requester { id: PingId(ident), handle, replies: VecDeque::new() });
        Ok(PingId(ident))
    }

    /// Closes a requester (unknown ids are ignored).
    pub fn close(&mut self, sockets: &mut SocketSet<'static>, id: PingId) {
        if let Some(i) = self.open.iter().position(|r| r.id == id) {
            let r = self.open.swap_remove(i);
            sockets.remove(r.handle);
        }
    }

    /// Queues an echo request.
    pub fn send(
        &mut self,
        sockets: &mut SocketSet<'static>,
        id: PingId,
        dst: Ipv4Addr,
        seq: u16,
        data: &[u8],
    ) -> Result<(), NetError> {
        let r = self.open.iter().find(|r| r.id == id).ok_or(NetError::NotFound)?;
        if !is_unicast(dst) {
            return Err(NetError::InvalidAddress);
        }
        if data.len() > self.max_data {
            return Err(NetError::InvalidArgument);
        }
        let repr = Icmpv4Repr::EchoRequest { ident: id.0, seq_no: seq, data };
        let socket = sockets.get_mut::<icmp::Socket>(r.handle);
        let buf = socket.send(repr.buffer_len(), IpAddress::Ipv4(dst)).map_err(|e| match e {
            icmp::SendError::BufferFull => NetError::NoBuffers,
            icmp::SendError::Unaddressable => NetError::InvalidAddress,
        })?;
        let mut packet = Icmpv4Packet::new_unchecked(buf);
        repr.emit(&mut packet, &ChecksumCapabilities::default());
        Ok(())
    }

    /// Moves replies out of the sockets, stamped `now_us`.
    pub fn collect(&mut self, sockets: &mut SocketSet<'static>, now_us: u64) {
        for r in &mut self.open {
            let socket = sockets.get_mut::<icmp::Socket>(r.handle);
            while let Ok((bytes, from)) = socket.recv() {
                // Only IPv4 exists here; the `else` keeps this compiling
                // should IPv6 be enabled in smoltcp.
                #[allow(irrefutable_let_patterns)]
                let IpAddress::Ipv4(from) = from else { continue };
                let Ok(packet) = Icmpv4Packet::new_checked(bytes) else { continue };
                let Ok(repr) = Icmpv4Repr::parse(&packet, &ChecksumCapabilities::ignored()) else { continue };
                if let Icmpv4Repr::EchoReply { ident, seq_no, data } = repr
                    && ident == r.id.0
                {
                    if r.replies.len() == MAX_REPLIES {
                        r.replies.pop_front();
                    }
                    r.replies.push_back(EchoReply { from, seq: seq_no, len: data.len() + 8, at_us: now_us });
                }
            }
        }
    }

    /// The next reply for `id`.
    pub fn recv(&mut self, id: PingId) -> Option<EchoReply> {
        self.open.iter_mut().find(|r| r.id == id)?.replies.pop_front()
    }
}
