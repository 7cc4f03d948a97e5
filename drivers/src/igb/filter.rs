//! Receive filtering: the 24 unicast address filters (RAL/RAH) with their
//! pool select bits, the multicast hash table (MTA), promiscuous mode, and
//! the VMDq pool set-up that turns filters into ring groups.
//!
//! # Ring groups, RSS and VMDq
//!
//! The 82576 classifies a frame in two steps: the destination MAC picks a
//! *pool* (RAH.POOLSEL; unmatched unicast goes to the default pool), then
//! RSS may spread the pool's traffic over its queues. Pool `n` owns queues
//! `n` and `n + 8`, so with VMDq on, RSS inside a pool (MRQC = 5,
//! VMOLR.RSSE) reaches two queues at most; without VMDq (MRQC = 2), RSS
//! spreads over all 16 queues but pool bits are ignored. QEMU's `igb` is
//! stricter still: it computes RSS only when `MRQC[1:0] = 10b`, i.e. never
//! in a VMDq mode, so there RSS and MAC steering exclude each other.
//!
//! The driver therefore runs in one of two modes, fixed at probe
//! ([`RxMode`], from `Tunables::vmdq_pools`):
//!
//! * [`RxMode::Rss`] (the default): one Rx group, group 0, holding every
//!   Rx ring; RSS spreads flows over them. Its unicast filters (the
//!   factory address in entry 0 plus up to 23 more) all accept into that
//!   group.
//! * [`RxMode::Vmdq`] with `P` pools (2..=8): Rx group `g` is pool `g`,
//!   with one ring, hardware queue `g` (MRQC = 3). Group 0 is the default
//!   pool: it holds the factory address and takes broadcast, multicast
//!   (MTA matches) and, in promiscuous mode, every unmatched frame. An
//!   address added to group `g > 0` gets a filter entry whose POOLSEL is
//!   bit `g` alone, so frames for it land on ring `g` and nowhere else,
//!   and ring `g` receives nothing but them (broadcast and multicast are
//!   not replicated into it: the MAC layer fans those out in software, as
//!   Crossbow does for the default group). An address may sit in several
//!   groups: its entry then carries several pool bits and the device
//!   replicates.
//!
//! The 24 entries are shared by all groups (first come, first served);
//! each group reports as many slots as could be free for it.

use alloc::vec::Vec;

use arbalest_mac::{MacAddr, MacError};

use crate::hal::Mmio;

use super::hw::rar_values;
use super::regs::*;

/// How received frames are spread over the Rx rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxMode {
    /// One group with every ring; RSS chooses the ring.
    Rss,
    /// `pools` VMDq pools; group / pool / ring / hardware queue `g` are
    /// one and the same.
    Vmdq { pools: usize },
}

impl RxMode {
    /// Number of Rx groups.
    pub fn groups(&self) -> usize {
        match *self {
            RxMode::Rss => 1,
            RxMode::Vmdq { pools } => pools,
        }
    }

    /// Pool select bit of group `g` (None if no such group).
    pub fn pool_bit(&self, g: usize) -> Option<u8> {
        (g < self.groups()).then(|| 1u8 << g)
    }
}

/// One programmed unicast filter: an address and the pools it feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RarEntry {
    pub addr: MacAddr,
    pub pools: u8,
}

/// The receive filter state (what RAL/RAH, MTA and RCTL should hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxFilter {
    pub rar: [Option<RarEntry>; RAR_ENTRIES],
    pub multicast: Vec<MacAddr>,
    pub promisc: bool,
}

impl RxFilter {
    /// The factory address in entry 0, feeding group 0.
    pub fn new(factory: MacAddr) -> RxFilter {
        let mut rar = [None; RAR_ENTRIES];
        rar[0] = Some(RarEntry { addr: factory, pools: 1 });
        RxFilter { rar, multicast: Vec::new(), promisc: false }
    }

