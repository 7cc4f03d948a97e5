//! Lookup cost of the FireEngine IP classifier: ns per `classify_v4` for
//! 10, 10 000 and 100 000 connected TCP conns: hits in the connected table,
//! misses that fall through to a listener in the bind table, and misses
//! that match nothing (connected, bind and protocol tables all looked in).
//! Each lookup takes and drops the packet's reference, as the receive
//! path does.
//!
//! `cargo run --release -p arbalest-netstack --example classifier_bench`

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use arbalest_netstack::fireengine::classifier::{Classifier, ClassifierConfig};
use arbalest_netstack::fireengine::conn::{Conn, ConnTuple, Fanout, IPPROTO_TCP};

/// Memory the tables are sized for (gives the capped connected table).
const MEMORY: u64 = 1 << 30;
/// Lookups per timed run, and runs per figure (the median is printed).
const LOOKUPS: usize = 5_000_000;
const RUNS: usize = 7;
/// The port the listener is bound to (every conn's local port).
const LISTEN_PORT: u16 = 80;
/// A port with no conn and no listener.
const DEAD_PORT: u16 = 81;

/// xorshift64*, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A packet's view: (src, sport, dst, dport).
type Pkt = (Ipv4Addr, u16, Ipv4Addr, u16);

/// Median ns per lookup of `pkts`, cycled.
fn time(k: &Classifier<u64>, pkts: &[Pkt], expect_hit: bool) -> f64 {
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let mut hits = 0usize;
            let t = Instant::now();
            for i in 0..LOOKUPS {
                let (src, sport, dst, dport) = pkts[i % pkts.len()];
                if let Some(c) = k.classify_v4(IPPROTO_TCP, black_box(src), sport, dst, dport) {
                    hits += 1;
                    black_box(&c.proto);
                }
            }
            let ns = t.elapsed().as_nanos() as f64 / LOOKUPS as f64;
            assert_eq!(hits, if expect_hit { LOOKUPS } else { 0 });
            ns
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

fn main() {
    let config = ClassifierConfig::from_memory(MEMORY);
    println!(
        "FireEngine classifier, classify_v4 (TCP), connected table {} buckets (from {} MiB), \
         median of {RUNS} runs of {LOOKUPS} lookups",
        config.conn_buckets,
        MEMORY >> 20
    );
    println!("{:>8} {:>10} {:>18} {:>14}", "conns", "hit ns", "miss->listener ns", "no match ns");
    let local = Ipv4Addr::new(10, 0, 0, 1);
    for n in [10usize, 10_000, 100_000] {
        let k: Classifier<u64> = Classifier::new(config);
        let mut rng = Rng(0x5eed ^ n as u64);
        let mut hits: Vec<Pkt> = Vec::with_capacity(n);
        let mut conns = Vec::with_capacity(n);
        while hits.len() < n {
            // Random peers in 192.168.0.0 – 192.175.255.255, random ports.
            let faddr = Ipv4Addr::from(0xc0a8_0000 | (rng.next() as u32 & 0x000f_ffff));
            let fport = 1024 + (rng.next() % 64_000) as u16;
            let c = Conn::new(ConnTuple::connected(IPPROTO_TCP, local, LISTEN_PORT, faddr, fport), 0, n as u64);
            if k.insert_connected(&c).is_ok() {
                hits.push((faddr, fport, local, LISTEN_PORT));
                conns.push(c);
            }
        }
        let listener = Conn::new(ConnTuple::bound(IPPROTO_TCP, Ipv4Addr::UNSPECIFIED, LISTEN_PORT), 0, 0);
        k.insert_bind(&listener).expect("listener");
        assert_eq!(k.len_of(Fanout::Conn), n);
        // Misses: peers from another range, so never in the connected table.
        let misses: Vec<Pkt> = (0..n.max(1024))
            .map(|_| {
                let faddr = Ipv4Addr::from(0x0b00_0000 | (rng.next() as u32 & 0x00ff_ffff));
                (faddr, 1024 + (rng.next() % 64_000) as u16, local, LISTEN_PORT)
            })
            .collect();
        let dead: Vec<Pkt> = misses.iter().map(|&(s, sp, d, _)| (s, sp, d, DEAD_PORT)).collect();
        let hit_ns = time(&k, &hits, true);
        let miss_ns = time(&k, &misses, true);
        let dead_ns = time(&k, &dead, false);
        println!("{n:>8} {hit_ns:>10.1} {miss_ns:>18.1} {dead_ns:>14.1}");
    }
}
