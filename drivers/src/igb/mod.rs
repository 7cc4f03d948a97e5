//! `igb`: the Intel 82576 Gigabit Ethernet controller (QEMU's `igb`
//! device, `8086:10c9`), registered with the MAC layer as a
//! [`MacProvider`] — the ixgbe-style multi-queue NIC whose hardware
//! classifies.
//!
//! * [`regs`], [`desc`]: register map and advanced descriptor formats.
//! * [`hw`]: global reset, MAC address (RAL0/RAH0 or the NVM), link.
//! * [`intr`]: MSI-X — one vector per queue pair (Rx i + Tx i, IVAR) on
//!   CPU i % CPUs (movable at run time: [`Igb::move_pair`]), one for link
//!   status and other causes (IVAR_MISC); per-queue masking through
//!   EIMS/EIMC; EITR moderation.
//! * [`rss`]: RSS key, redirection table, MRQC.
//! * [`filter`]: the 24 unicast filters with pool select, multicast hash,
//!   promiscuous mode, VMDq pools as ring groups (the design is described
//!   there).
//! * [`rx`], [`tx`], [`offload`]: the rings; checksum offload both ways,
//!   TCP segmentation offload.
//! * [`stats`]: clear-on-read hardware counters accumulated.
//!
//! Queue pairs: N = min(16, CPUs, MSI-X vectors − 1, `max_pairs`) in RSS
//! mode, one per pool in VMDq mode. Rx ring i and Tx ring i are hardware
//! queues i.
//!
//! Life cycle: [`Igb::probe`] maps BAR 0, resets the device, reads the MAC
//! address and allocates rings and buffer pools, leaving the device reset;
//! `start` allocates the vectors and brings the device up (`Igb::bring_up`);
//! `stop` resets it and frees them. The link comes up asynchronously after
//! auto-negotiation and is reported through `link_changed`. A hung Tx ring
//! or a DMA fault (ICR.DOUTSYNC) leads to [`Igb::recover`]: a full reset and
//! bring-up with the same rings and filters, counted in
//! `DeviceCounters::resets`.
//!
//! Locks, always taken in this order: `control` (life cycle, filters) →
//! each ring's state → `stats`. Interrupt handlers take none of them.

pub mod desc;
pub mod filter;
pub mod hw;
pub mod intr;
pub mod offload;
pub mod regs;
pub mod rss;
pub mod rx;
pub mod stats;
pub mod tx;

/// The simulated 82576 of the host tests (it lives with the other
/// hardware doubles in `testing/`).
#[cfg(any(test, feature = "host"))]
#[path = "../testing/igb.rs"]
pub mod fake;

#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use arbalest_mac::{
    BufPool, CksumCaps, DeviceCounters, Duplex, GroupInfo, LinkState, LsoCaps, MacAddr, MacError, MacInfo, MacProvider, MacUpcalls, RingStats,
    RxRing, TxRing,
};
use arbalest_mac::sync::Mutex;

use crate::dma_mem::DmaMem;
use crate::error::Error;
use crate::hal::{Hal, Mmio, MsiMessage, PciConfigAccess};
use crate::pci::{Bdf, MsixCap, MsixTable, PciDevice, enable_device};

use filter::{RxFilter, RxMode};
use intr::{QueueVector, WANT_RX};
use regs::*;
use rx::{IgbRxRing, RxState};
use stats::HwStats;
use tx::{IgbTxRing, TxState};

/// Driver name: links are `igb0`, `igb1`, ...
pub const DRIVER_NAME: &str = "igb";
pub const VENDOR_INTEL: u16 = 0x8086;
/// 82576 copper functions (QEMU's `igb` is `10c9`). Fiber and SerDes
/// parts need a PCS link set-up this driver does not do.
pub const DEVICE_IDS: [u16; 4] = [0x10c9, 0x10e8, 0x1526, 0x150a];
pub const MTU: usize = 1500;
/// Largest TSO packet handed to the device.
pub const LSO_MAX: usize = 65_535;

