//! TCP sequence numbers (RFC 9293 section 3.4): a 32-bit space where every
//! comparison and every sum is modulo 2^32, as illumos' `SEQ_LT`/`SEQ_GT`
//! family does it (the sign of the 32-bit difference).
//!
//! Nothing here panics: adding or subtracting any `usize` wraps modulo
//! 2^32, and the difference of two numbers is always defined. The one
//! ambiguity is inherent in the space: two numbers exactly 2^31 apart are
//! each "before" the other (`a.lt(b)` and `b.lt(a)` are both true, as with
//! `SEQ_LT`), so `SeqNum` implements no `PartialOrd`; keep windows and
//! distances below 2^31 (TCP's are at most 2^30, RFC 7323) and it never
//! matters.

use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A sequence (or acknowledgment) number.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// The number `v`.
    pub const fn new(v: u32) -> Self {
        SeqNum(v)
    }

    /// The value as on the wire.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The signed distance from `other` to `self` (positive when `self` is
    /// after `other`), in `i32::MIN..=i32::MAX`.
    const fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self` comes before `other` (`SEQ_LT`).
    pub const fn lt(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    /// `self` is `other` or comes before it (`SEQ_LEQ`).
    pub const fn le(self, other: SeqNum) -> bool {
        self.diff(other) <= 0
    }

    /// `self` comes after `other` (`SEQ_GT`).
    pub const fn gt(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }

    /// `self` is `other` or comes after it (`SEQ_GEQ`).
    pub const fn ge(self, other: SeqNum) -> bool {
        self.diff(other) >= 0
    }

    /// Whether `self` lies in the `len` numbers from `start` on:
    /// `start <= self < start + len` modulo 2^32 (RFC 9293's
    /// `RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND`). An empty window (`len` 0)
    /// holds nothing; one of 2^32 or more holds every number.
    pub const fn in_window(self, start: SeqNum, len: usize) -> bool {
        (self.0.wrapping_sub(start.0) as u64) < len as u64
    }

    /// How far `self` is ahead of `base`, counting forward modulo 2^32
    /// (`0..2^32`): the bytes from `base` up to `self` when `self` is not
    /// before it.
    pub const fn offset_from(self, base: SeqNum) -> usize {
        self.0.wrapping_sub(base.0) as usize
    }

    /// The later of the two (`self` when they are 2^31 apart).
    pub const fn max(self, other: SeqNum) -> SeqNum {
        if other.gt(self) { other } else { self }
    }

    /// The earlier of the two (`self` when they are 2^31 apart).
    pub const fn min(self, other: SeqNum) -> SeqNum {
        if self.le(other) { self } else { other }
    }
}

/// `n` numbers later, modulo 2^32 (any `n`: it wraps, never panics).
impl Add<usize> for SeqNum {
    type Output = SeqNum;
    fn add(self, n: usize) -> SeqNum {
        SeqNum(self.0.wrapping_add(n as u32))
    }
}

impl AddAssign<usize> for SeqNum {
    fn add_assign(&mut self, n: usize) {
        *self = *self + n;
    }
}

/// `n` numbers earlier, modulo 2^32 (any `n`: it wraps, never panics).
impl Sub<usize> for SeqNum {
    type Output = SeqNum;
    fn sub(self, n: usize) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n as u32))
    }
}

impl SubAssign<usize> for SeqNum {
    fn sub_assign(&mut self, n: usize) {
        *self = *self - n;
    }
}

/// The signed distance `self - other`: positive when `self` is after
/// `other`; `i32::MIN` for numbers 2^31 apart (either way round). For the
/// forward distance as a length use [`SeqNum::offset_from`].
impl Sub<SeqNum> for SeqNum {
    type Output = i32;
    fn sub(self, other: SeqNum) -> i32 {
        self.diff(other)
    }
}

impl From<u32> for SeqNum {
    fn from(v: u32) -> Self {
        SeqNum(v)
    }
}

impl From<SeqNum> for u32 {
    fn from(s: SeqNum) -> u32 {
        s.0
    }
}

impl core::fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SeqNum({})", self.0)
    }
}

impl core::fmt::Display for SeqNum {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}
