//! FireEngine's IPv4 routing table (illumos' forwarding table of IREs, in
//! its simplest form): longest-prefix match over interface routes (a
//! subnet of one of the instance's addresses: deliver on-link) and gateway
//! routes (deliver to a next hop that is on-link).
//!
//! One ordered map per prefix length, probed from /32 down to /0, so a
//! lookup costs at most 33 map probes however many routes there are, and
//! the lengths that hold no route are skipped with a bitmap. Every change
//! bumps a generation number: a conn that caches its route's result (next
//! hop, source address) checks the generation before trusting it.
//!
//! Bounded: at most `max_routes` routes; beyond, adding is refused.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::config::Ipv4Net;
use crate::stack::NetError;

/// Where a route sends a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// The destination is on the link: resolve it directly. `src` is the
    /// interface address whose subnet this is.
    OnLink {
        /// Source address for packets sent through this route.
        src: Ipv4Addr,
    },
    /// Send to this gateway (itself on-link).
    Gateway(Ipv4Addr),
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix, host bits clear.
    pub dest: Ipv4Net,
    /// Where it goes.
    pub via: NextHop,
}

/// The result of a lookup that a sender needs: the neighbour to resolve
/// and the source address to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The address to resolve with ARP (the destination or the gateway).
    pub next_hop: Ipv4Addr,
    /// The interface address to send from.
    pub src: Ipv4Addr,
    /// The table's generation when this was looked up.
    pub generation: u64,
}

/// The routing table of one instance.
#[derive(Debug)]
pub struct RouteTable {
    /// Prefix length → (network bits → route). Index 0..=32.
    by_len: Vec<BTreeMap<u32, Route>>,
    /// Bit `n` set: `by_len[n]` is not empty.
    lens: u64,
    /// Insertion order of destinations, for listing.
    order: Vec<Ipv4Net>,
    max_routes: usize,
    generation: u64,
}

impl RouteTable {
    /// An empty table holding at most `max_routes` routes.
    pub fn new(max_routes: usize) -> RouteTable {
        RouteTable { by_len: (0..=32).map(|_| BTreeMap::new()).collect(), lens: 0, order: Vec::new(), max_routes, generation: 1 }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Bumped on every change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Makes this (new) table's generation follow `older`'s, so that a
    /// rebuilt table never repeats a generation a conn may have cached.
    pub fn continue_from(&mut self, older: u64) {
        self.generation = self.generation.saturating_add(older);
    }

    /// Adds a route to `dest` (host bits are cleared). One route per
    /// destination prefix.
    pub fn add(&mut self, dest: Ipv4Net, via: NextHop) -> Result<Route, NetError> {
        let dest = dest.trunc();
        let len = usize::from(dest.prefix());
        let key = dest.network().to_bits();
        if self.by_len[len].contains_key(&key) {
            return Err(NetError::RouteExists);
        }
        if self.order.len() >= self.max_routes {
            return Err(NetError::TooManyRoutes);
        }
        let r = Route { dest, via };
        self.by_len[len].insert(key, r);
        self.lens |= 1 << len;
        self.order.push(dest);
        self.generation += 1;
        Ok(r)
    }

    /// Removes the route to `dest` (whose next hop must match `via` if
    /// given).
    pub fn delete(&mut self, dest: Ipv4Net, via: Option<NextHop>) -> Result<Route, NetError> {
        let dest = dest.trunc();
        let len = usize::from(dest.prefix());
        let key = dest.network().to_bits();
        match self.by_len[len].get(&key) {
            Some(r) if via.is_none_or(|v| v == r.via) => {}
            _ => return Err(NetError::RouteNotFound),
        }
        let r = self.by_len[len].remove(&key).ok_or(NetError::RouteNotFound)?;
        if self.by_len[len].is_empty() {
            self.lens &= !(1 << len);
        }
        self.order.retain(|d| *d != dest);
        self.generation += 1;
        Ok(r)
    }

    /// Removes every route for which `f` is true; returns them.
    pub fn delete_where(&mut self, mut f: impl FnMut(&Route) -> bool) -> Vec<Route> {
        let doomed: Vec<Route> = self.list().into_iter().filter(|r| f(r)).collect();
        for r in &doomed {
            let _ = self.delete(r.dest, Some(r.via));
        }
        doomed
    }

    /// The most specific route covering `dst`.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<Route> {
        let bits = dst.to_bits();
        let mut lens = self.lens;
        while lens != 0 {
            // Longest first: the highest set bit.
            let len = 63 - lens.leading_zeros() as usize;
            lens &= !(1 << len);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            if let Some(r) = self.by_len[len].get(&(bits & mask)) {
                return Some(*r);
            }
        }
        None
    }

