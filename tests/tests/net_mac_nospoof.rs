//! The `protection` link property on a booted kernel (issue 5):
//!
//! * `test=nospoof` (kernel test): an etherstub with two VNICs; protection
//!   set through `arbalest_mac::props::set` (so the kernel's change hook
//!   applies it) and frames with a forged source MAC, or from an address
//!   outside `allowed-ips`, sent through `MacClient::tx`: not delivered
//!   and counted in the sender's `spoof_drops`, while honest frames pass
//!   (and, before the property is set, the forged ones pass too).
//! * From the shell, on a VNIC over virtio-net reachable from the host:
//!   `dladm set-linkprop -p protection=...` shows in `show-linkprop`;
//!   `mac-nospoof` leaves honest traffic alone; `ip-nospoof` with an
//!   `allowed-ips` that leaves out the VNIC's address silences it (its
//!   replies are dropped and counted in `dlstat show-link -a`
//!   `spoofdrops`) while the primary link keeps answering; allowing the
//!   address, then resetting, brings it back.

use std::net::Ipv4Addr;
use std::time::Duration;

use arbalest_tests::net::{table_value, NetVm, GUEST_IP};
use arbalest_tests::{assert_contains, assert_exit, run_ktest, ExitKind, KTEST_TIMEOUT};

#[test]
fn nospoof_kernel_test() {
    let (kind, out) = run_ktest("nospoof", 2, KTEST_TIMEOUT);
    assert_exit("test=nospoof", kind, ExitKind::Code(0), &out);
    assert_contains("test=nospoof", &out, "ktest nospoof: PASS");
    for l in out.lines().filter(|l| l.starts_with("nospoof:")) {
        eprintln!("{l}");
    }
    // The control: without protection the forged frames went through.
    assert_contains("test=nospoof", &out, "nospoof: [none] forged source MAC: delivered 3/3, spoof_drops +0: ok");
    assert_contains("test=nospoof", &out, "nospoof: [mac-nospoof] forged source MAC (L2): delivered 0/3, spoof_drops +3: ok");
    assert_contains("test=nospoof", &out, "nospoof: [ip-nospoof] IPv4 from outside allowed-ips: delivered 0/3, spoof_drops +3: ok");
}

const VNIC: &str = "vnic6";
const VNIC_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 6);

/// Runs a command that must print nothing (dladm/ipadm set-up).
fn quiet(vm: &mut NetVm, cmd: &str) {
    let out = vm.run(cmd);
    vm.check(out.trim().is_empty(), format!("`{cmd}` failed:\n{out}"));
}

/// The VALUE of `prop` in `dladm show-linkprop -p prop VNIC`.
fn prop_value(vm: &mut NetVm, prop: &str) -> String {
    let out = vm.run(&format!("dladm show-linkprop -c -o value -p {prop} {VNIC}"));
    let v = out.trim().to_string();
    // The table form must agree with the parseable one.
    let table = vm.run(&format!("dladm show-linkprop -p {prop} {VNIC}"));
    let row = table.lines().find(|l| l.split_whitespace().nth(1) == Some(prop)).map(str::to_string);
    vm.check(
        row.as_ref().and_then(|r| r.split_whitespace().nth(3)) == Some(v.as_str()),
        format!("show-linkprop -p {prop}: table row {row:?} disagrees with -c value {v:?}:\n{table}"),
    );
    v
}

/// The VNIC's `spoofdrops` counter (`dlstat show-link -a -u R`).
fn spoofdrops(vm: &mut NetVm) -> u64 {
    let out = vm.run(&format!("dlstat show-link -a -u R {VNIC}"));
    let v = out.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 2 && f[0] == "spoofdrops").then(|| f[1].parse::<u64>().ok()).flatten()
    });
    vm.check(v.is_some(), format!("no spoofdrops counter for {VNIC}:\n{out}"));
    v.unwrap()
}

fn pings(vm: &NetVm, ip: Ipv4Addr, n: u32) -> u32 {
    vm.ns().ping(ip, n, "0.3").received
}

