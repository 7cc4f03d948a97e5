//! FireEngine's TCP connection building blocks (`fireengine::tcp_conn`):
//! the out-of-order receive queue (any arrival order, duplicates,
//! overlaps, sequence wrap, the FIN cases of the xarxa audit), RFC 6528
//! ISNs, SYN cookies (slots, bit flips, a million forgeries) and the
//! listener's q0/q with illumos' drop policy and SYN defense.

#![allow(deprecated)] // std's SipHasher: SipHash-2-4, the independent check of F().

mod rng;

use std::collections::HashSet;
use std::hash::{Hasher, SipHasher};
use std::net::{IpAddr, Ipv4Addr};

use arbalest_netstack::fireengine::tcp_conn::isn::IsnGenerator;
use arbalest_netstack::fireengine::tcp_conn::listen_q::{
    listen_backlog, EagerId, Established, ListenConfig, ListenDrop, ListenQueue, SynDecision, TCP_CONN_REQ_MAX_Q,
    TCP_CONN_REQ_MAX_Q0,
};
use arbalest_netstack::fireengine::tcp_conn::rcv_reass::{
    FinNote, RcvOutcome, RcvReass, RcvReassConfig, RcvRefusal,
};
use arbalest_netstack::fireengine::tcp_conn::syncookie::{
    mss_index, CookieError, SynCookieConfig, SynCookieOpts, SynCookies, SYNCOOKIE_MSS, SYNCOOKIE_SLOT_MS,
};
use arbalest_netstack::fireengine::tcp_conn::tuple::FourTuple;
use rng::Rng;

// ---------------------------------------------------------------- rcv_reass

const BIG: u32 = 1 << 20;

fn big() -> RcvReass {
    RcvReass::new(RcvReassConfig { max_bytes: 1 << 22, max_ranges: 1 << 16 })
}

/// Takes everything in order from `*nxt`, appending to `out`; true if the
/// FIN came.
fn drain(q: &mut RcvReass, nxt: &mut u32, out: &mut Vec<u8>) -> bool {
    let mut fin = false;
    while let Some(got) = q.take_in_order(*nxt) {
        out.extend_from_slice(&got.data);
        *nxt = got.rcv_nxt;
        fin |= got.fin;
        if got.fin {
            break;
        }
    }
    fin
}

#[test]
fn in_order_segment_comes_straight_out() {
    let mut q = big();
    let r = q.insert(1000, b"hello", false, 1000, BIG);
    assert_eq!(r.outcome, RcvOutcome::Taken);
    assert!(r.in_order && r.ready);
    let got = q.take_in_order(1000).unwrap();
    assert_eq!((got.data.as_slice(), got.fin, got.rcv_nxt), (&b"hello"[..], false, 1005));
    assert!(q.take_in_order(1005).is_none());
    assert_eq!((q.stats().in_inorder_segs, q.stats().in_inorder_bytes), (1, 5));
    assert_eq!(q.held_bytes(), 0);
}

#[test]
fn out_of_order_then_hole_filled() {
    let mut q = big();
    let r = q.insert(110, b"0123456789", false, 100, BIG);
    assert_eq!(r.outcome, RcvOutcome::Taken);
    assert!(!r.in_order && !r.ready);
    assert!(q.take_in_order(100).is_none());
    assert_eq!(q.ranges().collect::<Vec<_>>(), vec![(110, 120)]);
    let r = q.insert(100, b"abcdefghij", false, 100, BIG);
    assert!(r.ready);
    let got = q.take_in_order(100).unwrap();
    assert_eq!(got.data, b"abcdefghij0123456789");
    assert_eq!(got.rcv_nxt, 120);
    let s = q.stats();
    assert_eq!((s.in_unorder_segs, s.in_unorder_bytes, s.in_inorder_segs, s.in_inorder_bytes), (1, 10, 1, 10));
    assert_eq!(q.range_count(), 0);
}

#[test]
fn duplicates_and_partial_duplicates_are_counted() {
    let mut q = big();
    q.insert(10, b"abcd", false, 0, BIG);
    let r = q.insert(10, b"abcd", false, 0, BIG);
    assert_eq!((r.outcome, r.dup_bytes, r.new_bytes), (RcvOutcome::Duplicate, 4, 0));
    let r = q.insert(12, b"cdef", false, 0, BIG);
    assert_eq!((r.outcome, r.dup_bytes, r.new_bytes), (RcvOutcome::Taken, 2, 2));
    // Old data, before RCV.NXT.
    let r = q.insert(u32::MAX - 2, b"xyz", false, 0, BIG);
    assert_eq!((r.outcome, r.dup_bytes), (RcvOutcome::Duplicate, 3));
    let s = q.stats();
    assert_eq!((s.in_dup_segs, s.in_dup_bytes), (2, 7));
    assert_eq!((s.in_part_dup_segs, s.in_part_dup_bytes), (1, 2));
}

#[test]
fn first_received_bytes_win() {
    let mut q = big();
    q.insert(5, &[b'A'; 10], false, 0, BIG); // 5..15
    let r = q.insert(0, &[b'B'; 20], false, 0, BIG); // 0..20 over it
    assert_eq!((r.new_bytes, r.dup_bytes), (10, 10));
    let got = q.take_in_order(0).unwrap();
    let mut want = vec![b'B'; 5];
    want.extend([b'A'; 10]);
    want.extend([b'B'; 5]);
    assert_eq!(got.data, want);
}

