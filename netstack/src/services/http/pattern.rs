//! The body of `/bytes/N`: byte `i` of the stream is `i % 251` (251 is
//! prime, so a shifted, lost or repeated block of any power-of-two size
//! shows as a mismatch). Produced from any offset, never held whole.

use alloc::vec::Vec;

/// The pattern's period.
pub const PERIOD: usize = 251;

static TABLE: [u8; PERIOD] = table();

const fn table() -> [u8; PERIOD] {
    let mut t = [0u8; PERIOD];
    let mut i = 0;
    while i < PERIOD {
        t[i] = i as u8;
        i += 1;
    }
    t
}

/// Byte `i` of the pattern.
pub fn byte_at(i: u64) -> u8 {
    (i % PERIOD as u64) as u8
}

/// Appends the pattern's bytes `pos .. pos + n` to `out`.
pub fn extend(out: &mut Vec<u8>, pos: u64, n: usize) {
    out.reserve(n);
    let mut at = (pos % PERIOD as u64) as usize;
    let mut left = n;
    while left > 0 {
        let k = (PERIOD - at).min(left);
        out.extend_from_slice(&TABLE[at..at + k]);
        left -= k;
        at = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_from_any_offset() {
        let mut v = Vec::new();
        let mut pos = 0u64;
        for n in [0usize, 1, 250, 251, 252, 1000, 7] {
            extend(&mut v, pos, n);
            pos += n as u64;
        }
        assert_eq!(v.len() as u64, pos);
        for (i, b) in v.iter().enumerate() {
            assert_eq!(*b, byte_at(i as u64));
        }
    }
}
