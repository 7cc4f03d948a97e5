//! FireEngine IP classifier and conn_t: illumos' lookup order (connected
//! before listener, exact address before wildcard, connected UDP only for
//! its peer, the protocol table last), duplicate and invalid inserts,
//! bounded tables with counted refusals, removal and CONDEMNED, reference
//! counts and a packet's reference outliving removal, moves between
//! tables, ephemeral-port checks, the walker, table sizes from memory,
//! 100 000 conns, and lookups racing inserts and removes.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread;

use arbalest_netstack::fireengine::classifier::{
    Classifier, ClassifierConfig, ClassifierStats, ClassifyError, IPCL_BIND_FANOUT_SIZE, IPCL_RAW_FANOUT_SIZE,
    IPCL_UDP_FANOUT_SIZE, conn_fanout_size,
};
use arbalest_netstack::fireengine::conn::{
    CONN_CONDEMNED, CONN_INCIPIENT, Conn, ConnRef, ConnTuple, Fanout, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP,
};

mod rng;
use rng::Rng;

const MIB: u64 = 1 << 20;

/// The protocol block the tests hang on conns: an id to tell them apart.
#[derive(Debug)]
struct Pcb {
    id: usize,
}

type Cl = Classifier<Pcb>;

fn cl() -> Cl {
    Classifier::new(ClassifierConfig::from_memory(64 * MIB))
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

fn conn(id: usize, t: ConnTuple) -> ConnRef<Pcb> {
    Conn::new(t, 0, Pcb { id })
}

fn tcp(laddr: Ipv4Addr, lport: u16, faddr: Ipv4Addr, fport: u16) -> ConnTuple {
    ConnTuple::connected(IPPROTO_TCP, laddr, lport, faddr, fport)
}

fn udp(laddr: Ipv4Addr, lport: u16, faddr: Ipv4Addr, fport: u16) -> ConnTuple {
    ConnTuple::connected(IPPROTO_UDP, laddr, lport, faddr, fport)
}

/// The id of the conn a lookup found, if any.
fn id(c: Option<ConnRef<Pcb>>) -> Option<usize> {
    c.map(|c| c.proto.id)
}

/// Our address and a peer's.
fn me() -> Ipv4Addr {
    ip(10, 0, 0, 1)
}
fn peer() -> Ipv4Addr {
    ip(192, 168, 1, 7)
}

// ---- sizes -------------------------------------------------------------

#[test]
fn conn_fanout_is_sized_from_memory_as_ipcl_init_does() {
    // bytes / 8192, then the first prime of the 2^N series (2^N - 2^(N-2)
    // rounded down to a prime), starting at 2^9.
    assert_eq!(conn_fanout_size(64 * MIB), 12_281, "64 MiB: 8192 wanted → 12281");
    assert_eq!(conn_fanout_size(0), 383, "no memory: the smallest, 2^9's prime");
    assert_eq!(conn_fanout_size(MIB), 383, "1 MiB: 128 wanted");
    assert_eq!(conn_fanout_size(383 * 8192), 383, "exactly a prime: kept");
    assert_eq!(conn_fanout_size(384 * 8192), 761, "one above: the next prime");
    assert_eq!(conn_fanout_size(6143 * 8192), 6143);
    assert_eq!(conn_fanout_size(6144 * 8192), 12_281);
    assert_eq!(conn_fanout_size(256 * MIB), 49_139, "32768 wanted");
    // Capped at ipcl_conn_hash_maxsize (82 500) → 2^17's prime.
    assert_eq!(conn_fanout_size(1 << 30), 98_299, "1 GiB: 131072 wanted, capped");
    assert_eq!(conn_fanout_size(64 << 30), 98_299);
    assert_eq!(conn_fanout_size(u64::MAX), 98_299);
    assert_eq!(conn_fanout_size(82_500 * 8192), 98_299);
    // The whole series illumos lists from 2^9 to 2^17: each prime is kept
    // when asked for exactly, one more takes the next.
    let series = [383, 761, 1531, 3067, 6143, 12_281, 24_571, 49_139, 98_299];
    for w in series.windows(2) {
        assert_eq!(conn_fanout_size(w[0] as u64 * 8192), w[0]);
        assert_eq!(conn_fanout_size((w[0] as u64 + 1) * 8192), w[1]);
        assert_eq!(conn_fanout_size((w[0] as u64 + 1) * 8192 - 1), w[0], "bytes / 8192 rounds down");
    }
}

#[test]
fn config_from_memory_has_illumos_table_sizes_and_bounds() {
    let c = ClassifierConfig::from_memory(64 * MIB);
    assert_eq!(c.conn_buckets, 12_281);
    assert_eq!(c.bind_buckets, 512);
    assert_eq!(c.udp_buckets, 16_384);
    assert_eq!(c.proto_buckets, 256);
    assert_eq!((IPCL_BIND_FANOUT_SIZE, IPCL_UDP_FANOUT_SIZE, IPCL_RAW_FANOUT_SIZE), (512, 16_384, 256));
    assert!(c.max_conn >= c.conn_buckets && c.max_bind > 0 && c.max_udp >= 65_535 && c.max_proto > 0);
    let k: Cl = Classifier::new(c);
    assert_eq!(k.buckets(Fanout::Conn), 12_281);
    assert_eq!(k.buckets(Fanout::Bind), 512);
    assert_eq!(k.buckets(Fanout::Udp), 16_384);
    assert_eq!(k.buckets(Fanout::Proto), 256);
    assert_eq!(k.config(), &c);
    // Zero buckets are taken as one; nothing panics.
    let z: Cl =
        Classifier::new(ClassifierConfig { conn_buckets: 0, bind_buckets: 0, udp_buckets: 0, proto_buckets: 0, ..c });
    assert_eq!(z.buckets(Fanout::Conn), 1);
    let a = conn(1, tcp(me(), 80, peer(), 5000));
    z.insert_connected(&a).unwrap();
    assert_eq!(id(z.classify_v4(IPPROTO_TCP, peer(), 5000, me(), 80)), Some(1));
}

// ---- lookup order ----------------------------------------------------------

#[test]
fn tcp_connected_conn_beats_the_listener() {
    let k = cl();
    let listener = conn(1, ConnTuple::bound(IPPROTO_TCP, ANY, 80));
    let est = conn(2, tcp(me(), 80, peer(), 40_000));
    k.insert_bind(&listener).unwrap();
    k.insert_connected(&est).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 40_000, me(), 80)), Some(2), "5-tuple first");
    // Another source port from the same peer: a new connection, the listener.
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 40_001, me(), 80)), Some(1));
    // Another peer, another local address (wildcard listener takes both).
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, ip(1, 2, 3, 4), 40_000, ip(10, 0, 0, 2), 80)), Some(1));
    // Another port: nothing.
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 40_000, me(), 81)), None);
    // The narrower lookups agree.
    assert_eq!(id(k.lookup_connected(&tcp(me(), 80, peer(), 40_000))), Some(2));
    assert_eq!(id(k.lookup_connected(&tcp(me(), 80, peer(), 40_001))), None);
    assert_eq!(id(k.lookup_listener(me(), 80)), Some(1));
    assert_eq!(k.len_of(Fanout::Conn), 1);
    assert_eq!(k.len_of(Fanout::Bind), 1);
}

