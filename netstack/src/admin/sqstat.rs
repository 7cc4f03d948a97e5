//! `sqstat`: one row per squeue (FireEngine's vertical perimeter), in the
//! style of illumos statistics commands such as `mpstat(8)`.
//!
//! ```text
//! sqstat [-p] [-o field,...] [interval [count]]
//! ```
//!
//! Default columns `CPU CONNS INLINE QUEUED WORKER WAKEUPS MAXQ TLIMIT
//! DROPS`; `-o` also offers `OTHER` (queued entries drained by an entering
//! thread), `REMOTE` (entries from another CPU), `QLEN` (entries waiting
//! now), `ID` (the squeue's index in the set) and `all`. Numbers and headers
//! are right-aligned; `-p -o field,...` prints the values colon-separated,
//! no header. With `interval` (seconds) a report follows every interval,
//! `count` reports in all (without `count`: until interrupted); the first
//! report shows the totals since boot, later ones the change over the
//! interval. `CONNS`, `QLEN` and `MAXQ` are levels, not counters: every
//! report shows their current value. Each human report starts with the
//! header, so no squeue at all prints only the header.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

use super::getopt::{OptError, getopt};
use super::ofmt::OfmtError;
use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE};
use crate::fireengine::squeue::SqStats;

/// The command line, as the shell's `help` shows it.
pub const USAGE: &str = "sqstat [-p] [-o field,...] [interval [count]]";

/// The columns shown without `-o`.
const DEFAULT: &str = "cpu,conns,inline,queued,worker,wakeups,maxq,tlimit,drops";

/// How long one sleep between two `interrupted` checks lasts, ms.
const SLEEP_STEP_MS: u64 = 100;

/// Whether a column is a counter (a later report shows its change) or a
/// level (always its current value).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Level,
}

/// A column: header, width (right-aligned), kind, and its value.
struct Col {
    name: &'static str,
    width: usize,
    kind: Kind,
    get: fn(&SqStats) -> u64,
}

static COLS: [Col; 13] = [
    Col { name: "CPU", width: 3, kind: Kind::Level, get: |s| u64::from(s.cpu) },
    Col { name: "CONNS", width: 6, kind: Kind::Level, get: |s| s.conns },
    Col { name: "INLINE", width: 10, kind: Kind::Counter, get: |s| s.processed_inline },
    Col { name: "QUEUED", width: 10, kind: Kind::Counter, get: |s| s.queued },
    Col { name: "WORKER", width: 10, kind: Kind::Counter, get: |s| s.drained_worker },
    Col { name: "WAKEUPS", width: 8, kind: Kind::Counter, get: |s| s.worker_wakeups },
    Col { name: "MAXQ", width: 6, kind: Kind::Level, get: |s| s.max_queue_len },
    Col { name: "TLIMIT", width: 6, kind: Kind::Counter, get: |s| s.drain_time_limit },
    Col { name: "DROPS", width: 6, kind: Kind::Counter, get: |s| s.drops },
    Col { name: "OTHER", width: 10, kind: Kind::Counter, get: |s| s.drained_other },
    Col { name: "REMOTE", width: 10, kind: Kind::Counter, get: |s| s.remote_enters },
    Col { name: "QLEN", width: 6, kind: Kind::Level, get: |s| s.queue_len },
    Col { name: "ID", width: 3, kind: Kind::Level, get: |s| u64::from(s.id) },
];

