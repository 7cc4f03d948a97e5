//! VNICs, etherstubs and the in-kernel switch on a booted kernel, driven
//! through the shell as an administrator would (issue 5): the Virtual Wire
//! of seed 003 on an etherstub (pings and `ttcp` TCP transfers between
//! every pair of VNICs, none of it on the NIC), a VNIC over the physical
//! link reachable from the host beside the primary link, and `maxbw` on a
//! VNIC.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use arbalest_tests::net::NetVm;

const SMP: usize = 2;
const QUEUES: usize = 2;

fn boot() -> NetVm {
    let vm = NetVm::boot(SMP, QUEUES);
    vm.wait_reachable(Duration::from_secs(60));
    vm
}

/// Runs a command and checks its output has no error line.
fn ok(vm: &mut NetVm, cmd: &str) -> String {
    let out = vm.run(cmd);
    let bad = out.lines().any(|l| l.contains("usage:") || l.starts_with("dladm:") || l.starts_with("ipadm:"));
    vm.check(!bad, format!("`{cmd}` failed:\n{out}"));
    out
}

fn opackets(vm: &mut NetVm, link: &str) -> u64 {
    let out = vm.run(&format!("dladm show-link -s -p -o opackets {link}"));
    out.trim().parse().unwrap_or_else(|_| panic!("opackets of {link}: {out:?}"))
}

/// `(IBYTES, OBYTES)` of TCP service `name` of instance `link` in
/// `netstat -s` output.
fn service_bytes(stats: &str, link: &str, name: &str) -> Option<(u64, u64)> {
    let head = format!("IP instance {link} ");
    let section = stats.split("\nIP instance ").find(|s| format!("IP instance {s}").starts_with(&head))?;
    let line = section.lines().find(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() == 8 && w[0] == "tcp" && w[2] == name
    })?;
    let w: Vec<&str> = line.split_whitespace().collect();
    Some((w[6].parse().ok()?, w[7].parse().ok()?))
}

