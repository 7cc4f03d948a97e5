//! The squeue, FireEngine's *vertical perimeter*: a serialization queue
//! per CPU through which every packet and every operation of the conns
//! bound to it passes, one at a time, in arrival order. Code running inside
//! a squeue owns the state of its conns and needs no lock for it.
//!
//! How illumos' modes map here ([`SqMode`], `squeue.c`):
//!
//! * `SQ_PROCESS` ([`SqMode::Process`]): nobody inside and nothing queued —
//!   the entry runs right here on the caller's CPU with no queueing at all
//!   (the fast path); nobody inside but entries queued — ours is queued
//!   behind them and the caller drains; somebody inside — queued, and the
//!   one inside drains it.
//! * `SQ_NODRAIN` ([`SqMode::NoDrain`]): runs inline only if nobody is
//!   inside *and* nothing is queued; otherwise it is queued and the caller
//!   leaves (the worker is scheduled if nobody is inside).
//! * `SQ_FILL` ([`SqMode::Fill`]): always queued; if nobody is inside, the
//!   worker is scheduled after `ip_squeue_wait` ms (0: at once). Entries
//!   made while inside a squeue ([`SqCtx::fill`]) are fills of the squeue
//!   being drained: they run after the current entry, in the same drain.
//!
//! A caller that is not the worker drains for at most [`SQUEUE_DRAIN_NS`]
//! (illumos' `squeue_drain_ms`, 20 ms); what is left goes to the worker,
//! which the kernel runs as a thread bound to the squeue's CPU and which
//! drains without a limit ([`Squeue::worker_drain`]). Squeues live as long
//! as the system ([`SquedSet`] is never shrunk), so a conn's squeue id is
//! always valid.
//!
//! The queue is bounded ([`Squeue::new`]): an entry that finds it full is
//! handed back to the caller, who drops it, and counted in `drops`.
//!
//! What the kernel provides is [`SqEnv`]: the clock, the CPU, and waking
//! a squeue's worker. Host tests fake it.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use arbalest_mac::sync::Mutex;

/// How long a thread other than the worker drains (illumos
/// `squeue_drain_ms`, 20 ms).
pub const SQUEUE_DRAIN_NS: u64 = 20_000_000;
/// Default `ip_squeue_wait`, ms.
pub const IP_SQUEUE_WAIT_DEFAULT_MS: u32 = 10;
/// Entries one squeue queues at most by default.
pub const SQUEUE_MAX_QUEUED: usize = 4096;

/// What the kernel gives the squeues.
pub trait SqEnv: Send + Sync {
    /// The monotonic clock, ns.
    fn now_ns(&self) -> u64;
    /// The CPU the caller runs on.
    fn cpu(&self) -> usize;
    /// Runs squeue `sq`'s worker ([`Squeue::worker_drain`]) on its CPU
    /// after `delay_ns` (0: as soon as possible). Called at most once per
    /// scheduling (the squeue remembers that a wake-up is pending).
    fn wake_worker(&self, sq: usize, delay_ns: u64);
}

/// How an entry enters a squeue (illumos' `SQ_*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqMode {
    /// `SQ_PROCESS`: process inline if possible, then drain.
    Process,
    /// `SQ_NODRAIN`: process inline only if free and empty; never drain.
    NoDrain,
    /// `SQ_FILL`: queue; the worker (or whoever is inside) processes it.
    Fill,
}

/// An operation on a conn, run inside its squeue.
pub trait SqEntry: Send + Sized {
    /// Does the work. `ctx` queues follow-up entries on the same squeue.
    fn process(self, ctx: &mut SqCtx<'_, Self>);
}

/// What an entry sees while it runs inside a squeue.
pub struct SqCtx<'a, E: SqEntry> {
    sq: &'a Squeue<E>,
}