#[test]
fn tcp_exact_address_listener_beats_wildcard_in_either_insert_order() {
    for exact_first in [false, true] {
        let k = cl();
        let wild = conn(1, ConnTuple::bound(IPPROTO_TCP, ANY, 22));
        let exact = conn(2, ConnTuple::bound(IPPROTO_TCP, me(), 22));
        if exact_first {
            k.insert_bind(&exact).unwrap();
            k.insert_bind(&wild).unwrap();
        } else {
            k.insert_bind(&wild).unwrap();
            k.insert_bind(&exact).unwrap();
        }
        assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1234, me(), 22)), Some(2), "exact_first={exact_first}");
        assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1234, ip(10, 0, 0, 9), 22)), Some(1));
        // The exact one gone, the wildcard takes its address too.
        assert!(k.remove(&exact));
        assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1234, me(), 22)), Some(1));
    }
}

#[test]
fn tcp_listener_on_another_address_does_not_match() {
    let k = cl();
    k.insert_bind(&conn(1, ConnTuple::bound(IPPROTO_TCP, ip(10, 0, 0, 2), 443))).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 999, me(), 443)), None);
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 999, ip(10, 0, 0, 2), 443)), Some(1));
    // A UDP packet to the same port does not find a TCP listener.
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 999, ip(10, 0, 0, 2), 443)), None);
}

#[test]
fn tcp_listeners_on_ports_sharing_a_bind_bucket_are_told_apart() {
    let k = cl();
    // 512 buckets: ports 512 apart are likely to share one; every port
    // still finds only its own listener.
    let ports: Vec<u16> = (0..40).map(|i| 1000 + i * 512).collect();
    for (i, &p) in ports.iter().enumerate() {
        k.insert_bind(&conn(i, ConnTuple::bound(IPPROTO_TCP, ANY, p))).unwrap();
    }
    for (i, &p) in ports.iter().enumerate() {
        assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 7, me(), p)), Some(i));
        assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 7, me(), p + 1)), None);
    }
}

#[test]
fn udp_connected_conn_matches_only_its_peer() {
    let k = cl();
    let c = conn(1, udp(me(), 5353, peer(), 53));
    k.insert_udp(&c).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 53, me(), 5353)), Some(1));
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 54, me(), 5353)), None, "other source port");
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, ip(8, 8, 8, 8), 53, me(), 5353)), None, "other source");
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 53, ip(10, 0, 0, 2), 5353)), None, "other local addr");
    // With an unconnected wildcard conn on the port, everybody else gets that.
    let w = conn(2, ConnTuple::bound(IPPROTO_UDP, ANY, 5353));
    k.insert_udp(&w).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 53, me(), 5353)), Some(1), "connected first");
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 54, me(), 5353)), Some(2));
    assert_eq!(id(k.lookup_udp(ip(8, 8, 8, 8), 53, me(), 5353)), Some(2));
    // A TCP packet to the port finds no UDP conn.
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 53, me(), 5353)), None);
}

#[test]
fn udp_order_is_connected_then_exact_then_wildcard_whatever_the_insert_order() {
    let mut rng = Rng(7);
    for round in 0..20 {
        let k = cl();
        let mut cs = vec![
            conn(0, udp(me(), 9000, peer(), 1111)),
            conn(1, udp(ANY, 9000, peer(), 2222)),
            conn(2, ConnTuple::bound(IPPROTO_UDP, me(), 9000)),
            conn(3, ConnTuple::bound(IPPROTO_UDP, ANY, 9000)),
        ];
        rng.shuffle(&mut cs);
        for c in &cs {
            k.insert_udp(c).unwrap();
        }
        let r = |src, sport, dst| id(k.classify_v4(IPPROTO_UDP, src, sport, dst, 9000));
        assert_eq!(r(peer(), 1111, me()), Some(0), "round {round}: connected + exact address");
        assert_eq!(r(peer(), 1111, ip(10, 0, 0, 5)), Some(3), "connected one is for me() only");
        assert_eq!(r(peer(), 2222, ip(10, 0, 0, 5)), Some(1), "connected, wildcard local address");
        assert_eq!(r(peer(), 2222, me()), Some(1), "connected before exact-bound");
        assert_eq!(r(peer(), 3333, me()), Some(2), "exact before wildcard");
        assert_eq!(r(peer(), 3333, ip(10, 0, 0, 5)), Some(3), "wildcard last");
        assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 3333, me(), 9001)), None);
    }
}

