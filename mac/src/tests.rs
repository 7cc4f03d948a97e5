//! Tests of [`Mac`] over the fake NIC. The link registry is a global shared
//! by tests running in parallel: names are compared relative to each
//! other, never as absolute `net0`.

use std::string::String;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use crate::fake::{FakeNic, fake_info, tcp4_frame};
use crate::hash::frame_hash;
use crate::mac::{self, Mac, TX_BACKLOG};
use crate::srs::PollStep;
use crate::mblk::MblkChain;
use crate::provider::{Duplex, LinkState, MacError, MacProvider};

fn num_suffix(s: &str, prefix: &str) -> usize {
    s.strip_prefix(prefix).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{s} is not {prefix}N"))
}

type Collected<T> = Arc<Mutex<Vec<T>>>;

/// A started link over a fake with the given rings, collecting what its
/// client receives and which lanes were woken.
fn started(rx: usize, tx: usize) -> (Arc<FakeNic>, Arc<Mac>, Collected<Vec<u8>>, Collected<usize>) {
    let nic = FakeNic::new(rx, tx);
    let mac = nic.register().unwrap();
    let got: Collected<Vec<u8>> = Arc::default();
    let woken: Collected<usize> = Arc::default();
    let g = got.clone();
    mac.set_rx(Some(Arc::new(move |chain: MblkChain| {
        let mut g = g.lock().unwrap();
        for m in chain {
            let mut b = std::vec![0u8; m.total_len()];
            m.copy_to(&mut b);
            g.push(b);
        }
    })));
    for srs in mac.rx_srs() {
        let (w, ring) = (woken.clone(), srs.ring);
        srs.set_wakeups(Arc::new(move || w.lock().unwrap().push(ring)), Arc::new(|| {}));
    }
    mac.start().unwrap();
    (nic, mac, got, woken)
}

fn send(mac: &Mac, frame: &[u8]) {
    let mut m = mac.alloc_tx(frame.len()).unwrap();
    m.data_mut().copy_from_slice(frame);
    mac.tx(m);
}

#[test]
fn register_names_links_and_devices_in_order() {
    // A driver name of its own makes the instance numbers exact.
    let mut info = fake_info(1, 1);
    info.driver = "regtest";
    let a = FakeNic::with_info(info.clone()).register().unwrap();
    let b = FakeNic::with_info(info).register().unwrap();
    assert_eq!(a.device(), "regtest0");
    assert_eq!(b.device(), "regtest1");
    let (na, nb) = (num_suffix(a.link(), "net"), num_suffix(b.link(), "net"));
    assert!(nb > na, "{} then {}", a.link(), b.link());
    assert!(Arc::ptr_eq(&mac::by_name(a.link()).unwrap(), &a));
    assert!(Arc::ptr_eq(&mac::by_name(b.link()).unwrap(), &b));
    let all = mac::links();
    let pa = all.iter().position(|m| Arc::ptr_eq(m, &a)).unwrap();
    let pb = all.iter().position(|m| Arc::ptr_eq(m, &b)).unwrap();
    assert!(pa < pb);
    assert!(mac::by_name("nosuchlink0").is_none());

    // The default driver of the fake is vioif.
    let v = FakeNic::new(1, 1).register().unwrap();
    assert!(v.device().starts_with("vioif"), "{}", v.device());
    assert_eq!(v.info().mtu, 1500);
}

/// Runs ring `ring`'s SRS the way its poll thread and worker do until the
/// ring is idle again; returns the packets delivered to the client.
fn run_srs(mac: &Mac, ring: usize) -> usize {
    let mut delivered_before = 0;
    for srs in mac.rx_srs() {
        for sr in srs.softrings() {
            delivered_before += sr.stats.snapshot().pkts;
        }
    }
    for _ in 0..10_000 {
        let mut step = mac.rx_poll_step(ring);
        while mac.rx_worker_step(ring) {}
        if step == PollStep::Inline {
            step = mac.rx_rearm(ring);
        }
        if step == PollStep::Idle {
            break;
        }
    }
    let mut after = 0;
    for srs in mac.rx_srs() {
        for sr in srs.softrings() {
            after += sr.stats.snapshot().pkts;
        }
    }
    (after - delivered_before) as usize
}

