//! The TCP header (RFC 9293 section 3.1) and its options: MSS (RFC 9293
//! 3.7.1), window scale and timestamps (RFC 7323), SACK-permitted and SACK
//! blocks (RFC 2018). Parse checks the data offset against the segment and
//! verifies the checksum over the IPv4 pseudo-header (unless the NIC did);
//! emit writes the options in one canonical order and the checksum, whole
//! or as the pseudo-header sum a partial-checksum offload completes.
//!
//! How the options area is read ([`TcpOptions::parse`]), as illumos'
//! `tcp_parse_options` (`inet/tcp/tcp_input.c`) does where the RFCs leave
//! it open:
//!
//! * EOL ends the list; NOP is one byte; every other kind is kind, length,
//!   data.
//! * A length byte below 2, a missing length byte, or a length running past
//!   the options area makes the area malformed: the walk stops there, what
//!   was found before is kept, the rest is ignored, and the segment is
//!   **not** dropped ([`TcpOptions::malformed`] says it happened). illumos
//!   stops the same way and keeps the segment (RFC 9293 section 3.2 asks
//!   only that an illegal length be handled, and suggests a reset; the
//!   caller may still count or refuse it).
//! * A known kind with the wrong length (MSS not 4, window scale not 3,
//!   SACK-permitted not 2, timestamps not 10, SACK not 2 + 8n) is ignored
//!   and skipped by its length, and the walk goes on
//!   ([`TcpOptions::ignored`] counts them). Here illumos stops the walk
//!   instead; going on, as Linux and the BSDs do, keeps a peer's valid
//!   options that follow one it got wrong.
//! * An unknown kind of any valid length is skipped by its length
//!   ([`TcpOptions::unknown`] counts them; RFC 9293 section 3.2: ignore
//!   without error any option not implemented).
//! * A kind seen twice: the last MSS, window scale and timestamps win (as
//!   in illumos), SACK blocks of every SACK option are kept in order (at
//!   most [`TCP_MAX_SACK_BLOCKS`]).
//! * A window scale above 14 is taken as 14 (RFC 7323 section 2.3, as
//!   illumos does); an MSS is kept as sent (the caller clamps it to
//!   `_mss_min`, as illumos' callers do).
//!
//! Reserved header bits are ignored on parse and written as zero (RFC 9293
//! section 3.1). Parsing never panics and never reads past the buffer.

use core::net::Ipv4Addr;

use super::checksum;
use super::ipv4::IPPROTO_TCP;

/// TCP header length without options (data offset 5).
pub const TCP_HEADER_LEN: usize = 20;
/// Longest TCP header (data offset 15).
pub const TCP_MAX_HEADER_LEN: usize = 60;
/// Most option bytes a header can carry.
pub const TCP_MAX_OPTIONS_LEN: usize = TCP_MAX_HEADER_LEN - TCP_HEADER_LEN;
/// Largest TCP segment over IPv4 (the pseudo-header length is 16 bits).
pub const TCP_MAX_SEGMENT_LEN: usize = 65535;

/// Option kind: end of option list.
pub const TCPOPT_EOL: u8 = 0;
/// Option kind: no operation (padding, alignment).
pub const TCPOPT_NOP: u8 = 1;
/// Option kind: maximum segment size.
pub const TCPOPT_MSS: u8 = 2;
/// Option kind: window scale.
pub const TCPOPT_WSCALE: u8 = 3;
/// Option kind: SACK permitted.
pub const TCPOPT_SACK_PERMITTED: u8 = 4;
/// Option kind: SACK blocks.
pub const TCPOPT_SACK: u8 = 5;
/// Option kind: timestamps.
pub const TCPOPT_TIMESTAMP: u8 = 8;

/// Length of the MSS option.
pub const TCPOLEN_MSS: usize = 4;
/// Length of the window scale option.
pub const TCPOLEN_WSCALE: usize = 3;
/// Length of the SACK-permitted option.
pub const TCPOLEN_SACK_PERMITTED: usize = 2;
/// Length of the timestamps option.
pub const TCPOLEN_TIMESTAMP: usize = 10;
/// Length of one SACK block (left and right edge).
pub const TCPOLEN_SACK_BLOCK: usize = 8;

/// Largest window scale shift (RFC 7323 section 2.3: windows up to 1 GiB).
pub const TCP_MAX_WINSHIFT: u8 = 14;
/// Most SACK blocks one segment can carry (4 fill 34 of the 40 bytes).
pub const TCP_MAX_SACK_BLOCKS: usize = 4;

