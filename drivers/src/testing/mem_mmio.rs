//! A register region backed by plain memory: what was written reads back.

use alloc::vec;
use alloc::vec::Vec;

use spin::Mutex;

use crate::hal::Mmio;

/// Memory-backed [`Mmio`]; out-of-range accesses read all-ones and ignore
/// writes, like [`crate::hal::MmioRegion`].
pub struct MemMmio {
    mem: Mutex<Vec<u8>>,
}

impl MemMmio {
    pub fn new(len: usize) -> MemMmio {
        MemMmio { mem: Mutex::new(vec![0; len]) }
    }

    /// A copy of the contents.
    pub fn bytes(&self) -> Vec<u8> {
        self.mem.lock().clone()
    }

    fn read(&self, off: usize, n: usize) -> Option<u64> {
        let m = self.mem.lock();
        let b = m.get(off..off.checked_add(n)?)?;
        Some(b.iter().rev().fold(0u64, |acc, x| (acc << 8) | *x as u64))
    }

    fn write(&self, off: usize, n: usize, v: u64) {
        let mut m = self.mem.lock();
        let Some(end) = off.checked_add(n) else { return };
        if let Some(b) = m.get_mut(off..end) {
            for (i, x) in b.iter_mut().enumerate() {
                *x = (v >> (8 * i)) as u8;
            }
        }
    }
}

impl Mmio for MemMmio {
    fn read8(&self, off: usize) -> u8 {
        self.read(off, 1).map_or(u8::MAX, |v| v as u8)
    }
    fn read16(&self, off: usize) -> u16 {
        self.read(off, 2).map_or(u16::MAX, |v| v as u16)
    }
    fn read32(&self, off: usize) -> u32 {
        self.read(off, 4).map_or(u32::MAX, |v| v as u32)
    }
    fn read64(&self, off: usize) -> u64 {
        self.read(off, 8).unwrap_or(u64::MAX)
    }
    fn write8(&self, off: usize, v: u8) {
        self.write(off, 1, v as u64)
    }
    fn write16(&self, off: usize, v: u16) {
        self.write(off, 2, v as u64)
    }
    fn write32(&self, off: usize, v: u32) {
        self.write(off, 4, v as u64)
    }
    fn write64(&self, off: usize, v: u64) {
        self.write(off, 8, v)
    }
}
