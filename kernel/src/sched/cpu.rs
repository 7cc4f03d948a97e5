//! One CPU's scheduler state: ready queues per priority, sleepers and
//! timer callouts, the running and idle threads, and the switch logic.

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::{Ordering as CmpOrdering, Reverse};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use spin::Mutex;

use super::thread::{self, Priority, State, Thread};
use crate::arch::trap::TrapFrame;
use crate::percpu;
use crate::time::clock::now_ns;

/// Whether a thread was seen blocking inside a data-path spin lock.
static BLOCKED_IN_LOCK: AtomicBool = AtomicBool::new(false);

/// Ticks in a time slice.
const SLICE_TICKS: u32 = 10;
/// `cur_prio` value while the idle thread runs.
const IDLE_PRIO: u8 = 0xff;

struct Timed<T> {
    deadline: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Timed<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.deadline, self.seq) == (o.deadline, o.seq)
    }
}
impl<T> Eq for Timed<T> {}
impl<T> PartialOrd for Timed<T> {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Timed<T> {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (self.deadline, self.seq).cmp(&(o.deadline, o.seq))
    }
}

type Callout = Box<dyn FnOnce() + Send>;

struct RunQueue {
    ready: [VecDeque<Arc<Thread>>; Priority::COUNT],
    sleepers: BinaryHeap<Reverse<Timed<Arc<Thread>>>>,
    callouts: BinaryHeap<Reverse<Timed<Callout>>>,
    seq: u64,
}

impl RunQueue {
    fn pop_ready(&mut self) -> Option<Arc<Thread>> {
        self.ready.iter_mut().rev().find_map(|q| q.pop_front())
    }
    fn highest_ready(&self) -> Option<Priority> {
        [Priority::High, Priority::Medium, Priority::Low].into_iter().find(|p| !self.ready[*p as usize].is_empty())
    }
    fn len(&self) -> usize {
        self.ready.iter().map(|q| q.len()).sum()
    }
}

/// Scheduler state of one CPU.
pub struct CpuSched {
    cpu: usize,
    rq: Mutex<RunQueue>,
    running: Mutex<Option<Arc<Thread>>>,
    idle: Mutex<Option<Arc<Thread>>>,
    reap: Mutex<Option<Arc<Thread>>>,
    /// A thread that switched off this CPU to move to another one; queued
    /// there once the switch has saved its registers.
    migrating: Mutex<Option<Arc<Thread>>>,
    need_resched: AtomicBool,
    started: AtomicBool,
    slice: AtomicU32,
    /// Priority of the running thread (IDLE_PRIO when idle).
    cur_prio: AtomicU8,
    /// When the running thread was switched in.
    switched_in: AtomicU64,
    /// When the idle thread was switched in (0 when not idle).
    idle_since: AtomicU64,
    /// Threads on this CPU (ready, running or blocked), idle excluded.
    nthreads: AtomicU32,
    /// Preemption hold-offs of the running thread (data-path spin locks
    /// held, see `arbalest_mac::sync`); saved in the thread across a
    /// voluntary switch.
    preempt: AtomicU32,
}

impl CpuSched {
    pub(crate) fn new(cpu: usize) -> CpuSched {
        CpuSched {
            cpu,
            rq: Mutex::new(RunQueue {
                ready: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
                sleepers: BinaryHeap::new(),
                callouts: BinaryHeap::new(),
                seq: 0,
            }),
            running: Mutex::new(None),
            idle: Mutex::new(None),
            reap: Mutex::new(None),
            migrating: Mutex::new(None),
            need_resched: AtomicBool::new(false),
            started: AtomicBool::new(false),
            slice: AtomicU32::new(SLICE_TICKS),
            cur_prio: AtomicU8::new(IDLE_PRIO),
            switched_in: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            nthreads: AtomicU32::new(0),
            preempt: AtomicU32::new(0),
        }
    }

