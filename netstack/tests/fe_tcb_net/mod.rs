//! The harness of the FireEngine TCB tests (`fe_tcb*.rs`): two TCBs, A
//! (the client, `Tcb::connect`) and B (the server, `Tcb::accept` on A's
//! SYN), joined by a fake link with a fake clock in µs. Every `SegOut` is
//! written to bytes with the real wire code (`TcpHeader::emit`, checksum
//! included) and parsed back (`TcpHeader::parse`) into the other side's
//! `SegIn`. The link can drop (the Nth segment, by predicate, at random
//! with a seeded PRNG), rewrite, duplicate, delay and reorder segments,
//! and model a bottleneck (a rate and a drop-tail queue). The clock
//! advances to the next arrival or the earliest `next_deadline()`.
//! After every call into a TCB the harness checks its invariants.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use arbalest_netstack::fireengine::ip::mib::TcpMib;
use arbalest_netstack::fireengine::tcp::challenge::ChallengeLimiter;
use arbalest_netstack::fireengine::tcp::config::TcbConfig;
use arbalest_netstack::fireengine::tcp::segment::{reset_for, SegIn, SegOut};
use arbalest_netstack::fireengine::tcp::seq::SeqNum;
use arbalest_netstack::fireengine::tcp::state::State;
use arbalest_netstack::fireengine::tcp::tcb::{Events, Tcb, TcpCtx};
use arbalest_netstack::fireengine::wire::tcp::{TcpFlags, TcpHeader, TcpOptions, Timestamps};

use crate::rng::Rng;

/// The client.
pub const A: usize = 0;
/// The server.
pub const B: usize = 1;
pub const IPS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
pub const PORTS: [u16; 2] = [40_000, 80];
pub const ISS: [u32; 2] = [0x1000_0000, 0xffff_f000];
pub const TS_OFF: [u32; 2] = [0xffff_0000, 77];

/// A segment on the link.
pub struct Pkt {
    pub at_us: u64,
    pub order: u64,
    pub to: usize,
    pub bytes: Vec<u8>,
}

/// A segment a side sent, as the log keeps it.
#[derive(Clone, Debug)]
pub struct Rec {
    pub t_us: u64,
    pub from: usize,
    pub seg: SegOut,
    pub dropped: bool,
}

/// What an application does on a side.
#[derive(Default)]
pub struct App {
    /// Bytes to send, and how many went into the TCB.
    pub out: Vec<u8>,
    pub out_off: usize,
    /// shutdown_write once everything is queued.
    pub shutdown_when_done: bool,
    /// close() once everything is queued (instead).
    pub close_when_done: bool,
    pub shut: bool,
    /// What was read.
    pub got: Vec<u8>,
    /// Whether it reads (with recv_vec) at all.
    pub reading: bool,
    /// Read through take_received (the socket layer) instead; `consume`
    /// says whether the reader consumed it.
    pub socket_layer: bool,
    pub consume: bool,
    pub unconsumed: usize,
    pub events: Events,
    pub all_events: Vec<Events>,
}

pub type Filter = Box<dyn FnMut(usize, &SegOut, u64) -> bool>;
pub type Mangle = Box<dyn FnMut(usize, &mut SegOut)>;

pub struct Net {
    pub now_us: u64,
    pub tcb: [Option<Tcb>; 2],
    pub mib: [TcpMib; 2],
    pub chal: [ChallengeLimiter; 2],
    pub q: Vec<Pkt>,
    pub order: u64,
    /// One-way delay.
    pub delay_us: u64,
    /// Random extra delay, up to this (reordering).
    pub jitter_us: u64,
    /// Random loss and duplication, per million segments.
    pub loss_ppm: u32,
    pub dup_ppm: u32,
    pub rng: Rng,
    /// Returns true to drop (side, segment, index of the segment among
    /// those the side sent, from 0).
    pub filter: Option<Filter>,
    /// Rewrites a segment before it goes on the wire.
    pub mangle: Option<Mangle>,
    pub sent: [u64; 2],
    pub log: Vec<Rec>,
    pub keep_log: bool,
    pub app: [App; 2],
    /// A bottleneck: bits per second, and the longest queue (µs).
    pub rate_bps: Option<u64>,
    pub queue_us: u64,
    pub link_free_us: [u64; 2],
    /// A listener on B: the conn's configuration.
    pub listen: Option<TcbConfig>,
    /// Answer segments for no conn with RST (as the instance does).
    pub rst_closed: bool,
    /// The right edge each side last advertised (for the no-shrink check).
    pub adv_edge: [Option<SeqNum>; 2],
    pub check_edges: bool,
    pub steps: u64,
    /// RSTs the "instance" sent for segments to no conn (not the TCB's).
    pub instance_rsts: [u64; 2],
    /// Cut large segments (`lso_mss`) into MSS pieces on the wire, as a
    /// NIC with TSO does; else they arrive whole (a receiver with LRO).
    pub tso_cut: bool,
}

