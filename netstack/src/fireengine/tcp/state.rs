//! The TCP connection states of RFC 9293 section 3.3.2, under the names
//! illumos' `netstat -an` prints (`tcp_state_to_string`), and which of
//! them carry data which way.

use core::fmt;

/// A connection's state. `Listen` is a listener's; an eager conn starts
/// in `SynRcvd`, an active open in `SynSent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection (the end of every path, or before `connect`).
    Closed,
    /// Waiting for SYNs.
    Listen,
    /// Our SYN is out.
    SynSent,
    /// A SYN arrived and our SYN-ACK is out.
    SynRcvd,
    /// Open both ways.
    Established,
    /// We closed; our FIN is not yet acknowledged.
    FinWait1,
    /// Our FIN is acknowledged; the peer may still send.
    FinWait2,
    /// The peer closed; we may still send.
    CloseWait,
    /// Both sent FIN at once; ours is not yet acknowledged.
    Closing,
    /// The peer closed, then we did; our FIN is not yet acknowledged.
    LastAck,
    /// Both FINs exchanged; waiting 2 MSL for strays.
    TimeWait,
}

impl State {
    /// The name illumos prints.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN_SENT",
            State::SynRcvd => "SYN_RCVD",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN_WAIT_1",
            State::FinWait2 => "FIN_WAIT_2",
            State::CloseWait => "CLOSE_WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST_ACK",
            State::TimeWait => "TIME_WAIT",
        }
    }

    /// Whether the three-way handshake is complete (RFC 9293's
    /// "synchronized" states).
    pub fn synchronized(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent | State::SynRcvd)
    }

    /// Whether the peer may still send us data (its FIN not yet received).
    pub fn can_receive(self) -> bool {
        matches!(self, State::SynRcvd | State::Established | State::FinWait1 | State::FinWait2)
    }

    /// Whether we may still queue data (our FIN not yet queued).
    pub fn can_send(self) -> bool {
        matches!(self, State::SynSent | State::SynRcvd | State::Established | State::CloseWait)
    }

    /// Whether the state counts in `tcpCurrEstab` (ESTABLISHED or
    /// CLOSE_WAIT, MIB-II).
    pub fn counts_established(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
