//! FireEngine's in-kernel HTTP/1.1 server over a real network: the guest
//! boots with `stack=fireengine` (2 CPUs, virtio-net with 2 queue pairs,
//! a TAP in a namespace this test creates) and Linux's tools on the other
//! side talk to it.
//!
//! * HTTP is disabled at boot (`svcs -a` says so, a connect to port 80 is
//!   refused); `svcadm enable http` brings it online;
//! * `curl` gets `/` (the text status page) and `/status.json` (parsed by
//!   Python's `json`), and `/bytes/10000000` byte-exact against the
//!   pattern (`i % 251`);
//! * `wrk` runs at least 10 000 keep-alive requests with no socket error
//!   and no non-2xx answer;
//! * raw sockets: a bad request line gets `400`, an unknown method `405`
//!   with `Allow`, a huge header `431`, a long URI `414`, an unknown path
//!   `404`, a client that stops half-way `408` after the 10 s timeout —
//!   and the server keeps serving afterwards;
//! * 262 idle connections at once: those over the bound of 256 get a
//!   `503`, counted in `refused`, and the server serves again after;
//! * `svcs -l http` shows the counters; `svcadm disable http` takes it
//!   offline and a connect is refused again.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use arbalest_tests::net::{require_program, NetVm, GUEST_IP};
use arbalest_tests::Config;

fn boot() -> NetVm {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));
    vm
}

fn http() -> SocketAddr {
    SocketAddr::from((GUEST_IP, 80))
}

/// Runs `cmd` in the guest's shell; (output, exit status).
fn run_status(vm: &mut NetVm, cmd: &str) -> (String, i32) {
    let out = vm.run(cmd);
    let st = vm.run("echo $?");
    (out, st.trim().parse().unwrap_or_else(|_| panic!("status of {cmd:?}: {st:?}")))
}

/// Sends `req` on a new connection, half-closes nothing, and reads until
/// the server closes or `timeout`; the bytes read.
fn raw(req: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect_timeout(&http(), Duration::from_secs(10)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(&req).map_err(|e| format!("write: {e}"))?;
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while start.elapsed() < timeout {
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("read: {e} after {:?}", String::from_utf8_lossy(&got))),
        }
    }
    Err(format!("no close within {timeout:?}; got {:?}", String::from_utf8_lossy(&got)))
}

fn status_line(resp: &[u8]) -> String {
    let s = String::from_utf8_lossy(resp);
    s.lines().next().unwrap_or("").to_string()
}

fn refused(vm: &NetVm) -> bool {
    vm.in_ns(|| matches!(TcpStream::connect_timeout(&http(), Duration::from_secs(10)), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused))
}

