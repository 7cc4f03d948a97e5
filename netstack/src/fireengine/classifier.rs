//! The IP classifier: the fanout tables that map a packet to its conn
//! (illumos `ip/ipclassifier.c`; FIREENGINE.md section 2).
//!
//! This room owns the tables and their lookup order, not the conns
//! ([`super::conn::Conn`]) nor what is done with a packet once
//! classified. Tables, after illumos:
//!
//! * connected (`ipcl_conn_fanout`): TCP conns past the handshake, by the
//!   full 5-tuple; sized from memory ([`conn_fanout_size`]).
//! * bind (`ipcl_bind_fanout`, 512 buckets): bound and listening TCP, by
//!   local address and port; a conn bound to an exact address sits before
//!   (so wins over) one bound to INADDR_ANY.
//! * UDP (`ipcl_udp_fanout`, 16 384 buckets): every UDP conn, by local
//!   port; a connected one matches only its foreign address and port. In a
//!   bucket: connected before unconnected, exact local address before
//!   wildcard.
//! * protocol (`ipcl_proto_fanout_v4`, 256 buckets): raw/ICMP conns by
//!   protocol number, same order.
//!
//! [`Classifier::classify_v4`] looks up in illumos' order: TCP in the
//! connected table then the bind table, UDP in the UDP table, and any
//! packet still unmatched in the protocol table. A lookup returns a new
//! reference (the packet's). Walkers ([`Classifier::walk`], the
//! `ipcl_globalhash_fanout` role) see every conn in a table that is
//! neither incipient nor condemned.
//!
//! Each bucket has its own [`RwLock`] (illumos: a lock per bucket; bucket
//! lock before conn lock): lookups take one read lock per table they look
//! in, inserts and removes a write lock. Differences from illumos: every
//! table is bounded (a full table refuses the insert, counted); a conn
//! equal in key to one already in the table is refused (`EADDRINUSE`) in
//! every table, not only the connected one (port-sharing policy such as
//! `SO_REUSEADDR` is the transport's, with [`Classifier::port_in_use`]);
//! a lookup skips condemned conns; delivery to several raw or multicast
//! sockets is IP's, a lookup returns one conn.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arbalest_mac::sync::RwLock;

use super::conn::{CONN_CONDEMNED, CONN_INCIPIENT, ConnRef, ConnTuple, Fanout, Hashed, IPPROTO_TCP, IPPROTO_UDP};

/// Bytes of memory per connected-table bucket (`ipcl_conn_hash_memfactor`).
pub const IPCL_CONN_HASH_MEMFACTOR: u64 = 8192;
/// Most buckets asked for in the connected table before rounding
/// (`ipcl_conn_hash_maxsize`).
pub const IPCL_CONN_HASH_MAXSIZE: u64 = 82_500;
/// Buckets of the bind table (`ipcl_bind_fanout_size`).
pub const IPCL_BIND_FANOUT_SIZE: usize = 512;
/// Buckets of the UDP table (`ipcl_udp_fanout_size`).
pub const IPCL_UDP_FANOUT_SIZE: usize = 16_384;
/// Buckets of the protocol table (`ipcl_raw_fanout_size`).
pub const IPCL_RAW_FANOUT_SIZE: usize = 256;

/// Default bound of the connected, UDP and protocol tables, in entries per
/// bucket.
pub const DEFAULT_ENTRIES_PER_BUCKET: usize = 4;
/// Default bound of the bind table, in entries per bucket (it has few
/// buckets and one listener can serve many conns).
pub const DEFAULT_BIND_ENTRIES_PER_BUCKET: usize = 16;

/// The smallest and largest power of two whose prime the connected table
/// may take (illumos starts its search at 2^9 and falls back to 2^16).
const P2P_MIN_SHIFT: u32 = 9;
const P2P_MAX_SHIFT: u32 = 28;
const P2P_FALLBACK_SHIFT: u32 = 16;

/// How many times an insert retries when a concurrent insert of the same
/// conn keeps hashing it elsewhere.
const INSERT_TRIES: usize = 8;

/// The largest prime at or below `n` (`n` ≥ 2).
fn prime_at_or_below(n: usize) -> usize {
    let is_prime = |k: usize| k >= 2 && (2..).take_while(|d| d * d <= k).all(|d| !k.is_multiple_of(d));
    (2..=n).rev().find(|&k| is_prime(k)).unwrap_or(2)
}

