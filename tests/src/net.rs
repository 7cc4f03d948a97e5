//! Networked boot tests: the kernel on a multi-queue TAP inside a network
//! namespace that the test creates, and host-side clients that talk to it
//! from inside that namespace.
//!
//! * [`Netns`]: a network namespace `arbt<pid>n<seq>` holding the TAP
//!   `arbtap0` with `10.0.0.1/24` (a [`bootimage::TapNamespace`] guard,
//!   deleted on drop), plus ways to act inside it: [`Netns::in_ns`] /
//!   [`Netns::spawn_in_ns`] run Rust code on a thread that has `setns()`-ed
//!   into it (so ordinary `std::net` sockets reach `10.0.0.2`; threads that
//!   code spawns inherit the namespace), [`Netns::cmd`] runs a program under
//!   `ip netns exec`, [`Netns::raw_socket`] opens an AF_PACKET socket on the
//!   TAP for crafted frames ([`crate::frames`]).
//! * [`NetVm`]: a [`Vm`] booted inside a fresh [`Netns`] with N CPUs and N
//!   virtio-net queue pairs and `ip=10.0.0.2/24,gw=10.0.0.1`; derefs to the
//!   [`Vm`] for the serial shell. Drop kills QEMU, then deletes the
//!   namespace. [`NetVm::link_down`]/[`NetVm::link_up`] pull and replug the
//!   "cable" (see there).
//! * Workloads ([`tcp_echo_verify`], [`udp_echo_verify`], [`EchoLoad`]) and
//!   parsers for the kernel's `mpstat`, `dlstat` and `dladm` output and
//!   Linux `ping`.
//!
//! Every wait is bounded; every failure is a panic or an `Err` with a
//! message saying what was expected and what came.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use bootimage::net::{
    GUEST_MAC, NETDEV_ID, TAP_GUEST_ADDR, TAP_GUEST_ARG, TAP_HOST_ADDR, TAP_NAME, TAP_PREFIX,
};
use bootimage::{Config, Net, TapNamespace};

use crate::frames::{self, Mac};
use crate::Vm;

/// The guest's address on the TAP network.
pub const GUEST_IP: Ipv4Addr = TAP_GUEST_ADDR;
/// The host side of the TAP.
pub const HOST_IP: Ipv4Addr = TAP_HOST_ADDR;

/// Kernel service ports.
pub const ECHO_PORT: u16 = 7;
pub const DISCARD_PORT: u16 = 9;
pub const CHARGEN_PORT: u16 = 19;

/// `GUEST_IP:port`.
pub fn guest(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(GUEST_IP, port))
}

/// Default timeout of [`Netns::cmd`].
pub const NS_CMD_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Deterministic random bytes.

/// SplitMix64: small, seeded, good enough for test payloads.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

// ---------------------------------------------------------------------------
// Host commands with a timeout.

/// What a command printed and how it ended.
#[derive(Clone, Debug)]
pub struct CmdOutput {
    /// The command as run (for messages).
    pub command: String,
    /// Exit code; `None` if killed (by us on timeout, or by a signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Everything, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "$ {}\nexit {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.code,
            if self.timed_out { " (timed out, killed)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `argv` with stdin closed; kills it after `timeout`.
pub fn run_cmd(argv: &[&str], timeout: Duration) -> CmdOutput {
    let command = argv.iter().map(|w| bootimage::shell_quote(w)).collect::<Vec<_>>().join(" ");
    let mut child = match Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return CmdOutput {
                command,
                code: None,
                timed_out: false,
                stdout: String::new(),
                stderr: format!("cannot start {}: {e}", argv[0]),
            }
        }
    };
    let collect = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = collect(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = collect(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(_) => break None,
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    CmdOutput {
        command,
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Panics unless `program` can be found on `PATH`, naming the Debian
/// package that provides it (no test silently skips for lack of a tool).
/// Runs set-up first (once per process), which installs it on a fresh
/// machine, so a test may ask for a tool before it boots anything.
pub fn require_program(program: &str, package: &str) {
    if let Err(e) = bootimage::setup() {
        panic!("this test needs `{program}` ({package}), and set-up failed:\n{e}");
    }
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if !found {
        panic!("this test needs `{program}` on the host: apt-get install {package}");
    }
}

// ---------------------------------------------------------------------------
// Entering a namespace.

/// Moves the *calling thread* into network namespace `name`. Only for
/// threads you own and will not return to a pool: the thread stays there.
pub fn enter_netns(name: &str) -> Result<(), String> {
    let path = PathBuf::from(bootimage::net::NETNS_DIR).join(name);
    let f = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: setns(2) on a valid fd we own; it only changes this thread's
    // network namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(format!("setns({name}): {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// Runs `f` on a new thread inside network namespace `name` and returns
/// its result (a panic in `f` is resumed here). Threads `f` spawns are
/// inside too.
pub fn in_netns<R: Send, F: FnOnce() -> R + Send>(name: &str, f: F) -> R {
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            enter_netns(name).unwrap_or_else(|e| panic!("{e}"));
            f()
        });
        match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// `ip netns exec NAME argv...`, killed after `timeout`.
pub fn netns_cmd(name: &str, argv: &[&str], timeout: Duration) -> CmdOutput {
    let mut v = vec!["ip", "netns", "exec", name];
    v.extend_from_slice(argv);
    run_cmd(&v, timeout)
}

/// Linux `ping -c count -i interval -W 2 addr` from namespace `name`.
pub fn netns_ping(name: &str, addr: Ipv4Addr, count: u32, interval: &str) -> PingResult {
    require_program("ping", "iputils-ping");
    let (c, a) = (count.to_string(), addr.to_string());
    let timeout = Duration::from_secs(30 + u64::from(count) * 3);
    let out = netns_cmd(name, &["ping", "-n", "-c", &c, "-i", interval, "-W", "2", &a], timeout);
    let (transmitted, received) = parse_ping_summary(&out.stdout).unwrap_or((0, 0));
    PingResult { transmitted, received, output: out }
}

fn seq() -> u32 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    SEQ.fetch_add(1, Ordering::Relaxed) as u32
}

/// A fresh namespace name `arbt<pid>n<seq>` (unique within this host while
/// this process lives; [`bootimage::reap_stale_namespaces`] recognises it).
pub fn unique_netns_name() -> String {
    format!("arbt{}n{}", std::process::id(), seq())
}

/// Deletes namespaces of killed test runs, once per process.
pub fn reap_stale_once() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for n in bootimage::reap_stale_namespaces() {
            eprintln!("arbalest-tests: removed stale network namespace {n}");
        }
    });
}

// ---------------------------------------------------------------------------

/// A network namespace with the TAP `arbtap0` (`10.0.0.1/24`, multi-queue
/// unless made for one queue, up). Deleted on drop.
pub struct Netns {
    inner: TapNamespace,
}