#[test]
fn protection_set_from_the_shell_acts_on_the_wire() {
    let mut vm = NetVm::boot(2, 2);
    vm.wait_reachable(Duration::from_secs(60));
    quiet(&mut vm, &format!("dladm create-vnic -l net0 {VNIC}"));
    quiet(&mut vm, &format!("ipadm create-addr -T static -a {VNIC_IP}/24 {VNIC}"));
    vm.check(pings(&vm, VNIC_IP, 3) >= 2, "the VNIC does not answer before any protection is set");
    let v = prop_value(&mut vm, "protection");
    vm.check(v == "--", format!("protection is {v}, not -- by default"));
    let base = spoofdrops(&mut vm);

    // mac-nospoof: the VNIC sends with its own MAC, so nothing changes.
    quiet(&mut vm, &format!("dladm set-linkprop -p protection=mac-nospoof {VNIC}"));
    let v = prop_value(&mut vm, "protection");
    vm.check(v == "mac-nospoof", format!("show-linkprop says protection={v} after setting mac-nospoof"));
    let got = pings(&vm, VNIC_IP, 5);
    vm.check(got >= 4, format!("mac-nospoof dropped honest traffic: {got} of 5 pings answered"));
    let d = spoofdrops(&mut vm) - base;
    vm.check(d == 0, format!("mac-nospoof counted {d} spoofed frames of honest traffic"));

    // ip-nospoof with an allowed-ips that leaves out the VNIC's own address:
    // its replies (IPv4 and ARP) are dropped and counted.
    quiet(&mut vm, &format!("dladm set-linkprop -p protection=ip-nospoof,allowed-ips=10.0.0.99 {VNIC}"));
    let (p, a) = (prop_value(&mut vm, "protection"), prop_value(&mut vm, "allowed-ips"));
    vm.check(p == "ip-nospoof" && a == "10.0.0.99", format!("show-linkprop: protection={p} allowed-ips={a}"));
    let got = pings(&vm, VNIC_IP, 5);
    let d = spoofdrops(&mut vm) - base;
    let primary = pings(&vm, GUEST_IP, 3);
    let diag = vm.run(&format!("dlstat show-link -a -u R {VNIC}"));
    vm.check(got == 0, format!("ip-nospoof without the VNIC's address: {got} of 5 pings still answered\n{diag}"));
    vm.check(d >= 5, format!("ip-nospoof: only {d} spoof drops counted for 5 unanswered pings\n{diag}"));
    vm.check(primary >= 2, format!("protection on {VNIC} silenced the primary link too ({primary} of 3)"));

    // Allowing the address brings the VNIC back.
    quiet(&mut vm, &format!("dladm set-linkprop -p allowed-ips=10.0.0.0/24 {VNIC}"));
    let a = prop_value(&mut vm, "allowed-ips");
    vm.check(a == "10.0.0.0/24", format!("show-linkprop allowed-ips={a}"));
    let got = pings(&vm, VNIC_IP, 5);
    vm.check(got >= 4, format!("ip-nospoof with the VNIC's network allowed: {got} of 5 pings answered"));

    // Reset: back to defaults, and the counter stands still.
    quiet(&mut vm, &format!("dladm reset-linkprop -p protection,allowed-ips {VNIC}"));
    let (p, a) = (prop_value(&mut vm, "protection"), prop_value(&mut vm, "allowed-ips"));
    vm.check(p == "--" && a == "--", format!("after reset-linkprop: protection={p} allowed-ips={a}"));
    let before = spoofdrops(&mut vm);
    let got = pings(&vm, VNIC_IP, 3);
    vm.check(got >= 2, format!("after reset: {got} of 3 pings answered"));
    let d = spoofdrops(&mut vm) - before;
    vm.check(d == 0, format!("after reset: {d} more spoof drops"));
    let out = vm.run(&format!("dladm show-linkprop -p protection {VNIC}"));
    vm.check(table_value(&out, VNIC, "POSSIBLE").as_deref() == Some("mac-nospoof,ip-nospoof,restricted"), format!("POSSIBLE of protection:\n{out}"));
}
