//! The loopback and TCP fusion on a booted kernel (issue 14), driven
//! through the shell: FireEngine on `net0` (virtio-net, a TAP into the
//! test's namespace, whose IPv6 is off so that Linux sends nothing on its
//! own while the test counts frames).
//!
//! * `ipadm show-if` lists `lo0` (class `loopback`, over `net0`) and
//!   `ipadm show-addr` its `lo0/v4` 127.0.0.1/8;
//! * `ttcp` moves 256 MiB to the echo service at 127.0.0.1 and at the
//!   instance's own address, every byte echoed and verified, while
//!   `dladm show-link -s` counts not one new frame on any link; `netstat
//!   -s` counts both connections fused (`tcpFusionFused` +2) and the
//!   bytes moved fused;
//! * `ttcp -w 3`: a reader (ttcp itself, not reading its echo) that stops
//!   stops the writer: nothing sent in the pause's second half, the
//!   kernel heap no larger, then the transfer completes verified;
//! * `ndd -set /dev/tcp do_tcp_fusion 0`: the same 256 MiB to 127.0.0.1
//!   goes as plain TCP over the loopback, counted unfused
//!   (`tcpFusionDisabled` +1, `tcpFusionFused` unchanged), still no frame;
//! * two instances on two VNICs of one etherstub are separate hosts:
//!   their connection is never fused and its frames go through the MAC
//!   switch (the VNICs' counters move).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbalest_tests::net::{netns_cmd, parse_netstat_s, table_value, wait_addr_ok, NetVm, GUEST_IP, GUEST_MAC, TAP_NAME};
use arbalest_tests::Config;

const LONG: Duration = Duration::from_secs(1200);
const MIB256: u64 = 256 << 20;

/// The `netstat -s` counters of instance `link` (its section only).
fn section(stats: &str, link: &str) -> BTreeMap<String, u64> {
    let head = format!("IP instance {link} (");
    let text = stats.split("\nIP instance ").find_map(|s| format!("\nIP instance {s}").contains(&head).then_some(s));
    parse_netstat_s(text.unwrap_or(""))
}

/// (link, IPACKETS, OPACKETS) of every row of `dladm show-link -s`.
fn link_frames(out: &str) -> Vec<(String, u64, u64)> {
    let mut lines = out.lines();
    let Some(head) = lines.next() else { return Vec::new() };
    let cols: Vec<&str> = head.split_whitespace().collect();
    let (Some(ip), Some(op)) = (cols.iter().position(|c| *c == "IPACKETS"), cols.iter().position(|c| *c == "OPACKETS")) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), f.get(ip)?.parse().ok()?, f.get(op)?.parse().ok()?))
        })
        .collect()
}

/// Runs `ttcp ARGS` and checks its verified-echo line for `bytes`.
fn ttcp_echo(vm: &mut NetVm, args: &str, bytes: u64) -> String {
    let cmd = format!("ttcp -t 60 -n {bytes} {args}");
    let t = Instant::now();
    let out = vm.run_timeout(&cmd, LONG);
    eprintln!("{cmd}: {:?}: {}", t.elapsed(), out.trim());
    let want = format!("ttcp: {bytes} bytes sent, {bytes} echoed and verified in ");
    vm.check(out.lines().last().is_some_and(|l| l.starts_with(&want)), format!("`{cmd}`:\n{out}"));
    out
}