impl Netns {
    /// Creates `arbt<pid>n<seq>` with a multi-queue TAP. Panics (naming
    /// the failing `ip` command) if that is impossible, e.g. without root.
    pub fn create() -> Netns {
        Netns::create_for_queues(4)
    }

    /// [`Netns::create`] for a QEMU with `queues` queues: the TAP is
    /// multi-queue exactly when `queues > 1`, as QEMU requires.
    pub fn create_for_queues(queues: usize) -> Netns {
        reap_stale_once();
        let name = unique_netns_name();
        match TapNamespace::create_default(&name, queues) {
            Ok(inner) => Netns { inner },
            Err(e) => panic!("cannot create network namespace {name} with a multi-queue TAP (needs root): {e}"),
        }
    }

    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The TAP's name inside the namespace (`arbtap0`).
    pub fn tap(&self) -> &str {
        self.inner.tap()
    }

    /// `ip -n NS ARGS...`, panicking on failure.
    pub fn ip(&self, args: &[&str]) {
        if let Err(e) = self.inner.ip(args) {
            panic!("{e}");
        }
    }

    /// Runs `f` on a new thread inside the namespace and returns its result
    /// (a panic in `f` is resumed here). Threads `f` spawns are inside too.
    pub fn in_ns<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        in_netns(self.name(), f)
    }

    /// Starts `f` on a new thread inside the namespace.
    pub fn spawn_in_ns<R: Send + 'static, F: FnOnce() -> R + Send + 'static>(
        &self,
        f: F,
    ) -> std::thread::JoinHandle<R> {
        let name = self.name().to_string();
        std::thread::spawn(move || {
            enter_netns(&name).unwrap_or_else(|e| panic!("{e}"));
            f()
        })
    }

    /// `ip netns exec NS argv...` with [`NS_CMD_TIMEOUT`].
    pub fn cmd(&self, argv: &[&str]) -> CmdOutput {
        self.cmd_timeout(argv, NS_CMD_TIMEOUT)
    }

    /// `ip netns exec NS argv...`, killed after `timeout`.
    pub fn cmd_timeout(&self, argv: &[&str], timeout: Duration) -> CmdOutput {
        netns_cmd(self.name(), argv, timeout)
    }

    /// Linux `ping -c count -i interval -W 2 addr` from the namespace.
    pub fn ping(&self, addr: Ipv4Addr, count: u32, interval: &str) -> PingResult {
        netns_ping(self.name(), addr, count, interval)
    }

    /// Pings until one reply comes (1 s per try) or `timeout` passes.
    pub fn wait_reachable(&self, addr: Ipv4Addr, timeout: Duration) -> Result<Duration, String> {
        require_program("ping", "iputils-ping");
        let start = Instant::now();
        let a = addr.to_string();
        let mut last = None;
        while start.elapsed() < timeout {
            let out = self.cmd_timeout(&["ping", "-n", "-c", "1", "-W", "1", &a], Duration::from_secs(10));
            if out.success() {
                return Ok(start.elapsed());
            }
            last = Some(out);
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "{addr} did not answer a ping from namespace {} within {timeout:?}; last try:\n{}",
            self.name(),
            last.map(|o| o.describe()).unwrap_or_default()
        ))
    }

    /// Sets the TAP's administrative state (`ip -n NS link set arbtap0 up|down`).
    pub fn set_tap(&self, up: bool) {
        self.ip(&["link", "set", self.tap(), if up { "up" } else { "down" }]);
    }

    /// `(numqueues, numdisabled)` of the multi-queue TAP: QEMU opens one
    /// queue per virtio queue pair and detaches those the guest has not
    /// enabled (`VIRTIO_NET_CTRL_MQ`), so `numqueues` is the number of
    /// queue pairs in use.
    pub fn tap_queues(&self) -> Option<(usize, usize)> {
        let out = self.cmd_timeout(&["ip", "-d", "link", "show", self.tap()], Duration::from_secs(10));
        let w: Vec<&str> = out.stdout.split_whitespace().collect();
        let num = |key: &str| w.iter().position(|x| *x == key).and_then(|i| w.get(i + 1)?.parse().ok());
        Some((num("numqueues")?, num("numdisabled")?))
    }

    /// Sets the TAP's MTU.
    pub fn set_mtu(&self, mtu: u32) {
        self.ip(&["link", "set", self.tap(), "mtu", &mtu.to_string()]);
    }

    /// The TAP's MAC address (the source of frames the host sends).
    pub fn tap_mac(&self) -> Mac {
        let out = run_cmd(&["ip", "-n", self.name(), "-o", "link", "show", "dev", self.tap()], Duration::from_secs(10));
        out.stdout
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .and_then(frames::parse_mac)
            .unwrap_or_else(|| panic!("no MAC for {} in:\n{}", self.tap(), out.describe()))
    }

    /// An AF_PACKET socket bound to the TAP inside the namespace.
    pub fn raw_socket(&self) -> RawSocket {
        let tap = self.tap().to_string();
        self.in_ns(move || RawSocket::open(&tap)).unwrap_or_else(|e| panic!("raw socket on {}: {e}", self.tap()))
    }

    /// Host/guest addresses for crafted frames to the guest at `guest_mac`.
    pub fn endpoints(&self, guest_mac: Mac) -> frames::Endpoints {
        frames::Endpoints { host_mac: self.tap_mac(), guest_mac, host_ip: HOST_IP, guest_ip: GUEST_IP }
    }
}

/// Result of [`Netns::ping`].
#[derive(Clone, Debug)]
pub struct PingResult {
    pub transmitted: u32,
    pub received: u32,
    pub output: CmdOutput,
}

impl PingResult {
    /// The average round-trip time ping reported, if any reply came.
    pub fn avg_rtt(&self) -> Option<Duration> {
        parse_ping_avg_rtt(&self.output.stdout)
    }
}

/// A bare network namespace `arbt<pid>n<seq>` with `lo` up, deleted on
/// drop.
pub struct PlainNs {
    name: String,
}

