//! A fake NIC for tests: a [`MacProvider`] with N Rx and M Tx rings over
//! heap "DMA" memory ([`HeapDma`]), driven by the test instead of a device.
//!
//! * [`FakeNic::inject`] puts a received frame on an Rx ring; it comes out
//!   of that ring's `poll`. If the ring's interrupt is on (and the NIC is
//!   started) the "interrupt fires" as a driver's would: the ring counts it,
//!   switches its interrupt off and calls [`MacUpcalls::rx_ready`].
//!   `intr_enable` with packets waiting fires again at once, as the
//!   [`RxRing`] contract asks.
//! * Tx rings record what they send ([`FakeNic::sent`], [`FakeNic::take_sent`]).
//!   [`FakeNic::set_tx_full`] / [`FakeNic::set_tx_room`] make a ring refuse
//!   packets (`tx` returns them unsent); [`FakeNic::resume_tx`] opens it
//!   again and calls [`MacUpcalls::tx_resume`].
//! * [`FakeNic::set_link`] changes the link state and calls
//!   [`MacUpcalls::link_changed`].
//! * `intr_enable` / `intr_disable` calls made by the MAC layer are counted
//!   per ring ([`FakeNic::intr_enables`], [`FakeNic::intr_disables`]).
//! * `set_cpu` records the ring's new CPU (ring i starts on CPU i), which
//!   `cpu` then reports; calls are counted ([`FakeNic::set_cpu_calls`]).
//!   It refuses CPUs at or above [`FakeNic::set_cpu_limit`] with
//!   `Invalid`, and every call with the error [`FakeNic::fail_set_cpu`]
//!   sets, changing nothing.
//!
//! Upcalls are never made with a fake lock held, so the MAC layer may call
//! back into the fake from them.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;

use crate::buf::BufPool;
use crate::dma::DmaAllocator;
use crate::dma::host::HeapDma;
use crate::mac::Mac;
use crate::mblk::{Mblk, MblkChain};
use crate::provider::{
    CksumCaps, Duplex, GroupInfo, LinkState, LsoCaps, MacAddr, MacError, MacInfo, MacProvider, MacUpcalls, RxRing, TxRing,
};
use crate::stats::{DeviceCounters, RingStats};

/// Size of the fake's Rx buffers (largest frame [`FakeNic::inject`] takes).
pub const FAKE_RX_BUF: usize = 2048;
/// Rx buffers in the fake's pool (frames waiting in rings hold them).
pub const FAKE_RX_BUFS: usize = 1024;
/// Unicast filter slots of the default Rx group in [`FakeNic::new`].
pub const FAKE_UNICAST_SLOTS: usize = 4;

/// Where the MAC layer's upcalls are, once started.
#[derive(Default)]
struct UpSlot(Mutex<Option<Arc<dyn MacUpcalls>>>);

impl UpSlot {
    fn get(&self) -> Option<Arc<dyn MacUpcalls>> {
        self.0.lock().clone()
    }
}

/// What `set_cpu` accepts, shared by the rings.
struct CpuCtl {
    /// CPUs at or above this are refused (`Invalid`).
    limit: AtomicUsize,
    /// Every call fails with this, if set.
    fail: Mutex<Option<MacError>>,
}

/// One fake Rx ring.
pub struct FakeRxRing {
    index: usize,
    cpu: AtomicUsize,
    set_cpus: AtomicU64,
    cpu_ctl: Arc<CpuCtl>,
    queue: Mutex<VecDeque<Mblk>>,
    intr_on: AtomicBool,
    enables: AtomicU64,
    disables: AtomicU64,
    stats: RingStats,
    up: Arc<UpSlot>,
}

impl FakeRxRing {
    /// The "interrupt": when enabled, count it, switch it off and tell the
    /// MAC layer (outside any lock).
    fn fire(&self) {
        if self.intr_on.swap(false, Ordering::AcqRel) {
            self.stats.interrupts.fetch_add(1, Ordering::Relaxed);
            if let Some(up) = self.up.get() {
                up.rx_ready(self.index);
            }
        }
    }
}

impl RxRing for FakeRxRing {
    fn poll(&self, max_bytes: usize) -> MblkChain {
        let mut chain = MblkChain::new();
        let mut q = self.queue.lock();
        while chain.is_empty() || chain.bytes() < max_bytes {
            let Some(mut m) = q.pop_front() else { break };
            m.meta.ring = self.index as u16;
            self.stats.count(m.total_len());
            chain.push(m);
        }
        chain
    }