/// Sizing and behaviour knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunables {
    /// Descriptors per Rx / Tx ring (8..=4096, a multiple of 8).
    pub ring_size: u16,
    /// Bytes per Rx buffer (at least 2048: a frame must fit one buffer).
    pub rx_buf_size: usize,
    /// Buffers in each Rx ring's pool: the ring holds `ring_size - 1`,
    /// the rest travel up the stack.
    pub rx_pool_bufs: usize,
    /// Upper bound on queue pairs in RSS mode.
    pub max_pairs: usize,
    /// Interrupt moderation: at most this many interrupts a second per
    /// vector (EITR; 0 = none). QEMU reads EITR in ~1 µs units without the
    /// field's 2-bit shift, so there the rate is about a quarter of this.
    pub itr: u32,
    /// 0 or 1: RSS mode (one Rx group, RSS over all rings). 2..=8: VMDq
    /// mode with that many pools, each an Rx group with one ring.
    pub vmdq_pools: usize,
    /// The Toeplitz key.
    pub rss_key: [u8; 40],
    /// TCP segmentation offload.
    pub tso: bool,
    /// A full Tx ring without completions for this long, link up, is a
    /// hung device (0: never).
    pub tx_timeout_ms: u64,
}

impl Default for Tunables {
    fn default() -> Tunables {
        Tunables {
            ring_size: 256,
            rx_buf_size: 2048,
            rx_pool_bufs: 1024,
            max_pairs: usize::MAX,
            itr: 8000,
            vmdq_pools: 0,
            rss_key: rss::DEFAULT_KEY,
            tso: true,
            tx_timeout_ms: 5000,
        }
    }
}

/// State shared by the device, its rings and its interrupt handlers.
#[derive(Default)]
pub struct Shared {
    /// A fault was seen; the next ring operation resets the device.
    pub needs_reset: AtomicBool,
    /// A reset failed: the device is given up.
    pub failed: AtomicBool,
    pub rx_malformed: AtomicU64,
    pub resets: AtomicU64,
    pub link_changes: AtomicU64,
    /// Last link state reported (0 unknown, 1 up, 2 down).
    pub link: AtomicU8,
    pub other_interrupts: AtomicU64,
    /// Rx overrun causes (ICR.RXO) seen: frames dropped for lack of room.
    pub rx_overruns: AtomicU64,
    /// Queue-pair interrupts that found nothing wanted ready.
    pub spurious_interrupts: AtomicU64,
}

pub(crate) fn link_code(l: LinkState) -> u8 {
    match l {
        LinkState::Unknown => 0,
        LinkState::Up => 1,
        LinkState::Down => 2,
    }
}

/// Life-cycle state, under the `control` lock.
struct Control {
    up: Option<Arc<dyn MacUpcalls>>,
    /// While started: `vectors[e]` is the message MSI-X entry `e` holds
    /// (queue pair i at entry i, the other causes last).
    vectors: Vec<MsiMessage>,
    started: bool,
    filter: RxFilter,
}

/// Rings and pools allocated at probe.
struct Parts {
    rx: Vec<RxState>,
    tx: Vec<TxState>,
}

/// One 82576 function.
pub struct Igb {
    bdf: Bdf,
    hal: Arc<dyn Hal>,
    regs: Arc<dyn Mmio>,
    msix: MsixTable,
    tun: Tunables,
    mode: RxMode,
    info: MacInfo,
    rx: Vec<Arc<IgbRxRing>>,
    tx: Vec<Arc<IgbTxRing>>,
    vectors: Vec<Arc<QueueVector>>,
    control: Mutex<Control>,
    stats: Mutex<HwStats>,
    shared: Arc<Shared>,
}

impl Igb {
    /// Whether `dev` is an 82576 (copper) function.
    pub fn matches(dev: &PciDevice) -> bool {
        dev.vendor == VENDOR_INTEL && DEVICE_IDS.contains(&dev.device)
    }

    /// Probes with default [`Tunables`].
    pub fn probe(dev: &PciDevice, cfg: &dyn PciConfigAccess, hal: Arc<dyn Hal>) -> Result<Arc<Igb>, Error> {
        Self::probe_with(dev, cfg, hal, Tunables::default())
    }

