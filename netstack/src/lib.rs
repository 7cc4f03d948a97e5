//! The IP side of Arbalest: IP stack instances over MAC clients, their
//! addresses and routes, the in-kernel services, `ping`, and the admin
//! commands (`ipadm`, `route`, `netstat`, `ping`, `ttcp`) as host-testable
//! functions.
//!
//! Layout, outside in:
//!
//! * [`link`]: what a stack instance needs from its MAC client ([`Link`]),
//!   implemented by the kernel over the MAC layer.
//! * [`stack`]: the small interface every IP stack implementation offers
//!   ([`IpStack`]) and its plain-data types. The kernel, the admin commands
//!   and [`ping`] use only this, so the stack behind it can change.
//! * [`smol`]: the stack for now, an instance of smoltcp's interface and
//!   sockets ([`IpInstance`]), with the services of [`smol::services`]. The
//!   FireEngine stack will sit next to it and implement the same trait.
//! * [`fireengine`]: FireEngine, the stack being built to replace smoltcp
//!   (squeues, the IP classifier and `conn_t`, IPv4, ARP; see its rooms).
//! * [`config`]: IPv4 prefixes, the `ip=ADDR/PREFIX[,gw=ADDR]` kernel
//!   argument, and the instance's tunables.
//! * [`stats`]: the per-instance counters.
//! * [`ping`]: an ICMP echo requester over [`IpStack`].
//! * [`admin`]: the commands, each `fn(argv, env, out) -> i32` over an
//!   [`admin::AdminEnv`] the kernel's shell provides.
//!
//! Everything is `no_std` + `alloc`, integer-only, and free of `unsafe`.
//! Malformed input is a counted drop, never a panic.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod admin;
pub mod config;
pub mod fireengine;
pub mod link;
pub mod ping;
pub mod services;
pub mod smol;
pub mod stack;
pub mod stats;

pub use config::{InstanceConfig, IpArg, Ipv4Net, ServicesConfig};
pub use link::Link;
pub use ping::Pinger;
pub use smol::IpInstance;
pub use stack::{StackKind, AddrInfo, EchoReply, IpStack, Neighbour, NetError, PingId, RouteInfo, ServiceStats, TcpEndpoint, TcpId, TcpState, TcpStatus, UdpEndpoint, UdpId};
pub use stats::StackStats;

/// IPv4 addresses are `core::net::Ipv4Addr` everywhere in this crate.
pub use core::net::Ipv4Addr;
