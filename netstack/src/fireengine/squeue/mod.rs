//! The squeue: FireEngine's vertical perimeter, one per CPU (illumos
//! `inet/squeue.c`, `sys/squeue_impl.h`; FIREENGINE.md section 1).
//!
//! This room owns the serialization queue and nothing above it: a
//! [`Squeue`] runs [`SqEntry`]s ("a packet or operation for a conn", the
//! conn type is another room's) one at a time, strictly FIFO, so code
//! inside needs no lock for its conn. It also owns the set of squeues
//! ([`SquedSet`], one per CPU, never destroyed), their tunables
//! ([`SqConfig`]) and their `sqstat` counters ([`SqStats`]). Threads, timers
//! and the clock are the kernel's, behind [`SqEnv`].
//!
//! Entry modes ([`SqMode`]) as in illumos' `squeue_enter`:
//!
//! * `SQ_PROCESS` ([`SqMode::Process`]): nobody inside and nothing queued →
//!   the fast path, run here with no queueing, then drain whatever others
//!   queued meanwhile. Nobody inside but a backlog → queue ours at the tail
//!   and drain. Somebody inside → queue and leave: they run it, and,
//!   when the entry comes from another CPU than theirs, the worker is
//!   asked for after `ip_squeue_wait` (0 = at once) in case they do not (illumos `SQUEUE_WORKER_WAKEUP` with `sq_wait`); while a
//!   wake-up is pending no other is asked for, so with the default 10 ms a
//!   busy squeue calls its worker at most about 100 times a second, and
//!   with 0 at every entry that finds it busy.
//! * `SQ_NODRAIN` ([`SqMode::NoDrain`]): inline only if nobody is inside and
//!   nothing is queued; otherwise queue and leave. A thread that ran inline
//!   leaves what arrived meanwhile to the worker.
//! * `SQ_FILL` ([`SqMode::Fill`]): always queue; if nobody is inside, ask
//!   for the worker after `ip_squeue_wait` (0 = at once). Entries queued
//!   from inside a `process` ([`SqCtx::fill`]) are always `SQ_FILL`: they
//!   run after the current entry, in the same drain, never recursively.
//!
//! A thread that is not the worker drains for at most `squeue_drain_ms`
//! (20 ms by [`SqEnv::now_ns`]), then wakes the worker at once and leaves
//! (counted in [`SqStats::drain_time_limit`]); the worker
//! ([`Squeue::worker_drain`]) drains until the queue is empty. The send
//! side enters with [`Squeue::enter_send`], whose mode follows
//! `tcp_squeue_wput` (1 → `SQ_NODRAIN`, 2 → `SQ_PROCESS`).
//!
//! Differences from illumos: the queue is bounded (a full queue hands the
//! entry back as `Err` and counts a drop); a thread already inside that
//! enters again is always queued (illumos lets it re-enter inline once);
//! the time bound is checked after every entry rather than every batch.
//! Wrong-squeue re-entry (the conn moved) is the conn room's check: it
//! forwards with [`SqCtx::fill_on`], which is `SQ_FILL`. Poll mode belongs
//! to the room that owns the soft rings.

mod config;
mod set;
mod stats;

pub use config::{
    IP_SQUEUE_WAIT_DEFAULT_MS, IP_SQUEUE_WAIT_MAX_MS, SQUEUE_DRAIN_DEFAULT_MS, SQUEUE_DRAIN_MAX_MS, SqConfig,
    SqConfigError, TCP_SQUEUE_WPUT_DEFAULT,
};
pub use set::SquedSet;
pub use stats::SqStats;

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use arbalest_mac::sync::Mutex;

use stats::{SqCounters, bump};

/// `owner_cpu` when nobody is inside.
const NO_CPU: u32 = u32::MAX;

/// Default bound of one squeue's queue, in entries.
pub const SQ_DEFAULT_CAPACITY: usize = 4096;

/// How a thread enters a squeue (illumos `SQ_PROCESS`, `SQ_NODRAIN`,
/// `SQ_FILL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqMode {
    /// Run inline if nobody is inside, then drain what is queued.
    Process,
    /// Run inline only if nobody is inside and nothing is queued; never
    /// drain others.
    NoDrain,
    /// Always queue; wake the worker if nobody is inside.
    Fill,
}

