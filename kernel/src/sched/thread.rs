//! A kernel thread: its identity, priority, home CPU, saved stack pointer
//! and guarded stack, and the registry of all threads.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;

use super::WaitQueue;
use crate::mem::stack::Stack;

/// Scheduling priority. Crossbow runs poll threads above workers above
/// services; links default to `High` (see ADMIN.md `priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Low = 0,
    Medium = 1,
    High = 2,
}

impl Priority {
    /// Number of priority levels.
    pub const COUNT: usize = 3;

    fn from_u8(v: u8) -> Priority {
        match v {
            0 => Priority::Low,
            1 => Priority::Medium,
            _ => Priority::High,
        }
    }

    /// The name `show-linkprop` and the shell use.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }
}

/// Thread states. A thread about to block is `Blocking` until it has
/// switched away; a wake-up that finds it `Blocking` cancels the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Ready = 0,
    Running = 1,
    Blocking = 2,
    Blocked = 3,
    Dead = 4,
    /// Switching off its old CPU to be queued on its new one.
    Migrating = 5,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            0 => State::Ready,
            1 => State::Running,
            2 => State::Blocking,
            3 => State::Blocked,
            5 => State::Migrating,
            _ => State::Dead,
        }
    }
}

/// A kernel thread.
pub struct Thread {
    pub id: u64,
    pub name: String,
    priority: AtomicU8,
    /// The CPU the thread runs on. It changes only when the thread moves
    /// itself ([`super::migrate_self`]).
    cpu: AtomicUsize,
    /// Whether the creator bound it to `cpu` explicitly.
    pub bound: bool,
    pub(super) is_idle: bool,
    state: AtomicU8,
    /// Saved stack pointer while switched out.
    pub(super) rsp: AtomicU64,
    pub(super) stack: Mutex<Option<Stack>>,
    pub(super) entry: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    done: AtomicBool,
    exited: WaitQueue,
    /// Times this thread was switched in.
    pub switches: AtomicU64,
    /// Nanoseconds on CPU.
    pub run_ns: AtomicU64,
    /// The CPU's preemption hold-off count while switched out.
    pub(super) preempt_saved: AtomicU32,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static REGISTRY: Mutex<BTreeMap<u64, Arc<Thread>>> = Mutex::new(BTreeMap::new());

impl Thread {
    /// A new thread with a fresh stack prepared to start in `f`.
    pub(super) fn new(name: String, priority: Priority, cpu: usize, bound: bool, f: Box<dyn FnOnce() + Send>) -> Option<Arc<Thread>> {
        let stack = Stack::new(super::STACK_SIZE)?;
        let rsp = super::switch::prepare_stack(stack.top());
        Some(Arc::new(Thread {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            priority: AtomicU8::new(priority as u8),
            cpu: AtomicUsize::new(cpu),
            bound,
            is_idle: false,
            state: AtomicU8::new(State::Ready as u8),
            rsp: AtomicU64::new(rsp),
            stack: Mutex::new(Some(stack)),
            entry: Mutex::new(Some(f)),
            done: AtomicBool::new(false),
            exited: WaitQueue::new(),
            switches: AtomicU64::new(0),
            run_ns: AtomicU64::new(0),
            preempt_saved: AtomicU32::new(0),
        }))
    }

    /// The idle thread of `cpu`: the context that boots the CPU.
    pub(super) fn idle(cpu: usize) -> Arc<Thread> {
        Arc::new(Thread {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: alloc::format!("idle/{cpu}"),
            priority: AtomicU8::new(Priority::Low as u8),
            cpu: AtomicUsize::new(cpu),
            bound: true,
            is_idle: true,
            state: AtomicU8::new(State::Running as u8),
            rsp: AtomicU64::new(0),
            stack: Mutex::new(None),
            entry: Mutex::new(None),
            done: AtomicBool::new(false),
            exited: WaitQueue::new(),
            switches: AtomicU64::new(0),
            run_ns: AtomicU64::new(0),
            preempt_saved: AtomicU32::new(0),
        })
    }

    /// The CPU it lives on.
    pub fn cpu(&self) -> usize {
        self.cpu.load(Ordering::Acquire)
    }

    /// Changes the home CPU: only the thread itself, on its way off the
    /// old CPU (see `cpu::migrate_self`).
    pub(super) fn store_cpu(&self, cpu: usize) {
        self.cpu.store(cpu, Ordering::Release);
    }

    /// Scheduling priority.
    pub fn priority(&self) -> Priority {
        Priority::from_u8(self.priority.load(Ordering::Acquire))
    }

    /// Changes the priority field only: the caller holds the home CPU's
    /// run-queue lock and moves the thread between queues.
    pub(super) fn store_priority(&self, p: Priority) {
        self.priority.store(p as u8, Ordering::Release);
    }

    pub(super) fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(super) fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }

    pub(super) fn mark_done(&self) {
        self.done.store(true, Ordering::Release);
        self.exited.wake_all();
    }

    /// Whether the thread has finished.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Blocks until the thread has finished.
    pub fn join(&self) {
        self.exited.wait_until(|| self.is_done());
    }
}

/// What the shell shows of a thread.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    pub id: u64,
    pub name: String,
    pub cpu: usize,
    pub priority: Priority,
    pub state: &'static str,
    pub switches: u64,
    pub run_ns: u64,
}

pub(super) fn register(t: &Arc<Thread>) {
    crate::arch::without_interrupts(|| REGISTRY.lock().insert(t.id, t.clone()));
}

pub(super) fn unregister(id: u64) {
    let t = crate::arch::without_interrupts(|| REGISTRY.lock().remove(&id));
    drop(t);
}

pub(super) fn snapshot() -> Vec<ThreadInfo> {
    crate::arch::without_interrupts(|| {
        REGISTRY
            .lock()
            .values()
            .map(|t| ThreadInfo {
                id: t.id,
                name: t.name.clone(),
                cpu: t.cpu(),
                priority: t.priority(),
                state: match t.state() {
                    State::Ready | State::Migrating => "ready",
                    State::Running => "run",
                    State::Blocking | State::Blocked => "sleep",
                    State::Dead => "dead",
                },
                switches: t.switches.load(Ordering::Relaxed),
                run_ns: t.run_ns.load(Ordering::Relaxed),
            })
            .collect()
    })
}
