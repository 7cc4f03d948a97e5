//! FireEngine squeues: every entry mode, FIFO order across modes, the fast
//! path, follow-ups queued from inside, the drain time bound, the worker
//! wake-up delay, the queue bound, `tcp_squeue_wput`, `ip_squeue_fanout`,
//! and a multi-threaded stress run proving one thread inside at a time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use arbalest_netstack::fireengine::squeue::{
    SQ_DEFAULT_CAPACITY, SqConfig, SqCtx, SqEntry, SqEnv, SqMode, SqStats, SquedSet, Squeue,
};

const MS: u64 = 1_000_000;

// ---- fake environment ------------------------------------------------------

/// A fake clock (advanced by the test or by entries) and the list of
/// worker wake-ups asked for.
struct FakeEnv {
    clock: Arc<AtomicU64>,
    cpu: u32,
    wakes: Arc<Mutex<Vec<(u32, u64)>>>,
}

impl FakeEnv {
    fn new() -> FakeEnv {
        FakeEnv::on_cpu(0)
    }
    fn on_cpu(cpu: u32) -> FakeEnv {
        FakeEnv { clock: Arc::new(AtomicU64::new(1_000 * MS)), cpu, wakes: Arc::new(Mutex::new(Vec::new())) }
    }
    /// A thread on another CPU of the same machine: same clock, same
    /// record of wake-ups.
    fn other(&self, cpu: u32) -> Arc<FakeEnv> {
        Arc::new(FakeEnv { clock: self.clock.clone(), cpu, wakes: self.wakes.clone() })
    }
    fn wakes(&self) -> Vec<(u32, u64)> {
        self.wakes.lock().unwrap().clone()
    }
}

impl SqEnv for FakeEnv {
    fn now_ns(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }
    fn cpu(&self) -> u32 {
        self.cpu
    }
    fn wake_worker(&self, sq_id: u32, delay_ns: u64) {
        self.wakes.lock().unwrap().push((sq_id, delay_ns));
    }
}

// ---- a scripted entry ------------------------------------------------------

type Log = Arc<Mutex<Vec<String>>>;

/// What an entry does after logging itself.
enum Then {
    /// Queue a follow-up through the context (SQ_FILL from inside).
    Fill(Ev),
    /// Enter the squeue again from this thread (an upcall running inside
    /// queueing more), in this mode.
    Enter(Ev, SqMode),
    /// Enter the squeue as a thread on another CPU would, in this mode.
    EnterFrom(Ev, SqMode, Arc<FakeEnv>),
    /// Forward to another squeue (a conn that moved).
    FillOn(Arc<Squeue<Ev>>, Ev),
    /// The worker tries to run while we are inside.
    WorkerDrain,
    /// Time passes while the entry runs.
    Advance(Arc<AtomicU64>, u64),
    /// Log "<name>-end" (shows that follow-ups do not run recursively).
    End,
}

struct Ev {
    name: String,
    log: Log,
    then: Vec<Then>,
}

fn ev(name: &str, log: &Log) -> Ev {
    Ev { name: name.to_string(), log: log.clone(), then: Vec::new() }
}

impl Ev {
    fn then(mut self, t: Then) -> Ev {
        self.then.push(t);
        self
    }
}

impl SqEntry for Ev {
    fn process(self, ctx: &mut SqCtx<'_, Ev>) {
        let tag = if ctx.by_worker() { "w:" } else { "" };
        self.log.lock().unwrap().push(format!("{tag}{}", self.name));
        for t in self.then {
            match t {
                Then::Fill(e) => assert!(ctx.fill(e).is_ok()),
                Then::Enter(e, mode) => {
                    let sq = ctx.squeue();
                    assert!(sq.enter(e, mode, ctx.env()).is_ok());
                }
                Then::EnterFrom(e, mode, env) => {
                    let sq = ctx.squeue();
                    assert!(sq.enter(e, mode, &*env).is_ok());
                }
                Then::FillOn(sq, e) => assert!(ctx.fill_on(&sq, e).is_ok()),
                Then::WorkerDrain => ctx.squeue().worker_drain(ctx.env()),
                Then::Advance(clock, ns) => {
                    clock.fetch_add(ns, Ordering::SeqCst);
                }
                Then::End => self.log.lock().unwrap().push(format!("{}-end", self.name)),
            }
        }
    }
}

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn seen(l: &Log) -> Vec<String> {
    l.lock().unwrap().clone()
}

