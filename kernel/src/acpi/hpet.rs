//! The HPET description table: where the High Precision Event Timer is.

use super::bytes::{u8_at, u16_at, u32_at, u64_at};
use super::sdt::{HEADER_LEN, Table};
use super::{AcpiInfo, SkipReason};

/// Length of the table as ACPI defines it.
const TABLE_LEN: usize = 56;
/// Generic Address Structure space id: system memory.
const SPACE_MEMORY: u8 = 0;

/// The HPET block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hpet {
    /// Physical base of the register block.
    pub base: u64,
    /// Minimum clock ticks for a periodic comparator without losing
    /// interrupts.
    pub min_tick: u16,
    /// HPET sequence number.
    pub number: u8,
    /// Number of comparators (from the event timer block id).
    pub comparators: u8,
}

/// Fills the HPET into `info`. An HPET outside memory space is skipped.
pub(super) fn parse(table: &Table, info: &mut AcpiInfo) -> Result<(), SkipReason> {
    let b = &table.bytes;
    if b.len() < TABLE_LEN {
        return Err(SkipReason::Truncated);
    }
    let block_id = u32_at(b, HEADER_LEN).ok_or(SkipReason::Truncated)?;
    let space = u8_at(b, 40).ok_or(SkipReason::Truncated)?;
    let base = u64_at(b, 44).ok_or(SkipReason::Truncated)?;
    let number = u8_at(b, 52).ok_or(SkipReason::Truncated)?;
    let min_tick = u16_at(b, 53).ok_or(SkipReason::Truncated)?;
    if space != SPACE_MEMORY || base == 0 {
        return Err(SkipReason::Unsupported);
    }
    let comparators = ((block_id >> 8) & 0x1f) as u8 + 1;
    info.hpet = Some(Hpet {
        base,
        min_tick,
        number,
        comparators,
    });
    Ok(())
}
