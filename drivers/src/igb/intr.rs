//! Interrupts: MSI-X with one vector per queue pair and one for the
//! "other" causes, each bound to a CPU through `Hal::alloc_msi`.
//!
//! ```text
//! MSI-X entry i (0..pairs)   Rx queue i + Tx queue i (IVAR)   CPU i % cpus
//! MSI-X entry pairs          other causes: link status change,
//!                            Rx overrun, DMA out of sync (IVAR_MISC)   CPU 0
//! ```
//!
//! A queue pair's CPU can be changed at run time (`RxRing::set_cpu`,
//! [`super::Igb::move_pair`]): IVAR and EIMS stay as they are, only the
//! entry's message changes; [`catch_up`] then serves what a message lost
//! on the old vector would have.
//!
//! GPIE selects MSI-X mode (one EICR bit per vector), with EIAC
//! auto-clearing a vector's cause bit when its message is sent and EIAM
//! (GPIE.EIAME) auto-masking it; EITR limits each vector's rate.
//!
//! A queue pair's vector is wanted by two parties, tracked in
//! [`QueueVector`]: the Rx ring while it is in interrupt mode (the MAC
//! layer's `intr_enable` / `intr_disable`, the dynamic-polling hook) and
//! the Tx ring while it refused packets and waits for completions. Its
//! EIMS bit is set exactly when one of them wants it. The handler *claims*
//! what it serves (so `intr_enable` and the handler never both report the
//! same packets), takes no lock, and checks the descriptor rings before
//! calling up: a Tx completion does not wake a polling-mode Rx lane, nor an
//! Rx frame a ring that is not blocked.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU8, Ordering};

use arbalest_mac::{LinkState, MacUpcalls};

use crate::hal::{IrqHandler, Mmio};

use super::hw;
use super::regs::*;
use super::rx::IgbRxRing;
use super::tx::IgbTxRing;
use super::{Shared, link_code};

/// The Rx ring wants its interrupt.
pub const WANT_RX: u8 = 1;
/// The Tx ring waits for completions.
pub const WANT_TX: u8 = 2;

/// "Other" causes routed to the last vector.
pub const OTHER_CAUSES: u32 = ICR_LSC | ICR_RXO | ICR_DOUTSYNC;

/// MSI-X entry of queue pair `i`.
pub fn pair_entry(i: usize) -> u16 {
    i as u16
}

/// MSI-X entry of the other causes.
pub fn other_entry(pairs: usize) -> u16 {
    pairs as u16
}

/// Vectors a device with `pairs` queue pairs uses.
pub fn vectors_needed(pairs: usize) -> usize {
    pairs + 1
}

/// EITR for at most `per_sec` interrupts a second (0: no moderation).
pub fn eitr_value(per_sec: u32) -> u32 {
    if per_sec == 0 {
        return EITR_CNT_IGNR;
    }
    let us = (1_000_000 / per_sec).clamp(1, EITR_INTERVAL_MASK >> EITR_INTERVAL_SHIFT);
    ((us << EITR_INTERVAL_SHIFT) & EITR_INTERVAL_MASK) | EITR_CNT_IGNR
}

/// IVAR register values mapping Rx and Tx queue `i` to vector `i` for
/// `i` in `0..pairs`: `IVAR[n]` holds Rx n, Tx n, Rx n+8, Tx n+8, a byte
/// each (vector | valid).
pub fn ivar_values(pairs: usize) -> [u32; 8] {
    let mut v = [0u32; 8];
    for q in 0..pairs.min(NUM_QUEUES) {
        let byte = (IVAR_VALID | q as u8) as u32;
        let shift = if q < 8 { 0 } else { 16 };
        v[q % 8] |= (byte << shift) | (byte << (shift + 8));
    }
    v
}

/// Programs MSI-X mode and the cause-to-vector routing (everything left
/// masked: EIMS is the rings' business).
pub fn program(regs: &dyn Mmio, pairs: usize, per_sec: u32) {
    regs.write32(GPIE, GPIE_MSIX_MODE | GPIE_PBA | GPIE_EIAME | GPIE_NSICR);
    for (n, v) in ivar_values(pairs).iter().enumerate() {
        regs.write32(ivar(n), *v);
    }
    let other = other_entry(pairs) as u32;
    regs.write32(IVAR_MISC, ((IVAR_VALID as u32) | other) << 8);
    let all = (1u32 << vectors_needed(pairs)) - 1;
    regs.write32(EIAC, all);
    regs.write32(EIAM, all);
    for v in 0..vectors_needed(pairs) {
        regs.write32(eitr(v), eitr_value(per_sec));
    }
}

/// Unmasks the other causes (and their vector).
pub fn enable_other(regs: &dyn Mmio, pairs: usize) {
    regs.write32(IMS, OTHER_CAUSES);
    regs.write32(EIMS, 1 << other_entry(pairs));
}

/// Who wants a queue pair's vector, and its EIMS bit kept in step.
pub struct QueueVector {
    bit: u32,
    want: AtomicU8,
    regs: Arc<dyn Mmio>,
}

impl QueueVector {
    pub fn new(index: usize, regs: Arc<dyn Mmio>) -> QueueVector {
        QueueVector { bit: 1 << index, want: AtomicU8::new(0), regs }
    }

