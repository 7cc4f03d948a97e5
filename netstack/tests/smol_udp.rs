//! UDP sockets of local users on the smoltcp instance (`IpStack::udp_*`),
//! and the fragmentation and reassembly they rely on for large datagrams:
//! binding rules and the socket bound, clean errors, the echo service
//! across two instances with mixed and fragmented sizes, several large
//! datagrams leaving in one poll, reassembly of out-of-order fragments,
//! bad checksums of reassembled datagrams, time-outs.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use arbalest_netstack::fireengine::ip::frag::fragment;
use arbalest_netstack::fireengine::ip::mib::IpMib;
use arbalest_netstack::fireengine::ip::reass::{ReassOutcome, Reassembler};
use arbalest_netstack::fireengine::wire::ipv4::Ipv4Header;
use arbalest_netstack::smol::udp_users::{MAX_PAYLOAD, MAX_USER_UDP, QUEUE_PACKETS};
use arbalest_netstack::stack::Proto;
use arbalest_netstack::{IpStack, NetError, UdpId};
use common::*;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};

/// A (net0, 10.0.0.1) and B (net1, 10.0.0.2).
fn lan() -> Net {
    let mut n = Net::new();
    n.add_instance("net0", 1, "10.0.0.1/24");
    n.add_instance("net1", 2, "10.0.0.2/24");
    n
}

fn sa(a: &str, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip(a), port)
}

/// The value of IPv4 MIB counter `name` of instance `i`.
fn ip_mib(n: &Net, i: usize, name: &str) -> u64 {
    let mib = n.inst(i).mib();
    let (_, v) = mib.iter().find(|(s, _)| *s == "IPv4").expect("an IPv4 section");
    v.iter().find(|(k, _)| *k == name).unwrap_or_else(|| panic!("no {name} in {v:?}")).1
}

/// Waits up to `ms` for a datagram on `id` of instance `i`.
fn recv(n: &mut Net, i: usize, id: UdpId, ms: u64) -> Option<(SocketAddrV4, Vec<u8>)> {
    let inst = n.inst(i);
    let mut buf = vec![0u8; 70_000];
    let mut got = None;
    n.run_until(ms, |_| {
        got = inst.udp_recv_from(id, &mut buf).unwrap().map(|(from, len)| (from, buf[..len].to_vec()));
        got.is_some()
    });
    got
}

#[test]
fn binding_rules_the_socket_bound_and_close() {
    let n = lan();
    let a = n.inst(0);
    assert_eq!(a.udp_open(7), Err(NetError::AddrInUse), "the echo service holds 7");
    let s = a.udp_open(5000).unwrap();
    assert_eq!(a.udp_open(5000), Err(NetError::AddrInUse));
    let mut anon: Vec<UdpId> = (0..MAX_USER_UDP - 1).map(|_| a.udp_open(0).unwrap()).collect();
    assert_eq!(a.udp_open(0), Err(NetError::TooManyConnections), "at most {MAX_USER_UDP} sockets");
    let eps = a.udp_endpoints();
    let mut ports: Vec<u16> = eps.iter().map(|e| e.local.port()).collect();
    assert_eq!(ports.len(), MAX_USER_UDP + 1, "{eps:?}");
    assert!(eps.iter().all(|e| e.local.ip().is_unspecified() && e.remote.is_none() && e.state() == "Idle"));
    assert!(ports.contains(&7) && ports.contains(&5000));
    ports.retain(|p| *p != 7 && *p != 5000);
    assert!(ports.iter().all(|p| *p >= 32768), "anonymous ports from 32768: {ports:?}");
    ports.dedup();
    assert_eq!(ports.len(), MAX_USER_UDP - 1, "distinct");
    // Closing frees the slot, the port and the socket.
    a.udp_close(s);
    assert_eq!(a.udp_endpoints().len(), MAX_USER_UDP);
    let again = a.udp_open(5000).unwrap();
    assert_eq!(a.udp_send_to(s, sa("10.0.0.2", 7), b"x"), Err(NetError::NotFound), "a closed id is gone");
    a.udp_close(s);
    a.udp_close(UdpId(999_999));
    anon.push(again);
    for id in anon {
        a.udp_close(id);
    }
    assert_eq!(a.udp_endpoints().len(), 1, "only the echo service is left");
}

