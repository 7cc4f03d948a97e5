//! A peer's segments reach its connection, never the service's listener.
//!
//! A TCP service keeps a listening socket beside its connections. A
//! segment that belongs to a connection must be processed by that
//! connection whatever the order in which the stack looks at its sockets:
//! a listener that takes it (smoltcp before 0.13 took a RST without ACK,
//! smoltcp issue #851) loses the reset, and the connection then holds a
//! service slot for good.
//!
//! The tests drive raw segments from the test's namespace over the TAP
//! (an AF_PACKET socket; an nftables rule in the namespace keeps its own
//! kernel from answering the guest's SYN-ACKs with resets), against the
//! echo service on port 7, 20 connections per case:
//!
//! * an exact bare RST (sequence number = the guest's RCV.NXT, no ACK) and
//!   an exact RST|ACK close the connection: later data draws a RST;
//! * a FIN is acknowledged by the connection, the echo service closes its
//!   side, and the connection is gone once its FIN is acknowledged;
//! * a pure ACK leaves the connection as it was: data still echoes;
//! * data without ACK is dropped (RFC 9293 3.10.7.4, "if the ACK bit is
//!   off, drop the segment"): the next data at the same sequence number is
//!   echoed, and only it;
//! * a SYN inside the window of a synchronized connection never starts a
//!   second handshake (no SYN-ACK, no RST), and the connection goes on.
//!   Whether a challenge ACK (RFC 5961 4.2) came is reported: smoltcp
//!   sends none.
//!
//! After each case `netstat -s` shows no active echo connection, and a
//! Linux client's echo works. Then 1 000 Linux clients abort their
//! connections (SO_LINGER 0: close sends RST|ACK), some after a round
//! trip, some straight after connecting; no active connection remains and
//! the service still accepts.
//!
//! Each runs on virtio-net with 2 queues and on igb.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use arbalest_tests::frames::{self, Endpoints, Mac, TcpSeen, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN};
use arbalest_tests::net::{
    connect, guest, require_program, table_value, tcp_echo_verify, NetVm, RawSocket, ECHO_PORT, GUEST_MAC,
};
use arbalest_tests::Config;
use bootimage::{Net, Nic};

const SMP: usize = 2;
const QUEUES: usize = 2;
/// Connections per case.
const CONNS: u16 = 20;
/// Linux clients that abort.
const ABORTS: usize = 1000;
/// Source ports of the raw connections: outside Linux's ephemeral range
/// (32768-60999), so no socket of the namespace's kernel ever uses them.
const RAW_PORTS: (u16, u16) = (61000, 64999);
/// Our receive window.
const WINDOW: u16 = 65535;
/// How long to wait for an answer from the guest.
const ANSWER: Duration = Duration::from_secs(5);
/// How long a segment that must not be answered is given to be answered.
const QUIET: Duration = Duration::from_millis(400);

fn boot(nic: Nic) -> NetVm {
    let mut cfg = Config::with_smp(SMP);
    cfg.net = Net::none().with_nic(nic);
    let mut vm = NetVm::boot_with(cfg, QUEUES);
    // After the boot: set-up (run by the kernel build) installs nftables.
    require_program("nft", "nftables");
    // igb reports the link a little after the prompt.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if table_value(&vm.run("dladm show-phys"), "net0", "STATE").as_deref() == Some("up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    vm.wait_reachable(Duration::from_secs(60));
    let rule = format!(
        "add table inet arbtest; \
         add chain inet arbtest input {{ type filter hook input priority 0; policy accept; }}; \
         add rule inet arbtest input ip saddr {} tcp sport {ECHO_PORT} tcp dport {}-{} drop",
        arbalest_tests::net::GUEST_IP,
        RAW_PORTS.0,
        RAW_PORTS.1
    );
    let out = vm.ns_cmd(&["nft", &rule]);
    vm.check(out.success(), format!("nft in the namespace: {}", out.describe()));
    vm
}

/// The ACTIVE count of the echo service in `netstat -s`.
fn echo_active(vm: &mut NetVm) -> (u64, String) {
    let out = vm.run("netstat -s");
    let active = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[0] == "tcp" && f[1] == "7" && f[2] == "echo")
        .and_then(|f| f[5].parse().ok())
        .unwrap_or_else(|| panic!("no echo service row in netstat -s:\n{out}"));
    (active, out)
}

