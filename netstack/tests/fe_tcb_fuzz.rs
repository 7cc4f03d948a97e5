//! FireEngine's TCB against random and malformed segments: every state
//! gets thousands of them (random flags, sequence and acknowledgment
//! numbers near and far from the windows, windows, data, options with
//! garbage SACK blocks and timestamps, raw option bytes through the wire
//! parser), mixed with timers and user calls. Nothing may panic, and
//! after every call the harness checks SND.UNA ≤ SND.NXT ≤ SND.MAX, the
//! send queue against the sequence space, and that the window the TCB
//! advertises never moves its right edge left.

mod fe_tcb_net;
mod rng;

use arbalest_netstack::fireengine::tcp::config::TcbConfig;
use arbalest_netstack::fireengine::tcp::segment::SegIn;
use arbalest_netstack::fireengine::tcp::seq::SeqNum;
use arbalest_netstack::fireengine::tcp::state::State;
use arbalest_netstack::fireengine::wire::tcp::{SackBlock, SackBlocks, TcpFlags, TcpHeader, TcpOptions, Timestamps};
use fe_tcb_net::*;
use rng::Rng;

/// A conn in `want` on the returned side (segments still on the link are
/// dropped).
fn setup(want: State, c: TcbConfig, seed: u64) -> (Net, usize) {
    let mut n = Net::new(seed);
    match want {
        State::SynSent => {
            n.connect(c, c);
            n.q.clear();
            return (n, A);
        }
        State::SynRcvd => {
            n.connect(c, c);
            let syn = n.q.remove(0);
            n.deliver(syn.to, &syn.bytes);
            n.q.clear();
            return (n, B);
        }
        _ => {}
    }
    n.establish(c, c);
    n.app[A].out = pattern(20_000, 1);
    n.app[B].out = pattern(20_000, 2);
    assert!(n.run_until(|n| n.app[A].got.len() == 20_000 && n.app[B].got.len() == 20_000, 10_000_000));
    // Some data in flight on A.
    n.call(A, |t, ctx| t.send(&pattern(30_000, 3), ctx)).expect("send");
    let side = match want {
        State::Established => A,
        State::FinWait1 => {
            n.call(A, |t, ctx| t.shutdown_write(ctx));
            A
        }
        State::FinWait2 => {
            n.call(A, |t, ctx| t.shutdown_write(ctx));
            assert!(n.run_until(|n| n.state(A) == State::FinWait2, 5_000_000));
            A
        }
        State::CloseWait => {
            n.call(A, |t, ctx| t.shutdown_write(ctx));
            assert!(n.run_until(|n| n.state(B) == State::CloseWait, 5_000_000));
            n.call(B, |t, ctx| t.send(&pattern(30_000, 4), ctx)).expect("send");
            B
        }
        State::LastAck => {
            n.call(A, |t, ctx| t.shutdown_write(ctx));
            assert!(n.run_until(|n| n.state(B) == State::CloseWait, 5_000_000));
            n.call(B, |t, ctx| t.send(&pattern(3000, 4), ctx)).expect("send");
            n.call(B, |t, ctx| t.shutdown_write(ctx));
            B
        }
        State::Closing => {
            n.flush_link();
            n.call(A, |t, ctx| t.shutdown_write(ctx));
            n.call(B, |t, ctx| t.shutdown_write(ctx));
            assert!(n.run_until(|n| n.state(A) == State::Closing, 5_000_000));
            A
        }
        State::TimeWait => {
            n.call(A, |t, ctx| t.shutdown_write(ctx));
            n.call(B, |t, ctx| t.shutdown_write(ctx));
            assert!(n.run_until(|n| n.state(A) == State::TimeWait, 5_000_000));
            A
        }
        s => panic!("no setup for {s}"),
    };
    assert_eq!(n.state(side), want);
    n.q.clear();
    (n, side)
}

fn near(r: &mut Rng, base: SeqNum) -> SeqNum {
    match r.below(6) {
        0 => SeqNum(r.next() as u32),
        1 => base - r.below(70_000),
        2 => base + r.below(200_000),
        3 => base + (1usize << 31),
        _ => base + r.below(3000) - 1000,
    }
}

