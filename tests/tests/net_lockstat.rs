//! The kernel profiler, `lockstat -I`, on the booted kernel (FireEngine,
//! 2 CPUs, virtio-net with 2 queue pairs, a TAP into a namespace this
//! test creates), driven as a kernel engineer would:
//!
//! * idle, `lockstat -kIW sleep 1` counts about `hz` ticks a CPU a second
//!   and names the idle loop, with the symbol table bootimage attached;
//! * while Linux streams into the guest's discard service, and then while
//!   it reads the guest's chargen, the profile names FireEngine's and the
//!   driver's functions and the idle loop no longer takes nearly
//!   everything; each profile is printed (docs/fireengine.md quotes them);
//! * the rows' percentages add up as lockstat's do, and bad options get
//!   lockstat's usage.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbalest_tests::Config;
use arbalest_tests::net::{CHARGEN_PORT, DISCARD_PORT, GUEST_IP, NetVm, connect};

/// `(events, seconds, rows as (count, indv %, cuml %, caller))` of a
/// `lockstat -kIW` report.
fn parse(out: &str) -> (u64, f64, Vec<(u64, u64, u64, String)>) {
    let head = out.lines().find(|l| l.starts_with("Profiling interrupt: ")).unwrap_or_else(|| panic!("no header:\n{out}"));
    let w: Vec<&str> = head.split_whitespace().collect();
    let events = w[2].parse().unwrap_or_else(|_| panic!("{head}"));
    let secs = w[5].parse().unwrap_or_else(|_| panic!("{head}"));
    let rows = out
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let count = it.next()?.parse().ok()?;
            let indv = it.next()?.strip_suffix('%')?.parse().ok()?;
            let cuml = it.next()?.strip_suffix('%')?.parse().ok()?;
            let caller: Vec<&str> = it.collect();
            Some((count, indv, cuml, caller.join(" ")))
        })
        .collect();
    (events, secs, rows)
}

fn check_sums(out: &str, events: u64, rows: &[(u64, u64, u64, String)]) {
    assert!(!rows.is_empty(), "no rows:\n{out}");
    let total: u64 = rows.iter().map(|r| r.0).sum();
    assert!(total <= events, "rows count more than the events:\n{out}");
    let mut last = 0;
    for r in rows {
        assert!(r.2 >= last && r.2 <= 100, "cuml not rising within 100:\n{out}");
        last = r.2;
    }
    assert!(rows.windows(2).all(|w| w[0].0 >= w[1].0), "rows not sorted by count:\n{out}");
}

fn share(rows: &[(u64, u64, u64, String)], events: u64, pat: &str) -> f64 {
    rows.iter().filter(|r| r.3.contains(pat)).map(|r| r.0).sum::<u64>() as f64 * 100.0 / events.max(1) as f64
}

/// Profiles `secs` while `load` runs in the namespace; prints the report.
fn profile_under(vm: &mut NetVm, what: &str, load: impl FnOnce() -> u64 + Send + 'static) -> (u64, Vec<(u64, u64, u64, String)>) {
    let ns_load = vm.ns().spawn_in_ns(load);
    std::thread::sleep(Duration::from_millis(1500));
    let out = vm.run("lockstat -kIW -D 25 sleep 3");
    let bytes = ns_load.join().expect("load thread");
    eprintln!("--- {what} ({} MiB moved)\n{out}", bytes >> 20);
    let (events, _, rows) = parse(&out);
    check_sums(&out, events, &rows);
    (events, rows)
}

#[test]
fn lockstat_profiles_the_kernel_by_function() {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let mut vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));

    // Idle.
    let out = vm.run("lockstat -kIW sleep 1");
    let (events, secs, rows) = parse(&out);
    check_sums(&out, events, &rows);
    assert!((0.9..1.5).contains(&secs), "slept {secs} s:\n{out}");
    // 2 CPUs at the default hz=1000; a tick that finds a CPU with
    // interrupts masked may merge with the next.
    assert!((1400..=2400).contains(&events), "{events} ticks in a second on 2 CPUs:\n{out}");
    assert!(rows[0].3.contains("idle_loop") && rows[0].1 >= 80, "the idle loop first:\n{out}");

    // Into the guest: discard.
    let discard = SocketAddr::from((GUEST_IP, DISCARD_PORT));
    let (events, rows) = profile_under(&mut vm, "Linux streams into discard", move || {
        let mut s = connect(discard, Duration::from_secs(5), Duration::from_secs(10)).expect("discard");
        let buf = vec![0x5au8; 64 * 1024];
        let (end, mut n) = (Instant::now() + Duration::from_secs(6), 0u64);
        while Instant::now() < end {
            s.write_all(&buf).expect("write to discard");
            n += buf.len() as u64;
        }
        n
    });
    let idle = share(&rows, events, "idle_loop");
    assert!(idle < 85.0, "a stream leaves the CPUs {idle:.0}% idle?");
    assert!(share(&rows, events, "arbalest_netstack::fireengine") > 0.0, "no FireEngine function named");
    assert!(share(&rows, events, "arbalest_drivers::virtio") + share(&rows, events, "Mmio") > 0.0, "no driver function named");

    // Out of the guest: chargen.
    let chargen = SocketAddr::from((GUEST_IP, CHARGEN_PORT));
    let (events, rows) = profile_under(&mut vm, "Linux reads chargen", move || {
        let mut s = connect(chargen, Duration::from_secs(5), Duration::from_secs(10)).expect("chargen");
        let mut buf = vec![0u8; 64 * 1024];
        let (end, mut n) = (Instant::now() + Duration::from_secs(6), 0u64);
        while Instant::now() < end {
            n += s.read(&mut buf).expect("read chargen") as u64;
        }
        n
    });
    assert!(share(&rows, events, "idle_loop") < 85.0);
    assert!(share(&rows, events, "arbalest_netstack::fireengine") > 0.0, "no FireEngine function named");

    // Bad input.
    let out = vm.run("lockstat -I -D x sleep 1");
    assert!(out.contains("lockstat: invalid count 'x'") && out.contains("usage: lockstat -I [-kW] [-D count] sleep seconds"), "{out}");
    let out = vm.run("lockstat sleep 1");
    assert!(out.contains("only -I"), "{out}");
}