#[test]
fn unconnected_udp_wildcard_takes_any_source_and_local_address() {
    let k = cl();
    k.insert_udp(&conn(1, ConnTuple::bound(IPPROTO_UDP, ANY, 7))).unwrap();
    let mut rng = Rng(3);
    for _ in 0..1000 {
        let src = Ipv4Addr::from(rng.next() as u32);
        let dst = Ipv4Addr::from(rng.next() as u32);
        let sport = rng.next() as u16;
        assert_eq!(id(k.classify_v4(IPPROTO_UDP, src, sport, dst, 7)), Some(1));
        assert_eq!(id(k.classify_v4(IPPROTO_UDP, src, sport, dst, 8)), None);
    }
}

#[test]
fn protocol_table_serves_raw_conns_and_unmatched_packets_of_any_protocol() {
    let k = cl();
    let icmp_any = conn(1, ConnTuple::bound(IPPROTO_ICMP, ANY, 0));
    let icmp_peer = conn(2, ConnTuple::connected(IPPROTO_ICMP, ANY, 0, peer(), 0));
    let raw_tcp = conn(3, ConnTuple::bound(IPPROTO_TCP, me(), 0));
    let raw_gre = conn(4, ConnTuple::bound(47, ANY, 0));
    for c in [&icmp_any, &icmp_peer, &raw_tcp, &raw_gre] {
        k.insert_proto(c).unwrap();
    }
    assert_eq!(id(k.classify_v4(IPPROTO_ICMP, peer(), 0, me(), 0)), Some(2), "connected raw conn first");
    assert_eq!(id(k.classify_v4(IPPROTO_ICMP, ip(1, 1, 1, 1), 0, me(), 0)), Some(1));
    assert_eq!(id(k.lookup_proto(IPPROTO_ICMP, ip(1, 1, 1, 1), me())), Some(1));
    assert_eq!(id(k.classify_v4(47, peer(), 1, me(), 2)), Some(4), "ports ignored");
    assert_eq!(id(k.classify_v4(50, peer(), 0, me(), 0)), None);
    // TCP with no conn and no listener falls through to a raw TCP conn
    // on the packet's destination address...
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1, me(), 2)), Some(3));
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1, ip(10, 0, 0, 9), 2)), None);
    // ...but a listener comes first.
    k.insert_bind(&conn(5, ConnTuple::bound(IPPROTO_TCP, ANY, 2))).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1, me(), 2)), Some(5));
    // UDP likewise.
    k.insert_proto(&conn(6, ConnTuple::bound(IPPROTO_UDP, ANY, 0))).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 1, me(), 2)), Some(6));
    k.insert_udp(&conn(7, ConnTuple::bound(IPPROTO_UDP, ANY, 2))).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 1, me(), 2)), Some(7));
    assert_eq!(k.len_of(Fanout::Proto), 5);
}

#[test]
fn every_protocol_number_and_odd_address_is_classified_without_panic() {
    let k = cl();
    k.insert_bind(&conn(1, ConnTuple::bound(IPPROTO_TCP, ANY, 80))).unwrap();
    k.insert_udp(&conn(2, ConnTuple::bound(IPPROTO_UDP, ANY, 53))).unwrap();
    k.insert_proto(&conn(3, ConnTuple::bound(255, ANY, 0))).unwrap();
    let addrs = [ANY, Ipv4Addr::BROADCAST, ip(224, 0, 0, 1), ip(127, 0, 0, 1), me()];
    for p in 0..=255u8 {
        for &a in &addrs {
            for &b in &addrs {
                for port in [0u16, 1, 53, 80, u16::MAX] {
                    let got = id(k.classify_v4(p, a, port, b, port));
                    let want = match (p, port) {
                        (IPPROTO_TCP, 80) => Some(1),
                        (IPPROTO_UDP, 53) => Some(2),
                        (255, _) => Some(3),
                        _ => None,
                    };
                    assert_eq!(got, want, "proto {p} {a}:{port} -> {b}:{port}");
                }
            }
        }
    }
}

// ---- refusals ----------------------------------------------------------------

#[test]
fn duplicate_keys_are_refused_with_addr_in_use_and_counted() {
    let k = cl();
    let a = conn(1, ConnTuple::bound(IPPROTO_TCP, me(), 80));
    k.insert_bind(&a).unwrap();
    assert_eq!(k.insert_bind(&conn(2, ConnTuple::bound(IPPROTO_TCP, me(), 80))), Err(ClassifyError::AddrInUse));
    // Wildcard and exact on the same port may coexist (policy is the
    // transport's), another address too.
    k.insert_bind(&conn(3, ConnTuple::bound(IPPROTO_TCP, ANY, 80))).unwrap();
    k.insert_bind(&conn(4, ConnTuple::bound(IPPROTO_TCP, ip(10, 0, 0, 2), 80))).unwrap();
    assert_eq!(k.insert_bind(&conn(5, ConnTuple::bound(IPPROTO_TCP, ANY, 80))), Err(ClassifyError::AddrInUse));

    let e = conn(10, tcp(me(), 80, peer(), 1000));
    k.insert_connected(&e).unwrap();
    assert_eq!(k.insert_connected(&conn(11, tcp(me(), 80, peer(), 1000))), Err(ClassifyError::AddrInUse));
    k.insert_connected(&conn(12, tcp(me(), 80, peer(), 1001))).unwrap();

    k.insert_udp(&conn(20, ConnTuple::bound(IPPROTO_UDP, ANY, 53))).unwrap();
    assert_eq!(k.insert_udp(&conn(21, ConnTuple::bound(IPPROTO_UDP, ANY, 53))), Err(ClassifyError::AddrInUse));
    k.insert_udp(&conn(22, udp(me(), 53, peer(), 53))).unwrap();
    assert_eq!(k.insert_udp(&conn(23, udp(me(), 53, peer(), 53))), Err(ClassifyError::AddrInUse));

    k.insert_proto(&conn(30, ConnTuple::bound(IPPROTO_ICMP, ANY, 0))).unwrap();
    assert_eq!(k.insert_proto(&conn(31, ConnTuple::bound(IPPROTO_ICMP, ANY, 0))), Err(ClassifyError::AddrInUse));

    // Inserting the same conn again under the same key is a no-op.
    k.insert_bind(&a).unwrap();
    k.insert_connected(&e).unwrap();
    assert_eq!(k.len(), 8);
    let s = k.stats();
    assert_eq!(s.addr_in_use, 6);
    assert_eq!(s.inserts, 8);
    assert_eq!((s.conns, s.binds, s.udps, s.protos), (2, 3, 2, 1));
    // The refused conns are in no table and hold no extra reference.
    let lone = conn(40, ConnTuple::bound(IPPROTO_TCP, me(), 80));
    assert!(k.insert_bind(&lone).is_err());
    assert_eq!(lone.refcnt(), 1);
    assert_eq!(lone.hashed(), None);
    // The original still answers.
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 5, me(), 80)), Some(1));
}

