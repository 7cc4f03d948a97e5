//! Hardware statistics. The 82576's counters clear when read, so each
//! read is a delta added to 64-bit totals here; reading them often enough
//! keeps the 32-bit ones from wrapping (GPRC wraps after 2^32 frames:
//! about 48 minutes at 1 Gbit/s line rate), which [`super::Igb::update_stats`]
//! does whenever anyone asks for counters.
//!
//! Mapping onto the MAC layer: MPC (missed: no room in the packet buffer
//! or no descriptor) is `DeviceCounters::rx_missed`; RQDPC (frames a queue
//! dropped for lack of descriptors, with SRRCTL.DROP_EN) go into that Rx
//! ring's `drops`. The rest are kept for `dlstat`-style detail.
//!
//! QEMU's `igb` counts GPRC/GORC/GPTC/GOTC/BPRC/MPRC but never increments
//! MPC or RQDPC (it drops a frame for a full ring silently and raises
//! ICR.RXO), so there the overrun interrupt count is the only trace of
//! such drops.

use crate::hal::Mmio;

use super::regs::*;

/// Totals of the device's counters since probe.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HwStats {
    pub crc_errors: u64,
    /// MPC.
    pub rx_missed: u64,
    /// RNBC: frames received while no descriptor was free (not
    /// necessarily dropped).
    pub rx_no_buffer: u64,
    pub rx_good_packets: u64,
    pub rx_good_octets: u64,
    pub rx_broadcast: u64,
    pub rx_multicast: u64,
    pub rx_undersize: u64,
    pub rx_oversize: u64,
    pub rx_length_errors: u64,
    pub tx_good_packets: u64,
    pub tx_good_octets: u64,
    /// RQDPC per hardware queue.
    pub rx_queue_drops: [u64; NUM_QUEUES],
}

impl HwStats {
    /// Reads every counter once (clearing it) and adds it in. Returns the
    /// per-queue drop deltas of queues `0..queues`. A device reading
    /// all-ones (gone) is skipped.
    pub fn accumulate(&mut self, regs: &dyn Mmio, queues: usize) -> [u64; NUM_QUEUES] {
        let mut dq = [0u64; NUM_QUEUES];
        if regs.read32(STATUS) == u32::MAX {
            return dq;
        }
        let r = |off: usize| regs.read32(off) as u64;
        // 64-bit pairs: low first, the high read clears both.
        let r64 = |lo: usize, hi: usize| {
            let l = regs.read32(lo) as u64;
            l | ((regs.read32(hi) as u64) << 32)
        };
        self.crc_errors += r(CRCERRS);
        self.rx_missed += r(MPC);
        self.rx_no_buffer += r(RNBC);
        self.rx_good_packets += r(GPRC);
        self.rx_good_octets += r64(GORCL, GORCH);
        self.rx_broadcast += r(BPRC);
        self.rx_multicast += r(MPRC);
        self.rx_undersize += r(RUC);
        self.rx_oversize += r(ROC);
        self.rx_length_errors += r(RLEC);
        self.tx_good_packets += r(GPTC);
        self.tx_good_octets += r64(GOTCL, GOTCH);
        for (q, d) in dq.iter_mut().enumerate().take(queues.min(NUM_QUEUES)) {
            *d = r(rqdpc(q));
            self.rx_queue_drops[q] += *d;
        }
        dq
    }
}
