//! MAC clients: the primary client of a physical link and every VNIC. A
//! client has a MAC address (and optionally a VLAN id), receives what the
//! virtual switch of its lower link classifies to it, and transmits through
//! that switch — to another client of the same link or etherstub without
//! touching a NIC, or to the wire.
//!
//! A client may carry flows ([`crate::flow`]). Without any, its data path
//! is as before plus one relaxed load. With flows:
//!
//! * receive: after the link's own `maxbw`, each packet is classified;
//!   a flow's packet is counted on it and passes the flow's shaper (or
//!   waits in its bounded queue, or is dropped and counted; `maxbw=0`
//!   drops it); then the packets of high-priority flows are handed up
//!   first, then those of medium flows together with the packets of no
//!   flow (in arrival order), low-priority ones last;
//! * transmit: after `protection` and before the VLAN tag, each packet is
//!   classified and passes its flow's shaper first, then the link's;
//! * the bandwidth tick ([`MacClient::bw_service`]) releases the flows'
//!   backlogs too, high priority first; [`MacClient::bw_active`] says
//!   whether it has work here.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use spin::RwLock;

use crate::bw::Shaper;
use crate::flow::ClientFlows;
use crate::flow::packet::Dir;
use crate::flow::table::lane;
use crate::mac::RxFn;
use crate::mblk::{Mblk, MblkChain};
use crate::provider::{LinkState, MacAddr};
use crate::switch::Switch;

/// How a client's MAC address was chosen (`show-vnic MACADDRTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrType {
    Factory,
    Random,
    Fixed,
}

impl AddrType {
    /// The word `dladm show-vnic` prints.
    pub fn name(self) -> &'static str {
        match self {
            AddrType::Factory => "factory",
            AddrType::Random => "random",
            AddrType::Fixed => "fixed",
        }
    }
}

/// Counters of one client.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub ipackets: AtomicU64,
    pub rbytes: AtomicU64,
    pub opackets: AtomicU64,
    pub obytes: AtomicU64,
    /// Received from another client of the same switch (never on a wire).
    pub local_ipackets: AtomicU64,
    pub local_rbytes: AtomicU64,
    /// Sent to another client of the same switch.
    pub local_opackets: AtomicU64,
    pub local_obytes: AtomicU64,
    /// Broadcast/multicast copies received.
    pub bcast_ipackets: AtomicU64,
    /// Received while no receive function was attached.
    pub rx_no_client: AtomicU64,
    /// Transmit drops (no buffer for a copy or tag, no way out).
    pub tx_drops: AtomicU64,
    /// Transmitted frames dropped by `protection` (forged source MAC or
    /// IP, or a protocol `restricted` forbids).
    pub spoof_drops: AtomicU64,
    /// Times the client was told to hold back (a Tx ring of its link
    /// blocked), and told it may send again.
    pub tx_blocked: AtomicU64,
    pub tx_unblocked: AtomicU64,
}

/// A plain copy of [`ClientStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClientCounters {
    pub ipackets: u64,
    pub rbytes: u64,
    pub opackets: u64,
    pub obytes: u64,
    pub local_ipackets: u64,
    pub local_rbytes: u64,
    pub local_opackets: u64,
    pub local_obytes: u64,
    pub bcast_ipackets: u64,
    pub rx_no_client: u64,
    pub tx_drops: u64,
    pub spoof_drops: u64,
    pub tx_blocked: u64,
    pub tx_unblocked: u64,
}

impl ClientStats {
    /// Snapshot.
    pub fn snapshot(&self) -> ClientCounters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientCounters {
            ipackets: l(&self.ipackets),
            rbytes: l(&self.rbytes),
            opackets: l(&self.opackets),
            obytes: l(&self.obytes),
            local_ipackets: l(&self.local_ipackets),
            local_rbytes: l(&self.local_rbytes),
            local_opackets: l(&self.local_opackets),
            local_obytes: l(&self.local_obytes),
            bcast_ipackets: l(&self.bcast_ipackets),
            rx_no_client: l(&self.rx_no_client),
            tx_drops: l(&self.tx_drops),
            spoof_drops: l(&self.spoof_drops),
            tx_blocked: l(&self.tx_blocked),
            tx_unblocked: l(&self.tx_unblocked),
        }
    }
}

/// The `protection` property as the data path applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protection {
    /// Drop frames whose source MAC is not the client's.
    pub mac_nospoof: bool,
    /// Drop IPv4 and ARP frames whose source address is outside
    /// `allowed_ips` (an empty list allows only 0.0.0.0).
    pub ip_nospoof: bool,
    /// Allow only IPv4, IPv6 and ARP.
    pub restricted: bool,
    /// (address, prefix length) pairs.
    pub allowed_ips: Vec<([u8; 4], u8)>,
}

