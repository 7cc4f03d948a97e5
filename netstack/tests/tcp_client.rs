//! TCP connections opened by local users (`IpStack::tcp_*`) and the `ttcp`
//! command: two instances back to back and the echo/discard/chargen
//! services, a scripted smoltcp peer that resets, corrupts, finishes early
//! or stalls, refusals, timeouts, interrupts, the connection bound, and
//! that every connection's slot is freed whatever the exit path; `ttcp -c`
//! runs of connections that we close first (TIME_WAIT on our side), and
//! how such a run reports the connection that failed.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use arbalest_netstack::admin::ttcp::{fill_pattern, pattern_byte};
use arbalest_netstack::smol::client::{EPHEMERAL_FIRST, MAX_CLIENTS};
use arbalest_netstack::{IpStack, NetError, ServiceStats, TcpState};
use common::*;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;

/// A (net0, 10.0.0.1) and B (net1, 10.0.0.2) and the smoltcp peer (10.0.0.9).
fn lan() -> Net {
    let mut n = Net::new();
    n.add_instance("net0", 1, "10.0.0.1/24");
    n.add_instance("net1", 2, "10.0.0.2/24");
    n.add_peer(9, "10.0.0.9/24");
    n
}

fn service(n: &Net, port_idx: usize, name: &str) -> ServiceStats {
    n.inst(port_idx)
        .service_stats()
        .into_iter()
        .find(|s| s.name == name && s.proto == arbalest_netstack::stack::Proto::Tcp)
        .unwrap()
}

/// Runs the network until no instance holds a client connection; fails
/// if that takes longer than `max_ms`.
fn all_freed(n: &mut Net, max_ms: u64) {
    let ok = n.run_until(max_ms, |n| (0..n.ports.len()).all(|i| n.inst(i).tcp_list().is_empty()));
    let left: Vec<_> = (0..n.ports.len()).flat_map(|i| n.inst(i).tcp_list()).collect();
    assert!(ok, "connections still held after {max_ms} ms: {left:?}");
}

/// `ttcp: N bytes sent, N echoed and verified in X.XX s (Y.YY Mbit/s)`.
fn assert_echo_line(out: &str, bytes: u64) {
    let head = format!("ttcp: {bytes} bytes sent, {bytes} echoed and verified in ");
    assert!(out.starts_with(&head) && out.ends_with(" Mbit/s)\n") && out.lines().count() == 1, "{out}");
}

#[test]
fn ttcp_echo_between_two_instances() {
    let mut n = lan();
    let (status, out) = n.cmd("ttcp -i net1 -n 262144 -p 7 10.0.0.1");
    assert_eq!(status, 0, "{out}\n{}", n.dump());
    assert_echo_line(&out, 262144);
    let echo = service(&n, 0, "echo");
    assert_eq!((echo.accepted, echo.bytes_in, echo.bytes_out), (1, 262144, 262144));
    all_freed(&mut n, 1500);
    // The server side closed too.
    n.run_ms(50);
    assert_eq!(service(&n, 0, "echo").active, 0);

    // Default size (1 MiB) and port (echo), interface chosen by subnet,
    // received frames split across buffers.
    n.rx_segs = 3;
    let (status, out) = n.cmd("ttcp 10.0.0.2");
    assert_eq!(status, 0, "{out}");
    assert_echo_line(&out, 1 << 20);
    assert_eq!(service(&n, 1, "echo").bytes_in, 1 << 20);
    // -e with a suffixed size; nothing of it reached net0's echo service.
    let (status, out) = n.cmd("ttcp -e -n 1k -i net0 10.0.0.2");
    assert_eq!(status, 0, "{out}");
    assert_echo_line(&out, 1024);
    assert_eq!(service(&n, 0, "echo").bytes_in, 262144);
    // Zero bytes: connect, FIN, done.
    let (status, out) = n.cmd("ttcp -n 0 10.0.0.1");
    assert_eq!(status, 0, "{out}");
    assert_echo_line(&out, 0);
    all_freed(&mut n, 1500);
    for i in 0..2 {
        assert_eq!(n.inst(i).stats().rx_drops(), 0, "{}", n.dump());
    }
}

