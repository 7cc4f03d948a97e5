//! The Rx soft ring set of one hardware ring, with dynamic polling.
//!
//! Interrupt mode while idle: each ring interrupt makes the poll thread
//! pick up what the ring holds (counted as `INTRS`), process it inline and
//! re-enable the interrupt. As soon as a backlog builds — a pickup that
//! reaches `mac_srs_poll_thres` packets or the poll byte limit, or packets
//! that arrived while the last pickup was processed (the interrupt fires
//! again the moment it is re-enabled) — the ring's interrupt stays off and
//! the poll thread pulls chains of at most `mac_srs_poll_max_bytes`
//! (`POLLS`, with the chain-length histogram). It pauses while more than
//! `mac_srs_lowat` packets wait for the worker and resumes when the queue
//! is back to `mac_srs_poll_thres`; when a poll finds nothing and nothing
//! is queued, the interrupt is re-enabled (`poll_off`). A ring that
//! cannot poll stays in interrupt mode and drops (counted) above
//! `mac_srs_hiwat`.
//!
//! The worker drains the SRS queue into the soft rings; soft rings on the
//! worker's CPU are processed inline, the others by their own threads.
//! The kernel owns the threads: they call [`RxSrs::poll_step`],
//! [`RxSrs::worker_step`] and [`SoftRing::drain`] and block as the
//! returned [`PollStep`] / wait conditions say.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use spin::Once;

use crate::sync::Mutex;

use super::softring::{self, Proto, SoftRing};
use super::stats::RxSrsStats;
use super::tunables;
use crate::mblk::MblkChain;
use crate::provider::RxRing;

/// The mode of an SRS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Interrupt,
    Poll,
}

/// What the poll thread should do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStep {
    /// Step again at once; with `mac_latency_optimize` run
    /// [`RxSrs::worker_step`] first (the poll thread processes its pickup
    /// when the worker is not; if packets are left, [`RxSrs::wake_worker`]).
    Again,
    /// Interrupt mode: process the pickup now (run [`RxSrs::worker_step`]
    /// until it finds nothing), then call [`RxSrs::rearm`].
    Inline,
    /// Block until the ring interrupts ([`RxSrs::interrupt_pending`]).
    Idle,
    /// Block until the queue is back to the poll threshold
    /// ([`RxSrs::below_threshold`]).
    Paused,
    /// Block until the queue is empty ([`RxSrs::drained`]), then step.
    Draining,
}

type Wake = Arc<dyn Fn() + Send + Sync>;

/// The Rx soft ring set of one hardware ring.
pub struct RxSrs {
    /// The hardware ring.
    pub ring: usize,
    /// The CPU of the ring's interrupt, poll thread and worker.
    pub cpu: usize,
    pollable: bool,
    mode: AtomicU8,
    intr_pending: AtomicBool,
    queue: Mutex<MblkChain>,
    /// Length of `queue`, kept beside it so the threads' wait conditions
    /// read it without the lock (a waiter checks its condition with
    /// interrupts off; spinning on a lock whose holder was preempted on the
    /// same CPU would never end).
    qlen: AtomicUsize,
    fanout: usize,
    softrings: Vec<SoftRing>,
    pub stats: RxSrsStats,
    poll_wake: Once<Wake>,
    worker_wake: Once<Wake>,
    /// A thread (the worker, or the poll thread processing inline) is
    /// processing the queue (illumos `SRS_PROC`): one at a time, so a
    /// flow's packets keep their order.
    proc: AtomicBool,
}

