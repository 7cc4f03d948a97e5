//! Transmit offloads: what a packet's `PktMeta` asks for, expressed as
//! an advanced context descriptor plus the data descriptors' POPTS /
//! PAYLEN / TSE bits (datasheet 7.2.3).
//!
//! * `Cksum::Partial { start, offset }` over TCP (offset 16) or UDP
//!   (offset 6) in IPv4 or IPv6: a context with MACLEN (14, or 18 with a
//!   VLAN tag), IPLEN (`start - MACLEN`) and the L4 type, and TXSM. The
//!   checksum field already holds the pseudo-header sum (as for virtio
//!   `NEEDS_CSUM`); the device adds the rest. Anything else partial (an
//!   L4 the 82576 cannot checksum, odd offsets) is completed in software.
//! * `Gso` (TCP over IPv4 or IPv6, with `Cksum::Partial`): TSE with MSS
//!   and L4LEN in the context and PAYLEN = bytes after the headers. The
//!   82576 inserts each segment's length into the TCP pseudo-header sum
//!   itself, so the driver takes the full length back out of the field
//!   (and zeroes the IPv4 header checksum, recomputed per segment, IXSM).
//!   QEMU recomputes both fields whatever they hold.
//!
//! [`plan`] only reads the packet: a packet that does not fit the ring
//! goes back to the caller untouched. [`apply`] makes the header changes
//! right before the descriptors are written.

use arbalest_mac::{Cksum, GsoKind, Mblk};

use super::desc::*;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;

/// Largest segmentation-offload packet taken.
pub const TSO_MAX: usize = 65_535 + 18;

/// Why a packet's offload request cannot be served (the packet is
/// dropped and counted as an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffloadError {
    /// Segmentation offload is switched off, or asked for UDP.
    NoTso,
    /// Segmentation without a partial checksum.
    GsoWithoutCsum,
    /// Headers the context descriptor cannot describe, or offsets outside
    /// the packet.
    BadHeaders,
}

/// Header changes made at post time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixup {
    None,
    /// Zero the IPv4 header checksum at `ip4_csum` (if any) and take
    /// `l4_len` out of the TCP checksum field at `l4_csum`.
    Tso { ip4_csum: Option<usize>, l4_csum: usize, l4_len: usize },
    /// Complete the checksum in software: sum `[start..]`, store at
    /// `start + offset`.
    Software { start: usize, offset: usize },
}

/// What the descriptors of one packet carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxOffload {
    /// Context descriptor the packet needs (None: no offload).
    pub ctx: Option<TxContext>,
    /// POPTS bits for `olinfo_status`.
    pub popts: u32,
    /// Segmentation (TSE in `cmd_type_len`).
    pub tse: bool,
    /// PAYLEN: the whole packet, or the bytes after the headers with TSE.
    pub paylen: u32,
    fixup: Fixup,
}

impl TxOffload {
    fn plain(total: usize) -> TxOffload {
        TxOffload { ctx: None, popts: 0, tse: false, paylen: total as u32, fixup: Fixup::None }
    }
}

/// MACLEN and the L3 ethertype of a frame.
fn l2(first: &[u8]) -> Option<(usize, u16)> {
    let et = |o: usize| first.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match et(12)? {
        ETHERTYPE_VLAN => Some((18, et(16)?)),
        t => Some((14, t)),
    }
}

/// The context for L4 checksum (and segmentation) of a frame whose L4
/// header starts at `start`.
fn context(maclen: usize, ethertype: u16, start: usize, tcp: bool, mss_l4len: u32) -> Option<TxContext> {
    let ipv4 = match ethertype {
        ETHERTYPE_IPV4 => true,
        ETHERTYPE_IPV6 => false,
        _ => return None,
    };
    let iplen = start.checked_sub(maclen)?;
    if iplen == 0 || iplen as u32 > CTX_IPLEN_MASK || maclen as u32 > CTX_MACLEN_MAX {
        return None;
    }
    let tucmd = if ipv4 { CTX_TUCMD_IPV4 } else { 0 } | if tcp { CTX_TUCMD_L4T_TCP } else { CTX_TUCMD_L4T_UDP };
    Some(TxContext {
        vlan_macip_lens: ((maclen as u32) << CTX_MACLEN_SHIFT) | iplen as u32,
        seqnum_seed: 0,
        type_tucmd_mlhl: tucmd,
        mss_l4len_idx: mss_l4len,
    })
}

