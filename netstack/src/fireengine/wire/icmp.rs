//! ICMPv4 messages (RFC 792, RFC 1191): echo request and reply,
//! destination unreachable (with the next-hop MTU of "fragmentation
//! needed"), time exceeded, each error quoting the original IP header plus
//! 8 bytes; any other type kept as raw. Parse verifies the checksum, emit
//! writes it.

use super::checksum;
use super::ipv4::{Ipv4Error, Ipv4Header};

/// ICMP type: echo reply.
pub const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP type: destination unreachable.
pub const ICMP_DEST_UNREACH: u8 = 3;
/// ICMP type: source quench (deprecated, still an error).
pub const ICMP_SOURCE_QUENCH: u8 = 4;
/// ICMP type: redirect.
pub const ICMP_REDIRECT: u8 = 5;
/// ICMP type: echo request.
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// ICMP type: time exceeded.
pub const ICMP_TIME_EXCEEDED: u8 = 11;
/// ICMP type: parameter problem.
pub const ICMP_PARAM_PROBLEM: u8 = 12;

/// Destination unreachable code: network unreachable.
pub const ICMP_NET_UNREACH: u8 = 0;
/// Destination unreachable code: host unreachable.
pub const ICMP_HOST_UNREACH: u8 = 1;
/// Destination unreachable code: protocol unreachable.
pub const ICMP_PROTOCOL_UNREACH: u8 = 2;
/// Destination unreachable code: port unreachable.
pub const ICMP_PORT_UNREACH: u8 = 3;
/// Destination unreachable code: fragmentation needed and DF set.
pub const ICMP_FRAGMENTATION_NEEDED: u8 = 4;
/// Destination unreachable code: source route failed.
pub const ICMP_SOURCE_ROUTE_FAILED: u8 = 5;
/// Destination unreachable code: communication administratively prohibited.
pub const ICMP_ADMIN_PROHIBITED: u8 = 13;

/// Time exceeded code: TTL reached zero in transit.
pub const ICMP_TTL_EXCEEDED: u8 = 0;
/// Time exceeded code: fragment reassembly time exceeded.
pub const ICMP_REASS_EXCEEDED: u8 = 1;

/// ICMP header length (type, code, checksum, 4 bytes of rest).
pub const ICMP_HEADER_LEN: usize = 8;
/// How much of the offending datagram an error quotes beyond its IP header.
pub const ICMP_QUOTE_EXTRA: usize = 8;

/// What is wrong with an ICMP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// Fewer than 8 bytes.
    Truncated,
    /// The checksum does not verify.
    BadChecksum,
    /// (emit) The buffer is too small for the message.
    BufferTooSmall,
    /// The quoted datagram of an error does not hold a valid IP header.
    BadQuote(Ipv4Error),
}

/// An ICMPv4 message, borrowing its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpMessage<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data, echoed back.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data of the request.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DestUnreachable {
        /// One of the `ICMP_*_UNREACH`, `ICMP_FRAGMENTATION_NEEDED`, ... codes.
        code: u8,
        /// Next-hop MTU (RFC 1191), meaningful for code 4, else 0.
        next_hop_mtu: u16,
        /// The original IP header plus at least 8 bytes.
        quote: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// [`ICMP_TTL_EXCEEDED`] or [`ICMP_REASS_EXCEEDED`].
        code: u8,
        /// The original IP header plus at least 8 bytes.
        quote: &'a [u8],
    },
    /// Any other type (or an echo with a non-zero code), kept raw. The
    /// unused word of unreachable/time exceeded is ignored on parse.
    Other {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// The 4 bytes after the checksum.
        rest: [u8; 4],
        /// Everything after the header.
        data: &'a [u8],
    },
}

/// The part of an offending datagram an ICMP error quotes: its IP header
/// plus 8 bytes (or less if the datagram is shorter). A buffer that does
/// not start with a plausible header yields at most 28 bytes.
pub fn quote_of(datagram: &[u8]) -> &[u8] {
    let hlen = datagram
        .first()
        .map(|b| usize::from(b & 0x0f) * 4)
        .filter(|&h| h >= 20)
        .unwrap_or(20);
    let n = (hlen + ICMP_QUOTE_EXTRA).min(datagram.len());
    &datagram[..n]
}

