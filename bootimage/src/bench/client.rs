//! The host-side load generators of `bench`: plain `std::net` sockets, run
//! on a thread that has entered the guest's network namespace
//! ([`enter_netns`]; threads they spawn inherit it).
//!
//! Every generator connects first, then runs for `warm-up + duration` and
//! counts only what happens inside the measured window (the last
//! `duration`). Every wait is bounded: a generator that sees no progress for
//! [`STALL`] gives up with an error saying how far it got.
//!
//! * [`stream_to`]: N connections writing 64 KiB blocks into discard; counts
//!   bytes the peer acknowledged (written minus still queued, `TIOCOUTQ`).
//! * [`stream_from`]: N connections reading from chargen.
//! * [`tcp_rr`]: N connections doing `size`-byte request/response on echo;
//!   transactions/s and latency percentiles (p50/p99/p99.9).
//! * [`tcp_crr`]: connect, 1-byte request/response, close, repeated on fresh
//!   connections; connections/s and percentiles of the whole cycle.
//! * [`udp_rr`]: UDP echo request/response with a sequence number in each
//!   datagram; a reply not back within [`UDP_TIMEOUT`] is lost (a later one
//!   is counted late, not as an answer).
//! * [`udp_flood`]: N sockets sending datagrams to UDP echo as fast as the
//!   host takes them, each with a receiver thread counting the echoes;
//!   datagrams/s answered, the loss fraction and where it went (the host's
//!   TAP queue, the client's socket buffers, or the guest).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// No progress for this long fails a generator.
pub const STALL: Duration = Duration::from_secs(30);
/// A UDP request whose reply is not back in this time counts as lost.
pub const UDP_TIMEOUT: Duration = Duration::from_millis(200);
/// Connect timeout of every TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Socket timeouts of the stream loops (they check the clock between calls).
const IO_STEP: Duration = Duration::from_millis(100);
/// Block size of the stream writers and readers.
pub const BLOCK: usize = 64 * 1024;

/// Moves the calling thread into network namespace `name` (under
/// `/var/run/netns`). The thread stays there; threads it spawns start there.
pub fn enter_netns(name: &str) -> Result<(), String> {
    let path = Path::new(crate::net::NETNS_DIR).join(name);
    let f = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: setns(2) on a descriptor we own; it changes only this thread's
    // network namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(format!("setns({name}): {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `ns` and returns its result.
pub fn in_netns<R: Send, F: FnOnce() -> Result<R, String> + Send>(ns: &str, f: F) -> Result<R, String> {
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            enter_netns(ns)?;
            f()
        });
        h.join().unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(format!("client thread panicked: {msg}"))
        })
    })
}

/// Warm-up and measured time of one phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub warmup: Duration,
    pub duration: Duration,
}

impl Timing {
    pub fn total(&self) -> Duration {
        self.warmup + self.duration
    }
}

/// Latency percentiles of a set of samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub min: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// `q`-quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Latency {
    /// Percentiles of `samples` (sorted here).
    pub fn of(samples: &mut [Duration]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let sum: Duration = samples.iter().sum();
        Latency {
            min: samples[0],
            p50: quantile(samples, 0.5),
            p99: quantile(samples, 0.99),
            p999: quantile(samples, 0.999),
            max: samples[samples.len() - 1],
            mean: sum / samples.len() as u32,
        }
    }

    /// Microseconds, for JSON.
    pub fn json(&self) -> Value {
        let us = |d: Duration| (d.as_secs_f64() * 1e7).round() / 10.0;
        json!({
            "min": us(self.min), "p50": us(self.p50), "p99": us(self.p99),
            "p99_9": us(self.p999), "max": us(self.max), "mean": us(self.mean),
        })
    }
}

/// What one phase measured.
#[derive(Clone, Debug, PartialEq)]
pub enum Figures {
    /// Bytes moved in `secs` over `conns` connections.
    Stream { bytes: u64, secs: f64, conns: usize },
    /// Request/response transactions.
    Rr { count: u64, secs: f64, conns: usize, size: usize, lat: Latency },
    /// Connect/request/response/close cycles.
    Crr { count: u64, secs: f64, failures: u64, lat: Latency },
    /// UDP request/response.
    Udp { sent: u64, answered: u64, lost: u64, late: u64, secs: f64, size: usize, lat: Latency },
    /// UDP flood to echo: what was sent inside the window and what came
    /// back (by [`FLOOD_DRAIN`] after it), and the host-side drops.
    Flood(Flood),
}

