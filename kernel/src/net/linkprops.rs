//! Link properties in the data path: when `dladm set-linkprop` (or
//! `create-vnic -p`) changes a link, this applies `maxbw` and `protection`
//! to its MAC client and `priority` to the threads that carry the link's
//! traffic: the Rx lanes of the hardware rings it owns (a physical link's
//! default group, a VNIC's own group), its Tx drain thread and the thread
//! of its IP instance; `cpus` moves those same threads (and the rings'
//! interrupts, where the NIC can) onto the listed CPUs and records what it
//! did as `cpus-effective`. A software-classified VNIC owns no rings, so
//! its priority and CPUs move its IP instance's thread only.

use alloc::sync::Arc;
use alloc::vec::Vec;

use arbalest_mac::props::{self, LinkProps, Priority as LinkPriority};
use arbalest_mac::Mac;

use super::lane::Lane;
use crate::sched::{self, Priority, Thread};

/// The scheduler priority of a link priority.
pub fn sched_priority(p: LinkPriority) -> Priority {
    match p {
        LinkPriority::Low => Priority::Low,
        LinkPriority::Medium => Priority::Medium,
        LinkPriority::High => Priority::High,
    }
}

/// The lower MAC and the Rx rings `link` owns, if any.
fn owned_rings(link: &str) -> Option<(Arc<Mac>, Vec<usize>)> {
    if let Some(mac) = arbalest_mac::mac::by_name(link) {
        let owned: Vec<usize> = {
            let groups = &mac.info().rx_groups;
            let taken: Vec<usize> = (1..groups.len())
                .filter(|&g| !mac.group_clients(g).is_empty())
                .flat_map(|g| groups[g].rings.iter().copied())
                .collect();
            (0..mac.info().rx_rings).filter(|r| !taken.contains(r)).collect()
        };
        return Some((mac, owned));
    }
    let client = arbalest_mac::link::datalink(link)?.client()?;
    let group = client.hw_group()?;
    let mac = client.lower()?.wire()?;
    let rings = mac.info().rx_groups.get(group)?.rings.clone();
    Some((mac, rings))
}

/// The Rx lanes of the rings `link` owns, and whether `link` is the
/// physical link itself.
fn owned_lanes(link: &str) -> (Vec<Arc<Lane>>, bool) {
    let Some((mac, rings)) = owned_rings(link) else { return (Vec::new(), false) };
    let lanes = match super::state() {
        Some(st) => st.lanes.iter().filter(|l| l.link() == mac.link() && rings.contains(&l.ring())).cloned().collect(),
        None => Vec::new(),
    };
    (lanes, mac.link() == link)
}

/// Places every thread of `link` on its `cpus` (or back home when the
/// list is empty) and notes the CPUs used as `cpus-effective`.
pub fn apply_cpus(link: &str, cpus: &[usize]) {
    let list = (!cpus.is_empty()).then_some(cpus);
    let (lanes, phys) = owned_lanes(link);
    let mut used = Vec::new();
    for (slot, l) in lanes.iter().enumerate() {
        used.extend(l.place(list, slot));
    }
    if phys {
        used.extend(super::txlane::place(link, list.map(|c| c[0])));
    }
    if let Some(ipif) = super::ip::interface(link) {
        used.push(ipif.place(list.map(|c| c[0])));
    }
    used.sort_unstable();
    used.dedup();
    props::note_effective_cpus(link, list.map(|_| used));
}

/// The threads that carry `link`'s traffic.
pub fn link_threads(link: &str) -> Vec<Arc<Thread>> {
    let mut v = Vec::new();
    let (lanes, phys) = owned_lanes(link);
    for l in &lanes {
        v.extend(l.threads());
    }
    if phys {
        v.extend(super::txlane::thread(link));
    }
    if let Some(ipif) = super::ip::interface(link) {
        v.extend(ipif.thread());
    }
    v
}

/// The hook registered with `props::on_change`.
pub fn apply(link: &str, p: &LinkProps) {
    if let Some(c) = arbalest_mac::link::datalink(link).and_then(|l| l.client()) {
        c.set_maxbw(p.maxbw);
        c.set_protection(p.client_protection());
    }
    // A VNIC's `rxrings` may have moved a ring group between it and its
    // physical link: the physical link's lanes first, then the link's.
    let phys = arbalest_mac::link::datalink(link)
        .and_then(|l| l.client())
        .filter(|c| c.is_vnic())
        .and_then(|c| c.lower())
        .and_then(|s| s.wire());
    if let Some(m) = phys {
        place(m.link(), &props::get(m.link()));
    }
    place(link, p);
}

/// Gives `link`'s threads its priority and CPUs.
fn place(link: &str, p: &LinkProps) {
    let prio = sched_priority(p.priority);
    for t in link_threads(link) {
        sched::set_priority(&t, prio);
    }
    apply_cpus(link, &p.cpus);
}
