//! SYN cookies on a FireEngine instance, frame by frame: the echo
//! listener (port 7) with q0 filled by SYNs that never complete answers
//! the next SYN with a stateless SYN-ACK (`tcpSynCookiesSent`, no conn
//! kept); the client's ACK makes an ESTABLISHED conn (`tcpSynCookiesRecv`)
//! whose echo is byte-exact, data on that first ACK included; forged,
//! expired and wrong-MSS-index ACKs are refused with a RST and counted
//! (`tcpSynCookiesFailed`); and 100 000 SYNs keep the conn table bounded
//! while a real client still gets through. With `_syn_cookies` off the
//! SYN that finds q0 full is dropped (`tcpListenDropQ0`), as illumos.
//! At `_conn_max` conns a SYN, a cookie ACK and a local connect are
//! refused (the first two with a RST) and counted (`tcpConnMaxDrop`).

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arbalest_netstack::IpStack;
use arbalest_netstack::fireengine::instance::{FeInstance, FeSystem};
use arbalest_netstack::fireengine::squeue::SqEnv;
use arbalest_netstack::fireengine::tunables::{TcpTun, Tun};
use arbalest_netstack::fireengine::wire::arp::{ARP_REQUEST, ArpPacket};
use arbalest_netstack::fireengine::wire::ipv4::{IPPROTO_TCP, Ipv4Header};
use arbalest_netstack::fireengine::wire::tcp::{TcpFlags, TcpHeader, TcpOptions, Timestamps};
use common::{FakeLink, mac, net};

const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The echo listener's backlog; with `_conn_req_max_q0` 0 also its q0.
const Q0: usize = 128;

use common::FakeSqEnv as Env;

/// One instance (10.0.0.2/24), its q0 as small as the backlog, and the
/// TCP segments it sent to the host.
struct Rig {
    env: Arc<Env>,
    sys: Arc<FeSystem>,
    link: Arc<FakeLink>,
    inst: Arc<FeInstance>,
    got: Vec<(TcpHeader, Vec<u8>)>,
}

