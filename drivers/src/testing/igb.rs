//! A simulated Intel 82576 PCI function, close enough to QEMU's `igb`
//! (`hw/net/igb_core.c`) for the driver's tests: a register file with the
//! device's side effects (global reset, clear-on-read counters and cause
//! registers, EIMS/EIMC/EIAC and IVAR routing of MSI-X vectors, EERD and
//! MDIC, link auto-negotiation raising ICR.LSC), receive into the driver's
//! descriptor rings with advanced write-backs (RSS by Toeplitz hash and
//! RETA, unicast filters with pool select and VMDq pools, multicast hash,
//! checksum status), and transmit from them (context and data
//! descriptors, DD write-back on RS).
//!
//! Like QEMU: RSS only with `MRQC[1:0] = 10b` and `RXCSUM.PCSD`; in VMDq
//! mode broadcast goes to pools with VMOLR.BAM, unmatched multicast that
//! hits the MTA to pools with VMOLR.ROMPE, unmatched unicast to the
//! default pool; a frame for a full ring raises ICR.RXO (and, unlike QEMU,
//! also counts MPC and, with SRRCTL.DROP_EN, RQDPC, so the driver's
//! statistics can be tested). Interrupts are delivered synchronously
//! through the [`FakeHal`], on the caller's thread.
//!
//! BAR 0 (32-bit, 128 KiB) holds the registers; BAR 3 (16 KiB) the MSI-X
//! table (PBA at 0x2000).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use spin::Mutex;

use crate::hal::Mmio;
use crate::igb::desc::{TX_DCMD_DEXT, TX_DTYP_CTXT, TxContext};
use crate::igb::regs::*;
use crate::pci::{Bdf, regs as pci_regs};
use crate::testing::{FakeConfigSpace, FakeFunction, FakeHal, FakeMsix, read_mem, write_mem};

pub const BAR0: u64 = 0xfe80_0000;
pub const BAR3: u64 = 0xfe84_0000;
const MSIX_MASK: u32 = 0x01ff_ffff;

/// What the simulated function looks like.
#[derive(Debug, Clone, Copy)]
pub struct FakeIgbConfig {
    pub device_id: u16,
    pub mac: [u8; 6],
    pub msix_entries: u16,
    /// The cable: the link comes up after auto-negotiation if plugged.
    pub link_up: bool,
    /// The NVM auto-read loads the MAC address into RAL0/RAH0 at reset.
    pub mac_in_rar: bool,
    /// EERD answers with the MAC address in NVM words 0..2.
    pub nvm_mac: bool,
    /// CTRL.RST never clears (a dead device).
    pub reset_sticks: bool,
}

impl Default for FakeIgbConfig {
    fn default() -> Self {
        FakeIgbConfig {
            device_id: 0x10c9,
            mac: [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef],
            msix_entries: 10,
            link_up: true,
            mac_in_rar: true,
            nvm_mac: true,
            reset_sticks: false,
        }
    }
}

/// A packet the device transmitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPacket {
    pub queue: usize,
    pub bytes: Vec<u8>,
    /// `cmd_type_len` and `olinfo_status` of the first data descriptor.
    pub cmd_type_len: u32,
    pub olinfo_status: u32,
    /// The context the packet used (if it asked for offloads).
    pub ctx: Option<TxContext>,
    pub data_descs: usize,
}

struct TxPartial {
    cmd: u32,
    olinfo: u32,
    bytes: Vec<u8>,
    descs: usize,
}

struct State {
    regs: Vec<u32>,
    autoneg_done: bool,
    link_up: bool,
    tx_hold: bool,
    tx_ctx: Vec<[Option<TxContext>; 2]>,
    tx_cur: Vec<Option<TxPartial>>,
    sent: Vec<SentPacket>,
    resets: u32,
    reset_sticks: bool,
}

impl State {
    fn r(&self, off: usize) -> u32 {
        self.regs[off / 4]
    }
    fn w(&mut self, off: usize, v: u32) {
        self.regs[off / 4] = v;
    }
    fn add(&mut self, off: usize, n: u32) {
        let v = self.r(off).wrapping_add(n);
        self.w(off, v);
    }
}

