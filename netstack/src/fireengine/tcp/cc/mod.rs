//! Congestion control: one connection's congestion window and slow-start
//! threshold, in bytes, under NewReno (RFC 5681 with RFC 6582's window
//! rules: [`newreno`]) or CUBIC (RFC 9438: [`cubic`]), chosen with
//! `ipadm set-prop -p congestion_control=newreno|cubic tcp` (CUBIC by
//! default). Loss recovery itself (which segments go when) is the TCB's;
//! this room only says how large the window is.
//!
//! Common rules:
//!
//! * the initial window is RFC 3390's min(4·MSS, max(2·MSS, 4380))
//!   ([`initial_window`]), and ssthresh starts at `cwnd_max` (RFC 5681
//!   3.1: "arbitrarily high");
//! * slow start (cwnd < ssthresh) grows by the bytes acknowledged, at most
//!   2·MSS per ACK (RFC 5681 3.1 with RFC 3465's L = 2·SMSS); bytes left
//!   over once cwnd reaches ssthresh go to congestion avoidance;
//! * the window grows only when the sender was using it (RFC 7661's idea:
//!   an application-limited sender does not inflate it);
//! * entering recovery sets cwnd = ssthresh; full acknowledgment of the
//!   recovery point sets cwnd = min(ssthresh, max(FlightSize, MSS) + MSS)
//!   (RFC 6582 3.2 step 3, option 1: no burst when little is in flight);
//! * a timeout sets cwnd to the loss window, 1 MSS (RFC 5681 3.1), and
//!   only the first timeout of a series lowers ssthresh (RFC 5681
//!   equation 4's note);
//! * after an idle period longer than the RTO, cwnd = min(cwnd, IW) (RFC
//!   5681 4.1);
//! * cwnd never exceeds `cwnd_max` (illumos' `_cwnd_max`) nor falls below
//!   one MSS (a `cwnd_max` below the MSS is taken as one MSS; an MSS of 0
//!   as 1).
//!
//! Nothing overflows or panics for any input: sums saturate, products are
//! taken in 64 or 128 bits.

pub mod cubic;
pub mod newreno;

/// Which algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcAlgo {
    /// RFC 5681 / RFC 6582.
    NewReno,
    /// RFC 9438.
    Cubic,
}

impl CcAlgo {
    /// The `congestion_control` value: `"newreno"` or `"cubic"`.
    pub fn name(self) -> &'static str {
        match self {
            CcAlgo::NewReno => "newreno",
            CcAlgo::Cubic => "cubic",
        }
    }

    /// From a `congestion_control` value (exactly as [`CcAlgo::name`]
    /// spells it).
    pub fn parse(s: &str) -> Option<CcAlgo> {
        match s {
            "newreno" => Some(CcAlgo::NewReno),
            "cubic" => Some(CcAlgo::Cubic),
            _ => None,
        }
    }
}

/// What both algorithms share.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) cwnd: u32,
    pub(crate) ssthresh: u32,
    pub(crate) mss: u32,
    pub(crate) cwnd_max: u32,
}

impl Window {
    fn new(mss: u32, cwnd_max: u32) -> Window {
        let mss = mss.max(1);
        let cwnd_max = cwnd_max.max(mss);
        Window { cwnd: initial_window(mss).min(cwnd_max), ssthresh: cwnd_max, mss, cwnd_max }
    }

    /// cwnd = `v` within [MSS, `cwnd_max`].
    pub(crate) fn set_cwnd(&mut self, v: u64) {
        self.cwnd = v.clamp(u64::from(self.mss), u64::from(self.cwnd_max)) as u32;
    }

    /// Slow start: + min(acked, 2·MSS), not past ssthresh; returns the
    /// bytes acknowledged beyond what slow start needed to reach ssthresh
    /// (for congestion avoidance), 0 while below it.
    fn slow_start(&mut self, acked: u32) -> u32 {
        let room = self.ssthresh.saturating_sub(self.cwnd);
        let inc = acked.min(self.mss.saturating_mul(2)).min(room);
        self.set_cwnd(u64::from(self.cwnd) + u64::from(inc));
        if self.cwnd < self.ssthresh {
            0
        } else {
            acked.saturating_sub(inc)
        }
    }
}