    fn intr_enable(&self) {
        self.enables.fetch_add(1, Ordering::Relaxed);
        self.intr_on.store(true, Ordering::Release);
        let pending = !self.queue.lock().is_empty();
        if pending {
            self.fire();
        }
    }

    fn intr_disable(&self) {
        self.disables.fetch_add(1, Ordering::Relaxed);
        self.intr_on.store(false, Ordering::Release);
    }

    fn cpu(&self) -> usize {
        self.cpu.load(Ordering::Acquire)
    }

    fn set_cpu(&self, cpu: usize) -> Result<(), MacError> {
        self.set_cpus.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = *self.cpu_ctl.fail.lock() {
            return Err(e);
        }
        if cpu >= self.cpu_ctl.limit.load(Ordering::Acquire) {
            return Err(MacError::Invalid);
        }
        self.cpu.store(cpu, Ordering::Release);
        Ok(())
    }

    fn stats(&self) -> &RingStats {
        &self.stats
    }
}

/// One fake Tx ring.
pub struct FakeTxRing {
    sent: Mutex<Vec<Vec<u8>>>,
    /// Packets it still accepts; `None`: any number.
    room: Mutex<Option<usize>>,
    reclaims: AtomicU64,
    stats: RingStats,
}

impl TxRing for FakeTxRing {
    fn tx(&self, chain: MblkChain) -> MblkChain {
        let mut room = self.room.lock();
        let mut rest = MblkChain::new();
        let mut sent = self.sent.lock();
        for m in chain {
            if !rest.is_empty() || *room == Some(0) {
                rest.push(m);
                continue;
            }
            let mut bytes = alloc::vec![0u8; m.total_len()];
            let n = m.copy_to(&mut bytes);
            bytes.truncate(n);
            self.stats.count(n);
            sent.push(bytes);
            if let Some(r) = room.as_mut() {
                *r = r.saturating_sub(1);
            }
        }
        if !rest.is_empty() {
            self.stats.blocked.fetch_add(1, Ordering::Relaxed);
        }
        rest
    }

    fn reclaim(&self) {
        self.reclaims.fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self) -> &RingStats {
        &self.stats
    }
}

/// The fake NIC.
pub struct FakeNic {
    info: MacInfo,
    dma: Arc<HeapDma>,
    pool: Arc<BufPool>,
    rx: Vec<FakeRxRing>,
    tx: Vec<FakeTxRing>,
    up: Arc<UpSlot>,
    cpu_ctl: Arc<CpuCtl>,
    link: AtomicU8,
    speed: AtomicU64,
    duplex: Mutex<Duplex>,
    started: AtomicBool,
    stopped: AtomicBool,
    unicast: Mutex<Vec<(usize, MacAddr)>>,
    multicast: Mutex<Vec<MacAddr>>,
    promisc: AtomicBool,
    counters: Mutex<DeviceCounters>,
    /// Frames `inject` could not take (no buffer, too big, no such ring).
    pub inject_drops: AtomicU64,
}

fn link_to_u8(s: LinkState) -> u8 {
    match s {
        LinkState::Up => 0,
        LinkState::Down => 1,
        LinkState::Unknown => 2,
    }
}

fn link_from_u8(v: u8) -> LinkState {
    match v {
        0 => LinkState::Up,
        1 => LinkState::Down,
        _ => LinkState::Unknown,
    }
}

/// The info [`FakeNic::new`] registers: driver `vioif`, MTU 1500, one Rx
/// group holding every Rx ring ([`FAKE_UNICAST_SLOTS`] unicast slots) and
/// one Tx group holding every Tx ring.
pub fn fake_info(rx_rings: usize, tx_rings: usize) -> MacInfo {
    let group = |n: usize, slots: usize| -> Vec<GroupInfo> {
        if n == 0 { Vec::new() } else { alloc::vec![GroupInfo { rings: (0..n).collect(), unicast_slots: slots }] }
    };
    MacInfo {
        driver: "vioif",
        factory_addr: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
        extra_factory_addrs: Vec::new(),
        mtu: 1500,
        rx_groups: group(rx_rings, FAKE_UNICAST_SLOTS),
        tx_groups: group(tx_rings, 0),
        rx_rings,
        tx_rings,
        pollable: true,
        cksum: CksumCaps::default(),
        lso: LsoCaps::default(),
    }
}

