//! FireEngine wire formats: checksum, IPv4, ICMP, UDP — round trips, every
//! error, and random bytes that must never panic.

use arbalest_netstack::fireengine::wire::checksum::{checksum, pseudo_header_v4, update_u16, Checksum};
use arbalest_netstack::fireengine::wire::icmp::*;
use arbalest_netstack::fireengine::wire::ipv4::*;
use arbalest_netstack::fireengine::wire::udp::{UdpError, UdpHeader, UDP_HEADER_LEN};
use core::net::Ipv4Addr;

mod rng;
use rng::Rng;

const A: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Straightforward reference sum: 32-bit accumulate, pad odd with 0.
fn ref_sum(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], 0]) };
        s += u64::from(w);
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

// ---------------------------------------------------------------- checksum

#[test]
fn rfc1071_example() {
    // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    let mut c = Checksum::new();
    c.add(&d);
    assert_eq!(c.fold(), 0xddf2);
    assert_eq!(c.finish(), !0xddf2);
    assert_eq!(checksum(&d), 0x220d);
    // Split at every point, odd boundaries included.
    for i in 0..=d.len() {
        for j in i..=d.len() {
            let mut c = Checksum::new();
            c.add(&d[..i]);
            c.add(&d[i..j]);
            c.add(&[]);
            c.add(&d[j..]);
            assert_eq!(c.fold(), 0xddf2, "split {i} {j}");
        }
    }
}

#[test]
fn checksum_empty_and_odd() {
    assert_eq!(Checksum::new().fold(), 0);
    assert_eq!(checksum(&[]), 0xffff);
    assert_eq!(checksum(&[0xab]), !0xab00);
    let mut c = Checksum::new();
    c.add(&[0xab]);
    c.add(&[0xcd]);
    assert_eq!(c.fold(), 0xabcd);
}

#[test]
fn checksum_random_slices_match_reference() {
    let mut r = Rng(0x1234_5678);
    for _ in 0..500 {
        let n = r.below(300);
        let d = r.bytes(n);
        let mut c = Checksum::new();
        let mut i = 0;
        while i < d.len() {
            let k = (1 + r.below(7)).min(d.len() - i);
            c.add(&d[i..i + k]);
            i += k;
        }
        assert_eq!(c.fold(), ref_sum(&d));
        assert_eq!(checksum(&d), !ref_sum(&d));
    }
    // Large all-ones data folds without overflow.
    let big = vec![0xffu8; 70_001];
    assert_eq!(checksum(&big), !ref_sum(&big));
}

#[test]
fn checksum_verifies_to_zero() {
    let mut r = Rng(99);
    for _ in 0..100 {
        let n = 2 * (1 + r.below(40));
        let mut d = r.bytes(n);
        d[0] = 0;
        d[1] = 0;
        let c = checksum(&d);
        d[..2].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&d), 0);
    }
}

#[test]
fn pseudo_header_sum() {
    let c = pseudo_header_v4(A, B, 17, 0x0010);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&A.octets());
    bytes.extend_from_slice(&B.octets());
    bytes.extend_from_slice(&[0, 17, 0x00, 0x10]);
    assert_eq!(c.fold(), ref_sum(&bytes));
    let mut c2 = Checksum::new();
    c2.add_u32(u32::from(A));
    c2.add_u32(u32::from(B));
    c2.add_u16(17);
    c2.add_u16(16);
    assert_eq!(c2, c);
}

#[test]
fn rfc1624_incremental_matches_full() {
    let mut r = Rng(7);
    for _ in 0..500 {
        let mut d = r.bytes(20);
        d[10] = 0;
        d[11] = 0;
        let c = checksum(&d);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        let w = 2 * r.below(10);
        if w == 10 {
            continue;
        }
        let old = u16::from_be_bytes([d[w], d[w + 1]]);
        let new = r.next() as u16;
        d[w..w + 2].copy_from_slice(&new.to_be_bytes());
        let inc = update_u16(c, old, new);
        d[10..12].copy_from_slice(&inc.to_be_bytes());
        assert_eq!(checksum(&d), 0, "incremental checksum must verify");
    }
}

// ---------------------------------------------------------------- IPv4

fn sample_header() -> Ipv4Header {
    let mut h = Ipv4Header::new(A, B, IPPROTO_UDP, 12);
    h.ident = 0xbeef;
    h.ttl = 17;
    h.tos = 0x2e;
    h
}

fn datagram(h: &Ipv4Header, payload: &[u8]) -> Vec<u8> {
    let mut h = *h;
    h.payload_len = payload.len() as u16;
    let mut v = vec![0u8; h.header_len()];
    h.emit(&mut v).unwrap();
    v.extend_from_slice(payload);
    v
}

