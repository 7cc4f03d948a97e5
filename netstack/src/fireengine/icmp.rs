//! ICMPv4 processing for FireEngine, after illumos `ip.c`
//! (`icmp_inbound_v4`, `icmp_send_reply_v4`, `icmp_pkt_err_ok`, `icmp_pkt`,
//! `icmp_err_rate_limit`): whether an error may be sent (RFC 1122 3.2.2),
//! the error rate limiter (`_icmp_err_interval` 100 ms, `_icmp_err_burst`
//! 10), building errors and echo replies as whole IPv4 datagrams, and
//! classifying received ICMP into what the caller must do, each step
//! bumping its `IcmpMib` counter under its illumos name.
//!
//! Plain functions over byte slices: no threads, no clock (the caller
//! passes `now_ms`), no panics on any input.
//!
//! Counting, as illumos does it (`ip.c`, `mib2.h`):
//!
//! * `icmpOutMsgs` counts every ICMP message handed to IP output (illumos
//!   bumps it in `icmp_pkt` and `icmp_send_reply_v4`).
//! * `icmpOutDestUnreachs` / `icmpOutTimeExcds` / `icmpOutEchoReps` count
//!   messages of that type sent; a "fragmentation needed" unreachable also
//!   counts `icmpOutFragNeeded` *and* `icmpOutDestUnreachs`
//!   (`icmp_frag_needed`).
//! * `icmpOutDrops` counts errors not sent because the rules forbid it
//!   (`mib2.h`: "not sent since original packet was broadcast/multicast or
//!   an ICMP error packet"; `icmp_pkt_err_ok`). illumos counts nothing for
//!   a rate-limited error; we count those in `icmpOutDrops` too (our
//!   `IcmpMib` documents it as "rate limit, resources"), and the limiter
//!   keeps its own [`ErrRateLimiter::suppressed`] count.
//! * `icmpOutErrors` counts messages not sent for lack of resources (the
//!   failed `allocb` in `icmp_pkt`), never a sent message: see
//!   [`count_out_resource_error`].
//! * On input `icmpInMsgs` counts every message (first thing in
//!   `icmp_inbound_v4`), then exactly one of the per-type counters or one
//!   of `icmpInErrors` (too short, bad quote), `icmpInCksumErrs` (bad
//!   checksum; illumos counts only that one) or `icmpInUnknowns` (a type
//!   illumos does not know). A "fragmentation needed" also counts
//!   `icmpInFragNeeded` (illumos `mib2_icmp_t`).
//! * An error about a TCP segment carries the quoted sequence number
//!   (RFC 5927 section 4.1: the conn checks it before acting).

use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use super::ip::mib::{bump, IcmpMib};
use super::wire::checksum;
use super::wire::icmp::{
    quote_of, IcmpMessage, ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_FRAGMENTATION_NEEDED,
    ICMP_HEADER_LEN, ICMP_HOST_UNREACH, ICMP_NET_UNREACH, ICMP_PARAM_PROBLEM, ICMP_PORT_UNREACH,
    ICMP_PROTOCOL_UNREACH, ICMP_REASS_EXCEEDED, ICMP_REDIRECT, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED,
    ICMP_TTL_EXCEEDED,
};
use super::wire::ipv4::{Ipv4Error, Ipv4Header, Ipv4Options, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HEADER_LEN};

/// illumos `_icmp_err_interval` default: one error token per 100 ms.
pub const ICMP_ERR_INTERVAL_MS: u64 = 100;
/// illumos `_icmp_err_burst` default: up to 10 errors back to back.
pub const ICMP_ERR_BURST: u32 = 10;
/// Transport bytes a received error must quote for UDP/TCP to be matched
/// to a conn (illumos `ICMP_MIN_TP_HDR_LEN`).
pub const ICMP_MIN_TP_HDR_LEN: usize = 8;

// ------------------------------------------------------------ rate limit

