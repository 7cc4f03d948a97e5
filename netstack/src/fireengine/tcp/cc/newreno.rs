//! NewReno's window (RFC 5681 section 3.1, RFC 6582 section 3.2):
//! congestion avoidance adds one MSS per window of bytes acknowledged
//! (equation 3 with byte counting, RFC 3465 section 2.1); a loss halves
//! the flight (equation 4). Slow start and the recovery steps are shared
//! ([`super::Cc`]).

use super::Window;

/// The bytes acknowledged towards the next MSS of growth.
#[derive(Clone, Copy, Debug, Default)]
pub struct NewReno {
    acked: u64,
}

impl NewReno {
    /// Congestion avoidance (RFC 5681 equation 3, byte counted): once a
    /// window's worth of bytes has been acknowledged, + 1 MSS (at most one
    /// step per ACK, RFC 5681's "at most SMSS" per ACK).
    pub(crate) fn avoid(&mut self, w: &mut Window, acked: u32) {
        self.acked = self.acked.saturating_add(u64::from(acked));
        let cwnd = u64::from(w.cwnd.max(1));
        if self.acked >= cwnd {
            self.acked -= cwnd;
            // Not more than a window's worth carried to the next step.
            self.acked = self.acked.min(cwnd);
            w.set_cwnd(cwnd + u64::from(w.mss));
        }
    }

    /// A reduction: the partial count starts over.
    pub(crate) fn reset(&mut self) {
        self.acked = 0;
    }
}

/// ssthresh = max(flight / 2, 2·MSS) (RFC 5681 equation 4), at most
/// `cwnd_max`.
pub(crate) fn reduce(w: &mut Window, flight: u32) {
    w.ssthresh = (flight / 2).max(w.mss.saturating_mul(2)).min(w.cwnd_max);
}
