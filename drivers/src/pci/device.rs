//! One PCI function as enumeration found it, and the command-register
//! switches a driver flips to use it.

use crate::hal::PciConfigAccess;

use super::bar::{Bar, read_bars, write_command};
use super::bdf::Bdf;
use super::regs;

/// A PCI function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciDevice {
    pub bdf: Bdf,
    pub vendor: u16,
    pub device: u16,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    pub revision: u8,
    /// Raw header type (bit 7: multi-function).
    pub header_type: u8,
    /// Legacy interrupt line as firmware assigned it.
    pub irq_line: u8,
    pub bars: [Bar; 6],
}

impl PciDevice {
    /// Reads the function at `bdf` (which must exist) and sizes its BARs.
    pub fn read(cfg: &dyn PciConfigAccess, bdf: Bdf) -> PciDevice {
        let id = cfg.read32(bdf, regs::VENDOR_ID);
        let class = cfg.read32(bdf, regs::REVISION);
        let header_type = cfg.read8(bdf, regs::HEADER_TYPE);
        let (class_code, subclass) = ((class >> 24) as u8, (class >> 16) as u8);
        let is_host_bridge = class_code == 0x06 && subclass == 0x00;
        PciDevice {
            bdf,
            vendor: id as u16,
            device: (id >> 16) as u16,
            class: class_code,
            subclass,
            prog_if: (class >> 8) as u8,
            revision: class as u8,
            header_type,
            irq_line: cfg.read8(bdf, regs::INTERRUPT_LINE),
            bars: read_bars(cfg, bdf, header_type, is_host_bridge),
        }
    }

    /// Whether this is a PCI-to-PCI bridge.
    pub fn is_bridge(&self) -> bool {
        self.header_type & regs::HEADER_TYPE_MASK == regs::HEADER_BRIDGE
    }

    /// Whether function 0 of this device announces more functions.
    pub fn is_multifunction(&self) -> bool {
        self.header_type & regs::HEADER_MULTIFUNCTION != 0
    }

    /// Subsystem vendor and id (type 0 headers).
    pub fn subsystem(&self, cfg: &dyn PciConfigAccess) -> (u16, u16) {
        let v = cfg.read32(self.bdf, regs::SUBSYSTEM_VENDOR);
        (v as u16, (v >> 16) as u16)
    }
}

/// Turns on memory decode and bus mastering (and I/O decode if `io`).
pub fn enable_device(cfg: &dyn PciConfigAccess, bdf: Bdf, io: bool) {
    let mut cmd = cfg.read16(bdf, regs::COMMAND) | regs::CMD_MEMORY | regs::CMD_BUS_MASTER;
    if io {
        cmd |= regs::CMD_IO;
    }
    write_command(cfg, bdf, cmd);
}

/// Disables legacy INTx assertion (command bit 10), as MSI-X users do.
pub fn disable_intx(cfg: &dyn PciConfigAccess, bdf: Bdf) {
    let cmd = cfg.read16(bdf, regs::COMMAND) | regs::CMD_INTX_DISABLE;
    write_command(cfg, bdf, cmd);
}