/// The ICMP error rate limiter (illumos `icmp_err_rate_limit`): a token
/// bucket of `burst` errors, one token back every `interval_ms`.
/// `interval_ms == 0` turns limiting off. One per IP stack instance; the
/// caller counts a refused error in `icmpOutDrops`.
#[derive(Clone, Debug)]
pub struct ErrRateLimiter {
    interval_ms: u64,
    burst: u32,
    /// Errors sent in the current burst (tokens used).
    sent: u32,
    /// When the current burst started, advanced by whole intervals.
    last_ms: u64,
    suppressed: u64,
}

impl Default for ErrRateLimiter {
    fn default() -> Self {
        Self::new(ICMP_ERR_INTERVAL_MS, ICMP_ERR_BURST)
    }
}

impl ErrRateLimiter {
    /// A limiter with a full bucket.
    pub const fn new(interval_ms: u64, burst: u32) -> Self {
        ErrRateLimiter { interval_ms, burst, sent: 0, last_ms: 0, suppressed: 0 }
    }

    /// Whether an error may be sent at `now_ms`; takes a token if so, else
    /// counts the error as suppressed. A clock that goes backwards starts
    /// a fresh burst (as illumos does on lbolt wrap).
    pub fn allow(&mut self, now_ms: u64) -> bool {
        let interval = self.interval_ms;
        if interval == 0 {
            return true;
        }
        if self.last_ms > now_ms {
            self.last_ms = 0;
            self.sent = 0;
        }
        if self.sent != 0 {
            let refilled = (now_ms - self.last_ms) / interval;
            if refilled >= u64::from(self.sent) {
                self.sent = 0;
            } else {
                // refilled < sent <= u32::MAX, so both fit.
                self.sent -= refilled as u32;
                self.last_ms += refilled * interval;
            }
        }
        if self.sent == 0 {
            self.last_ms = now_ms;
        }
        if self.sent < self.burst {
            self.sent += 1;
            true
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            false
        }
    }

    /// Milliseconds per token (`_icmp_err_interval`); 0 = unlimited.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// Errors allowed back to back (`_icmp_err_burst`).
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Changes the interval at run time (`ipadm set-prop`); the tokens in
    /// use are kept.
    pub fn set_interval_ms(&mut self, interval_ms: u64) {
        self.interval_ms = interval_ms;
    }

    /// Changes the burst at run time; 0 refuses every error while the
    /// interval is non-zero.
    pub fn set_burst(&mut self, burst: u32) {
        self.burst = burst;
    }

    /// Errors refused so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

// ------------------------------------------------------------ may send

/// Why no ICMP error may be sent about a datagram (RFC 1122 3.2.2;
/// the caller counts each in `icmpOutDrops`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoErrorReason {
    /// The offending bytes do not hold a valid IPv4 header (or its
    /// checksum is wrong, as illumos checks).
    BadHeader(Ipv4Error),
    /// The datagram was sent to an IP broadcast or multicast address.
    BroadcastOrMulticastDst,
    /// The datagram arrived as a link-layer broadcast (or multicast).
    LinkBroadcast,
    /// The source is not one unicast host: 0.0.0.0, broadcast, multicast,
    /// class E or loopback 127/8.
    BadSource,
    /// A fragment other than the first (offset != 0).
    NonFirstFragment,
    /// The datagram is itself an ICMP error (unreachable, source quench,
    /// redirect, time exceeded, parameter problem).
    IcmpError,
    /// An ICMP datagram too short to hold the type byte.
    TruncatedIcmp,
}

/// Whether `a` names one unicast host (RFC 1122 3.2.1.3): not 0.0.0.0,
/// not 255.255.255.255, not multicast (224/4), not class E (240/4), not
/// loopback (127/8). Subnet-directed broadcasts need the interface and are
/// the caller's to exclude.
pub fn is_unicast_host(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(a.is_unspecified() || a.is_broadcast() || o[0] >= 224 || o[0] == 127)
}

