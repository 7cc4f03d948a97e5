//! FireEngine ICMP: the error rate limiter, every RFC 1122 no-error rule,
//! errors and echo replies round-tripped through the wire parsers, input
//! classification with its illumos counters, and random bytes that must
//! never panic.

use arbalest_netstack::fireengine::icmp::*;
use arbalest_netstack::fireengine::ip::mib::IcmpMib;
use arbalest_netstack::fireengine::wire::checksum::checksum;
use arbalest_netstack::fireengine::wire::icmp::*;
use arbalest_netstack::fireengine::wire::ipv4::*;
use core::net::Ipv4Addr;

mod rng;
use rng::Rng;

const ME: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

fn get(m: &IcmpMib, name: &str) -> u64 {
    m.get(name).unwrap_or_else(|| panic!("no counter {name}"))
}

/// Every counter that is not zero, by name.
fn nonzero(m: &IcmpMib) -> Vec<(&'static str, u64)> {
    m.fields().filter(|(_, v)| *v != 0).collect()
}

fn datagram(h: &Ipv4Header, payload: &[u8]) -> Vec<u8> {
    let mut h = *h;
    h.payload_len = payload.len() as u16;
    let mut v = vec![0u8; h.header_len()];
    h.emit(&mut v).unwrap();
    v.extend_from_slice(payload);
    v
}

fn udp_payload(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(data);
    p
}

fn udp_dgram(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut h = Ipv4Header::new(src, dst, IPPROTO_UDP, 0);
    h.ident = 0x1234;
    datagram(&h, &udp_payload(sport, dport, data))
}

fn icmp_bytes(msg: &IcmpMessage<'_>) -> Vec<u8> {
    let mut v = vec![0u8; msg.emit_len()];
    msg.emit(&mut v).unwrap();
    v
}

fn icmp_dgram(src: Ipv4Addr, dst: Ipv4Addr, msg: &IcmpMessage<'_>) -> Vec<u8> {
    datagram(&Ipv4Header::new(src, dst, IPPROTO_ICMP, 0), &icmp_bytes(msg))
}

fn echo_req(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    icmp_dgram(src, dst, &IcmpMessage::EchoRequest { ident, seq, data })
}

// ---------------------------------------------------------------- rate limiter

#[test]
fn limiter_defaults_are_illumos() {
    let l = ErrRateLimiter::default();
    assert_eq!(l.interval_ms(), 100);
    assert_eq!(l.burst(), 10);
    assert_eq!((ICMP_ERR_INTERVAL_MS, ICMP_ERR_BURST), (100, 10));
}

#[test]
fn limiter_burst_then_one_per_interval() {
    let mut l = ErrRateLimiter::default();
    let t0 = 5_000;
    for i in 0..10 {
        assert!(l.allow(t0), "burst token {i}");
    }
    assert!(!l.allow(t0));
    assert!(!l.allow(t0 + 99));
    assert_eq!(l.suppressed(), 2);
    // One token per 100 ms from the burst start.
    assert!(l.allow(t0 + 100));
    assert!(!l.allow(t0 + 150));
    assert!(l.allow(t0 + 200));
    assert!(!l.allow(t0 + 299));
    assert!(l.allow(t0 + 300));
    assert!(!l.allow(t0 + 300));
    // Steady over a long run: one per interval.
    let mut sent = 0;
    for ms in (t0 + 301)..(t0 + 301 + 1_000) {
        if l.allow(ms) {
            sent += 1;
        }
    }
    assert_eq!(sent, 10, "one per 100 ms over 1 s");
}

#[test]
fn limiter_zero_interval_is_unlimited() {
    let mut l = ErrRateLimiter::new(0, 10);
    for _ in 0..10_000 {
        assert!(l.allow(7));
    }
    assert_eq!(l.suppressed(), 0);
    // Zero burst with limiting off: still unlimited.
    l.set_burst(0);
    assert!(l.allow(7));
}

#[test]
fn limiter_long_idle_refills_only_to_burst() {
    let mut l = ErrRateLimiter::default();
    for _ in 0..10 {
        assert!(l.allow(0));
    }
    assert!(!l.allow(1));
    // An hour idle earns 36 000 tokens but the bucket holds 10.
    let t = 3_600_000;
    for i in 0..10 {
        assert!(l.allow(t), "token {i}");
    }
    assert!(!l.allow(t));
}

#[test]
fn limiter_partial_refill_keeps_remaining_tokens() {
    let mut l = ErrRateLimiter::default();
    for _ in 0..4 {
        assert!(l.allow(0));
    }
    // 6 left; 250 ms later two came back: 8 more allowed, then none.
    for i in 0..8 {
        assert!(l.allow(250), "token {i}");
    }
    assert!(!l.allow(250));
}

