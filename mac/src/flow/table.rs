//! The flow table of one link (illumos `flow_tab_t`): its mask is that of
//! the first flow added, every other flow must have the same mask (a
//! mismatch is refused, naming both combinations, as the manual's example
//! 9), and once the last flow goes the table takes any mask again.
//!
//! Lookup is hashed, as illumos' tables are, so that it costs about the
//! same with one flow or ten thousand:
//!
//! * `local_ip` / `remote_ip`: one hash map per (family, prefix length)
//!   present, probed longest prefix first ([`Lpm`]);
//! * `transport`, `transport+local_port`, `transport+remote_port`: one
//!   map keyed by (protocol, local port, remote port), absent parts 0;
//! * `transport+local_ip+local_port[+remote_ip][+remote_port]`: a map by
//!   (protocol, local port, remote port) to an [`Lpm`] of local prefixes,
//!   each to an [`Lpm`] of remote prefixes (one /0 entry without
//!   `remote_ip`);
//! * `dsfield`: a 256-entry array giving, for every DS byte, the flow it
//!   belongs to (most specific mask first, then the oldest flow).
//!
//! Two flows with the same attributes on one link are refused.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashMap;

use super::desc::{FlowDesc, FlowMask, IpPrefix};
use super::entry::FlowEntry;
use super::packet::{self, Dir, PktKey};
use crate::props::Priority;

/// A small multiplicative hasher for the fixed-size keys of the tables
/// (the keys come from packets, but a flow table holds only what the
/// administrator configured, so flooding is not a concern).
#[derive(Default, Clone, Copy)]
pub struct FlowHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for FlowHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0 ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(26);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0 ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(26);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0 ^ i).wrapping_mul(K).rotate_left(26);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Spread the high bits down: hashbrown takes its control bits from
        // the top and its index from the bottom.
        let h = self.0.wrapping_mul(K);
        h ^ (h >> 32)
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<FlowHasher>>;

fn map<K, V>() -> Map<K, V> {
    HashMap::with_hasher(BuildHasherDefault::default())
}

/// The netmask of a prefix length over the 128-bit key (an IPv4 address
/// sits in the top 32 bits).
#[inline]
fn netmask(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}

/// Longest-prefix match: one hash map per (family, prefix length),
/// longest first, keyed by the masked address as a 128-bit number.
pub struct Lpm<T> {
    levels: Vec<Level<T>>,
}

struct Level<T> {
    v6: bool,
    len: u8,
    mask: u128,
    map: Map<u128, T>,
}

impl<T> Default for Lpm<T> {
    fn default() -> Self {
        Lpm { levels: Vec::new() }
    }
}

impl<T> Lpm<T> {
    /// The value at exactly `p`, inserted by `make` if absent.
    pub fn entry(&mut self, p: &IpPrefix, make: impl FnOnce() -> T) -> &mut T {
        let i = match self.levels.iter().position(|l| l.v6 == p.v6 && l.len == p.len) {
            Some(i) => i,
            None => {
                // Keep longest first.
                let at = self.levels.iter().position(|l| l.len < p.len).unwrap_or(self.levels.len());
                self.levels.insert(at, Level { v6: p.v6, len: p.len, mask: netmask(p.len), map: map() });
                at
            }
        };
        self.levels[i].map.entry(u128::from_be_bytes(p.addr)).or_insert_with(make)
    }

    /// The value at exactly `p`.
    pub fn get_exact(&self, p: &IpPrefix) -> Option<&T> {
        self.levels.iter().find(|l| l.v6 == p.v6 && l.len == p.len).and_then(|l| l.map.get(&u128::from_be_bytes(p.addr)))
    }

    /// The value at exactly `p`, writable.
    pub fn get_exact_mut(&mut self, p: &IpPrefix) -> Option<&mut T> {
        self.levels
            .iter_mut()
            .find(|l| l.v6 == p.v6 && l.len == p.len)
            .and_then(|l| l.map.get_mut(&u128::from_be_bytes(p.addr)))
    }

    /// Removes the value at exactly `p` (and its level once empty).
    pub fn remove(&mut self, p: &IpPrefix) -> Option<T> {
        let i = self.levels.iter().position(|l| l.v6 == p.v6 && l.len == p.len)?;
        let v = self.levels[i].map.remove(&u128::from_be_bytes(p.addr));
        if self.levels[i].map.is_empty() {
            self.levels.remove(i);
        }
        v
    }

    /// The values whose prefix holds `addr`, longest prefix first.
    #[inline]
    pub fn matches<'a>(&'a self, v6: bool, addr: &[u8; 16]) -> impl Iterator<Item = &'a T> + 'a {
        let a = u128::from_be_bytes(*addr);
        self.levels.iter().filter(move |l| l.v6 == v6).filter_map(move |l| l.map.get(&(a & l.mask)))
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}

