//! An IP stack instance on smoltcp: one `Interface` and `SocketSet` over
//! one [`Link`], with the instance's addresses, routes, services and echo
//! requesters and TCP client connections.
//!
//! Concurrency: the Rx lanes call [`IpStack::input`] from any CPU; it only
//! pushes the packet into a bounded lock-free queue (full → counted drop).
//! Everything else lives behind one `arbalest_mac::sync::Mutex` (a spin
//! lock that holds off preemption): the kernel's stack
//! thread holds it for one [`IpStack::poll_us`] (bounded work), the shell
//! for a configuration call or a query. Nothing here may be called from
//! interrupt context except `input`.
//!
//! One poll: up to `rx_budget` queued frames, each validated
//! ([`super::rxcheck`]; drops counted), linearized if it spans buffers,
//! reassembled if it is a fragment ([`super::reass`]), and handed to
//! smoltcp alone so that service listeners are re-armed between frames
//! (and client connections' state changes are seen one by one); then
//! replies for echo requesters are collected, the services run, and up to
//! `tx_rounds` egress rounds transmit. While a datagram is part-way out in
//! fragments, no received frame is handed to smoltcp until its last
//! fragment has left (see [`super::device`]).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering::Relaxed;

use arbalest_mac::{Cksum, Mblk};
use crossbeam_queue::ArrayQueue;
use smoltcp::iface::{Config, Interface, PollResult, Route, SocketSet};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Cidr};
use arbalest_mac::sync::Mutex;

use super::client::Clients;
use super::device::{ETH_HDR, FragGate, MAX_TX_DATAGRAM, SmolDevice};
use super::reass::{Reassembly, Refused};
use super::requester::Requesters;
use super::rxcheck::{self, Drop};
use super::services::Services;
use super::udp_users::{self, UdpUsers};
use crate::config::{InstanceConfig, IpArg, Ipv4Net, check_host_addr, is_unicast};
use crate::fireengine::ip::mib::IpMib;
use crate::link::Link;
use crate::stack::{
    AddrInfo, EchoReply, IpStack, NetError, PingId, RouteInfo, ServiceStats, TcpEndpoint, TcpId, TcpStatus, UdpEndpoint,
    UdpId,
};
use crate::stats::{Counters, StackStats, add, bump};

/// Addresses per instance (smoltcp's `iface-max-addr-count`).
pub const MAX_ADDRS: usize = 4;
/// Static routes per instance (smoltcp's `iface-max-route-count`).
pub const MAX_ROUTES: usize = 16;
/// Smallest IP MTU accepted from a link.
pub const MIN_MTU: usize = 576;
/// Largest IP MTU accepted from a link.
pub const MAX_MTU: usize = 9216;
/// Largest frame accepted when the NIC merged segments (large receive),
/// and the largest reassembled datagram.
const LARGE_FRAME: usize = 65535 + ETH_HDR;
/// Egress rounds one attempt to finish a fragmented datagram may take
/// before a received frame is handed to smoltcp.
const FLUSH_ROUNDS: usize = 64;
/// The counters of the IPv4 MIB a smoltcp instance keeps (reassembly and
/// fragmentation), in illumos' order. Nothing larger than
/// [`MAX_TX_DATAGRAM`] is handed to smoltcp to send (users' datagrams are
/// refused, the UDP echo service refuses to answer them), except the
/// reply to an echo request that came in fragments: such a request is not
/// answered, and counted in `ipFragFails`.
const IP_MIB_FIELDS: [&str; 9] = [
    "ipReasmTimeout",
    "ipReasmReqds",
    "ipReasmOKs",
    "ipReasmFails",
    "ipReasmDuplicates",
    "ipReasmPartDups",
    "ipFragOKs",
    "ipFragFails",
    "ipFragCreates",
];

/// Whether `frame` (validated) carries an ICMP echo request.
fn is_echo_request(frame: &[u8]) -> bool {
    let Some(ip) = frame.get(ETH_HDR..) else { return false };
    let hlen = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
    frame[12..14] == [0x08, 0x00] && ip.get(9) == Some(&1) && ip.get(hlen) == Some(&8)
}

