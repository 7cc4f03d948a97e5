//! Validation of a received frame before smoltcp sees it. smoltcp drops
//! malformed frames silently; this check decides first, so every drop
//! lands in a counter ([`Drop`] names which), and verifies the checksums
//! smoltcp is told to skip (see [`super::device`]).
//!
//! Checked: Ethernet length, destination MAC, EtherType (IPv4 and ARP
//! pass), ARP fields, IPv4 version/lengths/header checksum, impossible
//! source addresses (multicast, broadcast, class E, `0.0.0.0` outside
//! UDP), and for TCP/UDP/ICMP the header lengths and checksums. A fragment
//! passes on its IPv4 header alone, marked [`Info::fragment`]: its
//! transport header and checksum are checked once the datagram is whole
//! ([`super::reass`]). Packets the NIC marked `Cksum::Verified` skip the
//! checksum computations. Other IP protocols pass (smoltcp answers them
//! with ICMP protocol unreachable).

use core::net::Ipv4Addr;

use smoltcp::wire::{
    ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv4Packet, IpAddress, IpProtocol,
    Ipv4Packet, TcpPacket, UdpPacket,
};

/// Why a frame is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Truncated or inconsistent headers, impossible addresses.
    Malformed,
    /// A checksum does not verify.
    BadCksum,
    /// Longer than the link's frame size.
    Oversize,
    /// Neither IPv4 nor ARP.
    UnknownProto,
    /// Unicast to another MAC address.
    NotMine,
    /// An IPv4 fragment reassembly refused (see [`super::reass`]).
    Fragment,
}

/// A TCP SYN (without ACK), the start of a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syn {
    /// Source address.
    pub src: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dst_port: u16,
}

/// What the check found in a frame that passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Info {
    /// Set for a TCP SYN (services count refusals with it).
    pub syn: Option<Syn>,
    /// An IPv4 fragment, to reassemble before anything else.
    pub fragment: bool,
    /// The IPv4 source address (the instance checks it against its
    /// subnets' broadcast addresses, which this check does not know).
    pub src: Option<Ipv4Addr>,
}

/// Checks `frame` for an interface with MAC `mac` and frames of at most
/// `frame_max` bytes. `verified`: the NIC verified the checksums.
pub fn check(frame: &[u8], verified: bool, frame_max: usize, mac: EthernetAddress) -> Result<Info, Drop> {
    if frame.len() > frame_max {
        return Err(Drop::Oversize);
    }
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Drop::Malformed)?;
    let dst = eth.dst_addr();
    if dst.is_unicast() && dst != mac {
        return Err(Drop::NotMine);
    }
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            let arp = ArpPacket::new_checked(eth.payload()).map_err(|_| Drop::Malformed)?;
            ArpRepr::parse(&arp).map_err(|_| Drop::Malformed)?;
            Ok(Info::default())
        }
        EthernetProtocol::Ipv4 => check_ipv4(eth.payload(), verified),
        _ => Err(Drop::UnknownProto),
    }
}

fn check_ipv4(bytes: &[u8], verified: bool) -> Result<Info, Drop> {
    let ip = Ipv4Packet::new_checked(bytes).map_err(|_| Drop::Malformed)?;
    if ip.version() != 4 || ip.header_len() < 20 {
        return Err(Drop::Malformed);
    }
    if !verified && !ip.verify_checksum() {
        return Err(Drop::BadCksum);
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let proto = ip.next_header();
    let bad_src = src.is_multicast()
        || src.is_broadcast()
        || src.octets()[0] >= 240
        || (src.is_unspecified() && proto != IpProtocol::Udp);
    if bad_src || dst.is_unspecified() {
        return Err(Drop::Malformed);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Ok(Info { syn: None, fragment: true, src: Some(src) });
    }
    let payload = ip.payload();
    let (s, d) = (IpAddress::Ipv4(src), IpAddress::Ipv4(dst));
    let mut info = Info { src: Some(src), ..Info::default() };
    match proto {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(payload).map_err(|_| Drop::Malformed)?;
            if tcp.header_len() < 20 || tcp.src_port() == 0 || tcp.dst_port() == 0 {
                return Err(Drop::Malformed);
            }
            if !verified && !tcp.verify_checksum(&s, &d) {
                return Err(Drop::BadCksum);
            }
            if tcp.syn() && !tcp.ack() && !tcp.rst() {
                info.syn = Some(Syn { src, src_port: tcp.src_port(), dst, dst_port: tcp.dst_port() });
            }
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(payload).map_err(|_| Drop::Malformed)?;
            if udp.dst_port() == 0 {
                return Err(Drop::Malformed);
            }
            if !verified && !udp.verify_checksum(&s, &d) {
                return Err(Drop::BadCksum);
            }
        }
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(payload).map_err(|_| Drop::Malformed)?;
            if !verified && !icmp.verify_checksum() {
                return Err(Drop::BadCksum);
            }
        }
        _ => {}
    }
    Ok(info)
}
