//! virtio-net (`vioif`): a multi-queue network device on the modern PCI
//! transport, registered with the MAC layer as a [`MacProvider`].
//!
//! * N queue pairs, N = min(max_virtqueue_pairs, CPUs, MSI-X entries),
//!   enabled through the control queue (`MQ_VQ_PAIRS_SET`). Rx ring i and
//!   Tx ring i take their interrupts on CPU i % CPUs ([`intr`]) until
//!   `RxRing::set_cpu` moves the pair ([`VirtioNet::move_pair`]).
//! * Offloads from negotiated features ([`features`]): checksum both ways,
//!   TSO for large sends, coalesced large receives over mergeable buffers.
//! * One Rx group holding every Rx ring, whose unicast slots are the
//!   control queue's MAC table ([`filter`]).
//! * Life cycle: [`VirtioNet::probe`] finds and sizes everything and
//!   leaves the device reset; `start` allocates the vectors and brings the
//!   device up; `stop` resets it and frees them. A bad used entry, a lost
//!   control command or `DEVICE_NEEDS_RESET` leads to [`VirtioNet::recover`]:
//!   a full device reset and bring-up with the same rings, counted in
//!   `DeviceCounters::resets`.
//!
//! Locks, always taken in this order: `control` (life cycle, filter) →
//! `ctrl` (control queue) → each ring's state. Interrupt handlers take
//! none of them.

pub mod config;
pub mod ctrl;
pub mod features;
pub mod filter;
pub mod hdr;
pub mod intr;
pub mod rx;
pub mod tx;

#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use arbalest_mac::{
    BufPool, CksumCaps, DmaAllocator, DeviceCounters, Duplex, GroupInfo, LinkState, LsoCaps, MacAddr, MacError, MacInfo, MacProvider, MacUpcalls,
    RingStats, RxRing, TxRing,
};
use arbalest_mac::sync::Mutex;

use crate::dma_mem::DmaMem;
use crate::error::Error;
use crate::hal::{Hal, MsiMessage, PciConfigAccess};
use crate::pci::{Bdf, MsixCap, MsixTable, PciDevice, enable_device};
use crate::virtio::features::RING_EVENT_IDX;
use crate::virtio::pci_caps::VirtioCaps;
use crate::virtio::queue::VirtQueue;
use crate::virtio::transport::{NO_VECTOR, Transport, status};
use crate::virtio::{DEVICE_ID_MODERN_BASE, DEVICE_ID_NET_TRANSITIONAL, DEVICE_TYPE_NET, VENDOR_ID};

use ctrl::{CtrlError, CtrlQueue};
use filter::{RxFilter, UNICAST_TABLE};
use hdr::TxOffloads;
use rx::{RxState, VioifRxRing};
use tx::{SLOT_SIZE, TxState, VioifTxRing};

/// Driver name: links are `vioif0`, `vioif1`, ...
pub const DRIVER_NAME: &str = "vioif";
/// MTU without the `MTU` feature.
pub const MTU: usize = 1500;
/// Largest frame handed to / taken from the device with segmentation
/// offload.
pub const LSO_MAX: usize = 65_535;
/// Speed reported when the device does not say (as illumos vioif does).
pub const DEFAULT_SPEED_MBPS: u64 = 1000;

/// Sizing knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunables {
    /// Entries per Rx / Tx queue (capped by the device; a power of two).
    pub queue_size: u16,
    /// Bytes per Rx buffer, virtio header included (at least 1536).
    pub rx_buf_size: usize,
    /// Buffers in each Rx ring's pool: the ring holds `queue_size` of
    /// them, the rest travel up the stack.
    pub rx_pool_bufs: usize,
    /// Upper bound on queue pairs (besides the device's and the CPUs').
    pub max_pairs: usize,
}

impl Default for Tunables {
    fn default() -> Tunables {
        Tunables { queue_size: 256, rx_buf_size: 2048, rx_pool_bufs: 1024, max_pairs: usize::MAX }
    }
}

