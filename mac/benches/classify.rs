//! Flow classification cost on the host: nanoseconds per packet with 0, 1,
//! 100 and 10000 flows on a link.
//!
//! * `classify`: `FlowTable::classify` alone (parse the frame, look the
//!   key up) for the three kinds of table — `transport+local_port`
//!   (hashed by protocol and port), `remote_ip` with /32, /24 and /16
//!   prefixes (one hash probe per prefix length, longest first) and the
//!   full `transport+local_ip+local_port+remote_ip+remote_port`;
//! * `rx path`: a chain of 64 frames handed to a link (the virtual switch,
//!   the primary MAC client's `deliver`: the no-flow check, the
//!   classification, the flow's counters and priority lanes) up to the
//!   receive function, with `transport=udp,local_port=N` flows; with 0
//!   flows this is the path as it was before flows (one relaxed load
//!   added).
//!
//! Run: `cargo bench -p arbalest-mac --bench classify`.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arbalest_mac::buf::BufPool;
use arbalest_mac::flow::entry::{FlowEntry, FlowProps};
use arbalest_mac::flow::registry;
use arbalest_mac::flow::{Dir, FlowDesc, FlowTable};
use arbalest_mac::link::Datalink;
use arbalest_mac::mblk::{Mblk, MblkChain};
use arbalest_mac::provider::{
    CksumCaps, Duplex, GroupInfo, LinkState, LsoCaps, MacAddr, MacError, MacInfo, MacProvider, MacUpcalls, RxRing, TxRing,
};
use arbalest_mac::stats::{DeviceCounters, RingStats};
use arbalest_mac::{DmaAllocator, DmaRegion};

const OUR_MAC: MacAddr = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// DMA memory for the bench: leaked heap blocks (never freed; the pool
/// is made once).
struct LeakDma;

impl DmaAllocator for LeakDma {
    fn alloc(&self, size: usize, align: usize) -> Option<DmaRegion> {
        let align = align.max(1);
        let block: &'static mut [u8] = Box::leak(vec![0u8; size + align].into_boxed_slice());
        let p = block.as_mut_ptr() as usize;
        let vaddr = (p + align - 1) & !(align - 1);
        Some(DmaRegion { vaddr, paddr: vaddr as u64, size })
    }
    fn free(&self, _region: DmaRegion) {}
}

/// A NIC that does nothing: the bench hands chains to the link itself.
struct NullNic {
    info: MacInfo,
    rx: NullRx,
    tx: NullTx,
}

struct NullRx(RingStats);
struct NullTx(RingStats);

impl RxRing for NullRx {
    fn poll(&self, _max_bytes: usize) -> MblkChain {
        MblkChain::new()
    }
    fn intr_enable(&self) {}
    fn intr_disable(&self) {}
    fn cpu(&self) -> usize {
        0
    }
    fn stats(&self) -> &RingStats {
        &self.0
    }
}

impl TxRing for NullTx {
    fn tx(&self, _chain: MblkChain) -> MblkChain {
        MblkChain::new()
    }
    fn reclaim(&self) {}
    fn stats(&self) -> &RingStats {
        &self.0
    }
}

impl MacProvider for NullNic {
    fn info(&self) -> &MacInfo {
        &self.info
    }
    fn start(&self, _up: Arc<dyn MacUpcalls>) -> Result<(), MacError> {
        Ok(())
    }
    fn stop(&self) {}
    fn rx_ring(&self, index: usize) -> Option<&dyn RxRing> {
        (index == 0).then_some(&self.rx as &dyn RxRing)
    }
    fn tx_ring(&self, index: usize) -> Option<&dyn TxRing> {
        (index == 0).then_some(&self.tx as &dyn TxRing)
    }
    fn unicast_add(&self, _group: usize, _addr: MacAddr) -> Result<(), MacError> {
        Ok(())
    }
    fn unicast_remove(&self, _group: usize, _addr: MacAddr) -> Result<(), MacError> {
        Ok(())
    }
    fn set_promisc(&self, _on: bool) -> Result<(), MacError> {
        Ok(())
    }
    fn multicast_add(&self, _addr: MacAddr) -> Result<(), MacError> {
        Ok(())
    }
    fn multicast_remove(&self, _addr: MacAddr) -> Result<(), MacError> {
        Ok(())
    }
    fn link_state(&self) -> LinkState {
        LinkState::Up
    }
    fn speed_mbps(&self) -> u64 {
        10_000
    }
    fn duplex(&self) -> Duplex {
        Duplex::Full
    }
    fn counters(&self) -> DeviceCounters {
        DeviceCounters::default()
    }
}