impl PlainNs {
    /// Creates it; panics (naming the `ip` command) if that is impossible.
    pub fn create() -> PlainNs {
        reap_stale_once();
        let name = unique_netns_name();
        let out = run_cmd(&["ip", "netns", "add", &name], Duration::from_secs(30));
        assert!(out.success(), "{}", out.describe());
        let ns = PlainNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NS ARGS...`, panicking on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", self.name.as_str()];
        v.extend_from_slice(args);
        let out = run_cmd(&v, Duration::from_secs(30));
        assert!(out.success(), "{}", out.describe());
    }

    /// [`in_netns`] of this namespace.
    pub fn in_ns<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        in_netns(&self.name, f)
    }

    /// [`netns_cmd`] in this namespace with [`NS_CMD_TIMEOUT`].
    pub fn cmd(&self, argv: &[&str]) -> CmdOutput {
        netns_cmd(&self.name, argv, NS_CMD_TIMEOUT)
    }
}

impl Drop for PlainNs {
    fn drop(&mut self) {
        let _ = run_cmd(&["ip", "netns", "del", &self.name], Duration::from_secs(30));
    }
}

// ---------------------------------------------------------------------------
// Raw frames.

/// Linux's `PACKET_OUTGOING` packet type (our own transmissions, looped back
/// to the socket).
const PACKET_OUTGOING: u8 = 4;

/// What [`RawSocket::recv_frame`] says of a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxFrame {
    /// The frame's full length (more than the buffer when it was cut).
    pub len: usize,
    /// The sender left the TCP/UDP checksum to offload
    /// (`TP_STATUS_CSUMNOTREADY`): the field holds only the pseudo-header sum.
    pub csum_partial: bool,
}

/// An AF_PACKET/SOCK_RAW socket bound to one interface. It keeps talking to
/// the interface of the namespace it was opened in, whichever thread uses it.
pub struct RawSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawSocket {
    /// Opens a socket on `ifname` of the *calling thread's* namespace.
    pub fn open(ifname: &str) -> Result<RawSocket, String> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(proto)) };
        if fd < 0 {
            return Err(format!("socket(AF_PACKET): {}", io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let cname = std::ffi::CString::new(ifname).map_err(|e| e.to_string())?;
        // SAFETY: NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(format!("no interface {ifname}: {}", io::Error::last_os_error()));
        }
        // SAFETY: a zeroed sockaddr_ll is valid; we fill the fields bind needs.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex;
        // SAFETY: sll is a properly sized sockaddr_ll.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r != 0 {
            return Err(format!("bind(AF_PACKET, {ifname}): {}", io::Error::last_os_error()));
        }
        Ok(RawSocket { fd, ifindex })
    }

    /// Sends one complete Ethernet frame (no FCS).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: a zeroed sockaddr_ll is valid; sendto reads `frame` only.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        if frame.len() >= 6 {
            sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        }
        // SAFETY: `frame` is valid for its length; sll is a sockaddr_ll.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(io::Error::other(format!("short send: {n} of {}", frame.len())));
        }
        Ok(())
    }

    /// Receives one incoming frame (our own transmissions are skipped),
    /// waiting at most `timeout`. `Ok(None)` on timeout.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        Ok(self.recv_frame(buf, timeout)?.map(|f| f.len.min(buf.len())))
    }

    /// Asks the kernel to say, with each received frame, whether its
    /// transport checksum is still to be filled in ([`RxFrame::csum_partial`]).
    pub fn enable_auxdata(&self) -> io::Result<()> {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a pointer to an int of the right size.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                &one as *const libc::c_int as *const libc::c_void,
                4,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// [`RawSocket::recv`] with what the kernel says of the frame: its
    /// full length (more than `buf` holds when it was cut) and, after
    /// [`RawSocket::enable_auxdata`], whether its checksum is partial.
    pub fn recv_frame(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<RxFrame>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // Rounded up, so a wait of less than a millisecond sleeps.
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                return Ok(None);
            }
            // SAFETY: zeroed sockaddr_ll, iovec and msghdr are valid; the
            // msghdr points at them and at a control buffer, all live
            // across the call.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
            let mut control = [0u64; 16];
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = &mut sll as *mut libc::sockaddr_ll as *mut libc::c_void;
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = std::mem::size_of_val(&control);
            // SAFETY: msg is set up as above; MSG_TRUNC makes the result
            // the frame's full length.
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) {
                    continue;
                }
                return Err(e);
            }
            if sll.sll_pkttype == PACKET_OUTGOING {
                continue;
            }
            let mut csum_partial = false;
            // SAFETY: the CMSG_* walk stays within msg_controllen bytes of
            // `control`, which the kernel filled.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                        let aux = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::tpacket_auxdata);
                        csum_partial = aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0;
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            return Ok(Some(RxFrame { len: n as usize, csum_partial }));
        }
    }

    /// Collects incoming frames from `from` for `dur`, classified.
    pub fn capture(&self, from: Mac, dur: Duration) -> Vec<frames::Seen> {
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + dur;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.recv(&mut buf, left) {
                Ok(Some(n)) => {
                    if let Some(s) = frames::classify(&buf[..n], from) {
                        seen.push(s);
                    }
                }
                Ok(None) => break,
                Err(e) => panic!("AF_PACKET receive failed: {e}"),
            }
        }
        seen
    }
}

// ---------------------------------------------------------------------------
// QMP (QEMU's machine protocol), for link state.

/// Sends one QMP command (`{"execute": ...}` JSON) to the QMP socket at
/// `path` and returns QEMU's `{"return": ...}` line.
pub fn qmp_command(path: &std::path::Path, command: &str) -> Result<String, String> {
    let s = UnixStream::connect(path).map_err(|e| format!("QMP {}: {e}", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut read_reply = |what: &str| -> Result<String, String> {
        for _ in 0..100 {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => return Err(format!("QMP closed while waiting for {what}")),
                Ok(_) => {}
                Err(e) => return Err(format!("QMP read ({what}): {e}")),
            }
            if line.contains("\"return\"") || line.contains("\"QMP\"") {
                return Ok(line.trim().to_string());
            }
            if line.contains("\"error\"") {
                return Err(format!("QMP {what}: {}", line.trim()));
            }
            // Events: skip.
        }
        Err(format!("QMP: no reply to {what}"))
    };
    read_reply("greeting")?;
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n").map_err(|e| e.to_string())?;
    read_reply("qmp_capabilities")?;
    w.write_all(command.as_bytes()).and_then(|_| w.write_all(b"\n")).map_err(|e| e.to_string())?;
    read_reply(command)
}

// ---------------------------------------------------------------------------
// Bounding how many networked VMs run at once.

struct NetSlots {
    used: Mutex<usize>,
    freed: Condvar,
}

static NET_SLOTS: NetSlots = NetSlots { used: Mutex::new(0), freed: Condvar::new() };

/// How many [`NetVm`]s may run at once in one process: `ARBALEST_NET_VMS`,
/// default 1 (4 vCPUs of TCG plus traffic already fill a 2-core host).
pub fn max_net_vms() -> usize {
    std::env::var("ARBALEST_NET_VMS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(1)
}

struct NetSlot(());

impl NetSlot {
    fn acquire() -> NetSlot {
        let max = max_net_vms();
        let mut used = NET_SLOTS.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= max {
            used = NET_SLOTS.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        NetSlot(())
    }
}

impl Drop for NetSlot {
    fn drop(&mut self) {
        let mut used = NET_SLOTS.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        NET_SLOTS.freed.notify_one();
    }
}

/// Removes the QMP socket file on drop.
struct QmpPath(PathBuf);

impl Drop for QmpPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------

/// The kernel booted on a multi-queue TAP in its own namespace.
///
/// Fields drop in order: QEMU is killed (the [`Vm`]) before the namespace
/// goes.
pub struct NetVm {
    vm: Vm,
    ns: Netns,
    qmp: QmpPath,
    queues: usize,
    _slot: NetSlot,
}

impl NetVm {
    /// `smp` CPUs, virtio-net with `queues` queue pairs, TAP in a new
    /// namespace, `ip=10.0.0.2/24,gw=10.0.0.1`; waits for the prompt.
    pub fn boot(smp: usize, queues: usize) -> NetVm {
        NetVm::boot_with(Config::with_smp(smp), queues)
    }

    /// [`NetVm::boot`] from a given configuration (its `net.nic` is kept;
    /// an `ip=` in its `append` wins over the default one).
    pub fn boot_with(mut cfg: Config, queues: usize) -> NetVm {
        let slot = NetSlot::acquire();
        let ns = Netns::create_for_queues(queues);
        let qmp = QmpPath(std::env::temp_dir().join(format!("{}.qmp", ns.name())));
        let _ = std::fs::remove_file(&qmp.0);
        cfg.net = Net::tap_in_netns(ns.name(), ns.tap(), queues).with_nic(cfg.net.nic);
        if !bootimage::net::append_has_ip(&cfg.append) {
            cfg.push_append(TAP_GUEST_ARG);
        }
        cfg.extra.push("-qmp".into());
        cfg.extra.push(format!("unix:{},server=on,wait=off", qmp.0.display()));
        // A panic here unwinds through `ns` and `slot`: nothing is left.
        let vm = Vm::boot_to_prompt(cfg);
        NetVm { vm, ns, qmp, queues, _slot: slot }
    }

    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    pub fn vm(&mut self) -> &mut Vm {
        &mut self.vm
    }

    pub fn queues(&self) -> usize {
        self.queues
    }

    /// [`Netns::in_ns`] of this VM's namespace.
    pub fn in_ns<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        self.ns.in_ns(f)
    }

    /// [`Netns::cmd`] of this VM's namespace.
    pub fn ns_cmd(&self, argv: &[&str]) -> CmdOutput {
        self.ns.cmd(argv)
    }

    /// Waits until the guest answers pings (panics with the transcript
    /// after `timeout`). Returns how long it took.
    pub fn wait_reachable(&self, timeout: Duration) -> Duration {
        match self.ns.wait_reachable(GUEST_IP, timeout) {
            Ok(d) => d,
            Err(e) => {
                let e = format!("{e}\n(namespace {}: {})", self.ns.name(), self.ns.cmd(&["ip", "neigh"]).stdout.trim());
                self.vm.check(false, e);
                unreachable!()
            }
        }
    }

    /// Sends one QMP command to this VM's QEMU.
    pub fn qmp(&self, command: &str) -> Result<String, String> {
        qmp_command(&self.qmp.0, command)
    }

    /// QEMU's `set_link` for the NIC's netdev: the link state the virtio
    /// device reports to the guest (VIRTIO_NET_S_LINK_UP).
    pub fn qmp_set_link(&self, up: bool) {
        let cmd = format!("{{\"execute\":\"set_link\",\"arguments\":{{\"name\":\"{NETDEV_ID}\",\"up\":{up}}}}}");
        if let Err(e) = self.qmp(&cmd) {
            self.vm.check(false, format!("QMP set_link {up}: {e}"));
        }
    }

    /// Pulls the cable from the host side: `ip -n NS link set arbtap0
    /// down`, and QEMU's `set_link n0 off`. QEMU does not watch the TAP's
    /// state, so without the second step the guest could not notice; both
    /// together are what a host administrator taking the port down means.
    pub fn link_down(&self) {
        self.ns.set_tap(false);
        self.qmp_set_link(false);
    }

    /// Undoes [`NetVm::link_down`].
    pub fn link_up(&self) {
        self.ns.set_tap(true);
        self.qmp_set_link(true);
    }
}

impl std::ops::Deref for NetVm {
    type Target = Vm;
    fn deref(&self) -> &Vm {
        &self.vm
    }
}

impl std::ops::DerefMut for NetVm {
    fn deref_mut(&mut self) -> &mut Vm {
        &mut self.vm
    }
}

// ---------------------------------------------------------------------------
// Workloads (run them inside the namespace: `ns.in_ns(|| ...)`).

/// Connects with a bounded wait and sets read/write timeouts.
pub fn connect(addr: SocketAddr, timeout: Duration, io_timeout: Duration) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(io_timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(io_timeout)).map_err(|e| e.to_string())?;
    Ok(s)
}

