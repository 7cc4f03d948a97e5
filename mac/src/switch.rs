//! The in-kernel virtual switch of a link: every physical link and every
//! etherstub has one, holding its MAC clients (the primary client and the
//! VNICs). Frames between clients of the same switch are delivered directly
//! and never touch a NIC (counted as local); broadcast and multicast are
//! replicated to every client (and to the wire); unicast for no client is
//! dropped and counted. An etherstub is a switch with no wire.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::sync::RwLock;

use crate::buf::BufPool;
use crate::client::MacClient;
use crate::mac::{Mac, TX_BUF_SIZE, TX_HEADROOM};
use crate::mblk::{Mblk, MblkChain};
use crate::provider::{LinkState, MacAddr};
use crate::vlan;

/// Counters of a switch.
#[derive(Debug, Default)]
pub struct SwitchStats {
    /// Unicast frames for no client (from the wire or, on an etherstub,
    /// from a client).
    pub unknown_unicast: AtomicU64,
    /// Broadcast/multicast copies made.
    pub bcast_copies: AtomicU64,
    /// Copies that failed for lack of a buffer.
    pub copy_failures: AtomicU64,
    /// Frames switched between clients.
    pub local_frames: AtomicU64,
    /// Partial checksums finished in software for a frame that stays in
    /// the machine (no device will finish them).
    pub sw_cksum: AtomicU64,
    /// Frames dropped because their partial checksum could not be finished.
    pub cksum_drops: AtomicU64,
    /// Large (LSO) frames cut in software for a client of this machine
    /// (receivers take frames of the MTU), and the frames they became.
    pub sw_gso: AtomicU64,
    pub sw_gso_frames: AtomicU64,
    /// Large frames dropped: not segmentable, or no buffer for a piece.
    pub gso_drops: AtomicU64,
}

/// A virtual switch.
pub struct Switch {
    name: String,
    wire: Option<Weak<Mac>>,
    clients: RwLock<Vec<Arc<MacClient>>>,
    pool: Arc<BufPool>,
    mtu: usize,
    pub stats: SwitchStats,
}

fn is_multicast(a: &[u8]) -> bool {
    a[0] & 1 != 0
}

impl Switch {
    pub(crate) fn new(name: String, wire: Option<Weak<Mac>>, pool: Arc<BufPool>, mtu: usize) -> Switch {
        Switch { name, wire, clients: RwLock::new(Vec::new()), pool, mtu, stats: SwitchStats::default() }
    }

    /// Name of the link it belongs to (the physical link or the etherstub).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The NIC below, `None` for an etherstub.
    pub fn wire(&self) -> Option<Arc<Mac>> {
        self.wire.as_ref().and_then(|w| w.upgrade())
    }

    /// Whether this is an etherstub.
    pub fn is_etherstub(&self) -> bool {
        self.wire.is_none()
    }

    /// MTU.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The wire's link state (`up` for an etherstub).
    pub fn link_state(&self) -> LinkState {
        match &self.wire {
            None => LinkState::Up,
            Some(w) => w.upgrade().map(|m| m.link_state()).unwrap_or(LinkState::Down),
        }
    }

    /// The clients, in attachment order.
    pub fn clients(&self) -> Vec<Arc<MacClient>> {
        self.clients.read().clone()
    }

    /// The client with `addr` on VLAN `vid`.
    pub fn client_by_addr(&self, addr: &MacAddr, vid: u16) -> Option<Arc<MacClient>> {
        self.clients.read().iter().find(|c| c.addr() == *addr && c.vid() == vid).cloned()
    }

    pub(crate) fn attach(&self, c: Arc<MacClient>) {
        self.clients.write().push(c);
    }

    pub(crate) fn detach(&self, name: &str) -> Option<Arc<MacClient>> {
        let mut cs = self.clients.write();
        let i = cs.iter().position(|c| c.name() == name)?;
        Some(cs.remove(i))
    }

    /// The pool its Tx buffers come from: the NIC's, or the etherstub's
    /// own.
    pub fn pool(&self) -> &Arc<BufPool> {
        &self.pool
    }

    /// A Tx buffer: from the NIC's Tx pool, or the etherstub's own.
    pub fn alloc(&self, len: usize) -> Option<Mblk> {
        if let Some(w) = self.wire() {
            return w.alloc_tx(len);
        }
        if len + TX_HEADROOM > TX_BUF_SIZE {
            return None;
        }
        self.pool.alloc().map(|b| Mblk::with_range(b, TX_HEADROOM, len))
    }

