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
//! * SYNs with an unknown option of every size (2..40 bytes) are answered;
//!   data segments with unknown options of sizes 4..40 and malformed
//!   areas (length 0, 1, past the area, a wrong MSS or timestamp length)
//!   are taken and echoed, and the guest still answers afterwards;
//! * "B"×10 out of order at +5, then "C"×10 at +0: the echo is
//!   `CCCCCBBBBBBBBBB` (the bytes first accepted).
//! * SACK (RFC 2018) on a conn whose SYN offered it: the SYN-ACK grants
//!   it, out-of-order data draws an immediate ACK of the hole with SACK
//!   blocks, the newest first, and filling a hole still reports the
//!   block beyond the next one.
//!
//! * a zero window from scapy held 30 s against chargen (19): the guest
//!   sends zero-window probes with a growing interval and no RST; once
//!   the window opens the pattern flows, byte-exact from its first byte.
//!
//! * each SYN-with-options eager is reset by scapy at SEG.ACK of its
//!   SYN-ACK (how a peer answers the SYN-ACK to an old duplicate SYN):
//!   counted in tcpAttemptFails, and no conn is left in `netstat -an`.

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

# A second conn: unknown options on SYN and data segments, and an
# overlapping retransmission with different bytes.
sport = 40002
def stream(pkts, start):
    got = {}
    for p in pkts:
        d = bytes(p[TCP].payload)
        for i, b in enumerate(d):
            got.setdefault(p[TCP].seq + i - start, b)
    out = bytearray()
    while len(out) in got:
        out.append(got[len(out)])
    return bytes(out)

for n in [0, 1, 2, 7, 16, 30, 38]:
    opt = [(253, b"x" * n)]
    sa = sr1(IP(dst=dst) / TCP(sport=sport, dport=7, flags="S", seq=5000, window=65535, options=opt), timeout=10)
    ok = sa is not None and sa[TCP].flags == "SA"
    print("synopt", n + 2, "synack" if ok else "none", flush=True)
    if ok:
        send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="R", seq=5001))
sa = sr1(IP(dst=dst) / TCP(sport=sport, dport=7, flags="S", seq=7000, window=65535), timeout=10)
iss = sa[TCP].seq
snd, rcv = 7001, iss + 1
send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="A", seq=snd, ack=rcv, window=65535))
# Data with raw option bytes (well formed of every size, and malformed).
areas = [bytes([253, 2 + n]) + b"y" * n + b"\x01" * ((4 - (2 + n) % 4) % 4) for n in range(0, 39, 6)]
areas += [b"\xfd\x01\x00\x00", b"\xfd\x00\x00\x00", b"\xfd\x28\x00\x00", b"\x02\x03\x05\xb4", b"\x08\x0a\x00\x00", b"\x01" * 40]
sent = b""
for i, a in enumerate(areas):
    a = a[:40]
    a += b"\x00" * ((4 - len(a) % 4) % 4)
    data = b"%02d" % i
    seg = IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd, ack=rcv, window=65535, dataofs=5 + len(a) // 4) / Raw(a + data)
    r = replies(seg, 1.0)
    echoed = stream(r, rcv)
    print("dataopt", len(a), "echoed" if echoed.startswith(data) else "dropped", flush=True)
    if echoed.startswith(data):
        snd += 2
        rcv += 2
    send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="A", seq=snd, ack=rcv, window=65535))
# Overlap: "B" x10 at +5 (out of order, held), then "C" x10 at +0.
s2 = AsyncSniffer(iface=iface, filter="tcp and src host %s and src port 7 and dst port %d" % (dst, sport))
s2.start()
import time
time.sleep(0.5)
send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd + 5, ack=rcv, window=65535) / Raw(b"B" * 10))
time.sleep(0.5)
send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd, ack=rcv, window=65535) / Raw(b"C" * 10))
time.sleep(2)
r = s2.stop()
print("overlap", stream(r, rcv).decode(), flush=True)
snd += 15
send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="R", seq=snd))

