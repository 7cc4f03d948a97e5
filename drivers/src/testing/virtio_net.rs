//! A simulated virtio-net PCI function (modern transport), close enough to
//! QEMU's `virtio-net-pci` for the driver's tests: the common
//! configuration registers with their selectors, feature negotiation with
//! FEATURES_OK refusal, per-queue MSI-X vectors, the device configuration
//! block, a control queue answered on notify, and receive / transmit
//! played on demand by the test, raising MSI-X interrupts through the
//! [`FakeHal`] the way the driver's event suppression asks.
//!
//! BAR 4 (64-bit, 16 KiB) holds common cfg at 0, ISR at 0x1000, device cfg
//! at 0x2000, notifications at 0x3000 (multiplier 4, `queue_notify_off` =
//! queue index); BAR 1 holds the MSI-X table.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use spin::Mutex;

use super::hal::FakeHal;
use super::msix::FakeMsix;
use super::pci_config::{FakeConfigSpace, FakeFunction};
use super::ring::{DeviceRing, read_mem, write_mem};
use crate::hal::Mmio;
use crate::pci::{Bdf, regs};
use crate::virtio::features::{RING_EVENT_IDX, VERSION_1};
use crate::virtio::net::features as nf;
use crate::virtio::net::hdr::{HDR_LEN, NetHdr};
use crate::virtio::transport::{NO_VECTOR, status};

pub const BAR4: u64 = 0xfe00_0000;
pub const BAR1: u64 = 0xfeb0_0000;
const COMMON: usize = 0x0000;
const ISR: usize = 0x1000;
const DEVICE: usize = 0x2000;
const NOTIFY: usize = 0x3000;
const NOTIFY_MULT: u32 = 4;

/// What the simulated device offers.
#[derive(Debug, Clone, Copy)]
pub struct FakeVirtioNetConfig {
    pub device_id: u16,
    pub mac: [u8; 6],
    pub max_pairs: u16,
    pub features: u64,
    pub queue_size: u16,
    pub msix_entries: u16,
    pub link_up: bool,
}

impl Default for FakeVirtioNetConfig {
    fn default() -> Self {
        FakeVirtioNetConfig {
            device_id: 0x1041,
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            max_pairs: 4,
            features: nf::WANTED | nf::GUEST_UFO | nf::CTRL_VLAN,
            queue_size: 256,
            msix_entries: 10,
            link_up: true,
        }
    }
}

#[derive(Default, Clone, Copy)]
struct QState {
    size: u16,
    msix: u16,
    enabled: bool,
    desc: u64,
    avail: u64,
    used: u64,
    ring: DeviceRing,
}

struct DevState {
    status: u8,
    dfsel: u32,
    gfsel: u32,
    driver_features: u64,
    config_msix: u16,
    queue_sel: u16,
    queues: Vec<QState>,
    config: [u8; 24],
    generation: u8,
    ctrl_log: Vec<(u8, u8, Vec<u8>)>,
    ctrl_ack: u8,
    ctrl_silent: bool,
    curr_pairs: u16,
    resets: u32,
}

/// The simulated device.
pub struct FakeVirtioNet {
    /// The MSI-X table (BAR 1; PBA at 0x800).
    pub msix: Arc<FakeMsix>,
    cfg: FakeVirtioNetConfig,
    st: Mutex<DevState>,
}

fn vendor_cap(cfg_type: u8, bar: u8, offset: u32, length: u32, mult: Option<u32>) -> Vec<u8> {
    let mut b = vec![if mult.is_some() { 20 } else { 16 }, cfg_type, bar, 0, 0, 0];
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&length.to_le_bytes());
    if let Some(m) = mult {
        b.extend_from_slice(&m.to_le_bytes());
    }
    b
}

