//! The soft ring set tunables, readable and settable at run time (the
//! shell's `ndd /dev/mac`). Names and defaults follow illumos' `mac_srs_*`
//! and `mac_soft_ring_*` variables.

use core::sync::atomic::{AtomicU64, Ordering};

/// One tunable.
pub struct Tunable {
    pub name: &'static str,
    pub description: &'static str,
    pub min: u64,
    pub max: u64,
    pub default: u64,
    value: AtomicU64,
}

impl Tunable {
    const fn new(name: &'static str, description: &'static str, min: u64, max: u64, default: u64) -> Tunable {
        Tunable { name, description, min, max, default, value: AtomicU64::new(default) }
    }

    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    /// Sets the value; refuses one outside `[min, max]`.
    pub fn set(&self, v: u64) -> Result<(), (u64, u64)> {
        if v < self.min || v > self.max {
            return Err((self.min, self.max));
        }
        self.value.store(v, Ordering::Relaxed);
        Ok(())
    }
}

/// Bytes one poll picks up at most.
pub static POLL_MAX_BYTES: Tunable =
    Tunable::new("mac_srs_poll_max_bytes", "bytes one poll of a ring picks up at most", 1514, 16 << 20, 150_000);
/// Packets queued in an SRS above which its poll thread pauses.
pub static LOWAT: Tunable = Tunable::new("mac_srs_lowat", "queued packets above which polling pauses", 2, 65536, 256);
/// Packets queued at or below which a paused poll thread resumes, and the
/// backlog that turns interrupt mode into poll mode.
pub static POLL_THRES: Tunable =
    Tunable::new("mac_srs_poll_thres", "queued packets at which polling resumes / a backlog that starts polling", 1, 65536, 16);
/// Packets queued above which packets are dropped (counted).
pub static HIWAT: Tunable = Tunable::new("mac_srs_hiwat", "queued packets above which packets are dropped", 4, 1 << 20, 1024);
/// Packets a soft ring queues before dropping (counted).
pub static SOFTRING_MAX: Tunable =
    Tunable::new("mac_soft_ring_max_q_cnt", "packets a soft ring queues before dropping", 4, 1 << 20, 1024);
/// 1: rings switch to poll mode under load (dynamic polling); 0: interrupt
/// mode only.
pub static POLL_ENABLE: Tunable =
    Tunable::new("mac_srs_poll_enable", "1: dynamic polling; 0: interrupt mode only", 0, 1, 1);

/// 1: the poll thread processes what it picked up itself when the worker
/// is not processing (illumos `mac_latency_optimize`, `SRS_POLL_PROC`):
/// one hand-off and two context switches less per poll; 0: poll-mode
/// pickups go to the worker thread.
pub static LATENCY_OPT: Tunable =
    Tunable::new("mac_latency_optimize", "1: the poll thread processes its pickups when the worker is idle; 0: the worker does", 0, 1, 1);

/// All tunables, for listing.
pub static ALL: [&Tunable; 7] = [&POLL_MAX_BYTES, &LOWAT, &POLL_THRES, &HIWAT, &SOFTRING_MAX, &POLL_ENABLE, &LATENCY_OPT];

/// Finds a tunable by name.
pub fn find(name: &str) -> Option<&'static Tunable> {
    ALL.iter().copied().find(|t| t.name == name)
}
