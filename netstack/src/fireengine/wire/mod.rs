//! Wire formats FireEngine parses and emits. Parsing never panics and
//! never reads past the buffer: every malformed input is an `Err` naming
//! what is wrong, so the caller can count it.

pub mod arp;
pub mod checksum;
pub mod icmp;
pub mod ipv4;
pub mod udp;
