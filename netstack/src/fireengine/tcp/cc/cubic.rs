//! CUBIC's window (RFC 9438): in congestion avoidance the window follows
//! W_cubic(t) = C·(t − K)³ + W_max (section 4.2; C = 0.4 segments/s³,
//! β_cubic = 0.7), concave below W_max (the window where the last loss
//! happened) and convex past it, never below W_est, the window Reno would
//! have reached (the Reno-friendly region, section 4.3, with α_cubic =
//! 3(1 − β)/(1 + β) = 9/17 until W_est reaches the window before the
//! loss, 1 after it). On a loss W_max is the window then, lowered to
//! W_max·(1 + β)/2 when it is below the previous W_max (fast convergence,
//! section 4.7), and ssthresh = β·flight (section 4.6). After a timeout the
//! first epoch starts with K = 0 and W_max = the window at its start
//! (section 4.8).
//!
//! Fixed point, no floating point (this is `no_std`): windows in bytes,
//! time in ms, β = 7/10 and (1 + β)/2 = 17/20 as exact ratios, α_cubic =
//! 9/17 exactly. With W in segments and t in s,
//!
//! * K = ∛((W_max − cwnd_epoch)/C), so K in ms is
//!   ∛(2.5·10⁹ · (W_max − cwnd_epoch)_bytes / MSS), by an integer cube
//!   root ([`icbrt`]), rounded down;
//! * C·(t − K)³ in bytes is 4·(t − K)_ms³·MSS / 10¹⁰, with |t − K| taken
//!   at most 10⁷ ms (about 2.8 h: C·(10⁷ ms)³ is over 2^32 bytes even for
//!   a 1-byte MSS, so the clamp changes no window) and the product in 128
//!   bits;
//! * sub-byte growth is carried from ACK to ACK (remainders kept), so
//!   small ACKs add up exactly.
//!
//! The sender's RTT for W_cubic(t + RTT) is SRTT; before any sample none
//! is added.

use super::Window;

/// β_cubic = BETA_NUM / BETA_DEN.
pub const BETA_NUM: u64 = 7;
/// See [`BETA_NUM`].
pub const BETA_DEN: u64 = 10;
/// Fast convergence's (1 + β)/2 = 17/20.
const FC_NUM: u64 = 17;
const FC_DEN: u64 = 20;
/// α_cubic = 3(1 − β)/(1 + β) = 9/17; ALPHA_DEN is also the scale of the
/// W_est remainder (α = 1 is 17/17).
const ALPHA_NUM: u128 = 9;
const ALPHA_DEN: u128 = 17;
/// 1/C in ms³ per segment: 10⁹ / 0.4.
const INV_C_MS3: u128 = 2_500_000_000;
/// C in segments per ms³ is 4 / 10¹⁰.
const C_NUM: i128 = 4;
const C_DEN: i128 = 10_000_000_000;
/// Largest |t − K| (ms) the cube is taken of (see the module doc).
const MAX_DT_MS: i128 = 10_000_000;

/// ⌊∛n⌋ (bit by bit from the top; at most 43 bits of result for 128 bits
/// in).
pub fn icbrt(n: u128) -> u64 {
    let mut r: u128 = 0;
    let mut bit: u32 = 43;
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

/// K (ms) for an epoch starting at `cwnd_epoch` bytes below `w_max`
/// (RFC 9438 equation 2); 0 when the epoch starts at or above W_max.
pub fn k_ms(w_max: u64, cwnd_epoch: u64, mss: u32) -> u64 {
    if cwnd_epoch >= w_max {
        return 0;
    }
    icbrt(INV_C_MS3 * u128::from(w_max - cwnd_epoch) / u128::from(mss.max(1)))
}

/// W_cubic(t) in bytes (RFC 9438 equation 1), `t_ms` since the epoch
/// began, within `0..=u32::MAX`.
pub fn w_cubic(w_max: u64, k_ms: u64, t_ms: u64, mss: u32) -> u64 {
    let d = (i128::from(t_ms) - i128::from(k_ms)).clamp(-MAX_DT_MS, MAX_DT_MS);
    let delta = C_NUM * d * d * d * i128::from(mss) / C_DEN;
    (i128::from(w_max) + delta).clamp(0, i128::from(u32::MAX)) as u64
}

/// The state of the current congestion epoch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cubic {
    /// W_max (bytes).
    w_max: u64,
    /// cwnd_prior: the window when the last loss was detected (bytes).
    cwnd_prior: u64,
    /// When the epoch began (ms), once congestion avoidance has started.
    epoch_ms: Option<u64>,
    /// K (ms).
    k_ms: u64,
    /// The Reno-friendly estimate W_est (bytes).
    w_est: u64,
    /// W_est's remainder, in 1/ALPHA_DEN of a byte·cwnd.
    est_carry: u128,
    /// The cubic growth's remainder (byte·cwnd).
    carry: u128,
    /// The last reduction was a timeout (section 4.8 for the next epoch).
    after_rto: bool,
}

