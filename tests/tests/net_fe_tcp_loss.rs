//! FireEngine TCP under loss and duplication (issue 13's booted
//! Must-shows that exercise the wire): the guest boots with
//! `stack=fireengine` (2 CPUs, virtio-net with 2 queue pairs, a TAP into a
//! namespace this test creates). The impairment is nftables' netdev hooks
//! on the TAP inside the namespace (ingress for frames from the guest,
//! egress for frames to it): this machine's kernel is built without
//! `sch_netem` (`CONFIG_NET_SCH_NETEM` is not set; `tc qdisc ... netem`
//! answers "Specified qdisc kind is unknown"), so random loss is `numgen
//! random` + `drop` and duplication is `dup to` the TAP. Delay and
//! reordering have no nftables equivalent: for them the second test puts
//! [`arbalest_tests::impair::Relay`] between the guest and Linux, a
//! userspace stand-in for netem (Linux's `10.0.0.1` moves into a second
//! namespace behind a veth pair; two threads carry frames between the TAP
//! and the veth and hold each for its delay, some longer so later ones
//! overtake them, and drop some; see that module). A Linux client echoes
//! seeded random bytes through the guest's echo service (port 7), writer
//! and reader on two threads, and checks every byte.
//!
//! The hooks see the guest's large sends (LSO) whole, before the host cuts
//! them into wire segments, so a "1 % loss" there would drop 1 % of
//! 45-segment bursts — often a whole window, which only a timeout can
//! repair — not 1 % of segments. The guest's LSO is therefore off here
//! (`ipadm set-prop -p _lso_outbound=off ipv4`): every frame it sends is
//! one wire segment, as on a real link (`net_fe_tso` covers LSO).
//!
//! * 1 % loss each way, 64 MiB: byte-exact; a `tshark` capture on the TAP
//!   (snaplen 96, bounded packet count) shows SACK blocks (it prints how
//!   many from each side); the guest's `netstat -s` shows
//!   tcpRetransSegs > 0, tcpOutFastRetrans > 0, and tcpTimRetrans a small
//!   fraction of the fast retransmits (the bound is explained at
//!   [`rto_bound`]).
//! * 1 % duplication towards the guest with 0.2 % loss, 8 MiB: byte-exact;
//!   the guest counts the duplicates.
//! * 5 % loss each way, 4 MiB (shorter: recovery at 5 % is slow under
//!   TCG): byte-exact, tcpRetransSegs > 0.
//!
//! `fireengine_tcp_recovers_from_delay_and_reordering`, through the relay
//! with 20 ms delay each way (so at least 40 ms RTT, which a ping from the
//! client's namespace must show first); a reordered frame is held 5 ms
//! longer than the rest:
//!
//! * 1 % reordering each way, 64 MiB: byte-exact; the capture on the TAP
//!   shows SACK blocks; the guest counts out-of-order segments
//!   (tcpInUnorderSegs > 0); its retransmit counters are printed.
//! * 5 % reordering and 1 % loss each way, 16 MiB: byte-exact;
//!   tcpRetransSegs > 0, tcpOutFastRetrans > 0, tcpTimRetrans within
//!   [`rto_bound`].
//! * The relay's counters show it delayed, reordered and dropped frames
//!   and lost none it was not asked to (no queue overflow, no super-frame,
//!   no checksum it could not fill in); afterwards its namespace is gone
//!   and the guest has no connection established.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arbalest_tests::impair::{Impairment, Relay};
use arbalest_tests::net::{
    in_netns, netns_ping, parse_netstat_s, require_program, tcp_echo_verify, NetVm, ECHO_PORT, GUEST_IP, HOST_IP,
};
use arbalest_tests::Config;

/// Boots the guest (FireEngine, 2 CPUs, 2 queue pairs) with LSO off.
fn boot() -> NetVm {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let mut vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));
    let out = vm.vm().run("ipadm set-prop -p _lso_outbound=off ipv4");
    assert!(!out.to_lowercase().contains("error") && !out.contains("cannot"), "{out}");
    vm
}

fn ns_ok(vm: &NetVm, argv: &[&str]) {
    let o = vm.ns_cmd(argv);
    assert!(o.success(), "{}", o.describe());
}

