//! The data-link registry beyond the physical links: VNICs and etherstubs,
//! created and deleted by `dladm`, with illumos' rules (unique names,
//! valid names, no deleting what is in use).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::sync::Mutex;

use crate::buf::BufPool;
use crate::client::{AddrType, MacClient};
use crate::dma::DmaAllocator;
use crate::mac::{self, Mac, TX_BUF_SIZE};
use crate::provider::{MacAddr, MacError};
use crate::switch::Switch;

/// The OUI prefix of random VNIC addresses (locally administered).
pub const RANDOM_PREFIX: [u8; 3] = [0x02, 0x08, 0x20];
/// Buffers of an etherstub's own pool.
const ETHERSTUB_BUFS: usize = 1024;

/// A data link of any class.
#[derive(Clone)]
pub enum Datalink {
    Phys(Arc<Mac>),
    Vnic(Arc<MacClient>),
    Etherstub(Arc<Switch>),
}

impl Datalink {
    /// The link name.
    pub fn name(&self) -> &str {
        match self {
            Datalink::Phys(m) => m.link(),
            Datalink::Vnic(c) => c.name(),
            Datalink::Etherstub(s) => s.name(),
        }
    }

    /// `dladm show-link` CLASS.
    pub fn class(&self) -> &'static str {
        match self {
            Datalink::Phys(_) => "phys",
            Datalink::Vnic(_) => "vnic",
            Datalink::Etherstub(_) => "etherstub",
        }
    }

    /// The MAC client that carries an IP instance on this link (the
    /// primary client of a physical link, the VNIC itself); etherstubs
    /// have none.
    pub fn client(&self) -> Option<Arc<MacClient>> {
        match self {
            Datalink::Phys(m) => Some(m.primary().clone()),
            Datalink::Vnic(c) => Some(c.clone()),
            Datalink::Etherstub(_) => None,
        }
    }
}

/// Why a link operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    InvalidName(String),
    Exists(String),
    NotFound(String),
    /// The link is in use; the string says by what.
    Busy(String, String),
    /// `-l` names a link a VNIC cannot sit on.
    BadLower(String),
    InvalidMac(String),
    /// The address is used by another client of that link.
    MacInUse(String),
    NoFactoryAddr,
    InvalidVid(u16),
    Device(MacError),
    /// No free ring group for a hardware lane.
    NoRings(String),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::InvalidName(n) => write!(f, "invalid link name '{n}'"),
            LinkError::Exists(n) => write!(f, "object '{n}' already exists"),
            LinkError::NotFound(n) => write!(f, "'{n}': object not found"),
            LinkError::Busy(n, why) => write!(f, "'{n}' is busy: {why}"),
            LinkError::BadLower(n) => write!(f, "'{n}' is not a physical link or an etherstub"),
            LinkError::InvalidMac(s) => write!(f, "invalid MAC address '{s}'"),
            LinkError::MacInUse(s) => write!(f, "MAC address {s} is already in use"),
            LinkError::NoFactoryAddr => write!(f, "no free factory MAC address"),
            LinkError::InvalidVid(v) => write!(f, "invalid VLAN id '{v}' (1-4094)"),
            LinkError::Device(e) => write!(f, "the device refused: {e:?}"),
            LinkError::NoRings(n) => write!(f, "no free hardware ring group for '{n}'"),
        }
    }
}

/// How a VNIC's MAC address is chosen (`create-vnic -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacSpec {
    /// A free factory address if the NIC has one, else random.
    Auto,
    /// Random with the 2:8:20 prefix.
    Random,
    /// The next free factory address.
    Factory,
    /// This address.
    Fixed(MacAddr),
}

impl MacSpec {
    /// Parses `auto`, `random`, `factory` or `x:x:x:x:x:x`.
    pub fn parse(s: &str) -> Result<MacSpec, LinkError> {
        match s {
            "auto" => Ok(MacSpec::Auto),
            "random" => Ok(MacSpec::Random),
            "factory" => Ok(MacSpec::Factory),
            _ => parse_mac(s).map(MacSpec::Fixed).ok_or_else(|| LinkError::InvalidMac(String::from(s))),
        }
    }
}

/// Parses `x:x:x:x:x:x` (1 or 2 hex digits each).
pub fn parse_mac(s: &str) -> Option<MacAddr> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// Formats a MAC address as dladm does (`2:8:20:a:b:c`).
pub fn fmt_mac(a: &MacAddr) -> String {
    alloc::format!("{:x}:{:x}:{:x}:{:x}:{:x}:{:x}", a[0], a[1], a[2], a[3], a[4], a[5])
}

struct Registry {
    vnics: Vec<Arc<MacClient>>,
    etherstubs: Vec<Arc<Switch>>,
}

static REG: Mutex<Registry> = Mutex::new(Registry { vnics: Vec::new(), etherstubs: Vec::new() });