/// The simulated device.
pub struct FakeIgb {
    /// The MSI-X table (BAR 3; PBA at 0x2000).
    pub msix: Arc<FakeMsix>,
    cfg: FakeIgbConfig,
    st: Mutex<State>,
}

/// Bits set in `m`, lowest first.
fn bits(m: u32) -> impl Iterator<Item = usize> {
    (0..32).filter(move |b| m & (1 << b) != 0)
}

impl FakeIgb {
    /// Puts a device at `bdf` in `space`, its BARs behind `hal`.
    pub fn install(space: &FakeConfigSpace, hal: &Arc<FakeHal>, bdf: Bdf, cfg: FakeIgbConfig) -> Arc<FakeIgb> {
        let dev = Arc::new(FakeIgb {
            msix: Arc::new(FakeMsix::new(hal.clone(), 0x4000, cfg.msix_entries, 0x2000)),
            cfg,
            st: Mutex::new(State {
                regs: vec![0; BAR_SIZE / 4],
                autoneg_done: true,
                link_up: cfg.link_up,
                tx_hold: false,
                tx_ctx: vec![[None; 2]; NUM_QUEUES],
                tx_cur: (0..NUM_QUEUES).map(|_| None).collect(),
                sent: Vec::new(),
                resets: 0,
                reset_sticks: cfg.reset_sticks,
            }),
        });
        dev.reset_locked(&mut dev.st.lock());
        let ts = (cfg.msix_entries - 1).to_le_bytes();
        let msix_body = [ts[0], ts[1], 0x03, 0, 0, 0, 0x03, 0x20, 0, 0];
        let mut at = 0;
        let f = FakeFunction::new(0x8086, cfg.device_id, 0x02, 0x00, 0x00)
            .mem_bar32(0, BAR0 as u32, BAR_SIZE as u32, false)
            .io_bar(2, 0xc000, 0x20)
            .mem_bar32(3, BAR3 as u32, 0x4000, false)
            .cap(pci_regs::CAP_MSIX, &msix_body, &mut at);
        space.add(bdf, f);
        hal.add_region(BAR0, BAR_SIZE, dev.clone());
        hal.add_region(BAR3, 0x4000, dev.msix.clone());
        dev
    }

