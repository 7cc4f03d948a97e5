//! FireEngine instances on a simulated Ethernet, beside a smoltcp
//! instance: ARP, ping both ways, UDP echo (fragmented datagrams too), port
//! unreachable, the squeues the packets went through, and malformed input.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arbalest_netstack::fireengine::instance::{FeInstance, FeSystem};
use arbalest_netstack::fireengine::squeue::SqEnv;
use arbalest_netstack::{InstanceConfig, IpInstance, IpStack, Pinger};
use common::{FakeLink, ip, mac, net};

use common::FakeSqEnv as Env;

struct Hub {
    dma: Arc<arbalest_mac::dma::host::HeapDma>,
    env: Arc<Env>,
    sys: Arc<FeSystem>,
    ports: Vec<(Arc<FakeLink>, Arc<dyn IpStack>)>,
    /// Large (LSO) frames: delivered whole, marked as a device marks a
    /// coalesced receive, instead of cut in software (as the MAC layer
    /// does for a frame switched inside the machine).
    lso_whole: bool,
    /// The lengths of the large frames sent.
    large: Vec<usize>,
    /// Every frame moved (port, bytes), while `tapping`.
    tap: Vec<(usize, Vec<u8>)>,
    tapping: bool,
}

impl Hub {
    fn new(cpus: u32) -> Hub {
        let env = Arc::new(Env::default());
        env.now_ns.store(1_000_000_000, Ordering::SeqCst);
        let sys = FeSystem::new(cpus, env.clone(), 256 << 20);
        Hub { dma: Arc::new(Default::default()), env, sys, ports: Vec::new(), lso_whole: false, large: Vec::new(), tap: Vec::new(), tapping: false }
    }

    fn fe(&mut self, n: u8, addr: &str) -> Arc<FeInstance> {
        let link = FakeLink::new(&self.dma, &format!("fe{n}"), mac(n));
        let inst = Arc::new(FeInstance::new(link.clone(), self.sys.clone(), u64::from(n)).unwrap());
        inst.add_addr(&format!("fe{n}/v4"), net(addr)).unwrap();
        assert_eq!(inst.addr_state(&format!("fe{n}/v4")), Some("tentative"));
        self.ports.push((link, inst.clone()));
        let name = format!("fe{n}/v4");
        let i2 = inst.clone();
        assert!(self.run_until(2000, |_| i2.addr_state(&name) == Some("ok")), "DAD of {addr} did not finish");
        inst
    }

    fn smol(&mut self, n: u8, addr: &str) -> Arc<IpInstance> {
        let link = FakeLink::new(&self.dma, &format!("sm{n}"), mac(n));
        let inst = Arc::new(IpInstance::new(link.clone(), InstanceConfig::default()).unwrap());
        inst.add_addr(&format!("sm{n}/v4"), net(addr)).unwrap();
        self.ports.push((link, inst.clone()));
        inst
    }

    fn now_us(&self) -> u64 {
        self.env.now_ns() / 1000
    }

    /// Moves frames and runs the squeue workers until quiet, then advances
    /// the clock by 1 ms and polls everyone.
    fn tick(&mut self) {
        for _ in 0..256 {
            let mut moved = 0;
            for i in 0..self.ports.len() {
                let sent: Vec<arbalest_mac::Mblk> = self.ports[i].0.sent.lock().unwrap().drain(..).collect();
                let mut frames: Vec<(Vec<u8>, Option<arbalest_mac::Gso>)> = Vec::new();
                for m in sent {
                    let Some(g) = m.meta.gso else {
                        // What the MAC layer does for a frame no device
                        // finishes: complete a partial checksum.
                        frames.push((common::wire_bytes(m), None));
                        continue;
                    };
                    self.large.push(m.total_len());
                    if self.lso_whole {
                        frames.push((finish_large(&m), Some(g)));
                    } else {
                        let pool = arbalest_mac::BufPool::new(self.dma.clone(), 2048, 64).unwrap();
                        let pieces = arbalest_mac::gso::segment(&m, false, &mut |n| pool.alloc().map(|b| arbalest_mac::Mblk::with_range(b, 64, n)));
                        for p in pieces.expect("the instance's large frame is segmentable") {
                            frames.push((common::wire_bytes(p), None));
                        }
                    }
                }
                for (f, g) in frames {
                    moved += 1;
                    if self.tapping {
                        self.tap.push((i, f.clone()));
                    }
                    self.deliver_meta(i, &f, g);
                }
            }
            loop {
                let Some(sq) = self.env.wakes.lock().unwrap().pop_front() else { break };
                self.sys.worker_drain(sq);
                moved += 1;
            }
            if moved == 0 {
                break;
            }
        }
        self.env.now_ns.fetch_add(1_000_000, Ordering::SeqCst);
        let now = self.now_us();
        for (_, inst) in &self.ports {
            inst.poll_us(now);
        }
    }

    fn deliver(&self, from: usize, f: &[u8]) {
        self.deliver_meta(from, f, None);
    }

    /// Delivers `f`, marked as a coalesced receive of `gso` if given (in
    /// 2 KiB buffers, as mergeable receive buffers hold it).
    fn deliver_meta(&self, from: usize, f: &[u8], gso: Option<arbalest_mac::Gso>) {
        if f.len() < 14 {
            return;
        }
        let bcast = f[0] & 1 != 0;
        for (i, (link, inst)) in self.ports.iter().enumerate() {
            if i != from
                && (bcast || f[..6] == link.mac)
                && let Some(mut m) = link.rx_mblk(f, f.len().div_ceil(1900))
            {
                m.meta.gso = gso;
                inst.input(m);
            }
        }
    }

    /// Runs the squeue workers only: what they send stays on the links.
    fn run_squeues(&mut self) {
        while let Some(sq) = self.env.wakes.lock().unwrap().pop_front() {
            self.sys.worker_drain(sq);
        }
    }

    /// Takes the frames port `i` sent and has not been moved.
    fn take_sent(&mut self, i: usize) -> Vec<Vec<u8>> {
        self.ports[i].0.sent.lock().unwrap().drain(..).map(common::wire_bytes).collect()
    }

    fn run_until(&mut self, ms: u64, mut done: impl FnMut(&mut Hub) -> bool) -> bool {
        for _ in 0..ms {
            if done(self) {
                return true;
            }
            self.tick();
        }
        done(self)
    }

    /// Sends `count` echo requests from `from` to `dst`; returns replies.
    fn ping(&mut self, from: Arc<dyn IpStack>, dst: &str, count: u16) -> u32 {
        let mut p = Pinger::new(from, ip(dst), 56).unwrap();
        let mut got = 0;
        for _ in 0..count {
            p.send(self.now_us()).unwrap();
            self.run_until(200, |_| false);
            while p.recv().is_some() {
                got += 1;
            }
        }
        got
    }
}

#[test]
fn fireengine_and_smoltcp_ping_each_other_and_fireengine_itself() {
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let s = h.smol(2, "10.0.0.2/24");
    let b = h.fe(3, "10.0.0.3/24");
    assert_eq!(h.ping(a.clone(), "10.0.0.2", 5), 5, "FireEngine → smoltcp");
    assert_eq!(h.ping(s.clone(), "10.0.0.1", 5), 5, "smoltcp → FireEngine");
    assert_eq!(h.ping(a.clone(), "10.0.0.3", 5), 5, "FireEngine → FireEngine");
    let mib: Vec<_> = a.mib().into_iter().find(|(s, _)| *s == "ICMPv4").unwrap().1;
    let get = |n: &str| mib.iter().find(|(k, _)| *k == n).unwrap().1;
    assert_eq!(get("icmpInEchos"), 5);
    assert_eq!(get("icmpOutEchoReps"), 5);
    assert_eq!(get("icmpOutEchos"), 10);
    assert_eq!(get("icmpInEchoReps"), 10);
    assert_eq!(a.kind(), "fireengine");
    let _ = b;
}