/// Whether `a` is an IP address a datagram to which must never draw an
/// error by itself: limited broadcast or multicast.
fn is_bcast_or_mcast(a: Ipv4Addr) -> bool {
    a.is_broadcast() || a.is_multicast()
}

/// Whether an ICMP error may be sent about `offending_ip_datagram`
/// (RFC 1122 3.2.2, illumos `icmp_pkt_err_ok`), checked in illumos' order.
/// `dst_was_broadcast_or_multicast` says IP found the destination to be a
/// (subnet) broadcast or multicast address (limited broadcast and 224/4
/// are also recognised from the header); `link_broadcast` that the frame
/// came to the link broadcast/multicast address. The rate limit is a
/// separate step ([`ErrRateLimiter::allow`]) taken after this one.
pub fn may_send_error(
    offending_ip_datagram: &[u8],
    dst_was_broadcast_or_multicast: bool,
    link_broadcast: bool,
) -> Result<(), NoErrorReason> {
    let (h, payload) = Ipv4Header::parse_quoted(offending_ip_datagram).map_err(NoErrorReason::BadHeader)?;
    let hlen = h.header_len();
    if checksum::checksum(offending_ip_datagram.get(..hlen).unwrap_or(&[])) != 0 {
        return Err(NoErrorReason::BadHeader(Ipv4Error::BadChecksum));
    }
    if dst_was_broadcast_or_multicast || is_bcast_or_mcast(h.dst) {
        return Err(NoErrorReason::BroadcastOrMulticastDst);
    }
    if link_broadcast {
        return Err(NoErrorReason::LinkBroadcast);
    }
    if !is_unicast_host(h.src) {
        return Err(NoErrorReason::BadSource);
    }
    if h.frag_offset != 0 {
        return Err(NoErrorReason::NonFirstFragment);
    }
    if h.protocol == IPPROTO_ICMP {
        let Some(&t) = payload.first() else {
            return Err(NoErrorReason::TruncatedIcmp);
        };
        if is_error_type(t) {
            return Err(NoErrorReason::IcmpError);
        }
    }
    Ok(())
}

/// The ICMP types that are error messages (RFC 1122 3.2.2).
fn is_error_type(t: u8) -> bool {
    matches!(t, ICMP_DEST_UNREACH | ICMP_SOURCE_QUENCH | ICMP_REDIRECT | ICMP_TIME_EXCEEDED | ICMP_PARAM_PROBLEM)
}

// ------------------------------------------------------------ errors

/// An ICMP error FireEngine sends or receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination unreachable, code 0: network unreachable.
    NetUnreachable,
    /// Destination unreachable, code 1: host unreachable.
    HostUnreachable,
    /// Destination unreachable, code 2: protocol unreachable.
    ProtocolUnreachable,
    /// Destination unreachable, code 3: port unreachable.
    PortUnreachable,
    /// Destination unreachable, code 4: fragmentation needed and DF set,
    /// with the next-hop MTU (RFC 1191; 0 from an old router).
    FragNeeded {
        /// MTU of the next hop.
        next_hop_mtu: u16,
    },
    /// Destination unreachable with another code (source route failed,
    /// administratively prohibited, ...).
    Unreachable {
        /// The code.
        code: u8,
    },
    /// Time exceeded, code 0: TTL reached 0 in transit.
    TtlExceeded,
    /// Time exceeded, code 1: fragment reassembly time exceeded.
    ReassemblyExceeded,
    /// Time exceeded with an unknown code.
    TimeExceeded {
        /// The code.
        code: u8,
    },
}

