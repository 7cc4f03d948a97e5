//! A FireEngine instance under attack, frame by frame: malformed and
//! misaddressed IPv4, UDP and ARP injected on its link, and what it counts
//! and answers (the host-side twin of the booted `net_fe_attack` test).
//!
//! * UDP: a bad checksum counts in `udpInCksumErrs` (not `udpInErrors`), a
//!   bad length in `udpInErrors`; neither reaches the service.
//! * IP: a bad header checksum in `ipInCksumErrs` only, martians in
//!   `ipInAddrErrors`, unicast for another host in `ipForwProhibits`.
//! * An unknown protocol: `ipInUnknownProtos`, and protocol unreachables
//!   up to the rate limit (the rest `icmpOutDrops`).
//! * ARP: a probe (sender 0.0.0.0) for our address is answered; malformed
//!   packets count in `rxMalformed` and teach the cache nothing.
//! * Packets waiting on a neighbour that never answers are counted in
//!   `ipOutDiscards` when the queue overflows and when the entry is given
//!   up.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arbalest_netstack::fireengine::instance::{FeInstance, FeSystem};
use arbalest_netstack::fireengine::squeue::SqEnv;
use arbalest_netstack::fireengine::wire::arp::{ArpPacket, ARP_REPLY, ARP_REQUEST};
use arbalest_netstack::fireengine::wire::icmp::IcmpMessage;
use arbalest_netstack::fireengine::wire::ipv4::{Ipv4Header, IPPROTO_ICMP, IPPROTO_UDP};
use arbalest_netstack::fireengine::wire::udp::UdpHeader;
use arbalest_netstack::IpStack;
use common::{mac, net, FakeLink};

const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

use common::FakeSqEnv as Env;

/// One FireEngine instance (10.0.0.2/24) and the frames it sent.
struct Rig {
    env: Arc<Env>,
    sys: Arc<FeSystem>,
    link: Arc<FakeLink>,
    inst: Arc<FeInstance>,
    sent: Vec<Vec<u8>>,
    host_mac: [u8; 6],
}

impl Rig {
    fn new() -> Rig {
        let env = Arc::new(Env::default());
        env.now_ns.store(1_000_000_000, Ordering::SeqCst);
        let sys = FeSystem::new(1, env.clone(), 256 << 20);
        let dma = Arc::new(Default::default());
        let link = FakeLink::new(&dma, "net0", mac(2));
        let inst = Arc::new(FeInstance::new(link.clone(), sys.clone(), 2).unwrap());
        inst.add_addr("net0/v4", net("10.0.0.2/24")).unwrap();
        let mut r = Rig { env, sys, link, inst, sent: Vec::new(), host_mac: mac(1) };
        r.run_ms(1000);
        assert_eq!(r.inst.addr_state("net0/v4"), Some("ok"));
        // The host is a known neighbour, as on a live link.
        let req = ArpPacket { op: ARP_REQUEST, sha: r.host_mac, spa: HOST, tha: [0; 6], tpa: GUEST };
        r.inject(&eth([0xff; 6], r.host_mac, 0x0806, &req.emit()));
        r.run_ms(1);
        r.sent.clear();
        r
    }

    fn inject(&mut self, frame: &[u8]) {
        let m = self.link.rx_mblk(frame, 1).expect("rx buffer");
        self.inst.input(m);
        self.settle();
    }

    fn settle(&mut self) {
        loop {
            let Some(sq) = self.env.wakes.lock().unwrap().pop_front() else { break };
            self.sys.worker_drain(sq);
        }
        let mut q = self.link.sent.lock().unwrap();
        for m in q.drain(..) {
            let mut v = vec![0u8; m.total_len()];
            m.copy_to(&mut v);
            self.sent.push(v);
        }
    }

    fn run_ms(&mut self, ms: u64) {
        for _ in 0..ms {
            self.env.now_ns.fetch_add(1_000_000, Ordering::SeqCst);
            self.inst.poll_us(self.env.now_ns() / 1000);
            self.settle();
        }
    }

    fn mib(&self, name: &str) -> u64 {
        self.inst
            .mib()
            .into_iter()
            .flat_map(|(_, c)| c)
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no counter {name}"))
            .1
    }

    fn stat(&self, name: &str) -> u64 {
        self.inst.stats().fields().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no stat {name}")).1
    }

