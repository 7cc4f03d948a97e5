//! ARP (RFC 826, RFC 5227 probes): the neighbour cache of one FireEngine
//! instance, and duplicate-address detection for its own addresses.
//!
//! A plain state machine, driven by its caller under one lock and by a
//! clock in milliseconds: it never sends anything itself. Each call returns
//! [`ArpActions`] — ARP packets to transmit, queued IP packets whose next
//! hop has become known, how many queued packets were given up — which the
//! caller carries out with no lock held.
//!
//! A neighbour entry is `Incomplete` while requests go out (every
//! [`ArpConfig::retrans_ms`], at most [`ArpConfig::max_probes`]; then the
//! entry and the packets waiting on it go, counted), `Reachable` for
//! [`ArpConfig::reachable_ms`] after a reply or a request from it, then
//! `Stale`: still used, and the first use of a stale entry sends one
//! unicast request to confirm it. An entry unconfirmed for
//! [`ArpConfig::expire_ms`] is removed. The table holds at most
//! [`ArpConfig::max_entries`] (the oldest stale entry makes room; with none,
//! the new one is refused and counted) and each incomplete entry holds at
//! most [`ArpConfig::max_pending`] packets (the oldest is dropped).
//!
//! Our own addresses start `Tentative`: [`ArpConfig::dad_probes`] probes
//! (sender address 0.0.0.0) go out [`ArpConfig::dad_interval_ms`] apart.
//! Any ARP packet from another station claiming the address, or a probe
//! for it from another station, makes it `Duplicate` (not used, shown so in
//! `ipadm show-addr`; the station that has it stays reachable as a
//! neighbour); otherwise it becomes `Ok` and is announced by a
//! gratuitous ARP. A conflict on an address in use is defended with one
//! gratuitous ARP (at most one per [`ArpConfig::defend_interval_ms`]).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use super::wire::arp::{ARP_REPLY, ARP_REQUEST, ArpPacket};

/// The broadcast Ethernet address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Timers and bounds of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpConfig {
    /// Between two requests for an incomplete entry (ms).
    pub retrans_ms: u64,
    /// Requests sent before an incomplete entry is given up.
    pub max_probes: u32,
    /// How long a confirmed entry stays `Reachable` (ms).
    pub reachable_ms: u64,
    /// How long an entry lives without confirmation (ms).
    pub expire_ms: u64,
    /// Entries at most.
    pub max_entries: usize,
    /// Packets waiting on one incomplete entry at most.
    pub max_pending: usize,
    /// Duplicate-address probes per new address.
    pub dad_probes: u32,
    /// Between two probes (ms).
    pub dad_interval_ms: u64,
    /// Least time between two defences of one address (ms).
    pub defend_interval_ms: u64,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            retrans_ms: 1000,
            max_probes: 3,
            reachable_ms: 30_000,
            expire_ms: 20 * 60_000,
            max_entries: 1024,
            max_pending: 8,
            dad_probes: 3,
            dad_interval_ms: 150,
            defend_interval_ms: 10_000,
        }
    }
}

/// The state of a neighbour entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighbourState {
    /// Requests are out; no answer yet.
    Incomplete,
    /// Confirmed recently.
    Reachable,
    /// Usable; will be confirmed at its next use.
    Stale,
}

/// The state of one of our own addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrState {
    /// Being probed: not used yet.
    Tentative,
    /// In use.
    Ok,
    /// Another station has it: not used.
    Duplicate,
}

impl AddrState {
    /// The word `ipadm show-addr` prints.
    pub fn name(self) -> &'static str {
        match self {
            AddrState::Tentative => "tentative",
            AddrState::Ok => "ok",
            AddrState::Duplicate => "duplicate",
        }
    }
}

/// A neighbour entry as `arp -a` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourInfo {
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its MAC (zero while incomplete).
    pub mac: [u8; 6],
    /// Its state.
    pub state: NeighbourState,
}

