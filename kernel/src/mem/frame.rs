//! The physical frame allocator: one bit per 4 KiB frame of RAM, with
//! first-fit contiguous allocation (the heap, DMA pools and page tables
//! all come from here).
//!
//! The bitmap lives in RAM right after the kernel image. Frames below
//! 1 MiB stay reserved (BIOS data, ACPI, the AP start-up page).

use spin::Mutex;

use super::PAGE_SIZE;
use crate::pvh::{E820_RAM, Region};

struct Bitmap {
    words: &'static mut [u64],
    frames: u64,
    free: u64,
    hint: u64,
}

impl Bitmap {
    fn is_used(&self, f: u64) -> bool {
        self.words[(f / 64) as usize] & (1 << (f % 64)) != 0
    }
    fn set(&mut self, f: u64, used: bool) {
        let w = &mut self.words[(f / 64) as usize];
        let bit = 1u64 << (f % 64);
        if used && *w & bit == 0 {
            *w |= bit;
            self.free -= 1;
        } else if !used && *w & bit != 0 {
            *w &= !bit;
            self.free += 1;
        }
    }
}

static FRAMES: Mutex<Option<Bitmap>> = Mutex::new(None);
static TOTAL_RAM: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Builds the allocator from the memory map. `reserved` ranges (boot
/// structures) are never handed out. Returns the highest RAM address.
pub fn init(regions: &[Region], reserved: &[(u64, u64)]) -> u64 {
    let top = regions.iter().filter(|r| r.kind == E820_RAM).map(|r| r.addr + r.size).max().unwrap_or(0);
    let frames = top / PAGE_SIZE;
    let words = frames.div_ceil(64) as usize;
    let (_, kend) = super::kernel_image();
    let bitmap_start = align_up(kend, PAGE_SIZE);
    let bitmap_bytes = align_up(words as u64 * 8, PAGE_SIZE);
    // SAFETY: [bitmap_start, bitmap_start + bitmap_bytes) is RAM right after
    // the kernel image (checked below against the memory map), identity
    // mapped by the boot tables, and reserved from the allocator itself.
    let slice = unsafe { core::slice::from_raw_parts_mut(bitmap_start as *mut u64, words) };
    let inside_ram = regions
        .iter()
        .any(|r| r.kind == E820_RAM && r.addr <= bitmap_start && bitmap_start + bitmap_bytes <= r.addr + r.size);
    assert!(inside_ram, "no RAM for the frame bitmap after the kernel image");
    slice.fill(!0);
    let mut bm = Bitmap { words: slice, frames, free: 0, hint: 0 };
    let mut total = 0;
    for r in regions.iter().filter(|r| r.kind == E820_RAM) {
        let start = align_up(r.addr, PAGE_SIZE).max(0x100000);
        let end = (r.addr + r.size) & !(PAGE_SIZE - 1);
        total += r.size;
        let mut f = start / PAGE_SIZE;
        while f < end / PAGE_SIZE {
            bm.words[(f / 64) as usize] &= !(1 << (f % 64));
            bm.free += 1;
            f += 1;
        }
    }
    TOTAL_RAM.store(total, core::sync::atomic::Ordering::Relaxed);
    let (kstart, _) = super::kernel_image();
    let mut reserve = |s: u64, e: u64| {
        let mut f = s / PAGE_SIZE;
        while f < e.div_ceil(PAGE_SIZE) && f < frames {
            bm.set(f, true);
            f += 1;
        }
    };
    reserve(kstart, bitmap_start + bitmap_bytes);
    for &(s, e) in reserved {
        reserve(s, e);
    }
    *FRAMES.lock() = Some(bm);
    top
}

/// Allocates `count` contiguous frames aligned to `align` bytes, zeroed.
/// Returns the physical address of the first.
pub fn alloc_contiguous(count: u64, align: u64) -> Option<u64> {
    let align_frames = (align / PAGE_SIZE).max(1);
    let pa = crate::arch::without_interrupts(|| {
        let mut g = FRAMES.lock();
        let bm = g.as_mut()?;
        if bm.free < count {
            return None;
        }
        let mut start = align_up(bm.hint, align_frames);
        let mut wrapped = false;
        loop {
            if start + count > bm.frames {
                if wrapped {
                    return None;
                }
                wrapped = true;
                start = 0;
                continue;
            }
            match (start..start + count).find(|&f| bm.is_used(f)) {
                None => break,
                Some(used) => start = align_up(used + 1, align_frames),
            }
        }
        for f in start..start + count {
            bm.set(f, true);
        }
        if count == 1 {
            bm.hint = start + 1;
        }
        Some(start * PAGE_SIZE)
    })?;
    // SAFETY: the frames were free RAM, identity mapped in the direct map,
    // and now belong to the caller alone.
    unsafe { core::ptr::write_bytes(pa as *mut u8, 0, (count * PAGE_SIZE) as usize) };
    Some(pa)
}

/// Allocates one zeroed frame.
pub fn alloc() -> Option<u64> {
    alloc_contiguous(1, PAGE_SIZE)
}

/// Returns `count` frames starting at `pa` to the allocator.
pub fn free(pa: u64, count: u64) {
    crate::arch::without_interrupts(|| {
        let mut g = FRAMES.lock();
        if let Some(bm) = g.as_mut() {
            for f in pa / PAGE_SIZE..pa / PAGE_SIZE + count {
                debug_assert!(bm.is_used(f), "double free of frame {f:#x}");
                bm.set(f, false);
            }
            bm.hint = bm.hint.min(pa / PAGE_SIZE);
        }
    })
}

/// (free frames, total RAM bytes from the memory map).
pub fn stats() -> (u64, u64) {
    let free = crate::arch::without_interrupts(|| FRAMES.lock().as_ref().map(|b| b.free).unwrap_or(0));
    (free, TOTAL_RAM.load(core::sync::atomic::Ordering::Relaxed))
}
