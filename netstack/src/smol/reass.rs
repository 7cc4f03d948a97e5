//! Reassembly of received IPv4 fragments for a smoltcp instance.
//!
//! smoltcp could reassemble by itself, but it would hand the datagram on
//! without the transport checksum check: the instance tells smoltcp to
//! verify no checksum (see [`super::device`]) because [`super::rxcheck`]
//! verifies them, and counts what it drops. So fragments stop here:
//! FireEngine's bounded, overlap-hardened [`Reassembler`] collects them,
//! and a completed datagram is rebuilt as one (large) Ethernet frame that
//! goes through `rxcheck` and on to smoltcp like any other frame.
//!
//! Bounds: [`CONFIG`] caps the bytes held per source and in all, the
//! datagrams in progress and their holes; a datagram not complete after
//! the timeout is dropped. Counters: the reassembly counters of illumos'
//! IPv4 MIB (`ipReasmReqds`, `ipReasmOKs`, `ipReasmFails`, ...), in the
//! instance's [`IpMib`].

use alloc::vec::Vec;

use crate::fireengine::ip::mib::IpMib;
use crate::fireengine::ip::reass::{ReassConfig, ReassOutcome, Reassembler};
use crate::fireengine::wire::ipv4::Ipv4Header;

use super::device::ETH_HDR;

/// The limits of a smoltcp instance's reassembly: 64 KiB and 4 datagrams
/// per source, 256 KiB and 16 datagrams in all, illumos' 60 s timeout.
pub const CONFIG: ReassConfig = ReassConfig {
    timeout_ms: crate::fireengine::ip::reass::IP_REASS_TIMEOUT_MS,
    per_source_cap: 64 * 1024,
    total_cap: 256 * 1024,
    max_datagrams: 16,
    per_source_datagrams: 4,
    max_holes: 64,
};

/// A fragment reassembly did not take (malformed, a duplicate, over a
/// cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// The datagrams being reassembled.
pub struct Reassembly {
    r: Reassembler,
}

impl Default for Reassembly {
    fn default() -> Self {
        Reassembly { r: Reassembler::new(CONFIG) }
    }
}

impl Reassembly {
    /// Takes one fragment, `frame` (an Ethernet frame whose IPv4 header
    /// [`super::rxcheck`] has validated), at time `now_ms`. `Ok(Some)`:
    /// the datagram is complete, rebuilt as a frame with `frame`'s
    /// Ethernet header; `Ok(None)`: held; [`Refused`] (counted in `mib`).
    pub fn input(&mut self, frame: &[u8], now_ms: u64, mib: &IpMib) -> Result<Option<Vec<u8>>, Refused> {
        let (eth, ip) = frame.split_at_checked(ETH_HDR).ok_or(Refused)?;
        let (header, payload) = Ipv4Header::parse(ip, false).map_err(|_| Refused)?;
        match self.r.input(&header, payload, now_ms, mib) {
            Ok(ReassOutcome::Held) => Ok(None),
            Ok(ReassOutcome::Complete(datagram)) => {
                let mut out = Vec::new();
                out.try_reserve_exact(ETH_HDR + datagram.len()).map_err(|_| Refused)?;
                out.extend_from_slice(eth);
                out.extend_from_slice(&datagram);
                Ok(Some(out))
            }
            Err(_) => Err(Refused),
        }
    }

    /// Drops the datagrams that timed out.
    pub fn expire(&mut self, now_ms: u64, mib: &IpMib) {
        if self.r.in_progress() > 0 {
            let _ = self.r.expire(now_ms, mib);
        }
    }

    /// Payload bytes held now.
    pub fn bytes_held(&self) -> usize {
        self.r.bytes_held()
    }
}
