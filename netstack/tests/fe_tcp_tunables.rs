//! FireEngine's TCP tunables through `ipadm show-prop`/`set-prop`/
//! `reset-prop tcp` and `ndd /dev/tcp`: illumos' names, defaults and
//! ranges, named values (`sack`, `ecn`, `congestion_control`) shown and
//! taken by name, the tied values refused with a reason and nothing
//! changed, and the typed snapshot the TCP code reads
//! ([`Tunables::tcp`]), consistent even while values change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arbalest_netstack::admin::{self, AdminEnv};
use arbalest_netstack::fireengine::tunables::{
    self, NddDev, Possible, Proto, TcpCc, TcpOptMode, TcpTun, TcpTunables, Tun, TunError, Tunables,
};
use arbalest_netstack::{IpStack, NetError, StackKind};

struct Env {
    t: Arc<Tunables>,
}

impl AdminEnv for Env {
    fn instances(&self) -> Vec<Arc<dyn IpStack>> {
        Vec::new()
    }
    fn fe_tunables(&self) -> Option<Arc<Tunables>> {
        Some(self.t.clone())
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
    Env { t: Arc::new(Tunables::default()) }
}

fn run(env: &mut Env, line: &str) -> (i32, String) {
    let argv: Vec<&str> = line.split_whitespace().collect();
    let mut out = String::new();
    let st = admin::run(&argv, env, &mut out).expect("a known command");
    (st, out)
}

fn ok(env: &mut Env, line: &str) -> String {
    let (st, out) = run(env, line);
    assert_eq!(st, 0, "{line}: {out}");
    out
}

/// Everything a user can read of the tunables.
fn snapshot(env: &mut Env) -> String {
    let mut s = run(env, "ipadm show-prop").1;
    for d in ["/dev/ip", "/dev/icmp", "/dev/udp", "/dev/tcp"] {
        s += &run(env, &format!("ndd {d}")).1;
    }
    s
}

/// `ipadm show-prop tcp` at the defaults (illumos `tcp_tunables.c`, and
/// ours: `_challenge_ack_limit`, `_conn_max`, `_syn_cookies`, the fusion
/// pair, `congestion_control`'s values). Names longer than the PROPERTY
/// column push the row right and it catches up, as illumos' ofmt does.
const SHOW_TCP: &str = "\
PROTO PROPERTY              PERM CURRENT      PERSISTENT   DEFAULT      POSSIBLE
tcp   _challenge_ack_limit  rw   1000         --           1000         1-1000000
tcp   _conn_max             rw   16384        --           16384        1-1048576
tcp   _conn_req_max_q       rw   128          --           128          1-4294967295
tcp   _conn_req_max_q0      rw   1024         --           1024         0-4294967295
tcp   _conn_req_min         rw   1            --           1            1-1024
tcp   _cwnd_max             rw   1048576      --           1048576      128-1073741824
tcp   _deferred_ack_interval rw  100          --           100          1-60000
tcp   _deferred_acks_max    rw   2            --           2            0-16
tcp   _do_fusion            rw   on           --           on           on,off
tcp   _dupack_fast_retransmit rw 3            --           3            1-10000
tcp   _fin_wait_2_flush_interval rw 60000     --           60000        1000-7200000
tcp   _fusion_rcv_unread_min rw  8            --           8            0-65535
tcp   _ip_abort_cinterval   rw   180000       --           180000       1000-4294967295
tcp   _ip_abort_interval    rw   300000       --           300000       500-4294967295
tcp   _keepalive_abort_interval rw 480000     --           480000       0-4294967295
tcp   _keepalive_interval   rw   7200000      --           7200000      1000-864000000
tcp   _local_dack_interval  rw   50           --           50           10-500
tcp   _local_dacks_max      rw   8            --           8            0-16
tcp   _mss_def_ipv4         rw   536          --           536          1-65495
tcp   _mss_max_ipv4         rw   65495        --           65495        1-65495
tcp   _mss_min              rw   108          --           108          1-65495
tcp   _naglim_def           rw   4095         --           4095         1-65535
tcp   _rexmit_interval_initial rw 1000        --           1000         1-20000
tcp   _rexmit_interval_max  rw   60000        --           60000        1-7200000
tcp   _rexmit_interval_min  rw   400          --           400          1-7200000
tcp   _rst_sent_rate        rw   40           --           40           0-4294967295
tcp   _rst_sent_rate_enabled rw  on           --           on           on,off
tcp   _syn_cookies          rw   on           --           on           on,off
tcp   _time_wait_interval   rw   60000        --           60000        1000-600000
tcp   _tstamp_always        rw   off          --           off          on,off
tcp   _tstamp_if_wscale     rw   on           --           on           on,off
tcp   _wscale_always        rw   on           --           on           on,off
tcp   congestion_control    rw   cubic        --           cubic        newreno,cubic
tcp   ecn                   rw   passive      --           passive      never,passive,active
tcp   largest_anon_port     rw   65535        --           65535        1024-65535
tcp   max_buf               rw   1048576      --           1048576      8192-1073741824
tcp   recv_buf              rw   128000       --           128000       2048-1073741824
tcp   sack                  rw   active       --           active       never,passive,active
tcp   send_buf              rw   49152        --           49152        4096-1073741824
tcp   smallest_anon_port    rw   32768        --           32768        1024-65535
tcp   smallest_nonpriv_port rw   1024         --           1024         1024-32768
";

#[test]
fn show_prop_tcp_prints_illumos_columns_defaults_and_ranges() {
    let mut e = env();
    assert_eq!(ok(&mut e, "ipadm show-prop tcp"), SHOW_TCP);
    // With every protocol, TCP's rows come between icmp's and udp's.
    let all = ok(&mut e, "ipadm show-prop");
    assert!(all.contains(&SHOW_TCP.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>()));
    assert_eq!(ok(&mut e, "ipadm show-prop -c -o property,current,default,possible -p sack,ecn,congestion_control tcp"),
        "sack:active:active:never,passive,active\necn:passive:passive:never,passive,active\ncongestion_control:cubic:cubic:newreno,cubic\n");
    assert_eq!(ok(&mut e, "ipadm show-prop -c -o proto,current -p send_buf"), "icmp:57344\ntcp:49152\nudp:57344\n");
    assert_eq!(ok(&mut e, "ipadm show-prop -c -o current -p _fin_wait_2_flush_interval tcp"), "60000\n");
}

#[test]
fn set_prop_and_reset_prop_change_the_snapshot_the_tcp_code_reads() {
    let mut e = env();
    let t = e.t.clone();
    assert_eq!(t.tcp(), TcpTunables::default());
    for l in [
        "ipadm set-prop -p congestion_control=newreno tcp",
        "ipadm set-prop -p sack=passive tcp",
        "ipadm set-prop -p ecn=0 tcp",
        "ipadm set-prop -p send_buf=65536 tcp",
        "ipadm set-prop -p max_buf=4194304 tcp",
        "ipadm set-prop -p recv_buf=2097152 tcp",
        "ipadm set-prop -t -p smallest_anon_port=40000 tcp",
        "ipadm set-prop -p largest_anon_port=50000 tcp",
        "ipadm set-prop -p smallest_nonpriv_port=2048 tcp",
        "ipadm set-prop -p _time_wait_interval=30000 tcp",
        "ipadm set-prop -p _rexmit_interval_min=200 tcp",
        "ipadm set-prop -p _rexmit_interval_max=20000 tcp",
        "ipadm set-prop -p _rexmit_interval_initial=20000 tcp",
        "ipadm set-prop -p _mss_def_ipv4=1460 tcp",
        "ipadm set-prop -p _tstamp_always=on tcp",
        "ipadm set-prop -p _wscale_always=off tcp",
        "ipadm set-prop -p _syn_cookies=0 tcp",
        "ipadm set-prop -p _do_fusion=off tcp",
        "ipadm set-prop -p _conn_req_max_q=4096 tcp",
        "ipadm set-prop -p _conn_max=100 tcp",
        "ipadm set-prop -p _keepalive_abort_interval=4294967295 tcp",
    ] {
        assert_eq!(run(&mut e, l), (0, String::new()), "{l}");
    }
    let s = t.tcp();
    assert_eq!(s.congestion_control, TcpCc::NewReno);
    assert_eq!((s.sack, s.ecn), (TcpOptMode::Passive, TcpOptMode::Never));
    assert!(s.sack.accepts() && !s.sack.offers() && !s.ecn.accepts());
    assert_eq!((s.send_buf, s.recv_buf, s.max_buf), (65536, 2 << 20, 4 << 20));
    assert_eq!((s.smallest_anon_port, s.largest_anon_port, s.smallest_nonpriv_port), (40000, 50000, 2048));
    assert_eq!(s.time_wait_interval_ms, 30_000);
    assert_eq!((s.rexmit_min_ms, s.rexmit_initial_ms, s.rexmit_max_ms), (200, 20_000, 20_000));
    assert_eq!(s.mss_def_ipv4, 1460);
    assert!(s.tstamp_always && !s.wscale_always && !s.syn_cookies && !s.do_fusion);
    assert_eq!((s.conn_req_max_q, s.conn_max), (4096, 100));
    assert_eq!(s.keepalive_abort_interval_ms, u64::from(u32::MAX));
    // Untouched ones keep illumos' defaults.
    assert_eq!((s.fin_wait_2_flush_interval_ms, s.deferred_ack_interval_ms, s.deferred_acks_max), (60_000, 100, 2));
    assert_eq!((s.keepalive_interval_ms, s.ip_abort_interval_ms, s.ip_abort_cinterval_ms), (7_200_000, 300_000, 180_000));
    assert_eq!((s.challenge_ack_limit, s.fusion_rcv_unread_min, s.cwnd_max), (1000, 8, 1 << 20));
    // ipadm shows the names and the change; ndd the numbers (but the
    // congestion control by name).
    assert_eq!(ok(&mut e, "ipadm show-prop -c -o current,default -p congestion_control,sack,ecn tcp"), "newreno:cubic\npassive:active\nnever:passive\n");
    assert_eq!(ok(&mut e, "ipadm show-prop -c -o current -p _tstamp_always,_do_fusion tcp"), "on\noff\n");
    assert_eq!(ok(&mut e, "ndd /dev/tcp tcp_sack_permitted"), "1\n");
    assert_eq!(ok(&mut e, "ndd -get /dev/tcp tcp_congestion_control"), "newreno\n");
    assert_eq!(ok(&mut e, "ndd -get /dev/tcp do_tcp_fusion"), "0\n");
    // reset-prop puts illumos' default back (tied values permitting: the
    // rexmit interval order holds at every step here).
    for p in ["congestion_control", "sack", "ecn", "recv_buf", "send_buf", "max_buf", "_rexmit_interval_max", "_rexmit_interval_min", "_tstamp_always", "_do_fusion"] {
        assert_eq!(run(&mut e, &format!("ipadm reset-prop -p {p} tcp")), (0, String::new()), "{p}");
    }
    let s = t.tcp();
    assert_eq!((s.congestion_control, s.sack, s.ecn), (TcpCc::Cubic, TcpOptMode::Active, TcpOptMode::Passive));
    assert_eq!((s.send_buf, s.recv_buf, s.max_buf), (49_152, 128_000, 1 << 20));
    assert_eq!((s.rexmit_min_ms, s.rexmit_max_ms), (400, 60_000));
    assert!(!s.tstamp_always && s.do_fusion);
}

#[test]
fn ndd_dev_tcp_lists_gets_and_sets_in_illumos_units() {
    let mut e = env();
    let t = e.t.clone();
    let list = ok(&mut e, "ndd /dev/tcp");
    let names: Vec<&str> = list.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    for n in [
        "tcp_squeue_wput", "tcp_xmit_hiwat", "tcp_recv_hiwat", "tcp_max_buf", "tcp_sack_permitted", "tcp_ecn_permitted",
        "tcp_smallest_anon_port", "tcp_largest_anon_port", "tcp_smallest_nonpriv_port", "tcp_congestion_control",
        "tcp_time_wait_interval", "tcp_fin_wait_2_flush_interval", "tcp_rexmit_interval_initial", "tcp_rexmit_interval_min",
        "tcp_rexmit_interval_max", "tcp_dupack_fast_retransmit", "tcp_deferred_ack_interval", "tcp_deferred_acks_max",
        "tcp_local_dack_interval", "tcp_local_dacks_max", "tcp_naglim_def", "tcp_mss_def_ipv4", "tcp_mss_min",
        "tcp_mss_max_ipv4", "tcp_wscale_always", "tcp_tstamp_if_wscale", "tcp_tstamp_always", "tcp_keepalive_interval",
        "tcp_keepalive_abort_interval", "tcp_ip_abort_interval", "tcp_ip_abort_cinterval", "tcp_conn_req_max_q",
        "tcp_conn_req_max_q0", "tcp_conn_req_min", "tcp_cwnd_max", "tcp_rst_sent_rate", "tcp_rst_sent_rate_enabled",
        "tcp_syn_cookies", "tcp_challenge_ack_limit", "tcp_conn_max", "do_tcp_fusion", "tcp_fusion_rcv_unread_min",
    ] {
        assert!(names.contains(&n), "ndd /dev/tcp lacks {n}:\n{list}");
    }
    assert_eq!(names.len(), 42, "{list}");
    assert!(list.contains(&format!("{:<29} {:>9}  (read and write; default 2, 0..2: 0 never, 1 passive, 2 active)", "tcp_sack_permitted", 2)), "{list}");
    assert!(list.contains(&format!("{:<29} {:>9}  (read and write; default cubic, newreno|cubic)", "tcp_congestion_control", "cubic")), "{list}");
    assert!(list.contains(&format!("{:<29} {:>9}  (read and write; default 60000, 1000..7200000)", "tcp_fin_wait_2_flush_interval", 60000)), "{list}");
    // Intervals in ms, as illumos' ndd.
    assert_eq!(ok(&mut e, "ndd /dev/tcp tcp_time_wait_interval"), "60000\n");
    assert_eq!(ok(&mut e, "ndd -get /dev/tcp tcp_keepalive_interval"), "7200000\n");
    assert_eq!(ok(&mut e, "ndd /dev/tcp tcp_xmit_hiwat"), "49152\n");
    for l in [
        "ndd -set /dev/tcp tcp_time_wait_interval 10000",
        "ndd -set /dev/tcp tcp_sack_permitted 0",
        "ndd -set /dev/tcp tcp_ecn_permitted active",
        "ndd -set /dev/tcp tcp_congestion_control newreno",
        "ndd -set /dev/tcp do_tcp_fusion 0",
        "ndd -set /dev/tcp tcp_fusion_rcv_unread_min 0",
        "ndd -set /dev/tcp tcp_recv_hiwat 1048576",
        "ndd -set /dev/tcp tcp_deferred_acks_max 16",
    ] {
        assert_eq!(run(&mut e, l), (0, String::new()), "{l}");
    }
    let s = t.tcp();
    assert_eq!(s.time_wait_interval_ms, 10_000);
    assert_eq!((s.sack, s.ecn, s.congestion_control), (TcpOptMode::Never, TcpOptMode::Active, TcpCc::NewReno));
    assert!(!s.do_fusion);
    assert_eq!((s.fusion_rcv_unread_min, s.recv_buf, s.deferred_acks_max), (0, 1 << 20, 16));
    assert_eq!(ok(&mut e, "ipadm show-prop -c -o current -p _time_wait_interval,sack,ecn,_do_fusion tcp"), "10000\nnever\nactive\noff\n");
    assert_eq!(ok(&mut e, "ndd /dev/tcp tcp_congestion_control"), "newreno\n");
    // ndd takes a named value's index too.
    assert_eq!(run(&mut e, "ndd -set /dev/tcp tcp_congestion_control 1"), (0, String::new()));
    assert_eq!(t.tcp().congestion_control, TcpCc::Cubic);
}

#[test]
fn every_refused_tcp_line_exits_non_zero_says_why_and_changes_nothing() {
    let mut e = env();
    // Off the defaults first, so that "unchanged" is not "still default".
    for l in [
        "ipadm set-prop -p max_buf=262144 tcp",
        "ipadm set-prop -p largest_anon_port=60000 tcp",
        "ipadm set-prop -p smallest_nonpriv_port=4096 tcp",
        "ipadm set-prop -p _rexmit_interval_max=30000 tcp",
        "ipadm set-prop -p _mss_def_ipv4=1460 tcp",
        "ipadm set-prop -p _conn_req_max_q=64 tcp",
        "ipadm set-prop -p congestion_control=newreno tcp",
    ] {
        assert_eq!(run(&mut e, l).0, 0, "{l}");
    }
    let before = snapshot(&mut e);
    let refused: &[(&str, i32, &str)] = &[
        // Out of range, and not numbers.
        ("ipadm set-prop -p _time_wait_interval=999 tcp", 1, "out of range 1000-600000"),
        ("ipadm set-prop -p _time_wait_interval=600001 tcp", 1, "out of range 1000-600000"),
        ("ipadm set-prop -p _rexmit_interval_initial=0 tcp", 1, "out of range 1-20000"),
        ("ipadm set-prop -p _rexmit_interval_initial=20001 tcp", 1, "out of range 1-20000"),
        ("ipadm set-prop -p _local_dack_interval=9 tcp", 1, "out of range 10-500"),
        ("ipadm set-prop -p _deferred_acks_max=17 tcp", 1, "out of range 0-16"),
        ("ipadm set-prop -p _mss_min=65496 tcp", 1, "out of range 1-65495"),
        ("ipadm set-prop -p _naglim_def=65536 tcp", 1, "out of range 1-65535"),
        ("ipadm set-prop -p _conn_req_min=1025 tcp", 1, "out of range 1-1024"),
        ("ipadm set-prop -p _cwnd_max=127 tcp", 1, "out of range 128-1073741824"),
        ("ipadm set-prop -p _keepalive_interval=999 tcp", 1, "out of range 1000-864000000"),
        ("ipadm set-prop -p _ip_abort_interval=499 tcp", 1, "out of range 500-4294967295"),
        ("ipadm set-prop -p _conn_req_max_q=0 tcp", 1, "out of range 1-4294967295"),
        ("ipadm set-prop -p _conn_req_max_q=4294967296 tcp", 1, "not a valid value"),
        ("ipadm set-prop -p _conn_max=0 tcp", 1, "out of range 1-1048576"),
        ("ipadm set-prop -p _challenge_ack_limit=0 tcp", 1, "out of range 1-1000000"),
        ("ipadm set-prop -p send_buf=4095 tcp", 1, "out of range 4096-1073741824"),
        ("ipadm set-prop -p recv_buf=2047 tcp", 1, "out of range 2048-1073741824"),
        ("ipadm set-prop -p max_buf=8191 tcp", 1, "out of range 8192-1073741824"),
        ("ipadm set-prop -p max_buf=1073741825 tcp", 1, "out of range 8192-1073741824"),
        ("ipadm set-prop -p smallest_anon_port=1023 tcp", 1, "out of range 1024-65535"),
        ("ipadm set-prop -p largest_anon_port=65536 tcp", 1, "out of range 1024-65535"),
        ("ipadm set-prop -p smallest_nonpriv_port=32769 tcp", 1, "out of range 1024-32768"),
        ("ipadm set-prop -p _time_wait_interval=1m tcp", 1, "not a valid value"),
        ("ipadm set-prop -p _time_wait_interval= tcp", 1, "not a valid value"),
        ("ipadm set-prop -p _time_wait_interval=-1 tcp", 1, "not a valid value"),
        ("ipadm set-prop -p _syn_cookies=yes tcp", 1, "not a valid value"),
        ("ipadm set-prop -p _do_fusion=2 tcp", 1, "not a valid value"),
        // Bad names of named values.
        ("ipadm set-prop -p sack=sometimes tcp", 1, "not one of never,passive,active"),
        ("ipadm set-prop -p sack=3 tcp", 1, "not one of never,passive,active"),
        ("ipadm set-prop -p sack=Active tcp", 1, "not one of never,passive,active"),
        ("ipadm set-prop -p ecn= tcp", 1, "not one of never,passive,active"),
        ("ipadm set-prop -p congestion_control=bbr tcp", 1, "not one of newreno,cubic"),
        ("ipadm set-prop -p congestion_control=2 tcp", 1, "not one of newreno,cubic"),
        ("ipadm set-prop -p congestion_control=newreno,cubic tcp", 1, "not one of newreno,cubic"),
        ("ipadm set-prop -p congestion_control+=cubic tcp", 1, "not a multi-valued property"),
        // Unknown properties.
        ("ipadm set-prop -p nosuch=1 tcp", 1, "nosuch: unknown property of tcp"),
        ("ipadm set-prop -p ttl=64 tcp", 1, "ttl: unknown property of tcp"),
        ("ipadm set-prop -p time_wait_interval=60000 tcp", 1, "unknown property of tcp"),
        ("ipadm set-prop -p _syn_cookies=1 udp", 1, "_syn_cookies: unknown property of udp"),
        ("ipadm reset-prop -p nosuch tcp", 1, "nosuch: unknown property of tcp"),
        ("ipadm show-prop -p nosuch tcp", 1, "nosuch: unknown property of tcp"),
        ("ipadm set-prop -p sack=never sctp", 1, "invalid protocol 'sctp'"),
        // Tied values.
        ("ipadm set-prop -p send_buf=262145 tcp", 1, "above max_buf (262144)"),
        ("ipadm set-prop -p recv_buf=1048576 tcp", 1, "above max_buf (262144)"),
        ("ipadm set-prop -p max_buf=127999 tcp", 1, "below send_buf or recv_buf (128000)"),
        ("ipadm reset-prop -p max_buf tcp", 0, ""),
        ("ipadm set-prop -p smallest_anon_port=60001 tcp", 1, "anonymous port range empty (60001-60000)"),
        ("ipadm set-prop -p largest_anon_port=32767 tcp", 1, "anonymous port range empty (32768-32767)"),
        ("ipadm set-prop -p smallest_anon_port=4095 tcp", 1, "would put smallest_nonpriv_port (4096) above smallest_anon_port (4095)"),
        ("ipadm set-prop -p smallest_nonpriv_port=32768 tcp", 0, ""),
        ("ipadm set-prop -p _rexmit_interval_min=30001 tcp", 1, "would put _rexmit_interval_min (30001) above _rexmit_interval_max (30000)"),
        ("ipadm set-prop -p _rexmit_interval_max=399 tcp", 1, "would put _rexmit_interval_min (400) above _rexmit_interval_max (399)"),
        ("ipadm set-prop -p _mss_min=1461 tcp", 1, "would put _mss_min (1461) above _mss_def_ipv4 (1460)"),
        ("ipadm set-prop -p _mss_def_ipv4=107 tcp", 1, "would put _mss_min (108) above _mss_def_ipv4 (107)"),
        ("ipadm set-prop -p _mss_def_ipv4=65495 tcp", 0, ""),
        ("ipadm set-prop -p _mss_max_ipv4=1459 tcp", 1, "would put _mss_def_ipv4 (65495) above _mss_max_ipv4 (1459)"),
        ("ipadm set-prop -p _conn_req_min=65 tcp", 1, "would put _conn_req_min (65) above _conn_req_max_q (64)"),
        ("ipadm set-prop -p _conn_req_max_q=0 tcp", 1, "out of range"),
        // ndd.
        ("ndd /dev/tcp nosuch", 1, "no such variable 'nosuch'"),
        ("ndd /dev/tcp send_buf", 1, "no such variable 'send_buf'"),
        ("ndd -get /dev/tcp", 2, "usage:"),
        ("ndd -get /dev/tcp tcp_xmit_hiwat extra", 2, "usage:"),
        ("ndd -set /dev/tcp tcp_time_wait_interval 999", 1, "out of range 1000-600000"),
        ("ndd -set /dev/tcp tcp_sack_permitted 3", 1, "not one of never,passive,active"),
        ("ndd -set /dev/tcp tcp_congestion_control reno", 1, "not one of newreno,cubic"),
        ("ndd -set /dev/tcp do_tcp_fusion on2", 1, "not a valid value"),
        ("ndd -set /dev/tcp tcp_xmit_hiwat 2000000", 1, "above max_buf (1048576)"),
        ("ndd -set /dev/tcp tcp_largest_anon_port 1024", 1, "anonymous port range empty"),
        ("ndd -set /dev/tcp tcp_rexmit_interval_min 60000", 1, "would put _rexmit_interval_min"),
        ("ndd -set /dev/tcp tcp_time_wait_interval", 2, "usage:"),
        ("ndd -set /dev/udp tcp_time_wait_interval 1000", 1, "no such variable"),
    ];
    let mut expected = before;
    let tcp_before = e.t.tcp();
    for (line, status, why) in refused {
        let (st, out) = run(&mut e, line);
        let now = snapshot(&mut e);
        if *status == 0 {
            // A step that moves the tied values on for the lines after it.
            assert_eq!((st, out.as_str()), (0, ""), "{line}");
            assert_ne!(now, expected, "{line} took effect");
            expected = now;
            continue;
        }
        assert_eq!(st, *status, "{line}: exit status; said: {out}");
        assert!(out.contains(why), "{line}: expected '{why}' in: {out}");
        if out.contains("cannot") {
            assert!(out.contains("nothing changed"), "{line}: {out}");
        }
        assert_eq!(now, expected, "{line} changed something");
    }
    assert_eq!(e.t.tcp().congestion_control, tcp_before.congestion_control);
}

#[test]
fn the_table_has_illumos_names_and_consistent_defaults() {
    let t = Tunables::default();
    let tcp: Vec<_> = tunables::ALL.iter().filter(|i| matches!(i.tun, Tun::Tcp(_))).collect();
    assert_eq!(tcp.len(), tunables::tcp::COUNT);
    for i in &tcp {
        let (proto, name) = i.prop.expect("every TCP tunable is an ipadm property");
        assert_eq!(proto, Proto::Tcp);
        assert_eq!(i.ndd.0, NddDev::Tcp);
        let ndd = i.ndd.1;
        assert!(ndd.starts_with("tcp_") || ndd == "do_tcp_fusion", "{ndd}");
        if name.starts_with('_') && name != "_do_fusion" {
            assert_eq!(ndd, format!("tcp{name}"), "private properties are tcp_ + name in ndd");
        }
        let (lo, hi) = i.possible.bounds();
        assert!((lo..=hi).contains(&i.default), "{name}: default {} outside {lo}-{hi}", i.default);
        // Each default holds the tied rules against the others' defaults.
        assert_eq!(t.set(i.tun, i.default), Ok(()), "{name}");
        assert_eq!(tunables::find_prop(Proto::Tcp, name).map(|f| f.tun), Some(i.tun));
        assert_eq!(tunables::find_ndd(NddDev::Tcp, ndd).map(|f| f.tun), Some(i.tun));
    }
    // Every name is unique, in ipadm and in ndd.
    let mut names: Vec<&str> = tcp.iter().filter_map(|i| i.prop.map(|(_, n)| n)).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before);
    let mut ndd: Vec<&str> = tunables::ALL.iter().map(|i| i.ndd.1).collect();
    ndd.sort_unstable();
    let before = ndd.len();
    ndd.dedup();
    assert_eq!(ndd.len(), before);
    assert_eq!(t.tcp(), TcpTunables::default());
    let d = TcpTunables::default();
    assert_eq!((d.send_buf, d.recv_buf, d.max_buf), (49_152, 128_000, 1_048_576));
    assert_eq!((d.sack, d.ecn, d.congestion_control), (TcpOptMode::Active, TcpOptMode::Passive, TcpCc::Cubic));
    assert_eq!((d.smallest_anon_port, d.largest_anon_port, d.smallest_nonpriv_port), (32_768, 65_535, 1024));
    assert_eq!((d.time_wait_interval_ms, d.fin_wait_2_flush_interval_ms), (60_000, 60_000));
    assert_eq!((d.rexmit_initial_ms, d.rexmit_min_ms, d.rexmit_max_ms), (1000, 400, 60_000));
    assert_eq!((d.dupack_fast_retransmit, d.deferred_ack_interval_ms, d.deferred_acks_max), (3, 100, 2));
    assert_eq!((d.local_dack_interval_ms, d.local_dacks_max, d.naglim_def), (50, 8, 4095));
    assert_eq!((d.mss_def_ipv4, d.mss_min, d.mss_max_ipv4), (536, 108, 65_495));
    assert!(d.wscale_always && d.tstamp_if_wscale && !d.tstamp_always);
    assert_eq!((d.keepalive_interval_ms, d.keepalive_abort_interval_ms), (7_200_000, 480_000));
    assert_eq!((d.ip_abort_interval_ms, d.ip_abort_cinterval_ms), (300_000, 180_000));
    assert_eq!((d.conn_req_max_q, d.conn_req_max_q0, d.conn_req_min), (128, 1024, 1));
    assert_eq!((d.cwnd_max, d.rst_sent_rate), (1_048_576, 40));
    assert!(d.rst_sent_rate_enabled && d.syn_cookies && d.do_fusion);
    assert_eq!((d.challenge_ack_limit, d.conn_max, d.fusion_rcv_unread_min), (1000, 16_384, 8));
}

