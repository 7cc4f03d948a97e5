//! Register offsets and bits of the Intel 82576 (datasheet names; Linux
//! `igb`/`e1000_regs.h` spelling). Offsets are bytes into BAR 0 (128 KiB).
//!
//! Queue registers use the 82576 layout for all 16 queues
//! (`0xC000 + 0x40 * n` for Rx, `0xE000 + 0x40 * n` for Tx); queues 0..3
//! also answer at the 82575-compatible aliases, which this driver never
//! uses.

/// Size of the register BAR.
pub const BAR_SIZE: usize = 0x2_0000;

/// Queues the 82576 has (Rx and Tx each).
pub const NUM_QUEUES: usize = 16;
/// MSI-X vectors of the physical function.
pub const MAX_VECTORS: usize = 10;
/// VMDq pools (pool `n` owns queues `n` and `n + 8`).
pub const NUM_POOLS: usize = 8;
/// Receive address (unicast filter) entries: RAL/RAH 0..15 and 16..23.
pub const RAR_ENTRIES: usize = 24;
/// Multicast table array: 128 registers of 32 bits (a 4096-bit hash set).
pub const MTA_REGS: usize = 128;
/// Redirection table: 128 one-byte entries in 32 registers.
pub const RETA_ENTRIES: usize = 128;
/// RSS key registers (40 bytes).
pub const RSSRK_REGS: usize = 10;

// ---- general ----
pub const CTRL: usize = 0x0000;
pub const STATUS: usize = 0x0008;
pub const EECD: usize = 0x0010;
pub const EERD: usize = 0x0014;
pub const CTRL_EXT: usize = 0x0018;
pub const MDIC: usize = 0x0020;

pub const CTRL_FD: u32 = 1 << 0;
pub const CTRL_GIO_MASTER_DISABLE: u32 = 1 << 2;
pub const CTRL_LRST: u32 = 1 << 3;
pub const CTRL_ASDE: u32 = 1 << 5;
pub const CTRL_SLU: u32 = 1 << 6;
pub const CTRL_FRCSPD: u32 = 1 << 11;
pub const CTRL_FRCDPX: u32 = 1 << 12;
pub const CTRL_RST: u32 = 1 << 26;
pub const CTRL_PHY_RST: u32 = 1 << 31;

pub const STATUS_FD: u32 = 1 << 0;
pub const STATUS_LU: u32 = 1 << 1;
pub const STATUS_SPEED_SHIFT: u32 = 6;
pub const STATUS_SPEED_MASK: u32 = 3 << STATUS_SPEED_SHIFT;
pub const STATUS_GIO_MASTER_ENABLE: u32 = 1 << 19;

pub const EECD_AUTO_RD: u32 = 1 << 9;

pub const EERD_START: u32 = 1 << 0;
pub const EERD_DONE: u32 = 1 << 1;
pub const EERD_ADDR_SHIFT: u32 = 2;
pub const EERD_DATA_SHIFT: u32 = 16;

pub const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;

pub const MDIC_DATA_MASK: u32 = 0xffff;
pub const MDIC_REG_SHIFT: u32 = 16;
pub const MDIC_PHY_SHIFT: u32 = 21;
pub const MDIC_OP_WRITE: u32 = 1 << 26;
pub const MDIC_OP_READ: u32 = 2 << 26;
pub const MDIC_READY: u32 = 1 << 28;
pub const MDIC_ERROR: u32 = 1 << 30;

/// The internal PHY's MDIO address.
pub const PHY_ADDR: u32 = 1;
/// PHY control register (IEEE 802.3 clause 22 `BMCR`) and its bits.
pub const PHY_BMCR: u32 = 0;
pub const BMCR_SPEED1000: u16 = 1 << 6;
pub const BMCR_FD: u16 = 1 << 8;
pub const BMCR_ANRESTART: u16 = 1 << 9;
pub const BMCR_AUTOEN: u16 = 1 << 12;

// ---- legacy interrupt causes (the "other" causes in MSI-X mode) ----
pub const ICR: usize = 0x00c0;
pub const ICS: usize = 0x00c8;
pub const IMS: usize = 0x00d0;
pub const IMC: usize = 0x00d8;

pub const ICR_TXDW: u32 = 1 << 0;
pub const ICR_LSC: u32 = 1 << 2;
pub const ICR_RXDMT0: u32 = 1 << 4;
pub const ICR_RXO: u32 = 1 << 6;
pub const ICR_RXDW: u32 = 1 << 7;
pub const ICR_DOUTSYNC: u32 = 1 << 28;

