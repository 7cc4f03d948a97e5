//! `ttcp`, after the classic Test-TCP tool: one TCP connection from an IP
//! instance to `host:port` carrying `bytes` of a deterministic pattern.
//!
//! ```text
//! ttcp [-e] [-i interface] [-n bytes] [-p port] [-t timeout] host
//! ```
//!
//! * `-i`: the instance to connect from; else the one whose subnet holds
//!   the host, else one with a route to it (as `ping`).
//! * `-n`: bytes to send (default 1m); a `k`, `m` or `g` suffix multiplies
//!   by 1024, 1024², 1024³.
//! * `-p`: the port (default 7, the echo service).
//! * `-e`: read the echo back and verify it byte for byte; implied for
//!   port 7.
//! * `-t`: give up after this many seconds without progress (default 10).
//!
//! The pattern is sent, then a FIN. Success is every byte acknowledged
//! (the peer acknowledged the FIN) and, with echo, every byte back and
//! equal to what was sent. It prints one line and gives status 0:
//!
//! ```text
//! ttcp: 1048576 bytes sent, 1048576 echoed and verified in 0.84 s (9.98 Mbit/s)
//! ttcp: 262144 bytes sent and acknowledged in 0.10 s (20.97 Mbit/s)
//! ```
//!
//! The time runs from the connection's establishment to success. Refusal,
//! reset, a stall longer than the timeout, a difference in the echo, the
//! peer finishing early and Ctrl-C each print one `ttcp: ...` line and
//! give status 1; bad options give the usage and status 2. The connection
//! is released on every path (reset unless it ended in order).

use alloc::sync::Arc;
use alloc::vec;
use core::fmt::{self, Write};
use core::net::Ipv4Addr;

use super::getopt::{OptError, getopt};
use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE, NoStack, pick_stack};
use crate::config::parse_addr;
use crate::stack::{IpStack, NetError, TcpId, TcpState};

const USAGE: &str = "usage: ttcp [-e] [-i interface] [-n bytes] [-p port] [-t timeout] host";

/// Default bytes to send.
pub const DEFAULT_BYTES: u64 = 1 << 20;
/// Default port: the echo service.
pub const DEFAULT_PORT: u16 = 7;
/// Default seconds without progress before giving up.
pub const DEFAULT_TIMEOUT_S: u64 = 10;
/// Bytes handed to or taken from the stack per call.
const CHUNK: usize = 16 * 1024;

/// Byte `offset` of the test pattern: a multiplicative hash of the offset,
/// so that no shift, repetition or reordering of the stream matches it.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

/// Fills `buf` with the pattern from `offset` on.
pub fn fill_pattern(buf: &mut [u8], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(offset + i as u64);
    }
}

/// `ttcp` (`argv[0]` is `ttcp`).
pub fn ttcp(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let p = match getopt(argv.get(1..).unwrap_or(&[]), "ei:n:p:t:") {
        Ok(p) => p,
        Err(OptError::Unknown(c)) => return usage(out, format_args!("illegal option -- {c}")),
        Err(OptError::MissingValue(c)) => return usage(out, format_args!("option requires an argument -- {c}")),
    };
    let host = match p.operands.as_slice() {
        [h] => *h,
        [] => return usage(out, format_args!("missing host")),
        _ => return usage(out, format_args!("extra arguments")),
    };
    let bytes = match p.value('n') {
        Some(v) => match parse_size(v) {
            Some(n) => n,
            None => return usage(out, format_args!("bad byte count: {v}")),
        },
        None => DEFAULT_BYTES,
    };
    let port = match p.value('p') {
        Some(v) => match v.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return usage(out, format_args!("bad port: {v}")),
        },
        None => DEFAULT_PORT,
    };
    let timeout_s = match p.value('t') {
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=3600).contains(&n) => n,
            _ => return usage(out, format_args!("bad timeout: {v}")),
        },
        None => DEFAULT_TIMEOUT_S,
    };
    let Some(dst) = parse_addr(host) else {
        let _ = writeln!(out, "ttcp: unknown host {host}");
        return EXIT_FAIL;
    };
    let stack = match pick_stack(env, p.value('i'), dst) {
        Ok(s) => s,
        Err(NoStack::NoSuchInterface(name)) => {
            let _ = writeln!(out, "ttcp: {name}: no such interface");
            return EXIT_FAIL;
        }
        Err(NoStack::Unreachable) => {
            let _ = writeln!(out, "ttcp: connect: {}", NetError::Unreachable);
            return EXIT_FAIL;
        }
    };
    let id = match stack.tcp_connect(dst, port) {
        Ok(id) => id,
        Err(e) => {
            let _ = writeln!(out, "ttcp: connect: {e}");
            return EXIT_FAIL;
        }
    };
    let conn = Conn { stack, id };
    let run = Transfer {
        dst,
        port,
        bytes,
        echo: p.has('e') || port == 7,
        timeout_us: timeout_s * 1_000_000,
        sent: 0,
        back: 0,
    };
    run.run(&conn, env, out)
    // `conn` drops here: the connection is released on every path.
}

