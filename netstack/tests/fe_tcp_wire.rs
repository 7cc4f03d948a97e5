//! FireEngine TCP wire format: header and option round trips for every
//! option combination, every malformed option shape, data offsets against
//! segment lengths, checksums (good, bad, partial), and random bytes and
//! mutated segments that must never panic and must survive
//! parse -> emit -> parse unchanged.

use arbalest_netstack::fireengine::wire::checksum::{checksum, pseudo_header_v4};
use arbalest_netstack::fireengine::wire::ipv4::IPPROTO_TCP;
use arbalest_netstack::fireengine::wire::tcp::*;
use core::net::Ipv4Addr;

mod rng;
use rng::Rng;

const A: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

// ---------------------------------------------------------------- helpers

/// The segment `h` emits with `data` after the header.
fn segment(h: &TcpHeader, data: &[u8]) -> Vec<u8> {
    let hl = h.header_len();
    let mut v = vec![0xeeu8; hl + data.len()];
    v[hl..].copy_from_slice(data);
    assert_eq!(h.emit(&mut v, A, B), Ok(hl));
    v
}

/// A segment with the raw options area `area` (padded with EOL to a
/// multiple of 4, at most 40 bytes) and a correct checksum.
fn raw_segment(area: &[u8], data: &[u8]) -> Vec<u8> {
    assert!(area.len() <= TCP_MAX_OPTIONS_LEN);
    let opt_len = area.len().next_multiple_of(4);
    let hl = TCP_HEADER_LEN + opt_len;
    let mut v = vec![0u8; hl + data.len()];
    v[0..2].copy_from_slice(&1234u16.to_be_bytes());
    v[2..4].copy_from_slice(&80u16.to_be_bytes());
    v[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    v[8..12].copy_from_slice(&0xa0b0_c0d0u32.to_be_bytes());
    v[12] = ((hl / 4) as u8) << 4;
    v[13] = 0x12;
    v[14..16].copy_from_slice(&4096u16.to_be_bytes());
    v[TCP_HEADER_LEN..TCP_HEADER_LEN + area.len()].copy_from_slice(area);
    v[hl..].copy_from_slice(data);
    fix_checksum(&mut v);
    v
}

fn fix_checksum(seg: &mut [u8]) {
    seg[16] = 0;
    seg[17] = 0;
    let mut c = pseudo_header_v4(A, B, IPPROTO_TCP, seg.len() as u16);
    c.add(seg);
    let ck = c.finish();
    seg[16..18].copy_from_slice(&ck.to_be_bytes());
}

fn verifies(seg: &[u8]) -> bool {
    let mut c = pseudo_header_v4(A, B, IPPROTO_TCP, seg.len() as u16);
    c.add(seg);
    c.finish() == 0
}

fn opts(area: &[u8]) -> TcpOptions {
    TcpOptions::parse(area)
}

/// What survives an emit: the option values, not what parse saw.
fn values(o: &TcpOptions) -> TcpOptions {
    TcpOptions { unknown: 0, ignored: 0, malformed: false, ..*o }
}

fn header_values(h: &TcpHeader) -> TcpHeader {
    TcpHeader { options: values(&h.options), ..*h }
}

fn mss(v: u16) -> [u8; 4] {
    let b = v.to_be_bytes();
    [TCPOPT_MSS, 4, b[0], b[1]]
}

fn ts(val: u32, ecr: u32) -> Vec<u8> {
    let mut v = vec![TCPOPT_TIMESTAMP, 10];
    v.extend_from_slice(&val.to_be_bytes());
    v.extend_from_slice(&ecr.to_be_bytes());
    v
}

fn sack(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut v = vec![TCPOPT_SACK, (2 + 8 * blocks.len()) as u8];
    for &(l, r) in blocks {
        v.extend_from_slice(&l.to_be_bytes());
        v.extend_from_slice(&r.to_be_bytes());
    }
    v
}

fn blocks(n: usize, base: u32) -> SackBlocks {
    let v: Vec<SackBlock> = (0..n as u32)
        .map(|i| SackBlock { left: base.wrapping_add(i * 1000), right: base.wrapping_add(i * 1000 + 500) })
        .collect();
    SackBlocks::from_slice(&v)
}

/// Checks the parse -> emit -> parse identity of one parsed segment and
/// that emitting is idempotent.
fn check_identity(h1: &TcpHeader, data: &[u8]) {
    let s2 = segment(h1, data);
    assert!(h1.header_len() <= TCP_MAX_HEADER_LEN);
    assert_eq!(h1.header_len() % 4, 0);
    let (h2, d2) = TcpHeader::parse(&s2, A, B, true).expect("an emitted segment parses");
    assert_eq!(h2, header_values(h1), "parse -> emit -> parse");
    assert_eq!(d2, data);
    assert_eq!(segment(&h2, data), s2, "emit is idempotent");
}

// ---------------------------------------------------------------- header

#[test]
fn header_round_trip_every_flag_byte() {
    let mut r = Rng(0x7c9_0001);
    for f in 0..=255u8 {
        let mut h = TcpHeader::new(r.next() as u16, r.next() as u16, r.next() as u32, r.next() as u32, TcpFlags(f), r.next() as u16);
        h.urgent = r.next() as u16;
        let data = r.some_bytes(64);
        let s = segment(&h, &data);
        assert_eq!(s.len(), TCP_HEADER_LEN + data.len());
        assert_eq!(s[12], 5 << 4, "data offset 5, reserved bits zero");
        assert_eq!(s[13], f);
        let (p, d) = TcpHeader::parse(&s, A, B, true).unwrap();
        assert_eq!(p, h);
        assert_eq!(d, &data[..]);
        // RST with SYN and/or FIN is passed up as it is (xarxa audit 288).
        assert_eq!(p.flags.contains(TcpFlags::RST), f & 0x04 != 0);
    }
}

#[test]
fn header_fields_at_their_offsets() {
    let mut h = TcpHeader::new(0x1122, 0x3344, 0x5566_7788, 0x99aa_bbcc, TcpFlags::ACK | TcpFlags::URG, 0xddee);
    h.urgent = 0x0102;
    let s = segment(&h, &[]);
    assert_eq!(&s[0..12], &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc]);
    assert_eq!(s[12], 0x50);
    assert_eq!(s[13], 0x30);
    assert_eq!(&s[14..16], &[0xdd, 0xee]);
    assert_eq!(&s[18..20], &[0x01, 0x02]);
    // Reserved bits (and the AE bit) are ignored on parse.
    let mut t = s.clone();
    t[12] |= 0x0f;
    fix_checksum(&mut t);
    assert_eq!(TcpHeader::parse(&t, A, B, true).unwrap().0, h);
}

