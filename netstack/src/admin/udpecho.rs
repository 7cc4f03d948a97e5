//! `udpecho`: numbered datagrams to a UDP echo service (RFC 862), each
//! verified byte for byte when it comes back, reported the way illumos
//! `ping -s` reports echo requests.
//!
//! ```text
//! udpecho [-c count] [-s size[,size...]] [-p port] [-i interval_ms] [-t timeout_ms] [-I interface] host
//! ```
//!
//! * `-c`: datagrams to send (default 5).
//! * `-s`: payload bytes (default 64, at least 4, at most 65507); a list
//!   (`-s 64,1472,4000`) is used in turn, datagram `n` taking size
//!   `n mod len`.
//! * `-p`: the port (default 7, echo).
//! * `-i`: milliseconds from one send to the next at least (default 0:
//!   the next leaves as soon as the previous one is answered or lost).
//! * `-t`: milliseconds to wait for each echo (default 1000).
//! * `-I`: the IP interface (instance) to send from; else the one whose
//!   subnet holds the host, else one with a route to it (as `ping -i`).
//!
//! One datagram is out at a time. Datagram `n` carries `n` (32 bits, big
//! endian) in its first 4 bytes and then a pattern that depends on `n` and
//! the offset, so that a reply is matched to its datagram and any damage,
//! truncation or mix-up shows. Once the first datagram is out, a header;
//! then each reply prints a line,
//!
//! ```text
//! UDPECHO 10.0.0.2 port 7: 64 data bytes
//! 64 bytes from 10.0.0.2: udp_seq=0. time=0.512 ms
//! 64 bytes from 10.0.0.2: udp_seq=3. time=0.733 ms (corrupt: byte 17 is 0x00, expected 0x5a)
//! udp_seq=4. no reply within 1000 ms
//! ```
//!
//! (a reply that comes after its datagram was given up, or a second copy,
//! is reported as `late or duplicate, ignored` and changes no count;
//! datagrams from anyone but `host:port` are ignored), and the run ends
//! with the summary
//!
//! ```text
//! ----10.0.0.2 UDPECHO Statistics----
//! 5 datagrams sent, 5 received intact, 0 lost, 0 corrupt; rtt min/avg/max = 0.512/0.640/0.733 ms
//! ```
//!
//! where the round-trip times are those of the replies matched (intact or
//! corrupt). Status 0 only if every datagram came back intact; 1 when any
//! was lost or corrupt, on Ctrl-C, or when the host cannot be reached or
//! the socket not opened (one `udpecho: ...` line); 2 for a bad command
//! line (with the usage).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::net::{Ipv4Addr, SocketAddrV4};

use super::getopt::{OptError, getopt};
use super::ttcp::pattern_byte;
use super::{AdminEnv, EXIT_FAIL, EXIT_USAGE, Millis, NoStack, pick_stack};
use crate::config::parse_addr;
use crate::stack::{IpStack, NetError, UdpId};

/// The synopsis (the shell's `help udpecho` prints it).
pub const USAGE: &str =
    "udpecho [-c count] [-s size[,size...]] [-p port] [-i interval_ms] [-t timeout_ms] [-I interface] host";

/// Default datagrams.
pub const DEFAULT_COUNT: u32 = 5;
/// Default payload bytes.
pub const DEFAULT_SIZE: usize = 64;
/// Default port: echo.
pub const DEFAULT_PORT: u16 = 7;
/// Default wait for each echo, ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// The smallest payload: the sequence number.
pub const MIN_SIZE: usize = 4;
/// The largest UDP payload in one IPv4 datagram.
pub const MAX_SIZE: usize = 65_507;
/// Sizes one `-s` list may hold.
const MAX_SIZES: usize = 64;
/// Longest interval or timeout, ms (an hour).
const MAX_MS: u64 = 3_600_000;

/// Byte `i` of datagram `seq`: the sequence number (big endian) in the
/// first 4 bytes, then the pattern of `ttcp`, keyed by both.
pub fn datagram_byte(seq: u32, i: usize) -> u8 {
    match i {
        0..4 => seq.to_be_bytes()[i],
        _ => pattern_byte((u64::from(seq) << 32) | i as u64),
    }
}

