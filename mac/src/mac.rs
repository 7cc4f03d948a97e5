//! A registered MAC: one NIC instance as the MAC layer sees it — its link
//! name (`net0`), device name (`vioif0`), provider, the primary client's
//! receive function, the wake-up hook of its Rx lanes, Tx ring selection
//! with a bounded backlog per ring, and its link state.
//!
//! Rx lanes: each hardware Rx ring has a soft ring set ([`RxSrs`]). The
//! driver's interrupt disables the ring's interrupt and calls
//! [`MacUpcalls::rx_ready`], which notes it in the SRS and wakes its poll
//! thread (the kernel's threads, wired with [`RxSrs::set_wakeups`]); the
//! threads run [`Mac::rx_poll_step`] and [`Mac::rx_worker_step`].

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use spin::Once;

use crate::sync::Mutex;

use crate::buf::BufPool;
use crate::dma::DmaAllocator;
use crate::mblk::{Mblk, MblkChain};
use crate::provider::{LinkState, MacError, MacInfo, MacProvider, MacUpcalls};
use crate::client::{AddrType, MacClient};
use crate::srs::{PollStep, RxSrs};
use crate::switch::Switch;
use crate::stats::RingCounters;

/// The primary client's receive function.
pub type RxFn = Arc<dyn Fn(MblkChain) + Send + Sync>;
/// Wakes a thread serving ring `ring`.
pub type WakeFn = Arc<dyn Fn(usize) + Send + Sync>;
/// Called on link state changes.
pub type LinkFn = Arc<dyn Fn(LinkState) + Send + Sync>;

/// Headroom reserved in Tx buffers for driver headers.
pub const TX_HEADROOM: usize = 128;
/// Size of each Tx buffer.
pub const TX_BUF_SIZE: usize = 2048;
/// Tx buffers per link.
pub const TX_BUFS: usize = 1024;
/// Packets a Tx ring's backlog holds while the ring is full.
pub const TX_BACKLOG: usize = 256;
/// Backlog at which a Tx ring counts as blocked: clients asking
/// [`Mac::tx_blocked`] hold back (illumos: `mac_tx` returns a cookie and
/// the client waits for `mac_tx_notify`) until the drain brings every
/// ring below it again.
pub const TX_BLOCK: usize = 64;

/// MAC-level counters of a link (the rings count the rest).
#[derive(Debug, Default)]
pub struct MacStats {
    /// Tx packets dropped because the Tx backlog was full.
    pub tx_backlog_drops: AtomicU64,
    /// Tx buffer allocations that failed (pool empty).
    pub tx_no_buf: AtomicU64,
    /// Link state changes.
    pub link_changes: AtomicU64,
    /// Partial checksums finished in software (the NIC has no Tx
    /// checksum offload).
    pub tx_sw_cksum: AtomicU64,
    /// Tx packets dropped because their partial checksum could not be
    /// finished (offsets outside the frame).
    pub tx_cksum_drops: AtomicU64,
    /// Large (LSO) frames cut in software because the NIC does not
    /// segment them, and the frames they became.
    pub tx_sw_gso: AtomicU64,
    pub tx_sw_gso_frames: AtomicU64,
    /// Large frames dropped: not segmentable, or no buffer for a piece.
    pub tx_gso_drops: AtomicU64,
}


/// One registered NIC instance.
pub struct Mac {
    link: String,
    device: String,
    provider: Arc<dyn MacProvider>,
    info: MacInfo,
    switch: Arc<Switch>,
    primary: Arc<MacClient>,
    /// Owner (client name) of each Rx ring group; group 0 is the default
    /// group of the primary client and the software-classified VNICs.
    group_owner: Mutex<Vec<Option<String>>>,
    rx_srs: Vec<Arc<RxSrs>>,
    tx_wake: Once<WakeFn>,
    link_fns: Mutex<Vec<LinkFn>>,
    tx_pool: Arc<BufPool>,
    tx_backlog: Vec<Mutex<MblkChain>>,
    /// Per Tx ring: whether its backlog is at [`TX_BLOCK`] or more; and
    /// how many are.
    tx_ring_blocked: Vec<AtomicBool>,
    tx_blocked_rings: AtomicUsize,
    link_state: AtomicU8,
    pub stats: MacStats,
}

