//! The loopback and TCP fusion of a FireEngine instance, on one instance
//! over a fake link: TCP to 127.0.0.1 and to the instance's own address
//! never puts a frame on the link; a loopback pair is fused once its
//! handshake completes (its data then skips TCP: no data segments), with
//! the sender stopped by the reader's unread bytes and woken when the
//! reader drains; urgent data and closing unfuse it with the stream kept
//! whole and in order; `do_tcp_fusion` 0 keeps loopback TCP plain.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arbalest_netstack::fireengine::instance::{FeInstance, FeSystem};
use arbalest_netstack::fireengine::tcp::state::State;
use arbalest_netstack::fireengine::tcp_pcb::TcpSocket;
use arbalest_netstack::fireengine::tunables::{TcpTun, Tun};
use arbalest_netstack::IpStack;
use common::{FakeLink, FakeSqEnv as Env, ip, mac, net};

const OWN: &str = "10.0.0.1";

struct One {
    env: Arc<Env>,
    sys: Arc<FeSystem>,
    link: Arc<FakeLink>,
    inst: Arc<FeInstance>,
}

impl One {
    fn new() -> One {
        let env = Arc::new(Env::default());
        env.now_ns.store(1_000_000_000, Ordering::SeqCst);
        // Small tables: the timer scan walks them every tick.
        let sys = FeSystem::new(2, env.clone(), 16 << 20);
        let dma = Arc::new(arbalest_mac::dma::host::HeapDma::default());
        let link = FakeLink::new(&dma, "fe1", mac(1));
        let inst = Arc::new(FeInstance::new(link.clone(), sys.clone(), 1).unwrap());
        inst.add_addr("fe1/v4", net(&format!("{OWN}/24"))).unwrap();
        let mut o = One { env, sys, link, inst };
        for _ in 0..2000 {
            if o.inst.addr_state("fe1/v4") == Some("ok") {
                break;
            }
            o.tick();
        }
        assert_eq!(o.inst.addr_state("fe1/v4"), Some("ok"));
        // DAD's ARP probes and announcements went on the link; nothing
        // else may from here on.
        o.link.sent.lock().unwrap().clear();
        o
    }

    fn tick(&mut self) {
        while let Some(sq) = self.env.wakes.lock().unwrap().pop_front() {
            self.sys.worker_drain(sq);
        }
        self.env.now_ns.fetch_add(1_000_000, Ordering::SeqCst);
        self.inst.poll_us(self.env.now_ns.load(Ordering::SeqCst) / 1000);
        while let Some(sq) = self.env.wakes.lock().unwrap().pop_front() {
            self.sys.worker_drain(sq);
        }
    }

    fn until(&mut self, ms: u64, mut done: impl FnMut(&mut One) -> bool) -> bool {
        for _ in 0..ms {
            if done(self) {
                return true;
            }
            self.tick();
        }
        done(self)
    }

    fn tcp(&self, name: &str) -> u64 {
        self.inst.mib().into_iter().find(|(s, _)| *s == "TCP").unwrap().1.into_iter().find(|(n, _)| *n == name).unwrap().1
    }

    fn frames_sent(&self) -> usize {
        self.link.sent.lock().unwrap().len()
    }

    /// A connected pair: (client, accepted server side) to `dst:port`.
    fn pair(&mut self, dst: &str, port: u16) -> (TcpSocket, TcpSocket, TcpSocket) {
        let l = self.inst.tcp_listen(Ipv4Addr::UNSPECIFIED, port, 16).unwrap();
        let c = self.inst.tcp_open(ip(dst), port).unwrap();
        let mut s = None;
        assert!(self.until(1000, |_| {
            if s.is_none() {
                s = l.accept().unwrap();
            }
            s.is_some() && c.state() == State::Established
        }));
        (l, c, s.unwrap())
    }
}

/// Sends all of `data` on `w`, ticking while its room is full.
fn send_all(o: &mut One, w: &TcpSocket, data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        off += w.send(&data[off..]).unwrap();
        o.tick();
    }
}

fn pattern(off: u64) -> u8 {
    arbalest_netstack::admin::ttcp::pattern_byte(off)
}

