//! The split virtqueue (virtio 1.x, 2.7): a descriptor table, the
//! available ring the driver fills and the used ring the device fills, in
//! one DMA allocation:
//!
//! ```text
//! desc:  [addr u64, len u32, flags u16, next u16] * size      (align 16)
//! avail: flags u16, idx u16, ring[size] u16, used_event u16   (align 2)
//! used:  flags u16, idx u16, ring[size] {id u32, len u32}, avail_event u16 (align 4)
//! ```
//!
//! The driver keeps its own shadow of the descriptor links and of which
//! heads are in flight, so nothing the device writes can corrupt the free
//! list. Each chain carries a token `T` (the buffer it describes) returned
//! when the device has used it.
//!
//! Event suppression lives in [`QueueEvents`], shared with the queue's
//! interrupt handler, which needs no lock: with `VIRTIO_F_EVENT_IDX` the
//! driver publishes `used_event` (interrupt me when the used index passes
//! it) and reads `avail_event` before a kick; without it, the
//! `NO_INTERRUPT` / `NO_NOTIFY` flags.
//!
//! A used entry naming a descriptor that is out of range or not in flight
//! (or a used index further ahead than the ring holds) breaks the queue:
//! it is counted, every later call fails with [`QueueError::Broken`], and
//! the owner resets the device and then the queue with [`VirtQueue::reset`].

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU16, Ordering, fence};

use arbalest_mac::DmaAllocator;

use crate::dma_mem::DmaMem;
use crate::hal::Mmio;

pub const DESC_F_NEXT: u16 = 1;
pub const DESC_F_WRITE: u16 = 2;
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
pub const USED_F_NO_NOTIFY: u16 = 1;
/// Largest split queue the spec allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;

const DESC_SIZE: usize = 16;
const USED_ELEM_SIZE: usize = 8;

/// Byte offsets of the three parts for a queue of `n` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    avail: usize,
    used: usize,
    total: usize,
}

impl Layout {
    fn new(n: usize) -> Layout {
        let avail = DESC_SIZE * n;
        let used = (avail + 6 + 2 * n).next_multiple_of(4);
        Layout { avail, used, total: used + 6 + USED_ELEM_SIZE * n }
    }
}

/// Where and what to write to notify the device of a queue.
pub struct Notifier {
    mmio: Arc<dyn Mmio>,
    offset: usize,
    index: u16,
}

impl Notifier {
    pub fn new(mmio: Arc<dyn Mmio>, offset: usize, index: u16) -> Notifier {
        Notifier { mmio, offset, index }
    }

    /// Tells the device that queue `index` has new buffers.
    pub fn notify(&self) {
        self.mmio.write16(self.offset, self.index);
    }
}

/// One buffer segment of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seg {
    pub addr: u64,
    pub len: u32,
    /// Device-writable (Rx data, control acks) rather than device-readable.
    pub writable: bool,
}

/// A chain the device has finished with.
#[derive(Debug)]
pub struct Used<T> {
    pub token: T,
    /// Bytes the device wrote into the chain's writable segments, as the
    /// device claims it: the owner checks it against its buffers.
    pub len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// Not enough free descriptors.
    Full,
    /// A chain needs at least one segment.
    NoSegments,
    /// The queue saw a bad used entry and needs a reset.
    Broken,
    /// This pop found the bad used entry (naming descriptor `id`).
    BadEntry { id: u32 },
}

/// Interrupt (event) suppression of one queue, usable without the queue's
/// lock (from its interrupt handler).
pub struct QueueEvents {
    mem: Arc<DmaMem>,
    size: u16,
    layout: Layout,
    event_idx: bool,
    enabled: AtomicBool,
    /// The driver's position in the used ring (mirrors the queue's).
    last_used: AtomicU16,
}

impl QueueEvents {
    fn used_event_off(&self) -> usize {
        self.layout.avail + 4 + 2 * self.size as usize
    }

