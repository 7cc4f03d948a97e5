//! FireEngine's TCB moving bulk data over the fake link (`fe_tcb_net`):
//! several MiB each way, byte-exact, clean and with loss (random, 1 % and
//! 5 %, in bursts), reordering and duplication; fast retransmit with SACK
//! (RFC 6675) and without (NewReno, RFC 6582); a zero window held for
//! 30 s with persist probes; congestion windows under a bottleneck.

mod fe_tcb_net;
mod rng;

use arbalest_netstack::fireengine::tcp::cc::CcAlgo;
use arbalest_netstack::fireengine::tcp::config::TcbConfig;
use arbalest_netstack::fireengine::tcp::state::State;
use arbalest_netstack::fireengine::wire::tcp::TcpFlags;
use fe_tcb_net::*;

const MIB: usize = 1 << 20;

fn no_sack() -> TcbConfig {
    TcbConfig { sack_accept: false, sack_offer: false, ..cfg() }
}

/// A and B send `na` and `nb` bytes, shut down, and close; returns the
/// fake time the data took (µs).
fn transfer(n: &mut Net, na: usize, nb: usize, max_us: u64) -> u64 {
    n.app[A].out = pattern(na, 0x11);
    n.app[B].out = pattern(nb, 0x22);
    n.app[A].shutdown_when_done = true;
    n.app[B].shutdown_when_done = true;
    let t0 = n.now_us;
    let done = n.run_until(|n| n.app[A].got.len() == nb && n.app[B].got.len() == na && n.t(A).peer_closed() && n.t(B).peer_closed(), max_us);
    let took = n.now_us - t0;
    assert!(done, "transfer did not finish: A got {} of {nb}, B got {} of {na} ({} / {})", n.app[A].got.len(), n.app[B].got.len(), n.state(A), n.state(B));
    assert!(n.app[B].got == pattern(na, 0x11), "A→B bytes differ");
    assert!(n.app[A].got == pattern(nb, 0x22), "B→A bytes differ");
    // Both close: TIME_WAIT on one side at least, then CLOSED.
    assert!(n.run_until(|n| n.state(A) == State::Closed && n.state(B) == State::Closed, 200_000_000), "{} / {}", n.state(A), n.state(B));
    for i in [A, B] {
        assert_eq!(n.mib(i, "tcpCurrEstab"), 0);
        assert_eq!(n.t(i).error(), None, "side {i}");
        assert!(n.t(i).next_deadline().is_none());
        // Every segment sent is counted once: new or retransmitted.
        assert_eq!(n.sent[i] - n.instance_rsts[i], m(n, i, "tcpOutSegs") + m(n, i, "tcpRetransSegs"), "side {i}");
        assert!(m(n, i, "tcpOutDataBytes") >= if i == A { na } else { nb } as u64);
        assert_eq!(m(n, i, "tcpActiveOpens") + m(n, i, "tcpPassiveOpens"), 1);
    }
    took
}

fn m(n: &Net, i: usize, c: &str) -> u64 {
    n.mib(i, c)
}

#[test]
fn bulk_both_ways_clean() {
    let mut n = Net::new(1);
    n.establish(cfg(), cfg());
    let took = transfer(&mut n, 4 * MIB, 4 * MIB, 100_000_000);
    for i in [A, B] {
        assert_eq!(m(&n, i, "tcpRetransSegs"), 0, "side {i}");
        assert_eq!(m(&n, i, "tcpTimRetrans"), 0);
        assert_eq!(m(&n, i, "tcpOutFastRetrans"), 0);
        assert_eq!(m(&n, i, "tcpOutDataBytes"), 4 * MIB as u64);
        assert_eq!(m(&n, i, "tcpInInorderBytes"), 4 * MIB as u64);
        assert_eq!(m(&n, i, "tcpInDupSegs"), 0);
        assert!(m(&n, i, "tcpRttUpdate") > 0);
    }
    // 128 KB window over a 20 ms RTT: about 6.4 MB/s, so 4 MiB in < 2 s.
    assert!(took < 2_000_000, "{took} µs");
    assert_eq!(m(&n, A, "tcpInAckBytes"), 4 * MIB as u64 + 1, "data and FIN");
    assert_eq!(m(&n, B, "tcpInAckBytes"), 4 * MIB as u64 + 2, "SYN, data and FIN");
}

