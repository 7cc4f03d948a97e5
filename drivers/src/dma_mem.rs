//! Driver-owned DMA memory shared with a device (virtqueue rings, header
//! slots, control buffers), accessed with volatile loads and stores because
//! the device reads and writes it behind the compiler's back. The memory
//! returns to its allocator when the last owner drops it.
//!
//! Accesses are bounds-checked like [`crate::hal::MmioRegion`]: out of range
//! reads give zero and writes are ignored (a driver bug, never reachable
//! from device input since every offset is computed by the driver).

use alloc::sync::Arc;

use arbalest_mac::{DmaAllocator, DmaRegion};

/// One zeroed, physically contiguous DMA allocation.
pub struct DmaMem {
    region: DmaRegion,
    dma: Arc<dyn DmaAllocator>,
}

macro_rules! dma_access {
    ($read:ident, $write:ident, $t:ty) => {
        pub fn $read(&self, off: usize) -> $t {
            match self.addr(off, core::mem::size_of::<$t>()) {
                // SAFETY: in bounds and aligned inside a live allocation
                // this object owns (freed only on drop).
                Some(a) => <$t>::from_le(unsafe { core::ptr::read_volatile(a as *const $t) }),
                None => 0,
            }
        }
        pub fn $write(&self, off: usize, v: $t) {
            if let Some(a) = self.addr(off, core::mem::size_of::<$t>()) {
                // SAFETY: as for the read; the device may access the same
                // bytes concurrently, which volatile access tolerates.
                unsafe { core::ptr::write_volatile(a as *mut $t, v.to_le()) }
            }
        }
    };
}

impl DmaMem {
    /// Allocates `size` zeroed bytes aligned to `align`.
    pub fn new(dma: Arc<dyn DmaAllocator>, size: usize, align: usize) -> Option<DmaMem> {
        let region = dma.alloc(size, align)?;
        if region.size < size {
            dma.free(region);
            return None;
        }
        Some(DmaMem { region, dma })
    }

    /// Physical address of byte `off` (for the device).
    pub fn paddr(&self, off: usize) -> u64 {
        self.region.paddr + off as u64
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.region.size
    }

    fn addr(&self, off: usize, width: usize) -> Option<usize> {
        let end = off.checked_add(width)?;
        (end <= self.region.size && off.is_multiple_of(width)).then_some(self.region.vaddr + off)
    }

    dma_access!(read8, write8, u8);
    dma_access!(read16, write16, u16);
    dma_access!(read32, write32, u32);
    dma_access!(read64, write64, u64);

    /// Copies `src` to `off` (nothing if it does not fit).
    pub fn write_bytes(&self, off: usize, src: &[u8]) {
        for (i, b) in src.iter().enumerate() {
            self.write8(off + i, *b);
        }
    }

    /// Copies bytes from `off` into `dst` (zeros where out of range).
    pub fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        for (i, b) in dst.iter_mut().enumerate() {
            *b = self.read8(off + i);
        }
    }

    /// Zeroes the whole allocation.
    pub fn zero(&self) {
        for off in (0..self.region.size & !7).step_by(8) {
            self.write64(off, 0);
        }
        for off in self.region.size & !7..self.region.size {
            self.write8(off, 0);
        }
    }
}

impl Drop for DmaMem {
    fn drop(&mut self) {
        self.dma.free(self.region);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbalest_mac::dma::host::HeapDma;

    #[test]
    fn access_and_free() {
        let dma = Arc::new(HeapDma::default());
        {
            let m = DmaMem::new(dma.clone(), 64, 16).unwrap();
            m.write16(2, 0xabcd);
            assert_eq!(m.read16(2), 0xabcd);
            assert_eq!(m.read8(2), 0xcd);
            assert_eq!(m.read32(64), 0);
            m.write32(62, 5); // straddles the end: ignored
            m.write_bytes(10, &[1, 2, 3]);
            let mut b = [0; 3];
            m.read_bytes(10, &mut b);
            assert_eq!(b, [1, 2, 3]);
            m.zero();
            assert_eq!(m.read16(2), 0);
            assert_eq!(dma.outstanding(), 1);
        }
        assert_eq!(dma.outstanding(), 0);
    }
}
