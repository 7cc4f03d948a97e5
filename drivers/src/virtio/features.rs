//! Feature bits common to every virtio device type (virtio 1.x, 6).

/// Indirect descriptors.
pub const RING_INDIRECT_DESC: u64 = 1 << 28;
/// `used_event` / `avail_event` instead of the ring flags.
pub const RING_EVENT_IDX: u64 = 1 << 29;
/// The device conforms to virtio 1.x (required: no legacy interface here).
pub const VERSION_1: u64 = 1 << 32;
/// The device sits behind an IOMMU / restricted DMA.
pub const ACCESS_PLATFORM: u64 = 1 << 33;
/// Packed virtqueues.
pub const RING_PACKED: u64 = 1 << 34;
/// Per-queue reset.
pub const RING_RESET: u64 = 1 << 40;
