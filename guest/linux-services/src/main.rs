//! The service set of the Linux reference guest of `cargo run --release --
//! bench`: the same services as the Arbalest kernel, so that one host client
//! measures both guests the same way.
//!
//! * TCP echo (7, RFC 862), discard (9, RFC 863), chargen (19, RFC 864);
//!   one thread per connection, `TCP_NODELAY` on echo (request/response).
//! * UDP echo (7): one socket, one thread per CPU receiving on it.
//!
//! `arbalest-linux-services channels IFACE [N|max]` instead prints the
//! interface's channel counts (`ethtool -l`; busybox has no ethtool) and,
//! given N or `max`, first sets its combined channels (queue pairs) to that
//! (`ethtool -L IFACE combined N`).
//!
//! Built as a static binary for `x86_64-unknown-linux-gnu`
//! (`-C target-feature=+crt-static`) by `bootimage`'s bench module and put
//! into the guest's initramfs. On the host it builds and its tests run with
//! plain `cargo test`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::exit;
use std::thread;

/// Printed on stdout once every service listens (the initramfs's init
/// waits for it before it reports the guest ready).
pub const READY: &str = "arbalest-linux-services: listening on tcp 7 9 19, udp 7";

/// Chargen: printable ASCII characters per line (RFC 864).
pub const LINE_CHARS: usize = 72;
/// A line with its CR LF.
pub const LINE_BYTES: usize = LINE_CHARS + 2;
/// The pattern repeats after this many bytes (95 lines, one per start character).
pub const PERIOD: usize = LINE_BYTES * 95;

