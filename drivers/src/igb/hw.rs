//! Device-level operations on the register BAR: the global reset, the
//! MAC address (receive address 0 as the NVM loaded it, else the NVM
//! itself through EERD), link bring-up (CTRL.SLU and a PHY
//! auto-negotiation restart over MDIC) and the link state, speed and
//! duplex from STATUS.
//!
//! Every wait is bounded by [`Hal::now_ns`]; a device that does not
//! answer is an [`Error::Timeout`], never a hang.

use arbalest_mac::{Duplex, LinkState, MacAddr};

use crate::error::Error;
use crate::hal::{Hal, Mmio};
use crate::pci::Bdf;

use super::regs::*;

/// How long the reset may take before the device is given up.
const RESET_TIMEOUT_US: u64 = 100_000;
/// Bus-master quiescing and NVM auto-read: waited for, never required.
const QUIESCE_TIMEOUT_US: u64 = 10_000;
const EERD_TIMEOUT_US: u64 = 10_000;
const MDIC_TIMEOUT_US: u64 = 10_000;

/// Polls `done` every 10 µs until it holds or `timeout_us` passed.
fn wait(hal: &dyn Hal, timeout_us: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = hal.now_ns().saturating_add(timeout_us * 1000);
    loop {
        if done() {
            return true;
        }
        if hal.now_ns() >= end {
            return done();
        }
        hal.delay_us(10);
    }
}

/// Masks every interrupt cause (extended and legacy) and clears pending
/// ones.
pub fn disable_interrupts(regs: &dyn Mmio) {
    regs.write32(EIMC, u32::MAX);
    regs.write32(IMC, u32::MAX);
    regs.write32(EIAC, 0);
    let _ = regs.read32(ICR);
    let _ = regs.read32(EICR);
}

/// Whether the device answers at all (a removed or dead device reads
/// all-ones).
pub fn present(regs: &dyn Mmio) -> bool {
    regs.read32(STATUS) != u32::MAX
}

/// The global reset (datasheet 4.3.1): stop DMA, set CTRL.RST, wait for it
/// to clear, wait for the NVM auto-read, and leave every interrupt masked.
/// All queues, filters and interrupt routing are back at their defaults.
pub fn reset(regs: &dyn Mmio, hal: &dyn Hal) -> Result<(), Error> {
    if !present(regs) {
        return Err(Error::Device);
    }
    disable_interrupts(regs);
    regs.write32(CTRL, regs.read32(CTRL) | CTRL_GIO_MASTER_DISABLE);
    wait(hal, QUIESCE_TIMEOUT_US, || regs.read32(STATUS) & STATUS_GIO_MASTER_ENABLE == 0);
    regs.write32(CTRL, regs.read32(CTRL) | CTRL_RST);
    hal.delay_us(1_000);
    if !wait(hal, RESET_TIMEOUT_US, || regs.read32(CTRL) & CTRL_RST == 0) {
        return Err(Error::Timeout);
    }
    wait(hal, QUIESCE_TIMEOUT_US, || regs.read32(EECD) & EECD_AUTO_RD != 0);
    disable_interrupts(regs);
    Ok(())
}

/// The address in receive address entry `n`, if valid.
pub fn read_rar(regs: &dyn Mmio, n: usize) -> Option<MacAddr> {
    let lo = regs.read32(ral(n));
    let hi = regs.read32(rah(n));
    if hi & RAH_AV == 0 {
        return None;
    }
    let l = lo.to_le_bytes();
    let h = hi.to_le_bytes();
    Some([l[0], l[1], l[2], l[3], h[0], h[1]])
}

/// RAL / RAH values for `addr` steered to the pools in `pools` (a bit
/// mask), valid.
pub fn rar_values(addr: MacAddr, pools: u8) -> (u32, u32) {
    let lo = u32::from_le_bytes([addr[0], addr[1], addr[2], addr[3]]);
    let hi = u16::from_le_bytes([addr[4], addr[5]]) as u32 | ((pools as u32) << RAH_POOLSEL_SHIFT) | RAH_AV;
    (lo, hi)
}