    /// Maps BAR 0, enables MSI-X (every entry masked), resets the device,
    /// reads the MAC address, sizes the queue pairs and allocates rings
    /// and buffer pools. The device stays reset until `start`.
    pub fn probe_with(dev: &PciDevice, cfg: &dyn PciConfigAccess, hal: Arc<dyn Hal>, tun: Tunables) -> Result<Arc<Igb>, Error> {
        if !Self::matches(dev) {
            return Err(Error::NotSupported);
        }
        let bdf = dev.bdf;
        let (bar, size) = dev.bars[0].memory().ok_or(Error::BadBar)?;
        if size < BAR_SIZE as u64 {
            return Err(Error::BadBar);
        }
        let cap = MsixCap::read(cfg, bdf).ok_or(Error::NoMsix)?;
        let vector_pairs = (cap.table_size as usize).min(MAX_VECTORS).saturating_sub(1);
        if vector_pairs == 0 {
            return Err(Error::NoMsix);
        }
        enable_device(cfg, bdf, false);
        let regs = hal.mmio(bar, BAR_SIZE);
        let msix = MsixTable::map(&*hal, &cap, &dev.bars).ok_or(Error::NoMsix)?;
        msix.mask_all();
        cap.enable(cfg, bdf);

        hw::reset(&*regs, &*hal)?;
        let mac = hw::read_mac(&*regs, &*hal, bdf);
        let cpus = hal.cpu_count().max(1);
        let mode = match tun.vmdq_pools.min(NUM_POOLS).min(vector_pairs) {
            p if p >= 2 => RxMode::Vmdq { pools: p },
            _ => RxMode::Rss,
        };
        let pairs = match mode {
            RxMode::Rss => NUM_QUEUES.min(cpus).min(vector_pairs).min(tun.max_pairs).max(1),
            RxMode::Vmdq { pools } => pools,
        };
        let parts = Self::allocate(&hal, pairs, tun)?;
        let igb = Self::assemble(bdf, hal, regs, msix, tun, mode, mac, cpus, parts);
        igb.shared.link.store(link_code(hw::link_state(&*igb.regs)), Ordering::Release);
        Ok(igb)
    }

    /// Ring size from the tunable: 8..=4096, a multiple of 8 (RDLEN and
    /// TDLEN count 128-byte units).
    fn ring_size(tun: &Tunables) -> usize {
        (tun.ring_size as usize).clamp(8, 4096) & !7
    }

    fn allocate(hal: &Arc<dyn Hal>, pairs: usize, tun: Tunables) -> Result<Parts, Error> {
        let size = Self::ring_size(&tun);
        let dma = hal.dma();
        let mut rx = Vec::with_capacity(pairs);
        let mut tx = Vec::with_capacity(pairs);
        for _ in 0..pairs {
            let ring = DmaMem::new(dma.clone(), size * desc::DESC_LEN, 128).ok_or(Error::NoMemory)?;
            let pool = Self::rx_pool(hal, tun, size).ok_or(Error::NoMemory)?;
            rx.push(RxState::new(Arc::new(ring), size, pool));
            let ring = DmaMem::new(dma.clone(), size * desc::DESC_LEN, 128).ok_or(Error::NoMemory)?;
            tx.push(TxState::new(Arc::new(ring), size));
        }
        Ok(Parts { rx, tx })
    }

