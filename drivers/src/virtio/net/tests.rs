//! Driver tests against the simulated device of `testing`.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use arbalest_mac::{BufPool, Cksum, Gso, GsoKind, LinkState, MacError, MacProvider, MacUpcalls, Mblk, MblkChain, PktMeta};
use spin::Mutex;

use super::hdr::{F_DATA_VALID, F_NEEDS_CSUM, GSO_TCPV4, NetHdr};
use super::*;
use crate::pci::PciDevice;
use crate::testing::{FakeConfigSpace, FakeHal, FakeVirtioNet, FakeVirtioNetConfig};
use crate::virtio::transport::{NO_VECTOR, status};

#[derive(Default)]
struct Recorder {
    rx: Mutex<Vec<usize>>,
    tx: Mutex<Vec<usize>>,
    link: Mutex<Vec<LinkState>>,
}

impl MacUpcalls for Recorder {
    fn rx_ready(&self, ring: usize) {
        self.rx.lock().push(ring);
    }
    fn tx_resume(&self, ring: usize) {
        self.tx.lock().push(ring);
    }
    fn link_changed(&self, state: LinkState) {
        self.link.lock().push(state);
    }
}

struct Rig {
    hal: Arc<FakeHal>,
    dev: Arc<FakeVirtioNet>,
    nic: Arc<VirtioNet>,
    up: Arc<Recorder>,
}

type Probed = (Arc<FakeHal>, Arc<FakeVirtioNet>, Arc<VirtioNet>);

fn probe(cfg: FakeVirtioNetConfig, cpus: usize, tun: Tunables) -> Result<Probed, Error> {
    let hal = FakeHal::new(cpus);
    let space = FakeConfigSpace::new();
    let bdf = Bdf::new(0, 3, 0);
    let dev = FakeVirtioNet::install(&space, &hal, bdf, cfg);
    let pci = PciDevice::read(&space, bdf);
    let nic = VirtioNet::probe_with(&pci, &space, hal.clone(), tun)?;
    Ok((hal, dev, nic))
}

fn rig_with(cfg: FakeVirtioNetConfig, cpus: usize, tun: Tunables) -> Rig {
    let (hal, dev, nic) = probe(cfg, cpus, tun).unwrap();
    let up = Arc::new(Recorder::default());
    nic.start(up.clone()).unwrap();
    Rig { hal, dev, nic, up }
}

