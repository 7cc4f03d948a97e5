//! FireEngine TCP over a real network (the first booted cases of issue
//! 13): the guest boots with `stack=fireengine`, `net0` is virtio-net with
//! 2 queue pairs and a TAP into a namespace this test creates, Linux on
//! the other side.
//!
//! * 8 MiB of seeded random bytes through the guest's TCP echo service
//!   (port 7) come back byte-exact, on 4 connections one after another;
//! * while a connection is open, Linux's `TCP_INFO` shows SACK, timestamps
//!   and window scaling negotiated with the guest, and the guest's
//!   `netstat -an` lists the connection ESTABLISHED in illumos' `TCP:
//!   IPv4` table;
//! * a connection to a closed port is refused (the guest answers RST);
//! * `netstat -s` counts the passive opens and the bytes, and when the
//!   connections are closed no conn is left but the listeners.

use std::net::SocketAddr;
use std::time::Duration;

use arbalest_tests::net::{netstat_value, tcp_echo_verify, CmdOutput, NetVm, ECHO_PORT, GUEST_IP};
use arbalest_tests::Config;

fn boot() -> NetVm {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));
    vm
}

#[test]
fn fireengine_tcp_echo_options_refused_and_counters() {
    let mut vm = boot();
    let echo = SocketAddr::from((GUEST_IP, ECHO_PORT));
    assert!(vm.run("ipadm show-if").contains("fireengine"));

    // Byte-exact echo, four connections of 2 MiB.
    for seed in 0..4u64 {
        let r = vm.in_ns(move || tcp_echo_verify(echo, 2 << 20, seed, Duration::from_secs(300)));
        let st = r.unwrap_or_else(|e| panic!("echo {seed}: {e}\n"));
        eprintln!("echo {seed}: {} bytes in {:?}", st.bytes, st.elapsed);
    }

    // A connection held open: what Linux negotiated (its TCP_INFO:
    // `tcpi_options` bits 1 timestamps, 2 SACK, 4 window scale; this
    // machine's `ss -tin` does not print them, even between two Linux
    // sockets), and the guest's table.
    let script = format!(
        "import socket,time,sys\n\
         c=socket.create_connection(('{GUEST_IP}',7),timeout=30)\n\
         i=c.getsockopt(socket.IPPROTO_TCP,socket.TCP_INFO,104)\n\
         print('options',i[5],'snd_wscale',i[6]&15,'rcv_wscale',i[6]>>4,flush=True)\n\
         time.sleep(6)\n"
    );
    let (tx, rx) = std::sync::mpsc::channel::<CmdOutput>();
    let ns_name = vm.ns().name().to_string();
    let holder = std::thread::spawn(move || {
        let o = std::process::Command::new("ip")
            .args(["netns", "exec", &ns_name, "/usr/bin/python3", "-c", &script])
            .output()
            .expect("python3");
        let _ = tx.send(CmdOutput {
            command: "python3 (TCP_INFO of a held connection)".into(),
            code: o.status.code(),
            timed_out: false,
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        });
    });
    std::thread::sleep(Duration::from_secs(3));
    let an = vm.run("netstat -an");
    holder.join().unwrap();
    let info = rx.recv().unwrap();
    let opts: Vec<u64> = info.stdout.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(opts.len(), 3, "TCP_INFO: {}", info.describe());
    assert_eq!(opts[0] & 7, 7, "Linux did not negotiate timestamps, SACK and window scaling with the guest: {}", info.stdout);
    assert!(opts[1] > 0, "the guest offered no window scale: {}", info.stdout);
    assert!(an.contains("TCP: IPv4"), "{an}");
    assert!(
        an.lines().any(|l| l.contains(&format!("{GUEST_IP}.7")) && l.contains("ESTABLISHED")),
        "no ESTABLISHED row for the echo connection:\n{an}"
    );
    assert!(an.lines().any(|l| l.contains("*.7") && l.contains("LISTEN")), "{an}");

    // A closed port: refused.
    let closed = SocketAddr::from((GUEST_IP, 4444));
    let r = vm.in_ns(move || std::net::TcpStream::connect_timeout(&closed, Duration::from_secs(10)).map(|_| ()).map_err(|e| e.kind()));
    assert_eq!(r, Err(std::io::ErrorKind::ConnectionRefused));

    // Counters, and nothing left behind once the peers closed.
    std::thread::sleep(Duration::from_secs(3));
    let s = vm.run("netstat -s");
    assert!(netstat_value(&s, "tcpPassiveOpens").unwrap_or(0) >= 5, "{s}");
    assert!(netstat_value(&s, "tcpInInorderBytes").unwrap_or(0) >= 8 << 20, "{s}");
    assert!(netstat_value(&s, "tcpInClosed").unwrap_or(0) >= 1, "{s}");
    assert_eq!(netstat_value(&s, "tcpCurrEstab"), Some(0), "{s}");
    let an = vm.run("netstat -an");
    let stale: Vec<&str> = an.lines().filter(|l| l.contains(&format!("{GUEST_IP}.7 ")) && !l.contains("TIME_WAIT")).collect();
    assert!(stale.is_empty(), "conns left:\n{an}");
}
