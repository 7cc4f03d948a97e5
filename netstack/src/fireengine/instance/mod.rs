//! A FireEngine IP stack instance over one [`Link`]: what ties the rooms
//! together and implements [`IpStack`].
//!
//! The receive path is inline: [`IpStack::input`] runs on the CPU of the
//! soft ring that delivers the packet. Ethernet → ARP (the neighbour
//! cache) or IPv4 ([`super::ip::input::validate`], then
//! [`super::ip::reass`] for fragments) → ICMP (echo answered right there,
//! errors handed to the UDP or TCP conn they are about) or UDP: the classifier finds
//! the conn and the packet enters that conn's squeue
//! ([`super::squeue`]): processed by this thread if the squeue is free,
//! queued otherwise. A datagram to a closed port draws a (rate-limited)
//! ICMP port unreachable.
//!
//! Sending from a socket enters the conn's squeue too (`tcp_squeue_wput`
//! decides whether the sender drains others' work); output looks up the
//! route, resolves the next hop (packets wait in the neighbour cache's
//! bounded queue while it resolves), fragments to the link's MTU, and
//! hands the frames to the link. No lock of the instance is held while a
//! frame goes to the link: a frame switched to another instance on the
//! same CPU may come straight back into `input`.
//!
//! The loopback (`lo0`, 127.0.0.1/8, in every instance): a datagram to
//! 127/8 or to one of the instance's own addresses in use never reaches
//! the link. Output hands it straight back to IP input on the sending
//! thread (illumos `ire_send_local_v4`), with its transport checksum left
//! as verified; the entries it makes for conns' squeues follow the usual
//! rules (a squeue the thread is inside already queues them), so the
//! recursion is at most one receive deep. Loopback TCP conns have the
//! loopback's MSS and may be fused ([`fusion`]).
//!
//! The instance thread ([`IpStack::poll_us`]) only runs timers: ARP
//! retransmits and expiry, reassembly time-outs.

mod fusion;
mod lso;
mod tcp;
mod tcp_svc;
mod http_svc;
mod svc_admin;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};

use arbalest_mac::sync::{Mutex, RwLock};
use arbalest_mac::{Cksum, Mblk};

use super::icmp::{self, ErrRateLimiter, ErrorFlags, IcmpErrorKind, IcmpInput};
use super::ip::frag;
use super::ip::input::{self as ipin, DstKind};
use super::ip::mib::{IcmpMib, IpMib, TcpMib, UdpMib, bump, bump_by};
use super::tcp::challenge::ChallengeLimiter;
use super::tcp_conn::isn::IsnGenerator;
use super::tcp_conn::syncookie::{SynCookieConfig, SynCookies};
use super::tcp_pcb::{TcpPcb, TcpSocket};
use super::ip::reass::{ReassOutcome, Reassembler};
use super::arp::{AddrState, ArpActions, BROADCAST_MAC, ArpConfig, NeighbourCache, NeighbourState, Resolution};
use super::route::{NextHop, RouteTable};
use super::wire::arp::ArpPacket;
use super::classifier::{Classifier, ClassifierConfig};
use super::conn::ConnRef;
use super::sock::Datagram;
use super::socket::{SockHost, SockType, Socket};
use super::udp::{self, CachedRoute, UdpConn, UdpHost, UdpPcb, UdpSocket};
use super::squeue::{SqCtx, SqEntry, SqEnv, SqMode, SquedSet};
use super::tunables::Tunables;
use super::wire::ipv4::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4Header};
use super::wire::udp::{UdpError, UdpHeader};
use crate::config::{Ipv4Net, check_host_addr, is_unicast};
use crate::link::Link;
use crate::stack::{
    AddrInfo, EchoReply, IpStack, Neighbour, NetError, PingId, Proto, RouteInfo, ServiceStats, StackKind, TcpId, TcpStatus,
    UdpEndpoint, UdpId,
};
use crate::stats::{Counters, StackStats, add};

/// Ethernet header length.
const ETH_HDR: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
/// An IPv4 header without options (what FireEngine sends).
const IPV4_HDR_MIN: usize = 20;
const ETHERTYPE_ARP: u16 = 0x0806;
/// The all-hosts group, the one multicast address a host receives
/// without joining (RFC 1112).
const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// Addresses per instance.
pub const MAX_ADDRS: usize = 8;
/// Routes per instance (interface routes included).
pub const MAX_ROUTES: usize = 10_000;
/// Host routes learnt from redirects per instance (the oldest gives way).
pub const MAX_REDIRECTS: usize = 256;
/// How long a redirect's route lives (illumos `ip_ire_redirect_interval`).
pub const REDIRECT_LIFETIME_MS: u64 = 60_000;
/// Buckets of IP identification counters.
const IP_ID_BUCKETS: usize = 64;

/// 16 key bytes from the instance's seed.
fn seed_bytes(seed: u64) -> [u8; 16] {
    let a = mix(seed ^ 0x243f_6a88_85a3_08d3).to_le_bytes();
    let b = mix(seed.rotate_left(31) ^ 0x1319_8a2e_0370_7344).to_le_bytes();
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a);
    k[8..].copy_from_slice(&b);
    k
}

/// A 64-bit mixer (SplitMix64's finalizer).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// TCP connections of local users (the shell's tools) per instance.
pub const MAX_USER_TCP: usize = 64;

/// A user connection as [`IpStack::tcp_status`] reports it.
fn tcp_status_of(s: &TcpSocket) -> TcpStatus {
    use super::tcp::state::State as S;
    use crate::stack::TcpState as T;
    let state = match (s.state(), s.error()) {
        (_, Some(NetError::ConnectionRefused)) => T::Refused,
        (_, Some(_)) => T::Reset,
        (S::SynSent | S::SynRcvd | S::Listen, None) => T::SynSent,
        (S::Established, None) => T::Established,
        (S::FinWait1, None) => T::FinWait1,
        (S::FinWait2, None) => T::FinWait2,
        (S::Closing, None) => T::Closing,
        (S::TimeWait, None) => T::TimeWait,
        (S::CloseWait, None) => T::CloseWait,
        (S::LastAck, None) => T::LastAck,
        (S::Closed, None) => T::Closed,
    };
    TcpStatus {
        state,
        local: s.local(),
        remote: s.peer().unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        unacked: s.unacked(),
        readable: s.readable(),
        closing_in_background: false,
    }
}

/// Echo requesters per instance.
pub const MAX_REQUESTERS: usize = 8;
/// UDP sockets of local users (the shell's tools) per instance.
pub const MAX_USER_UDP: usize = 8;
/// Replies kept per requester until read (besides the ICMP `recv_buf`
/// bytes bound).
const MAX_REPLIES: usize = 64;
/// UDP echo service port.
const ECHO_PORT: u16 = 7;
/// UDP discard service port.
const DISCARD_PORT: u16 = 9;
/// Smallest and largest link MTU accepted.
const MIN_MTU: usize = 576;
const MAX_MTU: usize = 9216;
/// The loopback's MTU, illumos' `lo0`'s: a loopback conn's MSS (8192)
/// stays well below `send_buf`, so that Nagle never holds a partial
/// segment waiting for a delayed ACK (with Linux's 64 KiB MTU a 48 KiB
/// send buffer sends stop-and-wait).
pub const LO_MTU: usize = 8232;

/// The squeue entries of FireEngine: an operation on a conn. Each holds
/// a reference to the conn and to its instance until it has run.
pub enum FeEntry {
    /// A datagram for a UDP conn: queue it for reading.
    UdpDeliver { core: Arc<Core>, conn: ConnRef<UdpPcb>, dgram: Datagram },
    /// A datagram a UDP conn sends.
    UdpSend { core: Arc<Core>, conn: ConnRef<UdpPcb>, to: SocketAddrV4, data: Vec<u8> },
    /// An ICMP error about what a connected UDP conn sent.
    UdpError { conn: ConnRef<UdpPcb>, err: NetError },
    /// A TCP operation ([`tcp::TcpEntry`]).
    Tcp { core: Arc<Core>, e: tcp::TcpEntry },
}