    /// Steers `addr` to group `g` as well; returns the entry to reprogram
    /// (None: nothing changed).
    pub fn add(&mut self, mode: RxMode, g: usize, addr: MacAddr) -> Result<Option<usize>, MacError> {
        let bit = mode.pool_bit(g).ok_or(MacError::Invalid)?;
        if addr[0] & 1 != 0 {
            return Err(MacError::Invalid);
        }
        if let Some(i) = self.find(addr) {
            let e = self.rar[i].as_mut().ok_or(MacError::Invalid)?;
            if e.pools & bit != 0 {
                return Ok(None);
            }
            e.pools |= bit;
            return Ok(Some(i));
        }
        let i = self.rar.iter().position(|e| e.is_none()).ok_or(MacError::NoSpace)?;
        self.rar[i] = Some(RarEntry { addr, pools: bit });
        Ok(Some(i))
    }

    /// Stops steering `addr` to group `g`; returns the entry to reprogram
    /// (None: nothing changed). The factory address always stays in
    /// group 0.
    pub fn remove(&mut self, mode: RxMode, g: usize, addr: MacAddr) -> Result<Option<usize>, MacError> {
        let bit = mode.pool_bit(g).ok_or(MacError::Invalid)?;
        let i = self.find(addr).ok_or(MacError::Invalid)?;
        if i == 0 && g == 0 {
            return Ok(None);
        }
        let e = self.rar[i].as_mut().ok_or(MacError::Invalid)?;
        if e.pools & bit == 0 {
            return Err(MacError::Invalid);
        }
        e.pools &= !bit;
        if e.pools == 0 {
            self.rar[i] = None;
        }
        Ok(Some(i))
    }

    fn find(&self, addr: MacAddr) -> Option<usize> {
        self.rar.iter().position(|e| e.is_some_and(|e| e.addr == addr))
    }

    /// The 4096-bit multicast hash set (all ones when promiscuous: QEMU's
    /// VMDq path ignores RCTL.MPE and only looks at the table).
    pub fn mta_table(&self) -> [u32; MTA_REGS] {
        if self.promisc {
            return [u32::MAX; MTA_REGS];
        }
        let mut t = [0u32; MTA_REGS];
        for a in &self.multicast {
            let h = mta_hash(a) as usize;
            t[h >> 5] |= 1 << (h & 31);
        }
        t
    }

    /// RCTL filter bits: broadcast always, promiscuous on request.
    pub fn rctl_bits(&self) -> u32 {
        RCTL_BAM | if self.promisc { RCTL_UPE | RCTL_MPE } else { 0 }
    }
}

/// The MTA bit of a multicast address with RCTL.MO = 0: destination bits
/// 47:36 (the top 12 bits of the last two bytes).
pub fn mta_hash(addr: &MacAddr) -> u16 {
    (((addr[5] as u16) << 4) | ((addr[4] as u16) >> 4)) & 0xfff
}

/// Writes filter entry `i` (cleared: AV off, address zero).
pub fn program_rar(regs: &dyn Mmio, i: usize, e: Option<RarEntry>) {
    match e {
        Some(e) => {
            let (lo, hi) = rar_values(e.addr, e.pools);
            // RAH last: the entry turns valid with the whole address in.
            regs.write32(rah(i), 0);
            regs.write32(ral(i), lo);
            regs.write32(rah(i), hi);
        }
        None => {
            regs.write32(rah(i), 0);
            regs.write32(ral(i), 0);
        }
    }
}

/// Writes the multicast table.
pub fn program_mta(regs: &dyn Mmio, f: &RxFilter) {
    for (n, v) in f.mta_table().iter().enumerate() {
        regs.write32(mta(n), *v);
    }
}

/// Per-pool receive options: untagged frames accepted, CRC stripped; the
/// default pool (0) also takes broadcast and multicast, and everything
/// unmatched when promiscuous.
pub fn vmolr_value(pool: usize, promisc: bool) -> u32 {
    let mut v = VMOLR_AUPE | VMOLR_STRCRC | (1522 & VMOLR_RLPML_MASK);
    if pool == 0 {
        v |= VMOLR_BAM | VMOLR_ROMPE;
        if promisc {
            v |= VMOLR_ROPE | VMOLR_MPME;
        }
    }
    v
}

