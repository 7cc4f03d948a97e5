//! Data path of the smoltcp instance: ARP and ping between two instances,
//! the services against a plain smoltcp client, the connection bound,
//! malformed and oversized frames, queue and buffer exhaustion.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arbalest_mac::Cksum;
use arbalest_netstack::ping::Pinger;
use arbalest_netstack::smol::services::chargen;
use arbalest_netstack::{IpArg, IpStack, ServiceStats};
use common::*;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::tcp::State;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

const A: &str = "10.0.0.1";
const B: &str = "10.0.0.2";
const PEER: &str = "10.0.0.9";

/// A (net0, 10.0.0.1) and B (net1, 10.0.0.2) and the smoltcp peer (10.0.0.9).
fn lan() -> Net {
    let mut n = Net::new();
    n.add_instance("net0", 1, "10.0.0.1/24");
    n.add_instance("net1", 2, "10.0.0.2/24");
    n.add_peer(9, "10.0.0.9/24");
    n
}

fn service(n: &Net, port_idx: usize, name: &str, tcp: bool) -> ServiceStats {
    let proto = if tcp { arbalest_netstack::stack::Proto::Tcp } else { arbalest_netstack::stack::Proto::Udp };
    n.inst(port_idx).service_stats().into_iter().find(|s| s.name == name && s.proto == proto).unwrap()
}

/// Pings `dst` from instance `from` once; returns the reply's length.
fn ping_once(n: &mut Net, from: usize, dst: &str) -> Option<usize> {
    let stack: Arc<dyn IpStack> = n.inst(from);
    let mut p = Pinger::new(stack, ip(dst), 56).unwrap();
    p.send(n.now_us).unwrap();
    let mut got = None;
    n.run_until(200, |_| {
        got = got.or(p.recv());
        got.is_some()
    });
    got.map(|r| {
        assert_eq!(r.from, ip(dst));
        assert_eq!(r.seq, 0);
        r.len
    })
}

