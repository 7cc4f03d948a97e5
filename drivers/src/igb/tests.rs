//! Driver tests against the simulated 82576 of `testing/igb.rs`.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use arbalest_mac::{BufPool, Cksum, Gso, GsoKind, LinkState, MacError, MacProvider, MacUpcalls, Mblk, MblkChain, PktMeta};
use spin::Mutex;

use super::desc::*;
use super::fake::{FakeIgb, FakeIgbConfig, SentPacket, ipv4_frame, toeplitz};
use super::*;
use crate::pci::PciDevice;
use crate::testing::{FakeConfigSpace, FakeHal};

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
    dev: Arc<FakeIgb>,
    nic: Arc<Igb>,
    up: Arc<Recorder>,
}

type Probed = (Arc<FakeHal>, Arc<FakeIgb>, Arc<Igb>);

const OURS: MacAddr = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];
const PEER: MacAddr = [0x02, 0, 0, 0, 0, 0x99];
const BCAST: MacAddr = [0xff; 6];

fn probe(cfg: FakeIgbConfig, cpus: usize, tun: Tunables) -> Result<Probed, Error> {
    let hal = FakeHal::new(cpus);
    let space = FakeConfigSpace::new();
    let bdf = Bdf::new(0, 4, 0);
    let dev = FakeIgb::install(&space, &hal, bdf, cfg);
    let pci = PciDevice::read(&space, bdf);
    let nic = Igb::probe_with(&pci, &space, hal.clone(), tun)?;
    Ok((hal, dev, nic))
}

fn rig_with(cfg: FakeIgbConfig, cpus: usize, tun: Tunables) -> Rig {
    let (hal, dev, nic) = probe(cfg, cpus, tun).unwrap();
    let up = Arc::new(Recorder::default());
    nic.start(up.clone()).unwrap();
    Rig { hal, dev, nic, up }
}

/// Four CPUs: four queue pairs in RSS mode.
fn rig() -> Rig {
    rig_with(FakeIgbConfig::default(), 4, Tunables::default())
}

fn vmdq_rig(pools: usize) -> Rig {
    rig_with(FakeIgbConfig::default(), 2, Tunables { vmdq_pools: pools, ..Tunables::default() })
}

/// A TCP/IPv4 frame to `dst` of flow `sport`.
fn tcp(dst: MacAddr, sport: u16, payload: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..payload).map(|i| i as u8).collect();
    ipv4_frame(dst, PEER, 6, [10, 0, 0, 2], [10, 0, 0, 1], sport, 5001, &data)
}

/// A non-IP frame (no RSS hash: always hardware queue 0 in RSS mode).
fn raw(dst: MacAddr, len: usize, seed: u8) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&PEER);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8).wrapping_add(seed)));
    f
}

fn tx_pool(hal: &FakeHal) -> Arc<BufPool> {
    BufPool::new(hal.dma.clone(), 2048, 64).unwrap()
}

/// A Tx packet of `data` split over blocks of `chunk` bytes.
fn tx_pkt(pool: &Arc<BufPool>, data: &[u8], chunk: usize) -> Mblk {
    let mut parts = data.chunks(chunk);
    let mut m = Mblk::with_range(pool.alloc().unwrap(), 64, 0);
    assert!(m.append(parts.next().unwrap_or(&[])));
    for p in parts {
        let mut c = Mblk::new(pool.alloc().unwrap());
        assert!(c.append(p));
        m.push_cont(c);
    }
    m
}

fn rx(r: &Rig, i: usize) -> &dyn RxRing {
    r.nic.rx_ring(i).unwrap()
}

#[test]
fn probe_sizes_pairs_and_reports_info() {
    let (_, dev, nic) = probe(FakeIgbConfig::default(), 4, Tunables::default()).unwrap();
    let info = nic.info();
    assert_eq!(info.driver, "igb");
    assert_eq!(info.factory_addr, OURS);
    assert_eq!((info.rx_rings, info.tx_rings), (4, 4));
    assert_eq!(info.rx_groups, vec![GroupInfo { rings: vec![0, 1, 2, 3], unicast_slots: 24 }]);
    assert_eq!(info.tx_groups, vec![GroupInfo { rings: vec![0, 1, 2, 3], unicast_slots: 0 }]);
    assert!(info.pollable);
    assert_eq!(info.mtu, 1500);
    assert!(info.cksum.tx_partial && info.cksum.rx_verify);
    assert!(info.lso.tx_tcp4 && info.lso.tx_tcp6 && !info.lso.rx_tcp4);
    assert_eq!(info.lso.max_size, LSO_MAX);
    assert_eq!(nic.mode(), RxMode::Rss);
    assert_eq!(nic.rx_ring(3).unwrap().cpu(), 3);
    assert!(nic.rx_ring(4).is_none());
    // Reset at probe and left quiet.
    assert_eq!(dev.resets(), 2);
    assert_eq!(dev.reg(RCTL), 0);
    assert_eq!(dev.reg(TCTL), 0);
    // 16 CPUs: 9 pairs (10 vectors, one for the other causes).
    let (_, _, nic) = probe(FakeIgbConfig::default(), 16, Tunables::default()).unwrap();
    assert_eq!(nic.pairs(), 9);
    let (_, _, nic) = probe(FakeIgbConfig::default(), 16, Tunables { max_pairs: 2, tso: false, ..Tunables::default() }).unwrap();
    assert_eq!(nic.pairs(), 2);
    assert_eq!(nic.info().lso, LsoCaps::default());
    assert_eq!(nic.rx_ring(1).unwrap().cpu(), 1);
}

#[test]
fn mac_address_from_rar_nvm_or_slot() {
    let cfg = FakeIgbConfig { mac_in_rar: false, ..FakeIgbConfig::default() };
    let (_, _, nic) = probe(cfg, 1, Tunables::default()).unwrap();
    assert_eq!(nic.info().factory_addr, OURS, "from NVM words 0..2");
    let cfg = FakeIgbConfig { mac_in_rar: false, nvm_mac: false, ..FakeIgbConfig::default() };
    let (_, _, nic) = probe(cfg, 1, Tunables::default()).unwrap();
    assert_eq!(nic.info().factory_addr, [0x02, 0x1b, 0x21, 0, 4, 0], "locally administered, from the slot");
}

