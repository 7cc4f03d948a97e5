//! Every buffer pool of the MAC layer and the drivers below it, for the
//! shell's pool listing (`nicctl pools`): a NIC's Tx pool (shared by its
//! VNICs), the Rx pool of each of its rings, and each etherstub's pool.
//! With traffic stopped a pool's buffers in use stay constant — posted Rx
//! buffers, Tx buffers waiting for the NIC to report completion — so a
//! number that grows across link changes is a leak.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::buf::BufPool;

/// One pool as the listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolView {
    /// The link it belongs to.
    pub link: String,
    /// `tx`, `rx0`, `rx1`, ... or `stub` (an etherstub's).
    pub name: String,
    pub buf_size: usize,
    pub capacity: usize,
    pub free: usize,
    /// Allocations so far, and allocations refused because it was empty.
    pub allocs: u64,
    pub empty: u64,
}

impl PoolView {
    fn of(link: &str, name: String, p: &Arc<BufPool>) -> PoolView {
        PoolView {
            link: String::from(link),
            name,
            buf_size: p.buf_size(),
            capacity: p.capacity(),
            free: p.available(),
            allocs: p.stats.allocs.load(Ordering::Relaxed),
            empty: p.stats.empty.load(Ordering::Relaxed),
        }
    }

    /// Buffers not in the pool.
    pub fn in_use(&self) -> usize {
        self.capacity - self.free
    }
}

/// Every pool: each NIC's Tx pool and its rings' Rx pools, then each
/// etherstub's pool.
pub fn all() -> Vec<PoolView> {
    let mut v = Vec::new();
    for m in crate::mac::links() {
        v.push(PoolView::of(m.link(), String::from("tx"), m.tx_pool()));
        for i in 0..m.info().rx_rings {
            if let Some(p) = m.provider().rx_ring(i).and_then(|r| r.pool()) {
                v.push(PoolView::of(m.link(), alloc::format!("rx{i}"), &p));
            }
        }
    }
    for s in crate::link::etherstubs() {
        v.push(PoolView::of(s.name(), String::from("stub"), s.pool()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeNic;

    #[test]
    fn a_nic_lists_its_tx_pool_and_every_tx_allocation_shows() {
        let nic = FakeNic::new(2, 1);
        let mac = nic.register().unwrap();
        let before = all().into_iter().find(|p| p.link == mac.link() && p.name == "tx").unwrap();
        assert_eq!(before.free, before.capacity);
        let m = mac.alloc_tx(100).unwrap();
        let held = all().into_iter().find(|p| p.link == mac.link() && p.name == "tx").unwrap();
        assert_eq!(held.in_use(), 1);
        assert_eq!(held.allocs, before.allocs + 1);
        drop(m);
        let after = all().into_iter().find(|p| p.link == mac.link() && p.name == "tx").unwrap();
        assert_eq!(after.in_use(), 0);
    }
}
