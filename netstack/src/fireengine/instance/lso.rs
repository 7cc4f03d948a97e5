//! The instance's large sends (illumos' LSO: `tcp_send` with `tcp_lso`,
//! IP's `IXAF_LSO_CAPAB`): a TCP segment of more than one MSS (the TCB
//! marks it, [`SegOut::lso_mss`]) leaves as one frame, in a chain of Tx
//! buffers, with `meta.gso = Gso { Tcp4, mss, hdr_len }` and the partial
//! checksum (the pseudo-header sum of the whole length, as virtio and the
//! MAC layer's software segmentation expect), for the NIC to cut — or
//! the MAC layer, where the frame stays in the machine.
//!
//! The instance offers the TCBs a limit ([`Core::lso_tcp4_max`]) only
//! where the link has the capability (`Link::lso_tcp4_max`) and
//! `_lso_outbound` is on. A large segment that has to wait for ARP is
//! completed in software when it is released and leaves in IP fragments
//! (it no longer has its frame's offload request). A segment over its MSS
//! is cut even when it would fit the link: the MSS may be a path's (PMTU).

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use arbalest_mac::{Cksum, Gso, GsoKind};

use super::{Core, ETH_HDR, ETHERTYPE_IPV4, IPV4_HDR_MIN};
use crate::fireengine::arp::{ArpActions, Resolution};
use crate::fireengine::ip::frag;
use crate::fireengine::ip::mib::bump;
use crate::fireengine::tcp::segment::SegOut;
use crate::fireengine::wire::checksum::{self, Checksum};
use crate::fireengine::wire::ipv4::{IPPROTO_TCP, Ipv4Header};
use crate::fireengine::wire::tcp::TcpHeader;

impl Core {
    /// The large-send limit the TCBs may use now: the link's largest
    /// LSO frame, if it has the capability and `_lso_outbound` is on.
    pub(super) fn lso_tcp4_max(&self) -> Option<usize> {
        if !self.sys.tunables.lso_outbound() {
            return None;
        }
        self.link.lso_tcp4_max().filter(|&m| m > self.mtu + ETH_HDR)
    }

    /// Sends large segment `seg` (header `h`) from `src` to `dst` through
    /// on-link `next_hop` (see the module doc).
    pub(super) fn tcp_lso_output(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        h: &TcpHeader,
        seg: &SegOut,
        mss: u16,
        next_hop: Ipv4Addr,
    ) {
        bump(&self.ip_mib.ip_out_requests);
        let hlen = h.header_len();
        let l4_len = hlen + seg.data.len();
        if IPV4_HDR_MIN + l4_len > usize::from(u16::MAX) || mss == 0 {
            bump(&self.ip_mib.ip_out_discards);
            return;
        }
        let pieces = seg.data.len().div_ceil(usize::from(mss)).min(usize::from(u16::MAX)) as u16;
        let mut iph = Ipv4Header::new(src, dst, IPPROTO_TCP, l4_len as u16);
        iph.ttl = self.sys.tunables.ttl();
        iph.ident = self.next_ip_ids(dst, pieces);
        let reachable = self.neigh.lock().reachable(next_hop);
        if let Some(mac) = reachable {
            // The common case: the headers are built apart and the data
            // goes from the TCB's segment straight into the Tx buffers.
            let mut hdrs = [0u8; IPV4_HDR_MIN + 60];
            let (Ok(n), Ok(_)) = (
                iph.emit(&mut hdrs),
                h.emit_partial_header(&mut hdrs[IPV4_HDR_MIN..IPV4_HDR_MIN + hlen], l4_len as u16, src, dst),
            ) else {
                bump(&self.ip_mib.ip_out_discards);
                return;
            };
            debug_assert_eq!(n, IPV4_HDR_MIN);
            self.lso_frame(mac, [&hdrs[..IPV4_HDR_MIN + hlen], &seg.data], IPV4_HDR_MIN + hlen, mss);
            return;
        }
        let mut dgram = alloc::vec![0u8; IPV4_HDR_MIN + l4_len];
        let Ok(n) = iph.emit(&mut dgram) else {
            bump(&self.ip_mib.ip_out_discards);
            return;
        };
        dgram[n + hlen..].copy_from_slice(&seg.data);
        if h.emit_partial(&mut dgram[n..], src, dst).is_err() {
            bump(&self.ip_mib.ip_out_discards);
            return;
        }
        let now = self.now_ms();
        let mut actions = ArpActions::default();
        let r = self.neigh.lock().resolve(next_hop, None, now, dgram, &mut actions);
        match r {
            Resolution::Now(mac, dgram) => self.lso_frame(mac, [&dgram, &[]], n + hlen, mss),
            Resolution::Queued => {}
            Resolution::Dropped => bump(&self.ip_mib.ip_out_discards),
        }
        self.arp_run(actions);
    }

