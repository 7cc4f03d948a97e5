//! The path MTU cache (RFC 1191; illumos keeps it in the DCE, the
//! destination cache entry, for `ip_pathmtu_interval`): the PMTU learnt
//! per destination from validated "fragmentation needed" errors, so that
//! new connections to that destination start with it.
//!
//! Bounded: at most [`PMTU_CACHE_MAX`] destinations; a new one when full
//! pushes out the oldest learnt (counted in [`PmtuCache::evictions`]). An
//! entry expires [`PMTU_INTERVAL_MS`] after it was learnt, after which the
//! link MTU is tried again (RFC 1191 section 6.3). Also the MTU arithmetic:
//! the floor (illumos `_pmtu_min`, 576) and RFC 1191 section 7's plateau
//! table for routers that send no next-hop MTU. No clock of its own (the
//! caller passes `now_ms`), no panics.

use alloc::vec::Vec;
use core::net::Ipv4Addr;

/// Destinations kept.
pub const PMTU_CACHE_MAX: usize = 256;
/// How long a learnt PMTU holds (illumos `ip_pathmtu_interval`, 10 min).
pub const PMTU_INTERVAL_MS: u64 = 600_000;
/// The smallest PMTU taken (illumos `_pmtu_min` default 576, range
/// 68–65535): a smaller next-hop MTU is raised to it.
pub const PMTU_MIN: u16 = 576;
/// RFC 1191 section 7's plateaus (below 576 left out: under the floor).
const PLATEAUS: [u16; 9] = [65_535, 32_000, 17_914, 8_166, 4_352, 2_002, 1_492, 1_006, 576];

/// The PMTU to use for a "fragmentation needed" whose next-hop MTU is
/// `next_hop_mtu` about a datagram of `quoted_len` bytes (its total
/// length): the MTU itself, or for 0 (an old router, RFC 1191 section 5)
/// or anything under 68 the largest plateau below `quoted_len`; never
/// under [`PMTU_MIN`].
pub fn pmtu_for(next_hop_mtu: u16, quoted_len: u16) -> u16 {
    let mtu = if next_hop_mtu < 68 {
        PLATEAUS.iter().copied().find(|&p| p < quoted_len).unwrap_or(PMTU_MIN)
    } else {
        next_hop_mtu
    };
    mtu.max(PMTU_MIN)
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    dst: Ipv4Addr,
    mtu: u16,
    learnt_ms: u64,
}

/// The cache (see the module doc).
#[derive(Debug, Default)]
pub struct PmtuCache {
    entries: Vec<Entry>,
    evictions: u64,
}

impl PmtuCache {
    /// An empty cache.
    pub const fn new() -> Self {
        PmtuCache { entries: Vec::new(), evictions: 0 }
    }

    /// The PMTU learnt for `dst`, if one holds at `now_ms`.
    pub fn get(&self, dst: Ipv4Addr, now_ms: u64) -> Option<u16> {
        self.entries
            .iter()
            .find(|e| e.dst == dst && now_ms.saturating_sub(e.learnt_ms) < PMTU_INTERVAL_MS)
            .map(|e| e.mtu)
    }

    /// Records `mtu` for `dst` at `now_ms` (only ever lowering a live
    /// entry); an expired entry is replaced, a new destination takes the
    /// oldest slot when full. True if an entry was pushed out for it.
    pub fn learn(&mut self, dst: Ipv4Addr, mtu: u16, now_ms: u64) -> bool {
        if let Some(e) = self.entries.iter_mut().find(|e| e.dst == dst) {
            let live = now_ms.saturating_sub(e.learnt_ms) < PMTU_INTERVAL_MS;
            if !live || mtu < e.mtu {
                *e = Entry { dst, mtu, learnt_ms: now_ms };
            }
            return false;
        }
        self.entries.retain(|e| now_ms.saturating_sub(e.learnt_ms) < PMTU_INTERVAL_MS);
        let mut evicted = false;
        if self.entries.len() >= PMTU_CACHE_MAX
            && let Some(i) = self.entries.iter().enumerate().min_by_key(|(_, e)| e.learnt_ms).map(|(i, _)| i)
        {
            self.entries.swap_remove(i);
            self.evictions += 1;
            evicted = true;
        }
        self.entries.push(Entry { dst, mtu, learnt_ms: now_ms });
        evicted
    }

    /// Destinations held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries pushed out to make room.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}
