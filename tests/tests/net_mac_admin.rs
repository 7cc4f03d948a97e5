//! Refused admin commands change nothing (issue 5): every `dladm` and
//! `dlstat` form given a bad operand, an unknown link, a duplicate name or
//! an out-of-range value (`maxbw=1K`, `cpus=99`, `-v 5000`,
//! `priority=urgent`, bad MAC addresses, the names `1abc`, `x!` and a
//! 32-character one, ...) prints a clear error and leaves the links, VNICs,
//! etherstubs, properties, ring groups and IP interfaces as they were.
//!
//! The list of commands is `ADMIN_BAD` in `kernel/src/ktest.rs` (read from
//! the source here, so both tests run the same list):
//!
//! * `test=admin-errors` runs each line through the kernel's own shell and
//!   commands on the booted kernel and checks the exit status (the serial
//!   shell has no `$?`): non-zero, the first output line `dladm: ...` or
//!   `dlstat: ...`, and the state identical after each command;
//! * on the serial console: the same lines typed at the prompt, each
//!   answered by an error line, and `show-link`, `show-vnic`,
//!   `show-etherstub`, `show-linkprop`, `show-phys -H` and `ipadm show-if`
//!   identical before and after every one.

use arbalest_tests::net::{NetVm, Netns};
use arbalest_tests::{assert_contains, assert_exit, Config, ExitKind, Vm, KTEST_TIMEOUT};
use bootimage::{Net, Nic};

const KTEST_SRC: &str = include_str!("../../kernel/src/ktest.rs");

/// `ADMIN_BAD` from the kernel's source.
fn bad_commands() -> Vec<String> {
    let start = KTEST_SRC.find("pub const ADMIN_BAD: &[&str] = &[").expect("ADMIN_BAD in kernel/src/ktest.rs");
    let body = &KTEST_SRC[start..];
    let end = body.find("\n];").expect("end of ADMIN_BAD");
    let v: Vec<String> = body[..end]
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().strip_prefix('"').and_then(|l| l.strip_suffix("\",")).map(str::to_string))
        .collect();
    assert!(v.len() > 100, "ADMIN_BAD parsed to only {} lines", v.len());
    v
}

/// The long link names of the kernel's list.
const NAME_31: &str = "abcdefghijklmnopqrstuvwxyzabcd1";

/// Boots `test=NAME` on `smp` CPUs with a NIC on a one-queue TAP in a
/// namespace of its own (no traffic is sent), waits for the exit.
fn run_ktest_with_nic(name: &str, smp: usize, nic: Nic) -> (ExitKind, String) {
    let ns = Netns::create_for_queues(1);
    let mut cfg = Config::with_smp(smp);
    cfg.net = Net::tap_in_netns(ns.name(), ns.tap(), 1).with_nic(nic);
    cfg.push_append(&format!("test={name}"));
    let mut vm = Vm::boot(cfg);
    let kind = match vm.wait_exit(KTEST_TIMEOUT) {
        Ok(k) => k,
        Err(e) => panic!("kernel test {name}:\n{e}"),
    };
    let out = vm.transcript();
    drop(vm);
    drop(ns);
    (kind, out)
}

#[test]
fn refused_commands_exit_nonzero_in_the_kernel() {
    let (kind, out) = run_ktest_with_nic("admin-errors", 2, Nic::Virtio);
    assert_exit("test=admin-errors", kind, ExitKind::Code(0), &out);
    for l in out.lines().filter(|l| l.starts_with("admin-errors: `")) {
        eprintln!("{l}");
    }
    assert_contains("test=admin-errors", &out, "ktest admin-errors: PASS");
    let n = bad_commands().len();
    assert_contains("test=admin-errors", &out, &format!("admin-errors: {n} commands refused"));
}

/// The state a refused command must not change.
fn state(vm: &mut NetVm) -> String {
    let mut s = String::new();
    for c in ["dladm show-link", "dladm show-vnic", "dladm show-etherstub", "dladm show-linkprop", "dladm show-phys -H", "ipadm show-if"] {
        s.push_str(&format!("$ {c}\n{}", vm.run(c)));
    }
    s
}

fn quiet(vm: &mut NetVm, cmd: &str) {
    let out = vm.run(cmd);
    vm.check(out.trim().is_empty(), format!("`{cmd}` failed:\n{out}"));
}

#[test]
fn refused_commands_change_nothing_on_the_console() {
    let mut vm = NetVm::boot(2, 2);
    for c in [
        "dladm create-etherstub stub1",
        "dladm create-vnic -l net0 vnic1",
        "dladm create-vnic -l stub1 vnic2",
        "dladm set-linkprop -p maxbw=100M,priority=low vnic1",
        "ipadm create-addr -T static -a 10.0.0.5/24 vnic1",
    ] {
        quiet(&mut vm, c);
    }
    let before = state(&mut vm);
    for needle in ["vnic1", "vnic2", "stub1", "100", "low"] {
        vm.check(before.contains(needle), format!("set-up incomplete, no {needle:?} in:\n{before}"));
    }
    let mut wrong = Vec::new();
    for line in bad_commands() {
        let out = vm.run(&line);
        let name = line.split_whitespace().next().unwrap();
        let first = out.lines().next().unwrap_or("");
        if !first.starts_with(&format!("{name}: ")) || first.len() <= name.len() + 2 {
            wrong.push(format!("`{line}`: no `{name}: ...` error line, got:\n{out}"));
        }
        if out.contains("panic") {
            wrong.push(format!("`{line}`: {out}"));
        }
        let after = state(&mut vm);
        if after != before {
            vm.check(false, format!("`{line}` changed the state:\n--- before ---\n{before}\n--- after ---\n{after}\n--- its output ---\n{out}"));
        }
    }
    vm.check(wrong.is_empty(), format!("{} commands without a clear error:\n{}", wrong.len(), wrong.join("\n")));

    // The limits are where they should be, not tighter: the boundary
    // values are accepted.
    for c in [
        format!("dladm create-vnic -l net0 -v 4094 -m 2:8:20:0:0:99 {NAME_31}"),
        format!("dladm delete-vnic {NAME_31}"),
        "dladm set-linkprop -p maxbw=1.2M vnic1".to_string(),
        "dladm set-linkprop -p maxbw=100M vnic1".to_string(),
        "dladm create-etherstub stub9".to_string(),
        "dladm delete-etherstub stub9".to_string(),
    ] {
        quiet(&mut vm, &c);
    }
    let after = state(&mut vm);
    vm.check(after == before, format!("the state differs after the boundary commands:\n{before}\n---\n{after}"));
    // And the refusals were not a dead shell: the set-up still works.
    let r = vm.ns().ping(std::net::Ipv4Addr::new(10, 0, 0, 5), 3, "0.3");
    vm.check(r.received >= 2, format!("vnic1 does not answer after the refused commands: {}", r.output.describe()));
}