#[test]
fn limiter_setters_apply_at_run_time() {
    let mut l = ErrRateLimiter::default();
    l.set_burst(2);
    assert!(l.allow(0));
    assert!(l.allow(0));
    assert!(!l.allow(0));
    l.set_interval_ms(0);
    assert!(l.allow(0));
    l.set_interval_ms(1000);
    assert_eq!(l.interval_ms(), 1000);
    assert!(!l.allow(500));
    assert!(l.allow(1000));
    l.set_burst(0);
    assert!(!l.allow(1_000_000));
}

#[test]
fn limiter_clock_going_back_starts_fresh_burst() {
    let mut l = ErrRateLimiter::new(100, 3);
    for _ in 0..3 {
        assert!(l.allow(10_000));
    }
    assert!(!l.allow(10_000));
    assert!(l.allow(5));
    assert!(l.allow(5));
    assert!(l.allow(5));
    assert!(!l.allow(5));
}

// ---------------------------------------------------------------- no-error rules

#[test]
fn may_send_about_plain_unicast_udp() {
    assert_eq!(may_send_error(&udp_dgram(PEER, ME, 1, 2, b"x"), false, false), Ok(()));
}

#[test]
fn no_error_about_icmp_errors_but_yes_about_echo() {
    let quote = udp_dgram(ME, PEER, 1, 2, b"abcdefgh");
    for (t, msg) in [
        ("unreach", IcmpMessage::DestUnreachable { code: 3, next_hop_mtu: 0, quote: &quote }),
        ("timex", IcmpMessage::TimeExceeded { code: 0, quote: &quote }),
        ("quench", IcmpMessage::Other { icmp_type: ICMP_SOURCE_QUENCH, code: 0, rest: [0; 4], data: &quote }),
        ("redirect", IcmpMessage::Other { icmp_type: ICMP_REDIRECT, code: 1, rest: [0; 4], data: &quote }),
        ("param", IcmpMessage::Other { icmp_type: ICMP_PARAM_PROBLEM, code: 0, rest: [0; 4], data: &quote }),
    ] {
        assert_eq!(may_send_error(&icmp_dgram(PEER, ME, &msg), false, false), Err(NoErrorReason::IcmpError), "{t}");
    }
    for msg in [
        IcmpMessage::EchoRequest { ident: 1, seq: 1, data: b"p" },
        IcmpMessage::EchoReply { ident: 1, seq: 1, data: b"p" },
        IcmpMessage::Other { icmp_type: 13, code: 0, rest: [0; 4], data: &[0; 12] },
    ] {
        assert_eq!(may_send_error(&icmp_dgram(PEER, ME, &msg), false, false), Ok(()));
    }
    // An ICMP datagram with no room for a type byte.
    let empty = datagram(&Ipv4Header::new(PEER, ME, IPPROTO_ICMP, 0), &[]);
    assert_eq!(may_send_error(&empty, false, false), Err(NoErrorReason::TruncatedIcmp));
}

#[test]
fn no_error_about_broadcast_or_multicast_destination() {
    let d = udp_dgram(PEER, ME, 1, 2, b"x");
    assert_eq!(may_send_error(&d, true, false), Err(NoErrorReason::BroadcastOrMulticastDst));
    for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1), Ipv4Addr::new(239, 255, 255, 250)] {
        let d = udp_dgram(PEER, dst, 1, 2, b"x");
        assert_eq!(may_send_error(&d, false, false), Err(NoErrorReason::BroadcastOrMulticastDst), "{dst}");
    }
}

#[test]
fn no_error_about_link_broadcast() {
    let d = udp_dgram(PEER, ME, 1, 2, b"x");
    assert_eq!(may_send_error(&d, false, true), Err(NoErrorReason::LinkBroadcast));
}

#[test]
fn no_error_about_non_first_fragment() {
    let mut h = Ipv4Header::new(PEER, ME, IPPROTO_UDP, 0);
    h.frag_offset = 8;
    let d = datagram(&h, &[0; 16]);
    assert_eq!(may_send_error(&d, false, false), Err(NoErrorReason::NonFirstFragment));
    // The first fragment (MF, offset 0) may draw an error.
    let mut h = Ipv4Header::new(PEER, ME, IPPROTO_UDP, 0);
    h.more_frags = true;
    assert_eq!(may_send_error(&datagram(&h, &[0; 16]), false, false), Ok(()));
    // A non-first fragment of an ICMP error: the fragment rule, payload
    // bytes are not an ICMP header.
    let mut h = Ipv4Header::new(PEER, ME, IPPROTO_ICMP, 0);
    h.frag_offset = 16;
    assert_eq!(may_send_error(&datagram(&h, &[0; 8]), false, false), Err(NoErrorReason::NonFirstFragment));
}