/// The cache's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArpStats {
    /// Requests received.
    pub in_requests: u64,
    /// Replies received.
    pub in_replies: u64,
    /// Requests sent (probes and announcements included).
    pub out_requests: u64,
    /// Replies sent.
    pub out_replies: u64,
    /// Incomplete entries given up after `max_probes`.
    pub resolve_failed: u64,
    /// Packets dropped while waiting (queue full, entry given up, no room).
    pub pending_dropped: u64,
    /// New entries refused because the table was full of live entries.
    pub table_full: u64,
    /// Packets claiming one of our addresses from another station.
    pub conflicts: u64,
    /// Packets ignored (sender not unicast, sender is us, ...).
    pub ignored: u64,
}

/// What the caller must do after a call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ArpActions {
    /// ARP packets to transmit: (Ethernet destination, packet).
    pub send: Vec<([u8; 6], ArpPacket)>,
    /// IP packets whose next hop is now known: (its MAC, packet).
    pub release: Vec<([u8; 6], Vec<u8>)>,
    /// Our addresses whose state changed.
    pub addr_changes: Vec<(Ipv4Addr, AddrState)>,
    /// IP packets that were waiting for resolution and were given up in
    /// this call (the oldest pushed out of a full queue, or the queue of
    /// an entry that never resolved): the caller counts them as output
    /// discards (illumos `ipIfStatsOutDiscards`, `nce_resolv_failed`).
    /// Also in [`ArpStats::pending_dropped`].
    pub dropped: u64,
}

/// The result of [`NeighbourCache::resolve`].
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Send the packet to this MAC now.
    Now([u8; 6], Vec<u8>),
    /// The packet waits for the reply.
    Queued,
    /// The packet was dropped (counted in [`ArpStats::pending_dropped`]).
    Dropped,
}

struct Entry {
    state: NeighbourState,
    mac: [u8; 6],
    /// When last confirmed (Reachable/Stale) or when the last request
    /// went out (Incomplete).
    stamp_ms: u64,
    /// Requests sent in this round (Incomplete), or unicast confirming
    /// requests sent since the entry was last used stale (Stale).
    probes: u32,
    /// When the last confirming request of a Stale entry went out.
    probe_ms: u64,
    pending: Vec<Vec<u8>>,
}

struct Local {
    state: AddrState,
    probes_sent: u32,
    next_ms: u64,
    last_defend_ms: Option<u64>,
}

/// The neighbour cache and our addresses' DAD. See the module
/// documentation.
pub struct NeighbourCache {
    cfg: ArpConfig,
    mac: [u8; 6],
    entries: BTreeMap<Ipv4Addr, Entry>,
    locals: BTreeMap<Ipv4Addr, Local>,
    stats: ArpStats,
}

fn is_unicast_mac(m: [u8; 6]) -> bool {
    m[0] & 1 == 0 && m != [0; 6]
}

