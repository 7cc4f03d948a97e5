//! The UDP header (RFC 768): parse with the length checked against the IP
//! payload and the checksum verified over the IPv4 pseudo-header (0 means
//! the sender sent none), emit with the checksum (a computed 0 is sent as
//! 0xffff).

use core::net::Ipv4Addr;

use super::checksum;
use super::ipv4::IPPROTO_UDP;

/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;

/// What is wrong with a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpError {
    /// Fewer than 8 bytes.
    Truncated,
    /// The length field is below 8 or above the IP payload length.
    BadLength,
    /// The checksum does not verify.
    BadChecksum,
    /// (emit) The buffer is shorter than the header or longer than 65535.
    BadBuffer,
}

/// A UDP header (the length is that of the datagram it heads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpHeader {
    /// Parses the UDP datagram `ip_payload` sent from `src` to `dst`;
    /// returns the header and the data. A length field shorter than the IP
    /// payload trims the data to it; a longer one is an error.
    /// `verify_checksum` false skips the checksum (the NIC checked it).
    pub fn parse(
        ip_payload: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<(UdpHeader, &[u8]), UdpError> {
        if ip_payload.len() < UDP_HEADER_LEN {
            return Err(UdpError::Truncated);
        }
        let b = ip_payload;
        let len = usize::from(u16::from_be_bytes([b[4], b[5]]));
        if len < UDP_HEADER_LEN || len > b.len() {
            return Err(UdpError::BadLength);
        }
        let dgram = &b[..len];
        let ck = u16::from_be_bytes([b[6], b[7]]);
        if verify_checksum && ck != 0 {
            let mut c = checksum::pseudo_header_v4(src, dst, IPPROTO_UDP, len as u16);
            c.add(dgram);
            if c.finish() != 0 {
                return Err(UdpError::BadChecksum);
            }
        }
        let h = UdpHeader {
            src_port: u16::from_be_bytes([b[0], b[1]]),
            dst_port: u16::from_be_bytes([b[2], b[3]]),
        };
        Ok((h, &dgram[UDP_HEADER_LEN..]))
    }

    /// As [`emit`](Self::emit), but leaves the checksum for the device:
    /// the field holds the pseudo-header sum, not complemented, as a
    /// partial-checksum offload (virtio `NEEDS_CSUM`, igb `TXSM`, or the
    /// MAC layer in software) expects; the sum over the datagram from byte
    /// 0, complemented and stored at offset 6, completes it.
    pub fn emit_partial(&self, datagram: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), UdpError> {
        let len = self.emit_fields(datagram)?;
        let ps = checksum::pseudo_header_v4(src, dst, IPPROTO_UDP, len).fold();
        datagram[6..8].copy_from_slice(&ps.to_be_bytes());
        Ok(())
    }

    /// Writes the header into the first 8 bytes of `datagram`, whose
    /// remaining bytes are the data already in place, and computes the
    /// checksum over the pseudo-header from `src` to `dst`.
    pub fn emit(&self, datagram: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), UdpError> {
        let len = self.emit_fields(datagram)?;
        datagram[6..8].copy_from_slice(&[0, 0]);
        let mut c = checksum::pseudo_header_v4(src, dst, IPPROTO_UDP, len);
        c.add(datagram);
        let ck = match c.finish() {
            0 => 0xffff,
            v => v,
        };
        datagram[6..8].copy_from_slice(&ck.to_be_bytes());
        Ok(())
    }

    /// Ports and length into `datagram`'s first 6 bytes; the length.
    fn emit_fields(&self, datagram: &mut [u8]) -> Result<u16, UdpError> {
        let len = u16::try_from(datagram.len()).map_err(|_| UdpError::BadBuffer)?;
        if usize::from(len) < UDP_HEADER_LEN {
            return Err(UdpError::BadBuffer);
        }
        datagram[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        datagram[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        datagram[4..6].copy_from_slice(&len.to_be_bytes());
        Ok(len)
    }
}