#[test]
fn no_error_about_non_host_source() {
    for src in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 5),
        Ipv4Addr::new(240, 0, 0, 1),
        Ipv4Addr::new(250, 1, 2, 3),
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(127, 255, 0, 9),
    ] {
        let d = udp_dgram(src, ME, 1, 2, b"x");
        assert_eq!(may_send_error(&d, false, false), Err(NoErrorReason::BadSource), "{src}");
        assert!(!is_unicast_host(src));
    }
    assert!(is_unicast_host(Ipv4Addr::new(10, 0, 0, 1)));
    assert!(is_unicast_host(Ipv4Addr::new(223, 255, 255, 254)));
}

#[test]
fn no_error_about_garbage() {
    assert!(matches!(may_send_error(&[], false, false), Err(NoErrorReason::BadHeader(_))));
    assert!(matches!(may_send_error(&[0x45; 10], false, false), Err(NoErrorReason::BadHeader(_))));
    let mut d = udp_dgram(PEER, ME, 1, 2, b"x");
    d[10] ^= 0xff;
    assert_eq!(may_send_error(&d, false, false), Err(NoErrorReason::BadHeader(Ipv4Error::BadChecksum)));
}

// ---------------------------------------------------------------- build_error

fn parse_error(d: &[u8]) -> (Ipv4Header, IcmpMessage<'_>) {
    let (h, payload) = Ipv4Header::parse(d, true).expect("IP header and checksum");
    assert_eq!(h.protocol, IPPROTO_ICMP);
    assert_eq!(checksum(payload), 0);
    (h, IcmpMessage::parse(payload, true).expect("ICMP checksum"))
}

#[test]
fn build_error_every_kind_round_trips() {
    let off = udp_dgram(PEER, ME, 5353, 9, b"0123456789abcdef");
    let kinds = [
        (IcmpErrorKind::NetUnreachable, 3, 0),
        (IcmpErrorKind::HostUnreachable, 3, 1),
        (IcmpErrorKind::ProtocolUnreachable, 3, 2),
        (IcmpErrorKind::PortUnreachable, 3, 3),
        (IcmpErrorKind::FragNeeded { next_hop_mtu: 1400 }, 3, 4),
        (IcmpErrorKind::Unreachable { code: 13 }, 3, 13),
        (IcmpErrorKind::TtlExceeded, 11, 0),
        (IcmpErrorKind::ReassemblyExceeded, 11, 1),
    ];
    for (kind, t, c) in kinds {
        assert_eq!((kind.icmp_type(), kind.code()), (t, c));
        let d = build_error(kind, &off, ME, 255, 77).unwrap();
        let (h, msg) = parse_error(&d);
        assert_eq!((h.src, h.dst, h.ttl, h.ident), (ME, PEER, 255, 77));
        assert!(!h.is_fragment());
        assert_eq!(h.total_len(), d.len());
        assert_eq!(msg.icmp_type(), t);
        assert!(msg.is_error());
        // Quote: header (20) + 8 bytes exactly.
        assert_eq!(msg.quote().unwrap(), &off[..28], "{kind:?}");
        let (qh, qrest) = msg.quoted_header().unwrap().unwrap();
        assert_eq!((qh.src, qh.dst, qh.protocol), (PEER, ME, IPPROTO_UDP));
        assert_eq!(&qrest[..4], &[0x14, 0xe9, 0, 9]);
        match msg {
            IcmpMessage::DestUnreachable { code, next_hop_mtu, .. } => {
                assert_eq!(code, c);
                assert_eq!(next_hop_mtu, if c == 4 { 1400 } else { 0 });
            }
            IcmpMessage::TimeExceeded { code, .. } => assert_eq!(code, c),
            other => panic!("{other:?}"),
        }
        // The error is itself never answered with an error.
        assert_eq!(may_send_error(&d, false, false), Err(NoErrorReason::IcmpError));
    }
}

#[test]
fn build_error_frag_needed_carries_mtu_on_the_wire() {
    let mut h = Ipv4Header::new(PEER, ME, IPPROTO_TCP, 0);
    h.dont_frag = true;
    let off = datagram(&h, &[0xab; 1460]);
    let d = build_error(IcmpErrorKind::FragNeeded { next_hop_mtu: 1280 }, &off, ME, 64, 1).unwrap();
    // Bytes 20+6..20+8 are the next-hop MTU (RFC 1191), unused word 0.
    assert_eq!(&d[24..28], &[0, 0, 0x05, 0x00]);
    assert_eq!(d.len(), 20 + 8 + 28);
}