#[test]
fn ttcp_to_discard_and_chargen() {
    let mut n = lan();
    let (status, out) = n.cmd("ttcp -i net1 -n 100000 -p 9 10.0.0.1");
    assert_eq!(status, 0, "{out}");
    assert!(out.starts_with("ttcp: 100000 bytes sent and acknowledged in ") && out.ends_with(" Mbit/s)\n"), "{out}");
    let d = service(&n, 0, "discard");
    assert_eq!((d.accepted, d.bytes_in), (1, 100000));
    // Chargen talks back without being asked: what arrives is counted
    // (not verified), and the connection still ends.
    let (status, out) = n.cmd("ttcp -i net1 -n 5000 -p 19 10.0.0.1");
    assert_eq!(status, 0, "{out}");
    assert!(out.starts_with("ttcp: 5000 bytes sent and acknowledged, "), "{out}");
    all_freed(&mut n, 6000);
    n.run_ms(100);
    assert_eq!(service(&n, 0, "chargen").active, 0);
}

#[test]
fn ttcp_through_a_gateway_uses_the_address_facing_it() {
    let mut n = Net::new();
    let gw = n.add_instance("net0", 1, "10.0.0.1/24");
    gw.add_addr("net0/far", net("10.0.1.1/24")).unwrap();
    let b = n.add_instance("net1", 2, "10.0.0.2/24");
    b.add_addr("net1/other", net("172.16.0.2/24")).unwrap();
    let (status, _) = n.cmd("route add -net 10.0.1.0/24 10.0.0.1");
    assert_eq!(status, 0);
    let (status, out) = n.cmd("ttcp -i net1 -n 20000 10.0.1.1");
    assert_eq!(status, 0, "{out}");
    assert_echo_line(&out, 20000);
    // The connection came from B's address on the gateway's subnet.
    let id = b.tcp_connect(ip("10.0.1.1"), 7).unwrap();
    let st = b.tcp_status(id).unwrap();
    assert_eq!(*st.local.ip(), ip("10.0.0.2"));
    assert_eq!(*st.remote.ip(), ip("10.0.1.1"));
    assert_eq!(st.remote.port(), 7);
    b.tcp_close(id);
    all_freed(&mut n, 2000);
}

#[test]
fn refused_unreachable_and_bad_usage() {
    let mut n = lan();
    let (status, out) = n.cmd("ttcp -i net1 -n 1000 -p 8 10.0.0.1");
    assert_eq!((status, out.as_str()), (1, "ttcp: connect to 10.0.0.1 port 8: Connection refused\n"));
    all_freed(&mut n, 1500);
    let fails = |n: &mut Net, line: &str, status: i32, first: &str| {
        let (s, out) = n.cmd(line);
        assert_eq!(s, status, "{line}: {out}");
        assert_eq!(out.lines().next().unwrap_or(""), first, "{line}");
        if status == 2 {
            assert_eq!(
                out.lines().nth(1),
                Some("usage: ttcp [-c count | -r count] [-e] [-i interface] [-n bytes] [-p port] [-t timeout] [-w seconds] [-z] host")
            );
        }
    };
    fails(&mut n, "ttcp", 2, "ttcp: missing host");
    fails(&mut n, "ttcp 10.0.0.1 10.0.0.2", 2, "ttcp: extra arguments");
    fails(&mut n, "ttcp -x 10.0.0.1", 2, "ttcp: illegal option -- x");
    fails(&mut n, "ttcp 10.0.0.1 -p", 2, "ttcp: option requires an argument -- p");
    fails(&mut n, "ttcp -n lots 10.0.0.1", 2, "ttcp: bad byte count: lots");
    fails(&mut n, "ttcp -n -5 10.0.0.1", 2, "ttcp: bad byte count: -5");
    fails(&mut n, "ttcp -p 0 10.0.0.1", 2, "ttcp: bad port: 0");
    fails(&mut n, "ttcp -p 70000 10.0.0.1", 2, "ttcp: bad port: 70000");
    fails(&mut n, "ttcp -t 0 10.0.0.1", 2, "ttcp: bad timeout: 0");
    fails(&mut n, "ttcp -c 0 10.0.0.1", 2, "ttcp: bad count: 0");
    fails(&mut n, "ttcp -c 1000001 10.0.0.1", 2, "ttcp: bad count: 1000001");
    fails(&mut n, "ttcp -c x 10.0.0.1", 2, "ttcp: bad count: x");
    fails(&mut n, "ttcp 10.0.0.1 -c", 2, "ttcp: option requires an argument -- c");
    fails(&mut n, "ttcp -c 5 -i net0 10.0.0.1", 1, "ttcp: connection 1 of 5: connect: Network is unreachable");
    fails(&mut n, "ttcp nosuchhost", 1, "ttcp: unknown host nosuchhost");
    fails(&mut n, "ttcp 192.168.9.9", 1, "ttcp: connect: Network is unreachable");
    fails(&mut n, "ttcp -i net5 10.0.0.1", 1, "ttcp: net5: no such interface");
    fails(&mut n, "ttcp -i net0 10.0.0.1", 1, "ttcp: connect: Network is unreachable");
    fails(&mut n, "ttcp -i net0 10.0.0.255", 1, "ttcp: connect: Invalid IP address provided");
    fails(&mut n, "ttcp -i net0 224.0.0.1", 1, "ttcp: connect: Invalid IP address provided");
    assert!(n.inst(0).tcp_list().is_empty() && n.inst(1).tcp_list().is_empty());
}

