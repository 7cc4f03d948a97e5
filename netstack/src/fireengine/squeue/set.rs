//! The squeue set (illumos `squeue_set_t`): one [`Squeue`] per CPU, made
//! at start and never destroyed, so a conn's squeue handle stays valid.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{SqConfig, SqEntry, SqStats, Squeue};

/// One squeue per CPU and the tunables they share.
pub struct SquedSet<E: SqEntry> {
    squeues: Vec<Arc<Squeue<E>>>,
    config: Arc<SqConfig>,
    next: AtomicUsize,
}

impl<E: SqEntry> SquedSet<E> {
    /// Squeues for CPUs `0..ncpus` (at least one), each holding at most
    /// `capacity` entries, with default tunables.
    pub fn new(ncpus: u32, capacity: usize) -> SquedSet<E> {
        SquedSet::with_config(ncpus, capacity, Arc::new(SqConfig::new()))
    }

    /// As [`new`](Self::new), sharing `config`.
    pub fn with_config(ncpus: u32, capacity: usize, config: Arc<SqConfig>) -> SquedSet<E> {
        let n = ncpus.max(1);
        let squeues = (0..n).map(|cpu| Arc::new(Squeue::new(cpu, cpu, capacity, config.clone()))).collect();
        SquedSet { squeues, config, next: AtomicUsize::new(0) }
    }

    /// The tunables of the set.
    pub fn config(&self) -> &Arc<SqConfig> {
        &self.config
    }

    /// Number of squeues (CPUs).
    pub fn len(&self) -> usize {
        self.squeues.len()
    }

    /// Never true: a set has at least one squeue.
    pub fn is_empty(&self) -> bool {
        self.squeues.is_empty()
    }

    /// The squeue of `cpu`, if there is such a CPU.
    pub fn for_cpu(&self, cpu: u32) -> Option<&Arc<Squeue<E>>> {
        self.squeues.get(cpu as usize)
    }

    /// All squeues, by CPU.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Squeue<E>>> {
        self.squeues.iter()
    }

    /// The squeue for a new conn starting on `cpu`: `ip_squeue_fanout` 0 →
    /// that CPU's squeue (an unknown CPU wraps around), 1 → round-robin
    /// over all squeues.
    pub fn pick_for_new_conn(&self, cpu: u32) -> &Arc<Squeue<E>> {
        let n = self.squeues.len();
        let i = if self.config.ip_squeue_fanout() == 1 {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        } else {
            cpu as usize % n
        };
        &self.squeues[i]
    }

    /// Every squeue's counters, by CPU (`sqstat`).
    pub fn snapshot_all(&self) -> Vec<SqStats> {
        self.squeues.iter().map(|s| s.snapshot()).collect()
    }
}
