//! The squeues' kernel side: one worker thread per CPU, bound to it, and
//! the [`SqEnv`] FireEngine's squeues run with (the clock, the CPU, waking
//! a worker after `ip_squeue_wait`).
//!
//! The squeues themselves, and what a worker does when woken, belong to
//! `arbalest_netstack::fireengine`: [`start`] takes the drain function of
//! the squeue set and calls it with the squeue id on that squeue's CPU.

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arbalest_netstack::fireengine::squeue::SqEnv;

use crate::sched::{self, Priority, WaitQueue};
use crate::time::clock;

/// A worker: when it is due (ns, `u64::MAX`: not scheduled) and where it
/// sleeps.
struct Worker {
    due: AtomicU64,
    wq: WaitQueue,
    /// The CPU of the last thread that asked for it (where an unbound
    /// worker goes, `ip_squeue_bind` 0).
    waker: AtomicUsize,
}

static WORKERS: spin::Once<Vec<Worker>> = spin::Once::new();

/// The kernel's [`SqEnv`].
pub struct KernelSqEnv;

impl SqEnv for KernelSqEnv {
    fn now_ns(&self) -> u64 {
        clock::now_ns()
    }

    fn cpu(&self) -> u32 {
        sched::current_cpu() as u32
    }

    fn wake_worker(&self, sq: u32, delay_ns: u64) {
        let Some(ws) = WORKERS.get() else { return };
        let Some(w) = ws.get(sq as usize % ws.len().max(1)) else { return };
        w.waker.store(sched::current_cpu(), Ordering::Relaxed);
        let at = clock::now_ns().saturating_add(delay_ns);
        if w.due.fetch_min(at, Ordering::AcqRel) > at {
            w.wq.wake_all();
        }
    }
}

/// Starts a worker per CPU (`sq/N`, high priority, on CPU N) that calls
/// `drain(N, env)` when its squeue asks for it. Before each drain the
/// worker asks `bound()` (`ip_squeue_bind`): true → it runs on its own CPU,
/// false → it moves to the CPU of the thread that woke it. Once; later
/// calls do nothing. Returns how many workers run.
pub fn start(drain: fn(usize, &dyn SqEnv), bound: fn() -> bool) -> usize {
    let mut fresh = false;
    let ws = WORKERS.call_once(|| {
        fresh = true;
        (0..crate::percpu::count().max(1))
            .map(|cpu| Worker { due: AtomicU64::new(u64::MAX), wq: WaitQueue::new(), waker: AtomicUsize::new(cpu) })
            .collect()
    });
    if !fresh {
        return ws.len();
    }
    let mut started = 0;
    for cpu in 0..ws.len() {
        let name = format!("sq/{cpu}");
        if sched::spawn(&name, Priority::High, Some(cpu), move || run(cpu, drain, bound)).is_some() {
            started += 1;
        } else {
            log::error!("{name}: no memory for the squeue worker");
        }
    }
    started
}

fn run(id: usize, drain: fn(usize, &dyn SqEnv), bound: fn() -> bool) -> ! {
    let Some(w) = WORKERS.get().and_then(|ws| ws.get(id)) else { sched::exit() };
    loop {
        let due = w.due.load(Ordering::Acquire);
        let now = clock::now_ns();
        if due <= now {
            // Taken: a wake-up from now on schedules the next round.
            w.due.store(u64::MAX, Ordering::Release);
            let home = if bound() { id } else { w.waker.load(Ordering::Relaxed) };
            if sched::current_cpu() != home {
                // A CPU that is not on-line keeps the worker where it is.
                let _ = sched::migrate_self(home);
            }
            drain(id, &KernelSqEnv);
            continue;
        }
        if due == u64::MAX {
            w.wq.wait_until(|| w.due.load(Ordering::Acquire) != u64::MAX);
        } else {
            w.wq.wait_until_deadline(|| w.due.load(Ordering::Acquire) < due, due);
        }
    }
}
