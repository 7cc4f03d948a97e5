//! `cargo bench -p arbalest-tests --bench mac`: the MAC layer's figures
//! (issue 5), on the kernel under QEMU (2 CPUs, TAP in a namespace):
//!
//! * **(a) Rx at saturation**, virtio-net and igb, dynamic polling on and
//!   forced off (`ndd -set /dev/mac mac_srs_poll_enable 0`): the host
//!   floods 64-byte UDP datagrams at the discard port from raw-socket
//!   threads (`MACBENCH_FLOOD_THREADS`, default 1); the kernel's packet rate is the growth of `IPKTS` in
//!   `dlstat show-link -r net0` over the measuring window (host-timed),
//!   its CPU time per packet the busy share of every CPU in `mpstat`
//!   (100 - idl, over the same window, less the share measured idle just
//!   before) divided by the packets. Also: how many packets were picked up
//!   by polling, and the interrupts per second.
//! * **(b) maxbw accuracy**: a VNIC over net0 (virtio-net) with
//!   `maxbw` 10M, 100M, 1G and unlimited; one TCP connection from the host
//!   into its discard port, rate acknowledged by the kernel after a
//!   1-second warm-up (bytes written less those still queued).
//! * **(c) VNIC to VNIC**: `test=vswitch-bench`, a kernel test that floods
//!   frames from one VNIC to another through the virtual switch of an
//!   etherstub (and of net0), one sender thread, and reports frames/s and
//!   Mbit/s per frame size (there is no in-kernel TCP client).
//!
//! Environment: `MACBENCH_SECS` (default 5) per measurement;
//! `MACBENCH_NIC` = `both` (default), `virtio` or `igb` for (a);
//! `MACBENCH_PARTS` = any of `a`, `b`, `c` (default `abc`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbalest_tests::net::{mpstat_interval, table_value, MpstatRow, NetVm, Netns};
use arbalest_tests::{Config, ExitKind, Vm, KTEST_TIMEOUT};
use bootimage::bench::report::{sh, Host};
use bootimage::{Net, Nic};

const SMP: usize = 2;
const QUEUES: usize = 2;



fn nic_name(nic: Nic) -> &'static str {
    match nic {
        Nic::Virtio => "virtio-net",
        Nic::Igb => "igb",
    }
}

fn boot(nic: Nic) -> NetVm {
    let mut cfg = Config::with_smp(SMP);
    cfg.net = Net::none().with_nic(nic);
    let mut vm = NetVm::boot_with(cfg, QUEUES);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let out = vm.run("dladm show-phys");
        if table_value(&out, "net0", "STATE").as_deref() == Some("up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    vm.wait_reachable(Duration::from_secs(60));
    vm
}

// ---------------------------------------------------------------------------
// (a) Rx at saturation.

/// Sums over net0's Rx lanes: (ipkts, intrs, polls).
fn rx_counters(vm: &mut NetVm) -> (u64, u64, u64) {
    let out = vm.run("dlstat show-link -r -p -o id,ipkts,intrs,polls net0");
    let mut s = (0, 0, 0);
    for l in out.lines() {
        let f: Vec<&str> = l.trim().split(':').collect();
        if f.len() == 4 && f[0] == "hw" {
            let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
            s.0 += n(1);
            s.1 += n(2);
            s.2 += n(3);
        }
    }
    s
}

/// Sum over CPUs of the busy share (1 - idle).
fn busy_cpus(rows: &[MpstatRow]) -> f64 {
    rows.iter().map(|r| (100u64.saturating_sub(r.idl)) as f64 / 100.0).sum()
}

fn non_ipi_intrs(rows: &[MpstatRow]) -> u64 {
    rows.iter().map(|r| r.non_ipi()).sum()
}

/// Sums over net0's Rx lanes of `dlstat show-link -a -u R net0` counters:
/// (poll_on, emptypolls).
fn mode_counters(vm: &mut NetVm) -> (u64, u64) {
    let out = vm.run("dlstat show-link -a -u R net0");
    let mut s = (0, 0);
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [name, v] = f.as_slice() {
            let v = v.parse::<u64>().unwrap_or(0);
            match *name {
                "poll_on" => s.0 += v,
                "emptypolls" => s.1 += v,
                _ => {}
            }
        }
    }
    s
}

