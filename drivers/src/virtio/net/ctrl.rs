//! The control virtqueue (virtio 1.x, 5.1.6.5): each command is a chain
//! `class u8, command u8` + command data (device-readable) + `ack u8`
//! (device-writable). One command is in flight at a time (the caller holds
//! the queue's lock); the driver polls for the answer, which QEMU gives
//! before the notify write returns.
//!
//! A command the device never answers breaks the queue (its buffer still
//! belongs to the device) and calls for a device reset.

use alloc::sync::Arc;

use arbalest_mac::DmaAllocator;

use crate::dma_mem::DmaMem;
use crate::hal::Hal;
use crate::virtio::queue::{QueueError, Seg, VirtQueue};

pub const CLASS_RX: u8 = 0;
pub const RX_PROMISC: u8 = 0;
pub const RX_ALLMULTI: u8 = 1;

pub const CLASS_MAC: u8 = 1;
pub const MAC_TABLE_SET: u8 = 0;
pub const MAC_ADDR_SET: u8 = 1;

pub const CLASS_MQ: u8 = 4;
pub const MQ_VQ_PAIRS_SET: u8 = 0;

pub const ACK_OK: u8 = 0;
pub const ACK_ERR: u8 = 1;

const BUF_SIZE: usize = 4096;
const DATA_OFF: usize = 64;
const ACK_OFF: usize = BUF_SIZE - 64;
/// Largest command payload.
pub const MAX_DATA: usize = ACK_OFF - DATA_OFF;

const TIMEOUT_NS: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtrlError {
    /// The device answered with an error.
    Rejected,
    /// No answer in time; the queue is now broken.
    Timeout,
    /// The queue is broken (bad used entry): the device needs a reset.
    Broken,
    /// The payload is too large (a driver bug).
    TooLarge,
}

/// The control queue and its command buffer.
pub struct CtrlQueue {
    pub(super) vq: VirtQueue<()>,
    buf: DmaMem,
}

impl CtrlQueue {
    pub fn new(vq: VirtQueue<()>, dma: Arc<dyn DmaAllocator>) -> Option<CtrlQueue> {
        Some(CtrlQueue { vq, buf: DmaMem::new(dma, BUF_SIZE, 64)? })
    }

    /// Runs one command and waits for the device's ack.
    pub fn command(&mut self, hal: &dyn Hal, class: u8, cmd: u8, data: &[u8]) -> Result<(), CtrlError> {
        if data.len() > MAX_DATA {
            return Err(CtrlError::TooLarge);
        }
        self.buf.write8(0, class);
        self.buf.write8(1, cmd);
        self.buf.write_bytes(DATA_OFF, data);
        self.buf.write8(ACK_OFF, 0xff);
        let hdr = Seg { addr: self.buf.paddr(0), len: 2, writable: false };
        let body = Seg { addr: self.buf.paddr(DATA_OFF), len: data.len() as u32, writable: false };
        let ack = Seg { addr: self.buf.paddr(ACK_OFF), len: 1, writable: true };
        let added = if data.is_empty() { self.vq.add(&[hdr, ack], ()) } else { self.vq.add(&[hdr, body, ack], ()) };
        if added.is_err() {
            return Err(CtrlError::Broken);
        }
        self.vq.kick();
        let start = hal.now_ns();
        loop {
            match self.vq.pop_used() {
                Ok(Some(_)) => break,
                Ok(None) => {}
                Err(QueueError::Full | QueueError::NoSegments) => {}
                Err(_) => return Err(CtrlError::Broken),
            }
            if hal.now_ns().wrapping_sub(start) > TIMEOUT_NS {
                self.vq.mark_broken();
                return Err(CtrlError::Timeout);
            }
            hal.delay_us(5);
        }
        if self.buf.read8(ACK_OFF) == ACK_OK { Ok(()) } else { Err(CtrlError::Rejected) }
    }

    /// Forgets state after a device reset.
    pub fn reset(&mut self) {
        self.vq.reset(|()| {});
    }
}