/// Every data link: physical links, then etherstubs, then VNICs, each in
/// creation order.
pub fn datalinks() -> Vec<Datalink> {
    let mut v: Vec<Datalink> = mac::links().into_iter().map(Datalink::Phys).collect();
    let r = REG.lock();
    v.extend(r.etherstubs.iter().cloned().map(Datalink::Etherstub));
    v.extend(r.vnics.iter().cloned().map(Datalink::Vnic));
    v
}

/// The data link named `name`.
pub fn datalink(name: &str) -> Option<Datalink> {
    datalinks().into_iter().find(|l| l.name() == name)
}

/// Whether `name` is a valid link name (illumos rules: letters, digits,
/// `_` and `.`, ending in a number without a leading zero, at most 31).
pub fn valid_link_name(name: &str) -> bool {
    crate::admin::valid_link_name(name)
}

fn check_new_name(name: &str) -> Result<(), LinkError> {
    if !valid_link_name(name) {
        return Err(LinkError::InvalidName(String::from(name)));
    }
    if datalink(name).is_some() {
        return Err(LinkError::Exists(String::from(name)));
    }
    Ok(())
}

/// Creates an etherstub: a switch with no wire.
pub fn create_etherstub(name: &str, dma: Arc<dyn DmaAllocator>) -> Result<Arc<Switch>, LinkError> {
    check_new_name(name)?;
    let pool = BufPool::new(dma, TX_BUF_SIZE, ETHERSTUB_BUFS).ok_or(LinkError::Device(MacError::NoSpace))?;
    let sw = Arc::new(Switch::new(String::from(name), None, pool, 1500));
    let mut r = REG.lock();
    // Re-check under the lock: two creators may race.
    if r.etherstubs.iter().any(|s| s.name() == name) || r.vnics.iter().any(|v| v.name() == name) {
        return Err(LinkError::Exists(String::from(name)));
    }
    r.etherstubs.push(sw.clone());
    Ok(sw)
}

/// Deletes an etherstub; refused while VNICs remain on it.
pub fn delete_etherstub(name: &str) -> Result<(), LinkError> {
    let mut r = REG.lock();
    let i = match r.etherstubs.iter().position(|s| s.name() == name) {
        Some(i) => i,
        None => return Err(LinkError::NotFound(String::from(name))),
    };
    let n = r.etherstubs[i].clients().len();
    if n > 0 {
        return Err(LinkError::Busy(String::from(name), alloc::format!("{n} VNIC(s) are still on it")));
    }
    r.etherstubs.remove(i);
    Ok(())
}

/// Creates VNIC `name` over `over` (a physical link or an etherstub).
/// `entropy` seeds a random address. On a NIC with a free ring group and
/// unicast slot the VNIC gets a hardware lane (its address steered to its
/// own rings); otherwise its address goes into the default group's filter
/// and the switch classifies its traffic in software.
pub fn create_vnic(name: &str, over: &str, spec: MacSpec, vid: u16, entropy: u64) -> Result<Arc<MacClient>, LinkError> {
    create_vnic_with(name, over, spec, vid, entropy, true)
}

/// [`create_vnic`], with `hw_lane` false to keep the VNIC in software
/// classification even where a ring group is free (`rxrings=sw`).
pub fn create_vnic_with(
    name: &str,
    over: &str,
    spec: MacSpec,
    vid: u16,
    entropy: u64,
    hw_lane: bool,
) -> Result<Arc<MacClient>, LinkError> {
    check_new_name(name)?;
    if vid > 4094 {
        return Err(LinkError::InvalidVid(vid));
    }
    let (sw, wire) = match datalink(over) {
        Some(Datalink::Phys(m)) => (m.switch().clone(), Some(m)),
        Some(Datalink::Etherstub(s)) => (s, None),
        Some(_) => return Err(LinkError::BadLower(String::from(over))),
        None => return Err(LinkError::NotFound(String::from(over))),
    };
    // An address must be unique among the clients of one switch (illumos
    // checks per underlying NIC); separate etherstubs are separate wires.
    let in_use = |a: &MacAddr| sw.clients().iter().any(|c| c.addr() == *a);
    let factory_free = || -> Option<MacAddr> {
        let m = wire.as_ref()?;
        m.info().extra_factory_addrs.iter().copied().find(|a| !in_use(a))
    };
    let random = || -> MacAddr {
        let mut x = entropy ^ 0x9e37_79b9_7f4a_7c15;
        loop {
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            let a = [RANDOM_PREFIX[0], RANDOM_PREFIX[1], RANDOM_PREFIX[2], (x >> 16) as u8, (x >> 8) as u8, x as u8];
            if !in_use(&a) {
                return a;
            }
            x = x.wrapping_add(0x9e37_79b9);
        }
    };
    let (addr, kind) = match spec {
        MacSpec::Auto => match factory_free() {
            Some(a) => (a, AddrType::Factory),
            None => (random(), AddrType::Random),
        },
        MacSpec::Random => (random(), AddrType::Random),
        MacSpec::Factory => (factory_free().ok_or(LinkError::NoFactoryAddr)?, AddrType::Factory),
        MacSpec::Fixed(a) => {
            if a[0] & 1 != 0 || a == [0; 6] {
                return Err(LinkError::InvalidMac(fmt_mac(&a)));
            }
            if in_use(&a) {
                return Err(LinkError::MacInUse(fmt_mac(&a)));
            }
            (a, AddrType::Fixed)
        }
    };
    let mut hw_group = None;
    if let Some(m) = &wire {
        if let Some(g) = if hw_lane { m.reserve_group(name) } else { None } {
            match m.provider().unicast_add(g, addr) {
                Ok(()) => hw_group = Some(g),
                Err(_) => m.release_group(g),
            }
        }
        if hw_group.is_none() {
            match m.provider().unicast_add(0, addr) {
                Ok(()) | Err(MacError::NotSupported) => {}
                Err(e) => return Err(LinkError::Device(e)),
            }
        }
    }
    let client = Arc::new(MacClient::new(String::from(name), addr, kind, vid, hw_group, true, &sw));
    {
        let mut r = REG.lock();
        if r.vnics.iter().any(|v| v.name() == name) || r.etherstubs.iter().any(|s| s.name() == name) {
            drop(r);
            if let Some(m) = &wire {
                let _ = m.provider().unicast_remove(hw_group.unwrap_or(0), addr);
                if let Some(g) = hw_group {
                    m.release_group(g);
                }
            }
            return Err(LinkError::Exists(String::from(name)));
        }
        r.vnics.push(client.clone());
    }
    sw.attach(client.clone());
    Ok(client)
}

