//! A userspace stand-in for `tc netem` between the guest and Linux: this
//! host's kernel has no `sch_netem` (nor a `prio` qdisc to hang it on), so
//! delay and reordering on the test's TAP are made here, by a relay that
//! owns the frames in flight.
//!
//! [`Relay::start`] moves the host side of a test [`Netns`] ("A", holding
//! the TAP) behind the relay: a veth pair `veth0` (in A, no address) /
//! `veth1` (in a new namespace "B", a [`PlainNs`], with `10.0.0.1/24` and
//! the TAP's MAC, so the guest's ARP entry stays right); the TAP loses
//! `10.0.0.1` so A's kernel answers nothing. Two threads, one a direction,
//! read frames with AF_PACKET sockets on the TAP and on `veth0` and hold
//! each in a bounded queue ([`HoldQueue`]) until its release time: the
//! [`Impairment`]'s delay for every frame, and for IPv4 TCP frames also
//! loss, duplication and reordering (a reordered frame is held
//! [`Impairment::reorder_extra`] longer, so later frames overtake it).
//! Frames whose TCP/UDP checksum was left to offload get it filled in
//! ([`fix_checksum`]); `veth1` has `gso_max_segs 1`, so Linux hands it
//! wire-sized segments, not super-frames. Every frame that is not
//! forwarded is counted ([`Stats`]). Linux clients then run in B
//! ([`Relay::ns_b`]). Drop stops the threads, deletes the veth pair and B,
//! and gives the TAP its address back.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::frames::{checksum_with, pseudo_sum, ETHERTYPE_IPV4, PROTO_TCP, PROTO_UDP};
use crate::net::{in_netns, run_cmd, Netns, PlainNs, RawSocket, SplitMix64, HOST_IP, TAP_PREFIX};

/// The relay's end of the veth pair, in the test namespace A.
pub const RELAY_LINK: &str = "veth0";
/// Linux's end, in namespace B, with [`HOST_IP`].
pub const HOST_LINK: &str = "veth1";
/// Frames one direction may hold at once; more are dropped ([`Stats::overflow`]).
pub const QUEUE_FRAMES: usize = 8192;
/// The longest frame forwarded: Ethernet, 1500 bytes of IP, one VLAN tag.
pub const MAX_FRAME: usize = 1518;
/// The longest a relay thread sleeps before it looks at its stop flag.
const IDLE: Duration = Duration::from_millis(10);

/// What the relay does to frames (the same both ways). Probabilities are
/// per mille and apply to IPv4 TCP frames only (ARP and pings are just
/// delayed, so the path and its RTT can be checked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Impairment {
    /// Added to every frame, each way.
    pub delay: Duration,
    /// Uniform extra delay in `0..=jitter` (frames may pass each other).
    pub jitter: Duration,
    pub loss_permille: u32,
    pub dup_permille: u32,
    pub reorder_permille: u32,
    /// How much longer a reordered frame is held than the rest.
    pub reorder_extra: Duration,
    pub seed: u64,
}

/// What happens to one frame ([`Impairment::fate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fate {
    pub lost: bool,
    /// Copies to send (2: duplicated).
    pub copies: u8,
    pub reordered: bool,
    /// From arrival to release.
    pub hold: Duration,
}

fn chance(rng: &mut SplitMix64, permille: u32) -> bool {
    permille > 0 && rng.next_u64() % 1000 < u64::from(permille)
}

impl Impairment {
    /// Draws the fate of one frame; `tcp`: an IPv4 TCP frame.
    pub fn fate(&self, tcp: bool, rng: &mut SplitMix64) -> Fate {
        let mut hold = self.delay;
        if !self.jitter.is_zero() {
            hold += Duration::from_micros(rng.next_u64() % (self.jitter.as_micros() as u64 + 1));
        }
        if !tcp {
            return Fate { lost: false, copies: 1, reordered: false, hold };
        }
        let lost = chance(rng, self.loss_permille);
        let copies = if chance(rng, self.dup_permille) { 2 } else { 1 };
        let reordered = chance(rng, self.reorder_permille);
        if reordered {
            hold += self.reorder_extra;
        }
        Fate { lost, copies, reordered, hold }
    }
}

