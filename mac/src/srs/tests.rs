//! Tests of the Rx SRS state machine over a scripted ring.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::vec::Vec;

use alloc::sync::Arc;

use super::rx::{Mode, PollStep, RxSrs};
use super::softring::Proto;
use super::tunables;
use crate::buf::BufPool;
use crate::dma::host::HeapDma;
use crate::mblk::{Mblk, MblkChain};
use crate::provider::RxRing;
use crate::stats::RingStats;

/// A ring whose packets the test puts in by hand.
struct ScriptRing {
    pool: Arc<BufPool>,
    pending: StdMutex<Vec<Mblk>>,
    enables: AtomicUsize,
    stats: RingStats,
}

impl ScriptRing {
    fn new() -> ScriptRing {
        ScriptRing {
            pool: BufPool::new(Arc::new(HeapDma::default()), 2048, 4096).unwrap(),
            pending: StdMutex::new(Vec::new()),
            enables: AtomicUsize::new(0),
            stats: RingStats::default(),
        }
    }
    fn put(&self, frame: &[u8]) {
        let mut m = Mblk::new(self.pool.alloc().unwrap());
        assert!(m.append(frame));
        self.pending.lock().unwrap().push(m);
    }
    fn put_n(&self, n: usize, len: usize) {
        for i in 0..n {
            self.put(&tcp(i as u16, len));
        }
    }
}

impl RxRing for ScriptRing {
    fn poll(&self, max_bytes: usize) -> MblkChain {
        let mut p = self.pending.lock().unwrap();
        let mut c = MblkChain::new();
        while !p.is_empty() && (c.is_empty() || c.bytes() + p[0].len() <= max_bytes) {
            c.push(p.remove(0));
        }
        c
    }
    fn intr_enable(&self) {
        self.enables.fetch_add(1, Ordering::Relaxed);
    }
    fn intr_disable(&self) {}
    fn cpu(&self) -> usize {
        0
    }
    fn stats(&self) -> &RingStats {
        &self.stats
    }
}

fn frame(proto: u8, sport: u16, len: usize) -> Vec<u8> {
    let mut f = std::vec![0u8; len.max(54)];
    f[12] = 0x08;
    f[14] = 0x45;
    f[23] = proto;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f
}

fn tcp(sport: u16, len: usize) -> Vec<u8> {
    frame(6, sport, len)
}

/// Delivers into a counter.
fn counting() -> (Arc<AtomicUsize>, impl Fn(MblkChain)) {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    (n, move |c: MblkChain| {
        n2.fetch_add(c.len(), Ordering::Relaxed);
    })
}

#[test]
fn one_interrupt_with_little_traffic_stays_in_interrupt_mode() {
    let ring = ScriptRing::new();
    let srs = RxSrs::new(0, 0, true, &[]);
    assert_eq!(srs.poll_step(&ring), PollStep::Idle, "no interrupt noted: nothing to do");
    ring.put_n(3, 100);
    srs.interrupt();
    assert_eq!(srs.poll_step(&ring), PollStep::Inline);
    let (n, deliver) = counting();
    assert!(srs.worker_step(&deliver));
    assert_eq!(n.load(Ordering::Relaxed), 3);
    assert_eq!(srs.rearm(&ring), PollStep::Idle);
    assert_eq!(srs.mode(), Mode::Interrupt);
    assert_eq!(ring.enables.load(Ordering::Relaxed), 1);
    let c = srs.stats.snapshot();
    assert_eq!((c.intr_pkts, c.poll_pkts, c.poll_on), (3, 0, 0));
}