/// An IP stack instance on smoltcp. See the module documentation.
pub struct IpInstance {
    link: Arc<dyn Link>,
    mac: EthernetAddress,
    frame_max: usize,
    rx_budget: usize,
    tx_rounds: usize,
    rxq: ArrayQueue<Mblk>,
    counters: Counters,
    /// Reassembly and fragmentation counters.
    ip_mib: IpMib,
    /// A datagram is part-way out in fragments ([`FragGate`]).
    frag_busy: AtomicBool,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Boxed: smoltcp keeps its fragmentation buffer inside.
    iface: Box<Interface>,
    sockets: SocketSet<'static>,
    addrs: Vec<AddrInfo>,
    routes: Vec<RouteInfo>,
    services: Services,
    requesters: Requesters,
    clients: Clients,
    udp_users: UdpUsers,
    reass: Reassembly,
    /// Linearization and copy buffer (one large frame).
    scratch: Vec<u8>,
}

impl IpInstance {
    /// An instance over `link`, with no address yet and the services of
    /// `cfg` listening. Fails with [`NetError::BadLink`] if the link's MAC
    /// address is not unicast or its MTU is outside
    /// [`MIN_MTU`]`..=`[`MAX_MTU`].
    pub fn new(link: Arc<dyn Link>, cfg: InstanceConfig) -> Result<IpInstance, NetError> {
        let mac = EthernetAddress(link.mac_addr());
        let mtu = link.mtu();
        if !mac.is_unicast() || !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(NetError::BadLink);
        }
        let frame_max = mtu + ETH_HDR;
        let counters = Counters::default();
        let ip_mib = IpMib::new();
        let frag_busy = AtomicBool::new(false);
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = cfg.random_seed;
        let iface = {
            let gate = FragGate { busy: &frag_busy, mib: &ip_mib };
            let mut dev = SmolDevice::new(None, &*link, &counters, frame_max, gate);
            Box::new(Interface::new(config, &mut dev, Instant::ZERO))
        };
        let mut sockets = SocketSet::new(Vec::new());
        let services = Services::new(&cfg.services, &mut sockets);
        let requesters = Requesters::new((cfg.random_seed >> 17) as u16 | 1, mtu - 28);
        let clients = Clients::new(cfg.random_seed.rotate_right(29));
        let udp_users = UdpUsers::new(cfg.random_seed.rotate_right(41));
        Ok(IpInstance {
            link,
            mac,
            frame_max,
            rx_budget: cfg.rx_budget.max(1),
            tx_rounds: cfg.tx_rounds.max(1),
            rxq: ArrayQueue::new(cfg.rx_queue_len.max(1)),
            counters,
            ip_mib,
            frag_busy,
            inner: Mutex::new(Inner {
                iface,
                sockets,
                addrs: Vec::new(),
                routes: Vec::new(),
                services,
                requesters,
                clients,
                udp_users,
                reass: Reassembly::default(),
                scratch: vec![0u8; LARGE_FRAME],
            }),
        })
    }

    /// Applies the kernel argument `ip=`: address object `LINK/v4` and, if
    /// given, the default route.
    pub fn configure(&self, arg: &IpArg) -> Result<(), NetError> {
        let name = alloc::format!("{}/v4", self.link.name());
        self.add_addr(&name, arg.addr)?;
        if let Some(gw) = arg.gateway {
            self.add_route(Ipv4Net::DEFAULT, gw)?;
        }
        Ok(())
    }

    fn gate(&self) -> FragGate<'_> {
        FragGate { busy: &self.frag_busy, mib: &self.ip_mib }
    }

    fn count_drop(&self, why: Drop) {
        bump(match why {
            Drop::Malformed => &self.counters.rx_malformed,
            Drop::BadCksum => &self.counters.rx_bad_cksum,
            Drop::Oversize => &self.counters.rx_oversize,
            Drop::UnknownProto => &self.counters.rx_unknown_proto,
            Drop::NotMine => &self.counters.rx_not_mine,
            Drop::Fragment => &self.counters.rx_fragments,
        })
    }

    /// Payload bytes held by reassembly now.
    pub fn reass_bytes(&self) -> usize {
        self.inner.lock().reass.bytes_held()
    }

    /// Validates one frame, reassembles it if it is a fragment, and hands
    /// it to smoltcp.
    fn ingress(&self, inner: &mut Inner, now: Instant, m: &Mblk) {
        let total = m.total_len();
        let frame_max = if m.meta.gso.is_some() { LARGE_FRAME } else { self.frame_max };
        if total > frame_max {
            bump(&self.counters.rx_oversize);
            return;
        }
        let frame: &[u8] = if m.cont.is_none() {
            m.data()
        } else {
            let n = m.copy_to(&mut inner.scratch[..total]);
            &inner.scratch[..n]
        };
        let info = match rxcheck::check(frame, m.meta.cksum == Cksum::Verified, frame_max, self.mac) {
            Err(why) => return self.count_drop(why),
            Ok(info) => info,
        };
        if let Some(src) = info.src
            && inner.addrs.iter().any(|a| a.net.prefix() <= 30 && a.net.broadcast() == src)
        {
            // A subnet's broadcast address sends nothing (a martian, as
            // illumos calls it); answering would broadcast the answer.
            return bump(&self.counters.rx_malformed);
        }
        if !info.fragment {
            let Inner { iface, sockets, services, clients, .. } = inner;
            return self.deliver(iface, sockets, services, clients, now, frame, info);
        }
        let now_ms = now.total_millis().max(0) as u64;
        let whole = match inner.reass.input(frame, now_ms, &self.ip_mib) {
            Ok(Some(whole)) => whole,
            Ok(None) => return,
            Err(Refused) => return bump(&self.counters.rx_fragments),
        };
        // The datagram's transport header and checksum, checked now.
        match rxcheck::check(&whole, false, LARGE_FRAME, self.mac) {
            Ok(_) if is_echo_request(&whole) && whole.len() - ETH_HDR > MAX_TX_DATAGRAM => {
                // smoltcp would build the reply and drop it unseen: it
                // cannot be fragmented (illumos counts that so too).
                bump(&self.ip_mib.ip_frag_fails);
            }
            Ok(info) if !info.fragment => {
                let Inner { iface, sockets, services, clients, .. } = inner;
                self.deliver(iface, sockets, services, clients, now, &whole, info);
            }
            Ok(_) => bump(&self.counters.rx_malformed),
            Err(why) => self.count_drop(why),
        }
    }

    /// Hands one validated, whole frame to smoltcp.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &self,
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        services: &mut Services,
        clients: &mut Clients,
        now: Instant,
        frame: &[u8],
        info: rxcheck::Info,
    ) {
        if let Some(syn) = info.syn
            && iface.has_ip_addr(IpAddress::Ipv4(syn.dst))
        {
            services.note_syn(sockets, &syn);
            services.shield(sockets, &syn);
        }
        let mut dev = SmolDevice::new(Some(frame), &*self.link, &self.counters, self.frame_max, self.gate());
        iface.poll_ingress_single(now, &mut dev, sockets);
        services.rearm(sockets);
        if !clients.is_empty() {
            clients.observe(sockets, now.total_micros().max(0) as u64);
        }
    }

    /// Up to `rounds` egress rounds, stopping early when one sent nothing
    /// (or, with `until_whole`, once no datagram is part-way out). Returns
    /// whether the link ran out of Tx buffers or was blocked.
    fn egress(&self, inner: &mut Inner, now: Instant, rounds: usize, until_whole: bool) -> bool {
        let mut exhausted = false;
        for _ in 0..rounds {
            if until_whole && !self.gate().busy() {
                break;
            }
            let before = (self.counters.tx_packets.load(Relaxed), self.counters.tx_nobuf.load(Relaxed));
            let mut dev = SmolDevice::new(None, &*self.link, &self.counters, self.frame_max, self.gate());
            let r = inner.iface.poll_egress(now, &mut dev, &mut inner.sockets);
            exhausted |= dev.tx_exhausted;
            let after = (self.counters.tx_packets.load(Relaxed), self.counters.tx_nobuf.load(Relaxed));
            // A round that only sent the next fragment reports no socket
            // change; it made progress all the same.
            if (r == PollResult::None && before == after) || dev.tx_exhausted {
                break;
            }
        }
        exhausted
    }

    fn sync_addrs(inner: &mut Inner) {
        let addrs = &inner.addrs;
        inner.iface.update_ip_addrs(|v| {
            v.clear();
            for a in addrs {
                let _ = v.push(IpCidr::Ipv4(Ipv4Cidr::new(a.net.addr(), a.net.prefix())));
            }
        });
    }

    fn sync_routes(inner: &mut Inner) {
        let routes = &inner.routes;
        inner.iface.routes_mut().update(|v| {
            v.clear();
            for r in routes {
                let _ = v.push(Route {
                    cidr: IpCidr::Ipv4(Ipv4Cidr::new(r.dest.network(), r.dest.prefix())),
                    via_router: IpAddress::Ipv4(r.gateway),
                    preferred_until: None,
                    expires_at: None,
                });
            }
        });
    }

    fn on_link(addrs: &[AddrInfo], a: Ipv4Addr) -> bool {
        addrs.iter().any(|x| x.net.contains(a) && x.net.addr() != a)
    }

    /// The source address for `dst`: the address of the subnet holding
    /// `dst`, else of the subnet holding the gateway of the most specific
    /// route to it. `None` if nothing reaches `dst`.
    fn source_for(inner: &Inner, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        let on = |a: Ipv4Addr| inner.addrs.iter().filter(|x| x.net.contains(a)).max_by_key(|x| x.net.prefix());
        if let Some(a) = on(dst) {
            return Some(a.net.addr());
        }
        let route = inner.routes.iter().filter(|r| r.dest.contains(dst)).max_by_key(|r| r.dest.prefix())?;
        on(route.gateway).map(|a| a.net.addr())
    }
}