/// The prime used for 2^`shift`: the largest prime at or below
/// 2^shift − 2^(shift−2) (illumos' `P2Ps()` table).
fn p2p_prime(shift: u32) -> usize {
    prime_at_or_below((1usize << shift) - (1usize << (shift - 2)))
}

/// Buckets of the connected table for `bytes` of free memory, as
/// `ipcl_init` sizes it: `bytes / 8192`, capped at 82 500, then the first
/// prime of the 2^N series (from 2^9) at or above it.
pub fn conn_fanout_size(bytes: u64) -> usize {
    let want = (bytes / IPCL_CONN_HASH_MEMFACTOR).min(IPCL_CONN_HASH_MAXSIZE) as usize;
    (P2P_MIN_SHIFT..=P2P_MAX_SHIFT).map(p2p_prime).find(|&p| p >= want).unwrap_or_else(|| p2p_prime(P2P_FALLBACK_SHIFT))
}

/// Table sizes and bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassifierConfig {
    /// Buckets of the connected table.
    pub conn_buckets: usize,
    /// Buckets of the bind table.
    pub bind_buckets: usize,
    /// Buckets of the UDP table.
    pub udp_buckets: usize,
    /// Buckets of the protocol table.
    pub proto_buckets: usize,
    /// Most conns in the connected table.
    pub max_conn: usize,
    /// Most conns in the bind table.
    pub max_bind: usize,
    /// Most conns in the UDP table.
    pub max_udp: usize,
    /// Most conns in the protocol table.
    pub max_proto: usize,
}

impl ClassifierConfig {
    /// The sizes illumos picks with `bytes` of free memory: the connected
    /// table from [`conn_fanout_size`], bind 512, UDP 16 384, protocol 256
    /// buckets; each table bounded to a few entries per bucket.
    pub fn from_memory(bytes: u64) -> ClassifierConfig {
        let conn_buckets = conn_fanout_size(bytes);
        ClassifierConfig {
            conn_buckets,
            bind_buckets: IPCL_BIND_FANOUT_SIZE,
            udp_buckets: IPCL_UDP_FANOUT_SIZE,
            proto_buckets: IPCL_RAW_FANOUT_SIZE,
            max_conn: conn_buckets * DEFAULT_ENTRIES_PER_BUCKET,
            max_bind: IPCL_BIND_FANOUT_SIZE * DEFAULT_BIND_ENTRIES_PER_BUCKET,
            max_udp: IPCL_UDP_FANOUT_SIZE * DEFAULT_ENTRIES_PER_BUCKET,
            max_proto: IPCL_RAW_FANOUT_SIZE * DEFAULT_ENTRIES_PER_BUCKET,
        }
    }
}

/// Why an insert was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassifyError {
    /// A conn with the same key is in the table (`EADDRINUSE`).
    AddrInUse,
    /// The table holds its maximum number of conns.
    TableFull(Fanout),
    /// The conn's protocol or addresses do not fit the table (e.g. UDP in
    /// the connected table, no local port, a connected TCP key without a
    /// foreign address).
    Invalid,
    /// The conn is condemned.
    Condemned,
}

impl fmt::Display for ClassifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassifyError::AddrInUse => f.write_str("address in use"),
            ClassifyError::TableFull(t) => write!(f, "{t:?} fanout table full"),
            ClassifyError::Invalid => f.write_str("conn does not fit the table"),
            ClassifyError::Condemned => f.write_str("conn is condemned"),
        }
    }
}

/// The classifier's counters, copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassifierStats {
    /// Conns in the connected table now.
    pub conns: u64,
    /// Conns in the bind table now.
    pub binds: u64,
    /// Conns in the UDP table now.
    pub udps: u64,
    /// Conns in the protocol table now.
    pub protos: u64,
    /// Inserts done.
    pub inserts: u64,
    /// Conns taken out of a table (removed, or moved by a later insert).
    pub removes: u64,
    /// Inserts refused: connected table full.
    pub conn_full: u64,
    /// Inserts refused: bind table full.
    pub bind_full: u64,
    /// Inserts refused: UDP table full.
    pub udp_full: u64,
    /// Inserts refused: protocol table full.
    pub proto_full: u64,
    /// Inserts refused: same key already in the table.
    pub addr_in_use: u64,
    /// Inserts refused: the conn does not fit the table, or is condemned.
    pub invalid: u64,
}