    /// A pool for one Rx ring: `rx_pool_bufs` buffers, fewer (but at least
    /// a ring's worth) if DMA memory is short.
    fn rx_pool(hal: &Arc<dyn Hal>, tun: Tunables, ring: usize) -> Option<Arc<BufPool>> {
        let size = tun.rx_buf_size.max(rx::MIN_BUF);
        let mut count = tun.rx_pool_bufs.max(ring);
        loop {
            if let Some(p) = BufPool::new(hal.dma(), size, count) {
                return Some(p);
            }
            if count <= ring {
                return None;
            }
            count = (count / 2).max(ring);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        bdf: Bdf,
        hal: Arc<dyn Hal>,
        regs: Arc<dyn Mmio>,
        msix: MsixTable,
        tun: Tunables,
        mode: RxMode,
        mac: MacAddr,
        cpus: usize,
        parts: Parts,
    ) -> Arc<Igb> {
        let pairs = parts.rx.len();
        let all: Vec<usize> = (0..pairs).collect();
        let rx_groups = match mode {
            RxMode::Rss => vec![GroupInfo { rings: all.clone(), unicast_slots: RAR_ENTRIES }],
            RxMode::Vmdq { pools } => (0..pools)
                .map(|g| GroupInfo { rings: vec![g], unicast_slots: if g == 0 { RAR_ENTRIES } else { RAR_ENTRIES - 1 } })
                .collect(),
        };
        let info = MacInfo {
            driver: DRIVER_NAME,
            factory_addr: mac,
            extra_factory_addrs: Vec::new(),
            mtu: MTU,
            rx_groups,
            tx_groups: vec![GroupInfo { rings: all, unicast_slots: 0 }],
            rx_rings: pairs,
            tx_rings: pairs,
            pollable: true,
            cksum: CksumCaps { tx_partial: true, rx_verify: true },
            lso: LsoCaps { tx_tcp4: tun.tso, tx_tcp6: tun.tso, rx_tcp4: false, rx_tcp6: false, max_size: if tun.tso { LSO_MAX } else { 0 } },
        };
        let shared = Arc::new(Shared::default());
        let vectors: Vec<Arc<QueueVector>> = (0..pairs).map(|i| Arc::new(QueueVector::new(i, regs.clone()))).collect();
        let timeout_ns = if tun.tx_timeout_ms == 0 { u64::MAX } else { tun.tx_timeout_ms.saturating_mul(1_000_000) };

        Arc::new_cyclic(|weak| {
            let rx = parts
                .rx
                .into_iter()
                .enumerate()
                .map(|(i, st)| {
                    Arc::new(IgbRxRing {
                        index: i,
                        cpu: AtomicUsize::new(i % cpus),
                        regs: regs.clone(),
                        descs: st.ring(),
                        next: AtomicUsize::new(0),
                        state: Mutex::new(st),
                        vector: vectors[i].clone(),
                        stats: RingStats::default(),
                        shared: shared.clone(),
                        up: Mutex::new(None),
                        dev: weak.clone(),
                    })
                })
                .collect();
            let tx = parts
                .tx
                .into_iter()
                .enumerate()
                .map(|(i, st)| {
                    Arc::new(IgbTxRing {
                        index: i,
                        regs: regs.clone(),
                        hal: hal.clone(),
                        descs: st.ring(),
                        oldest_eop: AtomicUsize::new(usize::MAX),
                        state: Mutex::new(st),
                        vector: vectors[i].clone(),
                        stats: RingStats::default(),
                        shared: shared.clone(),
                        tso: tun.tso,
                        timeout_ns,
                        blocked: AtomicBool::new(false),
                        dev: weak.clone(),
                    })
                })
                .collect();
            Igb {
                bdf,
                hal,
                regs,
                msix,
                tun,
                mode,
                info,
                rx,
                tx,
                vectors,
                control: Mutex::new(Control { up: None, vectors: Vec::new(), started: false, filter: RxFilter::new(mac) }),
                stats: Mutex::new(HwStats::default()),
                shared,
            }
        })
    }

    /// PCI address of the function.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// Queue pairs in use.
    pub fn pairs(&self) -> usize {
        self.rx.len()
    }

    /// How frames are spread over the Rx rings.
    pub fn mode(&self) -> RxMode {
        self.mode
    }

    /// The tunables in force.
    pub fn tunables(&self) -> &Tunables {
        &self.tun
    }

    /// Whether the device was given up after a failed reset.
    pub fn is_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Interrupts of the other-causes vector.
    pub fn other_interrupts(&self) -> u64 {
        self.shared.other_interrupts.load(Ordering::Relaxed)
    }

    /// Rx overrun causes seen (frames dropped for a full ring or buffer).
    pub fn rx_overruns(&self) -> u64 {
        self.shared.rx_overruns.load(Ordering::Relaxed)
    }

    /// Queue-pair interrupts that found no wanted work.
    pub fn spurious_interrupts(&self) -> u64 {
        self.shared.spurious_interrupts.load(Ordering::Relaxed)
    }

    /// Reads the clear-on-read hardware counters into the totals (and the
    /// per-queue drops into the Rx rings' `drops`); returns the totals.
    /// Call at least every few minutes under load so that no 32-bit
    /// counter wraps between reads (`counters` does it too).
    pub fn update_stats(&self) -> HwStats {
        let mut s = self.stats.lock();
        let dq = s.accumulate(&*self.regs, self.rx.len());
        for (r, d) in self.rx.iter().zip(dq) {
            if d > 0 {
                r.stats.drops.fetch_add(d, Ordering::Relaxed);
            }
        }
        *s
    }

    /// Reports a link state different from the last one reported.
    fn check_link(&self, up: Option<&Arc<dyn MacUpcalls>>) {
        let link = hw::link_state(&*self.regs);
        let old = self.shared.link.swap(link_code(link), Ordering::AcqRel);
        if old != link_code(link) {
            self.shared.link_changes.fetch_add(1, Ordering::Relaxed);
            if let Some(up) = up {
                up.link_changed(link);
            }
        }
    }

    /// Writes RCTL with the filter's bits (receiver on).
    fn write_rctl(&self, f: &RxFilter) {
        self.regs.write32(RCTL, RCTL_EN | RCTL_SECRC | f.rctl_bits());
    }

    /// Resets the device and brings it up with the rings it has:
    /// interrupt routing, RSS or VMDq pools, filters, Rx checksum offload,
    /// queues with fresh buffers, transmitter, interrupts unmasked, and a
    /// link auto-negotiation restart. Frames in flight are dropped (and
    /// counted).
    fn bring_up(&self, c: &Control, up: Option<&Arc<dyn MacUpcalls>>) -> Result<(), Error> {
        let r = &*self.regs;
        let hal = &*self.hal;
        let pairs = self.pairs();
        hw::reset(r, hal)?;
        self.check_link(up);
        intr::program(r, pairs, self.tun.itr);

        // Receive: classification first, then the queues, then RCTL.EN.
        r.write32(RCTL, 0);
        r.write32(RXCSUM, RXCSUM_IPOFLD | RXCSUM_TUOFLD | RXCSUM_PCSD);
        match self.mode {
            RxMode::Rss => rss::program(r, &self.tun.rss_key, pairs),
            RxMode::Vmdq { .. } => {
                rss::program_key(r, &self.tun.rss_key);
                filter::program_pools(r, self.mode, c.filter.promisc);
            }
        }
        filter::program_all(r, self.mode, &c.filter);
        for ring in &self.rx {
            ring.configure(&mut ring.state.lock(), hal);
        }
        self.write_rctl(&c.filter);

        // Transmit.
        for ring in &self.tx {
            ring.configure(&mut ring.state.lock(), hal);
            ring.blocked.store(false, Ordering::Release);
        }
        r.write32(TCTL, TCTL_EN | TCTL_PSP | TCTL_RTLC | (15 << TCTL_CT_SHIFT) | (63 << TCTL_COLD_SHIFT));

        // Interrupts: every Rx ring starts in interrupt mode.
        for v in &self.vectors {
            v.set(WANT_RX);
            v.sync();
        }
        intr::enable_other(r, pairs);
        hw::link_up(r, hal);
        if !hw::present(r) {
            return Err(Error::Device);
        }
        Ok(())
    }

    /// Recovers from a fault a ring or handler flagged (`needs_reset`):
    /// resets the device and brings it up again. A no-op if another CPU
    /// already did it, the device is stopped or was given up. If the
    /// bring-up fails the device is reset and given up: its rings stay
    /// empty and the link is reported down.
    pub fn recover(&self) {
        let c = self.control.lock();
        if !self.shared.needs_reset.swap(false, Ordering::AcqRel) || !c.started || self.is_failed() {
            return;
        }
        self.shared.resets.fetch_add(1, Ordering::Relaxed);
        // Rings that refused packets wait for a resume the reset's empty
        // rings now owe them.
        let blocked: Vec<usize> = self.tx.iter().filter(|t| t.blocked.load(Ordering::Acquire)).map(|t| t.index).collect();
        let up = c.up.clone();
        if self.bring_up(&c, up.as_ref()).is_err() {
            let _ = hw::reset(&*self.regs, &*self.hal);
            self.shared.failed.store(true, Ordering::Release);
            let old = self.shared.link.swap(link_code(LinkState::Down), Ordering::AcqRel);
            if let Some(up) = &up
                && old != link_code(LinkState::Down)
            {
                up.link_changed(LinkState::Down);
            }
            return;
        }
        let Some(up) = up else { return };
        for i in blocked {
            self.tx[i].stats.unblocked.fetch_add(1, Ordering::Relaxed);
            up.tx_resume(i);
        }
    }

    fn free_vectors(&self, c: &mut Control) {
        self.msix.mask_all();
        for v in c.vectors.drain(..) {
            self.hal.free_msi(v);
        }
    }

    /// Allocates one vector per queue pair (on the ring's CPU) and one for
    /// the other causes (CPU 0), and programs the MSI-X table.
    fn alloc_vectors(&self, c: &mut Control, up: &Arc<dyn MacUpcalls>) -> Result<(), MacError> {
        let pairs = self.pairs();
        let mut wanted = Vec::with_capacity(intr::vectors_needed(pairs));
        for i in 0..pairs {
            let h = intr::pair_handler(self.rx[i].clone(), self.tx[i].clone(), up.clone());
            wanted.push((intr::pair_entry(i), self.rx[i].cpu.load(Ordering::Acquire), h));
        }
        let h = intr::other_handler(self.regs.clone(), pairs, self.shared.clone(), up.clone());
        wanted.push((intr::other_entry(pairs), 0, h));
        for (entry, cpu, handler) in wanted {
            debug_assert_eq!(entry as usize, c.vectors.len());
            let Some(msg) = self.hal.alloc_msi(cpu, handler) else {
                self.free_vectors(c);
                return Err(MacError::NoSpace);
            };
            c.vectors.push(msg);
            self.msix.program(entry, &msg);
        }
        Ok(())
    }

    /// Moves queue pair `i`'s vector (Rx ring i and Tx ring i share it) to
    /// `cpu` (`RxRing::set_cpu`).
    ///
    /// Stopped: records the CPU for the next `start`. Started: allocates a
    /// vector on `cpu` with the pair's handler (failing with `NoSpace`,
    /// nothing changed, if there is none), masks entry i, writes the new
    /// message and unmasks it ([`MsixTable::rebind`]), and only then
    /// frees the old vector. IVAR, EIMS and EITR are untouched.
    ///
    /// No interrupt is lost: a cause arriving while the entry is masked
    /// leaves the message pending in the PBA, sent — to the new message —
    /// at the unmask (PCI MSI-X; QEMU's igb auto-clears EICR and its
    /// `msix_notify` pends the message the same way); one sent before
    /// the mask runs the old handler, installed until after the unmask.
    /// A message already on its way to the old CPU when its vector is
    /// freed would run no handler (the kernel counts it as stray) and
    /// leave the vector auto-masked in EIMS, so the switch ends with
    /// [`intr::catch_up`]: whatever is wanted and ready is served, and
    /// EIMS is written again. That may duplicate an upcall, never drop
    /// one.
    pub fn move_pair(&self, i: usize, cpu: usize) -> Result<(), MacError> {
        let (Some(rx), Some(tx)) = (self.rx.get(i), self.tx.get(i)) else { return Err(MacError::Invalid) };
        if cpu >= self.hal.cpu_count() {
            return Err(MacError::Invalid);
        }
        let mut c = self.control.lock();
        if rx.cpu.load(Ordering::Acquire) == cpu {
            return Ok(());
        }
        if !c.started {
            rx.cpu.store(cpu, Ordering::Release);
            return Ok(());
        }
        let Some(up) = c.up.clone() else { return Err(MacError::Invalid) };
        let handler = intr::pair_handler(rx.clone(), tx.clone(), up.clone());
        self.msix.rebind(&*self.hal, &mut c.vectors, cpu, alloc::vec![(intr::pair_entry(i), handler)])?;
        rx.cpu.store(cpu, Ordering::Release);
        intr::catch_up(rx, tx, &*up);
        Ok(())
    }

    /// Quiets the rings after the device was reset (buffers back to their
    /// pools, packets in flight dropped).
    fn quiesce_rings(&self) {
        for v in &self.vectors {
            v.set(0);
        }
        for r in &self.rx {
            r.state.lock().reset();
            r.next.store(0, Ordering::Release);
            *r.up.lock() = None;
        }
        for t in &self.tx {
            t.state.lock().reset(&t.stats);
            t.oldest_eop.store(usize::MAX, Ordering::Release);
            t.blocked.store(false, Ordering::Release);
        }
    }
}

impl MacProvider for Igb {
    fn info(&self) -> &MacInfo {
        &self.info
    }

