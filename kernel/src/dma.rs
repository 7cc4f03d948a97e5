//! DMA memory for drivers and the MAC layer: physically contiguous frames
//! of the identity direct map, so a buffer's virtual and physical addresses
//! are the same (write-back cached; QEMU's devices are cache coherent, as
//! PCI devices on x86 are).

use arbalest_mac::{DmaAllocator, DmaRegion};

use crate::mem::{PAGE_SIZE, frame};

/// The kernel's DMA allocator.
pub struct KernelDma;

impl DmaAllocator for KernelDma {
    fn alloc(&self, size: usize, align: usize) -> Option<DmaRegion> {
        let pages = (size as u64).div_ceil(PAGE_SIZE).max(1);
        let pa = frame::alloc_contiguous(pages, (align as u64).max(PAGE_SIZE))?;
        Some(DmaRegion { vaddr: pa as usize, paddr: pa, size })
    }

    fn free(&self, r: DmaRegion) {
        frame::free(r.paddr, (r.size as u64).div_ceil(PAGE_SIZE).max(1));
    }
}
