//! ICMP errors at a FireEngine TCB (`tcp::tcb::icmp`) over the fake link
//! of `fe_tcb_net`, and the PMTU arithmetic and cache (`ip::pmtu`):
//! "fragmentation needed" cuts the MSS and resends at once without a
//! congestion response, out-of-window quotes are ignored and counted, a
//! refused connect fails, a soft error never aborts and is what a later
//! timeout reports.

mod fe_tcb_net;
mod rng;

use arbalest_netstack::fireengine::ip::pmtu::{PMTU_CACHE_MAX, PMTU_INTERVAL_MS, PmtuCache, pmtu_for};
use arbalest_netstack::fireengine::tcp::config::TcbConfig;
use arbalest_netstack::fireengine::tcp::seq::SeqNum;
use arbalest_netstack::fireengine::tcp::state::State;
use arbalest_netstack::fireengine::tcp::tcb::icmp::IcmpNotice;
use arbalest_netstack::NetError;
use fe_tcb_net::*;
use std::net::Ipv4Addr;

/// A and B established, A with `bytes` queued and its first flight on
/// the link; returns SND.UNA.
fn sending(c: TcbConfig, bytes: usize) -> (Net, SeqNum) {
    let mut n = Net::new(7);
    n.establish(c, c);
    n.app[A].out = pattern(bytes, 3);
    n.app[B].reading = true;
    n.pump(A);
    let una = n.t(A).snd_seq().1;
    assert!(n.t(A).snd_max().gt(una), "nothing in flight");
    (n, una)
}

#[test]
fn frag_needed_cuts_the_mss_and_resends_at_once_without_a_congestion_response() {
    for lso in [false, true] {
        let (mut n, una) = sending(cfg(), 512 << 10);
        if lso {
            n.call(A, |t, _| t.set_lso(Some(65_535 + 14)));
        }
        let mss0 = n.t(A).mss();
        assert_eq!(mss0, 1448, "1460 less timestamps");
        let (cwnd0, ssthresh0) = n.t(A).cwnd();
        let rto0 = n.t(A).rtt().1;
        // The router dropped the whole flight.
        n.q.clear();
        let since = n.log.len();
        assert!(n.call(A, |t, ctx| t.icmp_error(IcmpNotice::FragNeeded { pmtu: 1000 }, una, ctx)));
        assert_eq!(n.t(A).mss(), 1000 - 40 - 12, "PMTU − 40 less the timestamps option");
        let resent = n.sent_by(A, since);
        assert!(!resent.is_empty(), "nothing resent at once");
        assert_eq!(resent[0].seg.seq, una, "resent from SND.UNA");
        assert!(resent[0].seg.rexmit);
        let (cwnd1, ssthresh1) = n.t(A).cwnd();
        assert_eq!(ssthresh1, ssthresh0, "not a congestion signal");
        assert!(
            u64::from(cwnd1) * u64::from(mss0) >= u64::from(cwnd0) * 948 * 9 / 10,
            "cwnd {cwnd0} -> {cwnd1}: not halved, only resized"
        );
        assert_eq!(n.t(A).rtt().1, rto0, "no RTO backoff");
        assert_eq!(n.mib(A, "tcpPmtuDecreases"), 1);
        assert_eq!(n.mib(A, "tcpInIcmpErrors"), 1);
        assert_eq!(n.mib(A, "tcpTimRetrans"), 0);
        let want = n.app[A].out.clone();
        assert!(n.run_until(|n| n.app[B].got.len() == want.len(), 60_000_000), "stalled at {}", n.app[B].got.len());
        assert_eq!(n.app[B].got, want);
        let big = n.log[since..]
            .iter()
            .filter(|r| r.from == A)
            .filter(|r| r.seg.data.len() > 948 && r.seg.lso_mss != Some(948))
            .count();
        assert_eq!(big, 0, "a segment over the new MSS (lso {lso})");
        if lso {
            assert!(n.log[since..].iter().any(|r| r.seg.lso_mss == Some(948)), "no large send cut at 948");
        }
        assert_eq!(n.mib(A, "tcpTimRetrans"), 0, "no timeout needed (lso {lso})");
        eprintln!("lso {lso}: cwnd {cwnd0} -> {cwnd1}, ssthresh {ssthresh0}, {} B delivered", n.app[B].got.len());
    }
}

