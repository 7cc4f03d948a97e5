//! The virtio-net device configuration block (virtio 1.x, 5.1.4):
//!
//! ```text
//! 0  mac[6]                  (VIRTIO_NET_F_MAC)
//! 6  status le16             (VIRTIO_NET_F_STATUS): bit 0 link up
//! 8  max_virtqueue_pairs le16 (VIRTIO_NET_F_MQ)
//! 10 mtu le16                (VIRTIO_NET_F_MTU)
//! 12 speed le32, 16 duplex u8 (VIRTIO_NET_F_SPEED_DUPLEX)
//! ```

use arbalest_mac::{Duplex, LinkState, MacAddr};

use crate::hal::Mmio;
use crate::pci::Bdf;

use super::features;

const MAC: usize = 0;
const STATUS: usize = 6;
const MAX_VIRTQUEUE_PAIRS: usize = 8;
const SPEED: usize = 12;
const DUPLEX: usize = 16;

pub const S_LINK_UP: u16 = 1;
pub const S_ANNOUNCE: u16 = 2;

/// Largest `max_virtqueue_pairs` the spec allows.
pub const MAX_PAIRS: u16 = 0x8000;

pub fn mac(dev: &dyn Mmio) -> MacAddr {
    let mut m = [0; 6];
    for (i, b) in m.iter_mut().enumerate() {
        *b = dev.read8(MAC + i);
    }
    m
}

/// A locally administered address for devices without `MAC`, stable per
/// PCI slot.
pub fn fallback_mac(bdf: Bdf) -> MacAddr {
    [0x02, 0x08, 0x20, bdf.bus, bdf.dev, bdf.func]
}

/// Link state from the status field (`Up` when `STATUS` was not
/// negotiated: the spec says the link is then assumed up).
pub fn link(dev: &dyn Mmio, feats: u64) -> LinkState {
    if feats & features::STATUS == 0 {
        return LinkState::Up;
    }
    if dev.read16(STATUS) & S_LINK_UP != 0 { LinkState::Up } else { LinkState::Down }
}

/// Queue pairs the device supports (1 without `MQ`; clamped to the spec).
pub fn max_pairs(dev: &dyn Mmio, feats: u64) -> u16 {
    if feats & features::MQ == 0 {
        return 1;
    }
    dev.read16(MAX_VIRTQUEUE_PAIRS).clamp(1, MAX_PAIRS)
}

/// Speed in Mbit/s and duplex, when the device reports them.
pub fn speed_duplex(dev: &dyn Mmio, feats: u64) -> Option<(u64, Duplex)> {
    if feats & features::SPEED_DUPLEX == 0 {
        return None;
    }
    let speed = dev.read32(SPEED);
    if speed == 0 || speed == u32::MAX {
        return None;
    }
    let duplex = match dev.read8(DUPLEX) {
        1 => Duplex::Full,
        0 => Duplex::Half,
        _ => Duplex::Unknown,
    };
    Some((speed as u64, duplex))
}
