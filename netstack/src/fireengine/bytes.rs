//! Byte queues (`VecDeque<u8>`: a TCB's receive buffer, a reassembly run)
//! moved by slices, never byte by byte: a `drain(..).collect()` of a byte
//! deque runs one iteration per byte, which cost 80 % of the guest's CPU
//! on a bulk receive under TCG. And [`ChunkQueue`], a socket's receive
//! queue, which holds the vectors handed to it and hands them on whole:
//! bytes a TCB delivered reach a reader without another copy.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The first `n` bytes of `q` (all of them if fewer), removed, as a vector.
pub fn take_front(q: &mut VecDeque<u8>, n: usize) -> Vec<u8> {
    let n = n.min(q.len());
    let (a, b) = q.as_slices();
    let mut v = Vec::with_capacity(n);
    let na = a.len().min(n);
    v.extend_from_slice(&a[..na]);
    v.extend_from_slice(&b[..n - na]);
    // Dropping a drain of `u8`s moves no element one by one.
    q.drain(..n);
    v
}

/// Moves the first bytes of `q` into `buf` (as many as both have);
/// returns how many.
pub fn copy_front(q: &mut VecDeque<u8>, buf: &mut [u8]) -> usize {
    let n = buf.len().min(q.len());
    let (a, b) = q.as_slices();
    let na = a.len().min(n);
    buf[..na].copy_from_slice(&a[..na]);
    buf[na..n].copy_from_slice(&b[..n - na]);
    q.drain(..n);
    n
}

/// A vector handed in smaller than this is appended to the last one
/// instead of queued on its own (so many small deliveries cost no more
/// than a vector header per this many bytes).
pub const SMALL_CHUNK: usize = 4096;

/// A FIFO of bytes kept as the vectors that were pushed (see the module
/// doc). Reading takes a whole front vector when it fits, else copies.
#[derive(Default, Debug)]
pub struct ChunkQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front vector already read.
    front_off: usize,
    len: usize,
}

