//! `ping`, as illumos ping(8) (`shared/ADMIN.md` form):
//!
//! ```text
//! ping [-c count] [-i interface] [-I interval] host [timeout]
//! ping -s [-c count] [-i interface] [-I interval] host [data_size [npackets]]
//! ```
//!
//! Without `-s`: one request per interval (1 s) until a reply, `timeout`
//! seconds (20), or `count` requests have gone unanswered; prints
//! `HOST is alive` (status 0) or `no answer from HOST` (status 1).
//!
//! With `-s`: `PING HOST: N data bytes`, one line per reply
//! (`64 bytes from 10.0.0.1: icmp_seq=0. time=0.512 ms`), until `count`
//! (or `npackets`) requests are out and answered (or one interval, at
//! least a second, has passed since the last), or the user interrupts;
//! then the summary. Status 0 if any reply came.
//!
//! Options may follow the host. The interface is `-i`, else the one whose
//! subnet holds the host, else one with a route to it. Hosts are dotted
//! quads (there is no resolver). Intervals may have decimals (`-I 0.2`).

use core::fmt::Write;

use super::getopt::{OptError, getopt};
use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE, Millis, NoStack, pick_stack};
use crate::config::parse_addr;
use crate::ping::{DEFAULT_DATA, Pinger};

const USAGE: &str = "usage: ping [-s] [-c count] [-i interface] [-I interval] host [timeout]\n       \
                     ping -s [-c count] [-i interface] [-I interval] host [data_size [npackets]]";

/// Default wait for an answer without `-s`, seconds.
const DEFAULT_TIMEOUT_S: u64 = 20;
/// Default interval, ms.
const DEFAULT_INTERVAL_MS: u64 = 1000;
/// Longest sleep between checks for replies, ms.
const STEP_MS: u64 = 10;

/// `ping` (`argv[0]` is `ping`).
pub fn ping(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let p = match getopt(argv.get(1..).unwrap_or(&[]), "sc:i:I:") {
        Ok(p) => p,
        Err(OptError::Unknown(c)) => return usage(out, &alloc::format!("illegal option -- {c}")),
        Err(OptError::MissingValue(c)) => return usage(out, &alloc::format!("option requires an argument -- {c}")),
    };
    let stats_mode = p.has('s');
    let Some((&host, rest)) = p.operands.split_first() else { return usage(out, "missing host") };
    if rest.len() > if stats_mode { 2 } else { 1 } {
        return usage(out, "extra arguments");
    }
    let Some(dst) = parse_addr(host) else {
        let _ = writeln!(out, "ping: unknown host {host}");
        return EXIT_FAIL;
    };
    let mut count = match p.value('c') {
        Some(c) => match c.parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => return usage(out, &alloc::format!("bad count: {c}")),
        },
        None => None,
    };
    let interval_ms = match p.value('I') {
        Some(v) => match parse_seconds_ms(v) {
            Some(ms) if ms > 0 => ms,
            _ => return usage(out, &alloc::format!("bad interval: {v}")),
        },
        None => DEFAULT_INTERVAL_MS,
    };
    let mut data_len = DEFAULT_DATA;
    let mut timeout_s = DEFAULT_TIMEOUT_S;
    if stats_mode {
        if let Some(v) = rest.first() {
            match v.parse::<usize>() {
                Ok(n) => data_len = n,
                Err(_) => return usage(out, &alloc::format!("bad data size: {v}")),
            }
        }
        if let Some(v) = rest.get(1) {
            match v.parse::<u32>() {
                Ok(n) if n > 0 => count = Some(n),
                _ => return usage(out, &alloc::format!("bad packet count: {v}")),
            }
        }
    } else if let Some(v) = rest.first() {
        match v.parse::<u64>() {
            Ok(n) if n > 0 => timeout_s = n,
            _ => return usage(out, &alloc::format!("bad timeout: {v}")),
        }
    }
    let stack = match pick_stack(env, p.value('i'), dst) {
        Ok(s) => s,
        Err(NoStack::NoSuchInterface(name)) => {
            let _ = writeln!(out, "ping: {name}: no such interface");
            return EXIT_FAIL;
        }
        Err(NoStack::Unreachable) => {
            let _ = writeln!(out, "ping: sendto: Network is unreachable");
            return EXIT_FAIL;
        }
    };
    let max_data = stack.link().mtu().saturating_sub(28);
    if data_len > max_data {
        let _ = writeln!(out, "ping: data size too large (at most {max_data})");
        return EXIT_FAIL;
    }
    let pinger = match Pinger::new(stack, dst, data_len) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "ping: {e}");
            return EXIT_FAIL;
        }
    };
    let run = Run { pinger, count, interval_ms };
    if stats_mode { run.statistics(env, out) } else { run.alive(env, out, timeout_s.saturating_mul(1000)) }
}