/// What is wrong with a TCP segment (parse) or a segment to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpError {
    /// Fewer than 20 bytes.
    Truncated,
    /// Data offset below 5 (the value found).
    BadDataOffset(u8),
    /// The data offset says more bytes than the segment holds.
    HeaderTruncated,
    /// The segment is longer than 65535 bytes (no IPv4 payload is).
    TooLong,
    /// The checksum does not verify.
    BadChecksum,
    /// (emit) The buffer is shorter than the header, or longer than 65535.
    BadBuffer,
}

/// The control bits of byte 13 (RFC 9293 section 3.1, RFC 3168 for CWR
/// and ECE).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// No flag set.
    pub const fn empty() -> Self {
        TcpFlags(0)
    }

    /// Whether every flag of `other` is set here.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set here.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// These flags and those of `other`.
    pub const fn union(self, other: TcpFlags) -> Self {
        TcpFlags(self.0 | other.0)
    }

    /// These flags without those of `other`.
    pub const fn without(self, other: TcpFlags) -> Self {
        TcpFlags(self.0 & !other.0)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        *self = self.union(rhs);
    }
}

impl core::fmt::Debug for TcpFlags {
    /// `SYN|ACK`, `-` for none: the names in bit order from CWR down.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(TcpFlags, &str); 8] = [
            (TcpFlags::CWR, "CWR"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ACK, "ACK"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::FIN, "FIN"),
        ];
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// One SACK block: the received bytes from `left` up to (not including)
/// `right`, as sequence numbers on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: u32,
    /// Sequence number just past the block.
    pub right: u32,
}

/// Up to [`TCP_MAX_SACK_BLOCKS`] SACK blocks, in the order of the wire.
#[derive(Clone, Copy, Default)]
pub struct SackBlocks {
    len: u8,
    blocks: [SackBlock; TCP_MAX_SACK_BLOCKS],
}

impl SackBlocks {
    /// No blocks.
    pub const fn new() -> Self {
        SackBlocks { len: 0, blocks: [SackBlock { left: 0, right: 0 }; TCP_MAX_SACK_BLOCKS] }
    }

    /// The first [`TCP_MAX_SACK_BLOCKS`] of `blocks` (the rest are dropped).
    pub fn from_slice(blocks: &[SackBlock]) -> Self {
        let mut s = Self::new();
        for b in blocks {
            s.push(*b);
        }
        s
    }

    /// Appends a block; false (and nothing changes) when already full.
    pub fn push(&mut self, block: SackBlock) -> bool {
        match self.blocks.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = block;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Keeps the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        if n < usize::from(self.len) {
            self.len = n as u8;
        }
    }

    /// The blocks.
    pub fn as_slice(&self) -> &[SackBlock] {
        &self.blocks[..usize::from(self.len)]
    }

    /// How many blocks.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PartialEq for SackBlocks {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SackBlocks {}

impl core::fmt::Debug for SackBlocks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The timestamps option (RFC 7323 section 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Timestamps {
    /// The sender's timestamp clock (TSval).
    pub tsval: u32,
    /// The echoed TSval of the peer (TSecr), meaningful with ACK.
    pub tsecr: u32,
}

/// The options of a TCP header as values. Parse fills every field; emit
/// writes the values only ([`unknown`](Self::unknown),
/// [`ignored`](Self::ignored) and [`malformed`](Self::malformed) describe
/// what parse saw and are never sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), as sent.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), at most [`TCP_MAX_WINSHIFT`].
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4).
    pub sack_permitted: bool,
    /// SACK blocks (kind 5).
    pub sack_blocks: SackBlocks,
    /// Timestamps (kind 8).
    pub timestamps: Option<Timestamps>,
    /// (parse) Options of unknown kind, skipped by their length.
    pub unknown: u8,
    /// (parse) Known options with the wrong length, skipped by it.
    pub ignored: u8,
    /// (parse) The walk stopped at a length below 2 or past the end; the
    /// options after that point were ignored.
    pub malformed: bool,
}

/// How [`TcpOptions::emit`] lays the options out.
#[derive(Clone, Copy)]
struct Layout {
    /// NOPs before each option to align it as Linux and illumos do.
    aligned: bool,
    /// SACK blocks that fit.
    sack: usize,
    /// Bytes written, a multiple of 4.
    len: usize,
}

