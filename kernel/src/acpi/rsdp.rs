//! The Root System Description Pointer: where the table tree starts.

use super::bytes::{checksum_ok, u32_at, u64_at};
use super::{AcpiError, PhysMem};

/// Size of the revision 0 (ACPI 1.0) RSDP.
const V1_LEN: usize = 20;
/// Size of the revision 2+ RSDP.
const V2_LEN: usize = 36;

/// The RSDP's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// 0 for ACPI 1.0, 2 or later for ACPI 2.0+.
    pub revision: u8,
    /// The firmware vendor.
    pub oem_id: [u8; 6],
    /// Physical address of the RSDT (0 if absent).
    pub rsdt: u32,
    /// Physical address of the XSDT (revision 2+ and non-zero only).
    pub xsdt: Option<u64>,
}

/// Reads and validates the RSDP at `paddr`: the signature, the checksum of
/// the first 20 bytes and, for revision 2+, the length and extended checksum.
pub(super) fn read(mem: &dyn PhysMem, paddr: u64) -> Result<Rsdp, AcpiError> {
    let mut b = [0u8; V2_LEN];
    if !mem.read(paddr, &mut b[..V1_LEN]) {
        return Err(AcpiError::RsdpUnreadable);
    }
    if &b[..8] != b"RSD PTR " {
        return Err(AcpiError::BadRsdpSignature);
    }
    if !checksum_ok(&b[..V1_LEN]) {
        return Err(AcpiError::BadRsdpChecksum);
    }
    let revision = b[15];
    let mut oem_id = [0u8; 6];
    oem_id.copy_from_slice(&b[9..15]);
    let rsdt = u32_at(&b, 16).unwrap_or(0);

    let mut xsdt = None;
    if revision >= 2 {
        if !mem.read(paddr.wrapping_add(V1_LEN as u64), &mut b[V1_LEN..]) {
            return Err(AcpiError::RsdpUnreadable);
        }
        // The extended checksum covers `length` bytes: normally the 36 read
        // here, but a longer (future) RSDP is checked whole.
        let length = u32_at(&b, 20).unwrap_or(0) as usize;
        if !(V2_LEN..=4096).contains(&length) {
            return Err(AcpiError::BadRsdpChecksum);
        }
        let ok = if length == V2_LEN {
            checksum_ok(&b)
        } else {
            let mut full = alloc::vec![0u8; length];
            mem.read(paddr, &mut full) && checksum_ok(&full)
        };
        if !ok {
            return Err(AcpiError::BadRsdpChecksum);
        }
        xsdt = u64_at(&b, 24).filter(|&a| a != 0);
    }
    Ok(Rsdp {
        revision,
        oem_id,
        rsdt,
        xsdt,
    })
}
