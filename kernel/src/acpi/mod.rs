//! ACPI table parsing: from the RSDP to the facts the kernel boots on.
//!
//! [`parse`] walks RSDP → XSDT (or RSDT) → the tables it knows — MADT
//! (CPUs, IOAPICs, interrupt overrides, NMIs), MCFG (PCIe ECAM windows),
//! HPET and FADT (PM timer, RTC century register, SCI, reset register) — and
//! returns them as plain data in [`AcpiInfo`]. Physical memory is read
//! through [`PhysMem`], so the parser runs unchanged on the host against
//! synthetic images. Nothing here trusts the firmware: every length is
//! bounds-checked, every table's checksum verified, and a bad table is
//! skipped and noted in [`AcpiInfo::skipped`] rather than failing the boot.

mod bytes;
mod fadt;
mod hpet;
mod madt;
mod mcfg;
mod rsdp;
mod sdt;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::fmt;

pub use fadt::{PmTimer, ResetReg};
pub use hpet::Hpet;
pub use madt::{Cpu, IntOverride, IoApic, LapicNmi, NmiSource};
pub use mcfg::Ecam;
pub use rsdp::Rsdp;
pub use sdt::Signature;

/// The local APIC's architectural address, used when no MADT says otherwise.
pub const DEFAULT_LOCAL_APIC_ADDR: u64 = 0xfee0_0000;

/// Read access to physical memory.
pub trait PhysMem {
    /// Fills `buf` from physical address `paddr`. Returns false when any of
    /// the range is not readable (unmapped, outside RAM/firmware areas); the
    /// contents of `buf` are then unspecified.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> bool;
}

/// Why the tables could not be parsed at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// The RSDP address is not readable.
    RsdpUnreadable,
    /// No `"RSD PTR "` signature at the RSDP address.
    BadRsdpSignature,
    /// The RSDP checksum (or, for revision 2+, its extended checksum or
    /// length) is wrong.
    BadRsdpChecksum,
    /// The RSDP names neither an XSDT nor an RSDT.
    NoRootTable,
    /// Neither the XSDT nor the RSDT could be used; the reason for the last
    /// one tried.
    BadRootTable(SkipReason),
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcpiError::RsdpUnreadable => f.write_str("RSDP not readable"),
            AcpiError::BadRsdpSignature => f.write_str("no RSDP signature"),
            AcpiError::BadRsdpChecksum => f.write_str("bad RSDP checksum"),
            AcpiError::NoRootTable => f.write_str("RSDP names no XSDT or RSDT"),
            AcpiError::BadRootTable(r) => write!(f, "root table unusable: {r}"),
        }
    }
}

/// Why one table was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The table (or its header) is not readable.
    Unreadable,
    /// The header's length is below the header size or implausibly large.
    BadLength(u32),
    /// The bytes do not sum to zero.
    BadChecksum,
    /// The signature is not the one its pointer promised (XSDT/RSDT).
    WrongSignature,
    /// The table is too short for its mandatory fields.
    Truncated,
    /// The table describes something this kernel cannot use (an HPET that
    /// is not memory-mapped).
    Unsupported,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Unreadable => f.write_str("not readable"),
            SkipReason::BadLength(n) => write!(f, "bad length {n}"),
            SkipReason::BadChecksum => f.write_str("bad checksum"),
            SkipReason::WrongSignature => f.write_str("wrong signature"),
            SkipReason::Truncated => f.write_str("truncated"),
            SkipReason::Unsupported => f.write_str("unsupported"),
        }
    }
}

/// A table that was found but not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its signature, or `????` when even the header was unreadable.
    pub signature: Signature,
    /// Where it is.
    pub paddr: u64,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// A table with a valid header and checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// Its signature.
    pub signature: Signature,
    /// Where it is.
    pub paddr: u64,
    /// Its length in bytes, header included.
    pub length: u32,
    /// Its revision.
    pub revision: u8,
}

/// Everything the kernel learns from the ACPI tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiInfo {
    /// The RSDP as found.
    pub rsdp: Rsdp,
    /// The root table used: `XSDT` or `RSDT`.
    pub root: Signature,
    /// Every valid table, the root first, in root-table order.
    pub tables: Vec<TableInfo>,
    /// Tables that were skipped, and why.
    pub skipped: Vec<Skipped>,

    /// The local APIC base (MADT, or its 64-bit override entry; the
    /// architectural default without a MADT).
    pub local_apic_addr: u64,
    /// MADT flag PCAT_COMPAT: dual 8259 PICs are present (mask them).
    pub pcat_compat: bool,
    /// Processor entries (local APIC and local x2APIC), in MADT order,
    /// usable or not (see [`Cpu::usable`]).
    pub cpus: Vec<Cpu>,
    /// I/O APICs.
    pub ioapics: Vec<IoApic>,
    /// ISA interrupt source overrides.
    pub overrides: Vec<IntOverride>,
    /// NMI sources wired to I/O APIC inputs.
    pub nmi_sources: Vec<NmiSource>,
    /// Local APIC LINT pins wired to NMI.
    pub lapic_nmis: Vec<LapicNmi>,

    /// PCIe enhanced configuration windows (MCFG).
    pub mcfg: Vec<Ecam>,
    /// The HPET, if the firmware describes one.
    pub hpet: Option<Hpet>,

    /// The ACPI PM timer (FADT).
    pub pm_timer: Option<PmTimer>,
    /// CMOS index of the RTC century register; 0 when there is none.
    pub century_reg: u8,
    /// The SCI interrupt (ISA IRQ or GSI number) from the FADT.
    pub sci_irq: Option<u16>,
    /// The FADT reset register, when the firmware says it is supported.
    pub reset: Option<ResetReg>,
    /// Physical address of the DSDT named by the FADT.
    pub dsdt: Option<u64>,
}