#[test]
fn flags_helpers_and_debug() {
    let sa = TcpFlags::SYN | TcpFlags::ACK;
    assert!(sa.contains(TcpFlags::SYN) && sa.contains(TcpFlags::ACK) && !sa.contains(TcpFlags::FIN));
    assert!(sa.intersects(TcpFlags::SYN | TcpFlags::FIN));
    assert!(!sa.intersects(TcpFlags::FIN | TcpFlags::RST));
    assert_eq!(sa.without(TcpFlags::SYN), TcpFlags::ACK);
    let mut f = TcpFlags::empty();
    assert!(f.is_empty());
    f |= TcpFlags::FIN;
    assert_eq!(f, TcpFlags(1));
    assert_eq!(format!("{sa:?}"), "ACK|SYN");
    assert_eq!(format!("{:?}", TcpFlags(0xff)), "CWR|ECE|URG|ACK|PSH|RST|SYN|FIN");
    assert_eq!(format!("{:?}", TcpFlags::empty()), "-");
    let all = [TcpFlags::FIN, TcpFlags::SYN, TcpFlags::RST, TcpFlags::PSH, TcpFlags::ACK, TcpFlags::URG, TcpFlags::ECE, TcpFlags::CWR];
    for (i, fl) in all.iter().enumerate() {
        assert_eq!(fl.0, 1 << i);
    }
}

// ---------------------------------------------------------------- options: emit

#[test]
fn every_option_combination_round_trips() {
    let mut n = 0;
    for m in [None, Some(0u16), Some(536), Some(1460), Some(65535)] {
        for ws in [None, Some(0u8), Some(7), Some(14)] {
            for sack_ok in [false, true] {
                for t in [None, Some(Timestamps { tsval: 0xdead_beef, tsecr: 0 }), Some(Timestamps { tsval: 1, tsecr: u32::MAX })] {
                    for nb in 0..=TCP_MAX_SACK_BLOCKS {
                        let o = TcpOptions {
                            mss: m,
                            window_scale: ws,
                            sack_permitted: sack_ok,
                            sack_blocks: blocks(nb, 0xffff_f000),
                            timestamps: t,
                            ..TcpOptions::new()
                        };
                        let mut h = TcpHeader::new(1, 2, 3, 4, TcpFlags::SYN, 5);
                        h.options = o;
                        let len = o.emit_len();
                        assert!(len <= TCP_MAX_OPTIONS_LEN && len.is_multiple_of(4), "{o:?}: {len}");
                        assert_eq!(h.header_len(), TCP_HEADER_LEN + len);
                        assert_eq!(usize::from(h.data_offset()) * 4, h.header_len());
                        let kept = o.emitted_sack_blocks();
                        assert!(kept <= nb);
                        let s = segment(&h, b"xyz");
                        let (p, d) = TcpHeader::parse(&s, A, B, true).unwrap();
                        assert_eq!(d, b"xyz");
                        let mut want = o;
                        want.sack_blocks.truncate(kept);
                        assert_eq!(p.options, want, "{o:?}");
                        // Blocks are dropped only when they cannot fit even
                        // without alignment NOPs.
                        if kept < nb {
                            let raw = usize::from(m.is_some()) * 4
                                + usize::from(sack_ok) * 2
                                + usize::from(t.is_some()) * 10
                                + usize::from(ws.is_some()) * 3
                                + 2
                                + 8 * (kept + 1);
                            assert!(raw > TCP_MAX_OPTIONS_LEN, "{o:?} dropped a block that fits");
                        }
                        check_identity(&p, b"xyz");
                        n += 1;
                    }
                }
            }
        }
    }
    assert_eq!(n, 5 * 4 * 2 * 3 * 5);
}

