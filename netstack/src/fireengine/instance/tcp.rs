//! The instance's TCP: the receive walk's TCP arm (classify into a
//! connection's squeue, or a listener's for a SYN, or answer with a RST),
//! the squeue entries that run a [`Tcb`], what follows every TCB call
//! (segments out through IP, received bytes up to the socket side,
//! upcalls, the conn leaving the classifier when it closes), listeners
//! with illumos' q0/q, active opens, and the timer scan that fires each
//! conn's due timers into its squeue.
//!
//! ICMP errors quoting one of our segments go to the connected conn of
//! the quoted 4-tuple, in its squeue (`TcpEntry::IcmpError`, the TCB's
//! [`crate::fireengine::tcp::tcb::icmp`]); a PMTU decrease the conn took
//! is kept in the instance's [`crate::fireengine::ip::pmtu`] cache, which
//! caps the MSS of new conns to that destination. TCP datagrams carry DF.
//!
//! Every touch of a conn's state runs in that conn's squeue (a
//! `debug_assert!` at each entry point checks it): a listener's SYN and
//! ACK work runs in the listener's, and what it does to an eager (the
//! SYN-ACK, the abort of a q0 victim, as illumos' `tcp_drop_q0` queues
//! `tcp_clean_death_wrapper` on the eager's `conn_sqp`) is entered into
//! the eager's.
//!
//! SYN cookies ([`crate::fireengine::tcp_conn::syncookie`]): when the
//! listener's q0 is full and `_syn_cookies` is on, the SYN is answered
//! with a stateless SYN-ACK whose ISN is the cookie (`tcpSynCookiesSent`);
//! nothing is kept, so the only bound on them is the CPU. It announces our
//! MSS; the client's MSS comes back rounded down to the cookie's table.
//! Window scale and SACK-permitted are offered only when the client sent
//! timestamps, since they travel in the low bits of our TSval; without
//! timestamps the connection goes on without them (as Linux's). An ACK
//! (no SYN, no RST) that finds no conn goes to the listener's squeue; if
//! the listener found q0 full within the cookie's lifetime (two slots,
//! as Linux's `tcp_synq_no_recent_overflow`), it is checked as a cookie:
//! valid (`tcpSynCookiesRecv`), the conn is made ESTABLISHED with
//! [`Tcb::from_cookie`], put in the classifier and straight onto q, and
//! the ACK itself (with any data on it) is then run in the new conn's
//! squeue; q full, `tcpListenDrop` and the ACK is dropped (the client
//! retransmits); invalid, `tcpSynCookiesFailed` and a RST
//! `<SEQ=SEG.ACK><CTL=RST>` (RFC 9293 3.10.7.2, an ACK in LISTEN). Other
//! ACKs to a listener draw the RST for no conn (`tcpInClosed`).

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
use crate::fireengine::icmp::IcmpErrorKind;
use crate::fireengine::ip::pmtu;
use crate::fireengine::tcp::tcb::icmp::IcmpNotice;
use crate::fireengine::tcp::tcb::{CookieState, Tcb, TcpCtx};
use crate::fireengine::tcp_conn::listen_q::{CookieRefused, ListenConfig, ListenDrop, ListenQueue, SynDecision};
use crate::fireengine::tcp_conn::syncookie::{SynCookieOpts, TCP_DEFAULT_MSS};
use crate::fireengine::tcp_conn::tuple::FourTuple;
use crate::fireengine::tcp_pcb::{TcpConn, TcpHost, TcpKind, TcpOp, TcpPcb, TcpSocket};
use crate::fireengine::tunables::{TcpCc, TcpTunables};
use crate::fireengine::udp::CachedRoute;
use crate::fireengine::wire::ipv4::Ipv4Header;
use crate::fireengine::wire::tcp::{TcpFlags, TcpHeader, TcpOptions, Timestamps};
use crate::stack::{NetError, TcpEndpoint};