impl TcpOptions {
    /// No options.
    pub const fn new() -> Self {
        TcpOptions {
            mss: None,
            window_scale: None,
            sack_permitted: false,
            sack_blocks: SackBlocks::new(),
            timestamps: None,
            unknown: 0,
            ignored: 0,
            malformed: false,
        }
    }

    /// Reads an options area (the bytes between the fixed header and the
    /// data offset) by the rules of the module doc. Never fails: what it
    /// cannot use it counts or flags.
    pub fn parse(area: &[u8]) -> TcpOptions {
        let mut o = TcpOptions::new();
        let mut i = 0usize;
        while let Some(&kind) = area.get(i) {
            match kind {
                TCPOPT_EOL => break,
                TCPOPT_NOP => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let len = match area.get(i + 1) {
                Some(&l) if l >= 2 => usize::from(l),
                _ => {
                    o.malformed = true;
                    break;
                }
            };
            let Some(opt) = area.get(i..i + len) else {
                o.malformed = true;
                break;
            };
            o.take(kind, &opt[2..]);
            i += len;
        }
        o
    }

    /// Records one well-formed option (kind, then its data after the
    /// length byte).
    fn take(&mut self, kind: u8, data: &[u8]) {
        let ok = match (kind, data) {
            (TCPOPT_MSS, &[a, b]) => {
                self.mss = Some(u16::from_be_bytes([a, b]));
                true
            }
            (TCPOPT_WSCALE, &[shift]) => {
                self.window_scale = Some(shift.min(TCP_MAX_WINSHIFT));
                true
            }
            (TCPOPT_SACK_PERMITTED, &[]) => {
                self.sack_permitted = true;
                true
            }
            (TCPOPT_TIMESTAMP, &[a, b, c, d, e, f, g, h]) => {
                self.timestamps = Some(Timestamps {
                    tsval: u32::from_be_bytes([a, b, c, d]),
                    tsecr: u32::from_be_bytes([e, f, g, h]),
                });
                true
            }
            (TCPOPT_SACK, _) if !data.is_empty() && data.len().is_multiple_of(TCPOLEN_SACK_BLOCK) => {
                for b in data.chunks_exact(TCPOLEN_SACK_BLOCK) {
                    self.sack_blocks.push(SackBlock {
                        left: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                        right: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                    });
                }
                true
            }
            (TCPOPT_MSS | TCPOPT_WSCALE | TCPOPT_SACK_PERMITTED | TCPOPT_TIMESTAMP | TCPOPT_SACK, _) => false,
            _ => {
                self.unknown = self.unknown.saturating_add(1);
                true
            }
        };
        if !ok {
            self.ignored = self.ignored.saturating_add(1);
        }
    }

    /// Bytes the options take with `sack` SACK blocks, aligned or not,
    /// padded to a multiple of 4.
    fn size(&self, aligned: bool, sack: usize) -> usize {
        let sack_len = if sack == 0 { 0 } else { 2 + TCPOLEN_SACK_BLOCK * sack };
        let n = if aligned {
            let ts_pair = if self.timestamps.is_some() {
                12
            } else if self.sack_permitted {
                4
            } else {
                0
            };
            usize::from(self.mss.is_some()) * 4
                + ts_pair
                + usize::from(self.window_scale.is_some()) * 4
                + if sack == 0 { 0 } else { 2 + sack_len }
        } else {
            usize::from(self.mss.is_some()) * TCPOLEN_MSS
                + usize::from(self.sack_permitted) * TCPOLEN_SACK_PERMITTED
                + usize::from(self.timestamps.is_some()) * TCPOLEN_TIMESTAMP
                + usize::from(self.window_scale.is_some()) * TCPOLEN_WSCALE
                + sack_len
        };
        n.next_multiple_of(4)
    }

    /// The layout emit uses: aligned with every SACK block if that fits in
    /// 40 bytes; else without the alignment NOPs; else with fewer blocks.
    fn layout(&self) -> Layout {
        for sack in (1..=self.sack_blocks.len()).rev() {
            for aligned in [true, false] {
                let len = self.size(aligned, sack);
                if len <= TCP_MAX_OPTIONS_LEN {
                    return Layout { aligned, sack, len };
                }
            }
        }
        // Without SACK blocks the aligned options take at most 20 bytes.
        Layout { aligned: true, sack: 0, len: self.size(true, 0) }
    }

    /// Bytes [`emit`](Self::emit) writes: a multiple of 4, at most 40.
    pub fn emit_len(&self) -> usize {
        self.layout().len
    }

    /// How many of the SACK blocks [`emit`](Self::emit) sends (the first
    /// ones; those that do not fit in 40 bytes are left out).
    pub fn emitted_sack_blocks(&self) -> usize {
        self.layout().sack
    }

    /// Writes the options area to the start of `buf` and returns its
    /// length. Order: MSS; SACK-permitted and timestamps (packed as
    /// `SACKOK TS`, or `NOP NOP TS`, or `NOP NOP SACKOK`); `NOP WS`;
    /// `NOP NOP SACK` with as many blocks as fit. When all of that is over
    /// 40 bytes the alignment NOPs go first, then trailing SACK blocks.
    /// The end is padded with zeros (EOL) to a multiple of 4. A window
    /// scale above 14 is sent as 14.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, TcpError> {
        let lay = self.layout();
        let Some(out) = buf.get_mut(..lay.len) else {
            return Err(TcpError::BadBuffer);
        };
        let mut w = Writer { out, at: 0 };
        let nops = |w: &mut Writer<'_>, n: usize| {
            if lay.aligned {
                for _ in 0..n {
                    w.put(&[TCPOPT_NOP]);
                }
            }
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            w.put(&[TCPOPT_MSS, TCPOLEN_MSS as u8, m[0], m[1]]);
        }
        match (self.sack_permitted, self.timestamps) {
            (true, None) => {
                nops(&mut w, 2);
                w.put(&[TCPOPT_SACK_PERMITTED, TCPOLEN_SACK_PERMITTED as u8]);
            }
            (sack_ok, Some(ts)) => {
                if sack_ok {
                    w.put(&[TCPOPT_SACK_PERMITTED, TCPOLEN_SACK_PERMITTED as u8]);
                } else {
                    nops(&mut w, 2);
                }
                w.put(&[TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP as u8]);
                w.put(&ts.tsval.to_be_bytes());
                w.put(&ts.tsecr.to_be_bytes());
            }
            (false, None) => {}
        }
        if let Some(shift) = self.window_scale {
            nops(&mut w, 1);
            w.put(&[TCPOPT_WSCALE, TCPOLEN_WSCALE as u8, shift.min(TCP_MAX_WINSHIFT)]);
        }
        if lay.sack > 0 {
            nops(&mut w, 2);
            w.put(&[TCPOPT_SACK, (2 + TCPOLEN_SACK_BLOCK * lay.sack) as u8]);
            for b in self.sack_blocks.as_slice().iter().take(lay.sack) {
                w.put(&b.left.to_be_bytes());
                w.put(&b.right.to_be_bytes());
            }
        }
        let end = w.at;
        if let Some(pad) = w.out.get_mut(end..) {
            pad.fill(TCPOPT_EOL);
        }
        Ok(lay.len)
    }
}