#[test]
fn build_error_quote_with_options_and_short_datagrams() {
    // Header with 8 option bytes (NOP x3 + EOL, padded): quote 28 + 8.
    let mut h = Ipv4Header::new(PEER, ME, IPPROTO_UDP, 0);
    h.options = Ipv4Options::new(&[IPOPT_NOP, IPOPT_NOP, IPOPT_NOP, IPOPT_NOP, 0x94, 4, 0, 0]).unwrap();
    let off = datagram(&h, &udp_payload(1, 2, &[7; 40]));
    let d = build_error(IcmpErrorKind::PortUnreachable, &off, ME, 255, 0).unwrap();
    let (_, msg) = parse_error(&d);
    assert_eq!(msg.quote().unwrap(), &off[..36]);
    // Shorter than header + 8: the whole datagram, no more.
    for extra in 0..8 {
        let off = datagram(&Ipv4Header::new(PEER, ME, 99, 0), &vec![0x5a; extra]);
        let d = build_error(IcmpErrorKind::ProtocolUnreachable, &off, ME, 255, 0).unwrap();
        let (_, msg) = parse_error(&d);
        assert_eq!(msg.quote().unwrap(), &off[..], "extra {extra}");
    }
    // Ethernet padding past the total length is not quoted.
    let mut off = datagram(&Ipv4Header::new(PEER, ME, 99, 0), &[1, 2, 3]);
    let real = off.clone();
    off.extend_from_slice(&[0xee; 20]);
    let d = build_error(IcmpErrorKind::ProtocolUnreachable, &off, ME, 255, 0).unwrap();
    assert_eq!(parse_error(&d).1.quote().unwrap(), &real[..]);
}

#[test]
fn build_error_refuses_garbage() {
    assert!(matches!(build_error(IcmpErrorKind::PortUnreachable, &[], ME, 1, 1), Err(IcmpBuildError::BadDatagram(_))));
    assert!(matches!(
        build_error(IcmpErrorKind::PortUnreachable, &[0x60; 40], ME, 1, 1),
        Err(IcmpBuildError::BadDatagram(Ipv4Error::BadVersion(6)))
    ));
}

#[test]
fn error_kind_from_type_code_and_refusal() {
    assert_eq!(IcmpErrorKind::from_type_code(3, 4, 576), Some(IcmpErrorKind::FragNeeded { next_hop_mtu: 576 }));
    assert_eq!(IcmpErrorKind::from_type_code(3, 3, 9), Some(IcmpErrorKind::PortUnreachable));
    assert_eq!(IcmpErrorKind::from_type_code(11, 7, 0), Some(IcmpErrorKind::TimeExceeded { code: 7 }));
    assert_eq!(IcmpErrorKind::from_type_code(8, 0, 0), None);
    assert!(IcmpErrorKind::PortUnreachable.refuses_connection());
    assert!(IcmpErrorKind::ProtocolUnreachable.refuses_connection());
    assert!(!IcmpErrorKind::HostUnreachable.refuses_connection());
    assert!(!IcmpErrorKind::TtlExceeded.refuses_connection());
}

// ---------------------------------------------------------------- error_for + counters

fn flags() -> ErrorFlags {
    ErrorFlags { dst_was_broadcast_or_multicast: false, link_broadcast: false, src: ME, ttl: 255, ident: 3 }
}

#[test]
fn count_out_error_counts_illumos_way() {
    let m = IcmpMib::new();
    count_out_error(IcmpErrorKind::PortUnreachable, &m);
    assert_eq!(nonzero(&m), vec![("icmpOutMsgs", 1), ("icmpOutDestUnreachs", 1)]);
    let m = IcmpMib::new();
    count_out_error(IcmpErrorKind::FragNeeded { next_hop_mtu: 1 }, &m);
    assert_eq!(nonzero(&m), vec![("icmpOutMsgs", 1), ("icmpOutDestUnreachs", 1), ("icmpOutFragNeeded", 1)]);
    let m = IcmpMib::new();
    count_out_error(IcmpErrorKind::ReassemblyExceeded, &m);
    assert_eq!(nonzero(&m), vec![("icmpOutMsgs", 1), ("icmpOutTimeExcds", 1)]);
    let m = IcmpMib::new();
    count_out_drop(&m);
    count_out_resource_error(&m);
    count_out_echo(&m);
    assert_eq!(
        nonzero(&m),
        vec![("icmpOutMsgs", 1), ("icmpOutDrops", 1), ("icmpOutErrors", 1), ("icmpOutEchos", 1)]
    );
}