#[test]
fn probe_errors() {
    let fiber = FakeIgbConfig { device_id: 0x10e6, ..FakeIgbConfig::default() };
    assert_eq!(probe(fiber, 1, Tunables::default()).err(), Some(Error::NotSupported));
    let one_vector = FakeIgbConfig { msix_entries: 1, ..FakeIgbConfig::default() };
    assert_eq!(probe(one_vector, 1, Tunables::default()).err(), Some(Error::NoMsix));
    let dead = FakeIgbConfig { reset_sticks: true, ..FakeIgbConfig::default() };
    assert_eq!(probe(dead, 1, Tunables::default()).err(), Some(Error::Timeout));
    let (_, _, nic) = probe(FakeIgbConfig { msix_entries: 3, ..FakeIgbConfig::default() }, 4, Tunables::default()).unwrap();
    assert_eq!(nic.pairs(), 2, "3 vectors: 2 pairs");
    // VMDq needs two pools' worth of vectors, else it falls back to RSS.
    let (_, _, nic) = probe(FakeIgbConfig { msix_entries: 2, ..FakeIgbConfig::default() }, 4, Tunables { vmdq_pools: 4, ..Tunables::default() }).unwrap();
    assert_eq!(nic.mode(), RxMode::Rss);
}

#[test]
fn start_programs_interrupts_rss_queues_and_link() {
    let r = rig();
    let d = &r.dev;
    assert_eq!(d.reg(GPIE), GPIE_MSIX_MODE | GPIE_PBA | GPIE_EIAME | GPIE_NSICR);
    assert_eq!([d.reg(ivar(0)), d.reg(ivar(1)), d.reg(ivar(2)), d.reg(ivar(3)), d.reg(ivar(4))], [0x8080, 0x8181, 0x8282, 0x8383, 0]);
    assert_eq!(d.reg(IVAR_MISC), 0x8400, "other causes on vector 4");
    assert_eq!(d.reg(EIAC), 0x1f);
    assert_eq!(d.reg(EIAM), 0x1f);
    assert_eq!(d.reg(eitr(0)), (125 << 2) | EITR_CNT_IGNR, "8000 interrupts/s");
    assert_eq!(d.reg(eitr(4)), (125 << 2) | EITR_CNT_IGNR);
    assert_eq!(d.reg(IMS), ICR_LSC | ICR_RXO | ICR_DOUTSYNC);
    assert_eq!(d.reg(EIMS), 0x1f, "every Rx ring in interrupt mode, and the other vector");
    // RSS.
    assert_eq!(d.reg(MRQC), 0x00f7_0002);
    assert_eq!(d.reg(RXCSUM), RXCSUM_IPOFLD | RXCSUM_TUOFLD | RXCSUM_PCSD);
    assert!((0..32).all(|n| d.reg(reta(n)) == 0x0302_0100));
    assert_eq!(d.reg(rssrk(0)), 0xda56_5a6d);
    assert_eq!(d.reg(rssrk(9)), 0xfa01_acbe);
    // Queues.
    for q in 0..4 {
        assert_eq!(d.reg(srrctl(q)), 2 | (256 << 2) | SRRCTL_DESCTYPE_ADV_ONEBUF | SRRCTL_DROP_EN);
        assert_eq!(d.reg(rdlen(q)), 256 * 16);
        assert_eq!(d.reg(rdt(q)), 255, "all but one descriptor posted");
        assert_ne!(d.reg(rxdctl(q)) & DCTL_ENABLE, 0);
        assert_ne!(d.reg(txdctl(q)) & DCTL_ENABLE, 0);
        assert_eq!(d.reg(tdlen(q)), 256 * 16);
    }
    assert_eq!(d.reg(rxdctl(4)) & DCTL_ENABLE, 0, "queues beyond the pairs stay off");
    assert_eq!(d.reg(RCTL), RCTL_EN | RCTL_SECRC | RCTL_BAM);
    assert_ne!(d.reg(TCTL) & TCTL_EN, 0);
    assert_eq!(d.reg(rah(0)), 0xefcd | (1 << 18) | RAH_AV, "factory address, pool 0");
    // Vectors: pair i on CPU i, other on CPU 0.
    let cpus: Vec<usize> = r.hal.vectors().iter().map(|m| m.cpu).collect();
    assert_eq!(cpus, [0, 1, 2, 3, 0]);
    assert_eq!(r.nic.msix.entry(2).0, 0xfee0_2000);
    // The link came up through auto-negotiation and its interrupt.
    assert_ne!(d.reg(CTRL) & CTRL_SLU, 0);
    assert_eq!(*r.up.link.lock(), [LinkState::Up]);
    assert_eq!(d.fired(4), 1);
    assert_eq!(r.nic.link_state(), LinkState::Up);
    assert_eq!((r.nic.speed_mbps(), r.nic.duplex()), (1000, Duplex::Full));
    assert_eq!(r.nic.counters().link_changes, 1);
}