    fn start(&self, up: Arc<dyn MacUpcalls>) -> Result<(), MacError> {
        let mut c = self.control.lock();
        if c.started {
            return Ok(());
        }
        for r in &self.rx {
            *r.up.lock() = Some(up.clone());
            // A ring the pool could not refill raises no interrupt: when
            // the stack frees a buffer, have the ring polled (and refilled).
            let (u, i) = (up.clone(), r.index);
            r.state.lock().pool().set_starved_hook(Arc::new(move || u.rx_ready(i)));
        }
        self.alloc_vectors(&mut c, &up)?;
        self.shared.needs_reset.store(false, Ordering::Release);
        self.shared.failed.store(false, Ordering::Release);
        if self.bring_up(&c, Some(&up)).is_err() {
            let _ = hw::reset(&*self.regs, &*self.hal);
            self.free_vectors(&mut c);
            self.quiesce_rings();
            return Err(MacError::Device);
        }
        c.up = Some(up);
        c.started = true;
        Ok(())
    }

    fn stop(&self) {
        let mut c = self.control.lock();
        if !c.started {
            return;
        }
        let _ = hw::reset(&*self.regs, &*self.hal);
        self.free_vectors(&mut c);
        self.quiesce_rings();
        c.up = None;
        c.started = false;
    }

