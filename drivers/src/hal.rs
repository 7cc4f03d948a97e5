//! What the kernel provides to drivers, as traits: DMA memory, mapping of
//! device memory, MSI vectors bound to a CPU, a clock; and the two ways of
//! touching a device, register access to a mapped region ([`Mmio`]) and PCI
//! configuration space ([`PciConfigAccess`]).
//!
//! The kernel implements [`Hal`] and [`PciConfigAccess`] for real and uses
//! [`MmioRegion`] for mapped BARs; host tests implement all of them in
//! memory (see `testing`).

use alloc::boxed::Box;
use alloc::sync::Arc;

use arbalest_mac::DmaAllocator;

use crate::pci::Bdf;

/// An interrupt handler. Runs in interrupt context on the vector's CPU:
/// it must not block or take a lock that thread context may hold.
pub type IrqHandler = Box<dyn Fn() + Send + Sync>;

/// An MSI / MSI-X message: what the device writes (`data` to `address`) to
/// raise `vector` on `cpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiMessage {
    pub address: u64,
    pub data: u32,
    pub cpu: usize,
    pub vector: u8,
}

/// Services the kernel gives drivers.
pub trait Hal: Send + Sync {
    /// The DMA allocator for rings and buffer pools.
    fn dma(&self) -> Arc<dyn DmaAllocator>;
    /// Maps device memory uncached; returns the virtual address (0 if it
    /// cannot be mapped).
    fn map_mmio(&self, paddr: u64, size: usize) -> usize;
    /// Allocates an interrupt vector on `cpu` whose handler is `handler`;
    /// returns the MSI message to program (address, data).
    fn alloc_msi(&self, cpu: usize, handler: IrqHandler) -> Option<MsiMessage>;
    /// Frees a vector from `alloc_msi`; its handler is dropped and never
    /// runs again once this returns.
    fn free_msi(&self, msg: MsiMessage);
    /// Number of CPUs online.
    fn cpu_count(&self) -> usize;
    /// Monotonic time in nanoseconds.
    fn now_ns(&self) -> u64;
    /// Busy-waits `us` microseconds.
    fn delay_us(&self, us: u64);

    /// Register access to `size` bytes of device memory at `paddr`. The
    /// default maps it with [`Hal::map_mmio`] and accesses it with volatile
    /// loads and stores ([`MmioRegion`]); the kernel need not override it.
    /// Tests override it to put a simulated device behind the registers.
    fn mmio(&self, paddr: u64, size: usize) -> Arc<dyn Mmio> {
        let base = self.map_mmio(paddr, size);
        let len = if base == 0 { 0 } else { size };
        // SAFETY: `map_mmio` promises that a non-zero result maps `size`
        // bytes of device memory uncached for the kernel's lifetime; a
        // failed mapping becomes an empty region that touches nothing.
        Arc::new(unsafe { MmioRegion::new(base, len) })
    }
}

/// Register access to one mapped BAR or region: volatile in the kernel,
/// memory-backed (or a simulated device) in tests. Offsets are in bytes
/// from the start of the region; values are little-endian device order.
pub trait Mmio: Send + Sync {
    fn read8(&self, off: usize) -> u8;
    fn read16(&self, off: usize) -> u16;
    fn read32(&self, off: usize) -> u32;
    fn read64(&self, off: usize) -> u64;
    fn write8(&self, off: usize, v: u8);
    fn write16(&self, off: usize, v: u16);
    fn write32(&self, off: usize, v: u32);
    fn write64(&self, off: usize, v: u64);
}

/// PCI configuration space access (ECAM or port I/O: the kernel implements
/// both). `off` is a byte offset, dword-aligned for the required methods.
pub trait PciConfigAccess: Send + Sync {
    fn read32(&self, bdf: Bdf, off: u16) -> u32;
    fn write32(&self, bdf: Bdf, off: u16, v: u32);

    /// A 16-bit field (from the aligned dword).
    fn read16(&self, bdf: Bdf, off: u16) -> u16 {
        (self.read32(bdf, off & !3) >> ((off & 2) * 8)) as u16
    }
    /// An 8-bit field (from the aligned dword).
    fn read8(&self, bdf: Bdf, off: u16) -> u8 {
        (self.read32(bdf, off & !3) >> ((off & 3) * 8)) as u8
    }
    /// A 16-bit field, written as read-modify-write of its dword. Not for
    /// registers sharing a dword with write-1-to-clear bits (the command
    /// register has its own helper in `pci`).
    fn write16(&self, bdf: Bdf, off: u16, v: u16) {
        let shift = (off & 2) * 8;
        let old = self.read32(bdf, off & !3);
        let new = (old & !(0xffff << shift)) | ((v as u32) << shift);
        self.write32(bdf, off & !3, new);
    }
}

