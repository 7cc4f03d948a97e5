//! Host input checks for an IPv4 datagram (RFC 791, RFC 1122 3.2.1): the
//! header is well formed, the source is a plausible unicast sender, the
//! destination is ours or a broadcast/multicast. Every datagram counts in
//! `ipInReceives`, every drop under its illumos MIB name, as illumos
//! `ip_input.c` counts it:
//!
//! * a malformed header (version, IHL, total length, options):
//!   `ipInHdrErrors`;
//! * a bad header checksum: `ipInCksumErrs` only (illumos
//!   `ip_input_local_v4` bumps `ipIfStatsInCksumErrs` and nothing else);
//! * destination 0.0.0.0, or source or destination in 127/8 (martians,
//!   `ill_input_short_v4`), or a source that cannot be a sender (ours,
//!   RFC 1122 3.2.1.3): `ipInAddrErrors`;
//! * a unicast destination that is not ours: `ipForwProhibits` (a host
//!   does not forward; illumos `ire_recv_forward_v4` and
//!   `ire_recv_noroute_v4` count it there, not in `ipInAddrErrors`).

use core::net::Ipv4Addr;
use core::ops::Range;

use super::mib::{bump, IpMib};
use crate::fireengine::wire::ipv4::{Ipv4Error, Ipv4Header, IPPROTO_UDP};

/// Why a datagram was dropped (already counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputDrop {
    /// A malformed header (`ipInHdrErrors`), or a bad header checksum
    /// (`ipInCksumErrs` only).
    Header(Ipv4Error),
    /// The source address cannot be a sender: multicast, broadcast,
    /// class E, loopback, or 0.0.0.0 outside the DHCP case
    /// (`ipInAddrErrors`).
    BadSource(Ipv4Addr),
    /// The destination can never be received: 0.0.0.0 or loopback
    /// (`ipInAddrErrors`).
    BadDestination(Ipv4Addr),
    /// The destination is not ours, not broadcast, not multicast
    /// (`ipForwProhibits`: forwarding is off).
    NotForUs(Ipv4Addr),
    /// A source route with hops left to go, or a malformed one
    /// (`ipForwProhibits`).
    SourceRouted,
}

/// How a datagram was addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DstKind {
    /// One of our addresses (as `our_addrs` said).
    Local,
    /// 255.255.255.255.
    Broadcast,
    /// 224.0.0.0/4.
    Multicast,
}

/// A datagram that passed the checks: what the caller needs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputPacket {
    /// The parsed header.
    pub header: Ipv4Header,
    /// Where the payload lies in the bytes given to [`validate`] (padding
    /// after the total length excluded).
    pub payload: Range<usize>,
    /// Whether the datagram is a fragment (to reassemble first).
    pub is_fragment: bool,
    /// How the destination matched.
    pub dst_kind: DstKind,
}

/// Whether `a` is 255.255.255.255.
fn is_limited_broadcast(a: Ipv4Addr) -> bool {
    a == Ipv4Addr::BROADCAST
}

/// Whether `a` is in 240.0.0.0/4 (class E, 255.255.255.255 included).
fn is_class_e(a: Ipv4Addr) -> bool {
    a.octets()[0] >= 240
}

/// Validates the IPv4 datagram at the start of `ip_bytes` (the frame's
/// payload, Ethernet padding allowed) for host input.
///
/// `our_addrs` says whether an address is one of ours; a directed
/// broadcast of one of our subnets should count as ours. `cksum_verified`
/// true means the NIC verified the header checksum. Checks run in the
/// order header, source, destination; the first failure is counted and
/// returned. An unknown protocol is the caller's to count
/// ([`count_unknown_proto`]).
pub fn validate<F: Fn(Ipv4Addr) -> bool>(
    ip_bytes: &[u8],
    our_addrs: &F,
    cksum_verified: bool,
    mib: &IpMib,
) -> Result<InputPacket, InputDrop> {
    validate_on(ip_bytes, our_addrs, cksum_verified, false, mib)
}

/// [`validate`] of a datagram that came through the instance's own
/// loopback (`loopback` true): there 127/8 is a valid source and
/// destination (RFC 1122 3.2.1.3(g): loopback addresses never appear on
/// a wire, which is where [`validate`] rejects them).
pub fn validate_on<F: Fn(Ipv4Addr) -> bool>(
    ip_bytes: &[u8],
    our_addrs: &F,
    cksum_verified: bool,
    loopback: bool,
    mib: &IpMib,
) -> Result<InputPacket, InputDrop> {
    bump(&mib.ip_in_receives);
    let (header, payload) = match Ipv4Header::parse(ip_bytes, !cksum_verified) {
        Ok(v) => v,
        Err(e) => {
            if e == Ipv4Error::BadChecksum {
                bump(&mib.ip_in_cksum_errs);
            } else {
                bump(&mib.ip_in_hdr_errors);
            }
            return Err(InputDrop::Header(e));
        }
    };
    let src = header.src;
    let dst = header.dst;
    let dhcp_client = src.is_unspecified() && is_limited_broadcast(dst) && header.protocol == IPPROTO_UDP;
    if src.is_multicast() || is_class_e(src) || (src.is_loopback() && !loopback) || (src.is_unspecified() && !dhcp_client) {
        bump(&mib.ip_in_addr_errors);
        return Err(InputDrop::BadSource(src));
    }
    if dst.is_unspecified() || (dst.is_loopback() && !loopback) {
        bump(&mib.ip_in_addr_errors);
        return Err(InputDrop::BadDestination(dst));
    }
    let dst_kind = if is_limited_broadcast(dst) {
        DstKind::Broadcast
    } else if dst.is_multicast() {
        DstKind::Multicast
    } else if !is_class_e(dst) && (our_addrs(dst) || (loopback && dst.is_loopback())) {
        DstKind::Local
    } else {
        bump(&mib.ip_forw_prohibits);
        return Err(InputDrop::NotForUs(dst));
    };
    // A source route not used up names further hops: a host does not
    // forward (RFC 1122 3.3.5; illumos with forwarding off), and a
    // malformed one is no route at all.
    if header.options.has_source_route() && header.options.source_route().is_none_or(|r| !r.completed) {
        bump(&mib.ip_forw_prohibits);
        return Err(InputDrop::SourceRouted);
    }
    let start = header.header_len();
    Ok(InputPacket {
        header,
        payload: start..start + payload.len(),
        is_fragment: header.is_fragment(),
        dst_kind,
    })
}

/// Counts a datagram whose protocol nobody handles (`ipInUnknownProtos`).
pub fn count_unknown_proto(mib: &IpMib) {
    bump(&mib.ip_in_unknown_protos);
}