/// What [`tcp_echo_verify`] measured.
#[derive(Clone, Copy, Debug)]
pub struct EchoStats {
    pub bytes: usize,
    pub elapsed: Duration,
}

/// Sends `total` seeded random bytes to the TCP echo service at `addr` and
/// checks that exactly the same bytes come back, writing and reading on
/// two threads so neither side's buffers can deadlock. Fails after
/// `timeout` overall, or when nothing arrives for a minute.
pub fn tcp_echo_verify(addr: SocketAddr, total: usize, seed: u64, timeout: Duration) -> Result<EchoStats, String> {
    let start = Instant::now();
    let idle = Duration::from_secs(60).min(timeout);
    let s = connect(addr, Duration::from_secs(30), idle)?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let failed = Arc::new(AtomicBool::new(false));
    let writer_failed = failed.clone();
    let writer = std::thread::spawn(move || -> Result<(), String> {
        let mut rng = SplitMix64::new(seed);
        let mut sizes = SplitMix64::new(seed ^ 0x5eed);
        let mut sent = 0;
        while sent < total {
            if writer_failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let n = sizes.range(1, 65536).min(total - sent);
            let chunk = rng.bytes(n);
            w.write_all(&chunk).map_err(|e| format!("write after {sent} bytes: {e}"))?;
            sent += n;
        }
        Ok(())
    });
    let mut expect = SplitMix64::new(seed);
    let mut sizes = SplitMix64::new(seed ^ 0x5eed);
    // Expected stream: regenerate the same chunks.
    let mut want: Vec<u8> = Vec::new();
    let mut want_pos = 0;
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    let mut r = &s;
    let result = loop {
        if got == total {
            break Ok(());
        }
        if start.elapsed() > timeout {
            break Err(format!("timed out after {timeout:?}: {got} of {total} bytes echoed"));
        }
        let n = match r.read(&mut buf) {
            Ok(0) => break Err(format!("connection closed after {got} of {total} bytes")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(format!("read after {got} of {total} bytes: {e}")),
        };
        if got + n > total {
            break Err(format!("{} bytes more than were sent came back", got + n - total));
        }
        let mut off = 0;
        let mut bad = None;
        while off < n {
            if want_pos == want.len() {
                let len = sizes.range(1, 65536).min(total - (got + off));
                want = expect.bytes(len);
                want_pos = 0;
            }
            let k = (n - off).min(want.len() - want_pos);
            if buf[off..off + k] != want[want_pos..want_pos + k] {
                let i = (0..k).find(|&i| buf[off + i] != want[want_pos + i]).unwrap_or(0);
                bad = Some(got + off + i);
                break;
            }
            off += k;
            want_pos += k;
        }
        if let Some(at) = bad {
            break Err(format!("echoed stream differs from what was sent at byte {at}"));
        }
        got += n;
    };
    if result.is_err() {
        failed.store(true, Ordering::Relaxed);
        let _ = s.shutdown(Shutdown::Both);
    }
    let wres = writer.join().map_err(|_| "writer thread panicked".to_string())?;
    result?;
    wres?;
    let _ = s.shutdown(Shutdown::Both);
    Ok(EchoStats { bytes: total, elapsed: start.elapsed() })
}

/// What [`udp_echo_verify`] saw.
#[derive(Clone, Debug, Default)]
pub struct UdpStats {
    pub datagrams: usize,
    /// Sends beyond the first (lost datagrams or replies).
    pub resends: usize,
    /// Replies that matched an earlier datagram (late duplicates), ignored.
    pub stale: usize,
}

/// Sends `count` datagrams of seeded random sizes in `1..=max_size` and
/// contents to the UDP echo service at `addr`, one at a time; each must come
/// back byte for byte. A datagram whose reply does not come within
/// `wait` is resent, up to `tries` sends in all. Fails if one never comes
/// back, or if a reply matches nothing that was sent (corruption).
pub fn udp_echo_verify(
    addr: SocketAddr,
    count: usize,
    max_size: usize,
    seed: u64,
    wait: Duration,
    tries: usize,
) -> Result<UdpStats, String> {
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    sock.connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let mut rng = SplitMix64::new(seed);
    let mut sent_before: HashSet<Vec<u8>> = HashSet::new();
    let mut stats = UdpStats::default();
    let mut buf = vec![0u8; 65536];
    // Sizes: mostly uniform, with the edges (1 byte, a full 1472) included.
    for i in 0..count {
        let size = match i % 10 {
            0 => 1 + i % 4,
            1 => max_size - (i / 10) % 4,
            _ => rng.range(1, max_size),
        };
        let mut payload = rng.bytes(size);
        if size >= 4 {
            payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
        }
        let mut ok = false;
        let mut refused = 0;
        for attempt in 0..tries {
            if attempt > 0 {
                stats.resends += 1;
            }
            sock.send(&payload).map_err(|e| format!("datagram {i} ({size} bytes): send: {e}"))?;
            let deadline = Instant::now() + wait;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        let reply = &buf[..n];
                        if reply == payload.as_slice() {
                            ok = true;
                            break;
                        }
                        if sent_before.contains(reply) {
                            stats.stale += 1;
                            continue;
                        }
                        return Err(format!(
                            "datagram {i} ({size} bytes): a reply of {n} bytes matches nothing that was sent \
                             (corrupted); first bytes {:02x?}, expected {:02x?}",
                            &reply[..n.min(16)],
                            &payload[..size.min(16)]
                        ));
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        // ICMP port unreachable came back: count it, try again.
                        refused += 1;
                        break;
                    }
                    Err(e) => return Err(format!("datagram {i} ({size} bytes): recv: {e}")),
                }
            }
            if ok {
                break;
            }
        }
        if !ok {
            return Err(format!(
                "datagram {i} ({size} bytes) never came back in {tries} sends ({wait:?} each; \
                 {refused} answered by ICMP port unreachable); {} datagrams had come back before it",
                stats.datagrams
            ));
        }
        sent_before.insert(payload);
        stats.datagrams += 1;
    }
    Ok(stats)
}