fn sq(cap: usize) -> Squeue<Ev> {
    Squeue::new(0, 0, cap, Arc::new(SqConfig::new()))
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- modes -----------------------------------------------------------------

#[test]
fn process_on_a_free_empty_squeue_takes_the_fast_path() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(16));
    assert!(q.enter(ev("a", &l), SqMode::Process, &env).is_ok());
    assert!(q.enter(ev("b", &l), SqMode::Process, &env).is_ok());
    assert_eq!(seen(&l), names(&["a", "b"]));
    let s = q.snapshot();
    assert_eq!((s.processed_inline, s.queued, s.drained_other, s.drained_worker), (2, 0, 0, 0));
    assert_eq!(s.max_queue_len, 0);
    assert!(env.wakes().is_empty());
    assert!(!q.is_busy());
}

#[test]
fn every_mode_queues_while_someone_is_inside_and_the_insider_runs_them_in_order() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(16));
    let other = env.other(1);
    let first = ev("a", &l)
        .then(Then::Enter(ev("u", &l), SqMode::Fill)) // an upcall inside queues a reply
        .then(Then::EnterFrom(ev("b", &l), SqMode::Process, other.clone()))
        .then(Then::EnterFrom(ev("c", &l), SqMode::NoDrain, other.clone()))
        .then(Then::EnterFrom(ev("d", &l), SqMode::Fill, other))
        .then(Then::End);
    assert!(q.enter(first, SqMode::Process, &env).is_ok());
    assert_eq!(seen(&l), names(&["a", "a-end", "u", "b", "c", "d"]));
    let s = q.snapshot();
    assert_eq!((s.processed_inline, s.queued, s.drained_other), (1, 4, 4));
    assert_eq!(s.max_queue_len, 4);
    assert_eq!(s.queue_len, 0);
    // Queued while someone was inside: the insider ran them. The thread
    // inside queueing its own asks for no worker; the first entry from
    // another CPU asks once, after ip_squeue_wait, as the backstop (the
    // later ones find that wake-up pending).
    assert_eq!(env.wakes(), vec![(0, 10 * MS)]);
}

#[test]
fn fill_always_queues_and_asks_for_the_worker_once() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(16));
    assert!(q.enter(ev("a", &l), SqMode::Fill, &env).is_ok());
    assert!(q.enter(ev("b", &l), SqMode::Fill, &env).is_ok());
    assert!(seen(&l).is_empty());
    assert_eq!(q.queue_len(), 2);
    // One wake-up after ip_squeue_wait (10 ms); the second is already covered.
    assert_eq!(env.wakes(), vec![(0, 10 * MS)]);
    q.worker_drain(&env);
    assert_eq!(seen(&l), names(&["w:a", "w:b"]));
    let s = q.snapshot();
    assert_eq!((s.queued, s.drained_worker, s.worker_wakeups, s.processed_inline), (2, 2, 1, 0));
    // Served: the next fill asks again.
    assert!(q.enter(ev("c", &l), SqMode::Fill, &env).is_ok());
    assert_eq!(env.wakes().len(), 2);
}

#[test]
fn process_with_a_backlog_queues_at_the_tail_and_drains_fifo_across_modes() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(16));
    assert!(q.enter(ev("1", &l), SqMode::Fill, &env).is_ok());
    assert!(q.enter(ev("2", &l), SqMode::NoDrain, &env).is_ok()); // backlog: queued
    assert!(q.enter(ev("3", &l), SqMode::Fill, &env).is_ok());
    assert!(seen(&l).is_empty());
    assert!(q.enter(ev("4", &l), SqMode::Process, &env).is_ok());
    assert_eq!(seen(&l), names(&["1", "2", "3", "4"]));
    let s = q.snapshot();
    assert_eq!((s.processed_inline, s.queued, s.drained_other, s.drained_worker), (0, 4, 4, 0));
    // The pending worker finds nothing.
    q.worker_drain(&env);
    assert_eq!(seen(&l).len(), 4);
    assert_eq!(q.snapshot().drained_worker, 0);
}

