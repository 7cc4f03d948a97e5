//! Message-signalled interrupt vectors: a global pool of IDT vectors
//! (0x30..=0xef) handed to drivers with a closure to run, and the MSI
//! address/data that makes a device interrupt a chosen CPU with it.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use spin::{Mutex, RwLock};

use crate::arch::trap::{self, TrapFrame};
use crate::percpu;

/// First and last vector handed out.
const FIRST: u8 = 0x30;
const LAST: u8 = 0xef;

type Handler = Arc<dyn Fn() + Send + Sync>;

static HANDLERS: [RwLock<Option<Handler>>; 256] = [const { RwLock::new(None) }; 256];
static USED: Mutex<[bool; 256]> = Mutex::new([false; 256]);

/// An allocated vector: the IDT vector, the CPU it targets, and the MSI
/// message a device must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vector {
    pub vector: u8,
    pub cpu: usize,
    pub address: u64,
    pub data: u32,
}

fn dispatch(f: &mut TrapFrame) {
    let h = HANDLERS[f.vector as usize & 0xff].read().clone();
    if let Some(h) = h {
        h();
    } else {
        percpu::this().stats.stray_interrupts.fetch_add(1, Ordering::Relaxed);
    }
}

/// Allocates a vector delivered to `cpu` that runs `handler` (in interrupt
/// context, with interrupts off). `None` if the CPU is unknown or the pool
/// is exhausted.
pub fn alloc(cpu: usize, handler: Box<dyn Fn() + Send + Sync>) -> Option<Vector> {
    let p = percpu::get(cpu)?;
    let vector = crate::arch::without_interrupts(|| {
        let mut used = USED.lock();
        let v = (FIRST..=LAST).find(|&v| !used[v as usize])?;
        used[v as usize] = true;
        Some(v)
    })?;
    // With interrupts off: a stray message for this vector arriving on
    // this CPU would otherwise spin in `dispatch` on the lock held here.
    let h: Arc<dyn Fn() + Send + Sync> = Arc::from(handler);
    crate::arch::without_interrupts(|| *HANDLERS[vector as usize].write() = Some(h));
    trap::register(vector, dispatch);
    // Fixed delivery, edge, physical destination = the CPU's APIC id.
    // With x2APIC ids above 255 would need interrupt remapping; QEMU's
    // CPUs here stay below that.
    let address = 0xfee0_0000u64 | ((p.apic_id as u64 & 0xff) << 12);
    Some(Vector { vector, cpu, address, data: vector as u32 })
}

/// Returns a vector to the pool.
/// A message still in flight to it (an interrupt moved to another CPU)
/// finds no handler and is counted as stray.
pub fn free(vector: u8) {
    // Interrupts off while the handler lock is held (see `alloc`); the
    // handler itself is dropped after, outside.
    let old = crate::arch::without_interrupts(|| HANDLERS[vector as usize].write().take());
    drop(old);
    crate::arch::without_interrupts(|| USED.lock()[vector as usize] = false);
}

/// Vectors in use (for the shell).
pub fn in_use() -> usize {
    crate::arch::without_interrupts(|| USED.lock().iter().filter(|&&u| u).count())
}