#[test]
fn packets_arriving_while_a_pickup_is_processed_turn_polling_on() {
    let ring = ScriptRing::new();
    let srs = RxSrs::new(0, 0, true, &[]);
    ring.put_n(2, 100);
    srs.interrupt();
    assert_eq!(srs.poll_step(&ring), PollStep::Inline);
    let (n, deliver) = counting();
    assert!(srs.worker_step(&deliver));
    // More arrived meanwhile: the driver raises the interrupt again the
    // moment it is re-enabled.
    ring.put_n(5, 100);
    srs.interrupt();
    assert_eq!(srs.rearm(&ring), PollStep::Again);
    assert_eq!(srs.mode(), Mode::Poll);
    assert_eq!(srs.poll_step(&ring), PollStep::Again);
    while srs.worker_step(&deliver) {}
    assert_eq!(srs.poll_step(&ring), PollStep::Idle, "empty ring, empty queue: interrupts back on");
    assert_eq!(n.load(Ordering::Relaxed), 7);
    let c = srs.stats.snapshot();
    assert_eq!((c.intr_pkts, c.poll_pkts, c.poll_on, c.poll_off, c.chain_under10), (2, 5, 1, 1, 1));
    // With dynamic polling off the same pattern stays in interrupt mode:
    // a ring that cannot poll behaves so.
    let srs = RxSrs::new(0, 0, false, &[]);
    ring.put_n(2, 100);
    srs.interrupt();
    assert_eq!(srs.poll_step(&ring), PollStep::Inline);
    srs.interrupt();
    assert_eq!(srs.rearm(&ring), PollStep::Idle);
    assert_eq!(srs.mode(), Mode::Interrupt);
}

#[test]
fn polling_pauses_at_the_low_water_mark_and_resumes_at_the_threshold() {
    let ring = ScriptRing::new();
    let srs = RxSrs::new(0, 0, true, &[]);
    let lowat = tunables::LOWAT.get() as usize;
    ring.put_n(3 * lowat, 60);
    srs.interrupt();
    assert_eq!(srs.poll_step(&ring), PollStep::Again, "a full pickup starts polling");
    assert_eq!(srs.mode(), Mode::Poll);
    // Without the worker the queue grows until the poll thread pauses.
    let mut steps = 0;
    loop {
        match srs.poll_step(&ring) {
            PollStep::Again => steps += 1,
            PollStep::Paused => break,
            s => panic!("unexpected {s:?}"),
        }
        assert!(steps < 100);
    }
    assert!(srs.queued() >= lowat);
    assert!(!srs.below_threshold());
    let (n, deliver) = counting();
    assert!(srs.worker_step(&deliver));
    assert!(srs.below_threshold());
    // Drain the rest.
    loop {
        let s = srs.poll_step(&ring);
        while srs.worker_step(&deliver) {}
        if s == PollStep::Idle {
            break;
        }
    }
    assert_eq!(n.load(Ordering::Relaxed), 3 * lowat);
    let c = srs.stats.snapshot();
    assert!(c.poll_pauses >= 1);
    assert_eq!((c.poll_on, c.poll_off), (1, 1));
    assert_eq!(c.intr_pkts + c.poll_pkts, 3 * lowat as u64);
    assert_eq!(srs.mode(), Mode::Interrupt);
    assert_eq!(ring.enables.load(Ordering::Relaxed), 1);
}

#[test]
fn empty_poll_with_a_queue_waits_for_the_worker_before_interrupts_return() {
    let ring = ScriptRing::new();
    let srs = RxSrs::new(0, 0, true, &[]);
    ring.put_n(40, 60);
    srs.interrupt();
    assert_eq!(srs.poll_step(&ring), PollStep::Again);
    assert_eq!(srs.poll_step(&ring), PollStep::Draining, "ring empty but 40 packets queued");
    assert_eq!(ring.enables.load(Ordering::Relaxed), 0);
    let (_, deliver) = counting();
    assert!(srs.worker_step(&deliver));
    assert!(srs.drained());
    assert_eq!(srs.poll_step(&ring), PollStep::Idle);
    assert_eq!(ring.enables.load(Ordering::Relaxed), 1);
    assert_eq!(srs.stats.snapshot().empty_polls, 2);
}

#[test]
fn a_ring_that_cannot_poll_drops_above_the_high_water_mark() {
    let ring = ScriptRing::new();
    let srs = RxSrs::new(0, 0, false, &[]);
    let hiwat = tunables::HIWAT.get() as usize;
    // Interrupt pickups of 100-byte frames, never drained.
    for _ in 0..(hiwat / 500 + 3) {
        ring.put_n(1000, 100);
        srs.interrupt();
        assert_eq!(srs.poll_step(&ring), PollStep::Inline);
        while !ring.pending.lock().unwrap().is_empty() {
            srs.interrupt();
            srs.poll_step(&ring);
        }
    }
    assert_eq!(srs.mode(), Mode::Interrupt);
    assert_eq!(srs.queued(), hiwat);
    let c = srs.stats.snapshot();
    assert_eq!(c.sdrops + hiwat as u64, c.intr_pkts);
    assert_eq!(c.poll_on, 0);
}

