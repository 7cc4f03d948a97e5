//! A SYN-ACK answers every option a SYN offers (MSS, window scale,
//! SACK-permitted, timestamps), through the wire code both ways.

use arbalest_netstack::fireengine::ip::mib::TcpMib;
use arbalest_netstack::fireengine::tcp::challenge::ChallengeLimiter;
use arbalest_netstack::fireengine::tcp::config::TcbConfig;
use arbalest_netstack::fireengine::tcp::segment::SegIn;
use arbalest_netstack::fireengine::tcp::seq::SeqNum;
use arbalest_netstack::fireengine::tcp::tcb::{Tcb, TcpCtx};
use arbalest_netstack::fireengine::wire::tcp::{TcpFlags, TcpHeader, TcpOptions, Timestamps};
use std::net::Ipv4Addr;

#[test]
fn a_syn_ack_carries_every_option_the_syn_offered() {
    let mib = TcpMib::new();
    let ch = ChallengeLimiter::new(1000);
    let mut out = Vec::new();
    let mut o = TcpOptions::new();
    o.mss = Some(1460);
    o.window_scale = Some(7);
    o.sack_permitted = true;
    o.timestamps = Some(Timestamps { tsval: 12345, tsecr: 0 });
    let syn = TcpHeader { options: o, ..TcpHeader::new(40000, 7, 1000, 0, TcpFlags::SYN, 64240) };
    let (a, b) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
    let mut buf = vec![0u8; syn.header_len()];
    syn.emit(&mut buf, a, b).unwrap();
    let (h, data) = TcpHeader::parse(&buf, a, b, true).unwrap();
    let seg = SegIn::from_header(&h, data);
    let mut ctx = TcpCtx { now_us: 5_000_000, out: &mut out, mib: &mib, challenge: &ch };
    let t = Tcb::accept(TcbConfig::default(), SeqNum(777), 99, &seg, &mut ctx);
    assert_eq!(t.options(), (true, true, true));
    assert_eq!(out.len(), 1);
    let sa = &out[0];
    assert!(sa.has(TcpFlags::SYN) && sa.has(TcpFlags::ACK));
    let hh = sa.header(7, 40000);
    let mut buf = vec![0u8; hh.header_len()];
    hh.emit(&mut buf, b, a).unwrap();
    let (p, _) = TcpHeader::parse(&buf, b, a, true).unwrap();
    assert_eq!(p.options.mss, Some(1460));
    assert!(p.options.window_scale.is_some(), "{:?}", p.options);
    assert!(p.options.sack_permitted, "{:?}", p.options);
    assert_eq!(p.options.timestamps.map(|t| t.tsecr), Some(12345), "{:?}", p.options);
    assert_eq!(p.ack, 1001);
}

#[test]
fn linux_syn_options_parse_whole() {
    // MSS 1460, SACK-permitted, timestamps, NOP, window scale 10: what a
    // Linux SYN carries.
    let area = [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0x30, 0x39, 0, 0, 0, 0, 1, 3, 3, 10];
    let o = TcpOptions::parse(&area);
    assert_eq!(o.mss, Some(1460));
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps.map(|t| t.tsval), Some(12345));
    assert_eq!(o.window_scale, Some(10));
    assert!(!o.malformed);
}