#[test]
fn sending_errors_are_clean() {
    let mut n = lan();
    let a = n.inst(0);
    let s = a.udp_open(0).unwrap();
    for (to, want) in [
        (sa("0.0.0.0", 7), NetError::InvalidAddress),
        (sa("255.255.255.255", 7), NetError::InvalidAddress),
        (sa("224.0.0.1", 7), NetError::InvalidAddress),
        (sa("10.0.0.255", 7), NetError::InvalidAddress),
        (sa("10.0.0.2", 0), NetError::InvalidAddress),
        (sa("10.0.0.1", 7), NetError::Unreachable),
        (sa("192.168.9.9", 7), NetError::Unreachable),
    ] {
        assert_eq!(a.udp_send_to(s, to, b"x"), Err(want), "to {to}");
    }
    assert_eq!(a.udp_send_to(s, sa("10.0.0.2", 7), &vec![0u8; MAX_PAYLOAD + 1]), Err(NetError::MessageTooLong));
    assert_eq!(a.udp_send_to(UdpId(12345), sa("10.0.0.2", 7), b"x"), Err(NetError::NotFound));
    let mut buf = [0u8; 8];
    assert_eq!(a.udp_recv_from(UdpId(12345), &mut buf), Err(NetError::NotFound));
    assert_eq!(a.udp_recv_from(s, &mut buf), Ok(None));
    // Nothing left the instance.
    n.run_ms(20);
    assert_eq!(a.stats().tx_packets, 0);
    // A full send queue: NoBuffers, never a panic.
    let mut queued = 0;
    let err = loop {
        match a.udp_send_to(s, sa("10.0.0.2", 9), &[1u8; 1000]) {
            Ok(()) => queued += 1,
            Err(e) => break e,
        }
        assert!(queued <= QUEUE_PACKETS, "the send queue is bounded");
    };
    assert_eq!(err, NetError::NoBuffers);
    assert!(queued > 0);
    a.udp_close(s);
}

#[test]
fn echo_across_instances_with_mixed_and_fragmented_sizes() {
    let mut n = lan();
    n.rx_segs = 2;
    let (a, b) = (n.inst(0), n.inst(1));
    let s = a.udp_open(0).unwrap();
    let port = a.udp_endpoints().into_iter().find(|e| e.local.port() != 7).unwrap().local.port();
    let local = sa("10.0.0.1", port);
    let sizes = [0usize, 1, 7, 64, 512, 1471, 1472, 1473, 2960, 4000, 8000, MAX_PAYLOAD];
    for (i, &size) in sizes.iter().enumerate() {
        let data = pattern(size, i as u32 + 1);
        a.udp_send_to(s, sa("10.0.0.2", 7), &data).unwrap();
        let (from, got) = recv(&mut n, 0, s, 500).unwrap_or_else(|| panic!("{size} bytes not echoed: {}", n.dump()));
        assert_eq!(from, sa("10.0.0.2", 7));
        assert!(got == data, "{size} bytes came back different");
    }
    let big = sizes.iter().filter(|s| **s > 1472).count() as u64;
    assert_eq!(ip_mib(&n, 1, "ipReasmOKs"), big, "B reassembled each large datagram");
    assert_eq!(ip_mib(&n, 0, "ipReasmOKs"), big, "and A each echo");
    assert_eq!(ip_mib(&n, 0, "ipFragOKs"), big);
    assert_eq!(ip_mib(&n, 1, "ipFragOKs"), big);
    let frags: u64 = sizes.iter().filter(|s| **s > 1472).map(|s| (s + 8).div_ceil(1480) as u64).sum();
    assert_eq!(ip_mib(&n, 0, "ipFragCreates"), frags);
    assert_eq!(ip_mib(&n, 0, "ipReasmFails"), 0);
    assert_eq!(n.inst(0).reass_bytes() + n.inst(1).reass_bytes(), 0);
    let echo = b.service_stats().into_iter().find(|s| s.name == "echo" && s.proto == Proto::Udp).unwrap();
    assert_eq!((echo.accepted, echo.refused), (sizes.len() as u64, 0));
    // B answers A's socket: the datagram from B to A's port.
    let t = b.udp_open(6000).unwrap();
    b.udp_send_to(t, local, b"hello").unwrap();
    assert_eq!(recv(&mut n, 0, s, 100), Some((sa("10.0.0.2", 6000), b"hello".to_vec())));
    // A datagram longer than the buffer: truncated, its length told.
    b.udp_send_to(t, local, &pattern(3000, 9)).unwrap();
    n.run_ms(20);
    let mut small = [0u8; 100];
    let (from, len) = a.udp_recv_from(s, &mut small).unwrap().unwrap();
    assert_eq!((from, len), (sa("10.0.0.2", 6000), 3000));
    assert_eq!(&small[..], &pattern(3000, 9)[..100]);
    assert_eq!(a.udp_recv_from(s, &mut small), Ok(None), "the rest is discarded");
}