/// Reads NVM word `addr` through EERD.
pub fn read_nvm(regs: &dyn Mmio, hal: &dyn Hal, addr: u16) -> Option<u16> {
    regs.write32(EERD, ((addr as u32) << EERD_ADDR_SHIFT) | EERD_START);
    let mut v = 0;
    let ok = wait(hal, EERD_TIMEOUT_US, || {
        v = regs.read32(EERD);
        v & EERD_DONE != 0
    });
    ok.then_some((v >> EERD_DATA_SHIFT) as u16)
}

fn usable(a: &MacAddr) -> bool {
    *a != [0; 6] && *a != [0xff; 6] && a[0] & 1 == 0
}

/// The factory address: receive address 0 (which the NVM auto-read loads
/// at reset), else NVM words 0..2, else a locally administered address
/// derived from the PCI slot.
pub fn read_mac(regs: &dyn Mmio, hal: &dyn Hal, bdf: Bdf) -> MacAddr {
    if let Some(a) = read_rar(regs, 0).filter(usable) {
        return a;
    }
    let mut a = [0u8; 6];
    let mut ok = true;
    for w in 0..3 {
        match read_nvm(regs, hal, w as u16) {
            Some(v) => a[2 * w..2 * w + 2].copy_from_slice(&v.to_le_bytes()),
            None => ok = false,
        }
    }
    if ok && usable(&a) {
        return a;
    }
    [0x02, 0x1b, 0x21, bdf.bus, bdf.dev, bdf.func]
}

/// Writes PHY register `reg` through MDIC; false if the PHY did not
/// answer or reported an error.
pub fn phy_write(regs: &dyn Mmio, hal: &dyn Hal, reg: u32, v: u16) -> bool {
    regs.write32(MDIC, v as u32 | (reg << MDIC_REG_SHIFT) | (PHY_ADDR << MDIC_PHY_SHIFT) | MDIC_OP_WRITE);
    let mut m = 0;
    let ok = wait(hal, MDIC_TIMEOUT_US, || {
        m = regs.read32(MDIC);
        m & MDIC_READY != 0
    });
    ok && m & MDIC_ERROR == 0
}

/// Brings the link up: copper, auto-negotiated speed and duplex
/// (CTRL.SLU, no forced speed or duplex, link reset released), the driver
/// announced to the firmware, and a PHY auto-negotiation restart. The
/// link comes up later (QEMU: 500 ms of virtual time) and announces itself
/// with a link-status-change interrupt.
pub fn link_up(regs: &dyn Mmio, hal: &dyn Hal) {
    let ctrl = regs.read32(CTRL);
    regs.write32(CTRL, (ctrl | CTRL_SLU | CTRL_ASDE) & !(CTRL_FRCSPD | CTRL_FRCDPX | CTRL_LRST | CTRL_PHY_RST));
    regs.write32(CTRL_EXT, regs.read32(CTRL_EXT) | CTRL_EXT_DRV_LOAD);
    phy_write(regs, hal, PHY_BMCR, BMCR_AUTOEN | BMCR_ANRESTART | BMCR_SPEED1000 | BMCR_FD);
}

/// Link state from STATUS.LU (a dead device is down).
pub fn link_state(regs: &dyn Mmio) -> LinkState {
    match regs.read32(STATUS) {
        u32::MAX => LinkState::Down,
        s if s & STATUS_LU != 0 => LinkState::Up,
        _ => LinkState::Down,
    }
}

/// Speed in Mbit/s from STATUS (0 with the link down).
pub fn speed_mbps(regs: &dyn Mmio) -> u64 {
    let s = regs.read32(STATUS);
    if s == u32::MAX || s & STATUS_LU == 0 {
        return 0;
    }
    match (s & STATUS_SPEED_MASK) >> STATUS_SPEED_SHIFT {
        0 => 10,
        1 => 100,
        _ => 1000,
    }
}

/// Duplex from STATUS.FD.
pub fn duplex(regs: &dyn Mmio) -> Duplex {
    let s = regs.read32(STATUS);
    if s == u32::MAX || s & STATUS_LU == 0 {
        Duplex::Unknown
    } else if s & STATUS_FD != 0 {
        Duplex::Full
    } else {
        Duplex::Half
    }
}