impl Cubic {
    /// A new epoch starts at the next ACK in congestion avoidance.
    pub(crate) fn restart_epoch(&mut self) {
        self.epoch_ms = None;
    }

    /// Congestion avoidance (RFC 9438 sections 4.2 to 4.5).
    pub(crate) fn avoid(&mut self, w: &mut Window, acked: u32, now_us: u64, srtt_us: Option<u64>) {
        let now_ms = now_us / 1000;
        let mss = w.mss.max(1);
        let cwnd = u64::from(w.cwnd.max(1));
        let epoch = match self.epoch_ms {
            Some(e) => e,
            None => {
                self.epoch_ms = Some(now_ms);
                if self.after_rto || cwnd >= self.w_max {
                    // Section 4.8 (after a timeout), or no loss below us.
                    self.w_max = cwnd;
                    self.k_ms = 0;
                } else {
                    self.k_ms = k_ms(self.w_max, cwnd, mss);
                }
                self.after_rto = false;
                self.w_est = cwnd;
                self.est_carry = 0;
                self.carry = 0;
                now_ms
            }
        };
        let t = now_ms.saturating_sub(epoch);
        let rtt_ms = srtt_us.map_or(0, |s| s / 1000);

        // W_est (section 4.3): + α·MSS·acked/cwnd bytes.
        let alpha = if self.w_est >= self.cwnd_prior { ALPHA_DEN } else { ALPHA_NUM };
        self.est_carry += alpha * u128::from(mss) * u128::from(acked);
        let den = ALPHA_DEN * u128::from(cwnd);
        let inc = self.est_carry / den;
        self.est_carry -= inc * den;
        self.w_est = self.w_est.saturating_add(inc.min(u128::from(u32::MAX)) as u64).min(u64::from(u32::MAX));

        if w_cubic(self.w_max, self.k_ms, t, mss) < self.w_est {
            // The Reno-friendly region: cwnd = W_est.
            if self.w_est > cwnd {
                w.set_cwnd(self.w_est);
            }
            return;
        }
        // Concave or convex region (sections 4.4, 4.5): the target
        // W_cubic(t + RTT), between cwnd and 1.5·cwnd.
        let target = w_cubic(self.w_max, self.k_ms, t.saturating_add(rtt_ms), mss).clamp(cwnd, cwnd + cwnd / 2);
        // cwnd += (target − cwnd)/cwnd per segment acknowledged, i.e.
        // (target − cwnd)·acked/cwnd bytes.
        self.carry += u128::from(target - cwnd) * u128::from(acked);
        let inc = self.carry / u128::from(cwnd);
        self.carry -= inc * u128::from(cwnd);
        if inc > 0 {
            w.set_cwnd(cwnd.saturating_add(inc.min(u128::from(u32::MAX)) as u64));
        }
    }

    /// A loss (section 4.6; a timeout too, with `rto`): W_max with fast
    /// convergence (section 4.7), ssthresh = max(β·flight, 2·MSS).
    pub(crate) fn reduce(&mut self, w: &mut Window, flight: u32, rto: bool) {
        let cwnd = u64::from(w.cwnd);
        self.w_max = if cwnd < self.w_max { cwnd * FC_NUM / FC_DEN } else { cwnd };
        self.cwnd_prior = cwnd;
        let ss = (u64::from(flight) * BETA_NUM / BETA_DEN).max(u64::from(w.mss) * 2);
        w.ssthresh = ss.min(u64::from(w.cwnd_max)) as u32;
        self.epoch_ms = None;
        self.after_rto = rto;
    }

    /// W_max (bytes).
    pub fn w_max(&self) -> u64 {
        self.w_max
    }

    /// K (ms) of the current epoch.
    pub fn k_ms(&self) -> u64 {
        self.k_ms
    }

    /// The Reno-friendly estimate W_est (bytes).
    pub fn w_est(&self) -> u64 {
        self.w_est
    }

    /// When the epoch began (ms), if congestion avoidance has started.
    pub fn epoch_ms(&self) -> Option<u64> {
        self.epoch_ms
    }
}