    /// Number of threads living on this CPU (for placement).
    pub fn load(&self) -> u32 {
        self.nthreads.load(Ordering::Relaxed)
    }

    /// Ready threads waiting for this CPU.
    pub fn ready_count(&self) -> usize {
        crate::arch::without_interrupts(|| self.rq.lock().len())
    }

    /// Whether a non-idle thread runs now.
    pub fn busy(&self) -> bool {
        self.cur_prio.load(Ordering::Relaxed) != IDLE_PRIO
    }

    /// Idle nanoseconds including the idle period in progress.
    pub fn idle_ns_now(&self, accumulated: u64) -> u64 {
        let since = self.idle_since.load(Ordering::Relaxed);
        if since == 0 { accumulated } else { accumulated + now_ns().saturating_sub(since) }
    }

    /// Holds off preemption of the running thread (nests).
    #[inline]
    pub(crate) fn preempt_disable(&self) {
        // Only this CPU changes its count, and an interrupt in between
        // leaves it as it found it: no locked instruction needed.
        let n = self.preempt.load(Ordering::Relaxed);
        self.preempt.store(n + 1, Ordering::Relaxed);
    }

    /// Undoes one `preempt_disable`. Returns true when preemption is
    /// allowed again and a reschedule is pending.
    #[inline]
    pub(crate) fn preempt_enable(&self) -> bool {
        let prev = self.preempt.load(Ordering::Relaxed);
        if prev == 0 {
            // Unbalanced (a lock taken before the hooks were installed):
            // never wrap into "not preemptible forever".
            return false;
        }
        self.preempt.store(prev - 1, Ordering::Relaxed);
        prev == 1 && self.need_resched.load(Ordering::Acquire)
    }

    /// Whether the running thread may be preempted now.
    pub(crate) fn preemptible(&self) -> bool {
        self.preempt.load(Ordering::Relaxed) == 0
    }

    pub(crate) fn request_resched(&self) {
        self.need_resched.store(true, Ordering::Release);
    }

    pub(super) fn current(&self) -> Arc<Thread> {
        self.running.lock().clone().expect("scheduler not running on this CPU")
    }

    pub(super) fn try_current(&self) -> Option<Arc<Thread>> {
        crate::arch::without_interrupts(|| self.running.try_lock().and_then(|g| g.clone()))
    }

    pub(super) fn adopt_boot_context(&self) {
        let idle = Thread::idle(self.cpu);
        thread::register(&idle);
        *self.idle.lock() = Some(idle.clone());
        *self.running.lock() = Some(idle);
        let now = now_ns();
        self.switched_in.store(now, Ordering::Relaxed);
        self.idle_since.store(now.max(1), Ordering::Relaxed);
        self.started.store(true, Ordering::Release);
    }

    pub(super) fn add_sleeper(&self, deadline: u64) {
        let cur = self.current();
        let mut rq = self.rq.lock();
        rq.seq += 1;
        let seq = rq.seq;
        cur.set_state(State::Blocking);
        rq.sleepers.push(Reverse(Timed { deadline, seq, item: cur }));
    }

    pub(super) fn add_callout(&self, deadline: u64, f: Callout) {
        crate::arch::without_interrupts(|| {
            let mut rq = self.rq.lock();
            rq.seq += 1;
            let seq = rq.seq;
            rq.callouts.push(Reverse(Timed { deadline, seq, item: f }));
        })
    }

    /// Marks the running thread as about to block (see `State::Blocking`).
    pub(super) fn set_blocking(&self, t: &Thread) {
        let _rq = self.rq.lock();
        t.set_state(State::Blocking);
    }
}

/// Locks the run queue of `t`'s home CPU, making sure it still is its home
/// once locked (a thread changes home only under its old home's lock, in
/// `migrate_self`). Interrupts must be off.
fn lock_home(t: &Thread) -> Option<(&'static percpu::PerCpu, spin::MutexGuard<'static, RunQueue>)> {
    loop {
        let cpu = t.cpu();
        let home = percpu::get(cpu)?;
        let rq = home.sched.rq.lock();
        if t.cpu() == cpu {
            return Some((home, rq));
        }
    }
}