#[test]
fn nodrain_runs_inline_only_when_free_and_empty_and_leaves_the_rest_to_the_worker() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(16));
    // Free and empty: inline.
    assert!(q.enter(ev("a", &l), SqMode::NoDrain, &env).is_ok());
    assert_eq!(seen(&l), names(&["a"]));
    assert!(env.wakes().is_empty());
    // Inline, but something arrives meanwhile: not drained, worker asked.
    let b = ev("b", &l).then(Then::Enter(ev("c", &l), SqMode::Process)).then(Then::Fill(ev("d", &l)));
    assert!(q.enter(b, SqMode::NoDrain, &env).is_ok());
    assert_eq!(seen(&l), names(&["a", "b"]));
    assert_eq!(q.queue_len(), 2);
    assert_eq!(env.wakes(), vec![(0, 10 * MS)]);
    // A backlog: queued and left.
    assert!(q.enter(ev("e", &l), SqMode::NoDrain, &env).is_ok());
    assert_eq!(seen(&l).len(), 2);
    q.worker_drain(&env);
    assert_eq!(seen(&l), names(&["a", "b", "w:c", "w:d", "w:e"]));
    let s = q.snapshot();
    assert_eq!((s.processed_inline, s.queued, s.drained_worker, s.drained_other), (2, 3, 3, 0));
}

#[test]
fn a_fill_from_inside_runs_after_the_current_entry_in_the_same_drain() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(16));
    let c = ev("c", &l);
    let a2 = ev("a2", &l).then(Then::Fill(c)).then(Then::End);
    let first = ev("a", &l)
        .then(Then::EnterFrom(ev("x", &l), SqMode::Process, env.other(1))) // another thread, first in line
        .then(Then::Fill(a2))
        .then(Then::Fill(ev("a3", &l)))
        .then(Then::End);
    assert!(q.enter(first, SqMode::Process, &env).is_ok());
    // Nothing recursive: every follow-up after its parent ended, in FIFO order,
    // all before enter() returned and without the worker.
    assert_eq!(seen(&l), names(&["a", "a-end", "x", "a2", "a2-end", "a3", "c"]));
    // Fills from inside never ask for the worker; x, from another thread,
    // asked once (the backstop after ip_squeue_wait).
    assert_eq!(env.wakes(), vec![(0, 10 * MS)]);
    assert_eq!(q.snapshot().drained_other, 4);
}

#[test]
fn the_worker_does_not_enter_while_someone_is_inside() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(16));
    let first = ev("a", &l).then(Then::Fill(ev("b", &l))).then(Then::WorkerDrain).then(Then::End);
    assert!(q.enter(first, SqMode::Process, &env).is_ok());
    assert_eq!(seen(&l), names(&["a", "a-end", "b"]));
    assert_eq!(q.snapshot().drained_worker, 0);
    // An empty squeue: the worker returns at once.
    q.worker_drain(&env);
    assert_eq!(seen(&l).len(), 3);
}

// ---- drain bound and worker wait --------------------------------------------

