//! The MADT (signature `APIC`): local APIC address, processors, I/O APICs,
//! ISA interrupt source overrides and NMI wiring.

use super::bytes::{u8_at, u16_at, u32_at, u64_at};
use super::sdt::{HEADER_LEN, Table};
use super::{AcpiInfo, SkipReason};

/// Processor Local APIC.
const LOCAL_APIC: u8 = 0;
/// I/O APIC.
const IO_APIC: u8 = 1;
/// Interrupt Source Override.
const INT_OVERRIDE: u8 = 2;
/// NMI Source.
const NMI_SOURCE: u8 = 3;
/// Local APIC NMI.
const LAPIC_NMI: u8 = 4;
/// Local APIC Address Override.
const LAPIC_ADDR_OVERRIDE: u8 = 5;
/// Processor Local x2APIC.
const LOCAL_X2APIC: u8 = 9;
/// Local x2APIC NMI.
const X2APIC_NMI: u8 = 10;

/// Processor flag: usable now.
const CPU_ENABLED: u32 = 1 << 0;
/// Processor flag: may be enabled later (hot-plug).
const CPU_ONLINE_CAPABLE: u32 = 1 << 1;

/// One processor entry (local APIC or local x2APIC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// ACPI processor UID.
    pub uid: u32,
    /// Local APIC (or x2APIC) id.
    pub apic_id: u32,
    /// The processor is ready to use.
    pub enabled: bool,
    /// The processor is not enabled but can be brought online.
    pub online_capable: bool,
}

impl Cpu {
    /// True when the processor can be started: enabled or online-capable.
    pub fn usable(&self) -> bool {
        self.enabled || self.online_capable
    }
}

/// One I/O APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    /// I/O APIC id.
    pub id: u8,
    /// Register window base (physical).
    pub addr: u64,
    /// First global system interrupt it serves.
    pub gsi_base: u32,
}

/// An ISA IRQ that is not identity-mapped, or not ISA-standard
/// (active-high, edge), on the I/O APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntOverride {
    /// The ISA IRQ.
    pub bus_irq: u8,
    /// The global system interrupt it arrives on.
    pub gsi: u32,
    /// Active low (else active high).
    pub polarity_low: bool,
    /// Level-triggered (else edge).
    pub level: bool,
}

/// An I/O APIC input wired to NMI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NmiSource {
    /// The global system interrupt.
    pub gsi: u32,
    /// Active low (else active high).
    pub polarity_low: bool,
    /// Level-triggered (else edge).
    pub level: bool,
}

/// A local APIC LINT pin wired to NMI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LapicNmi {
    /// The processor UID, or `None` for all processors.
    pub uid: Option<u32>,
    /// LINT0 or LINT1.
    pub lint: u8,
    /// Active low (else active high).
    pub polarity_low: bool,
    /// Level-triggered (else edge).
    pub level: bool,
}

/// Decodes MPS INTI flags for an ISA-like bus: `(active_low, level)`.
/// Polarity 0 (bus default) and 1 are high, 3 is low; trigger 0 (bus
/// default) and 1 are edge, 3 is level. The reserved value 2 reads as the
/// default.
pub(super) fn decode_inti(flags: u16) -> (bool, bool) {
    let polarity_low = flags & 0b11 == 0b11;
    let level = (flags >> 2) & 0b11 == 0b11;
    (polarity_low, level)
}

/// Fills the MADT facts into `info`. Entries are walked by their length
/// byte: unknown types and known types shorter than their layout are
/// skipped; a length below 2 or past the table's end stops the walk.
pub(super) fn parse(table: &Table, info: &mut AcpiInfo) -> Result<(), SkipReason> {
    let b = &table.bytes;
    let lapic = u32_at(b, HEADER_LEN).ok_or(SkipReason::Truncated)?;
    let flags = u32_at(b, HEADER_LEN + 4).ok_or(SkipReason::Truncated)?;
    info.local_apic_addr = u64::from(lapic);
    info.pcat_compat = flags & 1 != 0;

    let mut off = HEADER_LEN + 8;
    while let (Some(kind), Some(len)) = (u8_at(b, off), u8_at(b, off + 1)) {
        let len = usize::from(len);
        if len < 2 || off + len > b.len() {
            break;
        }
        entry(kind, &b[off..off + len], info);
        off += len;
    }
    Ok(())
}

