//! Changing links while traffic flows (issue 5): TCP echoes of 4 MiB
//! on net0 run from the host, one after the other, while the shell, in a loop, creates an
//! etherstub with a VNIC on it and a VNIC over net0, gives the latter an
//! IP address (pinged from the host every other round), sets and resets
//! its `maxbw`, unplumbs it and deletes everything again. The echo must
//! come back byte for byte and pings of net0 meanwhile must all be
//! answered; afterwards the links are as before, no
//! per-VNIC IP thread is left, and no memory leaked: `meminfo`'s physical
//! memory (where the DMA buffer pools of etherstubs come from, given back
//! when the last buffer of the pool is) and heap are where they were after
//! a warm-up round.
//!
//! Runs on virtio-net (VNICs over net0 classified in software) and on igb
//! in VMDq mode (each VNIC over net0 programs a unicast filter into a
//! pool of its own while net0's traffic flows through pool 0).
//!
//! What this cannot see: a buffer of net0's own Tx pool or of the driver's
//! Rx pools that is never returned (those pools live as long as the NIC,
//! and nothing in the shell shows how many of their buffers are free).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbalest_tests::net::{guest, table_value, tcp_echo_verify, NetVm, ECHO_PORT, GUEST_IP};
use arbalest_tests::Config;
use bootimage::{Net, Nic};

/// Bytes of each echo (they repeat, one connection after the other,
/// while the links change).
const ECHO_BYTES: usize = 4 << 20;
/// Rounds of link changes.
const ROUNDS: usize = 30;

fn quiet(vm: &mut NetVm, cmd: &str) {
    let out = vm.run(cmd);
    vm.check(out.trim().is_empty(), format!("`{cmd}` failed:\n{out}"));
}

/// (physical KiB free, heap KiB used) from `meminfo`.
fn meminfo(vm: &mut NetVm) -> (u64, u64) {
    let out = vm.run("meminfo");
    let num_before = |line: &str, word: &str| -> Option<u64> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let i = w.iter().position(|x| x.trim_end_matches(',') == word)?;
        w.get(i.checked_sub(2)?)?.parse().ok()
    };
    let phys = out.lines().find(|l| l.starts_with("physical memory")).and_then(|l| num_before(l, "free"));
    let heap = out.lines().find(|l| l.starts_with("kernel heap")).and_then(|l| num_before(l, "used"));
    match (phys, heap) {
        (Some(p), Some(h)) => (p, h),
        _ => {
            vm.check(false, format!("cannot parse meminfo:\n{out}"));
            unreachable!()
        }
    }
}

/// One round of link changes; `ping` also pings the VNIC over net0.
fn round(vm: &mut NetVm, i: usize, ping: bool) {
    let (stub, vs, vn) = (format!("chstub{i}"), format!("chs{i}"), format!("chv{i}"));
    let ip = Ipv4Addr::new(10, 0, 0, 100 + (i % 100) as u8);
    quiet(vm, &format!("dladm create-etherstub {stub}"));
    quiet(vm, &format!("dladm create-vnic -l {stub} {vs}"));
    quiet(vm, &format!("dladm create-vnic -l net0 {vn}"));
    quiet(vm, &format!("dladm set-linkprop -p maxbw=10M {vn}"));
    quiet(vm, &format!("ipadm create-addr -T static -a {ip}/24 {vn}"));
    if ping {
        let r = vm.ns().ping(ip, 2, "0.2");
        if r.received == 0 {
            let diag = vm.run("dladm show-vnic") + &vm.run("dlstat show-link -r") + &vm.run("ipadm show-addr");
            vm.check(false, format!("round {i}: {vn} ({ip}) does not answer:\n{}\n{diag}", r.output.describe()));
        }
    }
    quiet(vm, &format!("dladm set-linkprop -p maxbw=200M {vn}"));
    quiet(vm, &format!("dladm reset-linkprop -p maxbw {vn}"));
    quiet(vm, &format!("ipadm delete-if {vn}"));
    quiet(vm, &format!("dladm delete-vnic {vn}"));
    quiet(vm, &format!("dladm delete-vnic {vs}"));
    quiet(vm, &format!("dladm delete-etherstub {stub}"));
}

