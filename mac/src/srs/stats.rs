//! Counters of a soft ring set and its soft rings, as `dlstat show-link -r`
//! and `-r -F` print them (seed 001: per hardware lane and per fanout).

use core::sync::atomic::{AtomicU64, Ordering};

/// Rx SRS counters.
#[derive(Debug, Default)]
pub struct RxSrsStats {
    /// Packets / bytes picked up in interrupt mode (`INTRS`).
    pub intr_pkts: AtomicU64,
    pub intr_bytes: AtomicU64,
    /// Packets / bytes picked up by the poll thread (`POLLS`).
    pub poll_pkts: AtomicU64,
    pub poll_bytes: AtomicU64,
    /// Poll pickups by chain length.
    pub chain_under10: AtomicU64,
    pub chain_10to50: AtomicU64,
    pub chain_over50: AtomicU64,
    /// Poll pickups that found nothing.
    pub empty_polls: AtomicU64,
    /// Packets dropped at the SRS (queue above the high-water mark).
    pub sdrops: AtomicU64,
    /// Switches to poll mode / back to interrupt mode.
    pub poll_on: AtomicU64,
    pub poll_off: AtomicU64,
    /// Times the poll thread paused at the low-water mark.
    pub poll_pauses: AtomicU64,
}

/// A plain copy of [`RxSrsStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RxSrsCounters {
    pub intr_pkts: u64,
    pub intr_bytes: u64,
    pub poll_pkts: u64,
    pub poll_bytes: u64,
    pub chain_under10: u64,
    pub chain_10to50: u64,
    pub chain_over50: u64,
    pub empty_polls: u64,
    pub sdrops: u64,
    pub poll_on: u64,
    pub poll_off: u64,
    pub poll_pauses: u64,
}

fn d(cur: u64, prev: u64) -> u64 {
    // A counter that went backwards was reset: count from zero.
    if cur >= prev { cur - prev } else { cur }
}

impl RxSrsCounters {
    /// The change since `p`.
    pub fn since(&self, p: &RxSrsCounters) -> RxSrsCounters {
        RxSrsCounters {
            intr_pkts: d(self.intr_pkts, p.intr_pkts),
            intr_bytes: d(self.intr_bytes, p.intr_bytes),
            poll_pkts: d(self.poll_pkts, p.poll_pkts),
            poll_bytes: d(self.poll_bytes, p.poll_bytes),
            chain_under10: d(self.chain_under10, p.chain_under10),
            chain_10to50: d(self.chain_10to50, p.chain_10to50),
            chain_over50: d(self.chain_over50, p.chain_over50),
            empty_polls: d(self.empty_polls, p.empty_polls),
            sdrops: d(self.sdrops, p.sdrops),
            poll_on: d(self.poll_on, p.poll_on),
            poll_off: d(self.poll_off, p.poll_off),
            poll_pauses: d(self.poll_pauses, p.poll_pauses),
        }
    }

    /// Packets received (both modes).
    pub fn ipkts(&self) -> u64 {
        self.intr_pkts + self.poll_pkts
    }
    /// Bytes received (both modes).
    pub fn rbytes(&self) -> u64 {
        self.intr_bytes + self.poll_bytes
    }
}

impl RxSrsStats {
    /// Snapshot.
    pub fn snapshot(&self) -> RxSrsCounters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RxSrsCounters {
            intr_pkts: l(&self.intr_pkts),
            intr_bytes: l(&self.intr_bytes),
            poll_pkts: l(&self.poll_pkts),
            poll_bytes: l(&self.poll_bytes),
            chain_under10: l(&self.chain_under10),
            chain_10to50: l(&self.chain_10to50),
            chain_over50: l(&self.chain_over50),
            empty_polls: l(&self.empty_polls),
            sdrops: l(&self.sdrops),
            poll_on: l(&self.poll_on),
            poll_off: l(&self.poll_off),
            poll_pauses: l(&self.poll_pauses),
        }
    }

    /// Counts a poll pickup of `n` packets in the chain-length histogram.
    pub fn count_chain(&self, n: usize) {
        match n {
            0 => &self.empty_polls,
            1..=9 => &self.chain_under10,
            10..=50 => &self.chain_10to50,
            _ => &self.chain_over50,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// Counters of one soft ring.
#[derive(Debug, Default)]
pub struct SoftRingStats {
    pub pkts: AtomicU64,
    pub bytes: AtomicU64,
    pub drops: AtomicU64,
}

/// A plain copy of [`SoftRingStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SoftRingCounters {
    pub pkts: u64,
    pub bytes: u64,
    pub drops: u64,
}

impl SoftRingCounters {
    /// The change since `p`.
    pub fn since(&self, p: &SoftRingCounters) -> SoftRingCounters {
        SoftRingCounters { pkts: d(self.pkts, p.pkts), bytes: d(self.bytes, p.bytes), drops: d(self.drops, p.drops) }
    }
}

impl SoftRingStats {
    /// Snapshot.
    pub fn snapshot(&self) -> SoftRingCounters {
        SoftRingCounters {
            pkts: self.pkts.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            drops: self.drops.load(Ordering::Relaxed),
        }
    }
}