fn random_opts(r: &mut Rng, n: &Net, side: usize) -> TcpOptions {
    let t = n.t(side);
    let mut o = TcpOptions::new();
    if r.below(8) == 0 {
        o.mss = Some(r.next() as u16);
    }
    if r.below(8) == 0 {
        o.window_scale = Some(r.below(40) as u8);
    }
    o.sack_permitted = r.below(8) == 0;
    if r.below(4) != 0 {
        let last = n.log.iter().rev().find(|x| x.from != side).and_then(|x| x.seg.opts.timestamps);
        let base = last.map_or(r.next() as u32, |ts| ts.tsval);
        let tsval = match r.below(4) {
            0 => r.next() as u32,
            1 => base.wrapping_sub(r.below(10_000) as u32),
            _ => base.wrapping_add(r.below(1000) as u32),
        };
        let tsecr = if r.below(3) == 0 { r.next() as u32 } else { 0 };
        o.timestamps = Some(Timestamps { tsval, tsecr });
    }
    if r.below(2) == 0 {
        let (_, una) = t.snd_seq();
        let max = t.snd_max();
        let mut blocks = Vec::new();
        for _ in 0..r.below(5) {
            let left = match r.below(3) {
                0 => r.next() as u32,
                1 => (una + r.below(40_000)).0,
                _ => (una - r.below(5000)).0,
            };
            let right = match r.below(4) {
                0 => r.next() as u32,
                1 => left.wrapping_add(r.below(5000) as u32),
                2 => max.0.wrapping_add(r.below(3) as u32),
                _ => left.wrapping_sub(r.below(100) as u32),
            };
            blocks.push(SackBlock { left, right });
        }
        o.sack_blocks = SackBlocks::from_slice(&blocks);
    }
    o
}

fn random_segment(r: &mut Rng, n: &Net, side: usize) -> (SegIn<'static>, Vec<u8>) {
    let t = n.t(side);
    let flags = match r.below(4) {
        0 => TcpFlags(r.next() as u8),
        1 => TcpFlags::ACK,
        2 => TcpFlags::ACK | TcpFlags(r.next() as u8 & 0x2f),
        _ => TcpFlags(TcpFlags::ACK.0 | [0, 1, 2, 4, 8, 32][r.below(6)]),
    };
    let seq = near(r, t.rcv_nxt());
    let ack_base = if r.below(2) == 0 { t.snd_seq().1 } else { t.snd_max() };
    let ack = near(r, ack_base);
    let len = match r.below(4) {
        0 => 0,
        1 => r.below(10),
        2 => r.below(1500),
        _ => r.below(70_000),
    };
    let data = r.bytes(len);
    let opts = random_opts(r, n, side);
    let wnd = if r.below(5) == 0 { 0 } else { r.next() as u16 };
    let urgent = r.next() as u16;
    let seg = SegIn {
        seq,
        ack,
        flags,
        wnd,
        urgent,
        opts,
        data: &[],
    };
    (seg, data)
}

/// Raw wire bytes with a random options area, through the real parser.
fn raw_segment(r: &mut Rng, n: &Net, side: usize) -> Vec<u8> {
    let t = n.t(side);
    let olen = r.below(11) * 4;
    let dlen = r.below(200);
    let mut b = vec![0u8; 20 + olen + dlen];
    let seq = near(r, t.rcv_nxt()).0;
    let ack = near(r, t.snd_seq().1).0;
    let flags = TcpFlags(r.next() as u8 | 0x10);
    let h = TcpHeader::new(PORTS[1 - side], PORTS[side], seq, ack, flags, r.next() as u16);
    h.emit(&mut b[..], IPS[1 - side], IPS[side]).expect("emit");
    b[12] = ((20 + olen) / 4 << 4) as u8;
    for x in &mut b[20..] {
        *x = match r.below(6) {
            0 => 5,
            1 => 8,
            2 => 10,
            3 => 1,
            _ => r.next() as u8,
        };
    }
    b
}