#[test]
fn udp_echo_mixed_sizes_and_fragmented_datagrams_both_ways() {
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let _b = h.fe(2, "10.0.0.2/24");
    let sock = a.udp_open(0).unwrap();
    let echo = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 7);
    let mut sizes: Vec<usize> = (0..200).map(|i| (i * 37) % 1472).collect();
    sizes.extend(std::iter::repeat_n(8000, 20));
    for (i, n) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*n).map(|k| (k * 7 + i) as u8).collect();
        sock.send_to(echo, &data).unwrap();
        let mut got = None;
        h.run_until(500, |_| {
            got = sock.recv_from();
            got.is_some()
        });
        let d = got.unwrap_or_else(|| panic!("datagram {i} of {n} bytes not echoed"));
        assert_eq!(d.from, echo);
        assert_eq!(d.data, data, "datagram {i}");
    }
    let ip_mib = a.mib().into_iter().find(|(s, _)| *s == "IPv4").unwrap().1;
    let get = |n: &str| ip_mib.iter().find(|(k, _)| *k == n).unwrap().1;
    assert!(get("ipFragCreates") >= 20 * 6, "8000-byte datagrams leave in fragments");
    assert_eq!(get("ipReasmOKs"), 20, "and come back in fragments");
    assert_eq!(a.reass_bytes(), 0);
    // The squeues saw the datagrams.
    let st = h.sys.squeues.snapshot_all();
    assert!(st.iter().map(|s| s.processed_inline).sum::<u64>() > 0, "{st:?}");
}

#[test]
fn a_closed_port_draws_port_unreachable_and_counts_udp_no_ports() {
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let sock = a.udp_open(0).unwrap();
    sock.send_to(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4444), b"anyone?").unwrap();
    h.run_until(100, |_| false);
    let get = |i: &FeInstance, sec: &str, n: &str| {
        i.mib().into_iter().find(|(s, _)| *s == sec).unwrap().1.iter().find(|(k, _)| *k == n).unwrap().1
    };
    assert_eq!(get(&b, "UDP", "udpNoPorts"), 1);
    assert_eq!(get(&b, "ICMPv4", "icmpOutDestUnreachs"), 1);
    assert_eq!(get(&a, "ICMPv4", "icmpInDestUnreachs"), 1);
}

#[test]
fn udp_binds_through_the_classifier_conflicts_anon_ports_and_close() {
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    // The services hold 7 and 9.
    assert_eq!(a.udp_open(7).err(), Some(arbalest_netstack::NetError::AddrInUse));
    assert_eq!(a.udp_open(9).err(), Some(arbalest_netstack::NetError::AddrInUse));
    let s = a.udp_open(5000).unwrap();
    assert_eq!(a.udp_open(5000).err(), Some(arbalest_netstack::NetError::AddrInUse));
    assert_eq!(
        a.udp_bind(Ipv4Addr::new(10, 0, 0, 1), 5000).err(),
        Some(arbalest_netstack::NetError::AddrInUse),
        "no SO_REUSEADDR: a wildcard bind holds the port for every address"
    );
    assert_eq!(
        a.udp_bind(Ipv4Addr::new(10, 9, 9, 9), 5001).err(),
        Some(arbalest_netstack::NetError::InvalidAddress),
        "not one of ours"
    );
    let exact = a.udp_bind(Ipv4Addr::new(10, 0, 0, 1), 5001).unwrap();
    assert_eq!(exact.local(), SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5001));
    let anon: Vec<_> = (0..50).map(|_| a.udp_open(0).unwrap()).collect();
    let mut ports: Vec<u16> = anon.iter().map(|s| s.local().port()).collect();
    assert!(ports.iter().all(|p| *p >= 32768), "{ports:?}");
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 50, "anonymous ports are distinct");
    // Two services, 5000, 5001 and the 50.
    let eps = a.udp_endpoints();
    assert_eq!(eps.len(), 54, "{eps:?}");
    let conns: u64 = h.sys.squeues.snapshot_all().iter().map(|s| s.conns).sum();
    assert_eq!(conns, 54 + 3, "each conn counted on its squeue (and the three TCP listeners)");
    drop(anon);
    drop(s);
    assert_eq!(a.udp_endpoints().len(), 3);
    let conns: u64 = h.sys.squeues.snapshot_all().iter().map(|s| s.conns).sum();
    assert_eq!(conns, 3 + 3, "closing unbinds from the squeue (the TCP listeners stay)");
    // The port is free again.
    let again = a.udp_open(5000).unwrap();
    drop(again);
    drop(exact);
}

#[test]
fn a_connected_udp_socket_only_hears_its_peer_and_netstat_lists_it() {
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let c = h.fe(3, "10.0.0.3/24");
    let sa = a.udp_open(6000).unwrap();
    let sb = b.udp_open(6001).unwrap();
    let sc = c.udp_open(6002).unwrap();
    sa.connect(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 6001)).unwrap();
    assert_eq!(sa.local(), SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6000), "source picked by the route");
    sa.send(b"to b").unwrap();
    assert_eq!(
        sa.send_to(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 3), 6002), b"x").err(),
        Some(arbalest_netstack::NetError::InvalidArgument),
        "a connected socket sends only to its peer"
    );
    h.run_until(50, |_| false);
    let d = sb.recv_from().expect("b hears a");
    assert_eq!((d.from, &d.data[..]), (SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6000), &b"to b"[..]));
    sb.send_to(sa.local(), b"from b").unwrap();
    sc.send_to(sa.local(), b"from c").unwrap();
    h.run_until(50, |_| false);
    assert_eq!(sa.recv_from().map(|d| d.data), Some(b"from b".to_vec()));
    assert!(sa.recv_from().is_none(), "c's datagram is not for a socket connected to b");
    let a_udp = a.mib().into_iter().find(|(s, _)| *s == "UDP").unwrap().1;
    let no_ports = a_udp.iter().find(|(k, _)| *k == "udpNoPorts").unwrap().1;
    assert_eq!(no_ports, 1, "c's datagram found no conn");
    // netstat -an in illumos' layout.
    let insts: Vec<Arc<dyn IpStack>> = vec![a.clone()];
    let mut out = String::new();
    arbalest_netstack::admin::netstat::endpoints(&insts, &mut out);
    let want = "\nUDP: IPv4\n   Local Address        Remote Address      State\n-------------------- -------------------- ----------\n      *.7                                 Idle\n      *.9                                 Idle\n10.0.0.1.6000        10.0.0.2.6001        Connected\n";
    assert!(out.starts_with(want), "{out}");
    // Then the TCP table: the three services' listeners.
    let tcp = &out[want.len()..];
    assert!(tcp.starts_with("\nTCP: IPv4\n"), "{out}");
    assert_eq!(tcp.lines().filter(|l| l.ends_with("LISTEN")).count(), 3, "{out}");
}

#[test]
fn protocol_properties_act_on_the_data_path() {
    use arbalest_netstack::NetError;
    use arbalest_netstack::fireengine::tunables::Tun;
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let t = h.sys.tunables.clone();
    let early = b.udp_open(6100).unwrap();
    // Resolve b's MAC first, so that the next datagram leaves at once.
    assert_eq!(h.ping(a.clone(), "10.0.0.2", 1), 1);
    t.set(Tun::Ttl, 17).unwrap();
    let s = a.udp_open(0).unwrap();
    let to_b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 6100);
    s.send_to(to_b, b"ttl?").unwrap();
    let frame = {
        let q = h.ports[0].0.sent.lock().unwrap();
        let m = q.back().expect("the datagram left inline");
        assert_eq!(
            m.meta.cksum,
            arbalest_mac::Cksum::Partial { start: 34, offset: 6 },
            "a one-frame datagram leaves its UDP checksum to the device"
        );
        let mut v = vec![0u8; m.total_len()];
        m.copy_to(&mut v);
        v
    };
    assert_eq!(frame[14 + 8], 17, "the IP header carries the ttl property");
    let ip_mib = a.mib().into_iter().find(|(s, _)| *s == "IPv4").unwrap().1;
    assert_eq!(ip_mib.iter().find(|(k, _)| *k == "ipDefaultTTL").unwrap().1, 17);
    // send_buf bounds a datagram (EMSGSIZE), the boundary included.
    t.set(Tun::UdpSendBuf, 1000).unwrap();
    assert_eq!(s.send_to(to_b, &[1u8; 1001]).err(), Some(NetError::MessageTooLong));
    s.send_to(to_b, &[1u8; 1000]).unwrap();
    // The anonymous range: binds to port 0 stay in it until it is used up.
    t.set(Tun::UdpSmallestAnon, 40000).unwrap();
    t.set(Tun::UdpLargestAnon, 40003).unwrap();
    let anon: Vec<_> = (0..4).map(|_| a.udp_open(0).unwrap()).collect();
    let mut ports: Vec<u16> = anon.iter().map(|s| s.local().port()).collect();
    ports.sort();
    assert_eq!(ports, vec![40000, 40001, 40002, 40003]);
    assert_eq!(a.udp_open(0).err(), Some(NetError::AddrInUse), "the range is used up");
    // recv_buf: sockets opened after the change get the new queue size;
    // one opened before keeps its own.
    t.set(Tun::UdpRecvBuf, 2000).unwrap();
    let small = b.udp_open(6101).unwrap();
    for _ in 0..10 {
        s.send_to(to_b, &[2u8; 500]).unwrap();
        s.send_to(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 6101), &[3u8; 500]).unwrap();
    }
    h.run_until(50, |_| false);
    let mut n_early = 0;
    while early.recv_from().is_some() {
        n_early += 1;
    }
    let mut n_small = 0;
    while small.recv_from().is_some() {
        n_small += 1;
    }
    assert_eq!(n_early, 12, "the early socket's 128 KiB queue holds all (ttl?, 1000 B, 10 × 500 B)");
    assert!((1..=3).contains(&n_small), "a 2000-byte queue holds about three 500-byte datagrams, got {n_small}");
    let b_udp = b.mib().into_iter().find(|(s, _)| *s == "UDP").unwrap().1;
    assert_eq!(b_udp.iter().find(|(k, _)| *k == "udpInOverflows").unwrap().1, 10 - n_small as u64);
    // ICMP send_buf bounds an echo request (8-byte header + data).
    t.set(Tun::IcmpSendBuf, 1000).unwrap();
    let id = a.ping_open().unwrap();
    assert_eq!(a.ping_send(id, Ipv4Addr::new(10, 0, 0, 2), 1, &[0u8; 993]).err(), Some(NetError::MessageTooLong));
    a.ping_send(id, Ipv4Addr::new(10, 0, 0, 2), 2, &[0u8; 992]).unwrap();
    a.ping_close(id);
}

