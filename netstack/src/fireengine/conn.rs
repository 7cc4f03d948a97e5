//! `conn_t`: one per endpoint (illumos `ipclassifier.h`; FIREENGINE.md
//! section 2).
//!
//! This room owns the connection structure and its reference rule, nothing
//! else: a [`Conn`] holds the protocol number, the local and foreign
//! address and port ([`ConnTuple`]), the squeue it is bound to
//! (`conn_sqp`), the state flags `CONN_INCIPIENT` / `CONN_CONDEMNED`, and
//! the protocol's own block `P` (udp_t, icmp_t, later tcp_t; the instance
//! defines them). The fanout tables that find a conn are the classifier's.
//!
//! References are [`ConnRef`]s (`Arc<Conn<P>>`): the classifier's table
//! holds one, every lookup hands out one more (the packet's, dropped when
//! the packet is done), every queued squeue entry and running timer holds
//! one. The memory goes when the last one does, so a packet that found a
//! conn may finish with it after the conn was removed (it sees
//! [`Conn::is_condemned`]).
//!
//! Addresses sit behind the conn lock and are read as one tuple; changing
//! them takes effect in the classifier when the conn is inserted again
//! (as illumos re-inserts after `bind`/`connect`).

use alloc::sync::Arc;
use core::fmt;
use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU32, Ordering};

use arbalest_mac::sync::Mutex;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;

/// `CONN_INCIPIENT`: being set up; walkers skip it.
pub const CONN_INCIPIENT: u32 = 1 << 0;
/// `CONN_CONDEMNED`: being torn down; walkers and lookups skip it, and the
/// classifier will not insert it again.
pub const CONN_CONDEMNED: u32 = 1 << 1;

/// A reference to a conn (illumos `CONN_INC_REF` is a clone, `CONN_DEC_REF`
/// a drop).
pub type ConnRef<P> = Arc<Conn<P>>;

/// The addresses of a conn, the classifier's key: protocol, local address
/// and port, foreign address and port. Unset parts are `0.0.0.0` / 0
/// (INADDR_ANY, no port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnTuple {
    /// IP protocol number.
    pub proto: u8,
    /// Local address (`0.0.0.0` = any).
    pub laddr: Ipv4Addr,
    /// Local port (0 = none).
    pub lport: u16,
    /// Foreign address (`0.0.0.0` = not connected).
    pub faddr: Ipv4Addr,
    /// Foreign port (0 = not connected).
    pub fport: u16,
}

impl ConnTuple {
    /// A tuple bound to `laddr:lport`, not connected.
    pub const fn bound(proto: u8, laddr: Ipv4Addr, lport: u16) -> ConnTuple {
        ConnTuple { proto, laddr, lport, faddr: Ipv4Addr::UNSPECIFIED, fport: 0 }
    }

    /// A fully specified tuple (a connected endpoint).
    pub const fn connected(proto: u8, laddr: Ipv4Addr, lport: u16, faddr: Ipv4Addr, fport: u16) -> ConnTuple {
        ConnTuple { proto, laddr, lport, faddr, fport }
    }

    /// True when the foreign address is set.
    pub fn is_connected(&self) -> bool {
        !self.faddr.is_unspecified()
    }

    /// True when the local address is INADDR_ANY.
    pub fn is_wildcard(&self) -> bool {
        self.laddr.is_unspecified()
    }
}

/// The fanout table a conn is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fanout {
    /// `ipcl_conn_fanout`: connected TCP, by 5-tuple.
    Conn,
    /// `ipcl_bind_fanout`: bound/listening TCP, by local address and port.
    Bind,
    /// `ipcl_udp_fanout`: UDP, by local port.
    Udp,
    /// `ipcl_proto_fanout_v4`: raw/ICMP, by protocol.
    Proto,
}

/// Where the classifier hashed a conn: the table and the key it used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hashed {
    /// The table.
    pub fanout: Fanout,
    /// The key the conn was inserted under.
    pub key: ConnTuple,
}

/// What the conn lock protects.
struct Locked {
    tuple: ConnTuple,
    hashed: Option<Hashed>,
}

/// `conn_t`: an endpoint's addresses, squeue, state flags and protocol
/// block.
pub struct Conn<P> {
    protocol: u8,
    locked: Mutex<Locked>,
    sqp: AtomicU32,
    flags: AtomicU32,
    /// The protocol's own block (udp_t, icmp_t, tcp_t), owned by the
    /// instance.
    pub proto: P,
}