/// Totals of an [`EchoLoad`] connection.
#[derive(Clone, Debug, Default)]
pub struct ConnStats {
    pub round_trips: u64,
    pub bytes: u64,
    pub error: Option<String>,
}

/// `conns` TCP connections to an echo service, each looping "send a block,
/// read it back, compare" until [`EchoLoad::stop`]. Start it from inside a
/// namespace ([`Netns::spawn_in_ns`] or [`Netns::in_ns`]): the connection
/// threads inherit it.
pub struct EchoLoad {
    stop: Arc<AtomicBool>,
    round_trips: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<ConnStats>>,
}

impl EchoLoad {
    /// Connects all `conns` first (fails if any cannot), then starts them.
    pub fn start(addr: SocketAddr, conns: usize, block: usize, seed: u64) -> Result<EchoLoad, String> {
        let mut streams = Vec::new();
        for c in 0..conns {
            streams.push(
                connect(addr, Duration::from_secs(30), Duration::from_secs(60))
                    .map_err(|e| format!("connection {c} of {conns}: {e}"))?,
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let round_trips = Arc::new(AtomicU64::new(0));
        let threads = streams
            .into_iter()
            .enumerate()
            .map(|(c, s)| {
                let stop = stop.clone();
                let rt = round_trips.clone();
                std::thread::spawn(move || {
                    let mut st = ConnStats::default();
                    let mut rng = SplitMix64::new(seed.wrapping_add(c as u64));
                    let mut back = vec![0u8; block];
                    let mut s = s;
                    while !stop.load(Ordering::Relaxed) {
                        let data = rng.bytes(block);
                        if let Err(e) = s.write_all(&data).and_then(|_| s.read_exact(&mut back)) {
                            st.error = Some(format!("connection {c} after {} round trips: {e}", st.round_trips));
                            break;
                        }
                        if back != data {
                            st.error = Some(format!("connection {c}: echoed block {} differs", st.round_trips));
                            break;
                        }
                        st.round_trips += 1;
                        st.bytes += block as u64;
                        rt.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = s.shutdown(Shutdown::Both);
                    st
                })
            })
            .collect();
        Ok(EchoLoad { stop, round_trips, threads })
    }

    /// Round trips completed so far, over all connections.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Stops every connection and returns their totals.
    pub fn stop(self) -> Vec<ConnStats> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| {
                t.join().unwrap_or_else(|_| ConnStats { error: Some("thread panicked".into()), ..Default::default() })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Malformed-frame injection.

/// ICMP id of the well-formed control pings of [`inject_malformed`].
pub const CONTROL_ICMP_ID: u16 = 0x600d;
/// TCP source port of its well-formed control SYN.
pub const CONTROL_TCP_PORT: u16 = 40100;

/// What [`inject_malformed`] did and saw.
#[derive(Clone, Debug, Default)]
pub struct InjectReport {
    /// Frames sent per class.
    pub sent: Vec<(&'static str, usize)>,
    /// Echo replies to the control pings.
    pub control_echo_replies: usize,
    /// Whether the control SYN was answered with SYN-ACK.
    pub control_synack: bool,
    /// Answers to frames that should have been dropped (empty when all is well).
    pub answered_bad: Vec<String>,
    /// Malformed frames that nothing on the host side can filter, so the
    /// guest must see (and count as dropped) every one: all but the
    /// oversized ones and the 802.1Q runts (QEMU's virtio-net VLAN filter
    /// may eat those when the driver negotiated `CTRL_VLAN`).
    pub must_count: usize,
}

impl InjectReport {
    pub fn total_sent(&self) -> usize {
        self.sent.iter().map(|(_, n)| n).sum()
    }
}

/// Puts the TAP's MTU back to 1500 on drop.
struct MtuGuard<'a>(&'a Netns);

impl Drop for MtuGuard<'_> {
    fn drop(&mut self) {
        self.0.set_mtu(1500);
    }
}

const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

impl RawSocket {
    /// Skips our own transmissions in the kernel and makes the receive
    /// buffer big (so sending many frames cannot crowd out the answers).
    pub fn tune_for_capture(&self) {
        let one: libc::c_int = 1;
        let big: libc::c_int = 8 << 20;
        // SAFETY: setsockopt with pointers to ints of the right size; errors
        // are harmless (older kernels lack the first option; recv() filters
        // outgoing frames anyway).
        unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_IGNORE_OUTGOING,
                &one as *const libc::c_int as *const libc::c_void,
                4,
            );
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &big as *const libc::c_int as *const libc::c_void,
                4,
            );
        }
    }
}

/// Injects malformed frames into the guest at `guest_mac` from the TAP of
/// `ns`: `per_class` of each of [`frames::MALFORMED_CLASSES`] plus
/// `per_class` oversized ones (9000 bytes and 1515..1600 bytes; the TAP's
/// MTU is raised to 9000 meanwhile and put back to 1500 after, even on
/// failure). Before them it sends well-formed controls (3 pings with id
/// [`CONTROL_ICMP_ID`], a SYN to the echo port from [`CONTROL_TCP_PORT`])
/// that must be answered, which proves the capture sees the guest's
/// answers; after them it watches `settle` for answers to frames that a
/// correct stack drops (bad checksums, truncated headers), which end up in
/// [`InjectReport::answered_bad`]. `Err` when the controls go unanswered or
/// a frame cannot be sent.
pub fn inject_malformed(ns: &Netns, guest_mac: Mac, per_class: usize, seed: u64, settle: Duration) -> Result<InjectReport, String> {
    use frames::{Seen, TCP_ACK, TCP_SYN};
    let sock = ns.raw_socket();
    sock.tune_for_capture();
    let ep = ns.endpoints(guest_mac);
    let mut report = InjectReport::default();

    // Controls.
    for seq in 0..3 {
        sock.send(&ep.ping(CONTROL_ICMP_ID, seq, b"control")).map_err(|e| format!("send control ping: {e}"))?;
    }
    sock.send(&ep.syn(CONTROL_TCP_PORT, ECHO_PORT, 0x1234_5678)).map_err(|e| format!("send control SYN: {e}"))?;
    let seen = sock.capture(guest_mac, settle);
    report.control_echo_replies = seen.iter().filter(|s| matches!(s, Seen::EchoReply(CONTROL_ICMP_ID, _))).count();
    report.control_synack = seen.iter().any(|s| {
        matches!(s, Seen::Tcp(ECHO_PORT, CONTROL_TCP_PORT, f) if f & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK)
    });
    if report.control_echo_replies == 0 || !report.control_synack {
        return Err(format!(
            "well-formed control frames went unanswered (echo replies {}, SYN-ACK {}); saw {seen:?}",
            report.control_echo_replies, report.control_synack
        ));
    }

    // The malformed frames.
    let all = frames::malformed_frames(&ep, ECHO_PORT, per_class, seed);
    for class in frames::MALFORMED_CLASSES {
        let n = all.iter().filter(|m| m.class == class).count();
        report.sent.push((class, n));
    }
    for (i, m) in all.iter().enumerate() {
        sock.send(&m.frame).map_err(|e| format!("send {} frame #{i} ({} bytes): {e}", m.class, m.frame.len()))?;
    }
    report.must_count = all.iter().filter(|m| m.frame[12..14] != frames::ETHERTYPE_VLAN.to_be_bytes()).count();
    {
        ns.set_mtu(9000);
        let _restore = MtuGuard(ns);
        let big = frames::oversized_frames(&ep, per_class, 9000);
        for (i, m) in big.iter().enumerate() {
            sock.send(&m.frame).map_err(|e| format!("send oversized frame #{i} ({} bytes): {e}", m.frame.len()))?;
        }
        report.sent.push(("oversized", big.len()));
    }

    let pc = per_class as u16;
    let bad_tcp = frames::BAD_TCP_CSUM_PORT_BASE..frames::BAD_TCP_CSUM_PORT_BASE + pc;
    for s in sock.capture(guest_mac, settle) {
        let what = match s {
            Seen::EchoReply(frames::BAD_IP_CSUM_ICMP_ID, q) => Some(format!("echo reply to a ping with a bad IPv4 checksum (seq {q})")),
            Seen::EchoReply(frames::BAD_ICMP_CSUM_ICMP_ID, q) => Some(format!("echo reply to a ping with a bad ICMP checksum (seq {q})")),
            Seen::EchoReply(0x7000, q) => Some(format!("echo reply to a truncated/invalid IPv4 packet (seq {q})")),
            Seen::Tcp(_, d, f) if bad_tcp.contains(&d) => Some(format!("TCP flags {f:#04x} to port {d}: answer to a SYN with a bad checksum")),
            Seen::Tcp(_, d, f) if (42000..42000 + pc).contains(&d) => Some(format!("TCP flags {f:#04x} to port {d}: answer to a truncated TCP header")),
            Seen::Udp(_, d) if (43000..43000 + pc).contains(&d) => Some(format!("UDP to port {d}: echo of a datagram with a bad checksum")),
            _ => None,
        };
        report.answered_bad.extend(what);
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// Parsers.

/// `(transmitted, received)` from Linux ping's summary line
/// `20 packets transmitted, 20 received, 0% packet loss, time 3807ms`.
pub fn parse_ping_summary(out: &str) -> Option<(u32, u32)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut tx = None;
    let mut rx = None;
    for part in line.split(',') {
        let mut w = part.split_whitespace();
        let n = w.next().and_then(|n| n.parse::<u32>().ok());
        match w.next() {
            Some("packets") => tx = n,
            Some("received") => rx = n,
            _ => {}
        }
    }
    Some((tx?, rx?))
}

/// The average of Linux ping's `rtt min/avg/max/mdev = 40.1/41.2/43.0/1.1 ms`.
pub fn parse_ping_avg_rtt(out: &str) -> Option<Duration> {
    let line = out.lines().find(|l| l.starts_with("rtt ") || l.starts_with("round-trip"))?;
    let (_, values) = line.split_once('=')?;
    let avg: f64 = values.trim().split('/').nth(1)?.trim().parse().ok()?;
    Some(Duration::from_secs_f64(avg / 1000.0))
}

/// One row of the kernel's `mpstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpstatRow {
    pub cpu: usize,
    pub intr: u64,
    /// Interrupts that were neither clock ticks nor IPIs: the devices'.
    pub ithr: u64,
    pub ipi: u64,
    pub csw: u64,
    pub icsw: u64,
    pub sys: u64,
    pub idl: u64,
}

impl MpstatRow {
    /// Interrupts that were neither IPIs nor (see the caller) timer ticks:
    /// the kernel's `intr` counts every vector, IPIs included.
    pub fn non_ipi(&self) -> u64 {
        self.intr.saturating_sub(self.ipi)
    }
}

/// The reports of `mpstat [interval count]`: one Vec of rows per header.
pub fn parse_mpstat(out: &str) -> Vec<Vec<MpstatRow>> {
    let mut blocks: Vec<Vec<MpstatRow>> = Vec::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"CPU") {
            blocks.push(Vec::new());
            continue;
        }
        let nums: Option<Vec<u64>> = f.iter().map(|x| x.parse::<u64>().ok()).collect();
        if let (Some(n), Some(b)) = (nums, blocks.last_mut())
            && n.len() == 8
        {
            b.push(MpstatRow {
                cpu: n[0] as usize,
                intr: n[1],
                ithr: n[2],
                ipi: n[3],
                csw: n[4],
                icsw: n[5],
                sys: n[6],
                idl: n[7],
            });
        }
    }
    blocks
}

