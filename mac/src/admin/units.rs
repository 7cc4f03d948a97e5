//! Counter formatting as `dlstat` prints it: raw, or scaled by 1000 with a
//! K/M/G/T/P suffix and two decimals (`1.23K`, `456.78M`). Integer math
//! only; the last digit is rounded half up.

use alloc::format;
use alloc::string::{String, ToString};

const SUFFIX: [&str; 6] = ["", "K", "M", "G", "T", "P"];

/// How counters are printed (`dlstat -u`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Scaled to the largest unit that keeps the value at least 1 (the
    /// default); values below 1000 are printed as they are.
    Auto,
    /// The plain number (`-u R`, and always with `-p`).
    Raw,
    /// In units of 1000^n, n = 1 (K) to 5 (P).
    Fixed(u32),
}

impl Unit {
    /// Parses a `-u` argument: `R`, `K`, `M`, `G`, `T` or `P`.
    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "R" => Some(Unit::Raw),
            "K" => Some(Unit::Fixed(1)),
            "M" => Some(Unit::Fixed(2)),
            "G" => Some(Unit::Fixed(3)),
            "T" => Some(Unit::Fixed(4)),
            "P" => Some(Unit::Fixed(5)),
            _ => None,
        }
    }
}

fn pow1000(k: u32) -> u128 {
    1000u128.pow(k)
}

/// `n / 1000^k` in hundredths, rounded half up.
fn hundredths(n: u64, k: u32) -> u128 {
    let d = pow1000(k);
    (n as u128 * 100 + d / 2) / d
}

fn fixed(n: u64, k: u32) -> String {
    let k = k.min(5);
    let v = hundredths(n, k);
    format!("{}.{:02}{}", v / 100, v % 100, SUFFIX[k as usize])
}

/// Formats counter `n` in `unit`.
pub fn format_count(n: u64, unit: Unit) -> String {
    match unit {
        Unit::Raw => n.to_string(),
        Unit::Fixed(k) => fixed(n, k),
        Unit::Auto => {
            if n < 1000 {
                return n.to_string();
            }
            let mut k = 1;
            while k < 5 && n as u128 >= pow1000(k + 1) {
                k += 1;
            }
            // 999.995K rounds to 1000.00K: say 1.00M instead.
            if k < 5 && hundredths(n, k) >= 100_000 {
                k += 1;
            }
            fixed(n, k)
        }
    }
}
