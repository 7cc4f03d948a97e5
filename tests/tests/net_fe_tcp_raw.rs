//! FireEngine TCP against raw segments (issue 13, RFC 5961 and RFC 9293
//! on the wire): the guest boots with `stack=fireengine` (2 CPUs,
//! virtio-net with 2 queue pairs, a TAP into a namespace this test
//! creates); scapy (`/usr/bin/python3`) in the namespace makes its own
//! connections to the echo service (port 7), and nftables in the
//! namespace drops the namespace kernel's own RSTs for the scapy ports
//! (it knows nothing of those connections). Each case checks the guest's
//! reply on the wire, and the guest's counters are checked at the end.
//!
//! * a RST in the window but not at RCV.NXT → a challenge ACK (its ACK is
//!   RCV.NXT), and the conn still echoes;
//! * a SYN on the established conn → a challenge ACK, the conn survives;
//! * data far beyond the window → an ACK of RCV.NXT, nothing echoed;
//! * a RST at RCV.NXT → no answer, and the conn is gone (data draws RST).
//!
//! Not here yet: old duplicate SYNs, overlapping retransmissions with
//! different bytes, the 30 s zero window with probes, unknown options on
//! the wire (the host tests `fe_tcb_fuzz` and `fe_tcp_wire` cover option
//! parsing).

use std::collections::BTreeMap;
use std::time::Duration;

use arbalest_tests::net::{parse_netstat_s, require_program, NetVm, GUEST_IP};
use arbalest_tests::Config;

const SCRIPT: &str = r#"
import sys
from scapy.all import IP, TCP, Raw, send, sr1, AsyncSniffer, conf
conf.verb = 0
dst = sys.argv[1]
iface = sys.argv[2]
sport = 40001

def replies(pkt, wait=2.0):
    s = AsyncSniffer(iface=iface, filter="tcp and src host %s and src port 7 and dst port %d" % (dst, sport))
    s.start()
    import time
    time.sleep(0.5)
    send(pkt)
    time.sleep(wait)
    return s.stop()

def show(tag, pkts):
    for p in pkts:
        t = p[TCP]
        print(tag, "flags=%s seq=%d ack=%d len=%d" % (t.flags, t.seq, t.ack, len(bytes(t.payload))), flush=True)
    if not pkts:
        print(tag, "none", flush=True)

base = IP(dst=dst) / TCP(sport=sport, dport=7)
syn = IP(dst=dst) / TCP(sport=sport, dport=7, flags="S", seq=1000, window=65535, options=[("MSS", 1460)])
sa = sr1(syn, timeout=10)
if sa is None:
    print("handshake none", flush=True)
    sys.exit(1)
iss = sa[TCP].seq
snd = 1001
rcv = iss + 1
send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="A", seq=snd, ack=rcv, window=65535))
print("rcvnxt", snd, flush=True)

# Echo works.
r = replies(IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd, ack=rcv, window=65535) / Raw(b"hello"))
show("echo1", r)
snd += 5
rcv = max([rcv] + [p[TCP].seq + len(bytes(p[TCP].payload)) for p in r])
send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="A", seq=snd, ack=rcv, window=65535))

# RST in the window, not at RCV.NXT.
show("rst_inwin", replies(IP(dst=dst) / TCP(sport=sport, dport=7, flags="R", seq=snd + 100)))
# SYN on the established conn.
show("syn_estab", replies(IP(dst=dst) / TCP(sport=sport, dport=7, flags="S", seq=snd + 50, window=65535)))
# Data far beyond the window.
show("beyond", replies(IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd + 10000000, ack=rcv, window=65535) / Raw(b"nope")))
# Still alive: echo.
r = replies(IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd, ack=rcv, window=65535) / Raw(b"alive"))
show("echo2", r)
snd += 5
rcv = max([rcv] + [p[TCP].seq + len(bytes(p[TCP].payload)) for p in r])
send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="A", seq=snd, ack=rcv, window=65535))
print("rcvnxt", snd, flush=True)
# RST at RCV.NXT: the conn goes.
show("rst_exact", replies(IP(dst=dst) / TCP(sport=sport, dport=7, flags="R", seq=snd)))
show("after", replies(IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd, ack=rcv, window=65535) / Raw(b"gone?")))
"#;

