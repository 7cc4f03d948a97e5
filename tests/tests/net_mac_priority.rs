//! Link `priority` and `cpus` on a booted kernel, driven through the shell
//! (issue 5): the properties move the threads that carry a link's traffic
//! — its Rx lanes, its Tx drain thread and its IP instance's thread — to
//! the scheduler priority they name and onto the CPUs they list (with the
//! rings' interrupts), as `threads`, `nicctl rings` and `cpus-effective`
//! show, and traffic on every link keeps flowing.

use std::net::Ipv4Addr;
use std::time::Duration;

use arbalest_tests::net::{guest, tcp_echo_verify, NetVm, GUEST_IP};

/// (name, priority) of every thread `threads` lists.
fn thread_prios(vm: &mut NetVm) -> Vec<(String, String)> {
    let out = vm.run("threads");
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[0].parse::<u64>().is_ok()).then(|| (f[1].to_string(), f[3].to_string()))
        })
        .collect()
}

/// (name, cpu) of every thread `threads` lists.
fn thread_cpus(vm: &mut NetVm) -> Vec<(String, usize)> {
    let out = vm.run("threads");
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[0].parse::<u64>().is_ok()).then(|| (f[1].to_string(), f[2].parse().ok()))?.1.map(|c| (f[1].to_string(), c))
        })
        .collect()
}

/// The CPU of every Rx ring of `link` as `nicctl rings` shows it.
fn ring_cpus(vm: &mut NetVm, link: &str) -> Vec<usize> {
    let out = vm.run(&format!("nicctl rings {link}"));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[0] == link && f[1] == "rx").then(|| f[4].parse().ok()).flatten()
        })
        .collect()
}

/// Checks every thread whose name starts with one of `prefixes` runs at
/// `prio`, and that there is at least one per prefix.
fn expect(vm: &mut NetVm, prefixes: &[&str], prio: &str) {
    let all = thread_prios(vm);
    for p in prefixes {
        let mine: Vec<&(String, String)> = all.iter().filter(|(n, _)| n.starts_with(p)).collect();
        vm.check(!mine.is_empty(), format!("no thread named {p}*: {all:?}"));
        for (n, pr) in mine {
            vm.check(pr == prio, format!("{n} runs at {pr}, not {prio}: {all:?}"));
        }
    }
}

#[test]
fn link_priority_moves_the_lanes_and_the_stack_thread() {
    let mut vm = NetVm::boot(2, 2);
    vm.wait_reachable(Duration::from_secs(60));
    let out = vm.run("dladm create-vnic -l net0 vnic1");
    vm.check(out.trim().is_empty(), format!("create-vnic:\n{out}"));
    let out = vm.run("ipadm create-addr -T static -a 10.0.0.5/24 vnic1");
    vm.check(!out.contains("ipadm:"), format!("create-addr:\n{out}"));
    // Links default to high.
    expect(&mut vm, &["net0/rx0/", "net0/rx1/", "net0/tx", "ip/net0", "ip/vnic1"], "high");

    let out = vm.run("dladm set-linkprop -p priority=low vnic1");
    vm.check(out.trim().is_empty(), format!("set-linkprop:\n{out}"));
    expect(&mut vm, &["ip/vnic1"], "low");
    expect(&mut vm, &["net0/rx0/", "ip/net0"], "high");
    let out = vm.run("dladm show-linkprop -p priority vnic1");
    vm.check(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["vnic1", "priority", "rw", "low", "high", "low,medium,high"]), format!("show-linkprop:\n{out}"));

    let out = vm.run("dladm set-linkprop -p priority=medium net0");
    vm.check(out.trim().is_empty(), format!("set-linkprop:\n{out}"));
    expect(&mut vm, &["net0/rx0/", "net0/rx1/", "net0/tx", "ip/net0"], "medium");
    expect(&mut vm, &["ip/vnic1"], "low");

    // Both links still carry traffic at their priorities.
    let r = vm.ns().ping(Ipv4Addr::new(10, 0, 0, 5), 5, "0.2");
    vm.check(r.received == 5, format!("ping to the low-priority VNIC: {}", r.output.describe()));
    let r = vm.ns().ping(GUEST_IP, 5, "0.2");
    vm.check(r.received == 5, format!("ping to the medium-priority link: {}", r.output.describe()));
    let echo = vm.in_ns(|| tcp_echo_verify(guest(7), 1 << 20, 5, Duration::from_secs(60)));
    vm.check(echo.is_ok(), format!("1 MiB echo over net0 at medium: {echo:?}"));

    // reset-linkprop returns to the default.
    let out = vm.run("dladm reset-linkprop -p priority net0");
    vm.check(out.trim().is_empty(), format!("reset-linkprop:\n{out}"));
    expect(&mut vm, &["net0/rx0/", "net0/tx", "ip/net0"], "high");
    let out = vm.run("dladm set-linkprop -p priority=urgent net0");
    vm.check(out.contains("dladm:"), format!("a bad priority was accepted:\n{out}"));
    expect(&mut vm, &["net0/rx0/", "ip/net0"], "high");
}

