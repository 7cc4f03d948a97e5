//! A transmit queue as a [`TxRing`]: each packet is one descriptor chain,
//! the `virtio_net_hdr` first. The header goes into the packet's headroom
//! when it has 12 bytes (the MAC layer leaves 64), else into a per-ring
//! header slot indexed by the chain's head descriptor; every non-empty
//! block of the `Mblk` is one more descriptor.
//!
//! Completions are reclaimed inside `tx` (and `reclaim`); the queue's
//! interrupt stays off until the ring is full. Then `tx` returns the unsent
//! packets, counts `blocked`, and arms the interrupt for when three
//! quarters of the packets in flight are done; the interrupt handler calls
//! `MacUpcalls::tx_resume` (counted as `unblocked`); so does a device
//! reset, which empties the ring.
//!
//! `tx` and `reclaim` take the ring's spin lock: call them from thread
//! context (or from an interrupt that cannot have interrupted a `tx` on
//! the same ring).

use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicBool, Ordering};

use arbalest_mac::{MacUpcalls, Mblk, MblkChain, RingStats, TxRing};
use arbalest_mac::sync::Mutex;

use crate::dma_mem::DmaMem;
use crate::virtio::queue::{QueueEvents, Seg, VirtQueue};

use super::hdr::{HDR_LEN, NetHdr, TxOffloads};
use super::{Shared, VirtioNet};

/// Most descriptors one packet may take (header + blocks).
pub const MAX_TX_SEGS: usize = 64;
/// Bytes per header slot.
pub const SLOT_SIZE: usize = 16;

pub(super) struct TxState {
    pub(super) vq: VirtQueue<Mblk>,
    /// One header slot per descriptor, for packets without headroom.
    slots: DmaMem,
}

impl TxState {
    pub(super) fn new(vq: VirtQueue<Mblk>, slots: DmaMem) -> TxState {
        TxState { vq, slots }
    }

    /// After a device reset or stop: packets in flight are dropped.
    pub(super) fn reset(&mut self, stats: &RingStats) {
        self.vq.reset(|_| {
            stats.drops.fetch_add(1, Ordering::Relaxed);
        });
    }
}

enum Room {
    Yes,
    No,
    Broken,
}

/// One Tx ring of a [`VirtioNet`].
pub struct VioifTxRing {
    pub(super) index: usize,
    pub(super) state: Mutex<TxState>,
    pub(super) events: Arc<QueueEvents>,
    pub(super) stats: RingStats,
    pub(super) shared: Arc<Shared>,
    pub(super) offloads: TxOffloads,
    /// A `tx` returned packets unsent; the next completion interrupt
    /// calls `tx_resume`.
    pub(super) blocked: AtomicBool,
    pub(super) dev: Weak<VirtioNet>,
}

impl VioifTxRing {
    /// The interrupt handler's work.
    pub(super) fn interrupt(&self, up: &dyn MacUpcalls) {
        self.stats.interrupts.fetch_add(1, Ordering::Relaxed);
        self.events.disable();
        if self.blocked.swap(false, Ordering::AcqRel) {
            self.stats.unblocked.fetch_add(1, Ordering::Relaxed);
            up.tx_resume(self.index);
        }
    }

    /// After a vector switch: what the handler would do if its message
    /// was lost — a blocked ring with completions waiting is resumed.
    pub(super) fn catch_up(&self, up: &dyn MacUpcalls) {
        if self.blocked.load(Ordering::Acquire) && self.events.is_enabled() && self.events.has_pending() {
            self.events.disable();
            if self.blocked.swap(false, Ordering::AcqRel) {
                self.stats.unblocked.fetch_add(1, Ordering::Relaxed);
                up.tx_resume(self.index);
            }
        }
    }

