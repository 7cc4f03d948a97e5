//! The IPv4 header (RFC 791) as a plain value that parses from and emits
//! to bytes: every field checked on the way in, options walked safely,
//! the header checksum verified (unless the NIC did) and written on emit.

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use super::checksum;

/// Shortest IPv4 header (IHL 5).
pub const IPV4_MIN_HEADER_LEN: usize = 20;
/// Longest IPv4 header (IHL 15).
pub const IPV4_MAX_HEADER_LEN: usize = 60;
/// Most option bytes a header can carry.
pub const IPV4_MAX_OPTIONS_LEN: usize = IPV4_MAX_HEADER_LEN - IPV4_MIN_HEADER_LEN;
/// Largest IPv4 datagram (the total length field is 16 bits).
pub const IPV4_MAX_DATAGRAM_LEN: usize = 65535;

/// Protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// Protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// Protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Option type: end of option list.
pub const IPOPT_EOL: u8 = 0;
/// Option type: no operation (padding).
pub const IPOPT_NOP: u8 = 1;
/// The "copied" flag of an option type: copy into every fragment.
pub const IPOPT_COPIED: u8 = 0x80;
/// Loose source and record route (RFC 791).
pub const IPOPT_LSRR: u8 = 0x83;
/// Strict source and record route (RFC 791).
pub const IPOPT_SSRR: u8 = 0x89;

/// A source route option (LSRR or SSRR) as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRoute {
    /// SSRR (every hop must be the next) rather than LSRR.
    pub strict: bool,
    /// The addresses in the option, in order.
    pub route: Vec<Ipv4Addr>,
    /// Whether the route is used up (the pointer past the last address):
    /// the datagram has reached its final destination, and `route` is the
    /// recorded route of the routers it passed (RFC 791, RFC 1122 3.2.1.8).
    pub completed: bool,
}

impl SourceRoute {
    /// The option for a reply: the recorded routers in reverse, ending
    /// with `original_src`, pointer at the first; and the reply's first
    /// hop (its IP destination), the router nearest to us. `None` when
    /// there is no router to go back through.
    pub fn reversed(&self, original_src: Ipv4Addr) -> Option<(Ipv4Options, Ipv4Addr)> {
        let (&first_hop, rest) = self.route.split_last()?;
        let mut raw = Vec::with_capacity(3 + 4 * self.route.len());
        raw.push(if self.strict { IPOPT_SSRR } else { IPOPT_LSRR });
        raw.push((3 + 4 * self.route.len()) as u8);
        raw.push(4);
        for a in rest.iter().rev().chain(core::iter::once(&original_src)) {
            raw.extend_from_slice(&a.octets());
        }
        Some((Ipv4Options::new(&raw).ok()?, first_hop))
    }
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// What is wrong with an IPv4 header (parse) or a header to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv4Error {
    /// Fewer than 20 bytes.
    Truncated,
    /// Version field is not 4 (the value found).
    BadVersion(u8),
    /// IHL below 5 (the value found).
    BadIhl(u8),
    /// IHL says more bytes than the buffer holds.
    HeaderTruncated,
    /// Total length is smaller than the header.
    BadTotalLength,
    /// Total length is larger than the buffer.
    TotalLengthTruncated,
    /// The header checksum does not verify.
    BadChecksum,
    /// An option's length byte is below 2 or runs past the header.
    BadOptionLength,
    /// (emit) Options longer than 40 bytes.
    OptionsTooLong,
    /// (emit) Header plus payload longer than 65535 bytes.
    TooLong,
    /// (emit) Fragment offset not a multiple of 8 or above 65528.
    BadFragOffset,
    /// (emit) The buffer is smaller than the header.
    BufferTooSmall,
}

/// The option bytes of a header, validated, padded with EOL to a multiple
/// of 4 (so they always fill whole header words).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Options {
    len: u8,
    bytes: [u8; IPV4_MAX_OPTIONS_LEN],
}

impl core::fmt::Debug for Ipv4Options {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_bytes()).finish()
    }
}

impl Default for Ipv4Options {
    fn default() -> Self {
        Self::empty()
    }
}

/// One option as found in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Option<'a> {
    /// The option type byte (copied flag, class, number).
    pub kind: u8,
    /// The whole option: for NOP one byte, for a TLV type, length and data.
    pub raw: &'a [u8],
}

impl Ipv4Option<'_> {
    /// Whether RFC 791 says to copy this option into every fragment.
    pub fn copied(&self) -> bool {
        self.kind & IPOPT_COPIED != 0
    }
}

