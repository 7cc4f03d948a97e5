//! Ethernet frames built by hand, well-formed and malformed, for injection
//! from the host side of a TAP (see [`crate::net::RawSocket`]).
//!
//! Well-formed builders compute every checksum; the malformed set
//! ([`malformed_frames`]) breaks one thing per frame. Linux's AF_PACKET
//! refuses to send anything shorter than an Ethernet header (14 bytes) on an
//! Ethernet device, so the "truncated Ethernet" frames are 14-byte runts (no
//! payload at all, shorter than the 60-byte minimum) and 802.1Q frames cut
//! inside the tag; nothing shorter can reach the guest through a TAP.

use std::net::Ipv4Addr;

use crate::net::SplitMix64;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// A MAC address.
pub type Mac = [u8; 6];

/// Parses `52:54:00:12:34:56`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut m = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in m.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// `02:00:00:00:00:01` (the form `ip link set ... address` takes).
pub fn format_mac(m: Mac) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The Internet checksum (RFC 1071) of `data`, with `initial` folded in.
pub fn checksum_with(initial: u32, data: &[u8]) -> u16 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    checksum_with(0, data)
}

/// Sum of the IPv4 pseudo header for a transport checksum (not folded).
pub fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    u32::from(u16::from_be_bytes([s[0], s[1]]))
        + u32::from(u16::from_be_bytes([s[2], s[3]]))
        + u32::from(u16::from_be_bytes([d[0], d[1]]))
        + u32::from(u16::from_be_bytes([d[2], d[3]]))
        + u32::from(proto)
        + len as u32
}