/// The TCP squeue entries.
pub enum TcpEntry {
    /// A segment for a connection.
    Input { conn: ConnRef<TcpPcb>, src: Ipv4Addr, hdr: TcpHeader, data: Vec<u8> },
    /// A SYN for a listener (from `src`, to our `dst`; through the
    /// loopback if `loopback`).
    Syn { listener: ConnRef<TcpPcb>, src: Ipv4Addr, dst: Ipv4Addr, hdr: TcpHeader, loopback: bool },
    /// An ACK for a listener that matched no conn (from `src`, to our
    /// `dst`): a cookie's answer, or a RST.
    ListenAck { listener: ConnRef<TcpPcb>, src: Ipv4Addr, dst: Ipv4Addr, hdr: TcpHeader, data: Vec<u8> },
    /// An eager completed its handshake: move it to its listener's q.
    EagerDone { listener: ConnRef<TcpPcb>, eager: ConnRef<TcpPcb> },
    /// A user's call.
    User { conn: ConnRef<TcpPcb>, op: TcpOp },
    /// The conn's timers are due.
    Timer { conn: ConnRef<TcpPcb> },
    /// An ICMP error about the conn's segment at `seq`.
    IcmpError { conn: ConnRef<TcpPcb>, notice: IcmpNotice, seq: SeqNum },
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
            TcpEntry::Syn { listener, src, dst, hdr, loopback } => core.tcp_listen_syn(&listener, src, dst, &hdr, loopback),
            TcpEntry::ListenAck { listener, src, dst, hdr, data } => core.tcp_listen_ack(&listener, src, dst, &hdr, &data),
            TcpEntry::EagerDone { listener, eager } => core.tcp_eager_done(&listener, eager),
            TcpEntry::User { conn, op } => core.tcp_user(&conn, op),
            TcpEntry::Timer { conn } => core.with_tcb(&conn, |t, ctx| t.on_timer(ctx)),
            TcpEntry::IcmpError { conn, notice, seq } => core.tcp_icmp_error(&conn, notice, seq),
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
    pub(super) fn tcp_input(&self, hdr: &Ipv4Header, l4: &[u8], verified: bool, to_bcast: bool, loopback: bool) {
        bump(&self.tcp_mib.in_segs);
        let (th, data) = match TcpHeader::parse(l4, hdr.src, hdr.dst, !verified) {
            Ok(v) => v,
            Err(_) => {
                bump(&self.tcp_mib.in_errs);
                return;
            }
        };
        bump(&self.ip_mib.ip_in_delivers);
        if to_bcast || !(crate::config::is_unicast(hdr.src) || (loopback && hdr.src.is_loopback())) {
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
        let ack = th.flags.contains(TcpFlags::ACK) && !th.flags.intersects(TcpFlags::SYN | TcpFlags::RST);
        if (syn || ack)
            && let Some(listener) = self.tcp_classifier.lookup_listener(hdr.dst, th.dst_port)
        {
            let sqp = listener.sqp();
            let (src, dst) = (hdr.src, hdr.dst);
            let e = if syn {
                TcpEntry::Syn { listener, src, dst, hdr: th, loopback }
            } else {
                TcpEntry::ListenAck { listener, src, dst, hdr: th, data: data.to_vec() }
            };
            if self.tcp_enter_entry(sqp, e, Some(SqMode::Process)).is_err() {
                bump(&self.ip_mib.ip_in_discards);
            }
            return;
        }
        bump(&self.tcp_mib.in_closed);
        self.tcp_reset_for(hdr.dst, hdr.src, &th, data);
    }

    /// The RST for a segment that has no conn (RFC 9293 3.10.7.1), never
    /// for a RST, at most `_rst_sent_rate` a second (the limit follows the
    /// tunable from `poll_us`). `dst` is ours.
    fn tcp_reset_for(&self, dst: Ipv4Addr, src: Ipv4Addr, th: &TcpHeader, data: &[u8]) {
        let seg = SegIn::from_header(th, data);
        if let Some(rst) = reset_for(&seg) {
            if !self.tcp_rst_limit.allow(self.now_ms()) {
                return;
            }
            rst.count(&self.tcp_mib);
            self.tcp_send_raw(dst, th.dst_port, src, th.src_port, &rst, None);
        }
    }

    /// Debug check: the caller runs inside `conn`'s squeue.
    fn in_own_squeue(&self, conn: &ConnRef<TcpPcb>) -> bool {
        self.sys.squeues.for_cpu(conn.sqp()).is_some_and(|sq| sq.in_perimeter())
    }

    /// Sends one segment from `src:sport` to `dst:dport`.
    fn tcp_send_raw(&self, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, seg: &SegOut, route: Option<CachedRoute>) {
        let next_hop = match route {
            Some(r) => r.next_hop,
            None => match self.resolve(dst) {
                Some(r) => r.next_hop,
                None => {
                    bump(&self.ip_mib.ip_out_no_routes);
                    return;
                }
            },
        };
        let h = seg.header(sport, dport);
        let hlen = h.header_len();
        // Through the loopback a segment goes whole, its checksum never
        // finished (input takes it as verified).
        let lo = self.is_local_dst(next_hop);
        // Cut at the MSS also when the whole would fit the link: the MSS
        // may be a path's (PMTU), smaller than the link's.
        if !lo
            && let Some(mss) = seg.lso_mss.filter(|&m| IPV4_HDR_MIN + hlen + seg.data.len() > self.mtu || seg.data.len() > usize::from(m))
        {
            self.tcp_lso_output(src, dst, &h, seg, mss, next_hop);
            return;
        }
        let mut buf = alloc::vec![0u8; hlen + seg.data.len()];
        buf[hlen..].copy_from_slice(&seg.data);
        let partial = lo || IPV4_HDR_MIN + buf.len() <= self.mtu;
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
        debug_assert!(self.in_own_squeue(conn), "a TCP conn touched outside its squeue");
        let mut out = Vec::new();
        let (events, received, acked, state, err, fin, deadline, stats, fused_read);
        {
            let mut t = m.lock();
            let mut ctx = self.tcp_ctx(self.tcp_now_us(), &mut out);
            t.set_lso(if conn.proto.loopback { None } else { self.lso_tcp4_max() });
            // What the reader took since the last visit, before anything
            // else (a close must not take read bytes for unread ones).
            // The TCB's own bytes are first in the queue; what is past
            // them came fused, and frees the fused sender's room instead.
            let read = conn.proto.sock.take_consumed();
            let tcb_part = read.min(t.unread() as usize);
            if tcb_part > 0 {
                t.consumed(tcb_part, &mut ctx);
            }
            fused_read = read - tcb_part;
            if conn.proto.sock.is_fused() {
                conn.proto.fusion.lock().tcb_unread = t.unread();
            }
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
        if events.synack_rexmit && state == State::SynRcvd {
            // illumos `tcp_timer` for an eager: its first timeout makes it
            // droppable from q0 (`tcp_drop_q0`), under the listener's
            // lock as there.
            let l = conn.proto.listener.lock().clone();
            if let Some((lw, id)) = l
                && let Some(listener) = lw.upgrade()
                && let TcpKind::Listener(q) = &listener.proto.kind
            {
                q.lock().synack_timeout(id);
            }
        }
        if state == State::Closed {
            self.tcp_remove(conn);
        }
        if events.readable || events.writable || events.established || events.closed {
            side.wake();
        }
        if fused_read > 0 {
            self.tcp_fused_read(conn, fused_read);
        }
        if conn.proto.loopback && state == State::Established {
            self.tcp_try_fuse(conn);
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
                    let e = TcpEntry::Syn { listener, src, dst: conn.laddr(), hdr: *hdr, loopback: conn.proto.loopback };
                    let _ = self.tcp_enter_entry(sqp, e, None);
                }
                return;
            }
        }
        self.with_tcb(conn, |t, ctx| t.input(&seg, ctx));
    }

