//! FireEngine IPv4 layer: the MIB names, host input checks and their
//! counters, reassembly in every order and under attack, fragmentation
//! and its round trip through reassembly.

use arbalest_netstack::fireengine::ip::frag::{fragment, FragError};
use arbalest_netstack::fireengine::ip::input::{count_unknown_proto, validate, DstKind, InputDrop};
use arbalest_netstack::fireengine::ip::mib::{IcmpMib, IpMib, UdpMib};
use arbalest_netstack::fireengine::ip::reass::{ReassConfig, ReassDrop, ReassKey, ReassOutcome, Reassembler};
use arbalest_netstack::fireengine::wire::checksum::checksum;
use arbalest_netstack::fireengine::wire::ipv4::*;
use core::net::Ipv4Addr;

mod rng;
use rng::Rng;

const A: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const ME: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

fn get(m: &IpMib, name: &str) -> u64 {
    m.get(name).unwrap_or_else(|| panic!("no counter {name}"))
}

fn datagram(h: &Ipv4Header, payload: &[u8]) -> Vec<u8> {
    let mut h = *h;
    h.payload_len = payload.len() as u16;
    let mut v = vec![0u8; h.header_len()];
    h.emit(&mut v).unwrap();
    v.extend_from_slice(payload);
    v
}