#[test]
fn bytes_past_the_window_are_trimmed_with_the_fin() {
    // xarxa audit 003: a FIN after trimmed bytes must not be taken.
    let mut q = big();
    let r = q.insert(0, &[7u8; 70], true, 0, 64);
    assert_eq!((r.new_bytes, r.past_window_bytes, r.fin), (64, 6, FinNote::Dropped));
    let got = q.take_in_order(0).unwrap();
    assert_eq!((got.data.len(), got.fin, got.rcv_nxt), (64, false, 64));
    assert_eq!(q.fin_seq(), None);
    let s = q.stats();
    assert_eq!((s.in_past_win_segs, s.in_past_win_bytes, s.fin_dropped), (1, 6, 1));
    // Wholly past the window.
    let r = q.insert(200, b"zz", false, 64, 100);
    assert_eq!(r.outcome, RcvOutcome::PastWindow);
    // A FIN exactly at the right edge is outside the window; one inside is taken.
    assert_eq!(q.insert(64, &[1u8; 10], true, 64, 10).fin, FinNote::Dropped);
    assert_eq!(q.insert(74, b"", true, 64, 11).fin, FinNote::Taken);
    // A zero window takes no FIN.
    let mut z = big();
    let r = z.insert(0, b"", true, 0, 0);
    assert_eq!((r.outcome, r.fin), (RcvOutcome::PastWindow, FinNote::Dropped));
}

#[test]
fn out_of_order_fin_is_remembered() {
    // xarxa audit 081: the FIN on a segment above a hole is kept.
    let mut q = big();
    let r = q.insert(104, b"efgh", true, 100, BIG);
    assert_eq!(r.fin, FinNote::Taken);
    assert_eq!(q.fin_seq(), Some(108));
    q.insert(100, b"abcd", false, 100, BIG);
    let got = q.take_in_order(100).unwrap();
    assert_eq!((got.data.as_slice(), got.fin, got.rcv_nxt), (&b"abcdefgh"[..], true, 109));
    // The whole last segment again: a duplicate, FIN included.
    let r = q.insert(104, b"efgh", true, 109, BIG);
    assert_eq!((r.outcome, r.fin), (RcvOutcome::Duplicate, FinNote::Duplicate));
    // A bare FIN again.
    assert_eq!(q.insert(108, b"", true, 109, BIG).outcome, RcvOutcome::Duplicate);
    // Nothing past the FIN is taken.
    let r = q.insert(109, b"late", false, 109, BIG);
    assert_eq!((r.outcome, r.past_fin_bytes), (RcvOutcome::Refused(RcvRefusal::PastFin), 4));
}

#[test]
fn fin_before_held_bytes_is_refused_and_bytes_past_a_fin_too() {
    // xarxa audit 270: held bytes past a FIN's place win over the FIN.
    let mut q = big();
    q.insert(4, b"EFGHIJKLMNOP", false, 0, BIG); // 4..16
    let r = q.insert(0, b"abcdefghijkl", true, 0, BIG); // 0..12 + FIN at 12
    assert_eq!(r.fin, FinNote::Dropped);
    let got = q.take_in_order(0).unwrap();
    assert_eq!((got.data.as_slice(), got.fin), (&b"abcdEFGHIJKLMNOP"[..], false));
    // Once a FIN is known, bytes past it are refused, bytes before it taken.
    let mut q = big();
    q.insert(0, b"0123456789ab", true, 0, BIG); // FIN at 12
    let r = q.insert(10, b"ABCDEFGHIJ", false, 12, BIG); // 10..20
    assert_eq!((r.dup_bytes, r.new_bytes, r.past_fin_bytes), (2, 0, 8));
    assert_eq!(r.outcome, RcvOutcome::Refused(RcvRefusal::PastFin));
    // A second FIN somewhere else is a conflict.
    let mut q = big();
    q.insert(20, b"", true, 0, BIG);
    let r = q.insert(5, b"xy", true, 0, BIG);
    assert_eq!((r.outcome, r.fin), (RcvOutcome::Taken, FinNote::Dropped));
    let r = q.insert(30, b"", true, 0, BIG);
    assert_eq!(r.outcome, RcvOutcome::Refused(RcvRefusal::FinConflict));
    assert_eq!(q.fin_seq(), Some(20));
}

#[test]
fn old_bytes_with_a_new_fin_deliver_the_fin() {
    // xarxa audit 266: a retransmitted data+FIN whose bytes are all old
    // still carries a new FIN.
    let mut q = big();
    let r = q.insert(500, b"abcdefgh", true, 508, BIG);
    assert_eq!((r.outcome, r.dup_bytes, r.fin, r.ready), (RcvOutcome::Taken, 8, FinNote::Taken, true));
    let got = q.take_in_order(508).unwrap();
    assert_eq!((got.data.len(), got.fin, got.rcv_nxt), (0, true, 509));
}

#[test]
fn caller_fast_path_overtaking_held_bytes() {
    let mut q = big();
    q.insert(10, b"0123456789", false, 0, BIG); // 10..20
    // The caller took 0..15 itself: only 15..20 is left.
    let got = q.take_in_order(15).unwrap();
    assert_eq!((got.data.as_slice(), got.rcv_nxt), (&b"56789"[..], 20));
    assert_eq!(q.held_bytes(), 0);
}

#[test]
fn take_at_most_max_bytes() {
    let mut q = big();
    q.insert(0, b"abcdefghij", true, 0, BIG);
    let a = q.take_in_order_max(0, 4).unwrap();
    assert_eq!((a.data.as_slice(), a.fin, a.rcv_nxt), (&b"abcd"[..], false, 4));
    assert!(q.take_in_order_max(4, 0).is_none());
    let b = q.take_in_order_max(4, 100).unwrap();
    assert_eq!((b.data.as_slice(), b.fin, b.rcv_nxt), (&b"efghij"[..], true, 11));
}