/// smoltcp keeps one fragmentation buffer per interface: a second large
/// datagram dispatched while the first is part-way out would overwrite
/// it. Several large datagrams queued at once (and echoed at once) all
/// arrive.
#[test]
fn several_large_datagrams_in_one_poll_all_arrive() {
    let mut n = lan();
    let a = n.inst(0);
    let s = a.udp_open(0).unwrap();
    // Learn B's MAC first, so that everything leaves in one poll.
    a.udp_send_to(s, sa("10.0.0.2", 7), b"arp").unwrap();
    assert!(recv(&mut n, 0, s, 100).is_some());
    let sent: Vec<Vec<u8>> = (0..6u32).map(|i| pattern(4000 + i as usize * 500, i + 100)).collect();
    for d in &sent {
        a.udp_send_to(s, sa("10.0.0.2", 7), d).unwrap();
    }
    let mut back = Vec::new();
    for _ in 0..sent.len() {
        match recv(&mut n, 0, s, 200) {
            Some((_, d)) => back.push(d),
            None => break,
        }
    }
    assert_eq!(back.len(), sent.len(), "{} of {} echoed: {}", back.len(), sent.len(), n.dump());
    assert!(back == sent, "the echoes differ from what was sent");
    assert_eq!(ip_mib(&n, 1, "ipReasmFails") + ip_mib(&n, 0, "ipReasmFails"), 0);
}

/// A UDP datagram from `src:sport` to `dst:dport` as IPv4 bytes
/// (checksums right), with identification `ident`.
fn udp_datagram(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8], ident: u16) -> Vec<u8> {
    let udp = UdpRepr { src_port: sport, dst_port: dport };
    let mut l4 = vec![0u8; 8 + data.len()];
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut l4[..]),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        data.len(),
        |p| p.copy_from_slice(data),
        &ChecksumCapabilities::default(),
    );
    ip_datagram(src, dst, IpProtocol::Udp, &l4, ident)
}

/// An IPv4 datagram carrying `l4`, fragments allowed.
fn ip_datagram(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, l4: &[u8], ident: u16) -> Vec<u8> {
    let repr = Ipv4Repr { src_addr: src, dst_addr: dst, next_header: proto, payload_len: l4.len(), hop_limit: 64 };
    let mut buf = vec![0u8; 20 + l4.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut p, &ChecksumCapabilities::default());
    p.set_ident(ident);
    p.set_dont_frag(false);
    p.fill_checksum();
    p.payload_mut().copy_from_slice(l4);
    buf
}