#[test]
fn canonical_layouts_are_linux_and_illumos_ones() {
    let t = Timestamps { tsval: 0x0102_0304, tsecr: 0x0506_0708 };
    let emit = |o: TcpOptions| {
        let mut b = [0xaau8; 40];
        let n = o.emit(&mut b).unwrap();
        b[..n].to_vec()
    };
    // The Linux SYN: MSS, SACKOK TS, NOP WS.
    let syn = TcpOptions { mss: Some(1460), window_scale: Some(7), sack_permitted: true, timestamps: Some(t), ..TcpOptions::new() };
    assert_eq!(emit(syn), [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 3, 3, 7]);
    // RFC 7323 Appendix A: NOP NOP TS (illumos' fast path).
    let est = TcpOptions { timestamps: Some(t), ..TcpOptions::new() };
    assert_eq!(emit(est), [1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
    // SACK-permitted alone, MSS alone, window scale alone.
    assert_eq!(emit(TcpOptions { sack_permitted: true, ..TcpOptions::new() }), [1, 1, 4, 2]);
    assert_eq!(emit(TcpOptions { mss: Some(536), ..TcpOptions::new() }), [2, 4, 2, 0x18]);
    assert_eq!(emit(TcpOptions { window_scale: Some(0), ..TcpOptions::new() }), [1, 3, 3, 0]);
    assert_eq!(emit(TcpOptions::new()), Vec::<u8>::new());
    // TS and three SACK blocks: exactly 40 bytes, everything aligned.
    let b3 = blocks(3, 100);
    let o = TcpOptions { timestamps: Some(t), sack_blocks: b3, ..TcpOptions::new() };
    let e = emit(o);
    assert_eq!(e.len(), 40);
    assert_eq!(&e[12..16], &[1, 1, 5, 26]);
    // TS and four blocks: the fourth does not fit (aligned 48, packed 44).
    let o = TcpOptions { timestamps: Some(t), sack_blocks: blocks(4, 100), ..TcpOptions::new() };
    assert_eq!(o.emitted_sack_blocks(), 3);
    assert_eq!(emit(o), e);
    // Four blocks alone: 36 bytes.
    let o = TcpOptions { sack_blocks: blocks(4, 100), ..TcpOptions::new() };
    assert_eq!(emit(o).len(), 36);
    assert_eq!(o.emitted_sack_blocks(), 4);
    // MSS, TS and three blocks fit only packed (4 + 10 + 26 = 40).
    let o = TcpOptions { mss: Some(1460), timestamps: Some(t), sack_blocks: b3, ..TcpOptions::new() };
    let e = emit(o);
    assert_eq!(e.len(), 40);
    assert_eq!(&e[..6], &[2, 4, 0x05, 0xb4, 8, 10]);
    assert_eq!(&e[14..16], &[5, 26]);
    assert_eq!(values(&opts(&e)), o);
    // Window scale, TS and three blocks fit only packed (3 + 10 + 26 = 39),
    // padded with one EOL.
    let o = TcpOptions { window_scale: Some(2), timestamps: Some(t), sack_blocks: b3, ..TcpOptions::new() };
    let e = emit(o);
    assert_eq!(e.len(), 40);
    assert_eq!(&e[..3], &[8, 10, 1]);
    assert_eq!(&e[10..13], &[3, 3, 2]);
    assert_eq!(e[39], TCPOPT_EOL);
    assert_eq!(values(&opts(&e)), o);
}

#[test]
fn window_scale_above_14_is_14_both_ways() {
    for shift in 0..=255u8 {
        let p = opts(&[1, 3, 3, shift]);
        assert_eq!(p.window_scale, Some(shift.min(14)));
        assert_eq!(p.ignored + p.unknown, 0);
        // Emit never sends more than 14 (xarxa audit 260).
        let o = TcpOptions { window_scale: Some(shift), ..TcpOptions::new() };
        let mut b = [0u8; 4];
        o.emit(&mut b).unwrap();
        assert_eq!(b, [1, 3, 3, shift.min(TCP_MAX_WINSHIFT)]);
    }
}

#[test]
fn emit_into_short_buffers_is_an_error_not_a_panic() {
    // xarxa audit 326: emit with a buffer of any size must not panic.
    let t = Timestamps { tsval: 9, tsecr: 8 };
    let o = TcpOptions { mss: Some(1), window_scale: Some(1), sack_permitted: true, timestamps: Some(t), sack_blocks: blocks(4, 3), ..TcpOptions::new() };
    let need = o.emit_len();
    for n in 0..=64 {
        let mut b = vec![0x55u8; n];
        let r = o.emit(&mut b);
        if n < need {
            assert_eq!(r, Err(TcpError::BadBuffer));
            assert!(b.iter().all(|&x| x == 0x55), "nothing written on error");
        } else {
            assert_eq!(r, Ok(need));
            assert!(b[need..].iter().all(|&x| x == 0x55), "nothing written past the options");
        }
    }
    let mut h = TcpHeader::new(1, 2, 3, 4, TcpFlags::ACK, 5);
    h.options = o;
    for n in 0..h.header_len() {
        let mut b = vec![0u8; n];
        assert_eq!(h.emit(&mut b, A, B), Err(TcpError::BadBuffer));
        assert_eq!(h.emit_partial(&mut b, A, B), Err(TcpError::BadBuffer));
    }
    let mut big = vec![0u8; TCP_MAX_SEGMENT_LEN + 1];
    assert_eq!(h.emit(&mut big, A, B), Err(TcpError::BadBuffer));
    assert_eq!(h.emit_partial(&mut big, A, B), Err(TcpError::BadBuffer));
    let mut max = vec![0u8; TCP_MAX_SEGMENT_LEN];
    assert_eq!(h.emit(&mut max, A, B), Ok(h.header_len()));
    assert!(TcpHeader::parse(&max, A, B, true).is_ok());
}

#[test]
fn sack_blocks_container() {
    let mut s = SackBlocks::new();
    assert!(s.is_empty());
    for i in 0..4u32 {
        assert!(s.push(SackBlock { left: i, right: i + 1 }));
    }
    assert!(!s.push(SackBlock { left: 9, right: 10 }));
    assert_eq!(s.len(), 4);
    assert_eq!(s.as_slice()[3], SackBlock { left: 3, right: 4 });
    let mut t = s;
    t.truncate(2);
    assert_eq!(t.len(), 2);
    t.truncate(7);
    assert_eq!(t.len(), 2);
    // Equality looks at the blocks held, not at stale slots.
    assert_eq!(t, SackBlocks::from_slice(&s.as_slice()[..2]));
    assert_eq!(SackBlocks::from_slice(&[SackBlock::default(); 9]).len(), 4);
    assert_eq!(format!("{:?}", SackBlocks::from_slice(&[SackBlock { left: 1, right: 2 }])), "[SackBlock { left: 1, right: 2 }]");
}

// ---------------------------------------------------------------- options: parse

#[test]
fn parse_known_options_any_order_any_alignment() {
    let mut area = Vec::new();
    area.extend_from_slice(&sack(&[(10, 20), (30, 40)]));
    area.extend_from_slice(&[3, 3, 9]);
    area.extend_from_slice(&ts(5, 6));
    area.extend_from_slice(&[4, 2]);
    area.extend_from_slice(&mss(1200));
    assert_eq!(area.len(), 18 + 3 + 10 + 2 + 4);
    let o = opts(&area);
    assert_eq!(o.mss, Some(1200));
    assert_eq!(o.window_scale, Some(9));
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps, Some(Timestamps { tsval: 5, tsecr: 6 }));
    assert_eq!(o.sack_blocks.as_slice(), &[SackBlock { left: 10, right: 20 }, SackBlock { left: 30, right: 40 }]);
    assert_eq!((o.unknown, o.ignored, o.malformed), (0, 0, false));
    let (h, _) = TcpHeader::parse(&raw_segment(&area, &[]), A, B, true).unwrap();
    assert_eq!(h.options, o);
    check_identity(&h, &[]);
}

#[test]
fn duplicates_last_wins_sack_blocks_accumulate() {
    let mut area = Vec::new();
    area.extend_from_slice(&mss(1000));
    area.extend_from_slice(&mss(1400));
    area.extend_from_slice(&[3, 3, 1, 3, 3, 2]);
    area.extend_from_slice(&sack(&[(1, 2)]));
    area.extend_from_slice(&sack(&[(3, 4), (5, 6)]));
    let o = opts(&area);
    assert_eq!(o.mss, Some(1400));
    assert_eq!(o.window_scale, Some(2));
    assert_eq!(o.sack_blocks.len(), 3);
    assert_eq!(o.sack_blocks.as_slice()[2], SackBlock { left: 5, right: 6 });
    let mut area = ts(1, 1);
    area.extend_from_slice(&ts(2, 3));
    assert_eq!(opts(&area).timestamps, Some(Timestamps { tsval: 2, tsecr: 3 }));
    // More than four blocks (only possible in an area longer than a
    // header allows): the first four are kept, nothing panics.
    let mut long = Vec::new();
    for i in 0..3 {
        long.extend_from_slice(&sack(&[(i, i + 1), (i + 10, i + 11)]));
    }
    let o = opts(&long);
    assert_eq!(o.sack_blocks.len(), 4);
    assert_eq!(o.sack_blocks.as_slice()[3], SackBlock { left: 11, right: 12 });
}

#[test]
fn length_zero_or_one_stops_the_walk_keeps_what_came_before() {
    for kind in 2..=255u8 {
        for bad_len in [0u8, 1] {
            let mut area = mss(1460).to_vec();
            area.extend_from_slice(&[kind, bad_len]);
            area.extend_from_slice(&ts(7, 8));
            let o = opts(&area);
            assert!(o.malformed, "kind {kind} len {bad_len}");
            assert_eq!(o.mss, Some(1460), "options before the bad one are kept");
            assert_eq!(o.timestamps, None, "options after the bad one are ignored (illumos)");
            // The segment itself is kept.
            let s = raw_segment(&area, b"data");
            let (h, d) = TcpHeader::parse(&s, A, B, true).unwrap();
            assert_eq!(d, b"data");
            assert_eq!(h.options, o);
            check_identity(&h, d);
        }
    }
}

#[test]
fn length_past_the_area_stops_the_walk() {
    for kind in 2..=255u8 {
        for lead in 0..=38usize {
            let mut area = vec![TCPOPT_NOP; lead];
            let room = TCP_MAX_OPTIONS_LEN - lead;
            for len in (room + 1)..=255 {
                area.truncate(lead);
                area.extend_from_slice(&[kind, len as u8]);
                area.resize(TCP_MAX_OPTIONS_LEN, 0xab);
                let o = opts(&area);
                assert!(o.malformed, "kind {kind} at {lead} len {len}");
                assert_eq!(values(&o), TcpOptions::new());
                if len == room + 1 || len == 255 {
                    let (h, _) = TcpHeader::parse(&raw_segment(&area, &[]), A, B, true).unwrap();
                    assert!(h.options.malformed);
                }
            }
            // An option that ends exactly at the area's end is fine.
            area.truncate(lead);
            area.extend_from_slice(&[200, room as u8]);
            area.resize(TCP_MAX_OPTIONS_LEN, 0xab);
            let o = opts(&area);
            assert!(!o.malformed && o.unknown == 1, "kind 200 filling the rest from {lead}");
        }
    }
}

#[test]
fn missing_length_byte_is_malformed() {
    for kind in 2..=255u8 {
        let o = opts(&[1, 1, 1, kind]);
        assert!(o.malformed);
        let o = opts(&[kind]);
        assert!(o.malformed);
        // Within a header the area is a multiple of 4: the kind is the
        // last byte of the last word.
        let mut area = mss(9).to_vec();
        area.extend_from_slice(&[1, 1, 1, kind]);
        let (h, _) = TcpHeader::parse(&raw_segment(&area, &[]), A, B, true).unwrap();
        assert!(h.options.malformed);
        assert_eq!(h.options.mss, Some(9));
    }
}

#[test]
fn unknown_kinds_of_every_length_are_skipped() {
    let mut kinds: Vec<u8> = (9..=255).collect();
    kinds.extend([6, 7]);
    for &kind in &kinds {
        for len in 2..=40usize {
            let mut area = vec![kind, len as u8];
            area.resize(len, 0x5a);
            let o = opts(&area);
            assert_eq!((o.unknown, o.ignored, o.malformed), (1, 0, false), "kind {kind} len {len}");
            assert_eq!(values(&o), TcpOptions::new());
            // What follows it is still read, when it fits.
            if len <= 30 {
                area.extend_from_slice(&ts(11, 12));
                let o = opts(&area);
                assert_eq!(o.unknown, 1);
                assert_eq!(o.timestamps, Some(Timestamps { tsval: 11, tsecr: 12 }), "kind {kind} len {len}");
                let (h, _) = TcpHeader::parse(&raw_segment(&area, b"z"), A, B, true).unwrap();
                assert_eq!(h.options, o);
                check_identity(&h, b"z");
            }
        }
    }
}

#[test]
fn known_kinds_with_a_wrong_length_are_ignored_and_skipped() {
    let right: [(u8, &[usize]); 5] = [
        (TCPOPT_MSS, &[4]),
        (TCPOPT_WSCALE, &[3]),
        (TCPOPT_SACK_PERMITTED, &[2]),
        (TCPOPT_TIMESTAMP, &[10]),
        (TCPOPT_SACK, &[10, 18, 26, 34]),
    ];
    for (kind, good) in right {
        for len in 2..=30usize {
            if good.contains(&len) {
                continue;
            }
            let mut area = vec![kind, len as u8];
            area.resize(len, 0x11);
            area.extend_from_slice(&mss(777));
            let o = opts(&area);
            assert_eq!((o.ignored, o.unknown, o.malformed), (1, 0, false), "kind {kind} len {len}");
            // The wrong one is ignored, the MSS after it is read.
            let want = TcpOptions { mss: Some(777), ..TcpOptions::new() };
            assert_eq!(values(&o), want, "kind {kind} len {len}");
            if area.len() <= TCP_MAX_OPTIONS_LEN {
                let (h, _) = TcpHeader::parse(&raw_segment(&area, &[]), A, B, true).unwrap();
                assert_eq!(h.options, o);
                check_identity(&h, &[]);
            }
        }
    }
    // A wrong-length MSS after a good one does not undo it.
    let mut area = mss(1000).to_vec();
    area.extend_from_slice(&[2, 3, 9]);
    let o = opts(&area);
    assert_eq!((o.mss, o.ignored), (Some(1000), 1));
}

#[test]
fn eol_in_the_middle_ends_the_list() {
    for at in 0..=36usize {
        let mut area = vec![TCPOPT_NOP; at];
        area.push(TCPOPT_EOL);
        area.extend_from_slice(&mss(1460));
        area.resize(TCP_MAX_OPTIONS_LEN.max(area.len()), 0xff);
        let o = opts(&area);
        assert_eq!(o, TcpOptions::new(), "EOL at {at}");
    }
    let mut area = mss(1460).to_vec();
    area.push(TCPOPT_EOL);
    area.extend_from_slice(&ts(1, 2));
    let o = opts(&area);
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.timestamps, None);
    assert!(!o.malformed);
}