fn usage(out: &mut dyn Write, msg: fmt::Arguments<'_>) -> i32 {
    let _ = writeln!(out, "ttcp: {msg}");
    let _ = writeln!(out, "{USAGE}");
    EXIT_USAGE
}

/// `1048576`, `256k`, `1m`, `2g` → bytes (at most 2^40).
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mult).filter(|n| *n <= 1 << 40)
}

/// An open connection, released when dropped.
struct Conn {
    stack: Arc<dyn IpStack>,
    id: TcpId,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stack.tcp_close(self.id);
    }
}

struct Transfer {
    dst: Ipv4Addr,
    port: u16,
    bytes: u64,
    echo: bool,
    timeout_us: u64,
    sent: u64,
    /// Bytes received: verified echo, or whatever a non-echo peer sent.
    back: u64,
}

/// How a transfer failed.
enum Failure {
    Net(NetError),
    TimedOut,
    Mismatch { at: u64, got: u8, want: u8 },
    TooMuch,
    PeerFinished,
    Interrupted,
}

impl Transfer {
    fn run(mut self, conn: &Conn, env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
        env.poll_now();
        let mut start: Option<u64> = None;
        match self.pump(conn, env, &mut start) {
            Ok(()) => {
                let now = env.now_us();
                let us = now.saturating_sub(start.unwrap_or(now)).max(1);
                let secs = Fixed2(us / 10_000);
                let rate = Fixed2((u128::from(self.bytes) * 800 / u128::from(us)) as u64);
                let _ = if self.echo {
                    writeln!(
                        out,
                        "ttcp: {} bytes sent, {} echoed and verified in {secs} s ({rate} Mbit/s)",
                        self.sent, self.back
                    )
                } else if self.back > 0 {
                    writeln!(
                        out,
                        "ttcp: {} bytes sent and acknowledged, {} received in {secs} s ({rate} Mbit/s)",
                        self.sent, self.back
                    )
                } else {
                    writeln!(out, "ttcp: {} bytes sent and acknowledged in {secs} s ({rate} Mbit/s)", self.sent)
                };
                0
            }
            Err(f) => {
                let state = conn.stack.tcp_status(conn.id).map(|s| s.state).unwrap_or(TcpState::Closed);
                let (dst, port) = (self.dst, self.port);
                let _ = match f {
                    Failure::Net(e) if start.is_none() => writeln!(out, "ttcp: connect to {dst} port {port}: {e}"),
                    Failure::TimedOut if start.is_none() => {
                        writeln!(out, "ttcp: connect to {dst} port {port}: Connection timed out")
                    }
                    Failure::Net(e) => writeln!(out, "ttcp: {dst} port {port}: {e} {}", self.progress()),
                    Failure::TimedOut => writeln!(
                        out,
                        "ttcp: {dst} port {port}: Connection timed out {} (no progress for {} s, state {state})",
                        self.progress(),
                        self.timeout_us / 1_000_000
                    ),
                    Failure::Mismatch { at, got, want } => writeln!(
                        out,
                        "ttcp: {dst} port {port}: echo mismatch at byte {at}: got 0x{got:02x}, expected 0x{want:02x}"
                    ),
                    Failure::TooMuch => {
                        writeln!(out, "ttcp: {dst} port {port}: echo mismatch: more bytes came back than were sent")
                    }
                    Failure::PeerFinished => {
                        writeln!(out, "ttcp: {dst} port {port}: peer closed the connection {}", self.progress())
                    }
                    Failure::Interrupted => writeln!(out, "ttcp: interrupted {}", self.progress()),
                };
                EXIT_FAIL
            }
        }
    }

