//! The modern virtio PCI transport (virtio 1.x, 4.1.4): the common
//! configuration block drives the status handshake, feature negotiation,
//! queue set-up and MSI-X vector assignment; each queue is notified by a
//! 16-bit write at `notify base + queue_notify_off * notify_off_multiplier`.
//!
//! The common block's selector registers (`*_select`, `queue_select`) make
//! it stateful: only the control path (probe, start, stop, reset) uses it,
//! under the driver's control lock. Interrupt handlers read only the device
//! status and the device-specific block.

use alloc::sync::Arc;

use crate::error::Error;
use crate::hal::{Hal, Mmio};
use crate::pci::Bar;

use super::pci_caps::VirtioCaps;
use super::queue::Notifier;

/// Device status bits.
pub mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const DEVICE_NEEDS_RESET: u8 = 0x40;
    pub const FAILED: u8 = 0x80;
}

/// "No MSI-X vector" for `config_msix_vector` / `queue_msix_vector`.
pub const NO_VECTOR: u16 = 0xffff;

// struct virtio_pci_common_cfg
const DEVICE_FEATURE_SELECT: usize = 0x00;
const DEVICE_FEATURE: usize = 0x04;
const DRIVER_FEATURE_SELECT: usize = 0x08;
const DRIVER_FEATURE: usize = 0x0c;
const CONFIG_MSIX_VECTOR: usize = 0x10;
const NUM_QUEUES: usize = 0x12;
const DEVICE_STATUS: usize = 0x14;
const CONFIG_GENERATION: usize = 0x15;
const QUEUE_SELECT: usize = 0x16;
const QUEUE_SIZE: usize = 0x18;
const QUEUE_MSIX_VECTOR: usize = 0x1a;
const QUEUE_ENABLE: usize = 0x1c;
const QUEUE_NOTIFY_OFF: usize = 0x1e;
const QUEUE_DESC: usize = 0x20;
const QUEUE_DRIVER: usize = 0x28;
const QUEUE_DEVICE: usize = 0x30;
/// Size of the common block up to `queue_device` (virtio 1.0).
const COMMON_LEN: usize = 0x38;

/// How long a reset may take before the device is declared dead.
const RESET_TIMEOUT_NS: u64 = 100_000_000;

/// The mapped register blocks of one modern virtio PCI function.
pub struct Transport {
    common: Arc<dyn Mmio>,
    notify: Arc<dyn Mmio>,
    notify_len: usize,
    notify_off_multiplier: u32,
    isr: Option<Arc<dyn Mmio>>,
    device: Arc<dyn Mmio>,
}

impl Transport {
    /// Maps the blocks `caps` describes (the device block is optional for
    /// the transport; an absent one reads all-ones).
    pub fn map(hal: &dyn Hal, caps: &VirtioCaps, bars: &[Bar; 6]) -> Result<Transport, Error> {
        if (caps.common.length as usize) < COMMON_LEN {
            return Err(Error::MissingCapability("virtio common cfg too short"));
        }
        let common = hal.mmio(caps.common.paddr(bars)?, caps.common.length as usize);
        let notify = hal.mmio(caps.notify.paddr(bars)?, caps.notify.length as usize);
        let isr = match caps.isr {
            Some(r) => Some(hal.mmio(r.paddr(bars)?, r.length as usize)),
            None => None,
        };
        let device: Arc<dyn Mmio> = match caps.device {
            Some(r) => hal.mmio(r.paddr(bars)?, r.length as usize),
            None => Arc::new(crate::hal::MmioWindow::new(common.clone(), 0, 0)),
        };
        Ok(Transport {
            common,
            notify,
            notify_len: caps.notify.length as usize,
            notify_off_multiplier: caps.notify_off_multiplier,
            isr,
            device,
        })
    }

    /// Resets the device and waits until it reads back 0.
    pub fn reset(&self, hal: &dyn Hal) -> Result<(), Error> {
        self.common.write8(DEVICE_STATUS, 0);
        let start = hal.now_ns();
        while self.status() != 0 {
            if hal.now_ns().wrapping_sub(start) > RESET_TIMEOUT_NS {
                return Err(Error::Timeout);
            }
            hal.delay_us(10);
        }
        Ok(())
    }

    pub fn status(&self) -> u8 {
        self.common.read8(DEVICE_STATUS)
    }

    /// Sets `bits` in the device status.
    pub fn add_status(&self, bits: u8) {
        self.common.write8(DEVICE_STATUS, self.status() | bits);
    }

    /// Tells the device the driver gave up on it.
    pub fn set_failed(&self) {
        self.add_status(status::FAILED);
    }

