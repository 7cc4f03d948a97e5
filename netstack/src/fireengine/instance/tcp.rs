//! The instance's TCP: the receive walk's TCP arm (classify into a
//! connection's squeue, or a listener's for a SYN, or answer with a RST),
//! the squeue entries that run a [`Tcb`], what follows every TCB call
//! (segments out through IP, received bytes up to the socket side,
//! upcalls, the conn leaving the classifier when it closes), listeners
//! with illumos' q0/q, active opens, and the timer scan that fires each
//! conn's due timers into its squeue.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use core::sync::atomic::Ordering;

use super::{Core, FeEntry, IPV4_HDR_MIN};
use crate::fireengine::conn::{Conn, ConnRef, ConnTuple, IPPROTO_TCP};
use crate::fireengine::ip::mib::bump;
use crate::fireengine::squeue::SqMode;
use crate::fireengine::tcp::cc::CcAlgo;
use crate::fireengine::tcp::config::TcbConfig;
use crate::fireengine::tcp::rto::RtoConfig;
use crate::fireengine::tcp::segment::{SegIn, SegOut, reset_for};
use crate::fireengine::tcp::seq::SeqNum;
use crate::fireengine::tcp::state::State;
use crate::fireengine::tcp::tcb::{Tcb, TcpCtx};
use crate::fireengine::tcp_conn::listen_q::{ListenConfig, ListenQueue, SynDecision};
use crate::fireengine::tcp_conn::tuple::FourTuple;
use crate::fireengine::tcp_pcb::{TcpConn, TcpHost, TcpKind, TcpOp, TcpPcb, TcpSocket};
use crate::fireengine::tunables::{TcpCc, TcpTunables};
use crate::fireengine::udp::CachedRoute;
use crate::fireengine::wire::ipv4::Ipv4Header;
use crate::fireengine::wire::tcp::{TcpFlags, TcpHeader};
use crate::stack::{NetError, TcpEndpoint};

/// The TCP squeue entries.
pub enum TcpEntry {
    /// A segment for a connection.
    Input { conn: ConnRef<TcpPcb>, src: Ipv4Addr, hdr: TcpHeader, data: Vec<u8> },
    /// A SYN for a listener (from `src`, to our `dst`).
    Syn { listener: ConnRef<TcpPcb>, src: Ipv4Addr, dst: Ipv4Addr, hdr: TcpHeader },
    /// An eager completed its handshake: move it to its listener's q.
    EagerDone { listener: ConnRef<TcpPcb>, eager: ConnRef<TcpPcb> },
    /// A user's call.
    User { conn: ConnRef<TcpPcb>, op: TcpOp },
    /// The conn's timers are due.
    Timer { conn: ConnRef<TcpPcb> },
}

/// The TCB configuration from the tunables and the link.
pub(super) fn tcb_config(t: &TcpTunables, mtu: usize) -> TcbConfig {
    let mss_local = mtu.saturating_sub(40).min(usize::from(u16::MAX)) as u16;
    TcbConfig {
        mss_local,
        mss_def: t.mss_def_ipv4.min(u32::from(mss_local)) as u16,
        mss_min: t.mss_min.min(u32::from(mss_local)) as u16,
        snd_buf: t.send_buf,
        rcv_buf: t.recv_buf,
        max_buf: t.max_buf,
        rto: RtoConfig {
            initial_ms: t.rexmit_initial_ms.clamp(t.rexmit_min_ms, t.rexmit_max_ms.max(t.rexmit_min_ms)),
            min_ms: t.rexmit_min_ms,
            max_ms: t.rexmit_max_ms,
        },
        dack_interval_ms: t.deferred_ack_interval_ms,
        dacks_max: t.deferred_acks_max.max(1),
        time_wait_ms: t.time_wait_interval_ms,
        fin_wait_2_ms: t.fin_wait_2_flush_interval_ms,
        keepalive_ms: t.keepalive_interval_ms,
        keepalive_abort_ms: t.keepalive_abort_interval_ms,
        abort_ms: t.ip_abort_interval_ms,
        abort_conn_ms: t.ip_abort_cinterval_ms,
        sack_accept: t.sack.accepts(),
        sack_offer: t.sack.offers(),
        wscale: t.wscale_always,
        tstamp: t.tstamp_always || (t.tstamp_if_wscale && t.wscale_always),
        cc: match t.congestion_control {
            TcpCc::NewReno => CcAlgo::NewReno,
            TcpCc::Cubic => CcAlgo::Cubic,
        },
        cwnd_max: t.cwnd_max,
        dupack_thresh: t.dupack_fast_retransmit.max(1),
        nodelay: false,
        keepalive: false,
        reass: Default::default(),
    }
}

