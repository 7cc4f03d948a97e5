//! Rx lanes: one kernel thread per hardware Rx ring, bound to the CPU the
//! ring's interrupt targets. The interrupt (through the driver and
//! `MacUpcalls::rx_ready`) only marks the lane and wakes its thread; the
//! thread polls the ring in chains of bounded size until it is empty, then
//! the MAC layer re-enables the ring's interrupt.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arbalest_mac::{LaneResult, Mac};

use crate::sched::{self, Priority, WaitQueue};

/// One Rx lane.
pub struct Lane {
    mac: Arc<Mac>,
    ring: usize,
    pending: AtomicBool,
    /// Set by `nicctl hold`: the lane leaves its ring alone (interrupt off,
    /// nothing polled) so packets accumulate in the hardware ring.
    held: AtomicBool,
    wq: WaitQueue,
    /// Times the lane thread was woken.
    pub wakeups: AtomicU64,
    /// Service passes that delivered packets.
    pub passes: AtomicU64,
}

impl Lane {
    /// Creates the lane of `mac`'s Rx ring `ring` and starts its thread on
    /// `cpu`.
    pub fn start(mac: Arc<Mac>, ring: usize, cpu: usize) -> Option<Arc<Lane>> {
        let lane = Arc::new(Lane {
            mac,
            ring,
            pending: AtomicBool::new(true),
            held: AtomicBool::new(false),
            wq: WaitQueue::new(),
            wakeups: AtomicU64::new(0),
            passes: AtomicU64::new(0),
        });
        let l = lane.clone();
        let name = alloc::format!("{}/rx{}", lane.mac.link(), ring);
        // Medium, like the stack thread it feeds: under a flood a High lane
        // would starve the consumer of its packets (Crossbow bounds this with
        // the SRS; that arrives with the MAC-layer issue).
        sched::spawn(&name, Priority::Medium, Some(cpu), move || l.run())?;
        Some(lane)
    }

    /// The link this lane belongs to.
    pub fn link(&self) -> &str {
        self.mac.link()
    }

    /// The Rx ring it serves.
    pub fn ring(&self) -> usize {
        self.ring
    }

    /// Whether the lane is held.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    /// Stops servicing the ring and switches its interrupt off.
    pub fn hold(&self) {
        self.held.store(true, Ordering::Release);
        if let Some(r) = self.mac.provider().rx_ring(self.ring) {
            r.intr_disable();
        }
    }

    /// Resumes servicing (the lane polls what accumulated, then re-enables
    /// the interrupt).
    pub fn release(&self) {
        self.held.store(false, Ordering::Release);
        self.wake();
    }

    /// Called from interrupt context: the ring has work.
    pub fn wake(&self) {
        self.pending.store(true, Ordering::Release);
        self.wq.wake_all();
    }

    fn run(&self) {
        loop {
            self.wq.wait_until(|| self.pending.load(Ordering::Acquire) && !self.held.load(Ordering::Acquire));
            self.pending.store(false, Ordering::Release);
            self.wakeups.fetch_add(1, Ordering::Relaxed);
            let mut rounds = 0u32;
            while !self.held.load(Ordering::Acquire) && let LaneResult::More(_) = self.mac.rx_lane_service(self.ring) {
                self.passes.fetch_add(1, Ordering::Relaxed);
                rounds += 1;
                if rounds % 16 == 0 {
                    // Stay fair to equal-priority lanes on this CPU.
                    sched::yield_now();
                }
            }
        }
    }
}
