//! FireEngine's TCB (`fireengine::tcp::tcb`) end to end between two
//! connections over a fake link (`fe_tcb_net`): the handshake with and
//! without options, simultaneous open, SYN retransmission and its abort,
//! the RFC 5961 checks (RST, SYN, ACK), PAWS, the receive window, Nagle,
//! delayed ACKs, keepalive, the ways to close, urgent data and the MIB.

mod fe_tcb_net;
mod rng;

use arbalest_netstack::fireengine::tcp::config::TcbConfig;
use arbalest_netstack::fireengine::tcp::segment::SegOut;
use arbalest_netstack::fireengine::tcp::seq::SeqNum;
use arbalest_netstack::fireengine::tcp::state::State;
use arbalest_netstack::fireengine::wire::tcp::{TcpFlags, Timestamps};
use arbalest_netstack::NetError;
use fe_tcb_net::*;

fn no_opts() -> TcbConfig {
    TcbConfig { wscale: false, tstamp: false, sack_accept: false, sack_offer: false, ..cfg() }
}

// ---------------------------------------------------------------- handshake

#[test]
fn handshake_negotiates_every_option_both_ways() {
    let mut n = Net::new(1);
    n.establish(cfg(), cfg());
    let syn = &n.log[0].seg;
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.seq, SeqNum(ISS[A]));
    assert_eq!(syn.opts.mss, Some(1460));
    assert_eq!(syn.opts.window_scale, Some(5));
    assert!(syn.opts.sack_permitted);
    let ts = syn.opts.timestamps.expect("SYN timestamps");
    assert_eq!(ts.tsecr, 0);
    let synack = &n.log[1].seg;
    assert_eq!(n.log[1].from, B);
    assert_eq!(synack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.ack, SeqNum(ISS[A].wrapping_add(1)));
    assert_eq!(synack.seq, SeqNum(ISS[B]));
    assert_eq!(synack.opts.mss, Some(1460));
    assert_eq!(synack.opts.window_scale, Some(5));
    assert!(synack.opts.sack_permitted);
    assert_eq!(synack.opts.timestamps.expect("SYN-ACK timestamps").tsecr, ts.tsval);
    // The SYN's window is unscaled.
    assert_eq!(syn.wnd, 65_535);
    for i in [A, B] {
        assert_eq!(n.t(i).options(), (true, true, true));
        assert_eq!(n.t(i).mss(), 1448, "MSS less the timestamps option");
        assert_eq!(n.t(i).window_scales(), (5, 5));
        assert_eq!(n.mib(i, "tcpCurrEstab"), 1);
        assert!(n.app[i].events.established);
    }
    assert_eq!(n.mib(A, "tcpActiveOpens"), 1);
    assert_eq!(n.mib(B, "tcpPassiveOpens"), 1);
    // The third segment is A's ACK; B's window is A's scaled one.
    let ack = &n.log[2].seg;
    assert_eq!(ack.flags, TcpFlags::ACK);
    assert_eq!(n.t(B).snd_wnd(), u32::from(ack.wnd) << 5);
    assert_eq!(n.t(B).snd_wnd(), 128_000);
    assert_eq!(n.t(A).isns(), (SeqNum(ISS[A]), SeqNum(ISS[B])));
    assert_eq!(n.t(B).isns(), (SeqNum(ISS[B]), SeqNum(ISS[A])));
    // The SYN was timed: one RTT of 20 ms.
    let (srtt, rto) = n.t(A).rtt();
    assert_eq!(srtt, Some(20_000));
    assert_eq!(rto, 400);
}

#[test]
fn handshake_without_any_option_uses_536() {
    let mut n = Net::new(1);
    // A offers nothing, and its SYN loses the MSS option on the way.
    n.mangle = Some(Box::new(|from, s| {
        if from == A && s.has(TcpFlags::SYN) {
            s.opts.mss = None;
        }
    }));
    n.establish(no_opts(), cfg());
    let synack = &n.log[1].seg;
    assert_eq!(synack.opts.mss, Some(1460));
    assert_eq!(synack.opts.window_scale, None);
    assert!(!synack.opts.sack_permitted);
    assert_eq!(synack.opts.timestamps, None);
    assert_eq!(n.t(B).mss(), 536);
    assert_eq!(n.t(A).mss(), 1460);
    for i in [A, B] {
        assert_eq!(n.t(i).options(), (false, false, false));
        assert_eq!(n.t(i).window_scales(), (0, 0));
    }
    // Unscaled windows are capped at 65535.
    assert_eq!(n.t(B).snd_wnd(), 65_535);
    // Data flows in 536-byte segments from B.
    n.app[B].out = pattern(5000, 3);
    assert!(n.run_until(|n| n.app[A].got.len() == 5000, 5_000_000));
    assert_eq!(n.app[A].got, pattern(5000, 3));
    let sizes: Vec<usize> = n.log.iter().filter(|r| r.from == B && !r.seg.data.is_empty()).map(|r| r.seg.data.len()).collect();
    assert!(sizes.iter().all(|&s| s <= 536));
    assert_eq!(sizes[0], 536);
}