    /// An IPv4 frame from the host to the guest's MAC.
    fn ip_frame(&self, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ident: u16, payload: &[u8]) -> Vec<u8> {
        eth(mac(2), self.host_mac, 0x0800, &ipv4(src, dst, proto, ident, payload))
    }
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ident: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = Ipv4Header::new(src, dst, proto, payload.len() as u16);
    h.ident = ident;
    let mut v = vec![0u8; h.header_len()];
    h.emit(&mut v).unwrap();
    v.extend_from_slice(payload);
    v
}

fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 8 + data.len()];
    d[8..].copy_from_slice(data);
    UdpHeader { src_port: sport, dst_port: dport }.emit(&mut d, src, dst).unwrap();
    d
}

fn echo_request(ident: u16, seq: u16) -> Vec<u8> {
    let msg = IcmpMessage::EchoRequest { ident, seq, data: b"attack" };
    let mut b = vec![0u8; msg.emit_len()];
    msg.emit(&mut b).unwrap();
    b
}

#[test]
fn udp_checksum_errors_count_in_udp_in_cksum_errs_and_length_errors_in_udp_in_errors() {
    let mut r = Rig::new();
    for i in 0..3u16 {
        let mut u = udp(HOST, GUEST, 40000 + i, 9, b"bad checksum");
        u[6] ^= 0x5a;
        let f = r.ip_frame(HOST, GUEST, IPPROTO_UDP, i, &u);
        r.inject(&f);
    }
    assert_eq!((r.mib("udpInCksumErrs"), r.mib("udpInErrors")), (3, 0));
    // Length field below 8, and above what the IP payload holds.
    for len in [4u16, 0, 200] {
        let mut u = udp(HOST, GUEST, 40100, 9, b"bad length");
        u[4..6].copy_from_slice(&len.to_be_bytes());
        let f = r.ip_frame(HOST, GUEST, IPPROTO_UDP, 7, &u);
        r.inject(&f);
    }
    // A datagram too short for a UDP header.
    let f = r.ip_frame(HOST, GUEST, IPPROTO_UDP, 8, &[0, 9, 0, 9]);
    r.inject(&f);
    assert_eq!((r.mib("udpInCksumErrs"), r.mib("udpInErrors")), (3, 4));
    assert_eq!(r.mib("udpInDatagrams"), 0, "nothing reached the discard service");
    assert_eq!(r.mib("ipInDelivers"), 0);
    // A good one does.
    let u = udp(HOST, GUEST, 40200, 9, b"fine");
    let f = r.ip_frame(HOST, GUEST, IPPROTO_UDP, 9, &u);
    r.inject(&f);
    assert_eq!(r.mib("udpInDatagrams"), 1);
    assert!(r.sent.is_empty(), "no answers: {:?}", r.sent);
}

#[test]
fn ip_checksum_martians_and_foreign_unicast_under_their_illumos_names() {
    let mut r = Rig::new();
    let u = udp(HOST, GUEST, 1, 9, b"x");
    let mut f = r.ip_frame(HOST, GUEST, IPPROTO_UDP, 1, &u);
    f[14 + 10] ^= 0xff;
    r.inject(&f);
    assert_eq!((r.mib("ipInCksumErrs"), r.mib("ipInHdrErrors")), (1, 0));
    let other = Ipv4Addr::new(10, 0, 0, 99);
    let f = r.ip_frame(HOST, other, IPPROTO_UDP, 2, &udp(HOST, other, 1, 9, b"x"));
    r.inject(&f);
    r.inject(&f);
    assert_eq!((r.mib("ipForwProhibits"), r.mib("ipInAddrErrors")), (2, 0));
    let lo = Ipv4Addr::new(127, 0, 0, 1);
    for (s, d) in [(HOST, Ipv4Addr::UNSPECIFIED), (lo, GUEST), (HOST, lo), (Ipv4Addr::new(224, 1, 1, 1), GUEST)] {
        let f = r.ip_frame(s, d, IPPROTO_UDP, 3, &udp(s, d, 1, 9, b"x"));
        r.inject(&f);
    }
    assert_eq!((r.mib("ipForwProhibits"), r.mib("ipInAddrErrors")), (2, 4));
    let mut f = r.ip_frame(HOST, GUEST, IPPROTO_UDP, 4, &udp(HOST, GUEST, 1, 9, b"x"));
    f[14] = 0x65;
    r.inject(&f);
    assert_eq!(r.mib("ipInHdrErrors"), 1);
    assert_eq!(r.mib("ipInReceives"), 8);
    assert_eq!(r.mib("udpInDatagrams"), 0);
    assert!(r.sent.is_empty(), "no answers: {:?}", r.sent);
}

