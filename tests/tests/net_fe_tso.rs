//! FireEngine TCP segmentation offload on virtio-net (issue 13's
//! offloads): the guest boots with `stack=fireengine`, `net0` is
//! virtio-net with 2 queue pairs and a TAP (with the vnet header, QEMU's
//! default) into a namespace this test creates, Linux on the other side.
//!
//! * 2 MiB through the guest's TCP echo service come back byte-exact,
//!   and a tshark capture on the TAP shows TCP frames from the guest
//!   longer than the MTU (the host sees the large frame before it is
//!   cut); `netstat -s` counts `tcpOutLsoSegs`;
//! * Linux's large sends (GUEST_TSO4 with mergeable buffers) reach the
//!   guest whole and are taken as one segment (`tcpInLargeSegs`);
//! * with `ipadm set-prop -p _lso_outbound=off ipv4` no frame from the
//!   guest exceeds the MTU, and the transfer is still byte-exact.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbalest_tests::Config;
use arbalest_tests::net::{ECHO_PORT, GUEST_IP, NetVm, require_program, tcp_echo_verify};

/// The largest Ethernet frame of a 1500-byte MTU (without FCS).
const MTU_FRAME: usize = 1514;

/// The value of `name` in `netstat -s` output (`name = v` or `name=v`).
fn mib(out: &str, name: &str) -> u64 {
    let flat = out.replace('=', " = ");
    let mut words = flat.split_whitespace();
    while let Some(w) = words.next() {
        if w == name {
            let _ = words.next();
            if let Some(v) = words.next().and_then(|v| v.parse().ok()) {
                return v;
            }
        }
    }
    panic!("no {name} in netstat -s:\n{out}")
}

/// tshark on the namespace's TAP, printing each captured frame's length.
struct Capture {
    child: Child,
    lens: Arc<Mutex<Vec<usize>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing TCP frames from the guest's port 7; returns once
    /// tshark says it is capturing.
    fn start(vm: &NetVm) -> Capture {
        let filter = format!("tcp and src host {GUEST_IP} and src port {ECHO_PORT}");
        let mut child = Command::new("ip")
            .args(["netns", "exec", vm.ns().name(), "tshark", "-n", "-l", "-i", vm.ns().tap(), "-f", &filter])
            .args(["-T", "fields", "-e", "frame.len"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark");
        let lens: Arc<Mutex<Vec<usize>>> = Arc::default();
        let out = child.stdout.take().unwrap();
        let l = lens.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(n) = line.trim().parse() {
                    l.lock().unwrap().push(n);
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut said = Vec::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("Capturing on") {
                    let _ = tx.send(Ok(()));
                }
                said.push(line);
            }
            let _ = tx.send(Err(said.join("\n")));
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(said)) => panic!("tshark did not start capturing:\n{said}"),
            Err(_) => panic!("tshark did not start capturing in 60 s"),
        }
        Capture { child, lens, reader: Some(reader) }
    }

    /// Stops tshark (after a moment for the last frames) and returns the
    /// lengths it saw.
    fn stop(mut self) -> Vec<usize> {
        std::thread::sleep(Duration::from_secs(2));
        self.interrupt();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.lens.lock().unwrap().clone()
    }

    /// SIGINT, as a user's ^C: tshark stops its dumpcap and exits (a
    /// SIGKILL would leave dumpcap capturing, holding the pipe). SIGKILL
    /// after 20 s if it has not.
    fn interrupt(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.interrupt();
    }
}

fn echo(vm: &NetVm, seed: u64) {
    let addr = SocketAddr::from((GUEST_IP, ECHO_PORT));
    let t = Instant::now();
    let r = vm.in_ns(move || tcp_echo_verify(addr, 2 << 20, seed, Duration::from_secs(240)));
    let st = r.unwrap_or_else(|e| panic!("echo {seed}: {e}"));
    eprintln!("echo {seed}: {} bytes byte-exact in {:?} ({:?} with set-up)", st.bytes, st.elapsed, t.elapsed());
}

#[test]
fn fireengine_tso_large_frames_leave_the_guest_and_the_knob_turns_them_off() {
    require_program("tshark", "tshark");
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let mut vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));
    let p = vm.vm().run("ipadm show-prop -c -o current -p _lso_outbound ipv4");
    assert!(p.contains("on"), "LSO should be on by default: {p}");

    // With LSO: frames larger than the MTU leave the guest.
    let cap = Capture::start(&vm);
    echo(&vm, 1);
    let lens = cap.stop();
    let big = lens.iter().filter(|&&n| n > MTU_FRAME).count();
    let max = lens.iter().copied().max().unwrap_or(0);
    eprintln!("LSO on: {} frames from the guest, {big} longer than {MTU_FRAME}, the longest {max}", lens.len());
    assert!(big > 0, "no frame longer than the MTU left the guest ({} frames, longest {max})", lens.len());
    let s = vm.vm().run("netstat -s");
    let (segs, bytes, large_in) = (mib(&s, "tcpOutLsoSegs"), mib(&s, "tcpOutLsoBytes"), mib(&s, "tcpInLargeSegs"));
    eprintln!("tcpOutLsoSegs {segs} tcpOutLsoBytes {bytes} tcpInLargeSegs {large_in}");
    assert!(segs > 0 && bytes > segs * 1448, "LSO counters: {s}");
    assert!(large_in > 0, "Linux's large sends were not taken whole: {s}");

    // Without: none longer than the MTU, still byte-exact.
    let out = vm.vm().run("ipadm set-prop -p _lso_outbound=off ipv4");
    assert!(!out.to_lowercase().contains("error") && !out.contains("cannot"), "{out}");
    let cap = Capture::start(&vm);
    echo(&vm, 2);
    let lens = cap.stop();
    let max = lens.iter().copied().max().unwrap_or(0);
    eprintln!("LSO off: {} frames from the guest, the longest {max}", lens.len());
    assert!(lens.len() > 1000, "the capture saw too little: {} frames", lens.len());
    assert!(max <= MTU_FRAME, "a frame of {max} bytes left the guest with _lso_outbound=off");
    let s2 = vm.vm().run("netstat -s");
    assert_eq!(mib(&s2, "tcpOutLsoSegs"), segs, "LSO segments sent with the knob off");
}
