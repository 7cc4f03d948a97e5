//! A listener's two queues, as illumos keeps them (`tcp_input_listener`,
//! `tcp_drop_q0` and `tcp_send_conn_ind` in `tcp/tcp_input.c`, the
//! SYN_RCVD arm of `tcp_timer` in `tcp/tcp_timers.c`, `tcp_accept` /
//! `tcp_get_def_conn_ind` in `tcp/tcp_tpi.c`), generic over the eager
//! (whatever the caller keeps per half-open connection):
//!
//! * **q0**: eagers whose handshake is not complete (SYN_RCVD). It holds
//!   at most `backlog + max_q0` (illumos compares `tcp_conn_req_cnt_q0`
//!   with `tcp_conn_req_max + tcps_conn_req_max_q0`), `max_q0` being
//!   `_conn_req_max_q0` (default 1024).
//! * **q**: connections whose handshake completed, waiting for `accept()`,
//!   at most the backlog: `listen()`'s argument clamped to
//!   1..=`_conn_req_max_q` (default 128) ([`listen_backlog`]).
//!
//! A SYN ([`ListenQueue::on_syn`]): a tuple already queued is a
//! retransmission, answered by its eager ([`SynDecision::Duplicate`]),
//! never a second eager. With q full the SYN is dropped (`tcpListenDrop`).
//! With q0 full, illumos' `tcp_drop_q0` picks a victim: the eager that
//! became *droppable* first. An eager becomes droppable at its first
//! SYN-ACK retransmission timeout ([`ListenQueue::synack_timeout`]), so
//! no SYN is dropped before its first timeout has given it a chance, and
//! those that have waited longest without answering go first; the victim
//! is removed (`tcpHalfOpenDrop`) and the new SYN admitted. With no
//! droppable eager illumos drops the SYN (`tcpListenDropQ0`); we answer it
//! with a SYN cookie instead when [`ListenConfig::syn_cookies`] is on
//! ([`SynDecision::SynCookie`], see [`super::syncookie`]), so a flood of
//! fresh spoofed SYNs cannot lock real clients out. Either way
//! `tcp_listendropq0` counts that q0 was full.
//!
//! SYN defense, as illumos: the listener counts its eagers that have
//! timed out at least once; when that exceeds `max_q0 / 4` (and `max_q0`
//! is over 200) the defense turns on and remote addresses that complete a
//! handshake are remembered (a 2048-entry cache indexed by the address's
//! low 11 bits). A new eager from a remembered address is *dontdrop*: it
//! becomes droppable only at its second timeout. The defense ends when a
//! handshake completes with at most `max_q0 / 32` timed-out eagers left
//! and q0 has not been full for 10 minutes.
//!
//! A completed handshake ([`ListenQueue::established`]) moves the eager to
//! q; if q is full it stays in q0, *deferred* (never dropped), and moves
//! to q, in completion order, as `accept()` makes room. Connections made
//! from a SYN cookie go straight to q ([`ListenQueue::push_established`]),
//! or are dropped (`tcpListenDrop`) when q is full.
//!
//! Plain data: the caller runs the timers and passes its clock (ms).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::net::IpAddr;

use super::tuple::FourTuple;

/// `_conn_req_max_q` default: the largest backlog.
pub const TCP_CONN_REQ_MAX_Q: usize = 128;
/// `_conn_req_max_q0` default.
pub const TCP_CONN_REQ_MAX_Q0: usize = 1024;
/// `tcp_conn_req_min`: the smallest backlog.
pub const TCP_CONN_REQ_MIN: usize = 1;
/// illumos `IP_ADDR_CACHE_SIZE`: the SYN defense's cache of good sources.
pub const IP_ADDR_CACHE_SIZE: usize = 2048;
/// How long q0 must not have been full before the SYN defense may end.
pub const SYN_DEFENSE_QUIET_MS: u64 = 10 * 60_000;

/// `listen(backlog)` as illumos takes it: clamped to
/// `TCP_CONN_REQ_MIN..=max_q` (`max_q` being `_conn_req_max_q`).
pub fn listen_backlog(requested: i64, max_q: usize) -> usize {
    let hi = max_q.max(TCP_CONN_REQ_MIN);
    usize::try_from(requested).unwrap_or(0).clamp(TCP_CONN_REQ_MIN, hi)
}

