//! The receive side's out-of-order queue of one TCP connection (illumos
//! `tcp_reass`, RFC 9293 §3.10.7.4): segments taken in any order, bytes
//! handed back in order from RCV.NXT, and the held ranges for SACK blocks
//! (RFC 2018).
//!
//! The caller owns RCV.NXT and RCV.WND and passes them to every call, so
//! a fast path that delivers in-order data itself stays in step: held
//! bytes it has overtaken are discarded at the next call. Everything is
//! measured as a signed distance from RCV.NXT, so sequence wrap-around
//! changes nothing; the window is held below 2^30 (RFC 7323's largest).
//!
//! Per segment (`seq`, bytes, FIN):
//!
//! * Bytes before RCV.NXT, or already held, are duplicates: the bytes
//!   received first win (RFC 9293 lets a receiver keep either copy), so a
//!   retransmission can never rewrite what was queued.
//! * Bytes at or past RCV.NXT + RCV.WND are trimmed (`tcpInPastWin*`), and
//!   with them the FIN, which sits after the last byte: a FIN only counts
//!   if its own sequence number is inside the window.
//! * A FIN is remembered wherever it arrives, in order or not, and comes
//!   out of [`RcvReass::take_in_order`] once the bytes before it have.
//!   Bytes past a known FIN are refused, and so is a second FIN at another
//!   place, or a FIN with bytes already held past it (again: what was
//!   received first wins).
//! * Out-of-order bytes are bounded by [`RcvReassConfig::max_bytes`] held
//!   in all and [`RcvReassConfig::max_ranges`] separate ranges; a segment
//!   that would pass either is refused whole (its sender retransmits).
//!   Bytes that join up with RCV.NXT are exempt, as the caller takes them
//!   at once (the window bounds them).
//!
//! Held ranges are kept merged (each a maximal run of contiguous bytes);
//! merging copies the shorter run into the longer, so no order of arrival
//! costs more than O(n log n) byte copies.
//!
//! Counters, under the names `netstat -s` prints (illumos MIB-II
//! `tcpInData*`): `tcpInInorderSegs`/`Bytes` (new bytes starting at
//! RCV.NXT), `tcpInUnorderSegs`/`Bytes` (new bytes queued past a hole),
//! `tcpInDupSegs`/`Bytes` (nothing new), `tcpInPartDupSegs`/`Bytes` (some
//! new, some duplicate), `tcpInPastWinSegs`/`Bytes` (bytes past the
//! window); then ours, in `tcp_stat` style: `tcp_reass_refused` and
//! `tcp_reass_refused_bytes` (caps), `tcp_reass_past_fin_bytes`,
//! `tcp_reass_fin_dropped`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::seq;

/// The largest receive window taken (RFC 7323: 2^30).
pub const RCV_MAX_WINDOW: u32 = 1 << 30;

/// Bounds of one connection's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RcvReassConfig {
    /// Most bytes held (out of order) at once.
    pub max_bytes: usize,
    /// Most separate ranges held at once.
    pub max_ranges: usize,
}

impl Default for RcvReassConfig {
    fn default() -> Self {
        // `max_buf` (1 MiB) bounds any receive window we offer.
        RcvReassConfig { max_bytes: 1 << 20, max_ranges: 64 }
    }
}

/// Why a segment's new bytes were not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcvRefusal {
    /// Holding them would pass [`RcvReassConfig::max_bytes`].
    Bytes,
    /// They would pass [`RcvReassConfig::max_ranges`].
    Ranges,
    /// They lie past the FIN already received.
    PastFin,
    /// A FIN (alone) at another place than the one already received, or
    /// before bytes already held.
    FinConflict,
}

/// The verdict on one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcvOutcome {
    /// New bytes, or a new FIN, were taken.
    Taken,
    /// Nothing new: every byte (and the FIN) was already received.
    Duplicate,
    /// Nothing inside the window.
    PastWindow,
    /// New bytes were refused.
    Refused(RcvRefusal),
    /// No bytes and no FIN.
    Empty,
}

/// What became of a segment's FIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinNote {
    /// The segment had none.
    None,
    /// Remembered.
    Taken,
    /// Already known at that place (or already consumed).
    Duplicate,
    /// Outside the window, after trimmed bytes, conflicting, or its
    /// segment was refused.
    Dropped,
}

