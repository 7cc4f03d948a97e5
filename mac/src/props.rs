//! Data-link properties (`dladm set-linkprop`, `reset-linkprop`,
//! `show-linkprop`), per `shared/ADMIN.md`:
//!
//! | property | values | default |
//! |---|---|---|
//! | `maxbw` | `N[K\|M\|G]` (no suffix: Mb/s), at least 1.2M; `--`: unlimited | unlimited |
//! | `cpus` | CPU ids and ranges `0,2-3` below the CPU count | none (`--`) |
//! | `priority` | `low`, `medium`, `high` | `high` |
//! | `protection` | `mac-nospoof`, `ip-nospoof`, `restricted` (comma list); `--`: none | none |
//! | `allowed-ips` | IPv4 addresses or `addr/prefix`, at most 32 | none |
//! | `rxrings`, `txrings` | `hw`, `sw` or a ring count | unset (`--`) |
//!
//! and the read-only `mtu`, `cpus-effective`, `rxrings-effective`,
//! `rxrings-available`, `txrings-effective`, `txrings-available`.
//! Etherstubs take no settable property.
//!
//! Properties are kept by link name in a global registry ([`get`],
//! [`set`], [`set_all`], [`reset`], [`forget`]); every change calls the
//! hooks registered with [`on_change`] (outside any lock) with the link's
//! new properties, which is how the MAC layer and the kernel apply them.
//! Values are validated completely before anything is stored: a command
//! setting several properties changes all of them or none.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;

use crate::sync::{Mutex, RwLock};

use crate::lanes;
use crate::link::Datalink;

/// Smallest `maxbw`: 1.2 Mb/s (illumos `MRP_MAXBW_MINVAL`).
pub const MAXBW_MIN: u64 = 1_200_000;
/// Most `allowed-ips` entries (illumos `MPT_MAXIPADDR`).
pub const MAX_ALLOWED_IPS: usize = 32;

/// A link property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    Mtu,
    Maxbw,
    Cpus,
    CpusEffective,
    Priority,
    Protection,
    AllowedIps,
    Rxrings,
    RxringsEffective,
    RxringsAvailable,
    Txrings,
    TxringsEffective,
    TxringsAvailable,
}

impl Prop {
    /// Every property, in `show-linkprop` order.
    pub const ALL: [Prop; 13] = [
        Prop::Mtu,
        Prop::Maxbw,
        Prop::Cpus,
        Prop::CpusEffective,
        Prop::Priority,
        Prop::Protection,
        Prop::AllowedIps,
        Prop::Rxrings,
        Prop::RxringsEffective,
        Prop::RxringsAvailable,
        Prop::Txrings,
        Prop::TxringsEffective,
        Prop::TxringsAvailable,
    ];

    /// The name `dladm` uses.
    pub fn name(self) -> &'static str {
        match self {
            Prop::Mtu => "mtu",
            Prop::Maxbw => "maxbw",
            Prop::Cpus => "cpus",
            Prop::CpusEffective => "cpus-effective",
            Prop::Priority => "priority",
            Prop::Protection => "protection",
            Prop::AllowedIps => "allowed-ips",
            Prop::Rxrings => "rxrings",
            Prop::RxringsEffective => "rxrings-effective",
            Prop::RxringsAvailable => "rxrings-available",
            Prop::Txrings => "txrings",
            Prop::TxringsEffective => "txrings-effective",
            Prop::TxringsAvailable => "txrings-available",
        }
    }

    /// The property named `name` (case-insensitive, as illumos).
    pub fn from_name(name: &str) -> Option<Prop> {
        Prop::ALL.iter().copied().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether it can be set (`PERM rw`).
    pub fn writable(self) -> bool {
        matches!(
            self,
            Prop::Maxbw | Prop::Cpus | Prop::Priority | Prop::Protection | Prop::AllowedIps | Prop::Rxrings | Prop::Txrings
        )
    }
}

/// `priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum Priority {
    Low,
    Medium,
    #[default]
    High,
}

impl Priority {
    /// `low`, `medium` or `high`.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    /// Parses `low`, `medium` or `high`.
    pub fn parse(s: &str) -> Option<Priority> {
        match s {
            "low" => Some(Priority::Low),
            "medium" => Some(Priority::Medium),
            "high" => Some(Priority::High),
            _ => None,
        }
    }
}

/// `protection`: which spoofing checks apply to the link's Tx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Protection {
    /// Drop frames whose source MAC is not the link's.
    pub mac_nospoof: bool,
    /// Drop IP/ARP frames whose sender address is not in `allowed-ips`.
    pub ip_nospoof: bool,
    /// Only IPv4, IPv6 and ARP frames may leave.
    pub restricted: bool,
}

impl Protection {
    /// Whether no check is on.
    pub fn is_none(&self) -> bool {
        !(self.mac_nospoof || self.ip_nospoof || self.restricted)
    }
}