fn rig() -> Rig {
    rig_with(FakeVirtioNetConfig::default(), 2, Tunables::default())
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

fn tx_pool(hal: &FakeHal) -> Arc<BufPool> {
    BufPool::new(hal.dma.clone(), 2048, 64).unwrap()
}

/// A Tx packet with `headroom` bytes before `data` (split over buffers of
/// `chunk` bytes).
fn tx_pkt(pool: &Arc<BufPool>, headroom: usize, data: &[u8], chunk: usize) -> Mblk {
    let mut parts = data.chunks(chunk);
    let mut m = Mblk::with_range(pool.alloc().unwrap(), headroom, 0);
    assert!(m.append(parts.next().unwrap_or(&[])));
    for p in parts {
        let mut c = Mblk::new(pool.alloc().unwrap());
        assert!(c.append(p));
        m.push_cont(c);
    }
    m
}

#[test]
fn probe_sizes_pairs_and_reports_info() {
    let (_, dev, nic) = probe(FakeVirtioNetConfig::default(), 2, Tunables::default()).unwrap();
    let info = nic.info();
    assert_eq!(info.driver, "vioif");
    assert_eq!(info.factory_addr, [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    assert_eq!((info.rx_rings, info.tx_rings), (2, 2), "min(4 pairs, 2 CPUs)");
    assert_eq!(info.rx_groups, vec![GroupInfo { rings: vec![0, 1], unicast_slots: 32 }]);
    assert!(info.pollable);
    assert!(info.cksum.tx_partial && info.cksum.rx_verify);
    assert!(info.lso.tx_tcp4 && info.lso.tx_tcp6 && info.lso.rx_tcp4 && info.lso.rx_tcp6);
    assert_eq!(info.lso.max_size, LSO_MAX);
    assert_eq!(nic.max_pairs(), 4);
    // Unwanted offered bits were not taken; the device sits reset.
    assert_eq!(dev.driver_features() & features::GUEST_UFO, 0);
    assert_eq!(dev.status(), 0);
    assert_eq!(nic.rx_ring(1).unwrap().cpu(), 1);
    assert!(nic.rx_ring(2).is_none());
}

#[test]
fn start_wires_queues_vectors_and_control() {
    let r = rig();
    assert_eq!(r.dev.status() & status::DRIVER_OK, status::DRIVER_OK);
    assert_eq!(r.dev.curr_pairs(), 2);
    // Vectors: config 0, rx0 1, tx0 2, rx1 3, tx1 4; ctrl polled.
    assert_eq!(r.dev.config_vector(), 0);
    assert_eq!((r.dev.queue_vector(0), r.dev.queue_vector(1), r.dev.queue_vector(2), r.dev.queue_vector(3)), (1, 2, 3, 4));
    assert_eq!(r.dev.queue_vector(8), NO_VECTOR, "ctrl queue at 2 * max_pairs");
    assert!(r.dev.queue(8).0);
    assert!(!r.dev.queue(4).0, "pairs beyond those in use stay off");
    // Each vector on its ring's CPU, allocated in entry order.
    let cpus: Vec<usize> = r.hal.vectors().iter().map(|m| m.cpu).collect();
    assert_eq!(cpus, [0, 0, 0, 1, 1]);
    let table: Vec<(u64, u32)> = (0..5).map(|i| r.nic.msix.entry(i)).collect();
    assert_eq!(table[3].0, 0xfee0_1000, "rx1 programmed for CPU 1");
    // Rx rings full of buffers.
    assert_eq!(r.dev.avail_pending(0), 256);
    assert_eq!(r.dev.avail_pending(2), 256);
    // Control: pairs, then promisc off, allmulti off, empty MAC table.
    let log = r.dev.ctrl_log();
    assert_eq!(log[0], (4, 0, vec![2, 0]));
    assert_eq!(log[1], (0, 0, vec![0]));
    assert_eq!(log[2], (0, 1, vec![0]));
    assert_eq!(log[3], (1, 0, vec![0; 8]));
    assert_eq!(r.nic.link_state(), LinkState::Up);
    assert_eq!(r.nic.speed_mbps(), 10_000);
}

#[test]
fn receive_single_buffer_with_interrupt() {
    let r = rig();
    let f = frame(60, 1);
    assert!(r.dev.deliver(1, NetHdr { flags: F_DATA_VALID, ..NetHdr::default() }, &f));
    assert_eq!(*r.up.rx.lock(), [1], "interrupt of ring 1 raised rx_ready(1)");
    let ring = r.nic.rx_ring(1).unwrap();
    assert_eq!(ring.stats().interrupts.load(Ordering::Relaxed), 1);
    let mut chain = ring.poll(usize::MAX);
    assert_eq!(chain.len(), 1);
    let m = chain.pop().unwrap();
    assert_eq!(m.data(), &f[..]);
    assert_eq!(m.headroom(), 12, "header skipped in place");
    assert_eq!(m.meta.cksum, Cksum::Verified);
    assert_eq!(m.meta.ring, 1);
    assert_eq!(ring.stats().snapshot().packets, 1);
    assert_eq!(ring.stats().snapshot().bytes, 60);
    assert_eq!(r.dev.avail_pending(2), 256, "buffer reposted");
}

#[test]
fn mergeable_receive_becomes_one_mblk_chain() {
    let r = rig();
    let f = frame(5000, 3);
    let hdr = NetHdr { flags: F_NEEDS_CSUM, gso_type: GSO_TCPV4, gso_size: 1448, hdr_len: 66, csum_start: 34, csum_offset: 16, ..NetHdr::default() };
    assert!(r.dev.deliver(0, hdr, &f));
    let mut chain = r.nic.rx_ring(0).unwrap().poll(usize::MAX);
    let m = chain.pop().unwrap();
    assert_eq!(m.segments(), 3);
    assert_eq!(m.total_len(), 5000);
    let mut out = vec![0; 5000];
    assert_eq!(m.copy_to(&mut out), 5000);
    assert_eq!(out, f);
    assert_eq!(m.meta.gso, Some(Gso { kind: GsoKind::Tcp4, mss: 1448, hdr_len: 66 }));
    assert_eq!(m.meta.cksum, Cksum::Verified);
}

#[test]
fn poll_budget_and_interrupt_suppression() {
    let r = rig();
    let ring = r.nic.rx_ring(0).unwrap();
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(100, 0)));
    assert_eq!(r.up.rx.lock().len(), 1);
    // The handler switched the interrupt off: more packets, no interrupt.
    for i in 0..4 {
        assert!(r.dev.deliver(0, NetHdr::default(), &frame(100, i)));
    }
    assert_eq!(r.up.rx.lock().len(), 1);
    assert_eq!(ring.stats().interrupts.load(Ordering::Relaxed), 1);
    // Bounded poll: at least one packet, stops once over the budget.
    assert_eq!(ring.poll(0).len(), 1);
    assert_eq!(ring.poll(150).len(), 2);
    // intr_enable with packets pending raises rx_ready itself.
    ring.intr_enable();
    assert_eq!(*r.up.rx.lock(), [0, 0]);
    assert_eq!(ring.poll(usize::MAX).len(), 2);
    ring.intr_enable();
    assert_eq!(r.up.rx.lock().len(), 2, "nothing pending: no call");
    // Back in interrupt mode.
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(100, 9)));
    assert_eq!(r.up.rx.lock().len(), 3);
    assert_eq!(ring.stats().interrupts.load(Ordering::Relaxed), 2);
    // intr_disable: silence.
    ring.poll(usize::MAX);
    ring.intr_disable();
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(100, 9)));
    assert_eq!(r.up.rx.lock().len(), 3);
}

