//! The `scanpci` listing: one line per function,
//! `00:02.0 1af4:1041 class 02.00.00 (Ethernet controller) driver vioif0`.

use alloc::string::String;
use core::fmt::Write;

use super::class::class_name;
use super::device::PciDevice;

/// Prints `devs`, asking `driver_of` which driver instance (if any) is
/// bound to each (`driver -` when none).
pub fn scanpci(devs: &[PciDevice], driver_of: &dyn Fn(&PciDevice) -> Option<String>, out: &mut dyn Write) -> core::fmt::Result {
    for d in devs {
        write!(out, "{} {:04x}:{:04x} class {:02x}.{:02x}.{:02x}", d.bdf, d.vendor, d.device, d.class, d.subclass, d.prog_if)?;
        if let Some(name) = class_name(d.class, d.subclass, d.prog_if) {
            write!(out, " ({name})")?;
        }
        match driver_of(d) {
            Some(drv) => writeln!(out, " driver {drv}")?,
            None => writeln!(out, " driver -")?,
        }
    }
    Ok(())
}
