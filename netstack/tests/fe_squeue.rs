//! The squeue: entry modes, FIFO order, the drain time bound, the worker
//! and its wake-up delay, the queue bound, conn placement, and a
//! multi-threaded stress test that no two entries ever run at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arbalest_netstack::fireengine::squeue::{SQUEUE_DRAIN_NS, SqCtx, SqEntry, SqEnv, SqMode, SqTunables, SquedSet, Squeue};

/// A fake kernel: a clock the test moves, the CPU, recorded wake-ups.
#[derive(Default)]
struct FakeEnv {
    now: AtomicU64,
    cpu: AtomicU64,
    wakes: Mutex<Vec<(usize, u64)>>,
}

impl SqEnv for FakeEnv {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
    fn cpu(&self) -> usize {
        self.cpu.load(Ordering::SeqCst) as usize
    }
    fn wake_worker(&self, sq: usize, delay_ns: u64) {
        self.wakes.lock().unwrap().push((sq, delay_ns));
    }
}

/// What the entries of a test record.
#[derive(Default)]
struct Log {
    order: Mutex<Vec<u32>>,
}

/// A test entry: logs its number, may advance the clock, may fill
/// follow-ups, may enter the squeue again from inside (nested).
struct Op {
    n: u32,
    log: Arc<Log>,
    env: Option<Arc<FakeEnv>>,
    advance_ns: u64,
    follow_ups: Vec<u32>,
    nested: Option<u32>,
}

impl Op {
    fn new(n: u32, log: &Arc<Log>) -> Op {
        Op { n, log: log.clone(), env: None, advance_ns: 0, follow_ups: Vec::new(), nested: None }
    }
}

impl SqEntry for Op {
    fn process(self, ctx: &mut SqCtx<'_, Op>) {
        self.log.order.lock().unwrap().push(self.n);
        if let Some(env) = &self.env {
            env.now.fetch_add(self.advance_ns, Ordering::SeqCst);
        }
        for f in &self.follow_ups {
            assert!(ctx.fill(Op::new(*f, &self.log)).is_ok());
        }
        if let (Some(n), Some(env)) = (self.nested, &self.env) {
            // Entering the squeue we are inside: queued, never recursive.
            ctx.squeue().enter(Op::new(n, &self.log), SqMode::Process, &**env).ok().unwrap();
        }
    }
}

fn squeue(cap: usize) -> (Squeue<Op>, Arc<FakeEnv>, Arc<Log>) {
    (Squeue::new(0, 0, cap, Arc::new(SqTunables::new())), Arc::new(FakeEnv::default()), Arc::new(Log::default()))
}

fn order(log: &Log) -> Vec<u32> {
    log.order.lock().unwrap().clone()
}

#[test]
fn process_on_a_free_squeue_runs_inline_with_no_queueing() {
    let (sq, env, log) = squeue(16);
    for n in 0..5 {
        sq.enter(Op::new(n, &log), SqMode::Process, &*env).ok().unwrap();
    }
    assert_eq!(order(&log), vec![0, 1, 2, 3, 4]);
    let s = sq.snapshot();
    assert_eq!((s.inline, s.queued, s.wakeups, s.worker_drained), (5, 0, 0, 0));
    assert!(env.wakes.lock().unwrap().is_empty());
}

#[test]
fn fill_queues_and_wakes_the_worker_after_ip_squeue_wait() {
    for (wait, want_ns) in [(10u32, 10_000_000u64), (0, 0)] {
        let (sq, env, log) = squeue(16);
        sq.tunables().wait_ms.store(wait, Ordering::Relaxed);
        sq.enter(Op::new(1, &log), SqMode::Fill, &*env).ok().unwrap();
        sq.enter(Op::new(2, &log), SqMode::Fill, &*env).ok().unwrap();
        assert!(order(&log).is_empty(), "a fill never runs inline");
        assert_eq!(*env.wakes.lock().unwrap(), vec![(0, want_ns)], "one wake-up for both, after ip_squeue_wait {wait}");
        assert!(sq.worker_pending());
        sq.worker_drain(&*env);
        assert_eq!(order(&log), vec![1, 2]);
        let s = sq.snapshot();
        assert_eq!((s.queued, s.worker_drained, s.wakeups, s.inline, s.queue_len), (2, 2, 1, 0, 0));
        assert!(!sq.worker_pending());
    }
}