/// (pool, buffers in use) of net0's pools from `nicctl pools net0` (Tx
/// rings reclaimed first, so Tx counts only what the NIC still holds).
fn pools(vm: &mut NetVm) -> Vec<(String, u64)> {
    let out = vm.run("nicctl pools net0");
    let v: Vec<(String, u64)> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 8 && f[0] == "net0").then(|| f[5].parse().ok().map(|n| (f[1].to_string(), n)))?
        })
        .collect();
    vm.check(v.iter().any(|(p, _)| p == "tx") && v.iter().any(|(p, _)| p == "rx0"), format!("nicctl pools net0:\n{out}"));
    v
}

fn links(vm: &mut NetVm) -> String {
    vm.run("dladm show-link") + &vm.run("dladm show-phys -H") + &vm.run("dladm show-linkprop")
}

fn churn_while_echoing(mut vm: NetVm) {
    vm.wait_reachable(Duration::from_secs(60));
    let links_before = links(&mut vm);
    // Warm-up: first-time allocations (tables, caches, the echo service's
    // socket buffers) happen here.
    round(&mut vm, 0, true);
    for k in 0..3 {
        if let Err(e) = vm.in_ns(move || tcp_echo_verify(guest(ECHO_PORT), ECHO_BYTES, k, Duration::from_secs(120))) {
            vm.check(false, format!("warm-up echo: {e}"));
        }
    }
    // The echo service keeps up to 4 closed sockets (with their buffers)
    // for reuse: fill that cache now with 6 connections at once, so that
    // connections overlapping during the rounds cannot grow it afterwards.
    let r = vm.in_ns(|| {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..6u64)
                .map(|k| s.spawn(move || tcp_echo_verify(guest(ECHO_PORT), 64 * 1024, 100 + k, Duration::from_secs(120))))
                .collect();
            hs.into_iter().map(|h| h.join().map_err(|_| "panicked".to_string()).and_then(|r| r.map(|_| ()))).collect::<Result<Vec<()>, String>>()
        })
    });
    vm.check(r.is_ok(), format!("warm-up echoes in parallel: {r:?}"));
    std::thread::sleep(Duration::from_millis(500));
    let mem0 = meminfo(&mut vm);
    let pools0 = pools(&mut vm);

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7);
    eprintln!("churn: echo seed {seed}");
    // Echoes of ECHO_BYTES each, one connection after the other, until the
    // rounds are done (bounded by count and time); each must come back
    // byte for byte.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let echo = vm.ns().spawn_in_ns(move || -> Result<(usize, usize), String> {
        let (mut n, mut bytes) = (0usize, 0usize);
        let start = Instant::now();
        while !stop2.load(Ordering::Relaxed) && n < 200 && start.elapsed() < Duration::from_secs(300) {
            let s = seed.wrapping_add(n as u64);
            tcp_echo_verify(guest(ECHO_PORT), ECHO_BYTES, s, Duration::from_secs(120)).map_err(|e| format!("echo #{n} (seed {s}): {e}"))?;
            n += 1;
            bytes += ECHO_BYTES;
        }
        Ok((n, bytes))
    });
    // Pings of net0 meanwhile: none may be lost.
    let ns_name = vm.ns().name().to_string();
    let pinger = std::thread::spawn(move || {
        arbalest_tests::net::run_cmd(
            &["ip", "netns", "exec", &ns_name, "ping", "-n", "-c", "40", "-i", "0.1", "-W", "2", &GUEST_IP.to_string()],
            Duration::from_secs(60),
        )
    });
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < ROUNDS && !echo.is_finished() {
        rounds += 1;
        round(&mut vm, rounds, rounds % 2 == 0);
    }
    stop.store(true, Ordering::Relaxed);
    let result = echo.join().unwrap_or_else(|_| Err("echo thread panicked".into()));
    eprintln!("churn: {rounds} rounds in {:?}; echoes {result:?}", start.elapsed());
    match &result {
        Err(e) => {
            let diag = vm.run("dlstat show-link -r net0") + &vm.run("netstat -s") + &vm.run("threads");
            vm.check(false, format!("the TCP echo on net0 failed while links changed: {e}\n{diag}"));
        }
        Ok((n, _)) => vm.check(*n >= 2 && rounds == ROUNDS, format!("{n} echoes and {rounds} rounds: the echo ended early")),
    }

    let ping = pinger.join().expect("ping thread");
    let counts = arbalest_tests::net::parse_ping_summary(&ping.stdout);
    eprintln!("churn: pings of net0 during the rounds (sent, answered): {counts:?}");
    vm.check(counts.is_some_and(|(t, r)| t == 40 && r == 40), format!("pings of net0 were lost while links changed:\n{}", ping.describe()));

    // Everything is as before, and nothing stayed behind.
    let r = vm.ns().ping(GUEST_IP, 3, "0.2");
    vm.check(r.received >= 2, format!("net0 stopped answering: {}", r.output.describe()));
    let links_after = links(&mut vm);
    vm.check(links_after == links_before, format!("links differ after the churn:\n{links_before}\n---\n{links_after}"));
    // The IP threads of the deleted interfaces end (give them a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut threads;
    loop {
        threads = vm.run("threads");
        let left = threads.lines().filter(|l| l.contains("ip/chv")).count();
        if left == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let left: Vec<&str> = threads.lines().filter(|l| l.contains("ip/chv")).collect();
    vm.check(left.is_empty(), format!("IP threads of deleted VNICs are still listed:\n{}", left.join("\n")));
    // Memory: the same after `rounds` more rounds as after the first one.
    // A connection the echo service just finished may still hold its
    // buffers for a few seconds (TIME_WAIT, a closing handshake): wait
    // for what is released within a bounded time before judging.
    let slack = 16;
    let mut mem1 = meminfo(&mut vm);
    let deadline = Instant::now() + Duration::from_secs(15);
    while (mem1.0 < mem0.0 || mem1.1 > mem0.1 + slack) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        mem1 = meminfo(&mut vm);
    }
    eprintln!("churn: meminfo after warm-up: {} KiB physical free, {} KiB heap used; after {rounds} rounds: {} / {}", mem0.0, mem0.1, mem1.0, mem1.1);
    // No buffer leaked from net0's pools: with traffic stopped, the buffers
    // in use (posted Rx buffers; Tx buffers the NIC still holds) are what
    // they were after the warm-up, give or take a few in flight.
    let mut pools1 = pools(&mut vm);
    let leaked = |a: &[(String, u64)], b: &[(String, u64)]| -> Vec<String> {
        b.iter()
            .filter_map(|(p, n)| {
                let before = a.iter().find(|(q, _)| q == p).map_or(0, |(_, m)| *m);
                (*n > before + 4).then(|| format!("{p}: {before} -> {n} in use"))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !leaked(&pools0, &pools1).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        pools1 = pools(&mut vm);
    }
    eprintln!("churn: net0 pools in use after warm-up {pools0:?}, after {rounds} rounds {pools1:?}");
    let grew = leaked(&pools0, &pools1);
    vm.check(grew.is_empty(), format!("buffers leaked from net0's pools over {rounds} rounds: {grew:?}"));
    vm.check(
        mem1.0 >= mem0.0,
        format!("physical memory leaked: {} KiB free after the warm-up round, {} KiB after {rounds} more rounds ({} KiB per round)", mem0.0, mem1.0, (mem0.0 - mem1.0) / rounds as u64),
    );
    // The heap may keep a little (capacity of tables that grew); a leak of
    // a client, a switch or an IP instance per round is far more than this.
    vm.check(
        mem1.1 <= mem0.1 + slack,
        format!("heap grew from {} KiB to {} KiB over {rounds} rounds ({} KiB per round)", mem0.1, mem1.1, (mem1.1 - mem0.1) / rounds as u64),
    );
}

#[test]
fn links_change_under_traffic_virtio() {
    churn_while_echoing(NetVm::boot(2, 2));
}

#[test]
fn links_change_under_traffic_igb_vmdq() {
    let mut cfg = Config::with_smp(4);
    cfg.net = Net::none().with_nic(Nic::Igb);
    cfg.push_append("igb.vmdq=4");
    let mut vm = NetVm::boot_with(cfg, 4);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let out = vm.run("dladm show-phys");
        if table_value(&out, "net0", "STATE").as_deref() == Some("up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    churn_while_echoing(vm);
}
