//! Load averages over 1, 5 and 15 minutes, as `uptime` prints them:
//! runnable threads sampled every 5 seconds, decayed exponentially in
//! 11-bit fixed point (the classic Unix constants).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::percpu;
use crate::time::clock::now_ns;

const FSHIFT: u64 = 11;
const FIXED_1: u64 = 1 << FSHIFT;
/// exp(-5s/1min), exp(-5s/5min), exp(-5s/15min) in fixed point.
const EXP: [u64; 3] = [1884, 2014, 2037];

static AVG: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Called from CPU 0's tick; samples every 5 seconds.
pub(super) fn sample() {
    let now = now_ns();
    let next = NEXT.load(Ordering::Relaxed);
    if now < next {
        return;
    }
    NEXT.store(now + 5_000_000_000, Ordering::Relaxed);
    let runnable: u64 = percpu::all()
        .map(|p| p.sched.ready_count() as u64 + p.sched.busy() as u64)
        .sum();
    for (i, e) in EXP.iter().enumerate() {
        let old = AVG[i].load(Ordering::Relaxed);
        let new = (old * e + runnable * FIXED_1 * (FIXED_1 - e)) >> FSHIFT;
        AVG[i].store(new, Ordering::Relaxed);
    }
}

/// Load averages in hundredths.
pub fn load_average() -> [u32; 3] {
    let f = |i: usize| ((AVG[i].load(Ordering::Relaxed) * 100 + FIXED_1 / 2) >> FSHIFT) as u32;
    [f(0), f(1), f(2)]
}
