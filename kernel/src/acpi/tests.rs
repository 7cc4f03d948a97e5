//! Parser tests against synthetic table images.

use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// Sparse physical memory: a few byte regions.
#[derive(Default)]
struct Mem {
    regions: Vec<(u64, Vec<u8>)>,
}

impl Mem {
    fn put(&mut self, paddr: u64, bytes: Vec<u8>) {
        self.regions.push((paddr, bytes));
    }
}

impl PhysMem for Mem {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> bool {
        for (base, bytes) in &self.regions {
            let Some(off) = paddr.checked_sub(*base) else {
                continue;
            };
            let off = off as usize;
            if let Some(src) = bytes.get(off..off + buf.len()) {
                buf.copy_from_slice(src);
                return true;
            }
        }
        false
    }
}

fn fix_checksum(bytes: &mut [u8], at: usize) {
    bytes[at] = 0;
    let sum = bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    bytes[at] = 0u8.wrapping_sub(sum);
}

fn table(sig: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 36];
    t[..4].copy_from_slice(sig);
    t[4..8].copy_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    t[8] = revision;
    t[10..16].copy_from_slice(b"ARBLST");
    t.extend_from_slice(body);
    fix_checksum(&mut t, 9);
    t
}

fn rsdp_v1(rsdt: u32) -> Vec<u8> {
    let mut r = vec![0u8; 20];
    r[..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(b"BOCHS ");
    r[16..20].copy_from_slice(&rsdt.to_le_bytes());
    fix_checksum(&mut r, 8);
    r
}

fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = vec![0u8; 36];
    r[..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(b"BOCHS ");
    r[15] = 2;
    r[16..20].copy_from_slice(&rsdt.to_le_bytes());
    r[20..24].copy_from_slice(&36u32.to_le_bytes());
    r[24..32].copy_from_slice(&xsdt.to_le_bytes());
    fix_checksum(&mut r[..20], 8);
    fix_checksum(&mut r, 32);
    r
}

fn xsdt(addrs: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = addrs.iter().flat_map(|a| a.to_le_bytes()).collect();
    table(b"XSDT", 1, &body)
}

fn rsdt(addrs: &[u32]) -> Vec<u8> {
    let body: Vec<u8> = addrs.iter().flat_map(|a| a.to_le_bytes()).collect();
    table(b"RSDT", 1, &body)
}

fn madt(lapic: u32, flags: u32, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&lapic.to_le_bytes());
    body.extend_from_slice(&flags.to_le_bytes());
    for e in entries {
        body.extend_from_slice(e);
    }
    table(b"APIC", 4, &body)
}

fn e_lapic(uid: u8, id: u8, flags: u32) -> Vec<u8> {
    let mut e = vec![0, 8, uid, id];
    e.extend_from_slice(&flags.to_le_bytes());
    e
}

fn e_x2apic(id: u32, flags: u32, uid: u32) -> Vec<u8> {
    let mut e = vec![9, 16, 0, 0];
    e.extend_from_slice(&id.to_le_bytes());
    e.extend_from_slice(&flags.to_le_bytes());
    e.extend_from_slice(&uid.to_le_bytes());
    e
}

fn e_ioapic(id: u8, addr: u32, gsi_base: u32) -> Vec<u8> {
    let mut e = vec![1, 12, id, 0];
    e.extend_from_slice(&addr.to_le_bytes());
    e.extend_from_slice(&gsi_base.to_le_bytes());
    e
}

fn e_iso(irq: u8, gsi: u32, flags: u16) -> Vec<u8> {
    let mut e = vec![2, 10, 0, irq];
    e.extend_from_slice(&gsi.to_le_bytes());
    e.extend_from_slice(&flags.to_le_bytes());
    e
}

fn e_nmi_source(flags: u16, gsi: u32) -> Vec<u8> {
    let mut e = vec![3, 8];
    e.extend_from_slice(&flags.to_le_bytes());
    e.extend_from_slice(&gsi.to_le_bytes());
    e
}

fn e_lapic_nmi(uid: u8, flags: u16, lint: u8) -> Vec<u8> {
    let mut e = vec![4, 6, uid];
    e.extend_from_slice(&flags.to_le_bytes());
    e.push(lint);
    e
}