struct Upcalls(Weak<Mac>);

impl MacUpcalls for Upcalls {
    fn rx_ready(&self, ring: usize) {
        if let Some(m) = self.0.upgrade() {
            if let Some(srs) = m.rx_srs.get(ring) {
                srs.interrupt();
            }
        }
    }
    fn tx_resume(&self, ring: usize) {
        if let Some(m) = self.0.upgrade() {
            match m.tx_wake.get() {
                // Drain in the thread that transmits (the driver's Tx path
                // takes locks that interrupt context must not).
                Some(w) => w(ring),
                None => m.tx_service(ring),
            }
        }
    }
    fn link_changed(&self, state: LinkState) {
        if let Some(m) = self.0.upgrade() {
            m.link_state.store(state as u8, Ordering::Release);
            m.stats.link_changes.fetch_add(1, Ordering::Relaxed);
            let fns: Vec<LinkFn> = m.link_fns.lock().clone();
            for f in fns {
                f(state);
            }
        }
    }
}

fn state_from(v: u8) -> LinkState {
    match v {
        0 => LinkState::Up,
        1 => LinkState::Down,
        _ => LinkState::Unknown,
    }
}

static MACS: Mutex<Vec<Arc<Mac>>> = Mutex::new(Vec::new());

/// Registers a started-or-not driver instance as the next link (`net0`,
/// `net1`, ...), device `DRIVER<instance>`. The provider is not started
/// yet: set the lane wake-up and the client, then call [`Mac::start`].
pub fn register(provider: Arc<dyn MacProvider>, dma: Arc<dyn DmaAllocator>) -> Result<Arc<Mac>, MacError> {
    let info = provider.info().clone();
    let tx_pool = BufPool::new(dma, TX_BUF_SIZE, TX_BUFS).ok_or(MacError::NoSpace)?;
    let mut macs = MACS.lock();
    let instance = macs.iter().filter(|m| m.info.driver == info.driver).count();
    let rx_srs = (0..info.rx_rings)
        .map(|i| {
            let cpu = provider.rx_ring(i).map(|r| r.cpu()).unwrap_or(0);
            Arc::new(RxSrs::new(i, cpu, info.pollable, &[]))
        })
        .collect();
    let link = alloc::format!("net{}", macs.len());
    let mtu = info.mtu;
    let factory = info.factory_addr;
    let groups = info.rx_groups.len().max(1);
    let mac = Arc::new_cyclic(|weak: &Weak<Mac>| {
        let switch = Arc::new(Switch::new(link.clone(), Some(weak.clone()), tx_pool.clone(), mtu));
        let primary = Arc::new(MacClient::new(link.clone(), factory, AddrType::Factory, 0, None, false, &switch));
        switch.attach(primary.clone());
        let mut owners = alloc::vec![None; groups];
        owners[0] = Some(link.clone());
        Mac {
            link: link.clone(),
            device: alloc::format!("{}{}", info.driver, instance),
            tx_backlog: (0..info.tx_rings).map(|_| Mutex::new(MblkChain::new())).collect(),
            tx_ring_blocked: (0..info.tx_rings).map(|_| AtomicBool::new(false)).collect(),
            tx_blocked_rings: AtomicUsize::new(0),
            provider,
            info,
            switch,
            primary,
            group_owner: Mutex::new(owners),
            rx_srs,
            tx_wake: Once::new(),
            link_fns: Mutex::new(Vec::new()),
            tx_pool,
            link_state: AtomicU8::new(LinkState::Unknown as u8),
            stats: MacStats::default(),
        }
    });
    macs.push(mac.clone());
    Ok(mac)
}