#[test]
fn handshake_server_declines_options() {
    let mut n = Net::new(1);
    n.establish(cfg(), no_opts());
    let synack = &n.log[1].seg;
    assert_eq!(synack.opts.window_scale, None);
    assert!(!synack.opts.sack_permitted);
    assert_eq!(synack.opts.timestamps, None);
    assert_eq!(n.t(A).options(), (false, false, false));
    assert_eq!(n.t(B).options(), (false, false, false));
    assert_eq!(n.t(A).mss(), 1460);
    // Each side's segments carry no timestamps.
    n.app[A].out = pattern(3000, 1);
    assert!(n.run_until(|n| n.app[B].got.len() == 3000, 5_000_000));
    assert!(n.log.iter().skip(2).all(|r| r.seg.opts.timestamps.is_none() && r.seg.opts.window_scale.is_none()));
}

#[test]
fn handshake_small_peer_mss_and_mss_min() {
    let mut n = Net::new(1);
    n.mangle = Some(Box::new(|from, s| {
        if from == A && s.has(TcpFlags::SYN) {
            s.opts.mss = Some(40);
        }
    }));
    n.establish(no_opts(), cfg());
    // Clamped to _mss_min.
    assert_eq!(n.t(B).mss(), 108);
}

#[test]
fn simultaneous_open() {
    let mut n = Net::new(1);
    // Both connect; the SYNs cross.
    n.listen = None;
    n.rst_closed = false;
    let mut out = Vec::new();
    for i in [A, B] {
        let t = {
            let mut ctx = arbalest_netstack::fireengine::tcp::tcb::TcpCtx {
                now_us: n.now_us,
                out: &mut out,
                mib: &n.mib[i],
                challenge: &n.chal[i],
            };
            arbalest_netstack::fireengine::tcp::tcb::Tcb::connect(cfg(), SeqNum(ISS[i]), TS_OFF[i], &mut ctx)
        };
        n.tcb[i] = Some(t);
        let segs = std::mem::take(&mut out);
        n.transmit(i, segs);
    }
    assert!(n.run_until(|n| n.state(A) == State::Established && n.state(B) == State::Established, 5_000_000));
    for i in [A, B] {
        assert_eq!(n.t(i).options(), (true, true, true));
        assert_eq!(n.t(i).snd_seq().1, SeqNum(ISS[i].wrapping_add(1)));
        assert_eq!(n.t(i).rcv_nxt(), SeqNum(ISS[1 - i].wrapping_add(1)));
        assert_eq!(n.mib(i, "tcpCurrEstab"), 1);
    }
    // Both SYN-ACKs went out.
    assert_eq!(n.log.iter().filter(|r| r.seg.flags == TcpFlags::SYN | TcpFlags::ACK).count(), 2);
    n.app[A].out = pattern(100_000, 1);
    n.app[B].out = pattern(100_000, 2);
    assert!(n.run_until(|n| n.app[A].got.len() == 100_000 && n.app[B].got.len() == 100_000, 10_000_000));
    assert_eq!(n.app[B].got, pattern(100_000, 1));
    assert_eq!(n.app[A].got, pattern(100_000, 2));
}

#[test]
fn syn_retransmitted_with_backoff_then_abort() {
    let mut n = Net::new(1);
    n.filter = Some(Box::new(|from, _, _| from == A));
    let c = TcbConfig { abort_conn_ms: 20_000, ..cfg() };
    n.connect(c, cfg());
    let t0 = n.now_us;
    assert!(n.run_until(|n| n.state(A) == State::Closed, 60_000_000));
    let times: Vec<u64> = n.log.iter().filter(|r| r.from == A && r.seg.has(TcpFlags::SYN)).map(|r| (r.t_us - t0) / 1000).collect();
    // 1 s, doubling: 0, 1, 3, 7, 15 s; the 5th RTO at 31 s is past 20 s.
    assert_eq!(times, vec![0, 1000, 3000, 7000, 15_000]);
    assert!(n.log.iter().filter(|r| r.from == A).skip(1).all(|r| r.seg.rexmit));
    assert_eq!(n.t(A).error(), Some(NetError::TimedOut));
    assert_eq!((n.now_us - t0) / 1000, 31_000);
    assert_eq!(n.mib(A, "tcpAttemptFails"), 1);
    assert_eq!(n.mib(A, "tcpTimRetransDrop"), 1);
    assert_eq!(n.mib(A, "tcpTimRetrans"), 5);
    assert_eq!(n.mib(A, "tcpCurrEstab"), 0);
    assert!(n.app[A].events.closed);
    // No RST for a SYN nobody answered.
    assert!(!n.log.iter().any(|r| r.seg.has(TcpFlags::RST)));
    assert!(n.t(A).next_deadline().is_none());
}

#[test]
fn lost_syn_then_connect_and_rto_3s() {
    let mut n = Net::new(1);
    n.filter = Some(Box::new(|from, _, k| from == A && k == 0));
    n.establish(TcbConfig { tstamp: false, ..cfg() }, cfg());
    assert_eq!(n.now_ms(), 1000 + 1000 + 30);
    // The SYN-ACK answered a retransmitted SYN without timestamps: no
    // sample (Karn), the RTO for data is 3 s (RFC 6298 5.7).
    assert_eq!(n.t(A).rtt(), (None, 3000));
    assert_eq!(n.mib(A, "tcpRetransSegs"), 1);
}

#[test]
fn lost_synack_retransmitted() {
    let mut n = Net::new(1);
    n.filter = Some(Box::new(|from, _, k| from == B && k == 0));
    n.establish(cfg(), cfg());
    // A's SYN again at 1 s draws the SYN-ACK again at once (B's own RTO
    // is also 1 s: whichever first).
    let synacks = n.log.iter().filter(|r| r.from == B && r.seg.has(TcpFlags::SYN)).count();
    assert!(synacks >= 2);
    assert!(n.now_ms() <= 1000 + 1000 + 30);
    assert_eq!(n.mib(B, "tcpCurrEstab"), 1);
}