#[test]
fn process_behind_queued_entries_keeps_fifo_and_drains() {
    let (sq, env, log) = squeue(16);
    sq.enter(Op::new(1, &log), SqMode::Fill, &*env).ok().unwrap();
    sq.enter(Op::new(2, &log), SqMode::Fill, &*env).ok().unwrap();
    // The caller comes before the worker did: it queues behind and drains.
    sq.enter(Op::new(3, &log), SqMode::Process, &*env).ok().unwrap();
    assert_eq!(order(&log), vec![1, 2, 3]);
    let s = sq.snapshot();
    assert_eq!((s.inline, s.queued, s.worker_drained), (0, 3, 0));
    // The worker finds nothing.
    sq.worker_drain(&*env);
    assert_eq!(sq.snapshot().worker_drained, 0);
}

#[test]
fn nodrain_runs_inline_only_when_free_and_empty() {
    let (sq, env, log) = squeue(16);
    sq.enter(Op::new(1, &log), SqMode::NoDrain, &*env).ok().unwrap();
    assert_eq!(order(&log), vec![1]);
    sq.tunables().wait_ms.store(0, Ordering::Relaxed);
    sq.enter(Op::new(2, &log), SqMode::Fill, &*env).ok().unwrap();
    sq.enter(Op::new(3, &log), SqMode::NoDrain, &*env).ok().unwrap();
    assert_eq!(order(&log), vec![1], "queued behind 2, not run, not drained");
    assert_eq!(sq.queue_len(), 2);
    sq.worker_drain(&*env);
    assert_eq!(order(&log), vec![1, 2, 3]);
}

#[test]
fn fills_from_inside_run_after_the_current_entry_in_the_same_drain() {
    let (sq, env, log) = squeue(16);
    let mut op = Op::new(1, &log);
    op.follow_ups = vec![10, 11];
    op.env = Some(env.clone());
    op.nested = Some(12);
    sq.enter(op, SqMode::Process, &*env).ok().unwrap();
    sq.enter(Op::new(2, &log), SqMode::Process, &*env).ok().unwrap();
    assert_eq!(order(&log), vec![1, 10, 11, 12, 2]);
    assert!(env.wakes.lock().unwrap().is_empty(), "the caller drained its own follow-ups");
}

#[test]
fn a_callers_drain_stops_at_the_time_limit_and_hands_the_rest_to_the_worker() {
    let (sq, env, log) = squeue(64);
    sq.tunables().wait_ms.store(10, Ordering::Relaxed);
    // Ten queued entries of 5 ms each.
    for n in 0..10 {
        let mut op = Op::new(n, &log);
        op.env = Some(env.clone());
        op.advance_ns = 5_000_000;
        sq.enter(op, SqMode::Fill, &*env).ok().unwrap();
    }
    env.wakes.lock().unwrap().clear();
    // The worker has not run yet (its 10 ms wait); a caller enters.
    sq.enter(Op::new(100, &log), SqMode::Process, &*env).ok().unwrap();
    let done = order(&log).len();
    assert_eq!(done as u64, SQUEUE_DRAIN_NS / 5_000_000, "20 ms of 5 ms entries");
    let s = sq.snapshot();
    assert_eq!(s.time_limited, 1);
    assert_eq!(s.queue_len, 11 - done as u64);
    // The worker was already pending (from the fills): no second wake-up.
    assert!(env.wakes.lock().unwrap().is_empty());
    sq.worker_drain(&*env);
    let mut want: Vec<u32> = (0..10).collect();
    want.push(100);
    assert_eq!(order(&log), want, "FIFO across caller and worker");
    assert_eq!(sq.snapshot().worker_drained, 11 - done as u64);
}

#[test]
fn the_queue_is_bounded_and_refusals_are_counted() {
    let (sq, env, log) = squeue(3);
    for n in 0..3 {
        sq.enter(Op::new(n, &log), SqMode::Fill, &*env).ok().unwrap();
    }
    let back = sq.enter(Op::new(9, &log), SqMode::Fill, &*env);
    assert_eq!(back.err().map(|o| o.n), Some(9));
    let back = sq.enter(Op::new(8, &log), SqMode::Process, &*env);
    assert_eq!(back.err().map(|o| o.n), Some(8), "nobody inside but full: refused too");
    assert_eq!(sq.snapshot().drops, 2);
    sq.worker_drain(&*env);
    assert_eq!(order(&log), vec![0, 1, 2]);
    // After a refusal the squeue is not left marked busy.
    sq.enter(Op::new(4, &log), SqMode::Process, &*env).ok().unwrap();
    assert_eq!(order(&log), vec![0, 1, 2, 4]);
}