fn eth(dst: [u8; 6], src: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr { src_addr: EthernetAddress(src), dst_addr: EthernetAddress(dst), ethertype: EthernetProtocol::Ipv4 };
    let mut buf = vec![0u8; 14 + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(payload);
    buf
}

fn inject(n: &mut Net, i: usize, frame: &[u8]) {
    let m = n.ports[i].link.rx_mblk(frame, 1).unwrap();
    n.inst(i).input(m);
}

#[test]
fn reassembly_out_of_order_bad_checksum_and_time_out() {
    let mut n = lan();
    let a = n.inst(0);
    let s = a.udp_open(5555).unwrap();
    let (src, dst) = (ip("10.0.0.9"), ip("10.0.0.1"));
    let mib = IpMib::new();
    let data = pattern(3000, 5);
    let frags = fragment(&udp_datagram(src, dst, 4000, 5555, &data, 77), 576, &mib).unwrap();
    assert!(frags.len() >= 6);
    // Last fragment first, then the others backwards, one twice.
    inject(&mut n, 0, &eth(mac(1), mac(9), &frags[1]));
    for f in frags.iter().rev() {
        inject(&mut n, 0, &eth(mac(1), mac(9), f));
    }
    assert_eq!(recv(&mut n, 0, s, 20), Some((SocketAddrV4::new(src, 4000), data.clone())));
    assert_eq!(ip_mib(&n, 0, "ipReasmOKs"), 1);
    assert_eq!(ip_mib(&n, 0, "ipReasmReqds"), frags.len() as u64 + 1);
    assert_eq!(ip_mib(&n, 0, "ipReasmDuplicates"), 1);
    let st = a.stats();
    assert_eq!(st.rx_fragments, 1, "the duplicate is the one frame dropped: {st:?}");

    // One payload byte changed: the UDP checksum of the whole datagram
    // fails; counted once, nothing delivered.
    let mut frags = fragment(&udp_datagram(src, dst, 4000, 5555, &data, 78), 576, &mib).unwrap();
    let last = frags.len() - 1;
    let k = frags[last].len() - 1;
    frags[last][k] ^= 0x40;
    for f in &frags {
        inject(&mut n, 0, &eth(mac(1), mac(9), f));
    }
    assert_eq!(recv(&mut n, 0, s, 20), None);
    assert_eq!(a.stats().rx_bad_cksum, st.rx_bad_cksum + 1);
    assert_eq!(ip_mib(&n, 0, "ipReasmOKs"), 2, "reassembled, then refused");

    // A datagram missing a fragment is dropped after the time-out.
    let frags = fragment(&udp_datagram(src, dst, 4000, 5555, &data, 79), 576, &mib).unwrap();
    for f in &frags[1..] {
        inject(&mut n, 0, &eth(mac(1), mac(9), f));
    }
    n.run_ms(10);
    assert!(a.reass_bytes() > 0);
    let fails = ip_mib(&n, 0, "ipReasmFails");
    n.now_us += 61_000_000;
    n.run_ms(1);
    assert_eq!(a.reass_bytes(), 0, "the time-out freed it");
    assert_eq!(ip_mib(&n, 0, "ipReasmFails"), fails + 1);
    assert_eq!(ip_mib(&n, 0, "ipReasmTimeout"), 60);
    assert_eq!(recv(&mut n, 0, s, 5), None);
    // netstat -s shows the section for the smoltcp instance.
    let (status, out) = n.cmd("netstat -s");
    assert_eq!(status, 0);
    assert!(out.contains("IPv4    ipReasmTimeout"), "{out}");
    assert!(out.contains("ipReasmOKs          =     2"), "{out}");
}

#[test]
fn the_receive_queue_is_bounded() {
    let mut n = lan();
    let (a, b) = (n.inst(0), n.inst(1));
    let s = a.udp_open(5000).unwrap();
    let t = b.udp_open(0).unwrap();
    for i in 0..(QUEUE_PACKETS as u32 + 40) {
        loop {
            match b.udp_send_to(t, sa("10.0.0.1", 5000), &i.to_be_bytes()) {
                Ok(()) => break,
                Err(NetError::NoBuffers) => n.run_ms(1),
                Err(e) => panic!("{e}"),
            }
        }
    }
    n.run_ms(50);
    let mut buf = [0u8; 4];
    let mut got = Vec::new();
    while let Some((_, len)) = a.udp_recv_from(s, &mut buf).unwrap() {
        assert_eq!(len, 4);
        got.push(u32::from_be_bytes(buf));
    }
    assert_eq!(got, (0..QUEUE_PACKETS as u32).collect::<Vec<_>>(), "the first {QUEUE_PACKETS}, in order");
}

/// Two large pings arriving in one poll: smoltcp answers each from the
/// receive path, in fragments; the second answer must wait until the
/// first one's last fragment has left, or it would overwrite it.
#[test]
fn echo_replies_to_fragmented_pings_in_one_poll_both_leave_whole() {
    let mut n = lan();
    n.add_peer(9, "10.0.0.9/24");
    let a = n.inst(0);
    // A learns the peer's MAC.
    let mut p = arbalest_netstack::Pinger::new(a.clone(), ip("10.0.0.9"), 8).unwrap();
    p.send(n.now_us).unwrap();
    assert!(n.run_until(100, |_| p.recv().is_some()));
    let (src, dst) = (ip("10.0.0.9"), ip("10.0.0.1"));
    let mib = IpMib::new();
    let datas: Vec<Vec<u8>> = (0..2u32).map(|i| pattern(3000, 40 + i)).collect();
    for (i, data) in datas.iter().enumerate() {
        let repr = Icmpv4Repr::EchoRequest { ident: 0x77, seq_no: i as u16, data };
        let mut l4 = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut l4[..]), &ChecksumCapabilities::default());
        for f in fragment(&ip_datagram(src, dst, IpProtocol::Icmp, &l4, 300 + i as u16), 1500, &mib).unwrap() {
            inject(&mut n, 0, &eth(mac(1), mac(9), &f));
        }
    }
    // Poll A alone and keep what it sends.
    for _ in 0..10 {
        a.poll_us(n.now_us);
        n.now_us += 1000;
    }
    let sent: Vec<Vec<u8>> = n.ports[0]
        .link
        .sent
        .lock()
        .unwrap()
        .drain(..)
        .map(common::wire_bytes)
        .collect();
    let mut r = Reassembler::default();
    let mut replies = Vec::new();
    for f in &sent {
        let (h, payload) = Ipv4Header::parse(&f[14..], true).unwrap();
        let whole = match r.input(&h, payload, 0, &mib) {
            Ok(ReassOutcome::Complete(d)) => d,
            Ok(ReassOutcome::Held) => continue,
            Err(e) => panic!("A's fragments do not reassemble: {e:?}"),
        };
        let icmp = Icmpv4Packet::new_checked(&whole[20..]).unwrap();
        assert!(icmp.verify_checksum());
        if let Icmpv4Repr::EchoReply { seq_no, data, .. } = Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap() {
            replies.push((seq_no, data.to_vec()));
        }
    }
    assert_eq!(replies.len(), 2, "{} frames sent: {}", sent.len(), n.dump());
    for (seq, data) in replies {
        assert!(data == datas[usize::from(seq)], "reply {seq} differs");
    }
}