/// Impairs TCP on the TAP both ways with nftables' netdev hooks (ingress:
/// frames from the guest; egress: frames to the guest): each frame is
/// dropped with probability `loss_permille`/1000, and frames to the guest
/// are duplicated with probability `dup_percent`/100. Replaces what an
/// earlier call set.
fn impair(vm: &NetVm, loss_permille: u32, dup_percent: u32) {
    let tap = vm.ns().tap().to_string();
    let _ = vm.ns_cmd(&["nft", "delete", "table", "netdev", "arbimpair"]);
    let mut rules = format!(
        "table netdev arbimpair {{\n\
         chain from_guest {{ type filter hook ingress device {tap} priority 0; ip protocol tcp numgen random mod 1000 < {loss_permille} counter drop; }}\n\
         chain to_guest {{ type filter hook egress device {tap} priority 0; ip protocol tcp numgen random mod 1000 < {loss_permille} counter drop;"
    );
    if dup_percent > 0 {
        rules += &format!(" ip protocol tcp numgen random mod 100 < {dup_percent} counter dup to {tap};");
    }
    rules += " }\n}\n";
    let file = format!("/tmp/arbalest-impair-{}.nft", std::process::id());
    std::fs::write(&file, rules).unwrap();
    ns_ok(vm, &["nft", "-f", &file]);
    let _ = std::fs::remove_file(&file);
}

fn netstat_s(vm: &mut NetVm) -> BTreeMap<String, u64> {
    parse_netstat_s(&vm.run("netstat -s"))
}

fn delta(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>, k: &str) -> u64 {
    b.get(k).copied().unwrap_or(0).saturating_sub(a.get(k).copied().unwrap_or(0))
}

/// A tshark capture on the TAP into a bounded file (96-byte snaplen,
/// at most `packets` packets).
struct Capture {
    child: Child,
    file: String,
}

impl Capture {
    fn start(vm: &NetVm, packets: u32) -> Capture {
        let file = format!("/tmp/arbalest-loss-{}.pcap", std::process::id());
        let _ = std::fs::remove_file(&file);
        let child = Command::new("ip")
            .args(["netns", "exec", vm.ns().name(), "tshark", "-q", "-n", "-i", vm.ns().tap(), "-s", "96"])
            .args(["-c", &packets.to_string(), "-w", &file, "-f", "tcp port 7"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tshark");
        // Let dumpcap open the interface.
        let t0 = Instant::now();
        while std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) == 0 && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(1));
        Capture { child, file }
    }

    /// Stops the capture and counts segments carrying SACK blocks, per
    /// source address. The file is removed unless `ARBALEST_KEEP_PCAP` is
    /// set (to look at it with `tshark -r`).
    fn sack_segments(mut self) -> BTreeMap<String, u64> {
        // SIGINT to the tshark we started, by its id, so it closes the file.
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let t0 = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let o = Command::new("tshark")
            .args(["-n", "-r", &self.file, "-Y", "tcp.options.sack_le", "-T", "fields", "-e", "ip.src"])
            .output()
            .expect("tshark -r");
        let mut m = BTreeMap::new();
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            *m.entry(l.trim().to_string()).or_insert(0) += 1;
        }
        if std::env::var_os("ARBALEST_KEEP_PCAP").is_none() {
            let _ = std::fs::remove_file(&self.file);
        }
        m
    }
}

/// The largest tcpTimRetrans a transfer may show next to `fast` fast
/// retransmits and still count as recovered by SACK/fast retransmit. An
/// RTO-only recovery would show one timeout per loss episode and no fast
/// retransmit. With SACK at 1 % loss a timeout is needed only when a
/// retransmission is itself lost (about 1 % of them) or the loss hits the
/// tail of a burst with too few segments behind it for three duplicate
/// ACKs, plus the odd spurious timeout when TCG stalls a vCPU for longer
/// than the 400 ms minimum RTO: a fifth of the fast retransmits (and 3
/// more for a short run) leaves room for those and still fails any
/// recovery that leans on the timer.
fn rto_bound(fast: u64) -> u64 {
    fast / 5 + 3
}

/// Echoes `total` bytes through the guest from a client in namespace `ns`.
fn echo(ns: &str, total: usize, seed: u64, timeout: Duration) -> Duration {
    let addr = SocketAddr::from((GUEST_IP, ECHO_PORT));
    let r = in_netns(ns, move || tcp_echo_verify(addr, total, seed, timeout));
    match r {
        Ok(st) => st.elapsed,
        Err(e) => panic!("echo of {total} bytes (seed {seed}): {e}"),
    }
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e6
}