impl RxSrs {
    /// An SRS for ring `ring` on `cpu`, fanning out over `fanout_cpus`
    /// (empty: just `cpu`).
    pub fn new(ring: usize, cpu: usize, pollable: bool, fanout_cpus: &[usize]) -> RxSrs {
        let cpus: Vec<usize> = if fanout_cpus.is_empty() { alloc::vec![cpu] } else { fanout_cpus.to_vec() };
        let mut softrings = Vec::new();
        for proto in Proto::ALL {
            for (i, &c) in cpus.iter().enumerate() {
                softrings.push(SoftRing::new(proto, i, c));
            }
        }
        RxSrs {
            ring,
            cpu,
            pollable,
            mode: AtomicU8::new(Mode::Interrupt as u8),
            intr_pending: AtomicBool::new(false),
            queue: Mutex::new(MblkChain::new()),
            qlen: AtomicUsize::new(0),
            fanout: cpus.len(),
            softrings,
            stats: RxSrsStats::default(),
            poll_wake: Once::new(),
            worker_wake: Once::new(),
            proc: AtomicBool::new(false),
        }
    }

    /// Sets how the poll thread and the worker are woken (once).
    pub fn set_wakeups(&self, poll: Wake, worker: Wake) {
        self.poll_wake.call_once(|| poll);
        self.worker_wake.call_once(|| worker);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        if self.mode.load(Ordering::Acquire) == Mode::Poll as u8 { Mode::Poll } else { Mode::Interrupt }
    }

    /// The soft rings (protocol-major, then fanout index).
    pub fn softrings(&self) -> &[SoftRing] {
        &self.softrings
    }

    /// Number of soft rings per protocol class.
    pub fn fanout(&self) -> usize {
        self.fanout
    }

    /// Packets waiting for the worker.
    pub fn queued(&self) -> usize {
        self.qlen.load(Ordering::Acquire)
    }

    /// The ring interrupted (interrupt context): note it, wake the poll
    /// thread.
    pub fn interrupt(&self) {
        self.intr_pending.store(true, Ordering::Release);
        if let Some(w) = self.poll_wake.get() {
            w();
        }
    }

    /// Wait condition of [`PollStep::Idle`].
    pub fn interrupt_pending(&self) -> bool {
        self.intr_pending.load(Ordering::Acquire)
    }

    /// Wait condition of [`PollStep::Paused`].
    pub fn below_threshold(&self) -> bool {
        self.queued() as u64 <= tunables::POLL_THRES.get()
    }

    /// Wait condition of [`PollStep::Draining`].
    pub fn drained(&self) -> bool {
        self.queued() == 0
    }

    /// Wait condition of the worker.
    pub fn work_pending(&self) -> bool {
        self.queued() > 0
    }

    /// Queues a pickup for the worker. In poll mode the worker thread is
    /// woken; in interrupt mode the poll thread drains the queue itself
    /// right after the step (one hand-off less per interrupt, as illumos
    /// processes an interrupt's chain inline when there is no backlog).
    fn enqueue(&self, mut chain: MblkChain, wake_worker: bool) {
        let hiwat = tunables::HIWAT.get() as usize;
        {
            let mut q = self.queue.lock();
            if q.len() + chain.len() <= hiwat {
                q.append(&mut chain);
            } else {
                while let Some(m) = chain.pop() {
                    if q.len() >= hiwat {
                        self.stats.sdrops.fetch_add(1 + chain.len() as u64, Ordering::Relaxed);
                        break;
                    }
                    q.push(m);
                }
            }
            self.qlen.store(q.len(), Ordering::Release);
        }
        if wake_worker {
            if let Some(w) = self.worker_wake.get() {
                w();
            }
        }
    }

