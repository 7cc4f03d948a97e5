//! Built-in kernel tests, run by name with `test=NAME` on the kernel
//! command line. Each prints `ktest NAME: PASS` or `ktest NAME: FAIL: why`
//! and ends QEMU with exit value 0 or 1; the deliberate-fault tests end
//! through the exception reporter instead (exit value 102).

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use alloc::sync::Arc;

use crate::dev::qemu_exit;
use crate::sched::{self, Priority};
use crate::time::{calibrate, clock};
use crate::percpu;

/// Address the page-fault test touches (never mapped).
pub const FAULT_ADDR: u64 = 0x0000_7ead_beef_0000;

type TestFn = fn() -> Result<(), String>;

/// Name, description, function.
pub const TESTS: &[(&str, &str, TestFn)] = &[
    ("smp-threads", "a thread bound to each CPU proves it ran there", smp_threads),
    ("page-fault", "touches an unmapped address: must report #PF and exit 102", page_fault),
    ("divide-error", "divides by zero: must report #DE and exit 102", divide_error),
    ("stack-overflow", "overflows a thread stack into its guard page: #PF report, exit 102", stack_overflow),
    ("panic", "panics: must report the panic and exit 101", kernel_panic),
    ("timer-sleep", "a 100 ms timed sleep measures within 10% on the monotonic clock", timer_sleep),
    ("timer-calibration", "TSC and LAPIC-timer calibration agree across HPET and PM timer", timer_calibration),
    ("preempt", "two busy threads of equal priority on one CPU both make progress", preempt),
    ("priority", "a high-priority thread preempts a busy low-priority one at once", priority),
    ("preempt-lock", "a thread holding a data-path spin lock is not preempted until it lets go", preempt_lock),
    ("set-priority", "raising a starved low-priority thread's priority lets it run at once", set_priority),
    ("migrate", "threads moving themselves between CPUs thousands of times while others wake them land where asked", migrate),
    ("ipi", "a wake-up from another CPU reaches a sleeping thread by IPI", ipi),
    ("callout", "per-CPU timer callouts fire on their CPU, in deadline order", callout),
    ("ctxswitch", "benchmark: context-switch cost between two threads on one CPU", ctxswitch),
    ("vwire", "an etherstub with three VNICs, each with an IP instance: all pairs ping each other", vwire),
    ("nospoof", "protection mac-nospoof/ip-nospoof/restricted set through props drops forged Tx and counts it", nospoof),
    ("admin-errors", "bad dladm/dlstat commands exit non-zero, print an error and change nothing (needs net0)", admin_errors),
    ("flow-errors", "bad flowadm/flowstat commands exit non-zero, print an error and change nothing (needs net0)", flow_errors),
    ("vswitch-bench", "benchmark: frames/s and bytes/s between two VNICs on an etherstub (and on net0)", vswitch_bench),
];

/// Runs test `name` and ends QEMU with its result.
pub fn run(name: &str) {
    let Some((_, _, f)) = TESTS.iter().find(|(n, _, _)| *n == name) else {
        kprintln!("unknown kernel test '{name}'; known tests:");
        for (n, d, _) in TESTS {
            kprintln!("  {n:<18} {d}");
        }
        qemu_exit::exit(qemu_exit::EXIT_FAILURE);
    };
    match f() {
        Ok(()) => {
            kprintln!("ktest {name}: PASS");
            qemu_exit::exit(qemu_exit::EXIT_SUCCESS);
        }
        Err(why) => {
            kprintln!("ktest {name}: FAIL: {why}");
            qemu_exit::exit(qemu_exit::EXIT_FAILURE);
        }
    }
}

fn online_cpus() -> Vec<usize> {
    percpu::all().filter(|p| p.online.load(Ordering::Acquire)).map(|p| p.id).collect()
}

fn smp_threads() -> Result<(), String> {
    let cpus = online_cpus();
    let seen: Arc<Vec<AtomicUsize>> = Arc::new((0..cpus.len()).map(|_| AtomicUsize::new(usize::MAX)).collect());
    let mut threads = Vec::new();
    for (i, &cpu) in cpus.iter().enumerate() {
        let seen = seen.clone();
        let t = sched::spawn(&alloc::format!("bound/{cpu}"), Priority::Medium, Some(cpu), move || {
            // Ask the hardware, not the scheduler: the local APIC id.
            let apic = crate::dev::lapic::id();
            let ran_on = percpu::all().find(|p| p.apic_id == apic).map(|p| p.id).unwrap_or(usize::MAX);
            seen[i].store(ran_on, Ordering::SeqCst);
        })
        .ok_or("spawn failed")?;
        threads.push(t);
    }
    for t in &threads {
        t.join();
    }
    for (i, &cpu) in cpus.iter().enumerate() {
        let ran = seen[i].load(Ordering::SeqCst);
        kprintln!("smp-threads: thread bound to cpu {cpu} ran on cpu {ran}");
        if ran != cpu {
            return Err(alloc::format!("thread bound to cpu {cpu} ran on cpu {ran}"));
        }
    }
    if cpus.len() != percpu::count() {
        return Err(alloc::format!("{} of {} CPUs on-line", cpus.len(), percpu::count()));
    }
    Ok(())
}

fn page_fault() -> Result<(), String> {
    kprintln!("page-fault: reading 0x{FAULT_ADDR:016x}");
    // SAFETY: deliberately invalid: this test exists to fault here.
    let v = unsafe { core::ptr::read_volatile(FAULT_ADDR as *const u64) };
    Err(alloc::format!("read of an unmapped address returned {v}"))
}

fn divide_error() -> Result<(), String> {
    let zero = core::hint::black_box(0u64);
    kprintln!("divide-error: dividing by zero");
    let q: u64;
    // SAFETY: deliberately divides by zero to raise #DE (Rust's own `/`
    // would panic before reaching the hardware).
    unsafe { core::arch::asm!("div {z}", z = in(reg) zero, inout("rax") 1u64 => q, inout("rdx") 0u64 => _) };
    Err(alloc::format!("division by zero returned {q}"))
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let buf = core::hint::black_box([depth; 64]);
    recurse(depth + 1) + buf[3]
}

fn stack_overflow() -> Result<(), String> {
    let t = sched::spawn("overflow", Priority::Medium, None, || {
        core::hint::black_box(recurse(0));
    })
    .ok_or("spawn failed")?;
    t.join();
    Err("recursion without end returned".into())
}

fn kernel_panic() -> Result<(), String> {
    panic!("deliberate panic from ktest");
}

fn timer_sleep() -> Result<(), String> {
    let mut worst = 0u64;
    for _ in 0..5 {
        let t0 = clock::now_ns();
        sched::sleep_ms(100);
        let slept = clock::now_ns() - t0;
        kprintln!("timer-sleep: slept {slept} ns for 100000000 ns");
        let err = slept.abs_diff(100_000_000);
        worst = worst.max(err);
        if !(90_000_000..=110_000_000).contains(&slept) {
            return Err(alloc::format!("100 ms sleep took {slept} ns"));
        }
    }
    kprintln!("timer-sleep: worst error {} us", worst / 1000);
    Ok(())
}