#[test]
fn connect_timeout_is_bounded_and_frees_the_slot() {
    let mut n = lan();
    let t0 = n.now_us;
    let (status, out) = n.cmd("ttcp -t 2 -i net1 10.0.0.77");
    assert_eq!((status, out.as_str()), (1, "ttcp: connect to 10.0.0.77 port 7: Connection timed out\n"));
    let waited = n.now_us - t0;
    assert!((2_000_000..3_000_000).contains(&waited), "waited {waited} µs");
    // The RST cannot leave (nobody answers ARP): freed after the grace.
    all_freed(&mut n, 1500);
}

/// The peer as a TCP server on `port`: `serve` runs on its socket before
/// each poll, with what it received so far.
fn peer_server(
    n: &mut Net,
    port: u16,
    mut serve: impl FnMut(&mut smoltcp::socket::tcp::Socket<'static>, &mut Vec<u8>) + 'static,
) -> SocketHandle {
    let h = n.peer().listen(port);
    let mut got = Vec::new();
    n.peer_app = Some(Box::new(move |p: &mut Peer| {
        let s = p.tcp(h);
        serve(s, &mut got);
    }));
    h
}

/// Reads everything available into `got`; sends back what the send
/// buffer takes of `got[*echoed..]`, passed through `alter`.
fn echo_some(
    s: &mut smoltcp::socket::tcp::Socket<'static>,
    got: &mut Vec<u8>,
    echoed: &mut usize,
    alter: impl Fn(usize, u8) -> u8,
) {
    while let Ok(k) = s.recv(|b| (b.len(), b.to_vec())) {
        if k.is_empty() {
            break;
        }
        got.extend_from_slice(&k);
    }
    if s.may_send() && *echoed < got.len() {
        let out: Vec<u8> = got[*echoed..].iter().enumerate().map(|(i, b)| alter(*echoed + i, *b)).collect();
        *echoed += s.send_slice(&out).unwrap_or(0);
    }
}

/// When a scripted echo peer ([`echo_peer`]) closes its side.
#[derive(Clone, Copy)]
enum PeerClose {
    /// After our FIN, once everything is echoed (an orderly echo server).
    AfterOurFin,
    /// As soon as this many bytes are echoed, before our FIN.
    OnceEchoed(usize),
    /// Never: it echoes and keeps its side open.
    Never,
}

/// The peer as an echo server on `port` that closes as `close` says;
/// the count of bytes it echoed.
fn echo_peer(n: &mut Net, port: u16, close: PeerClose) -> Rc<Cell<usize>> {
    let echoed = Rc::new(Cell::new(0usize));
    let e2 = echoed.clone();
    peer_server(n, port, move |s, got| {
        let mut k = e2.get();
        echo_some(s, got, &mut k, |_, b| b);
        e2.set(k);
        let done = match close {
            PeerClose::AfterOurFin => s.state() == State::CloseWait && k == got.len(),
            PeerClose::OnceEchoed(m) => k == m && s.may_send(),
            PeerClose::Never => false,
        };
        if done {
            s.close();
        }
    });
    echoed
}

#[test]
fn a_scripted_echo_peer_passes_then_a_corrupting_one_fails() {
    let mut n = lan();
    // A correct echo server: ttcp agrees, over a port that is not 7 (-e).
    let echoed = echo_peer(&mut n, 5007, PeerClose::AfterOurFin);
    let (status, out) = n.cmd("ttcp -e -n 50000 -p 5007 10.0.0.9");
    assert_eq!(status, 0, "{out}");
    assert_echo_line(&out, 50000);
    assert_eq!(echoed.get(), 50000);
    all_freed(&mut n, 2000);

    // One byte changed at offset 40000.
    let sent = Rc::new(Cell::new(0usize));
    let s2 = sent.clone();
    peer_server(&mut n, 5009, move |s, got| {
        let mut k = s2.get();
        echo_some(s, got, &mut k, |i, b| if i == 40000 { b ^ 0x20 } else { b });
        s2.set(k);
    });
    let (status, out) = n.cmd("ttcp -e -n 100000 -p 5009 10.0.0.9");
    let want = pattern_byte(40000);
    assert_eq!(status, 1, "{out}");
    assert_eq!(
        out,
        format!(
            "ttcp: 10.0.0.9 port 5009: echo mismatch at byte 40000: got 0x{:02x}, expected 0x{want:02x}\n",
            want ^ 0x20
        )
    );
    // Released mid-stream: reset, and freed.
    all_freed(&mut n, 2000);
}

#[test]
fn a_peer_that_resets_or_finishes_early() {
    let mut n = lan();
    // Reset after 30000 bytes.
    peer_server(&mut n, 6001, |s, got| {
        while let Ok(k) = s.recv(|b| (b.len(), b.len())) {
            if k == 0 {
                break;
            }
            got.resize(got.len() + k, 0);
        }
        if got.len() >= 30000 && s.is_active() {
            s.abort();
        }
    });
    let (status, out) = n.cmd("ttcp -n 200000 -p 6001 10.0.0.9");
    assert_eq!(status, 1, "{out}");
    assert!(out.starts_with("ttcp: 10.0.0.9 port 6001: Connection reset by peer after "), "{out}");
    assert!(out.ends_with(" of 200000 bytes sent\n"), "{out}");
    all_freed(&mut n, 1500);

    // Echo 1000 bytes, then finish sending (FIN) while still reading.
    let echoed = Rc::new(Cell::new(0usize));
    let e2 = echoed.clone();
    peer_server(&mut n, 6002, move |s, got| {
        let mut k = e2.get();
        if k < 1000 {
            echo_some(s, got, &mut k, |_, b| b);
            k = k.min(1000);
            e2.set(k);
        } else {
            while s.recv(|b| (b.len(), b.len())).is_ok_and(|n| n > 0) {}
            if s.may_send() {
                s.close();
            }
        }
    });
    let (status, out) = n.cmd("ttcp -e -n 100000 -p 6002 10.0.0.9");
    assert_eq!(status, 1, "{out}");
    assert!(out.starts_with("ttcp: 10.0.0.9 port 6002: peer closed the connection after "), "{out}");
    all_freed(&mut n, 6000);
}

#[test]
fn a_stalled_peer_times_out_and_ctrl_c_stops() {
    let mut n = lan();
    // Accepts but never reads: the window closes.
    peer_server(&mut n, 7001, |_, _| {});
    let (status, out) = n.cmd("ttcp -t 1 -n 1m -p 7001 10.0.0.9");
    assert_eq!(status, 1, "{out}");
    assert!(
        out.starts_with("ttcp: 10.0.0.9 port 7001: Connection timed out after ")
            && out.ends_with(" (no progress for 1 s, state ESTABLISHED)\n"),
        "{out}"
    );
    all_freed(&mut n, 1500);

    n.peer().listen(7002);
    n.peer_app = None;
    let (status, out) = n.cmd_interrupted("ttcp -n 1m -p 7002 10.0.0.9", Some(40));
    assert_eq!(status, 1, "{out}");
    assert!(out.starts_with("ttcp: interrupted after "), "{out}");
    all_freed(&mut n, 1500);
}

#[test]
fn the_api_states_bound_and_ports() {
    let mut n = lan();
    let b: Arc<dyn IpStack> = n.inst(1);
    let mut ids = Vec::new();
    for _ in 0..MAX_CLIENTS {
        ids.push(b.tcp_connect(ip("10.0.0.1"), 7).unwrap());
    }
    assert_eq!(b.tcp_connect(ip("10.0.0.1"), 7), Err(NetError::TooManyConnections));
    let list = b.tcp_list();
    assert_eq!(list.len(), MAX_CLIENTS);
    let mut ports: Vec<u16> = list.iter().map(|(_, s)| s.local.port()).collect();
    assert!(ports.iter().all(|p| *p >= EPHEMERAL_FIRST), "{ports:?}");
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), MAX_CLIENTS);
    assert!(list.iter().all(|(_, s)| s.state == TcpState::SynSent));
    // Nothing can be sent or shut down before the handshake.
    assert_eq!(b.tcp_send(ids[0], b"x"), Ok(0));
    assert_eq!(b.tcp_shutdown(ids[0]), Err(NetError::NotConnected));
    let established =
        n.run_until(500, |_| ids.iter().all(|id| b.tcp_status(*id).unwrap().state == TcpState::Established));
    assert!(established, "{:?}", b.tcp_list());

    // One connection through its states.
    let id = ids[0];
    let mut data = vec![0u8; 3000];
    fill_pattern(&mut data, 0);
    assert_eq!(b.tcp_send(id, &data), Ok(3000));
    let mut back = Vec::new();
    n.run_until(500, |_| {
        let mut buf = [0u8; 1024];
        while let Ok(k) = b.tcp_recv(id, &mut buf) {
            if k == 0 {
                break;
            }
            back.extend_from_slice(&buf[..k]);
        }
        back.len() == 3000
    });
    assert_eq!(back, data);
    assert_eq!(b.tcp_shutdown(id), Ok(()));
    assert_eq!(b.tcp_send(id, b"late"), Err(NetError::NotConnected));
    let done = n.run_until(500, |_| b.tcp_status(id).unwrap().state == TcpState::TimeWait);
    assert!(done, "{:?}", b.tcp_status(id));
    let st = b.tcp_status(id).unwrap();
    assert!(st.state.fin_acked() && st.state.peer_finished() && !st.state.failed());
    assert_eq!((st.unacked, st.readable), (0, 0));

    // Released: TIME_WAIT goes at once, established ones are reset.
    for id in &ids {
        b.tcp_close(*id);
    }
    assert_eq!(b.tcp_status(id), Err(NetError::NotFound));
    assert_eq!(b.tcp_send(id, b"x"), Err(NetError::NotFound));
    b.tcp_close(id); // twice: ignored
    all_freed(&mut n, 1500);
    n.run_ms(50);
    assert_eq!(service(&n, 0, "echo").active, 0, "the server saw the resets");
    // The slots are free again.
    let id = b.tcp_connect(ip("10.0.0.1"), 7).unwrap();
    b.tcp_close(id);
    all_freed(&mut n, 1500);
}