#[test]
fn malformed_receives_are_dropped_and_counted() {
    let r = rig();
    let ring = r.nic.rx_ring(0).unwrap();
    let good_hdr = NetHdr { num_buffers: 1, ..NetHdr::default() }.to_bytes();
    let zero_bufs = NetHdr { num_buffers: 0, ..NetHdr::default() }.to_bytes();
    let mut short = good_hdr.to_vec();
    short.extend_from_slice(&[0; 10]);
    // shorter than the header; longer than the buffer; num_buffers 0;
    // shorter than an Ethernet header.
    assert!(r.dev.deliver_raw(0, &[&good_hdr, &good_hdr, &zero_bufs, &short], &[5, 4096, 100, 22]));
    // Too long without GSO (spans two buffers).
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(2000, 0)));
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(64, 5)));
    let chain = ring.poll(usize::MAX);
    assert_eq!(chain.len(), 1);
    assert_eq!(chain.iter().next().unwrap().data(), &frame(64, 5)[..]);
    assert_eq!(ring.stats().snapshot().drops, 5);
    assert_eq!(r.nic.counters().rx_malformed, 5);
    assert_eq!(r.nic.counters().resets, 0);
    assert_eq!(r.dev.avail_pending(0), 256, "every buffer reposted");
}

#[test]
fn a_bad_middle_buffer_drops_the_rest_of_its_packet_too() {
    let r = rig();
    let ring = r.nic.rx_ring(0).unwrap();
    // Buffer 1 announces 3 buffers; buffer 2 is bad (length 0); buffer 3
    // is the packet's tail but looks like a header of a 1-buffer frame:
    // it must be skipped, not delivered.
    let mut first = NetHdr { num_buffers: 3, ..NetHdr::default() }.to_bytes().to_vec();
    first.extend_from_slice(&frame(64, 1));
    let mut ghost = NetHdr { num_buffers: 1, ..NetHdr::default() }.to_bytes().to_vec();
    ghost.extend_from_slice(&frame(64, 2));
    let (l1, l3) = (first.len() as u32, ghost.len() as u32);
    assert!(r.dev.deliver_raw(0, &[&first, &[], &ghost], &[l1, 0, l3]));
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(64, 5)));
    let chain = ring.poll(usize::MAX);
    assert_eq!(chain.len(), 1, "only the good frame after the broken packet");
    assert_eq!(chain.iter().next().unwrap().data(), &frame(64, 5)[..]);
    assert_eq!(r.nic.counters().rx_malformed, 1);
    assert_eq!(r.dev.avail_pending(0), 256, "every buffer reposted");
}

#[test]
fn transmit_header_in_headroom_or_slot() {
    let r = rig();
    let pool = tx_pool(&r.hal);
    let ring = r.nic.tx_ring(1).unwrap();
    let f1 = frame(200, 1);
    let mut m1 = tx_pkt(&pool, 64, &f1, 2048);
    m1.meta = PktMeta { cksum: Cksum::Partial { start: 34, offset: 16 }, ..PktMeta::default() };
    let f2 = frame(3000, 2);
    let mut m2 = tx_pkt(&pool, 0, &f2, 1000);
    m2.meta = PktMeta {
        cksum: Cksum::Partial { start: 34, offset: 16 },
        gso: Some(Gso { kind: GsoKind::Tcp4, mss: 1448, hdr_len: 66 }),
        ..PktMeta::default()
    };
    let chain: MblkChain = [m1, m2].into_iter().collect();
    assert!(ring.tx(chain).is_empty());
    let sent = r.dev.complete_tx(1);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].1, f1);
    assert_eq!((sent[0].0.flags, sent[0].0.csum_start, sent[0].0.csum_offset), (F_NEEDS_CSUM, 34, 16));
    assert_eq!(sent[1].1, f2);
    assert_eq!((sent[1].0.gso_type, sent[1].0.gso_size, sent[1].0.hdr_len), (GSO_TCPV4, 1448, 66));
    assert_eq!(ring.stats().snapshot().packets, 2);
    assert_eq!(ring.stats().snapshot().bytes, 3200);
    // Completions are reclaimed: the buffers go back to their pool.
    ring.reclaim();
    assert_eq!(pool.available(), pool.capacity());
    assert!(r.up.tx.lock().is_empty(), "no resume without a refusal");
}