impl ChunkQueue {
    /// An empty queue.
    pub const fn new() -> ChunkQueue {
        ChunkQueue { chunks: VecDeque::new(), front_off: 0, len: 0 }
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Vectors queued (a partly read front one included).
    pub fn blocks(&self) -> usize {
        self.chunks.len()
    }

    /// Queues `v`'s bytes after the others; small vectors join the last.
    pub fn push(&mut self, v: Vec<u8>) {
        if v.is_empty() {
            return;
        }
        self.len += v.len();
        if let Some(last) = self.chunks.back_mut()
            && (last.len() < SMALL_CHUNK || v.len() < SMALL_CHUNK && last.capacity() - last.len() >= v.len())
        {
            last.extend_from_slice(&v);
            return;
        }
        self.chunks.push_back(v);
    }

    fn advance(&mut self, n: usize) {
        self.len -= n;
        self.front_off += n;
        if self.chunks.front().is_some_and(|f| self.front_off >= f.len()) {
            self.chunks.pop_front();
            self.front_off = 0;
        }
    }

    /// Moves the first bytes into `buf` (as many as both have); returns
    /// how many.
    pub fn copy_front(&mut self, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let Some(f) = self.chunks.front() else { break };
            let src = &f[self.front_off..];
            let n = src.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&src[..n]);
            done += n;
            self.advance(n);
        }
        done
    }

    /// At most `max` of the first bytes, removed: the front vector itself
    /// when it is unread and fits, else a copy of up to `max` bytes.
    pub fn take_front(&mut self, max: usize) -> Vec<u8> {
        if max == 0 || self.len == 0 {
            return Vec::new();
        }
        if self.front_off == 0
            && let Some(f) = self.chunks.front()
            && f.len() <= max
            && (f.len() >= SMALL_CHUNK || self.chunks.len() == 1)
        {
            let f = self.chunks.pop_front().unwrap_or_default();
            self.len -= f.len();
            return f;
        }
        let mut v = Vec::with_capacity(max.min(self.len));
        while v.len() < max {
            let Some(f) = self.chunks.front() else { break };
            let src = &f[self.front_off..];
            let n = src.len().min(max - v.len());
            v.extend_from_slice(&src[..n]);
            self.advance(n);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn a_chunk_queue_hands_whole_vectors_on_and_copies_the_rest() {
        let mut q = ChunkQueue::new();
        assert_eq!(q.take_front(10), Vec::<u8>::new());
        let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let whole = big.clone();
        let ptr = whole.as_ptr();
        q.push(whole);
        q.push(vec![1, 2, 3]);
        q.push(vec![4]);
        assert_eq!(q.len(), 10_004);
        // The big one goes out whole, unmoved in memory.
        let out = q.take_front(64 * 1024);
        assert_eq!(out, big);
        assert_eq!(out.as_ptr(), ptr, "moved, not copied");
        // The small ones joined into one vector.
        assert_eq!(q.take_front(100), [1, 2, 3, 4]);
        assert!(q.is_empty());
        // Partial reads copy and keep the rest in order.
        q.push(big.clone());
        q.push(big.clone());
        let mut buf = [0u8; 7];
        assert_eq!(q.copy_front(&mut buf), 7);
        assert_eq!(buf, big[..7]);
        let rest = q.take_front(9_000);
        assert_eq!(rest, big[7..9007]);
        let tail = q.take_front(usize::MAX);
        let mut want = big[9007..].to_vec();
        want.extend_from_slice(&big);
        // The front one was partly read: copied together with the next.
        assert_eq!(tail.len() + q.len(), want.len());
        let mut all = tail;
        all.extend(q.take_front(usize::MAX));
        assert_eq!(all, want);
        assert!(q.is_empty());
        assert_eq!(q.copy_front(&mut buf), 0);
    }

    #[test]
    fn a_chunk_queue_matches_a_plain_deque_on_any_pattern() {
        let mut q = ChunkQueue::new();
        let mut model: VecDeque<u8> = VecDeque::new();
        let mut x = 0x1234_5678u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut byte = 0u8;
        for _ in 0..3000 {
            let r = next();
            match r % 3 {
                0 => {
                    let n = (next() % 9000) as usize;
                    let v: Vec<u8> = (0..n).map(|_| {
                        byte = byte.wrapping_add(1);
                        byte
                    }).collect();
                    model.extend(&v);
                    q.push(v);
                }
                1 => {
                    let n = (next() % 12_000) as usize;
                    let got = q.take_front(n);
                    assert!(got.len() <= n);
                    assert!(!got.is_empty() || n == 0 || model.is_empty());
                    let want = take_front(&mut model, got.len());
                    assert_eq!(got, want);
                }
                _ => {
                    let mut buf = vec![0u8; (next() % 5000) as usize];
                    let n = q.copy_front(&mut buf);
                    assert_eq!(n, buf.len().min(model.len()));
                    let want = take_front(&mut model, n);
                    assert_eq!(buf[..n], want[..]);
                }
            }
            assert_eq!(q.len(), model.len());
        }
    }

    #[test]
    fn takes_across_the_wrap_and_past_the_end() {
        let mut q: VecDeque<u8> = VecDeque::with_capacity(8);
        q.extend([9, 9, 9, 9, 9, 9]);
        q.drain(..5);
        q.extend([1, 2, 3, 4, 5]); // wraps: [9 | 1 2] [3 4 5]
        assert_eq!(take_front(&mut q, 3), [9, 1, 2]);
        assert_eq!(take_front(&mut q, 0), Vec::<u8>::new());
        assert_eq!(take_front(&mut q, 10), [3, 4, 5]);
        assert!(q.is_empty());
        assert_eq!(take_front(&mut q, 1), Vec::<u8>::new());
        q.extend([7, 7, 7, 7, 7]);
        q.drain(..4);
        q.extend([1, 2, 3, 4]); // wraps
        let mut buf = [0u8; 3];
        assert_eq!(copy_front(&mut q, &mut buf), 3);
        assert_eq!(buf, [7, 1, 2]);
        let mut big = [0u8; 8];
        assert_eq!(copy_front(&mut q, &mut big), 2);
        assert_eq!(big[..2], [3, 4]);
        assert_eq!(copy_front(&mut q, &mut big), 0);
    }
}