/// An echo request larger than the fragmentation buffer: smoltcp could
/// not send the reply; it is not answered, and counted.
#[test]
fn a_ping_too_large_to_answer_is_counted_in_ip_frag_fails() {
    let mut n = lan();
    let (src, dst) = (ip("10.0.0.9"), ip("10.0.0.1"));
    let mib = IpMib::new();
    let data = pattern(9000, 3);
    let repr = Icmpv4Repr::EchoRequest { ident: 0x78, seq_no: 1, data: &data };
    let mut l4 = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut l4[..]), &ChecksumCapabilities::default());
    for f in fragment(&ip_datagram(src, dst, IpProtocol::Icmp, &l4, 500), 1500, &mib).unwrap() {
        inject(&mut n, 0, &eth(mac(1), mac(9), &f));
    }
    n.run_ms(20);
    assert_eq!(ip_mib(&n, 0, "ipReasmOKs"), 1);
    assert_eq!(ip_mib(&n, 0, "ipFragFails"), 1);
    assert_eq!(ip_mib(&n, 0, "ipFragOKs"), 0);
    assert_eq!(n.inst(0).stats().tx_packets, 0, "no reply, not even an ARP request");
}

/// Two echo services would bounce a datagram between them forever: the
/// smoltcp instance's does not answer the ports of echo-like services
/// (7, 9, 13, 19, 37), as FireEngine's does not; it counts them refused.
#[test]
fn the_echo_service_does_not_answer_service_ports() {
    let mut n = lan();
    n.add_peer(9, "10.0.0.9/24");
    let (src, dst) = (ip("10.0.0.9"), ip("10.0.0.1"));
    for (i, sport) in [7u16, 9, 13, 19, 37, 5000].into_iter().enumerate() {
        inject(&mut n, 0, &eth(mac(1), mac(9), &udp_datagram(src, dst, sport, 7, b"bounce?", 900 + i as u16)));
    }
    let peer_sock = n.peer().udp_bind(5000);
    n.run_ms(20);
    let echo = n.inst(0).service_stats().into_iter().find(|s| s.name == "echo" && s.proto == Proto::Udp).unwrap();
    assert_eq!((echo.accepted, echo.refused), (6, 5));
    let mut back = 0;
    while n.peer().udp(peer_sock).recv().is_ok() {
        back += 1;
    }
    assert_eq!(back, 1, "only the datagram from port 5000 is answered");
}

