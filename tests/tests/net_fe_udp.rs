//! FireEngine over a real network: the guest boots with `stack=fireengine`,
//! so `net0` (virtio-net, 2 queue pairs, a TAP into a namespace this test
//! creates, Linux on the other side) runs Arbalest's own IPv4, ARP, ICMP
//! and UDP.
//!
//! * `ipadm show-if` says `fireengine`;
//! * `ping -c 20` 20/20 from Linux to the guest, and the guest's `ping -s
//!   -c 20` to Linux 20/20;
//! * the UDP echo service returns 1 000 datagrams of mixed sizes (1 to
//!   1 472 bytes) intact, and 200 datagrams of 8 000 bytes, fragmented both
//!   ways (the guest's `ipReasmOKs` and `ipFragCreates` count them);
//! * a datagram to a closed port: the Linux socket sees `ECONNREFUSED`
//!   (the guest's ICMP port unreachable) and the guest counts `udpNoPorts`;
//! * `arp -a` shows the Linux host with its MAC;
//! * adding an address that the Linux host already has: `ipadm show-addr`
//!   shows it `duplicate`, the host's own ARP entry is not disturbed, and
//!   the guest's first address keeps working.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use arbalest_tests::net::{guest, table_value, udp_echo_verify, NetVm, SplitMix64, ECHO_PORT, HOST_IP};
use arbalest_tests::Config;

const SMP: usize = 2;
const QUEUES: usize = 2;

fn boot() -> NetVm {
    let mut cfg = Config::with_smp(SMP);
    cfg.push_append("stack=fireengine");
    let mut vm = NetVm::boot_with(cfg, QUEUES);
    if std::env::var_os("ARBALEST_FE_DEBUG").is_some() {
        std::thread::sleep(Duration::from_secs(3));
        let p = vm.ns().ping(arbalest_tests::net::GUEST_IP, 3, "0.2");
        eprintln!("{}", p.output.describe());
        for c in ["ipadm show-if", "ipadm show-addr", "netstat -s", "arp -a", "sqstat", "netstat -rn", "dladm show-link", "dlstat show-link"] {
            eprintln!("# {c}\n{}", vm.run(c));
        }
        eprintln!("{}", vm.ns_cmd(&["ip", "neigh"]).describe());
    }
    vm.wait_reachable(Duration::from_secs(60));
    vm
}

/// The value of MIB counter `name` in `netstat -s` output.
fn mib(out: &str, name: &str) -> Option<u64> {
    let mut words = out.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if w == name {
            if words.peek() == Some(&"=") {
                words.next();
            }
            return words.next().and_then(|v| v.trim_start_matches('=').parse().ok());
        }
        if let Some(rest) = w.strip_prefix(name)
            && let Some(v) = rest.strip_prefix('=')
        {
            return v.parse().ok().or_else(|| words.next().and_then(|v| v.parse().ok()));
        }
    }
    None
}

/// `(transmitted, received)` of the guest's `ping -s` summary.
fn guest_ping_summary(out: &str) -> Option<(u32, u32)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let nums: Vec<u32> = line.split(',').filter_map(|p| p.split_whitespace().next()?.parse().ok()).collect();
    Some((*nums.first()?, *nums.get(1)?))
}

/// Sends `count` datagrams of `size` bytes to `addr`, one at a time, each
/// echoed intact (a lost one is resent, at most `tries` times).
fn fixed_size_echo(addr: SocketAddr, count: usize, size: usize, seed: u64, tries: usize) -> Result<usize, String> {
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    sock.connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_millis(1500))).map_err(|e| e.to_string())?;
    let mut rng = SplitMix64::new(seed);
    let mut buf = vec![0u8; 65536];
    let mut resends = 0;
    for i in 0..count {
        let mut payload = rng.bytes(size);
        payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
        let mut ok = false;
        for attempt in 0..tries {
            if attempt > 0 {
                resends += 1;
            }
            sock.send(&payload).map_err(|e| format!("datagram {i}: send: {e}"))?;
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) if buf[..n] == payload[..] => {
                        ok = true;
                        break;
                    }
                    Ok(n) if n == size && buf[..4] != payload[..4] => continue, // a late echo of an earlier one
                    Ok(n) => return Err(format!("datagram {i}: a reply of {n} bytes is not what was sent")),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                    Err(e) => return Err(format!("datagram {i}: recv: {e}")),
                }
            }
            if ok {
                break;
            }
        }
        if !ok {
            return Err(format!("datagram {i} of {size} bytes never came back in {tries} sends"));
        }
    }
    Ok(resends)
}