/// Waits (bounded) for the echo service to have no active connection.
fn wait_no_active(vm: &mut NetVm, what: &str) {
    let start = Instant::now();
    loop {
        let (n, out) = echo_active(vm);
        if n == 0 {
            return;
        }
        if start.elapsed() > Duration::from_secs(15) {
            vm.check(false, format!("{what}: {n} echo connections still active after 15 s:\n{out}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A Linux client's echo through the service (it still accepts).
fn linux_echo_works(vm: &NetVm, what: &str, seed: u64) {
    let r = vm.in_ns(move || tcp_echo_verify(guest(ECHO_PORT), 64 * 1024, seed, Duration::from_secs(60)));
    vm.check(r.is_ok(), format!("{what}: a Linux client's echo failed afterwards: {r:?}"));
}

// ---------------------------------------------------------------------------
// A raw TCP peer.

/// One raw connection's sequence state (ours and the guest's).
#[derive(Clone, Copy, Debug)]
struct Conn {
    sport: u16,
    /// Our next sequence number (the guest's RCV.NXT).
    snd_nxt: u32,
    /// The guest's next sequence number (our RCV.NXT).
    rcv_nxt: u32,
}

/// Speaks TCP with raw segments on the TAP.
struct Peer {
    sock: RawSocket,
    ep: Endpoints,
    guest_mac: Mac,
    buf: Vec<u8>,
}

impl Peer {
    fn new(vm: &NetVm) -> Peer {
        let guest_mac = frames::parse_mac(GUEST_MAC).expect("guest MAC");
        let sock = vm.ns().raw_socket();
        let ep = vm.ns().endpoints(guest_mac);
        Peer { sock, ep, guest_mac, buf: vec![0u8; 65536] }
    }

    fn send(&self, c: &Conn, seq: u32, ack: u32, flags: u8, data: &[u8]) {
        let f = self.ep.tcp(c.sport, ECHO_PORT, seq, ack, flags, WINDOW, data);
        self.sock.send(&f).unwrap_or_else(|e| panic!("raw send: {e}"));
    }

    /// The next segment from the guest's echo port to `sport` within
    /// `timeout`.
    fn next(&mut self, sport: u16, timeout: Duration) -> Option<TcpSeen> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let n = match self.sock.recv(&mut self.buf, left) {
                Ok(Some(n)) => n,
                Ok(None) => return None,
                Err(e) => panic!("raw receive: {e}"),
            };
            if let Some(t) = frames::parse_tcp(&self.buf[..n], self.guest_mac)
                && t.sport == ECHO_PORT
                && t.dport == sport
            {
                return Some(t);
            }
        }
        None
    }

    /// SYN, SYN-ACK, ACK.
    fn open(&mut self, sport: u16, isn: u32) -> Result<Conn, String> {
        self.sock.send(&self.ep.syn(sport, ECHO_PORT, isn)).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + ANSWER;
        loop {
            let left = deadline.checked_duration_since(Instant::now()).ok_or(format!("{sport}: no SYN-ACK"))?;
            let t = self.next(sport, left).ok_or(format!("{sport}: no SYN-ACK"))?;
            if t.has(TCP_RST) {
                return Err(format!("{sport}: SYN refused with RST: {t:?}"));
            }
            if t.has(TCP_SYN | TCP_ACK) && t.ack == isn.wrapping_add(1) {
                let c = Conn { sport, snd_nxt: isn.wrapping_add(1), rcv_nxt: t.seq.wrapping_add(1) };
                self.send(&c, c.snd_nxt, c.rcv_nxt, TCP_ACK, b"");
                return Ok(c);
            }
        }
    }

    /// Sends `data` at SND.NXT and waits for exactly `data` to come back at
    /// RCV.NXT (acknowledging it). Anything else is an error.
    fn echo(&mut self, c: &mut Conn, data: &[u8]) -> Result<(), String> {
        self.send(c, c.snd_nxt, c.rcv_nxt, TCP_PSH | TCP_ACK, data);
        c.snd_nxt = c.snd_nxt.wrapping_add(data.len() as u32);
        let mut got = Vec::new();
        let deadline = Instant::now() + ANSWER;
        while got.len() < data.len() {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or(format!("{}: echo of {data:?}: got {got:?} in time", c.sport))?;
            let Some(t) = self.next(c.sport, left) else { continue };
            if t.has(TCP_RST) {
                return Err(format!("{}: echo of {data:?}: reset: {t:?}", c.sport));
            }
            if t.data.is_empty() || t.seq != c.rcv_nxt {
                continue; // a pure ACK or a retransmission
            }
            got.extend_from_slice(&t.data);
            c.rcv_nxt = c.rcv_nxt.wrapping_add(t.data.len() as u32);
            self.send(c, c.snd_nxt, c.rcv_nxt, TCP_ACK, b"");
        }
        if got != data {
            return Err(format!("{}: sent {data:?}, echoed {got:?}", c.sport));
        }
        Ok(())
    }

    /// Data on a connection that must be closed draws a RST and no echo.
    fn expect_closed(&mut self, c: &Conn) -> Result<(), String> {
        self.send(c, c.snd_nxt, c.rcv_nxt, TCP_PSH | TCP_ACK, b"still there?");
        let deadline = Instant::now() + ANSWER;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or(format!("{}: data after close drew no RST", c.sport))?;
            let Some(t) = self.next(c.sport, left) else { continue };
            if t.has(TCP_RST) {
                return Ok(());
            }
            if !t.data.is_empty() {
                return Err(format!("{}: the connection is still open: data echoed after close: {t:?}", c.sport));
            }
        }
    }

    /// Collects what the guest sends to `sport` for `dur`.
    fn quiet(&mut self, sport: u16, dur: Duration) -> Vec<TcpSeen> {
        let deadline = Instant::now() + dur;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(t) = self.next(sport, left) {
                seen.push(t);
            }
        }
        seen
    }
}

/// SYNs in the window answered with a challenge ACK (RFC 5961 4.2, a MUST
/// of RFC 9293 3.10.7.4). smoltcp sends none: it drops the SYN, which
/// leaves the connection intact but is reported, not failed, until the
/// stack under test is one that must send them (FireEngine, issue 13).
static CHALLENGE_ACKS: AtomicU32 = AtomicU32::new(0);

/// What a case does to an open, echoing connection and how it checks the
/// result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    BareRst,
    RstAck,
    Fin,
    PureAck,
    DataWithoutAck,
    SynInWindow,
}