fn hdr(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Ipv4Header {
    let mut h = Ipv4Header::new(src, dst, proto, 0);
    h.ident = 0x4242;
    h
}

// ---------------------------------------------------------------- MIB

#[test]
fn mib_names_are_illumos_in_order() {
    let ip = "ipForwarding ipDefaultTTL ipInReceives ipInHdrErrors ipInAddrErrors \
        ipInCksumErrs ipForwDatagrams ipForwProhibits ipInUnknownProtos ipInDiscards \
        ipInDelivers ipOutRequests ipOutDiscards ipOutNoRoutes ipReasmTimeout \
        ipReasmReqds ipReasmOKs ipReasmFails ipReasmDuplicates ipReasmPartDups \
        ipFragOKs ipFragFails ipFragCreates ipLoopbackDatagrams";
    let icmp = "icmpInMsgs icmpInErrors icmpInCksumErrs icmpInUnknowns \
        icmpInDestUnreachs icmpInTimeExcds icmpInRedirects icmpInBadRedirects icmpInEchos icmpInEchoReps icmpOutMsgs \
        icmpOutDrops icmpOutErrors icmpOutDestUnreachs icmpOutTimeExcds \
        icmpOutEchos icmpOutEchoReps icmpOutFragNeeded icmpInFragNeeded";
    let udp = "udpInDatagrams udpInErrors udpOutDatagrams udpOutErrors udpInOverflows udpNoPorts udpInCksumErrs";
    let names = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let m = IpMib::new();
    assert_eq!(m.fields().map(|(n, _)| n.to_string()).collect::<Vec<_>>(), names(ip));
    assert_eq!(IpMib::NAMES.to_vec(), names(ip));
    assert_eq!(IcmpMib::new().fields().map(|(n, _)| n.to_string()).collect::<Vec<_>>(), names(icmp));
    assert_eq!(UdpMib::default().fields().map(|(n, _)| n.to_string()).collect::<Vec<_>>(), names(udp));
    // Values, not counts: host, TTL 255, 60 s.
    assert_eq!(get(&m, "ipForwarding"), 2);
    assert_eq!(get(&m, "ipDefaultTTL"), 255);
    assert_eq!(get(&m, "ipReasmTimeout"), 60);
    assert_eq!(get(&m, "ipInReceives"), 0);
    m.ip_frag_creates.fetch_add(3, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(m.fields().nth(22), Some(("ipFragCreates", 3)));
    assert_eq!(m.get("nope"), None);
    let u = UdpMib::new();
    u.udp_no_ports.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(u.get("udpNoPorts"), Some(1));
}

// ---------------------------------------------------------------- input

fn ours(a: Ipv4Addr) -> bool {
    a == ME || a == Ipv4Addr::new(192, 168, 1, 255)
}

#[test]
fn input_accepts_unicast_broadcast_multicast() {
    let m = IpMib::new();
    let d = datagram(&hdr(A, ME, IPPROTO_TCP), &[1, 2, 3]);
    let p = validate(&d, &ours, false, &m).unwrap();
    assert_eq!(p.dst_kind, DstKind::Local);
    assert_eq!(p.payload, 20..23);
    assert!(!p.is_fragment);
    assert_eq!(&d[p.payload.clone()], &[1, 2, 3]);
    let mut padded = d.clone();
    padded.extend_from_slice(&[0; 30]);
    assert_eq!(validate(&padded, &ours, false, &m).unwrap().payload, 20..23);
    let d = datagram(&hdr(A, Ipv4Addr::BROADCAST, IPPROTO_UDP), &[0; 8]);
    assert_eq!(validate(&d, &ours, false, &m).unwrap().dst_kind, DstKind::Broadcast);
    let d = datagram(&hdr(A, Ipv4Addr::new(224, 0, 0, 251), IPPROTO_UDP), &[0; 8]);
    assert_eq!(validate(&d, &ours, false, &m).unwrap().dst_kind, DstKind::Multicast);
    let d = datagram(&hdr(A, Ipv4Addr::new(192, 168, 1, 255), IPPROTO_UDP), &[0; 8]);
    assert_eq!(validate(&d, &ours, false, &m).unwrap().dst_kind, DstKind::Local);
    // DHCP: 0.0.0.0 to 255.255.255.255 over UDP.
    let d = datagram(&hdr(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, IPPROTO_UDP), &[0; 8]);
    assert!(validate(&d, &ours, false, &m).is_ok());
    // A fragment is flagged.
    let mut h = hdr(A, ME, IPPROTO_UDP);
    h.more_frags = true;
    assert!(validate(&datagram(&h, &[0; 8]), &ours, false, &m).unwrap().is_fragment);
    let mut h = hdr(A, ME, IPPROTO_UDP);
    h.frag_offset = 8;
    assert!(validate(&datagram(&h, &[0; 8]), &ours, false, &m).unwrap().is_fragment);
    // Options: payload range after them.
    let mut h = hdr(A, ME, IPPROTO_UDP);
    h.options = Ipv4Options::new(&[0x94, 4, 0, 0]).unwrap();
    assert_eq!(validate(&datagram(&h, &[0; 8]), &ours, false, &m).unwrap().payload, 24..32);
    assert_eq!(get(&m, "ipInReceives"), 9);
    assert_eq!(get(&m, "ipInHdrErrors") + get(&m, "ipInAddrErrors"), 0);
}

#[test]
fn input_header_errors_counted() {
    let good = datagram(&hdr(A, ME, IPPROTO_UDP), &[0; 12]);
    let cases: Vec<(Vec<u8>, Ipv4Error)> = vec![
        (good[..10].to_vec(), Ipv4Error::Truncated),
        ({ let mut d = good.clone(); d[0] = 0x55; d }, Ipv4Error::BadVersion(5)),
        ({ let mut d = good.clone(); d[0] = 0x43; d }, Ipv4Error::BadIhl(3)),
        ({ let mut d = good.clone(); d[0] = 0x4f; d }, Ipv4Error::HeaderTruncated),
        ({ let mut d = good.clone(); d[3] = 10; d }, Ipv4Error::BadTotalLength),
        ({ let mut d = good.clone(); d[3] = 200; d }, Ipv4Error::TotalLengthTruncated),
        ({ let mut d = good.clone(); d[15] ^= 1; d }, Ipv4Error::BadChecksum),
        ({
            let mut d = vec![0x46, 0, 0, 24, 0, 0, 0, 0, 64, 17, 0, 0, 192, 168, 1, 10, 192, 168, 1, 1, 0x44, 7, 0, 0];
            let c = checksum(&d);
            d[10..12].copy_from_slice(&c.to_be_bytes());
            d
        }, Ipv4Error::BadOptionLength),
    ];
    let m = IpMib::new();
    let mut hdr_errors = 0;
    for (d, e) in cases.iter() {
        assert_eq!(validate(d, &ours, false, &m), Err(InputDrop::Header(*e)));
        if *e != Ipv4Error::BadChecksum {
            hdr_errors += 1;
        }
        assert_eq!(get(&m, "ipInHdrErrors"), hdr_errors, "{e:?}");
    }
    // As illumos counts it: a bad checksum in ipInCksumErrs only.
    assert_eq!(get(&m, "ipInCksumErrs"), 1);
    assert_eq!(get(&m, "ipInHdrErrors"), cases.len() as u64 - 1);
    assert_eq!(get(&m, "ipInReceives"), cases.len() as u64);
    assert_eq!(get(&m, "ipInAddrErrors"), 0);
    // The NIC verified: the bad checksum is not looked at.
    assert!(validate(&cases[6].0, &ours, true, &m).is_ok());
    // TTL 0 does not matter to a host.
    let mut h = hdr(A, ME, IPPROTO_UDP);
    h.ttl = 0;
    assert!(validate(&datagram(&h, &[]), &ours, false, &m).is_ok());
}

#[test]
fn input_address_errors_counted() {
    let m = IpMib::new();
    let bad_src = [
        (Ipv4Addr::new(224, 0, 0, 1), ME, IPPROTO_UDP),
        (Ipv4Addr::BROADCAST, ME, IPPROTO_UDP),
        (Ipv4Addr::new(240, 0, 0, 1), ME, IPPROTO_UDP),
        (Ipv4Addr::new(250, 1, 2, 3), ME, IPPROTO_TCP),
        (Ipv4Addr::UNSPECIFIED, ME, IPPROTO_UDP),
        (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, IPPROTO_TCP),
        (Ipv4Addr::new(127, 0, 0, 1), ME, IPPROTO_UDP),
    ];
    for (s, d, p) in bad_src {
        assert_eq!(validate(&datagram(&hdr(s, d, p), &[0; 8]), &ours, false, &m), Err(InputDrop::BadSource(s)));
    }
    // Martian destinations (illumos ip_input_common_v4, ill_input_short_v4).
    for d in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 9, 9, 9)] {
        assert_eq!(validate(&datagram(&hdr(A, d, IPPROTO_UDP), &[0; 8]), &ours, false, &m), Err(InputDrop::BadDestination(d)));
    }
    assert_eq!(get(&m, "ipInAddrErrors"), 10);
    assert_eq!(get(&m, "ipForwProhibits"), 0);
    // Unicast for someone else: a host does not forward (ipForwProhibits,
    // as illumos ire_recv_forward_v4 / ire_recv_noroute_v4 count it).
    let not_ours = [Ipv4Addr::new(192, 168, 1, 2), Ipv4Addr::new(240, 0, 0, 1), Ipv4Addr::new(8, 8, 8, 8)];
    for d in not_ours {
        assert_eq!(validate(&datagram(&hdr(A, d, IPPROTO_UDP), &[0; 8]), &ours, false, &m), Err(InputDrop::NotForUs(d)));
    }
    // A closure that claims everything still cannot make class E, 0.0.0.0
    // or loopback ours.
    let all = |_: Ipv4Addr| true;
    assert!(validate(&datagram(&hdr(A, Ipv4Addr::new(241, 0, 0, 1), 6), &[]), &all, false, &m).is_err());
    assert!(validate(&datagram(&hdr(A, Ipv4Addr::UNSPECIFIED, 6), &[]), &all, false, &m).is_err());
    assert!(validate(&datagram(&hdr(A, Ipv4Addr::new(127, 0, 0, 1), 6), &[]), &all, false, &m).is_err());
    assert_eq!(get(&m, "ipInAddrErrors"), 12);
    assert_eq!(get(&m, "ipForwProhibits"), 4);
    assert_eq!(get(&m, "ipInHdrErrors"), 0);
    assert_eq!(get(&m, "ipInReceives"), 16);
    count_unknown_proto(&m);
    count_unknown_proto(&m);
    assert_eq!(get(&m, "ipInUnknownProtos"), 2);
}

