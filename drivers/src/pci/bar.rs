//! Base address registers: decoding and sizing.
//!
//! Sizing writes all-ones to a BAR, reads back which address bits stick
//! and restores the original value. Memory and I/O decode are switched off
//! in the command register meanwhile (except on host bridges, which may
//! decode memory the kernel is running from), so the device never answers
//! at the all-ones address.

use crate::hal::PciConfigAccess;

use super::bdf::Bdf;
use super::regs;

/// One decoded BAR. The upper half of a 64-bit memory BAR reads as
/// [`Bar::None`] in the next slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bar {
    /// Not implemented (or the upper half of a 64-bit BAR).
    #[default]
    None,
    /// Memory space.
    Memory { addr: u64, size: u64, prefetchable: bool, bits64: bool },
    /// I/O port space.
    Io { port: u32, size: u32 },
}

impl Bar {
    /// Address and size of a memory BAR.
    pub fn memory(&self) -> Option<(u64, u64)> {
        match *self {
            Bar::Memory { addr, size, .. } => Some((addr, size)),
            _ => None,
        }
    }

    /// Size in bytes (0 when absent).
    pub fn size(&self) -> u64 {
        match *self {
            Bar::None => 0,
            Bar::Memory { size, .. } => size,
            Bar::Io { size, .. } => size as u64,
        }
    }
}

/// Reads and sizes the BARs of `bdf` (6 for a normal header, 2 for a
/// bridge, 1 for CardBus).
pub fn read_bars(cfg: &dyn PciConfigAccess, bdf: Bdf, header_type: u8, is_host_bridge: bool) -> [Bar; 6] {
    let mut bars = [Bar::None; 6];
    let count = match header_type & regs::HEADER_TYPE_MASK {
        regs::HEADER_NORMAL => 6,
        regs::HEADER_BRIDGE => 2,
        regs::HEADER_CARDBUS => 1,
        _ => 0,
    };
    if count == 0 {
        return bars;
    }

    let cmd = cfg.read16(bdf, regs::COMMAND);
    let decode = regs::CMD_IO | regs::CMD_MEMORY;
    let quiesce = !is_host_bridge && cmd & decode != 0;
    if quiesce {
        write_command(cfg, bdf, cmd & !decode);
    }

    let mut i = 0;
    while i < count {
        let off = regs::BAR0 + 4 * i as u16;
        let orig = cfg.read32(bdf, off);
        let mask = size_mask(cfg, bdf, off, orig);
        if orig & 1 == 1 {
            // I/O: bits 31:2 are address; devices may implement only 16.
            let mut m = mask & !0x3;
            if m != 0 && m & 0xffff_0000 == 0 {
                m |= 0xffff_0000;
            }
            if m != 0 {
                bars[i] = Bar::Io { port: orig & !0x3, size: (!m).wrapping_add(1) };
            }
            i += 1;
            continue;
        }
        let prefetchable = orig & 0x8 != 0;
        match (orig >> 1) & 0x3 {
            0b10 if i + 1 < count => {
                let hi_off = off + 4;
                let orig_hi = cfg.read32(bdf, hi_off);
                let mask_hi = size_mask(cfg, bdf, hi_off, orig_hi);
                let m = ((mask_hi as u64) << 32) | (mask & !0xf) as u64;
                if m != 0 {
                    let addr = ((orig_hi as u64) << 32) | (orig & !0xf) as u64;
                    bars[i] = Bar::Memory { addr, size: (!m).wrapping_add(1), prefetchable, bits64: true };
                }
                i += 2;
            }
            0b10 => i += 1, // a 64-bit BAR in the last slot: malformed, ignored
            _ => {
                let m = mask & !0xf;
                if m != 0 {
                    bars[i] = Bar::Memory {
                        addr: (orig & !0xf) as u64,
                        size: (!m).wrapping_add(1) as u64,
                        prefetchable,
                        bits64: false,
                    };
                }
                i += 1;
            }
        }
    }

    if quiesce {
        write_command(cfg, bdf, cmd);
    }
    bars
}

/// Writes all-ones, reads back the writable bits, restores `orig`.
fn size_mask(cfg: &dyn PciConfigAccess, bdf: Bdf, off: u16, orig: u32) -> u32 {
    cfg.write32(bdf, off, u32::MAX);
    let m = cfg.read32(bdf, off);
    cfg.write32(bdf, off, orig);
    m
}

/// Writes the command register with a zero status half (the status
/// register's error bits are write-1-to-clear: writing back what was read
/// would clear them).
pub(super) fn write_command(cfg: &dyn PciConfigAccess, bdf: Bdf, cmd: u16) {
    cfg.write32(bdf, regs::COMMAND, cmd as u32);
}