impl FakeNic {
    /// A fake `vioif` with `rx_rings` Rx and `tx_rings` Tx rings (see
    /// [`fake_info`]), link up, 10000 Mb/s, full duplex.
    pub fn new(rx_rings: usize, tx_rings: usize) -> Arc<FakeNic> {
        FakeNic::with_info(fake_info(rx_rings, tx_rings))
    }

    /// A fake registering exactly `info` (its ring counts size the rings).
    pub fn with_info(info: MacInfo) -> Arc<FakeNic> {
        let dma = Arc::new(HeapDma::default());
        let alloc: Arc<dyn DmaAllocator> = dma.clone();
        // Heap memory: failing here means the test host is out of memory.
        let pool = BufPool::new(alloc, FAKE_RX_BUF, FAKE_RX_BUFS).expect("fake NIC: heap DMA pool");
        let up = Arc::new(UpSlot::default());
        let cpu_ctl = Arc::new(CpuCtl { limit: AtomicUsize::new(usize::MAX), fail: Mutex::new(None) });
        let rx = (0..info.rx_rings)
            .map(|i| FakeRxRing {
                index: i,
                cpu: AtomicUsize::new(i),
                set_cpus: AtomicU64::new(0),
                cpu_ctl: cpu_ctl.clone(),
                queue: Mutex::new(VecDeque::new()),
                intr_on: AtomicBool::new(true),
                enables: AtomicU64::new(0),
                disables: AtomicU64::new(0),
                stats: RingStats::default(),
                up: up.clone(),
            })
            .collect();
        let tx = (0..info.tx_rings)
            .map(|_| FakeTxRing {
                sent: Mutex::new(Vec::new()),
                room: Mutex::new(None),
                reclaims: AtomicU64::new(0),
                stats: RingStats::default(),
            })
            .collect();
        Arc::new(FakeNic {
            info,
            dma,
            pool,
            rx,
            tx,
            up,
            cpu_ctl,
            link: AtomicU8::new(link_to_u8(LinkState::Up)),
            speed: AtomicU64::new(10_000),
            duplex: Mutex::new(Duplex::Full),
            started: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            unicast: Mutex::new(Vec::new()),
            multicast: Mutex::new(Vec::new()),
            promisc: AtomicBool::new(false),
            counters: Mutex::new(DeviceCounters::default()),
            inject_drops: AtomicU64::new(0),
        })
    }

    /// The heap DMA allocator behind the fake (pass it to [`crate::mac::register`]).
    pub fn dma(&self) -> Arc<HeapDma> {
        self.dma.clone()
    }

    /// Registers the fake with the MAC layer (not started).
    pub fn register(self: &Arc<Self>) -> Result<Arc<Mac>, MacError> {
        let dma: Arc<dyn DmaAllocator> = self.dma.clone();
        crate::mac::register(self.clone(), dma)
    }