/// Declares the counters once: the atomics the threads bump and the plain
/// snapshot a test reads.
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// One direction's counters, bumped by its relay thread.
        #[derive(Debug, Default)]
        pub struct Counters { $($(#[doc = $doc])* pub $name: AtomicU64,)* }

        /// A snapshot of [`Counters`] (or a sum of them).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Stats { $($(#[doc = $doc])* pub $name: u64,)* }

        impl Counters {
            pub fn snapshot(&self) -> Stats {
                Stats { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl std::ops::Add for Stats {
            type Output = Stats;
            fn add(self, o: Stats) -> Stats {
                Stats { $($name: self.$name + o.$name,)* }
            }
        }

        impl std::ops::Sub for Stats {
            type Output = Stats;
            /// Counter by counter (what happened since an earlier snapshot).
            fn sub(self, o: Stats) -> Stats {
                Stats { $($name: self.$name.saturating_sub(o.$name),)* }
            }
        }

        impl fmt::Display for Stats {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut sep = "";
                $(write!(f, "{sep}{} {}", stringify!($name), self.$name)?; sep = " ";)*
                Ok(())
            }
        }
    };
}

counters! {
    /// Frames read.
    received,
    /// Frames sent on (duplicates included).
    forwarded,
    /// Frames held for a non-zero time.
    delayed,
    /// Frames held longer so that later ones overtake them.
    reordered,
    /// Frames lost on purpose.
    dropped,
    /// Frames sent twice.
    duplicated,
    /// Frames (or copies) dropped because the hold queue was full.
    overflow,
    /// Frames dropped for being longer than [`MAX_FRAME`] (super-frames).
    oversize,
    /// Frames whose offloaded TCP/UDP checksum was filled in.
    csum_fixed,
    /// Frames with an offloaded checksum that could not be filled in
    /// (not IPv4 TCP/UDP, a fragment, truncated), dropped.
    csum_bad,
    /// Sends that failed (the frame is lost).
    send_errors,
    /// Receives that failed.
    recv_errors,
    /// Frames still held when the relay stopped, discarded.
    flushed,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// The hold queue.

struct Held {
    at: Instant,
    seq: u64,
    frame: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, o: &Held) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Held) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}

impl Ord for Held {
    /// Reversed, so that the max-heap pops the earliest (then the first pushed).
    fn cmp(&self, o: &Held) -> CmpOrdering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Frames waiting for their release time, earliest first (in arrival order
/// among equal times), at most `cap` of them.
pub struct HoldQueue {
    heap: BinaryHeap<Held>,
    cap: usize,
    seq: u64,
}

impl HoldQueue {
    pub fn new(cap: usize) -> HoldQueue {
        HoldQueue { heap: BinaryHeap::new(), cap, seq: 0 }
    }

    /// Holds `frame` until `at`; `false` (and the frame is dropped) when full.
    pub fn push(&mut self, at: Instant, frame: Vec<u8>) -> bool {
        if self.heap.len() >= self.cap {
            return false;
        }
        self.seq += 1;
        self.heap.push(Held { at, seq: self.seq, frame });
        true
    }

    /// The next frame due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.heap.peek()?.at > now {
            return None;
        }
        self.heap.pop().map(|h| h.frame)
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|h| h.at)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Frames.

/// The IPv4 header's offset, protocol and the transport segment's range in
/// `frame`, when it is an unfragmented, well-formed IPv4 packet.
fn ipv4_transport(frame: &[u8]) -> Option<(usize, u8, std::ops::Range<usize>)> {
    const IP: usize = 14;
    if frame.len() < IP + 20 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
        return None;
    }
    let ihl = usize::from(frame[IP] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[IP + 2], frame[IP + 3]]));
    let frag = u16::from_be_bytes([frame[IP + 6], frame[IP + 7]]) & 0x3fff;
    if frame[IP] >> 4 != 4 || ihl < 20 || total < ihl || IP + total > frame.len() || frag != 0 {
        return None;
    }
    Some((IP, frame[IP + 9], IP + ihl..IP + total))
}

fn is_ipv4_tcp(frame: &[u8]) -> bool {
    matches!(ipv4_transport(frame), Some((_, PROTO_TCP, _)))
}