#[test]
fn ip_squeue_fanout_spreads_new_conns_over_every_squeue() {
    use arbalest_netstack::fireengine::tunables::Tun;
    let mut h = Hub::new(4);
    let a = h.fe(1, "10.0.0.1/24");
    let base: Vec<u64> = h.sys.squeues.snapshot_all().iter().map(|s| s.conns).collect();
    h.env.cpu.store(2, Ordering::SeqCst);
    let on_two: Vec<_> = (0..8).map(|_| a.udp_open(0).unwrap()).collect();
    let now: Vec<u64> = h.sys.squeues.snapshot_all().iter().map(|s| s.conns).collect();
    let delta: Vec<u64> = now.iter().zip(&base).map(|(n, b)| n - b).collect();
    assert_eq!(delta, vec![0, 0, 8, 0], "fanout 0: the squeue of the CPU that opened them");
    h.sys.tunables.set(Tun::SqFanout, 1).unwrap();
    let spread: Vec<_> = (0..8).map(|_| a.udp_open(0).unwrap()).collect();
    let after: Vec<u64> = h.sys.squeues.snapshot_all().iter().map(|s| s.conns).collect();
    let delta: Vec<u64> = after.iter().zip(&now).map(|(n, b)| n - b).collect();
    assert_eq!(delta, vec![2, 2, 2, 2], "fanout 1: round-robin over all squeues");
    drop((on_two, spread));
}

#[test]
fn an_instance_that_goes_away_unbinds_every_conn_from_its_squeue() {
    let mut h = Hub::new(2);
    let conns = |h: &Hub| h.sys.squeues.snapshot_all().iter().map(|s| s.conns).sum::<u64>();
    let a = h.fe(1, "10.0.0.1/24");
    let held = a.udp_open(5555).unwrap();
    assert_eq!(conns(&h), 6, "UDP echo and discard, a user's socket, the TCP echo, discard and chargen listeners");
    h.ports.clear();
    drop(a);
    assert_eq!(conns(&h), 0, "the instance's conns left their squeues with it");
    drop(held);
    assert_eq!(conns(&h), 0, "a socket that outlived its instance unbinds nothing twice");
    // A new instance binds the services again.
    let _b = h.fe(2, "10.0.0.2/24");
    assert_eq!(conns(&h), 5);
}

/// An IPv4 fragment from `src` (MAC `smac`) to `dst` (MAC `dmac`).
fn fragment_frame(smac: [u8; 6], dmac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, ident: u16, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    use arbalest_netstack::fireengine::wire::ipv4::Ipv4Header;
    let mut h = Ipv4Header::new(src, dst, 17, payload.len() as u16);
    h.ident = ident;
    h.frag_offset = offset;
    h.more_frags = more;
    let mut f = Vec::new();
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0u8; h.header_len() + payload.len()];
    let n = h.emit(&mut ip).unwrap();
    ip[n..].copy_from_slice(payload);
    f.extend_from_slice(&ip);
    f
}

#[test]
fn a_train_that_never_completes_draws_time_exceeded_only_if_its_first_fragment_came() {
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    assert_eq!(h.ping(a.clone(), "10.0.0.2", 1), 1, "ARP resolved both ways");
    let (ia, ib) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    // A first fragment (UDP header and 16 bytes, more to come) and, of
    // another datagram, only a middle fragment.
    let first = fragment_frame(mac(1), mac(2), ia, ib, 0x1111, 0, true, &[0x11; 24]);
    let middle = fragment_frame(mac(1), mac(2), ia, ib, 0x2222, 24, true, &[0x22; 24]);
    h.deliver(0, &first);
    h.deliver(0, &middle);
    let get = |i: &FeInstance, sec: &str, n: &str| {
        i.mib().into_iter().find(|(s, _)| *s == sec).unwrap().1.iter().find(|(k, _)| *k == n).unwrap().1
    };
    assert_eq!(get(&b, "IPv4", "ipReasmReqds"), 2);
    h.run_until(59_000, |_| false);
    assert_eq!(get(&b, "ICMPv4", "icmpOutTimeExcds"), 0, "not before ipReasmTimeout (60 s)");
    h.run_until(2_000, |_| false);
    assert_eq!(get(&b, "IPv4", "ipReasmFails"), 2, "both trains given up");
    assert_eq!(get(&b, "ICMPv4", "icmpOutTimeExcds"), 1, "one time exceeded: the train whose first fragment came");
    assert_eq!(get(&a, "ICMPv4", "icmpInTimeExcds"), 1, "and the sender got it");
    assert_eq!(b.reass_bytes(), 0);
}

#[test]
fn a_conn_reuses_its_cached_route_until_the_routing_table_changes() {
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let c = h.fe(3, "10.0.0.3/24");
    let sock = a.udp_open(0).unwrap();
    let rb = b.udp_open(7000).unwrap();
    let rc = c.udp_open(7000).unwrap();
    // 10.9.9.9 via b.
    a.add_route(net("10.9.9.0/24"), Ipv4Addr::new(10, 0, 0, 2)).unwrap();
    let far = SocketAddrV4::new(Ipv4Addr::new(10, 9, 9, 9), 7000);
    let h0 = a.route_cache_hits();
    for _ in 0..10 {
        sock.send_to(far, b"x").unwrap();
        h.run_until(5, |_| false);
    }
    assert_eq!(a.route_cache_hits() - h0, 9, "one lookup, then nine sends on the cached route");
    // The datagrams went to b's MAC (b is no router: it drops them,
    // counted as illumos does with forwarding off).
    let b_ip = b.mib().into_iter().find(|(s, _)| *s == "IPv4").unwrap().1;
    assert_eq!(b_ip.iter().find(|(k, _)| *k == "ipForwProhibits").unwrap().1, 10);
    // A new route: the cache is stale, the next send looks up again and
    // follows it to c.
    a.del_route(net("10.9.9.0/24"), None).unwrap();
    a.add_route(net("10.9.9.0/24"), Ipv4Addr::new(10, 0, 0, 3)).unwrap();
    let h1 = a.route_cache_hits();
    sock.send_to(far, b"y").unwrap();
    h.run_until(20, |_| false);
    assert_eq!(a.route_cache_hits(), h1, "a changed table is not trusted");
    let c_ip = c.mib().into_iter().find(|(s, _)| *s == "IPv4").unwrap().1;
    assert_eq!(c_ip.iter().find(|(k, _)| *k == "ipForwProhibits").unwrap().1, 1, "the datagram followed the new route");
    drop((rb, rc));
}