#[test]
fn unknown_protocols_draw_rate_limited_protocol_unreachables() {
    let mut r = Rig::new();
    for i in 0..15u16 {
        let f = r.ip_frame(HOST, GUEST, 253, i, b"who speaks 253?");
        r.inject(&f);
    }
    assert_eq!(r.mib("ipInUnknownProtos"), 15);
    let unreach: Vec<&Vec<u8>> = r.sent.iter().filter(|f| f[12..14] == [8, 0] && f[14 + 9] == IPPROTO_ICMP && f[34] == 3 && f[35] == 2).collect();
    assert_eq!(unreach.len(), 10, "the burst of _icmp_err_burst");
    assert_eq!((r.mib("icmpOutDestUnreachs"), r.mib("icmpOutDrops")), (10, 5));
    // One token back per 100 ms.
    r.run_ms(250);
    for i in 0..5u16 {
        let f = r.ip_frame(HOST, GUEST, 253, 100 + i, b"again");
        r.inject(&f);
    }
    assert_eq!((r.mib("icmpOutDestUnreachs"), r.mib("icmpOutDrops")), (12, 8));
}

fn arp_frame(r: &Rig, dst: [u8; 6], bytes: &[u8]) -> Vec<u8> {
    eth(dst, r.host_mac, 0x0806, bytes)
}

#[test]
fn an_arp_probe_for_our_address_is_answered_and_teaches_nothing() {
    let mut r = Rig::new();
    let prober = [0x02, 0xaa, 0, 0, 0, 7];
    let probe = ArpPacket { op: ARP_REQUEST, sha: prober, spa: Ipv4Addr::UNSPECIFIED, tha: [0; 6], tpa: GUEST };
    let f = arp_frame(&r, [0xff; 6], &probe.emit());
    r.inject(&f);
    assert_eq!(r.sent.len(), 1, "one answer: {:?}", r.sent);
    let reply = &r.sent[0];
    assert_eq!(reply[..6], prober, "to the prober");
    assert_eq!(reply[12..14], [8, 6]);
    let p = ArpPacket::parse(&reply[14..]).unwrap();
    assert_eq!(p, ArpPacket { op: ARP_REPLY, sha: mac(2), spa: GUEST, tha: prober, tpa: Ipv4Addr::UNSPECIFIED });
    assert_eq!(r.inst.addr_state("net0/v4"), Some("ok"), "a probe is no conflict");
    // A probe for an address not ours: silence.
    r.sent.clear();
    let probe = ArpPacket { tpa: Ipv4Addr::new(10, 0, 0, 50), ..probe };
    let f = arp_frame(&r, [0xff; 6], &probe.emit());
    r.inject(&f);
    assert!(r.sent.is_empty());
    let n: Vec<_> = r.inst.neighbours().iter().map(|n| n.ip).collect();
    assert_eq!(n, vec![HOST], "only the host is known");
}

#[test]
fn malformed_and_foreign_arp_is_dropped_counted_and_learns_nothing() {
    let mut r = Rig::new();
    let bogus = Ipv4Addr::new(10, 0, 0, 66);
    let good = ArpPacket { op: ARP_REQUEST, sha: [0x02, 0xbb, 0, 0, 0, 1], spa: bogus, tha: [0; 6], tpa: GUEST }.emit();
    let mut cases = Vec::new();
    cases.push(good[..20].to_vec());
    for (i, v) in [(4usize, 8u8), (5, 16), (7, 9), (1, 6)] {
        let mut b = good;
        b[i] = v;
        cases.push(b.to_vec());
    }
    for c in &cases {
        let f = arp_frame(&r, [0xff; 6], c);
        r.inject(&f);
    }
    assert_eq!(r.stat("rxMalformed"), cases.len() as u64);
    // Well formed but not for us: a request for another address, an
    // unsolicited reply, a sender with a multicast MAC.
    let other = ArpPacket { op: ARP_REQUEST, sha: [0x02, 0xbb, 0, 0, 0, 2], spa: Ipv4Addr::new(10, 0, 0, 67), tha: [0; 6], tpa: Ipv4Addr::new(10, 0, 0, 200) };
    let reply = ArpPacket { op: ARP_REPLY, sha: [0x02, 0xbb, 0, 0, 0, 3], spa: Ipv4Addr::new(10, 0, 0, 68), tha: mac(2), tpa: GUEST };
    let mcast = ArpPacket { op: ARP_REQUEST, sha: [0x03, 0xbb, 0, 0, 0, 4], spa: Ipv4Addr::new(10, 0, 0, 69), tha: [0; 6], tpa: GUEST };
    for p in [other, reply, mcast] {
        let f = arp_frame(&r, [0xff; 6], &p.emit());
        r.inject(&f);
    }
    assert!(r.sent.is_empty(), "nothing answered: {:?}", r.sent);
    let n: Vec<_> = r.inst.neighbours().iter().map(|n| n.ip).collect();
    assert_eq!(n, vec![HOST], "no entry for a bogus sender");
}

