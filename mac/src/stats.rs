//! Counters kept by drivers per ring and per device, read by `dlstat`.
//! Plain atomics: writers are the ring's own lane, readers anyone.

use core::sync::atomic::{AtomicU64, Ordering};

/// Counters of one hardware ring.
#[derive(Debug, Default)]
pub struct RingStats {
    /// Packets received (Rx) or sent (Tx).
    pub packets: AtomicU64,
    /// Bytes received or sent.
    pub bytes: AtomicU64,
    /// Packets dropped by the driver on this ring (no buffer, bad
    /// descriptor, malformed, too big).
    pub drops: AtomicU64,
    /// Errors reported by the device for this ring.
    pub errors: AtomicU64,
    /// Interrupts taken for this ring.
    pub interrupts: AtomicU64,
    /// Tx: times the ring was full and the client had to wait.
    pub blocked: AtomicU64,
    /// Tx: times a full ring had room again (resume notifications).
    pub unblocked: AtomicU64,
}

impl RingStats {
    /// Counts one packet of `len` bytes.
    #[inline]
    pub fn count(&self, len: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// A plain copy of the counters.
    pub fn snapshot(&self) -> RingCounters {
        RingCounters {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            drops: self.drops.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            interrupts: self.interrupts.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
            unblocked: self.unblocked.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of [`RingStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RingCounters {
    pub packets: u64,
    pub bytes: u64,
    pub drops: u64,
    pub errors: u64,
    pub interrupts: u64,
    pub blocked: u64,
    pub unblocked: u64,
}

/// Device-wide counters a driver reports (beyond the sum of its rings).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Frames the device could not deliver for lack of buffers.
    pub rx_missed: u64,
    /// Malformed frames dropped (bad header, bad length).
    pub rx_malformed: u64,
    /// Device errors recovered from (queue or device resets).
    pub resets: u64,
    /// Link state changes seen.
    pub link_changes: u64,
}
