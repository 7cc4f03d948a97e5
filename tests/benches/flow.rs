//! `cargo bench -p arbalest-tests --bench flow`: what flows cost the
//! receive path (issue 6), on the kernel under QEMU (2 CPUs, virtio-net
//! with 2 queue pairs on a TAP in a namespace).
//!
//! The host floods 64-byte UDP datagrams at the kernel's discard port from
//! raw-socket threads (`FLOWBENCH_FLOOD_THREADS`, default 1), as part (a)
//! of the `mac` bench does, with 0, 1, 100 and 10000 flows on net0
//! (`FLOWBENCH_FLOWS`, default `0,1,100,10000`). The flows are
//! `transport=udp,local_port=P` for ports P from 20000 up, none of them the
//! flood's port, so every packet is looked up in a table of that many
//! flows and misses; a last row adds a flow for the flood's own port 9
//! (every packet then hits a flow and goes through its soft ring set).
//!
//! The kernel's packet rate is the growth of `IPKTS` over net0's hardware
//! Rx lanes (`dlstat show-link -r`) over the measuring window (host-timed),
//! its CPU time per packet the busy share of every CPU in `mpstat` over the
//! same window, less the share measured idle just before, divided by the
//! packets.
//!
//! The flows are created the way an administrator would, through the
//! serial console, one `flowadm add-flow` line each; to feed 10000 lines
//! in reasonable time the lines go in batches of at most 3000 bytes (the
//! kernel's console input queue holds 4096) and the bench then waits for
//! one prompt per line, checking each command printed nothing. The time
//! that takes is reported (flows added per second).
//!
//! The bench makes `FLOWBENCH_REPS` rounds (default 3) over all rows — each
//! round removes every flow with one `flowadm remove-flow -l net0` and adds
//! them again — so a slow spell of the shared host spreads over the rows;
//! each row shows the median with the range; the idle guest's CPU and the CPU time of the
//! kernel's periodic MAC threads (`mac/history` samples every link's and
//! flow's counters once a second, `mac/bwtick` walks the shapers) are
//! measured just before each flood, as what flows cost with no traffic.
//!
//! Environment: `FLOWBENCH_SECS` (default 5) per measurement,
//! `FLOWBENCH_REPS`, `FLOWBENCH_FLOWS`, `FLOWBENCH_FLOOD_THREADS`.

use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbalest_tests::net::{mpstat_interval, table_value, MpstatRow, NetVm};
use arbalest_tests::{Config, PROMPT};
use bootimage::bench::report::{sh, Host};
use bootimage::{Net, Nic};

const SMP: usize = 2;
const QUEUES: usize = 2;
/// The flood's destination (the discard service).
const FLOOD_PORT: u16 = 9;
/// First local port of the flows that the flood misses.
const FIRST_PORT: u32 = 20000;

fn boot() -> NetVm {
    let mut cfg = Config::with_smp(SMP);
    cfg.net = Net::none().with_nic(Nic::Virtio);
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
// Flows through the console.

fn flow_line(i: u32) -> String {
    format!("flowadm add-flow -l net0 -a transport=udp,local_port={} f{i}", FIRST_PORT + i)
}

/// Runs `lines` on the console in batches of at most 3000 bytes, waiting
/// for each batch's prompts; every command must print nothing.
fn run_batched(vm: &mut NetVm, lines: &[String]) -> Result<(), String> {
    let mut i = 0;
    while i < lines.len() {
        let mut batch = String::new();
        let mut n = 0;
        while i + n < lines.len() && batch.len() + lines[i + n].len() + 1 <= 3000 {
            batch.push_str(&lines[i + n]);
            batch.push('\n');
            n += 1;
        }
        vm.send(&batch);
        for k in 0..n {
            let text = vm.expect(PROMPT, Duration::from_secs(120))?;
            let line = &lines[i + k];
            // The text holds the echoed line, then the command's output.
            let body = &text[..text.len() - PROMPT.len()];
            let output = match body.find(line.as_str()) {
                Some(p) => body[p + line.len()..].trim(),
                None => body.trim(),
            };
            if !output.is_empty() {
                return Err(format!("`{line}` printed:\n{output}"));
            }
        }
        i += n;
    }
    Ok(())
}

/// Adds flows `have..want`; returns the seconds it took.
fn add_flows(vm: &mut NetVm, have: u32, want: u32) -> Result<f64, String> {
    let lines: Vec<String> = (have..want).map(flow_line).collect();
    let t = Instant::now();
    run_batched(vm, &lines)?;
    Ok(t.elapsed().as_secs_f64())
}

/// Flows on net0, counted from `flowadm show-flow -p -o flow -l net0`.
fn count_flows(vm: &mut NetVm) -> Result<usize, String> {
    let out = vm.try_run("flowadm show-flow -p -o flow -l net0", Duration::from_secs(600))?;
    if out.contains("flowadm:") || out.contains("usage:") {
        return Err(format!("show-flow: {out}"));
    }
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

// ---------------------------------------------------------------------------
// The flood (as in the mac bench).

/// Sums over net0's hardware Rx lanes: ipkts.
fn rx_ipkts(vm: &mut NetVm) -> u64 {
    let out = vm.run("dlstat show-link -r -p -o id,ipkts net0");
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            (f.len() == 2 && f[0] == "hw").then(|| f[1].parse::<u64>().unwrap_or(0))
        })
        .sum()
}

