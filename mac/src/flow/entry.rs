//! A flow (illumos `flow_entry_t`): its name, link and descriptor, its
//! properties — `maxbw` (full duplex; `0` drops everything of the flow),
//! `priority` (low/medium/high, default medium) and the read-only
//! `hwflow` (always `off`: the drivers classify no flows in hardware) —
//! and its two soft ring sets as far as flows need them: a receive and a
//! transmit [`Shaper`] with the flow's counters.
//!
//! Counting: every packet classified to the flow counts in `ipkts`/
//! `rbytes` (receive) or `opkts`/`obytes` (transmit), also those the flow
//! then drops; `idrops`/`odrops` count the drops (`maxbw=0`, or the
//! shaper's queue full); `ierrs` counts received packets handed up while
//! no receiver was attached, `oerrs` transmitted packets the link could
//! not send (no lower link, no room for a VLAN tag).

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use crate::bw::Shaper;
use crate::client::MacClient;
use crate::mblk::{Mblk, MblkChain};
use crate::props::Priority;

use super::desc::FlowDesc;

/// The settable properties of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowProps {
    /// Bits per second, both directions; `None` unlimited, `Some(0)`
    /// drops everything.
    pub maxbw: Option<u64>,
    pub priority: Priority,
}

impl Default for FlowProps {
    /// Unlimited, `medium`.
    fn default() -> Self {
        FlowProps { maxbw: None, priority: Priority::Medium }
    }
}

/// Counters of a flow.
#[derive(Debug, Default)]
pub struct FlowStats {
    pub ipkts: AtomicU64,
    pub rbytes: AtomicU64,
    pub ierrs: AtomicU64,
    pub opkts: AtomicU64,
    pub obytes: AtomicU64,
    pub oerrs: AtomicU64,
    /// Received packets dropped by `maxbw=0`.
    pub izero_drops: AtomicU64,
    /// Transmitted packets dropped by `maxbw=0`.
    pub ozero_drops: AtomicU64,
}

/// A plain copy of a flow's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlowCounters {
    pub ipkts: u64,
    pub rbytes: u64,
    pub ierrs: u64,
    pub opkts: u64,
    pub obytes: u64,
    pub oerrs: u64,
    /// Received packets dropped (maxbw=0, shaper queue full).
    pub idrops: u64,
    /// Transmitted packets dropped (maxbw=0, shaper queue full).
    pub odrops: u64,
}

impl FlowCounters {
    /// The change since `prev` (a counter that went backwards counts from
    /// zero).
    pub fn since(&self, prev: &FlowCounters) -> FlowCounters {
        let d = |c: u64, p: u64| if c >= p { c - p } else { c };
        FlowCounters {
            ipkts: d(self.ipkts, prev.ipkts),
            rbytes: d(self.rbytes, prev.rbytes),
            ierrs: d(self.ierrs, prev.ierrs),
            opkts: d(self.opkts, prev.opkts),
            obytes: d(self.obytes, prev.obytes),
            oerrs: d(self.oerrs, prev.oerrs),
            idrops: d(self.idrops, prev.idrops),
            odrops: d(self.odrops, prev.odrops),
        }
    }
}

const NO_LIMIT: u64 = u64::MAX;

/// One flow.
pub struct FlowEntry {
    name: String,
    link: String,
    desc: FlowDesc,
    temporary: bool,
    client: Weak<MacClient>,
    /// Bits/s, [`NO_LIMIT`] for none.
    maxbw: AtomicU64,
    priority: AtomicU8,
    /// A limit is set or was, and its queues may hold packets: the data
    /// path goes through the shapers (cleared by the bandwidth service
    /// once unlimited and drained).
    shaped: AtomicBool,
    /// How many flows of the client are shaped (shared with its
    /// [`super::ClientFlows`]), kept as `shaped` flips.
    shaped_count: Arc<AtomicUsize>,
    pub rx_bw: Shaper,
    pub tx_bw: Shaper,
    pub stats: FlowStats,
}

fn prio_to_u8(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
    }
}

fn prio_from_u8(v: u8) -> Priority {
    match v {
        0 => Priority::Low,
        2 => Priority::High,
        _ => Priority::Medium,
    }
}

impl FlowEntry {
    /// A flow on `client` (link `link`), not yet in any table.
    pub fn new(name: &str, link: &str, desc: FlowDesc, props: FlowProps, temporary: bool, client: &Arc<MacClient>) -> FlowEntry {
        let e = FlowEntry {
            name: String::from(name),
            link: String::from(link),
            desc,
            temporary,
            client: Arc::downgrade(client),
            maxbw: AtomicU64::new(NO_LIMIT),
            priority: AtomicU8::new(prio_to_u8(props.priority)),
            shaped: AtomicBool::new(false),
            shaped_count: client.flows().shaped_counter(),
            rx_bw: Shaper::default(),
            tx_bw: Shaper::default(),
            stats: FlowStats::default(),
        };
        e.set_props(props);
        e
    }

    /// A flow attached to no client (tests, benchmarks of the tables).
    pub fn detached(name: &str, desc: FlowDesc, props: FlowProps) -> FlowEntry {
        let e = FlowEntry {
            name: String::from(name),
            link: String::new(),
            desc,
            temporary: true,
            client: Weak::new(),
            maxbw: AtomicU64::new(NO_LIMIT),
            priority: AtomicU8::new(prio_to_u8(props.priority)),
            shaped: AtomicBool::new(false),
            shaped_count: Arc::default(),
            rx_bw: Shaper::default(),
            tx_bw: Shaper::default(),
            stats: FlowStats::default(),
        };
        e.set_props(props);
        e
    }

