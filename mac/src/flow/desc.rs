//! The flow descriptor (illumos `flow_desc_t`): which packets a flow
//! takes, as `flowadm add-flow -a` gives it — `local_ip=addr[/prefix]`,
//! `remote_ip=addr[/prefix]` (IPv4 or IPv6), `transport=tcp|udp|sctp|
//! icmp|icmpv6`, `local_port=N`, `remote_port=N`, `dsfield=0xVV[:0xMM]` —
//! with the rules of `shared/ADMIN.md`:
//!
//! * each attribute at most once;
//! * ports only with `transport` tcp, udp or sctp; icmp/icmpv6 take none;
//! * only the combinations of [`COMBINATIONS`];
//! * `local_ip` and `remote_ip` of one flow in the same address family.
//!
//! The attributes present form the flow's [`FlowMask`]; every flow of one
//! link has the same mask (see [`super::table`]).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

/// A layer-4 protocol a flow may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmpv6,
}

impl Transport {
    /// Parses a `transport=` value, without regard to case (the manual
    /// writes `transport=TCP`).
    pub fn parse(s: &str) -> Option<Transport> {
        [Transport::Tcp, Transport::Udp, Transport::Sctp, Transport::Icmp, Transport::Icmpv6]
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }

    /// The name `show-flow` prints in `PROTO`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Sctp => "sctp",
            Transport::Icmp => "icmp",
            Transport::Icmpv6 => "icmpv6",
        }
    }

    /// The IP protocol number.
    pub fn proto(self) -> u8 {
        match self {
            Transport::Tcp => 6,
            Transport::Udp => 17,
            Transport::Sctp => 132,
            Transport::Icmp => 1,
            Transport::Icmpv6 => 58,
        }
    }

    /// Whether the protocol has ports (tcp, udp, sctp).
    pub fn has_ports(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Udp | Transport::Sctp)
    }
}

/// An address with a prefix length: IPv4 addresses are kept in the first
/// four bytes of `addr`, the bits past the prefix cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    pub v6: bool,
    pub addr: [u8; 16],
    /// 1..=32 (IPv4) or 1..=128 (IPv6).
    pub len: u8,
}

/// `addr` with the bits past `len` cleared (IPv4: bytes 4.. are zero).
pub fn mask_addr(addr: &[u8; 16], len: u8) -> [u8; 16] {
    let mut out = [0u8; 16];
    let full = usize::from(len / 8).min(16);
    out[..full].copy_from_slice(&addr[..full]);
    let rem = len % 8;
    if rem != 0 && full < 16 {
        out[full] = addr[full] & (0xffu8 << (8 - rem));
    }
    out
}

impl IpPrefix {
    /// Parses `addr[/prefix]`: an IPv4 or IPv6 address, the prefix
    /// defaulting to /32 or /128.
    pub fn parse(s: &str) -> Result<IpPrefix, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let (v6, addr) = if let Ok(v4) = a.parse::<Ipv4Addr>() {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            (false, b)
        } else if let Ok(v6) = a.parse::<Ipv6Addr>() {
            (true, v6.octets())
        } else {
            return Err(alloc::format!("'{a}' is not an IPv4 or IPv6 address"));
        };
        let max: u8 = if v6 { 128 } else { 32 };
        let len = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if (1..=max).contains(&n) && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(alloc::format!("invalid prefix length '{p}' (1-{max})")),
            },
        };
        Ok(IpPrefix { v6, addr: mask_addr(&addr, len), len })
    }

    /// Whether `ip` (same layout) of family `v6` is inside.
    #[inline]
    pub fn contains(&self, v6: bool, ip: &[u8; 16]) -> bool {
        self.v6 == v6 && mask_addr(ip, self.len) == self.addr
    }

    /// The longest prefix of the family.
    pub fn max_len(&self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }
}

impl fmt::Display for IpPrefix {
    /// `a.b.c.d` / `fe80::1` for a host, `a.b.c.0/24` for a network.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v6 {
            write!(f, "{}", Ipv6Addr::from(self.addr))?;
        } else {
            write!(f, "{}", Ipv4Addr::new(self.addr[0], self.addr[1], self.addr[2], self.addr[3]))?;
        }
        if self.len != self.max_len() {
            write!(f, "/{}", self.len)?;
        }
        Ok(())
    }
}

/// Which attributes a flow has (illumos `flow_mask_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowMask(pub u8);

impl FlowMask {
    pub const LOCAL_IP: FlowMask = FlowMask(1);
    pub const REMOTE_IP: FlowMask = FlowMask(2);
    pub const TRANSPORT: FlowMask = FlowMask(4);
    pub const LOCAL_PORT: FlowMask = FlowMask(8);
    pub const REMOTE_PORT: FlowMask = FlowMask(16);
    pub const DSFIELD: FlowMask = FlowMask(32);

    /// Whether every attribute of `other` is in it.
    pub const fn has(self, other: FlowMask) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    pub const fn with(self, other: FlowMask) -> FlowMask {
        FlowMask(self.0 | other.0)
    }