#[test]
fn the_icmp_error_rate_limit_follows_its_properties() {
    use arbalest_netstack::fireengine::tunables::Tun;
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let t = h.sys.tunables.clone();
    t.set(Tun::IcmpErrBurst, 2).unwrap();
    t.set(Tun::IcmpErrInterval, 10_000).unwrap();
    let sock = a.udp_open(0).unwrap();
    let closed = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4444);
    let get = |i: &FeInstance, n: &str| {
        i.mib().into_iter().find(|(s, _)| *s == "ICMPv4").unwrap().1.iter().find(|(k, _)| *k == n).unwrap().1
    };
    for _ in 0..5 {
        sock.send_to(closed, b"x").unwrap();
        h.run_until(2, |_| false);
    }
    assert_eq!((get(&b, "icmpOutDestUnreachs"), get(&b, "icmpOutDrops")), (2, 3), "a burst of 2, then refused");
    t.set(Tun::IcmpErrInterval, 0).unwrap();
    for _ in 0..5 {
        sock.send_to(closed, b"x").unwrap();
        h.run_until(2, |_| false);
    }
    assert_eq!(get(&b, "icmpOutDestUnreachs"), 7, "interval 0: no limit");
}

/// An Ethernet frame from `mac(9)` to `dst_mac` carrying a UDP datagram
/// `src:sport` → `dst:dport`.
fn udp_frame(dst_mac: [u8; 6], src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, data: &[u8]) -> Vec<u8> {
    let l4 = arbalest_netstack::fireengine::udp::build(src, sport, SocketAddrV4::new(dst, dport), data, false).unwrap();
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&mac(9));
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut h = [0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let mut sum: u32 = h.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&l4);
    f
}

/// A datagram whose source is the directed broadcast of the instance's
/// subnet is a martian (illumos drops it, `ipInAddrErrors`): the echo
/// service must not answer it, which would broadcast the answer.
#[test]
fn a_datagram_from_a_subnet_broadcast_address_is_dropped() {
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let get = |i: &FeInstance, sec: &str, n: &str| {
        i.mib().into_iter().find(|(s, _)| *s == sec).unwrap().1.iter().find(|(k, _)| *k == n).unwrap().1
    };
    let (errs, delivers, tx) = (get(&a, "IPv4", "ipInAddrErrors"), get(&a, "IPv4", "ipInDelivers"), a.stats().tx_packets);
    let (link, inst) = h.ports[0].clone();
    let f = udp_frame(mac(1), ip("10.0.0.255"), 5000, ip("10.0.0.1"), 7, b"from broadcast");
    inst.input(link.rx_mblk(&f, 1).unwrap());
    h.run_until(50, |_| false);
    assert_eq!(get(&a, "IPv4", "ipInAddrErrors"), errs + 1);
    assert_eq!(get(&a, "IPv4", "ipInDelivers"), delivers);
    assert_eq!(a.stats().tx_packets, tx, "nothing answered");
    // From a host of the subnet it is answered.
    let f = udp_frame(mac(1), ip("10.0.0.9"), 5000, ip("10.0.0.1"), 7, b"from a host");
    inst.input(link.rx_mblk(&f, 1).unwrap());
    h.run_until(50, |_| false);
    assert_eq!(get(&a, "UDP", "udpInDatagrams"), 1);
}

#[test]
fn audit_fixes_reassembled_checksums_multicast_groups_and_impossible_destinations() {
    use arbalest_netstack::NetError;
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let get = |i: &FeInstance, sec: &str, n: &str| {
        i.mib().into_iter().find(|(s, _)| *s == sec).unwrap().1.iter().find(|(k, _)| *k == n).unwrap().1
    };
    let (link, inst) = h.ports[0].clone();
    let (ia, peer) = (ip("10.0.0.1"), ip("10.0.0.9"));
    // A datagram to discard (9) with a wrong UDP checksum, in two
    // fragments; the last one's frame says the NIC verified it. A NIC
    // cannot check a fragment's transport checksum: it is checked again.
    let mut l4 = arbalest_netstack::fireengine::udp::build(peer, 5000, SocketAddrV4::new(ia, 9), &[0x5a; 40], false).unwrap();
    l4[6] ^= 0x55;
    let f1 = fragment_frame(mac(9), mac(1), peer, ia, 0x4242, 0, true, &l4[..24]);
    let f2 = fragment_frame(mac(9), mac(1), peer, ia, 0x4242, 24, false, &l4[24..]);
    inst.input(link.rx_mblk(&f1, 1).unwrap());
    let mut m = link.rx_mblk(&f2, 1).unwrap();
    m.meta.cksum = arbalest_mac::Cksum::Verified;
    inst.input(m);
    h.run_until(5, |_| false);
    assert_eq!(get(&a, "IPv4", "ipReasmOKs"), 1);
    assert_eq!(get(&a, "UDP", "udpInCksumErrs"), 1, "the reassembled datagram's checksum was checked");
    assert_eq!(get(&a, "UDP", "udpInDatagrams"), 0);
    // A group never joined: not for us. The all-hosts group is.
    let errs = get(&a, "IPv4", "ipInAddrErrors");
    let mut g = udp_frame([0x01, 0x00, 0x5e, 0x01, 0x02, 0x03], peer, 5000, ip("239.1.2.3"), 9, b"group");
    inst.input(link.rx_mblk(&g, 1).unwrap());
    h.run_until(5, |_| false);
    assert_eq!(get(&a, "IPv4", "ipInAddrErrors"), errs + 1);
    assert_eq!(get(&a, "UDP", "udpInDatagrams"), 0);
    g = udp_frame([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01], peer, 5000, ip("224.0.0.1"), 9, b"all hosts");
    inst.input(link.rx_mblk(&g, 1).unwrap());
    h.run_until(5, |_| false);
    assert_eq!(get(&a, "UDP", "udpInDatagrams"), 1, "224.0.0.1 reaches discard");
    // The echo service never answers port 0.
    let tx = a.stats().tx_packets;
    let z = udp_frame(mac(1), peer, 0, ia, 7, b"from port 0");
    inst.input(link.rx_mblk(&z, 1).unwrap());
    h.run_until(5, |_| false);
    assert_eq!(a.stats().tx_packets, tx, "nothing sent to port 0");
    // 0/8 is no destination; 127/8 and our own address go through the
    // loopback: answered, and nothing on the link.
    let s = a.udp_open(0).unwrap();
    assert_eq!(s.send_to(SocketAddrV4::new(ip("0.1.2.3"), 7), b"x").err(), Some(NetError::InvalidAddress));
    for dst in ["127.0.0.1", "127.1.2.3", "10.0.0.1"] {
        s.send_to(SocketAddrV4::new(ip(dst), 7), dst.as_bytes()).unwrap();
        h.run_until(5, |_| false);
        let d = s.recv_from().unwrap_or_else(|| panic!("no echo from {dst}"));
        assert_eq!((d.from, &d.data[..]), (SocketAddrV4::new(ip(dst), 7), dst.as_bytes()), "{dst}");
    }
    let id = a.ping_open().unwrap();
    a.ping_send(id, ip("127.0.0.1"), 1, b"x").unwrap();
    a.ping_send(id, ia, 2, b"x").unwrap();
    h.run_until(5, |_| false);
    let r1 = a.ping_recv(id).expect("a reply from 127.0.0.1");
    let r2 = a.ping_recv(id).expect("a reply from our own address");
    assert_eq!((r1.from, r1.seq, r2.from, r2.seq), (ip("127.0.0.1"), 1, ia, 2));
    a.ping_close(id);
    assert_eq!(get(&a, "IPv4", "ipLoopbackDatagrams"), 10, "3 datagrams and 2 echo requests, each answered");
    assert_eq!(a.stats().tx_packets, tx, "and nothing left");
}

#[test]
fn a_connected_socket_hears_the_peers_port_unreachable_once() {
    use arbalest_netstack::NetError;
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let _b = h.fe(2, "10.0.0.2/24");
    let closed = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4444);
    let woken = Arc::new(AtomicU64::new(0));
    let c = a.udp_open(0).unwrap();
    let w = woken.clone();
    c.set_upcall(Some(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    })));
    c.connect(closed).unwrap();
    let u = a.udp_open(0).unwrap();
    c.send(b"anyone?").unwrap();
    u.send_to(closed, b"anyone?").unwrap();
    h.run_until(50, |_| false);
    assert_eq!(woken.load(Ordering::SeqCst), 1, "the error woke the connected socket's reader");
    assert_eq!(c.send(b"again").err(), Some(NetError::ConnectionRefused), "ECONNREFUSED, as on illumos");
    c.send(b"and again").unwrap();
    assert_eq!(c.take_error(), None, "said once");
    assert_eq!(u.take_error(), None, "an unconnected socket cannot tell whose the error is");
    u.send_to(closed, b"x").unwrap();
}