impl TcpEntry {
    /// Runs the entry (inside the conn's squeue).
    pub(super) fn process(self, core: &Arc<Core>) {
        match self {
            TcpEntry::Input { conn, src, hdr, data } => core.tcp_conn_input(&conn, src, &hdr, &data),
            TcpEntry::Syn { listener, src, dst, hdr } => core.tcp_listen_syn(&listener, src, dst, &hdr),
            TcpEntry::EagerDone { listener, eager } => core.tcp_eager_done(&listener, eager),
            TcpEntry::User { conn, op } => core.tcp_user(&conn, op),
            TcpEntry::Timer { conn } => core.with_tcb(&conn, |t, ctx| t.on_timer(ctx)),
        }
    }
}

impl Core {
    fn tcp_now_us(&self) -> u64 {
        self.sys.env.now_ns() / 1000
    }

    /// A context for a TCB call at `now_us`, collecting into `out`.
    fn tcp_ctx<'a>(&'a self, now_us: u64, out: &'a mut Vec<SegOut>) -> TcpCtx<'a> {
        TcpCtx { now_us, out, mib: &self.tcp_mib, challenge: &self.tcp_challenge }
    }

    /// The ISN (RFC 6528) and the timestamp clock offset of a new
    /// connection `key` (ours first) at `now_us`.
    fn tcp_isn_for(&self, key: &FourTuple, now_us: u64) -> (SeqNum, u32) {
        let iss = SeqNum(self.tcp_isn.isn(key, now_us));
        let ts_offset = self.tcp_isn.offset(&FourTuple::new(key.remote, key.remote_port, key.local, key.local_port));
        (iss, ts_offset)
    }

    fn tcp_enter_entry(&self, sqp: u32, e: TcpEntry, mode: Option<SqMode>) -> Result<(), NetError> {
        let Some(core) = self.me.upgrade() else { return Err(NetError::NotConnected) };
        self.enter(sqp, FeEntry::Tcp { core, e }, mode)
    }

    /// The receive walk's TCP arm.
    pub(super) fn tcp_input(&self, hdr: &Ipv4Header, l4: &[u8], verified: bool, to_bcast: bool) {
        bump(&self.tcp_mib.in_segs);
        let (th, data) = match TcpHeader::parse(l4, hdr.src, hdr.dst, !verified) {
            Ok(v) => v,
            Err(_) => {
                bump(&self.tcp_mib.in_errs);
                return;
            }
        };
        bump(&self.ip_mib.ip_in_delivers);
        if to_bcast || !crate::config::is_unicast(hdr.src) {
            // TCP is unicast only (RFC 1122 4.2.3.10).
            bump(&self.tcp_mib.in_errs);
            return;
        }
        let key = ConnTuple::connected(IPPROTO_TCP, hdr.dst, th.dst_port, hdr.src, th.src_port);
        if let Some(conn) = self.tcp_classifier.lookup_connected(&key) {
            let sqp = conn.sqp();
            let e = TcpEntry::Input { conn, src: hdr.src, hdr: th, data: data.to_vec() };
            if self.tcp_enter_entry(sqp, e, Some(SqMode::Process)).is_err() {
                bump(&self.ip_mib.ip_in_discards);
            }
            return;
        }
        let syn = th.flags.contains(TcpFlags::SYN) && !th.flags.intersects(TcpFlags::ACK | TcpFlags::RST);
        if syn {
            if let Some(listener) = self.tcp_classifier.lookup_listener(hdr.dst, th.dst_port) {
                let sqp = listener.sqp();
                let e = TcpEntry::Syn { listener, src: hdr.src, dst: hdr.dst, hdr: th };
                if self.tcp_enter_entry(sqp, e, Some(SqMode::Process)).is_err() {
                    bump(&self.ip_mib.ip_in_discards);
                }
                return;
            }
        }
        // No conn: a RST (RFC 9293 3.10.7.1), never for a RST.
        bump(&self.tcp_mib.in_closed);
        let seg = SegIn::from_header(&th, data);
        if let Some(rst) = reset_for(&seg) {
            // At most `_rst_sent_rate` a second (the limit follows the
            // tunable from `poll_us`).
            if !self.tcp_rst_limit.allow(self.now_ms()) {
                return;
            }
            rst.count(&self.tcp_mib);
            self.tcp_send_raw(hdr.dst, th.dst_port, hdr.src, th.src_port, &rst, None);
        }
    }