#[derive(Default)]
struct Counters {
    inserts: AtomicU64,
    removes: AtomicU64,
    conn_full: AtomicU64,
    bind_full: AtomicU64,
    udp_full: AtomicU64,
    proto_full: AtomicU64,
    addr_in_use: AtomicU64,
    invalid: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A conn in a bucket with the key it was inserted under and its place in
/// the bucket's order.
struct Entry<P> {
    key: ConnTuple,
    rank: u8,
    conn: ConnRef<P>,
}

/// Order in a bucket: connected before unconnected, exact local address
/// before wildcard (illumos `IPCL_HASH_INSERT_CONNECTED` / `_BOUND` /
/// `_WILDCARD`).
fn rank(key: &ConnTuple) -> u8 {
    (if key.is_connected() { 0 } else { 2 }) + u8::from(key.is_wildcard())
}

/// One fanout table: buckets each behind its own lock, and a bound.
struct Table<P> {
    buckets: Box<[RwLock<Vec<Entry<P>>>]>,
    count: AtomicUsize,
    max: usize,
}

impl<P> Table<P> {
    fn new(buckets: usize, max: usize) -> Table<P> {
        Table {
            buckets: (0..buckets.max(1)).map(|_| RwLock::new(Vec::new())).collect(),
            count: AtomicUsize::new(0),
            max,
        }
    }

    fn bucket(&self, hash: usize) -> &RwLock<Vec<Entry<P>>> {
        &self.buckets[hash % self.buckets.len()]
    }

    fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Takes one place if the table is not full.
    fn reserve(&self) -> bool {
        self.count.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| (n < self.max).then_some(n + 1)).is_ok()
    }

    fn release(&self) {
        let _ = self.count.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The first live conn of bucket `hash` whose key satisfies `hit`, with
    /// a new reference.
    fn find(&self, hash: usize, hit: impl Fn(&ConnTuple) -> bool) -> Option<ConnRef<P>> {
        let b = self.bucket(hash).read();
        b.iter().find(|e| hit(&e.key) && !e.conn.is_condemned()).map(|e| e.conn.clone())
    }
}

/// Hash of a connected key (`IPCL_CONN_HASH`'s role): all four address
/// parts mixed, for a prime bucket count.
fn conn_hash(k: &ConnTuple) -> usize {
    let ports = (u64::from(k.lport) << 16) | u64::from(k.fport);
    let x = (u64::from(u32::from(k.faddr)) << 32 | ports) ^ u64::from(u32::from(k.laddr)).rotate_left(23);
    let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h ^ (h >> 32)) as usize
}

/// Hash of a local port (bind and UDP tables, power-of-two sizes).
fn port_hash(lport: u16) -> usize {
    usize::from(lport ^ (lport >> 8))
}

/// The IP classifier of one stack instance.
pub struct Classifier<P> {
    config: ClassifierConfig,
    conn: Table<P>,
    bind: Table<P>,
    udp: Table<P>,
    proto: Table<P>,
    /// Conns per (protocol, local port) in the port-bearing tables, for
    /// [`Classifier::port_in_use`].
    ports: RwLock<BTreeMap<(u8, u16), u32>>,
    counters: Counters,
}

impl<P: Send + Sync> Classifier<P> {
    /// Empty tables of the sizes in `config` (a bucket count of 0 is taken
    /// as 1).
    pub fn new(config: ClassifierConfig) -> Classifier<P> {
        Classifier {
            config,
            conn: Table::new(config.conn_buckets, config.max_conn),
            bind: Table::new(config.bind_buckets, config.max_bind),
            udp: Table::new(config.udp_buckets, config.max_udp),
            proto: Table::new(config.proto_buckets, config.max_proto),
            ports: RwLock::new(BTreeMap::new()),
            counters: Counters::default(),
        }
    }

    /// The sizes and bounds the classifier was made with.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// The bucket count of table `t`.
    pub fn buckets(&self, t: Fanout) -> usize {
        self.table(t).buckets.len()
    }

    /// Conns in all tables.
    pub fn len(&self) -> usize {
        self.conn.len() + self.bind.len() + self.udp.len() + self.proto.len()
    }

