//! The sender's SACK scoreboard (RFC 2018 blocks kept as merged ranges)
//! and RFC 6675's conservative loss recovery rules over it (section 4):
//! `IsLost`, `SetPipe` (the bytes in flight) and `NextSeg` (what to send
//! next during recovery; rule 4, the rescue retransmission, is the
//! caller's). D-SACK blocks (RFC 2883 section 4: a first block below
//! SND.UNA, or inside the second block) are recognized and reported, never
//! recorded.
//!
//! The ranges are `[start, end)`, in order, disjoint and not touching, all
//! within (SND.UNA, SND.MAX] as of the last [`Scoreboard::update`]. Every
//! comparison is in sequence space ([`SeqNum`]), so the 2^32 wrap changes
//! nothing; windows are below 2^31 as TCP's always are.
//!
//! `HighRxt` here is exclusive: the first byte after the highest one
//! retransmitted in this recovery (SND.UNA when nothing was). RFC 6675's
//! `IsLost` and `SetPipe` are defined per octet; because every octet of
//! one un-SACKed gap has the same SACKed ranges above it, both are
//! computed per gap, exactly, in time linear in the number of ranges.
//!
//! The scoreboard is bounded: at most [`MAX_RANGES`] ranges. A block that
//! would make one more drops the highest range instead (counted in
//! [`Scoreboard::overflows`]); that only under-reports what the peer
//! holds, which is safe: a byte not known to be SACKed is in the pipe or
//! retransmitted at worst.

use alloc::vec::Vec;

use super::seq::SeqNum;

/// Most separate SACKed ranges kept (see the module doc).
pub const MAX_RANGES: usize = 256;
/// The same bound under the brief's name: the ranges bound the holes.
pub const MAX_HOLES: usize = MAX_RANGES;
/// RFC 6675 DupThresh.
pub const DUP_THRESH: u32 = 3;

/// What one ACK's SACK blocks changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackUpdate {
    /// Bytes the blocks newly covered (not SACKed before this ACK).
    pub newly_sacked: u32,
    /// The ACK carried a D-SACK block (RFC 2883).
    pub dsack: bool,
    /// Blocks ignored: empty or inverted, past SND.MAX, or (other than the
    /// first) wholly below SND.UNA.
    pub ignored_blocks: u32,
}

/// What [`Scoreboard::next_seg`] picked (RFC 6675 section 4, NextSeg()).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextSeg {
    /// Rule 1: a lost, un-SACKed range at or above HighRxt, below the
    /// highest SACKed byte.
    Rule1 {
        /// First byte.
        seq: SeqNum,
        /// Bytes (1 to one MSS, never into a SACKed range).
        len: u32,
    },
    /// Rule 3: an un-SACKed range at or above HighRxt, below the highest
    /// SACKed byte, not yet deemed lost (send it only if cwnd allows).
    Rule3 {
        /// First byte.
        seq: SeqNum,
        /// Bytes (1 to one MSS, never into a SACKed range).
        len: u32,
    },
    /// Rule 2: send new data (from SND.MAX) instead.
    NewData,
}

/// The scoreboard (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Scoreboard {
    /// SACKed ranges `[start, end)`, in order, disjoint, not touching.
    ranges: Vec<(SeqNum, SeqNum)>,
    /// Ranges dropped to stay within [`MAX_RANGES`], since creation (not
    /// reset by [`Scoreboard::clear`]).
    pub overflows: u64,
}

/// Bytes in `[s, e)` (0 unless `s` is before `e`).
fn len(s: SeqNum, e: SeqNum) -> u32 {
    if s.lt(e) {
        e.offset_from(s) as u32
    } else {
        0
    }
}

/// One un-SACKed gap between SND.UNA and SND.MAX: `[start, end)`, with
/// the SACKed ranges and bytes above it.
#[derive(Clone, Copy, Debug)]
struct Gap {
    start: SeqNum,
    end: SeqNum,
    ranges_above: u32,
    bytes_above: u64,
}

impl Gap {
    /// RFC 6675 IsLost for every octet of the gap.
    fn lost(&self, mss: u32) -> bool {
        lost(self.ranges_above, self.bytes_above, mss)
    }
}

