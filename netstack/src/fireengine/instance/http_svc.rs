//! The HTTP service of a FireEngine instance (port 80, disabled until
//! `svcadm enable http`): the protocol core of [`crate::services::http`]
//! on the socket handles of [`crate::fireengine::tcp_pcb`], run like the
//! services of [`super::tcp_svc`] — from each conn's upcall inside its
//! squeue, re-entrant, and from the instance's `poll_us` for timeouts.
//!
//! * Flow control: a response is taken from the core only as far as the
//!   socket's send room goes ([`HttpConn::output`]); `/bytes/N` is made as
//!   room opens. Input is read only as far as the core has room, so a
//!   client pipelining faster than it reads sees TCP's window close.
//! * At most [`MAX_HTTP_CONNS`] connections per instance; the next ones,
//!   up to twice that, get a `503` and are closed, and beyond that they
//!   are reset; both are counted as `refused`.
//! * Timeouts (`408`, idle close, a client not reading) run on the
//!   instance's clock from `poll_us`.
//! * The status pages: the instance's own part (addresses, services,
//!   `netstat -s` counters) is read live by the request; the MAC layer's
//!   (`dlstat`, `flowstat`: `netstack` may call `mac`, the reverse never
//!   happens) is taken outside any squeue, on the instance's poll, once a
//!   second while the service is enabled, and a request inside a squeue
//!   only copies that snapshot — so it never takes a MAC lock a lane may
//!   hold around the squeue. The link counters are thus up to a second
//!   old.
//! * `svcadm disable http` closes the listener: new connections are
//!   refused with a RST; established ones are left to finish (they end
//!   on their own timeouts at the latest).

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arbalest_mac::sync::Mutex;

use super::Core;
use crate::fireengine::tcp::state::State;
use crate::fireengine::tcp_pcb::TcpSocket;
use crate::services::http::{HTTP_PORT, HttpConn, HttpCounters, StatusSource, json, pages};

/// Most connections served at once per instance.
pub const MAX_HTTP_CONNS: usize = 256;
/// Most bytes one upcall moves each way per round.
const CHUNK: usize = 64 * 1024;
/// How long a closed connection may linger for its peer's FIN, ms.
const LINGER_MS: u64 = 10_000;
/// How often the status pages are rebuilt, ms.
const REFRESH_MS: u64 = 1000;

/// The MAC layer's part of the status pages as last taken.
#[derive(Default, Clone)]
pub struct Pages {
    dlstat_text: String,
    flowstat_text: String,
    dlstat: String,
    flowstat: String,
}

/// What a request sees: the instance's own state live (its counters and
/// tables are read without any lock a lane holds), the MAC layer's from
/// the snapshot.
struct Live<'a> {
    core: &'a Core,
    mac: &'a Pages,
}

impl StatusSource for Live<'_> {
    fn status_text(&self) -> String {
        self.core.status_text(self.core.now_ms(), self.mac)
    }
    fn status_json(&self) -> String {
        self.core.status_json(self.core.now_ms(), self.mac)
    }
    fn dlstat_json(&self) -> String {
        self.mac.dlstat.clone()
    }
    fn flowstat_json(&self) -> String {
        self.mac.flowstat.clone()
    }
}

/// The instance's HTTP service: its listener while enabled, its
/// connections, counters and page snapshot.
#[derive(Default)]
pub struct HttpState {
    listener: Mutex<Option<TcpSocket>>,
    conns: Mutex<Vec<Arc<HttpService>>>,
    /// Its counters.
    pub counters: Arc<HttpCounters>,
    pages: Mutex<Arc<Pages>>,
    refreshed_ms: AtomicU64,
}

impl HttpState {
    pub(super) fn listener_is_some(&self) -> bool {
        self.listener.lock().is_some()
    }
}

/// One served connection.
pub struct HttpService {
    sock: TcpSocket,
    conn: Mutex<HttpConn>,
    /// Bytes the core produced that the socket did not take.
    pending: Mutex<Vec<u8>>,
    core: Weak<Core>,
    eof_seen: AtomicBool,
    /// When the write side was shut (ms; 0: not yet).
    shut_ms: AtomicU64,
    running: AtomicBool,
    again: AtomicBool,
    done: AtomicBool,
}