impl SqEntry for FeEntry {
    fn process(self, ctx: &mut SqCtx<'_, Self>) {
        match self {
            FeEntry::UdpDeliver { core, conn, dgram } => {
                debug_assert_eq!(conn.sqp(), ctx.squeue_id(), "a conn's packet in another squeue");
                udp::deliver(&conn, dgram, &core.udp_mib);
            }
            FeEntry::UdpSend { core, conn, to, data } => {
                debug_assert_eq!(conn.sqp(), ctx.squeue_id(), "a conn's packet in another squeue");
                core.udp_output(&conn, to, &data);
            }
            FeEntry::UdpError { conn, err } => {
                debug_assert_eq!(conn.sqp(), ctx.squeue_id(), "a conn's error in another squeue");
                udp::report_error(&conn, err);
            }
            FeEntry::Tcp { core, e } => e.process(&core),
        }
    }
}

/// What the instances share: the system's squeue set and the kernel's
/// squeue environment.
pub struct FeSystem {
    /// One squeue per CPU.
    pub squeues: SquedSet<FeEntry>,
    /// The clock, the CPU, the workers.
    pub env: Arc<dyn SqEnv + Send + Sync>,
    /// The sizes of each instance's classifier tables.
    pub classifier: ClassifierConfig,
    /// The protocol properties and `ndd` variables, shared by every
    /// instance (the squeue tunables among them).
    pub tunables: Arc<Tunables>,
}

impl FeSystem {
    /// A system of `cpus` squeues over `env`, with classifier tables
    /// sized for a machine of `mem_bytes` of (heap) memory.
    pub fn new(cpus: u32, env: Arc<dyn SqEnv + Send + Sync>, mem_bytes: u64) -> Arc<FeSystem> {
        let tunables = Arc::new(Tunables::default());
        Arc::new(FeSystem {
            squeues: SquedSet::with_config(cpus, super::squeue::SQ_DEFAULT_CAPACITY, tunables.squeue.clone()),
            env,
            classifier: ClassifierConfig::from_memory(mem_bytes),
            tunables,
        })
    }

    /// What squeue `id`'s worker does when woken.
    pub fn worker_drain(&self, id: u32) {
        if let Some(sq) = self.squeues.for_cpu(id) {
            sq.worker_drain(&*self.env);
        }
    }
}

/// The UDP echo service's counters.
#[derive(Default)]
struct EchoCounters {
    received: core::sync::atomic::AtomicU64,
    refused: core::sync::atomic::AtomicU64,
    bytes: core::sync::atomic::AtomicU64,
}

struct Requester {
    ident: u16,
    replies: VecDeque<EchoReply>,
}

/// The instance's shared state (what conns point back to).
pub struct Core {
    link: Arc<dyn Link>,
    mac: [u8; 6],
    mtu: usize,
    sys: Arc<FeSystem>,
    addrs: RwLock<Vec<AddrInfo>>,
    /// The addresses in use: past duplicate-address detection.
    usable: RwLock<Vec<Ipv4Net>>,
    /// Interface routes (one per address's subnet) and static routes.
    routes: RwLock<RouteTable>,
    /// Static routes as the user gave them, in order.
    static_routes: Mutex<Vec<RouteInfo>>,
    /// Host routes learnt from ICMP redirects, with when each ages out
    /// (ms), at most [`MAX_REDIRECTS`].
    redirects: Mutex<Vec<(RouteInfo, u64)>>,
    neigh: Mutex<NeighbourCache>,
    reass: Mutex<Reassembler>,
    icmp_limiter: Mutex<ErrRateLimiter>,
    /// The IP classifier: the instance's conns.
    classifier: Classifier<UdpPcb>,
    /// Serializes binds (the port check and the insert).
    bind_lock: Mutex<()>,
    /// This instance, for the sockets and squeue entries it hands out.
    me: Weak<Core>,
    requesters: Mutex<Vec<Requester>>,
    next_ident: AtomicU16,
    next_port: AtomicU16,
    /// IP identification counters, one per bucket of destinations
    /// (RFC 7739 4.3): each starts at a random value and a destination
    /// sees only its bucket's sequence, so others' traffic cannot be
    /// counted from the ids it gets, nor the next id of a datagram to
    /// someone else guessed.
    ip_ids: [AtomicU16; IP_ID_BUCKETS],
    /// Keys the bucket of a destination.
    ip_id_key: u64,
    /// The routing table's generation, readable without its lock (conns
    /// compare their cached route's against it).
    route_gen: AtomicU64,
    /// Sends that reused a conn's cached route.
    route_cache_hits: AtomicU64,
    counters: Counters,
    ip_mib: IpMib,
    icmp_mib: IcmpMib,
    udp_mib: UdpMib,
    echo: EchoCounters,
    /// The shell's UDP sockets.
    user_udp: Mutex<Vec<(u32, Arc<Socket>)>>,
    next_udp_id: AtomicU32,
    /// The echo (7) and discard (9) services' sockets.
    services: Mutex<Vec<Arc<Socket>>>,
    /// The TCP conns (a table of their own, as illumos' TCP fanouts).
    tcp_classifier: Classifier<TcpPcb>,
    tcp_mib: TcpMib,
    /// Path MTUs learnt from validated "fragmentation needed" errors.
    pmtu: Mutex<super::ip::pmtu::PmtuCache>,
    tcp_challenge: ChallengeLimiter,
    /// RSTs for segments that find no conn (`_rst_sent_rate` a second).
    tcp_rst_limit: ChallengeLimiter,
    tcp_isn: IsnGenerator,
    /// SYN cookies for listeners whose q0 is full (a key of their own).
    tcp_cookies: SynCookies,
    /// Cookies that made a conn lately (a late copy makes none).
    tcp_cookie_replay: Mutex<crate::fireengine::tcp_conn::cookie_replay::CookieReplay>,
    /// The TCP services' listeners and their connections.
    tcp_services: Mutex<Vec<(tcp_svc::SvcKind, TcpSocket, Arc<tcp_svc::SvcCounters>)>>,
    tcp_service_conns: Mutex<Vec<Arc<tcp_svc::TcpService>>>,
    /// The shell's TCP connections.
    user_tcp: Mutex<Vec<(u32, Arc<TcpSocket>)>>,
    next_tcp_id: AtomicU32,
    discard: EchoCounters,
    /// `svcs`/`svcadm`'s state, the HTTP service's included.
    svc: svc_admin::SvcState,
}

/// A FireEngine instance. See the module documentation.
pub struct FeInstance {
    core: Arc<Core>,
}