#[test]
fn receive_through_descriptors() {
    let r = rig();
    let f = tcp(OURS, 40000, 100);
    let qs = r.dev.receive(&f);
    assert_eq!(qs.len(), 1);
    let q = qs[0];
    assert_eq!(*r.up.rx.lock(), [q], "the ring's interrupt raised rx_ready");
    let ring = rx(&r, q);
    assert_eq!(ring.stats().interrupts.load(Ordering::Relaxed), 1);
    let mut chain = ring.poll(usize::MAX);
    assert_eq!(chain.len(), 1);
    let m = chain.pop().unwrap();
    assert_eq!(m.data(), &f[..]);
    assert_eq!(m.headroom(), 0);
    assert_eq!(m.meta.cksum, Cksum::Verified);
    assert_eq!(m.meta.ring as usize, q);
    let mut input = vec![10, 0, 0, 2, 10, 0, 0, 1];
    input.extend_from_slice(&40000u16.to_be_bytes());
    input.extend_from_slice(&5001u16.to_be_bytes());
    let hash = toeplitz(&rss::DEFAULT_KEY, &input);
    assert_eq!(m.meta.hash, hash);
    assert_eq!(q, (hash & 0x7f) as usize % 4, "RETA round robin");
    assert_eq!(ring.stats().snapshot().packets, 1);
    assert_eq!(ring.stats().snapshot().bytes, f.len() as u64);
    drop(m);
    assert_eq!(r.dev.rx_free(q), 255, "buffer replaced");
    // Non-IP broadcast: queue 0, nothing verified, no hash.
    let b = raw(BCAST, 60, 1);
    assert_eq!(r.dev.receive(&b), [0]);
    let m = rx(&r, 0).poll(usize::MAX).pop().unwrap();
    assert_eq!((m.meta.cksum, m.meta.hash, m.data().len()), (Cksum::None, 0, 60));
    // Another station's unicast: filtered by the device.
    assert!(r.dev.receive(&tcp(PEER, 1, 10)).is_empty());
    // A bad TCP checksum: up unverified, counted.
    let mut bad = tcp(OURS, 40000, 100);
    bad[60] ^= 0xff;
    assert_eq!(r.dev.receive(&bad), [q]);
    let m = ring.poll(usize::MAX).pop().unwrap();
    assert_eq!(m.meta.cksum, Cksum::None);
    assert_eq!(ring.stats().snapshot().errors, 1);
    // UDP verified too.
    let u = ipv4_frame(OURS, PEER, 17, [10, 0, 0, 2], [10, 0, 0, 1], 7, 7, b"echo");
    let q = r.dev.receive(&u)[0];
    assert_eq!(rx(&r, q).poll(usize::MAX).pop().unwrap().meta.cksum, Cksum::Verified);
}

#[test]
fn rss_spreads_tcp_flows_over_the_rings() {
    let r = rig();
    let mut used = BTreeSet::new();
    let mut per_ring = [0usize; 4];
    for i in 0..16u16 {
        let q = r.dev.receive(&tcp(OURS, 40000 + i, 64))[0];
        used.insert(q);
        per_ring[q] += 1;
    }
    assert!(used.len() >= 4, "16 flows over 4 rings: {per_ring:?}");
    for (q, n) in per_ring.iter().enumerate() {
        let chain = rx(&r, q).poll(usize::MAX);
        assert_eq!(chain.len(), *n);
        assert!(chain.iter().all(|m| m.meta.ring as usize == q && m.meta.hash != 0));
    }
    // Each ring's interrupt is its own vector, on its own CPU.
    let fired: Vec<u64> = (0..4).map(|v| r.dev.fired(v)).collect();
    assert!(fired.iter().all(|n| *n == 1), "one interrupt per ring, then masked: {fired:?}");
}

#[test]
fn masking_a_ring_stops_its_interrupts_and_polling_returns_one_chain() {
    let r = rig();
    let ring = rx(&r, 0);
    assert_eq!(r.dev.receive(&raw(BCAST, 100, 0)), [0]);
    assert_eq!(*r.up.rx.lock(), [0]);
    assert_eq!(r.dev.reg(EIMS) & 1, 0, "the handler masked vector 0 (EIMC)");
    // Frames accumulate without interrupts.
    for i in 1..6 {
        assert_eq!(r.dev.receive(&raw(BCAST, 100, i)), [0]);
    }
    assert_eq!(r.up.rx.lock().len(), 1);
    assert_eq!(r.dev.fired(0), 1);
    assert_eq!(ring.stats().interrupts.load(Ordering::Relaxed), 1);
    // Bounded poll returns at least one; the rest come as one chain.
    assert_eq!(ring.poll(0).len(), 1);
    let chain = ring.poll(usize::MAX);
    assert_eq!(chain.len(), 5);
    assert_eq!(chain.bytes(), 500);
    // Nothing pending: intr_enable just unmasks.
    ring.intr_enable();
    assert_eq!(r.dev.reg(EIMS) & 1, 1);
    assert_eq!(r.up.rx.lock().len(), 1);
    // Interrupt mode again.
    r.dev.receive(&raw(BCAST, 80, 9));
    assert_eq!(r.up.rx.lock().len(), 2);
    ring.poll(usize::MAX);
    // Explicit poll mode, frames arrive, then intr_enable: one wake-up.
    ring.intr_enable();
    ring.intr_disable();
    assert_eq!(r.dev.reg(EIMS) & 1, 0);
    r.dev.receive(&raw(BCAST, 80, 9));
    assert_eq!(r.up.rx.lock().len(), 2);
    ring.intr_enable();
    assert_eq!(r.up.rx.lock().len(), 3, "pending frames reported once");
    assert_eq!(r.dev.reg(EIMS) & 1, 0, "and the ring is masked again");
    assert_eq!(ring.poll(usize::MAX).len(), 1);
    // Other rings were never masked.
    assert_eq!(r.dev.reg(EIMS) & 0x1e, 0x1e);
}

#[test]
fn tx_completions_do_not_wake_the_rx_lane() {
    let r = rig();
    let pool = tx_pool(&r.hal);
    let t = r.nic.tx_ring(0).unwrap();
    assert!(t.tx([tx_pkt(&pool, &raw(PEER, 60, 0), 2048)].into_iter().collect()).is_empty());
    assert_eq!(r.dev.take_tx().len(), 1);
    assert_eq!(r.dev.fired(0), 1, "the write-back raised vector 0");
    assert!(r.up.rx.lock().is_empty());
    assert!(r.up.tx.lock().is_empty());
    assert_eq!(r.nic.spurious_interrupts(), 1);
    assert_eq!(r.dev.reg(EIMS) & 1, 1, "Rx still in interrupt mode");
}