/// What [`udp_flood`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Flood {
    /// Datagrams the client's kernel accepted inside the window.
    pub sent: u64,
    /// Echoes of those received by the client.
    pub answered: u64,
    /// Measured window, seconds.
    pub secs: f64,
    pub senders: usize,
    pub size: usize,
    /// `send` calls refused inside the window (ENOBUFS, EAGAIN, ECONNREFUSED).
    pub send_errors: u64,
    /// Echoes whose payload differed from what was sent.
    pub corrupt: u64,
    /// Transmit drops of the host's TAP (frames the guest's NIC did not
    /// take in time) inside the measured window — the datagrams sent in it
    /// that never reached the guest; `None` if unreadable.
    pub tap_tx_dropped: Option<u64>,
    /// UDP receive-buffer overflows of the client's namespace (echoes the
    /// client itself dropped), over the whole phase.
    pub client_rcvbuf_errors: Option<u64>,
    /// Round-trip time of the answered datagrams (queueing included).
    pub lat: Latency,
}

impl Flood {
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.answered)
    }

    /// Lost / sent.
    pub fn loss_ratio(&self) -> f64 {
        if self.sent > 0 { self.lost() as f64 / self.sent as f64 } else { 0.0 }
    }

    /// Lost datagrams that the TAP did not drop: lost in the guest (or its
    /// NIC's emulation, or on the way back).
    pub fn lost_past_tap(&self) -> Option<u64> {
        self.tap_tx_dropped.map(|d| self.lost().saturating_sub(d))
    }
}

impl Figures {
    /// The headline figure (see [`Figures::unit`]).
    pub fn value(&self) -> f64 {
        match *self {
            Figures::Stream { bytes, secs, .. } => bytes as f64 * 8.0 / secs / 1e6,
            Figures::Rr { count, secs, .. } | Figures::Crr { count, secs, .. } => count as f64 / secs,
            Figures::Udp { answered, secs, .. } => answered as f64 / secs,
            Figures::Flood(f) => f.answered as f64 / f.secs,
        }
    }

    pub fn unit(&self) -> &'static str {
        match self {
            Figures::Stream { .. } => "Mbit/s",
            Figures::Rr { .. } | Figures::Udp { .. } => "trans/s",
            Figures::Crr { .. } => "conn/s",
            Figures::Flood(_) => "dgram/s",
        }
    }

    /// Latency percentiles, where the phase has them.
    pub fn latency(&self) -> Option<&Latency> {
        match self {
            Figures::Stream { .. } => None,
            Figures::Rr { lat, .. } | Figures::Crr { lat, .. } | Figures::Udp { lat, .. } => Some(lat),
            Figures::Flood(f) => Some(&f.lat),
        }
    }

    /// Everything, as a JSON object (latencies in microseconds).
    pub fn details(&self) -> Value {
        match *self {
            Figures::Stream { bytes, secs, conns } => json!({ "bytes": bytes, "secs": secs, "connections": conns }),
            Figures::Rr { count, secs, conns, size, lat } => json!({
                "transactions": count, "secs": secs, "connections": conns, "message_bytes": size,
                "latency_us": lat.json(),
            }),
            Figures::Crr { count, secs, failures, lat } => json!({
                "connections": count, "secs": secs, "failures": failures, "latency_us": lat.json(),
            }),
            Figures::Udp { sent, answered, lost, late, secs, size, lat } => json!({
                "sent": sent, "answered": answered, "lost": lost, "late": late,
                "loss_ratio": if sent > 0 { lost as f64 / sent as f64 } else { 0.0 },
                "secs": secs, "datagram_bytes": size, "latency_us": lat.json(),
            }),
            Figures::Flood(f) => json!({
                "sent": f.sent, "answered": f.answered, "lost": f.lost(), "loss_ratio": f.loss_ratio(),
                "offered_per_s": if f.secs > 0.0 { f.sent as f64 / f.secs } else { 0.0 },
                "secs": f.secs, "senders": f.senders, "datagram_bytes": f.size,
                "send_errors": f.send_errors, "corrupt": f.corrupt,
                "tap_tx_dropped": f.tap_tx_dropped, "lost_past_tap": f.lost_past_tap(),
                "client_rcvbuf_errors": f.client_rcvbuf_errors,
                "latency_us": f.lat.json(),
            }),
        }
    }

    /// One short line for the table's detail column.
    pub fn summary(&self) -> String {
        let us = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e6);
        match self {
            Figures::Stream { bytes, conns, .. } => format!("{:.1} MB, {conns} conn", *bytes as f64 / 1e6),
            Figures::Rr { lat, count, .. } => {
                format!("p50/p99/p99.9 {}/{}/{} us, {count} trans", us(lat.p50), us(lat.p99), us(lat.p999))
            }
            Figures::Crr { lat, failures, .. } => {
                format!("p50/p99/p99.9 {}/{}/{} us, {failures} failed", us(lat.p50), us(lat.p99), us(lat.p999))
            }
            Figures::Udp { lat, lost, sent, late, .. } => format!(
                "p50/p99/p99.9 {}/{}/{} us, lost {lost}/{sent}, late {late}",
                us(lat.p50),
                us(lat.p99),
                us(lat.p999)
            ),
            Figures::Flood(f) => format!(
                "offered {:.0}/s, lost {}/{} ({:.1}%): at the tap {}, past it {}, client drops {}, p50/p99 {}/{} us",
                if f.secs > 0.0 { f.sent as f64 / f.secs } else { 0.0 },
                f.lost(),
                f.sent,
                f.loss_ratio() * 100.0,
                f.tap_tx_dropped.map(|v| v.to_string()).unwrap_or_else(|| "unreadable".into()),
                f.lost_past_tap().map(|v| v.to_string()).unwrap_or_else(|| "unreadable".into()),
                f.client_rcvbuf_errors.map(|v| v.to_string()).unwrap_or_else(|| "unreadable".into()),
                us(f.lat.p50),
                us(f.lat.p99)
            ),
        }
    }
}

