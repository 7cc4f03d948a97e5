//! `cargo bench -p arbalest-tests --bench net`: the kernel's TCP services
//! measured from a Linux host over a multi-queue TAP (TCG, 2 CPUs, 2 queue
//! pairs, as the machine has 2 cores).
//!
//! * TCP stream into discard (9): Gbit/s acknowledged by the kernel
//! * chargen (19) to the host: Gbit/s received
//! * TCP echo (7) request/response, 1-byte messages: transactions/s, p50/p99
//! * connect, send 1 byte, receive it, close: connections/s, p50/p99
//!
//! Environment: `NETBENCH_SECS` (default 10) per test; `NETBENCH_TARGET=linux`
//! runs the same clients against the Linux stand-in instead of the kernel (a
//! check of the bench itself, and a reference for what the host side can do).

use std::process::{exit, Command};
use std::time::Duration;

use arbalest_tests::net::{guest, Netns, NetVm, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, GUEST_IP};
use arbalest_tests::netbench::{self, ConnectRate, RoundTrips, Throughput};
use arbalest_tests::peer::LinuxPeer;
use arbalest_tests::Config;

const SMP: usize = 2;
const QUEUES: usize = 2;

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0)))
        .unwrap_or(0);
    let qemu = sh(bootimage::QEMU, &["--version"]).lines().next().unwrap_or("?").to_string();
    format!(
        "{} cores ({cpu}), {:.0} GiB, {qemu}, Linux {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        mem as f64 / 1048576.0,
        sh("uname", &["-r"])
    )
}

enum Row {
    Stream(Throughput),
    Rr(RoundTrips),
    Cr(ConnectRate),
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

    // Keep whichever target alive while the clients run.
    let cfg = Config::with_smp(SMP);
    let (vm, peer, target) = if linux {
        (None, Some(LinuxPeer::start()), "Linux stand-in (veth, namespace) - NOT the kernel".to_string())
    } else {
        let target = format!(
            "Arbalest kernel, {} accel, {SMP} CPUs, virtio-net {QUEUES} queue pairs on a multi-queue TAP",
            cfg.accel
        );
        let v = NetVm::boot_with(cfg, QUEUES);
        let t = v.wait_reachable(Duration::from_secs(60));
        eprintln!("guest reachable {:.1} s after the prompt", t.as_secs_f64());
        (Some(v), None, target)
    };
    let ns: &Netns = match (&vm, &peer) {
        (Some(v), _) => v.ns(),
        (None, Some(p)) => p.host(),
        (None, None) => unreachable!(),
    };

    type Bench = Box<dyn Fn() -> Result<Row, String> + Send + Sync>;
    let tests: [(&str, Bench); 4] = [
        ("TCP stream into discard", Box::new(move || netbench::stream_to(guest(DISCARD_PORT), dur).map(Row::Stream))),
        ("chargen to host", Box::new(move || netbench::stream_from(guest(CHARGEN_PORT), dur).map(Row::Stream))),
        ("TCP echo RR, 1 byte", Box::new(move || netbench::tcp_rr(guest(ECHO_PORT), dur).map(Row::Rr))),
        ("connect/send/recv/close", Box::new(move || netbench::connect_rate(guest(ECHO_PORT), dur).map(Row::Cr))),
    ];

    let mut failed = false;
    let mut rows = Vec::new();
    for (name, f) in &tests {
        eprintln!("running: {name} ({secs} s)");
        let r = ns.in_ns(f);
        if r.is_err() {
            failed = true;
        }
        rows.push((name, r));
        // Let queues drain and connections close between tests.
        std::thread::sleep(Duration::from_secs(1));
        if let Some(v) = vm.as_ref() {
            // A lost kernel makes every later figure meaningless.
            if let Err(e) = v.ns().wait_reachable(GUEST_IP, Duration::from_secs(30)) {
                eprintln!("guest unreachable after {name}: {e}");
                failed = true;
                break;
            }
        }
    }

    println!();
    println!("network benchmark: {target}");
    println!("  {:<26} {:>16}  detail", "test", "result");
    for (name, r) in &rows {
        match r {
            Ok(Row::Stream(t)) => println!(
                "  {:<26} {:>11.4} Gbit/s  {:.1} MB in {:.1} s",
                name,
                t.gbit_per_s(),
                t.bytes as f64 / 1e6,
                t.secs
            ),
            Ok(Row::Rr(rt)) => println!(
                "  {:<26} {:>10.0} trans/s  p50 {}, p99 {} ({} transactions)",
                name,
                rt.per_s(),
                ms(rt.p50),
                ms(rt.p99),
                rt.count
            ),
            Ok(Row::Cr(c)) => println!(
                "  {:<26} {:>11.0} conn/s  p50 {}, p99 {} ({} connections, {} failed)",
                name,
                c.rt.per_s(),
                ms(c.rt.p50),
                ms(c.rt.p99),
                c.rt.count,
                c.failures
            ),
            Err(e) => println!("  {:<26} {:>16}  {e}", name, "FAILED"),
        }
    }
    println!();
    println!("command: NETBENCH_SECS={secs} cargo bench -p arbalest-tests --bench net");
    println!("date:    {}", sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    println!("machine: {}", machine());
    println!("note:    host clients and QEMU's vCPU/I/O threads share the same cores; compare figures from one run");
    drop(peer);
    drop(vm);
    if failed {
        exit(1);
    }
}