pub fn cfg() -> TcbConfig {
    TcbConfig::default()
}

impl Net {
    pub fn new(seed: u64) -> Net {
        Net {
            now_us: 1_000_000,
            tcb: [None, None],
            mib: [TcpMib::new(), TcpMib::new()],
            chal: [ChallengeLimiter::new(1_000_000), ChallengeLimiter::new(1_000_000)],
            q: Vec::new(),
            order: 0,
            delay_us: 10_000,
            jitter_us: 0,
            loss_ppm: 0,
            dup_ppm: 0,
            rng: Rng(seed.max(1)),
            filter: None,
            mangle: None,
            sent: [0, 0],
            log: Vec::new(),
            keep_log: true,
            app: [App { reading: true, ..App::default() }, App { reading: true, ..App::default() }],
            rate_bps: None,
            queue_us: 0,
            link_free_us: [0, 0],
            listen: None,
            rst_closed: true,
            adv_edge: [None, None],
            check_edges: true,
            steps: 0,
            instance_rsts: [0, 0],
            tso_cut: false,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }

    pub fn t(&self, i: usize) -> &Tcb {
        self.tcb[i].as_ref().expect("no tcb")
    }

    pub fn state(&self, i: usize) -> State {
        self.tcb[i].as_ref().map_or(State::Closed, |t| t.state())
    }

    pub fn mib(&self, i: usize, name: &str) -> u64 {
        self.mib[i].get(name).unwrap_or_else(|| panic!("no counter {name}"))
    }

    /// Calls into side `i`'s TCB with a fresh context, then sends what it
    /// emitted and checks the invariants.
    pub fn call<R>(&mut self, i: usize, f: impl FnOnce(&mut Tcb, &mut TcpCtx<'_>) -> R) -> R {
        let mut out = Vec::new();
        let r = {
            let mut ctx = TcpCtx { now_us: self.now_us, out: &mut out, mib: &self.mib[i], challenge: &self.chal[i] };
            f(self.tcb[i].as_mut().expect("no tcb"), &mut ctx)
        };
        let ev = self.tcb[i].as_mut().expect("no tcb").take_events();
        merge(&mut self.app[i].events, ev);
        if ev != Events::default() {
            self.app[i].all_events.push(ev);
        }
        check_invariants(self.t(i));
        self.transmit(i, out);
        r
    }

    /// Opens A towards B's listener with these configurations; the SYN
    /// goes on the link.
    pub fn connect(&mut self, ca: TcbConfig, cb: TcbConfig) {
        self.listen = Some(cb);
        let mut out = Vec::new();
        let t = {
            let mut ctx = TcpCtx { now_us: self.now_us, out: &mut out, mib: &self.mib[A], challenge: &self.chal[A] };
            Tcb::connect(ca, SeqNum(ISS[A]), TS_OFF[A], &mut ctx)
        };
        self.tcb[A] = Some(t);
        self.transmit(A, out);
    }

    /// Both sides ESTABLISHED (panics otherwise).
    pub fn establish(&mut self, ca: TcbConfig, cb: TcbConfig) {
        self.connect(ca, cb);
        assert!(self.run_until(|n| n.state(A) == State::Established && n.state(B) == State::Established, 10_000_000));
    }

    /// The wire bytes of a segment from side `from`.
    pub fn wire(from: usize, seg: &SegOut) -> Vec<u8> {
        let h = seg.header(PORTS[from], PORTS[1 - from]);
        let hl = h.header_len();
        let mut buf = vec![0u8; hl + seg.data.len()];
        buf[hl..].copy_from_slice(&seg.data);
        h.emit(&mut buf, IPS[from], IPS[1 - from]).expect("emit");
        buf
    }

    fn check_edge(&mut self, from: usize, seg: &SegOut) {
        if !self.check_edges || seg.has(TcpFlags::RST) || !seg.has(TcpFlags::ACK) || seg.has(TcpFlags::SYN) {
            return;
        }
        let Some(t) = self.tcb[from].as_ref() else { return };
        if !t.state().synchronized() {
            return;
        }
        let shift = t.window_scales().1;
        let edge = seg.ack + ((u32::from(seg.wnd) << shift) as usize);
        if let Some(prev) = self.adv_edge[from] {
            assert!(edge.ge(prev), "side {from} shrank its window: edge {edge} < {prev} ({seg:?})");
        }
        self.adv_edge[from] = Some(edge);
    }

    /// Puts side `from`'s segments on the link.
    pub fn transmit(&mut self, from: usize, segs: Vec<SegOut>) {
        let segs = if self.tso_cut { segs.into_iter().flat_map(tso_cut).collect() } else { segs };
        for mut seg in segs {
            self.check_edge(from, &seg);
            if let Some(m) = self.mangle.as_mut() {
                m(from, &mut seg);
            }
            let n = self.sent[from];
            self.sent[from] += 1;
            let mut drop = self.filter.as_mut().is_some_and(|f| f(from, &seg, n));
            if self.loss_ppm > 0 && (self.rng.below(1_000_000) as u32) < self.loss_ppm {
                drop = true;
            }
            let bytes = Net::wire(from, &seg);
            let mut at = self.now_us + self.delay_us;
            if let Some(rate) = self.rate_bps {
                let tx = (bytes.len() as u64 + 40) * 8 * 1_000_000 / rate;
                let start = self.link_free_us[from].max(self.now_us);
                if start - self.now_us > self.queue_us {
                    drop = true;
                } else if !drop {
                    self.link_free_us[from] = start + tx;
                    at = start + tx + self.delay_us;
                }
            }
            if self.jitter_us > 0 {
                at += self.rng.below(self.jitter_us as usize + 1) as u64;
            }
            if self.keep_log {
                self.log.push(Rec { t_us: self.now_us, from, seg: seg.clone(), dropped: drop });
            }
            if drop {
                continue;
            }
            if self.dup_ppm > 0 && (self.rng.below(1_000_000) as u32) < self.dup_ppm {
                self.order += 1;
                self.q.push(Pkt { at_us: at + 1 + self.rng.below(1000) as u64, order: self.order, to: 1 - from, bytes: bytes.clone() });
            }
            self.order += 1;
            self.q.push(Pkt { at_us: at, order: self.order, to: 1 - from, bytes });
        }
    }

    /// Delivers raw wire bytes to side `to` now.
    pub fn deliver(&mut self, to: usize, bytes: &[u8]) {
        let (h, data) = TcpHeader::parse(bytes, IPS[1 - to], IPS[to], true).expect("parse");
        let seg = SegIn::from_header(&h, data);
        self.deliver_seg(to, &seg);
    }

    pub fn deliver_seg(&mut self, to: usize, seg: &SegIn<'_>) {
        let is_syn = seg.has(TcpFlags::SYN) && !seg.has(TcpFlags::ACK) && !seg.has(TcpFlags::RST);
        if self.tcb[to].is_none() || self.state(to) == State::Closed {
            if to == B && is_syn && self.listen.is_some() && self.tcb[B].as_ref().is_none_or(|t| t.state() == State::Closed) {
                let cfg = self.listen.expect("listener");
                let mut out = Vec::new();
                let t = {
                    let mut ctx = TcpCtx { now_us: self.now_us, out: &mut out, mib: &self.mib[B], challenge: &self.chal[B] };
                    Tcb::accept(cfg, SeqNum(ISS[B]), TS_OFF[B], seg, &mut ctx)
                };
                check_invariants(&t);
                self.tcb[B] = Some(t);
                self.adv_edge[B] = None;
                self.transmit(B, out);
                return;
            }
            if self.rst_closed {
                if let Some(r) = reset_for(seg) {
                    self.instance_rsts[to] += 1;
                    self.transmit(to, vec![r]);
                }
            }
            return;
        }
        self.call(to, |t, ctx| t.input(seg, ctx));
    }

    /// Injects a segment as if side `1 - to` sent it (through the wire).
    pub fn inject(&mut self, to: usize, seg: &SegOut) {
        let bytes = Net::wire(1 - to, seg);
        self.deliver(to, &bytes);
    }

    /// The application of side `i`: send, shut down, read.
    pub fn pump(&mut self, i: usize) {
        let Some(t) = self.tcb[i].as_ref() else { return };
        if t.state() == State::Closed {
            // Read what is left after a reset or close.
            return;
        }
        let synced = t.state().synchronized() || t.state() == State::SynSent || t.state() == State::SynRcvd;
        if !synced {
            return;
        }
        while self.app[i].out_off < self.app[i].out.len() {
            let off = self.app[i].out_off;
            let room = self.t(i).send_space();
            if room == 0 {
                break;
            }
            let end = self.app[i].out.len().min(off + room);
            let chunk: Vec<u8> = self.app[i].out[off..end].to_vec();
            match self.call(i, |t, ctx| t.send(&chunk, ctx)) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.app[i].out_off += n,
            }
        }
        if self.app[i].out_off == self.app[i].out.len() && !self.app[i].shut && self.state(i).synchronized() {
            if self.app[i].shutdown_when_done {
                self.app[i].shut = true;
                self.call(i, |t, ctx| t.shutdown_write(ctx));
            } else if self.app[i].close_when_done {
                self.app[i].shut = true;
                self.call(i, |t, ctx| t.close(ctx));
            }
        }
        self.read(i);
    }

    /// Side `i`'s reader takes what is there.
    pub fn read(&mut self, i: usize) {
        let Some(t) = self.tcb[i].as_ref() else { return };
        if t.is_orphan() {
            return;
        }
        if self.app[i].socket_layer {
            let v = self.tcb[i].as_mut().expect("tcb").take_received();
            self.app[i].unconsumed += v.len();
            self.app[i].got.extend_from_slice(&v);
            if self.app[i].consume && self.app[i].unconsumed > 0 {
                let n = std::mem::take(&mut self.app[i].unconsumed);
                self.call(i, |t, ctx| t.consumed(n, ctx));
            }
            return;
        }
        if !self.app[i].reading {
            return;
        }
        loop {
            if self.t(i).readable() == 0 {
                break;
            }
            let v = self.call(i, |t, ctx| t.recv_vec(100_000, ctx));
            match v {
                Ok(v) if !v.is_empty() => self.app[i].got.extend_from_slice(&v),
                _ => break,
            }
        }
    }

    /// One event: the next arrival or the next timer, whichever is first.
    /// False when there is none (or it would be after `limit_us`).
    pub fn step(&mut self, limit_us: u64) -> bool {
        self.steps += 1;
        let pkt = self.q.iter().enumerate().min_by_key(|(_, p)| (p.at_us, p.order)).map(|(i, p)| (i, p.at_us));
        let mut tmr: Option<(usize, u64)> = None;
        for i in 0..2 {
            if let Some(d) = self.tcb[i].as_ref().filter(|t| t.state() != State::Closed).and_then(|t| t.next_deadline()) {
                let us = d * 1000;
                if tmr.is_none_or(|(_, u)| us < u) {
                    tmr = Some((i, us));
                }
            }
        }
        let next = match (pkt, tmr) {
            (None, None) => return false,
            (Some((_, p)), None) => p,
            (None, Some((_, t))) => t,
            (Some((_, p)), Some((_, t))) => p.min(t),
        };
        if next > limit_us {
            self.now_us = self.now_us.max(limit_us);
            return false;
        }
        self.now_us = self.now_us.max(next);
        match (pkt, tmr) {
            (Some((qi, p)), t) if t.is_none_or(|(_, tu)| p <= tu) => {
                let pk = self.q.swap_remove(qi);
                self.deliver(pk.to, &pk.bytes);
            }
            (_, Some((i, _))) => {
                self.call(i, |t, ctx| t.on_timer(ctx));
                if let Some(d) = self.tcb[i].as_ref().filter(|t| t.state() != State::Closed).and_then(|t| t.next_deadline()) {
                    assert!(d > self.now_ms(), "side {i}: a timer due at {d} still armed at {} after on_timer", self.now_ms());
                }
            }
            _ => unreachable!(),
        }
        self.pump(A);
        self.pump(B);
        true
    }

    /// Steps until `cond` holds (true) or `max_us` of fake time pass or
    /// nothing is left to happen (false).
    pub fn run_until(&mut self, mut cond: impl FnMut(&mut Net) -> bool, max_us: u64) -> bool {
        let limit = self.now_us + max_us;
        self.pump(A);
        if self.tcb[B].is_some() {
            self.pump(B);
        }
        loop {
            if cond(self) {
                return true;
            }
            if !self.step(limit) {
                return cond(self);
            }
        }
    }

    /// Runs `us` of fake time.
    pub fn run_for(&mut self, us: u64) {
        let limit = self.now_us + us;
        self.pump(A);
        self.pump(B);
        while self.step(limit) {}
        self.now_us = self.now_us.max(limit);
    }

    /// Delivers everything on the link now (no timers), in order.
    pub fn flush_link(&mut self) {
        while !self.q.is_empty() {
            let qi = self.q.iter().enumerate().min_by_key(|(_, p)| (p.at_us, p.order)).map(|(i, _)| i).unwrap_or(0);
            let pk = self.q.swap_remove(qi);
            self.now_us = self.now_us.max(pk.at_us);
            self.deliver(pk.to, &pk.bytes);
        }
    }

    /// Segments side `from` sent since log index `since`.
    pub fn sent_by(&self, from: usize, since: usize) -> Vec<&Rec> {
        self.log[since..].iter().filter(|r| r.from == from).collect()
    }

    /// The last segment side `from` sent.
    pub fn last_from(&self, from: usize) -> &SegOut {
        &self.log.iter().rev().find(|r| r.from == from).expect("nothing sent").seg
    }

    /// A segment as the peer of side `to` would send it now: its SND.NXT,
    /// RCV.NXT, a full window, its current timestamps.
    pub fn forge(&self, to: usize, flags: TcpFlags, data: &[u8]) -> SegOut {
        let peer = 1 - to;
        let p = self.t(peer);
        let mut opts = TcpOptions::new();
        if p.options().1 {
            let last = self.log.iter().rev().find(|r| r.from == peer && r.seg.opts.timestamps.is_some());
            let ts = last.and_then(|r| r.seg.opts.timestamps).unwrap_or(Timestamps { tsval: 0, tsecr: 0 });
            opts.timestamps = Some(Timestamps { tsval: ts.tsval.wrapping_add(1), tsecr: ts.tsecr });
        }
        SegOut {
            seq: p.snd_seq().0,
            ack: p.rcv_nxt(),
            flags,
            wnd: 65_535,
            urgent: 0,
            opts,
            data: data.to_vec(),
            rexmit: false,
            lso_mss: None,
        }
    }
}

fn merge(a: &mut Events, b: Events) {
    a.readable |= b.readable;
    a.writable |= b.writable;
    a.established |= b.established;
    a.closed |= b.closed;
}

/// The invariants every TCB keeps after every call.
pub fn check_invariants(t: &Tcb) {
    let (nxt, una) = t.snd_seq();
    let max = t.snd_max();
    assert!(una.le(nxt), "SND.UNA {una} > SND.NXT {nxt} in {}", t.state());
    assert!(nxt.le(max), "SND.NXT {nxt} > SND.MAX {max} in {}", t.state());
    let flight = (max - una) as i64;
    assert!(flight >= 0);
    if t.state() != State::Closed && t.state() != State::TimeWait {
        // The queue holds the bytes from SND.UNA on; a SYN and a FIN add one each.
        assert!(
            flight as usize <= t.send_queued() + 2,
            "SND.MAX − SND.UNA = {flight} with {} queued in {}",
            t.send_queued(),
            t.state()
        );
    }
    assert!(t.mss() >= 1);
    let (cwnd, ssthresh) = t.cwnd();
    assert!(cwnd >= t.mss().min(cwnd) && cwnd > 0 && ssthresh > 0);
    assert!(t.rtt().1 >= 1);
}

/// Bytes `0, 1, 2, ...` mixed with a seed.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + (i >> 8) * 13) as u8) ^ seed).collect()
}

