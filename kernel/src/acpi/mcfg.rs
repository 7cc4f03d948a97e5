//! The MCFG: PCI Express enhanced configuration (ECAM) windows.

use super::bytes::{u8_at, u16_at, u64_at};
use super::sdt::{HEADER_LEN, Table};
use super::{AcpiInfo, SkipReason};

/// Bytes between the header and the first allocation entry.
const RESERVED: usize = 8;
/// Size of one allocation entry.
const ENTRY_LEN: usize = 16;

/// One ECAM window: configuration space of buses `bus_start..=bus_end` of a
/// PCI segment group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecam {
    /// Physical base of the window (the address of bus 0, even when
    /// `bus_start` is higher).
    pub base: u64,
    /// PCI segment group.
    pub segment: u16,
    /// First bus decoded.
    pub bus_start: u8,
    /// Last bus decoded.
    pub bus_end: u8,
}

impl Ecam {
    /// Physical address of the configuration space of a function, if the
    /// bus is in this window.
    pub fn config_addr(&self, bus: u8, device: u8, function: u8) -> Option<u64> {
        if bus < self.bus_start || bus > self.bus_end || device > 31 || function > 7 {
            return None;
        }
        let off = (u64::from(bus) << 20) | (u64::from(device) << 15) | (u64::from(function) << 12);
        self.base.checked_add(off)
    }
}

/// Fills the ECAM windows into `info`. A trailing partial entry is ignored;
/// an entry whose bus range is reversed is dropped.
pub(super) fn parse(table: &Table, info: &mut AcpiInfo) -> Result<(), SkipReason> {
    let entries = table
        .bytes
        .get(HEADER_LEN + RESERVED..)
        .ok_or(SkipReason::Truncated)?;
    for e in entries.chunks_exact(ENTRY_LEN) {
        let (Some(base), Some(segment), Some(bus_start), Some(bus_end)) =
            (u64_at(e, 0), u16_at(e, 8), u8_at(e, 10), u8_at(e, 11))
        else {
            continue;
        };
        if bus_end < bus_start {
            continue;
        }
        info.mcfg.push(Ecam {
            base,
            segment,
            bus_start,
            bus_end,
        });
    }
    Ok(())
}
