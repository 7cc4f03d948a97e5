//! Soft ring sets (SRS): the per-lane receive machinery of Crossbow —
//! dynamic polling of a hardware ring, a bounded queue, and the fanout of
//! its packets to soft rings on the link's CPUs — with their counters and
//! tunables.

pub mod rx;
pub mod softring;
pub mod stats;
pub mod tunables;

pub use rx::{Mode, PollStep, RxSrs};
pub use softring::{Proto, SoftRing};
pub use stats::{RxSrsCounters, RxSrsStats, SoftRingCounters, SoftRingStats};
#[cfg(test)]
mod tests;