/// Wakes `t` if it is blocked (or cancels a block in progress).
pub(super) fn wake(t: &Arc<Thread>) {
    crate::arch::without_interrupts(|| {
        // Checked under the lock: a waker that read the old home of a
        // thread that has since moved and blocked there must not queue it
        // on the old CPU.
        let Some((home, mut rq)) = lock_home(t) else { return };
        match t.state() {
            State::Blocked => {
                t.set_state(State::Ready);
                rq.ready[t.priority() as usize].push_back(t.clone());
                drop(rq);
                kick(home, t.priority());
            }
            State::Blocking => t.set_state(State::Running),
            _ => {}
        }
    })
}

/// Changes `t`'s priority: a ready thread moves to its new queue, a
/// running one keeps the CPU until the scheduler next decides, and a
/// raised thread preempts a lower one at once.
pub(super) fn set_priority(t: &Arc<Thread>, prio: Priority) {
    crate::arch::without_interrupts(|| {
        let Some((home, mut rq)) = lock_home(t) else { return };
        let old = t.priority();
        if old == prio {
            return;
        }
        if t.state() == State::Ready {
            let q = &mut rq.ready[old as usize];
            if let Some(i) = q.iter().position(|x| Arc::ptr_eq(x, t)) {
                let x = q.remove(i).expect("index just found");
                rq.ready[prio as usize].push_back(x);
            }
        }
        t.store_priority(prio);
        let running = home.sched.running.lock().as_ref().is_some_and(|r| Arc::ptr_eq(r, t));
        if running {
            home.sched.cur_prio.store(prio as u8, Ordering::Relaxed);
            if rq.highest_ready().is_some_and(|hp| hp > prio) {
                drop(rq);
                kick_anyway(home);
            }
        } else if t.state() == State::Ready {
            drop(rq);
            kick(home, prio);
        }
    })
}

fn kick_anyway(cpu: &'static percpu::PerCpu) {
    cpu.sched.request_resched();
    if cpu.id != percpu::cpu_id() {
        crate::dev::lapic::send_ipi(cpu.apic_id, super::RESCHED_VECTOR);
    }
}

/// Moves the calling thread to `cpu`: it switches off this CPU and is
/// queued on the new one, where it continues. False (and nothing done)
/// if `cpu` is not on-line. Interrupts must be on.
pub(super) fn migrate_self(cpu: usize) -> bool {
    let p = percpu::this();
    if cpu == p.id {
        return true;
    }
    if !percpu::get(cpu).is_some_and(|d| d.online.load(Ordering::Acquire)) {
        return false;
    }
    crate::arch::without_interrupts(|| {
        let s = &p.sched;
        let cur = s.current();
        {
            // Under the run-queue lock a concurrent wake-up sees either
            // Running (and leaves it alone) or the finished move.
            let _rq = s.rq.lock();
            cur.set_state(State::Migrating);
            cur.store_cpu(cpu);
        }
        drop(cur);
        schedule(false);
    });
    true
}

/// Queues a new thread on its home CPU.
pub(super) fn make_ready(t: &Arc<Thread>) {
    let Some(home) = percpu::get(t.cpu()) else { return };
    home.sched.nthreads.fetch_add(1, Ordering::Relaxed);
    crate::arch::without_interrupts(|| {
        home.sched.rq.lock().ready[t.priority() as usize].push_back(t.clone());
        kick(home, t.priority());
    })
}

