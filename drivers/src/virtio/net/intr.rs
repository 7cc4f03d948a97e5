//! Interrupt wiring: one MSI-X vector per queue plus one for configuration
//! changes, each bound to a CPU through `Hal::alloc_msi`.
//!
//! ```text
//! MSI-X entry 0        configuration change          CPU 0
//! MSI-X entry 1 + 2i   Rx ring i (receiveq i+1)      CPU i % cpus
//! MSI-X entry 2 + 2i   Tx ring i (transmitq i+1)     CPU i % cpus
//! control queue        no vector (polled)
//! ```
//!
//! Rx ring i's CPU can be changed at run time (`RxRing::set_cpu`); Tx ring
//! i's vector moves with it. The queues keep their entries: only the
//! entries' messages change.
//!
//! Handlers take no lock: they count, switch their queue's interrupt off
//! through its [`QueueEvents`](crate::virtio::QueueEvents), and call up.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use arbalest_mac::{LinkState, MacUpcalls};

use crate::hal::{IrqHandler, Mmio};
use crate::virtio::transport::{read_status, status};

use super::config;
use super::rx::VioifRxRing;
use super::tx::VioifTxRing;
use super::{Shared, link_code};

pub const CONFIG_ENTRY: u16 = 0;

pub fn rx_entry(ring: usize) -> u16 {
    1 + 2 * ring as u16
}

pub fn tx_entry(ring: usize) -> u16 {
    2 + 2 * ring as u16
}

/// MSI-X entries a device with `pairs` queue pairs uses.
pub fn entries_needed(pairs: usize) -> usize {
    1 + 2 * pairs
}

pub fn rx_handler(ring: Arc<VioifRxRing>, up: Arc<dyn MacUpcalls>) -> IrqHandler {
    alloc::boxed::Box::new(move || ring.interrupt(&*up))
}

pub fn tx_handler(ring: Arc<VioifTxRing>, up: Arc<dyn MacUpcalls>) -> IrqHandler {
    alloc::boxed::Box::new(move || ring.interrupt(&*up))
}

/// Configuration change: the device asks for a reset, or the link moved.
/// A reset request is handed to Rx ring 0's poll path (`rx_ready(0)`),
/// which performs it in thread context.
pub fn config_handler(common: Arc<dyn Mmio>, device: Arc<dyn Mmio>, features: u64, shared: Arc<Shared>, up: Arc<dyn MacUpcalls>) -> IrqHandler {
    alloc::boxed::Box::new(move || {
        shared.config_interrupts.fetch_add(1, Ordering::Relaxed);
        if read_status(&*common) & status::DEVICE_NEEDS_RESET != 0 && !shared.needs_reset.swap(true, Ordering::AcqRel) {
            up.rx_ready(0);
        }
        let link: LinkState = config::link(&*device, features);
        let old = shared.link.swap(link_code(link), Ordering::AcqRel);
        if old != link_code(link) {
            shared.link_changes.fetch_add(1, Ordering::Relaxed);
            up.link_changed(link);
        }
    })
}
