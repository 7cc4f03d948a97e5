//! Receive-side scaling: the 40-byte Toeplitz key (RSSRK), the 128-entry
//! redirection table (RETA) spreading hash values over the Rx rings, and
//! MRQC, which switches the multiple-queue mode on and picks the hashed
//! fields (IPv4/IPv6 addresses, with TCP and UDP ports where present).
//!
//! The device computes the hash and writes it into the descriptor; the
//! queue is `RETA[hash & 0x7f]`. QEMU's emulation hashes only with
//! `MRQC[1:0] = 10b` and `RXCSUM.PCSD` set (the RSS hash and the IP
//! checksum share a descriptor field), see [`super::filter`] for how RSS
//! and VMDq pools combine.

use crate::hal::Mmio;

use super::regs::*;

/// The key of Microsoft's RSS verification suite: published test vectors
/// exist for it, so a hash can be checked by hand.
pub const DEFAULT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b,
    0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Fields hashed: IPv4 and IPv6 addresses, plus ports for TCP and UDP.
pub const HASH_FIELDS: u32 = MRQC_RSS_FIELD_IPV4
    | MRQC_RSS_FIELD_IPV4_TCP
    | MRQC_RSS_FIELD_IPV4_UDP
    | MRQC_RSS_FIELD_IPV6
    | MRQC_RSS_FIELD_IPV6_TCP
    | MRQC_RSS_FIELD_IPV6_TCP_EX
    | MRQC_RSS_FIELD_IPV6_UDP;

/// MRQC for RSS over the Rx rings (no VMDq).
pub const MRQC_RSS: u32 = MRQC_ENABLE_RSS_MQ | HASH_FIELDS;

/// Redirection table entry `i` for `rings` rings (round robin).
pub fn reta_entry(i: usize, rings: usize) -> u8 {
    (i % rings.max(1)) as u8
}

/// Writes the key: byte `i` of the key is byte `i % 4` of RSSRK[i / 4].
pub fn program_key(regs: &dyn Mmio, key: &[u8; 40]) {
    for (n, k) in key.chunks_exact(4).enumerate() {
        regs.write32(rssrk(n), u32::from_le_bytes([k[0], k[1], k[2], k[3]]));
    }
}

/// Writes the redirection table: entry `i` (byte `i % 4` of RETA[i / 4])
/// names hardware queue `i % rings`.
pub fn program_reta(regs: &dyn Mmio, rings: usize) {
    for n in 0..RETA_ENTRIES / 4 {
        let b = [0, 1, 2, 3].map(|k| reta_entry(4 * n + k, rings));
        regs.write32(reta(n), u32::from_le_bytes(b));
    }
}

/// Programs key, table and MRQC for RSS over hardware queues `0..rings`.
pub fn program(regs: &dyn Mmio, key: &[u8; 40], rings: usize) {
    program_key(regs, key);
    program_reta(regs, rings);
    regs.write32(MRQC, MRQC_RSS);
}
