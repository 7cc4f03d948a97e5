//! Virtqueue tests: the test plays the device through [`DeviceRing`].

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::*;
use crate::testing::{DeviceRing, MemMmio};
use arbalest_mac::dma::host::HeapDma;

fn queue(size: u16, event_idx: bool) -> (VirtQueue<u32>, DeviceRing, Arc<MemMmio>) {
    let dma = Arc::new(HeapDma::default());
    let mut q = VirtQueue::new(dma, 3, size, event_idx).unwrap();
    let bell = Arc::new(MemMmio::new(16));
    q.set_notifier(Notifier::new(bell.clone(), 4, q.index()));
    let (d, a, u) = q.addresses();
    (q, DeviceRing::new(size, d, a, u), bell)
}

fn seg(addr: u64, len: u32, writable: bool) -> Seg {
    Seg { addr, len, writable }
}

#[test]
fn layout_alignment() {
    let l = Layout::new(256);
    assert_eq!(l.avail, 4096);
    assert_eq!(l.used % 4, 0);
    assert_eq!(l.used, 4096 + 6 + 512 + 2);
    assert_eq!(l.total, l.used + 6 + 8 * 256);
}

#[test]
fn add_chain_and_pop() {
    let (mut q, mut dev, _) = queue(8, false);
    let head = q.add(&[seg(0x1000, 12, false), seg(0x2000, 100, false), seg(0x3000, 50, true)], 7).unwrap();
    assert_eq!(q.num_free(), 5);
    assert_eq!(q.in_flight(), 1);
    let (h, chain) = dev.pop_avail().unwrap();
    assert_eq!(h, head);
    assert_eq!(chain.len(), 3);
    assert_eq!((chain[0].addr, chain[0].len, chain[0].flags), (0x1000, 12, DESC_F_NEXT));
    assert_eq!((chain[2].addr, chain[2].flags), (0x3000, DESC_F_WRITE));
    assert!(q.pop_used().unwrap().is_none());
    dev.push_used(h as u32, 40, false);
    let u = q.pop_used().unwrap().unwrap();
    assert_eq!((u.token, u.len), (7, 40));
    assert_eq!(q.num_free(), 8);
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn full_returns_token_and_free_list_recycles() {
    let (mut q, mut dev, _) = queue(4, false);
    for i in 0..4 {
        q.add(&[seg(i, 1, true)], i as u32).unwrap();
    }
    assert_eq!(q.add(&[seg(9, 1, true)], 99).unwrap_err(), (QueueError::Full, 99));
    assert_eq!(q.add(&[], 5).unwrap_err().0, QueueError::NoSegments);
    // Complete out of order, many rounds: the free list stays consistent.
    for round in 0..50u32 {
        let mut heads: Vec<u16> = Vec::new();
        while let Some((h, _)) = dev.pop_avail() {
            heads.push(h);
        }
        heads.reverse();
        for h in &heads {
            dev.push_used(*h as u32, 1, false);
        }
        let mut got = 0;
        while let Some(u) = q.pop_used().unwrap() {
            got += 1;
            let n = if round % 2 == 1 && q.num_free() >= 2 { 2 } else { 1 };
            q.add(&[seg(u.token as u64, 1, true), seg(0, 1, true)][..n], u.token).unwrap();
        }
        assert_eq!(got, heads.len());
    }
    assert!(!q.is_broken());
}

#[test]
fn kick_follows_flags_without_event_idx() {
    let (mut q, dev, bell) = queue(8, false);
    q.add(&[seg(1, 1, true)], 1).unwrap();
    assert!(q.kick());
    assert_eq!(bell.read16(4), 3, "queue index written to the notify address");
    assert!(!q.kick(), "nothing new: no kick");
    dev.set_used_flags(USED_F_NO_NOTIFY);
    q.add(&[seg(1, 1, true)], 2).unwrap();
    assert!(!q.kick());
}

#[test]
fn kick_follows_avail_event() {
    let (mut q, dev, _) = queue(8, true);
    dev.set_avail_event(0);
    q.add(&[seg(1, 1, true)], 1).unwrap();
    assert!(q.kick(), "device waits for index 0");
    // Device says: kick me when avail passes 5.
    dev.set_avail_event(5);
    q.add(&[seg(1, 1, true)], 2).unwrap();
    q.add(&[seg(1, 1, true)], 3).unwrap();
    assert!(!q.kick(), "avail 1 -> 3 does not cross 5");
    for i in 0..3 {
        q.add(&[seg(1, 1, true)], 4 + i).unwrap();
    }
    assert!(q.kick(), "avail 3 -> 6 crosses 5");
}

#[test]
fn event_suppression_flags() {
    let (mut q, mut dev, _) = queue(8, false);
    let ev = q.events().clone();
    q.add(&[seg(1, 1, true)], 1).unwrap();
    q.add(&[seg(1, 1, true)], 2).unwrap();
    ev.disable();
    assert_eq!(dev.avail_flags(), AVAIL_F_NO_INTERRUPT);
    let (h, _) = dev.pop_avail().unwrap();
    assert!(!dev.push_used(h as u32, 1, false), "no interrupt while disabled");
    assert!(ev.has_pending());
    assert!(ev.enable(), "enable reports the entry that arrived meanwhile");
    assert_eq!(dev.avail_flags(), 0);
    q.pop_used().unwrap().unwrap();
    assert!(!ev.has_pending());
    assert!(!ev.enable());
    let (h, _) = dev.pop_avail().unwrap();
    assert!(dev.push_used(h as u32, 1, false), "interrupt when enabled");
}

#[test]
fn event_suppression_event_idx() {
    let (mut q, mut dev, _) = queue(8, true);
    let ev = q.events().clone();
    for i in 0..6 {
        q.add(&[seg(1, 1, true)], i).unwrap();
    }
    assert!(!ev.enable());
    assert_eq!(dev.used_event(), 0);
    let (h, _) = dev.pop_avail().unwrap();
    assert!(dev.push_used(h as u32, 1, true), "first entry interrupts");
    // The handler disables; further entries do not interrupt.
    ev.disable();
    let (h, _) = dev.pop_avail().unwrap();
    assert!(!dev.push_used(h as u32, 1, true));
    // Polling while disabled keeps used_event behind the driver.
    q.pop_used().unwrap().unwrap();
    q.pop_used().unwrap().unwrap();
    assert_eq!(dev.used_event(), 1);
    let (h, _) = dev.pop_avail().unwrap();
    assert!(!dev.push_used(h as u32, 1, true));
    // Re-enable with an entry pending: reported.
    assert!(ev.enable());
    q.pop_used().unwrap().unwrap();
    assert!(!ev.enable());
    // Delayed: interrupt after 2 more entries (the third).
    assert!(!ev.enable_after(2));
    let (h1, _) = dev.pop_avail().unwrap();
    let (h2, _) = dev.pop_avail().unwrap();
    let (h3, _) = dev.pop_avail().unwrap();
    assert!(!dev.push_used(h1 as u32, 1, true));
    assert!(!dev.push_used(h2 as u32, 1, true));
    assert!(dev.push_used(h3 as u32, 1, true));
}

#[test]
fn bad_used_entries_break_the_queue() {
    // Out of range.
    let (mut q, mut dev, _) = queue(8, false);
    q.add(&[seg(1, 1, true)], 1).unwrap();
    dev.pop_avail().unwrap();
    dev.push_used(200, 1, false);
    assert_eq!(q.pop_used().unwrap_err(), QueueError::BadEntry { id: 200 });
    assert_eq!(q.pop_used().unwrap_err(), QueueError::Broken);
    assert_eq!(q.add(&[seg(1, 1, true)], 5).unwrap_err().0, QueueError::Broken);
    assert_eq!(q.bad_entries(), 1);
    // Reset hands back the token in flight and works again.
    let mut back = Vec::new();
    q.reset(|t| back.push(t));
    assert_eq!(back, [1]);
    assert!(!q.is_broken());
    assert_eq!(q.num_free(), 8);
    let mut dev = DeviceRing::new(8, dev.desc, dev.avail, dev.used);
    q.add(&[seg(1, 1, true)], 2).unwrap();
    let (h, _) = dev.pop_avail().unwrap();
    dev.push_used(h as u32, 1, false);
    assert_eq!(q.pop_used().unwrap().unwrap().token, 2);

    // Not in flight (completed twice).
    let (mut q, mut dev, _) = queue(8, false);
    q.add(&[seg(1, 1, true)], 1).unwrap();
    let (h, _) = dev.pop_avail().unwrap();
    dev.push_used(h as u32, 1, false);
    dev.push_used(h as u32, 1, false);
    assert!(q.pop_used().unwrap().is_some());
    assert_eq!(q.pop_used().unwrap_err(), QueueError::BadEntry { id: h as u32 });

    // A used index running ahead of the ring.
    let (mut q, mut dev, _) = queue(4, false);
    for _ in 0..9 {
        dev.put_used(0, 0);
    }
    dev.publish_used(0, false);
    assert!(matches!(q.pop_used(), Err(QueueError::BadEntry { .. })));
}

#[test]
fn need_event_rule() {
    assert!(need_event(0, 1, 0));
    assert!(!need_event(1, 1, 0));
    assert!(need_event(5, 7, 3));
    assert!(!need_event(7, 7, 3));
    assert!(need_event(0xffff, 1, 0xfffe), "wraps");
}