    /// Where a packet to `dst` goes: the neighbour to resolve and the
    /// source address. A gateway route's source is that of the interface
    /// route covering the gateway; a gateway that no interface route covers
    /// makes `dst` unreachable. `None`: no route.
    pub fn resolve(&self, dst: Ipv4Addr) -> Option<Resolved> {
        let r = self.lookup(dst)?;
        let (next_hop, src) = match r.via {
            NextHop::OnLink { src } => (dst, src),
            NextHop::Gateway(gw) => match self.lookup(gw)?.via {
                NextHop::OnLink { src } => (gw, src),
                NextHop::Gateway(_) => return None,
            },
        };
        Some(Resolved { next_hop, src, generation: self.generation })
    }

    /// Every route, in the order they were added.
    pub fn list(&self) -> Vec<Route> {
        self.order
            .iter()
            .filter_map(|d| self.by_len[usize::from(d.prefix())].get(&d.network().to_bits()).copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(a: [u8; 4], p: u8) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::from(a), p).unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_gateways_resolve_through_interface_routes() {
        let mut t = RouteTable::new(16);
        let src = Ipv4Addr::new(10, 0, 0, 2);
        t.add(net([10, 0, 0, 0], 24), NextHop::OnLink { src }).unwrap();
        t.add(Ipv4Net::DEFAULT, NextHop::Gateway(Ipv4Addr::new(10, 0, 0, 1))).unwrap();
        t.add(net([192, 168, 7, 9], 16), NextHop::Gateway(Ipv4Addr::new(10, 0, 0, 254))).unwrap();
        let g0 = t.generation();
        let r = t.resolve(Ipv4Addr::new(10, 0, 0, 77)).unwrap();
        assert_eq!((r.next_hop, r.src), (Ipv4Addr::new(10, 0, 0, 77), src));
        let r = t.resolve(Ipv4Addr::new(192, 168, 200, 1)).unwrap();
        assert_eq!(r.next_hop, Ipv4Addr::new(10, 0, 0, 254));
        let r = t.resolve(Ipv4Addr::new(8, 8, 8, 8)).unwrap();
        assert_eq!(r.next_hop, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(t.list().iter().map(|r| r.dest).collect::<Vec<_>>()[2], net([192, 168, 0, 0], 16), "host bits cleared");
        assert_eq!(t.add(net([192, 168, 1, 1], 16), NextHop::Gateway(Ipv4Addr::new(10, 0, 0, 3))), Err(NetError::RouteExists));
        assert_eq!(t.generation(), g0, "a refused add changes nothing");
        t.delete(Ipv4Net::DEFAULT, None).unwrap();
        assert!(t.generation() > g0);
        assert_eq!(t.resolve(Ipv4Addr::new(8, 8, 8, 8)), None);
        assert_eq!(t.delete(Ipv4Net::DEFAULT, None), Err(NetError::RouteNotFound));
        assert_eq!(
            t.delete(net([192, 168, 0, 0], 16), Some(NextHop::Gateway(Ipv4Addr::new(1, 1, 1, 1)))),
            Err(NetError::RouteNotFound),
            "wrong gateway"
        );
    }

    #[test]
    fn a_gateway_off_link_is_unreachable() {
        let mut t = RouteTable::new(4);
        t.add(Ipv4Net::DEFAULT, NextHop::Gateway(Ipv4Addr::new(10, 0, 0, 1))).unwrap();
        assert_eq!(t.resolve(Ipv4Addr::new(1, 2, 3, 4)), None);
    }

    #[test]
    fn bounded() {
        let mut t = RouteTable::new(2);
        t.add(net([10, 0, 0, 0], 8), NextHop::Gateway(Ipv4Addr::new(1, 1, 1, 1))).unwrap();
        t.add(net([11, 0, 0, 0], 8), NextHop::Gateway(Ipv4Addr::new(1, 1, 1, 1))).unwrap();
        assert_eq!(t.add(net([12, 0, 0, 0], 8), NextHop::Gateway(Ipv4Addr::new(1, 1, 1, 1))), Err(NetError::TooManyRoutes));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn ten_thousand_routes_against_a_linear_scan() {
        let mut t = RouteTable::new(20_000);
        let mut routes = Vec::new();
        let mut x: u32 = 12345;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        while routes.len() < 10_000 {
            let p = (next() % 33) as u8;
            let d = net(next().to_be_bytes(), p).trunc();
            if t.add(d, NextHop::Gateway(Ipv4Addr::from(next()))).is_ok() {
                routes.push(d);
            }
        }
        for _ in 0..20_000 {
            let a = Ipv4Addr::from(next());
            let want = routes.iter().filter(|d| d.contains(a)).max_by_key(|d| d.prefix()).copied();
            assert_eq!(t.lookup(a).map(|r| r.dest), want, "{a}");
        }
        for d in routes.iter().step_by(2) {
            t.delete(*d, None).unwrap();
        }
        assert_eq!(t.len(), 5000);
        assert_eq!(t.list().len(), 5000);
    }
}
