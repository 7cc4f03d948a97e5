//! The sender's SACK scoreboard and RFC 6675's conservative loss
//! recovery rules over it: which bytes above SND.UNA the peer holds
//! (merged ranges, bounded), `IsLost`, `SetPipe` (the bytes in flight)
//! and `NextSeg` (what to send next during recovery). D-SACK blocks
//! (RFC 2883: a block below SND.UNA, or inside the first one) are
//! recognized and reported, never recorded. Every comparison is in
//! sequence space, so the 2^32 wrap changes nothing.

use alloc::vec::Vec;

use super::seq::SeqNum;

/// Most separate SACKed ranges kept; past it the highest are merged
/// (the scoreboard then under-reports, which is safe: a byte not known
/// to be SACKed is retransmitted at worst).
pub const MAX_RANGES: usize = 256;
/// RFC 6675 DupThresh.
pub const DUP_THRESH: u32 = 3;

/// What one ACK's SACK blocks changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackUpdate {
    /// Bytes newly known SACKed.
    pub newly_sacked: u32,
    /// The ACK carried a D-SACK block.
    pub dsack: bool,
    /// Blocks ignored as invalid (empty, inverted, past SND.MAX).
    pub ignored_blocks: u32,
}

/// What [`Scoreboard::next_seg`] picked (RFC 6675 section 4, NextSeg()).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextSeg {
    /// Rule 1: a lost, un-SACKed range above HighRxt.
    Rule1 {
        /// First byte.
        seq: SeqNum,
        /// Bytes (at most one MSS).
        len: u32,
    },
    /// Rule 2: send new data.
    NewData,
    /// Rule 3: an un-SACKed range above HighRxt not yet deemed lost.
    Rule3 {
        /// First byte.
        seq: SeqNum,
        /// Bytes (at most one MSS).
        len: u32,
    },
}

/// The scoreboard (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Scoreboard {
    /// SACKed ranges `[start, end)`, in order, disjoint, not touching.
    ranges: Vec<(SeqNum, SeqNum)>,
    /// Ranges dropped or merged to stay within [`MAX_RANGES`].
    pub overflows: u64,
}

impl Scoreboard {
    /// Empty.
    pub fn new() -> Self {
        Scoreboard::default()
    }

