//! Host-side load generators for `cargo bench -p arbalest-tests --bench
//! net`. Each runs for a fixed time against one kernel service and returns
//! what it measured; run them inside the VM's namespace
//! ([`crate::net::Netns::in_ns`]).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::net::connect;

/// Bytes moved in a time.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    pub bytes: u64,
    pub secs: f64,
}

impl Throughput {
    pub fn gbit_per_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.secs / 1e9
    }
}

/// Request/response figures.
#[derive(Clone, Copy, Debug)]
pub struct RoundTrips {
    pub count: u64,
    pub secs: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl RoundTrips {
    pub fn per_s(&self) -> f64 {
        self.count as f64 / self.secs
    }
}

/// `q`-quantile (0..=1) of sorted durations.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Bytes still in the socket's send queue (not yet acknowledged).
fn unsent(s: &TcpStream) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ on a TCP socket writes one int.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r == 0 { n.max(0) as u64 } else { 0 }
}

const IO_STEP: Duration = Duration::from_millis(200);

/// One connection writing 64 KiB blocks into `addr` (discard) for `dur`.
/// Counts bytes the peer acknowledged: written minus what is still queued.
pub fn stream_to(addr: SocketAddr, dur: Duration) -> Result<Throughput, String> {
    let mut s = connect(addr, Duration::from_secs(30), IO_STEP)?;
    let block = vec![0x5au8; 65536];
    let start = Instant::now();
    let mut written = 0u64;
    let mut stalled_since = Instant::now();
    while start.elapsed() < dur {
        match s.write(&block) {
            Ok(n) => {
                written += n as u64;
                stalled_since = Instant::now();
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write after {written} bytes: {e}")),
        }
        if stalled_since.elapsed() > Duration::from_secs(30) {
            return Err(format!("no progress for 30 s after {written} bytes"));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let acked = written.saturating_sub(unsent(&s));
    let _ = s.shutdown(Shutdown::Both);
    Ok(Throughput { bytes: acked, secs })
}

/// One connection reading from `addr` (chargen) for `dur`.
pub fn stream_from(addr: SocketAddr, dur: Duration) -> Result<Throughput, String> {
    let mut s = connect(addr, Duration::from_secs(30), IO_STEP)?;
    let mut buf = vec![0u8; 262144];
    let start = Instant::now();
    let mut got = 0u64;
    let mut last = Instant::now();
    while start.elapsed() < dur {
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("chargen closed after {got} bytes")),
            Ok(n) => {
                got += n as u64;
                last = Instant::now();
            }
            Err(e)
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {}
            Err(e) => return Err(format!("read after {got} bytes: {e}")),
        }
        if last.elapsed() > Duration::from_secs(30) {
            return Err(format!("nothing received for 30 s after {got} bytes"));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = s.shutdown(Shutdown::Both);
    Ok(Throughput { bytes: got, secs })
}

/// 1-byte request/response on one connection to `addr` (echo) for `dur`.
pub fn tcp_rr(addr: SocketAddr, dur: Duration) -> Result<RoundTrips, String> {
    let mut s = connect(addr, Duration::from_secs(30), Duration::from_secs(30))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut b = [0u8; 1];
    while start.elapsed() < dur {
        let t = Instant::now();
        let v = (lat.len() % 251) as u8;
        s.write_all(&[v]).map_err(|e| format!("write, transaction {}: {e}", lat.len()))?;
        s.read_exact(&mut b).map_err(|e| format!("read, transaction {}: {e}", lat.len()))?;
        if b[0] != v {
            return Err(format!("transaction {}: sent {v}, got {}", lat.len(), b[0]));
        }
        lat.push(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = s.shutdown(Shutdown::Both);
    lat.sort();
    Ok(RoundTrips { count: lat.len() as u64, secs, p50: quantile(&lat, 0.5), p99: quantile(&lat, 0.99) })
}

/// Connection figures.
#[derive(Clone, Copy, Debug)]
pub struct ConnectRate {
    pub rt: RoundTrips,
    pub failures: u64,
}

/// Connect, send 1 byte, receive it back, close; repeated on fresh
/// connections to `addr` (echo) for `dur`. Gives up after 20 failures.
pub fn connect_rate(addr: SocketAddr, dur: Duration) -> Result<ConnectRate, String> {
    let mut lat = Vec::new();
    let mut failures = 0u64;
    let start = Instant::now();
    while start.elapsed() < dur {
        let t = Instant::now();
        let one = || -> Result<(), String> {
            let mut s = connect(addr, Duration::from_secs(5), Duration::from_secs(5))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.write_all(b"c").map_err(|e| format!("write: {e}"))?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).map_err(|e| format!("read: {e}"))?;
            if b[0] != b'c' {
                return Err(format!("got {:?}", b[0]));
            }
            Ok(())
        };
        match one() {
            Ok(()) => lat.push(t.elapsed()),
            Err(e) => {
                failures += 1;
                if failures >= 20 {
                    return Err(format!("{failures} failed connections (after {} good); last: {e}", lat.len()));
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    Ok(ConnectRate {
        rt: RoundTrips { count: lat.len() as u64, secs, p50: quantile(&lat, 0.5), p99: quantile(&lat, 0.99) },
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(51));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 0.0), Duration::from_millis(1));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
        let t = Throughput { bytes: 125_000_000, secs: 1.0 };
        assert!((t.gbit_per_s() - 1.0).abs() < 1e-9);
    }
}