#[test]
fn syn_to_closed_port_is_refused() {
    let mut n = Net::new(1);
    n.connect(cfg(), cfg());
    n.listen = None;
    assert!(n.run_until(|n| n.state(A) == State::Closed, 5_000_000));
    assert_eq!(n.t(A).error(), Some(NetError::ConnectionRefused));
    assert_eq!(n.mib(A, "tcpAttemptFails"), 1);
}

#[test]
fn synrcvd_drops_after_abort_conn() {
    let mut n = Net::new(1);
    // A's ACKs never arrive; B retransmits its SYN-ACK and gives up.
    n.filter = Some(Box::new(|from, s, _| from == A && !s.has(TcpFlags::SYN)));
    n.connect(cfg(), TcbConfig { abort_conn_ms: 10_000, ..cfg() });
    // Stop A from retransmitting anything: it is established at once.
    n.run_for(40_000_000);
    assert_eq!(n.state(B), State::Closed);
    assert_eq!(n.t(B).error(), Some(NetError::TimedOut));
    assert_eq!(n.mib(B, "tcpAttemptFails"), 1);
}

// ---------------------------------------------------------------- RFC 5961

fn established() -> Net {
    let mut n = Net::new(7);
    n.establish(cfg(), cfg());
    n.app[A].out = pattern(10_000, 1);
    n.app[B].out = pattern(10_000, 2);
    assert!(n.run_until(|n| n.app[A].got.len() == 10_000 && n.app[B].got.len() == 10_000, 5_000_000));
    n.run_for(1_000_000);
    n
}

#[test]
fn rst_at_rcv_nxt_resets() {
    let mut n = established();
    let rst = n.forge(B, TcpFlags::RST, &[]);
    n.inject(B, &rst);
    assert_eq!(n.state(B), State::Closed);
    assert_eq!(n.t(B).error(), Some(NetError::ConnectionReset));
    assert_eq!(n.mib(B, "tcpEstabResets"), 1);
    assert_eq!(n.mib(B, "tcpCurrEstab"), 0);
    assert!(n.app[B].events.closed);
    let mut buf = [0u8; 10];
    assert_eq!(n.call(B, |t, ctx| t.recv(&mut buf, ctx)), Err(NetError::ConnectionReset));
    assert_eq!(n.call(B, |t, ctx| t.send(b"x", ctx)), Err(NetError::ConnectionReset));
}

#[test]
fn rst_in_window_draws_challenge_ack() {
    let mut n = established();
    let mut rst = n.forge(B, TcpFlags::RST, &[]);
    rst.seq += 1000;
    let before = n.log.len();
    n.inject(B, &rst);
    assert_eq!(n.state(B), State::Established);
    assert_eq!(n.mib(B, "tcpOutChallengeAcks"), 1);
    let out = n.sent_by(B, before);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].seg.flags, TcpFlags::ACK);
    assert_eq!(out[0].seg.ack, n.t(B).rcv_nxt());
    assert_eq!(out[0].seg.seq, n.t(B).snd_seq().0);
    // With ACK and any SEG.ACK it is the same.
    let mut rst = n.forge(B, TcpFlags::RST | TcpFlags::ACK, &[]);
    rst.seq += 1;
    rst.ack = SeqNum(12345);
    n.inject(B, &rst);
    assert_eq!(n.state(B), State::Established);
    assert_eq!(n.mib(B, "tcpOutChallengeAcks"), 2);
}

#[test]
fn rst_out_of_window_ignored() {
    let mut n = established();
    let before = n.log.len();
    for off in [10_000_000usize, 2_000_000_000, 3_000_000_000] {
        let mut rst = n.forge(B, TcpFlags::RST, &[]);
        rst.seq += off;
        n.inject(B, &rst);
    }
    assert_eq!(n.state(B), State::Established);
    assert!(n.sent_by(B, before).is_empty(), "no answer to out-of-window RSTs");
    assert_eq!(n.mib(B, "tcpOutChallengeAcks"), 0);
    // The connection still works.
    n.app[A].out.extend(pattern(5000, 9));
    assert!(n.run_until(|n| n.app[B].got.len() == 15_000, 5_000_000));
}

#[test]
fn syn_on_established_draws_challenge_ack() {
    let mut n = established();
    for (seq_off, flags) in [(0usize, TcpFlags::SYN), (100, TcpFlags::SYN | TcpFlags::ACK), (0, TcpFlags::SYN | TcpFlags::FIN)] {
        let before = n.log.len();
        let mut syn = n.forge(B, flags, &[]);
        syn.seq += seq_off;
        n.inject(B, &syn);
        assert_eq!(n.state(B), State::Established);
        let out = n.sent_by(B, before);
        assert_eq!(out.len(), 1, "{flags:?}");
        assert_eq!(out[0].seg.flags, TcpFlags::ACK);
        assert_eq!(out[0].seg.ack, n.t(B).rcv_nxt());
    }
    assert_eq!(n.mib(B, "tcpOutChallengeAcks"), 3);
    assert!(!n.t(B).peer_closed());
}

