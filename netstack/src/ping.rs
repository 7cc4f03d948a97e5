//! An ICMP echo requester over any [`IpStack`]: sends numbered echo
//! requests with a fixed payload, matches replies to them and keeps the
//! round-trip statistics `ping -s` prints (integer microseconds).
//!
//! Times come from the caller (`send(now_us)`) and from the stack (each
//! reply is stamped with the clock of the poll that received it), so both
//! must be the same clock.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::stack::{IpStack, NetError, PingId};

/// Default payload size, as ping's.
pub const DEFAULT_DATA: usize = 56;
/// Requests remembered for matching replies.
const OUTSTANDING: usize = 1024;

/// A matched reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingReply {
    /// Who answered.
    pub from: Ipv4Addr,
    /// Sequence number.
    pub seq: u16,
    /// ICMP length (header + data).
    pub len: usize,
    /// Round-trip time, µs.
    pub rtt_us: u64,
}

/// Totals of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PingStats {
    /// Requests sent.
    pub transmitted: u32,
    /// Distinct requests answered.
    pub received: u32,
    /// Smallest round-trip time, µs.
    pub min_us: u64,
    /// Largest round-trip time, µs.
    pub max_us: u64,
    /// Sum of round-trip times, µs.
    pub sum_us: u64,
}

impl PingStats {
    /// Mean round-trip time, µs.
    pub fn avg_us(&self) -> u64 {
        if self.received == 0 { 0 } else { self.sum_us / self.received as u64 }
    }

    /// Lost requests in percent (integer, rounded down).
    pub fn loss_percent(&self) -> u32 {
        if self.transmitted == 0 {
            return 0;
        }
        let lost = self.transmitted.saturating_sub(self.received) as u64;
        (lost * 100 / self.transmitted as u64) as u32
    }
}

/// Sends echo requests to one destination through one stack instance.
/// Closes its requester when dropped.
pub struct Pinger {
    stack: Arc<dyn IpStack>,
    id: PingId,
    dst: Ipv4Addr,
    data: Vec<u8>,
    next_seq: u16,
    /// (seq, sent at µs) of unanswered requests, oldest first.
    sent: VecDeque<(u16, u64)>,
    stats: PingStats,
}

impl Pinger {
    /// A requester to `dst` with `data_len` payload bytes (a byte pattern).
    pub fn new(stack: Arc<dyn IpStack>, dst: Ipv4Addr, data_len: usize) -> Result<Pinger, NetError> {
        let id = stack.ping_open()?;
        let data = (0..data_len).map(|i| (i & 0xff) as u8).collect();
        Ok(Pinger { stack, id, dst, data, next_seq: 0, sent: VecDeque::new(), stats: PingStats::default() })
    }

    /// The destination.
    pub fn dst(&self) -> Ipv4Addr {
        self.dst
    }

    /// Payload bytes per request.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Queues the next request (sent at the stack's next poll); returns its
    /// sequence number.
    pub fn send(&mut self, now_us: u64) -> Result<u16, NetError> {
        let seq = self.next_seq;
        self.stack.ping_send(self.id, self.dst, seq, &self.data)?;
        self.next_seq = seq.wrapping_add(1);
        if self.sent.len() == OUTSTANDING {
            self.sent.pop_front();
        }
        self.sent.push_back((seq, now_us));
        self.stats.transmitted = self.stats.transmitted.saturating_add(1);
        Ok(seq)
    }

    /// The next reply that answers an outstanding request (duplicates and
    /// strays are skipped).
    pub fn recv(&mut self) -> Option<PingReply> {
        while let Some(r) = self.stack.ping_recv(self.id) {
            if r.from != self.dst {
                continue;
            }
            let Some(i) = self.sent.iter().position(|(s, _)| *s == r.seq) else { continue };
            let (_, at) = self.sent.remove(i)?;
            let rtt_us = r.at_us.saturating_sub(at);
            let st = &mut self.stats;
            st.min_us = if st.received == 0 { rtt_us } else { st.min_us.min(rtt_us) };
            st.max_us = st.max_us.max(rtt_us);
            st.sum_us = st.sum_us.saturating_add(rtt_us);
            st.received = st.received.saturating_add(1);
            return Some(PingReply { from: r.from, seq: r.seq, len: r.len, rtt_us });
        }
        None
    }

    /// Totals so far.
    pub fn stats(&self) -> PingStats {
        self.stats
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.stack.ping_close(self.id);
    }
}