impl FeInstance {
    /// An instance over `link` in `sys`, with no address yet and the UDP
    /// echo service on port 7. [`NetError::BadLink`] if the link's MAC
    /// address is not unicast or its MTU is out of range.
    pub fn new(link: Arc<dyn Link>, sys: Arc<FeSystem>, seed: u64) -> Result<FeInstance, NetError> {
        let mac = link.mac_addr();
        let mtu = link.mtu();
        if mac[0] & 1 != 0 || mac == [0; 6] || !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(NetError::BadLink);
        }
        let sys_classifier = sys.classifier;
        let core = Arc::new_cyclic(|me| Core {
            me: me.clone(),
            classifier: Classifier::new(sys.classifier),
            bind_lock: Mutex::new(()),
            link,
            mac,
            mtu,
            sys,
            addrs: RwLock::new(Vec::new()),
            usable: RwLock::new(Vec::new()),
            routes: RwLock::new(RouteTable::new(MAX_ROUTES)),
            static_routes: Mutex::new(Vec::new()),
            redirects: Mutex::new(Vec::new()),
            neigh: Mutex::new(NeighbourCache::new(mac, ArpConfig::default())),
            reass: Mutex::new(Reassembler::default()),
            icmp_limiter: Mutex::new(ErrRateLimiter::default()),
            requesters: Mutex::new(Vec::new()),
            next_ident: AtomicU16::new((seed >> 17) as u16 | 1),
            next_port: AtomicU16::new(32768 + (seed as u16 % 16384)),
            ip_ids: core::array::from_fn(|i| AtomicU16::new(mix(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) as u16)),
            ip_id_key: mix(seed.rotate_left(23) ^ 0x5bd1_e995),
            route_gen: AtomicU64::new(0),
            route_cache_hits: AtomicU64::new(0),
            counters: Counters::default(),
            ip_mib: IpMib::new(),
            icmp_mib: IcmpMib::new(),
            udp_mib: UdpMib::new(),
            echo: EchoCounters::default(),
            user_udp: Mutex::new(Vec::new()),
            next_udp_id: AtomicU32::new(1),
            services: Mutex::new(Vec::new()),
            discard: EchoCounters::default(),
            tcp_classifier: Classifier::new(sys_classifier),
            tcp_mib: TcpMib::new(),
            pmtu: Mutex::new(super::ip::pmtu::PmtuCache::new()),
            tcp_challenge: ChallengeLimiter::new(1000),
            tcp_rst_limit: ChallengeLimiter::new(40),
            tcp_isn: IsnGenerator::new(seed_bytes(seed)),
            tcp_cookies: SynCookies::new(seed_bytes(mix(seed ^ 0x5ca1_ab1e_c00c_1e5e)), SynCookieConfig::default()),
            tcp_cookie_replay: Mutex::new(Default::default()),
            tcp_services: Mutex::new(Vec::new()),
            tcp_service_conns: Mutex::new(Vec::new()),
            user_tcp: Mutex::new(Vec::new()),
            next_tcp_id: AtomicU32::new(1),
            svc: Default::default(),
        });
        let inst = FeInstance { core };
        inst.start_echo()?;
        inst.start_discard()?;
        for k in [tcp_svc::SvcKind::Echo, tcp_svc::SvcKind::Discard, tcp_svc::SvcKind::Chargen] {
            inst.core.start_tcp_service(k)?;
        }
        Ok(inst)
    }

    /// Opens a UDP socket bound to `0.0.0.0:port` (0: an anonymous port
    /// from `smallest_anon_port`..=`largest_anon_port`).
    pub fn udp_open(&self, port: u16) -> Result<UdpSocket, NetError> {
        self.udp_bind(Ipv4Addr::UNSPECIFIED, port)
    }

    /// Opens a UDP socket bound to `laddr:port` (`laddr` one of the
    /// instance's addresses or `0.0.0.0`).
    pub fn udp_bind(&self, laddr: Ipv4Addr, port: u16) -> Result<UdpSocket, NetError> {
        self.core.udp_bind(laddr, port)
    }

    /// `socket(AF_INET, ty, 0)` on this instance: the socket calls every
    /// service and tool uses ([`super::socket`]).
    pub fn socket(&self, ty: SockType) -> Socket {
        let host: Weak<dyn SockHost> = self.core.me.clone();
        Socket::new(host, ty)
    }

    /// A TCP listener on `laddr:port` (`0.0.0.0`: every address) with
    /// `backlog`: the handle services use.
    pub fn tcp_listen(&self, laddr: Ipv4Addr, port: u16, backlog: i64) -> Result<TcpSocket, NetError> {
        self.core.tcp_listen(laddr, port, backlog)
    }

    /// An active TCP open to `dst:port` (the SYN goes at once).
    pub fn tcp_open(&self, dst: Ipv4Addr, port: u16) -> Result<TcpSocket, NetError> {
        self.core.tcp_open(dst, port)
    }

    /// The instance's UDP endpoints (`netstat -an`).
    pub fn udp_endpoints(&self) -> Vec<UdpEndpoint> {
        udp::endpoints(&self.core.classifier)
    }

    /// The classifier's counters.
    pub fn classifier_stats(&self) -> super::classifier::ClassifierStats {
        self.core.classifier.stats()
    }

    /// The UDP echo service: answers every datagram to port 7 with the
    /// same bytes, from its upcall (inside the squeue).
    fn start_echo(&self) -> Result<(), NetError> {
        let sock = self.service_socket(ECHO_PORT)?;
        let weak = Arc::downgrade(&sock);
        let me = self.core.me.clone();
        sock.set_upcall(Some(Arc::new(move || {
            let (Some(sock), Some(core)) = (weak.upgrade(), me.upgrade()) else { return };
            while let Ok(Some(d)) = sock.recv_datagram() {
                core.echo.received.fetch_add(1, Ordering::Relaxed);
                // Never answer another service's port (two echo services
                // would bounce a datagram forever), port 0, or a source
                // that is no host (0.0.0.0 asking through broadcast).
                if matches!(d.from.port(), 0 | 7 | 9 | 13 | 19 | 37)
                    || !(crate::config::is_unicast(*d.from.ip()) || d.from.ip().is_loopback())
                {
                    core.echo.refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                core.echo.bytes.fetch_add(d.data.len() as u64, Ordering::Relaxed);
                // Inside the squeue: queued behind this entry, sent in the
                // same drain.
                if sock.send_vec(d.from, d.data).is_err() {
                    core.echo.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        })));
        self.core.services.lock().push(sock);
        Ok(())
    }

    /// The UDP discard service: reads and counts every datagram to port 9.
    fn start_discard(&self) -> Result<(), NetError> {
        let sock = self.service_socket(DISCARD_PORT)?;
        let weak = Arc::downgrade(&sock);
        let me = self.core.me.clone();
        sock.set_upcall(Some(Arc::new(move || {
            let (Some(sock), Some(core)) = (weak.upgrade(), me.upgrade()) else { return };
            while let Ok(Some(d)) = sock.recv_datagram() {
                core.discard.received.fetch_add(1, Ordering::Relaxed);
                core.discard.bytes.fetch_add(d.data.len() as u64, Ordering::Relaxed);
            }
        })));
        self.core.services.lock().push(sock);
        Ok(())
    }

    /// A user's socket (the shell's tools) by its id.
    fn user_tcp_sock(&self, id: TcpId) -> Result<Arc<TcpSocket>, NetError> {
        self.core.user_tcp.lock().iter().find(|(i, _)| *i == id.0).map(|(_, s)| s.clone()).ok_or(NetError::NotConnected)
    }

    fn user_socket(&self, id: UdpId) -> Result<Arc<Socket>, NetError> {
        let v = self.core.user_udp.lock();
        v.iter().find(|(i, _)| *i == id.0).map(|(_, s)| s.clone()).ok_or(NetError::NotFound)
    }

    /// A datagram socket bound to `0.0.0.0:port`, for a service.
    fn service_socket(&self, port: u16) -> Result<Arc<Socket>, NetError> {
        let sock = Arc::new(self.socket(SockType::Dgram));
        sock.bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
        Ok(sock)
    }

    /// The instance's MIBs for `netstat -s`: (section, counters).
    pub fn mib(&self) -> Vec<(&'static str, Vec<(&'static str, u64)>)> {
        let c = &self.core;
        // ipDefaultTTL is a value: the current `ttl` property.
        c.ip_mib.ip_default_ttl.store(u64::from(c.sys.tunables.ttl()), Ordering::Relaxed);
        alloc::vec![
            ("UDP", c.udp_mib.fields().collect()),
            ("IPv4", c.ip_mib.fields().collect()),
            ("ICMPv4", c.icmp_mib.fields().collect()),
            ("TCP", c.tcp_mib.fields().collect()),
        ]
    }

    /// Sends that reused a conn's cached route (no routing lookup).
    pub fn route_cache_hits(&self) -> u64 {
        self.core.route_cache_hits.load(Ordering::Relaxed)
    }

    /// Bytes held by reassembly now.
    pub fn reass_bytes(&self) -> usize {
        self.core.reass.lock().bytes_held()
    }
}

/// An instance going away closes every conn still in its classifier (the
/// services', and any socket a user still holds): each leaves its table and
/// its squeue's conn count here, because a socket dropped later can no
/// longer reach this instance to do it.
impl Drop for Core {
    fn drop(&mut self) {
        self.unhash_all(&self.classifier);
        self.unhash_all(&self.tcp_classifier);
    }
}

impl Core {
    /// Takes `conn` out of `cl` and, if it was there, off its squeue's
    /// count; true if it was there.
    fn unhash<P: Send + Sync>(&self, cl: &Classifier<P>, conn: &ConnRef<P>) -> bool {
        let was = cl.remove(conn);
        if was && let Some(sq) = self.sys.squeues.for_cpu(conn.sqp()) {
            sq.unbind_conn();
        }
        was
    }

    /// [`unhash`](Self::unhash) of every conn of `cl`.
    fn unhash_all<P: Send + Sync>(&self, cl: &Classifier<P>) {
        let mut left = Vec::new();
        cl.walk(&mut |c| left.push(c.clone()));
        for c in left {
            self.unhash(cl, &c);
        }
    }

    fn now_ms(&self) -> u64 {
        self.sys.env.now_ns() / 1_000_000
    }

    fn is_ours(&self, a: Ipv4Addr) -> bool {
        self.usable.read().iter().any(|x| x.addr() == a || (x.prefix() < 31 && x.broadcast() == a))
    }

    /// Whether `a` is one of the instance's own addresses (configured,
    /// whatever its DAD state; not a broadcast address).
    fn is_own_addr(&self, a: Ipv4Addr) -> bool {
        self.addrs.read().iter().any(|x| x.net.addr() == a)
    }

    /// Whether a datagram to `a` goes through the loopback: 127/8, or one
    /// of our addresses in use.
    fn is_local_dst(&self, a: Ipv4Addr) -> bool {
        a.is_loopback() || self.usable.read().iter().any(|x| x.addr() == a)
    }

    /// The route to `dst`: through the loopback, from `dst` itself, when
    /// it is ours (all of 127/8 is: a service answers from the address it
    /// was asked at), else the table's.
    fn resolve(&self, dst: Ipv4Addr) -> Option<super::route::Resolved> {
        if self.is_local_dst(dst) {
            return Some(super::route::Resolved { next_hop: dst, src: dst, generation: self.route_gen.load(Ordering::Acquire) });
        }
        self.routes.read().resolve(dst)
    }

    /// A datagram to ourselves: straight back into IP input (see the
    /// module doc).
    fn loopback_output(&self, dgram: Vec<u8>) {
        bump(&self.ip_mib.ip_loopback_datagrams);
        self.ip_input(&dgram, true, false, true);
    }

    /// Whether `a` is the directed broadcast of one of our subnets (as a
    /// source, a martian: illumos drops it).
    fn is_subnet_broadcast(&self, a: Ipv4Addr) -> bool {
        self.usable.read().iter().any(|x| x.prefix() < 31 && x.broadcast() == a)
    }

    fn first_addr(&self) -> Option<Ipv4Addr> {
        self.usable.read().first().map(|a| a.addr())
    }

    /// The identification of the next datagram to `dst`.
    fn next_ip_id(&self, dst: Ipv4Addr) -> u16 {
        self.next_ip_ids(dst, 1)
    }

    /// The first of `n` consecutive IP identifications for `dst` (a large
    /// send's pieces take one each).
    fn next_ip_ids(&self, dst: Ipv4Addr, n: u16) -> u16 {
        let b = (mix(u64::from(u32::from(dst)) ^ self.ip_id_key) as usize) % IP_ID_BUCKETS;
        self.ip_ids[b].fetch_add(n, Ordering::Relaxed)
    }

    /// Enters `e` into squeue `sqp` (a conn's; `mode` `None`: the
    /// sender's mode, after `tcp_squeue_wput`).
    fn enter(&self, sqp: u32, e: FeEntry, mode: Option<SqMode>) -> Result<(), NetError> {
        let Some(sq) = self.sys.squeues.for_cpu(sqp) else {
            return Err(NetError::NoBuffers);
        };
        let r = match mode {
            Some(m) => sq.enter(e, m, &*self.sys.env),
            None => sq.enter_send(e, &*self.sys.env),
        };
        r.map_err(|_| NetError::NoBuffers)
    }

    // ---- UDP conns ----

    fn udp_bind(&self, laddr: Ipv4Addr, port: u16) -> Result<UdpSocket, NetError> {
        if !laddr.is_unspecified() && !self.addrs.read().iter().any(|a| a.net.addr() == laddr) {
            // EADDRNOTAVAIL
            return Err(NetError::InvalidAddress);
        }
        let _g = self.bind_lock.lock();
        let sq = self.sys.squeues.pick_for_new_conn(self.sys.env.cpu());
        let t = &self.sys.tunables;
        let conn = udp::bind(&self.classifier, laddr, port, t.udp_anon_ports(), &self.next_port, sq.id(), t.udp_recv_buf())?;
        sq.bind_conn();
        let host: Weak<dyn UdpHost> = self.me.clone();
        Ok(UdpSocket::new(conn, host))
    }

    /// The route to `dst` for `conn`: its cached one while the routing
    /// generation holds, else a lookup it then caches.
    fn conn_route(&self, conn: &UdpConn, dst: Ipv4Addr) -> Option<CachedRoute> {
        self.cached_route(&conn.proto.route, dst)
    }

    /// The route to `dst` kept in `cache` (a conn's) while the routing
    /// generation holds, else a lookup it then keeps.
    fn cached_route(&self, cache: &Mutex<Option<CachedRoute>>, dst: Ipv4Addr) -> Option<CachedRoute> {
        let generation = self.route_gen.load(Ordering::Acquire);
        let mut cache = cache.lock();
        if let Some(c) = *cache
            && c.dst == dst
            && c.generation == generation
        {
            bump(&self.route_cache_hits);
            return Some(c);
        }
        let r = self.resolve(dst)?;
        let c = CachedRoute { dst, next_hop: r.next_hop, src: r.src, generation: r.generation };
        *cache = Some(c);
        Some(c)
    }

    fn udp_output(&self, conn: &UdpConn, to: SocketAddrV4, data: &[u8]) {
        let Some(r) = self.conn_route(conn, *to.ip()) else {
            bump(&self.ip_mib.ip_out_no_routes);
            bump(&self.udp_mib.udp_out_errors);
            return;
        };
        let laddr = conn.laddr();
        let src = if laddr.is_unspecified() { r.src } else { laddr };
        // One frame: the device (or the MAC layer) finishes the checksum;
        // a datagram to fragment is summed here, across all of it.
        let partial = IPV4_HDR_MIN + super::wire::udp::UDP_HEADER_LEN + data.len() <= self.mtu;
        let Some(dgram) = udp::build(src, conn.lport(), to, data, partial) else {
            bump(&self.udp_mib.udp_out_errors);
            return;
        };
        bump(&self.udp_mib.udp_out_datagrams);
        self.ip_output(src, *to.ip(), IPPROTO_UDP, &dgram, r.next_hop, partial.then_some(udp::UDP_CKSUM_OFFSET));
    }

    // ---- IP output ----

    /// Builds the IPv4 datagram and sends it towards `next_hop`,
    /// fragmenting to the link's MTU. `l4_partial`: the payload's
    /// transport checksum is left partial, to be finished at this offset
    /// into it (by the device, or the MAC layer in software).
    fn ip_output(&self, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8], next_hop: Ipv4Addr, l4_partial: Option<u16>) {
        bump(&self.ip_mib.ip_out_requests);
        if IPV4_HDR_MIN + payload.len() > usize::from(u16::MAX) {
            bump(&self.ip_mib.ip_out_discards);
            return;
        }
        let mut h = Ipv4Header::new(src, dst, proto, payload.len() as u16);
        h.ttl = self.sys.tunables.ttl();
        h.ident = self.next_ip_id(dst);
        // TCP does path MTU discovery (RFC 1191): DF, when it fits.
        h.dont_frag = proto == IPPROTO_TCP && IPV4_HDR_MIN + payload.len() <= self.mtu;
        let mut dgram = alloc::vec![0u8; h.header_len() + payload.len()];
        let Ok(n) = h.emit(&mut dgram) else {
            bump(&self.ip_mib.ip_out_discards);
            return;
        };
        dgram[n..].copy_from_slice(payload);
        if self.is_local_dst(next_hop) {
            // Never on a wire: the transport checksum stays partial and
            // input takes it as verified.
            self.loopback_output(dgram);
            return;
        }
        let cksum = match l4_partial {
            Some(offset) if dgram.len() <= self.mtu => Cksum::Partial { start: (ETH_HDR + n) as u16, offset },
            Some(_) => {
                // It must be fragmented: no device can finish it now.
                udp::finish_cksum_in(&mut dgram);
                Cksum::None
            }
            None => Cksum::None,
        };
        self.send_datagram_with(dgram, next_hop, cksum);
    }

    /// Sends a complete datagram (fragmenting it if needed) to `next_hop`.
    fn send_datagram(&self, dgram: Vec<u8>, next_hop: Ipv4Addr) {
        self.send_datagram_with(dgram, next_hop, Cksum::None);
    }

    /// [`send_datagram`](Self::send_datagram) of a datagram whose frame
    /// asks for `cksum` (a partial checksum only when it fits one frame).
    fn send_datagram_with(&self, dgram: Vec<u8>, next_hop: Ipv4Addr, cksum: Cksum) {
        if self.is_local_dst(next_hop) {
            self.loopback_output(dgram);
            return;
        }
        if dgram.len() <= self.mtu {
            self.send_to_neighbour(next_hop, dgram, cksum);
            return;
        }
        let Ok(frags) = frag::fragment(&dgram, self.mtu, &self.ip_mib) else { return };
        for f in frags {
            self.send_to_neighbour(next_hop, f, Cksum::None);
        }
    }

    /// Sends one IPv4 packet to on-link `next_hop`: at once when its MAC is
    /// known, else it waits in the neighbour cache while ARP resolves.
    fn send_to_neighbour(&self, next_hop: Ipv4Addr, pkt: Vec<u8>, cksum: Cksum) {
        let broadcast = next_hop == Ipv4Addr::BROADCAST
            || self.usable.read().iter().any(|a| a.prefix() < 31 && a.broadcast() == next_hop);
        if broadcast {
            self.tx_frame(BROADCAST_MAC, ETHERTYPE_IPV4, &pkt, cksum);
            return;
        }
        let now = self.now_ms();
        let mut actions = ArpActions::default();
        let r = self.neigh.lock().resolve(next_hop, None, now, pkt, &mut actions);
        match r {
            Resolution::Now(mac, pkt) => self.tx_frame(mac, ETHERTYPE_IPV4, &pkt, cksum),
            Resolution::Queued => {}
            Resolution::Dropped => bump(&self.ip_mib.ip_out_discards),
        }
        self.arp_run(actions);
    }

    /// Hands one frame to the link (no lock of the instance is held).
    fn arp_input(&self, payload: &[u8]) {
        let p = match ArpPacket::parse(payload) {
            Ok(p) => p,
            Err(_) => {
                bump(&self.counters.rx_malformed);
                return;
            }
        };
        let now = self.now_ms();
        let actions = self.neigh.lock().input(&p, now);
        self.arp_run(actions);
    }

    /// Carries out what the neighbour cache asked for, with no lock held.
    fn arp_run(&self, a: ArpActions) {
        // Packets given up while they waited for resolution.
        bump_by(&self.ip_mib.ip_out_discards, a.dropped);
        for (dst, p) in a.send {
            self.tx_frame(dst, ETHERTYPE_ARP, &p.emit(), Cksum::None);
        }
        for (mac, mut pkt) in a.release {
            // It waited without its frame's offload request: whatever it
            // was, its UDP or TCP checksum is completed here, and a large
            // TCP send (LSO) is cut here.
            udp::finish_cksum_in(&mut pkt);
            lso::finish_tcp_cksum_in(&mut pkt);
            if pkt.len() > self.mtu {
                self.lso_release(mac, pkt);
                continue;
            }
            self.tx_frame(mac, ETHERTYPE_IPV4, &pkt, Cksum::None);
        }
        if a.addr_changes.is_empty() {
            return;
        }
        {
            let addrs = self.addrs.read();
            let mut usable = self.usable.write();
            for (ip, state) in a.addr_changes {
                usable.retain(|n| n.addr() != ip);
                if state == AddrState::Ok
                    && let Some(info) = addrs.iter().find(|x| x.net.addr() == ip)
                {
                    usable.push(info.net);
                }
            }
        }
        self.sync_routes();
    }

    fn tx_frame(&self, dst: [u8; 6], ethertype: u16, payload: &[u8], cksum: Cksum) {
        let len = ETH_HDR + payload.len();
        let Some(mut m) = self.link.alloc_tx(len) else {
            bump(&self.counters.tx_nobuf);
            bump(&self.ip_mib.ip_out_discards);
            return;
        };
        // Links hand out packets of `len` bytes (`Link::alloc_tx`); the
        // range is set again so that a link giving more or less is caught
        // below rather than sending stale bytes.
        let start = m.headroom();
        m.set_range(start, len);
        if m.len() != len || m.cont.is_some() {
            bump(&self.counters.tx_nobuf);
            bump(&self.ip_mib.ip_out_discards);
            return;
        }
        let b = m.data_mut();
        b[..6].copy_from_slice(&dst);
        b[6..12].copy_from_slice(&self.mac);
        b[12..ETH_HDR].copy_from_slice(&ethertype.to_be_bytes());
        b[ETH_HDR..].copy_from_slice(payload);
        m.meta.cksum = cksum;
        bump(&self.counters.tx_packets);
        add(&self.counters.tx_bytes, len as u64);
        self.link.tx(m);
    }

    // ---- input ----

    fn input(&self, m: Mblk) {
        bump(&self.counters.rx_packets);
        add(&self.counters.rx_bytes, m.total_len() as u64);
        let verified = m.meta.cksum == Cksum::Verified;
        let linear;
        let frame: &[u8] = if m.cont.is_none() {
            m.data()
        } else {
            // Gathered, not zeroed first: a large receive is 64 KiB.
            let mut v = Vec::new();
            m.append_to(&mut v);
            linear = v;
            &linear
        };
        if frame.len() < ETH_HDR {
            bump(&self.counters.rx_malformed);
            return;
        }
        if frame.len() > self.mtu + ETH_HDR && m.meta.gso.is_none() {
            bump(&self.counters.rx_oversize);
            return;
        }
        let dst: [u8; 6] = frame[..6].try_into().unwrap_or([0; 6]);
        let link_bcast = dst[0] & 1 != 0;
        if !link_bcast && dst != self.mac {
            bump(&self.counters.rx_not_mine);
            return;
        }
        let payload = &frame[ETH_HDR..];
        match u16::from_be_bytes([frame[12], frame[13]]) {
            ETHERTYPE_ARP => self.arp_input(payload),
            ETHERTYPE_IPV4 => self.ip_input(payload, verified, link_bcast, false),
            _ => bump(&self.counters.rx_unknown_proto),
        }
    }

    /// IPv4 input of `bytes`, from the link, or from our own output
    /// through the loopback (`loopback`).
    fn ip_input(&self, bytes: &[u8], verified: bool, link_bcast: bool, loopback: bool) {
        let p = match ipin::validate_on(bytes, &|a| self.is_ours(a), verified, loopback, &self.ip_mib) {
            Ok(p) => p,
            Err(_) => return,
        };
        if self.is_subnet_broadcast(p.header.src) {
            // A broadcast address sends nothing; answering it would
            // broadcast the answer.
            bump(&self.ip_mib.ip_in_addr_errors);
            return;
        }
        if p.dst_kind == DstKind::Multicast && p.header.dst != ALL_HOSTS {
            // No group is ever joined (RFC 1112 level 1 without IGMP): a
            // group's datagrams are not for this host; 224.0.0.1 is.
            bump(&self.ip_mib.ip_in_addr_errors);
            return;
        }
        let reassembled;
        let (hdr, datagram): (Ipv4Header, &[u8]) = if p.is_fragment {
            let now = self.now_ms();
            let out = self.reass.lock().input(&p.header, &bytes[p.payload.clone()], now, &self.ip_mib);
            match out {
                Ok(ReassOutcome::Complete(d)) => {
                    reassembled = d;
                    match Ipv4Header::parse(&reassembled, false) {
                        Ok((h, _)) => (h, &reassembled[..]),
                        Err(_) => return,
                    }
                }
                _ => return,
            }
        } else {
            (p.header, &bytes[..p.header.header_len() + p.payload.len()])
        };
        let to_bcast = p.dst_kind != DstKind::Local || self.usable.read().iter().any(|a| a.prefix() < 31 && a.broadcast() == hdr.dst);
        let l4 = &datagram[hdr.header_len()..];
        match hdr.protocol {
            IPPROTO_ICMP => self.icmp_input(datagram, &hdr, to_bcast),
            // A NIC verifies the checksum of one frame: a reassembled
            // datagram is checked here, whatever its last fragment said.
            IPPROTO_UDP => self.udp_input(datagram, &hdr, l4, verified && !p.is_fragment, to_bcast, link_bcast),
            IPPROTO_TCP => self.tcp_input(&hdr, l4, verified && !p.is_fragment, to_bcast, loopback),
            _ => {
                ipin::count_unknown_proto(&self.ip_mib);
                self.send_icmp_error(IcmpErrorKind::ProtocolUnreachable, datagram, &hdr, to_bcast, link_bcast);
            }
        }
    }

    fn icmp_input(&self, datagram: &[u8], hdr: &Ipv4Header, to_bcast: bool) {
        let our = if to_bcast { self.first_addr().unwrap_or(hdr.dst) } else { hdr.dst };
        let ttl = self.sys.tunables.ttl();
        match IcmpInput::classify(datagram, our, to_bcast, ttl, self.next_ip_id(hdr.src), &self.icmp_mib) {
            IcmpInput::Reply(reply) => {
                bump(&self.ip_mib.ip_in_delivers);
                bump(&self.ip_mib.ip_out_requests);
                // To the reply's own destination: the sender, or the first
                // router of a reversed source route.
                let to = reply.get(16..20).map_or(hdr.src, |d| Ipv4Addr::new(d[0], d[1], d[2], d[3]));
                match self.resolve(to) {
                    Some(r) => self.send_datagram(reply, r.next_hop),
                    None => bump(&self.ip_mib.ip_out_no_routes),
                }
            }
            IcmpInput::EchoReply { ident, seq, data_len } => {
                bump(&self.ip_mib.ip_in_delivers);
                let at_us = self.sys.env.now_ns() / 1000;
                let mut rq = self.requesters.lock();
                if let Some(r) = rq.iter_mut().find(|r| r.ident == ident) {
                    // Bounded by count and by the ICMP `recv_buf` bytes:
                    // the oldest unread reply makes room.
                    let len = data_len + 8;
                    let cap = self.sys.tunables.icmp_recv_buf();
                    while !r.replies.is_empty()
                        && (r.replies.len() == MAX_REPLIES || r.replies.iter().map(|e| e.len).sum::<usize>() + len > cap)
                    {
                        r.replies.pop_front();
                    }
                    r.replies.push_back(EchoReply { from: hdr.src, seq, len, at_us });
                }
            }
            IcmpInput::Redirect { from, dst, gateway } => {
                bump(&self.ip_mib.ip_in_delivers);
                self.redirect(from, dst, gateway);
            }
            IcmpInput::Error {
                kind, quoted_proto, quoted_src, quoted_dst, quoted_sport, quoted_dport, quoted_seq, quoted_len, ..
            } => {
                bump(&self.ip_mib.ip_in_delivers);
                if quoted_proto == IPPROTO_TCP {
                    let (ours, peer) = (SocketAddrV4::new(quoted_src, quoted_sport), SocketAddrV4::new(quoted_dst, quoted_dport));
                    self.tcp_icmp_input(kind, ours, peer, quoted_seq, quoted_len);
                }
                // To the conn that sent the quoted datagram, in its squeue.
                if quoted_proto == IPPROTO_UDP
                    && let Some(err) = udp::error_of(kind)
                    && let Some(conn) = udp::conn_for_error(
                        &self.classifier,
                        SocketAddrV4::new(quoted_src, quoted_sport),
                        SocketAddrV4::new(quoted_dst, quoted_dport),
                    )
                {
                    let sqp = conn.sqp();
                    let _ = self.enter(sqp, FeEntry::UdpError { conn, err }, Some(SqMode::Process));
                }
            }
            IcmpInput::Drop => {}
        }
    }

    fn udp_input(&self, datagram: &[u8], hdr: &Ipv4Header, l4: &[u8], verified: bool, to_bcast: bool, link_bcast: bool) {
        let (uh, data) = match UdpHeader::parse(l4, hdr.src, hdr.dst, !verified) {
            Ok(v) => v,
            Err(e) => {
                // illumos: a checksum error in udpInCksumErrs, anything
                // else malformed in udpInErrors.
                bump(if e == UdpError::BadChecksum { &self.udp_mib.udp_in_cksum_errs } else { &self.udp_mib.udp_in_errors });
                return;
            }
        };
        bump(&self.ip_mib.ip_in_delivers);
        let Some(conn) = udp::classify(&self.classifier, hdr.src, uh.src_port, hdr.dst, uh.dst_port) else {
            bump(&self.udp_mib.udp_no_ports);
            if !to_bcast {
                self.send_icmp_error(IcmpErrorKind::PortUnreachable, datagram, hdr, to_bcast, link_bcast);
            }
            return;
        };
        let dgram = Datagram { from: SocketAddrV4::new(hdr.src, uh.src_port), data: data.to_vec() };
        let Some(core) = self.me.upgrade() else { return };
        let sqp = conn.sqp();
        let e = FeEntry::UdpDeliver { core, conn, dgram };
        if self.enter(sqp, e, Some(SqMode::Process)).is_err() {
            bump(&self.ip_mib.ip_in_discards);
        }
    }

    /// A datagram whose first fragment came but which never completed:
    /// ICMP time exceeded, code 1, quoting that fragment (RFC 792, RFC
    /// 1122 3.3.2; illumos `ill_frag_timeout`), under the usual rules and
    /// rate limit.
    /// A redirect from `from`: datagrams for `dst` should go to `gateway`.
    /// Taken only if `from` is the current first hop for `dst` and
    /// `gateway` is on-link and not ours (RFC 1122 3.2.2.2); then a host
    /// route to `dst` via `gateway`, flagged `D`, for
    /// [`REDIRECT_LIFETIME_MS`]. Otherwise counted in `icmpInBadRedirects`.
    fn redirect(&self, from: Ipv4Addr, dst: Ipv4Addr, gateway: Ipv4Addr) {
        let first_hop = self.resolve(dst).map(|r| r.next_hop);
        let on_link = self.usable.read().iter().any(|a| a.trunc().contains(gateway));
        let ok = first_hop == Some(from)
            && from != dst
            && on_link
            && is_unicast(gateway)
            && is_unicast(dst)
            && !self.is_ours(gateway)
            && !self.is_ours(dst);
        if !ok {
            bump(&self.icmp_mib.icmp_in_bad_redirects);
            return;
        }
        let now = self.now_ms();
        let Some(dest) = Ipv4Net::new(dst, 32) else { return };
        let route = RouteInfo { dest, gateway, redirect: true };
        {
            let mut r = self.redirects.lock();
            r.retain(|(x, _)| x.dest != route.dest);
            if r.len() >= MAX_REDIRECTS {
                r.remove(0);
            }
            r.push((route, now + REDIRECT_LIFETIME_MS));
        }
        self.sync_routes();
    }

    /// Drops the redirect routes whose time is up.
    fn age_redirects(&self, now_ms: u64) {
        let changed = {
            let mut r = self.redirects.lock();
            let n = r.len();
            r.retain(|(_, until)| *until > now_ms);
            r.len() != n
        };
        if changed {
            self.sync_routes();
        }
    }

    fn reass_timed_out(&self, quote: &[u8]) {
        let Ok((hdr, _)) = Ipv4Header::parse_quoted(quote) else { return };
        let to_bcast = hdr.dst.is_broadcast()
            || hdr.dst.is_multicast()
            || self.usable.read().iter().any(|a| a.prefix() < 31 && a.broadcast() == hdr.dst);
        self.send_icmp_error(IcmpErrorKind::ReassemblyExceeded, quote, &hdr, to_bcast, false);
    }

    fn send_icmp_error(&self, kind: IcmpErrorKind, offending: &[u8], hdr: &Ipv4Header, to_bcast: bool, link_bcast: bool) {
        let Some(r) = self.resolve(hdr.src) else { return };
        let flags = ErrorFlags {
            dst_was_broadcast_or_multicast: to_bcast,
            link_broadcast: link_bcast,
            src: if to_bcast { r.src } else { hdr.dst },
            ttl: self.sys.tunables.ttl(),
            ident: self.next_ip_id(hdr.src),
        };
        let now = self.now_ms();
        let err = {
            let mut lim = self.icmp_limiter.lock();
            let (interval, burst) = self.sys.tunables.icmp_err_rate();
            lim.set_interval_ms(interval);
            lim.set_burst(burst);
            icmp::error_for(&mut lim, now, kind, offending, flags, &self.icmp_mib)
        };
        if let Some(e) = err {
            bump(&self.ip_mib.ip_out_requests);
            self.send_datagram(e, r.next_hop);
        }
    }
}