#[test]
fn forty_nops_and_other_fillers() {
    for filler in [TCPOPT_NOP, TCPOPT_EOL] {
        let area = [filler; 40];
        let s = raw_segment(&area, b"payload");
        assert_eq!(s[12] >> 4, 15);
        let (h, d) = TcpHeader::parse(&s, A, B, true).unwrap();
        assert_eq!(h.options, TcpOptions::new());
        assert_eq!(d, b"payload");
        assert_eq!(h.header_len(), TCP_HEADER_LEN);
        check_identity(&h, d);
    }
    // 37 NOPs then a window scale option spilling one byte past: malformed.
    let mut area = vec![TCPOPT_NOP; 37];
    area.extend_from_slice(&[3, 3]);
    assert!(opts(&area).malformed);
    area.push(5);
    assert_eq!(opts(&area).window_scale, Some(5));
    assert!(opts(&[]).eq(&TcpOptions::new()));
}

#[test]
fn sack_option_shapes() {
    // 1 to 4 blocks are read; zero blocks or a partial block is ignored.
    for n in 1..=4usize {
        let bl: Vec<(u32, u32)> = (0..n as u32).map(|i| (i, i + 1)).collect();
        let o = opts(&sack(&bl));
        assert_eq!(o.sack_blocks.len(), n);
        assert_eq!(o.ignored, 0);
    }
    let o = opts(&[5, 2]);
    assert_eq!((o.sack_blocks.len(), o.ignored, o.malformed), (0, 1, false));
    let mut partial = sack(&[(1, 2)]);
    partial[1] = 13;
    partial.extend_from_slice(&[0, 0, 0]);
    let o = opts(&partial);
    assert_eq!((o.sack_blocks.len(), o.ignored), (0, 1));
}

