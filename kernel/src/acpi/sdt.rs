//! System description tables in general: the common 36-byte header, the
//! checksum, loading a whole table from physical memory, and the entry list
//! of the root tables (XSDT, RSDT).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::bytes::{checksum_ok, u32_at, u64_at};
use super::{PhysMem, SkipReason, Skipped, TableInfo};

/// Size of the common table header.
pub(super) const HEADER_LEN: usize = 36;
/// Longest table accepted (a MADT for thousands of x2APICs fits easily).
pub(super) const MAX_TABLE_LEN: u32 = 1 << 20;

/// A four-character table signature (`APIC`, `FACP`, ...).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub [u8; 4]);

impl Signature {
    /// The placeholder for a table whose header could not be read.
    pub const UNKNOWN: Signature = Signature(*b"????");
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A table read into memory, header and checksum verified.
pub(super) struct Table {
    pub signature: Signature,
    pub paddr: u64,
    pub revision: u8,
    /// The whole table, header included.
    pub bytes: Vec<u8>,
}

impl Table {
    /// The bytes after the header.
    pub fn body(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }

    pub fn info(&self) -> TableInfo {
        TableInfo {
            signature: self.signature,
            paddr: self.paddr,
            length: self.bytes.len() as u32,
            revision: self.revision,
        }
    }
}

/// Loads the table at `paddr`: header, plausible length, whole body,
/// checksum.
pub(super) fn load(mem: &dyn PhysMem, paddr: u64) -> Result<Table, Skipped> {
    let skip = |signature, reason| Skipped {
        signature,
        paddr,
        reason,
    };
    let mut header = [0u8; HEADER_LEN];
    if !mem.read(paddr, &mut header) {
        return Err(skip(Signature::UNKNOWN, SkipReason::Unreadable));
    }
    let signature = Signature([header[0], header[1], header[2], header[3]]);
    let length = u32_at(&header, 4).unwrap_or(0);
    if length < HEADER_LEN as u32 || length > MAX_TABLE_LEN {
        return Err(skip(signature, SkipReason::BadLength(length)));
    }
    let mut bytes = vec![0u8; length as usize];
    if !mem.read(paddr, &mut bytes) {
        return Err(skip(signature, SkipReason::Unreadable));
    }
    if !checksum_ok(&bytes) {
        return Err(skip(signature, SkipReason::BadChecksum));
    }
    Ok(Table {
        signature,
        paddr,
        revision: header[8],
        bytes,
    })
}

/// Loads the table at `paddr` and checks it carries `signature`.
pub(super) fn load_expecting(
    mem: &dyn PhysMem,
    paddr: u64,
    signature: &[u8; 4],
) -> Result<Table, Skipped> {
    let table = load(mem, paddr)?;
    if table.signature.0 != *signature {
        return Err(Skipped {
            signature: Signature(*signature),
            paddr,
            reason: SkipReason::WrongSignature,
        });
    }
    Ok(table)
}

/// The table addresses in a root table body: 8-byte entries for the XSDT,
/// 4-byte entries for the RSDT. A partial trailing entry is ignored.
pub(super) fn root_entries(body: &[u8], entry_size: usize) -> impl Iterator<Item = u64> + '_ {
    body.chunks_exact(entry_size).map(move |e| {
        if entry_size == 8 {
            u64_at(e, 0).unwrap_or(0)
        } else {
            u64::from(u32_at(e, 0).unwrap_or(0))
        }
    })
}