#[test]
fn challenge_ack_rate_limit() {
    let mut n = established();
    n.chal[B].set_limit(5);
    let before = n.log.len();
    for k in 0..20usize {
        let mut rst = n.forge(B, TcpFlags::RST, &[]);
        rst.seq += 1 + k;
        n.inject(B, &rst);
    }
    assert_eq!(n.sent_by(B, before).len(), 5);
    assert_eq!(n.mib(B, "tcpOutChallengeAcks"), 5);
    assert_eq!(n.mib(B, "tcpChallengeAckLimited"), 15);
    assert_eq!(n.state(B), State::Established);
    // A second later there is room again.
    n.now_us += 1_000_000;
    let before = n.log.len();
    let mut rst = n.forge(B, TcpFlags::RST, &[]);
    rst.seq += 7;
    n.inject(B, &rst);
    assert_eq!(n.sent_by(B, before).len(), 1);
    assert_eq!(n.mib(B, "tcpOutChallengeAcks"), 6);
}

#[test]
fn ack_of_unsent_data_is_answered_and_dropped() {
    let mut n = established();
    let nxt = n.t(B).rcv_nxt();
    let mut s = n.forge(B, TcpFlags::ACK | TcpFlags::PSH, b"hello");
    s.ack += 100_000;
    let before = n.log.len();
    n.inject(B, &s);
    assert_eq!(n.t(B).rcv_nxt(), nxt, "the data of a bad ACK is dropped");
    assert_eq!(n.t(B).readable(), 0);
    assert_eq!(n.mib(B, "tcpInAckUnsent"), 1);
    let out = n.sent_by(B, before);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].seg.flags, TcpFlags::ACK);
    assert_eq!(out[0].seg.ack, nxt);
    // An ACK far below SND.UNA − MAX.SND.WND: the same.
    let mut s = n.forge(B, TcpFlags::ACK, b"hello");
    s.ack -= 1_000_000;
    n.inject(B, &s);
    assert_eq!(n.t(B).rcv_nxt(), nxt);
    assert_eq!(n.mib(B, "tcpOutChallengeAcks"), 2);
    assert_eq!(n.state(B), State::Established);
}

#[test]
fn segment_without_ack_is_dropped() {
    let mut n = established();
    let nxt = n.t(B).rcv_nxt();
    let s = n.forge(B, TcpFlags::PSH, b"hello");
    n.inject(B, &s);
    assert_eq!(n.t(B).rcv_nxt(), nxt);
}

#[test]
fn paws_drops_old_timestamp() {
    let mut n = established();
    let nxt = n.t(B).rcv_nxt();
    let mut s = n.forge(B, TcpFlags::ACK | TcpFlags::PSH, b"old data");
    let ts = s.opts.timestamps.expect("ts");
    s.opts.timestamps = Some(Timestamps { tsval: ts.tsval.wrapping_sub(1000), tsecr: ts.tsecr });
    let before = n.log.len();
    n.inject(B, &s);
    assert_eq!(n.mib(B, "tcpInPawsDrops"), 1);
    assert_eq!(n.t(B).rcv_nxt(), nxt);
    let out = n.sent_by(B, before);
    assert_eq!(out.len(), 1, "PAWS drops are answered with an ACK");
    assert_eq!(out[0].seg.ack, nxt);
    // The same segment with a current timestamp is taken.
    let s = n.forge(B, TcpFlags::ACK | TcpFlags::PSH, b"new data");
    n.inject(B, &s);
    assert_eq!(n.t(B).rcv_nxt(), nxt + 8);
    // A RST is not subject to PAWS.
    let mut r = n.forge(B, TcpFlags::RST, &[]);
    r.seq += 8;
    r.opts.timestamps = Some(Timestamps { tsval: ts.tsval.wrapping_sub(5000), tsecr: 0 });
    n.inject(B, &r);
    assert_eq!(n.state(B), State::Closed);
}

#[test]
fn paws_ts_recent_wraps() {
    // TS_OFF[A] puts A's clock near 2^32: the wrap must not trip PAWS.
    let mut n = Net::new(3);
    n.establish(cfg(), cfg());
    n.run_for(70_000_000); // past the wrap of A's clock (0xffff_0000 + 65.5 s)
    n.app[A].out = pattern(200_000, 4);
    assert!(n.run_until(|n| n.app[B].got.len() == 200_000, 10_000_000));
    assert_eq!(n.mib(B, "tcpInPawsDrops"), 0);
    assert_eq!(n.app[B].got, pattern(200_000, 4));
}

// ---------------------------------------------------------------- receive

#[test]
fn data_past_the_window_is_trimmed() {
    let mut n = Net::new(1);
    let small = TcbConfig { rcv_buf: 4000, max_buf: 4000, wscale: false, ..cfg() };
    n.establish(cfg(), small);
    n.app[B].reading = false;
    let nxt = n.t(B).rcv_nxt();
    let wnd = (n.t(B).rcv_adv() - nxt) as usize;
    assert_eq!(wnd, 4000);
    let data = pattern(6000, 5);
    let s = n.forge(B, TcpFlags::ACK, &data);
    n.inject(B, &s);
    assert_eq!(n.t(B).rcv_nxt(), nxt + 4000);
    assert_eq!(n.t(B).readable(), 4000);
    assert_eq!(n.mib(B, "tcpInPastWinBytes"), 2000);
    // The window is now closed; a segment past it is not taken and draws
    // an ACK with a zero window.
    let mut s = n.forge(B, TcpFlags::ACK, b"more");
    s.seq = nxt + 4000;
    let before = n.log.len();
    n.inject(B, &s);
    assert_eq!(n.t(B).rcv_nxt(), nxt + 4000);
    let out = n.sent_by(B, before);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].seg.wnd, 0);
    assert_eq!(n.mib(B, "tcpInWinProbe"), 1);
    let v = n.call(B, |t, ctx| t.recv_vec(10_000, ctx)).expect("recv");
    assert_eq!(v, data[..4000]);
}