impl IcmpErrorKind {
    /// The kind for a type and code (and the unreachable's MTU word);
    /// `None` if the type is neither unreachable nor time exceeded.
    pub fn from_type_code(icmp_type: u8, code: u8, next_hop_mtu: u16) -> Option<Self> {
        Some(match (icmp_type, code) {
            (ICMP_DEST_UNREACH, ICMP_NET_UNREACH) => IcmpErrorKind::NetUnreachable,
            (ICMP_DEST_UNREACH, ICMP_HOST_UNREACH) => IcmpErrorKind::HostUnreachable,
            (ICMP_DEST_UNREACH, ICMP_PROTOCOL_UNREACH) => IcmpErrorKind::ProtocolUnreachable,
            (ICMP_DEST_UNREACH, ICMP_PORT_UNREACH) => IcmpErrorKind::PortUnreachable,
            (ICMP_DEST_UNREACH, ICMP_FRAGMENTATION_NEEDED) => IcmpErrorKind::FragNeeded { next_hop_mtu },
            (ICMP_DEST_UNREACH, code) => IcmpErrorKind::Unreachable { code },
            (ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED) => IcmpErrorKind::TtlExceeded,
            (ICMP_TIME_EXCEEDED, ICMP_REASS_EXCEEDED) => IcmpErrorKind::ReassemblyExceeded,
            (ICMP_TIME_EXCEEDED, code) => IcmpErrorKind::TimeExceeded { code },
            _ => return None,
        })
    }

    /// ICMP type: 3 (unreachable) or 11 (time exceeded).
    pub fn icmp_type(&self) -> u8 {
        match self {
            IcmpErrorKind::TtlExceeded | IcmpErrorKind::ReassemblyExceeded | IcmpErrorKind::TimeExceeded { .. } => {
                ICMP_TIME_EXCEEDED
            }
            _ => ICMP_DEST_UNREACH,
        }
    }

    /// ICMP code.
    pub fn code(&self) -> u8 {
        match *self {
            IcmpErrorKind::NetUnreachable => ICMP_NET_UNREACH,
            IcmpErrorKind::HostUnreachable => ICMP_HOST_UNREACH,
            IcmpErrorKind::ProtocolUnreachable => ICMP_PROTOCOL_UNREACH,
            IcmpErrorKind::PortUnreachable => ICMP_PORT_UNREACH,
            IcmpErrorKind::FragNeeded { .. } => ICMP_FRAGMENTATION_NEEDED,
            IcmpErrorKind::Unreachable { code } | IcmpErrorKind::TimeExceeded { code } => code,
            IcmpErrorKind::TtlExceeded => ICMP_TTL_EXCEEDED,
            IcmpErrorKind::ReassemblyExceeded => ICMP_REASS_EXCEEDED,
        }
    }

    /// Whether a conn receiving this error should fail with ECONNREFUSED
    /// (port or protocol unreachable, as illumos UDP and TCP do).
    pub fn refuses_connection(&self) -> bool {
        matches!(self, IcmpErrorKind::PortUnreachable | IcmpErrorKind::ProtocolUnreachable)
    }

    fn message<'a>(&self, quote: &'a [u8]) -> IcmpMessage<'a> {
        match *self {
            IcmpErrorKind::FragNeeded { next_hop_mtu } => {
                IcmpMessage::DestUnreachable { code: ICMP_FRAGMENTATION_NEEDED, next_hop_mtu, quote }
            }
            k if k.icmp_type() == ICMP_TIME_EXCEEDED => IcmpMessage::TimeExceeded { code: k.code(), quote },
            k => IcmpMessage::DestUnreachable { code: k.code(), next_hop_mtu: 0, quote },
        }
    }
}

/// Why an ICMP message could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpBuildError {
    /// The offending datagram has no valid IPv4 header.
    BadDatagram(Ipv4Error),
    /// Emitting the header failed (cannot happen for sizes built here).
    Emit,
}

/// Wraps an ICMP message in an IPv4 header (no options, not DF).
fn wrap(msg: &IcmpMessage<'_>, src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, ident: u16) -> Result<Vec<u8>, IcmpBuildError> {
    wrap_with(msg, src, dst, ttl, ident, Ipv4Options::empty())
}