// ---- extended (MSI-X) interrupts ----
pub const GPIE: usize = 0x1514;
pub const EICS: usize = 0x1520;
pub const EIMS: usize = 0x1524;
pub const EIMC: usize = 0x1528;
pub const EIAC: usize = 0x152c;
pub const EIAM: usize = 0x1530;
pub const EICR: usize = 0x1580;
pub const IVAR_MISC: usize = 0x1740;

pub const fn eitr(v: usize) -> usize {
    0x1680 + 4 * v
}
pub const fn ivar(n: usize) -> usize {
    0x1700 + 4 * n
}

pub const GPIE_NSICR: u32 = 1 << 0;
pub const GPIE_MSIX_MODE: u32 = 1 << 4;
pub const GPIE_EIAME: u32 = 1 << 30;
pub const GPIE_PBA: u32 = 1 << 31;

/// An IVAR byte: vector number in bits 4:0, bit 7 valid.
pub const IVAR_VALID: u8 = 0x80;

/// EITR interval (bits 14:2, in microseconds), and "don't reset the
/// moderation counter on this write".
pub const EITR_INTERVAL_SHIFT: u32 = 2;
pub const EITR_INTERVAL_MASK: u32 = 0x7ffc;
pub const EITR_CNT_IGNR: u32 = 1 << 31;

// ---- receive ----
pub const RCTL: usize = 0x0100;
pub const RXCSUM: usize = 0x5000;
pub const RLPML: usize = 0x5004;
pub const MTA: usize = 0x5200;
pub const MRQC: usize = 0x5818;
pub const VT_CTL: usize = 0x581c;
pub const RETA: usize = 0x5c00;
pub const RSSRK: usize = 0x5c80;

pub const RCTL_EN: u32 = 1 << 1;
pub const RCTL_SBP: u32 = 1 << 2;
pub const RCTL_UPE: u32 = 1 << 3;
pub const RCTL_MPE: u32 = 1 << 4;
pub const RCTL_LPE: u32 = 1 << 5;
pub const RCTL_MO_SHIFT: u32 = 12;
pub const RCTL_BAM: u32 = 1 << 15;
pub const RCTL_VFE: u32 = 1 << 18;
pub const RCTL_SECRC: u32 = 1 << 26;

pub const RXCSUM_IPOFLD: u32 = 1 << 8;
pub const RXCSUM_TUOFLD: u32 = 1 << 9;
/// Packet checksum disable: the write-back's second dword carries the RSS
/// hash instead of the IP id / fragment checksum. QEMU computes RSS only
/// with it set.
pub const RXCSUM_PCSD: u32 = 1 << 13;

/// `MRQC[2:0]`: multiple receive queues mode.
pub const MRQC_ENABLE_MASK: u32 = 7;
/// RSS only (the 82576's "RSS, 16 queues" without VMDq).
pub const MRQC_ENABLE_RSS_MQ: u32 = 2;
/// VMDq only: pools by MAC filter, one queue per pool.
pub const MRQC_ENABLE_VMDQ: u32 = 3;
/// VMDq with RSS inside each pool (two queues per pool).
pub const MRQC_ENABLE_VMDQ_RSS: u32 = 5;
/// RSS hash fields.
pub const MRQC_RSS_FIELD_IPV4_TCP: u32 = 1 << 16;
pub const MRQC_RSS_FIELD_IPV4: u32 = 1 << 17;
pub const MRQC_RSS_FIELD_IPV6_TCP_EX: u32 = 1 << 18;
pub const MRQC_RSS_FIELD_IPV6_EX: u32 = 1 << 19;
pub const MRQC_RSS_FIELD_IPV6: u32 = 1 << 20;
pub const MRQC_RSS_FIELD_IPV6_TCP: u32 = 1 << 21;
pub const MRQC_RSS_FIELD_IPV4_UDP: u32 = 1 << 22;
pub const MRQC_RSS_FIELD_IPV6_UDP: u32 = 1 << 23;

pub const fn mta(n: usize) -> usize {
    MTA + 4 * n
}
pub const fn reta(n: usize) -> usize {
    RETA + 4 * n
}
pub const fn rssrk(n: usize) -> usize {
    RSSRK + 4 * n
}

/// Receive address low / high of filter entry `n` (0..24).
pub const fn ral(n: usize) -> usize {
    if n < 16 { 0x5400 + 8 * n } else { 0x54e0 + 8 * (n - 16) }
}
pub const fn rah(n: usize) -> usize {
    ral(n) + 4
}

