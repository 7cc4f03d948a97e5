//! What classification reads from a packet (illumos `flow_state_t`): the
//! IP version, addresses, protocol, ports and DS field of an Ethernet
//! frame, seen from the link — on receive the *local* side is the
//! destination, on transmit the source.
//!
//! * Ethernet II with type 0x0800 (IPv4) or 0x86DD (IPv6); frames reach
//!   the flows untagged (the switch strips VLAN tags on receive, clients
//!   tag after classification on transmit). Anything else has no key.
//! * IPv4: version 4, IHL of at least 5 words inside the frame. Ports are
//!   read only from the first fragment: a non-first fragment (fragment
//!   offset ≠ 0) carries no ports and matches no port flow.
//! * IPv6: the fixed 40-byte header only. Extension headers are not
//!   walked: a packet whose next header is one (hop-by-hop, routing,
//!   fragment, ...) has that as its protocol and no ports, so it matches
//!   no transport flow (illumos walks them; this is a documented limit).
//! * Ports for TCP, UDP and SCTP, when the 4 bytes are in the first
//!   buffer of the packet (headers split across buffers: no ports).
//!
//! A frame that is short or malformed simply yields no key (or no ports):
//! it matches no flow. Nothing here panics.

/// The direction of a packet through the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Received: local = destination.
    Rx,
    /// Transmitted: local = source.
    Tx,
}

/// The classification key of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PktKey {
    pub v6: bool,
    /// IPv4 addresses in the first four bytes, the rest zero.
    pub local: [u8; 16],
    pub remote: [u8; 16],
    pub proto: u8,
    /// `None` without ports (another protocol, a non-first fragment, too
    /// short).
    pub ports: Option<(u16, u16)>,
    /// IPv4 TOS / IPv6 traffic class.
    pub ds: u8,
}

impl PktKey {
    /// The local port, if any.
    #[inline]
    pub fn local_port(&self) -> Option<u16> {
        self.ports.map(|p| p.0)
    }

    /// The remote port, if any.
    #[inline]
    pub fn remote_port(&self) -> Option<u16> {
        self.ports.map(|p| p.1)
    }
}

#[inline]
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

#[inline]
fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}

/// Reads the key of Ethernet frame `f` travelling in direction `dir`.
#[inline]
pub fn parse(f: &[u8], dir: Dir) -> Option<PktKey> {
    let et = be16(f, 12)?;
    let (v6, src, dst, proto, l4, ds, first_frag) = match et {
        0x0800 => {
            let ip = f.get(14..34)?;
            if ip[0] >> 4 != 4 {
                return None;
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            if ihl < 20 || f.len() < 14 + ihl {
                return None;
            }
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src[..4].copy_from_slice(&ip[12..16]);
            dst[..4].copy_from_slice(&ip[16..20]);
            let frag_off = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
            (false, src, dst, ip[9], 14 + ihl, ip[1], frag_off == 0)
        }
        0x86dd => {
            let ip = f.get(14..54)?;
            if ip[0] >> 4 != 6 {
                return None;
            }
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            dst.copy_from_slice(&ip[24..40]);
            let tc = (ip[0] << 4) | (ip[1] >> 4);
            (true, src, dst, ip[6], 54, tc, true)
        }
        _ => return None,
    };
    let ports = if first_frag && has_ports(proto) {
        match (be16(f, l4), be16(f, l4 + 2)) {
            (Some(s), Some(d)) => Some((s, d)),
            _ => None,
        }
    } else {
        None
    };
    Some(match dir {
        Dir::Rx => PktKey { v6, local: dst, remote: src, proto, ports: ports.map(|(s, d)| (d, s)), ds },
        Dir::Tx => PktKey { v6, local: src, remote: dst, proto, ports, ds },
    })
}
