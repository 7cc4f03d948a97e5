//! A transmit queue as a [`TxRing`]: every non-empty block of a packet's
//! [`Mblk`] becomes one advanced data descriptor (EOP and RS on the last),
//! preceded by a context descriptor when the packet needs offloads whose
//! parameters differ from the last context written on this ring
//! ([`super::offload`]).
//!
//! Completions: the device sets DD in a packet's last descriptor (RS); the
//! packet's buffers are freed when `tx` or `reclaim` finds it. The ring's
//! interrupt stays off until the ring is full: then `tx` returns the
//! unsent packets, counts `blocked` and arms the Tx side of the queue
//! pair's vector; the handler calls `MacUpcalls::tx_resume` (counted as
//! `unblocked`), and so does a device reset, which empties the ring.
//!
//! A ring that stays full with no completion for `Tunables::tx_timeout_ms`
//! while the link is up is a hung device: counted in `errors` and
//! recovered by a reset.
//!
//! `tx` and `reclaim` take the ring's spin lock: call them from thread
//! context (or from an interrupt that cannot have interrupted a `tx` on
//! the same ring).

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

use arbalest_mac::{LinkState, MacUpcalls, Mblk, MblkChain, RingStats, TxRing};
use arbalest_mac::sync::Mutex;

use crate::dma_mem::DmaMem;
use crate::hal::{Hal, Mmio};

use super::desc::{self, TxContext, TxData};
use super::hw;
use super::intr::{QueueVector, WANT_TX};
use super::offload::{self, TxOffload};
use super::regs::*;
use super::{Igb, Shared};

/// Most data descriptors one packet may take (a 64 KiB TSO packet in the
/// MAC layer's 1920-byte blocks needs 35; QEMU takes at most 64).
pub const MAX_TX_SEGS: usize = 40;

/// Descriptor thresholds (Linux `igb` values for the 82576 with MSI-X).
const TXDCTL_VALUE: u32 = DCTL_ENABLE | (8 << DCTL_PTHRESH_SHIFT) | (1 << DCTL_HTHRESH_SHIFT) | (1 << DCTL_WTHRESH_SHIFT);

/// `oldest_eop` when nothing is in flight.
const NONE: usize = usize::MAX;

/// A packet in flight, kept at its first descriptor.
#[derive(Default)]
struct Slot {
    /// Its last (EOP) descriptor.
    eop: usize,
    /// Descriptors it takes (context included).
    descs: usize,
    pkt: Option<Mblk>,
}

pub(super) struct TxState {
    ring: Arc<DmaMem>,
    size: usize,
    slots: Vec<Slot>,
    ntc: usize,
    ntu: usize,
    /// Descriptors in flight.
    used: usize,
    /// The context the device holds in slot 0 (None after a reset).
    last_ctx: Option<TxContext>,
    /// When completions last made progress (or the ring last started
    /// from empty).
    last_progress_ns: u64,
}

impl TxState {
    pub(super) fn new(ring: Arc<DmaMem>, size: usize) -> TxState {
        TxState { ring, size, slots: (0..size).map(|_| Slot::default()).collect(), ntc: 0, ntu: 0, used: 0, last_ctx: None, last_progress_ns: 0 }
    }

    /// The descriptor ring.
    pub(super) fn ring(&self) -> Arc<DmaMem> {
        self.ring.clone()
    }