/// State shared by the device, its rings and its interrupt handlers.
#[derive(Default)]
pub struct Shared {
    /// A fault was seen; the next ring operation resets the device.
    pub needs_reset: AtomicBool,
    pub rx_malformed: AtomicU64,
    pub resets: AtomicU64,
    pub link_changes: AtomicU64,
    pub config_interrupts: AtomicU64,
    /// Last link state seen (0 unknown, 1 up, 2 down).
    pub link: AtomicU8,
    /// Set when a reset failed: the device is given up.
    pub failed: AtomicBool,
}

pub(crate) fn link_code(l: LinkState) -> u8 {
    match l {
        LinkState::Unknown => 0,
        LinkState::Up => 1,
        LinkState::Down => 2,
    }
}

/// What probing allocated, before the device is assembled.
struct Parts {
    mac: MacAddr,
    max_pairs: u16,
    cpus: usize,
    rx: Vec<RxState>,
    tx: Vec<TxState>,
    ctrl: Option<CtrlQueue>,
}

/// Life-cycle state, under the `control` lock.
struct Control {
    up: Option<Arc<dyn MacUpcalls>>,
    /// While started: `vectors[e]` is the message MSI-X entry `e` holds
    /// (entries in [`intr`] order: config, then Rx i and Tx i by pair).
    vectors: Vec<MsiMessage>,
    started: bool,
    filter: RxFilter,
}

/// One virtio-net device.
pub struct VirtioNet {
    bdf: Bdf,
    hal: Arc<dyn Hal>,
    transport: Transport,
    msix: MsixTable,
    features: u64,
    max_pairs: u16,
    info: MacInfo,
    rx: Vec<Arc<VioifRxRing>>,
    tx: Vec<Arc<VioifTxRing>>,
    ctrl: Option<Mutex<CtrlQueue>>,
    control: Mutex<Control>,
    shared: Arc<Shared>,
}

/// Allocates queue `q` at the device's size capped by `cap` (rounded down
/// to a power of two) and caches its notify address.
fn new_queue<T>(t: &Transport, dma: &Arc<dyn DmaAllocator>, q: u16, cap: u16, event_idx: bool) -> Result<VirtQueue<T>, Error> {
    let max = t.queue_max_size(q);
    if max == 0 {
        return Err(Error::QueueUnavailable(q));
    }
    let mut vq = VirtQueue::new(dma.clone(), q, pow2_floor(max.min(cap).max(1)), event_idx).ok_or(Error::NoMemory)?;
    vq.set_notifier(t.notifier(q)?);
    Ok(vq)
}

/// Rounds down to a power of two (0 stays 0).
fn pow2_floor(n: u16) -> u16 {
    if n == 0 { 0 } else { 1 << (15 - n.leading_zeros()) }
}

impl VirtioNet {
    /// Whether `dev` is a virtio network function this driver may probe:
    /// modern `1af4:1041`, or transitional `1af4:1000` (which QEMU's
    /// `virtio-net-pci` is by default; it must expose the modern caps).
    pub fn matches(dev: &PciDevice) -> bool {
        dev.vendor == VENDOR_ID && (dev.device == DEVICE_ID_MODERN_BASE + DEVICE_TYPE_NET || dev.device == DEVICE_ID_NET_TRANSITIONAL)
    }

    /// Probes with default [`Tunables`].
    pub fn probe(dev: &PciDevice, cfg: &dyn PciConfigAccess, hal: Arc<dyn Hal>) -> Result<Arc<VirtioNet>, Error> {
        Self::probe_with(dev, cfg, hal, Tunables::default())
    }