/// A listener's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    /// The backlog (`tcp_conn_req_max`): most connections in q.
    pub backlog: usize,
    /// `_conn_req_max_q0`: q0 holds at most `backlog + max_q0`.
    pub max_q0: usize,
    /// Answer with a SYN cookie when q0 is full and nothing is droppable
    /// (illumos drops the SYN).
    pub syn_cookies: bool,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig { backlog: TCP_CONN_REQ_MAX_Q, max_q0: TCP_CONN_REQ_MAX_Q0, syn_cookies: true }
    }
}

impl ListenConfig {
    /// The limits for `listen(requested)` under `_conn_req_max_q` =
    /// `max_q` and `_conn_req_max_q0` = `max_q0`.
    pub fn new(requested: i64, max_q: usize, max_q0: usize, syn_cookies: bool) -> Self {
        ListenConfig { backlog: listen_backlog(requested, max_q), max_q0, syn_cookies }
    }

    /// Most eagers q0 holds.
    pub fn q0_limit(&self) -> usize {
        self.backlog.saturating_add(self.max_q0)
    }
}

/// Names an eager for as long as it is on this listener (illumos
/// `tcp_conn_req_seqnum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EagerId(u64);

impl EagerId {
    /// Its number.
    pub fn raw(self) -> u64 {
        self.0
    }
}

/// Why a SYN was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenDrop {
    /// q (the backlog) is full: `tcpListenDrop`.
    QFull,
    /// q0 is full and nothing may be dropped, cookies off:
    /// `tcpListenDropQ0`.
    Q0Full,
}

/// What to do with a SYN.
#[derive(Debug, PartialEq, Eq)]
pub enum SynDecision<E> {
    /// Make an eager and [`ListenQueue::add_eager`] it.
    Admit,
    /// Room was made by dropping this half-open eager (`tcpHalfOpenDrop`;
    /// the caller tears it down, illumos `tcp_clean_death` with
    /// ETIMEDOUT); then as `Admit`.
    AdmitAfterDrop {
        /// The dropped eager's id.
        id: EagerId,
        /// Its tuple.
        key: FourTuple,
        /// The eager itself.
        eager: E,
    },
    /// This tuple already has an eager: the SYN is its peer's
    /// retransmission (or a new SYN on a live connection) and goes to it.
    Duplicate {
        /// The eager.
        id: EagerId,
        /// It has completed its handshake (in q, or deferred in q0).
        established: bool,
    },
    /// q0 is full and nothing is droppable: answer with a SYN cookie and
    /// keep nothing.
    SynCookie,
    /// Drop the SYN, counted as said.
    Drop(ListenDrop),
}

/// Where a completed handshake went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Established {
    /// Into q, ready for `accept()`.
    Queued,
    /// q is full: kept in q0 (deferred, never dropped) until `accept()`
    /// makes room.
    Deferred,
}

/// What a SYN-ACK timeout changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynAckTimeout {
    /// Timeouts this eager has had.
    pub timeouts: u32,
    /// It may now be dropped to make room.
    pub droppable: bool,
    /// This timeout turned the listener's SYN defense on (illumos warns
    /// "may be under a SYN flood attack").
    pub defense_started: bool,
}

/// Why [`ListenQueue::push_established_with`] queued nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieRefused {
    /// The tuple is already queued (uncounted).
    Queued,
    /// q is full (`tcpListenDrop`).
    QFull,
    /// The caller's `make` declined.
    Declined,
}

/// An eager's standing on the listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EagerInfo {
    /// Its tuple.
    pub key: FourTuple,
    /// SYN-ACK timeouts so far (0 once established).
    pub timeouts: u32,
    /// Made during the SYN defense from a remembered address.
    pub dontdrop: bool,
    /// On the droppable list.
    pub droppable: bool,
    /// Handshake complete (in q, or deferred in q0).
    pub established: bool,
    /// Handshake complete but waiting in q0 for room in q.
    pub deferred: bool,
}

