//! In-memory doubles of the hardware, for host tests here and in other
//! crates (feature `host`):
//!
//! * [`MemMmio`]: a register region backed by plain memory.
//! * [`FakeConfigSpace`]: PCI configuration space with BAR sizing
//!   semantics and capability lists.
//! * [`FakeHal`]: heap DMA (physical = virtual), recorded MSI handlers that
//!   tests fire by message, a fake clock, simulated device regions.
//! * [`FakeMsix`]: an MSI-X table with pending bits, as the simulated
//!   devices' interrupt path.
//! * [`FakeVirtioNet`]: a virtio-net device behind the modern PCI
//!   transport: it reads the driver's rings and writes used entries like
//!   QEMU does.

mod hal;
mod mem_mmio;
mod msix;
mod pci_config;
mod ring;
mod virtio_net;

pub use hal::FakeHal;
pub use mem_mmio::MemMmio;
pub use msix::FakeMsix;
pub use pci_config::{FakeConfigSpace, FakeFunction};
pub use ring::{Desc, DeviceRing, read_mem, write_mem};
pub use virtio_net::{FakeVirtioNet, FakeVirtioNetConfig};
