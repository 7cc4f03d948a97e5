//! FireEngine's IPv4 layer: input validation, reassembly, fragmentation,
//! and the MIB counters they keep.

pub mod frag;
pub mod input;
pub mod mib;
pub mod reass;
