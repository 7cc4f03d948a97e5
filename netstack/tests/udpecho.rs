//! `udpecho` against a smoltcp instance and a FireEngine instance on a
//! simulated Ethernet with a fake clock: bad command lines and
//! unreachable hosts (clear errors, nothing left open), every datagram
//! back intact in both directions with mixed and fragmented sizes, and
//! loss, corruption and duplicates reported as such.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arbalest_netstack::admin::{self, AdminEnv};
use arbalest_netstack::fireengine::instance::{FeInstance, FeSystem};
use arbalest_netstack::fireengine::squeue::SqEnv;
use arbalest_netstack::{InstanceConfig, IpInstance, IpStack, NetError, StackKind};
use common::{FakeLink, mac, net};

use common::FakeSqEnv as Env;

/// What the hub does with a frame: how many copies to deliver (0 drops
/// it); it may change the bytes.
type Filter = Box<dyn FnMut(&mut Vec<u8>) -> usize>;

struct Hub {
    dma: Arc<arbalest_mac::dma::host::HeapDma>,
    env: Arc<Env>,
    sys: Arc<FeSystem>,
    ports: Vec<(Arc<FakeLink>, Arc<dyn IpStack>)>,
    filter: Option<Filter>,
    /// `interrupted` answers true after this many calls.
    interrupt_after: Option<u32>,
}

impl Hub {
    /// `sm1` (smoltcp, 10.0.0.1/24) and `fe2` (FireEngine, 10.0.0.2/24).
    fn new() -> Hub {
        let env = Arc::new(Env::default());
        env.now_ns.store(1_000_000_000, Ordering::SeqCst);
        let sys = FeSystem::new(2, env.clone(), 256 << 20);
        let mut h = Hub { dma: Arc::new(Default::default()), env, sys, ports: Vec::new(), filter: None, interrupt_after: None };
        let link = FakeLink::new(&h.dma, "sm1", mac(1));
        let sm = Arc::new(IpInstance::new(link.clone(), InstanceConfig::default()).unwrap());
        sm.add_addr("sm1/v4", net("10.0.0.1/24")).unwrap();
        h.ports.push((link, sm));
        let link = FakeLink::new(&h.dma, "fe2", mac(2));
        let fe = Arc::new(FeInstance::new(link.clone(), h.sys.clone(), 2).unwrap());
        fe.add_addr("fe2/v4", net("10.0.0.2/24")).unwrap();
        h.ports.push((link, fe.clone()));
        for _ in 0..3000 {
            if fe.addr_state("fe2/v4") == Some("ok") {
                break;
            }
            h.tick();
        }
        assert_eq!(fe.addr_state("fe2/v4"), Some("ok"), "DAD finished");
        h
    }

    fn inst(&self, name: &str) -> Arc<dyn IpStack> {
        self.ports.iter().find(|(l, _)| l.name == name).unwrap().1.clone()
    }

    fn now_us(&self) -> u64 {
        self.env.now_ns() / 1000
    }

