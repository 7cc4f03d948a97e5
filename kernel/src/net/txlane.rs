//! The Tx drain thread of a link: when the driver resumes a Tx ring that
//! had refused packets, this thread sends what waits in the ring's backlog
//! (the driver's Tx path takes locks interrupt context must not).

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use arbalest_mac::Mac;

use crate::sched::{self, Priority, WaitQueue};

struct TxLane {
    mac: Arc<Mac>,
    pending: AtomicBool,
    wq: WaitQueue,
}

/// Starts the Tx drain thread of `mac`. False if out of memory.
pub fn start(mac: &Arc<Mac>) -> bool {
    let lane = Arc::new(TxLane { mac: mac.clone(), pending: AtomicBool::new(false), wq: WaitQueue::new() });
    let w = Arc::downgrade(&lane);
    mac.set_tx_wakeup(Arc::new(move |_ring| {
        if let Some(l) = w.upgrade() {
            l.pending.store(true, Ordering::Release);
            l.wq.wake_all();
        }
    }));
    let name = alloc::format!("{}/tx", mac.link());
    sched::spawn(&name, Priority::Medium, None, move || loop {
        lane.wq.wait_until(|| lane.pending.load(Ordering::Acquire));
        lane.pending.store(false, Ordering::Release);
        for ring in 0..lane.mac.tx_rings() {
            lane.mac.tx_service(ring);
        }
    })
    .is_some()
}
