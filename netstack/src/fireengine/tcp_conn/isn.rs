//! Initial sequence numbers after RFC 6528 (RFC 9293 §3.4.1, MUST-8 and
//! MUST-9; illumos `tcp_strong_iss` 2, which uses MD5 for the same role):
//!
//! ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
//!
//! M is a timer ticking every 4 µs, taken from the caller's clock in
//! microseconds (it wraps every 2^32 ticks, about 4.8 hours); F is the low
//! 32 bits of SipHash-2-4 under a 128-bit secret over the 4-tuple as
//! [`FourTuple`] encodes it (local address, local port, remote address,
//! remote port; each address a family byte and its octets, each port
//! big-endian).
//!
//! Successive connections on one 4-tuple so get increasing ISNs (the clock
//! moves them on about 250 000 a second), while an observer who sees the
//! ISNs of its own connections learns nothing about another tuple's: F
//! cannot be computed without the key. The key should be drawn from a
//! good random source once, at boot; it is never shown (`Debug` hides it).

use core::fmt;

use super::siphash::siphash24;
use super::tuple::FourTuple;

/// Microseconds per tick of RFC 6528's timer M.
pub const ISN_TICK_US: u64 = 4;

/// Chooses initial sequence numbers for new connections (active opens and
/// SYN-ACKs alike).
#[derive(Clone)]
pub struct IsnGenerator {
    key: [u8; 16],
}

impl fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsnGenerator").finish_non_exhaustive()
    }
}

impl IsnGenerator {
    /// A generator keyed with `secret`.
    pub const fn new(secret: [u8; 16]) -> Self {
        IsnGenerator { key: secret }
    }

    /// The timer M at `now_us`: one tick per 4 µs, wrapping.
    pub fn clock(now_us: u64) -> u32 {
        (now_us / ISN_TICK_US) as u32
    }

    /// F(): the keyed offset of this 4-tuple.
    pub fn offset(&self, tuple: &FourTuple) -> u32 {
        let (bytes, n) = tuple.encode();
        siphash24(&self.key, bytes.get(..n).unwrap_or(&[])) as u32
    }

    /// The ISN for a connection on `tuple` opened at `now_us`.
    pub fn isn(&self, tuple: &FourTuple, now_us: u64) -> u32 {
        Self::clock(now_us).wrapping_add(self.offset(tuple))
    }
}