struct RxRow {
    nic: Nic,
    polling: bool,
    pps: f64,
    sent_pps: f64,
    ns_per_pkt: f64,
    ns_per_pkt_gross: f64,
    polled_share: f64,
    intr_per_s: f64,
    csw_per_s: f64,
    poll_on_per_s: f64,
    empty_polls_per_s: f64,
    idle_busy: f64,
    load_busy: f64,
}

/// Host threads flooding (`MACBENCH_FLOOD_THREADS`, default 1: the host
/// has only 2 cores, shared with QEMU).
fn flood_threads() -> u16 {
    std::env::var("MACBENCH_FLOOD_THREADS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0 && n <= 8).unwrap_or(1)
}

/// Floods the guest from [`flood_threads`] threads until `stop`; returns
/// frames sent.
fn flood(vm: &NetVm, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    arbalest_tests::net::udp_flood(vm, flood_threads(), 20000, 9, stop)
}

fn rx_saturation(vm: &mut NetVm, nic: Nic, polling: bool, secs: u64) -> Result<RxRow, String> {
    let out = vm.run(&format!("ndd -set /dev/mac mac_srs_poll_enable {}", u8::from(polling)));
    if !out.trim().is_empty() {
        return Err(format!("ndd: {out}"));
    }
    let (idle, _) = mpstat_interval(vm, 2)?;
    let stop = Arc::new(AtomicBool::new(false));
    let senders = flood(vm, stop.clone());
    let t_start = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let m0 = mode_counters(vm);
    let c0 = rx_counters(vm);
    let t0 = Instant::now();
    let load = mpstat_interval(vm, secs);
    let c1 = rx_counters(vm);
    let t1 = Instant::now();
    let m1 = mode_counters(vm);
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = senders.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let sent_secs = t_start.elapsed().as_secs_f64();
    let (load, load_len) = load?;
    // Let the backlog drain before the next measurement.
    std::thread::sleep(Duration::from_secs(2));
    let window = (t1 - t0).as_secs_f64();
    let pkts = c1.0.saturating_sub(c0.0);
    let pps = pkts as f64 / window;
    let (ib, lb) = (busy_cpus(&idle), busy_cpus(&load));
    let per = |busy: f64| if pps > 0.0 { busy / pps * 1e9 } else { f64::NAN };
    let polled = c1.2.saturating_sub(c0.2) as f64;
    let intr = c1.1.saturating_sub(c0.1) as f64;
    Ok(RxRow {
        nic,
        polling,
        pps,
        sent_pps: sent as f64 / sent_secs,
        ns_per_pkt: per((lb - ib).max(0.0)),
        ns_per_pkt_gross: per(lb),
        polled_share: if polled + intr > 0.0 { polled / (polled + intr) } else { 0.0 },
        intr_per_s: non_ipi_intrs(&load) as f64 / load_len.as_secs_f64(),
        csw_per_s: load.iter().map(|r| r.csw).sum::<u64>() as f64 / load_len.as_secs_f64(),
        poll_on_per_s: m1.0.saturating_sub(m0.0) as f64 / window,
        empty_polls_per_s: m1.1.saturating_sub(m0.1) as f64 / window,
        idle_busy: ib,
        load_busy: lb,
    })
}

fn part_a(nics: &[Nic], secs: u64) -> Vec<Result<RxRow, String>> {
    let mut rows = Vec::new();
    for &nic in nics {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mut vm = boot(nic);
            let mut v = Vec::new();
            for polling in [true, false] {
                eprintln!("(a) {}: polling {}, flood {secs} s", nic_name(nic), if polling { "on" } else { "off" });
                v.push(rx_saturation(&mut vm, nic, polling, secs));
            }
            v
        }));
        match r {
            Ok(v) => rows.extend(v),
            Err(_) => rows.push(Err(format!("{}: the VM failed (panic above)", nic_name(nic)))),
        }
    }
    rows
}

// ---------------------------------------------------------------------------
// (b) maxbw accuracy.

fn unsent(s: &std::net::TcpStream) -> u64 {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ on a TCP socket writes one int.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r == 0 { n.max(0) as u64 } else { 0 }
}