#[test]
fn vmdq_pools_steer_unicast_to_their_rings() {
    let r = vmdq_rig(4);
    let info = r.nic.info();
    assert_eq!(r.nic.mode(), RxMode::Vmdq { pools: 4 });
    assert_eq!(info.rx_rings, 4);
    assert_eq!(info.rx_groups.len(), 4);
    assert_eq!(info.rx_groups[0], GroupInfo { rings: vec![0], unicast_slots: 24 });
    assert_eq!(info.rx_groups[2], GroupInfo { rings: vec![2], unicast_slots: 23 });
    assert_eq!(r.dev.reg(MRQC), MRQC_ENABLE_VMDQ);
    assert_eq!(r.dev.reg(VFRE), 0xf);
    assert_eq!(r.dev.reg(VT_CTL), 0, "default pool 0, no replication");
    assert_ne!(r.dev.reg(vmolr(0)) & (VMOLR_BAM | VMOLR_ROMPE), 0);
    assert_eq!(r.dev.reg(vmolr(1)) & (VMOLR_BAM | VMOLR_ROMPE), 0);
    let a: MacAddr = [0x02, 0x08, 0x20, 0, 0, 0x01];
    r.nic.unicast_add(1, a).unwrap();
    assert_eq!(r.dev.reg(ral(1)), 0x0020_0802);
    assert_eq!(r.dev.reg(rah(1)), 0x0100 | (1 << 19) | RAH_AV, "POOLSEL = pool 1");
    // The second address reaches ring 1 only; ring 1 gets nothing else.
    assert_eq!(r.dev.receive(&tcp(a, 1, 50)), [1]);
    assert_eq!(r.dev.receive(&tcp(OURS, 2, 50)), [0]);
    assert_eq!(r.dev.receive(&raw(BCAST, 60, 0)), [0]);
    assert_eq!(r.dev.receive(&raw([0x02, 0, 0, 0, 0, 0x77], 60, 0)), [0], "unmatched unicast: default pool");
    let one = rx(&r, 1).poll(usize::MAX);
    assert_eq!(one.len(), 1);
    assert_eq!(&one.iter().next().unwrap().data()[..6], &a);
    assert_eq!(rx(&r, 0).poll(usize::MAX).len(), 3);
    assert_eq!(*r.up.rx.lock(), [1, 0]);
    // The same address in two groups: replicated.
    r.nic.unicast_add(2, a).unwrap();
    assert_eq!(r.dev.reg(rah(1)) & RAH_POOLSEL_MASK, 0b110 << 18);
    assert_eq!(r.dev.receive(&tcp(a, 1, 50)), [1, 2]);
    r.nic.unicast_remove(1, a).unwrap();
    r.nic.unicast_remove(2, a).unwrap();
    assert_eq!(r.dev.reg(rah(1)), 0);
    assert_eq!(r.dev.receive(&tcp(a, 1, 50)), [0]);
    assert_eq!(r.nic.unicast_remove(1, a), Err(MacError::Invalid));
    assert_eq!(r.nic.unicast_add(4, a), Err(MacError::Invalid));
    // Tx works on every pool's queue.
    let pool = tx_pool(&r.hal);
    for q in 0..4 {
        assert!(r.nic.tx_ring(q).unwrap().tx([tx_pkt(&pool, &raw(PEER, 60, q as u8), 2048)].into_iter().collect()).is_empty());
    }
    assert_eq!(r.dev.take_tx().iter().map(|p| p.queue).collect::<Vec<_>>(), [0, 1, 2, 3]);
}

#[test]
fn unicast_filters_in_rss_mode() {
    let r = rig();
    let a: MacAddr = [0x02, 0, 0, 0, 1, 1];
    assert!(r.dev.receive(&tcp(a, 1, 10)).is_empty());
    r.nic.unicast_add(0, a).unwrap();
    assert_eq!(r.dev.reg(rah(1)) & (RAH_AV | RAH_POOLSEL_MASK), RAH_AV | (1 << 18));
    assert_eq!(r.dev.receive(&tcp(a, 1, 10)).len(), 1);
    assert_eq!(r.nic.unicast_add(1, a), Err(MacError::Invalid), "one group in RSS mode");
    assert_eq!(r.nic.unicast_add(0, OURS), Ok(()));
    assert_eq!(r.nic.unicast_remove(0, OURS), Ok(()), "the factory address stays");
    assert_ne!(r.dev.reg(rah(0)) & RAH_AV, 0);
    for i in 0..22u8 {
        r.nic.unicast_add(0, [0x02, 0, 0, 0, 2, i]).unwrap();
    }
    assert_ne!(r.dev.reg(rah(23)) & RAH_AV, 0, "entry 23 in the second bank");
    assert_eq!(r.dev.receive(&tcp([0x02, 0, 0, 0, 2, 21], 1, 10)).len(), 1);
    assert_eq!(r.nic.unicast_add(0, [0x02, 0, 0, 0, 3, 0]), Err(MacError::NoSpace));
    r.nic.unicast_remove(0, a).unwrap();
    assert!(r.dev.receive(&tcp(a, 1, 10)).is_empty());
}

#[test]
fn multicast_hash_and_promiscuous_mode() {
    let r = rig();
    let m1: MacAddr = [0x01, 0, 0x5e, 0, 0, 0x01];
    let m2: MacAddr = [0x01, 0, 0x5e, 0x7f, 0xff, 0xfa];
    assert!(r.dev.receive(&raw(m1, 60, 0)).is_empty());
    r.nic.multicast_add(m1).unwrap();
    assert_eq!(r.dev.reg(mta(0)), 1 << 16);
    assert_eq!(r.dev.receive(&raw(m1, 60, 0)), [0]);
    assert!(r.dev.receive(&raw(m2, 60, 0)).is_empty());
    assert_eq!(r.nic.multicast_add(OURS), Err(MacError::Invalid));
    r.nic.multicast_remove(m1).unwrap();
    assert_eq!(r.nic.multicast_remove(m1), Err(MacError::Invalid));
    assert!(r.dev.receive(&raw(m1, 60, 0)).is_empty());
    r.nic.set_promisc(true).unwrap();
    assert_eq!(r.dev.reg(RCTL) & (RCTL_UPE | RCTL_MPE), RCTL_UPE | RCTL_MPE);
    assert_eq!(r.dev.receive(&raw(m2, 60, 0)), [0]);
    assert_eq!(r.dev.receive(&raw(PEER, 60, 0)), [0]);
    r.nic.set_promisc(false).unwrap();
    assert!(r.dev.receive(&raw(PEER, 60, 0)).is_empty());
    // VMDq: promiscuous widens only the default pool.
    let v = vmdq_rig(2);
    v.nic.set_promisc(true).unwrap();
    assert_ne!(v.dev.reg(vmolr(0)) & (VMOLR_ROPE | VMOLR_MPME), 0);
    assert_eq!(v.dev.receive(&raw(m2, 60, 0)), [0]);
}