#[test]
fn conns_that_do_not_fit_a_table_are_refused_as_invalid() {
    let k = cl();
    let cases: Vec<(Fanout, ConnTuple)> = vec![
        (Fanout::Conn, udp(me(), 1, peer(), 2)),                 // UDP in the TCP table
        (Fanout::Conn, ConnTuple::bound(IPPROTO_TCP, me(), 80)), // not connected
        (Fanout::Conn, tcp(ANY, 80, peer(), 1)),                 // no local address
        (Fanout::Conn, tcp(me(), 0, peer(), 1)),                 // no local port
        (Fanout::Conn, tcp(me(), 80, peer(), 0)),                // no foreign port
        (Fanout::Bind, ConnTuple::bound(IPPROTO_TCP, me(), 0)),  // no port
        (Fanout::Bind, ConnTuple::bound(IPPROTO_UDP, me(), 53)), // UDP
        (Fanout::Udp, ConnTuple::bound(IPPROTO_TCP, me(), 53)),  // TCP
        (Fanout::Udp, ConnTuple::bound(IPPROTO_UDP, me(), 0)),   // no port
        (Fanout::Udp, udp(me(), 53, peer(), 0)),                 // half connected
        (Fanout::Udp, udp(me(), 53, ANY, 99)),                   // half connected
    ];
    for (i, (t, tuple)) in cases.iter().enumerate() {
        let c = conn(i, *tuple);
        let r = match t {
            Fanout::Conn => k.insert_connected(&c),
            Fanout::Bind => k.insert_bind(&c),
            Fanout::Udp => k.insert_udp(&c),
            Fanout::Proto => k.insert_proto(&c),
        };
        assert_eq!(r, Err(ClassifyError::Invalid), "case {i}: {tuple:?} in {t:?}");
        assert_eq!(c.refcnt(), 1);
    }
    assert!(k.is_empty());
    assert_eq!(k.stats().invalid, cases.len() as u64);
    // The protocol table takes any protocol and any addresses.
    for p in 0..=255u8 {
        k.insert_proto(&conn(p as usize, ConnTuple::connected(p, ANY, 9, Ipv4Addr::BROADCAST, 9))).unwrap();
    }
    assert_eq!(k.len_of(Fanout::Proto), 256);
}

#[test]
fn every_table_is_bounded_and_each_refusal_counted() {
    let k: Cl = Classifier::new(ClassifierConfig {
        max_conn: 3,
        max_bind: 2,
        max_udp: 4,
        max_proto: 1,
        ..ClassifierConfig::from_memory(64 * MIB)
    });
    let mut held = Vec::new();
    for i in 0..5u16 {
        let c = conn(i.into(), tcp(me(), 80, peer(), 1000 + i));
        let r = k.insert_connected(&c);
        assert_eq!(r.is_ok(), i < 3, "conn {i}");
        if i >= 3 {
            assert_eq!(r, Err(ClassifyError::TableFull(Fanout::Conn)));
            assert_eq!(c.refcnt(), 1, "refused: no reference kept");
        }
        held.push(c);
    }
    for i in 0..4u16 {
        let r = k.insert_bind(&conn(i.into(), ConnTuple::bound(IPPROTO_TCP, ANY, 100 + i)));
        assert_eq!(r.is_ok(), i < 2);
    }
    for i in 0..6u16 {
        let r = k.insert_udp(&conn(i.into(), ConnTuple::bound(IPPROTO_UDP, ANY, 100 + i)));
        assert_eq!(r.is_ok(), i < 4);
    }
    for p in 0..3u8 {
        let r = k.insert_proto(&conn(p.into(), ConnTuple::bound(p, ANY, 0)));
        assert_eq!(r.is_ok(), p < 1);
    }
    let s = k.stats();
    assert_eq!(
        (s.conn_full, s.bind_full, s.udp_full, s.proto_full),
        (2, 2, 2, 2),
        "every refusal counted in its table"
    );
    assert_eq!((s.conns, s.binds, s.udps, s.protos), (3, 2, 4, 1));
    assert_eq!(k.len(), 10);
    // A duplicate in a full table is still AddrInUse.
    assert_eq!(k.insert_connected(&conn(9, tcp(me(), 80, peer(), 1000))), Err(ClassifyError::AddrInUse));
    // Room again after a remove; the refused conn goes in.
    assert!(k.remove(&held[0]));
    k.insert_connected(&held[3]).unwrap();
    assert_eq!(k.insert_connected(&held[4]), Err(ClassifyError::TableFull(Fanout::Conn)));
    assert_eq!(k.stats().conn_full, 3);
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1003, me(), 80)), Some(3));
    // A zero bound refuses everything.
    let none: Cl = Classifier::new(ClassifierConfig { max_udp: 0, ..ClassifierConfig::from_memory(MIB) });
    assert_eq!(
        none.insert_udp(&conn(1, ConnTuple::bound(IPPROTO_UDP, ANY, 1))),
        Err(ClassifyError::TableFull(Fanout::Udp))
    );
}