    /// True when no table holds a conn.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Conns in table `t`.
    pub fn len_of(&self, t: Fanout) -> usize {
        self.table(t).len()
    }

    /// The counters.
    pub fn stats(&self) -> ClassifierStats {
        let c = &self.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClassifierStats {
            conns: self.conn.len() as u64,
            binds: self.bind.len() as u64,
            udps: self.udp.len() as u64,
            protos: self.proto.len() as u64,
            inserts: r(&c.inserts),
            removes: r(&c.removes),
            conn_full: r(&c.conn_full),
            bind_full: r(&c.bind_full),
            udp_full: r(&c.udp_full),
            proto_full: r(&c.proto_full),
            addr_in_use: r(&c.addr_in_use),
            invalid: r(&c.invalid),
        }
    }

    /// Inserts a connected TCP conn under its 5-tuple (`ipcl_conn_insert`):
    /// it needs a local address and port and a foreign address and port.
    /// Moves the conn out of any table it was in (e.g. the bind table).
    pub fn insert_connected(&self, conn: &ConnRef<P>) -> Result<(), ClassifyError> {
        self.insert(Fanout::Conn, conn)
    }

    /// Inserts a bound or listening TCP conn under its local address (may
    /// be INADDR_ANY) and port (`ipcl_bind_insert`); the foreign part is
    /// ignored.
    pub fn insert_bind(&self, conn: &ConnRef<P>) -> Result<(), ClassifyError> {
        self.insert(Fanout::Bind, conn)
    }

    /// Inserts a UDP conn under its local port, with its local address and,
    /// when connected, its foreign address and port (both set or neither).
    pub fn insert_udp(&self, conn: &ConnRef<P>) -> Result<(), ClassifyError> {
        self.insert(Fanout::Udp, conn)
    }

    /// Inserts a raw/ICMP conn under its protocol number, with its local
    /// and (optional) foreign address; ports are ignored.
    pub fn insert_proto(&self, conn: &ConnRef<P>) -> Result<(), ClassifyError> {
        self.insert(Fanout::Proto, conn)
    }

    /// Marks `conn` CONDEMNED and takes it out of whichever table holds it
    /// (dropping the table's reference); true if it was in one. Packets
    /// and entries holding references finish with it; later lookups miss.
    pub fn remove(&self, conn: &ConnRef<P>) -> bool {
        conn.condemn();
        self.unhash(conn)
    }

    /// Takes `conn` out of whichever table holds it without condemning it
    /// (`ipcl_hash_remove`); true if it was in one.
    pub fn unhash(&self, conn: &ConnRef<P>) -> bool {
        for _ in 0..INSERT_TRIES {
            let Some(h) = conn.hashed() else { return false };
            let table = self.table(h.fanout);
            let mut b = table.bucket(Self::hash(h.fanout, &h.key)).write();
            let at = b.iter().position(|e| Arc::ptr_eq(&e.conn, conn));
            let taken = conn.with_hashed(|cur, _| match (*cur == Some(h), at) {
                // Moved meanwhile: look again.
                (false, _) => None,
                (true, Some(i)) => {
                    *cur = None;
                    Some(Some(i))
                }
                // Hashed, but not in our bucket: in another classifier.
                (true, None) => Some(None),
            });
            let i = match taken {
                None => continue,
                Some(None) => return false,
                Some(Some(i)) => i,
            };
            let e = b.remove(i);
            if b.is_empty() {
                // An emptied bucket gives its allocation back: otherwise
                // every bucket a conn ever hashed to keeps one, and the
                // heap grows with the number of buckets ever used.
                b.shrink_to_fit();
            }
            table.release();
            self.port_count(h.fanout, &h.key, false);
            drop(b);
            bump(&self.counters.removes);
            // The table's reference goes here, outside the bucket lock.
            drop(e);
            return true;
        }
        false
    }