#[test]
fn range_and_byte_caps_refuse_out_of_order_but_never_in_order() {
    let mut q = RcvReass::new(RcvReassConfig { max_bytes: 100, max_ranges: 3 });
    for i in 1..=3u32 {
        assert_eq!(q.insert(i * 10, b"xx", false, 0, BIG).outcome, RcvOutcome::Taken);
    }
    let r = q.insert(50, b"yy", false, 0, BIG);
    assert_eq!((r.outcome, r.new_bytes), (RcvOutcome::Refused(RcvRefusal::Ranges), 0));
    // Joining an existing range adds none.
    assert_eq!(q.insert(12, b"zz", false, 0, BIG).outcome, RcvOutcome::Taken);
    // In-order bytes go past the range cap: they come out at once.
    assert_eq!(q.insert(0, b"abc", false, 0, BIG).outcome, RcvOutcome::Taken);
    assert_eq!(q.range_count(), 4);
    assert_eq!(q.take_in_order(0).unwrap().data, b"abc");
    // 8 held: 93 more out of order would pass 100 bytes (and 3 ranges).
    let r = q.insert(100, &[0u8; 93], false, 3, BIG);
    assert_eq!(r.outcome, RcvOutcome::Refused(RcvRefusal::Bytes));
    let mut q = RcvReass::new(RcvReassConfig { max_bytes: 100, max_ranges: 10 });
    q.insert(10, &[0u8; 60], false, 0, BIG);
    let r = q.insert(80, &[0u8; 41], true, 0, BIG);
    assert_eq!((r.outcome, r.fin), (RcvOutcome::Refused(RcvRefusal::Bytes), FinNote::Dropped));
    // Bytes from RCV.NXT on are taken past the cap.
    assert_eq!(q.insert(0, &[0u8; 120], false, 0, BIG).outcome, RcvOutcome::Taken);
    assert_eq!(q.held_bytes(), 120);
    let s = q.stats();
    assert_eq!((s.refused_segs, s.refused_bytes), (1, 41));
}

#[test]
fn sack_blocks_most_recent_first() {
    let mut q = big();
    q.insert(10, b"aa", false, 0, BIG); // 10..12
    q.insert(30, b"bb", false, 0, BIG); // 30..32
    q.insert(20, b"cc", false, 0, BIG); // 20..22, latest
    assert_eq!(q.sack_blocks(0, 4), vec![(20, 22), (30, 32), (10, 12)]);
    assert_eq!(q.sack_blocks(0, 2), vec![(20, 22), (30, 32)]);
    q.insert(32, b"dd", false, 0, BIG); // grows 30..34
    assert_eq!(q.sack_blocks(0, 1), vec![(30, 34)]);
    assert_eq!(q.ranges().collect::<Vec<_>>(), vec![(10, 12), (20, 22), (30, 34)]);
    // A range at RCV.NXT is covered by the cumulative ACK, not SACKed.
    q.insert(0, b"zz", false, 0, BIG);
    assert_eq!(q.sack_blocks(0, 4).len(), 3);
}

#[test]
fn wrap_around_rcv_nxt() {
    let isn = u32::MAX - 5;
    let mut q = big();
    // Bytes 4..12 of the stream straddle 0.
    q.insert(isn.wrapping_add(4), b"EFGHIJKL", false, isn, BIG);
    assert_eq!(q.ranges().collect::<Vec<_>>(), vec![(isn.wrapping_add(4), 6)]);
    q.insert(isn.wrapping_add(12), b"MN", true, isn, BIG);
    q.insert(isn, b"ABCD", false, isn, BIG);
    let got = q.take_in_order(isn).unwrap();
    assert_eq!((got.data.as_slice(), got.fin, got.rcv_nxt), (&b"ABCDEFGHIJKLMN"[..], true, 9));
    // 2^31 away is behind, never new data (xarxa audit 325).
    let mut q = big();
    let r = q.insert(0x8000_0000, b"x", false, 0, BIG);
    assert_eq!(r.outcome, RcvOutcome::Duplicate);
}

/// Random segments (overlapping, repeated) of `stream`, sent in random
/// order round after round until it has all come out; the output must be
/// the stream, then the FIN.
fn reassemble(rng: &mut Rng, stream: &[u8], isn: u32, wnd: u32, take_max: usize) -> (Vec<u8>, RcvReass) {
    let mut segs: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let len = 1 + rng.below(300).min(stream.len() - at - 1);
        segs.push((at, at + len));
        // Overlapping extras: straddling, shifted, repeated.
        if rng.below(3) == 0 {
            let s = at.saturating_sub(rng.below(200));
            let e = (at + len + rng.below(200)).min(stream.len());
            segs.push((s, e));
        }
        if rng.below(5) == 0 {
            segs.push((at, at + len));
        }
        at += len;
    }
    let mut q = big();
    let mut nxt = isn;
    let mut out = Vec::new();
    let mut fin = false;
    for _round in 0..10_000 {
        rng.shuffle(&mut segs);
        for &(s, e) in &segs {
            let last = e == stream.len();
            q.insert(isn.wrapping_add(s as u32), &stream[s..e], last, nxt, wnd);
            while let Some(got) = q.take_in_order_max(nxt, take_max) {
                out.extend_from_slice(&got.data);
                nxt = got.rcv_nxt;
                fin |= got.fin;
            }
        }
        if fin {
            break;
        }
    }
    assert!(fin, "FIN never came out");
    assert_eq!(nxt, isn.wrapping_add(stream.len() as u32 + 1));
    (out, q)
}

