//! Networking glue: finds the NICs on the PCI bus, binds drivers, registers
//! each NIC with the MAC layer, starts one Rx lane per hardware ring on the
//! ring's CPU, and attaches an IP stack instance to the primary link.

pub mod bwtick;
pub mod cmds;
pub mod history;
pub mod ip;
pub mod lane;
pub mod linkprops;
pub mod txlane;
pub mod nicctl;
pub mod squeue;
pub mod fe;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use arbalest_drivers::pci::{self, Bdf, PciDevice};
use arbalest_drivers::igb::{Igb, Tunables as IgbTunables};
use arbalest_drivers::virtio::net::VirtioNet;
use arbalest_mac::MacProvider;
use spin::Once;

use crate::dma::KernelDma;
use crate::hal::KernelHal;
use crate::pcicfg::KernelPciConfig;

/// A PCI function and the driver instance bound to it.
pub struct Bound {
    pub bdf: Bdf,
    pub device: String,
}

/// What networking bring-up found.
pub struct NetState {
    pub pci: KernelPciConfig,
    pub devices: Vec<PciDevice>,
    pub bound: Vec<Bound>,
    pub lanes: Vec<Arc<lane::Lane>>,
}

impl NetState {
    /// The lane of `link`'s Rx ring `ring`.
    pub fn lane(&self, link: &str, ring: usize) -> Option<&Arc<lane::Lane>> {
        self.lanes.iter().find(|l| l.link() == link && l.ring() == ring)
    }
}

static STATE: Once<NetState> = Once::new();

/// The state found at boot.
pub fn state() -> Option<&'static NetState> {
    STATE.get()
}

/// The NIC drivers: the first whose `matches` accepts a function probes it.
/// `igb.vmdq=N` (2..=8) on the kernel command line puts igb NICs in VMDq
/// mode (N pools, each a ring group of its own) instead of RSS mode; QEMU's
/// igb cannot do both at once.
fn probe(dev: &PciDevice, cfg: &KernelPciConfig, hal: &Arc<dyn arbalest_drivers::hal::Hal>) -> Option<Arc<dyn MacProvider>> {
    if VirtioNet::matches(dev) {
        return match VirtioNet::probe(dev, cfg, hal.clone()) {
            Ok(n) => Some(n),
            Err(e) => {
                log::error!("vioif: {}: probe failed: {e:?}", dev.bdf);
                None
            }
        };
    }
    if Igb::matches(dev) {
        let cmd = crate::kmain::cmdline();
        let vmdq = cmd.get("igb.vmdq").and_then(|v| v.parse().ok()).unwrap_or(0);
        let tun = IgbTunables { vmdq_pools: vmdq, ..IgbTunables::default() };
        return match Igb::probe_with(dev, cfg, hal.clone(), tun) {
            Ok(n) => Some(n),
            Err(e) => {
                log::error!("igb: {}: probe failed: {e:?}", dev.bdf);
                None
            }
        };
    }
    None
}

/// Enumerates PCI, binds drivers and starts every NIC found.
pub fn init(acpi: &crate::acpi::AcpiInfo) {
    arbalest_mac::clock::set(crate::time::clock::now_ns);
    // No thread is preempted while it holds a data-path spin lock, so
    // lanes may run at different priorities (link `priority`).
    arbalest_mac::sync::set_preempt_hooks(arbalest_mac::sync::PreemptHooks {
        disable: crate::sched::preempt_disable,
        enable: crate::sched::preempt_enable,
    });
    // Link properties take effect in the data path as they change.
    arbalest_mac::props::on_change(Arc::new(linkprops::apply));
    if !bwtick::start() {
        log::error!("net: no memory for the bandwidth tick");
    }
    if !history::start() {
        log::error!("net: no memory for the usage history sampler");
    }
    let cfg = KernelPciConfig::new(acpi);
    let devices = pci::enumerate(&cfg, 0..=255);
    log::info!("pci: {} functions ({})", devices.len(), if cfg.uses_ecam() { "ECAM" } else { "port I/O" });
    let hal: Arc<dyn arbalest_drivers::hal::Hal> = Arc::new(KernelHal);
    let mut bound = Vec::new();
    let mut lanes = Vec::new();
    for dev in devices.iter() {
        let Some(provider) = probe(dev, &cfg, &hal) else { continue };
        let mac = match arbalest_mac::mac::register(provider, Arc::new(KernelDma)) {
            Ok(m) => m,
            Err(e) => {
                log::error!("{}: MAC registration failed: {e:?}", dev.bdf);
                continue;
            }
        };
        for ring in 0..mac.info().rx_rings {
            match lane::Lane::start(mac.clone(), ring) {
                Some(l) => lanes.push(l),
                None => log::error!("{}: no memory for the lane of ring {ring}", mac.link()),
            }
        }
        if !txlane::start(&mac) {
            log::error!("{}: no memory for the Tx drain thread", mac.link());
        }
        if let Err(e) = mac.start() {
            log::error!("{}: start failed: {e:?}", mac.link());
            continue;
        }
        log::info!(
            "{}: {} at {}, {} Rx/{} Tx rings, link {}",
            mac.link(),
            mac.device(),
            dev.bdf,
            mac.info().rx_rings,
            mac.info().tx_rings,
            mac.link_state().name()
        );
        bound.push(Bound { bdf: dev.bdf, device: String::from(mac.device()) });
    }
    STATE.call_once(|| NetState { pci: cfg, devices, bound, lanes });
    if let Some(v) = crate::kmain::cmdline().get("ip") {
        ip::configure_from_cmdline(v);
    }
}