fn busy_cpus(rows: &[MpstatRow]) -> f64 {
    rows.iter().map(|r| (100u64.saturating_sub(r.idl)) as f64 / 100.0).sum()
}

fn flood_threads() -> u16 {
    std::env::var("FLOWBENCH_FLOOD_THREADS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0 && n <= 8).unwrap_or(1)
}

fn flood(vm: &NetVm, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    arbalest_tests::net::udp_flood(vm, flood_threads(), 30000, FLOOD_PORT, stop)
}

/// One measurement of [`measure`].
#[derive(Clone, Copy)]
struct Sample {
    pps: f64,
    sent_pps: f64,
    ns_per_pkt: f64,
    idle_busy: f64,
    load_busy: f64,
    /// CPU ms per second the kernel's periodic MAC threads (`mac/history`,
    /// `mac/bwtick`) used in the idle window before the flood.
    periodic_ms_per_s: f64,
    window_pkts: u64,
    /// Packets the hit flow counted in the window (last row only).
    flow_pkts: Option<u64>,
}

struct Row {
    label: String,
    flows: usize,
    add_secs: Option<f64>,
    added: u32,
    samples: Vec<Sample>,
}

/// CPU time (ms) of the threads named `names`, from the kernel's `threads`.
fn thread_ms(vm: &mut NetVm, names: &[&str]) -> u64 {
    let out = vm.run("threads");
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 7 && names.contains(&f[1])).then(|| f[f.len() - 1].parse::<u64>().unwrap_or(0))
        })
        .sum()
}

const PERIODIC: &[&str] = &["mac/history", "mac/bwtick"];

fn measure(vm: &mut NetVm, secs: u64, hit_flow: Option<&str>) -> Result<Sample, String> {
    let p0 = thread_ms(vm, PERIODIC);
    let (idle, idle_len) = mpstat_interval(vm, 2)?;
    let p1 = thread_ms(vm, PERIODIC);
    let stop = Arc::new(AtomicBool::new(false));
    let senders = flood(vm, stop.clone());
    let t_start = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let f0 = hit_flow.map(|f| flow_ipkts(vm, f));
    let c0 = rx_ipkts(vm);
    let t0 = Instant::now();
    let load = mpstat_interval(vm, secs);
    let c1 = rx_ipkts(vm);
    let t1 = Instant::now();
    let f1 = hit_flow.map(|f| flow_ipkts(vm, f));
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = senders.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let sent_secs = t_start.elapsed().as_secs_f64();
    let (load, _) = load?;
    std::thread::sleep(Duration::from_secs(2));
    let window = (t1 - t0).as_secs_f64();
    let pkts = c1.saturating_sub(c0);
    let pps = pkts as f64 / window;
    let (ib, lb) = (busy_cpus(&idle), busy_cpus(&load));
    let ns = if pps > 0.0 { (lb - ib).max(0.0) / pps * 1e9 } else { f64::NAN };
    let flow_pkts = match (f0, f1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok(Sample {
        pps,
        sent_pps: sent as f64 / sent_secs,
        ns_per_pkt: ns,
        idle_busy: ib,
        load_busy: lb,
        // The `threads` snapshots bracket the idle window (plus two shell
        // commands): an upper bound of the idle rate.
        periodic_ms_per_s: p1.saturating_sub(p0) as f64 / idle_len.as_secs_f64(),
        window_pkts: pkts,
        flow_pkts,
    })
}

/// Waits until the periodic MAC threads use under 10 ms of CPU per second
/// (measured over 2-second windows), at most `limit`; returns how long it
/// took, or `None` if they never got quiet.
fn wait_periodic_quiet(vm: &mut NetVm, limit: Duration) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let (a, t) = (thread_ms(vm, PERIODIC), Instant::now());
        std::thread::sleep(Duration::from_secs(2));
        let b = thread_ms(vm, PERIODIC);
        if (b.saturating_sub(a) as f64) / t.elapsed().as_secs_f64() < 10.0 {
            return Some(start.elapsed().as_secs_f64());
        }
    }
    None
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn flow_ipkts(vm: &mut NetVm, flow: &str) -> u64 {
    let out = vm.run(&format!("flowstat -r -p -o ipkts {flow}"));
    out.trim().parse().unwrap_or(0)
}