impl HttpService {
    /// Moves what can be moved; re-entrant as [`super::tcp_svc::TcpService::run`].
    fn run(&self) {
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
        let Some(core) = self.core.upgrade() else { return };
        let now = core.now_ms();
        let snap = core.svc.http.pages.lock().clone();
        let pages = Live { core: &core, mac: &snap };
        let ctr = &*core.svc.http.counters;
        let mut c = self.conn.lock();
        let mut pending = self.pending.lock();
        // Timeouts first: a `408` goes out in this same run.
        c.tick(now, ctr);
        for _ in 0..32 {
            let mut moved = false;
            // Out first: what the socket refused last time.
            if !pending.is_empty() {
                match self.sock.send(&pending) {
                    Ok(n) if n > 0 => {
                        pending.drain(..n);
                        moved = true;
                    }
                    _ => {}
                }
            }
            let room = c.input_room().min(CHUNK);
            if room > 0
                && let Ok(v) = self.sock.recv_vec(room)
                && !v.is_empty()
            {
                c.feed(&v, now, &pages, ctr);
                moved = true;
            }
            if self.sock.peer_closed() && !self.eof_seen.swap(true, Ordering::AcqRel) {
                c.peer_finished(now, &pages, ctr);
                moved = true;
            }
            if pending.is_empty() {
                let room = self.sock.send_room().min(CHUNK);
                if room > 0 {
                    let out = c.output(room, now, &pages, ctr);
                    if !out.is_empty() {
                        moved = true;
                        match self.sock.send(&out) {
                            Ok(n) if n < out.len() => pending.extend_from_slice(&out[n..]),
                            Ok(_) => {}
                            Err(_) => {
                                self.done.store(true, Ordering::Release);
                                return;
                            }
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
        if c.should_abort() {
            self.sock.abort();
            self.done.store(true, Ordering::Release);
            return;
        }
        if c.should_close() && pending.is_empty() && self.shut_ms.load(Ordering::Acquire) == 0 {
            let _ = self.sock.shutdown_write();
            self.shut_ms.store(now.max(1), Ordering::Release);
        }
        // Done once both sides finished (TCP keeps TIME_WAIT itself, the
        // slot is free at once), the conn is gone, or the peer did not
        // finish within the linger time after we did.
        let shut = self.shut_ms.load(Ordering::Acquire);
        if self.sock.state() == State::Closed
            || self.sock.error().is_some()
            || (shut != 0 && (self.sock.peer_closed() || now.saturating_sub(shut) >= LINGER_MS))
        {
            self.done.store(true, Ordering::Release);
        }
    }
}

impl Core {
    /// Starts the HTTP listener (port 80); `Ok` if it runs already.
    pub(super) fn http_enable(&self) -> Result<(), crate::stack::NetError> {
        let h = &self.svc.http;
        let mut l = h.listener.lock();
        if l.is_some() {
            return Ok(());
        }
        let listener = self.tcp_listen(core::net::Ipv4Addr::UNSPECIFIED, HTTP_PORT, 128)?;
        let me = self.me.clone();
        let lconn = Arc::downgrade(listener.conn());
        listener.set_upcall(Some(Arc::new(move || {
            let (Some(core), Some(lc)) = (me.upgrade(), lconn.upgrade()) else { return };
            while let Some(conn) = crate::fireengine::tcp_pcb::TcpHost::tcp_accept(&*core, &lc) {
                core.http_accept(conn);
            }
        })));
        *l = Some(listener);
        drop(l);
        self.http_refresh(self.now_ms());
        Ok(())
    }

    /// Closes the HTTP listener (established connections finish).
    pub(super) fn http_disable(&self) {
        let l = self.svc.http.listener.lock().take();
        drop(l);
    }

    /// Whether the HTTP listener is open.
    pub(super) fn http_enabled(&self) -> bool {
        self.svc.http.listener_is_some()
    }

    fn http_accept(&self, conn: crate::fireengine::conn::ConnRef<crate::fireengine::tcp_pcb::TcpPcb>) {
        let h = &self.svc.http;
        let ctr = &*h.counters;
        let host: Weak<dyn crate::fireengine::tcp_pcb::TcpHost> = self.me.clone();
        let sock = TcpSocket::new(conn, host);
        let now = self.now_ms();
        let n = h.conns.lock().len();
        let c = if n >= 2 * MAX_HTTP_CONNS {
            ctr.refused.fetch_add(1, Ordering::Relaxed);
            sock.abort();
            return;
        } else if n >= MAX_HTTP_CONNS {
            ctr.refused.fetch_add(1, Ordering::Relaxed);
            HttpConn::refused(now, ctr)
        } else {
            ctr.conns.fetch_add(1, Ordering::Relaxed);
            HttpConn::new(now)
        };
        let svc = Arc::new(HttpService {
            sock,
            conn: Mutex::new(c),
            pending: Mutex::new(Vec::new()),
            core: self.me.clone(),
            eof_seen: AtomicBool::new(false),
            shut_ms: AtomicU64::new(0),
            running: AtomicBool::new(false),
            again: AtomicBool::new(false),
            done: AtomicBool::new(false),
        });
        let sw = Arc::downgrade(&svc);
        svc.sock.set_upcall(Some(Arc::new(move || {
            if let Some(s) = sw.upgrade() {
                s.run();
            }
        })));
        svc.run();
        h.conns.lock().push(svc);
        ctr.active.store(h.conns.lock().len() as u64, Ordering::Relaxed);
    }

    /// The HTTP row of `netstat -s`'s service table, once it was enabled.
    pub(super) fn http_service_stats(&self) -> Option<crate::stack::ServiceStats> {
        let c = &*self.svc.http.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (self.http_enabled() || l(&c.conns) > 0 || l(&c.refused) > 0).then(|| crate::stack::ServiceStats {
            name: "http",
            proto: crate::stack::Proto::Tcp,
            port: HTTP_PORT,
            accepted: l(&c.conns),
            refused: l(&c.refused),
            active: l(&c.active),
            bytes_in: l(&c.bytes_in),
            bytes_out: l(&c.bytes_out),
        })
    }

    /// From `poll_us`: timeouts, finished connections, the page snapshot.
    pub(super) fn http_poll(&self, now_ms: u64) {
        let h = &self.svc.http;
        let conns: Vec<Arc<HttpService>> = h.conns.lock().clone();
        if conns.is_empty() && !self.http_enabled() {
            return;
        }
        for c in &conns {
            c.run();
        }
        let done: Vec<Arc<HttpService>> = {
            let mut v = h.conns.lock();
            let (d, keep): (Vec<_>, Vec<_>) = v.drain(..).partition(|s| s.done.load(Ordering::Acquire));
            *v = keep;
            h.counters.active.store(v.len() as u64, Ordering::Relaxed);
            d
        };
        drop(done);
        if self.http_enabled() && now_ms.saturating_sub(h.refreshed_ms.load(Ordering::Relaxed)) >= REFRESH_MS {
            self.http_refresh(now_ms);
        }
    }

    /// Rebuilds the status pages (outside any squeue).
    fn http_refresh(&self, now_ms: u64) {
        let p = Pages {
            dlstat_text: mac_text(&["dlstat"]),
            flowstat_text: mac_text(&["flowstat"]),
            dlstat: mac_json(&["dlstat", "-p", "-o", "link,ipkts,rbytes,opkts,obytes"], &["link", "ipkts", "rbytes", "opkts", "obytes"]),
            flowstat: mac_json(
                &["flowstat", "-p", "-o", "flow,ipkts,rbytes,ierrs,opkts,obytes,oerrs,drops"],
                &["flow", "ipkts", "rbytes", "ierrs", "opkts", "obytes", "oerrs", "drops"],
            ),
        };
        *self.svc.http.pages.lock() = Arc::new(p);
        self.svc.http.refreshed_ms.store(now_ms, Ordering::Relaxed);
    }

    fn mibs(&self) -> Vec<(&'static str, Vec<(&'static str, u64)>)> {
        self.ip_mib.ip_default_ttl.store(u64::from(self.sys.tunables.ttl()), Ordering::Relaxed);
        alloc::vec![
            ("IPv4", self.ip_mib.fields().collect()),
            ("ICMPv4", self.icmp_mib.fields().collect()),
            ("UDP", self.udp_mib.fields().collect()),
            ("TCP", self.tcp_mib.fields().collect()),
        ]
    }

    fn status_text(&self, now_ms: u64, mac: &Pages) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Arbalest: FireEngine instance on {}", self.link.name());
        let _ = writeln!(s, "uptime: {}.{:03} s", now_ms / 1000, now_ms % 1000);
        let _ = writeln!(s, "\nADDROBJ           ADDR");
        for a in self.addrs.read().iter() {
            let _ = writeln!(s, "{:<17} {}", a.name, a.net);
        }
        let _ = writeln!(s, "\n$ dlstat");
        s.push_str(&mac.dlstat_text);
        let _ = writeln!(s, "\n$ flowstat");
        s.push_str(&mac.flowstat_text);
        let _ = writeln!(s, "\n$ svcs");
        for v in self.services_list() {
            let _ = writeln!(s, "{:<9} {}", if v.online { "online" } else { "disabled" }, v.fmri);
        }
        let _ = writeln!(s, "\n$ netstat -s");
        for (sec, fields) in self.mibs() {
            let _ = writeln!(s, "{sec}");
            for (k, v) in fields {
                let _ = writeln!(s, "    {k:<24}={v:>12}");
            }
        }
        s
    }

    fn status_json(&self, now_ms: u64, mac: &Pages) -> String {
        let mut s = String::from("{");
        json::str_field(&mut s, true, "system", "Arbalest");
        json::str_field(&mut s, false, "stack", "fireengine");
        json::str_field(&mut s, false, "interface", self.link.name());
        json::num(&mut s, false, "uptime_ms", now_ms);
        json::key(&mut s, false, "addresses");
        s.push('[');
        for (i, a) in self.addrs.read().iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('{');
            json::str_field(&mut s, true, "addrobj", &a.name);
            json::str_field(&mut s, false, "addr", &alloc::format!("{}", a.net));
            s.push('}');
        }
        s.push(']');
        json::key(&mut s, false, "links");
        s.push_str(&mac.dlstat);
        json::key(&mut s, false, "flows");
        s.push_str(&mac.flowstat);
        json::key(&mut s, false, "services");
        s.push('[');
        for (i, v) in self.services_list().iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('{');
            json::str_field(&mut s, true, "fmri", v.fmri);
            json::str_field(&mut s, false, "state", if v.online { "online" } else { "disabled" });
            for (k, n) in &v.counters {
                json::num(&mut s, false, k, *n);
            }
            s.push('}');
        }
        s.push(']');
        json::key(&mut s, false, "netstat");
        s.push('{');
        for (i, (sec, fields)) in self.mibs().into_iter().enumerate() {
            json::key(&mut s, i == 0, sec);
            s.push('{');
            for (j, (k, v)) in fields.into_iter().enumerate() {
                json::num(&mut s, j == 0, k, v);
            }
            s.push('}');
        }
        s.push_str("}}");
        s
    }
}

/// The MAC layer's admin commands never wait here (no interval).
struct NoWait;
impl arbalest_mac::admin::AdminEnv for NoWait {
    fn sleep_ms(&self, _ms: u64) {}
    fn interrupted(&self) -> bool {
        true
    }
}

/// `dlstat ...` or `flowstat ...` as the shell prints it.
fn mac_text(argv: &[&str]) -> String {
    let mut s = String::new();
    match argv[0] {
        "dlstat" => {
            let links = arbalest_mac::link::datalinks();
            arbalest_mac::admin::dlstat(argv, &links, &mut s, &NoWait);
        }
        _ => {
            arbalest_mac::admin::flowstat(argv, &mut s, &NoWait);
        }
    }
    s
}

/// A parseable (`-p -o`) run of `dlstat`/`flowstat` as a JSON array.
fn mac_json(argv: &[&str], fields: &[&str]) -> String {
    let text = mac_text(argv);
    let mut s = String::new();
    pages::parseable_to_json(&mut s, fields, &text);
    s
}
