//! The network test harness checked on its own, against a Linux stand-in
//! for the kernel (`arbalest_tests::peer::LinuxPeer`: a veth pair named like
//! the TAP, a second namespace with the guest's MAC and address, Rust echo /
//! discard / chargen / UDP echo servers). No kernel is booted: these tests
//! say whether a failure of `net_virtio` is the kernel's or the harness's.

use std::time::Duration;

use arbalest_tests::frames::parse_mac;
use arbalest_tests::net::{
    guest, inject_malformed, run_cmd, tcp_echo_verify, udp_echo_verify, EchoLoad, Netns, CHARGEN_PORT,
    DISCARD_PORT, ECHO_PORT, GUEST_IP, GUEST_MAC,
};
use arbalest_tests::netbench;
use arbalest_tests::peer::LinuxPeer;

fn netns_exists(name: &str) -> bool {
    bootimage::net::netns_exists(name)
}

#[test]
fn namespace_tap_created_and_removed() {
    let name;
    {
        let ns = Netns::create();
        name = ns.name().to_string();
        assert!(name.starts_with(&format!("arbt{}n", std::process::id())), "{name}");
        assert!(netns_exists(&name));
        let out = ns.cmd(&["ip", "-d", "link", "show", "arbtap0"]);
        assert!(out.success() && out.stdout.contains("multi_queue"), "{}", out.describe());
        let out = ns.cmd(&["ip", "-4", "-o", "addr"]);
        assert!(out.stdout.contains("10.0.0.1/24"), "{}", out.describe());
        // in_ns really is inside: the thread sees arbtap0, the test thread does not.
        let inside = ns.in_ns(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap_or_default());
        let here = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap_or_default();
        assert!(inside.contains("arbtap0"), "{inside}");
        assert!(!here.contains("arbtap0"), "{here}");
        // A panic inside reaches the caller.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ns.in_ns(|| panic!("inner"))));
        assert!(r.is_err());
        assert_eq!(ns.tap_queues(), Some((0, 0)), "no queue attached yet");
        ns.set_tap(false);
        assert!(!ns.cmd(&["ip", "link", "show", "arbtap0"]).stdout.contains(",UP"));
        ns.set_tap(true);
        let mac = ns.tap_mac();
        assert_ne!(mac, [0; 6]);
        // Timeouts are enforced.
        let out = ns.cmd_timeout(&["sleep", "30"], Duration::from_millis(300));
        assert!(out.timed_out && !out.success(), "{}", out.describe());
    }
    assert!(!netns_exists(&name), "namespace {name} left behind");
}

#[test]
fn ping_and_link_state() {
    let peer = LinuxPeer::start();
    let ns = peer.host();
    let r = ns.ping(GUEST_IP, 5, "0.2");
    assert_eq!((r.transmitted, r.received), (5, 5), "{}", r.output.describe());
    ns.set_tap(false);
    let r = ns.ping(GUEST_IP, 2, "0.2");
    assert_eq!(r.received, 0, "ping through a downed link: {}", r.output.describe());
    ns.set_tap(true);
    ns.wait_reachable(GUEST_IP, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    let names = (ns.name().to_string(), peer.guest_ns().to_string());
    drop(peer);
    assert!(!netns_exists(&names.0) && !netns_exists(&names.1), "namespaces left behind: {names:?}");
}

#[test]
fn tcp_echo_4mib() {
    let peer = LinuxPeer::start();
    let st = peer
        .host()
        .in_ns(|| tcp_echo_verify(guest(ECHO_PORT), 4 << 20, 42, Duration::from_secs(120)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(st.bytes, 4 << 20);
}

#[test]
fn tcp_echo_detects_a_wrong_stream() {
    // Chargen is not echo: the checker must notice at once.
    let peer = LinuxPeer::start();
    let r = peer.host().in_ns(|| tcp_echo_verify(guest(CHARGEN_PORT), 1 << 20, 1, Duration::from_secs(30)));
    let e = r.unwrap_err();
    assert!(e.contains("differs"), "{e}");
    // And discard never answers: a timeout, not a hang.
    let r = peer.host().in_ns(|| tcp_echo_verify(guest(DISCARD_PORT), 1000, 1, Duration::from_secs(2)));
    assert!(r.is_err());
}

#[test]
fn udp_echo_1000() {
    let peer = LinuxPeer::start();
    let st = peer
        .host()
        .in_ns(|| udp_echo_verify(guest(ECHO_PORT), 1000, 1472, 7, Duration::from_secs(1), 5))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(st.datagrams, 1000);
    // Nothing listens on UDP 9 (the peer has no UDP discard): never comes back.
    let e = peer
        .host()
        .in_ns(|| udp_echo_verify(guest(DISCARD_PORT), 3, 100, 7, Duration::from_millis(200), 2))
        .unwrap_err();
    assert!(e.contains("never came back"), "{e}");
}

#[test]
fn sixteen_connections() {
    let peer = LinuxPeer::start();
    let stats = peer.host().in_ns(|| {
        let load = EchoLoad::start(guest(ECHO_PORT), 16, 1024, 3).unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(Duration::from_secs(2));
        load.stop()
    });
    assert_eq!(stats.len(), 16);
    for (i, s) in stats.iter().enumerate() {
        assert!(s.error.is_none() && s.round_trips > 0, "connection {i}: {s:?}");
    }
}

#[test]
fn malformed_frames_dropped_by_linux() {
    let peer = LinuxPeer::start();
    let ns = peer.host();
    let report = inject_malformed(ns, parse_mac(GUEST_MAC).unwrap(), 12, 99, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.answered_bad.is_empty(), "Linux answered malformed frames?! {:?}", report.answered_bad);
    assert_eq!(report.control_echo_replies, 3);
    assert!(report.total_sent() >= 9 * 12, "{report:?}");
    let out = ns.cmd(&["ip", "link", "show", "arbtap0"]);
    assert!(out.stdout.contains("mtu 1500"), "MTU not restored: {}", out.describe());
    let r = ns.ping(GUEST_IP, 5, "0.2");
    assert_eq!(r.received, 5, "{}", r.output.describe());
}

#[test]
fn bench_clients() {
    let peer = LinuxPeer::start();
    let d = Duration::from_millis(700);
    let (to, from, rr, cr) = peer.host().in_ns(|| {
        (
            netbench::stream_to(guest(DISCARD_PORT), d).unwrap_or_else(|e| panic!("{e}")),
            netbench::stream_from(guest(CHARGEN_PORT), d).unwrap_or_else(|e| panic!("{e}")),
            netbench::tcp_rr(guest(ECHO_PORT), d).unwrap_or_else(|e| panic!("{e}")),
            netbench::connect_rate(guest(ECHO_PORT), d).unwrap_or_else(|e| panic!("{e}")),
        )
    });
    assert!(to.bytes > 0 && from.bytes > 0, "{to:?} {from:?}");
    assert!(rr.count > 10 && rr.p50 <= rr.p99, "{rr:?}");
    assert!(cr.rt.count > 5 && cr.failures == 0, "{cr:?}");
}

#[test]
fn root_namespace_is_untouched() {
    // The clients run in the namespace only: no interface named arbtap0
    // and no route over one exists outside the namespaces (a route lookup
    // sends nothing).
    let _peer = LinuxPeer::start();
    let out = run_cmd(&["ip", "-o", "link", "show"], Duration::from_secs(10));
    assert!(!out.stdout.contains("arbtap0"), "{}", out.describe());
    let out = run_cmd(&["ip", "route", "get", "10.0.0.2"], Duration::from_secs(10));
    assert!(!out.stdout.contains("arbtap0"), "{}", out.describe());
}