/// RFC 6675 IsLost given what is SACKed above the octet.
fn lost(ranges_above: u32, bytes_above: u64, mss: u32) -> bool {
    ranges_above >= DUP_THRESH || bytes_above > u64::from(DUP_THRESH - 1) * u64::from(mss.max(1))
}

impl Scoreboard {
    /// Empty.
    pub fn new() -> Self {
        Scoreboard::default()
    }

    /// Forgets every range (a reset, a timeout, or reneging suspected).
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Whether nothing is SACKed.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The SACKed ranges `[start, end)`, in order.
    pub fn ranges(&self) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        self.ranges.iter().copied()
    }

    /// How many ranges are kept.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Ranges dropped to stay within [`MAX_RANGES`] (the
    /// [`Scoreboard::overflows`] count).
    pub fn overflow_count(&self) -> u64 {
        self.overflows
    }

    /// Bytes SACKed.
    pub fn sacked_bytes(&self) -> u32 {
        self.ranges.iter().fold(0u32, |a, &(s, e)| a.saturating_add(len(s, e)))
    }

    /// The end of the highest SACKed range (one past its last byte).
    pub fn high_sacked(&self) -> Option<SeqNum> {
        self.ranges.last().map(|r| r.1)
    }

    /// Takes an ACK: drops (and trims) what SND.UNA passed and anything
    /// past SND.MAX, then adds its blocks (trimmed to SND.UNA). The first
    /// block is a D-SACK when it lies wholly at or below SND.UNA or inside
    /// the second block (RFC 2883 section 4); it is reported, not recorded.
    pub fn update(&mut self, snd_una: SeqNum, snd_max: SeqNum, blocks: &[(SeqNum, SeqNum)]) -> SackUpdate {
        let mut u = SackUpdate::default();
        self.ranges.retain_mut(|r| {
            if r.0.lt(snd_una) {
                r.0 = snd_una;
            }
            if r.1.gt(snd_max) {
                r.1 = snd_max;
            }
            r.0.lt(r.1)
        });
        for (i, &(s, e)) in blocks.iter().enumerate() {
            if !s.lt(e) || e.gt(snd_max) {
                u.ignored_blocks += 1;
                continue;
            }
            if i == 0 {
                let inside_second = blocks.get(1).is_some_and(|&(s2, e2)| s2.lt(e2) && s2.le(s) && e.le(e2));
                if e.le(snd_una) || inside_second {
                    u.dsack = true;
                    continue;
                }
            }
            if e.le(snd_una) {
                u.ignored_blocks += 1;
                continue;
            }
            let s = s.max(snd_una);
            u.newly_sacked = u.newly_sacked.saturating_add(self.insert(s, e));
        }
        u
    }

    /// Adds `[s, e)` (non-empty); returns the bytes it newly covered.
    fn insert(&mut self, s: SeqNum, e: SeqNum) -> u32 {
        // The first range that ends at or after s (it may touch or
        // overlap), then every range starting at or before e.
        let i = self.ranges.iter().position(|&(_, re)| re.ge(s)).unwrap_or(self.ranges.len());
        let (mut ns, mut ne) = (s, e);
        let mut old: u32 = 0;
        let mut j = i;
        while j < self.ranges.len() && self.ranges[j].0.le(ne) {
            let (rs, re) = self.ranges[j];
            ns = ns.min(rs);
            ne = ne.max(re);
            old = old.saturating_add(len(rs, re));
            j += 1;
        }
        self.ranges.splice(i..j, [(ns, ne)]);
        while self.ranges.len() > MAX_RANGES {
            self.ranges.pop();
            self.overflows = self.overflows.saturating_add(1);
        }
        len(ns, ne).saturating_sub(old)
    }

    /// Whether `[seq, seq+len)` is SACKed whole (`len` 1 to 2^31 − 1; an
    /// empty or longer range is not).
    pub fn is_sacked(&self, seq: SeqNum, len: u32) -> bool {
        if len == 0 || len >= 1 << 31 {
            return false;
        }
        let end = seq + len as usize;
        self.ranges.iter().any(|&(s, e)| s.le(seq) && end.le(e))
    }

    /// RFC 6675 IsLost(seq): DupThresh (3) or more discontiguous SACKed
    /// ranges hold bytes above `seq`, or more than (DupThresh − 1)·MSS
    /// SACKed bytes lie above it.
    pub fn is_lost(&self, seq: SeqNum, mss: u32) -> bool {
        let mut bytes: u64 = 0;
        let mut ranges: u32 = 0;
        let after = seq + 1;
        for &(s, e) in &self.ranges {
            let b = len(s.max(after), e);
            if b > 0 {
                bytes += u64::from(b);
                ranges += 1;
            }
        }
        lost(ranges, bytes, mss)
    }

    /// The un-SACKed gaps of `[snd_una, snd_max)` in order, each with the
    /// SACKed ranges above it (clipped to the same span).
    fn gaps(&self, snd_una: SeqNum, snd_max: SeqNum) -> Vec<Gap> {
        let clipped: Vec<(SeqNum, SeqNum)> =
            self.ranges.iter().map(|&(s, e)| (s.max(snd_una), e.min(snd_max))).filter(|&(s, e)| s.lt(e)).collect();
        let mut ranges_above = clipped.len() as u32;
        let mut bytes_above: u64 = clipped.iter().map(|&(s, e)| u64::from(len(s, e))).sum();
        let mut out = Vec::with_capacity(clipped.len() + 1);
        let mut cur = snd_una;
        for &(s, e) in &clipped {
            if cur.lt(s) {
                out.push(Gap { start: cur, end: s, ranges_above, bytes_above });
            }
            ranges_above -= 1;
            bytes_above -= u64::from(len(s, e));
            cur = cur.max(e);
        }
        if cur.lt(snd_max) {
            out.push(Gap { start: cur, end: snd_max, ranges_above: 0, bytes_above: 0 });
        }
        out
    }

    /// RFC 6675 SetPipe(): of the un-SACKed bytes in `[snd_una,
    /// snd_max)`, each one not lost counts once, and each one below
    /// `high_rxt` (retransmitted) once more.
    pub fn pipe(&self, snd_una: SeqNum, snd_max: SeqNum, high_rxt: SeqNum, mss: u32) -> u32 {
        let mut pipe: u64 = 0;
        for g in self.gaps(snd_una, snd_max) {
            if !g.lost(mss) {
                pipe += u64::from(len(g.start, g.end));
            }
            pipe += u64::from(len(g.start, g.end.min(high_rxt)));
        }
        pipe.min(u64::from(u32::MAX)) as u32
    }

    /// RFC 6675 NextSeg(), rules 1 to 3: the first un-SACKed byte at or
    /// above `high_rxt` (and SND.UNA) below the highest SACKed byte, as
    /// [`NextSeg::Rule1`] when it is lost; otherwise [`NextSeg::NewData`]
    /// when `have_new_data` (the caller has unsent data the peer's window
    /// allows); otherwise that byte as [`NextSeg::Rule3`]; `None` when
    /// there is nothing to send. The range given is at most one MSS and
    /// stops at the next SACKed range. Rule 4 (rescue) is the caller's.
    pub fn next_seg(
        &self,
        snd_una: SeqNum,
        snd_max: SeqNum,
        high_rxt: SeqNum,
        mss: u32,
        have_new_data: bool,
    ) -> Option<NextSeg> {
        let mss = mss.max(1);
        let from = high_rxt.max(snd_una);
        // Gaps with SACKed ranges above are below the highest SACKed byte.
        let cand = self.gaps(snd_una, snd_max).into_iter().filter(|g| g.ranges_above > 0).find_map(|g| {
            let s = g.start.max(from);
            let n = len(s, g.end);
            (n > 0).then_some((s, n.min(mss), g.lost(mss)))
        });
        match cand {
            Some((seq, len, true)) => Some(NextSeg::Rule1 { seq, len }),
            _ if have_new_data => Some(NextSeg::NewData),
            Some((seq, len, false)) => Some(NextSeg::Rule3 { seq, len }),
            None => None,
        }
    }
}