impl<E: SqEntry> SqCtx<'_, E> {
    /// The squeue being drained.
    pub fn squeue(&self) -> &Squeue<E> {
        self.sq
    }

    /// Queues `e` on this squeue (`SQ_FILL` from inside): it runs after
    /// the current entry, in this drain. Full queue: handed back (counted).
    pub fn fill(&mut self, e: E) -> Result<(), E> {
        let mut st = self.sq.state.lock();
        self.sq.push(&mut st, e)
    }
}

struct SqState<E> {
    queue: VecDeque<E>,
    /// A thread is inside (processing or draining).
    inside: bool,
    /// The worker has been asked to run and has not run yet.
    worker_pending: bool,
}

/// Counters of one squeue (for `sqstat`).
#[derive(Debug, Default)]
struct SqCounters {
    conns: AtomicU64,
    inline: AtomicU64,
    queued: AtomicU64,
    worker_drained: AtomicU64,
    wakeups: AtomicU64,
    max_queue: AtomicU64,
    time_limited: AtomicU64,
    drops: AtomicU64,
}

/// A snapshot of a squeue's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SqStats {
    /// The squeue's id (its index in the set).
    pub id: usize,
    /// Its CPU.
    pub cpu: usize,
    /// Conns bound to it now.
    pub conns: u64,
    /// Entries processed by the thread that brought them, without waiting.
    pub inline: u64,
    /// Entries that had to be queued.
    pub queued: u64,
    /// Entries the worker processed.
    pub worker_drained: u64,
    /// Times the worker was scheduled.
    pub wakeups: u64,
    /// The longest queue seen.
    pub max_queue: u64,
    /// Drains that stopped at [`SQUEUE_DRAIN_NS`] and left the rest to the
    /// worker.
    pub time_limited: u64,
    /// Entries refused because the queue was full.
    pub drops: u64,
    /// Entries queued now.
    pub queue_len: u64,
}

/// The squeue tunables (`ndd /dev/ip`, `ndd /dev/tcp`).
#[derive(Debug)]
pub struct SqTunables {
    /// `ip_squeue_wait`: ms queued entries wait for an entering thread
    /// before the worker is woken (0: at once).
    pub wait_ms: AtomicU32,
    /// `ip_squeue_fanout`: 0 binds a new conn to the squeue of the CPU
    /// that creates it, 1 spreads new conns over every squeue.
    pub fanout: AtomicU32,
    /// `ip_squeue_bind`: 1 binds each worker to its CPU (recorded; the
    /// kernel always binds).
    pub bind: AtomicU32,
    /// `tcp_squeue_wput`: 1 a sender processes its own entry but does not
    /// drain others' (`SQ_NODRAIN`), 2 it processes and drains
    /// (`SQ_PROCESS`).
    pub wput: AtomicU32,
}

impl SqTunables {
    /// illumos' defaults: wait 10 ms, fanout 0, bind 1, wput 2.
    pub const fn new() -> SqTunables {
        SqTunables {
            wait_ms: AtomicU32::new(IP_SQUEUE_WAIT_DEFAULT_MS),
            fanout: AtomicU32::new(0),
            bind: AtomicU32::new(1),
            wput: AtomicU32::new(2),
        }
    }

    /// The mode a sender enters with, after `tcp_squeue_wput`.
    pub fn wput_mode(&self) -> SqMode {
        if self.wput.load(Ordering::Relaxed) == 1 { SqMode::NoDrain } else { SqMode::Process }
    }
}

impl Default for SqTunables {
    fn default() -> Self {
        SqTunables::new()
    }
}

/// One squeue.
pub struct Squeue<E: SqEntry> {
    id: usize,
    cpu: usize,
    cap: usize,
    state: Mutex<SqState<E>>,
    /// Set while an entry runs: the debug-build check that nobody else is
    /// inside at the same time.
    running: AtomicBool,
    counters: SqCounters,
    tunables: Arc<SqTunables>,
}

/// Who is draining.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drainer {
    /// A thread that brought an entry: bounded in time.
    Caller,
    /// The squeue's worker: unbounded.
    Worker,
}