/// A connection taken by `accept()`.
#[derive(Debug, PartialEq, Eq)]
pub struct Accepted<E> {
    /// Its id on this listener (no longer valid).
    pub id: EagerId,
    /// Its tuple.
    pub key: FourTuple,
    /// The eager.
    pub eager: E,
}

/// Counters: MIB ones under their illumos names, then illumos' `tcp_stat`
/// kstat style for the rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenStats {
    /// `tcpListenDrop`: SYNs (and cookie ACKs) dropped because q was full.
    pub listen_drop: u64,
    /// `tcpListenDropQ0`: SYNs dropped because q0 was full.
    pub listen_drop_q0: u64,
    /// `tcpHalfOpenDrop`: half-open eagers dropped to make room.
    pub half_open_drop: u64,
    /// `tcp_listendropq0` (illumos kstat): SYNs that found q0 full.
    pub q0_full: u64,
    /// `tcp_listen_syncookie` (ours): SYNs answered with a cookie.
    pub syn_cookie: u64,
}

impl ListenStats {
    /// (name, value) for each counter.
    pub fn fields(&self) -> [(&'static str, u64); 5] {
        [
            ("tcpListenDrop", self.listen_drop),
            ("tcpListenDropQ0", self.listen_drop_q0),
            ("tcpHalfOpenDrop", self.half_open_drop),
            ("tcp_listendropq0", self.q0_full),
            ("tcp_listen_syncookie", self.syn_cookie),
        ]
    }
}

struct Half<E> {
    key: FourTuple,
    eager: E,
    timeouts: u32,
    dontdrop: bool,
    /// Its place on the droppable list, when it is on it.
    drop_stamp: Option<u64>,
    deferred: bool,
}

struct Done<E> {
    id: u64,
    key: FourTuple,
    eager: E,
}

/// One listener's q0 and q.
pub struct ListenQueue<E> {
    cfg: ListenConfig,
    /// q0 by id: ids grow, so this is oldest first.
    q0: BTreeMap<u64, Half<E>>,
    /// The droppable eagers (a subset of q0), by the order they became
    /// droppable: the first is `tcp_drop_q0`'s victim.
    droppable: BTreeMap<u64, u64>,
    /// Deferred ids (completed while q was full), in completion order.
    deferred: VecDeque<u64>,
    q: VecDeque<Done<E>>,
    by_key: BTreeMap<FourTuple, u64>,
    next_id: u64,
    next_stamp: u64,
    /// Eagers in q0 that have timed out at least once
    /// (listener `tcp_syn_rcvd_timeout`).
    timed_out: usize,
    defense: bool,
    addr_cache: Option<Vec<Option<IpAddr>>>,
    /// When q0 was last found full (listener `tcp_last_rcv_lbolt`).
    last_q0_full_ms: Option<u64>,
    stats: ListenStats,
}

fn cache_slot(addr: &IpAddr) -> usize {
    let low = match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let [.., b12, b13, b14, b15] = a.octets();
            u32::from_be_bytes([b12, b13, b14, b15])
        }
    };
    (low as usize) & (IP_ADDR_CACHE_SIZE - 1)
}

impl<E> ListenQueue<E> {
    /// Empty queues with these limits.
    pub fn new(cfg: ListenConfig) -> Self {
        ListenQueue {
            cfg,
            q0: BTreeMap::new(),
            droppable: BTreeMap::new(),
            deferred: VecDeque::new(),
            q: VecDeque::new(),
            by_key: BTreeMap::new(),
            next_id: 0,
            next_stamp: 0,
            timed_out: 0,
            defense: false,
            addr_cache: None,
            last_q0_full_ms: None,
            stats: ListenStats::default(),
        }
    }

    /// The limits.
    pub fn config(&self) -> &ListenConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &ListenStats {
        &self.stats
    }

    /// Eagers in q0 (deferred ones included, as illumos counts them).
    pub fn q0_len(&self) -> usize {
        self.q0.len()
    }

    /// Connections in q.
    pub fn q_len(&self) -> usize {
        self.q.len()
    }

    /// Eagers that may be dropped to make room.
    pub fn droppable_len(&self) -> usize {
        self.droppable.len()
    }