impl fmt::Display for Protection {
    /// `mac-nospoof,ip-nospoof,restricted` (those on), or `--`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("--");
        }
        let mut first = true;
        for (on, name) in [(self.mac_nospoof, "mac-nospoof"), (self.ip_nospoof, "ip-nospoof"), (self.restricted, "restricted")] {
            if on {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// An `allowed-ips` entry: an IPv4 address (`prefix` 32) or network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    /// The address, host bits cleared.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Net {
    fn mask(prefix: u8) -> u32 {
        match prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p.min(32))),
        }
    }

    /// `addr/prefix` with the host bits of `addr` cleared; `None` for a
    /// prefix above 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Net> {
        (prefix <= 32).then(|| Ipv4Net { addr: Ipv4Addr::from(u32::from(addr) & Ipv4Net::mask(prefix)), prefix })
    }

    /// Whether `ip` is in it.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Ipv4Net::mask(self.prefix) == u32::from(self.addr)
    }
}

impl fmt::Display for Ipv4Net {
    /// `a.b.c.d` for a host, `a.b.c.d/n` for a network.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == 32 { write!(f, "{}", self.addr) } else { write!(f, "{}/{}", self.addr, self.prefix) }
    }
}

/// `rxrings` / `txrings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rings {
    /// Hardware rings (as many as the NIC gives).
    Hw,
    /// No hardware rings: software classification on the default group.
    Sw,
    /// This many hardware rings.
    Count(usize),
}

impl fmt::Display for Rings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rings::Hw => f.write_str("hw"),
            Rings::Sw => f.write_str("sw"),
            Rings::Count(n) => write!(f, "{n}"),
        }
    }
}

/// The settable properties of a link. `Default` is what a new link has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkProps {
    /// Bandwidth limit in bits per second (each direction); `None`:
    /// unlimited.
    pub maxbw: Option<u64>,
    /// CPUs the lanes are bound to, ascending; empty: not set.
    pub cpus: Vec<usize>,
    pub priority: Priority,
    pub protection: Protection,
    /// Addresses an `ip-nospoof` link may send from.
    pub allowed_ips: Vec<Ipv4Net>,
    pub rxrings: Option<Rings>,
    pub txrings: Option<Rings>,
}

impl LinkProps {
    /// Whether `ip` is covered by `allowed-ips`.
    pub fn ip_allowed(&self, ip: Ipv4Addr) -> bool {
        self.allowed_ips.iter().any(|n| n.contains(ip))
    }

    /// `protection` and `allowed-ips` in the form the data path checks
    /// ([`crate::client::MacClient::set_protection`]).
    pub fn client_protection(&self) -> crate::client::Protection {
        crate::client::Protection {
            mac_nospoof: self.protection.mac_nospoof,
            ip_nospoof: self.protection.ip_nospoof,
            restricted: self.protection.restricted,
            allowed_ips: self.allowed_ips.iter().map(|n| (n.addr.octets(), n.prefix)).collect(),
        }
    }

    /// Sets one (already validated) value.
    pub fn apply(&mut self, v: PropValue) {
        match v {
            PropValue::Maxbw(b) => self.maxbw = b,
            PropValue::Cpus(c) => self.cpus = c,
            PropValue::Priority(p) => self.priority = p,
            PropValue::Protection(p) => self.protection = p,
            PropValue::AllowedIps(a) => self.allowed_ips = a,
            PropValue::Rxrings(r) => self.rxrings = r,
            PropValue::Txrings(r) => self.txrings = r,
        }
    }

    /// Puts `p` back to its default (read-only properties: nothing).
    pub fn reset(&mut self, p: Prop) {
        let d = LinkProps::default();
        match p {
            Prop::Maxbw => self.maxbw = d.maxbw,
            Prop::Cpus => self.cpus = d.cpus,
            Prop::Priority => self.priority = d.priority,
            Prop::Protection => self.protection = d.protection,
            Prop::AllowedIps => self.allowed_ips = d.allowed_ips,
            Prop::Rxrings => self.rxrings = d.rxrings,
            Prop::Txrings => self.txrings = d.txrings,
            _ => {}
        }
    }

    /// The value of settable property `p` as `show-linkprop` prints it
    /// (`--` when unset); `None` for a read-only property.
    pub fn value(&self, p: Prop) -> Option<String> {
        Some(match p {
            Prop::Maxbw => fmt_maxbw(self.maxbw),
            Prop::Cpus => fmt_cpus(&self.cpus),
            Prop::Priority => String::from(self.priority.name()),
            Prop::Protection => self.protection.to_string(),
            Prop::AllowedIps => fmt_list(&self.allowed_ips),
            Prop::Rxrings => fmt_opt(&self.rxrings),
            Prop::Txrings => fmt_opt(&self.txrings),
            _ => return None,
        })
    }
}

/// A parsed, validated property value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropValue {
    Maxbw(Option<u64>),
    Cpus(Vec<usize>),
    Priority(Priority),
    Protection(Protection),
    AllowedIps(Vec<Ipv4Net>),
    Rxrings(Option<Rings>),
    Txrings(Option<Rings>),
}

impl PropValue {
    /// Which property it sets.
    pub fn prop(&self) -> Prop {
        match self {
            PropValue::Maxbw(_) => Prop::Maxbw,
            PropValue::Cpus(_) => Prop::Cpus,
            PropValue::Priority(_) => Prop::Priority,
            PropValue::Protection(_) => Prop::Protection,
            PropValue::AllowedIps(_) => Prop::AllowedIps,
            PropValue::Rxrings(_) => Prop::Rxrings,
            PropValue::Txrings(_) => Prop::Txrings,
        }
    }
}