fn fuzz_state(want: State, c: TcbConfig, seed: u64, rounds: usize) -> [u64; 4] {
    let mut r = Rng(seed);
    let mut seen = [0u64; 4];
    let mut made = 0;
    let mut k = 0;
    while k < rounds {
        let (mut n, side) = setup(want, c, seed + made);
        made += 1;
        for _ in 0..300 {
            k += 1;
            match r.below(20) {
                0 => {
                    // Time passes; timers run.
                    n.now_us += r.below(3_000_000) as u64;
                    if n.t(side).next_deadline().is_some_and(|d| d * 1000 <= n.now_us) {
                        n.call(side, |t, ctx| t.on_timer(ctx));
                    }
                }
                1 => {
                    let len = r.below(5000);
                    let v = r.bytes(len);
                    let _ = n.call(side, |t, ctx| t.send(&v, ctx));
                }
                2 => {
                    let max = r.below(10_000);
                    let _ = n.call(side, |t, ctx| t.recv_vec(max, ctx));
                }
                3 => {
                    let _ = n.t(side);
                    let v = n.tcb[side].as_mut().expect("tcb").take_received();
                    let back = r.below(v.len() + 2);
                    n.call(side, |t, ctx| t.consumed(back, ctx));
                }
                4 if r.below(10) == 0 => n.call(side, |t, ctx| t.shutdown_write(ctx)),
                5 => {
                    let b = raw_segment(&mut r, &n, side);
                    if let Ok((h, d)) = TcpHeader::parse(&b, IPS[1 - side], IPS[side], false) {
                        let seg = SegIn::from_header(&h, d);
                        n.call(side, |t, ctx| t.input(&seg, ctx));
                    }
                }
                6 if r.below(20) == 0 => {
                    let _ = n.call(side, |t, ctx| t.send_urgent(7, ctx));
                }
                _ => {
                    let (seg, data) = random_segment(&mut r, &n, side);
                    let seg = SegIn { data: &data, ..seg };
                    n.call(side, |t, ctx| t.input(&seg, ctx));
                }
            }
            n.q.clear();
            let _ = n.t(side).next_deadline();
            let _ = n.tcb[side].as_mut().expect("tcb").take_acked();
            if n.state(side) == State::Closed {
                break;
            }
        }
        for (i, c) in ["tcpOutChallengeAcks", "tcpInAckSegs", "tcpInPawsDrops", "tcpInUnorderSegs"].iter().enumerate() {
            seen[i] += n.mib(side, c);
        }
    }
    seen
}

const ROUNDS: usize = 4000;

#[test]
fn fuzz_syn_sent() {
    let _ = fuzz_state(State::SynSent, cfg(), 101, ROUNDS);
}

#[test]
fn fuzz_syn_rcvd() {
    let _ = fuzz_state(State::SynRcvd, cfg(), 102, ROUNDS);
}

#[test]
fn fuzz_established() {
    let seen = fuzz_state(State::Established, cfg(), 103, ROUNDS * 3);
    // The segments reached every part of input.
    assert!(seen.iter().all(|&x| x > 0), "{seen:?}");
    let c = TcbConfig { sack_accept: false, sack_offer: false, tstamp: false, ..cfg() };
    let _ = fuzz_state(State::Established, c, 104, ROUNDS);
}

#[test]
fn fuzz_fin_wait_1() {
    let _ = fuzz_state(State::FinWait1, cfg(), 105, ROUNDS);
}

#[test]
fn fuzz_fin_wait_2() {
    let _ = fuzz_state(State::FinWait2, cfg(), 106, ROUNDS);
}

#[test]
fn fuzz_close_wait() {
    let _ = fuzz_state(State::CloseWait, cfg(), 107, ROUNDS);
}

#[test]
fn fuzz_last_ack() {
    let _ = fuzz_state(State::LastAck, cfg(), 108, ROUNDS);
}

#[test]
fn fuzz_closing() {
    let _ = fuzz_state(State::Closing, cfg(), 109, ROUNDS);
}

#[test]
fn fuzz_time_wait() {
    let _ = fuzz_state(State::TimeWait, cfg(), 110, ROUNDS);
}

/// Random traffic from a live peer plus random garbage: the real
/// connection keeps its invariants and still delivers byte-exact.
#[test]
fn fuzz_live_transfer_with_garbage() {
    let mut n = Net::new(55);
    n.establish(cfg(), cfg());
    n.loss_ppm = 20_000;
    n.app[A].out = pattern(500_000, 9);
    n.app[A].shutdown_when_done = true;
    let mut r = Rng(56);
    let t0 = n.now_us;
    while !(n.app[B].got.len() == 500_000 && n.t(B).peer_closed()) && n.now_us - t0 < 120_000_000 {
        n.run_for(5_000);
        // Garbage far outside the windows only (in-window garbage would
        // rightly change the stream).
        for side in [A, B] {
            let (mut seg, data) = random_segment(&mut r, &n, side);
            seg.seq = n.t(side).rcv_nxt() + (1usize << 30) + r.below(1000);
            seg.flags = seg.flags.without(TcpFlags::RST).without(TcpFlags::SYN);
            let seg = SegIn { data: &data, ..seg };
            n.call(side, |t, ctx| t.input(&seg, ctx));
        }
    }
    assert_eq!(n.app[B].got.len(), 500_000);
    assert!(n.app[B].got == pattern(500_000, 9));
}