/// Fills `buf` as datagram `seq`.
pub fn fill_datagram(buf: &mut [u8], seq: u32) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = datagram_byte(seq, i);
    }
}

/// `udpecho` (`argv[0]` is `udpecho`).
pub fn udpecho(argv: &[&str], env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
    let p = match getopt(argv.get(1..).unwrap_or(&[]), "c:s:p:i:t:I:") {
        Ok(p) => p,
        Err(OptError::Unknown(c)) => return usage(out, format_args!("illegal option -- {c}")),
        Err(OptError::MissingValue(c)) => return usage(out, format_args!("option requires an argument -- {c}")),
    };
    let host = match p.operands.as_slice() {
        [h] => *h,
        [] => return usage(out, format_args!("missing host")),
        _ => return usage(out, format_args!("extra arguments")),
    };
    let count = match p.value('c') {
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => return usage(out, format_args!("bad count: {v}")),
        },
        None => DEFAULT_COUNT,
    };
    let sizes = match p.value('s') {
        Some(v) => match parse_sizes(v) {
            Some(s) => s,
            None => return usage(out, format_args!("bad size: {v} (each {MIN_SIZE} to {MAX_SIZE}, at most {MAX_SIZES})")),
        },
        None => vec![DEFAULT_SIZE],
    };
    let port = match p.value('p') {
        Some(v) => match v.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return usage(out, format_args!("bad port: {v}")),
        },
        None => DEFAULT_PORT,
    };
    let interval_ms = match p.value('i') {
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= MAX_MS => n,
            _ => return usage(out, format_args!("bad interval: {v}")),
        },
        None => 0,
    };
    let timeout_ms = match p.value('t') {
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=MAX_MS).contains(&n) => n,
            _ => return usage(out, format_args!("bad timeout: {v}")),
        },
        None => DEFAULT_TIMEOUT_MS,
    };
    let Some(dst) = parse_addr(host) else {
        let _ = writeln!(out, "udpecho: unknown host {host}");
        return EXIT_FAIL;
    };
    let stack = match pick_stack(env, p.value('I'), dst) {
        Ok(s) => s,
        Err(NoStack::NoSuchInterface(name)) => {
            let _ = writeln!(out, "udpecho: {name}: no such interface");
            return EXIT_FAIL;
        }
        Err(NoStack::Unreachable) => {
            let _ = writeln!(out, "udpecho: sendto: {}", NetError::Unreachable);
            return EXIT_FAIL;
        }
    };
    // Its own address (or 127/8) it reaches only through a loopback.
    let own = stack.addrs().iter().any(|a| a.net.addr() == dst) || dst.is_loopback();
    if (own && !stack.has_loopback()) || (!own && !stack.reaches(dst)) {
        let _ = writeln!(out, "udpecho: sendto: {}", NetError::Unreachable);
        return EXIT_FAIL;
    }
    let id = match stack.udp_open(0) {
        Ok(id) => id,
        Err(e) => {
            let _ = writeln!(out, "udpecho: socket: {e}");
            return EXIT_FAIL;
        }
    };
    let sock = Sock { stack, id };
    let run = Run {
        to: SocketAddrV4::new(dst, port),
        count,
        sizes,
        interval_us: interval_ms * 1000,
        timeout_us: timeout_ms * 1000,
        stats: Stats::default(),
    };
    run.run(&sock, env, out)
    // `sock` drops here: the socket is closed on every path.
}

fn usage(out: &mut dyn Write, msg: fmt::Arguments<'_>) -> i32 {
    let _ = writeln!(out, "udpecho: {msg}");
    let _ = writeln!(out, "usage: {USAGE}");
    EXIT_USAGE
}

/// `64` or `64,1472,4000` → sizes, each within `MIN_SIZE..=MAX_SIZE`.
fn parse_sizes(s: &str) -> Option<Vec<usize>> {
    let mut v = Vec::new();
    for part in s.split(',') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || v.len() == MAX_SIZES {
            return None;
        }
        let n = part.parse::<usize>().ok().filter(|n| (MIN_SIZE..=MAX_SIZE).contains(n))?;
        v.push(n);
    }
    Some(v)
}

