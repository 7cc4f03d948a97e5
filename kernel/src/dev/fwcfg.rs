//! QEMU's firmware configuration device (fw_cfg), read through its I/O
//! ports: a selector at 0x510 and a byte-wide data port at 0x511. The
//! kernel uses it for one thing: files `bootimage` attaches with
//! `-fw_cfg name=...,file=...` (the profiler's symbol table).

use alloc::vec::Vec;

use crate::arch::port::{inb, outw};

const SELECTOR: u16 = 0x510;
const DATA: u16 = 0x511;
const SIGNATURE: u16 = 0x0000;
const FILE_DIR: u16 = 0x0019;
/// Largest file read, bytes.
pub const MAX_FILE: usize = 16 << 20;

fn select(key: u16) {
    outw(SELECTOR, key);
}

fn read_into(buf: &mut [u8]) {
    for b in buf {
        *b = inb(DATA);
    }
}

fn be32() -> u32 {
    let mut b = [0u8; 4];
    read_into(&mut b);
    u32::from_be_bytes(b)
}

/// True when the device answers with QEMU's signature.
pub fn present() -> bool {
    select(SIGNATURE);
    let mut sig = [0u8; 4];
    read_into(&mut sig);
    &sig == b"QEMU"
}

/// The bytes of the fw_cfg file `name`, if QEMU was given one (and it is
/// at most [`MAX_FILE`] bytes).
pub fn read_file(name: &str) -> Option<Vec<u8>> {
    if !present() {
        return None;
    }
    select(FILE_DIR);
    let count = be32();
    for _ in 0..count.min(4096) {
        let size = be32() as usize;
        let mut sel = [0u8; 4];
        read_into(&mut sel);
        let key = u16::from_be_bytes([sel[0], sel[1]]);
        let mut n = [0u8; 56];
        read_into(&mut n);
        let len = n.iter().position(|&c| c == 0).unwrap_or(n.len());
        if &n[..len] == name.as_bytes() {
            if size > MAX_FILE {
                return None;
            }
            select(key);
            let mut data = alloc::vec![0u8; size];
            read_into(&mut data);
            return Some(data);
        }
    }
    None
}
