//! `cargo bench -p arbalest-tests --bench net`: the kernel's TCP services
//! measured from a Linux host over a TAP (TCG, 2 CPUs, a TAP with 2
//! queues, as the machine has 2 cores), over virtio-net and over QEMU's
//! igb (Intel 82576) in one run, side by side.
//!
//! * TCP stream into discard (9): Gbit/s acknowledged by the kernel
//! * chargen (19) to the host: Gbit/s received
//! * TCP echo (7) request/response, 1-byte messages: transactions/s, p50/p99
//! * connect, send 1 byte, receive it, close: connections/s, p50/p99
//!
//! Environment: `NETBENCH_SECS` (default 10) per test; `NETBENCH_NIC` =
//! `both` (default: virtio-net, then igb, each on a fresh VM and TAP),
//! `virtio` or `igb`; `NETBENCH_TARGET=linux` runs the same clients against
//! the Linux stand-in instead of the kernel (a check of the bench itself,
//! and a reference for what the host side can do; `NETBENCH_NIC` is then
//! ignored).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::exit;
use std::time::Duration;

use arbalest_tests::net::{guest, Netns, NetVm, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, GUEST_IP};
use arbalest_tests::netbench::{self, ConnectRate, RoundTrips, Throughput};
use arbalest_tests::peer::LinuxPeer;
use arbalest_tests::Config;
use bootimage::bench::report::{sh, Host};
use bootimage::{Net, Nic};

const SMP: usize = 2;
const QUEUES: usize = 2;

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}



enum Row {
    Stream(Throughput),
    Rr(RoundTrips),
    Cr(ConnectRate),
}

impl Row {
    /// The figure compared across targets (higher is better).
    fn value(&self) -> f64 {
        match self {
            Row::Stream(t) => t.gbit_per_s(),
            Row::Rr(rt) => rt.per_s(),
            Row::Cr(c) => c.rt.per_s(),
        }
    }

    fn headline(&self) -> String {
        match self {
            Row::Stream(t) => format!("{:.4} Gbit/s", t.gbit_per_s()),
            Row::Rr(rt) => format!("{:.0} trans/s", rt.per_s()),
            Row::Cr(c) => format!("{:.0} conn/s", c.rt.per_s()),
        }
    }

    fn latency(&self) -> Option<String> {
        match self {
            Row::Stream(_) => None,
            Row::Rr(rt) => Some(format!("{} / {}", ms(rt.p50), ms(rt.p99))),
            Row::Cr(c) => Some(format!("{} / {}", ms(c.rt.p50), ms(c.rt.p99))),
        }
    }

    fn detail(&self) -> String {
        match self {
            Row::Stream(t) => format!("{:.1} MB in {:.1} s", t.bytes as f64 / 1e6, t.secs),
            Row::Rr(rt) => format!("p50 {}, p99 {} ({} transactions)", ms(rt.p50), ms(rt.p99), rt.count),
            Row::Cr(c) => format!(
                "p50 {}, p99 {} ({} connections, {} failed)",
                ms(c.rt.p50),
                ms(c.rt.p99),
                c.rt.count,
                c.failures
            ),
        }
    }
}

/// What one column of the table is measured against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Linux,
    Kernel(Nic),
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Linux => "Linux stand-in",
            Target::Kernel(Nic::Virtio) => "virtio-net",
            Target::Kernel(Nic::Igb) => "igb",
        }
    }

    fn describe(self) -> String {
        match self {
            Target::Linux => "Linux stand-in (veth, namespace) - NOT the kernel".into(),
            Target::Kernel(Nic::Virtio) => {
                format!("virtio-net-pci, {QUEUES} queue pairs (mq=on), on a {QUEUES}-queue TAP")
            }
            Target::Kernel(Nic::Igb) => {
                format!("QEMU igb (82576), RSS over {SMP} Rx rings (min(CPUs, 16)), on a {QUEUES}-queue TAP")
            }
        }
    }
}

const TESTS: [&str; 4] = ["TCP stream into discard", "chargen to host", "TCP echo RR, 1 byte", "connect/send/recv/close"];

fn run_test(i: usize, dur: Duration) -> Result<Row, String> {
    match i {
        0 => netbench::stream_to(guest(DISCARD_PORT), dur).map(Row::Stream),
        1 => netbench::stream_from(guest(CHARGEN_PORT), dur).map(Row::Stream),
        2 => netbench::tcp_rr(guest(ECHO_PORT), dur).map(Row::Rr),
        _ => netbench::connect_rate(guest(ECHO_PORT), dur).map(Row::Cr),
    }
}

