//! CUBIC's window (RFC 9438): after a loss the window follows
//! W_cubic(t) = C·(t − K)³ + W_max (section 4.2; C = 0.4 segments/s³,
//! β = 0.7), concave up to the window where the loss happened and convex
//! past it, never below the window Reno would have reached (the
//! Reno-friendly region, section 4.3, α = 3(1 − β)/(1 + β)). Fast
//! convergence (section 4.7) lowers W_max when losses come below it.
//!
//! Integer arithmetic (no floating point in the kernel): windows in bytes,
//! time in ms. With W in segments and t in s, K = ∛(W_max·(1 − β)/C) =
//! ∛(0.75·W_max) s (with cwnd = β·W_max), so K in ms is
//! ∛(2.5·10⁹ · (W_max − cwnd)_bytes / MSS);
//! C·(Δt)³ in bytes is 4·Δt_ms³·MSS / 10¹⁰. Products are taken in 128 bits.

use super::Window;

/// β × 1000.
const BETA_1000: u64 = 700;
/// α × 1000: 3·(1 − 0.7)/(1 + 0.7) ≈ 0.529.
const ALPHA_1000: u128 = 529;

/// The state of the current congestion epoch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cubic {
    /// W_max (bytes): the window at the last loss.
    w_max: u64,
    /// The W_max before it (fast convergence).
    w_last_max: u64,
    /// When the epoch began (ms), once congestion avoidance has started.
    epoch_ms: Option<u64>,
    /// K (ms).
    k_ms: u64,
    /// The Reno-friendly estimate W_est (bytes).
    w_est: u64,
    /// Bytes acknowledged not yet turned into growth (sub-MSS steps).
    carry: u128,
}

/// ⌊∛n⌋.
pub fn icbrt(n: u128) -> u64 {
    if n == 0 {
        return 0;
    }
    // Bit by bit from the top: at most 43 bits of result for 128 bits in.
    let mut r: u128 = 0;
    let mut bit: u32 = 42;
    loop {
        let cand = r | (1u128 << bit);
        if cand.checked_pow(3).is_some_and(|c| c <= n) {
            r = cand;
        }
        if bit == 0 {
            break;
        }
        bit -= 1;
    }
    r as u64
}

impl Cubic {
    /// A new epoch starts at the next ACK in congestion avoidance.
    pub(crate) fn restart_epoch(&mut self) {
        self.epoch_ms = None;
    }

    /// W_cubic(t) in bytes, t in ms since the epoch began.
    fn w_cubic(&self, t_ms: u64, mss: u32) -> u64 {
        let d = i128::from(t_ms as i64) - i128::from(self.k_ms as i64);
        let delta = 4 * d * d * d * i128::from(mss) / 10_000_000_000;
        (i128::from(self.w_max as i64) + delta).clamp(0, i128::from(u32::MAX)) as u64
    }

    /// Congestion avoidance (RFC 9438 4.2–4.4).
    pub(crate) fn avoid(&mut self, w: &mut Window, acked: u32, now_us: u64, srtt_us: Option<u64>) {
        let now_ms = now_us / 1000;
        let cwnd = u64::from(w.cwnd);
        let epoch = match self.epoch_ms {
            Some(e) => e,
            None => {
                self.epoch_ms = Some(now_ms);
                if cwnd < self.w_max {
                    let n = 2_500_000_000u128 * u128::from(self.w_max - cwnd) / u128::from(w.mss.max(1));
                    self.k_ms = icbrt(n);
                } else {
                    self.k_ms = 0;
                    self.w_max = cwnd;
                }
                self.w_est = cwnd;
                self.carry = 0;
                now_ms
            }
        };
        let rtt_ms = srtt_us.map_or(100, |s| s / 1000);
        let t = now_ms.saturating_sub(epoch).saturating_add(rtt_ms);
        // The target, at most 1.5 × cwnd (section 4.2).
        let target = self.w_cubic(t, w.mss).clamp(cwnd, cwnd + cwnd / 2);
        // Reno-friendly estimate (section 4.3).
        self.w_est = self
            .w_est
            .saturating_add((ALPHA_1000 * u128::from(w.mss) * u128::from(acked) / (1000 * u128::from(cwnd.max(1)))) as u64);
        if self.w_est > target {
            if self.w_est > cwnd {
                w.set_cwnd(self.w_est.min(cwnd + u64::from(acked)));
            }
            return;
        }
        // cwnd += (target − cwnd) / cwnd per byte acknowledged.
        self.carry += u128::from(target - cwnd) * u128::from(acked);
        let inc = self.carry / u128::from(cwnd.max(1));
        self.carry -= inc * u128::from(cwnd.max(1));
        if inc > 0 {
            w.set_cwnd(cwnd.saturating_add(inc.min(u128::from(u32::MAX)) as u64));
        }
    }

    /// A loss: W_max with fast convergence, ssthresh = max(β·flight, 2·MSS)
    /// (section 4.6: flight, the window in use).
    pub(crate) fn reduce(&mut self, w: &mut Window, flight: u32, _now_us: u64) {
        let cwnd = u64::from(w.cwnd);
        if cwnd < self.w_last_max {
            // Fast convergence: W_max = cwnd · (1 + β) / 2.
            self.w_max = cwnd * (1000 + BETA_1000) / 2000;
        } else {
            self.w_max = cwnd;
        }
        self.w_last_max = cwnd;
        let base = u64::from(flight.min(w.cwnd.max(flight)));
        let ss = (base * BETA_1000 / 1000).max(u64::from(w.mss) * 2);
        w.ssthresh = ss.min(u64::from(w.cwnd_max)) as u32;
        self.epoch_ms = None;
    }

    /// W_max (bytes), for tests and `netstat`.
    pub fn w_max(&self) -> u64 {
        self.w_max
    }

    /// K (ms) of the current epoch.
    pub fn k_ms(&self) -> u64 {
        self.k_ms
    }
}