impl IpStack for IpInstance {
    fn kind(&self) -> &'static str {
        "smol"
    }

    fn stack_kind(&self) -> crate::stack::StackKind {
        crate::stack::StackKind::Smoltcp
    }

    fn link(&self) -> &dyn Link {
        &*self.link
    }

    fn input(&self, m: Mblk) {
        bump(&self.counters.rx_packets);
        add(&self.counters.rx_bytes, m.total_len() as u64);
        if self.rxq.push(m).is_err() {
            bump(&self.counters.rx_queue_drops);
        }
    }

    fn poll_us(&self, now_us: u64) -> Option<u64> {
        let now = Instant::from_micros(i64::try_from(now_us).unwrap_or(i64::MAX));
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let mut exhausted = false;
        for _ in 0..self.rx_budget {
            if self.gate().busy() {
                // A reply to this frame must not overwrite the fragments
                // still to go.
                exhausted |= self.egress(inner, now, FLUSH_ROUNDS, true);
                if self.gate().busy() {
                    break;
                }
            }
            let Some(m) = self.rxq.pop() else { break };
            self.ingress(inner, now, &m);
        }
        inner.reass.expire(now.total_millis().max(0) as u64, &self.ip_mib);
        inner.requesters.collect(&mut inner.sockets, now_us);
        {
            let Inner { services, sockets, scratch, addrs, .. } = &mut *inner;
            services.run(sockets, scratch, &|a| addrs.iter().any(|x| x.net.addr() == a));
        }
        if !inner.clients.is_empty() {
            inner.clients.observe(&mut inner.sockets, now_us);
        }
        exhausted |= self.egress(inner, now, self.tx_rounds, false);
        // Frames held back behind a fragmented datagram that cannot leave
        // (no Tx buffers) wait for the retry below, not a busy loop.
        let held_back = exhausted && self.gate().busy();
        if !self.rxq.is_empty() && !held_back {
            return Some(0);
        }
        if !inner.clients.is_empty() {
            // Egress may have ended a connection (abort, TIME_WAIT expiry).
            inner.clients.observe(&mut inner.sockets, now_us);
        }
        let mut next = inner.iface.poll_delay(now, &inner.sockets).map(|d| d.total_micros());
        if let Some(d) = inner.clients.next_deadline_us() {
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        if exhausted {
            // Tx buffers come back as the device completes; retry soon.
            return Some(next.map_or(1000, |n| n.max(1000)));
        }
        next
    }

    fn rx_pending(&self) -> bool {
        !self.rxq.is_empty()
    }

    fn addrs(&self) -> Vec<AddrInfo> {
        self.inner.lock().addrs.clone()
    }

    fn add_addr(&self, name: &str, net: Ipv4Net) -> Result<(), NetError> {
        check_host_addr(net)?;
        let mut inner = self.inner.lock();
        if inner.addrs.iter().any(|a| a.name == name) {
            return Err(NetError::AddrObjExists);
        }
        if inner.addrs.iter().any(|a| a.net.addr() == net.addr()) {
            return Err(NetError::AddrInUse);
        }
        if inner.addrs.len() >= MAX_ADDRS {
            return Err(NetError::TooManyAddresses);
        }
        inner.addrs.push(AddrInfo { name: String::from(name), net });
        Self::sync_addrs(&mut inner);
        Ok(())
    }

    fn del_addr(&self, name: &str) -> Result<AddrInfo, NetError> {
        let mut inner = self.inner.lock();
        let i = inner.addrs.iter().position(|a| a.name == name).ok_or(NetError::NotFound)?;
        let gone = inner.addrs.remove(i);
        Self::sync_addrs(&mut inner);
        let Inner { addrs, routes, .. } = &mut *inner;
        routes.retain(|r| Self::on_link(addrs, r.gateway));
        Self::sync_routes(&mut inner);
        Ok(gone)
    }

    fn routes(&self) -> Vec<RouteInfo> {
        self.inner.lock().routes.clone()
    }

    fn add_route(&self, dest: Ipv4Net, gateway: Ipv4Addr) -> Result<RouteInfo, NetError> {
        if !is_unicast(gateway) {
            return Err(NetError::InvalidAddress);
        }
        let mut inner = self.inner.lock();
        if inner.addrs.iter().any(|a| a.net.addr() == gateway) {
            return Err(NetError::InvalidArgument);
        }
        if !Self::on_link(&inner.addrs, gateway) {
            return Err(NetError::Unreachable);
        }
        let route = RouteInfo { dest: dest.trunc(), gateway, redirect: false };
        if inner.routes.iter().any(|r| r.dest == route.dest) {
            return Err(NetError::RouteExists);
        }
        if inner.routes.len() >= MAX_ROUTES {
            return Err(NetError::TooManyRoutes);
        }
        inner.routes.push(route);
        Self::sync_routes(&mut inner);
        Ok(route)
    }

    fn del_route(&self, dest: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<RouteInfo, NetError> {
        let dest = dest.trunc();
        let mut inner = self.inner.lock();
        let i = inner
            .routes
            .iter()
            .position(|r| r.dest == dest && gateway.is_none_or(|g| g == r.gateway))
            .ok_or(NetError::RouteNotFound)?;
        let gone = inner.routes.remove(i);
        Self::sync_routes(&mut inner);
        Ok(gone)
    }

    fn ping_open(&self) -> Result<PingId, NetError> {
        let mut inner = self.inner.lock();
        let Inner { sockets, requesters, .. } = &mut *inner;
        requesters.open(sockets)
    }

    fn ping_send(&self, id: PingId, dst: Ipv4Addr, seq: u16, data: &[u8]) -> Result<(), NetError> {
        let mut inner = self.inner.lock();
        let Inner { sockets, requesters, .. } = &mut *inner;
        requesters.send(sockets, id, dst, seq, data)
    }

    fn ping_recv(&self, id: PingId) -> Option<EchoReply> {
        self.inner.lock().requesters.recv(id)
    }

    fn ping_close(&self, id: PingId) {
        let mut inner = self.inner.lock();
        let Inner { sockets, requesters, .. } = &mut *inner;
        requesters.close(sockets, id);
    }

    fn tcp_connect(&self, dst: Ipv4Addr, port: u16) -> Result<TcpId, NetError> {
        let mut inner = self.inner.lock();
        let own = inner.addrs.iter().any(|a| a.net.addr() == dst);
        if !is_unicast(dst) || inner.addrs.iter().any(|a| a.net.prefix() <= 30 && a.net.broadcast() == dst && !own) {
            return Err(NetError::InvalidAddress);
        }
        if own {
            // No loopback.
            return Err(NetError::Unreachable);
        }
        let src = Self::source_for(&inner, dst).ok_or(NetError::Unreachable)?;
        let Inner { iface, sockets, clients, .. } = &mut *inner;
        clients.connect(iface.context(), sockets, src, dst, port)
    }

    fn tcp_send(&self, id: TcpId, data: &[u8]) -> Result<usize, NetError> {
        let mut inner = self.inner.lock();
        let Inner { sockets, clients, .. } = &mut *inner;
        clients.send(sockets, id, data)
    }

    fn tcp_recv(&self, id: TcpId, buf: &mut [u8]) -> Result<usize, NetError> {
        let mut inner = self.inner.lock();
        let Inner { sockets, clients, .. } = &mut *inner;
        clients.recv(sockets, id, buf)
    }

    fn tcp_shutdown(&self, id: TcpId) -> Result<(), NetError> {
        let mut inner = self.inner.lock();
        let Inner { sockets, clients, .. } = &mut *inner;
        clients.shutdown(sockets, id)
    }

    fn tcp_status(&self, id: TcpId) -> Result<TcpStatus, NetError> {
        let inner = self.inner.lock();
        inner.clients.status(&inner.sockets, id)
    }

    fn tcp_close(&self, id: TcpId) {
        let mut inner = self.inner.lock();
        let Inner { sockets, clients, .. } = &mut *inner;
        clients.close(sockets, id);
    }

    fn tcp_list(&self) -> Vec<(TcpId, TcpStatus)> {
        let inner = self.inner.lock();
        inner.clients.list(&inner.sockets)
    }

    fn udp_open(&self, port: u16) -> Result<UdpId, NetError> {
        let mut inner = self.inner.lock();
        let Inner { sockets, udp_users, .. } = &mut *inner;
        udp_users.open(sockets, port)
    }

    fn udp_send_to(&self, id: UdpId, to: SocketAddrV4, data: &[u8]) -> Result<(), NetError> {
        let mut inner = self.inner.lock();
        let dst = *to.ip();
        let own = inner.addrs.iter().any(|a| a.net.addr() == dst);
        if inner.addrs.iter().any(|a| a.net.prefix() <= 30 && a.net.broadcast() == dst && !own) {
            return Err(NetError::InvalidAddress);
        }
        let src = Self::source_for(&inner, dst);
        let Inner { sockets, udp_users, .. } = &mut *inner;
        udp_users.send_to(sockets, id, src, own, to, data)
    }

    fn udp_recv_from(&self, id: UdpId, buf: &mut [u8]) -> Result<Option<(SocketAddrV4, usize)>, NetError> {
        let mut inner = self.inner.lock();
        let Inner { sockets, udp_users, .. } = &mut *inner;
        udp_users.recv_from(sockets, id, buf)
    }

    fn udp_close(&self, id: UdpId) {
        let mut inner = self.inner.lock();
        let Inner { sockets, udp_users, .. } = &mut *inner;
        udp_users.close(sockets, id);
    }

    fn udp_endpoints(&self) -> Vec<UdpEndpoint> {
        udp_users::endpoints(&self.inner.lock().sockets)
    }

    fn tcp_endpoints(&self) -> Vec<TcpEndpoint> {
        super::tcp_endpoints::endpoints(&self.inner.lock().sockets)
    }

    fn stats(&self) -> StackStats {
        self.counters.snapshot()
    }

    fn service_stats(&self) -> Vec<ServiceStats> {
        self.inner.lock().services.stats()
    }

    fn mib(&self) -> Vec<(&'static str, Vec<(&'static str, u64)>)> {
        let ip = self.ip_mib.fields().filter(|(n, _)| IP_MIB_FIELDS.contains(n)).collect();
        alloc::vec![("IPv4", ip)]
    }
}