/// Asks `cpu` to reschedule if `prio` should run before what it runs now.
fn kick(cpu: &'static percpu::PerCpu, prio: Priority) {
    let cur = cpu.sched.cur_prio.load(Ordering::Relaxed);
    if cur != IDLE_PRIO && cur >= prio as u8 {
        return;
    }
    cpu.sched.request_resched();
    if cpu.id != percpu::cpu_id() {
        crate::dev::lapic::send_ipi(cpu.apic_id, super::RESCHED_VECTOR);
    }
}

/// Picks the next thread and switches to it. Interrupts must be off.
/// A running thread goes back to the tail of its queue; a blocking one
/// becomes blocked; a dead one is reaped after the switch.
pub(super) fn schedule(involuntary: bool) {
    let p = percpu::this();
    let s = &p.sched;
    if !s.started.load(Ordering::Acquire) {
        return;
    }
    s.need_resched.store(false, Ordering::Relaxed);
    let cur = s.current();
    if !involuntary && !s.preemptible() && !BLOCKED_IN_LOCK.swap(true, Ordering::Relaxed) {
        // A thread blocks holding a data-path spin lock: a thread of this
        // CPU spinning on that lock would never let it run again. Said
        // once; the count travels with the thread, so nothing else breaks.
        log::warn!("sched: thread '{}' blocks holding a data-path spin lock", cur.name);
    }
    let next = {
        let mut rq = s.rq.lock();
        match cur.state() {
            State::Running if !cur.is_idle => {
                cur.set_state(State::Ready);
                rq.ready[cur.priority() as usize].push_back(cur.clone());
            }
            State::Blocking => cur.set_state(State::Blocked),
            _ => {}
        }
        rq.pop_ready().unwrap_or_else(|| s.idle.lock().clone().expect("no idle thread"))
    };
    if Arc::ptr_eq(&next, &cur) {
        cur.set_state(State::Running);
        return;
    }
    let now = now_ns();
    let ran = now.saturating_sub(s.switched_in.swap(now, Ordering::Relaxed));
    cur.run_ns.fetch_add(ran, Ordering::Relaxed);
    if cur.is_idle {
        p.stats.idle_ns.fetch_add(ran, Ordering::Relaxed);
        s.idle_since.store(0, Ordering::Relaxed);
    }
    if next.is_idle {
        s.idle_since.store(now.max(1), Ordering::Relaxed);
        s.cur_prio.store(IDLE_PRIO, Ordering::Relaxed);
    } else {
        s.cur_prio.store(next.priority() as u8, Ordering::Relaxed);
    }
    p.stats.csw.fetch_add(1, Ordering::Relaxed);
    if involuntary && !cur.is_idle {
        p.stats.icsw.fetch_add(1, Ordering::Relaxed);
    }
    next.set_state(State::Running);
    next.switches.fetch_add(1, Ordering::Relaxed);
    s.slice.store(SLICE_TICKS, Ordering::Relaxed);
    *s.running.lock() = Some(next.clone());
    match cur.state() {
        State::Dead => *s.reap.lock() = Some(cur.clone()),
        State::Migrating => *s.migrating.lock() = Some(cur.clone()),
        _ => {}
    }
    cur.preempt_saved.store(s.preempt.load(Ordering::Relaxed), Ordering::Relaxed);
    s.preempt.store(next.preempt_saved.load(Ordering::Relaxed), Ordering::Relaxed);
    let save = cur.rsp.as_ptr();
    let load = next.rsp.load(Ordering::Acquire);
    // The registry, a queue or `reap` keeps both threads alive across the switch.
    drop(cur);
    drop(next);
    // SAFETY: interrupts are off; `load` was saved by `switch_stack` or
    // prepared by `prepare_stack` on the next thread's live stack, and only
    // this CPU ever runs that thread.
    unsafe { super::switch::switch_stack(save, load) };
    finish_switch();
}