type Flow = Arc<FlowEntry>;

/// The remote side of a 5-tuple leaf: without `remote_ip`, one /0 entry.
type RemoteLpm = Lpm<Flow>;

/// The lookup structure for the table's mask.
enum Index {
    None,
    /// `local_ip` (false) or `remote_ip` (true).
    Ip { remote: bool, lpm: Lpm<Flow> },
    /// transport [+ one port]: (proto, lport, rport).
    Port(Map<(u8, u16, u16), Flow>),
    /// transport + local_ip + local_port [+ remote_ip] [+ remote_port].
    Tuple(Map<(u8, u16, u16), Lpm<RemoteLpm>>),
    /// dsfield: the flow of every DS byte.
    Ds(Box<[Option<Flow>; 256]>),
}

/// Why a flow could not go into a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableError {
    /// The table holds flows of another combination: (the table's, the
    /// flow's).
    MaskMismatch(FlowMask, FlowMask),
    /// A flow with the same attributes is there (its name).
    SameAttributes(String),
}

fn port_key(d: &FlowDesc) -> (u8, u16, u16) {
    (d.transport.map_or(0, |t| t.proto()), d.local_port.unwrap_or(0), d.remote_port.unwrap_or(0))
}

/// A remote prefix matching everything of the local address's family.
fn any_remote(local: &IpPrefix) -> IpPrefix {
    IpPrefix { v6: local.v6, addr: [0; 16], len: 0 }
}

/// The flows of one link.
pub struct FlowTable {
    mask: FlowMask,
    /// Every flow, in the order added.
    flows: Vec<Flow>,
    index: Index,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable::new()
    }
}

impl FlowTable {
    /// An empty table.
    pub fn new() -> FlowTable {
        FlowTable { mask: FlowMask::default(), flows: Vec::new(), index: Index::None }
    }

    /// The mask of its flows (empty when there are none).
    pub fn mask(&self) -> FlowMask {
        self.mask
    }

    /// The flows, in the order added.
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether it has no flows.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Whether `f` could be inserted (nothing changes).
    pub fn check(&self, d: &FlowDesc) -> Result<(), TableError> {
        let m = d.mask();
        if !self.flows.is_empty() && m != self.mask {
            return Err(TableError::MaskMismatch(self.mask, m));
        }
        if let Some(other) = self.same_packets(d) {
            return Err(TableError::SameAttributes(String::from(other.name())));
        }
        Ok(())
    }

    /// The flow taking exactly the packets `d` would (found through the
    /// index: one probe, not a scan).
    fn same_packets(&self, d: &FlowDesc) -> Option<&Flow> {
        if self.flows.is_empty() || d.mask() != self.mask {
            return None;
        }
        let found = match &self.index {
            Index::None => None,
            Index::Ip { remote, lpm } => (if *remote { d.remote_ip } else { d.local_ip }).and_then(|p| lpm.get_exact(&p)),
            Index::Port(m) => m.get(&port_key(d)),
            Index::Tuple(m) => d.local_ip.and_then(|l| {
                let r = d.remote_ip.unwrap_or_else(|| any_remote(&l));
                m.get(&port_key(d)).and_then(|locals| locals.get_exact(&l)).and_then(|remotes| remotes.get_exact(&r))
            }),
            // Few: at most one per (value, mask) pair.
            Index::Ds(_) => self.flows.iter().find(|f| f.desc().same_packets(d)),
        };
        found.filter(|f| f.desc().same_packets(d))
    }

    /// Adds `f`; refused (nothing changes) on a mask mismatch or a flow
    /// with the same attributes.
    pub fn insert(&mut self, f: Flow) -> Result<(), TableError> {
        let d = *f.desc();
        self.check(&d)?;
        if self.flows.is_empty() {
            self.mask = d.mask();
            self.index = Index::new(self.mask);
        }
        self.flows.push(f.clone());
        match &mut self.index {
            Index::None => {}
            Index::Ip { remote, lpm } => {
                let p = if *remote { d.remote_ip } else { d.local_ip };
                if let Some(p) = p {
                    lpm.entry(&p, || f.clone());
                }
            }
            Index::Port(m) => {
                m.insert(port_key(&d), f.clone());
            }
            Index::Tuple(m) => {
                if let Some(l) = d.local_ip {
                    let r = d.remote_ip.unwrap_or_else(|| any_remote(&l));
                    let locals = m.entry(port_key(&d)).or_default();
                    locals.entry(&l, Lpm::default).entry(&r, || f.clone());
                }
            }
            Index::Ds(_) => self.rebuild_ds(),
        }
        Ok(())
    }