fn main() {
    let secs: u64 = std::env::var("FLOWBENCH_SECS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(5);
    let reps: usize = std::env::var("FLOWBENCH_REPS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(3);
    let counts_env = std::env::var("FLOWBENCH_FLOWS").unwrap_or_else(|_| "0,1,100,10000".into());
    let mut counts: Vec<u32> = Vec::new();
    for c in counts_env.split(',').filter(|c| !c.trim().is_empty()) {
        match c.trim().parse::<u32>() {
            Ok(n) if n <= 40000 => counts.push(n),
            _ => {
                eprintln!("FLOWBENCH_FLOWS={counts_env}: expected comma-separated counts up to 40000");
                exit(2);
            }
        }
    }
    counts.sort_unstable();
    counts.dedup();
    let accel = Config::with_smp(SMP).accel;
    let mut rows: Vec<Result<Row, String>> = Vec::new();

    // Rows in order: one per count, then the hit row. Rounds alternate
    // over all rows (flows are removed with one `remove-flow -l net0` and
    // added again each round), so a slow spell of the shared host spreads
    // over the rows instead of landing on one.
    let nrows = counts.len() + 1;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); nrows];
    let mut add_secs: Vec<Vec<f64>> = vec![Vec::new(); nrows];
    let mut remove_secs: Vec<f64> = Vec::new();
    let mut settle_secs: Vec<Option<f64>> = Vec::new();
    let mut error: Option<String> = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut vm = boot();
        for round in 0..reps {
            if round > 0 {
                let t = Instant::now();
                if let Err(e) = run_batched(&mut vm, &["flowadm remove-flow -l net0".to_string()]) {
                    error = Some(format!("remove-flow -l net0: {e}"));
                    return;
                }
                remove_secs.push(t.elapsed().as_secs_f64());
                // The usage history keeps sampling removed flows until their
                // samples age out; the next 0-flow row waits for that.
                let t = Instant::now();
                settle_secs.push(wait_periodic_quiet(&mut vm, Duration::from_secs(180)));
                eprintln!("round {}/{reps}: periodic threads quiet {:.0} s after remove-flow", round + 1, t.elapsed().as_secs_f64());
            }
            let mut have = 0u32;
            for (i, &n) in counts.iter().enumerate() {
                if n > have {
                    eprintln!("round {}/{reps}: adding flows {have}..{n} through the console", round + 1);
                    match add_flows(&mut vm, have, n) {
                        Ok(s) => add_secs[i].push(s),
                        Err(e) => {
                            error = Some(format!("{n} flows: adding them failed: {e}"));
                            return;
                        }
                    }
                }
                have = n;
                match count_flows(&mut vm) {
                    Ok(c) if c == n as usize => {}
                    Ok(c) => {
                        error = Some(format!("{n} flows added but show-flow lists {c}"));
                        return;
                    }
                    Err(e) => {
                        error = Some(format!("{n} flows: {e}"));
                        return;
                    }
                }
                eprintln!("round {}/{reps}: {n} flows (none for port {FLOOD_PORT}): flood {secs} s", round + 1);
                match measure(&mut vm, secs, None) {
                    Ok(s) => samples[i].push(s),
                    Err(e) => {
                        error = Some(format!("{n} flows: {e}"));
                        return;
                    }
                }
            }
            // One more flow, for the flood's own port: every packet hits it.
            let line = format!("flowadm add-flow -l net0 -a transport=udp,local_port={FLOOD_PORT} hit");
            let t = Instant::now();
            if let Err(e) = run_batched(&mut vm, &[line]) {
                error = Some(format!("the hit flow: {e}"));
                return;
            }
            add_secs[nrows - 1].push(t.elapsed().as_secs_f64());
            eprintln!("round {}/{reps}: {} flows, one for port {FLOOD_PORT}: flood {secs} s", round + 1, have + 1);
            match measure(&mut vm, secs, Some("hit")) {
                Ok(s) => samples[nrows - 1].push(s),
                Err(e) => {
                    error = Some(format!("the hit flow: {e}"));
                    return;
                }
            }
        }
    }));
    let last = counts.last().copied().unwrap_or(0);
    let mut prev = 0u32;
    for i in 0..nrows {
        let (label, flows, added) = if i < counts.len() {
            let n = counts[i];
            let added = n - prev;
            prev = n;
            (format!("{n}, all missed"), n as usize, added)
        } else {
            (format!("{last} + 1 for the flood's port"), last as usize + 1, 1)
        };
        if samples[i].is_empty() {
            continue;
        }
        rows.push(Ok(Row {
            label,
            flows,
            add_secs: (!add_secs[i].is_empty()).then(|| median(add_secs[i].clone())),
            added,
            samples: std::mem::take(&mut samples[i]),
        }));
    }
    if let Some(e) = error {
        rows.push(Err(e));
    }
    if result.is_err() {
        rows.push(Err("the VM failed (panic above)".into()));
    }

    let mut failed = false;
    let med = |r: &Row, f: fn(&Sample) -> f64| median(r.samples.iter().map(f).collect());
    println!();
    println!(
        "Flow benchmark: Arbalest kernel, {accel} accel, {SMP} CPUs, virtio-net with {QUEUES} queue pairs on a TAP, \
         {reps} rounds over all rows, {secs} s per measurement (median, min-max)"
    );
    println!(
        "64-byte UDP datagrams into the discard port (9) from {} raw-socket thread(s); flows transport=udp,local_port=P on net0",
        flood_threads()
    );
    println!();
    println!("| flows on net0 | kernel pkts/s | vs 0 flows | host sent pkts/s | CPU ns/pkt (net of idle) | guest busy CPUs idle → flood | mac/history + mac/bwtick idle, ms/s | flows added through the console |");
    println!("|---|---:|---:|---:|---:|---|---:|---|");
    let base = rows.iter().flatten().find(|r| r.flows == 0).map(|r| med(r, |s| s.pps));
    for r in &rows {
        match r {
            Ok(r) => {
                let pps = med(r, |s| s.pps);
                let lo = r.samples.iter().map(|s| s.pps).fold(f64::INFINITY, f64::min);
                let hi = r.samples.iter().map(|s| s.pps).fold(0.0, f64::max);
                let rel = base.map(|b| format!("{:.2}x", pps / b.max(1.0))).unwrap_or_else(|| "-".into());
                let add = match r.add_secs {
                    Some(s) if r.added > 0 => format!("{} in {:.1} s ({:.0}/s)", r.added, s, r.added as f64 / s.max(1e-6)),
                    _ => "-".into(),
                };
                let hit: Vec<String> = r
                    .samples
                    .iter()
                    .filter_map(|s| s.flow_pkts.map(|f| format!("{f}/{}", s.window_pkts)))
                    .collect();
                let hit = if hit.is_empty() { String::new() } else { format!("; hit flow counted {}", hit.join(", ")) };
                println!(
                    "| {} | {:.0} ({:.0}-{:.0}) | {rel} | {:.0} | {:.0} | {:.2} → {:.2} | {:.0} | {add}{hit} |",
                    r.label,
                    pps,
                    lo,
                    hi,
                    med(r, |s| s.sent_pps),
                    med(r, |s| s.ns_per_pkt),
                    med(r, |s| s.idle_busy),
                    med(r, |s| s.load_busy),
                    med(r, |s| s.periodic_ms_per_s),
                );
            }
            Err(e) => {
                failed = true;
                println!("| FAILED: {e} | | | | | | | |");
            }
        }
    }
    println!();
    if !remove_secs.is_empty() {
        println!();
        println!(
            "`flowadm remove-flow -l net0` of all {} flows: median {:.2} s; the periodic threads were quiet again (< 10 ms/s) after {}",
            counts.last().copied().unwrap_or(0) + 1,
            median(remove_secs.clone()),
            settle_secs
                .iter()
                .map(|s| s.map(|s| format!("{s:.0} s")).unwrap_or_else(|| "never (180 s)".into()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!();
    println!(
        "command: FLOWBENCH_FLOWS={counts_env} FLOWBENCH_SECS={secs} FLOWBENCH_REPS={reps} FLOWBENCH_FLOOD_THREADS={} cargo bench -p arbalest-tests --bench flow",
        flood_threads()
    );
    println!("date:    {}", sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    println!("machine: {}", Host::probe().unwrap_or_else(|e| panic!("{e}")).summary());
    println!("note:    the host's flood threads share the 2 cores with QEMU's vCPU and I/O threads");
    if failed {
        exit(1);
    }
}
