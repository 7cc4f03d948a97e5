//! Link `priority` on a booted kernel, driven through the shell (issue 5):
//! the property moves the threads that carry a link's traffic — its Rx
//! lanes, its Tx drain thread and its IP instance's thread — to the
//! scheduler priority it names, as `threads` shows, and traffic on every
//! link keeps flowing at each priority.

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