/// Fills in the TCP or UDP checksum of an IPv4 frame whose sender left it
/// to offload (the field then holds only the pseudo-header sum). `Err`
/// says why it cannot (not IPv4 TCP/UDP, a fragment, truncated).
pub fn fix_checksum(frame: &mut [u8]) -> Result<(), &'static str> {
    let (ip, proto, l4) = ipv4_transport(frame).ok_or("not a whole unfragmented IPv4 packet")?;
    let at = match proto {
        PROTO_TCP if l4.len() >= 20 => 16,
        PROTO_UDP if l4.len() >= 8 => 6,
        PROTO_TCP | PROTO_UDP => return Err("transport header truncated"),
        _ => return Err("neither TCP nor UDP"),
    };
    let addr = |o: usize| Ipv4Addr::new(frame[o], frame[o + 1], frame[o + 2], frame[o + 3]);
    let pseudo = pseudo_sum(addr(ip + 12), addr(ip + 16), proto, l4.len());
    let field = l4.start + at;
    frame[field..field + 2].fill(0);
    let mut c = checksum_with(pseudo, &frame[l4]);
    if proto == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------
// One direction.

/// One direction's frames in flight: what each relay thread runs, apart
/// from its sockets (so host tests can drive it).
pub struct Stage {
    queue: HoldQueue,
    rng: SplitMix64,
    counters: Arc<Counters>,
}

impl Stage {
    pub fn new(cap: usize, seed: u64, counters: Arc<Counters>) -> Stage {
        Stage { queue: HoldQueue::new(cap), rng: SplitMix64::new(seed), counters }
    }

    /// Takes in a frame that arrived at `now` (`len`: its full length as
    /// received, more than `frame` when it was cut; `csum_partial`: its
    /// checksum was left to offload) and holds it as `imp` says.
    pub fn admit(&mut self, frame: &[u8], len: usize, csum_partial: bool, imp: &Impairment, now: Instant) {
        let c = &*self.counters;
        Counters::bump(&c.received);
        if len > frame.len() || len > MAX_FRAME {
            Counters::bump(&c.oversize);
            return;
        }
        let mut frame = frame.to_vec();
        if csum_partial {
            if fix_checksum(&mut frame).is_err() {
                Counters::bump(&c.csum_bad);
                return;
            }
            Counters::bump(&c.csum_fixed);
        }
        let fate = imp.fate(is_ipv4_tcp(&frame), &mut self.rng);
        if fate.lost {
            Counters::bump(&c.dropped);
            return;
        }
        if !fate.hold.is_zero() {
            Counters::bump(&c.delayed);
        }
        if fate.reordered {
            Counters::bump(&c.reordered);
        }
        if fate.copies > 1 {
            Counters::bump(&c.duplicated);
        }
        let at = now + fate.hold;
        for _ in 1..fate.copies {
            if !self.queue.push(at, frame.clone()) {
                Counters::bump(&c.overflow);
            }
        }
        if !self.queue.push(at, frame) {
            Counters::bump(&c.overflow);
        }
    }

    /// Sends every frame due at `now` with `send`.
    pub fn release(&mut self, now: Instant, mut send: impl FnMut(&[u8]) -> io::Result<()>) {
        while let Some(f) = self.queue.pop_due(now) {
            match send(&f) {
                Ok(()) => Counters::bump(&self.counters.forwarded),
                Err(_) => Counters::bump(&self.counters.send_errors),
            }
        }
    }

    /// How long to wait for the next frame before one is due (at most `idle`).
    pub fn wait(&self, now: Instant, idle: Duration) -> Duration {
        self.queue.next_due().map_or(idle, |t| t.saturating_duration_since(now).min(idle))
    }

    /// Discards what is still held (counted as flushed).
    pub fn flush(&mut self) {
        let n = self.queue.len() as u64;
        self.queue = HoldQueue::new(self.queue.cap);
        self.counters.flushed.fetch_add(n, Ordering::Relaxed);
    }
}

