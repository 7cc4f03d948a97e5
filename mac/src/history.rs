//! Usage history (`dlstat show-link -h`, `flowstat -h`; illumos keeps it
//! with exacct, `dladm show-usage` before): an in-memory, bounded ring of
//! per-interval samples of every link's and every flow's traffic. The
//! kernel calls [`record`] about once a second; each call after the first
//! adds one sample holding, for each link and flow that moved traffic
//! since the previous call, how many packets and bytes it received and
//! sent in that interval (idle objects take no room).
//!
//! Bounds: at most [`HISTORY_SAMPLES`] samples and [`HISTORY_ENTRIES`]
//! (object, interval) entries in all; the oldest samples go first.
//! Nothing survives a reboot (there is no storage).
//!
//! Reports ([`History::summary`], [`History::series`]):
//!
//! * `DURATION`: the seconds of the retained intervals in which the
//!   object moved traffic; the counts are summed over them, and
//!   `BANDWIDTH` is (RBYTES + OBYTES) × 8 / DURATION, the average rate
//!   while in use;
//! * `-F gnuplot`: one row per retained sample, the time (seconds since
//!   boot, at the end of the interval) then each object's rate in the
//!   interval in Kbps.
//!
//! Counters are read raw (a `dlstat reset` does not disturb the history);
//! an object first seen after the first call counts from its creation, a
//! counter that went backwards (the object was re-created) from zero.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use crate::flow::registry;
use crate::link;

/// Most samples kept (an hour at one a second).
pub const HISTORY_SAMPLES: usize = 3600;
/// Most (object, interval) entries kept over all samples.
pub const HISTORY_ENTRIES: usize = 65536;

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Link,
    Flow,
}

/// Traffic counters: packets in, bytes in, packets out, bytes out.
pub type Counts = [u64; 4];

#[derive(Debug, Clone)]
struct Item {
    kind: Kind,
    name: Arc<str>,
    /// The flow's link (empty for a link).
    link: Arc<str>,
    delta: Counts,
}

#[derive(Debug, Clone)]
struct Sample {
    start_ns: u64,
    end_ns: u64,
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
struct Last {
    name: Arc<str>,
    link: Arc<str>,
    counts: Counts,
    /// The `record_at` round that last saw it.
    seen: u64,
}

/// One object's totals over the retained history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub name: String,
    /// The flow's link (empty for a link).
    pub link: String,
    /// Nanoseconds of the intervals in which it moved traffic.
    pub duration_ns: u64,
    pub counts: Counts,
}

impl Summary {
    /// Average bits per second over `duration_ns` (0 without any).
    pub fn bps(&self) -> u64 {
        if self.duration_ns == 0 {
            return 0;
        }
        let bits = (u128::from(self.counts[1]) + u128::from(self.counts[3])) * 8;
        (bits * 1_000_000_000 / u128::from(self.duration_ns)).min(u128::from(u64::MAX)) as u64
    }
}

/// The ring of samples.
#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    entries: usize,
    /// The counters of each link and flow at the last call.
    last_links: BTreeMap<Arc<str>, Last>,
    last_flows: BTreeMap<Arc<str>, Last>,
    last_ns: Option<u64>,
    /// `record_at` rounds so far (marks what each round saw).
    round: u64,
    /// Entries not kept because one interval had more than
    /// [`HISTORY_ENTRIES`] active objects.
    pub overflow: u64,
}

fn since(cur: &Counts, prev: &Counts) -> Counts {
    let mut d = [0u64; 4];
    for i in 0..4 {
        d[i] = if cur[i] >= prev[i] { cur[i] - prev[i] } else { cur[i] };
    }
    d
}

impl History {
    /// An empty history.
    pub const fn new() -> History {
        History {
            samples: VecDeque::new(),
            entries: 0,
            last_links: BTreeMap::new(),
            last_flows: BTreeMap::new(),
            last_ns: None,
            round: 0,
            overflow: 0,
        }
    }