#[test]
fn virtual_wire_on_an_etherstub_never_touches_the_nic() {
    let mut vm = boot();
    ok(&mut vm, "dladm create-etherstub etherstub1");
    for i in 1..=3 {
        ok(&mut vm, &format!("dladm create-vnic -l etherstub1 vnic{i}"));
        ok(&mut vm, &format!("ipadm create-addr -T static -a 192.168.77.{i}/24 vnic{i}"));
    }
    let out = vm.run("dladm show-vnic");
    for i in 1..=3 {
        vm.check(out.contains(&format!("vnic{i}")) && out.contains("etherstub1"), format!("show-vnic:\n{out}"));
    }
    let nic_before = opackets(&mut vm, "net0");
    for a in 1..=3 {
        for b in 1..=3 {
            if a == b {
                continue;
            }
            let out = vm.run(&format!("ping -i vnic{a} 192.168.77.{b}"));
            vm.check(out.contains("is alive"), format!("vnic{a} -> 192.168.77.{b}:\n{out}"));
        }
    }
    let nic_after = opackets(&mut vm, "net0");
    vm.check(nic_after == nic_before, format!("the NIC sent {} frames during the etherstub pings", nic_after - nic_before));
    // TCP data between every ordered pair: 256 KiB to the echo service,
    // verified byte for byte as it comes back, and 256 KiB to discard.
    for a in 1..=3 {
        for b in 1..=3 {
            if a == b {
                continue;
            }
            let cmd = format!("ttcp -i vnic{a} -n 262144 -p 7 192.168.77.{b}");
            let out = vm.run_timeout(&cmd, Duration::from_secs(90));
            eprintln!("{cmd}: {}", out.trim());
            let ok = out.lines().any(|l| l.starts_with("ttcp: 262144 bytes sent, 262144 echoed and verified in "));
            vm.check(ok && out.lines().count() == 1, format!("`{cmd}`:\n{out}"));
            let cmd = format!("ttcp -i vnic{a} -n 262144 -p 9 192.168.77.{b}");
            let out = vm.run_timeout(&cmd, Duration::from_secs(90));
            eprintln!("{cmd}: {}", out.trim());
            let ok = out.lines().any(|l| l.starts_with("ttcp: 262144 bytes sent and acknowledged in "));
            vm.check(ok && out.lines().count() == 1, format!("`{cmd}`:\n{out}"));
        }
    }
    // A closed port is refused, promptly and clearly.
    let started = Instant::now();
    let out = vm.run_timeout("ttcp -i vnic1 -n 1000 -p 8 192.168.77.2", Duration::from_secs(60));
    vm.check(
        out.trim() == "ttcp: connect to 192.168.77.2 port 8: Connection refused" && started.elapsed() < Duration::from_secs(30),
        format!("ttcp to a closed port ({:?}):\n{out}", started.elapsed()),
    );
    // Each echo service counted its bytes: 2 peers x 256 KiB in and out.
    let stats = vm.run("netstat -s");
    for b in 1..=3 {
        let echo = service_bytes(&stats, &format!("vnic{b}"), "echo");
        let discard = service_bytes(&stats, &format!("vnic{b}"), "discard");
        vm.check(
            echo == Some((2 * 262144, 2 * 262144)) && discard.is_some_and(|(i, _)| i == 2 * 262144),
            format!("vnic{b}: echo {echo:?}, discard {discard:?}:\n{stats}"),
        );
    }
    let nic_after_tcp = opackets(&mut vm, "net0");
    vm.check(
        nic_after_tcp == nic_before,
        format!("the NIC sent {} frames during the etherstub TCP transfers", nic_after_tcp - nic_after),
    );
    let out = vm.run("dlstat show-link -r vnic1");
    vm.check(out.lines().any(|l| l.contains("local")), format!("no local lane for vnic1:\n{out}"));
    // dlstat reset: counts start again from zero; traffic goes on.
    let out = vm.run("dlstat -p -o ipkts vnic1");
    vm.check(out.trim().parse::<u64>().unwrap_or(0) > 0, format!("vnic1 counted nothing:\n{out}"));
    let out = vm.run("dlstat reset vnic1");
    vm.check(out.trim().is_empty(), format!("dlstat reset printed:\n{out}"));
    let out = vm.run("dlstat -p -o ipkts vnic1");
    vm.check(out.trim() == "0", format!("after dlstat reset:\n{out}"));
    let out = vm.run("ping -i vnic2 192.168.77.1");
    vm.check(out.contains("is alive"), format!("ping after reset:\n{out}"));
    let out = vm.run("dlstat -p -o ipkts vnic1");
    vm.check(out.trim().parse::<u64>().unwrap_or(0) > 0, format!("vnic1 counted nothing after the reset:\n{out}"));
    // Deleting in use is refused and changes nothing.
    let before = vm.run("dladm show-link");
    let out = vm.run("dladm delete-etherstub etherstub1");
    vm.check(out.contains("dladm:"), format!("delete-etherstub with VNICs on it:\n{out}"));
    let out = vm.run("dladm delete-vnic vnic1");
    vm.check(out.contains("dladm:"), format!("delete-vnic while plumbed:\n{out}"));
    let out = vm.run("dladm create-vnic -l etherstub1 vnic2");
    vm.check(out.contains("already exists"), format!("duplicate VNIC:\n{out}"));
    let out = vm.run("dladm create-vnic -l etherstub1 'x!'");
    vm.check(out.contains("invalid link name"), format!("bad name:\n{out}"));
    let after = vm.run("dladm show-link");
    vm.check(before == after, format!("show-link changed after refused commands:\n{before}\n---\n{after}"));
}

#[test]
fn a_vnic_over_the_nic_is_reachable_beside_the_primary_link() {
    let mut vm = boot();
    ok(&mut vm, "dladm create-vnic -l net0 vnic7");
    ok(&mut vm, "ipadm create-addr -T static -a 10.0.0.7/24 vnic7");
    let vnic = Ipv4Addr::new(10, 0, 0, 7);
    let r = vm.ns().ping(vnic, 3, "0.3");
    vm.check(r.received >= 2, format!("ping to the VNIC: {}", r.output.describe()));
    let r = vm.ns().ping(arbalest_tests::net::GUEST_IP, 3, "0.3");
    vm.check(r.received >= 2, format!("ping to the primary link: {}", r.output.describe()));
    let neigh = vm.ns_cmd(&["ip", "neigh", "show"]);
    let text = neigh.stdout.clone();
    let mac_of = |ip: &str| -> Option<String> {
        text.lines().find(|l| l.starts_with(&format!("{ip} "))).and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.iter().position(|w| *w == "lladdr").and_then(|i| f.get(i + 1)).map(|s| s.to_string())
        })
    };
    let (a, b) = (mac_of("10.0.0.2"), mac_of("10.0.0.7"));
    vm.check(a.is_some() && b.is_some() && a != b, format!("neighbour table lacks two MACs: {text}"));
    let out = vm.run("dlstat show-link -r vnic7");
    vm.check(out.lines().any(|l| l.contains("vnic7") && l.split_whitespace().any(|w| w == "sw")), format!("virtio VNIC lane is not sw:\n{out}"));
}