#[test]
fn input_random_bytes_never_panic_and_counts_add_up() {
    let m = IpMib::new();
    let mut r = Rng(0xfeed);
    let good = datagram(&hdr(A, ME, IPPROTO_UDP), &[7; 30]);
    let mut oks = 0u64;
    let n = 30_000u64;
    for i in 0..n {
        let n = r.below(71);
        let mut d = if i % 3 == 0 { r.bytes(n) } else { good.clone() };
        if i % 3 != 0 {
            for _ in 0..r.below(3) {
                let k = r.below(d.len());
                d[k] = r.next() as u8;
            }
            let cut = r.below(d.len() + 1);
            d.truncate(cut);
        }
        if let Ok(p) = validate(&d, &ours, i % 5 == 0, &m) {
            oks += 1;
            assert!(p.payload.end <= d.len());
            assert!(p.payload.start <= p.payload.end);
        }
    }
    assert_eq!(get(&m, "ipInReceives"), n);
    let drops = ["ipInHdrErrors", "ipInCksumErrs", "ipInAddrErrors", "ipForwProhibits"];
    assert_eq!(drops.iter().map(|c| get(&m, c)).sum::<u64>() + oks, n, "every datagram passed or counted once");
}

// ---------------------------------------------------------------- reassembly

/// One fragment: header from `base` with this offset/MF, payload slice.
fn frag(base: &Ipv4Header, off: usize, mf: bool, data: &[u8]) -> (Ipv4Header, Vec<u8>) {
    let mut h = *base;
    h.frag_offset = off as u16;
    h.more_frags = mf;
    h.payload_len = data.len() as u16;
    (h, data.to_vec())
}

/// Cuts `payload` into fragments of `step` bytes (a multiple of 8).
fn cut(base: &Ipv4Header, payload: &[u8], step: usize) -> Vec<(Ipv4Header, Vec<u8>)> {
    let mut v = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let n = step.min(payload.len() - off);
        v.push(frag(base, off, off + n < payload.len(), &payload[off..off + n]));
        off += n;
    }
    v
}

fn feed(r: &mut Reassembler, frags: &[(Ipv4Header, Vec<u8>)], now: u64, m: &IpMib) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (h, p) in frags {
        if let Ok(ReassOutcome::Complete(d)) = r.input(h, p, now, m) {
            out.push(d);
        }
    }
    out
}