impl<E: SqEntry> Squeue<E> {
    /// Squeue `id` on `cpu`, queueing at most `cap` entries.
    pub fn new(id: usize, cpu: usize, cap: usize, tunables: Arc<SqTunables>) -> Squeue<E> {
        Squeue {
            id,
            cpu,
            cap: cap.max(1),
            state: Mutex::new(SqState { queue: VecDeque::new(), inside: false, worker_pending: false }),
            running: AtomicBool::new(false),
            counters: SqCounters::default(),
            tunables,
        }
    }

    /// The squeue's id.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The CPU it belongs to.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// The tunables it follows.
    pub fn tunables(&self) -> &SqTunables {
        &self.tunables
    }

    /// Enters `e` in `mode` (see the module documentation). `Err(e)`: the
    /// queue was full and `e` was not taken (counted in `drops`).
    pub fn enter(&self, e: E, mode: SqMode, env: &dyn SqEnv) -> Result<(), E> {
        let mut st = self.state.lock();
        let free = !st.inside;
        let inline = match mode {
            SqMode::Process => free,
            SqMode::NoDrain => free && st.queue.is_empty(),
            SqMode::Fill => false,
        };
        if !inline {
            self.push(&mut st, e)?;
            if free && !st.worker_pending {
                // Nobody inside will drain it: the worker will.
                let delay = match mode {
                    SqMode::Fill => u64::from(self.tunables.wait_ms.load(Ordering::Relaxed)) * 1_000_000,
                    _ => 0,
                };
                st.worker_pending = true;
                drop(st);
                bump(&self.counters.wakeups);
                env.wake_worker(self.id, delay);
            }
            return Ok(());
        }
        st.inside = true;
        let first = if st.queue.is_empty() {
            Some(e)
        } else {
            // Others came first: FIFO, ours goes behind them.
            if let Err(e) = self.push(&mut st, e) {
                st.inside = false;
                return Err(e);
            }
            None
        };
        drop(st);
        let deadline = env.now_ns().saturating_add(SQUEUE_DRAIN_NS);
        if let Some(e) = first {
            bump(&self.counters.inline);
            self.run(e);
        }
        if mode == SqMode::NoDrain {
            self.leave(env, false);
        } else {
            self.drain(env, Drainer::Caller, deadline);
        }
        Ok(())
    }

    /// What the worker does when woken: drains until the queue is empty
    /// (without a time limit). Returns at once if somebody is inside (they
    /// will drain).
    pub fn worker_drain(&self, env: &dyn SqEnv) {
        let mut st = self.state.lock();
        st.worker_pending = false;
        if st.inside || st.queue.is_empty() {
            return;
        }
        st.inside = true;
        drop(st);
        self.drain(env, Drainer::Worker, u64::MAX);
    }

    /// Whether a wake-up of the worker is pending.
    pub fn worker_pending(&self) -> bool {
        self.state.lock().worker_pending
    }