/// The class of a link, for which properties apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkClass {
    Phys,
    Vnic,
    Etherstub,
}

impl LinkClass {
    /// Of `link`.
    pub fn of(link: &Datalink) -> LinkClass {
        match link {
            Datalink::Phys(_) => LinkClass::Phys,
            Datalink::Vnic(_) => LinkClass::Vnic,
            Datalink::Etherstub(_) => LinkClass::Etherstub,
        }
    }

    /// `phys`, `vnic`, `etherstub`.
    pub fn name(self) -> &'static str {
        match self {
            LinkClass::Phys => "phys",
            LinkClass::Vnic => "vnic",
            LinkClass::Etherstub => "etherstub",
        }
    }
}

/// What values a link accepts: its class, the CPUs there are and the most
/// hardware rings it could have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub class: LinkClass,
    /// CPUs online: `cpus` ids must be below this.
    pub cpu_count: usize,
    /// Most Rx rings `rxrings` may ask for (0: only `sw`).
    pub rx_rings: usize,
    /// Most Tx rings `txrings` may ask for (0: only `sw`).
    pub tx_rings: usize,
}

impl Limits {
    /// The limits of an existing link.
    pub fn of(link: &Datalink, cpu_count: usize) -> Limits {
        match link {
            Datalink::Phys(m) => {
                Limits { class: LinkClass::Phys, cpu_count, rx_rings: m.info().rx_rings, tx_rings: m.info().tx_rings }
            }
            Datalink::Vnic(c) => match c.lower().and_then(|s| s.wire()) {
                Some(m) => Limits::for_vnic_over(&Datalink::Phys(m), cpu_count),
                None => Limits { class: LinkClass::Vnic, cpu_count, rx_rings: 0, tx_rings: 0 },
            },
            Datalink::Etherstub(_) => Limits { class: LinkClass::Etherstub, cpu_count, rx_rings: 0, tx_rings: 0 },
        }
    }

    /// The limits of a VNIC to be created over `lower` (to validate
    /// `create-vnic -p` before creating anything).
    pub fn for_vnic_over(lower: &Datalink, cpu_count: usize) -> Limits {
        match lanes::wire_of(lower) {
            Some(m) => Limits {
                class: LinkClass::Vnic,
                cpu_count,
                rx_rings: lanes::vnic_rx_rings_max(&m),
                tx_rings: lanes::vnic_tx_rings_max(&m),
            },
            None => Limits { class: LinkClass::Vnic, cpu_count, rx_rings: 0, tx_rings: 0 },
        }
    }

    /// Whether links of this class have property `p` (etherstubs only
    /// `mtu`).
    pub fn supports(&self, p: Prop) -> bool {
        self.class != LinkClass::Etherstub || p == Prop::Mtu
    }
}

/// Why a property could not be set or reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropError {
    /// No such property.
    Unknown(String),
    /// A read-only property.
    ReadOnly(&'static str),
    /// The link's class has no such property.
    NotSupported(&'static str, LinkClass),
    /// A bad value, and why.
    BadValue { prop: &'static str, value: String, why: String },
    /// The same property twice in one command.
    Duplicate(&'static str),
}

impl PropError {
    /// The property named (as given for an unknown one).
    pub fn prop(&self) -> &str {
        match self {
            PropError::Unknown(n) => n,
            PropError::ReadOnly(p) | PropError::NotSupported(p, _) | PropError::Duplicate(p) => p,
            PropError::BadValue { prop, .. } => prop,
        }
    }

    /// What is wrong, without the property's name.
    pub fn reason(&self) -> String {
        match self {
            PropError::Unknown(_) => String::from("unknown property"),
            PropError::ReadOnly(_) => String::from("read-only property"),
            PropError::NotSupported(_, c) => alloc::format!("not supported on {} links", c.name()),
            PropError::BadValue { value, why, .. } => alloc::format!("invalid value '{value}': {why}"),
            PropError::Duplicate(_) => String::from("specified more than once"),
        }
    }
}

impl fmt::Display for PropError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "property '{}': {}", self.prop(), self.reason())
    }
}

// ---- formatting ----

/// `maxbw` as illumos prints it: Mb/s with the kb/s as three decimals
/// when there are any (`10`, `1.200`, `0.500`); `--` for unlimited.
pub fn fmt_maxbw(bps: Option<u64>) -> String {
    match bps {
        None => String::from("--"),
        Some(b) => {
            let (mbps, kbps) = (b / 1_000_000, (b % 1_000_000) / 1000);
            if kbps != 0 { alloc::format!("{mbps}.{kbps:03}") } else { alloc::format!("{mbps}") }
        }
    }
}

/// CPU ids as ranges (`0,2-3`), `--` for none.
pub fn fmt_cpus(cpus: &[usize]) -> String {
    crate::admin::table::ranges(cpus)
}

fn fmt_list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return String::from("--");
    }
    let v: Vec<String> = items.iter().map(|i| i.to_string()).collect();
    v.join(",")
}

fn fmt_opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| String::from("--"), |x| x.to_string())
}