    /// Whether no attribute is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The combination as the manual writes it (`transport={tcp|udp|sctp},local_port=port`).
    pub fn describe(self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        let ports = self.has(FlowMask::LOCAL_PORT) || self.has(FlowMask::REMOTE_PORT);
        if self.has(FlowMask::TRANSPORT) {
            parts.push(if ports { "transport={tcp|udp|sctp}" } else { "transport={tcp|udp|sctp|icmp|icmpv6}" });
        }
        if self.has(FlowMask::LOCAL_IP) {
            parts.push("local_ip=address[/prefix_len]");
        }
        if self.has(FlowMask::LOCAL_PORT) {
            parts.push("local_port=port");
        }
        if self.has(FlowMask::REMOTE_IP) {
            parts.push("remote_ip=address[/prefix_len]");
        }
        if self.has(FlowMask::REMOTE_PORT) {
            parts.push("remote_port=port");
        }
        if self.has(FlowMask::DSFIELD) {
            parts.push("dsfield=val[:dsfield_mask]");
        }
        parts.join(",")
    }
}

const T: u8 = FlowMask::TRANSPORT.0;
const LI: u8 = FlowMask::LOCAL_IP.0;
const RI: u8 = FlowMask::REMOTE_IP.0;
const LP: u8 = FlowMask::LOCAL_PORT.0;
const RP: u8 = FlowMask::REMOTE_PORT.0;

/// The attribute combinations a flow may use (`shared/ADMIN.md`).
pub const COMBINATIONS: [FlowMask; 10] = [
    FlowMask::LOCAL_IP,
    FlowMask::REMOTE_IP,
    FlowMask::TRANSPORT,
    FlowMask(T | LP),
    FlowMask(T | RP),
    FlowMask(T | LI | LP),
    FlowMask(T | LI | LP | RI),
    FlowMask(T | LI | LP | RP),
    FlowMask(T | LI | LP | RI | RP),
    FlowMask::DSFIELD,
];

/// A flow's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowDesc {
    pub local_ip: Option<IpPrefix>,
    pub remote_ip: Option<IpPrefix>,
    pub transport: Option<Transport>,
    pub local_port: Option<u16>,
    pub remote_port: Option<u16>,
    /// (value, mask) as given. A packet matches when its DS field and
    /// the value agree on the bits the mask has set: a 0 bit in the mask
    /// means the bit is ignored (the manual's example 7 gives
    /// `0x2e:0xfc`, a value with a bit outside its mask).
    pub dsfield: Option<(u8, u8)>,
}

/// Why an attribute list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrError {
    /// No `-a` list, or an empty one.
    Empty,
    /// A token without `=` or with an empty name.
    Syntax(String),
    /// An attribute name flowadm does not know.
    Unknown(String),
    /// The same attribute twice.
    Duplicate(&'static str),
    /// A bad value: attribute, value, why.
    BadValue(&'static str, String, String),
    /// A port without a transport that has ports.
    PortNeedsTransport(&'static str),
    /// icmp/icmpv6 with a port: (transport, port attribute).
    NoPortFor(Transport, &'static str),
    /// local_ip and remote_ip of different families.
    MixedFamilies,
    /// A combination not in [`COMBINATIONS`].
    Combination(FlowMask),
}

impl fmt::Display for AttrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrError::Empty => f.write_str("no flow attributes given (-a attr=value[,...])"),
            AttrError::Syntax(t) => write!(f, "invalid flow attribute '{t}': expected attr=value"),
            AttrError::Unknown(n) => write!(
                f,
                "unknown flow attribute '{n}' (local_ip, remote_ip, transport, local_port, remote_port, dsfield)"
            ),
            AttrError::Duplicate(n) => write!(f, "flow attribute '{n}' is specified more than once"),
            AttrError::BadValue(n, v, why) => write!(f, "invalid value '{v}' for flow attribute '{n}': {why}"),
            AttrError::PortNeedsTransport(p) => write!(f, "'{p}' requires transport=tcp, udp or sctp"),
            AttrError::NoPortFor(t, p) => write!(f, "transport={} takes no port ('{p}' given)", t.name()),
            AttrError::MixedFamilies => f.write_str("local_ip and remote_ip must both be IPv4 or both IPv6"),
            AttrError::Combination(m) => write!(
                f,
                "unsupported combination of flow attributes '{}' (supported: local_ip; remote_ip; transport; \
                 transport,local_port; transport,remote_port; transport,local_ip,local_port[,remote_ip][,remote_port]; dsfield)",
                m.describe()
            ),
        }
    }
}

fn parse_port(name: &'static str, v: &str) -> Result<u16, AttrError> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(AttrError::BadValue(name, String::from(v), String::from("a port is 1-65535"))),
    }
}

fn parse_hex_byte(s: &str) -> Option<u8> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.is_empty() || h.len() > 2 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(h, 16).ok()
}