#[test]
fn bulk_one_way_big_window() {
    let mut n = Net::new(1);
    let big = TcbConfig { snd_buf: 1 << 20, rcv_buf: 1 << 20, ..cfg() };
    n.establish(big, big);
    let took = transfer(&mut n, 8 * MIB, 0, 100_000_000);
    assert_eq!(m(&n, A, "tcpRetransSegs"), 0);
    assert!(took < 1_500_000, "{took} µs");
    // The window grew past the initial one.
    let (cwnd, _) = n.t(A).cwnd();
    assert!(cwnd > 100_000, "cwnd {cwnd}");
}

fn lossy(seed: u64, ppm: u32, ca: TcbConfig, cb: TcbConfig) -> Net {
    let mut n = Net::new(seed);
    n.establish(ca, cb);
    n.loss_ppm = ppm;
    n
}

#[test]
fn sack_recovery_at_1pct_without_rto() {
    let mut n = lossy(42, 10_000, cfg(), cfg());
    // Keep the handshake and close out of it: the loss is in the data.
    n.filter = None;
    transfer(&mut n, 4 * MIB, 0, 300_000_000);
    let fr = m(&n, A, "tcpOutFastRetrans");
    let sr = m(&n, A, "tcpOutSackRetransSegs");
    eprintln!("fast {fr} sack {sr} rto {} rexmit {}", m(&n, A, "tcpTimRetrans"), m(&n, A, "tcpRetransSegs"));
    assert!(fr > 0);
    assert!(sr > 0);
    assert_eq!(m(&n, A, "tcpTimRetrans"), 0, "SACK recovery needs no RTO at 1 %");
    assert!(m(&n, A, "tcpInDupAck") > 0);
    assert!(m(&n, B, "tcpInUnorderSegs") > 0);
}

#[test]
fn newreno_recovery_without_sack() {
    let mut n = lossy(43, 10_000, no_sack(), no_sack());
    assert_eq!(n.t(A).options().2, false);
    transfer(&mut n, 4 * MIB, 0, 300_000_000);
    let fr = m(&n, A, "tcpOutFastRetrans");
    eprintln!("fast {fr} rto {} rexmit {}", m(&n, A, "tcpTimRetrans"), m(&n, A, "tcpRetransSegs"));
    assert!(fr > 0);
    assert_eq!(m(&n, A, "tcpOutSackRetransSegs"), 0);
    // No SACK blocks on the wire.
    assert!(n.log.iter().all(|r| r.seg.opts.sack_blocks.is_empty()));
}

#[test]
fn bulk_both_ways_1pct_loss() {
    let mut n = lossy(7, 10_000, cfg(), cfg());
    transfer(&mut n, 3 * MIB, 3 * MIB, 300_000_000);
    assert!(m(&n, A, "tcpRetransSegs") > 0 && m(&n, B, "tcpRetransSegs") > 0);
}

#[test]
fn bulk_both_ways_5pct_loss() {
    for seed in [5u64, 6] {
        let mut n = lossy(seed, 50_000, cfg(), cfg());
        transfer(&mut n, 2 * MIB, 2 * MIB, 600_000_000);
    }
}

#[test]
fn bulk_5pct_loss_newreno_no_sack() {
    let c = TcbConfig { cc: CcAlgo::NewReno, ..no_sack() };
    let mut n = lossy(9, 50_000, c, c);
    transfer(&mut n, 2 * MIB, MIB, 600_000_000);
}

#[test]
fn bulk_loss_bursts() {
    let mut n = Net::new(3);
    n.establish(cfg(), cfg());
    // 20 segments in a row lost every 700 A sends; every 3rd ACK burst of B too.
    n.filter = Some(Box::new(|from, _, k| if from == A { k % 700 >= 680 } else { k % 500 >= 490 }));
    transfer(&mut n, 4 * MIB, MIB, 600_000_000);
    assert!(m(&n, A, "tcpRetransSegs") >= 20);
}

#[test]
fn bulk_reorder_and_duplicate() {
    let mut n = Net::new(11);
    n.establish(cfg(), cfg());
    n.jitter_us = 3_000;
    n.dup_ppm = 20_000;
    transfer(&mut n, 3 * MIB, 3 * MIB, 300_000_000);
    assert!(m(&n, B, "tcpInDupSegs") + m(&n, B, "tcpInPartDupSegs") > 0);
    assert!(m(&n, B, "tcpInUnorderSegs") > 0);
}