pub const RAH_AV: u32 = 1 << 31;
pub const RAH_POOLSEL_SHIFT: u32 = 18;
pub const RAH_POOLSEL_MASK: u32 = 0xff << RAH_POOLSEL_SHIFT;

pub const VT_CTL_DEF_PL_SHIFT: u32 = 7;
pub const VT_CTL_DIS_DEF_POOL: u32 = 1 << 29;
pub const VT_CTL_VM_REPL_EN: u32 = 1 << 30;

pub const fn vmolr(pool: usize) -> usize {
    0x5ad0 + 4 * pool
}
pub const VMOLR_RLPML_MASK: u32 = 0x3fff;
pub const VMOLR_LPE: u32 = 1 << 16;
pub const VMOLR_RSSE: u32 = 1 << 17;
pub const VMOLR_AUPE: u32 = 1 << 24;
pub const VMOLR_ROMPE: u32 = 1 << 25;
pub const VMOLR_ROPE: u32 = 1 << 26;
pub const VMOLR_BAM: u32 = 1 << 27;
pub const VMOLR_MPME: u32 = 1 << 28;
pub const VMOLR_STRCRC: u32 = 1 << 31;

/// VF (pool) receive / transmit enables.
pub const VFRE: usize = 0x0c8c;
pub const VFTE: usize = 0x0c90;

pub const fn rdbal(q: usize) -> usize {
    0xc000 + 0x40 * q
}
pub const fn rdbah(q: usize) -> usize {
    rdbal(q) + 0x04
}
pub const fn rdlen(q: usize) -> usize {
    rdbal(q) + 0x08
}
pub const fn srrctl(q: usize) -> usize {
    rdbal(q) + 0x0c
}
pub const fn rdh(q: usize) -> usize {
    rdbal(q) + 0x10
}
pub const fn rdt(q: usize) -> usize {
    rdbal(q) + 0x18
}
pub const fn rxdctl(q: usize) -> usize {
    rdbal(q) + 0x28
}
/// Receive queue drop packet count (clear on read).
pub const fn rqdpc(q: usize) -> usize {
    rdbal(q) + 0x30
}

pub const SRRCTL_BSIZEPKT_SHIFT: u32 = 10;
pub const SRRCTL_BSIZEPKT_MASK: u32 = 0x7f;
pub const SRRCTL_BSIZEHDRSIZE_SHIFT: u32 = 2;
pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 1 << 25;
pub const SRRCTL_DROP_EN: u32 = 1 << 31;

/// RXDCTL / TXDCTL: prefetch, host and write-back thresholds, enable.
pub const DCTL_PTHRESH_SHIFT: u32 = 0;
pub const DCTL_HTHRESH_SHIFT: u32 = 8;
pub const DCTL_WTHRESH_SHIFT: u32 = 16;
pub const DCTL_ENABLE: u32 = 1 << 25;

// ---- transmit ----
pub const TCTL: usize = 0x0400;

pub const TCTL_EN: u32 = 1 << 1;
pub const TCTL_PSP: u32 = 1 << 3;
pub const TCTL_CT_SHIFT: u32 = 4;
pub const TCTL_COLD_SHIFT: u32 = 12;
pub const TCTL_RTLC: u32 = 1 << 24;

pub const fn tdbal(q: usize) -> usize {
    0xe000 + 0x40 * q
}
pub const fn tdbah(q: usize) -> usize {
    tdbal(q) + 0x04
}
pub const fn tdlen(q: usize) -> usize {
    tdbal(q) + 0x08
}
pub const fn tdh(q: usize) -> usize {
    tdbal(q) + 0x10
}
pub const fn tdt(q: usize) -> usize {
    tdbal(q) + 0x18
}
pub const fn txdctl(q: usize) -> usize {
    tdbal(q) + 0x28
}

// ---- statistics (clear on read on the 82576) ----
pub const CRCERRS: usize = 0x4000;
pub const MPC: usize = 0x4010;
pub const RLEC: usize = 0x4040;
pub const GPRC: usize = 0x4074;
pub const BPRC: usize = 0x4078;
pub const MPRC: usize = 0x407c;
pub const GPTC: usize = 0x4080;
/// Good octets received, low / high (reading the high half clears both).
pub const GORCL: usize = 0x4088;
pub const GORCH: usize = 0x408c;
pub const GOTCL: usize = 0x4090;
pub const GOTCH: usize = 0x4094;
pub const RNBC: usize = 0x40a0;
pub const RUC: usize = 0x40a4;
pub const ROC: usize = 0x40ac;