// ---------------------------------------------------------------- data offset

#[test]
fn data_offsets_against_segment_lengths() {
    for off in 0..=15u8 {
        for len in 0..=80usize {
            let mut s = vec![TCPOPT_NOP; len];
            if len > 12 {
                s[12] = off << 4;
            }
            if len > 13 {
                s[13] = 0x10;
            }
            let hlen = usize::from(off) * 4;
            let want = if len < TCP_HEADER_LEN {
                Err(TcpError::Truncated)
            } else if off < 5 {
                Err(TcpError::BadDataOffset(off))
            } else if hlen > len {
                Err(TcpError::HeaderTruncated)
            } else {
                Ok(len - hlen)
            };
            let got = TcpHeader::parse(&s, A, B, false).map(|(_, d)| d.len());
            assert_eq!(got, want, "offset {off} length {len}");
            if len >= TCP_HEADER_LEN {
                fix_checksum(&mut s);
                let got = TcpHeader::parse(&s, A, B, true).map(|(_, d)| d.len());
                assert_eq!(got, want, "offset {off} length {len} (checksummed)");
                if let Ok((h, d)) = TcpHeader::parse(&s, A, B, true) {
                    assert_eq!(h.options, TcpOptions::new(), "the NOP options area is empty");
                    check_identity(&h, d);
                }
            }
        }
    }
}