    fn tcp_user(&self, conn: &ConnRef<TcpPcb>, op: TcpOp) {
        if conn.proto.sock.is_fused() {
            match op {
                TcpOp::Send(data) => {
                    if let Some(peer) = conn.proto.fused_peer() {
                        self.tcp_fused_send(conn, &peer, data);
                        return;
                    }
                    // The peer went: plain TCP from here.
                    self.tcp_unfuse(conn);
                    return self.tcp_user(conn, TcpOp::Send(data));
                }
                TcpOp::Urgent(_) => {
                    bump(&self.tcp_mib.fusion_urg);
                    self.tcp_unfuse(conn);
                }
                TcpOp::ShutWrite | TcpOp::Close | TcpOp::Abort => self.tcp_unfuse(conn),
                TcpOp::Consumed => {
                    if self.tcp_fused_consumed(conn) {
                        return;
                    }
                }
                TcpOp::Start(_) => {}
            }
        }
        self.with_tcb(conn, |t, ctx| match op {
            TcpOp::Send(data) => {
                let _ = t.send_vec(data, ctx);
            }
            // `with_tcb` took the reader's count before this.
            TcpOp::Consumed => {}
            TcpOp::ShutWrite => t.shutdown_write(ctx),
            TcpOp::Close => t.close(ctx),
            TcpOp::Abort => t.abort(ctx),
            TcpOp::Start(mut segs) => ctx.out.append(&mut segs),
            TcpOp::Urgent(b) => {
                let _ = t.send_urgent(b, ctx);
            }
        });
    }