#[test]
fn soft_rings_split_by_protocol_and_fan_out_by_flow() {
    let srs = RxSrs::new(0, 0, true, &[0, 1, 2]);
    assert_eq!(srs.fanout(), 3);
    assert_eq!(srs.softrings().len(), 9);
    let ring = ScriptRing::new();
    for sport in 0..64u16 {
        ring.put(&frame(6, 1000 + sport, 60));
    }
    for sport in 0..10u16 {
        ring.put(&frame(17, sport, 60));
    }
    ring.put(&frame(1, 0, 60));
    let mut arp = std::vec![0u8; 60];
    arp[12] = 0x08;
    arp[13] = 0x06;
    ring.put(&arp);
    srs.interrupt();
    srs.poll_step(&ring);
    let (n, deliver) = counting();
    while srs.worker_step(&deliver) {}
    assert_eq!(n.load(Ordering::Relaxed), 76);
    let per: Vec<(Proto, usize, u64)> = srs.softrings().iter().map(|s| (s.proto, s.index, s.stats.snapshot().pkts)).collect();
    let sum = |p: Proto| per.iter().filter(|x| x.0 == p).map(|x| x.2).sum::<u64>();
    assert_eq!((sum(Proto::Tcp), sum(Proto::Udp), sum(Proto::Other)), (64, 10, 2));
    let tcp_rings_used = per.iter().filter(|x| x.0 == Proto::Tcp && x.2 > 0).count();
    assert_eq!(tcp_rings_used, 3, "64 TCP flows over 3 CPUs: {per:?}");
    // One flow always lands on the same soft ring.
    let srs2 = RxSrs::new(0, 0, true, &[0, 1, 2]);
    for _ in 0..20 {
        ring.put(&frame(6, 4242, 60));
    }
    srs2.interrupt();
    srs2.poll_step(&ring);
    while srs2.worker_step(&deliver) {}
    assert_eq!(srs2.softrings().iter().filter(|s| s.stats.snapshot().pkts > 0).count(), 1);
}

#[test]
fn soft_rings_with_threads_queue_and_drain_there() {
    let srs = RxSrs::new(0, 0, true, &[0, 1]);
    let woken = Arc::new(AtomicUsize::new(0));
    for sr in srs.softrings().iter().filter(|s| s.cpu != 0) {
        let w = woken.clone();
        sr.set_wakeup(Arc::new(move || {
            w.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let ring = ScriptRing::new();
    for sport in 0..32u16 {
        ring.put(&tcp(sport, 60));
    }
    srs.interrupt();
    srs.poll_step(&ring);
    let (n, deliver) = counting();
    assert!(srs.worker_step(&deliver));
    let inline = n.load(Ordering::Relaxed);
    assert!(inline > 0 && inline < 32, "{inline}");
    assert!(woken.load(Ordering::Relaxed) >= 1);
    let remote: usize = srs.softrings().iter().filter(|s| s.has_thread()).map(|s| s.drain(&deliver)).sum();
    assert_eq!(inline + remote, 32);
}

#[test]
fn one_thread_at_a_time_processes_the_queue() {
    // The poll thread processing inline and the worker never both take
    // from the queue (illumos `SRS_PROC`): a second caller gets false at
    // once and the first takes what was queued meanwhile.
    let ring = ScriptRing::new();
    let srs = alloc::sync::Arc::new(RxSrs::new(0, 0, true, &[]));
    ring.put_n(3, 100);
    srs.interrupt();
    assert_eq!(srs.poll_step(&ring), PollStep::Inline);
    let (n, count) = counting();
    let inner = core::sync::atomic::AtomicBool::new(true);
    let s2 = srs.clone();
    let deliver = |c: MblkChain| {
        inner.store(s2.worker_step(&count), Ordering::Relaxed);
        count(c);
    };
    assert!(srs.worker_step(&deliver));
    assert!(!inner.load(Ordering::Relaxed), "a second thread processed while the first was at it");
    assert_eq!(n.load(Ordering::Relaxed), 3);
    assert!(!srs.worker_step(&deliver), "nothing left");
}