#[test]
fn link_cpus_move_the_lanes_interrupts_and_stack_thread() {
    let mut vm = NetVm::boot(4, 2);
    vm.wait_reachable(Duration::from_secs(60));
    let before = thread_cpus(&mut vm);
    let home: Vec<(String, usize)> = before.iter().filter(|(n, _)| n.starts_with("net0/")).cloned().collect();
    let rc = ring_cpus(&mut vm, "net0");
    vm.check(rc == vec![0, 1], format!("rings start on CPUs 0 and 1: {rc:?}"));

    let out = vm.run("dladm set-linkprop -p cpus=3 net0");
    vm.check(out.trim().is_empty(), format!("set-linkprop cpus:\n{out}"));
    // The threads move themselves at their next wake-up: traffic wakes them.
    let r = vm.ns().ping(GUEST_IP, 3, "0.2");
    vm.check(r.received == 3, format!("ping after cpus=3: {}", r.output.describe()));
    let now = thread_cpus(&mut vm);
    for (n, c) in now.iter().filter(|(n, _)| n.starts_with("net0/") || n == "ip/net0") {
        vm.check(*c == 3, format!("{n} runs on cpu {c}, not 3: {now:?}"));
    }
    let rc = ring_cpus(&mut vm, "net0");
    vm.check(rc == vec![3, 3], format!("ring interrupts not on cpu 3: {rc:?}"));
    let out = vm.run("dladm show-linkprop -p cpus,cpus-effective -o property,value net0");
    let vals: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    vm.check(vals.iter().any(|v| v == &["cpus", "3"]) && vals.iter().any(|v| v == &["cpus-effective", "3"]), format!("show-linkprop:\n{out}"));
    // Traffic flows with every lane on one CPU; the rings' interrupts are
    // counted there.
    let echo = vm.in_ns(|| tcp_echo_verify(guest(7), 1 << 20, 9, Duration::from_secs(60)));
    vm.check(echo.is_ok(), format!("1 MiB echo with cpus=3: {echo:?}"));

    // Two CPUs: the two lanes spread over them.
    let out = vm.run("dladm set-linkprop -p cpus=1-2 net0");
    vm.check(out.trim().is_empty(), format!("set-linkprop cpus=1-2:\n{out}"));
    let r = vm.ns().ping(GUEST_IP, 3, "0.2");
    vm.check(r.received == 3, format!("ping after cpus=1-2: {}", r.output.describe()));
    let mut rc = ring_cpus(&mut vm, "net0");
    rc.sort();
    vm.check(rc == vec![1, 2], format!("ring interrupts not spread over 1 and 2: {rc:?}"));
    let now = thread_cpus(&mut vm);
    for (n, c) in now.iter().filter(|(n, _)| n.starts_with("net0/rx")) {
        vm.check(*c == 1 || *c == 2, format!("{n} runs on cpu {c}, outside 1-2: {now:?}"));
    }

    // reset-linkprop: everything back where it started.
    let out = vm.run("dladm reset-linkprop -p cpus net0");
    vm.check(out.trim().is_empty(), format!("reset-linkprop cpus:\n{out}"));
    let r = vm.ns().ping(GUEST_IP, 3, "0.2");
    vm.check(r.received == 3, format!("ping after reset: {}", r.output.describe()));
    let back: Vec<(String, usize)> = thread_cpus(&mut vm).into_iter().filter(|(n, _)| n.starts_with("net0/")).collect();
    vm.check(back == home, format!("after reset the lanes are not home:\nbefore {home:?}\nafter  {back:?}"));
    let rc = ring_cpus(&mut vm, "net0");
    vm.check(rc == vec![0, 1], format!("rings not back on 0 and 1: {rc:?}"));
    let echo = vm.in_ns(|| tcp_echo_verify(guest(7), 1 << 20, 10, Duration::from_secs(60)));
    vm.check(echo.is_ok(), format!("1 MiB echo after reset: {echo:?}"));
    let out = vm.run("dladm set-linkprop -p cpus=9 net0");
    vm.check(out.contains("dladm:"), format!("cpus=9 on 4 CPUs was accepted:\n{out}"));
}