#[test]
fn out_of_window_quotes_and_no_decrease_are_ignored_and_counted() {
    let (mut n, una) = sending(cfg(), 64 << 10);
    let max = n.t(A).snd_max();
    for seq in [una - 1, max, max + 5000, SeqNum(una.0 ^ 0x8000_0000)] {
        assert!(!n.call(A, |t, ctx| t.icmp_error(IcmpNotice::FragNeeded { pmtu: 600 }, seq, ctx)));
    }
    assert_eq!(n.mib(A, "tcpInIcmpOutOfWindow"), 4);
    assert_eq!(n.t(A).mss(), 1448);
    // In window but not smaller than the path's MSS.
    assert!(!n.call(A, |t, ctx| t.icmp_error(IcmpNotice::FragNeeded { pmtu: 1500 }, una, ctx)));
    assert_eq!(n.mib(A, "tcpPmtuIgnored"), 1);
    assert_eq!(n.mib(A, "tcpPmtuDecreases"), 0);
    // The floor: _mss_min (108) before the options.
    assert!(n.call(A, |t, ctx| t.icmp_error(IcmpNotice::FragNeeded { pmtu: 68 }, una, ctx)));
    assert_eq!(n.t(A).mss(), 108 - 12);
}

#[test]
fn port_unreachable_in_syn_sent_refuses_the_connect() {
    let mut n = Net::new(1);
    n.connect(cfg(), cfg());
    n.q.clear();
    // Out of window first: nothing.
    n.call(A, |t, ctx| t.icmp_error(IcmpNotice::Refused, SeqNum(ISS[A] + 1), ctx));
    assert_eq!(n.state(A), State::SynSent);
    n.call(A, |t, ctx| t.icmp_error(IcmpNotice::Refused, SeqNum(ISS[A]), ctx));
    assert_eq!(n.state(A), State::Closed);
    assert_eq!(n.t(A).error(), Some(NetError::ConnectionRefused));
    assert_eq!(n.mib(A, "tcpIcmpConnRefused"), 1);
    assert_eq!(n.mib(A, "tcpAttemptFails"), 1);
}

#[test]
fn soft_errors_never_abort_and_are_what_a_later_timeout_reports() {
    let c = TcbConfig { abort_ms: 3_000, ..cfg() };
    let (mut n, una) = sending(c, 32 << 10);
    for e in [IcmpNotice::Soft(NetError::Unreachable), IcmpNotice::Refused] {
        n.call(A, |t, ctx| t.icmp_error(e, una, ctx));
        assert_eq!(n.state(A), State::Established);
    }
    n.call(A, |t, ctx| t.icmp_error(IcmpNotice::Soft(NetError::Unreachable), una, ctx));
    assert_eq!(n.mib(A, "tcpIcmpSoftErrors"), 3);
    // Data still flows.
    let want = n.app[A].out.len();
    assert!(n.run_until(|n| n.app[B].got.len() == want, 30_000_000));
    assert_eq!(n.state(A), State::Established);
    // Then the path goes dead: the timeout reports the soft error.
    n.filter = Some(Box::new(|from, _, _| from == A));
    n.app[A].out.extend(pattern(4096, 9));
    assert!(n.run_until(|n| n.state(A) == State::Closed, 120_000_000));
    assert_eq!(n.t(A).error(), Some(NetError::Unreachable));
}

#[test]
fn a_cached_pmtu_caps_a_new_conns_mss() {
    let mut n = Net::new(2);
    n.connect(cfg(), cfg());
    n.call(A, |t, _| t.set_path_mtu(1000));
    assert!(n.run_until(|n| n.state(A) == State::Established && n.state(B) == State::Established, 10_000_000));
    assert_eq!(n.t(A).mss(), 948);
    assert_eq!(n.t(B).mss(), 1448, "the peer is not told");
}

#[test]
fn plateaus_floor_and_a_bounded_expiring_cache() {
    assert_eq!(pmtu_for(1000, 1500), 1000);
    assert_eq!(pmtu_for(0, 1500), 1492, "RFC 1191 plateau below the quoted length");
    assert_eq!(pmtu_for(0, 1492), 1006);
    assert_eq!(pmtu_for(0, 9000), 8166);
    assert_eq!(pmtu_for(0, 0), 576);
    assert_eq!(pmtu_for(300, 1500), 576, "the floor, illumos _pmtu_min");
    assert_eq!(pmtu_for(40, 1500), 1492, "under 68: not an MTU, the plateau");
    let mut c = PmtuCache::new();
    let d = |i: u32| Ipv4Addr::from(0x0a00_0000 + i);
    c.learn(d(1), 1400, 0);
    c.learn(d(1), 1450, 1);
    assert_eq!(c.get(d(1), 2), Some(1400), "only ever lowered while live");
    assert_eq!(c.get(d(1), PMTU_INTERVAL_MS), None, "expired");
    let mut ev = 0;
    for i in 0..300 {
        ev += u32::from(c.learn(d(100 + i), 1000, 10 + u64::from(i)));
    }
    assert_eq!(c.len(), PMTU_CACHE_MAX);
    assert_eq!(ev, 300 + 1 - PMTU_CACHE_MAX as u32);
    assert_eq!(c.evictions(), u64::from(ev));
    assert_eq!(c.get(d(100), 400), None, "the oldest went");
    assert_eq!(c.get(d(399), 400), Some(1000));
}
