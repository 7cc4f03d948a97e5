//! The MAC provider interface (GLDv3's `mac_register` in Rust): what a NIC
//! driver tells the MAC layer about itself, the rings it exposes, and the
//! calls the MAC layer makes into it. Drivers implement these traits; the
//! MAC layer never sees a register.
//!
//! Rings are grouped as illumos does: an Rx group is a set of Rx rings
//! sharing unicast address filters (the default group takes everything no
//! other group claims); Tx rings may be grouped the same way.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::buf::BufPool;
use crate::mblk::MblkChain;
use crate::stats::{DeviceCounters, RingStats};

/// A 48-bit Ethernet address.
pub type MacAddr = [u8; 6];

/// Link state as the device reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Up,
    Down,
    Unknown,
}

impl LinkState {
    /// The word `dladm` prints.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Unknown => "unknown",
        }
    }
}

/// Duplex as `dladm show-phys` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplex {
    Full,
    Half,
    Unknown,
}

/// Checksum offloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CksumCaps {
    /// Tx: the device computes a partial checksum (`Cksum::Partial`).
    pub tx_partial: bool,
    /// Rx: the device verifies checksums (`Cksum::Verified`).
    pub rx_verify: bool,
}

/// Large send / receive offload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LsoCaps {
    /// Tx TCP segmentation, IPv4 / IPv6.
    pub tx_tcp4: bool,
    pub tx_tcp6: bool,
    /// Rx coalesced TCP segments (virtio GUEST_TSO), IPv4 / IPv6.
    pub rx_tcp4: bool,
    pub rx_tcp6: bool,
    /// Largest packet the device takes or gives with offload.
    pub max_size: usize,
}

/// One ring group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Indexes of the group's rings.
    pub rings: Vec<usize>,
    /// Unicast addresses the group can filter in hardware.
    pub unicast_slots: usize,
}

/// What a driver registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacInfo {
    /// Driver name (`vioif`, `igb`): the link's `DEVICE` is name + instance.
    pub driver: &'static str,
    /// Factory MAC address.
    pub factory_addr: MacAddr,
    /// Extra factory addresses (for `create-vnic -m factory`).
    pub extra_factory_addrs: Vec<MacAddr>,
    /// Largest SDU (MTU).
    pub mtu: usize,
    pub rx_groups: Vec<GroupInfo>,
    pub tx_groups: Vec<GroupInfo>,
    /// Number of Rx / Tx rings.
    pub rx_rings: usize,
    pub tx_rings: usize,
    /// Whether Rx rings can be polled with their interrupt off.
    pub pollable: bool,
    pub cksum: CksumCaps,
    pub lso: LsoCaps,
}

/// Errors a driver returns for control operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacError {
    /// No such ring / group / slot.
    Invalid,
    /// The hardware has no room (filter table full).
    NoSpace,
    /// Not supported by this device.
    NotSupported,
    /// The device did not answer or failed.
    Device,
}

/// Calls from a driver up into the MAC layer (`mac_rx`, `mac_tx_update`,
/// `mac_link_update`). Called from interrupt context: must not block.
pub trait MacUpcalls: Send + Sync {
    /// Rx ring `ring` has packets (its interrupt fired). The driver has
    /// already counted the interrupt and disabled the ring's interrupt.
    fn rx_ready(&self, ring: usize);
    /// Tx ring `ring` has room again after a `tx` returned packets unsent.
    fn tx_resume(&self, ring: usize);
    /// The link went up or down.
    fn link_changed(&self, state: LinkState);
}

/// One hardware Rx ring.
pub trait RxRing: Send + Sync {
    /// Takes received packets, at most about `max_bytes` (at least one
    /// packet if any is ready). Reposts buffers. Never blocks.
    fn poll(&self, max_bytes: usize) -> MblkChain;
    /// Lets the ring interrupt again (and raises it at once if packets
    /// arrived meanwhile, so none is stranded).
    fn intr_enable(&self);
    /// Stops the ring's interrupt (poll mode).
    fn intr_disable(&self);
    /// CPU its interrupt is delivered to.
    fn cpu(&self) -> usize;
    /// Moves the ring's interrupt to CPU `cpu` (the `cpus` link property):
    /// once it returns `Ok`, [`RxRing::cpu`] reports `cpu` and the ring
    /// interrupts there. Moving to the CPU it is on is a no-op.
    ///
    /// The ring may be in use meanwhile (polled, its interrupt switched
    /// on or off by its lane): no interrupt is lost in the switch, but
    /// the MAC layer may see one spurious (or duplicate) `rx_ready` /
    /// `tx_resume` for the ring, as it may from any interrupt racing
    /// `intr_disable`. Takes the driver's control lock: call from thread
    /// context, never from an upcall or interrupt handler.
    ///
    /// On error nothing changes: the old binding stays intact and working.
    /// `Invalid`: `cpu` is not an online CPU. `NoSpace`: no interrupt
    /// vector free on that CPU. `NotSupported`: the ring cannot move (the
    /// default). On a stopped provider the drivers in this tree record the
    /// CPU and bind the ring there at the next `start`.
    fn set_cpu(&self, cpu: usize) -> Result<(), MacError> {
        let _ = cpu;
        Err(MacError::NotSupported)
    }
    fn stats(&self) -> &RingStats;
    /// The pool its receive buffers come from, for the shell's pool
    /// listing (`nicctl pools`: leak checks). `None` if the ring does not
    /// say.
    fn pool(&self) -> Option<Arc<BufPool>> {
        None
    }
}

/// One hardware Tx ring.
pub trait TxRing: Send + Sync {
    /// Queues packets to the device. Returns those that did not fit; the
    /// driver then calls `MacUpcalls::tx_resume` once room frees up.
    fn tx(&self, chain: MblkChain) -> MblkChain;
    /// Reclaims completed descriptors (also done inside `tx`).
    fn reclaim(&self);
    fn stats(&self) -> &RingStats;
}

/// A NIC driver instance, as registered with the MAC layer.
pub trait MacProvider: Send + Sync {
    fn info(&self) -> &MacInfo;
    /// Starts the device; from now on it calls `up`.
    fn start(&self, up: Arc<dyn MacUpcalls>) -> Result<(), MacError>;
    /// Stops the device (no more upcalls after it returns).
    fn stop(&self);
    fn rx_ring(&self, index: usize) -> Option<&dyn RxRing>;
    fn tx_ring(&self, index: usize) -> Option<&dyn TxRing>;
    /// Adds a unicast address filter to Rx group `group`.
    fn unicast_add(&self, group: usize, addr: MacAddr) -> Result<(), MacError>;
    fn unicast_remove(&self, group: usize, addr: MacAddr) -> Result<(), MacError>;
    fn set_promisc(&self, on: bool) -> Result<(), MacError>;
    fn multicast_add(&self, addr: MacAddr) -> Result<(), MacError>;
    fn multicast_remove(&self, addr: MacAddr) -> Result<(), MacError>;
    fn link_state(&self) -> LinkState;
    /// Link speed in Mbit/s (0 if unknown).
    fn speed_mbps(&self) -> u64;
    fn duplex(&self) -> Duplex;
    fn counters(&self) -> DeviceCounters;
}