#[test]
fn refused_and_reset_are_sticky_states() {
    let mut n = lan();
    let b: Arc<dyn IpStack> = n.inst(1);
    let id = b.tcp_connect(ip("10.0.0.1"), 4444).unwrap();
    assert!(n.run_until(200, |_| b.tcp_status(id).unwrap().state == TcpState::Refused));
    assert_eq!(b.tcp_send(id, b"x"), Err(NetError::ConnectionRefused));
    assert_eq!(b.tcp_recv(id, &mut [0u8; 8]), Err(NetError::ConnectionRefused));
    assert_eq!(b.tcp_shutdown(id), Err(NetError::ConnectionRefused));
    n.run_ms(20);
    assert_eq!(b.tcp_status(id).unwrap().state, TcpState::Refused);
    b.tcp_close(id);
    assert!(b.tcp_list().is_empty(), "a refused connection is freed at once");

    let h = n.peer().listen(6100);
    let id = b.tcp_connect(ip(PEER_ADDR), 6100).unwrap();
    // (smoltcp sends one ARP request a second: this one may wait.)
    assert!(n.run_until(3000, |_| b.tcp_status(id).unwrap().state == TcpState::Established));
    assert_eq!(b.tcp_send(id, b"hello"), Ok(5));
    n.run_ms(20);
    n.peer().tcp(h).abort();
    assert!(n.run_until(200, |_| b.tcp_status(id).unwrap().state == TcpState::Reset));
    assert_eq!(b.tcp_send(id, b"x"), Err(NetError::ConnectionReset));
    b.tcp_close(id);
    all_freed(&mut n, 1500);
}

