//! `ipadm show-prop`/`set-prop`/`reset-prop` and `ndd` on FireEngine's
//! tunables: illumos' columns, values that take effect in the table the
//! stack reads, and every refused command line: a non-zero exit, a reason,
//! and nothing changed.

use std::sync::Arc;

use arbalest_netstack::admin::{self, AdminEnv};
use arbalest_netstack::fireengine::tunables::{Tun, Tunables};
use arbalest_netstack::{IpStack, NetError, StackKind};

struct Env {
    t: Option<Arc<Tunables>>,
}

impl AdminEnv for Env {
    fn instances(&self) -> Vec<Arc<dyn IpStack>> {
        Vec::new()
    }
    fn fe_tunables(&self) -> Option<Arc<Tunables>> {
        self.t.clone()
    }
    fn create_if(&mut self, _: &str, _: Option<StackKind>) -> Result<Arc<dyn IpStack>, NetError> {
        Err(NetError::NoSuchInterface)
    }
    fn delete_if(&mut self, _: &str) -> Result<(), NetError> {
        Err(NetError::NoSuchInterface)
    }
    fn now_us(&self) -> u64 {
        0
    }
    fn sleep_ms(&mut self, _: u64) {}
    fn interrupted(&mut self) -> bool {
        false
    }
    fn poll_now(&mut self) {}
}

fn env() -> Env {
    Env { t: Some(Arc::new(Tunables::default())) }
}

fn run(env: &mut Env, line: &str) -> (i32, String) {
    let argv: Vec<&str> = line.split_whitespace().collect();
    let mut out = String::new();
    let st = admin::run(&argv, env, &mut out).expect("a known command");
    (st, out)
}

/// Everything a user can read of the tunables.
fn snapshot(env: &mut Env) -> String {
    let mut s = run(env, "ipadm show-prop").1;
    for d in ["/dev/ip", "/dev/icmp", "/dev/udp", "/dev/tcp"] {
        s += &run(env, &format!("ndd {d}")).1;
    }
    s
}

const SHOW_ALL: &str = "\
PROTO PROPERTY              PERM CURRENT      PERSISTENT   DEFAULT      POSSIBLE
ipv4  _icmp_err_burst       rw   10           --           10           1-99999
ipv4  _icmp_err_interval    rw   100          --           100          0-99999
ipv4  _lso_outbound         rw   on           --           on           on,off
ipv4  forwarding            rw   off          --           off          on,off
ipv4  ttl                   rw   255          --           255          1-255
icmp  max_buf               rw   2097152      --           2097152      65536-16777216
icmp  recv_buf              rw   8192         --           8192         128-16777216
icmp  send_buf              rw   57344        --           57344        128-16777216
udp   largest_anon_port     rw   65535        --           65535        1024-65535
udp   max_buf               rw   2097152      --           2097152      65536-16777216
udp   recv_buf              rw   131072       --           131072       128-16777216
udp   send_buf              rw   57344        --           57344        128-16777216
udp   smallest_anon_port    rw   32768        --           32768        1024-65535
";

#[test]
fn show_prop_prints_illumos_columns_for_every_protocol() {
    let mut e = env();
    // TCP's rows are fe_tcp_tunables.rs' to check; they sit between
    // icmp's and udp's.
    let (st, all) = run(&mut e, "ipadm show-prop");
    assert_eq!(st, 0);
    let protos: Vec<&str> = all.lines().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect();
    let first_tcp = protos.iter().position(|p| *p == "tcp").unwrap();
    assert!(protos[..first_tcp].iter().all(|p| *p == "ipv4" || *p == "icmp"), "{all}");
    assert!(protos[first_tcp..].iter().skip_while(|p| **p == "tcp").all(|p| *p == "udp"), "{all}");
    let without_tcp: String = all.lines().filter(|l| !l.starts_with("tcp ")).map(|l| format!("{l}\n")).collect();
    assert_eq!(without_tcp, SHOW_ALL);
    let (st, out) = run(&mut e, "ipadm show-prop ip");
    assert_eq!(st, 0);
    assert_eq!(out.lines().count(), 6, "header + three private ones + forwarding + ttl:\n{out}");
    assert_eq!(run(&mut e, "ipadm show-prop -p ttl ipv4").1.lines().nth(1), SHOW_ALL.lines().nth(5));
    assert_eq!(run(&mut e, "ipadm show-prop -c -o property,current -p send_buf,recv_buf udp"), (0, "send_buf:57344\nrecv_buf:131072\n".into()));
    // Without a protocol, a name matches in every protocol that has it.
    assert_eq!(run(&mut e, "ipadm show-prop -c -o proto,current -p max_buf"), (0, "icmp:2097152\ntcp:1048576\nudp:2097152\n".into()));
}