#[test]
fn reass_every_order() {
    let mut rng = Rng(11);
    let base = hdr(A, ME, IPPROTO_UDP);
    for size in [9usize, 16, 17, 100, 1480, 3000, 8000, 65515] {
        let payload = rng.bytes(size);
        let whole = datagram(&base, &payload);
        for step in [8usize, 64, 1480] {
            let frags = cut(&base, &payload, step);
            if frags.len() < 2 || frags.len() > 256 {
                continue;
            }
            let mut orders = vec![frags.clone(), frags.iter().rev().cloned().collect::<Vec<_>>()];
            for _ in 0..3 {
                let mut f = frags.clone();
                rng.shuffle(&mut f);
                orders.push(f);
            }
            for f in orders {
                let m = IpMib::new();
                let mut r = Reassembler::default();
                let out = feed(&mut r, &f, 0, &m);
                assert_eq!(out, vec![whole.clone()], "size {size} step {step}");
                assert_eq!(r.bytes_held(), 0);
                assert_eq!(r.in_progress(), 0);
                assert_eq!(get(&m, "ipReasmReqds"), f.len() as u64);
                assert_eq!(get(&m, "ipReasmOKs"), 1);
                assert_eq!(get(&m, "ipReasmFails"), 0);
            }
        }
    }
}

#[test]
fn reass_header_is_first_fragments_fixed() {
    let mut base = hdr(A, ME, IPPROTO_UDP);
    base.options = Ipv4Options::new(&[0x94, 4, 0, 0, 0x07, 3, 4, 0]).unwrap();
    base.ttl = 3;
    let payload: Vec<u8> = (0..100u8).collect();
    let mut frags = cut(&base, &payload, 24);
    // Later fragments carry only the copied options and another TTL.
    for f in frags.iter_mut().skip(1) {
        f.0.options = base.options.copied_only();
        f.0.ttl = 9;
    }
    frags.reverse();
    let m = IpMib::new();
    let mut r = Reassembler::default();
    let out = feed(&mut r, &frags, 0, &m);
    assert_eq!(out.len(), 1);
    let (h, p) = Ipv4Header::parse(&out[0], true).unwrap();
    assert!(!h.more_frags && h.frag_offset == 0);
    assert_eq!(h.options, base.options);
    assert_eq!(h.ttl, 3);
    assert_eq!(p, &payload[..]);
    assert_eq!(out[0], datagram(&base, &payload));
}