    /// Hands the link one large frame of the datagram `parts` gathered
    /// (`hdr` bytes of IP and TCP headers first): the headers and the first
    /// bytes in one Tx buffer, the rest in as many more as it takes.
    fn lso_frame(&self, mac: [u8; 6], parts: [&[u8]; 2], hdr: usize, mss: u16) {
        let total = parts[0].len() + parts[1].len();
        let mut src = Gather { parts, at: 0 };
        // A frame of the MTU fits any Tx buffer of the link; then as much
        // as its buffers hold (what follows the first block's headroom).
        let small = (self.mtu + ETH_HDR).max(ETH_HDR + hdr + 1).min(ETH_HDR + total);
        let Some(mut m) = self.link.alloc_tx(small) else {
            bump(&self.counters.tx_nobuf);
            bump(&self.ip_mib.ip_out_discards);
            return;
        };
        if m.len() != small || m.cont.is_some() {
            bump(&self.counters.tx_nobuf);
            bump(&self.ip_mib.ip_out_discards);
            return;
        }
        let chunk = m.len() + m.tailroom();
        let first = (ETH_HDR + total).min(chunk);
        let start = m.headroom();
        m.set_range(start, first);
        let b = m.data_mut();
        b[..6].copy_from_slice(&mac);
        b[6..12].copy_from_slice(&self.mac);
        b[12..ETH_HDR].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        src.fill(&mut b[ETH_HDR..]);
        while src.left() > 0 {
            let k = src.left().min(chunk);
            let Some(mut c) = self.link.alloc_tx(k) else {
                bump(&self.counters.tx_nobuf);
                bump(&self.ip_mib.ip_out_discards);
                return;
            };
            if c.len() != k || c.cont.is_some() {
                bump(&self.counters.tx_nobuf);
                bump(&self.ip_mib.ip_out_discards);
                return;
            }
            src.fill(c.data_mut());
            m.push_cont(c);
        }
        m.meta.cksum = Cksum::Partial { start: (ETH_HDR + IPV4_HDR_MIN) as u16, offset: 16 };
        m.meta.gso = Some(Gso { kind: GsoKind::Tcp4, mss, hdr_len: (ETH_HDR + hdr) as u16 });
        bump(&self.counters.tx_packets);
        crate::stats::add(&self.counters.tx_bytes, (ETH_HDR + total) as u64);
        self.link.tx(m);
    }

    /// A large datagram released by ARP: its checksum was completed; it
    /// leaves in IP fragments.
    pub(super) fn lso_release(&self, mac: [u8; 6], pkt: Vec<u8>) {
        let Ok(frags) = frag::fragment(&pkt, self.mtu, &self.ip_mib) else { return };
        for f in frags {
            self.tx_frame(mac, ETHERTYPE_IPV4, &f, Cksum::None);
        }
    }
}

/// Bytes taken in order from two slices (headers, then data).
struct Gather<'a> {
    parts: [&'a [u8]; 2],
    /// Bytes taken so far.
    at: usize,
}

impl Gather<'_> {
    fn left(&self) -> usize {
        self.parts[0].len() + self.parts[1].len() - self.at
    }

    /// Fills `dst` (at most [`left`](Self::left) bytes long).
    fn fill(&mut self, dst: &mut [u8]) {
        let mut done = 0;
        for (i, p) in self.parts.iter().enumerate() {
            let before: usize = self.parts[..i].iter().map(|q| q.len()).sum();
            let from = self.at.saturating_sub(before);
            if from >= p.len() || done == dst.len() {
                continue;
            }
            let k = (p.len() - from).min(dst.len() - done);
            dst[done..done + k].copy_from_slice(&p[from..from + k]);
            done += k;
            self.at += k;
        }
    }
}

/// Completes the TCP checksum of IPv4 datagram `ip` in software, from
/// scratch (a segment that waited for ARP without its frame's offload
/// request). Only for a whole, unfragmented TCP datagram.
pub(super) fn finish_tcp_cksum_in(ip: &mut [u8]) {
    let Ok((h, _)) = Ipv4Header::parse_quoted(ip) else { return };
    if h.protocol != IPPROTO_TCP || h.more_frags || h.frag_offset != 0 {
        return;
    }
    let (hl, total) = (h.header_len(), h.total_len());
    if total > ip.len() || total < hl + 20 {
        return;
    }
    let seg = &mut ip[hl..total];
    seg[16..18].copy_from_slice(&[0, 0]);
    let mut c: Checksum = checksum::pseudo_header_v4(h.src, h.dst, IPPROTO_TCP, seg.len() as u16);
    c.add(seg);
    let v = c.finish();
    seg[16..18].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::Gather;
    use alloc::vec::Vec;

    #[test]
    fn a_gather_fills_across_both_parts_in_any_pieces() {
        let (a, b): (Vec<u8>, Vec<u8>) = ((0..7).collect(), (7..40).collect());
        for piece in 1..=41 {
            let mut g = Gather { parts: [&a, &b], at: 0 };
            let mut out = Vec::new();
            while g.left() > 0 {
                let mut buf = alloc::vec![0u8; piece.min(g.left())];
                g.fill(&mut buf);
                out.extend_from_slice(&buf);
            }
            assert_eq!(out, (0..40).collect::<Vec<u8>>(), "pieces of {piece}");
        }
        let mut g = Gather { parts: [&a, &[]], at: 0 };
        let mut buf = [0u8; 7];
        g.fill(&mut buf);
        assert_eq!((buf.to_vec(), g.left()), (a.clone(), 0));
    }
}