impl Rig {
    fn new(cookies: bool) -> Rig {
        let env = Arc::new(Env::default());
        env.now_ns.store(1_000_000_000, Ordering::SeqCst);
        let sys = FeSystem::new(2, env.clone(), 256 << 20);
        sys.tunables.set(Tun::Tcp(TcpTun::ConnReqMaxQ0), 0).unwrap();
        sys.tunables.set(Tun::Tcp(TcpTun::SynCookies), u32::from(cookies)).unwrap();
        let dma = Arc::new(Default::default());
        let link = FakeLink::new(&dma, "net0", mac(2));
        let inst = Arc::new(FeInstance::new(link.clone(), sys.clone(), 2).unwrap());
        inst.add_addr("net0/v4", net("10.0.0.2/24")).unwrap();
        let mut r = Rig { env, sys, link, inst, got: Vec::new() };
        r.run_ms(1000);
        assert_eq!(r.inst.addr_state("net0/v4"), Some("ok"));
        let req = ArpPacket { op: ARP_REQUEST, sha: mac(1), spa: HOST, tha: [0; 6], tpa: GUEST };
        r.inject(&eth(0x0806, &req.emit()));
        r.got.clear();
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
        let frames: Vec<Vec<u8>> = self.link.sent.lock().unwrap().drain(..).map(common::wire_bytes).collect();
        for f in frames {
            if f.len() < 14 || f[12..14] != [0x08, 0x00] {
                continue;
            }
            let Ok((ih, l4)) = Ipv4Header::parse(&f[14..], true) else { panic!("bad IPv4 from the guest") };
            if ih.protocol != IPPROTO_TCP {
                continue;
            }
            let (th, data) = TcpHeader::parse(l4, ih.src, ih.dst, true).expect("bad TCP from the guest");
            self.got.push((th, data.to_vec()));
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
        self.inst.mib().into_iter().flat_map(|(_, c)| c).find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no {name}")).1
    }

    fn conns(&self) -> usize {
        self.inst.tcp_endpoints().iter().filter(|e| e.remote.is_some()).count()
    }

    /// Sends a segment from the host's `sport` to port 7.
    fn send(&mut self, sport: u16, seq: u32, ack: u32, flags: TcpFlags, opts: TcpOptions, data: &[u8]) {
        let mut h = TcpHeader::new(sport, 7, seq, ack, flags, 65_535);
        h.options = opts;
        let hl = h.header_len();
        let mut seg = vec![0u8; hl + data.len()];
        seg[hl..].copy_from_slice(data);
        h.emit(&mut seg, HOST, GUEST).unwrap();
        let mut ih = Ipv4Header::new(HOST, GUEST, IPPROTO_TCP, seg.len() as u16);
        ih.ident = sport;
        let mut ip = vec![0u8; ih.header_len()];
        ih.emit(&mut ip).unwrap();
        ip.extend_from_slice(&seg);
        self.inject(&eth(0x0800, &ip));
    }

    /// Segments to `sport` since the last call.
    fn take(&mut self, sport: u16) -> Vec<(TcpHeader, Vec<u8>)> {
        let (mine, rest) = core::mem::take(&mut self.got).into_iter().partition(|(h, _)| h.dst_port == sport);
        self.got = rest;
        mine
    }

    /// Fills the echo listener's q0 with SYNs that are never answered.
    fn fill_q0(&mut self) {
        for i in 0..Q0 as u16 {
            self.send(20_000 + i, 1000 * u32::from(i), 0, TcpFlags::SYN, syn_opts(), &[]);
        }
        self.got.clear();
        assert_eq!(self.conns(), Q0, "q0 holds one eager per SYN");
    }
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&mac(2));
    f.extend_from_slice(&mac(1));
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A Linux-like SYN's options.
fn syn_opts() -> TcpOptions {
    let mut o = TcpOptions::new();
    o.mss = Some(1460);
    o.window_scale = Some(7);
    o.sack_permitted = true;
    o.timestamps = Some(Timestamps { tsval: 5000, tsecr: 0 });
    o
}

fn ts_opts(tsval: u32, tsecr: u32) -> TcpOptions {
    let mut o = TcpOptions::new();
    o.timestamps = Some(Timestamps { tsval, tsecr });
    o
}

/// A SYN from `sport` (ISN `isn`); returns the SYN-ACK.
fn syn(r: &mut Rig, sport: u16, isn: u32, opts: TcpOptions) -> TcpHeader {
    r.send(sport, isn, 0, TcpFlags::SYN, opts, &[]);
    let got = r.take(sport);
    assert_eq!(got.len(), 1, "one SYN-ACK for the SYN: {got:?}");
    let h = got[0].0;
    assert_eq!(h.flags, TcpFlags::SYN | TcpFlags::ACK, "{h:?}");
    assert_eq!(h.ack, isn.wrapping_add(1));
    h
}

/// Completes a cookie handshake from `sport` with `first` on the ACK,
/// then sends `rest`, and checks the echo of both, byte-exact. Returns
/// the client's ISN, the cookie (the SYN-ACK's sequence number) and the
/// SYN-ACK's TSval.
fn cookie_echo(r: &mut Rig, sport: u16, first: &[u8], rest: &[u8]) -> (u32, u32, u32) {
    let isn = 0x1234_5678u32.wrapping_add(u32::from(sport));
    let sa = syn(r, sport, isn, syn_opts());
    let ts = sa.options.timestamps.expect("the cookie SYN-ACK echoes timestamps");
    assert_eq!(ts.tsecr, 5000);
    assert!(sa.options.window_scale.is_some(), "window scale kept in the TSval: {sa:?}");
    assert!(sa.options.sack_permitted);
    let (mut seq, ack) = (isn.wrapping_add(1), sa.seq.wrapping_add(1));
    r.send(sport, seq, ack, TcpFlags::ACK | TcpFlags::PSH, ts_opts(5001, ts.tsval), first);
    seq = seq.wrapping_add(first.len() as u32);
    r.send(sport, seq, ack, TcpFlags::ACK | TcpFlags::PSH, ts_opts(5002, ts.tsval), rest);
    seq = seq.wrapping_add(rest.len() as u32);
    let want: Vec<u8> = first.iter().chain(rest).copied().collect();
    let mut echoed = Vec::new();
    for _ in 0..200 {
        let got = r.take(sport);
        let mut owe = None;
        for (h, d) in got {
            assert!(!h.flags.contains(TcpFlags::RST), "the cookie conn was reset: {h:?}");
            if !d.is_empty() && h.seq == ack.wrapping_add(echoed.len() as u32) {
                echoed.extend_from_slice(&d);
                owe = Some(ack.wrapping_add(echoed.len() as u32));
            }
        }
        if let Some(a) = owe {
            r.send(sport, seq, a, TcpFlags::ACK, ts_opts(5002, ts.tsval), &[]);
        }
        if echoed.len() >= want.len() {
            break;
        }
        r.run_ms(1);
    }
    if echoed != want {
        let eps: Vec<_> = r.inst.tcp_endpoints().into_iter().filter(|e| e.remote.map(|a| a.port()) == Some(sport)).collect();
        panic!(
            "echo through the cookie conn: got {} of {} bytes; recv {} failed {} listendrop {} inclosed {}; {eps:?}",
            echoed.len(),
            want.len(),
            r.mib("tcpSynCookiesRecv"),
            r.mib("tcpSynCookiesFailed"),
            r.mib("tcpListenDrop"),
            r.mib("tcpInClosed")
        );
    }
    // Close: FIN, the echo's FIN, our last ACK.
    r.send(sport, seq, ack.wrapping_add(want.len() as u32), TcpFlags::ACK | TcpFlags::FIN, ts_opts(5003, ts.tsval), &[]);
    let mut fin = None;
    for _ in 0..200 {
        fin = r.take(sport).into_iter().find(|(h, _)| h.flags.contains(TcpFlags::FIN)).map(|(h, _)| h);
        if fin.is_some() {
            break;
        }
        r.run_ms(1);
    }
    let fin = fin.expect("the echo service closes after our FIN");
    r.send(sport, seq.wrapping_add(1), fin.seq.wrapping_add(1), TcpFlags::ACK, ts_opts(5004, ts.tsval), &[]);
    (isn, sa.seq, ts.tsval)
}

#[test]
fn a_full_q0_answers_with_a_cookie_keeps_no_state_and_the_cookie_conn_echoes_byte_exact() {
    let mut r = Rig::new(true);
    r.fill_q0();
    let (sent0, q0drops) = (r.mib("tcpSynCookiesSent"), r.mib("tcpListenDropQ0"));
    let sa = syn(&mut r, 40_000, 777, syn_opts());
    assert_eq!(r.mib("tcpSynCookiesSent"), sent0 + 1);
    assert_eq!(r.mib("tcpListenDropQ0"), q0drops, "a cookie is not a drop");
    assert_eq!(r.conns(), Q0, "no state for the cookie SYN");
    assert_eq!(sa.options.mss, Some(1460));
    // The same SYN again draws the same cookie: nothing was kept.
    let sa2 = syn(&mut r, 40_000, 777, syn_opts());
    assert_eq!(sa2.seq, sa.seq);
    assert_eq!(r.conns(), Q0);

    // Data on the completing ACK, then more; the echo is byte-exact.
    let first: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
    let rest: Vec<u8> = (0..1400u32).map(|i| (i * 13 + 1) as u8).collect();
    cookie_echo(&mut r, 40_001, &first, &rest);
    assert_eq!(r.mib("tcpSynCookiesRecv"), 1);
    assert_eq!(r.mib("tcpSynCookiesFailed"), 0);
    assert!(r.mib("tcpPassiveOpens") >= 1);
}

#[test]
fn forged_expired_and_wrong_mss_cookies_are_refused_with_a_rst_and_counted() {
    let mut r = Rig::new(true);
    r.fill_q0();
    let isn = 9_000u32;
    let sa = syn(&mut r, 41_000, isn, syn_opts());
    let ts = sa.options.timestamps.unwrap().tsval;
    let seq = isn.wrapping_add(1);
    let good = sa.seq.wrapping_add(1);
    let refused = |r: &mut Rig, ack: u32, tsecr: u32| {
        let failed = r.mib("tcpSynCookiesFailed");
        r.send(41_000, seq, ack, TcpFlags::ACK, ts_opts(6000, tsecr), b"x");
        let got = r.take(41_000);
        assert!(
            got.iter().any(|(h, _)| h.flags.contains(TcpFlags::RST) && h.seq == ack),
            "a RST <SEQ=SEG.ACK> for a bad cookie: {got:?}"
        );
        assert_eq!(r.mib("tcpSynCookiesFailed"), failed + 1);
        assert_eq!(r.conns(), Q0, "no conn from a bad cookie");
    };
    // Forged: a MAC bit off.
    refused(&mut r, good ^ 0x0000_0100, ts);
    // Another MSS index: the low 3 bits of the top byte.
    for bit in [1u32, 2, 4] {
        refused(&mut r, good ^ (bit << 24), ts);
    }
    // Options changed in the TSecr (the MAC covers them).
    refused(&mut r, good, ts ^ 1);
    // Expired: two slots (128 s) later; a fresh SYN keeps q0 full.
    r.env.now_ns.fetch_add(130_000_000_000, Ordering::SeqCst);
    r.inst.poll_us(r.env.now_ns() / 1000);
    r.settle();
    r.send(41_999, 1, 0, TcpFlags::SYN, syn_opts(), &[]);
    r.got.clear();
    let conns = r.conns();
    let failed = r.mib("tcpSynCookiesFailed");
    r.send(41_000, seq, good, TcpFlags::ACK, ts_opts(6000, ts), b"x");
    let got = r.take(41_000);
    assert!(got.iter().any(|(h, _)| h.flags.contains(TcpFlags::RST)), "a RST for an expired cookie: {got:?}");
    assert_eq!(r.mib("tcpSynCookiesFailed"), failed + 1);
    assert_eq!(r.conns(), conns);
    assert_eq!(r.mib("tcpSynCookiesRecv"), 0);
}

#[test]
fn without_cookies_a_full_q0_drops_the_syn_as_illumos() {
    let mut r = Rig::new(false);
    r.fill_q0();
    r.send(42_000, 1, 0, TcpFlags::SYN, syn_opts(), &[]);
    assert!(r.take(42_000).is_empty(), "no answer with cookies off");
    assert_eq!(r.mib("tcpListenDropQ0"), 1);
    assert_eq!(r.mib("tcpSynCookiesSent"), 0);
    // And an ACK to the listener is just a segment for no conn.
    r.send(42_000, 2, 12345, TcpFlags::ACK, TcpOptions::new(), &[]);
    assert!(r.take(42_000).iter().any(|(h, _)| h.flags.contains(TcpFlags::RST)));
    assert_eq!(r.mib("tcpSynCookiesFailed"), 0);
    // `_syn_cookies` set at run time applies to the listener at once.
    r.sys.tunables.set(Tun::Tcp(TcpTun::SynCookies), 1).unwrap();
    syn(&mut r, 42_001, 3, syn_opts());
    assert_eq!(r.mib("tcpSynCookiesSent"), 1);
    r.sys.tunables.set(Tun::Tcp(TcpTun::SynCookies), 0).unwrap();
    r.send(42_002, 1, 0, TcpFlags::SYN, syn_opts(), &[]);
    assert!(r.take(42_002).is_empty());
    assert_eq!(r.mib("tcpListenDropQ0"), 2);
}

#[test]
fn a_flood_of_100000_syns_keeps_the_conn_table_bounded_and_a_real_client_connects() {
    let mut r = Rig::new(true);
    let mut x = 0x9e37_79b9u32;
    let mut most = 0;
    for i in 0..100_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let sport = 1024 + (i % 60_000) as u16;
        r.send(sport, x, 0, TcpFlags::SYN, syn_opts(), &[]);
        r.got.clear();
        if i % 1000 == 0 {
            most = most.max(r.conns());
            r.run_ms(10);
            r.got.clear();
        }
    }
    most = most.max(r.conns());
    assert!(most <= Q0, "at most q0's {Q0} eagers, saw {most}");
    let sent = r.mib("tcpSynCookiesSent");
    assert!(sent >= 90_000, "the SYNs past q0 drew cookies: {sent}");
    // A real client, during the flood's aftermath, still gets through.
    eprintln!(
        "recv {} failed {} listendrop {} halfopen {} conns {}",
        r.mib("tcpSynCookiesRecv"),
        r.mib("tcpSynCookiesFailed"),
        r.mib("tcpListenDrop"),
        r.mib("tcpHalfOpenDrop"),
        r.conns()
    );
    cookie_echo(&mut r, 100, b"still here", b" after 100000 SYNs");
    assert_eq!(r.mib("tcpSynCookiesRecv"), 1);
    eprintln!("flood: {sent} cookies sent, at most {most} eagers");
}

