//! FireEngine TCP algorithms: the RFC 6298 retransmission timer with
//! illumos' bounds, NewReno and CUBIC congestion windows (RFC 5681, 6582,
//! 9438) against hand-computed figures, and the RFC 6675 SACK scoreboard,
//! checked at the 2^32 wrap and against a per-octet bitmap model at random.

use arbalest_netstack::fireengine::tcp::cc::cubic::{self, icbrt, w_cubic};
use arbalest_netstack::fireengine::tcp::cc::{initial_window, Cc, CcAlgo};
use arbalest_netstack::fireengine::tcp::rto::{RtoConfig, RtoEstimator};
use arbalest_netstack::fireengine::tcp::scoreboard::{NextSeg, SackUpdate, Scoreboard, MAX_HOLES, MAX_RANGES};
use arbalest_netstack::fireengine::tcp::seq::SeqNum;

mod rng;
use rng::Rng;

// ---------------------------------------------------------------- RTO

fn cfg(initial_ms: u64, min_ms: u64, max_ms: u64) -> RtoConfig {
    RtoConfig { initial_ms, min_ms, max_ms }
}

#[test]
fn rto_defaults_are_illumos() {
    assert_eq!(RtoConfig::default(), cfg(1000, 400, 60_000));
    let e = RtoEstimator::new(RtoConfig::default());
    assert_eq!(e.rto_ms(), 1000);
    assert_eq!(e.srtt_us(), None);
    assert_eq!(e.rttvar_us(), 0);
    assert_eq!(e.backoffs(), 0);
}

#[test]
fn rto_initial_is_clamped() {
    assert_eq!(RtoEstimator::new(cfg(100, 400, 60_000)).rto_ms(), 400);
    assert_eq!(RtoEstimator::new(cfg(90_000, 400, 60_000)).rto_ms(), 60_000);
    // A ceiling below the floor reads as the floor.
    assert_eq!(RtoEstimator::new(cfg(1000, 400, 100)).rto_ms(), 400);
}

#[test]
fn rto_first_sample_rfc6298_2_2() {
    // R = 1 s: SRTT = R, RTTVAR = R/2, RTO = R + max(G, 4·R/2) = 3 s.
    let mut e = RtoEstimator::new(RtoConfig::default());
    e.sample(1_000_000);
    assert_eq!(e.srtt_us(), Some(1_000_000));
    assert_eq!(e.rttvar_us(), 500_000);
    assert_eq!(e.rto_ms(), 3000);

    // R = 10 ms: 10 + 20 = 30 ms, under the 400 ms floor.
    let mut e = RtoEstimator::new(RtoConfig::default());
    e.sample(10_000);
    assert_eq!(e.srtt_us(), Some(10_000));
    assert_eq!(e.rttvar_us(), 5_000);
    assert_eq!(e.rto_ms(), 400);

    // With no floor: 30 ms.
    let mut e = RtoEstimator::new(cfg(1000, 0, 60_000));
    e.sample(10_000);
    assert_eq!(e.rto_ms(), 30);

    // R = 100 µs: 4·RTTVAR = 200 µs < G = 1 ms: RTO = 1.1 ms, rounded up.
    let mut e = RtoEstimator::new(cfg(1000, 0, 60_000));
    e.sample(100);
    assert_eq!(e.srtt_us(), Some(100));
    assert_eq!(e.rttvar_us(), 50);
    assert_eq!(e.rto_ms(), 2);

    // R = 0: RTO = G.
    let mut e = RtoEstimator::new(cfg(1000, 0, 60_000));
    e.sample(0);
    assert_eq!(e.rto_ms(), 1);
}

#[test]
fn rto_later_samples_rfc6298_2_3() {
    let mut e = RtoEstimator::new(cfg(1000, 0, 60_000));
    e.sample(100_000);
    e.sample(200_000);
    // RTTVAR = 3/4·50 000 + 1/4·|100 000 − 200 000| = 62 500 (old SRTT);
    // SRTT = 7/8·100 000 + 1/8·200 000 = 112 500; RTO = 112.5 + 250 ms.
    assert_eq!(e.rttvar_us(), 62_500);
    assert_eq!(e.srtt_us(), Some(112_500));
    assert_eq!(e.rto_ms(), 363);
    e.sample(50_000);
    // RTTVAR = 3/4·62 500 + 1/4·62 500 = 62 500; SRTT = (7·112 500 +
    // 50 000)/8 = 104 687 (floor); RTO = 104 687 + 250 000 µs → 355 ms.
    assert_eq!(e.rttvar_us(), 62_500);
    assert_eq!(e.srtt_us(), Some(104_687));
    assert_eq!(e.rto_ms(), 355);
    // Under the illumos floor the same estimate reads 400 ms.
    e.set_config(RtoConfig::default());
    assert_eq!(e.rto_ms(), 400);
    assert_eq!(e.srtt_us(), Some(104_687));
    // And back: the estimate was kept, not clamped.
    e.set_config(cfg(1000, 0, 60_000));
    assert_eq!(e.rto_ms(), 355);
}

#[test]
fn rto_converges_on_a_steady_rtt() {
    let mut e = RtoEstimator::new(cfg(1000, 0, 60_000));
    for _ in 0..200 {
        e.sample(50_000);
    }
    assert_eq!(e.srtt_us(), Some(50_000));
    assert_eq!(e.rttvar_us(), 0);
    // SRTT + G.
    assert_eq!(e.rto_ms(), 51);
}

#[test]
fn rto_backoff_doubles_and_clamps() {
    let mut e = RtoEstimator::new(RtoConfig::default());
    let mut want = 1000;
    for i in 1..=10 {
        e.backoff();
        want = (want * 2).min(60_000);
        assert_eq!(e.rto_ms(), want, "backoff {i}");
        assert_eq!(e.backoffs(), i);
    }
    assert_eq!(e.rto_ms(), 60_000);
    for _ in 0..1000 {
        e.backoff();
    }
    assert_eq!(e.rto_ms(), 60_000);
    assert_eq!(e.backoffs(), 1010);
    e.reset_backoff();
    assert_eq!(e.backoffs(), 0);
    assert_eq!(e.rto_ms(), 1000);
    // A sample resets it too.
    e.backoff();
    e.backoff();
    assert_eq!(e.rto_ms(), 4000);
    e.sample(100_000);
    assert_eq!(e.backoffs(), 0);
    assert_eq!(e.rto_ms(), 400);
    // From the floor: 400, 800, 1600, ...
    e.backoff();
    assert_eq!(e.rto_ms(), 800);
    e.backoff();
    assert_eq!(e.rto_ms(), 1600);
}

#[test]
fn rto_backoff_saturates_forever() {
    let mut e = RtoEstimator::new(cfg(1000, 0, u64::MAX));
    for _ in 0..200 {
        e.backoff();
    }
    assert_eq!(e.rto_ms(), u64::MAX);
    let mut e = RtoEstimator::new(cfg(0, 0, 0));
    e.backoff();
    assert_eq!(e.rto_ms(), 0);
    let mut e = RtoEstimator::new(cfg(0, 0, 10));
    for _ in 0..100 {
        e.backoff();
    }
    assert_eq!(e.rto_ms(), 0);
}