    /// The global reset: registers to their defaults, link down until
    /// auto-negotiation is restarted (as QEMU's PHY reset does).
    fn reset_locked(&self, s: &mut State) {
        s.regs.iter_mut().for_each(|r| *r = 0);
        s.w(CTRL, CTRL_FD | CTRL_LRST | (2 << 8));
        s.w(EECD, (1 << 8) | EECD_AUTO_RD);
        s.w(rxdctl(0), DCTL_ENABLE | (1 << 16));
        for q in 1..NUM_QUEUES {
            s.w(rxdctl(q), 1 << 16);
        }
        s.w(txdctl(0), DCTL_ENABLE);
        s.w(RXCSUM, RXCSUM_IPOFLD | RXCSUM_TUOFLD);
        s.w(VFRE, 0xff);
        s.w(VFTE, 0xff);
        for p in 0..NUM_POOLS {
            s.w(vmolr(p), 0x2600 | VMOLR_STRCRC);
        }
        if self.cfg.mac_in_rar {
            let m = self.cfg.mac;
            s.w(ral(0), u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
            s.w(rah(0), u16::from_le_bytes([m[4], m[5]]) as u32 | RAH_AV);
        }
        s.autoneg_done = false;
        s.tx_ctx.iter_mut().for_each(|c| *c = [None; 2]);
        s.tx_cur.iter_mut().for_each(|c| *c = None);
        s.resets += 1;
    }

    fn status(&self, s: &State) -> u32 {
        let mut v = STATUS_FD | (2 << STATUS_SPEED_SHIFT);
        if s.link_up && s.autoneg_done {
            v |= STATUS_LU;
        }
        if s.r(CTRL) & CTRL_GIO_MASTER_DISABLE == 0 {
            v |= STATUS_GIO_MASTER_ENABLE;
        }
        v
    }

    /// Changes EICR / EIMS through `f` and returns the vectors newly due
    /// (EICR & EIMS rising), auto-clearing their causes per EIAC.
    fn update_eicr(s: &mut State, f: impl FnOnce(&mut State)) -> Vec<usize> {
        let old = s.r(EICR) & s.r(EIMS);
        f(s);
        let raised = s.r(EICR) & s.r(EIMS) & !old;
        if s.r(GPIE) & GPIE_MSIX_MODE == 0 {
            return Vec::new();
        }
        let due: Vec<usize> = bits(raised).collect();
        for &v in &due {
            let c = s.r(EICR) & !(s.r(EIAC) & (1 << v));
            s.w(EICR, c);
        }
        due
    }

    /// Changes ICR / IMS through `f`; newly due other causes set the
    /// IVAR_MISC vector's EICR bit.
    fn update_icr(s: &mut State, f: impl FnOnce(&mut State)) -> Vec<usize> {
        let old = s.r(ICR) & s.r(IMS);
        f(s);
        let raised = s.r(ICR) & s.r(IMS) & !old;
        let misc = (s.r(IVAR_MISC) >> 8) & 0xff;
        if raised == 0 || misc & IVAR_VALID as u32 == 0 {
            return Vec::new();
        }
        Self::update_eicr(s, |s| {
            let v = s.r(EICR) | (1 << (misc & 0x1f));
            s.w(EICR, v);
        })
    }

    /// Vector of Rx (`tx` false) or Tx queue `q` per IVAR.
    fn queue_vector(s: &State, q: usize, tx: bool) -> Option<usize> {
        let n = if q < 8 { 4 * q } else { 4 * (q - 8) + 2 } + usize::from(tx);
        let b = (s.r(ivar(n / 4)) >> (8 * (n % 4))) & 0xff;
        (b & IVAR_VALID as u32 != 0).then_some((b & 0x1f) as usize)
    }

    fn queue_eicr(s: &mut State, q: usize, tx: bool) -> Vec<usize> {
        match Self::queue_vector(s, q, tx) {
            Some(v) => Self::update_eicr(s, |s| {
                let e = s.r(EICR) | (1 << v);
                s.w(EICR, e);
            }),
            None => Vec::new(),
        }
    }

    /// Signals the MSI-X entries of `due` (outside the state lock): sent
    /// if unmasked, else left pending until unmasked, as QEMU's
    /// `msix_notify` does (EICR was auto-cleared either way).
    fn fire(&self, due: Vec<usize>) {
        for v in due {
            self.msix.notify(v as u16);
        }
    }

    // ---- receive ----

    fn rar_pools(s: &State, dst: &[u8]) -> (bool, u8) {
        let mut hit = false;
        let mut pools = 0u8;
        for i in 0..RAR_ENTRIES {
            let hi = s.r(rah(i));
            if hi & RAH_AV == 0 {
                continue;
            }
            let lo = s.r(ral(i)).to_le_bytes();
            let h = hi.to_le_bytes();
            if dst == [lo[0], lo[1], lo[2], lo[3], h[0], h[1]] {
                hit = true;
                pools |= ((hi & RAH_POOLSEL_MASK) >> RAH_POOLSEL_SHIFT) as u8;
            }
        }
        (hit, pools)
    }

    fn mta_hit(s: &State, dst: &[u8]) -> bool {
        let h = ((((dst[5] as u32) << 8) | dst[4] as u32) >> 4) & 0xfff;
        s.r(mta((h >> 5) as usize)) & (1 << (h & 31)) != 0
    }

    /// RSS (type, hash) of an IPv4 frame, per MRQC's fields.
    fn rss(s: &State, f: &[u8]) -> (u16, u32) {
        let mrqc = s.r(MRQC);
        if f.len() < 34 || f[12..14] != [0x08, 0x00] {
            return (0, 0);
        }
        let key: Vec<u8> = (0..RSSRK_REGS).flat_map(|n| s.r(rssrk(n)).to_le_bytes()).collect();
        let key: [u8; 40] = key.try_into().unwrap_or([0; 40]);
        let ihl = ((f[14] & 0xf) as usize) * 4;
        let mut input = f[26..34].to_vec();
        let l4 = 14 + ihl;
        let ports = f.len() >= l4 + 4;
        match f[23] {
            6 if ports && mrqc & MRQC_RSS_FIELD_IPV4_TCP != 0 => {
                input.extend_from_slice(&f[l4..l4 + 4]);
                (1, toeplitz(&key, &input))
            }
            17 if ports && mrqc & MRQC_RSS_FIELD_IPV4_UDP != 0 => {
                input.extend_from_slice(&f[l4..l4 + 4]);
                (7, toeplitz(&key, &input))
            }
            _ if mrqc & MRQC_RSS_FIELD_IPV4 != 0 => (2, toeplitz(&key, &input)),
            _ => (0, 0),
        }
    }

    /// Which queues a frame goes to (and its RSS type and hash).
    fn classify(s: &State, f: &[u8]) -> (Vec<usize>, u16, u32) {
        let dst = &f[0..6];
        let bcast = dst == [0xff; 6];
        let mcast = dst[0] & 1 != 0;
        let (hit, rar_pools) = Self::rar_pools(s, dst);
        if s.r(MRQC) & 1 != 0 {
            let mut pools: u32 = 0;
            if bcast {
                pools = (0..NUM_POOLS).filter(|p| s.r(vmolr(*p)) & VMOLR_BAM != 0).fold(0, |a, p| a | 1 << p);
            } else if hit {
                pools = rar_pools as u32;
            } else if mcast {
                if Self::mta_hit(s, dst) {
                    pools = (0..NUM_POOLS).filter(|p| s.r(vmolr(*p)) & VMOLR_ROMPE != 0).fold(0, |a, p| a | 1 << p);
                }
            } else if s.r(VT_CTL) & VT_CTL_DIS_DEF_POOL == 0 {
                pools = 1 << ((s.r(VT_CTL) >> VT_CTL_DEF_PL_SHIFT) & 7);
            }
            pools &= s.r(VFRE);
            return (bits(pools).collect(), 0, 0);
        }
        let rctl = s.r(RCTL);
        let accept = (bcast && rctl & RCTL_BAM != 0)
            || (mcast && !bcast && (rctl & RCTL_MPE != 0 || Self::mta_hit(s, dst)))
            || (!mcast && rctl & RCTL_UPE != 0)
            || hit;
        if !accept {
            return (Vec::new(), 0, 0);
        }
        if s.r(MRQC) & 3 == MRQC_ENABLE_RSS_MQ && s.r(RXCSUM) & RXCSUM_PCSD != 0 {
            let (ty, hash) = Self::rss(s, f);
            let q = if ty == 0 { 0 } else { ((s.r(reta(((hash & 0x7f) / 4) as usize)) >> (8 * (hash & 3))) & 0xf) as usize };
            return (vec![q], ty, hash);
        }
        (vec![0], 0, 0)
    }

    /// Checksum status bits of an IPv4 frame, as the device reports them.
    fn csum_status(s: &State, f: &[u8]) -> u32 {
        let rxcsum = s.r(RXCSUM);
        if f.len() < 34 || f[12..14] != [0x08, 0x00] {
            return 0;
        }
        let ihl = ((f[14] & 0xf) as usize) * 4;
        let mut st = 0;
        if rxcsum & RXCSUM_IPOFLD != 0 {
            st |= crate::igb::desc::RX_STAT_IPCS;
            if fold(sum(&f[14..14 + ihl])) != 0xffff {
                st |= crate::igb::desc::RX_ERR_IPE;
            }
        }
        let proto = f[23];
        if rxcsum & RXCSUM_TUOFLD != 0 && (proto == 6 || proto == 17) {
            st |= crate::igb::desc::RX_STAT_L4I;
            if proto == 17 {
                st |= crate::igb::desc::RX_STAT_UDPCS;
            }
            let l4 = &f[14 + ihl..];
            let udp_none = proto == 17 && l4.len() >= 8 && l4[6..8] == [0, 0];
            if !udp_none && fold(pseudo(f, proto, l4.len()) + sum(l4)) != 0xffff {
                st |= crate::igb::desc::RX_ERR_L4E;
            }
        }
        st
    }

    /// Writes one frame (or raw bytes with a given write-back) into the
    /// next descriptor of queue `q`; false if the ring is empty.
    fn write_rx(s: &mut State, q: usize, bytes: &[u8], pkt_info: u16, rss: u32, status: u32, length: u16) -> bool {
        let len = (s.r(rdlen(q)) / 16) as usize;
        let (head, tail) = (s.r(rdh(q)) as usize, s.r(rdt(q)) as usize);
        if len == 0 || head == tail || tail >= len {
            return false;
        }
        let base = s.r(rdbal(q)) as u64 | ((s.r(rdbah(q)) as u64) << 32);
        let d = base + 16 * head as u64;
        let buf = u64::from_le_bytes(read_mem(d, 8).try_into().unwrap_or([0; 8]));
        let bufsize = ((s.r(srrctl(q)) & SRRCTL_BSIZEPKT_MASK) as usize * 1024).max(1024);
        if buf != 0 {
            write_mem(buf, &bytes[..bytes.len().min(bufsize)]);
        }
        let mut wb = [0u8; 16];
        wb[0..2].copy_from_slice(&pkt_info.to_le_bytes());
        wb[4..8].copy_from_slice(&rss.to_le_bytes());
        wb[12..14].copy_from_slice(&length.to_le_bytes());
        write_mem(d, &wb);
        // Status (with DD) last, as QEMU does.
        write_mem(d + 8, &(status | 1).to_le_bytes());
        s.w(rdh(q), ((head + 1) % len) as u32);
        true
    }

    /// Receives `frame` from the wire: filters, picks the queues, writes
    /// it, raises interrupts. Returns the queues it was written to.
    pub fn receive(&self, frame: &[u8]) -> Vec<usize> {
        let mut due = Vec::new();
        let mut done = Vec::new();
        {
            let mut s = self.st.lock();
            if s.r(RCTL) & RCTL_EN == 0 || self.status(&s) & STATUS_LU == 0 || frame.len() < 14 {
                return done;
            }
            let (queues, ty, hash) = Self::classify(&s, frame);
            let status = 0x2 | Self::csum_status(&s, frame);
            for q in queues {
                if s.r(rxdctl(q)) & DCTL_ENABLE == 0 {
                    continue;
                }
                if !Self::write_rx(&mut s, q, frame, ty, hash, status, frame.len() as u16) {
                    s.add(MPC, 1);
                    if s.r(srrctl(q)) & SRRCTL_DROP_EN != 0 {
                        s.add(rqdpc(q), 1);
                    }
                    due.extend(Self::update_icr(&mut s, |s| {
                        let v = s.r(ICR) | ICR_RXO;
                        s.w(ICR, v);
                    }));
                    continue;
                }
                s.add(GPRC, 1);
                s.add(GORCL, frame.len() as u32);
                if frame[0..6] == [0xff; 6] {
                    s.add(BPRC, 1);
                } else if frame[0] & 1 != 0 {
                    s.add(MPRC, 1);
                }
                done.push(q);
                due.extend(Self::queue_eicr(&mut s, q, false));
            }
        }
        self.fire(due);
        done
    }

    /// Writes `bytes` into queue `q`'s next buffer with a write-back the
    /// test chooses (DD is added); raises the queue's interrupt. False if
    /// the ring is empty.
    pub fn receive_raw(&self, q: usize, bytes: &[u8], status: u32, length: u16) -> bool {
        let due = {
            let mut s = self.st.lock();
            if !Self::write_rx(&mut s, q, bytes, 0, 0, status, length) {
                return false;
            }
            Self::queue_eicr(&mut s, q, false)
        };
        self.fire(due);
        true
    }

    /// Descriptors queue `q` holds for the device (RDT - RDH).
    pub fn rx_free(&self, q: usize) -> usize {
        let s = self.st.lock();
        let len = (s.r(rdlen(q)) / 16) as usize;
        if len == 0 {
            return 0;
        }
        (s.r(rdt(q)) as usize + len - s.r(rdh(q)) as usize) % len
    }

    // ---- transmit ----

    fn process_tx(s: &mut State, q: usize) -> Vec<usize> {
        let vmdq_off = s.r(MRQC) & 1 != 0 && s.r(VFTE) & (1 << (q % 8)) == 0;
        if s.r(TCTL) & TCTL_EN == 0 || s.r(txdctl(q)) & DCTL_ENABLE == 0 || vmdq_off {
            return Vec::new();
        }
        let len = (s.r(tdlen(q)) / 16) as usize;
        let base = s.r(tdbal(q)) as u64 | ((s.r(tdbah(q)) as u64) << 32);
        let mut eic = false;
        while len > 0 && s.r(tdh(q)) != s.r(tdt(q)) && (s.r(tdt(q)) as usize) < len {
            let head = s.r(tdh(q)) as usize;
            let d = base + 16 * head as u64;
            let raw = read_mem(d, 16);
            let w = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
            let (lo, hi, cmd, olinfo) = (w(0), w(4), w(8), w(12));
            if cmd & TX_DCMD_DEXT != 0 {
                match (cmd >> 20) & 0xf {
                    2 => {
                        let ctx = TxContext {
                            vlan_macip_lens: lo,
                            seqnum_seed: hi,
                            type_tucmd_mlhl: cmd & !(TX_DTYP_CTXT | TX_DCMD_DEXT),
                            mss_l4len_idx: olinfo,
                        };
                        s.tx_ctx[q][((olinfo >> 4) & 1) as usize] = Some(ctx);
                    }
                    3 => {
                        let addr = lo as u64 | ((hi as u64) << 32);
                        let cur = s.tx_cur[q].get_or_insert(TxPartial { cmd, olinfo, bytes: Vec::new(), descs: 0 });
                        cur.bytes.extend(read_mem(addr, (cmd & 0xffff) as usize));
                        cur.descs += 1;
                        if cmd & (1 << 24) != 0 {
                            let p = s.tx_cur[q].take().unwrap_or(TxPartial { cmd, olinfo, bytes: Vec::new(), descs: 0 });
                            let wants_ctx = p.olinfo & (3 << 8) != 0 || p.cmd & (1 << 31) != 0;
                            let ctx = if wants_ctx { s.tx_ctx[q][((p.olinfo >> 4) & 1) as usize] } else { None };
                            s.add(GPTC, 1);
                            s.add(GOTCL, p.bytes.len() as u32);
                            s.sent.push(SentPacket {
                                queue: q,
                                bytes: p.bytes,
                                cmd_type_len: p.cmd,
                                olinfo_status: p.olinfo,
                                ctx,
                                data_descs: p.descs,
                            });
                        }
                    }
                    _ => {}
                }
            }
            if cmd & (1 << 27) != 0 {
                write_mem(d + 12, &(olinfo | 1).to_le_bytes());
                eic = true;
            }
            s.w(tdh(q), ((head + 1) % len) as u32);
        }
        if eic { Self::queue_eicr(s, q, true) } else { Vec::new() }
    }

    /// Holds transmission: descriptors stay queued until [`Self::release_tx`].
    pub fn hold_tx(&self, hold: bool) {
        self.st.lock().tx_hold = hold;
    }

    /// Transmits everything queued on every queue (completions and their
    /// interrupts included).
    pub fn release_tx(&self) {
        let due = {
            let mut s = self.st.lock();
            (0..NUM_QUEUES).flat_map(|q| Self::process_tx(&mut s, q)).collect()
        };
        self.fire(due);
    }

    /// Packets transmitted since the last call.
    pub fn take_tx(&self) -> Vec<SentPacket> {
        core::mem::take(&mut self.st.lock().sent)
    }

    // ---- other ----

    /// Plugs or unplugs the cable (ICR.LSC when the state changes).
    pub fn set_link(&self, up: bool) {
        let due = {
            let mut s = self.st.lock();
            let before = self.status(&s) & STATUS_LU;
            s.link_up = up;
            if self.status(&s) & STATUS_LU == before {
                return;
            }
            Self::update_icr(&mut s, |s| {
                let v = s.r(ICR) | ICR_LSC;
                s.w(ICR, v);
            })
        };
        self.fire(due);
    }

    /// Raises interrupt causes as ICS would.
    pub fn raise_icr(&self, causes: u32) {
        let due = Self::update_icr(&mut self.st.lock(), |s| {
            let v = s.r(ICR) | causes;
            s.w(ICR, v);
        });
        self.fire(due);
    }

    /// A register's value without read side effects.
    pub fn reg(&self, off: usize) -> u32 {
        let s = self.st.lock();
        if off == STATUS { self.status(&s) } else { s.r(off) }
    }

    /// Adds `n` to a counter register.
    pub fn add_stat(&self, off: usize, n: u32) {
        self.st.lock().add(off, n);
    }

    /// From now on CTRL.RST never clears (the device dies).
    pub fn set_reset_sticks(&self, sticks: bool) {
        self.st.lock().reset_sticks = sticks;
    }

    /// Global resets seen (including the one at install).
    pub fn resets(&self) -> u32 {
        self.st.lock().resets
    }

    /// MSI-X messages sent on vector `v`.
    pub fn fired(&self, v: usize) -> u64 {
        self.msix.sent(v as u16)
    }

    fn read_reg(&self, off: usize) -> u32 {
        let mut s = self.st.lock();
        let clear = |s: &mut State, o: usize| {
            let v = s.r(o);
            s.w(o, 0);
            v
        };
        match off {
            STATUS => self.status(&s),
            ICR | EICR => clear(&mut s, off),
            IMC => s.r(IMS),
            CRCERRS | MPC | RNBC | GPRC | BPRC | MPRC | GPTC | RUC | ROC | RLEC => clear(&mut s, off),
            GORCH | GOTCH => {
                s.w(off - 4, 0);
                clear(&mut s, off)
            }
            o if (0..NUM_QUEUES).any(|q| rqdpc(q) == o) => clear(&mut s, o),
            o if o < BAR_SIZE => s.r(o),
            _ => u32::MAX,
        }
    }

    fn write_reg(&self, off: usize, v: u32) {
        if off >= BAR_SIZE {
            return;
        }
        let due = {
            let mut s = self.st.lock();
            match off {
                CTRL if v & CTRL_RST != 0 => {
                    if s.reset_sticks {
                        s.w(CTRL, v);
                    } else {
                        self.reset_locked(&mut s);
                    }
                    Vec::new()
                }
                STATUS => Vec::new(),
                EIMS => Self::update_eicr(&mut s, |s| {
                    let m = s.r(EIMS) | (v & MSIX_MASK);
                    s.w(EIMS, m);
                }),
                EIMC => {
                    let m = s.r(EIMS) & !v;
                    s.w(EIMS, m);
                    Vec::new()
                }
                EICS => Self::update_eicr(&mut s, |s| {
                    let e = s.r(EICR) | (v & MSIX_MASK);
                    s.w(EICR, e);
                }),
                EICR | ICR => {
                    let c = s.r(off) & !v;
                    s.w(off, c);
                    Vec::new()
                }
                ICS => Self::update_icr(&mut s, |s| {
                    let c = s.r(ICR) | v;
                    s.w(ICR, c);
                }),
                IMS => Self::update_icr(&mut s, |s| {
                    let m = s.r(IMS) | v;
                    s.w(IMS, m);
                }),
                IMC => {
                    let m = s.r(IMS) & !v;
                    s.w(IMS, m);
                    Vec::new()
                }
                MDIC => {
                    let phy = (v >> MDIC_PHY_SHIFT) & 0x1f;
                    let reg = (v >> MDIC_REG_SHIFT) & 0x1f;
                    if phy != PHY_ADDR {
                        s.w(MDIC, v | MDIC_READY | MDIC_ERROR);
                        return;
                    }
                    s.w(MDIC, v | MDIC_READY);
                    let restart = v & MDIC_OP_WRITE != 0 && reg == PHY_BMCR && v as u16 & BMCR_ANRESTART != 0;
                    if restart && !s.autoneg_done {
                        s.autoneg_done = true;
                        if s.link_up {
                            Self::update_icr(&mut s, |s| {
                                let c = s.r(ICR) | ICR_LSC;
                                s.w(ICR, c);
                            })
                        } else {
                            Vec::new()
                        }
                    } else {
                        Vec::new()
                    }
                }
                EERD if v & EERD_START != 0 => {
                    let addr = (v >> EERD_ADDR_SHIFT) & 0x3fff;
                    let m = self.cfg.mac;
                    let data = match addr {
                        0..=2 if self.cfg.nvm_mac => u16::from_le_bytes([m[2 * addr as usize], m[2 * addr as usize + 1]]),
                        _ => 0,
                    };
                    s.w(EERD, EERD_DONE | (addr << EERD_ADDR_SHIFT) | ((data as u32) << EERD_DATA_SHIFT));
                    Vec::new()
                }
                o if (0..NUM_QUEUES).any(|q| tdt(q) == o) => {
                    s.w(o, v & 0xffff);
                    let q = (o - tdt(0)) / 0x40;
                    if s.tx_hold { Vec::new() } else { Self::process_tx(&mut s, q) }
                }
                o => {
                    s.w(o, v);
                    Vec::new()
                }
            }
        };
        self.fire(due);
    }
}

impl Mmio for FakeIgb {
    fn read8(&self, off: usize) -> u8 {
        (self.read_reg(off & !3) >> (8 * (off & 3))) as u8
    }
    fn read16(&self, off: usize) -> u16 {
        (self.read_reg(off & !3) >> (8 * (off & 2))) as u16
    }
    fn read32(&self, off: usize) -> u32 {
        self.read_reg(off)
    }
    fn read64(&self, off: usize) -> u64 {
        self.read_reg(off) as u64 | ((self.read_reg(off + 4) as u64) << 32)
    }
    fn write8(&self, _off: usize, _v: u8) {}
    fn write16(&self, _off: usize, _v: u16) {}
    fn write32(&self, off: usize, v: u32) {
        self.write_reg(off, v)
    }
    fn write64(&self, off: usize, v: u64) {
        self.write_reg(off, v as u32);
        self.write_reg(off + 4, (v >> 32) as u32);
    }
}

// ---- wire helpers ----

/// The Toeplitz hash of `input` under `key` (Microsoft RSS).
pub fn toeplitz(key: &[u8; 40], input: &[u8]) -> u32 {
    let bit = |i: usize| -> u32 { if i < 320 { ((key[i / 8] >> (7 - i % 8)) & 1) as u32 } else { 0 } };
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    let mut result = 0;
    for (i, byte) in input.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                result ^= window;
            }
            window = (window << 1) | bit(32 + 8 * i + b);
        }
    }
    result
}

