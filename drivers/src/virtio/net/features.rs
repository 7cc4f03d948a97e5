//! virtio-net feature bits (virtio 1.x, 5.1.3) and the negotiation policy:
//! take what we use when offered, drop what the spec's dependencies (or
//! our receive design) forbid.

use crate::error::Error;
use crate::virtio::features::{RING_EVENT_IDX, VERSION_1};

pub const CSUM: u64 = 1 << 0;
pub const GUEST_CSUM: u64 = 1 << 1;
pub const CTRL_GUEST_OFFLOADS: u64 = 1 << 2;
pub const MTU: u64 = 1 << 3;
pub const MAC: u64 = 1 << 5;
pub const GUEST_TSO4: u64 = 1 << 7;
pub const GUEST_TSO6: u64 = 1 << 8;
pub const GUEST_ECN: u64 = 1 << 9;
pub const GUEST_UFO: u64 = 1 << 10;
pub const HOST_TSO4: u64 = 1 << 11;
pub const HOST_TSO6: u64 = 1 << 12;
pub const HOST_ECN: u64 = 1 << 13;
pub const HOST_UFO: u64 = 1 << 14;
pub const MRG_RXBUF: u64 = 1 << 15;
pub const STATUS: u64 = 1 << 16;
pub const CTRL_VQ: u64 = 1 << 17;
pub const CTRL_RX: u64 = 1 << 18;
pub const CTRL_VLAN: u64 = 1 << 19;
pub const GUEST_ANNOUNCE: u64 = 1 << 21;
pub const MQ: u64 = 1 << 22;
pub const CTRL_MAC_ADDR: u64 = 1 << 23;
pub const SPEED_DUPLEX: u64 = 1 << 63;

/// Everything the driver can use.
pub const WANTED: u64 = MAC
    | STATUS
    | MQ
    | CTRL_VQ
    | CTRL_RX
    | CTRL_MAC_ADDR
    | CSUM
    | GUEST_CSUM
    | HOST_TSO4
    | HOST_TSO6
    | GUEST_TSO4
    | GUEST_TSO6
    | MRG_RXBUF
    | SPEED_DUPLEX
    | RING_EVENT_IDX
    | VERSION_1;

/// The features to accept from `offered`.
///
/// * `VERSION_1` is required (no legacy interface).
/// * `CTRL_RX`, `MQ`, `CTRL_MAC_ADDR` need `CTRL_VQ`.
/// * `HOST_TSO4/6` need `CSUM`; `GUEST_TSO4/6` need `GUEST_CSUM`.
/// * `GUEST_TSO4/6` are taken only with `MRG_RXBUF`: receive buffers are
///   2 KiB pool buffers, and only mergeable buffers let a 64 KiB receive
///   span them (the alternative, 64 KiB "big" buffers, is not supported).
pub fn negotiate(offered: u64) -> Result<u64, Error> {
    if offered & VERSION_1 == 0 {
        return Err(Error::NotModern);
    }
    let mut f = offered & WANTED;
    if f & CTRL_VQ == 0 {
        f &= !(CTRL_RX | MQ | CTRL_MAC_ADDR);
    }
    if f & CSUM == 0 {
        f &= !(HOST_TSO4 | HOST_TSO6);
    }
    if f & GUEST_CSUM == 0 || f & MRG_RXBUF == 0 {
        f &= !(GUEST_TSO4 | GUEST_TSO6);
    }
    Ok(f)
}

/// Names of the negotiated bits (for a boot log line).
pub fn names(f: u64) -> impl Iterator<Item = &'static str> {
    const NAMES: &[(u64, &str)] = &[
        (CSUM, "CSUM"),
        (GUEST_CSUM, "GUEST_CSUM"),
        (MAC, "MAC"),
        (GUEST_TSO4, "GUEST_TSO4"),
        (GUEST_TSO6, "GUEST_TSO6"),
        (HOST_TSO4, "HOST_TSO4"),
        (HOST_TSO6, "HOST_TSO6"),
        (MRG_RXBUF, "MRG_RXBUF"),
        (STATUS, "STATUS"),
        (CTRL_VQ, "CTRL_VQ"),
        (CTRL_RX, "CTRL_RX"),
        (MQ, "MQ"),
        (CTRL_MAC_ADDR, "CTRL_MAC_ADDR"),
        (SPEED_DUPLEX, "SPEED_DUPLEX"),
        (RING_EVENT_IDX, "EVENT_IDX"),
        (VERSION_1, "VERSION_1"),
    ];
    NAMES.iter().filter(move |(b, _)| f & b != 0).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_version_1() {
        assert_eq!(negotiate(WANTED & !VERSION_1), Err(Error::NotModern));
    }

    #[test]
    fn takes_only_wanted_bits() {
        let all = u64::MAX;
        let f = negotiate(all).unwrap();
        assert_eq!(f, WANTED);
        assert_eq!(f & (GUEST_UFO | HOST_UFO | CTRL_VLAN | crate::virtio::features::RING_PACKED), 0);
    }

    #[test]
    fn dependencies() {
        let f = negotiate(WANTED & !CTRL_VQ).unwrap();
        assert_eq!(f & (CTRL_RX | MQ | CTRL_MAC_ADDR), 0);
        let f = negotiate(WANTED & !CSUM).unwrap();
        assert_eq!(f & (HOST_TSO4 | HOST_TSO6), 0);
        assert_ne!(f & GUEST_TSO4, 0);
        let f = negotiate(WANTED & !GUEST_CSUM).unwrap();
        assert_eq!(f & (GUEST_TSO4 | GUEST_TSO6), 0);
        let f = negotiate(WANTED & !MRG_RXBUF).unwrap();
        assert_eq!(f & (GUEST_TSO4 | GUEST_TSO6), 0);
        assert_ne!(f & GUEST_CSUM, 0);
        let f = negotiate(VERSION_1 | MAC).unwrap();
        assert_eq!(f, VERSION_1 | MAC);
        assert_eq!(names(f).collect::<alloc::vec::Vec<_>>(), ["MAC", "VERSION_1"]);
    }
}