fn null_nic() -> Arc<NullNic> {
    let group = |slots| vec![GroupInfo { rings: vec![0], unicast_slots: slots }];
    Arc::new(NullNic {
        info: MacInfo {
            driver: "null",
            factory_addr: OUR_MAC,
            extra_factory_addrs: Vec::new(),
            mtu: 1500,
            rx_groups: group(4),
            tx_groups: group(0),
            rx_rings: 1,
            tx_rings: 1,
            pollable: true,
            cksum: CksumCaps::default(),
            lso: LsoCaps::default(),
        },
        rx: NullRx(RingStats::default()),
        tx: NullTx(RingStats::default()),
    })
}

/// Ethernet + IPv4 + UDP/TCP, to us: `src`:`sport` → `dst`:`dport`.
fn frame(proto: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&OUR_MAC);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x65, 0x43, 0x21]);
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f
}

fn detached(name: &str, attrs: &str) -> Arc<FlowEntry> {
    let d = FlowDesc::parse(&[attrs]).expect("attributes");
    Arc::new(FlowEntry::detached(name, d, FlowProps::default()))
}

/// Nanoseconds per call of `f` (which handles `per_call` packets), the
/// best of a few runs of about 100 ms.
fn ns_per_packet(per_call: usize, mut f: impl FnMut()) -> f64 {
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed().as_millis() >= 20 {
            break;
        }
        n *= 2;
    }
    n *= 5;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / (n as f64 * per_call as f64));
    }
    best
}

/// `classify` over `frames` with the table built from `flows`.
fn classify_cost(flows: &[(String, String)], frames: &[Vec<u8>]) -> (f64, usize) {
    let mut t = FlowTable::new();
    for (n, a) in flows {
        t.insert(detached(n, a)).expect("insert");
    }
    let hits = frames.iter().filter(|f| t.classify(f, Dir::Rx).is_some()).count();
    let ns = ns_per_packet(frames.len(), || {
        for f in frames {
            black_box(t.classify(black_box(f), Dir::Rx));
        }
    });
    (ns, hits)
}

fn port_flows(n: usize) -> Vec<(String, String)> {
    (1..=n).map(|p| (format!("p{p}"), format!("transport=udp,local_port={p}"))).collect()
}

fn port_frames(n: usize) -> Vec<Vec<u8>> {
    (0..64).map(|i| frame(17, [10, 0, 0, 1], [10, 0, 0, 2], 999, (1 + (i * 7919) % n.max(1)) as u16)).collect()
}

fn ip_flows(n: usize) -> Vec<(String, String)> {
    // A third each of /32, /24 and /16 remote networks.
    (0..n)
        .map(|i| {
            let [_, _, b, c] = (i as u32).to_be_bytes();
            let a = match i % 3 {
                0 => format!("remote_ip=10.{b}.{c}.1"),
                1 => format!("remote_ip=11.{b}.{c}.0/24"),
                _ => format!("remote_ip={}.{c}.0.0/16", 12 + b),
            };
            (format!("i{i}"), a)
        })
        .collect()
}