#[test]
fn start_reads_link_state_and_the_srs_delivers_then_idles() {
    let (nic, mac, got, _) = started(2, 1);
    assert!(nic.is_started());
    assert_eq!(mac.link_state(), LinkState::Up);

    assert!(nic.inject(1, &tcp4_frame(1000, 7, 60)));
    assert!(nic.inject(1, &tcp4_frame(1001, 7, 70)));
    // The first frame fired the interrupt (which the driver then masks);
    // the second found it off.
    assert!(mac.rx_srs()[1].interrupt_pending());
    assert!(!mac.rx_srs()[0].interrupt_pending());
    assert!(!nic.intr_enabled(1));
    assert_eq!(nic.rx_stats(1).unwrap().snapshot().interrupts, 1);

    assert_eq!(run_srs(&mac, 1), 2);
    {
        let g = got.lock().unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0], tcp4_frame(1000, 7, 60));
        assert_eq!(g[1], tcp4_frame(1001, 7, 70));
    }
    // Two packets are no backlog: interrupt mode, interrupt back on.
    assert_eq!(mac.rx_srs()[1].mode(), crate::srs::Mode::Interrupt);
    assert_eq!(nic.intr_enables(1), 1);
    assert!(nic.intr_enabled(1));
    let c = mac.rx_srs()[1].stats.snapshot();
    assert_eq!((c.intr_pkts, c.poll_pkts, c.intr_bytes), (2, 0, 130));
    assert_eq!(mac.rx_ring_counters()[1].packets, 2);
    assert_eq!(mac.rx_ring_counters()[0].packets, 0);
    // Ring 0 untouched; an unknown ring is just idle.
    assert_eq!(nic.intr_enables(0), 0);
    assert_eq!(mac.rx_poll_step(9), PollStep::Idle);
    assert!(!mac.rx_worker_step(9));

    // Interrupt on again: the next frame notes the SRS again.
    assert!(nic.inject(1, &tcp4_frame(1002, 7, 60)));
    assert!(mac.rx_srs()[1].interrupt_pending());
    assert_eq!(mac.rx_ring_cpus(), std::vec![0, 1]);
}

#[test]
fn a_backlog_switches_to_polling_in_bounded_pickups_then_back() {
    let (nic, mac, got, _) = started(1, 1);
    let max = crate::srs::tunables::POLL_MAX_BYTES.get() as usize;
    let n = 2 * max / 1500 + 10;
    for i in 0..n {
        assert!(nic.inject(0, &tcp4_frame(i as u16, 7, 1500)));
    }
    assert_eq!(run_srs(&mac, 0), n);
    assert_eq!(got.lock().unwrap().len(), n);
    let c = mac.rx_srs()[0].stats.snapshot();
    // The interrupt pickup took at most one bounded chain and started polling.
    assert!(c.intr_pkts as usize * 1500 <= max + 1500, "{c:?}");
    assert_eq!(c.poll_on, 1);
    assert_eq!(c.poll_off, 1);
    assert_eq!(c.intr_pkts + c.poll_pkts, n as u64);
    assert!(c.chain_over50 >= 1, "{c:?}");
    assert!(nic.intr_enabled(0));
    assert_eq!(mac.rx_srs()[0].mode(), crate::srs::Mode::Interrupt);
}

#[test]
fn interrupt_reenable_with_frames_waiting_fires_again() {
    let (nic, mac, _, _) = started(1, 1);
    assert!(nic.inject(0, &tcp4_frame(1, 2, 60)));
    let srs = mac.rx_srs()[0].clone();
    assert!(srs.interrupt_pending());
    // The poll thread picks up, then a frame slips in before the interrupt
    // is back: intr_enable must raise it at once.
    let before = nic.rx_stats(0).unwrap().snapshot().interrupts;
    let chain_frame = tcp4_frame(1, 2, 60);
    // Step by hand: pick up (one frame), but inject before re-enabling is
    // not possible from outside, so inject after the step and check the
    // interrupt fires because it is on again.
    assert_eq!(mac.rx_poll_step(0), PollStep::Inline);
    assert!(mac.rx_worker_step(0));
    assert_eq!(mac.rx_rearm(0), PollStep::Idle);
    assert!(nic.inject(0, &chain_frame));
    assert!(srs.interrupt_pending());
    assert_eq!(nic.rx_stats(0).unwrap().snapshot().interrupts, before + 1);
    assert_eq!(run_srs(&mac, 0), 1);
}

#[test]
fn frames_without_a_client_are_counted() {
    let nic = FakeNic::new(1, 1);
    let mac = nic.register().unwrap();
    mac.start().unwrap();
    for _ in 0..3 {
        assert!(nic.inject(0, &tcp4_frame(5, 6, 64)));
    }
    assert_eq!(run_srs(&mac, 0), 3);
    assert_eq!(mac.primary().stats.rx_no_client.load(core::sync::atomic::Ordering::Relaxed), 3);
    // Buffers went back to the fake's pool: injecting still works.
    assert!(nic.inject(0, &tcp4_frame(5, 6, 64)));
}

