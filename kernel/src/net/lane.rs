//! Hardware lanes: the kernel threads of one Rx soft ring set, all bound
//! to the CPU the ring's interrupt targets — the poll thread (its pickups
//! processed inline; in poll mode only while the worker is not processing,
//! as illumos' `mac_latency_optimize`, else handed to the worker),
//! the worker (fans the queue out to soft rings), and one drain thread per
//! soft ring placed on another CPU by the link's fanout. The state machine
//! itself is `arbalest_mac::RxSrs`; this file only runs it.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arbalest_mac::{Mac, PollStep, RxSrs};

use crate::sched::{self, Thread, WaitQueue};

/// One Rx lane.
pub struct Lane {
    mac: Arc<Mac>,
    ring: usize,
    srs: Arc<RxSrs>,
    /// Set by `nicctl hold`: the lane leaves its ring alone (interrupt off,
    /// nothing polled) so packets accumulate in the hardware ring.
    held: AtomicBool,
    poll_wq: WaitQueue,
    worker_wq: WaitQueue,
    softring_wq: Vec<WaitQueue>,
    /// Its threads (poll, worker, soft rings), for `priority`.
    threads: spin::Mutex<Vec<Arc<Thread>>>,
    /// Where the poll thread and the worker should run (`cpus`; the
    /// ring's own CPU by default). Each thread moves itself when it sees
    /// its target change.
    poll_cpu: AtomicUsize,
    /// Where each soft ring's thread should run.
    softring_cpu: Vec<AtomicUsize>,
}

impl Lane {
    /// Starts the threads of `mac`'s Rx ring `ring`.
    pub fn start(mac: Arc<Mac>, ring: usize) -> Option<Arc<Lane>> {
        let srs = mac.rx_srs().get(ring)?.clone();
        let softring_cpu = srs.softrings().iter().map(|sr| AtomicUsize::new(sr.cpu)).collect();
        let poll_cpu = AtomicUsize::new(srs.cpu);
        let lane = Arc::new(Lane {
            softring_wq: srs.softrings().iter().map(|_| WaitQueue::new()).collect(),
            mac,
            ring,
            srs,
            held: AtomicBool::new(false),
            poll_wq: WaitQueue::new(),
            worker_wq: WaitQueue::new(),
            threads: spin::Mutex::new(Vec::new()),
            poll_cpu,
            softring_cpu,
        });
        let (p, w) = (Arc::downgrade(&lane), Arc::downgrade(&lane));
        lane.srs.set_wakeups(
            Arc::new(move || {
                if let Some(l) = p.upgrade() {
                    l.poll_wq.wake_all();
                }
            }),
            Arc::new(move || {
                if let Some(l) = w.upgrade() {
                    l.worker_wq.wake_all();
                }
            }),
        );
        let cpu = lane.srs.cpu;
        let link = lane.mac.link();
        let prio = crate::net::linkprops::sched_priority(arbalest_mac::props::get(link).priority);
        let mut threads = Vec::new();
        for (i, sr) in lane.srs.softrings().iter().enumerate() {
            if sr.cpu == cpu {
                continue; // drained inline by the worker
            }
            let l = Arc::downgrade(&lane);
            sr.set_wakeup(Arc::new(move || {
                if let Some(l) = l.upgrade() {
                    l.softring_wq[i].wake_all();
                }
            }));
            let t = lane.clone();
            let name = alloc::format!("{link}/rx{ring}/{}{}", sr.proto.name(), sr.index);
            threads.push(sched::spawn(&name, prio, Some(sr.cpu), move || t.softring_thread(i))?);
        }
        let t = lane.clone();
        threads.push(sched::spawn(&alloc::format!("{link}/rx{ring}/poll"), prio, Some(cpu), move || t.poll_thread())?);
        let t = lane.clone();
        threads.push(sched::spawn(&alloc::format!("{link}/rx{ring}/worker"), prio, Some(cpu), move || t.worker_thread())?);
        *lane.threads.lock() = threads;
        Some(lane)
    }

    /// The link this lane belongs to.
    pub fn link(&self) -> &str {
        self.mac.link()
    }

    /// Its kernel threads.
    pub fn threads(&self) -> Vec<Arc<Thread>> {
        crate::arch::without_interrupts(|| self.threads.lock().clone())
    }