    fn used_idx(&self) -> u16 {
        self.mem.read16(self.layout.used + 2)
    }

    /// Whether the queue's interrupt is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Switches the queue's interrupt off. With EVENT_IDX `used_event` is
    /// parked just behind the driver's position, which the device cannot
    /// reach without wrapping the 16-bit index (and the driver moves it
    /// along as it consumes); without, the `NO_INTERRUPT` flag is set.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Release);
        let last = self.last_used.load(Ordering::Acquire);
        if self.event_idx {
            self.mem.write16(self.used_event_off(), last.wrapping_sub(1));
        } else {
            self.mem.write16(self.layout.avail, AVAIL_F_NO_INTERRUPT);
        }
    }

    /// Switches the interrupt on for the next used entry. Returns true if
    /// used entries are already pending: the device may not interrupt for
    /// them, so the caller must process them (or re-raise the work) itself.
    pub fn enable(&self) -> bool {
        self.enable_after(0)
    }

    /// Switches the interrupt on once more than `n` further entries are
    /// used (EVENT_IDX; without it, the next entry interrupts). Returns true
    /// if that point has already passed (without EVENT_IDX: if anything is
    /// pending).
    pub fn enable_after(&self, n: u16) -> bool {
        let last = self.last_used.load(Ordering::Acquire);
        self.enabled.store(true, Ordering::Release);
        if self.event_idx {
            self.mem.write16(self.used_event_off(), last.wrapping_add(n));
        } else {
            self.mem.write16(self.layout.avail, 0);
        }
        // The index write must be visible before we look at the used index
        // (store-load ordering), or an entry could slip in unseen.
        fence(Ordering::SeqCst);
        let pending = self.used_idx().wrapping_sub(last);
        if self.event_idx { pending > n } else { pending != 0 }
    }

    /// Whether the device has used entries the driver has not popped.
    pub fn has_pending(&self) -> bool {
        fence(Ordering::SeqCst);
        self.used_idx() != self.last_used.load(Ordering::Acquire)
    }

    /// The driver consumed up to `last`: keep `used_event` consistent.
    fn consumed(&self, last: u16) {
        self.last_used.store(last, Ordering::Release);
        if !self.event_idx {
            return;
        }
        if self.is_enabled() {
            // Interrupt mode: ask for the next entry (as Linux does), so
            // consuming without a disable never strands the interrupt.
            self.mem.write16(self.used_event_off(), last);
            fence(Ordering::SeqCst);
        } else {
            self.mem.write16(self.used_event_off(), last.wrapping_sub(1));
        }
    }
}

/// A split virtqueue whose chains carry tokens of type `T`.
pub struct VirtQueue<T> {
    index: u16,
    size: u16,
    mem: Arc<DmaMem>,
    layout: Layout,
    events: Arc<QueueEvents>,
    notifier: Option<Notifier>,
    /// Shadow descriptor links: the free list and in-flight chains.
    next: Vec<u16>,
    free_head: u16,
    num_free: u16,
    /// Descriptors in the chain headed here (0: not an in-flight head).
    chain_len: Vec<u16>,
    tokens: Vec<Option<T>>,
    in_flight: u16,
    avail_idx: u16,
    /// `avail_idx` at the last kick decision.
    kicked_idx: u16,
    last_used: u16,
    broken: bool,
    bad_entries: u64,
}

