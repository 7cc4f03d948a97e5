//! The HTTP service of a FireEngine instance and `svcs`/`svcadm`, on a
//! simulated Ethernet with a fake clock: `fe1` serves, `fe2` is the client
//! (the `IpStack` TCP calls the shell's tools use). HTTP starts disabled
//! (a SYN gets a RST), `svcadm enable http` opens port 80, pipelined
//! keep-alive requests are answered in order, `/bytes/N` arrives whole and
//! in pattern through flow control, a slow client gets `408` on the fake
//! clock, counters show in `svcs -l`, `svcadm disable http` refuses new
//! connections again; the commands' errors and statuses.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arbalest_netstack::admin::{self, AdminEnv};
use arbalest_netstack::fireengine::instance::{FeInstance, FeSystem};
use arbalest_netstack::fireengine::squeue::SqEnv;
use arbalest_netstack::{IpStack, NetError, StackKind, TcpId, TcpState};
use common::{FakeLink, mac, net};

use common::FakeSqEnv as Env;

/// `fe1` (10.0.0.1/24, the client) and `fe2` (10.0.0.2/24, the echo
/// service) on one hub.
struct Hub {
    _dma: Arc<arbalest_mac::dma::host::HeapDma>,
    env: Arc<Env>,
    sys: Arc<FeSystem>,
    ports: Vec<(Arc<FakeLink>, Arc<FeInstance>)>,
}

impl Hub {
    fn new() -> Hub {
        let env = Arc::new(Env::default());
        env.now_ns.store(1_000_000_000, Ordering::SeqCst);
        let sys = FeSystem::new(2, env.clone(), 256 << 20);
        let dma: Arc<arbalest_mac::dma::host::HeapDma> = Arc::new(Default::default());
        let mut h = Hub { _dma: dma.clone(), env, sys, ports: Vec::new() };
        for n in 1..=2u8 {
            let link = FakeLink::new(&dma, &format!("fe{n}"), mac(n));
            let inst = Arc::new(FeInstance::new(link.clone(), h.sys.clone(), u64::from(n)).unwrap());
            inst.add_addr(&format!("fe{n}/v4"), net(&format!("10.0.0.{n}/24"))).unwrap();
            h.ports.push((link, inst));
        }
        for _ in 0..3000 {
            if h.ports.iter().all(|(l, i)| i.addr_state(&format!("{}/v4", l.name)) == Some("ok")) {
                break;
            }
            h.tick();
        }
        assert!(h.ports.iter().all(|(l, i)| i.addr_state(&format!("{}/v4", l.name)) == Some("ok")), "DAD finished");
        h
    }

    fn fe(&self, i: usize) -> Arc<FeInstance> {
        self.ports[i].1.clone()
    }

    fn now_us(&self) -> u64 {
        self.env.now_ns() / 1000
    }

    /// Moves frames and runs the squeue workers until quiet (the
    /// instances' polls, which walk every conn for its timers, run once a
    /// tick).
    fn settle(&mut self) {
        for _ in 0..256 {
            let mut moved = 0;
            for i in 0..self.ports.len() {
                let frames: Vec<Vec<u8>> =
                    self.ports[i].0.sent.lock().unwrap().drain(..).map(common::wire_bytes).collect();
                for f in frames {
                    moved += 1;
                    self.deliver(i, &f);
                }
            }
            loop {
                let Some(sq) = self.env.wakes.lock().unwrap().pop_front() else { break };
                self.sys.worker_drain(sq);
                moved += 1;
            }
            if moved == 0 {
                break;
            }
        }
    }

    /// Settles, then advances the clock by 1 ms and polls everyone.
    fn tick(&mut self) {
        self.settle();
        self.env.now_ns.fetch_add(1_000_000, Ordering::SeqCst);
        let now = self.now_us();
        for (_, inst) in &self.ports {
            inst.poll_us(now);
        }
    }

    fn deliver(&self, from: usize, f: &[u8]) {
        if f.len() < 14 {
            return;
        }
        let bcast = f[0] & 1 != 0;
        for (i, (link, inst)) in self.ports.iter().enumerate() {
            if i != from
                && (bcast || f[..6] == link.mac)
                && let Some(m) = link.rx_mblk(f, 1)
            {
                inst.input(m);
            }
        }
    }

