//! MSI-X: the capability (table size, where the vector table and the
//! pending-bit array live) and the vector table itself, a BAR region of
//! 16-byte entries `address lo, address hi, data, vector control`.
//!
//! Enable order: entries are masked until programmed; MSI-X is enabled with
//! the function mask set, INTx is disabled, then the function mask is
//! cleared, so no interrupt fires half-programmed.

use alloc::sync::Arc;
use alloc::vec::Vec;

use arbalest_mac::MacError;

use crate::hal::{Hal, IrqHandler, Mmio, MsiMessage, PciConfigAccess};

use super::bar::Bar;
use super::bdf::Bdf;
use super::cap::find_capability;
use super::device::disable_intx;
use super::regs;

const CTRL: u16 = 2;
const TABLE: u16 = 4;
const PBA: u16 = 8;
const CTRL_TABLE_SIZE: u16 = 0x07ff;
const CTRL_FUNCTION_MASK: u16 = 1 << 14;
const CTRL_ENABLE: u16 = 1 << 15;

const ENTRY_SIZE: usize = 16;
const ENTRY_ADDR_LO: usize = 0;
const ENTRY_ADDR_HI: usize = 4;
const ENTRY_DATA: usize = 8;
const ENTRY_CTRL: usize = 12;
const ENTRY_CTRL_MASKED: u32 = 1;

/// A function's MSI-X capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixCap {
    /// Offset of the capability in configuration space.
    pub offset: u8,
    /// Number of table entries.
    pub table_size: u16,
    pub table_bar: u8,
    pub table_offset: u32,
    pub pba_bar: u8,
    pub pba_offset: u32,
}

impl MsixCap {
    /// Locates and decodes the capability.
    pub fn read(cfg: &dyn PciConfigAccess, bdf: Bdf) -> Option<MsixCap> {
        let offset = find_capability(cfg, bdf, regs::CAP_MSIX)?;
        let o = offset as u16;
        let ctrl = cfg.read16(bdf, o + CTRL);
        let table = cfg.read32(bdf, o + TABLE);
        let pba = cfg.read32(bdf, o + PBA);
        Some(MsixCap {
            offset,
            table_size: (ctrl & CTRL_TABLE_SIZE) + 1,
            table_bar: (table & 0x7) as u8,
            table_offset: table & !0x7,
            pba_bar: (pba & 0x7) as u8,
            pba_offset: pba & !0x7,
        })
    }

    /// Physical address of the vector table, if its BAR is a memory BAR
    /// large enough to hold it.
    pub fn table_paddr(&self, bars: &[Bar; 6]) -> Option<u64> {
        let (addr, size) = bars.get(self.table_bar as usize)?.memory()?;
        let end = self.table_offset as u64 + self.table_size as u64 * ENTRY_SIZE as u64;
        (end <= size).then_some(addr + self.table_offset as u64)
    }

    fn write_ctrl(&self, cfg: &dyn PciConfigAccess, bdf: Bdf, f: impl FnOnce(u16) -> u16) {
        let o = self.offset as u16 + CTRL;
        let v = cfg.read16(bdf, o);
        cfg.write16(bdf, o, f(v));
    }

    /// Enables MSI-X for the function and disables legacy INTx. Entries
    /// keep their own mask bits.
    pub fn enable(&self, cfg: &dyn PciConfigAccess, bdf: Bdf) {
        self.write_ctrl(cfg, bdf, |v| v | CTRL_ENABLE | CTRL_FUNCTION_MASK);
        disable_intx(cfg, bdf);
        self.write_ctrl(cfg, bdf, |v| v & !CTRL_FUNCTION_MASK);
    }

    /// Disables MSI-X.
    pub fn disable(&self, cfg: &dyn PciConfigAccess, bdf: Bdf) {
        self.write_ctrl(cfg, bdf, |v| v & !(CTRL_ENABLE | CTRL_FUNCTION_MASK));
    }

    /// Masks or unmasks every vector of the function at once.
    pub fn set_function_mask(&self, cfg: &dyn PciConfigAccess, bdf: Bdf, masked: bool) {
        self.write_ctrl(cfg, bdf, |v| if masked { v | CTRL_FUNCTION_MASK } else { v & !CTRL_FUNCTION_MASK });
    }

    /// Whether MSI-X is enabled.
    pub fn is_enabled(&self, cfg: &dyn PciConfigAccess, bdf: Bdf) -> bool {
        cfg.read16(bdf, self.offset as u16 + CTRL) & CTRL_ENABLE != 0
    }
}