/// Work left by the previous thread: reap it if it died, queue it on its
/// new CPU if it is moving (its registers are saved by now).
fn finish_switch() {
    let s = &percpu::this().sched;
    let moving = s.migrating.lock().take();
    if let Some(t) = moving {
        s.nthreads.fetch_sub(1, Ordering::Relaxed);
        t.set_state(State::Ready);
        make_ready(&t);
    }
    let dead = s.reap.lock().take();
    if let Some(t) = dead {
        s.nthreads.fetch_sub(1, Ordering::Relaxed);
        let stack = t.stack.lock().take();
        drop(stack);
        thread::unregister(t.id);
    }
}

/// Rust entry of every new thread (called from `switch::thread_entry`).
pub(super) extern "C" fn thread_start() -> ! {
    finish_switch();
    let cur = percpu::this().sched.current();
    let f = cur.entry.lock().take();
    drop(cur);
    x86_64::instructions::interrupts::enable();
    if let Some(f) = f {
        f();
    }
    exit_current()
}

pub(super) fn exit_current() -> ! {
    let cur = super::current();
    cur.mark_done();
    x86_64::instructions::interrupts::disable();
    cur.set_state(State::Dead);
    drop(cur);
    schedule(false);
    unreachable!("a dead thread was scheduled again");
}

pub(super) fn preempt_point() {
    let s = &percpu::this().sched;
    if s.started.load(Ordering::Acquire) && s.need_resched.load(Ordering::Acquire) && s.preemptible() {
        let idle = s.cur_prio.load(Ordering::Relaxed) == IDLE_PRIO;
        schedule(!idle);
    }
}

/// The idle loop: run whatever is ready, else halt until an interrupt.
pub(super) fn idle_loop() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        let s = &percpu::this().sched;
        if s.rq.lock().len() > 0 {
            schedule(false);
        } else {
            x86_64::instructions::interrupts::enable_and_hlt();
        }
    }
}

/// The local APIC timer interrupt: wakes sleepers, runs callouts, counts
/// down the time slice.
pub(super) fn tick(f: &mut TrapFrame) {
    let p = percpu::this();
    let s = &p.sched;
    p.stats.ticks.fetch_add(1, Ordering::Relaxed);
    crate::prof::PROFILE.sample(p.id as u32, f.rip);
    let now = now_ns();
    let mut due: Vec<Callout> = Vec::new();
    let mut moved: Vec<Arc<Thread>> = Vec::new();
    {
        let mut rq = s.rq.lock();
        while rq.sleepers.peek().is_some_and(|t| t.0.deadline <= now) {
            let Reverse(t) = rq.sleepers.pop().unwrap();
            if t.item.cpu() != s.cpu {
                // A stale timed wait of a thread that has since moved to
                // another CPU: wake it there (after this lock is dropped),
                // never onto this CPU's queue.
                moved.push(t.item);
                continue;
            }
            match t.item.state() {
                State::Blocked => {
                    t.item.set_state(State::Ready);
                    let prio = t.item.priority();
                    rq.ready[prio as usize].push_back(t.item);
                    let cur = s.cur_prio.load(Ordering::Relaxed);
                    if cur == IDLE_PRIO || (prio as u8) > cur {
                        s.request_resched();
                    }
                }
                State::Blocking => t.item.set_state(State::Running),
                _ => {}
            }
        }
        while rq.callouts.peek().is_some_and(|c| c.0.deadline <= now) {
            due.push(rq.callouts.pop().unwrap().0.item);
        }
        let cur = s.cur_prio.load(Ordering::Relaxed);
        if cur != IDLE_PRIO {
            let left = s.slice.load(Ordering::Relaxed).saturating_sub(1);
            s.slice.store(left, Ordering::Relaxed);
            if left == 0 {
                s.slice.store(SLICE_TICKS, Ordering::Relaxed);
                if rq.highest_ready().is_some_and(|hp| hp as u8 >= cur) {
                    s.request_resched();
                }
            }
        }
    }
    for t in moved {
        wake(&t);
    }
    for f in due {
        f();
    }
    if p.id == 0 {
        super::loadavg::sample();
    }
}