/// RFC 3390's initial window: min(4·MSS, max(2·MSS, 4380)) bytes.
pub fn initial_window(mss: u32) -> u32 {
    mss.saturating_mul(4).min(mss.saturating_mul(2).max(4380))
}

#[derive(Clone, Copy, Debug)]
enum Algo {
    NewReno(newreno::NewReno),
    Cubic(cubic::Cubic),
}

/// One connection's congestion controller (see the module doc).
#[derive(Clone, Copy, Debug)]
pub struct Cc {
    w: Window,
    algo: Algo,
    /// The window and the algorithm's state before the last reduction,
    /// for [`Cc::undo`].
    prior: Option<(u32, u32, Algo)>,
}

impl Cc {
    /// At the initial window (RFC 3390), ssthresh at `cwnd_max`.
    pub fn new(algo: CcAlgo, mss: u32, cwnd_max: u32) -> Cc {
        let w = Window::new(mss, cwnd_max);
        let algo = match algo {
            CcAlgo::NewReno => Algo::NewReno(newreno::NewReno::default()),
            CcAlgo::Cubic => Algo::Cubic(cubic::Cubic::default()),
        };
        Cc { w, algo, prior: None }
    }

    /// The algorithm.
    pub fn algo(&self) -> CcAlgo {
        match self.algo {
            Algo::NewReno(_) => CcAlgo::NewReno,
            Algo::Cubic(_) => CcAlgo::Cubic,
        }
    }

    /// cwnd (bytes).
    pub fn cwnd(&self) -> u32 {
        self.w.cwnd
    }

    /// ssthresh (bytes).
    pub fn ssthresh(&self) -> u32 {
        self.w.ssthresh
    }

    /// The MSS the window counts in (bytes, at least 1).
    pub fn mss(&self) -> u32 {
        self.w.mss
    }

    /// The ceiling (bytes, at least one MSS).
    pub fn cwnd_max(&self) -> u32 {
        self.w.cwnd_max
    }

    /// Whether cwnd < ssthresh (slow start).
    pub fn in_slow_start(&self) -> bool {
        self.w.cwnd < self.w.ssthresh
    }

    /// CUBIC's state (W_max, K, W_est, epoch start), for tests and
    /// `netstat`; `None` under NewReno.
    pub fn cubic(&self) -> Option<&cubic::Cubic> {
        match &self.algo {
            Algo::Cubic(c) => Some(c),
            Algo::NewReno(_) => None,
        }
    }

    /// The segment size changed (the handshake's MSS, a PMTU change): the
    /// initial window follows it if cwnd is still the old initial window;
    /// otherwise cwnd only moves into [MSS, `cwnd_max`].
    pub fn set_mss(&mut self, mss: u32) {
        let mss = mss.max(1);
        let was_initial = self.w.cwnd == initial_window(self.w.mss).min(self.w.cwnd_max);
        self.w.mss = mss;
        self.w.cwnd_max = self.w.cwnd_max.max(mss);
        self.w.ssthresh = self.w.ssthresh.min(self.w.cwnd_max);
        if was_initial {
            self.w.cwnd = initial_window(mss).min(self.w.cwnd_max);
        }
        self.w.set_cwnd(u64::from(self.w.cwnd));
    }

    /// New data acknowledged outside recovery: slow start below ssthresh,
    /// congestion avoidance from it (NewReno: + MSS per cwnd of bytes;
    /// CUBIC: towards W_cubic(t + SRTT), at least W_est). Nothing grows
    /// when `cwnd_limited` is false (the application, not cwnd, limited
    /// the sender).
    pub fn on_ack(&mut self, acked: u32, now_us: u64, srtt_us: Option<u64>, cwnd_limited: bool) {
        if !cwnd_limited || acked == 0 {
            return;
        }
        let mut left = acked;
        if self.w.cwnd < self.w.ssthresh {
            left = self.w.slow_start(acked);
            if left == 0 {
                return;
            }
        }
        match &mut self.algo {
            Algo::NewReno(a) => a.avoid(&mut self.w, left),
            Algo::Cubic(a) => a.avoid(&mut self.w, left, now_us, srtt_us),
        }
    }

