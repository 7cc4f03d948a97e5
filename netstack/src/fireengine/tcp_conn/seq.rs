//! TCP sequence-number arithmetic (RFC 9293 §3.4): 32-bit numbers that
//! wrap, compared by their signed distance. Private to this room so it
//! stands alone.
//!
//! Two numbers exactly 2^31 apart have no order; [`dist`] puts the second
//! one *before* the first (a negative distance), so such a segment is
//! treated as old, never as new data. The receive window is held below
//! 2^30 (RFC 7323's largest), well clear of that point.

/// Signed distance from `base` to `seq`: positive when `seq` is after
/// `base`, negative when before, in -2^31..2^31.
pub(super) fn dist(seq: u32, base: u32) -> i64 {
    i64::from(seq.wrapping_sub(base) as i32)
}

/// `base` moved forward by `n` (which may be negative), wrapping.
pub(super) fn advance(base: u32, n: i64) -> u32 {
    base.wrapping_add(n as u32)
}