fn e_x2apic_nmi(flags: u16, uid: u32, lint: u8) -> Vec<u8> {
    let mut e = vec![10, 12];
    e.extend_from_slice(&flags.to_le_bytes());
    e.extend_from_slice(&uid.to_le_bytes());
    e.extend_from_slice(&[lint, 0, 0, 0]);
    e
}

fn e_lapic_addr(addr: u64) -> Vec<u8> {
    let mut e = vec![5, 12, 0, 0];
    e.extend_from_slice(&addr.to_le_bytes());
    e
}

fn mcfg(entries: &[(u64, u16, u8, u8)]) -> Vec<u8> {
    let mut body = vec![0u8; 8];
    for &(base, seg, start, end) in entries {
        body.extend_from_slice(&base.to_le_bytes());
        body.extend_from_slice(&seg.to_le_bytes());
        body.extend_from_slice(&[start, end, 0, 0, 0, 0]);
    }
    table(b"MCFG", 1, &body)
}

fn hpet(space: u8, base: u64, min_tick: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x8086_a201u32.to_le_bytes()); // 3 comparators
    body.extend_from_slice(&[space, 64, 0, 0]);
    body.extend_from_slice(&base.to_le_bytes());
    body.push(0); // number
    body.extend_from_slice(&min_tick.to_le_bytes());
    body.push(0);
    table(b"HPET", 1, &body)
}

/// A FADT of `len` bytes with the fields the parser reads.
struct Fadt {
    len: usize,
    pm_tmr_blk: u32,
    x_pm_tmr: Option<(u8, u64)>,
    flags: u32,
    century: u8,
    sci: u16,
    reset: Option<(u8, u64, u8)>,
    dsdt: u32,
    x_dsdt: u64,
}

impl Default for Fadt {
    fn default() -> Self {
        Fadt {
            len: 244,
            pm_tmr_blk: 0x608,
            x_pm_tmr: None,
            flags: 1 << 8,
            century: 0x32,
            sci: 9,
            reset: None,
            dsdt: 0x9000,
            x_dsdt: 0,
        }
    }
}

impl Fadt {
    fn build(&self) -> Vec<u8> {
        let mut t = vec![0u8; self.len];
        let mut put = |off: usize, bytes: &[u8]| {
            if off + bytes.len() <= t.len() {
                t[off..off + bytes.len()].copy_from_slice(bytes);
            }
        };
        put(40, &self.dsdt.to_le_bytes());
        put(46, &self.sci.to_le_bytes());
        put(76, &self.pm_tmr_blk.to_le_bytes());
        put(91, &[4]);
        put(108, &[self.century]);
        put(112, &self.flags.to_le_bytes());
        if let Some((space, addr, value)) = self.reset {
            put(116, &[space, 8, 0, 1]);
            put(120, &addr.to_le_bytes());
            put(128, &[value]);
        }
        put(140, &self.x_dsdt.to_le_bytes());
        if let Some((space, addr)) = self.x_pm_tmr {
            put(208, &[space, 32, 0, 3]);
            put(212, &addr.to_le_bytes());
        }
        table(b"FACP", 3, &t[36..])
    }
}

const RSDP: u64 = 0xe0000;
const XSDT: u64 = 0x10000;
const RSDT: u64 = 0x11000;
const MADT: u64 = 0x12000;
const MCFG: u64 = 0x13000;
const HPET: u64 = 0x14000;
const FACP: u64 = 0x15000;

fn qemu_madt() -> Vec<u8> {
    madt(
        0xfee0_0000,
        1,
        &[
            e_lapic(0, 0, 1),
            e_lapic(1, 1, 1),
            e_lapic(2, 2, 0b10), // hot-pluggable
            e_lapic(3, 3, 0),    // not usable
            e_ioapic(0, 0xfec0_0000, 0),
            e_iso(0, 2, 0),
            e_iso(5, 5, 0x000d),
            e_iso(9, 9, 0x000d),
            e_iso(10, 10, 0x000d),
            e_iso(11, 11, 0x000f),
            e_lapic_nmi(0xff, 0, 1),
            e_nmi_source(0x000d, 23),
        ],
    )
}

/// A QEMU-like machine: RSDP v2, XSDT and RSDT, MADT, MCFG, HPET, FADT.
fn machine() -> Mem {
    let mut m = Mem::default();
    m.put(RSDP, rsdp_v2(RSDT as u32, XSDT));
    m.put(XSDT, xsdt(&[FACP, MADT, MCFG, HPET]));
    m.put(RSDT, rsdt(&[FACP as u32, MADT as u32]));
    m.put(MADT, qemu_madt());
    m.put(MCFG, mcfg(&[(0xb000_0000, 0, 0, 255)]));
    m.put(HPET, hpet(0, 0xfed0_0000, 0x80));
    m.put(FACP, Fadt::default().build());
    m
}

