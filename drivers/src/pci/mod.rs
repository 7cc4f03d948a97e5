//! PCI: addresses ([`Bdf`]), configuration-space layout ([`regs`]),
//! enumeration into [`PciDevice`]s with decoded and sized [`Bar`]s,
//! capability lists, MSI-X tables, and the `scanpci` listing.
//!
//! Everything goes through [`PciConfigAccess`](crate::hal::PciConfigAccess)
//! (ECAM or port I/O in the kernel, a fake config space in tests).

mod bar;
mod bdf;
mod cap;
mod class;
mod device;
mod enumerate;
mod msix;
pub mod regs;
mod scanpci;

#[cfg(test)]
mod tests;

pub use bar::{Bar, read_bars};
pub use bdf::Bdf;
pub use cap::{CapIter, Capability, capabilities, find_capability};
pub use class::class_name;
pub use device::{PciDevice, disable_intx, enable_device};
pub use enumerate::{enumerate, enumerate_bus};
pub use msix::{MsixCap, MsixTable};
pub use scanpci::scanpci;