#[test]
fn error_for_applies_rules_limit_and_counts() {
    let m = IcmpMib::new();
    let mut l = ErrRateLimiter::new(100, 2);
    let off = udp_dgram(PEER, ME, 4000, 53, b"query");
    assert!(error_for(&mut l, 0, IcmpErrorKind::PortUnreachable, &off, flags(), &m).is_some());
    assert!(error_for(&mut l, 0, IcmpErrorKind::PortUnreachable, &off, flags(), &m).is_some());
    assert!(error_for(&mut l, 0, IcmpErrorKind::PortUnreachable, &off, flags(), &m).is_none());
    // Refused by the rules: no token taken.
    let bc = ErrorFlags { link_broadcast: true, ..flags() };
    assert!(error_for(&mut l, 100, IcmpErrorKind::PortUnreachable, &off, bc, &m).is_none());
    assert!(error_for(&mut l, 100, IcmpErrorKind::PortUnreachable, &off, flags(), &m).is_some());
    assert_eq!(get(&m, "icmpOutMsgs"), 3);
    assert_eq!(get(&m, "icmpOutDestUnreachs"), 3);
    assert_eq!(get(&m, "icmpOutDrops"), 2);
    assert_eq!(get(&m, "icmpOutErrors"), 0);
    assert_eq!(l.suppressed(), 1);
}

// ---------------------------------------------------------------- echo

#[test]
fn echo_reply_round_trip() {
    let data: Vec<u8> = (0..=255u8).collect();
    let req = echo_req(PEER, ME, 0xbeef, 42, &data);
    let rep = echo_reply(&req, Ipv4Addr::new(10, 9, 9, 9), 255, 5).unwrap();
    let (h, payload) = Ipv4Header::parse(&rep, true).unwrap();
    assert_eq!((h.src, h.dst, h.ttl, h.ident, h.protocol), (ME, PEER, 255, 5, IPPROTO_ICMP));
    assert_eq!(checksum(payload), 0);
    assert_eq!(IcmpMessage::parse(payload, true).unwrap(), IcmpMessage::EchoReply { ident: 0xbeef, seq: 42, data: &data });
    assert_eq!(rep.len(), req.len());
}

#[test]
fn echo_reply_to_broadcast_comes_from_our_addr() {
    for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1)] {
        let req = echo_req(PEER, dst, 1, 2, b"ping");
        let rep = echo_reply(&req, ME, 64, 0).unwrap();
        let (h, _) = Ipv4Header::parse(&rep, true).unwrap();
        assert_eq!((h.src, h.dst), (ME, PEER), "{dst}");
    }
    // A subnet broadcast the caller recognised.
    let req = echo_req(PEER, Ipv4Addr::new(192, 168, 1, 255), 1, 2, b"ping");
    let rep = echo_reply_from(&req, ME, 64, 0).unwrap();
    assert_eq!(Ipv4Header::parse(&rep, true).unwrap().0.src, ME);
    // Loopback ping answers from loopback.
    let lo = Ipv4Addr::LOCALHOST;
    let rep = echo_reply(&echo_req(lo, lo, 1, 1, b""), ME, 64, 0).unwrap();
    let (h, _) = Ipv4Header::parse(&rep, true).unwrap();
    assert_eq!((h.src, h.dst), (lo, lo));
}

#[test]
fn echo_reply_refuses_non_requests_and_bad_sources() {
    assert!(echo_reply(&icmp_dgram(PEER, ME, &IcmpMessage::EchoReply { ident: 1, seq: 1, data: b"" }), ME, 64, 0).is_none());
    for src in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 1, 1, 1), Ipv4Addr::new(241, 0, 0, 1)] {
        assert!(echo_reply(&echo_req(src, ME, 1, 1, b"x"), ME, 64, 0).is_none(), "{src}");
    }
    let mut bad = echo_req(PEER, ME, 1, 1, b"x");
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(echo_reply(&bad, ME, 64, 0).is_none(), "bad ICMP checksum");
    let udp = udp_dgram(PEER, ME, 1, 2, b"x");
    assert!(echo_reply(&udp, ME, 64, 0).is_none());
    assert!(echo_reply(&[], ME, 64, 0).is_none());
}

// ---------------------------------------------------------------- input

fn classify(d: &[u8], bcast: bool, m: &IcmpMib) -> IcmpInput {
    IcmpInput::classify(d, ME, bcast, 255, 9, m)
}