/// Replaces the region at `paddr`.
fn replace(m: &mut Mem, paddr: u64, bytes: Vec<u8>) {
    m.regions.retain(|(b, _)| *b != paddr);
    m.put(paddr, bytes);
}

#[test]
fn full_machine() {
    let info = parse(RSDP, &machine()).unwrap();
    assert_eq!(info.rsdp.revision, 2);
    assert_eq!(&info.rsdp.oem_id, b"BOCHS ");
    assert_eq!(info.root, Signature(*b"XSDT"));
    assert!(info.skipped.is_empty(), "{:?}", info.skipped);
    let sigs: Vec<_> = info.tables.iter().map(|t| t.signature.0).collect();
    assert_eq!(sigs, vec![*b"XSDT", *b"FACP", *b"APIC", *b"MCFG", *b"HPET"]);
    assert!(info.has_table(b"HPET"));
    assert!(!info.has_table(b"SRAT"));

    assert_eq!(info.local_apic_addr, 0xfee0_0000);
    assert!(info.pcat_compat);
    assert_eq!(info.cpus.len(), 4);
    assert_eq!(
        info.cpus[2],
        Cpu {
            uid: 2,
            apic_id: 2,
            enabled: false,
            online_capable: true
        }
    );
    let usable: Vec<u32> = info.usable_cpus().map(|c| c.apic_id).collect();
    assert_eq!(usable, vec![0, 1, 2]);
    assert_eq!(
        info.ioapics,
        vec![IoApic {
            id: 0,
            addr: 0xfec0_0000,
            gsi_base: 0
        }]
    );
    assert_eq!(info.overrides.len(), 5);
    assert_eq!(
        info.lapic_nmis,
        vec![LapicNmi {
            uid: None,
            lint: 1,
            polarity_low: false,
            level: false
        }]
    );
    assert_eq!(
        info.nmi_sources,
        vec![NmiSource {
            gsi: 23,
            polarity_low: false,
            level: true
        }]
    );

    assert_eq!(
        info.mcfg,
        vec![Ecam {
            base: 0xb000_0000,
            segment: 0,
            bus_start: 0,
            bus_end: 255
        }]
    );
    assert_eq!(
        info.hpet,
        Some(Hpet {
            base: 0xfed0_0000,
            min_tick: 0x80,
            number: 0,
            comparators: 3
        })
    );
    assert_eq!(
        info.pm_timer,
        Some(PmTimer {
            port: 0x608,
            ext_32bit: true
        })
    );
    assert_eq!(info.century_reg, 0x32);
    assert_eq!(info.sci_irq, Some(9));
    assert_eq!(info.dsdt, Some(0x9000));
    assert_eq!(info.reset, None);
}

#[test]
fn irq_to_gsi_applies_overrides() {
    let info = parse(RSDP, &machine()).unwrap();
    assert_eq!(info.irq_to_gsi(0), (2, false, false)); // timer on pin 2
    assert_eq!(info.irq_to_gsi(1), (1, false, false)); // identity
    assert_eq!(info.irq_to_gsi(4), (4, false, false));
    assert_eq!(info.irq_to_gsi(9), (9, false, true)); // SCI: high, level (0xd)
    assert_eq!(info.irq_to_gsi(11), (11, true, true)); // 0xf: low, level
    assert_eq!(info.irq_to_gsi(255), (255, false, false));
    assert_eq!(info.ioapic_for_gsi(9).map(|io| io.id), Some(0));
}

#[test]
fn inti_flag_decoding() {
    use super::madt::decode_inti;
    assert_eq!(decode_inti(0b0000), (false, false)); // conforms: ISA high, edge
    assert_eq!(decode_inti(0b0001), (false, false)); // high
    assert_eq!(decode_inti(0b0011), (true, false)); // low
    assert_eq!(decode_inti(0b0100), (false, false)); // edge
    assert_eq!(decode_inti(0b1100), (false, true)); // level
    assert_eq!(decode_inti(0b1111), (true, true));
    assert_eq!(decode_inti(0b1010), (false, false)); // reserved values → default
}

