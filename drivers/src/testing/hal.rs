//! A fake [`Hal`]: heap DMA (physical address = virtual address), MSI
//! vectors recorded with their handlers so tests (and simulated devices)
//! can raise them by message, a clock that advances on every look, and
//! simulated device memory regions served through [`Hal::mmio`].

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arbalest_mac::DmaAllocator;
use arbalest_mac::dma::host::HeapDma;
use spin::Mutex;

use crate::hal::{Hal, IrqHandler, Mmio, MmioWindow, MsiMessage};

struct Vector {
    msg: MsiMessage,
    handler: Arc<IrqHandler>,
    fired: u64,
}

/// A simulated device region: physical base, length, registers.
type Region = (u64, usize, Arc<dyn Mmio>);

/// The fake kernel.
pub struct FakeHal {
    pub dma: Arc<HeapDma>,
    cpus: usize,
    clock: AtomicU64,
    regions: Mutex<Vec<Region>>,
    vectors: Mutex<Vec<Vector>>,
    /// Vectors handed out and not yet freed.
    pub live_vectors: AtomicU64,
    /// Messages are lost on the way (see [`FakeHal::lose_msis`]).
    losing: AtomicBool,
    /// Messages lost so far.
    pub lost_msis: AtomicU64,
}

impl FakeHal {
    pub fn new(cpus: usize) -> Arc<FakeHal> {
        Arc::new(FakeHal {
            dma: Arc::new(HeapDma::default()),
            cpus,
            clock: AtomicU64::new(1),
            regions: Mutex::new(Vec::new()),
            vectors: Mutex::new(Vec::new()),
            live_vectors: AtomicU64::new(0),
            losing: AtomicBool::new(false),
            lost_msis: AtomicU64::new(0),
        })
    }

    /// Puts `mmio` behind physical range `[paddr, paddr + len)`.
    pub fn add_region(&self, paddr: u64, len: usize, mmio: Arc<dyn Mmio>) {
        self.regions.lock().push((paddr, len, mmio));
    }

    /// From now on (until called with false) messages vanish before any
    /// handler runs: what happens to one that reaches a CPU after its
    /// vector was freed (the kernel counts it as stray).
    pub fn lose_msis(&self, on: bool) {
        self.losing.store(on, Ordering::Release);
    }

    /// Delivers an MSI write of `data` to `address`: runs the matching
    /// handler (outside any lock). False if no vector matches (or the
    /// message was lost).
    pub fn deliver_msi(&self, address: u64, data: u32) -> bool {
        if self.losing.load(Ordering::Acquire) {
            self.lost_msis.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let h = {
            let mut v = self.vectors.lock();
            match v.iter_mut().find(|v| v.msg.address == address && v.msg.data == data) {
                Some(v) => {
                    v.fired += 1;
                    v.handler.clone()
                }
                None => return false,
            }
        };
        h();
        true
    }

    /// The live vectors' messages, in allocation order.
    pub fn vectors(&self) -> Vec<MsiMessage> {
        self.vectors.lock().iter().map(|v| v.msg).collect()
    }

    /// How often the vector with message `data` fired.
    pub fn fired(&self, data: u32) -> u64 {
        self.vectors.lock().iter().find(|v| v.msg.data == data).map_or(0, |v| v.fired)
    }
}

impl Hal for FakeHal {
    fn dma(&self) -> Arc<dyn DmaAllocator> {
        self.dma.clone()
    }

    fn map_mmio(&self, _paddr: u64, _size: usize) -> usize {
        0
    }

    fn mmio(&self, paddr: u64, size: usize) -> Arc<dyn Mmio> {
        let regions = self.regions.lock();
        for (base, len, m) in regions.iter() {
            if paddr >= *base && paddr + size as u64 <= base + *len as u64 {
                return Arc::new(MmioWindow::new(m.clone(), (paddr - base) as usize, size));
            }
        }
        Arc::new(super::MemMmio::new(0))
    }

    /// The lowest free vector of 0x40..0xff (freed ones are reused, as
    /// the kernel's pool does), whatever the CPU.
    fn alloc_msi(&self, cpu: usize, handler: IrqHandler) -> Option<MsiMessage> {
        let mut v = self.vectors.lock();
        let vector = (0x40..0xffu8).find(|n| !v.iter().any(|x| x.msg.vector == *n))?;
        let msg = MsiMessage { address: 0xfee0_0000 | ((cpu as u64) << 12), data: vector as u32, cpu, vector };
        v.push(Vector { msg, handler: Arc::new(handler), fired: 0 });
        self.live_vectors.fetch_add(1, Ordering::Relaxed);
        Some(msg)
    }

    fn free_msi(&self, msg: MsiMessage) {
        let mut v = self.vectors.lock();
        if let Some(i) = v.iter().position(|v| v.msg == msg) {
            v.remove(i);
            self.live_vectors.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn cpu_count(&self) -> usize {
        self.cpus
    }

    fn now_ns(&self) -> u64 {
        // Every look advances 1 µs, so timeouts end even without delays.
        self.clock.fetch_add(1_000, Ordering::Relaxed)
    }

    fn delay_us(&self, us: u64) {
        self.clock.fetch_add(us * 1_000, Ordering::Relaxed);
    }
}
