//! The usage history sampler: once a second it records every link's and
//! flow's counters into the MAC layer's bounded in-memory history, which
//! `dlstat show-link -h` and `flowstat -h` report.

use crate::sched::{self, Priority};
use crate::time::clock::now_ns;

/// Seconds between samples.
const INTERVAL_MS: u64 = 1000;

/// Starts the sampler thread. False if out of memory.
pub fn start() -> bool {
    sched::spawn("mac/history", Priority::Medium, None, || loop {
        sched::sleep_ms(INTERVAL_MS);
        arbalest_mac::history::record(now_ns());
    })
    .is_some()
}