/// Ethernet II frame (no FCS).
pub fn eth(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 packet with a 20-byte header (TTL 64, DF) and a correct header
/// checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&0x4000u16.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// ICMP echo request with a correct checksum.
pub fn icmp_echo_request(id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// TCP SYN (MSS option 1460) with a correct checksum.
pub fn tcp_syn(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut t = Vec::with_capacity(24);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[6 << 4, 0x02]); // data offset 6 words, SYN
    t.extend_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
    t.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let c = checksum_with(pseudo_sum(src, dst, PROTO_TCP, t.len()), &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// A TCP segment with a 20-byte header (no options), the given flags and a
/// correct checksum.
#[allow(clippy::too_many_arguments)]
pub fn tcp_segment(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + data.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[5 << 4, flags]);
    t.extend_from_slice(&window.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
    t.extend_from_slice(data);
    let c = checksum_with(pseudo_sum(src, dst, PROTO_TCP, t.len()), &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// A TCP segment parsed out of an Ethernet frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSeen {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub data: Vec<u8>,
}

impl TcpSeen {
    /// Whether all of `flags` are set.
    pub fn has(&self, flags: u8) -> bool {
        self.flags & flags == flags
    }

    /// Sequence space the segment occupies (data, SYN and FIN count one each).
    pub fn seq_len(&self) -> u32 {
        self.data.len() as u32 + u32::from(self.has(TCP_SYN)) + u32::from(self.has(TCP_FIN))
    }
}

/// Parses an IPv4/TCP frame sent by `from` (MAC); `None` for anything else
/// (or a truncated one).
pub fn parse_tcp(frame: &[u8], from: Mac) -> Option<TcpSeen> {
    if frame.len() < 14 + 20 || frame[6..12] != from || frame[12..14] != ETHERTYPE_IPV4.to_be_bytes() {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[0] >> 4 != 4 || ip[9] != PROTO_TCP || ihl < 20 || total < ihl + 20 || ip.len() < total {
        return None;
    }
    let t = &ip[ihl..total];
    let off = usize::from(t[12] >> 4) * 4;
    if off < 20 || t.len() < off {
        return None;
    }
    let be16 = |o: usize| u16::from_be_bytes([t[o], t[o + 1]]);
    let be32 = |o: usize| u32::from_be_bytes([t[o], t[o + 1], t[o + 2], t[o + 3]]);
    Some(TcpSeen {
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        sport: be16(0),
        dport: be16(2),
        seq: be32(4),
        ack: be32(8),
        flags: t[13],
        window: be16(14),
        data: t[off..].to_vec(),
    })
}

/// UDP datagram with a correct checksum.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut c = checksum_with(pseudo_sum(src, dst, PROTO_UDP, len), &u);
    if c == 0 {
        c = 0xffff;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// Addresses of a host→guest conversation on the TAP.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    pub host_mac: Mac,
    pub guest_mac: Mac,
    pub host_ip: Ipv4Addr,
    pub guest_ip: Ipv4Addr,
}

impl Endpoints {
    /// A full ICMP echo request frame from host to guest.
    pub fn ping(&self, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
        let ip = ipv4(self.host_ip, self.guest_ip, PROTO_ICMP, seq, &icmp_echo_request(id, seq, data));
        eth(self.guest_mac, self.host_mac, ETHERTYPE_IPV4, &ip)
    }

    /// A full TCP segment frame from host `sport` to guest `dport` (see
    /// [`tcp_segment`]).
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(&self, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, window: u16, data: &[u8]) -> Vec<u8> {
        let t = tcp_segment(self.host_ip, self.guest_ip, sport, dport, seq, ack, flags, window, data);
        eth(self.guest_mac, self.host_mac, ETHERTYPE_IPV4, &ipv4(self.host_ip, self.guest_ip, PROTO_TCP, sport, &t))
    }

    /// A full TCP SYN frame from host `sport` to guest `dport`.
    pub fn syn(&self, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
        let t = tcp_syn(self.host_ip, self.guest_ip, sport, dport, seq);
        eth(self.guest_mac, self.host_mac, ETHERTYPE_IPV4, &ipv4(self.host_ip, self.guest_ip, PROTO_TCP, sport, &t))
    }

    fn frame(&self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        eth(self.guest_mac, self.host_mac, ethertype, payload)
    }
}

/// ICMP id of the echo requests with a bad IPv4 header checksum.
pub const BAD_IP_CSUM_ICMP_ID: u16 = 0xbad4;
/// ICMP id of the echo requests with a bad ICMP checksum.
pub const BAD_ICMP_CSUM_ICMP_ID: u16 = 0xbadc;
/// First TCP source port of the SYNs with a bad TCP checksum (one port each).
pub const BAD_TCP_CSUM_PORT_BASE: u16 = 41000;

/// One malformed frame and the class it belongs to.
#[derive(Clone, Debug)]
pub struct Malformed {
    pub class: &'static str,
    pub frame: Vec<u8>,
}

/// Classes of [`malformed_frames`] (the oversized ones need the TAP's MTU
/// raised to be sent; see [`oversized_frames`]).
pub const MALFORMED_CLASSES: [&str; 8] = [
    "runt-ethernet",
    "truncated-ipv4",
    "bad-ipv4-checksum",
    "bad-icmp-checksum",
    "truncated-tcp",
    "bad-tcp-checksum",
    "bad-udp-checksum",
    "garbage-ethertype",
];

/// `per_class` frames of every class in [`MALFORMED_CLASSES`] (TCP ones to
/// `tcp_port`), deterministic for a seed. None of them should get an answer
/// from a correct stack; the checksum classes carry markers
/// ([`BAD_IP_CSUM_ICMP_ID`], [`BAD_ICMP_CSUM_ICMP_ID`],
/// [`BAD_TCP_CSUM_PORT_BASE`]) so a capture can prove it.
pub fn malformed_frames(ep: &Endpoints, tcp_port: u16, per_class: usize, seed: u64) -> Vec<Malformed> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    let mut push = |class: &'static str, frame: Vec<u8>| out.push(Malformed { class, frame });
    for i in 0..per_class {
        let i16 = i as u16;

        // Runts: nothing after the Ethernet header, or an 802.1Q tag cut short.
        let f = match i % 4 {
            0 => ep.frame(ETHERTYPE_IPV4, &[]),
            1 => ep.frame(ETHERTYPE_ARP, &[]),
            2 => ep.frame(ETHERTYPE_IPV6, &[]),
            _ => ep.frame(ETHERTYPE_VLAN, &[0x00, 0x05]), // TCI only, inner type missing
        };
        push("runt-ethernet", f);

        // Truncated IPv4 headers, or headers that claim more than is there.
        let good = ipv4(ep.host_ip, ep.guest_ip, PROTO_ICMP, 0x7000 + i16, &icmp_echo_request(0x7000, i16, b"trunc"));
        let f = match i % 4 {
            0 => ep.frame(ETHERTYPE_IPV4, &good[..1 + i % 19]),
            1 => {
                // IHL 15 (60 bytes) with only 20 present.
                let mut p = good[..20].to_vec();
                p[0] = 0x4f;
                let c = checksum(&p);
                p[10..12].copy_from_slice(&c.to_be_bytes());
                ep.frame(ETHERTYPE_IPV4, &p)
            }
            2 => {
                // Total length far beyond the frame.
                let mut p = good.clone();
                p[2..4].copy_from_slice(&1400u16.to_be_bytes());
                p[10..12].copy_from_slice(&[0, 0]);
                let c = checksum(&p[..20]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
                ep.frame(ETHERTYPE_IPV4, &p)
            }
            _ => {
                // IHL below 5.
                let mut p = good.clone();
                p[0] = 0x42;
                ep.frame(ETHERTYPE_IPV4, &p)
            }
        };
        push("truncated-ipv4", f);

        // A valid ping but for the IPv4 header checksum.
        let mut p =
            ipv4(ep.host_ip, ep.guest_ip, PROTO_ICMP, i16, &icmp_echo_request(BAD_IP_CSUM_ICMP_ID, i16, b"bad ip csum"));
        p[10] ^= 0x5a;
        push("bad-ipv4-checksum", ep.frame(ETHERTYPE_IPV4, &p));

        // A valid IPv4 header carrying an echo request with a bad ICMP checksum.
        let mut m = icmp_echo_request(BAD_ICMP_CSUM_ICMP_ID, i16, b"bad icmp csum");
        m[2] ^= 0x33;
        push("bad-icmp-checksum", ep.frame(ETHERTYPE_IPV4, &ipv4(ep.host_ip, ep.guest_ip, PROTO_ICMP, i16, &m)));

        // TCP header cut inside its 20 bytes, or a data offset past the end.
        let t = tcp_syn(ep.host_ip, ep.guest_ip, 42000 + i16, tcp_port, 1000 + i as u32);
        let seg = match i % 2 {
            0 => t[..1 + i % 19].to_vec(),
            _ => {
                let mut t = t.clone();
                t[12] = 15 << 4; // 60-byte header claimed, 24 present
                t
            }
        };
        push("truncated-tcp", ep.frame(ETHERTYPE_IPV4, &ipv4(ep.host_ip, ep.guest_ip, PROTO_TCP, i16, &seg)));

        // A SYN with a bad TCP checksum, each from its own marked port.
        let mut t = tcp_syn(ep.host_ip, ep.guest_ip, BAD_TCP_CSUM_PORT_BASE + i16, tcp_port, 7 + i as u32);
        t[16] ^= 0x0f;
        push("bad-tcp-checksum", ep.frame(ETHERTYPE_IPV4, &ipv4(ep.host_ip, ep.guest_ip, PROTO_TCP, i16, &t)));

        // UDP echo request with a bad checksum.
        let mut u = udp(ep.host_ip, ep.guest_ip, 43000 + i16, 7, b"bad udp csum");
        u[6] ^= 0x11;
        push("bad-udp-checksum", ep.frame(ETHERTYPE_IPV4, &ipv4(ep.host_ip, ep.guest_ip, PROTO_UDP, i16, &u)));

        // Ethertypes nobody speaks, and 802.3 length fields, with random bytes.
        let ethertype = [0x0000, 0x1234, 0xffff, 0x05dc, 0x88b5, 0x0601][i % 6];
        let len = (rng.next_u64() % 1500) as usize;
        let mut junk = vec![0u8; len];
        rng.fill(&mut junk);
        push("garbage-ethertype", ep.frame(ethertype, &junk));
    }
    out
}

/// `count` frames larger than a 1500-byte MTU allows: full-sized IPv4
/// pings of `size` bytes (e.g. 9000; the host TAP's MTU must be at least
/// `size - 14`) and 1515..1600-byte ones.
pub fn oversized_frames(ep: &Endpoints, count: usize, size: usize) -> Vec<Malformed> {
    (0..count)
        .map(|i| {
            let total = if i % 2 == 0 { size } else { 1515 + (i * 7) % 85 };
            let data = vec![0xa5u8; total - 14 - 20 - 8];
            Malformed { class: "oversized", frame: ep.ping(0x0b16, i as u16, &data) }
        })
        .collect()
}

/// What a captured frame from the guest is, as far as the tests care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// ICMP echo reply (id, seq).
    EchoReply(u16, u16),
    /// A TCP segment (source port, destination port, flags).
    Tcp(u16, u16, u8),
    /// A UDP datagram (source port, destination port).
    Udp(u16, u16),
    Other,
}

/// Classifies an IPv4 frame sent by `from` (MAC); `None` if it is not one.
pub fn classify(frame: &[u8], from: Mac) -> Option<Seen> {
    if frame.len() < 14 + 20 || frame[6..12] != from || frame[12..14] != ETHERTYPE_IPV4.to_be_bytes() {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl {
        return Some(Seen::Other);
    }
    let l4 = &ip[ihl..];
    let port = |o: usize| u16::from_be_bytes([l4[o], l4[o + 1]]);
    Some(match ip[9] {
        PROTO_ICMP if l4.len() >= 8 && l4[0] == 0 => Seen::EchoReply(port(4), port(6)),
        PROTO_TCP if l4.len() >= 20 => Seen::Tcp(port(0), port(2), l4[13]),
        PROTO_UDP if l4.len() >= 8 => Seen::Udp(port(0), port(2)),
        _ => Seen::Other,
    })
}

/// TCP flag bits.
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

#[cfg(test)]
mod tests {
    use super::*;

    const EP: Endpoints = Endpoints {
        host_mac: [0x02, 0, 0, 0, 0, 1],
        guest_mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
        host_ip: Ipv4Addr::new(10, 0, 0, 1),
        guest_ip: Ipv4Addr::new(10, 0, 0, 2),
    };

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
        // Odd length pads with zero.
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn builders_verify() {
        let f = EP.ping(1, 2, b"hello");
        assert_eq!(f.len(), 14 + 20 + 8 + 5);
        assert_eq!(checksum(&f[14..34]), 0, "IPv4 header checksum");
        assert_eq!(checksum(&f[34..]), 0, "ICMP checksum");
        let s = EP.syn(40000, 7, 1);
        let tcp = &s[34..];
        assert_eq!(checksum_with(pseudo_sum(EP.host_ip, EP.guest_ip, PROTO_TCP, tcp.len()), tcp), 0);
        let u = udp(EP.host_ip, EP.guest_ip, 1, 7, b"abc");
        assert_eq!(checksum_with(pseudo_sum(EP.host_ip, EP.guest_ip, PROTO_UDP, u.len()), &u), 0);
        assert_eq!(parse_mac("52:54:00:12:34:56"), Some(EP.guest_mac));
        assert_eq!(format_mac(EP.guest_mac), "52:54:00:12:34:56");
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:56:78"), None);
    }

    #[test]
    fn malformed_set() {
        let m = malformed_frames(&EP, 7, 12, 1);
        for class in MALFORMED_CLASSES {
            assert_eq!(m.iter().filter(|f| f.class == class).count(), 12, "{class}");
        }
        for f in &m {
            assert!(f.frame.len() >= 14 && f.frame.len() <= 1514, "{} {}", f.class, f.frame.len());
            assert_eq!(f.frame[..6], EP.guest_mac);
        }
        for f in m.iter().filter(|f| f.class == "bad-ipv4-checksum") {
            assert_ne!(checksum(&f.frame[14..34]), 0);
            assert_eq!(checksum(&f.frame[34..]), 0);
        }
        for f in m.iter().filter(|f| f.class == "bad-tcp-checksum") {
            assert_eq!(checksum(&f.frame[14..34]), 0);
            let tcp = &f.frame[34..];
            assert_ne!(checksum_with(pseudo_sum(EP.host_ip, EP.guest_ip, PROTO_TCP, tcp.len()), tcp), 0);
        }
        assert!(m.iter().filter(|f| f.class == "runt-ethernet").all(|f| f.frame.len() <= 16));
        let o = oversized_frames(&EP, 10, 9000);
        assert_eq!(o.len(), 10);
        assert_eq!(o[0].frame.len(), 9000);
        assert!(o.iter().all(|f| f.frame.len() > 1514));
        // Deterministic.
        assert_eq!(malformed_frames(&EP, 7, 3, 5)[23].frame, malformed_frames(&EP, 7, 3, 5)[23].frame);
    }

    #[test]
    fn classify_replies() {
        // Turn our request into the reply a guest would send.
        let mut r = EP.ping(9, 4, b"x");
        r[0..6].copy_from_slice(&EP.host_mac);
        r[6..12].copy_from_slice(&EP.guest_mac);
        r[34] = 0;
        assert_eq!(classify(&r, EP.guest_mac), Some(Seen::EchoReply(9, 4)));
        assert_eq!(classify(&r, EP.host_mac), None);
        let mut s = EP.syn(5, 7, 1);
        s[6..12].copy_from_slice(&EP.guest_mac);
        assert_eq!(classify(&s, EP.guest_mac), Some(Seen::Tcp(5, 7, TCP_SYN)));
        assert_eq!(classify(&s[..20], EP.guest_mac), None);
    }

    #[test]
    fn tcp_segments_round_trip() {
        let f = EP.tcp(61000, 7, 0x0102_0304, 0xa0b0_c0d0, TCP_PSH | TCP_ACK, 512, b"abc");
        let tcp = &f[34..];
        assert_eq!(checksum_with(pseudo_sum(EP.host_ip, EP.guest_ip, PROTO_TCP, tcp.len()), tcp), 0);
        let t = parse_tcp(&f, EP.host_mac).unwrap();
        assert_eq!((t.sport, t.dport, t.seq, t.ack, t.window), (61000, 7, 0x0102_0304, 0xa0b0_c0d0, 512));
        assert!(t.has(TCP_ACK | TCP_PSH) && !t.has(TCP_FIN));
        assert_eq!((t.data.as_slice(), t.seq_len()), (&b"abc"[..], 3));
        assert_eq!(parse_tcp(&f, EP.guest_mac), None, "wrong sender");
        assert_eq!(parse_tcp(&f[..40], EP.host_mac), None, "truncated");
        assert_eq!(parse_tcp(&EP.ping(1, 1, b""), EP.host_mac), None, "not TCP");
        let fin = parse_tcp(&EP.tcp(1, 2, 3, 4, TCP_FIN | TCP_ACK, 0, b""), EP.host_mac).unwrap();
        assert_eq!(fin.seq_len(), 1);
    }
}
