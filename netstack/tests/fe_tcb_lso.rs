//! FireEngine's TCB with large sends (LSO) over the fake link
//! (`fe_tcb_net`): a bulk send goes in segments of up to the link's
//! limit, whole MSS multiples marked with the MSS, sequence numbers
//! contiguous and counted (`tcpOutLsoSegs`); a piece of a large segment
//! lost on the wire (cut as a NIC cuts it) is resent alone after SACK;
//! Nagle holds a short tail back with LSO as without; without the
//! capability no segment is larger than the MSS; a large received
//! segment (coalesced by the device) is taken as one and ACKed at once.

mod fe_tcb_net;
mod rng;

use arbalest_netstack::fireengine::tcp::config::TcbConfig;
use arbalest_netstack::fireengine::tcp::seq::SeqNum;
use arbalest_netstack::fireengine::wire::tcp::TcpFlags;
use fe_tcb_net::*;

/// virtio's limit: a 64 KiB datagram after the Ethernet header.
const LSO_FRAME: usize = 65_535 + 14;
/// The MSS with timestamps on a 1500-byte MTU.
const MSS: usize = 1448;
/// What one large segment may carry: (65 535 − 80) rounded down to MSS.
const LSO_DATA: usize = (65_535 - 80) / MSS * MSS;

fn lso(n: &mut Net, i: usize, on: bool) {
    n.tcb[i].as_mut().expect("tcb").set_lso(on.then_some(LSO_FRAME));
}

/// A's data segments since log index `since` (new data first sent, and
/// retransmissions).
fn data_from_a(n: &Net, since: usize) -> Vec<Rec> {
    n.log[since..].iter().filter(|r| r.from == A && !r.seg.data.is_empty()).cloned().collect()
}

#[test]
fn a_bulk_send_goes_in_large_segments_of_whole_mss_contiguous_and_counted() {
    let mut n = Net::new(7);
    n.establish(cfg(), cfg());
    assert_eq!(n.t(A).mss() as usize, MSS);
    lso(&mut n, A, true);
    let since = n.log.len();
    let total = 3 << 20;
    n.app[A].out = pattern(total, 0x31);
    n.app[A].shutdown_when_done = true;
    assert!(
        n.run_until(|n| n.app[B].got.len() == total && n.t(B).peer_closed(), 60_000_000),
        "B got {}",
        n.app[B].got.len()
    );
    assert!(n.app[B].got == pattern(total, 0x31), "bytes differ");
    let segs = data_from_a(&n, since);
    let mut next = n.t(A).isns().0 + 1;
    let (mut large, mut biggest) = (0, 0);
    for r in &segs {
        let s = &r.seg;
        assert!(!s.rexmit, "a clean link: no retransmission ({s:?})");
        assert_eq!(s.seq, next, "contiguous sequence numbers");
        next = s.seq + s.data.len();
        assert!(s.data.len() <= LSO_DATA, "{} bytes > the limit {LSO_DATA}", s.data.len());
        if s.data.len() > MSS {
            large += 1;
            assert_eq!(s.lso_mss, Some(MSS as u16), "marked with the MSS");
            let last = s.seq + s.data.len() == n.t(A).isns().0 + 1 + total;
            assert!(s.data.len() % MSS == 0 || last, "a short tail only at the end: {} bytes", s.data.len());
            assert!(!s.has(TcpFlags::PSH) || last, "PSH only where the queue empties");
        } else {
            assert_eq!(s.lso_mss, None);
        }
        biggest = biggest.max(s.data.len());
    }
    assert_eq!(next, n.t(A).isns().0 + 1 + total);
    assert!(large > 10, "{large} large segments");
    assert_eq!(biggest, LSO_DATA, "cwnd grew to the limit");
    assert_eq!(n.mib(A, "tcpOutLsoSegs"), large as u64);
    let lso_bytes: usize = segs.iter().filter(|r| r.seg.data.len() > MSS).map(|r| r.seg.data.len()).sum();
    assert_eq!(n.mib(A, "tcpOutLsoBytes"), lso_bytes as u64);
    assert_eq!(n.mib(A, "tcpOutDataBytes"), total as u64);
    let wire: u64 = segs.iter().map(|r| r.seg.data.len().div_ceil(MSS) as u64).sum();
    assert_eq!(n.mib(A, "tcpOutDataSegs"), wire, "counted as the segments they become");
    // B took them whole, and ACKed each at once (each holds ≥ 2 MSS).
    assert!(n.mib(B, "tcpInLargeSegs") >= large as u64 - 1);
    assert_eq!(n.mib(B, "tcpRetransSegs"), 0);
}

