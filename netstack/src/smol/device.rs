//! The smoltcp `Device` of an instance, built afresh for each step of a
//! poll: it offers at most one received frame (already validated by
//! [`super::rxcheck`], linearized if it spanned several buffers) and
//! transmits into packets from [`Link::alloc_tx`] handed to [`Link::tx`].
//!
//! Checksums: the device tells smoltcp to compute all checksums on Tx and
//! to verify none on Rx, because `rxcheck` has verified them already (or
//! the NIC has, per packet).
//!
//! Tx buffers: `transmit` (egress of sockets) allocates the packet up
//! front; when the pool is empty it returns `None`, smoltcp keeps the data
//! queued in the socket and tries again on a later poll (counted once as
//! `txNoBuffer`). The token paired with a received frame (ARP replies, ICMP
//! echo replies, RSTs) allocates when used; without a buffer the reply is
//! built into a throw-away buffer and dropped (counted).
//!
//! Fragments: smoltcp fragments a datagram larger than the MTU into one
//! buffer per interface (its first fragment leaves at once, the others
//! one per `poll_egress`), and a second large datagram dispatched before
//! the first one's last fragment is out overwrites that buffer. The device
//! therefore watches the IPv4 frames it carries ([`FragGate`]: a frame
//! with More Fragments set means a datagram is part-way out) and, while
//! one is, hands out no Tx token except the single one a `poll_egress`
//! call needs for the next fragment; the sockets' egress then stops
//! (smoltcp sees a full device and tries again) until the last fragment
//! has left. The instance never hands smoltcp a received frame while a
//! datagram is part-way out, for the same reason (an echo reply to a large
//! ping is fragmented too). Fragments sent are counted as illumos counts
//! them (`ipFragOKs` per datagram, `ipFragCreates` per fragment).

use alloc::vec;
use core::sync::atomic::{AtomicBool, Ordering};

use arbalest_mac::Mblk;
use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::fireengine::ip::mib::IpMib;
use crate::link::Link;
use crate::stats::{Counters, add, bump};

/// Ethernet header length.
pub const ETH_HDR: usize = 14;

/// The largest IPv4 datagram (header included) an instance can send:
/// smoltcp's fragmentation buffer (`fragmentation-buffer-size-*`).
pub const MAX_TX_DATAGRAM: usize = smoltcp::config::FRAGMENTATION_BUFFER_SIZE;

/// Whether a datagram is part-way out in fragments, and the fragmentation
/// counters (see the module documentation).
#[derive(Clone, Copy)]
pub struct FragGate<'a> {
    /// Set while the last frame sent was a fragment with More Fragments.
    pub busy: &'a AtomicBool,
    /// Where `ipFragOKs` and `ipFragCreates` are counted.
    pub mib: &'a IpMib,
}

impl FragGate<'_> {
    /// Whether a datagram is part-way out.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    /// Notes a frame smoltcp has just written.
    fn sent(&self, frame: &[u8]) {
        if frame.len() < ETH_HDR + 20 || frame[12..14] != [0x08, 0x00] {
            return;
        }
        let flags = u16::from_be_bytes([frame[ETH_HDR + 6], frame[ETH_HDR + 7]]);
        let more = flags & 0x2000 != 0;
        let offset = flags & 0x1fff;
        self.busy.store(more, Ordering::Relaxed);
        if more || offset != 0 {
            bump(&self.mib.ip_frag_creates);
            if offset == 0 {
                bump(&self.mib.ip_frag_oks);
            }
        }
    }
}

/// smoltcp's view of a link for one poll step.
pub struct SmolDevice<'a> {
    rx: Option<&'a [u8]>,
    link: &'a dyn Link,
    counters: &'a Counters,
    frame_max: usize,
    frag: FragGate<'a>,
    /// Tx tokens `transmit` may still hand out while a datagram is
    /// part-way out: one if it was when the step began (for its next
    /// fragment), else none.
    busy_tokens: u8,
    /// Set when `transmit` found the Tx pool empty or the link blocked.
    pub tx_exhausted: bool,
}

impl<'a> SmolDevice<'a> {
    /// A device offering `rx` (if any) and sending frames of at most
    /// `frame_max` bytes over `link`.
    pub fn new(
        rx: Option<&'a [u8]>,
        link: &'a dyn Link,
        counters: &'a Counters,
        frame_max: usize,
        frag: FragGate<'a>,
    ) -> Self {
        let busy_tokens = u8::from(frag.busy());
        SmolDevice { rx, link, counters, frame_max, frag, busy_tokens, tx_exhausted: false }
    }
}

/// The capabilities of every instance's device: Ethernet, `frame_max`
/// bytes per frame (IP MTU + 14), software checksums on Tx only.
pub fn capabilities(frame_max: usize) -> DeviceCapabilities {
    let mut checksum = ChecksumCapabilities::default();
    checksum.ipv4 = Checksum::Tx;
    checksum.udp = Checksum::Tx;
    checksum.tcp = Checksum::Tx;
    checksum.icmpv4 = Checksum::Tx;
    let mut caps = DeviceCapabilities::default();
    caps.medium = Medium::Ethernet;
    caps.max_transmission_unit = frame_max;
    caps.max_burst_size = None;
    caps.checksum = checksum;
    caps
}

impl phy::Device for SmolDevice<'_> {
    type RxToken<'b>
        = RxToken<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let frame = self.rx.take()?;
        Some((RxToken { frame }, TxToken { link: self.link, counters: self.counters, frag: self.frag, m: None }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        if self.frag.busy() {
            if self.busy_tokens == 0 {
                // The rest of a fragmented datagram goes first.
                return None;
            }
            self.busy_tokens -= 1;
        }
        if !self.link.tx_ready() {
            if !self.tx_exhausted {
                bump(&self.counters.tx_blocked);
            }
            self.tx_exhausted = true;
            return None;
        }
        match self.link.alloc_tx(self.frame_max) {
            Some(m) => Some(TxToken { link: self.link, counters: self.counters, frag: self.frag, m: Some(m) }),
            None => {
                if !self.tx_exhausted {
                    bump(&self.counters.tx_nobuf);
                }
                self.tx_exhausted = true;
                None
            }
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        capabilities(self.frame_max)
    }
}

/// One received frame.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Room for one frame to send.
pub struct TxToken<'a> {
    link: &'a dyn Link,
    counters: &'a Counters,
    frag: FragGate<'a>,
    m: Option<Mblk>,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let m = self.m.or_else(|| self.link.alloc_tx(len));
        if let Some(mut m) = m {
            let start = m.headroom();
            m.set_range(start, len);
            if m.len() == len && m.cont.is_none() {
                let r = f(m.data_mut());
                self.frag.sent(m.data());
                self.link.tx(m);
                bump(&self.counters.tx_packets);
                add(&self.counters.tx_bytes, len as u64);
                return r;
            }
        }
        // No (big enough) buffer: let smoltcp finish its work, then drop it.
        bump(&self.counters.tx_nobuf);
        let mut sink = vec![0u8; len];
        let r = f(&mut sink);
        self.frag.sent(&sink);
        r
    }
}
