//! The kernel's side of the drivers' hardware abstraction: DMA memory,
//! MMIO mapping, MSI vectors bound to CPUs, CPU count and time.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use arbalest_drivers::hal::{Hal, MsiMessage};
use arbalest_mac::DmaAllocator;

use crate::dma::KernelDma;
use crate::{msi, percpu};

/// The kernel HAL (a unit type: all state lives in the kernel's modules).
pub struct KernelHal;

impl Hal for KernelHal {
    fn dma(&self) -> Arc<dyn DmaAllocator> {
        Arc::new(KernelDma)
    }

    fn map_mmio(&self, paddr: u64, size: usize) -> usize {
        crate::mem::paging::map_mmio(paddr, size as u64);
        paddr as usize
    }

    fn alloc_msi(&self, cpu: usize, handler: Box<dyn Fn() + Send + Sync>) -> Option<MsiMessage> {
        let v = msi::alloc(cpu, handler)?;
        Some(MsiMessage { address: v.address, data: v.data, cpu: v.cpu, vector: v.vector })
    }

    fn free_msi(&self, msg: MsiMessage) {
        msi::free(msg.vector);
    }

    fn cpu_count(&self) -> usize {
        percpu::all().filter(|p| p.online.load(Ordering::Acquire)).count()
    }

    fn now_ns(&self) -> u64 {
        crate::time::clock::now_ns()
    }

    fn delay_us(&self, us: u64) {
        crate::time::clock::spin_ns(us * 1000);
    }
}
