//! A Linux stand-in for the kernel, to check the harness itself without
//! booting anything: a second namespace joined to a test [`Netns`] by a
//! veth pair whose host end is named like the TAP (`arbtap0`,
//! `10.0.0.1/24`) and whose far end has the guest's MAC and `10.0.0.2/24`,
//! with Rust TCP echo (7), discard (9), chargen (19) and UDP echo (7)
//! servers running inside it. The clients, the raw-frame injection and the
//! namespace plumbing of [`crate::net`] work on it unchanged.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::net::{enter_netns, Netns, PlainNs, GUEST_IP, GUEST_MAC, HOST_IP, TAP_PREFIX};

/// The stand-in (see the module documentation). Stops its servers and
/// deletes both namespaces on drop.
pub struct LinuxPeer {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    host: Netns,
    guest: PlainNs,
}

impl LinuxPeer {
    pub fn start() -> LinuxPeer {
        let host = Netns::create();
        let guest = PlainNs::create();
        // Swap the TAP for a veth pair of the same name.
        host.ip(&["link", "del", host.tap()]);
        host.ip(&["link", "add", host.tap(), "type", "veth", "peer", "name", "eth0", "netns", guest.name()]);
        host.ip(&["addr", "add", &format!("{HOST_IP}/{TAP_PREFIX}"), "dev", host.tap()]);
        host.ip(&["link", "set", host.tap(), "up"]);
        guest.ip(&["link", "set", "eth0", "address", GUEST_MAC]);
        guest.ip(&["addr", "add", &format!("{GUEST_IP}/{TAP_PREFIX}"), "dev", "eth0"]);
        // Jumbo-capable far end: a veth drops frames over its peer's MTU at
        // send time (ENOBUFS), where a TAP hands anything to QEMU.
        guest.ip(&["link", "set", "eth0", "mtu", "9000"]);
        guest.ip(&["link", "set", "eth0", "up"]);

        let stop = Arc::new(AtomicBool::new(false));
        let mut peer = LinuxPeer { stop, threads: Vec::new(), host, guest };
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        for svc in [Service::Echo, Service::Discard, Service::Chargen, Service::UdpEcho] {
            let name = peer.guest.name().to_string();
            let stop = peer.stop.clone();
            let tx = tx.clone();
            peer.threads.push(std::thread::spawn(move || {
                if let Err(e) = enter_netns(&name) {
                    let _ = tx.send(Err(e));
                    return;
                }
                serve(svc, stop, tx);
            }));
        }
        for _ in 0..4 {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("stand-in server: {e}"),
                Err(e) => panic!("stand-in server did not start: {e}"),
            }
        }
        peer
    }

    /// The test namespace (the "host" side, as with a real VM).
    pub fn host(&self) -> &Netns {
        &self.host
    }

    /// The stand-in guest's namespace.
    pub fn guest_ns(&self) -> &str {
        self.guest.name()
    }
}

impl Drop for LinuxPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Then `host` (veth pair and namespace) and `guest` drop.
    }
}

#[derive(Clone, Copy)]
enum Service {
    Echo,
    Discard,
    Chargen,
    UdpEcho,
}

const POLL: Duration = Duration::from_millis(100);

fn serve(svc: Service, stop: Arc<AtomicBool>, ready: std::sync::mpsc::Sender<Result<(), String>>) {
    if let Service::UdpEcho = svc {
        let s = match UdpSocket::bind("0.0.0.0:7") {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(format!("udp 7: {e}")));
                return;
            }
        };
        let _ = s.set_read_timeout(Some(POLL));
        let _ = ready.send(Ok(()));
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        }
        return;
    }
    let port = match svc {
        Service::Echo => 7,
        Service::Discard => 9,
        _ => 19,
    };
    let l = match TcpListener::bind(("0.0.0.0", port)).and_then(|l| l.set_nonblocking(true).map(|_| l)) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("tcp {port}: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Wait for a connection without spinning, waking up to check `stop`.
        let mut pfd = libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, POLL.as_millis() as i32) };
        match l.accept() {
            Ok((s, _)) => {
                let stop = stop.clone();
                conns.push(std::thread::spawn(move || connection(svc, s, stop)));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => std::thread::sleep(POLL),
        }
        conns.retain(|c| !c.is_finished());
    }
    for c in conns {
        let _ = c.join();
    }
}

fn connection(svc: Service, mut s: TcpStream, stop: Arc<AtomicBool>) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(POLL));
    let _ = s.set_write_timeout(Some(POLL));
    let mut buf = vec![0u8; 65536];
    let pattern: Vec<u8> = (0..65536u32).map(|i| b' ' + (i % 95) as u8).collect();
    let mut off = 0;
    while !stop.load(Ordering::Relaxed) {
        match svc {
            Service::Chargen => match s.write(&pattern[off..]) {
                Ok(0) => return,
                Ok(n) => off = (off + n) % 95,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            },
            _ => match s.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if let Service::Echo = svc {
                        // Blocking-ish write of everything, still watching `stop`.
                        let mut w = 0;
                        while w < n {
                            match s.write(&buf[w..n]) {
                                Ok(k) => w += k,
                                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                                    if stop.load(Ordering::Relaxed) {
                                        return;
                                    }
                                }
                                Err(_) => return,
                            }
                        }
                    }
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            },
        }
    }
}