    /// Sends one segment from `src:sport` to `dst:dport`.
    fn tcp_send_raw(&self, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, seg: &SegOut, route: Option<CachedRoute>) {
        let next_hop = match route {
            Some(r) => r.next_hop,
            None => match self.routes.read().resolve(dst) {
                Some(r) => r.next_hop,
                None => {
                    bump(&self.ip_mib.ip_out_no_routes);
                    return;
                }
            },
        };
        let h = seg.header(sport, dport);
        let hlen = h.header_len();
        if let Some(mss) = seg.lso_mss.filter(|_| IPV4_HDR_MIN + hlen + seg.data.len() > self.mtu) {
            self.tcp_lso_output(src, dst, &h, seg, mss, next_hop);
            return;
        }
        let mut buf = alloc::vec![0u8; hlen + seg.data.len()];
        buf[hlen..].copy_from_slice(&seg.data);
        let partial = IPV4_HDR_MIN + buf.len() <= self.mtu;
        let ok = if partial { h.emit_partial(&mut buf, src, dst) } else { h.emit(&mut buf, src, dst) };
        if ok.is_err() {
            return;
        }
        self.ip_output(src, dst, IPPROTO_TCP, &buf, next_hop, partial.then_some(16));
    }

    /// The conn's route to its peer (cached while the routing generation
    /// holds).
    fn tcp_route(&self, conn: &TcpConn) -> Option<CachedRoute> {
        self.cached_route(&conn.proto.route, conn.faddr())
    }

