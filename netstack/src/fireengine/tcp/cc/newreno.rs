//! NewReno's window (RFC 5681 section 3.1, RFC 6582): congestion
//! avoidance adds one MSS per window of bytes acknowledged; a loss halves
//! the window in flight.

use super::Window;

/// The bytes acknowledged towards the next MSS of growth.
#[derive(Clone, Copy, Debug, Default)]
pub struct NewReno {
    acked: u64,
}

impl NewReno {
    /// Congestion avoidance (RFC 5681 equation 3, byte counted).
    pub(crate) fn avoid(&mut self, w: &mut Window, acked: u32) {
        self.acked = self.acked.saturating_add(u64::from(acked));
        let cwnd = u64::from(w.cwnd.max(1));
        if self.acked >= cwnd {
            self.acked -= cwnd;
            w.set_cwnd(cwnd + u64::from(w.mss));
        }
    }
}

/// ssthresh = max(flight / 2, 2·MSS) (RFC 5681 equation 4).
pub(crate) fn reduce(w: &mut Window, flight: u32) {
    w.ssthresh = (flight / 2).max(w.mss.saturating_mul(2)).min(w.cwnd_max);
}
