//! Bandwidth limits (`maxbw`): a token-bucket shaper per direction of a
//! client. Packets within the allowance pass at once; the excess waits in a
//! bounded queue that the kernel's bandwidth tick releases as allowance
//! accrues (the per-tick allowance of illumos' SRS); beyond the queue they
//! are dropped and counted.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::sync::Mutex;

use crate::mblk::{Mblk, MblkChain};

/// Packets a shaper queues at most.
pub const SHAPER_QUEUE: usize = 512;
/// Burst: the bucket holds this many nanoseconds of allowance (one 10 ms
/// tick, as illumos computes its per-tick allowance), at least 2 frames.
const BURST_NS: u64 = 10_000_000;

/// Bucket contents in bytes. A packet larger than the whole bucket (a
/// 64 KiB segment from a TSO/LRO NIC) passes once the bucket is full and
/// leaves it in debt, so the average rate still holds.
struct State {
    tokens: i64,
    last_ns: u64,
    queue: MblkChain,
}

/// One direction's shaper.
pub struct Shaper {
    /// Limit in bits per second; 0 = unlimited.
    limit: AtomicU64,
    state: Mutex<State>,
    /// Packets dropped because the queue was full.
    pub drops: AtomicU64,
    /// Packets that had to wait.
    pub delayed: AtomicU64,
}

impl Default for Shaper {
    fn default() -> Self {
        Shaper {
            limit: AtomicU64::new(0),
            state: Mutex::new(State { tokens: 0, last_ns: 0, queue: MblkChain::new() }),
            drops: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
        }
    }
}