    /// Forgets everything (a reset, or reneging suspected).
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Whether nothing is SACKed.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The SACKed ranges, in order.
    pub fn ranges(&self) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        self.ranges.iter().copied()
    }

    /// Bytes SACKed.
    pub fn sacked_bytes(&self) -> u32 {
        self.ranges.iter().map(|&(s, e)| (e - s).max(0) as u32).sum()
    }

    /// The end of the highest SACKed range.
    pub fn high_sacked(&self) -> Option<SeqNum> {
        self.ranges.last().map(|r| r.1)
    }

    /// Takes an ACK: drops what SND.UNA passed, adds its blocks.
    pub fn update(&mut self, snd_una: SeqNum, snd_max: SeqNum, blocks: &[(SeqNum, SeqNum)]) -> SackUpdate {
        let mut u = SackUpdate::default();
        // Drop and trim below SND.UNA.
        self.ranges.retain(|&(_, e)| e.gt(snd_una));
        if let Some(first) = self.ranges.first_mut() {
            if first.0.lt(snd_una) {
                first.0 = snd_una;
            }
        }
        for (i, &(s, e)) in blocks.iter().enumerate() {
            if !s.lt(e) || e.gt(snd_max) || (e - s) > (1 << 30) {
                u.ignored_blocks += 1;
                continue;
            }
            if e.le(snd_una) {
                u.dsack = true;
                continue;
            }
            if i == 0 && blocks.len() > 1 {
                let (s2, e2) = blocks[1];
                if s2.le(s) && e.le(e2) {
                    // The first block inside the second: a D-SACK.
                    u.dsack = true;
                    continue;
                }
            }
            let s = if s.lt(snd_una) { snd_una } else { s };
            u.newly_sacked = u.newly_sacked.saturating_add(self.insert(s, e));
        }
        u
    }

    /// Adds `[s, e)`; returns the bytes newly covered.
    fn insert(&mut self, s: SeqNum, e: SeqNum) -> u32 {
        let before = self.sacked_bytes();
        // First range whose end reaches s.
        let i = self.ranges.iter().position(|&(_, re)| re.ge(s)).unwrap_or(self.ranges.len());
        let (mut ns, mut ne) = (s, e);
        let mut j = i;
        while j < self.ranges.len() && self.ranges[j].0.le(ne) {
            ns = ns.min(self.ranges[j].0);
            ne = ne.max(self.ranges[j].1);
            j += 1;
        }
        self.ranges.splice(i..j, [(ns, ne)]);
        while self.ranges.len() > MAX_RANGES {
            // Merge the two highest ranges' gap away? No: drop the
            // highest range (it will be SACKed again by later ACKs).
            self.ranges.pop();
            self.overflows += 1;
        }
        self.sacked_bytes().saturating_sub(before)
    }

    /// Whether `[seq, seq+len)` is SACKed whole.
    pub fn is_sacked(&self, seq: SeqNum, len: u32) -> bool {
        let end = seq + len as usize;
        self.ranges.iter().any(|&(s, e)| s.le(seq) && end.le(e))
    }

    /// RFC 6675 IsLost(SeqNum).
    pub fn is_lost(&self, seq: SeqNum, mss: u32) -> bool {
        let mut bytes: u64 = 0;
        let mut segs: u64 = 0;
        for &(s, e) in &self.ranges {
            if e.gt(seq) {
                let from = if s.gt(seq) { s } else { seq + 1 };
                if e.gt(from) {
                    let b = (e - from) as u64;
                    bytes += b;
                    segs += b.div_ceil(u64::from(mss.max(1)));
                }
            }
        }
        segs >= u64::from(DUP_THRESH) || bytes > u64::from(DUP_THRESH - 1) * u64::from(mss.max(1))
    }

    /// The un-SACKed pieces from `snd_una` to `snd_max`, each at most
    /// `mss`, in order.
    fn holes(&self, snd_una: SeqNum, snd_max: SeqNum, mss: u32, f: &mut dyn FnMut(SeqNum, u32) -> bool) {
        let mss = mss.max(1) as usize;
        let mut cur = snd_una;
        let walk = |from: SeqNum, to: SeqNum, f: &mut dyn FnMut(SeqNum, u32) -> bool| -> bool {
            let mut s = from;
            while s.lt(to) {
                let n = ((to - s) as usize).min(mss);
                if !f(s, n as u32) {
                    return false;
                }
                s += n;
            }
            true
        };
        for &(s, e) in &self.ranges {
            if s.gt(cur) && !walk(cur, s.min(snd_max), f) {
                return;
            }
            if e.gt(cur) {
                cur = e;
            }
        }
        if cur.lt(snd_max) {
            walk(cur, snd_max, f);
        }
    }

    /// RFC 6675 SetPipe(): bytes deemed in flight.
    pub fn pipe(&self, snd_una: SeqNum, snd_max: SeqNum, high_rxt: SeqNum, mss: u32) -> u32 {
        let mut pipe: u64 = 0;
        let high = self.high_sacked();
        self.holes(snd_una, snd_max, mss, &mut |s, n| {
            let above_sacked = high.is_none_or(|h| s.ge(h));
            if above_sacked || !self.is_lost(s, mss) {
                pipe += u64::from(n);
            }
            if s.lt(high_rxt) {
                pipe += u64::from(n);
            }
            true
        });
        pipe.min(u64::from(u32::MAX)) as u32
    }

    /// RFC 6675 NextSeg().
    pub fn next_seg(&self, snd_una: SeqNum, snd_max: SeqNum, high_rxt: SeqNum, mss: u32, have_new_data: bool) -> Option<NextSeg> {
        let high = self.high_sacked()?;
        let mut rule1 = None;
        let mut rule3 = None;
        self.holes(snd_una, high.min(snd_max), mss, &mut |s, n| {
            if s.lt(high_rxt) {
                let end = s + n as usize;
                if end.le(high_rxt) {
                    return true;
                }
                // Only the part above HighRxt.
                let d = (high_rxt - s) as u32;
                let (s, n) = (high_rxt, n - d);
                if self.is_lost(s, mss) {
                    rule1 = Some(NextSeg::Rule1 { seq: s, len: n });
                    return false;
                }
                if rule3.is_none() {
                    rule3 = Some(NextSeg::Rule3 { seq: s, len: n });
                }
                return true;
            }
            if self.is_lost(s, mss) {
                rule1 = Some(NextSeg::Rule1 { seq: s, len: n });
                return false;
            }
            if rule3.is_none() {
                rule3 = Some(NextSeg::Rule3 { seq: s, len: n });
            }
            true
        });
        if rule1.is_some() {
            return rule1;
        }
        if have_new_data {
            return Some(NextSeg::NewData);
        }
        rule3
    }
}
