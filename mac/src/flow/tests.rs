//! Tests of flows: descriptors, classification, the data path through a
//! MAC client on the fake NIC, `flowadm`, `flowstat` and the history.
//! The flow and link registries are global and shared with the tests
//! running in parallel: each test names its flows and VNICs with its own
//! prefix, and its [`TestEnv`] shows only its own links.

use std::format;
use std::string::{String, ToString};
use std::sync::{Arc, Mutex};
use std::vec;
use std::vec::Vec;

use core::cell::{Cell, RefCell};

use super::desc::{AttrError, FlowDesc, FlowMask, IpPrefix, Transport};
use super::entry::{FlowEntry, FlowProps};
use super::packet::{self, Dir};
use super::registry;
use super::table::{FlowTable, TableError};
use crate::admin::{AdminEnv, DladmEnv, dladm, dlstat, flowadm, flowstat};
use crate::buf::BufPool;
use crate::dma::DmaAllocator;
use crate::dma::host::HeapDma;
use crate::fake::FakeNic;
use crate::history::{self, History, Kind};
use crate::link::{self, Datalink};
use crate::mac::Mac;
use crate::mblk::{Mblk, MblkChain};
use crate::props::Priority;

// ---- helpers ----

fn nic() -> (Arc<FakeNic>, Arc<Mac>) {
    let nic = FakeNic::new(1, 1);
    let mac = nic.register().unwrap();
    mac.start().unwrap();
    (nic, mac)
}

/// The links a test's commands see: its physical links and the VNICs and
/// etherstubs named with its prefix.
struct TestEnv {
    phys: Vec<Arc<Mac>>,
    prefix: &'static str,
}

impl TestEnv {
    fn new(phys: &[Arc<Mac>], prefix: &'static str) -> TestEnv {
        TestEnv { phys: phys.to_vec(), prefix }
    }
    fn flowadm(&self, args: &[&str]) -> (i32, String) {
        let mut argv = vec!["flowadm"];
        argv.extend_from_slice(args);
        let mut out = String::new();
        let st = flowadm(&argv, self, &mut out);
        (st, out)
    }
    fn dladm(&self, args: &[&str]) -> (i32, String) {
        let mut argv = vec!["dladm"];
        argv.extend_from_slice(args);
        let mut out = String::new();
        let st = dladm(&argv, self, &mut out);
        (st, out)
    }
    fn links(&self) -> Vec<Datalink> {
        self.datalinks()
    }
}

impl DladmEnv for TestEnv {
    fn datalinks(&self) -> Vec<Datalink> {
        let mut v: Vec<Datalink> = self.phys.iter().cloned().map(Datalink::Phys).collect();
        v.extend(link::datalinks().into_iter().filter(|l| !matches!(l, Datalink::Phys(_)) && l.name().starts_with(self.prefix)));
        v
    }
    fn entropy(&self) -> u64 {
        0x5eed
    }
    fn cpu_count(&self) -> usize {
        2
    }
    fn dma(&self) -> Arc<dyn DmaAllocator> {
        Arc::new(HeapDma::default())
    }
}

/// A clock that advances only when slept: `hook(elapsed_ms)` runs at each
/// sleep; interrupted once `stop_ms` have passed.
struct Clock {
    elapsed: Cell<u64>,
    stop_ms: u64,
    hook: RefCell<std::boxed::Box<dyn FnMut(u64)>>,
}

impl Clock {
    fn new(stop_ms: u64, hook: impl FnMut(u64) + 'static) -> Clock {
        Clock { elapsed: Cell::new(0), stop_ms, hook: RefCell::new(std::boxed::Box::new(hook)) }
    }
    fn once() -> Clock {
        Clock::new(0, |_| panic!("no sleeping without -i"))
    }
}

impl AdminEnv for Clock {
    fn sleep_ms(&self, ms: u64) {
        self.elapsed.set(self.elapsed.get() + ms);
        (self.hook.borrow_mut())(self.elapsed.get());
    }
    fn interrupted(&self) -> bool {
        self.elapsed.get() >= self.stop_ms
    }
}

fn run_flowstat(args: &[&str], env: &dyn AdminEnv) -> (i32, String) {
    let mut argv = vec!["flowstat"];
    argv.extend_from_slice(args);
    let mut out = String::new();
    let st = flowstat(&argv, &mut out, env);
    (st, out)
}

fn run_dlstat(args: &[&str], links: &[Datalink]) -> (i32, String) {
    let mut argv = vec!["dlstat"];
    argv.extend_from_slice(args);
    let mut out = String::new();
    let st = dlstat(&argv, links, &mut out, &Clock::once());
    (st, out)
}

/// Lines with whitespace runs collapsed (the manual aligns with tabs).
fn norm(s: &str) -> Vec<String> {
    s.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|l| !l.is_empty()).collect()
}

const OUR_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const PEER_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x65, 0x43, 0x21];

/// An Ethernet + IPv4 frame: `proto` from `src`:`sport` to `dst`:`dport`
/// with TOS `tos` and fragment offset `frag` (8-byte units), to `dmac`.
#[allow(clippy::too_many_arguments)]
fn v4(dmac: [u8; 6], smac: [u8; 6], proto: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, tos: u8, frag: u16) -> Vec<u8> {
    let mut f = vec![0u8; 74];
    f[0..6].copy_from_slice(&dmac);
    f[6..12].copy_from_slice(&smac);
    f[12] = 0x08;
    f[14] = 0x45;
    f[15] = tos;
    f[16..18].copy_from_slice(&60u16.to_be_bytes());
    f[20..22].copy_from_slice(&frag.to_be_bytes());
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f
}

/// Received (to us) IPv4: remote 10.0.0.1, local 10.0.0.2.
fn rx4(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    v4(OUR_MAC, PEER_MAC, proto, [10, 0, 0, 1], [10, 0, 0, 2], sport, dport, 0, 0)
}

/// Sent (by us) IPv4: local 10.0.0.2, remote 10.0.0.1.
fn tx4(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    v4(PEER_MAC, OUR_MAC, proto, [10, 0, 0, 2], [10, 0, 0, 1], sport, dport, 0, 0)
}

fn v6(proto: u8, src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, tc: u8) -> Vec<u8> {
    let mut f = vec![0u8; 94];
    f[0..6].copy_from_slice(&OUR_MAC);
    f[6..12].copy_from_slice(&PEER_MAC);
    f[12] = 0x86;
    f[13] = 0xdd;
    f[14] = 0x60 | (tc >> 4);
    f[15] = tc << 4;
    f[18..20].copy_from_slice(&40u16.to_be_bytes());
    f[20] = proto;
    f[21] = 64;
    f[22..38].copy_from_slice(&src);
    f[38..54].copy_from_slice(&dst);
    f[54..56].copy_from_slice(&sport.to_be_bytes());
    f[56..58].copy_from_slice(&dport.to_be_bytes());
    f
}

fn ip6(s: &str) -> [u8; 16] {
    s.parse::<core::net::Ipv6Addr>().unwrap().octets()
}

fn desc(a: &str) -> FlowDesc {
    FlowDesc::parse(&[a]).unwrap_or_else(|e| panic!("{a}: {e}"))
}

fn entry(name: &str, a: &str) -> Arc<FlowEntry> {
    Arc::new(FlowEntry::detached(name, desc(a), FlowProps::default()))
}

fn table(flows: &[(&str, &str)]) -> FlowTable {
    let mut t = FlowTable::new();
    for (n, a) in flows {
        t.insert(entry(n, a)).unwrap_or_else(|e| panic!("{n}: {e:?}"));
    }
    t
}

fn hit(t: &FlowTable, f: &[u8], dir: Dir) -> Option<String> {
    t.classify(f, dir).map(|e| String::from(e.name()))
}

fn pool() -> Arc<BufPool> {
    BufPool::new(Arc::new(HeapDma::default()), 2048, 4096).unwrap()
}

fn mblk(pool: &Arc<BufPool>, f: &[u8]) -> Mblk {
    let mut m = Mblk::new(pool.alloc().expect("buffer"));
    assert!(m.append(f));
    m
}

fn chain(pool: &Arc<BufPool>, frames: &[Vec<u8>]) -> MblkChain {
    frames.iter().map(|f| mblk(pool, f)).collect()
}

/// Attaches a receive function recording the local (destination) port of
/// each packet, chain by chain.
fn record_rx(mac: &Mac) -> Arc<Mutex<Vec<Vec<u16>>>> {
    let seen: Arc<Mutex<Vec<Vec<u16>>>> = Arc::default();
    let s2 = seen.clone();
    mac.set_rx(Some(Arc::new(move |c: MblkChain| {
        let ports = c.iter().map(|m| u16::from_be_bytes([m.data()[36], m.data()[37]])).collect();
        s2.lock().unwrap().push(ports);
    })));
    seen
}

fn send(mac: &Mac, f: &[u8]) {
    let c = mac.primary();
    let mut m = c.alloc_tx(f.len()).expect("tx buffer");
    m.data_mut().copy_from_slice(f);
    c.tx(m);
}