fn usage(out: &mut dyn Write, msg: &str) -> i32 {
    let _ = writeln!(out, "ping: {msg}");
    let _ = writeln!(out, "{USAGE}");
    EXIT_USAGE
}

/// `1`, `0.5`, `2.25` seconds → milliseconds (at most three decimals).
fn parse_seconds_ms(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty()) || frac.len() > 3 {
        return None;
    }
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut ms: u64 = 0;
    for (k, b) in frac.bytes().enumerate() {
        ms += (b - b'0') as u64 * [100, 10, 1][k];
    }
    whole.checked_mul(1000)?.checked_add(ms)
}

struct Run {
    pinger: Pinger,
    count: Option<u32>,
    interval_ms: u64,
}

impl Run {
    /// Queues one request; false (after saying why) if that failed.
    fn send(&mut self, env: &mut dyn AdminEnv, out: &mut dyn Write) -> bool {
        match self.pinger.send(env.now_us()) {
            Ok(_) => {
                env.poll_now();
                true
            }
            Err(e) => {
                let _ = writeln!(out, "ping: sendto: {e}");
                false
            }
        }
    }

    fn interval_us(&self) -> u64 {
        self.interval_ms.saturating_mul(1000)
    }

    fn all_sent(&self, sent: u32) -> bool {
        self.count.is_some_and(|c| sent >= c)
    }

    /// Without `-s`.
    fn alive(mut self, env: &mut dyn AdminEnv, out: &mut dyn Write, timeout_ms: u64) -> i32 {
        let host = self.pinger.dst();
        let start = env.now_us();
        let mut deadline = start.saturating_add(timeout_ms.saturating_mul(1000));
        let mut next_send = start;
        let mut sent = 0;
        loop {
            let now = env.now_us();
            if !self.all_sent(sent) && now >= next_send {
                self.send(env, out);
                sent = sent.saturating_add(1);
                next_send = now.saturating_add(self.interval_us());
                if self.all_sent(sent) {
                    deadline = deadline.min(now.saturating_add(self.interval_us().max(1_000_000)));
                }
            }
            if self.pinger.recv().is_some() {
                let _ = writeln!(out, "{host} is alive");
                return 0;
            }
            if now >= deadline || env.interrupted() {
                break;
            }
            env.sleep_ms(STEP_MS.min(deadline.saturating_sub(now).div_ceil(1000)).max(1));
        }
        let _ = writeln!(out, "no answer from {host}");
        EXIT_FAIL
    }

    /// With `-s`.
    fn statistics(mut self, env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
        let host = self.pinger.dst();
        let _ = writeln!(out, "PING {host}: {} data bytes", self.pinger.data_len());
        let mut next_send = env.now_us();
        let mut last_send = next_send;
        let mut sent = 0;
        loop {
            let now = env.now_us();
            if !self.all_sent(sent) && now >= next_send {
                self.send(env, out);
                sent = sent.saturating_add(1);
                last_send = now;
                next_send = now.saturating_add(self.interval_us());
            }
            while let Some(r) = self.pinger.recv() {
                let _ = writeln!(out, "{} bytes from {}: icmp_seq={}. time={} ms", r.len, r.from, r.seq, Millis(r.rtt_us));
            }
            let st = self.pinger.stats();
            if self.all_sent(sent) {
                let waited = now.saturating_sub(last_send) >= self.interval_us().max(1_000_000);
                if st.received >= st.transmitted || waited {
                    break;
                }
            }
            if env.interrupted() {
                break;
            }
            env.sleep_ms(STEP_MS);
        }
        let st = self.pinger.stats();
        let _ = writeln!(out);
        let _ = writeln!(out, "----{host} PING Statistics----");
        let _ = writeln!(
            out,
            "{} packets transmitted, {} packets received, {}% packet loss",
            st.transmitted,
            st.received,
            st.loss_percent()
        );
        if st.received > 0 {
            let _ = writeln!(
                out,
                "round-trip (ms)  min/avg/max = {}/{}/{}",
                Millis(st.min_us),
                Millis(st.avg_us()),
                Millis(st.max_us)
            );
            0
        } else {
            EXIT_FAIL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_seconds_ms;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds_ms("1"), Some(1000));
        assert_eq!(parse_seconds_ms("0.5"), Some(500));
        assert_eq!(parse_seconds_ms(".25"), Some(250));
        assert_eq!(parse_seconds_ms("2.125"), Some(2125));
        assert_eq!(parse_seconds_ms("2.1255"), None);
        assert_eq!(parse_seconds_ms("x"), None);
        assert_eq!(parse_seconds_ms("."), None);
        assert_eq!(parse_seconds_ms("-1"), None);
    }
}