/// [`wrap`] with IP options.
fn wrap_with(
    msg: &IcmpMessage<'_>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    ident: u16,
    options: Ipv4Options,
) -> Result<Vec<u8>, IcmpBuildError> {
    let icmp_len = msg.emit_len();
    let payload_len = u16::try_from(icmp_len).map_err(|_| IcmpBuildError::Emit)?;
    let mut h = Ipv4Header::new(src, dst, IPPROTO_ICMP, payload_len);
    h.ttl = ttl;
    h.ident = ident;
    h.options = options;
    let mut out = vec![0u8; h.header_len() + icmp_len];
    let hlen = h.emit(&mut out).map_err(|_| IcmpBuildError::Emit)?;
    let body = out.get_mut(hlen..).ok_or(IcmpBuildError::Emit)?;
    msg.emit(body).map_err(|_| IcmpBuildError::Emit)?;
    Ok(out)
}

/// Builds the complete IPv4 datagram of an ICMP error about `offending`
/// (from `src`, to the offending datagram's source, with `ttl` and IP
/// `ident`), quoting its IP header and the first 8 bytes of its payload
/// (RFC 792; fewer when the datagram is shorter, padding past its total
/// length excluded). Does not decide whether the error may be sent: call
/// [`may_send_error`] and [`ErrRateLimiter::allow`] first, and
/// [`count_out_error`] once it is handed to output.
pub fn build_error(
    kind: IcmpErrorKind,
    offending: &[u8],
    src: Ipv4Addr,
    ttl: u8,
    ident: u16,
) -> Result<Vec<u8>, IcmpBuildError> {
    let (h, _) = Ipv4Header::parse_quoted(offending).map_err(IcmpBuildError::BadDatagram)?;
    let datagram = offending.get(..h.total_len()).unwrap_or(offending);
    let quote = quote_of(datagram);
    wrap(&kind.message(quote), src, h.src, ttl, ident)
}

// ------------------------------------------------------------ echo

/// Builds the echo reply to the echo request datagram `request` (IP header
/// and checksums verified): same identifier, sequence and data, to the
/// request's source, from the address the request was sent to or from
/// `our_addr` when that was limited broadcast, multicast or otherwise not
/// a unicast host. `None` if it is not a valid echo request, or its source
/// is 0.0.0.0, broadcast, multicast or class E (no reply goes there).
/// For a subnet-directed broadcast, which only the interface can
/// recognise, use [`echo_reply_from`].
pub fn echo_reply(request: &[u8], our_addr: Ipv4Addr, ttl: u8, ident: u16) -> Option<Vec<u8>> {
    let (h, _) = Ipv4Header::parse(request, true).ok()?;
    let src = if is_unicast_host(h.dst) || h.dst.is_loopback() { h.dst } else { our_addr };
    echo_reply_from(request, src, ttl, ident)
}

/// Like [`echo_reply`] with the reply's source address chosen by the
/// caller (illumos lets output pick it for a broadcast/multicast request).
/// The request's IP options are not returned (illumos reverses a source
/// route; we send a plain header).
pub fn echo_reply_from(request: &[u8], src: Ipv4Addr, ttl: u8, ident: u16) -> Option<Vec<u8>> {
    let (h, payload) = Ipv4Header::parse(request, true).ok()?;
    if h.protocol != IPPROTO_ICMP || h.is_fragment() {
        return None;
    }
    let dst = h.src;
    if !(is_unicast_host(dst) || dst.is_loopback()) {
        return None;
    }
    if payload.len() < ICMP_HEADER_LEN || checksum::checksum(payload) != 0 || payload[0] != ICMP_ECHO_REQUEST {
        return None;
    }
    // The code is not checked (illumos answers on the type alone).
    let ident_req = u16::from_be_bytes([payload[4], payload[5]]);
    let seq = u16::from_be_bytes([payload[6], payload[7]]);
    let msg = IcmpMessage::EchoReply { ident: ident_req, seq, data: &payload[ICMP_HEADER_LEN..] };
    // RFC 1122 3.2.2.6: a request that came by a (completed) source route
    // is answered by the reverse route: to the router nearest to us, with
    // the option leading back through the others to the sender.
    match h.options.source_route().filter(|r| r.completed).and_then(|r| r.reversed(dst)) {
        Some((options, first_hop)) => wrap_with(&msg, src, first_hop, ttl, ident, options).ok(),
        None => wrap(&msg, src, dst, ttl, ident).ok(),
    }
}