#[test]
fn an_entering_thread_drains_at_most_squeue_drain_ms_then_hands_over_to_the_worker() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(64));
    assert_eq!(q.config().drain_ns(), 20 * MS);
    for i in 0..10 {
        let e = ev(&format!("{i}"), &l).then(Then::Advance(env.clock.clone(), 5 * MS));
        assert!(q.enter(e, SqMode::Fill, &env).is_ok());
    }
    assert_eq!(env.wakes(), vec![(0, 10 * MS)]);
    let own = ev("own", &l).then(Then::Advance(env.clock.clone(), 5 * MS));
    assert!(q.enter(own, SqMode::Process, &env).is_ok());
    // 4 entries x 5 ms = 20 ms: the bound; the rest goes to the worker, now.
    assert_eq!(seen(&l), names(&["0", "1", "2", "3"]));
    assert_eq!(q.queue_len(), 7);
    assert_eq!(env.wakes(), vec![(0, 10 * MS), (0, 0)]);
    let s = q.snapshot();
    assert_eq!((s.drain_time_limit, s.drained_other, s.worker_wakeups), (1, 4, 2));
    assert!(!q.is_busy());
    // The worker has no bound: 35 ms of work in one go.
    q.worker_drain(&env);
    assert_eq!(q.queue_len(), 0);
    let got = seen(&l);
    assert_eq!(got.len(), 11);
    assert_eq!(got[4..], names(&["w:4", "w:5", "w:6", "w:7", "w:8", "w:9", "w:own"])[..]);
    let s = q.snapshot();
    assert_eq!((s.drained_worker, s.drain_time_limit), (7, 1));
}

#[test]
fn the_drain_bound_also_holds_after_a_fast_path_entry() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(64));
    q.config().set_drain_ms(10).unwrap();
    let clock = env.clock.clone();
    let mut first = ev("a", &l);
    for i in 0..5 {
        let e = ev(&format!("f{i}"), &l).then(Then::Advance(clock.clone(), 4 * MS));
        first = first.then(Then::Fill(e));
    }
    assert!(q.enter(first, SqMode::Process, &env).is_ok());
    // 3 x 4 ms >= 10 ms.
    assert_eq!(seen(&l), names(&["a", "f0", "f1", "f2"]));
    assert_eq!(env.wakes(), vec![(0, 0)]);
    assert_eq!(q.snapshot().drain_time_limit, 1);
    q.worker_drain(&env);
    assert_eq!(seen(&l)[4..], names(&["w:f3", "w:f4"])[..]);
}

#[test]
fn ip_squeue_wait_sets_the_worker_delay() {
    let (l, env) = (log(), FakeEnv::new());
    let set: SquedSet<Ev> = SquedSet::new(2, 16);
    assert_eq!(set.config().ip_squeue_wait_ms(), 10);
    assert!(set.for_cpu(0).unwrap().enter(ev("a", &l), SqMode::Fill, &env).is_ok());
    set.config().set_ip_squeue_wait_ms(0).unwrap();
    assert!(set.for_cpu(1).unwrap().enter(ev("b", &l), SqMode::Fill, &env).is_ok());
    assert_eq!(env.wakes(), vec![(0, 10 * MS), (1, 0)]);
    // A pending delayed wake is brought forward when an immediate one is due.
    assert!(set.for_cpu(0).unwrap().enter(ev("c", &l), SqMode::Fill, &env).is_ok());
    assert_eq!(env.wakes(), vec![(0, 10 * MS), (1, 0), (0, 0)]);
    assert!(set.config().set_ip_squeue_wait_ms(1001).is_err());
    assert_eq!(set.config().ip_squeue_wait_ms(), 0);
}

// ---- bound, send side, fanout, stats -----------------------------------------