#[test]
fn statistics_accumulate_across_clear_on_read() {
    let r = rig_with(FakeIgbConfig::default(), 1, Tunables { ring_size: 8, ..Tunables::default() });
    for i in 0..3 {
        r.dev.receive(&raw(BCAST, 100, i));
    }
    let s = r.nic.update_stats();
    assert_eq!((s.rx_good_packets, s.rx_good_octets, s.rx_broadcast), (3, 300, 3));
    assert_eq!(r.dev.reg(GPRC), 0, "cleared by the read");
    for i in 0..2 {
        r.dev.receive(&raw(BCAST, 50, i));
    }
    let s = r.nic.update_stats();
    assert_eq!((s.rx_good_packets, s.rx_good_octets), (5, 400));
    // Ring full (7 buffers, 5 used): the 8th frame is missed and dropped
    // by the queue.
    r.dev.receive(&raw(BCAST, 60, 0));
    r.dev.receive(&raw(BCAST, 60, 0));
    assert!(r.dev.receive(&raw(BCAST, 60, 0)).is_empty());
    assert_eq!(r.nic.rx_overruns(), 1, "ICR.RXO on the other vector");
    let c = r.nic.counters();
    assert_eq!(c.rx_missed, 1);
    assert_eq!(rx(&r, 0).stats().snapshot().drops, 1, "RQDPC into the ring's drops");
    r.dev.add_stat(MPC, 7);
    assert_eq!(r.nic.counters().rx_missed, 8);
    assert_eq!(r.nic.counters().rx_missed, 8, "no double counting");
    // Transmit counters.
    let pool = tx_pool(&r.hal);
    r.nic.tx_ring(0).unwrap().tx([tx_pkt(&pool, &raw(PEER, 60, 0), 2048)].into_iter().collect());
    let s = r.nic.update_stats();
    assert_eq!((s.tx_good_packets, s.tx_good_octets), (1, 60));
}

#[test]
fn transmit_descriptor_formats() {
    let r = rig();
    let pool = tx_pool(&r.hal);
    let ring = r.nic.tx_ring(1).unwrap();
    let plain = raw(PEER, 60, 0);
    assert!(ring.tx([tx_pkt(&pool, &plain, 2048)].into_iter().collect()).is_empty());
    let p: Vec<SentPacket> = r.dev.take_tx();
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].queue, &p[0].bytes, p[0].data_descs, p[0].ctx), (1, &plain, 1, None));
    assert_eq!(p[0].cmd_type_len, TX_DTYP_DATA | TX_DCMD_DEXT | TX_DCMD_IFCS | TX_DCMD_EOP | TX_DCMD_RS | 60);
    assert_eq!(p[0].olinfo_status, 60 << TX_PAYLEN_SHIFT);
    // Partial checksum: a context, TXSM; a second such packet reuses it.
    let f = tcp(PEER, 1234, 200);
    let mk = |pool: &Arc<BufPool>| {
        let mut m = tx_pkt(pool, &f, 2048);
        m.meta = PktMeta { cksum: Cksum::Partial { start: 34, offset: 16 }, ..PktMeta::default() };
        m
    };
    let tdt_before = r.dev.reg(tdt(1));
    assert!(ring.tx([mk(&pool), mk(&pool)].into_iter().collect()).is_empty());
    assert_eq!(r.dev.reg(tdt(1)) - tdt_before, 3, "one context, two data descriptors");
    let p = r.dev.take_tx();
    let ctx = p[0].ctx.unwrap();
    assert_eq!(ctx.vlan_macip_lens, (14 << CTX_MACLEN_SHIFT) | 20);
    assert_eq!(ctx.type_tucmd_mlhl, CTX_TUCMD_IPV4 | CTX_TUCMD_L4T_TCP);
    assert_eq!(p[0].olinfo_status, ((f.len() as u32) << TX_PAYLEN_SHIFT) | TX_POPTS_TXSM);
    assert_eq!(p[1].ctx, Some(ctx));
    assert_eq!(p[0].bytes, f);
    // Several blocks: several descriptors, EOP on the last only.
    let big = raw(PEER, 1514, 3);
    assert!(ring.tx([tx_pkt(&pool, &big, 500)].into_iter().collect()).is_empty());
    let p = r.dev.take_tx();
    assert_eq!((p[0].data_descs, &p[0].bytes), (4, &big));
    assert_eq!(p[0].cmd_type_len & (TX_DCMD_EOP | TX_LEN_MASK), 500, "first descriptor: no EOP");
    // TSO.
    let seg = tcp(PEER, 99, 3000);
    let mut m = tx_pkt(&pool, &seg, 1000);
    m.meta = PktMeta {
        cksum: Cksum::Partial { start: 34, offset: 16 },
        gso: Some(Gso { kind: GsoKind::Tcp4, mss: 1000, hdr_len: 54 }),
        ..PktMeta::default()
    };
    assert!(ring.tx([m].into_iter().collect()).is_empty());
    let p = r.dev.take_tx();
    assert_ne!(p[0].cmd_type_len & TX_DCMD_TSE, 0);
    assert_eq!(p[0].olinfo_status, (3000 << TX_PAYLEN_SHIFT) | TX_POPTS_TXSM | TX_POPTS_IXSM);
    assert_eq!(p[0].ctx.unwrap().mss_l4len_idx, (1000 << CTX_MSS_SHIFT) | (20 << CTX_L4LEN_SHIFT));
    assert_eq!(p[0].bytes.len(), seg.len());
    assert_eq!(&p[0].bytes[24..26], &[0, 0], "IPv4 checksum left to the device");
    assert_eq!(p[0].data_descs, 4);
    assert_eq!(ring.stats().snapshot().packets, 5);
    // Completions reclaimed: every buffer back in its pool.
    ring.reclaim();
    assert_eq!(pool.available(), pool.capacity());
    assert!(r.up.tx.lock().is_empty(), "no resume without a refusal");
}