#[test]
fn rto_extreme_samples() {
    let mut e = RtoEstimator::new(RtoConfig::default());
    e.sample(u64::MAX);
    assert_eq!(e.rto_ms(), 60_000);
    e.sample(u64::MAX);
    e.sample(0);
    e.sample(u64::MAX);
    assert_eq!(e.rto_ms(), 60_000);
    let mut e = RtoEstimator::new(cfg(u64::MAX, u64::MAX, u64::MAX));
    e.sample(u64::MAX);
    e.backoff();
    assert_eq!(e.rto_ms(), u64::MAX);
    let mut rng = Rng(0x5eed_0001);
    let mut e = RtoEstimator::new(cfg(1000, 200, 120_000));
    for _ in 0..10_000 {
        match rng.below(4) {
            0 => e.sample(rng.next() >> rng.below(64)),
            1 => e.backoff(),
            2 => e.reset_backoff(),
            _ => e.syn_retransmitted(),
        }
        let r = e.rto_ms();
        assert!((200..=120_000).contains(&r), "{r}");
    }
}

#[test]
fn rto_syn_retransmitted_rfc6298_5_7() {
    // No sample, initial 1 s: 3 s once data begins.
    let mut e = RtoEstimator::new(RtoConfig::default());
    e.backoff();
    e.syn_retransmitted();
    e.reset_backoff();
    assert_eq!(e.rto_ms(), 3000);
    // An initial RTO of 3 s or more is kept.
    let mut e = RtoEstimator::new(cfg(5000, 400, 60_000));
    e.syn_retransmitted();
    assert_eq!(e.rto_ms(), 5000);
    // With a sample (timestamps on the SYN-ACK) the estimate stands.
    let mut e = RtoEstimator::new(RtoConfig::default());
    e.sample(100_000);
    e.syn_retransmitted();
    assert_eq!(e.rto_ms(), 400);
    // Within the ceiling.
    let mut e = RtoEstimator::new(cfg(1000, 400, 2000));
    e.syn_retransmitted();
    assert_eq!(e.rto_ms(), 2000);
    // A sample after it replaces the 3 s.
    let mut e = RtoEstimator::new(RtoConfig::default());
    e.syn_retransmitted();
    e.sample(1_000_000);
    assert_eq!(e.rto_ms(), 3000);
    e.sample(1_000_000);
    assert!(e.rto_ms() < 3000);
}

#[test]
fn rto_set_config_before_a_sample_follows_initial() {
    let mut e = RtoEstimator::new(RtoConfig::default());
    e.set_config(cfg(2000, 400, 60_000));
    assert_eq!(e.rto_ms(), 2000);
    e.set_config(cfg(2000, 2500, 60_000));
    assert_eq!(e.rto_ms(), 2500);
    e.set_config(cfg(2000, 100, 1500));
    assert_eq!(e.rto_ms(), 1500);
}

// ---------------------------------------------------------------- CC

const MSS: u32 = 1000;
const MIB: u32 = 1 << 20;

#[test]
fn cc_algo_names() {
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        assert_eq!(CcAlgo::parse(a.name()), Some(a));
        assert_eq!(Cc::new(a, 1460, MIB).algo(), a);
    }
    assert_eq!(CcAlgo::NewReno.name(), "newreno");
    assert_eq!(CcAlgo::Cubic.name(), "cubic");
    for bad in ["", "reno", "Cubic", "NEWRENO", "cubic ", "bbr"] {
        assert_eq!(CcAlgo::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn cc_initial_window_rfc3390() {
    // min(4·MSS, max(2·MSS, 4380)).
    for (mss, iw) in [
        (1, 4),
        (536, 2144),
        (1095, 4380),
        (1460, 4380),
        (2190, 4380),
        (3000, 6000),
        (4000, 8000),
        (9000, 18000),
        (65535, 131070),
        (u32::MAX, u32::MAX),
    ] {
        assert_eq!(initial_window(mss), iw, "mss {mss}");
    }
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        let c = Cc::new(a, 1460, MIB);
        assert_eq!(c.cwnd(), 4380);
        assert_eq!(c.ssthresh(), MIB);
        assert!(c.in_slow_start());
        // The IW within a small ceiling.
        assert_eq!(Cc::new(a, 1460, 3000).cwnd(), 3000);
        // A ceiling below one MSS, and an MSS of 0.
        let c = Cc::new(a, 1460, 100);
        assert_eq!((c.cwnd(), c.cwnd_max()), (1460, 1460));
        let c = Cc::new(a, 0, MIB);
        assert_eq!((c.mss(), c.cwnd()), (1, 4));
    }
}

/// One RTT of ACKs, each for `per_ack` bytes, covering the window.
fn rtt_of_acks(c: &mut Cc, per_ack: u32, now_us: &mut u64, rtt_us: u64) {
    let n = (c.cwnd() / per_ack).max(1);
    let step = rtt_us / u64::from(n);
    for _ in 0..n {
        *now_us += step;
        c.on_ack(per_ack, *now_us, Some(rtt_us), true);
    }
}

#[test]
fn cc_slow_start_doubles_per_rtt() {
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        let mut c = Cc::new(a, MSS, MIB);
        let mut now = 0;
        assert_eq!(c.cwnd(), 4000);
        for r in 1..=6 {
            rtt_of_acks(&mut c, MSS, &mut now, 100_000);
            assert_eq!(c.cwnd(), 4000 << r, "{a:?} rtt {r}");
        }
        // Delayed ACKs (2·MSS each) double it too (L = 2·SMSS).
        let mut c = Cc::new(a, MSS, MIB);
        rtt_of_acks(&mut c, 2 * MSS, &mut now, 100_000);
        assert_eq!(c.cwnd(), 8000);
        // A stretch ACK of 10 segments adds only 2·MSS.
        let mut c = Cc::new(a, MSS, MIB);
        c.on_ack(10 * MSS, 1, None, true);
        assert_eq!(c.cwnd(), 6000);
        // Sub-MSS ACKs add what they acknowledge.
        c.on_ack(100, 2, None, true);
        assert_eq!(c.cwnd(), 6100);
    }
}

#[test]
fn cc_no_growth_when_application_limited() {
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        let mut c = Cc::new(a, MSS, MIB);
        for i in 0..100 {
            c.on_ack(MSS, i * 1000, Some(10_000), false);
        }
        assert_eq!(c.cwnd(), 4000);
        c.on_ack(0, 0, None, true);
        assert_eq!(c.cwnd(), 4000);
    }
}

#[test]
fn newreno_congestion_avoidance_one_mss_per_rtt() {
    let mut c = Cc::new(CcAlgo::NewReno, MSS, MIB);
    assert_eq!(c.on_loss(20_000, 0), 10_000);
    assert_eq!(c.ssthresh(), 10_000);
    assert!(!c.in_slow_start());
    let mut now = 0;
    for r in 1..=20 {
        rtt_of_acks(&mut c, MSS, &mut now, 50_000);
        assert_eq!(c.cwnd(), 10_000 + r * MSS, "rtt {r}");
    }
    // Within an RTT it grows only once the window's bytes are acknowledged.
    let w = c.cwnd();
    for _ in 0..(w / MSS - 1) {
        c.on_ack(MSS, now, None, true);
    }
    assert_eq!(c.cwnd(), w);
    c.on_ack(MSS, now, None, true);
    assert_eq!(c.cwnd(), w + MSS);
}