#[test]
fn transmit_refuses_what_the_device_cannot_take() {
    let cfg = FakeVirtioNetConfig { features: features::WANTED & !features::HOST_TSO6, ..FakeVirtioNetConfig::default() };
    let r = rig_with(cfg, 1, Tunables::default());
    let pool = tx_pool(&r.hal);
    let ring = r.nic.tx_ring(0).unwrap();
    let mut m = tx_pkt(&pool, 64, &frame(100, 0), 2048);
    m.meta.cksum = Cksum::Partial { start: 54, offset: 16 };
    m.meta.gso = Some(Gso { kind: GsoKind::Tcp6, mss: 1440, hdr_len: 86 });
    let empty = Mblk::with_range(pool.alloc().unwrap(), 64, 0);
    let rest = ring.tx([m, empty].into_iter().collect());
    assert!(rest.is_empty());
    assert_eq!(ring.stats().snapshot().drops, 2);
    assert_eq!(ring.stats().snapshot().errors, 1);
    assert!(r.dev.complete_tx(0).is_empty());
}

#[test]
fn full_ring_blocks_then_resumes() {
    let r = rig_with(FakeVirtioNetConfig::default(), 2, Tunables { queue_size: 8, ..Tunables::default() });
    let pool = tx_pool(&r.hal);
    let ring = r.nic.tx_ring(0).unwrap();
    let chain: MblkChain = (0..10).map(|i| tx_pkt(&pool, 64, &frame(100, i), 2048)).collect();
    let rest = ring.tx(chain);
    assert_eq!(rest.len(), 2, "8 descriptors, 8 packets");
    assert_eq!(ring.stats().snapshot().blocked, 1);
    // Completing most of them raises the Tx interrupt: tx_resume.
    let sent = r.dev.complete_tx(0);
    assert_eq!(sent.len(), 8);
    assert_eq!(*r.up.tx.lock(), [0]);
    assert_eq!(ring.stats().snapshot().unblocked, 1);
    let rest = ring.tx(rest);
    assert!(rest.is_empty());
    let sent = r.dev.complete_tx(0);
    assert_eq!(sent[1].1, frame(100, 9));
    assert_eq!(r.up.tx.lock().len(), 1, "interrupt off again");
}

#[test]
fn link_changes_reach_the_mac_layer() {
    let r = rig();
    r.dev.set_link(false);
    assert_eq!(*r.up.link.lock(), [LinkState::Down]);
    assert_eq!(r.nic.link_state(), LinkState::Down);
    r.dev.set_link(false);
    assert_eq!(r.up.link.lock().len(), 1, "no change, no upcall");
    r.dev.set_link(true);
    assert_eq!(*r.up.link.lock(), [LinkState::Down, LinkState::Up]);
    assert_eq!(r.nic.counters().link_changes, 2);
    assert_eq!(r.nic.config_interrupts(), 3);
}

#[test]
fn bad_used_entry_resets_the_device() {
    let r = rig();
    let resets_before = r.dev.resets();
    // A used entry naming a descriptor that is not in flight.
    r.dev.complete(0, &[(300, 64)]);
    let ring = r.nic.rx_ring(0).unwrap();
    assert!(ring.poll(usize::MAX).is_empty());
    assert_eq!(r.nic.counters().resets, 1);
    assert!(r.dev.resets() > resets_before);
    assert_eq!(r.dev.status() & status::DRIVER_OK, status::DRIVER_OK);
    assert_eq!(r.dev.curr_pairs(), 2, "control state replayed");
    assert_eq!(ring.stats().snapshot().errors, 1);
    // And the ring works again.
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(80, 4)));
    assert_eq!(ring.poll(usize::MAX).len(), 1);
    // A bad Tx completion too.
    let pool = tx_pool(&r.hal);
    let t = r.nic.tx_ring(1).unwrap();
    assert!(t.tx([tx_pkt(&pool, 64, &frame(60, 0), 2048)].into_iter().collect()).is_empty());
    r.dev.take_tx(1);
    r.dev.complete(3, &[(7, 0)]);
    t.reclaim();
    assert_eq!(r.nic.counters().resets, 2);
    assert_eq!(pool.available(), pool.capacity(), "in-flight packet dropped on reset");
    assert!(t.tx([tx_pkt(&pool, 64, &frame(60, 0), 2048)].into_iter().collect()).is_empty());
    assert_eq!(r.dev.complete_tx(1).len(), 1);
}