/// Per CPU: how many more device interrupts (`ithr`: neither clock ticks
/// nor IPIs) the `load` report counted than the CPU's idle rate explains.
/// `idle` and `load` are interval reports of `mpstat N 2` and
/// `idle_len`/`load_len` their lengths as the host timed them
/// ([`mpstat_interval`]); the idle rate is scaled to the load interval.
/// Clock ticks are left out because TCG loses some on a busy host (a vCPU
/// thread that is not running misses them), which made a loaded CPU look
/// as if it took fewer interrupts than an idle one.
pub fn interrupt_excess(
    idle: &[MpstatRow],
    idle_len: Duration,
    load: &[MpstatRow],
    load_len: Duration,
) -> Vec<(usize, f64)> {
    let scale = load_len.as_secs_f64() / idle_len.as_secs_f64().max(1e-9);
    load.iter()
        .map(|l| {
            let base = idle.iter().find(|i| i.cpu == l.cpu).map(|i| i.ithr).unwrap_or(0);
            (l.cpu, l.ithr as f64 - base as f64 * scale)
        })
        .collect()
}

/// Runs `mpstat SECS 2` on `vm` and returns the interval report (the
/// second one) with the interval's length as the host saw it: from the
/// arrival of the first report's header to that of the second (each report
/// is printed right after its counters are read).
pub fn mpstat_interval(vm: &mut Vm, secs: u64) -> Result<(Vec<MpstatRow>, Duration), String> {
    let timeout = Duration::from_secs(secs + 60);
    vm.send_line(&format!("mpstat {secs} 2"));
    vm.expect("CPU", timeout)?;
    let t1 = Instant::now();
    vm.expect("CPU", timeout)?;
    let len = t1.elapsed();
    let rest = vm.expect(crate::PROMPT, timeout)?;
    let blocks = parse_mpstat(&format!("CPU{rest}"));
    match blocks.into_iter().next() {
        Some(rows) if !rows.is_empty() => Ok((rows, len)),
        _ => Err(format!("mpstat {secs} 2: no interval report in:\nCPU{rest}")),
    }
}