/// The result of [`RcvReass::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RcvInsert {
    /// The verdict.
    pub outcome: RcvOutcome,
    /// Bytes newly held.
    pub new_bytes: usize,
    /// Bytes already received (before RCV.NXT or held).
    pub dup_bytes: usize,
    /// Bytes trimmed at the window's right edge.
    pub past_window_bytes: usize,
    /// Bytes refused for lying past a known FIN.
    pub past_fin_bytes: usize,
    /// The FIN.
    pub fin: FinNote,
    /// The segment's new bytes start at RCV.NXT.
    pub in_order: bool,
    /// [`RcvReass::take_in_order`] has something for RCV.NXT.
    pub ready: bool,
}

/// Bytes (and maybe the FIN) handed over from RCV.NXT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InOrder {
    /// The bytes, in order.
    pub data: Vec<u8>,
    /// The FIN follows them.
    pub fin: bool,
    /// RCV.NXT after them (and after the FIN).
    pub rcv_nxt: u32,
}

/// The counters (see the module doc for their names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RcvReassStats {
    /// `tcpInInorderSegs`.
    pub in_inorder_segs: u64,
    /// `tcpInInorderBytes`.
    pub in_inorder_bytes: u64,
    /// `tcpInUnorderSegs`.
    pub in_unorder_segs: u64,
    /// `tcpInUnorderBytes`.
    pub in_unorder_bytes: u64,
    /// `tcpInDupSegs`.
    pub in_dup_segs: u64,
    /// `tcpInDupBytes`.
    pub in_dup_bytes: u64,
    /// `tcpInPartDupSegs`.
    pub in_part_dup_segs: u64,
    /// `tcpInPartDupBytes`.
    pub in_part_dup_bytes: u64,
    /// `tcpInPastWinSegs`.
    pub in_past_win_segs: u64,
    /// `tcpInPastWinBytes`.
    pub in_past_win_bytes: u64,
    /// `tcp_reass_refused`: segments refused for the caps.
    pub refused_segs: u64,
    /// `tcp_reass_refused_bytes`: their new bytes.
    pub refused_bytes: u64,
    /// `tcp_reass_past_fin_bytes`: bytes refused past a known FIN.
    pub past_fin_bytes: u64,
    /// `tcp_reass_fin_dropped`: FINs not taken (window, conflict, refusal).
    pub fin_dropped: u64,
}

impl RcvReassStats {
    /// (name, value) for each counter.
    pub fn fields(&self) -> [(&'static str, u64); 14] {
        [
            ("tcpInInorderSegs", self.in_inorder_segs),
            ("tcpInInorderBytes", self.in_inorder_bytes),
            ("tcpInUnorderSegs", self.in_unorder_segs),
            ("tcpInUnorderBytes", self.in_unorder_bytes),
            ("tcpInDupSegs", self.in_dup_segs),
            ("tcpInDupBytes", self.in_dup_bytes),
            ("tcpInPartDupSegs", self.in_part_dup_segs),
            ("tcpInPartDupBytes", self.in_part_dup_bytes),
            ("tcpInPastWinSegs", self.in_past_win_segs),
            ("tcpInPastWinBytes", self.in_past_win_bytes),
            ("tcp_reass_refused", self.refused_segs),
            ("tcp_reass_refused_bytes", self.refused_bytes),
            ("tcp_reass_past_fin_bytes", self.past_fin_bytes),
            ("tcp_reass_fin_dropped", self.fin_dropped),
        ]
    }
}

/// A maximal run of contiguous held bytes.
struct Run {
    seq: u32,
    data: VecDeque<u8>,
    /// When it last grew (for SACK block order).
    touched: u64,
}

/// One connection's out-of-order receive queue.
pub struct RcvReass {
    cfg: RcvReassConfig,
    /// Sorted by sequence from RCV.NXT, disjoint and not adjacent.
    runs: Vec<Run>,
    held: usize,
    /// Sequence number of the FIN, once received.
    fin: Option<u32>,
    tick: u64,
    stats: RcvReassStats,
}

impl Default for RcvReass {
    fn default() -> Self {
        Self::new(RcvReassConfig::default())
    }
}

/// `src[lo..hi]`, where `lo` and `hi` are offsets (from RCV.NXT) and
/// `src` starts at offset `base`; empty if out of range.
fn piece(src: &[u8], base: i64, lo: i64, hi: i64) -> &[u8] {
    let (Ok(l), Ok(h)) = (usize::try_from(lo - base), usize::try_from(hi - base)) else { return &[] };
    src.get(l..h).unwrap_or(&[])
}

fn prepend(dst: &mut VecDeque<u8>, bytes: impl DoubleEndedIterator<Item = u8> + ExactSizeIterator) {
    dst.reserve(bytes.len());
    for b in bytes.rev() {
        dst.push_front(b);
    }
}

impl RcvReass {
    /// An empty queue with these bounds.
    pub fn new(cfg: RcvReassConfig) -> Self {
        RcvReass { cfg, runs: Vec::new(), held: 0, fin: None, tick: 0, stats: RcvReassStats::default() }
    }