fn timer_calibration() -> Result<(), String> {
    // Both runs borrow this CPU's local APIC timer: no tick meanwhile.
    let (a, b) = crate::arch::without_interrupts(|| {
        let a = calibrate::against_hpet(50_000);
        let b = calibrate::against_pmtimer(50_000);
        sched::rearm_tick();
        (a, b)
    });
    let a = a.ok_or("no HPET")?;
    let b = b.ok_or("no ACPI PM timer")?;
    let boot_lapic = calibrate::lapic_hz();
    let boot_tsc = clock::tsc_hz();
    kprintln!("timer-calibration: hpet:    TSC {} Hz, LAPIC timer {} Hz", a.tsc_hz, a.lapic_hz);
    kprintln!("timer-calibration: pmtimer: TSC {} Hz, LAPIC timer {} Hz", b.tsc_hz, b.lapic_hz);
    kprintln!("timer-calibration: boot:    TSC {boot_tsc} Hz, LAPIC timer {boot_lapic} Hz");
    let d_lapic = calibrate::ppm(a.lapic_hz, b.lapic_hz);
    let d_tsc = calibrate::ppm(a.tsc_hz, b.tsc_hz);
    kprintln!("timer-calibration: hpet vs pmtimer: LAPIC {d_lapic} ppm, TSC {d_tsc} ppm");
    // Under emulation the guest can be descheduled inside a window: allow 2%.
    if d_lapic > 20_000 || d_tsc > 20_000 {
        return Err(alloc::format!("sources disagree: LAPIC {d_lapic} ppm, TSC {d_tsc} ppm"));
    }
    // The periodic tick, counted against the monotonic clock, must agree too.
    let p = percpu::this();
    let t0 = clock::now_ns();
    let k0 = p.stats.ticks.load(Ordering::Relaxed);
    sched::sleep_ms(500);
    let k1 = p.stats.ticks.load(Ordering::Relaxed);
    let t1 = clock::now_ns();
    let expect = (t1 - t0) * sched::hz() as u64 / 1_000_000_000;
    kprintln!("timer-calibration: {} ticks in {} ns, expected {}", k1 - k0, t1 - t0, expect);
    if (k1 - k0).abs_diff(expect) * 100 > expect * 5 {
        return Err(alloc::format!("tick rate off: {} ticks, expected {expect}", k1 - k0));
    }
    Ok(())
}

fn busy_pair(prio_a: Priority, prio_b: Priority, ms: u64) -> Result<(u64, u64, u64), String> {
    let cpu = *online_cpus().last().ok_or("no CPU")?;
    let a = Arc::new(AtomicU64::new(0));
    let b = Arc::new(AtomicU64::new(0));
    let end = clock::now_ns() + ms * 1_000_000;
    let (a2, b2) = (a.clone(), b.clone());
    let icsw0 = percpu::get(cpu).unwrap().stats.icsw.load(Ordering::Relaxed);
    let ta = sched::spawn("busy-a", prio_a, Some(cpu), move || {
        while clock::now_ns() < end {
            a2.fetch_add(1, Ordering::Relaxed);
        }
    })
    .ok_or("spawn")?;
    let tb = sched::spawn("busy-b", prio_b, Some(cpu), move || {
        while clock::now_ns() < end {
            b2.fetch_add(1, Ordering::Relaxed);
        }
    })
    .ok_or("spawn")?;
    ta.join();
    tb.join();
    let icsw = percpu::get(cpu).unwrap().stats.icsw.load(Ordering::Relaxed) - icsw0;
    Ok((a.load(Ordering::Relaxed), b.load(Ordering::Relaxed), icsw))
}

fn preempt() -> Result<(), String> {
    let (a, b, icsw) = busy_pair(Priority::Medium, Priority::Medium, 300)?;
    kprintln!("preempt: thread a counted {a}, thread b counted {b}, {icsw} preemptions");
    if a == 0 || b == 0 || icsw < 2 {
        return Err("equal-priority threads did not share the CPU".into());
    }
    let ratio = a.max(b) * 100 / a.min(b).max(1);
    if ratio > 300 {
        return Err(alloc::format!("unfair sharing: {a} vs {b}"));
    }
    Ok(())
}

fn priority() -> Result<(), String> {
    let cpu = *online_cpus().last().ok_or("no CPU")?;
    let stop = Arc::new(AtomicU64::new(0));
    let s2 = stop.clone();
    let low = sched::spawn("busy-low", Priority::Low, Some(cpu), move || {
        while s2.load(Ordering::Relaxed) == 0 {
            core::hint::spin_loop();
        }
    })
    .ok_or("spawn")?;
    sched::sleep_ms(20);
    let woke = Arc::new(AtomicU64::new(0));
    let w2 = woke.clone();
    let t0 = clock::now_ns();
    let high = sched::spawn("high", Priority::High, Some(cpu), move || {
        w2.store(clock::now_ns(), Ordering::SeqCst);
    })
    .ok_or("spawn")?;
    high.join();
    stop.store(1, Ordering::SeqCst);
    low.join();
    let latency = woke.load(Ordering::SeqCst).saturating_sub(t0);
    kprintln!("priority: high-priority thread ran {latency} ns after creation on a busy CPU");
    // A time slice is 10 ticks; preemption must not wait for it.
    let slice_ns = 10 * 1_000_000_000 / sched::hz() as u64;
    if latency >= slice_ns {
        return Err(alloc::format!("waited {latency} ns, a whole time slice"));
    }
    Ok(())
}

fn preempt_lock() -> Result<(), String> {
    // A low-priority thread takes a data-path lock and spins inside it
    // for 30 ms; a high-priority thread woken meanwhile on the same CPU
    // must not run before the lock is released, and must run at once
    // after (the pending preemption happens at the unlock).
    let cpu = *online_cpus().last().ok_or("no CPU")?;
    let lock = Arc::new(arbalest_mac::sync::Mutex::new(0u64));
    let released = Arc::new(AtomicU64::new(0));
    let holding = Arc::new(AtomicU64::new(0));
    let (l2, r2, h2) = (lock.clone(), released.clone(), holding.clone());
    let low = sched::spawn("lock-holder", Priority::Low, Some(cpu), move || {
        let mut g = l2.lock();
        h2.store(1, Ordering::SeqCst);
        let until = clock::now_ns() + 30_000_000;
        while clock::now_ns() < until {
            *g += 1;
            core::hint::spin_loop();
        }
        r2.store(clock::now_ns(), Ordering::SeqCst);
        drop(g);
    })
    .ok_or("spawn")?;
    while holding.load(Ordering::SeqCst) == 0 {
        sched::sleep_ms(1);
    }
    let ran = Arc::new(AtomicU64::new(0));
    let r3 = ran.clone();
    let high = sched::spawn("preempter", Priority::High, Some(cpu), move || {
        r3.store(clock::now_ns(), Ordering::SeqCst);
    })
    .ok_or("spawn")?;
    high.join();
    low.join();
    let (rel, run) = (released.load(Ordering::SeqCst), ran.load(Ordering::SeqCst));
    kprintln!("preempt-lock: lock released at {rel} ns, high-priority thread ran at {run} ns");
    if run < rel {
        return Err(alloc::format!("preempted inside the lock: ran {} ns before the release", rel - run));
    }
    let slice_ns = 10 * 1_000_000_000 / sched::hz() as u64;
    if run - rel >= slice_ns {
        return Err(alloc::format!("the pending preemption waited {} ns after the release", run - rel));
    }
    Ok(())
}