// ---------------------------------------------------------------------------

/// A TCP connection with `io` read and write timeouts.
pub fn connect(addr: SocketAddr, io: Duration) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(io)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(io)).map_err(|e| e.to_string())?;
    Ok(s)
}

fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// Bytes in the socket's send queue not yet acknowledged.
fn unacked(s: &TcpStream) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ on a TCP socket writes one int.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r == 0 { n.max(0) as u64 } else { 0 }
}

/// Runs `conns` copies of `work` on threads of their own, each given its
/// connection index and the shared measured window `(begin, end)`, started
/// together once all have set up (`setup`). Errors of any copy fail all.
fn parallel<S, T, W>(conns: usize, t: Timing, setup: S, work: W) -> Result<Vec<T>, String>
where
    S: Fn(usize) -> Result<TcpStream, String> + Sync,
    W: Fn(usize, TcpStream, Instant, Instant) -> Result<T, String> + Sync,
    T: Send,
{
    let conns = conns.max(1);
    // Connect first, one after the other (a burst of SYNs is not what we measure).
    let mut streams = Vec::with_capacity(conns);
    for i in 0..conns {
        streams.push(setup(i)?);
    }
    let barrier = Arc::new(Barrier::new(conns));
    let window = std::sync::OnceLock::new();
    std::thread::scope(|sc| {
        let hs: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let (barrier, window, work) = (barrier.clone(), &window, &work);
                sc.spawn(move || {
                    barrier.wait();
                    let &(begin, end) = window.get_or_init(|| {
                        let now = Instant::now();
                        (now + t.warmup, now + t.total())
                    });
                    work(i, s, begin, end)
                })
            })
            .collect();
        let mut out = Vec::with_capacity(hs.len());
        let mut err = None;
        for h in hs {
            match h.join() {
                Ok(Ok(v)) => out.push(v),
                Ok(Err(e)) => err = err.or(Some(e)),
                Err(_) => err = err.or(Some("client thread panicked".to_string())),
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    })
}