    fn copy(&self, m: &Mblk) -> Option<Mblk> {
        let len = m.total_len();
        let buf = if len + TX_HEADROOM <= self.pool.buf_size() { self.pool.alloc() } else { None };
        let Some(buf) = buf else {
            self.stats.copy_failures.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let mut c = Mblk::with_range(buf, TX_HEADROOM, len);
        m.copy_to(c.data_mut());
        c.meta = m.meta;
        self.stats.bcast_copies.fetch_add(1, Ordering::Relaxed);
        Some(c)
    }

    /// Frames from the NIC: classified by destination MAC (and VLAN) to
    /// the clients.
    pub fn rx_from_wire(&self, chain: MblkChain) {
        let clients = self.clients.read().clone();
        let mut out: Vec<MblkChain> = (0..clients.len()).map(|_| MblkChain::new()).collect();
        for m in chain {
            if m.len() < 14 {
                self.stats.unknown_unicast.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let vid = vlan::vid_of(m.data());
            let mut dst = [0u8; 6];
            dst.copy_from_slice(&m.data()[0..6]);
            if is_multicast(&dst) {
                let targets: Vec<usize> = (0..clients.len()).filter(|&i| clients[i].vid() == vid).collect();
                self.replicate(m, &targets, &clients, &mut out);
            } else {
                match clients.iter().position(|c| c.addr() == dst && c.vid() == vid) {
                    Some(i) => {
                        let mut m = m;
                        if vid != 0 {
                            vlan::strip(&mut m);
                        }
                        out[i].push(m);
                    }
                    None => {
                        self.stats.unknown_unicast.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        for (c, chain) in clients.iter().zip(out) {
            if !chain.is_empty() {
                c.deliver(chain, false);
            }
        }
    }

    /// Gives `m` (or a copy) to each client in `targets`.
    fn replicate(&self, m: Mblk, targets: &[usize], clients: &[Arc<MacClient>], out: &mut [MblkChain]) {
        let Some((&last, rest)) = targets.split_last() else { return };
        for &i in rest {
            if let Some(mut c) = self.copy(&m) {
                if clients[i].vid() != 0 {
                    vlan::strip(&mut c);
                }
                clients[i].stats.bcast_ipackets.fetch_add(1, Ordering::Relaxed);
                out[i].push(c);
            }
        }
        let mut m = m;
        if clients[last].vid() != 0 {
            vlan::strip(&mut m);
        }
        clients[last].stats.bcast_ipackets.fetch_add(1, Ordering::Relaxed);
        out[last].push(m);
    }

    /// A frame sent by `sender`: to another client directly, replicated
    /// if broadcast/multicast, otherwise to the wire.
    pub fn tx_from(&self, sender: &Arc<MacClient>, m: Mblk) {
        if m.len() < 14 {
            sender.stats.tx_drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let vid = vlan::vid_of(m.data());
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&m.data()[0..6]);
        let clients = self.clients.read().clone();
        let local = !is_multicast(&dst) && clients.iter().any(|c| c.addr() == dst && c.vid() == vid);
        let stays = local || is_multicast(&dst) || self.wire().is_none();
        if stays && crate::gso::is_large(&m) {
            // No device will cut it: the pieces go their way one by one.
            match crate::gso::segment(&m, false, &mut |n| self.alloc(n)) {
                Ok(pieces) => {
                    self.stats.sw_gso.fetch_add(1, Ordering::Relaxed);
                    self.stats.sw_gso_frames.fetch_add(pieces.len() as u64, Ordering::Relaxed);
                    drop(clients);
                    for p in pieces {
                        self.tx_from(sender, p);
                    }
                }
                Err(_) => {
                    self.stats.gso_drops.fetch_add(1, Ordering::Relaxed);
                    sender.stats.tx_drops.fetch_add(1, Ordering::Relaxed);
                }
            }
            return;
        }
        let mut m = m;
        if stays && !self.finish_cksum(&mut m) {
            sender.stats.tx_drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if is_multicast(&dst) {
            let others: Vec<usize> =
                (0..clients.len()).filter(|&i| !Arc::ptr_eq(&clients[i], sender) && clients[i].vid() == vid).collect();
            let mut out: Vec<MblkChain> = (0..clients.len()).map(|_| MblkChain::new()).collect();
            for &i in &others {
                if let Some(mut c) = self.copy(&m) {
                    if vid != 0 {
                        vlan::strip(&mut c);
                    }
                    clients[i].stats.bcast_ipackets.fetch_add(1, Ordering::Relaxed);
                    out[i].push(c);
                }
            }
            self.count_local(sender, &out);
            for (c, chain) in clients.iter().zip(out) {
                if !chain.is_empty() {
                    c.deliver(chain, true);
                }
            }
            match self.wire() {
                Some(w) => w.tx(m),
                None => drop(m),
            }
            return;
        }
        if let Some(i) = clients.iter().position(|c| c.addr() == dst && c.vid() == vid) {
            if Arc::ptr_eq(&clients[i], sender) {
                // To itself: loop back like a wire would not; drop quietly.
                sender.stats.tx_drops.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let mut m = m;
            if vid != 0 {
                vlan::strip(&mut m);
            }
            let mut chain = MblkChain::new();
            chain.push(m);
            self.count_local(sender, core::slice::from_ref(&chain));
            clients[i].deliver(chain, true);
            return;
        }
        match self.wire() {
            Some(w) => w.tx(m),
            None => {
                self.stats.unknown_unicast.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Finishes a partial checksum in software for a frame some client of
    /// this machine will receive (copies share the result). False: it
    /// could not be, the frame is to be dropped (counted here).
    fn finish_cksum(&self, m: &mut Mblk) -> bool {
        if !matches!(m.meta.cksum, crate::mblk::Cksum::Partial { .. }) {
            return true;
        }
        if crate::cksum::finish(m) {
            self.stats.sw_cksum.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.stats.cksum_drops.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    fn count_local(&self, sender: &MacClient, chains: &[MblkChain]) {
        let (n, b) = chains.iter().fold((0u64, 0u64), |(n, b), c| (n + c.len() as u64, b + c.bytes() as u64));
        if n > 0 {
            sender.stats.local_opackets.fetch_add(n, Ordering::Relaxed);
            sender.stats.local_obytes.fetch_add(b, Ordering::Relaxed);
            self.stats.local_frames.fetch_add(n, Ordering::Relaxed);
        }
    }
}