#[test]
fn rsdp_v1_uses_rsdt() {
    let mut m = machine();
    replace(&mut m, RSDP, rsdp_v1(RSDT as u32));
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(info.rsdp.revision, 0);
    assert_eq!(info.rsdp.xsdt, None);
    assert_eq!(info.root, Signature(*b"RSDT"));
    let sigs: Vec<_> = info.tables.iter().map(|t| t.signature.0).collect();
    assert_eq!(sigs, vec![*b"RSDT", *b"FACP", *b"APIC"]);
    assert_eq!(info.cpus.len(), 4);
    assert_eq!(info.hpet, None);
    assert!(info.mcfg.is_empty());
}

#[test]
fn rsdp_errors() {
    let m = machine();
    assert_eq!(parse(0x1234_5678, &m), Err(AcpiError::RsdpUnreadable));
    assert_eq!(parse(XSDT, &m), Err(AcpiError::BadRsdpSignature));

    let mut bad = rsdp_v2(RSDT as u32, XSDT);
    bad[8] ^= 1; // v1 checksum
    let mut m = machine();
    replace(&mut m, RSDP, bad);
    assert_eq!(parse(RSDP, &m), Err(AcpiError::BadRsdpChecksum));

    let mut bad = rsdp_v2(RSDT as u32, XSDT);
    bad[32] ^= 1; // extended checksum
    replace(&mut m, RSDP, bad);
    assert_eq!(parse(RSDP, &m), Err(AcpiError::BadRsdpChecksum));

    let mut bad = rsdp_v2(RSDT as u32, XSDT);
    bad[20] = 20; // length below the v2 size
    fix_checksum(&mut bad, 32);
    replace(&mut m, RSDP, bad);
    assert_eq!(parse(RSDP, &m), Err(AcpiError::BadRsdpChecksum));

    // A v2 RSDP whose tail is not readable.
    replace(&mut m, RSDP, rsdp_v2(RSDT as u32, XSDT)[..20].to_vec());
    assert_eq!(parse(RSDP, &m), Err(AcpiError::RsdpUnreadable));

    replace(&mut m, RSDP, rsdp_v1(0));
    assert_eq!(parse(RSDP, &m), Err(AcpiError::NoRootTable));
}

#[test]
fn bad_xsdt_falls_back_to_rsdt() {
    let mut m = machine();
    let mut x = xsdt(&[FACP, MADT, MCFG, HPET]);
    x[9] ^= 0x55;
    replace(&mut m, XSDT, x);
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(info.root, Signature(*b"RSDT"));
    assert_eq!(
        info.skipped,
        vec![Skipped {
            signature: Signature(*b"XSDT"),
            paddr: XSDT,
            reason: SkipReason::BadChecksum
        }]
    );
    assert_eq!(info.cpus.len(), 4);
}

#[test]
fn root_failures_are_fatal() {
    let mut m = machine();
    let mut r = rsdt(&[FACP as u32]);
    r[9] ^= 1;
    replace(&mut m, RSDT, r);
    replace(&mut m, XSDT, table(b"XSDX", 1, &[]));
    assert_eq!(
        parse(RSDP, &m),
        Err(AcpiError::BadRootTable(SkipReason::BadChecksum))
    );

    let mut m = machine();
    replace(&mut m, RSDP, rsdp_v1(0xdead_0000));
    assert_eq!(
        parse(RSDP, &m),
        Err(AcpiError::BadRootTable(SkipReason::Unreadable))
    );

    let mut m = machine();
    replace(&mut m, RSDP, rsdp_v1(MADT as u32)); // points at a MADT
    assert_eq!(
        parse(RSDP, &m),
        Err(AcpiError::BadRootTable(SkipReason::WrongSignature))
    );
}

#[test]
fn bad_table_checksum_is_skipped() {
    let mut m = machine();
    let mut t = mcfg(&[(0xb000_0000, 0, 0, 255)]);
    t[40] ^= 0xff;
    replace(&mut m, MCFG, t);
    let info = parse(RSDP, &m).unwrap();
    assert!(info.mcfg.is_empty());
    assert_eq!(info.skipped.len(), 1);
    assert_eq!(info.skipped[0].signature, Signature(*b"MCFG"));
    assert_eq!(info.skipped[0].reason, SkipReason::BadChecksum);
    assert!(!info.has_table(b"MCFG"));
    // Everything else still parsed.
    assert_eq!(info.cpus.len(), 4);
    assert!(info.hpet.is_some());
}

