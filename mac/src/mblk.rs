//! Message blocks: a packet in one DMA buffer (`Mblk`), possibly continued
//! in more buffers (`cont`, illumos `b_cont`), with the offload metadata
//! the driver and the stack exchange; and chains of packets (`MblkChain`,
//! illumos `b_next`) as rings and soft ring sets pass them around.

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use crate::buf::DmaBuf;

/// Checksum state of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cksum {
    /// Nothing known (Rx) / all checksums already computed (Tx).
    #[default]
    None,
    /// Tx: the device must compute the checksum over `[start..]` and store
    /// it at `start + offset` (virtio `NEEDS_CSUM`, partial checksum).
    Partial { start: u16, offset: u16 },
    /// Rx: the device verified the L3/L4 checksums.
    Verified,
}

/// Segmentation offload of a large packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoKind {
    Tcp4,
    Tcp6,
    Udp,
}

/// A large send/receive: `mss` bytes of payload per wire segment, after
/// `hdr_len` bytes of headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    pub kind: GsoKind,
    pub mss: u16,
    pub hdr_len: u16,
}

/// Metadata travelling with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PktMeta {
    pub cksum: Cksum,
    pub gso: Option<Gso>,
    /// Hardware Rx ring the packet arrived on.
    pub ring: u16,
    /// Flow hash (RSS or software), 0 if unknown.
    pub hash: u32,
}

/// One packet: `len` bytes at `start` in `buf`, then `cont` for packets
/// spanning several buffers.
pub struct Mblk {
    buf: DmaBuf,
    start: u32,
    len: u32,
    pub meta: PktMeta,
    pub cont: Option<Box<Mblk>>,
}

impl Mblk {
    /// An empty packet over `buf` (no bytes yet).
    pub fn new(buf: DmaBuf) -> Mblk {
        Mblk { buf, start: 0, len: 0, meta: PktMeta::default(), cont: None }
    }

    /// A packet holding bytes `[start, start + len)` of `buf`. The range is
    /// clamped to the buffer.
    pub fn with_range(buf: DmaBuf, start: usize, len: usize) -> Mblk {
        let mut m = Mblk::new(buf);
        m.set_range(start, len);
        m
    }

    /// Sets the packet's bytes to `[start, start + len)` of the buffer,
    /// clamped to its capacity.
    pub fn set_range(&mut self, start: usize, len: usize) {
        let cap = self.buf.capacity();
        let start = start.min(cap);
        let len = len.min(cap - start);
        self.start = start as u32;
        self.len = len as u32;
    }

    /// The bytes of this block.
    pub fn data(&self) -> &[u8] {
        &self.buf.as_slice()[self.start as usize..(self.start + self.len) as usize]
    }

    /// The bytes of this block, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (s, e) = (self.start as usize, (self.start + self.len) as usize);
        &mut self.buf.as_mut_slice()[s..e]
    }

    /// Room before the data (for prepending headers).
    pub fn headroom(&self) -> usize {
        self.start as usize
    }

    /// Room after the data.
    pub fn tailroom(&self) -> usize {
        self.buf.capacity() - (self.start + self.len) as usize
    }

    /// Grows the data by `n` bytes at the front; false if there is no room.
    pub fn prepend(&mut self, n: usize) -> bool {
        if n > self.headroom() {
            return false;
        }
        self.start -= n as u32;
        self.len += n as u32;
        true
    }

    /// Drops `n` bytes from the front (clamped).
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.len as usize) as u32;
        self.start += n;
        self.len -= n;
    }

    /// Appends bytes at the end; false (nothing copied) if they don't fit.
    pub fn append(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.tailroom() {
            return false;
        }
        let e = (self.start + self.len) as usize;
        self.buf.as_mut_slice()[e..e + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len() as u32;
        true
    }

    /// Length of this block alone.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether this block holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Length of the whole packet (this block and its continuations).
    pub fn total_len(&self) -> usize {
        let mut n = self.len();
        let mut c = self.cont.as_deref();
        while let Some(m) = c {
            n += m.len();
            c = m.cont.as_deref();
        }
        n
    }

    /// Number of buffers the packet spans.
    pub fn segments(&self) -> usize {
        1 + self.cont.as_deref().map_or(0, |c| c.segments())
    }

    /// Appends `m` as the last continuation block.
    pub fn push_cont(&mut self, m: Mblk) {
        match self.cont.as_deref_mut() {
            Some(c) => c.push_cont(m),
            None => self.cont = Some(Box::new(m)),
        }
    }

    /// Copies the whole packet into `out`; returns the bytes copied (at
    /// most `out.len()`).
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        let mut b = Some(self);
        while let Some(m) = b {
            let d = m.data();
            let k = d.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&d[..k]);
            n += k;
            if n == out.len() {
                break;
            }
            b = m.cont.as_deref();
        }
        n
    }

    /// Appends the whole packet to `out` (no zeroing first, as a
    /// [`copy_to`](Self::copy_to) into a fresh buffer would need).
    pub fn append_to(&self, out: &mut alloc::vec::Vec<u8>) {
        out.reserve(self.total_len());
        let mut b = Some(self);
        while let Some(m) = b {
            out.extend_from_slice(m.data());
            b = m.cont.as_deref();
        }
    }

    /// The underlying buffer.
    pub fn buf(&self) -> &DmaBuf {
        &self.buf
    }

    /// Physical address of the first data byte (for the device).
    pub fn data_paddr(&self) -> u64 {
        self.buf.paddr() + self.start as u64
    }
}

