//! The interface of an IP stack instance ([`IpStack`]): what the kernel's
//! stack thread, its Rx lanes, the admin commands and [`crate::ping`] call.
//! It is small on purpose: the smoltcp-based [`crate::IpInstance`] is the
//! stack for now, and FireEngine will implement the same trait so that both
//! stay selectable.
//!
//! Locking contract for implementations: [`IpStack::input`] may be called
//! from any CPU at any time and must not block; every other method may
//! take the instance's lock and must not be called from interrupt context.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{Ipv4Addr, SocketAddrV4};

use arbalest_mac::{Mblk, MblkChain};

use crate::config::Ipv4Net;
use crate::link::Link;
use crate::stats::StackStats;

/// One address object of an interface (`net0/v4` → `10.0.0.2/24`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    /// The address object name, `LINK/NAME`.
    pub name: String,
    /// Address and prefix.
    pub net: Ipv4Net,
}

/// A static route through a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// Destination prefix (host bits clear); `0.0.0.0/0` is the default.
    pub dest: Ipv4Net,
    /// Next hop, on one of the instance's subnets.
    pub gateway: Ipv4Addr,
    /// Learnt from an ICMP redirect (flag `D`), not added by `route add`;
    /// it ages out.
    pub redirect: bool,
}

/// A neighbour cache entry, as `arp -a` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its MAC address; `None` while unresolved.
    pub mac: Option<[u8; 6]>,
    /// `true` while a request is out and no answer came (flag `U`).
    pub unresolved: bool,
}

/// Identifies an open ICMP echo requester of an instance (its ICMP
/// identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PingId(pub u16);

/// An ICMP echo reply received for a requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Who answered.
    pub from: Ipv4Addr,
    /// The echoed sequence number.
    pub seq: u16,
    /// ICMP message length (header + data), as ping prints it.
    pub len: usize,
    /// The stack's clock (µs, as passed to `poll_us`) when it arrived.
    pub at_us: u64,
}

/// Identifies a TCP connection a local user opened with
/// [`IpStack::tcp_connect`] (unique within its instance while open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpId(pub u32);

/// Identifies a UDP socket a local user opened with [`IpStack::udp_open`]
/// (unique within its instance while open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpId(pub u32);

/// A UDP endpoint of an instance, for `netstat -an`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpEndpoint {
    /// Local address (`0.0.0.0`: any) and port.
    pub local: core::net::SocketAddrV4,
    /// The peer, when connected.
    pub remote: Option<core::net::SocketAddrV4>,
}

impl UdpEndpoint {
    /// illumos' state name: `Idle` (bound) or `Connected`.
    pub fn state(&self) -> &'static str {
        if self.remote.is_some() { "Connected" } else { "Idle" }
    }
}

/// A TCP endpoint of an instance (a listener or a connection), for
/// `netstat -an` (illumos' `mib2_tcpConnEntry_t` as `netstat` prints it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpEndpoint {
    /// Local address (`0.0.0.0`: any) and port.
    pub local: core::net::SocketAddrV4,
    /// The peer; `None` for a listener (`*.*`).
    pub remote: Option<core::net::SocketAddrV4>,
    /// The send window, bytes: how much may be sent now as far as the
    /// stack knows (illumos: the peer's advertised window). 0 for a
    /// listener. smoltcp does not expose the peer's window, so a smoltcp
    /// instance reports the room left in the connection's send buffer.
    pub swind: u32,
    /// Bytes sent or queued to send and not yet acknowledged.
    pub send_q: u32,
    /// The receive window, bytes: the room left in the receive buffer
    /// (for a listener, the receive buffer a connection will get).
    pub rwind: u32,
    /// Bytes received and not yet taken by the application.
    pub recv_q: u32,
    /// illumos' state name (`mitcp_state`): `LISTEN`, `SYN_SENT`,
    /// `SYN_RCVD`, `ESTABLISHED`, `FIN_WAIT_1`, `FIN_WAIT_2`,
    /// `CLOSE_WAIT`, `LAST_ACK`, `CLOSING`, `TIME_WAIT`, `BOUND`, `IDLE`
    /// or `CLOSED`.
    pub state: &'static str,
}