#[test]
fn wput_and_fanout_policies() {
    let t = Arc::new(SqTunables::new());
    assert_eq!(t.wput_mode(), SqMode::Process);
    t.wput.store(1, Ordering::Relaxed);
    assert_eq!(t.wput_mode(), SqMode::NoDrain);
    let set: SquedSet<Op> = SquedSet::new(4, 16, t.clone());
    assert_eq!(set.len(), 4);
    assert!((0..8).all(|c| set.pick_for_new_conn(c % 4).id() == c % 4), "fanout 0: the creating CPU's squeue");
    t.fanout.store(1, Ordering::Relaxed);
    let picked: Vec<usize> = (0..8).map(|_| set.pick_for_new_conn(2).id()).collect();
    assert_eq!(picked, vec![0, 1, 2, 3, 0, 1, 2, 3], "fanout 1: round robin");
    assert_eq!(set.get(13).id(), 1, "a stale id never indexes past the set");
    let sq = set.for_cpu(3);
    sq.bind_conn();
    sq.bind_conn();
    sq.unbind_conn();
    assert_eq!(set.stats()[3].conns, 1);
    assert_eq!(set.stats()[3].cpu, 3);
}

/// A stress entry: checks that it runs alone, records its producer's
/// sequence.
struct Stress {
    producer: usize,
    seq: u64,
    inside: Arc<AtomicBool>,
    seen: Arc<Vec<Mutex<Vec<u64>>>>,
}

impl SqEntry for Stress {
    fn process(self, _ctx: &mut SqCtx<'_, Stress>) {
        assert!(!self.inside.swap(true, Ordering::SeqCst), "two entries ran at the same time");
        self.seen[self.producer].lock().unwrap().push(self.seq);
        std::hint::spin_loop();
        self.inside.store(false, Ordering::SeqCst);
    }
}

/// A real clock and a worker thread woken through a channel.
struct ThreadEnv {
    start: std::time::Instant,
    tx: Mutex<std::sync::mpsc::Sender<()>>,
}

impl SqEnv for ThreadEnv {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn cpu(&self) -> usize {
        0
    }
    fn wake_worker(&self, _sq: usize, _delay_ns: u64) {
        let _ = self.tx.lock().unwrap().send(());
    }
}

#[test]
fn stress_four_producers_and_a_worker_never_run_two_entries_at_once() {
    const PRODUCERS: usize = 4;
    const PER: u64 = 20_000;
    let (tx, rx) = std::sync::mpsc::channel();
    let env = Arc::new(ThreadEnv { start: std::time::Instant::now(), tx: Mutex::new(tx) });
    let sq: Arc<Squeue<Stress>> = Arc::new(Squeue::new(0, 0, 1 << 20, Arc::new(SqTunables::new())));
    sq.tunables().wait_ms.store(0, Ordering::Relaxed);
    let inside = Arc::new(AtomicBool::new(false));
    let seen: Arc<Vec<Mutex<Vec<u64>>>> = Arc::new((0..PRODUCERS).map(|_| Mutex::new(Vec::new())).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (sq, env, stop) = (sq.clone(), env.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if rx.recv_timeout(std::time::Duration::from_millis(5)).is_ok() {
                    sq.worker_drain(&*env);
                }
            }
            sq.worker_drain(&*env);
        })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (sq, env, inside, seen) = (sq.clone(), env.clone(), inside.clone(), seen.clone());
            std::thread::spawn(move || {
                for seq in 0..PER {
                    let mode = match seq % 3 {
                        0 => SqMode::Process,
                        1 => SqMode::NoDrain,
                        _ => SqMode::Fill,
                    };
                    let e = Stress { producer: p, seq, inside: inside.clone(), seen: seen.clone() };
                    assert!(sq.enter(e, mode, &*env).is_ok());
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    // Whatever is still queued, the worker drains.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sq.queue_len() > 0 && std::time::Instant::now() < deadline {
        let _ = env.tx.lock().unwrap().send(());
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    stop.store(true, Ordering::SeqCst);
    worker.join().unwrap();
    for (p, s) in seen.iter().enumerate() {
        let s = s.lock().unwrap();
        assert_eq!(s.len() as u64, PER, "producer {p}: every entry ran exactly once");
        assert!(s.windows(2).all(|w| w[0] < w[1]), "producer {p}: in FIFO order");
    }
    let st = sq.snapshot();
    assert_eq!(st.inline + st.queued, PRODUCERS as u64 * PER);
    assert!(st.queued > 0 && st.inline > 0, "{st:?}");
    eprintln!("stress: {st:?}");
}