#[test]
fn reass_duplicates() {
    let mut rng = Rng(12);
    let base = hdr(A, ME, IPPROTO_TCP);
    let payload = rng.bytes(1000);
    let frags = cut(&base, &payload, 96);
    let mut f: Vec<_> = frags.iter().chain(frags[..frags.len() - 1].iter()).cloned().collect();
    // Keep the last fragment last so every duplicate arrives before completion.
    let last = frags.last().unwrap().clone();
    f.retain(|x| x != &last);
    rng.shuffle(&mut f);
    f.push(last);
    let m = IpMib::new();
    let mut r = Reassembler::default();
    let mut dups = 0;
    let mut out = Vec::new();
    for (h, p) in &f {
        match r.input(h, p, 0, &m) {
            Ok(ReassOutcome::Complete(d)) => out.push(d),
            Ok(ReassOutcome::Held) => {}
            Err(ReassDrop::Duplicate) => dups += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(out, vec![datagram(&base, &payload)]);
    assert_eq!(dups, frags.len() - 1);
    assert_eq!(get(&m, "ipReasmDuplicates"), dups as u64);
    assert_eq!(get(&m, "ipReasmOKs"), 1);
    assert_eq!(r.bytes_held(), 0);
}

#[test]
fn reass_partial_overlap_same_bytes_kept() {
    let base = hdr(A, ME, IPPROTO_UDP);
    let payload: Vec<u8> = (0..64u8).collect();
    let m = IpMib::new();
    let mut r = Reassembler::default();
    let (h, p) = frag(&base, 0, true, &payload[..24]);
    assert_eq!(r.input(&h, &p, 0, &m), Ok(ReassOutcome::Held));
    let (h, p) = frag(&base, 16, true, &payload[16..40]);
    assert_eq!(r.input(&h, &p, 0, &m), Ok(ReassOutcome::Held));
    assert_eq!(get(&m, "ipReasmPartDups"), 1);
    // A fragment spanning a hole with held bytes on both sides.
    let (h, p) = frag(&base, 48, true, &payload[48..56]);
    assert_eq!(r.input(&h, &p, 0, &m), Ok(ReassOutcome::Held));
    let (h, p) = frag(&base, 32, false, &payload[32..64]);
    assert_eq!(r.input(&h, &p, 0, &m), Ok(ReassOutcome::Complete(datagram(&base, &payload))));
    assert_eq!(get(&m, "ipReasmPartDups"), 2);
    assert_eq!(get(&m, "ipReasmDuplicates"), 0);
    assert_eq!(r.bytes_held(), 0);
}

#[test]
fn reass_overlap_different_bytes_drops_datagram() {
    let base = hdr(A, ME, IPPROTO_UDP);
    let payload = [0xaa; 64];
    for (first, second) in [((0, 24), (16, 16)), ((16, 16), (0, 24)), ((8, 8), (0, 32)), ((0, 32), (8, 8))] {
        let m = IpMib::new();
        let mut r = Reassembler::default();
        let (h, p) = frag(&base, first.0, true, &payload[first.0..first.0 + first.1]);
        assert_eq!(r.input(&h, &p, 0, &m), Ok(ReassOutcome::Held));
        let mut evil = payload[second.0..second.0 + second.1].to_vec();
        // Differ in one byte of the overlap only.
        let k = first.0.max(second.0) - second.0;
        evil[k] ^= 0xff;
        let (h, p) = frag(&base, second.0, true, &evil);
        assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::Conflict), "{first:?} {second:?}");
        assert_eq!(get(&m, "ipReasmFails"), 1);
        assert_eq!(r.in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
    }
}

#[test]
fn reass_last_fragment_conflicts() {
    let base = hdr(A, ME, IPPROTO_UDP);
    let d = [1u8; 64];
    let cases: Vec<Vec<(usize, bool, usize)>> = vec![
        vec![(32, false, 8), (32, false, 16)], // two different ends
        vec![(32, false, 8), (40, true, 8)],   // data past the known end
        vec![(40, true, 8), (16, false, 8)],   // end before data held
    ];
    for c in cases {
        let m = IpMib::new();
        let mut r = Reassembler::default();
        let mut res = Vec::new();
        for (off, mf, len) in c {
            let (h, p) = frag(&base, off, mf, &d[..len]);
            res.push(r.input(&h, &p, 0, &m));
        }
        assert_eq!(res.last().unwrap(), &Err(ReassDrop::Conflict));
        assert_eq!(r.bytes_held(), 0);
        assert_eq!(get(&m, "ipReasmFails"), 1);
    }
}

#[test]
fn reass_bad_fragments() {
    let base = hdr(A, ME, IPPROTO_UDP);
    let m = IpMib::new();
    let mut r = Reassembler::default();
    let (h, p) = frag(&base, 0, true, &[0; 4]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::TinyFirst));
    let (h, p) = frag(&base, 0, true, &[]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::TinyFirst));
    let (h, p) = frag(&base, 8, true, &[0; 12]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::BadLength));
    let (h, p) = frag(&base, 8, true, &[]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::BadLength));
    // Past 64 KiB.
    let (h, p) = frag(&base, 65528, false, &[0; 16]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::TooLong));
    let (h, p) = frag(&base, 65512, false, &[0; 8]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::TooLong));
    // A held train is dropped when a fragment runs past the limit.
    let (h, p) = frag(&base, 0, true, &[0; 8]);
    assert_eq!(r.input(&h, &p, 0, &m), Ok(ReassOutcome::Held));
    let (h, p) = frag(&base, 65520, true, &[0; 16]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::TooLong));
    assert_eq!(r.in_progress(), 0);
    // Exactly the largest datagram is fine: 20 + 65515.
    let (h, p) = frag(&base, 65512, false, &[0; 3]);
    assert_eq!(r.input(&h, &p, 0, &m), Ok(ReassOutcome::Held));
    assert_eq!(get(&m, "ipReasmFails"), 7);
    assert_eq!(get(&m, "ipReasmReqds"), 9);
    // Not a fragment.
    let (h, p) = frag(&base, 0, false, &[0; 30]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::NotAFragment));
    assert_eq!(get(&m, "ipReasmReqds"), 9);
}

#[test]
fn reass_timeout() {
    let base = hdr(A, ME, IPPROTO_UDP);
    let m = IpMib::new();
    let mut r = Reassembler::default();
    let (h, p) = frag(&base, 0, true, &[5; 16]);
    r.input(&h, &p, 1000, &m).unwrap();
    let mut b2 = base;
    b2.ident = 7;
    let (h2, p2) = frag(&b2, 16, false, &[6; 16]);
    r.input(&h2, &p2, 2000, &m).unwrap();
    assert!(r.expire(60_999, &m).is_empty());
    let e = r.expire(61_000, &m);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key, ReassKey::of(&h));
    let q = e[0].quote.clone().unwrap();
    assert_eq!(q.len(), 28);
    let (qh, qp) = Ipv4Header::parse_quoted(&q).unwrap();
    assert!(qh.more_frags);
    assert_eq!(qp, &[5; 8]);
    assert_eq!(get(&m, "ipReasmFails"), 1);
    // The second (no first fragment: no quote) expires on the next input.
    let mut b3 = base;
    b3.ident = 8;
    let (h3, p3) = frag(&b3, 0, true, &[1; 8]);
    r.input(&h3, &p3, 62_000, &m).unwrap();
    assert_eq!(r.in_progress(), 1);
    assert_eq!(get(&m, "ipReasmFails"), 2);
    // The next expire hands out the one that timed out inside input (no
    // first fragment: no quote), then the one timing out now.
    let e = r.expire(u64::MAX, &m);
    assert_eq!(e.len(), 2);
    assert_eq!((e[0].key, e[0].quote.is_none()), (ReassKey::of(&h2), true));
    assert_eq!(e[1].key, ReassKey::of(&h3));
    assert!(r.expire(u64::MAX, &m).is_empty(), "handed out once");
    assert_eq!(r.bytes_held(), 0);
    assert_eq!(get(&m, "ipReasmTimeout"), 60);
    // A fragment of the timed-out datagram starts a new one.
    let (h4, p4) = frag(&base, 16, false, &[5; 16]);
    assert_eq!(r.input(&h4, &p4, 70_000, &m), Ok(ReassOutcome::Held));
    let c = ReassConfig { timeout_ms: 30_000, ..ReassConfig::default() };
    let mut r = Reassembler::new(c);
    r.input(&h, &p, 0, &m).unwrap();
    assert_eq!(r.expire(30_000, &m).len(), 1);
    assert_eq!(get(&m, "ipReasmTimeout"), 30);
}

