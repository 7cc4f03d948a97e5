//! FireEngine TCP connection churn on the booted kernel (issue 13): the
//! guest boots with `stack=fireengine` (2 CPUs, virtio-net with 2 queue
//! pairs, a TAP into a namespace this test creates) and a Linux client in
//! the namespace runs 10 000 sequential cycles of connect, 32 bytes echoed
//! through the guest's echo service (port 7), close — Linux closing first,
//! so TIME_WAIT is on Linux's side and the guest goes through CLOSE_WAIT
//! and LAST_ACK every time.
//!
//! Afterwards the guest's `netstat -an` lists nothing but the listeners,
//! `tcpCurrEstab` is 0 and tcpPassiveOpens grew by the cycles, the heap
//! (`meminfo`) is back within 128 KiB (a leak of 16 bytes a conn would show 160) of what it was after a warm-up of
//! 200 cycles (it is also printed half way), and `sqstat` shows no entry waiting (`QLEN` 0), no drop,
//! and the same conns per squeue as before. The rate is printed.
//!
//! Not here yet: the 10 000 cycles with the guest closing first (it needs
//! a guest-side client loop or a service that answers and closes).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use arbalest_tests::net::{connect, parse_netstat_s, NetVm, SplitMix64, ECHO_PORT, GUEST_IP};
use arbalest_tests::Config;

const CYCLES: usize = 10_000;
const WARMUP: usize = 200;
const HEAP_SLACK_KIB: u64 = 128;

fn boot() -> NetVm {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));
    vm
}

/// Heap KiB used, from `meminfo`.
fn heap_kib(vm: &mut NetVm) -> u64 {
    let out = vm.run("meminfo");
    out.lines()
        .find(|l| l.starts_with("kernel heap:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no heap line in meminfo:\n{out}"))
}

/// `(cpu, conns, qlen, drops)` per squeue.
fn sqstat(vm: &mut NetVm) -> Vec<(u64, u64, u64, u64)> {
    let out = vm.run("sqstat -p -o cpu,conns,qlen,drops");
    let rows: Vec<_> = out
        .lines()
        .filter_map(|l| {
            let v: Vec<u64> = l.trim().split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
            (v.len() == 4).then(|| (v[0], v[1], v[2], v[3]))
        })
        .collect();
    assert_eq!(rows.len(), 2, "one sqstat row per CPU:\n{out}");
    rows
}

/// The guest's view when a cycle fails (each command bounded).
fn diagnose(vm: &mut NetVm) -> String {
    let mut out = String::new();
    for c in ["netstat -an", "sqstat -o all", "netstat -s"] {
        let r = vm.try_run(c, Duration::from_secs(30)).unwrap_or_else(|e| format!("(no answer: {e})"));
        out += &format!("guest {c}:\n{r}\n");
    }
    out
}

/// `n` cycles from Linux, which closes first. Err names the cycle and
/// what failed, with the count done.
fn client_first_cycles(n: usize, seed: u64, deadline: Duration) -> Result<Duration, String> {
    let addr = SocketAddr::from((GUEST_IP, ECHO_PORT));
    let t0 = Instant::now();
    let mut rng = SplitMix64::new(seed);
    for i in 0..n {
        if t0.elapsed() > deadline {
            return Err(format!("{i} of {n} cycles done in {deadline:?}"));
        }
        let msg = rng.bytes(32);
        let mut s = connect(addr, Duration::from_secs(20), Duration::from_secs(20))
            .map_err(|e| format!("cycle {i} (of {n}): {e}"))?;
        s.write_all(&msg).map_err(|e| format!("cycle {i}: write: {e}"))?;
        let mut back = [0u8; 32];
        s.read_exact(&mut back).map_err(|e| format!("cycle {i}: read: {e}"))?;
        if back[..] != msg[..] {
            return Err(format!("cycle {i}: echo differs"));
        }
        s.shutdown(Shutdown::Write).map_err(|e| format!("cycle {i}: shutdown: {e}"))?;
        // The guest's FIN: read to end of stream.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).map_err(|e| format!("cycle {i}: waiting for the guest's FIN: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("cycle {i}: {} unexpected bytes", rest.len()));
        }
    }
    Ok(t0.elapsed())
}

#[test]
fn fireengine_tcp_10000_connect_echo_close_cycles() {
    let mut vm = boot();
    let warm = vm.in_ns(|| client_first_cycles(WARMUP, 1, Duration::from_secs(300)));
    if let Err(e) = warm {
        panic!("warm-up: {e}\n{}", diagnose(&mut vm));
    }
    std::thread::sleep(Duration::from_secs(2));
    let heap0 = heap_kib(&mut vm);
    let sq0 = sqstat(&mut vm);
    let s0 = parse_netstat_s(&vm.run("netstat -s"));

    let half = vm.in_ns(|| client_first_cycles(CYCLES / 2, 3, Duration::from_secs(450)));
    let took_half = match half {
        Ok(t) => t,
        Err(e) => panic!("Linux closing first, first half: {e}\n{}", diagnose(&mut vm)),
    };
    std::thread::sleep(Duration::from_secs(2));
    let heap_half = heap_kib(&mut vm);
    eprintln!("heap after {} cycles: {heap_half} KiB", CYCLES / 2);
    let took = vm.in_ns(|| client_first_cycles(CYCLES / 2, 2, Duration::from_secs(450)));
    let took = match took {
        Ok(t) => t + took_half,
        Err(e) => {
            panic!("Linux closing first: {e}\n{}", diagnose(&mut vm));
        }
    };
    eprintln!(
        "Linux closing first: {CYCLES} cycles in {took:?}, {:.0} cycles/s",
        CYCLES as f64 / took.as_secs_f64()
    );

    std::thread::sleep(Duration::from_secs(3));
    let s1 = parse_netstat_s(&vm.run("netstat -s"));
    let d = |k: &str| s1.get(k).copied().unwrap_or(0).saturating_sub(s0.get(k).copied().unwrap_or(0));
    eprintln!(
        "tcpPassiveOpens +{} tcpEstabResets +{} tcpAttemptFails +{} tcpRetransSegs +{} tcpTimRetrans +{}",
        d("tcpPassiveOpens"),
        d("tcpEstabResets"),
        d("tcpAttemptFails"),
        d("tcpRetransSegs"),
        d("tcpTimRetrans")
    );
    assert!(d("tcpPassiveOpens") >= CYCLES as u64, "passive opens: {}", d("tcpPassiveOpens"));
    assert_eq!(s1.get("tcpCurrEstab").copied(), Some(0));

    let an = vm.run("netstat -an");
    let left: Vec<&str> = an
        .lines()
        .filter(|l| l.contains(&format!("{GUEST_IP}.")) && !l.contains("LISTEN"))
        .collect();
    assert!(left.is_empty(), "conns left after the cycles:\n{an}");

    let heap1 = heap_kib(&mut vm);
    let sq1 = sqstat(&mut vm);
    eprintln!("heap {heap0} KiB after the warm-up, {heap1} KiB after; sqstat (cpu, conns, qlen, drops) {sq0:?} -> {sq1:?}");
    assert!(heap1 <= heap0 + HEAP_SLACK_KIB, "heap grew from {heap0} to {heap1} KiB");
    for (a, b) in sq0.iter().zip(&sq1) {
        assert_eq!(b.2, 0, "entries waiting in squeue {b:?}");
        assert_eq!(b.3, a.3, "squeue drops during the cycles: {a:?} -> {b:?}");
        assert_eq!(b.1, a.1, "conns on the squeue changed: {a:?} -> {b:?}");
    }
}
