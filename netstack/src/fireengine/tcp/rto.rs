//! The retransmission timeout (RFC 6298): SRTT and RTTVAR from RTT
//! samples (section 2.2 for the first, 2.3 after it: alpha 1/8, beta 1/4,
//! K 4, clock granularity G 1 ms), the RTO kept within illumos'
//! `_rexmit_interval_min`/`_max` (RFC 6298 2.4 and 2.5 with illumos'
//! figures), exponential backoff (section 5.5) and the 3 s restart after
//! a retransmitted SYN (section 5.7). Karn's rule (section 3) is the
//! caller's: it samples only segments sent once, or with timestamps (RFC
//! 7323 RTTM).
//!
//! The estimator keeps SRTT and RTTVAR in microseconds and the unclamped
//! base RTO in milliseconds (rounded up); the bounds apply when the RTO is
//! read, so [`RtoEstimator::set_config`] can move them either way without
//! losing the estimate. Every sum saturates: no input panics.

/// The bounds (ms): illumos' `_rexmit_interval_initial`, `_min`, `_max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtoConfig {
    /// Before any sample (RFC 6298 2.1; illumos 1 s).
    pub initial_ms: u64,
    /// The floor (illumos 400 ms; RFC 6298 2.4 would say 1 s).
    pub min_ms: u64,
    /// The ceiling, backoff included (illumos 60 s; RFC 6298 2.5).
    pub max_ms: u64,
}

impl Default for RtoConfig {
    /// illumos' defaults: initial 1 s, min 400 ms, max 60 s.
    fn default() -> Self {
        RtoConfig { initial_ms: 1000, min_ms: 400, max_ms: 60_000 }
    }
}

/// Clock granularity G (µs).
pub const G_US: u64 = 1000;
/// RFC 6298 K.
pub const K: u64 = 4;
/// RFC 6298 5.7: the RTO once data begins after a retransmitted SYN (ms).
pub const SYN_REXMIT_RTO_MS: u64 = 3000;
/// Largest RTT sample taken as is (µs, about 36 years); larger samples are
/// clipped to it so the weighted sums cannot overflow.
const MAX_SAMPLE_US: u64 = 1 << 60;

/// One connection's estimator (see the module doc).
#[derive(Clone, Copy, Debug)]
pub struct RtoEstimator {
    cfg: RtoConfig,
    srtt_us: Option<u64>,
    rttvar_us: u64,
    /// SRTT + max(G, K·RTTVAR) in ms, rounded up (or the initial RTO),
    /// before the bounds.
    base_ms: u64,
    backoffs: u32,
}

impl RtoEstimator {
    /// No sample yet: the RTO is `initial_ms` (within the bounds).
    pub fn new(cfg: RtoConfig) -> Self {
        RtoEstimator { cfg, srtt_us: None, rttvar_us: 0, base_ms: cfg.initial_ms, backoffs: 0 }
    }

    /// New bounds; the estimate is kept. Before any sample the base
    /// follows the new `initial_ms`.
    pub fn set_config(&mut self, cfg: RtoConfig) {
        if self.srtt_us.is_none() && self.base_ms == self.cfg.initial_ms {
            self.base_ms = cfg.initial_ms;
        }
        self.cfg = cfg;
    }

    /// The bounds now.
    pub fn config(&self) -> RtoConfig {
        self.cfg
    }

    /// The ceiling, never below the floor (a `max_ms` under `min_ms` is
    /// read as `min_ms`).
    fn ceiling(&self) -> u64 {
        self.cfg.max_ms.max(self.cfg.min_ms)
    }

    /// The base RTO within the bounds (ms), before backoff.
    pub fn base_rto_ms(&self) -> u64 {
        self.base_ms.clamp(self.cfg.min_ms, self.ceiling())
    }

    /// One RTT measurement (µs): RFC 6298 2.2 for the first (SRTT = R,
    /// RTTVAR = R/2), 2.3 after it (RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|,
    /// then SRTT = 7/8·SRTT + 1/8·R); RTO = SRTT + max(G, 4·RTTVAR).
    /// Resets the backoff.
    pub fn sample(&mut self, rtt_us: u64) {
        let r = rtt_us.min(MAX_SAMPLE_US);
        match self.srtt_us {
            None => {
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2;
            }
            Some(s) => {
                // RTTVAR first, with the old SRTT (RFC 6298 2.3).
                let d = s.abs_diff(r);
                self.rttvar_us = (3 * self.rttvar_us + d) / 4;
                self.srtt_us = Some((7 * s + r) / 8);
            }
        }
        let s = self.srtt_us.unwrap_or(r);
        let rto_us = s.saturating_add(G_US.max(self.rttvar_us.saturating_mul(K)));
        self.base_ms = rto_us.div_ceil(1000);
        self.backoffs = 0;
    }

    /// The RTO now (ms): the base within [min, max], times 2^backoffs, at
    /// most `max_ms`.
    pub fn rto_ms(&self) -> u64 {
        let m = self.ceiling();
        let base = self.base_rto_ms();
        if self.backoffs >= 63 {
            return if base == 0 { 0 } else { m };
        }
        base.saturating_mul(1u64 << self.backoffs).min(m)
    }

    /// The timer expired: double the RTO (RFC 6298 5.5), saturating at
    /// `max_ms`. The count of backoffs goes on (saturating) past the
    /// ceiling, so [`RtoEstimator::backoffs`] tells how many expiries
    /// there were since the last sample or reset.
    pub fn backoff(&mut self) {
        self.backoffs = self.backoffs.saturating_add(1);
    }

    /// New data was acknowledged: back to the base RTO (RFC 6298 5.3's
    /// restart uses it; the backoff is kept only while nothing new is
    /// acknowledged, as illumos does).
    pub fn reset_backoff(&mut self) {
        self.backoffs = 0;
    }

    /// Backoffs since the last sample or reset.
    pub fn backoffs(&self) -> u32 {
        self.backoffs
    }

    /// SRTT (µs), once sampled.
    pub fn srtt_us(&self) -> Option<u64> {
        self.srtt_us
    }

    /// RTTVAR (µs; 0 before any sample).
    pub fn rttvar_us(&self) -> u64 {
        self.rttvar_us
    }

    /// RFC 6298 5.7: the SYN (or SYN-ACK) was retransmitted, and the
    /// handshake gave no sample (Karn's rule, no timestamps): when data
    /// begins, the RTO is re-initialized to 3 s if it was less (an initial
    /// RTO of 3 s or more is kept). With a sample, the estimate stands.
    pub fn syn_retransmitted(&mut self) {
        if self.srtt_us.is_none() {
            self.base_ms = self.base_ms.max(SYN_REXMIT_RTO_MS);
        }
    }
}