    fn progress(&self) -> impl fmt::Display + '_ {
        struct P<'a>(&'a Transfer);
        impl fmt::Display for P<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let t = self.0;
                if t.echo {
                    write!(f, "after {} of {} bytes sent, {} echoed", t.sent, t.bytes, t.back)
                } else {
                    write!(f, "after {} of {} bytes sent", t.sent, t.bytes)
                }
            }
        }
        P(self)
    }

    /// Runs the transfer to its end; `start` is set when the connection
    /// is established.
    fn pump(&mut self, conn: &Conn, env: &mut dyn AdminEnv, start: &mut Option<u64>) -> Result<(), Failure> {
        let (stack, id) = (&*conn.stack, conn.id);
        let mut chunk = vec![0u8; CHUNK];
        let mut shut = false;
        let mut last = stack.tcp_status(id).map_err(Failure::Net)?;
        let mut last_progress = env.now_us();
        loop {
            let mut progress = false;
            let st = stack.tcp_status(id).map_err(Failure::Net)?;
            if let Some(e) = st.state.error() {
                return Err(Failure::Net(e));
            }
            if st.state != TcpState::SynSent && start.is_none() {
                *start = Some(env.now_us());
            }
            // Send what the buffer takes.
            while self.sent < self.bytes {
                let n = (self.bytes - self.sent).min(CHUNK as u64) as usize;
                fill_pattern(&mut chunk[..n], self.sent);
                let k = stack.tcp_send(id, &chunk[..n]).map_err(Failure::Net)?;
                if k == 0 {
                    break;
                }
                self.sent += k as u64;
                progress = true;
            }
            // Take what came back.
            loop {
                let k = stack.tcp_recv(id, &mut chunk).map_err(Failure::Net)?;
                if k == 0 {
                    break;
                }
                if self.echo {
                    self.verify(&chunk[..k])?;
                }
                self.back += k as u64;
                progress = true;
            }
            if self.sent == self.bytes && !shut && st.state != TcpState::SynSent {
                stack.tcp_shutdown(id).map_err(Failure::Net)?;
                shut = true;
                progress = true;
            }
            let now_st = stack.tcp_status(id).map_err(Failure::Net)?;
            if shut && now_st.state.fin_acked() && (!self.echo || self.back == self.bytes) {
                if now_st.readable > 0 && self.echo {
                    return Err(Failure::TooMuch);
                }
                return Ok(());
            }
            if self.echo && now_st.state.peer_finished() && now_st.readable == 0 && self.back < self.bytes {
                return Err(Failure::PeerFinished);
            }
            progress |= now_st.state != last.state || now_st.unacked != last.unacked;
            last = now_st;
            let now = env.now_us();
            if progress {
                last_progress = now;
                env.poll_now();
            } else if now.saturating_sub(last_progress) >= self.timeout_us {
                return Err(Failure::TimedOut);
            }
            if env.interrupted() {
                return Err(Failure::Interrupted);
            }
            env.sleep_ms(1);
        }
    }

    /// Checks received echo bytes against the pattern.
    fn verify(&self, got: &[u8]) -> Result<(), Failure> {
        if self.back + got.len() as u64 > self.sent {
            return Err(Failure::TooMuch);
        }
        for (i, &b) in got.iter().enumerate() {
            let at = self.back + i as u64;
            let want = pattern_byte(at);
            if b != want {
                return Err(Failure::Mismatch { at, got: b, want });
            }
        }
        Ok(())
    }
}

/// A hundredths value printed with two decimals (`1234` → `12.34`).
struct Fixed2(u64);

impl fmt::Display for Fixed2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("256k"), Some(256 << 10));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1.5m"), None);
        assert_eq!(parse_size("2048g"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn pattern_has_no_short_period() {
        let mut v = vec![0u8; 1 << 16];
        fill_pattern(&mut v, 0);
        for shift in [1usize, 2, 4, 8, 256, 1448, 1460, 4096, 8192] {
            let same = v.iter().zip(&v[shift..]).filter(|(a, b)| a == b).count();
            // Random bytes agree 1 time in 256.
            assert!(same < (v.len() - shift) / 100, "shift {shift}: {same} equal bytes");
        }
        let mut w = vec![0u8; 100];
        fill_pattern(&mut w, 1000);
        assert_eq!(&w[..], &v[1000..1100]);
    }

    #[test]
    fn fixed2() {
        assert_eq!(alloc::format!("{}", Fixed2(84)), "0.84");
        assert_eq!(alloc::format!("{}", Fixed2(998)), "9.98");
        assert_eq!(alloc::format!("{}", Fixed2(100_005)), "1000.05");
    }
}