#[test]
fn data_queued_behind_the_cookie_ack_reaches_the_conn_the_ack_makes() {
    // On a busy machine the client's ACK and its first data are both
    // classified (no conn yet: to the listener) before the listener's
    // squeue runs either. The data must reach the conn the ACK made, not
    // be taken for a second cookie ACK and dropped (the client would then
    // wait out a retransmission timeout).
    let mut r = Rig::new(true);
    r.fill_q0();
    let sport = 41_000;
    let isn = 0x2222_0000u32;
    let sa = syn(&mut r, sport, isn, syn_opts());
    let ts = sa.options.timestamps.expect("timestamps");
    let (seq, ack) = (isn.wrapping_add(1), sa.seq.wrapping_add(1));
    let env = r.env.clone();
    let sqs: Vec<_> = (0..2).map(|i| r.sys.squeues.for_cpu(i).expect("squeue").clone()).collect();
    for sq in &sqs {
        assert!(sq.synch_enter(&*env), "nobody inside");
    }
    r.send(sport, seq, ack, TcpFlags::ACK, ts_opts(5001, ts.tsval), &[]);
    r.send(sport, seq, ack, TcpFlags::ACK | TcpFlags::PSH, ts_opts(5001, ts.tsval), b"first data");
    assert!(r.take(sport).is_empty(), "nothing ran while the squeues were held");
    for sq in &sqs {
        sq.synch_exit(&*env);
    }
    r.settle();
    let mut echoed = Vec::new();
    for _ in 0..50 {
        echoed.extend(r.take(sport).into_iter().flat_map(|(h, d)| {
            assert!(!h.flags.contains(TcpFlags::RST), "reset: {h:?}");
            d
        }));
        if !echoed.is_empty() {
            break;
        }
        r.run_ms(1);
    }
    assert_eq!(echoed, b"first data", "the echo, without a retransmission");
    assert_eq!(r.mib("tcpSynCookiesRecv"), 1, "one cookie conn");
    assert_eq!(r.mib("tcpInListenerReclassified"), 1);
    assert_eq!(r.conns(), Q0 + 1);
}