/// Mbit/s acknowledged by `addr` (discard) between 1 s and 1 + `secs` s.
fn stream_mbit(addr: std::net::SocketAddr, secs: u64) -> Result<f64, String> {
    use std::io::Write;
    let mut s = arbalest_tests::net::connect(addr, Duration::from_secs(20), Duration::from_millis(200))?;
    let block = vec![0x61u8; 65536];
    let start = Instant::now();
    let warm = Duration::from_secs(1);
    let end = warm + Duration::from_secs(secs);
    let mut written = 0u64;
    let mut mark: Option<(Instant, u64)> = None;
    loop {
        let el = start.elapsed();
        if mark.is_none() && el >= warm {
            mark = Some((Instant::now(), written.saturating_sub(unsent(&s))));
        }
        if el >= end {
            break;
        }
        match s.write(&block) {
            Ok(n) => written += n as u64,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) => {}
            Err(e) => return Err(format!("write after {written} bytes: {e}")),
        }
    }
    let acked = written.saturating_sub(unsent(&s));
    let (t0, a0) = mark.ok_or("no warm-up mark")?;
    let _ = s.shutdown(std::net::Shutdown::Both);
    Ok((acked - a0) as f64 * 8.0 / t0.elapsed().as_secs_f64() / 1e6)
}

struct BwRow {
    limit: &'static str,
    limit_mbit: Option<f64>,
    mbit: f64,
}

fn part_b(secs: u64) -> Vec<Result<BwRow, String>> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut vm = boot(Nic::Virtio);
        for c in ["dladm create-vnic -l net0 vnic1", "ipadm create-addr -T static -a 10.0.0.5/24 vnic1"] {
            let out = vm.run(c);
            vm.check(out.trim().is_empty(), format!("{c}: {out}"));
        }
        vm.ns().wait_reachable(std::net::Ipv4Addr::new(10, 0, 0, 5), Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
        let mut rows = Vec::new();
        for (limit, mbit) in [("--", None), ("10M", Some(10.0)), ("100M", Some(100.0)), ("1G", Some(1000.0))] {
            let out = vm.run(&format!("dladm set-linkprop -p maxbw={limit} vnic1"));
            if !out.trim().is_empty() {
                rows.push(Err(format!("maxbw={limit}: {out}")));
                continue;
            }
            eprintln!("(b) maxbw={limit}: {secs} s stream");
            let r = vm.in_ns(|| stream_mbit(std::net::SocketAddr::from(([10, 0, 0, 5], 9)), secs));
            rows.push(r.map(|m| BwRow { limit: if limit == "--" { "unlimited" } else { limit }, limit_mbit: mbit, mbit: m }));
            std::thread::sleep(Duration::from_secs(1));
        }
        rows
    }));
    r.unwrap_or_else(|_| vec![Err("the VM failed (panic above)".into())])
}

// ---------------------------------------------------------------------------
// (c) VNIC to VNIC through the virtual switch (kernel test).

struct SwRow {
    switch: String,
    size: u64,
    fps: u64,
    mbit: u64,
    ns: u64,
}

