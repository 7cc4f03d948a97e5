//! A connection's send queue: the bytes from SND.UNA on, sent or not,
//! bounded by the socket's `send_buf`. Acknowledged bytes leave from the
//! front; segments are copied out from any offset (a retransmission
//! reads what was sent before, byte for byte).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The send queue (see the module doc).
#[derive(Debug)]
pub struct SndBuf {
    data: VecDeque<u8>,
    limit: usize,
}

impl SndBuf {
    /// An empty queue holding at most `limit` bytes.
    pub fn new(limit: usize) -> SndBuf {
        SndBuf { data: VecDeque::new(), limit }
    }

    /// Bytes queued (unacknowledged, sent or not).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
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
        self.limit.saturating_sub(self.data.len())
    }

    /// Appends as much of `bytes` as fits; returns how much.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.space());
        self.data.extend(&bytes[..n]);
        n
    }

    /// Removes `n` acknowledged bytes from the front (all of them if
    /// fewer are queued).
    pub fn ack(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
    }

    /// A copy of up to `len` bytes from `offset` (counted from SND.UNA).
    pub fn copy(&self, offset: usize, len: usize) -> Vec<u8> {
        let end = offset.saturating_add(len).min(self.data.len());
        let start = offset.min(end);
        let (a, b) = self.data.as_slices();
        let mut out = Vec::with_capacity(end - start);
        if start < a.len() {
            out.extend_from_slice(&a[start..end.min(a.len())]);
        }
        if end > a.len() {
            out.extend_from_slice(&b[start.saturating_sub(a.len())..end - a.len()]);
        }
        out
    }

    /// Drops everything (the connection was reset).
    pub fn clear(&mut self) {
        self.data.clear();
        self.data.shrink_to_fit();
    }
}