impl SockHost for Core {
    fn sock_udp_bind(&self, laddr: Ipv4Addr, port: u16) -> Result<UdpSocket, NetError> {
        self.udp_bind(laddr, port)
    }
}

impl UdpHost for Core {
    fn udp_send(&self, conn: &ConnRef<UdpPcb>, to: SocketAddrV4, data: Vec<u8>) -> Result<(), NetError> {
        if self.is_own_addr(*to.ip()) && !self.is_local_dst(*to.ip()) {
            // Ours but not in use yet (duplicate-address detection).
            return Err(NetError::Unreachable);
        }
        if data.len() > self.sys.tunables.udp_send_buf() {
            // EMSGSIZE: larger than UDP's `send_buf`.
            return Err(NetError::MessageTooLong);
        }
        let core = self.me.upgrade().ok_or(NetError::NotConnected)?;
        let e = FeEntry::UdpSend { core, conn: conn.clone(), to, data };
        self.enter(conn.sqp(), e, None)
    }

    fn udp_source_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.resolve(dst).map(|r| r.src)
    }

    fn udp_classifier(&self) -> &Classifier<UdpPcb> {
        &self.classifier
    }

    fn udp_closed(&self, conn: &ConnRef<UdpPcb>) {
        if let Some(sq) = self.sys.squeues.for_cpu(conn.sqp()) {
            sq.unbind_conn();
        }
    }
}