// ---- descriptors ----

#[test]
fn descriptors_parse_the_manuals_attributes() {
    let d = desc("transport=TCP,local_port=443");
    assert_eq!((d.transport, d.local_port, d.mask()), (Some(Transport::Tcp), Some(443), FlowMask(4 | 8)));
    let d = desc("transport=tcp,local_ip=192.168.200.102,local_port=443,remote_ip=192.168.200.104,remote_port=12785");
    assert_eq!(d.columns(), ["tcp", "192.168.200.102", "443", "192.168.200.104", "12785", "--"].map(String::from));
    let d = desc("dsfield=0x2e:0xfc");
    assert_eq!(d.dsfield, Some((0x2e, 0xfc)));
    assert_eq!(d.columns()[5], "0x2e:0xfc");
    assert_eq!(desc("dsfield=0x2e").dsfield, Some((0x2e, 0xff)));
    assert_eq!(desc("local_ip=10.1.2.3/8").columns()[1], "10.0.0.0/8");
    assert_eq!(desc("remote_ip=fe80::1").columns()[3], "fe80::1");
    assert_eq!(desc("remote_ip=2001:db8::/32").columns()[3], "2001:db8::/32");
    assert_eq!(desc("Transport=Icmpv6").transport, Some(Transport::Icmpv6));
    assert_eq!(desc("transport=sctp,remote_port=9").columns()[4], "9");
    // -a given twice is one list.
    let d = FlowDesc::parse(&["transport=udp", "local_port=53"]).unwrap();
    assert_eq!((d.transport, d.local_port), (Some(Transport::Udp), Some(53)));
    let p = IpPrefix::parse("10.9.8.7/24").unwrap();
    assert!(p.contains(false, &[10, 9, 8, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert!(!p.contains(false, &[10, 9, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert!(!p.contains(true, &[10, 9, 8, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
}

#[test]
fn descriptors_refuse_what_the_manual_refuses() {
    let err = |a: &str| FlowDesc::parse(&[a]).unwrap_err();
    // The manual's invalid examples.
    assert_eq!(err("local_port=80,local_port=8080"), AttrError::Duplicate("local_port"));
    assert_eq!(err("remote_port=25"), AttrError::PortNeedsTransport("remote_port"));
    assert_eq!(err("transport=icmpv6,remote_port=16"), AttrError::NoPortFor(Transport::Icmpv6, "remote_port"));
    assert_eq!(err("transport=icmp,local_port=7"), AttrError::NoPortFor(Transport::Icmp, "local_port"));
    assert_eq!(err("transport=tcp,transport=udp"), AttrError::Duplicate("transport"));
    assert_eq!(err("local_ip=10.0.0.1,remote_ip=fe80::1"), AttrError::MixedFamilies);
    assert_eq!(err("local_ip=10.0.0.1,remote_ip=10.0.0.2"), AttrError::Combination(FlowMask(1 | 2)));
    assert_eq!(err("transport=tcp,local_port=1,remote_port=2"), AttrError::Combination(FlowMask(4 | 8 | 16)));
    assert_eq!(err("transport=tcp,local_ip=10.0.0.1"), AttrError::Combination(FlowMask(4 | 1)));
    assert_eq!(err("dsfield=0x2e,transport=tcp"), AttrError::Combination(FlowMask(32 | 4)));
    assert_eq!(err("colour=red"), AttrError::Unknown(String::from("colour")));
    assert_eq!(err("transport"), AttrError::Syntax(String::from("transport")));
    assert_eq!(err("=tcp"), AttrError::Syntax(String::from("=tcp")));
    assert_eq!(FlowDesc::parse(&[]).unwrap_err(), AttrError::Empty);
    for bad in [
        "transport=frob",
        "transport=tcp,local_port=0",
        "transport=tcp,local_port=70000",
        "transport=tcp,local_port=http",
        "transport=tcp,local_port=+80",
        "local_ip=10.0.0.300",
        "local_ip=10.0.0.1/33",
        "local_ip=10.0.0.1/0",
        "local_ip=10.0.0.1/",
        "remote_ip=fe80::1/129",
        "remote_ip=",
        "dsfield=46",
        "dsfield=0x100",
        "dsfield=0x2e:0x00",
        "dsfield=0x2e:",
        "dsfield=0x",
    ] {
        assert!(matches!(err(bad), AttrError::BadValue(..)), "{bad}: {:?}", FlowDesc::parse(&[bad]));
    }
    assert_eq!(
        err("remote_port=25").to_string(),
        "'remote_port' requires transport=tcp, udp or sctp"
    );
    assert_eq!(err("transport=icmpv6,remote_port=16").to_string(), "transport=icmpv6 takes no port ('remote_port' given)");
    assert_eq!(err("dsfield=0x2e:0x00").to_string(), "invalid value '0x2e:0x00' for flow attribute 'dsfield': the mask must be 0x01-0xff");
    assert!(registry::valid_flow_name("abcdefghijklmnopqrstuvwxyzabcd1"));
    assert!(registry::valid_flow_name("a_b.c-d9"));
    for bad in ["abcdefghijklmnopqrstuvwxyzabcde1", "1flow", "", "-x", "_x", "x!", "a b", "é"] {
        assert!(!registry::valid_flow_name(bad), "{bad}");
    }
}

// ---- classification ----

#[test]
fn direction_decides_local_and_remote() {
    let t = table(&[("p80", "transport=tcp,local_port=80")]);
    // Received for our port 80 / sent from it.
    assert_eq!(hit(&t, &rx4(6, 40000, 80), Dir::Rx).as_deref(), Some("p80"));
    assert_eq!(hit(&t, &tx4(6, 80, 40000), Dir::Tx).as_deref(), Some("p80"));
    // Our requests to a remote port 80 are not the local service.
    assert_eq!(hit(&t, &tx4(6, 40000, 80), Dir::Tx), None);
    assert_eq!(hit(&t, &rx4(6, 80, 40000), Dir::Rx), None);
    assert_eq!(hit(&t, &rx4(17, 40000, 80), Dir::Rx), None, "udp is not tcp");
    let t = table(&[("r25", "transport=tcp,remote_port=25")]);
    assert_eq!(hit(&t, &tx4(6, 40000, 25), Dir::Tx).as_deref(), Some("r25"));
    assert_eq!(hit(&t, &rx4(6, 25, 40000), Dir::Rx).as_deref(), Some("r25"));
    assert_eq!(hit(&t, &rx4(6, 40000, 25), Dir::Rx), None);
    let t = table(&[("lip", "local_ip=10.0.0.2")]);
    assert_eq!(hit(&t, &rx4(1, 0, 0), Dir::Rx).as_deref(), Some("lip"));
    assert_eq!(hit(&t, &tx4(1, 0, 0), Dir::Tx).as_deref(), Some("lip"));
    let t = table(&[("rip", "remote_ip=10.0.0.2")]);
    assert_eq!(hit(&t, &rx4(1, 0, 0), Dir::Rx), None);
    assert_eq!(hit(&t, &rx4(1, 0, 0), Dir::Tx).as_deref(), Some("rip"));
}

#[test]
fn ip_tables_match_the_longest_prefix_first() {
    let t = table(&[
        ("net8", "remote_ip=10.0.0.0/8"),
        ("host", "remote_ip=10.1.2.3"),
        ("net16", "remote_ip=10.1.0.0/16"),
        ("v6net", "remote_ip=2001:db8::/32"),
        ("v6host", "remote_ip=2001:db8::1"),
    ]);
    let from = |a: [u8; 4]| v4(OUR_MAC, PEER_MAC, 6, a, [192, 168, 0, 1], 1, 2, 0, 0);
    assert_eq!(hit(&t, &from([10, 1, 2, 3]), Dir::Rx).as_deref(), Some("host"));
    assert_eq!(hit(&t, &from([10, 1, 2, 4]), Dir::Rx).as_deref(), Some("net16"));
    assert_eq!(hit(&t, &from([10, 2, 2, 4]), Dir::Rx).as_deref(), Some("net8"));
    assert_eq!(hit(&t, &from([11, 1, 2, 3]), Dir::Rx), None);
    let me = ip6("2001:db8:ffff::9");
    assert_eq!(hit(&t, &v6(6, ip6("2001:db8::1"), me, 1, 2, 0), Dir::Rx).as_deref(), Some("v6host"));
    assert_eq!(hit(&t, &v6(6, ip6("2001:db8::2"), me, 1, 2, 0), Dir::Rx).as_deref(), Some("v6net"));
    assert_eq!(hit(&t, &v6(6, ip6("2001:db9::1"), me, 1, 2, 0), Dir::Rx), None);
    // An IPv4 address whose bytes begin an IPv6 one does not match it.
    assert_eq!(hit(&t, &v6(6, ip6("a01:203::"), me, 1, 2, 0), Dir::Rx), None);
}

#[test]
fn five_tuple_tables_check_every_attribute() {
    let t = table(&[
        ("a", "transport=tcp,local_ip=10.0.0.2,local_port=443,remote_ip=10.0.0.1,remote_port=12785"),
        ("b", "transport=tcp,local_ip=10.0.0.2,local_port=443,remote_ip=10.0.0.0/24,remote_port=12785"),
        ("c", "transport=tcp,local_ip=10.0.0.0/8,local_port=443,remote_ip=10.0.0.0/8,remote_port=12785"),
    ]);
    assert_eq!(hit(&t, &rx4(6, 12785, 443), Dir::Rx).as_deref(), Some("a"));
    let from = |src: [u8; 4], dst: [u8; 4]| v4(OUR_MAC, PEER_MAC, 6, src, dst, 12785, 443, 0, 0);
    assert_eq!(hit(&t, &from([10, 0, 0, 9], [10, 0, 0, 2]), Dir::Rx).as_deref(), Some("b"));
    assert_eq!(hit(&t, &from([10, 0, 1, 9], [10, 0, 0, 2]), Dir::Rx).as_deref(), Some("c"), "falls back to a shorter local prefix");
    assert_eq!(hit(&t, &from([10, 0, 1, 9], [10, 7, 0, 2]), Dir::Rx).as_deref(), Some("c"));
    assert_eq!(hit(&t, &from([11, 0, 0, 1], [10, 0, 0, 2]), Dir::Rx), None);
    assert_eq!(hit(&t, &rx4(6, 12786, 443), Dir::Rx), None, "remote port");
    assert_eq!(hit(&t, &rx4(17, 12785, 443), Dir::Rx), None, "protocol");
    let t = table(&[("d", "transport=udp,local_ip=fe80::2,local_port=53")]);
    assert_eq!(hit(&t, &v6(17, ip6("fe80::1"), ip6("fe80::2"), 999, 53, 0), Dir::Rx).as_deref(), Some("d"));
    assert_eq!(hit(&t, &v6(17, ip6("fe80::1"), ip6("fe80::3"), 999, 53, 0), Dir::Rx), None);
    assert_eq!(hit(&t, &v6(6, ip6("fe80::1"), ip6("fe80::2"), 999, 53, 0), Dir::Rx), None);
}

#[test]
fn transport_and_dsfield_tables() {
    let t = table(&[("tcp", "transport=tcp"), ("icmp", "transport=icmp"), ("icmp6", "transport=icmpv6")]);
    assert_eq!(hit(&t, &rx4(6, 1, 2), Dir::Rx).as_deref(), Some("tcp"));
    assert_eq!(hit(&t, &rx4(1, 0, 0), Dir::Rx).as_deref(), Some("icmp"));
    assert_eq!(hit(&t, &v6(58, ip6("::1"), ip6("::2"), 0, 0, 0), Dir::Rx).as_deref(), Some("icmp6"));
    assert_eq!(hit(&t, &v6(6, ip6("::1"), ip6("::2"), 0, 0, 0), Dir::Rx).as_deref(), Some("tcp"));
    assert_eq!(hit(&t, &rx4(17, 1, 2), Dir::Rx), None);
    // The manual's example 7: value 0x2e, mask 0xfc — the DS field is
    // compared on the mask's bits only (0x2c-0x2f), a full mask wins.
    let t = table(&[("ef", "dsfield=0x2e:0xfc"), ("exact", "dsfield=0x2d")]);
    let tos = |b: u8| v4(OUR_MAC, PEER_MAC, 6, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2, b, 0);
    assert_eq!(hit(&t, &tos(0x2d), Dir::Rx).as_deref(), Some("exact"), "the full mask is more specific");
    for b in [0x2c, 0x2e, 0x2f] {
        assert_eq!(hit(&t, &tos(b), Dir::Rx).as_deref(), Some("ef"), "{b:#x}");
    }
    assert_eq!(hit(&t, &tos(0x30), Dir::Rx), None);
    assert_eq!(hit(&t, &v6(6, ip6("::1"), ip6("::2"), 1, 2, 0x2e), Dir::Rx).as_deref(), Some("ef"), "IPv6 traffic class");
}

#[test]
fn fragments_carry_no_ports() {
    let t = table(&[("p53", "transport=udp,local_port=53")]);
    let frag = |off: u16| v4(OUR_MAC, PEER_MAC, 17, [1, 1, 1, 1], [2, 2, 2, 2], 999, 53, 0, off);
    assert_eq!(hit(&t, &frag(0x2000), Dir::Rx).as_deref(), Some("p53"), "first fragment (MF set, offset 0)");
    assert_eq!(hit(&t, &frag(0x2000 | 185), Dir::Rx), None, "a later fragment's bytes are payload");
    assert_eq!(hit(&t, &frag(185), Dir::Rx), None, "the last fragment");
    // A transport-only flow still takes every fragment by protocol.
    let t = table(&[("udp", "transport=udp")]);
    assert_eq!(hit(&t, &frag(185), Dir::Rx).as_deref(), Some("udp"));
    let k = packet::parse(&frag(185), Dir::Rx).unwrap();
    assert_eq!((k.proto, k.ports), (17, None));
}

#[test]
fn malformed_frames_match_nothing_and_never_panic() {
    let tables = [
        table(&[("a", "transport=tcp,local_port=80")]),
        table(&[("b", "transport=tcp")]),
        table(&[("c", "remote_ip=10.0.0.0/8")]),
        table(&[("d", "dsfield=0x00:0x01")]),
        table(&[("e", "transport=tcp,local_ip=10.0.0.2,local_port=80,remote_ip=10.0.0.1,remote_port=1")]),
        table(&[("f", "local_ip=::/1")]),
    ];
    let good4 = rx4(6, 1, 80);
    let good6 = v6(6, ip6("::1"), ip6("::2"), 1, 80, 0);
    for t in &tables {
        for n in 0..good4.len() {
            let _ = t.classify(&good4[..n], Dir::Rx);
            let _ = t.classify(&good6[..n.min(good6.len())], Dir::Tx);
        }
        for n in 0..34 {
            assert!(t.classify(&good4[..n], Dir::Rx).is_none(), "{n}-byte IPv4 frame");
        }
        for n in 0..54 {
            assert!(t.classify(&good6[..n], Dir::Rx).is_none(), "{n}-byte IPv6 frame");
        }
        // Bad IHL, a wrong version, another ethertype.
        for (at, v) in [(14, 0x44u8), (14, 0x65), (12, 0x81)] {
            let mut f = good4.clone();
            f[at] = v;
            assert!(t.classify(&f, Dir::Rx).is_none(), "byte {at} = {v:#x}");
        }
        // IHL of 60 bytes in a 54-byte frame.
        let mut f = good4[..54].to_vec();
        f[14] = 0x4f;
        assert!(t.classify(&f, Dir::Rx).is_none(), "IHL past the end");
        let mut f = good6.clone();
        f[14] = 0x45;
        assert!(t.classify(&f, Dir::Rx).is_none());
    }
    // Ports cut off: a TCP header of 2 bytes gives no ports.
    let k = packet::parse(&good4[..36], Dir::Rx).unwrap();
    assert_eq!(k.ports, None);
    assert!(tables[0].classify(&good4[..37], Dir::Rx).is_none());
    assert_eq!(tables[0].classify(&good4[..38], Dir::Rx).map(|e| e.name()), Some("a"));
}

#[test]
fn one_combination_per_table_and_no_twins() {
    let mut t = table(&[("https", "transport=tcp,local_port=443")]);
    let before = t.len();
    assert_eq!(
        t.insert(entry("ngz", "local_ip=192.1.168.157")),
        Err(TableError::MaskMismatch(FlowMask(4 | 8), FlowMask(1)))
    );
    assert_eq!(t.insert(entry("twin", "transport=TCP,local_port=443")), Err(TableError::SameAttributes(String::from("https"))));
    let mut d = table(&[("ds", "dsfield=0x2e:0xfc")]);
    assert_eq!(d.insert(entry("ds2", "dsfield=0x2c:0xfc")), Err(TableError::SameAttributes(String::from("ds"))));
    assert_eq!(t.len(), before);
    assert!(t.insert(entry("ssh", "transport=tcp,local_port=22")).is_ok());
    assert!(t.remove("https").is_some());
    assert!(t.remove("https").is_none());
    assert_eq!(hit(&t, &rx4(6, 1, 443), Dir::Rx), None);
    assert_eq!(hit(&t, &rx4(6, 1, 22), Dir::Rx).as_deref(), Some("ssh"));
    assert!(t.remove("ssh").is_some());
    // Empty: any combination again.
    assert_eq!(t.mask(), FlowMask::default());
    assert!(t.insert(entry("ngz", "local_ip=192.1.168.157")).is_ok());
    assert_eq!(t.mask(), FlowMask::LOCAL_IP);
    // Removing from nested tables leaves the rest findable.
    let mut t = table(&[
        ("a", "transport=tcp,local_ip=10.0.0.2,local_port=1,remote_ip=10.0.0.1"),
        ("b", "transport=tcp,local_ip=10.0.0.2,local_port=1,remote_ip=10.0.0.0/24"),
    ]);
    assert!(t.remove("a").is_some());
    assert_eq!(hit(&t, &rx4(6, 5, 1), Dir::Rx).as_deref(), Some("b"));
    assert!(t.remove("b").is_some());
    assert_eq!(hit(&t, &rx4(6, 5, 1), Dir::Rx), None);
    let mut t = table(&[("x", "dsfield=0x10:0xf0"), ("y", "dsfield=0x11")]);
    assert!(t.remove("y").is_some());
    assert_eq!(hit(&t, &v4(OUR_MAC, PEER_MAC, 6, [1; 4], [2; 4], 1, 2, 0x11, 0), Dir::Rx).as_deref(), Some("x"));
}

#[test]
fn ten_thousand_flows_classify_each_to_its_own() {
    let mut t = FlowTable::new();
    for p in 1..=10_000u16 {
        t.insert(entry(&format!("p{p}"), &format!("transport=udp,local_port={p}"))).unwrap();
    }
    for p in [1u16, 77, 5000, 10_000] {
        assert_eq!(hit(&t, &rx4(17, 9, p), Dir::Rx), Some(format!("p{p}")));
    }
    assert_eq!(hit(&t, &rx4(17, 9, 10_001), Dir::Rx), None);
    let mut t = FlowTable::new();
    for i in 0..10_000u32 {
        let [_, _, b, c] = i.to_be_bytes();
        t.insert(entry(&format!("h{i}"), &format!("remote_ip=10.{b}.{c}.1"))).unwrap();
    }
    t.insert(entry("rest", "remote_ip=10.0.0.0/8")).unwrap();
    let from = |a: [u8; 4]| v4(OUR_MAC, PEER_MAC, 6, a, [192, 168, 0, 1], 1, 2, 0, 0);
    assert_eq!(hit(&t, &from([10, 0x27, 0x0f, 1]), Dir::Rx).as_deref(), Some("h9999"));
    assert_eq!(hit(&t, &from([10, 0x27, 0x0f, 2]), Dir::Rx).as_deref(), Some("rest"));
}

// ---- the flow's shapers ----

#[test]
fn a_flow_maxbw_shapes_both_directions() {
    let pool = pool();
    let f = FlowEntry::detached("bw", desc("transport=tcp"), FlowProps { maxbw: Some(10_000_000), priority: Priority::Medium });
    let mut now = 1_000_000_000u64;
    for dir in [Dir::Rx, Dir::Tx] {
        let mut passed = 0u64;
        // 1500-byte packets at 36 Mbit/s for one second, ticking 1 ms.
        for _ in 0..1000 {
            let mut out = MblkChain::new();
            for _ in 0..3 {
                let m = Mblk::with_range(pool.alloc().unwrap(), 0, 1500);
                match dir {
                    Dir::Rx => f.rx(m, now, true, &mut out),
                    Dir::Tx => f.tx(m, now, &mut out),
                }
            }
            now += 1_000_000;
            let (rx, tx) = f.service(now);
            passed += (out.bytes() + if dir == Dir::Rx { rx.bytes() } else { tx.bytes() }) as u64;
        }
        let mbit = passed * 8 / 1_000_000;
        assert!((9..=11).contains(&mbit), "{dir:?}: {mbit} Mbit in one second");
    }
    let c = f.counters();
    assert_eq!((c.ipkts, c.opkts), (3000, 3000), "every packet offered is counted");
    assert!(c.idrops > 0 && c.odrops > 0, "the excess beyond the bounded queue is dropped and counted: {c:?}");
    assert!(f.bw_active());
    // Lifting the limit: the next service releases the backlog and the
    // flow leaves the shaped path.
    f.set_props(FlowProps::default());
    let (rx, tx) = f.service(5_000_000_000);
    assert!(rx.len() + tx.len() <= 2 * crate::bw::SHAPER_QUEUE);
    assert!(!f.bw_active());
    let mut out = MblkChain::new();
    f.rx(Mblk::with_range(pool.alloc().unwrap(), 0, 1500), 5_000_000_001, true, &mut out);
    assert_eq!(out.len(), 1);
}

// ---- through a MAC client ----

#[test]
fn the_client_counts_shapes_and_drops_per_flow() {
    let (nic, mac) = nic();
    let l = Datalink::Phys(mac.clone());
    let pool = pool();
    let seen = record_rx(&mac);
    let icmp = registry::add("fa-icmp", &l, desc("transport=icmp"), FlowProps::default(), true).unwrap();
    let udp = registry::add("fa-udp", &l, desc("transport=udp"), FlowProps { maxbw: Some(0), priority: Priority::Medium }, true).unwrap();
    let frames: Vec<Vec<u8>> = (0..50).map(|_| rx4(1, 0, 0)).chain((0..7).map(|_| rx4(17, 5, 6))).chain((0..3).map(|_| rx4(6, 5, 7))).collect();
    mac.rx_deliver(chain(&pool, &frames));
    let delivered: usize = seen.lock().unwrap().iter().map(Vec::len).sum();
    assert_eq!(delivered, 53, "50 icmp + 3 tcp; the 7 udp are dropped by maxbw=0");
    let (ci, cu) = (icmp.counters(), udp.counters());
    assert_eq!((ci.ipkts, ci.rbytes, ci.idrops), (50, 50 * 74, 0));
    assert_eq!((cu.ipkts, cu.idrops), (7, 7));
    // Transmit: counted on the flow, dropped by maxbw=0 before the link.
    for _ in 0..4 {
        send(&mac, &tx4(1, 0, 0));
    }
    for _ in 0..2 {
        send(&mac, &tx4(17, 6, 5));
    }
    assert_eq!(nic.take_sent(0).len(), 4);
    assert_eq!((icmp.counters().opkts, udp.counters().opkts, udp.counters().odrops), (4, 2, 2));
    assert_eq!(mac.primary().stats.snapshot().opackets, 4);
    // A flow's backlog goes out through the link when the limit goes.
    registry::set_props("fa-udp", FlowProps { maxbw: Some(1_200_000), priority: Priority::Medium }).unwrap();
    let now = 1_000_000_000;
    let mut held = MblkChain::new();
    let mut big = tx4(17, 6, 5);
    big.resize(1400, 0);
    for _ in 0..20 {
        udp.tx(mblk(&pool, &big), now, &mut held);
    }
    assert!(held.len() < 20 && udp.tx_bw.backlogged(), "1.2 Mbit/s holds most of 20 frames back");
    drop(held);
    assert!(mac.primary().bw_active());
    registry::set_props("fa-udp", FlowProps::default()).unwrap();
    assert!(mac.primary().bw_active(), "the backlog is still there");
    assert!(!mac.primary().bw_service());
    assert!(nic.take_sent(0).len() >= 10, "the backlog was sent");
    assert!(!mac.primary().bw_active());
    // Removing a flow sends what waits in its shaper (nothing is lost
    // uncounted).
    registry::set_props("fa-udp", FlowProps { maxbw: Some(1_200_000), priority: Priority::Medium }).unwrap();
    let mut held = MblkChain::new();
    for _ in 0..20 {
        udp.tx(mblk(&pool, &big), now + 1_000_000_000, &mut held);
    }
    let passed = held.len();
    drop(held);
    assert!(mac.primary().bw_active());
    registry::remove("fa-icmp").unwrap();
    registry::remove("fa-udp").unwrap();
    assert_eq!(nic.take_sent(0).len(), 20 - passed, "the backlog went out");
    assert!(!mac.primary().bw_active());
    assert!(!mac.primary().flows().active());
    mac.rx_deliver(chain(&pool, &[rx4(17, 5, 6)]));
    assert_eq!(udp.counters().ipkts, 7, "a removed flow sees nothing");
}

#[test]
fn high_priority_flows_are_handed_up_first() {
    let (_, mac) = nic();
    let l = Datalink::Phys(mac.clone());
    let pool = pool();
    let seen = record_rx(&mac);
    let prio = |p| FlowProps { maxbw: None, priority: p };
    registry::add("fb-high", &l, desc("transport=tcp,local_port=1001"), prio(Priority::High), true).unwrap();
    registry::add("fb-low", &l, desc("transport=tcp,local_port=1002"), prio(Priority::Low), true).unwrap();
    registry::add("fb-med", &l, desc("transport=tcp,local_port=1003"), prio(Priority::Medium), true).unwrap();
    let ports = [1002u16, 1004, 1001, 1003, 1002, 1001, 1004];
    let frames: Vec<Vec<u8>> = ports.iter().map(|&p| rx4(6, 9, p)).collect();
    mac.rx_deliver(chain(&pool, &frames));
    assert_eq!(*seen.lock().unwrap(), vec![vec![1001, 1001], vec![1004, 1003, 1004], vec![1002, 1002]]);
    // Without flows: one chain, in order.
    for n in ["fb-high", "fb-low", "fb-med"] {
        registry::remove(n).unwrap();
    }
    seen.lock().unwrap().clear();
    mac.rx_deliver(chain(&pool, &frames));
    assert_eq!(*seen.lock().unwrap(), vec![ports.to_vec()]);
}

#[test]
fn vlan_vnics_classify_untagged_frames() {
    let (nic, mac) = nic();
    let env = TestEnv::new(std::slice::from_ref(&mac), "fv");
    assert_eq!(env.dladm(&["create-vnic", "-l", mac.link(), "-v", "7", "-m", "2:8:20:0:0:7", "fv0"]).0, 0);
    assert_eq!(env.flowadm(&["add-flow", "-l", "fv0", "-a", "transport=udp,remote_port=53", "fv-dns"]), (0, String::new()));
    let Some(Datalink::Vnic(c)) = link::datalink("fv0") else { panic!("no fv0") };
    let f = tx4(17, 4000, 53);
    let mut m = c.alloc_tx(f.len()).unwrap();
    m.data_mut().copy_from_slice(&f);
    c.tx(m);
    let sent = nic.take_sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0][12..14], &[0x81, 0x00], "tagged after classification");
    assert_eq!(registry::flow("fv-dns").unwrap().counters().opkts, 1);
    // Refused while the flow is there; then gone.
    let (st, out) = env.dladm(&["delete-vnic", "fv0"]);
    assert_eq!(st, 1);
    assert!(
        out.starts_with("dladm: 'fv0' is busy: 1 flow(s) are defined on it (fv-dns); remove them first with flowadm remove-flow -l fv0\nusage: dladm delete-vnic"),
        "{out}"
    );
    assert!(link::datalink("fv0").is_some());
    // The MAC layer itself refuses too, whoever asks.
    assert!(matches!(link::delete_vnic("fv0"), Err(link::LinkError::Busy(..))));
    assert!(link::datalink("fv0").is_some());
    assert_eq!(env.flowadm(&["remove-flow", "-l", "fv0"]), (0, String::new()));
    assert_eq!(env.dladm(&["delete-vnic", "fv0"]), (0, String::new()));
}

// ---- flowadm ----

const FLOW_HEADER: &str = "FLOW LINK PROTO LADDR LPORT RADDR RPORT DSFLD";
const PROP_HEADER: &str = "FLOW PROPERTY PERM VALUE DEFAULT POSSIBLE";

/// The manual's `show-flowprop` rows of `flow`.
fn prop_rows(flow: &str, maxbw: &str, prio: &str) -> Vec<String> {
    vec![
        String::from(PROP_HEADER),
        format!("{flow} maxbw rw {maxbw} -- --"),
        format!("{flow} priority rw {prio} medium low,medium,high"),
        format!("{flow} hwflow r- off -- on,off"),
    ]
}

/// The manual's output with `net0` as our link, whitespace normalised.
fn manual(text: &str, link: &str) -> Vec<String> {
    norm(&text.replace("net0", link))
}

#[test]
fn the_manuals_examples_print_what_the_manual_shows() {
    let (_, mac) = nic();
    let l = mac.link();
    let env = TestEnv::new(std::slice::from_ref(&mac), "fm");
    // Example 2.
    assert_eq!(env.flowadm(&["add-flow", "-l", l, "-a", "transport=TCP,local_port=443", "https-1"]), (0, String::new()));
    let (st, out) = env.flowadm(&["show-flow", "-l", l]);
    assert_eq!(st, 0);
    assert_eq!(
        norm(&out),
        manual(
            "\tFLOW        LINK     PROTO LADDR             LPORT RADDR             RPORT DSFLD\n\
             \thttps-1     net0     tcp   --                443   --                --    --",
            l
        )
    );
    // The columns as the manual aligns them (for a four-letter link).
    if l.len() == 4 {
        assert_eq!(
            out,
            format!(
                "FLOW        LINK     PROTO LADDR             LPORT RADDR             RPORT DSFLD\n\
                 https-1     {l}     tcp   --                443   --                --    --\n"
            )
        );
    }
    // Example 3.
    assert_eq!(env.flowadm(&["set-flowprop", "-p", "maxbw=500M", "https-1"]), (0, String::new()));
    assert_eq!(norm(&env.flowadm(&["show-flow", "https-1"]).1), norm(&out));
    let (st, out) = env.flowadm(&["show-flowprop", "https-1"]);
    assert_eq!(st, 0);
    assert_eq!(
        norm(&out),
        norm(
            "\tFLOW         PROPERTY        PERM VALUE          DEFAULT        POSSIBLE\n\
             \thttps-1      maxbw           rw     500          --             -- \n\
             \thttps-1      priority        rw   medium         medium         low,medium,high \n\
             \thttps-1      hwflow          r-   off            --             on,off "
        )
    );
    assert_eq!(
        out,
        "FLOW         PROPERTY        PERM VALUE          DEFAULT        POSSIBLE\n\
         https-1      maxbw           rw   500            --             --\n\
         https-1      priority        rw   medium         medium         low,medium,high\n\
         https-1      hwflow          r-   off            --             on,off\n"
    );
    // Example 1: no subcommand lists every flow (of our links).
    assert_eq!(norm(&env.flowadm(&[]).1), norm(&env.flowadm(&["show-flow"]).1));
    assert_eq!(env.flowadm(&["show-flow", "-p", "-o", "flow,link,proto,lport", "https-1"]).1, format!("https-1:{l}:tcp:443\n"));
    assert_eq!(env.flowadm(&["-p", "-o", "flow"]).1, "https-1\n");
    assert_eq!(norm(&env.flowadm(&["show-flow", "-o", "all"]).1)[0], FLOW_HEADER);
    assert_eq!(env.flowadm(&["show-flowprop", "-c", "-o", "flow,property,value", "-p", "maxbw,priority", "https-1"]).1, "https-1:maxbw:500\nhttps-1:priority:medium\n");
    assert_eq!(env.flowadm(&["reset-flowprop", "-p", "maxbw", "https-1"]), (0, String::new()));
    assert_eq!(norm(&env.flowadm(&["show-flowprop", "https-1"]).1), prop_rows("https-1", "--", "medium"));
    // Example 9: another combination on the same link is refused.
    let (st, out) = env.flowadm(&["add-flow", "-l", l, "-a", "local_ip=192.1.168.157", "ngzflow"]);
    assert_eq!(st, 1);
    assert!(
        out.starts_with(&format!(
            "flowadm: cannot add flow 'ngzflow' to link '{l}': the flows on '{l}' use the attribute combination \
             transport={{tcp|udp|sctp}},local_port=port, incompatible with this flow's local_ip=address[/prefix_len] \
             (all flows on a link must use the same combination)\nusage: flowadm add-flow"
        )),
        "{out}"
    );
    assert_eq!(env.flowadm(&["remove-flow", "https-1"]), (0, String::new()));
    // Example 4.
    assert_eq!(env.flowadm(&["add-flow", "-l", l, "-a", "transport=UDP", "-p", "maxbw=100M", "limit-udp-1"]), (0, String::new()));
    assert_eq!(
        norm(&env.flowadm(&["show-flow", "limit-udp-1"]).1),
        vec![String::from(FLOW_HEADER), format!("limit-udp-1 {l} udp -- -- -- -- --")]
    );
    assert_eq!(norm(&env.flowadm(&["show-flowprop", "limit-udp-1"]).1), prop_rows("limit-udp-1", "100", "medium"));
    assert_eq!(env.flowadm(&["remove-flow", "-l", l]), (0, String::new()));
    // Example 5.
    let a5 = "transport=tcp,local_ip=192.168.200.102,local_port=443";
    assert_eq!(env.flowadm(&["add-flow", "-l", l, "-a", a5, "-p", "priority=high,maxbw=800M", "my-https"]), (0, String::new()));
    assert_eq!(
        norm(&env.flowadm(&["show-flow", "-l", l]).1),
        manual(
            "\tFLOW        LINK     PROTO LADDR             LPORT RADDR             RPORT DSFLD\n\
             \tmy-https    net0     tcp   192.168.200.102   443   --                --    --",
            l
        )
    );
    assert_eq!(
        norm(&env.flowadm(&["show-flowprop", "-l", l]).1),
        norm(
            "\tFLOW         PROPERTY        PERM VALUE          DEFAULT        POSSIBLE\n\
             \tmy-https     maxbw           rw     800          --             -- \n\
             \tmy-https     priority        rw   high           medium         low,medium,high \n\
             \tmy-https     hwflow          r-   off            --             on,off"
        )
    );
    assert_eq!(env.flowadm(&["remove-flow", "my-https"]), (0, String::new()));
    // Example 6.
    let a6 = "transport=tcp,local_ip=192.168.200.102,local_port=443,remote_ip=192.168.200.104,remote_port=12785";
    assert_eq!(env.flowadm(&["add-flow", "-l", l, "-a", a6, "-p", "priority=high,maxbw=800M", "my-flow"]), (0, String::new()));
    assert_eq!(
        norm(&env.flowadm(&["show-flow", "-l", l]).1),
        manual(
            "\tFLOW        LINK     PROTO LADDR             LPORT RADDR             RPORT DSFLD\n\
             \tmy-flow     net0     tcp   192.168.200.102   443   192.168.200.104   12785 --",
            l
        )
    );
    assert_eq!(norm(&env.flowadm(&["show-flowprop", "my-flow"]).1), prop_rows("my-flow", "800", "high"));
    assert_eq!(env.flowadm(&["remove-flow", "my-flow"]), (0, String::new()));
    // Example 7.
    assert_eq!(env.flowadm(&["add-flow", "-l", l, "-a", "dsfield=0x2e:0xfc", "-p", "maxbw=500M", "efphb-flow"]), (0, String::new()));
    assert_eq!(
        norm(&env.flowadm(&["show-flow", "efphb-flow"]).1),
        vec![String::from(FLOW_HEADER), format!("efphb-flow {l} -- -- -- -- -- 0x2e:0xfc")]
    );
    assert_eq!(norm(&env.flowadm(&["show-flowprop", "efphb-flow"]).1), prop_rows("efphb-flow", "500", "medium"));
    assert_eq!(env.flowadm(&["remove-flow", "efphb-flow"]), (0, String::new()));
    assert_eq!(env.flowadm(&["show-flow"]), (0, String::new()));
}

#[test]
fn help_is_the_manuals_and_says_flows_are_temporary() {
    let env = TestEnv::new(&[], "fh");
    let (st, out) = env.flowadm(&["help"]);
    assert_eq!(st, 0);
    let lines = norm(&out);
    assert_eq!(lines.first().map(String::as_str), Some("The following subcommands are supported:"));
    assert_eq!(lines.last().map(String::as_str), Some("For more info, run: flowadm help <subcommand>"));
    assert_eq!(lines[1], "Flow : add-flow remove-flow reset-flowprop");
    assert_eq!(lines[2], "set-flowprop show-flow show-flowprop");
    assert!(out.contains("temporary") && out.contains("lost at reboot"), "{out}");
    let (st, out) = env.flowadm(&["help", "add-flow"]);
    assert_eq!(st, 0);
    assert_eq!(
        norm(&out),
        norm(
            "usage:\n\
             \tadd-flow       [-t] -l <link> -a <attr>=<value>[,...]\n\
             \t\t\t[-p <prop>=<value>,...] <flow>\n\
             \n\
             example:\n\
             # flowadm add-flow -l net0 -a transport=tcp -p maxbw=100 tcpflow"
        )
    );
    for sub in ["show-flow", "remove-flow", "set-flowprop", "reset-flowprop", "show-flowprop", "help"] {
        let (st, out) = env.flowadm(&["help", sub]);
        assert!(st == 0 && out.starts_with("usage:\n") && out.contains(sub) && out.contains("example:\n# flowadm "), "{sub}: {out}");
    }
    let (st, out) = env.flowadm(&["help", "frob"]);
    assert_eq!(st, 2);
    assert!(out.starts_with("flowadm: unknown subcommand 'frob'\nusage: flowadm [show-flow]"), "{out}");
    let (st, out) = env.flowadm(&["frob"]);
    assert_eq!(st, 2);
    assert!(out.starts_with("flowadm: unknown subcommand 'frob'\n"), "{out}");
}

#[test]
fn refused_commands_say_why_and_change_nothing() {
    let (_, mac) = nic();
    let l = mac.link();
    let env = TestEnv::new(std::slice::from_ref(&mac), "fr");
    assert_eq!(env.dladm(&["create-etherstub", "frstub0"]).0, 0);
    assert_eq!(env.dladm(&["create-vnic", "-l", "frstub0", "frv0"]).0, 0);
    assert_eq!(env.flowadm(&["add-flow", "-l", l, "-a", "transport=tcp,local_port=443", "fr-https"]), (0, String::new()));
    assert_eq!(env.flowadm(&["add-flow", "-t", "-l", "frv0", "-a", "transport=udp", "-p", "maxbw=10M", "fr-udp"]), (0, String::new()));
    let state = |env: &TestEnv| {
        let mut s = String::new();
        for c in [&["show-flow"][..], &["show-flowprop"][..]] {
            s.push_str(&env.flowadm(c).1);
        }
        s.push_str(&env.dladm(&["show-link"]).1);
        s
    };
    let before = state(&env);
    assert!(before.contains("fr-https") && before.contains("fr-udp"), "{before}");
    let n32 = "abcdefghijklmnopqrstuvwxyzabcde1";
    let add = "usage: flowadm add-flow [-t] -l link -a attr=value[,...] [-p prop=value[,...]] flow\n";
    let remove = "usage: flowadm remove-flow [-t] {-l link | flow}\n";
    let set = "usage: flowadm set-flowprop [-t] -p prop=value[,...] flow\n";
    let reset = "usage: flowadm reset-flowprop [-t] [-p prop[,...]] flow\n";
    let show = "usage: flowadm show-flow [[-p] -o field[,...]] [-l link | flow]\n";
    let showp = "usage: flowadm show-flowprop [[-c] -o field[,...]] [-l link] [-p prop[,...]] [flow]\n";
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (vec!["add-flow", "-l", "frv0", "-a", "remote_port=25", "flow25"], 1, format!("flowadm: cannot add flow 'flow25': 'remote_port' requires transport=tcp, udp or sctp\n{add}")),
        (
            vec!["add-flow", "-l", "frv0", "-a", "transport=icmpv6,remote_port=16", "flow16"],
            1,
            format!("flowadm: cannot add flow 'flow16': transport=icmpv6 takes no port ('remote_port' given)\n{add}"),
        ),
        (
            vec!["add-flow", "-l", "frv0", "-a", "local_port=80,local_port=8080", "httpflow"],
            1,
            format!("flowadm: cannot add flow 'httpflow': flow attribute 'local_port' is specified more than once\n{add}"),
        ),
        (
            vec!["add-flow", "-l", "frv0", "-a", "transport=udp", n32],
            1,
            format!("flowadm: invalid flow name '{n32}': a flow name has at most 31 letters, digits, '_', '.' or '-' and starts with a letter\n{add}"),
        ),
        (
            vec!["add-flow", "-l", "frv0", "-a", "transport=udp", "1flow"],
            1,
            format!("flowadm: invalid flow name '1flow': a flow name has at most 31 letters, digits, '_', '.' or '-' and starts with a letter\n{add}"),
        ),
        (vec!["add-flow", "-l", "frv0", "-a", "transport=udp", "fr-https"], 1, format!("flowadm: flow 'fr-https' already exists\n{add}")),
        (vec!["add-flow", "-l", "nosuch0", "-a", "transport=udp", "fr-x"], 1, format!("flowadm: link 'nosuch0' is not valid: object not found\n{add}")),
        (
            vec!["add-flow", "-l", "frstub0", "-a", "transport=udp", "fr-x"],
            1,
            format!("flowadm: link 'frstub0' carries no traffic of its own (an etherstub): add the flow to a VNIC on it\n{add}"),
        ),
        (
            vec!["add-flow", "-l", l, "-a", "transport=udp", "fr-x"],
            1,
            format!(
                "flowadm: cannot add flow 'fr-x' to link '{l}': the flows on '{l}' use the attribute combination \
                 transport={{tcp|udp|sctp}},local_port=port, incompatible with this flow's transport={{tcp|udp|sctp|icmp|icmpv6}} \
                 (all flows on a link must use the same combination)\n{add}"
            ),
        ),
        (
            vec!["add-flow", "-l", l, "-a", "transport=tcp,local_port=443", "fr-twin"],
            1,
            format!("flowadm: cannot add flow 'fr-twin' to link '{l}': flow 'fr-https' on it has the same attributes\n{add}"),
        ),
        (
            vec!["add-flow", "-l", "frv0", "-a", "transport=tcp", "-p", "maxbw=1K", "fr-x"],
            1,
            format!("flowadm: cannot add flow 'fr-x': property 'maxbw': invalid value '1K': the minimum is 1.2M (or 0 to drop every packet of the flow)\n{add}"),
        ),
        (
            vec!["add-flow", "-l", "frv0", "-a", "transport=tcp", "-p", "priority=urgent", "fr-x"],
            1,
            format!("flowadm: cannot add flow 'fr-x': property 'priority': invalid value 'urgent': expected low, medium or high\n{add}"),
        ),
        (vec!["add-flow", "-l", "frv0", "-a", "transport=tcp", "-p", "hwflow=on", "fr-x"], 1, format!("flowadm: cannot add flow 'fr-x': property 'hwflow': read-only property\n{add}")),
        (
            vec!["add-flow", "-l", "frv0", "-a", "transport=tcp", "-p", "maxbw=10M,maxbw=20M", "fr-x"],
            1,
            format!("flowadm: cannot add flow 'fr-x': property 'maxbw': specified more than once\n{add}"),
        ),
        (vec!["add-flow", "-l", "frv0", "-a", "transport=tcp"], 2, format!("flowadm: missing flow name\n{add}")),
        (vec!["add-flow", "-a", "transport=tcp", "fr-x"], 2, format!("flowadm: -l link is required\n{add}")),
        (vec!["add-flow", "-l", "frv0", "fr-x"], 2, format!("flowadm: -a attr=value[,...] is required\n{add}")),
        (vec!["add-flow", "-l", "frv0", "-a", "transport=tcp", "fr-x", "fr-y"], 2, format!("flowadm: unexpected operand 'fr-y'\n{add}")),
        (vec!["add-flow", "-z", "-l", "frv0", "-a", "transport=tcp", "fr-x"], 2, format!("flowadm: illegal option -- z\n{add}")),
        (
            vec!["add-flow", "-R", "/a", "-l", "frv0", "-a", "transport=tcp", "fr-x"],
            2,
            format!("flowadm: -R is not supported: Arbalest has no persistent configuration store (every flow is temporary)\n{add}"),
        ),
        (vec!["remove-flow", "nosuchflow"], 1, format!("flowadm: flow 'nosuchflow' does not exist\n{remove}")),
        (vec!["remove-flow", "-l", "nosuch0"], 1, format!("flowadm: link 'nosuch0' is not valid: object not found\n{remove}")),
        (vec!["remove-flow"], 2, format!("flowadm: a flow name or -l link is required\n{remove}")),
        (vec!["remove-flow", "-l", l, "fr-https"], 2, format!("flowadm: -l link and a flow name 'fr-https' cannot be given together\n{remove}")),
        (vec!["set-flowprop", "-p", "maxbw=10M", "nosuchflow"], 1, format!("flowadm: flow 'nosuchflow' does not exist\n{set}")),
        (
            vec!["set-flowprop", "-p", "maxbw=1K", "fr-https"],
            1,
            format!("flowadm: cannot set flow property 'maxbw' on 'fr-https': invalid value '1K': the minimum is 1.2M (or 0 to drop every packet of the flow)\n{set}"),
        ),
        (
            vec!["set-flowprop", "-p", "maxbw=10M,priority=urgent", "fr-https"],
            1,
            format!("flowadm: cannot set flow property 'priority' on 'fr-https': invalid value 'urgent': expected low, medium or high\n{set}"),
        ),
        (vec!["set-flowprop", "-p", "hwflow=on", "fr-https"], 1, format!("flowadm: cannot set flow property 'hwflow' on 'fr-https': read-only property\n{set}")),
        (vec!["set-flowprop", "-p", "nosuch=1", "fr-https"], 1, format!("flowadm: cannot set flow property 'nosuch' on 'fr-https': unknown property (maxbw, priority)\n{set}")),
        (vec!["set-flowprop", "fr-https"], 2, format!("flowadm: -p prop=value[,...] is required\n{set}")),
        (
            vec!["set-flowprop", "-P", "-p", "maxbw=10M", "fr-https"],
            2,
            "flowadm: illegal option -- P\n".to_string() + set,
        ),
        (vec!["reset-flowprop", "-p", "nosuch", "fr-https"], 1, format!("flowadm: cannot reset flow property 'nosuch' on 'fr-https': unknown property (maxbw, priority)\n{reset}")),
        (vec!["reset-flowprop", "-p", "hwflow", "fr-https"], 1, format!("flowadm: cannot reset flow property 'hwflow' on 'fr-https': read-only property\n{reset}")),
        (vec!["reset-flowprop", "nosuchflow"], 1, format!("flowadm: flow 'nosuchflow' does not exist\n{reset}")),
        (vec!["show-flow", "nosuchflow"], 1, format!("flowadm: flow 'nosuchflow' does not exist\n{show}")),
        (vec!["show-flow", "-l", "nosuch0"], 1, format!("flowadm: link 'nosuch0' is not valid: object not found\n{show}")),
        (vec!["show-flow", "-o", "bogus"], 1, format!("flowadm: unknown output field: 'bogus'\n{show}")),
        (vec!["show-flow", "-p"], 2, format!("flowadm: -p requires -o\n{show}")),
        (vec!["show-flow", "-P"], 2, format!("flowadm: -P is not supported: Arbalest has no persistent configuration store (every flow is temporary)\n{show}")),
        (vec!["show-flow", "-l", l, "fr-udp"], 2, format!("flowadm: -l link and a flow name 'fr-udp' cannot be given together\n{show}")),
        (vec!["show-flowprop", "-p", "nosuch", "fr-https"], 1, format!("flowadm: unknown flow property 'nosuch' (maxbw, priority, hwflow)\n{showp}")),
        (vec!["show-flowprop", "nosuchflow"], 1, format!("flowadm: flow 'nosuchflow' does not exist\n{showp}")),
        (vec!["show-flowprop", "-c"], 2, format!("flowadm: -c requires -o\n{showp}")),
        (vec!["show-flowprop", "-l", l, "fr-udp"], 1, format!("flowadm: flow 'fr-udp' is not on link '{l}'\n{showp}")),
    ];
    for (args, status, expect) in cases {
        let (st, out) = env.flowadm(&args);
        assert_eq!((st, out.as_str()), (status, expect.as_str()), "flowadm {args:?}");
        assert_eq!(state(&env), before, "flowadm {args:?} changed something");
    }
    // A flow other tests cannot see is not ours to show.
    let other = TestEnv::new(&[], "fz");
    assert_eq!(other.flowadm(&["show-flow", "fr-https"]).0, 1);
    // dladm: a VNIC is no -l for show-vnic; an etherstub's VNIC with
    // flows cannot go.
    let (st, out) = env.dladm(&["show-vnic", "-l", "frv0"]);
    assert_eq!((st, out.lines().next()), (1, Some("dladm: 'frv0' is not a physical link or an etherstub")));
    assert_eq!(env.dladm(&["show-vnic", "-l", "frstub0", "-p", "-o", "link"]).1, "frv0\n");
    assert_eq!(env.dladm(&["delete-vnic", "frv0"]).0, 1);
    assert_eq!(state(&env), before);
    // Set, reset, remove.
    assert_eq!(env.flowadm(&["set-flowprop", "-t", "-p", "maxbw=0,priority=low", "fr-udp"]), (0, String::new()));
    assert_eq!(env.flowadm(&["show-flowprop", "-c", "-o", "value", "fr-udp"]).1, "0\nlow\noff\n");
    assert_eq!(env.flowadm(&["reset-flowprop", "fr-udp"]), (0, String::new()));
    assert_eq!(env.flowadm(&["show-flowprop", "-c", "-o", "value", "fr-udp"]).1, "--\nmedium\noff\n");
    assert_eq!(env.flowadm(&["remove-flow", "-t", "fr-udp"]), (0, String::new()));
    assert_eq!(env.flowadm(&["remove-flow", "fr-https"]), (0, String::new()));
    assert_eq!(env.dladm(&["delete-vnic", "frv0"]), (0, String::new()));
    assert_eq!(env.dladm(&["delete-etherstub", "frstub0"]), (0, String::new()));
    assert!(env.links().iter().all(|x| matches!(x, Datalink::Phys(_))));
}

#[test]
fn flow_maxbw_zero_and_suffixes() {
    use crate::admin::parse_flow_maxbw;
    for z in ["0", "0K", "0M", "0g", "0.0", "000"] {
        assert_eq!(parse_flow_maxbw(z), Ok(Some(0)), "{z}");
    }
    assert_eq!(parse_flow_maxbw("500M"), Ok(Some(500_000_000)));
    assert_eq!(parse_flow_maxbw("100"), Ok(Some(100_000_000)));
    assert_eq!(parse_flow_maxbw("--"), Ok(None));
    for bad in ["", ".", "0.", "K", "1K", "-0", "0x0", "1.1M"] {
        assert!(parse_flow_maxbw(bad).is_err(), "{bad}");
    }
}

// ---- flowstat ----

#[test]
fn flowstat_counts_fifty_icmp_frames() {
    let (_, mac) = nic();
    let l = mac.link();
    let pool = pool();
    let env = TestEnv::new(std::slice::from_ref(&mac), "fs");
    let _seen = record_rx(&mac);
    assert_eq!(env.flowadm(&["add-flow", "-l", l, "-a", "transport=icmp", "fs-icmp"]), (0, String::new()));
    let once = Clock::once();
    assert_eq!(run_flowstat(&["-p", "-o", "flow,ipkts,opkts", "fs-icmp"], &once), (0, String::from("fs-icmp:0:0\n")));
    let frames: Vec<Vec<u8>> = (0..50).map(|_| rx4(1, 0, 0)).collect();
    mac.rx_deliver(chain(&pool, &frames));
    for _ in 0..20 {
        send(&mac, &tx4(1, 0, 0));
    }
    assert_eq!(run_flowstat(&["-p", "-o", "flow,ipkts,opkts", "fs-icmp"], &once), (0, String::from("fs-icmp:50:20\n")));
    let (st, out) = run_flowstat(&["fs-icmp"], &once);
    assert_eq!(st, 0);
    assert_eq!(
        out,
        "FLOW               IPKTS   RBYTES    IERRS    OPKTS   OBYTES    OERRS\n\
         fs-icmp               50    3.70K        0       20    1.48K        0\n"
    );
    assert_eq!(
        run_flowstat(&["-r", "-u", "R", "-l", l], &once).1,
        "FLOW               IPKTS   RBYTES    IERRS\nfs-icmp               50     3700        0\n"
    );
    assert_eq!(
        run_flowstat(&["-t", "-o", "flow,opkts,drops", "-l", l], &once).1,
        "FLOW               OPKTS    DROPS\nfs-icmp               20        0\n"
    );
    assert_eq!(norm(&run_flowstat(&["-o", "all", "fs-icmp"], &once).1)[0], "FLOW IPKTS RBYTES IERRS OPKTS OBYTES OERRS DROPS");
    // -i: cumulative first, then the change per interval.
    let mac2 = mac.clone();
    let pool2 = pool.clone();
    let clock = Clock::new(2500, move |ms| {
        if ms % 1000 == 500 {
            mac2.rx_deliver(chain(&pool2, &[rx4(1, 0, 0), rx4(1, 0, 0)]));
        }
    });
    assert_eq!(run_flowstat(&["-p", "-o", "ipkts", "-i", "1", "fs-icmp"], &clock), (0, String::from("50\n2\n2\n")));
    assert_eq!(env.flowadm(&["remove-flow", "fs-icmp"]), (0, String::new()));
}

#[test]
fn flowstat_errors_and_help() {
    let once = Clock::once();
    let stat = "usage: flowstat [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [-l link] [flow]\n";
    let hist = "usage: flowstat -h [-F gnuplot] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-l link] [flow]\n";
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (vec!["nosuchflow"], 1, format!("flowstat: flow 'nosuchflow' does not exist\n{stat}")),
        (vec!["-l", "nosuch0"], 1, format!("flowstat: link 'nosuch0' is not valid: object not found\n{stat}")),
        (vec!["-r", "-t"], 2, format!("flowstat: the options -t and -r are not compatible\n{stat}")),
        (vec!["-o", "bogus"], 1, format!("flowstat: unknown output field: 'bogus'\n{stat}")),
        (vec!["-r", "-o", "obytes"], 1, format!("flowstat: unknown output field: 'obytes'\n{stat}")),
        (vec!["-p"], 2, format!("flowstat: -p requires -o\n{stat}")),
        (vec!["-i", "0"], 1, format!("flowstat: invalid interval value '0'\n{stat}")),
        (vec!["-u", "X"], 1, format!("flowstat: invalid unit value 'X', unit must be R|K|M|G|T|P\n{stat}")),
        (vec!["-F", "gnuplot"], 2, format!("flowstat: the option -F requires -h\n{stat}")),
        (vec!["-q"], 2, format!("flowstat: illegal option -- q\n{stat}")),
        (vec!["a", "b"], 2, format!("flowstat: unexpected operand 'b'\n{stat}")),
        (vec!["-h", "-r"], 2, format!("flowstat: the option -h cannot be combined with -r\n{hist}")),
        (vec!["-h", "-F", "csv"], 1, format!("flowstat: invalid format 'csv': the only format is gnuplot\n{hist}")),
        (vec!["-h", "nosuchflow"], 1, format!("flowstat: flow 'nosuchflow' does not exist\n{hist}")),
    ];
    for (args, status, expect) in cases {
        let (st, out) = run_flowstat(&args, &once);
        assert_eq!((st, out.as_str()), (status, expect.as_str()), "flowstat {args:?}");
    }
    let (st, out) = run_flowstat(&["help"], &once);
    assert_eq!(st, 0);
    assert!(out.starts_with(stat) && out.contains("flowstat -h"), "{out}");
}

// ---- history ----

#[test]
fn history_keeps_per_interval_samples_and_bounds() {
    let mut h = History::new();
    let s = 1_000_000_000u64;
    h.record_at(10 * s, &[(Kind::Link, "net9", "", [100, 10_000, 5, 500]), (Kind::Flow, "f", "net9", [1, 1, 1, 1])]);
    assert!(h.is_empty(), "the first call only notes the counters");
    h.record_at(11 * s, &[(Kind::Link, "net9", "", [110, 11_000, 5, 500]), (Kind::Flow, "f", "net9", [1, 1, 1, 1])]);
    h.record_at(12 * s, &[(Kind::Link, "net9", "", [110, 11_000, 5, 500]), (Kind::Flow, "g", "net9", [3, 250, 0, 0])]);
    h.record_at(14 * s, &[(Kind::Link, "net9", "", [130, 13_000, 6, 1_000])]);
    assert_eq!(h.len(), 3);
    let links = h.summary(Kind::Link);
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].duration_ns, links[0].counts), (3 * s, [30, 3_000, 1, 500]), "idle intervals do not count");
    assert_eq!(links[0].bps(), 3_500 * 8 / 3);
    let flows = h.summary(Kind::Flow);
    assert_eq!(flows.len(), 1, "f was idle, g new since the last call");
    assert_eq!((flows[0].name.as_str(), flows[0].link.as_str(), flows[0].counts), ("g", "net9", [3, 250, 0, 0]));
    let series = h.series(Kind::Link, &["net9"]);
    assert_eq!(series, vec![(11 * s, vec![8_000]), (12 * s, vec![0]), (14 * s, vec![10_000])]);
    // Re-created (counters went backwards): from zero.
    h.record_at(15 * s, &[(Kind::Link, "net9", "", [2, 20, 0, 0])]);
    assert_eq!(h.summary(Kind::Link)[0].counts, [32, 3_020, 1, 500]);
    // Time that does not advance adds nothing.
    h.record_at(15 * s, &[(Kind::Link, "net9", "", [9, 90, 0, 0])]);
    assert_eq!(h.len(), 4);
    // Bounded: samples, and entries.
    let mut h = History::new();
    let names: Vec<String> = (0..100).map(|i| format!("f{i}")).collect();
    for t in 0..(history::HISTORY_SAMPLES as u64 + 50) {
        let objs: Vec<(Kind, &str, &str, [u64; 4])> = names.iter().map(|n| (Kind::Flow, n.as_str(), "net9", [t, t, t, t])).collect();
        h.record_at((t + 1) * s, &objs);
    }
    assert!(h.len() <= history::HISTORY_SAMPLES);
    assert!(h.len() * 100 <= history::HISTORY_ENTRIES, "{} samples of 100 entries", h.len());
    let sum = h.summary(Kind::Flow);
    assert_eq!(sum.len(), 100);
    assert_eq!(sum[0].duration_ns, h.len() as u64 * s);
}

#[test]
fn dlstat_and_flowstat_show_the_history() {
    // The only test that records into the system's history.
    let (_, mac) = nic();
    let l = mac.link();
    let links = [Datalink::Phys(mac.clone())];
    let pool = pool();
    let env = TestEnv::new(std::slice::from_ref(&mac), "fy");
    let _seen = record_rx(&mac);
    assert_eq!(env.flowadm(&["add-flow", "-l", l, "-a", "transport=udp", "fy-udp"]), (0, String::new()));
    let base = 7_000_000_000_000u64;
    history::record(base);
    // One second: 10 udp frames in (74 bytes), 5 out; the link's rings
    // count the sent ones (received frames were handed in above the ring).
    mac.rx_deliver(chain(&pool, &(0..10).map(|_| rx4(17, 1, 2)).collect::<Vec<_>>()));
    for _ in 0..5 {
        send(&mac, &tx4(17, 2, 1));
    }
    history::record(base + 1_000_000_000);
    history::record(base + 2_000_000_000);
    let once = Clock::once();
    let (st, out) = run_flowstat(&["-h", "fy-udp"], &once);
    assert_eq!(st, 0);
    assert_eq!(
        out,
        "FLOW           DURATION    IPKTS   RBYTES    OPKTS   OBYTES    BANDWIDTH\n\
         fy-udp                1       10      740        5      370     8.88Kbps\n"
    );
    assert_eq!(run_flowstat(&["-h", "-p", "-o", "flow,duration,bandwidth", "-l", l], &once).1, "fy-udp:1:8880\n");
    assert_eq!(
        run_flowstat(&["-h", "-F", "gnuplot", "fy-udp"], &once).1,
        "# Time fy-udp\n7001.000 8.88\n7002.000 0.00\n"
    );
    let (st, out) = run_dlstat(&["show-link", "-h", "-p", "-o", "link,duration,opkts,obytes,bandwidth", l], &links);
    assert_eq!((st, out), (0, format!("{l}:1:5:370:2960\n")));
    let (st, out) = run_dlstat(&["show-link", "-h", "-F", "gnuplot"], &links);
    assert_eq!((st, out), (0, format!("# Time {l}\n7001.000 2.96\n7002.000 0.00\n")));
    let (st, out) = run_dlstat(&["show-link", "-h", "-r"], &links);
    assert_eq!(st, 2);
    assert!(out.starts_with("dlstat: the option -h cannot be combined with -r\nusage: dlstat show-link -h [-F gnuplot]"), "{out}");
    let (_, out) = run_dlstat(&["help", "show-link"], &links);
    assert!(out.contains("dlstat show-link -h"), "{out}");
    // A removed flow's history stays.
    assert_eq!(env.flowadm(&["remove-flow", "fy-udp"]), (0, String::new()));
    assert_eq!(run_flowstat(&["-h", "-p", "-o", "flow,ipkts", "fy-udp"], &once).1, "fy-udp:10\n");
}