#[test]
fn a_lost_piece_of_a_large_segment_is_resent_alone_after_sack() {
    let mut n = Net::new(8);
    n.establish(cfg(), cfg());
    lso(&mut n, A, true);
    n.tso_cut = true;
    let since = n.log.len();
    // Drop the 40th piece A puts on the wire (inside a large segment
    // once cwnd has grown).
    let first = n.sent[A];
    let mut dropped_seq = None;
    n.filter = Some(Box::new(move |from, seg, idx| from == A && idx == first + 40 && !seg.data.is_empty()));
    let total = 1 << 20;
    n.app[A].out = pattern(total, 0x41);
    n.app[A].shutdown_when_done = true;
    assert!(
        n.run_until(|n| n.app[B].got.len() == total && n.t(B).peer_closed(), 60_000_000),
        "B got {}",
        n.app[B].got.len()
    );
    assert!(n.app[B].got == pattern(total, 0x41), "bytes differ");
    for r in &n.log[since..] {
        if r.dropped {
            dropped_seq = Some((r.seg.seq, r.seg.data.len()));
        }
    }
    let (seq, len) = dropped_seq.expect("a piece was dropped");
    assert_eq!(len, MSS, "a full piece");
    let re: Vec<&Rec> =
        n.log[since..].iter().filter(|r| r.from == A && r.seg.rexmit && !r.seg.data.is_empty()).collect();
    assert_eq!(
        re.len(),
        1,
        "only the lost piece is resent: {:?}",
        re.iter().map(|r| (r.seg.seq, r.seg.data.len())).collect::<Vec<_>>()
    );
    assert_eq!((re[0].seg.seq, re[0].seg.data.len()), (seq, MSS));
    assert_eq!(
        n.mib(A, "tcpOutSackRetransSegs") + n.mib(A, "tcpOutFastRetrans"),
        2 - u64::from(n.mib(A, "tcpOutSackRetransSegs") == 0)
    );
    assert_eq!(n.mib(A, "tcpTimRetrans"), 0, "no timeout");
    assert!(n.mib(A, "tcpOutLsoSegs") > 0);
    // On the wire every piece fits the MSS.
    assert!(n.log[since..].iter().filter(|r| r.from == A).all(|r| r.seg.data.len() <= MSS));
}

#[test]
fn a_large_retransmission_after_a_timeout_stops_at_sacked_data() {
    let mut n = Net::new(9);
    n.establish(cfg(), cfg());
    lso(&mut n, A, true);
    n.tso_cut = true;
    // Let cwnd grow first.
    n.app[A].out = pattern(400_000, 0x51);
    assert!(n.run_until(|n| n.app[B].got.len() == 400_000, 30_000_000));
    // Then lose a whole window but its last piece: only an RTO brings it
    // back; the retransmissions may be large but never cover the piece
    // B holds.
    let base = n.sent[A];
    n.filter = Some(Box::new(move |from, seg, idx| {
        from == A && !seg.data.is_empty() && (base..base + 40).contains(&idx) && idx != base + 19
    }));
    let since = n.log.len();
    n.app[A].out.extend(pattern(40 * MSS, 0x52));
    n.app[A].shutdown_when_done = true;
    let total = n.app[A].out.len();
    assert!(
        n.run_until(|n| n.app[B].got.len() == total && n.t(B).peer_closed(), 120_000_000),
        "B got {}",
        n.app[B].got.len()
    );
    let mut want = pattern(400_000, 0x51);
    want.extend(pattern(40 * MSS, 0x52));
    assert!(n.app[B].got == want, "bytes differ");
    assert!(n.mib(A, "tcpTimRetrans") >= 1, "an RTO");
    let kept = n.log[since..]
        .iter()
        .find(|r| r.from == A && !r.dropped && !r.seg.data.is_empty())
        .map(|r| r.seg.seq)
        .expect("the piece that got through");
    for r in n.log[since..].iter().filter(|r| r.from == A && r.seg.rexmit) {
        let end = r.seg.seq + r.seg.data.len();
        assert!(!(r.seg.seq.le(kept) && end.gt(kept)), "a retransmission covered the SACKed piece at {kept:?}");
    }
}