impl Net {
    /// Prints the log (for debugging a failing test).
    pub fn dump(&self, since: usize) {
        for r in &self.log[since..] {
            let s = &r.seg;
            eprintln!(
                "{:>10} {} {:?} seq={} ack={} wnd={} len={} up={} rx={} drop={} sack={:?}",
                r.t_us,
                if r.from == A { "A>" } else { "<B" },
                s.flags,
                s.seq,
                s.ack,
                s.wnd,
                s.data.len(),
                s.urgent,
                s.rexmit,
                r.dropped,
                s.opts.sack_blocks.as_slice()
            );
        }
    }
}

/// A large segment cut as a NIC with TSO cuts it: MSS pieces with the
/// same header, the sequence number advanced, FIN and PSH on the last.
pub fn tso_cut(seg: SegOut) -> Vec<SegOut> {
    let Some(mss) = seg.lso_mss else { return vec![seg] };
    let mss = usize::from(mss).max(1);
    let n = seg.data.len().div_ceil(mss).max(1);
    (0..n)
        .map(|i| {
            let last = i + 1 == n;
            let mut flags = seg.flags;
            if !last {
                flags = TcpFlags(flags.0 & !(TcpFlags::FIN.0 | TcpFlags::PSH.0));
            }
            let data = seg.data[i * mss..((i + 1) * mss).min(seg.data.len())].to_vec();
            SegOut { seq: seg.seq + i * mss, flags, data, lso_mss: None, ..seg.clone() }
        })
        .collect()
}
