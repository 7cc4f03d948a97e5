//! Tests of the virtual switch, MAC clients, VNICs and etherstubs.

use std::sync::{Arc, Mutex};
use std::vec::Vec;

use crate::client::{MacClient, Protection};
use crate::dma::host::HeapDma;
use crate::fake::{FakeNic, tcp4_frame};
use crate::link::{self, MacSpec};
use crate::mblk::MblkChain;

type Got = Arc<Mutex<Vec<Vec<u8>>>>;

fn collect(c: &MacClient) -> Got {
    let got: Got = Arc::default();
    let g = got.clone();
    c.set_rx(Some(Arc::new(move |chain: MblkChain| {
        for m in chain {
            let mut b = std::vec![0u8; m.total_len()];
            m.copy_to(&mut b);
            g.lock().unwrap().push(b);
        }
    })));
    got
}

fn frame(dst: [u8; 6], src: [u8; 6], et: u16, len: usize) -> Vec<u8> {
    let mut f = std::vec![0u8; len.max(60)];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&et.to_be_bytes());
    f
}

fn send(c: &Arc<MacClient>, f: &[u8]) {
    let mut m = c.alloc_tx(f.len()).expect("tx buffer");
    m.data_mut().copy_from_slice(f);
    c.tx(m);
}

#[test]
fn etherstub_switches_unicast_and_replicates_broadcast_without_a_wire() {
    link::create_etherstub("tstub1", Arc::new(HeapDma::default())).unwrap();
    let a = link::create_vnic("tsa1", "tstub1", MacSpec::Random, 0, 1).unwrap();
    let b = link::create_vnic("tsb1", "tstub1", MacSpec::Random, 0, 2).unwrap();
    let c = link::create_vnic("tsc1", "tstub1", MacSpec::Fixed([2, 8, 0x20, 1, 2, 3]), 0, 3).unwrap();
    assert_eq!(&a.addr()[..3], &link::RANDOM_PREFIX);
    assert_ne!(a.addr(), b.addr());
    let (ga, gb, gc) = (collect(&a), collect(&b), collect(&c));
    let f = frame(b.addr(), a.addr(), 0x0800, 100);
    send(&a, &f);
    assert_eq!(gb.lock().unwrap().as_slice(), &[f.clone()]);
    assert!(ga.lock().unwrap().is_empty() && gc.lock().unwrap().is_empty());
    let bc = frame([0xff; 6], c.addr(), 0x0806, 60);
    send(&c, &bc);
    assert_eq!(ga.lock().unwrap().as_slice(), &[bc.clone()]);
    assert_eq!(gb.lock().unwrap().len(), 2);
    assert!(gc.lock().unwrap().is_empty(), "no copy back to the sender");
    // Unicast to nobody on a stub: dropped and counted.
    send(&a, &frame([2, 0, 0, 0, 0, 9], a.addr(), 0x0800, 60));
    let sw = a.lower().unwrap();
    assert_eq!(sw.stats.unknown_unicast.load(core::sync::atomic::Ordering::Relaxed), 1);
    let sa = a.stats.snapshot();
    assert_eq!((sa.local_opackets, sa.local_ipackets), (1, 1));
    // Busy rules.
    assert!(matches!(link::delete_etherstub("tstub1"), Err(link::LinkError::Busy(..))));
    assert!(matches!(link::delete_vnic("tsa1"), Err(link::LinkError::Busy(..))), "plumbed");
    a.set_rx(None);
    link::delete_vnic("tsa1").unwrap();
    assert!(link::datalink("tsa1").is_none());
    assert!(matches!(link::create_vnic("tsb1", "tstub1", MacSpec::Random, 0, 4), Err(link::LinkError::Exists(_))));
    assert!(matches!(link::create_vnic("bad!", "tstub1", MacSpec::Random, 0, 4), Err(link::LinkError::InvalidName(_))));
    assert!(matches!(link::create_vnic("tsd1", "nostub9", MacSpec::Random, 0, 4), Err(link::LinkError::NotFound(_))));
    assert!(matches!(
        link::create_vnic("tsd1", "tstub1", MacSpec::Fixed(c.addr()), 0, 4),
        Err(link::LinkError::MacInUse(_))
    ));
    assert!(matches!(link::create_vnic("tsd1", "tstub1", MacSpec::Factory, 0, 4), Err(link::LinkError::NoFactoryAddr)));
}

