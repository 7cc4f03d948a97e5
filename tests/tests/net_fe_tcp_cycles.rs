//! FireEngine TCP connection churn on the booted kernel (issue 13): the
//! guest boots with `stack=fireengine` (2 CPUs, virtio-net with 2 queue
//! pairs, a TAP into a namespace this test creates), and each test runs
//! 10 000 sequential cycles of connect, 32 bytes echoed, close:
//!
//! * Linux closing first: a Linux client in the namespace against the
//!   guest's echo service (port 7), so TIME_WAIT is on Linux's side and the
//!   guest goes through CLOSE_WAIT and LAST_ACK every time.
//! * The guest closing first: the guest's `ttcp -c 10000 -e -n 32` against a
//!   Linux echo server in the namespace (a thread per connection that
//!   echoes until EOF, then closes), so the guest goes through FIN_WAIT
//!   and TIME_WAIT every time (`ttcp` releases each conn there). The
//!   guest's TIME_WAIT is set to 5 s (`ipadm set-prop -p
//!   _time_wait_interval=5000 tcp`): right after the run the guest's
//!   `netstat -an` holds conns in TIME_WAIT and nothing else, Linux's
//!   `ss -tan state time-wait` none; the server accepted every
//!   connection, echoed its 32 bytes and read its EOF (the guest's FIN)
//!   before closing, with no error.
//!
//! Afterwards (for the guest closing first, once its TIME_WAIT ran out)
//! the guest's `netstat -an` lists nothing but the listeners,
//! `tcpCurrEstab` is 0 and tcpPassiveOpens (tcpActiveOpens) grew by the
//! cycles, the heap (`meminfo`) is back within 128 KiB (a leak of 16
//! bytes a conn would show 160) of what it was after a warm-up of 200
//! cycles of the same kind (it is also printed: Linux closing first, half
//! way; the guest closing first, with its conns in TIME_WAIT), and
//! `sqstat` shows no entry waiting (`QLEN` 0), no drop, and the same
//! conns per squeue as before. The rate is printed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbalest_tests::net::{connect, parse_netstat_s, require_program, NetVm, SplitMix64, ECHO_PORT, GUEST_IP, HOST_IP};
use arbalest_tests::{Config, PROMPT};

const CYCLES: usize = 10_000;
const WARMUP: usize = 200;
const HEAP_SLACK_KIB: u64 = 128;
/// The Linux echo server's port (in the namespace).
const SERVER_PORT: u16 = 5007;
/// The guest's TIME_WAIT while it closes first, ms.
const GUEST_TIME_WAIT_MS: u64 = 5000;

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

/// What the end checks compare with, taken after the warm-up.
struct Before {
    heap_kib: u64,
    sq: Vec<(u64, u64, u64, u64)>,
    mib: BTreeMap<String, u64>,
}

fn before(vm: &mut NetVm) -> Before {
    let heap_kib = heap_kib(vm);
    let sq = sqstat(vm);
    let mib = parse_netstat_s(&vm.run("netstat -s"));
    Before { heap_kib, sq, mib }
}

/// The guest's conn lines of `netstat -an` (listeners left out).
fn conn_lines(an: &str) -> Vec<&str> {
    an.lines().filter(|l| l.contains(&format!("{GUEST_IP}.")) && !l.contains("LISTEN")).collect()
}

/// After `cycles` cycles (and the guest's TIME_WAIT, if any, ran out):
/// `opens` (tcpPassiveOpens or tcpActiveOpens) grew by them, no conn is
/// established or left in `netstat -an` but the listeners, the heap is
/// back within [`HEAP_SLACK_KIB`], and the squeues have nothing waiting,
/// no new drop and the conns they had. Returns the guest's counter
/// (`netstat -s`) deltas since `b`.
fn check_nothing_left(vm: &mut NetVm, b: &Before, opens: &str, cycles: usize) -> BTreeMap<String, u64> {
    let s1 = parse_netstat_s(&vm.run("netstat -s"));
    let d = |k: &str| s1.get(k).copied().unwrap_or(0).saturating_sub(b.mib.get(k).copied().unwrap_or(0));
    eprintln!(
        "{opens} +{} tcpEstabResets +{} tcpAttemptFails +{} tcpOutRsts +{} tcpRetransSegs +{} tcpTimRetrans +{}",
        d(opens),
        d("tcpEstabResets"),
        d("tcpAttemptFails"),
        d("tcpOutRsts"),
        d("tcpRetransSegs"),
        d("tcpTimRetrans")
    );
    assert!(d(opens) >= cycles as u64, "{opens}: {}", d(opens));
    assert_eq!(s1.get("tcpCurrEstab").copied(), Some(0));

    let an = vm.run("netstat -an");
    assert!(conn_lines(&an).is_empty(), "conns left after the cycles:\n{an}");

    let heap1 = heap_kib(vm);
    let sq1 = sqstat(vm);
    let (heap0, sq0) = (b.heap_kib, &b.sq);
    eprintln!("heap {heap0} KiB after the warm-up, {heap1} KiB after; sqstat (cpu, conns, qlen, drops) {sq0:?} -> {sq1:?}");
    assert!(heap1 <= heap0 + HEAP_SLACK_KIB, "heap grew from {heap0} to {heap1} KiB");
    for (a, b) in sq0.iter().zip(&sq1) {
        assert_eq!(b.2, 0, "entries waiting in squeue {b:?}");
        assert_eq!(b.3, a.3, "squeue drops during the cycles: {a:?} -> {b:?}");
        assert_eq!(b.1, a.1, "conns on the squeue changed: {a:?} -> {b:?}");
    }
    s1.keys().map(|k| (k.clone(), d(k))).collect()
}