/// Checks option bytes: EOL ends the list, NOP is one byte, anything else
/// is type, length (>= 2) and data that must fit.
fn validate_options(bytes: &[u8]) -> Result<(), Ipv4Error> {
    let mut i = 0;
    while let Some(&kind) = bytes.get(i) {
        match kind {
            IPOPT_EOL => return Ok(()),
            IPOPT_NOP => i += 1,
            _ => {
                let len = usize::from(*bytes.get(i + 1).ok_or(Ipv4Error::BadOptionLength)?);
                if len < 2 || i + len > bytes.len() {
                    return Err(Ipv4Error::BadOptionLength);
                }
                i += len;
            }
        }
    }
    Ok(())
}

impl Ipv4Options {
    /// No options.
    pub const fn empty() -> Self {
        Ipv4Options { len: 0, bytes: [0; IPV4_MAX_OPTIONS_LEN] }
    }

    /// Options from raw bytes (validated, padded with EOL to a multiple of 4).
    pub fn new(raw: &[u8]) -> Result<Self, Ipv4Error> {
        if raw.len() > IPV4_MAX_OPTIONS_LEN {
            return Err(Ipv4Error::OptionsTooLong);
        }
        validate_options(raw)?;
        let mut o = Self::empty();
        o.bytes[..raw.len()].copy_from_slice(raw);
        o.len = raw.len().next_multiple_of(4) as u8;
        Ok(o)
    }

    /// The option bytes as they go in the header (a multiple of 4).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether there are no option bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The options in order, stopping at EOL (NOPs included).
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Option<'_>> + '_ {
        let bytes = self.as_bytes();
        let mut i = 0usize;
        core::iter::from_fn(move || {
            let kind = *bytes.get(i)?;
            match kind {
                IPOPT_EOL => None,
                IPOPT_NOP => {
                    let raw = bytes.get(i..i + 1)?;
                    i += 1;
                    Some(Ipv4Option { kind, raw })
                }
                _ => {
                    let len = usize::from(*bytes.get(i + 1)?);
                    let raw = bytes.get(i..i + len).filter(|_| len >= 2)?;
                    i += len;
                    Some(Ipv4Option { kind, raw })
                }
            }
        })
    }

    /// The source route option, if there is a well-formed one (length 3
    /// plus a multiple of 4, pointer at 4 or more, on an address or just
    /// past the last).
    pub fn source_route(&self) -> Option<SourceRoute> {
        let o = self.iter().find(|o| o.kind == IPOPT_LSRR || o.kind == IPOPT_SSRR)?;
        let len = o.raw.len();
        let ptr = usize::from(*o.raw.get(2)?);
        if len < 7 || (len - 3) % 4 != 0 || ptr < 4 || (ptr - 4) % 4 != 0 || ptr > len + 1 {
            return None;
        }
        let route = o.raw[3..].chunks_exact(4).map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3])).collect();
        Some(SourceRoute { strict: o.kind == IPOPT_SSRR, route, completed: ptr > len })
    }

    /// Whether a source route option is present at all (well-formed or
    /// not).
    pub fn has_source_route(&self) -> bool {
        self.iter().any(|o| o.kind == IPOPT_LSRR || o.kind == IPOPT_SSRR)
    }

    /// The options a non-first fragment carries: those with the copied
    /// flag, in order (RFC 791 section 3.2).
    pub fn copied_only(&self) -> Self {
        let mut o = Self::empty();
        let mut n = 0usize;
        for opt in self.iter().filter(|o| o.copied()) {
            o.bytes[n..n + opt.raw.len()].copy_from_slice(opt.raw);
            n += opt.raw.len();
        }
        o.len = n.next_multiple_of(4) as u8;
        o
    }
}

/// An IPv4 header. `frag_offset` is in bytes (always a multiple of 8);
/// `payload_len` is the total length minus the header length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Type of service byte (DSCP and ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    /// Time to live.
    pub ttl: u8,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Options (validated).
    pub options: Ipv4Options,
    /// Bytes after the header.
    pub payload_len: u16,
}