#[test]
fn input_echo_request_replies_and_counts() {
    let m = IcmpMib::new();
    let req = echo_req(PEER, ME, 7, 8, b"hello");
    let IcmpInput::Reply(rep) = classify(&req, false, &m) else { panic!() };
    let (h, payload) = Ipv4Header::parse(&rep, true).unwrap();
    assert_eq!((h.src, h.dst, h.ttl, h.ident), (ME, PEER, 255, 9));
    assert_eq!(IcmpMessage::parse(payload, true).unwrap(), IcmpMessage::EchoReply { ident: 7, seq: 8, data: b"hello" });
    assert_eq!(
        nonzero(&m),
        vec![("icmpInMsgs", 1), ("icmpInEchos", 1), ("icmpOutMsgs", 1), ("icmpOutEchoReps", 1)]
    );
    // Broadcast request: reply from our address.
    let req = echo_req(PEER, Ipv4Addr::new(192, 168, 1, 255), 7, 9, b"");
    let IcmpInput::Reply(rep) = classify(&req, true, &m) else { panic!() };
    assert_eq!(Ipv4Header::parse(&rep, true).unwrap().0.src, ME);
    // Echo request with a non-zero code is answered on its type.
    let mut odd = icmp_bytes(&IcmpMessage::EchoRequest { ident: 1, seq: 2, data: b"z" });
    odd[1] = 5;
    odd[2..4].copy_from_slice(&[0, 0]);
    let c = checksum(&odd);
    odd[2..4].copy_from_slice(&c.to_be_bytes());
    let d = datagram(&Ipv4Header::new(PEER, ME, IPPROTO_ICMP, 0), &odd);
    assert!(matches!(classify(&d, false, &m), IcmpInput::Reply(_)));
    // From a broadcast source: counted in, not answered.
    let d = echo_req(Ipv4Addr::BROADCAST, ME, 1, 1, b"");
    assert_eq!(classify(&d, false, &m), IcmpInput::Drop);
    assert_eq!(get(&m, "icmpInEchos"), 4);
    assert_eq!(get(&m, "icmpOutEchoReps"), 3);
    assert_eq!(get(&m, "icmpOutDrops"), 1);
}

#[test]
fn input_echo_reply() {
    let m = IcmpMib::new();
    let d = icmp_dgram(PEER, ME, &IcmpMessage::EchoReply { ident: 0x77, seq: 3, data: &[0; 56] });
    assert_eq!(classify(&d, false, &m), IcmpInput::EchoReply { ident: 0x77, seq: 3, data_len: 56 });
    assert_eq!(nonzero(&m), vec![("icmpInMsgs", 1), ("icmpInEchoReps", 1)]);
}

#[test]
fn input_errors_give_the_conn_tuple() {
    // We sent UDP ME:4000 -> PEER:53; PEER says port unreachable.
    let sent = udp_dgram(ME, PEER, 4000, 53, b"query");
    let cases = [
        (IcmpErrorKind::PortUnreachable, "icmpInDestUnreachs"),
        (IcmpErrorKind::HostUnreachable, "icmpInDestUnreachs"),
        (IcmpErrorKind::NetUnreachable, "icmpInDestUnreachs"),
        (IcmpErrorKind::ProtocolUnreachable, "icmpInDestUnreachs"),
        (IcmpErrorKind::Unreachable { code: 13 }, "icmpInDestUnreachs"),
        (IcmpErrorKind::FragNeeded { next_hop_mtu: 1492 }, "icmpInDestUnreachs"),
        (IcmpErrorKind::TtlExceeded, "icmpInTimeExcds"),
        (IcmpErrorKind::ReassemblyExceeded, "icmpInTimeExcds"),
    ];
    for (kind, counter) in cases {
        let m = IcmpMib::new();
        let err = build_error(kind, &sent, PEER, 64, 1).unwrap();
        let got = classify(&err, false, &m);
        let mtu = match kind {
            IcmpErrorKind::FragNeeded { next_hop_mtu } => Some(next_hop_mtu),
            _ => None,
        };
        assert_eq!(
            got,
            IcmpInput::Error {
                kind,
                quoted_proto: IPPROTO_UDP,
                quoted_src: ME,
                quoted_dst: PEER,
                quoted_sport: 4000,
                quoted_dport: 53,
                next_hop_mtu: mtu,
                quoted_seq: None,
                quoted_len: sent.len() as u16,
            }
        );
        let mut want = vec![("icmpInMsgs", 1), (counter, 1)];
        if mtu.is_some() {
            want.push(("icmpInFragNeeded", 1));
        }
        assert_eq!(nonzero(&m), want, "{kind:?}");
    }
    // TCP the same; another protocol gives zero ports.
    let mut tcp = Ipv4Header::new(ME, PEER, IPPROTO_TCP, 0);
    tcp.ident = 1;
    let tcp = datagram(&tcp, &[0x1f, 0x90, 0x00, 0x50, 1, 2, 3, 4, 5, 6, 7, 8, 0x50, 0, 0, 0, 0, 0, 0, 0]);
    let m = IcmpMib::new();
    let e = build_error(IcmpErrorKind::PortUnreachable, &tcp, PEER, 64, 1).unwrap();
    assert!(matches!(
        classify(&e, false, &m),
        IcmpInput::Error { quoted_proto: IPPROTO_TCP, quoted_sport: 8080, quoted_dport: 80, quoted_seq: Some(0x0102_0304), .. }
    ));
    let gre = datagram(&Ipv4Header::new(ME, PEER, 47, 0), &[]);
    let e = build_error(IcmpErrorKind::ProtocolUnreachable, &gre, PEER, 64, 1).unwrap();
    assert!(matches!(
        classify(&e, false, &m),
        IcmpInput::Error { quoted_proto: 47, quoted_sport: 0, quoted_dport: 0, next_hop_mtu: None, .. }
    ));
}

