//! Guarded kernel stacks: each stack sits in its own slot of a dedicated
//! virtual region, mapped page by page, with the page below it left
//! unmapped so an overflow faults instead of corrupting memory.

use alloc::vec::Vec;
use spin::Mutex;

use super::{PAGE_SIZE, frame, paging};

/// Base of the stack region (a PML4 slot of its own).
pub const STACK_REGION: u64 = 0xffff_c000_0000_0000;
/// Bytes of virtual space per stack slot (guard page included).
pub const SLOT_SIZE: u64 = 256 * 1024;
/// Number of slots.
const SLOTS: u64 = 4096;

struct Slots {
    next: u64,
    free: Vec<u64>,
}

static SLOTS_STATE: Mutex<Slots> = Mutex::new(Slots { next: 0, free: Vec::new() });

/// A kernel stack. Dropping it unmaps and frees its pages.
pub struct Stack {
    slot: u64,
    pages: u64,
}

impl Stack {
    /// Allocates a stack of `size` bytes (rounded up to pages, at most
    /// one slot minus the guard page).
    pub fn new(size: u64) -> Option<Stack> {
        let pages = size.div_ceil(PAGE_SIZE).clamp(1, SLOT_SIZE / PAGE_SIZE - 1);
        let slot = crate::arch::without_interrupts(|| {
            let mut s = SLOTS_STATE.lock();
            if let Some(slot) = s.free.pop() {
                Some(slot)
            } else if s.next < SLOTS {
                s.next += 1;
                Some(s.next - 1)
            } else {
                None
            }
        })?;
        let stack = Stack { slot, pages: 0 };
        let top = stack.top();
        let mut st = stack;
        for i in 1..=pages {
            let pa = frame::alloc()?;
            paging::map_page(top - i * PAGE_SIZE, pa);
            st.pages = i;
        }
        Some(st)
    }

    /// The initial stack pointer (one past the highest byte).
    pub fn top(&self) -> u64 {
        STACK_REGION + (self.slot + 1) * SLOT_SIZE
    }

    /// The lowest mapped byte.
    pub fn bottom(&self) -> u64 {
        self.top() - self.pages * PAGE_SIZE
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let top = self.top();
        for i in 1..=self.pages {
            if let Some(pa) = paging::unmap_page(top - i * PAGE_SIZE) {
                frame::free(pa, 1);
            }
        }
        let slot = self.slot;
        crate::arch::without_interrupts(|| SLOTS_STATE.lock().free.push(slot));
    }
}

/// If `addr` lies in the guard page of some stack slot, returns the slot's
/// top (for fault reports: "stack overflow").
pub fn guard_hit(addr: u64) -> Option<u64> {
    if !(STACK_REGION..STACK_REGION + SLOTS * SLOT_SIZE).contains(&addr) {
        return None;
    }
    let slot = (addr - STACK_REGION) / SLOT_SIZE;
    let top = STACK_REGION + (slot + 1) * SLOT_SIZE;
    if !paging::is_mapped(addr) && paging::is_mapped(top - PAGE_SIZE) { Some(top) } else { None }
}
