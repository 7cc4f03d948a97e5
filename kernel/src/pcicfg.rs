//! PCI configuration space access for the drivers: PCIe ECAM windows from
//! the ACPI MCFG table, with legacy port I/O (0xcf8/0xcfc) as fallback for
//! buses no window covers.

use alloc::vec::Vec;

use arbalest_drivers::hal::PciConfigAccess;
use arbalest_drivers::pci::Bdf;

use crate::arch::port::{inl, outl};

struct Window {
    base: u64,
    bus_start: u8,
    bus_end: u8,
}

/// The kernel's configuration-space accessor.
pub struct KernelPciConfig {
    windows: Vec<Window>,
    lock: spin::Mutex<()>,
}

impl KernelPciConfig {
    /// Maps the ECAM windows of segment 0 found in the MCFG table.
    pub fn new(acpi: &crate::acpi::AcpiInfo) -> KernelPciConfig {
        let mut windows = Vec::new();
        for e in acpi.mcfg.iter().filter(|e| e.segment == 0) {
            let size = (e.bus_end as u64 - e.bus_start as u64 + 1) << 20;
            crate::mem::paging::map_mmio(e.base + ((e.bus_start as u64) << 20), size);
            windows.push(Window { base: e.base, bus_start: e.bus_start, bus_end: e.bus_end });
        }
        KernelPciConfig { windows, lock: spin::Mutex::new(()) }
    }

    /// Whether ECAM is in use (else port I/O).
    pub fn uses_ecam(&self) -> bool {
        !self.windows.is_empty()
    }

    fn ecam_addr(&self, bdf: Bdf, off: u16) -> Option<u64> {
        let w = self.windows.iter().find(|w| (w.bus_start..=w.bus_end).contains(&bdf.bus))?;
        Some(w.base + ((bdf.bus as u64) << 20) + ((bdf.dev as u64) << 15) + ((bdf.func as u64) << 12) + (off as u64 & 0xffc))
    }

    fn port_addr(bdf: Bdf, off: u16) -> u32 {
        0x8000_0000 | ((bdf.bus as u32) << 16) | ((bdf.dev as u32) << 11) | ((bdf.func as u32) << 8) | (off as u32 & 0xfc)
    }
}

impl PciConfigAccess for KernelPciConfig {
    fn read32(&self, bdf: Bdf, off: u16) -> u32 {
        if let Some(a) = self.ecam_addr(bdf, off) {
            // SAFETY: `a` lies in an ECAM window from MCFG, mapped uncached in `new`.
            return unsafe { core::ptr::read_volatile(a as *const u32) };
        }
        if off >= 256 {
            return 0xffff_ffff;
        }
        crate::arch::without_interrupts(|| {
            let _g = self.lock.lock();
            outl(0xcf8, Self::port_addr(bdf, off));
            inl(0xcfc)
        })
    }

    fn write32(&self, bdf: Bdf, off: u16, v: u32) {
        if let Some(a) = self.ecam_addr(bdf, off) {
            // SAFETY: as in `read32`.
            unsafe { core::ptr::write_volatile(a as *mut u32, v) };
            return;
        }
        if off >= 256 {
            return;
        }
        crate::arch::without_interrupts(|| {
            let _g = self.lock.lock();
            outl(0xcf8, Self::port_addr(bdf, off));
            outl(0xcfc, v);
        })
    }
}