#[test]
fn reass_caps() {
    let cfg = ReassConfig { per_source_cap: 4096, total_cap: 8192, max_datagrams: 4, per_source_datagrams: 2, ..ReassConfig::default() };
    let m = IpMib::new();
    let mut r = Reassembler::new(cfg);
    let mut b = hdr(A, ME, IPPROTO_UDP);
    // One source: 3000 then a second datagram of 2000 overflows 4096.
    b.ident = 1;
    let (h, p) = frag(&b, 2992, false, &[1; 8]);
    r.input(&h, &p, 0, &m).unwrap();
    assert_eq!(r.bytes_held(), 3000);
    b.ident = 2;
    let (h, p) = frag(&b, 1992, false, &[1; 8]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::OverCap));
    assert_eq!(r.in_progress(), 1);
    // Growing the held train past the cap drops it too.
    b.ident = 1;
    let (h, p) = frag(&b, 0, true, &[1; 8]);
    r.input(&h, &p, 0, &m).unwrap();
    assert_eq!(r.bytes_held(), 3000);
    let mut b9 = b;
    b9.ident = 9;
    let (h, p) = frag(&b9, 4088, false, &[1; 16]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::OverCap));
    assert_eq!(r.in_progress(), 1);
    // Other sources still get room, up to the total.
    let mut srcs = Vec::new();
    for i in 0..3u8 {
        let mut o = hdr(Ipv4Addr::new(10, 0, 0, i + 1), ME, IPPROTO_UDP);
        o.ident = 5;
        srcs.push(o);
    }
    let (h, p) = frag(&srcs[0], 2992, false, &[1; 8]);
    r.input(&h, &p, 0, &m).unwrap();
    let (h, p) = frag(&srcs[1], 2992, false, &[1; 8]);
    assert_eq!(r.input(&h, &p, 0, &m), Err(ReassDrop::OverCap), "total cap 8192");
    let (h, p) = frag(&srcs[1], 1992, false, &[1; 8]);
    r.input(&h, &p, 0, &m).unwrap();
    assert_eq!(r.bytes_held(), 8000);
    // Datagram count cap: full, so a new train pushes out the oldest (A's).
    let (h, p) = frag(&srcs[2], 0, true, &[1; 8]);
    r.input(&h, &p, 1, &m).unwrap();
    assert_eq!(r.in_progress(), 4);
    let mut o = srcs[2];
    o.ident = 6;
    let (h, p) = frag(&o, 0, true, &[1; 8]);
    assert_eq!(r.input(&h, &p, 2, &m), Ok(ReassOutcome::Held));
    assert_eq!(r.in_progress(), 4);
    assert_eq!(r.bytes_held(), 8000 - 3000 + 16, "A's 3000 bytes went with its train");
    // The per-source share: a third train from srcs[2] is refused.
    o.ident = 7;
    let (h, p) = frag(&o, 0, true, &[1; 8]);
    assert_eq!(r.input(&h, &p, 3, &m), Err(ReassDrop::TooManyDatagrams));
    assert_eq!(get(&m, "ipReasmFails"), 5);
    assert_eq!(r.expire(u64::MAX, &m).len(), 4);
    assert_eq!(r.bytes_held(), 0);
}

#[test]
fn reass_default_datagram_cap_is_64_and_a_new_train_pushes_out_the_oldest() {
    let m = IpMib::new();
    let mut r = Reassembler::default();
    for i in 0..65u16 {
        let mut b = hdr(Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8), ME, IPPROTO_UDP);
        b.ident = i;
        let (h, p) = frag(&b, 0, true, &[0; 8]);
        // Train i starts at i ms: train 0 is the oldest.
        assert_eq!(r.input(&h, &p, u64::from(i), &m), Ok(ReassOutcome::Held), "train {i}");
    }
    assert_eq!(r.config().max_datagrams, 64);
    assert_eq!(r.in_progress(), 64);
    assert_eq!(m.ip_reasm_fails.load(core::sync::atomic::Ordering::Relaxed), 1, "the oldest gave way");
    // Train 0 is gone: its last fragment starts nothing complete.
    let mut b = hdr(Ipv4Addr::new(10, 1, 0, 0), ME, IPPROTO_UDP);
    b.ident = 0;
    let (h, p) = frag(&b, 8, false, &[0; 8]);
    assert_eq!(r.input(&h, &p, 100, &m), Ok(ReassOutcome::Held), "a new train, missing its start");
    // Train 1 is still whole when its last fragment comes.
    let mut b = hdr(Ipv4Addr::new(10, 1, 0, 2), ME, IPPROTO_UDP);
    b.ident = 2;
    let (h, p) = frag(&b, 8, false, &[0; 8]);
    assert!(matches!(r.input(&h, &p, 100, &m), Ok(ReassOutcome::Complete(_))));
}

