//! Soft ring sets on a booted kernel: dynamic polling under a flood from
//! the host, and back to interrupt mode once it stops (issue 5's dynamic
//! polling check). virtio-net, 2 CPUs, 2 queue pairs on a TAP in a
//! namespace the test creates.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbalest_tests::frames;
use arbalest_tests::net::{NetVm, GUEST_MAC};

const SMP: usize = 2;
const QUEUES: usize = 2;

/// Per-lane counters from `dlstat show-link -a net0`: ring → name → value.
fn lanes(vm: &mut NetVm) -> BTreeMap<usize, BTreeMap<String, u64>> {
    let out = vm.run("dlstat show-link -a -u R net0");
    let mut all = BTreeMap::new();
    let mut cur: Option<usize> = None;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["net0", "rx", "hw", ring] => {
                cur = ring.parse().ok();
                if let Some(r) = cur {
                    all.insert(r, BTreeMap::new());
                }
            }
            ["net0", ..] => cur = None,
            [name, value] => {
                if let (Some(r), Ok(v)) = (cur, value.parse::<u64>()) {
                    all.get_mut(&r).unwrap().insert(name.to_string(), v);
                }
            }
            _ => {}
        }
    }
    assert_eq!(all.len(), QUEUES, "expected {QUEUES} Rx lanes in:\n{out}");
    all
}

fn sum(l: &BTreeMap<usize, BTreeMap<String, u64>>, name: &str) -> u64 {
    l.values().map(|c| c.get(name).copied().unwrap_or_else(|| panic!("no counter {name} in {c:?}"))).sum()
}

#[test]
fn flood_turns_polling_on_and_quiet_turns_it_off() {
    let mut vm = NetVm::boot(SMP, QUEUES);
    vm.wait_reachable(Duration::from_secs(60));
    let before = lanes(&mut vm);

    // Flood: UDP datagrams to the discard port from many source ports (so
    // they spread over both rings), as fast as two sender threads can write
    // them into the TAP, for a bounded time and count.
    let ep = vm.ns().endpoints(frames::parse_mac(GUEST_MAC).expect("guest MAC"));
    let sent: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2u16)
            .map(|t| {
                let sock = vm.ns().raw_socket();
                let ep = ep;
                s.spawn(move || {
                    let end = Instant::now() + Duration::from_secs(4);
                    let mut n = 0u64;
                    let payload = [0x5au8; 64];
                    while Instant::now() < end && n < 2_000_000 {
                        let sport = 20000 + t * 1000 + (n % 512) as u16;
                        let udp = frames::udp(ep.host_ip, ep.guest_ip, sport, 9, &payload);
                        let f = frames::eth(ep.guest_mac, ep.host_mac, 0x0800, &frames::ipv4(ep.host_ip, ep.guest_ip, 17, n as u16, &udp));
                        if sock.send(&f).is_ok() {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    eprintln!("flood: {sent} frames written into the TAP");

    let during = lanes(&mut vm);
    let polls = sum(&during, "polls") - sum(&before, "polls");
    let long_chains = (sum(&during, "chain10to50") + sum(&during, "chainover50")) - (sum(&before, "chain10to50") + sum(&before, "chainover50"));
    let poll_on = sum(&during, "poll_on") - sum(&before, "poll_on");
    vm.check(poll_on > 0, format!("the flood never turned polling on: {during:?}"));
    vm.check(polls > 0, format!("no packets picked up by polling: {during:?}"));
    vm.check(long_chains > 0, format!("no poll returned a chain of 10 or more: {during:?}"));

    // Quiet: every lane back in interrupt mode (as many poll-offs as ons).
    let deadline = Instant::now() + Duration::from_secs(20);
    let quiet = loop {
        let l = lanes(&mut vm);
        if l.values().all(|c| c["poll_on"] == c["poll_off"]) {
            break l;
        }
        vm.check(Instant::now() < deadline, format!("lanes still polling 20 s after the flood: {l:?}"));
        std::thread::sleep(Duration::from_millis(500));
    };
    vm.check(sum(&quiet, "poll_off") > sum(&before, "poll_off"), format!("poll-off counter did not grow: {quiet:?}"));

    // A single ping is answered in interrupt mode: INTRS grows, POLLS not.
    let r = vm.ns().ping(arbalest_tests::net::GUEST_IP, 1, "1");
    if r.received != 1 {
        let diag = vm.run("netstat -s");
        let d2 = vm.run("dlstat show-link -r");
        let d3 = vm.run("threads");
        let d4 = vm.run("nicctl rings");
        let r2 = vm.ns().ping(arbalest_tests::net::GUEST_IP, 3, "1");
        let d5 = vm.run("nicctl rings") + &vm.run("dlstat show-link -t -u R") + &vm.run("netstat -s");
        vm.check(false, format!("single ping after the flood: {}\n{diag}\n{d2}\n{d3}\n{d4}\nretry: {}\n{d5}", r.output.describe(), r2.output.describe()));
    }
    let after = lanes(&mut vm);
    vm.check(sum(&after, "intrs") > sum(&quiet, "intrs"), format!("the ping was not picked up in interrupt mode: {quiet:?} -> {after:?}"));
    vm.check(sum(&after, "polls") == sum(&quiet, "polls"), format!("the ping was polled: {quiet:?} -> {after:?}"));
}
