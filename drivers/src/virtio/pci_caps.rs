//! The virtio PCI vendor capabilities (virtio 1.x, 4.1.4): each names a
//! BAR, an offset and a length for one register block — common
//! configuration, notifications (with `notify_off_multiplier`), ISR status,
//! device-specific configuration. The first capability of each type wins.

use crate::error::Error;
use crate::hal::PciConfigAccess;
use crate::pci::{Bar, Bdf, capabilities, regs};

pub const CAP_COMMON_CFG: u8 = 1;
pub const CAP_NOTIFY_CFG: u8 = 2;
pub const CAP_ISR_CFG: u8 = 3;
pub const CAP_DEVICE_CFG: u8 = 4;
pub const CAP_PCI_CFG: u8 = 5;

// Offsets inside `struct virtio_pci_cap`.
const CFG_TYPE: u16 = 3;
const BAR: u16 = 4;
const OFFSET: u16 = 8;
const LENGTH: u16 = 12;
const NOTIFY_OFF_MULTIPLIER: u16 = 16;

/// One register block: `length` bytes at `offset` in BAR `bar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapRegion {
    pub bar: u8,
    pub offset: u32,
    pub length: u32,
}

impl CapRegion {
    /// Physical address of the block, if its BAR is memory and holds it.
    pub fn paddr(&self, bars: &[Bar; 6]) -> Result<u64, Error> {
        let (addr, size) = bars.get(self.bar as usize).and_then(|b| b.memory()).ok_or(Error::BadBar)?;
        if self.offset as u64 + self.length as u64 > size || addr == 0 {
            return Err(Error::BadBar);
        }
        Ok(addr + self.offset as u64)
    }
}

/// The register blocks of a modern virtio PCI function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioCaps {
    pub common: CapRegion,
    pub notify: CapRegion,
    pub notify_off_multiplier: u32,
    pub isr: Option<CapRegion>,
    pub device: Option<CapRegion>,
}

impl VirtioCaps {
    /// Reads the capabilities of `bdf`; common and notify are required.
    pub fn read(cfg: &dyn PciConfigAccess, bdf: Bdf) -> Result<VirtioCaps, Error> {
        let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
        let mut mult = 0;
        for cap in capabilities(cfg, bdf).filter(|c| c.id == regs::CAP_VENDOR) {
            let o = cap.offset as u16;
            let bar = cfg.read8(bdf, o + BAR);
            if bar > 5 {
                continue; // reserved BAR numbers: skip, as the spec asks
            }
            let region = CapRegion { bar, offset: cfg.read32(bdf, o + OFFSET), length: cfg.read32(bdf, o + LENGTH) };
            match cfg.read8(bdf, o + CFG_TYPE) {
                CAP_COMMON_CFG if common.is_none() => common = Some(region),
                CAP_NOTIFY_CFG if notify.is_none() => {
                    notify = Some(region);
                    mult = cfg.read32(bdf, o + NOTIFY_OFF_MULTIPLIER);
                }
                CAP_ISR_CFG if isr.is_none() => isr = Some(region),
                CAP_DEVICE_CFG if device.is_none() => device = Some(region),
                _ => {}
            }
        }
        Ok(VirtioCaps {
            common: common.ok_or(Error::MissingCapability("virtio common cfg"))?,
            notify: notify.ok_or(Error::MissingCapability("virtio notify cfg"))?,
            notify_off_multiplier: mult,
            isr,
            device,
        })
    }
}