    /// Runs `f` on the conn's TCB, then everything that follows a TCB
    /// call (see the module doc). Inside the conn's squeue.
    pub(super) fn with_tcb(&self, conn: &ConnRef<TcpPcb>, f: impl FnOnce(&mut Tcb, &mut TcpCtx<'_>)) {
        let TcpKind::Conn(m) = &conn.proto.kind else { return };
        let mut out = Vec::new();
        let (events, received, acked, state, err, fin, deadline, stats);
        {
            let mut t = m.lock();
            let mut ctx = self.tcp_ctx(self.tcp_now_us(), &mut out);
            t.set_lso(self.lso_tcp4_max());
            f(&mut t, &mut ctx);
            events = t.take_events();
            received = t.take_received();
            acked = t.take_acked();
            state = t.state();
            err = t.error();
            fin = t.peer_closed();
            deadline = t.next_deadline();
            stats = (t.snd_wnd(), t.rcv_wnd(), t.send_queued() as u32);
        }
        let side = &conn.proto.sock;
        side.deliver(received);
        side.acked(acked);
        if fin {
            side.set_fin();
        }
        if let Some(e) = err {
            side.set_error(e);
        }
        side.set_state(state);
        side.swind.store(stats.0, Ordering::Relaxed);
        side.rwind.store(stats.1, Ordering::Relaxed);
        side.send_q.store(stats.2, Ordering::Relaxed);
        conn.proto.deadline_ms.store(deadline.unwrap_or(u64::MAX), Ordering::Release);
        if !out.is_empty() {
            let route = self.tcp_route(conn);
            let (src, sport, dst, dport) = (conn.laddr(), conn.lport(), conn.faddr(), conn.fport());
            if route.is_none() {
                bump(&self.ip_mib.ip_out_no_routes);
            } else {
                for s in &out {
                    self.tcp_send_raw(src, sport, dst, dport, s, route);
                }
            }
        }
        if events.established {
            let l = conn.proto.listener.lock().clone();
            if let Some((lw, _)) = l
                && let Some(listener) = lw.upgrade()
            {
                let sqp = listener.sqp();
                let _ = self.tcp_enter_entry(sqp, TcpEntry::EagerDone { listener, eager: conn.clone() }, None);
            }
        }
        if state == State::Closed {
            self.tcp_remove(conn);
        }
        if events.readable || events.writable || events.established || events.closed {
            side.wake();
        }
    }

    /// A closed conn leaves the classifier (and its listener, if an
    /// eager).
    fn tcp_remove(&self, conn: &ConnRef<TcpPcb>) {
        self.unhash(&self.tcp_classifier, conn);
        let l = conn.proto.listener.lock().take();
        if let Some((lw, id)) = l
            && let Some(listener) = lw.upgrade()
            && let TcpKind::Listener(q) = &listener.proto.kind
        {
            q.lock().remove(id);
        }
    }

    fn tcp_conn_input(&self, conn: &ConnRef<TcpPcb>, src: Ipv4Addr, hdr: &TcpHeader, data: &[u8]) {
        let seg = SegIn::from_header(hdr, data);
        // TIME_WAIT reuse by a provably newer SYN (illumos
        // `tcp_time_wait_processing`): the old conn goes, the SYN goes
        // to the listener.
        if seg.has(TcpFlags::SYN) && !seg.has(TcpFlags::ACK) {
            let TcpKind::Conn(m) = &conn.proto.kind else { return };
            let reuse = {
                let t = m.lock();
                t.state() == State::TimeWait && seg.seq.gt(t.rcv_nxt())
            };
            if reuse {
                bump(&self.tcp_mib.time_wait_reused);
                self.with_tcb(conn, |t, ctx| t.abort_quietly(ctx));
                if let Some(listener) = self.tcp_classifier.lookup_listener(conn.laddr(), conn.lport()) {
                    let sqp = listener.sqp();
                    let e = TcpEntry::Syn { listener, src, dst: conn.laddr(), hdr: *hdr };
                    let _ = self.tcp_enter_entry(sqp, e, None);
                }
                return;
            }
        }
        self.with_tcb(conn, |t, ctx| t.input(&seg, ctx));
    }

    fn tcp_user(&self, conn: &ConnRef<TcpPcb>, op: TcpOp) {
        self.with_tcb(conn, |t, ctx| match op {
            TcpOp::Send(data) => {
                let _ = t.send(&data, ctx);
            }
            TcpOp::Consumed(n) => t.consumed(n, ctx),
            TcpOp::ShutWrite => t.shutdown_write(ctx),
            TcpOp::Close => t.close(ctx),
            TcpOp::Abort => t.abort(ctx),
            TcpOp::Start(mut segs) => ctx.out.append(&mut segs),
        });
    }

    fn tcp_listen_syn(&self, listener: &ConnRef<TcpPcb>, src: Ipv4Addr, dst: Ipv4Addr, hdr: &TcpHeader) {
        let TcpKind::Listener(q) = &listener.proto.kind else { return };
        let key = FourTuple::new(IpAddr::V4(dst), hdr.dst_port, IpAddr::V4(src), hdr.src_port);
        let now_ms = self.now_ms();
        let decision = q.lock().on_syn(&key, now_ms);
        match decision {
            SynDecision::Admit => {}
            SynDecision::AdmitAfterDrop { eager, .. } => {
                bump(&self.tcp_mib.half_open_drop);
                self.with_tcb(&eager, |t, ctx| t.abort(ctx));
            }
            SynDecision::Duplicate { .. } => return,
            SynDecision::SynCookie => {
                // Cookies are not answered yet: counted as a q0 drop.
                bump(&self.tcp_mib.listen_drop_q0);
                return;
            }
            SynDecision::Drop(d) => {
                match d {
                    crate::fireengine::tcp_conn::listen_q::ListenDrop::QFull => bump(&self.tcp_mib.listen_drop),
                    crate::fireengine::tcp_conn::listen_q::ListenDrop::Q0Full => bump(&self.tcp_mib.listen_drop_q0),
                }
                return;
            }
        }
        let t = self.sys.tunables.tcp();
        let cfg = tcb_config(&t, self.mtu);
        let now_us = self.tcp_now_us();
        let (iss, ts_offset) = self.tcp_isn_for(&key, now_us);
        let seg = SegIn::from_header(hdr, &[]);
        let mut out = Vec::new();
        let tcb = {
            let mut ctx = self.tcp_ctx(now_us, &mut out);
            Tcb::accept(cfg, iss, ts_offset, &seg, &mut ctx)
        };
        let sq = self.sys.squeues.pick_for_new_conn(self.sys.env.cpu());
        let tuple = ConnTuple::connected(IPPROTO_TCP, dst, hdr.dst_port, src, hdr.src_port);
        let eager = Conn::new(tuple, sq.id(), TcpPcb::conn(tcb, cfg.rcv_buf as usize, cfg.snd_buf as usize));
        let id = match q.lock().add_eager(key, eager.clone()) {
            Ok(id) => id,
            Err(_) => return,
        };
        *eager.proto.listener.lock() = Some((Arc::downgrade(listener), id));
        if self.tcp_classifier.insert_connected(&eager).is_err() {
            q.lock().remove(id);
            return;
        }
        sq.bind_conn();
        // The SYN-ACK goes from inside the eager's squeue.
        let sqp = eager.sqp();
        let _ = self.tcp_enter_entry(sqp, TcpEntry::User { conn: eager, op: TcpOp::Start(out) }, None);
    }

    fn tcp_eager_done(&self, listener: &ConnRef<TcpPcb>, eager: ConnRef<TcpPcb>) {
        let TcpKind::Listener(q) = &listener.proto.kind else { return };
        let id = eager.proto.listener.lock().as_ref().map(|(_, id)| *id);
        let Some(id) = id else { return };
        let r = q.lock().established(id, self.now_ms());
        if r.is_some() {
            listener.proto.sock.wake();
        }
    }

    /// `accept()`: the oldest completed connection of `listener`.
    fn tcp_accept_conn(&self, listener: &ConnRef<TcpPcb>) -> Option<ConnRef<TcpPcb>> {
        let TcpKind::Listener(q) = &listener.proto.kind else { return None };
        let a = q.lock().accept()?;
        *a.eager.proto.listener.lock() = None;
        Some(a.eager)
    }

    /// Opens a listener on `laddr:port` with `backlog`.
    pub(super) fn tcp_listen(&self, laddr: Ipv4Addr, port: u16, backlog: i64) -> Result<TcpSocket, NetError> {
        if port == 0 {
            return Err(NetError::InvalidArgument);
        }
        let _g = self.bind_lock.lock();
        if self.tcp_classifier.port_in_use(IPPROTO_TCP, port) {
            return Err(NetError::AddrInUse);
        }
        let t = self.sys.tunables.tcp();
        let cfg = ListenConfig::new(backlog, t.conn_req_max_q as usize, t.conn_req_max_q0 as usize, t.syn_cookies);
        let sq = self.sys.squeues.pick_for_new_conn(self.sys.env.cpu());
        let conn = Conn::new(ConnTuple::bound(IPPROTO_TCP, laddr, port), sq.id(), TcpPcb::listener(ListenQueue::new(cfg)));
        self.tcp_classifier.insert_bind(&conn).map_err(|_| NetError::TooManyConnections)?;
        sq.bind_conn();
        let host: Weak<dyn TcpHost> = self.me.clone();
        Ok(TcpSocket::new(conn, host))
    }

    /// An active open to `dst:port`.
    pub(super) fn tcp_open(&self, dst: Ipv4Addr, port: u16) -> Result<TcpSocket, NetError> {
        if port == 0 || !crate::config::is_unicast(dst) || self.is_own_addr(dst) {
            return Err(NetError::Unreachable);
        }
        let r = self.routes.read().resolve(dst).ok_or(NetError::Unreachable)?;
        let t = self.sys.tunables.tcp();
        let cfg = tcb_config(&t, self.mtu);
        let _g = self.bind_lock.lock();
        let (lo, hi) = (t.smallest_anon_port, t.largest_anon_port.max(t.smallest_anon_port));
        let span = u32::from(hi - lo) + 1;
        let mut lport = 0;
        for _ in 0..span {
            let p = self.next_port.fetch_add(1, Ordering::Relaxed);
            let p = lo + (u32::from(p) % span) as u16;
            if !self.tcp_classifier.port_in_use(IPPROTO_TCP, p) {
                lport = p;
                break;
            }
        }
        if lport == 0 {
            return Err(NetError::TooManyConnections);
        }
        let key = FourTuple::new(IpAddr::V4(r.src), lport, IpAddr::V4(dst), port);
        let now_us = self.tcp_now_us();
        let (iss, ts_offset) = self.tcp_isn_for(&key, now_us);
        let mut out = Vec::new();
        let tcb = {
            let mut ctx = self.tcp_ctx(now_us, &mut out);
            Tcb::connect(cfg, iss, ts_offset, &mut ctx)
        };
        let sq = self.sys.squeues.pick_for_new_conn(self.sys.env.cpu());
        let tuple = ConnTuple::connected(IPPROTO_TCP, r.src, lport, dst, port);
        let conn = Conn::new(tuple, sq.id(), TcpPcb::conn(tcb, cfg.rcv_buf as usize, cfg.snd_buf as usize));
        self.tcp_classifier.insert_connected(&conn).map_err(|_| NetError::TooManyConnections)?;
        sq.bind_conn();
        drop(_g);
        let sqp = conn.sqp();
        // The SYN goes out from inside the conn's squeue.
        let _ = self.tcp_enter_entry(sqp, TcpEntry::User { conn: conn.clone(), op: TcpOp::Start(out) }, None);
        let host: Weak<dyn TcpHost> = self.me.clone();
        Ok(TcpSocket::new(conn, host))
    }

    /// Fires due TCP timers into their squeues; returns the earliest
    /// deadline left (ms).
    pub(super) fn tcp_timers(&self, now_ms: u64) -> Option<u64> {
        let mut due = Vec::new();
        let mut next = u64::MAX;
        self.tcp_classifier.walk(&mut |c| {
            let d = c.proto.deadline_ms.load(Ordering::Acquire);
            if d <= now_ms {
                due.push(c.clone());
            } else {
                next = next.min(d);
            }
        });
        for conn in due {
            conn.proto.deadline_ms.store(u64::MAX, Ordering::Release);
            let sqp = conn.sqp();
            let _ = self.tcp_enter_entry(sqp, TcpEntry::Timer { conn }, Some(SqMode::Process));
        }
        (next != u64::MAX).then_some(next)
    }

    /// `netstat -an`'s TCP rows.
    pub(super) fn tcp_endpoint_list(&self) -> Vec<TcpEndpoint> {
        let mut v = Vec::new();
        self.tcp_classifier.walk(&mut |c| {
            let s = &c.proto.sock;
            let listener = c.proto.is_listener();
            v.push(TcpEndpoint {
                local: SocketAddrV4::new(c.laddr(), c.lport()),
                remote: (!listener).then(|| SocketAddrV4::new(c.faddr(), c.fport())),
                swind: s.swind.load(Ordering::Relaxed),
                send_q: s.send_q.load(Ordering::Relaxed),
                rwind: if listener { 0 } else { s.rwind.load(Ordering::Relaxed) },
                recv_q: s.readable() as u32,
                state: s.state().name(),
            });
        });
        v
    }
}

impl TcpHost for Core {
    fn tcp_enter(&self, conn: &ConnRef<TcpPcb>, op: TcpOp) -> Result<(), NetError> {
        self.tcp_enter_entry(conn.sqp(), TcpEntry::User { conn: conn.clone(), op }, None)
    }

    fn tcp_accept(&self, conn: &ConnRef<TcpPcb>) -> Option<ConnRef<TcpPcb>> {
        self.tcp_accept_conn(conn)
    }

    fn tcp_unlisten(&self, conn: &ConnRef<TcpPcb>) {
        let TcpKind::Listener(q) = &conn.proto.kind else { return };
        self.unhash(&self.tcp_classifier, conn);
        let eagers = q.lock().close();
        for a in eagers {
            let sqp = a.eager.sqp();
            let _ = self.tcp_enter_entry(sqp, TcpEntry::User { conn: a.eager, op: TcpOp::Abort }, None);
        }
    }
}