impl Protection {
    fn ip_allowed(&self, ip: &[u8]) -> bool {
        let a = u32::from_be_bytes([ip[0], ip[1], ip[2], ip[3]]);
        a == 0
            || self.allowed_ips.iter().any(|(net, len)| {
                let n = u32::from_be_bytes(*net);
                let mask = if *len == 0 { 0 } else { u32::MAX << (32 - u32::from((*len).min(32))) };
                a & mask == n & mask
            })
    }

    /// Whether a frame the client sends passes.
    pub fn permits(&self, own: &MacAddr, f: &[u8]) -> bool {
        if f.len() < 14 {
            return false;
        }
        if self.mac_nospoof && f[6..12] != own[..] {
            return false;
        }
        let et = u16::from_be_bytes([f[12], f[13]]);
        if self.restricted && !matches!(et, 0x0800 | 0x86dd | 0x0806) {
            return false;
        }
        if self.ip_nospoof {
            match et {
                0x0800 => return f.len() >= 34 && self.ip_allowed(&f[26..30]),
                0x0806 => return f.len() >= 32 && self.ip_allowed(&f[28..32]),
                _ => {}
            }
        }
        true
    }

    /// Whether any check is on.
    pub fn any(&self) -> bool {
        self.mac_nospoof || self.ip_nospoof || self.restricted
    }
}

/// `hw_group` when the client owns no ring group.
const NO_GROUP: usize = usize::MAX;

/// One MAC client.
pub struct MacClient {
    name: String,
    addr: MacAddr,
    addr_type: AddrType,
    vid: u16,
    /// Ring group it owns in hardware (a hardware lane), if any.
    hw_group: AtomicUsize,
    is_vnic: bool,
    lower: Weak<Switch>,
    rx_fn: RwLock<Option<RxFn>>,
    /// Whether the client was last told to hold back (`tx_ready`).
    held_back: AtomicBool,
    protection: RwLock<Protection>,
    /// `maxbw` shapers, transmit and receive.
    pub tx_bw: Shaper,
    pub rx_bw: Shaper,
    pub stats: ClientStats,
    flows: ClientFlows,
}

impl MacClient {
    pub(crate) fn new(
        name: String,
        addr: MacAddr,
        addr_type: AddrType,
        vid: u16,
        hw_group: Option<usize>,
        is_vnic: bool,
        lower: &Arc<Switch>,
    ) -> MacClient {
        MacClient {
            name,
            addr,
            addr_type,
            vid,
            hw_group: AtomicUsize::new(hw_group.unwrap_or(NO_GROUP)),
            is_vnic,
            lower: Arc::downgrade(lower),
            rx_fn: RwLock::new(None),
            held_back: AtomicBool::new(false),
            protection: RwLock::new(Protection::default()),
            tx_bw: Shaper::default(),
            rx_bw: Shaper::default(),
            stats: ClientStats::default(),
            flows: ClientFlows::default(),
        }
    }

    /// Link name (`net0` for a primary client, the VNIC's name otherwise).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// MAC address.
    pub fn addr(&self) -> MacAddr {
        self.addr
    }

    /// How the address was chosen.
    pub fn addr_type(&self) -> AddrType {
        self.addr_type
    }

    /// VLAN id (0: untagged).
    pub fn vid(&self) -> u16 {
        self.vid
    }

    /// The hardware ring group it owns, if it has a hardware lane.
    pub fn hw_group(&self) -> Option<usize> {
        match self.hw_group.load(Ordering::Acquire) {
            NO_GROUP => None,
            g => Some(g),
        }
    }

    /// Records the ring group it owns now (`link::set_vnic_hw_lane`).
    pub(crate) fn set_hw_group(&self, g: Option<usize>) {
        self.hw_group.store(g.unwrap_or(NO_GROUP), Ordering::Release);
    }

    /// Whether this is a VNIC (not a physical link's primary client).
    pub fn is_vnic(&self) -> bool {
        self.is_vnic
    }

    /// The switch it is attached to.
    pub fn lower(&self) -> Option<Arc<Switch>> {
        self.lower.upgrade()
    }

    /// Name of the link it sits on (`OVER`).
    pub fn over(&self) -> String {
        self.lower().map(|s| String::from(s.name())).unwrap_or_default()
    }

    /// Attaches (or detaches) the receive function: an IP instance.
    pub fn set_rx(&self, f: Option<RxFn>) {
        *self.rx_fn.write() = f;
    }

