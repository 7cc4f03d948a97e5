//! A smoltcp instance and a FireEngine instance on two VNICs of one
//! etherstub (issue 12), on a kernel booted without a NIC, driven through
//! the shell:
//!
//! * `dladm create-etherstub stub0`, VNICs `vnic0` and `vnic1` over it,
//!   `ipadm create-if -s smoltcp vnic0`, `ipadm create-if -s fireengine
//!   vnic1`, `ipadm show-if` says which stack runs where;
//! * 192.168.90.1/24 on vnic0 and .2/24 on vnic1; the FireEngine address
//!   leaves `tentative` (duplicate-address detection) for `ok`;
//! * `ping -s -c 20 -i IF` from each instance to the other: 20/20;
//! * `udpecho -I IF -c 200` to the other's echo port 7 with sizes 4, 64,
//!   512, 1472 (the largest unfragmented), 1473 and 4000 (fragmented), in
//!   both directions: 200 sent, 200 received intact;
//! * `arp -a`: the FireEngine instance has the smoltcp instance's address
//!   at its MAC;
//! * `netstat -s`, the FireEngine section: exactly 400 more
//!   `udpInDatagrams` and `udpOutDatagrams` (its 200 datagrams and 200
//!   echoes each way) and 132 more `ipReasmOKs` (the 66 fragmented
//!   datagrams and their 66 echoes); the smoltcp section reassembled as
//!   many, and its echo service took 200 datagrams.
//!
//! `-i`/`-I` pick the instance by name, so each command runs on the stack
//! meant: the two share a subnet, and without them `ping`/`udpecho` take
//! the first instance on it that does not own the destination (the same
//! one here, but the test does not lean on it).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbalest_tests::net::{parse_netstat_s, table_value, wait_addr_ok};
use arbalest_tests::{Config, Vm};

const SMOL: &str = "vnic0";
const FE: &str = "vnic1";
const SMOL_IP: &str = "192.168.90.1";
const FE_IP: &str = "192.168.90.2";
const SIZES: [usize; 6] = [4, 64, 512, 1472, 1473, 4000];
const COUNT: usize = 200;
const LONG: Duration = Duration::from_secs(180);

/// Runs `cmd` and checks that it printed nothing.
fn quiet(vm: &mut Vm, cmd: &str) {
    let out = vm.run(cmd);
    vm.check(out.trim().is_empty(), format!("`{cmd}` printed:\n{out}"));
}

/// The `netstat -s` counters of instance `link` (its section only).
fn section(stats: &str, link: &str) -> BTreeMap<String, u64> {
    let head = format!("IP instance {link} (");
    let text = stats.split("\nIP instance ").find_map(|s| format!("\nIP instance {s}").contains(&head).then_some(s));
    parse_netstat_s(text.unwrap_or(""))
}

/// `(transmitted, received)` of a `ping -s` summary.
fn ping_summary(out: &str) -> Option<(u32, u32)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let nums: Vec<u32> = line.split(',').filter_map(|p| p.split_whitespace().next()?.parse().ok()).collect();
    Some((*nums.first()?, *nums.get(1)?))
}

/// The `(bytes, seq)` of each intact reply line of `udpecho` output.
fn udpecho_replies(out: &str, host: &str) -> Vec<(usize, usize)> {
    let marker = format!(" bytes from {host}: udp_seq=");
    out.lines()
        .filter(|l| l.ends_with(" ms"))
        .filter_map(|l| {
            let (bytes, rest) = l.split_once(&marker)?;
            let (seq, _) = rest.split_once(". time=")?;
            Some((bytes.parse().ok()?, seq.parse().ok()?))
        })
        .collect()
}

/// The `udpecho` run from `ifname` to `host`, checked line by line.
fn udpecho(vm: &mut Vm, ifname: &str, host: &str) {
    let list = SIZES.map(|s| s.to_string()).join(",");
    let cmd = format!("udpecho -I {ifname} -c {COUNT} -s {list} {host}");
    let started = Instant::now();
    let out = vm.run_timeout(&cmd, LONG);
    eprintln!("{cmd}: {:?}, {}", started.elapsed(), out.lines().last().unwrap_or(""));
    let header = format!("UDPECHO {host} port 7: {list} data bytes");
    vm.check(out.lines().next() == Some(header.as_str()), format!("`{cmd}` header:\n{out}"));
    let want: Vec<(usize, usize)> = (0..COUNT).map(|i| (SIZES[i % SIZES.len()], i)).collect();
    let got = udpecho_replies(&out, host);
    vm.check(got == want, format!("`{cmd}`: {} intact reply lines in order of {COUNT}:\n{out}", got.len()));
    let summary = format!("{COUNT} datagrams sent, {COUNT} received intact, 0 lost, 0 corrupt; rtt min/avg/max = ");
    let last = out.lines().last().unwrap_or("");
    vm.check(last.starts_with(&summary) && last.ends_with(" ms"), format!("`{cmd}` summary:\n{last}"));
    vm.check(out.lines().count() == 1 + COUNT + 3, format!("`{cmd}` printed extra lines:\n{out}"));
}