/// Boots (or starts) `target` and runs every test against it, in order.
/// `Err` for each test not run when the target was lost.
fn run_target(target: Target, dur: Duration) -> Vec<Result<Row, String>> {
    let (vm, peer) = match target {
        Target::Linux => (None, Some(LinuxPeer::start())),
        Target::Kernel(nic) => {
            let mut cfg = Config::with_smp(SMP);
            cfg.net = Net::none().with_nic(nic);
            let v = NetVm::boot_with(cfg, QUEUES);
            let t = v.wait_reachable(Duration::from_secs(60));
            eprintln!("{}: guest reachable {:.1} s after the prompt", target.label(), t.as_secs_f64());
            (Some(v), None)
        }
    };
    let ns: &Netns = match (&vm, &peer) {
        (Some(v), _) => v.ns(),
        (None, Some(p)) => p.host(),
        (None, None) => unreachable!(),
    };
    let mut rows = Vec::new();
    for (i, name) in TESTS.iter().enumerate() {
        eprintln!("running on {}: {name} ({} s)", target.label(), dur.as_secs());
        rows.push(ns.in_ns(|| run_test(i, dur)));
        // Let queues drain and connections close between tests.
        std::thread::sleep(Duration::from_secs(1));
        if let Some(v) = vm.as_ref() {
            // A lost kernel makes every later figure meaningless.
            if let Err(e) = v.ns().wait_reachable(GUEST_IP, Duration::from_secs(30)) {
                eprintln!("{}: guest unreachable after {name}: {e}", target.label());
                while rows.len() < TESTS.len() {
                    rows.push(Err(format!("not run: the guest became unreachable after {name}")));
                }
                break;
            }
        }
    }
    drop(peer);
    drop(vm);
    rows
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore harness arguments.
    let secs: u64 = match std::env::var("NETBENCH_SECS") {
        Ok(v) => match v.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("NETBENCH_SECS={v}: not a positive number of seconds");
                exit(2);
            }
        },
        Err(_) => 10,
    };
    let dur = Duration::from_secs(secs);
    let linux = std::env::var("NETBENCH_TARGET").is_ok_and(|v| v == "linux");
    let nic = std::env::var("NETBENCH_NIC").unwrap_or_else(|_| "both".into());
    let targets: Vec<Target> = if linux {
        vec![Target::Linux]
    } else {
        match nic.as_str() {
            "both" | "" => vec![Target::Kernel(Nic::Virtio), Target::Kernel(Nic::Igb)],
            "virtio" => vec![Target::Kernel(Nic::Virtio)],
            "igb" => vec![Target::Kernel(Nic::Igb)],
            _ => {
                eprintln!("NETBENCH_NIC={nic}: expected both, virtio or igb");
                exit(2);
            }
        }
    };
    let accel = Config::with_smp(SMP).accel;

    // One target at a time: each gets the whole machine.
    let mut failed = false;
    let mut results: Vec<(Target, Vec<Result<Row, String>>)> = Vec::new();
    for &t in &targets {
        let rows = match catch_unwind(AssertUnwindSafe(|| run_target(t, dur))) {
            Ok(rows) => rows,
            Err(_) => (0..TESTS.len()).map(|_| Err("not run: the target failed (panic above)".to_string())).collect(),
        };
        failed |= rows.iter().any(|r| r.is_err());
        results.push((t, rows));
    }

    let w = 20;
    println!();
    if linux {
        println!("network benchmark: {}", Target::Linux.describe());
    } else {
        println!("network benchmark: Arbalest kernel, {accel} accel, {SMP} CPUs, one fresh VM and TAP per NIC, {secs} s per test");
        for (t, _) in &results {
            println!("  {:<11} {}", format!("{}:", t.label()), t.describe());
        }
    }
    let ratio = results.len() == 2;
    let mut header = format!("  {:<26}", "test");
    for (t, _) in &results {
        header.push_str(&format!(" {:>w$}", t.label()));
    }
    let ratio_head = if ratio { format!("{}/{}", results[1].0.label(), results[0].0.label()) } else { String::new() };
    let rw = ratio_head.len().max(10);
    if ratio {
        header.push_str(&format!(" {ratio_head:>rw$}"));
    }
    println!("{header}");
    for (i, name) in TESTS.iter().enumerate() {
        let mut line = format!("  {name:<26}");
        for (_, rows) in &results {
            let cell = match &rows[i] {
                Ok(r) => r.headline(),
                Err(_) => "FAILED".into(),
            };
            line.push_str(&format!(" {cell:>w$}"));
        }
        if ratio {
            let cell = match (&results[0].1[i], &results[1].1[i]) {
                (Ok(a), Ok(b)) if a.value() > 0.0 => format!("{:.2}x", b.value() / a.value()),
                _ => "-".into(),
            };
            line.push_str(&format!(" {cell:>rw$}"));
        }
        println!("{line}");
    }
    println!("  latency p50 / p99:");
    for (i, name) in TESTS.iter().enumerate() {
        if results.iter().all(|(_, rows)| rows[i].as_ref().ok().and_then(Row::latency).is_none()) {
            continue;
        }
        let mut line = format!("  {name:<26}");
        for (_, rows) in &results {
            let cell = rows[i].as_ref().ok().and_then(Row::latency).unwrap_or_else(|| "-".into());
            line.push_str(&format!(" {cell:>w$}"));
        }
        println!("{line}");
    }
    println!("  detail:");
    for (t, rows) in &results {
        for (name, r) in TESTS.iter().zip(rows) {
            match r {
                Ok(r) => println!("    {:<14} {name:<26} {}", t.label(), r.detail()),
                Err(e) => println!("    {:<14} {name:<26} FAILED: {e}", t.label()),
            }
        }
    }
    println!();
    let env = if linux { "NETBENCH_TARGET=linux ".to_string() } else { format!("NETBENCH_NIC={nic} ") };
    println!("command: {env}NETBENCH_SECS={secs} cargo bench -p arbalest-tests --bench net");
    println!("date:    {}", sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    println!("machine: {}", Host::probe().unwrap_or_else(|e| panic!("{e}")).summary());
    println!("note:    host clients and QEMU's vCPU/I/O threads share the same cores; compare figures from one run");
    if failed {
        exit(1);
    }
}