impl AcpiInfo {
    fn new(rsdp: Rsdp, root: Signature) -> AcpiInfo {
        AcpiInfo {
            rsdp,
            root,
            tables: Vec::new(),
            skipped: Vec::new(),
            local_apic_addr: DEFAULT_LOCAL_APIC_ADDR,
            pcat_compat: false,
            cpus: Vec::new(),
            ioapics: Vec::new(),
            overrides: Vec::new(),
            nmi_sources: Vec::new(),
            lapic_nmis: Vec::new(),
            mcfg: Vec::new(),
            hpet: None,
            pm_timer: None,
            century_reg: 0,
            sci_irq: None,
            reset: None,
            dsdt: None,
        }
    }

    /// The CPUs that can be brought up (enabled, or online-capable).
    pub fn usable_cpus(&self) -> impl Iterator<Item = &Cpu> {
        self.cpus.iter().filter(|c| c.usable())
    }

    /// The GSI, polarity and trigger of an ISA IRQ: `(gsi, active_low,
    /// level_triggered)`. An override applies when one names the IRQ;
    /// otherwise the IRQ maps to the same-numbered GSI, active high, edge.
    pub fn irq_to_gsi(&self, isa_irq: u8) -> (u32, bool, bool) {
        match self.overrides.iter().rev().find(|o| o.bus_irq == isa_irq) {
            Some(o) => (o.gsi, o.polarity_low, o.level),
            None => (u32::from(isa_irq), false, false),
        }
    }

    /// The I/O APIC whose GSI range starts at or below `gsi`, nearest first:
    /// the one that serves `gsi` (the caller checks the pin count from the
    /// IOAPIC's version register).
    pub fn ioapic_for_gsi(&self, gsi: u32) -> Option<&IoApic> {
        self.ioapics
            .iter()
            .filter(|io| io.gsi_base <= gsi)
            .max_by_key(|io| io.gsi_base)
    }

    /// Whether a valid table with this signature was found.
    pub fn has_table(&self, signature: &[u8; 4]) -> bool {
        self.tables.iter().any(|t| t.signature.0 == *signature)
    }
}

/// Parses the ACPI tables reachable from the RSDP at `rsdp_paddr`.
///
/// The XSDT is preferred when the RSDP is revision 2 or later and names
/// one; if it is unusable the RSDT is tried. Only an unusable RSDP or root
/// table is an error. Of each known table the first valid one is used.
pub fn parse(rsdp_paddr: u64, mem: &dyn PhysMem) -> Result<AcpiInfo, AcpiError> {
    let rsdp = rsdp::read(mem, rsdp_paddr)?;
    let mut skipped = Vec::new();

    let mut root = None;
    let mut last_err = AcpiError::NoRootTable;
    let candidates = [
        (rsdp.xsdt, *b"XSDT", 8usize),
        (
            Some(u64::from(rsdp.rsdt)).filter(|&a| a != 0),
            *b"RSDT",
            4usize,
        ),
    ];
    for (addr, sig, entry_size) in candidates {
        let Some(addr) = addr else { continue };
        match sdt::load_expecting(mem, addr, &sig) {
            Ok(table) => {
                root = Some((table, entry_size));
                break;
            }
            Err(s) => {
                last_err = AcpiError::BadRootTable(s.reason);
                skipped.push(s);
            }
        }
    }
    let Some((root, entry_size)) = root else {
        return Err(last_err);
    };

    let mut info = AcpiInfo::new(rsdp, root.signature);
    info.skipped = skipped;
    info.tables.push(root.info());

    for addr in sdt::root_entries(root.body(), entry_size) {
        if addr == 0 {
            continue;
        }
        let table = match sdt::load(mem, addr) {
            Ok(t) => t,
            Err(s) => {
                info.skipped.push(s);
                continue;
            }
        };
        let first = !info.has_table(&table.signature.0);
        info.tables.push(table.info());
        if !first {
            continue;
        }
        let result = match &table.signature.0 {
            b"APIC" => madt::parse(&table, &mut info),
            b"MCFG" => mcfg::parse(&table, &mut info),
            b"HPET" => hpet::parse(&table, &mut info),
            b"FACP" => fadt::parse(&table, &mut info),
            _ => Ok(()),
        };
        if let Err(reason) = result {
            info.tables.pop();
            info.skipped.push(Skipped {
                signature: table.signature,
                paddr: addr,
                reason,
            });
        }
    }
    Ok(info)
}