#[test]
fn transmit_drops_what_the_device_cannot_take() {
    let r = rig();
    let pool = tx_pool(&r.hal);
    let ring = r.nic.tx_ring(0).unwrap();
    let mut udp_gso = tx_pkt(&pool, &tcp(PEER, 1, 100), 2048);
    udp_gso.meta = PktMeta { cksum: Cksum::Partial { start: 34, offset: 6 }, gso: Some(Gso { kind: GsoKind::Udp, mss: 100, hdr_len: 42 }), ..PktMeta::default() };
    let empty = Mblk::with_range(pool.alloc().unwrap(), 64, 0);
    let too_big = tx_pkt(&pool, &raw(PEER, 1600, 0), 2048);
    let rest = ring.tx([udp_gso, empty, too_big].into_iter().collect());
    assert!(rest.is_empty());
    assert_eq!(ring.stats().snapshot().drops, 3);
    assert_eq!(ring.stats().snapshot().errors, 1);
    assert!(r.dev.take_tx().is_empty());
}

#[test]
fn full_ring_blocks_then_resumes() {
    let r = rig_with(FakeIgbConfig::default(), 2, Tunables { ring_size: 8, ..Tunables::default() });
    let pool = tx_pool(&r.hal);
    let ring = r.nic.tx_ring(0).unwrap();
    // The Rx side of the pair is polling: only the Tx side wants vector 0.
    rx(&r, 0).intr_disable();
    assert_eq!(r.dev.reg(EIMS) & 1, 0);
    r.dev.hold_tx(true);
    let chain: MblkChain = (0..10).map(|i| tx_pkt(&pool, &raw(PEER, 60, i), 2048)).collect();
    let rest = ring.tx(chain);
    assert_eq!(rest.len(), 3, "7 usable descriptors");
    assert_eq!(ring.stats().snapshot().blocked, 1);
    assert_eq!(r.dev.reg(EIMS) & 1, 1, "armed for completions");
    // An Rx frame meanwhile does not wake the polling lane.
    r.dev.receive(&raw(BCAST, 60, 0));
    assert!(r.up.rx.lock().is_empty());
    // Completions: tx_resume, and the vector masked again.
    r.dev.release_tx();
    assert_eq!(*r.up.tx.lock(), [0]);
    assert_eq!(ring.stats().snapshot().unblocked, 1);
    assert_eq!(r.dev.reg(EIMS) & 1, 0);
    assert_eq!(rx(&r, 0).poll(usize::MAX).len(), 1);
    let rest = ring.tx(rest);
    assert!(rest.is_empty());
    r.dev.release_tx();
    let sent = r.dev.take_tx();
    assert_eq!(sent.len(), 10);
    assert_eq!(sent[9].bytes, raw(PEER, 60, 9));
    assert_eq!(r.up.tx.lock().len(), 1, "no refusal, no resume");
}

#[test]
fn malformed_receives_are_dropped_and_counted() {
    let r = rig();
    let ring = rx(&r, 0);
    let good = raw(OURS, 64, 5);
    assert!(r.dev.receive_raw(0, &good, RX_STAT_EOP, 10)); // shorter than Ethernet
    assert!(r.dev.receive_raw(0, &good, RX_STAT_EOP, 3000)); // longer than the buffer
    assert!(r.dev.receive_raw(0, &good, 0, 2048)); // no EOP: a frame spanning buffers ...
    assert!(r.dev.receive_raw(0, &good, RX_STAT_EOP, 100)); // ... its tail
    assert!(r.dev.receive_raw(0, &good, RX_STAT_EOP | RX_ERR_RXE, 64)); // frame error
    assert!(r.dev.receive_raw(0, &good, RX_STAT_EOP, 64));
    let chain = ring.poll(usize::MAX);
    assert_eq!(chain.len(), 1);
    assert_eq!(chain.iter().next().unwrap().data(), &good[..]);
    let s = ring.stats().snapshot();
    assert_eq!((s.drops, s.errors, s.packets), (4, 1, 1));
    assert_eq!(r.nic.counters().rx_malformed, 3);
    assert_eq!(r.nic.counters().resets, 0);
    assert_eq!(r.dev.rx_free(0), 255, "every buffer reposted");
}

#[test]
fn link_changes_reach_the_mac_layer() {
    let r = rig();
    r.dev.set_link(false);
    assert_eq!(*r.up.link.lock(), [LinkState::Up, LinkState::Down]);
    assert_eq!(r.nic.link_state(), LinkState::Down);
    assert_eq!(r.nic.speed_mbps(), 0);
    r.dev.set_link(true);
    assert_eq!(*r.up.link.lock(), [LinkState::Up, LinkState::Down, LinkState::Up]);
    assert_eq!(r.nic.counters().link_changes, 3);
    assert_eq!(r.nic.other_interrupts(), 3);
}