/// `sqstat` (`argv[0]` is `sqstat`).
pub fn sqstat(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let p = match getopt(argv.get(1..).unwrap_or(&[]), "po:") {
        Ok(p) => p,
        Err(OptError::Unknown(c)) => return usage(out, EXIT_USAGE, &format!("illegal option -- {c}")),
        Err(OptError::MissingValue(c)) => {
            return usage(out, EXIT_USAGE, &format!("option requires an argument -- {c}"));
        }
    };
    let parsable = p.has('p');
    let spec = p.value('o');
    if parsable && spec.is_none() {
        return usage(out, EXIT_USAGE, "-p requires -o");
    }
    let cols = match select(spec, parsable) {
        Ok(c) => c,
        Err(e) => return usage(out, EXIT_FAIL, &e.to_string()),
    };
    let (interval, count) = match p.operands[..] {
        [] => (None, None),
        [i] => (Some(i), None),
        [i, c] => (Some(i), Some(c)),
        _ => return usage(out, EXIT_USAGE, "too many arguments"),
    };
    let interval = match interval.map(|v| (v, positive(v))) {
        None => None,
        Some((_, Some(n))) => Some(n),
        Some((v, None)) => return usage(out, EXIT_FAIL, &format!("invalid interval value '{v}'")),
    };
    let count = match count.map(|v| (v, positive(v))) {
        None => None,
        Some((_, Some(n))) => Some(n),
        Some((v, None)) => return usage(out, EXIT_FAIL, &format!("invalid count value '{v}'")),
    };
    let mut prev: Vec<SqStats> = Vec::new();
    let mut reports = 0u64;
    loop {
        let cur = env.squeue_stats();
        report(out, &cols, parsable, &cur, &prev);
        prev = cur;
        reports += 1;
        let Some(secs) = interval else { return 0 };
        if count.is_some_and(|c| reports >= c) || !wait(env, secs) {
            return 0;
        }
    }
}

/// `sqstat: MSG` and the usage line; returns `status`.
fn usage(out: &mut dyn Write, status: i32, msg: &str) -> i32 {
    let _ = writeln!(out, "sqstat: {msg}");
    let _ = writeln!(out, "usage: {USAGE}");
    status
}

/// A decimal number above 0 (digits only, no sign).
fn positive(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().filter(|&n| n > 0)
}

/// The columns `spec` (the `-o` value) names, as ofmt reads a field list:
/// comma-separated, case-insensitive, `all` (not with `-p`) for every one.
fn select(spec: Option<&str>, parsable: bool) -> Result<Vec<usize>, OfmtError> {
    let list = spec.unwrap_or(DEFAULT);
    let mut cols = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name.eq_ignore_ascii_case("all") {
            if parsable {
                return Err(OfmtError::AllParsable);
            }
            cols.extend(0..COLS.len());
            continue;
        }
        match COLS.iter().position(|c| c.name.eq_ignore_ascii_case(name)) {
            Some(i) => cols.push(i),
            None => return Err(OfmtError::Unknown(name.to_string())),
        }
    }
    if cols.is_empty() {
        return Err(OfmtError::Unknown(list.to_string()));
    }
    Ok(cols)
}

/// Prints one report: the header (human form), then a row per squeue in
/// `cur`, counters less their value in the matching squeue of `prev`.
fn report(out: &mut dyn Write, cols: &[usize], parsable: bool, cur: &[SqStats], prev: &[SqStats]) {
    if !parsable {
        let header: Vec<String> = cols.iter().map(|&c| COLS[c].name.to_string()).collect();
        line(out, cols, &header, ' ');
    }
    for s in cur {
        let before = prev.iter().find(|p| p.id == s.id);
        let vals: Vec<String> = cols
            .iter()
            .map(|&c| {
                let col = &COLS[c];
                let now = (col.get)(s);
                match (col.kind, before) {
                    (Kind::Counter, Some(b)) => now.saturating_sub((col.get)(b)),
                    _ => now,
                }
                .to_string()
            })
            .collect();
        line(out, cols, &vals, if parsable { ':' } else { ' ' });
    }
}

/// One line: right-aligned to the column widths (`sep` a space), or
/// joined with `sep` (`:`, parsable).
fn line(out: &mut dyn Write, cols: &[usize], vals: &[String], sep: char) {
    for (k, (&c, v)) in cols.iter().zip(vals).enumerate() {
        if k > 0 {
            let _ = out.write_char(sep);
        }
        if sep == ':' {
            let _ = out.write_str(v);
        } else {
            let _ = write!(out, "{v:>w$}", w = COLS[c].width);
        }
    }
    let _ = out.write_char('\n');
}

/// Sleeps `secs` seconds in short steps; false if interrupted.
fn wait(env: &mut dyn AdminEnv, secs: u64) -> bool {
    let mut left = secs.saturating_mul(1000);
    while left > 0 {
        if env.interrupted() {
            return false;
        }
        let step = left.min(SLEEP_STEP_MS);
        env.sleep_ms(step);
        left -= step;
    }
    !env.interrupted()
}