    /// Removes the flow named `name`; returns it.
    pub fn remove(&mut self, name: &str) -> Option<Flow> {
        let i = self.flows.iter().position(|f| f.name() == name)?;
        let f = self.flows.remove(i);
        let d = *f.desc();
        match &mut self.index {
            Index::None => {}
            Index::Ip { remote, lpm } => {
                if let Some(p) = if *remote { d.remote_ip } else { d.local_ip } {
                    lpm.remove(&p);
                }
            }
            Index::Port(m) => {
                m.remove(&port_key(&d));
            }
            Index::Tuple(m) => {
                if let Some(l) = d.local_ip {
                    let r = d.remote_ip.unwrap_or_else(|| any_remote(&l));
                    let key = port_key(&d);
                    let mut drop_key = false;
                    if let Some(locals) = m.get_mut(&key) {
                        let mut drop_local = false;
                        if let Some(remotes) = locals.get_exact_mut(&l) {
                            remotes.remove(&r);
                            drop_local = remotes.is_empty();
                        }
                        if drop_local {
                            locals.remove(&l);
                        }
                        drop_key = locals.is_empty();
                    }
                    if drop_key {
                        m.remove(&key);
                    }
                }
            }
            Index::Ds(_) => self.rebuild_ds(),
        }
        if self.flows.is_empty() {
            self.mask = FlowMask::default();
            self.index = Index::None;
        }
        Some(f)
    }

    fn rebuild_ds(&mut self) {
        let mut order: Vec<&Flow> = self.flows.iter().collect();
        // Most specific mask first; the sort is stable, so older flows
        // win among equals.
        order.sort_by_key(|f| core::cmp::Reverse(f.desc().dsfield.map_or(0, |(_, m)| m.count_ones())));
        let mut arr: Box<[Option<Flow>; 256]> = Box::new([const { None }; 256]);
        for (b, slot) in arr.iter_mut().enumerate() {
            let b = b as u8;
            *slot = order.iter().find(|f| f.desc().dsfield.is_some_and(|(v, m)| b & m == v & m)).map(|f| (*f).clone());
        }
        self.index = Index::Ds(arr);
    }

    /// The flow a packet key belongs to.
    #[inline]
    pub fn lookup(&self, k: &PktKey) -> Option<&Flow> {
        match &self.index {
            Index::None => None,
            Index::Ip { remote, lpm } => {
                let a = if *remote { &k.remote } else { &k.local };
                lpm.matches(k.v6, a).next()
            }
            Index::Port(m) => {
                let key = if self.mask.has(FlowMask::LOCAL_PORT) {
                    (k.proto, k.local_port()?, 0)
                } else if self.mask.has(FlowMask::REMOTE_PORT) {
                    (k.proto, 0, k.remote_port()?)
                } else {
                    (k.proto, 0, 0)
                };
                m.get(&key)
            }
            Index::Tuple(m) => {
                let (lp, rp) = k.ports?;
                let key = (k.proto, lp, if self.mask.has(FlowMask::REMOTE_PORT) { rp } else { 0 });
                let locals = m.get(&key)?;
                let remote = &k.remote;
                locals.matches(k.v6, &k.local).find_map(|remotes| remotes.matches(k.v6, remote).next())
            }
            Index::Ds(arr) => arr[usize::from(k.ds)].as_ref(),
        }
    }

    /// The flow Ethernet frame `f` going in direction `dir` belongs to.
    #[inline]
    pub fn classify(&self, f: &[u8], dir: Dir) -> Option<&Flow> {
        if self.flows.is_empty() {
            return None;
        }
        let k = packet::parse(f, dir)?;
        self.lookup(&k)
    }

    /// The flows the bandwidth tick must visit (a limit or a backlog),
    /// high priority first, then medium, then low.
    pub fn bw_flows(&self) -> Vec<Flow> {
        let mut v: Vec<Flow> = self.flows.iter().filter(|f| f.bw_active()).cloned().collect();
        v.sort_by_key(|f| core::cmp::Reverse(f.priority()));
        v
    }

    /// Whether any flow has a limit or a backlog.
    pub fn bw_active(&self) -> bool {
        self.flows.iter().any(|f| f.bw_active())
    }
}

impl Index {
    fn new(m: FlowMask) -> Index {
        if m == FlowMask::LOCAL_IP {
            Index::Ip { remote: false, lpm: Lpm::default() }
        } else if m == FlowMask::REMOTE_IP {
            Index::Ip { remote: true, lpm: Lpm::default() }
        } else if m == FlowMask::DSFIELD {
            Index::Ds(Box::new([const { None }; 256]))
        } else if m.has(FlowMask::LOCAL_IP) {
            Index::Tuple(map())
        } else {
            Index::Port(map())
        }
    }
}

/// Index of a priority in the per-priority lanes (high first).
#[inline]
pub fn lane(p: Priority) -> usize {
    match p {
        Priority::High => 0,
        Priority::Medium => 1,
        Priority::Low => 2,
    }
}
