//! UDP echo (RFC 862): every datagram received on port 7 goes back to its
//! sender, from the address it was sent to (from the instance's address
//! on the sender's subnet when that was a broadcast address). A datagram leaves the receive
//! queue only once its answer is queued, so a full send queue delays
//! answers instead of losing them; datagrams that cannot be answered at all
//! (source port 0, or larger than the instance can send) are counted as
//! refused, and so are datagrams from the port of another echo-like
//! service (7, 9, 13, 19, 37): two echo services would bounce a datagram
//! between them forever.

use alloc::vec;

use smoltcp::iface::{SocketHandle, SocketSet};
use core::net::Ipv4Addr;

use smoltcp::socket::udp;
use smoltcp::wire::IpAddress;

use crate::smol::udp_users::MAX_PAYLOAD;
use crate::stack::{Proto, ServiceStats};

/// The port.
pub const PORT: u16 = 7;

/// The UDP echo socket and its counters.
pub struct UdpEcho {
    handle: SocketHandle,
    received: u64,
    refused: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl UdpEcho {
    /// Binds port 7 with queues of `packets` datagrams and `bytes` bytes.
    pub fn new(sockets: &mut SocketSet<'static>, packets: usize, bytes: usize) -> UdpEcho {
        let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; packets.max(1)], vec![0u8; bytes.max(16 * 1024)]);
        let mut socket = udp::Socket::new(buffer(), buffer());
        // Binding a fresh socket to a non-zero port cannot fail.
        let _ = socket.bind(PORT);
        let handle = sockets.add(socket);
        UdpEcho { handle, received: 0, refused: 0, bytes_in: 0, bytes_out: 0 }
    }

    /// Answers queued datagrams while the send queue takes them; `ours`
    /// tells the instance's unicast addresses.
    pub fn run(&mut self, sockets: &mut SocketSet<'static>, scratch: &mut [u8], ours: &dyn Fn(Ipv4Addr) -> bool) {
        let s = sockets.get_mut::<udp::Socket>(self.handle);
        loop {
            let (n, meta) = match s.peek() {
                Ok((data, meta)) if matches!(meta.endpoint.port, 7 | 9 | 13 | 19 | 37) || data.len() > MAX_PAYLOAD => {
                    let n = data.len();
                    let _ = s.recv();
                    self.received += 1;
                    self.bytes_in += n as u64;
                    self.refused += 1;
                    continue;
                }
                Ok((data, meta)) if data.len() <= scratch.len() => {
                    scratch[..data.len()].copy_from_slice(data);
                    let mut meta = *meta;
                    #[allow(irrefutable_let_patterns)]
                    if let Some(IpAddress::Ipv4(to)) = meta.local_address
                        && !ours(to)
                    {
                        // Sent to a broadcast address: answer from ours
                        // (smoltcp picks the sender's subnet's).
                        meta.local_address = None;
                    }
                    (data.len(), meta)
                }
                Ok(_) => {
                    // Larger than any frame we accept: cannot happen; drop.
                    let _ = s.recv();
                    self.refused += 1;
                    continue;
                }
                Err(_) => break,
            };
            match s.send_slice(&scratch[..n], meta) {
                Ok(()) => {
                    self.bytes_out += n as u64;
                }
                Err(udp::SendError::BufferFull) => break,
                Err(udp::SendError::Unaddressable) => self.refused += 1,
            }
            let _ = s.recv();
            self.received += 1;
            self.bytes_in += n as u64;
        }
    }

    /// The service's counters.
    pub fn stats(&self) -> ServiceStats {
        ServiceStats {
            name: "echo",
            proto: Proto::Udp,
            port: PORT,
            accepted: self.received,
            refused: self.refused,
            active: 0,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
        }
    }
}