#[test]
fn overlapping_retransmissions_first_received_wins() {
    let mut n = established();
    let nxt = n.t(B).rcv_nxt();
    n.app[B].got.clear();
    // Out of order first: [500, 1500) as 'a'.
    let mut s = n.forge(B, TcpFlags::ACK, &[b'a'; 1000]);
    s.seq = nxt + 500;
    n.inject(B, &s);
    assert_eq!(n.t(B).rcv_nxt(), nxt);
    // Then [0, 1000) as 'b': only [0, 500) of it is new.
    let mut s = n.forge(B, TcpFlags::ACK, &[b'b'; 1000]);
    s.seq = nxt;
    n.inject(B, &s);
    assert_eq!(n.t(B).rcv_nxt(), nxt + 1500);
    // In order: [1500, 2500) 'c', then [2000, 3000) 'd'.
    let mut s = n.forge(B, TcpFlags::ACK, &[b'c'; 1000]);
    s.seq = nxt + 1500;
    n.inject(B, &s);
    let mut s = n.forge(B, TcpFlags::ACK, &[b'd'; 1000]);
    s.seq = nxt + 2000;
    n.inject(B, &s);
    assert_eq!(n.t(B).rcv_nxt(), nxt + 3000);
    let v = n.call(B, |t, ctx| t.recv_vec(100_000, ctx)).expect("recv");
    let mut want = vec![b'b'; 500];
    want.extend([b'a'; 1000]);
    want.extend([b'c'; 1000]);
    want.extend([b'd'; 500]);
    assert_eq!(v, want);
    assert!(n.mib(B, "tcpInPartDupSegs") >= 1);
}

#[test]
fn out_of_order_segment_acked_at_once_with_sack() {
    let mut n = established();
    let nxt = n.t(B).rcv_nxt();
    let mut s = n.forge(B, TcpFlags::ACK, &[1; 100]);
    s.seq = nxt + 1000;
    let before = n.log.len();
    n.inject(B, &s);
    let out = n.sent_by(B, before);
    assert_eq!(out.len(), 1);
    let blocks = out[0].seg.opts.sack_blocks.as_slice().to_vec();
    assert_eq!(blocks.len(), 1);
    assert_eq!((blocks[0].left, blocks[0].right), ((nxt + 1000).0, (nxt + 1100).0));
    assert_eq!(out[0].seg.ack, nxt);
}

// ---------------------------------------------------------------- Nagle, delayed ACK

#[test]
fn nagle_coalesces_small_writes() {
    let mut n = established();
    let before = n.log.len();
    for k in 0..10u8 {
        n.call(A, |t, ctx| t.send(&[k; 10], ctx)).expect("send");
    }
    let data: Vec<usize> = n.sent_by(A, before).iter().filter(|r| !r.seg.data.is_empty()).map(|r| r.seg.data.len()).collect();
    assert_eq!(data, vec![10], "the first goes at once, the rest wait for its ACK");
    let got = n.app[B].got.len();
    assert!(n.run_until(|n| n.app[B].got.len() == got + 100, 2_000_000));
    let data: Vec<usize> = n.sent_by(A, before).iter().filter(|r| !r.seg.data.is_empty()).map(|r| r.seg.data.len()).collect();
    assert_eq!(data, vec![10, 90]);
}

#[test]
fn nodelay_sends_small_writes_at_once() {
    let mut n = established();
    n.call(A, |t, ctx| t.set_nodelay(true, ctx));
    let before = n.log.len();
    for k in 0..10u8 {
        n.call(A, |t, ctx| t.send(&[k; 10], ctx)).expect("send");
    }
    let data: Vec<usize> = n.sent_by(A, before).iter().filter(|r| !r.seg.data.is_empty()).map(|r| r.seg.data.len()).collect();
    assert_eq!(data, vec![10; 10]);
    // Turning Nagle back on: writes wait again.
    n.run_for(1_000_000);
    n.call(A, |t, ctx| t.set_nodelay(false, ctx));
    let before = n.log.len();
    for k in 0..3u8 {
        n.call(A, |t, ctx| t.send(&[k; 10], ctx)).expect("send");
    }
    assert_eq!(n.sent_by(A, before).iter().filter(|r| !r.seg.data.is_empty()).count(), 1);
}

#[test]
fn delayed_ack_every_second_segment() {
    let mut n = established();
    // A reader would send window updates as it reads: none here.
    n.app[B].reading = false;
    n.call(A, |t, ctx| t.set_nodelay(true, ctx));
    let before = n.log.len();
    let mss = n.t(A).mss() as usize;
    // Four full segments at once.
    n.call(A, |t, ctx| t.send(&pattern(4 * mss, 1), ctx)).expect("send");
    let t0 = n.now_us;
    n.run_for(50_000);
    let acks: Vec<SegOut> = n.sent_by(B, before).iter().filter(|r| r.seg.data.is_empty()).map(|r| r.seg.clone()).collect();
    let una = n.t(A).snd_seq().1;
    // Segments 1-3 go at once (the initial window), 4 after the first ACK.
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert_eq!(acks[0].ack, n.t(A).isns().0 + 1 + 10_000 + 2 * mss);
    assert_eq!(acks[1].ack, una);
    assert_eq!(una, n.t(A).snd_max());
    assert_eq!(n.log.iter().filter(|r| r.from == B && r.t_us >= t0).count(), 2);
    // A lone segment is acknowledged after the 100 ms interval.
    let before = n.log.len();
    n.call(A, |t, ctx| t.send(&[9; 100], ctx)).expect("send");
    let sent_at = n.now_us;
    let delayed = n.mib(B, "tcpOutAckDelayed");
    n.run_for(500_000);
    let acks: Vec<u64> = n.sent_by(B, before).iter().map(|r| r.t_us).collect();
    assert_eq!(acks.len(), 1);
    let d = acks[0] - sent_at;
    assert!((100_000..=111_000).contains(&d), "ACK after {d} µs");
    assert_eq!(n.mib(B, "tcpOutAckDelayed"), delayed + 1);
}

