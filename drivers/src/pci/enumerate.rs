//! Enumeration: a brute-force walk of every device slot of every bus in a
//! range (ECAM's MCFG gives the range; port I/O scans 0..=255), with
//! multi-function detection. Bridges are listed like any function; their
//! secondary buses are covered by the brute-force walk.

use alloc::vec::Vec;
use core::ops::RangeInclusive;

use crate::hal::PciConfigAccess;

use super::bdf::Bdf;
use super::device::PciDevice;
use super::regs;

/// All functions on buses `buses`, in bus / device / function order.
pub fn enumerate(cfg: &dyn PciConfigAccess, buses: RangeInclusive<u8>) -> Vec<PciDevice> {
    let mut out = Vec::new();
    for bus in buses {
        enumerate_bus(cfg, bus, &mut out);
    }
    out
}

/// Appends the functions of one bus to `out`.
pub fn enumerate_bus(cfg: &dyn PciConfigAccess, bus: u8, out: &mut Vec<PciDevice>) {
    for dev in 0..32 {
        let f0 = Bdf::new(bus, dev, 0);
        if !present(cfg, f0) {
            continue;
        }
        let multi = cfg.read8(f0, regs::HEADER_TYPE) & regs::HEADER_MULTIFUNCTION != 0;
        let funcs = if multi { 8 } else { 1 };
        for func in 0..funcs {
            let bdf = Bdf::new(bus, dev, func);
            if func == 0 || present(cfg, bdf) {
                out.push(PciDevice::read(cfg, bdf));
            }
        }
    }
}

fn present(cfg: &dyn PciConfigAccess, bdf: Bdf) -> bool {
    let vendor = cfg.read16(bdf, regs::VENDOR_ID);
    vendor != regs::VENDOR_NONE && vendor != 0
}