fn discard_mbit(addr: SocketAddr, secs: u64) -> Result<f64, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok();
    let buf = vec![0x61u8; 16384];
    let start = Instant::now();
    let mut sent = 0u64;
    // Warm-up second excluded from the rate.
    let warm = Duration::from_secs(1);
    let mut counted = 0u64;
    while start.elapsed() < Duration::from_secs(secs) + warm {
        match s.write(&buf) {
            Ok(n) => {
                sent += n as u64;
                if start.elapsed() >= warm {
                    counted += n as u64;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(format!("write: {e} after {sent} bytes")),
        }
    }
    Ok(counted as f64 * 8.0 / secs as f64 / 1e6)
}

#[test]
fn two_vnics_over_the_nic_answer() {
    let mut vm = boot();
    ok(&mut vm, "dladm create-vnic -l net0 vnic3");
    ok(&mut vm, "dladm create-vnic -l net0 vnic4");
    ok(&mut vm, "ipadm create-addr -T static -a 10.0.0.3/24 vnic3");
    ok(&mut vm, "ipadm create-addr -T static -a 10.0.0.4/24 vnic4");
    let r3 = vm.ns().ping(Ipv4Addr::new(10, 0, 0, 3), 3, "0.3");
    let r4 = vm.ns().ping(Ipv4Addr::new(10, 0, 0, 4), 3, "0.3");
    let diag = vm.run("dladm show-vnic") + &vm.run("dlstat show-link -r") + &vm.run("netstat -s") + &vm.run("ipadm show-addr");
    vm.check(r3.received >= 2 && r4.received >= 2, format!("{}\n{}\n{diag}", r3.output.describe(), r4.output.describe()));
}

#[test]
fn maxbw_limits_a_vnic_and_not_its_neighbour() {
    let mut vm = boot();
    ok(&mut vm, "dladm create-vnic -l net0 -p maxbw=10M vnic3");
    ok(&mut vm, "dladm create-vnic -l net0 vnic4");
    ok(&mut vm, "ipadm create-addr -T static -a 10.0.0.3/24 vnic3");
    ok(&mut vm, "ipadm create-addr -T static -a 10.0.0.4/24 vnic4");
    let out = vm.run("dladm show-linkprop -p maxbw vnic3");
    vm.check(out.contains("10"), format!("show-linkprop maxbw:\n{out}"));
    let limited = vm.in_ns(|| discard_mbit(SocketAddr::from(([10, 0, 0, 3], 9)), 8));
    let free = vm.in_ns(|| discard_mbit(SocketAddr::from(([10, 0, 0, 4], 9)), 4));
    if free.is_err() {
        let r4 = vm.ns().ping(Ipv4Addr::new(10, 0, 0, 4), 3, "0.3");
        let diag = vm.run("dlstat show-link -r") + &vm.run("netstat -s") + &vm.run("threads") + &vm.run("dladm show-link -s") + &vm.run("nicctl rings");
        let neigh = vm.ns_cmd(&["ip", "neigh", "show"]).stdout;
        vm.check(false, format!("{}\n{neigh}\n{diag}", r4.output.describe()));
    }
    eprintln!("maxbw=10M VNIC: {limited:?} Mbit/s; unlimited VNIC: {free:?} Mbit/s");
    let limited = limited.unwrap_or_else(|e| panic!("limited VNIC: {e}"));
    let free = free.unwrap_or_else(|e| panic!("unlimited VNIC: {e}"));
    vm.check((8.5..=10.5).contains(&limited), format!("maxbw=10M VNIC moved {limited:.2} Mbit/s"));
    vm.check(free > 20.0, format!("the unlimited VNIC was slowed to {free:.2} Mbit/s"));
}
