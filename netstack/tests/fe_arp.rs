//! The neighbour cache (FireEngine's ARP) with a fake clock: a flood of
//! unresolvable addresses cannot lock the table, and a stale neighbour
//! that stops answering its unicast confirmations is given up.

use std::net::Ipv4Addr;

use arbalest_netstack::fireengine::arp::{ArpActions, ArpConfig, NeighbourCache, NeighbourState, Resolution};
use arbalest_netstack::fireengine::wire::arp::{ARP_REPLY, ArpPacket};

const ME: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// A cache holding our address (DAD done) at time `t`.
fn cache(cfg: ArpConfig) -> (NeighbourCache, u64) {
    let mut c = NeighbourCache::new(ME, cfg);
    let mut t = 0;
    let _ = c.add_local(MY_IP, t);
    while c.local_state(MY_IP) != Some(arbalest_netstack::fireengine::arp::AddrState::Ok) {
        t += 50;
        let _ = c.tick(t);
        assert!(t < 10_000, "DAD never finished");
    }
    (c, t)
}

fn reply(from_ip: Ipv4Addr, from_mac: [u8; 6]) -> ArpPacket {
    ArpPacket { op: ARP_REPLY, sha: from_mac, spa: from_ip, tha: ME, tpa: MY_IP }
}

#[test]
fn a_flood_of_unresolvable_addresses_cannot_lock_the_table() {
    let cfg = ArpConfig { max_entries: 8, ..ArpConfig::default() };
    let (mut c, t) = cache(cfg);
    // A real neighbour, stale by now.
    let gw = Ipv4Addr::new(10, 0, 0, 254);
    let mut out = ArpActions::default();
    assert_eq!(c.resolve(gw, None, t, vec![1], &mut out), Resolution::Queued);
    let _ = c.input(&reply(gw, [2, 0, 0, 0, 0, 0xfe]), t);
    // Spoofed sources draw replies that need resolving: 20 addresses that
    // never answer, each holding a packet.
    let mut dropped = 0;
    for i in 0..20u8 {
        let mut out = ArpActions::default();
        let r = c.resolve(Ipv4Addr::new(10, 0, 0, 100 + i), None, t + 1 + u64::from(i), vec![i], &mut out);
        assert_eq!(r, Resolution::Queued, "address {i}: room is made, never refused");
        dropped += out.dropped;
    }
    assert_eq!(c.entries().len(), 8);
    assert_eq!(dropped, 13, "each incomplete entry pushed out took its waiting packet with it");
    assert_eq!(c.stats().pending_dropped, 13);
    // The reachable neighbour was never pushed out.
    assert!(c.entries().iter().any(|e| e.ip == gw && e.state == NeighbourState::Reachable));
    let mut out = ArpActions::default();
    assert!(matches!(c.resolve(gw, None, t + 30, vec![9], &mut out), Resolution::Now(..)));
}

#[test]
fn a_stale_neighbour_that_stops_answering_is_given_up() {
    let cfg = ArpConfig::default();
    let (mut c, mut t) = cache(cfg);
    let nb = Ipv4Addr::new(10, 0, 0, 7);
    let old_mac = [2, 0, 0, 0, 0, 7];
    let mut out = ArpActions::default();
    let _ = c.resolve(nb, None, t, vec![1], &mut out);
    let _ = c.input(&reply(nb, old_mac), t);
    // Past reachable_ms: stale. Using it sends a unicast confirmation.
    t += cfg.reachable_ms + 1;
    let _ = c.tick(t);
    let mut out = ArpActions::default();
    assert_eq!(c.resolve(nb, None, t, vec![2], &mut out), Resolution::Now(old_mac, vec![2]), "stale: used meanwhile");
    assert_eq!(out.send.len(), 1);
    assert_eq!(out.send[0].0, old_mac, "the confirmation is unicast");
    // No answer: two more unicast requests, one per retrans_ms, then gone.
    let mut unicast = 1;
    for _ in 0..10 {
        t += cfg.retrans_ms;
        let out = c.tick(t);
        unicast += out.send.iter().filter(|(d, _)| *d == old_mac).count();
    }
    assert_eq!(unicast, cfg.max_probes as usize);
    assert!(c.entries().iter().all(|e| e.ip != nb), "given up after {} unanswered requests", cfg.max_probes);
    // The next packet resolves afresh, by broadcast.
    let mut out = ArpActions::default();
    assert_eq!(c.resolve(nb, None, t, vec![3], &mut out), Resolution::Queued);
    assert_eq!(out.send[0].0, [0xff; 6]);
}

#[test]
fn a_stale_neighbour_that_answers_stays() {
    let cfg = ArpConfig::default();
    let (mut c, mut t) = cache(cfg);
    let nb = Ipv4Addr::new(10, 0, 0, 8);
    let mac = [2, 0, 0, 0, 0, 8];
    let mut out = ArpActions::default();
    let _ = c.resolve(nb, None, t, vec![1], &mut out);
    let _ = c.input(&reply(nb, mac), t);
    t += cfg.reachable_ms + 1;
    let _ = c.tick(t);
    let mut out = ArpActions::default();
    let _ = c.resolve(nb, None, t, vec![2], &mut out);
    let _ = c.input(&reply(nb, mac), t + 5);
    for _ in 0..10 {
        t += cfg.retrans_ms;
        let _ = c.tick(t);
    }
    assert!(c.entries().iter().any(|e| e.ip == nb && e.state == NeighbourState::Reachable));
}
