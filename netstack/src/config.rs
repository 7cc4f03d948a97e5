//! Configuration values: IPv4 prefixes ([`Ipv4Net`]), the kernel argument
//! `ip=ADDR/PREFIX[,gw=ADDR]` ([`IpArg`]), address checks, and the tunables
//! of a stack instance ([`InstanceConfig`], [`ServicesConfig`]).

use core::fmt;
use core::net::Ipv4Addr;

use crate::stack::NetError;

/// An IPv4 address with a prefix length (`10.0.0.2/24`). The address keeps
/// its host bits; [`Ipv4Net::network`] clears them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// `addr/prefix`, or `None` if `prefix > 32`.
    pub const fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Net> {
        if prefix > 32 { None } else { Some(Ipv4Net { addr, prefix }) }
    }

    /// The default route's destination, `0.0.0.0/0`.
    pub const DEFAULT: Ipv4Net = Ipv4Net { addr: Ipv4Addr::UNSPECIFIED, prefix: 0 };

    /// The address as given.
    pub const fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub const fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask as a host-order integer.
    pub const fn mask_bits(&self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix as u32) }
    }

    /// The netmask (`255.255.255.0` for /24).
    pub const fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.mask_bits())
    }

    /// The network address (host bits cleared).
    pub const fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.addr.to_bits() & self.mask_bits())
    }

    /// The same prefix with the host bits cleared.
    pub const fn trunc(&self) -> Ipv4Net {
        Ipv4Net { addr: self.network(), prefix: self.prefix }
    }

    /// The subnet's broadcast address.
    pub const fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.addr.to_bits() | !self.mask_bits())
    }

    /// Whether `a` lies in this prefix.
    pub const fn contains(&self, a: Ipv4Addr) -> bool {
        (a.to_bits() & self.mask_bits()) == (self.addr.to_bits() & self.mask_bits())
    }

    /// Whether this is the default route's destination.
    pub const fn is_default(&self) -> bool {
        self.prefix == 0
    }

    /// Parses `ADDR/PREFIX`, or `ADDR` alone with `default_prefix`'s answer
    /// for it (e.g. [`classful_prefix`]).
    pub fn parse_with(s: &str, default_prefix: impl Fn(Ipv4Addr) -> u8) -> Option<Ipv4Net> {
        match s.split_once('/') {
            Some((a, p)) => Ipv4Net::new(parse_addr(a)?, parse_prefix(p)?),
            None => {
                let a = parse_addr(s)?;
                Ipv4Net::new(a, default_prefix(a))
            }
        }
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parses a dotted-quad IPv4 address (four decimal octets, nothing else).
pub fn parse_addr(s: &str) -> Option<Ipv4Addr> {
    s.parse::<Ipv4Addr>().ok()
}

/// Parses a prefix length `0..=32` (decimal digits only).
pub fn parse_prefix(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u8>().ok().filter(|p| *p <= 32)
}

/// The prefix length of a contiguous netmask (`255.255.0.0` → 16).
pub fn prefix_from_mask(mask: Ipv4Addr) -> Option<u8> {
    let m = mask.to_bits();
    let ones = m.leading_ones();
    if m.checked_shl(ones).unwrap_or(0) == 0 { Some(ones as u8) } else { None }
}

/// The historical class mask of an address (A: /8, B: /16, C: /24), used
/// when an address comes without a prefix, as illumos does without
/// `/etc/netmasks` entries.
pub fn classful_prefix(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// Checks that `net` can be an interface address: a unicast address that is
/// neither the network nor the broadcast address of its subnet (for
/// prefixes up to /30), not loopback, and a prefix of at least 1.
pub fn check_host_addr(net: Ipv4Net) -> Result<(), NetError> {
    let a = net.addr();
    let bad = a.is_unspecified()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_loopback()
        || a.octets()[0] >= 240
        || net.prefix() == 0
        || (net.prefix() <= 30 && (a == net.network() || a == net.broadcast()));
    if bad { Err(NetError::InvalidAddress) } else { Ok(()) }
}

/// Whether `a` can be a gateway or a destination on a link at all: not
/// 0/8 ("this network", RFC 1122 3.2.1.3(a)), not 127/8 (loopback never
/// leaves the host, 3.2.1.3(g)), not multicast, broadcast or class E.
pub fn is_unicast(a: Ipv4Addr) -> bool {
    !(a.octets()[0] == 0 || a.is_loopback() || a.is_multicast() || a.is_broadcast() || a.octets()[0] >= 240)
}

/// The value of the kernel argument `ip=ADDR/PREFIX[,gw=ADDR]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpArg {
    /// The interface address and its prefix.
    pub addr: Ipv4Net,
    /// The default gateway, on the address's subnet.
    pub gateway: Option<Ipv4Addr>,
}

/// Why an `ip=` value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpArgError {
    /// No address given.
    Empty,
    /// The address or prefix does not parse, or is not a host address.
    BadAddress,
    /// The gateway does not parse or is not unicast.
    BadGateway,
    /// The gateway is not on the address's subnet.
    GatewayOffLink,
    /// An item other than `gw=` follows the address, or `gw=` repeats.
    UnknownItem,
}