impl Core {
    /// Rebuilds the routing table: an interface route per address, then
    /// the static routes whose gateway is still on-link.
    fn sync_routes(&self) {
        let addrs = self.addrs.read().clone();
        let usable = self.usable.read().clone();
        let mut statics = self.static_routes.lock();
        let on_link = |g: Ipv4Addr| addrs.iter().any(|a| a.net.contains(g) && a.net.addr() != g);
        statics.retain(|r| on_link(r.gateway));
        let mut t = RouteTable::new(MAX_ROUTES);
        for a in &usable {
            let _ = t.add(a.trunc(), NextHop::OnLink { src: a.addr() });
        }
        for r in statics.iter() {
            let _ = t.add(r.dest, NextHop::Gateway(r.gateway));
        }
        // After the static routes: a `route add` of the same host wins.
        let mut redirects = self.redirects.lock();
        redirects.retain(|(r, _)| on_link(r.gateway));
        for (r, _) in redirects.iter() {
            let _ = t.add(r.dest, NextHop::Gateway(r.gateway));
        }
        drop(redirects);
        let mut routes = self.routes.write();
        // Generations only grow, across rebuilds too: a conn's cached
        // route from any older table is seen to be stale.
        t.continue_from(routes.generation());
        self.route_gen.store(t.generation(), Ordering::Release);
        *routes = t;
    }
}

