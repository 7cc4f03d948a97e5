//! The kernel on a real network: virtio-net with 4 queue pairs on a
//! multi-queue TAP inside a network namespace each test creates, 4 CPUs,
//! `ip=10.0.0.2/24,gw=10.0.0.1`; Linux tools and Rust clients talk to it
//! from inside the namespace (see `arbalest_tests::net`). Plus one check of
//! `cargo run -- --net user` from the host's loopback.
//!
//! `net_standin.rs` runs the same clients against a Linux stand-in, so a
//! failure here that does not happen there is the kernel's.

use std::process::Command;
use std::time::{Duration, Instant};

use arbalest_tests::frames::parse_mac;
use arbalest_tests::net::{
    guest, inject_malformed, interrupt_excess, mpstat_interval, parse_dlstat_rings, parse_netstat_s, rx_drop_counters, table_value,
    tcp_echo_verify, udp_echo_verify, EchoLoad, NetVm, ECHO_PORT, GUEST_IP, GUEST_MAC,
};
use arbalest_tests::{Config, Vm, PROMPT};

const SMP: usize = 4;
const QUEUES: usize = 4;
/// From the prompt to the first ping reply.
const REACHABLE: Duration = Duration::from_secs(60);

fn boot() -> NetVm {
    boot_cfg(Config::with_smp(SMP))
}

/// [`boot`] from a configuration of `SMP` CPUs (its NIC and append kept).
fn boot_cfg(cfg: Config) -> NetVm {
    let vm = NetVm::boot_with(cfg, QUEUES);
    vm.wait_reachable(REACHABLE);
    vm
}

