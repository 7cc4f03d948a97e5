//! Crossbow flows: traffic of one link picked by layer-3/4 attributes
//! (`flowadm add-flow -a ...`), given its own bandwidth limit and priority
//! and counted on its own (`flowstat`).
//!
//! * [`desc`]: the attributes (`local_ip`, `remote_ip`, `transport`,
//!   `local_port`, `remote_port`, `dsfield`), their parsing and rules;
//! * [`packet`]: the key classification reads from a frame, by direction;
//! * [`table`]: the flow table of a link (one attribute combination per
//!   link) and its hashed lookups;
//! * [`entry`]: a flow — properties, shapers, counters;
//! * [`registry`]: every flow of the system, names unique;
//! * [`ClientFlows`]: what a MAC client holds — its table and the one
//!   relaxed counter its data path checks before anything else.
//!
//! Where the data path meets them: [`crate::client::MacClient`] classifies
//! each received packet after the link's own `maxbw` (illumos: the link's
//! SRS, then the flow's) and each transmitted packet before it (the flow's
//! Tx SRS, then the link's).

pub mod desc;
pub mod entry;
pub mod packet;
pub mod registry;
pub mod table;
#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::{RwLock, RwLockReadGuard};

pub use desc::{AttrError, FlowDesc, FlowMask, IpPrefix, Transport};
pub use entry::{FlowCounters, FlowEntry, FlowProps};
pub use packet::{Dir, PktKey};
pub use registry::{FlowError, valid_flow_name};
pub use table::{FlowTable, TableError};

/// The flows of one MAC client.
#[derive(Default)]
pub struct ClientFlows {
    /// Flows in the table; the data path's only check when it is 0.
    count: AtomicUsize,
    /// Flows with a limit or a backlog (the bandwidth tick's business).
    shaped: Arc<AtomicUsize>,
    table: RwLock<FlowTable>,
}

impl ClientFlows {
    /// Whether the client has flows (one relaxed load).
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a flow has a limit or packets waiting (one load).
    #[inline]
    pub fn bw_active(&self) -> bool {
        self.shaped.load(Ordering::Acquire) != 0
    }

    /// The counter of shaped flows a new flow of this client keeps.
    pub(crate) fn shaped_counter(&self) -> Arc<AtomicUsize> {
        self.shaped.clone()
    }

    /// The table, for reading (the data path holds it for one chain).
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, FlowTable> {
        self.table.read()
    }

    /// Adds a flow (see [`FlowTable::insert`]).
    pub(crate) fn insert(&self, f: Arc<FlowEntry>) -> Result<(), TableError> {
        let mut t = self.table.write();
        t.insert(f)?;
        self.count.store(t.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Removes the flow named `name`.
    pub(crate) fn remove(&self, name: &str) -> Option<Arc<FlowEntry>> {
        let mut t = self.table.write();
        let f = t.remove(name);
        self.count.store(t.len(), Ordering::Relaxed);
        f
    }
}
