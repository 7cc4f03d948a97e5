//! Link properties in the data path: when `dladm set-linkprop` (or
//! `create-vnic -p`) changes a link, this applies `maxbw` and `protection`
//! to its MAC client and `priority` to the threads that carry the link's
//! traffic: the Rx lanes of the hardware rings it owns (a physical link's
//! default group, a VNIC's own group), its Tx drain thread and the thread
//! of its IP instance. A software-classified VNIC owns no rings, so its
//! priority moves its IP instance's thread only.

use alloc::sync::Arc;
use alloc::vec::Vec;

use arbalest_mac::props::{LinkProps, Priority as LinkPriority};
use arbalest_mac::Mac;

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

/// The threads that carry `link`'s traffic.
pub fn link_threads(link: &str) -> Vec<Arc<Thread>> {
    let mut v = Vec::new();
    if let Some((mac, rings)) = owned_rings(link) {
        if let Some(st) = super::state() {
            for l in st.lanes.iter().filter(|l| l.link() == mac.link() && rings.contains(&l.ring())) {
                v.extend(l.threads());
            }
        }
        if mac.link() == link {
            v.extend(super::txlane::thread(link));
        }
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
    let prio = sched_priority(p.priority);
    for t in link_threads(link) {
        sched::set_priority(&t, prio);
    }
}
