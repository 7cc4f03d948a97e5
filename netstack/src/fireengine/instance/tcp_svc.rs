//! The in-kernel TCP services of a FireEngine instance — echo (7),
//! discard (9), chargen (19) — on the socket handles of
//! [`crate::fireengine::tcp_pcb`]: a listener whose upcall accepts, and
//! per connection an upcall (inside its squeue) that moves what it can.
//! Echo reads only as much as it can send back, so a peer that does not
//! read its echoes closes our window and is flow controlled, never
//! buffered without bound.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arbalest_mac::sync::Mutex;

use super::Core;
use crate::fireengine::tcp::state::State;
use crate::fireengine::tcp_pcb::TcpSocket;

/// Which service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvcKind {
    /// RFC 862.
    Echo,
    /// RFC 863.
    Discard,
    /// RFC 864.
    Chargen,
}

impl SvcKind {
    /// Its port.
    pub fn port(self) -> u16 {
        match self {
            SvcKind::Echo => 7,
            SvcKind::Discard => 9,
            SvcKind::Chargen => 19,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            SvcKind::Echo => "echo",
            SvcKind::Discard => "discard",
            SvcKind::Chargen => "chargen",
        }
    }
}

/// A service's counters.
#[derive(Default)]
pub struct SvcCounters {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
}

/// One served connection.
pub struct TcpService {
    kind: SvcKind,
    sock: TcpSocket,
    pending: Mutex<Vec<u8>>,
    chargen_pos: Mutex<usize>,
    shut: AtomicBool,
    /// A thread is inside [`TcpService::run`].
    running: AtomicBool,
    /// [`TcpService::run`] was asked for while a thread was inside it.
    again: AtomicBool,
    /// Finished: the instance drops it.
    pub done: AtomicBool,
    counters: Weak<SvcCounters>,
}

/// Most bytes one upcall moves.
const CHUNK: usize = 64 * 1024;

impl TcpService {
    /// Serves `sock`.
    pub fn new(kind: SvcKind, sock: TcpSocket, counters: Weak<SvcCounters>) -> Arc<TcpService> {
        Arc::new(TcpService {
            kind,
            sock,
            pending: Mutex::new(Vec::new()),
            chargen_pos: Mutex::new(0),
            shut: AtomicBool::new(false),
            running: AtomicBool::new(false),
            again: AtomicBool::new(false),
            done: AtomicBool::new(false),
            counters,
        })
    }

    /// Moves what can be moved now (from the upcall, inside the squeue).
    ///
    /// Re-entrant: a socket call made from here may run the conn's squeue
    /// inline (the accept upcall runs in the listener's squeue, the conn
    /// may be on another one) and so call this again through the socket's
    /// upcall, or another CPU's upcall may call it meanwhile. Such a call
    /// only asks the thread inside to go round once more, so no lock is
    /// ever taken twice (it was: `pending` twice on one CPU, a squeue
    /// held forever, `net_fe_tcp_cycles`).
    pub fn run(&self) {
        self.again.store(true, Ordering::Release);
        while !self.running.swap(true, Ordering::AcqRel) {
            while self.again.swap(false, Ordering::AcqRel) {
                self.run_once();
            }
            self.running.store(false, Ordering::Release);
            if !self.again.load(Ordering::Acquire) {
                break;
            }
        }
    }