impl fmt::Display for IpArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpArgError::Empty => "no address given",
            IpArgError::BadAddress => "bad address (want ADDR/PREFIX)",
            IpArgError::BadGateway => "bad gateway address",
            IpArgError::GatewayOffLink => "gateway is not on the address's subnet",
            IpArgError::UnknownItem => "unknown item (want ADDR/PREFIX[,gw=ADDR])",
        })
    }
}

impl IpArg {
    /// Parses `ADDR/PREFIX[,gw=ADDR]` (the prefix defaults to the class
    /// mask when left out).
    pub fn parse(s: &str) -> Result<IpArg, IpArgError> {
        let mut items = s.split(',');
        let first = items.next().unwrap_or("").trim();
        if first.is_empty() {
            return Err(IpArgError::Empty);
        }
        let addr = Ipv4Net::parse_with(first, classful_prefix).ok_or(IpArgError::BadAddress)?;
        check_host_addr(addr).map_err(|_| IpArgError::BadAddress)?;
        let mut gateway = None;
        for item in items {
            let item = item.trim();
            match item.strip_prefix("gw=") {
                Some(g) if gateway.is_none() => {
                    let g = parse_addr(g).filter(|g| is_unicast(*g)).ok_or(IpArgError::BadGateway)?;
                    if !addr.contains(g) || g == addr.addr() {
                        return Err(IpArgError::GatewayOffLink);
                    }
                    gateway = Some(g);
                }
                _ => return Err(IpArgError::UnknownItem),
            }
        }
        Ok(IpArg { addr, gateway })
    }
}

/// The largest TCP receive buffer an instance uses: 65535 bytes, the
/// largest window that needs no window scaling. smoltcp 0.12 panicked
/// ("attempt to subtract sequence numbers with underflow") when a scaled
/// window shrank by its rounding (an odd amount queued) and the peer
/// filled the window it was offered just before; without scaling the
/// window's right edge never moves back. smoltcp 0.13 rejects bytes
/// outside the receive window (its change #1079), but the bound stays
/// until a test shows scaled windows safe under a hostile peer.
pub const MAX_TCP_BUFFER: usize = 65535;

/// Tunables of the in-kernel services of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicesConfig {
    /// TCP echo on port 7.
    pub tcp_echo: bool,
    /// TCP discard on port 9.
    pub tcp_discard: bool,
    /// TCP chargen on port 19.
    pub tcp_chargen: bool,
    /// UDP echo on port 7.
    pub udp_echo: bool,
    /// Sockets per TCP service, the spare listener included: at most this
    /// many connections at once; further SYNs are refused with RST.
    pub max_conns: usize,
    /// Receive and send buffer of each TCP connection, bytes (at most
    /// [`MAX_TCP_BUFFER`]).
    pub tcp_buffer: usize,
    /// UDP echo receive and send buffers, bytes each.
    pub udp_buffer: usize,
    /// UDP echo datagrams queued per direction.
    pub udp_packets: usize,
}

impl ServicesConfig {
    /// No services at all (a client-only instance).
    pub const fn none() -> ServicesConfig {
        ServicesConfig {
            tcp_echo: false,
            tcp_discard: false,
            tcp_chargen: false,
            udp_echo: false,
            ..ServicesConfig::DEFAULT
        }
    }

