//! TCP connections opened by local users (`ttcp`): one smoltcp TCP socket
//! per open [`TcpId`], from an ephemeral port, with fixed-size buffers, at
//! most [`MAX_CLIENTS`] per instance.
//!
//! smoltcp tells a socket's state but not why it ended: a socket that
//! reaches `Closed` may have been refused, reset or closed in order. The
//! instance therefore calls [`Clients::observe`] after every received
//! frame and every poll, which remembers the last state seen and turns an
//! unexpected `Closed` into a sticky [`TcpState::Refused`] (from
//! `SYN_SENT`) or [`TcpState::Reset`].
//!
//! Release ([`Clients::close`]): a connection that ended is freed at once,
//! one in `TIME_WAIT` after [`TIME_WAIT_US`] (long enough to acknowledge
//! the peer's FIN, and a retransmission of it); one closing in order is left to finish
//! for at most [`LINGER_US`] (what still arrives is read and dropped),
//! then aborted; anything else is aborted at once. An aborted connection
//! is freed once its RST is out, or after [`RST_GRACE_US`] if it cannot
//! leave. [`Clients::observe`] does the freeing, so every socket leaves the
//! set within a bounded time whatever the user did.

use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use crate::config::MAX_TCP_BUFFER;
use crate::stack::{NetError, TcpId, TcpState, TcpStatus};

/// Connections one instance holds at most, released ones that are still
/// finishing included.
pub const MAX_CLIENTS: usize = 8;
/// Receive and send buffer of each connection, bytes (no window scaling:
/// see [`MAX_TCP_BUFFER`]).
pub const CLIENT_BUFFER: usize = MAX_TCP_BUFFER;
/// How long a released connection may take to finish in order before it
/// is reset, µs.
pub const LINGER_US: u64 = 5_000_000;
/// How long a released connection stays in `TIME_WAIT`, µs (smoltcp's
/// own is 10 s, which would hold the slot for that long).
pub const TIME_WAIT_US: u64 = 1_000_000;
/// How long an aborted connection may wait for its RST to leave (the
/// neighbour may be unknown), µs.
pub const RST_GRACE_US: u64 = 1_000_000;
/// First ephemeral port (IANA dynamic range, as illumos
/// `tcp_smallest_anon_port`).
pub const EPHEMERAL_FIRST: u16 = 49152;
/// Number of ephemeral ports (`49152..=65535`).
const EPHEMERAL_COUNT: u16 = 16384;

struct Client {
    id: TcpId,
    handle: SocketHandle,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    /// The smoltcp state at the last observation.
    last: State,
    /// Set once the connection ended in error; never cleared.
    failed: Option<TcpState>,
    /// Set once the user released it.
    released: Option<Release>,
}

/// The deadlines of a released connection, µs.
#[derive(Clone, Copy)]
struct Release {
    /// Abort it if it has not finished by then.
    abort_at: u64,
    /// Free it by then whatever happened.
    drop_at: u64,
    /// Free it by then once in `TIME_WAIT`.
    time_wait_until: Option<u64>,
}

impl Release {
    fn at(abort_at: u64) -> Release {
        Release { abort_at, drop_at: abort_at.saturating_add(RST_GRACE_US), time_wait_until: None }
    }

    fn next(&self, now: u64) -> u64 {
        let mut t = if self.abort_at > now { self.abort_at } else { self.drop_at };
        if let Some(w) = self.time_wait_until {
            t = t.min(w);
        }
        t.saturating_sub(now)
    }
}

/// The connections of an instance.
pub struct Clients {
    open: Vec<Client>,
    next_id: u32,
    next_port: u16,
    /// The clock of the latest poll, µs.
    now_us: u64,
}

fn state_of(c: &Client, s: &tcp::Socket<'static>) -> TcpState {
    if let Some(f) = c.failed {
        return f;
    }
    match s.state() {
        State::SynSent | State::SynReceived | State::Listen => TcpState::SynSent,
        State::Established => TcpState::Established,
        State::FinWait1 => TcpState::FinWait1,
        State::FinWait2 => TcpState::FinWait2,
        State::Closing => TcpState::Closing,
        State::TimeWait => TcpState::TimeWait,
        State::CloseWait => TcpState::CloseWait,
        State::LastAck => TcpState::LastAck,
        // `observe` has classified every unexpected end as failed.
        State::Closed => TcpState::Closed,
    }
}

impl Clients {
    /// No connections; ephemeral ports start at a place `seed` picks.
    pub fn new(seed: u64) -> Clients {
        let offset = (seed % u64::from(EPHEMERAL_COUNT)) as u16;
        Clients { open: Vec::new(), next_id: 1, next_port: EPHEMERAL_FIRST + offset, now_us: 0 }
    }