#[test]
fn vnics_over_a_nic_share_its_wire_and_switch_locally() {
    let nic = FakeNic::new(1, 1);
    let mac = nic.register().unwrap();
    mac.start().unwrap();
    let primary = mac.primary().clone();
    let gp = collect(&primary);
    let v = link::create_vnic("tsv1", mac.link(), MacSpec::Auto, 0, 7).unwrap();
    assert_eq!(v.hw_group(), None, "the fake's single group gives a software lane");
    let gv = collect(&v);
    // From the wire to the VNIC's address: classified to it, not the primary.
    let f = frame(v.addr(), [2, 0, 0, 0, 0, 1], 0x0800, 80);
    assert!(nic.inject(0, &f));
    mac.rx_poll_step(0);
    while mac.rx_worker_step(0) {}
    assert_eq!(gv.lock().unwrap().as_slice(), &[f]);
    assert!(gp.lock().unwrap().is_empty());
    // VNIC to primary: local, never on the wire.
    let f = frame(primary.addr(), v.addr(), 0x0800, 70);
    send(&v, &f);
    assert_eq!(gp.lock().unwrap().as_slice(), &[f]);
    assert!(nic.take_sent(0).is_empty());
    // To elsewhere: the wire.
    send(&v, &frame([2, 0, 0, 0, 0, 1], v.addr(), 0x0800, 70));
    assert_eq!(nic.take_sent(0).len(), 1);
    v.set_rx(None);
    link::delete_vnic("tsv1").unwrap();
}

#[test]
fn vlan_clients_tag_on_send_and_receive_untagged() {
    link::create_etherstub("tstub2", Arc::new(HeapDma::default())).unwrap();
    let a = link::create_vnic("tva2", "tstub2", MacSpec::Random, 5, 11).unwrap();
    let b = link::create_vnic("tvb2", "tstub2", MacSpec::Random, 5, 12).unwrap();
    let other = link::create_vnic("tvc2", "tstub2", MacSpec::Random, 0, 13).unwrap();
    let (gb, go) = (collect(&b), collect(&other));
    let f = frame(b.addr(), a.addr(), 0x0800, 100);
    send(&a, &f);
    assert_eq!(gb.lock().unwrap().as_slice(), &[f], "tag added and stripped");
    send(&a, &frame([0xff; 6], a.addr(), 0x0806, 60));
    assert_eq!(gb.lock().unwrap().len(), 2);
    assert!(go.lock().unwrap().is_empty(), "another VLAN sees nothing");
    assert!(matches!(link::create_vnic("tvd2", "tstub2", MacSpec::Random, 4095, 1), Err(link::LinkError::InvalidVid(4095))));
}