/// All registered links, in registration order.
pub fn links() -> Vec<Arc<Mac>> {
    MACS.lock().clone()
}

/// The link named `name`.
pub fn by_name(name: &str) -> Option<Arc<Mac>> {
    MACS.lock().iter().find(|m| m.link == name).cloned()
}

impl Mac {
    /// Link name (`net0`).
    pub fn link(&self) -> &str {
        &self.link
    }

    /// Device name (`vioif0`).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// What the driver registered.
    pub fn info(&self) -> &MacInfo {
        &self.info
    }

    /// The large-send capability (illumos `MAC_CAPAB_LSO`, basic
    /// TCP/IPv4): the largest frame the NIC segments itself, if it
    /// does. Frames larger than the MTU may be handed to [`Mac::tx`]
    /// without it too: they are cut in software ([`crate::gso`]).
    pub fn lso_tcp4_max(&self) -> Option<usize> {
        let l = self.info.lso;
        (l.tx_tcp4 && l.max_size > 0).then_some(l.max_size)
    }

    /// Whether the NIC segments `m` itself.
    fn takes_large(&self, m: &Mblk) -> bool {
        let kind_ok = match m.meta.gso.map(|g| g.kind) {
            Some(crate::mblk::GsoKind::Tcp4) => self.info.lso.tx_tcp4,
            Some(crate::mblk::GsoKind::Tcp6) => self.info.lso.tx_tcp6,
            _ => false,
        };
        kind_ok && m.total_len() <= self.info.lso.max_size && self.info.cksum.tx_partial
    }

    /// The driver.
    pub fn provider(&self) -> &Arc<dyn MacProvider> {
        &self.provider
    }

    /// The Rx soft ring sets, one per hardware Rx ring.
    pub fn rx_srs(&self) -> &[Arc<RxSrs>] {
        &self.rx_srs
    }

    /// Sets who drains a Tx backlog after the driver resumes a ring (once,
    /// before `start`); without it the drain runs inside the upcall.
    pub fn set_tx_wakeup(&self, f: WakeFn) {
        self.tx_wake.call_once(|| f);
    }

    /// Number of Tx rings (each with its backlog).
    pub fn tx_rings(&self) -> usize {
        self.tx_backlog.len()
    }

    /// Attaches the primary client's receive function.
    pub fn set_rx(&self, f: Option<RxFn>) {
        self.primary.set_rx(f);
    }

    /// The primary client (the link's own name and factory address).
    pub fn primary(&self) -> &Arc<MacClient> {
        &self.primary
    }

    /// The pool the link's Tx buffers come from (shared by its VNICs).
    pub fn tx_pool(&self) -> &Arc<BufPool> {
        &self.tx_pool
    }

    /// The link's virtual switch.
    pub fn switch(&self) -> &Arc<Switch> {
        &self.switch
    }

    /// Who uses each Rx ring group (`show-phys -H` CLIENTS): group 0 lists
    /// the primary client and every software-classified client.
    pub fn group_clients(&self, group: usize) -> Vec<String> {
        let owners = self.group_owner.lock();
        if group == 0 {
            let hw: Vec<&String> = owners.iter().skip(1).flatten().collect();
            return self.switch.clients().iter().filter(|c| c.is_plumbed() || !c.is_vnic()).map(|c| String::from(c.name())).filter(|n| !hw.contains(&n)).collect();
        }
        owners.get(group).cloned().flatten().into_iter().collect()
    }

    /// Reserves a free Rx ring group with rings and a unicast slot for
    /// `owner` (a hardware lane). `None` if the NIC has none left.
    pub(crate) fn reserve_group(&self, owner: &str) -> Option<usize> {
        let mut owners = self.group_owner.lock();
        let g = (1..owners.len()).find(|&g| {
            owners[g].is_none() && self.info.rx_groups.get(g).is_some_and(|gi| !gi.rings.is_empty() && gi.unicast_slots > 0)
        })?;
        owners[g] = Some(String::from(owner));
        Some(g)
    }

