//! A receive queue as an [`RxRing`]: a ring of advanced one-buffer
//! descriptors (SRRCTL.DESCTYPE = 001b), each holding one buffer of the
//! ring's bounded [`BufPool`]. The device writes a frame into the buffer
//! and the descriptor back (DD, EOP, checksum status, RSS hash, length);
//! the frame goes up in the same buffer as an [`Mblk`], and a fresh pool
//! buffer takes its place.
//!
//! Ring indexes: the device owns descriptors `[RDH, RDT)`; the driver
//! cleans from `ntc` (`next to clean`) and posts at `ntu` (= RDT), at most
//! `size - 1` buffers so that RDH == RDT always means "empty".
//!
//! Checksums: `Cksum::Verified` when the device checked the L4 checksum
//! (status L4I) and reported no L4 or IP error; checksum errors are
//! counted in the ring's `errors` and the frame goes up unverified (the
//! stack decides). Frame errors (RXE & co.) are counted in `errors` and
//! dropped. Malformed write-backs (no EOP: a frame spanning buffers, which
//! 2 KiB buffers without long-packet mode never need; a length shorter
//! than an Ethernet header or longer than the buffer or a frame) are
//! dropped and counted in `drops` and the device's `rx_malformed`.
//!
//! Interrupts: see [`super::intr`]. `poll` never waits for a lock: if
//! another CPU is polling the ring it returns an empty chain. `set_cpu`
//! takes the device's control lock ([`Igb::move_pair`]).

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering, fence};

use arbalest_mac::{BufPool, Cksum, DmaBuf, MacError, MacUpcalls, Mblk, MblkChain, PktMeta, RingStats, RxRing};
use arbalest_mac::sync::Mutex;

use crate::dma_mem::DmaMem;
use crate::hal::{Hal, Mmio};

use super::desc::{self, RxWriteBack};
use super::intr::{QueueVector, WANT_RX};
use super::regs::*;
use super::{Igb, Shared};

/// An Ethernet header.
pub const ETH_HLEN: usize = 14;
/// Longest frame accepted: 1500 bytes of payload, Ethernet header, two
/// VLAN tags (the CRC is stripped).
pub const MAX_FRAME: usize = 1500 + ETH_HLEN + 8;
/// Smallest Rx buffer: a whole frame must fit one buffer.
pub const MIN_BUF: usize = 2048;

/// Descriptor thresholds (Linux `igb` values for the 82576 with MSI-X).
const RXDCTL_VALUE: u32 = DCTL_ENABLE | (8 << DCTL_PTHRESH_SHIFT) | (8 << DCTL_HTHRESH_SHIFT) | (1 << DCTL_WTHRESH_SHIFT);
/// Header buffer size field (unused with one-buffer descriptors; as Linux).
const SRRCTL_HDR: u32 = 256 << SRRCTL_BSIZEHDRSIZE_SHIFT;

pub(super) struct RxState {
    ring: Arc<DmaMem>,
    size: usize,
    slots: Vec<Option<DmaBuf>>,
    pool: Arc<BufPool>,
    ntc: usize,
    ntu: usize,
    posted: usize,
    /// Inside a frame that spans descriptors: drop until its EOP.
    discarding: bool,
}

impl RxState {
    pub(super) fn new(ring: Arc<DmaMem>, size: usize, pool: Arc<BufPool>) -> RxState {
        RxState { ring, size, slots: (0..size).map(|_| None).collect(), pool, ntc: 0, ntu: 0, posted: 0, discarding: false }
    }

    /// The descriptor ring.
    pub(super) fn ring(&self) -> Arc<DmaMem> {
        self.ring.clone()
    }

    /// After a device reset or stop: buffers in flight return to the pool,
    /// the ring is zeroed.
    pub(super) fn reset(&mut self) {
        for s in self.slots.iter_mut() {
            *s = None;
        }
        self.ring.zero();
        self.ntc = 0;
        self.ntu = 0;
        self.posted = 0;
        self.discarding = false;
    }

    /// The ring's buffer pool.
    pub(super) fn pool(&self) -> &Arc<BufPool> {
        &self.pool
    }