#[test]
fn input_errors_with_bad_quotes_are_in_errors() {
    let sent = udp_dgram(ME, PEER, 4000, 53, b"query");
    // Quote too short for the UDP ports (header + 3 bytes).
    for quote in [&sent[..23], &sent[..10], &[][..], &[0x65u8; 28][..]] {
        let m = IcmpMib::new();
        let d = icmp_dgram(PEER, ME, &IcmpMessage::DestUnreachable { code: 3, next_hop_mtu: 0, quote });
        assert_eq!(classify(&d, false, &m), IcmpInput::Drop);
        assert_eq!(nonzero(&m), vec![("icmpInMsgs", 1), ("icmpInErrors", 1), ("icmpInDestUnreachs", 1)]);
    }
    let m = IcmpMib::new();
    let d = icmp_dgram(PEER, ME, &IcmpMessage::TimeExceeded { code: 0, quote: &sent[..20] });
    assert_eq!(classify(&d, false, &m), IcmpInput::Drop);
    assert_eq!(nonzero(&m), vec![("icmpInMsgs", 1), ("icmpInErrors", 1), ("icmpInTimeExcds", 1)]);
}

#[test]
fn input_malformed_checksum_and_unknown() {
    // Too short for an ICMP header.
    let m = IcmpMib::new();
    let d = datagram(&Ipv4Header::new(PEER, ME, IPPROTO_ICMP, 0), &[8, 0, 0, 0]);
    assert_eq!(classify(&d, false, &m), IcmpInput::Drop);
    assert_eq!(nonzero(&m), vec![("icmpInMsgs", 1), ("icmpInErrors", 1)]);
    // Not an IP datagram / not ICMP.
    let m = IcmpMib::new();
    assert_eq!(classify(&[1, 2, 3], false, &m), IcmpInput::Drop);
    assert_eq!(classify(&udp_dgram(PEER, ME, 1, 2, b"12345678"), false, &m), IcmpInput::Drop);
    assert_eq!(nonzero(&m), vec![("icmpInMsgs", 2), ("icmpInErrors", 2)]);
    // Bad checksum: icmpInCksumErrs only.
    let m = IcmpMib::new();
    let mut d = echo_req(PEER, ME, 1, 1, b"abc");
    d[24] ^= 0x40;
    assert_eq!(classify(&d, false, &m), IcmpInput::Drop);
    assert_eq!(nonzero(&m), vec![("icmpInMsgs", 1), ("icmpInCksumErrs", 1)]);
    // Unknown types vs. known types we do not act on.
    let m = IcmpMib::new();
    for t in [1u8, 2, 6, 7, 19, 30, 42, 255] {
        let d = icmp_dgram(PEER, ME, &IcmpMessage::Other { icmp_type: t, code: 0, rest: [0; 4], data: b"" });
        assert_eq!(classify(&d, false, &m), IcmpInput::Drop);
    }
    assert_eq!(nonzero(&m), vec![("icmpInMsgs", 8), ("icmpInUnknowns", 8)]);
    let m = IcmpMib::new();
    for t in [4u8, 9, 10, 12, 13, 14, 15, 16, 17, 18] {
        let d = icmp_dgram(PEER, ME, &IcmpMessage::Other { icmp_type: t, code: 0, rest: [0; 4], data: &[0; 28] });
        assert_eq!(classify(&d, false, &m), IcmpInput::Drop, "type {t}");
    }
    assert_eq!(nonzero(&m), vec![("icmpInMsgs", 10)]);
    // A redirect whose quote is no datagram: counted, refused.
    let m = IcmpMib::new();
    let d = icmp_dgram(PEER, ME, &IcmpMessage::Other { icmp_type: 5, code: 0, rest: [0; 4], data: &[0; 28] });
    assert_eq!(classify(&d, false, &m), IcmpInput::Drop);
    assert_eq!(nonzero(&m), vec![("icmpInMsgs", 1), ("icmpInRedirects", 1), ("icmpInBadRedirects", 1)]);
}