    /// Places the lane (link `cpus`): with a CPU list, the poll thread,
    /// the worker and the ring's interrupt go to `cpus[slot % n]` (`slot`:
    /// the lane's position among the link's lanes) and the soft rings'
    /// threads to the CPUs after it in the list; without one, everything
    /// returns to the ring's own CPU and the soft rings' original CPUs.
    /// Returns the CPUs the lane's threads are asked to run on.
    pub fn place(&self, cpus: Option<&[usize]>, slot: usize) -> Vec<usize> {
        let (poll, soft): (usize, Vec<usize>) = match cpus {
            Some(c) if !c.is_empty() => {
                let n = c.len();
                (c[slot % n], (0..self.softring_cpu.len()).map(|i| c[(slot + 1 + i) % n]).collect())
            }
            _ => (self.srs.cpu, self.srs.softrings().iter().map(|sr| sr.cpu).collect()),
        };
        self.poll_cpu.store(poll, Ordering::Release);
        let mut used = alloc::vec![poll];
        for (i, c) in soft.into_iter().enumerate() {
            self.softring_cpu[i].store(c, Ordering::Release);
            // A soft ring on the ring's own CPU has no thread: the worker
            // drains it inline, wherever the worker runs.
            if self.srs.softrings()[i].cpu != self.srs.cpu {
                used.push(c);
            }
        }
        // The interrupt follows the poll thread where the NIC can move it.
        if let Some(r) = self.mac.provider().rx_ring(self.ring) {
            if r.cpu() != poll && r.set_cpu(poll).is_err() {
                log::warn!("{}: ring {} interrupt stays on cpu {}", self.link(), self.ring, r.cpu());
            }
        }
        self.poll_wq.wake_all();
        self.worker_wq.wake_all();
        for wq in &self.softring_wq {
            wq.wake_all();
        }
        // Kick the SRS once so that a pickup lost while the interrupt
        // moved is made.
        self.srs.interrupt();
        used.sort_unstable();
        used.dedup();
        used
    }

    /// Whether the thread watching `target` should move (read in wait
    /// conditions: atomics only). `usize::MAX`: no target yet.
    pub(crate) fn misplaced(target: &AtomicUsize) -> bool {
        let t = target.load(Ordering::Acquire);
        t != usize::MAX && t != crate::percpu::cpu_id()
    }

    /// Moves the calling thread to `target` if it is elsewhere.
    pub(crate) fn follow(target: &AtomicUsize) {
        let t = target.load(Ordering::Acquire);
        if t != usize::MAX && t != sched::current_cpu() && !sched::migrate_self(t) {
            log::warn!("lane: cannot move to cpu {t}");
        }
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

    /// Resumes servicing: the poll thread picks up what accumulated and the
    /// SRS re-enables the interrupt when the ring is empty.
    pub fn release(&self) {
        self.held.store(false, Ordering::Release);
        self.srs.interrupt();
    }

    fn poll_thread(&self) {
        let mut again = 0u32;
        loop {
            Self::follow(&self.poll_cpu);
            if self.is_held() {
                self.poll_wq.wait_until(|| !self.is_held() || Self::misplaced(&self.poll_cpu));
                continue;
            }
            let step = self.mac.rx_poll_step(self.ring);
            match step {
                PollStep::Again => {
                    if arbalest_mac::srs::tunables::LATENCY_OPT.get() != 0 {
                        // illumos `SRS_POLL_PROC`: process the pickup here
                        // unless the worker is at it.
                        while self.mac.rx_worker_step(self.ring) {}
                        if self.srs.queued() > 0 {
                            self.srs.wake_worker();
                        }
                    }
                    again += 1;
                    if again % 16 == 0 {
                        // Let the worker and other lanes on this CPU run.
                        sched::yield_now();
                    }
                }
                PollStep::Inline => {
                    // Interrupt mode: process the pickup here, then re-arm
                    // (which turns polling on if a backlog built meanwhile).
                    while self.mac.rx_worker_step(self.ring) {}
                    if self.mac.rx_rearm(self.ring) == PollStep::Idle {
                        self.wait_interrupt();
                    }
                }
                PollStep::Idle => self.wait_interrupt(),
                PollStep::Paused => {
                    self.srs.wake_worker();
                    self.poll_wq.wait_until(|| self.srs.below_threshold() || self.is_held() || Self::misplaced(&self.poll_cpu))
                }
                PollStep::Draining => {
                    self.srs.wake_worker();
                    self.poll_wq.wait_until(|| self.srs.drained() || self.is_held() || Self::misplaced(&self.poll_cpu))
                }
            }
        }
    }

    fn wait_interrupt(&self) {
        self.poll_wq.wait_until(|| self.srs.interrupt_pending() || self.is_held() || Self::misplaced(&self.poll_cpu));
    }

    fn worker_thread(&self) {
        loop {
            Self::follow(&self.poll_cpu);
            self.worker_wq.wait_until(|| self.srs.work_pending() || Self::misplaced(&self.poll_cpu));
            while self.mac.rx_worker_step(self.ring) {}
        }
    }

    fn softring_thread(&self, index: usize) {
        let sr = &self.srs.softrings()[index];
        loop {
            Self::follow(&self.softring_cpu[index]);
            self.softring_wq[index].wait_until(|| sr.pending() || Self::misplaced(&self.softring_cpu[index]));
            self.mac.rx_softring_drain(self.ring, index);
        }
    }
}
