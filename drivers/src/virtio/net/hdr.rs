//! `struct virtio_net_hdr` (virtio 1.x, 5.1.6): 12 bytes before every
//! packet in both directions (with `VERSION_1` the `num_buffers` field is
//! always present).
//!
//! ```text
//! flags u8 | gso_type u8 | hdr_len le16 | gso_size le16 |
//! csum_start le16 | csum_offset le16 | num_buffers le16
//! ```
//!
//! Transmit: [`NetHdr::for_tx`] turns a packet's [`PktMeta`] into the
//! header (`Cksum::Partial` → `NEEDS_CSUM`, `Gso` → `gso_type`/`gso_size`/
//! `hdr_len`). Receive: [`NetHdr::rx_meta`] turns the device's header into
//! metadata (`DATA_VALID` → `Verified`, GSO info of coalesced receives).

use arbalest_mac::{Cksum, Gso, GsoKind, PktMeta};

/// Size of the header.
pub const HDR_LEN: usize = 12;

pub const F_NEEDS_CSUM: u8 = 1;
pub const F_DATA_VALID: u8 = 2;
pub const F_RSC_INFO: u8 = 4;

pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
pub const GSO_ECN: u8 = 0x80;

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
    pub num_buffers: u16,
}

/// Transmit offloads the device accepted (from negotiated features).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOffloads {
    pub csum: bool,
    pub tso4: bool,
    pub tso6: bool,
}

/// Why a packet's metadata cannot be expressed to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxHdrError {
    /// Partial checksum requested but `CSUM` not negotiated.
    NoCsum,
    /// Segmentation of this kind not negotiated (or UDP, never offered).
    NoGso,
    /// Segmentation requested without a partial checksum: the device needs
    /// `NEEDS_CSUM` with every GSO packet.
    GsoWithoutCsum,
}

impl NetHdr {
    /// Decodes the first 12 bytes of `b` (zeros if shorter).
    pub fn decode(b: &[u8]) -> NetHdr {
        let mut h = [0u8; HDR_LEN];
        let n = b.len().min(HDR_LEN);
        h[..n].copy_from_slice(&b[..n]);
        let le = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        NetHdr {
            flags: h[0],
            gso_type: h[1],
            hdr_len: le(2),
            gso_size: le(4),
            csum_start: le(6),
            csum_offset: le(8),
            num_buffers: le(10),
        }
    }

