//! Software segmentation (GSO) of a large TCP send: a frame marked
//! `meta.gso = Some(Gso { kind: Tcp4, mss, hdr_len })` cut into frames of
//! at most `mss` payload bytes each, as a NIC with TSO would cut it. The
//! MAC layer does this where no device will: a large frame switched to
//! another client of the machine (a VNIC, an etherstub port), and a frame
//! for a NIC without TCP segmentation offload (illumos leaves this to the
//! stack; Linux calls it `skb_gso_segment`).
//!
//! Every piece gets the headers of the large frame with: the IPv4 total
//! length of the piece and a new header checksum; the IP identification
//! of the large frame plus the piece's index (as the device does); the
//! TCP sequence number advanced by the payload before it; FIN and PSH
//! only on the last piece, CWR only on the first; and its TCP checksum
//! complete (or, for a NIC that finishes checksums, the pseudo-header sum
//! of the piece's length with `Cksum::Partial`).

use crate::mblk::{Cksum, GsoKind, Mblk, MblkChain};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const IPPROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Why a large frame could not be segmented (the caller drops it and
/// counts the drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoError {
    /// Not TCP over IPv4, or headers that do not match the request
    /// (lengths outside the frame or the first buffer, MSS 0).
    BadHeaders,
    /// Segmentation of this kind is not done in software (TCP/IPv6, UDP).
    Unsupported,
    /// No buffer for a piece.
    NoBuf,
}