impl Case {
    const ALL: [Case; 6] = [Case::BareRst, Case::RstAck, Case::Fin, Case::PureAck, Case::DataWithoutAck, Case::SynInWindow];

    fn run(self, p: &mut Peer, c: &mut Conn) -> Result<(), String> {
        match self {
            Case::BareRst | Case::RstAck => {
                let (flags, ack) = if self == Case::BareRst { (TCP_RST, 0) } else { (TCP_RST | TCP_ACK, c.rcv_nxt) };
                p.send(c, c.snd_nxt, ack, flags, b"");
                // A reset is never answered.
                if let Some(t) = p.quiet(c.sport, QUIET).into_iter().find(|t| t.has(TCP_RST) || !t.data.is_empty()) {
                    return Err(format!("{}: a reset was answered: {t:?}", c.sport));
                }
                p.expect_closed(c)
            }
            Case::Fin => {
                p.send(c, c.snd_nxt, c.rcv_nxt, TCP_FIN | TCP_ACK, b"");
                c.snd_nxt = c.snd_nxt.wrapping_add(1);
                // The guest acknowledges our FIN and, the echo having nothing
                // left to send, sends its own.
                let mut acked = false;
                let deadline = Instant::now() + ANSWER;
                loop {
                    let left = deadline
                        .checked_duration_since(Instant::now())
                        .ok_or(format!("{}: FIN: acked {acked}, no FIN from the guest", c.sport))?;
                    let Some(t) = p.next(c.sport, left) else { continue };
                    if t.has(TCP_RST) {
                        return Err(format!("{}: FIN answered with RST: {t:?}", c.sport));
                    }
                    acked |= t.has(TCP_ACK) && t.ack == c.snd_nxt;
                    if t.has(TCP_FIN) && t.seq == c.rcv_nxt {
                        if !acked {
                            return Err(format!("{}: the guest's FIN does not acknowledge ours: {t:?}", c.sport));
                        }
                        c.rcv_nxt = c.rcv_nxt.wrapping_add(1);
                        p.send(c, c.snd_nxt, c.rcv_nxt, TCP_ACK, b"");
                        break;
                    }
                }
                // Gone: data now draws a RST.
                p.expect_closed(c)
            }
            Case::PureAck => {
                p.send(c, c.snd_nxt, c.rcv_nxt, TCP_ACK, b"");
                if let Some(t) = p.quiet(c.sport, QUIET).into_iter().find(|t| t.has(TCP_RST)) {
                    return Err(format!("{}: a pure ACK drew a reset: {t:?}", c.sport));
                }
                p.echo(c, b"after the ACK")?;
                p.send(c, c.snd_nxt, c.rcv_nxt, TCP_RST | TCP_ACK, b"");
                p.expect_closed(c)
            }
            Case::DataWithoutAck => {
                p.send(c, c.snd_nxt, 0, TCP_PSH, b"NO-ACK");
                if let Some(t) = p.quiet(c.sport, QUIET).into_iter().find(|t| t.has(TCP_RST) || !t.data.is_empty()) {
                    return Err(format!("{}: data without ACK was not dropped: {t:?}", c.sport));
                }
                // Same sequence number: only this is echoed.
                p.echo(c, b"with ACK")?;
                p.send(c, c.snd_nxt, 0, TCP_RST, b"");
                p.expect_closed(c)
            }
            Case::SynInWindow => {
                let seq = c.snd_nxt.wrapping_add(1000);
                p.send(c, seq, 0, TCP_SYN, b"");
                let seen = p.quiet(c.sport, QUIET);
                if let Some(t) = seen.iter().find(|t| t.has(TCP_SYN) || t.has(TCP_RST)) {
                    return Err(format!("{}: a SYN on a synchronized connection drew {t:?}", c.sport));
                }
                let challenged = seen.iter().any(|t| t.has(TCP_ACK) && t.ack == c.snd_nxt && t.data.is_empty());
                if challenged {
                    CHALLENGE_ACKS.fetch_add(1, Ordering::Relaxed);
                }
                p.echo(c, b"after the SYN")?;
                p.send(c, c.snd_nxt, c.rcv_nxt, TCP_RST | TCP_ACK, b"");
                p.expect_closed(c)
            }
        }
    }
}