/// A broadcast address sends nothing: a datagram from the subnet's
/// broadcast address is dropped (a martian, counted malformed). A
/// datagram *to* a broadcast address is echoed from the instance's own
/// address, never from the broadcast address.
#[test]
fn broadcast_sources_are_dropped_and_broadcasts_answered_from_our_address() {
    let mut n = lan();
    n.add_peer(9, "10.0.0.9/24");
    let peer_sock = n.peer().udp_bind(5000);
    let before = n.inst(0).stats();
    inject(&mut n, 0, &eth(mac(1), mac(9), &udp_datagram(ip("10.0.0.255"), ip("10.0.0.1"), 5000, 7, b"martian", 1)));
    n.run_ms(20);
    let st = n.inst(0).stats();
    assert_eq!(st.rx_malformed, before.rx_malformed + 1, "{st:?}");
    assert_eq!(st.tx_packets, before.tx_packets, "not answered");
    for (i, to) in ["10.0.0.255", "255.255.255.255"].into_iter().enumerate() {
        let d = udp_datagram(ip("10.0.0.9"), ip(to), 5000, 7, to.as_bytes(), 10 + i as u16);
        inject(&mut n, 0, &eth([0xff; 6], mac(9), &d));
        n.run_ms(20);
        let (data, meta) = {
            let s = n.peer().udp(peer_sock);
            let (d, m) = s.recv().unwrap_or_else(|_| panic!("the broadcast to {to} was not echoed"));
            (d.to_vec(), m)
        };
        assert_eq!(data, to.as_bytes());
        assert_eq!(meta.endpoint.addr, IpAddress::Ipv4(ip("10.0.0.1")), "answered from our address");
        assert_eq!(meta.endpoint.port, 7);
    }
}