fn set_priority() -> Result<(), String> {
    // A busy high-priority thread starves a low one on the same CPU;
    // raising the low one to high makes it share the CPU at once. (Not on
    // the CPU of this test's own thread, which the hog would starve too.)
    let cpu = *online_cpus().last().ok_or("no CPU")?;
    if cpu == 0 {
        return Err(String::from("needs 2 CPUs"));
    }
    let stop = Arc::new(AtomicU64::new(0));
    let count = Arc::new(AtomicU64::new(0));
    let (s1, s2, c2) = (stop.clone(), stop.clone(), count.clone());
    let hog = sched::spawn("hog", Priority::High, Some(cpu), move || {
        while s1.load(Ordering::Relaxed) == 0 {
            core::hint::spin_loop();
        }
    })
    .ok_or("spawn")?;
    let low = sched::spawn("starved", Priority::Low, Some(cpu), move || {
        while s2.load(Ordering::Relaxed) == 0 {
            c2.fetch_add(1, Ordering::Relaxed);
        }
    })
    .ok_or("spawn")?;
    sched::sleep_ms(50);
    let starved = count.load(Ordering::Relaxed);
    sched::set_priority(&low, Priority::High);
    sched::sleep_ms(50);
    let after = count.load(Ordering::Relaxed);
    stop.store(1, Ordering::SeqCst);
    hog.join();
    low.join();
    kprintln!("set-priority: {starved} iterations at low priority beside a busy high thread, {} after the raise", after - starved);
    if starved > 0 {
        return Err(alloc::format!("the low thread ran ({starved} iterations) beside a busy high one"));
    }
    if after == starved {
        return Err(String::from("the raised thread did not run"));
    }
    Ok(())
}