fn ping(vm: &mut Vm, ifname: &str, host: &str) {
    let cmd = format!("ping -s -c 20 -I 0.05 -i {ifname} {host}");
    let out = vm.run_timeout(&cmd, LONG);
    vm.check(ping_summary(&out) == Some((20, 20)), format!("`{cmd}`: {:?}\n{out}", ping_summary(&out)));
    let lines = out.lines().filter(|l| l.starts_with(&format!("64 bytes from {host}: icmp_seq="))).count();
    vm.check(lines == 20, format!("`{cmd}`: {lines} reply lines\n{out}"));
}

#[test]
fn smoltcp_and_fireengine_on_one_etherstub_ping_and_udp_echo_each_other() {
    let mut vm = Vm::boot_to_prompt(Config::with_smp(2));
    quiet(&mut vm, "dladm create-etherstub stub0");
    quiet(&mut vm, &format!("dladm create-vnic -l stub0 {SMOL}"));
    quiet(&mut vm, &format!("dladm create-vnic -l stub0 {FE}"));
    quiet(&mut vm, &format!("ipadm create-if -s smoltcp {SMOL}"));
    quiet(&mut vm, &format!("ipadm create-if -s fireengine {FE}"));
    let out = vm.run("ipadm show-if");
    vm.check(table_value(&out, SMOL, "STACK").as_deref() == Some("smoltcp"), format!("{SMOL} runs smoltcp:\n{out}"));
    vm.check(table_value(&out, FE, "STACK").as_deref() == Some("fireengine"), format!("{FE} runs FireEngine:\n{out}"));
    quiet(&mut vm, &format!("ipadm create-addr -T static -a {SMOL_IP}/24 {SMOL}"));
    quiet(&mut vm, &format!("ipadm create-addr -T static -a {FE_IP}/24 {FE}"));

    // Duplicate-address detection: tentative, then ok.
    let (states, out) =
        wait_addr_ok(&mut vm, &format!("{FE}/v4"), Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    vm.check(
        states.iter().all(|s| s == "tentative" || s == "ok"),
        format!("{FE}/v4 went through {states:?}"),
    );
    vm.check(table_value(&out, &format!("{SMOL}/v4"), "STATE").as_deref() == Some("ok"), format!("{SMOL}/v4:\n{out}"));

    let before = vm.run("netstat -s");

    ping(&mut vm, SMOL, FE_IP);
    ping(&mut vm, FE, SMOL_IP);
    udpecho(&mut vm, SMOL, FE_IP);
    udpecho(&mut vm, FE, SMOL_IP);

    // The FireEngine instance knows the smoltcp one at its MAC.
    let out = vm.run("arp -a");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    let own = rows.iter().find(|r| r.len() == 5 && r[0] == SMOL && r[1] == SMOL_IP && r[3] == "SPLA").map(|r| r[4]);
    let learned = rows.iter().find(|r| r.len() == 4 && r[0] == FE && r[1] == SMOL_IP).map(|r| r[3]);
    vm.check(
        own.is_some() && learned == own,
        format!("arp -a: {FE} has {SMOL_IP} at {learned:?}, {SMOL} is at {own:?}:\n{out}"),
    );

    // The counters: exact, so that a lost, doubled or stray datagram shows.
    let after = vm.run("netstat -s");
    let (fe0, fe1) = (section(&before, FE), section(&after, FE));
    let (sm0, sm1) = (section(&before, SMOL), section(&after, SMOL));
    let delta = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>, k: &str| {
        b.get(k).copied().unwrap_or(0).saturating_sub(a.get(k).copied().unwrap_or(0))
    };
    let fragmented = (0..COUNT).filter(|i| SIZES[i % SIZES.len()] > 1472).count() as u64;
    let n = COUNT as u64;
    for (name, want) in [
        ("udpInDatagrams", 2 * n),
        ("udpOutDatagrams", 2 * n),
        ("udpNoPorts", 0),
        ("udpInOverflows", 0),
        ("ipReasmOKs", 2 * fragmented),
        ("ipReasmFails", 0),
    ] {
        let got = delta(&fe0, &fe1, name);
        vm.check(got == want, format!("{FE} {name}: +{got}, expected +{want}\n{after}"));
    }
    for (name, want) in [("ipReasmOKs", 2 * fragmented), ("ipReasmFails", 0), ("ipFragOKs", 2 * fragmented)] {
        let got = delta(&sm0, &sm1, name);
        vm.check(got == want, format!("{SMOL} {name}: +{got}, expected +{want}\n{after}"));
    }
    let echo = after.split("\nIP instance ").find(|s| s.starts_with(&format!("{SMOL} "))).and_then(|s| {
        s.lines().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 8 && w[0] == "udp" && w[1] == "7" && w[2] == "echo").then(|| (w[3].parse::<u64>().ok(), w[4].parse::<u64>().ok()))
        })
    });
    vm.check(echo == Some((Some(n), Some(0))), format!("{SMOL}'s UDP echo took {n} datagrams, refused none: {echo:?}\n{after}"));
    vm.poweroff(0);
}