/// An open socket, closed when dropped.
struct Sock {
    stack: Arc<dyn IpStack>,
    id: UdpId,
}

impl Drop for Sock {
    fn drop(&mut self) {
        self.stack.udp_close(self.id);
    }
}

#[derive(Default)]
struct Stats {
    sent: u32,
    intact: u32,
    corrupt: u32,
    /// Round trips of the replies matched, µs.
    rtt_min: u64,
    rtt_max: u64,
    rtt_sum: u64,
}

impl Stats {
    fn replies(&self) -> u32 {
        self.intact + self.corrupt
    }

    fn note_rtt(&mut self, us: u64) {
        if self.replies() == 0 || us < self.rtt_min {
            self.rtt_min = us;
        }
        self.rtt_max = self.rtt_max.max(us);
        self.rtt_sum = self.rtt_sum.saturating_add(us);
    }
}

/// What a reply from the host was.
enum Reply {
    /// The echo of the datagram out.
    Current(Result<(), Damage>),
    /// The echo of an earlier datagram, given up on already.
    Late(u32),
}

/// How a reply differs from its datagram.
enum Damage {
    Length(usize),
    Byte { at: usize, got: u8, want: u8 },
    Unknown,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Length(n) => write!(f, "corrupt: {n} bytes came back"),
            Damage::Byte { at, got, want } => write!(f, "corrupt: byte {at} is 0x{got:02x}, expected 0x{want:02x}"),
            Damage::Unknown => f.write_str("corrupt: not a datagram that was sent"),
        }
    }
}

struct Run {
    to: SocketAddrV4,
    count: u32,
    sizes: Vec<usize>,
    interval_us: u64,
    timeout_us: u64,
    stats: Stats,
}

impl Run {
    fn size_of(&self, seq: u32) -> usize {
        self.sizes[seq as usize % self.sizes.len()]
    }

    fn host(&self) -> Ipv4Addr {
        *self.to.ip()
    }