    fn rx_ring(&self, index: usize) -> Option<&dyn RxRing> {
        self.rx.get(index).map(|r| &**r as &dyn RxRing)
    }

    fn tx_ring(&self, index: usize) -> Option<&dyn TxRing> {
        self.tx.get(index).map(|r| &**r as &dyn TxRing)
    }

    /// Programs a filter entry steering `addr` to group `group`'s pool
    /// (see [`filter`] for what groups are in each mode).
    fn unicast_add(&self, group: usize, addr: MacAddr) -> Result<(), MacError> {
        let mut c = self.control.lock();
        if let Some(i) = c.filter.add(self.mode, group, addr)?
            && c.started
        {
            filter::program_rar(&*self.regs, i, c.filter.rar[i]);
        }
        Ok(())
    }

    fn unicast_remove(&self, group: usize, addr: MacAddr) -> Result<(), MacError> {
        let mut c = self.control.lock();
        if let Some(i) = c.filter.remove(self.mode, group, addr)?
            && c.started
        {
            filter::program_rar(&*self.regs, i, c.filter.rar[i]);
        }
        Ok(())
    }

    fn set_promisc(&self, on: bool) -> Result<(), MacError> {
        let mut c = self.control.lock();
        c.filter.promisc = on;
        if c.started {
            filter::program_promisc(&*self.regs, self.mode, &c.filter);
            self.write_rctl(&c.filter);
        }
        Ok(())
    }