    /// Encodes into the first 12 bytes of `out` (which must hold them).
    pub fn encode(&self, out: &mut [u8]) {
        if out.len() < HDR_LEN {
            return;
        }
        out[0] = self.flags;
        out[1] = self.gso_type;
        out[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        out[10..12].copy_from_slice(&self.num_buffers.to_le_bytes());
    }

    /// The bytes of the header.
    pub fn to_bytes(&self) -> [u8; HDR_LEN] {
        let mut b = [0; HDR_LEN];
        self.encode(&mut b);
        b
    }

    /// The header for transmitting a packet with metadata `meta`.
    pub fn for_tx(meta: &PktMeta, ok: TxOffloads) -> Result<NetHdr, TxHdrError> {
        let mut h = NetHdr::default();
        if let Cksum::Partial { start, offset } = meta.cksum {
            if !ok.csum {
                return Err(TxHdrError::NoCsum);
            }
            h.flags = F_NEEDS_CSUM;
            h.csum_start = start;
            h.csum_offset = offset;
        }
        if let Some(g) = meta.gso {
            h.gso_type = match g.kind {
                GsoKind::Tcp4 if ok.tso4 => GSO_TCPV4,
                GsoKind::Tcp6 if ok.tso6 => GSO_TCPV6,
                _ => return Err(TxHdrError::NoGso),
            };
            if h.flags & F_NEEDS_CSUM == 0 {
                return Err(TxHdrError::GsoWithoutCsum);
            }
            h.gso_size = g.mss;
            h.hdr_len = g.hdr_len;
        }
        Ok(h)
    }

    /// Metadata of a received packet on Rx ring `ring`.
    ///
    /// `NEEDS_CSUM` on receive means the sender (the host stack, through
    /// the TAP) left the checksum field to be completed and the data came
    /// over no wire: like Linux (`CHECKSUM_PARTIAL` is trusted for local
    /// delivery) it is reported as [`Cksum::Verified`]. A packet that
    /// would be forwarded out again would need its checksum completed
    /// (`csum_start`/`csum_offset` are not carried up; see the report).
    pub fn rx_meta(&self, ring: u16) -> PktMeta {
        let cksum = if self.flags & (F_DATA_VALID | F_NEEDS_CSUM) != 0 { Cksum::Verified } else { Cksum::None };
        let kind = match self.gso_type & !GSO_ECN {
            GSO_TCPV4 => Some(GsoKind::Tcp4),
            GSO_TCPV6 => Some(GsoKind::Tcp6),
            GSO_UDP | GSO_UDP_L4 => Some(GsoKind::Udp),
            _ => None,
        };
        let gso = kind.filter(|_| self.gso_size != 0).map(|kind| Gso { kind, mss: self.gso_size, hdr_len: self.hdr_len });
        PktMeta { cksum, gso, ring, hash: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: TxOffloads = TxOffloads { csum: true, tso4: true, tso6: true };

    #[test]
    fn encode_decode_roundtrip() {
        let h = NetHdr { flags: 1, gso_type: 4, hdr_len: 74, gso_size: 1428, csum_start: 54, csum_offset: 16, num_buffers: 3 };
        let b = h.to_bytes();
        assert_eq!(b, [1, 4, 74, 0, 0x94, 0x05, 54, 0, 16, 0, 3, 0]);
        assert_eq!(NetHdr::decode(&b), h);
        assert_eq!(NetHdr::decode(&b[..3]).hdr_len, 74);
        assert_eq!(NetHdr::decode(&[]), NetHdr::default());
    }

    #[test]
    fn tx_plain_and_partial_checksum() {
        assert_eq!(NetHdr::for_tx(&PktMeta::default(), TxOffloads::default()), Ok(NetHdr::default()));
        let meta = PktMeta { cksum: Cksum::Partial { start: 34, offset: 16 }, ..PktMeta::default() };
        let h = NetHdr::for_tx(&meta, ALL).unwrap();
        assert_eq!((h.flags, h.csum_start, h.csum_offset, h.gso_type), (F_NEEDS_CSUM, 34, 16, GSO_NONE));
        assert_eq!(NetHdr::for_tx(&meta, TxOffloads::default()), Err(TxHdrError::NoCsum));
    }

    #[test]
    fn tx_gso() {
        let gso = Gso { kind: GsoKind::Tcp4, mss: 1448, hdr_len: 66 };
        let meta = PktMeta { cksum: Cksum::Partial { start: 34, offset: 16 }, gso: Some(gso), ..PktMeta::default() };
        let h = NetHdr::for_tx(&meta, ALL).unwrap();
        assert_eq!((h.gso_type, h.gso_size, h.hdr_len, h.flags), (GSO_TCPV4, 1448, 66, F_NEEDS_CSUM));
        let v6 = PktMeta { gso: Some(Gso { kind: GsoKind::Tcp6, ..gso }), ..meta };
        assert_eq!(NetHdr::for_tx(&v6, ALL).unwrap().gso_type, GSO_TCPV6);
        assert_eq!(NetHdr::for_tx(&v6, TxOffloads { tso6: false, ..ALL }), Err(TxHdrError::NoGso));
        let udp = PktMeta { gso: Some(Gso { kind: GsoKind::Udp, ..gso }), ..meta };
        assert_eq!(NetHdr::for_tx(&udp, ALL), Err(TxHdrError::NoGso));
        let no_csum = PktMeta { cksum: Cksum::None, ..meta };
        assert_eq!(NetHdr::for_tx(&no_csum, ALL), Err(TxHdrError::GsoWithoutCsum));
    }

    #[test]
    fn rx_meta() {
        let h = NetHdr { flags: F_DATA_VALID, ..NetHdr::default() };
        let m = h.rx_meta(2);
        assert_eq!((m.cksum, m.gso, m.ring), (Cksum::Verified, None, 2));
        assert_eq!(NetHdr::default().rx_meta(0).cksum, Cksum::None);
        assert_eq!(NetHdr { flags: F_NEEDS_CSUM, ..h }.rx_meta(0).cksum, Cksum::Verified);
        let big = NetHdr { flags: F_NEEDS_CSUM, gso_type: GSO_TCPV4 | GSO_ECN, gso_size: 1448, hdr_len: 66, ..h };
        assert_eq!(big.rx_meta(1).gso, Some(Gso { kind: GsoKind::Tcp4, mss: 1448, hdr_len: 66 }));
        assert_eq!(NetHdr { gso_type: 9, gso_size: 1, ..h }.rx_meta(0).gso, None);
    }
}
