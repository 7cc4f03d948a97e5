//! The Internet checksum (RFC 1071): an incremental accumulator over any
//! number of slices, the IPv4 pseudo-header sum, and the RFC 1624
//! incremental update used when one header field changes (TTL decrement).

use core::net::Ipv4Addr;

/// Running one's-complement sum over a byte stream given in pieces.
///
/// Slices may have any length: an odd byte left at the end of one slice is
/// paired with the first byte of the next, so the result is the same as
/// summing the concatenation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u32,
    odd: Option<u8>,
}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum { sum: 0, odd: None }
    }

    /// Adds one big-endian 16-bit word (on a word boundary of the stream;
    /// a pending odd byte is not affected).
    pub fn add_u16(&mut self, word: u16) {
        self.sum += u32::from(word);
        self.sum = (self.sum & 0xffff) + (self.sum >> 16);
    }

    /// Adds a 32-bit value as two words.
    pub fn add_u32(&mut self, v: u32) {
        self.add_u16((v >> 16) as u16);
        self.add_u16(v as u16);
    }

    /// Adds the bytes of `data`, continuing the stream of earlier slices.
    pub fn add(&mut self, data: &[u8]) {
        let mut rest = data;
        if let Some(hi) = self.odd {
            match rest.split_first() {
                Some((&lo, tail)) => {
                    self.odd = None;
                    self.add_u16(u16::from_be_bytes([hi, lo]));
                    rest = tail;
                }
                None => return,
            }
        }
        let mut chunks = rest.chunks_exact(2);
        let mut acc: u64 = 0;
        for c in &mut chunks {
            acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        self.add_u16(acc as u16);
        if let [last] = chunks.remainder() {
            self.odd = Some(*last);
        }
    }

    /// The folded one's-complement sum (not complemented). A pending odd
    /// byte counts as padded with a zero byte.
    pub fn fold(&self) -> u16 {
        let mut s = self.sum;
        if let Some(hi) = self.odd {
            s += u32::from(hi) << 8;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// The checksum to put in a header: the complement of [`fold`](Self::fold).
    /// Over data that contains a correct checksum this is 0.
    pub fn finish(&self) -> u16 {
        !self.fold()
    }
}

/// The RFC 1071 checksum of one slice.
pub fn checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add(data);
    c.finish()
}

/// A sum started with the IPv4 pseudo-header (source, destination, zero,
/// protocol, upper-layer length) for TCP and UDP.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> Checksum {
    let mut c = Checksum::new();
    c.add_u32(u32::from(src));
    c.add_u32(u32::from(dst));
    c.add_u16(u16::from(protocol));
    c.add_u16(length);
    c
}

/// RFC 1624 eqn. 3: the new header checksum after one 16-bit word of the
/// covered data changes from `old_word` to `new_word`:
/// `HC' = ~(~HC + ~m + m')`.
pub fn update_u16(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    let mut c = Checksum::new();
    c.add_u16(!old_checksum);
    c.add_u16(!old_word);
    c.add_u16(new_word);
    c.finish()
}