#[test]
fn truncated_and_unreadable_tables() {
    let mut m = machine();
    // The MADT claims more bytes than memory holds.
    let mut t = qemu_madt();
    t.truncate(60);
    replace(&mut m, MADT, t);
    // The HPET header is readable but its length is absurd.
    let mut h = hpet(0, 0xfed0_0000, 0);
    h[4..8].copy_from_slice(&10u32.to_le_bytes());
    replace(&mut m, HPET, h);
    // The XSDT has a null entry and one pointing nowhere.
    replace(
        &mut m,
        XSDT,
        xsdt(&[0, FACP, MADT, 0xdead_b000, MCFG, HPET]),
    );
    let info = parse(RSDP, &m).unwrap();
    let reasons: Vec<_> = info
        .skipped
        .iter()
        .map(|s| (s.signature, s.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (Signature(*b"APIC"), SkipReason::Unreadable),
            (Signature::UNKNOWN, SkipReason::Unreadable),
            (Signature(*b"HPET"), SkipReason::BadLength(10)),
        ]
    );
    assert!(info.cpus.is_empty());
    assert_eq!(info.local_apic_addr, DEFAULT_LOCAL_APIC_ADDR);
    assert_eq!(info.mcfg.len(), 1);
    assert!(info.pm_timer.is_some());
}

#[test]
fn madt_entry_walk_stops_cleanly() {
    // An entry whose length runs past the end: the walk keeps what came before.
    let mut body = Vec::new();
    body.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&e_lapic(0, 0, 1));
    body.extend_from_slice(&[0, 8, 1, 1]); // half an entry
    let mut m = machine();
    replace(&mut m, MADT, table(b"APIC", 4, &body));
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(info.cpus.len(), 1);
    assert!(!info.pcat_compat);

    // A zero-length entry stops the walk; a short known entry is skipped by
    // length; an unknown type is skipped by length.
    let t = madt(
        0xfee0_0000,
        0,
        &[
            e_lapic(0, 0, 1),
            vec![0x7f, 5, 1, 2, 3], // unknown type
            vec![0, 4, 9, 9],       // local APIC entry too short
            e_lapic(1, 1, 1),
            vec![1, 0], // zero length: stop
            e_lapic(2, 2, 1),
        ],
    );
    replace(&mut m, MADT, t);
    let info = parse(RSDP, &m).unwrap();
    let ids: Vec<u32> = info.cpus.iter().map(|c| c.apic_id).collect();
    assert_eq!(ids, vec![0, 1]);

    // A MADT too short for its fixed fields is skipped.
    replace(&mut m, MADT, table(b"APIC", 4, &[0, 0, 0xe0]));
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(info.skipped[0].reason, SkipReason::Truncated);
    assert!(!info.has_table(b"APIC"));
}

#[test]
fn x2apic_entries_and_address_override() {
    let t = madt(
        0xfee0_0000,
        1,
        &[
            e_lapic(0, 0, 1),
            e_x2apic(0, 1, 0), // duplicate of APIC id 0: ignored
            e_x2apic(300, 1, 7),
            e_x2apic(0x1_0000, 0b10, 8),
            e_x2apic(0x1_0001, 0, 9),
            e_x2apic_nmi(0x000f, u32::MAX, 1),
            e_x2apic_nmi(0, 7, 0),
            e_lapic_addr(0x1_fee0_0000),
        ],
    );
    let mut m = machine();
    replace(&mut m, MADT, t);
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(
        info.cpus,
        vec![
            Cpu {
                uid: 0,
                apic_id: 0,
                enabled: true,
                online_capable: false
            },
            Cpu {
                uid: 7,
                apic_id: 300,
                enabled: true,
                online_capable: false
            },
            Cpu {
                uid: 8,
                apic_id: 0x1_0000,
                enabled: false,
                online_capable: true
            },
            Cpu {
                uid: 9,
                apic_id: 0x1_0001,
                enabled: false,
                online_capable: false
            },
        ]
    );
    assert_eq!(info.usable_cpus().count(), 3);
    assert_eq!(
        info.lapic_nmis,
        vec![
            LapicNmi {
                uid: None,
                lint: 1,
                polarity_low: true,
                level: true
            },
            LapicNmi {
                uid: Some(7),
                lint: 0,
                polarity_low: false,
                level: false
            },
        ]
    );
    assert_eq!(info.local_apic_addr, 0x1_fee0_0000);
}

