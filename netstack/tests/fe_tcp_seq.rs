//! FireEngine TCP sequence numbers: comparisons, windows and arithmetic
//! modulo 2^32, checked exhaustively around every wrap point (0, 2^31,
//! 2^32 - 1) and against a 64-bit reference at random points.

use arbalest_netstack::fireengine::tcp::seq::SeqNum;

mod rng;
use rng::Rng;

const HALF: u64 = 1 << 31;
const FULL: u64 = 1 << 32;

/// Bases next to every place the 32-bit space wraps or changes sign.
fn bases() -> Vec<u32> {
    let mut v = Vec::new();
    for centre in [0u64, HALF, FULL] {
        for d in -3i64..=3 {
            v.push((centre as i64 + d).rem_euclid(FULL as i64) as u32);
        }
    }
    v.extend([12345, 0x4000_0000, 0xc000_0000]);
    v
}

/// Forward distances to try: small, around 2^31 and just below 2^32.
fn distances() -> Vec<u64> {
    let mut v: Vec<u64> = (1..=600).collect();
    v.extend((HALF - 300)..HALF);
    v.extend([1 << 16, 1 << 30, (1 << 30) + 1, HALF - 1]);
    v
}

/// Reference: the signed distance `a - b` for numbers less than 2^31 apart
/// (`None` exactly at 2^31, where the order is ambiguous).
fn reference(a: u32, b: u32) -> Option<i64> {
    let d = (u64::from(a) + FULL - u64::from(b)) % FULL;
    match d.cmp(&HALF) {
        core::cmp::Ordering::Less => Some(d as i64),
        core::cmp::Ordering::Equal => None,
        core::cmp::Ordering::Greater => Some(d as i64 - FULL as i64),
    }
}

fn check_pair(a: SeqNum, b: SeqNum) {
    let d = reference(a.get(), b.get());
    match d {
        Some(d) => {
            assert_eq!(a.lt(b), d < 0, "{a:?} lt {b:?}");
            assert_eq!(a.le(b), d <= 0, "{a:?} le {b:?}");
            assert_eq!(a.gt(b), d > 0, "{a:?} gt {b:?}");
            assert_eq!(a.ge(b), d >= 0, "{a:?} ge {b:?}");
            assert_eq!(i64::from(a - b), d);
            // Exactly one of lt, eq, gt; lt is gt the other way round.
            assert_eq!(u8::from(a.lt(b)) + u8::from(a == b) + u8::from(a.gt(b)), 1);
            assert_eq!(a.lt(b), b.gt(a));
            assert_eq!(a.le(b), b.ge(a));
            let later = if d >= 0 { a } else { b };
            let earlier = if d >= 0 { b } else { a };
            assert_eq!(a.max(b), later);
            assert_eq!(b.max(a), later);
            assert_eq!(a.min(b), earlier);
            assert_eq!(b.min(a), earlier);
        }
        None => {
            // 2^31 apart: each is before the other; max/min keep `self`.
            assert!(a.lt(b) && b.lt(a) && a.le(b) && b.le(a));
            assert!(!a.gt(b) && !b.gt(a) && !a.ge(b) && !b.ge(a));
            assert_eq!(a - b, i32::MIN);
            assert_eq!(b - a, i32::MIN);
            assert_eq!(a.max(b), a);
            assert_eq!(a.min(b), a);
        }
    }
    assert_eq!(a.offset_from(b) as u64, (u64::from(a.get()) + FULL - u64::from(b.get())) % FULL);
}

#[test]
fn order_around_every_wrap_point() {
    for base in bases() {
        let a = SeqNum(base);
        check_pair(a, a);
        assert!(a.le(a) && a.ge(a) && !a.lt(a) && !a.gt(a));
        assert_eq!(a - a, 0);
        for k in distances() {
            let b = a + k as usize;
            let c = a - k as usize;
            assert_eq!(u64::from(b.get()), (u64::from(base) + k) % FULL);
            assert_eq!(u64::from(c.get()), (u64::from(base) + FULL - k) % FULL);
            assert!(a.lt(b) && b.gt(a) && c.lt(a) && a.gt(c), "{base:#x} +- {k}");
            assert_eq!(b.offset_from(a) as u64, k);
            assert_eq!(i64::from(b - a), k as i64);
            assert_eq!(i64::from(c - a), -(k as i64));
            check_pair(a, b);
            check_pair(b, a);
            check_pair(a, c);
            check_pair(c, a);
        }
    }
}

