//! Configuration-space register offsets and bits (PCI Local Bus 3.0,
//! type 0 and type 1 headers).

pub const VENDOR_ID: u16 = 0x00;
pub const DEVICE_ID: u16 = 0x02;
pub const COMMAND: u16 = 0x04;
pub const STATUS: u16 = 0x06;
pub const REVISION: u16 = 0x08;
pub const PROG_IF: u16 = 0x09;
pub const SUBCLASS: u16 = 0x0a;
pub const CLASS: u16 = 0x0b;
pub const HEADER_TYPE: u16 = 0x0e;
pub const BAR0: u16 = 0x10;
/// Type 1 (bridge): secondary bus number.
pub const SECONDARY_BUS: u16 = 0x19;
pub const SUBSYSTEM_VENDOR: u16 = 0x2c;
pub const SUBSYSTEM_ID: u16 = 0x2e;
pub const CAP_PTR: u16 = 0x34;
pub const INTERRUPT_LINE: u16 = 0x3c;

/// Command register bits.
pub const CMD_IO: u16 = 1 << 0;
pub const CMD_MEMORY: u16 = 1 << 1;
pub const CMD_BUS_MASTER: u16 = 1 << 2;
pub const CMD_INTX_DISABLE: u16 = 1 << 10;

/// Status register: the capability list is present.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// Header type: the device has several functions.
pub const HEADER_MULTIFUNCTION: u8 = 0x80;
pub const HEADER_TYPE_MASK: u8 = 0x7f;
pub const HEADER_NORMAL: u8 = 0;
pub const HEADER_BRIDGE: u8 = 1;
pub const HEADER_CARDBUS: u8 = 2;

/// Capability ids.
pub const CAP_MSI: u8 = 0x05;
pub const CAP_VENDOR: u8 = 0x09;
pub const CAP_PCIE: u8 = 0x10;
pub const CAP_MSIX: u8 = 0x11;

/// Vendor id read from an absent function.
pub const VENDOR_NONE: u16 = 0xffff;