#[test]
fn a_late_copy_of_the_cookie_ack_after_the_conn_ended_makes_no_phantom_conn() {
    // The client's pure ACK is overtaken by its first data (another NIC
    // queue): the data makes the conn, which echoes and closes; the ACK
    // then reaches the listener with a cookie that is still valid. It must
    // not make a second conn that its client never knows (it would stay
    // ESTABLISHED for ever).
    let mut r = Rig::new(true);
    r.fill_q0();
    let sport = 42_000;
    let (isn, cookie, tsval) = cookie_echo(&mut r, sport, b"data on the first ACK", b"and more");
    r.run_ms(10);
    assert_eq!(r.conns(), Q0, "the cookie conn ended");
    assert_eq!(r.mib("tcpSynCookiesRecv"), 1);
    r.send(sport, isn.wrapping_add(1), cookie.wrapping_add(1), TcpFlags::ACK, ts_opts(5001, tsval), &[]);
    r.run_ms(10);
    assert_eq!(r.conns(), Q0, "a phantom conn from the late ACK: {:?}", r.inst.tcp_endpoints().iter().filter(|e| e.remote.map(|a| a.port()) == Some(sport)).collect::<Vec<_>>());
    assert_eq!(r.mib("tcpSynCookiesReplayed"), 1);
    assert_eq!(r.mib("tcpSynCookiesRecv"), 1);
    assert!(r.take(sport).is_empty(), "nothing sent for it");
}

