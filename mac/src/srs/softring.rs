//! Soft rings: the fanout stage of an Rx SRS. Packets are split by
//! protocol (TCP, UDP, other) and, across the CPUs of the link's `cpus`
//! property, by the flow hash, so one connection always lands on the same
//! soft ring and so on the same CPU. Each soft ring has a bounded queue
//! (overflow is a counted drop) and is drained on its CPU.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Once;

use crate::sync::Mutex;

use super::stats::SoftRingStats;
use super::tunables;
use crate::mblk::{Mblk, MblkChain};

/// The protocol class of a soft ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Other,
}

impl Proto {
    /// All classes, in soft-ring order.
    pub const ALL: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Other];

    /// The name `dlstat -F` prints.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Other => "oth",
        }
    }

    /// Classifies an Ethernet frame (VLAN tag skipped; IPv4/IPv6 TCP and
    /// UDP, everything else is `Other`).
    pub fn of_frame(f: &[u8]) -> Proto {
        let (mut et, mut off) = match f.get(12..14) {
            Some(b) => (u16::from_be_bytes([b[0], b[1]]), 14),
            None => return Proto::Other,
        };
        if et == 0x8100 {
            match f.get(16..18) {
                Some(b) => {
                    et = u16::from_be_bytes([b[0], b[1]]);
                    off = 18;
                }
                None => return Proto::Other,
            }
        }
        let proto = match et {
            0x0800 => f.get(off + 9).copied(),
            0x86dd => f.get(off + 6).copied(),
            _ => None,
        };
        match proto {
            Some(6) => Proto::Tcp,
            Some(17) => Proto::Udp,
            _ => Proto::Other,
        }
    }
}

/// One soft ring.
pub struct SoftRing {
    pub proto: Proto,
    /// Fanout index within its protocol class.
    pub index: usize,
    /// The CPU it drains on.
    pub cpu: usize,
    queue: Mutex<MblkChain>,
    /// Length of `queue`, readable without the lock (wait conditions).
    qlen: AtomicUsize,
    pub stats: SoftRingStats,
    wake: Once<Arc<dyn Fn() + Send + Sync>>,
}

impl SoftRing {
    pub(crate) fn new(proto: Proto, index: usize, cpu: usize) -> SoftRing {
        SoftRing { proto, index, cpu, queue: Mutex::new(MblkChain::new()), qlen: AtomicUsize::new(0), stats: SoftRingStats::default(), wake: Once::new() }
    }

    /// Sets how its drain thread is woken (for soft rings on a CPU other
    /// than the SRS worker's).
    pub fn set_wakeup(&self, f: Arc<dyn Fn() + Send + Sync>) {
        self.wake.call_once(|| f);
    }

    /// Queues packets (dropping, counted, beyond the bound) and wakes the
    /// drain thread if there is one.
    pub fn enqueue(&self, mut chain: MblkChain) {
        let max = tunables::SOFTRING_MAX.get() as usize;
        {
            let mut q = self.queue.lock();
            while let Some(m) = chain.pop() {
                if q.len() >= max {
                    self.stats.drops.fetch_add(1 + chain.len() as u64, Ordering::Relaxed);
                    break;
                }
                q.push(m);
            }
            self.qlen.store(q.len(), Ordering::Release);
        }
        if let Some(w) = self.wake.get() {
            w();
        }
    }

    /// Whether packets wait.
    pub fn pending(&self) -> bool {
        self.qlen.load(Ordering::Acquire) > 0
    }

    /// Hands everything queued to `deliver`. Returns the packets delivered.
    pub fn drain(&self, deliver: &dyn Fn(MblkChain)) -> usize {
        let chain = {
            let mut q = self.queue.lock();
            self.qlen.store(0, Ordering::Release);
            core::mem::take(&mut *q)
        };
        let n = chain.len();
        if n > 0 {
            self.stats.pkts.fetch_add(n as u64, Ordering::Relaxed);
            self.stats.bytes.fetch_add(chain.bytes() as u64, Ordering::Relaxed);
            deliver(chain);
        }
        n
    }

    /// Whether it has a drain thread of its own.
    pub fn has_thread(&self) -> bool {
        self.wake.get().is_some()
    }
}

/// Picks the soft ring of `m` among `fanout` rings per protocol class.
pub(crate) fn pick(m: &mut Mblk, fanout: usize) -> usize {
    let proto = Proto::of_frame(m.data());
    let class = Proto::ALL.iter().position(|p| *p == proto).unwrap_or(2);
    let f = if fanout > 1 {
        if m.meta.hash == 0 {
            m.meta.hash = crate::hash::frame_hash(m.data());
        }
        (m.meta.hash as usize) % fanout
    } else {
        0
    };
    class * fanout + f
}