#[test]
fn one_source_cannot_hold_more_than_its_share_of_trains() {
    let m = IpMib::new();
    let mut r = Reassembler::default();
    let share = r.config().per_source_datagrams;
    assert_eq!(share, 16);
    for i in 0..share as u16 + 5 {
        let mut b = hdr(A, ME, IPPROTO_UDP);
        b.ident = i;
        let (h, p) = frag(&b, 0, true, &[0; 8]);
        let res = r.input(&h, &p, 0, &m);
        if usize::from(i) < share {
            assert_eq!(res, Ok(ReassOutcome::Held));
        } else {
            assert_eq!(res, Err(ReassDrop::TooManyDatagrams));
        }
    }
    // Another source still gets a train.
    let (h, p) = frag(&hdr(Ipv4Addr::new(10, 9, 9, 9), ME, IPPROTO_UDP), 0, true, &[0; 8]);
    assert_eq!(r.input(&h, &p, 0, &m), Ok(ReassOutcome::Held));
    assert_eq!(r.in_progress(), share + 1);
}

#[test]
fn reass_hole_cap() {
    let cfg = ReassConfig { max_holes: 4, ..ReassConfig::default() };
    let m = IpMib::new();
    let mut r = Reassembler::new(cfg);
    let b = hdr(A, ME, IPPROTO_UDP);
    let mut last = Ok(ReassOutcome::Held);
    for k in 0..6 {
        let (h, p) = frag(&b, 16 * k + 8, true, &[0; 8]);
        last = r.input(&h, &p, 0, &m);
        if last.is_err() {
            break;
        }
    }
    assert_eq!(last, Err(ReassDrop::TooManyHoles));
    assert_eq!(r.bytes_held(), 0);
}

#[test]
fn reass_random_fuzz_bounded_and_drains_to_zero() {
    let cfg = ReassConfig { per_source_cap: 20_000, total_cap: 50_000, max_datagrams: 8, ..ReassConfig::default() };
    let m = IpMib::new();
    let mut r = Reassembler::new(cfg);
    let mut rng = Rng(0x5eed);
    let mut now = 0u64;
    for _ in 0..30_000 {
        now += rng.below(50) as u64;
        let mut b = hdr(Ipv4Addr::new(10, 0, 0, rng.below(4) as u8), ME, [1, 6, 17][rng.below(3)]);
        b.ident = rng.below(6) as u16;
        let off = rng.below(8192 / 8) * 8 * if rng.below(10) == 0 { 8 } else { 1 };
        let len = match rng.below(4) {
            0 => rng.below(30),
            1 => 8 * rng.below(20),
            _ => 8 * (1 + rng.below(3)),
        };
        let data = if rng.below(2) == 0 { vec![0x11; len] } else { rng.bytes(len) };
        let (h, p) = frag(&b, off.min(65528), rng.below(3) != 0, &data);
        if let Ok(ReassOutcome::Complete(d)) = r.input(&h, &p, now, &m) {
            let (rh, _) = Ipv4Header::parse(&d, true).unwrap();
            assert!(!rh.is_fragment());
        }
        assert!(r.bytes_held() <= 50_000);
        assert!(r.in_progress() <= 8);
    }
    r.expire(now + 60_000, &m);
    assert_eq!(r.bytes_held(), 0);
    assert_eq!(r.in_progress(), 0);
    assert!(get(&m, "ipReasmReqds") > 0);
}

// ---------------------------------------------------------------- fragmentation

fn check_fragments(frags: &[Vec<u8>], mtu: usize, orig: &Ipv4Header) {
    for (i, f) in frags.iter().enumerate() {
        assert!(f.len() <= mtu);
        let (h, p) = Ipv4Header::parse(f, true).expect("fragment parses with a good checksum");
        let last = i + 1 == frags.len();
        assert_eq!(h.more_frags, !last || orig.more_frags);
        if !last {
            assert_eq!(p.len() % 8, 0);
        }
        if i == 0 {
            assert_eq!(h.options, orig.options);
        } else {
            assert_eq!(h.options, orig.options.copied_only());
        }
        assert_eq!((h.ident, h.src, h.dst, h.protocol), (orig.ident, orig.src, orig.dst, orig.protocol));
    }
}

