//! The in-kernel services of an instance: TCP echo (7), discard (9) and
//! chargen (19), each a bounded pool of connections ([`pool::TcpService`]),
//! and UDP echo (7) ([`udp_echo::UdpEcho`]).
//!
//! The instance calls, under its lock:
//! * [`Services::note_syn`] before handing a SYN to smoltcp (counts the
//!   refusals smoltcp will answer with RST),
//! * [`Services::shield`] before handing it a SYN that belongs to an
//!   existing connection (its listener must not take it),
//! * [`Services::rearm`] after every received frame (a listener that took
//!   a SYN is replaced at once, while a slot is free; a shielded one
//!   listens again),
//! * [`Services::run`] once per poll after the received frames (moves data
//!   between the sockets' buffers, closes finished connections).

pub mod chargen;
pub mod discard;
pub mod echo;
pub mod pool;
pub mod udp_echo;

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use smoltcp::iface::SocketSet;

use crate::config::ServicesConfig;
use crate::smol::rxcheck::Syn;
use crate::stack::ServiceStats;
use pool::{Kind, TcpService};
use udp_echo::UdpEcho;

/// The services of one instance.
pub struct Services {
    tcp: Vec<TcpService>,
    udp: Option<UdpEcho>,
}

impl Services {
    /// Starts the services `cfg` enables, adding their sockets to `sockets`.
    pub fn new(cfg: &ServicesConfig, sockets: &mut SocketSet<'static>) -> Services {
        let mut tcp = Vec::new();
        for (on, kind) in [(cfg.tcp_echo, Kind::Echo), (cfg.tcp_discard, Kind::Discard), (cfg.tcp_chargen, Kind::Chargen)] {
            if on {
                tcp.push(TcpService::new(kind, cfg.max_conns, cfg.tcp_buffer));
            }
        }
        let udp = cfg.udp_echo.then(|| UdpEcho::new(sockets, cfg.udp_packets, cfg.udp_buffer));
        let mut s = Services { tcp, udp };
        s.rearm(sockets);
        s
    }

    /// Notes a SYN about to be handed to smoltcp.
    pub fn note_syn(&mut self, sockets: &SocketSet<'static>, syn: &Syn) {
        for t in &mut self.tcp {
            t.note_syn(sockets, syn);
        }
    }

    /// Closes, for the frame about to be processed, the listener of a
    /// service whose connection `syn` belongs to (see
    /// [`TcpService::shield`]); the next [`Services::rearm`] reopens it.
    pub fn shield(&mut self, sockets: &mut SocketSet<'static>, syn: &Syn) {
        for t in &mut self.tcp {
            t.shield(sockets, syn);
        }
    }

    /// Re-arms listeners that took a connection.
    pub fn rearm(&mut self, sockets: &mut SocketSet<'static>) {
        for t in &mut self.tcp {
            t.rearm(sockets);
        }
    }

    /// Serves every connection and the UDP socket; `scratch` is a copy
    /// buffer, `ours` tells the instance's (unicast) addresses.
    pub fn run(&mut self, sockets: &mut SocketSet<'static>, scratch: &mut [u8], ours: &dyn Fn(Ipv4Addr) -> bool) {
        for t in &mut self.tcp {
            t.run(sockets, scratch);
        }
        if let Some(u) = &mut self.udp {
            u.run(sockets, scratch, ours);
        }
        self.rearm(sockets);
    }

    /// The counters of every service.
    pub fn stats(&self) -> Vec<ServiceStats> {
        let mut v: Vec<ServiceStats> = self.tcp.iter().map(|t| t.stats()).collect();
        if let Some(u) = &self.udp {
            v.push(u.stats());
        }
        v
    }
}