    fn run_once(&self) {
        let c = self.counters.upgrade();
        let count = |f: &dyn Fn(&SvcCounters)| {
            if let Some(c) = &c {
                f(c);
            }
        };
        match self.kind {
            SvcKind::Echo => {
                let mut pending = self.pending.lock();
                for _ in 0..16 {
                    if !pending.is_empty() {
                        match self.sock.send(&pending) {
                            Ok(n) => {
                                count(&|c| {
                                    c.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                                });
                                pending.drain(..n);
                            }
                            Err(_) => break,
                        }
                        if !pending.is_empty() {
                            break;
                        }
                    }
                    let room = self.sock.send_room().min(CHUNK);
                    if room == 0 {
                        break;
                    }
                    match self.sock.recv_vec(room) {
                        Ok(v) if !v.is_empty() => {
                            count(&|c| {
                                c.bytes_in.fetch_add(v.len() as u64, Ordering::Relaxed);
                            });
                            *pending = v;
                        }
                        _ => break,
                    }
                }
                if pending.is_empty() && self.sock.peer_closed() && !self.shut.swap(true, Ordering::AcqRel) {
                    let _ = self.sock.shutdown_write();
                }
            }
            SvcKind::Discard => {
                while let Ok(v) = self.sock.recv_vec(CHUNK) {
                    if v.is_empty() {
                        break;
                    }
                    count(&|c| {
                        c.bytes_in.fetch_add(v.len() as u64, Ordering::Relaxed);
                    });
                }
                if self.sock.peer_closed() && !self.shut.swap(true, Ordering::AcqRel) {
                    let _ = self.sock.shutdown_write();
                }
            }
            SvcKind::Chargen => {
                // Discard what arrives; send the pattern while there is room.
                while let Ok(v) = self.sock.recv_vec(CHUNK) {
                    if v.is_empty() {
                        break;
                    }
                }
                if self.sock.peer_closed() {
                    if !self.shut.swap(true, Ordering::AcqRel) {
                        let _ = self.sock.shutdown_write();
                    }
                } else {
                    let room = self.sock.send_room().min(CHUNK);
                    if room > 0 {
                        let mut buf = alloc::vec![0u8; room];
                        let mut pos = self.chargen_pos.lock();
                        let n = chargen_fill(&mut buf, &mut pos);
                        if let Ok(sent) = self.sock.send(&buf[..n]) {
                            count(&|c| {
                                c.bytes_out.fetch_add(sent as u64, Ordering::Relaxed);
                            });
                        }
                    }
                }
            }
        }
        if self.sock.state() == State::Closed || self.sock.error().is_some() {
            self.done.store(true, Ordering::Release);
        }
    }
}

impl Core {
    /// Starts the TCP service `kind` on its port.
    pub(super) fn start_tcp_service(&self, kind: SvcKind) -> Result<(), crate::stack::NetError> {
        let listener = self.tcp_listen(core::net::Ipv4Addr::UNSPECIFIED, kind.port(), 128)?;
        let counters = Arc::new(SvcCounters::default());
        let me = self.me.clone();
        let lconn = Arc::downgrade(listener.conn());
        let cw = Arc::downgrade(&counters);
        listener.set_upcall(Some(Arc::new(move || {
            let (Some(core), Some(lc)) = (me.upgrade(), lconn.upgrade()) else { return };
            while let Some(conn) = crate::fireengine::tcp_pcb::TcpHost::tcp_accept(&*core, &lc) {
                let host: Weak<dyn crate::fireengine::tcp_pcb::TcpHost> = core.me.clone();
                let svc = TcpService::new(kind, TcpSocket::new(conn, host), cw.clone());
                if let Some(c) = cw.upgrade() {
                    c.accepted.fetch_add(1, Ordering::Relaxed);
                }
                let sw = Arc::downgrade(&svc);
                svc.sock.set_upcall(Some(Arc::new(move || {
                    if let Some(s) = sw.upgrade() {
                        s.run();
                    }
                })));
                svc.run();
                core.tcp_service_conns.lock().push(svc);
            }
        })));
        self.tcp_services.lock().push((kind, listener, counters));
        Ok(())
    }

    /// Drops the finished service connections.
    pub(super) fn reap_tcp_services(&self) {
        let done: Vec<Arc<TcpService>> = {
            let mut v = self.tcp_service_conns.lock();
            let (d, keep): (Vec<_>, Vec<_>) = v.drain(..).partition(|s| s.done.load(Ordering::Acquire));
            *v = keep;
            d
        };
        drop(done);
    }
}

/// RFC 864's pattern: lines of 72 printable characters, each starting one
/// character further along the 95 printable ones, CR LF ended. `pos`
/// counts bytes of the endless stream already sent.
fn chargen_fill(buf: &mut [u8], pos: &mut usize) -> usize {
    const LINE: usize = 74;
    for b in buf.iter_mut() {
        let line = *pos / LINE;
        let col = *pos % LINE;
        *b = match col {
            72 => b'\r',
            73 => b'\n',
            _ => b' ' + ((line + col) % 95) as u8,
        };
        *pos = pos.wrapping_add(1);
    }
    buf.len()
}