    /// Whether something (an IP instance) is attached.
    pub fn is_plumbed(&self) -> bool {
        self.rx_fn.read().is_some()
    }

    /// MTU of the link below.
    pub fn mtu(&self) -> usize {
        self.lower().map(|s| s.mtu()).unwrap_or(1500)
    }

    /// Link state: that of the wire, `up` on an etherstub.
    pub fn link_state(&self) -> LinkState {
        self.lower().map(|s| s.link_state()).unwrap_or(LinkState::Down)
    }

    /// Whether the client may send now: false while a Tx ring of the NIC
    /// below is blocked (its backlog at `mac::TX_BLOCK`), until the Tx
    /// drain clears it. Counts each change (`tx_blocked`, `tx_unblocked`).
    /// An etherstub never blocks.
    pub fn tx_ready(&self) -> bool {
        let blocked = self.lower().and_then(|s| s.wire()).is_some_and(|m| m.tx_blocked());
        if self.held_back.swap(blocked, Ordering::AcqRel) != blocked {
            let c = if blocked { &self.stats.tx_blocked } else { &self.stats.tx_unblocked };
            c.fetch_add(1, Ordering::Relaxed);
        }
        !blocked
    }

    /// The large-send capability the client offers its IP instance
    /// (illumos `MAC_CAPAB_LSO`, `lso_basic_tcp_ipv4.lso_max`): the
    /// largest TCP/IPv4 frame (headers included) it may hand to
    /// [`MacClient::tx`] with `meta.gso`, when the NIC below segments
    /// such frames itself. `None` on an etherstub and over a NIC without
    /// TSO. A large frame another client of the switch receives is cut
    /// in software ([`crate::gso`]) either way.
    pub fn lso_tcp4_max(&self) -> Option<usize> {
        self.lower().and_then(|s| s.wire()).and_then(|m| m.lso_tcp4_max())
    }

    /// A Tx packet with headroom (see `Mac::alloc_tx`).
    pub fn alloc_tx(&self, len: usize) -> Option<Mblk> {
        let m = self.lower().and_then(|s| s.alloc(len));
        if m.is_none() {
            self.stats.tx_drops.fetch_add(1, Ordering::Relaxed);
        }
        m
    }

    /// Sets the `protection` checks.
    pub fn set_protection(&self, p: Protection) {
        *self.protection.write() = p;
    }

    /// The `protection` checks.
    pub fn protection(&self) -> Protection {
        self.protection.read().clone()
    }

    /// Sets `maxbw` (bits/s, both directions; `None` = unlimited).
    pub fn set_maxbw(&self, bps: Option<u64>) {
        self.tx_bw.set_limit(bps);
        self.rx_bw.set_limit(bps);
    }

    /// The flows on this client's link.
    pub fn flows(&self) -> &ClientFlows {
        &self.flows
    }