#[test]
fn bulk_everything_at_once() {
    for (seed, algo) in [(21u64, CcAlgo::Cubic), (22, CcAlgo::NewReno)] {
        let c = TcbConfig { cc: algo, ..cfg() };
        let mut n = lossy(seed, 20_000, c, c);
        n.jitter_us = 4_000;
        n.dup_ppm = 10_000;
        transfer(&mut n, 2 * MIB, 2 * MIB, 600_000_000);
    }
}

#[test]
fn bulk_without_options_small_mss() {
    let c = TcbConfig { wscale: false, tstamp: false, sack_accept: false, sack_offer: false, mss_local: 536, ..cfg() };
    let mut n = lossy(31, 10_000, c, c);
    transfer(&mut n, MIB, MIB, 600_000_000);
}

#[test]
fn sequence_numbers_wrap_during_transfer() {
    // ISS[B] is 2^32 − 4096: B's sequence numbers wrap at once.
    let mut n = lossy(12, 10_000, cfg(), cfg());
    transfer(&mut n, 0, 2 * MIB, 300_000_000);
    assert!(n.t(B).snd_max().0 < 0x1000_0000);
}

// ---------------------------------------------------------------- zero window

fn zero_window(socket_layer: bool) {
    let mut n = Net::new(2);
    let small = TcbConfig { rcv_buf: 64_000, ..cfg() };
    n.establish(cfg(), small);
    if socket_layer {
        n.app[B].socket_layer = true;
        n.app[B].consume = false;
    } else {
        n.app[B].reading = false;
    }
    n.app[A].out = pattern(MIB, 0x33);
    n.app[A].shutdown_when_done = true;
    n.run_for(2_000_000);
    let held = if socket_layer { n.app[B].got.len() } else { n.t(B).readable() };
    // The buffer, give or take the rounding of the scaled window (the
    // advertised edge never moves left, so it may run past the buffer by
    // less than 2^5 per ACK of one window's fill).
    assert!((63_000..=65_000).contains(&held), "held {held}");
    // Closed, or too small to use (sender SWS avoidance).
    assert!(n.t(A).snd_wnd() < n.t(A).mss(), "{}", n.t(A).snd_wnd());
    let probes0 = n.mib(A, "tcpOutWinProbe");
    n.run_for(30_000_000);
    let probes = n.mib(A, "tcpOutWinProbe") - probes0;
    assert!(probes >= 4, "{probes} probes in 30 s");
    assert!(probes <= 40, "{probes} probes in 30 s");
    assert_eq!(n.state(A), State::Established);
    assert_eq!(n.t(A).error(), None);
    assert!(n.mib(B, "tcpInWinProbe") >= probes);
    // The answers to probes are no duplicate ACKs.
    assert_eq!(n.mib(A, "tcpOutFastRetrans"), 0);
    assert_eq!(n.mib(A, "tcpInDupAck"), 0);
    // Probe intervals double (400 ms RTO base), to 60 s at most.
    let times: Vec<u64> = n.log.iter().filter(|r| r.from == A && r.seg.data.len() == 1).map(|r| r.t_us / 1000).collect();
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|w| w[1] == (w[0] * 2).min(60_000)), "{gaps:?}");
    // Probes are one byte (or none) at SND.UNA.
    for r in n.log.iter().filter(|r| r.from == A && r.t_us > 3_000_000) {
        assert!(r.seg.data.len() <= 1, "{:?}", r.seg);
    }
    // The reader comes back.
    if socket_layer {
        n.app[B].consume = true;
    } else {
        n.app[B].reading = true;
    }
    assert!(n.run_until(|n| n.app[B].got.len() == MIB && n.t(B).peer_closed(), 20_000_000), "got {}", n.app[B].got.len());
    assert!(n.app[B].got == pattern(MIB, 0x33));
    assert_eq!(n.mib(A, "tcpTimRetransDrop"), 0);
    assert!(n.mib(B, "tcpOutWinUpdate") > 0);
}

#[test]
fn zero_window_held_30s_then_reopened_by_recv() {
    zero_window(false);
}

#[test]
fn zero_window_held_30s_then_reopened_by_consumed() {
    zero_window(true);
}