    /// After a device reset or stop: packets in flight are dropped (and
    /// counted).
    pub(super) fn reset(&mut self, stats: &RingStats) {
        for s in self.slots.iter_mut() {
            if s.pkt.take().is_some() {
                stats.drops.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.ring.zero();
        self.ntc = 0;
        self.ntu = 0;
        self.used = 0;
        self.last_ctx = None;
    }

    fn free(&self) -> usize {
        self.size - 1 - self.used
    }
}

enum Room {
    Yes,
    No,
    Hung,
}

/// One Tx ring (hardware queue `index`) of an [`Igb`].
pub struct IgbTxRing {
    pub(super) index: usize,
    pub(super) regs: Arc<dyn Mmio>,
    pub(super) hal: Arc<dyn Hal>,
    /// The descriptor ring, also read (DD only) by the interrupt handler.
    pub(super) descs: Arc<DmaMem>,
    /// Last descriptor of the oldest packet in flight, for the handler.
    pub(super) oldest_eop: AtomicUsize,
    pub(super) state: Mutex<TxState>,
    pub(super) vector: Arc<QueueVector>,
    pub(super) stats: RingStats,
    pub(super) shared: Arc<Shared>,
    pub(super) tso: bool,
    pub(super) timeout_ns: u64,
    /// A `tx` returned packets unsent; the next completion interrupt calls
    /// `tx_resume`.
    pub(super) blocked: AtomicBool,
    pub(super) dev: Weak<Igb>,
}

impl IgbTxRing {
    /// Programs and enables the queue (state reset first: packets in
    /// flight are dropped).
    pub(super) fn configure(&self, st: &mut TxState, hal: &dyn Hal) {
        let q = self.index;
        let r = &*self.regs;
        st.reset(&self.stats);
        r.write32(txdctl(q), 0);
        let base = st.ring.paddr(0);
        r.write32(tdbal(q), base as u32);
        r.write32(tdbah(q), (base >> 32) as u32);
        r.write32(tdlen(q), (st.size * desc::DESC_LEN) as u32);
        r.write32(tdh(q), 0);
        r.write32(tdt(q), 0);
        r.write32(txdctl(q), TXDCTL_VALUE);
        let end = hal.now_ns().saturating_add(10_000_000);
        while r.read32(txdctl(q)) & DCTL_ENABLE == 0 && hal.now_ns() < end {
            hal.delay_us(10);
        }
        self.oldest_eop.store(NONE, Ordering::Release);
    }

    /// Whether the oldest packet in flight is done (lock-free, for the
    /// interrupt handler).
    pub(super) fn completions_pending(&self) -> bool {
        let e = self.oldest_eop.load(Ordering::Acquire);
        e != NONE && desc::tx_done(&self.descs, e)
    }

    /// The interrupt handler's Tx work (the vector is already claimed).
    pub(super) fn interrupt(&self, up: &dyn MacUpcalls) {
        self.stats.interrupts.fetch_add(1, Ordering::Relaxed);
        if self.blocked.swap(false, Ordering::AcqRel) {
            self.stats.unblocked.fetch_add(1, Ordering::Relaxed);
            up.tx_resume(self.index);
        }
    }

    fn publish_oldest(&self, st: &TxState) {
        let e = if st.used > 0 { st.slots[st.ntc].eop } else { NONE };
        self.oldest_eop.store(e, Ordering::Release);
    }

    /// Frees completed packets.
    fn reclaim_locked(&self, st: &mut TxState) {
        let mut progressed = false;
        while st.used > 0 {
            let first = st.ntc;
            let eop = st.slots[first].eop;
            if !desc::tx_done(&st.ring, eop) {
                break;
            }
            fence(Ordering::Acquire);
            let slot = core::mem::take(&mut st.slots[first]);
            drop(slot.pkt);
            st.used -= slot.descs.min(st.used);
            st.ntc = (eop + 1) % st.size;
            progressed = true;
        }
        if progressed {
            st.last_progress_ns = self.hal.now_ns();
        }
        self.publish_oldest(st);
    }

    /// Frees descriptors, or arms the completion interrupt when there is
    /// no room.
    fn make_room(&self, st: &mut TxState, need: usize) -> Room {
        self.reclaim_locked(st);
        if st.free() >= need {
            return Room::Yes;
        }
        if self.hal.now_ns().saturating_sub(st.last_progress_ns) > self.timeout_ns && hw::link_state(&*self.regs) == LinkState::Up {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            return Room::Hung;
        }
        self.blocked.store(true, Ordering::Release);
        self.vector.arm(WANT_TX);
        // Completions that slipped in before the interrupt was armed.
        self.reclaim_locked(st);
        if st.free() >= need {
            self.vector.disarm(WANT_TX);
            self.blocked.store(false, Ordering::Release);
            return Room::Yes;
        }
        self.stats.blocked.fetch_add(1, Ordering::Relaxed);
        Room::No
    }

    /// Writes one packet's descriptors (room was checked).
    fn post(&self, st: &mut TxState, mut m: Mblk, off: TxOffload, write_ctx: bool) {
        let first = st.ntu;
        let mut i = first;
        let mut n = 0;
        if let (true, Some(ctx)) = (write_ctx, off.ctx) {
            desc::tx_write_context(&st.ring, i, &ctx);
            st.last_ctx = Some(ctx);
            i = (i + 1) % st.size;
            n += 1;
        }
        offload::apply(&mut m, &off);
        let len = m.total_len();
        let olinfo = (off.paylen << desc::TX_PAYLEN_SHIFT) | off.popts;
        let cmd = desc::TX_DTYP_DATA | desc::TX_DCMD_DEXT | desc::TX_DCMD_IFCS | if off.tse { desc::TX_DCMD_TSE } else { 0 };
        let blocks = Self::blocks(&m);
        let mut last = i;
        let mut k = 0;
        let mut blk = Some(&m);
        while let Some(b) = blk {
            blk = b.cont.as_deref();
            if b.is_empty() {
                continue;
            }
            k += 1;
            let eop = if k == blocks { desc::TX_DCMD_EOP | desc::TX_DCMD_RS } else { 0 };
            let d = TxData { addr: b.data_paddr(), cmd_type_len: cmd | eop | (b.len() as u32 & desc::TX_LEN_MASK), olinfo_status: olinfo };
            desc::tx_write_data(&st.ring, i, &d);
            last = i;
            i = (i + 1) % st.size;
            n += 1;
        }
        if st.used == 0 {
            st.last_progress_ns = self.hal.now_ns();
        }
        st.slots[first] = Slot { eop: last, descs: n, pkt: Some(m) };
        st.ntu = i;
        st.used += n;
        self.stats.count(len);
    }

    /// Data descriptors `m` needs (its non-empty blocks); `usize::MAX` if
    /// a block is longer than a descriptor can say.
    fn blocks(m: &Mblk) -> usize {
        let mut n = 0;
        let mut c = Some(m);
        while let Some(b) = c {
            if b.len() > desc::TX_LEN_MASK as usize {
                return usize::MAX;
            }
            n += usize::from(!b.is_empty());
            c = b.cont.as_deref();
        }
        n
    }

    /// Sends what fits of `chain`; returns true if the ring is hung.
    fn send(&self, st: &mut TxState, chain: &mut MblkChain) -> bool {
        self.reclaim_locked(st);
        let mut posted = false;
        let mut hung = false;
        while let Some(m) = chain.pop() {
            let blocks = Self::blocks(&m);
            if blocks == 0 || blocks > MAX_TX_SEGS {
                self.stats.drops.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let off = match offload::plan(&m, self.tso) {
                Ok(o) => o,
                Err(_) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.drops.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            if !off.tse && m.total_len() > super::rx::MAX_FRAME {
                self.stats.drops.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let write_ctx = off.ctx.is_some() && off.ctx != st.last_ctx;
            let need = blocks + usize::from(write_ctx);
            if need > st.size - 1 {
                self.stats.drops.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if st.free() < need {
                match self.make_room(st, need) {
                    Room::Yes => {}
                    Room::No => {
                        chain.push_front(m);
                        break;
                    }
                    Room::Hung => {
                        chain.push_front(m);
                        hung = true;
                        break;
                    }
                }
            }
            self.post(st, m, off, write_ctx);
            posted = true;
        }
        if posted {
            fence(Ordering::Release);
            self.regs.write32(tdt(self.index), st.ntu as u32);
            self.publish_oldest(st);
        }
        hung
    }

    fn recover(&self) {
        self.shared.needs_reset.store(true, Ordering::Release);
        if let Some(dev) = self.dev.upgrade() {
            dev.recover();
        }
    }
}

impl TxRing for IgbTxRing {
    /// Queues what fits; returns the rest (then `tx_resume` follows once
    /// room frees up). Packets the device cannot take (empty, too many
    /// blocks, too big, offloads it cannot do) are dropped and counted. A
    /// hung ring resets the device and the send is retried once; if the
    /// device stays broken the packets are dropped and counted.
    fn tx(&self, chain: MblkChain) -> MblkChain {
        let mut chain = chain;
        for _ in 0..2 {
            if self.shared.needs_reset.load(Ordering::Acquire) {
                self.recover();
            }
            if self.shared.failed.load(Ordering::Acquire) {
                break;
            }
            let hung = self.send(&mut self.state.lock(), &mut chain);
            if !hung {
                return chain;
            }
            self.recover();
        }
        self.stats.drops.fetch_add(chain.len() as u64, Ordering::Relaxed);
        MblkChain::new()
    }

    fn reclaim(&self) {
        self.reclaim_locked(&mut self.state.lock());
    }

    fn stats(&self) -> &RingStats {
        &self.stats
    }
}
