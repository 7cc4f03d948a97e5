//! The FADT (signature `FACP`): PM timer, RTC century register, SCI,
//! reset register and the DSDT's address.
//!
//! Fields are read only as far as the table's length reaches, so ACPI 1.0
//! (116-byte) tables and newer ones parse alike; 64-bit `X_` fields are
//! preferred when present and non-zero.

use super::bytes::{u8_at, u16_at, u32_at, u64_at};
use super::sdt::Table;
use super::{AcpiInfo, SkipReason};

const DSDT: usize = 40;
const SCI_INT: usize = 46;
const PM_TMR_BLK: usize = 76;
const CENTURY: usize = 108;
const FLAGS: usize = 112;
const RESET_REG: usize = 116;
const RESET_VALUE: usize = 128;
const X_DSDT: usize = 140;
const X_PM_TMR_BLK: usize = 208;

/// FADT flag: the PM timer counter is 32 bits wide (else 24).
const TMR_VAL_EXT: u32 = 1 << 8;
/// FADT flag: the reset register is supported.
const RESET_REG_SUP: u32 = 1 << 10;

/// Generic Address Structure space id: system I/O.
const SPACE_IO: u8 = 1;

/// The ACPI power-management timer (3.579545 MHz).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmTimer {
    /// I/O port of the counter.
    pub port: u32,
    /// The counter is 32 bits wide (else 24).
    pub ext_32bit: bool,
}

/// The register that resets the machine when `value` is written to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetReg {
    /// Generic Address Structure space id (0 memory, 1 I/O, 2 PCI config).
    pub space: u8,
    /// The address in that space.
    pub addr: u64,
    /// The byte to write.
    pub value: u8,
}

/// Fills the FADT facts into `info`.
pub(super) fn parse(table: &Table, info: &mut AcpiInfo) -> Result<(), SkipReason> {
    let b = &table.bytes;
    if b.len() <= PM_TMR_BLK + 4 {
        return Err(SkipReason::Truncated);
    }
    let flags = u32_at(b, FLAGS).unwrap_or(0);

    info.dsdt = u64_at(b, X_DSDT)
        .filter(|&a| a != 0)
        .or_else(|| u32_at(b, DSDT).filter(|&a| a != 0).map(u64::from));
    info.sci_irq = u16_at(b, SCI_INT);
    info.century_reg = u8_at(b, CENTURY).unwrap_or(0);

    let x_port = match (u8_at(b, X_PM_TMR_BLK), u64_at(b, X_PM_TMR_BLK + 4)) {
        (Some(SPACE_IO), Some(addr)) if addr != 0 => u32::try_from(addr).ok(),
        _ => None,
    };
    let port = x_port.or_else(|| u32_at(b, PM_TMR_BLK).filter(|&p| p != 0));
    info.pm_timer = port.map(|port| PmTimer {
        port,
        ext_32bit: flags & TMR_VAL_EXT != 0,
    });

    if flags & RESET_REG_SUP != 0
        && let (Some(space), Some(addr), Some(value)) = (
            u8_at(b, RESET_REG),
            u64_at(b, RESET_REG + 4),
            u8_at(b, RESET_VALUE),
        )
        && addr != 0
    {
        info.reset = Some(ResetReg { space, addr, value });
    }
    Ok(())
}