// ---------------------------------------------------------------- keepalive

#[test]
fn keepalive_probes_answered_then_drop() {
    let mut n = Net::new(5);
    let c = TcbConfig { keepalive_ms: 10_000, keepalive_abort_ms: 40_000, ..cfg() };
    n.establish(c, cfg());
    n.call(A, |t, ctx| t.set_keepalive(true, ctx));
    n.run_for(100_000_000);
    assert_eq!(n.state(A), State::Established);
    let probes = n.mib(A, "tcpTimKeepaliveProbe");
    assert!((9..=10).contains(&probes), "{probes} probes in 100 s");
    let p = n.log.iter().find(|r| r.from == A && r.t_us > 2_000_000).expect("probe");
    assert_eq!(p.seg.seq, n.t(A).snd_seq().1 - 1);
    assert!(p.seg.data.is_empty());
    assert_eq!(n.mib(B, "tcpInDupSegs"), probes);
    // B goes silent.
    n.filter = Some(Box::new(|from, _, _| from == B));
    let t0 = n.now_ms();
    assert!(n.run_until(|n| n.state(A) == State::Closed, 200_000_000));
    let took = n.now_ms() - t0;
    assert!((40_000..=60_000).contains(&took), "dropped after {took} ms");
    assert_eq!(n.t(A).error(), Some(NetError::TimedOut));
    assert_eq!(n.mib(A, "tcpTimKeepaliveDrop"), 1);
    assert!(n.last_from(A).has(TcpFlags::RST));
    assert_eq!(n.mib(A, "tcpCurrEstab"), 0);
}

#[test]
fn keepalive_off_sends_nothing() {
    let mut n = Net::new(5);
    let c = TcbConfig { keepalive_ms: 10_000, ..cfg() };
    n.establish(c, cfg());
    let before = n.log.len();
    n.run_for(100_000_000);
    assert_eq!(n.log.len(), before);
    assert!(n.t(A).next_deadline().is_none());
    assert!(n.t(B).next_deadline().is_none());
}

// ---------------------------------------------------------------- close

#[test]
fn orderly_close_client_first() {
    let mut n = established();
    n.call(A, |t, ctx| t.shutdown_write(ctx));
    assert_eq!(n.state(A), State::FinWait1);
    assert!(n.last_from(A).has(TcpFlags::FIN));
    assert!(n.run_until(|n| n.state(B) == State::CloseWait && n.state(A) == State::FinWait2, 1_000_000));
    assert!(n.t(B).peer_closed());
    assert_eq!(n.call(B, |t, ctx| t.recv_vec(10, ctx)), Ok(vec![]));
    assert!(n.app[B].events.readable);
    n.app[B].out.extend(pattern(20_000, 4));
    n.app[B].close_when_done = true;
    assert!(n.run_until(|n| n.state(B) == State::Closed, 2_000_000));
    assert_eq!(n.state(A), State::TimeWait);
    assert_eq!(n.t(B).error(), None);
    assert_eq!(n.app[A].got.len(), 30_000);
    // TIME_WAIT lasts time_wait_ms (60 s).
    let tw = n.now_ms();
    n.run_for(59_000_000);
    assert_eq!(n.state(A), State::TimeWait);
    assert!(n.run_until(|n| n.state(A) == State::Closed, 2_000_000));
    let d = n.now_ms() - tw;
    assert!((59_980..=60_000).contains(&d), "TIME_WAIT {d} ms");
    for i in [A, B] {
        assert_eq!(n.mib(i, "tcpCurrEstab"), 0);
        assert!(n.app[i].events.closed);
        assert!(n.t(i).next_deadline().is_none());
    }
    assert_eq!(n.mib(A, "tcpEstabResets") + n.mib(B, "tcpEstabResets"), 0);
}