/// `conns` connections writing [`BLOCK`]-byte blocks into `addr` (discard).
pub fn stream_to(addr: SocketAddr, conns: usize, t: Timing) -> Result<Figures, String> {
    let per = parallel(conns, t, |_| connect(addr, IO_STEP), |i, mut s, begin, end| {
        let block = vec![0x5au8; BLOCK];
        let mut written = 0u64;
        let mut base: Option<(u64, Instant)> = None;
        let mut progress = Instant::now();
        loop {
            let now = Instant::now();
            if base.is_none() && now >= begin {
                base = Some((written.saturating_sub(unacked(&s)), now));
            }
            if now >= end {
                break;
            }
            match s.write(&block) {
                Ok(n) => {
                    written += n as u64;
                    progress = Instant::now();
                }
                Err(e) if transient(&e) => {}
                Err(e) => return Err(format!("connection {i}: write after {written} bytes: {e}")),
            }
            if progress.elapsed() > STALL {
                return Err(format!("connection {i}: no progress for {STALL:?} after {written} bytes"));
            }
        }
        let fin = Instant::now();
        let acked = written.saturating_sub(unacked(&s));
        let _ = s.shutdown(Shutdown::Both);
        let (b0, t0) = base.unwrap_or((0, begin));
        Ok((acked.saturating_sub(b0), fin.duration_since(t0).as_secs_f64()))
    })?;
    Ok(sum_streams(&per))
}

fn sum_streams(per: &[(u64, f64)]) -> Figures {
    // Sum of per-connection rates, expressed over the mean window.
    let secs = per.iter().map(|p| p.1).sum::<f64>() / per.len().max(1) as f64;
    let rate: f64 = per.iter().map(|&(b, s)| if s > 0.0 { b as f64 / s } else { 0.0 }).sum();
    Figures::Stream { bytes: (rate * secs).round() as u64, secs, conns: per.len() }
}

/// `conns` connections reading from `addr` (chargen).
pub fn stream_from(addr: SocketAddr, conns: usize, t: Timing) -> Result<Figures, String> {
    let per = parallel(conns, t, |_| connect(addr, IO_STEP), |i, mut s, begin, end| {
        let mut buf = vec![0u8; 4 * BLOCK];
        let mut got = 0u64;
        let mut base: Option<(u64, Instant)> = None;
        let mut progress = Instant::now();
        loop {
            let now = Instant::now();
            if base.is_none() && now >= begin {
                base = Some((got, now));
            }
            if now >= end {
                break;
            }
            match s.read(&mut buf) {
                Ok(0) => return Err(format!("connection {i}: chargen closed after {got} bytes")),
                Ok(n) => {
                    got += n as u64;
                    progress = Instant::now();
                }
                Err(e) if transient(&e) => {}
                Err(e) => return Err(format!("connection {i}: read after {got} bytes: {e}")),
            }
            if progress.elapsed() > STALL {
                return Err(format!("connection {i}: nothing received for {STALL:?} after {got} bytes"));
            }
        }
        let fin = Instant::now();
        let _ = s.shutdown(Shutdown::Both);
        let (b0, t0) = base.unwrap_or((0, begin));
        Ok((got - b0, fin.duration_since(t0).as_secs_f64()))
    })?;
    Ok(sum_streams(&per))
}

/// Fills a request with a pattern that changes every transaction.
fn fill(buf: &mut [u8], seq: u64) {
    let k = (seq % 251) as u8;
    for (j, b) in buf.iter_mut().enumerate() {
        *b = k.wrapping_add(j as u8);
    }
}

/// `conns` connections each doing `size`-byte request/response on `addr`
/// (echo), one transaction in flight per connection.
pub fn tcp_rr(addr: SocketAddr, size: usize, conns: usize, t: Timing) -> Result<Figures, String> {
    let size = size.max(1);
    let per = parallel(
        conns,
        t,
        |_| {
            let s = connect(addr, STALL)?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            Ok(s)
        },
        |i, mut s, begin, end| {
            let mut req = vec![0u8; size];
            let mut resp = vec![0u8; size];
            let mut lat = Vec::new();
            let mut seq = 0u64;
            let mut first: Option<Instant> = None;
            let mut last = begin;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                fill(&mut req, seq);
                s.write_all(&req).map_err(|e| format!("connection {i}: write, transaction {seq}: {e}"))?;
                s.read_exact(&mut resp).map_err(|e| format!("connection {i}: read, transaction {seq}: {e}"))?;
                let t1 = Instant::now();
                if resp != req {
                    return Err(format!("connection {i}: transaction {seq}: echo differs from the request"));
                }
                seq += 1;
                if t0 >= begin && t1 <= end {
                    first.get_or_insert(t0);
                    last = t1;
                    lat.push(t1 - t0);
                }
            }
            let _ = s.shutdown(Shutdown::Both);
            let secs = first.map(|f| last.duration_since(f).as_secs_f64()).unwrap_or(0.0);
            Ok((lat, secs))
        },
    )?;
    let secs = per.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let mut all: Vec<Duration> = per.into_iter().flat_map(|p| p.0).collect();
    let count = all.len() as u64;
    if count == 0 || secs <= 0.0 {
        return Err("no transaction completed inside the measured window".into());
    }
    let lat = Latency::of(&mut all);
    Ok(Figures::Rr { count, secs, conns: conns.max(1), size, lat })
}