impl FakeVirtioNet {
    /// Puts a device at `bdf` in `space`, its BARs behind `hal`.
    pub fn install(space: &FakeConfigSpace, hal: &Arc<FakeHal>, bdf: Bdf, cfg: FakeVirtioNetConfig) -> Arc<FakeVirtioNet> {
        let nq = 2 * cfg.max_pairs as usize + 1;
        let mut config = [0u8; 24];
        config[..6].copy_from_slice(&cfg.mac);
        config[6] = cfg.link_up as u8;
        config[8..10].copy_from_slice(&cfg.max_pairs.to_le_bytes());
        config[12..16].copy_from_slice(&10_000u32.to_le_bytes());
        config[16] = 1;
        let dev = Arc::new(FakeVirtioNet {
            msix: Arc::new(FakeMsix::new(hal.clone(), 0x1000, cfg.msix_entries, 0x800)),
            cfg,
            st: Mutex::new(DevState {
                status: 0,
                dfsel: 0,
                gfsel: 0,
                driver_features: 0,
                config_msix: NO_VECTOR,
                queue_sel: 0,
                queues: vec![QState::default(); nq],
                config,
                generation: 0,
                ctrl_log: Vec::new(),
                ctrl_ack: 0,
                ctrl_silent: false,
                curr_pairs: 1,
                resets: 0,
            }),
        });
        dev.reset_locked(&mut dev.st.lock());
        let mut at = 0;
        let table_size = (cfg.msix_entries - 1).to_le_bytes();
        let msix_body = [table_size[0], table_size[1], 0x01, 0, 0, 0, 0x01, 0x08, 0, 0];
        let f = FakeFunction::new(0x1af4, cfg.device_id, 0x02, 0x00, 0x00)
            .io_bar(0, 0xc000, 0x20)
            .mem_bar32(1, BAR1 as u32, 0x1000, false)
            .mem_bar64(4, BAR4, 0x4000, true)
            .cap(regs::CAP_MSIX, &msix_body, &mut at)
            .cap(regs::CAP_VENDOR, &vendor_cap(1, 4, COMMON as u32, 0x1000, None), &mut at)
            .cap(regs::CAP_VENDOR, &vendor_cap(3, 4, ISR as u32, 0x1000, None), &mut at)
            .cap(regs::CAP_VENDOR, &vendor_cap(4, 4, DEVICE as u32, 0x1000, None), &mut at)
            .cap(regs::CAP_VENDOR, &vendor_cap(2, 4, NOTIFY as u32, 0x1000, Some(NOTIFY_MULT)), &mut at);
        space.add(bdf, f);
        hal.add_region(BAR4, 0x4000, dev.clone());
        hal.add_region(BAR1, 0x1000, dev.msix.clone());
        dev
    }

    /// The device reset: QEMU's virtio-pci also drops pending MSI-X
    /// messages (`msix_unuse_all_vectors`).
    fn reset_locked(&self, s: &mut DevState) {
        self.msix.clear_pending();
        s.status = 0;
        s.driver_features = 0;
        s.config_msix = NO_VECTOR;
        s.curr_pairs = 1;
        s.resets += 1;
        for q in s.queues.iter_mut() {
            *q = QState { size: self.cfg.queue_size, msix: NO_VECTOR, ..QState::default() };
        }
    }

    fn ctrl_queue(&self) -> usize {
        2 * self.cfg.max_pairs as usize
    }

    fn event_idx(s: &DevState) -> bool {
        s.driver_features & RING_EVENT_IDX != 0
    }

    /// Signals MSI-X entry `entry` (sent if unmasked, else left pending).
    fn fire(&self, entry: u16) {
        if entry != NO_VECTOR {
            self.msix.notify(entry);
        }
    }

