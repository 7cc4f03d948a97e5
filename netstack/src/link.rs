//! The link under an IP stack instance: what the stack needs from its MAC
//! client. The kernel implements [`Link`] over the MAC layer (a MAC client
//! of a physical link or a VNIC); tests implement it over memory.
//!
//! Receive does not go through this trait: the MAC client's Rx lanes call
//! [`crate::IpStack::input`] with each packet.
//!
//! Offloads (smoltcp asks for none; FireEngine uses partial checksums and
//! [`Link::lso_tcp4_max`]):
//! * Tx checksum: smoltcp cannot leave a partial checksum for the device,
//!   so every frame leaves with complete software checksums
//!   (`PktMeta::cksum == Cksum::None`). A Tx-offload query comes back with
//!   the stack that can use it.
//! * Rx checksum needs no query either: the stack reads each packet's
//!   `meta.cksum` and skips verification for packets the device marked
//!   [`arbalest_mac::Cksum::Verified`] (per packet, so mixed rings are fine).

use arbalest_mac::Mblk;

/// Headroom the stack expects in a Tx packet from [`Link::alloc_tx`], so
/// that lower layers can prepend headers (VLAN tag, virtio-net header).
pub const TX_HEADROOM: usize = 64;

/// A data link as seen by an IP stack instance.
pub trait Link: Send + Sync {
    /// Link name, e.g. `net0`.
    fn name(&self) -> &str;

    /// Unicast MAC address of the client.
    fn mac_addr(&self) -> [u8; 6];

    /// IP MTU (payload of an Ethernet frame), e.g. 1500.
    fn mtu(&self) -> usize;

    /// A Tx packet of exactly `len` bytes (zeroed or stale: the stack
    /// writes every one) after at least [`TX_HEADROOM`] bytes of headroom,
    /// as the MAC layer's `alloc_tx` hands them out; `None` when `len` does
    /// not fit a buffer or the pool is empty (the stack counts that as a Tx
    /// no-buffer drop).
    fn alloc_tx(&self, len: usize) -> Option<Mblk>;

    /// Sends one Ethernet frame (without FCS). Consumes it; the MAC layer
    /// counts its own drops. Called with the instance's lock held: it must
    /// not call back into the instance other than through `input` (which a
    /// frame switched locally to the same instance may do).
    fn tx(&self, m: Mblk);

    /// The large-send capability (illumos `MAC_CAPAB_LSO`, TCP/IPv4):
    /// the largest frame, headers included, the link takes with
    /// `meta.gso` set, because the NIC below segments it. `None` (the
    /// default): every frame fits the MTU.
    fn lso_tcp4_max(&self) -> Option<usize> {
        None
    }

    /// Whether the link is up (for `ipadm show-if`). Defaults to up.
    fn link_up(&self) -> bool {
        true
    }

    /// Whether the link takes frames now. False while the NIC's Tx ring is
    /// blocked: the stack holds its segments (TCP keeps them, nothing is
    /// dropped) and tries again when kicked or after a millisecond.
    /// Defaults to always.
    fn tx_ready(&self) -> bool {
        true
    }
}
