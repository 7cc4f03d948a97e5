//! `ttcp`, after the classic Test-TCP tool: one TCP connection from an IP
//! instance to `host:port` carrying `bytes` of a deterministic pattern, or
//! `count` of them one after another.
//!
//! ```text
//! ttcp [-c count | -r count] [-e] [-i interface] [-n bytes] [-p port] [-t timeout] [-w seconds] [-z] host
//! ```
//!
//! * `-c`: run `count` connections (1 to 1 000 000) one after another,
//!   each closed by us first (see below); without it, one connection.
//! * `-i`: the instance to connect from; else the one whose subnet holds
//!   the host, else one with a route to it (as `ping`).
//! * `-n`: bytes to send (default 1m); a `k`, `m` or `g` suffix multiplies
//!   by 1024, 1024², 1024³.
//! * `-p`: the port (default 7, the echo service).
//! * `-e`: read the echo back and verify it byte for byte; implied for
//!   port 7.
//! * `-t`: give up after this many seconds without progress (default 10).
//! * `-r`: request-response instead of a stream: `count` transactions (1
//!   to 1 000 000) on one connection to the echo service, each `-n` bytes
//!   (default 1 here) sent only once the last came back whole; one line
//!   with the transactions per second (the waiting spins for a while
//!   before it sleeps, so that a fast peer is not timed by the tick):
//!
//! ```text
//! ttcp: 10000 transactions of 1 bytes in 0.92 s (10869.5 trans/s)
//! ```
//!
//! * `-z`: for measuring the stack rather than the pattern: the stream is
//!   the pattern's first 16 KiB over and over (built once, sent by
//!   slices, an echo compared by slices), not a pattern of every offset,
//!   whose making and checking byte by byte bounds a fast path (a shift
//!   by a multiple of 16 KiB would go unseen).
//! * `-w`: once the sender first finds the send buffer full, stop reading
//!   for this many seconds (1 to 3600; not with `-c`), to show that a
//!   reader that stops stops the writer and holds no more memory: the
//!   line after the pause says how far sending got, how much of that in
//!   the pause's second half, and how much the kernel heap grew (when the
//!   kernel says), then the transfer goes on:
//!
//! ```text
//! ttcp: reading paused 2.00 s: sending stopped at 196608 bytes (0 in the last 1.00 s), heap +0 KiB
//! ```
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
//!
//! With `-c`, each connection is ended by us first: its FIN goes after the
//! data and, with echo, after every byte came back verified; then `ttcp`
//! waits for the peer's FIN, so that the connection is in `TIME_WAIT` on
//! our side, and releases it there (FireEngine keeps it in `TIME_WAIT` for
//! `_time_wait_interval`, listed by `netstat -an`; smoltcp's instance for
//! a second). A peer that finishes before our FIN fails the connection
//! (`peer closed the connection`). One line for the whole run, the time
//! running from the first connect to the last release:
//!
//! ```text
//! ttcp: 10000 connections of 32 bytes each, echoed and verified, in 41.23 s (242.5 conn/s)
//! ttcp: 500 connections of 100 bytes each, sent and acknowledged, in 2.01 s (248.7 conn/s)
//! ```
//!
//! The first failure stops the run: the failure's line names the
//! connection (`ttcp: connection 17 of 10000: connect to ... refused`).

use alloc::sync::Arc;
use alloc::vec;
use core::fmt::{self, Write};
use core::net::Ipv4Addr;

use super::getopt::{OptError, getopt};
use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE, NoStack, pick_stack};
use crate::config::parse_addr;
use crate::stack::{IpStack, NetError, TcpId, TcpState};

const USAGE: &str =
    "usage: ttcp [-c count | -r count] [-e] [-i interface] [-n bytes] [-p port] [-t timeout] [-w seconds] [-z] host";