    /// The 64 feature bits the device offers.
    pub fn device_features(&self) -> u64 {
        self.common.write32(DEVICE_FEATURE_SELECT, 0);
        let lo = self.common.read32(DEVICE_FEATURE) as u64;
        self.common.write32(DEVICE_FEATURE_SELECT, 1);
        let hi = self.common.read32(DEVICE_FEATURE) as u64;
        (hi << 32) | lo
    }

    /// Writes the driver's feature bits.
    pub fn set_driver_features(&self, f: u64) {
        self.common.write32(DRIVER_FEATURE_SELECT, 0);
        self.common.write32(DRIVER_FEATURE, f as u32);
        self.common.write32(DRIVER_FEATURE_SELECT, 1);
        self.common.write32(DRIVER_FEATURE, (f >> 32) as u32);
    }

    /// The handshake up to FEATURES_OK: reset, ACKNOWLEDGE, DRIVER, write
    /// `features`, FEATURES_OK and check the device kept it. On refusal the
    /// device is marked FAILED.
    pub fn negotiate(&self, hal: &dyn Hal, features: u64) -> Result<(), Error> {
        self.reset(hal)?;
        self.add_status(status::ACKNOWLEDGE);
        self.add_status(status::DRIVER);
        self.set_driver_features(features);
        self.add_status(status::FEATURES_OK);
        if self.status() & status::FEATURES_OK == 0 {
            self.set_failed();
            return Err(Error::FeaturesRejected);
        }
        Ok(())
    }

    pub fn num_queues(&self) -> u16 {
        self.common.read16(NUM_QUEUES)
    }

    pub fn config_generation(&self) -> u8 {
        self.common.read8(CONFIG_GENERATION)
    }

    /// Largest size of queue `q` (0: the queue does not exist).
    pub fn queue_max_size(&self, q: u16) -> u16 {
        self.common.write16(QUEUE_SELECT, q);
        self.common.read16(QUEUE_SIZE)
    }

    /// Routes configuration-change interrupts to MSI-X entry `vector`.
    pub fn set_config_vector(&self, vector: u16) -> Result<(), Error> {
        self.common.write16(CONFIG_MSIX_VECTOR, vector);
        if self.common.read16(CONFIG_MSIX_VECTOR) != vector {
            return Err(Error::VectorRejected);
        }
        Ok(())
    }

    /// Programs queue `q`: size, ring addresses, MSI-X entry (`NO_VECTOR`
    /// for none), then enables it.
    pub fn setup_queue(&self, q: u16, size: u16, rings: (u64, u64, u64), vector: u16) -> Result<(), Error> {
        self.common.write16(QUEUE_SELECT, q);
        if self.common.read16(QUEUE_SIZE) == 0 {
            return Err(Error::QueueUnavailable(q));
        }
        self.common.write16(QUEUE_SIZE, size);
        self.common.write16(QUEUE_MSIX_VECTOR, vector);
        if self.common.read16(QUEUE_MSIX_VECTOR) != vector {
            return Err(Error::VectorRejected);
        }
        self.common.write64(QUEUE_DESC, rings.0);
        self.common.write64(QUEUE_DRIVER, rings.1);
        self.common.write64(QUEUE_DEVICE, rings.2);
        self.common.write16(QUEUE_ENABLE, 1);
        Ok(())
    }

    /// The notification address of queue `q`.
    pub fn notifier(&self, q: u16) -> Result<Notifier, Error> {
        self.common.write16(QUEUE_SELECT, q);
        let off = self.common.read16(QUEUE_NOTIFY_OFF) as usize * self.notify_off_multiplier as usize;
        if off + 2 > self.notify_len {
            return Err(Error::MissingCapability("virtio notify cfg too short"));
        }
        Ok(Notifier::new(self.notify.clone(), off, q))
    }

    /// Reads (and so acknowledges) the ISR status; 0 without an ISR block.
    /// Not needed with MSI-X.
    pub fn isr(&self) -> u8 {
        self.isr.as_ref().map_or(0, |m| m.read8(0))
    }

    /// The device-specific configuration block.
    pub fn device_cfg(&self) -> &Arc<dyn Mmio> {
        &self.device
    }

    /// The common configuration block (for lock-free status reads).
    pub fn common_cfg(&self) -> &Arc<dyn Mmio> {
        &self.common
    }

    /// Reads a multi-field device configuration consistently: repeats `f`
    /// until the configuration generation is stable (at most a few times).
    pub fn read_config<R>(&self, mut f: impl FnMut(&dyn Mmio) -> R) -> R {
        let mut r;
        let mut tries = 0;
        loop {
            let before = self.config_generation();
            r = f(&*self.device);
            tries += 1;
            if before == self.config_generation() || tries >= 8 {
                return r;
            }
        }
    }
}

/// Reads the device status through a common block handle (interrupt
/// handlers hold one).
pub fn read_status(common: &dyn Mmio) -> u8 {
    common.read8(DEVICE_STATUS)
}
