//! The TCP endpoints of a smoltcp instance, for `netstat -an`: every TCP
//! socket of its socket set that is listening or connected (the
//! services' listeners and connections, and the users' client
//! connections), in illumos' terms ([`TcpEndpoint`]).
//!
//! smoltcp keeps less than illumos' `tcp_t`: the peer's advertised window
//! is private to it, so `Swind` is the room left in the send buffer;
//! `Send-Q` is what the send buffer holds (unsent and unacknowledged),
//! `Recv-Q` what the receive buffer holds, `Rwind` its free room. Closed
//! sockets (spare slots, finished connections not yet released) are not
//! endpoints and are left out.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::SocketSet;
use smoltcp::socket::Socket;
use smoltcp::socket::tcp::{self, State};
use smoltcp::wire::IpAddress;

use crate::stack::TcpEndpoint;

/// illumos' name of a smoltcp state (`mitcp_state`); `None` for `Closed`.
pub fn state_name(s: State) -> Option<&'static str> {
    Some(match s {
        State::Closed => return None,
        State::Listen => "LISTEN",
        State::SynSent => "SYN_SENT",
        State::SynReceived => "SYN_RCVD",
        State::Established => "ESTABLISHED",
        State::FinWait1 => "FIN_WAIT_1",
        State::FinWait2 => "FIN_WAIT_2",
        State::CloseWait => "CLOSE_WAIT",
        State::Closing => "CLOSING",
        State::LastAck => "LAST_ACK",
        State::TimeWait => "TIME_WAIT",
    })
}

fn v4(a: IpAddress) -> Ipv4Addr {
    #[allow(irrefutable_let_patterns)]
    if let IpAddress::Ipv4(a) = a { a } else { Ipv4Addr::UNSPECIFIED }
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The endpoint of one socket, if it is one.
fn endpoint(s: &tcp::Socket<'_>) -> Option<TcpEndpoint> {
    let state = state_name(s.state())?;
    if s.state() == State::Listen {
        let l = s.listen_endpoint();
        let addr = l.addr.map_or(Ipv4Addr::UNSPECIFIED, v4);
        return Some(TcpEndpoint {
            local: SocketAddrV4::new(addr, l.port),
            remote: None,
            swind: 0,
            send_q: 0,
            rwind: clamp(s.recv_capacity()),
            recv_q: 0,
            state,
        });
    }
    let local = s.local_endpoint()?;
    let remote = s.remote_endpoint()?;
    Some(TcpEndpoint {
        local: SocketAddrV4::new(v4(local.addr), local.port),
        remote: Some(SocketAddrV4::new(v4(remote.addr), remote.port)),
        swind: clamp(s.send_capacity().saturating_sub(s.send_queue())),
        send_q: clamp(s.send_queue()),
        rwind: clamp(s.recv_capacity().saturating_sub(s.recv_queue())),
        recv_q: clamp(s.recv_queue()),
        state,
    })
}

/// Every TCP endpoint in `sockets`, by local port, each port's listeners
/// before its connections.
pub fn endpoints(sockets: &SocketSet<'static>) -> Vec<TcpEndpoint> {
    let mut v: Vec<TcpEndpoint> = sockets
        .iter()
        .filter_map(|(_, s)| match s {
            Socket::Tcp(t) => endpoint(t),
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .collect();
    v.sort_by_key(|e| (e.local.port(), e.remote.is_some(), *e.local.ip(), e.remote.map(|r| (*r.ip(), r.port()))));
    v
}
