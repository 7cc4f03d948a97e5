//! The device's side of a split virtqueue, for simulated devices: reads
//! the available ring and descriptors, writes used entries, reads and
//! writes guest memory. Guest physical addresses are host addresses here
//! (the fake DMA allocator hands out heap memory with paddr = vaddr).

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

/// One descriptor as the device sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

impl Desc {
    pub fn writable(&self) -> bool {
        self.flags & 2 != 0
    }
}

/// Reads `len` bytes of guest memory at `addr`.
pub fn read_mem(addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    // SAFETY: test-only; `addr` is a driver-posted DMA address, which the
    // heap allocator makes a live host address of at least `len` bytes.
    unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, v.as_mut_ptr(), len) };
    v
}

/// Writes `data` to guest memory at `addr`.
pub fn write_mem(addr: u64, data: &[u8]) {
    // SAFETY: as for `read_mem`; the driver posted this buffer for the
    // device to write.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
}

fn rd16(addr: u64) -> u16 {
    // SAFETY: test-only access to ring memory the driver allocated.
    unsafe { core::ptr::read_volatile(addr as *const u16) }
}
fn wr16(addr: u64, v: u16) {
    // SAFETY: as for `rd16`.
    unsafe { core::ptr::write_volatile(addr as *mut u16, v) }
}
fn wr32(addr: u64, v: u32) {
    // SAFETY: as for `rd16`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

/// A queue as the device runs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceRing {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub last_avail: u16,
    pub used_idx: u16,
}

impl DeviceRing {
    pub fn new(size: u16, desc: u64, avail: u64, used: u64) -> DeviceRing {
        DeviceRing { size, desc, avail, used, last_avail: 0, used_idx: 0 }
    }

    pub fn desc(&self, id: u16) -> Desc {
        let a = self.desc + 16 * id as u64;
        // SAFETY: test-only read of the descriptor table.
        let (addr, len) = unsafe { (core::ptr::read_volatile(a as *const u64), core::ptr::read_volatile((a + 8) as *const u32)) };
        Desc { addr, len, flags: rd16(a + 12), next: rd16(a + 14) }
    }

    pub fn avail_idx(&self) -> u16 {
        rd16(self.avail + 2)
    }

    pub fn avail_flags(&self) -> u16 {
        rd16(self.avail)
    }

    pub fn used_event(&self) -> u16 {
        rd16(self.avail + 4 + 2 * self.size as u64)
    }

    /// Publishes where the device wants the next kick.
    pub fn set_avail_event(&self, v: u16) {
        wr16(self.used + 4 + 8 * self.size as u64, v)
    }

    pub fn set_used_flags(&self, v: u16) {
        wr16(self.used, v)
    }

    /// Chains the driver made available and the device has not taken.
    pub fn avail_pending(&self) -> u16 {
        self.avail_idx().wrapping_sub(self.last_avail)
    }

    /// Takes the next available chain: its head and descriptors.
    pub fn pop_avail(&mut self) -> Option<(u16, Vec<Desc>)> {
        if self.avail_pending() == 0 {
            return None;
        }
        fence(Ordering::Acquire);
        let head = rd16(self.avail + 4 + 2 * (self.last_avail % self.size) as u64);
        self.last_avail = self.last_avail.wrapping_add(1);
        // Like QEMU: with EVENT_IDX, ask to be kicked for the next chain.
        self.set_avail_event(self.last_avail);
        let mut chain = Vec::new();
        let mut id = head;
        loop {
            let d = self.desc(id);
            chain.push(d);
            if d.flags & 1 == 0 || chain.len() > self.size as usize {
                break;
            }
            id = d.next;
        }
        Some((head, chain))
    }

    /// Writes a used entry without publishing it.
    pub fn put_used(&mut self, id: u32, len: u32) {
        let e = self.used + 4 + 8 * (self.used_idx % self.size) as u64;
        wr32(e, id);
        wr32(e + 4, len);
        self.used_idx = self.used_idx.wrapping_add(1);
    }

    /// Publishes the used entries written so far; returns whether the
    /// driver asked for an interrupt (`event_idx` rule or flags), given the
    /// used index before this batch.
    pub fn publish_used(&self, old: u16, event_idx: bool) -> bool {
        fence(Ordering::Release);
        wr16(self.used + 2, self.used_idx);
        fence(Ordering::SeqCst);
        if event_idx {
            crate::virtio::queue::need_event(self.used_event(), self.used_idx, old)
        } else {
            self.avail_flags() & 1 == 0
        }
    }

    /// Writes and publishes one used entry.
    pub fn push_used(&mut self, id: u32, len: u32, event_idx: bool) -> bool {
        let old = self.used_idx;
        self.put_used(id, len);
        self.publish_used(old, event_idx)
    }
}