    /// Posts pool buffers until the ring is full or the pool empty;
    /// returns how many. The caller writes RDT.
    pub(super) fn refill(&mut self) -> usize {
        let mut n = 0;
        while self.posted < self.size - 1 {
            let Some(buf) = self.pool.alloc() else { break };
            desc::rx_post(&self.ring, self.ntu, buf.paddr());
            self.slots[self.ntu] = Some(buf);
            self.ntu = (self.ntu + 1) % self.size;
            self.posted += 1;
            n += 1;
        }
        n
    }

    /// Bytes per buffer as SRRCTL.BSIZEPKT counts them (KiB).
    fn bsizepkt(&self) -> u32 {
        ((self.pool.buf_size() / 1024) as u32).clamp(1, SRRCTL_BSIZEPKT_MASK)
    }

    /// Takes the next written-back descriptor, if any.
    fn next_done(&mut self) -> Option<(DmaBuf, RxWriteBack)> {
        if self.posted == 0 {
            return None;
        }
        let i = self.ntc;
        if desc::rx_status(&self.ring, i) & desc::RX_STAT_DD == 0 {
            return None;
        }
        fence(Ordering::Acquire);
        let wb = desc::rx_read_wb(&self.ring, i);
        desc::rx_clear(&self.ring, i);
        let buf = self.slots[i].take()?;
        self.ntc = (i + 1) % self.size;
        self.posted -= 1;
        Some((buf, wb))
    }
}

/// One Rx ring (hardware queue `index`) of an [`Igb`].
pub struct IgbRxRing {
    pub(super) index: usize,
    /// CPU of the queue pair's vector; changed under the device's
    /// `control` lock ([`Igb::move_pair`]).
    pub(super) cpu: AtomicUsize,
    pub(super) regs: Arc<dyn Mmio>,
    /// The descriptor ring, also read (DD only) by the interrupt handler.
    pub(super) descs: Arc<DmaMem>,
    /// `ntc` as last published by `poll`, for the handler's DD check.
    pub(super) next: AtomicUsize,
    pub(super) state: Mutex<RxState>,
    pub(super) vector: Arc<QueueVector>,
    pub(super) stats: RingStats,
    pub(super) shared: Arc<Shared>,
    pub(super) up: Mutex<Option<Arc<dyn MacUpcalls>>>,
    pub(super) dev: Weak<Igb>,
}

impl IgbRxRing {
    /// Programs the queue (base, length, buffer size, descriptor type,
    /// drop when out of descriptors), enables it and posts buffers. The
    /// state is reset first: buffers in flight return to the pool.
    pub(super) fn configure(&self, st: &mut RxState, hal: &dyn Hal) {
        let q = self.index;
        let r = &*self.regs;
        st.reset();
        r.write32(rxdctl(q), 0);
        let base = st.ring.paddr(0);
        r.write32(rdbal(q), base as u32);
        r.write32(rdbah(q), (base >> 32) as u32);
        r.write32(rdlen(q), (st.size * desc::DESC_LEN) as u32);
        r.write32(srrctl(q), st.bsizepkt() | SRRCTL_HDR | SRRCTL_DESCTYPE_ADV_ONEBUF | SRRCTL_DROP_EN);
        r.write32(rdh(q), 0);
        r.write32(rdt(q), 0);
        r.write32(rxdctl(q), RXDCTL_VALUE);
        let end = hal.now_ns().saturating_add(10_000_000);
        while r.read32(rxdctl(q)) & DCTL_ENABLE == 0 && hal.now_ns() < end {
            hal.delay_us(10);
        }
        st.refill();
        self.next.store(st.ntc, Ordering::Release);
        self.kick(st);
    }

    /// Hands the posted buffers to the device.
    fn kick(&self, st: &RxState) {
        fence(Ordering::Release);
        self.regs.write32(rdt(self.index), st.ntu as u32);
    }

    /// Whether a written-back descriptor waits at the head of the ring
    /// (lock-free: for the interrupt handler and `intr_enable`).
    pub(super) fn pending(&self) -> bool {
        let i = self.next.load(Ordering::Acquire);
        desc::rx_status(&self.descs, i) & desc::RX_STAT_DD != 0
    }

