//! Counters of a stack instance: every packet handed in is either passed to
//! the stack or counted in exactly one drop counter; every frame the stack
//! wants to send is either handed to the link or counted as a Tx drop.
//! [`Counters`] are atomics (the Rx lanes bump `rx_queue_drops` from any
//! CPU); [`StackStats`] is a plain snapshot.

use core::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $field:ident => $name:literal,)*) => {
        /// Live counters (atomics).
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[$doc])* pub $field: AtomicU64,)*
        }

        /// A snapshot of [`Counters`].
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct StackStats {
            $($(#[$doc])* pub $field: u64,)*
        }

        impl Counters {
            /// Reads every counter.
            pub fn snapshot(&self) -> StackStats {
                StackStats { $($field: self.$field.load(Ordering::Relaxed),)* }
            }
        }

        impl StackStats {
            /// `(name, value)` pairs in a fixed order, for `netstat -s`.
            pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$(($name, self.$field),)*].into_iter()
            }
        }
    };
}

counters! {
    /// Frames handed to `input`.
    rx_packets => "rxPackets",
    /// Bytes of those frames.
    rx_bytes => "rxBytes",
    /// Frames dropped because the Rx queue was full.
    rx_queue_drops => "rxQueueDrops",
    /// Frames with truncated or inconsistent Ethernet/ARP/IPv4/TCP/UDP/ICMP
    /// headers, or impossible source addresses.
    rx_malformed => "rxMalformed",
    /// Frames with a bad IPv4 header or TCP/UDP/ICMP checksum.
    rx_bad_cksum => "rxBadCksum",
    /// Frames longer than the MTU allows (and not a large receive).
    rx_oversize => "rxOversize",
    /// Frames of an EtherType other than IPv4 and ARP.
    rx_unknown_proto => "rxUnknownProto",
    /// Unicast frames for another MAC address.
    rx_not_mine => "rxNotMine",
    /// IPv4 fragments reassembly refused (malformed, duplicates, over a
    /// cap); fragments taken are counted in the `ipReasm*` MIB.
    rx_fragments => "rxFragments",
    /// Frames handed to the link.
    tx_packets => "txPackets",
    /// Bytes of those frames.
    tx_bytes => "txBytes",
    /// Frames not sent, or deferred, because `Link::alloc_tx` had no buffer.
    tx_nobuf => "txNoBuffer",
    /// Poll rounds in which sending was held back because the link's Tx
    /// ring was blocked (`Link::tx_ready` false).
    tx_blocked => "txBlocked",
}

impl StackStats {
    /// All receive drops.
    pub fn rx_drops(&self) -> u64 {
        self.rx_queue_drops
            + self.rx_malformed
            + self.rx_bad_cksum
            + self.rx_oversize
            + self.rx_unknown_proto
            + self.rx_not_mine
            + self.rx_fragments
    }
}

/// Adds `n` to a counter.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    add(c, 1);
}