/// Default bytes to send.
pub const DEFAULT_BYTES: u64 = 1 << 20;
/// Default port: the echo service.
pub const DEFAULT_PORT: u16 = 7;
/// Default seconds without progress before giving up.
pub const DEFAULT_TIMEOUT_S: u64 = 10;
/// The most connections `-c` runs.
pub const MAX_COUNT: u32 = 1_000_000;
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
    let p = match getopt(argv.get(1..).unwrap_or(&[]), "c:ei:n:p:r:t:w:z") {
        Ok(p) => p,
        Err(OptError::Unknown(c)) => return usage(out, format_args!("illegal option -- {c}")),
        Err(OptError::MissingValue(c)) => return usage(out, format_args!("option requires an argument -- {c}")),
    };
    let host = match p.operands.as_slice() {
        [h] => *h,
        [] => return usage(out, format_args!("missing host")),
        _ => return usage(out, format_args!("extra arguments")),
    };
    let rr = match p.value('r') {
        Some(_) if p.value('c').is_some() => return usage(out, format_args!("-r and -c do not go together")),
        Some(_) if p.value('w').is_some() => return usage(out, format_args!("-w is for a stream, not with -r")),
        Some(v) => match parse_count(v) {
            Some(n) => Some(n),
            None => return usage(out, format_args!("bad count: {v}")),
        },
        None => None,
    };
    let bytes = match p.value('n') {
        Some(v) => match parse_size(v) {
            Some(n) if rr.is_some() && !(1..=CHUNK as u64).contains(&n) => {
                return usage(out, format_args!("bad byte count for -r: {v} (1 to {CHUNK})"));
            }
            Some(n) => n,
            None => return usage(out, format_args!("bad byte count: {v}")),
        },
        None if rr.is_some() => 1,
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
    let count = match p.value('c') {
        Some(v) => match parse_count(v) {
            Some(n) => Some(n),
            None => return usage(out, format_args!("bad count: {v}")),
        },
        None => None,
    };
    let pause_s = match p.value('w') {
        Some(_) if count.is_some() => return usage(out, format_args!("-w is for one connection, not with -c")),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=3600).contains(&n) => Some(n),
            _ => return usage(out, format_args!("bad pause: {v}")),
        },
        None => None,
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
    let spec = Spec {
        dst,
        port,
        bytes,
        echo: p.has('e') || port == 7,
        timeout_us: timeout_s * 1_000_000,
        pause_us: pause_s.map(|s| s * 1_000_000),
        block: p.has('z'),
    };
    if let Some(n) = rr {
        if !spec.echo {
            return usage(out, format_args!("-r needs an echo: port 7 or -e"));
        }
        return transactions(stack, &spec, n, env, out);
    }
    match count {
        None => one(stack, &spec, env, out),
        Some(n) => cycles(&stack, &spec, n, env, out),
    }
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

/// `-c`'s value: decimal digits, 1 to [`MAX_COUNT`].
fn parse_count(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|n| (1..=MAX_COUNT).contains(n))
}

/// One connection: connect, transfer, report, release.
fn one(stack: Arc<dyn IpStack>, spec: &Spec, env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let Some(conn) = Conn::open(stack, spec, out) else { return EXIT_FAIL };
    let mut run = Transfer::new(spec, false);
    env.poll_now();
    let mut start: Option<u64> = None;
    let r = run.pump(&conn, env, &mut start);
    if let Pause::Done(line) = &run.pause {
        let _ = writeln!(out, "ttcp: {line}");
    }
    match r {
        Ok(()) => {
            let now = env.now_us();
            let us = now.saturating_sub(start.unwrap_or(now)).max(1);
            let secs = Fixed2(us / 10_000);
            let rate = Fixed2((u128::from(spec.bytes) * 800 / u128::from(us)) as u64);
            let _ = if spec.echo {
                writeln!(
                    out,
                    "ttcp: {} bytes sent, {} echoed and verified in {secs} s ({rate} Mbit/s)",
                    run.sent, run.back
                )
            } else if run.back > 0 {
                writeln!(
                    out,
                    "ttcp: {} bytes sent and acknowledged, {} received in {secs} s ({rate} Mbit/s)",
                    run.sent, run.back
                )
            } else {
                writeln!(out, "ttcp: {} bytes sent and acknowledged in {secs} s ({rate} Mbit/s)", run.sent)
            };
            0
        }
        Err(f) => {
            let _ = write!(out, "ttcp: ");
            run.report(f, &conn, start.is_none(), out);
            EXIT_FAIL
        }
    }
    // `conn` drops here: the connection is released on every path.
}