#[test]
fn device_needs_reset_is_handled_from_the_poll_path() {
    let r = rig();
    r.dev.signal_needs_reset();
    assert_eq!(*r.up.rx.lock(), [0], "ring 0 is asked to poll");
    r.nic.rx_ring(0).unwrap().poll(usize::MAX);
    assert_eq!(r.nic.counters().resets, 1);
    assert_eq!(r.dev.status() & (status::DRIVER_OK | status::DEVICE_NEEDS_RESET), status::DRIVER_OK);
}

#[test]
fn unicast_multicast_and_promisc_through_the_control_queue() {
    let r = rig();
    r.dev.clear_ctrl_log();
    let a = [2, 0, 0, 0, 0, 1];
    assert_eq!(r.nic.unicast_add(0, r.nic.info().factory_addr), Ok(()));
    assert!(r.dev.ctrl_log().is_empty(), "factory address needs no slot");
    assert_eq!(r.nic.unicast_add(1, a), Err(MacError::Invalid));
    r.nic.unicast_add(0, a).unwrap();
    let log = r.dev.ctrl_log();
    assert_eq!(log.last().unwrap(), &(1, 0, vec![1, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0]));
    for i in 0..30u8 {
        r.nic.unicast_add(0, [2, 0, 0, 0, 1, i]).unwrap();
    }
    assert_eq!(r.nic.unicast_add(0, [2, 0, 0, 0, 2, 0]), Err(MacError::NoSpace));
    r.nic.unicast_remove(0, a).unwrap();
    assert_eq!(r.nic.unicast_remove(0, a), Err(MacError::Invalid));
    let table = r.dev.ctrl_log().last().unwrap().2.clone();
    assert_eq!(table[0], 30);
    r.nic.multicast_add([1, 0, 0x5e, 0, 0, 1]).unwrap();
    let table = r.dev.ctrl_log().last().unwrap().2.clone();
    assert_eq!(&table[table.len() - 10..], &[1, 0, 0, 0, 1, 0, 0x5e, 0, 0, 1]);
    r.nic.set_promisc(true).unwrap();
    assert_eq!(r.dev.ctrl_log().last().unwrap(), &(0, 0, vec![1]));
    // The device refuses: an error, the filter unchanged.
    r.dev.set_ctrl_ack(1);
    assert_eq!(r.nic.unicast_add(0, [2, 0, 0, 0, 3, 0]), Err(MacError::Device));
    r.dev.set_ctrl_ack(0);
    // The device never answers: an error, and the next ring call resets.
    r.dev.set_ctrl_silent(true);
    assert_eq!(r.nic.set_promisc(false), Err(MacError::Device));
    r.dev.set_ctrl_silent(false);
    r.nic.rx_ring(1).unwrap().poll(usize::MAX);
    assert_eq!(r.nic.counters().resets, 1);
    assert_eq!(r.dev.ctrl_log().last().unwrap().2[0], 30, "filter replayed after reset");
}

#[test]
fn stop_frees_vectors_and_buffers_and_start_again_works() {
    let r = rig();
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 5);
    r.nic.stop();
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 0);
    assert_eq!(r.dev.status(), 0);
    assert!(r.nic.msix.is_masked(1));
    r.nic.start(r.up.clone()).unwrap();
    assert_eq!(r.dev.status() & status::DRIVER_OK, status::DRIVER_OK);
    assert!(r.dev.deliver(1, NetHdr::default(), &frame(70, 0)));
    assert_eq!(r.nic.rx_ring(1).unwrap().poll(usize::MAX).len(), 1);
}

#[test]
fn without_event_idx_or_mergeable_buffers() {
    let feats = features::WANTED & !(crate::virtio::features::RING_EVENT_IDX | features::MRG_RXBUF);
    let r = rig_with(FakeVirtioNetConfig { features: feats, ..FakeVirtioNetConfig::default() }, 2, Tunables::default());
    assert!(!r.nic.info().lso.rx_tcp4, "no coalesced receive without mergeable buffers");
    let ring = r.nic.rx_ring(0).unwrap();
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(1514, 0)));
    assert!(!r.dev.deliver(0, NetHdr::default(), &frame(4000, 0)), "does not fit one buffer");
    assert_eq!(r.up.rx.lock().len(), 1);
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(100, 0)));
    assert_eq!(r.up.rx.lock().len(), 1, "flag-based suppression");
    assert_eq!(ring.poll(usize::MAX).len(), 2);
    ring.intr_enable();
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(100, 0)));
    assert_eq!(r.up.rx.lock().len(), 2);
}