    /// Finds the conn of a packet from `src:sport` to `dst:dport` with IP
    /// protocol `proto` (`ipcl_classify_v4` and the protocol fanout): TCP
    /// in the connected table then the bind table (exact local address
    /// before INADDR_ANY), UDP in the UDP table, then, for any protocol
    /// still unmatched, the protocol table. Ports are ignored for other
    /// protocols. Returns a new reference.
    pub fn classify_v4(&self, proto: u8, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Option<ConnRef<P>> {
        let hit = match proto {
            IPPROTO_TCP => self
                .lookup_connected(&ConnTuple::connected(proto, dst, dport, src, sport))
                .or_else(|| self.lookup_listener(dst, dport)),
            IPPROTO_UDP => self.lookup_udp(src, sport, dst, dport),
            _ => None,
        };
        hit.or_else(|| self.lookup_proto(proto, src, dst))
    }

    /// The connected conn with exactly `key` (local side: laddr/lport are
    /// ours), if any.
    pub fn lookup_connected(&self, key: &ConnTuple) -> Option<ConnRef<P>> {
        self.conn.find(conn_hash(key), |k| k == key)
    }

    /// The TCP conn in the bind table for a packet to `dst:dport`
    /// (`ipcl_lookup_listener_v4`): bound to `dst` exactly, else to
    /// INADDR_ANY.
    pub fn lookup_listener(&self, dst: Ipv4Addr, dport: u16) -> Option<ConnRef<P>> {
        self.bind.find(port_hash(dport), |k| {
            k.proto == IPPROTO_TCP && k.lport == dport && (k.laddr == dst || k.is_wildcard())
        })
    }

    /// The UDP conn for a datagram from `src:sport` to `dst:dport`: a
    /// connected conn only if it is connected to `src:sport`; exact local
    /// address before wildcard.
    pub fn lookup_udp(&self, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Option<ConnRef<P>> {
        self.udp.find(port_hash(dport), |k| {
            k.lport == dport
                && (k.laddr == dst || k.is_wildcard())
                && (!k.is_connected() || (k.faddr == src && k.fport == sport))
        })
    }

    /// The raw conn of protocol `proto` for a packet from `src` to `dst`:
    /// one connected to `src` first, exact local address before wildcard.
    pub fn lookup_proto(&self, proto: u8, src: Ipv4Addr, dst: Ipv4Addr) -> Option<ConnRef<P>> {
        self.proto.find(usize::from(proto), |k| {
            k.proto == proto && (k.laddr == dst || k.is_wildcard()) && (!k.is_connected() || k.faddr == src)
        })
    }

    /// True when a conn of protocol `proto` in any table holds local port
    /// `lport` (for choosing an ephemeral port).
    pub fn port_in_use(&self, proto: u8, lport: u16) -> bool {
        self.ports.read().contains_key(&(proto, lport))
    }

    /// Calls `f` on every conn in a table that is neither incipient nor
    /// condemned (`ipcl_walk`, the globalhash role). Not atomic: conns may
    /// come and go meanwhile; no lock is held while `f` runs, so it may use
    /// the classifier.
    pub fn walk(&self, f: &mut dyn FnMut(&ConnRef<P>)) {
        let mut seen: Vec<ConnRef<P>> = Vec::new();
        for table in [&self.conn, &self.bind, &self.udp, &self.proto] {
            if table.len() == 0 {
                continue;
            }
            for bucket in table.buckets.iter() {
                {
                    let b = bucket.read();
                    let live = b.iter().filter(|e| e.conn.flags() & (CONN_INCIPIENT | CONN_CONDEMNED) == 0);
                    seen.extend(live.map(|e| e.conn.clone()));
                }
                for c in seen.drain(..) {
                    f(&c);
                }
            }
        }
    }

    fn table(&self, t: Fanout) -> &Table<P> {
        match t {
            Fanout::Conn => &self.conn,
            Fanout::Bind => &self.bind,
            Fanout::Udp => &self.udp,
            Fanout::Proto => &self.proto,
        }
    }

    fn hash(t: Fanout, key: &ConnTuple) -> usize {
        match t {
            Fanout::Conn => conn_hash(key),
            Fanout::Bind | Fanout::Udp => port_hash(key.lport),
            Fanout::Proto => usize::from(key.proto),
        }
    }

    /// The key `tuple` is filed under in table `t`, or None if it does not
    /// fit the table.
    fn key_for(t: Fanout, tuple: &ConnTuple) -> Option<ConnTuple> {
        match t {
            Fanout::Conn => (tuple.proto == IPPROTO_TCP
                && tuple.lport != 0
                && tuple.fport != 0
                && !tuple.laddr.is_unspecified()
                && tuple.is_connected())
            .then_some(*tuple),
            Fanout::Bind => (tuple.proto == IPPROTO_TCP && tuple.lport != 0).then_some(ConnTuple::bound(
                tuple.proto,
                tuple.laddr,
                tuple.lport,
            )),
            Fanout::Udp => {
                (tuple.proto == IPPROTO_UDP && tuple.lport != 0 && tuple.is_connected() == (tuple.fport != 0))
                    .then_some(*tuple)
            }
            Fanout::Proto => Some(ConnTuple { lport: 0, fport: 0, ..*tuple }),
        }
    }

    /// Counts a conn in or out of `(proto, lport)` for the port-bearing
    /// tables (called under the bucket lock).
    fn port_count(&self, t: Fanout, key: &ConnTuple, add: bool) {
        if t == Fanout::Proto {
            return;
        }
        let mut ports = self.ports.write();
        let k = (key.proto, key.lport);
        if add {
            *ports.entry(k).or_insert(0) += 1;
        } else if let Some(n) = ports.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                ports.remove(&k);
            }
        }
    }