#[test]
fn fadt_variants() {
    // ACPI 1.0 FADT: 116 bytes, legacy PM timer, 24-bit, no century.
    let mut m = machine();
    let f = Fadt {
        len: 116,
        flags: 0,
        century: 0,
        ..Default::default()
    };
    replace(&mut m, FACP, f.build());
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(
        info.pm_timer,
        Some(PmTimer {
            port: 0x608,
            ext_32bit: false
        })
    );
    assert_eq!(info.century_reg, 0);
    assert_eq!(info.dsdt, Some(0x9000));

    // X_PM_TMR_BLK in I/O space wins; reset register; X_DSDT.
    let f = Fadt {
        x_pm_tmr: Some((1, 0xb008)),
        flags: (1 << 8) | (1 << 10),
        reset: Some((1, 0xcf9, 0x06)),
        x_dsdt: 0x1_0000_9000,
        ..Default::default()
    };
    replace(&mut m, FACP, f.build());
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(
        info.pm_timer,
        Some(PmTimer {
            port: 0xb008,
            ext_32bit: true
        })
    );
    assert_eq!(
        info.reset,
        Some(ResetReg {
            space: 1,
            addr: 0xcf9,
            value: 6
        })
    );
    assert_eq!(info.dsdt, Some(0x1_0000_9000));

    // X_PM_TMR_BLK in memory space: fall back to the legacy port.
    let f = Fadt {
        x_pm_tmr: Some((0, 0xfe00_0000)),
        ..Default::default()
    };
    replace(&mut m, FACP, f.build());
    assert_eq!(parse(RSDP, &m).unwrap().pm_timer.unwrap().port, 0x608);

    // No PM timer at all.
    let f = Fadt {
        pm_tmr_blk: 0,
        ..Default::default()
    };
    replace(&mut m, FACP, f.build());
    assert_eq!(parse(RSDP, &m).unwrap().pm_timer, None);

    // Too short to hold the PM timer block: skipped.
    let f = Fadt {
        len: 64,
        ..Default::default()
    };
    replace(&mut m, FACP, f.build());
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(info.pm_timer, None);
    assert_eq!(info.skipped[0].reason, SkipReason::Truncated);
}

#[test]
fn hpet_and_mcfg_edge_cases() {
    let mut m = machine();
    replace(&mut m, HPET, hpet(1, 0xfed0_0000, 0)); // I/O space: unusable
    replace(
        &mut m,
        MCFG,
        mcfg(&[
            (0xb000_0000, 0, 0, 63),
            (0xc000_0000, 1, 9, 3),
            (0xd000_0000, 2, 16, 31),
        ]),
    );
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(info.hpet, None);
    assert_eq!(info.skipped[0].reason, SkipReason::Unsupported);
    assert_eq!(info.mcfg.len(), 2); // reversed bus range dropped
    assert_eq!(
        info.mcfg[1].config_addr(16, 1, 2),
        Some(0xd000_0000 + (16 << 20) + (1 << 15) + (2 << 12))
    );
    assert_eq!(info.mcfg[1].config_addr(15, 0, 0), None);
    assert_eq!(info.mcfg[0].config_addr(0, 32, 0), None);
}

#[test]
fn duplicate_tables_first_wins() {
    let mut m = machine();
    let second = 0x16000;
    m.put(second, madt(0xfee0_0000, 0, &[e_lapic(0, 9, 1)]));
    replace(&mut m, XSDT, xsdt(&[MADT, second]));
    let info = parse(RSDP, &m).unwrap();
    assert_eq!(info.cpus.len(), 4);
    assert_eq!(
        info.tables
            .iter()
            .filter(|t| t.signature.0 == *b"APIC")
            .count(),
        2
    );
}

#[test]
fn display() {
    extern crate std;
    use std::string::ToString;
    assert_eq!(Signature(*b"APIC").to_string(), "APIC");
    assert_eq!(Signature([b'A', 0, 0xff, b' ']).to_string(), "A?? ");
    assert_eq!(AcpiError::BadRsdpChecksum.to_string(), "bad RSDP checksum");
    assert_eq!(
        AcpiError::BadRootTable(SkipReason::BadLength(3)).to_string(),
        "root table unusable: bad length 3"
    );
}
