//! A receive queue as an [`RxRing`]: pool buffers posted one descriptor
//! each, packets handed up in the same buffers (the `virtio_net_hdr` is
//! skipped by advancing the block's start). With `MRG_RXBUF` a packet
//! spans `num_buffers` used entries and becomes one `Mblk` with `cont`
//! blocks.
//!
//! Malformed receives (too short for the header or an Ethernet header,
//! a length beyond the buffer, a bad `num_buffers`, too long without GSO)
//! are dropped and counted in the ring's `drops` and the device's
//! `rx_malformed`; their buffers return to the pool and are reposted. A bad
//! used entry breaks the queue and resets the device.
//!
//! Interrupts: the handler counts, switches the queue's interrupt off and
//! calls `MacUpcalls::rx_ready`. `intr_enable` switches it back on and, if
//! packets arrived while it was off, does what the handler would do
//! (switch it off again and call `rx_ready` itself, from the caller's
//! context), so none is stranded.
//!
//! `set_cpu` moves the ring's (and its Tx twin's) vector to another CPU:
//! see [`VirtioNet::move_pair`]. It takes the device's control lock; the
//! data path does not.
//!
//! No other method here ever waits for a lock: `poll` returns an empty chain if
//! another CPU is polling the ring (or the device is being reset), so the
//! ring may be used from any context, interrupt handlers included.

use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicUsize, Ordering};

use arbalest_mac::{BufPool, DmaBuf, MacError, MacUpcalls, Mblk, MblkChain, RingStats, RxRing};
use arbalest_mac::sync::Mutex;

use crate::virtio::queue::{QueueEvents, Seg, Used, VirtQueue};

use super::hdr::{HDR_LEN, NetHdr};
use super::{Shared, VirtioNet};

/// An Ethernet header.
pub const ETH_HLEN: usize = 14;
/// Longest frame accepted without GSO: 1500 + Ethernet + one VLAN tag.
pub const MAX_FRAME: usize = 1500 + ETH_HLEN + 4;
/// Longest coalesced (GSO) receive.
pub const MAX_GSO_FRAME: usize = 65_536 + ETH_HLEN + 4;

/// A packet whose later buffers have not been popped yet.
struct Partial {
    head: Mblk,
    remaining: u16,
}

pub(super) struct RxState {
    pub(super) vq: VirtQueue<DmaBuf>,
    pool: Arc<BufPool>,
    mrg: bool,
    partial: Option<Partial>,
    /// Buffers still to skip of a packet dropped part-way (so its later
    /// buffers are not taken for new packets' headers).
    discard: u16,
}

impl RxState {
    pub(super) fn new(vq: VirtQueue<DmaBuf>, pool: Arc<BufPool>, mrg: bool) -> RxState {
        RxState { vq, pool, mrg, partial: None, discard: 0 }
    }

    /// After a device reset or stop: buffers in flight return to the pool.
    pub(super) fn reset(&mut self) {
        self.partial = None;
        self.discard = 0;
        self.vq.reset(drop);
    }

    /// The ring's buffer pool.
    pub(super) fn pool(&self) -> &Arc<BufPool> {
        &self.pool
    }

    /// Posts free pool buffers until the ring is full or the pool empty;
    /// returns how many. The caller kicks.
    pub(super) fn refill(&mut self) -> usize {
        let mut n = 0;
        while self.vq.num_free() > 0 {
            let Some(buf) = self.pool.alloc() else { break };
            let seg = Seg { addr: buf.paddr(), len: buf.capacity() as u32, writable: true };
            if self.vq.add(&[seg], buf).is_err() {
                break;
            }
            n += 1;
        }
        n
    }
}

/// One Rx ring of a [`VirtioNet`].
pub struct VioifRxRing {
    pub(super) index: usize,
    /// CPU of its vector (and its Tx twin's); changed under `control`.
    pub(super) cpu: AtomicUsize,
    pub(super) state: Mutex<RxState>,
    pub(super) events: Arc<QueueEvents>,
    pub(super) stats: RingStats,
    pub(super) shared: Arc<Shared>,
    pub(super) up: Mutex<Option<Arc<dyn MacUpcalls>>>,
    pub(super) dev: Weak<VirtioNet>,
}

impl VioifRxRing {
    /// The interrupt handler's work.
    pub(super) fn interrupt(&self, up: &dyn MacUpcalls) {
        self.stats.interrupts.fetch_add(1, Ordering::Relaxed);
        self.events.disable();
        up.rx_ready(self.index);
    }