#[test]
fn minimal_device_single_queue_no_control() {
    let cfg = FakeVirtioNetConfig {
        device_id: 0x1000,
        features: crate::virtio::features::VERSION_1 | features::MAC,
        max_pairs: 1,
        msix_entries: 3,
        ..FakeVirtioNetConfig::default()
    };
    let r = rig_with(cfg, 4, Tunables::default());
    let info = r.nic.info();
    assert_eq!(info.rx_rings, 1);
    assert_eq!(info.cksum, CksumCaps::default());
    assert_eq!(info.lso.max_size, 0);
    assert!(r.dev.ctrl_log().is_empty());
    assert_eq!(r.nic.unicast_add(0, [2, 0, 0, 0, 0, 9]), Err(MacError::NotSupported));
    assert_eq!(r.nic.set_promisc(true), Err(MacError::NotSupported));
    assert_eq!(r.nic.link_state(), LinkState::Up, "no STATUS: assumed up");
    assert_eq!(r.nic.speed_mbps(), DEFAULT_SPEED_MBPS);
    // Checksum offload not negotiated: a partial-checksum packet is refused.
    let pool = tx_pool(&r.hal);
    let mut m = tx_pkt(&pool, 64, &frame(60, 0), 2048);
    m.meta.cksum = Cksum::Partial { start: 34, offset: 6 };
    assert!(r.nic.tx_ring(0).unwrap().tx([m].into_iter().collect()).is_empty());
    assert_eq!(r.nic.tx_ring(0).unwrap().stats().snapshot().errors, 1);
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(60, 0)));
    assert_eq!(r.nic.rx_ring(0).unwrap().poll(usize::MAX).len(), 1);
}

#[test]
fn probe_errors() {
    let legacy_only = FakeVirtioNetConfig { features: features::WANTED & !crate::virtio::features::VERSION_1, ..Default::default() };
    assert_eq!(probe(legacy_only, 1, Tunables::default()).err(), Some(Error::NotModern));
    let other = FakeVirtioNetConfig { device_id: 0x1042, ..Default::default() };
    assert_eq!(probe(other, 1, Tunables::default()).err(), Some(Error::NotSupported));
    let one_vector = FakeVirtioNetConfig { msix_entries: 2, ..Default::default() };
    assert_eq!(probe(one_vector, 1, Tunables::default()).err(), Some(Error::NoMsix));
    // Fewer MSI-X entries than 2 * pairs + 1: fewer pairs.
    let (_, _, nic) = probe(FakeVirtioNetConfig { msix_entries: 5, ..Default::default() }, 4, Tunables::default()).unwrap();
    assert_eq!(nic.pairs(), 2);
}

#[test]
fn reset_resumes_a_blocked_tx_ring() {
    let r = rig_with(FakeVirtioNetConfig::default(), 2, Tunables { queue_size: 8, ..Tunables::default() });
    let pool = tx_pool(&r.hal);
    let ring = r.nic.tx_ring(0).unwrap();
    let rest = ring.tx((0..10).map(|i| tx_pkt(&pool, 64, &frame(100, i), 2048)).collect());
    assert_eq!(rest.len(), 2);
    r.dev.take_tx(0);
    r.dev.complete(0, &[(300, 0)]);
    r.nic.rx_ring(0).unwrap().poll(usize::MAX);
    assert_eq!(r.nic.counters().resets, 1);
    assert_eq!(*r.up.tx.lock(), [0], "the reset emptied the ring: resume");
    assert_eq!(ring.stats().snapshot().drops, 8, "packets in flight dropped");
    assert!(ring.tx(rest).is_empty());
    assert_eq!(r.dev.complete_tx(0).len(), 2);
}

#[test]
fn a_device_that_fails_its_reset_is_given_up() {
    let r = rig();
    r.dev.set_ctrl_silent(true);
    r.dev.complete(0, &[(300, 0)]);
    let ring = r.nic.rx_ring(0).unwrap();
    assert!(ring.poll(usize::MAX).is_empty());
    assert!(r.nic.is_failed());
    assert_eq!(r.nic.link_state(), LinkState::Down);
    assert_eq!(*r.up.link.lock(), [LinkState::Down]);
    assert_eq!(r.dev.status() & status::FAILED, status::FAILED);
    // No retry storm: later polls do nothing.
    assert!(ring.poll(usize::MAX).is_empty());
    assert_eq!(r.nic.counters().resets, 1);
    r.nic.stop();
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 0);
}

// ---- moving a queue pair's interrupts (RxRing::set_cpu) ----