    /// Eagers in q0 that have timed out at least once.
    pub fn timed_out(&self) -> usize {
        self.timed_out
    }

    /// The SYN defense is on.
    pub fn syn_defense(&self) -> bool {
        self.defense
    }

    /// The eager queued for `key`, if any (q0 or q).
    pub fn find(&self, key: &FourTuple) -> Option<EagerId> {
        self.by_key.get(key).map(|&id| EagerId(id))
    }

    /// The eager `id`.
    pub fn get(&self, id: EagerId) -> Option<&E> {
        match self.q0.get(&id.0) {
            Some(h) => Some(&h.eager),
            None => self.q.iter().find(|d| d.id == id.0).map(|d| &d.eager),
        }
    }

    /// The eager `id`, to change.
    pub fn get_mut(&mut self, id: EagerId) -> Option<&mut E> {
        match self.q0.get_mut(&id.0) {
            Some(h) => Some(&mut h.eager),
            None => self.q.iter_mut().find(|d| d.id == id.0).map(|d| &mut d.eager),
        }
    }

    /// Where `id` stands.
    pub fn info(&self, id: EagerId) -> Option<EagerInfo> {
        if let Some(h) = self.q0.get(&id.0) {
            return Some(EagerInfo {
                key: h.key,
                timeouts: h.timeouts,
                dontdrop: h.dontdrop,
                droppable: h.drop_stamp.is_some(),
                established: h.deferred,
                deferred: h.deferred,
            });
        }
        self.q.iter().find(|d| d.id == id.0).map(|d| EagerInfo {
            key: d.key,
            timeouts: 0,
            dontdrop: false,
            droppable: false,
            established: true,
            deferred: false,
        })
    }

    /// `listen()` again with a new backlog (illumos allows it): clamped to
    /// 1..=`max_q`. Deferred connections move to q if it now has room.
    pub fn set_backlog(&mut self, requested: i64, max_q: usize) {
        self.cfg.backlog = listen_backlog(requested, max_q);
        self.promote_deferred();
    }

    fn make_droppable(&mut self, id: u64) {
        if let Some(h) = self.q0.get_mut(&id)
            && h.drop_stamp.is_none()
        {
            let stamp = self.next_stamp;
            self.next_stamp += 1;
            h.drop_stamp = Some(stamp);
            self.droppable.insert(stamp, id);
        }
    }

    fn make_undroppable(&mut self, id: u64) {
        if let Some(h) = self.q0.get_mut(&id)
            && let Some(stamp) = h.drop_stamp.take()
        {
            self.droppable.remove(&stamp);
        }
    }

    /// Takes `id` out of q0, with everything that refers to it.
    fn unlink_q0(&mut self, id: u64) -> Option<Half<E>> {
        self.make_undroppable(id);
        let h = self.q0.remove(&id)?;
        if h.timeouts != 0 {
            self.timed_out = self.timed_out.saturating_sub(1);
        }
        if h.deferred {
            self.deferred.retain(|&d| d != id);
        }
        self.by_key.remove(&h.key);
        Some(h)
    }

    /// `tcp_drop_q0`: removes the eager that became droppable first.
    fn drop_q0(&mut self) -> Option<(u64, Half<E>)> {
        let (&_stamp, &id) = self.droppable.iter().next()?;
        let h = self.unlink_q0(id)?;
        self.stats.half_open_drop += 1;
        Some((id, h))
    }

    /// Decides what to do with a SYN for `key` arriving at `now_ms`.
    pub fn on_syn(&mut self, key: &FourTuple, now_ms: u64) -> SynDecision<E> {
        if let Some(&id) = self.by_key.get(key) {
            let established = self.q0.get(&id).is_none_or(|h| h.deferred);
            return SynDecision::Duplicate { id: EagerId(id), established };
        }
        if self.q.len() >= self.cfg.backlog {
            self.stats.listen_drop += 1;
            return SynDecision::Drop(ListenDrop::QFull);
        }
        if self.q0.len() >= self.cfg.q0_limit() {
            self.stats.q0_full += 1;
            self.last_q0_full_ms = Some(now_ms);
            if let Some((id, h)) = self.drop_q0() {
                return SynDecision::AdmitAfterDrop { id: EagerId(id), key: h.key, eager: h.eager };
            }
            if self.cfg.syn_cookies {
                self.stats.syn_cookie += 1;
                return SynDecision::SynCookie;
            }
            self.stats.listen_drop_q0 += 1;
            return SynDecision::Drop(ListenDrop::Q0Full);
        }
        SynDecision::Admit
    }

