//! A connection's send queue: the bytes from SND.UNA on, sent or not,
//! bounded by the socket's `send_buf`. Acknowledged bytes leave from the
//! front; segments are copied out from any offset (a retransmission
//! reads what was sent before, byte for byte).
//!
//! The bytes are kept as the vectors the sender handed over
//! ([`SndBuf::push_vec`] takes one without copying it); a small one joins
//! the last vector instead ([`SMALL`]), so that many small sends cost no
//! more than a vector header per that many bytes.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A vector pushed smaller than this joins the last one.
pub const SMALL: usize = 4096;

/// The send queue (see the module doc).
#[derive(Debug)]
pub struct SndBuf {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front vector already acknowledged.
    front_off: usize,
    len: usize,
    limit: usize,
}

impl SndBuf {
    /// An empty queue holding at most `limit` bytes.
    pub fn new(limit: usize) -> SndBuf {
        SndBuf { chunks: VecDeque::new(), front_off: 0, len: 0, limit }
    }

    /// Bytes queued (unacknowledged, sent or not).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the bound (bytes already queued stay).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Room left.
    pub fn space(&self) -> usize {
        self.limit.saturating_sub(self.len)
    }

    /// Appends as much of `bytes` as fits; returns how much.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.space());
        if n == 0 {
            return 0;
        }
        match self.chunks.back_mut() {
            Some(last) if last.len() < SMALL || n < SMALL && last.capacity() - last.len() >= n => {
                last.extend_from_slice(&bytes[..n]);
            }
            _ => self.chunks.push_back(bytes[..n].to_vec()),
        }
        self.len += n;
        n
    }

    /// Appends as much of `v` as fits, keeping the vector itself when it is
    /// not small; returns how much (the rest of `v` is dropped).
    pub fn push_vec(&mut self, mut v: Vec<u8>) -> usize {
        let n = v.len().min(self.space());
        if n < SMALL || self.chunks.back().is_some_and(|l| l.len() < SMALL) {
            return self.push(&v[..n]);
        }
        v.truncate(n);
        self.chunks.push_back(v);
        self.len += n;
        n
    }

    /// Removes `n` acknowledged bytes from the front (all of them if
    /// fewer are queued).
    pub fn ack(&mut self, n: usize) {
        let mut n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(f) = self.chunks.front() else { break };
            let left = f.len() - self.front_off;
            if n < left {
                self.front_off += n;
                break;
            }
            n -= left;
            self.chunks.pop_front();
            self.front_off = 0;
        }
    }

    /// A copy of up to `len` bytes from `offset` (counted from SND.UNA).
    pub fn copy(&self, offset: usize, len: usize) -> Vec<u8> {
        let end = offset.saturating_add(len).min(self.len);
        let start = offset.min(end);
        let mut out = Vec::with_capacity(end - start);
        // Positions are counted from the front vector's first unacked byte.
        let mut pos = 0usize;
        for (i, c) in self.chunks.iter().enumerate() {
            let data = if i == 0 { &c[self.front_off..] } else { &c[..] };
            let (from, to) = (pos, pos + data.len());
            if to > start && from < end {
                let a = start.max(from) - from;
                let b = end.min(to) - from;
                out.extend_from_slice(&data[a..b]);
            }
            pos = to;
            if pos >= end {
                break;
            }
        }
        out
    }

    /// Drops everything (the connection was reset).
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.chunks.shrink_to_fit();
        self.front_off = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_plain_deque_for_any_pushes_acks_and_copies() {
        let mut q = SndBuf::new(300_000);
        let mut model: VecDeque<u8> = VecDeque::new();
        let mut x = 0x9e37_79b9u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut byte = 0u8;
        for _ in 0..4000 {
            match next() % 4 {
                0 | 1 => {
                    let n = [1, 7, 100, 1448, 5000, 65_536][(next() % 6) as usize];
                    let v: Vec<u8> = (0..n)
                        .map(|_| {
                            byte = byte.wrapping_add(1);
                            byte
                        })
                        .collect();
                    let took = if next() % 2 == 0 { q.push(&v) } else { q.push_vec(v.clone()) };
                    assert_eq!(took, n.min(300_000 - model.len()));
                    model.extend(&v[..took]);
                    byte = byte.wrapping_sub((n - took) as u8);
                }
                2 => {
                    let n = (next() % 70_000) as usize;
                    q.ack(n);
                    let n = n.min(model.len());
                    model.drain(..n);
                }
                _ => {
                    let (off, len) = ((next() % 200_000) as usize, (next() % 70_000) as usize);
                    let want: Vec<u8> = model.iter().skip(off).take(len).copied().collect();
                    assert_eq!(q.copy(off, len), want, "copy({off}, {len}) of {}", model.len());
                }
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.space(), 300_000 - model.len());
        }
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.copy(0, 10), Vec::<u8>::new());
    }

    #[test]
    fn a_large_vector_is_kept_whole() {
        let mut q = SndBuf::new(1 << 20);
        let v = alloc::vec![7u8; 65_536];
        let p = v.as_ptr();
        assert_eq!(q.push_vec(v), 65_536);
        assert_eq!(q.chunks.front().map(|c| c.as_ptr()), Some(p));
        assert_eq!(q.push(&[1, 2, 3]), 3);
        assert_eq!(q.chunks.len(), 2, "a small push after a full vector starts one");
        assert_eq!(q.push(&[4]), 1);
        assert_eq!(q.chunks.len(), 2, "and the next small one joins it");
    }
}