/// What a squeue needs from the kernel (tests fake it).
pub trait SqEnv {
    /// A monotonic clock in ns.
    fn now_ns(&self) -> u64;
    /// The CPU the calling thread runs on.
    fn cpu(&self) -> u32;
    /// Asks for squeue `sq_id`'s worker to call [`Squeue::worker_drain`]
    /// once, after `delay_ns` (0 = at once). A later call with a shorter
    /// delay may come while one is pending; each call must lead to at least
    /// one `worker_drain` (extra ones are harmless).
    fn wake_worker(&self, sq_id: u32, delay_ns: u64);
}

/// One unit of work for a conn: a packet or an operation, run inside the
/// conn's squeue.
pub trait SqEntry: Send + Sized {
    /// Runs the entry inside the squeue; `ctx` queues follow-ups.
    fn process(self, ctx: &mut SqCtx<'_, Self>);
}

/// What code running inside a squeue may do: queue follow-ups (never run
/// recursively) and read the environment.
pub struct SqCtx<'a, E: SqEntry> {
    sq: &'a Squeue<E>,
    env: &'a dyn SqEnv,
    worker: bool,
}

impl<'a, E: SqEntry> SqCtx<'a, E> {
    /// Queues `entry` on this squeue (`SQ_FILL`): it runs after the current
    /// entry, in the same drain (after an `SQ_NODRAIN` inline entry, the
    /// worker runs it). A full queue hands it back (counted).
    pub fn fill(&mut self, entry: E) -> Result<(), E> {
        let mut st = self.sq.state.lock();
        self.sq.push_locked(&mut st, entry)
    }

    /// Queues `entry` on `other` with `SQ_FILL` (a conn that belongs to
    /// another squeue); on this squeue it is [`fill`](Self::fill).
    pub fn fill_on(&mut self, other: &Squeue<E>, entry: E) -> Result<(), E> {
        if core::ptr::eq(other, self.sq) {
            return self.fill(entry);
        }
        other.enter(entry, SqMode::Fill, self.env)
    }

    /// The environment the squeue was entered with.
    pub fn env(&self) -> &'a dyn SqEnv {
        self.env
    }

    /// The clock of the environment, in ns.
    pub fn now_ns(&self) -> u64 {
        self.env.now_ns()
    }

    /// The squeue being run.
    pub fn squeue(&self) -> &'a Squeue<E> {
        self.sq
    }

    /// The id of the squeue being run.
    pub fn squeue_id(&self) -> u32 {
        self.sq.id
    }

    /// True when the worker runs this entry.
    pub fn by_worker(&self) -> bool {
        self.worker
    }
}

struct SqState<E> {
    q: VecDeque<E>,
    /// A thread is inside (illumos `SQS_PROC`).
    inside: bool,
    /// A worker wake-up asked for and not yet served, with its delay.
    wake: Option<u64>,
}

/// One serialization queue: at most one thread inside, entries run in FIFO
/// order.
pub struct Squeue<E: SqEntry> {
    id: u32,
    cpu: u32,
    capacity: usize,
    config: Arc<SqConfig>,
    state: Mutex<SqState<E>>,
    /// Debug check of the perimeter: set by the thread inside.
    owner: AtomicBool,
    /// The CPU of the thread inside (`NO_CPU` when nobody is): an entry
    /// from that CPU while it is inside comes from the thread inside (an
    /// upcall queueing a reply), which drains it without the worker.
    owner_cpu: AtomicU32,
    stats: SqCounters,
}

impl<E: SqEntry> Squeue<E> {
    /// A squeue `id` for `cpu`, holding at most `capacity` (at least 1)
    /// queued entries, reading its tunables from `config`.
    pub fn new(id: u32, cpu: u32, capacity: usize, config: Arc<SqConfig>) -> Squeue<E> {
        let capacity = capacity.max(1);
        Squeue {
            id,
            cpu,
            capacity,
            config,
            state: Mutex::new(SqState { q: VecDeque::with_capacity(capacity), inside: false, wake: None }),
            owner: AtomicBool::new(false),
            owner_cpu: AtomicU32::new(NO_CPU),
            stats: SqCounters::default(),
        }
    }