/// Connect, send one byte, read it back, close (client closes first);
/// repeated on fresh connections to `addr` (echo). More than 20 failed
/// cycles fail the phase.
pub fn tcp_crr(addr: SocketAddr, t: Timing) -> Result<Figures, String> {
    let start = Instant::now();
    let (begin, end) = (start + t.warmup, start + t.total());
    let mut lat = Vec::new();
    let mut failures = 0u64;
    let mut last_err = String::new();
    let mut seq = 0u64;
    let mut first: Option<Instant> = None;
    let mut last = begin;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let v = [b'a' + (seq % 26) as u8];
        seq += 1;
        let one = || -> Result<(), String> {
            let mut s = connect(addr, Duration::from_secs(5))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.write_all(&v).map_err(|e| format!("write: {e}"))?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).map_err(|e| format!("read: {e}"))?;
            if b != v {
                return Err(format!("sent {:?}, got {:?}", v[0], b[0]));
            }
            Ok(())
        };
        match one() {
            Ok(()) => {
                let t1 = Instant::now();
                if t0 >= begin && t1 <= end {
                    first.get_or_insert(t0);
                    last = t1;
                    lat.push(t1 - t0);
                }
            }
            Err(e) => {
                failures += 1;
                last_err = e;
                if failures > 20 {
                    return Err(format!("{failures} failed connections (after {} good); last: {last_err}", lat.len()));
                }
            }
        }
        if lat.is_empty() && t0.duration_since(start) > t.total() + STALL {
            return Err(format!("no connection completed; last error: {last_err}"));
        }
    }
    let secs = first.map(|f| last.duration_since(f).as_secs_f64()).unwrap_or(0.0);
    if lat.is_empty() || secs <= 0.0 {
        return Err(format!("no connection completed inside the measured window ({failures} failed: {last_err})"));
    }
    let count = lat.len() as u64;
    Ok(Figures::Crr { count, secs, failures, lat: Latency::of(&mut lat) })
}

/// UDP echo request/response with `size`-byte datagrams (at least 8: a
/// sequence number leads each). One request in flight; a reply not back
/// within [`UDP_TIMEOUT`] counts as lost; replies to earlier requests that
/// come later are counted late and skipped.
pub fn udp_rr(addr: SocketAddr, size: usize, t: Timing) -> Result<Figures, String> {
    let size = size.max(8);
    let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let s = UdpSocket::bind(bind).map_err(|e| format!("udp bind: {e}"))?;
    s.connect(addr).map_err(|e| format!("udp connect {addr}: {e}"))?;
    let start = Instant::now();
    let (begin, end) = (start + t.warmup, start + t.total());
    let mut req = vec![0u8; size];
    let mut buf = vec![0u8; 65536];
    let (mut sent, mut answered, mut lost, mut late) = (0u64, 0u64, 0u64, 0u64);
    let mut lat = Vec::new();
    let mut seq = 0u64;
    let mut first: Option<Instant> = None;
    let mut last = begin;
    let mut progress = Instant::now();
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        seq += 1;
        fill(&mut req[8..], seq);
        req[..8].copy_from_slice(&seq.to_be_bytes());
        let counted = t0 >= begin;
        match s.send(&req) {
            Ok(_) => {}
            Err(e) if transient(&e) || e.raw_os_error() == Some(libc::ECONNREFUSED) => continue,
            Err(e) => return Err(format!("udp send, request {seq}: {e}")),
        }
        if counted {
            sent += 1;
        }
        let deadline = t0 + UDP_TIMEOUT;
        let mut ok = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            s.set_read_timeout(Some(deadline - now)).map_err(|e| e.to_string())?;
            match s.recv(&mut buf) {
                Ok(n) if n >= 8 => {
                    let got = u64::from_be_bytes(buf[..8].try_into().unwrap());
                    if got == seq {
                        if buf[..n] != req[..] {
                            return Err(format!("udp request {seq}: echo differs from the request"));
                        }
                        ok = true;
                        break;
                    }
                    if counted {
                        late += 1;
                    }
                }
                Ok(_) => {}
                Err(e) if transient(&e) => {}
                // An ICMP port unreachable from a not-yet-listening peer.
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => break,
                Err(e) => return Err(format!("udp recv, request {seq}: {e}")),
            }
        }
        let t1 = Instant::now();
        if ok {
            progress = t1;
            if counted && t1 <= end {
                answered += 1;
                first.get_or_insert(t0);
                last = t1;
                lat.push(t1 - t0);
            } else if counted {
                // Answered after the window closed: neither lost nor counted.
                sent -= 1;
            }
        } else if counted {
            lost += 1;
        }
        if progress.elapsed() > STALL {
            return Err(format!("udp: no answer for {STALL:?} ({answered} answered, {lost} lost)"));
        }
    }
    let secs = first.map(|f| last.duration_since(f).as_secs_f64()).unwrap_or(0.0);
    if answered == 0 || secs <= 0.0 {
        return Err(format!("udp: no request answered inside the measured window ({sent} sent, {lost} lost)"));
    }
    Ok(Figures::Udp { sent, answered, lost, late, secs, size, lat: Latency::of(&mut lat) })
}

