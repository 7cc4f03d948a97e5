//! Test network: stack instances on fake links, and optionally a plain
//! smoltcp "host" playing the client, wired to one learning hub, with a
//! simulated clock. Frames travel as bytes and are copied into each
//! receiver's own buffer pool (like DMA), optionally split across several
//! buffers to exercise linearization.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arbalest_mac::dma::host::HeapDma;
use arbalest_mac::{BufPool, Mblk};
use arbalest_netstack::admin::{self, AdminEnv};
use arbalest_netstack::fireengine::squeue::SqStats;
use arbalest_netstack::{InstanceConfig, IpInstance, IpStack, Ipv4Net, Link, NetError, StackKind};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, EthernetFrame, HardwareAddress, IpAddress, IpCidr, Ipv4Cidr};

pub const BUF: usize = 2048;

/// A link whose Tx frames the hub collects.
pub struct FakeLink {
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: usize,
    pub tx_pool: Arc<BufPool>,
    pub rx_pool: Arc<BufPool>,
    pub sent: Mutex<VecDeque<Mblk>>,
    pub up: AtomicBool,
    /// Refuse every Tx allocation.
    pub starve: AtomicBool,
    /// Say the Tx ring is blocked (`Link::tx_ready` false).
    pub blocked: AtomicBool,
    /// The LSO capability offered (`Link::lso_tcp4_max`), 0: none.
    pub lso: std::sync::atomic::AtomicUsize,
}

impl FakeLink {
    pub fn new(dma: &Arc<HeapDma>, name: &str, mac: [u8; 6]) -> Arc<FakeLink> {
        let tx_pool = BufPool::new(dma.clone(), BUF, 1024).unwrap();
        let rx_pool = BufPool::new(dma.clone(), BUF, 2048).unwrap();
        Arc::new(FakeLink {
            name: name.into(),
            mac,
            mtu: 1500,
            tx_pool,
            rx_pool,
            sent: Mutex::new(VecDeque::new()),
            up: AtomicBool::new(true),
            starve: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            lso: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// `bytes` as a received packet, in `segs` buffers.
    pub fn rx_mblk(&self, bytes: &[u8], segs: usize) -> Option<Mblk> {
        let segs = segs.clamp(1, bytes.len().max(1));
        let chunk = bytes.len().div_ceil(segs).max(1);
        let mut head: Option<Mblk> = None;
        for part in bytes.chunks(chunk) {
            let mut m = Mblk::new(self.rx_pool.alloc()?);
            assert!(m.append(part));
            match head.as_mut() {
                Some(h) => h.push_cont(m),
                None => head = Some(m),
            }
        }
        if head.is_none() {
            head = Some(Mblk::new(self.rx_pool.alloc()?));
        }
        head
    }
}

impl Link for FakeLink {
    fn name(&self) -> &str {
        &self.name
    }
    fn mac_addr(&self) -> [u8; 6] {
        self.mac
    }
    fn mtu(&self) -> usize {
        self.mtu
    }
    fn alloc_tx(&self, len: usize) -> Option<Mblk> {
        if self.starve.load(Ordering::Relaxed) || len + 64 > BUF {
            return None;
        }
        // As the MAC layer does: `len` bytes after the headroom.
        Some(Mblk::with_range(self.tx_pool.alloc()?, 64, len))
    }
    fn tx(&self, m: Mblk) {
        self.sent.lock().unwrap().push_back(m);
    }
    fn link_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
    fn tx_ready(&self) -> bool {
        !self.blocked.load(Ordering::Relaxed)
    }
    fn lso_tcp4_max(&self) -> Option<usize> {
        Some(self.lso.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }
}

/// A plain smoltcp host on the hub (the test's client).
pub struct Peer {
    pub mac: [u8; 6],
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    next_port: u16,
}

struct PeerDev<'a> {
    rx: &'a mut VecDeque<Vec<u8>>,
    tx: &'a mut VecDeque<Vec<u8>>,
}

pub struct PeerRx(Vec<u8>);
pub struct PeerTx<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for PeerRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for PeerTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut v = vec![0u8; len];
        let r = f(&mut v);
        self.0.push_back(v);
        r
    }
}

impl phy::Device for PeerDev<'_> {
    type RxToken<'b>
        = PeerRx
    where
        Self: 'b;
    type TxToken<'b>
        = PeerTx<'b>
    where
        Self: 'b;
    fn receive(&mut self, _: Instant) -> Option<(PeerRx, PeerTx<'_>)> {
        let f = self.rx.pop_front()?;
        Some((PeerRx(f), PeerTx(self.tx)))
    }
    fn transmit(&mut self, _: Instant) -> Option<PeerTx<'_>> {
        Some(PeerTx(self.tx))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

impl Peer {
    pub fn new(mac: [u8; 6], addr: Ipv4Net) -> Peer {
        let (mut rx, mut tx) = (VecDeque::new(), VecDeque::new());
        let mut dev = PeerDev { rx: &mut rx, tx: &mut tx };
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        cfg.random_seed = 77;
        let mut iface = Interface::new(cfg, &mut dev, Instant::ZERO);
        iface.update_ip_addrs(|v| {
            v.push(IpCidr::Ipv4(Ipv4Cidr::new(addr.addr(), addr.prefix()))).unwrap();
        });
        Peer { mac, iface, sockets: SocketSet::new(Vec::new()), rx, tx, next_port: 40000 }
    }