#[test]
fn frag_then_reass_round_trip() {
    let mut rng = Rng(0xf7a9);
    let mut base = hdr(A, ME, IPPROTO_UDP);
    let big = rng.bytes(8000);
    let m = IpMib::new();
    let mut r = Reassembler::default();
    let mut expect_oks = 0;
    let mut creates = 0;
    for mtu in [576usize, 1500] {
        for size in 1..=8000usize {
            base.ident = size as u16;
            base.options = if size % 3 == 0 {
                Ipv4Options::new(&[0x94, 4, 0, 0, 0x07, 3, 4, IPOPT_NOP]).unwrap()
            } else {
                Ipv4Options::empty()
            };
            let whole = datagram(&base, &big[..size]);
            let mut frags = fragment(&whole, mtu, &m).unwrap();
            if whole.len() <= mtu {
                assert_eq!(frags, vec![whole.clone()]);
                continue;
            }
            expect_oks += 1;
            creates += frags.len() as u64;
            check_fragments(&frags, mtu, &base);
            if size % 7 == 0 {
                rng.shuffle(&mut frags);
            } else if size % 7 == 1 {
                frags.reverse();
            }
            let mut out = Vec::new();
            for f in &frags {
                let (h, p) = Ipv4Header::parse(f, true).unwrap();
                if let ReassOutcome::Complete(d) = r.input(&h, p, 0, &m).unwrap() {
                    out.push(d);
                }
            }
            assert_eq!(out, vec![whole], "mtu {mtu} size {size}");
            assert_eq!(r.bytes_held(), 0);
        }
    }
    assert_eq!(get(&m, "ipFragOKs"), expect_oks);
    assert_eq!(get(&m, "ipFragCreates"), creates);
    assert_eq!(get(&m, "ipReasmOKs"), expect_oks);
    assert_eq!(get(&m, "ipFragFails"), 0);
}

#[test]
fn frag_refusals() {
    let m = IpMib::new();
    let mut b = hdr(A, ME, IPPROTO_TCP);
    b.dont_frag = true;
    let d = datagram(&b, &[0; 1500]);
    assert_eq!(fragment(&d, 1500, &m), Err(FragError::DontFragment { mtu: 1500 }));
    assert_eq!(get(&m, "ipFragFails"), 1);
    // DF but fits: sent as is.
    assert_eq!(fragment(&d, 1520, &m).unwrap(), vec![d.clone()]);
    b.dont_frag = false;
    let d = datagram(&b, &[0; 100]);
    assert_eq!(fragment(&d, 27, &m), Err(FragError::MtuTooSmall));
    assert!(fragment(&d, 28, &m).is_ok());
    assert_eq!(fragment(&d[..10], 28, &m), Err(FragError::BadDatagram(Ipv4Error::Truncated)));
    assert_eq!(get(&m, "ipFragFails"), 3);
    // Padding after the datagram is not sent.
    let mut padded = datagram(&b, &[1; 10]);
    let plain = padded.clone();
    padded.extend_from_slice(&[0; 20]);
    assert_eq!(fragment(&padded, 1500, &m).unwrap(), vec![plain]);
    // Minimum MTU with a full 40-byte option header: 68 carries 60 + 8.
    b.options = Ipv4Options::new(&[0x94, 38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, IPOPT_NOP, IPOPT_NOP]).unwrap();
    let d = datagram(&b, &[3; 200]);
    let f = fragment(&d, 68, &m).unwrap();
    check_fragments(&f, 68, &b);
    assert_eq!(f.len(), 25);
}

#[test]
fn frag_of_a_fragment_keeps_offset_and_mf() {
    let m = IpMib::new();
    let mut b = hdr(A, ME, IPPROTO_UDP);
    b.frag_offset = 1480;
    b.more_frags = true;
    let payload: Vec<u8> = (0..1480u32).map(|x| x as u8).collect();
    let d = datagram(&b, &payload);
    let f = fragment(&d, 576, &m).unwrap();
    check_fragments(&f, 576, &b);
    let (h0, _) = Ipv4Header::parse(&f[0], true).unwrap();
    assert_eq!(h0.frag_offset, 1480);
    let (hl, _) = Ipv4Header::parse(f.last().unwrap(), true).unwrap();
    assert!(hl.more_frags);
}

#[test]
fn a_source_route_with_hops_left_is_not_forwarded_by_a_host() {
    let m = IpMib::new();
    let route = |ptr: u8, len: u8| {
        let mut raw = vec![IPOPT_SSRR, len, ptr];
        raw.resize(usize::from(len), 10);
        let mut h = hdr(A, ME, IPPROTO_UDP);
        h.options = Ipv4Options::new(&raw).unwrap();
        datagram(&h, &[0; 8])
    };
    // Used up: ours. Hops left, or malformed pointers: dropped, counted.
    assert!(validate(&route(12, 11), &ours, false, &m).is_ok());
    for (ptr, len) in [(4u8, 11u8), (8, 11), (3, 11), (5, 11), (16, 11), (4, 9)] {
        assert_eq!(validate(&route(ptr, len), &ours, false, &m).err(), Some(InputDrop::SourceRouted), "ptr {ptr} len {len}");
    }
    assert_eq!(get(&m, "ipForwProhibits"), 6);
}