#[test]
fn fireengine_tcp_10000_connect_echo_close_cycles() {
    let mut vm = boot();
    let warm = vm.in_ns(|| client_first_cycles(WARMUP, 1, Duration::from_secs(300)));
    if let Err(e) = warm {
        panic!("warm-up: {e}\n{}", diagnose(&mut vm));
    }
    std::thread::sleep(Duration::from_secs(2));
    let b = before(&mut vm);

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
    let _ = check_nothing_left(&mut vm, &b, "tcpPassiveOpens", CYCLES);
}

/// What the Linux echo server saw.
#[derive(Default)]
struct ServerStats {
    accepted: AtomicU64,
    /// Connections whose EOF (the guest's FIN) came, after which the
    /// server closed.
    eof_then_closed: AtomicU64,
    bytes: AtomicU64,
    /// The first errors (accept, read, write), with the connection.
    errors: Mutex<Vec<String>>,
}

impl ServerStats {
    fn error(&self, e: String) {
        let mut v = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < 10 {
            v.push(e);
        }
    }
}

/// A Linux echo server on `HOST_IP:SERVER_PORT` in the namespace: a
/// thread per connection echoes what it reads until EOF, then closes its
/// side (so the guest, closing first, ends in TIME_WAIT).
struct EchoServer {
    stop: Arc<AtomicBool>,
    stats: Arc<ServerStats>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    fn start(vm: &NetVm) -> EchoServer {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ServerStats::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let (st, sp) = (stats.clone(), stop.clone());
        let accept = vm.ns().spawn_in_ns(move || {
            let l = match TcpListener::bind((HOST_IP, SERVER_PORT)) {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(format!("bind {HOST_IP}:{SERVER_PORT}: {e}")));
                    return;
                }
            };
            let _ = tx.send(Ok(()));
            for (n, c) in l.incoming().enumerate() {
                if sp.load(Ordering::Acquire) {
                    break;
                }
                match c {
                    Ok(s) => {
                        st.accepted.fetch_add(1, Ordering::Relaxed);
                        let st = st.clone();
                        std::thread::spawn(move || serve(s, n + 1, &st));
                    }
                    Err(e) => st.error(format!("accept: {e}")),
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("echo server: {e}"),
            Err(e) => panic!("echo server did not start: {e}"),
        }
        EchoServer { stop, stats, accept: Some(accept) }
    }

    /// Stops accepting (a last connection of our own wakes the accept).
    fn stop(&mut self, vm: &NetVm) {
        self.stop.store(true, Ordering::Release);
        let addr = SocketAddr::from((HOST_IP, SERVER_PORT));
        let _ = vm.in_ns(|| TcpStream::connect_timeout(&addr, Duration::from_secs(5)));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// One connection of the echo server.
fn serve(mut s: TcpStream, n: usize, st: &ServerStats) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                st.eof_then_closed.fetch_add(1, Ordering::Relaxed);
                return; // drop: close, our FIN
            }
            Ok(k) => {
                st.bytes.fetch_add(k as u64, Ordering::Relaxed);
                if let Err(e) = s.write_all(&buf[..k]) {
                    return st.error(format!("connection {n}: write: {e}"));
                }
            }
            Err(e) => return st.error(format!("connection {n}: read: {e}")),
        }
    }
}