    /// Finds the transport, enables MSI-X (all entries masked), negotiates
    /// features, reads the MAC address and queue-pair count, allocates the
    /// queues and buffer pools, and leaves the device reset until `start`.
    pub fn probe_with(dev: &PciDevice, cfg: &dyn PciConfigAccess, hal: Arc<dyn Hal>, tun: Tunables) -> Result<Arc<VirtioNet>, Error> {
        if !Self::matches(dev) {
            return Err(Error::NotSupported);
        }
        let bdf = dev.bdf;
        let caps = VirtioCaps::read(cfg, bdf)?;
        let msix_cap = MsixCap::read(cfg, bdf).ok_or(Error::NoMsix)?;
        enable_device(cfg, bdf, false);
        let transport = Transport::map(&*hal, &caps, &dev.bars)?;
        let msix = MsixTable::map(&*hal, &msix_cap, &dev.bars).ok_or(Error::NoMsix)?;
        msix.mask_all();
        msix_cap.enable(cfg, bdf);

        transport.reset(&*hal)?;
        transport.add_status(status::ACKNOWLEDGE);
        transport.add_status(status::DRIVER);
        let features = match features::negotiate(transport.device_features()) {
            Ok(f) => f,
            Err(e) => {
                transport.set_failed();
                return Err(e);
            }
        };
        transport.negotiate(&*hal, features)?;

        let parts = match Self::allocate(&transport, &hal, bdf, msix.len(), features, tun) {
            Ok(p) => p,
            Err(e) => {
                transport.set_failed();
                return Err(e);
            }
        };
        // Quiet until `start`.
        transport.reset(&*hal)?;
        Ok(Self::assemble(bdf, hal, transport, msix, features, parts))
    }

    /// Reads the device configuration, sizes the queue pairs and allocates
    /// queues, pools and header slots (device at FEATURES_OK).
    fn allocate(t: &Transport, hal: &Arc<dyn Hal>, bdf: Bdf, msix_entries: u16, features: u64, tun: Tunables) -> Result<Parts, Error> {
        let mac = if features & features::MAC != 0 { t.read_config(config::mac) } else { config::fallback_mac(bdf) };
        let max_pairs = t.read_config(|d| config::max_pairs(d, features));
        let cpus = hal.cpu_count().max(1);
        let vector_pairs = (msix_entries as usize).saturating_sub(1) / 2;
        if vector_pairs == 0 {
            return Err(Error::NoMsix);
        }
        let pairs = (max_pairs as usize).min(cpus).min(vector_pairs).min(tun.max_pairs).max(1);
        let event_idx = features & RING_EVENT_IDX != 0;
        let mrg = features & features::MRG_RXBUF != 0;
        let dma = hal.dma();

        let mut rx = Vec::with_capacity(pairs);
        let mut tx = Vec::with_capacity(pairs);
        for i in 0..pairs {
            let rvq = new_queue(t, &dma, 2 * i as u16, tun.queue_size, event_idx)?;
            let pool = Self::rx_pool(hal, tun, rvq.size()).ok_or(Error::NoMemory)?;
            rx.push(RxState::new(rvq, pool, mrg));
            let tvq = new_queue(t, &dma, 2 * i as u16 + 1, tun.queue_size, event_idx)?;
            let slots = DmaMem::new(dma.clone(), tvq.size() as usize * SLOT_SIZE, 64).ok_or(Error::NoMemory)?;
            tx.push(TxState::new(tvq, slots));
        }
        // The control queue follows all the device's queue pairs, not
        // just the ones in use.
        let ctrl = if features & features::CTRL_VQ != 0 {
            let vq = new_queue(t, &dma, 2 * max_pairs, 64, event_idx)?;
            Some(CtrlQueue::new(vq, dma.clone()).ok_or(Error::NoMemory)?)
        } else {
            None
        };
        Ok(Parts { mac, max_pairs, cpus, rx, tx, ctrl })
    }