#[test]
fn newreno_slow_start_hands_over_to_avoidance_at_ssthresh() {
    let mut c = Cc::new(CcAlgo::NewReno, MSS, MIB);
    c.on_loss(20_500, 0);
    assert_eq!(c.ssthresh(), 10_250);
    // A later timeout in the same series: cwnd to 1 MSS, ssthresh kept.
    c.on_rto(50_000, false, 0);
    assert_eq!((c.cwnd(), c.ssthresh()), (1000, 10_250));
    let mut now = 0;
    rtt_of_acks(&mut c, MSS, &mut now, 1000);
    rtt_of_acks(&mut c, MSS, &mut now, 1000);
    rtt_of_acks(&mut c, MSS, &mut now, 1000);
    assert_eq!(c.cwnd(), 8000);
    // Slow start stops at ssthresh exactly, the rest counts for avoidance.
    c.on_ack(2000, now, None, true);
    assert_eq!(c.cwnd(), 10_000);
    c.on_ack(2000, now, None, true);
    assert_eq!(c.cwnd(), 10_250);
    assert!(!c.in_slow_start());
    for _ in 0..8 {
        c.on_ack(MSS, now, None, true);
    }
    assert_eq!(c.cwnd(), 10_250);
    c.on_ack(MSS, now, None, true);
    // 1750 left over + 9000 ≥ 10 250: one MSS.
    assert_eq!(c.cwnd(), 11_250);
}

#[test]
fn newreno_loss_halves_and_rto_goes_to_one_mss() {
    let mut c = Cc::new(CcAlgo::NewReno, MSS, MIB);
    assert_eq!(c.on_loss(50_000, 0), 25_000);
    assert_eq!((c.cwnd(), c.ssthresh()), (25_000, 25_000));
    assert_eq!(c.on_loss(3001, 0), 2000);
    assert_eq!(c.on_loss(0, 0), 2000);
    assert_eq!(c.on_loss(u32::MAX, 0), MIB);
    // RTO: first of a series lowers ssthresh to flight/2.
    c.on_rto(30_000, true, 0);
    assert_eq!((c.cwnd(), c.ssthresh()), (1000, 15_000));
    c.on_rto(100_000, false, 0);
    assert_eq!((c.cwnd(), c.ssthresh()), (1000, 15_000));
    c.on_rto(1000, true, 0);
    assert_eq!((c.cwnd(), c.ssthresh()), (1000, 2000));
}

#[test]
fn cc_recovery_end_rfc6582_option_1() {
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        let mut c = Cc::new(a, MSS, MIB);
        c.on_loss(50_000, 0);
        let ss = c.ssthresh();
        c.on_recovery_end(3000);
        assert_eq!(c.cwnd(), 4000);
        c.on_recovery_end(0);
        assert_eq!(c.cwnd(), 2000);
        c.on_recovery_end(500);
        assert_eq!(c.cwnd(), 2000);
        c.on_recovery_end(100_000);
        assert_eq!(c.cwnd(), ss);
        c.on_recovery_end(u32::MAX);
        assert_eq!(c.cwnd(), ss);
        assert_eq!(c.ssthresh(), ss);
    }
}

#[test]
fn cc_idle_restart_rfc5681_4_1() {
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        let mut c = Cc::new(a, MSS, MIB);
        let mut now = 0;
        for _ in 0..4 {
            rtt_of_acks(&mut c, MSS, &mut now, 10_000);
        }
        assert_eq!(c.cwnd(), 64_000);
        c.on_idle_restart();
        assert_eq!(c.cwnd(), 4000);
        c.on_rto(4000, true, now);
        c.on_idle_restart();
        assert_eq!(c.cwnd(), 1000);
    }
}

#[test]
fn cc_undo_restores_the_window() {
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        let mut c = Cc::new(a, MSS, MIB);
        c.undo();
        assert_eq!((c.cwnd(), c.ssthresh()), (4000, MIB));
        let mut now = 0;
        for _ in 0..3 {
            rtt_of_acks(&mut c, MSS, &mut now, 10_000);
        }
        let before = (c.cwnd(), c.ssthresh());
        c.on_loss(c.cwnd(), now);
        assert_ne!((c.cwnd(), c.ssthresh()), before);
        c.undo();
        assert_eq!((c.cwnd(), c.ssthresh()), before);
        // Once only.
        c.on_rto(c.cwnd(), true, now);
        c.undo();
        assert_eq!((c.cwnd(), c.ssthresh()), before);
        c.on_idle_restart();
        c.undo();
        assert_eq!(c.cwnd(), 4000);
    }
    // CUBIC's W_max comes back too.
    let mut c = Cc::new(CcAlgo::Cubic, MSS, MIB);
    c.on_ack(MSS, 0, None, true);
    c.on_loss(5000, 0);
    let wmax = c.cubic().map(|s| s.w_max());
    c.on_loss(3000, 0);
    c.undo();
    assert_eq!(c.cubic().map(|s| s.w_max()), wmax);
}

#[test]
fn cc_set_mss() {
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        let mut c = Cc::new(a, 536, MIB);
        assert_eq!(c.cwnd(), 2144);
        c.set_mss(1460);
        assert_eq!(c.cwnd(), 4380);
        c.on_ack(1460, 0, None, true);
        assert_eq!(c.cwnd(), 5840);
        c.set_mss(1000);
        assert_eq!(c.cwnd(), 5840);
        c.set_mss(0);
        assert_eq!(c.mss(), 1);
        c.set_mss(u32::MAX);
        assert_eq!(c.cwnd(), u32::MAX);
        assert!(c.cwnd() <= c.cwnd_max());
    }
}

#[test]
fn cc_never_exceeds_cwnd_max() {
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        let mut c = Cc::new(a, MSS, 50_000);
        let mut now = 0;
        for _ in 0..200 {
            rtt_of_acks(&mut c, MSS, &mut now, 10_000);
            assert!(c.cwnd() <= 50_000);
        }
        assert_eq!(c.cwnd(), 50_000);
        c.on_loss(50_000, now);
        for _ in 0..2000 {
            rtt_of_acks(&mut c, MSS, &mut now, 10_000);
            assert!(c.cwnd() <= 50_000);
        }
        assert_eq!(c.cwnd(), 50_000);
    }
}

// ---------------------------------------------------------------- CUBIC

#[test]
fn cubic_icbrt() {
    for n in 0u128..10_000 {
        let r = u128::from(icbrt(n));
        assert!(r * r * r <= n && (r + 1).pow(3) > n, "{n}");
    }
    let mut rng = Rng(0xc0be);
    for _ in 0..10_000 {
        let n = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> rng.below(128);
        let r = u128::from(icbrt(n));
        assert!(r.pow(3) <= n, "{n}");
        assert!((r + 1).checked_pow(3).is_none_or(|c| c > n), "{n}");
    }
    assert_eq!(icbrt(u128::MAX), 6_981_463_658_331);
    assert_eq!(icbrt(75_000_000_000), 4217);
    assert_eq!(icbrt(1_000_000_000_000), 10_000);
}