// ---- removal and references --------------------------------------------------

#[test]
fn remove_makes_lookups_miss_and_marks_the_conn_condemned() {
    let k = cl();
    let est = conn(1, tcp(me(), 80, peer(), 1000));
    let lis = conn(2, ConnTuple::bound(IPPROTO_TCP, me(), 80));
    let u = conn(3, ConnTuple::bound(IPPROTO_UDP, ANY, 53));
    let r = conn(4, ConnTuple::bound(IPPROTO_ICMP, ANY, 0));
    k.insert_connected(&est).unwrap();
    k.insert_bind(&lis).unwrap();
    k.insert_udp(&u).unwrap();
    k.insert_proto(&r).unwrap();
    assert_eq!(est.hashed().map(|h| h.fanout), Some(Fanout::Conn));
    assert_eq!(lis.hashed().map(|h| h.fanout), Some(Fanout::Bind));
    assert_eq!(u.hashed().map(|h| h.fanout), Some(Fanout::Udp));
    assert_eq!(r.hashed().map(|h| h.fanout), Some(Fanout::Proto));
    assert!(!est.is_condemned());

    assert!(k.remove(&est));
    assert!(est.is_condemned());
    assert_eq!(est.flags() & CONN_CONDEMNED, CONN_CONDEMNED);
    assert_eq!(est.hashed(), None);
    // The packet of the removed conn now goes to the listener.
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1000, me(), 80)), Some(2));
    assert!(k.remove(&lis));
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1000, me(), 80)), None);
    assert!(k.remove(&u));
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 1, me(), 53)), None);
    assert!(k.remove(&r));
    assert_eq!(id(k.classify_v4(IPPROTO_ICMP, peer(), 0, me(), 0)), None);
    assert!(k.is_empty());
    assert!(!k.remove(&r), "second remove: not in a table");
    // A condemned conn is not inserted again.
    assert_eq!(k.insert_connected(&est), Err(ClassifyError::Condemned));
    assert_eq!(k.stats().removes, 4);
    assert_eq!(k.stats().invalid, 1);
}

#[test]
fn a_packets_reference_outlives_removal_and_the_conn_goes_with_the_last_one() {
    let k = cl();
    let c = conn(1, tcp(me(), 80, peer(), 1000));
    let weak: Weak<Conn<Pcb>> = Arc::downgrade(&c);
    k.insert_connected(&c).unwrap();
    // A packet arrives and holds the conn.
    let packet = k.classify_v4(IPPROTO_TCP, peer(), 1000, me(), 80).unwrap();
    // The owner closes: removes it from the classifier and drops its ref.
    assert!(k.remove(&c));
    drop(c);
    assert_eq!(k.classify_v4(IPPROTO_TCP, peer(), 1000, me(), 80).map(|c| c.proto.id), None);
    let alive = weak.upgrade().expect("the packet still holds it");
    assert!(alive.is_condemned());
    assert_eq!(alive.proto.id, 1);
    drop(alive);
    assert_eq!(packet.refcnt(), 1, "only the packet's reference is left");
    drop(packet);
    assert!(weak.upgrade().is_none(), "freed with the last reference");

    // Dropping the classifier drops the table's references.
    let c = conn(2, ConnTuple::bound(IPPROTO_UDP, ANY, 9));
    let weak = Arc::downgrade(&c);
    k.insert_udp(&c).unwrap();
    drop(c);
    assert!(weak.upgrade().is_some(), "the table holds it");
    drop(k);
    assert!(weak.upgrade().is_none());
}

#[test]
fn reference_counts_follow_the_illumos_rule() {
    let k = cl();
    let c = conn(1, tcp(me(), 80, peer(), 1000));
    assert_eq!(c.refcnt(), 1, "the owner's");
    k.insert_connected(&c).unwrap();
    assert_eq!(c.refcnt(), 2, "+ the table's");
    let p1 = k.classify_v4(IPPROTO_TCP, peer(), 1000, me(), 80).unwrap();
    assert_eq!(c.refcnt(), 3, "+ a packet's");
    let p2 = k.lookup_connected(&tcp(me(), 80, peer(), 1000)).unwrap();
    let sq_entry = p2.clone();
    assert_eq!(c.refcnt(), 5, "+ another packet, + its squeue entry");
    drop(p2);
    drop(sq_entry);
    drop(p1);
    assert_eq!(c.refcnt(), 2);
    // A miss takes no reference; a walk holds one only while it calls.
    assert!(k.classify_v4(IPPROTO_TCP, peer(), 1001, me(), 80).is_none());
    let mut during = 0;
    k.walk(&mut |w| during = w.refcnt());
    assert_eq!(during, 3);
    assert_eq!(c.refcnt(), 2);
    // Moving between tables keeps exactly one table reference.
    k.insert_bind(&c).unwrap();
    assert_eq!(c.refcnt(), 2);
    assert_eq!(k.len(), 1);
    assert!(k.remove(&c));
    assert_eq!(c.refcnt(), 1, "only the owner's left");
}