fn raw_cases(nic: Nic) {
    let mut vm = boot(nic);
    let mut p = Peer::new(&vm);
    let mut sport = RAW_PORTS.0;
    let mut failures = Vec::new();
    for case in Case::ALL {
        let mut failed = 0;
        for i in 0..CONNS {
            sport += 1;
            let isn = 0x1000_0000u32.wrapping_mul(u32::from(i) + 1).wrapping_add(u32::from(sport));
            let r = p.open(sport, isn).and_then(|mut c| {
                p.echo(&mut c, format!("{case:?} {i}").as_bytes())?;
                case.run(&mut p, &mut c)
            });
            if let Err(e) = r {
                failed += 1;
                failures.push(format!("{case:?} #{i}: {e}"));
            }
        }
        eprintln!("{nic:?} {case:?}: {} of {CONNS} connections behaved", CONNS - failed);
        if case == Case::SynInWindow {
            eprintln!("{nic:?} {case:?}: {} challenge ACKs", CHALLENGE_ACKS.swap(0, Ordering::Relaxed));
        }
        // Connections that kept a slot are a failure of their own.
        let (active, out) = echo_active(&mut vm);
        if active != 0 {
            failures.push(format!("{case:?}: {active} echo connections still active:\n{out}"));
        }
    }
    if !failures.is_empty() {
        vm.check(false, format!("{} failures:\n{}", failures.len(), failures.join("\n")));
    }
    wait_no_active(&mut vm, "after the raw cases");
    linux_echo_works(&vm, "after the raw cases", 7);
}

/// SO_LINGER {on, 0}: close() sends RST|ACK and frees the socket at once.
fn abort(s: TcpStream) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt reads a properly sized linger from a live fd.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(s);
}

fn aborted_clients(nic: Nic) {
    let mut vm = boot(nic);
    let r = vm.in_ns(|| -> Result<usize, String> {
        let mut round_trips = 0;
        for i in 0..ABORTS {
            let mut s = connect(guest(ECHO_PORT), Duration::from_secs(10), Duration::from_secs(10))
                .map_err(|e| format!("client {i}: {e}"))?;
            if i % 2 == 0 {
                let mut b = [0u8; 1];
                s.write_all(&[i as u8]).map_err(|e| format!("client {i}: write: {e}"))?;
                s.read_exact(&mut b).map_err(|e| format!("client {i}: read: {e}"))?;
                if b[0] != i as u8 {
                    return Err(format!("client {i}: echoed {} for {}", b[0], i as u8));
                }
                round_trips += 1;
            }
            abort(s);
        }
        Ok(round_trips)
    });
    vm.check(r.is_ok(), format!("{ABORTS} aborting clients: {r:?}"));
    wait_no_active(&mut vm, &format!("after {ABORTS} aborted connections"));
    let out = vm.run("netstat -s");
    eprintln!("{nic:?} after {ABORTS} aborted connections:\n{out}");
    linux_echo_works(&vm, &format!("after {ABORTS} aborted connections"), 11);
}

#[test]
fn virtio_segments_reach_their_connection() {
    raw_cases(Nic::Virtio);
}

#[test]
fn igb_segments_reach_their_connection() {
    raw_cases(Nic::Igb);
}

#[test]
fn virtio_aborted_clients_leave_no_connection() {
    aborted_clients(Nic::Virtio);
}

#[test]
fn igb_aborted_clients_leave_no_connection() {
    aborted_clients(Nic::Igb);
}