#[test]
fn loopback_ttcp_is_fused_puts_no_frame_on_a_link_and_a_stopped_reader_stops_the_writer() {
    let mut cfg = Config::with_smp(2);
    cfg.push_append("stack=fireengine");
    let mut vm = NetVm::boot_with(cfg, 2);
    vm.wait_reachable(Duration::from_secs(60));
    let ns = vm.ns().name().to_string();
    for k in ["all", "default"] {
        let o = netns_cmd(&ns, &["sysctl", "-q", "-w", &format!("net.ipv6.conf.{k}.disable_ipv6=1")], Duration::from_secs(10));
        vm.check(o.success(), format!("disabling IPv6 in the namespace: {}", o.describe()));
    }
    // Nor ARP: Linux's entry for the guest is made permanent (else it
    // probes it a few seconds after the last ping).
    let mac = GUEST_MAC.to_string();
    let o = netns_cmd(
        &ns,
        &["ip", "neigh", "replace", &GUEST_IP.to_string(), "lladdr", &mac, "dev", TAP_NAME, "nud", "permanent"],
        Duration::from_secs(10),
    );
    vm.check(o.success(), format!("a permanent neighbour entry: {}", o.describe()));

    // lo0 in the interface and address lists.
    let out = vm.run("ipadm show-if");
    vm.check(table_value(&out, "lo0", "CLASS").as_deref() == Some("loopback"), format!("ipadm show-if:\n{out}"));
    vm.check(table_value(&out, "lo0", "OVER").as_deref() == Some("net0"), format!("lo0 is net0's:\n{out}"));
    let out = vm.run("ipadm show-addr");
    vm.check(table_value(&out, "lo0/v4", "ADDR").as_deref() == Some("127.0.0.1/8"), format!("ipadm show-addr:\n{out}"));
    let out = vm.run("ipadm delete-ip lo0");
    vm.check(out.contains("cannot delete interface lo0"), format!("lo0 cannot be deleted:\n{out}"));
    let out = vm.run("ping -s -c 3 -I 0.05 127.0.0.1");
    vm.check(out.contains("3 packets transmitted, 3 packets received"), format!("ping 127.0.0.1:\n{out}"));

    // Let what the boot and the checks above sent settle, then count.
    std::thread::sleep(Duration::from_secs(5));
    let links0 = link_frames(&vm.run("dladm show-link -s"));
    vm.check(links0.iter().any(|(l, _, _)| l == "net0"), format!("dladm show-link -s rows: {links0:?}"));
    let before = section(&vm.run("netstat -s"), "net0");

    ttcp_echo(&mut vm, "127.0.0.1", MIB256);
    ttcp_echo(&mut vm, &GUEST_IP.to_string(), MIB256);

    let links1 = link_frames(&vm.run("dladm show-link -s"));
    vm.check(links1 == links0, format!("frames moved on a link during loopback transfers:\nbefore {links0:?}\nafter  {links1:?}"));
    let after = section(&vm.run("netstat -s"), "net0");
    let d = |k: &str| after.get(k).copied().unwrap_or(0).saturating_sub(before.get(k).copied().unwrap_or(0));
    vm.check(d("tcpFusionFused") == 2, format!("two fused conns: tcpFusionFused +{}", d("tcpFusionFused")));
    vm.check(
        d("tcpFusionBytes") >= 4 * MIB256,
        format!("both ways of both transfers fused: tcpFusionBytes +{}", d("tcpFusionBytes")),
    );
    vm.check(d("tcpFusionUnfused") == 2, format!("each unfused as it closed: tcpFusionUnfused +{}", d("tcpFusionUnfused")));
    vm.check(d("ipLoopbackDatagrams") > 0, "the handshakes and FINs went through the loopback");

    // A reader that stops: ttcp pauses reading its echo for 3 s.
    let out = ttcp_echo(&mut vm, "-w 3 127.0.0.1", 64 << 20);
    let line = out.lines().find(|l| l.starts_with("ttcp: reading paused ")).unwrap_or("");
    let num_after = |key: &str| -> Option<i64> {
        let rest = &line[line.find(key)? + key.len()..];
        let tok: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '+' || *c == '-').collect();
        tok.trim_start_matches('+').parse().ok()
    };
    let stopped_at = num_after("sending stopped at ");
    let late = num_after("bytes (");
    let heap = num_after("heap ");
    eprintln!("pause: stopped at {stopped_at:?}, {late:?} late, heap {heap:?} KiB");
    vm.check(late == Some(0), format!("the writer went on while the reader waited:\n{out}"));
    vm.check(stopped_at.is_some_and(|n| n > 0 && n <= 4 << 20), format!("sending stopped within the buffers:\n{out}"));
    vm.check(heap.is_some_and(|k| k <= 1024), format!("memory grew while the reader waited:\n{out}"));

    // do_tcp_fusion 0: plain TCP through the loopback.
    let out = vm.run("ndd -set /dev/tcp do_tcp_fusion 0");
    vm.check(out.trim().is_empty(), format!("ndd -set:\n{out}"));
    let before = section(&vm.run("netstat -s"), "net0");
    let links0 = link_frames(&vm.run("dladm show-link -s"));
    ttcp_echo(&mut vm, "127.0.0.1", MIB256);
    let links1 = link_frames(&vm.run("dladm show-link -s"));
    vm.check(links1 == links0, format!("frames moved on a link (unfused):\nbefore {links0:?}\nafter  {links1:?}"));
    let after = section(&vm.run("netstat -s"), "net0");
    let d = |k: &str| after.get(k).copied().unwrap_or(0).saturating_sub(before.get(k).copied().unwrap_or(0));
    vm.check(d("tcpFusionDisabled") == 1 && d("tcpFusionFused") == 0, format!(
        "counted unfused: tcpFusionDisabled +{}, tcpFusionFused +{}",
        d("tcpFusionDisabled"),
        d("tcpFusionFused")
    ));
    vm.check(d("tcpOutDataSegs") > 10_000, format!("as TCP segments: tcpOutDataSegs +{}", d("tcpOutDataSegs")));
    let _ = vm.run("ndd -set /dev/tcp do_tcp_fusion 1");

    // Two instances on one etherstub: two hosts, never fused.
    for cmd in [
        "dladm create-etherstub stub0",
        "dladm create-vnic -l stub0 vnic0",
        "dladm create-vnic -l stub0 vnic1",
        "ipadm create-addr -T static -a 192.168.90.1/24 vnic0",
        "ipadm create-addr -T static -a 192.168.90.2/24 vnic1",
    ] {
        let out = vm.run(cmd);
        vm.check(out.trim().is_empty(), format!("`{cmd}` printed:\n{out}"));
    }
    for a in ["vnic0/v4", "vnic1/v4"] {
        wait_addr_ok(&mut vm, a, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    }
    let before_all = vm.run("netstat -s");
    let links0 = link_frames(&vm.run("dladm show-link -s"));
    ttcp_echo(&mut vm, "-i vnic0 192.168.90.2", 16 << 20);
    let links1 = link_frames(&vm.run("dladm show-link -s"));
    let after_all = vm.run("netstat -s");
    for inst in ["vnic0", "vnic1"] {
        let (b, a) = (section(&before_all, inst), section(&after_all, inst));
        let fused = a.get("tcpFusionFused").copied().unwrap_or(0) - b.get("tcpFusionFused").copied().unwrap_or(0);
        vm.check(a.contains_key("tcpFusionFused") && fused == 0, format!("{inst} fused a conn with another instance"));
    }
    let moved = |l: &str| {
        let f = |v: &[(String, u64, u64)]| v.iter().find(|r| r.0 == l).map(|r| r.1 + r.2).unwrap_or(0);
        f(&links1) - f(&links0)
    };
    vm.check(moved("vnic0") > 1000 && moved("vnic1") > 1000, format!("through the MAC switch: {links0:?} → {links1:?}"));
}
