//! The HTTP server's counters, shared by the connections of one instance
//! and read by `svcs -l` and the status page.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Counters of one instance's HTTP service.
#[derive(Default, Debug)]
pub struct HttpCounters {
    /// Connections accepted and served.
    pub conns: AtomicU64,
    /// Connections open now.
    pub active: AtomicU64,
    /// Connections refused because the bound was reached (a `503` and
    /// close, or a RST far beyond it).
    pub refused: AtomicU64,
    /// Requests parsed (well-formed or not: every answer counts one).
    pub requests: AtomicU64,
    /// Responses by class: 1xx .. 5xx.
    pub status: [AtomicU64; 5],
    /// Connections closed for being too slow (`408`, or idle).
    pub timeouts: AtomicU64,
    /// Request bytes read.
    pub bytes_in: AtomicU64,
    /// Response bytes sent (heads and bodies).
    pub bytes_out: AtomicU64,
}

impl HttpCounters {
    /// Counts one response with `code`.
    pub fn count_status(&self, code: u16) {
        let class = usize::from(code / 100).clamp(1, 5) - 1;
        self.status[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter by name (the order `svcs -l` prints them).
    pub fn fields(&self) -> Vec<(&'static str, u64)> {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        alloc::vec![
            ("conns", l(&self.conns)),
            ("active", l(&self.active)),
            ("refused", l(&self.refused)),
            ("requests", l(&self.requests)),
            ("resp_1xx", l(&self.status[0])),
            ("resp_2xx", l(&self.status[1])),
            ("resp_3xx", l(&self.status[2])),
            ("resp_4xx", l(&self.status[3])),
            ("resp_5xx", l(&self.status[4])),
            ("timeouts", l(&self.timeouts)),
            ("bytes_in", l(&self.bytes_in)),
            ("bytes_out", l(&self.bytes_out)),
        ]
    }
}