    /// Whether the instance holds `_conn_max` connections (every conn in
    /// the connected fanout: half-open, established, closing, TIME_WAIT),
    /// so that no new one may be made.
    fn tcp_at_conn_max(&self, t: &TcpTunables) -> bool {
        self.tcp_classifier.len_of(crate::fireengine::conn::Fanout::Conn) >= t.conn_max as usize
    }

    fn tcp_listen_syn(&self, listener: &ConnRef<TcpPcb>, src: Ipv4Addr, dst: Ipv4Addr, hdr: &TcpHeader, loopback: bool) {
        let TcpKind::Listener(q) = &listener.proto.kind else { return };
        debug_assert!(self.in_own_squeue(listener), "a listener touched outside its squeue");
        if self.tcp_to_conn_made_since(src, dst, hdr, &[]) {
            return;
        }
        let key = FourTuple::new(IpAddr::V4(dst), hdr.dst_port, IpAddr::V4(src), hdr.src_port);
        let now_ms = self.now_ms();
        let t = self.sys.tunables.tcp();
        if self.tcp_at_conn_max(&t) {
            bump(&self.tcp_mib.conn_max_drop);
            self.tcp_reset_for(dst, src, hdr, &[]);
            return;
        }
        let decision = {
            let mut ql = q.lock();
            ql.set_syn_cookies(t.syn_cookies);
            ql.on_syn(&key, now_ms)
        };
        let cfg = tcb_config(&t, if loopback { super::LO_MTU } else { self.mtu });
        match decision {
            SynDecision::Admit => {}
            SynDecision::AdmitAfterDrop { eager, .. } => {
                bump(&self.tcp_mib.half_open_drop);
                // The victim is off q0 already; it dies in its own squeue
                // (illumos `tcp_drop_q0`). A full squeue is counted there;
                // the eager then ends by its own SYN-ACK timers.
                let sqp = eager.sqp();
                let _ = self.tcp_enter_entry(sqp, TcpEntry::User { conn: eager, op: TcpOp::Abort }, None);
            }
            SynDecision::Duplicate { .. } => return,
            SynDecision::SynCookie => {
                self.tcp_send_cookie(&cfg, &key, src, dst, hdr, now_ms);
                return;
            }
            SynDecision::Drop(d) => {
                match d {
                    ListenDrop::QFull => bump(&self.tcp_mib.listen_drop),
                    ListenDrop::Q0Full => bump(&self.tcp_mib.listen_drop_q0),
                }
                return;
            }
        }
        let now_us = self.tcp_now_us();
        let (iss, ts_offset) = self.tcp_isn_for(&key, now_us);
        let seg = SegIn::from_header(hdr, &[]);
        let mut out = Vec::new();
        let tcb = {
            let mut ctx = self.tcp_ctx(now_us, &mut out);
            let mut t = Tcb::accept(cfg, iss, ts_offset, &seg, &mut ctx);
            if let Some(p) = self.pmtu.lock().get(src, now_us / 1000) {
                t.set_path_mtu(p);
            }
            t
        };
        // A loopback eager gets its active side's squeue, so that the two
        // may fuse (illumos `tcp_input_listener` for a loopback SYN).
        let active = loopback
            .then(|| self.tcp_classifier.lookup_connected(&ConnTuple::connected(IPPROTO_TCP, src, hdr.src_port, dst, hdr.dst_port)))
            .flatten();
        let sq = match active.as_ref().and_then(|a| self.sys.squeues.for_cpu(a.sqp())) {
            Some(sq) => sq,
            None => self.sys.squeues.pick_for_new_conn(self.sys.env.cpu()),
        };
        let tuple = ConnTuple::connected(IPPROTO_TCP, dst, hdr.dst_port, src, hdr.src_port);
        let pcb = TcpPcb::conn(tcb, cfg.rcv_buf as usize, cfg.snd_buf as usize).on_loopback(loopback);
        let eager = Conn::new(tuple, sq.id(), pcb);
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

    /// The timestamp clock offset of conn `key` (ours first): the one
    /// [`Core::tcp_isn_for`] gives, without the ISN.
    fn tcp_ts_offset(&self, key: &FourTuple) -> u32 {
        self.tcp_isn.offset(&FourTuple::new(key.remote, key.remote_port, key.local, key.local_port))
    }

    /// Answers the SYN `hdr` for `key` with a stateless SYN-ACK whose ISN
    /// is a cookie (see the module doc).
    fn tcp_send_cookie(&self, cfg: &TcbConfig, key: &FourTuple, src: Ipv4Addr, dst: Ipv4Addr, hdr: &TcpHeader, now_ms: u64) {
        let syn = SegIn::from_header(hdr, &[]);
        let peer_ts = syn.opts.timestamps.filter(|_| cfg.tstamp);
        let agreed = SynCookieOpts {
            wscale: syn.opts.window_scale.filter(|_| cfg.wscale),
            sack: syn.opts.sack_permitted && cfg.sack_accept,
            ecn: false,
        };
        let ts_clock = (now_ms as u32).wrapping_add(self.tcp_ts_offset(key));
        let mss = syn.opts.mss.unwrap_or(TCP_DEFAULT_MSS);
        let c = self.tcp_cookies.make(key, syn.seq.0, mss, peer_ts.map(|_| (ts_clock, agreed)), now_ms);
        let mut o = TcpOptions::new();
        o.mss = Some(cfg.mss_local);
        if let (Some(p), Some(tsval)) = (peer_ts, c.tsval) {
            o.timestamps = Some(Timestamps { tsval, tsecr: p.tsval });
            o.window_scale = agreed.wscale.map(|_| cfg.rcv_wscale());
            o.sack_permitted = agreed.sack;
        }
        let synack = SegOut {
            seq: SeqNum(c.isn),
            ack: syn.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            // A SYN's window is never scaled (RFC 7323 2.2).
            wnd: cfg.rcv_buf.clamp(1, 65_535) as u16,
            urgent: 0,
            opts: o,
            data: Vec::new(),
            rexmit: false,
            lso_mss: None,
        };
        bump(&self.tcp_mib.syn_cookies_sent);
        synack.count(&self.tcp_mib);
        self.tcp_send_raw(dst, hdr.dst_port, src, hdr.src_port, &synack, None);
    }

    /// An ACK to `listener` that matched no conn (see the module doc).
    /// A segment classified to a listener because its conn did not exist
    /// yet may find it made by the time the listener's squeue runs it: an
    /// ACK with data right behind the cookie ACK that makes the conn (both
    /// queued before the first ran), a SYN retransmitted while its eager
    /// was being made. It goes to that conn's squeue, as a fresh
    /// classification would have sent it; true when it went.
    fn tcp_to_conn_made_since(&self, src: Ipv4Addr, dst: Ipv4Addr, hdr: &TcpHeader, data: &[u8]) -> bool {
        let key = ConnTuple::connected(IPPROTO_TCP, dst, hdr.dst_port, src, hdr.src_port);
        let Some(conn) = self.tcp_classifier.lookup_connected(&key) else { return false };
        bump(&self.tcp_mib.in_listener_reclassified);
        let sqp = conn.sqp();
        let e = TcpEntry::Input { conn, src, hdr: *hdr, data: data.to_vec() };
        if self.tcp_enter_entry(sqp, e, None).is_err() {
            bump(&self.ip_mib.ip_in_discards);
        }
        true
    }

    fn tcp_listen_ack(&self, listener: &ConnRef<TcpPcb>, src: Ipv4Addr, dst: Ipv4Addr, hdr: &TcpHeader, data: &[u8]) {
        let TcpKind::Listener(q) = &listener.proto.kind else { return };
        debug_assert!(self.in_own_squeue(listener), "a listener touched outside its squeue");
        if self.tcp_to_conn_made_since(src, dst, hdr, data) {
            return;
        }
        let key = FourTuple::new(IpAddr::V4(dst), hdr.dst_port, IpAddr::V4(src), hdr.src_port);
        let now_ms = self.now_ms();
        let window = self.tcp_cookies.config().slot_ms.saturating_mul(2);
        let cookies = {
            let ql = q.lock();
            ql.config().syn_cookies && ql.q0_full_within(now_ms, window)
        };
        if !cookies {
            bump(&self.tcp_mib.in_closed);
            self.tcp_reset_for(dst, src, hdr, data);
            return;
        }
        let seg = SegIn::from_header(hdr, data);
        let tsecr = seg.opts.timestamps.map(|t| t.tsecr);
        let c = match self.tcp_cookies.validate(&key, seg.seq.0, seg.ack.0, tsecr, now_ms) {
            Ok(c) => c,
            Err(_) => {
                bump(&self.tcp_mib.syn_cookies_failed);
                self.tcp_reset_for(dst, src, hdr, data);
                return;
            }
        };
        let replay_key = super::mix(
            u64::from(u32::from(src)) << 32 | u64::from(hdr.src_port) << 16 | u64::from(hdr.dst_port),
        ) ^ (u64::from(c.iss) << 32 | u64::from(u32::from(dst)));
        if self.tcp_cookie_replay.lock().seen(replay_key, now_ms) {
            // A late copy of an ACK whose cookie made a conn that has
            // since gone (see `cookie_replay`): it makes no second one.
            bump(&self.tcp_mib.syn_cookies_replayed);
            return;
        }
        bump(&self.tcp_mib.syn_cookies_recv);
        let t = self.sys.tunables.tcp();
        if self.tcp_at_conn_max(&t) {
            bump(&self.tcp_mib.conn_max_drop);
            self.tcp_reset_for(dst, src, hdr, data);
            return;
        }
        let cfg = tcb_config(&t, self.mtu);
        let state = CookieState {
            irs: SeqNum(c.irs),
            iss: SeqNum(c.iss),
            mss: c.mss,
            snd_wscale: c.opts.and_then(|o| o.wscale),
            sack: c.opts.is_some_and(|o| o.sack),
            ts_recent: c.opts.and(seg.opts.timestamps.map(|t| t.tsval)),
        };
        let ts_offset = self.tcp_ts_offset(&key);
        let now_us = self.tcp_now_us();
        let sq = self.sys.squeues.pick_for_new_conn(self.sys.env.cpu());
        let tuple = ConnTuple::connected(IPPROTO_TCP, dst, hdr.dst_port, src, hdr.src_port);
        let mut made = None;
        // Made only once q has room (a refused one would count as an
        // open); under the listener's lock, so nobody sees it in q
        // before it is in the classifier too. Nobody else sees it yet,
        // so it is not entered into its squeue until it is complete.
        let r = q.lock().push_established_with(key, |id| {
            let mut out = Vec::new();
            let mut ctx = self.tcp_ctx(now_us, &mut out);
            let mut tcb = Tcb::from_cookie(cfg, state, seg.wnd, ts_offset, &mut ctx);
            if let Some(p) = self.pmtu.lock().get(src, now_ms) {
                tcb.set_path_mtu(p);
            }
            let conn = Conn::new(tuple, sq.id(), TcpPcb::conn(tcb, cfg.rcv_buf as usize, cfg.snd_buf as usize));
            *conn.proto.listener.lock() = Some((Arc::downgrade(listener), id));
            if self.tcp_classifier.insert_connected(&conn).is_err() {
                // Never seen by anyone: closed here, uncounted as
                // established.
                if let TcpKind::Conn(m) = &conn.proto.kind {
                    m.lock().abort_quietly(&mut ctx);
                }
                return None;
            }
            made = Some(conn.clone());
            Some(conn)
        });
        let conn = match (r, made) {
            (Ok(_), Some(conn)) => {
                self.tcp_cookie_replay.lock().record(replay_key, now_ms);
                conn
            }
            (Err(CookieRefused::QFull), _) => {
                // The client retransmits; its cookie stays valid for the
                // slot.
                bump(&self.tcp_mib.listen_drop);
                return;
            }
            _ => {
                bump(&self.ip_mib.ip_in_discards);
                return;
            }
        };
        sq.bind_conn();
        listener.proto.sock.wake();
        // The ACK itself, with any data on it, runs in the conn's squeue.
        let sqp = conn.sqp();
        let e = TcpEntry::Input { conn, src, hdr: *hdr, data: data.to_vec() };
        if self.tcp_enter_entry(sqp, e, None).is_err() {
            // Its data was not acknowledged: the client sends it again.
            bump(&self.ip_mib.ip_in_discards);
        }
    }

    fn tcp_eager_done(&self, listener: &ConnRef<TcpPcb>, eager: ConnRef<TcpPcb>) {
        let TcpKind::Listener(q) = &listener.proto.kind else { return };
        debug_assert!(self.in_own_squeue(listener), "a listener touched outside its squeue");
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
        let local = self.is_local_dst(dst);
        // Ours but not in use (duplicate-address detection) reaches nobody.
        if port == 0 || !(crate::config::is_unicast(dst) || dst.is_loopback()) || (self.is_own_addr(dst) && !local) {
            return Err(NetError::Unreachable);
        }
        let r = self.resolve(dst).ok_or(NetError::Unreachable)?;
        let t = self.sys.tunables.tcp();
        if self.tcp_at_conn_max(&t) {
            bump(&self.tcp_mib.conn_max_drop);
            return Err(NetError::TooManyConnections);
        }
        let cfg = tcb_config(&t, if local { super::LO_MTU } else { self.mtu });
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
            let mut t = Tcb::connect(cfg, iss, ts_offset, &mut ctx);
            if let Some(p) = self.pmtu.lock().get(dst, now_us / 1000) {
                t.set_path_mtu(p);
            }
            t
        };
        let sq = self.sys.squeues.pick_for_new_conn(self.sys.env.cpu());
        let tuple = ConnTuple::connected(IPPROTO_TCP, r.src, lport, dst, port);
        let pcb = TcpPcb::conn(tcb, cfg.rcv_buf as usize, cfg.snd_buf as usize).on_loopback(local);
        let conn = Conn::new(tuple, sq.id(), pcb);
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

    /// An ICMP error quoting our TCP segment `ours` → `peer`
    /// (illumos `icmp_inbound_error_fanout_v4`'s TCP case): to the
    /// connected conn of that 4-tuple, in its squeue. No conn, or no
    /// sequence number quoted: nothing (the latter counted).
    pub(super) fn tcp_icmp_input(
        &self,
        kind: IcmpErrorKind,
        ours: SocketAddrV4,
        peer: SocketAddrV4,
        seq: Option<u32>,
        quoted_len: u16,
    ) {
        let key = ConnTuple::connected(IPPROTO_TCP, *ours.ip(), ours.port(), *peer.ip(), peer.port());
        let Some(conn) = self.tcp_classifier.lookup_connected(&key) else { return };
        let Some(seq) = seq else {
            bump(&self.tcp_mib.in_icmp_errors);
            bump(&self.tcp_mib.in_icmp_out_of_window);
            return;
        };
        let notice = match kind {
            IcmpErrorKind::FragNeeded { next_hop_mtu } => {
                let p = pmtu::pmtu_for(next_hop_mtu, quoted_len).min(self.mtu.min(usize::from(u16::MAX)) as u16);
                IcmpNotice::FragNeeded { pmtu: p }
            }
            k if k.refuses_connection() => IcmpNotice::Refused,
            _ => IcmpNotice::Soft(NetError::Unreachable),
        };
        let sqp = conn.sqp();
        let e = TcpEntry::IcmpError { conn, notice, seq: SeqNum(seq) };
        if self.tcp_enter_entry(sqp, e, Some(SqMode::Process)).is_err() {
            bump(&self.ip_mib.ip_in_discards);
        }
    }

    /// Runs an ICMP error on the conn's TCB; a PMTU it took is kept for
    /// the destination (new conns to it start with it).
    fn tcp_icmp_error(&self, conn: &ConnRef<TcpPcb>, notice: IcmpNotice, seq: SeqNum) {
        let mut cut = false;
        self.with_tcb(conn, |t, ctx| cut = t.icmp_error(notice, seq, ctx));
        if let (true, IcmpNotice::FragNeeded { pmtu }) = (cut, notice)
            && self.pmtu.lock().learn(conn.faddr(), pmtu, self.now_ms())
        {
            bump(&self.tcp_mib.pmtu_cache_evictions);
        }
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
