//! A fake PCI configuration space: functions built from a few calls, BARs
//! that only keep their writable address bits (so sizing works), and
//! capability lists.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use spin::Mutex;

use crate::hal::PciConfigAccess;
use crate::pci::{Bdf, regs};

/// One function's 4 KiB configuration space.
#[derive(Clone)]
pub struct FakeFunction {
    pub space: Vec<u8>,
    /// Writable bits of each BAR register (0: read-only).
    bar_wmask: [u32; 6],
    next_cap: u8,
    last_cap: u8,
}

impl FakeFunction {
    /// A type 0 function.
    pub fn new(vendor: u16, device: u16, class: u8, subclass: u8, prog_if: u8) -> FakeFunction {
        let mut f = FakeFunction { space: vec![0; 4096], bar_wmask: [0; 6], next_cap: 0x40, last_cap: 0 };
        f.put16(regs::VENDOR_ID, vendor);
        f.put16(regs::DEVICE_ID, device);
        f.space[regs::CLASS as usize] = class;
        f.space[regs::SUBCLASS as usize] = subclass;
        f.space[regs::PROG_IF as usize] = prog_if;
        f.space[regs::INTERRUPT_LINE as usize] = 11;
        f
    }

    /// Sets the raw header type byte.
    pub fn header_type(mut self, t: u8) -> FakeFunction {
        self.space[regs::HEADER_TYPE as usize] = t;
        self
    }

    /// Sets the command register.
    pub fn command(mut self, cmd: u16) -> FakeFunction {
        self.put16(regs::COMMAND, cmd);
        self
    }

    /// A 32-bit memory BAR (`size` a power of two >= 16).
    pub fn mem_bar32(mut self, i: usize, addr: u32, size: u32, prefetchable: bool) -> FakeFunction {
        let flags = if prefetchable { 0x8 } else { 0 };
        self.put32(regs::BAR0 + 4 * i as u16, (addr & !0xf) | flags);
        self.bar_wmask[i] = !(size - 1) & !0xf;
        self
    }

    /// A 64-bit memory BAR in slots `i` and `i + 1`.
    pub fn mem_bar64(mut self, i: usize, addr: u64, size: u64, prefetchable: bool) -> FakeFunction {
        let flags = 0x4 | if prefetchable { 0x8 } else { 0 };
        self.put32(regs::BAR0 + 4 * i as u16, (addr as u32 & !0xf) | flags);
        self.put32(regs::BAR0 + 4 * (i as u16 + 1), (addr >> 32) as u32);
        let m = !(size - 1);
        self.bar_wmask[i] = m as u32 & !0xf;
        self.bar_wmask[i + 1] = (m >> 32) as u32;
        self
    }

    /// An I/O BAR decoding 16 address bits.
    pub fn io_bar(mut self, i: usize, port: u16, size: u16) -> FakeFunction {
        self.put32(regs::BAR0 + 4 * i as u16, (port as u32 & !0x3) | 1);
        self.bar_wmask[i] = (!(size as u32 - 1)) & 0xfffc;
        self
    }

    /// Appends a capability with id `id` and `body` (the bytes after the
    /// id / next pair); returns its offset through `at`.
    pub fn cap(mut self, id: u8, body: &[u8], at: &mut u8) -> FakeFunction {
        let off = self.next_cap;
        self.space[off as usize] = id;
        self.space[off as usize + 1] = 0;
        self.space[off as usize + 2..off as usize + 2 + body.len()].copy_from_slice(body);
        if self.last_cap == 0 {
            self.space[regs::CAP_PTR as usize] = off;
            let st = self.get16(regs::STATUS) | regs::STATUS_CAP_LIST;
            self.put16(regs::STATUS, st);
        } else {
            self.space[self.last_cap as usize + 1] = off;
        }
        self.last_cap = off;
        self.next_cap = (off + 2 + body.len() as u8).div_ceil(4) * 4;
        *at = off;
        self
    }

    pub fn put16(&mut self, off: u16, v: u16) {
        self.space[off as usize..off as usize + 2].copy_from_slice(&v.to_le_bytes());
    }
    pub fn put32(&mut self, off: u16, v: u32) {
        self.space[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
    }
    pub fn get16(&self, off: u16) -> u16 {
        u16::from_le_bytes([self.space[off as usize], self.space[off as usize + 1]])
    }
    pub fn get32(&self, off: u16) -> u32 {
        let o = off as usize;
        u32::from_le_bytes([self.space[o], self.space[o + 1], self.space[o + 2], self.space[o + 3]])
    }
}

/// Configuration space of a set of functions; absent ones read all-ones.
#[derive(Default)]
pub struct FakeConfigSpace {
    funcs: Mutex<BTreeMap<Bdf, FakeFunction>>,
    /// Number of config writes (to check sizing restores what it touched).
    pub writes: Mutex<Vec<(Bdf, u16, u32)>>,
}

impl FakeConfigSpace {
    pub fn new() -> FakeConfigSpace {
        FakeConfigSpace::default()
    }

    pub fn add(&self, bdf: Bdf, f: FakeFunction) {
        self.funcs.lock().insert(bdf, f);
    }

    /// Reads a function's dword directly (no side effects).
    pub fn peek32(&self, bdf: Bdf, off: u16) -> u32 {
        self.funcs.lock().get(&bdf).map_or(u32::MAX, |f| f.get32(off))
    }
}

impl PciConfigAccess for FakeConfigSpace {
    fn read32(&self, bdf: Bdf, off: u16) -> u32 {
        let off = off & !3;
        if off >= 4096 {
            return u32::MAX;
        }
        self.peek32(bdf, off)
    }

    fn write32(&self, bdf: Bdf, off: u16, v: u32) {
        let off = off & !3;
        if off >= 4096 {
            return;
        }
        self.writes.lock().push((bdf, off, v));
        let mut funcs = self.funcs.lock();
        let Some(f) = funcs.get_mut(&bdf) else { return };
        if (regs::BAR0..regs::BAR0 + 24).contains(&off) {
            let i = ((off - regs::BAR0) / 4) as usize;
            let m = f.bar_wmask[i];
            let old = f.get32(off);
            f.put32(off, (v & m) | (old & !m));
        } else if off == regs::VENDOR_ID || off == regs::REVISION {
            // read-only identification
        } else {
            f.put32(off, v);
        }
    }
}
