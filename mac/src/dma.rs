//! DMA memory as the MAC layer sees it: a region with both a virtual
//! address (for the CPU) and a physical address (for the device), handed
//! out by an allocator the kernel implements (host tests use plain heap
//! memory, physical address = virtual address).

/// A contiguous block of DMA-able memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaRegion {
    /// Where the CPU reads and writes it.
    pub vaddr: usize,
    /// Where the device reads and writes it.
    pub paddr: u64,
    /// Size in bytes.
    pub size: usize,
}

/// Hands out zeroed, physically contiguous DMA memory. Implemented by the
/// kernel (frames of the direct map) and by tests.
pub trait DmaAllocator: Send + Sync {
    /// Allocates `size` bytes aligned to `align` (a power of two), zeroed.
    fn alloc(&self, size: usize, align: usize) -> Option<DmaRegion>;
    /// Returns a region obtained from `alloc`.
    fn free(&self, region: DmaRegion);
}

#[cfg(any(test, feature = "host"))]
pub mod host {
    //! A `DmaAllocator` over the host heap, for tests.
    extern crate std;
    use super::{DmaAllocator, DmaRegion};
    use std::alloc::{Layout, alloc_zeroed, dealloc};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Heap-backed DMA memory; physical address = virtual address.
    #[derive(Default)]
    pub struct HeapDma {
        live: Mutex<HashMap<usize, Layout>>,
    }

    impl HeapDma {
        /// Regions allocated and not yet freed.
        pub fn outstanding(&self) -> usize {
            self.live.lock().unwrap().len()
        }
    }

    impl DmaAllocator for HeapDma {
        fn alloc(&self, size: usize, align: usize) -> Option<DmaRegion> {
            let layout = Layout::from_size_align(size.max(1), align.max(1)).ok()?;
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { alloc_zeroed(layout) };
            if p.is_null() {
                return None;
            }
            self.live.lock().unwrap().insert(p as usize, layout);
            Some(DmaRegion { vaddr: p as usize, paddr: p as u64, size })
        }
        fn free(&self, r: DmaRegion) {
            if let Some(layout) = self.live.lock().unwrap().remove(&r.vaddr) {
                // SAFETY: allocated by `alloc` above with this layout.
                unsafe { dealloc(r.vaddr as *mut u8, layout) };
            }
        }
    }
}
