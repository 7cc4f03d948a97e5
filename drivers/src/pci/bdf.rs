//! A PCI function's address: bus, device, function.

/// Bus / device / function. Displays as `scanpci` prints it: `00:02.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    pub bus: u8,
    /// 0..32
    pub dev: u8,
    /// 0..8
    pub func: u8,
}

impl Bdf {
    pub const fn new(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf { bus, dev: dev & 0x1f, func: func & 0x7 }
    }

    /// The ECAM offset of this function's 4 KiB configuration space.
    pub const fn ecam_offset(self) -> usize {
        ((self.bus as usize) << 20) | ((self.dev as usize) << 15) | ((self.func as usize) << 12)
    }

    /// The legacy `0xcf8` address (without the register offset).
    pub const fn port_address(self) -> u32 {
        0x8000_0000 | ((self.bus as u32) << 16) | ((self.dev as u32) << 11) | ((self.func as u32) << 8)
    }
}

impl core::fmt::Display for Bdf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{:x}", self.bus, self.dev, self.func)
    }
}
