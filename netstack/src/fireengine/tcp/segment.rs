//! A segment as the TCB sees it: what arrived ([`SegIn`], the parsed
//! header and its data) and what to send ([`SegOut`], header fields and
//! data the instance puts behind IP). The instance owns addresses,
//! ports, checksums and the wire layout ([`crate::fireengine::wire::tcp`]).

use alloc::vec::Vec;

use super::seq::SeqNum;
use crate::fireengine::ip::mib::{TcpMib, bump, bump_by};
use crate::fireengine::wire::tcp::{TcpFlags, TcpHeader, TcpOptions};

/// A received segment.
#[derive(Clone, Copy, Debug)]
pub struct SegIn<'a> {
    /// SEG.SEQ.
    pub seq: SeqNum,
    /// SEG.ACK (meaningful with ACK).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// SEG.WND as on the wire (unscaled).
    pub wnd: u16,
    /// Urgent pointer (meaningful with URG).
    pub urgent: u16,
    /// Options.
    pub opts: TcpOptions,
    /// The data.
    pub data: &'a [u8],
}

impl<'a> SegIn<'a> {
    /// From a parsed header and its data.
    pub fn from_header(h: &TcpHeader, data: &'a [u8]) -> SegIn<'a> {
        SegIn {
            seq: SeqNum(h.seq),
            ack: SeqNum(h.ack),
            flags: h.flags,
            wnd: h.window,
            urgent: h.urgent,
            opts: h.options,
            data,
        }
    }

    /// SEG.LEN: data plus one each for SYN and FIN.
    pub fn len(&self) -> usize {
        self.data.len() + usize::from(self.has(TcpFlags::SYN)) + usize::from(self.has(TcpFlags::FIN))
    }

    /// Whether SEG.LEN is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether control bit `f` is set.
    pub fn has(&self, f: TcpFlags) -> bool {
        self.flags.0 & f.0 != 0
    }
}

/// A segment to send (ports and addresses are the conn's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegOut {
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number (sent with ACK).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window, already scaled for the wire.
    pub wnd: u16,
    /// Urgent pointer (with URG).
    pub urgent: u16,
    /// Options.
    pub opts: TcpOptions,
    /// The data.
    pub data: Vec<u8>,
    /// Whether this is a retransmission (of data, SYN or FIN).
    pub rexmit: bool,
    /// A large segment (LSO): more data than one MSS, for the link to cut
    /// into segments of this many data bytes (`meta.gso`), each with
    /// these headers; FIN and PSH go on the last piece only.
    pub lso_mss: Option<u16>,
}

impl SegOut {
    /// Whether control bit `f` is set.
    pub fn has(&self, f: TcpFlags) -> bool {
        self.flags.0 & f.0 != 0
    }

    /// Counts this segment as sent in the TCP MIB, the one place every
    /// segment is counted (a conn's, and the RSTs sent for no conn):
    /// tcpOutSegs (first transmissions) or tcpRetransSegs/Bytes,
    /// tcpOutDataSegs/Bytes or tcpOutAck, tcpOutControl (SYN, FIN, RST),
    /// tcpOutRsts, tcpOutUrg; a large send (`lso_mss`) counts as the
    /// segments the link cuts it into, and in tcpOutLsoSegs/Bytes.
    pub fn count(&self, m: &TcpMib) {
        let ctl = self.has(TcpFlags::SYN) || self.has(TcpFlags::FIN) || self.has(TcpFlags::RST);
        // A large send counts as the segments it becomes on the wire.
        let wire_segs = match self.lso_mss {
            Some(mss) => {
                bump(&m.out_lso_segs);
                bump_by(&m.out_lso_bytes, self.data.len() as u64);
                self.data.len().div_ceil(usize::from(mss).max(1)) as u64
            }
            None => 1,
        };
        if self.rexmit {
            bump_by(&m.retrans_segs, wire_segs);
            bump_by(&m.retrans_bytes, self.data.len() as u64);
        } else {
            bump_by(&m.out_segs, wire_segs);
            if !self.data.is_empty() {
                bump_by(&m.out_data_segs, wire_segs);
                bump_by(&m.out_data_bytes, self.data.len() as u64);
            } else if !ctl {
                bump(&m.out_ack);
            }
        }
        if ctl {
            bump(&m.out_control);
        }
        if self.has(TcpFlags::RST) {
            bump(&m.out_rsts);
        }
        if self.has(TcpFlags::URG) {
            bump(&m.out_urg);
        }
    }

    /// The header, given the conn's ports.
    pub fn header(&self, src_port: u16, dst_port: u16) -> TcpHeader {
        TcpHeader {
            src_port,
            dst_port,
            seq: self.seq.0,
            ack: self.ack.0,
            flags: self.flags,
            window: self.wnd,
            urgent: self.urgent,
            options: self.opts,
        }
    }
}

/// A reset answering `seg`, sent where no conn takes it (RFC 9293 section
/// 3.10.7.1): with ACK, `<SEQ=SEG.ACK><CTL=RST>`; without,
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`. None for a RST (never
/// answered).
pub fn reset_for(seg: &SegIn<'_>) -> Option<SegOut> {
    if seg.has(TcpFlags::RST) {
        return None;
    }
    let (seq, ack, flags) = if seg.has(TcpFlags::ACK) {
        (seg.ack, SeqNum(0), TcpFlags::RST)
    } else {
        (SeqNum(0), seg.seq + seg.len(), TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0))
    };
    Some(SegOut { seq, ack, flags, wnd: 0, urgent: 0, opts: TcpOptions::new(), data: Vec::new(), rexmit: false, lso_mss: None })
}