    /// Builds the device and its rings from allocated parts.
    fn assemble(bdf: Bdf, hal: Arc<dyn Hal>, transport: Transport, msix: MsixTable, features: u64, parts: Parts) -> Arc<VirtioNet> {
        let Parts { mac, max_pairs, cpus, rx: rx_states, tx: tx_states, ctrl } = parts;
        let pairs = rx_states.len();
        let rings: Vec<usize> = (0..pairs).collect();
        let has = |f: u64| features & f != 0;
        let lso = LsoCaps {
            tx_tcp4: has(features::HOST_TSO4),
            tx_tcp6: has(features::HOST_TSO6),
            rx_tcp4: has(features::GUEST_TSO4),
            rx_tcp6: has(features::GUEST_TSO6),
            max_size: if has(features::HOST_TSO4 | features::HOST_TSO6 | features::GUEST_TSO4 | features::GUEST_TSO6) {
                LSO_MAX
            } else {
                0
            },
        };
        let info = MacInfo {
            driver: DRIVER_NAME,
            factory_addr: mac,
            extra_factory_addrs: Vec::new(),
            mtu: MTU,
            rx_groups: vec![GroupInfo {
                rings: rings.clone(),
                unicast_slots: if has(features::CTRL_RX) { 1 + UNICAST_TABLE } else { 1 },
            }],
            tx_groups: vec![GroupInfo { rings, unicast_slots: 0 }],
            rx_rings: pairs,
            tx_rings: pairs,
            pollable: true,
            cksum: CksumCaps { tx_partial: has(features::CSUM), rx_verify: has(features::GUEST_CSUM) },
            lso,
        };
        let offloads = TxOffloads { csum: has(features::CSUM), tso4: has(features::HOST_TSO4), tso6: has(features::HOST_TSO6) };
        let shared = Arc::new(Shared::default());

        Arc::new_cyclic(|weak| {
            let rx = rx_states
                .into_iter()
                .enumerate()
                .map(|(i, st)| {
                    Arc::new(VioifRxRing {
                        index: i,
                        cpu: AtomicUsize::new(i % cpus),
                        events: st.vq.events().clone(),
                        state: Mutex::new(st),
                        stats: RingStats::default(),
                        shared: shared.clone(),
                        up: Mutex::new(None),
                        dev: weak.clone(),
                    })
                })
                .collect();
            let tx = tx_states
                .into_iter()
                .enumerate()
                .map(|(i, st)| {
                    Arc::new(VioifTxRing {
                        index: i,
                        events: st.vq.events().clone(),
                        state: Mutex::new(st),
                        stats: RingStats::default(),
                        shared: shared.clone(),
                        offloads,
                        blocked: AtomicBool::new(false),
                        dev: weak.clone(),
                    })
                })
                .collect();
            VirtioNet {
                bdf,
                hal,
                transport,
                msix,
                features,
                max_pairs,
                info,
                rx,
                tx,
                ctrl: ctrl.map(Mutex::new),
                control: Mutex::new(Control { up: None, vectors: Vec::new(), started: false, filter: RxFilter::default() }),
                shared,
            }
        })
    }

    /// A pool for one Rx ring: `rx_pool_bufs` buffers, fewer (but at least
    /// a ring's worth) if DMA memory is short.
    fn rx_pool(hal: &Arc<dyn Hal>, tun: Tunables, ring: u16) -> Option<Arc<BufPool>> {
        let size = tun.rx_buf_size.max(1536);
        let mut count = tun.rx_pool_bufs.max(ring as usize);
        loop {
            if let Some(p) = BufPool::new(hal.dma(), size, count) {
                return Some(p);
            }
            if count <= ring as usize {
                return None;
            }
            count = (count / 2).max(ring as usize);
        }
    }

    /// PCI address of the function.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// Negotiated feature bits.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// Queue pairs in use.
    pub fn pairs(&self) -> usize {
        self.rx.len()
    }

    /// Queue pairs the device supports.
    pub fn max_pairs(&self) -> u16 {
        self.max_pairs
    }

    /// Configuration-change interrupts taken.
    pub fn config_interrupts(&self) -> u64 {
        self.shared.config_interrupts.load(Ordering::Relaxed)
    }

    /// Whether the device was given up after a failed reset.
    pub fn is_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Runs a control command (`Err(NotSupported)` without a control queue).
    fn command(&self, class: u8, cmd: u8, data: &[u8]) -> Result<(), MacError> {
        let Some(ctrl) = &self.ctrl else { return Err(MacError::NotSupported) };
        let r = ctrl.lock().command(&*self.hal, class, cmd, data);
        match r {
            Ok(()) => Ok(()),
            Err(CtrlError::Rejected | CtrlError::TooLarge) => Err(MacError::Device),
            Err(CtrlError::Timeout | CtrlError::Broken) => {
                // The next ring operation resets the device.
                self.shared.needs_reset.store(true, Ordering::Release);
                Err(MacError::Device)
            }
        }
    }

