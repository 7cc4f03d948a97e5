//! The kernel heap: a linked-list allocator over one contiguous block of
//! frames, with a front of size classes for small blocks, taken with
//! interrupts off so an interrupt handler on the same CPU can never
//! deadlock on it.
//!
//! The linked-list allocator keeps its holes sorted by address, so a free
//! walks the list: with thousands of small blocks freed per second (a
//! conn, its segments, its timers) that walk took over a third of a guest
//! CPU on short TCP connections. Blocks of up to [`MAX_CLASS`] bytes are
//! therefore rounded up to a power-of-two class and, when freed, kept on
//! that class's free list (at most [`CACHE_BYTES`] per class; beyond that
//! they go back to the list allocator), so most small allocations and
//! frees take a few instructions. [`stats`] counts cached blocks as free.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use linked_list_allocator::Heap;
use spin::Mutex;

/// The smallest class (bytes): room for the free list's link.
const MIN_CLASS: usize = 16;
/// The largest class (bytes); larger blocks go to the list allocator.
const MAX_CLASS: usize = 2048;
/// Classes 16, 32, …, 2048.
const CLASSES: usize = (MAX_CLASS / MIN_CLASS).trailing_zeros() as usize + 1;
/// Most bytes of freed blocks one class keeps.
const CACHE_BYTES: usize = 1 << 20;

/// A freed block on its class's list: the link lives in the block.
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

struct Inner {
    heap: Heap,
    free: [Option<NonNull<FreeBlock>>; CLASSES],
    /// Blocks on each class's list.
    cached: [usize; CLASSES],
}

// SAFETY: the free lists point into the heap's own block, only ever
// touched under the mutex.
unsafe impl Send for Inner {}

struct KernelHeap(Mutex<Inner>);

/// The class of a layout, if it has one: its size rounded up to a power of
/// two (at least the alignment, so a class block is aligned to its size).
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(MIN_CLASS).next_power_of_two();
    (size <= MAX_CLASS).then(|| (size / MIN_CLASS).trailing_zeros() as usize)
}

fn class_layout(class: usize) -> Layout {
    let size = MIN_CLASS << class;
    // A power of two of at most MAX_CLASS: always a valid layout.
    Layout::from_size_align(size, size).unwrap_or(Layout::new::<FreeBlock>())
}

// SAFETY: every access goes through the mutex with interrupts disabled; a
// class block is allocated with its class's layout and freed with it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        crate::arch::without_interrupts(|| {
            let mut g = self.0.lock();
            let Some(c) = class_of(layout) else {
                return g.heap.allocate_first_fit(layout).map(|p| p.as_ptr()).unwrap_or(core::ptr::null_mut());
            };
            if let Some(b) = g.free[c] {
                // SAFETY: `b` is a block of this class on its free list,
                // written by `dealloc` and not handed out since.
                g.free[c] = unsafe { b.as_ref().next };
                g.cached[c] -= 1;
                return b.as_ptr().cast();
            }
            g.heap.allocate_first_fit(class_layout(c)).map(|p| p.as_ptr()).unwrap_or(core::ptr::null_mut())
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        crate::arch::without_interrupts(|| {
            let mut g = self.0.lock();
            // SAFETY: `ptr` came from `alloc` with the same layout (GlobalAlloc contract).
            let p = unsafe { NonNull::new_unchecked(ptr) };
            match class_of(layout) {
                Some(c) if g.cached[c] * (MIN_CLASS << c) < CACHE_BYTES => {
                    let b = p.cast::<FreeBlock>();
                    // SAFETY: the block is ours again, at least MIN_CLASS
                    // bytes and aligned to its class: room for the link.
                    unsafe { b.as_ptr().write(FreeBlock { next: g.free[c] }) };
                    g.free[c] = Some(b);
                    g.cached[c] += 1;
                }
                // SAFETY: allocated from the list allocator with this layout.
                Some(c) => unsafe { g.heap.deallocate(p, class_layout(c)) },
                // SAFETY: as above, with the caller's layout.
                None => unsafe { g.heap.deallocate(p, layout) },
            }
        })
    }
}

#[global_allocator]
static HEAP: KernelHeap =
    KernelHeap(Mutex::new(Inner { heap: Heap::empty(), free: [None; CLASSES], cached: [0; CLASSES] }));

/// Gives the heap `size` bytes of contiguous frames.
pub fn init(size: u64) {
    let pa = super::frame::alloc_contiguous(size / super::PAGE_SIZE, super::PAGE_SIZE).expect("no memory for the heap");
    // SAFETY: the block is fresh, identity-mapped RAM owned by the heap from now on.
    unsafe { HEAP.0.lock().heap.init(pa as *mut u8, size as usize) };
}

/// (used, free) heap bytes; blocks cached on the class lists count as
/// free.
pub fn stats() -> (usize, usize) {
    crate::arch::without_interrupts(|| {
        let g = HEAP.0.lock();
        let cached: usize = g.cached.iter().enumerate().map(|(c, n)| n * (MIN_CLASS << c)).sum();
        (g.heap.used().saturating_sub(cached), g.heap.free() + cached)
    })
}
