//! virtio 1.x over the modern PCI transport, and the virtio-net driver.
//!
//! * [`pci_caps`]: the vendor capabilities that locate the transport's
//!   register blocks.
//! * [`transport`]: the common configuration block (status handshake,
//!   features, queue set-up, MSI-X vectors) and queue notification.
//! * [`queue`]: the split virtqueue with event suppression.
//! * [`features`]: feature bits shared by all device types.
//! * [`net`]: the multi-queue network driver (`vioif`).

pub mod features;
pub mod net;
pub mod pci_caps;
pub mod queue;
pub mod transport;

pub use net::{Tunables, VirtioNet};
pub use queue::{QueueError, QueueEvents, Seg, Used, VirtQueue};
pub use transport::Transport;

/// PCI vendor id of virtio devices.
pub const VENDOR_ID: u16 = 0x1af4;
/// Modern (virtio 1.x) device ids are 0x1040 + device type.
pub const DEVICE_ID_MODERN_BASE: u16 = 0x1040;
/// Transitional network device id (legacy interface plus modern caps).
pub const DEVICE_ID_NET_TRANSITIONAL: u16 = 0x1000;
/// Device type of a network card.
pub const DEVICE_TYPE_NET: u16 = 1;