/// The ones-complement sum of `b` (big-endian words, an odd byte padded),
/// added to `sum`, not folded.
fn sum_bytes(mut sum: u32, b: &[u8]) -> u32 {
    let mut c = b.chunks_exact(2);
    for w in &mut c {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [l] = c.remainder() {
        sum = sum.wrapping_add(u32::from(*l) << 8);
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Reads `out.len()` bytes of packet `m` from byte `off` on (across its
/// blocks). False if the packet is shorter.
fn read_at(m: &Mblk, mut off: usize, out: &mut [u8]) -> bool {
    let mut done = 0;
    let mut b = Some(m);
    while let Some(blk) = b {
        let d = blk.data();
        if off >= d.len() {
            off -= d.len();
        } else {
            let k = (d.len() - off).min(out.len() - done);
            out[done..done + k].copy_from_slice(&d[off..off + k]);
            done += k;
            off = 0;
            if done == out.len() {
                return true;
            }
        }
        b = blk.cont.as_deref();
    }
    done == out.len()
}

/// The layout of a segmentable frame: (L2 length, IPv4 header length,
/// TCP header length). Checks the request against the headers.
fn layout(m: &Mblk) -> Result<(usize, usize, usize), GsoError> {
    let Some(g) = m.meta.gso else { return Err(GsoError::BadHeaders) };
    if g.kind != GsoKind::Tcp4 {
        return Err(GsoError::Unsupported);
    }
    let f = m.data();
    if f.len() < 14 {
        return Err(GsoError::BadHeaders);
    }
    let (l2, et) = match u16::from_be_bytes([f[12], f[13]]) {
        ETHERTYPE_VLAN if f.len() >= 18 => (18, u16::from_be_bytes([f[16], f[17]])),
        et => (14, et),
    };
    if et != ETHERTYPE_IPV4 || f.len() < l2 + 20 {
        return Err(GsoError::BadHeaders);
    }
    let ihl = usize::from(f[l2] & 0x0f) * 4;
    if f[l2] >> 4 != 4 || ihl < 20 || f[l2 + 9] != IPPROTO_TCP || f.len() < l2 + ihl + 20 {
        return Err(GsoError::BadHeaders);
    }
    let thl = usize::from(f[l2 + ihl + 12] >> 4) * 4;
    let hdr_len = l2 + ihl + thl;
    if thl < 20 || usize::from(g.hdr_len) != hdr_len || hdr_len > f.len() || g.mss == 0 {
        return Err(GsoError::BadHeaders);
    }
    Ok((l2, ihl, thl))
}

/// Cuts `m` (see the module doc) into frames from `alloc` (which hands out
/// a packet of exactly the length asked for, or `None`). `partial`: leave
/// each piece's TCP checksum for the device (the pseudo-header sum and
/// `Cksum::Partial`); else complete it. The pieces carry `m`'s flow hash
/// and ring, and no GSO request.
pub fn segment(m: &Mblk, partial: bool, alloc: &mut dyn FnMut(usize) -> Option<Mblk>) -> Result<MblkChain, GsoError> {
    let (l2, ihl, thl) = layout(m)?;
    let Some(g) = m.meta.gso else { return Err(GsoError::BadHeaders) };
    let hdr_len = l2 + ihl + thl;
    let total = m.total_len();
    let payload = total.saturating_sub(hdr_len);
    let mss = usize::from(g.mss);
    let hdr = &m.data()[..hdr_len];
    let (l3, l4) = (l2, l2 + ihl);
    let ident = u16::from_be_bytes([hdr[l3 + 4], hdr[l3 + 5]]);
    let seq = u32::from_be_bytes([hdr[l4 + 4], hdr[l4 + 5], hdr[l4 + 6], hdr[l4 + 7]]);
    let flags = hdr[l4 + 13];
    // The pseudo header without the length: source, destination, protocol.
    let pseudo = sum_bytes(u32::from(IPPROTO_TCP), &hdr[l3 + 12..l3 + 20]);
    let count = payload.div_ceil(mss).max(1);
    let mut out = MblkChain::new();
    let mut off = 0usize;
    for i in 0..count {
        let n = (payload - off).min(mss);
        let last = i + 1 == count;
        let Some(mut p) = alloc(hdr_len + n) else { return Err(GsoError::NoBuf) };
        if p.len() != hdr_len + n || p.cont.is_some() {
            return Err(GsoError::NoBuf);
        }
        let d = p.data_mut();
        d[..hdr_len].copy_from_slice(hdr);
        if !read_at(m, hdr_len + off, &mut d[hdr_len..]) {
            return Err(GsoError::BadHeaders);
        }
        // IPv4: total length, identification, header checksum.
        let ip_len = (ihl + thl + n) as u16;
        d[l3 + 2..l3 + 4].copy_from_slice(&ip_len.to_be_bytes());
        d[l3 + 4..l3 + 6].copy_from_slice(&ident.wrapping_add(i as u16).to_be_bytes());
        d[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
        let ipc = !fold(sum_bytes(0, &d[l3..l4]));
        d[l3 + 10..l3 + 12].copy_from_slice(&ipc.to_be_bytes());
        // TCP: sequence number, flags, checksum.
        d[l4 + 4..l4 + 8].copy_from_slice(&seq.wrapping_add(off as u32).to_be_bytes());
        let mut fl = flags;
        if !last {
            fl &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            fl &= !TCP_CWR;
        }
        d[l4 + 13] = fl;
        let l4_len = (thl + n) as u32;
        let ph = pseudo.wrapping_add(l4_len);
        d[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        if partial {
            d[l4 + 16..l4 + 18].copy_from_slice(&fold(ph).to_be_bytes());
            p.meta.cksum = Cksum::Partial { start: l4 as u16, offset: 16 };
        } else {
            let c = !fold(sum_bytes(ph, &d[l4..]));
            d[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
            p.meta.cksum = Cksum::None;
        }
        p.meta.gso = None;
        p.meta.hash = m.meta.hash;
        p.meta.ring = m.meta.ring;
        out.push(p);
        off += n;
    }
    Ok(out)
}

/// Whether `m` asks for segmentation.
pub fn is_large(m: &Mblk) -> bool {
    m.meta.gso.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::BufPool;
    use crate::dma::host::HeapDma;
    use crate::mblk::Gso;
    use alloc::sync::Arc;
    use alloc::vec::Vec;

    fn pool(n: usize) -> Arc<BufPool> {
        let dma: Arc<HeapDma> = Arc::new(Default::default());
        BufPool::new(dma, 2048, n).unwrap()
    }

    /// A large TCP/IPv4 frame of `payload` bytes, in 1000-byte blocks
    /// after a first block with the headers, with the pseudo-header sum
    /// (full length) in the checksum field.
    fn large(p: &Arc<BufPool>, payload: &[u8], flags: u8, mss: u16) -> Mblk {
        let mut h = alloc::vec![0u8; 14 + 20 + 32];
        h[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let ip = &mut h[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + 32 + payload.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0xfffeu16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let t = &mut h[34..];
        t[0..2].copy_from_slice(&19u16.to_be_bytes());
        t[2..4].copy_from_slice(&5000u16.to_be_bytes());
        t[4..8].copy_from_slice(&0xffff_ff00u32.to_be_bytes());
        t[12] = 8 << 4;
        t[13] = flags;
        t[20..22].copy_from_slice(&[1, 1]);
        t[22] = 8;
        t[23] = 10;
        let ph = fold(sum_bytes(6 + 32 + payload.len() as u32, &[10, 0, 0, 1, 10, 0, 0, 2]));
        h[34 + 16..34 + 18].copy_from_slice(&ph.to_be_bytes());
        let mut m = Mblk::with_range(p.alloc().unwrap(), 64, h.len());
        m.data_mut().copy_from_slice(&h);
        for c in payload.chunks(1000) {
            let mut b = Mblk::with_range(p.alloc().unwrap(), 0, c.len());
            b.data_mut().copy_from_slice(c);
            m.push_cont(b);
        }
        m.meta.cksum = Cksum::Partial { start: 34, offset: 16 };
        m.meta.gso = Some(Gso { kind: GsoKind::Tcp4, mss, hdr_len: 66 });
        m.meta.hash = 77;
        m
    }

    fn bytes(m: &Mblk) -> Vec<u8> {
        let mut v = alloc::vec![0u8; m.total_len()];
        m.copy_to(&mut v);
        v
    }

    #[test]
    fn cuts_into_mss_pieces_byte_exact_with_right_headers_and_checksums() {
        let p = pool(64);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let m = large(&p, &data, 0x18 | TCP_FIN | TCP_CWR, 1448);
        let mut alloc = |n: usize| p.alloc().map(|b| Mblk::with_range(b, 64, n));
        let pieces: Vec<Mblk> = segment(&m, false, &mut alloc).unwrap().collect();
        assert_eq!(pieces.len(), 7, "10 000 bytes in 1448-byte pieces");
        let mut got = Vec::new();
        for (i, pc) in pieces.iter().enumerate() {
            let f = bytes(pc);
            let n = f.len() - 66;
            assert!(n <= 1448);
            assert_eq!(pc.meta.gso, None);
            assert_eq!(pc.meta.cksum, Cksum::None);
            assert_eq!(pc.meta.hash, 77);
            assert_eq!(u16::from_be_bytes([f[16], f[17]]) as usize, 52 + n, "IP total length");
            assert_eq!(u16::from_be_bytes([f[18], f[19]]), 0xfffeu16.wrapping_add(i as u16), "IP id, wrapping");
            assert_eq!(fold(sum_bytes(0, &f[14..34])), 0xffff, "IP header checksum");
            let seq = u32::from_be_bytes([f[38], f[39], f[40], f[41]]);
            assert_eq!(seq, 0xffff_ff00u32.wrapping_add((i * 1448) as u32), "sequence numbers wrap too");
            let fl = f[47];
            let last = i == pieces.len() - 1;
            assert_eq!(fl & (TCP_FIN | TCP_PSH) != 0, last, "FIN and PSH on the last piece only");
            assert_eq!(fl & TCP_FIN != 0, last);
            assert_eq!(fl & TCP_CWR != 0, i == 0, "CWR on the first only");
            assert_eq!(fl & 0x10, 0x10, "ACK on all");
            assert_eq!(&f[54..66], &[1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0], "options copied");
            let tsum = sum_bytes(6 + (f.len() - 34) as u32, &[10, 0, 0, 1, 10, 0, 0, 2]);
            assert_eq!(fold(sum_bytes(tsum, &f[34..])), 0xffff, "TCP checksum of piece {i}");
            got.extend_from_slice(&f[66..]);
        }
        assert_eq!(got, data, "byte-exact");
    }

    #[test]
    fn partial_pieces_carry_the_pseudo_header_sum_for_the_device() {
        let p = pool(16);
        let data = alloc::vec![0xabu8; 3000];
        let m = large(&p, &data, 0x10, 1460);
        let mut alloc = |n: usize| p.alloc().map(|b| Mblk::with_range(b, 64, n));
        let pieces: Vec<Mblk> = segment(&m, true, &mut alloc).unwrap().collect();
        assert_eq!(pieces.len(), 3);
        for pc in &mut pieces.into_iter() {
            let mut pc = pc;
            assert_eq!(pc.meta.cksum, Cksum::Partial { start: 34, offset: 16 });
            assert!(crate::cksum::finish(&mut pc));
            let f = bytes(&pc);
            let tsum = sum_bytes(6 + (f.len() - 34) as u32, &[10, 0, 0, 1, 10, 0, 0, 2]);
            assert_eq!(fold(sum_bytes(tsum, &f[34..])), 0xffff);
        }
    }

    #[test]
    fn bad_requests_are_refused_not_cut() {
        let p = pool(16);
        let mut alloc = |n: usize| p.alloc().map(|b| Mblk::with_range(b, 64, n));
        let mut m = large(&p, &[1u8; 100], 0x10, 1460);
        m.meta.gso = Some(Gso { kind: GsoKind::Tcp4, mss: 1460, hdr_len: 54 });
        assert_eq!(segment(&m, false, &mut alloc).err(), Some(GsoError::BadHeaders), "hdr_len does not match");
        m.meta.gso = Some(Gso { kind: GsoKind::Tcp4, mss: 0, hdr_len: 66 });
        assert_eq!(segment(&m, false, &mut alloc).err(), Some(GsoError::BadHeaders), "MSS 0");
        m.meta.gso = Some(Gso { kind: GsoKind::Tcp6, mss: 1460, hdr_len: 66 });
        assert_eq!(segment(&m, false, &mut alloc).err(), Some(GsoError::Unsupported));
        let mut none = |_n: usize| None;
        m.meta.gso = Some(Gso { kind: GsoKind::Tcp4, mss: 10, hdr_len: 66 });
        assert_eq!(segment(&m, false, &mut none).err(), Some(GsoError::NoBuf));
    }
}