    /// Flow name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Name of the link it is on.
    pub fn link(&self) -> &str {
        &self.link
    }

    /// Its attributes.
    pub fn desc(&self) -> &FlowDesc {
        &self.desc
    }

    /// Whether it was added with `-t` (every flow is temporary anyway).
    pub fn temporary(&self) -> bool {
        self.temporary
    }

    /// The MAC client of its link.
    pub fn client(&self) -> Option<Arc<MacClient>> {
        self.client.upgrade()
    }

    /// Current properties.
    pub fn props(&self) -> FlowProps {
        let m = self.maxbw.load(Ordering::Acquire);
        FlowProps { maxbw: (m != NO_LIMIT).then_some(m), priority: self.priority() }
    }

    /// `priority`.
    #[inline]
    pub fn priority(&self) -> Priority {
        prio_from_u8(self.priority.load(Ordering::Relaxed))
    }

    /// `hwflow`: whether the NIC classifies it (never, here).
    pub fn hwflow(&self) -> bool {
        false
    }

    /// Applies `p` to the data path: the shapers get the limit (none for
    /// `maxbw=0`, which drops instead).
    pub fn set_props(&self, p: FlowProps) {
        self.priority.store(prio_to_u8(p.priority), Ordering::Relaxed);
        let limit = p.maxbw.filter(|&b| b != 0);
        self.rx_bw.set_limit(limit);
        self.tx_bw.set_limit(limit);
        self.maxbw.store(p.maxbw.unwrap_or(NO_LIMIT), Ordering::Release);
        if limit.is_some() {
            self.set_shaped(true);
        }
    }

    fn set_shaped(&self, on: bool) {
        if self.shaped.swap(on, Ordering::AcqRel) != on {
            if on {
                self.shaped_count.fetch_add(1, Ordering::AcqRel);
            } else {
                self.shaped_count.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    #[inline]
    fn blocked(&self) -> bool {
        self.maxbw.load(Ordering::Relaxed) == 0
    }

    /// Snapshot of the counters.
    pub fn counters(&self) -> FlowCounters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let s = &self.stats;
        FlowCounters {
            ipkts: l(&s.ipkts),
            rbytes: l(&s.rbytes),
            ierrs: l(&s.ierrs),
            opkts: l(&s.opkts),
            obytes: l(&s.obytes),
            oerrs: l(&s.oerrs),
            idrops: l(&s.izero_drops).wrapping_add(l(&self.rx_bw.drops)),
            odrops: l(&s.ozero_drops).wrapping_add(l(&self.tx_bw.drops)),
        }
    }

    /// A received packet classified to the flow at `now`: counted, then
    /// dropped (`maxbw=0`), queued, or pushed onto `out` with whatever
    /// the allowance releases first. `attached`: a receiver is there.
    #[inline]
    pub fn rx(&self, m: Mblk, now: u64, attached: bool, out: &mut MblkChain) {
        self.stats.ipkts.fetch_add(1, Ordering::Relaxed);
        self.stats.rbytes.fetch_add(m.total_len() as u64, Ordering::Relaxed);
        if self.blocked() {
            self.stats.izero_drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !attached {
            self.stats.ierrs.fetch_add(1, Ordering::Relaxed);
        }
        if self.shaped.load(Ordering::Acquire) {
            let mut released = self.rx_bw.service(now);
            out.append(&mut released);
            if let Some(m) = self.rx_bw.admit(m, now) {
                out.push(m);
            }
            return;
        }
        out.push(m);
    }

    /// A packet to transmit classified to the flow at `now`: counted,
    /// then dropped, queued, or pushed onto `out` (after what the
    /// allowance releases first) to go on to the link.
    #[inline]
    pub fn tx(&self, m: Mblk, now: u64, out: &mut MblkChain) {
        self.stats.opkts.fetch_add(1, Ordering::Relaxed);
        self.stats.obytes.fetch_add(m.total_len() as u64, Ordering::Relaxed);
        if self.blocked() {
            self.stats.ozero_drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.shaped.load(Ordering::Acquire) {
            let mut released = self.tx_bw.service(now);
            out.append(&mut released);
            if let Some(m) = self.tx_bw.admit(m, now) {
                out.push(m);
            }
            return;
        }
        out.push(m);
    }

    /// The bandwidth tick: what the allowance releases by `now`, (Rx, Tx).
    /// Once unlimited and drained the flow leaves the shaped path.
    pub fn service(&self, now: u64) -> (MblkChain, MblkChain) {
        let rx = self.rx_bw.service(now);
        let tx = self.tx_bw.service(now);
        if self.rx_bw.limit().is_none() && self.tx_bw.limit().is_none() && !self.rx_bw.backlogged() && !self.tx_bw.backlogged() {
            self.set_shaped(false);
            // A limit set meanwhile re-marks it.
            if self.rx_bw.limit().is_some() {
                self.set_shaped(true);
            }
        }
        (rx, tx)
    }

    /// Whether the bandwidth tick has work here: a limit or a backlog.
    pub fn bw_active(&self) -> bool {
        self.shaped.load(Ordering::Acquire)
            && (self.rx_bw.limit().is_some() || self.rx_bw.backlogged() || self.tx_bw.backlogged())
    }

    /// Counts a transmitted packet of the flow the link could not send.
    pub(crate) fn count_oerr(&self) {
        self.stats.oerrs.fetch_add(1, Ordering::Relaxed);
    }
}

impl core::fmt::Debug for FlowEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlowEntry").field("name", &self.name).field("link", &self.link).field("desc", &self.desc).finish()
    }
}