    /// Gives a reserved group back.
    pub(crate) fn release_group(&self, group: usize) {
        if let Some(o) = self.group_owner.lock().get_mut(group) {
            *o = None;
        }
    }

    /// Name of the primary client (the link's own name while a receive
    /// function is attached), for `dladm show-phys -H`.
    pub fn client_name(&self) -> Option<String> {
        self.primary.is_plumbed().then(|| self.link.clone())
    }

    /// Adds a link-state listener.
    pub fn on_link_change(&self, f: LinkFn) {
        self.link_fns.lock().push(f);
    }

    /// Starts the device.
    pub fn start(self: &Arc<Self>) -> Result<(), MacError> {
        let state = self.provider.link_state();
        self.link_state.store(state as u8, Ordering::Release);
        self.provider.start(Arc::new(Upcalls(Arc::downgrade(self))))
    }

    /// Current link state (as last reported by the driver).
    pub fn link_state(&self) -> LinkState {
        state_from(self.link_state.load(Ordering::Acquire))
    }

    /// One step of the poll thread of Rx ring `ring` (see [`RxSrs`]).
    pub fn rx_poll_step(&self, ring: usize) -> PollStep {
        match (self.rx_srs.get(ring), self.provider.rx_ring(ring)) {
            (Some(srs), Some(r)) => srs.poll_step(r),
            _ => PollStep::Idle,
        }
    }

    /// After an interrupt-mode pickup was processed (see [`RxSrs::rearm`]).
    pub fn rx_rearm(&self, ring: usize) -> PollStep {
        match (self.rx_srs.get(ring), self.provider.rx_ring(ring)) {
            (Some(srs), Some(r)) => srs.rearm(r),
            _ => PollStep::Idle,
        }
    }

    /// One step of the worker of Rx ring `ring`: fans the queued packets
    /// out to the soft rings and delivers those processed inline to the
    /// client. Returns whether there was work.
    pub fn rx_worker_step(&self, ring: usize) -> bool {
        match self.rx_srs.get(ring) {
            Some(srs) => srs.worker_step(&|c| self.rx_deliver(c)),
            None => false,
        }
    }

    /// Drains soft ring `index` of Rx ring `ring` into the client (the
    /// soft ring's own thread calls this). Returns packets delivered.
    pub fn rx_softring_drain(&self, ring: usize, index: usize) -> usize {
        match self.rx_srs.get(ring).and_then(|s| s.softrings().get(index)) {
            Some(sr) => sr.drain(&|c| self.rx_deliver(c)),
            None => 0,
        }
    }

    /// Hands a chain to the client (the soft rings' last step; also for
    /// diagnostics that poll a ring by hand).
    pub fn rx_deliver(&self, chain: MblkChain) {
        self.switch.rx_from_wire(chain);
    }

