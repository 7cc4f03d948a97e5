//! Congestion control: one connection's congestion window and slow-start
//! threshold, in bytes, under NewReno (RFC 5681 with RFC 6582's window
//! rules: [`newreno`]) or CUBIC (RFC 9438: [`cubic`]), chosen with
//! `ipadm set-prop -p congestion_control=newreno|cubic tcp` (CUBIC by
//! default). Loss recovery itself (which segments go when) is the TCB's;
//! this room only says how large the window is.
//!
//! Common rules: the initial window is RFC 3390's min(4·MSS, max(2·MSS,
//! 4380)); slow start grows by the bytes acknowledged, at most 2·MSS per
//! ACK (RFC 3465's L = 2); the window grows only when the sender was
//! using it (RFC 7661's idea: an application-limited sender does not
//! inflate it); it never exceeds `_cwnd_max` nor falls below one MSS.
//! Nothing overflows for any input: sums saturate, products are taken in
//! 128 bits.

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
    /// The `congestion_control` value.
    pub fn name(self) -> &'static str {
        match self {
            CcAlgo::NewReno => "newreno",
            CcAlgo::Cubic => "cubic",
        }
    }

    /// From a `congestion_control` value.
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
    /// Saved before a reduction, for [`Cc::undo`].
    pub(crate) prior: Option<(u32, u32)>,
}

impl Window {
    fn new(mss: u32, cwnd_max: u32) -> Window {
        let mss = mss.max(1);
        let cwnd_max = cwnd_max.max(mss);
        Window { cwnd: initial_window(mss).min(cwnd_max), ssthresh: cwnd_max, mss, cwnd_max, prior: None }
    }

    pub(crate) fn set_cwnd(&mut self, v: u64) {
        self.cwnd = v.clamp(u64::from(self.mss), u64::from(self.cwnd_max)) as u32;
    }

    /// Slow start: + min(acked, 2·MSS); returns the bytes left over past
    /// ssthresh (for congestion avoidance).
    pub(crate) fn slow_start(&mut self, acked: u32) -> u32 {
        let inc = acked.min(self.mss.saturating_mul(2));
        let room = self.ssthresh.saturating_sub(self.cwnd);
        self.set_cwnd(u64::from(self.cwnd) + u64::from(inc.min(room.max(1))));
        acked.saturating_sub(room)
    }

    fn save(&mut self) {
        self.prior = Some((self.cwnd, self.ssthresh));
    }
}

/// RFC 3390's initial window.
pub fn initial_window(mss: u32) -> u32 {
    mss.saturating_mul(4).min(mss.saturating_mul(2).max(4380))
}

#[derive(Clone, Copy, Debug)]
enum Algo {
    NewReno(newreno::NewReno),
    Cubic(cubic::Cubic),
}

/// One connection's congestion controller.
#[derive(Clone, Copy, Debug)]
pub struct Cc {
    w: Window,
    algo: Algo,
}

impl Cc {
    /// At the initial window, ssthresh at `cwnd_max`.
    pub fn new(algo: CcAlgo, mss: u32, cwnd_max: u32) -> Cc {
        let w = Window::new(mss, cwnd_max);
        let algo = match algo {
            CcAlgo::NewReno => Algo::NewReno(newreno::NewReno::default()),
            CcAlgo::Cubic => Algo::Cubic(cubic::Cubic::default()),
        };
        Cc { w, algo }
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

    /// The segment size changed (the handshake's MSS): the initial window
    /// follows it if nothing was sent under the old one yet.
    pub fn set_mss(&mut self, mss: u32) {
        let mss = mss.max(1);
        let was_initial = self.w.cwnd == initial_window(self.w.mss).min(self.w.cwnd_max);
        self.w.mss = mss;
        self.w.cwnd_max = self.w.cwnd_max.max(mss);
        if was_initial {
            self.w.cwnd = initial_window(mss).min(self.w.cwnd_max);
        }
        self.w.set_cwnd(u64::from(self.w.cwnd));
    }

    /// New data acknowledged outside recovery.
    pub fn on_ack(&mut self, acked: u32, now_us: u64, srtt_us: Option<u64>, cwnd_limited: bool) {
        if !cwnd_limited || acked == 0 {
            return;
        }
        let mut left = acked;
        if self.w.cwnd < self.w.ssthresh {
            left = self.w.slow_start(acked);
            if left == 0 || self.w.cwnd < self.w.ssthresh {
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
    fn in_use(&self, flight: u32) -> u32 {
        flight.min(self.w.cwnd.max(self.w.mss))
    }

    /// A loss found by duplicate ACKs or SACK: the new cwnd (= ssthresh).
    pub fn on_loss(&mut self, flight: u32, now_us: u64) -> u32 {
        let flight = self.in_use(flight);
        self.w.save();
        match &mut self.algo {
            Algo::NewReno(_) => newreno::reduce(&mut self.w, flight),
            Algo::Cubic(a) => a.reduce(&mut self.w, flight, now_us),
        }
        self.w.cwnd = self.w.ssthresh.max(self.w.mss);
        self.w.cwnd
    }

    /// Recovery ended: cwnd = min(ssthresh, flight + MSS) (RFC 6582 3.2
    /// step 3, the option that avoids a burst).
    pub fn on_recovery_end(&mut self, flight: u32) {
        let v = self.w.ssthresh.min(flight.saturating_add(self.w.mss));
        self.w.set_cwnd(u64::from(v));
    }

    /// The retransmission timer expired: cwnd = 1 MSS (the loss window);
    /// the first RTO of a series also lowers ssthresh.
    pub fn on_rto(&mut self, flight: u32, first: bool, now_us: u64) {
        let flight = self.in_use(flight);
        if first {
            self.w.save();
            match &mut self.algo {
                Algo::NewReno(_) => newreno::reduce(&mut self.w, flight),
                Algo::Cubic(a) => a.reduce(&mut self.w, flight, now_us),
            }
        }
        self.w.cwnd = self.w.mss;
    }

    /// RFC 5681 4.1: idle for longer than an RTO: cwnd = min(cwnd, IW).
    pub fn on_idle_restart(&mut self) {
        self.w.cwnd = self.w.cwnd.min(initial_window(self.w.mss)).max(self.w.mss);
        if let Algo::Cubic(a) = &mut self.algo {
            a.restart_epoch();
        }
    }

    /// The last reduction was spurious: back to the window before it.
    pub fn undo(&mut self) {
        if let Some((c, s)) = self.w.prior.take() {
            self.w.cwnd = c;
            self.w.ssthresh = s;
        }
    }
}
