//! FireEngine under attack over a real link: the guest boots with
//! `stack=fireengine` (2 CPUs, virtio-net with 2 queue pairs, a TAP in a
//! namespace this test creates). From the namespace an AF_PACKET socket on
//! the TAP sends hand-built frames, a known number of each kind, and the
//! guest's `netstat -s` must count each under its illumos name, exactly:
//!
//! | frames | counted in |
//! |---|---|
//! | bad IP version, IHL < 5, total length past the frame | `ipInHdrErrors` |
//! | bad IP header checksum | `ipInCksumErrs` (only: illumos does not also count `ipInHdrErrors`) |
//! | unicast for another host | `ipForwProhibits` (a host does not forward; illumos counts it there) |
//! | destination 0.0.0.0, source 127.0.0.1 (martians) | `ipInAddrErrors` |
//! | unknown protocol | `ipInUnknownProtos`; each draws a protocol unreachable or, past the rate limit, an `icmpOutDrops` |
//! | bad UDP checksum | `udpInCksumErrs` (illumos `udpIfStatsInCksumErrs`; not `udpInErrors`) |
//! | UDP length below 8 or past the datagram | `udpInErrors` |
//! | bad ICMP checksum | `icmpInMsgs` + `icmpInCksumErrs`, no echo reply |
//! | ICMP shorter than its header | `icmpInMsgs` + `icmpInErrors` |
//! | malformed ARP (truncated, bad htype/hlen/plen/op) | `rxMalformed`; no neighbour entry for the bogus senders |
//! | fragments overlapping with other bytes, tiny first fragments, offsets past 64 KiB | `ipReasmFails` |
//! | overlaps with the same bytes / exact duplicates | `ipReasmPartDups` / `ipReasmDuplicates`, and the datagram completes |
//! | trains that never complete | `ipReasmFails` and one ICMP time exceeded (reassembly) per train whose first fragment came, after the 60 s `ipReasmTimeout` |
//!
//! Also: an ARP probe (sender 0.0.0.0) for the guest's address is answered;
//! replies queued for a neighbour that never answers ARP are counted in
//! `ipOutDiscards` (2 pushed out of the queue of 8, the other 8 when the
//! entry is given up) and the entry leaves `arp -a`.
//!
//! Then 10^5 frames of a mix of all of that (fragments from 32 sources
//! filling the reassembly caps included), prebuilt and sent in a tight
//! loop; `meminfo` before, while the fragments are held, and after the
//! reassembly timeout: the heap grows while they are held and comes back
//! to within [`HEAP_SLACK_KIB`] of where it was. Ping from Linux 20/20
//! and the UDP echo service still work.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbalest_tests::frames::{self, Mac};
use arbalest_tests::net::{guest, udp_echo_verify, NetVm, RawSocket, ECHO_PORT, GUEST_IP, GUEST_MAC, HOST_IP};
use arbalest_tests::Config;

const SMP: usize = 2;
const QUEUES: usize = 2;
/// Frames of the mix.
const MIX_FRAMES: u64 = 100_000;
/// How far above its level before the mix the heap may stay once the
/// reassembly timeout has passed (KiB).
const HEAP_SLACK_KIB: u64 = 64;
/// The guest's `ipReasmTimeout`.
const REASS_TIMEOUT: Duration = Duration::from_secs(60);
/// UDP discard port (reassembled datagrams go there: no answer).
const DISCARD: u16 = 9;
/// Sources of the held fragment trains of the mix.
const MIX_SOURCES: u8 = 32;

// ------------------------------------------------------------------ frames

/// An IPv4 packet: 20-byte header (TTL 64) with `frag` as the flags and
/// offset word, correct header checksum.
fn ip(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    fix_ip_csum(&mut p);
    p.extend_from_slice(payload);
    p
}