fn part_c(secs: u64) -> Result<Vec<SwRow>, String> {
    let ns = Netns::create_for_queues(1);
    let mut cfg = Config::with_smp(SMP);
    cfg.net = Net::tap_in_netns(ns.name(), ns.tap(), 1);
    cfg.push_append(&format!("test=vswitch-bench vswitch.ms={}", secs * 1000));
    let mut vm = Vm::boot(cfg);
    let kind = vm.wait_exit(KTEST_TIMEOUT)?;
    let out = vm.transcript();
    if kind != ExitKind::Code(0) {
        return Err(format!("test=vswitch-bench ended {kind:?}:\n{out}"));
    }
    // vswitch-bench: etherstub 60 B: N frames in T ns: F frames/s, M Mbit/s, X ns/frame (...)
    let mut rows = Vec::new();
    for l in out.lines().filter_map(|l| l.strip_prefix("vswitch-bench: ")) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 14 || w[2] != "B:" {
            continue;
        }
        let n = |i: usize| w.get(i).and_then(|x| x.trim_end_matches(',').parse::<u64>().ok()).unwrap_or(0);
        rows.push(SwRow { switch: w[0].to_string(), size: n(1), fps: n(8), mbit: n(10), ns: n(12) });
    }
    if rows.is_empty() {
        return Err(format!("no figures in:\n{out}"));
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------

fn main() {
    let secs: u64 = std::env::var("MACBENCH_SECS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(5);
    let nic = std::env::var("MACBENCH_NIC").unwrap_or_else(|_| "both".into());
    let nics = match nic.as_str() {
        "both" | "" => vec![Nic::Virtio, Nic::Igb],
        "virtio" => vec![Nic::Virtio],
        "igb" => vec![Nic::Igb],
        _ => {
            eprintln!("MACBENCH_NIC={nic}: expected both, virtio or igb");
            exit(2);
        }
    };
    let parts = std::env::var("MACBENCH_PARTS").unwrap_or_else(|_| "abc".into());
    let accel = Config::with_smp(SMP).accel;
    let mut failed = false;

    let a = if parts.contains('a') { part_a(&nics, secs) } else { Vec::new() };
    let b = if parts.contains('b') { part_b(secs) } else { Vec::new() };
    let c = if parts.contains('c') { Some(part_c(secs)) } else { None };

    println!();
    println!("MAC-layer benchmark: Arbalest kernel, {accel} accel, {SMP} CPUs, TAP with {QUEUES} queues, {secs} s per measurement");
    if !a.is_empty() {
        println!();
        println!("(a) Rx at saturation: 64-byte UDP datagrams into discard from {} raw-socket thread(s)", flood_threads());
        println!();
        println!("| NIC | dynamic polling | kernel pkts/s | host sent pkts/s | CPU ns/pkt (net of idle) | CPU ns/pkt (gross) | polled share | intr/s | csw/s | poll-mode entries/s | empty polls/s | busy CPUs idle → load |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for r in &a {
            match r {
                Ok(r) => println!(
                    "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}% | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} → {:.2} |",
                    nic_name(r.nic),
                    if r.polling { "on" } else { "off (interrupts only)" },
                    r.pps,
                    r.sent_pps,
                    r.ns_per_pkt,
                    r.ns_per_pkt_gross,
                    r.polled_share * 100.0,
                    r.intr_per_s,
                    r.csw_per_s,
                    r.poll_on_per_s,
                    r.empty_polls_per_s,
                    r.idle_busy,
                    r.load_busy
                ),
                Err(e) => {
                    failed = true;
                    println!("| FAILED: {e} |");
                }
            }
        }
        for n in &nics {
            let on = a.iter().flatten().find(|r| r.nic == *n && r.polling);
            let off = a.iter().flatten().find(|r| r.nic == *n && !r.polling);
            if let (Some(on), Some(off)) = (on, off) {
                println!();
                println!(
                    "{}: polling on/off: {:.2}x packets/s, {:.2}x CPU per packet (net)",
                    nic_name(*n),
                    on.pps / off.pps.max(1.0),
                    on.ns_per_pkt / off.ns_per_pkt.max(1.0)
                );
            }
        }
    }
    if !b.is_empty() {
        println!();
        println!("(b) maxbw on a VNIC over net0 (virtio-net): one TCP stream from the host into its discard port");
        println!();
        println!("| maxbw | measured Mbit/s | measured / limit |");
        println!("|---|---:|---:|");
        for r in &b {
            match r {
                Ok(r) => println!(
                    "| {} | {:.2} | {} |",
                    r.limit,
                    r.mbit,
                    r.limit_mbit.map(|l| format!("{:.3}", r.mbit / l)).unwrap_or_else(|| "-".into())
                ),
                Err(e) => {
                    failed = true;
                    println!("| FAILED: {e} | | |");
                }
            }
        }
    }
    if let Some(c) = c {
        println!();
        println!("(c) VNIC to VNIC through the virtual switch (test=vswitch-bench: one sender thread, frames handed to a receive function)");
        println!();
        match c {
            Ok(rows) => {
                println!("| switch | frame bytes | frames/s | Mbit/s | ns/frame |");
                println!("|---|---:|---:|---:|---:|");
                for r in rows {
                    println!("| {} | {} | {} | {} | {} |", r.switch, r.size, r.fps, r.mbit, r.ns);
                }
            }
            Err(e) => {
                failed = true;
                println!("FAILED: {e}");
            }
        }
    }
    println!();
    println!("command: MACBENCH_NIC={nic} MACBENCH_PARTS={parts} MACBENCH_SECS={secs} MACBENCH_FLOOD_THREADS={} cargo bench -p arbalest-tests --bench mac", flood_threads());
    println!("date:    {}", sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    println!("machine: {}", Host::probe().unwrap_or_else(|e| panic!("{e}")).summary());
    println!("note:    the host's flood threads and clients share the cores with QEMU's vCPU and I/O threads");
    if failed {
        exit(1);
    }
}