# SACK (RFC 2018): a conn that offers SACK-permitted; data with holes.
sport = 40003
sa = sr1(IP(dst=dst) / TCP(sport=sport, dport=7, flags="S", seq=3000, window=65535, options=[("MSS", 1460), ("SAckOK", b"")]), timeout=10)
print("sackok", "yes" if any(o[0] == "SAckOK" for o in sa[TCP].options) else "no", flush=True)
iss = sa[TCP].seq
snd, rcv = 3001, iss + 1
send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="A", seq=snd, ack=rcv, window=65535))
def acks(tag, pkt):
    for p in replies(pkt, 1.0):
        t = p[TCP]
        blocks = [o[1] for o in t.options if o[0] == "SAck"]
        b = [v - snd for v in blocks[0]] if blocks else []
        print(tag, "ack=%d len=%d sack=%s" % (t.ack - snd, len(bytes(t.payload)), ",".join(str(v) for v in b)), flush=True)
# Hole at +0..10: "D" at +10..20, then "E" at +30..40, then the hole filled.
acks("sack1", IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd + 10, ack=rcv, window=65535) / Raw(b"D" * 10))
acks("sack2", IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd + 30, ack=rcv, window=65535) / Raw(b"E" * 10))
acks("sack3", IP(dst=dst) / TCP(sport=sport, dport=7, flags="PA", seq=snd, ack=rcv, window=65535) / Raw(b"F" * 10))
send(IP(dst=dst) / TCP(sport=sport, dport=7, flags="R", seq=snd + 20))

# Zero window held for 30 s against chargen (19), which always has data.
sport = 40004
sa = sr1(IP(dst=dst) / TCP(sport=sport, dport=19, flags="S", seq=9000, window=65535), timeout=10)
iss = sa[TCP].seq
st = {"rcv": iss + 1, "wnd": 0, "probes": [], "data": {}}
def on_seg(p):
    t = p[TCP]
    d = bytes(t.payload)
    if st["wnd"] == 0:
        if d:
            st["probes"].append((time.time(), len(d)))
    else:
        for i, b in enumerate(d):
            st["data"].setdefault(t.seq + i, b)
        while st["rcv"] in st["data"]:
            st["rcv"] += 1
    if t.flags.R:
        st["probes"].append((time.time(), -1))
    send(IP(dst=dst) / TCP(sport=sport, dport=19, flags="A", seq=9001, ack=st["rcv"], window=st["wnd"]))
s3 = AsyncSniffer(iface=iface, filter="tcp and src host %s and src port 19 and dst port %d" % (dst, sport), prn=on_seg, store=False)
s3.start()
time.sleep(0.5)
t0 = time.time()
send(IP(dst=dst) / TCP(sport=sport, dport=19, flags="A", seq=9001, ack=st["rcv"], window=0))
time.sleep(30)
for (t, n) in st["probes"]:
    print("probe %.2f %d" % (t - t0, n), flush=True)
start = st["rcv"]
st["wnd"] = 8192
send(IP(dst=dst) / TCP(sport=sport, dport=19, flags="A", seq=9001, ack=st["rcv"], window=st["wnd"]))
time.sleep(6)
s3.stop()
got = bytearray()
k = start
while k in st["data"]:
    got.append(st["data"][k]); k += 1
want = bytearray()
for i in range(len(got)):
    l, c = divmod(i, 74)
    want.append(13 if c == 72 else 10 if c == 73 else 32 + (l + c) % 95)
print("reopened", len(got), "match" if got == want else "differs", flush=True)
send(IP(dst=dst) / TCP(sport=sport, dport=19, flags="R", seq=9001))
"#;