// ------------------------------------------------------------ input

/// What the caller must do with a received ICMP message
/// ([`IcmpInput::classify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IcmpInput {
    /// Send this datagram (the echo reply, already counted as sent).
    Reply(Vec<u8>),
    /// An echo reply: hand it to the pinger with this identifier.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Bytes of data after the ICMP header.
        data_len: usize,
    },
    /// An unreachable or time exceeded about a datagram we sent: find the
    /// conn by (`quoted_proto`, `quoted_src`:`quoted_sport`,
    /// `quoted_dst`:`quoted_dport`) — the quote is as we sent it, so the
    /// source is ours — and report `kind` to it.
    Error {
        /// The error.
        kind: IcmpErrorKind,
        /// Protocol of the quoted datagram.
        quoted_proto: u8,
        /// Source of the quoted datagram (our address).
        quoted_src: Ipv4Addr,
        /// Destination of the quoted datagram (the peer).
        quoted_dst: Ipv4Addr,
        /// Source port for UDP/TCP, else 0.
        quoted_sport: u16,
        /// Destination port for UDP/TCP, else 0.
        quoted_dport: u16,
        /// The next-hop MTU of a "fragmentation needed" (0 from an old
        /// router), `None` for any other error.
        next_hop_mtu: Option<u16>,
        /// TCP only: the quoted segment's sequence number (bytes 4–7 of
        /// the quoted TCP header, which the 8 quoted bytes always hold).
        quoted_seq: Option<u32>,
        /// The quoted datagram's total length as its header says (RFC
        /// 1191 section 5's plateau guess when the MTU is 0).
        quoted_len: u16,
    },
    /// A redirect (RFC 792, type 5; codes 0–3 are all taken as host
    /// redirects, RFC 1122 3.2.2.2): `from` says datagrams for `dst`
    /// should go to `gateway`. Counted in `icmpInRedirects`; the caller
    /// checks it against its routes (and counts `icmpInBadRedirects`).
    Redirect {
        /// The router that sent it (the IP source).
        from: Ipv4Addr,
        /// The destination of the quoted datagram.
        dst: Ipv4Addr,
        /// The better first hop.
        gateway: Ipv4Addr,
    },
    /// Nothing to do (counted).
    Drop,
}

/// ICMP types illumos' `icmp_inbound_v4` knows by name (not counted in
/// `icmpInUnknowns` even where we have no counter of our own for them):
/// redirect, source quench, router advertisement/solicitation, parameter
/// problem, timestamp, information and address mask request/reply.
fn is_known_type(t: u8) -> bool {
    matches!(t, 0 | 3 | 4 | 5 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18)
}