/// A different seed per run, printed so a failure can be replayed
/// (`NET_TEST_SEED=N`).
fn seed(test: &str) -> u64 {
    let s = std::env::var("NET_TEST_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    eprintln!("{test}: seed {s} (NET_TEST_SEED={s} to replay)");
    s
}

#[test]
fn linux_ping_20() {
    let vm = boot();
    let r = vm.ns().ping(GUEST_IP, 20, "0.2");
    vm.check(
        r.transmitted == 20 && r.received == 20,
        format!("expected 20 of 20 replies, got {} of {}:\n{}", r.received, r.transmitted, r.output.describe()),
    );
}

#[test]
fn tcp_echo_4mib() {
    let vm = boot();
    let seed = seed("tcp_echo_4mib");
    let r = vm.in_ns(|| tcp_echo_verify(guest(ECHO_PORT), 4 << 20, seed, Duration::from_secs(300)));
    match r {
        Ok(st) => eprintln!(
            "tcp_echo_4mib: {} bytes in {:.1} s ({:.1} Mbit/s each way)",
            st.bytes,
            st.elapsed.as_secs_f64(),
            st.bytes as f64 * 8.0 / st.elapsed.as_secs_f64() / 1e6
        ),
        Err(e) => vm.check(false, format!("TCP echo of 4 MiB: {e}")),
    }
}

#[test]
fn udp_echo_1000() {
    let vm = boot();
    let seed = seed("udp_echo_1000");
    let r = vm.in_ns(|| udp_echo_verify(guest(ECHO_PORT), 1000, 1472, seed, Duration::from_secs(2), 5));
    match r {
        Ok(st) => eprintln!("udp_echo_1000: {st:?}"),
        Err(e) => vm.check(false, format!("UDP echo: {e}")),
    }
}

fn ring_packets(vm: &mut NetVm) -> Vec<(usize, u64)> {
    let out = vm.run("dlstat show-phys -r -p -o link,index,ipkts");
    let rows: Vec<(usize, u64)> =
        parse_dlstat_rings(&out).into_iter().filter(|(l, _, _)| l == "net0").map(|(_, i, p)| (i, p)).collect();
    vm.check(!rows.is_empty(), format!("dlstat show-phys -r -p -o link,index,ipkts listed no net0 rings:\n{out}"));
    rows
}

#[test]
fn sixteen_connections_spread_over_rings_and_cpus() {
    let mut vm = boot();
    let seed = seed("sixteen_connections");

    // QEMU attaches a TAP queue per queue pair the driver enabled.
    let q = vm.ns().tap_queues();
    vm.check(
        q == Some((QUEUES, 0)),
        format!("the TAP's (numqueues, numdisabled) is {q:?}, not ({QUEUES}, 0): the driver did not enable {QUEUES} queue pairs"),
    );

    let before = ring_packets(&mut vm);
    vm.check(
        before.len() == QUEUES,
        format!("expected {QUEUES} Rx rings for net0 in dlstat show-phys -r, got {before:?}"),
    );

    // Idle baseline, then the same interval under load.
    let (idle, idle_len) = mpstat_interval(&mut vm, 5).unwrap_or_else(|e| panic!("idle mpstat: {e}"));
    let load = match vm.in_ns(|| EchoLoad::start(guest(ECHO_PORT), 16, 1024, seed)) {
        Ok(l) => l,
        Err(e) => {
            vm.check(false, format!("16 connections: {e}"));
            unreachable!()
        }
    };
    let warm = Instant::now();
    while load.round_trips() < 32 && warm.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let busy = mpstat_interval(&mut vm, 5);
    let stats = load.stop();
    let (busy, busy_len) = busy.unwrap_or_else(|e| panic!("mpstat under load: {e}"));
    for (i, s) in stats.iter().enumerate() {
        vm.check(
            s.error.is_none() && s.round_trips > 0,
            format!("connection {i} of 16: {} round trips, error {:?}", s.round_trips, s.error),
        );
    }
    let total: u64 = stats.iter().map(|s| s.round_trips).sum();

    let after = ring_packets(&mut vm);
    let deltas: Vec<(usize, u64)> = after
        .iter()
        .map(|(i, p)| (*i, p.saturating_sub(before.iter().find(|(j, _)| j == i).map(|(_, q)| *q).unwrap_or(0))))
        .collect();
    let busy_rings = deltas.iter().filter(|(_, d)| *d >= 10).count();

    let excess = interrupt_excess(&idle, idle_len, &busy, busy_len);
    let threshold = |cpu: usize| {
        let base = idle.iter().find(|r| r.cpu == cpu).map(|r| r.non_ipi()).unwrap_or(0) as f64;
        (0.01 * base).max(50.0)
    };
    let busy_cpus = excess.iter().filter(|(c, x)| *x >= threshold(*c)).count();
    let summary = format!(
        "{total} echo round trips over 16 connections\n\
         Rx ring packet deltas (ring, ipkts): {deltas:?}\n\
         idle mpstat ({idle_len:?}): {idle:?}\nloaded mpstat ({busy_len:?}): {busy:?}\n\
         non-IPI interrupts beyond the idle rate, per CPU: {excess:?}"
    );
    eprintln!("{summary}");
    vm.check(busy_rings >= 2, format!("fewer than 2 Rx rings received >= 10 packets:\n{summary}"));
    vm.check(
        busy_cpus >= 2,
        format!("fewer than 2 CPUs took device interrupts beyond their idle rate (>= max(50, 1%)):\n{summary}"),
    );
}

/// Polls `dladm show-phys` until net0's STATE is `want`.
fn wait_state(vm: &mut NetVm, want: &str, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        last = vm.run("dladm show-phys");
        if table_value(&last, "net0", "STATE").as_deref() == Some(want) {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("net0 did not show STATE {want} within {timeout:?}; last dladm show-phys:\n{last}"))
}

#[test]
fn link_down_and_up_from_the_host() {
    let mut vm = boot();
    let out = vm.run("dladm show-phys");
    vm.check(table_value(&out, "net0", "STATE").as_deref() == Some("up"), format!("net0 not up after boot:\n{out}"));
    vm.check(table_value(&out, "net0", "DEVICE").as_deref() == Some("vioif0"), format!("net0 is not vioif0:\n{out}"));

    vm.link_down();
    let r = wait_state(&mut vm, "down", Duration::from_secs(10));
    vm.check(r.is_ok(), format!("after ip link set arbtap0 down + set_link off: {r:?}"));
    vm.link_up();
    let r = wait_state(&mut vm, "up", Duration::from_secs(10));
    vm.check(r.is_ok(), format!("after ip link set arbtap0 up + set_link on: {r:?}"));
    vm.wait_reachable(Duration::from_secs(30));
}

#[test]
fn malformed_frames_are_dropped_and_pings_still_answered() {
    malformed_frames_on("fireengine");
}

/// The same on the stack Arbalest ran before FireEngine.
#[test]
fn malformed_frames_are_dropped_and_pings_still_answered_smoltcp() {
    malformed_frames_on("smoltcp");
}

/// Injects malformed frames at the guest running `stack` (kernel argument
/// `stack=`): none is answered, each is counted as a drop in that stack's
/// counters ([`rx_drop_counters`]) or as a ring error, and pings are still
/// answered afterwards.
fn malformed_frames_on(stack: &str) {
    let mut cfg = Config::with_smp(SMP);
    cfg.push_append(&format!("stack={stack}"));
    let mut vm = boot_cfg(cfg);
    let shown = vm.run("ipadm show-if");
    vm.check(table_value(&shown, "net0", "STACK").as_deref() == Some(stack), format!("net0 is not on {stack}:\n{shown}"));
    let seed = seed("malformed_frames");
    let r = vm.ns().ping(GUEST_IP, 5, "0.2");
    vm.check(r.received == 5, format!("before injection: {}", r.output.describe()));
    let stats_before = vm.run("dladm show-link -s");
    let netstat_before = vm.run("netstat -s");

    let report = inject_malformed(vm.ns(), parse_mac(GUEST_MAC).unwrap(), 12, seed, Duration::from_secs(5));
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            vm.check(false, format!("injection: {e}"));
            unreachable!()
        }
    };
    eprintln!("malformed frames sent: {:?}", report.sent);
    vm.check(
        report.answered_bad.is_empty(),
        format!("the kernel answered frames it should have dropped:\n{}", report.answered_bad.join("\n")),
    );

    // Every malformed frame that reached the guest is counted as a drop:
    // by the stack (netstat -s) or as a ring error (dladm show-link -s).
    let netstat_after = vm.run("netstat -s");
    let stats_mid = vm.run("dladm show-link -s");
    let (nb, na) = (parse_netstat_s(&netstat_before), parse_netstat_s(&netstat_after));
    let counters = rx_drop_counters(stack);
    let missing: Vec<&str> = counters.iter().copied().filter(|c| !na.contains_key(*c)).collect();
    vm.check(missing.is_empty(), format!("netstat -s lacks the drop counters {missing:?}:\n{netstat_after}"));
    let deltas: Vec<(&str, u64)> = counters
        .iter()
        .map(|c| (*c, na[*c].saturating_sub(nb.get(*c).copied().unwrap_or(0))))
        .collect();
    let ierr = |t: &str| table_value(t, "net0", "IERRORS").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ierrors = ierr(&stats_mid).saturating_sub(ierr(&stats_before));
    let counted = deltas.iter().map(|(_, d)| d).sum::<u64>() + ierrors;
    eprintln!("drop counter deltas: {deltas:?}, IERRORS +{ierrors}; {} frames must be counted", report.must_count);
    vm.check(
        counted >= report.must_count as u64,
        format!(
            "{} malformed frames reached the guest but only {counted} drops were counted \
             (netstat -s deltas {deltas:?}, IERRORS +{ierrors}); sent {:?}",
            report.must_count, report.sent
        ),
    );

    let r = vm.ns().ping(GUEST_IP, 5, "0.2");
    vm.check(r.received == 5, format!("after injecting {} frames: {}", report.total_sent(), r.output.describe()));
    let stats_after = vm.run("dladm show-link -s");
    vm.check(
        table_value(&stats_after, "net0", "IPACKETS").is_some(),
        format!("dladm show-link -s did not answer with a net0 row:\n{stats_after}"),
    );
    let rings = vm.run("dlstat show-phys -r");
    vm.check(rings.contains("net0"), format!("dlstat show-phys -r:\n{rings}"));
    eprintln!("dladm show-link -s before:\n{stats_before}\nafter:\n{stats_after}\ndlstat show-phys -r:\n{rings}");
}