    /// Puts a new eager for `key` on q0 (after [`SynDecision::Admit`] or
    /// [`SynDecision::AdmitAfterDrop`]). Gives it back if `key` is already
    /// queued or q0 is full.
    pub fn add_eager(&mut self, key: FourTuple, eager: E) -> Result<EagerId, E> {
        if self.by_key.contains_key(&key) || self.q0.len() >= self.cfg.q0_limit() {
            return Err(eager);
        }
        let dontdrop = self
            .addr_cache
            .as_ref()
            .is_some_and(|c| c.get(cache_slot(&key.remote)).copied().flatten() == Some(key.remote));
        let id = self.next_id;
        self.next_id += 1;
        self.q0.insert(id, Half { key, eager, timeouts: 0, dontdrop, drop_stamp: None, deferred: false });
        self.by_key.insert(key, id);
        Ok(EagerId(id))
    }

    /// The SYN-ACK retransmission timer of half-open eager `id` fired
    /// (illumos `tcp_timer` in SYN_RCVD). `None` if `id` is not half-open.
    pub fn synack_timeout(&mut self, id: EagerId) -> Option<SynAckTimeout> {
        let h = self.q0.get_mut(&id.0).filter(|h| !h.deferred)?;
        h.timeouts = h.timeouts.saturating_add(1);
        let (timeouts, dontdrop) = (h.timeouts, h.dontdrop);
        let mut defense_started = false;
        if timeouts == 1 {
            self.timed_out += 1;
            if !dontdrop {
                self.make_droppable(id.0);
            }
            if !self.defense && self.timed_out > self.cfg.max_q0 / 4 && self.cfg.max_q0 > 200 {
                self.defense = true;
                self.addr_cache = Some(vec![None; IP_ADDR_CACHE_SIZE]);
                defense_started = true;
            }
        } else {
            // A second timeout makes even a dontdrop eager droppable: a
            // spoofer posing as a good source cannot hold its slot.
            self.make_droppable(id.0);
        }
        let droppable = self.q0.get(&id.0).is_some_and(|h| h.drop_stamp.is_some());
        Some(SynAckTimeout { timeouts, droppable, defense_started })
    }

    /// The handshake of half-open eager `id` completed at `now_ms`
    /// (illumos `tcp_send_conn_ind`). `None` if `id` is not in q0.
    pub fn established(&mut self, id: EagerId, now_ms: u64) -> Option<Established> {
        let h = self.q0.get(&id.0)?;
        if h.deferred {
            return Some(Established::Deferred);
        }
        let (timed, remote) = (h.timeouts != 0, h.key.remote);
        self.make_undroppable(id.0);
        if let Some(h) = self.q0.get_mut(&id.0) {
            h.timeouts = 0;
        }
        if timed {
            self.timed_out = self.timed_out.saturating_sub(1);
            let quiet = self.last_q0_full_ms.is_none_or(|t| now_ms.saturating_sub(t) > SYN_DEFENSE_QUIET_MS);
            if self.defense && self.timed_out <= self.cfg.max_q0 / 32 && quiet {
                self.defense = false;
                self.addr_cache = None;
            }
        }
        self.remember(remote);
        if self.q.len() < self.cfg.backlog {
            if let Some(h) = self.unlink_q0(id.0) {
                self.by_key.insert(h.key, id.0);
                self.q.push_back(Done { id: id.0, key: h.key, eager: h.eager });
            }
            Some(Established::Queued)
        } else {
            if let Some(h) = self.q0.get_mut(&id.0) {
                h.deferred = true;
            }
            self.deferred.push_back(id.0);
            Some(Established::Deferred)
        }
    }

    fn remember(&mut self, remote: IpAddr) {
        if let Some(slot) = self.addr_cache.as_mut().and_then(|c| c.get_mut(cache_slot(&remote))) {
            *slot = Some(remote);
        }
    }