/// One period of the chargen pattern: line `i` starts at printable
/// character `i` (from `' '`) and runs on cyclically for 72 characters.
pub fn chargen_period() -> Vec<u8> {
    let mut v = Vec::with_capacity(PERIOD);
    for line in 0..95usize {
        for c in 0..LINE_CHARS {
            v.push(b' ' + ((line + c) % 95) as u8);
        }
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Bytes sent per chargen `write`.
const CHARGEN_CHUNK: usize = 64 * 1024;
/// Receive buffer of echo and discard.
const RX_BUF: usize = 64 * 1024;
/// Stack of connection threads (they only hold a pointer to a heap buffer).
const CONN_STACK: usize = 128 * 1024;

fn echo(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; RX_BUF];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn discard(mut s: TcpStream) {
    let mut buf = vec![0u8; RX_BUF];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn chargen(mut s: TcpStream) {
    let period = chargen_period();
    // Enough repetitions that a chunk can start anywhere in a period.
    let reps = CHARGEN_CHUNK / PERIOD + 2;
    let buf: Vec<u8> = period.iter().copied().cycle().take(PERIOD * reps).collect();
    let mut pos = 0usize;
    // Whatever the peer sends is ignored; a separate thread drains it so
    // that the connection never stalls on a full receive window.
    if let Ok(r) = s.try_clone() {
        let _ = thread::Builder::new().stack_size(CONN_STACK).spawn(move || discard(r));
    }
    loop {
        match s.write(&buf[pos..pos + CHARGEN_CHUNK]) {
            Ok(0) => return,
            Ok(n) => pos = (pos + n) % PERIOD,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn serve_tcp(l: TcpListener, handler: fn(TcpStream)) {
    loop {
        match l.accept() {
            Ok((s, _)) => {
                if let Err(e) = thread::Builder::new().stack_size(CONN_STACK).spawn(move || handler(s)) {
                    eprintln!("arbalest-linux-services: cannot start a connection thread: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("arbalest-linux-services: accept: {e}");
                thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

fn serve_udp_echo(s: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        match s.recv_from(&mut buf) {
            Ok((n, from)) => {
                let _ = s.send_to(&buf[..n], from);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

fn serve(port_base: u16) -> Result<(), String> {
    let bind = |port: u16| {
        TcpListener::bind(("0.0.0.0", port_base + port)).map_err(|e| format!("tcp port {}: {e}", port_base + port))
    };
    let services: [(u16, fn(TcpStream)); 3] = [(7, echo), (9, discard), (19, chargen)];
    let mut listeners = Vec::new();
    for (port, f) in services {
        listeners.push((bind(port)?, f));
    }
    let udp = UdpSocket::bind(("0.0.0.0", port_base + 7)).map_err(|e| format!("udp port {}: {e}", port_base + 7))?;
    let cpus = thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    for _ in 0..cpus {
        let s = udp.try_clone().map_err(|e| e.to_string())?;
        thread::spawn(move || serve_udp_echo(s));
    }
    let mut handles = Vec::new();
    for (l, f) in listeners {
        handles.push(thread::spawn(move || serve_tcp(l, f)));
    }
    println!("{READY} ({cpus} UDP threads)");
    let _ = io::stdout().flush();
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// ethtool channels (SIOCETHTOOL, ETHTOOL_GCHANNELS / ETHTOOL_SCHANNELS).

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;
const ETHTOOL_SCHANNELS: u32 = 0x3d;

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channels {
    pub cmd: u32,
    pub max_rx: u32,
    pub max_tx: u32,
    pub max_other: u32,
    pub max_combined: u32,
    pub rx_count: u32,
    pub tx_count: u32,
    pub other_count: u32,
    pub combined_count: u32,
}

impl Channels {
    /// `ethtool -l`-like one-liner.
    pub fn describe(&self) -> String {
        format!(
            "combined {}/{} rx {}/{} tx {}/{} other {}/{}",
            self.combined_count,
            self.max_combined,
            self.rx_count,
            self.max_rx,
            self.tx_count,
            self.max_tx,
            self.other_count,
            self.max_other
        )
    }

    /// The request for `combined` queue pairs (`None`: the maximum):
    /// combined channels, or separate rx/tx ones when the driver has no
    /// combined channels.
    pub fn request(&self, combined: Option<u32>) -> Channels {
        let mut c = *self;
        c.cmd = ETHTOOL_SCHANNELS;
        if c.max_combined > 0 {
            c.combined_count = combined.unwrap_or(c.max_combined).min(c.max_combined);
        } else {
            c.rx_count = combined.unwrap_or(c.max_rx).min(c.max_rx);
            c.tx_count = combined.unwrap_or(c.max_tx).min(c.max_tx);
        }
        c
    }
}

#[repr(C)]
struct IfreqData {
    name: [u8; 16],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

fn ethtool(ifname: &str, ch: &mut Channels) -> io::Result<()> {
    if ifname.len() >= 16 {
        return Err(io::Error::other("interface name too long"));
    }
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ifr = IfreqData { name: [0; 16], data: ch as *mut Channels as *mut libc::c_void, _pad: [0; 16] };
    ifr.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    // SAFETY: SIOCETHTOOL reads the ifreq and reads/writes the
    // ethtool_channels it points to, which lives for the call.
    let r = unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut ifr) };
    let err = io::Error::last_os_error();
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    if r < 0 { Err(err) } else { Ok(()) }
}

/// Prints the channel counts; with `want` (`Some(None)`: maximum) sets the
/// combined count first.
fn channels(ifname: &str, want: Option<Option<u32>>) -> Result<(), String> {
    let mut ch = Channels { cmd: ETHTOOL_GCHANNELS, ..Channels::default() };
    ethtool(ifname, &mut ch).map_err(|e| format!("{ifname}: ETHTOOL_GCHANNELS: {e}"))?;
    let Some(want) = want else {
        println!("arbalest-linux-services: {ifname} channels (driver default): {}", ch.describe());
        return Ok(());
    };
    println!("arbalest-linux-services: {ifname} channels before: {}", ch.describe());
    let mut req = ch.request(want);
    if req != (Channels { cmd: ETHTOOL_SCHANNELS, ..ch }) {
        ethtool(ifname, &mut req).map_err(|e| format!("{ifname}: ETHTOOL_SCHANNELS: {e}"))?;
    }
    let mut after = Channels { cmd: ETHTOOL_GCHANNELS, ..Channels::default() };
    ethtool(ifname, &mut after).map_err(|e| format!("{ifname}: ETHTOOL_GCHANNELS: {e}"))?;
    println!("arbalest-linux-services: {ifname} channels after: {}", after.describe());
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => serve(0),
        ["--port-base", n] => match n.parse::<u16>() {
            Ok(b) => serve(b),
            Err(_) => Err(format!("--port-base: '{n}' is not a port")),
        },
        ["channels", ifname] => channels(ifname, None),
        ["channels", ifname, "max"] => channels(ifname, Some(None)),
        ["channels", ifname, n] => match n.parse::<u32>() {
            Ok(v) if v > 0 => channels(ifname, Some(Some(v))),
            _ => Err(format!("channels: '{n}' is not a count or 'max'")),
        },
        _ => Err("usage: arbalest-linux-services [--port-base N] | channels IFACE [N|max]".into()),
    };
    if let Err(e) = r {
        eprintln!("arbalest-linux-services: {e}");
        exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    #[test]
    fn chargen_pattern() {
        let p = chargen_period();
        assert_eq!(p.len(), PERIOD);
        assert!(p.starts_with(b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n!\"#"));
        assert!(p.ends_with(b"\r\n"));
        assert!(p.iter().all(|&b| (b' '..=b'~').contains(&b) || b == b'\r' || b == b'\n'));
    }

    #[test]
    fn channel_request() {
        let virtio = Channels { max_combined: 4, combined_count: 2, ..Channels::default() };
        let w = virtio.request(None);
        assert_eq!((w.cmd, w.combined_count, w.rx_count), (ETHTOOL_SCHANNELS, 4, 0));
        assert_eq!(w.describe(), "combined 4/4 rx 0/0 tx 0/0 other 0/0");
        assert_eq!(virtio.request(Some(3)).combined_count, 3);
        assert_eq!(virtio.request(Some(9)).combined_count, 4);
        let split = Channels { max_rx: 2, max_tx: 2, rx_count: 1, tx_count: 1, ..Channels::default() };
        assert_eq!((split.request(None).rx_count, split.request(None).tx_count), (2, 2));
        assert_eq!(std::mem::size_of::<Channels>(), 36);
        assert_eq!(std::mem::size_of::<IfreqData>(), 40);
    }

    /// The services on unprivileged ports of the loopback.
    #[test]
    fn services_on_loopback() {
        let base = {
            // A free block: probe a few bases.
            let mut b = 0;
            for cand in (20000u16..40000).step_by(97) {
                let free = [7u16, 9, 19].iter().all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, cand + p)).is_ok())
                    && UdpSocket::bind((Ipv4Addr::LOCALHOST, cand + 7)).is_ok();
                if free {
                    b = cand;
                    break;
                }
            }
            assert!(b != 0, "no free port block");
            b
        };
        thread::spawn(move || serve(base).unwrap());
        let to = Duration::from_secs(10);
        let connect = |p: u16| {
            for _ in 0..200 {
                if let Ok(s) = TcpStream::connect((Ipv4Addr::LOCALHOST, base + p)) {
                    s.set_read_timeout(Some(to)).unwrap();
                    return s;
                }
                thread::sleep(Duration::from_millis(10));
            }
            panic!("port {} never listened", base + p);
        };
        let mut e = connect(7);
        e.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        e.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        let mut d = connect(9);
        d.write_all(&[1u8; 100000]).unwrap();
        let mut c = connect(19);
        let mut got = vec![0u8; PERIOD + 10];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got[..PERIOD], &chargen_period()[..]);
        let u = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        u.set_read_timeout(Some(to)).unwrap();
        u.send_to(b"ping", (Ipv4Addr::LOCALHOST, base + 7)).unwrap();
        let mut ub = [0u8; 16];
        let (n, _) = u.recv_from(&mut ub).unwrap();
        assert_eq!(&ub[..n], b"ping");
    }
}