#[test]
fn randomized_orders_reassemble_the_stream() {
    let mut rng = Rng(0x7c9e_1d2f_3a4b_5c6d);
    for case in 0..120 {
        let len = 1 + rng.below(6000);
        let stream = rng.bytes(len);
        // ISNs around the wrap on a third of the cases.
        let isn = match case % 3 {
            0 => (u32::MAX - rng.below(len + 10) as u32).wrapping_add(1),
            1 => rng.next() as u32,
            _ => 0x7fff_fff0,
        };
        let wnd = if case % 2 == 0 { BIG } else { 256 + rng.below(2048) as u32 };
        let take_max = if case % 4 == 3 { 1 + rng.below(700) } else { usize::MAX };
        let (out, q) = reassemble(&mut rng, &stream, isn, wnd, take_max);
        assert_eq!(out, stream, "case {case}");
        assert_eq!((q.held_bytes(), q.range_count()), (0, 0));
        let s = q.stats();
        assert_eq!(s.in_inorder_bytes + s.in_unorder_bytes, len as u64, "case {case}: each byte new once");
    }
}

#[test]
fn randomized_conflicting_retransmissions_keep_the_first_bytes() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _case in 0..60 {
        let len = 50 + rng.below(3000);
        let isn = rng.next() as u32;
        // Each segment its own random contents; the first to cover a byte wins.
        let mut first: Vec<Option<u8>> = vec![None; len];
        let mut q = big();
        let mut nxt = isn;
        let mut out = Vec::new();
        while out.len() < len {
            let s = rng.below(len);
            let e = (s + 1 + rng.below(200)).min(len);
            let bytes = rng.bytes(e - s);
            let delivered = nxt.wrapping_sub(isn) as usize;
            for (i, b) in (s..e).zip(&bytes) {
                if i >= delivered && first[i].is_none() {
                    first[i] = Some(*b);
                }
            }
            q.insert(isn.wrapping_add(s as u32), &bytes, false, nxt, BIG);
            drain(&mut q, &mut nxt, &mut out);
        }
        let want: Vec<u8> = first.iter().map(|b| b.unwrap()).collect();
        assert_eq!(out, want);
    }
}

#[test]
fn randomized_garbage_never_breaks_the_queue() {
    let mut rng = Rng(0x0bad_cafe_f00d_0001);
    let mut q = RcvReass::new(RcvReassConfig { max_bytes: 3000, max_ranges: 6 });
    let mut nxt: u32 = rng.next() as u32;
    for _ in 0..40_000 {
        let seq = match rng.below(4) {
            0 => rng.next() as u32,
            _ => nxt.wrapping_add(rng.below(5000) as u32).wrapping_sub(500),
        };
        let data = rng.some_bytes(700);
        let wnd = match rng.below(5) {
            0 => 0,
            1 => u32::MAX,
            _ => rng.below(5000) as u32,
        };
        let r = q.insert(seq, &data, rng.below(8) == 0, nxt, wnd);
        assert!(r.new_bytes + r.dup_bytes + r.past_window_bytes + r.past_fin_bytes <= data.len());
        match rng.below(6) {
            0 => nxt = nxt.wrapping_add(rng.below(300) as u32),
            1 => {
                if let Some(got) = q.take_in_order_max(nxt, rng.below(2000)) {
                    nxt = got.rcv_nxt;
                }
            }
            2 if rng.below(50) == 0 => q.clear(),
            _ => {}
        }
        // Invariants: sorted, disjoint, not adjacent, bytes add up.
        let ranges: Vec<(u32, u32)> = q.ranges().collect();
        let total: usize = ranges.iter().map(|(s, e)| e.wrapping_sub(*s) as usize).sum();
        assert_eq!(total, q.held_bytes());
        assert!(q.range_count() <= 6 + 1);
        for w in ranges.windows(2) {
            assert!((w[1].0.wrapping_sub(w[0].1) as i32) > 0, "{ranges:?}");
        }
        let _ = q.sack_blocks(nxt, 4);
    }
}

// ---------------------------------------------------------------------- isn

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn tuple(l: [u8; 4], lp: u16, r: [u8; 4], rp: u16) -> FourTuple {
    FourTuple::new(v4(l), lp, v4(r), rp)
}

const KEY: [u8; 16] = [0x42, 7, 99, 1, 0, 255, 13, 64, 200, 5, 5, 5, 17, 38, 91, 120];

fn std_siphash(key: &[u8; 16], msg: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().unwrap());
    let k1 = u64::from_le_bytes(key[8..].try_into().unwrap());
    let mut h = SipHasher::new_with_keys(k0, k1);
    h.write(msg);
    h.finish()
}

#[test]
fn isn_offset_is_siphash_of_the_tuple() {
    let g = IsnGenerator::new(KEY);
    let t = tuple([10, 0, 0, 1], 80, [192, 168, 7, 9], 40_001);
    let mut msg = vec![4, 10, 0, 0, 1];
    msg.extend(80u16.to_be_bytes());
    msg.extend([4, 192, 168, 7, 9]);
    msg.extend(40_001u16.to_be_bytes());
    assert_eq!(g.offset(&t), std_siphash(&KEY, &msg) as u32);
    assert_eq!(g.isn(&t, 0), g.offset(&t));
    assert_eq!(g.isn(&t, 3), g.offset(&t));
    // IPv6 tuples hash their 16 octets.
    let a6: IpAddr = "2001:db8::1".parse().unwrap();
    let b6: IpAddr = "fe80::99".parse().unwrap();
    let t6 = FourTuple::new(a6, 443, b6, 5555);
    let mut msg = vec![6];
    if let IpAddr::V6(a) = a6 {
        msg.extend(a.octets());
    }
    msg.extend(443u16.to_be_bytes());
    msg.push(6);
    if let IpAddr::V6(b) = b6 {
        msg.extend(b.octets());
    }
    msg.extend(5555u16.to_be_bytes());
    assert_eq!(g.offset(&t6), std_siphash(&KEY, &msg) as u32);
}