    /// Puts a received frame on Rx ring `ring`, firing its interrupt if it
    /// is on. False (counted in `inject_drops` and the ring's `drops`) if
    /// there is no such ring, no free buffer or the frame is too big.
    pub fn inject(&self, ring: usize, frame: &[u8]) -> bool {
        let Some(r) = self.rx.get(ring) else {
            self.inject_drops.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let mut m = match self.pool.alloc() {
            Some(b) => Mblk::new(b),
            None => {
                self.inject_drops.fetch_add(1, Ordering::Relaxed);
                r.stats.drops.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        };
        if !m.append(frame) {
            self.inject_drops.fetch_add(1, Ordering::Relaxed);
            r.stats.drops.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        r.queue.lock().push_back(m);
        r.fire();
        true
    }

    /// Frames waiting on Rx ring `ring`.
    pub fn rx_pending(&self, ring: usize) -> usize {
        self.rx.get(ring).map_or(0, |r| r.queue.lock().len())
    }

    /// Whether Rx ring `ring`'s interrupt is on.
    pub fn intr_enabled(&self, ring: usize) -> bool {
        self.rx.get(ring).is_some_and(|r| r.intr_on.load(Ordering::Acquire))
    }

    /// `intr_enable` calls on Rx ring `ring`.
    pub fn intr_enables(&self, ring: usize) -> u64 {
        self.rx.get(ring).map_or(0, |r| r.enables.load(Ordering::Relaxed))
    }

    /// `intr_disable` calls on Rx ring `ring`.
    pub fn intr_disables(&self, ring: usize) -> u64 {
        self.rx.get(ring).map_or(0, |r| r.disables.load(Ordering::Relaxed))
    }

    /// `set_cpu` calls on Rx ring `ring` (refused ones included).
    pub fn set_cpu_calls(&self, ring: usize) -> u64 {
        self.rx.get(ring).map_or(0, |r| r.set_cpus.load(Ordering::Relaxed))
    }

    /// From now on `set_cpu` refuses CPUs `>= cpus` with `Invalid` (the
    /// fake's "CPUs online"; unlimited at first).
    pub fn set_cpu_limit(&self, cpus: usize) {
        self.cpu_ctl.limit.store(cpus, Ordering::Release);
    }

    /// From now on every `set_cpu` fails with `err` (None: back to
    /// normal), changing nothing (e.g. `NoSpace`: no vector free).
    pub fn fail_set_cpu(&self, err: Option<MacError>) {
        *self.cpu_ctl.fail.lock() = err;
    }

    /// Counters of Rx ring `ring` (writable: tests may set them).
    pub fn rx_stats(&self, ring: usize) -> Option<&RingStats> {
        self.rx.get(ring).map(|r| &r.stats)
    }

    /// Counters of Tx ring `ring` (writable: tests may set them).
    pub fn tx_stats(&self, ring: usize) -> Option<&RingStats> {
        self.tx.get(ring).map(|r| &r.stats)
    }

    /// Copies of the frames Tx ring `ring` sent, oldest first.
    pub fn sent(&self, ring: usize) -> Vec<Vec<u8>> {
        self.tx.get(ring).map_or_else(Vec::new, |r| r.sent.lock().clone())
    }

    /// Takes the frames Tx ring `ring` sent so far.
    pub fn take_sent(&self, ring: usize) -> Vec<Vec<u8>> {
        self.tx.get(ring).map_or_else(Vec::new, |r| core::mem::take(&mut *r.sent.lock()))
    }

    /// Makes Tx ring `ring` full: `tx` returns every packet unsent.
    pub fn set_tx_full(&self, ring: usize) {
        self.set_tx_room(ring, 0);
    }

    /// Lets Tx ring `ring` take `n` more packets, then be full.
    pub fn set_tx_room(&self, ring: usize, n: usize) {
        if let Some(r) = self.tx.get(ring) {
            *r.room.lock() = Some(n);
        }
    }

    /// Opens Tx ring `ring` again (no limit) and calls `tx_resume`.
    pub fn resume_tx(&self, ring: usize) {
        let Some(r) = self.tx.get(ring) else { return };
        *r.room.lock() = None;
        r.stats.unblocked.fetch_add(1, Ordering::Relaxed);
        if let Some(up) = self.up.get() {
            up.tx_resume(ring);
        }
    }

    /// `reclaim` calls on Tx ring `ring`.
    pub fn reclaims(&self, ring: usize) -> u64 {
        self.tx.get(ring).map_or(0, |r| r.reclaims.load(Ordering::Relaxed))
    }

    /// Sets the link state and, once started, calls `link_changed`.
    pub fn set_link(&self, state: LinkState) {
        self.link.store(link_to_u8(state), Ordering::Release);
        self.counters.lock().link_changes += 1;
        if let Some(up) = self.up.get() {
            up.link_changed(state);
        }
    }

    /// Sets the reported speed (Mb/s).
    pub fn set_speed(&self, mbps: u64) {
        self.speed.store(mbps, Ordering::Relaxed);
    }

    /// Sets the reported duplex.
    pub fn set_duplex(&self, d: Duplex) {
        *self.duplex.lock() = d;
    }

    /// Sets the device counters `counters()` reports.
    pub fn set_counters(&self, c: DeviceCounters) {
        *self.counters.lock() = c;
    }

    /// Whether `start` was called (and `stop` not since).
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Whether `stop` was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Unicast filters as (group, address).
    pub fn unicast_filters(&self) -> Vec<(usize, MacAddr)> {
        self.unicast.lock().clone()
    }

    /// Multicast addresses.
    pub fn multicast_filters(&self) -> Vec<MacAddr> {
        self.multicast.lock().clone()
    }

    /// Whether promiscuous mode is on.
    pub fn promisc(&self) -> bool {
        self.promisc.load(Ordering::Relaxed)
    }
}

impl MacProvider for FakeNic {
    fn info(&self) -> &MacInfo {
        &self.info
    }

    fn start(&self, up: Arc<dyn MacUpcalls>) -> Result<(), MacError> {
        *self.up.0.lock() = Some(up);
        self.stopped.store(false, Ordering::Release);
        self.started.store(true, Ordering::Release);
        Ok(())
    }

    fn stop(&self) {
        *self.up.0.lock() = None;
        self.started.store(false, Ordering::Release);
        self.stopped.store(true, Ordering::Release);
    }

    fn rx_ring(&self, index: usize) -> Option<&dyn RxRing> {
        self.rx.get(index).map(|r| r as &dyn RxRing)
    }

    fn tx_ring(&self, index: usize) -> Option<&dyn TxRing> {
        self.tx.get(index).map(|r| r as &dyn TxRing)
    }

    fn unicast_add(&self, group: usize, addr: MacAddr) -> Result<(), MacError> {
        let Some(g) = self.info.rx_groups.get(group) else { return Err(MacError::Invalid) };
        let mut u = self.unicast.lock();
        if u.contains(&(group, addr)) {
            return Ok(());
        }
        if u.iter().filter(|(gr, _)| *gr == group).count() >= g.unicast_slots {
            return Err(MacError::NoSpace);
        }
        u.push((group, addr));
        Ok(())
    }

    fn unicast_remove(&self, group: usize, addr: MacAddr) -> Result<(), MacError> {
        let mut u = self.unicast.lock();
        match u.iter().position(|e| *e == (group, addr)) {
            Some(i) => {
                u.remove(i);
                Ok(())
            }
            None => Err(MacError::Invalid),
        }
    }

    fn set_promisc(&self, on: bool) -> Result<(), MacError> {
        self.promisc.store(on, Ordering::Relaxed);
        Ok(())
    }

    fn multicast_add(&self, addr: MacAddr) -> Result<(), MacError> {
        let mut m = self.multicast.lock();
        if !m.contains(&addr) {
            m.push(addr);
        }
        Ok(())
    }

    fn multicast_remove(&self, addr: MacAddr) -> Result<(), MacError> {
        let mut m = self.multicast.lock();
        match m.iter().position(|a| *a == addr) {
            Some(i) => {
                m.remove(i);
                Ok(())
            }
            None => Err(MacError::Invalid),
        }
    }

    fn link_state(&self) -> LinkState {
        link_from_u8(self.link.load(Ordering::Acquire))
    }

    fn speed_mbps(&self) -> u64 {
        self.speed.load(Ordering::Relaxed)
    }

    fn duplex(&self) -> Duplex {
        *self.duplex.lock()
    }

    fn counters(&self) -> DeviceCounters {
        *self.counters.lock()
    }
}

/// A minimal Ethernet + IPv4 + TCP frame from 10.0.0.1:`sport` to
/// 10.0.0.2:`dport`, `len` bytes long (at least 54), for flow tests.
pub fn tcp4_frame(sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut f = alloc::vec![0u8; len.max(54)];
    f[0..6].copy_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0x00, 0x65, 0x43, 0x21]);
    f[12] = 0x08;
    f[14] = 0x45;
    let ip_len = (f.len() - 14).min(u16::MAX as usize) as u16;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[46] = 0x50;
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cpu_records_and_refuses() {
        let nic = FakeNic::new(2, 2);
        let r = nic.rx_ring(1).unwrap();
        assert_eq!(r.cpu(), 1);
        assert_eq!(r.set_cpu(3), Ok(()));
        assert_eq!(r.cpu(), 3);
        nic.set_cpu_limit(2);
        assert_eq!(r.set_cpu(2), Err(MacError::Invalid));
        assert_eq!(r.cpu(), 3, "a refused move changes nothing");
        nic.fail_set_cpu(Some(MacError::NoSpace));
        assert_eq!(r.set_cpu(0), Err(MacError::NoSpace));
        assert_eq!(r.cpu(), 3);
        nic.fail_set_cpu(None);
        assert_eq!(r.set_cpu(0), Ok(()));
        assert_eq!(r.cpu(), 0);
        assert_eq!(nic.set_cpu_calls(1), 4);
        assert_eq!(nic.set_cpu_calls(0), 0);
        assert_eq!(nic.rx_ring(0).unwrap().cpu(), 0);
    }
}