#[test]
fn arp_and_ping_between_instances() {
    let mut n = lan();
    assert_eq!(ping_once(&mut n, 1, A), Some(64));
    assert_eq!(ping_once(&mut n, 0, B), Some(64));
    // Several requests, all answered, round-trip times measured.
    let stack: Arc<dyn IpStack> = n.inst(1);
    let mut p = Pinger::new(stack, ip(A), 1000).unwrap();
    for _ in 0..5 {
        p.send(n.now_us).unwrap();
        n.run_ms(3);
    }
    let mut replies = Vec::new();
    n.run_until(100, |_| {
        while let Some(r) = p.recv() {
            replies.push(r);
        }
        replies.len() == 5
    });
    assert_eq!(replies.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert!(replies.iter().all(|r| r.len == 1008));
    let st = p.stats();
    assert_eq!((st.transmitted, st.received, st.loss_percent()), (5, 5, 0));
    for i in 0..2 {
        let s = n.inst(i).stats();
        assert_eq!(s.rx_drops(), 0, "{}", n.dump());
        assert!(s.tx_packets > 0 && s.rx_packets > 0);
    }
}

#[test]
fn ping_unreachable_host_gets_no_answer() {
    let mut n = lan();
    let stack: Arc<dyn IpStack> = n.inst(1);
    let mut p = Pinger::new(stack, ip("10.0.0.77"), 56).unwrap();
    p.send(n.now_us).unwrap();
    n.run_ms(1500);
    assert!(p.recv().is_none());
    assert_eq!(p.stats().loss_percent(), 100);
}

/// Sends `data` to `port` from the peer and collects what comes back
/// until `want` bytes arrived; closes afterwards.
fn tcp_exchange(n: &mut Net, port: u16, data: &[u8], want: usize, max_ms: u64) -> (Vec<u8>, bool) {
    let h = n.peer().connect(ip(A), port);
    let mut sent = 0;
    let mut back = Vec::new();
    let ok = n.run_until(max_ms, |n| {
        let s = n.peer().tcp(h);
        if s.may_send() && sent < data.len() {
            sent += s.send_slice(&data[sent..]).unwrap_or(0);
        }
        while s.can_recv() {
            let k = s.recv(|b| (b.len(), b.to_vec())).unwrap();
            if k.is_empty() {
                break;
            }
            back.extend_from_slice(&k);
        }
        sent == data.len() && back.len() >= want
    });
    n.peer().tcp(h).close();
    // Keep reading: a chargen server still delivers what it had queued.
    let closed = n.run_until(2000, |n| {
        let s = n.peer().tcp(h);
        while s.recv(|b| (b.len(), b.len())).is_ok_and(|k| k > 0) {}
        matches!(s.state(), State::Closed | State::TimeWait)
    });
    (back, ok && closed)
}

#[test]
fn tcp_echo_returns_one_mib_identically() {
    let mut n = lan();
    let data = pattern(1 << 20, 7);
    let (back, ok) = tcp_exchange(&mut n, 7, &data, data.len(), 30_000);
    assert!(ok, "echo stalled at {} bytes: {}", back.len(), n.dump());
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");
    let st = service(&n, 0, "echo", true);
    assert_eq!((st.accepted, st.bytes_in, st.bytes_out), (1, 1 << 20, 1 << 20));
    n.run_ms(100);
    assert_eq!(service(&n, 0, "echo", true).active, 0, "connection slot released");
    assert_eq!(n.inst(0).stats().rx_drops(), 0);
}

#[test]
fn tcp_echo_with_multi_buffer_frames() {
    let mut n = lan();
    n.rx_segs = 3;
    let data = pattern(200_000, 3);
    let (back, ok) = tcp_exchange(&mut n, 7, &data, data.len(), 30_000);
    assert!(ok && back == data);
    assert_eq!(n.inst(0).stats().rx_drops(), 0);
}

#[test]
fn discard_swallows_everything() {
    let mut n = lan();
    let data = pattern(256 * 1024, 5);
    let (back, ok) = tcp_exchange(&mut n, 9, &data, 0, 30_000);
    assert!(ok);
    assert!(back.is_empty());
    n.run_ms(50);
    let st = service(&n, 0, "discard", true);
    assert_eq!((st.accepted, st.bytes_in, st.bytes_out, st.active), (1, 256 * 1024, 0, 0));
}

#[test]
fn chargen_sends_the_rfc864_pattern() {
    let mut n = lan();
    let (back, ok) = tcp_exchange(&mut n, 19, &[], 20_000, 10_000);
    assert!(ok);
    assert!(back.len() >= 20_000);
    let first: Vec<u8> = (0..72u8).map(|i| b' ' + i).collect();
    assert_eq!(&back[..72], &first[..]);
    assert_eq!(&back[72..74], b"\r\n");
    assert_eq!(back[74], b'!');
    for (i, b) in back.iter().enumerate() {
        assert_eq!(*b, chargen::PATTERN[i % chargen::PERIOD], "byte {i}");
    }
    n.run_ms(100);
    let st = service(&n, 0, "chargen", true);
    assert_eq!((st.accepted, st.active), (1, 0));
    assert!(st.bytes_out >= back.len() as u64);
}

#[test]
fn udp_echo_mixed_sizes() {
    let mut n = lan();
    n.rx_segs = 2;
    let h = n.peer().udp_bind(5000);
    let dgrams: Vec<Vec<u8>> = (0..300u32).map(|i| pattern((i as usize * 37) % 1472 + 1, i + 1)).collect();
    let mut next = 0;
    let mut back: Vec<Vec<u8>> = Vec::new();
    let ok = n.run_until(5000, |n| {
        let s = n.peer().udp(h);
        for _ in 0..20 {
            if next < dgrams.len() && s.send_slice(&dgrams[next], (IpAddress::Ipv4(ip(A)), 7)).is_ok() {
                next += 1;
            }
        }
        while let Ok((d, meta)) = s.recv() {
            assert_eq!(meta.endpoint.addr, IpAddress::Ipv4(ip(A)));
            assert_eq!(meta.endpoint.port, 7);
            back.push(d.to_vec());
        }
        back.len() == dgrams.len()
    });
    assert!(ok, "{} of {} echoed: {}", back.len(), dgrams.len(), n.dump());
    assert!(back == dgrams, "datagrams differ");
    let st = service(&n, 0, "echo", false);
    assert_eq!((st.accepted, st.refused), (300, 0));
    assert_eq!(st.bytes_in, dgrams.iter().map(|d| d.len() as u64).sum::<u64>());
}

#[test]
fn connections_beyond_the_bound_are_refused_with_rst() {
    let mut n = Net::new();
    n.cfg.services.max_conns = 4;
    n.add_instance("net0", 1, "10.0.0.1/24");
    n.add_peer(9, "10.0.0.9/24");
    // Resolve ARP first so all SYNs arrive in one burst.
    let h0 = n.peer().connect(ip(A), 7);
    assert!(n.run_until(100, |n| n.peer().tcp(h0).state() == State::Established));
    let hs: Vec<_> = (0..5).map(|_| n.peer().connect(ip(A), 7)).collect();
    n.run_ms(50);
    let states: Vec<State> = hs.iter().map(|h| n.peer().tcp(*h).state()).collect();
    let established = states.iter().filter(|s| **s == State::Established).count();
    let reset = states.iter().filter(|s| **s == State::Closed).count();
    assert_eq!((established, reset), (3, 2), "{states:?}");
    let st = service(&n, 0, "echo", true);
    assert_eq!((st.accepted, st.refused, st.active), (4, 2, 4));
    // Echo still works on an accepted connection.
    let live = hs.iter().copied().find(|h| n.peer().tcp(*h).state() == State::Established).unwrap();
    n.peer().tcp(live).send_slice(b"ping").unwrap();
    let mut got = Vec::new();
    n.run_until(100, |n| {
        let s = n.peer().tcp(live);
        if s.can_recv() {
            s.recv(|b| {
                got.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
        got.len() == 4
    });
    assert_eq!(got, b"ping");
    // Closing one frees a slot for a new connection.
    n.peer().tcp(live).close();
    n.run_ms(100);
    let again = n.peer().connect(ip(A), 7);
    assert!(n.run_until(100, |n| n.peer().tcp(again).state() == State::Established));
    // And the bound holds again.
    let over = n.peer().connect(ip(A), 7);
    n.run_ms(50);
    assert_eq!(n.peer().tcp(over).state(), State::Closed);
    assert_eq!(service(&n, 0, "echo", true).refused, 3);
}

// ---- crafted frames ----

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr { src_addr: EthernetAddress(src), dst_addr: EthernetAddress(dst), ethertype };
    let mut buf = vec![0u8; 14 + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(payload);
    buf
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, l4: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr { src_addr: src, dst_addr: dst, next_header: proto, payload_len: l4.len(), hop_limit: 64 };
    let mut buf = vec![0u8; 20 + l4.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut p, &ChecksumCapabilities::default());
    p.payload_mut().copy_from_slice(l4);
    buf
}

fn icmp_echo(seq: u16) -> Vec<u8> {
    let data = [0x5au8; 32];
    let repr = Icmpv4Repr::EchoRequest { ident: 0x4242, seq_no: seq, data: &data };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &ChecksumCapabilities::default());
    buf
}

fn tcp_syn(src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: 33333,
        dst_port: dport,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(1000),
        ack_number: None,
        window_len: 1024,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut buf[..]),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// A valid ping frame from the peer's MAC and address to A.
fn ping_frame(seq: u16) -> Vec<u8> {
    eth(mac(1), mac(9), EthernetProtocol::Ipv4, &ipv4(ip(PEER), ip(A), IpProtocol::Icmp, &icmp_echo(seq)))
}

fn inject(n: &mut Net, frame: &[u8], segs: usize, verified: bool) {
    let mut m = n.ports[0].link.rx_mblk(frame, segs).unwrap();
    if verified {
        m.meta.cksum = Cksum::Verified;
    }
    n.inst(0).input(m);
    n.run_ms(2);
}

#[test]
fn malformed_frames_are_counted_and_ping_still_works() {
    let mut n = lan();
    // Learn the peer's MAC on A so that echo replies can leave at once.
    assert_eq!(ping_once(&mut n, 0, PEER), Some(64));
    let before = n.inst(0).stats();
    let (src, dst) = (ip(PEER), ip(A));
    let good = ping_frame(1);

    // Truncated Ethernet.
    inject(&mut n, &good[..10], 1, false);
    // Truncated IPv4 header.
    inject(&mut n, &good[..14 + 12], 1, false);
    // IPv4 total length beyond the frame.
    inject(&mut n, &good[..good.len() - 8], 1, false);
    // Bad IPv4 header checksum.
    let mut bad = good.clone();
    bad[14 + 10] ^= 0xff;
    inject(&mut n, &bad, 1, false);
    // Bad ICMP checksum.
    let mut bad = good.clone();
    bad[14 + 20 + 2] ^= 0x01;
    inject(&mut n, &bad, 1, false);
    // Truncated TCP header (IPv4 says TCP, 10 bytes follow).
    inject(&mut n, &eth(mac(1), mac(9), EthernetProtocol::Ipv4, &ipv4(src, dst, IpProtocol::Tcp, &[0u8; 10])), 1, false);
    // TCP SYN with a bad checksum.
    let mut syn = tcp_syn(src, dst, 7);
    syn[16] ^= 0x55;
    inject(&mut n, &eth(mac(1), mac(9), EthernetProtocol::Ipv4, &ipv4(src, dst, IpProtocol::Tcp, &syn)), 1, false);
    // UDP length field beyond the packet.
    let udp = [0x13, 0x88, 0x00, 0x07, 0x01, 0x00, 0x00, 0x00];
    inject(&mut n, &eth(mac(1), mac(9), EthernetProtocol::Ipv4, &ipv4(src, dst, IpProtocol::Udp, &udp)), 1, false);
    // Truncated ARP.
    inject(&mut n, &eth([0xff; 6], mac(9), EthernetProtocol::Arp, &[0, 1, 8, 0, 6]), 1, false);
    // Source address multicast.
    inject(&mut n, &eth(mac(1), mac(9), EthernetProtocol::Ipv4, &ipv4(ip("224.0.0.5"), dst, IpProtocol::Icmp, &icmp_echo(9))), 1, false);
    // Oversized frame (two buffers, 3000 bytes).
    let mut big = good.clone();
    big.resize(3000, 0);
    inject(&mut n, &big, 2, false);
    // IPv6.
    inject(&mut n, &eth(mac(1), mac(9), EthernetProtocol::Ipv6, &[0x60; 60]), 1, false);
    // Unicast for someone else.
    let mut other = good.clone();
    other[5] = 0x77;
    inject(&mut n, &other, 1, false);
    // A fragment reassembly refuses: More Fragments, and a payload that
    // is not a multiple of 8 bytes.
    let mut frag = good.clone();
    frag.truncate(14 + 20 + 39);
    {
        let mut p = Ipv4Packet::new_unchecked(&mut frag[14..]);
        p.set_more_frags(true);
        p.set_total_len(20 + 39);
        p.fill_checksum();
    }
    inject(&mut n, &frag, 1, false);

    let s = n.inst(0).stats();
    let d = |a: u64, b: u64| a - b;
    assert_eq!(d(s.rx_malformed, before.rx_malformed), 7, "{s:?}");
    assert_eq!(d(s.rx_bad_cksum, before.rx_bad_cksum), 3, "{s:?}");
    assert_eq!(d(s.rx_oversize, before.rx_oversize), 1);
    assert_eq!(d(s.rx_unknown_proto, before.rx_unknown_proto), 1);
    assert_eq!(d(s.rx_not_mine, before.rx_not_mine), 1);
    assert_eq!(d(s.rx_fragments, before.rx_fragments), 1);
    assert_eq!(d(s.rx_packets, before.rx_packets), 14);
    assert_eq!(s.tx_packets, before.tx_packets, "nothing answered");

    // A well-formed request gets its reply, from a single or a split frame.
    let tx = n.inst(0).stats().tx_packets;
    inject(&mut n, &good, 1, false);
    inject(&mut n, &ping_frame(2), 4, false);
    assert_eq!(n.inst(0).stats().tx_packets, tx + 2);
    // The NIC's word is taken per packet: a bad ICMP checksum marked
    // verified is answered.
    let mut bad = ping_frame(3);
    bad[14 + 20 + 2] ^= 0x01;
    inject(&mut n, &bad, 1, true);
    assert_eq!(n.inst(0).stats().tx_packets, tx + 3);
    // And B still pings A.
    assert_eq!(ping_once(&mut n, 1, A), Some(64));
}

#[test]
fn rx_queue_overflow_is_counted() {
    let mut n = lan();
    let frame = ping_frame(1);
    for _ in 0..1100 {
        let m = n.ports[0].link.rx_mblk(&frame, 1).unwrap();
        n.inst(0).input(m);
    }
    assert!(n.inst(0).rx_pending());
    assert_eq!(n.inst(0).stats().rx_queue_drops, 1100 - 1024);
    // One poll takes a bounded batch and asks to be called again.
    assert_eq!(n.inst(0).poll_us(n.now_us), Some(0));
    n.run_ms(20);
    assert!(!n.inst(0).rx_pending());
    // 1100 requests plus the ARP reply A needed to answer the peer.
    assert_eq!(n.inst(0).stats().rx_packets, 1101);
}

#[test]
fn tx_buffer_exhaustion_is_counted_and_recovers() {
    let mut n = lan();
    assert_eq!(ping_once(&mut n, 1, A), Some(64));
    n.ports[1].link.starve.store(true, Ordering::Relaxed);
    let stack: Arc<dyn IpStack> = n.inst(1);
    let mut p = Pinger::new(stack, ip(A), 56).unwrap();
    p.send(n.now_us).unwrap();
    n.run_ms(20);
    assert!(p.recv().is_none());
    assert!(n.inst(1).stats().tx_nobuf > 0);
    n.ports[1].link.starve.store(false, Ordering::Relaxed);
    assert!(n.run_until(100, |_| p.recv().is_some()), "queued request leaves once buffers return");
}

#[test]
fn a_blocked_link_holds_segments_back_and_they_leave_when_it_clears() {
    let mut n = lan();
    assert_eq!(ping_once(&mut n, 1, A), Some(64));
    let sent_before = n.inst(1).stats().tx_packets;
    n.ports[1].link.blocked.store(true, Ordering::Relaxed);
    let stack: Arc<dyn IpStack> = n.inst(1);
    let mut p = Pinger::new(stack, ip(A), 56).unwrap();
    p.send(n.now_us).unwrap();
    n.run_ms(20);
    assert!(p.recv().is_none());
    assert_eq!(n.inst(1).stats().tx_packets, sent_before, "nothing sent while blocked");
    assert!(n.inst(1).stats().tx_blocked > 0);
    assert_eq!(n.inst(1).stats().tx_nobuf, 0, "held back, not dropped");
    n.ports[1].link.blocked.store(false, Ordering::Relaxed);
    assert!(n.run_until(100, |_| p.recv().is_some()), "the held request leaves once the link clears");
}

#[test]
fn kernel_argument_configures_address_and_gateway() {
    let mut n = Net::new();
    let i = n.add_link("net0", 1);
    let inst = n.plumb(i);
    inst.configure(&IpArg::parse("10.0.0.5/24,gw=10.0.0.1").unwrap()).unwrap();
    assert_eq!(inst.addrs()[0].name, "net0/v4");
    assert_eq!(inst.routes()[0].gateway, ip("10.0.0.1"));
    assert!(inst.reaches(ip("8.8.8.8")));
    let (status, out) = n.cmd("netstat -rn");
    assert_eq!(status, 0);
    assert!(out.contains("default              10.0.0.1             UG        0          0 net0\n"), "{out}");
}

#[test]
fn instance_refuses_unusable_links() {
    let n = Net::new();
    let bad = FakeLink::new(&n.dma, "net5", [0x01, 0, 0x5e, 0, 0, 1]);
    assert!(arbalest_netstack::IpInstance::new(bad, n.cfg).is_err());
}