#[test]
fn fireengine_ping_udp_echo_fragments_refused_arp_and_duplicate_address() {
    let mut vm = boot();

    let out = vm.run("ipadm show-if");
    vm.check(table_value(&out, "net0", "STACK").as_deref() == Some("fireengine"), format!("net0 runs FireEngine:\n{out}"));

    // Ping both ways.
    let r = vm.ns().ping(arbalest_tests::net::GUEST_IP, 20, "0.1");
    vm.check(r.received == 20, format!("Linux → guest: {}/20 replies\n{}", r.received, r.output.describe()));
    let out = vm.run_timeout(&format!("ping -s -c 20 -I 0.1 {HOST_IP}"), Duration::from_secs(60));
    let summary = guest_ping_summary(&out);
    vm.check(summary == Some((20, 20)), format!("guest → Linux: {summary:?}\n{out}"));

    // UDP echo: 1000 mixed sizes, then 200 × 8000 bytes (fragmented both ways).
    let before = vm.run("netstat -s");
    let mixed = vm.in_ns(|| udp_echo_verify(guest(ECHO_PORT), 1000, 1472, 0x0fe1, Duration::from_millis(500), 5));
    let mixed = match mixed {
        Ok(s) => s,
        Err(e) => {
            let st = vm.run("netstat -s");
            vm.check(false, format!("mixed-size UDP echo: {e}\n{st}"));
            unreachable!()
        }
    };
    eprintln!("mixed: {} datagrams, {} resends", mixed.datagrams, mixed.resends);
    vm.check(mixed.datagrams == 1000 && mixed.resends <= 10, format!("1000 mixed datagrams: {mixed:?}"));
    let big = vm.in_ns(|| fixed_size_echo(guest(ECHO_PORT), 200, 8000, 0x8000, 5));
    let after = vm.run("netstat -s");
    match big {
        Ok(resends) => {
            eprintln!("8000-byte datagrams: 200 echoed, {resends} resends");
            vm.check(resends <= 4, format!("{resends} resends of 200 8000-byte datagrams\n{after}"));
        }
        Err(e) => vm.check(false, format!("8000-byte UDP echo: {e}\n{after}")),
    }
    let delta = |n: &str| mib(&after, n).unwrap_or(0).saturating_sub(mib(&before, n).unwrap_or(0));
    vm.check(delta("ipReasmOKs") >= 200, format!("the guest reassembled the 8000-byte datagrams: ipReasmOKs +{}\n{after}", delta("ipReasmOKs")));
    vm.check(delta("ipFragCreates") >= 200 * 6, format!("and fragmented its echoes: ipFragCreates +{}\n{after}", delta("ipFragCreates")));
    vm.check(delta("udpInOverflows") == 0, format!("no receive overflow\n{after}"));

    // The discard service on port 9 takes datagrams and answers nothing.
    let sent = vm.in_ns(|| -> Result<(), String> {
        let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        for i in 0..100u32 {
            s.send_to(&i.to_be_bytes(), guest(9)).map_err(|e| e.to_string())?;
        }
        s.set_read_timeout(Some(Duration::from_millis(500))).map_err(|e| e.to_string())?;
        let mut b = [0u8; 64];
        match s.recv_from(&mut b) {
            Ok(r) => Err(format!("discard answered: {r:?}")),
            Err(_) => Ok(()),
        }
    });
    vm.check(sent.is_ok(), format!("discard: {sent:?}"));
    let st = vm.run("netstat -s");
    let accepted = st.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 4 && w[0] == "udp" && w[1] == "9" && w[2] == "discard").then(|| w[3].parse::<u64>().ok()).flatten()
    });
    vm.check(accepted.is_some_and(|n| n >= 100), format!("discard took the 100 datagrams: {accepted:?}\n{st}"));

    // netstat -an: the services' endpoints in illumos' UDP table.
    let out = vm.run("netstat -an");
    for port in [7, 9] {
        let row = out.lines().find(|l| l.split_whitespace().next() == Some(&format!("*.{port}")));
        vm.check(row.is_some_and(|r| r.trim_end().ends_with("Idle")), format!("netstat -an lists *.{port} Idle:\n{out}"));
    }
    vm.check(out.contains("UDP: IPv4") && out.contains("   Local Address        Remote Address      State"), format!("netstat -an header:\n{out}"));

    // A closed port: ECONNREFUSED on the Linux socket.
    let refused = vm.in_ns(|| -> Result<(), String> {
        let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        s.connect(guest(4444)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(3))).map_err(|e| e.to_string())?;
        s.send(b"anyone there?").map_err(|e| e.to_string())?;
        let mut b = [0u8; 64];
        match s.recv(&mut b) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(()),
            other => Err(format!("recv after a datagram to a closed port: {other:?}")),
        }
    });
    let st = vm.run("netstat -s");
    vm.check(refused.is_ok(), format!("{refused:?}\n{st}"));
    vm.check(mib(&st, "udpNoPorts").unwrap_or(0) >= 1, format!("udpNoPorts counted\n{st}"));

    // arp -a shows the host.
    let host_mac = vm.ns().tap_mac();
    let out = vm.run("arp -a");
    let row = out.lines().find(|l| l.split_whitespace().nth(1) == Some(&HOST_IP.to_string())).map(str::to_string);
    let want_mac = host_mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    vm.check(
        row.as_deref().is_some_and(|r| r.starts_with("net0") && r.to_lowercase().contains(&want_mac)),
        format!("arp -a shows {HOST_IP} at {want_mac}:\n{out}"),
    );

    // An address the host has: detected as duplicate.
    let out = vm.run(&format!("ipadm create-addr -T static -a {HOST_IP}/24 net0/dup"));
    vm.check(!out.contains("ipadm:"), format!("create-addr: {out}"));
    std::thread::sleep(Duration::from_secs(2));
    let out = vm.run("ipadm show-addr");
    vm.check(table_value(&out, "net0/dup", "STATE").as_deref() == Some("duplicate"), format!("net0/dup is duplicate:\n{out}"));
    vm.check(table_value(&out, "net0/v4", "STATE").as_deref() == Some("ok"), format!("net0/v4 is still ok:\n{out}"));
    let neigh = vm.ns_cmd(&["ip", "neigh", "show", "10.0.0.2"]);
    let r = vm.ns().ping(arbalest_tests::net::GUEST_IP, 5, "0.1");
    vm.check(r.received == 5, format!("the guest still answers after the duplicate: {}/5\n{}\n{}", r.received, neigh.stdout, r.output.describe()));
    let out = vm.run("ipadm delete-addr net0/dup");
    vm.check(!out.contains("ipadm:"), format!("delete-addr: {out}"));
}
