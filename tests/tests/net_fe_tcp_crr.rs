//! Short TCP connections against FireEngine's echo service on a 2-CPU
//! guest (the benchmark's `tcp_crr`): connect, 1 byte echoed, close, for
//! 20 s from Linux in the test's namespace. Every cycle must complete.
//!
//! This found a self-deadlock: the echo service's first run, called from
//! the listener's accept upcall in the listener's squeue, entered the
//! accepted conn's squeue inline, whose events called the service again
//! while its first run held its buffer lock; the CPU spun forever and the
//! guest stopped answering after a handful of connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use arbalest_tests::Config;
use arbalest_tests::net::{ECHO_PORT, GUEST_IP, NetVm};

#[test]
fn fireengine_echo_serves_every_short_connection() {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let mut vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));
    let echo = SocketAddr::from((GUEST_IP, ECHO_PORT));
    let r = vm.in_ns(move || {
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < Duration::from_secs(20) {
            let v = [b'a' + (n % 26) as u8];
            let one = || -> Result<(), String> {
                let mut s = TcpStream::connect_timeout(&echo, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                s.write_all(&v).map_err(|e| format!("write: {e}"))?;
                let mut b = [0u8; 1];
                s.read_exact(&mut b).map_err(|e| format!("read: {e}"))?;
                if b != v {
                    return Err(format!("sent {:?}, got {:?}", v[0], b[0]));
                }
                Ok(())
            };
            one().map_err(|e| format!("cycle {n} at {:?}: {e}", t0.elapsed()))?;
            n += 1;
        }
        Ok::<_, String>((n, t0.elapsed()))
    });
    let (n, took) = match r {
        Ok(v) => v,
        Err(e) => panic!("{e}\nnetstat -an:\n{}\nsqstat:\n{}", vm.run("netstat -an"), vm.run("sqstat")),
    };
    eprintln!("{n} connect/echo/close cycles in {took:?} ({:.0}/s)", n as f64 / took.as_secs_f64());
    // Far fewer than TCG manages, so that only a stall fails it.
    assert!(n >= 200, "only {n} cycles in {took:?}");
    let mib = vm.run("netstat -s");
    assert!(mib.contains("tcpPassiveOpens"), "{mib}");
}