#[test]
fn exactly_half_the_space_apart_is_ambiguous() {
    for base in bases() {
        let a = SeqNum(base);
        let b = a + HALF as usize;
        assert_eq!(b, a - HALF as usize);
        check_pair(a, b);
        check_pair(b, a);
        // One short of half either way is still ordered.
        let just = a + (HALF - 1) as usize;
        assert!(a.lt(just) && just.gt(a));
        let past = a + (HALF + 1) as usize;
        assert!(past.lt(a) && a.gt(past));
    }
}

#[test]
fn random_pairs_match_the_reference() {
    let mut r = Rng(0x5e9_0001);
    for _ in 0..200_000 {
        let a = SeqNum(r.next() as u32);
        let b = if r.below(2) == 0 { SeqNum(r.next() as u32) } else { a + r.below(4096) };
        check_pair(a, b);
    }
}

#[test]
fn in_window_edges_across_the_wrap() {
    let lens: [usize; 11] = [0, 1, 2, 3, 10, 65535, 1 << 30, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32];
    for start in bases() {
        let s = SeqNum(start);
        for &len in &lens {
            let len64 = len as u64;
            // Offsets at both edges of the window and at both ends of the space.
            let mut offs: Vec<u64> = (0..5).collect();
            for edge in [len64, FULL - 1] {
                for d in 0..5u64 {
                    offs.push(edge.saturating_sub(d).min(FULL - 1));
                    offs.push((edge + d).min(FULL - 1));
                }
            }
            for off in offs {
                let x = s + off as usize;
                assert_eq!(x.in_window(s, len), off < len64, "start {start:#x} len {len} off {off}");
            }
            // Just before the start is outside unless the window is the whole space.
            assert_eq!((s - 1).in_window(s, len), len64 >= FULL);
        }
        assert!(!s.in_window(s, 0));
        assert!(s.in_window(s, 1));
        assert!(!(s + 1).in_window(s, 1));
        assert!(s.in_window(s, usize::MAX));
        assert!((s - 1).in_window(s, usize::MAX));
    }
}

#[test]
fn in_window_is_lt_and_ge_for_small_windows() {
    let mut r = Rng(0x5e9_0002);
    for _ in 0..100_000 {
        let start = SeqNum(r.next() as u32);
        let len = r.below(1 << 20);
        let x = if r.below(2) == 0 { SeqNum(r.next() as u32) } else { start + r.below(2 << 20) - (1 << 20) };
        let end = start + len;
        assert_eq!(x.in_window(start, len), x.ge(start) && x.lt(end));
    }
}

#[test]
fn arithmetic_wraps_for_any_usize() {
    let big = [0usize, 1, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 1 << 32, (1 << 32) + 5, usize::MAX];
    for base in bases() {
        let a = SeqNum(base);
        for &n in &big {
            let b = a + n;
            assert_eq!(b.get(), base.wrapping_add(n as u32));
            assert_eq!(b - n, a);
            assert_eq!((a - n) + n, a);
            let mut c = a;
            c += n;
            assert_eq!(c, b);
            c -= n;
            assert_eq!(c, a);
        }
        assert_eq!(a + (1usize << 32), a);
    }
}

#[test]
fn rfc9293_acceptable_ack_across_the_wrap() {
    // SND.UNA < SEG.ACK =< SND.NXT with the window straddling 2^32.
    let una = SeqNum(0xffff_ff00);
    let nxt = una + 0x200;
    assert_eq!(nxt.get(), 0x100);
    let acceptable = |ack: SeqNum| una.lt(ack) && ack.le(nxt);
    assert!(!acceptable(una));
    assert!(acceptable(una + 1));
    assert!(acceptable(SeqNum(0)));
    assert!(acceptable(nxt));
    assert!(!acceptable(nxt + 1));
    assert!(!acceptable(una - 1));
    assert_eq!(nxt.offset_from(una), 0x200);
    assert_eq!(nxt - una, 0x200);
    assert_eq!(una - nxt, -0x200);
}

#[test]
fn conversions_and_formatting() {
    let s = SeqNum::from(7u32);
    assert_eq!(u32::from(s), 7);
    assert_eq!(SeqNum::new(7), s);
    assert_eq!(SeqNum::default(), SeqNum(0));
    assert_eq!(format!("{s}"), "7");
    assert_eq!(format!("{s:?}"), "SeqNum(7)");
}