/// Polls `ipadm show-addr` until address object `addrobj` (`LINK/v4`) is
/// `ok` — a FireEngine address is `tentative` while duplicate-address
/// detection probes for it and answers nobody — and returns the states it
/// went through in order with the last `ipadm show-addr` output, or an
/// error with them.
pub fn wait_addr_ok(vm: &mut Vm, addrobj: &str, timeout: Duration) -> Result<(Vec<String>, String), String> {
    let deadline = Instant::now() + timeout;
    let mut states: Vec<String> = Vec::new();
    loop {
        let out = vm.run("ipadm show-addr");
        let st = table_value(&out, addrobj, "STATE").unwrap_or_default();
        if states.last() != Some(&st) {
            states.push(st.clone());
        }
        if st == "ok" {
            return Ok((states, out));
        }
        if Instant::now() >= deadline {
            return Err(format!("{addrobj} not ok within {timeout:?} (states {states:?}):\n{out}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The receive-drop counters of the kernel's `netstat -s` for a smoltcp
/// instance (netstack's `StackStats`: every frame handed to it is passed
/// up or counted in exactly one of these).
pub const RX_DROP_COUNTERS: [&str; 7] =
    ["rxQueueDrops", "rxMalformed", "rxBadCksum", "rxOversize", "rxUnknownProto", "rxNotMine", "rxFragments"];

/// The same for a FireEngine instance: the link-level ones of
/// `StackStats` for what never reaches IP, then illumos' MIB counters of
/// the layer that drops it (each drop in exactly one of them).
pub const RX_DROP_COUNTERS_FE: [&str; 14] = [
    "rxQueueDrops",
    "rxMalformed",
    "rxOversize",
    "rxUnknownProto",
    "rxNotMine",
    "ipInHdrErrors",
    "ipInCksumErrs",
    "ipInAddrErrors",
    "ipInUnknownProtos",
    "icmpInErrors",
    "icmpInCksumErrs",
    "udpInErrors",
    "udpInCksumErrs",
    "tcpInErrs",
];

/// The receive-drop counters of `stack` (`ipadm show-if`'s STACK).
pub fn rx_drop_counters(stack: &str) -> &'static [&'static str] {
    if stack == "smoltcp" { &RX_DROP_COUNTERS } else { &RX_DROP_COUNTERS_FE }
}

/// One counter of `netstat -s` output (`name = v` or `name=v`; summed
/// over the sections that have it, as [`parse_netstat_s`]).
pub fn netstat_value(out: &str, name: &str) -> Option<u64> {
    parse_netstat_s(out).get(name).copied()
}

/// `name = value` pairs of `netstat -s`, summed over the IP instances.
pub fn parse_netstat_s(out: &str) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for line in out.lines() {
        let spaced = line.replace('=', " = ");
        let w: Vec<&str> = spaced.split_whitespace().collect();
        for i in 1..w.len().saturating_sub(1) {
            if w[i] == "="
                && let Ok(v) = w[i + 1].parse::<u64>()
            {
                *m.entry(w[i - 1].to_string()).or_insert(0) += v;
            }
        }
    }
    m
}

/// `(link, ring index, ipkts)` rows of `dlstat show-phys -r -p -o link,index,ipkts`.
pub fn parse_dlstat_rings(out: &str) -> Vec<(String, usize, u64)> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            if f.len() != 3 {
                return None;
            }
            Some((f[0].to_string(), f[1].parse().ok()?, f[2].parse().ok()?))
        })
        .collect()
}