#[test]
fn over_long_segment_is_refused() {
    let mut s = vec![0u8; TCP_MAX_SEGMENT_LEN + 1];
    s[12] = 5 << 4;
    assert_eq!(TcpHeader::parse(&s, A, B, false), Err(TcpError::TooLong));
    s.truncate(TCP_MAX_SEGMENT_LEN);
    assert!(TcpHeader::parse(&s, A, B, false).is_ok());
}

// ---------------------------------------------------------------- checksum

fn sample() -> TcpHeader {
    let mut h = TcpHeader::new(40000, 7, 0xfedc_ba98, 0x0123_4567, TcpFlags::ACK | TcpFlags::PSH, 29200);
    h.options.timestamps = Some(Timestamps { tsval: 77, tsecr: 66 });
    h.options.sack_blocks = blocks(2, 5);
    h
}

#[test]
fn checksum_good_and_bad() {
    let mut r = Rng(0x7c9_0002);
    for dlen in [0usize, 1, 2, 3, 99, 1460] {
        let data = r.bytes(dlen);
        let h = sample();
        let s = segment(&h, &data);
        assert!(verifies(&s));
        assert_eq!(TcpHeader::parse(&s, A, B, true).unwrap(), (h, &data[..]));
        // Any single changed byte fails the check (one's complement sums
        // catch every one-byte change); unchecked, the header still parses
        // (byte 12's low bit is a reserved bit, not the data offset).
        for i in 0..s.len() {
            let mut t = s.clone();
            t[i] ^= 0x01;
            assert_eq!(TcpHeader::parse(&t, A, B, true).map(|_| ()), Err(TcpError::BadChecksum), "byte {i}");
            assert!(TcpHeader::parse(&t, A, B, false).is_ok(), "byte {i}");
        }
        // The pseudo-header counts: another address or length fails.
        assert_eq!(TcpHeader::parse(&s, A, Ipv4Addr::new(10, 0, 0, 3), true).map(|_| ()), Err(TcpError::BadChecksum));
        assert_eq!(TcpHeader::parse(&s, Ipv4Addr::new(1, 2, 3, 4), B, true).map(|_| ()), Err(TcpError::BadChecksum));
        let mut longer = s.clone();
        longer.extend_from_slice(&[0, 0]);
        assert_eq!(TcpHeader::parse(&longer, A, B, true).map(|_| ()), Err(TcpError::BadChecksum));
        // NIC-verified segments skip the check.
        let mut zero = s.clone();
        zero[16] = 0;
        zero[17] = 0;
        if zero != s {
            assert_eq!(TcpHeader::parse(&zero, A, B, true).map(|_| ()), Err(TcpError::BadChecksum));
        }
        assert_eq!(TcpHeader::parse(&zero, A, B, false).unwrap().0, h);
    }
}