const PEER_ADDR: &str = "10.0.0.9";

/// Two instances whose polls take one frame each (so ACKs leave between
/// the segments of a burst, as on a busy kernel).
fn lan_one_frame_per_poll() -> Net {
    let mut n = Net::new();
    n.cfg.rx_budget = 1;
    n.add_instance("net0", 1, "10.0.0.1/24");
    n.add_instance("net1", 2, "10.0.0.2/24");
    n
}

/// Regression: with 64 KiB receive buffers (window scaling by 1) smoltcp
/// 0.12 panicked here as soon as an odd amount was queued while the peer
/// filled the window it had just been offered.
#[test]
fn odd_sizes_with_acks_between_segments() {
    let mut n = lan_one_frame_per_poll();
    for k in 0..40u64 {
        let size = 100_000 + k * 7919 + 1;
        let (status, out) = n.cmd(&format!("ttcp -i net1 -n {size} 10.0.0.1"));
        assert_eq!(status, 0, "{out}");
        assert_echo_line(&out, size);
    }
    // More than MAX_CLIENTS runs in well under a second: released
    // connections in TIME_WAIT give up their slots to new ones.
    let (status, out) = n.cmd("ttcp -i net1 -n 10 -p 9 10.0.0.1");
    assert_eq!(status, 0, "{out}");
    all_freed(&mut n, 1500);
}