#[test]
fn inserting_again_moves_a_conn_between_tables() {
    let k = cl();
    // UDP: bind, then connect (the same conn re-inserted under its new
    // tuple), then disconnect.
    let u = conn(1, ConnTuple::bound(IPPROTO_UDP, ANY, 4000));
    k.insert_udp(&u).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, ip(9, 9, 9, 9), 1, me(), 4000)), Some(1));
    u.set_local(me(), 4000);
    u.set_foreign(peer(), 53);
    assert!(u.is_connected());
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, ip(9, 9, 9, 9), 1, me(), 4000)), Some(1), "not re-inserted yet");
    k.insert_udp(&u).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, ip(9, 9, 9, 9), 1, me(), 4000)), None);
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, peer(), 53, me(), 4000)), Some(1));
    assert_eq!(k.len(), 1);
    u.set_foreign(ANY, 0);
    k.insert_udp(&u).unwrap();
    assert_eq!(id(k.classify_v4(IPPROTO_UDP, ip(9, 9, 9, 9), 1, me(), 4000)), Some(1));
    assert_eq!(k.len(), 1);

    // TCP: a bound conn connects (bind table → connected table).
    let t = conn(2, ConnTuple::bound(IPPROTO_TCP, me(), 30_000));
    k.insert_bind(&t).unwrap();
    assert_eq!(id(k.lookup_listener(me(), 30_000)), Some(2));
    t.set_foreign(peer(), 443);
    k.insert_connected(&t).unwrap();
    assert_eq!(t.hashed().map(|h| h.fanout), Some(Fanout::Conn));
    assert_eq!(id(k.lookup_listener(me(), 30_000)), None);
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 443, me(), 30_000)), Some(2));
    assert_eq!((k.len_of(Fanout::Bind), k.len_of(Fanout::Conn)), (0, 1));

    // A refused move leaves the conn where it was.
    let other = conn(3, tcp(me(), 30_001, peer(), 443));
    k.insert_connected(&other).unwrap();
    let t2 = conn(4, ConnTuple::bound(IPPROTO_TCP, me(), 30_001));
    k.insert_bind(&t2).unwrap();
    t2.set_foreign(peer(), 443);
    assert_eq!(k.insert_connected(&t2), Err(ClassifyError::AddrInUse));
    assert_eq!(t2.hashed().map(|h| h.fanout), Some(Fanout::Bind));
    assert_eq!(id(k.lookup_listener(me(), 30_001)), Some(4));
    let s: ClassifierStats = k.stats();
    assert_eq!(s.inserts - s.removes, k.len() as u64);
}

#[test]
fn a_conn_in_another_classifier_is_left_alone() {
    let a = cl();
    let b = cl();
    let c = conn(1, ConnTuple::bound(IPPROTO_UDP, ANY, 7));
    a.insert_udp(&c).unwrap();
    assert!(!b.unhash(&c));
    assert_eq!(c.hashed().map(|h| h.fanout), Some(Fanout::Udp));
    assert_eq!(b.insert_udp(&c), Err(ClassifyError::AddrInUse), "a conn is in one classifier");
    assert_eq!(id(a.classify_v4(IPPROTO_UDP, peer(), 1, me(), 7)), Some(1));
    assert!(b.is_empty());
    assert!(a.unhash(&c));
    assert!(!c.is_condemned(), "unhash does not condemn");
    b.insert_udp(&c).unwrap();
    assert_eq!(id(b.classify_v4(IPPROTO_UDP, peer(), 1, me(), 7)), Some(1));
}

// ---- ports, walker, conn fields ---------------------------------------------

#[test]
fn port_in_use_covers_every_port_table_per_protocol() {
    let k = cl();
    assert!(!k.port_in_use(IPPROTO_TCP, 80));
    let lis = conn(1, ConnTuple::bound(IPPROTO_TCP, ANY, 80));
    k.insert_bind(&lis).unwrap();
    let est = conn(2, tcp(me(), 80, peer(), 5000));
    k.insert_connected(&est).unwrap();
    let active = conn(3, tcp(me(), 49_152, peer(), 80));
    k.insert_connected(&active).unwrap();
    let u = conn(4, udp(me(), 49_152, peer(), 53));
    k.insert_udp(&u).unwrap();
    k.insert_proto(&conn(5, ConnTuple::bound(IPPROTO_ICMP, ANY, 1234))).unwrap();
    assert!(k.port_in_use(IPPROTO_TCP, 80));
    assert!(k.port_in_use(IPPROTO_TCP, 49_152), "an active connect's port counts");
    assert!(k.port_in_use(IPPROTO_UDP, 49_152));
    assert!(!k.port_in_use(IPPROTO_UDP, 80));
    assert!(!k.port_in_use(IPPROTO_TCP, 5000), "foreign ports do not count");
    assert!(!k.port_in_use(IPPROTO_ICMP, 1234), "raw conns hold no port");
    // Two conns on 80: still in use until both are gone.
    k.remove(&lis);
    assert!(k.port_in_use(IPPROTO_TCP, 80));
    k.remove(&est);
    assert!(!k.port_in_use(IPPROTO_TCP, 80));
    k.remove(&active);
    assert!(!k.port_in_use(IPPROTO_TCP, 49_152));
    assert!(k.port_in_use(IPPROTO_UDP, 49_152));
    // Moving within a table keeps the count right.
    u.set_foreign(ANY, 0);
    k.insert_udp(&u).unwrap();
    assert!(k.port_in_use(IPPROTO_UDP, 49_152));
    k.remove(&u);
    assert!(!k.port_in_use(IPPROTO_UDP, 49_152));
    // An ephemeral allocator over it finds the first free port.
    for p in 49_152..49_162u16 {
        k.insert_udp(&conn(p.into(), ConnTuple::bound(IPPROTO_UDP, ANY, p))).unwrap();
    }
    let free = (49_152..=u16::MAX).find(|&p| !k.port_in_use(IPPROTO_UDP, p));
    assert_eq!(free, Some(49_162));
}