/// illumos' q0 policy before any cookie: an eager whose SYN-ACK timed out
/// once is droppable, and a new SYN on a full q0 takes the place of the
/// one that became droppable first (`tcpHalfOpenDrop`) instead of drawing
/// a cookie.
#[test]
fn a_full_q0_drops_an_eager_that_timed_out_before_answering_with_cookies() {
    let mut r = Rig::new(true);
    r.fill_q0();
    // Fresh eagers: nothing is droppable, so a cookie.
    syn(&mut r, 43_000, 7, syn_opts());
    assert_eq!((r.mib("tcpSynCookiesSent"), r.mib("tcpHalfOpenDrop")), (1, 0));
    // Past the first SYN-ACK retransmission (the initial RTO, 1 s).
    r.run_ms(1500);
    r.got.clear();
    let h = syn(&mut r, 43_001, 9, syn_opts());
    assert_eq!(r.mib("tcpHalfOpenDrop"), 1, "a timed-out eager made room");
    assert_eq!(r.mib("tcpSynCookiesSent"), 1, "no cookie for this one");
    assert_eq!(r.conns(), Q0, "one eager out, one in");
    // It is a real eager: its handshake completes and it echoes.
    r.send(43_001, 10, h.seq.wrapping_add(1), TcpFlags::ACK, TcpOptions::new(), b"ping");
    let echoed: Vec<u8> = r.take(43_001).into_iter().flat_map(|(_, d)| d).collect();
    assert_eq!(echoed, b"ping");
}