    /// The squeue's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The CPU the squeue belongs to.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// The queue bound, in entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The tunables this squeue reads.
    pub fn config(&self) -> &Arc<SqConfig> {
        &self.config
    }

    /// Entries waiting now.
    pub fn queue_len(&self) -> usize {
        self.state.lock().q.len()
    }

    /// True while a thread is inside, read without the lock: the debug
    /// check of the perimeter a conn's entry points make (the thread
    /// asking is that thread when the caller is right; a touch from
    /// outside, or from another squeue while this one is idle, shows).
    pub fn in_perimeter(&self) -> bool {
        self.owner.load(Ordering::Acquire)
    }

    /// True while a thread is inside.
    pub fn is_busy(&self) -> bool {
        self.state.lock().inside
    }

    /// Enters the squeue with `entry` in `mode` (see the module doc). A
    /// full queue hands the entry back as `Err` (counted in
    /// [`SqStats::drops`]) for the caller to count and free.
    pub fn enter(&self, entry: E, mode: SqMode, env: &dyn SqEnv) -> Result<(), E> {
        if env.cpu() != self.cpu {
            bump(&self.stats.remote_enters);
        }
        let mut st = self.state.lock();
        if st.inside {
            // The thread inside runs it before it leaves; the worker is
            // asked for after `ip_squeue_wait` as well, in case that
            // thread stays inside (a wake-up already pending covers it).
            let r = self.push_locked(&mut st, entry);
            let from_inside = self.owner_cpu.load(Ordering::Relaxed) == env.cpu();
            let wake = if r.is_ok() && !from_inside { self.arm(&mut st, self.config.worker_wait_ns()) } else { None };
            drop(st);
            self.wake(env, wake);
            return r;
        }
        let empty = st.q.is_empty();
        match mode {
            SqMode::Process if empty => {
                self.claim(&mut st, env);
                drop(st);
                bump(&self.stats.processed_inline);
                self.run_one(entry, env, false);
                self.drain(env, Some(self.deadline(env)));
                Ok(())
            }
            SqMode::Process => {
                let r = self.push_locked(&mut st, entry);
                self.claim(&mut st, env);
                drop(st);
                self.drain(env, Some(self.deadline(env)));
                r
            }
            SqMode::NoDrain if empty => {
                self.claim(&mut st, env);
                drop(st);
                bump(&self.stats.processed_inline);
                self.run_one(entry, env, false);
                let mut st = self.state.lock();
                let wake = self.arm(&mut st, self.config.worker_wait_ns());
                self.release(&mut st);
                drop(st);
                self.wake(env, wake);
                Ok(())
            }
            SqMode::NoDrain | SqMode::Fill => {
                let r = self.push_locked(&mut st, entry);
                let wake = self.arm(&mut st, self.config.worker_wait_ns());
                drop(st);
                self.wake(env, wake);
                r
            }
        }
    }

    /// Enters from the send side: the mode follows `tcp_squeue_wput`
    /// ([`SqConfig::send_mode`]).
    pub fn enter_send(&self, entry: E, env: &dyn SqEnv) -> Result<(), E> {
        self.enter(entry, self.config.send_mode(), env)
    }

    /// What the kernel's worker thread calls when woken: drains until the
    /// queue is empty, with no time bound. Returns at once if the queue is
    /// empty or another thread is inside (that thread wakes the worker
    /// again if it leaves entries behind).
    pub fn worker_drain(&self, env: &dyn SqEnv) {
        let mut st = self.state.lock();
        st.wake = None;
        if st.inside || st.q.is_empty() {
            return;
        }
        self.claim(&mut st, env);
        drop(st);
        self.drain(env, None);
    }

    /// Enters the squeue from the calling thread and stays inside until
    /// [`Squeue::synch_exit`] (illumos `squeue_synch_enter`): entries that
    /// come meanwhile queue behind it. False, and nothing held, when a
    /// thread is inside already.
    pub fn synch_enter(&self, env: &dyn SqEnv) -> bool {
        let mut st = self.state.lock();
        if st.inside {
            return false;
        }
        self.claim(&mut st, env);
        true
    }

