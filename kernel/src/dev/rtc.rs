//! The CMOS real-time clock: read once at boot to anchor wall-clock time.

use crate::arch::port::{inb, outb};
use crate::walltime::{CmosRegs, RtcTime};

fn cmos(reg: u8) -> u8 {
    outb(0x70, reg | 0x80); // keep NMIs disabled bit set as firmware leaves it
    inb(0x71)
}

fn snapshot(century_reg: u8) -> [u8; 8] {
    [cmos(0x00), cmos(0x02), cmos(0x04), cmos(0x07), cmos(0x08), cmos(0x09), cmos(0x0b), if century_reg != 0 { cmos(century_reg) } else { 0 }]
}

/// Reads the RTC as Unix time (seconds; 0 if the clock reads nonsense), waiting out an update in progress
/// and re-reading until two reads agree.
pub fn read_unix(century_reg: u8) -> u64 {
    let mut last = [0xffu8; 8];
    for _ in 0..100 {
        let mut spins = 0;
        while cmos(0x0a) & 0x80 != 0 && spins < 1_000_000 {
            spins += 1;
        }
        let s = snapshot(century_reg);
        if s == last {
            break;
        }
        last = s;
    }
    let regs = CmosRegs {
        sec: last[0],
        min: last[1],
        hour: last[2],
        day: last[3],
        month: last[4],
        year: last[5],
        status_b: last[6],
        century: if century_reg != 0 { Some(last[7]) } else { None },
    };
    RtcTime::from_cmos(&regs).map(|t| crate::walltime::to_unix(&t)).unwrap_or(0)
}