fn fix_ip_csum(p: &mut [u8]) {
    p[10..12].copy_from_slice(&[0, 0]);
    let c = frames::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

const MF: u16 = 0x2000;

/// The flags/offset word of a fragment at byte `off`.
fn frag_word(off: usize, more: bool) -> u16 {
    assert!(off.is_multiple_of(8) && off <= 65528);
    (off / 8) as u16 | if more { MF } else { 0 }
}

struct Wire {
    host_mac: Mac,
    guest_mac: Mac,
}

impl Wire {
    fn eth(&self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        frames::eth(self.guest_mac, self.host_mac, ethertype, payload)
    }

    fn ip(&self, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
        self.eth(frames::ETHERTYPE_IPV4, &ip(src, dst, proto, id, frag, payload))
    }

    /// A fragment of a UDP datagram from the host.
    fn frag(&self, id: u16, off: usize, more: bool, data: &[u8]) -> Vec<u8> {
        self.ip(HOST_IP, GUEST_IP, frames::PROTO_UDP, id, frag_word(off, more), data)
    }

    fn frag_from(&self, src: Ipv4Addr, id: u16, off: usize, more: bool, data: &[u8]) -> Vec<u8> {
        self.ip(src, GUEST_IP, frames::PROTO_UDP, id, frag_word(off, more), data)
    }

    fn udp(&self, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        frames::udp(HOST_IP, GUEST_IP, sport, dport, data)
    }

    /// A good datagram to the host's discard service, then `edit` on its
    /// IPv4 bytes (header at 0).
    fn ip_edited(&self, id: u16, edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut p = ip(HOST_IP, GUEST_IP, frames::PROTO_UDP, id, 0, &self.udp(40000u16.wrapping_add(id), DISCARD, b"attack-frame"));
        edit(&mut p);
        self.eth(frames::ETHERTYPE_IPV4, &p)
    }

    fn arp(&self, dst: Mac, op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4];
        a.extend_from_slice(&op.to_be_bytes());
        a.extend_from_slice(&sha);
        a.extend_from_slice(&spa.octets());
        a.extend_from_slice(&tha);
        a.extend_from_slice(&tpa.octets());
        frames::eth(dst, self.host_mac, frames::ETHERTYPE_ARP, &a)
    }

    // The classes, `n` frames each, ident/ports from `base`.

    fn bad_version(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        (0..n).map(|i| self.ip_edited(base + i, |p| { p[0] = 0x65; fix_ip_csum(p); })).collect()
    }

    fn bad_ihl(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        (0..n).map(|i| self.ip_edited(base + i, |p| { p[0] = 0x44; fix_ip_csum(p); })).collect()
    }

    fn long_total(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        (0..n).map(|i| self.ip_edited(base + i, |p| { p[2..4].copy_from_slice(&1000u16.to_be_bytes()); fix_ip_csum(p); })).collect()
    }

    fn bad_ip_csum(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        (0..n).map(|i| self.ip_edited(base + i, |p| p[10] ^= 0x5a)).collect()
    }

    fn not_ours(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        let other = Ipv4Addr::new(10, 0, 0, 99);
        (0..n).map(|i| self.ip(HOST_IP, other, frames::PROTO_UDP, base + i, 0, &frames::udp(HOST_IP, other, 1, DISCARD, b"x"))).collect()
    }

    fn martians(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        let lo = Ipv4Addr::new(127, 0, 0, 1);
        (0..n)
            .map(|i| {
                let (s, d) = if i % 2 == 0 { (HOST_IP, Ipv4Addr::UNSPECIFIED) } else { (lo, GUEST_IP) };
                self.ip(s, d, frames::PROTO_UDP, base + i, 0, &frames::udp(s, d, 1, DISCARD, b"x"))
            })
            .collect()
    }

    fn unknown_proto(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        (0..n).map(|i| self.ip(HOST_IP, GUEST_IP, 253, base + i, 0, b"who speaks protocol 253?")).collect()
    }

    fn bad_udp_csum(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut u = self.udp(41000u16.wrapping_add(base + i), ECHO_PORT, b"please echo me");
                u[6] ^= 0x33;
                self.ip(HOST_IP, GUEST_IP, frames::PROTO_UDP, base + i, 0, &u)
            })
            .collect()
    }

    fn bad_udp_len(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut u = self.udp(42000u16.wrapping_add(base + i), ECHO_PORT, b"bad length");
                let len: u16 = if i % 2 == 0 { 4 } else { 500 };
                u[4..6].copy_from_slice(&len.to_be_bytes());
                self.ip(HOST_IP, GUEST_IP, frames::PROTO_UDP, base + i, 0, &u)
            })
            .collect()
    }

    fn bad_icmp_csum(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut m = frames::icmp_echo_request(frames::BAD_ICMP_CSUM_ICMP_ID, base + i, b"bad checksum");
                m[2] ^= 0x11;
                self.ip(HOST_IP, GUEST_IP, frames::PROTO_ICMP, base + i, 0, &m)
            })
            .collect()
    }

    fn short_icmp(&self, n: u16, base: u16) -> Vec<Vec<u8>> {
        (0..n).map(|i| self.ip(HOST_IP, GUEST_IP, frames::PROTO_ICMP, base + i, 0, &[8, 0, 0xf7, 0xff])).collect()
    }

    /// Malformed ARP from bogus senders 10.0.0.66..: truncated, bad
    /// htype, hlen, plen, op (`n` of each).
    fn bad_arp(&self, n: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0..n {
            let good = self.arp([0xff; 6], 1, [0x02, 0xbb, 0, 0, 0, i as u8], Ipv4Addr::new(10, 0, 0, 66), [0; 6], GUEST_IP);
            out.push(good[..14 + 20].to_vec());
            for (at, v) in [(14 + 1, 6u8), (14 + 4, 8), (14 + 5, 16), (14 + 7, 9)] {
                let mut f = good.clone();
                f[at] = v;
                out.push(f);
            }
        }
        out
    }
}