/// The mapped vector table.
pub struct MsixTable {
    mmio: Arc<dyn Mmio>,
    size: u16,
}

impl MsixTable {
    /// A table of `size` entries behind `mmio`.
    pub fn new(mmio: Arc<dyn Mmio>, size: u16) -> MsixTable {
        MsixTable { mmio, size }
    }

    /// Maps the table `cap` describes.
    pub fn map(hal: &dyn Hal, cap: &MsixCap, bars: &[Bar; 6]) -> Option<MsixTable> {
        let paddr = cap.table_paddr(bars)?;
        let len = cap.table_size as usize * ENTRY_SIZE;
        Some(MsixTable::new(hal.mmio(paddr, len), cap.table_size))
    }

    /// Number of entries.
    pub fn len(&self) -> u16 {
        self.size
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Points entry `i` at `msg` and unmasks it (the entry is masked while
    /// it is rewritten). False if `i` is out of range.
    pub fn program(&self, i: u16, msg: &MsiMessage) -> bool {
        if i >= self.size {
            return false;
        }
        let e = i as usize * ENTRY_SIZE;
        self.mask(i);
        self.mmio.write32(e + ENTRY_ADDR_LO, msg.address as u32);
        self.mmio.write32(e + ENTRY_ADDR_HI, (msg.address >> 32) as u32);
        self.mmio.write32(e + ENTRY_DATA, msg.data);
        self.unmask(i);
        true
    }

    /// Moves table entries to new vectors on `cpu` at run time (a ring's
    /// interrupt following its lane): `vectors[e]` is the message entry
    /// `e` holds now. A vector is allocated for every (entry, handler)
    /// first — `NoSpace`, and nothing changed, if any cannot be had;
    /// `Invalid` if an entry has no recorded message — then each entry is
    /// rewritten while masked (a message raised meanwhile pends and goes
    /// to the new address at the unmask), recorded, and only then are the
    /// old vectors freed (a message sent before the mask still finds its
    /// handler). One already in flight to the old CPU can still be lost:
    /// the caller catches up on work afterwards.
    pub fn rebind(&self, hal: &dyn Hal, vectors: &mut [MsiMessage], cpu: usize, entries: Vec<(u16, IrqHandler)>) -> Result<(), MacError> {
        if entries.iter().any(|(e, _)| *e as usize >= vectors.len()) {
            return Err(MacError::Invalid);
        }
        let mut fresh: Vec<(u16, MsiMessage)> = Vec::with_capacity(entries.len());
        for (e, handler) in entries {
            match hal.alloc_msi(cpu, handler) {
                Some(m) => fresh.push((e, m)),
                None => {
                    for (_, m) in fresh {
                        hal.free_msi(m);
                    }
                    return Err(MacError::NoSpace);
                }
            }
        }
        let mut old = Vec::with_capacity(fresh.len());
        for (e, m) in fresh {
            self.program(e, &m);
            old.push(core::mem::replace(&mut vectors[e as usize], m));
        }
        for m in old {
            hal.free_msi(m);
        }
        Ok(())
    }

    /// Masks entry `i`.
    pub fn mask(&self, i: u16) {
        if i < self.size {
            let c = i as usize * ENTRY_SIZE + ENTRY_CTRL;
            self.mmio.write32(c, self.mmio.read32(c) | ENTRY_CTRL_MASKED);
        }
    }

    /// Unmasks entry `i`.
    pub fn unmask(&self, i: u16) {
        if i < self.size {
            let c = i as usize * ENTRY_SIZE + ENTRY_CTRL;
            self.mmio.write32(c, self.mmio.read32(c) & !ENTRY_CTRL_MASKED);
        }
    }

    /// Whether entry `i` is masked (out of range: true).
    pub fn is_masked(&self, i: u16) -> bool {
        i >= self.size || self.mmio.read32(i as usize * ENTRY_SIZE + ENTRY_CTRL) & ENTRY_CTRL_MASKED != 0
    }

    /// Masks every entry.
    pub fn mask_all(&self) {
        for i in 0..self.size {
            self.mask(i);
        }
    }

    /// Address and data programmed into entry `i`.
    pub fn entry(&self, i: u16) -> (u64, u32) {
        let e = i as usize * ENTRY_SIZE;
        let lo = self.mmio.read32(e + ENTRY_ADDR_LO) as u64;
        let hi = self.mmio.read32(e + ENTRY_ADDR_HI) as u64;
        ((hi << 32) | lo, self.mmio.read32(e + ENTRY_DATA))
    }
}