fn migrate() -> Result<(), String> {
    // Four threads hop between all CPUs, checking after every hop that
    // they run where they asked to, and block right after most hops; two
    // more keep waking them through a wait queue meanwhile, so that
    // wake-ups race the moves (a waker that read a thread's old CPU must
    // not queue it there once it has moved and blocked on the new one).
    // Every other round a hopper also leaves a stale timed-wait entry on
    // the CPU it leaves and blocks on the next CPU past that entry's
    // deadline: the old CPU's timer must wake it where it lives.
    let cpus = online_cpus();
    if cpus.len() < 2 {
        return Err(String::from("needs 2 CPUs"));
    }
    const HOPS: usize = 600;
    const HOPPERS: usize = 4;
    let wq = Arc::new(sched::WaitQueue::new());
    let done = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicUsize::new(0));
    let mut hoppers = Vec::new();
    for k in 0..HOPPERS {
        let (cpus, wq, done, wrong) = (cpus.clone(), wq.clone(), done.clone(), wrong.clone());
        hoppers.push(
            sched::spawn(&alloc::format!("hopper{k}"), Priority::Medium, Some(cpus[k % cpus.len()]), move || {
                let here = |want: usize| sched::current_cpu() == want && sched::current().cpu() == want;
                for i in 0..HOPS {
                    let to = cpus[(i + k) % cpus.len()];
                    if !sched::migrate_self(to) || !here(to) {
                        wrong.fetch_add(1, Ordering::SeqCst);
                    }
                    // Block at once on the new CPU until a waker comes.
                    let t = clock::now_ns();
                    wq.wait_until_deadline(|| clock::now_ns() > t + 20_000, t + 1_000_000);
                    if !here(to) {
                        wrong.fetch_add(1, Ordering::SeqCst);
                    }
                    if i % 2 == 0 {
                        let t0 = clock::now_ns();
                        wq.wait_until_deadline(|| clock::now_ns() > t0 + 100_000, t0 + 2_000_000);
                        let next = cpus[(i + k + 1) % cpus.len()];
                        sched::migrate_self(next);
                        let t1 = clock::now_ns();
                        wq.wait_until_deadline(|| false, t1 + 3_000_000);
                        if !here(next) {
                            wrong.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
            .ok_or("spawn")?,
        );
    }
    let mut wakers = Vec::new();
    for w in 0..2usize {
        let (w2, d2) = (wq.clone(), done.clone());
        wakers.push(
            sched::spawn(&alloc::format!("waker{w}"), Priority::Medium, Some(cpus[w % cpus.len()]), move || {
                while d2.load(Ordering::SeqCst) < HOPPERS {
                    w2.wake_all();
                    sched::yield_now();
                }
            })
            .ok_or("spawn")?,
        );
    }
    for h in hoppers.into_iter().chain(wakers) {
        h.join();
    }
    let bad = wrong.load(Ordering::SeqCst);
    kprintln!("migrate: {} moves across {} CPUs by {HOPPERS} threads, {bad} found the thread elsewhere", HOPPERS * (HOPS + HOPS / 2), cpus.len());
    if bad != 0 {
        return Err(alloc::format!("{bad} times a thread ran on another CPU than it lives on"));
    }
    Ok(())
}

fn ipi() -> Result<(), String> {
    let cpus = online_cpus();
    if cpus.len() < 2 {
        kprintln!("ipi: one CPU only; checking a local wake-up instead");
    }
    let target = *cpus.last().unwrap();
    let wq = Arc::new(sched::WaitQueue::new());
    let flag = Arc::new(AtomicU64::new(0));
    let (wq2, f2) = (wq.clone(), flag.clone());
    let ipis0 = percpu::get(target).unwrap().stats.ipis.load(Ordering::Relaxed);
    let t = sched::spawn("waiter", Priority::Medium, Some(target), move || {
        wq2.wait_until(|| f2.load(Ordering::SeqCst) != 0);
    })
    .ok_or("spawn")?;
    sched::sleep_ms(50);
    let t0 = clock::now_ns();
    flag.store(1, Ordering::SeqCst);
    wq.wake_all();
    t.join();
    let dt = clock::now_ns() - t0;
    let ipis = percpu::get(target).unwrap().stats.ipis.load(Ordering::Relaxed) - ipis0;
    kprintln!("ipi: waiter on cpu {target} woke after {dt} ns, {ipis} IPIs received");
    if cpus.len() >= 2 && ipis == 0 {
        return Err("no IPI reached the target CPU".into());
    }
    Ok(())
}

fn callout() -> Result<(), String> {
    let cpus = online_cpus();
    let order = Arc::new(spin::Mutex::new(Vec::new()));
    let now = clock::now_ns();
    for (k, delay_ms) in [30u64, 10, 20].into_iter().enumerate() {
        let cpu = cpus[k % cpus.len()];
        let o = order.clone();
        sched::callout_at(cpu, now + delay_ms * 1_000_000, move || {
            o.lock().push((delay_ms, percpu::cpu_id(), cpu));
        });
    }
    sched::sleep_ms(100);
    let got = order.lock().clone();
    kprintln!("callout: fired (delay ms, ran on, asked for) {got:?}");
    if got.len() != 3 {
        return Err(alloc::format!("{} of 3 callouts fired", got.len()));
    }
    if got.iter().any(|&(_, ran, want)| ran != want) {
        return Err("a callout ran on the wrong CPU".into());
    }
    if cpus.len() == 1 && got.iter().map(|g| g.0).collect::<Vec<_>>() != [10, 20, 30] {
        return Err("callouts out of deadline order".into());
    }
    Ok(())
}

fn ctxswitch() -> Result<(), String> {
    let cpu = *online_cpus().last().ok_or("no CPU")?;
    const ROUNDS: u64 = 20_000;
    let t0 = Arc::new(AtomicU64::new(0));
    let t1 = Arc::new(AtomicU64::new(0));
    let mut ts = Vec::new();
    for i in 0..2 {
        let (t0, t1) = (t0.clone(), t1.clone());
        ts.push(
            sched::spawn("yield", Priority::High, Some(cpu), move || {
                if i == 0 {
                    t0.store(clock::now_ns(), Ordering::SeqCst);
                }
                for _ in 0..ROUNDS {
                    sched::yield_now();
                }
                t1.store(clock::now_ns(), Ordering::SeqCst);
            })
            .ok_or("spawn")?,
        );
    }
    for t in &ts {
        t.join();
    }
    let elapsed = t1.load(Ordering::SeqCst) - t0.load(Ordering::SeqCst);
    let switches = 2 * ROUNDS;
    kprintln!("ctxswitch: {} ns per switch ({switches} switches between two threads by yield, cpu {cpu})", elapsed / switches);
    Ok(())
}

fn vwire() -> Result<(), String> {
    use arbalest_mac::link::{self, MacSpec};
    use arbalest_netstack::{Ipv4Addr, Ipv4Net};
    let dma = Arc::new(crate::dma::KernelDma);
    link::create_etherstub("vwstub0", dma).map_err(|e| alloc::format!("create-etherstub: {e}"))?;
    let mut ifs = Vec::new();
    for i in 1..=3u8 {
        let name = alloc::format!("vwnic{i}");
        let v = link::create_vnic(&name, "vwstub0", MacSpec::Random, 0, crate::arch::cpu::rdtsc() ^ i as u64)
            .map_err(|e| alloc::format!("create-vnic {name}: {e}"))?;
        let ipif = crate::net::ip::create(&name, None).map_err(|e| alloc::format!("IP on {name}: {e}"))?;
        let net = Ipv4Net::new(Ipv4Addr::new(192, 168, 77, i), 24).unwrap();
        ipif.stack.add_addr(&alloc::format!("{name}/v4"), net).map_err(|e| alloc::format!("{e}"))?;
        kprintln!("vwire: {name} {} over vwstub0, 192.168.77.{i}/24", link::fmt_mac(&v.addr()));
        ifs.push(ipif);
    }
    for (a, from) in ifs.iter().enumerate() {
        for b in 0..3u8 {
            if a as u8 == b {
                continue;
            }
            let dst = Ipv4Addr::new(192, 168, 77, b + 1);
            let id = from.stack.ping_open().map_err(|e| alloc::format!("{e}"))?;
            let mut ok = false;
            for seq in 0..5u16 {
                from.stack.ping_send(id, dst, seq, &[0x42; 56]).map_err(|e| alloc::format!("{e}"))?;
                from.kick();
                let end = clock::now_ns() + 500_000_000;
                while clock::now_ns() < end {
                    if from.stack.ping_recv(id).is_some() {
                        ok = true;
                        break;
                    }
                    sched::sleep_ms(5);
                }
                if ok {
                    break;
                }
            }
            from.stack.ping_close(id);
            kprintln!("vwire: {} -> {dst}: {}", from.link, if ok { "alive" } else { "no answer" });
            if !ok {
                return Err(alloc::format!("{} could not ping {dst}", from.link));
            }
        }
    }
    for v in link::vnics().iter().filter(|v| v.name().starts_with("vwnic")) {
        let c = v.stats.snapshot();
        kprintln!("vwire: {} local in {} out {}", v.name(), c.local_ipackets, c.local_opackets);
        if c.local_ipackets == 0 || c.local_opackets == 0 {
            return Err(alloc::format!("{}: nothing switched locally", v.name()));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The MAC layer (issue 5): protection on a booted kernel, refused admin
// commands, and the speed of the in-kernel virtual switch.

/// Counts what a MAC client receives (the frames are dropped at once, so
/// their buffers go back to their pool).
#[derive(Default)]
struct RxCount {
    frames: AtomicU64,
    bytes: AtomicU64,
}

impl RxCount {
    fn attach(self: &Arc<Self>, c: &arbalest_mac::client::MacClient) {
        let me = self.clone();
        c.set_rx(Some(Arc::new(move |chain: arbalest_mac::MblkChain| {
            me.frames.fetch_add(chain.len() as u64, Ordering::Relaxed);
            me.bytes.fetch_add(chain.bytes() as u64, Ordering::Relaxed);
        })));
    }

    fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
}

/// An Ethernet frame.
fn eth_frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4/UDP frame from `src_ip` (header checksum filled in).
fn ipv4_udp_frame(dst: [u8; 6], src: [u8; 6], src_ip: [u8; 4], dst_ip: [u8; 4]) -> Vec<u8> {
    let data = b"arbalest nospoof";
    let udp_len = 8 + data.len();
    let total = 20 + udp_len;
    let mut ip = Vec::with_capacity(total);
    ip.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src_ip);
    ip.extend_from_slice(&dst_ip);
    let mut sum = 0u32;
    for w in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    ip.extend_from_slice(&[0x9c, 0x40, 0, 9, (udp_len >> 8) as u8, udp_len as u8, 0, 0]);
    ip.extend_from_slice(data);
    eth_frame(dst, src, 0x0800, &ip)
}

/// A broadcast ARP request from `sender_mac`/`sender_ip` for `target_ip`.
fn arp_request(src: [u8; 6], sender_mac: [u8; 6], sender_ip: [u8; 4], target_ip: [u8; 4]) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    a.extend_from_slice(&sender_mac);
    a.extend_from_slice(&sender_ip);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target_ip);
    eth_frame([0xff; 6], src, 0x0806, &a)
}

/// Sends `f` through `c` (the client's own Tx path: protection, VLAN,
/// maxbw, switch).
fn client_send(c: &Arc<arbalest_mac::client::MacClient>, f: &[u8]) -> Result<(), String> {
    let mut m = c.alloc_tx(f.len()).ok_or_else(|| alloc::format!("{}: no Tx buffer", c.name()))?;
    m.data_mut().copy_from_slice(f);
    c.tx(m);
    Ok(())
}

/// Sets a link property through the property registry, so that the
/// kernel's change hook applies it to the data path (as `dladm` does).
fn set_linkprop(link: &str, name: &str, value: &str) -> Result<(), String> {
    use arbalest_mac::props;
    let l = arbalest_mac::link::datalink(link).ok_or_else(|| alloc::format!("no link {link}"))?;
    let lim = props::Limits::of(&l, online_cpus().len());
    props::set(link, name, value, &lim).map(|_| ()).map_err(|e| alloc::format!("set {name}={value} on {link}: {e}"))
}

fn nospoof() -> Result<(), String> {
    use arbalest_mac::link::{self, MacSpec};
    use arbalest_mac::props;
    let dma = Arc::new(crate::dma::KernelDma);
    link::create_etherstub("nsstub0", dma).map_err(|e| alloc::format!("create-etherstub: {e}"))?;
    let mk = |name: &str, salt: u64| {
        link::create_vnic(name, "nsstub0", MacSpec::Random, 0, crate::arch::cpu::rdtsc() ^ salt)
            .map_err(|e| alloc::format!("create-vnic {name}: {e}"))
    };
    let a = mk("nsnic1", 1)?;
    let b = mk("nsnic2", 2)?;
    let (rx_a, rx_b) = (Arc::new(RxCount::default()), Arc::new(RxCount::default()));
    rx_a.attach(&a);
    rx_b.attach(&b);
    let (ma, mb) = (a.addr(), b.addr());
    let forged = [0x02, 0x00, 0x5e, 0xde, 0xad, 0x01];
    kprintln!("nospoof: nsnic1 {} and nsnic2 {} on etherstub nsstub0", link::fmt_mac(&ma), link::fmt_mac(&mb));

    // The frames: L2 (local experimental ethertype), IPv4 and ARP, honest
    // and forged.
    let l2 = |src: [u8; 6]| eth_frame(mb, src, 0x88b5, &[0x5a; 46]);
    let ip = |src: [u8; 6], ip: [u8; 4]| ipv4_udp_frame(mb, src, ip, [192, 168, 50, 2]);
    let arp = |src: [u8; 6], ip: [u8; 4]| arp_request(src, src, ip, [192, 168, 50, 2]);
    let allowed = [192, 168, 50, 1];
    let in_net = [192, 168, 60, 77];
    let outside = [192, 168, 50, 9];

    let mut failures: Vec<String> = Vec::new();
    let mut expect_drops = 0u64;
    // Sends one frame 3 times from `from` and checks it reached `to` each
    // time (`pass`) or never, with `from`'s spoof_drops counting it.
    let mut case = |phase: &str, what: &str, from: &Arc<arbalest_mac::client::MacClient>, to: &RxCount, f: &[u8], pass: bool| {
        const N: u64 = 3;
        let (r0, s0) = (to.frames(), from.stats.snapshot().spoof_drops);
        for _ in 0..N {
            if let Err(e) = client_send(from, f) {
                failures.push(alloc::format!("{phase}: {what}: {e}"));
                return;
            }
        }
        let (got, drops) = (to.frames() - r0, from.stats.snapshot().spoof_drops - s0);
        let ok = if pass { got == N && drops == 0 } else { got == 0 && drops == N };
        if !pass && Arc::ptr_eq(from, &a) {
            expect_drops += N;
        }
        kprintln!(
            "nospoof: [{phase}] {what}: delivered {got}/{N}, spoof_drops +{drops}: {}",
            if ok { "ok" } else if pass { "WRONG (should pass)" } else { "WRONG (should be dropped)" }
        );
        if !ok {
            failures.push(alloc::format!("[{phase}] {what}: delivered {got} of {N}, spoof_drops +{drops}, expected {}", if pass { "all delivered, no drop" } else { "none delivered, all counted" }));
        }
    };

    // Without protection a forged frame goes through: the checks below
    // can only pass because of the property.
    let p = "none";
    case(p, "honest L2", &a, &rx_b, &l2(ma), true);
    case(p, "forged source MAC", &a, &rx_b, &l2(forged), true);
    case(p, "IPv4 from outside allowed-ips", &a, &rx_b, &ip(ma, outside), true);

    set_linkprop("nsnic1", "protection", "mac-nospoof")?;
    let p = "mac-nospoof";
    kprintln!("nospoof: protection={} on nsnic1 (client: {:?})", props::get("nsnic1").protection, a.protection());
    case(p, "honest L2", &a, &rx_b, &l2(ma), true);
    case(p, "forged source MAC (L2)", &a, &rx_b, &l2(forged), false);
    case(p, "forged source MAC (IPv4)", &a, &rx_b, &ip(forged, allowed), false);
    case(p, "forged source MAC (ARP)", &a, &rx_b, &arp(forged, allowed), false);
    case(p, "honest IPv4 from any address", &a, &rx_b, &ip(ma, outside), true);
    case(p, "the other VNIC is not protected", &b, &rx_a, &eth_frame(ma, forged, 0x88b5, &[1; 46]), true);

    set_linkprop("nsnic1", "protection", "ip-nospoof")?;
    set_linkprop("nsnic1", "allowed-ips", "192.168.50.1,192.168.60.0/24")?;
    let p = "ip-nospoof";
    kprintln!("nospoof: protection={} allowed-ips=192.168.50.1,192.168.60.0/24 on nsnic1", props::get("nsnic1").protection);
    case(p, "IPv4 from an allowed address", &a, &rx_b, &ip(ma, allowed), true);
    case(p, "IPv4 from an allowed network", &a, &rx_b, &ip(ma, in_net), true);
    case(p, "IPv4 from outside allowed-ips", &a, &rx_b, &ip(ma, outside), false);
    case(p, "ARP from an allowed address", &a, &rx_b, &arp(ma, allowed), true);
    case(p, "ARP from outside allowed-ips", &a, &rx_b, &arp(ma, outside), false);
    case(p, "non-IP frame", &a, &rx_b, &l2(ma), true);
    case(p, "forged MAC, allowed IP (mac-nospoof is off now)", &a, &rx_b, &ip(forged, allowed), true);

    set_linkprop("nsnic1", "protection", "mac-nospoof,ip-nospoof")?;
    let p = "mac-nospoof,ip-nospoof";
    case(p, "honest MAC and IP", &a, &rx_b, &ip(ma, allowed), true);
    case(p, "forged MAC, allowed IP", &a, &rx_b, &ip(forged, allowed), false);
    case(p, "honest MAC, IP outside", &a, &rx_b, &ip(ma, outside), false);

    set_linkprop("nsnic1", "protection", "restricted")?;
    let p = "restricted";
    case(p, "IPv4", &a, &rx_b, &ip(ma, outside), true);
    case(p, "ARP", &a, &rx_b, &arp(ma, outside), true);
    case(p, "ethertype 0x88b5", &a, &rx_b, &l2(ma), false);

    props::reset("nsnic1", "protection").map_err(|e| alloc::format!("reset protection: {e}"))?;
    let p = "reset";
    case(p, "forged source MAC", &a, &rx_b, &l2(forged), true);
    case(p, "IPv4 from outside allowed-ips", &a, &rx_b, &ip(ma, outside), true);
    case(p, "ethertype 0x88b5", &a, &rx_b, &l2(ma), true);

    let k = a.stats.snapshot();
    kprintln!("nospoof: nsnic1 opackets {} spoof_drops {} tx_drops {}", k.opackets, k.spoof_drops, k.tx_drops);
    a.set_rx(None);
    b.set_rx(None);
    for n in ["nsnic1", "nsnic2"] {
        link::delete_vnic(n).map_err(|e| alloc::format!("delete-vnic {n}: {e}"))?;
        props::forget(n);
    }
    link::delete_etherstub("nsstub0").map_err(|e| alloc::format!("delete-etherstub: {e}"))?;
    if !failures.is_empty() {
        return Err(alloc::format!("{} case(s) wrong: {}", failures.len(), failures.join("; ")));
    }
    if k.spoof_drops != expect_drops {
        return Err(alloc::format!("nsnic1 counted {} spoof drops in all, expected {expect_drops}", k.spoof_drops));
    }
    Ok(())
}

/// A shell host for running command lines from a kernel test: real clock
/// and sleep; `interrupted` is always true, so a repeating command that
/// should have been refused stops after one report instead of hanging.
struct KtestHost;

impl crate::shell::ShellHost for KtestHost {
    fn cpus(&self) -> Vec<crate::shell::CpuInfo> {
        Vec::new()
    }
    fn cpu_stats(&self) -> Vec<crate::shell::CpuStats> {
        Vec::new()
    }
    fn monotonic_ns(&self) -> u64 {
        clock::now_ns()
    }
    fn unix_time(&self) -> u64 {
        clock::unix_now()
    }
    fn boot_unix_time(&self) -> u64 {
        clock::boot_unix()
    }
    fn load_average(&self) -> [u32; 3] {
        [0; 3]
    }
    fn sleep_ms(&self, ms: u64) {
        sched::sleep_ms(ms)
    }
    fn interrupted(&self) -> bool {
        true
    }
    fn clear_interrupt(&self) {}
    fn version(&self) -> &str {
        "ktest"
    }
}

/// The kernel's network commands in a shell of their own.
struct NetShell(crate::shell::Shell);

impl NetShell {
    fn new() -> NetShell {
        let mut sh = crate::shell::Shell::without_builtins();
        for c in crate::net::cmds::COMMANDS {
            sh.register(*c);
        }
        NetShell(sh)
    }

    /// Runs `line`: (exit status, output with `\n` newlines).
    fn run(&mut self, line: &str) -> (i32, String) {
        let mut out = String::new();
        let status = match self.0.execute(line, &KtestHost, &mut out) {
            crate::shell::Outcome::Status(s) => s,
            crate::shell::Outcome::Exit(c) => 1000 + c as i32,
        };
        (status, out.replace("\r\n", "\n"))
    }

    /// Runs `line`, which must succeed.
    fn ok(&mut self, line: &str) -> Result<String, String> {
        let (st, out) = self.run(line);
        if st != 0 {
            return Err(alloc::format!("`{line}` exited {st}:\n{out}"));
        }
        Ok(out)
    }

    /// Everything an admin error could change: links, VNICs, etherstubs,
    /// properties, ring-group clients, IP interfaces.
    fn state(&mut self) -> String {
        let mut s = String::new();
        for c in [
            "dladm show-link",
            "dladm show-vnic",
            "dladm show-etherstub",
            "dladm show-linkprop",
            "dladm show-phys -H",
            "ipadm show-if",
            "flowadm show-flow",
            "flowadm show-flowprop",
        ] {
            let (st, out) = self.run(c);
            s.push_str(&alloc::format!("$ {c} (exit {st})\n{out}"));
        }
        s
    }
}

/// A 32-character link name (one over illumos' limit) and a 31-character one.
pub const NAME_32: &str = "abcdefghijklmnopqrstuvwxyzabcde1";
pub const NAME_31: &str = "abcdefghijklmnopqrstuvwxyzabcd1";

/// Command lines that must fail with an error and change nothing, given
/// etherstub `stub1`, `vnic1` over net0 with an IP interface and
/// maxbw=100M,priority=low, and `vnic2` over stub1. The host test
/// `tests/tests/net_mac_admin.rs` runs the same list on the serial shell.
pub const ADMIN_BAD: &[&str] = &[
    "dladm",
    "dladm frobnicate",
    "dladm show-link nosuch0",
    "dladm show-link 1abc",
    "dladm show-link -z",
    "dladm show-link -p",
    "dladm show-link -p -o all",
    "dladm show-link -o nosuchfield",
    "dladm show-link net0 vnic1",
    "dladm show-link -s nosuch0",
    "dladm show-phys vnic1",
    "dladm show-phys nosuch0",
    "dladm show-phys -H -o bogus",
    "dladm show-vnic net0",
    "dladm show-vnic nosuch0",
    "dladm show-vnic -l nosuch0",
    "dladm show-etherstub vnic1",
    "dladm create-vnic vnic9",
    "dladm create-vnic -l net0",
    "dladm create-vnic -l nosuch0 vnic9",
    "dladm create-vnic -l net0 vnic1",
    "dladm create-vnic -l stub1 vnic2",
    "dladm create-vnic -l net0 net0",
    "dladm create-vnic -l net0 stub1",
    "dladm create-vnic -l net0 1abc",
    "dladm create-vnic -l net0 abcdefghijklmnopqrstuvwxyzabcde1",
    "dladm create-vnic -l net0 x!",
    "dladm create-vnic -l net0 vnic",
    "dladm create-vnic -l net0 vnic01",
    "dladm create-vnic -l vnic1 vnic9",
    "dladm create-vnic -l net0 -v 5000 vnic9",
    "dladm create-vnic -l net0 -v 0 vnic9",
    "dladm create-vnic -l net0 -v x vnic9",
    "dladm create-vnic -l net0 -m 1:2:3:4:5 vnic9",
    "dladm create-vnic -l net0 -m 2:2:3:4:5:6:7 vnic9",
    "dladm create-vnic -l net0 -m zz:0:0:0:0:1 vnic9",
    "dladm create-vnic -l net0 -m 1:0:5e:0:0:1 vnic9",
    "dladm create-vnic -l net0 -m 0:0:0:0:0:0 vnic9",
    "dladm create-vnic -l net0 -m 52:54:0:12:34:56 vnic9",
    "dladm create-vnic -l net0 -m factory vnic9",
    "dladm create-vnic -l net0 -m random -m random vnic9",
    "dladm create-vnic -l net0 -v 1 -v 2 vnic9",
    "dladm create-vnic -l stub1 -p rxrings=1 vnic9",
    "dladm create-vnic -l net0 -p protection=mac-nospoof,protection=ip-nospoof vnic9",
    "dladm create-vnic -l net0 -p maxbw=1K vnic9",
    "dladm create-vnic -l net0 -p cpus=99 vnic9",
    "dladm create-vnic -l net0 -p priority=urgent vnic9",
    "dladm create-vnic -l net0 -p protection=nospoof vnic9",
    "dladm create-vnic -l net0 -p allowed-ips=10.0.0.1/33 vnic9",
    "dladm create-vnic -l net0 -p mtu=9000 vnic9",
    "dladm create-vnic -l net0 -p nosuch=1 vnic9",
    "dladm create-vnic -l net0 -p maxbw=10M,maxbw=20M vnic9",
    "dladm create-vnic -l net0 -p maxbw=10M,cpus=99 vnic9",
    "dladm create-vnic -l net0 vnic9 vnic10",
    "dladm create-vnic -q -l net0 vnic9",
    "dladm create-vnic -l net0 -l stub1 vnic9",
    "dladm delete-vnic",
    "dladm delete-vnic nosuch0",
    "dladm delete-vnic net0",
    "dladm delete-vnic stub1",
    "dladm delete-vnic vnic1",
    "dladm delete-vnic 1abc",
    "dladm delete-vnic vnic2 vnic1",
    "dladm create-etherstub",
    "dladm create-etherstub stub1",
    "dladm create-etherstub vnic1",
    "dladm create-etherstub net0",
    "dladm create-etherstub 1abc",
    "dladm create-etherstub x!",
    "dladm create-etherstub abcdefghijklmnopqrstuvwxyzabcde1",
    "dladm create-etherstub stub8 stub9",
    "dladm delete-etherstub",
    "dladm delete-etherstub nosuch0",
    "dladm delete-etherstub vnic1",
    "dladm delete-etherstub net0",
    "dladm delete-etherstub stub1",
    "dladm set-linkprop -p maxbw=1K vnic1",
    "dladm set-linkprop -p maxbw=0 vnic1",
    "dladm set-linkprop -p maxbw=abc vnic1",
    "dladm set-linkprop -p cpus=99 vnic1",
    "dladm set-linkprop -p cpus=0-99 vnic1",
    "dladm set-linkprop -p cpus= vnic1",
    "dladm set-linkprop -p priority=urgent vnic1",
    "dladm set-linkprop -p protection=mac-nospoof,bogus vnic1",
    "dladm set-linkprop -p allowed-ips=10.0.0.300 vnic1",
    "dladm set-linkprop -p maxbw=10M,cpus=99 vnic1",
    "dladm set-linkprop -p priority=high,priority=low vnic1",
    "dladm set-linkprop -p mtu=1400 vnic1",
    "dladm set-linkprop -p cpus-effective=0 vnic1",
    "dladm set-linkprop -p rxrings=2 vnic1",
    "dladm set-linkprop -p nosuch=1 vnic1",
    "dladm set-linkprop -p maxbw=10M stub1",
    "dladm set-linkprop -p maxbw=10M nosuch0",
    "dladm set-linkprop -p maxbw=10M 1abc",
    "dladm set-linkprop vnic1",
    "dladm set-linkprop -p =5 vnic1",
    "dladm set-linkprop -p maxbw vnic1",
    "dladm set-linkprop -p maxbw=10M",
    "dladm set-linkprop -p maxbw=10M vnic1 vnic2",
    "dladm reset-linkprop -p mtu vnic1",
    "dladm reset-linkprop -p nosuch vnic1",
    "dladm reset-linkprop -p maxbw,maxbw vnic1",
    "dladm reset-linkprop -p maxbw stub1",
    "dladm reset-linkprop nosuch0",
    "dladm reset-linkprop",
    "dladm show-linkprop -p nosuch vnic1",
    "dladm show-linkprop nosuch0",
    "dladm show-linkprop -c",
    "dladm show-linkprop -c -o all",
    "dladm show-linkprop -o bogus vnic1",
    "dladm show-linkprop vnic1 vnic2",
    "dladm help nosuch",
    "dlstat nosuch0",
    "dlstat frob-x",
    "dlstat 1abc",
    "dlstat -r -t",
    "dlstat -u X",
    "dlstat -i 0",
    "dlstat -i abc",
    "dlstat -p",
    "dlstat -u R -p -o link",
    "dlstat -z",
    "dlstat -o bogus",
    "dlstat net0 vnic1",
    "dlstat show-link nosuch0",
    "dlstat show-link -F",
    "dlstat show-link -a -r",
    "dlstat show-link -o bogus",
    "dlstat show-link -r -o bogus vnic1",
    "dlstat show-link -r -t",
    "dlstat show-link -i -1",
    "dlstat show-phys nosuch0",
    "dlstat show-phys vnic1",
    "dlstat show-phys -r stub1",
    "dlstat show-phys -z",
    "dlstat show-phys -r -t",
    "dlstat show-phys -o bogus",
    "dlstat help nosuch",
];

fn admin_errors() -> Result<(), String> {
    refusals(
        "admin-errors",
        &[
            "dladm create-etherstub stub1",
            "dladm create-vnic -l net0 vnic1",
            "dladm create-vnic -l stub1 vnic2",
            "dladm set-linkprop -p maxbw=100M,priority=low vnic1",
            "ipadm create-addr -T static -a 10.0.0.5/24 vnic1",
        ],
        ADMIN_BAD,
        &[
            &alloc::format!("dladm create-vnic -l net0 -v 4094 -m 2:8:20:0:0:99 {NAME_31}"),
            &alloc::format!("dladm delete-vnic {NAME_31}"),
            "dladm create-etherstub stub9",
            "dladm delete-etherstub stub9",
            "dladm set-linkprop -p maxbw=1.2M vnic1",
            "dladm set-linkprop -p maxbw=100M vnic1",
            "dlstat show-link -r -p -o link,id vnic1",
        ],
    )
}

/// Command lines that must fail with an error and change nothing, given
/// `vnic1` over net0, flow `httpsflow` (`transport=tcp,local_port=443`,
/// maxbw 100M) on net0 and flow `udp2` on `vnic2`: the manual's invalid
/// examples first.
pub const FLOW_BAD: &[&str] = &[
    "flowadm add-flow -l vnic1 -a remote_port=25 flow25",
    "flowadm add-flow -l vnic1 -a transport=icmpv6,remote_port=16 flow16",
    "flowadm add-flow -l vnic1 -a local_port=80,local_port=8080 httpflow",
    "flowadm add-flow -l net0 -a local_ip=192.1.168.157 ngzflow",
    "flowadm add-flow -l vnic1 -a transport=udp abcdefghijklmnopqrstuvwxyzabcde1",
    "flowadm add-flow -l vnic1 -a transport=udp 1flow",
    "flowadm add-flow -l vnic1 -a transport=udp httpsflow",
    "flowadm add-flow -l nosuch0 -a transport=udp udpx",
    "flowadm set-flowprop -p hwflow=on httpsflow",
    "flowadm add-flow -l vnic1 -a transport=icmp,local_port=7 icmp7",
    "flowadm add-flow -l vnic1 -a transport=tcp,transport=udp twice",
    "flowadm add-flow -l net0 -a transport=tcp,local_port=443 https2",
    "flowadm add-flow -l net0 -a transport=udp udponly",
    "flowadm add-flow -l vnic1 -a transport=frob tf",
    "flowadm add-flow -l vnic1 -a colour=red tf",
    "flowadm add-flow -l vnic1 -a transport=tcp,local_port=70000 tf",
    "flowadm add-flow -l vnic1 -a transport=tcp,local_port=http tf",
    "flowadm add-flow -l vnic1 -a local_ip=10.0.0.300 tf",
    "flowadm add-flow -l vnic1 -a remote_ip=10.0.0.0/33 tf",
    "flowadm add-flow -l vnic1 -a dsfield=0x2e:0x00 tf",
    "flowadm add-flow -l vnic1 -a dsfield=0x100 tf",
    "flowadm add-flow -l vnic1 -a transport=udp -p maxbw=1K tf",
    "flowadm add-flow -l vnic1 -a transport=udp -p priority=urgent tf",
    "flowadm add-flow -l vnic1 -a transport=udp -p hwflow=on tf",
    "flowadm add-flow -l vnic1 -a transport=udp -p nosuch=1 tf",
    "flowadm add-flow -l vnic1 -a transport=udp -p maxbw=10M,maxbw=20M tf",
    "flowadm add-flow -l vnic1 -a transport=udp",
    "flowadm add-flow -a transport=udp tf",
    "flowadm add-flow -l vnic1 tf",
    "flowadm add-flow -l vnic1 -a transport=udp tf tg",
    "flowadm add-flow -l vnic1 -a transport=udp x!",
    "flowadm add-flow -z -l vnic1 -a transport=udp tf",
    "flowadm add-flow -R /tmp -l vnic1 -a transport=udp tf",
    "flowadm remove-flow nosuchflow",
    "flowadm remove-flow -l nosuch0",
    "flowadm remove-flow",
    "flowadm set-flowprop -p maxbw=10M nosuchflow",
    "flowadm set-flowprop -p maxbw=1K httpsflow",
    "flowadm set-flowprop -p priority=urgent httpsflow",
    "flowadm set-flowprop -p maxbw=10M,priority=urgent httpsflow",
    "flowadm set-flowprop -p nosuch=1 httpsflow",
    "flowadm set-flowprop httpsflow",
    "flowadm reset-flowprop -p nosuch httpsflow",
    "flowadm reset-flowprop nosuchflow",
    "flowadm show-flow nosuchflow",
    "flowadm show-flow -l nosuch0",
    "flowadm show-flow -o bogus",
    "flowadm show-flow -p",
    "flowadm show-flowprop -p nosuch httpsflow",
    "flowadm show-flowprop nosuchflow",
    "flowadm frobnicate",
    "flowadm help frobnicate",
    "flowstat nosuchflow",
    "flowstat -l nosuch0",
    "flowstat -r -t",
    "flowstat -o bogus",
    "flowstat -p",
    "flowstat -i 0",
    "flowstat -u X",
    "dladm delete-vnic vnic2",
];

fn flow_errors() -> Result<(), String> {
    refusals(
        "flow-errors",
        &[
            "dladm create-vnic -l net0 vnic1",
            "flowadm add-flow -l net0 -a transport=tcp,local_port=443 httpsflow",
            "flowadm set-flowprop -p maxbw=100M httpsflow",
            "dladm create-vnic -l net0 vnic2",
            "flowadm add-flow -l vnic2 -a transport=udp udp2",
        ],
        FLOW_BAD,
        &[
            &alloc::format!("flowadm add-flow -l vnic1 -a transport=udp {NAME_31}"),
            &alloc::format!("flowadm remove-flow {NAME_31}"),
            "flowadm add-flow -l vnic1 -a transport=udp -p maxbw=1.2M a_b.c-d9",
            "flowadm remove-flow a_b.c-d9",
            "flowadm add-flow -l vnic1 -a dsfield=0x01:0x01 ds1",
            "flowadm remove-flow ds1",
            "flowadm add-flow -l net0 -a transport=tcp,local_port=65535 https2",
            "flowadm remove-flow https2",
            "flowstat -p -o flow,ipkts httpsflow",
        ],
    )
}

/// Runs `setup` (each must succeed), then every line of `bad` through the
/// shell: each must exit non-zero, print `command: ...` first and leave
/// the state (links, VNICs, properties, flows) as it was; then `good`
/// lines next to the limits must succeed and leave the state as it was.
fn refusals(label: &str, setup: &[&str], bad: &[&str], good: &[&str]) -> Result<(), String> {
    let Some(m) = arbalest_mac::mac::links().into_iter().next() else {
        return Err("no network link: boot with a NIC".into());
    };
    if m.link() != "net0" {
        return Err(alloc::format!("the first link is {}, not net0", m.link()));
    }
    let mut sh = NetShell::new();
    for c in setup {
        sh.ok(c)?;
    }
    let before = sh.state();
    kprintln!("{label}: state before:\n{before}");
    let mut wrong: Vec<String> = Vec::new();
    for line in bad {
        let (st, out) = sh.run(line);
        let name = line.split_whitespace().next().unwrap_or("");
        let first = out.lines().next().unwrap_or("");
        let after = sh.state();
        let mut why = Vec::new();
        if st == 0 {
            why.push(String::from("exit status 0"));
        }
        if !first.starts_with(&alloc::format!("{name}: ")) {
            why.push(alloc::format!("first line does not start with '{name}: '"));
        }
        if after != before {
            why.push(String::from("the state changed"));
        }
        kprintln!("{label}: `{line}` -> exit {st}: {first}{}", if why.is_empty() { String::new() } else { alloc::format!("  <-- WRONG: {}", why.join(", ")) });
        if !why.is_empty() {
            wrong.push(alloc::format!("`{line}`: {}; output:\n{out}", why.join(", ")));
            if after != before {
                kprintln!("{label}: state after `{line}`:\n{after}");
                return Err(alloc::format!("{}; giving up (the state is no longer the reference)", wrong.join("\n")));
            }
        }
    }
    // Good commands next to the refused ones still work (the limits are
    // where they should be, not tighter).
    for c in good {
        sh.ok(c)?;
    }
    let after = sh.state();
    if after != before {
        return Err(alloc::format!("the state after the good commands differs:\n{after}"));
    }
    if !wrong.is_empty() {
        return Err(alloc::format!("{} of {} commands misbehaved:\n{}", wrong.len(), bad.len(), wrong.join("\n")));
    }
    kprintln!("{label}: {} commands refused with an error and a non-zero status, none changed anything", bad.len());
    Ok(())
}

/// Floods frames of each size from `a` to `b` for `ms` milliseconds each
/// and reports the rate `b` received them at.
fn vswitch_pair(label: &str, a: &Arc<arbalest_mac::client::MacClient>, b: &Arc<arbalest_mac::client::MacClient>, ms: u64) -> Result<(), String> {
    let rx = Arc::new(RxCount::default());
    rx.attach(b);
    for size in [60usize, 590, 1514] {
        let f = eth_frame(b.addr(), a.addr(), 0x88b5, &alloc::vec![0xa5; size - 14]);
        for _ in 0..1000 {
            client_send(a, &f)?;
        }
        let (r0, b0) = (rx.frames(), rx.bytes.load(Ordering::Relaxed));
        let (mut sent, mut nobuf) = (0u64, 0u64);
        let t0 = clock::now_ns();
        let end = t0 + ms * 1_000_000;
        while clock::now_ns() < end {
            for _ in 0..64 {
                match a.alloc_tx(size) {
                    Some(mut m) => {
                        m.data_mut().copy_from_slice(&f);
                        a.tx(m);
                        sent += 1;
                    }
                    None => nobuf += 1,
                }
            }
        }
        let dt = (clock::now_ns() - t0).max(1);
        let got = rx.frames() - r0;
        let bytes = rx.bytes.load(Ordering::Relaxed) - b0;
        kprintln!(
            "vswitch-bench: {label} {size} B: {got} frames in {dt} ns: {} frames/s, {} Mbit/s, {} ns/frame (sent {sent}, no buffer {nobuf})",
            got * 1_000_000_000 / dt,
            bytes * 8 * 1000 / dt,
            dt / got.max(1)
        );
        if got != sent || got == 0 {
            b.set_rx(None);
            return Err(alloc::format!("{label} {size} B: {sent} frames sent, {got} delivered"));
        }
    }
    b.set_rx(None);
    Ok(())
}

fn vswitch_bench() -> Result<(), String> {
    use arbalest_mac::link::{self, MacSpec};
    let ms = crate::kmain::cmdline().get("vswitch.ms").and_then(|v| v.parse().ok()).unwrap_or(2000u64);
    let dma = Arc::new(crate::dma::KernelDma);
    link::create_etherstub("vsbstub0", dma).map_err(|e| alloc::format!("create-etherstub: {e}"))?;
    let mk = |name: &str, over: &str, salt: u64| {
        link::create_vnic(name, over, MacSpec::Random, 0, crate::arch::cpu::rdtsc() ^ salt)
            .map_err(|e| alloc::format!("create-vnic {name}: {e}"))
    };
    let a = mk("vsbnic1", "vsbstub0", 1)?;
    let b = mk("vsbnic2", "vsbstub0", 2)?;
    kprintln!("vswitch-bench: one sender thread on cpu {}, {ms} ms per size", percpu::cpu_id());
    vswitch_pair("etherstub", &a, &b, ms)?;
    if arbalest_mac::mac::by_name("net0").is_some() {
        let c = mk("vsbnic3", "net0", 3)?;
        let d = mk("vsbnic4", "net0", 4)?;
        let tx0: u64 = arbalest_mac::mac::by_name("net0").map(|m| m.tx_ring_counters().iter().map(|c| c.packets).sum()).unwrap_or(0);
        vswitch_pair("net0", &c, &d, ms)?;
        let tx1: u64 = arbalest_mac::mac::by_name("net0").map(|m| m.tx_ring_counters().iter().map(|c| c.packets).sum()).unwrap_or(0);
        kprintln!("vswitch-bench: net0 transmitted {} frames meanwhile", tx1 - tx0);
    }
    Ok(())
}
