//! Physical and virtual memory: the frame allocator, the kernel's page
//! tables, the heap and guarded kernel stacks.

pub mod frame;
pub mod heap;
pub mod paging;
pub mod stack;

/// Size of a page / frame.
pub const PAGE_SIZE: u64 = 4096;

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Physical range `[start, end)` of the kernel image (text, data, bss).
pub fn kernel_image() -> (u64, u64) {
    // Linker-script symbols: only their addresses are taken.
    (&raw const __kernel_start as u64, &raw const __kernel_end as u64)
}