#[test]
fn cubic_curve_rfc9438_figures() {
    // W_max = 100 segments of 1000 bytes, epoch at β·W_max = 70 segments:
    // K = ∛(30/0.4) s = ∛75 s = 4.2172 s.
    let (wmax, mss) = (100_000u64, 1000u32);
    let k = cubic::k_ms(wmax, 70_000, mss);
    assert_eq!(k, 4217);
    // t = 0: 100 − 0.4·4.217³ segments = 70.0035 (the epoch's window).
    assert_eq!(w_cubic(wmax, k, 0, mss), 70_004);
    // t = K/2 (2.108 s, 2.109 s before K): 100 − 0.4·2.109³ = 96.248.
    assert_eq!(w_cubic(wmax, k, 2108, mss), 96_248);
    // t = K: W_max exactly (the plateau).
    assert_eq!(w_cubic(wmax, k, k, mss), 100_000);
    // t = K + 1 s: + 0.4 segment; K + 2 s: + 3.2; K + 10 s: + 400.
    assert_eq!(w_cubic(wmax, k, k + 1000, mss), 100_400);
    assert_eq!(w_cubic(wmax, k, k + 2000, mss), 103_200);
    assert_eq!(w_cubic(wmax, k, k + 10_000, mss), 500_000);
    // t = 2K: W_max + (W_max − W(0)).
    assert_eq!(w_cubic(wmax, k, 2 * k, mss), 129_996);
    // Concave before K, convex after: the rise per 100 ms falls until K
    // and grows after it, symmetrically.
    let rise = |t: u64| w_cubic(wmax, k, t + 100, mss) - w_cubic(wmax, k, t, mss);
    let mut last = u64::MAX;
    for t in (0..k - 100).step_by(100) {
        assert!(rise(t) <= last, "concave at {t}");
        last = rise(t);
    }
    let mut last = 0;
    for t in (k..3 * k).step_by(100) {
        assert!(rise(t) >= last, "convex at {t}");
        last = rise(t);
    }
    for d in (0..k).step_by(37) {
        let up = w_cubic(wmax, k, k + d, mss) - wmax;
        let down = wmax - w_cubic(wmax, k, k - d, mss);
        assert!(up.abs_diff(down) <= 1, "{d}");
    }
    // MSS 1460, W_max 1 460 000 (1000 segments): K = ∛750 = 9.0856 s.
    assert_eq!(cubic::k_ms(1_460_000, 1_022_000, 1460), 9085);
    // No epoch below W_max: K = 0.
    assert_eq!(cubic::k_ms(1000, 1000, 1000), 0);
    assert_eq!(cubic::k_ms(1000, 5000, 1000), 0);
}

#[test]
fn cubic_curve_extremes() {
    assert_eq!(w_cubic(0, 0, 0, 1), 0);
    assert_eq!(w_cubic(0, u64::MAX, 0, 65535), 0);
    assert_eq!(w_cubic(100, 0, u64::MAX, 1), u64::from(u32::MAX));
    assert_eq!(w_cubic(u64::from(u32::MAX), 0, 0, u32::MAX), u64::from(u32::MAX));
    assert_eq!(w_cubic(u64::MAX, u64::MAX, u64::MAX, u32::MAX), u64::from(u32::MAX));
    assert_eq!(cubic::k_ms(u64::MAX, 0, 0), icbrt(2_500_000_000 * u128::from(u64::MAX)));
    assert_eq!(cubic::k_ms(u64::from(u32::MAX), 0, 1), icbrt(2_500_000_000 * u128::from(u32::MAX)));
}

/// Slow start from the IW to `w` bytes exactly (MSS-sized ACKs).
fn grow_to(c: &mut Cc, w: u32) {
    while c.cwnd() < w {
        c.on_ack(MSS.min(w - c.cwnd()), 0, None, true);
    }
    assert_eq!(c.cwnd(), w);
}

#[test]
fn cubic_loss_to_0_7_w_max_and_the_curve_in_flight() {
    let mut c = Cc::new(CcAlgo::Cubic, MSS, MIB);
    grow_to(&mut c, 100_000);
    let mut now: u64 = 1_000_000;
    // cwnd = ssthresh = 0.7·W_max.
    assert_eq!(c.on_loss(100_000, now), 70_000);
    assert_eq!((c.cwnd(), c.ssthresh()), (70_000, 70_000));
    assert_eq!(c.cubic().unwrap().w_max(), 100_000);
    c.on_recovery_end(70_000);
    assert_eq!(c.cwnd(), 70_000);
    // The epoch begins with the first ACK in congestion avoidance.
    let rtt = 100_000;
    c.on_ack(MSS, now, Some(rtt), true);
    let t0 = now;
    let s = *c.cubic().unwrap();
    assert_eq!(s.k_ms(), 4217);
    assert_eq!(s.epoch_ms(), Some(t0 / 1000));
    let k_us = s.k_ms() * 1000;
    // ACK-clocked, one window per RTT: cwnd tracks W_cubic(t + RTT)
    // about an RTT behind it, so close to W_cubic(t).
    let mut samples = Vec::new();
    while now - t0 < 2 * k_us + 500_000 {
        let before = c.cwnd();
        rtt_of_acks(&mut c, MSS, &mut now, rtt);
        samples.push((now - t0, before, c.cwnd()));
    }
    let at = |t_us: u64| samples.iter().find(|s| s.0 >= t_us).copied().unwrap();
    let near = |got: u32, want: u64, pct: u64| {
        let d = u64::from(got).abs_diff(want);
        assert!(d * 100 <= want * pct, "cwnd {got}, W_cubic {want}");
    };
    let wc = |t_us: u64| w_cubic(100_000, 4217, t_us / 1000, MSS);
    let (t, _, w) = at(k_us / 2);
    near(w, wc(t), 2);
    let (t, _, w) = at(k_us);
    near(w, wc(t), 1);
    near(w, 100_000, 1);
    let (t, _, w) = at(2 * k_us);
    near(w, wc(t), 3);
    near(w, 130_000, 3);
    // Concave then convex: the growth per RTT shrinks towards K, grows
    // past it.
    let growth = |t_us: u64| {
        let (_, b, a) = at(t_us);
        a - b
    };
    assert!(growth(0) > growth(k_us / 2));
    assert!(growth(k_us / 2) > growth(k_us - 200_000));
    assert!(growth(k_us + 500_000) < growth(3 * k_us / 2));
    assert!(growth(3 * k_us / 2) < growth(2 * k_us));
    // Never more than 1.5·cwnd per RTT... nor any shrinking.
    for &(_, b, a) in &samples {
        assert!(a >= b && u64::from(a) <= u64::from(b) * 3 / 2 + u64::from(MSS));
    }
}

#[test]
fn cubic_fast_convergence_rfc9438_4_7() {
    let mut c = Cc::new(CcAlgo::Cubic, MSS, MIB);
    grow_to(&mut c, 100_000);
    c.on_loss(100_000, 0);
    assert_eq!(c.cubic().unwrap().w_max(), 100_000);
    // Grow to 90 000, still below W_max, and lose again: W_max =
    // cwnd·(1 + β)/2 = 0.85·cwnd.
    let mut now = 0;
    while c.cwnd() < 90_000 {
        now += 10_000;
        c.on_ack(MSS, now, Some(100_000), true);
    }
    let w = c.cwnd();
    assert!(w < 100_000);
    assert_eq!(c.on_loss(w, now), w * 7 / 10);
    assert_eq!(c.cubic().unwrap().w_max(), u64::from(w) * 17 / 20);
    // The next epoch's K is from that lower W_max.
    let wmax = u64::from(w) * 17 / 20;
    c.on_ack(MSS, now, Some(100_000), true);
    assert_eq!(c.cubic().unwrap().k_ms(), cubic::k_ms(wmax, u64::from(w * 7 / 10), MSS));
    // A loss at or above W_max sets W_max to cwnd (no fast convergence).
    while u64::from(c.cwnd()) < wmax + 5000 {
        now += 10_000;
        c.on_ack(MSS, now, Some(100_000), true);
    }
    let w2 = c.cwnd();
    c.on_loss(w2, now);
    assert_eq!(c.cubic().unwrap().w_max(), u64::from(w2));
    // ssthresh from the flight, not cwnd, and at least 2·MSS.
    let mut c = Cc::new(CcAlgo::Cubic, MSS, MIB);
    grow_to(&mut c, 50_000);
    assert_eq!(c.on_loss(20_000, 0), 14_000);
    assert_eq!(c.cubic().unwrap().w_max(), 50_000);
    assert_eq!(c.on_loss(1000, 0), 2000);
}