/// An ICMP redirect from `router` (MAC `rmac`) to `to` (MAC `tmac`): for
/// `dst` (a datagram `to` sent, quoted), use `gateway`.
fn redirect_frame(rmac: [u8; 6], tmac: [u8; 6], router: Ipv4Addr, to: Ipv4Addr, dst: Ipv4Addr, gateway: Ipv4Addr) -> Vec<u8> {
    use arbalest_netstack::fireengine::wire::icmp::IcmpMessage;
    use arbalest_netstack::fireengine::wire::ipv4::Ipv4Header;
    let q = Ipv4Header::new(to, dst, 17, 8);
    let mut quote = vec![0u8; q.header_len() + 8];
    let n = q.emit(&mut quote).unwrap();
    quote[n..].copy_from_slice(&[0x13, 0x88, 0x00, 0x07, 0x00, 0x08, 0x00, 0x00]);
    let msg = IcmpMessage::Other { icmp_type: 5, code: 1, rest: gateway.octets(), data: &quote };
    let mut icmp = vec![0u8; msg.emit_len()];
    msg.emit(&mut icmp).unwrap();
    let h = Ipv4Header::new(router, to, 1, icmp.len() as u16);
    let mut ip = vec![0u8; h.header_len() + icmp.len()];
    let n = h.emit(&mut ip).unwrap();
    ip[n..].copy_from_slice(&icmp);
    let mut f = Vec::new();
    f.extend_from_slice(&tmac);
    f.extend_from_slice(&rmac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f
}

#[test]
fn a_redirect_from_the_first_hop_adds_a_host_route_that_ages_out() {
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let c = h.fe(3, "10.0.0.3/24");
    let get = |i: &FeInstance, sec: &str, n: &str| {
        i.mib().into_iter().find(|(s, _)| *s == sec).unwrap().1.iter().find(|(k, _)| *k == n).unwrap().1
    };
    a.add_route(net("0.0.0.0/0"), ip("10.0.0.2")).unwrap();
    let sock = a.udp_open(0).unwrap();
    let far = SocketAddrV4::new(ip("10.9.9.9"), 7);
    sock.send_to(far, b"1").unwrap();
    h.run_until(20, |_| false);
    assert_eq!(get(&b, "IPv4", "ipForwProhibits"), 1, "the default route: to b");
    let (link, inst) = h.ports[0].clone();
    // Not from the first hop (c is not a's gateway for 10.9.9.9): refused.
    let bad = redirect_frame(mac(3), mac(1), ip("10.0.0.3"), ip("10.0.0.1"), ip("10.9.9.9"), ip("10.0.0.3"));
    inst.input(link.rx_mblk(&bad, 1).unwrap());
    // From b, but to an off-link gateway: refused.
    let off = redirect_frame(mac(2), mac(1), ip("10.0.0.2"), ip("10.0.0.1"), ip("10.9.9.9"), ip("10.7.7.7"));
    inst.input(link.rx_mblk(&off, 1).unwrap());
    assert_eq!((get(&a, "ICMPv4", "icmpInRedirects"), get(&a, "ICMPv4", "icmpInBadRedirects")), (2, 2));
    // From b, to c: taken.
    let good = redirect_frame(mac(2), mac(1), ip("10.0.0.2"), ip("10.0.0.1"), ip("10.9.9.9"), ip("10.0.0.3"));
    inst.input(link.rx_mblk(&good, 1).unwrap());
    assert_eq!(get(&a, "ICMPv4", "icmpInBadRedirects"), 2);
    let r: Vec<_> = a.routes().into_iter().filter(|r| r.redirect).collect();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].dest, r[0].gateway), (net("10.9.9.9/32"), ip("10.0.0.3")));
    let insts: Vec<Arc<dyn IpStack>> = vec![a.clone()];
    let mut out = String::new();
    arbalest_netstack::admin::netstat::routes(&insts, &mut out);
    assert!(out.lines().any(|l| l.starts_with("10.9.9.9") && l.contains("10.0.0.3") && l.contains("UGHD")), "{out}");
    sock.send_to(far, b"2").unwrap();
    h.run_until(20, |_| false);
    assert_eq!(get(&c, "IPv4", "ipForwProhibits"), 1, "the redirect's route: to c");
    // Another destination still goes by the default route.
    sock.send_to(SocketAddrV4::new(ip("10.8.8.8"), 7), b"3").unwrap();
    h.run_until(20, |_| false);
    assert_eq!(get(&b, "IPv4", "ipForwProhibits"), 2);
    // After a minute the route is gone.
    h.run_until(61_000, |_| false);
    assert!(a.routes().iter().all(|r| !r.redirect), "aged out");
    sock.send_to(far, b"4").unwrap();
    h.run_until(20, |_| false);
    assert_eq!(get(&b, "IPv4", "ipForwProhibits"), 3, "back by the default route");
}

#[test]
fn ip_identifications_follow_no_single_counter() {
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let c = h.fe(3, "10.0.0.3/24");
    let sock = a.udp_open(0).unwrap();
    let _rb = b.udp_open(7100).unwrap();
    let _rc = c.udp_open(7100).unwrap();
    // Resolve both, then capture the ids of datagrams to b and to c.
    assert_eq!(h.ping(a.clone(), "10.0.0.2", 1), 1);
    assert_eq!(h.ping(a.clone(), "10.0.0.3", 1), 1);
    let mut ids = Vec::new();
    for dst in ["10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.3", "10.0.0.2"] {
        sock.send_to(SocketAddrV4::new(ip(dst), 7100), b"id?").unwrap();
        let f = {
            let q = h.ports[0].0.sent.lock().unwrap();
            let m = q.back().unwrap();
            let mut v = vec![0u8; m.total_len()];
            m.copy_to(&mut v);
            v
        };
        ids.push(u16::from_be_bytes([f[18], f[19]]));
        h.run_until(5, |_| false);
    }
    // Each destination sees its own sequence.
    assert_eq!(ids[2], ids[0].wrapping_add(1));
    assert_eq!(ids[4], ids[2].wrapping_add(1));
    assert_eq!(ids[3], ids[1].wrapping_add(1));
    assert_ne!(ids[1], ids[0].wrapping_add(1), "b's count tells nothing of c's: {ids:?}");
}