/// `count` connections, each closed by us first and released in
/// `TIME_WAIT`; the first failure stops the run.
fn cycles(stack: &Arc<dyn IpStack>, spec: &Spec, count: u32, env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let t0 = env.now_us();
    let mut received = 0u64;
    for i in 1..=count {
        let id = match stack.tcp_connect(spec.dst, spec.port) {
            Ok(id) => id,
            Err(e) => {
                let _ = writeln!(out, "ttcp: connection {i} of {count}: connect: {e}");
                return EXIT_FAIL;
            }
        };
        let conn = Conn { stack: stack.clone(), id };
        let mut run = Transfer::new(spec, true);
        env.poll_now();
        let mut start: Option<u64> = None;
        if let Err(f) = run.pump(&conn, env, &mut start) {
            let _ = write!(out, "ttcp: connection {i} of {count}: ");
            run.report(f, &conn, start.is_none(), out);
            return EXIT_FAIL;
        }
        received = received.saturating_add(run.back);
        // `conn` drops here: released in TIME_WAIT.
    }
    let now = env.now_us();
    let us = now.saturating_sub(t0).max(1);
    let secs = Fixed2(us / 10_000);
    let rate = Fixed1((u128::from(count) * 10_000_000 / u128::from(us)) as u64);
    let conns = if count == 1 { "connection" } else { "connections" };
    let _ = write!(out, "ttcp: {count} {conns} of {} bytes each, ", spec.bytes);
    let _ = if spec.echo {
        write!(out, "echoed and verified, ")
    } else if received > 0 {
        write!(out, "sent and acknowledged, {received} bytes received, ")
    } else {
        write!(out, "sent and acknowledged, ")
    };
    let _ = writeln!(out, "in {secs} s ({rate} conn/s)");
    0
}

/// Empty polls a waiting `-r` spins through before it sleeps a tick.
const RR_SPINS: u32 = 20_000;

/// `-r`: `count` request-response transactions on one connection.
fn transactions(stack: Arc<dyn IpStack>, spec: &Spec, count: u32, env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let Some(conn) = Conn::open(stack, spec, out) else { return EXIT_FAIL };
    let (stack, id, dst, port) = (&*conn.stack, conn.id, spec.dst, spec.port);
    let n = spec.bytes as usize;
    let mut req = vec![0u8; n];
    let mut buf = vec![0u8; CHUNK];
    env.poll_now();
    // Established first (the time runs from there).
    let mut waited = env.now_us();
    loop {
        match stack.tcp_status(id) {
            Ok(st) if st.state == TcpState::SynSent => {}
            Ok(st) if st.state.error().is_some() => {
                let _ = writeln!(out, "ttcp: connect to {dst} port {port}: {}", st.state.error().unwrap_or(NetError::NotConnected));
                return EXIT_FAIL;
            }
            Ok(_) => break,
            Err(e) => {
                let _ = writeln!(out, "ttcp: connect to {dst} port {port}: {e}");
                return EXIT_FAIL;
            }
        }
        if env.now_us().saturating_sub(waited) >= spec.timeout_us {
            let _ = writeln!(out, "ttcp: connect to {dst} port {port}: Connection timed out");
            return EXIT_FAIL;
        }
        if env.interrupted() {
            let _ = writeln!(out, "ttcp: interrupted");
            return EXIT_FAIL;
        }
        env.sleep_ms(1);
    }
    let t0 = env.now_us();
    let mut off = 0u64;
    for i in 0..count {
        fill_pattern(&mut req, off);
        let (mut sent, mut back) = (0usize, 0usize);
        let mut spins = 0u32;
        waited = env.now_us();
        while back < n {
            let mut moved = false;
            if sent < n {
                match stack.tcp_send(id, &req[sent..]) {
                    Ok(k) => {
                        sent += k;
                        moved |= k > 0;
                    }
                    Err(e) => {
                        let _ = writeln!(out, "ttcp: transaction {} of {count}: {dst} port {port}: {e}", i + 1);
                        return EXIT_FAIL;
                    }
                }
            }
            match stack.tcp_recv(id, &mut buf[..n - back]) {
                Ok(k) => {
                    for (j, &b) in buf[..k].iter().enumerate() {
                        let at = off + (back + j) as u64;
                        if b != pattern_byte(at) {
                            let _ = writeln!(
                                out,
                                "ttcp: transaction {} of {count}: {dst} port {port}: echo mismatch at byte {at}: got 0x{b:02x}, expected 0x{:02x}",
                                i + 1,
                                pattern_byte(at)
                            );
                            return EXIT_FAIL;
                        }
                    }
                    back += k;
                    moved |= k > 0;
                }
                Err(e) => {
                    let _ = writeln!(out, "ttcp: transaction {} of {count}: {dst} port {port}: {e}", i + 1);
                    return EXIT_FAIL;
                }
            }
            if moved {
                spins = 0;
                waited = env.now_us();
                continue;
            }
            if let Ok(st) = stack.tcp_status(id)
                && (st.state.error().is_some() || st.state.peer_finished())
            {
                let _ = writeln!(out, "ttcp: transaction {} of {count}: {dst} port {port}: peer closed the connection", i + 1);
                return EXIT_FAIL;
            }
            spins += 1;
            if spins < RR_SPINS {
                core::hint::spin_loop();
                continue;
            }
            if env.now_us().saturating_sub(waited) >= spec.timeout_us {
                let _ = writeln!(out, "ttcp: transaction {} of {count}: {dst} port {port}: Connection timed out", i + 1);
                return EXIT_FAIL;
            }
            if env.interrupted() {
                let _ = writeln!(out, "ttcp: interrupted after {i} of {count} transactions");
                return EXIT_FAIL;
            }
            env.poll_now();
            env.sleep_ms(1);
        }
        off += n as u64;
    }
    let us = env.now_us().saturating_sub(t0).max(1);
    let secs = Fixed2(us / 10_000);
    let rate = Fixed1((u128::from(count) * 10_000_000 / u128::from(us)) as u64);
    let _ = writeln!(out, "ttcp: {count} transactions of {n} bytes in {secs} s ({rate} trans/s)");
    0
    // `conn` drops here: the connection is released.
}

