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
    ("ipi", "a wake-up from another CPU reaches a sleeping thread by IPI", ipi),
    ("callout", "per-CPU timer callouts fire on their CPU, in deadline order", callout),
    ("ctxswitch", "benchmark: context-switch cost between two threads on one CPU", ctxswitch),
    ("vwire", "an etherstub with three VNICs, each with an IP instance: all pairs ping each other", vwire),
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
        let ipif = crate::net::ip::create(&name).map_err(|e| alloc::format!("IP on {name}: {e}"))?;
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