    /// After a vector switch: what the handler would do if its message
    /// was lost — in interrupt mode with used entries waiting, switch the
    /// interrupt off and report the ring.
    pub(super) fn catch_up(&self, up: &dyn MacUpcalls) {
        if self.events.is_enabled() && self.events.has_pending() {
            self.events.disable();
            up.rx_ready(self.index);
        }
    }

    fn malformed(&self) {
        self.stats.drops.fetch_add(1, Ordering::Relaxed);
        self.shared.rx_malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// Turns one used buffer into (part of) a packet; a finished packet is
    /// appended to `out`.
    fn receive(&self, st: &mut RxState, used: Used<DmaBuf>, out: &mut MblkChain) {
        let Used { token: buf, len } = used;
        let len = len as usize;
        if st.discard > 0 {
            // The rest of a packet already dropped (and counted).
            st.discard -= 1;
            return;
        }
        if let Some(mut p) = st.partial.take() {
            if len == 0 || len > buf.capacity() {
                self.malformed(); // the whole packet goes
                st.discard = p.remaining - 1;
                return;
            }
            p.head.push_cont(Mblk::with_range(buf, 0, len));
            p.remaining -= 1;
            if p.remaining == 0 {
                self.deliver(p.head, out);
            } else {
                st.partial = Some(p);
            }
            return;
        }
        if len < HDR_LEN || len > buf.capacity() {
            self.malformed();
            return;
        }
        let hdr = NetHdr::decode(buf.as_slice());
        let nbufs = if st.mrg { hdr.num_buffers } else { 1 };
        if nbufs == 0 || nbufs > st.vq.size() {
            self.malformed();
            return;
        }
        let mut m = Mblk::with_range(buf, HDR_LEN, len - HDR_LEN);
        m.meta = hdr.rx_meta(self.index as u16);
        if nbufs > 1 {
            st.partial = Some(Partial { head: m, remaining: nbufs - 1 });
        } else {
            self.deliver(m, out);
        }
    }

    /// Final checks on a whole packet.
    fn deliver(&self, m: Mblk, out: &mut MblkChain) {
        let len = m.total_len();
        let max = if m.meta.gso.is_some() { MAX_GSO_FRAME } else { MAX_FRAME };
        if !(ETH_HLEN..=max).contains(&len) {
            self.malformed();
            return;
        }
        self.stats.count(len);
        out.push(m);
    }

    fn recover(&self) {
        self.shared.needs_reset.store(true, Ordering::Release);
        if let Some(dev) = self.dev.upgrade() {
            dev.recover();
        }
    }
}

impl RxRing for VioifRxRing {
    /// Takes packets up to about `max_bytes` (at least one if any is
    /// ready), then reposts buffers and kicks the device. If another CPU is
    /// polling this ring right now (or the device is being reset), returns
    /// an empty chain rather than wait.
    fn poll(&self, max_bytes: usize) -> MblkChain {
        if self.shared.needs_reset.load(Ordering::Acquire) {
            self.recover();
        }
        let mut out = MblkChain::new();
        let Some(mut st) = self.state.try_lock() else { return out };
        let mut broken = false;
        while out.is_empty() || out.bytes() < max_bytes {
            match st.vq.pop_used() {
                Ok(Some(u)) => self.receive(&mut st, u, &mut out),
                Ok(None) => break,
                Err(_) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    broken = true;
                    break;
                }
            }
        }
        if !broken {
            st.refill();
            st.vq.kick();
        }
        drop(st);
        if broken {
            self.recover();
        }
        out
    }

    fn intr_enable(&self) {
        // A ring the pool could not refill gets another chance here.
        if let Some(mut st) = self.state.try_lock()
            && st.refill() > 0
        {
            st.vq.kick();
        }
        if self.events.enable() {
            // Packets arrived while the interrupt was off: raise the work
            // now, exactly as the interrupt would have.
            self.events.disable();
            let up = self.up.try_lock().and_then(|u| u.clone());
            if let Some(up) = up {
                up.rx_ready(self.index);
            }
        }
    }

    fn intr_disable(&self) {
        self.events.disable();
    }

    fn cpu(&self) -> usize {
        self.cpu.load(Ordering::Acquire)
    }

    /// Moves this ring's and Tx ring `index`'s interrupts to `cpu`
    /// ([`VirtioNet::move_pair`]).
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