    /// Records, at `now_ns`, the cumulative counters of every object
    /// there is: (kind, name, link of a flow or "", counters). The first
    /// call (and a call whose time does not advance) only notes them.
    pub fn record_at(&mut self, now_ns: u64, objects: &[(Kind, &str, &str, Counts)]) {
        let start = self.last_ns.filter(|&t| now_ns > t);
        self.round += 1;
        let round = self.round;
        let mut items = Vec::new();
        // The last counters are updated in place (no map is rebuilt and no
        // name copied for an object seen before: with 10 000 flows this
        // runs every second); what a round did not see is dropped after.
        for &(kind, name, link, counts) in objects {
            let map = match kind {
                Kind::Link => &mut self.last_links,
                Kind::Flow => &mut self.last_flows,
            };
            let (name_rc, link_rc, delta) = match map.get_mut(name) {
                Some(p) => {
                    if &*p.link != link {
                        p.link = Arc::from(link);
                    }
                    let delta = since(&counts, &p.counts);
                    p.counts = counts;
                    p.seen = round;
                    (p.name.clone(), p.link.clone(), delta)
                }
                None => {
                    let (n, l): (Arc<str>, Arc<str>) = (Arc::from(name), Arc::from(link));
                    map.insert(n.clone(), Last { name: n.clone(), link: l.clone(), counts, seen: round });
                    (n, l, counts)
                }
            };
            if start.is_some() && delta != [0; 4] {
                if items.len() < HISTORY_ENTRIES {
                    items.push(Item { kind, name: name_rc, link: link_rc, delta });
                } else {
                    self.overflow += 1;
                }
            }
        }
        self.last_links.retain(|_, l| l.seen == round);
        self.last_flows.retain(|_, l| l.seen == round);
        if let Some(start_ns) = start {
            self.entries += items.len();
            self.samples.push_back(Sample { start_ns, end_ns: now_ns, items });
            while self.samples.len() > HISTORY_SAMPLES || self.entries > HISTORY_ENTRIES {
                match self.samples.pop_front() {
                    Some(s) => self.entries -= s.items.len(),
                    None => break,
                }
            }
        }
        if self.last_ns.is_none_or(|t| now_ns > t) {
            self.last_ns = Some(now_ns);
        }
    }

    /// Number of samples kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is kept.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Totals of every object of `kind` that moved traffic in the
    /// retained history, in order of first appearance.
    pub fn summary(&self, kind: Kind) -> Vec<Summary> {
        let mut out: Vec<Summary> = Vec::new();
        let mut index: BTreeMap<Arc<str>, usize> = BTreeMap::new();
        for s in &self.samples {
            let dt = s.end_ns - s.start_ns;
            for it in s.items.iter().filter(|i| i.kind == kind) {
                let i = *index.entry(it.name.clone()).or_insert_with(|| {
                    out.push(Summary { name: String::from(&*it.name), link: String::new(), duration_ns: 0, counts: [0; 4] });
                    out.len() - 1
                });
                let o = &mut out[i];
                o.link = String::from(&*it.link);
                o.duration_ns += dt;
                for k in 0..4 {
                    o.counts[k] = o.counts[k].wrapping_add(it.delta[k]);
                }
            }
        }
        out
    }

    /// Per sample: its end time and, for each of `names` (objects of
    /// `kind`), the bits per second in that interval.
    pub fn series(&self, kind: Kind, names: &[&str]) -> Vec<(u64, Vec<u64>)> {
        self.samples
            .iter()
            .map(|s| {
                let dt = u128::from((s.end_ns - s.start_ns).max(1));
                let rates = names
                    .iter()
                    .map(|n| {
                        s.items.iter().find(|i| i.kind == kind && &*i.name == *n).map_or(0, |i| {
                            let bits = (u128::from(i.delta[1]) + u128::from(i.delta[3])) * 8;
                            (bits * 1_000_000_000 / dt).min(u128::from(u64::MAX)) as u64
                        })
                    })
                    .collect();
                (s.end_ns, rates)
            })
            .collect()
    }
}

static HISTORY: Mutex<History> = Mutex::new(History::new());

/// Takes one sample of every link and flow at `now_ns` (nanoseconds since
/// boot). The kernel calls this about once a second.
pub fn record(now_ns: u64) {
    let links = link::datalinks();
    let flows = registry::flows();
    let link_counts: Vec<Counts> = links.iter().map(crate::admin::link_totals).collect();
    let mut objs: Vec<(Kind, &str, &str, Counts)> = Vec::with_capacity(links.len() + flows.len());
    for (l, c) in links.iter().zip(&link_counts) {
        objs.push((Kind::Link, l.name(), "", *c));
    }
    for f in &flows {
        let c = f.counters();
        objs.push((Kind::Flow, f.name(), f.link(), [c.ipkts, c.rbytes, c.opkts, c.obytes]));
    }
    HISTORY.lock().record_at(now_ns, &objs);
}

/// Runs `f` over the system's history.
pub fn with<R>(f: impl FnOnce(&History) -> R) -> R {
    f(&HISTORY.lock())
}