impl IcmpInput {
    /// Classifies the ICMP datagram `datagram` (whole IPv4 datagram,
    /// already accepted by IP input as ours) and counts it in `mib`.
    /// `to_broadcast` says it was sent to a broadcast or multicast address
    /// (the reply then comes from `our_addr`); `ttl` and `ident` go into a
    /// reply's IP header. Echo requests are answered also when sent to a
    /// broadcast (illumos `_respond_to_echo_broadcast` defaults to 1).
    pub fn classify(
        datagram: &[u8],
        our_addr: Ipv4Addr,
        to_broadcast: bool,
        ttl: u8,
        ident: u16,
        mib: &IcmpMib,
    ) -> IcmpInput {
        bump(&mib.icmp_in_msgs);
        let Ok((h, icmp)) = Ipv4Header::parse(datagram, false) else {
            bump(&mib.icmp_in_errors);
            return IcmpInput::Drop;
        };
        if h.protocol != IPPROTO_ICMP || icmp.len() < ICMP_HEADER_LEN {
            bump(&mib.icmp_in_errors);
            return IcmpInput::Drop;
        }
        if checksum::checksum(icmp) != 0 {
            bump(&mib.icmp_in_cksum_errs);
            return IcmpInput::Drop;
        }
        let (icmp_type, code) = (icmp[0], icmp[1]);
        match icmp_type {
            ICMP_ECHO_REQUEST => {
                bump(&mib.icmp_in_echos);
                let reply = if to_broadcast {
                    echo_reply_from(datagram, our_addr, ttl, ident)
                } else {
                    echo_reply(datagram, our_addr, ttl, ident)
                };
                match reply {
                    Some(r) => {
                        bump(&mib.icmp_out_echo_reps);
                        bump(&mib.icmp_out_msgs);
                        IcmpInput::Reply(r)
                    }
                    None => {
                        // A fragment or a non-host source: no reply.
                        bump(&mib.icmp_out_drops);
                        IcmpInput::Drop
                    }
                }
            }
            ICMP_ECHO_REPLY => {
                bump(&mib.icmp_in_echo_reps);
                IcmpInput::EchoReply {
                    ident: u16::from_be_bytes([icmp[4], icmp[5]]),
                    seq: u16::from_be_bytes([icmp[6], icmp[7]]),
                    data_len: icmp.len() - ICMP_HEADER_LEN,
                }
            }
            ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED => {
                if icmp_type == ICMP_DEST_UNREACH {
                    bump(&mib.icmp_in_dest_unreachs);
                } else {
                    bump(&mib.icmp_in_time_excds);
                }
                let mtu = u16::from_be_bytes([icmp[6], icmp[7]]);
                if icmp_type == ICMP_DEST_UNREACH && code == ICMP_FRAGMENTATION_NEEDED {
                    bump(&mib.icmp_in_frag_needed);
                }
                match (IcmpErrorKind::from_type_code(icmp_type, code, mtu), quoted(&icmp[ICMP_HEADER_LEN..])) {
                    (Some(kind), Some((qh, sport, dport))) => IcmpInput::Error {
                        quoted_seq: quoted_tcp_seq(&qh, &icmp[ICMP_HEADER_LEN..]),
                        quoted_len: qh.total_len().min(usize::from(u16::MAX)) as u16,
                        kind,
                        quoted_proto: qh.protocol,
                        quoted_src: qh.src,
                        quoted_dst: qh.dst,
                        quoted_sport: sport,
                        quoted_dport: dport,
                        next_hop_mtu: match kind {
                            IcmpErrorKind::FragNeeded { next_hop_mtu } => Some(next_hop_mtu),
                            _ => None,
                        },
                    },
                    _ => {
                        bump(&mib.icmp_in_errors);
                        IcmpInput::Drop
                    }
                }
            }
            ICMP_REDIRECT => {
                bump(&mib.icmp_in_redirects);
                let gateway = Ipv4Addr::new(icmp[4], icmp[5], icmp[6], icmp[7]);
                match quoted(&icmp[ICMP_HEADER_LEN..]) {
                    Some((qh, _, _)) if code <= 3 && !to_broadcast => IcmpInput::Redirect { from: h.src, dst: qh.dst, gateway },
                    _ => {
                        bump(&mib.icmp_in_bad_redirects);
                        IcmpInput::Drop
                    }
                }
            }
            t if is_known_type(t) => IcmpInput::Drop,
            _ => {
                bump(&mib.icmp_in_unknowns);
                IcmpInput::Drop
            }
        }
    }
}