/// Decides the descriptors' offload fields for `m` (reads only).
pub fn plan(m: &Mblk, tso: bool) -> Result<TxOffload, OffloadError> {
    let total = m.total_len();
    let first = m.data();
    match (m.meta.cksum, m.meta.gso) {
        (cksum, Some(g)) => {
            if !tso || g.kind == GsoKind::Udp {
                return Err(OffloadError::NoTso);
            }
            let Cksum::Partial { start, offset } = cksum else { return Err(OffloadError::GsoWithoutCsum) };
            let (start, hdr_len, mss) = (start as usize, g.hdr_len as usize, g.mss as u32);
            let (maclen, et) = l2(first).ok_or(OffloadError::BadHeaders)?;
            let ipv4 = g.kind == GsoKind::Tcp4;
            let l4len = hdr_len.checked_sub(start).ok_or(OffloadError::BadHeaders)?;
            let ok = offset == 16
                && et == if ipv4 { ETHERTYPE_IPV4 } else { ETHERTYPE_IPV6 }
                && (20..=60).contains(&l4len)
                && hdr_len <= first.len()
                && hdr_len < total
                && mss > 0
                && total <= TSO_MAX
                && (total - hdr_len) as u32 <= TX_PAYLEN_MAX;
            if !ok {
                return Err(OffloadError::BadHeaders);
            }
            let mss_l4len = (mss << CTX_MSS_SHIFT) | ((l4len as u32) << CTX_L4LEN_SHIFT);
            let ctx = context(maclen, et, start, true, mss_l4len).ok_or(OffloadError::BadHeaders)?;
            Ok(TxOffload {
                ctx: Some(ctx),
                popts: TX_POPTS_TXSM | if ipv4 { TX_POPTS_IXSM } else { 0 },
                tse: true,
                paylen: (total - hdr_len) as u32,
                fixup: Fixup::Tso { ip4_csum: ipv4.then_some(maclen + 10), l4_csum: start + 16, l4_len: total - start },
            })
        }
        (Cksum::Partial { start, offset }, None) => {
            let (start, offset) = (start as usize, offset as usize);
            if start + offset + 2 > total {
                return Err(OffloadError::BadHeaders);
            }
            let l4 = match offset {
                16 => Some(true),
                6 => Some(false),
                _ => None,
            };
            let ctx = match (l2(first), l4) {
                (Some((maclen, et)), Some(tcp)) if start + offset + 2 <= first.len() => context(maclen, et, start, tcp, 0),
                _ => None,
            };
            Ok(match ctx {
                Some(ctx) => TxOffload { ctx: Some(ctx), popts: TX_POPTS_TXSM, tse: false, paylen: total as u32, fixup: Fixup::None },
                None => TxOffload { fixup: Fixup::Software { start, offset }, ..TxOffload::plain(total) },
            })
        }
        _ => Ok(TxOffload::plain(total)),
    }
}