/// The API with sends and reads of odd sizes, interleaved with single
/// network steps.
#[test]
fn odd_reads_and_writes_through_the_api() {
    let mut n = lan_one_frame_per_poll();
    let b: Arc<dyn IpStack> = n.inst(1);
    for round in 0..6usize {
        let id = b.tcp_connect(ip("10.0.0.1"), 7).unwrap();
        let total = 300_001 + round * 13;
        let mut data = vec![0u8; total];
        fill_pattern(&mut data, 0);
        let (mut sent, mut got, mut steps) = (0usize, 0usize, 0usize);
        while got < total {
            steps += 1;
            assert!(steps < 200_000, "stuck at {sent} sent, {got} back: {:?}", b.tcp_status(id));
            let chunk = (1 + (steps * 7 + round) % 5000).min(total - sent);
            if chunk > 0 {
                sent += b.tcp_send(id, &data[sent..sent + chunk]).unwrap();
            }
            let mut buf = vec![0u8; 1 + (steps * 13) % 3001];
            let k = b.tcp_recv(id, &mut buf).unwrap();
            assert_eq!(&buf[..k], &data[got..got + k]);
            got += k;
            n.step();
            if steps % 3 == 0 {
                n.now_us += 100;
            }
        }
        b.tcp_close(id);
        n.run_ms(20);
    }
    all_freed(&mut n, 1500);
}

/// `ttcp: N connections of B bytes each, WHAT, in X.XX s (Y.Y conn/s)`.
fn assert_cycles_line(out: &str, count: u32, bytes: u64, what: &str) {
    let head = format!("ttcp: {count} connections of {bytes} bytes each, {what}, in ");
    assert!(out.starts_with(&head) && out.ends_with(" conn/s)\n") && out.lines().count() == 1, "{out}");
    let tail = &out[head.len()..];
    let (secs, rate) = tail.split_once(" s (").unwrap_or_else(|| panic!("{out}"));
    let secs: f64 = secs.parse().unwrap_or_else(|_| panic!("{out}"));
    let rate: f64 = rate.trim_end_matches(" conn/s)\n").parse().unwrap_or_else(|_| panic!("{out}"));
    assert!(secs > 0.0 && (rate * secs - f64::from(count)).abs() <= 0.01 * f64::from(count) + 1.0, "{out}");
}