#[test]
fn walk_visits_every_live_conn_once_and_skips_incipient_and_condemned() {
    let k = cl();
    let mut all = Vec::new();
    for i in 0..50u16 {
        all.push(conn(i.into(), tcp(me(), 80, peer(), 1000 + i)));
    }
    for c in &all {
        k.insert_connected(c).unwrap();
    }
    k.insert_bind(&conn(100, ConnTuple::bound(IPPROTO_TCP, ANY, 80))).unwrap();
    k.insert_udp(&conn(101, ConnTuple::bound(IPPROTO_UDP, ANY, 53))).unwrap();
    k.insert_proto(&conn(102, ConnTuple::bound(IPPROTO_ICMP, ANY, 0))).unwrap();
    let baby = Conn::new_incipient(tcp(me(), 81, peer(), 1), 0, Pcb { id: 103 });
    assert!(baby.is_incipient());
    assert_eq!(baby.flags() & CONN_INCIPIENT, CONN_INCIPIENT);
    k.insert_connected(&baby).unwrap();
    // Condemned but (for a moment) still hashed is shown by neither walks
    // nor lookups.
    all[0].condemn();
    assert_eq!(id(k.classify_v4(IPPROTO_TCP, peer(), 1000, me(), 80)), Some(100), "skips it: the listener");

    let mut ids = Vec::new();
    k.walk(&mut |c| ids.push(c.proto.id));
    ids.sort();
    let mut want: Vec<usize> = (1..50).chain(100..=102).collect();
    want.sort();
    assert_eq!(ids, want);

    baby.clear_incipient();
    let mut n = 0;
    k.walk(&mut |_| n += 1);
    assert_eq!(n, want.len() + 1);

    // The callback may use the classifier: remove everything while walking.
    k.remove(&all[0]);
    k.walk(&mut |c| {
        k.remove(c);
    });
    assert!(k.is_empty());
    let mut n = 0;
    k.walk(&mut |_| n += 1);
    assert_eq!(n, 0);
}

#[test]
fn conn_fields_and_flags() {
    let c = Conn::new(tcp(me(), 80, peer(), 1000), 3, Pcb { id: 9 });
    assert_eq!(c.protocol(), IPPROTO_TCP);
    assert_eq!((c.laddr(), c.lport(), c.faddr(), c.fport()), (me(), 80, peer(), 1000));
    assert_eq!(c.tuple(), tcp(me(), 80, peer(), 1000));
    assert!(c.is_connected());
    assert_eq!(c.sqp(), 3);
    c.set_sqp(5);
    assert_eq!(c.sqp(), 5);
    assert_eq!(c.flags(), 0);
    assert!(!c.is_incipient() && !c.is_condemned());
    assert!(c.condemn(), "first condemn sets it");
    assert!(!c.condemn(), "then it is already set");
    assert!(c.is_condemned());
    c.set_foreign(ANY, 0);
    assert!(!c.is_connected());
    assert_eq!(c.proto.id, 9);
    let s = format!("{c:?}");
    assert!(s.contains("Conn") && s.contains("sqp: 5"), "{s}");
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ConnRef<Pcb>>();
    send_sync::<Classifier<Pcb>>();
}

// ---- scale and concurrency ---------------------------------------------------

fn nth_tuple(i: u32) -> ConnTuple {
    // 100 000 peers behind a few local addresses and ports.
    tcp(
        Ipv4Addr::from(0x0a00_0001 + (i % 4)),
        80 + (i % 7) as u16,
        Ipv4Addr::from(0xc0a8_0000 + i),
        1024 + (i % 60_000) as u16,
    )
}

#[test]
fn a_hundred_thousand_conns_are_each_found() {
    const N: u32 = 100_000;
    let k: Cl = Classifier::new(ClassifierConfig::from_memory(1 << 30));
    assert_eq!(k.buckets(Fanout::Conn), 98_299);
    let conns: Vec<ConnRef<Pcb>> = (0..N).map(|i| conn(i as usize, nth_tuple(i))).collect();
    for c in &conns {
        k.insert_connected(c).unwrap();
    }
    assert_eq!(k.len(), N as usize);
    assert_eq!(k.stats().conns, u64::from(N));
    for (i, c) in conns.iter().enumerate() {
        let t = c.tuple();
        let got = k.classify_v4(IPPROTO_TCP, t.faddr, t.fport, t.laddr, t.lport).expect("found");
        assert!(Arc::ptr_eq(&got, c), "conn {i}");
    }
    // Near misses: one field off each.
    for i in (0..N).step_by(97) {
        let t = nth_tuple(i);
        assert!(k.classify_v4(IPPROTO_TCP, t.faddr, t.fport.wrapping_add(60_000), t.laddr, t.lport).is_none());
        assert!(
            k.classify_v4(IPPROTO_TCP, Ipv4Addr::from(u32::from(t.faddr) + N), t.fport, t.laddr, t.lport).is_none()
        );
        assert!(k.classify_v4(IPPROTO_UDP, t.faddr, t.fport, t.laddr, t.lport).is_none());
    }
    let mut n = 0;
    k.walk(&mut |_| n += 1);
    assert_eq!(n, N as usize);
    // Remove every other one; the rest are still found.
    for c in conns.iter().step_by(2) {
        assert!(k.remove(c));
    }
    assert_eq!(k.len(), N as usize / 2);
    for (i, c) in conns.iter().enumerate() {
        let t = c.tuple();
        let got = k.classify_v4(IPPROTO_TCP, t.faddr, t.fport, t.laddr, t.lport);
        assert_eq!(got.is_some(), i % 2 == 1, "conn {i}");
    }
}