#[test]
fn protection_drops_forged_frames_and_counts_them() {
    link::create_etherstub("tstub3", Arc::new(HeapDma::default())).unwrap();
    let a = link::create_vnic("tpa3", "tstub3", MacSpec::Random, 0, 21).unwrap();
    let b = link::create_vnic("tpb3", "tstub3", MacSpec::Random, 0, 22).unwrap();
    let gb = collect(&b);
    a.set_protection(Protection { mac_nospoof: true, ..Protection::default() });
    send(&a, &frame(b.addr(), [2, 9, 9, 9, 9, 9], 0x0800, 60));
    assert!(gb.lock().unwrap().is_empty());
    assert_eq!(a.stats.snapshot().spoof_drops, 1);
    let mut ip = frame(b.addr(), a.addr(), 0x0800, 60);
    ip[26..30].copy_from_slice(&[10, 0, 0, 9]);
    a.set_protection(Protection { ip_nospoof: true, allowed_ips: std::vec![([10, 0, 0, 1], 32)], ..Protection::default() });
    send(&a, &ip);
    assert_eq!(a.stats.snapshot().spoof_drops, 2);
    ip[26..30].copy_from_slice(&[10, 0, 0, 1]);
    send(&a, &ip);
    assert_eq!(gb.lock().unwrap().len(), 1);
    a.set_protection(Protection { restricted: true, ..Protection::default() });
    send(&a, &frame(b.addr(), a.addr(), 0x88cc, 60));
    assert_eq!(a.stats.snapshot().spoof_drops, 3);
    let _ = tcp4_frame(1, 2, 60);
}

/// An Ethernet + IPv4 (no options) + UDP frame from `src` to `dst` whose
/// UDP checksum field holds the pseudo-header sum (a partial checksum, as
/// a stack leaves it for the device), and the 16-bit words of its pseudo
/// header.
fn partial_udp(dst: [u8; 6], src: [u8; 6], payload: &[u8]) -> (Vec<u8>, [u16; 6]) {
    let ulen = 8 + payload.len();
    let pseudo = [0x0a00, 0x0001, 0x0a00, 0x0002, 17, ulen as u16];
    let mut f = frame(dst, src, 0x0800, 0);
    f.truncate(14);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + ulen) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x07]);
    f.extend_from_slice(&(ulen as u16).to_be_bytes());
    f.extend_from_slice(&ones_sum(&pseudo, &[]).to_be_bytes());
    f.extend_from_slice(payload);
    (f, pseudo)
}

