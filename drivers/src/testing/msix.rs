//! A simulated MSI-X table and pending-bit array (one BAR region), with
//! the semantics PCI defines and QEMU's `hw/pci/msix.c` models:
//!
//! * The device signals an entry with [`FakeMsix::notify`]: an unmasked
//!   entry sends its message (read from the table *now*, so a rewritten
//!   entry takes effect at once) through [`FakeHal::deliver_msi`]; a
//!   masked one sets its pending bit instead.
//! * A write that unmasks a pending entry clears the bit and sends the
//!   (new) message, as `msix_handle_mask_update` does.
//! * The pending-bit array is read-only to the driver.
//!
//! Messages go out outside any lock here, so handlers may touch the
//! device (and this table) again. A one-shot hook ([`FakeMsix::on_mask`])
//! runs when the driver masks an entry: tests use it to raise an interrupt
//! in the middle of a vector switch.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use spin::Mutex;

use super::hal::FakeHal;
use super::mem_mmio::MemMmio;
use crate::hal::Mmio;

const ENTRY_SIZE: usize = 16;
const ENTRY_CTRL: usize = 12;
const MASKED: u32 = 1;

type Hook = Box<dyn FnOnce() + Send>;

/// The table and PBA of one function.
pub struct FakeMsix {
    hal: Arc<FakeHal>,
    mem: MemMmio,
    entries: u16,
    pba: usize,
    /// Serializes "masked? then pend" against "unmask, then pending?".
    gate: Mutex<()>,
    sent: Mutex<Vec<u64>>,
    hooks: Mutex<Vec<(u16, Hook)>>,
}

impl FakeMsix {
    /// A region of `len` bytes: `entries` table entries at 0 (all masked,
    /// as after reset) and the PBA at byte `pba`.
    pub fn new(hal: Arc<FakeHal>, len: usize, entries: u16, pba: usize) -> FakeMsix {
        let t = FakeMsix {
            hal,
            mem: MemMmio::new(len),
            entries,
            pba,
            gate: Mutex::new(()),
            sent: Mutex::new(vec![0; entries as usize]),
            hooks: Mutex::new(Vec::new()),
        };
        for e in 0..entries as usize {
            t.mem.write32(e * ENTRY_SIZE + ENTRY_CTRL, MASKED);
        }
        t
    }

    fn in_table(&self, off: usize) -> bool {
        off < self.entries as usize * ENTRY_SIZE
    }

    /// Whether entry `e` is masked (out of range: true).
    pub fn is_masked(&self, e: u16) -> bool {
        e >= self.entries || self.mem.read32(e as usize * ENTRY_SIZE + ENTRY_CTRL) & MASKED != 0
    }

    /// Whether entry `e`'s pending bit is set.
    pub fn is_pending(&self, e: u16) -> bool {
        e < self.entries && self.mem.read8(self.pba + e as usize / 8) & (1 << (e % 8)) != 0
    }

    fn set_pending(&self, e: u16, on: bool) {
        let off = self.pba + e as usize / 8;
        let b = self.mem.read8(off);
        self.mem.write8(off, if on { b | (1 << (e % 8)) } else { b & !(1 << (e % 8)) });
    }

    /// Address and data of entry `e`.
    pub fn message(&self, e: u16) -> (u64, u32) {
        let o = e as usize * ENTRY_SIZE;
        (self.mem.read32(o) as u64 | ((self.mem.read32(o + 4) as u64) << 32), self.mem.read32(o + 8))
    }

    /// Messages sent on entry `e` (pending ones sent at unmask included).
    pub fn sent(&self, e: u16) -> u64 {
        self.sent.lock().get(e as usize).copied().unwrap_or(0)
    }

    /// Clears every pending bit (what a device reset does in QEMU's
    /// virtio-pci: `msix_unuse_all_vectors`).
    pub fn clear_pending(&self) {
        let _g = self.gate.lock();
        for e in 0..self.entries {
            self.set_pending(e, false);
        }
    }