#[test]
fn the_socket_calls_bind_connect_send_recv_shutdown_poll_and_their_errors() {
    use arbalest_netstack::NetError;
    use arbalest_netstack::fireengine::socket::{Shutdown, SockType};
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let any = |p: u16| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p);
    let s = a.socket(SockType::Dgram);
    assert_eq!(s.listen(5).err(), Some(NetError::NotSupported), "EOPNOTSUPP");
    assert!(matches!(s.accept(), Err(NetError::NotSupported)));
    assert_eq!(s.send(b"x").err(), Some(NetError::NotConnected));
    assert_eq!(s.shutdown(Shutdown::Write).err(), Some(NetError::NotConnected), "ENOTCONN");
    assert_eq!(s.local(), None);
    assert_eq!(s.recv_datagram(), Ok(None), "unbound: nothing, would block");
    // The peer, and its upcall.
    let p = Arc::new(b.socket(SockType::Dgram));
    p.bind(any(7200)).unwrap();
    assert_eq!(p.bind(any(7201)).err(), Some(NetError::InvalidArgument), "EINVAL: bound already");
    let woken = Arc::new(AtomicU64::new(0));
    let w = woken.clone();
    p.set_upcall(Some(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    })));
    // send_to binds an anonymous port.
    let to_p = SocketAddrV4::new(ip("10.0.0.2"), 7200);
    s.send_to(to_p, b"hello").unwrap();
    let me = s.local().expect("bound by its first send_to");
    assert_eq!(*me.ip(), Ipv4Addr::UNSPECIFIED);
    assert!(me.port() >= 32768);
    let me = SocketAddrV4::new(ip("10.0.0.1"), me.port());
    h.run_until(20, |_| false);
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    assert!(p.poll().readable);
    let mut buf = [0u8; 3];
    assert_eq!(p.recv_from(&mut buf), Ok(Some((SocketAddrV4::new(ip("10.0.0.1"), me.port()), 5))), "truncated, full length said");
    assert_eq!(&buf, b"hel");
    assert!(!p.poll().readable);
    // Connected: send goes to the peer.
    s.connect(to_p).unwrap();
    assert_eq!(s.peer(), Some(to_p));
    s.send(b"again").unwrap();
    h.run_until(20, |_| false);
    assert_eq!(p.recv_datagram().unwrap().map(|d| d.data), Some(b"again".to_vec()));
    // shutdown(Write): no more sending; receiving goes on.
    p.send_to(me, b"to s").unwrap();
    h.run_until(20, |_| false);
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(s.send(b"no").err(), Some(NetError::ShutDown));
    assert!(s.poll().write_shut && !s.poll().writable);
    assert_eq!(s.recv_datagram().unwrap().map(|d| d.data), Some(b"to s".to_vec()));
    // shutdown(Read): what waits and what comes is discarded, counted.
    p.send_to(me, b"waits").unwrap();
    h.run_until(20, |_| false);
    s.shutdown(Shutdown::Read).unwrap();
    p.send_to(me, b"comes").unwrap();
    h.run_until(20, |_| false);
    assert_eq!(s.recv_datagram().err(), Some(NetError::ShutDown));
    assert_eq!(s.dropped(), 2);
    assert!(s.poll().readable && s.poll().read_shut, "a read would not block: it fails");
    // A pending error shows in poll, and comes once.
    let c = a.socket(SockType::Dgram);
    c.connect(SocketAddrV4::new(ip("10.0.0.2"), 4444)).unwrap();
    c.send(b"closed port").unwrap();
    h.run_until(50, |_| false);
    assert!(c.poll().error && c.poll().readable);
    assert_eq!(c.recv_datagram().err(), Some(NetError::ConnectionRefused));
    assert_eq!(c.recv_datagram(), Ok(None));
    assert!(!c.poll().error);
    // Closing (drop) frees the port.
    let port = c.local().unwrap().port();
    drop(c);
    let again = a.socket(SockType::Dgram);
    again.bind(any(port)).unwrap();
}

#[test]
fn a_source_routed_echo_goes_back_by_the_reversed_route() {
    use arbalest_netstack::fireengine::wire::icmp::IcmpMessage;
    use arbalest_netstack::fireengine::wire::ipv4::{IPOPT_LSRR, Ipv4Header, Ipv4Options};
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    assert_eq!(h.ping(a.clone(), "10.0.0.2", 1), 1, "a knows b's MAC");
    let get = |i: &FeInstance, sec: &str, n: &str| {
        i.mib().into_iter().find(|(s, _)| *s == sec).unwrap().1.iter().find(|(k, _)| *k == n).unwrap().1
    };
    // From 10.0.0.9, by 10.7.7.7 then b (10.0.0.2), route used up.
    let mut raw = vec![IPOPT_LSRR, 11, 12];
    raw.extend_from_slice(&[10, 7, 7, 7, 10, 0, 0, 2]);
    let msg = IcmpMessage::EchoRequest { ident: 5, seq: 1, data: b"via b" };
    let mut icmp = vec![0u8; msg.emit_len()];
    msg.emit(&mut icmp).unwrap();
    let mut ih = Ipv4Header::new(ip("10.0.0.9"), ip("10.0.0.1"), 1, icmp.len() as u16);
    ih.options = Ipv4Options::new(&raw).unwrap();
    let mut ipb = vec![0u8; ih.header_len() + icmp.len()];
    let n = ih.emit(&mut ipb).unwrap();
    ipb[n..].copy_from_slice(&icmp);
    let mut f = Vec::new();
    f.extend_from_slice(&mac(1));
    f.extend_from_slice(&mac(2));
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ipb);
    let before = get(&b, "IPv4", "ipForwProhibits");
    let (link, inst) = h.ports[0].clone();
    inst.input(link.rx_mblk(&f, 1).unwrap());
    h.run_until(20, |_| false);
    assert_eq!(get(&a, "ICMPv4", "icmpOutEchoReps"), 1);
    // The reply went to b (the router nearest to a), carrying the route on
    // to 10.7.7.7 and 10.0.0.9: b, a host, does not forward it.
    assert_eq!(get(&b, "IPv4", "ipForwProhibits"), before + 1);
}

#[test]
fn a_socket_may_send_to_its_subnets_broadcast() {
    let mut h = Hub::new(1);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let get = |i: &FeInstance, n: &str| i.mib().into_iter().find(|(s, _)| *s == "UDP").unwrap().1.iter().find(|(k, _)| *k == n).unwrap().1;
    let s = a.udp_open(0).unwrap();
    s.send_to(SocketAddrV4::new(ip("10.0.0.255"), 9), b"all of you").unwrap();
    h.run_until(20, |_| false);
    assert_eq!(get(&b, "udpInDatagrams"), 1, "b's discard heard the subnet broadcast");
}

/// Streams `total` bytes through the TCP echo service at `dst` from
/// `from`'s user connection and checks every byte comes back, then
/// closes; returns the connection's final state.
fn tcp_echo_through(h: &mut Hub, from: Arc<dyn IpStack>, dst: &str, total: usize) -> arbalest_netstack::TcpState {
    use arbalest_netstack::TcpState;
    let id = from.tcp_connect(ip(dst), 7).unwrap();
    assert!(
        h.run_until(3000, |_| from.tcp_status(id).unwrap().state == TcpState::Established),
        "no handshake: {:?}",
        from.tcp_status(id)
    );
    let data: Vec<u8> = (0..total).map(|i| (i * 31 + i / 977) as u8).collect();
    let (mut sent, mut got) = (0usize, Vec::with_capacity(total));
    let mut buf = vec![0u8; 65536];
    let mut shut = false;
    let ok = h.run_until(60_000, |_| {
        if sent < total {
            sent += from.tcp_send(id, &data[sent..]).unwrap();
        } else if !shut {
            from.tcp_shutdown(id).unwrap();
            shut = true;
        }
        loop {
            let n = from.tcp_recv(id, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.len() == total && from.tcp_status(id).unwrap().state.peer_finished()
    });
    assert!(ok, "echo stalled at {} of {total} bytes (sent {sent}): {:?}", got.len(), from.tcp_status(id));
    assert!(got == data, "echoed bytes differ");
    let st = from.tcp_status(id).unwrap().state;
    from.tcp_close(id);
    st
}

#[test]
fn fireengine_tcp_echo_with_fireengine_and_smoltcp_clients() {
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let s = h.smol(3, "10.0.0.3/24");
    // TIME_WAIT at its smallest (1 s), to see conns go in a short test.
    use arbalest_netstack::fireengine::tunables::{TcpTun, Tun};
    h.sys.tunables.set(Tun::Tcp(TcpTun::TimeWaitInterval), 1000).unwrap();
    // FireEngine to FireEngine: 1 MiB through the echo service.
    let st = tcp_echo_through(&mut h, a.clone(), "10.0.0.2", 1 << 20);
    assert!(st.peer_finished(), "{st:?}");
    // smoltcp client to FireEngine's echo, and FireEngine to smoltcp's.
    tcp_echo_through(&mut h, s.clone(), "10.0.0.2", 256 << 10);
    tcp_echo_through(&mut h, a.clone(), "10.0.0.3", 256 << 10);
    let mib = b.mib().into_iter().find(|(s, _)| *s == "TCP").unwrap().1;
    let get = |n: &str| mib.iter().find(|(k, _)| *k == n).unwrap().1;
    assert_eq!(get("tcpPassiveOpens"), 2, "{mib:?}");
    assert!(get("tcpInInorderBytes") >= (1 << 20) + (256 << 10));
    assert_eq!(get("tcpRetransSegs"), 0, "a lossless link needs no retransmission: {mib:?}");
    // After TIME_WAIT, no conn is left on the client; the server's
    // connections are gone.
    h.run_until(3000, |_| a.tcp_endpoints().iter().all(|e| e.remote.is_none()));
    let left: Vec<_> = b.tcp_endpoints().into_iter().filter(|e| e.remote.is_some()).collect();
    assert!(left.is_empty(), "{left:?}");
    let left: Vec<_> = a.tcp_endpoints().into_iter().filter(|e| e.remote.is_some()).collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(a.mib().into_iter().find(|(s, _)| *s == "TCP").unwrap().1.iter().find(|(k, _)| *k == "tcpCurrEstab").unwrap().1, 0);
}

#[test]
fn a_fireengine_connect_to_a_closed_port_is_refused() {
    use arbalest_netstack::TcpState;
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let id = a.tcp_connect(ip("10.0.0.2"), 4444).unwrap();
    assert!(h.run_until(2000, |_| a.tcp_status(id).unwrap().state == TcpState::Refused), "{:?}", a.tcp_status(id));
    let mib = b.mib().into_iter().find(|(s, _)| *s == "TCP").unwrap().1;
    assert_eq!(mib.iter().find(|(k, _)| *k == "tcpInClosed").unwrap().1, 1);
    a.tcp_close(id);
}

/// connect, 1-byte echo, close, over and over (the benchmark's tcp_crr),
/// with new conns spread over the squeues (`ip_squeue_fanout` 1) so that
/// an accepted conn's squeue is not the listener's: every cycle completes.
/// Run on a thread so that a hang fails the test instead of stalling it.
/// (This single-threaded harness nests the squeues the other way round
/// from a 2-CPU guest, so the echo service's re-entry deadlock that
/// `tests/tests/net_fe_tcp_crr.rs` found does not show here.)
#[test]
fn short_connections_on_other_squeues_keep_the_echo_listener_serving() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(crr_cycles).map_err(|_| "a cycle failed (see above)"));
    });
    match rx.recv_timeout(std::time::Duration::from_secs(120)) {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("the connect/echo/close cycles hung (a deadlock?)"),
    }
}