    /// A connection whose handshake completed with no eager (a valid SYN
    /// cookie) goes straight to q; given back, counted `tcpListenDrop`,
    /// when q is full, or given back uncounted if `key` is already queued.
    pub fn push_established(&mut self, key: FourTuple, eager: E) -> Result<EagerId, E> {
        let mut e = Some(eager);
        match self.push_established_with(key, |_| e.take()) {
            Ok(id) => Ok(id),
            Err(_) => Err(e.take().expect("refused before the conn was made")),
        }
    }

    /// [`ListenQueue::push_established`], with the connection made by
    /// `make` (given its id) only once q has room for it, so a refused
    /// one is never built; `make` may still decline (`None`: nothing is
    /// queued, [`CookieRefused::Declined`]).
    pub fn push_established_with(
        &mut self,
        key: FourTuple,
        make: impl FnOnce(EagerId) -> Option<E>,
    ) -> Result<EagerId, CookieRefused> {
        if self.by_key.contains_key(&key) {
            return Err(CookieRefused::Queued);
        }
        if self.q.len() >= self.cfg.backlog {
            self.stats.listen_drop += 1;
            return Err(CookieRefused::QFull);
        }
        let id = self.next_id;
        let eager = make(EagerId(id)).ok_or(CookieRefused::Declined)?;
        self.remember(key.remote);
        self.next_id += 1;
        self.by_key.insert(key, id);
        self.q.push_back(Done { id, key, eager });
        Ok(EagerId(id))
    }

    /// Turns SYN cookies on or off (the `_syn_cookies` tunable now).
    pub fn set_syn_cookies(&mut self, on: bool) {
        self.cfg.syn_cookies = on;
    }

    /// Whether q0 was found full (so cookies may have gone out) within
    /// `window_ms` before `now_ms`: only then is an ACK that matches no
    /// eager taken as an answer to a cookie (as Linux's
    /// `tcp_synq_no_recent_overflow`), so stray ACKs to an unflooded
    /// listener are not counted as failed cookies.
    pub fn q0_full_within(&self, now_ms: u64, window_ms: u64) -> bool {
        self.last_q0_full_ms.is_some_and(|t| now_ms.saturating_sub(t) <= window_ms)
    }

    fn promote_deferred(&mut self) {
        while self.q.len() < self.cfg.backlog {
            let Some(id) = self.deferred.pop_front() else { break };
            if let Some(h) = self.unlink_q0(id) {
                self.by_key.insert(h.key, id);
                self.q.push_back(Done { id, key: h.key, eager: h.eager });
            }
        }
    }

    /// `accept()`: the oldest completed connection; a deferred one then
    /// takes the freed place in q.
    pub fn accept(&mut self) -> Option<Accepted<E>> {
        let d = self.q.pop_front()?;
        self.by_key.remove(&d.key);
        self.promote_deferred();
        Some(Accepted { id: EagerId(d.id), key: d.key, eager: d.eager })
    }

    /// Takes eager `id` off the listener (it was reset, or gave up:
    /// illumos `tcp_eager_unlink`).
    pub fn remove(&mut self, id: EagerId) -> Option<E> {
        if let Some(h) = self.unlink_q0(id.0) {
            return Some(h.eager);
        }
        let at = self.q.iter().position(|d| d.id == id.0)?;
        let d = self.q.remove(at)?;
        self.by_key.remove(&d.key);
        self.promote_deferred();
        Some(d.eager)
    }

    /// The listener closes (illumos `tcp_eager_cleanup`): every eager, q's
    /// first, then q0's oldest first, for the caller to reset.
    pub fn close(&mut self) -> Vec<Accepted<E>> {
        let mut out: Vec<Accepted<E>> =
            self.q.drain(..).map(|d| Accepted { id: EagerId(d.id), key: d.key, eager: d.eager }).collect();
        let q0 = core::mem::take(&mut self.q0);
        out.extend(q0.into_iter().map(|(id, h)| Accepted { id: EagerId(id), key: h.key, eager: h.eager }));
        self.droppable.clear();
        self.deferred.clear();
        self.by_key.clear();
        self.timed_out = 0;
        out
    }
}
