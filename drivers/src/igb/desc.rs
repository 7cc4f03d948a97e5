//! Advanced receive and transmit descriptors (82576 datasheet 7.1.5 and
//! 7.2.2): 16 bytes each, little-endian, in rings of driver-owned DMA
//! memory.
//!
//! ```text
//! Rx read (driver → device):   pkt_addr u64 | hdr_addr u64 (0: clears DD)
//! Rx write-back (device):      pkt_info u16 | hdr_info u16 | rss_hash u32 |
//!                              status_error u32 | length u16 | vlan u16
//! Tx data (driver → device):   buffer_addr u64 | cmd_type_len u32 | olinfo_status u32
//! Tx context (driver → device):vlan_macip_lens u32 | seqnum_seed u32 |
//!                              type_tucmd_mlhl u32 | mss_l4len_idx u32
//! Tx write-back (device):      ... | status u32 (DD in bit 0, same place as olinfo)
//! ```

use crate::dma_mem::DmaMem;

/// Bytes per descriptor.
pub const DESC_LEN: usize = 16;

// ---- receive write-back ----
pub const RX_STAT_DD: u32 = 1 << 0;
pub const RX_STAT_EOP: u32 = 1 << 1;
pub const RX_STAT_VP: u32 = 1 << 3;
pub const RX_STAT_UDPCS: u32 = 1 << 4;
/// L4 (TCP or UDP) checksum was checked (`TCPCS`).
pub const RX_STAT_L4I: u32 = 1 << 5;
/// IPv4 header checksum was checked.
pub const RX_STAT_IPCS: u32 = 1 << 6;
pub const RX_ERR_CE: u32 = 1 << 24;
pub const RX_ERR_SE: u32 = 1 << 25;
pub const RX_ERR_SEQ: u32 = 1 << 26;
pub const RX_ERR_CXE: u32 = 1 << 28;
/// L4 checksum error.
pub const RX_ERR_L4E: u32 = 1 << 29;
/// IPv4 header checksum error.
pub const RX_ERR_IPE: u32 = 1 << 30;
/// Frame error (CRC, symbol, ...).
pub const RX_ERR_RXE: u32 = 1 << 31;
/// Errors that make the frame itself bad.
pub const RX_ERR_FRAME: u32 = RX_ERR_CE | RX_ERR_SE | RX_ERR_SEQ | RX_ERR_CXE | RX_ERR_RXE;
/// `pkt_info[3:0]`: which RSS hash was computed (0: none).
pub const RX_PKTINFO_RSSTYPE_MASK: u16 = 0xf;

/// A receive write-back, as read from the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxWriteBack {
    pub pkt_info: u16,
    pub rss_hash: u32,
    pub status_error: u32,
    pub length: u16,
    pub vlan: u16,
}

impl RxWriteBack {
    pub fn dd(&self) -> bool {
        self.status_error & RX_STAT_DD != 0
    }
    pub fn eop(&self) -> bool {
        self.status_error & RX_STAT_EOP != 0
    }
    /// The RSS hash, if the device computed one.
    pub fn hash(&self) -> Option<u32> {
        (self.pkt_info & RX_PKTINFO_RSSTYPE_MASK != 0).then_some(self.rss_hash)
    }
}

/// Status dword of Rx descriptor `i` (for the DD check).
pub fn rx_status(ring: &DmaMem, i: usize) -> u32 {
    ring.read32(i * DESC_LEN + 8)
}

/// Reads Rx write-back `i` (call after seeing DD, behind an acquire fence).
pub fn rx_read_wb(ring: &DmaMem, i: usize) -> RxWriteBack {
    let o = i * DESC_LEN;
    RxWriteBack {
        pkt_info: ring.read16(o),
        rss_hash: ring.read32(o + 4),
        status_error: ring.read32(o + 8),
        length: ring.read16(o + 12),
        vlan: ring.read16(o + 14),
    }
}

/// Posts a buffer in Rx descriptor `i` (read format; `hdr_addr` 0 also
/// clears the previous write-back's status).
pub fn rx_post(ring: &DmaMem, i: usize, paddr: u64) {
    let o = i * DESC_LEN;
    ring.write64(o, paddr);
    ring.write64(o + 8, 0);
}

/// Forgets Rx descriptor `i`'s write-back (a consumed slot left empty must
/// not look done when the ring comes round).
pub fn rx_clear(ring: &DmaMem, i: usize) {
    ring.write32(i * DESC_LEN + 8, 0);
}

// ---- transmit ----
/// `cmd_type_len` fields.
pub const TX_LEN_MASK: u32 = 0xffff;
pub const TX_DTYP_CTXT: u32 = 0x2 << 20;
pub const TX_DTYP_DATA: u32 = 0x3 << 20;
pub const TX_DCMD_EOP: u32 = 1 << 24;
pub const TX_DCMD_IFCS: u32 = 1 << 25;
pub const TX_DCMD_RS: u32 = 1 << 27;
pub const TX_DCMD_DEXT: u32 = 1 << 29;
pub const TX_DCMD_VLE: u32 = 1 << 30;
pub const TX_DCMD_TSE: u32 = 1 << 31;

/// `olinfo_status` fields.
pub const TX_STAT_DD: u32 = 1 << 0;
pub const TX_IDX_SHIFT: u32 = 4;
pub const TX_POPTS_IXSM: u32 = 1 << 8;
pub const TX_POPTS_TXSM: u32 = 1 << 9;
pub const TX_PAYLEN_SHIFT: u32 = 14;
/// PAYLEN is 18 bits.
pub const TX_PAYLEN_MAX: u32 = (1 << 18) - 1;

/// Context descriptor fields.
pub const CTX_IPLEN_MASK: u32 = 0x1ff;
pub const CTX_MACLEN_SHIFT: u32 = 9;
pub const CTX_MACLEN_MAX: u32 = 0x7f;
pub const CTX_TUCMD_IPV4: u32 = 1 << 10;
pub const CTX_TUCMD_L4T_UDP: u32 = 0;
pub const CTX_TUCMD_L4T_TCP: u32 = 1 << 11;
pub const CTX_IDX_SHIFT: u32 = 4;
pub const CTX_L4LEN_SHIFT: u32 = 8;
pub const CTX_MSS_SHIFT: u32 = 16;

/// A Tx data descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxData {
    pub addr: u64,
    pub cmd_type_len: u32,
    pub olinfo_status: u32,
}

/// A Tx context descriptor (offload parameters for the packets after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxContext {
    pub vlan_macip_lens: u32,
    pub seqnum_seed: u32,
    pub type_tucmd_mlhl: u32,
    pub mss_l4len_idx: u32,
}

pub fn tx_write_data(ring: &DmaMem, i: usize, d: &TxData) {
    let o = i * DESC_LEN;
    ring.write64(o, d.addr);
    ring.write32(o + 8, d.cmd_type_len);
    ring.write32(o + 12, d.olinfo_status);
}

pub fn tx_write_context(ring: &DmaMem, i: usize, c: &TxContext) {
    let o = i * DESC_LEN;
    ring.write32(o, c.vlan_macip_lens);
    ring.write32(o + 4, c.seqnum_seed);
    ring.write32(o + 8, c.type_tucmd_mlhl | TX_DTYP_CTXT | TX_DCMD_DEXT);
    ring.write32(o + 12, c.mss_l4len_idx);
}

/// Whether the device wrote back Tx descriptor `i` (DD).
pub fn tx_done(ring: &DmaMem, i: usize) -> bool {
    ring.read32(i * DESC_LEN + 12) & TX_STAT_DD != 0
}