#[test]
fn cubic_reno_friendly_region_at_small_rtt() {
    let mut c = Cc::new(CcAlgo::Cubic, MSS, MIB);
    grow_to(&mut c, 100_000);
    c.on_loss(100_000, 0);
    c.on_recovery_end(70_000);
    // 1 ms RTT: 100 RTTs take 0.1 s, where the cubic curve barely moves
    // (≈ +2 segments) but Reno would add ~53 (α = 9/17 per RTT).
    let rtt = 1000;
    let mut now = 0;
    c.on_ack(MSS, now, Some(rtt), true);
    let w_est0 = c.cubic().unwrap().w_est();
    rtt_of_acks(&mut c, MSS, &mut now, rtt);
    // One RTT of ACKs: W_est + 9/17 MSS (the window moved a little within
    // it).
    let d = c.cubic().unwrap().w_est() - w_est0;
    assert!((510..=545).contains(&d), "{d}");
    for _ in 0..99 {
        rtt_of_acks(&mut c, MSS, &mut now, rtt);
    }
    let s = *c.cubic().unwrap();
    let t_ms = now / 1000;
    let cubic_now = w_cubic(s.w_max(), s.k_ms(), t_ms, MSS);
    assert!(cubic_now < 73_000, "{cubic_now}");
    assert_eq!(u64::from(c.cwnd()), s.w_est());
    assert!(c.cwnd() > 120_000, "{}", c.cwnd());
    // Past cwnd_prior (100 segments) α is 1: one MSS per RTT, like Reno.
    let before = c.cwnd();
    rtt_of_acks(&mut c, MSS, &mut now, rtt);
    let d = c.cwnd() - before;
    assert!((990..=1010).contains(&d), "{d}");
    // The same at 100 ms RTT is in the cubic region instead.
    let mut c = Cc::new(CcAlgo::Cubic, MSS, MIB);
    grow_to(&mut c, 100_000);
    c.on_loss(100_000, 0);
    let mut now = 0;
    for _ in 0..10 {
        rtt_of_acks(&mut c, MSS, &mut now, 100_000);
    }
    let s = *c.cubic().unwrap();
    assert!(u64::from(c.cwnd()) > s.w_est());
}

#[test]
fn cubic_after_rto_starts_with_k_0_rfc9438_4_8() {
    let mut c = Cc::new(CcAlgo::Cubic, MSS, MIB);
    grow_to(&mut c, 100_000);
    c.on_rto(100_000, true, 0);
    assert_eq!((c.cwnd(), c.ssthresh()), (1000, 70_000));
    assert_eq!(c.cubic().unwrap().w_max(), 100_000);
    let mut now = 0;
    while c.in_slow_start() {
        rtt_of_acks(&mut c, MSS, &mut now, 100_000);
    }
    c.on_ack(MSS, now, Some(100_000), true);
    let s = *c.cubic().unwrap();
    assert_eq!(s.k_ms(), 0);
    assert_eq!(s.w_max(), 70_000);
    // A repeated timeout keeps ssthresh.
    c.on_rto(200_000, false, now);
    assert_eq!((c.cwnd(), c.ssthresh()), (1000, 70_000));
}

#[test]
fn cubic_without_loss_is_convex_from_the_start() {
    let mut c = Cc::new(CcAlgo::Cubic, MSS, 200_000);
    let mut now = 0;
    // Slow start up to cwnd_max (ssthresh starts there).
    for _ in 0..20 {
        rtt_of_acks(&mut c, MSS, &mut now, 10_000);
    }
    assert_eq!(c.cwnd(), 200_000);
}

// ---------------------------------------------------------------- extremes

#[test]
fn cc_extreme_inputs_never_panic() {
    let mut rng = Rng(0xdead_beef_cafe);
    let msss = [0u32, 1, 2, 536, 1460, 9000, 65535, u32::MAX];
    let maxes = [0u32, 1, 1000, MIB, 1 << 30, u32::MAX];
    let pick = |rng: &mut Rng| -> u32 {
        match rng.below(5) {
            0 => 0,
            1 => u32::MAX,
            2 => rng.next() as u32,
            _ => (rng.next() as u32) >> rng.below(32),
        }
    };
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        for &mss in &msss {
            for &max in &maxes {
                let mut c = Cc::new(a, mss, max);
                let mut now: u64 = 0;
                for _ in 0..400 {
                    now = match rng.below(6) {
                        0 => u64::MAX,
                        1 => 0,
                        2 => rng.next(),
                        _ => now.saturating_add(rng.next() >> rng.below(64)),
                    };
                    let srtt = match rng.below(4) {
                        0 => None,
                        1 => Some(u64::MAX),
                        2 => Some(0),
                        _ => Some(rng.next() >> rng.below(64)),
                    };
                    match rng.below(10) {
                        0 => {
                            c.on_loss(pick(&mut rng), now);
                        }
                        1 => c.on_rto(pick(&mut rng), rng.below(2) == 0, now),
                        2 => c.on_recovery_end(pick(&mut rng)),
                        3 => c.on_idle_restart(),
                        4 => c.undo(),
                        5 if rng.below(8) == 0 => c.set_mss(msss[rng.below(msss.len())]),
                        _ => c.on_ack(pick(&mut rng), now, srtt, rng.below(5) != 0),
                    }
                    assert!(c.cwnd() >= c.mss(), "{a:?} {mss} {max}");
                    assert!(c.cwnd() <= c.cwnd_max(), "{a:?} {mss} {max}");
                    assert!(c.ssthresh() <= c.cwnd_max(), "{a:?} {mss} {max}");
                    assert!(c.cwnd_max() >= max);
                }
            }
        }
    }
}

#[test]
fn cc_one_gib_window_with_huge_times() {
    for a in [CcAlgo::NewReno, CcAlgo::Cubic] {
        for mss in [1u32, 1460, 65535] {
            let max = 1 << 30;
            let mut c = Cc::new(a, mss, max);
            let mut now: u64 = 0;
            for _ in 0..400_000 {
                c.on_ack(mss.saturating_mul(2), now, Some(1000), true);
                if c.cwnd() == max {
                    break;
                }
            }
            if mss > 1 {
                assert_eq!(c.cwnd(), max, "{a:?} {mss}");
            }
            c.on_loss(max, now);
            for step in [1u64, 1 << 20, 1 << 40, u64::MAX / 4, u64::MAX] {
                now = now.saturating_add(step);
                c.on_ack(u32::MAX, now, Some(u64::MAX), true);
                c.on_ack(mss, now, None, true);
                assert!(c.cwnd() <= max);
            }
            if a == CcAlgo::Cubic && mss > 1 {
                // Far past K the curve is above any window: 1.5·cwnd per
                // ACK up to the ceiling.
                assert_eq!(c.cwnd(), max);
            } else {
                // NewReno: at most one MSS per ACK however much it covers.
                assert!(c.cwnd() >= max / 2);
            }
            c.on_rto(max, true, u64::MAX);
            assert_eq!(c.cwnd(), mss);
            c.on_ack(u32::MAX, u64::MAX, Some(u64::MAX), true);
        }
    }
}

// ---------------------------------------------------------------- scoreboard

fn sq(v: u32) -> SeqNum {
    SeqNum(v)
}

/// The scoreboard's ranges relative to `base`.
fn rel(sb: &Scoreboard, base: u32) -> Vec<(u32, u32)> {
    sb.ranges().map(|(s, e)| (s.get().wrapping_sub(base), e.get().wrapping_sub(base))).collect()
}

/// Blocks at `base`.
fn blk(base: u32, v: &[(u32, u32)]) -> Vec<(SeqNum, SeqNum)> {
    v.iter().map(|&(s, e)| (sq(base.wrapping_add(s)), sq(base.wrapping_add(e)))).collect()
}

const BASES: [u32; 8] = [0, 1, 12345, 0x7fff_f000, 0x8000_0000, 0xffff_f000, 0xffff_ffff, 0xffff_fc18];