#[test]
fn zero_window_update_lost() {
    // The window update that reopens is lost: the persist probe finds it.
    let mut n = Net::new(2);
    let small = TcbConfig { rcv_buf: 32_000, ..cfg() };
    n.establish(cfg(), small);
    n.app[B].reading = false;
    n.app[A].out = pattern(200_000, 0x44);
    n.run_for(5_000_000);
    let drop_next = std::rc::Rc::new(std::cell::Cell::new(true));
    let d2 = drop_next.clone();
    n.filter = Some(Box::new(move |from, s, _| {
        if from == B && s.data.is_empty() && s.wnd > 0 && d2.get() {
            d2.set(false);
            return true;
        }
        false
    }));
    n.app[B].reading = true;
    assert!(n.run_until(|n| n.app[B].got.len() == 200_000, 120_000_000), "got {}", n.app[B].got.len());
    assert!(!drop_next.get());
    assert!(n.app[B].got == pattern(200_000, 0x44));
}

#[test]
fn slow_reader_small_window_no_stall() {
    // A reader that reads a little at a time (SWS avoidance both sides).
    let mut n = Net::new(4);
    let small = TcbConfig { rcv_buf: 10_000, max_buf: 10_000, ..cfg() };
    n.establish(cfg(), small);
    n.app[B].reading = false;
    n.app[A].out = pattern(300_000, 0x55);
    let mut got = Vec::new();
    let t0 = n.now_us;
    while got.len() < 300_000 && n.now_us - t0 < 200_000_000 {
        n.run_for(7_000);
        let v = n.call(B, |t, ctx| t.recv_vec(700, ctx)).expect("recv");
        got.extend(v);
    }
    assert_eq!(got.len(), 300_000);
    assert!(got == pattern(300_000, 0x55));
    // No tinygrams: every data segment but the last is at least 1/2 of the window.
    let small_segs = n.log.iter().filter(|r| r.from == A && !r.seg.data.is_empty() && r.seg.data.len() < 1000).count();
    assert!(small_segs <= 3, "{small_segs} small segments");
}

// ---------------------------------------------------------------- congestion

fn bottleneck(algo: CcAlgo, seed: u64) -> (Net, Vec<(u64, u32, u32)>) {
    let c = TcbConfig { cc: algo, snd_buf: 1 << 20, rcv_buf: 1 << 20, ..cfg() };
    let mut n = Net::new(seed);
    n.establish(c, c);
    // 20 Mbit/s, 20 ms RTT: a BDP of 50 KB; a 25 ms queue.
    n.rate_bps = Some(20_000_000);
    n.queue_us = 25_000;
    n.keep_log = false;
    n.app[A].out = pattern(6 * MIB, 0x66);
    let mut samples = Vec::new();
    let t0 = n.now_us;
    while n.app[B].got.len() < 6 * MIB && n.now_us - t0 < 60_000_000 {
        n.run_for(10_000);
        let (cw, ss) = n.t(A).cwnd();
        samples.push((n.now_us - t0, cw, ss));
    }
    assert!(n.app[B].got == pattern(6 * MIB, 0x66));
    (n, samples)
}

fn check_cc(algo: CcAlgo, beta_lo: f64, beta_hi: f64) {
    let (n, s) = bottleneck(algo, 77);
    let mss = n.t(A).mss();
    let took = s.last().expect("samples").0;
    // 6 MiB at 20 Mbit/s is 2.5 s; allow for slow start and losses.
    assert!(took < 4_500_000, "{algo:?} took {took} µs");
    let max = s.iter().map(|x| x.1).max().unwrap_or(0);
    assert!(max > 30 * mss, "{algo:?} cwnd never grew: {max}");
    assert!(max < 1 << 20);
    assert!(n.mib(A, "tcpOutFastRetrans") > 0, "the queue overflowed at least once");
    // Every reduction of ssthresh is by about β of the window before it.
    let mut cuts = 0;
    for w in s.windows(2) {
        let (_, c0, s0) = w[0];
        let (_, _, s1) = w[1];
        if s1 < s0 && s0 < (1 << 20) {
            cuts += 1;
            let r = f64::from(s1) / f64::from(c0);
            assert!(r > beta_lo * 0.5 && r <= beta_hi + 0.05, "{algo:?} cut ssthresh {s0} → {s1} at cwnd {c0} ({r})");
        }
    }
    let _ = cuts;
    // After the first loss the window stays within sane bounds of the BDP.
    let first_loss = s.iter().position(|x| x.2 < 1 << 20).expect("a loss");
    for &(_, cw, _) in &s[first_loss..] {
        assert!(cw >= mss && cw < 400_000, "{algo:?} cwnd {cw}");
    }
    eprintln!("{algo:?}: fast {} sack {} rto {} rexmit {} max cwnd {max}", n.mib(A, "tcpOutFastRetrans"), n.mib(A, "tcpOutSackRetransSegs"), n.mib(A, "tcpTimRetrans"), n.mib(A, "tcpRetransSegs"));
    for w in s.windows(2) {
        let ((_, c0, s0), (_, c1, s1)) = (w[0], w[1]);
        if c1 < c0 && s1 != s0 {
            // A reduction never sets ssthresh above the window in use.
            assert!(s1 <= c0.max(2 * mss), "{algo:?}: ssthresh {s0} → {s1} at cwnd {c0}");
        }
    }
    assert!(n.mib(A, "tcpTimRetrans") <= 2, "{algo:?}: RTOs under a plain bottleneck");
}