/// How long [`udp_flood`]'s receivers keep reading after the window closes
/// (echoes of datagrams sent inside the window still count).
pub const FLOOD_DRAIN: Duration = Duration::from_millis(500);
/// Receive buffer asked for on each flood socket (`SO_RCVBUFFORCE` as root,
/// else `SO_RCVBUF`, which the host caps), so that the client is not where
/// echoes are lost.
pub const FLOOD_RCVBUF: libc::c_int = 8 << 20;

/// The transmit `drop` counter of interface `ifname` in the calling
/// thread's network namespace (`/proc/thread-self/net/dev`).
pub fn netdev_tx_dropped(ifname: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/dev").ok()?;
    text.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name.trim() != ifname {
            return None;
        }
        // Receive: bytes packets errs drop fifo frame compressed multicast;
        // transmit: bytes packets errs drop ...
        rest.split_whitespace().nth(11)?.parse().ok()
    })
}

/// `Udp: RcvbufErrors` of the calling thread's network namespace.
pub fn udp_rcvbuf_errors() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/snmp").ok()?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

fn big_rcvbuf(s: &UdpSocket) {
    let v: libc::c_int = FLOOD_RCVBUF;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt with a pointer to one int and its size.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return;
        }
    }
}

/// The flood's datagram `seq` sent `ns` nanoseconds after the phase began:
/// sequence number, send time, then a pattern of the sequence number.
fn flood_payload(buf: &mut [u8], seq: u64, ns: u64) {
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..16].copy_from_slice(&ns.to_be_bytes());
    fill(&mut buf[16..], seq);
}