/// The state of a connection opened with [`IpStack::tcp_connect`]: the
/// RFC 793 states a client passes through, and two ends in error.
/// `Closed` is only ever an orderly end (both FINs sent and acknowledged);
/// a connection that ends otherwise is `Refused` or `Reset`, and stays so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    /// The SYN is out; no answer yet.
    SynSent,
    /// Open both ways.
    Established,
    /// We finished sending ([`IpStack::tcp_shutdown`]); our FIN is not yet
    /// acknowledged.
    FinWait1,
    /// Everything we sent, FIN included, is acknowledged; the peer may
    /// still send.
    FinWait2,
    /// Both sides sent FIN at once; ours is not yet acknowledged.
    Closing,
    /// Both directions finished in order (the stack keeps the connection
    /// a while for late segments).
    TimeWait,
    /// The peer finished sending (its FIN arrived); we may still send.
    CloseWait,
    /// The peer finished, then we did; our FIN is not yet acknowledged.
    LastAck,
    /// Both directions finished in order.
    Closed,
    /// The peer answered the SYN with a reset: nothing listens there.
    Refused,
    /// The peer reset the connection after it was established.
    Reset,
}

impl TcpState {
    /// Whether the connection ended in error ([`TcpState::Refused`] or
    /// [`TcpState::Reset`]).
    pub fn failed(self) -> bool {
        matches!(self, TcpState::Refused | TcpState::Reset)
    }

    /// Whether the peer has acknowledged everything we sent and our FIN:
    /// it has received all our data.
    pub fn fin_acked(self) -> bool {
        matches!(self, TcpState::FinWait2 | TcpState::TimeWait | TcpState::Closed)
    }

    /// Whether the peer has finished sending (its FIN arrived).
    pub fn peer_finished(self) -> bool {
        matches!(
            self,
            TcpState::CloseWait | TcpState::LastAck | TcpState::Closing | TcpState::TimeWait | TcpState::Closed
        )
    }

    /// The error of a failed connection.
    pub fn error(self) -> Option<NetError> {
        match self {
            TcpState::Refused => Some(NetError::ConnectionRefused),
            TcpState::Reset => Some(NetError::ConnectionReset),
            _ => None,
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpState::SynSent => "SYN_SENT",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::Closing => "CLOSING",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Closed => "CLOSED",
            TcpState::Refused => "REFUSED",
            TcpState::Reset => "RESET",
        })
    }
}

/// A snapshot of a connection opened with [`IpStack::tcp_connect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpStatus {
    /// Its state.
    pub state: TcpState,
    /// Our address and ephemeral port.
    pub local: SocketAddrV4,
    /// The peer.
    pub remote: SocketAddrV4,
    /// Bytes queued or in flight, not yet acknowledged by the peer.
    pub unacked: usize,
    /// Bytes received and not yet read.
    pub readable: usize,
    /// Whether the user has released it ([`IpStack::tcp_close`]) and the
    /// stack is finishing it in the background.
    pub closing_in_background: bool,
}

/// Transport of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// Counters of one in-kernel service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceStats {
    /// `echo`, `discard`, `chargen`.
    pub name: &'static str,
    /// Its transport.
    pub proto: Proto,
    /// Its port.
    pub port: u16,
    /// TCP: connections established. UDP: datagrams received.
    pub accepted: u64,
    /// TCP: SYNs refused because every connection slot was busy.
    /// UDP: datagrams that could not be answered.
    pub refused: u64,
    /// TCP: connections open now (listener excluded).
    pub active: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
}

/// One in-kernel service of an instance, as `svcs` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvcInfo {
    /// The name `svcadm` takes: `echo`, `discard`, `chargen` (TCP),
    /// `udp-echo`, `udp-discard`, `http`.
    pub name: &'static str,
    /// Its illumos FMRI (`svc:/network/echo:stream`,
    /// `svc:/network/http:default`).
    pub fmri: &'static str,
    /// Its transport and port.
    pub proto: Proto,
    /// Its port.
    pub port: u16,
    /// Whether it is enabled (`online`) or not (`disabled`).
    pub online: bool,
    /// When it last changed state, on the stack clock (µs, as
    /// [`IpStack::poll_us`] gets it); `None` when not known.
    pub since_us: Option<u64>,
    /// Whether `svcadm` can change it on this stack.
    pub manageable: bool,
    /// Its counters by name, for `svcs -l`.
    pub counters: Vec<(&'static str, u64)>,
}

/// The FMRI and `svcadm` name of a service of [`ServiceStats`].
pub fn service_fmri(name: &str, proto: Proto) -> Option<(&'static str, &'static str)> {
    Some(match (name, proto) {
        ("echo", Proto::Tcp) => ("echo", "svc:/network/echo:stream"),
        ("discard", Proto::Tcp) => ("discard", "svc:/network/discard:stream"),
        ("chargen", Proto::Tcp) => ("chargen", "svc:/network/chargen:stream"),
        ("echo", Proto::Udp) => ("udp-echo", "svc:/network/echo:dgram"),
        ("discard", Proto::Udp) => ("udp-discard", "svc:/network/discard:dgram"),
        ("chargen", Proto::Udp) => ("udp-chargen", "svc:/network/chargen:dgram"),
        ("http", Proto::Tcp) => ("http", "svc:/network/http:default"),
        _ => return None,
    })
}