fn boot() -> NetVm {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let mut vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));
    vm
}

/// The reply lines of case `tag`: (flags, seq, ack, len), or empty for none.
fn case(out: &str, tag: &str) -> Vec<(String, u64, u64, u64)> {
    out.lines()
        .filter(|l| l.starts_with(&format!("{tag} ")) && !l.ends_with(" none"))
        .map(|l| {
            let f = |k: &str| l.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap_or("").to_string();
            (f("flags="), f("seq=").parse().unwrap_or(0), f("ack=").parse().unwrap_or(0), f("len=").parse().unwrap_or(0))
        })
        .collect()
}

#[test]
fn fireengine_tcp_rfc5961_cases_from_scapy() {
    require_program("nft", "nftables");
    let mut vm = boot();
    let o = vm.ns_cmd(&[
        "nft",
        "add table inet arbraw; add chain inet arbraw out { type filter hook output priority 0; }; \
         add rule inet arbraw out tcp sport 40001 tcp flags rst counter drop",
    ]);
    assert!(o.success(), "{}", o.describe());
    let before: BTreeMap<String, u64> = parse_netstat_s(&vm.run("netstat -s"));
    let tap = vm.ns().tap().to_string();
    let out = vm.ns_cmd(&["/usr/bin/python3", "-c", SCRIPT, &GUEST_IP.to_string(), &tap]);
    eprintln!("{}", out.stdout);
    assert!(out.success(), "{}", out.describe());
    let after: BTreeMap<String, u64> = parse_netstat_s(&vm.run("netstat -s"));
    let d = |k: &str| after.get(k).copied().unwrap_or(0).saturating_sub(before.get(k).copied().unwrap_or(0));
    let s = &out.stdout;
    let rcv: Vec<u64> = s.lines().filter_map(|l| l.strip_prefix("rcvnxt ")).filter_map(|v| v.parse().ok()).collect();
    assert_eq!(rcv.len(), 2, "{s}");

    let echo1 = case(s, "echo1");
    assert!(echo1.iter().any(|r| r.3 == 5), "no echo of 5 bytes: {echo1:?}\n{s}");
    let rst = case(s, "rst_inwin");
    assert!(
        rst.iter().any(|r| r.0.contains('A') && !r.0.contains('R') && r.2 == rcv[0] + 5),
        "no challenge ACK (ack {}) for an in-window RST: {rst:?}",
        rcv[0] + 5
    );
    let syn = case(s, "syn_estab");
    assert!(syn.iter().any(|r| r.0 == "A" && r.2 == rcv[0] + 5), "no challenge ACK for a SYN on the conn: {syn:?}");
    let beyond = case(s, "beyond");
    assert!(beyond.iter().any(|r| r.0 == "A" && r.2 == rcv[0] + 5 && r.3 == 0), "no ACK of RCV.NXT for data beyond the window: {beyond:?}");
    assert!(beyond.iter().all(|r| r.3 == 0), "data beyond the window was echoed: {beyond:?}");
    let echo2 = case(s, "echo2");
    assert!(echo2.iter().any(|r| r.3 == 5 && r.2 == rcv[0] + 10), "the conn did not survive the RST and SYN: {echo2:?}");
    let exact = case(s, "rst_exact");
    assert!(exact.is_empty(), "an exact RST was answered: {exact:?}");
    let gone = case(s, "after");
    assert!(gone.iter().any(|r| r.0.contains('R')), "data after an exact RST did not draw a RST: {gone:?}");

    eprintln!(
        "guest: tcpOutChallengeAcks +{} tcpEstabResets +{} tcpInPastWinSegs +{} tcpOutRsts +{}",
        d("tcpOutChallengeAcks"),
        d("tcpEstabResets"),
        d("tcpInPastWinSegs"),
        d("tcpOutRsts")
    );
    assert!(d("tcpOutChallengeAcks") >= 2, "challenge ACKs: {}", d("tcpOutChallengeAcks"));
    assert_eq!(d("tcpEstabResets"), 1);
    assert!(d("tcpInPastWinSegs") >= 1);
    assert!(d("tcpOutRsts") >= 1);
}