impl Ipv4Header {
    /// A header with no options, TTL 64, no fragmentation flags.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload_len: u16) -> Self {
        Ipv4Header {
            tos: 0,
            ident: 0,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            ttl: 64,
            protocol,
            src,
            dst,
            options: Ipv4Options::empty(),
            payload_len,
        }
    }

    /// Parses the header at the start of `buf` and returns it with its
    /// payload. Bytes past the total length (Ethernet padding) are trimmed.
    /// `verify_checksum` false skips the checksum (the NIC checked it).
    pub fn parse(buf: &[u8], verify_checksum: bool) -> Result<(Ipv4Header, &[u8]), Ipv4Error> {
        Self::parse_inner(buf, verify_checksum, false)
    }

    /// Parses a header quoted in an ICMP error: like [`parse`](Self::parse)
    /// without the checksum, but the total length may exceed the buffer
    /// (the quote holds only the first bytes); the payload returned is
    /// what is present.
    pub fn parse_quoted(buf: &[u8]) -> Result<(Ipv4Header, &[u8]), Ipv4Error> {
        Self::parse_inner(buf, false, true)
    }

    fn parse_inner(buf: &[u8], verify: bool, quoted: bool) -> Result<(Ipv4Header, &[u8]), Ipv4Error> {
        if buf.len() < IPV4_MIN_HEADER_LEN {
            return Err(Ipv4Error::Truncated);
        }
        let version = buf[0] >> 4;
        if version != 4 {
            return Err(Ipv4Error::BadVersion(version));
        }
        let ihl = buf[0] & 0x0f;
        if ihl < 5 {
            return Err(Ipv4Error::BadIhl(ihl));
        }
        let hlen = usize::from(ihl) * 4;
        if hlen > buf.len() {
            return Err(Ipv4Error::HeaderTruncated);
        }
        let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if total < hlen {
            return Err(Ipv4Error::BadTotalLength);
        }
        if total > buf.len() && !quoted {
            return Err(Ipv4Error::TotalLengthTruncated);
        }
        if verify && checksum::checksum(&buf[..hlen]) != 0 {
            return Err(Ipv4Error::BadChecksum);
        }
        let options = Ipv4Options::new(&buf[IPV4_MIN_HEADER_LEN..hlen])?;
        let frag = u16::from_be_bytes([buf[6], buf[7]]);
        let header = Ipv4Header {
            tos: buf[1],
            ident: u16::from_be_bytes([buf[4], buf[5]]),
            dont_frag: frag & FLAG_DF != 0,
            more_frags: frag & FLAG_MF != 0,
            frag_offset: (frag & OFFSET_MASK) << 3,
            ttl: buf[8],
            protocol: buf[9],
            src: Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]),
            dst: Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]),
            options,
            payload_len: (total - hlen) as u16,
        };
        let end = total.min(buf.len());
        Ok((header, &buf[hlen..end]))
    }

    /// Header length in bytes (20 plus options).
    pub fn header_len(&self) -> usize {
        IPV4_MIN_HEADER_LEN + self.options.as_bytes().len()
    }

    /// Total length: header plus payload.
    pub fn total_len(&self) -> usize {
        self.header_len() + usize::from(self.payload_len)
    }

    /// Whether this is a fragment (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Writes the header (with its checksum) to the start of `buf` and
    /// returns its length. The payload is the caller's to place after it.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Ipv4Error> {
        let hlen = self.header_len();
        if hlen > IPV4_MAX_HEADER_LEN {
            return Err(Ipv4Error::OptionsTooLong);
        }
        let total = self.total_len();
        if total > IPV4_MAX_DATAGRAM_LEN {
            return Err(Ipv4Error::TooLong);
        }
        if !self.frag_offset.is_multiple_of(8) {
            return Err(Ipv4Error::BadFragOffset);
        }
        let Some(out) = buf.get_mut(..hlen) else {
            return Err(Ipv4Error::BufferTooSmall);
        };
        out[0] = 0x40 | (hlen / 4) as u8;
        out[1] = self.tos;
        out[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        out[4..6].copy_from_slice(&self.ident.to_be_bytes());
        let mut frag = self.frag_offset >> 3;
        if self.dont_frag {
            frag |= FLAG_DF;
        }
        if self.more_frags {
            frag |= FLAG_MF;
        }
        out[6..8].copy_from_slice(&frag.to_be_bytes());
        out[8] = self.ttl;
        out[9] = self.protocol;
        out[10..12].copy_from_slice(&[0, 0]);
        out[12..16].copy_from_slice(&self.src.octets());
        out[16..20].copy_from_slice(&self.dst.octets());
        out[20..hlen].copy_from_slice(self.options.as_bytes());
        let c = checksum::checksum(out);
        out[10..12].copy_from_slice(&c.to_be_bytes());
        Ok(hlen)
    }
}

/// Decrements the TTL of the header at the start of `buf` in place and
/// patches its checksum incrementally (RFC 1624). Returns the new TTL, or
/// `None` if `buf` is shorter than a header or the TTL is already 0.
pub fn decrement_ttl(buf: &mut [u8]) -> Option<u8> {
    if buf.len() < IPV4_MIN_HEADER_LEN || buf[8] == 0 {
        return None;
    }
    let old_word = u16::from_be_bytes([buf[8], buf[9]]);
    let ttl = buf[8] - 1;
    buf[8] = ttl;
    let new_word = u16::from_be_bytes([buf[8], buf[9]]);
    let old_ck = u16::from_be_bytes([buf[10], buf[11]]);
    let ck = checksum::update_u16(old_ck, old_word, new_word);
    buf[10..12].copy_from_slice(&ck.to_be_bytes());
    Some(ttl)
}