#[test]
fn scoreboard_update_and_merge_at_every_base() {
    for base in BASES {
        let at = |v: u32| sq(base.wrapping_add(v));
        let (una, max) = (at(1000), at(10_000));
        let mut sb = Scoreboard::new();
        assert!(sb.is_empty());
        assert_eq!(sb.high_sacked(), None);
        let u = sb.update(una, max, &blk(base, &[(2000, 3000)]));
        assert_eq!(u, SackUpdate { newly_sacked: 1000, dsack: false, ignored_blocks: 0 });
        assert_eq!(rel(&sb, base), [(2000, 3000)]);
        assert_eq!(sb.high_sacked(), Some(at(3000)));
        // The same again: nothing new.
        assert_eq!(sb.update(una, max, &blk(base, &[(2000, 3000)])).newly_sacked, 0);
        // Touching: merged.
        assert_eq!(sb.update(una, max, &blk(base, &[(3000, 4000)])).newly_sacked, 1000);
        assert_eq!(rel(&sb, base), [(2000, 4000)]);
        // Overlapping from below.
        assert_eq!(sb.update(una, max, &blk(base, &[(1500, 2500)])).newly_sacked, 500);
        assert_eq!(rel(&sb, base), [(1500, 4000)]);
        // A separate one, then one bridging both.
        assert_eq!(sb.update(una, max, &blk(base, &[(5000, 6000), (7000, 7100)])).newly_sacked, 1100);
        assert_eq!(rel(&sb, base), [(1500, 4000), (5000, 6000), (7000, 7100)]);
        assert_eq!(sb.update(una, max, &blk(base, &[(3500, 5500)])).newly_sacked, 1000);
        assert_eq!(rel(&sb, base), [(1500, 6000), (7000, 7100)]);
        // One covering everything.
        assert_eq!(sb.update(una, max, &blk(base, &[(1200, 8000)])).newly_sacked, 300 + 1000 + 900);
        assert_eq!(rel(&sb, base), [(1200, 8000)]);
        assert_eq!(sb.sacked_bytes(), 6800);
        assert!(sb.is_sacked(at(1200), 6800));
        assert!(sb.is_sacked(at(3000), 1000));
        assert!(!sb.is_sacked(at(1100), 200));
        assert!(!sb.is_sacked(at(7900), 200));
        assert!(!sb.is_sacked(at(3000), 0));
        // SND.UNA moves: trimmed, then dropped.
        sb.update(at(2500), max, &[]);
        assert_eq!(rel(&sb, base), [(2500, 8000)]);
        sb.update(at(8000), max, &[]);
        assert!(sb.is_empty());
        sb.update(at(8000), max, &blk(base, &[(9000, 10_000)]));
        sb.clear();
        assert!(sb.is_empty());
    }
}

#[test]
fn scoreboard_invalid_blocks_and_dsack() {
    for base in BASES {
        let at = |v: u32| sq(base.wrapping_add(v));
        let (una, max) = (at(1000), at(10_000));
        let mut sb = Scoreboard::new();
        // Empty, inverted, past SND.MAX.
        let u = sb.update(una, max, &blk(base, &[(3000, 3000), (4000, 3000), (9000, 10_001), (12_000, 13_000)]));
        assert_eq!(u, SackUpdate { newly_sacked: 0, dsack: false, ignored_blocks: 4 });
        assert!(sb.is_empty());
        // Up to SND.MAX exactly is fine.
        assert_eq!(sb.update(una, max, &blk(base, &[(9000, 10_000)])).newly_sacked, 1000);
        // A first block below SND.UNA: a D-SACK, not recorded.
        let u = sb.update(una, max, &blk(base, &[(500, 1000), (9000, 10_000)]));
        assert_eq!(u, SackUpdate { newly_sacked: 0, dsack: true, ignored_blocks: 0 });
        // A first block inside the second: a D-SACK; the second counts.
        let u = sb.update(una, max, &blk(base, &[(5000, 5500), (4000, 6000)]));
        assert_eq!(u, SackUpdate { newly_sacked: 2000, dsack: true, ignored_blocks: 0 });
        assert_eq!(rel(&sb, base), [(4000, 6000), (9000, 10_000)]);
        // A later block below SND.UNA is stale, not a D-SACK.
        let u = sb.update(una, max, &blk(base, &[(7000, 7500), (200, 900)]));
        assert_eq!(u, SackUpdate { newly_sacked: 500, dsack: false, ignored_blocks: 1 });
        // A block across SND.UNA is trimmed to it.
        let u = sb.update(una, max, &blk(base, &[(800, 1200)]));
        assert_eq!(u, SackUpdate { newly_sacked: 200, dsack: false, ignored_blocks: 0 });
        assert_eq!(rel(&sb, base)[0], (1000, 1200));
        // A first block not inside the second is an ordinary block.
        let u = sb.update(una, max, &blk(base, &[(3000, 4500), (4000, 6000)]));
        assert_eq!(u, SackUpdate { newly_sacked: 1000, dsack: false, ignored_blocks: 0 });
        // A block half a sequence space away is past SND.MAX.
        let u = sb.update(una, max, &blk(base, &[(0x8000_1000, 0x8000_2000)]));
        assert_eq!(u.ignored_blocks, 1);
    }
}

#[test]
fn scoreboard_is_lost_rfc6675() {
    let mss = 1000;
    let mut sb = Scoreboard::new();
    let base: u32 = 0xffff_f800; // the wrap is inside the window
    let at = |v: u32| sq(base.wrapping_add(v));
    let (una, max) = (at(0), at(20_000));
    sb.update(una, max, &blk(base, &[(1000, 2000), (3000, 4000)]));
    // Two ranges, 2000 bytes (not more than 2·MSS) above 0: not lost.
    assert!(!sb.is_lost(at(0), mss));
    // A third range, 1 byte: lost (DupThresh ranges).
    sb.update(una, max, &blk(base, &[(5000, 5001)]));
    assert!(sb.is_lost(at(0), mss));
    assert!(sb.is_lost(at(999), mss));
    assert!(!sb.is_lost(at(2000), mss));
    // Within a range only the bytes after it count.
    assert!(sb.is_lost(at(1000), mss));
    assert!(sb.is_lost(at(1001), mss));
    assert!(!sb.is_lost(at(1999), mss));
    // Bytes: more than 2·MSS in one range.
    let mut sb = Scoreboard::new();
    sb.update(una, max, &blk(base, &[(1000, 3000)]));
    assert!(!sb.is_lost(at(0), mss));
    sb.update(una, max, &blk(base, &[(3000, 3001)]));
    assert!(sb.is_lost(at(0), mss));
    assert!(!sb.is_lost(at(0), 1001));
    assert!(!sb.is_lost(at(3001), mss));
    // Nothing SACKed: nothing lost.
    assert!(!Scoreboard::new().is_lost(at(0), mss));
    // MSS 0 is taken as 1.
    assert!(sb.is_lost(at(0), 0));
}