    /// The interrupt handler's Rx work (the vector is already claimed).
    pub(super) fn interrupt(&self, up: &dyn MacUpcalls) {
        self.stats.interrupts.fetch_add(1, Ordering::Relaxed);
        up.rx_ready(self.index);
    }

    fn malformed(&self) {
        self.stats.drops.fetch_add(1, Ordering::Relaxed);
        self.shared.rx_malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// Checksum verdict from the write-back status.
    fn cksum(&self, st: u32) -> Cksum {
        let ip_bad = st & desc::RX_STAT_IPCS != 0 && st & desc::RX_ERR_IPE != 0;
        let l4_bad = st & desc::RX_STAT_L4I != 0 && st & desc::RX_ERR_L4E != 0;
        if ip_bad || l4_bad {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            return Cksum::None;
        }
        if st & desc::RX_STAT_L4I != 0 { Cksum::Verified } else { Cksum::None }
    }

    /// Turns one written-back buffer into a packet (appended to `out`) or
    /// drops it, counted.
    fn receive(&self, st: &mut RxState, buf: DmaBuf, wb: RxWriteBack, out: &mut MblkChain) {
        if st.discarding {
            st.discarding = !wb.eop();
            return;
        }
        if !wb.eop() {
            self.malformed();
            st.discarding = true;
            return;
        }
        if wb.status_error & desc::RX_ERR_FRAME != 0 {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            self.stats.drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let len = wb.length as usize;
        if !(ETH_HLEN..=MAX_FRAME).contains(&len) || len > buf.capacity() {
            self.malformed();
            return;
        }
        let mut m = Mblk::with_range(buf, 0, len);
        m.meta = PktMeta { cksum: self.cksum(wb.status_error), gso: None, ring: self.index as u16, hash: wb.hash().unwrap_or(0) };
        self.stats.count(len);
        out.push(m);
    }

    fn recover(&self) {
        if let Some(dev) = self.dev.upgrade() {
            dev.recover();
        }
    }
}

impl RxRing for IgbRxRing {
    /// Takes frames up to about `max_bytes` (at least one if any is
    /// ready), reposts buffers and moves RDT. Returns an empty chain if
    /// another CPU is polling this ring (or the device is being reset).
    fn poll(&self, max_bytes: usize) -> MblkChain {
        if self.shared.needs_reset.load(Ordering::Acquire) {
            self.recover();
        }
        let mut out = MblkChain::new();
        let Some(mut st) = self.state.try_lock() else { return out };
        while out.is_empty() || out.bytes() < max_bytes {
            let Some((buf, wb)) = st.next_done() else { break };
            self.receive(&mut st, buf, wb, &mut out);
        }
        self.next.store(st.ntc, Ordering::Release);
        if st.refill() > 0 {
            self.kick(&st);
        }
        out
    }

    fn intr_enable(&self) {
        // A ring the pool could not refill gets another chance here.
        if let Some(mut st) = self.state.try_lock()
            && st.refill() > 0
        {
            self.kick(&st);
        }
        self.vector.arm(WANT_RX);
        // Frames that arrived while the interrupt was off: do what the
        // interrupt would have (unless it just did).
        if self.pending() && self.vector.claim(WANT_RX) {
            self.vector.sync();
            let up = self.up.try_lock().and_then(|u| u.clone());
            if let Some(up) = up {
                up.rx_ready(self.index);
            }
        }
    }

    fn intr_disable(&self) {
        self.vector.disarm(WANT_RX);
    }

    fn cpu(&self) -> usize {
        self.cpu.load(Ordering::Acquire)
    }

    /// Moves queue pair `index`'s vector to `cpu` ([`Igb::move_pair`]).
    fn set_cpu(&self, cpu: usize) -> Result<(), MacError> {
        match self.dev.upgrade() {
            Some(dev) => dev.move_pair(self.index, cpu),
            None => Err(MacError::Device),
        }
    }

    fn stats(&self) -> &RingStats {
        &self.stats
    }

    fn pool(&self) -> Option<Arc<BufPool>> {
        Some(self.state.lock().pool().clone())
    }
}