    /// Whether there are no connections at all (the common case: the poll
    /// loop then skips [`Clients::observe`]).
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    fn find(&self, id: TcpId) -> Result<&Client, NetError> {
        self.open.iter().find(|c| c.id == id && c.released.is_none()).ok_or(NetError::NotFound)
    }

    fn find_mut(&mut self, id: TcpId) -> Result<&mut Client, NetError> {
        self.open.iter_mut().find(|c| c.id == id && c.released.is_none()).ok_or(NetError::NotFound)
    }

    fn free_port(&mut self) -> u16 {
        loop {
            let p = self.next_port;
            self.next_port = if p == u16::MAX { EPHEMERAL_FIRST } else { p + 1 };
            if !self.open.iter().any(|c| c.local.port() == p) {
                return p;
            }
        }
    }

    /// Opens a connection from `src` to `dst:port`. The caller has checked
    /// that `src` is the instance's and that `dst` is reachable.
    pub fn connect(
        &mut self,
        cx: &mut smoltcp::iface::Context,
        sockets: &mut SocketSet<'static>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        port: u16,
    ) -> Result<TcpId, NetError> {
        if port == 0 {
            return Err(NetError::InvalidArgument);
        }
        if self.open.len() >= MAX_CLIENTS {
            // Released connections in TIME_WAIT have finished: their slots
            // go to new ones first.
            let mut i = 0;
            while i < self.open.len() {
                let c = &self.open[i];
                if c.released.is_some() && sockets.get::<tcp::Socket>(c.handle).state() == State::TimeWait {
                    let c = self.open.swap_remove(i);
                    sockets.remove(c.handle);
                } else {
                    i += 1;
                }
            }
        }
        if self.open.len() >= MAX_CLIENTS {
            return Err(NetError::TooManyConnections);
        }
        let local_port = self.free_port();
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; CLIENT_BUFFER]),
            tcp::SocketBuffer::new(vec![0u8; CLIENT_BUFFER]),
        );
        // The user writes in large pieces; the last small one should not
        // wait for an ACK.
        s.set_nagle_enabled(false);
        let local = IpListenEndpoint { addr: Some(IpAddress::Ipv4(src)), port: local_port };
        s.connect(cx, IpEndpoint::new(IpAddress::Ipv4(dst), port), local).map_err(|e| match e {
            tcp::ConnectError::Unaddressable => NetError::Unreachable,
            tcp::ConnectError::InvalidState => NetError::InvalidArgument,
        })?;
        let handle = sockets.add(s);
        let mut id = self.next_id;
        while self.open.iter().any(|c| c.id.0 == id) {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        self.open.push(Client {
            id: TcpId(id),
            handle,
            local: SocketAddrV4::new(src, local_port),
            remote: SocketAddrV4::new(dst, port),
            last: State::SynSent,
            failed: None,
            released: None,
        });
        Ok(TcpId(id))
    }

    /// Notes state changes (classifying unexpected ends) and frees the
    /// released connections that have finished or run out of time. `now_us`
    /// is the clock of the running poll.
    pub fn observe(&mut self, sockets: &mut SocketSet<'static>, now_us: u64) {
        self.now_us = self.now_us.max(now_us);
        let now = self.now_us;
        let mut i = 0;
        while i < self.open.len() {
            let c = &mut self.open[i];
            let s = sockets.get_mut::<tcp::Socket>(c.handle);
            let st = s.state();
            if st == State::Closed && c.last != State::Closed && c.failed.is_none() {
                let orderly = match c.last {
                    State::TimeWait => true,
                    // The ACK of our FIN (an RST here leaves data unacknowledged).
                    State::LastAck => s.send_queue() == 0,
                    _ => false,
                };
                if !orderly {
                    c.failed = Some(if c.last == State::SynSent { TcpState::Refused } else { TcpState::Reset });
                }
            }
            c.last = st;
            if let Some(r) = &mut c.released {
                if st == State::TimeWait && r.time_wait_until.is_none() {
                    let until = now.saturating_add(TIME_WAIT_US);
                    r.time_wait_until = Some(until);
                    r.drop_at = r.drop_at.max(until);
                }
                // Finished: out of TIME_WAIT, or closed with nothing left to
                // send (an abort's RST leaves with the endpoint cleared).
                let done = r.time_wait_until.is_some_and(|t| now >= t)
                    || (st == State::Closed && s.remote_endpoint().is_none());
                if done || now >= r.drop_at {
                    let c = self.open.swap_remove(i);
                    sockets.remove(c.handle);
                    continue;
                }
                if now >= r.abort_at && st != State::Closed && st != State::TimeWait {
                    s.abort();
                    c.last = State::Closed;
                }
                // Nobody reads any more: keep the window open so that the
                // peer can finish.
                while s.recv(|b| (b.len(), b.len())).is_ok_and(|n| n > 0) {}
            }
            i += 1;
        }
    }

    /// How long until the next deadline of a released connection, µs (for
    /// the poll's answer); `None` if none is released.
    pub fn next_deadline_us(&self) -> Option<u64> {
        let now = self.now_us;
        self.open.iter().filter_map(|c| c.released.as_ref()).map(|r| r.next(now)).min()
    }

    /// Queues what fits of `data`.
    pub fn send(&mut self, sockets: &mut SocketSet<'static>, id: TcpId, data: &[u8]) -> Result<usize, NetError> {
        let c = self.find(id)?;
        if let Some(e) = c.failed.and_then(TcpState::error) {
            return Err(e);
        }
        let s = sockets.get_mut::<tcp::Socket>(c.handle);
        match s.state() {
            State::SynSent | State::SynReceived => Ok(0),
            _ if !s.may_send() => Err(NetError::NotConnected),
            _ => Ok(s.send_slice(data).unwrap_or(0)),
        }
    }

    /// Takes received bytes.
    pub fn recv(&mut self, sockets: &mut SocketSet<'static>, id: TcpId, buf: &mut [u8]) -> Result<usize, NetError> {
        let c = self.find(id)?;
        let s = sockets.get_mut::<tcp::Socket>(c.handle);
        if s.recv_queue() > 0 {
            return Ok(s.recv_slice(buf).unwrap_or(0));
        }
        match c.failed.and_then(TcpState::error) {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }

    /// Sends FIN after the queued data.
    pub fn shutdown(&mut self, sockets: &mut SocketSet<'static>, id: TcpId) -> Result<(), NetError> {
        let c = self.find_mut(id)?;
        if let Some(e) = c.failed.and_then(TcpState::error) {
            return Err(e);
        }
        let s = sockets.get_mut::<tcp::Socket>(c.handle);
        match s.state() {
            // Closing a socket in SYN_SENT would abort it.
            State::SynSent | State::SynReceived => Err(NetError::NotConnected),
            _ => {
                s.close();
                c.last = s.state();
                Ok(())
            }
        }
    }

    /// A connection's snapshot.
    pub fn status(&self, sockets: &SocketSet<'static>, id: TcpId) -> Result<TcpStatus, NetError> {
        let c = self.find(id)?;
        Ok(Self::snapshot(c, sockets))
    }

    fn snapshot(c: &Client, sockets: &SocketSet<'static>) -> TcpStatus {
        let s = sockets.get::<tcp::Socket>(c.handle);
        TcpStatus {
            state: state_of(c, s),
            local: c.local,
            remote: c.remote,
            unacked: s.send_queue(),
            readable: s.recv_queue(),
            closing_in_background: c.released.is_some(),
        }
    }

    /// Every connection holding a slot.
    pub fn list(&self, sockets: &SocketSet<'static>) -> Vec<(TcpId, TcpStatus)> {
        self.open.iter().map(|c| (c.id, Self::snapshot(c, sockets))).collect()
    }

    /// Releases a connection (see the module documentation). Unknown ids
    /// are ignored.
    pub fn close(&mut self, sockets: &mut SocketSet<'static>, id: TcpId) {
        let now = self.now_us;
        let Ok(c) = self.find_mut(id) else { return };
        let s = sockets.get_mut::<tcp::Socket>(c.handle);
        let abort_at = match s.state() {
            State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck => now.saturating_add(LINGER_US),
            State::TimeWait | State::Closed => now,
            _ => {
                s.abort();
                c.last = State::Closed;
                if c.failed.is_none() {
                    c.failed = Some(TcpState::Reset);
                }
                now
            }
        };
        c.released = Some(Release::at(abort_at));
        // Free what has finished already.
        self.observe(sockets, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_ports_wrap_within_the_range() {
        let mut c = Clients::new(u64::from(EPHEMERAL_COUNT) - 2);
        assert_eq!(c.free_port(), 65534);
        assert_eq!(c.free_port(), 65535);
        assert_eq!(c.free_port(), EPHEMERAL_FIRST);
        let c = Clients::new(0x5eed_a4ba_1e57);
        assert!(c.next_port >= EPHEMERAL_FIRST);
    }
}