#[test]
fn scoreboard_pipe_rfc6675() {
    for base in BASES {
        let at = |v: u32| sq(base.wrapping_add(v));
        let (una, max, mss) = (at(0), at(10_000), 1000);
        let mut sb = Scoreboard::new();
        // Nothing SACKed: the flight, plus what was retransmitted.
        assert_eq!(sb.pipe(una, max, una, mss), 10_000);
        assert_eq!(sb.pipe(una, max, at(1000), mss), 11_000);
        sb.update(una, max, &blk(base, &[(2000, 3000), (4000, 5000), (6000, 7000)]));
        // [0,2000) lost (3 ranges above); [3000,4000) and [5000,6000) not
        // (2 and 1 ranges, ≤ 2000 bytes); [7000,10000) above them all.
        assert_eq!(sb.pipe(una, max, una, mss), 5000);
        assert_eq!(sb.pipe(una, max, at(1000), mss), 6000);
        assert_eq!(sb.pipe(una, max, at(3500), mss), 7500);
        assert_eq!(sb.pipe(una, max, at(10_000), mss), 5000 + 7000);
        assert_eq!(sb.pipe(una, max, at(20_000), mss), 12_000);
        // HighRxt below SND.UNA counts nothing.
        assert_eq!(sb.pipe(una, max, at(0).sub_one(), mss), 5000);
        // A larger MSS: fewer bytes count as lost.
        assert_eq!(sb.pipe(una, max, una, 2000), 5000);
        let mut sb2 = Scoreboard::new();
        sb2.update(una, max, &blk(base, &[(2000, 5000)]));
        assert_eq!(sb2.pipe(una, max, una, 1000), 5000);
        assert_eq!(sb2.pipe(una, max, una, 1500), 7000);
    }
}

trait SubOne {
    fn sub_one(self) -> Self;
}
impl SubOne for SeqNum {
    fn sub_one(self) -> SeqNum {
        self - 1
    }
}

#[test]
fn scoreboard_next_seg_rules() {
    for base in BASES {
        let at = |v: u32| sq(base.wrapping_add(v));
        let (una, max, mss) = (at(0), at(10_000), 1000);
        let mut sb = Scoreboard::new();
        // Nothing SACKed: rule 2 if there is new data.
        assert_eq!(sb.next_seg(una, max, una, mss, true), Some(NextSeg::NewData));
        assert_eq!(sb.next_seg(una, max, una, mss, false), None);
        sb.update(una, max, &blk(base, &[(2000, 3000), (4000, 5000), (6000, 7000), (7400, 7500)]));
        // Rule 1: the lost hole from HighRxt, one MSS.
        assert_eq!(sb.next_seg(una, max, una, mss, true), Some(NextSeg::Rule1 { seq: at(0), len: 1000 }));
        assert_eq!(sb.next_seg(una, max, at(1000), mss, true), Some(NextSeg::Rule1 { seq: at(1000), len: 1000 }));
        assert_eq!(sb.next_seg(una, max, at(1700), mss, false), Some(NextSeg::Rule1 { seq: at(1700), len: 300 }));
        // [3000,4000) has 3 ranges above: lost too.
        assert_eq!(sb.next_seg(una, max, at(2000), mss, true), Some(NextSeg::Rule1 { seq: at(3000), len: 1000 }));
        // [5000,6000): 2 ranges, 1100 bytes above: not lost.
        assert_eq!(sb.next_seg(una, max, at(4000), mss, true), Some(NextSeg::NewData));
        assert_eq!(sb.next_seg(una, max, at(4000), mss, false), Some(NextSeg::Rule3 { seq: at(5000), len: 1000 }));
        // Rule 3 stops at the next SACKed range.
        assert_eq!(sb.next_seg(una, max, at(6000), mss, false), Some(NextSeg::Rule3 { seq: at(7000), len: 400 }));
        // Nothing below the highest SACKed byte from HighRxt on.
        assert_eq!(sb.next_seg(una, max, at(7400), mss, false), None);
        assert_eq!(sb.next_seg(una, max, at(7400), mss, true), Some(NextSeg::NewData));
        assert_eq!(sb.next_seg(una, max, at(9000), mss, false), None);
        // A small MSS: the range is one MSS.
        assert_eq!(sb.next_seg(una, max, una, 100, true), Some(NextSeg::Rule1 { seq: at(0), len: 100 }));
        assert_eq!(sb.next_seg(una, max, una, 0, true), Some(NextSeg::Rule1 { seq: at(0), len: 1 }));
        // SND.UNA past HighRxt: from SND.UNA.
        sb.update(at(500), max, &[]);
        assert_eq!(sb.next_seg(at(500), max, at(0), mss, false), Some(NextSeg::Rule1 { seq: at(500), len: 1000 }));
    }
}

#[test]
fn scoreboard_is_bounded_and_counts() {
    assert_eq!(MAX_HOLES, MAX_RANGES);
    for base in [0u32, 0xffff_0000] {
        let at = |v: u32| sq(base.wrapping_add(v));
        let (una, max) = (at(0), at(1_000_000));
        let n = MAX_RANGES as u32 + 44;
        // Ascending: the ones above the bound are dropped as they come.
        let mut sb = Scoreboard::new();
        for i in 0..n {
            sb.update(una, max, &blk(base, &[(10 * i + 10, 10 * i + 15)]));
        }
        assert_eq!(sb.range_count(), MAX_RANGES);
        assert_eq!(sb.overflows, 44);
        assert_eq!(sb.overflow_count(), 44);
        assert_eq!(sb.high_sacked(), Some(at(10 * MAX_RANGES as u32 + 5)));
        // Descending: each new lowest one pushes the highest out.
        let mut sb = Scoreboard::new();
        for i in (0..n).rev() {
            sb.update(una, max, &blk(base, &[(10 * i + 10, 10 * i + 15)]));
        }
        assert_eq!(sb.range_count(), MAX_RANGES);
        assert_eq!(sb.overflows, 44);
        assert_eq!(rel(&sb, base)[0], (10, 15));
        assert_eq!(sb.high_sacked(), Some(at(10 * MAX_RANGES as u32 + 5)));
        // Merging makes room again.
        sb.update(una, max, &blk(base, &[(10, 1005)]));
        assert_eq!(sb.range_count(), MAX_RANGES - 99);
        sb.update(una, max, &blk(base, &[(100_000, 100_001)]));
        assert_eq!(sb.range_count(), MAX_RANGES - 98);
        assert_eq!(sb.overflows, 44);
        // Many blocks in one ACK: no panic, still bounded.
        let many: Vec<(u32, u32)> = (0..2000).map(|i| (200_000 + 3 * i, 200_000 + 3 * i + 1)).collect();
        sb.update(una, max, &blk(base, &many));
        assert_eq!(sb.range_count(), MAX_RANGES);
        // The scoreboard's rules still work when full.
        let _ = sb.pipe(una, max, una, 1);
        let _ = sb.next_seg(una, max, una, 1, false);
    }
}

#[test]
fn scoreboard_garbage_never_panics() {
    let mut rng = Rng(0x0bad_5ac0);
    let mut sb = Scoreboard::new();
    for _ in 0..5000 {
        let una = sq(rng.next() as u32);
        let max = if rng.below(2) == 0 { una + rng.below(1 << 20) } else { sq(rng.next() as u32) };
        let blocks: Vec<(SeqNum, SeqNum)> = (0..rng.below(6))
            .map(|_| {
                let s = if rng.below(2) == 0 { una + rng.below(1 << 21) } else { sq(rng.next() as u32) };
                (s, s + rng.below(1 << 20))
            })
            .collect();
        sb.update(una, max, &blocks);
        let mss = rng.next() as u32 >> rng.below(32);
        let hr = sq(rng.next() as u32);
        let _ = sb.pipe(una, max, hr, mss);
        let _ = sb.next_seg(una, max, hr, mss, rng.below(2) == 0);
        let _ = sb.is_lost(sq(rng.next() as u32), mss);
        let _ = sb.is_sacked(sq(rng.next() as u32), rng.next() as u32);
        let _ = sb.sacked_bytes();
        assert!(sb.range_count() <= MAX_RANGES);
    }
}

// ------------------------------------------- scoreboard vs a bitmap model

