//! Bounded IPv4 reassembly (RFC 791, RFC 815 hole list), hardened against
//! overlapping fragments (RFC 5722's rule applied to IPv4: a fragment whose
//! overlap disagrees with bytes already held kills the datagram) and
//! against memory exhaustion (caps per source, in total and on the number
//! of datagrams in progress).
//!
//! Policy when a cap would be exceeded: the new fragment is refused and
//! the datagram it belongs to (if any) is abandoned, since it could never
//! complete; one `ipReasmFails`. Trains in progress are never evicted to
//! make room, so a flood from one source cannot push out another's.
//!
//! Counters: `ipReasmReqds` per fragment given, `ipReasmOKs` per datagram
//! completed, `ipReasmDuplicates` per exact duplicate, `ipReasmPartDups`
//! per fragment that overlaps held bytes (with the same contents) and
//! adds new ones, `ipReasmFails` per datagram or fragment dropped
//! (timeouts included). As in illumos' MIB, `ipReasmTimeout` holds the
//! timeout in seconds, not a count.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use core::ops::Range;
use core::sync::atomic::Ordering;

use super::mib::{bump, IpMib};
use crate::fireengine::wire::icmp::ICMP_QUOTE_EXTRA;
use crate::fireengine::wire::ipv4::{Ipv4Header, IPV4_MAX_DATAGRAM_LEN};

/// illumos' `ip_reass_timeout` default: 60 s.
pub const IP_REASS_TIMEOUT_MS: u64 = 60_000;

/// The fragment offset space: payload bytes 0..65536 (anything at or past
/// 65535 minus the header is refused).
const OFFSET_SPACE: usize = 65536;

/// The limits of a [`Reassembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassConfig {
    /// A datagram not complete this long after its first fragment arrived
    /// is dropped.
    pub timeout_ms: u64,
    /// Most payload bytes held for datagrams from one source address.
    pub per_source_cap: usize,
    /// Most payload bytes held in all.
    pub total_cap: usize,
    /// Most datagrams in progress; a new one past it pushes out the oldest
    /// (illumos `ill_frag_prune`), so trains that never complete cannot
    /// hold every slot.
    pub max_datagrams: usize,
    /// Most datagrams in progress from one source address: one host
    /// cannot take every slot either.
    pub per_source_datagrams: usize,
    /// Most holes one datagram may have (each fragment adds at most one).
    pub max_holes: usize,
}

impl Default for ReassConfig {
    fn default() -> Self {
        ReassConfig {
            timeout_ms: IP_REASS_TIMEOUT_MS,
            per_source_cap: 256 * 1024,
            total_cap: 4 * 1024 * 1024,
            max_datagrams: 64,
            per_source_datagrams: 16,
            max_holes: 256,
        }
    }
}

/// What identifies the fragments of one datagram (RFC 791).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReassKey {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol.
    pub protocol: u8,
    /// Identification.
    pub ident: u16,
}

impl ReassKey {
    /// The key of the datagram `h` is a fragment of.
    pub fn of(h: &Ipv4Header) -> Self {
        ReassKey { src: h.src, dst: h.dst, protocol: h.protocol, ident: h.ident }
    }
}

/// Why a fragment was not taken (counted as said).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReassDrop {
    /// Not a fragment at all (MF clear, offset 0); nothing counted.
    NotAFragment,
    /// First fragment with fewer than 8 bytes of payload (`ipReasmFails`).
    TinyFirst,
    /// A non-last fragment whose payload is empty or not a multiple of 8
    /// (`ipReasmFails`).
    BadLength,
    /// Offset plus length (plus header) past 65535; the datagram is
    /// dropped (`ipReasmFails`).
    TooLong,
    /// Overlap with different bytes, or a last fragment that disagrees
    /// with the known end; the datagram is dropped (`ipReasmFails`).
    Conflict,
    /// An exact duplicate of bytes held (`ipReasmDuplicates`).
    Duplicate,
    /// A byte cap would be exceeded; fragment and datagram dropped
    /// (`ipReasmFails`).
    OverCap,
    /// Too many datagrams in progress from this fragment's source
    /// (`ipReasmFails`).
    TooManyDatagrams,
    /// The datagram has too many holes; dropped (`ipReasmFails`).
    TooManyHoles,
}

/// What happened to a fragment that was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReassOutcome {
    /// Held; the datagram is not complete yet.
    Held,
    /// The datagram is complete: header of the first fragment with MF and
    /// offset cleared and the length fixed, then the payload.
    Complete(Vec<u8>),
}

/// A datagram given up on by [`Reassembler::expire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReassExpired {
    /// Its key.
    pub key: ReassKey,
    /// If its first fragment had arrived: that fragment's header and first
    /// 8 payload bytes, to quote in an ICMP time exceeded (code 1).
    pub quote: Option<Vec<u8>>,
}

