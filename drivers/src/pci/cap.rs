//! The capability list: status bit 4 says it exists, offset 0x34 points at
//! the first entry, each entry is `id, next, ...`. The walk is bounded so a
//! looping list cannot hang the kernel.

use crate::hal::PciConfigAccess;

use super::bdf::Bdf;
use super::regs;

/// One capability: its id and its offset in configuration space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    pub id: u8,
    pub offset: u8,
}

/// Iterator over a function's capabilities.
pub struct CapIter<'a> {
    cfg: &'a dyn PciConfigAccess,
    bdf: Bdf,
    next: u8,
    /// Entries left before the walk gives up (a list cannot hold more than
    /// 48 dword-aligned entries above 0x40).
    budget: u8,
}

/// The capabilities of `bdf` (none if its status register says so).
pub fn capabilities(cfg: &dyn PciConfigAccess, bdf: Bdf) -> CapIter<'_> {
    let has_list = cfg.read16(bdf, regs::STATUS) & regs::STATUS_CAP_LIST != 0;
    let next = if has_list { cfg.read8(bdf, regs::CAP_PTR) } else { 0 };
    CapIter { cfg, bdf, next, budget: 48 }
}

/// The first capability with id `id`.
pub fn find_capability(cfg: &dyn PciConfigAccess, bdf: Bdf, id: u8) -> Option<u8> {
    capabilities(cfg, bdf).find(|c| c.id == id).map(|c| c.offset)
}

impl Iterator for CapIter<'_> {
    type Item = Capability;
    fn next(&mut self) -> Option<Capability> {
        let offset = self.next & 0xfc;
        if offset < 0x40 || self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        let hdr = self.cfg.read16(self.bdf, offset as u16);
        self.next = (hdr >> 8) as u8;
        Some(Capability { id: hdr as u8, offset })
    }
}