    fn poll(&mut self, now_us: u64) {
        let mut dev = PeerDev { rx: &mut self.rx, tx: &mut self.tx };
        self.iface.poll(Instant::from_micros(now_us as i64), &mut dev, &mut self.sockets);
    }

    /// A TCP connection attempt to `dst:port` with 64 KiB buffers.
    pub fn connect(&mut self, dst: Ipv4Addr, port: u16) -> SocketHandle {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 65536]), tcp::SocketBuffer::new(vec![0; 65536]));
        self.next_port += 1;
        s.connect(self.iface.context(), (IpAddress::Ipv4(dst), port), self.next_port).unwrap();
        self.sockets.add(s)
    }

    /// A TCP socket listening on `port` with 64 KiB buffers.
    pub fn listen(&mut self, port: u16) -> SocketHandle {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 65536]), tcp::SocketBuffer::new(vec![0; 65536]));
        s.listen(port).unwrap();
        self.sockets.add(s)
    }

    pub fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    /// A UDP socket bound to `port`.
    pub fn udp_bind(&mut self, port: u16) -> SocketHandle {
        let b = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 512], vec![0; 512 * 1024]);
        let mut s = udp::Socket::new(b(), b());
        s.bind(port).unwrap();
        self.sockets.add(s)
    }

    pub fn udp(&mut self, h: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(h)
    }
}

/// Application logic of the peer (see [`Net::peer_app`]).
pub type PeerApp = Box<dyn FnMut(&mut Peer)>;

/// One hub port.
pub struct Port {
    pub link: Arc<FakeLink>,
    pub inst: Option<Arc<IpInstance>>,
}

/// The simulated network.
pub struct Net {
    pub now_us: u64,
    /// What `squeue_stats` returns (for `sqstat`).
    pub squeues: Vec<SqStats>,
    /// Later `squeues`, each taking effect once the clock reaches its
    /// time (µs), as `sleep_ms` advances it.
    pub squeue_script: VecDeque<(u64, Vec<SqStats>)>,
    pub dma: Arc<HeapDma>,
    pub ports: Vec<Port>,
    pub peer: Option<Peer>,
    /// Split received frames into this many buffers.
    pub rx_segs: usize,
    pub cfg: InstanceConfig,
    /// Frames the hub could not place (no rx buffer).
    pub hub_drops: u64,
    /// Application logic of the peer, run before each of its polls (a
    /// server the test scripts).
    pub peer_app: Option<PeerApp>,
}

pub fn mac(n: u8) -> [u8; 6] {
    [0x02, 0x08, 0x20, 0, 0, n]
}

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> Ipv4Net {
    let (a, p) = s.split_once('/').unwrap();
    Ipv4Net::new(ip(a), p.parse().unwrap()).unwrap()
}