fn boot() -> NetVm {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let vm = NetVm::boot_with(cfg, 2);
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
         add rule inet arbraw out tcp sport 40001-40004 tcp flags rst counter drop",
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

    let synopt: Vec<&str> = s.lines().filter(|l| l.starts_with("synopt ")).collect();
    assert_eq!(synopt.len(), 7, "{s}");
    assert!(synopt.iter().all(|l| l.ends_with("synack")), "a SYN with an unknown option was not answered: {synopt:?}");
    let dataopt: Vec<&str> = s.lines().filter(|l| l.starts_with("dataopt ")).collect();
    assert_eq!(dataopt.len(), 13, "{s}");
    // Well-formed unknown options are skipped: the data is taken. A
    // malformed area (length 0 or 1, past the area) ends the option walk
    // and the segment is still taken (RFC 9293 3.1: be prepared for an
    // illegal length without crashing).
    assert!(dataopt.iter().all(|l| l.ends_with("echoed")), "data with options not taken: {dataopt:?}");
    let overlap = s.lines().find_map(|l| l.strip_prefix("overlap ")).unwrap_or("");
    assert_eq!(overlap, "CCCCCBBBBBBBBBB", "the echo of overlapping segments is not the bytes first accepted");
    // SACK: the SYN-ACK grants it; each out-of-order segment draws an
    // immediate ACK of the hole's start with SACK blocks, the newest
    // first (RFC 2018 4); filling the hole acknowledges up to the next
    // hole and still reports the block beyond it.
    assert!(s.contains("sackok yes"), "the SYN-ACK did not grant SACK-permitted\n{s}");
    let sack_lines = |tag: &str| -> Vec<String> {
        s.lines().filter_map(|l| l.strip_prefix(&format!("{tag} "))).map(|l| l.to_string()).collect()
    };
    let s1 = sack_lines("sack1");
    assert!(s1.iter().any(|l| l == "ack=0 len=0 sack=10,20"), "out-of-order data: no ACK of the hole with the block 10-20: {s1:?}");
    let s2 = sack_lines("sack2");
    assert!(s2.iter().any(|l| l == "ack=0 len=0 sack=30,40,10,20"), "second hole: blocks not newest first: {s2:?}");
    let s3 = sack_lines("sack3");
    assert!(s3.iter().any(|l| l.starts_with("ack=20 ") && l.ends_with("sack=30,40")), "the hole filled: not acked to 20 with 30-40 still reported: {s3:?}");
    // Zero window for 30 s: probes with growing gaps, never a RST; then
    // the stream flows, byte-exact from its first byte.
    let probes: Vec<(f64, i64)> = s
        .lines()
        .filter_map(|l| l.strip_prefix("probe "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect();
    eprintln!("zero-window probes (s since the window closed, bytes): {probes:?}");
    assert!(probes.iter().all(|p| p.1 > 0), "the guest reset the conn while the window was closed: {probes:?}");
    assert!(probes.len() >= 3, "fewer than 3 zero-window probes in 30 s: {probes:?}");
    let gaps: Vec<f64> = probes.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.last() > gaps.first(), "the probe interval did not back off: {gaps:?}");
    let reopened = s.lines().find_map(|l| l.strip_prefix("reopened ")).unwrap_or("");
    let n: usize = reopened.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(n >= 8192 && reopened.ends_with("match"), "after the window opened: {reopened}");
    vm.wait_reachable(Duration::from_secs(10));
    // Every SYN_RCVD eager that the peer reset (as RFC 9293 has a peer
    // answer an old duplicate's SYN-ACK) is gone, and so is every conn.
    let an = vm.run("netstat -an");
    let left: Vec<&str> = an.lines().filter(|l| l.contains("10.0.0.1.400")).collect();
    assert!(left.is_empty(), "conns left:\n{an}");
    eprintln!(
        "guest: tcpOutChallengeAcks +{} tcpEstabResets +{} tcpInPastWinSegs +{} tcpOutRsts +{} tcpAttemptFails +{}",
        d("tcpOutChallengeAcks"),
        d("tcpEstabResets"),
        d("tcpInPastWinSegs"),
        d("tcpOutRsts"),
        d("tcpAttemptFails")
    );
    assert!(d("tcpOutChallengeAcks") >= 2, "challenge ACKs: {}", d("tcpOutChallengeAcks"));
    // The exact RST on the first conn and the closing RSTs on the second,
    // the SACK one and the chargen one (the SYNs with options were reset
    // in SYN_RCVD: attempt fails).
    assert_eq!(d("tcpEstabResets"), 4);
    assert!(d("tcpInPastWinSegs") >= 1);
    assert!(d("tcpOutRsts") >= 1);
    assert!(d("tcpAttemptFails") >= 7, "eagers reset in SYN_RCVD: {}", d("tcpAttemptFails"));
}