    fn cmd(&mut self, line: &str) -> (i32, String) {
        let argv: Vec<&str> = line.split_whitespace().collect();
        let mut out = String::new();
        let status = admin::run(&argv, self, &mut out).expect("a known command");
        (status, out)
    }
}

impl AdminEnv for Hub {
    fn instances(&self) -> Vec<Arc<dyn IpStack>> {
        self.ports.iter().map(|(_, i)| i.clone() as Arc<dyn IpStack>).collect()
    }
    fn create_if(&mut self, _link: &str, _stack: Option<StackKind>) -> Result<Arc<dyn IpStack>, NetError> {
        Err(NetError::NotSupported)
    }
    fn delete_if(&mut self, _link: &str) -> Result<(), NetError> {
        Err(NetError::NotSupported)
    }
    fn squeue_stats(&self) -> Vec<arbalest_netstack::fireengine::squeue::SqStats> {
        self.sys.squeues.snapshot_all()
    }
    fn now_us(&self) -> u64 {
        Hub::now_us(self)
    }
    fn sleep_ms(&mut self, ms: u64) {
        for _ in 0..ms {
            self.tick();
        }
    }
    fn interrupted(&mut self) -> bool {
        false
    }
    fn poll_now(&mut self) {
        self.settle();
    }
}

impl Hub {
    /// Connects fe2 to fe1:80 and runs until established or failed.
    fn connect(&mut self) -> Result<TcpId, TcpState> {
        let c = self.fe(1);
        let id = c.tcp_connect("10.0.0.1".parse().unwrap(), 80).unwrap();
        for _ in 0..2000 {
            let st = c.tcp_status(id).unwrap().state;
            if st == TcpState::Established {
                return Ok(id);
            }
            if st.failed() {
                c.tcp_close(id);
                return Err(st);
            }
            self.tick();
        }
        panic!("connect: no answer");
    }

    /// Sends `req` and reads until the server closes or `until` holds,
    /// for at most `max_ms` ticks of 1 ms.
    fn exchange(&mut self, id: TcpId, req: &[u8], max_ms: u64, until: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        self.exchange_step(id, req, max_ms, 1, until)
    }