impl Net {
    pub fn new() -> Net {
        Net {
            now_us: 1_000_000,
            squeues: Vec::new(),
            squeue_script: VecDeque::new(),
            dma: Arc::new(HeapDma::default()),
            ports: Vec::new(),
            peer: None,
            rx_segs: 1,
            cfg: InstanceConfig::default(),
            hub_drops: 0,
            peer_app: None,
        }
    }

    /// Adds a link (not yet plumbed); returns its port index.
    pub fn add_link(&mut self, name: &str, n: u8) -> usize {
        let link = FakeLink::new(&self.dma, name, mac(n));
        self.ports.push(Port { link, inst: None });
        self.ports.len() - 1
    }

    /// Plumbs an instance on port `i`.
    pub fn plumb(&mut self, i: usize) -> Arc<IpInstance> {
        let inst = Arc::new(IpInstance::new(self.ports[i].link.clone(), self.cfg).unwrap());
        self.ports[i].inst = Some(inst.clone());
        inst
    }

    /// A link with an instance and address.
    pub fn add_instance(&mut self, name: &str, n: u8, addr: &str) -> Arc<IpInstance> {
        let i = self.add_link(name, n);
        let inst = self.plumb(i);
        inst.add_addr(&format!("{name}/v4"), net(addr)).unwrap();
        inst
    }

    pub fn add_peer(&mut self, n: u8, addr: &str) {
        self.peer = Some(Peer::new(mac(n), net(addr)));
    }

    pub fn peer(&mut self) -> &mut Peer {
        self.peer.as_mut().unwrap()
    }

    pub fn inst(&self, i: usize) -> Arc<IpInstance> {
        self.ports[i].inst.clone().unwrap()
    }

    /// Delivers one frame from `from` (port index, or `None` for the peer).
    fn deliver(&mut self, from: Option<usize>, bytes: &[u8]) {
        let Ok(eth) = EthernetFrame::new_checked(bytes) else { return };
        let dst = eth.dst_addr();
        let to_all = !dst.is_unicast();
        let mut lost = 0;
        for (i, p) in self.ports.iter().enumerate() {
            if from == Some(i) || !(to_all || dst.0 == p.link.mac) {
                continue;
            }
            if let Some(inst) = &p.inst {
                match p.link.rx_mblk(bytes, self.rx_segs) {
                    Some(m) => inst.input(m),
                    None => lost += 1,
                }
            }
        }
        self.hub_drops += lost;
        if let Some(peer) = &mut self.peer
            && from.is_some()
            && (to_all || dst.0 == peer.mac)
        {
            peer.rx.push_back(bytes.to_vec());
        }
    }

    /// Polls everyone once at the current time and moves the frames sent;
    /// returns how many moved.
    pub fn step(&mut self) -> usize {
        let now = self.now_us;
        for p in &self.ports {
            if let Some(inst) = &p.inst {
                inst.poll_us(now);
            }
        }
        if let Some(peer) = &mut self.peer {
            if let Some(app) = &mut self.peer_app {
                app(peer);
            }
            peer.poll(now);
        }
        let mut frames: Vec<(Option<usize>, Vec<u8>)> = Vec::new();
        for (i, p) in self.ports.iter().enumerate() {
            let mut q = p.link.sent.lock().unwrap();
            while let Some(m) = q.pop_front() {
                let mut v = vec![0u8; m.total_len()];
                m.copy_to(&mut v);
                frames.push((Some(i), v));
            }
        }
        if let Some(peer) = &mut self.peer {
            while let Some(f) = peer.tx.pop_front() {
                frames.push((None, f));
            }
        }
        let n = frames.len();
        for (from, f) in frames {
            self.deliver(from, &f);
        }
        n
    }

    /// Steps until quiet, then advances the clock by 1 ms.
    pub fn tick(&mut self) {
        for _ in 0..64 {
            if self.step() == 0 {
                break;
            }
        }
        self.now_us += 1000;
    }

    pub fn run_ms(&mut self, ms: u64) {
        for _ in 0..ms {
            self.tick();
        }
    }

    /// Ticks until `done` (checked before each tick) or `max_ms`; returns
    /// whether `done` held.
    pub fn run_until(&mut self, max_ms: u64, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        for _ in 0..max_ms {
            if done(self) {
                return true;
            }
            self.tick();
        }
        done(self)
    }