#[test]
fn a_full_queue_hands_the_entry_back_and_counts_the_drop() {
    let (l, env, q) = (log(), FakeEnv::new(), sq(3));
    assert_eq!(q.capacity(), 3);
    for n in ["1", "2", "3"] {
        assert!(q.enter(ev(n, &l), SqMode::Fill, &env).is_ok());
    }
    let back = q.enter(ev("4", &l), SqMode::Fill, &env).err().map(|e| e.name);
    assert_eq!(back.as_deref(), Some("4"));
    // SQ_PROCESS on a full backlog: ours is refused, the backlog still drained.
    let back = q.enter(ev("5", &l), SqMode::Process, &env).err().map(|e| e.name);
    assert_eq!(back.as_deref(), Some("5"));
    assert_eq!(seen(&l), names(&["1", "2", "3"]));
    let s = q.snapshot();
    assert_eq!((s.drops, s.queued, s.max_queue_len), (2, 3, 3));
    // From inside, too.
    struct Flood(Option<Arc<AtomicU64>>);
    impl SqEntry for Flood {
        fn process(self, ctx: &mut SqCtx<'_, Flood>) {
            let Some(refused) = self.0 else { return };
            for _ in 0..5 {
                if ctx.fill(Flood(None)).is_err() {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
    let refused = Arc::new(AtomicU64::new(0));
    let f: Squeue<Flood> = Squeue::new(0, 0, 2, Arc::new(SqConfig::new()));
    assert!(f.enter(Flood(Some(refused.clone())), SqMode::Process, &env).is_ok());
    assert_eq!(refused.load(Ordering::SeqCst), 3);
    assert_eq!(f.snapshot().drops, 3);
    assert_eq!(f.queue_len(), 0);
}

#[test]
fn tcp_squeue_wput_2_drains_and_1_does_not() {
    let env = FakeEnv::new();
    let cfg = Arc::new(SqConfig::new());
    assert_eq!(cfg.tcp_squeue_wput(), 2);
    assert_eq!(cfg.send_mode(), SqMode::Process);
    let (l, q) = (log(), Squeue::new(0, 0, 16, cfg.clone()));
    assert!(q.enter(ev("rx", &l), SqMode::Fill, &env).is_ok());
    assert!(q.enter_send(ev("tx", &l), &env).is_ok());
    assert_eq!(seen(&l), names(&["rx", "tx"]));

    cfg.set_tcp_squeue_wput(1).unwrap();
    assert_eq!(cfg.send_mode(), SqMode::NoDrain);
    let (l, q) = (log(), Squeue::new(0, 0, 16, cfg.clone()));
    // Own packet on a free squeue: still inline.
    assert!(q.enter_send(ev("tx0", &l), &env).is_ok());
    assert_eq!(seen(&l), names(&["tx0"]));
    // With a backlog the sender queues and leaves it to the worker.
    assert!(q.enter(ev("rx", &l), SqMode::Fill, &env).is_ok());
    assert!(q.enter_send(ev("tx", &l), &env).is_ok());
    assert_eq!(seen(&l), names(&["tx0"]));
    q.worker_drain(&env);
    assert_eq!(seen(&l), names(&["tx0", "w:rx", "w:tx"]));
    assert!(cfg.set_tcp_squeue_wput(0).is_err());
    assert!(cfg.set_tcp_squeue_wput(3).is_err());
    assert_eq!(cfg.tcp_squeue_wput(), 1);
}

#[test]
fn ip_squeue_fanout_picks_this_cpu_or_round_robin() {
    let set: SquedSet<Ev> = SquedSet::new(4, 16);
    assert_eq!(set.len(), 4);
    assert_eq!(set.config().ip_squeue_fanout(), 0);
    assert_eq!(set.pick_for_new_conn(2).id(), 2);
    assert_eq!(set.pick_for_new_conn(2).id(), 2);
    assert_eq!(set.pick_for_new_conn(5).id(), 1); // unknown CPU wraps
    set.config().set_ip_squeue_fanout(1).unwrap();
    let picks: Vec<u32> = (0..6).map(|_| set.pick_for_new_conn(3).id()).collect();
    assert_eq!(picks, vec![0, 1, 2, 3, 0, 1]);
    assert!(set.config().set_ip_squeue_fanout(2).is_err());
    assert!(set.for_cpu(4).is_none());
    for (i, s) in set.iter().enumerate() {
        assert_eq!((s.id() as usize, s.cpu() as usize), (i, i));
    }
    // ip_squeue_bind is recorded for the kernel.
    assert_eq!(set.config().ip_squeue_bind(), 1);
    set.config().set_ip_squeue_bind(0).unwrap();
    assert_eq!(set.config().ip_squeue_bind(), 0);
    assert!(set.config().set_ip_squeue_bind(2).is_err());
    // A set always has a squeue.
    let one: SquedSet<Ev> = SquedSet::new(0, 16);
    assert_eq!(one.len(), 1);
    assert_eq!(one.pick_for_new_conn(7).id(), 0);
}

#[test]
fn sqstat_counts_conns_remote_entries_and_snapshots_are_plain_copies() {
    let l = log();
    let set: SquedSet<Ev> = SquedSet::new(2, SQ_DEFAULT_CAPACITY);
    let q1 = set.for_cpu(1).unwrap().clone();
    q1.bind_conn();
    q1.bind_conn();
    q1.unbind_conn();
    assert_eq!(q1.conns(), 1);
    q1.unbind_conn();
    q1.unbind_conn(); // never below zero
    assert_eq!(q1.conns(), 0);
    q1.bind_conn();
    let env0 = FakeEnv::on_cpu(0);
    let env1 = FakeEnv::on_cpu(1);
    assert!(q1.enter(ev("a", &l), SqMode::Process, &env0).is_ok());
    assert!(q1.enter(ev("b", &l), SqMode::Process, &env1).is_ok());
    let s: SqStats = q1.snapshot();
    let copy = s;
    assert_eq!(copy, s);
    assert_eq!((s.id, s.cpu, s.conns, s.processed_inline, s.remote_enters), (1, 1, 1, 2, 1));
    let all = set.snapshot_all();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], SqStats { id: 0, cpu: 0, ..SqStats::default() });
    assert_eq!(all[1], s);
}

#[test]
fn a_conn_on_another_squeue_is_forwarded_with_fill() {
    let (l, env) = (log(), FakeEnv::new());
    let set: SquedSet<Ev> = SquedSet::new(2, 16);
    let (q0, q1) = (set.for_cpu(0).unwrap().clone(), set.for_cpu(1).unwrap().clone());
    let first =
        ev("a", &l).then(Then::FillOn(q1.clone(), ev("moved", &l))).then(Then::FillOn(q0.clone(), ev("same", &l)));
    assert!(q0.enter(first, SqMode::Process, &env).is_ok());
    assert_eq!(seen(&l), names(&["a", "same"]));
    assert_eq!(q1.queue_len(), 1);
    assert_eq!(env.wakes(), vec![(1, 10 * MS)]);
    q1.worker_drain(&env);
    assert_eq!(seen(&l), names(&["a", "same", "w:moved"]));
}

// ---- stress ------------------------------------------------------------------

struct Shared {
    inside: AtomicBool,
    overlaps: AtomicU64,
    order_errors: AtomicU64,
    ran: AtomicU64,
    by_worker: AtomicU64,
    next: Vec<AtomicU64>,
}

struct Job {
    producer: usize,
    seq: u64,
    sh: Arc<Shared>,
}

impl SqEntry for Job {
    fn process(self, ctx: &mut SqCtx<'_, Job>) {
        if self.sh.inside.swap(true, Ordering::SeqCst) {
            self.sh.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let next = &self.sh.next[self.producer];
        if next.load(Ordering::SeqCst) != self.seq {
            self.sh.order_errors.fetch_add(1, Ordering::SeqCst);
        }
        next.store(self.seq + 1, Ordering::SeqCst);
        self.sh.ran.fetch_add(1, Ordering::SeqCst);
        if ctx.by_worker() {
            self.sh.by_worker.fetch_add(1, Ordering::SeqCst);
        }
        for _ in 0..20 {
            std::hint::spin_loop();
        }
        self.sh.inside.store(false, Ordering::SeqCst);
    }
}

struct ThreadEnv {
    start: Instant,
    wakes: Mutex<u64>,
    cv: Condvar,
}

impl SqEnv for ThreadEnv {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn cpu(&self) -> u32 {
        0
    }
    fn wake_worker(&self, _sq_id: u32, _delay_ns: u64) {
        *self.wakes.lock().unwrap() += 1;
        self.cv.notify_one();
    }
}

#[test]
fn stress_one_thread_inside_fifo_per_producer_every_entry_once() {
    const PRODUCERS: usize = 4;
    const PER: u64 = 20_000;
    let cfg = Arc::new(SqConfig::new());
    cfg.set_drain_ns(200_000).unwrap(); // 0.2 ms: hand over to the worker often
    cfg.set_ip_squeue_wait_ms(0).unwrap();
    let q: Arc<Squeue<Job>> = Arc::new(Squeue::new(0, 0, 256, cfg));
    let env = Arc::new(ThreadEnv { start: Instant::now(), wakes: Mutex::new(0), cv: Condvar::new() });
    let sh = Arc::new(Shared {
        inside: AtomicBool::new(false),
        overlaps: AtomicU64::new(0),
        order_errors: AtomicU64::new(0),
        ran: AtomicU64::new(0),
        by_worker: AtomicU64::new(0),
        next: (0..PRODUCERS).map(|_| AtomicU64::new(0)).collect(),
    });
    let stop = Arc::new(AtomicBool::new(false));

    let worker = {
        let (q, env, stop) = (q.clone(), env.clone(), stop.clone());
        thread::spawn(move || {
            let mut served = 0;
            loop {
                let halt = {
                    let mut g = env.wakes.lock().unwrap();
                    while *g == served && !stop.load(Ordering::SeqCst) {
                        g = env.cv.wait_timeout(g, Duration::from_millis(5)).unwrap().0;
                    }
                    served = *g;
                    stop.load(Ordering::SeqCst)
                };
                q.worker_drain(&*env);
                if halt {
                    break;
                }
            }
        })
    };

    let retries = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (q, env, sh, retries) = (q.clone(), env.clone(), sh.clone(), retries.clone());
            thread::spawn(move || {
                for seq in 0..PER {
                    let mut job = Job { producer: p, seq, sh: sh.clone() };
                    let mode = if seq % 7 == 3 { SqMode::Fill } else { SqMode::Process };
                    loop {
                        match q.enter(job, mode, &*env) {
                            Ok(()) => break,
                            Err(back) => {
                                retries.fetch_add(1, Ordering::SeqCst);
                                job = back;
                                thread::yield_now();
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    env.cv.notify_one();
    worker.join().unwrap();

    let total = PRODUCERS as u64 * PER;
    assert_eq!(sh.overlaps.load(Ordering::SeqCst), 0, "two entries ran at once");
    assert_eq!(sh.order_errors.load(Ordering::SeqCst), 0, "per-producer FIFO broken");
    assert_eq!(sh.ran.load(Ordering::SeqCst), total);
    for n in &sh.next {
        assert_eq!(n.load(Ordering::SeqCst), PER);
    }
    assert_eq!(q.queue_len(), 0);
    assert!(!q.is_busy());
    let s = q.snapshot();
    assert_eq!(s.drops, retries.load(Ordering::SeqCst));
    assert_eq!(s.processed_inline + s.drained_other + s.drained_worker, total);
    assert_eq!(s.drained_worker, sh.by_worker.load(Ordering::SeqCst));
    assert!(s.max_queue_len <= 256);
    eprintln!("stress: {s:?}");
}

#[test]
fn an_entry_that_finds_the_squeue_busy_asks_for_the_worker_after_ip_squeue_wait() {
    for (wait_ms, delay) in [(10u32, 10 * MS), (0, 0)] {
        let (l, env) = (log(), FakeEnv::new());
        let cfg = Arc::new(SqConfig::new());
        cfg.set_ip_squeue_wait_ms(wait_ms).unwrap();
        let q: Squeue<Ev> = Squeue::new(0, 0, 16, cfg);
        let other = env.other(1);
        let first = ev("a", &l)
            .then(Then::EnterFrom(ev("b", &l), SqMode::Process, other.clone()))
            .then(Then::EnterFrom(ev("c", &l), SqMode::Process, other.clone())) // wake-up pending: no second
            .then(Then::WorkerDrain) // the worker comes, finds a thread inside, leaves
            .then(Then::EnterFrom(ev("d", &l), SqMode::Process, other)) // served: asks again
            .then(Then::End);
        assert!(q.enter(first, SqMode::Process, &env).is_ok());
        assert_eq!(seen(&l), names(&["a", "a-end", "b", "c", "d"]), "the insider ran them all");
        assert_eq!(env.wakes(), vec![(0, delay), (0, delay)], "ip_squeue_wait {wait_ms}");
        let s = q.snapshot();
        assert_eq!((s.worker_wakeups, s.drained_worker, s.drained_other), (2, 0, 3));
    }
}