#[test]
fn nagle_holds_the_short_tail_of_a_large_send() {
    // Nagle on: 2 MSS + 100 bytes with nothing in flight: the 2 MSS go as
    // one large segment, the 100 wait for the ACK.
    let mut n = Net::new(10);
    n.establish(cfg(), cfg());
    lso(&mut n, A, true);
    let since = n.log.len();
    let data = pattern(2 * MSS + 100, 0x61);
    let d = data.clone();
    assert_eq!(n.call(A, |t, ctx| t.send(&d, ctx)), Ok(2 * MSS + 100));
    let segs = data_from_a(&n, since);
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(segs[0].seg.data.len(), 2 * MSS);
    assert_eq!(segs[0].seg.lso_mss, Some(MSS as u16));
    assert!(n.run_until(|n| n.app[B].got.len() == data.len(), 5_000_000));
    let segs = data_from_a(&n, since);
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[1].seg.data.len(), 100, "the tail after the ACK");
    assert!(segs[1].t_us > segs[0].t_us);

    // TCP_NODELAY: the tail rides along.
    let mut n = Net::new(11);
    n.establish(TcbConfig { nodelay: true, ..cfg() }, cfg());
    lso(&mut n, A, true);
    let since = n.log.len();
    let d = data.clone();
    assert_eq!(n.call(A, |t, ctx| t.send(&d, ctx)), Ok(2 * MSS + 100));
    let segs = data_from_a(&n, since);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].seg.data.len(), 2 * MSS + 100);
    assert!(segs[0].seg.has(TcpFlags::PSH));

    // The initial window (4380 bytes, 3 MSS) bounds a large send too.
    let mut n = Net::new(12);
    n.establish(cfg(), cfg());
    lso(&mut n, A, true);
    let since = n.log.len();
    let d = pattern(20 * MSS, 0x62);
    assert_eq!(n.call(A, |t, ctx| t.send(&d, ctx)), Ok(20 * MSS));
    let segs = data_from_a(&n, since);
    assert_eq!(segs.iter().map(|r| r.seg.data.len()).collect::<Vec<_>>(), [3 * MSS], "cwnd, in whole MSS");
}

#[test]
fn without_the_capability_no_segment_is_larger_than_the_mss() {
    let mut n = Net::new(13);
    n.establish(cfg(), cfg());
    lso(&mut n, A, true);
    lso(&mut n, A, false);
    let since = n.log.len();
    n.app[A].out = pattern(1 << 20, 0x71);
    assert!(n.run_until(|n| n.app[B].got.len() == 1 << 20, 60_000_000));
    assert!(n.log[since..].iter().filter(|r| r.from == A).all(|r| r.seg.data.len() <= MSS && r.seg.lso_mss.is_none()));
    assert_eq!(n.mib(A, "tcpOutLsoSegs"), 0);
}

#[test]
fn a_large_received_segment_is_taken_as_one_and_acked_at_once() {
    let mut n = Net::new(14);
    n.establish(cfg(), cfg());
    let before_segs = n.mib(B, "tcpInInorderSegs");
    let data = pattern(20 * MSS, 0x81);
    let seg = n.forge(B, TcpFlags::ACK | TcpFlags::PSH, &data);
    let start = seg.seq;
    let since = n.log.len();
    n.inject(B, &seg);
    assert_eq!(n.t(B).rcv_nxt(), start + data.len(), "all taken");
    assert_eq!(n.mib(B, "tcpInInorderSegs"), before_segs + 1, "as one segment");
    assert_eq!(n.mib(B, "tcpInLargeSegs"), 1);
    // The ACK goes at once (it holds 20 full segments), for all of it.
    let acks: Vec<&Rec> = n.log[since..].iter().filter(|r| r.from == B).collect();
    assert_eq!(acks.len(), 1, "one ACK: {acks:?}");
    assert_eq!(acks[0].seg.ack, start + data.len());
    assert_eq!(acks[0].t_us, n.now_us, "not delayed");
    n.read(B);
    assert!(n.app[B].got == data);

    // One full segment alone: the ACK is delayed, as always.
    let since = n.log.len();
    let d1 = pattern(MSS, 0x82);
    let mut seg = n.forge(B, TcpFlags::ACK, &d1);
    seg.seq = start + data.len();
    n.inject(B, &seg);
    let early: Vec<&Rec> = n.log[since..].iter().filter(|r| r.from == B).collect();
    assert!(early.is_empty(), "one segment: the ACK waits: {early:?}");
    assert_eq!(n.mib(B, "tcpInLargeSegs"), 1);
    let _ = SeqNum(0);
}