struct Train {
    key: ReassKey,
    created_ms: u64,
    first: Option<Ipv4Header>,
    /// Payload length, once the last fragment (MF clear) arrived.
    total: Option<usize>,
    /// Byte ranges not yet received, sorted and disjoint (RFC 815).
    holes: Vec<Range<usize>>,
    /// Payload bytes, as long as the furthest end received.
    data: Vec<u8>,
}

/// The datagrams being reassembled, bounded by a [`ReassConfig`].
pub struct Reassembler {
    cfg: ReassConfig,
    trains: Vec<Train>,
    /// Datagrams that timed out inside [`Reassembler::input`], kept for
    /// the next [`Reassembler::expire`] (at most `max_datagrams`; the
    /// oldest goes first, its failure already counted).
    expired: VecDeque<ReassExpired>,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(ReassConfig::default())
    }
}

impl Reassembler {
    /// An empty reassembler with these limits.
    pub fn new(cfg: ReassConfig) -> Self {
        Reassembler { cfg, trains: Vec::new(), expired: VecDeque::new() }
    }

    /// Its limits.
    pub fn config(&self) -> &ReassConfig {
        &self.cfg
    }

    /// Payload bytes held over all datagrams in progress.
    pub fn bytes_held(&self) -> usize {
        self.trains.iter().map(|t| t.data.len()).sum()
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.trains.len()
    }

    fn source_bytes(&self, src: Ipv4Addr) -> usize {
        self.trains.iter().filter(|t| t.key.src == src).map(|t| t.data.len()).sum()
    }

    fn drop_train(&mut self, key: &ReassKey) {
        if let Some(i) = self.trains.iter().position(|t| t.key == *key) {
            self.trains.swap_remove(i);
        }
    }

    fn fail(&mut self, key: &ReassKey, why: ReassDrop, mib: &IpMib) -> Result<ReassOutcome, ReassDrop> {
        self.drop_train(key);
        bump(&mib.ip_reasm_fails);
        Err(why)
    }

    /// Drops every datagram started `timeout_ms` or more before `now_ms`
    /// (one `ipReasmFails` each) and returns them, with those that timed
    /// out during [`Reassembler::input`] since the last call (so the
    /// caller can send a time exceeded for each that has a quote).
    pub fn expire(&mut self, now_ms: u64, mib: &IpMib) -> Vec<ReassExpired> {
        self.expire_stale(now_ms, mib);
        self.expired.drain(..).collect()
    }

    fn expire_stale(&mut self, now_ms: u64, mib: &IpMib) {
        mib.ip_reasm_timeout.store(self.cfg.timeout_ms / 1000, Ordering::Relaxed);
        let timeout = self.cfg.timeout_ms;
        let mut i = 0;
        while i < self.trains.len() {
            if now_ms.saturating_sub(self.trains[i].created_ms) >= timeout {
                let t = self.trains.swap_remove(i);
                bump(&mib.ip_reasm_fails);
                let quote = t.first.map(|h| {
                    let mut q = vec![0u8; h.header_len()];
                    // A header that parsed emits again (same options, sizes).
                    let _ = h.emit(&mut q);
                    let n = ICMP_QUOTE_EXTRA.min(t.data.len());
                    q.extend_from_slice(&t.data[..n]);
                    q
                });
                if self.expired.len() >= self.cfg.max_datagrams.max(1) {
                    self.expired.pop_front();
                }
                self.expired.push_back(ReassExpired { key: t.key, quote });
            } else {
                i += 1;
            }
        }
    }

