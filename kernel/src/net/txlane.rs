//! The Tx drain thread of a link: when the driver resumes a Tx ring that
//! had refused packets, this thread sends what waits in the ring's backlog
//! (the driver's Tx path takes locks interrupt context must not), and
//! when that unblocks the rings it kicks the IP instances that were held
//! back. It runs at the link's `priority` and on the first of its `cpus`.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arbalest_mac::Mac;

use super::lane::Lane;
use crate::sched::{self, Thread, WaitQueue};

struct TxLane {
    link: String,
    mac: Arc<Mac>,
    pending: AtomicBool,
    wq: WaitQueue,
    /// Where the thread should run; `home` where it was started.
    cpu: AtomicUsize,
    home: AtomicUsize,
    thread: spin::Once<Arc<Thread>>,
}

/// The drain lane of each link.
static LANES: spin::Mutex<Vec<Arc<TxLane>>> = spin::Mutex::new(Vec::new());

fn lane(link: &str) -> Option<Arc<TxLane>> {
    crate::arch::without_interrupts(|| LANES.lock().iter().find(|l| l.link == link).cloned())
}

/// The Tx drain thread of `link`.
pub fn thread(link: &str) -> Option<Arc<Thread>> {
    lane(link).and_then(|l| l.thread.get().cloned())
}

/// Moves `link`'s drain thread to `cpu` (`None`: back where it started).
/// Returns the CPU it is asked to run on.
pub fn place(link: &str, cpu: Option<usize>) -> Option<usize> {
    let l = lane(link)?;
    let to = cpu.unwrap_or_else(|| l.home.load(Ordering::Acquire));
    l.cpu.store(to, Ordering::Release);
    l.wq.wake_all();
    Some(to)
}

/// Starts the Tx drain thread of `mac`. False if out of memory.
pub fn start(mac: &Arc<Mac>) -> bool {
    let lane = Arc::new(TxLane {
        link: String::from(mac.link()),
        mac: mac.clone(),
        pending: AtomicBool::new(false),
        wq: WaitQueue::new(),
        cpu: AtomicUsize::new(usize::MAX),
        home: AtomicUsize::new(usize::MAX),
        thread: spin::Once::new(),
    });
    let w = Arc::downgrade(&lane);
    mac.set_tx_wakeup(Arc::new(move |_ring| {
        if let Some(l) = w.upgrade() {
            l.pending.store(true, Ordering::Release);
            l.wq.wake_all();
        }
    }));
    let name = alloc::format!("{}/tx", mac.link());
    let prio = crate::net::linkprops::sched_priority(arbalest_mac::props::get(mac.link()).priority);
    let l = lane.clone();
    let t = sched::spawn(&name, prio, None, move || loop {
        Lane::follow(&l.cpu);
        l.wq.wait_until(|| l.pending.load(Ordering::Acquire) || Lane::misplaced(&l.cpu));
        l.pending.store(false, Ordering::Release);
        let was_blocked = l.mac.tx_blocked();
        for ring in 0..l.mac.tx_rings() {
            l.mac.tx_service(ring);
        }
        if was_blocked && !l.mac.tx_blocked() {
            // Clients held back (`MacClient::tx_ready`) may send again.
            super::ip::kick_users_of(&l.mac);
        }
    });
    match t {
        Some(t) => {
            lane.home.store(t.cpu(), Ordering::Release);
            lane.cpu.store(t.cpu(), Ordering::Release);
            lane.thread.call_once(|| t);
            crate::arch::without_interrupts(|| LANES.lock().push(lane));
            true
        }
        None => false,
    }
}