#[test]
fn ipv4_round_trip() {
    let mut r = Rng(3);
    for i in 0..300 {
        let mut h = sample_header();
        h.dont_frag = i % 2 == 0;
        h.more_frags = i % 3 == 0;
        h.frag_offset = (r.below(8192) * 8) as u16;
        h.ttl = r.next() as u8;
        h.protocol = r.next() as u8;
        h.src = Ipv4Addr::from(r.next() as u32);
        h.dst = Ipv4Addr::from(r.next() as u32);
        h.ident = r.next() as u16;
        h.options = match i % 4 {
            0 => Ipv4Options::empty(),
            1 => Ipv4Options::new(&[IPOPT_NOP, IPOPT_NOP, IPOPT_NOP, IPOPT_EOL]).unwrap(),
            2 => Ipv4Options::new(&[0x94, 4, 0, 0]).unwrap(), // router alert (copied)
            _ => Ipv4Options::new(&[0x07, 7, 4, 0, 0, 0, 0, IPOPT_NOP, 0x44, 4, 5, 0]).unwrap(),
        };
        let payload = r.some_bytes(100);
        let d = datagram(&h, &payload);
        assert_eq!(checksum(&d[..h.header_len()]), 0);
        let (p, pl) = Ipv4Header::parse(&d, true).unwrap();
        h.payload_len = payload.len() as u16;
        assert_eq!(p, h);
        assert_eq!(pl, &payload[..]);
        assert_eq!(p.total_len(), d.len());
        assert_eq!(p.is_fragment(), h.more_frags || h.frag_offset != 0);
    }
}

#[test]
fn ipv4_trailing_padding_trimmed() {
    let h = sample_header();
    let mut d = datagram(&h, &[1, 2, 3, 4]);
    d.extend_from_slice(&[0; 22]); // Ethernet minimum-frame padding
    let (p, pl) = Ipv4Header::parse(&d, true).unwrap();
    assert_eq!(pl, &[1, 2, 3, 4]);
    assert_eq!(p.payload_len, 4);
}