#[test]
fn checksum_matches_plain_rfc1071_over_pseudo_header_and_segment() {
    let h = sample();
    let s = segment(&h, b"hello, world");
    let mut all = Vec::new();
    all.extend_from_slice(&A.octets());
    all.extend_from_slice(&B.octets());
    all.extend_from_slice(&[0, IPPROTO_TCP]);
    all.extend_from_slice(&(s.len() as u16).to_be_bytes());
    all.extend_from_slice(&s);
    assert_eq!(checksum(&all), 0);
}

#[test]
fn partial_checksum_completed_by_the_device() {
    let mut r = Rng(0x7c9_0003);
    for _ in 0..2000 {
        let mut h = sample();
        h.seq = r.next() as u32;
        h.window = r.next() as u16;
        h.options.mss = if r.below(2) == 0 { Some(r.next() as u16) } else { None };
        let src = Ipv4Addr::from(r.next() as u32);
        let dst = Ipv4Addr::from(r.next() as u32);
        let data = r.some_bytes(300);
        let hl = h.header_len();
        let mut full = vec![0u8; hl + data.len()];
        full[hl..].copy_from_slice(&data);
        let mut part = full.clone();
        assert_eq!(h.emit(&mut full, src, dst), Ok(hl));
        assert_eq!(h.emit_partial(&mut part, src, dst), Ok(hl));
        // The field holds the pseudo-header sum...
        let ps = pseudo_header_v4(src, dst, IPPROTO_TCP, part.len() as u16).fold();
        assert_eq!(u16::from_be_bytes([part[16], part[17]]), ps);
        assert_eq!(&part[..16], &full[..16]);
        assert_eq!(&part[18..], &full[18..]);
        // ...and the device's sum from byte 0, complemented, completes it.
        let ck = checksum(&part);
        part[16..18].copy_from_slice(&ck.to_be_bytes());
        let (p, d) = TcpHeader::parse(&part, src, dst, true).expect("completed checksum verifies");
        assert_eq!(p, h);
        assert_eq!(d, &data[..]);
        let a = u16::from_be_bytes([full[16], full[17]]);
        // The same sum, up to one's complement's two zeros.
        assert!(ck == a || (ck == 0 && a == 0xffff) || (ck == 0xffff && a == 0), "{ck:#x} vs {a:#x}");
    }
}

// ---------------------------------------------------------------- random

/// Random option values, possibly more than fit.
fn random_options(r: &mut Rng) -> TcpOptions {
    TcpOptions {
        mss: if r.below(2) == 0 { Some(r.next() as u16) } else { None },
        window_scale: if r.below(2) == 0 { Some(r.next() as u8) } else { None },
        sack_permitted: r.below(2) == 0,
        sack_blocks: {
            let n = r.below(TCP_MAX_SACK_BLOCKS + 1);
            let v: Vec<SackBlock> = (0..n).map(|_| SackBlock { left: r.next() as u32, right: r.next() as u32 }).collect();
            SackBlocks::from_slice(&v)
        },
        timestamps: if r.below(2) == 0 { Some(Timestamps { tsval: r.next() as u32, tsecr: r.next() as u32 }) } else { None },
        ..TcpOptions::new()
    }
}

fn random_header(r: &mut Rng) -> TcpHeader {
    let mut h = TcpHeader::new(r.next() as u16, r.next() as u16, r.next() as u32, r.next() as u32, TcpFlags(r.next() as u8), r.next() as u16);
    h.urgent = r.next() as u16;
    h.options = random_options(r);
    h
}

/// Random option bytes: known kinds with right and wrong lengths, unknown
/// kinds, NOP, EOL, bad lengths.
fn random_area(r: &mut Rng) -> Vec<u8> {
    let mut a = Vec::new();
    let want = r.below(TCP_MAX_OPTIONS_LEN + 1);
    while a.len() < want {
        match r.below(12) {
            0 => a.push(TCPOPT_NOP),
            1 if r.below(4) == 0 => a.push(TCPOPT_EOL),
            2 => a.extend_from_slice(&mss(r.next() as u16)),
            3 => a.extend_from_slice(&[3, 3, r.next() as u8]),
            4 => a.extend_from_slice(&[4, 2]),
            5 => a.extend_from_slice(&ts(r.next() as u32, r.next() as u32)),
            6 => {
                let n = 1 + r.below(4);
                let bl: Vec<(u32, u32)> = (0..n).map(|_| (r.next() as u32, r.next() as u32)).collect();
                a.extend_from_slice(&sack(&bl));
            }
            7 => {
                let len = 2 + r.below(12);
                a.push(r.next() as u8);
                a.push(len as u8);
                a.extend(r.bytes(len - 2));
            }
            8 => {
                a.push([2, 3, 4, 5, 8][r.below(5)]);
                a.push(r.below(14) as u8);
            }
            _ => a.push(r.next() as u8),
        }
    }
    a.truncate(TCP_MAX_OPTIONS_LEN);
    a
}