#[test]
fn isn_clock_ticks_every_4_us_and_wraps() {
    let g = IsnGenerator::new(KEY);
    let t = tuple([10, 0, 0, 1], 22, [10, 0, 0, 2], 50_000);
    let base = 123_456_789u64;
    let i0 = g.isn(&t, base);
    assert_eq!(g.isn(&t, base + 4).wrapping_sub(i0), 1);
    assert_eq!(g.isn(&t, base + 1_000_000).wrapping_sub(i0), 250_000);
    assert_eq!(g.isn(&t, base + 4 * (1u64 << 32)), i0);
    // Later connections on one tuple start later in sequence space.
    let mut prev = g.isn(&t, 0);
    for k in 1..1000u64 {
        let now = g.isn(&t, k * 10_000);
        assert_eq!(now.wrapping_sub(prev), 2500);
        prev = now;
    }
    let _ = g.isn(&t, u64::MAX);
}

#[test]
fn isn_depends_on_tuple_and_key() {
    let g = IsnGenerator::new(KEY);
    let mut other_key = KEY;
    other_key[0] ^= 1;
    let h = IsnGenerator::new(other_key);
    let mut seen = HashSet::new();
    let mut differ = 0;
    for p in 0..2000u16 {
        let t = tuple([10, 0, 0, 1], 80, [172, 16, 0, 3], 30_000 + p);
        seen.insert(g.offset(&t));
        differ += usize::from(g.offset(&t) != h.offset(&t));
    }
    assert!(seen.len() >= 1999, "offsets of neighbouring ports collide: {}", seen.len());
    assert!(differ >= 1999);
    // Swapping the ends changes it too.
    let a = tuple([1, 2, 3, 4], 1000, [5, 6, 7, 8], 2000);
    let b = tuple([5, 6, 7, 8], 2000, [1, 2, 3, 4], 1000);
    assert_ne!(g.offset(&a), g.offset(&b));
    assert!(!format!("{g:?}").contains("66"), "Debug shows no key");
}

// ---------------------------------------------------------------- syncookie

fn cookies() -> SynCookies {
    SynCookies::new(*b"sixteen byte key", SynCookieConfig::default())
}

fn client() -> FourTuple {
    tuple([10, 0, 0, 1], 80, [198, 51, 100, 7], 51_515)
}

#[test]
fn cookie_round_trip_recovers_mss_and_sequence_numbers() {
    let mut c = cookies();
    let t = client();
    let now = 5 * SYNCOOKIE_SLOT_MS + 1234;
    for (i, &mss) in SYNCOOKIE_MSS.iter().enumerate() {
        let irs = 0xfeed_0000u32.wrapping_add(i as u32 * 77_777);
        let ck = c.mint(&t, irs, mss, None, now);
        assert_eq!((ck.mss, ck.tsval), (mss, None));
        let conn = c.check(&t, irs.wrapping_add(1), ck.isn.wrapping_add(1), None, now + 10).unwrap();
        assert_eq!((conn.iss, conn.irs, conn.mss, conn.opts), (ck.isn, irs, mss, None));
    }
    assert_eq!(c.stats().fields(), [("SyncookiesSent", 8), ("SyncookiesRecv", 8), ("SyncookiesFailed", 0)]);
}

#[test]
fn cookie_mss_is_never_more_than_asked() {
    let mut c = cookies();
    let t = client();
    for mss in (0..=9100u16).step_by(7).chain([535, 536, 1459, 1460, 1461, 8959, 8960, u16::MAX]) {
        let ck = c.mint(&t, 1, mss, None, 0);
        assert_eq!(ck.mss, SYNCOOKIE_MSS[mss_index(mss)]);
        assert!(ck.mss <= mss.max(SYNCOOKIE_MSS[0]), "mss {mss} -> {}", ck.mss);
        assert!(mss < SYNCOOKIE_MSS[0] || mss_index(mss) == 7 || SYNCOOKIE_MSS[mss_index(mss) + 1] > mss);
        let conn = c.check(&t, 2, ck.isn.wrapping_add(1), None, 0).unwrap();
        assert_eq!(conn.mss, ck.mss);
    }
}

#[test]
fn cookie_valid_for_two_slots_then_refused() {
    let mut c = cookies();
    let t = client();
    let slot = SYNCOOKIE_SLOT_MS;
    let minted = 7 * slot + slot - 1; // last ms of slot 7
    let ck = c.mint(&t, 1000, 1460, None, minted);
    let ack = ck.isn.wrapping_add(1);
    assert!(c.check(&t, 1001, ack, None, minted).is_ok());
    assert!(c.check(&t, 1001, ack, None, 8 * slot).is_ok());
    assert!(c.check(&t, 1001, ack, None, 9 * slot - 1).is_ok());
    assert_eq!(c.check(&t, 1001, ack, None, 9 * slot), Err(CookieError::Stale));
    assert_eq!(c.check(&t, 1001, ack, None, 30 * slot), Err(CookieError::Stale));
    // 32 slots on, the 5 slot bits come round again: the MAC still refuses.
    assert_eq!(c.check(&t, 1001, ack, None, (7 + 32) * slot), Err(CookieError::Forged));
    assert_eq!(c.check(&t, 1001, ack, None, (8 + 32) * slot), Err(CookieError::Forged));
    // Minted in slot 0: valid in slots 0 and 1 only.
    let ck = c.mint(&t, 5, 536, None, 0);
    assert!(c.check(&t, 6, ck.isn.wrapping_add(1), None, slot + 5).is_ok());
    assert!(c.check(&t, 6, ck.isn.wrapping_add(1), None, 2 * slot).is_err());
    let s = c.stats();
    assert_eq!((s.sent, s.recv, s.failed), (2, 4, 5));
}

