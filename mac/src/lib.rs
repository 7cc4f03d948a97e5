//! The Crossbow MAC layer.
//!
//! * [`provider`]: the interface NIC drivers implement (GLDv3's
//!   `mac_register`): rings, ring groups, filters, offloads, link state.
//! * [`mblk`], [`buf`], [`dma`]: packets in DMA buffers from bounded pools,
//!   passed up and down without copying.
//! * [`stats`]: per-ring and per-device counters for `dlstat`.
//! * [`client`], [`switch`], [`link`]: MAC clients, the virtual switch,
//!   VNICs and etherstubs.
//! * [`flow`]: flows — classification by L3/L4 attributes, per-flow
//!   `maxbw` and priority, counters — and [`history`]: the in-memory
//!   usage history of links and flows.
//!
//! `mac` never imports `drivers` or `netstack`: both implement
//! or call the traits defined here.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod admin;
pub mod buf;
pub mod bw;
pub mod cksum;
pub mod client;
pub mod clock;
pub mod dma;
#[cfg(any(test, feature = "host"))]
pub mod fake;
pub mod gso;
pub mod flow;
pub mod hash;
pub mod history;
pub mod lanes;
pub mod link;
pub mod mac;
pub mod mblk;
pub mod pools;
pub mod props;
pub mod provider;
pub mod srs;
pub mod stats;
pub mod switch;
pub mod sync;
pub mod vlan;
#[cfg(test)]
mod tests;

pub use mac::Mac;
pub use srs::{PollStep, RxSrs};
pub use buf::{BufPool, DmaBuf};
pub use dma::{DmaAllocator, DmaRegion};
pub use mblk::{Cksum, Gso, GsoKind, Mblk, MblkChain, PktMeta};
pub use provider::{CksumCaps, Duplex, GroupInfo, LinkState, LsoCaps, MacAddr, MacError, MacInfo, MacProvider, MacUpcalls, RxRing, TxRing};
pub use stats::{DeviceCounters, RingCounters, RingStats};
#[cfg(test)]
mod vswitch_tests;
