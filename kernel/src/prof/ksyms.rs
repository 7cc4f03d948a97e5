//! The kernel's function names, from the table `bootimage` writes
//! (`bootimage/src/ksyms.rs` owns the format): sorted starts, sizes and
//! names, looked up by program counter.

use alloc::string::String;
use alloc::vec::Vec;

/// The table's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"ARBKSYM1";
/// The fw_cfg file that carries the table.
pub const FW_CFG_NAME: &str = "opt/arbalest/ksyms";
/// Most symbols a table may hold.
pub const MAX_SYMS: usize = 1 << 20;

/// A parsed table.
#[derive(Debug, Default)]
pub struct Ksyms {
    starts: Vec<u64>,
    sizes: Vec<u32>,
    names: Vec<String>,
}

/// Why a table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KsymsError {
    BadMagic,
    Truncated,
    TooMany,
    Unsorted,
}

impl Ksyms {
    /// Parses a table; every length is checked against the bytes there.
    pub fn parse(b: &[u8]) -> Result<Ksyms, KsymsError> {
        if b.get(..8) != Some(&MAGIC[..]) {
            return Err(KsymsError::BadMagic);
        }
        let take = |at: &mut usize, n: usize| -> Result<&[u8], KsymsError> {
            let s = b.get(*at..at.checked_add(n).ok_or(KsymsError::Truncated)?).ok_or(KsymsError::Truncated)?;
            *at += n;
            Ok(s)
        };
        let mut at = 8;
        let count = u32::from_le_bytes(take(&mut at, 4)?.try_into().unwrap_or_default()) as usize;
        if count > MAX_SYMS {
            return Err(KsymsError::TooMany);
        }
        let mut k = Ksyms::default();
        for _ in 0..count {
            let addr = u64::from_le_bytes(take(&mut at, 8)?.try_into().unwrap_or_default());
            let size = u32::from_le_bytes(take(&mut at, 4)?.try_into().unwrap_or_default());
            let len = u16::from_le_bytes(take(&mut at, 2)?.try_into().unwrap_or_default());
            let name = String::from_utf8_lossy(take(&mut at, usize::from(len))?).into_owned();
            if k.starts.last().is_some_and(|&last| last >= addr) {
                return Err(KsymsError::Unsorted);
            }
            k.starts.push(addr);
            k.sizes.push(size);
            k.names.push(name);
        }
        Ok(k)
    }

    /// Symbols in the table.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when the table has no symbol.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The function holding `pc` and `pc`'s offset in it. A symbol of size
    /// 0 holds everything up to the next one.
    pub fn lookup(&self, pc: u64) -> Option<(&str, u64)> {
        let i = self.starts.partition_point(|&s| s <= pc).checked_sub(1)?;
        let off = pc - self.starts[i];
        let size = u64::from(self.sizes[i]);
        (size == 0 || off < size).then(|| (self.names[i].as_str(), off))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(syms: &[(u64, u32, &str)]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&(syms.len() as u32).to_le_bytes());
        for (a, s, n) in syms {
            b.extend_from_slice(&a.to_le_bytes());
            b.extend_from_slice(&s.to_le_bytes());
            b.extend_from_slice(&(n.len() as u16).to_le_bytes());
            b.extend_from_slice(n.as_bytes());
        }
        b
    }

    #[test]
    fn lookup_by_pc() {
        let k = Ksyms::parse(&table(&[(0x1000, 0x20, "a"), (0x1020, 0, "b"), (0x2000, 0x10, "c")])).unwrap();
        assert_eq!(k.len(), 3);
        assert_eq!(k.lookup(0xfff), None);
        assert_eq!(k.lookup(0x1000), Some(("a", 0)));
        assert_eq!(k.lookup(0x101f), Some(("a", 0x1f)));
        assert_eq!(k.lookup(0x1020), Some(("b", 0)));
        assert_eq!(k.lookup(0x1fff), Some(("b", 0xfdf)));
        assert_eq!(k.lookup(0x200f), Some(("c", 0xf)));
        assert_eq!(k.lookup(0x2010), None, "past c's end");
    }

    #[test]
    fn bad_tables_are_refused() {
        assert_eq!(Ksyms::parse(b"").unwrap_err(), KsymsError::BadMagic);
        assert_eq!(Ksyms::parse(b"ARBKSYM0\0\0\0\0").unwrap_err(), KsymsError::BadMagic);
        let good = table(&[(0x1000, 0x20, "alpha"), (0x2000, 0x20, "beta")]);
        for cut in 8..good.len() {
            assert_eq!(Ksyms::parse(&good[..cut]).unwrap_err(), KsymsError::Truncated, "cut at {cut}");
        }
        assert_eq!(Ksyms::parse(&table(&[(0x2000, 1, "x"), (0x1000, 1, "y")])).unwrap_err(), KsymsError::Unsorted);
        let mut many = MAGIC.to_vec();
        many.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Ksyms::parse(&many).unwrap_err(), KsymsError::TooMany);
        assert!(Ksyms::parse(&table(&[])).unwrap().is_empty());
    }
}
