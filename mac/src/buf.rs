//! Bounded pools of fixed-size DMA buffers. A driver posts pool buffers to
//! its Rx ring; the packet travels up the stack in the same buffer (no
//! copy) and the buffer returns to its pool when the last owner drops it.
//! An empty pool is a counted allocation failure, never a wait; a pool that
//! ran dry calls its owner's starvation hook when the next buffer comes
//! back, so an Rx ring that could not be refilled (and so raises no more
//! interrupts) is refilled as soon as the stack frees memory.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Once;

use crate::sync::Mutex;

use crate::dma::{DmaAllocator, DmaRegion};

/// Counters of one pool.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Successful allocations.
    pub allocs: AtomicU64,
    /// Allocations refused because the pool was empty.
    pub empty: AtomicU64,
}

/// A pool of `count` buffers of `buf_size` bytes in one DMA region.
pub struct BufPool {
    region: DmaRegion,
    buf_size: usize,
    count: usize,
    free: Mutex<Vec<u32>>,
    dma: Arc<dyn DmaAllocator>,
    starved: AtomicBool,
    hook: Once<Arc<dyn Fn() + Send + Sync>>,
    pub stats: PoolStats,
}

impl BufPool {
    /// Allocates the pool's memory. `buf_size` is rounded up to 64 bytes.
    pub fn new(dma: Arc<dyn DmaAllocator>, buf_size: usize, count: usize) -> Option<Arc<BufPool>> {
        let buf_size = buf_size.div_ceil(64) * 64;
        let region = dma.alloc(buf_size.checked_mul(count)?, 4096)?;
        Some(Arc::new(BufPool {
            region,
            buf_size,
            count,
            free: Mutex::new((0..count as u32).rev().collect()),
            dma,
            starved: AtomicBool::new(false),
            hook: Once::new(),
            stats: PoolStats::default(),
        }))
    }

    /// Takes a buffer, or `None` (counted) when all are in use.
    pub fn alloc(self: &Arc<Self>) -> Option<DmaBuf> {
        let idx = self.free.lock().pop();
        match idx {
            Some(index) => {
                self.stats.allocs.fetch_add(1, Ordering::Relaxed);
                Some(DmaBuf { pool: self.clone(), index })
            }
            None => {
                self.stats.empty.fetch_add(1, Ordering::Relaxed);
                self.starved.store(true, Ordering::Release);
                None
            }
        }
    }

    /// Sets the hook called (once per starvation) when a buffer returns to
    /// a pool whose last allocation failed. It may run in any context that
    /// drops a packet: it must only note work and wake someone.
    pub fn set_starved_hook(&self, f: Arc<dyn Fn() + Send + Sync>) {
        self.hook.call_once(|| f);
    }

    /// Size of each buffer.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// Number of buffers.
    pub fn capacity(&self) -> usize {
        self.count
    }

    /// Buffers currently free.
    pub fn available(&self) -> usize {
        self.free.lock().len()
    }
}

impl Drop for BufPool {
    fn drop(&mut self) {
        self.dma.free(self.region);
    }
}

/// One buffer of a pool. Owns its memory exclusively until dropped.
pub struct DmaBuf {
    pool: Arc<BufPool>,
    index: u32,
}

impl DmaBuf {
    fn offset(&self) -> usize {
        self.index as usize * self.pool.buf_size
    }

    /// Physical address of the buffer's first byte (for the device).
    pub fn paddr(&self) -> u64 {
        self.pool.region.paddr + self.offset() as u64
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.pool.buf_size
    }

    /// The whole buffer.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: [offset, offset + buf_size) lies inside the pool's live DMA
        // region and belongs to this buffer alone while it exists (the index
        // is off the free list); the device only writes it while the driver
        // has posted it, and the driver hands it up only after the device
        // returned it.
        unsafe { core::slice::from_raw_parts((self.pool.region.vaddr + self.offset()) as *const u8, self.pool.buf_size) }
    }

    /// The whole buffer, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_slice`; `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut((self.pool.region.vaddr + self.offset()) as *mut u8, self.pool.buf_size) }
    }

    /// The pool this buffer came from.
    pub fn pool(&self) -> &Arc<BufPool> {
        &self.pool
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        self.pool.free.lock().push(self.index);
        if self.pool.starved.load(Ordering::Acquire) && self.pool.starved.swap(false, Ordering::AcqRel) {
            if let Some(h) = self.pool.hook.get() {
                h();
            }
        }
    }
}

impl core::fmt::Debug for DmaBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DmaBuf(#{} @ {:#x})", self.index, self.paddr())
    }
}
