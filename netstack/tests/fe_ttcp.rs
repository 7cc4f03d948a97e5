//! `ttcp -c` from a FireEngine instance to another's echo service on a
//! simulated Ethernet with a fake clock: every connection, closed by the
//! client first and released (`tcp_close`) in TIME_WAIT, stays in
//! TIME_WAIT on the client for `_time_wait_interval` (released, not
//! reset: no RST either way, no reset counted), the server keeps none,
//! and once TIME_WAIT has run out nothing is left on either side (conns,
//! user handles, squeue bindings).

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arbalest_netstack::admin::{self, AdminEnv};
use arbalest_netstack::fireengine::instance::{FeInstance, FeSystem};
use arbalest_netstack::fireengine::squeue::SqEnv;
use arbalest_netstack::fireengine::tunables::{TcpTun, Tun};
use arbalest_netstack::{IpStack, NetError, StackKind};
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

    fn tcp_mib(&self, i: usize, name: &str) -> u64 {
        let mib = self.fe(i).mib();
        mib.iter().find(|(s, _)| *s == "TCP").unwrap().1.iter().find(|(k, _)| *k == name).unwrap().1
    }

    /// The states of instance `i`'s connections (listeners left out).
    fn conn_states(&self, i: usize) -> Vec<&'static str> {
        self.fe(i).tcp_endpoints().into_iter().filter(|e| e.remote.is_some()).map(|e| e.state).collect()
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

#[test]
fn cycles_closed_first_stay_in_time_wait_on_the_client_then_go() {
    const N: usize = 200;
    let mut h = Hub::new();
    h.sys.tunables.set(Tun::Tcp(TcpTun::TimeWaitInterval), 5000).unwrap();
    let conns0: Vec<u64> = h.sys.squeues.snapshot_all().iter().map(|s| s.conns).collect();
    let t0 = h.now_us();
    let (status, out) = h.cmd(&format!("ttcp -c {N} -n 32 -i fe1 10.0.0.2"));
    let took_ms = (h.now_us() - t0) / 1000;
    assert_eq!(status, 0, "{out}");
    assert!(out.starts_with(&format!("ttcp: {N} connections of 32 bytes each, echoed and verified, in ")), "{out}");
    // The fake clock moved less than one TIME_WAIT interval: every conn
    // the run released is still in TIME_WAIT on the client.
    assert!(took_ms < 5000, "the run took {took_ms} ms of fake time");
    let client = h.conn_states(0);
    assert_eq!(client.len(), N, "{client:?}");
    assert!(client.iter().all(|s| *s == "TIME_WAIT"), "{client:?}");
    assert!(h.fe(0).tcp_list().is_empty(), "user handles left: {:?}", h.fe(0).tcp_list());
    // The server went through CLOSE_WAIT and LAST_ACK: nothing kept.
    assert!(h.conn_states(1).is_empty(), "{:?}", h.conn_states(1));
    for (i, what) in [(0, "tcpActiveOpens"), (1, "tcpPassiveOpens")] {
        assert_eq!(h.tcp_mib(i, what), N as u64, "fe{}: {what}", i + 1);
    }
    for i in 0..2 {
        for k in ["tcpOutRsts", "tcpEstabResets", "tcpAttemptFails", "tcpCurrEstab"] {
            assert_eq!(h.tcp_mib(i, k), 0, "fe{}: {k}", i + 1);
        }
    }
    // TIME_WAIT runs out: nothing is left, the squeues hold what they
    // held before (the listeners).
    h.env.now_ns.fetch_add(5_000_000_000, Ordering::SeqCst);
    for _ in 0..100 {
        h.tick();
    }
    assert!(h.conn_states(0).is_empty(), "{:?}", h.conn_states(0));
    assert!(h.conn_states(1).is_empty(), "{:?}", h.conn_states(1));
    let conns1: Vec<u64> = h.sys.squeues.snapshot_all().iter().map(|s| s.conns).collect();
    assert_eq!(conns0, conns1, "conns bound to the squeues");
    assert_eq!(h.tcp_mib(0, "tcpOutRsts"), 0);
    // netstat agrees.
    let (status, an) = h.cmd("netstat -an");
    assert_eq!(status, 0);
    assert!(!an.contains("TIME_WAIT") && !an.contains("ESTABLISHED"), "{an}");
}

#[test]
fn block_streams_transactions_and_the_loopback_from_the_shell() {
    let mut h = Hub::new();
    // `-z` streams, over the hub and through fe1's loopback (fused).
    for host in ["10.0.0.2", "127.0.0.1", "10.0.0.1"] {
        let (st, out) = h.cmd(&format!("ttcp -z -n 3m {host}"));
        assert_eq!(st, 0, "{host}: {out}");
        assert!(out.starts_with("ttcp: 3145728 bytes sent, 3145728 echoed and verified in "), "{host}: {out}");
    }
    assert!(h.tcp_mib(0, "tcpFusionFused") >= 2, "the loopback transfers were fused");
    // `-r`: request-response, 1 byte and 3000 bytes.
    for host in ["10.0.0.2", "127.0.0.1"] {
        let (st, out) = h.cmd(&format!("ttcp -r 100 {host}"));
        assert_eq!(st, 0, "{host}: {out}");
        assert!(out.starts_with("ttcp: 100 transactions of 1 bytes in ") && out.trim_end().ends_with(" trans/s)"), "{out}");
        let (st, out) = h.cmd(&format!("ttcp -r 20 -n 3000 {host}"));
        assert_eq!(st, 0, "{host}: {out}");
        assert!(out.starts_with("ttcp: 20 transactions of 3000 bytes in "), "{out}");
    }
    // `-w`: the pause's line, then the verified transfer.
    let (st, out) = h.cmd("ttcp -w 1 -n 1m 127.0.0.1");
    assert_eq!(st, 0, "{out}");
    let first = out.lines().next().unwrap_or("");
    assert!(first.starts_with("ttcp: reading paused 1.00 s: sending stopped at ") && first.contains(" bytes (0 in the last 0.50 s), heap use unknown"), "{out}");
    // Refused combinations.
    for (line, msg) in [
        ("ttcp -r 5 -c 5 10.0.0.2", "-r and -c do not go together"),
        ("ttcp -r 5 -p 9 10.0.0.2", "-r needs an echo"),
        ("ttcp -r 0 10.0.0.2", "bad count: 0"),
        ("ttcp -r 5 -n 100000 10.0.0.2", "bad byte count for -r"),
        ("ttcp -r 5 -w 2 10.0.0.2", "-w is for a stream"),
        ("ttcp -w 2 -c 3 10.0.0.2", "-w is for one connection"),
        ("ttcp -w 0 10.0.0.2", "bad pause: 0"),
    ] {
        let (st, out) = h.cmd(line);
        assert_eq!(st, 2, "{line}: {out}");
        assert!(out.contains(msg) && out.contains("usage: ttcp"), "{line}: {out}");
    }
}
