//! FireEngine TCP (part 2): RFC 9293 TCP inside the squeues, built room by
//! room. Arrows point down this list only (a room uses the rooms below it
//! and [`crate::fireengine::wire`], never above):
//!
//! * [`seq`]: sequence numbers, compared and added modulo 2^32 (RFC 9293
//!   section 3.4).
//!
//! The TCP header and its options are [`crate::fireengine::wire::tcp`].

pub mod seq;
