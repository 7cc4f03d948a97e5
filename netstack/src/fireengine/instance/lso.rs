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
//! (it no longer has its frame's offload request).

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
            Resolution::Now(mac, dgram) => self.lso_frame(mac, &dgram, n + hlen, mss),
            Resolution::Queued => {}
            Resolution::Dropped => bump(&self.ip_mib.ip_out_discards),
        }
        self.arp_run(actions);
    }

    /// Hands the link one large frame of datagram `dgram` (`hdr` bytes of
    /// IP and TCP headers): the headers and the first bytes in one Tx
    /// buffer, the rest in as many more as it takes.
    fn lso_frame(&self, mac: [u8; 6], dgram: &[u8], hdr: usize, mss: u16) {
        // A frame of the MTU fits any Tx buffer of the link; then as much
        // as its buffers hold (what follows the first block's headroom).
        let small = (self.mtu + ETH_HDR).max(ETH_HDR + hdr + 1).min(ETH_HDR + dgram.len());
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
        let first = (ETH_HDR + dgram.len()).min(chunk);
        let start = m.headroom();
        m.set_range(start, first);
        let b = m.data_mut();
        b[..6].copy_from_slice(&mac);
        b[6..12].copy_from_slice(&self.mac);
        b[12..ETH_HDR].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        b[ETH_HDR..].copy_from_slice(&dgram[..first - ETH_HDR]);
        let mut rest = &dgram[first - ETH_HDR..];
        while !rest.is_empty() {
            let k = rest.len().min(chunk);
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
            c.data_mut().copy_from_slice(&rest[..k]);
            m.push_cont(c);
            rest = &rest[k..];
        }
        m.meta.cksum = Cksum::Partial { start: (ETH_HDR + IPV4_HDR_MIN) as u16, offset: 16 };
        m.meta.gso = Some(Gso { kind: GsoKind::Tcp4, mss, hdr_len: (ETH_HDR + hdr) as u16 });
        bump(&self.counters.tx_packets);
        crate::stats::add(&self.counters.tx_bytes, (ETH_HDR + dgram.len()) as u64);
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
