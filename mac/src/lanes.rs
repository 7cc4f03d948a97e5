//! Which hardware lanes (Rx rings and their soft ring sets) belong to which
//! data link, for `dlstat` and the read-only link properties: a physical
//! link owns every Rx ring except those in ring groups reserved by a
//! hardware-classified VNIC; such a VNIC owns the rings of its group; a
//! software-classified VNIC and an etherstub own none.
//!
//! Everything here reads the MAC's state through its public API and never
//! changes it.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::link::Datalink;
use crate::mac::Mac;
use crate::srs::RxSrs;

/// The Rx rings of `m` in groups (other than the default group 0) that a
/// client has reserved: hardware lanes of VNICs, not of the link itself.
pub fn reserved_rx_rings(m: &Mac) -> Vec<usize> {
    let info = m.info();
    let mut v: Vec<usize> = (1..info.rx_groups.len())
        .filter(|&g| !m.group_clients(g).is_empty())
        .filter_map(|g| info.rx_groups.get(g))
        .flat_map(|gi| gi.rings.iter().copied())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The Rx rings link `link` owns (see the module documentation).
pub fn rx_rings(link: &Datalink) -> Vec<usize> {
    match link {
        Datalink::Phys(m) => {
            let reserved = reserved_rx_rings(m);
            (0..m.info().rx_rings).filter(|r| !reserved.contains(r)).collect()
        }
        Datalink::Vnic(c) => match (c.hw_group(), c.lower().and_then(|s| s.wire())) {
            (Some(g), Some(m)) => m.info().rx_groups.get(g).map(|gi| gi.rings.clone()).unwrap_or_default(),
            _ => Vec::new(),
        },
        Datalink::Etherstub(_) => Vec::new(),
    }
}

/// The NIC below a link: itself for a physical link, the wire of a VNIC's
/// lower link; `None` on an etherstub.
pub fn wire_of(link: &Datalink) -> Option<Arc<Mac>> {
    match link {
        Datalink::Phys(m) => Some(m.clone()),
        Datalink::Vnic(c) => c.lower().and_then(|s| s.wire()),
        Datalink::Etherstub(_) => None,
    }
}

/// The soft ring sets of the Rx rings `link` owns, in ring order.
pub fn rx_lanes(link: &Datalink) -> Vec<Arc<RxSrs>> {
    let Some(m) = wire_of(link) else { return Vec::new() };
    let rings = rx_rings(link);
    m.rx_srs().iter().filter(|s| rings.contains(&s.ring)).cloned().collect()
}

/// Whether `link` is a VNIC with a hardware lane (its own ring group).
pub fn is_hw_vnic(link: &Datalink) -> bool {
    matches!(link, Datalink::Vnic(c) if c.hw_group().is_some() && c.lower().and_then(|s| s.wire()).is_some())
}

/// The most Rx rings a VNIC over `m` could own: the largest reservable
/// group (one with rings and a unicast slot, other than group 0).
pub fn vnic_rx_rings_max(m: &Mac) -> usize {
    let info = m.info();
    info.rx_groups.iter().skip(1).filter(|g| g.unicast_slots > 0).map(|g| g.rings.len()).max().unwrap_or(0)
}

/// The most Tx rings a VNIC over `m` could own (the largest Tx group
/// other than group 0).
pub fn vnic_tx_rings_max(m: &Mac) -> usize {
    m.info().tx_groups.iter().skip(1).map(|g| g.rings.len()).max().unwrap_or(0)
}

/// Rx rings of `m` in reservable groups no client holds yet.
pub fn rx_rings_available(m: &Mac) -> usize {
    let info = m.info();
    (1..info.rx_groups.len())
        .filter(|&g| m.group_clients(g).is_empty())
        .filter_map(|g| info.rx_groups.get(g))
        .filter(|gi| gi.unicast_slots > 0)
        .map(|gi| gi.rings.len())
        .sum()
}

/// Tx rings of `m` outside the default Tx group (none are reserved yet:
/// every client transmits through the default group).
pub fn tx_rings_available(m: &Mac) -> usize {
    m.info().tx_groups.iter().skip(1).map(|g| g.rings.len()).sum()
}