/// Appends bytes to a buffer sized by [`Layout::len`].
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
}

/// A TCP header. Sequence and acknowledgment numbers are the wire's `u32`
/// (the TCP rooms compare them as `tcp::seq::SeqNum`); the data offset
/// and the checksum are not fields: parse checks them, emit computes them
/// from the options ([`header_len`](Self::header_len)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with ACK).
    pub ack: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window (unscaled, as on the wire).
    pub window: u16,
    /// Urgent pointer (meaningful with URG).
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions,
}

impl TcpHeader {
    /// A header with no options and urgent pointer 0.
    pub const fn new(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: TcpFlags, window: u16) -> Self {
        TcpHeader { src_port, dst_port, seq, ack, flags, window, urgent: 0, options: TcpOptions::new() }
    }

    /// Parses the TCP segment `segment` (the whole IP payload) sent from
    /// `src` to `dst`; returns the header and the data after it.
    /// `verify_checksum` false skips the checksum (the NIC checked it).
    /// A malformed options area is not an error (see the module doc).
    pub fn parse(
        segment: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<(TcpHeader, &[u8]), TcpError> {
        if segment.len() < TCP_HEADER_LEN {
            return Err(TcpError::Truncated);
        }
        if segment.len() > TCP_MAX_SEGMENT_LEN {
            return Err(TcpError::TooLong);
        }
        let b = segment;
        let offset = b[12] >> 4;
        if offset < 5 {
            return Err(TcpError::BadDataOffset(offset));
        }
        let hlen = usize::from(offset) * 4;
        if hlen > b.len() {
            return Err(TcpError::HeaderTruncated);
        }
        if verify_checksum {
            let mut c = checksum::pseudo_header_v4(src, dst, IPPROTO_TCP, b.len() as u16);
            c.add(b);
            if c.finish() != 0 {
                return Err(TcpError::BadChecksum);
            }
        }
        let h = TcpHeader {
            src_port: u16::from_be_bytes([b[0], b[1]]),
            dst_port: u16::from_be_bytes([b[2], b[3]]),
            seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ack: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            flags: TcpFlags(b[13]),
            window: u16::from_be_bytes([b[14], b[15]]),
            urgent: u16::from_be_bytes([b[18], b[19]]),
            options: TcpOptions::parse(&b[TCP_HEADER_LEN..hlen]),
        };
        Ok((h, &b[hlen..]))
    }

    /// Header length [`emit`](Self::emit) writes: 20 plus the options.
    pub fn header_len(&self) -> usize {
        TCP_HEADER_LEN + self.options.emit_len()
    }

    /// The data offset [`emit`](Self::emit) writes (header length in
    /// 32-bit words, 5 to 15).
    pub fn data_offset(&self) -> u8 {
        (self.header_len() / 4) as u8
    }

    /// Writes the header without a checksum; returns its length.
    fn write(&self, segment: &mut [u8]) -> Result<usize, TcpError> {
        let hlen = self.header_len();
        if segment.len() < hlen || segment.len() > TCP_MAX_SEGMENT_LEN {
            return Err(TcpError::BadBuffer);
        }
        let (hdr, _) = segment.split_at_mut(hlen);
        hdr[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        hdr[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        hdr[4..8].copy_from_slice(&self.seq.to_be_bytes());
        hdr[8..12].copy_from_slice(&self.ack.to_be_bytes());
        hdr[12] = self.data_offset() << 4;
        hdr[13] = self.flags.0;
        hdr[14..16].copy_from_slice(&self.window.to_be_bytes());
        hdr[16..18].copy_from_slice(&[0, 0]);
        hdr[18..20].copy_from_slice(&self.urgent.to_be_bytes());
        self.options.emit(&mut hdr[TCP_HEADER_LEN..])?;
        Ok(hlen)
    }

    /// Writes the header into the first [`header_len`](Self::header_len)
    /// bytes of `segment`, whose remaining bytes are the data already in
    /// place, and computes the checksum over the pseudo-header from `src`
    /// to `dst` and the whole segment. Returns the header length.
    pub fn emit(&self, segment: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<usize, TcpError> {
        let hlen = self.write(segment)?;
        let mut c = checksum::pseudo_header_v4(src, dst, IPPROTO_TCP, segment.len() as u16);
        c.add(segment);
        segment[16..18].copy_from_slice(&c.finish().to_be_bytes());
        Ok(hlen)
    }

    /// As [`emit`](Self::emit), but leaves the checksum for the device:
    /// the field holds the pseudo-header sum, not complemented, as a
    /// partial-checksum offload (virtio `NEEDS_CSUM`, igb `TXSM`, or the
    /// MAC layer in software) expects; the sum over the segment from byte
    /// 0, complemented and stored at offset 16, completes it.
    /// As [`emit_partial`](Self::emit_partial), into `hdr` (the header's
    /// bytes only) for a segment of `seg_len` bytes in all, whose data
    /// lies elsewhere (a gathered send).
    pub fn emit_partial_header(&self, hdr: &mut [u8], seg_len: u16, src: Ipv4Addr, dst: Ipv4Addr) -> Result<usize, TcpError> {
        let hlen = self.write(hdr)?;
        let ps = checksum::pseudo_header_v4(src, dst, IPPROTO_TCP, seg_len).fold();
        hdr[16..18].copy_from_slice(&ps.to_be_bytes());
        Ok(hlen)
    }

    pub fn emit_partial(&self, segment: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<usize, TcpError> {
        let hlen = self.write(segment)?;
        let ps = checksum::pseudo_header_v4(src, dst, IPPROTO_TCP, segment.len() as u16).fold();
        segment[16..18].copy_from_slice(&ps.to_be_bytes());
        Ok(hlen)
    }
}
