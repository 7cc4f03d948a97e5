//! Wait queues: threads block on a condition and are woken by whoever
//! makes it true. The condition is checked under the queue's lock, so a
//! wake-up cannot slip between the check and the block.

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use spin::Mutex;

use super::thread::Thread;
use crate::arch::without_interrupts;
use crate::percpu;

/// A queue of threads waiting for something.
pub struct WaitQueue {
    waiters: Mutex<VecDeque<Arc<Thread>>>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> WaitQueue {
        WaitQueue { waiters: Mutex::new(VecDeque::new()) }
    }

    /// Blocks the calling thread until `cond()` holds. `cond` runs with
    /// interrupts off and the queue locked: keep it short.
    pub fn wait_until(&self, cond: impl Fn() -> bool) {
        loop {
            let done = without_interrupts(|| {
                let s = &percpu::this().sched;
                let mut w = self.waiters.lock();
                if cond() {
                    return true;
                }
                let cur = s.current();
                s.set_blocking(&cur);
                w.push_back(cur);
                drop(w);
                super::cpu::schedule(false);
                false
            });
            if done {
                return;
            }
        }
    }

    /// Like [`WaitQueue::wait_until`], but gives up when the monotonic clock
    /// passes `deadline_ns`. Returns whether `cond()` held.
    pub fn wait_until_deadline(&self, cond: impl Fn() -> bool, deadline_ns: u64) -> bool {
        loop {
            let r = without_interrupts(|| {
                let s = &percpu::this().sched;
                let cur = s.current();
                let mut w = self.waiters.lock();
                // A timed-out earlier round left this thread queued.
                w.retain(|t| !Arc::ptr_eq(t, &cur));
                if cond() {
                    return Some(true);
                }
                if crate::time::clock::now_ns() >= deadline_ns {
                    return Some(false);
                }
                // Both a wake-up and the timer can end the block; whichever
                // comes second finds the thread no longer blocked and does
                // nothing (callers loop on their condition).
                s.add_sleeper(deadline_ns);
                w.push_back(cur);
                drop(w);
                super::cpu::schedule(false);
                None
            });
            if let Some(r) = r {
                return r;
            }
        }
    }

    /// Wakes every waiting thread.
    pub fn wake_all(&self) {
        without_interrupts(|| {
            let ws = core::mem::take(&mut *self.waiters.lock());
            for t in ws.iter() {
                super::cpu::wake(t);
            }
        })
    }

    /// Wakes the longest-waiting thread.
    pub fn wake_one(&self) {
        without_interrupts(|| {
            let t = self.waiters.lock().pop_front();
            if let Some(t) = t {
                super::cpu::wake(&t);
            }
        })
    }
}