/// An open connection, released when dropped.
struct Conn {
    stack: Arc<dyn IpStack>,
    id: TcpId,
}

impl Conn {
    /// Connects to `spec`'s host and port; a failure is reported on
    /// `out` (`ttcp: connect: ...`).
    fn open(stack: Arc<dyn IpStack>, spec: &Spec, out: &mut dyn Write) -> Option<Conn> {
        match stack.tcp_connect(spec.dst, spec.port) {
            Ok(id) => Some(Conn { stack, id }),
            Err(e) => {
                let _ = writeln!(out, "ttcp: connect: {e}");
                None
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stack.tcp_close(self.id);
    }
}

/// What every connection of a run does.
struct Spec {
    dst: Ipv4Addr,
    port: u16,
    bytes: u64,
    echo: bool,
    timeout_us: u64,
    /// `-w`: stop reading this long once the send buffer is full.
    pause_us: Option<u64>,
    /// `-z`: the stream is the pattern's first [`CHUNK`] bytes repeated.
    block: bool,
}

/// `-w`'s pause in reading.
enum Pause {
    /// None asked for, or waiting for the send buffer to fill.
    Off,
    Armed(u64),
    /// Not reading since `since` (µs), when `sent` bytes were sent and
    /// the heap held `heap` bytes; `half`: bytes sent at the half-way
    /// point.
    On { since: u64, len: u64, sent: u64, heap: Option<usize>, half: Option<u64> },
    /// Over: what to say.
    Done(alloc::string::String),
}

struct Transfer {
    dst: Ipv4Addr,
    port: u16,
    bytes: u64,
    echo: bool,
    timeout_us: u64,
    /// `-c`: we close first (after the echo) and finish in TIME_WAIT.
    close_first: bool,
    sent: u64,
    /// Bytes received: verified echo, or whatever a non-echo peer sent.
    back: u64,
    pause: Pause,
    /// `-z`'s block, once built.
    block: Option<alloc::vec::Vec<u8>>,
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
    fn new(spec: &Spec, close_first: bool) -> Transfer {
        Transfer {
            dst: spec.dst,
            port: spec.port,
            bytes: spec.bytes,
            echo: spec.echo,
            timeout_us: spec.timeout_us,
            close_first,
            sent: 0,
            back: 0,
            pause: spec.pause_us.map_or(Pause::Off, Pause::Armed),
            block: spec.block.then(|| {
                let mut b = vec![0u8; CHUNK];
                fill_pattern(&mut b, 0);
                b
            }),
        }
    }

    /// Writes what `f` was, after the caller's `ttcp: ` prefix, and ends
    /// the line. `connecting`: the connection was never established.
    fn report(&self, f: Failure, conn: &Conn, connecting: bool, out: &mut dyn Write) {
        let state = conn.stack.tcp_status(conn.id).map(|s| s.state).unwrap_or(TcpState::Closed);
        let (dst, port) = (self.dst, self.port);
        let _ = match f {
            Failure::Net(e) if connecting => writeln!(out, "connect to {dst} port {port}: {e}"),
            Failure::TimedOut if connecting => writeln!(out, "connect to {dst} port {port}: Connection timed out"),
            Failure::Net(e) => writeln!(out, "{dst} port {port}: {e} {}", self.progress()),
            Failure::TimedOut => writeln!(
                out,
                "{dst} port {port}: Connection timed out {} (no progress for {} s, state {state})",
                self.progress(),
                self.timeout_us / 1_000_000
            ),
            Failure::Mismatch { at, got, want } => {
                writeln!(out, "{dst} port {port}: echo mismatch at byte {at}: got 0x{got:02x}, expected 0x{want:02x}")
            }
            Failure::TooMuch => writeln!(out, "{dst} port {port}: echo mismatch: more bytes came back than were sent"),
            Failure::PeerFinished => {
                writeln!(out, "{dst} port {port}: peer closed the connection {}", self.progress())
            }
            Failure::Interrupted => writeln!(out, "interrupted {}", self.progress()),
        };
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
                let k = match &self.block {
                    Some(b) => {
                        let at = (self.sent % CHUNK as u64) as usize;
                        let n = n.min(CHUNK - at);
                        stack.tcp_send(id, &b[at..at + n])
                    }
                    None => {
                        fill_pattern(&mut chunk[..n], self.sent);
                        stack.tcp_send(id, &chunk[..n])
                    }
                }
                .map_err(Failure::Net)?;
                if k == 0 {
                    if let Pause::Armed(len) = self.pause
                        && self.sent > 0
                    {
                        self.pause = Pause::On { since: env.now_us(), len, sent: self.sent, heap: env.heap_used(), half: None };
                    }
                    break;
                }
                self.sent += k as u64;
                progress = true;
            }
            self.pause_step(env);
            // Take what came back (not while pausing).
            while !matches!(self.pause, Pause::On { .. }) {
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
            // Closing first, the FIN waits for the whole echo; the peer
            // must not have finished before it.
            let fin_due = !self.close_first || !self.echo || self.back == self.bytes;
            if self.sent == self.bytes && !shut && st.state != TcpState::SynSent && fin_due {
                if self.close_first && st.state.peer_finished() {
                    return Err(Failure::PeerFinished);
                }
                stack.tcp_shutdown(id).map_err(Failure::Net)?;
                shut = true;
                progress = true;
            }
            let now_st = stack.tcp_status(id).map_err(Failure::Net)?;
            if self.close_first {
                // Done in TIME_WAIT with nothing left to read (echo: all
                // back, or the FIN would not have gone). CLOSE_WAIT,
                // LAST_ACK or CLOSED after our FIN: the peer's came first.
                match now_st.state {
                    TcpState::TimeWait if shut && now_st.readable == 0 => return Ok(()),
                    TcpState::TimeWait if shut && self.echo => return Err(Failure::TooMuch),
                    TcpState::CloseWait | TcpState::LastAck | TcpState::Closed if shut => {
                        return Err(Failure::PeerFinished);
                    }
                    _ => {}
                }
            } else if shut && now_st.state.fin_acked() && (!self.echo || self.back == self.bytes) {
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
            if progress || matches!(self.pause, Pause::On { .. }) {
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

    /// Moves `-w`'s pause on: its half-way mark, its end and its line.
    fn pause_step(&mut self, env: &mut dyn AdminEnv) {
        let Pause::On { since, len, sent, heap, half } = self.pause else { return };
        let now = env.now_us();
        let el = now.saturating_sub(since);
        if half.is_none() && el >= len / 2 {
            self.pause = Pause::On { since, len, sent, heap, half: Some(self.sent) };
            return;
        }
        if el < len {
            return;
        }
        let late = self.sent - half.unwrap_or(sent);
        let heap = match (heap, env.heap_used()) {
            (Some(a), Some(b)) => alloc::format!("heap {}{} KiB", if b >= a { "+" } else { "-" }, a.abs_diff(b) / 1024),
            _ => alloc::string::String::from("heap use unknown"),
        };
        self.pause = Pause::Done(alloc::format!(
            "reading paused {} s: sending stopped at {} bytes ({late} in the last {} s), {heap}",
            Fixed2(el / 10_000),
            self.sent,
            Fixed2((el - el / 2) / 10_000),
        ));
    }

    /// Checks received echo bytes against the pattern.
    fn verify(&self, got: &[u8]) -> Result<(), Failure> {
        if self.back + got.len() as u64 > self.sent {
            return Err(Failure::TooMuch);
        }
        if let Some(b) = &self.block {
            // By slices against the block; a difference is then found
            // byte by byte for the report.
            let mut done = 0;
            while done < got.len() {
                let at = ((self.back + done as u64) % CHUNK as u64) as usize;
                let n = (got.len() - done).min(CHUNK - at);
                if got[done..done + n] != b[at..at + n] {
                    let i = (0..n).find(|&i| got[done + i] != b[at + i]).unwrap_or(0);
                    return Err(Failure::Mismatch { at: self.back + (done + i) as u64, got: got[done + i], want: b[at + i] });
                }
                done += n;
            }
            return Ok(());
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

/// A tenths value printed with one decimal (`2425` → `242.5`).
struct Fixed1(u64);

impl fmt::Display for Fixed1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
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

    #[test]
    fn fixed1() {
        assert_eq!(alloc::format!("{}", Fixed1(2425)), "242.5");
        assert_eq!(alloc::format!("{}", Fixed1(7)), "0.7");
        assert_eq!(alloc::format!("{}", Fixed1(10_000_000)), "1000000.0");
    }

    /// No instances: enough for command lines refused before a connect.
    struct NoNet;

    impl AdminEnv for NoNet {
        fn instances(&self) -> alloc::vec::Vec<Arc<dyn IpStack>> {
            alloc::vec::Vec::new()
        }
        fn create_if(&mut self, _: &str, _: Option<crate::StackKind>) -> Result<Arc<dyn IpStack>, NetError> {
            Err(NetError::NotSupported)
        }
        fn delete_if(&mut self, _: &str) -> Result<(), NetError> {
            Err(NetError::NotSupported)
        }
        fn now_us(&self) -> u64 {
            0
        }
        fn sleep_ms(&mut self, _: u64) {}
        fn interrupted(&mut self) -> bool {
            false
        }
        fn poll_now(&mut self) {}
    }

    fn run(line: &str) -> (i32, alloc::string::String) {
        let argv: alloc::vec::Vec<&str> = line.split_whitespace().collect();
        let mut out = alloc::string::String::new();
        let status = ttcp(&argv, &mut NoNet, &mut out);
        (status, out)
    }

    #[test]
    fn count_option_errors() {
        for (line, first) in [
            ("ttcp -c 0 10.0.0.1", "ttcp: bad count: 0"),
            ("ttcp -c 1000001 10.0.0.1", "ttcp: bad count: 1000001"),
            ("ttcp -c -3 10.0.0.1", "ttcp: bad count: -3"),
            ("ttcp -c many 10.0.0.1", "ttcp: bad count: many"),
            ("ttcp -c 5k 10.0.0.1", "ttcp: bad count: 5k"),
            ("ttcp 10.0.0.1 -c", "ttcp: option requires an argument -- c"),
            ("ttcp -c", "ttcp: option requires an argument -- c"),
            ("ttcp -c 5", "ttcp: missing host"),
            // The other options are checked first, as before.
            ("ttcp -c 0 -n lots 10.0.0.1", "ttcp: bad byte count: lots"),
        ] {
            let (status, out) = run(line);
            assert_eq!(status, EXIT_USAGE, "{line}: {out}");
            assert_eq!(out, alloc::format!("{first}\n{USAGE}\n"), "{line}");
        }
        // A good count gets as far as choosing the instance.
        assert_eq!(run("ttcp -c 1000000 10.0.0.1"), (EXIT_FAIL, "ttcp: connect: Network is unreachable\n".into()));
        assert_eq!(run("ttcp -c 3 -i net0 10.0.0.1"), (EXIT_FAIL, "ttcp: net0: no such interface\n".into()));
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("1"), Some(1));
        assert_eq!(parse_count("10000"), Some(10_000));
        assert_eq!(parse_count("0010"), Some(10));
        assert_eq!(parse_count("1000000"), Some(MAX_COUNT));
        for bad in ["0", "1000001", "4294967296", "99999999999999999999", "-1", "+5", "1k", "1.0", " 1", ""] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
    }
}