fn is_unicast_ip(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

impl NeighbourCache {
    /// An empty cache for a station with Ethernet address `mac`.
    pub fn new(mac: [u8; 6], cfg: ArpConfig) -> NeighbourCache {
        NeighbourCache { cfg, mac, entries: BTreeMap::new(), locals: BTreeMap::new(), stats: ArpStats::default() }
    }

    /// Its configuration.
    pub fn config(&self) -> &ArpConfig {
        &self.cfg
    }

    /// Its counters.
    pub fn stats(&self) -> ArpStats {
        self.stats
    }

    /// The neighbour entries, by address.
    pub fn entries(&self) -> Vec<NeighbourInfo> {
        self.entries.iter().map(|(ip, e)| NeighbourInfo { ip: *ip, mac: e.mac, state: e.state }).collect()
    }

    /// Packets waiting for resolution, over all entries.
    pub fn pending(&self) -> usize {
        self.entries.values().map(|e| e.pending.len()).sum()
    }

    /// The state of our address `a` (`None`: not ours).
    pub fn local_state(&self, a: Ipv4Addr) -> Option<AddrState> {
        self.locals.get(&a).map(|l| l.state)
    }

    fn request(&mut self, dst_mac: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr, out: &mut ArpActions) {
        self.stats.out_requests += 1;
        let tha = if dst_mac == BROADCAST_MAC { [0; 6] } else { dst_mac };
        out.send.push((dst_mac, ArpPacket { op: ARP_REQUEST, sha: self.mac, spa, tha, tpa }));
    }

    /// An address to send requests from: `src` if it is ours and usable,
    /// else any usable one.
    fn sender_for(&self, src: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        let ok = |a: &Ipv4Addr| self.locals.get(a).is_some_and(|l| l.state == AddrState::Ok);
        src.filter(ok).or_else(|| self.locals.keys().copied().find(ok))
    }

    /// Starts duplicate-address detection for our new address `a`: the
    /// first probe goes out now.
    pub fn add_local(&mut self, a: Ipv4Addr, now_ms: u64) -> ArpActions {
        let mut out = ArpActions::default();
        let mut local = Local { state: AddrState::Tentative, probes_sent: 0, next_ms: now_ms, last_defend_ms: None };
        if self.cfg.dad_probes == 0 {
            local.state = AddrState::Ok;
            self.locals.insert(a, local);
            self.entries.remove(&a);
            self.request(BROADCAST_MAC, a, a, &mut out);
            out.addr_changes.push((a, AddrState::Ok));
            return out;
        }
        self.locals.insert(a, local);
        self.run_dad(now_ms, &mut out);
        out
    }

    /// Forgets our address `a`.
    pub fn remove_local(&mut self, a: Ipv4Addr) {
        self.locals.remove(&a);
    }

    fn run_dad(&mut self, now_ms: u64, out: &mut ArpActions) {
        let due: Vec<Ipv4Addr> = self
            .locals
            .iter()
            .filter(|(_, l)| l.state == AddrState::Tentative && l.next_ms <= now_ms)
            .map(|(a, _)| *a)
            .collect();
        for a in due {
            let (probes, limit) = {
                let l = &self.locals[&a];
                (l.probes_sent, self.cfg.dad_probes)
            };
            if probes < limit {
                self.request(BROADCAST_MAC, Ipv4Addr::UNSPECIFIED, a, out);
                if let Some(l) = self.locals.get_mut(&a) {
                    l.probes_sent += 1;
                    l.next_ms = now_ms + self.cfg.dad_interval_ms;
                }
            } else {
                if let Some(l) = self.locals.get_mut(&a) {
                    l.state = AddrState::Ok;
                }
                // Ours now: no neighbour has it.
                self.entries.remove(&a);
                out.addr_changes.push((a, AddrState::Ok));
                // The announcement (RFC 5227 2.3): a gratuitous request.
                self.request(BROADCAST_MAC, a, a, out);
            }
        }
    }

    /// The MAC of on-link `ip` when its entry is reachable (a send then
    /// needs nothing else from the table; any other state goes through
    /// [`resolve`](Self::resolve)).
    pub fn reachable(&self, ip: Ipv4Addr) -> Option<[u8; 6]> {
        self.entries.get(&ip).filter(|e| e.state == NeighbourState::Reachable).map(|e| e.mac)
    }

    /// Finds the MAC of on-link `ip` for `pkt` (sent from our `src`).
    /// Unknown: an entry is made, a request goes out (in `out`), and the
    /// packet waits.
    pub fn resolve(&mut self, ip: Ipv4Addr, src: Option<Ipv4Addr>, now_ms: u64, pkt: Vec<u8>, out: &mut ArpActions) -> Resolution {
        if let Some(e) = self.entries.get_mut(&ip) {
            match e.state {
                NeighbourState::Reachable => return Resolution::Now(e.mac, pkt),
                NeighbourState::Stale => {
                    let mac = e.mac;
                    if e.probes == 0 {
                        // RFC 1122 2.3.2.1: confirm it with a unicast
                        // request; unanswered ones make it fail (tick).
                        e.probes = 1;
                        e.probe_ms = now_ms;
                        if let Some(spa) = self.sender_for(src) {
                            self.request(mac, spa, ip, out);
                        }
                    }
                    return Resolution::Now(mac, pkt);
                }
                NeighbourState::Incomplete => {
                    if e.pending.len() >= self.cfg.max_pending {
                        e.pending.remove(0);
                        self.stats.pending_dropped += 1;
                        out.dropped += 1;
                    }
                    e.pending.push(pkt);
                    return Resolution::Queued;
                }
            }
        }
        let Some(spa) = self.sender_for(src) else {
            self.stats.pending_dropped += 1;
            return Resolution::Dropped;
        };
        if !self.make_room(out) {
            self.stats.table_full += 1;
            self.stats.pending_dropped += 1;
            return Resolution::Dropped;
        }
        self.entries.insert(ip, Entry { state: NeighbourState::Incomplete, mac: [0; 6], stamp_ms: now_ms, probes: 1, probe_ms: 0, pending: alloc::vec![pkt] });
        self.request(BROADCAST_MAC, spa, ip, out);
        Resolution::Queued
    }

    /// Makes room for one more entry: the oldest stale entry goes, else
    /// the oldest incomplete one (its waiting packets counted as dropped),
    /// so that a flood of unresolvable addresses cannot lock the table;
    /// `false` if every entry is reachable.
    fn make_room(&mut self, out: &mut ArpActions) -> bool {
        if self.entries.len() < self.cfg.max_entries {
            return true;
        }
        let oldest = |st: NeighbourState, entries: &BTreeMap<Ipv4Addr, Entry>| {
            entries.iter().filter(|(_, e)| e.state == st).min_by_key(|(_, e)| e.stamp_ms).map(|(ip, _)| *ip)
        };
        let victim = oldest(NeighbourState::Stale, &self.entries).or_else(|| oldest(NeighbourState::Incomplete, &self.entries));
        match victim.and_then(|ip| self.entries.remove(&ip)) {
            Some(e) => {
                if e.state == NeighbourState::Incomplete {
                    self.stats.resolve_failed += 1;
                    self.stats.pending_dropped += e.pending.len() as u64;
                    out.dropped += e.pending.len() as u64;
                }
                true
            }
            None => false,
        }
    }

    /// Confirms `ip` at `mac` (a reply, or a request from it to us):
    /// `Reachable`, and the packets waiting on it are released.
    fn confirm(&mut self, ip: Ipv4Addr, mac: [u8; 6], now_ms: u64, create: bool, out: &mut ArpActions) {
        match self.entries.get_mut(&ip) {
            Some(e) => {
                e.state = NeighbourState::Reachable;
                e.mac = mac;
                e.stamp_ms = now_ms;
                e.probes = 0;
                for p in e.pending.drain(..) {
                    out.release.push((mac, p));
                }
            }
            None if create => {
                if self.make_room(out) {
                    self.entries.insert(ip, Entry { state: NeighbourState::Reachable, mac, stamp_ms: now_ms, probes: 0, probe_ms: 0, pending: Vec::new() });
                } else {
                    self.stats.table_full += 1;
                }
            }
            None => {}
        }
    }

    /// One received ARP packet.
    pub fn input(&mut self, p: &ArpPacket, now_ms: u64) -> ArpActions {
        let mut out = ArpActions::default();
        if p.op == ARP_REQUEST {
            self.stats.in_requests += 1;
        } else {
            self.stats.in_replies += 1;
        }
        if p.sha == self.mac || !is_unicast_mac(p.sha) {
            self.stats.ignored += 1;
            return out;
        }
        // Someone else claims one of our addresses (RFC 5227 2.1.1, 2.4),
        // or probes for our tentative one.
        let claimed = if self.locals.contains_key(&p.spa) {
            Some(p.spa)
        } else if p.spa.is_unspecified() && p.op == ARP_REQUEST && self.locals.get(&p.tpa).is_some_and(|l| l.state == AddrState::Tentative) {
            Some(p.tpa)
        } else {
            None
        };
        if let Some(a) = claimed {
            let defend = self.cfg.defend_interval_ms;
            let Some(l) = self.locals.get_mut(&a) else { return out };
            match l.state {
                AddrState::Tentative => {
                    self.stats.conflicts += 1;
                    l.state = AddrState::Duplicate;
                    out.addr_changes.push((a, AddrState::Duplicate));
                }
                AddrState::Ok => {
                    self.stats.conflicts += 1;
                    if l.last_defend_ms.is_none_or(|t| now_ms >= t + defend) {
                        l.last_defend_ms = Some(now_ms);
                        self.request(BROADCAST_MAC, a, a, &mut out);
                    }
                    return out;
                }
                // The other station owns it: learn it like any neighbour.
                AddrState::Duplicate => {}
            }
        }
        // A probe (RFC 5227 2.1.1: sender address 0.0.0.0) for an address
        // we use: answer it, so the prober sees the address is taken. The
        // reply goes to the prober's hardware address, its target address
        // the prober's 0.0.0.0; nothing is learnt from a probe.
        if p.spa.is_unspecified()
            && p.op == ARP_REQUEST
            && self.locals.get(&p.tpa).is_some_and(|l| l.state == AddrState::Ok)
        {
            self.stats.out_replies += 1;
            out.send.push((p.sha, ArpPacket { op: ARP_REPLY, sha: self.mac, spa: p.tpa, tha: p.sha, tpa: p.spa }));
            return out;
        }
        if !is_unicast_ip(p.spa) {
            if !p.spa.is_unspecified() {
                self.stats.ignored += 1;
            }
            // A probe from another station for an address not ours: nothing
            // to learn.
            return out;
        }
        let for_us = self.locals.get(&p.tpa).is_some_and(|l| l.state == AddrState::Ok);
        // RFC 826: update an entry we have; make one only for a request to
        // us (the sender will want our answer). An unsolicited reply makes
        // no entry: anyone could claim any address that way.
        self.confirm(p.spa, p.sha, now_ms, for_us && p.op == ARP_REQUEST, &mut out);
        if for_us && p.op == ARP_REQUEST {
            self.stats.out_replies += 1;
            out.send.push((p.sha, ArpPacket { op: ARP_REPLY, sha: self.mac, spa: p.tpa, tha: p.sha, tpa: p.spa }));
        }
        out
    }

    /// Runs the timers: retransmits, gives up, ages and expires entries,
    /// advances DAD.
    pub fn tick(&mut self, now_ms: u64) -> ArpActions {
        let mut out = ArpActions::default();
        self.run_dad(now_ms, &mut out);
        let cfg = self.cfg;
        let mut gone = Vec::new();
        let mut retransmit = Vec::new();
        let mut confirm = Vec::new();
        for (ip, e) in self.entries.iter_mut() {
            match e.state {
                NeighbourState::Incomplete => {
                    if now_ms >= e.stamp_ms + cfg.retrans_ms {
                        if e.probes >= cfg.max_probes {
                            gone.push(*ip);
                        } else {
                            e.probes += 1;
                            e.stamp_ms = now_ms;
                            retransmit.push(*ip);
                        }
                    }
                }
                NeighbourState::Reachable => {
                    if now_ms >= e.stamp_ms + cfg.reachable_ms {
                        e.state = NeighbourState::Stale;
                        e.probes = 0;
                    }
                }
                NeighbourState::Stale => {
                    if now_ms >= e.stamp_ms + cfg.expire_ms {
                        gone.push(*ip);
                    } else if e.probes > 0 && now_ms >= e.probe_ms + cfg.retrans_ms {
                        if e.probes >= cfg.max_probes {
                            // No answer to any confirming request: the
                            // neighbour is gone (or moved); resolve afresh.
                            self.stats.resolve_failed += 1;
                            gone.push(*ip);
                        } else {
                            e.probes += 1;
                            e.probe_ms = now_ms;
                            confirm.push((*ip, e.mac));
                        }
                    }
                }
            }
        }
        for ip in gone {
            if let Some(e) = self.entries.remove(&ip)
                && e.state == NeighbourState::Incomplete
            {
                self.stats.resolve_failed += 1;
                self.stats.pending_dropped += e.pending.len() as u64;
                out.dropped += e.pending.len() as u64;
            }
        }
        for ip in retransmit {
            if let Some(spa) = self.sender_for(None) {
                self.request(BROADCAST_MAC, spa, ip, &mut out);
            }
        }
        for (ip, mac) in confirm {
            if let Some(spa) = self.sender_for(None) {
                self.request(mac, spa, ip, &mut out);
            }
        }
        out
    }

    /// Removes every entry (`arp -d`-like; on address changes) and
    /// returns how many waiting packets went with them (for the caller to
    /// count as output discards).
    pub fn flush(&mut self) -> u64 {
        let n: u64 = self.entries.values().map(|e| e.pending.len() as u64).sum();
        self.stats.pending_dropped += n;
        self.entries.clear();
        n
    }
}