    /// Runs an admin command line; returns (status, output).
    pub fn cmd(&mut self, line: &str) -> (i32, String) {
        self.cmd_interrupted(line, None)
    }

    /// Runs an admin command line that is interrupted after `after` checks.
    pub fn cmd_interrupted(&mut self, line: &str, after: Option<u32>) -> (i32, String) {
        let argv: Vec<&str> = line.split_whitespace().collect();
        let mut out = String::new();
        let status = {
            let mut env = TestEnv { net: self, interrupt_after: after };
            admin::run(&argv, &mut env, &mut out).expect("known command")
        };
        (status, out)
    }

    /// Sum of a counter over the run: convenience for assertions.
    pub fn dump(&mut self) -> String {
        let mut s = String::new();
        for p in &self.ports {
            if let Some(i) = &p.inst {
                let _ = writeln!(s, "{}: {:?}", p.link.name, i.stats());
            }
        }
        s
    }
}

/// The admin environment over the test network.
pub struct TestEnv<'a> {
    pub net: &'a mut Net,
    /// Report an interrupt once this many `interrupted` calls were made.
    pub interrupt_after: Option<u32>,
}

impl AdminEnv for TestEnv<'_> {
    fn instances(&self) -> Vec<Arc<dyn IpStack>> {
        self.net.ports.iter().filter_map(|p| p.inst.clone().map(|i| i as Arc<dyn IpStack>)).collect()
    }

    fn squeue_stats(&self) -> Vec<SqStats> {
        self.net.squeues.clone()
    }

    fn create_if(&mut self, link: &str, stack: Option<StackKind>) -> Result<Arc<dyn IpStack>, NetError> {
        if stack == Some(StackKind::FireEngine) {
            return Err(NetError::NotSupported);
        }
        let i = self.net.ports.iter().position(|p| p.link.name == link).ok_or(NetError::NoSuchInterface)?;
        if self.net.ports[i].inst.is_some() {
            return Err(NetError::InterfaceExists);
        }
        Ok(self.net.plumb(i))
    }

    fn delete_if(&mut self, link: &str) -> Result<(), NetError> {
        let p = self
            .net
            .ports
            .iter_mut()
            .find(|p| p.link.name == link && p.inst.is_some())
            .ok_or(NetError::NoSuchInterface)?;
        p.inst = None;
        Ok(())
    }

    fn now_us(&self) -> u64 {
        self.net.now_us
    }

    fn sleep_ms(&mut self, ms: u64) {
        self.net.run_ms(ms);
        while self.net.squeue_script.front().is_some_and(|(t, _)| *t <= self.net.now_us) {
            if let Some((_, s)) = self.net.squeue_script.pop_front() {
                self.net.squeues = s;
            }
        }
    }

    fn interrupted(&mut self) -> bool {
        match &mut self.interrupt_after {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }

    fn poll_now(&mut self) {
        self.net.step();
    }
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// The bytes a frame the stack sent would have on the wire: a partial
/// checksum finished first, as the MAC layer or the device would (tests
/// with no MAC layer under them deliver frames with this).
pub fn wire_bytes(mut m: arbalest_mac::Mblk) -> Vec<u8> {
    assert!(arbalest_mac::cksum::finish(&mut m), "a partial checksum inside the frame");
    let mut v = vec![0u8; m.total_len()];
    m.copy_to(&mut v);
    v
}

/// The fake kernel of FireEngine's squeues: a clock that moves when a test
/// says, the CPU the calling "thread" is on, and the worker wake-ups asked
/// for (a test drains them with `FeSystem::worker_drain`).
#[derive(Default)]
pub struct FakeSqEnv {
    pub now_ns: std::sync::atomic::AtomicU64,
    pub cpu: std::sync::atomic::AtomicU64,
    pub wakes: Mutex<VecDeque<u32>>,
}

impl arbalest_netstack::fireengine::squeue::SqEnv for FakeSqEnv {
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }
    fn cpu(&self) -> u32 {
        self.cpu.load(Ordering::SeqCst) as u32
    }
    fn wake_worker(&self, sq: u32, _delay_ns: u64) {
        self.wakes.lock().unwrap().push_back(sq);
    }
}