/// Errors of the configuration and ping calls. `Display` gives the
/// illumos wording where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// Not a usable address for this purpose.
    InvalidAddress,
    /// A malformed or out-of-range argument.
    InvalidArgument,
    /// The address object name is taken.
    AddrObjExists,
    /// The address is configured already.
    AddrInUse,
    /// No such address object.
    NotFound,
    /// No such link, or no IP interface on it.
    NoSuchInterface,
    /// The IP interface exists already.
    InterfaceExists,
    /// The instance holds its maximum number of addresses.
    TooManyAddresses,
    /// The routing table is full.
    TooManyRoutes,
    /// A route to that destination exists already.
    RouteExists,
    /// No such route.
    RouteNotFound,
    /// No route or on-link subnet reaches the destination (or gateway).
    Unreachable,
    /// No buffer space (a socket's queue is full).
    NoBuffers,
    /// All echo requesters of the instance are in use.
    TooManyRequesters,
    /// Not implemented here (DHCP, addrconf, ...).
    NotSupported,
    /// The link cannot carry an instance (MAC not unicast, MTU out of range).
    BadLink,
    /// Every TCP connection slot of the instance is in use.
    TooManyConnections,
    /// The peer refused the connection (nothing listens on the port).
    ConnectionRefused,
    /// The peer reset the connection.
    ConnectionReset,
    /// The connection is not (or no longer) open for this operation.
    NotConnected,
    /// The datagram is larger than the protocol's `send_buf` or than IP
    /// carries (EMSGSIZE).
    MessageTooLong,
    /// The socket was shut down for this direction (ESHUTDOWN).
    ShutDown,
    /// The peer stopped answering: retransmissions or keepalive probes
    /// went unanswered too long (ETIMEDOUT).
    TimedOut,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetError::InvalidAddress => "Invalid IP address provided",
            NetError::InvalidArgument => "Invalid argument provided",
            NetError::AddrObjExists => "Address object already exists",
            NetError::AddrInUse => "Address already in use",
            NetError::NotFound => "Object not found",
            NetError::NoSuchInterface => "No such interface",
            NetError::InterfaceExists => "Interface already exists",
            NetError::TooManyAddresses => "Too many addresses on the interface",
            NetError::TooManyRoutes => "Routing table full",
            NetError::RouteExists => "entry exists",
            NetError::RouteNotFound => "not in table",
            NetError::Unreachable => "Network is unreachable",
            NetError::NoBuffers => "No buffer space available",
            NetError::TooManyRequesters => "Too many echo requesters",
            NetError::NotSupported => "Operation not supported",
            NetError::BadLink => "Link cannot carry IP (MAC address or MTU)",
            NetError::TooManyConnections => "Too many open connections",
            NetError::ConnectionRefused => "Connection refused",
            NetError::ConnectionReset => "Connection reset by peer",
            NetError::NotConnected => "Socket is not connected",
            NetError::MessageTooLong => "Message too long",
            NetError::ShutDown => "Socket shut down in that direction",
            NetError::TimedOut => "Connection timed out",
        })
    }
}

/// Which IP stack implementation an instance runs: chosen per IP
/// interface (`ipadm create-if -s`), with a system default (kernel argument
/// `stack=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StackKind {
    /// smoltcp's interface and sockets ([`crate::smol`]), the stack
    /// Arbalest ran before FireEngine; kept beside it for A/B comparison.
    Smoltcp,
    /// FireEngine ([`crate::fireengine`]), the default.
    #[default]
    FireEngine,
}

impl StackKind {
    /// Every kind, in the order `ipadm` lists them.
    pub const ALL: [StackKind; 2] = [StackKind::FireEngine, StackKind::Smoltcp];