#[test]
fn fireengine_tcp_recovers_from_loss_reorder_delay_duplication() {
    require_program("tshark", "tshark");
    require_program("nft", "nftables");
    let mut vm = boot();

    // 1 % loss each way, 64 MiB.
    impair(&vm, 10, 0);
    let cap = Capture::start(&vm, 300_000);
    let before = netstat_s(&mut vm);
    let total = 64 << 20;
    let took = echo(vm.ns().name(), total, 1, Duration::from_secs(1500));
    let after = netstat_s(&mut vm);
    let sack = cap.sack_segments();
    let nft = vm.ns_cmd(&["nft", "list", "table", "netdev", "arbimpair"]);
    eprintln!("impairment counters:\n{}", nft.stdout);
    let d = |k: &str| delta(&before, &after, k);
    let (retrans, fast, sackre, tim) =
        (d("tcpRetransSegs"), d("tcpOutFastRetrans"), d("tcpOutSackRetransSegs"), d("tcpTimRetrans"));
    let from_guest = sack.get(&GUEST_IP.to_string()).copied().unwrap_or(0);
    let from_linux = sack.get(&HOST_IP.to_string()).copied().unwrap_or(0);
    eprintln!(
        "1% loss: {total} bytes echoed in {took:?} ({:.1} Mbit/s each way); guest tcpOutSegs {} tcpRetransSegs {retrans} \
         tcpOutFastRetrans {fast} tcpOutSackRetransSegs {sackre} tcpTimRetrans {tim} (bound {}); \
         tcpInUnorderSegs {} tcpInDupAck {}; segments with SACK blocks in the capture: from the guest {from_guest}, \
         from Linux {from_linux}",
        mbps(total, took),
        d("tcpOutSegs"),
        rto_bound(fast),
        d("tcpInUnorderSegs"),
        d("tcpInDupAck"),
    );
    // Either side may be the one that saw holes: Linux hands the TAP GSO
    // batches, so a drop towards the guest takes a whole batch and Linux
    // may repair it before the guest sees a later one.
    assert!(from_guest + from_linux > 0, "no segment in the capture carried SACK blocks: {sack:?}");
    assert!(retrans > 0, "the guest retransmitted nothing at 1% loss");
    assert!(fast > 0, "the guest never fast-retransmitted (RTO-only recovery): tcpTimRetrans {tim}");
    assert!(tim <= rto_bound(fast), "retransmit timeouts {tim} > bound {} for {fast} fast retransmits", rto_bound(fast));

    // 1 % duplication towards the guest (with 0.2 % loss each way, so
    // that duplicates and holes meet).
    impair(&vm, 2, 1);
    let before = netstat_s(&mut vm);
    let total = 8 << 20;
    let took = echo(vm.ns().name(), total, 2, Duration::from_secs(600));
    let after = netstat_s(&mut vm);
    let d = |k: &str| delta(&before, &after, k);
    eprintln!(
        "1% duplication, 0.2% loss: {total} bytes in {took:?} ({:.1} Mbit/s); tcpInUnorderSegs {} \
         tcpInDupSegs {} tcpInPartDupSegs {} tcpInDupAck {} tcpRetransSegs {} tcpOutFastRetrans {} tcpTimRetrans {}",
        mbps(total, took),
        d("tcpInUnorderSegs"),
        d("tcpInDupSegs"),
        d("tcpInPartDupSegs"),
        d("tcpInDupAck"),
        d("tcpRetransSegs"),
        d("tcpOutFastRetrans"),
        d("tcpTimRetrans"),
    );
    assert!(d("tcpInDupSegs") + d("tcpInPartDupSegs") > 0, "no duplicate counted under duplication");

    // 5 % loss each way, 4 MiB.
    impair(&vm, 50, 0);
    let before = netstat_s(&mut vm);
    let total = 4 << 20;
    let took = echo(vm.ns().name(), total, 3, Duration::from_secs(600));
    let after = netstat_s(&mut vm);
    let d = |k: &str| delta(&before, &after, k);
    eprintln!(
        "5% loss: {total} bytes in {took:?} ({:.1} Mbit/s); tcpRetransSegs {} tcpOutFastRetrans {} tcpTimRetrans {}",
        mbps(total, took),
        d("tcpRetransSegs"),
        d("tcpOutFastRetrans"),
        d("tcpTimRetrans"),
    );
    assert!(d("tcpRetransSegs") > 0, "nothing retransmitted at 5% loss");

    // Nothing left behind.
    ns_ok(&vm, &["nft", "delete", "table", "netdev", "arbimpair"]);
    assert_nothing_established(&mut vm);
}

/// Waits a little, then checks the guest has no connection established.
fn assert_nothing_established(vm: &mut NetVm) {
    std::thread::sleep(Duration::from_secs(3));
    let s = netstat_s(vm);
    assert_eq!(s.get("tcpCurrEstab").copied(), Some(0), "conns left established");
}

/// One way; the RTT is twice this.
const DELAY: Duration = Duration::from_millis(20);

/// A reordered frame is held this much longer than the others.
const REORDER_EXTRA: Duration = Duration::from_millis(5);

