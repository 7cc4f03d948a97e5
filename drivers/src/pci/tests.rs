//! PCI tests over a fake configuration space.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::*;
use crate::hal::{Mmio, MsiMessage, PciConfigAccess};
use crate::testing::{FakeConfigSpace, FakeFunction, FakeHal, MemMmio};

fn space() -> FakeConfigSpace {
    let cfg = FakeConfigSpace::new();
    cfg.add(Bdf::new(0, 0, 0), FakeFunction::new(0x8086, 0x1237, 0x06, 0x00, 0x00).command(0x0103));
    let mut _at = 0;
    cfg.add(
        Bdf::new(0, 2, 0),
        FakeFunction::new(0x1af4, 0x1041, 0x02, 0x00, 0x00)
            .command(regs::CMD_MEMORY | regs::CMD_IO)
            .io_bar(0, 0xc040, 0x20)
            .mem_bar32(1, 0xfebd_1000, 0x1000, false)
            .mem_bar64(4, 0x8_0000_0000, 0x4000, true)
            .cap(regs::CAP_PCIE, &[0; 10], &mut _at),
    );
    // A multi-function device with functions 0 and 3.
    cfg.add(Bdf::new(0, 5, 0), FakeFunction::new(0x8086, 0x2934, 0x0c, 0x03, 0x00).header_type(0x80));
    cfg.add(Bdf::new(0, 5, 3), FakeFunction::new(0x8086, 0x2937, 0x0c, 0x03, 0x00));
    // Function 1 of a single-function device: must not be found.
    cfg.add(Bdf::new(0, 6, 0), FakeFunction::new(0x1234, 0x1111, 0x03, 0x00, 0x00));
    cfg.add(Bdf::new(0, 6, 1), FakeFunction::new(0x1234, 0x2222, 0x03, 0x00, 0x00));
    // A bridge and a device behind it.
    cfg.add(Bdf::new(0, 0x1e, 0), FakeFunction::new(0x8086, 0x244e, 0x06, 0x04, 0x00).header_type(0x01));
    cfg.add(Bdf::new(1, 0, 0), FakeFunction::new(0x8086, 0x10c9, 0x02, 0x00, 0x00));
    cfg
}

#[test]
fn bdf_display() {
    assert_eq!(Bdf::new(0, 2, 0).to_string(), "00:02.0");
    assert_eq!(Bdf::new(0xab, 0x1f, 7).to_string(), "ab:1f.7");
    assert_eq!(Bdf::new(1, 2, 3).ecam_offset(), (1 << 20) | (2 << 15) | (3 << 12));
}

#[test]
fn enumeration_finds_functions_and_bridges() {
    let cfg = space();
    let devs = enumerate(&cfg, 0..=255);
    let bdfs: Vec<String> = devs.iter().map(|d| d.bdf.to_string()).collect();
    assert_eq!(bdfs, ["00:00.0", "00:02.0", "00:05.0", "00:05.3", "00:06.0", "00:1e.0", "01:00.0"]);
    let bridge = devs.iter().find(|d| d.bdf == Bdf::new(0, 0x1e, 0)).unwrap();
    assert!(bridge.is_bridge());
    assert!(devs[2].is_multifunction());
    let nic = &devs[1];
    assert_eq!((nic.vendor, nic.device, nic.class, nic.subclass), (0x1af4, 0x1041, 2, 0));
    assert_eq!(nic.irq_line, 11);
}

#[test]
fn bar_sizing_decodes_and_restores() {
    let cfg = space();
    let bdf = Bdf::new(0, 2, 0);
    let before: Vec<u32> = (0..6).map(|i| cfg.peek32(bdf, regs::BAR0 + 4 * i)).collect();
    let dev = PciDevice::read(&cfg, bdf);
    assert_eq!(dev.bars[0], Bar::Io { port: 0xc040, size: 0x20 });
    assert_eq!(dev.bars[1], Bar::Memory { addr: 0xfebd_1000, size: 0x1000, prefetchable: false, bits64: false });
    assert_eq!(dev.bars[2], Bar::None);
    assert_eq!(dev.bars[4], Bar::Memory { addr: 0x8_0000_0000, size: 0x4000, prefetchable: true, bits64: true });
    assert_eq!(dev.bars[5], Bar::None);
    let after: Vec<u32> = (0..6).map(|i| cfg.peek32(bdf, regs::BAR0 + 4 * i)).collect();
    assert_eq!(before, after);
    // Decode was off while sizing, and is back on.
    let cmds: Vec<u32> = cfg.writes.lock().iter().filter(|w| w.0 == bdf && w.1 == regs::COMMAND).map(|w| w.2).collect();
    assert_eq!(cmds.first().map(|c| c & 3), Some(0));
    assert_eq!(cfg.read16(bdf, regs::COMMAND) & 3, 3);
    // The host bridge is never quiesced.
    let _ = PciDevice::read(&cfg, Bdf::new(0, 0, 0));
    assert!(!cfg.writes.lock().iter().any(|w| w.0 == Bdf::new(0, 0, 0) && w.1 == regs::COMMAND));
}