impl<'a> IcmpMessage<'a> {
    /// Parses an ICMP message (the IP payload). `verify_checksum` false
    /// skips the checksum.
    pub fn parse(buf: &'a [u8], verify_checksum: bool) -> Result<Self, IcmpError> {
        if buf.len() < ICMP_HEADER_LEN {
            return Err(IcmpError::Truncated);
        }
        if verify_checksum && checksum::checksum(buf) != 0 {
            return Err(IcmpError::BadChecksum);
        }
        let (icmp_type, code) = (buf[0], buf[1]);
        let w1 = u16::from_be_bytes([buf[4], buf[5]]);
        let w2 = u16::from_be_bytes([buf[6], buf[7]]);
        let data = &buf[ICMP_HEADER_LEN..];
        Ok(match icmp_type {
            ICMP_ECHO_REQUEST if code == 0 => IcmpMessage::EchoRequest { ident: w1, seq: w2, data },
            ICMP_ECHO_REPLY if code == 0 => IcmpMessage::EchoReply { ident: w1, seq: w2, data },
            ICMP_DEST_UNREACH => IcmpMessage::DestUnreachable { code, next_hop_mtu: w2, quote: data },
            ICMP_TIME_EXCEEDED => IcmpMessage::TimeExceeded { code, quote: data },
            _ => IcmpMessage::Other { icmp_type, code, rest: [buf[4], buf[5], buf[6], buf[7]], data },
        })
    }

    /// Whether this is an error message (never answered with an error,
    /// RFC 1122 3.2.2): destination unreachable, time exceeded, source
    /// quench, redirect, parameter problem.
    pub fn is_error(&self) -> bool {
        match self {
            IcmpMessage::DestUnreachable { .. } | IcmpMessage::TimeExceeded { .. } => true,
            IcmpMessage::Other { icmp_type, .. } => {
                matches!(*icmp_type, ICMP_SOURCE_QUENCH | ICMP_REDIRECT | ICMP_PARAM_PROBLEM)
            }
            _ => false,
        }
    }

    /// ICMP type byte.
    pub fn icmp_type(&self) -> u8 {
        match self {
            IcmpMessage::EchoRequest { .. } => ICMP_ECHO_REQUEST,
            IcmpMessage::EchoReply { .. } => ICMP_ECHO_REPLY,
            IcmpMessage::DestUnreachable { .. } => ICMP_DEST_UNREACH,
            IcmpMessage::TimeExceeded { .. } => ICMP_TIME_EXCEEDED,
            IcmpMessage::Other { icmp_type, .. } => *icmp_type,
        }
    }

    /// The quoted datagram of an error message, `None` for others.
    pub fn quote(&self) -> Option<&'a [u8]> {
        match *self {
            IcmpMessage::DestUnreachable { quote, .. } | IcmpMessage::TimeExceeded { quote, .. } => Some(quote),
            _ => None,
        }
    }

    /// The quoted IP header of an error message and the bytes of its
    /// payload present in the quote (the transport ports live there).
    pub fn quoted_header(&self) -> Option<Result<(Ipv4Header, &'a [u8]), IcmpError>> {
        self.quote().map(|q| Ipv4Header::parse_quoted(q).map_err(IcmpError::BadQuote))
    }

    fn body(&self) -> ([u8; 4], &'a [u8]) {
        match *self {
            IcmpMessage::EchoRequest { ident, seq, data } | IcmpMessage::EchoReply { ident, seq, data } => {
                let (a, b) = (ident.to_be_bytes(), seq.to_be_bytes());
                ([a[0], a[1], b[0], b[1]], data)
            }
            IcmpMessage::DestUnreachable { next_hop_mtu, quote, .. } => {
                let m = next_hop_mtu.to_be_bytes();
                ([0, 0, m[0], m[1]], quote)
            }
            IcmpMessage::TimeExceeded { quote, .. } => ([0; 4], quote),
            IcmpMessage::Other { rest, data, .. } => (rest, data),
        }
    }

    fn code(&self) -> u8 {
        match *self {
            IcmpMessage::EchoRequest { .. } | IcmpMessage::EchoReply { .. } => 0,
            IcmpMessage::DestUnreachable { code, .. }
            | IcmpMessage::TimeExceeded { code, .. }
            | IcmpMessage::Other { code, .. } => code,
        }
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn emit_len(&self) -> usize {
        ICMP_HEADER_LEN + self.body().1.len()
    }

    /// Writes the message with its checksum to the start of `buf`;
    /// returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, IcmpError> {
        let (rest, data) = self.body();
        let n = ICMP_HEADER_LEN + data.len();
        let Some(out) = buf.get_mut(..n) else {
            return Err(IcmpError::BufferTooSmall);
        };
        out[0] = self.icmp_type();
        out[1] = self.code();
        out[2] = 0;
        out[3] = 0;
        out[4..8].copy_from_slice(&rest);
        out[8..].copy_from_slice(data);
        let c = checksum::checksum(out);
        out[2..4].copy_from_slice(&c.to_be_bytes());
        Ok(n)
    }
}
