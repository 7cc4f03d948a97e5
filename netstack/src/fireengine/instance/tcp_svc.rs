//! The in-kernel TCP services of a FireEngine instance — echo (7),
//! discard (9), chargen (19) — on the socket handles of
//! [`crate::fireengine::tcp_pcb`]: a listener whose upcall accepts, and
//! per connection an upcall (inside its squeue) that moves what it can.
//! Echo reads only as much as it can send back, so a peer that does not
//! read its echoes closes our window and is flow controlled, never
//! buffered without bound.
//!
//! A service's [`TcpService::run`] may be re-entered: a socket call made
//! from outside the conn's squeue (the accepting listener's upcall runs in
//! the listener's squeue) can enter the conn's squeue inline, and the
//! TCB's events then call the conn's upcall — `run` again — on the same
//! CPU. The second call only marks that there is more to do, and the run
//! already going loops once more; two CPUs calling at once are serialized
//! the same way.

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
    /// A `run` is going (see the module doc).
    running: AtomicBool,
    /// `run` was called while one was going: it goes round once more.
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

    /// Moves what can be moved now (from the conn's upcall, or once when
    /// accepted); re-entrant (see the module doc).
    pub fn run(&self) {
        self.again.store(true, Ordering::Release);
        while !self.running.swap(true, Ordering::AcqRel) {
            while self.again.swap(false, Ordering::AcqRel) {
                self.run_once();
            }
            self.running.store(false, Ordering::Release);
            // A call that came after the last check but before `running`
            // was cleared left `again` set and returned: go on for it.
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
                        let mut pos = self.chargen_pos.lock();
                        // Bytes refused are made again from `pos` later: the
                        // vector itself may go (no copy).
                        let buf = chargen_bytes(*pos, room);
                        if let Ok(sent) = self.sock.send_vec(buf) {
                            // Only what was taken: the stream has no gap.
                            *pos = pos.wrapping_add(sent);
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
        self.services_started();
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
/// character further along the 95 printable ones, CR LF ended. It repeats
/// after 95 lines ([`CHARGEN_PERIOD`] bytes), so it is built once and
/// copied from by slices (a division per byte cost most of a guest CPU on
/// a bulk send under TCG).
const CHARGEN_LINE: usize = 74;
const CHARGEN_PERIOD: usize = 95 * CHARGEN_LINE;
static CHARGEN: [u8; CHARGEN_PERIOD] = chargen_table();

const fn chargen_table() -> [u8; CHARGEN_PERIOD] {
    let mut t = [0u8; CHARGEN_PERIOD];
    let mut i = 0;
    while i < CHARGEN_PERIOD {
        let (line, col) = (i / CHARGEN_LINE, i % CHARGEN_LINE);
        t[i] = match col {
            72 => b'\r',
            73 => b'\n',
            _ => b' ' + ((line + col) % 95) as u8,
        };
        i += 1;
    }
    t
}

/// `n` bytes of the stream from byte `pos` on (`pos` counts bytes of the
/// endless stream already sent), copied from the table (never zeroed
/// first).
fn chargen_bytes(pos: usize, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    let mut at = pos % CHARGEN_PERIOD;
    while v.len() < n {
        let k = (CHARGEN_PERIOD - at).min(n - v.len());
        v.extend_from_slice(&CHARGEN[at..at + k]);
        at = 0;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargen_is_rfc_864s_pattern_from_any_offset() {
        let slow = |i: usize| match i % CHARGEN_LINE {
            72 => b'\r',
            73 => b'\n',
            col => b' ' + ((i / CHARGEN_LINE + col) % 95) as u8,
        };
        let mut pos = 0;
        let mut all = Vec::new();
        for size in [1, 73, 74, 7029, 7031, 20_000, 3, 0] {
            let b = chargen_bytes(pos, size);
            assert_eq!(b.len(), size);
            pos += size;
            all.extend_from_slice(&b);
        }
        assert_eq!(pos, all.len());
        for (i, &b) in all.iter().enumerate() {
            assert_eq!(b, slow(i), "byte {i}");
        }
        assert_eq!(&all[..74], b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n");
    }
}
