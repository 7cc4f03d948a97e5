//! Per-squeue counters for `sqstat`: atomics bumped on the data path, read
//! without a lock into a plain [`SqStats`].

use core::sync::atomic::{AtomicU64, Ordering};

/// What `sqstat` shows for one squeue: a copy taken by
/// [`Squeue::snapshot`](super::Squeue::snapshot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SqStats {
    /// The squeue's id (its index in the set).
    pub id: u32,
    /// The CPU the squeue (and its worker) belongs to.
    pub cpu: u32,
    /// Conns bound to this squeue now.
    pub conns: u64,
    /// Entries waiting now.
    pub queue_len: u64,
    /// Entries run on the fast path (nothing queued, nobody inside).
    pub processed_inline: u64,
    /// Entries queued (busy squeue, `SQ_FILL`, or a backlog).
    pub queued: u64,
    /// Queued entries run by an entering thread's drain.
    pub drained_other: u64,
    /// Queued entries run by the worker.
    pub drained_worker: u64,
    /// Times the worker was asked to run ([`SqEnv::wake_worker`](super::SqEnv::wake_worker) calls).
    pub worker_wakeups: u64,
    /// Drains by entering threads that stopped at the time bound and left
    /// the rest to the worker.
    pub drain_time_limit: u64,
    /// Longest queue seen.
    pub max_queue_len: u64,
    /// Entries refused because the queue was full.
    pub drops: u64,
    /// Entries whose caller ran on another CPU than the squeue's.
    pub remote_enters: u64,
}

/// The live counters behind [`SqStats`].
#[derive(Debug, Default)]
pub(super) struct SqCounters {
    pub conns: AtomicU64,
    pub queue_len: AtomicU64,
    pub processed_inline: AtomicU64,
    pub queued: AtomicU64,
    pub drained_other: AtomicU64,
    pub drained_worker: AtomicU64,
    pub worker_wakeups: AtomicU64,
    pub drain_time_limit: AtomicU64,
    pub max_queue_len: AtomicU64,
    pub drops: AtomicU64,
    pub remote_enters: AtomicU64,
}

/// Adds one.
#[inline]
pub(super) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl SqCounters {
    pub(super) fn snapshot(&self, id: u32, cpu: u32) -> SqStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SqStats {
            id,
            cpu,
            conns: r(&self.conns),
            queue_len: r(&self.queue_len),
            processed_inline: r(&self.processed_inline),
            queued: r(&self.queued),
            drained_other: r(&self.drained_other),
            drained_worker: r(&self.drained_worker),
            worker_wakeups: r(&self.worker_wakeups),
            drain_time_limit: r(&self.drain_time_limit),
            max_queue_len: r(&self.max_queue_len),
            drops: r(&self.drops),
            remote_enters: r(&self.remote_enters),
        }
    }
}