/// Programs the pool machinery for `mode` (VMDq on or off).
pub fn program_pools(regs: &dyn Mmio, mode: RxMode, promisc: bool) {
    let RxMode::Vmdq { pools } = mode else { return };
    let mask = ((1u32 << pools) - 1) & 0xff;
    // Default pool 0, no replication: broadcast / multicast go to the
    // default pool only.
    regs.write32(VT_CTL, 0 << VT_CTL_DEF_PL_SHIFT);
    for p in 0..NUM_POOLS {
        regs.write32(vmolr(p), if p < pools { vmolr_value(p, promisc) } else { VMOLR_STRCRC });
    }
    regs.write32(VFRE, mask);
    regs.write32(VFTE, mask);
    regs.write32(MRQC, MRQC_ENABLE_VMDQ);
}

/// Writes what promiscuous mode changes besides RCTL: the multicast
/// table and the default pool's options.
pub fn program_promisc(regs: &dyn Mmio, mode: RxMode, f: &RxFilter) {
    program_mta(regs, f);
    if matches!(mode, RxMode::Vmdq { .. }) {
        regs.write32(vmolr(0), vmolr_value(0, f.promisc));
    }
}

/// Writes the whole filter: every entry, the multicast table and the
/// default pool's promiscuous bits.
pub fn program_all(regs: &dyn Mmio, mode: RxMode, f: &RxFilter) {
    for (i, e) in f.rar.iter().enumerate() {
        program_rar(regs, i, *e);
    }
    program_promisc(regs, mode, f);
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: MacAddr = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    #[test]
    fn entries_pools_and_sharing() {
        let vmdq = RxMode::Vmdq { pools: 4 };
        let mut f = RxFilter::new(F);
        let a = [2, 0, 0, 0, 0, 1];
        assert_eq!(f.add(vmdq, 0, F), Ok(None), "factory already in group 0");
        assert_eq!(f.add(vmdq, 2, a), Ok(Some(1)));
        assert_eq!(f.add(vmdq, 2, a), Ok(None));
        assert_eq!(f.add(vmdq, 3, a), Ok(Some(1)));
        assert_eq!(f.rar[1], Some(RarEntry { addr: a, pools: 0b1100 }));
        assert_eq!(f.add(vmdq, 4, a), Err(MacError::Invalid));
        assert_eq!(f.add(vmdq, 1, [1, 0, 0x5e, 0, 0, 1]), Err(MacError::Invalid), "multicast");
        assert_eq!(f.remove(vmdq, 2, a), Ok(Some(1)));
        assert_eq!(f.remove(vmdq, 2, a), Err(MacError::Invalid));
        assert_eq!(f.remove(vmdq, 3, a), Ok(Some(1)));
        assert_eq!(f.rar[1], None);
        assert_eq!(f.remove(vmdq, 0, F), Ok(None), "factory stays");
        assert_eq!(f.add(vmdq, 1, F), Ok(Some(0)));
        assert_eq!(f.remove(vmdq, 1, F), Ok(Some(0)));
        assert_eq!(f.rar[0], Some(RarEntry { addr: F, pools: 1 }));
        // Full table.
        for i in 0..23u8 {
            assert!(f.add(RxMode::Rss, 0, [2, 0, 0, 0, 1, i]).is_ok());
        }
        assert_eq!(f.add(RxMode::Rss, 0, [2, 0, 0, 0, 2, 0]), Err(MacError::NoSpace));
        assert_eq!(f.add(RxMode::Rss, 1, [2, 0, 0, 0, 2, 0]), Err(MacError::Invalid));
    }

    #[test]
    fn multicast_hash() {
        // 01:00:5e:00:00:01 → bits 47:36 = 0x010.
        assert_eq!(mta_hash(&[1, 0, 0x5e, 0, 0, 1]), 0x010);
        assert_eq!(mta_hash(&[0x33, 0x33, 0, 0, 0xab, 0xcd]), 0xcda);
        let mut f = RxFilter::new(F);
        f.multicast.push([1, 0, 0x5e, 0, 0, 1]);
        let t = f.mta_table();
        assert_eq!(t[0], 1 << 16);
        assert_eq!(t.iter().filter(|v| **v != 0).count(), 1);
        f.promisc = true;
        assert!(f.mta_table().iter().all(|v| *v == u32::MAX));
        assert_eq!(f.rctl_bits(), RCTL_BAM | RCTL_UPE | RCTL_MPE);
    }

    #[test]
    fn rar_encoding() {
        assert_eq!(rar_values(F, 0b10), (0x1200_5452, 0x5634 | (2 << 18) | RAH_AV));
    }
}