impl Shaper {
    /// Sets the limit (bits/s; `None` = unlimited). Queued packets are
    /// released by the next `service`.
    pub fn set_limit(&self, bps: Option<u64>) {
        self.limit.store(bps.unwrap_or(0), Ordering::Release);
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<u64> {
        match self.limit.load(Ordering::Acquire) {
            0 => None,
            v => Some(v),
        }
    }

    fn burst(limit: u64) -> i64 {
        let b = limit as u128 * BURST_NS as u128 / 8 / 1_000_000_000;
        (b.min(i64::MAX as u128 / 4) as i64).max(2 * 1514)
    }

    /// Whether a packet of `len` bytes may go with `tokens` in the bucket.
    fn fits(tokens: i64, len: u64, limit: u64) -> bool {
        tokens >= (len as i64).min(Self::burst(limit))
    }

    fn refill(st: &mut State, limit: u64, now: u64) {
        if st.last_ns == 0 {
            st.last_ns = now;
            st.tokens = Self::burst(limit);
            return;
        }
        let dt = now.saturating_sub(st.last_ns);
        let add = (limit as u128 * dt as u128 / 8 / 1_000_000_000).min(i64::MAX as u128 / 4) as i64;
        if add > 0 {
            st.tokens = (st.tokens + add).min(Self::burst(limit));
            st.last_ns = now;
        }
    }

    /// Offers `m` at time `now`: returns it if it may go now; otherwise it
    /// is queued (or dropped, counted) and `None` returned.
    pub fn admit(&self, m: Mblk, now: u64) -> Option<Mblk> {
        let limit = self.limit.load(Ordering::Acquire);
        if limit == 0 && self.state.lock().queue.is_empty() {
            return Some(m);
        }
        let mut st = self.state.lock();
        if limit != 0 {
            Self::refill(&mut st, limit, now);
        }
        let len = m.total_len() as u64;
        if st.queue.is_empty() && (limit == 0 || Self::fits(st.tokens, len, limit)) {
            st.tokens -= len as i64;
            return Some(m);
        }
        if st.queue.len() >= SHAPER_QUEUE {
            self.drops.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.delayed.fetch_add(1, Ordering::Relaxed);
        st.queue.push(m);
        None
    }

    /// Releases what the allowance accrued by `now` permits.
    pub fn service(&self, now: u64) -> MblkChain {
        let limit = self.limit.load(Ordering::Acquire);
        let mut st = self.state.lock();
        if limit == 0 {
            return core::mem::take(&mut st.queue);
        }
        Self::refill(&mut st, limit, now);
        let mut out = MblkChain::new();
        while let Some(m) = st.queue.pop() {
            let len = m.total_len() as u64;
            if !Self::fits(st.tokens, len, limit) {
                st.queue.push_front(m);
                break;
            }
            st.tokens -= len as i64;
            out.push(m);
        }
        out
    }

    /// Whether packets wait.
    pub fn backlogged(&self) -> bool {
        !self.state.lock().queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::BufPool;
    use crate::dma::host::HeapDma;
    use alloc::sync::Arc;

    #[test]
    fn a_10_mbit_shaper_passes_10_mbit_over_a_second() {
        let pool = BufPool::new(Arc::new(HeapDma::default()), 2048, 4096).unwrap();
        let s = Shaper::default();
        s.set_limit(Some(10_000_000));
        let mut sent = 0u64;
        let mut now = 1_000_000u64;
        // Offer 1500-byte packets at 40 Mbit/s for one second, ticking 1 ms.
        for _ms in 0..1000 {
            for _ in 0..3 {
                let m = Mblk::with_range(pool.alloc().unwrap(), 0, 1500);
                if let Some(m) = s.admit(m, now) {
                    sent += m.total_len() as u64;
                }
            }
            now += 1_000_000;
            for m in s.service(now) {
                sent += m.total_len() as u64;
            }
        }
        let mbit = sent * 8 / 1_000_000;
        assert!((9..=11).contains(&mbit), "{mbit} Mbit in one second");
        assert!(s.drops.load(Ordering::Relaxed) > 0, "excess beyond the queue is dropped");
    }

    #[test]
    fn packets_larger_than_the_bucket_pass_at_the_average_rate() {
        // 64 KiB buffers: one segment is 5x the 10 ms bucket of 10 Mbit/s.
        let pool = BufPool::new(Arc::new(HeapDma::default()), 65536, 64).unwrap();
        let s = Shaper::default();
        s.set_limit(Some(10_000_000));
        let mut now = 1_000_000u64;
        let mut sent = 0u64;
        let mut held = 0usize;
        for _ms in 0..2000 {
            if held < 4 {
                let m = Mblk::with_range(pool.alloc().unwrap(), 0, 65536);
                match s.admit(m, now) {
                    Some(m) => sent += m.total_len() as u64,
                    None => held += 1,
                }
            }
            now += 1_000_000;
            for m in s.service(now) {
                sent += m.total_len() as u64;
                held -= 1;
            }
        }
        let mbit = sent * 8 / 2_000_000;
        assert!((8..=11).contains(&mbit), "{mbit} Mbit/s with 64 KiB packets");
    }

    #[test]
    fn huge_limits_do_not_overflow() {
        let pool = BufPool::new(Arc::new(HeapDma::default()), 2048, 8).unwrap();
        let s = Shaper::default();
        s.set_limit(Some(u64::MAX));
        assert!(s.admit(Mblk::with_range(pool.alloc().unwrap(), 0, 1500), 1).is_some());
        assert!(s.admit(Mblk::with_range(pool.alloc().unwrap(), 0, 1500), u64::MAX / 2).is_some());
    }

    #[test]
    fn unlimited_passes_everything_and_lifting_a_limit_flushes() {
        let pool = BufPool::new(Arc::new(HeapDma::default()), 2048, 64).unwrap();
        let s = Shaper::default();
        assert!(s.admit(Mblk::with_range(pool.alloc().unwrap(), 0, 100), 5).is_some());
        s.set_limit(Some(1_200_000));
        let mut queued = 0;
        for _ in 0..10 {
            if s.admit(Mblk::with_range(pool.alloc().unwrap(), 0, 1500), 10).is_none() {
                queued += 1;
            }
        }
        assert!(queued > 0);
        s.set_limit(None);
        assert_eq!(s.service(20).len(), queued);
        assert!(!s.backlogged());
    }
}