#[test]
fn cookie_any_bit_flip_or_other_tuple_is_refused() {
    let mut c = cookies();
    let t = client();
    let now = 77 * SYNCOOKIE_SLOT_MS;
    let irs = 0x0102_0304;
    let ts_opts = SynCookieOpts { wscale: Some(7), sack: true, ecn: false };
    for ts in [None, Some((0x5555_5555u32, ts_opts))] {
        let ck = c.mint(&t, irs, 1460, ts, now);
        let (seq, ack, tsecr) = (irs.wrapping_add(1), ck.isn.wrapping_add(1), ck.tsval);
        assert!(c.check(&t, seq, ack, tsecr, now).is_ok());
        for bit in 0..32 {
            assert!(c.check(&t, seq, ack ^ (1 << bit), tsecr, now).is_err(), "ack bit {bit}");
            assert!(c.check(&t, seq ^ (1 << bit), ack, tsecr, now).is_err(), "seq bit {bit}");
        }
        for bit in 0..6 {
            let e = tsecr.map(|e| e ^ (1 << bit)).or(Some(1 << bit));
            assert!(c.check(&t, seq, ack, e, now).is_err(), "tsecr bit {bit}");
        }
        // Timestamps appearing or vanishing between SYN and ACK.
        let flipped = if tsecr.is_some() { None } else { Some(0) };
        assert!(c.check(&t, seq, ack, flipped, now).is_err());
        let others = [
            tuple([10, 0, 0, 1], 81, [198, 51, 100, 7], 51_515),
            tuple([10, 0, 0, 1], 80, [198, 51, 100, 7], 51_516),
            tuple([10, 0, 0, 2], 80, [198, 51, 100, 7], 51_515),
            tuple([10, 0, 0, 1], 80, [198, 51, 100, 8], 51_515),
            tuple([198, 51, 100, 7], 51_515, [10, 0, 0, 1], 80),
        ];
        for o in &others {
            assert!(c.check(o, seq, ack, tsecr, now).is_err(), "{o:?}");
        }
    }
}

#[test]
fn cookie_options_ride_in_the_timestamp() {
    let mut c = cookies();
    let t = client();
    let mut rng = Rng(0xdead_beef_0000_0042);
    let wscales = (0..=14u8).map(Some).chain([None, Some(15), Some(200)]);
    for ws in wscales {
        for (sack, ecn) in [(false, false), (true, false), (false, true), (true, true)] {
            let opts = SynCookieOpts { wscale: ws, sack, ecn };
            for ts_now in [0u32, 63, 64, 1000, u32::MAX, rng.next() as u32] {
                let ck = c.mint(&t, 9, 1400, Some((ts_now, opts)), 3);
                let tsval = ck.tsval.unwrap();
                let behind = ts_now.wrapping_sub(tsval);
                assert!(behind < 64, "TSval {tsval} runs {behind} behind {ts_now}");
                let conn = c.check(&t, 10, ck.isn.wrapping_add(1), Some(tsval), 4).unwrap();
                let want = SynCookieOpts { wscale: ws.map(|w| w.min(14)), sack, ecn };
                assert_eq!(conn.opts, Some(want));
                assert_eq!(conn.mss, 1400);
            }
        }
    }
}

#[test]
fn a_million_forged_acks_pass_at_the_hash_rate() {
    let mut c = cookies();
    let t = client();
    let mut rng = Rng(0x5eed_0f_f0_12ed_u64);
    let now = 1000 * SYNCOOKIE_SLOT_MS + 17;
    let n = 1_000_000u64;
    let mut accepted = 0u64;
    for i in 0..n {
        let r = rng.next();
        let tsecr = if i % 2 == 0 { None } else { Some((r >> 32) as u32) };
        let tup = if i % 3 == 0 { tuple([10, 0, 0, 1], 80, [203, 0, 113, (r >> 8) as u8], r as u16) } else { t };
        accepted += u64::from(c.check(&tup, (r >> 17) as u32, (r >> 5) as u32 ^ (r as u32), tsecr, now).is_ok());
    }
    // Expected 10^6 * 2/32 * 2^-24 = 0.004.
    assert_eq!(accepted, 0, "forgeries accepted");
    assert_eq!(c.stats().failed, n - accepted);
    assert_eq!(c.stats().recv, accepted);
}

// ----------------------------------------------------------------- listen_q

/// Client `i`: its own address (10.0.0.0 + i) and port.
fn peer(i: u32) -> FourTuple {
    let [a, b, c, d] = (0x0a00_0000u32 + i).to_be_bytes();
    FourTuple::new(v4([192, 0, 2, 1]), 80, v4([a, b, c, d]), 1024 + (i % 60_000) as u16)
}

fn lq(backlog: i64, max_q0: usize, cookies: bool) -> ListenQueue<String> {
    ListenQueue::new(ListenConfig::new(backlog, TCP_CONN_REQ_MAX_Q, max_q0, cookies))
}

fn admit(q: &mut ListenQueue<String>, i: u32) -> EagerId {
    assert_eq!(q.on_syn(&peer(i), 0), SynDecision::Admit);
    q.add_eager(peer(i), format!("eager {i}")).unwrap()
}

#[test]
fn backlog_is_clamped_as_illumos() {
    assert_eq!(listen_backlog(0, 128), 1);
    assert_eq!(listen_backlog(-5, 128), 1);
    assert_eq!(listen_backlog(5, 128), 5);
    assert_eq!(listen_backlog(1000, 128), 128);
    assert_eq!(listen_backlog(i64::MAX, 0), 1);
    let d = ListenConfig::default();
    assert_eq!((d.backlog, d.max_q0, d.q0_limit()), (TCP_CONN_REQ_MAX_Q, TCP_CONN_REQ_MAX_Q0, 128 + 1024));
}