impl<T> VirtQueue<T> {
    /// Allocates a queue of `size` entries (1..=32768) for queue number
    /// `index`; `event_idx` when `VIRTIO_F_EVENT_IDX` was negotiated.
    pub fn new(dma: Arc<dyn DmaAllocator>, index: u16, size: u16, event_idx: bool) -> Option<VirtQueue<T>> {
        if size == 0 || size > MAX_QUEUE_SIZE {
            return None;
        }
        let layout = Layout::new(size as usize);
        let mem = Arc::new(DmaMem::new(dma, layout.total, 4096)?);
        let events = Arc::new(QueueEvents {
            mem: mem.clone(),
            size,
            layout,
            event_idx,
            enabled: AtomicBool::new(true),
            last_used: AtomicU16::new(0),
        });
        let mut q = VirtQueue {
            index,
            size,
            mem,
            layout,
            events,
            notifier: None,
            next: Vec::new(),
            free_head: 0,
            num_free: 0,
            chain_len: Vec::new(),
            tokens: Vec::new(),
            in_flight: 0,
            avail_idx: 0,
            kicked_idx: 0,
            last_used: 0,
            broken: false,
            bad_entries: 0,
        };
        q.tokens.resize_with(size as usize, || None);
        q.init_state();
        Some(q)
    }

    fn init_state(&mut self) {
        let n = self.size as usize;
        self.next = (1..=n as u16).collect();
        self.chain_len = alloc::vec![0; n];
        self.free_head = 0;
        self.num_free = self.size;
        self.in_flight = 0;
        self.avail_idx = 0;
        self.kicked_idx = 0;
        self.last_used = 0;
        self.broken = false;
        self.events.last_used.store(0, Ordering::Release);
    }

    /// Sets how the device is notified of this queue.
    pub fn set_notifier(&mut self, n: Notifier) {
        self.notifier = Some(n);
    }

