//! Partial checksums (`Cksum::Partial`) finished in software where no
//! device will finish them: a frame the switch delivers to another client
//! of the machine (a VNIC, an etherstub port), and a frame for a NIC that
//! has no transmit checksum offload (`CksumCaps::tx_partial` false). With
//! this, a stack may always ask for a partial checksum; the MAC layer
//! honours it on every path (what Linux calls `skb_checksum_help`).
//!
//! The convention is the device's (virtio `NEEDS_CSUM`, igb `TXSM`): the
//! sender stores the pseudo-header sum, not complemented, at
//! `start + offset`; the finisher sums `[start..]` of the frame, folds,
//! complements and stores the result there (a UDP zero becomes `0xffff`,
//! which both mean the same to the receiver's sum but 0 would mean "no
//! checksum").

use crate::mblk::{Cksum, Mblk};

/// Finishes `m`'s partial checksum, if it asks for one, and marks it
/// complete (`Cksum::None`). False (the frame left as it was) if the
/// offsets do not fit the frame or the frame is in more than one buffer;
/// the caller drops it (counted), as a device would.
pub fn finish(m: &mut Mblk) -> bool {
    let Cksum::Partial { start, offset } = m.meta.cksum else { return true };
    let (start, at) = (usize::from(start), usize::from(start) + usize::from(offset));
    if m.cont.is_some() || at + 2 > m.len() || start > at {
        return false;
    }
    let d = m.data_mut();
    let mut sum: u32 = 0;
    let mut chunks = d[start..].chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut v = !(sum as u16);
    if v == 0 {
        v = 0xffff;
    }
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
    m.meta.cksum = Cksum::None;
    true
}

/// Moves a partial checksum's start by `delta` bytes (a VLAN tag inserted
/// before it: +4; stripped: -4). Nothing for other frames.
pub fn shift(m: &mut Mblk, delta: i32) {
    if let Cksum::Partial { start, offset } = m.meta.cksum {
        let s = (i32::from(start) + delta).clamp(0, i32::from(u16::MAX)) as u16;
        m.meta.cksum = Cksum::Partial { start: s, offset };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::BufPool;
    use crate::dma::host::HeapDma;
    use alloc::sync::Arc;
    use alloc::vec;

    fn frame(bytes: &[u8]) -> Mblk {
        let dma: Arc<HeapDma> = Arc::new(Default::default());
        let pool = BufPool::new(dma, 2048, 2).unwrap();
        let mut m = Mblk::with_range(pool.alloc().unwrap(), 64, bytes.len());
        m.data_mut().copy_from_slice(bytes);
        m
    }

    /// The ones-complement sum of `words` then `bytes`, folded.
    fn sum(words: &[u16], bytes: &[u8]) -> u16 {
        let mut s: u32 = words.iter().map(|w| u32::from(*w)).sum();
        let mut c = bytes.chunks_exact(2);
        for w in &mut c {
            s += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [l] = c.remainder() {
            s += u32::from(*l) << 8;
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn finishes_a_udp_checksum_that_a_receiver_accepts() {
        // Pseudo header of 10.0.0.1 → 10.0.0.2, UDP, length 11.
        let pseudo = [0x0a00, 0x0001, 0x0a00, 0x0002, 17, 11];
        // UDP 1234 → 7, "abc" (odd length), the pseudo-header sum in the
        // checksum field.
        let mut udp = vec![0x04, 0xd2, 0x00, 0x07, 0x00, 0x0b, 0, 0, b'a', b'b', b'c'];
        udp[6..8].copy_from_slice(&sum(&pseudo, &[]).to_be_bytes());
        let mut f = vec![0u8; 34];
        f.extend_from_slice(&udp);
        let mut m = frame(&f);
        m.meta.cksum = Cksum::Partial { start: 34, offset: 6 };
        assert!(finish(&mut m));
        assert_eq!(m.meta.cksum, Cksum::None);
        assert_ne!(&m.data()[40..42], &[0, 0]);
        assert_eq!(sum(&pseudo, &m.data()[34..]), 0xffff, "the receiver's sum over pseudo header and datagram");
    }

    #[test]
    fn refuses_offsets_past_the_frame_and_leaves_it_alone() {
        let mut m = frame(&[0u8; 40]);
        m.meta.cksum = Cksum::Partial { start: 34, offset: 6 };
        assert!(!finish(&mut m), "the field would end at 42 > 40");
        assert!(matches!(m.meta.cksum, Cksum::Partial { .. }));
        let mut n = frame(&[0u8; 40]);
        assert!(finish(&mut n), "nothing asked: nothing to do");
    }

    #[test]
    fn a_vlan_tag_moves_the_start() {
        let mut m = frame(&[0u8; 60]);
        m.meta.cksum = Cksum::Partial { start: 34, offset: 6 };
        shift(&mut m, 4);
        assert_eq!(m.meta.cksum, Cksum::Partial { start: 38, offset: 6 });
        shift(&mut m, -4);
        assert_eq!(m.meta.cksum, Cksum::Partial { start: 34, offset: 6 });
    }
}
