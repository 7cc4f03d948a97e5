//! The PVH boot protocol: reading `hvm_start_info` (memory map, command
//! line, ACPI RSDP) handed over by QEMU in `%ebx`.

/// `hvm_start_info.magic`.
const PVH_MAGIC: u32 = 0x336e_c578;

/// Memory map entry type for usable RAM.
pub const E820_RAM: u32 = 1;

/// One entry of the firmware memory map.
#[derive(Debug, Clone, Copy, Default)]
pub struct Region {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// Maximum memory map entries kept.
pub const MAX_REGIONS: usize = 64;

/// What the boot loader told us, copied out of its structures.
pub struct BootInfo {
    pub regions: [Region; MAX_REGIONS],
    pub nregions: usize,
    pub cmdline_paddr: u64,
    pub cmdline_len: usize,
    pub rsdp_paddr: u64,
    pub start_info_paddr: u64,
    pub memmap_paddr: u64,
}

impl BootInfo {
    /// The memory map entries.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.nregions]
    }

    /// The kernel command line (empty if none or not UTF-8).
    pub fn cmdline(&self) -> &'static str {
        if self.cmdline_paddr == 0 {
            return "";
        }
        // SAFETY: the boot loader placed a NUL-terminated command line at
        // this identity-mapped physical address; we measured its length.
        let bytes = unsafe { core::slice::from_raw_parts(self.cmdline_paddr as *const u8, self.cmdline_len) };
        core::str::from_utf8(bytes).unwrap_or("")
    }
}

fn read<T: Copy>(paddr: u64) -> T {
    // SAFETY: the start-info structures live in low memory, identity mapped
    // by the boot page tables; the loader guarantees their layout.
    unsafe { core::ptr::read_unaligned(paddr as *const T) }
}

/// Parses the start-info block at `paddr`. Returns `None` on a bad magic.
pub fn parse(paddr: u64) -> Option<BootInfo> {
    if paddr == 0 || read::<u32>(paddr) != PVH_MAGIC {
        return None;
    }
    let version: u32 = read(paddr + 4);
    let cmdline_paddr: u64 = read(paddr + 24);
    let rsdp_paddr: u64 = read(paddr + 32);
    let mut info = BootInfo {
        regions: [Region::default(); MAX_REGIONS],
        nregions: 0,
        cmdline_paddr,
        cmdline_len: 0,
        rsdp_paddr,
        start_info_paddr: paddr,
        memmap_paddr: 0,
    };
    if cmdline_paddr != 0 {
        let mut n = 0;
        while n < 4096 && read::<u8>(cmdline_paddr + n as u64) != 0 {
            n += 1;
        }
        info.cmdline_len = n;
    }
    if version >= 1 {
        let memmap: u64 = read(paddr + 40);
        let entries: u32 = read(paddr + 48);
        info.memmap_paddr = memmap;
        for i in 0..(entries as usize).min(MAX_REGIONS) {
            let e = memmap + (i as u64) * 24;
            info.regions[i] = Region { addr: read(e), size: read(e + 8), kind: read(e + 16) };
        }
        info.nregions = (entries as usize).min(MAX_REGIONS);
    }
    Some(info)
}

/// Looks for the ACPI RSDP signature in the BIOS area (when the loader
/// did not pass one).
pub fn scan_rsdp() -> u64 {
    let mut p = 0xe0000u64;
    while p < 0x100000 {
        if read::<[u8; 8]>(p) == *b"RSD PTR " {
            return p;
        }
        p += 16;
    }
    0
}