#[test]
fn lookups_stay_consistent_while_other_threads_insert_and_remove() {
    const STABLE: u32 = 2000;
    const CHURN: u32 = 500;
    const ROUNDS: usize = 300;
    let k: Arc<Cl> = Arc::new(Classifier::new(ClassifierConfig::from_memory(64 * MIB)));
    let stable: Vec<ConnRef<Pcb>> = (0..STABLE).map(|i| conn(i as usize, nth_tuple(i))).collect();
    for c in &stable {
        k.insert_connected(c).unwrap();
    }
    // A listener behind everything on port 80..87, so misses in the
    // connected table on those ports land on it.
    let listener = conn(usize::MAX, ConnTuple::bound(IPPROTO_TCP, ANY, 80));
    k.insert_bind(&listener).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicUsize::new(0));

    let mut readers = Vec::new();
    for r in 0..4u64 {
        let (k, stable, stop, lookups) = (k.clone(), stable.clone(), stop.clone(), lookups.clone());
        readers.push(thread::spawn(move || {
            let mut rng = Rng(100 + r);
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..1000 {
                    // A stable conn is always found, and is itself.
                    let i = rng.below(STABLE as usize);
                    let t = stable[i].tuple();
                    let got = k.classify_v4(IPPROTO_TCP, t.faddr, t.fport, t.laddr, t.lport).unwrap();
                    assert!(Arc::ptr_eq(&got, &stable[i]));
                    // A churning key finds its own conn or the listener.
                    let j = STABLE + rng.below(CHURN as usize) as u32;
                    let t = nth_tuple(j);
                    if let Some(c) = k.classify_v4(IPPROTO_TCP, t.faddr, t.fport, t.laddr, t.lport) {
                        if c.proto.id == usize::MAX {
                            assert_eq!(t.lport, 80);
                        } else {
                            assert_eq!(c.proto.id, j as usize);
                            assert_eq!(c.tuple(), t);
                        }
                    } else {
                        assert_ne!(t.lport, 80, "the listener is always there");
                    }
                }
                lookups.fetch_add(2000, Ordering::Relaxed);
            }
        }));
    }
    let walker = {
        let (k, stop) = (k.clone(), stop.clone());
        thread::spawn(move || {
            let mut walks = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut n = 0;
                k.walk(&mut |c| {
                    assert!(!c.is_incipient());
                    n += 1;
                });
                assert!(n > STABLE as usize && n <= (STABLE + CHURN) as usize + 1, "walk saw {n}");
                walks += 1;
            }
            walks
        })
    };
    let mut writers = Vec::new();
    for w in 0..2u32 {
        let k = k.clone();
        writers.push(thread::spawn(move || {
            // Each writer churns its half of the churning keys.
            let mine: Vec<u32> = (STABLE..STABLE + CHURN).filter(|j| j % 2 == w).collect();
            let mut held: Vec<ConnRef<Pcb>> = Vec::new();
            for _ in 0..ROUNDS {
                for &j in &mine {
                    let c = conn(j as usize, nth_tuple(j));
                    k.insert_connected(&c).unwrap();
                    held.push(c);
                }
                for c in held.drain(..) {
                    assert!(k.remove(&c));
                }
            }
            // Leave half of them in.
            for &j in mine.iter().filter(|j| *j % 4 < 2) {
                k.insert_connected(&conn(j as usize, nth_tuple(j))).unwrap();
            }
        }));
    }
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let walks = walker.join().unwrap();
    assert!(lookups.load(Ordering::Relaxed) > 0 && walks > 0);
    let left = (STABLE..STABLE + CHURN).filter(|j| j % 4 < 2).count();
    assert_eq!(k.len(), STABLE as usize + left + 1);
    let s = k.stats();
    assert_eq!(s.inserts - s.removes, k.len() as u64);
    assert_eq!(s.addr_in_use + s.conn_full + s.invalid, 0);
    for j in STABLE..STABLE + CHURN {
        let t = nth_tuple(j);
        let got = k.lookup_connected(&t);
        assert_eq!(got.is_some(), j % 4 < 2, "key {j}");
    }
    for c in &stable {
        assert_eq!(c.refcnt(), 2, "the test's and the table's: no reference leaked");
    }
}

#[test]
fn racing_inserts_and_unhashes_of_one_conn_keep_it_in_at_most_one_table() {
    let k: Arc<Cl> = Arc::new(cl());
    let c = conn(1, tcp(me(), 8080, peer(), 999));
    let mut ts = Vec::new();
    for t in 0..4u32 {
        let (k, c) = (k.clone(), c.clone());
        ts.push(thread::spawn(move || {
            for i in 0..20_000u32 {
                match (t + i) % 3 {
                    0 => drop(k.insert_connected(&c)),
                    1 => drop(k.insert_bind(&c)),
                    _ => drop(k.unhash(&c)),
                }
            }
        }));
    }
    for t in ts {
        t.join().unwrap();
    }
    let n = k.len();
    assert!(n <= 1, "in {n} tables");
    assert_eq!(c.hashed().is_some(), n == 1);
    assert_eq!(c.refcnt(), 1 + n, "one table reference at most");
    let s = k.stats();
    assert_eq!(s.inserts - s.removes, n as u64);
    match c.hashed().map(|h| h.fanout) {
        Some(Fanout::Conn) => assert_eq!(id(k.lookup_connected(&c.tuple())), Some(1)),
        Some(Fanout::Bind) => assert_eq!(id(k.lookup_listener(me(), 8080)), Some(1)),
        _ => assert!(k.classify_v4(IPPROTO_TCP, peer(), 999, me(), 8080).is_none()),
    }
    assert_eq!(k.port_in_use(IPPROTO_TCP, 8080), n == 1);
    assert!(k.remove(&c) == (n == 1));
    assert!(k.is_empty() && !k.port_in_use(IPPROTO_TCP, 8080));

    // A remove racing inserts wins for good: once condemned, no insert
    // puts the conn back, so it ends in no table.
    for round in 0..50 {
        let c = conn(2, tcp(me(), 8081, peer(), 999));
        let go = Arc::new(AtomicBool::new(false));
        let ts: Vec<_> = (0..3u32)
            .map(|t| {
                let (k, c, go) = (k.clone(), c.clone(), go.clone());
                thread::spawn(move || {
                    while !go.load(Ordering::Acquire) {}
                    for i in 0..2000u32 {
                        let _ = if (t + i) % 2 == 0 { k.insert_connected(&c) } else { k.insert_bind(&c) };
                    }
                })
            })
            .collect();
        go.store(true, Ordering::Release);
        for _ in 0..round * 20 {
            std::hint::spin_loop();
        }
        k.remove(&c);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(c.hashed(), None, "round {round}");
        assert!(k.is_empty(), "round {round}");
        assert_eq!(c.refcnt(), 1);
    }
}