/// Moves VNIC `name` onto its own ring group (`hw`: a hardware lane,
/// when the NIC has a free group with a unicast slot) or back into
/// software classification on the default group (`rxrings` changed on an
/// existing VNIC). The address is added to the new group's filter before
/// it leaves the old one, so its traffic keeps arriving. Returns the group
/// it owns afterwards; on error nothing changed.
pub fn set_vnic_hw_lane(name: &str, hw: bool) -> Result<Option<usize>, LinkError> {
    let v = vnics().into_iter().find(|v| v.name() == name).ok_or_else(|| LinkError::NotFound(String::from(name)))?;
    let Some(m) = v.lower().and_then(|s| s.wire()) else {
        // On an etherstub there are no rings: software is all there is.
        return if hw { Err(LinkError::NoRings(String::from(name))) } else { Ok(None) };
    };
    match (hw, v.hw_group()) {
        (true, Some(g)) => Ok(Some(g)),
        (false, None) => Ok(None),
        (true, None) => {
            let g = m.reserve_group(name).ok_or_else(|| LinkError::NoRings(String::from(name)))?;
            if let Err(e) = m.provider().unicast_add(g, v.addr()) {
                m.release_group(g);
                return Err(LinkError::Device(e));
            }
            v.set_hw_group(Some(g));
            match m.provider().unicast_remove(0, v.addr()) {
                Ok(()) | Err(MacError::NotSupported) => {}
                Err(_) => {} // a stale default-group filter only costs a software drop
            }
            Ok(Some(g))
        }
        (false, Some(g)) => {
            match m.provider().unicast_add(0, v.addr()) {
                Ok(()) | Err(MacError::NotSupported) => {}
                Err(e) => return Err(LinkError::Device(e)),
            }
            v.set_hw_group(None);
            let _ = m.provider().unicast_remove(g, v.addr());
            m.release_group(g);
            Ok(None)
        }
    }
}

/// Deletes a VNIC; refused while an IP instance is plumbed on it or flows
/// are defined on it.
pub fn delete_vnic(name: &str) -> Result<(), LinkError> {
    let mut r = REG.lock();
    let i = match r.vnics.iter().position(|v| v.name() == name) {
        Some(i) => i,
        None => return Err(LinkError::NotFound(String::from(name))),
    };
    if r.vnics[i].is_plumbed() {
        return Err(LinkError::Busy(String::from(name), String::from("an IP interface is plumbed on it")));
    }
    if !crate::flow::registry::on_link(name).is_empty() {
        return Err(LinkError::Busy(String::from(name), String::from("flows are defined on it")));
    }
    let v = r.vnics.remove(i);
    drop(r);
    if let Some(sw) = v.lower() {
        sw.detach(v.name());
        if let Some(m) = sw.wire() {
            let g = v.hw_group().unwrap_or(0);
            let _ = m.provider().unicast_remove(g, v.addr());
            if let Some(g) = v.hw_group() {
                m.release_group(g);
            }
        }
    }
    Ok(())
}

/// The VNICs, in creation order.
pub fn vnics() -> Vec<Arc<MacClient>> {
    REG.lock().vnics.clone()
}

/// The etherstubs, in creation order.
pub fn etherstubs() -> Vec<Arc<Switch>> {
    REG.lock().etherstubs.clone()
}