/// The message MSI-X entry `e` holds, as the device sees it.
fn entry_msg(r: &Rig, e: u16) -> (u64, u32) {
    r.dev.msix.message(e)
}

#[test]
fn set_cpu_moves_rx_and_tx_vectors_and_frees_the_old_ones() {
    let r = rig_with(FakeVirtioNetConfig::default(), 4, Tunables { max_pairs: 2, ..Tunables::default() });
    let ring = r.nic.rx_ring(0).unwrap();
    assert_eq!(ring.cpu(), 0);
    let old: Vec<MsiMessage> = r.hal.vectors();
    let (old_rx, old_tx) = (old[1], old[2]);
    assert_eq!((old_rx.cpu, old_tx.cpu), (0, 0));
    assert_eq!(entry_msg(&r, 1), (old_rx.address, old_rx.data));

    assert_eq!(ring.set_cpu(3), Ok(()));
    assert_eq!(ring.cpu(), 3);
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 5, "two new, two freed");
    let now = r.hal.vectors();
    assert!(!now.contains(&old_rx) && !now.contains(&old_tx), "old vectors freed");
    let new_rx = *now.iter().find(|m| (m.address, m.data) == entry_msg(&r, 1)).unwrap();
    let new_tx = *now.iter().find(|m| (m.address, m.data) == entry_msg(&r, 2)).unwrap();
    assert_eq!((new_rx.cpu, new_tx.cpu), (3, 3));
    assert_eq!(new_rx.address, 0xfee0_3000);
    assert!(!r.dev.msix.is_masked(1) && !r.dev.msix.is_masked(2), "unmasked again");
    // The queues keep their entries; ring 1 did not move.
    assert_eq!((r.dev.queue_vector(0), r.dev.queue_vector(1)), (1, 2));
    assert_eq!(r.nic.rx_ring(1).unwrap().cpu(), 1);
    assert_eq!(entry_msg(&r, 3).0, 0xfee0_1000);
    assert!(r.up.rx.lock().is_empty(), "nothing pending: no upcall");

    // The device's next Rx interrupt runs the new vector's handler.
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(60, 1)));
    assert_eq!(*r.up.rx.lock(), [0]);
    assert_eq!(r.hal.fired(new_rx.data), 1);
    assert_eq!(ring.poll(usize::MAX).len(), 1);

    // The Tx queue's interrupt too.
    r.dev.raise(1);
    assert_eq!(r.hal.fired(new_tx.data), 1);
    assert_eq!(r.nic.tx_ring(0).unwrap().stats().interrupts.load(Ordering::Relaxed), 1);

    // Moving to the CPU it is on changes nothing.
    assert_eq!(ring.set_cpu(3), Ok(()));
    assert_eq!(r.hal.vectors(), now);
}

#[test]
fn set_cpu_refusals_change_nothing() {
    let r = rig();
    let ring = r.nic.rx_ring(1).unwrap();
    let before = r.hal.vectors();
    let table: Vec<(u64, u32)> = (0..5).map(|e| entry_msg(&r, e)).collect();
    assert_eq!(ring.set_cpu(2), Err(MacError::Invalid), "2 CPUs");
    assert_eq!(ring.set_cpu(usize::MAX), Err(MacError::Invalid));
    assert_eq!(ring.cpu(), 1);
    assert_eq!(r.hal.vectors(), before);
    assert_eq!((0..5).map(|e| entry_msg(&r, e)).collect::<Vec<_>>(), table);
    // The old binding still works.
    assert!(r.dev.deliver(1, NetHdr::default(), &frame(60, 1)));
    assert_eq!(*r.up.rx.lock(), [1]);
    assert_eq!(r.hal.fired(before[3].data), 1);
}

#[test]
fn set_cpu_without_vectors_left_changes_nothing() {
    let r = rig();
    // Use up the fake kernel's vectors.
    while r.hal.alloc_msi(0, alloc::boxed::Box::new(|| {})).is_some() {}
    let live = r.hal.live_vectors.load(Ordering::Relaxed);
    let ring = r.nic.rx_ring(0).unwrap();
    let table: Vec<(u64, u32)> = (0..5).map(|e| entry_msg(&r, e)).collect();
    assert_eq!(ring.set_cpu(1), Err(MacError::NoSpace));
    assert_eq!(ring.cpu(), 0);
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), live);
    assert_eq!((0..5).map(|e| entry_msg(&r, e)).collect::<Vec<_>>(), table);
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(60, 1)));
    assert_eq!(*r.up.rx.lock(), [0], "still interrupting on the old vector");
}