    fn run(mut self, sock: &Sock, env: &mut dyn AdminEnv, out: &mut dyn Write) -> i32 {
        let largest = self.sizes.iter().copied().max().unwrap_or(DEFAULT_SIZE);
        let mut payload = vec![0u8; largest];
        let mut buf = vec![0u8; largest + 1];
        let mut next_send = env.now_us();
        let mut failed = false;
        'run: for seq in 0..self.count {
            // Pace.
            while env.now_us() < next_send {
                if env.interrupted() {
                    break 'run;
                }
                env.sleep_ms(next_send.saturating_sub(env.now_us()).div_ceil(1000).min(10));
            }
            let size = self.size_of(seq);
            fill_datagram(&mut payload[..size], seq);
            let sent_at = env.now_us();
            let deadline = sent_at.saturating_add(self.timeout_us);
            // A full send queue drains as the stack sends: wait for room
            // (within the timeout).
            loop {
                match sock.stack.udp_send_to(sock.id, self.to, &payload[..size]) {
                    Ok(()) => break,
                    Err(NetError::NoBuffers) if env.now_us() < deadline && !env.interrupted() => {
                        env.poll_now();
                        env.sleep_ms(1);
                    }
                    Err(e) => {
                        let _ = writeln!(out, "udpecho: sendto: {e}");
                        failed = true;
                        break 'run;
                    }
                }
            }
            if self.stats.sent == 0 {
                let sizes: Vec<String> = self.sizes.iter().map(|s| alloc::format!("{s}")).collect();
                let _ = writeln!(out, "UDPECHO {} port {}: {} data bytes", self.host(), self.to.port(), sizes.join(","));
            }
            self.stats.sent += 1;
            next_send = sent_at.saturating_add(self.interval_us);
            env.poll_now();
            // Wait for the echo.
            loop {
                let mut answered = false;
                while let Some((from, len)) = match sock.stack.udp_recv_from(sock.id, &mut buf) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = writeln!(out, "udpecho: recvfrom: {e}");
                        failed = true;
                        break 'run;
                    }
                } {
                    if from != self.to {
                        continue;
                    }
                    let rtt = env.now_us().saturating_sub(sent_at);
                    let got = &buf[..len.min(buf.len())];
                    match self.classify(seq, got, len) {
                        Reply::Late(s) => {
                            let _ = writeln!(out, "{len} bytes from {}: udp_seq={s}. late or duplicate, ignored", self.host());
                        }
                        Reply::Current(verdict) => {
                            self.stats.note_rtt(rtt);
                            let _ = write!(out, "{len} bytes from {}: udp_seq={seq}. time={} ms", self.host(), Millis(rtt));
                            match verdict {
                                Ok(()) => self.stats.intact += 1,
                                Err(d) => {
                                    self.stats.corrupt += 1;
                                    let _ = write!(out, " ({d})");
                                }
                            }
                            let _ = writeln!(out);
                            answered = true;
                            break;
                        }
                    }
                }
                if answered {
                    break;
                }
                let now = env.now_us();
                if now >= deadline {
                    let _ = writeln!(out, "udp_seq={seq}. no reply within {} ms", self.timeout_us / 1000);
                    break;
                }
                if env.interrupted() {
                    break 'run;
                }
                env.sleep_ms(1);
            }
        }
        let st = &self.stats;
        if st.sent == 0 {
            return EXIT_FAIL;
        }
        let lost = st.sent - st.replies();
        let _ = writeln!(out);
        let _ = writeln!(out, "----{} UDPECHO Statistics----", self.host());
        let _ = write!(
            out,
            "{} datagrams sent, {} received intact, {lost} lost, {} corrupt; rtt min/avg/max = ",
            st.sent, st.intact, st.corrupt
        );
        let _ = if st.replies() > 0 {
            let avg = st.rtt_sum / u64::from(st.replies());
            writeln!(out, "{}/{}/{} ms", Millis(st.rtt_min), Millis(avg), Millis(st.rtt_max))
        } else {
            writeln!(out, "-/-/- ms")
        };
        if !failed && st.sent == self.count && st.intact == self.count { 0 } else { EXIT_FAIL }
    }

    /// Matches a reply of `len` bytes (`got` its first bytes) while
    /// datagram `seq` is out.
    fn classify(&self, seq: u32, got: &[u8], len: usize) -> Reply {
        let tag = got.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        match tag {
            Some(t) if t < seq && len == self.size_of(t) => return Reply::Late(t),
            _ => {}
        }
        if tag != Some(seq) {
            return Reply::Current(Err(Damage::Unknown));
        }
        let size = self.size_of(seq);
        if len != size {
            return Reply::Current(Err(Damage::Length(len)));
        }
        for (at, &b) in got.iter().enumerate() {
            let want = datagram_byte(seq, at);
            if b != want {
                return Reply::Current(Err(Damage::Byte { at, got: b, want }));
            }
        }
        Reply::Current(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_sizes("64"), Some(vec![64]));
        assert_eq!(parse_sizes("4,1472,4000,65507"), Some(vec![4, 1472, 4000, 65507]));
        for bad in ["", "3", "65508", "64,", ",64", "1e3", "-4", "64;128"] {
            assert_eq!(parse_sizes(bad), None, "{bad}");
        }
        let many = ["8"; 65].join(",");
        assert_eq!(parse_sizes(&many), None);
    }

    #[test]
    fn datagrams_carry_their_number_and_differ() {
        let mut a = vec![0u8; 100];
        let mut b = vec![0u8; 100];
        fill_datagram(&mut a, 1);
        fill_datagram(&mut b, 2);
        assert_eq!(&a[..4], &[0, 0, 0, 1]);
        assert_eq!(&b[..4], &[0, 0, 0, 2]);
        let same = a[4..].iter().zip(&b[4..]).filter(|(x, y)| x == y).count();
        assert!(same < 10, "{same} equal bytes");
    }
}