/// The quoted header of a received error and, for UDP/TCP, its ports;
/// `None` if the quote holds no valid header, or under 8 transport bytes
/// for UDP/TCP (illumos `icmp_inbound_verify_v4`).
fn quoted(quote: &[u8]) -> Option<(Ipv4Header, u16, u16)> {
    if quote.len() < IPV4_MIN_HEADER_LEN {
        return None;
    }
    let (qh, rest) = Ipv4Header::parse_quoted(quote).ok()?;
    match qh.protocol {
        IPPROTO_UDP | IPPROTO_TCP => {
            // A non-first fragment carries no ports.
            if rest.len() < ICMP_MIN_TP_HDR_LEN || qh.frag_offset != 0 {
                return None;
            }
            Some((qh, u16::from_be_bytes([rest[0], rest[1]]), u16::from_be_bytes([rest[2], rest[3]])))
        }
        _ => Some((qh, 0, 0)),
    }
}

/// The sequence number of a quoted TCP segment: bytes 4–7 after the
/// quoted IP header; `None` for another protocol or a short quote.
fn quoted_tcp_seq(qh: &Ipv4Header, quote: &[u8]) -> Option<u32> {
    if qh.protocol != IPPROTO_TCP {
        return None;
    }
    let b = quote.get(qh.header_len()..)?.get(4..8)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

// ------------------------------------------------------------ output counts

/// Counts an error handed to output: `icmpOutMsgs` and
/// `icmpOutDestUnreachs` or `icmpOutTimeExcds`, plus `icmpOutFragNeeded`
/// for "fragmentation needed" (which illumos counts in both).
pub fn count_out_error(kind: IcmpErrorKind, mib: &IcmpMib) {
    bump(&mib.icmp_out_msgs);
    match kind {
        IcmpErrorKind::FragNeeded { .. } => {
            bump(&mib.icmp_out_frag_needed);
            bump(&mib.icmp_out_dest_unreachs);
        }
        k if k.icmp_type() == ICMP_TIME_EXCEEDED => bump(&mib.icmp_out_time_excds),
        _ => bump(&mib.icmp_out_dest_unreachs),
    }
}

/// Counts an error not sent because [`may_send_error`] or the rate limiter
/// refused it (`icmpOutDrops`).
pub fn count_out_drop(mib: &IcmpMib) {
    bump(&mib.icmp_out_drops);
}

/// Counts a message not sent for lack of resources (`icmpOutErrors`, the
/// failed allocation of illumos `icmp_pkt`).
pub fn count_out_resource_error(mib: &IcmpMib) {
    bump(&mib.icmp_out_errors);
}

/// Counts an echo request we send (ping): `icmpOutEchos`, `icmpOutMsgs`.
pub fn count_out_echo(mib: &IcmpMib) {
    bump(&mib.icmp_out_echos);
    bump(&mib.icmp_out_msgs);
}

/// The whole error path of illumos `icmp_pkt_err_ok` + `icmp_pkt`: the
/// RFC 1122 rules, the rate limit, the build, and the counters. Returns
/// the datagram to send, or `None` (counted in `icmpOutDrops`, or in
/// `icmpOutErrors` if the datagram could not be built).
pub fn error_for(
    limiter: &mut ErrRateLimiter,
    now_ms: u64,
    kind: IcmpErrorKind,
    offending: &[u8],
    flags: ErrorFlags,
    mib: &IcmpMib,
) -> Option<Vec<u8>> {
    if may_send_error(offending, flags.dst_was_broadcast_or_multicast, flags.link_broadcast).is_err()
        || !limiter.allow(now_ms)
    {
        count_out_drop(mib);
        return None;
    }
    match build_error(kind, offending, flags.src, flags.ttl, flags.ident) {
        Ok(d) => {
            count_out_error(kind, mib);
            Some(d)
        }
        Err(_) => {
            count_out_resource_error(mib);
            None
        }
    }
}

/// What [`error_for`] needs besides the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorFlags {
    /// The offending datagram was sent to a broadcast/multicast address.
    pub dst_was_broadcast_or_multicast: bool,
    /// It arrived as a link-layer broadcast.
    pub link_broadcast: bool,
    /// Our address, the error's source.
    pub src: Ipv4Addr,
    /// TTL of the error.
    pub ttl: u8,
    /// IP identification of the error.
    pub ident: u16,
}