    /// One step of the poll thread over `ring`.
    pub fn poll_step(&self, ring: &dyn RxRing) -> PollStep {
        let max = tunables::POLL_MAX_BYTES.get() as usize;
        match self.mode() {
            Mode::Interrupt => {
                if !self.intr_pending.swap(false, Ordering::AcqRel) {
                    return PollStep::Idle;
                }
                let chain = ring.poll(max);
                let n = chain.len();
                self.stats.intr_pkts.fetch_add(n as u64, Ordering::Relaxed);
                self.stats.intr_bytes.fetch_add(chain.bytes() as u64, Ordering::Relaxed);
                let backlog = n + self.queued();
                let full = chain.bytes() + 1514 > max;
                if self.may_poll() && n > 0 && (backlog as u64 >= tunables::POLL_THRES.get() || full) {
                    // A backlog: keep the interrupt off and poll.
                    self.poll_on();
                    self.enqueue(chain, true);
                    PollStep::Again
                } else if n > 0 {
                    self.enqueue(chain, false);
                    PollStep::Inline
                } else {
                    ring.intr_enable();
                    PollStep::Idle
                }
            }
            Mode::Poll => {
                // Interrupts are off in poll mode; a stale note is moot.
                self.intr_pending.store(false, Ordering::Release);
                if self.queued() as u64 >= tunables::LOWAT.get() {
                    self.stats.poll_pauses.fetch_add(1, Ordering::Relaxed);
                    return PollStep::Paused;
                }
                let chain = ring.poll(max);
                let n = chain.len();
                self.stats.count_chain(n);
                if n == 0 {
                    if self.queued() > 0 {
                        return PollStep::Draining;
                    }
                    self.mode.store(Mode::Interrupt as u8, Ordering::Release);
                    self.stats.poll_off.fetch_add(1, Ordering::Relaxed);
                    ring.intr_enable();
                    return PollStep::Idle;
                }
                self.stats.poll_pkts.fetch_add(n as u64, Ordering::Relaxed);
                self.stats.poll_bytes.fetch_add(chain.bytes() as u64, Ordering::Relaxed);
                // With `mac_latency_optimize` the poll thread processes
                // the pickup itself after this step (see PollStep::Again).
                self.enqueue(chain, tunables::LATENCY_OPT.get() == 0);
                PollStep::Again
            }
        }
    }

    fn may_poll(&self) -> bool {
        self.pollable && tunables::POLL_ENABLE.get() != 0
    }

    fn poll_on(&self) {
        self.mode.store(Mode::Poll as u8, Ordering::Release);
        self.stats.poll_on.fetch_add(1, Ordering::Relaxed);
    }

    /// After an interrupt-mode pickup was processed: re-enables the ring's
    /// interrupt. If it fires at once (packets arrived while processing: a
    /// backlog), switches to poll mode instead and returns
    /// [`PollStep::Again`]; otherwise [`PollStep::Idle`].
    pub fn rearm(&self, ring: &dyn RxRing) -> PollStep {
        ring.intr_enable();
        if self.may_poll() && self.intr_pending.load(Ordering::Acquire) {
            ring.intr_disable();
            self.intr_pending.store(false, Ordering::Release);
            self.poll_on();
            return PollStep::Again;
        }
        PollStep::Idle
    }

    /// One step of the worker: moves the queue into the soft rings and
    /// processes those on its own CPU with `deliver`. Returns whether it
    /// found work.
    /// Another thread processing the queue makes it return false at once
    /// (that thread takes what is queued before it stops).
    pub fn worker_step(&self, deliver: &dyn Fn(MblkChain)) -> bool {
        if self.proc.swap(true, Ordering::AcqRel) {
            return false;
        }
        let did = self.process(deliver);
        self.proc.store(false, Ordering::Release);
        did
    }

    /// Wakes the worker thread (the poll thread, after processing inline,
    /// when the worker held the queue and packets are left).
    pub fn wake_worker(&self) {
        if let Some(w) = self.worker_wake.get() {
            w();
        }
    }

    fn process(&self, deliver: &dyn Fn(MblkChain)) -> bool {
        let chain = {
            let mut q = self.queue.lock();
            self.qlen.store(0, Ordering::Release);
            core::mem::take(&mut *q)
        };
        if chain.is_empty() {
            return false;
        }
        // The poll thread may be waiting for room.
        if let Some(w) = self.poll_wake.get() {
            w();
        }
        let mut split: Vec<MblkChain> = (0..self.softrings.len()).map(|_| MblkChain::new()).collect();
        for mut m in chain {
            let i = softring::pick(&mut m, self.fanout);
            split[i].push(m);
        }
        for (sr, c) in self.softrings.iter().zip(split) {
            if c.is_empty() {
                continue;
            }
            sr.enqueue(c);
            if !sr.has_thread() {
                sr.drain(deliver);
            }
        }
        true
    }
}
