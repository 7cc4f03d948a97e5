//! ARP for Ethernet and IPv4 (RFC 826): a packet that parses with every
//! field checked and emits.

use core::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const ARP_LEN: usize = 28;
/// `ar_op` of a request.
pub const ARP_REQUEST: u16 = 1;
/// `ar_op` of a reply.
pub const ARP_REPLY: u16 = 2;

/// What is wrong with an ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpError {
    /// Shorter than 28 bytes.
    Truncated,
    /// Hardware type not Ethernet (1) or length not 6.
    BadHardware,
    /// Protocol type not IPv4 (0x0800) or length not 4.
    BadProtocol,
    /// Operation neither request nor reply.
    BadOp,
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    /// [`ARP_REQUEST`] or [`ARP_REPLY`].
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: [u8; 6],
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl ArpPacket {
    /// Parses the packet at the start of `b` (Ethernet padding after it is
    /// ignored).
    pub fn parse(b: &[u8]) -> Result<ArpPacket, ArpError> {
        if b.len() < ARP_LEN {
            return Err(ArpError::Truncated);
        }
        if u16::from_be_bytes([b[0], b[1]]) != 1 || b[4] != 6 {
            return Err(ArpError::BadHardware);
        }
        if u16::from_be_bytes([b[2], b[3]]) != 0x0800 || b[5] != 4 {
            return Err(ArpError::BadProtocol);
        }
        let op = u16::from_be_bytes([b[6], b[7]]);
        if op != ARP_REQUEST && op != ARP_REPLY {
            return Err(ArpError::BadOp);
        }
        let mac = |o: usize| [b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5]];
        let ip = |o: usize| Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]);
        Ok(ArpPacket { op, sha: mac(8), spa: ip(14), tha: mac(18), tpa: ip(24) })
    }

    /// The 28 bytes of the packet.
    pub fn emit(&self) -> [u8; ARP_LEN] {
        let mut b = [0u8; ARP_LEN];
        b[0..2].copy_from_slice(&1u16.to_be_bytes());
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sha);
        b[14..18].copy_from_slice(&self.spa.octets());
        b[18..24].copy_from_slice(&self.tha);
        b[24..28].copy_from_slice(&self.tpa.octets());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_bad_field() {
        let p = ArpPacket { op: ARP_REQUEST, sha: [2, 0, 0, 0, 0, 1], spa: Ipv4Addr::new(10, 0, 0, 1), tha: [0; 6], tpa: Ipv4Addr::new(10, 0, 0, 2) };
        let b = p.emit();
        assert_eq!(ArpPacket::parse(&b), Ok(p));
        assert_eq!(ArpPacket::parse(&b[..27]), Err(ArpError::Truncated));
        for (i, v, e) in [(1, 2, ArpError::BadHardware), (4, 8, ArpError::BadHardware), (3, 6, ArpError::BadProtocol), (5, 16, ArpError::BadProtocol), (7, 3, ArpError::BadOp)] {
            let mut x = b;
            x[i] = v;
            assert_eq!(ArpPacket::parse(&x), Err(e), "byte {i}");
        }
    }
}