/// Adds `b` to a one's-complement sum in progress; `odd` says whether the
/// bytes so far were an odd count.
fn sum_bytes(mut sum: u32, odd: &mut bool, b: &[u8]) -> u32 {
    for &x in b {
        sum += if *odd { x as u32 } else { (x as u32) << 8 };
        *odd = !*odd;
        if sum > 0xffff_0000 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Reads the big-endian u16 at packet offset `pos` (across blocks).
fn get16(m: &Mblk, pos: usize) -> u16 {
    let mut b = [0u8; 2];
    for (k, out) in b.iter_mut().enumerate() {
        let mut at = pos + k;
        let mut blk = Some(m);
        while let Some(x) = blk {
            if at < x.len() {
                *out = x.data()[at];
                break;
            }
            at -= x.len();
            blk = x.cont.as_deref();
        }
    }
    u16::from_be_bytes(b)
}

/// Writes the big-endian u16 `v` at packet offset `pos` (across blocks).
fn put16(m: &mut Mblk, pos: usize, v: u16) {
    for (k, byte) in v.to_be_bytes().into_iter().enumerate() {
        let mut at = pos + k;
        let mut blk = Some(&mut *m);
        while let Some(x) = blk {
            if at < x.len() {
                x.data_mut()[at] = byte;
                break;
            }
            at -= x.len();
            blk = x.cont.as_deref_mut();
        }
    }
}

/// One's-complement sum of the packet from offset `start` to its end.
fn sum_from(m: &Mblk, start: usize) -> u32 {
    let (mut sum, mut odd, mut skip) = (0u32, false, start);
    let mut blk = Some(m);
    while let Some(x) = blk {
        let d = x.data();
        if skip < d.len() {
            sum = sum_bytes(sum, &mut odd, &d[skip..]);
            skip = 0;
        } else {
            skip -= d.len();
        }
        blk = x.cont.as_deref();
    }
    sum
}

/// Makes the header changes `off` needs, right before posting.
pub fn apply(m: &mut Mblk, off: &TxOffload) {
    match off.fixup {
        Fixup::None => {}
        Fixup::Tso { ip4_csum, l4_csum, l4_len } => {
            if let Some(at) = ip4_csum {
                put16(m, at, 0);
            }
            // field - len, in one's complement: field + !len.
            let len = fold(l4_len as u32);
            let v = fold(get16(m, l4_csum) as u32 + (!len) as u32);
            put16(m, l4_csum, v);
        }
        Fixup::Software { start, offset } => {
            let mut c = !fold(sum_from(m, start));
            if c == 0 && offset == 6 {
                c = 0xffff; // UDP: zero means "no checksum"
            }
            put16(m, start + offset, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use arbalest_mac::dma::host::HeapDma;
    use arbalest_mac::{BufPool, Gso, PktMeta};

    fn pool() -> Arc<BufPool> {
        BufPool::new(Arc::new(HeapDma::default()), 2048, 8).unwrap()
    }

    /// Ethernet + IPv4 (20) + TCP (20) + payload, optionally VLAN-tagged.
    fn tcp4(p: &Arc<BufPool>, payload: usize, vlan: bool) -> Mblk {
        let mut f = alloc::vec![0u8; 12];
        if vlan {
            f.extend_from_slice(&[0x81, 0, 0, 5]);
        }
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0xab, 0xcd, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[0; 20]);
        f.extend((0..payload).map(|i| i as u8));
        let mut m = Mblk::with_range(p.alloc().unwrap(), 0, 0);
        assert!(m.append(&f));
        m
    }

    #[test]
    fn plain_and_partial_checksum_context() {
        let p = pool();
        let mut m = tcp4(&p, 100, false);
        assert_eq!(plan(&m, true).unwrap(), TxOffload::plain(154));
        m.meta.cksum = Cksum::Partial { start: 34, offset: 16 };
        let o = plan(&m, true).unwrap();
        let ctx = o.ctx.unwrap();
        assert_eq!(ctx.vlan_macip_lens, (14 << 9) | 20);
        assert_eq!(ctx.type_tucmd_mlhl, CTX_TUCMD_IPV4 | CTX_TUCMD_L4T_TCP);
        assert_eq!((o.popts, o.tse, o.paylen), (TX_POPTS_TXSM, false, 154));
        let mut v = tcp4(&p, 10, true);
        v.meta.cksum = Cksum::Partial { start: 38, offset: 6 };
        let ctx = plan(&v, true).unwrap().ctx.unwrap();
        assert_eq!(ctx.vlan_macip_lens, (18 << 9) | 20);
        assert_eq!(ctx.type_tucmd_mlhl, CTX_TUCMD_IPV4 | CTX_TUCMD_L4T_UDP);
        // Out of the packet: refused.
        m.meta.cksum = Cksum::Partial { start: 150, offset: 16 };
        assert_eq!(plan(&m, true), Err(OffloadError::BadHeaders));
    }

    #[test]
    fn software_checksum_fallback() {
        let p = pool();
        // An "ICMP" checksum at offset 2 from 34: done in software.
        let mut m = tcp4(&p, 30, false);
        m.meta.cksum = Cksum::Partial { start: 34, offset: 2 };
        let o = plan(&m, true).unwrap();
        assert_eq!((o.ctx, o.popts), (None, 0));
        apply(&mut m, &o);
        assert_eq!(fold(sum_from(&m, 34)), 0xffff, "the sum over the region verifies");
        // Across blocks, with an odd first block.
        let mut a = Mblk::with_range(p.alloc().unwrap(), 0, 0);
        assert!(a.append(&[1, 2, 0]));
        let mut b = Mblk::with_range(p.alloc().unwrap(), 0, 0);
        assert!(b.append(&[0, 4, 5, 6]));
        a.push_cont(b);
        // The field straddles the blocks.
        a.meta.cksum = Cksum::Partial { start: 0, offset: 2 };
        let o = plan(&a, true).unwrap();
        apply(&mut a, &o);
        assert_eq!(fold(sum_from(&a, 0)), 0xffff);
    }

    #[test]
    fn tso_context_and_fixups() {
        let p = pool();
        let mut m = tcp4(&p, 1000, false);
        let d = m.data_mut();
        d[50..52].copy_from_slice(&0x1234u16.to_be_bytes());
        m.meta.cksum = Cksum::Partial { start: 34, offset: 16 };
        m.meta.gso = Some(Gso { kind: GsoKind::Tcp4, mss: 500, hdr_len: 54 });
        let o = plan(&m, true).unwrap();
        let ctx = o.ctx.unwrap();
        assert_eq!(ctx.mss_l4len_idx, (500 << 16) | (20 << 8));
        assert_eq!((o.tse, o.paylen, o.popts), (true, 1000, TX_POPTS_TXSM | TX_POPTS_IXSM));
        apply(&mut m, &o);
        assert_eq!(get16(&m, 24), 0, "IPv4 header checksum cleared");
        // 0x1234 - 1020 (0x3fc) = 0x0e38.
        assert_eq!(get16(&m, 50), 0x0e38);
        assert_eq!(plan(&m, false), Err(OffloadError::NoTso));
        m.meta.gso = Some(Gso { kind: GsoKind::Udp, mss: 500, hdr_len: 42 });
        assert_eq!(plan(&m, true), Err(OffloadError::NoTso));
        m.meta = PktMeta { gso: Some(Gso { kind: GsoKind::Tcp4, mss: 500, hdr_len: 54 }), ..PktMeta::default() };
        assert_eq!(plan(&m, true), Err(OffloadError::GsoWithoutCsum));
        m.meta.cksum = Cksum::Partial { start: 34, offset: 16 };
        m.meta.gso = Some(Gso { kind: GsoKind::Tcp6, mss: 500, hdr_len: 54 });
        assert_eq!(plan(&m, true), Err(OffloadError::BadHeaders), "IPv6 GSO on an IPv4 frame");
    }
}