    /// Whether `w` currently wants the vector.
    pub fn wants(&self, w: u8) -> bool {
        self.want.load(Ordering::Acquire) & w != 0
    }

    /// `w` wants the vector: unmask it.
    pub fn arm(&self, w: u8) {
        self.want.fetch_or(w, Ordering::AcqRel);
        self.sync();
    }

    /// `w` no longer wants the vector: mask it unless the other party does.
    pub fn disarm(&self, w: u8) {
        self.want.fetch_and(!w, Ordering::AcqRel);
        self.sync();
    }

    /// Takes `w`'s interest if present (the caller now serves that event);
    /// no register write: call [`QueueVector::sync`] after.
    pub fn claim(&self, w: u8) -> bool {
        self.want.fetch_and(!w, Ordering::AcqRel) & w != 0
    }

    /// Sets the interest without touching the device (bring-up).
    pub fn set(&self, w: u8) {
        self.want.store(w, Ordering::Release);
    }

    /// Writes EIMS or EIMC to match the interest. Every writer re-reads
    /// the interest after its write and writes again if it changed, so the
    /// last write always matches the last change.
    pub fn sync(&self) {
        loop {
            let w = self.want.load(Ordering::Acquire);
            self.regs.write32(if w != 0 { EIMS } else { EIMC }, self.bit);
            if self.want.load(Ordering::Acquire) == w {
                return;
            }
        }
    }
}

/// Serves what queue pair `rx.index`'s vector is wanted for and is ready
/// (each party claimed first, so no one else serves it too); true if
/// anything was. The caller re-arms with `sync`.
fn serve(rx: &IgbRxRing, tx: &IgbTxRing, up: &dyn MacUpcalls) -> bool {
    let v = &rx.vector;
    let mut served = false;
    if v.wants(WANT_RX) && rx.pending() && v.claim(WANT_RX) {
        rx.interrupt(up);
        served = true;
    }
    if v.wants(WANT_TX) && tx.completions_pending() && v.claim(WANT_TX) {
        tx.interrupt(up);
        served = true;
    }
    served
}

/// The handler of queue pair `rx.index`: serve what is wanted and ready,
/// then re-arm what is still wanted.
pub fn pair_handler(rx: Arc<IgbRxRing>, tx: Arc<IgbTxRing>, up: Arc<dyn MacUpcalls>) -> IrqHandler {
    Box::new(move || {
        if !serve(&rx, &tx, &*up) {
            rx.shared.spurious_interrupts.fetch_add(1, Ordering::Relaxed);
        }
        rx.vector.sync();
    })
}

/// After queue pair `rx.index`'s vector moved: does what its handler
/// would for a message that reached the old vector after it was freed
/// (and so ran no handler) — serves what is wanted and ready, and writes
/// EIMS again, undoing the auto-mask (EIAM) such a message left. At worst
/// a duplicate upcall; nothing counted as spurious.
pub fn catch_up(rx: &IgbRxRing, tx: &IgbTxRing, up: &dyn MacUpcalls) {
    serve(rx, tx, up);
    rx.vector.sync();
}

/// The other causes: read (and so clear) ICR, report link changes, count
/// overruns, and hand a DMA fault to ring 0's poll path (`rx_ready(0)`),
/// which resets the device in thread context.
pub fn other_handler(regs: Arc<dyn Mmio>, pairs: usize, shared: Arc<Shared>, up: Arc<dyn MacUpcalls>) -> IrqHandler {
    Box::new(move || {
        shared.other_interrupts.fetch_add(1, Ordering::Relaxed);
        let icr = regs.read32(ICR);
        if icr == u32::MAX {
            return; // the device is gone: stay masked
        }
        if icr & ICR_RXO != 0 {
            shared.rx_overruns.fetch_add(1, Ordering::Relaxed);
        }
        if icr & ICR_DOUTSYNC != 0 && !shared.needs_reset.swap(true, Ordering::AcqRel) {
            up.rx_ready(0);
        }
        if icr & ICR_LSC != 0 {
            let link: LinkState = hw::link_state(&*regs);
            let old = shared.link.swap(link_code(link), Ordering::AcqRel);
            if old != link_code(link) {
                shared.link_changes.fetch_add(1, Ordering::Relaxed);
                up.link_changed(link);
            }
        }
        regs.write32(EIMS, 1 << other_entry(pairs));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivar_layout() {
        let v = ivar_values(2);
        assert_eq!(v[0], 0x8080);
        assert_eq!(v[1], 0x8181);
        assert_eq!(v[2], 0);
        let v = ivar_values(9);
        assert_eq!(v[0], 0x8888_8080, "queue 8 in the high half of IVAR0");
        assert_eq!(v[7], 0x8787);
    }

    #[test]
    fn moderation() {
        assert_eq!(eitr_value(8000), (125 << 2) | EITR_CNT_IGNR);
        assert_eq!(eitr_value(0), EITR_CNT_IGNR);
        assert_eq!(eitr_value(1), (0x1fff << 2) | EITR_CNT_IGNR, "clamped to the field");
        assert_eq!(eitr_value(u32::MAX), (1 << 2) | EITR_CNT_IGNR);
    }
}