#[test]
fn dma_fault_resets_from_the_poll_path() {
    let r = rig();
    let resets = r.dev.resets();
    r.nic.unicast_add(0, [0x02, 0, 0, 0, 1, 1]).unwrap();
    r.dev.raise_icr(ICR_DOUTSYNC);
    assert_eq!(*r.up.rx.lock(), [0], "ring 0 is asked to poll");
    assert!(rx(&r, 0).poll(usize::MAX).is_empty());
    assert_eq!(r.nic.counters().resets, 1);
    assert_eq!(r.dev.resets(), resets + 1);
    assert_eq!(r.dev.reg(RCTL) & RCTL_EN, RCTL_EN);
    assert_ne!(r.dev.reg(rah(1)) & RAH_AV, 0, "filters replayed");
    assert_eq!(r.dev.receive(&raw(BCAST, 60, 0)), [0]);
    assert_eq!(rx(&r, 0).poll(usize::MAX).len(), 1);
    // The link went down with the reset and came back.
    assert_eq!(*r.up.link.lock(), [LinkState::Up, LinkState::Down, LinkState::Up]);
}

#[test]
fn hung_tx_ring_resets_the_device() {
    let r = rig_with(FakeIgbConfig::default(), 1, Tunables { ring_size: 8, ..Tunables::default() });
    let pool = tx_pool(&r.hal);
    let ring = r.nic.tx_ring(0).unwrap();
    r.dev.hold_tx(true);
    let rest = ring.tx((0..10).map(|i| tx_pkt(&pool, &raw(PEER, 60, i), 2048)).collect());
    assert_eq!(rest.len(), 3);
    // With the link down a stalled ring is no fault.
    r.dev.set_link(false);
    r.hal.delay_us(6_000_000);
    let rest = ring.tx(rest);
    assert_eq!(rest.len(), 3);
    assert_eq!(r.nic.counters().resets, 0);
    r.dev.set_link(true);
    let rest = ring.tx(rest);
    assert!(rest.is_empty(), "sent after the reset");
    assert_eq!(r.nic.counters().resets, 1);
    let s = ring.stats().snapshot();
    assert_eq!((s.errors, s.drops), (1, 7), "the hang counted, packets in flight dropped");
    assert_eq!(*r.up.tx.lock(), [0], "the reset emptied the ring: resume");
    r.dev.release_tx();
    let sent = r.dev.take_tx();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].bytes, raw(PEER, 60, 7));
}

#[test]
fn a_device_that_fails_its_reset_is_given_up() {
    let r = rig();
    r.dev.set_reset_sticks(true);
    r.dev.raise_icr(ICR_DOUTSYNC);
    assert!(rx(&r, 0).poll(usize::MAX).is_empty());
    assert!(r.nic.is_failed());
    assert_eq!(r.nic.link_state(), LinkState::Down);
    assert_eq!(*r.up.link.lock(), [LinkState::Up, LinkState::Down]);
    assert_eq!(r.nic.counters().resets, 1);
    // No retry storm, and transmit drops (counted).
    assert!(rx(&r, 0).poll(usize::MAX).is_empty());
    assert_eq!(r.nic.counters().resets, 1);
    let pool = tx_pool(&r.hal);
    let t = r.nic.tx_ring(0).unwrap();
    assert!(t.tx([tx_pkt(&pool, &raw(PEER, 60, 0), 2048)].into_iter().collect()).is_empty());
    assert_eq!(t.stats().snapshot().drops, 1);
    r.nic.stop();
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 0);
}

#[test]
fn stop_frees_vectors_and_buffers_and_start_again_works() {
    let r = rig();
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 5);
    r.dev.receive(&raw(BCAST, 60, 0));
    r.nic.stop();
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 0);
    assert_eq!(r.dev.reg(RCTL), 0, "device reset");
    assert!(r.nic.msix.is_masked(0));
    assert!(rx(&r, 0).poll(usize::MAX).is_empty(), "frames in flight dropped with the rings");
    r.nic.start(r.up.clone()).unwrap();
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 5);
    let q = r.dev.receive(&tcp(OURS, 7, 10))[0];
    assert_eq!(rx(&r, q).poll(usize::MAX).len(), 1);
    drop(r.nic);
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 0, "dropping the driver frees its vectors");
}

// ---- moving a queue pair's vector (RxRing::set_cpu) ----

#[test]
fn set_cpu_moves_the_pair_vector_and_frees_the_old_one() {
    let r = rig();
    let ring = rx(&r, 0);
    let old = r.hal.vectors()[0];
    assert_eq!((old.cpu, ring.cpu()), (0, 0));
    assert_eq!(r.dev.msix.message(0), (old.address, old.data));
    let (ivar0, eims) = (r.dev.reg(ivar(0)), r.dev.reg(EIMS));

    assert_eq!(ring.set_cpu(1), Ok(()));
    assert_eq!(ring.cpu(), 1);
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 5);
    let now = r.hal.vectors();
    assert!(!now.contains(&old), "old vector freed");
    let new = *now.iter().find(|m| (m.address, m.data) == r.dev.msix.message(0)).unwrap();
    assert_eq!((new.cpu, new.address), (1, 0xfee0_1000));
    assert_eq!(r.nic.msix.entry(0), (new.address, new.data));
    assert!(!r.dev.msix.is_masked(0), "unmasked again");
    // Routing untouched; the other pairs and the other causes unmoved.
    assert_eq!((r.dev.reg(ivar(0)), r.dev.reg(EIMS)), (ivar0, eims));
    assert_eq!((rx(&r, 1).cpu(), r.dev.msix.message(1).0), (1, 0xfee0_1000));
    assert_eq!(r.dev.msix.message(4).0, 0xfee0_0000);
    assert!(r.up.rx.lock().is_empty(), "nothing pending: no upcall");

    // The next frame on queue 0 interrupts through the new vector.
    assert_eq!(r.dev.receive(&raw(BCAST, 60, 0)), [0]);
    assert_eq!(*r.up.rx.lock(), [0]);
    assert_eq!(r.hal.fired(new.data), 1);
    assert_eq!(r.dev.fired(0), 1);
    assert_eq!(ring.poll(usize::MAX).len(), 1);
    // Back to where it was: fine too; same CPU again: a no-op.
    assert_eq!(ring.set_cpu(0), Ok(()));
    assert_eq!(r.dev.msix.message(0).0, 0xfee0_0000);
    let v = r.hal.vectors();
    assert_eq!(ring.set_cpu(0), Ok(()));
    assert_eq!(r.hal.vectors(), v);
}