/// A mapped region accessed with volatile loads and stores: what the kernel
/// uses for BARs.
///
/// Every access is bounds- and alignment-checked: an offset outside the
/// region (or not aligned to its width) reads all-ones and ignores writes,
/// like a PCI master abort. Such an access is a driver bug; it is counted
/// nowhere because no correct driver path can reach it.
#[derive(Debug)]
pub struct MmioRegion {
    base: usize,
    len: usize,
}

impl MmioRegion {
    /// A region of `len` bytes at virtual address `base`.
    ///
    /// # Safety
    /// `[base, base + len)` must stay mapped (uncached, for device memory)
    /// for the region's lifetime, and be safe to access with volatile
    /// loads and stores of widths 1, 2, 4 and 8.
    pub const unsafe fn new(base: usize, len: usize) -> MmioRegion {
        MmioRegion { base, len }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty (a failed mapping).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of `off` if a `width`-byte access there is in bounds
    /// and aligned.
    fn addr(&self, off: usize, width: usize) -> Option<usize> {
        let end = off.checked_add(width)?;
        (end <= self.len && off.is_multiple_of(width)).then_some(self.base + off)
    }
}

macro_rules! mmio_region_access {
    ($read:ident, $write:ident, $t:ty) => {
        fn $read(&self, off: usize) -> $t {
            match self.addr(off, core::mem::size_of::<$t>()) {
                // SAFETY: in bounds and aligned inside a mapping the
                // constructor's caller vouched for.
                Some(a) => <$t>::from_le(unsafe { core::ptr::read_volatile(a as *const $t) }),
                None => <$t>::MAX,
            }
        }
        fn $write(&self, off: usize, v: $t) {
            if let Some(a) = self.addr(off, core::mem::size_of::<$t>()) {
                // SAFETY: as for the read.
                unsafe { core::ptr::write_volatile(a as *mut $t, v.to_le()) }
            }
        }
    };
}

impl Mmio for MmioRegion {
    mmio_region_access!(read8, write8, u8);
    mmio_region_access!(read16, write16, u16);
    mmio_region_access!(read32, write32, u32);
    mmio_region_access!(read64, write64, u64);
}

/// A window `[base, base + len)` of another [`Mmio`] (a virtio capability's
/// region inside its BAR). Out-of-window accesses behave as for
/// [`MmioRegion`].
pub struct MmioWindow {
    inner: Arc<dyn Mmio>,
    base: usize,
    len: usize,
}

impl MmioWindow {
    pub fn new(inner: Arc<dyn Mmio>, base: usize, len: usize) -> MmioWindow {
        MmioWindow { inner, base, len }
    }

    fn ok(&self, off: usize, width: usize) -> bool {
        off.checked_add(width).is_some_and(|e| e <= self.len)
    }
}

macro_rules! mmio_window_access {
    ($read:ident, $write:ident, $t:ty) => {
        fn $read(&self, off: usize) -> $t {
            if self.ok(off, core::mem::size_of::<$t>()) { self.inner.$read(self.base + off) } else { <$t>::MAX }
        }
        fn $write(&self, off: usize, v: $t) {
            if self.ok(off, core::mem::size_of::<$t>()) {
                self.inner.$write(self.base + off, v)
            }
        }
    };
}

impl Mmio for MmioWindow {
    mmio_window_access!(read8, write8, u8);
    mmio_window_access!(read16, write16, u16);
    mmio_window_access!(read32, write32, u32);
    mmio_window_access!(read64, write64, u64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn region_bounds_and_alignment() {
        let mut mem = vec![0u64; 4];
        let base = mem.as_mut_ptr() as usize;
        // SAFETY: `mem` outlives the region and is 32 bytes long.
        let r = unsafe { MmioRegion::new(base, 32) };
        r.write32(4, 0xdead_beef);
        assert_eq!(r.read32(4), 0xdead_beef);
        assert_eq!(r.read16(4), 0xbeef);
        assert_eq!(r.read8(7), 0xde);
        r.write64(24, 7);
        assert_eq!(r.read64(24), 7);
        // Out of range or misaligned: all-ones, write ignored.
        assert_eq!(r.read32(32), u32::MAX);
        assert_eq!(r.read64(28), u64::MAX);
        assert_eq!(r.read32(2), u32::MAX);
        r.write32(30, 1);
        r.write32(usize::MAX - 1, 1);
        assert_eq!(mem[3], 7);
    }
}
