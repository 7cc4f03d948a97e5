//! The in-kernel socket interface (sockfs' role) for datagram sockets: what
//! every in-kernel service and the shell use to talk UDP on a FireEngine
//! instance. Calls never block; a service that wants to wait registers an
//! upcall, which FireEngine calls (inside the conn's squeue, so it must be
//! short and must not block) when a datagram has been queued for reading.
//!
//! The receive side is a bounded queue of whole datagrams, limited by the
//! bytes they hold (`recv_buf`); a datagram that does not fit is dropped
//! and counted (`udpInOverflows`, kept by the caller, and here per socket).
//! Sending goes down through the conn's squeue ([`super::instance`]).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arbalest_mac::sync::Mutex;

/// A received datagram and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The sender.
    pub from: SocketAddrV4,
    /// The payload.
    pub data: Vec<u8>,
}

/// What a queued datagram costs beyond its payload, so that a flood of
/// empty datagrams is bounded too (illumos charges the whole mblk).
pub const DATAGRAM_OVERHEAD: usize = 64;

fn cost(d: &Datagram) -> usize {
    d.data.len() + DATAGRAM_OVERHEAD
}

/// Called when a datagram has been queued for reading.
pub type Upcall = Arc<dyn Fn() + Send + Sync>;

/// A socket's receive queue.
pub struct RcvQueue {
    q: Mutex<(VecDeque<Datagram>, usize)>,
    limit: usize,
    upcall: Mutex<Option<Upcall>>,
    overflows: AtomicU64,
    delivered: AtomicU64,
    /// `shutdown(Read)`: nothing more is queued.
    shut: AtomicBool,
    discarded: AtomicU64,
}

/// What became of a datagram offered to a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for reading.
    Queued,
    /// The queue was full: dropped, counted as an overflow.
    Full,
    /// The socket shut its reading down: discarded, counted.
    Shut,
}

impl RcvQueue {
    /// A queue holding at most `limit` bytes of datagrams, each charged
    /// its payload plus [`DATAGRAM_OVERHEAD`].
    pub fn new(limit: usize) -> RcvQueue {
        RcvQueue {
            q: Mutex::new((VecDeque::new(), 0)),
            limit,
            upcall: Mutex::new(None),
            overflows: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            shut: AtomicBool::new(false),
            discarded: AtomicU64::new(0),
        }
    }

    /// Queues `d` (counted if it does not fit, or reading was shut down).
    /// Calls the upcall after queueing, with no lock held.
    pub fn deliver(&self, d: Datagram) -> Delivery {
        {
            let mut g = self.q.lock();
            let (q, bytes) = &mut *g;
            if self.shut.load(Ordering::Acquire) {
                self.discarded.fetch_add(1, Ordering::Relaxed);
                return Delivery::Shut;
            }
            if *bytes + cost(&d) > self.limit {
                self.overflows.fetch_add(1, Ordering::Relaxed);
                return Delivery::Full;
            }
            *bytes += cost(&d);
            q.push_back(d);
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let up = self.upcall.lock().clone();
        if let Some(f) = up {
            f();
        }
        Delivery::Queued
    }

    /// `shutdown(Read)`: drops what is waiting, refuses (and counts) what
    /// comes.
    pub fn shut(&self) {
        let mut g = self.q.lock();
        self.shut.store(true, Ordering::Release);
        let n = g.0.len() as u64;
        g.0.clear();
        g.1 = 0;
        self.discarded.fetch_add(n, Ordering::Relaxed);
    }

    /// Datagrams discarded because reading was shut down.
    pub fn discarded(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }

    /// The oldest datagram, if any.
    pub fn recv(&self) -> Option<Datagram> {
        let mut g = self.q.lock();
        let (q, bytes) = &mut *g;
        let d = q.pop_front()?;
        *bytes -= cost(&d);
        Some(d)
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.q.lock().0.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged for what is waiting (payload plus
    /// [`DATAGRAM_OVERHEAD`] each).
    pub fn bytes(&self) -> usize {
        self.q.lock().1
    }

    /// Calls the upcall without a datagram (an error is pending: the
    /// reader should look).
    pub fn wake(&self) {
        let up = self.upcall.lock().clone();
        if let Some(f) = up {
            f();
        }
    }

    /// Sets (or clears) the readable upcall.
    pub fn set_upcall(&self, f: Option<Upcall>) {
        *self.upcall.lock() = f;
    }

    /// Datagrams refused because the queue was full.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }

    /// Datagrams queued.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Drops everything waiting.
    pub fn clear(&self) {
        let mut g = self.q.lock();
        g.0.clear();
        g.1 = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use core::sync::atomic::AtomicUsize;

    fn d(n: usize) -> Datagram {
        Datagram { from: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 9), data: alloc::vec![7u8; n] }
    }

    #[test]
    fn empty_datagrams_are_bounded_too() {
        let q = RcvQueue::new(10 * DATAGRAM_OVERHEAD);
        let accepted = (0..1000).filter(|_| q.deliver(d(0)) == Delivery::Queued).count();
        assert_eq!((accepted, q.overflows()), (10, 990));
    }

    #[test]
    fn bounded_by_bytes_with_counted_overflows_and_upcalls() {
        let q = RcvQueue::new(1000 + 2 * DATAGRAM_OVERHEAD);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        q.set_upcall(Some(Arc::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        })));
        assert_eq!(q.deliver(d(600)), Delivery::Queued);
        assert_eq!(q.deliver(d(401)), Delivery::Full, "600 + 401 > 1000 (plus two overheads)");
        assert_eq!(q.deliver(d(400)), Delivery::Queued);
        assert_eq!((q.len(), q.bytes(), q.overflows(), q.delivered()), (2, 1000 + 2 * DATAGRAM_OVERHEAD, 1, 2));
        assert_eq!(calls.load(Ordering::Relaxed), 2, "no upcall for a refused datagram");
        assert_eq!(q.recv().map(|x| x.data.len()), Some(600));
        assert_eq!(q.bytes(), 400 + DATAGRAM_OVERHEAD);
        q.clear();
        assert!(q.is_empty() && q.recv().is_none());
    }
}