// ---- parsing ----

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a decimal of digits, at most 9 of them after an optional point,
/// times `mult`: `1.2` × 1000000 = 1200000. `None` if malformed or too big.
fn fixed_point(s: &str, mult: u64) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if !(digits(int) || (int.is_empty() && digits(frac))) || (!frac.is_empty() && !digits(frac)) {
        return None;
    }
    if s.ends_with('.') {
        return None;
    }
    let int_v: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut total = int_v.checked_mul(mult)?;
    // Digits past the ninth cannot add a whole bit with a multiplier of at
    // most 10^9.
    let frac = frac.get(..frac.len().min(9)).unwrap_or("");
    if !frac.is_empty() {
        let f: u64 = frac.parse().ok()?;
        let scale = 10u64.checked_pow(frac.len() as u32)?;
        total = total.checked_add((u128::from(f) * u128::from(mult) / u128::from(scale)) as u64)?;
    }
    Some(total)
}

/// The largest `maxbw` accepted: 1 Tbit/s.
pub const MAXBW_MAX: u64 = 1_000_000_000_000;

/// Parses `maxbw`: `--` (unlimited) or a number with an optional `K`,
/// `M` or `G` suffix (no suffix: Mb/s), between [`MAXBW_MIN`] and
/// [`MAXBW_MAX`].
pub fn parse_maxbw(s: &str) -> Result<Option<u64>, String> {
    if s == "--" {
        return Ok(None);
    }
    let (num, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1_000),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1_000_000),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1_000_000),
    };
    let Some(bps) = fixed_point(num, mult) else {
        return Err(String::from("expected a bandwidth such as 500K, 10M, 1.5G or 100 (Mb/s), or --"));
    };
    if bps < MAXBW_MIN {
        return Err(String::from("the minimum is 1.2M"));
    }
    if bps > MAXBW_MAX {
        return Err(String::from("the maximum is 1000G"));
    }
    Ok(Some(bps))
}