    /// Takes one fragment (`header` as parsed, `payload` its data) at time
    /// `now_ms`. Stale datagrams are expired first.
    pub fn input(
        &mut self,
        header: &Ipv4Header,
        payload: &[u8],
        now_ms: u64,
        mib: &IpMib,
    ) -> Result<ReassOutcome, ReassDrop> {
        if !header.is_fragment() {
            return Err(ReassDrop::NotAFragment);
        }
        bump(&mib.ip_reasm_reqds);
        self.expire_stale(now_ms, mib);
        let key = ReassKey::of(header);
        let off = usize::from(header.frag_offset);
        let len = payload.len();
        let end = off + len;
        let mf = header.more_frags;
        if off == 0 && len < 8 {
            bump(&mib.ip_reasm_fails);
            return Err(ReassDrop::TinyFirst);
        }
        if mf && (len == 0 || !len.is_multiple_of(8)) {
            bump(&mib.ip_reasm_fails);
            return Err(ReassDrop::BadLength);
        }
        if end + header.header_len() > IPV4_MAX_DATAGRAM_LEN {
            return self.fail(&key, ReassDrop::TooLong, mib);
        }

        let idx = match self.trains.iter().position(|t| t.key == key) {
            Some(i) => i,
            None => {
                if self.trains.iter().filter(|t| t.key.src == key.src).count() >= self.cfg.per_source_datagrams {
                    bump(&mib.ip_reasm_fails);
                    return Err(ReassDrop::TooManyDatagrams);
                }
                if self.trains.len() >= self.cfg.max_datagrams {
                    // Full: the oldest train gives way (one more failure).
                    if let Some(oldest) = self.trains.iter().enumerate().min_by_key(|(_, t)| t.created_ms).map(|(i, _)| i) {
                        self.trains.swap_remove(oldest);
                        bump(&mib.ip_reasm_fails);
                    }
                }
                self.trains.push(Train {
                    key,
                    created_ms: now_ms,
                    first: None,
                    total: None,
                    holes: core::iter::once(0..OFFSET_SPACE).collect(),
                    data: Vec::new(),
                });
                self.trains.len() - 1
            }
        };

        // The end of the datagram: fixed by the last fragment, never moved.
        let mut total_changed = false;
        {
            let t = &self.trains[idx];
            match (mf, t.total) {
                (false, Some(tot)) if tot != end => return self.fail(&key, ReassDrop::Conflict, mib),
                (false, None) if t.data.len() > end => return self.fail(&key, ReassDrop::Conflict, mib),
                (false, None) => total_changed = true,
                (true, Some(tot)) if end > tot => return self.fail(&key, ReassDrop::Conflict, mib),
                _ => {}
            }
        }

        // Split [off, end) into bytes already held and bytes new.
        let (held_any, new_any, conflict) = {
            let t = &self.trains[idx];
            let mut pos = off;
            let mut held_any = false;
            let mut new_any = false;
            let mut conflict = false;
            let mut check_held = |a: usize, b: usize| {
                if a < b {
                    held_any = true;
                    let same = match (t.data.get(a..b), payload.get(a - off..b - off)) {
                        (Some(x), Some(y)) => x == y,
                        _ => false,
                    };
                    if !same {
                        conflict = true;
                    }
                }
            };
            for h in t.holes.iter().filter(|h| h.start < end && h.end > off) {
                let hs = h.start.max(off);
                let he = h.end.min(end);
                check_held(pos, hs);
                new_any |= hs < he;
                pos = he;
            }
            check_held(pos, end);
            (held_any, new_any, conflict)
        };
        if conflict {
            return self.fail(&key, ReassDrop::Conflict, mib);
        }
        if !new_any && held_any {
            bump(&mib.ip_reasm_duplicates);
            if !total_changed {
                return Err(ReassDrop::Duplicate);
            }
        } else if held_any {
            bump(&mib.ip_reasm_part_dups);
        }

        // Memory caps, counted in payload bytes held.
        let growth = end.saturating_sub(self.trains[idx].data.len());
        if growth > 0 {
            let src_bytes = self.source_bytes(key.src);
            let total_bytes = self.bytes_held();
            if src_bytes + growth > self.cfg.per_source_cap
                || total_bytes + growth > self.cfg.total_cap
                || self.trains[idx].data.try_reserve_exact(growth).is_err()
            {
                return self.fail(&key, ReassDrop::OverCap, mib);
            }
        }

        let t = &mut self.trains[idx];
        if t.data.len() < end {
            t.data.resize(end, 0);
        }
        t.data[off..end].copy_from_slice(payload);
        let mut holes = Vec::with_capacity(t.holes.len() + 1);
        for h in t.holes.iter() {
            if h.end <= off || h.start >= end {
                holes.push(h.clone());
            } else {
                if h.start < off {
                    holes.push(h.start..off);
                }
                if end < h.end {
                    holes.push(end..h.end);
                }
            }
        }
        if total_changed {
            t.total = Some(end);
            holes.retain(|h| h.start < end);
            for h in holes.iter_mut() {
                h.end = h.end.min(end);
            }
        }
        t.holes = holes;
        if off == 0 {
            t.first = Some(*header);
        }
        if t.holes.len() > self.cfg.max_holes {
            return self.fail(&key, ReassDrop::TooManyHoles, mib);
        }
        let (Some(total), Some(first), true) = (t.total, t.first, t.holes.is_empty()) else {
            return Ok(ReassOutcome::Held);
        };

        let mut h = first;
        h.more_frags = false;
        h.frag_offset = 0;
        if h.header_len() + total > IPV4_MAX_DATAGRAM_LEN {
            return self.fail(&key, ReassDrop::TooLong, mib);
        }
        h.payload_len = total as u16;
        let hlen = h.header_len();
        let mut out = vec![0u8; hlen];
        if h.emit(&mut out).is_err() {
            return self.fail(&key, ReassDrop::TooLong, mib);
        }
        let t = match self.trains.iter().position(|t| t.key == key) {
            Some(i) => self.trains.swap_remove(i),
            None => return Ok(ReassOutcome::Held),
        };
        out.extend_from_slice(&t.data[..total.min(t.data.len())]);
        bump(&mib.ip_reasm_oks);
        Ok(ReassOutcome::Complete(out))
    }
}