// ---------------------------------------------------------------------------
// `cargo run --release -- --net user`: the newcomer's path.

#[test]
fn cargo_run_user_networking() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "--release", "-q", "-p", "bootimage", "--", "--net", "user", "--smp", "2"])
        .current_dir(bootimage::workspace_root());
    let mut vm = Vm::spawn_console(cmd, "cargo run --release -q -p bootimage -- --net user --smp 2");
    let line = vm
        .expect_stderr_line(|l| l.starts_with("bootimage: user networking:"), Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{e}"));
    let echo = bootimage::net::parse_forwards_line(&line, bootimage::Proto::Tcp, "echo")
        .unwrap_or_else(|| panic!("no tcp echo port in {line:?}"));
    if let Err(e) = vm.expect(PROMPT, Duration::from_secs(600)) {
        panic!("no prompt: {e}");
    }

    let start = Instant::now();
    let mut out = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        out = vm.run("dladm show-phys");
        if table_value(&out, "net0", "STATE").as_deref() == Some("up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    vm.check(table_value(&out, "net0", "STATE").as_deref() == Some("up"), format!("net0 not up:\n{out}"));

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], echo));
    let r = tcp_echo_verify(addr, 64 << 10, seed("cargo_run_user_networking"), Duration::from_secs(120));
    vm.check(r.is_ok(), format!("TCP echo through 127.0.0.1:{echo} ({line}): {r:?}"));
    vm.poweroff(0);
}