#[test]
fn inject_refuses_bad_input_without_panicking() {
    let nic = FakeNic::new(1, 1);
    assert!(!nic.inject(3, &[0u8; 60]));
    assert!(!nic.inject(0, &std::vec![0u8; 5000]));
    assert_eq!(nic.inject_drops.load(core::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(nic.rx_stats(0).unwrap().snapshot().drops, 1);
    // Not started: no upcall, the frame waits.
    assert!(nic.inject(0, &[0u8; 60]));
    assert_eq!(nic.rx_pending(0), 1);
}

#[test]
fn tx_ring_is_stable_per_flow_and_flows_spread() {
    let (nic, mac, _, _) = started(1, 4);
    for _ in 0..10 {
        send(&mac, &tcp4_frame(4000, 80, 100));
    }
    let ring = frame_hash(&tcp4_frame(4000, 80, 100)) as usize % 4;
    for r in 0..4 {
        let n = nic.take_sent(r).len();
        assert_eq!(n, if r == ring { 10 } else { 0 }, "ring {r}");
    }
    for p in 0..32u16 {
        send(&mac, &tcp4_frame(5000 + p, 80, 100));
    }
    let used = (0..4).filter(|&r| !nic.sent(r).is_empty()).count();
    assert!(used >= 2, "32 flows used {used} rings");
    let total: usize = (0..4).map(|r| nic.sent(r).len()).sum();
    assert_eq!(total, 32);
    let c: u64 = mac.tx_ring_counters().iter().map(|c| c.packets).sum();
    assert_eq!(c, 42);
}

#[test]
fn full_ring_backlogs_and_drains_in_order_on_resume() {
    let (nic, mac, _, _) = started(1, 2);
    let frame = |i: usize| {
        let mut f = tcp4_frame(6000, 80, 80);
        f[60] = i as u8;
        f
    };
    let ring = frame_hash(&frame(0)) as usize % 2;
    nic.set_tx_room(ring, 3);
    for i in 0..10 {
        send(&mac, &frame(i));
    }
    assert_eq!(nic.sent(ring).len(), 3);
    nic.resume_tx(ring);
    let sent = nic.take_sent(ring);
    assert_eq!(sent.len(), 10);
    for (i, f) in sent.iter().enumerate() {
        assert_eq!(f[60], i as u8, "order");
    }
    assert_eq!(mac.stats.tx_backlog_drops.load(core::sync::atomic::Ordering::Relaxed), 0);
    // Nothing left behind: resuming again sends nothing more.
    nic.resume_tx(ring);
    assert!(nic.sent(ring).is_empty());
    assert!(nic.tx_stats(ring).unwrap().snapshot().blocked > 0);
    assert_eq!(nic.tx_stats(ring).unwrap().snapshot().unblocked, 2);
}

#[test]
fn backlog_is_bounded_and_overflow_is_counted() {
    let (nic, mac, _, _) = started(1, 1);
    nic.set_tx_full(0);
    for _ in 0..TX_BACKLOG + 5 {
        send(&mac, &tcp4_frame(7000, 80, 64));
    }
    assert!(nic.sent(0).is_empty());
    assert_eq!(mac.stats.tx_backlog_drops.load(core::sync::atomic::Ordering::Relaxed), 5);
    nic.resume_tx(0);
    assert_eq!(nic.take_sent(0).len(), TX_BACKLOG);
    // The dropped packets' buffers went back to the pool, as did the sent
    // ones: a full pool's worth can be allocated again.
    let bufs: Vec<_> = (0..crate::mac::TX_BUFS).map(|_| mac.alloc_tx(64)).collect();
    assert!(bufs.iter().all(|b| b.is_some()));
    assert!(mac.alloc_tx(64).is_none());
    assert_eq!(mac.stats.tx_no_buf.load(core::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn a_blocked_ring_holds_clients_back_until_the_drain_clears_it() {
    let (nic, mac, _, _) = started(1, 1);
    let client = mac.primary().clone();
    assert!(client.tx_ready() && !mac.tx_blocked());
    nic.set_tx_full(0);
    for _ in 0..mac::TX_BLOCK - 1 {
        send(&mac, &tcp4_frame(7100, 80, 64));
    }
    assert!(client.tx_ready(), "below TX_BLOCK the client may still send");
    send(&mac, &tcp4_frame(7100, 80, 64));
    assert!(mac.tx_blocked());
    assert!(!client.tx_ready());
    assert!(!client.tx_ready(), "asking again counts nothing more");
    // The driver resumes the ring: the drain sends the backlog, the ring
    // is unblocked, the client may send again.
    nic.resume_tx(0);
    assert_eq!(nic.take_sent(0).len(), mac::TX_BLOCK);
    assert!(!mac.tx_blocked());
    assert!(client.tx_ready());
    let c = client.stats.snapshot();
    assert_eq!((c.tx_blocked, c.tx_unblocked), (1, 1));
    assert_eq!(mac.stats.tx_backlog_drops.load(core::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn alloc_tx_refuses_oversized_packets() {
    let nic = FakeNic::new(1, 1);
    let mac = nic.register().unwrap();
    assert!(mac.alloc_tx(crate::mac::TX_BUF_SIZE).is_none());
    assert_eq!(mac.stats.tx_no_buf.load(core::sync::atomic::Ordering::Relaxed), 1);
    let m = mac.alloc_tx(100).unwrap();
    assert_eq!(m.len(), 100);
    assert_eq!(m.headroom(), crate::mac::TX_HEADROOM);
}

#[test]
fn tx_on_a_nic_without_tx_rings_drops_instead_of_panicking() {
    let nic = FakeNic::new(1, 0);
    let mac = nic.register().unwrap();
    mac.start().unwrap();
    send(&mac, &tcp4_frame(1, 2, 60));
    assert_eq!(mac.stats.tx_backlog_drops.load(core::sync::atomic::Ordering::Relaxed), 1);
    nic.resume_tx(0);
}

#[test]
fn link_changes_reach_every_listener() {
    let nic = FakeNic::new(1, 1);
    nic.set_link(LinkState::Down);
    let mac = nic.register().unwrap();
    assert_eq!(mac.link_state(), LinkState::Unknown, "before start");
    let seen: Arc<Mutex<Vec<(usize, LinkState)>>> = Arc::default();
    for id in 0..2 {
        let s = seen.clone();
        mac.on_link_change(Arc::new(move |st| s.lock().unwrap().push((id, st))));
    }
    mac.start().unwrap();
    assert_eq!(mac.link_state(), LinkState::Down);
    assert!(seen.lock().unwrap().is_empty(), "start is not a change");
    nic.set_link(LinkState::Up);
    assert_eq!(mac.link_state(), LinkState::Up);
    nic.set_link(LinkState::Down);
    assert_eq!(mac.link_state(), LinkState::Down);
    assert_eq!(
        *seen.lock().unwrap(),
        std::vec![(0, LinkState::Up), (1, LinkState::Up), (0, LinkState::Down), (1, LinkState::Down)]
    );
    assert_eq!(mac.stats.link_changes.load(core::sync::atomic::Ordering::Relaxed), 2);
    // After stop, no more upcalls.
    nic.stop();
    nic.set_link(LinkState::Up);
    assert_eq!(mac.link_state(), LinkState::Down);
    assert!(nic.is_stopped());
}

#[test]
fn client_name_follows_the_receive_function() {
    let nic = FakeNic::new(1, 1);
    let mac = nic.register().unwrap();
    assert_eq!(mac.client_name(), None);
    mac.set_rx(Some(Arc::new(|_c: MblkChain| {})));
    assert_eq!(mac.client_name(), Some(String::from(mac.link())));
    mac.set_rx(None);
    assert_eq!(mac.client_name(), None);
}

#[test]
fn fake_filters_and_properties() {
    let nic = FakeNic::new(2, 2);
    let a = |i: u8| [2, 8, 0x20, 0, 0, i];
    for i in 0..crate::fake::FAKE_UNICAST_SLOTS as u8 {
        nic.unicast_add(0, a(i)).unwrap();
    }
    assert_eq!(nic.unicast_add(0, a(99)), Err(MacError::NoSpace));
    assert_eq!(nic.unicast_add(5, a(1)), Err(MacError::Invalid));
    nic.unicast_remove(0, a(0)).unwrap();
    assert_eq!(nic.unicast_remove(0, a(0)), Err(MacError::Invalid));
    nic.unicast_add(0, a(99)).unwrap();
    nic.multicast_add([1, 0, 0x5e, 0, 0, 1]).unwrap();
    assert_eq!(nic.multicast_filters().len(), 1);
    nic.set_promisc(true).unwrap();
    assert!(nic.promisc());
    nic.set_speed(1000);
    nic.set_duplex(Duplex::Half);
    assert_eq!(nic.speed_mbps(), 1000);
    assert_eq!(nic.duplex(), Duplex::Half);
    assert!(nic.rx_ring(2).is_none() && nic.tx_ring(2).is_none());
}

#[test]
fn a_starved_pool_calls_its_hook_once_when_a_buffer_returns() {
    use core::sync::atomic::{AtomicUsize, Ordering};
    let pool = crate::buf::BufPool::new(Arc::new(crate::dma::host::HeapDma::default()), 64, 2).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    pool.set_starved_hook(Arc::new(move || {
        c.fetch_add(1, Ordering::Relaxed);
    }));
    let a = pool.alloc().unwrap();
    let b = pool.alloc().unwrap();
    drop(a);
    assert_eq!(calls.load(Ordering::Relaxed), 0, "not starved yet");
    let a = pool.alloc().unwrap();
    assert!(pool.alloc().is_none());
    assert_eq!(pool.stats.empty.load(Ordering::Relaxed), 1);
    drop(a);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    drop(b);
    assert_eq!(calls.load(Ordering::Relaxed), 1, "one call per starvation");
}