/// The guest's TCP counters of one echo through the relay.
struct Phase {
    retrans: u64,
    fast: u64,
    tim: u64,
    unordered: u64,
}

/// Echoes `total` bytes from namespace B with `imp` in force, with a
/// capture on the TAP; prints and returns the guest's counter deltas and
/// the segments with SACK blocks in the capture.
fn relay_phase(vm: &mut NetVm, relay: &Relay, imp: Impairment, total: usize, what: &str) -> (Phase, u64) {
    relay.set(imp);
    let cap = Capture::start(vm, 300_000);
    let (before, relay_before) = (netstat_s(vm), relay.stats());
    let took = echo(relay.ns_b().name(), total, imp.seed, Duration::from_secs(1500));
    let after = netstat_s(vm);
    let sack: u64 = cap.sack_segments().values().sum();
    let d = |k: &str| delta(&before, &after, k);
    let p = Phase {
        retrans: d("tcpRetransSegs"),
        fast: d("tcpOutFastRetrans"),
        tim: d("tcpTimRetrans"),
        unordered: d("tcpInUnorderSegs"),
    };
    let [g, h] = relay.stats();
    eprintln!(
        "{what}: {total} bytes echoed in {took:?} ({:.1} Mbit/s each way); guest tcpOutSegs {} tcpRetransSegs {} \
         tcpOutFastRetrans {} tcpOutSackRetransSegs {} tcpTimRetrans {} (bound {}); tcpInUnorderSegs {} \
         tcpInDupAck {} tcpInDupSegs {}; segments with SACK blocks in the capture {sack}\n  \
         relay from the guest (this phase): {}\n  relay to the guest (this phase): {}",
        mbps(total, took),
        d("tcpOutSegs"),
        p.retrans,
        p.fast,
        d("tcpOutSackRetransSegs"),
        p.tim,
        rto_bound(p.fast),
        p.unordered,
        d("tcpInDupAck"),
        d("tcpInDupSegs"),
        g - relay_before[0],
        h - relay_before[1],
    );
    (p, sack)
}

#[test]
fn fireengine_tcp_recovers_from_delay_and_reordering() {
    require_program("tshark", "tshark");
    require_program("ping", "iputils-ping");
    let mut vm = boot();
    let imp1 = Impairment { delay: DELAY, reorder_permille: 10, reorder_extra: REORDER_EXTRA, seed: 11, ..Default::default() };
    let relay = Relay::start(vm.ns(), imp1);
    let b = relay.ns_b().name().to_string();

    // The path goes through the relay, and the delay is there.
    let ping = netns_ping(&b, GUEST_IP, 3, "0.3");
    let rtt = ping.avg_rtt().unwrap_or_else(|| panic!("no ping reply through the relay:\n{}", ping.output.describe()));
    eprintln!("ping through the relay: avg rtt {rtt:?} ({} of {} answered)", ping.received, ping.transmitted);
    assert!(rtt >= 2 * DELAY, "RTT {rtt:?} through the relay is below twice its {DELAY:?} delay");

    // 20 ms each way, 1 % reordering, 64 MiB.
    let (p1, sack1) = relay_phase(&mut vm, &relay, imp1, 64 << 20, "20 ms + 1% reorder");
    assert!(sack1 > 0, "no segment in the capture carried SACK blocks under reordering");
    assert!(p1.unordered > 0, "the guest saw no out-of-order segment under 1% reordering");

    // 20 ms each way, 5 % reordering and 1 % loss, 16 MiB.
    let imp2 = Impairment { reorder_permille: 50, loss_permille: 10, seed: 12, ..imp1 };
    let (p2, _) = relay_phase(&mut vm, &relay, imp2, 16 << 20, "20 ms + 5% reorder + 1% loss");
    assert!(p2.retrans > 0, "the guest retransmitted nothing at 1% loss");
    assert!(p2.fast > 0, "the guest never fast-retransmitted (RTO-only recovery): tcpTimRetrans {}", p2.tim);
    assert!(
        p2.tim <= rto_bound(p2.fast),
        "retransmit timeouts {} > bound {} for {} fast retransmits",
        p2.tim,
        rto_bound(p2.fast),
        p2.fast
    );

    let t = relay.total();
    eprintln!("relay, both ways, all phases: {t}");
    assert!(t.delayed > 0 && t.reordered > 0 && t.dropped > 0, "the relay did not impair: {t}");
    assert_eq!((t.overflow, t.oversize, t.csum_bad), (0, 0, 0), "the relay lost frames it was not asked to: {t}");

    drop(relay);
    assert!(!bootimage::net::netns_exists(&b), "namespace {b} left behind");
    assert_nothing_established(&mut vm);
}
