//! Wire formats FireEngine parses and emits. Parsing never panics and
//! never reads past the buffer: every malformed input is an `Err` naming
//! what is wrong, so the caller can count it (a malformed TCP options area
//! is the one exception: the segment is kept and the options say what was
//! wrong, as illumos does; see [`tcp`]).
//!
//! * [`checksum`]: RFC 1071 sums, the IPv4 pseudo-header, RFC 1624 updates.
//! * [`ipv4`]: `Ipv4Header` with validated options.
//! * [`icmp`]: `IcmpMessage` (echo, unreachable, time exceeded, others).
//! * [`udp`]: `UdpHeader` with pseudo-header checksums.
//! * [`tcp`]: `TcpHeader` and `TcpOptions` (MSS, window scale, SACK,
//!   timestamps), pseudo-header checksums.
//! * [`arp`]: ARP packets.

pub mod arp;
pub mod checksum;
pub mod icmp;
pub mod ipv4;
pub mod tcp;
pub mod udp;
