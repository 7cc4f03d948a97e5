//! The Tx drain thread of a link: when the driver resumes a Tx ring that
//! had refused packets, this thread sends what waits in the ring's backlog
//! (the driver's Tx path takes locks interrupt context must not).

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use arbalest_mac::Mac;

use alloc::vec::Vec;

use crate::sched::{self, Thread, WaitQueue};

struct TxLane {
    mac: Arc<Mac>,
    pending: AtomicBool,
    wq: WaitQueue,
}

/// The drain thread of each link.
static THREADS: spin::Mutex<Vec<(alloc::string::String, Arc<Thread>)>> = spin::Mutex::new(Vec::new());

/// The Tx drain thread of `link`.
pub fn thread(link: &str) -> Option<Arc<Thread>> {
    crate::arch::without_interrupts(|| THREADS.lock().iter().find(|(l, _)| l == link).map(|(_, t)| t.clone()))
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
    let prio = crate::net::linkprops::sched_priority(arbalest_mac::props::get(mac.link()).priority);
    let link = alloc::string::String::from(mac.link());
    let t = sched::spawn(&name, prio, None, move || loop {
        lane.wq.wait_until(|| lane.pending.load(Ordering::Acquire));
        lane.pending.store(false, Ordering::Release);
        for ring in 0..lane.mac.tx_rings() {
            lane.mac.tx_service(ring);
        }
    });
    match t {
        Some(t) => {
            crate::arch::without_interrupts(|| THREADS.lock().push((link, t)));
            true
        }
        None => false,
    }
}