/// Decodes one entry (`e` includes the type and length bytes).
fn entry(kind: u8, e: &[u8], info: &mut AcpiInfo) {
    match kind {
        LOCAL_APIC if e.len() >= 8 => {
            let (Some(uid), Some(id), Some(flags)) = (u8_at(e, 2), u8_at(e, 3), u32_at(e, 4))
            else {
                return;
            };
            add_cpu(info, u32::from(uid), u32::from(id), flags);
        }
        LOCAL_X2APIC if e.len() >= 16 => {
            let (Some(id), Some(flags), Some(uid)) = (u32_at(e, 4), u32_at(e, 8), u32_at(e, 12))
            else {
                return;
            };
            add_cpu(info, uid, id, flags);
        }
        IO_APIC if e.len() >= 12 => {
            let (Some(id), Some(addr), Some(gsi_base)) = (u8_at(e, 2), u32_at(e, 4), u32_at(e, 8))
            else {
                return;
            };
            info.ioapics.push(IoApic {
                id,
                addr: u64::from(addr),
                gsi_base,
            });
        }
        INT_OVERRIDE if e.len() >= 10 => {
            let (Some(bus_irq), Some(gsi), Some(flags)) = (u8_at(e, 3), u32_at(e, 4), u16_at(e, 8))
            else {
                return;
            };
            let (polarity_low, level) = decode_inti(flags);
            info.overrides.push(IntOverride {
                bus_irq,
                gsi,
                polarity_low,
                level,
            });
        }
        NMI_SOURCE if e.len() >= 8 => {
            let (Some(flags), Some(gsi)) = (u16_at(e, 2), u32_at(e, 4)) else {
                return;
            };
            let (polarity_low, level) = decode_inti(flags);
            info.nmi_sources.push(NmiSource {
                gsi,
                polarity_low,
                level,
            });
        }
        LAPIC_NMI if e.len() >= 6 => {
            let (Some(uid), Some(flags), Some(lint)) = (u8_at(e, 2), u16_at(e, 3), u8_at(e, 5))
            else {
                return;
            };
            let uid = if uid == 0xff {
                None
            } else {
                Some(u32::from(uid))
            };
            let (polarity_low, level) = decode_inti(flags);
            info.lapic_nmis.push(LapicNmi {
                uid,
                lint,
                polarity_low,
                level,
            });
        }
        X2APIC_NMI if e.len() >= 12 => {
            let (Some(flags), Some(uid), Some(lint)) = (u16_at(e, 2), u32_at(e, 4), u8_at(e, 8))
            else {
                return;
            };
            let uid = if uid == u32::MAX { None } else { Some(uid) };
            let (polarity_low, level) = decode_inti(flags);
            info.lapic_nmis.push(LapicNmi {
                uid,
                lint,
                polarity_low,
                level,
            });
        }
        LAPIC_ADDR_OVERRIDE if e.len() >= 12 => {
            if let Some(addr) = u64_at(e, 4) {
                info.local_apic_addr = addr;
            }
        }
        _ => {}
    }
}

/// Adds a processor unless its APIC id is already listed (firmware may
/// describe a CPU both as local APIC and as x2APIC; the first entry wins).
fn add_cpu(info: &mut AcpiInfo, uid: u32, apic_id: u32, flags: u32) {
    if info.cpus.iter().any(|c| c.apic_id == apic_id) {
        return;
    }
    info.cpus.push(Cpu {
        uid,
        apic_id,
        enabled: flags & CPU_ENABLED != 0,
        online_capable: flags & CPU_ONLINE_CAPABLE != 0,
    });
}