    fn multicast_add(&self, addr: MacAddr) -> Result<(), MacError> {
        if addr[0] & 1 == 0 {
            return Err(MacError::Invalid);
        }
        let mut c = self.control.lock();
        if c.filter.multicast.contains(&addr) {
            return Ok(());
        }
        c.filter.multicast.push(addr);
        if c.started {
            filter::program_mta(&*self.regs, &c.filter);
        }
        Ok(())
    }

    fn multicast_remove(&self, addr: MacAddr) -> Result<(), MacError> {
        let mut c = self.control.lock();
        let before = c.filter.multicast.len();
        c.filter.multicast.retain(|a| *a != addr);
        if c.filter.multicast.len() == before {
            return Err(MacError::Invalid);
        }
        if c.started {
            filter::program_mta(&*self.regs, &c.filter);
        }
        Ok(())
    }

    fn link_state(&self) -> LinkState {
        if self.is_failed() {
            return LinkState::Down;
        }
        hw::link_state(&*self.regs)
    }

    fn speed_mbps(&self) -> u64 {
        if self.is_failed() { 0 } else { hw::speed_mbps(&*self.regs) }
    }

    fn duplex(&self) -> Duplex {
        if self.is_failed() { Duplex::Unknown } else { hw::duplex(&*self.regs) }
    }

    fn counters(&self) -> DeviceCounters {
        let hw = self.update_stats();
        DeviceCounters {
            rx_missed: hw.rx_missed,
            rx_malformed: self.shared.rx_malformed.load(Ordering::Relaxed),
            resets: self.shared.resets.load(Ordering::Relaxed),
            link_changes: self.shared.link_changes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Igb {
    fn drop(&mut self) {
        let mut c = self.control.lock();
        if c.started {
            let _ = hw::reset(&*self.regs, &*self.hal);
        }
        let mut vectors = core::mem::take(&mut c.vectors);
        drop(c);
        self.msix.mask_all();
        for v in vectors.drain(..) {
            self.hal.free_msi(v);
        }
    }
}