#[test]
fn at_conn_max_a_syn_a_cookie_ack_and_a_local_connect_are_refused_with_a_rst_and_counted() {
    let mut r = Rig::new(false);
    r.sys.tunables.set(Tun::Tcp(TcpTun::ConnMax), 3).unwrap();
    for i in 0..3u16 {
        syn(&mut r, 30_000 + i, 7000 * u32::from(i), syn_opts());
    }
    assert_eq!(r.conns(), 3);
    // The fourth SYN: a RST, no conn.
    r.send(30_003, 99, 0, TcpFlags::SYN, syn_opts(), &[]);
    let got = r.take(30_003);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].0.flags.contains(TcpFlags::RST) && got[0].0.ack == 100, "{:?}", got[0].0);
    assert_eq!((r.conns(), r.mib("tcpConnMaxDrop")), (3, 1));
    // A local connect fails at once, counted too.
    assert_eq!(r.inst.tcp_connect(HOST, 80).err(), Some(arbalest_netstack::NetError::TooManyConnections));
    assert_eq!(r.mib("tcpConnMaxDrop"), 2);
    assert!(r.take(80).is_empty(), "nothing sent for the refused connect");
    // Room again: the next SYN gets its SYN-ACK.
    r.sys.tunables.set(Tun::Tcp(TcpTun::ConnMax), 4).unwrap();
    syn(&mut r, 30_004, 5, syn_opts());
    assert_eq!((r.conns(), r.mib("tcpConnMaxDrop")), (4, 2));

    // A cookie ACK that finds the table full: a RST, no conn; with room,
    // a cookie handshake completes and echoes.
    let mut r = Rig::new(true);
    r.sys.tunables.set(Tun::Tcp(TcpTun::ConnMax), 1000).unwrap();
    r.fill_q0();
    let isn = 0x4000_0000u32;
    let sa = syn(&mut r, 31_000, isn, syn_opts());
    assert_eq!(r.mib("tcpSynCookiesSent"), 1);
    r.sys.tunables.set(Tun::Tcp(TcpTun::ConnMax), Q0 as u32).unwrap();
    let ts = sa.options.timestamps.unwrap();
    r.send(31_000, isn.wrapping_add(1), sa.seq.wrapping_add(1), TcpFlags::ACK, ts_opts(5001, ts.tsval), &[]);
    let got = r.take(31_000);
    assert!(got.len() == 1 && got[0].0.flags.contains(TcpFlags::RST), "{got:?}");
    assert_eq!((r.conns(), r.mib("tcpConnMaxDrop")), (Q0, 1));
    r.sys.tunables.set(Tun::Tcp(TcpTun::ConnMax), 1000).unwrap();
    cookie_echo(&mut r, 31_001, b"first", b"and the rest");
}