    /// Pops completions; Err if the queue is broken.
    fn reclaim_locked(&self, st: &mut TxState) -> Result<(), ()> {
        loop {
            match st.vq.pop_used() {
                Ok(Some(u)) => drop(u.token),
                Ok(None) => return Ok(()),
                Err(_) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    return Err(());
                }
            }
        }
    }

    /// Descriptors `m` needs.
    fn descs_needed(m: &Mblk) -> usize {
        let mut n = if m.headroom() >= HDR_LEN { 1 } else { 1 + usize::from(!m.is_empty()) };
        let mut c = m.cont.as_deref();
        while let Some(b) = c {
            n += usize::from(!b.is_empty());
            c = b.cont.as_deref();
        }
        n
    }

    /// Frees descriptors, or arms the completion interrupt when there is
    /// no room.
    fn make_room(&self, st: &mut TxState, need: usize) -> Room {
        if self.reclaim_locked(st).is_err() {
            return Room::Broken;
        }
        if st.vq.num_free() as usize >= need {
            return Room::Yes;
        }
        self.blocked.store(true, Ordering::Release);
        let mut after = (st.vq.in_flight() as u32 * 3 / 4).saturating_sub(1) as u16;
        loop {
            if !self.events.enable_after(after) {
                self.stats.blocked.fetch_add(1, Ordering::Relaxed);
                return Room::No;
            }
            // Completions slipped in before the interrupt was armed.
            if self.reclaim_locked(st).is_err() {
                return Room::Broken;
            }
            if st.vq.num_free() as usize >= need {
                self.events.disable();
                self.blocked.store(false, Ordering::Release);
                return Room::Yes;
            }
            after = 0;
        }
    }

    /// Queues one packet (room was checked). Gives it back if the queue
    /// broke.
    fn post(&self, st: &mut TxState, mut m: Mblk, hdr: NetHdr) -> Result<(), Mblk> {
        let len = m.total_len();
        let mut segs = [Seg::default(); MAX_TX_SEGS];
        let mut n = 0;
        let in_headroom = m.headroom() >= HDR_LEN;
        if in_headroom {
            m.prepend(HDR_LEN);
            hdr.encode(&mut m.data_mut()[..HDR_LEN]);
        } else {
            let Some(head) = st.vq.next_head() else { return Err(m) };
            let off = head as usize * SLOT_SIZE;
            st.slots.write_bytes(off, &hdr.to_bytes());
            segs[0] = Seg { addr: st.slots.paddr(off), len: HDR_LEN as u32, writable: false };
            n = 1;
        }
        let mut b = Some(&m);
        while let Some(blk) = b {
            if !blk.is_empty() && n < MAX_TX_SEGS {
                segs[n] = Seg { addr: blk.data_paddr(), len: blk.len() as u32, writable: false };
                n += 1;
            }
            b = blk.cont.as_deref();
        }
        match st.vq.add(&segs[..n], m) {
            Ok(_) => {
                self.stats.count(len);
                Ok(())
            }
            Err((_, mut m)) => {
                if in_headroom {
                    m.advance(HDR_LEN);
                }
                Err(m)
            }
        }
    }

    /// Sends what fits of `chain`; returns true if the queue broke.
    fn send(&self, st: &mut TxState, chain: &mut MblkChain) -> bool {
        if self.reclaim_locked(st).is_err() {
            return true;
        }
        let mut broken = false;
        while let Some(m) = chain.pop() {
            let need = Self::descs_needed(&m);
            if m.total_len() == 0 || need > MAX_TX_SEGS || need > st.vq.size() as usize {
                self.stats.drops.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Ok(hdr) = NetHdr::for_tx(&m.meta, self.offloads) else {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.drops.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if (st.vq.num_free() as usize) < need {
                match self.make_room(st, need) {
                    Room::Yes => {}
                    Room::No => {
                        chain.push_front(m);
                        break;
                    }
                    Room::Broken => {
                        chain.push_front(m);
                        broken = true;
                        break;
                    }
                }
            }
            if let Err(m) = self.post(st, m, hdr) {
                chain.push_front(m);
                broken = true;
                break;
            }
        }
        st.vq.kick();
        broken
    }

    fn recover(&self) {
        self.shared.needs_reset.store(true, Ordering::Release);
        if let Some(dev) = self.dev.upgrade() {
            dev.recover();
        }
    }
}

impl TxRing for VioifTxRing {
    /// Queues what fits; returns the rest (then `tx_resume` follows once
    /// room frees up). Packets the device cannot take (too many blocks,
    /// offloads not negotiated, empty) are dropped and counted. A broken
    /// queue resets the device and the send is retried once; if the device
    /// stays broken the packets are dropped and counted.
    fn tx(&self, chain: MblkChain) -> MblkChain {
        let mut chain = chain;
        for _ in 0..2 {
            if self.shared.needs_reset.load(Ordering::Acquire) {
                self.recover();
            }
            let broken = self.send(&mut self.state.lock(), &mut chain);
            if !broken {
                return chain;
            }
            self.recover();
        }
        self.stats.drops.fetch_add(chain.len() as u64, Ordering::Relaxed);
        MblkChain::new()
    }

    fn reclaim(&self) {
        let broken = self.reclaim_locked(&mut self.state.lock()).is_err();
        if broken {
            self.recover();
        }
    }

    fn stats(&self) -> &RingStats {
        &self.stats
    }
}
