//! The kernel heap: a linked-list allocator over one contiguous block of
//! frames, taken with interrupts off so an interrupt handler on the same
//! CPU can never deadlock on it.

use core::alloc::{GlobalAlloc, Layout};

use linked_list_allocator::Heap;
use spin::Mutex;

struct KernelHeap(Mutex<Heap>);

// SAFETY: every access goes through the mutex with interrupts disabled.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        crate::arch::without_interrupts(|| {
            self.0.lock().allocate_first_fit(layout).map(|p| p.as_ptr()).unwrap_or(core::ptr::null_mut())
        })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        crate::arch::without_interrupts(|| {
            // SAFETY: `ptr` came from `alloc` with the same layout (GlobalAlloc contract).
            unsafe { self.0.lock().deallocate(core::ptr::NonNull::new_unchecked(ptr), layout) }
        })
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::empty()));

/// Gives the heap `size` bytes of contiguous frames.
pub fn init(size: u64) {
    let pa = super::frame::alloc_contiguous(size / super::PAGE_SIZE, super::PAGE_SIZE).expect("no memory for the heap");
    // SAFETY: the block is fresh, identity-mapped RAM owned by the heap from now on.
    unsafe { HEAP.0.lock().init(pa as *mut u8, size as usize) };
}

/// (used, free) heap bytes.
pub fn stats() -> (usize, usize) {
    crate::arch::without_interrupts(|| {
        let h = HEAP.0.lock();
        (h.used(), h.free())
    })
}