#[test]
fn enable_sets_memory_and_bus_master() {
    let cfg = space();
    let bdf = Bdf::new(0, 2, 0);
    enable_device(&cfg, bdf, false);
    let cmd = cfg.read16(bdf, regs::COMMAND);
    assert_eq!(cmd & (regs::CMD_MEMORY | regs::CMD_BUS_MASTER), regs::CMD_MEMORY | regs::CMD_BUS_MASTER);
    disable_intx(&cfg, bdf);
    assert_ne!(cfg.read16(bdf, regs::COMMAND) & regs::CMD_INTX_DISABLE, 0);
}

#[test]
fn capability_walk_and_loop_guard() {
    let cfg = FakeConfigSpace::new();
    let (mut a, mut b, mut c) = (0, 0, 0);
    let f = FakeFunction::new(1, 2, 2, 0, 0)
        .cap(regs::CAP_VENDOR, &[14, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &mut a)
        .cap(regs::CAP_MSIX, &[0; 10], &mut b)
        .cap(regs::CAP_VENDOR, &[14, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &mut c);
    let bdf = Bdf::new(0, 3, 0);
    cfg.add(bdf, f);
    let caps: Vec<Capability> = capabilities(&cfg, bdf).collect();
    assert_eq!(caps.len(), 3);
    assert_eq!(caps[1], Capability { id: regs::CAP_MSIX, offset: b });
    assert_eq!(find_capability(&cfg, bdf, regs::CAP_MSIX), Some(b));
    assert_eq!(find_capability(&cfg, bdf, regs::CAP_VENDOR), Some(a));
    assert_eq!(find_capability(&cfg, bdf, regs::CAP_MSI), None);
    // A list pointing back at itself ends after the budget.
    let mut w = cfg.read32(bdf, c as u16);
    w = (w & !0xff00) | ((a as u32) << 8);
    cfg.write32(bdf, c as u16, w);
    assert_eq!(capabilities(&cfg, bdf).count(), 48);
    // No list bit: no capabilities.
    cfg.add(Bdf::new(0, 4, 0), FakeFunction::new(1, 2, 2, 0, 0));
    assert_eq!(capabilities(&cfg, Bdf::new(0, 4, 0)).count(), 0);
}

#[test]
fn msix_table_programming() {
    let cfg = FakeConfigSpace::new();
    let bdf = Bdf::new(0, 3, 0);
    let mut at = 0;
    // 5 vectors; table in BAR 1 at 0x0, PBA in BAR 1 at 0x800.
    let body = [4u8, 0, 0x01, 0, 0, 0, 0x01, 0x08, 0, 0];
    cfg.add(bdf, FakeFunction::new(0x1af4, 0x1041, 2, 0, 0).mem_bar32(1, 0xfebd_1000, 0x1000, false).cap(regs::CAP_MSIX, &body, &mut at));
    let dev = PciDevice::read(&cfg, bdf);
    let cap = MsixCap::read(&cfg, bdf).unwrap();
    assert_eq!(cap.table_size, 5);
    assert_eq!((cap.table_bar, cap.table_offset, cap.pba_bar, cap.pba_offset), (1, 0, 1, 0x800));
    assert_eq!(cap.table_paddr(&dev.bars), Some(0xfebd_1000));

    let hal = FakeHal::new(2);
    let mem = Arc::new(MemMmio::new(0x1000));
    hal.add_region(0xfebd_1000, 0x1000, mem.clone());
    let table = MsixTable::map(&*hal, &cap, &dev.bars).unwrap();
    table.mask_all();
    assert!((0..5).all(|i| table.is_masked(i)));
    let msg = MsiMessage { address: 0xfee0_1000, data: 0x41, cpu: 1, vector: 0x41 };
    assert!(table.program(3, &msg));
    assert!(!table.program(5, &msg));
    assert_eq!(table.entry(3), (0xfee0_1000, 0x41));
    assert!(!table.is_masked(3));
    assert!(table.is_masked(2));
    assert_eq!(mem.read32(3 * 16 + 8), 0x41);
    table.mask(3);
    assert!(table.is_masked(3));

    cfg.write32(bdf, regs::COMMAND, 0);
    cap.enable(&cfg, bdf);
    let ctrl = cfg.read16(bdf, at as u16 + 2);
    assert_eq!(ctrl & 0xc000, 0x8000, "enabled, function mask clear");
    assert!(cap.is_enabled(&cfg, bdf));
    assert_ne!(cfg.read16(bdf, regs::COMMAND) & regs::CMD_INTX_DISABLE, 0);
    cap.disable(&cfg, bdf);
    assert!(!cap.is_enabled(&cfg, bdf));
}

#[test]
fn scanpci_lines() {
    let cfg = space();
    let devs = enumerate(&cfg, 0..=1);
    let mut out = String::new();
    let drv = |d: &PciDevice| (d.vendor == 0x1af4).then(|| "vioif0".to_string());
    scanpci(&devs, &drv, &mut out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "00:00.0 8086:1237 class 06.00.00 (Host bridge) driver -");
    assert_eq!(lines[1], "00:02.0 1af4:1041 class 02.00.00 (Ethernet controller) driver vioif0");
    assert_eq!(lines[5], "00:1e.0 8086:244e class 06.04.00 (PCI bridge) driver -");
    assert_eq!(lines.len(), 7);
}
