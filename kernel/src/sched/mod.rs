//! Kernel threads and the per-CPU scheduler.
//!
//! Every CPU has its own run queue with one FIFO per priority, its own
//! sleep queue and timer callouts, and an idle thread that halts. A thread
//! lives on one CPU (its home, chosen at creation or bound explicitly) and
//! never migrates, so a lane's threads stay with its interrupts and data.
//! The periodic local-APIC tick preempts a thread whose time slice ran out
//! when another ready thread of the same or higher priority waits; waking
//! a higher-priority thread preempts at once (by IPI on another CPU).
//!
//! All scheduler locks are taken with interrupts off.

mod cpu;
mod loadavg;
mod switch;
mod thread;
mod wait;

pub use cpu::CpuSched;
pub use loadavg::load_average;
pub use thread::{Priority, Thread, ThreadInfo};
pub use wait::WaitQueue;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::{trap, without_interrupts};
use crate::percpu;
use crate::time::clock::now_ns;

/// Timer-tick vector (local APIC timer).
pub const TIMER_VECTOR: u8 = 0x20;
/// Reschedule IPI vector.
pub const RESCHED_VECTOR: u8 = 0xf0;

/// Scheduler ticks per second.
static HZ: AtomicU32 = AtomicU32::new(1000);

/// The tick rate.
pub fn hz() -> u32 {
    HZ.load(Ordering::Relaxed)
}

/// Sets the tick rate (kernel command line `hz=`), before any CPU starts
/// its timer.
pub fn set_hz(hz: u32) {
    HZ.store(hz.clamp(10, 10_000), Ordering::Relaxed);
}

/// Default kernel stack size for threads.
pub const STACK_SIZE: u64 = 64 * 1024;

/// Registers the scheduler's interrupt vectors (once, on the boot CPU).
pub fn init_vectors() {
    trap::register(TIMER_VECTOR, cpu::tick);
    trap::register(RESCHED_VECTOR, |_| {
        let p = percpu::this();
        p.stats.ipis.fetch_add(1, Ordering::Relaxed);
        p.sched.request_resched();
    });
}

/// Turns the code running on this CPU into its idle thread, starts the
/// tick and enters the idle loop. Never returns.
pub fn run_this_cpu() -> ! {
    let p = percpu::this();
    p.sched.adopt_boot_context();
    rearm_tick();
    cpu::idle_loop()
}

/// Restarts this CPU's periodic tick (after something, such as a
/// calibration run, used the local APIC timer).
pub fn rearm_tick() {
    let count = (crate::time::calibrate::lapic_hz() / hz() as u64).max(1);
    crate::dev::lapic::timer_periodic(TIMER_VECTOR, count.min(u32::MAX as u64) as u32);
}

/// Creates a thread running `f` on CPU `cpu` (or the least-loaded CPU)
/// at `priority`. Returns `None` when out of memory for its stack.
pub fn spawn(
    name: &str,
    priority: Priority,
    cpu: Option<usize>,
    f: impl FnOnce() + Send + 'static,
) -> Option<Arc<Thread>> {
    let home = match cpu {
        Some(c) if percpu::get(c).is_some_and(|p| p.online.load(Ordering::Acquire)) => c,
        Some(_) => return None,
        None => least_loaded_cpu(),
    };
    let t = Thread::new(String::from(name), priority, home, cpu.is_some(), Box::new(f))?;
    thread::register(&t);
    cpu::make_ready(&t);
    Some(t)
}

fn least_loaded_cpu() -> usize {
    percpu::all()
        .filter(|p| p.online.load(Ordering::Acquire))
        .min_by_key(|p| p.sched.load())
        .map(|p| p.id)
        .unwrap_or(0)
}

/// The running thread.
pub fn current() -> Arc<Thread> {
    without_interrupts(|| percpu::this().sched.current())
}

/// Name of the running thread, if the scheduler runs on this CPU.
pub fn current_name() -> Option<String> {
    let p = percpu::try_this()?;
    p.sched.try_current().map(|t| t.name.clone())
}

/// Gives the CPU to the next ready thread of the same or higher priority.
pub fn yield_now() {
    without_interrupts(|| cpu::schedule(false));
}

/// Blocks until the monotonic clock reaches `deadline_ns`. Wake-ups
/// before the deadline (stale timer entries of a timed wait) are absorbed.
pub fn sleep_until(deadline_ns: u64) {
    without_interrupts(|| {
        while now_ns() < deadline_ns {
            percpu::this().sched.add_sleeper(deadline_ns);
            cpu::schedule(false);
        }
    })
}

/// Blocks for `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    sleep_until(now_ns().saturating_add(ns));
}

/// Blocks for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    sleep_ns(ms.saturating_mul(1_000_000));
}

/// Runs `f` in interrupt context on CPU `cpu` once the clock passes
/// `deadline_ns` (a per-CPU timer callout).
pub fn callout_at(cpu: usize, deadline_ns: u64, f: impl FnOnce() + Send + 'static) -> bool {
    match percpu::get(cpu) {
        Some(p) => {
            p.sched.add_callout(deadline_ns, Box::new(f));
            true
        }
        None => false,
    }
}

/// Ends the calling thread.
pub fn exit() -> ! {
    cpu::exit_current()
}

/// Called on the way out of every interrupt: switches if a reschedule
/// was requested on this CPU.
pub fn preempt_point() {
    cpu::preempt_point();
}

/// Holds off preemption of the running thread until the matching
/// [`preempt_enable`] (nests). Interrupts still arrive; a reschedule they
/// ask for waits. Installed as `arbalest_mac::sync`'s hook so that no
/// thread is preempted while it holds a data-path spin lock.
/// Only for CPUs whose per-CPU block is installed (every CPU once the
/// scheduler runs).
#[inline]
pub fn preempt_disable() {
    percpu::this().sched.preempt_disable();
}

/// Undoes one [`preempt_disable`]; the outermost one switches at once if a
/// reschedule is pending (unless interrupts are off: in an interrupt
/// handler the exit path, elsewhere the next tick, does it).
#[inline]
pub fn preempt_enable() {
    let p = percpu::this();
    if p.sched.preempt_enable() && x86_64::instructions::interrupts::are_enabled() {
        without_interrupts(cpu::preempt_point);
    }
}

/// Moves the calling thread to CPU `cpu` (threads otherwise never
/// migrate): it continues there after this returns. False if `cpu` is not
/// on-line. Lanes use it when a link's `cpus` property changes.
pub fn migrate_self(cpu: usize) -> bool {
    cpu::migrate_self(cpu)
}

/// The CPU the caller runs on.
pub fn current_cpu() -> usize {
    percpu::cpu_id()
}

/// Changes a thread's scheduling priority (link `priority` moves its
/// lanes' threads).
pub fn set_priority(t: &Arc<Thread>, prio: Priority) {
    cpu::set_priority(t, prio);
}

/// A snapshot of every thread, for the shell.
pub fn threads() -> Vec<ThreadInfo> {
    thread::snapshot()
}