#[test]
fn syn_eager_handshake_accept() {
    let mut q = lq(4, 16, false);
    let id = admit(&mut q, 1);
    assert_eq!((q.q0_len(), q.q_len()), (1, 0));
    // xarxa audit 096: a retransmitted SYN goes to the eager, never a second one.
    assert_eq!(q.on_syn(&peer(1), 5), SynDecision::Duplicate { id, established: false });
    assert!(q.add_eager(peer(1), "again".into()).is_err());
    assert_eq!(q.established(id, 10), Some(Established::Queued));
    assert_eq!((q.q0_len(), q.q_len()), (0, 1));
    assert_eq!(q.on_syn(&peer(1), 11), SynDecision::Duplicate { id, established: true });
    assert_eq!(q.get(id).map(String::as_str), Some("eager 1"));
    let a = q.accept().unwrap();
    assert_eq!((a.id, a.key, a.eager.as_str()), (id, peer(1), "eager 1"));
    assert!(q.accept().is_none());
    assert_eq!(q.on_syn(&peer(1), 12), SynDecision::Admit);
}

#[test]
fn full_backlog_drops_syns() {
    let mut q = lq(2, 16, true);
    for i in 0..2 {
        let id = admit(&mut q, i);
        q.established(id, 0);
    }
    assert_eq!(q.on_syn(&peer(9), 0), SynDecision::Drop(ListenDrop::QFull));
    assert_eq!(q.stats().listen_drop, 1);
    q.accept();
    assert_eq!(q.on_syn(&peer(9), 0), SynDecision::Admit);
}

#[test]
fn full_q0_with_nothing_droppable_drops_or_answers_with_a_cookie() {
    // q0 holds backlog + max_q0, as illumos counts it.
    for cookies in [false, true] {
        let mut q = lq(2, 5, cookies);
        for i in 0..7 {
            admit(&mut q, i);
        }
        let d = q.on_syn(&peer(100), 1);
        if cookies {
            assert_eq!(d, SynDecision::SynCookie);
        } else {
            assert_eq!(d, SynDecision::Drop(ListenDrop::Q0Full));
        }
        let s = q.stats();
        assert_eq!((s.q0_full, s.listen_drop_q0, s.syn_cookie, s.half_open_drop), (1, u64::from(!cookies), u64::from(cookies), 0));
        assert_eq!(s.fields()[1].0, "tcpListenDropQ0");
        assert!(q.add_eager(peer(100), "x".into()).is_err());
    }
}