#[test]
fn random_option_areas_never_panic_and_round_trip() {
    let mut r = Rng(0x7c9_0004);
    for _ in 0..100_000 {
        let area = if r.below(2) == 0 { random_area(&mut r) } else { r.some_bytes(TCP_MAX_OPTIONS_LEN + 1) };
        let o = opts(&area);
        assert!(o.sack_blocks.len() <= TCP_MAX_SACK_BLOCKS);
        assert!(o.window_scale.is_none_or(|s| s <= TCP_MAX_WINSHIFT));
        // Everything parsed fits in one emit, SACK blocks included.
        assert_eq!(o.emitted_sack_blocks(), o.sack_blocks.len(), "{area:?}");
        let mut b = [0u8; TCP_MAX_OPTIONS_LEN];
        let n = o.emit(&mut b).unwrap();
        assert_eq!(opts(&b[..n]), values(&o), "{area:?}");
    }
}

#[test]
fn random_constructed_options_always_fit() {
    let mut r = Rng(0x7c9_0005);
    for _ in 0..20_000 {
        let o = random_options(&mut r);
        let n = o.emit_len();
        assert!(n <= TCP_MAX_OPTIONS_LEN && n.is_multiple_of(4));
        let mut b = [0u8; TCP_MAX_OPTIONS_LEN];
        assert_eq!(o.emit(&mut b), Ok(n));
        let p = opts(&b[..n]);
        let mut want = o;
        want.window_scale = o.window_scale.map(|s| s.min(TCP_MAX_WINSHIFT));
        want.sack_blocks.truncate(o.emitted_sack_blocks());
        assert_eq!(p, want);
    }
}

/// Parses `s` both ways; for a valid segment checks the identity.
fn fuzz_one(s: &[u8]) -> bool {
    let unchecked = TcpHeader::parse(s, A, B, false);
    let checked = TcpHeader::parse(s, A, B, true);
    match (&unchecked, &checked) {
        (Ok(u), Ok(c)) => assert_eq!(u, c),
        (Ok(_), Err(e)) => assert_eq!(*e, TcpError::BadChecksum),
        (Err(e), Err(f)) => assert_eq!(e, f),
        (Err(_), Ok(_)) => panic!("checked parse accepted what unchecked refused"),
    }
    if let Ok((h, d)) = unchecked {
        check_identity(&h, d);
        true
    } else {
        false
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut r = Rng(0x7c9_0006);
    let mut valid = 0;
    for i in 0..100_000 {
        let mut s = r.some_bytes(120);
        // Half the time, a plausible data offset so options get walked.
        if i % 2 == 0 && s.len() >= TCP_HEADER_LEN {
            let max_off = (s.len() / 4).min(15);
            s[12] = ((5 + r.below(max_off - 4)) as u8) << 4;
            if r.below(2) == 0 {
                fix_checksum(&mut s);
            }
        }
        if fuzz_one(&s) {
            valid += 1;
        }
    }
    assert!(valid > 20_000, "only {valid} random segments were well-formed");
}

#[test]
fn random_mutations_of_valid_segments_never_panic() {
    let mut r = Rng(0x7c9_0007);
    let mut valid = 0;
    for _ in 0..100_000 {
        let mut s = if r.below(2) == 0 {
            let h = random_header(&mut r);
            let data = r.some_bytes(40);
            segment(&h, &data)
        } else {
            let area = random_area(&mut r);
            let data = r.some_bytes(40);
            raw_segment(&area, &data)
        };
        for _ in 0..1 + r.below(4) {
            match r.below(7) {
                0 if !s.is_empty() => {
                    let i = r.below(s.len());
                    s[i] = r.next() as u8;
                }
                1 if s.len() > 12 => {
                    // Inside the options area.
                    let hl = (usize::from(s[12] >> 4) * 4).min(s.len());
                    if hl > TCP_HEADER_LEN {
                        let i = TCP_HEADER_LEN + r.below(hl - TCP_HEADER_LEN);
                        s[i] = [0, 1, 2, 3, 4, 5, 8, 0xff, r.next() as u8][r.below(9)];
                    }
                }
                2 if s.len() > 12 => s[12] = ((r.below(16) as u8) << 4) | (s[12] & 0x0f),
                3 => s.truncate(r.below(s.len() + 1)),
                4 => {
                    let at = r.below(s.len() + 1);
                    let extra = r.some_bytes(8);
                    s.splice(at..at, extra);
                }
                5 if !s.is_empty() => {
                    let at = r.below(s.len());
                    s.remove(at);
                }
                _ => s.extend(r.some_bytes(8)),
            }
        }
        if r.below(2) == 0 && s.len() >= TCP_HEADER_LEN {
            fix_checksum(&mut s);
        }
        if fuzz_one(&s) {
            valid += 1;
        }
    }
    assert!(valid > 30_000, "only {valid} mutated segments were well-formed");
}