#[test]
fn fireengine_http_server() {
    require_program("curl", "curl");
    require_program("wrk", "wrk");
    require_program("python3", "python3");
    let mut vm = boot();
    let dir = std::env::temp_dir().join(format!("arb-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Disabled at boot.
    let (svcs, st) = run_status(&mut vm, "svcs -a");
    assert_eq!(st, 0, "{svcs}");
    let row = |s: &str, fmri: &str| s.lines().find(|l| l.contains(fmri)).map(|l| l.split_whitespace().next().unwrap().to_string());
    assert_eq!(row(&svcs, "svc:/network/http:default").as_deref(), Some("disabled"), "{svcs}");
    assert_eq!(row(&svcs, "svc:/network/echo:stream").as_deref(), Some("online"), "{svcs}");
    assert!(refused(&vm), "port 80 answered while http was disabled");
    let (out, st) = run_status(&mut vm, "svcadm enable nosuchsvc");
    assert_eq!(st, 1);
    assert!(out.contains("Pattern 'nosuchsvc' doesn't match any instances"), "{out}");
    let (out, st) = run_status(&mut vm, "svcadm enable -x http");
    assert_eq!(st, 2, "{out}");

    let (out, st) = run_status(&mut vm, "svcadm enable http");
    assert_eq!(st, 0, "svcadm enable http: {out}");
    let svcs = vm.run("svcs");
    assert_eq!(row(&svcs, "svc:/network/http:default").as_deref(), Some("online"), "{svcs}");

    // curl: the status page, its JSON, 10 MB of pattern.
    let f = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let curl = |vm: &NetVm, path: &str, file: &str| {
        let url = format!("http://{GUEST_IP}{path}");
        let o = vm.ns().cmd_timeout(
            &["curl", "-sS", "--max-time", "120", "-o", file, "-w", "%{http_code} %{size_download}", &url],
            Duration::from_secs(150),
        );
        assert!(o.success(), "{}", o.describe());
        o.stdout
    };
    let w = curl(&vm, "/", &f("index.txt"));
    assert!(w.starts_with("200 "), "{w}");
    let page = std::fs::read_to_string(f("index.txt")).unwrap();
    assert!(page.contains("FireEngine instance on net0") && page.contains("10.0.0.2/24") && page.contains("tcpPassiveOpens"), "{page}");
    assert!(page.contains("svc:/network/http:default"), "{page}");
    let w = curl(&vm, "/status.json", &f("status.json"));
    assert!(w.starts_with("200 "), "{w}");
    let py = format!(
        "import json\nd=json.load(open('{}'))\n\
         assert d['system']=='Arbalest' and d['interface']=='net0', d\n\
         assert any(a['addr']=='10.0.0.2/24' for a in d['addresses']), d['addresses']\n\
         assert d['netstat']['TCP']['tcpPassiveOpens']>=1, d['netstat']['TCP']\n\
         assert any(l['link']=='net0' and l['ipkts']>0 for l in d['links']), d['links']\n\
         assert any(s['fmri']=='svc:/network/http:default' and s['state']=='online' for s in d['services'])\n\
         print('json ok', len(d['netstat']['IPv4']))\n",
        f("status.json")
    );
    let o = arbalest_tests::net::run_cmd(&["python3", "-c", &py], Duration::from_secs(30));
    assert!(o.success() && o.stdout.starts_with("json ok"), "{}", o.describe());
    let w = curl(&vm, "/?format=json", &f("status2.json"));
    assert!(w.starts_with("200 "), "{w}");
    assert!(std::fs::read_to_string(f("status2.json")).unwrap().starts_with("{\"system\":\"Arbalest\""));
    for p in ["/stats/dlstat", "/stats/flowstat"] {
        let w = curl(&vm, p, &f("stats.json"));
        assert!(w.starts_with("200 "), "{p}: {w}");
        let o = arbalest_tests::net::run_cmd(
            &["python3", "-c", &format!("import json\nd=json.load(open('{}'))\nassert isinstance(d,list)\nprint(len(d))", f("stats.json"))],
            Duration::from_secs(30),
        );
        assert!(o.success(), "{p}: {}", o.describe());
    }
    let t = Instant::now();
    let w = curl(&vm, "/bytes/10000000", &f("bytes"));
    assert_eq!(w, "200 10000000", "/bytes/10000000");
    let body = std::fs::read(f("bytes")).unwrap();
    assert_eq!(body.len(), 10_000_000);
    if let Some(i) = body.iter().enumerate().position(|(i, &b)| b != (i % 251) as u8) {
        panic!("/bytes/10000000: byte {i} is {} (want {})", body[i], i % 251);
    }
    eprintln!("/bytes/10000000 in {:?}", t.elapsed());

    // wrk: keep-alive requests, no errors.
    let o = vm.ns().cmd_timeout(
        &["wrk", "-t1", "-c4", "-d15s", "--timeout", "5s", &format!("http://{GUEST_IP}/bytes/64")],
        Duration::from_secs(60),
    );
    assert!(o.success(), "{}", o.describe());
    eprintln!("{}", o.stdout);
    let reqs: u64 = o
        .stdout
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("wrk output: {}", o.stdout));
    assert!(reqs >= 10_000, "wrk made {reqs} requests (want >= 10000):\n{}", o.stdout);
    assert!(!o.stdout.contains("Socket errors"), "{}", o.stdout);
    assert!(!o.stdout.contains("Non-2xx"), "{}", o.stdout);

    // Raw sockets: malformed and oversized requests.
    let long_uri = {
        let mut r = b"GET /".to_vec();
        r.resize(10_000, b'a');
        r.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        r
    };
    let huge_header = {
        let mut r = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        r.resize(20_000, b'b');
        r.extend_from_slice(b"\r\n\r\n");
        r
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad request line", b"GARBAGE\r\n\r\n".to_vec(), "HTTP/1.1 400 Bad Request"),
        ("unknown method", b"BREW /pot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), "HTTP/1.1 405 Method Not Allowed"),
        ("huge header", huge_header, "HTTP/1.1 431 Request Header Fields Too Large"),
        ("long URI", long_uri, "HTTP/1.1 414 URI Too Long"),
        ("unknown path", b"GET /no/such/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), "HTTP/1.1 404 Not Found"),
        ("chunked body", b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), "HTTP/1.1 411 Length Required"),
    ];
    for (what, req, want) in cases {
        let got = vm.in_ns(move || raw(req, Duration::from_secs(30))).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(status_line(&got), want, "{what}: {:?}", String::from_utf8_lossy(&got));
        let s = String::from_utf8_lossy(&got);
        assert!(s.contains("\r\nServer: Arbalest\r\n") && s.contains("\r\nContent-Length: "), "{what}: {s}");
        if what == "unknown method" {
            assert!(s.contains("\r\nAllow: GET, HEAD\r\n"), "{s}");
        }
    }
    // A slow client: half a request, then silence.
    let t = Instant::now();
    let got = vm
        .in_ns(|| raw(b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec(), Duration::from_secs(40)))
        .unwrap_or_else(|e| panic!("slow client: {e}"));
    assert_eq!(status_line(&got), "HTTP/1.1 408 Request Timeout", "{:?}", String::from_utf8_lossy(&got));
    assert!(t.elapsed() >= Duration::from_secs(9), "408 after {:?}", t.elapsed());
    // Still serving.
    let w = curl(&vm, "/", &f("again.txt"));
    assert!(w.starts_with("200 "), "after the bad requests: {w}");

    // Over the bound (256 connections per instance): the next ones get a
    // 503 and are closed; the idle ones are served again once they go.
    let py = format!(
        "import socket,select,time\n\
         S=[socket.create_connection(('{GUEST_IP}',80),timeout=10) for i in range(262)]\n\
         time.sleep(2)\n\
         r,_,_=select.select(S,[],[],1)\n\
         codes=[s.recv(64)[:12].decode() for s in r]\n\
         print(len([c for c in codes if c=='HTTP/1.1 503']), len(codes), flush=True)\n\
         for s in S: s.close()\n"
    );
    let o = vm.ns().cmd_timeout(&["python3", "-c", &py], Duration::from_secs(120));
    assert!(o.success(), "{}", o.describe());
    let n: Vec<usize> = o.stdout.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert!(n[0] >= 1 && n[0] == n[1] && n[0] <= 6, "503s and answers among 262 idle connections: {:?}", o.stdout);
    std::thread::sleep(Duration::from_secs(1));
    let w = curl(&vm, "/", &f("after-flood.txt"));
    assert!(w.starts_with("200 "), "after the 262 connections: {w}");

    let (long, st) = run_status(&mut vm, "svcs -l http");
    assert_eq!(st, 0, "{long}");
    eprintln!("{long}");
    let counter = |name: &str| -> u64 {
        long.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse::<u64>().unwrap()))
            .unwrap_or_else(|| panic!("no {name} in {long}"))
    };
    assert!(counter("requests") >= reqs, "{long}");
    assert!(counter("resp_4xx") >= 6, "{long}");
    assert!(counter("timeouts") >= 1, "{long}");
    assert!(counter("refused") >= n[0] as u64, "{long}");

    // Disabled: refused, and svcs says so.
    let (out, st) = run_status(&mut vm, "svcadm disable http");
    assert_eq!(st, 0, "{out}");
    assert!(refused(&vm), "port 80 answered after svcadm disable http");
    let svcs = vm.run("svcs -a");
    assert_eq!(row(&svcs, "svc:/network/http:default").as_deref(), Some("disabled"), "{svcs}");
    assert_eq!(row(&svcs, "svc:/network/echo:stream").as_deref(), Some("online"), "{svcs}");
    let _ = std::fs::remove_dir_all(&dir);
}