/// The value of column `column` (by header name) in the row whose first
/// field is `row` of a table like `dladm show-phys`.
pub fn table_value(out: &str, row: &str, column: &str) -> Option<String> {
    let mut header: Option<Vec<&str>> = None;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if header.is_none() && f.contains(&column) && f.iter().all(|w| w.chars().all(|c| !c.is_lowercase())) {
            header = Some(f);
            continue;
        }
        if let Some(h) = &header
            && f[0] == row
        {
            let i = h.iter().position(|c| *c == column)?;
            return f.get(i).map(|s| s.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summary() {
        let out = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.5 ms\n\n\
                   --- 10.0.0.2 ping statistics ---\n20 packets transmitted, 20 received, 0% packet loss, time 3807ms\n";
        assert_eq!(parse_ping_summary(out), Some((20, 20)));
        assert_eq!(parse_ping_avg_rtt(out), None);
        let rtt = "3 packets transmitted, 3 received, 0% packet loss, time 2003ms\nrtt min/avg/max/mdev = 40.112/41.500/43.020/1.190 ms\n";
        assert_eq!(parse_ping_avg_rtt(rtt), Some(Duration::from_micros(41_500)));
        let out = "5 packets transmitted, 3 received, +2 errors, 40% packet loss, time 4010ms";
        assert_eq!(parse_ping_summary(out), Some((5, 3)));
        assert_eq!(parse_ping_summary("connect: Network is unreachable"), None);
    }

    #[test]
    fn mpstat_blocks_and_excess() {
        let out = "CPU  intr  ithr  ipi   csw  icsw   sys  idl\n  0  2718    10    0     3     0     4   96\n  1  2724     0    0     0     0     0  100\n\
                   CPU  intr  ithr  ipi   csw  icsw   sys  idl\n  0  5003    20    3    40     0     0  100\n  1  5902   900  100     0     0     0  100\n";
        let b = parse_mpstat(out);
        assert_eq!(b.len(), 2);
        assert_eq!(b[1][1], MpstatRow { cpu: 1, intr: 5902, ithr: 900, ipi: 100, csw: 0, icsw: 0, sys: 0, idl: 100 });
        let idle = parse_mpstat("CPU  intr  ithr  ipi   csw  icsw   sys  idl\n  0  5001 20 1 0 0 0 100\n  1  5000 2 0 0 0 0 100\n");
        let s = Duration::from_secs(5);
        assert_eq!(interrupt_excess(&idle[0], s, &b[1], s), vec![(0, 0.0), (1, 898.0)]);
        // A 10% longer load interval: 10% more of the idle rate expected.
        let l = Duration::from_millis(5500);
        assert_eq!(interrupt_excess(&idle[0], s, &b[1], l), vec![(0, -2.0), (1, 897.8)]);
        // The old seven-column layout is not taken for the new one.
        assert!(parse_mpstat("CPU  intr  ipi   csw  icsw   sys  idl\n  0  5001 1 0 0 0 100\n")[0].is_empty());
    }

    #[test]
    fn netstat_s() {
        let out = "\nIP instance net0 (smoltcp)\n        rxPackets           =        10     rxBytes             =      1234\n\
                   \x20       rxBadCksum          =         3     averyveryveryverylongname=7\n\
                   IP instance net1 (smoltcp)\n        rxBadCksum          =         2\n\
                   PROTO  PORT SERVICE   ACCEPTED  REFUSED ACTIVE\ntcp       7 echo             1        0      0\n";
        let m = parse_netstat_s(out);
        assert_eq!(m.get("rxPackets"), Some(&10));
        assert_eq!(m.get("rxBytes"), Some(&1234));
        assert_eq!(m.get("rxBadCksum"), Some(&5));
        assert_eq!(m.get("averyveryveryverylongname"), Some(&7));
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn dlstat_and_tables() {
        let out = "net0:0:1234\nnet0:1:0\nnet0:2:77\nbogus line\nnet0:x:1\n";
        assert_eq!(
            parse_dlstat_rings(out),
            vec![("net0".into(), 0, 1234), ("net0".into(), 1, 0), ("net0".into(), 2, 77)]
        );
        let phys = "LINK         MEDIA                STATE      SPEED  DUPLEX    DEVICE\n\
                    net0         Ethernet             up         10000  full      vioif0\n";
        assert_eq!(table_value(phys, "net0", "STATE").as_deref(), Some("up"));
        assert_eq!(table_value(phys, "net0", "DEVICE").as_deref(), Some("vioif0"));
        assert_eq!(table_value(phys, "net1", "STATE"), None);
        assert_eq!(table_value("net0 up", "net0", "STATE"), None);
    }

    #[test]
    fn prng_is_deterministic() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        assert_eq!(a.bytes(33), b.bytes(33));
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
        let mut r = SplitMix64::new(3);
        assert!((0..1000).map(|_| r.range(1, 4)).all(|x| (1..=4).contains(&x)));
    }
}

/// Floods the guest (net0's factory MAC) with 64-byte UDP datagrams to
/// `dst_port` from `threads` host threads until `stop` (at most two
/// minutes), each cycling over 512 pre-built frames with source ports from
/// `src_base + 1000 * thread` (so they spread over the rings). Returns the
/// threads; each yields the frames it sent.
pub fn udp_flood(vm: &NetVm, threads: u16, src_base: u16, dst_port: u16, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    let ep = vm.ns().endpoints(frames::parse_mac(GUEST_MAC).expect("guest MAC"));
    (0..threads)
        .map(|t| {
            let sock = vm.ns().raw_socket();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let payload = [0x5au8; 64];
                let frames: Vec<Vec<u8>> = (0..512u16)
                    .map(|i| {
                        let udp = frames::udp(ep.host_ip, ep.guest_ip, src_base + t * 1000 + i, dst_port, &payload);
                        frames::eth(ep.guest_mac, ep.host_mac, 0x0800, &frames::ipv4(ep.host_ip, ep.guest_ip, 17, i, &udp))
                    })
                    .collect();
                let start = Instant::now();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(120) {
                    if sock.send(&frames[(n % 512) as usize]).is_ok() {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect()
}
