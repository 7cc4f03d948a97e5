//! The retransmission timeout (RFC 6298): SRTT and RTTVAR from RTT
//! samples (alpha 1/8, beta 1/4, K 4, clock granularity G 1 ms), the RTO
//! kept within illumos' `_rexmit_interval_min`/`_max`, and exponential
//! backoff (section 5.5). Karn's rule is the caller's: it samples only
//! segments sent once, or with timestamps (RFC 7323 RTTM).

/// The bounds (ms): illumos' `_rexmit_interval_initial`, `_min`, `_max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtoConfig {
    /// Before any sample (RFC 6298 2.1; illumos 1 s).
    pub initial_ms: u64,
    /// The floor (illumos 400 ms).
    pub min_ms: u64,
    /// The ceiling, backoff included (illumos 60 s).
    pub max_ms: u64,
}

impl Default for RtoConfig {
    fn default() -> Self {
        RtoConfig { initial_ms: 1000, min_ms: 400, max_ms: 60_000 }
    }
}

/// Clock granularity G (µs).
const G_US: u64 = 1000;
/// RFC 6298 5.7: the RTO once data begins after a retransmitted SYN.
const SYN_REXMIT_RTO_MS: u64 = 3000;

/// One connection's estimator (see the module doc).
#[derive(Clone, Copy, Debug)]
pub struct RtoEstimator {
    cfg: RtoConfig,
    srtt_us: Option<u64>,
    rttvar_us: u64,
    base_ms: u64,
    backoffs: u32,
}

impl RtoEstimator {
    /// No sample yet: the RTO is `initial_ms` (clamped to the bounds).
    pub fn new(cfg: RtoConfig) -> Self {
        let mut e = RtoEstimator { cfg, srtt_us: None, rttvar_us: 0, base_ms: cfg.initial_ms, backoffs: 0 };
        e.base_ms = e.clamp(cfg.initial_ms);
        e
    }

    /// New bounds (the base RTO is clamped into them).
    pub fn set_config(&mut self, cfg: RtoConfig) {
        self.cfg = cfg;
        self.base_ms = self.clamp(self.base_ms);
    }

    fn clamp(&self, ms: u64) -> u64 {
        ms.max(self.cfg.min_ms).min(self.cfg.max_ms.max(self.cfg.min_ms))
    }

    /// One RTT measurement (µs): RFC 6298 2.2 for the first, 2.3 after.
    /// Resets the backoff.
    pub fn sample(&mut self, rtt_us: u64) {
        let r = rtt_us.min(u64::MAX / 16);
        match self.srtt_us {
            None => {
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2;
            }
            Some(s) => {
                let d = s.abs_diff(r);
                self.rttvar_us = (3 * self.rttvar_us + d) / 4;
                self.srtt_us = Some((7 * s + r) / 8);
            }
        }
        let s = self.srtt_us.unwrap_or(r);
        let rto_us = s.saturating_add(G_US.max(self.rttvar_us.saturating_mul(4)));
        self.base_ms = self.clamp(rto_us.div_ceil(1000));
        self.backoffs = 0;
    }

    /// The RTO now (ms): the base times 2^backoffs, at most `max_ms`.
    pub fn rto_ms(&self) -> u64 {
        let m = self.cfg.max_ms.max(self.cfg.min_ms);
        if self.backoffs >= 32 {
            return m;
        }
        self.base_ms.saturating_mul(1u64 << self.backoffs).min(m)
    }

    /// The timer expired: double (RFC 6298 5.5).
    pub fn backoff(&mut self) {
        if self.rto_ms() < self.cfg.max_ms {
            self.backoffs = self.backoffs.saturating_add(1);
        }
    }

    /// New data was acknowledged: back to the base RTO.
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

    /// RTTVAR (µs).
    pub fn rttvar_us(&self) -> u64 {
        self.rttvar_us
    }

    /// RFC 6298 5.7: the SYN was retransmitted and no sample was taken
    /// from its answer: the RTO for data starts at 3 s.
    pub fn syn_retransmitted(&mut self) {
        if self.srtt_us.is_none() {
            self.base_ms = self.clamp(SYN_REXMIT_RTO_MS);
        }
    }
}