    /// Replays the receive filter (promiscuous, allmulti, MAC table).
    fn push_filter(&self, f: &RxFilter) -> Result<(), MacError> {
        if self.features & features::CTRL_RX == 0 {
            return Ok(());
        }
        self.command(ctrl::CLASS_RX, ctrl::RX_PROMISC, &[f.promisc as u8])?;
        self.command(ctrl::CLASS_RX, ctrl::RX_ALLMULTI, &[f.allmulti() as u8])?;
        self.command(ctrl::CLASS_MAC, ctrl::MAC_TABLE_SET, &f.mac_table())
    }

    /// Resets the device and brings it up with the rings it has: the
    /// status handshake, queues with their vectors, Rx buffers, DRIVER_OK,
    /// then the queue-pair count and receive filter through the control
    /// queue. Packets in flight are dropped (and counted).
    fn bring_up(&self, c: &Control) -> Result<(), Error> {
        let t = &self.transport;
        t.negotiate(&*self.hal, self.features)?;
        t.set_config_vector(intr::CONFIG_ENTRY)?;
        for (i, ring) in self.rx.iter().enumerate() {
            let mut st = ring.state.lock();
            st.reset();
            t.setup_queue(st.vq.index(), st.vq.size(), st.vq.addresses(), intr::rx_entry(i))?;
            st.refill();
        }
        for (i, ring) in self.tx.iter().enumerate() {
            let mut st = ring.state.lock();
            st.reset(&ring.stats);
            t.setup_queue(st.vq.index(), st.vq.size(), st.vq.addresses(), intr::tx_entry(i))?;
            ring.events.disable();
            ring.blocked.store(false, Ordering::Release);
        }
        if let Some(ctrl) = &self.ctrl {
            let mut cq = ctrl.lock();
            cq.reset();
            t.setup_queue(cq.vq.index(), cq.vq.size(), cq.vq.addresses(), NO_VECTOR)?;
            cq.vq.events().disable();
        }
        t.add_status(status::DRIVER_OK);
        if t.status() & (status::DEVICE_NEEDS_RESET | status::FAILED) != 0 {
            return Err(Error::Device);
        }
        for ring in &self.rx {
            ring.state.lock().vq.kick();
        }
        if self.features & features::MQ != 0 && self.rx.len() > 1 {
            let n = (self.rx.len() as u16).to_le_bytes();
            self.command(ctrl::CLASS_MQ, ctrl::MQ_VQ_PAIRS_SET, &n).map_err(|_| Error::Device)?;
        }
        self.push_filter(&c.filter).map_err(|_| Error::Device)?;
        let link = config::link(&**t.device_cfg(), self.features);
        self.shared.link.store(link_code(link), Ordering::Release);
        Ok(())
    }

    /// Recovers from a fault a ring or handler flagged (`needs_reset`):
    /// resets the device and brings it up again; the ring that found the
    /// fault calls this without holding its lock. A no-op if another CPU
    /// already did it, the device is stopped or was given up. If the
    /// bring-up fails the device is reset, marked FAILED and given up: its
    /// rings stay empty and the link is reported down.
    pub fn recover(&self) {
        let c = self.control.lock();
        if !self.shared.needs_reset.swap(false, Ordering::AcqRel) || !c.started || self.is_failed() {
            return;
        }
        self.shared.resets.fetch_add(1, Ordering::Relaxed);
        let before = self.shared.link.load(Ordering::Acquire);
        // Rings that refused packets are waiting for a resume that the
        // reset's empty rings now owe them.
        let blocked: Vec<usize> = self.tx.iter().filter(|t| t.blocked.load(Ordering::Acquire)).map(|t| t.index).collect();
        if self.bring_up(&c).is_err() {
            let _ = self.transport.reset(&*self.hal);
            self.transport.set_failed();
            self.shared.failed.store(true, Ordering::Release);
            self.shared.link.store(link_code(LinkState::Down), Ordering::Release);
            if let Some(up) = &c.up {
                up.link_changed(LinkState::Down);
            }
            return;
        }
        let Some(up) = &c.up else { return };
        for i in blocked {
            self.tx[i].stats.unblocked.fetch_add(1, Ordering::Relaxed);
            up.tx_resume(i);
        }
        let link = config::link(&**self.transport.device_cfg(), self.features);
        if before != link_code(link) {
            self.shared.link_changes.fetch_add(1, Ordering::Relaxed);
            up.link_changed(link);
        }
    }