/// Parses a CPU list (`0,2-3`) against `cpu_count` CPUs: ids below it,
/// none twice. `--` clears the list.
pub fn parse_cpus(s: &str, cpu_count: usize) -> Result<Vec<usize>, String> {
    if s == "--" {
        return Ok(Vec::new());
    }
    let last = cpu_count.saturating_sub(1);
    let mut out: Vec<usize> = Vec::new();
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        if !digits(a) || !digits(b) {
            return Err(alloc::format!("'{part}' is not a CPU id or range (such as 0,2-3)"));
        }
        let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) else {
            return Err(alloc::format!("CPU '{part}' does not exist"));
        };
        if a > b {
            return Err(alloc::format!("the range '{part}' is backwards"));
        }
        if b >= cpu_count {
            return Err(match cpu_count {
                0 => String::from("no CPU is online"),
                1 => alloc::format!("CPU {b} does not exist (there is only CPU 0)"),
                _ => alloc::format!("CPU {b} does not exist (CPUs 0-{last})"),
            });
        }
        for c in a..=b {
            if out.contains(&c) {
                return Err(alloc::format!("CPU {c} is listed twice"));
            }
            out.push(c);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Parses `protection`: a comma list of `mac-nospoof`, `ip-nospoof` and
/// `restricted`, or `--` for none.
pub fn parse_protection(s: &str) -> Result<Protection, String> {
    let mut p = Protection::default();
    if s == "--" {
        return Ok(p);
    }
    for word in s.split(',') {
        let flag = match word {
            "mac-nospoof" => &mut p.mac_nospoof,
            "ip-nospoof" => &mut p.ip_nospoof,
            "restricted" => &mut p.restricted,
            _ => return Err(alloc::format!("'{word}' is not one of mac-nospoof, ip-nospoof, restricted, --")),
        };
        if *flag {
            return Err(alloc::format!("'{word}' is listed twice"));
        }
        *flag = true;
    }
    Ok(p)
}

/// Parses `allowed-ips`: IPv4 addresses or networks (`10.0.0.1`,
/// `10.0.0.0/24`), at most [`MAX_ALLOWED_IPS`], none twice; `--` clears.
pub fn parse_allowed_ips(s: &str) -> Result<Vec<Ipv4Net>, String> {
    if s == "--" {
        return Ok(Vec::new());
    }
    let mut out: Vec<Ipv4Net> = Vec::new();
    for item in s.split(',') {
        let (a, prefix) = match item.split_once('/') {
            Some((a, p)) if digits(p) && p.len() <= 2 => match p.parse::<u8>() {
                Ok(n) if n <= 32 => (a, n),
                _ => return Err(alloc::format!("'{item}': the prefix length must be 0-32")),
            },
            Some(_) => return Err(alloc::format!("'{item}': the prefix length must be 0-32")),
            None => (item, 32),
        };
        let Ok(addr) = a.parse::<Ipv4Addr>() else {
            return Err(alloc::format!("'{item}' is not an IPv4 address or address/prefix"));
        };
        let Some(net) = Ipv4Net::new(addr, prefix) else {
            return Err(alloc::format!("'{item}': the prefix length must be 0-32"));
        };
        if out.contains(&net) {
            return Err(alloc::format!("'{item}' is listed twice"));
        }
        out.push(net);
        if out.len() > MAX_ALLOWED_IPS {
            return Err(alloc::format!("at most {MAX_ALLOWED_IPS} addresses"));
        }
    }
    Ok(out)
}

/// Parses `rxrings`/`txrings`: `sw`, or (if the link can have hardware
/// rings, `max` > 0) `hw` or a count 1..=`max`.
pub fn parse_rings(s: &str, max: usize) -> Result<Rings, String> {
    let no_hw = || String::from("no hardware rings can be given to this link (only sw)");
    match s {
        "sw" => Ok(Rings::Sw),
        "hw" if max > 0 => Ok(Rings::Hw),
        "hw" => Err(no_hw()),
        _ if digits(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 && n <= max => Ok(Rings::Count(n)),
            _ if max == 0 => Err(no_hw()),
            _ => Err(alloc::format!("the ring count must be 1-{max}")),
        },
        _ => Err(String::from("expected hw, sw or a ring count")),
    }
}

/// `POSSIBLE` of `rxrings`/`txrings` for at most `max` rings.
fn rings_possible(max: usize) -> String {
    match max {
        0 => String::from("sw"),
        1 => String::from("sw,hw,1"),
        n => alloc::format!("sw,hw,1-{n}"),
    }
}

/// Parses and validates `value` for property `name` on a link with
/// limits `lim`.
pub fn parse(name: &str, value: &str, lim: &Limits) -> Result<PropValue, PropError> {
    let p = Prop::from_name(name).ok_or_else(|| PropError::Unknown(String::from(name)))?;
    if !lim.supports(p) {
        return Err(PropError::NotSupported(p.name(), lim.class));
    }
    if !p.writable() {
        return Err(PropError::ReadOnly(p.name()));
    }
    let bad = |why: String| PropError::BadValue { prop: p.name(), value: String::from(value), why };
    if value.is_empty() {
        return Err(bad(String::from("a value is required (reset-linkprop restores the default)")));
    }
    Ok(match p {
        Prop::Maxbw => PropValue::Maxbw(parse_maxbw(value).map_err(bad)?),
        Prop::Cpus => PropValue::Cpus(parse_cpus(value, lim.cpu_count).map_err(bad)?),
        Prop::Priority => PropValue::Priority(
            Priority::parse(value).ok_or_else(|| bad(String::from("expected low, medium or high")))?,
        ),
        Prop::Protection => PropValue::Protection(parse_protection(value).map_err(bad)?),
        Prop::AllowedIps => PropValue::AllowedIps(parse_allowed_ips(value).map_err(bad)?),
        Prop::Rxrings => PropValue::Rxrings(Some(parse_rings(value, lim.rx_rings).map_err(bad)?)),
        Prop::Txrings => PropValue::Txrings(Some(parse_rings(value, lim.tx_rings).map_err(bad)?)),
        // Not writable: refused above.
        _ => return Err(PropError::ReadOnly(p.name())),
    })
}

/// Validates several `(name, value)` pairs: all must parse and none may
/// repeat. Nothing is stored.
pub fn validate(pairs: &[(&str, &str)], lim: &Limits) -> Result<Vec<PropValue>, PropError> {
    let mut out: Vec<PropValue> = Vec::new();
    for &(name, value) in pairs {
        let v = parse(name, value, lim)?;
        if out.iter().any(|o| o.prop() == v.prop()) {
            return Err(PropError::Duplicate(v.prop().name()));
        }
        out.push(v);
    }
    Ok(out)
}

/// Resolves property names for a reset: each known, supported, writable
/// and given once.
pub fn validate_reset(names: &[&str], lim: &Limits) -> Result<Vec<Prop>, PropError> {
    let mut out: Vec<Prop> = Vec::new();
    for &name in names {
        let p = Prop::from_name(name).ok_or_else(|| PropError::Unknown(String::from(name)))?;
        if !lim.supports(p) {
            return Err(PropError::NotSupported(p.name(), lim.class));
        }
        if !p.writable() {
            return Err(PropError::ReadOnly(p.name()));
        }
        if out.contains(&p) {
            return Err(PropError::Duplicate(p.name()));
        }
        out.push(p);
    }
    Ok(out)
}

// ---- the registry ----

struct Entry {
    link: String,
    props: LinkProps,
    /// CPUs the kernel reports the lanes actually run on.
    effective_cpus: Option<Vec<usize>>,
}

static REG: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Called with a link's name and new properties after every change.
pub type PropHook = Arc<dyn Fn(&str, &LinkProps) + Send + Sync>;

static HOOKS: RwLock<Vec<PropHook>> = RwLock::new(Vec::new());

/// Adds a change hook (the kernel/MAC applying the properties).
pub fn on_change(f: PropHook) {
    HOOKS.write().push(f);
}

fn notify(link: &str, props: &LinkProps) {
    let hooks: Vec<PropHook> = HOOKS.read().clone();
    for h in hooks {
        h(link, props);
    }
}

fn update(link: &str, f: impl FnOnce(&mut LinkProps)) -> LinkProps {
    let props = {
        let mut reg = REG.lock();
        let i = match reg.iter().position(|e| e.link == link) {
            Some(i) => i,
            None => {
                reg.push(Entry { link: String::from(link), props: LinkProps::default(), effective_cpus: None });
                reg.len() - 1
            }
        };
        // `i` is in range: found or just pushed.
        match reg.get_mut(i) {
            Some(e) => {
                f(&mut e.props);
                e.props.clone()
            }
            None => LinkProps::default(),
        }
    };
    notify(link, &props);
    props
}

/// The properties of `link` (defaults if none was ever set).
pub fn get(link: &str) -> LinkProps {
    REG.lock().iter().find(|e| e.link == link).map(|e| e.props.clone()).unwrap_or_default()
}

/// Validates and sets one property; returns the link's new properties.
pub fn set(link: &str, name: &str, value: &str, lim: &Limits) -> Result<LinkProps, PropError> {
    set_all(link, &[(name, value)], lim)
}

/// Validates every pair, then sets them all (or, on any error, none).
pub fn set_all(link: &str, pairs: &[(&str, &str)], lim: &Limits) -> Result<LinkProps, PropError> {
    let values = validate(pairs, lim)?;
    Ok(store(link, values))
}

/// Stores values already validated (by [`validate`]) and notifies once.
pub fn store(link: &str, values: Vec<PropValue>) -> LinkProps {
    update(link, |p| {
        for v in values {
            p.apply(v);
        }
    })
}

/// Puts property `name` of `link` back to its default.
pub fn reset(link: &str, name: &str) -> Result<LinkProps, PropError> {
    let p = Prop::from_name(name).ok_or_else(|| PropError::Unknown(String::from(name)))?;
    if !p.writable() {
        return Err(PropError::ReadOnly(p.name()));
    }
    Ok(reset_props(link, &[p]))
}

/// Puts `props` (every property if empty) of `link` back to their
/// defaults and notifies once.
pub fn reset_props(link: &str, props: &[Prop]) -> LinkProps {
    update(link, |lp| {
        if props.is_empty() {
            *lp = LinkProps::default();
        } else {
            for &p in props {
                lp.reset(p);
            }
        }
    })
}

/// Drops everything kept for `link` (it was deleted). No notification.
pub fn forget(link: &str) {
    REG.lock().retain(|e| e.link != link);
}

/// Runs the change hooks for `link` with its current properties (after
/// something other than a property changed what they apply to, such as a
/// ring group changing hands).
pub fn reapply(link: &str) {
    notify(link, &get(link));
}

/// Records the CPUs `link`'s lanes actually run on (`cpus-effective`);
/// `None` goes back to reporting the rings' CPUs.
pub fn note_effective_cpus(link: &str, cpus: Option<Vec<usize>>) {
    let mut reg = REG.lock();
    match reg.iter_mut().find(|e| e.link == link) {
        Some(e) => e.effective_cpus = cpus,
        None => reg.push(Entry { link: String::from(link), props: LinkProps::default(), effective_cpus: cpus }),
    }
}

fn noted_cpus(link: &str) -> Option<Vec<usize>> {
    REG.lock().iter().find(|e| e.link == link).and_then(|e| e.effective_cpus.clone())
}

// ---- show-linkprop ----

/// One row of `show-linkprop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropView {
    pub prop: Prop,
    /// `rw` or `r-`.
    pub perm: &'static str,
    pub value: String,
    pub default: String,
    pub possible: String,
}