impl<P: Send + Sync> Conn<P> {
    /// A new conn with addresses `tuple`, bound to squeue `sqp`, carrying
    /// `proto`; no flags set, in no table. The caller's reference is the
    /// first.
    pub fn new(tuple: ConnTuple, sqp: u32, proto: P) -> ConnRef<P> {
        Arc::new(Conn {
            protocol: tuple.proto,
            locked: Mutex::new(Locked { tuple, hashed: None }),
            sqp: AtomicU32::new(sqp),
            flags: AtomicU32::new(0),
            proto,
        })
    }

    /// Like [`new`](Self::new), with `CONN_INCIPIENT` set (cleared by
    /// [`clear_incipient`](Self::clear_incipient) once set up).
    pub fn new_incipient(tuple: ConnTuple, sqp: u32, proto: P) -> ConnRef<P> {
        let c = Conn::new(tuple, sqp, proto);
        c.flags.fetch_or(CONN_INCIPIENT, Ordering::SeqCst);
        c
    }
}

impl<P> Conn<P> {
    /// The IP protocol number (fixed for the conn's life).
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// The addresses, read together under the conn lock.
    pub fn tuple(&self) -> ConnTuple {
        self.locked.lock().tuple
    }

    /// Local address.
    pub fn laddr(&self) -> Ipv4Addr {
        self.tuple().laddr
    }

    /// Local port.
    pub fn lport(&self) -> u16 {
        self.tuple().lport
    }

    /// Foreign address (`0.0.0.0` until connected).
    pub fn faddr(&self) -> Ipv4Addr {
        self.tuple().faddr
    }

    /// Foreign port (0 until connected).
    pub fn fport(&self) -> u16 {
        self.tuple().fport
    }

    /// True when the foreign address is set.
    pub fn is_connected(&self) -> bool {
        self.tuple().is_connected()
    }

    /// Sets the local address and port (bind). Takes effect in the
    /// classifier at the next insert.
    pub fn set_local(&self, laddr: Ipv4Addr, lport: u16) {
        let mut l = self.locked.lock();
        l.tuple.laddr = laddr;
        l.tuple.lport = lport;
    }

    /// Sets the foreign address and port (connect; `0.0.0.0`/0
    /// disconnects). Takes effect in the classifier at the next insert.
    pub fn set_foreign(&self, faddr: Ipv4Addr, fport: u16) {
        let mut l = self.locked.lock();
        l.tuple.faddr = faddr;
        l.tuple.fport = fport;
    }

    /// The id of the squeue the conn is bound to (`conn_sqp`).
    pub fn sqp(&self) -> u32 {
        self.sqp.load(Ordering::Acquire)
    }

    /// Moves the conn to squeue `id`. Only code running inside the conn's
    /// current squeue may do this, and it must leave straight after.
    pub fn set_sqp(&self, id: u32) {
        self.sqp.store(id, Ordering::Release);
    }

    /// The state flags ([`CONN_INCIPIENT`], [`CONN_CONDEMNED`]).
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }

    /// True while being set up.
    pub fn is_incipient(&self) -> bool {
        self.flags() & CONN_INCIPIENT != 0
    }

    /// Clears `CONN_INCIPIENT`: walkers see the conn from now on.
    pub fn clear_incipient(&self) {
        self.flags.fetch_and(!CONN_INCIPIENT, Ordering::AcqRel);
    }

    /// True once the conn is being torn down.
    pub fn is_condemned(&self) -> bool {
        self.flags() & CONN_CONDEMNED != 0
    }

    /// Sets `CONN_CONDEMNED` (for good); true if this call set it.
    pub fn condemn(&self) -> bool {
        self.flags.fetch_or(CONN_CONDEMNED, Ordering::SeqCst) & CONN_CONDEMNED == 0
    }

    /// The table the conn is in and the key it was inserted under, if any.
    pub fn hashed(&self) -> Option<Hashed> {
        self.locked.lock().hashed
    }

    /// The number of references (`conn_ref`): the Arc's strong count.
    pub fn refcnt(self: &Arc<Self>) -> usize {
        Arc::strong_count(self)
    }

    /// Runs `f` on the conn lock's contents (the classifier records where
    /// it hashed the conn, under its bucket lock then this one).
    pub(crate) fn with_hashed<R>(&self, f: impl FnOnce(&mut Option<Hashed>, &ConnTuple) -> R) -> R {
        let mut l = self.locked.lock();
        let Locked { tuple, hashed } = &mut *l;
        f(hashed, tuple)
    }
}

impl<P> fmt::Debug for Conn<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.locked.lock();
        f.debug_struct("Conn")
            .field("tuple", &l.tuple)
            .field("hashed", &l.hashed)
            .field("sqp", &self.sqp())
            .field("flags", &self.flags())
            .finish_non_exhaustive()
    }
}
