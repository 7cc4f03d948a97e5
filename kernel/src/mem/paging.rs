//! The kernel's own 4-level page tables.
//!
//! * A direct map: physical memory identity-mapped write-back with 2 MiB
//!   pages from 0 up to the end of RAM (at least 4 GiB), except page 0,
//!   which is left unmapped so null-pointer accesses fault.
//! * MMIO: [`map_mmio`] remaps a device range uncached (identity).
//! * Kernel stacks in their own region with 4 KiB pages and an unmapped
//!   guard page under each (see [`super::stack`]).
//!
//! One set of tables serves every CPU.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use super::frame;
use crate::arch::cpu;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const WRITE_THROUGH: u64 = 1 << 3;
const CACHE_DISABLE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

const SIZE_2M: u64 = 2 * 1024 * 1024;

static PML4: AtomicU64 = AtomicU64::new(0);
static LOCK: Mutex<()> = Mutex::new(());

fn table(pa: u64) -> &'static mut [u64; 512] {
    // SAFETY: `pa` is a page-table frame owned by this module, identity
    // mapped by the direct map; all writers hold LOCK.
    unsafe { &mut *(pa as *mut [u64; 512]) }
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// Returns the entry for `va` at `level` (1 = PT, 2 = PD), creating the
/// intermediate tables on the way. Panics only when out of frames at boot.
fn walk(va: u64, level: u32) -> &'static mut u64 {
    let mut t = table(PML4.load(Ordering::Relaxed));
    let mut l = 4;
    loop {
        let e = &mut t[index(va, l)];
        if l == level {
            return e;
        }
        if *e & PRESENT == 0 {
            let f = frame::alloc().expect("out of memory for page tables");
            *e = f | PRESENT | WRITABLE;
        }
        assert!(*e & HUGE == 0, "walk through a huge page at {va:#x}");
        t = table(*e & ADDR_MASK);
        l -= 1;
    }
}

/// Builds the direct map for `[0, top)` and switches this CPU to it.
pub fn init(top: u64) {
    let _g = LOCK.lock();
    let pml4 = frame::alloc().expect("no frame for the PML4");
    assert!(pml4 < 0x1_0000_0000, "PML4 must sit below 4 GiB for AP start-up");
    PML4.store(pml4, Ordering::Relaxed);
    let top = top.max(0x1_0000_0000).div_ceil(SIZE_2M) * SIZE_2M;
    let mut pa = SIZE_2M;
    while pa < top {
        *walk(pa, 2) = pa | PRESENT | WRITABLE | HUGE;
        pa += SIZE_2M;
    }
    // First 2 MiB in 4 KiB pages, page 0 absent.
    for i in 1..512u64 {
        *walk(i * 4096, 1) = (i * 4096) | PRESENT | WRITABLE;
    }
    // SAFETY: the new tables identity-map all RAM (the kernel, its stacks,
    // the heap-to-be) exactly as the boot tables did.
    unsafe { cpu::write_cr3(pml4) };
}

/// Switches an application processor to the kernel page tables.
pub fn load_on_this_cpu() {
    // SAFETY: the kernel tables map everything the AP touches.
    unsafe { cpu::write_cr3(PML4.load(Ordering::Relaxed)) };
}

/// Physical address of the kernel PML4 (for the AP start-up code).
pub fn pml4_phys() -> u64 {
    PML4.load(Ordering::Relaxed)
}

/// Maps `[pa, pa + len)` identity and uncached for device registers.
/// Whole 2 MiB pages are remapped; MMIO windows never share one with RAM.
pub fn map_mmio(pa: u64, len: u64) {
    crate::arch::without_interrupts(|| {
        let _g = LOCK.lock();
        let mut chunk = pa & !(SIZE_2M - 1);
        while chunk < pa + len {
            if chunk == 0 {
                for i in 1..512u64 {
                    *walk(i * 4096, 1) = (i * 4096) | PRESENT | WRITABLE | CACHE_DISABLE | WRITE_THROUGH;
                    cpu::invlpg(i * 4096);
                }
            } else {
                *walk(chunk, 2) = chunk | PRESENT | WRITABLE | HUGE | CACHE_DISABLE | WRITE_THROUGH;
                cpu::invlpg(chunk);
            }
            chunk += SIZE_2M;
        }
    });
}

/// Maps one 4 KiB page `va` → `pa` (writable, write-back).
pub fn map_page(va: u64, pa: u64) {
    crate::arch::without_interrupts(|| {
        let _g = LOCK.lock();
        *walk(va, 1) = pa | PRESENT | WRITABLE;
        cpu::invlpg(va);
    })
}

/// Unmaps one 4 KiB page, returning the frame it mapped.
/// Other CPUs may keep a stale entry until their next TLB flush; callers
/// only unmap pages no other CPU uses (dead threads' stacks).
pub fn unmap_page(va: u64) -> Option<u64> {
    crate::arch::without_interrupts(|| {
        let _g = LOCK.lock();
        let e = walk(va, 1);
        let old = *e;
        *e = 0;
        cpu::invlpg(va);
        (old & PRESENT != 0).then_some(old & ADDR_MASK)
    })
}

/// Whether `va` is mapped (walks without creating tables).
pub fn is_mapped(va: u64) -> bool {
    let mut t = table(PML4.load(Ordering::Relaxed));
    let mut l = 4;
    loop {
        let e = t[index(va, l)];
        if e & PRESENT == 0 {
            return false;
        }
        if l == 1 || e & HUGE != 0 {
            return true;
        }
        t = table(e & ADDR_MASK);
        l -= 1;
    }
}