    fn free_vectors(&self, c: &mut Control) {
        self.msix.mask_all();
        for v in c.vectors.drain(..) {
            self.hal.free_msi(v);
        }
    }

    /// Allocates one vector per queue (and for configuration changes) and
    /// programs the MSI-X table, in entry order (`c.vectors[e]` is entry
    /// `e`'s): Rx ring i and Tx ring i on the Rx ring's CPU.
    fn alloc_vectors(&self, c: &mut Control, up: &Arc<dyn MacUpcalls>) -> Result<(), MacError> {
        let cfg_handler = intr::config_handler(
            self.transport.common_cfg().clone(),
            self.transport.device_cfg().clone(),
            self.features,
            self.shared.clone(),
            up.clone(),
        );
        let mut wanted = vec![(intr::CONFIG_ENTRY, 0, cfg_handler)];
        for (i, (r, t)) in self.rx.iter().zip(&self.tx).enumerate() {
            let cpu = r.cpu.load(Ordering::Acquire);
            wanted.push((intr::rx_entry(i), cpu, intr::rx_handler(r.clone(), up.clone())));
            wanted.push((intr::tx_entry(i), cpu, intr::tx_handler(t.clone(), up.clone())));
        }
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

    /// Moves queue pair `i`'s interrupts — Rx ring i's and, since Tx ring
    /// i's vector follows its Rx ring, Tx ring i's — to `cpu`
    /// (`RxRing::set_cpu`).
    ///
    /// Stopped: records the CPU for the next `start`. Started: allocates
    /// both new vectors on `cpu` first (failing with `NoSpace`, and
    /// nothing changed, if either cannot be had), then for each entry
    /// masks it, writes the new message and unmasks it
    /// ([`MsixTable::rebind`]), and only then frees the old vectors.
    ///
    /// No interrupt is lost: one the device raises while the entry is
    /// masked stays pending in the PBA and is sent — to the new message —
    /// at the unmask (PCI MSI-X; QEMU's `msix_handle_mask_update`); one
    /// sent before the mask runs the old handler, which stays installed
    /// until after the unmask. A message already on its way to the old
    /// CPU when its vector is freed would be lost (the kernel counts it
    /// as stray), so the switch ends doing what the handlers do for work
    /// that may have no interrupt coming: an Rx ring in interrupt mode
    /// with used entries is switched off and reported (`rx_ready`), a
    /// blocked Tx ring with completions is resumed (`tx_resume`). That
    /// may duplicate an upcall, never drop one.
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
        let entries = alloc::vec![
            (intr::rx_entry(i), intr::rx_handler(rx.clone(), up.clone())),
            (intr::tx_entry(i), intr::tx_handler(tx.clone(), up.clone())),
        ];
        self.msix.rebind(&*self.hal, &mut c.vectors, cpu, entries)?;
        rx.cpu.store(cpu, Ordering::Release);
        rx.catch_up(&*up);
        tx.catch_up(&*up);
        Ok(())
    }
}

impl MacProvider for VirtioNet {
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
        if self.bring_up(&c).is_err() {
            let _ = self.transport.reset(&*self.hal);
            self.free_vectors(&mut c);
            for r in &self.rx {
                *r.up.lock() = None;
            }
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
        let _ = self.transport.reset(&*self.hal);
        self.free_vectors(&mut c);
        for r in &self.rx {
            r.state.lock().reset();
            *r.up.lock() = None;
        }
        for t in &self.tx {
            t.state.lock().reset(&t.stats);
            t.blocked.store(false, Ordering::Release);
        }
        c.up = None;
        c.started = false;
    }

    fn rx_ring(&self, index: usize) -> Option<&dyn RxRing> {
        self.rx.get(index).map(|r| &**r as &dyn RxRing)
    }