    /// Answers the control queue.
    fn process_ctrl(&self, s: &mut DevState) {
        let q = self.ctrl_queue();
        let ei = Self::event_idx(s);
        if s.ctrl_silent || !s.queues[q].enabled {
            return;
        }
        while let Some((head, chain)) = s.queues[q].ring.pop_avail() {
            let mut out = Vec::new();
            let mut ack_addr = None;
            for d in &chain {
                if d.writable() {
                    ack_addr = Some(d.addr);
                } else {
                    out.extend(read_mem(d.addr, d.len as usize));
                }
            }
            let (class, cmd) = (out.first().copied().unwrap_or(0xff), out.get(1).copied().unwrap_or(0xff));
            let data = out.get(2..).unwrap_or(&[]).to_vec();
            if class == 4 && cmd == 0 && data.len() == 2 {
                s.curr_pairs = u16::from_le_bytes([data[0], data[1]]);
            }
            s.ctrl_log.push((class, cmd, data));
            if let Some(a) = ack_addr {
                write_mem(a, &[s.ctrl_ack]);
            }
            s.queues[q].ring.push_used(head as u32, 1, ei);
        }
    }

    // ---- what tests do ----

    /// Device status register.
    pub fn status(&self) -> u8 {
        self.st.lock().status
    }

    /// Queue pairs the driver enabled through the control queue.
    pub fn curr_pairs(&self) -> u16 {
        self.st.lock().curr_pairs
    }

    /// Resets seen (including the one at install).
    pub fn resets(&self) -> u32 {
        self.st.lock().resets
    }

    /// Features the driver wrote.
    pub fn driver_features(&self) -> u64 {
        self.st.lock().driver_features
    }

    /// MSI-X entry of queue `q` (`NO_VECTOR` if none).
    pub fn queue_vector(&self, q: usize) -> u16 {
        self.st.lock().queues[q].msix
    }

    pub fn config_vector(&self) -> u16 {
        self.st.lock().config_msix
    }

    /// Whether queue `q` is enabled, and its size.
    pub fn queue(&self, q: usize) -> (bool, u16) {
        let s = self.st.lock();
        (s.queues[q].enabled, s.queues[q].size)
    }

    /// Buffers the driver has made available on queue `q`.
    pub fn avail_pending(&self, q: usize) -> u16 {
        let s = self.st.lock();
        if s.queues[q].enabled { s.queues[q].ring.avail_pending() } else { 0 }
    }

    /// Control commands seen: (class, command, data).
    pub fn ctrl_log(&self) -> Vec<(u8, u8, Vec<u8>)> {
        self.st.lock().ctrl_log.clone()
    }

    pub fn clear_ctrl_log(&self) {
        self.st.lock().ctrl_log.clear();
    }

    /// The ack byte control commands get (0 = OK).
    pub fn set_ctrl_ack(&self, ack: u8) {
        self.st.lock().ctrl_ack = ack;
    }

    /// Stop answering the control queue.
    pub fn set_ctrl_silent(&self, silent: bool) {
        self.st.lock().ctrl_silent = silent;
    }

    /// Receives `frame` on queue pair `pair` with header `hdr` (its
    /// `num_buffers` is filled in). False if the driver has no room.
    pub fn deliver(&self, pair: usize, hdr: NetHdr, frame: &[u8]) -> bool {
        let mut pkt = Vec::with_capacity(HDR_LEN + frame.len());
        let mrg = self.st.lock().driver_features & nf::MRG_RXBUF != 0;
        let mut bufs = Vec::new();
        {
            let mut s = self.st.lock();
            let q = &mut s.queues[2 * pair];
            if !q.enabled {
                return false;
            }
            let total = HDR_LEN + frame.len();
            let mut room = 0;
            let save = q.ring;
            while room < total {
                let Some((head, chain)) = q.ring.pop_avail() else {
                    q.ring = save;
                    return false;
                };
                room += chain[0].len as usize;
                bufs.push((head, chain[0]));
                if !mrg && room < total {
                    q.ring = save;
                    return false;
                }
            }
        }
        let h = NetHdr { num_buffers: bufs.len() as u16, ..hdr };
        pkt.extend_from_slice(&h.to_bytes());
        pkt.extend_from_slice(frame);
        let mut entries = Vec::new();
        let mut off = 0;
        for (head, d) in &bufs {
            let n = (pkt.len() - off).min(d.len as usize);
            write_mem(d.addr, &pkt[off..off + n]);
            entries.push((*head as u32, n as u32));
            off += n;
        }
        self.complete(2 * pair, &entries);
        true
    }