#[test]
fn set_cpu_refusals_change_nothing() {
    let r = rig();
    let ring = rx(&r, 2);
    let before = r.hal.vectors();
    let table: Vec<(u64, u32)> = (0..5).map(|e| r.dev.msix.message(e)).collect();
    assert_eq!(ring.set_cpu(4), Err(MacError::Invalid), "4 CPUs");
    // No vector left in the fake kernel.
    while r.hal.alloc_msi(0, alloc::boxed::Box::new(|| {})).is_some() {}
    let live = r.hal.live_vectors.load(Ordering::Relaxed);
    assert_eq!(ring.set_cpu(3), Err(MacError::NoSpace));
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), live);
    assert_eq!(ring.cpu(), 2);
    assert_eq!(&r.hal.vectors()[..5], &before[..]);
    assert_eq!((0..5).map(|e| r.dev.msix.message(e)).collect::<Vec<_>>(), table);
    assert!(!r.dev.msix.is_masked(2));
    // The old binding still works.
    let q = (0..64u16).map(|p| tcp(OURS, 40000 + p, 10)).find_map(|f| (r.dev.receive(&f) == [2]).then_some(())).is_some();
    assert!(q, "some flow hashes to ring 2");
    assert!(r.up.rx.lock().contains(&2));
    assert_eq!(r.hal.fired(before[2].data), 1);
}

#[test]
fn an_interrupt_raised_during_the_switch_reaches_the_new_vector() {
    let r = rig();
    let ring = rx(&r, 0);
    let old = r.hal.vectors()[0];
    // A frame arrives right when the driver masks entry 0: EICR is
    // auto-cleared, the message waits in the PBA until the unmask.
    let dev = r.dev.clone();
    r.dev.msix.on_mask(0, move || assert_eq!(dev.receive(&raw(BCAST, 60, 3)), [0]));
    assert_eq!(ring.set_cpu(3), Ok(()));
    assert_eq!(*r.up.rx.lock(), [0], "delivered once");
    assert!(!r.dev.msix.is_pending(0));
    let (_, data) = r.dev.msix.message(0);
    assert_ne!(data, old.data);
    assert_eq!(r.hal.fired(data), 1, "through the new vector");
    assert_eq!(ring.stats().interrupts.load(Ordering::Relaxed), 1);
    assert_eq!(r.nic.spurious_interrupts(), 0);
    assert_eq!(ring.poll(usize::MAX).len(), 1);
}

#[test]
fn set_cpu_catches_up_with_a_message_lost_on_the_old_vector() {
    let r = rig_with(FakeIgbConfig::default(), 2, Tunables { ring_size: 8, ..Tunables::default() });
    let pool = tx_pool(&r.hal);
    let t = r.nic.tx_ring(0).unwrap();
    r.dev.hold_tx(true);
    let chain: MblkChain = (0..10).map(|i| tx_pkt(&pool, &raw(PEER, 60, i), 2048)).collect();
    let rest = t.tx(chain);
    assert_eq!(rest.len(), 3, "blocked");
    // A frame's and the completions' messages are lost (as one reaching
    // the old CPU after its vector was freed would be).
    r.hal.lose_msis(true);
    assert_eq!(r.dev.receive(&raw(BCAST, 60, 0)), [0]);
    r.dev.release_tx();
    r.hal.lose_msis(false);
    assert!(r.hal.lost_msis.load(Ordering::Relaxed) >= 1);
    assert!(r.up.rx.lock().is_empty() && r.up.tx.lock().is_empty());
    // The switch serves both, as the handler would have.
    assert_eq!(rx(&r, 0).set_cpu(1), Ok(()));
    assert_eq!(*r.up.rx.lock(), [0]);
    assert_eq!(*r.up.tx.lock(), [0]);
    assert_eq!(t.stats().snapshot().unblocked, 1);
    assert_eq!(r.dev.reg(EIMS) & 1, 0, "nothing wanted any more: masked");
    assert_eq!(r.nic.spurious_interrupts(), 0);
    assert_eq!(rx(&r, 0).poll(usize::MAX).len(), 1);
    assert!(t.tx(rest).is_empty());
    // Still wanted and nothing ready: EIMS written again.
    rx(&r, 0).intr_enable();
    assert_eq!(rx(&r, 0).set_cpu(0), Ok(()));
    assert_eq!(r.dev.reg(EIMS) & 1, 1);
    assert_eq!(r.up.rx.lock().len(), 1);
}

#[test]
fn set_cpu_while_stopped_binds_at_the_next_start() {
    let r = rig();
    r.nic.stop();
    assert_eq!(rx(&r, 3).set_cpu(0), Ok(()));
    assert_eq!(rx(&r, 3).cpu(), 0);
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 0);
    r.nic.start(r.up.clone()).unwrap();
    let cpus: Vec<usize> = r.hal.vectors().iter().map(|m| m.cpu).collect();
    assert_eq!(cpus, [0, 1, 2, 0, 0]);
    assert_eq!(r.nic.msix.entry(3).0, 0xfee0_0000);
}

#[test]
fn set_cpu_races_the_data_path() {
    let r = rig_with(FakeIgbConfig::default(), 4, Tunables { max_pairs: 1, ..Tunables::default() });
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
    let ring = rx(&r, 0);
    let mut got = 0;
    for i in 0..2000u32 {
        assert_eq!(r.dev.receive(&raw(BCAST, 60, i as u8)), [0]);
        got += ring.poll(usize::MAX).len();
        if i % 2 == 0 { ring.intr_enable() } else { ring.intr_disable() }
    }
    done.store(true, Ordering::Release);
    assert!(mover.join().unwrap() >= 50);
    got += ring.poll(usize::MAX).len();
    assert_eq!(got, 2000);
    assert_eq!(r.hal.live_vectors.load(Ordering::Relaxed), 2);
}