/// The 24-byte UDP datagram (to discard) whose fragments the fragment
/// classes send.
fn frag_datagram(w: &Wire, id: u16) -> Vec<u8> {
    let data: Vec<u8> = (0..16u8).map(|k| k.wrapping_mul(7).wrapping_add(id as u8) | 1).collect();
    w.udp(43000u16.wrapping_add(id), DISCARD, &data)
}

// ------------------------------------------------------------------ guest side

/// The value of counter `name` in `netstat -s` output.
fn counter(out: &str, name: &str) -> Option<u64> {
    let mut words = out.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if w == name {
            if words.peek() == Some(&"=") {
                words.next();
            }
            return words.next().and_then(|v| v.trim_start_matches('=').parse().ok());
        }
        if let Some(v) = w.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return v.parse().ok().or_else(|| words.next().and_then(|v| v.parse().ok()));
        }
    }
    None
}

/// `ACCEPTED` of a service row (`PROTO PORT SERVICE ACCEPTED ...`).
fn service_accepted(out: &str, service: &str) -> Option<u64> {
    out.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 4 && w[2] == service).then(|| w[3].parse().ok()).flatten()
    })
}

/// Heap KiB used, from `meminfo`.
fn heap_used_kib(out: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.starts_with("kernel heap:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

struct Rig {
    vm: NetVm,
    w: Wire,
    sock: RawSocket,
    t0: Instant,
}

impl Rig {
    fn netstat(&mut self) -> String {
        self.vm.run("netstat -s")
    }

    fn get(&self, out: &str, name: &str) -> u64 {
        match counter(out, name) {
            Some(v) => v,
            None => {
                self.vm.check(false, format!("no counter {name} in netstat -s:\n{out}"));
                unreachable!()
            }
        }
    }

    fn heap(&mut self) -> u64 {
        let out = self.vm.run("meminfo");
        match heap_used_kib(&out) {
            Some(v) => v,
            None => {
                self.vm.check(false, format!("no heap line in meminfo:\n{out}"));
                unreachable!()
            }
        }
    }

    fn send_all(&self, frames: &[Vec<u8>]) {
        for f in frames {
            if let Err(e) = self.sock.send(f) {
                self.vm.check(false, format!("AF_PACKET send of a {}-byte frame: {e}", f.len()));
            }
        }
    }

    /// Throws away what the socket holds (our own frames looped back
    /// included).
    fn drain(&self) {
        let mut buf = vec![0u8; 65536];
        while let Ok(Some(_)) = self.sock.recv(&mut buf, Duration::ZERO) {}
    }

    /// Frames received on the TAP from the guest within `dur`.
    fn capture(&self, dur: Duration) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let mut out = Vec::new();
        let deadline = Instant::now() + dur;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.sock.recv(&mut buf, left) {
                Ok(Some(n)) if buf[6..12] == self.w.guest_mac => out.push(buf[..n].to_vec()),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("AF_PACKET receive: {e}"),
            }
        }
        out
    }

    /// Polls `netstat -s` until `name` reaches `target` (at most 20 s).
    fn settle(&mut self, name: &str, target: u64, what: &str) -> String {
        let start = Instant::now();
        loop {
            let out = self.netstat();
            let v = self.get(&out, name);
            if v >= target {
                return out;
            }
            if start.elapsed() > Duration::from_secs(20) {
                self.vm.check(false, format!("{what}: {name} stayed at {v}, short of {target}: frames lost?\n{out}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls `netstat -s` until `rxPackets` stops moving.
    fn quiesce(&mut self) -> String {
        let mut last = self.netstat();
        for _ in 0..200 {
            std::thread::sleep(Duration::from_millis(400));
            let out = self.netstat();
            if self.get(&out, "rxPackets") == self.get(&last, "rxPackets") {
                return out;
            }
            last = out;
        }
        self.vm.check(false, format!("the guest never went quiet:\n{last}"));
        unreachable!()
    }

    /// Sends one class of frames and checks the exact counter deltas
    /// (`expect`; every counter named is checked, so a 0 says "must not
    /// move"). `settle_on` is the counter that says all frames were taken.
    /// Returns the `netstat -s` after and what the guest sent meanwhile.
    fn class(&mut self, what: &str, frames: &[Vec<u8>], settle_on: &str, expect: &[(&str, u64)]) -> (String, Vec<Vec<u8>>) {
        let before = self.netstat();
        self.drain();
        self.send_all(frames);
        let want = expect.iter().find(|(c, _)| *c == settle_on).map(|(_, v)| *v).unwrap_or(frames.len() as u64);
        let target = self.get(&before, settle_on) + want;
        let mut after = self.settle(settle_on, target, what);
        // Whatever the guest does in answer has happened by now; read again.
        let seen = self.capture(Duration::from_millis(300));
        after = {
            let again = self.netstat();
            if self.get(&again, settle_on) == self.get(&after, settle_on) { again } else { after }
        };
        let mut bad = Vec::new();
        for (c, want) in expect {
            let d = self.get(&after, c) - self.get(&before, c);
            if d != *want {
                bad.push(format!("{c} +{d}, want +{want}"));
            }
        }
        self.vm.check(bad.is_empty(), format!("{what} ({} frames): {}\n--- before ---\n{before}\n--- after ---\n{after}", frames.len(), bad.join(", ")));
        eprintln!("[{:>5.1}s] {what}: {} frames, counted as expected {expect:?}", self.t0.elapsed().as_secs_f64(), frames.len());
        (after, seen)
    }

    fn arp_rows(&mut self) -> String {
        self.vm.run("arp -a")
    }
}

/// ICMP (type, code) and the quoted IP ident of a frame from the guest.
fn icmp_error_of(f: &[u8]) -> Option<(u8, u8, u16)> {
    if f.len() < 14 + 20 + 8 + 20 || f[12..14] != [8, 0] || f[14 + 9] != frames::PROTO_ICMP {
        return None;
    }
    let icmp = &f[14 + 20..];
    let quote = &icmp[8..];
    Some((icmp[0], icmp[1], u16::from_be_bytes([quote[4], quote[5]])))
}

fn is_arp_reply_to(f: &[u8], dst: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> bool {
    f.len() >= 14 + 28
        && f[..6] == dst
        && f[12..14] == [8, 6]
        && f[14 + 6..14 + 8] == [0, 2]
        && f[14 + 14..14 + 18] == spa.octets()
        && f[14 + 18..14 + 24] == dst
        && f[14 + 24..14 + 28] == tpa.octets()
}

// ------------------------------------------------------------------ the test

#[test]
fn malformed_frames_and_fragment_attacks_are_counted_memory_stays_bounded_and_ping_works() {
    let mut cfg = Config::with_smp(SMP);
    cfg.push_append("stack=fireengine");
    let vm = NetVm::boot_with(cfg, QUEUES);
    vm.wait_reachable(Duration::from_secs(60));
    // Linux's own stack must not answer the guest (an ICMP error for an
    // echoed datagram, IGMP reports to a multicast group would all be
    // counted by the guest): the namespace sends none. Raw frames bypass
    // these hooks.
    for rule in [
        &["nft", "add", "table", "inet", "arbattack"][..],
        &["nft", "add", "chain", "inet", "arbattack", "out", "{ type filter hook output priority 0 ; policy accept ; }"],
        &["nft", "add", "rule", "inet", "arbattack", "out", "ip", "protocol", "igmp", "drop"],
        &["nft", "add", "rule", "inet", "arbattack", "out", "icmp", "type", "{ destination-unreachable, time-exceeded, parameter-problem }", "drop"],
    ] {
        let out = vm.ns_cmd(rule);
        vm.check(out.success(), format!("nftables in the namespace:\n{}", out.describe()));
    }
    let host_mac = vm.ns().tap_mac();
    let guest_mac = frames::parse_mac(GUEST_MAC).expect("guest MAC");
    let sock = vm.ns().raw_socket();
    let mut r = Rig { vm, w: Wire { host_mac, guest_mac }, sock, t0: Instant::now() };
    let n = 10u16;

    // A neighbour that never answers ARP: ten echo requests from on-link
    // 10.0.0.77. The replies wait for its MAC, 8 at most: the 2 oldest
    // are pushed out at once, the 8 others go when the entry is given up
    // (3 requests a second apart). Checked at the end of the classes.
    let ghost = Ipv4Addr::new(10, 0, 0, 77);
    let pings: Vec<Vec<u8>> = (0..10u16)
        .map(|s| r.w.ip(ghost, GUEST_IP, frames::PROTO_ICMP, 0x7700 + s, 0, &frames::icmp_echo_request(0x77, s, b"who am I")))
        .collect();
    let (ghost_first, _) = r.class("echo requests from a silent neighbour", &pings, "icmpInEchos", &[
        ("icmpInEchos", 10),
        ("icmpOutEchoReps", 10),
        ("ipOutDiscards", 2),
    ]);
    let ghost_at = Instant::now();

    // ---- fragments (the reassembler empty: nothing held in between)
    let w = &r.w;
    let conflict: Vec<Vec<u8>> = (0..5u16)
        .flat_map(|i| {
            let d = frag_datagram(w, 0x1000 + i);
            [w.frag(0x1000 + i, 0, true, &d[..16]), w.frag(0x1000 + i, 8, false, &[0xee; 16])]
        })
        .collect();
    let partdup: Vec<Vec<u8>> = (0..5u16)
        .flat_map(|i| {
            let d = frag_datagram(w, 0x1100 + i);
            [w.frag(0x1100 + i, 0, true, &d[..16]), w.frag(0x1100 + i, 8, false, &d[8..])]
        })
        .collect();
    let dup: Vec<Vec<u8>> = (0..5u16)
        .flat_map(|i| {
            let d = frag_datagram(w, 0x1200 + i);
            [w.frag(0x1200 + i, 0, true, &d[..16]), w.frag(0x1200 + i, 0, true, &d[..16]), w.frag(0x1200 + i, 16, false, &d[16..])]
        })
        .collect();
    let tiny: Vec<Vec<u8>> = (0..5u16).map(|i| w.frag(0x1300 + i, 0, true, &frag_datagram(w, 0x1300 + i)[..4])).collect();
    let past: Vec<Vec<u8>> = (0..5u16).map(|i| w.frag(0x1400 + i, 65528, false, &[0x55; 16])).collect();
    let held_then_past: Vec<Vec<u8>> = (0..3u16)
        .flat_map(|i| {
            let d = frag_datagram(w, 0x1500 + i);
            [w.frag(0x1500 + i, 0, true, &d[..16]), w.frag(0x1500 + i, 65520, false, &[0x66; 16])]
        })
        .collect();
    let reass = |reqds: u64, oks: u64, fails: u64, dups: u64, partdups: u64, udp: u64| {
        vec![
            ("ipInReceives", reqds),
            ("ipReasmReqds", reqds),
            ("ipReasmOKs", oks),
            ("ipReasmFails", fails),
            ("ipReasmDuplicates", dups),
            ("ipReasmPartDups", partdups),
            ("udpInDatagrams", udp),
            ("ipInHdrErrors", 0),
            ("icmpOutTimeExcds", 0),
        ]
    };
    r.class("overlapping fragments with other bytes", &conflict, "ipInReceives", &reass(10, 0, 5, 0, 0, 0));
    r.class("overlapping fragments with the same bytes", &partdup, "ipInReceives", &reass(10, 5, 0, 0, 5, 5));
    r.class("duplicate fragments", &dup, "ipInReceives", &reass(15, 5, 0, 5, 0, 5));
    r.class("tiny first fragments", &tiny, "ipInReceives", &reass(5, 0, 5, 0, 0, 0));
    r.class("fragments past 64 KiB", &past, "ipInReceives", &reass(5, 0, 5, 0, 0, 0));
    r.class("a held train, then a fragment past 64 KiB", &held_then_past, "ipInReceives", &reass(6, 0, 3, 0, 0, 0));

    // ---- the mix, and the trains that never complete
    let mix = mix_frames(&r.w);
    let heap_before = r.heap();
    let stats_before = r.quiesce();
    // Never-completed trains with their first fragment: one time exceeded
    // each after the timeout. A capture thread on a socket of its own
    // counts them (the mix's held trains have no first fragment: silent).
    let train_ids: Vec<u16> = (0..5u16).map(|i| 0x7000 + i).collect();
    let trains: Vec<Vec<u8>> = train_ids.iter().map(|&id| r.w.frag(id, 0, true, &frag_datagram(&r.w, id)[..16])).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let time_exceeded: Arc<Mutex<Vec<(u8, u8, u16)>>> = Arc::default();
    let watcher = {
        let sock = r.vm.ns().raw_socket();
        let (stop, seen, gm) = (stop.clone(), time_exceeded.clone(), r.w.guest_mac);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some(n)) = sock.recv(&mut buf, Duration::from_millis(200))
                    && buf[6..12] == gm
                    && let Some(e) = icmp_error_of(&buf[..n])
                    && e.0 == 11
                {
                    seen.lock().unwrap().push(e);
                }
            }
        })
    };
    let (sent, stats_mix, mix_took) = send_mix(&mut r, &mix, MIX_FRAMES, &stats_before);
    let heap_held = r.heap();
    // After the mix, which left every reassembly slot taken: each new
    // train pushes out the oldest of the mix's (illumos ill_frag_prune),
    // so these five are held to the end. (Sent before the mix they would
    // be pushed out by it, and no time exceeded would come.)
    r.send_all(&trains);
    let trains_at = Instant::now();
    let target = r.get(&stats_mix, "ipReasmReqds") + trains.len() as u64;
    r.settle("ipReasmReqds", target, "the never-completed trains");
    let rx = r.get(&stats_mix, "rxPackets") - r.get(&stats_before, "rxPackets");
    eprintln!(
        "[{:>5.1}s] mix: {sent} frames sent in {:.1} s, the guest took {rx}; heap {heap_before} KiB before, {heap_held} KiB while held",
        r.t0.elapsed().as_secs_f64(),
        mix_took.as_secs_f64()
    );
    r.vm.check(rx >= MIX_FRAMES, format!("the guest took {rx} of the {sent} frames sent, short of {MIX_FRAMES}\n{stats_mix}"));
    r.vm.check(
        heap_held >= heap_before + 1024,
        format!("held fragments should show in the heap: {heap_before} KiB before, {heap_held} KiB while held"),
    );
    r.vm.check(heap_held <= heap_before + 8 * 1024, format!("reassembly is capped at 4 MiB: heap {heap_before} KiB before, {heap_held} KiB while held"));
    let held_reqds = r.get(&stats_mix, "ipReasmReqds") - r.get(&stats_before, "ipReasmReqds");
    r.vm.check(held_reqds > 0, format!("fragments of the mix reached reassembly\n{stats_mix}"));

    // ---- the other classes, while the mix's trains are held
    let w = &r.w;
    let (bad_version, bad_ihl, long_total, bad_csum) = (w.bad_version(n, 0x2000), w.bad_ihl(n, 0x2100), w.long_total(n, 0x2200), w.bad_ip_csum(n, 0x2300));
    let (not_ours, martians, unknown) = (w.not_ours(n, 0x2400), w.martians(n, 0x2500), w.unknown_proto(30, 0x2600));
    let (bad_udp_csum, bad_udp_len, bad_icmp_csum, short_icmp) = (w.bad_udp_csum(n, 0x2700), w.bad_udp_len(n, 0x2800), w.bad_icmp_csum(n, 0x2900), w.short_icmp(n, 0x2a00));
    let bad_arp = w.bad_arp(2);
    let n64 = u64::from(n);
    let hdr = |c: &'static str| vec![("ipInReceives", n64), (c, n64), ("ipInDelivers", 0), ("udpInDatagrams", 0)];
    r.class("bad IP version", &bad_version, "ipInReceives", &[hdr("ipInHdrErrors"), vec![("ipInCksumErrs", 0)]].concat());
    r.class("IP header length below 5", &bad_ihl, "ipInReceives", &[hdr("ipInHdrErrors"), vec![("ipInCksumErrs", 0)]].concat());
    r.class("IP total length past the frame", &long_total, "ipInReceives", &[hdr("ipInHdrErrors"), vec![("ipInCksumErrs", 0)]].concat());
    r.class("bad IP header checksum", &bad_csum, "ipInReceives", &[hdr("ipInCksumErrs"), vec![("ipInHdrErrors", 0)]].concat());
    r.class("unicast for another host", &not_ours, "ipInReceives", &[hdr("ipForwProhibits"), vec![("ipInAddrErrors", 0)]].concat());
    r.class("martian addresses", &martians, "ipInReceives", &[hdr("ipInAddrErrors"), vec![("ipForwProhibits", 0)]].concat());

    // Unknown protocol: each draws a protocol unreachable until the rate
    // limit (_icmp_err_burst 10, one more per 100 ms) says no.
    let before = r.netstat();
    let start = Instant::now();
    let (after, seen) = r.class("unknown protocol", &unknown, "ipInUnknownProtos", &[("ipInReceives", 30), ("ipInUnknownProtos", 30), ("ipInDelivers", 0)]);
    let window_ms = start.elapsed().as_millis() as u64;
    let d = |c: &str| r.get(&after, c) - r.get(&before, c);
    let (sent_unreach, dropped) = (d("icmpOutDestUnreachs"), d("icmpOutDrops"));
    let on_wire = seen.iter().filter(|f| icmp_error_of(f).is_some_and(|(t, c, id)| t == 3 && c == 2 && (0x2600..0x2600 + 30).contains(&id))).count() as u64;
    r.vm.check(
        sent_unreach + dropped == 30 && on_wire == sent_unreach && sent_unreach >= 1 && sent_unreach <= 10 + window_ms / 100 + 1,
        format!("30 unknown-protocol datagrams: {sent_unreach} protocol unreachables counted, {on_wire} seen on the wire, {dropped} icmpOutDrops, within {window_ms} ms\n{after}"),
    );

    let udp = |c: &'static str| vec![("ipInReceives", n64), (c, n64), ("udpInDatagrams", 0)];
    let before = r.netstat();
    let (after, seen) = r.class("bad UDP checksum", &bad_udp_csum, "ipInReceives", &[udp("udpInCksumErrs"), vec![("udpInErrors", 0)]].concat());
    r.vm.check(
        service_accepted(&after, "echo") == service_accepted(&before, "echo") && !seen.iter().any(|f| f.len() > 23 && f[12..14] == [8, 0] && f[14 + 9] == frames::PROTO_UDP),
        format!("a datagram with a bad checksum must not reach the echo service:\n{after}"),
    );
    r.class("bad UDP length", &bad_udp_len, "ipInReceives", &[udp("udpInErrors"), vec![("udpInCksumErrs", 0)]].concat());
    let (_, seen) = r.class("bad ICMP checksum", &bad_icmp_csum, "ipInReceives", &[
        ("ipInReceives", n64),
        ("icmpInMsgs", n64),
        ("icmpInCksumErrs", n64),
        ("icmpInErrors", 0),
        ("icmpInEchos", 0),
        ("icmpOutEchoReps", 0),
    ]);
    let replies = seen.iter().filter(|f| frames::classify(f, r.w.guest_mac).is_some_and(|s| matches!(s, frames::Seen::EchoReply(id, _) if id == frames::BAD_ICMP_CSUM_ICMP_ID))).count();
    r.vm.check(replies == 0, format!("{replies} echo replies to requests with a bad checksum"));
    r.class("ICMP shorter than its header", &short_icmp, "ipInReceives", &[("ipInReceives", n64), ("icmpInMsgs", n64), ("icmpInErrors", n64), ("icmpInCksumErrs", 0)]);

    // ARP: malformed ones counted and learnt from by nobody; well-formed
    // ones not for us make no entry either.
    let arp_before = r.arp_rows();
    let foreign = vec![
        r.w.arp([0xff; 6], 1, [0x02, 0xbb, 0, 0, 1, 1], Ipv4Addr::new(10, 0, 0, 67), [0; 6], Ipv4Addr::new(10, 0, 0, 200)),
        r.w.arp(r.w.guest_mac, 2, [0x02, 0xbb, 0, 0, 1, 2], Ipv4Addr::new(10, 0, 0, 68), r.w.guest_mac, GUEST_IP),
    ];
    r.send_all(&foreign);
    let expect_bad = bad_arp.len() as u64;
    r.class("malformed ARP", &bad_arp, "rxMalformed", &[("rxMalformed", expect_bad), ("ipInReceives", 0)]);
    let arp_after = r.arp_rows();
    for bogus in ["10.0.0.66", "10.0.0.67", "10.0.0.68"] {
        r.vm.check(!arp_after.split_whitespace().any(|w| w == bogus), format!("no entry for bogus sender {bogus}:\n{arp_after}"));
    }
    r.vm.check(arp_after.contains(&HOST_IP.to_string()), format!("the host's entry stays:\n{arp_before}\n{arp_after}"));

    // An ARP probe (sender 0.0.0.0) for the guest's address is answered.
    let prober: Mac = [0x02, 0xaa, 0, 0, 0, 7];
    r.drain();
    r.send_all(&[r.w.arp([0xff; 6], 1, prober, Ipv4Addr::UNSPECIFIED, [0; 6], GUEST_IP)]);
    let seen = r.capture(Duration::from_secs(3));
    let answered = seen.iter().any(|f| is_arp_reply_to(f, prober, GUEST_IP, Ipv4Addr::UNSPECIFIED));
    r.vm.check(answered, format!("an ARP probe for {GUEST_IP} must be answered; the guest sent {} frames", seen.len()));

    // The silent neighbour: given up, its 8 queued replies counted.
    let wait = Duration::from_secs(5).saturating_sub(ghost_at.elapsed());
    std::thread::sleep(wait);
    let out = r.netstat();
    let discards = r.get(&out, "ipOutDiscards") - r.get(&ghost_first, "ipOutDiscards");
    let arp = r.arp_rows();
    r.vm.check(discards == 8, format!("replies waiting on {ghost} when its entry was given up: ipOutDiscards +{discards}, want +8\n{out}"));
    r.vm.check(!arp.split_whitespace().any(|w| w == ghost.to_string()), format!("{ghost} left arp -a:\n{arp}"));

    // Ping and UDP echo work while the attack's fragments are still held.
    let p = r.vm.ns().ping(GUEST_IP, 20, "0.1");
    r.vm.check(p.received == 20, format!("ping after the attack: {}/20\n{}", p.received, p.output.describe()));
    let echo = r.vm.in_ns(|| udp_echo_verify(guest(ECHO_PORT), 50, 1472, 0xa77a, Duration::from_millis(500), 5));
    r.vm.check(echo.as_ref().is_ok_and(|s| s.datagrams == 50), format!("UDP echo after the attack: {echo:?}"));
    eprintln!("[{:>5.1}s] ping 20/20, UDP echo 50/50", r.t0.elapsed().as_secs_f64());

    // ---- the reassembly timeout: every train goes, the memory with them
    let deadline = trains_at + REASS_TIMEOUT + mix_took + Duration::from_secs(15);
    let mut heap_after;
    loop {
        std::thread::sleep(Duration::from_millis(1000));
        heap_after = r.heap();
        let got = time_exceeded.lock().unwrap().len();
        if (heap_after <= heap_before + HEAP_SLACK_KIB && got >= train_ids.len() && trains_at.elapsed() > REASS_TIMEOUT) || Instant::now() > deadline {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let out = r.netstat();
    let te = time_exceeded.lock().unwrap().clone();
    let ours: Vec<u16> = te.iter().filter(|(_, c, id)| *c == 1 && train_ids.contains(id)).map(|e| e.2).collect();
    eprintln!(
        "[{:>5.1}s] after the timeout: heap {heap_after} KiB (before {heap_before}, held {heap_held}); time exceeded for {ours:x?}",
        r.t0.elapsed().as_secs_f64()
    );
    r.vm.check(
        ours.len() == train_ids.len() && te.len() == train_ids.len(),
        format!("one time exceeded (reassembly) per never-completed train with a first fragment: {te:x?}\n{out}"),
    );
    let timeouts = r.get(&out, "icmpOutTimeExcds") - r.get(&stats_before, "icmpOutTimeExcds");
    r.vm.check(timeouts == 5, format!("icmpOutTimeExcds +{timeouts}, want +5\n{out}"));
    let fails = r.get(&out, "ipReasmFails") - r.get(&stats_mix, "ipReasmFails");
    r.vm.check(fails >= 5, format!("the held trains timed out: ipReasmFails +{fails} after the mix\n{out}"));
    r.vm.check(r.get(&out, "ipReasmTimeout") == 60, format!("ipReasmTimeout is the 60 s timeout\n{out}"));
    r.vm.check(
        heap_after <= heap_before + HEAP_SLACK_KIB,
        format!("heap {heap_after} KiB after the reassembly timeout, {heap_before} KiB before the mix ({heap_held} KiB while held): more than {HEAP_SLACK_KIB} KiB stayed"),
    );
    let p = r.vm.ns().ping(GUEST_IP, 5, "0.1");
    r.vm.check(p.received == 5, format!("ping at the end: {}/5\n{}", p.received, p.output.describe()));
    eprintln!("[{:>5.1}s] done", r.t0.elapsed().as_secs_f64());
}

/// The frames of the mix: a few of every malformed class, and fragment
/// trains that fill the reassembly caps. Held trains come from
/// `MIX_SOURCES` addresses (10.0.0.100..), each a last fragment far out
/// (offset 60000, no first fragment: no time exceeded), 8 per source; the
/// caps (256 KiB a source, 4 MiB and 64 datagrams in all) keep what is held
/// bounded. Repeats of them are exact duplicates.
fn mix_frames(w: &Wire) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for s in 0..MIX_SOURCES {
        let src = Ipv4Addr::new(10, 0, 0, 100 + s);
        for j in 0..8u16 {
            v.push(w.frag_from(src, 0x6000 + j, 60000, false, &[s; 8]));
        }
    }
    for k in 0..8u16 {
        let b = 0x3000 + k * 16;
        v.extend(w.bad_version(1, b));
        v.extend(w.bad_ihl(1, b + 1));
        v.extend(w.long_total(1, b + 2));
        v.extend(w.bad_ip_csum(1, b + 3));
        v.extend(w.not_ours(1, b + 4));
        v.extend(w.martians(2, b + 5));
        v.extend(w.unknown_proto(1, b + 7));
        v.extend(w.bad_udp_csum(1, b + 8));
        v.extend(w.bad_udp_len(2, b + 9));
        v.extend(w.bad_icmp_csum(1, b + 11));
        v.extend(w.short_icmp(1, b + 12));
        v.extend(w.bad_arp(1));
        let id = 0x5000 + k;
        let d = frag_datagram(w, id);
        // Tiny first, past 64 KiB, overlap with other bytes (no first
        // fragment), duplicates (no first fragment).
        v.push(w.frag(id, 0, true, &d[..4]));
        v.push(w.frag(id + 0x100, 65528, false, &[0x55; 16]));
        v.push(w.frag(id + 0x200, 8, true, &[0x11; 16]));
        v.push(w.frag(id + 0x200, 16, false, &[0x22; 16]));
        v.push(w.frag(id + 0x300, 8, true, &[0x33; 16]));
        v.push(w.frag(id + 0x300, 8, true, &[0x33; 16]));
    }
    v
}

/// Sends frames of `mix` (cycling) until the guest has taken `count` of
/// them (its `rxPackets`; what the TAP or the NIC ring drops when the
/// guest falls behind is sent again). Returns how many were sent, the
/// `netstat -s` once the guest is quiet, and how long it took.
fn send_mix(r: &mut Rig, mix: &[Vec<u8>], count: u64, stats_before: &str) -> (u64, String, Duration) {
    let start = Instant::now();
    let rx0 = r.get(stats_before, "rxPackets");
    let (mut sent, mut i, mut refused) = (0u64, 0usize, 0u64);
    let mut taken = 0;
    // Rounds until the guest has taken `count` (each at least a fifth of
    // `count`, so a guest that takes only a small share of a fast sender's
    // frames still gets there), for at most 4 minutes.
    for round in 0..200 {
        if round > 0 && start.elapsed() > Duration::from_secs(240) {
            break;
        }
        let target = sent + (count - taken).max(count / 5);
        while sent < target {
            match r.sock.send(&mix[i % mix.len()]) {
                Ok(()) => {
                    sent += 1;
                    i += 1;
                }
                Err(_) => {
                    // The TAP's queue is full: let QEMU drain it.
                    refused += 1;
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
        let out = r.quiesce();
        taken = r.get(&out, "rxPackets") - rx0;
        eprintln!("mix round {round}: {sent} sent ({refused} refused by a full TAP queue), the guest took {taken}");
        if taken >= count {
            return (sent, out, start.elapsed());
        }
    }
    let out = r.netstat();
    r.vm.check(false, format!("the guest took only {taken} of {sent} frames sent\n{out}"));
    unreachable!()
}