    /// Queue number on the device.
    pub fn index(&self) -> u16 {
        self.index
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    /// Free descriptors.
    pub fn num_free(&self) -> u16 {
        self.num_free
    }

    /// Chains the device holds.
    pub fn in_flight(&self) -> u16 {
        self.in_flight
    }

    /// The descriptor the next chain will start at (to index per-chain
    /// side tables such as header slots).
    pub fn next_head(&self) -> Option<u16> {
        (self.num_free > 0).then_some(self.free_head)
    }

    /// Physical addresses of the descriptor table, available ring and used
    /// ring, for the transport.
    pub fn addresses(&self) -> (u64, u64, u64) {
        (self.mem.paddr(0), self.mem.paddr(self.layout.avail), self.mem.paddr(self.layout.used))
    }

    /// The event suppression handle, for interrupt handlers.
    pub fn events(&self) -> &Arc<QueueEvents> {
        &self.events
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Bad used entries seen over the queue's life.
    pub fn bad_entries(&self) -> u64 {
        self.bad_entries
    }

    /// Used entries the device has published and the driver not popped.
    pub fn used_pending(&self) -> u16 {
        self.used_idx().wrapping_sub(self.last_used)
    }

    fn used_idx(&self) -> u16 {
        self.mem.read16(self.layout.used + 2)
    }

    fn write_desc(&self, id: u16, seg: &Seg, next: Option<u16>) {
        let d = id as usize * DESC_SIZE;
        let mut flags = if seg.writable { DESC_F_WRITE } else { 0 };
        if next.is_some() {
            flags |= DESC_F_NEXT;
        }
        self.mem.write64(d, seg.addr);
        self.mem.write32(d + 8, seg.len);
        self.mem.write16(d + 12, flags);
        self.mem.write16(d + 14, next.unwrap_or(0));
    }

    /// Makes `segs` one chain available to the device, carrying `token`.
    /// Returns the head descriptor; on failure the token comes back.
    /// The device is not notified: call [`VirtQueue::kick`] after a batch.
    pub fn add(&mut self, segs: &[Seg], token: T) -> Result<u16, (QueueError, T)> {
        if self.broken {
            return Err((QueueError::Broken, token));
        }
        if segs.is_empty() {
            return Err((QueueError::NoSegments, token));
        }
        if segs.len() > self.num_free as usize {
            return Err((QueueError::Full, token));
        }
        let head = self.free_head;
        let mut id = head;
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let next = self.next[id as usize];
            self.write_desc(id, seg, (!last).then_some(next));
            if !last {
                id = next;
            }
        }
        self.free_head = self.next[id as usize];
        self.num_free -= segs.len() as u16;
        self.chain_len[head as usize] = segs.len() as u16;
        self.tokens[head as usize] = Some(token);
        self.in_flight += 1;

        let slot = self.avail_idx % self.size;
        self.mem.write16(self.layout.avail + 4 + 2 * slot as usize, head);
        // Descriptors and ring slot before the index that publishes them.
        fence(Ordering::Release);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem.write16(self.layout.avail + 2, self.avail_idx);
        Ok(head)
    }

    /// Whether the device wants a notification for the chains added since
    /// the last kick.
    pub fn needs_notify(&mut self) -> bool {
        let (old, new) = (self.kicked_idx, self.avail_idx);
        self.kicked_idx = new;
        if old == new {
            return false;
        }
        // The new avail index must be visible before reading the device's
        // wishes (store-load ordering).
        fence(Ordering::SeqCst);
        if self.events.event_idx {
            let avail_event = self.mem.read16(self.layout.used + 4 + USED_ELEM_SIZE * self.size as usize);
            need_event(avail_event, new, old)
        } else {
            self.mem.read16(self.layout.used) & USED_F_NO_NOTIFY == 0
        }
    }

    /// Notifies the device if it wants it; returns whether it did.
    pub fn kick(&mut self) -> bool {
        let need = self.needs_notify();
        if need && let Some(n) = &self.notifier {
            n.notify();
        }
        need
    }

    /// Takes the next used chain, `Ok(None)` if there is none.
    pub fn pop_used(&mut self) -> Result<Option<Used<T>>, QueueError> {
        if self.broken {
            return Err(QueueError::Broken);
        }
        let used_idx = self.used_idx();
        if used_idx == self.last_used {
            return Ok(None);
        }
        if used_idx.wrapping_sub(self.last_used) > self.size {
            return Err(self.mark_bad(u32::MAX));
        }
        // Read the entry only after seeing the index that published it.
        fence(Ordering::Acquire);
        let e = self.layout.used + 4 + USED_ELEM_SIZE * (self.last_used % self.size) as usize;
        let id = self.mem.read32(e);
        let len = self.mem.read32(e + 4);
        if id >= self.size as u32 || self.chain_len[id as usize] == 0 {
            return Err(self.mark_bad(id));
        }
        let token = self.free_chain(id as u16);
        self.last_used = self.last_used.wrapping_add(1);
        self.events.consumed(self.last_used);
        match token {
            Some(token) => Ok(Some(Used { token, len })),
            None => Err(self.mark_bad(id)),
        }
    }

    fn mark_bad(&mut self, id: u32) -> QueueError {
        self.broken = true;
        self.bad_entries += 1;
        QueueError::BadEntry { id }
    }

    /// Returns the chain at `head` to the free list.
    fn free_chain(&mut self, head: u16) -> Option<T> {
        let n = core::mem::replace(&mut self.chain_len[head as usize], 0);
        let mut last = head;
        for _ in 1..n {
            last = self.next[last as usize];
        }
        self.next[last as usize] = self.free_head;
        self.free_head = head;
        self.num_free += n;
        self.in_flight -= 1;
        self.tokens[head as usize].take()
    }

    /// Marks the queue broken (the owner found a fault the queue cannot
    /// see, e.g. a control command that never completed).
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Forgets everything after a device reset: zeroes the rings, rebuilds
    /// the free list and hands back the tokens of chains in flight. The
    /// interrupt is left enabled (the device's reset state).
    pub fn reset(&mut self, mut dropped: impl FnMut(T)) {
        for t in self.tokens.iter_mut() {
            if let Some(t) = t.take() {
                dropped(t);
            }
        }
        self.mem.zero();
        self.init_state();
        self.events.enabled.store(true, Ordering::Release);
    }
}

/// Whether moving an index from `old` to `new` crosses `event` (the
/// `vring_need_event` rule shared by both directions).
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests;