    fn tx_ring(&self, index: usize) -> Option<&dyn TxRing> {
        self.tx.get(index).map(|r| &**r as &dyn TxRing)
    }

    /// Extra unicast addresses go into the device's MAC table (31 of them;
    /// the factory address needs no slot).
    fn unicast_add(&self, group: usize, addr: MacAddr) -> Result<(), MacError> {
        if group != 0 {
            return Err(MacError::Invalid);
        }
        if addr == self.info.factory_addr {
            return Ok(());
        }
        if self.features & features::CTRL_RX == 0 {
            return Err(MacError::NotSupported);
        }
        let mut c = self.control.lock();
        if c.filter.unicast.contains(&addr) {
            return Ok(());
        }
        if c.filter.unicast.len() >= UNICAST_TABLE {
            return Err(MacError::NoSpace);
        }
        c.filter.unicast.push(addr);
        if c.started
            && let Err(e) = self.push_filter(&c.filter)
        {
            c.filter.unicast.retain(|a| *a != addr);
            return Err(e);
        }
        Ok(())
    }

    fn unicast_remove(&self, group: usize, addr: MacAddr) -> Result<(), MacError> {
        if group != 0 {
            return Err(MacError::Invalid);
        }
        if addr == self.info.factory_addr {
            return Ok(());
        }
        let mut c = self.control.lock();
        let before = c.filter.unicast.len();
        c.filter.unicast.retain(|a| *a != addr);
        if c.filter.unicast.len() == before {
            return Err(MacError::Invalid);
        }
        if c.started { self.push_filter(&c.filter) } else { Ok(()) }
    }

    fn set_promisc(&self, on: bool) -> Result<(), MacError> {
        if self.features & features::CTRL_RX == 0 {
            return if on { Err(MacError::NotSupported) } else { Ok(()) };
        }
        let mut c = self.control.lock();
        c.filter.promisc = on;
        if c.started { self.command(ctrl::CLASS_RX, ctrl::RX_PROMISC, &[on as u8]) } else { Ok(()) }
    }

    fn multicast_add(&self, addr: MacAddr) -> Result<(), MacError> {
        if self.features & features::CTRL_RX == 0 {
            return Err(MacError::NotSupported);
        }
        let mut c = self.control.lock();
        if c.filter.multicast.contains(&addr) {
            return Ok(());
        }
        c.filter.multicast.push(addr);
        if c.started { self.push_filter(&c.filter) } else { Ok(()) }
    }

    fn multicast_remove(&self, addr: MacAddr) -> Result<(), MacError> {
        let mut c = self.control.lock();
        let before = c.filter.multicast.len();
        c.filter.multicast.retain(|a| *a != addr);
        if c.filter.multicast.len() == before {
            return Err(MacError::Invalid);
        }
        if c.started { self.push_filter(&c.filter) } else { Ok(()) }
    }

    fn link_state(&self) -> LinkState {
        if self.is_failed() {
            return LinkState::Down;
        }
        config::link(&**self.transport.device_cfg(), self.features)
    }

    fn speed_mbps(&self) -> u64 {
        config::speed_duplex(&**self.transport.device_cfg(), self.features).map_or(DEFAULT_SPEED_MBPS, |(s, _)| s)
    }

    fn duplex(&self) -> Duplex {
        config::speed_duplex(&**self.transport.device_cfg(), self.features).map_or(Duplex::Full, |(_, d)| d)
    }

    fn counters(&self) -> DeviceCounters {
        DeviceCounters {
            rx_missed: 0,
            rx_malformed: self.shared.rx_malformed.load(Ordering::Relaxed),
            resets: self.shared.resets.load(Ordering::Relaxed),
            link_changes: self.shared.link_changes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for VirtioNet {
    fn drop(&mut self) {
        let mut c = self.control.lock();
        if c.started {
            let _ = self.transport.reset(&*self.hal);
        }
        let mut vectors = core::mem::take(&mut c.vectors);
        drop(c);
        self.msix.mask_all();
        for v in vectors.drain(..) {
            self.hal.free_msi(v);
        }
    }
}