/// Writes `total` pattern bytes into `w` and reads them from `r`,
/// checking each; returns the most `w` ever had unread at `r`.
fn stream(o: &mut One, w: &TcpSocket, r: &TcpSocket, total: u64) -> usize {
    let (mut sent, mut got) = (0u64, 0u64);
    let mut buf = vec![0u8; 20_000];
    let mut most = 0;
    let mut idle = 0;
    while got < total {
        let mut moved = false;
        while sent < total {
            let n = ((total - sent) as usize).min(16 * 1024);
            let chunk: Vec<u8> = (0..n as u64).map(|i| pattern(sent + i)).collect();
            let k = w.send(&chunk).unwrap();
            if k == 0 {
                break;
            }
            sent += k as u64;
            moved = true;
        }
        most = most.max((sent - got) as usize);
        loop {
            let n = r.recv(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            for (i, &b) in buf[..n].iter().enumerate() {
                assert_eq!(b, pattern(got + i as u64), "byte {}", got + i as u64);
            }
            got += n as u64;
            moved = true;
        }
        if !moved {
            idle += 1;
            assert!(idle < 5000, "stalled at {sent} sent, {got} read");
            o.tick();
        } else {
            idle = 0;
        }
    }
    most
}

#[test]
fn loopback_tcp_to_127_and_to_our_own_address_is_fused_and_puts_nothing_on_the_link() {
    let mut o = One::new();
    let segs0 = o.tcp("tcpOutDataSegs");
    for (i, dst) in ["127.0.0.1", OWN].into_iter().enumerate() {
        let (_l, c, s) = o.pair(dst, 5000 + i as u16);
        assert_eq!(c.local().ip(), &ip(dst), "from the address it goes to");
        assert!(o.until(10, |o| o.tcp("tcpFusionFused") == i as u64 + 1), "the pair is fused once established");
        stream(&mut o, &c, &s, 8 << 20);
        stream(&mut o, &s, &c, 1 << 20);
        assert_eq!(o.tcp("tcpOutDataSegs"), segs0, "no data segment while fused");
        // Closing unfuses; the FIN goes through the loopback as plain TCP.
        c.shutdown_write().unwrap();
        assert!(o.until(100, |_| s.peer_closed()), "the server hears the FIN");
        s.shutdown_write().unwrap();
        assert!(o.until(100, |_| c.peer_closed() && c.unacked() == 0 && s.unacked() == 0));
        assert_eq!(o.tcp("tcpFusionUnfused"), i as u64 + 1);
    }
    assert!(o.tcp("tcpFusionBytes") >= 2 * (9 << 20));
    assert_eq!(o.tcp("tcpFusionUnqualified") + o.tcp("tcpFusionDisabled"), 0);
    assert_eq!(o.frames_sent(), 0, "nothing on the link");
    let ipm = o.inst.mib().into_iter().find(|(s, _)| *s == "IPv4").unwrap().1;
    assert!(ipm.iter().any(|(n, v)| *n == "ipLoopbackDatagrams" && *v > 0));
}

#[test]
fn with_do_tcp_fusion_off_loopback_tcp_is_plain_tcp() {
    let mut o = One::new();
    o.sys.tunables.set(Tun::Tcp(TcpTun::DoFusion), 0).unwrap();
    let segs0 = o.tcp("tcpOutDataSegs");
    let (_l, c, s) = o.pair("127.0.0.1", 5000);
    stream(&mut o, &c, &s, 4 << 20);
    stream(&mut o, &s, &c, 1 << 20);
    assert_eq!(o.tcp("tcpFusionFused"), 0);
    assert_eq!(o.tcp("tcpFusionDisabled"), 1, "the pair is counted once");
    // The loopback's MSS (8192, illumos' `lo0` MTU 8232), not the
    // link's 1460.
    let segs = o.tcp("tcpOutDataSegs") - segs0;
    assert!(segs > 0 && segs < (5 << 20) / 4096, "{segs} data segments for 5 MiB");
    assert_eq!(o.frames_sent(), 0, "nothing on the link");
}

#[test]
fn a_fused_reader_that_stops_stops_the_writer_and_its_reading_resumes_it() {
    let mut o = One::new();
    let (_l, c, s) = o.pair(OWN, 5000);
    assert!(o.until(10, |o| o.tcp("tcpFusionFused") == 1));
    // The reader reads nothing: the writer fills its room and stops.
    let chunk = vec![7u8; 4096];
    let mut sent = 0usize;
    for _ in 0..10_000 {
        let k = c.send(&chunk).unwrap();
        if k == 0 {
            o.tick();
            if c.send(&chunk).unwrap() == 0 {
                break;
            }
            continue;
        }
        sent += k;
    }
    assert!(sent > 0 && c.send_room() == 0, "stopped after {sent}");
    assert!(s.readable() == sent, "every byte is on the reader's queue");
    let bound = 1 << 20;
    assert!(sent <= bound, "{sent} bytes buffered: more than any buffer");
    for _ in 0..50 {
        o.tick();
    }
    assert_eq!(c.send(&chunk).unwrap(), 0, "still stopped while the reader waits");
    assert!(o.tcp("tcpFusionFlowctl") >= 1);
    // Reading resumes it.
    let mut buf = vec![0u8; sent];
    assert_eq!(s.recv(&mut buf).unwrap(), sent);
    assert!(o.until(10, |_| c.send_room() > 0), "the writer is woken");
    assert!(o.tcp("tcpFusionBackenabled") >= 1);
    stream(&mut o, &c, &s, 2 << 20);
    assert_eq!(o.frames_sent(), 0);
}

#[test]
fn the_fused_unread_block_limit_stops_a_sender_of_small_writes() {
    let mut o = One::new();
    o.sys.tunables.set(Tun::Tcp(TcpTun::FusionRcvUnreadMin), 3).unwrap();
    let (_l, c, s) = o.pair("127.0.0.1", 5000);
    assert!(o.until(10, |o| o.tcp("tcpFusionFused") == 1));
    // 8 KiB writes each stay a block of their own (small ones would join
    // the last): the third stops the sender, with bytes room to spare.
    let chunk = vec![1u8; 8192];
    let mut n = 0;
    while c.send(&chunk).unwrap() > 0 {
        n += 1;
        o.tick();
        assert!(n < 100);
    }
    assert_eq!(n, 3, "stopped at the third unread block");
    let mut buf = vec![0u8; 8192];
    assert_eq!(s.recv(&mut buf).unwrap(), 8192);
    assert!(o.until(10, |_| c.send_room() > 0));
}

#[test]
fn urgent_data_unfuses_the_pair_and_the_stream_stays_in_order() {
    let mut o = One::new();
    let segs0 = o.tcp("tcpOutDataSegs");
    let (_l, c, s) = o.pair("127.0.0.1", 5000);
    assert!(o.until(10, |o| o.tcp("tcpFusionFused") == 1));
    // 40 000 bytes fused and not read (less than the room), then an
    // urgent byte, then more.
    let a: Vec<u8> = (0..40_000u64).map(pattern).collect();
    send_all(&mut o, &c, &a);
    assert!(c.send_urgent(b'!').unwrap());
    let b = b"after the mark".to_vec();
    assert!(o.until(100, |_| c.send(&b).unwrap() == b.len()));
    assert_eq!(o.tcp("tcpFusionUrg"), 1);
    assert_eq!(o.tcp("tcpFusionUnfused"), 1);
    let mut all = Vec::new();
    let mut buf = vec![0u8; 65536];
    assert!(o.until(2000, |_| {
        let n = s.recv(&mut buf).unwrap();
        all.extend_from_slice(&buf[..n]);
        all.len() == a.len() + 1 + b.len()
    }));
    let mut want = a.clone();
    want.push(b'!');
    want.extend_from_slice(&b);
    assert!(all == want, "the stream is whole and in order");
    assert!(o.tcp("tcpOutDataSegs") > segs0, "plain TCP after unfusing");
    // And it goes on as plain TCP both ways, never fused again.
    stream(&mut o, &s, &c, 1 << 20);
    stream(&mut o, &c, &s, 1 << 20);
    assert_eq!(o.tcp("tcpFusionFused"), 1);
    assert_eq!(o.frames_sent(), 0);
}

#[test]
fn closing_a_fused_conn_with_unread_bytes_delivers_them_before_the_fin() {
    let mut o = One::new();
    let (_l, c, s) = o.pair(OWN, 5000);
    assert!(o.until(10, |o| o.tcp("tcpFusionFused") == 1));
    let a: Vec<u8> = (0..40_000u64).map(pattern).collect();
    send_all(&mut o, &c, &a);
    drop(c);
    let mut all = Vec::new();
    let mut buf = vec![0u8; 7000];
    assert!(o.until(2000, |_| {
        loop {
            let n = s.recv(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        s.peer_closed()
    }));
    assert!(all == a, "{} of {} bytes, in order, then the FIN", all.len(), a.len());
    drop(s);
    assert!(o.until(1000, |o| o.inst.tcp_endpoints().iter().all(|e| e.state == "LISTEN" || e.state == "TIME_WAIT")));
    assert_eq!(o.frames_sent(), 0);
}

#[test]
fn a_loopback_connect_to_a_closed_port_is_refused_without_a_frame() {
    let mut o = One::new();
    let c = o.inst.tcp_open(ip("127.0.0.1"), 4444).unwrap();
    assert!(o.until(100, |_| c.error().is_some()));
    assert_eq!(c.error(), Some(arbalest_netstack::NetError::ConnectionRefused));
    assert_eq!(o.tcp("tcpFusionFused"), 0);
    assert_eq!(o.frames_sent(), 0);
}
