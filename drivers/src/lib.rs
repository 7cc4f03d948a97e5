//! Device drivers: PCI and virtio-net (igb later). Each driver implements
//! the MAC provider interface of `arbalest-mac`; hardware access goes
//! through the small traits of [`hal`] that the kernel implements, so ring
//! and register logic is host-testable.
//!
//! * [`hal`]: what the kernel provides (DMA, MMIO mapping, MSI vectors,
//!   clock) and the register-access traits.
//! * [`pci`]: enumeration, BARs, capabilities, MSI-X, `scanpci`.
//! * [`virtio`]: the modern virtio PCI transport, split virtqueues and the
//!   multi-queue virtio-net driver (`vioif`).
//! * `testing` (feature `host` or tests): in-memory doubles of all of the
//!   above's hardware.
#![no_std]

extern crate alloc;
#[cfg(any(test, feature = "host"))]
extern crate std;

pub mod dma_mem;
pub mod error;
pub mod hal;
pub mod igb;
pub mod pci;
pub mod virtio;

#[cfg(any(test, feature = "host"))]
pub mod testing;

pub use error::Error;
pub use hal::{Hal, IrqHandler, Mmio, MmioRegion, MsiMessage, PciConfigAccess};