    /// The name users type and `ipadm show-if` prints.
    pub fn name(self) -> &'static str {
        match self {
            StackKind::Smoltcp => "smoltcp",
            StackKind::FireEngine => "fireengine",
        }
    }

    /// Parses a name given by [`StackKind::name`].
    pub fn parse(s: &str) -> Option<StackKind> {
        StackKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for StackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An IP stack instance over one link.
pub trait IpStack: Send + Sync {
    /// Which implementation this is (`smol`).
    fn kind(&self) -> &'static str;

    /// Which stack this is, as `ipadm show-if` names it.
    fn stack_kind(&self) -> StackKind;

    /// Whether the instance has a loopback (`lo0`: 127.0.0.1/8, and its
    /// own addresses reach its own conns without the link).
    fn has_loopback(&self) -> bool {
        false
    }

    /// The link below.
    fn link(&self) -> &dyn Link;

    /// The link's name (`net0`), which names the IP interface too.
    fn name(&self) -> &str {
        self.link().name()
    }

    // ---- data path ----

    /// Hands one received Ethernet frame to the instance. Never blocks;
    /// callable from any CPU. A full Rx queue drops it (counted).
    fn input(&self, m: Mblk);

    /// [`IpStack::input`] for every packet of a chain (as an SRS delivers).
    fn input_chain(&self, chain: MblkChain) {
        for m in chain {
            self.input(m);
        }
    }

    /// Runs the stack at time `now_us` (µs, monotonic, the same clock as
    /// the shell's `AdminEnv::now_us`): processes queued frames (bounded),
    /// runs the services, transmits. Returns how many µs may pass before
    /// the next call is due (`Some(0)`: call again at once, more work is
    /// queued), `None` if only new input can create work.
    fn poll_us(&self, now_us: u64) -> Option<u64>;

    /// [`IpStack::poll_us`] with a millisecond clock and result.
    fn poll(&self, now_ms: u64) -> Option<u64> {
        self.poll_us(now_ms.saturating_mul(1000)).map(|d| d.div_ceil(1000))
    }

    /// Whether received frames wait in the Rx queue.
    fn rx_pending(&self) -> bool;

    // ---- addresses and routes ----

    /// The address objects, in creation order.
    fn addrs(&self) -> Vec<AddrInfo>;

    /// Adds an address object `name` (`net0/v4`).
    fn add_addr(&self, name: &str, net: Ipv4Net) -> Result<(), NetError>;

    /// Removes the address object `name`; routes whose gateway is no
    /// longer on-link go with it.
    fn del_addr(&self, name: &str) -> Result<AddrInfo, NetError>;

    /// The static routes, in creation order.
    fn routes(&self) -> Vec<RouteInfo>;

    /// Adds a route to `dest` (host bits are cleared) via `gateway`, which
    /// must be on one of the instance's subnets.
    fn add_route(&self, dest: Ipv4Net, gateway: Ipv4Addr) -> Result<RouteInfo, NetError>;

    /// Removes the route to `dest` (through `gateway` if given).
    fn del_route(&self, dest: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<RouteInfo, NetError>;

    /// Whether `dst` is on-link or covered by a route.
    fn reaches(&self, dst: Ipv4Addr) -> bool {
        self.addrs().iter().any(|a| a.net.contains(dst)) || self.routes().iter().any(|r| r.dest.contains(dst))
    }

    // ---- ICMP echo requests ----

    /// Opens an echo requester.
    fn ping_open(&self) -> Result<PingId, NetError>;

    /// Queues an echo request `seq` with `data` to `dst` (sent at the next
    /// poll).
    fn ping_send(&self, id: PingId, dst: Ipv4Addr, seq: u16, data: &[u8]) -> Result<(), NetError>;

    /// The next reply received for `id`.
    fn ping_recv(&self, id: PingId) -> Option<EchoReply>;

    /// Closes the requester.
    fn ping_close(&self, id: PingId);

    // ---- TCP connections of local users ----
    //
    // A bounded number of connections per instance, each with fixed-size
    // buffers, from ephemeral ports. Nothing here blocks: the caller
    // queues and takes data, asks the stack threads to poll
    // (`AdminEnv::poll_now`) and checks [`IpStack::tcp_status`]. Every
    // connection opened must be released with [`IpStack::tcp_close`].

    /// Opens a TCP connection from an ephemeral port of the instance's
    /// address facing `dst` to `dst:port`; the SYN leaves at the next
    /// poll. [`NetError::Unreachable`] if no subnet or route reaches `dst`
    /// (or `dst` is the instance's own and it has no loopback),
    /// [`NetError::TooManyConnections`] when every slot is taken.
    fn tcp_connect(&self, dst: Ipv4Addr, port: u16) -> Result<TcpId, NetError>;

    /// Queues as much of `data` as the send buffer has room for and
    /// returns how much (0 while connecting or when the buffer is full).
    /// [`NetError::NotConnected`] after [`IpStack::tcp_shutdown`]; the
    /// connection's error once it failed.
    fn tcp_send(&self, id: TcpId, data: &[u8]) -> Result<usize, NetError>;

    /// Moves received bytes into `buf` and returns how many (0 if none
    /// are waiting). Once the connection failed and nothing is left to
    /// read, its error.
    fn tcp_recv(&self, id: TcpId, buf: &mut [u8]) -> Result<usize, NetError>;

    /// Finishes sending: a FIN follows the queued data. Receiving goes on.
    fn tcp_shutdown(&self, id: TcpId) -> Result<(), NetError>;

    /// The connection's state and queues.
    fn tcp_status(&self, id: TcpId) -> Result<TcpStatus, NetError>;

    /// Releases the connection; `id` is invalid afterwards. One that is
    /// closing in order finishes in the background (for a bounded time,
    /// then it is reset); any other is reset (RST) at once. Its slot and
    /// buffers are freed when it has finished.
    fn tcp_close(&self, id: TcpId);

    /// The connections opened with [`IpStack::tcp_connect`] that still
    /// hold a slot, released ones finishing in the background included.
    fn tcp_list(&self) -> Vec<(TcpId, TcpStatus)>;

    // ---- UDP sockets of local users ----
    //
    // A few datagram sockets per instance for the shell's tools, bounded
    // receive queues; nothing blocks. Every socket opened must be released
    // with [`IpStack::udp_close`].

    /// Opens a UDP socket on `port` of every address (0: an anonymous
    /// port). [`NetError::AddrInUse`], [`NetError::TooManyConnections`]
    /// when every slot is taken.
    fn udp_open(&self, _port: u16) -> Result<UdpId, NetError> {
        Err(NetError::NotSupported)
    }

    /// Sends one datagram of `data` to `to`.
    fn udp_send_to(&self, _id: UdpId, _to: core::net::SocketAddrV4, _data: &[u8]) -> Result<(), NetError> {
        Err(NetError::NotSupported)
    }

    /// The oldest datagram received: its sender and length, its first
    /// `buf.len()` bytes copied into `buf` (the rest is discarded, as
    /// `recvfrom` truncates). `Ok(None)` when none is waiting.
    fn udp_recv_from(&self, _id: UdpId, _buf: &mut [u8]) -> Result<Option<(core::net::SocketAddrV4, usize)>, NetError> {
        Err(NetError::NotSupported)
    }

    /// Releases the socket; `id` is invalid afterwards.
    fn udp_close(&self, _id: UdpId) {}

    /// Every UDP endpoint of the instance (services' too), for
    /// `netstat -an`. Empty for a stack that does not list them.
    fn udp_endpoints(&self) -> Vec<UdpEndpoint> {
        Vec::new()
    }

    /// Every TCP endpoint of the instance (listeners and connections), for
    /// `netstat -an`. Empty for a stack that does not list them.
    fn tcp_endpoints(&self) -> Vec<TcpEndpoint> {
        Vec::new()
    }

    // ---- statistics ----

    /// The instance's counters.
    fn stats(&self) -> StackStats;

    /// The services' counters.
    fn service_stats(&self) -> Vec<ServiceStats>;

    /// The in-kernel services, for `svcs`. The default lists those of
    /// [`IpStack::service_stats`], all online and not manageable (a stack
    /// whose services always run).
    fn services(&self) -> Vec<SvcInfo> {
        self.service_stats()
            .into_iter()
            .filter_map(|s| {
                let (name, fmri) = service_fmri(s.name, s.proto)?;
                Some(SvcInfo {
                    name,
                    fmri,
                    proto: s.proto,
                    port: s.port,
                    online: true,
                    since_us: None,
                    manageable: false,
                    counters: alloc::vec![("accepted", s.accepted), ("bytes_in", s.bytes_in), ("bytes_out", s.bytes_out)],
                })
            })
            .collect()
    }

    /// Enables or disables the service `name` (a [`SvcInfo::name`]);
    /// [`NetError::NotFound`] for a service the stack does not have,
    /// [`NetError::NotSupported`] where its services cannot be changed.
    fn set_service(&self, _name: &str, _enable: bool) -> Result<(), NetError> {
        Err(NetError::NotSupported)
    }

    /// The protocol MIBs in illumos' `netstat -s` layout: (section name as
    /// illumos prints it — `UDP`, `IPv4`, `ICMPv4` — and its counters, in
    /// order). Empty for a stack that keeps none.
    fn mib(&self) -> Vec<(&'static str, Vec<(&'static str, u64)>)> {
        Vec::new()
    }

    /// The state of address object `name` when the stack decides it
    /// (duplicate-address detection: `tentative`, `ok`, `duplicate`);
    /// `None` leaves it to the link's state.
    fn addr_state(&self, _name: &str) -> Option<&'static str> {
        None
    }

    /// The neighbour (ARP) cache, for `arp -a`. Empty for a stack that does
    /// not show its own.
    fn neighbours(&self) -> Vec<Neighbour> {
        Vec::new()
    }
}