    /// Moves frames and runs the squeue workers until quiet.
    fn settle(&mut self) {
        for _ in 0..256 {
            let mut moved = 0;
            for i in 0..self.ports.len() {
                let frames: Vec<Vec<u8>> = {
                    let mut q = self.ports[i].0.sent.lock().unwrap();
                    q.drain(..)
                        .map(common::wire_bytes)
                        .collect()
                };
                for mut f in frames {
                    moved += 1;
                    let copies = self.filter.as_mut().map_or(1, |f_| f_(&mut f));
                    for _ in 0..copies {
                        self.deliver(i, &f);
                    }
                }
            }
            loop {
                let Some(sq) = self.env.wakes.lock().unwrap().pop_front() else { break };
                self.sys.worker_drain(sq);
                moved += 1;
            }
            let now = self.now_us();
            for (_, inst) in &self.ports {
                inst.poll_us(now);
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

    fn udp_mib(&self, name: &str) -> u64 {
        let mib = self.inst("fe2").mib();
        mib.iter().find(|(s, _)| *s == "UDP").unwrap().1.iter().find(|(k, _)| *k == name).unwrap().1
    }
}

impl AdminEnv for Hub {
    fn instances(&self) -> Vec<Arc<dyn IpStack>> {
        self.ports.iter().map(|(_, i)| i.clone()).collect()
    }
    fn create_if(&mut self, _link: &str, _stack: Option<StackKind>) -> Result<Arc<dyn IpStack>, NetError> {
        Err(NetError::NotSupported)
    }
    fn delete_if(&mut self, _link: &str) -> Result<(), NetError> {
        Err(NetError::NotSupported)
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
        match &mut self.interrupt_after {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }
    fn poll_now(&mut self) {
        self.settle();
    }
}

/// The user sockets left open on every instance (services' excluded).
fn open_sockets(h: &Hub) -> usize {
    h.ports.iter().map(|(_, i)| i.udp_endpoints().iter().filter(|e| ![7, 9].contains(&e.local.port())).count()).sum()
}

#[test]
fn bad_command_lines_and_unreachable_hosts_are_clear_errors() {
    let mut h = Hub::new();
    let usage = "usage: udpecho [-c count] [-s size[,size...]] [-p port] [-i interval_ms] [-t timeout_ms] [-I interface] host";
    for (line, first) in [
        ("udpecho", "udpecho: missing host"),
        ("udpecho -x 10.0.0.2", "udpecho: illegal option -- x"),
        ("udpecho 10.0.0.2 -c", "udpecho: option requires an argument -- c"),
        ("udpecho 10.0.0.2 10.0.0.3", "udpecho: extra arguments"),
        ("udpecho -c 0 10.0.0.2", "udpecho: bad count: 0"),
        ("udpecho -c -3 10.0.0.2", "udpecho: bad count: -3"),
        ("udpecho -s 3 10.0.0.2", "udpecho: bad size: 3 (each 4 to 65507, at most 64)"),
        ("udpecho -s 65508 10.0.0.2", "udpecho: bad size: 65508 (each 4 to 65507, at most 64)"),
        ("udpecho -s 64,,1472 10.0.0.2", "udpecho: bad size: 64,,1472 (each 4 to 65507, at most 64)"),
        ("udpecho -p 0 10.0.0.2", "udpecho: bad port: 0"),
        ("udpecho -p 65536 10.0.0.2", "udpecho: bad port: 65536"),
        ("udpecho -i x 10.0.0.2", "udpecho: bad interval: x"),
        ("udpecho -t 0 10.0.0.2", "udpecho: bad timeout: 0"),
        ("udpecho -t 3600001 10.0.0.2", "udpecho: bad timeout: 3600001"),
    ] {
        let (status, out) = h.cmd(line);
        assert_eq!(status, 2, "{line}: {out}");
        assert_eq!(out, format!("{first}\n{usage}\n"), "{line}");
    }
    for (line, want) in [
        ("udpecho no.such.host", "udpecho: unknown host no.such.host\n"),
        ("udpecho -I vnic9 10.0.0.2", "udpecho: vnic9: no such interface\n"),
        ("udpecho 192.168.5.5", "udpecho: sendto: Network is unreachable\n"),
        ("udpecho -I sm1 192.168.5.5", "udpecho: sendto: Network is unreachable\n"),
        ("udpecho -I sm1 10.0.0.1", "udpecho: sendto: Network is unreachable\n"),
        ("udpecho -I sm1 10.0.0.255", "udpecho: sendto: Invalid IP address provided\n"),
        ("udpecho -I sm1 -s 9000 10.0.0.2", "udpecho: sendto: Message too long\n"),
    ] {
        let (status, out) = h.cmd(line);
        assert_eq!((status, out.as_str()), (1, want), "{line}");
    }
    assert_eq!(open_sockets(&h), 0, "every socket was closed");
    assert_eq!(h.inst("sm1").stats().tx_packets, 0, "nothing was sent");
}

/// The reply lines of a run: (bytes, seq).
fn replies(out: &str, host: &str) -> Vec<(usize, u32)> {
    out.lines()
        .filter_map(|l| {
            let (bytes, rest) = l.split_once(&format!(" bytes from {host}: udp_seq="))?;
            let (seq, rest) = rest.split_once(". time=")?;
            let ms = rest.strip_suffix(" ms")?;
            let (i, f) = ms.split_once('.')?;
            assert!(i.parse::<u64>().is_ok() && f.len() == 3, "time in {l}");
            Some((bytes.parse().ok()?, seq.parse().ok()?))
        })
        .collect()
}

#[test]
fn every_datagram_comes_back_intact_both_ways_with_fragments() {
    let mut h = Hub::new();
    let sizes = [4usize, 64, 1472, 4000, 8000, 100];
    let list = sizes.map(|s| s.to_string()).join(",");

    // smoltcp → FireEngine's echo.
    let in_before = h.udp_mib("udpInDatagrams");
    let (status, out) = h.cmd(&format!("udpecho -I sm1 -c 20 -s {list} 10.0.0.2"));
    assert_eq!(status, 0, "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(format!("UDPECHO 10.0.0.2 port 7: {list} data bytes").as_str()));
    let want: Vec<(usize, u32)> = (0..20).map(|i| (sizes[i as usize % sizes.len()], i)).collect();
    assert_eq!(replies(&out, "10.0.0.2"), want, "{out}");
    assert_eq!(out.lines().count(), 1 + 20 + 3, "{out}");
    assert!(out.contains("\n\n----10.0.0.2 UDPECHO Statistics----\n"), "{out}");
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("20 datagrams sent, 20 received intact, 0 lost, 0 corrupt; rtt min/avg/max = "), "{last}");
    assert!(last.ends_with(" ms") && last.matches('/').count() == 4, "{last}");
    assert_eq!(h.udp_mib("udpInDatagrams") - in_before, 20, "FireEngine counted them");

    // FireEngine → smoltcp's echo, the instance picked by the subnet.
    let (status, out) = h.cmd(&format!("udpecho -c 20 -s {list} -i 2 10.0.0.1"));
    assert_eq!(status, 0, "{out}");
    assert_eq!(replies(&out, "10.0.0.1"), want, "{out}");
    assert!(out.ends_with("\n") && out.lines().last().unwrap().starts_with("20 datagrams sent, 20 received intact, 0 lost, 0 corrupt;"));
    let echo = h.inst("sm1").service_stats().into_iter().find(|s| s.name == "echo" && s.port == 7 && s.proto.to_string() == "udp").unwrap();
    assert_eq!((echo.accepted, echo.refused), (20, 0));
    assert!(h.udp_mib("udpOutDatagrams") >= 40, "FireEngine sent 20 echoes and 20 datagrams");

    // The defaults: 5 × 64 bytes to port 7.
    let (status, out) = h.cmd("udpecho 10.0.0.2");
    assert_eq!(status, 0, "{out}");
    assert_eq!(replies(&out, "10.0.0.2"), (0..5).map(|i| (64, i)).collect::<Vec<_>>());
    assert_eq!(open_sockets(&h), 0);
}

/// The sequence number of a UDP echo reply from port 7 in `f`, if it is one.
fn echo_seq(f: &[u8]) -> Option<u32> {
    let ip = f.get(14..)?;
    if f[12..14] != [8, 0] || ip[9] != 17 {
        return None;
    }
    let hl = usize::from(ip[0] & 15) * 4;
    let udp = ip.get(hl..)?;
    (udp[0..2] == [0, 7]).then(|| u32::from_be_bytes([udp[8], udp[9], udp[10], udp[11]]))
}

#[test]
fn loss_corruption_and_duplicates_are_reported() {
    let mut h = Hub::new();
    // The echo of 2 is lost, that of 4 damaged (checksum cleared so that
    // it is delivered), that of 1 arrives twice.
    h.filter = Some(Box::new(|f: &mut Vec<u8>| match echo_seq(f) {
        Some(2) => 0,
        Some(4) => {
            let hl = usize::from(f[14] & 15) * 4;
            let udp = 14 + hl;
            f[udp + 6] = 0;
            f[udp + 7] = 0;
            f[udp + 8 + 10] ^= 0xff;
            1
        }
        Some(1) => 2,
        _ => 1,
    }));
    let (status, out) = h.cmd("udpecho -I sm1 -c 6 -t 200 10.0.0.2");
    assert_eq!(status, 1, "{out}");
    assert_eq!(replies(&out, "10.0.0.2"), vec![(64, 0), (64, 1), (64, 3), (64, 5)], "{out}");
    assert!(out.contains("\nudp_seq=2. no reply within 200 ms\n"), "{out}");
    assert!(out.contains("\n64 bytes from 10.0.0.2: udp_seq=1. late or duplicate, ignored\n"), "{out}");
    let corrupt = out.lines().find(|l| l.contains("udp_seq=4.")).unwrap();
    let expected = arbalest_netstack::admin::udpecho::datagram_byte(4, 10);
    assert!(
        corrupt.starts_with("64 bytes from 10.0.0.2: udp_seq=4. time=")
            && corrupt.ends_with(&format!(" ms (corrupt: byte 10 is 0x{:02x}, expected 0x{expected:02x})", expected ^ 0xff)),
        "{corrupt}"
    );
    assert!(out.lines().last().unwrap().starts_with("6 datagrams sent, 4 received intact, 1 lost, 1 corrupt; rtt min/avg/max = "), "{out}");

    // Nobody at the address: everything lost, no round-trip times.
    h.filter = None;
    let (status, out) = h.cmd("udpecho -c 3 -t 100 10.0.0.77");
    assert_eq!(status, 1);
    assert_eq!(out.lines().filter(|l| l.ends_with("no reply within 100 ms")).count(), 3, "{out}");
    assert_eq!(out.lines().last(), Some("3 datagrams sent, 0 received intact, 3 lost, 0 corrupt; rtt min/avg/max = -/-/- ms"));

    // A closed port (FireEngine answers port unreachable): lost too.
    let no_ports = h.udp_mib("udpNoPorts");
    let (status, out) = h.cmd("udpecho -I sm1 -c 2 -t 100 -p 4444 10.0.0.2");
    assert_eq!(status, 1);
    assert_eq!(out.lines().last(), Some("2 datagrams sent, 0 received intact, 2 lost, 0 corrupt; rtt min/avg/max = -/-/- ms"));
    assert_eq!(h.udp_mib("udpNoPorts") - no_ports, 2);

    // Ctrl-C: the summary of what was done, status 1.
    h.interrupt_after = Some(3);
    let (status, out) = h.cmd("udpecho -I sm1 -c 1000 -i 50 10.0.0.2");
    assert_eq!(status, 1);
    let last = out.lines().last().unwrap();
    assert!(last.contains(" datagrams sent, ") && !last.starts_with("1000 "), "{out}");
    h.interrupt_after = None;
    assert_eq!(open_sockets(&h), 0);
}