    /// Fills the next available Rx buffers of `pair` with `bytes[i]` and
    /// reports length `lens[i]` for each (malformed-receive tests).
    pub fn deliver_raw(&self, pair: usize, bytes: &[&[u8]], lens: &[u32]) -> bool {
        let mut entries = Vec::new();
        {
            let mut s = self.st.lock();
            let q = &mut s.queues[2 * pair];
            for (b, len) in bytes.iter().zip(lens) {
                let Some((head, chain)) = q.ring.pop_avail() else { return false };
                write_mem(chain[0].addr, &b[..b.len().min(chain[0].len as usize)]);
                entries.push((head as u32, *len));
            }
        }
        self.complete(2 * pair, &entries);
        true
    }

    /// Publishes used entries `(id, len)` on queue `q` at once and raises
    /// its interrupt if the driver asked for one.
    pub fn complete(&self, q: usize, entries: &[(u32, u32)]) {
        let fire = {
            let mut s = self.st.lock();
            let ei = Self::event_idx(&s);
            let qs = &mut s.queues[q];
            let old = qs.ring.used_idx;
            for (id, len) in entries {
                qs.ring.put_used(*id, *len);
            }
            qs.ring.publish_used(old, ei).then_some(qs.msix)
        };
        if let Some(v) = fire {
            self.fire(v);
        }
    }

    /// Takes every packet the driver queued on Tx queue `pair`, without
    /// completing them: (head, header, frame).
    pub fn take_tx(&self, pair: usize) -> Vec<(u16, NetHdr, Vec<u8>)> {
        let mut s = self.st.lock();
        let q = &mut s.queues[2 * pair + 1];
        let mut out = Vec::new();
        if !q.enabled {
            return out;
        }
        while let Some((head, chain)) = q.ring.pop_avail() {
            let mut bytes = Vec::new();
            for d in &chain {
                bytes.extend(read_mem(d.addr, d.len as usize));
            }
            let hdr = NetHdr::decode(&bytes);
            out.push((head, hdr, bytes.get(HDR_LEN..).unwrap_or(&[]).to_vec()));
        }
        out
    }

    /// Takes and completes every queued packet on Tx queue `pair`.
    pub fn complete_tx(&self, pair: usize) -> Vec<(NetHdr, Vec<u8>)> {
        let taken = self.take_tx(pair);
        let entries: Vec<(u32, u32)> = taken.iter().map(|(h, _, _)| (*h as u32, 0)).collect();
        if !entries.is_empty() {
            self.complete(2 * pair + 1, &entries);
        }
        taken.into_iter().map(|(_, h, b)| (h, b)).collect()
    }

    /// Sets the link and raises the configuration interrupt.
    pub fn set_link(&self, up: bool) {
        let v = {
            let mut s = self.st.lock();
            s.config[6] = (s.config[6] & !1) | up as u8;
            s.generation = s.generation.wrapping_add(1);
            s.config_msix
        };
        self.fire(v);
    }

    /// Sets DEVICE_NEEDS_RESET and raises the configuration interrupt.
    pub fn signal_needs_reset(&self) {
        let v = {
            let mut s = self.st.lock();
            s.status |= status::DEVICE_NEEDS_RESET;
            s.config_msix
        };
        self.fire(v);
    }

    /// Raises queue `q`'s interrupt regardless of suppression.
    pub fn raise(&self, q: usize) {
        let v = self.st.lock().queues[q].msix;
        self.fire(v);
    }

    fn vector_ok(&self, v: u16) -> u16 {
        if v == NO_VECTOR || v < self.cfg.msix_entries { v } else { NO_VECTOR }
    }

