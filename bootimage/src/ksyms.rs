//! The kernel's symbol table for its profiler: the function symbols of the
//! kernel ELF (its `.symtab`), demangled, sorted by address, written next to
//! the ELF as `<elf>.ksyms` and handed to the guest through QEMU's fw_cfg
//! as the file `opt/arbalest/ksyms` (see [`FW_CFG_NAME`]). The kernel's
//! `lockstat -I` reads it to name the functions its samples fell in; with no
//! table it prints addresses.
//!
//! Format, little-endian: the 8 bytes [`MAGIC`], a `u32` count, then per
//! symbol a `u64` start address, a `u32` size in bytes, a `u16` name length
//! and the name's UTF-8 bytes. Names are demangled without their hash and
//! cut to [`MAX_NAME`] bytes.

use std::path::{Path, PathBuf};

/// The first 8 bytes of a table.
pub const MAGIC: &[u8; 8] = b"ARBKSYM1";
/// The fw_cfg file name the guest looks for.
pub const FW_CFG_NAME: &str = "opt/arbalest/ksyms";
/// Longest name kept, bytes.
pub const MAX_NAME: usize = 120;

/// One function: start, size, name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sym {
    pub addr: u64,
    pub size: u32,
    pub name: String,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// The function symbols of an ELF64 little-endian image, sorted by
/// address, one per address. `None` when it is not such an ELF or has no
/// `.symtab`.
pub fn function_symbols(elf: &[u8]) -> Option<Vec<Sym>> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(u64_at(elf, 0x28)?).ok()?;
    let shentsize = usize::from(u16_at(elf, 0x3a)?);
    let shnum = usize::from(u16_at(elf, 0x3c)?);
    if shentsize < 0x40 {
        return None;
    }
    let section = |i: usize| -> Option<(u32, usize, usize, u32)> {
        let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let field = |off: usize| h.checked_add(off);
        let ty = u32_at(elf, field(4)?)?;
        let off = usize::try_from(u64_at(elf, field(0x18)?)?).ok()?;
        let size = usize::try_from(u64_at(elf, field(0x20)?)?).ok()?;
        let link = u32_at(elf, field(0x28)?)?;
        Some((ty, off, size, link))
    };
    const SHT_SYMTAB: u32 = 2;
    const STT_FUNC: u8 = 2;
    let (_, symoff, symsize, link) = (0..shnum).filter_map(section).find(|s| s.0 == SHT_SYMTAB)?;
    let (_, stroff, strsize, _) = section(link as usize)?;
    let strtab = elf.get(stroff..stroff.checked_add(strsize)?)?;
    let symtab = elf.get(symoff..symoff.checked_add(symsize)?)?;
    let mut out = Vec::new();
    for s in symtab.chunks_exact(24) {
        let name_at = u32_at(s, 0)? as usize;
        let addr = u64_at(s, 8)?;
        let size = u64_at(s, 16)?;
        if s[4] & 0xf != STT_FUNC || addr == 0 {
            continue;
        }
        let raw = strtab.get(name_at..)?;
        let raw = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        let mut name = demangle(&String::from_utf8_lossy(raw));
        if name.len() > MAX_NAME {
            let mut cut = MAX_NAME;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
        }
        out.push(Sym { addr, size: u32::try_from(size).unwrap_or(u32::MAX), name });
    }
    out.sort_by(|a, b| a.addr.cmp(&b.addr).then(b.size.cmp(&a.size)));
    out.dedup_by_key(|s| s.addr);
    Some(out)
}

/// A Rust symbol's name without its hash (legacy `_ZN` and v0 `_R`
/// mangling); any other name as it is.
pub fn demangle(raw: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(raw))
}

/// The table's bytes.
pub fn encode(syms: &[Sym]) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + syms.len() * 48);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&(syms.len() as u32).to_le_bytes());
    for s in syms {
        b.extend_from_slice(&s.addr.to_le_bytes());
        b.extend_from_slice(&s.size.to_le_bytes());
        b.extend_from_slice(&(s.name.len() as u16).to_le_bytes());
        b.extend_from_slice(s.name.as_bytes());
    }
    b
}

/// Where the table of `elf` goes.
pub fn path_for(elf: &Path) -> PathBuf {
    let mut p = elf.as_os_str().to_owned();
    p.push(".ksyms");
    PathBuf::from(p)
}

/// Writes the table of `elf` next to it unless one at least as new is
/// there. Returns its path, or `None` when the ELF has no symbols (the
/// kernel then profiles by address).
pub fn write_for(elf: &Path) -> Option<PathBuf> {
    let out = path_for(elf);
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(t_elf), Some(t_out)) = (mtime(elf), mtime(&out)) {
        if t_out >= t_elf {
            return Some(out);
        }
    }
    let syms = function_symbols(&std::fs::read(elf).ok()?)?;
    let tmp = out.with_extension(format!("ksyms.{}", std::process::id()));
    std::fs::write(&tmp, encode(&syms)).ok()?;
    std::fs::rename(&tmp, &out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_an_elf_is_none() {
        assert_eq!(function_symbols(b""), None);
        assert_eq!(function_symbols(b"\x7fELF\x01\x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), None);
        let mut junk = b"\x7fELF\x02\x01".to_vec();
        junk.resize(0x40, 0xff);
        assert_eq!(function_symbols(&junk), None);
    }

    #[test]
    fn legacy_and_v0_names_are_demangled_without_hashes() {
        assert_eq!(demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"), "core::ptr::drop_in_place");
        assert_eq!(
            demangle("_ZN62_$LT$smoltcp..iface..Interface$u20$as$u20$core..fmt..Debug$GT$3fmt17h0123456789abcdefE"),
            "<smoltcp::iface::Interface as core::fmt::Debug>::fmt"
        );
        assert_eq!(demangle("_RNvCsfLfy6EI15iL_7___rustc26___rust_alloc_error_handler"), "__rustc::__rust_alloc_error_handler");
        assert_eq!(demangle("memcpy"), "memcpy");
    }

    #[test]
    fn this_test_binary_has_named_functions() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let syms = function_symbols(&me).expect("a symtab");
        assert!(syms.windows(2).all(|w| w[0].addr < w[1].addr));
        assert!(syms.iter().any(|s| s.name.contains("this_test_binary_has_named_functions")), "{}", syms.len());
        let enc = encode(&syms[..3]);
        assert_eq!(&enc[..8], MAGIC);
        assert_eq!(u32_at(&enc, 8), Some(3));
    }
}