    /// Entries queued now.
    pub fn queue_len(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Counts a conn bound to this squeue.
    pub fn bind_conn(&self) {
        bump(&self.counters.conns);
    }

    /// Counts a conn no longer bound to this squeue.
    pub fn unbind_conn(&self) {
        let _ = self.counters.conns.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// The counters now.
    pub fn snapshot(&self) -> SqStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SqStats {
            id: self.id,
            cpu: self.cpu,
            conns: l(&c.conns),
            inline: l(&c.inline),
            queued: l(&c.queued),
            worker_drained: l(&c.worker_drained),
            wakeups: l(&c.wakeups),
            max_queue: l(&c.max_queue),
            time_limited: l(&c.time_limited),
            drops: l(&c.drops),
            queue_len: self.queue_len() as u64,
        }
    }

    fn push(&self, st: &mut SqState<E>, e: E) -> Result<(), E> {
        if st.queue.len() >= self.cap {
            bump(&self.counters.drops);
            return Err(e);
        }
        st.queue.push_back(e);
        bump(&self.counters.queued);
        let n = st.queue.len() as u64;
        if n > self.counters.max_queue.load(Ordering::Relaxed) {
            self.counters.max_queue.store(n, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Runs one entry; the caller is inside.
    fn run(&self, e: E) {
        let was = self.running.swap(true, Ordering::AcqRel);
        debug_assert!(!was, "squeue {}: two threads inside at once", self.id);
        e.process(&mut SqCtx { sq: self });
        self.running.store(false, Ordering::Release);
    }

    /// Processes queued entries until none is left or, for a caller,
    /// `deadline` has passed; then leaves.
    fn drain(&self, env: &dyn SqEnv, who: Drainer, deadline: u64) {
        loop {
            let e = {
                let mut st = self.state.lock();
                match st.queue.pop_front() {
                    Some(e) => e,
                    None => {
                        st.inside = false;
                        return;
                    }
                }
            };
            if who == Drainer::Worker {
                bump(&self.counters.worker_drained);
            }
            self.run(e);
            if who == Drainer::Caller && env.now_ns() >= deadline {
                self.leave(env, true);
                return;
            }
        }
    }

    /// Leaves the squeue; what is still queued goes to the worker (at
    /// once). `timed_out`: a drain hit its time limit.
    fn leave(&self, env: &dyn SqEnv, timed_out: bool) {
        let mut st = self.state.lock();
        st.inside = false;
        if st.queue.is_empty() {
            return;
        }
        if timed_out {
            bump(&self.counters.time_limited);
        }
        if st.worker_pending {
            return;
        }
        st.worker_pending = true;
        drop(st);
        bump(&self.counters.wakeups);
        env.wake_worker(self.id, 0);
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The squeue set: one squeue per CPU, made at start and never destroyed,
/// and the policy that binds new conns to them (`ip_squeue_fanout`).
pub struct SquedSet<E: SqEntry> {
    squeues: Vec<Squeue<E>>,
    tunables: Arc<SqTunables>,
    next: AtomicUsize,
}

impl<E: SqEntry> SquedSet<E> {
    /// `cpus` squeues (at least one), squeue `i` on CPU `i`, each queueing
    /// at most `cap` entries, following `tunables`.
    pub fn new(cpus: usize, cap: usize, tunables: Arc<SqTunables>) -> SquedSet<E> {
        let squeues = (0..cpus.max(1)).map(|i| Squeue::new(i, i, cap, tunables.clone())).collect();
        SquedSet { squeues, tunables, next: AtomicUsize::new(0) }
    }

    /// Number of squeues.
    pub fn len(&self) -> usize {
        self.squeues.len()
    }

    /// Never true: a set has at least one squeue.
    pub fn is_empty(&self) -> bool {
        self.squeues.is_empty()
    }

    /// Squeue `id` (ids are `0..len()`; out of range wraps, so a stale id
    /// can never index past the set).
    pub fn get(&self, id: usize) -> &Squeue<E> {
        &self.squeues[id % self.squeues.len()]
    }

    /// The squeue of `cpu`.
    pub fn for_cpu(&self, cpu: usize) -> &Squeue<E> {
        self.get(cpu)
    }

    /// The squeue a new conn created on `cpu` is bound to:
    /// `ip_squeue_fanout` 0 — `cpu`'s; 1 — the next in turn.
    pub fn pick_for_new_conn(&self, cpu: usize) -> &Squeue<E> {
        if self.tunables.fanout.load(Ordering::Relaxed) == 0 {
            self.for_cpu(cpu)
        } else {
            self.get(self.next.fetch_add(1, Ordering::Relaxed))
        }
    }

    /// The tunables.
    pub fn tunables(&self) -> &Arc<SqTunables> {
        &self.tunables
    }

    /// Every squeue.
    pub fn iter(&self) -> impl Iterator<Item = &Squeue<E>> {
        self.squeues.iter()
    }

    /// Every squeue's counters.
    pub fn stats(&self) -> Vec<SqStats> {
        self.squeues.iter().map(|s| s.snapshot()).collect()
    }
}