impl IpStack for FeInstance {
    fn kind(&self) -> &'static str {
        "fireengine"
    }

    fn stack_kind(&self) -> StackKind {
        StackKind::FireEngine
    }

    fn has_loopback(&self) -> bool {
        true
    }

    fn link(&self) -> &dyn Link {
        &*self.core.link
    }

    fn input(&self, m: Mblk) {
        self.core.input(m);
    }

    fn poll_us(&self, now_us: u64) -> Option<u64> {
        let c = &self.core;
        let now_ms = now_us / 1000;
        let expired = c.reass.lock().expire(now_ms, &c.ip_mib);
        for e in expired {
            if let Some(q) = e.quote {
                c.reass_timed_out(&q);
            }
        }
        let actions = c.neigh.lock().tick(now_ms);
        c.arp_run(actions);
        c.age_redirects(now_ms);
        c.reap_tcp_services();
        c.http_poll(now_ms);
        let t = c.sys.tunables.tcp();
        c.tcp_challenge.set_limit(u64::from(t.challenge_ack_limit));
        // illumos `tcp_rst_sent_rate`: RSTs for no conn, so many a second.
        c.tcp_rst_limit.set_limit(if t.rst_sent_rate_enabled { u64::from(t.rst_sent_rate) } else { u64::MAX });
        // Timers run every 100 ms at the latest (TCP's sooner when due);
        // the data path needs no poll.
        let next = c.tcp_timers(now_ms).map_or(100, |d| d.saturating_sub(now_ms).clamp(1, 100));
        Some(next * 1000)
    }

    fn rx_pending(&self) -> bool {
        false
    }

    fn addrs(&self) -> Vec<AddrInfo> {
        self.core.addrs.read().clone()
    }

    fn add_addr(&self, name: &str, net: Ipv4Net) -> Result<(), NetError> {
        check_host_addr(net)?;
        {
            let mut addrs = self.core.addrs.write();
            if addrs.iter().any(|a| a.name == name) {
                return Err(NetError::AddrObjExists);
            }
            if addrs.iter().any(|a| a.net.addr() == net.addr()) {
                return Err(NetError::AddrInUse);
            }
            if addrs.len() >= MAX_ADDRS {
                return Err(NetError::TooManyAddresses);
            }
            addrs.push(AddrInfo { name: String::from(name), net });
        }
        self.core.sync_routes();
        let now = self.core.now_ms();
        let actions = self.core.neigh.lock().add_local(net.addr(), now);
        self.core.arp_run(actions);
        Ok(())
    }

    fn del_addr(&self, name: &str) -> Result<AddrInfo, NetError> {
        let gone = {
            let mut addrs = self.core.addrs.write();
            let i = addrs.iter().position(|a| a.name == name).ok_or(NetError::NotFound)?;
            addrs.remove(i)
        };
        self.core.neigh.lock().remove_local(gone.net.addr());
        self.core.usable.write().retain(|a| a.addr() != gone.net.addr());
        self.core.sync_routes();
        Ok(gone)
    }

    fn routes(&self) -> Vec<RouteInfo> {
        let mut v = self.core.static_routes.lock().clone();
        v.extend(self.core.redirects.lock().iter().map(|(r, _)| *r));
        v
    }

    fn add_route(&self, dest: Ipv4Net, gateway: Ipv4Addr) -> Result<RouteInfo, NetError> {
        if !is_unicast(gateway) {
            return Err(NetError::InvalidAddress);
        }
        let addrs = self.core.addrs.read().clone();
        if addrs.iter().any(|a| a.net.addr() == gateway) {
            return Err(NetError::InvalidArgument);
        }
        if !addrs.iter().any(|a| a.net.contains(gateway)) {
            return Err(NetError::Unreachable);
        }
        let route = RouteInfo { dest: dest.trunc(), gateway, redirect: false };
        {
            let mut s = self.core.static_routes.lock();
            if s.iter().any(|r| r.dest == route.dest) {
                return Err(NetError::RouteExists);
            }
            if s.len() + addrs.len() >= MAX_ROUTES {
                return Err(NetError::TooManyRoutes);
            }
            s.push(route);
        }
        self.core.sync_routes();
        Ok(route)
    }

    fn del_route(&self, dest: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<RouteInfo, NetError> {
        let dest = dest.trunc();
        let matches = |r: &RouteInfo| r.dest == dest && gateway.is_none_or(|g| g == r.gateway);
        let gone = {
            let mut s = self.core.static_routes.lock();
            match s.iter().position(matches) {
                Some(i) => s.remove(i),
                None => {
                    // A redirect's route can be deleted too.
                    let mut r = self.core.redirects.lock();
                    let i = r.iter().position(|(x, _)| matches(x)).ok_or(NetError::RouteNotFound)?;
                    r.remove(i).0
                }
            }
        };
        self.core.sync_routes();
        Ok(gone)
    }

    fn ping_open(&self) -> Result<PingId, NetError> {
        let mut rq = self.core.requesters.lock();
        if rq.len() >= MAX_REQUESTERS {
            return Err(NetError::TooManyRequesters);
        }
        let mut ident = self.core.next_ident.fetch_add(1, Ordering::Relaxed);
        while rq.iter().any(|r| r.ident == ident) {
            ident = ident.wrapping_add(1);
        }
        rq.push(Requester { ident, replies: VecDeque::new() });
        Ok(PingId(ident))
    }

    fn ping_send(&self, id: PingId, dst: Ipv4Addr, seq: u16, data: &[u8]) -> Result<(), NetError> {
        if !self.core.requesters.lock().iter().any(|r| r.ident == id.0) {
            return Err(NetError::NotFound);
        }
        if !(is_unicast(dst) || dst.is_loopback()) {
            return Err(NetError::InvalidAddress);
        }
        if self.core.is_own_addr(dst) && !self.core.is_local_dst(dst) {
            // Ours but not in use yet (duplicate-address detection).
            return Err(NetError::Unreachable);
        }
        if data.len() + 28 > 65535 || data.len() + 8 > self.core.sys.tunables.icmp_send_buf() {
            // EMSGSIZE: above IP's limit or ICMP's `send_buf`.
            return Err(NetError::MessageTooLong);
        }
        let r = self.core.resolve(dst).ok_or(NetError::Unreachable)?;
        let msg = super::wire::icmp::IcmpMessage::EchoRequest { ident: id.0, seq, data };
        let mut buf = alloc::vec![0u8; msg.emit_len()];
        msg.emit(&mut buf).map_err(|_| NetError::InvalidArgument)?;
        icmp::count_out_echo(&self.core.icmp_mib);
        self.core.ip_output(r.src, dst, IPPROTO_ICMP, &buf, r.next_hop, None);
        Ok(())
    }

    fn ping_recv(&self, id: PingId) -> Option<EchoReply> {
        self.core.requesters.lock().iter_mut().find(|r| r.ident == id.0)?.replies.pop_front()
    }

    fn ping_close(&self, id: PingId) {
        self.core.requesters.lock().retain(|r| r.ident != id.0);
    }

    fn tcp_connect(&self, dst: Ipv4Addr, port: u16) -> Result<TcpId, NetError> {
        if self.core.user_tcp.lock().len() >= MAX_USER_TCP {
            return Err(NetError::TooManyConnections);
        }
        let sock = Arc::new(self.core.tcp_open(dst, port)?);
        let id = self.core.next_tcp_id.fetch_add(1, Ordering::Relaxed);
        self.core.user_tcp.lock().push((id, sock));
        Ok(TcpId(id))
    }

    fn tcp_send(&self, id: TcpId, data: &[u8]) -> Result<usize, NetError> {
        let s = self.user_tcp_sock(id)?;
        match s.state() {
            super::tcp::state::State::SynSent | super::tcp::state::State::SynRcvd => Ok(0),
            _ => s.send(data),
        }
    }

    fn tcp_recv(&self, id: TcpId, buf: &mut [u8]) -> Result<usize, NetError> {
        self.user_tcp_sock(id)?.recv(buf)
    }

    fn tcp_shutdown(&self, id: TcpId) -> Result<(), NetError> {
        self.user_tcp_sock(id)?.shutdown_write()
    }

    fn tcp_status(&self, id: TcpId) -> Result<TcpStatus, NetError> {
        Ok(tcp_status_of(&*self.user_tcp_sock(id)?))
    }

    fn tcp_close(&self, id: TcpId) {
        let s = {
            let mut v = self.core.user_tcp.lock();
            v.iter().position(|(i, _)| *i == id.0).map(|at| v.remove(at))
        };
        drop(s);
    }

    fn tcp_list(&self) -> Vec<(TcpId, TcpStatus)> {
        self.core.user_tcp.lock().iter().map(|(i, s)| (TcpId(*i), tcp_status_of(s))).collect()
    }

    fn tcp_endpoints(&self) -> Vec<crate::stack::TcpEndpoint> {
        self.core.tcp_endpoint_list()
    }

    fn udp_open(&self, port: u16) -> Result<UdpId, NetError> {
        let mut v = self.core.user_udp.lock();
        if v.len() >= MAX_USER_UDP {
            return Err(NetError::TooManyConnections);
        }
        let sock = Arc::new(self.socket(SockType::Dgram));
        sock.bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
        let id = self.core.next_udp_id.fetch_add(1, Ordering::Relaxed);
        v.push((id, sock));
        Ok(UdpId(id))
    }

    fn udp_send_to(&self, id: UdpId, to: SocketAddrV4, data: &[u8]) -> Result<(), NetError> {
        // No lock held while sending: the send may drain the squeue.
        self.user_socket(id)?.send_to(to, data)
    }

    fn udp_recv_from(&self, id: UdpId, buf: &mut [u8]) -> Result<Option<(SocketAddrV4, usize)>, NetError> {
        self.user_socket(id)?.recv_from(buf)
    }

    fn udp_close(&self, id: UdpId) {
        let gone = {
            let mut v = self.core.user_udp.lock();
            v.iter().position(|(i, _)| *i == id.0).map(|i| v.remove(i))
        };
        // The socket closes here, with no lock held.
        drop(gone);
    }

    fn udp_endpoints(&self) -> Vec<UdpEndpoint> {
        FeInstance::udp_endpoints(self)
    }

    fn stats(&self) -> StackStats {
        self.core.counters.snapshot()
    }

    fn service_stats(&self) -> Vec<ServiceStats> {
        let (e, d) = (&self.core.echo, &self.core.discard);
        let active = self.core.tcp_service_conns.lock().iter().filter(|s| !s.done.load(Ordering::Acquire)).count() as u64;
        let mut v: Vec<ServiceStats> = self
            .core
            .tcp_services
            .lock()
            .iter()
            .map(|(k, _, c)| ServiceStats {
                name: k.name(),
                proto: Proto::Tcp,
                port: k.port(),
                accepted: c.accepted.load(Ordering::Relaxed),
                refused: 0,
                active: if *k == tcp_svc::SvcKind::Echo { active } else { 0 },
                bytes_in: c.bytes_in.load(Ordering::Relaxed),
                bytes_out: c.bytes_out.load(Ordering::Relaxed),
            })
            .collect();
        v.extend([
            ServiceStats {
                name: "echo",
                proto: Proto::Udp,
                port: ECHO_PORT,
                accepted: e.received.load(Ordering::Relaxed),
                refused: e.refused.load(Ordering::Relaxed),
                active: 0,
                bytes_in: e.bytes.load(Ordering::Relaxed),
                bytes_out: e.bytes.load(Ordering::Relaxed),
            },
            ServiceStats {
                name: "discard",
                proto: Proto::Udp,
                port: DISCARD_PORT,
                accepted: d.received.load(Ordering::Relaxed),
                refused: 0,
                active: 0,
                bytes_in: d.bytes.load(Ordering::Relaxed),
                bytes_out: 0,
            },
        ]);
        v.extend(self.core.http_service_stats());
        v
    }

    fn mib(&self) -> Vec<(&'static str, Vec<(&'static str, u64)>)> {
        FeInstance::mib(self)
    }

    fn services(&self) -> Vec<crate::stack::SvcInfo> {
        self.core.services_list()
    }

    fn set_service(&self, name: &str, enable: bool) -> Result<(), NetError> {
        self.set_service_state(name, enable)
    }

    fn addr_state(&self, name: &str) -> Option<&'static str> {
        let ip = self.core.addrs.read().iter().find(|a| a.name == name)?.net.addr();
        self.core.neigh.lock().local_state(ip).map(AddrState::name)
    }

    fn neighbours(&self) -> Vec<Neighbour> {
        self.core
            .neigh
            .lock()
            .entries()
            .into_iter()
            .map(|e| {
                let unresolved = e.state == NeighbourState::Incomplete;
                Neighbour { ip: e.ip, mac: (!unresolved).then_some(e.mac), unresolved }
            })
            .collect()
    }
}