    /// Sends a frame: checked by `protection`, classified to a flow (its
    /// counters and shaper), tagged with the VLAN id if any, shaped by the
    /// link's `maxbw`, through the switch.
    pub fn tx(self: &Arc<Self>, m: Mblk) {
        {
            let p = self.protection.read();
            if p.any() && !p.permits(&self.addr, m.data()) {
                self.stats.spoof_drops.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if self.flows.active() {
            let flow = self.flows.read().classify(m.data(), Dir::Tx).cloned();
            if let Some(f) = flow {
                let mut go = MblkChain::new();
                f.tx(m, crate::clock::now_ns(), &mut go);
                for m in go {
                    if !self.tx_link(m) {
                        f.count_oerr();
                    }
                }
                return;
            }
        }
        self.tx_link(m);
    }

    /// The link's part of transmit: the VLAN tag, `maxbw`, the switch.
    /// False if the packet could not be sent (counted in `tx_drops`).
    fn tx_link(self: &Arc<Self>, mut m: Mblk) -> bool {
        if self.vid != 0 && !crate::vlan::tag(&mut m, self.vid) {
            self.stats.tx_drops.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if self.tx_bw.limit().is_some() || self.tx_bw.backlogged() {
            // Self-clocked: what the allowance released since the last
            // packet goes first (the bandwidth tick flushes the tail).
            let now = crate::clock::now_ns();
            for q in self.tx_bw.service(now) {
                self.send(q);
            }
            if let Some(m) = self.tx_bw.admit(m, now) {
                return self.send(m);
            }
            return true;
        }
        self.send(m)
    }

    fn send(self: &Arc<Self>, m: Mblk) -> bool {
        let Some(sw) = self.lower() else {
            self.stats.tx_drops.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        self.stats.opackets.fetch_add(1, Ordering::Relaxed);
        self.stats.obytes.fetch_add(m.total_len() as u64, Ordering::Relaxed);
        sw.tx_from(self, m);
        true
    }

    /// Releases what the `maxbw` allowances permit by now — the link's
    /// and its flows' (high priority first) — (called every bandwidth
    /// tick by the kernel). Returns whether packets still wait.
    pub fn bw_service(self: &Arc<Self>) -> bool {
        let now = crate::clock::now_ns();
        for m in self.tx_bw.service(now) {
            self.send(m);
        }
        let mut flows_waiting = false;
        if self.flows.bw_active() {
            let shaped = self.flows.read().bw_flows();
            for f in shaped {
                let (rx, tx) = f.service(now);
                for m in tx {
                    if !self.tx_link(m) {
                        f.count_oerr();
                    }
                }
                if !rx.is_empty() {
                    self.to_receiver(rx);
                }
                flows_waiting |= f.rx_bw.backlogged() || f.tx_bw.backlogged();
            }
        }
        let rx = self.rx_bw.service(now);
        if !rx.is_empty() {
            self.hand_up(rx);
        }
        self.tx_bw.backlogged() || self.rx_bw.backlogged() || flows_waiting
    }

    /// A flow leaving the client (removed): whatever waits in its shapers
    /// goes on — sent through the link, or handed up — instead of being
    /// dropped uncounted.
    pub(crate) fn release_flow(self: &Arc<Self>, f: &crate::flow::FlowEntry) {
        let props = crate::flow::FlowProps { maxbw: None, ..f.props() };
        f.set_props(props);
        let (rx, tx) = f.service(crate::clock::now_ns());
        for m in tx {
            if !self.tx_link(m) {
                f.count_oerr();
            }
        }
        if !rx.is_empty() {
            self.to_receiver(rx);
        }
    }

    /// Whether the bandwidth tick has work on this client: a `maxbw` on
    /// the link or on one of its flows, or packets waiting in a shaper.
    pub fn bw_active(&self) -> bool {
        self.tx_bw.limit().is_some()
            || self.rx_bw.limit().is_some()
            || self.tx_bw.backlogged()
            || self.rx_bw.backlogged()
            || self.flows.bw_active()
    }

    /// Hands received packets (already untagged) to the receive function.
    pub(crate) fn deliver(&self, chain: MblkChain, local: bool) {
        let (n, bytes) = (chain.len() as u64, chain.bytes() as u64);
        self.stats.ipackets.fetch_add(n, Ordering::Relaxed);
        self.stats.rbytes.fetch_add(bytes, Ordering::Relaxed);
        if local {
            self.stats.local_ipackets.fetch_add(n, Ordering::Relaxed);
            self.stats.local_rbytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if self.rx_bw.limit().is_some() || self.rx_bw.backlogged() {
            // The allowance is picked up on the receive path itself (as
            // illumos' poll path does); the bandwidth tick flushes the tail.
            let now = crate::clock::now_ns();
            let mut passed = self.rx_bw.service(now);
            for m in chain {
                if let Some(m) = self.rx_bw.admit(m, now) {
                    passed.push(m);
                }
            }
            if !passed.is_empty() {
                self.hand_up(passed);
            }
            return;
        }
        self.hand_up(chain);
    }

    /// After the link's `maxbw`: through the flows if there are any,
    /// then to the receive function.
    fn hand_up(&self, chain: MblkChain) {
        if self.flows.active() {
            self.hand_up_flows(chain);
            return;
        }
        self.to_receiver(chain);
    }

    /// Classifies a chain: each flow's packets through its shaper, then
    /// handed up by priority (high, medium and no flow, low).
    fn hand_up_flows(&self, chain: MblkChain) {
        let now = crate::clock::now_ns();
        let attached = self.rx_fn.read().is_some();
        let mut lanes = [MblkChain::new(), MblkChain::new(), MblkChain::new()];
        {
            let table = self.flows.read();
            for m in chain {
                match table.classify(m.data(), Dir::Rx) {
                    Some(f) => f.rx(m, now, attached, &mut lanes[lane(f.priority())]),
                    None => lanes[1].push(m),
                }
            }
        }
        for c in lanes {
            if !c.is_empty() {
                self.to_receiver(c);
            }
        }
    }

    /// To the receive function (counted when there is none).
    fn to_receiver(&self, chain: MblkChain) {
        let n = chain.len() as u64;
        let f = self.rx_fn.read().clone();
        match f {
            Some(f) => f(chain),
            None => {
                self.stats.rx_no_client.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}
