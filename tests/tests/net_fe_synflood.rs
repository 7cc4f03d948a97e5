//! A SYN flood against the FireEngine guest's echo service (port 7), from
//! Linux in the test's namespace (its only link is the test's TAP; the
//! namespace does not forward, so nothing leaves it): `hping3 -S -p 7
//! --rand-source -i u50` (about 10 000 SYNs a second on this machine;
//! `-i u100` reached only about 5300), while a real client keeps doing
//! connect / echo / close. With SYN cookies the connections keep
//! completing (at least 50 a second: 470 to 720 were measured here, against
//! the ~230/s the issue cites for a Linux guest; 23 to 36 before the two
//! fixes below); when the flood stops 20 in a row succeed at once; `netstat
//! -s` shows the cookies; afterwards at most q0's limit of eagers is
//! half-open and no other conn is left.
//!
//! The flood's profile (`lockstat -kIW`) is printed on the way.
//!
//! What this test found: the TAP's two queues reorder a flow's first
//! segments (its steering moves a flow to the queue the guest answered on),
//! so the client's data could reach the listener before or after the pure
//! ACK that carries the same cookie. Data queued behind the ACK was taken
//! for a second cookie ACK and dropped (the client waited out a 200 ms
//! retransmission: `tcpInListenerReclassified` now counts those sent on
//! to the conn), and an ACK that came after its conn had ended made a
//! phantom ESTABLISHED conn (`tcpSynCookiesReplayed` counts those refused).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use arbalest_tests::net::{netstat_value, require_program, NetVm, ECHO_PORT, GUEST_IP};
use arbalest_tests::Config;

fn echo_once(addr: SocketAddr, n: u32) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let msg = format!("synflood probe {n}\n");
    s.write_all(msg.as_bytes()).map_err(|e| format!("write: {e}"))?;
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).map_err(|e| format!("read: {e}"))?;
    if got != msg.as_bytes() {
        return Err("echo differs".into());
    }
    Ok(())
}

fn tx_packets(vm: &NetVm) -> u64 {
    let tap = vm.ns().tap().to_string();
    let o = vm.ns().cmd(&["cat", &format!("/sys/class/net/{tap}/statistics/tx_packets")]);
    o.stdout.trim().parse().unwrap_or(0)
}

#[test]
fn a_syn_flood_is_answered_with_cookies_and_real_clients_keep_connecting() {
    require_program("hping3", "hping3");
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let mut vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));
    let echo = SocketAddr::from((GUEST_IP, ECHO_PORT));
    vm.in_ns(move || echo_once(echo, 0)).expect("echo before the flood");

    let ns = vm.ns().name().to_string();
    let flood_s = 20u64;
    let tx0 = tx_packets(&vm);
    let t0 = Instant::now();
    let mut flood = std::process::Command::new("timeout")
        .args([&format!("{flood_s}"), "ip", "netns", "exec", &ns, "hping3", "-q", "-S", "-p", "7", "--rand-source", "-i", "u50", &GUEST_IP.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hping3");
    // Where the guest's CPUs go under the flood.
    std::thread::sleep(Duration::from_secs(1));
    let prof = vm.run("lockstat -kIW -D 30 sleep 3");
    eprintln!("{prof}");
    let (ok, tried) = vm.in_ns(move || {
        let (mut ok, mut tried) = (0u32, 0u32);
        let end = Instant::now() + Duration::from_secs(flood_s - 4);
        while Instant::now() < end {
            tried += 1;
            if echo_once(echo, tried).is_ok() {
                ok += 1;
            }
        }
        (ok, tried)
    });
    let _ = flood.wait();
    let secs = t0.elapsed().as_secs_f64();
    let sent = tx_packets(&vm).saturating_sub(tx0);
    let rate = sent as f64 / secs;
    eprintln!("flood: {sent} frames into the TAP in {secs:.1} s = {rate:.0}/s");
    eprintln!("during the flood: {ok} of {tried} connect/echo/close completed, {:.1}/s (Linux guest: ~230/s cited)", f64::from(ok) / (flood_s - 4) as f64);
    // hping3 at -i u50 reached 9867 frames/s here (the issue asks for
    // 10 000 SYN/s); the floor, half of that, leaves room for a slower
    // host and still floods q0 (1152) about 90 times a second.
    assert!(rate >= 5000.0, "hping3 reached only {rate:.0} SYNs/s");
    let per_s = f64::from(ok) / (flood_s - 4) as f64;
    assert!(per_s >= 50.0, "connections nearly stopped under the flood: {ok} of {tried}, {per_s:.1}/s");

    // The flood stops: 20 in a row at once.
    let r = vm.in_ns(move || (1..=20).try_for_each(|i| echo_once(echo, 1000 + i)));
    r.expect("20 connections in a row after the flood");

    let s = vm.run("netstat -s");
    eprintln!(
        "tcpSynCookiesSent {:?} tcpSynCookiesRecv {:?} tcpSynCookiesFailed {:?} tcpSynCookiesReplayed {:?} tcpInListenerReclassified {:?} tcpListenDropQ0 {:?} tcpHalfOpenDrop {:?}",
        netstat_value(&s, "tcpSynCookiesSent"),
        netstat_value(&s, "tcpSynCookiesRecv"),
        netstat_value(&s, "tcpSynCookiesFailed"),
        netstat_value(&s, "tcpSynCookiesReplayed"),
        netstat_value(&s, "tcpInListenerReclassified"),
        netstat_value(&s, "tcpListenDropQ0"),
        netstat_value(&s, "tcpHalfOpenDrop")
    );
    assert!(netstat_value(&s, "tcpSynCookiesSent").unwrap_or(0) > 0, "{s}");
    assert!(netstat_value(&s, "tcpSynCookiesRecv").unwrap_or(0) > 0, "{s}");

    // The flood's own eagers stay in SYN_RCVD until their SYN-ACKs give
    // up: at most q0's limit (backlog 128 + _conn_req_max_q0 1024). Every
    // conn of the real client has ended: a phantom (see the module doc)
    // would stay ESTABLISHED.
    let an = vm.run("netstat -an");
    let half_open = an.lines().filter(|l| l.contains("SYN_RCVD")).count();
    assert!(half_open <= 128 + 1024, "{half_open} half-open conns: more than q0 holds");
    let busy = ["ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "FIN_WAIT", "CLOSING"];
    let left: Vec<&str> = an.lines().filter(|l| busy.iter().any(|b| l.contains(b))).collect();
    eprintln!("after the flood: {half_open} eagers in SYN_RCVD; other conns left: {left:?}");
    assert!(left.is_empty(), "conns left after the flood: {left:?}");
}