#[test]
fn packets_waiting_on_a_neighbour_that_never_answers_count_as_output_discards() {
    let mut r = Rig::new();
    let ghost = Ipv4Addr::new(10, 0, 0, 77);
    // Ten echo requests from an on-link address nobody answers ARP for:
    // the replies wait (at most 8), the two oldest are pushed out.
    for seq in 0..10u16 {
        let f = r.ip_frame(ghost, GUEST, IPPROTO_ICMP, seq, &echo_request(0x77, seq));
        r.inject(&f);
    }
    assert_eq!(r.mib("icmpOutEchoReps"), 10);
    assert_eq!(r.mib("ipOutDiscards"), 2, "queue overflow");
    let n = r.inst.neighbours();
    assert!(n.iter().any(|e| e.ip == ghost && e.unresolved), "{n:?}");
    // Three requests a second apart, then the entry and its 8 packets go.
    r.run_ms(3500);
    assert_eq!(r.mib("ipOutDiscards"), 10, "the entry given up");
    let reqs = r.sent.iter().filter(|f| f[12..14] == [8, 6] && ArpPacket::parse(&f[14..]).is_ok_and(|p| p.op == ARP_REQUEST && p.tpa == ghost)).count();
    assert_eq!(reqs, 3);
    assert!(!r.inst.neighbours().iter().any(|e| e.ip == ghost), "gone from arp -a");
    assert!(!r.sent.iter().any(|f| f[12..14] == [8, 0]), "no echo reply ever left");
}

#[test]
fn a_train_that_never_completes_times_out_with_a_time_exceeded_for_its_first_fragment() {
    let mut r = Rig::new();
    let data = udp(HOST, GUEST, 5555, 9, &[0x33; 40]);
    // Two trains: one has its first fragment (a time exceeded quotes it),
    // the other only a later one (nothing to quote: silence, as illumos).
    for (ident, off, payload) in [(0x100u16, 0usize, &data[..24]), (0x101, 24, &data[24..])] {
        let mut h = Ipv4Header::new(HOST, GUEST, IPPROTO_UDP, payload.len() as u16);
        h.ident = ident;
        h.more_frags = true;
        h.frag_offset = off as u16;
        let mut v = vec![0u8; 20];
        h.emit(&mut v).unwrap();
        v.extend_from_slice(payload);
        let f = eth(mac(2), r.host_mac, 0x0800, &v);
        r.inject(&f);
    }
    assert_eq!(r.mib("ipReasmReqds"), 2);
    assert_eq!(r.inst.reass_bytes(), 24 + 48, "held up to the furthest end");
    r.run_ms(59_000);
    assert_eq!(r.mib("ipReasmFails"), 0);
    assert!(r.sent.is_empty());
    r.run_ms(1_200);
    assert_eq!(r.mib("ipReasmFails"), 2);
    assert_eq!(r.inst.reass_bytes(), 0);
    assert_eq!(r.mib("icmpOutTimeExcds"), 1);
    // (The host's entry went stale meanwhile: a unicast ARP confirms it.)
    let ip: Vec<&Vec<u8>> = r.sent.iter().filter(|f| f[12..14] == [8, 0]).collect();
    assert_eq!(ip.len(), 1, "{:?}", r.sent);
    let (h, icmp) = Ipv4Header::parse(&ip[0][14..], true).unwrap();
    assert_eq!((h.src, h.dst, h.protocol), (GUEST, HOST, IPPROTO_ICMP));
    assert_eq!((icmp[0], icmp[1]), (11, 1), "time exceeded, reassembly");
    let (qh, qp) = Ipv4Header::parse_quoted(&icmp[8..]).unwrap();
    assert_eq!((qh.ident, qh.frag_offset, qh.more_frags), (0x100, 0, true));
    assert_eq!(qp, &data[..8], "the first fragment's UDP header");
}