#[test]
fn ipv4_errors() {
    let h = sample_header();
    let good = datagram(&h, &[0; 12]);
    assert_eq!(Ipv4Header::parse(&good[..19], true), Err(Ipv4Error::Truncated));
    assert_eq!(Ipv4Header::parse(&[], true), Err(Ipv4Error::Truncated));
    let mut d = good.clone();
    d[0] = 0x65;
    assert_eq!(Ipv4Header::parse(&d, false), Err(Ipv4Error::BadVersion(6)));
    let mut d = good.clone();
    d[0] = 0x44;
    assert_eq!(Ipv4Header::parse(&d, false), Err(Ipv4Error::BadIhl(4)));
    let mut d = good.clone();
    d[0] = 0x4f; // 60-byte header in a 32-byte buffer
    assert_eq!(Ipv4Header::parse(&d, false), Err(Ipv4Error::HeaderTruncated));
    let mut d = good.clone();
    d[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(Ipv4Header::parse(&d, false), Err(Ipv4Error::BadTotalLength));
    let mut d = good.clone();
    d[2..4].copy_from_slice(&33u16.to_be_bytes());
    assert_eq!(Ipv4Header::parse(&d, false), Err(Ipv4Error::TotalLengthTruncated));
    let mut d = good.clone();
    d[8] ^= 1;
    assert_eq!(Ipv4Header::parse(&d, true), Err(Ipv4Error::BadChecksum));
    assert!(Ipv4Header::parse(&d, false).is_ok(), "NIC-verified skips the checksum");
    // Options: length 1, length past the header, length 0, type without length.
    for opts in [&[0x44u8, 1, 0, 0][..], &[0x44, 9, 0, 0], &[0x44, 0, 0, 0], &[IPOPT_NOP, IPOPT_NOP, IPOPT_NOP, 0x44]] {
        let mut d = vec![0x46, 0, 0, 24, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        d.extend_from_slice(opts);
        let c = checksum(&d);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(Ipv4Header::parse(&d, true), Err(Ipv4Error::BadOptionLength), "{opts:?}");
        assert_eq!(Ipv4Options::new(opts), Err(Ipv4Error::BadOptionLength));
    }
    // Anything after EOL is not looked at.
    assert!(Ipv4Options::new(&[IPOPT_EOL, 0x44, 1, 0]).is_ok());
    assert_eq!(Ipv4Options::new(&[IPOPT_NOP; 41]), Err(Ipv4Error::OptionsTooLong));
    // Emit errors.
    let mut h2 = h;
    h2.payload_len = 65535 - 19;
    assert_eq!(h2.emit(&mut [0u8; 20]), Err(Ipv4Error::TooLong));
    let mut h3 = h;
    h3.frag_offset = 12;
    assert_eq!(h3.emit(&mut [0u8; 20]), Err(Ipv4Error::BadFragOffset));
    assert_eq!(h.emit(&mut [0u8; 19]), Err(Ipv4Error::BufferTooSmall));
}

#[test]
fn ipv4_options_iter_and_copied() {
    let raw = [IPOPT_NOP, 0x94, 4, 0, 0, 0x07, 3, 4, 0x83, 3, 9, IPOPT_EOL];
    let o = Ipv4Options::new(&raw).unwrap();
    assert_eq!(o.as_bytes().len(), 12);
    let kinds: Vec<u8> = o.iter().map(|x| x.kind).collect();
    assert_eq!(kinds, vec![IPOPT_NOP, 0x94, 0x07, 0x83]);
    let c = o.copied_only();
    assert_eq!(c.as_bytes(), &[0x94, 4, 0, 0, 0x83, 3, 9, 0]);
    assert!(c.iter().all(|x| x.copied()));
    assert!(Ipv4Options::empty().is_empty());
    assert!(Ipv4Options::empty().copied_only().is_empty());
    assert_eq!(Ipv4Options::new(&[0x07, 3, 4]).unwrap().copied_only(), Ipv4Options::empty());
}

#[test]
fn ipv4_quoted_allows_short_buffer() {
    let h = sample_header();
    let d = datagram(&h, &[9; 100]);
    assert_eq!(Ipv4Header::parse(&d[..28], true), Err(Ipv4Error::TotalLengthTruncated));
    let (q, rest) = Ipv4Header::parse_quoted(&d[..28]).unwrap();
    assert_eq!(q.payload_len, 100);
    assert_eq!(rest, &[9; 8]);
}

#[test]
fn ipv4_decrement_ttl() {
    let mut h = sample_header();
    for ttl in [1u8, 2, 64, 255] {
        h.ttl = ttl;
        let mut d = datagram(&h, &[1; 12]);
        assert_eq!(decrement_ttl(&mut d), Some(ttl - 1));
        let (p, _) = Ipv4Header::parse(&d, true).unwrap();
        assert_eq!(p.ttl, ttl - 1);
    }
    h.ttl = 0;
    let mut d = datagram(&h, &[]);
    assert_eq!(decrement_ttl(&mut d), None);
    assert_eq!(decrement_ttl(&mut [0x45; 10]), None);
}

#[test]
fn ipv4_random_bytes_never_panic() {
    let mut r = Rng(0xdead_beef);
    let good = datagram(&sample_header(), &[5; 40]);
    for i in 0..20_000 {
        let mut d = if i % 2 == 0 { r.some_bytes(80) } else { good.clone() };
        if i % 2 == 1 {
            for _ in 0..1 + r.below(4) {
                let k = r.below(d.len());
                d[k] = r.next() as u8;
            }
            if i % 4 == 1 {
                d[0] = 0x40 | (r.next() as u8 & 0x0f);
            }
            let cut = r.below(d.len() + 1);
            d.truncate(cut);
        }
        for verify in [true, false] {
            if let Ok((h, p)) = Ipv4Header::parse(&d, verify) {
                assert!(p.len() <= d.len());
                assert_eq!(usize::from(h.payload_len), p.len());
                // Whatever parsed emits and parses back the same.
                let again = datagram(&h, p);
                assert_eq!(Ipv4Header::parse(&again, true).unwrap().0, h);
            }
            let _ = Ipv4Header::parse_quoted(&d);
            let mut d2 = d.clone();
            let _ = decrement_ttl(&mut d2);
            if !d.is_empty() {
                let _ = Ipv4Options::new(&d[..d.len().min(40)]).map(|o| o.iter().count() + o.copied_only().iter().count());
            }
        }
    }
}

// ---------------------------------------------------------------- ICMP

fn icmp_bytes(m: &IcmpMessage) -> Vec<u8> {
    let mut v = vec![0u8; m.emit_len()];
    assert_eq!(m.emit(&mut v).unwrap(), v.len());
    v
}

#[test]
fn icmp_round_trips() {
    let orig = datagram(&sample_header(), &[0x12, 0x34, 0x00, 0x35, 0, 20, 0, 0, 7, 7, 7, 7]);
    let quote = quote_of(&orig);
    assert_eq!(quote.len(), 28);
    let msgs = [
        IcmpMessage::EchoRequest { ident: 0x1234, seq: 7, data: b"hello, FireEngine" },
        IcmpMessage::EchoReply { ident: 1, seq: 0xffff, data: b"" },
        IcmpMessage::EchoReply { ident: 1, seq: 2, data: b"odd" },
        IcmpMessage::DestUnreachable { code: ICMP_PORT_UNREACH, next_hop_mtu: 0, quote },
        IcmpMessage::DestUnreachable { code: ICMP_PROTOCOL_UNREACH, next_hop_mtu: 0, quote },
        IcmpMessage::DestUnreachable { code: ICMP_FRAGMENTATION_NEEDED, next_hop_mtu: 1400, quote },
        IcmpMessage::TimeExceeded { code: ICMP_TTL_EXCEEDED, quote },
        IcmpMessage::TimeExceeded { code: ICMP_REASS_EXCEEDED, quote },
        IcmpMessage::Other { icmp_type: ICMP_REDIRECT, code: 1, rest: [10, 0, 0, 1], data: quote },
        IcmpMessage::Other { icmp_type: 13, code: 0, rest: [1, 2, 3, 4], data: &[0; 12] },
    ];
    for m in msgs {
        let b = icmp_bytes(&m);
        assert_eq!(checksum(&b), 0);
        assert_eq!(IcmpMessage::parse(&b, true).unwrap(), m);
        assert_eq!(b[0], m.icmp_type());
    }
    let eb = icmp_bytes(&msgs[5]);
    let e = IcmpMessage::parse(&eb, true).unwrap();
    assert!(e.is_error());
    let (qh, qrest) = e.quoted_header().unwrap().unwrap();
    assert_eq!(qh.src, A);
    assert_eq!(qh.protocol, IPPROTO_UDP);
    assert_eq!(&qrest[..4], &[0x12, 0x34, 0x00, 0x35]);
    assert!(msgs[0].quoted_header().is_none());
    assert_eq!(
        IcmpMessage::DestUnreachable { code: 3, next_hop_mtu: 0, quote: &[1, 2, 3] }.quoted_header(),
        Some(Err(IcmpError::BadQuote(Ipv4Error::Truncated)))
    );
}

#[test]
fn icmp_is_error() {
    let q: &[u8] = &[];
    assert!(!IcmpMessage::EchoRequest { ident: 0, seq: 0, data: q }.is_error());
    assert!(!IcmpMessage::EchoReply { ident: 0, seq: 0, data: q }.is_error());
    assert!(IcmpMessage::DestUnreachable { code: 3, next_hop_mtu: 0, quote: q }.is_error());
    assert!(IcmpMessage::TimeExceeded { code: 0, quote: q }.is_error());
    for t in [ICMP_SOURCE_QUENCH, ICMP_REDIRECT, ICMP_PARAM_PROBLEM] {
        assert!(IcmpMessage::Other { icmp_type: t, code: 0, rest: [0; 4], data: q }.is_error());
    }
    assert!(!IcmpMessage::Other { icmp_type: 13, code: 0, rest: [0; 4], data: q }.is_error());
}

#[test]
fn icmp_errors() {
    assert_eq!(IcmpMessage::parse(&[8, 0, 0, 0, 0, 0, 0], true), Err(IcmpError::Truncated));
    let mut b = icmp_bytes(&IcmpMessage::EchoRequest { ident: 5, seq: 6, data: b"abc" });
    b[9] ^= 0x40;
    assert_eq!(IcmpMessage::parse(&b, true), Err(IcmpError::BadChecksum));
    assert!(IcmpMessage::parse(&b, false).is_ok());
    let m = IcmpMessage::EchoRequest { ident: 5, seq: 6, data: b"abc" };
    assert_eq!(m.emit(&mut [0u8; 10]), Err(IcmpError::BufferTooSmall));
    // Echo with a non-zero code is not an echo.
    let mut b = icmp_bytes(&IcmpMessage::Other { icmp_type: 8, code: 1, rest: [0; 4], data: &[] });
    assert!(matches!(IcmpMessage::parse(&b, true), Ok(IcmpMessage::Other { icmp_type: 8, code: 1, .. })));
    b[1] = 0;
    assert_eq!(IcmpMessage::parse(&b, false), Ok(IcmpMessage::EchoRequest { ident: 0, seq: 0, data: &[] }));
}

#[test]
fn icmp_quote_of_bounds() {
    assert_eq!(quote_of(&[]).len(), 0);
    assert_eq!(quote_of(&[0x45; 10]).len(), 10);
    assert_eq!(quote_of(&[0x46; 100]).len(), 32);
    assert_eq!(quote_of(&[0x41; 100]).len(), 28);
}

#[test]
fn icmp_random_bytes_never_panic() {
    let mut r = Rng(42);
    for _ in 0..20_000 {
        let mut d = r.some_bytes(64);
        if d.len() >= 8 && r.below(2) == 0 {
            d[0] = [0, 3, 8, 11][r.below(4)];
            d[2] = 0;
            d[3] = 0;
            let c = checksum(&d);
            d[2..4].copy_from_slice(&c.to_be_bytes());
        }
        for v in [true, false] {
            if let Ok(m) = IcmpMessage::parse(&d, v) {
                let _ = m.is_error();
                let _ = m.quoted_header();
                let b = icmp_bytes(&m);
                assert_eq!(IcmpMessage::parse(&b, true).unwrap(), m);
            }
        }
        let _ = quote_of(&d);
    }
}

// ---------------------------------------------------------------- UDP

fn udp_bytes(h: &UdpHeader, data: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut v = vec![0u8; UDP_HEADER_LEN];
    v.extend_from_slice(data);
    h.emit(&mut v, src, dst).unwrap();
    v
}

#[test]
fn udp_round_trip() {
    let mut r = Rng(5);
    for _ in 0..300 {
        let h = UdpHeader { src_port: r.next() as u16, dst_port: r.next() as u16 };
        let data = r.some_bytes(200);
        let b = udp_bytes(&h, &data, A, B);
        assert_ne!(&b[6..8], &[0, 0], "emit never sends checksum 0");
        let (p, d) = UdpHeader::parse(&b, A, B, true).unwrap();
        assert_eq!(p, h);
        assert_eq!(d, &data[..]);
        // Wrong pseudo-header fails.
        assert_eq!(UdpHeader::parse(&b, A, Ipv4Addr::new(10, 0, 0, 3), true), Err(UdpError::BadChecksum));
    }
}

#[test]
fn udp_zero_checksum_sent_as_ffff() {
    // Find data whose checksum computes to 0, then see 0xffff on the wire.
    let h = UdpHeader { src_port: 1, dst_port: 2 };
    let mut found = false;
    for x in 0u32..=0xffff {
        let data = (x as u16).to_be_bytes();
        let b = udp_bytes(&h, &data, A, B);
        if b[6..8] == [0xff, 0xff] {
            found = true;
            assert!(UdpHeader::parse(&b, A, B, true).is_ok());
            break;
        }
    }
    assert!(found);
}

#[test]
fn udp_errors_and_no_checksum() {
    let h = UdpHeader { src_port: 53, dst_port: 5353 };
    let b = udp_bytes(&h, b"payload", A, B);
    assert_eq!(UdpHeader::parse(&b[..7], A, B, true), Err(UdpError::Truncated));
    let mut d = b.clone();
    d[4..6].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(UdpHeader::parse(&d, A, B, true), Err(UdpError::BadLength));
    let mut d = b.clone();
    d[4..6].copy_from_slice(&((b.len() + 1) as u16).to_be_bytes());
    assert_eq!(UdpHeader::parse(&d, A, B, true), Err(UdpError::BadLength));
    let mut d = b.clone();
    d[9] ^= 1;
    assert_eq!(UdpHeader::parse(&d, A, B, true), Err(UdpError::BadChecksum));
    assert!(UdpHeader::parse(&d, A, B, false).is_ok());
    d[6] = 0;
    d[7] = 0;
    assert_eq!(UdpHeader::parse(&d, A, B, true).unwrap().0, h, "checksum 0 = none");
    // IP payload longer than the UDP length: trimmed.
    let mut d = b.clone();
    d.extend_from_slice(&[0xee; 5]);
    assert_eq!(UdpHeader::parse(&d, A, B, true).unwrap().1, b"payload");
    assert_eq!(h.emit(&mut [0u8; 7], A, B), Err(UdpError::BadBuffer));
    assert_eq!(h.emit(&mut vec![0u8; 65536], A, B), Err(UdpError::BadBuffer));
    assert!(h.emit(&mut vec![0u8; 65535], A, B).is_ok());
}

#[test]
fn udp_random_bytes_never_panic() {
    let mut r = Rng(77);
    for _ in 0..20_000 {
        let d = r.some_bytes(40);
        for v in [true, false] {
            if let Ok((_, data)) = UdpHeader::parse(&d, A, B, v) {
                assert!(data.len() + UDP_HEADER_LEN <= d.len());
            }
        }
    }
}