#[test]
fn orderly_close_server_first() {
    let mut n = established();
    n.app[B].out.extend(pattern(50_000, 2));
    n.app[B].shutdown_when_done = true;
    assert!(n.run_until(|n| n.state(A) == State::CloseWait && n.state(B) == State::FinWait2, 2_000_000));
    assert_eq!(n.app[A].got.len(), 60_000);
    assert_eq!(n.app[A].got[10_000..], pattern(50_000, 2)[..]);
    // A still sends (half-close), then closes.
    n.app[A].out.extend(pattern(30_000, 3));
    n.app[A].shutdown_when_done = true;
    assert!(n.run_until(|n| n.state(A) == State::Closed, 2_000_000));
    assert_eq!(n.state(B), State::TimeWait);
    assert_eq!(n.app[B].got.len(), 40_000);
    assert_eq!(n.app[B].got[10_000..], pattern(30_000, 3)[..]);
    assert!(n.run_until(|n| n.state(B) == State::Closed, 61_000_000));
    for i in [A, B] {
        assert_eq!(n.mib(i, "tcpCurrEstab"), 0);
    }
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut n = established();
    n.call(A, |t, ctx| t.shutdown_write(ctx));
    n.call(B, |t, ctx| t.shutdown_write(ctx));
    assert!(n.run_until(|n| n.state(A) == State::Closing && n.state(B) == State::Closing, 1_000_000));
    assert!(n.run_until(|n| n.state(A) == State::TimeWait && n.state(B) == State::TimeWait, 1_000_000));
    assert!(n.run_until(|n| n.state(A) == State::Closed && n.state(B) == State::Closed, 61_000_000));
    assert_eq!(n.mib(A, "tcpCurrEstab") + n.mib(B, "tcpCurrEstab"), 0);
}

#[test]
fn close_with_unread_data_sends_rst() {
    let mut n = established();
    n.app[A].reading = false;
    n.app[B].out.extend(pattern(1000, 1));
    assert!(n.run_until(|n| n.t(A).readable() == 1000, 1_000_000));
    n.call(A, |t, ctx| t.close(ctx));
    assert_eq!(n.state(A), State::Closed);
    let rst = n.last_from(A).clone();
    assert!(rst.has(TcpFlags::RST));
    assert_eq!(rst.seq, n.t(A).snd_max());
    assert!(n.run_until(|n| n.state(B) == State::Closed, 1_000_000));
    assert_eq!(n.t(B).error(), Some(NetError::ConnectionReset));
    assert_eq!(n.mib(B, "tcpEstabResets"), 1);
    assert_eq!(n.mib(A, "tcpCurrEstab") + n.mib(B, "tcpCurrEstab"), 0);
}

#[test]
fn data_to_an_orphan_resets() {
    let mut n = established();
    n.call(A, |t, ctx| t.close(ctx));
    assert!(n.run_until(|n| n.state(A) == State::FinWait2, 1_000_000));
    n.app[B].out.extend(pattern(1000, 1));
    assert!(n.run_until(|n| n.state(A) == State::Closed && n.state(B) == State::Closed, 1_000_000));
    assert_eq!(n.t(B).error(), Some(NetError::ConnectionReset));
}

#[test]
fn orphan_fin_wait_2_times_out() {
    let mut n = established();
    let c = n.t(A).mss();
    assert!(c > 0);
    n.call(A, |t, ctx| t.close(ctx));
    // B never closes.
    assert!(n.run_until(|n| n.state(A) == State::FinWait2, 1_000_000));
    let t0 = n.now_ms();
    assert!(n.run_until(|n| n.state(A) == State::Closed, 70_000_000));
    let d = n.now_ms() - t0;
    assert!((59_900..=60_100).contains(&d), "{d}");
}

#[test]
fn half_close_keeps_receiving() {
    let mut n = established();
    n.call(A, |t, ctx| t.shutdown_write(ctx));
    assert_eq!(n.call(A, |t, ctx| t.send(b"x", ctx)), Err(NetError::ShutDown));
    assert!(n.run_until(|n| n.state(A) == State::FinWait2, 1_000_000));
    n.app[B].out.extend(pattern(300_000, 6));
    assert!(n.run_until(|n| n.app[A].got.len() == 310_000, 10_000_000));
    assert_eq!(n.app[A].got[10_000..], pattern(300_000, 6)[..]);
    assert_eq!(n.state(A), State::FinWait2);
    assert_eq!(n.state(B), State::CloseWait);
    n.call(B, |t, ctx| t.close(ctx));
    assert!(n.run_until(|n| n.state(B) == State::Closed, 1_000_000));
    assert_eq!(n.state(A), State::TimeWait);
}

#[test]
fn abort_sends_rst() {
    let mut n = established();
    n.call(A, |t, ctx| t.abort(ctx));
    assert!(n.last_from(A).has(TcpFlags::RST));
    assert_eq!(n.t(A).error(), Some(NetError::ConnectionReset));
    assert!(n.run_until(|n| n.state(B) == State::Closed, 1_000_000));
    assert_eq!(n.t(B).error(), Some(NetError::ConnectionReset));
}

#[test]
fn shutdown_in_syn_rcvd_sends_fin_after_handshake() {
    let mut n = Net::new(1);
    n.connect(cfg(), cfg());
    // Deliver the SYN only: B is in SYN_RCVD.
    let syn = n.q.remove(0);
    n.now_us = syn.at_us;
    n.deliver(syn.to, &syn.bytes);
    assert_eq!(n.state(B), State::SynRcvd);
    n.call(B, |t, ctx| t.send(b"early", ctx)).expect("send");
    n.call(B, |t, ctx| t.shutdown_write(ctx));
    assert!(n.run_until(|n| n.app[A].got == b"early" && n.t(A).peer_closed(), 5_000_000));
    assert_eq!(n.state(A), State::CloseWait);
    assert!(n.run_until(|n| n.state(B) == State::FinWait2, 1_000_000));
    n.call(A, |t, ctx| t.close(ctx));
    assert!(n.run_until(|n| n.state(A) == State::Closed && n.state(B) == State::TimeWait, 1_000_000));
}