/// A UDP flood of echo (`addr`): `senders` sockets, each with one thread
/// sending `size`-byte datagrams (at least 16: sequence number and send
/// time lead each) as fast as the host's kernel takes them, and one thread
/// receiving the echoes. Counts the datagrams sent inside the measured
/// window and the echoes of those that arrive before the window closes
/// plus [`FLOOD_DRAIN`]; the figure is echoes per second of window, the
/// rest is loss. Also reads the host TAP's transmit drops
/// ([`crate::net::TAP_NAME`]: frames the guest's NIC did not take) at the
/// window's start and end, and the client's UDP receive-buffer overflows
/// over the phase, so that loss can be placed.
pub fn udp_flood(addr: SocketAddr, size: usize, senders: usize, t: Timing) -> Result<Figures, String> {
    let size = size.max(16);
    let senders = senders.max(1);
    let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let mut socks = Vec::with_capacity(senders);
    for _ in 0..senders {
        let s = UdpSocket::bind(bind).map_err(|e| format!("udp bind: {e}"))?;
        s.connect(addr).map_err(|e| format!("udp connect {addr}: {e}"))?;
        big_rcvbuf(&s);
        let r = s.try_clone().map_err(|e| e.to_string())?;
        r.set_read_timeout(Some(Duration::from_millis(20))).map_err(|e| e.to_string())?;
        socks.push((s, r));
    }
    let rcv0 = udp_rcvbuf_errors();
    let origin = Instant::now();
    let (begin, end) = (origin + t.warmup, origin + t.total());
    let ns_of = |i: Instant| i.duration_since(origin).as_nanos() as u64;
    let (begin_ns, end_ns) = (ns_of(begin), ns_of(end));
    type SendOut = (u64, u64);
    type RecvOut = (u64, u64, Vec<Duration>);
    type Parts = (Vec<Result<SendOut, String>>, Vec<Result<RecvOut, String>>);
    let mut tap = (None, None);
    let (sent_parts, recv_parts): Parts = std::thread::scope(|sc| {
        let mut hs = Vec::new();
        let mut hr = Vec::new();
        for (i, (s, r)) in socks.into_iter().enumerate() {
            hs.push(sc.spawn(move || -> Result<SendOut, String> {
                let mut buf = vec![0u8; size];
                // Sequence numbers are unique across senders.
                let mut seq = (i as u64) << 48;
                let (mut sent, mut errors) = (0u64, 0u64);
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let ns = ns_of(now);
                    seq += 1;
                    flood_payload(&mut buf, seq, ns);
                    let counted = ns >= begin_ns;
                    match s.send(&buf) {
                        Ok(_) => {
                            if counted {
                                sent += 1;
                            }
                        }
                        Err(e)
                            if transient(&e)
                                || matches!(e.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::ECONNREFUSED)) =>
                        {
                            if counted {
                                errors += 1;
                            }
                        }
                        Err(e) => return Err(format!("udp flood sender {i}: send, datagram {seq}: {e}")),
                    }
                }
                Ok((sent, errors))
            }));
            hr.push(sc.spawn(move || -> Result<RecvOut, String> {
                let mut buf = vec![0u8; 65536];
                let mut want = vec![0u8; size];
                let (mut answered, mut corrupt) = (0u64, 0u64);
                let mut lat = Vec::new();
                let stop = end + FLOOD_DRAIN;
                loop {
                    let now = Instant::now();
                    if now >= stop {
                        break;
                    }
                    match r.recv(&mut buf) {
                        Ok(n) => {
                            let at = Instant::now();
                            if n < 16 {
                                corrupt += 1;
                                continue;
                            }
                            let seq = u64::from_be_bytes(buf[..8].try_into().unwrap());
                            let ns = u64::from_be_bytes(buf[8..16].try_into().unwrap());
                            flood_payload(&mut want, seq, ns);
                            if n != size || buf[..n] != want[..] {
                                corrupt += 1;
                                continue;
                            }
                            if ns >= begin_ns && ns < end_ns {
                                answered += 1;
                                lat.push(at.saturating_duration_since(origin + Duration::from_nanos(ns)));
                            }
                        }
                        Err(e) if transient(&e) => {}
                        // An ICMP port unreachable from a not-yet-listening peer.
                        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {}
                        Err(e) => return Err(format!("udp flood receiver {i}: recv: {e}")),
                    }
                }
                Ok((answered, corrupt, lat))
            }));
        }
        // This thread (in the namespace) reads the TAP at the window's edges.
        std::thread::sleep(begin.saturating_duration_since(Instant::now()));
        tap.0 = netdev_tx_dropped(crate::net::TAP_NAME);
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        tap.1 = netdev_tx_dropped(crate::net::TAP_NAME);
        let join = |h: std::thread::ScopedJoinHandle<'_, _>| h.join().unwrap_or_else(|_| Err("udp flood thread panicked".to_string()));
        (hs.into_iter().map(join).collect(), hr.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("udp flood thread panicked".to_string()))).collect())
    });
    let rcv1 = udp_rcvbuf_errors();
    let mut f = Flood { secs: t.duration.as_secs_f64(), senders, size, ..Flood::default() };
    for p in sent_parts {
        let (sent, errors) = p?;
        f.sent += sent;
        f.send_errors += errors;
    }
    let mut all = Vec::new();
    for p in recv_parts {
        let (answered, corrupt, lat) = p?;
        f.answered += answered;
        f.corrupt += corrupt;
        all.extend(lat);
    }
    f.tap_tx_dropped = tap.0.zip(tap.1).map(|(a, b)| b.saturating_sub(a));
    f.client_rcvbuf_errors = rcv0.zip(rcv1).map(|(a, b)| b.saturating_sub(a));
    if f.corrupt > 0 {
        return Err(format!("udp flood: {} echoes differ from what was sent ({} answered)", f.corrupt, f.answered));
    }
    if f.answered == 0 || f.secs <= 0.0 {
        return Err(format!("udp flood: no datagram sent inside the window was echoed ({} sent)", f.sent));
    }
    f.lat = Latency::of(&mut all);
    Ok(Figures::Flood(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    #[test]
    fn percentiles() {
        let mut v: Vec<Duration> = (1..=1000).rev().map(Duration::from_micros).collect();
        let l = Latency::of(&mut v);
        assert_eq!(l.min, Duration::from_micros(1));
        assert_eq!(l.p50, Duration::from_micros(500));
        assert_eq!(l.p99, Duration::from_micros(990));
        assert_eq!(l.p999, Duration::from_micros(999));
        assert_eq!(l.max, Duration::from_micros(1000));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
        assert_eq!(Latency::of(&mut []), Latency::default());
        let f = Figures::Stream { bytes: 125_000_000, secs: 1.0, conns: 1 };
        assert!((f.value() - 1000.0).abs() < 1e-9);
        assert_eq!(f.unit(), "Mbit/s");
    }

    /// The generators against loopback servers.
    #[test]
    fn generators_on_loopback() {
        let lo = |l: &TcpListener| SocketAddr::from((Ipv4Addr::LOCALHOST, l.local_addr().unwrap().port()));
        let echo = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let discard = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let chargen = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let (ea, da, ca, ua) = (lo(&echo), lo(&discard), lo(&chargen), udp.local_addr().unwrap());
        let serve = |l: TcpListener, f: fn(TcpStream)| {
            std::thread::spawn(move || {
                for s in l.incoming().flatten() {
                    std::thread::spawn(move || f(s));
                }
            })
        };
        serve(echo, |mut s| {
            let mut b = [0u8; 4096];
            while let Ok(n) = s.read(&mut b) {
                if n == 0 || s.write_all(&b[..n]).is_err() {
                    break;
                }
            }
        });
        serve(discard, |mut s| {
            let mut b = [0u8; 65536];
            while matches!(s.read(&mut b), Ok(n) if n > 0) {}
        });
        serve(chargen, |mut s| {
            let b = [b'x'; 65536];
            while s.write_all(&b).is_ok() {}
        });
        std::thread::spawn(move || {
            let mut b = [0u8; 2048];
            let mut n = 0u64;
            while let Ok((len, from)) = udp.recv_from(&mut b) {
                n += 1;
                // Drop every 10th datagram: loss must be counted.
                if !n.is_multiple_of(10) {
                    let _ = udp.send_to(&b[..len], from);
                }
            }
        });
        let t = Timing { warmup: Duration::from_millis(100), duration: Duration::from_millis(300) };
        for f in [stream_to(da, 2, t).unwrap(), stream_from(ca, 2, t).unwrap()] {
            assert!(f.value() > 0.0, "{f:?}");
        }
        let rr = tcp_rr(ea, 1024, 3, t).unwrap();
        assert!(matches!(rr, Figures::Rr { count, conns: 3, size: 1024, .. } if count > 0), "{rr:?}");
        assert!(tcp_crr(ea, t).unwrap().value() > 0.0);
        let u = udp_rr(ua, 64, Timing { warmup: Duration::ZERO, duration: Duration::from_millis(1500) }).unwrap();
        let Figures::Udp { sent, answered, lost, .. } = u else { panic!() };
        assert!(lost >= 1 && answered > lost && sent >= answered + lost, "{u:?}");
        // The flood: the server drops every 10th, so about 10 % is lost.
        let f = udp_flood(ua, 64, 2, Timing { warmup: Duration::from_millis(100), duration: Duration::from_millis(500) }).unwrap();
        let Figures::Flood(fl) = f else { panic!() };
        assert!(fl.answered > 0 && fl.sent > fl.answered && fl.senders == 2, "{fl:?}");
        assert!(fl.loss_ratio() >= 0.05, "{fl:?}");
        assert!(fl.lat.p50 > Duration::ZERO && fl.lat.p99 >= fl.lat.p50, "{fl:?}");
        assert_eq!(f.unit(), "dgram/s");
        assert!(f.details()["loss_ratio"].as_f64().unwrap() >= 0.05);
    }

    #[test]
    fn proc_counters() {
        // Loopback always exists; its transmit drop counter reads as a number.
        assert!(netdev_tx_dropped("lo").is_some());
        assert!(netdev_tx_dropped("no-such-if").is_none());
        assert!(udp_rcvbuf_errors().is_some());
    }
}
