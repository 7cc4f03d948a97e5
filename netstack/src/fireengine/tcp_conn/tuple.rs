//! The 4-tuple that names a TCP connection (local and remote address and
//! port), the input of the keyed hashes of [`super::isn`] and
//! [`super::syncookie`] and the key of a listener's queues
//! ([`super::listen_q`]).

use core::net::IpAddr;

/// A connection's addresses and ports, seen from our side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FourTuple {
    /// Our address.
    pub local: IpAddr,
    /// Our port.
    pub local_port: u16,
    /// The peer's address.
    pub remote: IpAddr,
    /// The peer's port.
    pub remote_port: u16,
}

/// Most bytes [`FourTuple::encode`] writes.
pub(super) const TUPLE_ENCODED_MAX: usize = 2 * (1 + 16 + 2);

impl FourTuple {
    /// A tuple.
    pub const fn new(local: IpAddr, local_port: u16, remote: IpAddr, remote_port: u16) -> Self {
        FourTuple { local, local_port, remote, remote_port }
    }

    /// The bytes the keyed hashes take, in RFC 6528's order (local
    /// address, local port, remote address, remote port): each address as
    /// a family byte (4 or 6) and its octets, each port big-endian.
    /// Returns the buffer and how much of it is used.
    pub(super) fn encode(&self) -> ([u8; TUPLE_ENCODED_MAX], usize) {
        let mut out = [0u8; TUPLE_ENCODED_MAX];
        let mut n = 0;
        for (addr, port) in [(self.local, self.local_port), (self.remote, self.remote_port)] {
            let (tag, octets, len): (u8, [u8; 16], usize) = match addr {
                IpAddr::V4(a) => {
                    let mut o = [0u8; 16];
                    let [b0, b1, b2, b3] = a.octets();
                    o[0] = b0;
                    o[1] = b1;
                    o[2] = b2;
                    o[3] = b3;
                    (4, o, 4)
                }
                IpAddr::V6(a) => (6, a.octets(), 16),
            };
            let field = core::iter::once(tag).chain(octets.into_iter().take(len)).chain(port.to_be_bytes());
            for (slot, b) in out.iter_mut().skip(n).zip(field) {
                *slot = b;
                n += 1;
            }
        }
        (out, n)
    }
}