fn ones_sum(words: &[u16], bytes: &[u8]) -> u16 {
    let mut s: u32 = words.iter().map(|w| u32::from(*w)).sum();
    let mut c = bytes.chunks_exact(2);
    for w in &mut c {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [l] = c.remainder() {
        s += u32::from(*l) << 8;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn send_partial(c: &Arc<MacClient>, f: &[u8], start: u16) {
    let mut m = c.alloc_tx(f.len()).expect("tx buffer");
    m.data_mut().copy_from_slice(f);
    m.meta.cksum = crate::mblk::Cksum::Partial { start, offset: 6 };
    c.tx(m);
}

#[test]
fn partial_checksums_are_finished_wherever_no_device_will() {
    use core::sync::atomic::Ordering::Relaxed;
    // VNIC to VNIC on an etherstub, on VLAN 9 (the tag moves the start):
    // the receiver gets a complete checksum.
    link::create_etherstub("tstub5", Arc::new(HeapDma::default())).unwrap();
    let a = link::create_vnic("tpa5", "tstub5", MacSpec::Random, 9, 21).unwrap();
    let b = link::create_vnic("tpb5", "tstub5", MacSpec::Random, 9, 22).unwrap();
    let gb = collect(&b);
    let (f, pseudo) = partial_udp(b.addr(), a.addr(), b"odd");
    send_partial(&a, &f, 34);
    let got = gb.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][..40], f[..40], "all but the checksum as sent");
    assert_eq!(ones_sum(&pseudo, &got[0][34..]), 0xffff, "the receiver's check passes");
    let sw = a.lower().unwrap();
    assert_eq!(sw.stats.sw_cksum.load(Relaxed), 1);
    // Offsets outside the frame: dropped and counted, never half-done.
    send_partial(&a, &f[..38], 34);
    assert_eq!(gb.lock().unwrap().len(), 1);
    assert_eq!(sw.stats.cksum_drops.load(Relaxed), 1);
    b.set_rx(None);

    // A NIC without Tx checksum offload: finished before the ring.
    let nic = FakeNic::new(1, 1);
    let mac = nic.register().unwrap();
    mac.start().unwrap();
    let p = mac.primary().clone();
    let (f, pseudo) = partial_udp([2, 0, 0, 0, 0, 1], p.addr(), b"to the wire");
    send_partial(&p, &f, 34);
    let sent = nic.take_sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(ones_sum(&pseudo, &sent[0][34..]), 0xffff);
    assert_eq!(mac.stats.tx_sw_cksum.load(Relaxed), 1);

    // A NIC that offloads it: left for the device, untouched.
    let mut info = crate::fake::fake_info(1, 1);
    info.cksum.tx_partial = true;
    let nic2 = FakeNic::with_info(info);
    let mac2 = nic2.register().unwrap();
    mac2.start().unwrap();
    let p2 = mac2.primary().clone();
    let (f, _) = partial_udp([2, 0, 0, 0, 0, 1], p2.addr(), b"offloaded");
    send_partial(&p2, &f, 34);
    assert_eq!(nic2.take_sent(0), std::vec![f], "the pseudo-header sum, for the device to finish");
    assert_eq!(mac2.stats.tx_sw_cksum.load(Relaxed), 0);
}

/// A large TCP/IPv4 frame from `src` to `dst` of `payload` bytes with
/// MSS `mss`, as a stack hands it over: headers and the first bytes in
/// one buffer, the rest in continuation buffers from the client, the
/// pseudo-header sum in the checksum field.
fn send_large(c: &Arc<MacClient>, dst: [u8; 6], payload: &[u8], mss: u16) {
    use crate::mblk::{Cksum, Gso, GsoKind};
    let mut f = crate::fake::tcp4_frame(19, 5000, 54);
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&c.addr());
    f[16..18].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
    f[47] = 0x19; // ACK PSH FIN
    let mut s: u32 = 6 + 20 + payload.len() as u32;
    for w in f[26..34].chunks(2) {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    f[50..52].copy_from_slice(&(s as u16).to_be_bytes());
    let mut m = c.alloc_tx(54).expect("tx buffer");
    m.data_mut().copy_from_slice(&f);
    for chunk in payload.chunks(1500) {
        let mut b = c.alloc_tx(chunk.len()).expect("tx buffer");
        b.data_mut().copy_from_slice(chunk);
        m.push_cont(b);
    }
    m.meta.cksum = Cksum::Partial { start: 34, offset: 16 };
    m.meta.gso = Some(Gso { kind: GsoKind::Tcp4, mss, hdr_len: 54 });
    c.tx(m);
}

/// Checks frames cut from a [`send_large`] frame: each at most `mss` of
/// payload, valid checksums, FIN and PSH on the last; returns the payload.
fn check_pieces(got: &[Vec<u8>], mss: usize, l2: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for (i, f) in got.iter().enumerate() {
        let l4 = l2 + 20;
        let n = f.len() - l4 - 20;
        assert!(n <= mss, "piece {i} carries {n} > {mss}");
        let tsum_words = [0x0a00u16, 1, 0x0a00, 2, 6, (20 + n) as u16];
        assert_eq!(ones_sum(&tsum_words, &f[l4..]), 0xffff, "TCP checksum of piece {i}");
        assert_eq!(ones_sum(&[], &f[l2..l4]), 0xffff, "IP checksum of piece {i}");
        let last = i == got.len() - 1;
        assert_eq!(f[l4 + 13] & 0x09 != 0, last, "FIN/PSH on the last piece only");
        data.extend_from_slice(&f[l4 + 20..]);
    }
    data
}

#[test]
fn large_sends_are_offered_where_the_nic_segments_and_cut_in_software_elsewhere() {
    use core::sync::atomic::Ordering::Relaxed;
    let payload: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();

    // VNIC to VNIC on an etherstub, on VLAN 9: no capability, and a
    // large frame anyway reaches the receiver in MSS pieces.
    link::create_etherstub("tstub7", Arc::new(HeapDma::default())).unwrap();
    let a = link::create_vnic("tga7", "tstub7", MacSpec::Random, 9, 31).unwrap();
    let b = link::create_vnic("tgb7", "tstub7", MacSpec::Random, 9, 32).unwrap();
    assert_eq!(a.lso_tcp4_max(), None, "an etherstub offers no LSO");
    let gb = collect(&b);
    send_large(&a, b.addr(), &payload, 1460);
    let got = gb.lock().unwrap().clone();
    assert_eq!(got.len(), 7, "9000 bytes in 1460-byte pieces");
    assert_eq!(check_pieces(&got, 1460, 14), payload, "byte-exact");
    let sw = a.lower().unwrap();
    assert_eq!((sw.stats.sw_gso.load(Relaxed), sw.stats.sw_gso_frames.load(Relaxed)), (1, 7));

    // A NIC without TSO: no capability; cut before the ring.
    let nic = FakeNic::new(1, 1);
    let mac = nic.register().unwrap();
    mac.start().unwrap();
    let p = mac.primary().clone();
    assert_eq!(p.lso_tcp4_max(), None);
    send_large(&p, [2, 0, 0, 0, 0, 1], &payload, 1000);
    let sent = nic.take_sent(0);
    assert_eq!(sent.len(), 9);
    assert_eq!(check_pieces(&sent, 1000, 14), payload);
    assert_eq!(mac.stats.tx_sw_gso.load(Relaxed), 1);

    // A NIC with TSO: offered, and the large frame goes to the ring whole;
    // a VNIC on the same NIC still receives pieces.
    let mut info = crate::fake::fake_info(1, 1);
    info.cksum.tx_partial = true;
    info.lso = crate::provider::LsoCaps { tx_tcp4: true, max_size: 65_535 + 14, ..Default::default() };
    let nic2 = FakeNic::with_info(info);
    let mac2 = nic2.register().unwrap();
    mac2.start().unwrap();
    let p2 = mac2.primary().clone();
    assert_eq!(p2.lso_tcp4_max(), Some(65_535 + 14));
    send_large(&p2, [2, 0, 0, 0, 0, 1], &payload, 1460);
    let sent = nic2.take_sent(0);
    assert_eq!(sent.len(), 1, "one large frame for the device");
    assert_eq!(sent[0].len(), 54 + payload.len());
    assert_eq!(mac2.stats.tx_sw_gso.load(Relaxed), 0);
    let v = link::create_vnic("tgv7", mac2.link(), MacSpec::Random, 0, 33).unwrap();
    assert_eq!(v.lso_tcp4_max(), Some(65_535 + 14), "a VNIC over it offers it too");
    let gv = collect(&v);
    send_large(&p2, v.addr(), &payload, 1460);
    let got = gv.lock().unwrap().clone();
    assert_eq!(check_pieces(&got, 1460, 14), payload);
    assert!(nic2.take_sent(0).is_empty(), "switched inside, never on the wire");

    // A request that does not match its headers: dropped and counted.
    let mut bad = c_alloc_bad(&a, b.addr());
    bad.meta.gso = Some(crate::mblk::Gso { kind: crate::mblk::GsoKind::Tcp4, mss: 1460, hdr_len: 40 });
    let before = gb.lock().unwrap().len();
    a.tx(bad);
    assert_eq!(gb.lock().unwrap().len(), before);
    assert_eq!(sw.stats.gso_drops.load(Relaxed), 1);
}

fn c_alloc_bad(c: &Arc<MacClient>, dst: [u8; 6]) -> crate::mblk::Mblk {
    let mut f = crate::fake::tcp4_frame(19, 5000, 1500);
    f[0..6].copy_from_slice(&dst);
    let mut m = c.alloc_tx(f.len()).expect("tx buffer");
    m.data_mut().copy_from_slice(&f);
    m
}
