//! FireEngine path MTU discovery on the wire (RFC 1191): the guest boots
//! with `stack=fireengine`, large sends off (`_lso_outbound=off`, so each
//! frame it sends is one segment), behind the impairment relay (20 ms each
//! way: [`arbalest_tests::impair`], so that plenty is in flight). A Linux
//! client in the relay's namespace reads
//! the guest's chargen (19); while it reads, scapy sends the guest ICMP
//! "fragmentation needed, next-hop MTU 1000" quoting a guest segment
//! still in flight: its sequence number is the guest's ISN (from the
//! SYN-ACK) + what the client has received (read and queued) + a segment
//! or two, 20 times over (quotes already acknowledged are out of window
//! and ignored, later ones no smaller). tshark captures the guest's
//! segments (a capture file, so it keeps up): every one from 200 ms after
//! the last ICMP is at most 1000 bytes of IP, the reader kept receiving without a stall, and `netstat
//! -s` shows icmpInFragNeeded, tcpPmtuDecreases and tcpInIcmpErrors.

use std::collections::BTreeMap;

use arbalest_tests::impair::{Impairment, Relay, HOST_LINK};
use arbalest_tests::net::{parse_netstat_s, NetVm, CHARGEN_PORT, GUEST_IP, HOST_IP};
use arbalest_tests::Config;

const SCRIPT: &str = r#"
import sys, socket, threading, time, subprocess, os, fcntl, termios, struct
from scapy.all import IP, ICMP, TCP, Raw, send, AsyncSniffer, conf
conf.verb = 0
dst, iface, me, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pcap = "/tmp/arb-pmtu-%d.pcap" % os.getpid()
cap = subprocess.Popen(["tshark", "-q", "-i", iface, "-s", "96", "-w", pcap, "-f", "tcp and src host %s and src port %d" % (dst, port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
synack = AsyncSniffer(iface=iface, filter="tcp and src host %s and src port %d" % (dst, port),
                      lfilter=lambda p: p.haslayer(TCP) and (int(p[TCP].flags) & 0x12) == 0x12, count=1)
synack.start()
time.sleep(2.0)
got = [0]
progress = []
stop = [False]
s = socket.create_connection((dst, port), timeout=10)
lport = s.getsockname()[1]
def reader():
    while not stop[0]:
        n = len(s.recv(65536))
        if n == 0:
            break
        got[0] += n
t = threading.Thread(target=reader)
t.start()
synack.join(5)
irs = synack.results[0][TCP].seq
time.sleep(1.5)
t_first = time.time()
# A sequence number the guest has sent and not had acknowledged: past
# what this side has received (read + queued) by a segment or two.
for i in range(20):
    inq = struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, bytes(4)))[0]
    seq = (irs + 1 + got[0] + inq + 1500 + 500 * (i % 4)) & 0xffffffff
    quote = bytes(IP(src=dst, dst=me, len=1500, flags="DF", id=1) / TCP(sport=port, dport=lport, seq=seq, flags="A"))[:28]
    send(IP(src=me, dst=dst) / ICMP(type=3, code=4, nexthopmtu=1000) / Raw(quote))
    time.sleep(0.05)
t_last = time.time()
print("icmp_sent 20", flush=True)
for k in range(8):
    time.sleep(0.5)
    progress.append(got[0])
stop[0] = True
t.join(15)
s.close()
time.sleep(0.5)
cap.terminate()
cap.wait(10)
rows = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.time_epoch", "-e", "ip.len", "-e", "tcp.len"],
                      capture_output=True, text=True).stdout.split("\n")
os.unlink(pcap)
before, after = [], []
for r in rows:
    f = r.split()
    if len(f) < 3 or int(f[2]) == 0:
        continue
    ts, ln = float(f[0]), int(f[1])
    if ts < t_first:
        before.append(ln)
    elif ts > t_last + 0.2:
        after.append(ln)
print("before_max", max(before) if before else 0, "segs", len(before), flush=True)
print("after_max", max(after) if after else 0, "after_segs", len(after), flush=True)
print("progress", " ".join(str(p) for p in progress), flush=True)
print("received", got[0], flush=True)
"#;

#[test]
fn fireengine_tcp_takes_frag_needed_and_sends_at_most_the_path_mtu() {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let mut vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(std::time::Duration::from_secs(60));
    let out = vm.vm().run("ipadm set-prop -p _lso_outbound=off ipv4");
    assert!(!out.contains("rror"), "{out}");
    let before: BTreeMap<String, u64> = parse_netstat_s(&vm.vm().run("netstat -s"));
    // 20 ms each way, so that much of what the guest sends is in flight.
    let relay = Relay::start(vm.ns(), Impairment { delay: std::time::Duration::from_millis(20), seed: 5, ..Default::default() });
    let out = relay.ns_b().cmd(&[
        "/usr/bin/python3",
        "-c",
        SCRIPT,
        &GUEST_IP.to_string(),
        HOST_LINK,
        &HOST_IP.to_string(),
        &CHARGEN_PORT.to_string(),
    ]);
    eprintln!("{}", out.stdout);
    assert!(out.success(), "{}", out.describe());
    let after: BTreeMap<String, u64> = parse_netstat_s(&vm.vm().run("netstat -s"));
    let d = |k: &str| after.get(k).copied().unwrap_or(0).saturating_sub(before.get(k).copied().unwrap_or(0));
    let s = &out.stdout;
    let field = |key: &str| -> Vec<u64> {
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .map(|v| v.split_whitespace().filter_map(|w| w.parse().ok()).collect())
            .unwrap_or_default()
    };
    eprintln!(
        "icmpInFragNeeded +{} tcpInIcmpErrors +{} tcpInIcmpOutOfWindow +{} tcpPmtuDecreases +{} tcpRetransSegs +{} tcpTimRetrans +{}",
        d("icmpInFragNeeded"),
        d("tcpInIcmpErrors"),
        d("tcpInIcmpOutOfWindow"),
        d("tcpPmtuDecreases"),
        d("tcpRetransSegs"),
        d("tcpTimRetrans")
    );
    assert!(field("before_max")[0] > 1000, "the guest sent full-size segments first: {s}");
    let am = field("after_max");
    assert!(am[0] <= 1000 && am[1] > 100, "after: max {} over {} segments\n{s}", am[0], am[1]);
    let p = field("progress");
    assert!(p.windows(2).all(|w| w[1] > w[0]), "the reader stalled: {p:?}");
    assert!(d("icmpInFragNeeded") >= 1);
    assert!(d("tcpInIcmpErrors") >= 1);
    assert_eq!(d("tcpPmtuDecreases"), 1, "one decrease, the rest no smaller or out of window");
}