    /// A Tx packet with [`TX_HEADROOM`] bytes of headroom and `len` bytes
    /// of (zeroed or stale) data; `None` if `len` does not fit a buffer or
    /// the pool is empty (counted).
    pub fn alloc_tx(&self, len: usize) -> Option<Mblk> {
        if len + TX_HEADROOM > TX_BUF_SIZE {
            self.stats.tx_no_buf.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match self.tx_pool.alloc() {
            Some(b) => Some(Mblk::with_range(b, TX_HEADROOM, len)),
            None => {
                self.stats.tx_no_buf.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Sends a frame on the Tx ring its flow hashes to. A full ring keeps
    /// it in a bounded backlog until the driver resumes the ring.
    pub fn tx(&self, mut m: Mblk) {
        if crate::gso::is_large(&m) && !self.takes_large(&m) {
            let partial = self.info.cksum.tx_partial;
            match crate::gso::segment(&m, partial, &mut |n| self.alloc_tx(n)) {
                Ok(pieces) => {
                    self.stats.tx_sw_gso.fetch_add(1, Ordering::Relaxed);
                    self.stats.tx_sw_gso_frames.fetch_add(pieces.len() as u64, Ordering::Relaxed);
                    for p in pieces {
                        self.tx(p);
                    }
                }
                Err(_) => {
                    self.stats.tx_gso_drops.fetch_add(1, Ordering::Relaxed);
                }
            }
            return;
        }
        if matches!(m.meta.cksum, crate::mblk::Cksum::Partial { .. }) && !self.info.cksum.tx_partial {
            if !crate::cksum::finish(&mut m) {
                self.stats.tx_cksum_drops.fetch_add(1, Ordering::Relaxed);
                return;
            }
            self.stats.tx_sw_cksum.fetch_add(1, Ordering::Relaxed);
        }
        let rings = self.info.tx_rings.max(1);
        if m.meta.hash == 0 {
            m.meta.hash = crate::hash::frame_hash(m.data());
        }
        let ring = (m.meta.hash as usize) % rings;
        let Some(backlog) = self.tx_backlog.get(ring) else {
            // A provider without Tx rings.
            self.stats.tx_backlog_drops.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut backlog = backlog.lock();
        if backlog.len() >= TX_BACKLOG {
            self.stats.tx_backlog_drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        backlog.push(m);
        self.tx_push(ring, &mut backlog);
    }

    fn tx_push(&self, ring: usize, backlog: &mut MblkChain) {
        let Some(r) = self.provider.tx_ring(ring) else {
            self.stats.tx_backlog_drops.fetch_add(backlog.len() as u64, Ordering::Relaxed);
            *backlog = MblkChain::new();
            return;
        };
        let chain = core::mem::take(backlog);
        *backlog = r.tx(chain);
        self.note_backlog(ring, backlog.len());
    }

    /// Tracks whether ring `ring` is blocked (called with its backlog
    /// locked, after every change).
    fn note_backlog(&self, ring: usize, len: usize) {
        let Some(flag) = self.tx_ring_blocked.get(ring) else { return };
        let blocked = len >= TX_BLOCK;
        if flag.swap(blocked, Ordering::AcqRel) != blocked {
            if blocked {
                self.tx_blocked_rings.fetch_add(1, Ordering::AcqRel);
            } else {
                self.tx_blocked_rings.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Whether a Tx ring's backlog is at [`TX_BLOCK`] or more: clients
    /// should hold their packets until the drain (after the driver
    /// resumes the ring) clears it. One atomic load.
    pub fn tx_blocked(&self) -> bool {
        self.tx_blocked_rings.load(Ordering::Acquire) != 0
    }

    /// Sends what waits in Tx ring `ring`'s backlog (after a resume).
    pub fn tx_service(&self, ring: usize) {
        if let Some(b) = self.tx_backlog.get(ring) {
            let mut backlog = b.lock();
            if !backlog.is_empty() {
                self.tx_push(ring, &mut backlog);
            }
        }
    }

    /// Per-ring Rx counters.
    pub fn rx_ring_counters(&self) -> Vec<RingCounters> {
        (0..self.info.rx_rings).filter_map(|i| self.provider.rx_ring(i)).map(|r| r.stats().snapshot()).collect()
    }

    /// Per-ring Tx counters.
    pub fn tx_ring_counters(&self) -> Vec<RingCounters> {
        (0..self.info.tx_rings).filter_map(|i| self.provider.tx_ring(i)).map(|r| r.stats().snapshot()).collect()
    }

    /// CPU of each Rx ring's interrupt.
    pub fn rx_ring_cpus(&self) -> Vec<usize> {
        (0..self.info.rx_rings).filter_map(|i| self.provider.rx_ring(i)).map(|r| r.cpu()).collect()
    }
}