#[test]
fn newreno_window_under_bottleneck() {
    check_cc(CcAlgo::NewReno, 0.5, 0.5);
}

#[test]
fn cubic_window_under_bottleneck() {
    check_cc(CcAlgo::Cubic, 0.7, 0.7);
}

#[test]
fn flags_of_bulk_segments() {
    let mut n = Net::new(1);
    n.establish(cfg(), cfg());
    transfer(&mut n, 300_000, 0, 10_000_000);
    let fins: Vec<_> = n.log.iter().filter(|r| r.from == A && r.seg.has(TcpFlags::FIN)).collect();
    assert_eq!(fins.len(), 1);
    // The FIN rides on the last data segment.
    assert!(!fins[0].seg.data.is_empty());
    assert!(fins[0].seg.has(TcpFlags::PSH));
    assert_eq!(n.mib(A, "tcpOutDataSegs"), 300_000u64.div_ceil(1448));
}

// ---------------------------------------------------------------- Cc alone

use arbalest_netstack::fireengine::tcp::cc::{initial_window, Cc};

#[test]
fn cc_windows_grow_and_shrink() {
    for algo in [CcAlgo::NewReno, CcAlgo::Cubic] {
        let mss = 1448;
        let mut c = Cc::new(algo, mss, 1 << 20);
        assert_eq!(c.cwnd(), initial_window(mss));
        assert_eq!(c.cwnd(), 4380);
        // Slow start: at most 2 MSS per ACK.
        c.on_ack(10 * mss, 0, Some(20_000), true);
        assert_eq!(c.cwnd(), 4380 + 2 * mss);
        // Not cwnd-limited: no growth.
        c.on_ack(mss, 0, Some(20_000), false);
        assert_eq!(c.cwnd(), 4380 + 2 * mss);
        for k in 0..200u64 {
            c.on_ack(2 * mss, k * 1000, Some(20_000), true);
        }
        let before = c.cwnd();
        assert!(before > 100 * mss);
        let w = c.on_loss(before, 300_000);
        let beta = if algo == CcAlgo::NewReno { 0.5 } else { 0.7 };
        let want = (f64::from(before) * beta) as u32;
        assert!(w.abs_diff(want) <= 1, "{algo:?}: {before} → {w}, want {want}");
        assert_eq!(c.ssthresh(), w);
        // A flight larger than cwnd does not raise the cut (the TCB bounds
        // the flight with `in_use` before it reports a loss).
        let mut c2 = c;
        assert_eq!(c2.in_use(u32::MAX), c.cwnd());
        c2.on_loss(c2.in_use(u32::MAX), 400_000);
        assert!(c2.ssthresh() <= c.cwnd());
        c.on_recovery_end(w / 2);
        assert_eq!(c.cwnd(), w / 2 + mss);
        // Congestion avoidance: slower than slow start, but growing.
        let ca0 = c.cwnd();
        for k in 0..2000u64 {
            c.on_ack(mss, 400_000 + k * 2000, Some(20_000), true);
        }
        assert!(c.cwnd() > ca0 && c.cwnd() < ca0 + 2000 * mss, "{algo:?} {ca0} → {}", c.cwnd());
        // RTO: one MSS, ssthresh cut only on the first of a series.
        let cw = c.cwnd();
        c.on_rto(cw, true, 9_000_000);
        assert_eq!(c.cwnd(), mss);
        let ss = c.ssthresh();
        assert!(ss < cw);
        c.on_rto(mss, false, 10_000_000);
        assert_eq!(c.ssthresh(), ss);
        // Never past cwnd_max, never below 1 MSS.
        for k in 0..100_000u64 {
            c.on_ack(u32::MAX, 10_000_000 + k * 10_000, Some(1), true);
        }
        assert!(c.cwnd() <= 1 << 20);
        c.on_loss(0, 0);
        assert!(c.cwnd() >= mss && c.ssthresh() >= 2 * mss);
    }
}