    /// Runs `f` (once) right after the driver next masks entry `e`.
    pub fn on_mask(&self, e: u16, f: impl FnOnce() + Send + 'static) {
        self.hooks.lock().push((e, Box::new(f)));
    }

    fn send(&self, e: u16, msg: (u64, u32)) {
        self.sent.lock()[e as usize] += 1;
        self.hal.deliver_msi(msg.0, msg.1);
    }

    /// The device signals entry `e`: sends its message if unmasked (true),
    /// else sets its pending bit (false).
    pub fn notify(&self, e: u16) -> bool {
        if e >= self.entries {
            return false;
        }
        let msg = {
            let _g = self.gate.lock();
            if self.is_masked(e) {
                self.set_pending(e, true);
                return false;
            }
            self.message(e)
        };
        self.send(e, msg);
        true
    }

    /// A driver write: the table takes it (the PBA ignores it); a mask
    /// runs the entry's hook, an unmask sends what was pending.
    fn write(&self, off: usize, f: impl FnOnce(&MemMmio)) {
        if !self.in_table(off) {
            return;
        }
        let e = (off / ENTRY_SIZE) as u16;
        let (masked, unmasked_pending) = {
            let _g = self.gate.lock();
            let was = self.is_masked(e);
            f(&self.mem);
            let now = self.is_masked(e);
            let pending = !now && was && self.is_pending(e);
            if pending {
                self.set_pending(e, false);
            }
            (now && !was, pending.then(|| self.message(e)))
        };
        if let Some(msg) = unmasked_pending {
            self.send(e, msg);
        }
        if masked {
            let hook = {
                let mut h = self.hooks.lock();
                h.iter().position(|(he, _)| *he == e).map(|i| h.remove(i).1)
            };
            if let Some(f) = hook {
                f();
            }
        }
    }
}

impl Mmio for FakeMsix {
    fn read8(&self, off: usize) -> u8 {
        self.mem.read8(off)
    }
    fn read16(&self, off: usize) -> u16 {
        self.mem.read16(off)
    }
    fn read32(&self, off: usize) -> u32 {
        self.mem.read32(off)
    }
    fn read64(&self, off: usize) -> u64 {
        self.mem.read64(off)
    }
    fn write8(&self, off: usize, v: u8) {
        self.write(off, |m| m.write8(off, v))
    }
    fn write16(&self, off: usize, v: u16) {
        self.write(off, |m| m.write16(off, v))
    }
    fn write32(&self, off: usize, v: u32) {
        self.write(off, |m| m.write32(off, v))
    }
    fn write64(&self, off: usize, v: u64) {
        // Aligned, so within one 16-byte entry.
        self.write(off, |m| m.write64(off, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hal::Hal;
    use core::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn masked_notify_pends_and_unmask_sends_the_new_message() {
        let hal = FakeHal::new(2);
        let hits = Arc::new(AtomicU64::new(0));
        let h = hits.clone();
        let msg = hal.alloc_msi(1, Box::new(move || _ = h.fetch_add(1, Ordering::Relaxed))).unwrap();
        let t = FakeMsix::new(hal.clone(), 0x1000, 4, 0x800);
        assert!(t.is_masked(0));
        assert!(!t.notify(0));
        assert!(t.is_pending(0));
        assert_eq!(t.read8(0x800), 1, "the PBA shows it");
        t.write32(0, msg.address as u32);
        t.write32(4, 0);
        t.write32(8, msg.data);
        assert_eq!(hits.load(Ordering::Relaxed), 0, "still masked");
        t.write32(12, 0);
        assert_eq!(hits.load(Ordering::Relaxed), 1, "sent at unmask");
        assert!(!t.is_pending(0));
        assert!(t.notify(0));
        assert_eq!(hits.load(Ordering::Relaxed), 2);
        assert_eq!(t.sent(0), 2);
        t.write32(0x800, 0xff);
        assert_eq!(t.read8(0x800), 0, "the PBA is read-only");
    }
}