#[test]
fn set_prop_and_reset_prop_change_the_live_values() {
    let mut e = env();
    let t = e.t.clone().unwrap();
    assert_eq!(run(&mut e, "ipadm set-prop -p ttl=64 ipv4"), (0, String::new()));
    assert_eq!(t.ttl(), 64);
    assert_eq!(run(&mut e, "ipadm show-prop -c -o current,default -p ttl ip").1, "64:255\n");
    assert_eq!(run(&mut e, "ipadm set-prop -t -p smallest_anon_port=50000 udp").0, 0);
    assert_eq!(t.udp_anon_ports(), (50000, 65535));
    assert_eq!(run(&mut e, "ipadm set-prop -p recv_buf=4096 udp").0, 0);
    assert_eq!(t.udp_recv_buf(), 4096);
    assert_eq!(run(&mut e, "ipadm set-prop -p forwarding=off ipv4").0, 0);
    assert_eq!(run(&mut e, "ipadm reset-prop -p ttl ipv4").0, 0);
    assert_eq!(t.ttl(), 255);
    assert_eq!(run(&mut e, "ipadm reset-prop -p recv_buf udp").0, 0);
    assert_eq!(t.udp_recv_buf(), 131072);
    // ndd sees the same values under its names, and sets them.
    assert_eq!(run(&mut e, "ndd /dev/udp udp_smallest_anon_port"), (0, "50000\n".into()));
    assert_eq!(run(&mut e, "ndd -set /dev/ip ip_def_ttl 32").0, 0);
    assert_eq!(t.ttl(), 32);
    assert_eq!(run(&mut e, "ndd -set /dev/ip ip_squeue_fanout 1").0, 0);
    assert_eq!(t.squeue.ip_squeue_fanout(), 1);
    assert_eq!(run(&mut e, "ndd -set /dev/ip ip_squeue_wait 0").0, 0);
    assert_eq!(t.squeue.worker_wait_ns(), 0);
    assert_eq!(run(&mut e, "ndd -set /dev/tcp tcp_squeue_wput 1").0, 0);
    assert_eq!(t.squeue.tcp_squeue_wput(), 1);
    assert_eq!(run(&mut e, "ndd /dev/ip ip_squeue_wait"), (0, "0\n".into()));
    let (st, list) = run(&mut e, "ndd /dev/ip \\?");
    assert_eq!(st, 0);
    let names: Vec<&str> = list.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(
        names,
        ["ip_forwarding", "ip_def_ttl", "ip_icmp_err_interval", "ip_icmp_err_burst", "ip_lso_outbound", "ip_squeue_fanout", "ip_squeue_wait", "ip_squeue_bind"]
    );
}

