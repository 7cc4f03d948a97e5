//! FireEngine's IPv4 layer: input validation, reassembly, fragmentation,
//! and the MIB counters they keep.
//!
//! * [`mib`]: `IpMib`, `IcmpMib`, `UdpMib` under their illumos names.
//! * [`input`]: host input checks (`validate`), each drop counted.
//! * [`reass`]: bounded reassembly (`Reassembler`), overlap-safe.
//! * [`frag`]: output fragmentation (`fragment`), DF refusal.
//! * [`pmtu`]: the path MTU cache (RFC 1191) and its floor and plateaus.

pub mod frag;
pub mod input;
pub mod mib;
pub mod pmtu;
pub mod reass;