// ---------------------------------------------------------------- random bytes

#[test]
fn random_bytes_never_panic() {
    let mut r = Rng(0x1c3f_00d5_eed5_0001);
    let m = IcmpMib::new();
    let mut l = ErrRateLimiter::default();
    let templates = [
        echo_req(PEER, ME, 1, 2, b"0123456789"),
        build_error(IcmpErrorKind::PortUnreachable, &udp_dgram(ME, PEER, 1, 2, b"x"), PEER, 64, 0).unwrap(),
        udp_dgram(PEER, ME, 1, 2, b"payload"),
    ];
    for i in 0..20_000u64 {
        let d = if i % 2 == 0 {
            let n = r.below(120);
            r.bytes(n)
        } else {
            // Mutate a valid datagram: flips, truncation.
            let mut d = templates[r.below(templates.len())].clone();
            for _ in 0..=r.below(4) {
                let k = r.below(d.len());
                d[k] ^= r.next() as u8;
            }
            let keep = r.below(d.len() + 1);
            d.truncate(keep);
            d
        };
        let _ = may_send_error(&d, r.next() & 1 == 0, r.next() & 1 == 0);
        let _ = echo_reply(&d, ME, 64, 0);
        let _ = echo_reply_from(&d, ME, 64, 0);
        let _ = IcmpInput::classify(&d, ME, r.next() & 1 == 0, 64, 0, &m);
        let kind = IcmpErrorKind::from_type_code(3 + 8 * (r.below(2) as u8), r.next() as u8, r.next() as u16).unwrap();
        if let Ok(e) = build_error(kind, &d, ME, 64, 0) {
            // Whatever we build parses and verifies.
            let (h, p) = Ipv4Header::parse(&e, true).unwrap();
            assert_eq!(h.protocol, IPPROTO_ICMP);
            assert!(IcmpMessage::parse(p, true).unwrap().is_error());
        }
        let _ = error_for(&mut l, i, kind, &d, flags(), &m);
    }
    assert_eq!(get(&m, "icmpInMsgs"), 20_000);
}

// ---------------------------------------------------------------- source routes

/// An echo request from PEER that came by a loose source route through
/// `routers` (the option completed: pointer past the end).
fn source_routed_echo(routers: &[Ipv4Addr], ptr_past_end: bool) -> Vec<u8> {
    let mut raw = vec![IPOPT_LSRR, (3 + 4 * routers.len()) as u8, 0];
    raw[2] = if ptr_past_end { raw[1] + 1 } else { 4 };
    for r in routers {
        raw.extend_from_slice(&r.octets());
    }
    let mut h = Ipv4Header::new(PEER, ME, IPPROTO_ICMP, 0);
    h.options = Ipv4Options::new(&raw).unwrap();
    datagram(&h, &icmp_bytes(&IcmpMessage::EchoRequest { ident: 9, seq: 1, data: b"route" }))
}

#[test]
fn an_echo_by_a_source_route_is_answered_by_the_reverse_route() {
    let (r1, r2) = (Ipv4Addr::new(10, 1, 1, 1), Ipv4Addr::new(192, 168, 1, 254));
    let req = source_routed_echo(&[r1, r2], true);
    let (h, _) = Ipv4Header::parse(&req, true).unwrap();
    let route = h.options.source_route().unwrap();
    assert_eq!((route.completed, route.strict, route.route.clone()), (true, false, vec![r1, r2]));
    let reply = echo_reply(&req, ME, 64, 7).unwrap();
    let (rh, body) = Ipv4Header::parse(&reply, true).unwrap();
    assert_eq!(rh.dst, r2, "to the router nearest to us first");
    assert_eq!(rh.src, ME);
    let back = rh.options.source_route().unwrap();
    assert_eq!((back.completed, back.route), (false, vec![r1, PEER]), "then back through r1 to the sender");
    assert_eq!(&rh.options.as_bytes()[..3], &[IPOPT_LSRR, 11, 4]);
    assert_eq!(body[0], ICMP_ECHO_REPLY);
    assert_eq!(&body[8..], b"route");
    // Without a source route, the reply goes straight back.
    let plain = echo_reply(&echo_req(PEER, ME, 1, 1, b"x"), ME, 64, 7).unwrap();
    assert_eq!(Ipv4Header::parse(&plain, true).unwrap().0.dst, PEER);
}