/// The scoreboard in absolute offsets from a fixed base, one flag a byte,
/// with RFC 6675's per-octet definitions taken literally.
struct Model {
    sacked: Vec<bool>,
    una: u64,
    max: u64,
}

impl Model {
    fn is(&self, o: u64) -> bool {
        o >= self.una && o < self.max && self.sacked[o as usize]
    }

    /// SACKed runs in [una, max), in order.
    fn runs(&self) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        let mut o = self.una;
        while o < self.max {
            if self.is(o) {
                let s = o;
                while o < self.max && self.is(o) {
                    o += 1;
                }
                v.push((s, o));
            } else {
                o += 1;
            }
        }
        v
    }

    fn is_lost(&self, runs: &[(u64, u64)], seq: i64, mss: u32) -> bool {
        let mut bytes = 0u64;
        let mut n = 0;
        for &(s, e) in runs {
            let from = (s as i64).max(seq + 1);
            if (e as i64) > from {
                bytes += (e as i64 - from) as u64;
                n += 1;
            }
        }
        n >= 3 || bytes > 2 * u64::from(mss.max(1))
    }
}

#[test]
fn scoreboard_matches_a_bitmap_model() {
    for seed in 1..=6u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        // Bases near the wrap make the run cross 2^32.
        let base: u32 = match seed % 3 {
            0 => 0xffff_0000,
            1 => 0x7fff_8000,
            _ => rng.next() as u32,
        };
        let to_seq = |o: i64| sq((i64::from(base) + o).rem_euclid(1 << 32) as u32);
        let span = 300_000usize;
        let mut m = Model { sacked: vec![false; span + 10_000], una: 1000, max: 1000 };
        let mut sb = Scoreboard::new();
        let window = 3000 + rng.below(3000) as u64;
        for _ in 0..1500 {
            // Move SND.MAX and SND.UNA.
            let new_max = (m.max + rng.below(400) as u64).min(m.una + window);
            m.max = new_max;
            if rng.below(3) == 0 {
                m.una = (m.una + rng.below(300) as u64).min(m.max);
            }
            if m.max as usize >= span {
                break;
            }
            // Random blocks around the window, some invalid, some old.
            let nblocks = rng.below(5);
            let blocks: Vec<(i64, i64)> = (0..nblocks)
                .map(|_| {
                    let s = m.una as i64 - 400 + rng.below(window as usize + 800) as i64;
                    let l = rng.below(300) as i64 - 10;
                    (s, s + l)
                })
                .collect();
            let sblocks: Vec<(SeqNum, SeqNum)> = blocks.iter().map(|&(s, e)| (to_seq(s), to_seq(e))).collect();
            let got = sb.update(to_seq(m.una as i64), to_seq(m.max as i64), &sblocks);

            // The model's update (bytes below SND.UNA no longer count:
            // `Model::is` looks from SND.UNA up).
            let (una, max) = (m.una as i64, m.max as i64);
            let mut want = SackUpdate::default();
            for (i, &(s, e)) in blocks.iter().enumerate() {
                if s >= e || e > max {
                    want.ignored_blocks += 1;
                    continue;
                }
                if i == 0 {
                    let inside = blocks.get(1).is_some_and(|&(s2, e2)| s2 < e2 && s2 <= s && e <= e2);
                    if e <= una || inside {
                        want.dsack = true;
                        continue;
                    }
                }
                if e <= una {
                    want.ignored_blocks += 1;
                    continue;
                }
                for o in s.max(una)..e {
                    if !m.sacked[o as usize] {
                        m.sacked[o as usize] = true;
                        want.newly_sacked += 1;
                    }
                }
            }
            assert_eq!(got, want, "seed {seed}");
            assert_eq!(sb.overflows, 0);

            let runs = m.runs();
            let want_ranges: Vec<(SeqNum, SeqNum)> =
                runs.iter().map(|&(s, e)| (to_seq(s as i64), to_seq(e as i64))).collect();
            assert_eq!(sb.ranges().collect::<Vec<_>>(), want_ranges, "seed {seed}");
            let total: u64 = runs.iter().map(|&(s, e)| e - s).sum();
            assert_eq!(u64::from(sb.sacked_bytes()), total);
            assert_eq!(sb.high_sacked(), runs.last().map(|r| to_seq(r.1 as i64)));

            let mss = 1 + rng.below(700) as u32;
            // IsLost at random points, and on every octet sometimes.
            let pts: Vec<i64> = if rng.below(20) == 0 {
                (una - 5..max + 5).collect()
            } else {
                (0..20).map(|_| una - 5 + rng.below((max - una + 10) as usize) as i64).collect()
            };
            for &p in &pts {
                assert_eq!(sb.is_lost(to_seq(p), mss), m.is_lost(&runs, p, mss), "seed {seed} is_lost {p}");
            }
            // is_sacked.
            for _ in 0..10 {
                let p = una - 5 + rng.below((max - una + 10) as usize) as i64;
                let l = 1 + rng.below(200) as i64;
                let want = (p..p + l).all(|o| o >= 0 && m.is(o as u64));
                assert_eq!(sb.is_sacked(to_seq(p), l as u32), want, "seed {seed} is_sacked {p}+{l}");
            }

            // Per-octet flags once, for SetPipe and NextSeg.
            let n = (max - una) as usize;
            let sacked: Vec<bool> = (una..max).map(|o| m.is(o as u64)).collect();
            let mut lost = vec![false; n];
            {
                // IsLost per octet via suffix sums (same definition).
                let mut bytes = 0u64;
                let mut nr = 0u32;
                for i in (0..n).rev() {
                    // bytes/runs strictly above octet i
                    lost[i] = nr >= 3 || bytes > 2 * u64::from(mss);
                    if sacked[i] {
                        bytes += 1;
                        if i + 1 == n || !sacked[i + 1] {
                            nr += 1;
                        }
                    }
                }
            }
            for _ in 0..3 {
                let hr = una - 50 + rng.below(n + 100) as i64;
                let mut pipe = 0u64;
                for i in 0..n {
                    if sacked[i] {
                        continue;
                    }
                    if !lost[i] {
                        pipe += 1;
                    }
                    if una + (i as i64) < hr {
                        pipe += 1;
                    }
                }
                assert_eq!(u64::from(sb.pipe(to_seq(una), to_seq(max), to_seq(hr), mss)), pipe, "seed {seed} pipe");

                // NextSeg, the RFC's rules literally.
                let have_new = rng.below(2) == 0;
                let high = runs.last().map(|r| r.1 as i64);
                let from = hr.max(una);
                let seg_at = |o: i64| -> (SeqNum, u32) {
                    let mut l = 0;
                    while l < mss && o + i64::from(l) < max && !sacked[(o + i64::from(l) - una) as usize] {
                        l += 1;
                    }
                    (to_seq(o), l)
                };
                let cands: Vec<i64> = match high {
                    Some(h) => (from..h.min(max)).filter(|&o| !sacked[(o - una) as usize]).collect(),
                    None => Vec::new(),
                };
                let want = if let Some(&o) = cands.iter().find(|&&o| lost[(o - una) as usize]) {
                    let (seq, len) = seg_at(o);
                    Some(NextSeg::Rule1 { seq, len })
                } else if have_new {
                    Some(NextSeg::NewData)
                } else if let Some(&o) = cands.first() {
                    let (seq, len) = seg_at(o);
                    Some(NextSeg::Rule3 { seq, len })
                } else {
                    None
                };
                assert_eq!(
                    sb.next_seg(to_seq(una), to_seq(max), to_seq(hr), mss, have_new),
                    want,
                    "seed {seed} next_seg"
                );
            }
        }
    }
}