fn sum(b: &[u8]) -> u32 {
    b.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// IPv4 pseudo-header sum of frame `f` for an L4 of `len` bytes.
fn pseudo(f: &[u8], proto: u8, len: usize) -> u32 {
    sum(&f[26..34]) + proto as u32 + len as u32
}

/// An Ethernet + IPv4 + TCP (proto 6) or UDP (17) frame with valid
/// checksums.
#[allow(clippy::too_many_arguments)]
pub fn ipv4_frame(dst: [u8; 6], src: [u8; 6], proto: u8, sip: [u8; 4], dip: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let l4_hlen = if proto == 6 { 20 } else { 8 };
    let l4_len = l4_hlen + payload.len();
    let mut f = Vec::with_capacity(34 + l4_len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let tot = (20 + l4_len) as u16;
    f.extend_from_slice(&[0x45, 0, (tot >> 8) as u8, tot as u8, 0, 1, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&sip);
    f.extend_from_slice(&dip);
    let c = !fold(sum(&f[14..34]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    let csum_at = 34 + if proto == 6 { 16 } else { 6 };
    let c = !fold(pseudo(&f, proto, l4_len) + sum(&f[34..]));
    f[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toeplitz_matches_the_published_vectors() {
        let key = crate::igb::rss::DEFAULT_KEY;
        // 66.9.149.187:2794 → 161.142.100.80:1766
        let ip = [66, 9, 149, 187, 161, 142, 100, 80];
        assert_eq!(toeplitz(&key, &ip), 0x323e_8fc2);
        let mut tcp = ip.to_vec();
        tcp.extend_from_slice(&2794u16.to_be_bytes());
        tcp.extend_from_slice(&1766u16.to_be_bytes());
        assert_eq!(toeplitz(&key, &tcp), 0x51cc_c178);
    }

    #[test]
    fn frames_carry_valid_checksums() {
        let f = ipv4_frame([2; 6], [4; 6], 17, [10, 0, 0, 1], [10, 0, 0, 2], 1000, 2000, b"hello");
        assert_eq!(fold(sum(&f[14..34])), 0xffff);
        assert_eq!(fold(pseudo(&f, 17, 13) + sum(&f[34..])), 0xffff);
    }
}