#[test]
fn ttcp_cycles_close_first_and_end_in_time_wait_on_our_side() {
    let mut n = lan();
    let (status, out) = n.cmd("ttcp -c 50 -n 32 -i net1 10.0.0.1");
    assert_eq!(status, 0, "{out}\n{}", n.dump());
    assert_cycles_line(&out, 50, 32, "echoed and verified");
    let echo = service(&n, 0, "echo");
    assert_eq!((echo.accepted, echo.bytes_in, echo.bytes_out), (50, 50 * 32, 50 * 32));
    // Released in TIME_WAIT: the last ones are still there (smoltcp's
    // instance keeps them a second), and all of them in TIME_WAIT; the
    // server went through LAST_ACK, so it keeps none.
    let held = n.inst(1).tcp_list();
    assert!(
        !held.is_empty() && held.iter().all(|(_, s)| s.state == TcpState::TimeWait && s.closing_in_background),
        "{held:?}"
    );
    let server: Vec<_> = n.inst(0).tcp_endpoints().into_iter().filter(|e| e.remote.is_some()).collect();
    assert!(server.iter().all(|e| e.state != "TIME_WAIT"), "{server:?}");
    all_freed(&mut n, 1500);
    n.run_ms(50);
    assert_eq!(service(&n, 0, "echo").active, 0);

    // Discard: nothing comes back; chargen: what comes is counted, and it
    // finishes when our FIN arrives.
    let (status, out) = n.cmd("ttcp -c 20 -n 100 -i net1 -p 9 10.0.0.1");
    assert_eq!(status, 0, "{out}");
    assert_cycles_line(&out, 20, 100, "sent and acknowledged");
    assert_eq!(service(&n, 0, "discard").bytes_in, 2000);
    let (status, out) = n.cmd("ttcp -c 3 -n 10 -i net1 -p 19 10.0.0.1");
    assert_eq!(status, 0, "{out}");
    assert!(
        out.starts_with("ttcp: 3 connections of 10 bytes each, sent and acknowledged, ")
            && out.contains(" bytes received, in "),
        "{out}"
    );
    // One connection, and zero bytes.
    let (status, out) = n.cmd("ttcp -c 1 -n 0 -i net1 10.0.0.1");
    assert_eq!(status, 0, "{out}");
    assert!(out.starts_with("ttcp: 1 connection of 0 bytes each, echoed and verified, in "), "{out}");
    all_freed(&mut n, 1500);
    for i in 0..2 {
        assert_eq!(n.inst(i).stats().rx_drops(), 0, "{}", n.dump());
    }
}

#[test]
fn ttcp_cycles_name_the_connection_that_failed() {
    let mut n = lan();
    // The peer's socket serves one connection (echo, closing after our
    // FIN), then nothing listens: the second is refused.
    let echoed = echo_peer(&mut n, 5007, PeerClose::AfterOurFin);
    let (status, out) = n.cmd("ttcp -c 3 -e -n 100 -p 5007 10.0.0.9");
    assert_eq!(
        (status, out.as_str()),
        (1, "ttcp: connection 2 of 3: connect to 10.0.0.9 port 5007: Connection refused\n")
    );
    assert_eq!(echoed.get(), 100);
    all_freed(&mut n, 2000);

    // A peer that closes as soon as it echoed everything, before our FIN.
    echo_peer(&mut n, 6003, PeerClose::OnceEchoed(100));
    let (status, out) = n.cmd("ttcp -c 2 -e -n 100 -p 6003 10.0.0.9");
    assert_eq!(
        (status, out.as_str()),
        (
            1,
            "ttcp: connection 1 of 2: 10.0.0.9 port 6003: peer closed the connection after 100 of 100 bytes sent, 100 echoed\n"
        )
    );
    all_freed(&mut n, 6000);

    // A peer that echoes and never sends its FIN: the wait for it is
    // bounded by -t.
    echo_peer(&mut n, 6004, PeerClose::Never);
    let (status, out) = n.cmd("ttcp -c 2 -t 1 -e -n 100 -p 6004 10.0.0.9");
    assert_eq!(
        (status, out.as_str()),
        (
            1,
            "ttcp: connection 1 of 2: 10.0.0.9 port 6004: Connection timed out after 100 of 100 bytes sent, 100 echoed (no progress for 1 s, state FIN_WAIT_2)\n"
        )
    );
    all_freed(&mut n, 7000);

    // Ctrl-C in the middle of a run.
    let (status, out) = n.cmd_interrupted("ttcp -c 1000 -n 32 -i net1 10.0.0.1", Some(40));
    assert_eq!(status, 1, "{out}");
    let (conn, rest) = out
        .strip_prefix("ttcp: connection ")
        .and_then(|r| r.split_once(" of 1000: "))
        .unwrap_or_else(|| panic!("{out}"));
    let conn: u32 = conn.parse().unwrap_or_else(|_| panic!("{out}"));
    assert!(conn > 1 && conn < 1000 && rest.starts_with("interrupted after ") && out.lines().count() == 1, "{out}");
    assert!(service(&n, 0, "echo").accepted >= u64::from(conn) - 1);
    all_freed(&mut n, 6000);
}