#[test]
fn an_interrupt_raised_during_the_switch_reaches_the_new_vector() {
    let r = rig();
    let ring = r.nic.rx_ring(0).unwrap();
    let old_rx = r.hal.vectors()[1];
    // The device receives a frame right when the driver masks entry 1:
    // the message waits in the PBA and goes out at the unmask, to the
    // new message.
    let dev = r.dev.clone();
    r.dev.msix.on_mask(1, move || assert!(dev.deliver(0, NetHdr::default(), &frame(60, 7))));
    assert_eq!(ring.set_cpu(1), Ok(()));
    assert_eq!(*r.up.rx.lock(), [0], "delivered once");
    assert!(!r.dev.msix.is_pending(1));
    let (_, data) = entry_msg(&r, 1);
    assert_ne!(data, old_rx.data);
    assert_eq!(r.hal.fired(data), 1, "through the new vector");
    assert_eq!(ring.stats().interrupts.load(Ordering::Relaxed), 1);
    assert_eq!(ring.poll(usize::MAX).len(), 1);
}

#[test]
fn set_cpu_catches_up_with_a_message_lost_on_the_old_vector() {
    let r = rig_with(FakeVirtioNetConfig::default(), 2, Tunables { queue_size: 8, ..Tunables::default() });
    // A frame's message and a Tx completion's get lost (as one reaching
    // the old CPU after its vector was freed would be).
    let pool = tx_pool(&r.hal);
    let tx = r.nic.tx_ring(0).unwrap();
    let chain: MblkChain = (0..10).map(|i| tx_pkt(&pool, 64, &frame(100, i), 2048)).collect();
    let rest = tx.tx(chain);
    assert_eq!(rest.len(), 2, "blocked");
    r.hal.lose_msis(true);
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(60, 1)));
    assert_eq!(r.dev.complete_tx(0).len(), 8);
    r.hal.lose_msis(false);
    assert_eq!(r.hal.lost_msis.load(Ordering::Relaxed), 2);
    assert!(r.up.rx.lock().is_empty() && r.up.tx.lock().is_empty());
    // The switch does what the handlers would have.
    assert_eq!(r.nic.rx_ring(0).unwrap().set_cpu(1), Ok(()));
    assert_eq!(*r.up.rx.lock(), [0]);
    assert_eq!(*r.up.tx.lock(), [0]);
    assert_eq!(tx.stats().snapshot().unblocked, 1);
    assert!(tx.tx(rest).is_empty());
    // In poll mode, nothing is reported.
    let ring = r.nic.rx_ring(0).unwrap();
    ring.poll(usize::MAX);
    ring.intr_disable();
    assert!(r.dev.deliver(0, NetHdr::default(), &frame(60, 2)));
    assert_eq!(ring.set_cpu(0), Ok(()));
    assert_eq!(r.up.rx.lock().len(), 1);
}

#[test]
fn set_cpu_while_stopped_binds_at_the_next_start() {
    let r = rig();
    r.nic.stop();
    let ring = r.nic.rx_ring(0).unwrap();
    assert_eq!(ring.set_cpu(1), Ok(()));
    assert_eq!(ring.cpu(), 1);
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 0, "nothing allocated while stopped");
    assert_eq!(ring.set_cpu(5), Err(MacError::Invalid));
    r.nic.start(r.up.clone()).unwrap();
    let cpus: Vec<usize> = r.hal.vectors().iter().map(|m| m.cpu).collect();
    assert_eq!(cpus, [0, 1, 1, 1, 1], "pair 0 now on CPU 1");
    assert_eq!(entry_msg(&r, 1).0, 0xfee0_1000);
}

#[test]
fn set_cpu_races_the_data_path() {
    // Lanes poll and switch interrupts while another CPU moves the ring
    // back and forth; every frame is received exactly once.
    let r = rig_with(FakeVirtioNetConfig::default(), 4, Tunables { max_pairs: 1, ..Tunables::default() });
    let nic = r.nic.clone();
    let done = Arc::new(core::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let mover = std::thread::spawn(move || {
        let mut k = 0;
        while !stop.load(Ordering::Acquire) || k < 50 {
            nic.rx_ring(0).unwrap().set_cpu(k % 4).unwrap();
            k += 1;
        }
        k
    });
    let ring = r.nic.rx_ring(0).unwrap();
    let mut got = 0;
    for i in 0..2000u32 {
        assert!(r.dev.deliver(0, NetHdr::default(), &frame(60, i as u8)));
        got += ring.poll(usize::MAX).len();
        if i % 2 == 0 { ring.intr_enable() } else { ring.intr_disable() }
    }
    done.store(true, Ordering::Release);
    assert!(mover.join().unwrap() >= 50);
    got += ring.poll(usize::MAX).len();
    assert_eq!(got, 2000);
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 3);
}