    /// The window in use when a loss is found: the flight, but never more
    /// than cwnd (in SACK recovery, and after it, SND.MAX − SND.UNA also
    /// counts SACKed bytes that are not in the network; a reduction must
    /// never raise ssthresh above the window that was used).
    pub fn in_use(&self, flight: u32) -> u32 {
        flight.min(self.w.cwnd.max(self.w.mss))
    }

    /// Lowers ssthresh for a loss in `flight` bytes (the caller bounds it
    /// with [`Cc::in_use`]), saving the state for [`Cc::undo`].
    fn reduce(&mut self, flight: u32, rto: bool) {
        self.prior = Some((self.w.cwnd, self.w.ssthresh, self.algo));
        match &mut self.algo {
            Algo::NewReno(a) => {
                a.reset();
                newreno::reduce(&mut self.w, flight);
            }
            Algo::Cubic(a) => a.reduce(&mut self.w, flight, rto),
        }
    }

    /// A loss found by duplicate ACKs or SACK (entering fast recovery):
    /// ssthresh = max(β·flight, 2·MSS) with β 1/2 (NewReno, RFC 5681
    /// equation 4) or 0.7 (CUBIC, RFC 9438 4.6, with fast convergence's
    /// W_max), cwnd = ssthresh. Returns the new cwnd.
    pub fn on_loss(&mut self, flight: u32, now_us: u64) -> u32 {
        let _ = now_us;
        self.reduce(flight, false);
        self.w.set_cwnd(u64::from(self.w.ssthresh));
        self.w.cwnd
    }

    /// Recovery ended (the recovery point was acknowledged): cwnd =
    /// min(ssthresh, max(flight, MSS) + MSS) (RFC 6582 3.2 step 3, option
    /// 1).
    pub fn on_recovery_end(&mut self, flight: u32) {
        let v = u64::from(self.w.ssthresh).min(u64::from(flight.max(self.w.mss)) + u64::from(self.w.mss));
        self.w.set_cwnd(v);
    }

    /// The retransmission timer expired: cwnd = 1 MSS (the loss window);
    /// the first timeout of a series (`first`) also lowers ssthresh to
    /// max(flight/2, 2·MSS) (NewReno) or max(0.7·flight, 2·MSS) with W_max
    /// (CUBIC, RFC 9438 4.8), and the next CUBIC epoch starts with K = 0.
    pub fn on_rto(&mut self, flight: u32, first: bool, now_us: u64) {
        let _ = now_us;
        if first {
            self.reduce(flight, true);
        } else if let Algo::Cubic(a) = &mut self.algo {
            a.restart_epoch();
        }
        self.w.set_cwnd(u64::from(self.w.mss));
    }

    /// RFC 5681 4.1: idle for longer than an RTO: cwnd = min(cwnd, IW);
    /// CUBIC starts a new epoch at the next ACK.
    pub fn on_idle_restart(&mut self) {
        let v = self.w.cwnd.min(initial_window(self.w.mss));
        self.w.set_cwnd(u64::from(v));
        if let Algo::Cubic(a) = &mut self.algo {
            a.restart_epoch();
        }
    }

    /// The last reduction was spurious (the TCB found out, e.g. by D-SACK
    /// or timestamps): cwnd and ssthresh go back to at least what they were
    /// before it, and CUBIC's epoch state with them. Once per reduction;
    /// without one it does nothing.
    pub fn undo(&mut self) {
        if let Some((c, s, algo)) = self.prior.take() {
            let c = c.max(self.w.cwnd);
            self.w.ssthresh = s.max(self.w.ssthresh).min(self.w.cwnd_max);
            self.algo = algo;
            self.w.set_cwnd(u64::from(c));
        }
    }
}