    fn refuse(&self, e: ClassifyError) -> Result<(), ClassifyError> {
        let c = &self.counters;
        bump(match e {
            ClassifyError::AddrInUse => &c.addr_in_use,
            ClassifyError::TableFull(Fanout::Conn) => &c.conn_full,
            ClassifyError::TableFull(Fanout::Bind) => &c.bind_full,
            ClassifyError::TableFull(Fanout::Udp) => &c.udp_full,
            ClassifyError::TableFull(Fanout::Proto) => &c.proto_full,
            ClassifyError::Invalid | ClassifyError::Condemned => &c.invalid,
        });
        Err(e)
    }

    /// Checks bucket `b` for `key`: Some(Ok) if `conn` itself is there
    /// under it (nothing to do), Some(Err) if another conn is.
    fn duplicate(b: &[Entry<P>], key: &ConnTuple, conn: &ConnRef<P>) -> Option<Result<(), ClassifyError>> {
        b.iter()
            .find(|e| e.key == *key)
            .map(|e| if Arc::ptr_eq(&e.conn, conn) { Ok(()) } else { Err(ClassifyError::AddrInUse) })
    }

    fn insert(&self, t: Fanout, conn: &ConnRef<P>) -> Result<(), ClassifyError> {
        if conn.is_condemned() {
            return self.refuse(ClassifyError::Condemned);
        }
        let Some(key) = Self::key_for(t, &conn.tuple()) else {
            return self.refuse(ClassifyError::Invalid);
        };
        let table = self.table(t);
        let bucket = table.bucket(Self::hash(t, &key));
        // Refuse a duplicate before taking the conn out of its old table.
        match Self::duplicate(&bucket.read(), &key, conn) {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => return self.refuse(e),
            None => {}
        }
        for _ in 0..INSERT_TRIES {
            self.unhash(conn);
            let mut b = bucket.write();
            match Self::duplicate(&b, &key, conn) {
                Some(Ok(())) => return Ok(()),
                Some(Err(e)) => return self.refuse(e),
                None => {}
            }
            let placed = conn.with_hashed(|hashed, _| {
                if conn.is_condemned() {
                    return Err(ClassifyError::Condemned);
                }
                if hashed.is_some() {
                    // Hashed again meanwhile by another thread: retry.
                    return Ok(false);
                }
                if !table.reserve() {
                    return Err(ClassifyError::TableFull(t));
                }
                *hashed = Some(Hashed { fanout: t, key });
                Ok(true)
            });
            match placed {
                Ok(true) => {
                    let r = rank(&key);
                    let at = b.iter().position(|e| e.rank > r).unwrap_or(b.len());
                    b.insert(at, Entry { key, rank: r, conn: conn.clone() });
                    self.port_count(t, &key, true);
                    bump(&self.counters.inserts);
                    return Ok(());
                }
                Ok(false) => continue,
                Err(e) => return self.refuse(e),
            }
        }
        self.refuse(ClassifyError::AddrInUse)
    }
}

impl<P> fmt::Debug for Classifier<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("config", &self.config)
            .field("conns", &self.conn.len())
            .field("binds", &self.bind.len())
            .field("udps", &self.udp.len())
            .field("protos", &self.proto.len())
            .finish_non_exhaustive()
    }
}