fn crr_cycles() {
    use arbalest_netstack::TcpState;
    use arbalest_netstack::fireengine::tunables::Tun;
    let mut h = Hub::new(2);
    h.sys.tunables.set(Tun::SqFanout, 1).unwrap();
    let b = h.fe(2, "10.0.0.2/24");
    let s = h.smol(3, "10.0.0.3/24");
    for cycle in 0..300u32 {
        let id = s.tcp_connect(ip("10.0.0.2"), 7).unwrap();
        let v = [b'a' + (cycle % 26) as u8];
        let mut sent = false;
        let mut buf = [0u8; 4];
        let mut got = 0;
        let ok = h.run_until(5000, |_| {
            let st = s.tcp_status(id).unwrap().state;
            if st == TcpState::Established && !sent {
                sent = s.tcp_send(id, &v).unwrap() == 1;
            }
            if sent {
                got += s.tcp_recv(id, &mut buf).unwrap();
            }
            got == 1
        });
        assert!(ok, "cycle {cycle}: {:?}, got {got}; server {:?}", s.tcp_status(id), b.tcp_endpoints());
        assert_eq!(buf[0], v[0]);
        s.tcp_close(id);
    }
    let svc = b.mib().into_iter().find(|(s, _)| *s == "TCP").unwrap().1;
    assert!(svc.iter().any(|(k, v)| *k == "tcpPassiveOpens" && *v == 300), "{svc:?}");
}