/// The CPUs `link`'s lanes run on: what the kernel noted when it applied
/// `cpus`, else `cpus` itself, else the CPUs of its rings (a software lane: those of the
/// link below).
pub fn effective_cpus(link: &Datalink) -> Vec<usize> {
    if let Some(c) = noted_cpus(link.name()) {
        return c;
    }
    let props = get(link.name());
    if !props.cpus.is_empty() {
        return props.cpus;
    }
    let mut lanes = lanes::rx_lanes(link);
    if lanes.is_empty()
        && let Some(m) = lanes::wire_of(link)
    {
        lanes = lanes::rx_lanes(&Datalink::Phys(m));
    }
    let mut cpus: Vec<usize> = lanes.iter().map(|s| s.cpu).collect();
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// Every property of `link` as `show-linkprop` shows it.
pub fn view(link: &Datalink, cpu_count: usize) -> Vec<PropView> {
    let lim = Limits::of(link, cpu_count);
    let props = get(link.name());
    let dflt = LinkProps::default();
    let wire = lanes::wire_of(link);
    let mtu = match link {
        Datalink::Phys(m) => m.info().mtu,
        Datalink::Vnic(c) => c.mtu(),
        Datalink::Etherstub(s) => s.mtu(),
    };
    let dash = || String::from("--");
    let mut out = Vec::new();
    for p in Prop::ALL {
        if !lim.supports(p) {
            continue;
        }
        let (value, default, possible) = match p {
            Prop::Mtu => (mtu.to_string(), mtu.to_string(), dash()),
            Prop::CpusEffective => (fmt_cpus(&effective_cpus(link)), dash(), dash()),
            Prop::RxringsEffective => {
                let v = match link {
                    Datalink::Phys(_) => lanes::rx_rings(link).len().to_string(),
                    _ if lanes::is_hw_vnic(link) => lanes::rx_rings(link).len().to_string(),
                    _ => String::from("sw"),
                };
                (v, dash(), dash())
            }
            Prop::TxringsEffective => {
                let v = match link {
                    Datalink::Phys(m) => m.info().tx_rings.to_string(),
                    _ => String::from("sw"),
                };
                (v, dash(), dash())
            }
            Prop::RxringsAvailable => (wire.as_ref().map_or(0, |m| lanes::rx_rings_available(m)).to_string(), dash(), dash()),
            Prop::TxringsAvailable => (wire.as_ref().map_or(0, |m| lanes::tx_rings_available(m)).to_string(), dash(), dash()),
            Prop::Priority => (
                props.value(p).unwrap_or_else(dash),
                String::from(dflt.priority.name()),
                String::from("low,medium,high"),
            ),
            Prop::Protection => {
                (props.value(p).unwrap_or_else(dash), dash(), String::from("mac-nospoof,ip-nospoof,restricted"))
            }
            Prop::Rxrings => (props.value(p).unwrap_or_else(dash), dash(), rings_possible(lim.rx_rings)),
            Prop::Txrings => (props.value(p).unwrap_or_else(dash), dash(), rings_possible(lim.tx_rings)),
            Prop::Maxbw | Prop::Cpus | Prop::AllowedIps => (props.value(p).unwrap_or_else(dash), dash(), dash()),
        };
        out.push(PropView { prop: p, perm: if p.writable() { "rw" } else { "r-" }, value, default, possible });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn maxbw_parses_suffixes_and_formats_like_illumos() {
        let ok = |s: &str| parse_maxbw(s).unwrap();
        assert_eq!(ok("10"), Some(10_000_000));
        assert_eq!(ok("10M"), Some(10_000_000));
        assert_eq!(ok("10m"), Some(10_000_000));
        assert_eq!(ok("1.2"), Some(1_200_000));
        assert_eq!(ok("1200K"), Some(1_200_000));
        assert_eq!(ok("1200k"), Some(1_200_000));
        assert_eq!(ok("1.5G"), Some(1_500_000_000));
        assert_eq!(ok(".5G"), Some(500_000_000));
        assert_eq!(ok("2.0000000001G"), Some(2_000_000_000));
        assert_eq!(ok("--"), None);
        for bad in ["", "M", "1.1M", "1199K", "0", "-5", "1.", "1..2", "1e6", "10X", "1 0", "10MB", "99999999999999999999", "18446744073709G", "+5"] {
            assert!(parse_maxbw(bad).is_err(), "{bad}");
        }
        assert_eq!(fmt_maxbw(None), "--");
        assert_eq!(fmt_maxbw(Some(10_000_000)), "10");
        assert_eq!(fmt_maxbw(Some(1_200_000)), "1.200");
        assert_eq!(fmt_maxbw(Some(500_000)), "0.500");
        assert_eq!(fmt_maxbw(Some(1_000_000_000_000)), "1000000");
        assert_eq!(fmt_maxbw(Some(u64::MAX)), "18446744073709.551");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("0,2-3", 4), Ok(vec![0, 2, 3]));
        assert_eq!(parse_cpus("3,0", 4), Ok(vec![0, 3]));
        assert_eq!(parse_cpus("1-1", 2), Ok(vec![1]));
        assert_eq!(parse_cpus("--", 2), Ok(vec![]));
        assert_eq!(parse_cpus("4", 4), Err(String::from("CPU 4 does not exist (CPUs 0-3)")));
        assert_eq!(parse_cpus("1", 1), Err(String::from("CPU 1 does not exist (there is only CPU 0)")));
        assert_eq!(parse_cpus("0", 0), Err(String::from("no CPU is online")));
        assert_eq!(parse_cpus("0-3,2", 4), Err(String::from("CPU 2 is listed twice")));
        assert_eq!(parse_cpus("3-1", 4), Err(String::from("the range '3-1' is backwards")));
        // A huge range is refused before anything is expanded.
        assert!(parse_cpus("0-18446744073709551615", 4).is_err());
        assert!(parse_cpus("0-99999999999999999999999", 4).is_err());
        for bad in ["", ",", "a", "1-", "-1", "1-2-3", " 1", "1,,2", "0x1"] {
            assert!(parse_cpus(bad, 4).is_err(), "{bad}");
        }
        assert_eq!(fmt_cpus(&[0, 2, 3]), "0,2-3");
        assert_eq!(fmt_cpus(&[]), "--");
    }

    #[test]
    fn protection_allowed_ips_and_rings() {
        let p = parse_protection("ip-nospoof,mac-nospoof").unwrap();
        assert!(p.mac_nospoof && p.ip_nospoof && !p.restricted);
        assert_eq!(p.to_string(), "mac-nospoof,ip-nospoof");
        assert_eq!(parse_protection("--").unwrap().to_string(), "--");
        assert_eq!(parse_protection("restricted").unwrap().to_string(), "restricted");
        for bad in ["", "nospoof", "mac-nospoof,mac-nospoof", "--,restricted", "MAC-NOSPOOF"] {
            assert!(parse_protection(bad).is_err(), "{bad}");
        }
        let a = parse_allowed_ips("10.0.0.1,192.168.7.9/24,0.0.0.0/0").unwrap();
        assert_eq!(fmt_list(&a), "10.0.0.1,192.168.7.0/24,0.0.0.0/0");
        assert!(a[1].contains("192.168.7.200".parse().unwrap()) && !a[1].contains("192.168.8.1".parse().unwrap()));
        assert!(a[2].contains("1.2.3.4".parse().unwrap()));
        let lp = LinkProps { protection: p, allowed_ips: a.clone(), ..LinkProps::default() };
        let cp = lp.client_protection();
        assert!(cp.mac_nospoof && cp.ip_nospoof && !cp.restricted);
        assert_eq!(cp.allowed_ips[1], ([192, 168, 7, 0], 24));
        assert!(!a[0].contains("10.0.0.2".parse().unwrap()));
        assert_eq!(parse_allowed_ips("--").unwrap(), vec![]);
        let many: Vec<String> = (0..33).map(|i| alloc::format!("10.0.0.{i}")).collect();
        assert!(parse_allowed_ips(&many[..32].join(",")).is_ok());
        assert!(parse_allowed_ips(&many.join(",")).is_err());
        for bad in ["", "10.0.0", "10.0.0.1/33", "10.0.0.1/", "10.0.0.1/-1", "10.0.0.1/100", "fe80::1", "10.0.0.1,10.0.0.1", "010.0.0.1", "10.0.0.1/2/3"] {
            assert!(parse_allowed_ips(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rings("sw", 0), Ok(Rings::Sw));
        assert_eq!(parse_rings("hw", 2), Ok(Rings::Hw));
        assert_eq!(parse_rings("2", 2), Ok(Rings::Count(2)));
        for (bad, max) in [("hw", 0), ("1", 0), ("0", 2), ("3", 2), ("", 2), ("HW", 2), ("99999999999999999999999", 2)] {
            assert!(parse_rings(bad, max).is_err(), "{bad}");
        }
        assert_eq!(rings_possible(0), "sw");
        assert_eq!(rings_possible(1), "sw,hw,1");
        assert_eq!(rings_possible(4), "sw,hw,1-4");
    }

    #[test]
    fn validate_is_all_or_nothing_and_the_registry_notifies() {
        let lim = Limits { class: LinkClass::Vnic, cpu_count: 2, rx_rings: 0, tx_rings: 0 };
        assert_eq!(
            validate(&[("maxbw", "10M"), ("MAXBW", "20M")], &lim),
            Err(PropError::Duplicate("maxbw"))
        );
        assert!(matches!(validate(&[("priority", "low"), ("cpus", "2")], &lim), Err(PropError::BadValue { prop: "cpus", .. })));
        assert_eq!(validate(&[("mtu", "1500")], &lim), Err(PropError::ReadOnly("mtu")));
        assert_eq!(validate(&[("zz", "1")], &lim), Err(PropError::Unknown(String::from("zz"))));
        let stub = Limits { class: LinkClass::Etherstub, ..lim };
        assert_eq!(validate(&[("maxbw", "10M")], &stub), Err(PropError::NotSupported("maxbw", LinkClass::Etherstub)));
        assert_eq!(validate_reset(&["maxbw", "maxbw"], &lim), Err(PropError::Duplicate("maxbw")));
        assert_eq!(validate_reset(&["cpus-effective"], &lim), Err(PropError::ReadOnly("cpus-effective")));

        let seen: Arc<Mutex<Vec<(String, LinkProps)>>> = Arc::default();
        let s2 = seen.clone();
        on_change(Arc::new(move |l: &str, p: &LinkProps| {
            if l == "propunit0" {
                s2.lock().push((String::from(l), p.clone()));
            }
        }));
        assert_eq!(get("propunit0"), LinkProps::default());
        assert_eq!(get("propunit0").priority, Priority::High);
        assert!(set_all("propunit0", &[("maxbw", "10M"), ("cpus", "5")], &lim).is_err());
        assert_eq!(get("propunit0"), LinkProps::default());
        assert!(seen.lock().is_empty());
        let p = set_all("propunit0", &[("maxbw", "10M"), ("cpus", "1"), ("priority", "low")], &lim).unwrap();
        assert_eq!((p.maxbw, p.cpus.clone(), p.priority), (Some(10_000_000), vec![1], Priority::Low));
        assert_eq!(seen.lock().len(), 1, "one notification per change");
        let p = reset("propunit0", "priority").unwrap();
        assert_eq!((p.priority, p.maxbw), (Priority::High, Some(10_000_000)));
        assert_eq!(reset("propunit0", "mtu"), Err(PropError::ReadOnly("mtu")));
        assert_eq!(set("propunit0", "txrings", "sw", &lim).unwrap().txrings, Some(Rings::Sw));
        assert_eq!(seen.lock().last().map(|(_, p)| p.txrings), Some(Some(Rings::Sw)));
        note_effective_cpus("propunit0", Some(vec![1]));
        forget("propunit0");
        assert_eq!(get("propunit0"), LinkProps::default());
        assert_eq!(noted_cpus("propunit0"), None);
        assert_eq!(
            PropError::BadValue { prop: "maxbw", value: String::from("1"), why: String::from("the minimum is 1.2M") }.to_string(),
            "property 'maxbw': invalid value '1': the minimum is 1.2M"
        );
    }
}