    /// Leaves a squeue held since a successful [`Squeue::synch_enter`],
    /// running first what queued meanwhile (illumos `squeue_synch_exit`).
    pub fn synch_exit(&self, env: &dyn SqEnv) {
        self.drain(env, Some(self.deadline(env)));
    }

    /// Counts one more conn bound to this squeue.
    pub fn bind_conn(&self) {
        self.stats.conns.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one conn less (never below zero).
    pub fn unbind_conn(&self) {
        let _ = self.stats.conns.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Conns bound now.
    pub fn conns(&self) -> u64 {
        self.stats.conns.load(Ordering::Relaxed)
    }

    /// The counters, copied.
    pub fn snapshot(&self) -> SqStats {
        self.stats.snapshot(self.id, self.cpu)
    }

    fn deadline(&self, env: &dyn SqEnv) -> u64 {
        env.now_ns().saturating_add(self.config.drain_ns())
    }

    /// Becomes the thread inside (lock held).
    fn claim(&self, st: &mut SqState<E>, env: &dyn SqEnv) {
        self.owner_cpu.store(env.cpu(), Ordering::Relaxed);
        st.inside = true;
        let was = self.owner.swap(true, Ordering::AcqRel);
        debug_assert!(!was, "two threads inside squeue");
    }

    /// Leaves (lock held).
    fn release(&self, st: &mut SqState<E>) {
        self.owner_cpu.store(NO_CPU, Ordering::Relaxed);
        let was = self.owner.swap(false, Ordering::AcqRel);
        debug_assert!(was, "leaving a squeue nobody was inside");
        st.inside = false;
    }

    fn push_locked(&self, st: &mut SqState<E>, entry: E) -> Result<(), E> {
        if st.q.len() >= self.capacity {
            bump(&self.stats.drops);
            return Err(entry);
        }
        st.q.push_back(entry);
        bump(&self.stats.queued);
        let len = st.q.len() as u64;
        self.stats.queue_len.store(len, Ordering::Relaxed);
        self.stats.max_queue_len.fetch_max(len, Ordering::Relaxed);
        Ok(())
    }

    /// Decides (lock held) whether the worker must be asked for: only with
    /// a backlog, and not again while an equal or sooner wake is pending.
    fn arm(&self, st: &mut SqState<E>, delay_ns: u64) -> Option<u64> {
        if st.q.is_empty() {
            return None;
        }
        match st.wake {
            Some(pending) if pending <= delay_ns => None,
            _ => {
                st.wake = Some(delay_ns);
                Some(delay_ns)
            }
        }
    }

    /// Asks for the worker (lock not held).
    fn wake(&self, env: &dyn SqEnv, wake: Option<u64>) {
        if let Some(delay) = wake {
            bump(&self.stats.worker_wakeups);
            env.wake_worker(self.id, delay);
        }
    }

    fn run_one(&self, entry: E, env: &dyn SqEnv, worker: bool) {
        let mut ctx = SqCtx { sq: self, env, worker };
        entry.process(&mut ctx);
    }

    /// Runs queued entries while inside; `deadline` None is the worker.
    /// Leaves when the queue is empty or the deadline has passed.
    fn drain(&self, env: &dyn SqEnv, deadline: Option<u64>) {
        let worker = deadline.is_none();
        loop {
            let expired = deadline.is_some_and(|d| env.now_ns() >= d);
            let mut st = self.state.lock();
            let next = if expired { None } else { st.q.pop_front() };
            match next {
                Some(entry) => {
                    self.stats.queue_len.store(st.q.len() as u64, Ordering::Relaxed);
                    drop(st);
                    self.run_one(entry, env, worker);
                    bump(if worker { &self.stats.drained_worker } else { &self.stats.drained_other });
                }
                None => {
                    let wake = if expired && !st.q.is_empty() {
                        bump(&self.stats.drain_time_limit);
                        self.arm(&mut st, 0)
                    } else {
                        None
                    };
                    self.release(&mut st);
                    drop(st);
                    self.wake(env, wake);
                    return;
                }
            }
        }
    }
}