/// A large frame's bytes with its TCP checksum completed (as a device
/// that hands a coalesced receive up has it).
fn finish_large(m: &arbalest_mac::Mblk) -> Vec<u8> {
    let mut v = vec![0u8; m.total_len()];
    m.copy_to(&mut v);
    let arbalest_mac::Cksum::Partial { start, offset } = m.meta.cksum else { panic!("a large frame without its partial checksum") };
    let (s, at) = (usize::from(start), usize::from(start) + usize::from(offset));
    let mut sum: u32 = 0;
    let mut c = v[s..].chunks_exact(2);
    for w in &mut c {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [l] = c.remainder() {
        sum += u32::from(*l) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    v[at..at + 2].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    v
}

fn tcp_mib(i: &Arc<FeInstance>, name: &str) -> u64 {
    i.mib().into_iter().find(|(s, _)| *s == "TCP").unwrap().1.iter().find(|(k, _)| *k == name).unwrap().1
}

#[test]
fn fireengine_large_sends_cut_by_the_link_or_taken_whole_arrive_byte_exact() {
    use std::sync::atomic::Ordering::Relaxed;
    for whole in [false, true] {
        let mut h = Hub::new(2);
        h.lso_whole = whole;
        let a = h.fe(1, "10.0.0.1/24");
        let b = h.fe(2, "10.0.0.2/24");
        for (l, _) in &h.ports {
            l.lso.store(65_535 + 14, Relaxed);
        }
        let st = tcp_echo_through(&mut h, a.clone(), "10.0.0.2", 1 << 20);
        assert!(st.peer_finished(), "{st:?}");
        assert!(!h.large.is_empty(), "no large frame sent");
        assert!(h.large.iter().all(|&n| n > 1514 && n <= 65_535 + 14), "{:?}", h.large);
        for i in [&a, &b] {
            assert!(tcp_mib(i, "tcpOutLsoSegs") > 0, "whole {whole}");
            assert_eq!(tcp_mib(i, "tcpRetransSegs"), 0, "a lossless link needs no retransmission (whole {whole})");
            assert_eq!(tcp_mib(i, "tcpInErrs"), 0, "every checksum right (whole {whole})");
        }
        let large_in = tcp_mib(&a, "tcpInLargeSegs") + tcp_mib(&b, "tcpInLargeSegs");
        assert_eq!(large_in > 0, whole, "large receives only when delivered whole");
        eprintln!("whole {whole}: {} large frames, the longest {}", h.large.len(), h.large.iter().max().unwrap());

        // `_lso_outbound` off: nothing larger than the MTU.
        use arbalest_netstack::fireengine::tunables::Tun;
        h.sys.tunables.set(Tun::LsoOutbound, 0).unwrap();
        h.large.clear();
        tcp_echo_through(&mut h, a.clone(), "10.0.0.2", 256 << 10);
        assert!(h.large.is_empty(), "large frames with _lso_outbound off");
    }
}

/// A reader's count must reach the TCB even when the squeue is too full
/// to take the note that asks for the visit: a close after reading
/// everything is then an orderly FIN, not a RST for "unread" data.
#[test]
fn a_read_whose_note_finds_the_squeue_full_still_counts_at_close() {
    use arbalest_netstack::TcpState;
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let id = a.tcp_connect(ip("10.0.0.2"), 7).unwrap();
    assert!(h.run_until(3000, |_| a.tcp_status(id).unwrap().state == TcpState::Established));
    assert_eq!(a.tcp_send(id, b"read me, all of me").unwrap(), 18);
    assert!(h.run_until(3000, |_| a.tcp_status(id).unwrap().readable >= 18 || a.tcp_status(id).unwrap().state != TcpState::Established), "{:?}", a.tcp_status(id));
    let mib = |i: &Arc<FeInstance>, n: &str| i.mib().into_iter().find(|(s, _)| *s == "TCP").unwrap().1.iter().find(|(k, _)| *k == n).unwrap().1;
    let (rsts_a, resets_b) = (mib(&a, "tcpOutRsts"), mib(&b, "tcpEstabResets"));
    // Every squeue held, and filled with no-op shutdowns until it refuses
    // one: the read's note is then refused too.
    let env = h.env.clone();
    let sqs: Vec<_> = (0..2).map(|i| h.sys.squeues.for_cpu(i).unwrap().clone()).collect();
    for sq in &sqs {
        assert!(sq.synch_enter(&*env));
    }
    let mut filled = 0;
    while a.tcp_shutdown(id).is_ok() {
        filled += 1;
        assert!(filled < 1_000_000, "the squeue never filled");
    }
    let mut buf = [0u8; 64];
    assert_eq!(a.tcp_recv(id, &mut buf).unwrap(), 18);
    assert_eq!(&buf[..18], b"read me, all of me");
    for sq in &sqs {
        sq.synch_exit(&*env);
    }
    a.tcp_close(id);
    h.run_until(3000, |_| a.tcp_endpoints().iter().all(|e| e.remote.is_none() || e.state == "TIME_WAIT"));
    assert_eq!(mib(&a, "tcpOutRsts"), rsts_a, "the close after a full read reset the conn");
    assert_eq!(mib(&b, "tcpEstabResets"), resets_b);
}

/// The IPv4 datagram of a TCP segment with data in Ethernet frame `f`.
fn tcp_data(f: &[u8]) -> Option<&[u8]> {
    let ip = f.get(14..).filter(|_| f.get(12..14) == Some(&[8, 0]))?;
    let hl = usize::from(ip.first()? & 15) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let thl = usize::from(ip.get(hl + 12)? >> 4) * 4;
    (ip.get(9) == Some(&6) && total > hl + thl).then_some(ip.get(..total)?)
}

/// An ICMP error from `from` (MAC `fmac`) to the sender of `dgram` (MAC
/// `tmac`), quoting it.
fn icmp_error_frame(kind: arbalest_netstack::fireengine::icmp::IcmpErrorKind, dgram: &[u8], from: Ipv4Addr, fmac: [u8; 6], tmac: [u8; 6]) -> Vec<u8> {
    let e = arbalest_netstack::fireengine::icmp::build_error(kind, dgram, from, 64, 7).unwrap();
    let mut f = Vec::new();
    f.extend_from_slice(&tmac);
    f.extend_from_slice(&fmac);
    f.extend_from_slice(&[8, 0]);
    f.extend_from_slice(&e);
    f
}

fn icmp_mib(i: &Arc<FeInstance>, name: &str) -> u64 {
    i.mib().into_iter().find(|(s, _)| *s == "ICMPv4").unwrap().1.iter().find(|(k, _)| *k == name).unwrap().1
}

/// Path MTU discovery through the instance: a router (here the peer's
/// address) drops a flight and says "fragmentation needed, MTU 1000";
/// everything after is ≤ 1000 bytes, the data all arrives, and the next
/// conn to that destination starts small. Bogus quotes never panic; a
/// host unreachable aborts nothing; a port unreachable refuses a connect.
#[test]
fn icmp_errors_reach_tcp_conns_through_the_instance() {
    use arbalest_netstack::TcpState;
    use arbalest_netstack::fireengine::icmp::IcmpErrorKind as K;
    let mut h = Hub::new(2);
    let a = h.fe(1, "10.0.0.1/24");
    let b = h.fe(2, "10.0.0.2/24");
    let peer = ip("10.0.0.2");
    let id = a.tcp_connect(peer, 9).unwrap();
    assert!(h.run_until(2000, |_| a.tcp_status(id).unwrap().state == TcpState::Established));
    let data = common::pattern(256 << 10, 1);
    let mut sent = a.tcp_send(id, &data).unwrap();
    h.run_squeues();
    let flight = h.take_sent(0);
    let first = flight.iter().find_map(|f| tcp_data(f)).expect("a data segment").to_vec();
    assert!(first.len() > 1000);
    // A host unreachable about it aborts nothing.
    h.deliver(1, &icmp_error_frame(K::HostUnreachable, &first, peer, mac(2), mac(1)));
    h.run_squeues();
    assert_eq!(a.tcp_status(id).unwrap().state, TcpState::Established);
    // Bogus quotes: truncated, garbage, another conn's, out of window.
    let good = icmp_error_frame(K::FragNeeded { next_hop_mtu: 1000 }, &first, peer, mac(2), mac(1));
    for cut in [20 + 3, 20 + 6, 20, 12] {
        // A quote of under 8 TCP bytes (or no header at all).
        if let Ok(e) = arbalest_netstack::fireengine::icmp::build_error(K::FragNeeded { next_hop_mtu: 1000 }, &first[..cut], peer, 64, 7) {
            let mut f = [mac(1), mac(2)].concat();
            f.extend_from_slice(&[8, 0]);
            f.extend_from_slice(&e);
            h.deliver(1, &f);
        }
    }
    let mut other = first.clone();
    other[20] ^= 0x55; // another source port: no conn
    h.deliver(1, &icmp_error_frame(K::FragNeeded { next_hop_mtu: 1000 }, &other, peer, mac(2), mac(1)));
    let mut old = first.clone();
    old[24] = old[24].wrapping_add(0x80); // seq far out of window
    h.deliver(1, &icmp_error_frame(K::FragNeeded { next_hop_mtu: 1000 }, &old, peer, mac(2), mac(1)));
    for seed in 0..200u32 {
        let mut f = good.clone();
        let at = 34 + (seed as usize * 7) % (f.len() - 34);
        f[at] ^= (seed as u8) | 1;
        h.deliver(1, &f);
    }
    h.run_squeues();
    assert_eq!(tcp_mib(&a, "tcpPmtuDecreases"), 0, "only a valid quote cuts the MSS");
    assert!(tcp_mib(&a, "tcpInIcmpOutOfWindow") >= 1);
    // The real one: the flight was dropped.
    h.take_sent(0);
    h.deliver(1, &good);
    h.run_squeues();
    let frames = h.take_sent(0);
    for f in &frames {
        h.deliver(0, f);
    }
    let resent: Vec<&[u8]> = frames.iter().filter_map(|f| tcp_data(f)).collect();
    assert!(!resent.is_empty(), "nothing resent at once");
    assert_eq!(resent[0][24..28], first[24..28], "resent from the dropped segment");
    assert!(resent.iter().all(|d| d.len() <= 1000), "{:?}", resent.iter().map(|d| d.len()).collect::<Vec<_>>());
    assert_eq!(tcp_mib(&a, "tcpPmtuDecreases"), 1);
    assert!(icmp_mib(&a, "icmpInFragNeeded") >= 3, "counted in ICMP whatever TCP made of them");
    h.tapping = true;
    let ok = h.run_until(20_000, |_| {
        if sent < data.len() {
            sent += a.tcp_send(id, &data[sent..]).unwrap();
        }
        sent == data.len() && a.tcp_status(id).unwrap().unacked == 0
    });
    assert!(ok, "stalled: {:?}", a.tcp_status(id));
    let lens: Vec<usize> = h.tap.iter().filter(|(p, _)| *p == 0).filter_map(|(_, f)| tcp_data(f)).map(|d| d.len()).collect();
    assert!(lens.iter().all(|&n| n <= 1000), "{lens:?}");
    assert!(lens.iter().filter(|&&n| n == 1000).count() > 100, "full 1000-byte datagrams: {lens:?}");
    assert_eq!(tcp_mib(&a, "tcpTimRetrans"), 0, "resent at once, no timeout");
    // A new conn to the same destination starts with the learnt PMTU.
    h.tap.clear();
    let id2 = a.tcp_connect(peer, 9).unwrap();
    assert!(h.run_until(2000, |_| a.tcp_status(id2).unwrap().state == TcpState::Established));
    let mut sent2 = 0;
    assert!(h.run_until(5000, |_| {
        if sent2 < data.len() {
            sent2 += a.tcp_send(id2, &data[sent2..]).unwrap();
        }
        sent2 == data.len() && a.tcp_status(id2).unwrap().unacked == 0
    }));
    let lens: Vec<usize> = h.tap.iter().filter(|(p, _)| *p == 0).filter_map(|(_, f)| tcp_data(f)).map(|d| d.len()).collect();
    assert!(!lens.is_empty() && lens.iter().all(|&n| n <= 1000), "{lens:?}");
    assert_eq!(tcp_mib(&a, "tcpPmtuDecreases"), 1, "no ICMP needed the second time");
    // Port unreachable in SYN_SENT: refused.
    let id3 = a.tcp_connect(peer, 4444).unwrap();
    h.run_squeues();
    let syn = h.take_sent(0).into_iter().find(|f| f.get(14 + 9) == Some(&6)).expect("the SYN");
    h.deliver(1, &icmp_error_frame(K::PortUnreachable, &syn[14..], peer, mac(2), mac(1)));
    h.run_squeues();
    assert_eq!(a.tcp_status(id3).unwrap().state, TcpState::Refused);
    assert_eq!(tcp_mib(&a, "tcpIcmpConnRefused"), 1);
    assert_eq!(a.tcp_status(id).unwrap().state, TcpState::Established, "the first conn lives on");
    eprintln!(
        "tcpInIcmpErrors {} tcpInIcmpOutOfWindow {} tcpIcmpSoftErrors {} icmpInFragNeeded {}",
        tcp_mib(&a, "tcpInIcmpErrors"),
        tcp_mib(&a, "tcpInIcmpOutOfWindow"),
        tcp_mib(&a, "tcpIcmpSoftErrors"),
        icmp_mib(&a, "icmpInFragNeeded")
    );
    let _ = b;
}