impl core::fmt::Debug for Mblk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mblk").field("len", &self.total_len()).field("segs", &self.segments()).field("meta", &self.meta).finish()
    }
}

/// A chain of packets with its byte count.
#[derive(Default, Debug)]
pub struct MblkChain {
    pkts: VecDeque<Mblk>,
    bytes: usize,
}

impl MblkChain {
    /// An empty chain.
    pub const fn new() -> MblkChain {
        MblkChain { pkts: VecDeque::new(), bytes: 0 }
    }

    /// Appends a packet.
    pub fn push(&mut self, m: Mblk) {
        self.bytes += m.total_len();
        self.pkts.push_back(m);
    }

    /// Puts a packet back at the head.
    pub fn push_front(&mut self, m: Mblk) {
        self.bytes += m.total_len();
        self.pkts.push_front(m);
    }

    /// Takes the first packet.
    pub fn pop(&mut self) -> Option<Mblk> {
        let m = self.pkts.pop_front()?;
        self.bytes -= m.total_len();
        Some(m)
    }

    /// Appends all of `other`.
    pub fn append(&mut self, other: &mut MblkChain) {
        self.bytes += other.bytes;
        self.pkts.append(&mut other.pkts);
        other.bytes = 0;
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    /// Total bytes of all packets.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Iterates over the packets.
    pub fn iter(&self) -> impl Iterator<Item = &Mblk> {
        self.pkts.iter()
    }
}

impl Iterator for MblkChain {
    type Item = Mblk;
    fn next(&mut self) -> Option<Mblk> {
        self.pop()
    }
}

impl FromIterator<Mblk> for MblkChain {
    fn from_iter<I: IntoIterator<Item = Mblk>>(iter: I) -> Self {
        let mut c = MblkChain::new();
        for m in iter {
            c.push(m);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::BufPool;
    use crate::dma::host::HeapDma;
    use alloc::sync::Arc;

    #[test]
    fn append_to_gathers_a_chain_as_copy_to_does() {
        let dma: Arc<HeapDma> = Arc::new(Default::default());
        let p = BufPool::new(dma, 2048, 8).unwrap();
        let mut m = Mblk::with_range(p.alloc().unwrap(), 10, 3);
        m.data_mut().copy_from_slice(b"abc");
        for part in [&b"defg"[..], b"", b"hi"] {
            let mut b = Mblk::with_range(p.alloc().unwrap(), 0, part.len());
            b.data_mut().copy_from_slice(part);
            m.push_cont(b);
        }
        let mut v = alloc::vec::Vec::from(&b"<"[..]);
        m.append_to(&mut v);
        assert_eq!(v, b"<abcdefghi");
        let mut w = alloc::vec![0u8; m.total_len()];
        assert_eq!(m.copy_to(&mut w), 9);
        assert_eq!(&v[1..], &w[..]);
    }
}
