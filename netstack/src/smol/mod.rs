//! `smol`: an IP stack instance built on smoltcp's `Interface` and sockets
//! ([`IpInstance`]). This is the stack until FireEngine lands; it stays as
//! a selectable alternative and a test peer afterwards, so everything
//! smoltcp-specific lives in this module and the rest of the crate sees it
//! only through [`crate::IpStack`].
//!
//! * [`instance`]: the instance, its locking and its poll loop.
//! * [`device`]: the smoltcp `Device` over a [`crate::Link`].
//! * [`rxcheck`]: header and checksum validation of received frames, so
//!   that every drop is counted (smoltcp drops malformed frames silently).
//! * [`requester`]: ICMP sockets for echo requests (`ping`).
//! * [`client`]: TCP connections opened by local users (`ttcp`).
//! * [`udp_users`]: UDP sockets opened by local users (`udpecho`).
//! * [`tcp_endpoints`]: the TCP sockets as `netstat -an` lists them.
//! * [`reass`]: reassembly of received IPv4 fragments.
//! * [`services`]: TCP echo/discard/chargen and UDP echo.

pub mod client;
pub mod device;
pub mod instance;
pub mod reass;
pub mod requester;
pub mod rxcheck;
pub mod services;
pub mod tcp_endpoints;
pub mod udp_users;

pub use instance::IpInstance;