#[test]
fn named_values_parse_by_name_or_index_only() {
    let p = tunables::info_of(Tun::Tcp(TcpTun::Sack)).possible;
    assert!(matches!(p, Possible::Enum { ndd_numeric: true, .. }));
    assert_eq!(p.parse("never"), Ok(0));
    assert_eq!(p.parse("active"), Ok(2));
    assert_eq!(p.parse("1"), Ok(1));
    for bad in ["", "3", "01x", "ACTIVE", " never", "4294967296"] {
        assert!(matches!(p.parse(bad), Err(TunError::NotOneOf(_))), "{bad:?}");
    }
    let t = Tunables::default();
    assert!(matches!(t.set(Tun::Tcp(TcpTun::CongestionControl), 2), Err(TunError::NotOneOf(_))));
    assert_eq!(t.get(Tun::Tcp(TcpTun::CongestionControl)), 1);
    t.set_str(Tun::Tcp(TcpTun::CongestionControl), "newreno").unwrap();
    assert_eq!(t.tcp().congestion_control, TcpCc::NewReno);
    assert_eq!(TcpCc::NewReno.name(), "newreno");
}

/// Readers of the snapshot never see a tied pair out of order, however
/// changes interleave: a writer walks the RTO bounds and the anonymous
/// range between two disjoint settings (each step legal on its own) while
/// readers check every snapshot.
#[test]
fn snapshots_stay_consistent_while_tied_values_change() {
    let t = Arc::new(Tunables::default());
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (t, stop) = (t.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let s = t.tcp();
                    assert!(s.rexmit_min_ms <= s.rexmit_max_ms, "{s:?}");
                    let pair = (s.rexmit_min_ms, s.rexmit_max_ms);
                    // Only the states between two changes, never a mix.
                    assert!([(100, 200), (100, 400), (300, 400), (400, 60_000), (100, 60_000)].contains(&pair), "{pair:?}");
                    assert!(s.smallest_anon_port <= s.largest_anon_port, "{s:?}");
                    assert!(s.smallest_nonpriv_port <= s.smallest_anon_port, "{s:?}");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let (min, max) = (Tun::Tcp(TcpTun::RexmitMin), Tun::Tcp(TcpTun::RexmitMax));
    let (s, l) = (Tun::Tcp(TcpTun::SmallestAnon), Tun::Tcp(TcpTun::LargestAnon));
    t.set(min, 100).unwrap();
    t.set(max, 200).unwrap();
    for _ in 0..20_000 {
        // Up: (100,200) → (100,400) → (300,400); down again.
        t.set(max, 400).unwrap();
        t.set(min, 300).unwrap();
        t.set(s, 40_000).unwrap();
        t.set(l, 40_100).unwrap();
        t.set(min, 100).unwrap();
        t.set(max, 200).unwrap();
        t.set(l, 60_000).unwrap();
        t.set(s, 30_000).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}