    /// The bounds.
    pub fn config(&self) -> &RcvReassConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &RcvReassStats {
        &self.stats
    }

    /// Bytes held.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Separate ranges held.
    pub fn range_count(&self) -> usize {
        self.runs.len()
    }

    /// Nothing held and no FIN known.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.fin.is_none()
    }

    /// The FIN's sequence number, once received.
    pub fn fin_seq(&self) -> Option<u32> {
        self.fin
    }

    /// Forgets everything (the connection was reset); counters stay.
    pub fn clear(&mut self) {
        self.runs.clear();
        self.held = 0;
        self.fin = None;
    }

    /// The held ranges as (first sequence number, one past the last), in
    /// sequence order.
    pub fn ranges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.runs.iter().map(|r| (r.seq, seq::advance(r.seq, r.data.len() as i64)))
    }

    /// Up to `max` SACK blocks (RFC 2018) for an ACK of `rcv_nxt`: the
    /// held ranges above it, the one that grew last first (the block of
    /// the segment that triggered the ACK), then by how recently they grew.
    pub fn sack_blocks(&self, rcv_nxt: u32, max: usize) -> Vec<(u32, u32)> {
        let mut runs: Vec<&Run> = self.runs.iter().filter(|r| seq::dist(r.seq, rcv_nxt) > 0).collect();
        runs.sort_by(|a, b| b.touched.cmp(&a.touched));
        runs.iter().take(max).map(|r| (r.seq, seq::advance(r.seq, r.data.len() as i64))).collect()
    }

    fn offsets(r: &Run, rcv_nxt: u32) -> (i64, i64) {
        let s = seq::dist(r.seq, rcv_nxt);
        (s, s + r.data.len() as i64)
    }

    /// Drops held bytes the caller has moved RCV.NXT past.
    fn prune(&mut self, rcv_nxt: u32) {
        while let Some(first) = self.runs.first_mut() {
            let (s, e) = Self::offsets(first, rcv_nxt);
            if e <= 0 {
                self.held = self.held.saturating_sub(first.data.len());
                self.runs.remove(0);
            } else {
                if s < 0 {
                    let n = usize::try_from(-s).unwrap_or(0).min(first.data.len());
                    first.data.drain(..n);
                    first.seq = rcv_nxt;
                    self.held = self.held.saturating_sub(n);
                }
                break;
            }
        }
    }

    /// Takes one segment: `seq` its sequence number, `data` its bytes, `fin`
    /// its FIN flag, against the caller's RCV.NXT and RCV.WND.
    pub fn insert(&mut self, seq: u32, data: &[u8], fin: bool, rcv_nxt: u32, rcv_wnd: u32) -> RcvInsert {
        self.prune(rcv_nxt);
        let mut res = RcvInsert {
            outcome: RcvOutcome::Empty,
            new_bytes: 0,
            dup_bytes: 0,
            past_window_bytes: 0,
            past_fin_bytes: 0,
            fin: if fin { FinNote::Dropped } else { FinNote::None },
            in_order: false,
            ready: false,
        };
        if data.is_empty() && !fin {
            res.ready = self.ready(rcv_nxt);
            return res;
        }
        let wnd = i64::from(rcv_wnd.min(RCV_MAX_WINDOW));
        let start = seq::dist(seq, rcv_nxt);
        let end = start + data.len() as i64;
        let known_fin = self.fin.map(|f| seq::dist(f, rcv_nxt));

        // Duplicates before RCV.NXT; the window; bytes past a known FIN.
        let dup_before = (end.min(0) - start).max(0);
        let past_window = (end - start.max(wnd)).max(0);
        let lo = start.max(0);
        let win_hi = end.min(wnd).max(lo);
        let hi = known_fin.map_or(win_hi, |f| win_hi.min(f.max(0))).max(lo);
        let past_fin = win_hi - hi;

        // Held runs touching [lo, hi): indices i0..i1.
        let i0 = self.runs.iter().position(|r| Self::offsets(r, rcv_nxt).1 >= lo).unwrap_or(self.runs.len());
        let i1 = self
            .runs
            .iter()
            .skip(i0)
            .position(|r| Self::offsets(r, rcv_nxt).0 > hi)
            .map_or(self.runs.len(), |p| i0 + p);
        let overlap: i64 = self
            .runs
            .get(i0..i1)
            .unwrap_or(&[])
            .iter()
            .map(|r| {
                let (s, e) = Self::offsets(r, rcv_nxt);
                (e.min(hi) - s.max(lo)).max(0)
            })
            .sum();
        let new = (hi - lo - overlap).max(0);
        let dup = dup_before + overlap;

        // The FIN, at sequence offset `end`.
        let mut fin_ok = false;
        if fin {
            res.fin = match known_fin {
                Some(f) if f == end => FinNote::Duplicate,
                Some(_) => FinNote::Dropped,
                None if end < 0 => FinNote::Duplicate,
                None if end >= wnd => FinNote::Dropped,
                None => {
                    let held_past = self.runs.last().is_some_and(|r| Self::offsets(r, rcv_nxt).1 > end);
                    if held_past {
                        FinNote::Dropped
                    } else {
                        fin_ok = true;
                        FinNote::Taken
                    }
                }
            };
        }

        // The caps, for bytes that do not join up with RCV.NXT.
        let mut refusal = None;
        if new > 0 {
            let merged_lo = self.runs.get(i0).filter(|_| i0 < i1).map_or(lo, |r| lo.min(Self::offsets(r, rcv_nxt).0));
            let runs_after = self.runs.len() - (i1 - i0) + 1;
            if merged_lo > 0 {
                if self.held + new as usize > self.cfg.max_bytes {
                    refusal = Some(RcvRefusal::Bytes);
                } else if runs_after > self.cfg.max_ranges {
                    refusal = Some(RcvRefusal::Ranges);
                }
            }
        }

        if past_window > 0 {
            self.stats.in_past_win_segs += 1;
            self.stats.in_past_win_bytes += past_window as u64;
            res.past_window_bytes = past_window as usize;
        }
        if past_fin > 0 {
            self.stats.past_fin_bytes += past_fin as u64;
            res.past_fin_bytes = past_fin as usize;
        }
        res.dup_bytes = dup as usize;

        if let Some(why) = refusal {
            self.stats.refused_segs += 1;
            self.stats.refused_bytes += new as u64;
            if fin {
                res.fin = FinNote::Dropped;
            }
            self.stats.fin_dropped += u64::from(fin);
            res.outcome = RcvOutcome::Refused(why);
            res.ready = self.ready(rcv_nxt);
            return res;
        }

        if new > 0 {
            self.merge(data, start, lo, hi, i0, i1, rcv_nxt);
            self.held += new as usize;
            res.new_bytes = new as usize;
            res.in_order = start <= 0;
            if res.in_order {
                self.stats.in_inorder_segs += 1;
                self.stats.in_inorder_bytes += new as u64;
            } else {
                self.stats.in_unorder_segs += 1;
                self.stats.in_unorder_bytes += new as u64;
            }
            if dup > 0 {
                self.stats.in_part_dup_segs += 1;
                self.stats.in_part_dup_bytes += dup as u64;
            }
        }
        if fin_ok {
            self.fin = Some(seq::advance(rcv_nxt, end));
        }
        if res.fin == FinNote::Dropped {
            self.stats.fin_dropped += 1;
        }

        res.outcome = if new > 0 || fin_ok {
            RcvOutcome::Taken
        } else if past_fin > 0 {
            RcvOutcome::Refused(RcvRefusal::PastFin)
        } else if dup > 0 || res.fin == FinNote::Duplicate {
            RcvOutcome::Duplicate
        } else if past_window > 0 || (fin && end >= wnd) {
            RcvOutcome::PastWindow
        } else {
            RcvOutcome::Refused(RcvRefusal::FinConflict)
        };
        if res.outcome == RcvOutcome::Duplicate {
            self.stats.in_dup_segs += 1;
            self.stats.in_dup_bytes += dup as u64;
        }
        res.ready = self.ready(rcv_nxt);
        res
    }

    /// Puts the new bytes of `src` (at offset `base`) in `[lo, hi)` into
    /// the runs `i0..i1` that touch that range (or a new run), merged.
    #[allow(clippy::too_many_arguments)]
    fn merge(&mut self, src: &[u8], base: i64, lo: i64, hi: i64, i0: usize, i1: usize, rcv_nxt: u32) {
        self.tick += 1;
        let tick = self.tick;
        if i0 >= i1 {
            let data = VecDeque::from(piece(src, base, lo, hi).to_vec());
            let at = i0.min(self.runs.len());
            self.runs.insert(at, Run { seq: seq::advance(rcv_nxt, lo), data, touched: tick });
            return;
        }
        let mut touching = self.runs.drain(i0..i1.min(self.runs.len()));
        let Some(mut acc) = touching.next() else { return };
        let (acc_lo, mut acc_hi) = Self::offsets(&acc, rcv_nxt);
        if lo < acc_lo {
            prepend(&mut acc.data, piece(src, base, lo, acc_lo).iter().copied());
            acc.seq = seq::advance(rcv_nxt, lo);
        }
        for mut r in touching.by_ref() {
            let (r_lo, r_hi) = Self::offsets(&r, rcv_nxt);
            let gap = piece(src, base, acc_hi, r_lo);
            if acc.data.len() + gap.len() >= r.data.len() {
                acc.data.extend(gap.iter().copied());
                acc.data.append(&mut r.data);
            } else {
                prepend(&mut r.data, gap.iter().copied());
                prepend(&mut r.data, acc.data.iter().copied());
                r.seq = acc.seq;
                acc = r;
            }
            acc_hi = r_hi;
        }
        drop(touching);
        if hi > acc_hi {
            acc.data.extend(piece(src, base, acc_hi, hi).iter().copied());
        }
        acc.touched = tick;
        let at = i0.min(self.runs.len());
        self.runs.insert(at, acc);
    }

    fn ready(&self, rcv_nxt: u32) -> bool {
        self.runs.first().is_some_and(|r| r.seq == rcv_nxt) || self.fin == Some(rcv_nxt)
    }

    /// The bytes held from `rcv_nxt` on, with the FIN if it follows them,
    /// and RCV.NXT after them; `None` if there is a hole at `rcv_nxt`.
    pub fn take_in_order(&mut self, rcv_nxt: u32) -> Option<InOrder> {
        self.take_in_order_max(rcv_nxt, usize::MAX)
    }

    /// As [`RcvReass::take_in_order`], at most `max` bytes (the room the
    /// reader has); the FIN comes only with the last byte before it.
    pub fn take_in_order_max(&mut self, rcv_nxt: u32, max: usize) -> Option<InOrder> {
        self.prune(rcv_nxt);
        let fin_at = self.fin.map(|f| seq::dist(f, rcv_nxt));
        let mut data = Vec::new();
        if max > 0 && self.runs.first().is_some_and(|r| r.seq == rcv_nxt) {
            let whole = self.runs.first().is_some_and(|r| r.data.len() <= max);
            if whole {
                let run = self.runs.remove(0);
                data = Vec::from(run.data);
            } else if let Some(run) = self.runs.first_mut() {
                data = crate::fireengine::bytes::take_front(&mut run.data, max);
                run.seq = seq::advance(run.seq, max as i64);
            }
            self.held = self.held.saturating_sub(data.len());
        }
        let fin = fin_at == Some(data.len() as i64);
        if data.is_empty() && !fin {
            return None;
        }
        let next = seq::advance(rcv_nxt, data.len() as i64 + i64::from(fin));
        Some(InOrder { data, fin, rcv_nxt: next })
    }
}
