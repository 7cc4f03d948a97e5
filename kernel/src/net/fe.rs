//! FireEngine's system-wide state in the kernel: the squeue set (one
//! squeue per CPU, each with its worker thread, see [`super::squeue`])
//! that every FireEngine instance shares, made when the network starts.

use alloc::sync::Arc;
use alloc::vec::Vec;

use arbalest_netstack::fireengine::instance::FeSystem;
use arbalest_netstack::fireengine::squeue::{SqEnv, SqStats};

use super::squeue::KernelSqEnv;

static SYSTEM: spin::Once<Arc<FeSystem>> = spin::Once::new();

/// The squeue set, made (and its workers started) on first use.
pub fn system() -> Arc<FeSystem> {
    SYSTEM
        .call_once(|| {
            let cpus = crate::percpu::count().max(1) as u32;
            let (used, free) = crate::mem::heap::stats();
            let sys = FeSystem::new(cpus, Arc::new(KernelSqEnv), (used + free) as u64);
            let workers = super::squeue::start(drain, bound);
            log::debug!("fireengine: {cpus} squeues, {workers} workers");
            sys
        })
        .clone()
}

/// `ip_squeue_bind`: whether the workers stay on their own CPUs.
fn bound() -> bool {
    SYSTEM.get().is_none_or(|s| s.tunables.squeue.ip_squeue_bind() == 1)
}

fn drain(id: usize, _env: &dyn SqEnv) {
    if let Some(sys) = SYSTEM.get() {
        sys.worker_drain(id as u32);
    }
}

/// Every squeue's counters (empty before the first FireEngine instance).
pub fn squeue_stats() -> Vec<SqStats> {
    SYSTEM.get().map(|s| s.squeues.snapshot_all()).unwrap_or_default()
}