    /// All four services, 32 connections each, 64 KiB buffers (TCP: one
    /// byte less, [`MAX_TCP_BUFFER`]).
    pub const DEFAULT: ServicesConfig = ServicesConfig {
        tcp_echo: true,
        tcp_discard: true,
        tcp_chargen: true,
        udp_echo: true,
        max_conns: 32,
        tcp_buffer: MAX_TCP_BUFFER,
        udp_buffer: 64 * 1024,
        udp_packets: 256,
    };
}

impl Default for ServicesConfig {
    fn default() -> Self {
        ServicesConfig::DEFAULT
    }
}

/// Tunables of one stack instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Seed for TCP sequence numbers, ports and ICMP identifiers; the
    /// kernel should pass something different on every boot.
    pub random_seed: u64,
    /// Packets the Rx queue holds between two polls; more are dropped
    /// (counted as `rxQueueDrops`).
    pub rx_queue_len: usize,
    /// Packets one poll takes from the Rx queue at most.
    pub rx_budget: usize,
    /// Transmit rounds one poll makes at most (each round lets every
    /// socket send one packet).
    pub tx_rounds: usize,
    /// The services.
    pub services: ServicesConfig,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        InstanceConfig {
            random_seed: 0x5eed_a4ba_1e57,
            rx_queue_len: 1024,
            rx_budget: 256,
            tx_rounds: 64,
            services: ServicesConfig::DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        parse_addr(s).unwrap()
    }

    #[test]
    fn net_math() {
        let n = Ipv4Net::new(a("10.0.0.2"), 24).unwrap();
        assert_eq!(n.network(), a("10.0.0.0"));
        assert_eq!(n.broadcast(), a("10.0.0.255"));
        assert_eq!(n.netmask(), a("255.255.255.0"));
        assert!(n.contains(a("10.0.0.77")));
        assert!(!n.contains(a("10.0.1.1")));
        assert!(Ipv4Net::DEFAULT.contains(a("1.2.3.4")));
        assert_eq!(Ipv4Net::new(a("1.2.3.4"), 33), None);
        assert_eq!(prefix_from_mask(a("255.255.0.0")), Some(16));
        assert_eq!(prefix_from_mask(a("255.255.255.255")), Some(32));
        assert_eq!(prefix_from_mask(a("0.0.0.0")), Some(0));
        assert_eq!(prefix_from_mask(a("255.0.255.0")), None);
        assert_eq!(alloc::format!("{n}"), "10.0.0.2/24");
    }

    #[test]
    fn ip_arg() {
        let v = IpArg::parse("10.0.0.2/24,gw=10.0.0.1").unwrap();
        assert_eq!(v.addr, Ipv4Net::new(a("10.0.0.2"), 24).unwrap());
        assert_eq!(v.gateway, Some(a("10.0.0.1")));
        assert_eq!(IpArg::parse("192.168.1.9").unwrap().addr.prefix(), 24);
        assert_eq!(IpArg::parse(""), Err(IpArgError::Empty));
        assert_eq!(IpArg::parse("10.0.0.2/33"), Err(IpArgError::BadAddress));
        assert_eq!(IpArg::parse("10.0.0.0/24"), Err(IpArgError::BadAddress));
        assert_eq!(IpArg::parse("224.0.0.1/4"), Err(IpArgError::BadAddress));
        assert_eq!(IpArg::parse("10.0.0.2/24,gw=10.0.1.1"), Err(IpArgError::GatewayOffLink));
        assert_eq!(IpArg::parse("10.0.0.2/24,gw=x"), Err(IpArgError::BadGateway));
        assert_eq!(IpArg::parse("10.0.0.2/24,mtu=9000"), Err(IpArgError::UnknownItem));
        assert_eq!(IpArg::parse("10.0.0.2/24,gw=10.0.0.1,gw=10.0.0.3"), Err(IpArgError::UnknownItem));
        assert_eq!(IpArg::parse("10.0.0.256/24"), Err(IpArgError::BadAddress));
        assert_eq!(IpArg::parse("10.0.0.2/+4"), Err(IpArgError::BadAddress));
    }
}
