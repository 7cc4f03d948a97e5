//! Which SYN cookies already made a conn, lately: a bounded table that a
//! listener asks before it makes a conn from a validated cookie ACK.
//!
//! A cookie stays valid for a minute or more, and the client's pure ACK
//! and its first data both carry it. When the two reach the listener out
//! of order (on a multi-queue NIC whose steering moves the flow between
//! the two, a TAP's for one), the data makes the conn, the conn can finish
//! its whole exchange, and the late ACK would then make a second, phantom
//! conn that its client never knows and that nothing ever closes. A cookie
//! seen here within [`REPLAY_MS`] makes no second conn.
//!
//! [`SLOTS`] entries, [`PROBES`] looked at per key; when all are younger
//! than the window the oldest goes (a replay later than that many cookie
//! conns is then not caught).

/// How long a used cookie is remembered, ms.
pub const REPLAY_MS: u64 = 10_000;
/// Entries (a power of two).
pub const SLOTS: usize = 4096;
/// Entries one key may sit in.
pub const PROBES: usize = 8;

#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    at_ms: u64,
}

/// The table.
pub struct CookieReplay {
    slots: alloc::boxed::Box<[Slot]>,
}

impl Default for CookieReplay {
    fn default() -> Self {
        CookieReplay::new()
    }
}

fn start(key: u64) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize
}

impl CookieReplay {
    /// An empty table.
    pub fn new() -> CookieReplay {
        CookieReplay { slots: alloc::vec![Slot::default(); SLOTS].into_boxed_slice() }
    }

    fn live(s: &Slot, now_ms: u64) -> bool {
        s.key != 0 && now_ms.saturating_sub(s.at_ms) < REPLAY_MS
    }

    /// True when `key` (the cookie's 4-tuple hash mixed with its ISS; 0 is
    /// taken as 1) made a conn within the window.
    pub fn seen(&self, key: u64, now_ms: u64) -> bool {
        let key = key.max(1);
        let h = start(key);
        (0..PROBES).any(|i| {
            let s = &self.slots[(h + i) & (SLOTS - 1)];
            s.key == key && Self::live(s, now_ms)
        })
    }

    /// Remembers that `key` made a conn at `now_ms`.
    pub fn record(&mut self, key: u64, now_ms: u64) {
        let key = key.max(1);
        let h = start(key);
        let mut victim = h & (SLOTS - 1);
        for i in 0..PROBES {
            let at = (h + i) & (SLOTS - 1);
            let s = self.slots[at];
            if s.key == key || !Self::live(&s, now_ms) {
                victim = at;
                break;
            }
            if s.at_ms < self.slots[victim].at_ms {
                victim = at;
            }
        }
        self.slots[victim] = Slot { key, at_ms: now_ms };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_seen_until_the_window_ends() {
        let mut r = CookieReplay::new();
        assert!(!r.seen(42, 1000));
        r.record(42, 1000);
        assert!(r.seen(42, 1000));
        assert!(r.seen(42, 1000 + REPLAY_MS - 1));
        assert!(!r.seen(42, 1000 + REPLAY_MS));
        assert!(!r.seen(43, 1000));
        r.record(0, 5);
        assert!(r.seen(0, 5), "key 0 is kept as 1");
    }

    #[test]
    fn a_full_table_forgets_the_oldest_first() {
        let mut r = CookieReplay::new();
        for k in 1..=(SLOTS as u64 * 2) {
            r.record(k, k);
        }
        let now = SLOTS as u64 * 2;
        let newest = (SLOTS as u64 * 2 - 100..=SLOTS as u64 * 2).filter(|&k| r.seen(k, now)).count();
        assert!(newest >= 95, "the newest stay: {newest} of 101");
        let oldest = (1..=100).filter(|&k| r.seen(k, now)).count();
        assert!(oldest <= 5, "the oldest go: {oldest} of 100 still there");
    }
}