    /// [`Hub::exchange`] with the clock moving `step` ms a tick (the
    /// polls walk every conn table bucket: a 10 s wait in 1 ms ticks
    /// takes minutes in a debug build).
    fn exchange_step(&mut self, id: TcpId, req: &[u8], ticks: u64, step: u64, until: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let c = self.fe(1);
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        for _ in 0..ticks {
            if sent < req.len() {
                sent += c.tcp_send(id, &req[sent..]).unwrap();
            }
            loop {
                match c.tcp_recv(id, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if until(&got) || c.tcp_status(id).unwrap().state.peer_finished() {
                break;
            }
            self.env.now_ns.fetch_add((step - 1) * 1_000_000, Ordering::SeqCst);
            self.tick();
        }
        got
    }

    fn svc_counter(&self, name: &str) -> u64 {
        let s = self.fe(0).services().into_iter().find(|s| s.name == "http").unwrap();
        s.counters.iter().find(|(k, _)| *k == name).unwrap().1
    }
}

/// Splits responses: (status, head, body); those numbered in `heads`
/// answer HEAD (no body).
fn responses_h(mut b: &[u8], heads: &[usize]) -> Vec<(u16, String, Vec<u8>)> {
    let mut v = Vec::new();
    while !b.is_empty() {
        let end = b.windows(4).position(|w| w == b"\r\n\r\n").expect("end of head");
        let head = String::from_utf8(b[..end].to_vec()).unwrap();
        assert!(head.starts_with("HTTP/1.1 "), "not a response: {:?}", String::from_utf8_lossy(&b[..b.len().min(200)]));
        let code: u16 = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length")
            .parse()
            .unwrap();
        let len = if heads.contains(&v.len()) { 0 } else { len };
        assert!(head.contains("\r\nServer: Arbalest"), "{head}");
        let body = b[end + 4..end + 4 + len].to_vec();
        b = &b[end + 4 + len..];
        v.push((code, head, body));
    }
    v
}

fn responses(b: &[u8]) -> Vec<(u16, String, Vec<u8>)> {
    responses_h(b, &[])
}

/// Whether `n` responses arrived whole (those numbered in `heads` answer
/// HEAD).
fn complete(n: usize, heads: &'static [usize]) -> impl Fn(&[u8]) -> bool {
    move |b: &[u8]| {
        let mut b = b;
        for k in 0..n {
            let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
            let head = std::str::from_utf8(&b[..end]).unwrap();
            let len: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
            let len = if heads.contains(&k) { 0 } else { len };
            if b.len() < end + 4 + len {
                return false;
            }
            b = &b[end + 4 + len..];
        }
        true
    }
}

#[test]
fn http_enable_serve_pipeline_stream_timeout_disable() {
    let mut h = Hub::new();
    let (st, out) = h.cmd("svcs -a -i fe1");
    assert_eq!(st, 0);
    assert!(out.starts_with("STATE          STIME    FMRI"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("disabled") && l.contains("svc:/network/http:default")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("online") && l.contains("svc:/network/echo:stream")), "{out}");
    assert!(!h.cmd("svcs -i fe1").1.contains("http"), "svcs without -a hides disabled services");
    assert_eq!(h.connect(), Err(TcpState::Refused), "disabled: RST");

    assert_eq!(h.cmd("svcadm enable -i fe1 http"), (0, String::new()));
    assert!(h.cmd("svcs -i fe1 http").1.lines().any(|l| l.starts_with("online") && l.ends_with("fe1")));

    // Pipelined keep-alive requests, answered in order.
    let id = h.connect().unwrap();
    let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /status.json HTTP/1.1\r\nHost: a\r\n\r\nHEAD /bytes/5 HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\nDELETE / HTTP/1.1\r\nHost: a\r\n\r\nGET /bytes/1000000 HTTP/1.1\r\nHost: a\r\n\r\n";
    let got = h.exchange(id, req, 20_000, complete(6, &[2]));
    let r = responses_h(&got, &[2]);
    let codes: Vec<u16> = r.iter().map(|r| r.0).collect();
    assert_eq!(codes, [200, 200, 200, 404, 405, 200]);
    let text = String::from_utf8(r[0].2.clone()).unwrap();
    assert!(text.contains("FireEngine instance on fe1") && text.contains("10.0.0.1/24") && text.contains("tcpActiveOpens"), "{text}");
    let json = String::from_utf8(r[1].2.clone()).unwrap();
    assert!(json.starts_with("{\"system\":\"Arbalest\"") && json.contains("\"tcpPassiveOpens\":") && json.ends_with('}'), "{json}");
    assert!(r[2].1.contains("Content-Length: 5") && r[2].2.is_empty());
    assert!(r[4].1.contains("Allow: GET, HEAD"));
    assert_eq!(r[5].2.len(), 1_000_000);
    assert!(r[5].2.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8), "pattern");
    h.fe(1).tcp_close(id);

    // A slow client: part of a request, then nothing for 10 s.
    let id = h.connect().unwrap();
    let got = h.exchange_step(id, b"GET / HTTP/1.1\r\nHo", 240, 50, |_| false);
    assert!(got.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"), "{}", String::from_utf8_lossy(&got));
    h.fe(1).tcp_close(id);
    assert_eq!(h.svc_counter("timeouts"), 1);
    assert!(h.svc_counter("resp_2xx") >= 4 && h.svc_counter("resp_4xx") >= 3);
    let (st, long) = h.cmd("svcs -l -i fe1 http");
    assert_eq!(st, 0);
    let (_, ns) = h.cmd("netstat -s");
    assert!(ns.lines().any(|l| l.starts_with("tcp      80 http")), "netstat -s lists the HTTP service: {ns}");
    assert!(long.contains("fmri         svc:/network/http:default") && long.contains("port         tcp/80") && long.contains("requests"), "{long}");

    // Connections that close give their slot back at once (TIME_WAIT is
    // TCP's), not after a linger: churn never exhausts the bound.
    for _ in 0..5 {
        let id = h.connect().unwrap();
        let got = h.exchange(id, b"GET /bytes/10 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 2000, |_| false);
        assert_eq!(responses(&got)[0].2.len(), 10);
        h.fe(1).tcp_close(id);
    }
    for _ in 0..100 {
        if h.svc_counter("active") == 0 {
            break;
        }
        h.tick();
    }
    assert_eq!(h.svc_counter("active"), 0, "closed connections still hold slots");

    // Still serving after all that.
    let id = h.connect().unwrap();
    let got = h.exchange(id, b"GET /stats/dlstat HTTP/1.0\r\n\r\n", 5000, |_| false);
    let r = responses(&got);
    assert_eq!(r[0].0, 200);
    assert!(r[0].2.starts_with(b"["), "{}", String::from_utf8_lossy(&r[0].2));
    h.fe(1).tcp_close(id);

    assert_eq!(h.cmd("svcadm disable -i fe1 http"), (0, String::new()));
    assert_eq!(h.connect(), Err(TcpState::Refused), "disabled again: RST");
    assert!(h.cmd("svcs -a -i fe1 http").1.lines().any(|l| l.starts_with("disabled")));
}

#[test]
fn svcadm_toggles_the_other_services_and_refuses_bad_input() {
    let mut h = Hub::new();
    assert_eq!(h.cmd("svcadm disable -i fe1 chargen").0, 0);
    let c = h.fe(1);
    let id = c.tcp_connect("10.0.0.1".parse().unwrap(), 19).unwrap();
    h.sleep_ms(50);
    assert_eq!(c.tcp_status(id).unwrap().state, TcpState::Refused);
    c.tcp_close(id);
    assert_eq!(h.cmd("svcadm enable chargen").0, 0, "without -i: every interface");
    let id = c.tcp_connect("10.0.0.1".parse().unwrap(), 19).unwrap();
    h.sleep_ms(50);
    assert_eq!(c.tcp_status(id).unwrap().state, TcpState::Established);
    c.tcp_close(id);
    assert_eq!(h.cmd("svcadm disable -i fe1 udp-echo").0, 0);
    assert!(h.cmd("svcs -a -i fe1 svc:/network/echo:dgram").1.contains("disabled"));
    assert_eq!(h.cmd("svcadm enable -i fe1 svc:/network/echo:dgram").0, 0);
    assert!(h.cmd("svcs -i fe1 udp-echo").1.contains("online"));

    assert_eq!(h.cmd("svcadm enable foo"), (1, String::from("svcadm: Pattern 'foo' doesn't match any instances\n")));
    let (st, out) = h.cmd("svcadm enable -i fe1 network/echo");
    assert_eq!(st, 1);
    assert!(out.starts_with("svcadm: Pattern 'network/echo' matches multiple instances:"), "{out}");
    let (st, out) = h.cmd("svcadm enable -i nosuch0 http");
    assert_eq!(st, 1);
    assert!(out.contains("nosuch0") && out.contains("No such interface"), "{out}");
    assert_eq!(h.cmd("svcadm frob http").0, 2);
    assert_eq!(h.cmd("svcadm enable").0, 2);
    assert_eq!(h.cmd("svcadm enable -x http").0, 2);
    assert_eq!(h.cmd("svcs -q").0, 2);
    assert_eq!(h.cmd("svcs nope"), (1, String::from("svcs: Pattern 'nope' doesn't match any instances\n")));
}

#[test]
fn smoltcp_lists_its_fixed_services_and_refuses_changes() {
    let mut n = common::Net::new();
    n.add_instance("net0", 1, "10.0.0.1/24");
    let (st, out) = n.cmd("svcs -a");
    assert_eq!(st, 0);
    assert!(out.lines().any(|l| l.starts_with("online") && l.contains("svc:/network/echo:stream") && l.ends_with("net0")), "{out}");
    assert!(out.lines().any(|l| l.contains("svc:/network/echo:dgram")), "{out}");
    assert!(!out.contains("http"), "smoltcp has no HTTP service: {out}");
    assert_eq!(n.cmd("svcadm enable -i net0 http"), (1, String::from("svcadm: http on net0: not supported on the smoltcp stack\n")));
    assert_eq!(n.cmd("svcadm enable http"), (1, String::from("svcadm: http: not supported on the smoltcp stack\n")));
    assert_eq!(n.cmd("svcadm disable echo"), (1, String::from("svcadm: echo: not supported on the smoltcp stack\n")));
    assert!(n.cmd("svcs echo").1.contains("online"), "nothing changed");
}