/// Parses `dsfield=0xVV[:0xMM]`.
fn parse_dsfield(v: &str) -> Result<(u8, u8), AttrError> {
    let bad = |why: &str| AttrError::BadValue("dsfield", String::from(v), String::from(why));
    let (val, mask) = match v.split_once(':') {
        Some((a, m)) => (a, Some(m)),
        None => (v, None),
    };
    let value = parse_hex_byte(val).ok_or_else(|| bad("expected 0xVV[:0xMM], two hex digits each"))?;
    let mask = match mask {
        None => 0xff,
        Some(m) => match parse_hex_byte(m) {
            Some(0) => return Err(bad("the mask must be 0x01-0xff")),
            Some(m) => m,
            None => return Err(bad("expected 0xVV[:0xMM], two hex digits each")),
        },
    };
    Ok((value, mask))
}

const NAMES: [&str; 6] = ["local_ip", "remote_ip", "transport", "local_port", "remote_port", "dsfield"];

impl FlowDesc {
    /// Parses the `-a` lists (each `attr=value[,...]`), applying every
    /// rule; attribute names are matched without regard to case.
    pub fn parse(lists: &[&str]) -> Result<FlowDesc, AttrError> {
        let mut d = FlowDesc::default();
        let mut seen = FlowMask::default();
        let mut any = false;
        for list in lists {
            for token in list.split(',') {
                any = true;
                let (name, value) = match token.split_once('=') {
                    Some((n, v)) if !n.is_empty() => (n, v),
                    _ => return Err(AttrError::Syntax(String::from(token))),
                };
                let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) else {
                    return Err(AttrError::Unknown(String::from(name)));
                };
                let key = NAMES[i];
                let bit = FlowMask(1 << i);
                if seen.has(bit) {
                    return Err(AttrError::Duplicate(key));
                }
                seen = seen.with(bit);
                let bad = |why: String| AttrError::BadValue(key, String::from(value), why);
                match i {
                    0 => d.local_ip = Some(IpPrefix::parse(value).map_err(bad)?),
                    1 => d.remote_ip = Some(IpPrefix::parse(value).map_err(bad)?),
                    2 => {
                        d.transport = Some(
                            Transport::parse(value).ok_or_else(|| bad(String::from("expected tcp, udp, sctp, icmp or icmpv6")))?,
                        )
                    }
                    3 => d.local_port = Some(parse_port(key, value)?),
                    4 => d.remote_port = Some(parse_port(key, value)?),
                    _ => d.dsfield = Some(parse_dsfield(value)?),
                }
            }
        }
        if !any {
            return Err(AttrError::Empty);
        }
        d.check()?;
        Ok(d)
    }

    /// The rules between attributes (see the module doc).
    pub fn check(&self) -> Result<(), AttrError> {
        for (port, name) in [(self.local_port, "local_port"), (self.remote_port, "remote_port")] {
            if port.is_none() {
                continue;
            }
            match self.transport {
                None => return Err(AttrError::PortNeedsTransport(name)),
                Some(t) if !t.has_ports() => return Err(AttrError::NoPortFor(t, name)),
                Some(_) => {}
            }
        }
        if let (Some(l), Some(r)) = (self.local_ip, self.remote_ip)
            && l.v6 != r.v6
        {
            return Err(AttrError::MixedFamilies);
        }
        let m = self.mask();
        if !COMBINATIONS.contains(&m) {
            return Err(AttrError::Combination(m));
        }
        Ok(())
    }

    /// The attributes present.
    pub fn mask(&self) -> FlowMask {
        let mut m = FlowMask::default();
        for (on, bit) in [
            (self.local_ip.is_some(), FlowMask::LOCAL_IP),
            (self.remote_ip.is_some(), FlowMask::REMOTE_IP),
            (self.transport.is_some(), FlowMask::TRANSPORT),
            (self.local_port.is_some(), FlowMask::LOCAL_PORT),
            (self.remote_port.is_some(), FlowMask::REMOTE_PORT),
            (self.dsfield.is_some(), FlowMask::DSFIELD),
        ] {
            if on {
                m = m.with(bit);
            }
        }
        m
    }

    /// Whether `self` and `other` take exactly the same packets (a DS
    /// value compared under its mask).
    pub fn same_packets(&self, other: &FlowDesc) -> bool {
        let norm = |d: &FlowDesc| FlowDesc { dsfield: d.dsfield.map(|(v, m)| (v & m, m)), ..*d };
        norm(self) == norm(other)
    }

    /// `show-flow` PROTO, LADDR, LPORT, RADDR, RPORT, DSFLD (`--` unset).
    pub fn columns(&self) -> [String; 6] {
        let dash = || String::from("--");
        [
            self.transport.map_or_else(dash, |t| String::from(t.name())),
            self.local_ip.map_or_else(dash, |a| a.to_string()),
            self.local_port.map_or_else(dash, |p| p.to_string()),
            self.remote_ip.map_or_else(dash, |a| a.to_string()),
            self.remote_port.map_or_else(dash, |p| p.to_string()),
            self.dsfield.map_or_else(dash, |(v, m)| alloc::format!("0x{v:x}:0x{m:x}")),
        ]
    }
}