fn ip_frames(n: usize) -> Vec<Vec<u8>> {
    (0..64)
        .map(|k| {
            let i = (k * 7919) % n.max(1);
            let [_, _, b, c] = (i as u32).to_be_bytes();
            let src = match i % 3 {
                0 => [10, b, c, 1],
                1 => [11, b, c, 77],
                _ => [12 + b, c, 3, 4],
            };
            frame(6, src, [192, 168, 0, 1], 1, 2)
        })
        .collect()
}

fn tuple_flows(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let [_, _, b, c] = (i as u32).to_be_bytes();
            (
                format!("t{i}"),
                format!("transport=tcp,local_ip=192.168.0.1,local_port=443,remote_ip=10.{b}.{c}.1,remote_port={}", 1024 + i),
            )
        })
        .collect()
}

fn tuple_frames(n: usize) -> Vec<Vec<u8>> {
    (0..64)
        .map(|k| {
            let i = (k * 7919) % n.max(1);
            let [_, _, b, c] = (i as u32).to_be_bytes();
            frame(6, [10, b, c, 1], [192, 168, 0, 1], (1024 + i) as u16, 443)
        })
        .collect()
}

/// The receive path of a link with `n` port flows: ns per packet.
fn rx_path_cost(n: usize) -> f64 {
    let dma: Arc<dyn DmaAllocator> = Arc::new(LeakDma);
    let mac = arbalest_mac::mac::register(null_nic(), dma.clone()).expect("register");
    mac.start().expect("start");
    let link = Datalink::Phys(mac.clone());
    for (name, attrs) in port_flows(n) {
        let d = FlowDesc::parse(&[&attrs]).expect("attributes");
        registry::add(&format!("{}-{name}", mac.link()), &link, d, FlowProps::default(), true).expect("add-flow");
    }
    let pool = BufPool::new(dma, 2048, 256).expect("pool");
    let chain: MblkChain = port_frames(n)
        .iter()
        .map(|f| {
            let mut m = Mblk::new(pool.alloc().expect("buffer"));
            m.append(f);
            m
        })
        .collect();
    // The receive function gives the packets back for the next round.
    let back: Arc<Mutex<MblkChain>> = Arc::new(Mutex::new(chain));
    let b2 = back.clone();
    mac.set_rx(Some(Arc::new(move |mut c: MblkChain| b2.lock().unwrap().append(&mut c))));
    let ns = ns_per_packet(64, || {
        let c = std::mem::take(&mut *back.lock().unwrap());
        mac.rx_deliver(c);
    });
    assert_eq!(back.lock().unwrap().len(), 64, "every packet came back");
    let counted: u64 = registry::on_link(mac.link()).iter().map(|f| f.counters().ipkts).sum();
    assert!(n == 0 || counted > 0);
    registry::remove_link(mac.link());
    ns
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    println!("flow classification, ns per packet (host, best of 5 runs; 64-frame working set)");
    println!();
    println!("{:>6}  {:>14}  {:>14}  {:>14}  {:>14}", "flows", "port table", "ip LPM table", "5-tuple table", "rx path");
    for n in [0usize, 1, 100, 10_000] {
        let (port, ph) = classify_cost(&port_flows(n), &port_frames(n));
        let (ip, ih) = classify_cost(&ip_flows(n), &ip_frames(n));
        let (tuple, th) = classify_cost(&tuple_flows(n), &tuple_frames(n));
        if n > 0 {
            assert_eq!((ph, ih, th), (64, 64, 64), "every frame finds its flow");
        }
        let rx = rx_path_cost(n);
        println!("{n:>6}  {port:>14.1}  {ip:>14.1}  {tuple:>14.1}  {rx:>14.1}");
    }
    println!();
    println!("port: transport=udp,local_port=N; ip: remote_ip /32, /24, /16 (a third each);");
    println!("5-tuple: transport,local_ip,local_port,remote_ip,remote_port; rx path: a 64-frame chain");
    println!("through the link's switch and client to the receive function, with port flows.");
}