#[test]
fn fin_retransmitted_when_lost() {
    let mut n = established();
    n.filter = Some(Box::new(|from, s, _| from == A && s.has(TcpFlags::FIN) && !s.rexmit));
    n.call(A, |t, ctx| t.shutdown_write(ctx));
    assert!(n.run_until(|n| n.state(B) == State::CloseWait, 5_000_000));
    assert!(n.run_until(|n| n.state(A) == State::FinWait2, 1_000_000));
    assert_eq!(n.mib(A, "tcpTimRetrans"), 1);
}

#[test]
fn time_wait_answers_retransmitted_fin() {
    let mut n = established();
    n.call(A, |t, ctx| t.close(ctx));
    assert!(n.run_until(|n| n.state(B) == State::CloseWait, 1_000_000));
    // B's FIN; A's last ACK is lost, so B sends its FIN again.
    let mut dropped = false;
    n.filter = Some(Box::new(move |from, s, _| {
        if from == A && !dropped && s.flags == TcpFlags::ACK {
            dropped = true;
            return true;
        }
        false
    }));
    n.call(B, |t, ctx| t.close(ctx));
    assert!(n.run_until(|n| n.state(A) == State::TimeWait, 1_000_000));
    assert!(n.run_until(|n| n.state(B) == State::Closed, 5_000_000));
    assert_eq!(n.t(B).error(), None);
    assert_eq!(n.state(A), State::TimeWait);
}

// ---------------------------------------------------------------- urgent

#[test]
fn urgent_pointer() {
    let mut n = established();
    n.app[B].reading = false;
    n.call(A, |t, ctx| t.send(b"abc", ctx)).expect("send");
    n.call(A, |t, ctx| t.send_urgent(b'!', ctx)).expect("urgent");
    assert!(n.run_until(|n| n.t(B).readable() == 4, 1_000_000));
    let urg: Vec<&Rec> = n.log.iter().filter(|r| r.from == A && r.seg.has(TcpFlags::URG)).collect();
    assert!(!urg.is_empty());
    let s = &urg[0].seg;
    // The pointer is one past the urgent byte.
    assert_eq!(s.seq + usize::from(s.urgent), n.t(A).snd_max());
    // Urgent data is not held back by Nagle: "abc" is unacknowledged
    // when '!' goes.
    let abc = n.log.iter().position(|r| r.from == A && r.seg.data == b"abc").expect("abc");
    let bang = n.log.iter().position(|r| r.from == A && r.seg.data == b"!").expect("!");
    assert!(n.log[abc + 1..bang].iter().all(|r| r.from == A), "'!' went before any ACK");
    assert_eq!(s.data, b"!");
    assert_eq!(n.t(B).urgent(), (true, 1));
    assert_eq!(n.mib(A, "tcpOutUrg"), urg.len() as u64);
    let v = n.call(B, |t, ctx| t.recv_vec(100, ctx)).expect("recv");
    assert_eq!(v, b"abc!");
}

// ---------------------------------------------------------------- RTO

#[test]
fn rto_backs_off_and_aborts() {
    let c_abort = 60_000u64;
    let mut n = Net::new(2);
    n.establish(TcbConfig { abort_ms: c_abort, ..cfg() }, cfg());
    n.filter = Some(Box::new(|from, s, _| from == A && !s.data.is_empty()));
    n.call(A, |t, ctx| t.send(&[7; 1000], ctx)).expect("send");
    let t0 = n.now_us;
    assert!(n.run_until(|n| n.state(A) == State::Closed, 400_000_000));
    let times: Vec<u64> = n.log.iter().filter(|r| r.from == A && !r.seg.data.is_empty()).map(|r| (r.t_us - t0) / 1000).collect();
    // The RTO after a 20 ms RTT is 400 ms: 400, 800, 1600, ... (60 s at most).
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps[..6], [400, 800, 1600, 3200, 6400, 12_800]);
    assert!(gaps.iter().all(|&g| g <= 60_000));
    assert!(gaps.windows(2).all(|w| w[1] >= w[0]));
    assert_eq!(n.t(A).error(), Some(NetError::TimedOut));
    let total = (n.now_us - t0) / 1000;
    assert!((c_abort..=c_abort + 60_000).contains(&total), "aborted after {total} ms");
    assert_eq!(n.mib(A, "tcpTimRetransDrop"), 1);
    assert!(n.last_from(A).has(TcpFlags::RST));
    let mut buf = [0u8; 4];
    assert_eq!(n.call(A, |t, ctx| t.recv(&mut buf, ctx)), Err(NetError::TimedOut));
    assert!(n.run_until(|n| n.state(B) == State::Closed, 1_000_000));
    assert_eq!(n.mib(A, "tcpCurrEstab") + n.mib(B, "tcpCurrEstab"), 0);
}

#[test]
fn rto_recovers_when_the_path_returns() {
    let mut n = established();
    let mut cut = true;
    let flag = std::rc::Rc::new(std::cell::Cell::new(true));
    let f2 = flag.clone();
    n.filter = Some(Box::new(move |from, _, _| from == A && f2.get()));
    n.app[A].out.extend(pattern(50_000, 3));
    n.run_for(5_000_000);
    assert!(n.mib(A, "tcpTimRetrans") >= 3);
    flag.set(false);
    cut = !cut;
    assert!(!cut);
    assert!(n.run_until(|n| n.app[B].got.len() == 60_000, 30_000_000));
    assert_eq!(n.app[B].got[10_000..], pattern(50_000, 3)[..]);
    // Backoff reset by the new ACK: the RTO is back to its base.
    assert!(n.t(A).rtt().1 <= 1000);
}