/// The relay thread of one direction: `from` to `to` until `stop`.
fn relay_loop(from: &RawSocket, to: &RawSocket, mut stage: Stage, imp: &Mutex<Impairment>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        stage.release(Instant::now(), |f| to.send(f));
        match from.recv_frame(&mut buf, stage.wait(Instant::now(), IDLE)) {
            Ok(Some(rx)) => {
                let now = Instant::now();
                let imp = *imp.lock().unwrap_or_else(|e| e.into_inner());
                stage.admit(&buf[..rx.len.min(buf.len())], rx.len, rx.csum_partial, &imp, now);
            }
            Ok(None) => {}
            Err(_) => {
                Counters::bump(&stage.counters.recv_errors);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    stage.flush();
}

// ---------------------------------------------------------------------------
// The relay.

/// The relay between the guest's TAP and Linux in namespace B (see the
/// module documentation).
pub struct Relay {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// From the guest, to the guest.
    counters: [Arc<Counters>; 2],
    imp: Arc<Mutex<Impairment>>,
    a: String,
    tap: String,
    /// Dropped last: B goes after the threads have stopped.
    b: PlainNs,
}

fn ip_ok(argv: &[&str]) {
    let out = run_cmd(argv, Duration::from_secs(30));
    assert!(out.success(), "{}", out.describe());
}

/// Turns IPv6 off on `link` in namespace `ns` (no router or neighbour
/// solicitations through the relay).
fn disable_ipv6(ns: &str, link: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6");
    if let Err(e) = in_netns(ns, || std::fs::write(&path, "1")) {
        panic!("{ns}: write 1 to {path}: {e}");
    }
}

/// `ethtool -K link gro off gso off tso off` in `ns` where ethtool is
/// installed (it is not part of set-up: `gso_max_segs 1` is what keeps
/// super-frames away; this only helps).
fn offloads_off(ns: &str, link: &str) {
    let _ = run_cmd(&["ip", "netns", "exec", ns, "ethtool", "-K", link, "gro", "off", "gso", "off", "tso", "off"], Duration::from_secs(10));
}

impl Relay {
    /// Puts the relay between the guest and Linux in `a` (see the module
    /// documentation) with `imp`. Panics, naming the failing command, if
    /// the plumbing cannot be set up; what was set up is undone.
    pub fn start(a: &Netns, imp: Impairment) -> Relay {
        let mac = crate::frames::format_mac(a.tap_mac());
        let b = PlainNs::create();
        let mut relay = Relay {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            counters: [Arc::default(), Arc::default()],
            imp: Arc::new(Mutex::new(imp)),
            a: a.name().to_string(),
            tap: a.tap().to_string(),
            b,
        };
        let (an, bn) = (relay.a.clone(), relay.b.name().to_string());
        ip_ok(&["ip", "-n", &an, "link", "add", RELAY_LINK, "type", "veth", "peer", "name", HOST_LINK, "netns", &bn]);
        disable_ipv6(&an, RELAY_LINK);
        disable_ipv6(&an, &relay.tap);
        disable_ipv6(&bn, HOST_LINK);
        for (ns, link) in [(&an, RELAY_LINK), (&bn, HOST_LINK)] {
            offloads_off(ns, link);
            ip_ok(&["ip", "-n", ns, "link", "set", link, "gso_max_segs", "1"]);
        }
        offloads_off(&an, &relay.tap);
        relay.b.ip(&["link", "set", HOST_LINK, "address", &mac]);
        relay.b.ip(&["addr", "add", &format!("{HOST_IP}/{TAP_PREFIX}"), "dev", HOST_LINK]);
        relay.b.ip(&["link", "set", HOST_LINK, "up"]);
        ip_ok(&["ip", "-n", &an, "link", "set", RELAY_LINK, "promisc", "on", "up"]);
        ip_ok(&["ip", "-n", &an, "addr", "del", &format!("{HOST_IP}/{TAP_PREFIX}"), "dev", &relay.tap]);

        let tap = relay.tap.clone();
        let (guest_side, host_side) = in_netns(&an, || -> Result<(RawSocket, RawSocket), String> {
            let open = |name: &str| -> Result<RawSocket, String> {
                let s = RawSocket::open(name)?;
                s.tune_for_capture();
                s.enable_auxdata().map_err(|e| format!("PACKET_AUXDATA on {name}: {e}"))?;
                Ok(s)
            };
            Ok((open(&tap)?, open(RELAY_LINK)?))
        })
        .unwrap_or_else(|e| panic!("relay sockets in {an}: {e}"));
        let (guest_side, host_side) = (Arc::new(guest_side), Arc::new(host_side));
        for dir in 0..2 {
            let (from, to) =
                if dir == 0 { (guest_side.clone(), host_side.clone()) } else { (host_side.clone(), guest_side.clone()) };
            let stage = Stage::new(QUEUE_FRAMES, imp.seed ^ (dir as u64 + 1), relay.counters[dir].clone());
            let (imp, stop) = (relay.imp.clone(), relay.stop.clone());
            relay.threads.push(std::thread::spawn(move || relay_loop(&from, &to, stage, &imp, &stop)));
        }
        relay
    }

    /// Replaces the impairment (frames already held keep their times).
    pub fn set(&self, imp: Impairment) {
        *self.imp.lock().unwrap_or_else(|e| e.into_inner()) = imp;
    }

    /// Namespace B, where Linux's `10.0.0.1` now is.
    pub fn ns_b(&self) -> &PlainNs {
        &self.b
    }

    /// [`PlainNs::in_ns`] of namespace B.
    pub fn in_ns_b<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        self.b.in_ns(f)
    }

    /// The counters of each direction: from the guest, to the guest.
    pub fn stats(&self) -> [Stats; 2] {
        [self.counters[0].snapshot(), self.counters[1].snapshot()]
    }

    /// Both directions' counters summed.
    pub fn total(&self) -> Stats {
        let [a, b] = self.stats();
        a + b
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let quiet = |argv: &[&str]| {
            let out = run_cmd(argv, Duration::from_secs(30));
            if !out.success() {
                eprintln!("impair: {}", out.describe());
            }
        };
        quiet(&["ip", "-n", &self.a, "link", "del", RELAY_LINK]);
        quiet(&["ip", "-n", &self.a, "addr", "add", &format!("{HOST_IP}/{TAP_PREFIX}"), "dev", &self.tap]);
        // Then `b` drops: namespace B is deleted.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn hold_queue_orders_by_release_time_and_is_bounded() {
        let now = t0();
        let ms = Duration::from_millis;
        let mut q = HoldQueue::new(3);
        assert!(q.push(now + ms(20), vec![1]));
        assert!(q.push(now + ms(25), vec![2]));
        assert!(q.push(now + ms(20), vec![3]));
        assert!(!q.push(now, vec![4]), "a full queue takes nothing more");
        assert_eq!(q.len(), 3);
        assert_eq!(q.next_due(), Some(now + ms(20)));
        assert_eq!(q.pop_due(now + ms(19)), None);
        assert_eq!(q.pop_due(now + ms(20)), Some(vec![1]), "equal times leave in arrival order");
        assert_eq!(q.pop_due(now + ms(20)), Some(vec![3]));
        assert_eq!(q.pop_due(now + ms(24)), None);
        assert_eq!(q.pop_due(now + ms(30)), Some(vec![2]));
        assert!(q.is_empty() && q.next_due().is_none());
    }

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let ep = frames::Endpoints {
            host_mac: [2, 0, 0, 0, 0, 1],
            guest_mac: [2, 0, 0, 0, 0, 2],
            host_ip: HOST_IP,
            guest_ip: crate::net::GUEST_IP,
        };
        ep.tcp(40000, 7, 1, 1, frames::TCP_ACK, 65535, payload)
    }

    #[test]
    fn stage_delays_reorders_and_counts() {
        let now = t0();
        let ms = Duration::from_millis;
        let c = Arc::new(Counters::default());
        let mut st = Stage::new(4, 1, c.clone());
        let imp = Impairment { delay: ms(20), reorder_permille: 1000, reorder_extra: ms(5), ..Default::default() };
        st.admit(&tcp_frame(b"a"), tcp_frame(b"a").len(), false, &imp, now);
        // An ARP-sized non-TCP frame: delayed only.
        let arp = frames::eth([0xff; 6], [2, 0, 0, 0, 0, 1], frames::ETHERTYPE_ARP, &[0u8; 28]);
        st.admit(&arp, arp.len(), false, &imp, now + ms(1));
        let mut sent = Vec::new();
        st.release(now + ms(21), |f| {
            sent.push(f.to_vec());
            Ok(())
        });
        assert_eq!(sent, vec![arp.clone()], "the non-TCP frame overtook the reordered one");
        assert_eq!(st.wait(now + ms(21), ms(10)), ms(4));
        st.release(now + ms(25), |f| {
            sent.push(f.to_vec());
            Ok(())
        });
        assert_eq!(sent.len(), 2);
        let s = c.snapshot();
        assert_eq!((s.received, s.forwarded, s.delayed, s.reordered), (2, 2, 2, 1));

        // Loss, duplication, overflow, oversize, send errors, flush.
        let all = Impairment { loss_permille: 1000, ..imp };
        st.admit(&tcp_frame(b"b"), tcp_frame(b"b").len(), false, &all, now);
        let dup = Impairment { dup_permille: 1000, reorder_permille: 0, ..imp };
        for _ in 0..3 {
            st.admit(&tcp_frame(b"c"), tcp_frame(b"c").len(), false, &dup, now);
        }
        st.admit(&[0u8; 64], 9000, false, &imp, now);
        st.release(now + ms(20), |_| Err(io::Error::other("full")));
        st.admit(&tcp_frame(b"d"), tcp_frame(b"d").len(), false, &imp, now);
        st.flush();
        let s = c.snapshot();
        assert_eq!(s.dropped, 1);
        assert_eq!(s.duplicated, 3);
        assert_eq!(s.overflow, 2, "3 duplicated frames are 6 copies for 4 places");
        assert_eq!(s.oversize, 1);
        assert_eq!(s.send_errors, 4);
        assert_eq!(s.flushed, 1);
        assert_eq!(s.received, 8);
        assert!(s.to_string().starts_with("received 8 forwarded 2 delayed"), "{s}");
        assert_eq!((s - s, (s + s - s).dropped), (Stats::default(), 1));
    }

    #[test]
    fn checksum_fix_fills_in_offloaded_checksums() {
        // TCP: the field holds the pseudo-header sum, as offload leaves it.
        let good = tcp_frame(b"hello, world");
        let mut partial = good.clone();
        let l4 = 14 + 20;
        partial[l4 + 16..l4 + 18].copy_from_slice(&[0x12, 0x34]);
        let counters = Arc::new(Counters::default());
        let mut st = Stage::new(4, 1, counters.clone());
        st.admit(&partial, partial.len(), true, &Impairment::default(), t0());
        let mut out = Vec::new();
        st.release(t0() + Duration::from_secs(1), |f| {
            out.push(f.to_vec());
            Ok(())
        });
        assert_eq!(out, vec![good]);
        assert_eq!(counters.snapshot().csum_fixed, 1);

        // UDP, including the zero-means-none rule.
        let udp = frames::udp(HOST_IP, crate::net::GUEST_IP, 5000, 7, b"abc");
        let mut f = frames::eth([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], ETHERTYPE_IPV4, &frames::ipv4(HOST_IP, crate::net::GUEST_IP, PROTO_UDP, 1, &udp));
        let want = f.clone();
        f[14 + 20 + 6..14 + 20 + 8].fill(0);
        fix_checksum(&mut f).unwrap();
        assert_eq!(f, want);

        // Bad frames are refused, not panicked on, and counted.
        let mut arp = frames::eth([0xff; 6], [2, 0, 0, 0, 0, 1], frames::ETHERTYPE_ARP, &[0u8; 28]);
        assert!(fix_checksum(&mut arp).is_err());
        let mut cut = tcp_frame(b"x");
        cut.truncate(40);
        assert!(fix_checksum(&mut cut).is_err());
        for n in 0..cut.len() {
            let _ = fix_checksum(&mut cut[..n].to_vec());
        }
        st.admit(&cut, cut.len(), true, &Impairment::default(), t0());
        assert_eq!(counters.snapshot().csum_bad, 1);
    }

    #[test]
    fn fate_follows_the_impairment() {
        let mut rng = SplitMix64::new(9);
        let imp = Impairment {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(2),
            loss_permille: 100,
            reorder_permille: 50,
            reorder_extra: Duration::from_millis(5),
            ..Default::default()
        };
        let fates: Vec<Fate> = (0..10_000).map(|_| imp.fate(true, &mut rng)).collect();
        let lost = fates.iter().filter(|f| f.lost).count();
        let reordered = fates.iter().filter(|f| f.reordered).count();
        assert!((800..1200).contains(&lost), "{lost}");
        assert!((350..650).contains(&reordered), "{reordered}");
        assert!(fates.iter().all(|f| f.copies == 1));
        assert!(fates.iter().all(|f| f.hold >= imp.delay && f.hold <= imp.delay + imp.jitter + imp.reorder_extra));
        assert!((0..1000).all(|_| !imp.fate(false, &mut rng).lost), "only TCP is lost");
    }
}