    fn read_reg(&self, off: usize, width: usize) -> u64 {
        let s = self.st.lock();
        let q = s.queues.get(s.queue_sel as usize);
        match off {
            o if (DEVICE..DEVICE + 24).contains(&o) => {
                let o = o - DEVICE;
                (0..width).fold(0u64, |acc, i| acc | (*s.config.get(o + i).unwrap_or(&0) as u64) << (8 * i))
            }
            o if (ISR..DEVICE).contains(&o) => 0,
            0x00 => s.dfsel as u64,
            0x04 => match s.dfsel {
                0 => self.cfg.features as u32 as u64,
                1 => self.cfg.features >> 32,
                _ => 0,
            },
            0x08 => s.gfsel as u64,
            0x0c => (s.driver_features >> (32 * s.gfsel.min(1))) as u32 as u64,
            0x10 => s.config_msix as u64,
            0x12 => s.queues.len() as u64,
            0x14 => s.status as u64,
            0x15 => s.generation as u64,
            0x16 => s.queue_sel as u64,
            0x18 => q.map_or(0, |q| q.size as u64),
            0x1a => q.map_or(NO_VECTOR as u64, |q| q.msix as u64),
            0x1c => q.map_or(0, |q| q.enabled as u64),
            0x1e => s.queue_sel as u64,
            0x20 => q.map_or(0, |q| q.desc),
            0x28 => q.map_or(0, |q| q.avail),
            0x30 => q.map_or(0, |q| q.used),
            _ => 0,
        }
    }

    fn write_reg(&self, off: usize, v: u64) {
        let mut s = self.st.lock();
        let sel = s.queue_sel as usize;
        match off {
            o if o >= NOTIFY => {
                let q = (o - NOTIFY) / NOTIFY_MULT as usize;
                if q == self.ctrl_queue() {
                    self.process_ctrl(&mut s);
                }
            }
            0x00 => s.dfsel = v as u32,
            0x08 => s.gfsel = v as u32,
            0x0c => {
                let shift = 32 * s.gfsel.min(1);
                s.driver_features = (s.driver_features & !(0xffff_ffffu64 << shift)) | ((v as u32 as u64) << shift);
            }
            0x10 => s.config_msix = self.vector_ok(v as u16),
            0x14 => {
                let v = v as u8;
                if v == 0 {
                    self.reset_locked(&mut s);
                } else {
                    let mut v = v;
                    let bad = s.driver_features & !self.cfg.features != 0 || s.driver_features & VERSION_1 == 0;
                    if v & status::FEATURES_OK != 0 && s.status & status::FEATURES_OK == 0 && bad {
                        v &= !status::FEATURES_OK;
                    }
                    s.status = v | (s.status & status::DEVICE_NEEDS_RESET);
                }
            }
            0x16 => s.queue_sel = v as u16,
            0x18 if sel < s.queues.len() => s.queues[sel].size = v as u16,
            0x1a if sel < s.queues.len() => s.queues[sel].msix = self.vector_ok(v as u16),
            0x1c if sel < s.queues.len() && v == 1 => {
                let q = &mut s.queues[sel];
                q.enabled = true;
                q.ring = DeviceRing::new(q.size, q.desc, q.avail, q.used);
            }
            0x20 if sel < s.queues.len() => s.queues[sel].desc = v,
            0x28 if sel < s.queues.len() => s.queues[sel].avail = v,
            0x30 if sel < s.queues.len() => s.queues[sel].used = v,
            _ => {}
        }
    }
}

impl Mmio for FakeVirtioNet {
    fn read8(&self, off: usize) -> u8 {
        self.read_reg(off, 1) as u8
    }
    fn read16(&self, off: usize) -> u16 {
        self.read_reg(off, 2) as u16
    }
    fn read32(&self, off: usize) -> u32 {
        self.read_reg(off, 4) as u32
    }
    fn read64(&self, off: usize) -> u64 {
        self.read_reg(off, 8)
    }
    fn write8(&self, off: usize, v: u8) {
        self.write_reg(off, v as u64)
    }
    fn write16(&self, off: usize, v: u16) {
        self.write_reg(off, v as u64)
    }
    fn write32(&self, off: usize, v: u32) {
        self.write_reg(off, v as u64)
    }
    fn write64(&self, off: usize, v: u64) {
        self.write_reg(off, v)
    }
}
