//! The profiling interrupt's counters: one slot per (CPU, program counter)
//! in a fixed open-addressed table of atomics, so that a tick on any CPU
//! can count without a lock or an allocation. While no profile runs the
//! tick's whole cost is one relaxed load and a predictable branch. Samples
//! that find no free slot within [`PROBES`] are counted as lost, never
//! dropped silently.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Slots in the table (a power of two).
pub const SLOTS: usize = 8192;
/// Slots one sample looks at before it counts itself lost.
pub const PROBES: usize = 32;

struct Slot {
    /// `(cpu + 1) << 56 | pc`; 0 is free.
    key: AtomicU64,
    count: AtomicU64,
}

/// The counters of one profile.
pub struct Sampler {
    on: AtomicBool,
    slots: [Slot; SLOTS],
    samples: AtomicU64,
    lost: AtomicU64,
}

/// One row of a finished profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub cpu: u32,
    pub pc: u64,
    pub count: u64,
}

/// What a profile counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Samples {
    /// Every (CPU, pc) with its count, highest count first.
    pub hits: Vec<Hit>,
    /// Samples taken (counted or lost).
    pub samples: u64,
    /// Samples that found no free slot.
    pub lost: u64,
}

const PC_MASK: u64 = (1 << 56) - 1;

fn key(cpu: u32, pc: u64) -> u64 {
    (u64::from(cpu & 0x7f) + 1) << 56 | (pc & PC_MASK)
}

fn hash(k: u64) -> usize {
    // Fibonacci hashing: nearby PCs spread over the table.
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 50) as usize
}

impl Sampler {
    /// An idle sampler.
    pub const fn new() -> Sampler {
        Sampler {
            on: AtomicBool::new(false),
            slots: [const { Slot { key: AtomicU64::new(0), count: AtomicU64::new(0) } }; SLOTS],
            samples: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    /// True while a profile runs.
    pub fn running(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Counts one tick of `cpu` that interrupted `pc`, if a profile runs.
    #[inline]
    pub fn sample(&self, cpu: u32, pc: u64) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        self.count(key(cpu, pc));
    }

    fn count(&self, k: u64) {
        self.samples.fetch_add(1, Ordering::Relaxed);
        let h = hash(k);
        for i in 0..PROBES {
            let slot = &self.slots[(h + i) & (SLOTS - 1)];
            let cur = slot.key.load(Ordering::Acquire);
            let mine = cur == k
                || (cur == 0
                    && match slot.key.compare_exchange(0, k, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => true,
                        Err(other) => other == k,
                    });
            if mine {
                slot.count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.lost.fetch_add(1, Ordering::Relaxed);
    }

    /// Clears the counters and starts counting. False if a profile was
    /// already running (it goes on untouched).
    pub fn start(&self) -> bool {
        if self.on.load(Ordering::Acquire) {
            return false;
        }
        for s in &self.slots {
            s.count.store(0, Ordering::Relaxed);
            s.key.store(0, Ordering::Relaxed);
        }
        self.samples.store(0, Ordering::Relaxed);
        self.lost.store(0, Ordering::Relaxed);
        self.on.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Stops counting and returns what was counted.
    pub fn stop(&self) -> Samples {
        self.on.store(false, Ordering::Release);
        let mut hits: Vec<Hit> = self
            .slots
            .iter()
            .filter_map(|s| {
                let k = s.key.load(Ordering::Acquire);
                let count = s.count.load(Ordering::Relaxed);
                (k != 0 && count > 0).then(|| Hit { cpu: ((k >> 56) - 1) as u32, pc: k & PC_MASK, count })
            })
            .collect();
        hits.sort_by(|a, b| b.count.cmp(&a.count).then(a.pc.cmp(&b.pc)).then(a.cpu.cmp(&b.cpu)));
        Samples { hits, samples: self.samples.load(Ordering::Relaxed), lost: self.lost.load(Ordering::Relaxed) }
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;

    #[test]
    fn counts_only_while_running_and_per_cpu() {
        let s = Box::new(Sampler::new());
        s.sample(0, 0x1000);
        assert!(s.start());
        assert!(!s.start(), "a second start while running");
        for _ in 0..3 {
            s.sample(0, 0x1000);
        }
        s.sample(1, 0x1000);
        s.sample(1, 0x2000);
        let got = s.stop();
        assert_eq!(got.samples, 5);
        assert_eq!(got.lost, 0);
        assert_eq!(
            got.hits,
            [Hit { cpu: 0, pc: 0x1000, count: 3 }, Hit { cpu: 1, pc: 0x1000, count: 1 }, Hit { cpu: 1, pc: 0x2000, count: 1 }]
        );
        s.sample(0, 0x1000);
        assert!(s.start(), "restart");
        assert_eq!(s.stop(), Samples::default(), "start clears");
    }

    #[test]
    fn a_full_table_counts_losses() {
        let s = Box::new(Sampler::new());
        s.start();
        let n = SLOTS as u64 + 500;
        for pc in 0..n {
            s.sample(0, 0x10_0000 + pc * 16);
        }
        let got = s.stop();
        assert_eq!(got.samples, n);
        let counted: u64 = got.hits.iter().map(|h| h.count).sum();
        assert_eq!(counted + got.lost, n);
        assert!(got.lost >= 500);
    }
}
