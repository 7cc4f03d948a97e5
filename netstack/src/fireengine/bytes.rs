//! Byte queues (`VecDeque<u8>`: a TCB's receive buffer, a socket's receive
//! queue, a reassembly run) moved by slices, never byte by byte: a
//! `drain(..).collect()` of a byte deque runs one iteration per byte,
//! which cost 80 % of the guest's CPU on a bulk receive under TCG.

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

#[cfg(test)]
mod tests {
    use super::*;

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