/// `ttcp -c count` from the guest to the server; the conn/s it printed.
/// A failure (or no answer within `timeout`) panics with the guest's view.
fn guest_cycles(vm: &mut NetVm, count: usize, timeout: Duration) -> f64 {
    let cmd = format!("ttcp -c {count} -e -n 32 -p {SERVER_PORT} {HOST_IP}");
    let t0 = Instant::now();
    let out = match vm.try_run(&cmd, timeout) {
        Ok(o) => o,
        Err(e) => {
            vm.send("\x03");
            let rest = vm.expect(PROMPT, Duration::from_secs(30)).unwrap_or_else(|e| e);
            panic!("{cmd}: no answer in {timeout:?} ({e})\nafter Ctrl-C: {rest}\n{}", diagnose(vm));
        }
    };
    let took = t0.elapsed();
    let head = format!("ttcp: {count} connections of 32 bytes each, echoed and verified, in ");
    let line = out.trim();
    let rate = line
        .strip_prefix(&head)
        .and_then(|r| r.split_once(" s ("))
        .and_then(|(_, r)| r.strip_suffix(" conn/s)"))
        .and_then(|r| r.parse::<f64>().ok());
    match rate {
        Some(r) if out.lines().count() == 1 => {
            eprintln!("guest closing first: {line} ({took:?} on the host's clock)");
            r
        }
        _ => panic!("{cmd}:\n{out}\n{}", diagnose(vm)),
    }
}

#[test]
fn fireengine_tcp_10000_cycles_with_the_guest_closing_first() {
    require_program("ss", "iproute2");
    let mut vm = boot();
    let set = vm.run(&format!("ipadm set-prop -p _time_wait_interval={GUEST_TIME_WAIT_MS} tcp"));
    assert!(set.trim().is_empty(), "ipadm set-prop: {set}");
    let cur = vm.run("ipadm show-prop -c -o current -p _time_wait_interval tcp");
    assert_eq!(cur.trim(), GUEST_TIME_WAIT_MS.to_string(), "the guest's TIME_WAIT");
    let mut server = EchoServer::start(&vm);

    guest_cycles(&mut vm, WARMUP, Duration::from_secs(300));
    // The warm-up's TIME_WAIT runs out before the baseline.
    std::thread::sleep(Duration::from_millis(GUEST_TIME_WAIT_MS + 2000));
    let b = before(&mut vm);

    let t0 = Instant::now();
    let rate = guest_cycles(&mut vm, CYCLES, Duration::from_secs(900));
    let took = t0.elapsed();

    // Right after: the guest holds its last conns in TIME_WAIT (about
    // the rate times 5 s of them) and nothing else; Linux holds none.
    let an = vm.run_timeout("netstat -an", Duration::from_secs(120));
    let conns = conn_lines(&an);
    let tw = conns.iter().filter(|l| l.ends_with("TIME_WAIT")).count();
    eprintln!(
        "guest closing first: {tw} conns in TIME_WAIT on the guest {:?} after the run (about {:.0} expected)",
        t0.elapsed() - took,
        rate * GUEST_TIME_WAIT_MS as f64 / 1000.0
    );
    assert!(tw >= 10 && tw == conns.len(), "the guest's conns right after the run ({tw} in TIME_WAIT):\n{an}");
    let ss = vm.ns().cmd(&["ss", "-tan", "state", "time-wait"]);
    assert!(ss.success(), "{}", ss.describe());
    let linux_tw: Vec<&str> = ss.stdout.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("Recv-Q")).collect();
    assert!(linux_tw.is_empty(), "Linux holds conns in TIME_WAIT:\n{}", ss.stdout);
    let heap_tw = heap_kib(&mut vm);
    eprintln!("heap with {tw} conns in TIME_WAIT: {heap_tw} KiB");

    server.stop(&vm);
    let st = &server.stats;
    let (accepted, eof, bytes) = (
        st.accepted.load(Ordering::Relaxed),
        st.eof_then_closed.load(Ordering::Relaxed),
        st.bytes.load(Ordering::Relaxed),
    );
    let errors = st.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let n = (WARMUP + CYCLES) as u64;
    // (The stop's own connection is not counted.)
    assert!(errors.is_empty(), "echo server: {errors:?}");
    assert!(
        accepted == n && eof == n && bytes == 32 * n,
        "echo server: {accepted} accepted, {eof} EOFs, {bytes} bytes (for {n} connections)"
    );

    // TIME_WAIT runs out: nothing is left.
    let deadline = Instant::now() + Duration::from_millis(GUEST_TIME_WAIT_MS) + Duration::from_secs(30);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let an = vm.run_timeout("netstat -an", Duration::from_secs(120));
        if conn_lines(&an).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the guest's TIME_WAIT did not run out:\n{an}");
    }
    let d = check_nothing_left(&mut vm, &b, "tcpActiveOpens", CYCLES);
    // Released in TIME_WAIT, not reset; and Linux reset nothing either.
    for k in ["tcpOutRsts", "tcpEstabResets", "tcpAttemptFails"] {
        assert_eq!(d.get(k).copied(), Some(0), "{k} during the guest's cycles");
    }
    eprintln!("guest closing first: {CYCLES} cycles in {took:?} ({rate} conn/s as ttcp measured)");
}