#[test]
fn every_refused_command_line_exits_non_zero_says_why_and_changes_nothing() {
    let mut e = env();
    // Move a few values off their defaults first, so that "unchanged" is
    // not just "still at the default".
    for l in ["ipadm set-prop -p ttl=100 ipv4", "ipadm set-prop -p max_buf=1048576 udp", "ipadm set-prop -p largest_anon_port=60000 udp"] {
        assert_eq!(run(&mut e, l).0, 0, "{l}");
    }
    let before = snapshot(&mut e);
    let refused: &[(&str, i32, &str)] = &[
        ("ipadm set-prop -p ttl=0 ipv4", 1, "out of range 1-255"),
        ("ipadm set-prop -p ttl=256 ipv4", 1, "out of range 1-255"),
        ("ipadm set-prop -p ttl=-1 ipv4", 1, "not a valid value"),
        ("ipadm set-prop -p ttl=12abc ipv4", 1, "not a valid value"),
        ("ipadm set-prop -p ttl= ipv4", 1, "not a valid value"),
        ("ipadm set-prop -p ttl=99999999999 ipv4", 1, "not a valid value"),
        ("ipadm set-prop -p ttl ipv4", 2, "expected <prop>=<value>"),
        ("ipadm set-prop -p ttl=64 ipv6", 1, "invalid protocol 'ipv6'"),
        ("ipadm set-prop -p ttl=64", 2, "protocol name is required"),
        ("ipadm set-prop -p ttl=64 ipv4 udp", 2, "more than one protocol"),
        ("ipadm set-prop ipv4", 2, "-p <prop> is required"),
        ("ipadm set-prop -p ttl=64 -p ttl=65 ipv4", 2, "one property at a time"),
        ("ipadm set-prop -x -p ttl=64 ipv4", 2, "unrecognized option '-x'"),
        ("ipadm set-prop -p", 2, "requires a value"),
        ("ipadm set-prop -p nosuch=1 udp", 1, "nosuch: unknown property of udp"),
        ("ipadm set-prop -p ttl=64 udp", 1, "ttl: unknown property of udp"),
        ("ipadm set-prop -p ttl+=64 ipv4", 1, "not a multi-valued property"),
        ("ipadm set-prop -p forwarding=on ipv4", 1, "do not forward"),
        ("ipadm set-prop -p forwarding=yes ipv4", 1, "not a valid value"),
        ("ipadm set-prop -p recv_buf=2000000 udp", 1, "above max_buf (1048576)"),
        ("ipadm set-prop -p send_buf=127 udp", 1, "out of range 128-16777216"),
        ("ipadm set-prop -p max_buf=65536 udp", 1, "below send_buf or recv_buf (131072)"),
        ("ipadm set-prop -p smallest_anon_port=60001 udp", 1, "anonymous port range empty (60001-60000)"),
        ("ipadm set-prop -p smallest_anon_port=1023 udp", 1, "out of range 1024-65535"),
        ("ipadm set-prop -p largest_anon_port=70000 udp", 1, "out of range 1024-65535"),
        ("ipadm reset-prop -p ttl=1 ipv4", 2, "takes a property name, not a value"),
        ("ipadm reset-prop -p nosuch ipv4", 1, "nosuch: unknown property of ipv4"),
        ("ipadm show-prop -p nosuch", 1, "nosuch: unknown property of any protocol"),
        ("ipadm show-prop -p ttl udp", 1, "ttl: unknown property of udp"),
        ("ipadm show-prop -c ipv4", 1, "-c requires -o"),
        ("ipadm show-prop -o nosuch ipv4", 1, "invalid field(s) specified: nosuch"),
        ("ipadm show-prop -c -o all ipv4", 1, "'all' invalid in parsable mode"),
        ("ipadm show-prop sctp", 1, "invalid protocol 'sctp'"),
        ("ipadm show-prop ipv4 udp", 2, "more than one protocol"),
        ("ndd /dev/ip nosuch", 1, "no such variable 'nosuch'"),
        ("ndd /dev/nosuch", 1, "/dev/nosuch: no such driver"),
        ("ndd -set /dev/ip ip_squeue_fanout 2", 1, "out of range 0-1"),
        ("ndd -set /dev/ip ip_squeue_wait 1001", 1, "out of range 0-1000"),
        ("ndd -set /dev/ip ip_squeue_bind x", 1, "not a valid value"),
        ("ndd -set /dev/tcp tcp_squeue_wput 0", 1, "out of range 1-2"),
        ("ndd -set /dev/tcp tcp_squeue_wput 3", 1, "out of range 1-2"),
        ("ndd -set /dev/ip ip_forwarding 1", 1, "do not forward"),
        ("ndd -set /dev/udp udp_xmit_hiwat 2000000", 1, "above max_buf (1048576)"),
        ("ndd -set /dev/udp udp_smallest_anon_port 65000", 1, "anonymous port range empty"),
        ("ndd -set /dev/ip ip_def_ttl", 2, "usage:"),
        ("ndd -set /dev/ip ip_def_ttl 1 2", 2, "usage:"),
        ("ndd -set", 2, "usage:"),
        ("ndd", 2, "usage:"),
        ("ndd /dev/tcp ip_squeue_wait", 1, "no such variable"),
    ];
    for (line, status, why) in refused {
        let (st, out) = run(&mut e, line);
        assert_eq!(st, *status, "{line}: exit status; said: {out}");
        assert!(out.contains(why), "{line}: expected '{why}' in: {out}");
        if *status == 1 && (line.contains("set") || line.starts_with("ipadm reset")) && !line.starts_with("ipadm show") {
            assert!(out.contains("nothing changed") || !out.contains("cannot"), "{line}: {out}");
        }
        assert_eq!(snapshot(&mut e), before, "{line} changed something");
    }
}

#[test]
fn without_fireengine_the_commands_say_so() {
    let mut e = Env { t: None };
    for line in ["ipadm show-prop", "ipadm set-prop -p ttl=1 ipv4", "ndd /dev/ip"] {
        let (st, out) = run(&mut e, line);
        assert_eq!(st, 1, "{line}");
        assert!(out.contains("FireEngine is not available"), "{line}: {out}");
    }
}

#[test]
fn tunables_keep_tied_values_consistent() {
    let t = Tunables::default();
    assert!(t.set(Tun::UdpMaxBuf, 65536).is_err(), "recv_buf is 128 KiB");
    t.set(Tun::UdpRecvBuf, 60000).unwrap();
    t.set(Tun::UdpMaxBuf, 65536).unwrap();
    assert!(t.set(Tun::UdpSendBuf, 65537).is_err());
    assert!(t.reset(Tun::UdpRecvBuf).is_err(), "the default is above max_buf now");
    t.set(Tun::UdpLargestAnon, 2000).unwrap_err();
    t.set(Tun::UdpSmallestAnon, 1024).unwrap();
    t.set(Tun::UdpLargestAnon, 1024).unwrap();
    assert_eq!(t.udp_anon_ports(), (1024, 1024), "a one-port range is a range");
}