#[test]
fn full_q0_drops_the_first_eager_to_time_out() {
    let mut q = lq(1, 5, true);
    let ids: Vec<_> = (0..6).map(|i| admit(&mut q, i)).collect();
    // No SYN is dropped before its first timeout.
    assert_eq!(q.on_syn(&peer(50), 0), SynDecision::SynCookie);
    // Eagers 4, 1, 3 time out, in that order; 1 times out again.
    for &i in &[4usize, 1, 3, 1] {
        let t = q.synack_timeout(ids[i]).unwrap();
        assert!(t.droppable);
    }
    assert_eq!(q.info(ids[1]).unwrap().timeouts, 2);
    assert_eq!(q.timed_out(), 3);
    let mut order = Vec::new();
    for n in 0..3 {
        match q.on_syn(&peer(60 + n), 1) {
            SynDecision::AdmitAfterDrop { id, key, eager } => {
                assert_eq!(q.get(id), None);
                assert_eq!(key, peer(ids.iter().position(|&x| x == id).unwrap() as u32));
                assert!(eager.starts_with("eager"));
                order.push(id);
                q.add_eager(peer(60 + n), "new".into()).unwrap();
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(order, vec![ids[4], ids[1], ids[3]]);
    assert_eq!(q.on_syn(&peer(70), 1), SynDecision::SynCookie);
    let s = q.stats();
    assert_eq!((s.half_open_drop, s.q0_full, s.syn_cookie), (3, 5, 2));
    assert_eq!(q.timed_out(), 0);
    assert_eq!(q.q0_len(), 6);
}

#[test]
fn completed_handshakes_wait_in_q0_when_q_is_full() {
    let mut q = lq(1, 2, false);
    let a = admit(&mut q, 1);
    let b = admit(&mut q, 2);
    let c = admit(&mut q, 3);
    q.synack_timeout(b);
    assert_eq!(q.established(a, 0), Some(Established::Queued));
    assert_eq!(q.established(b, 0), Some(Established::Deferred));
    assert_eq!(q.established(c, 0), Some(Established::Deferred));
    let info = q.info(b).unwrap();
    assert!(info.deferred && info.established && !info.droppable);
    assert_eq!((q.q0_len(), q.q_len(), q.droppable_len(), q.timed_out()), (2, 1, 0, 0));
    // q is full: new SYNs are dropped; deferred ones are never dropped for room.
    assert_eq!(q.on_syn(&peer(9), 0), SynDecision::Drop(ListenDrop::QFull));
    assert_eq!(q.synack_timeout(b), None);
    assert_eq!(q.accept().unwrap().id, a);
    assert_eq!((q.q0_len(), q.q_len()), (1, 1));
    assert_eq!(q.accept().unwrap().id, b);
    assert_eq!(q.accept().unwrap().id, c);
    assert!(q.accept().is_none());
    // A larger backlog takes deferred ones at once.
    let mut q = lq(1, 4, false);
    let ids: Vec<_> = (0..4).map(|i| admit(&mut q, i)).collect();
    for &id in &ids {
        q.established(id, 0);
    }
    assert_eq!(q.q_len(), 1);
    q.set_backlog(3, TCP_CONN_REQ_MAX_Q);
    assert_eq!((q.q_len(), q.q0_len()), (3, 1));
}

#[test]
fn cookie_connections_go_straight_to_q() {
    let mut q = lq(2, 4, true);
    let id = q.push_established(peer(1), "cookie".into()).unwrap();
    assert_eq!(q.info(id).unwrap().established, true);
    assert!(q.push_established(peer(1), "dup".into()).is_err());
    q.push_established(peer(2), "cookie 2".into()).unwrap();
    assert_eq!(q.push_established(peer(3), "full".into()), Err("full".to_string()));
    assert_eq!(q.stats().listen_drop, 1);
    assert_eq!(q.accept().unwrap().eager, "cookie");
}

#[test]
fn removing_eagers_keeps_the_books() {
    let mut q = lq(2, 4, false);
    let a = admit(&mut q, 1);
    let b = admit(&mut q, 2);
    q.synack_timeout(a);
    assert_eq!((q.timed_out(), q.droppable_len()), (1, 1));
    assert_eq!(q.remove(a).as_deref(), Some("eager 1"));
    assert_eq!((q.timed_out(), q.droppable_len(), q.q0_len()), (0, 0, 1));
    assert_eq!(q.find(&peer(1)), None);
    q.established(b, 0);
    assert_eq!(q.remove(b).as_deref(), Some("eager 2"));
    assert_eq!(q.remove(b), None);
    assert_eq!(q.q_len(), 0);
    let c = admit(&mut q, 3);
    if let Some(e) = q.get_mut(c) {
        e.push('!');
    }
    admit(&mut q, 4);
    q.established(c, 0);
    let all = q.close();
    assert_eq!(all.iter().map(|a| a.eager.as_str()).collect::<Vec<_>>(), vec!["eager 3!", "eager 4"]);
    assert_eq!((q.q0_len(), q.q_len(), q.find(&peer(4))), (0, 0, None));
}

#[test]
fn syn_defense_protects_good_sources_until_their_second_timeout() {
    let max_q0 = 400; // defense needs max_q0 > 200; on past 100 timed out
    let mut q = lq(8, max_q0, true);
    let ids: Vec<_> = (0..101).map(|i| admit(&mut q, i)).collect();
    let mut started = Vec::new();
    for &id in &ids {
        if q.synack_timeout(id).unwrap().defense_started {
            started.push(id);
        }
    }
    assert_eq!(started, vec![ids[100]]);
    assert!(q.syn_defense());
    // A source that completes a handshake is remembered ...
    assert_eq!(q.established(ids[0], 1000), Some(Established::Queued));
    assert!(q.syn_defense(), "100 timed out still, > max_q0/32");
    q.accept();
    // ... and its next eager is dontdrop: its first timeout does not expose it.
    let again = peer(0);
    assert_eq!(q.on_syn(&again, 2000), SynDecision::Admit);
    let g = q.add_eager(again, "good".into()).unwrap();
    assert!(q.info(g).unwrap().dontdrop);
    assert!(!q.synack_timeout(g).unwrap().droppable);
    assert!(q.synack_timeout(g).unwrap().droppable);
    // An unknown source gets no such favour.
    let u = admit(&mut q, 5000);
    assert!(!q.info(u).unwrap().dontdrop);
    // The defense ends once few timed-out eagers are left and q0 has been quiet.
    for &id in &ids[1..95] {
        q.remove(id);
    }
    for &id in &ids[95..] {
        q.established(id, 3000);
        q.accept();
    }
    assert!(!q.syn_defense(), "timed out {}", q.timed_out());
}

#[test]
fn syn_defense_stays_while_q0_overflowed_recently() {
    let mut q = lq(8, 400, true);
    let ids: Vec<_> = (0..101).map(|i| admit(&mut q, i)).collect();
    for &id in &ids {
        q.synack_timeout(id);
    }
    // Fill q0 so a SYN finds it full at t = 1 min.
    for i in 101..408 {
        admit(&mut q, i);
    }
    assert!(matches!(q.on_syn(&peer(9999), 60_000), SynDecision::AdmitAfterDrop { .. }));
    for &id in &ids[2..] {
        q.remove(id);
    }
    q.established(ids[1], 5 * 60_000);
    assert!(q.syn_defense(), "q0 overflowed 4 minutes ago");
    q.accept();
    // Ten minutes after the overflow, the next handshake of a timed-out eager ends it.
    let late = admit(&mut q, 20_000);
    q.synack_timeout(late);
    q.established(late, 60_000 + 10 * 60_000 + 1);
    assert!(!q.syn_defense());
}

#[test]
fn randomized_listener_operations_keep_the_bounds() {
    let mut rng = Rng(0x4c15_7e4e_0000_0007);
    let mut q = lq(6, 20, true);
    let mut live = Vec::new();
    for step in 0..50_000u64 {
        let now = step * 10;
        match rng.below(7) {
            0 | 1 => {
                let key = peer(rng.below(64) as u32);
                match q.on_syn(&key, now) {
                    SynDecision::Admit | SynDecision::AdmitAfterDrop { .. } => {
                        if let Ok(id) = q.add_eager(key, String::new()) {
                            live.push(id);
                        }
                    }
                    _ => {}
                }
            }
            2 if !live.is_empty() => {
                let id = live[rng.below(live.len())];
                let _ = q.synack_timeout(id);
            }
            3 if !live.is_empty() => {
                let id = live[rng.below(live.len())];
                let _ = q.established(id, now);
            }
            4 => {
                let _ = q.accept();
            }
            5 if !live.is_empty() => {
                let id = live.swap_remove(rng.below(live.len()));
                let _ = q.remove(id);
            }
            6 => {
                let _ = q.push_established(peer(64 + rng.below(16) as u32), String::new());
            }
            _ => {}
        }
        let cfg = *q.config();
        assert!(q.q_len() <= cfg.backlog);
        assert!(q.q0_len() <= cfg.q0_limit());
        assert!(q.droppable_len() <= q.q0_len());
        assert!(q.timed_out() <= q.q0_len());
    }
}
