//! Hardware lanes for VNICs (issue 5): on QEMU's igb in VMDq mode
//! (`igb.vmdq=4`: 4 pools, each its own Rx ring group with a unicast
//! filter) a VNIC over net0 reserves a free group and its address is
//! programmed into that pool, so its traffic arrives on its own ring and
//! soft ring set — `ID hw` in `dlstat show-link -r`, and the VNIC as the
//! client of its group in `dladm show-phys -H`. When the NIC has no free
//! group left the next VNIC falls back to software classification on the
//! default group (`ID sw`); deleting a VNIC gives its group back.
//!
//! (On virtio-net, which has no separate ring groups, a VNIC is `sw`:
//! `net_vnic.rs` checks that.)

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use arbalest_tests::net::{table_value, NetVm, GUEST_IP};
use arbalest_tests::Config;
use bootimage::{Net, Nic};

const SMP: usize = 4;
const QUEUES: usize = 4;
const POOLS: usize = 4;

fn boot_igb_vmdq() -> NetVm {
    let mut cfg = Config::with_smp(SMP);
    cfg.net = Net::none().with_nic(Nic::Igb);
    cfg.push_append(&format!("igb.vmdq={POOLS}"));
    let mut vm = NetVm::boot_with(cfg, QUEUES);
    let start = Instant::now();
    let mut out = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        out = vm.run("dladm show-phys");
        if table_value(&out, "net0", "STATE").as_deref() == Some("up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    vm.check(table_value(&out, "net0", "DEVICE").as_deref() == Some("igb0"), format!("net0 is not an up igb0:\n{out}"));
    vm.wait_reachable(Duration::from_secs(60));
    vm
}

fn quiet(vm: &mut NetVm, cmd: &str) {
    let out = vm.run(cmd);
    vm.check(out.trim().is_empty(), format!("`{cmd}` failed:\n{out}"));
}

/// One row of `dlstat show-link -r -p -o link,id,index,ipkts`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lane {
    link: String,
    id: String,
    index: String,
    ipkts: u64,
}

fn lanes(vm: &mut NetVm, link: &str) -> Vec<Lane> {
    let out = vm.run(&format!("dlstat show-link -r -p -o link,id,index,ipkts {link}"));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            (f.len() == 4).then(|| Lane {
                link: f[0].into(),
                id: f[1].into(),
                index: f[2].into(),
                ipkts: f[3].parse().unwrap_or(u64::MAX),
            })
        })
        .collect()
}

/// `(ring type, rings, clients)` rows of `dladm show-phys -H -p -o ringtype,rings,clients net0`.
fn groups(vm: &mut NetVm) -> Vec<(String, String, String)> {
    let out = vm.run("dladm show-phys -H -p -o ringtype,rings,clients net0");
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            (f.len() == 3).then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// The Rx group (its rings) whose only client is `client`.
fn group_of(groups: &[(String, String, String)], client: &str) -> Option<String> {
    groups.iter().find(|(t, _, c)| t == "RX" && c == client).map(|(_, r, _)| r.clone())
}

fn ping_ok(vm: &NetVm, ip: Ipv4Addr) -> bool {
    vm.ns().ping(ip, 5, "0.2").received >= 4
}

#[test]
fn vnic_on_igb_vmdq_gets_a_hardware_lane() {
    let mut vm = boot_igb_vmdq();
    let g0 = groups(&mut vm);
    let rx_groups = g0.iter().filter(|(t, _, _)| t == "RX").count();
    vm.check(rx_groups == POOLS, format!("igb.vmdq={POOLS}: expected {POOLS} Rx groups: {g0:?}"));

    quiet(&mut vm, "dladm create-vnic -l net0 vnic1");
    quiet(&mut vm, "ipadm create-addr -T static -a 10.0.0.5/24 vnic1");
    let vnic = Ipv4Addr::new(10, 0, 0, 5);
    let before = lanes(&mut vm, "vnic1");
    vm.check(ping_ok(&vm, vnic), "the host cannot ping the VNIC 10.0.0.5");
    vm.check(ping_ok(&vm, GUEST_IP), "the host cannot ping the primary link 10.0.0.2 beside the VNIC");

    // dlstat: the VNIC's lane is a hardware lane, and the pings came in on it.
    let after = lanes(&mut vm, "vnic1");
    let text = vm.run("dlstat show-link -r vnic1");
    let hw: Vec<&Lane> = after.iter().filter(|l| l.link == "vnic1" && l.id == "hw").collect();
    vm.check(!hw.is_empty(), format!("no `hw` row for vnic1:\n{text}"));
    vm.check(!after.iter().any(|l| l.id == "sw"), format!("vnic1 has a `sw` row although it has a hardware lane:\n{text}"));
    let grew: u64 = hw
        .iter()
        .map(|l| l.ipkts - before.iter().find(|b| b.id == "hw" && b.index == l.index).map_or(0, |b| b.ipkts))
        .sum();
    vm.check(grew >= 4, format!("vnic1's hardware lane took {grew} packets for 5 pings:\nbefore {before:?}\n{text}"));
    let ring = hw[0].index.clone();

    // show-phys -H: vnic1 is the client of its own group, that group holds
    // the ring dlstat shows, and the default group does not list vnic1.
    let g = groups(&mut vm);
    let own = group_of(&g, "vnic1");
    vm.check(own.as_deref() == Some(ring.as_str()), format!("show-phys -H: vnic1 is not the only client of a group holding ring {ring}: {g:?}"));
    let default = g.iter().find(|(t, _, _)| t == "RX").map(|(_, _, c)| c.clone()).unwrap_or_default();
    vm.check(default.split(',').any(|c| c == "net0") && !default.split(',').any(|c| c == "vnic1"), format!("default group clients {default:?}: {g:?}"));
    // net0 no longer lists that ring among its lanes.
    let net0 = lanes(&mut vm, "net0");
    vm.check(!net0.iter().any(|l| l.id == "hw" && l.index == ring), format!("net0 still shows ring {ring} as its own: {net0:?}"));
    let eff = vm.run("dladm show-linkprop -c -o value -p rxrings-effective vnic1");
    vm.check(eff.trim() == "1", format!("rxrings-effective of vnic1: {eff:?}"));

    // Two more VNICs take the last two pools; a fourth has none left and
    // is classified in software.
    quiet(&mut vm, "dladm create-vnic -l net0 vnic2");
    quiet(&mut vm, "dladm create-vnic -l net0 vnic3");
    quiet(&mut vm, "dladm create-vnic -l net0 vnic4");
    let g = groups(&mut vm);
    for v in ["vnic1", "vnic2", "vnic3"] {
        vm.check(group_of(&g, v).is_some(), format!("{v} has no group of its own: {g:?}"));
    }
    vm.check(group_of(&g, "vnic4").is_none(), format!("vnic4 got a group although the NIC has only {POOLS}: {g:?}"));
    let l4 = vm.run("dlstat show-link -r -p -o link,id vnic4");
    vm.check(l4.lines().any(|l| l.trim() == "vnic4:sw"), format!("vnic4 (no free group) is not a sw lane:\n{l4}"));
    let avail = vm.run("dladm show-linkprop -c -o value -p rxrings-available net0");
    vm.check(avail.trim() == "0", format!("rxrings-available of net0 with every pool taken: {avail:?}"));
    quiet(&mut vm, "ipadm create-addr -T static -a 10.0.0.8/24 vnic4");
    vm.check(ping_ok(&vm, Ipv4Addr::new(10, 0, 0, 8)), "the software-classified vnic4 does not answer");
    vm.check(ping_ok(&vm, vnic), "vnic1 stopped answering once vnic2-4 were created");

    // Deleting a hardware VNIC gives its group back; a new VNIC gets it.
    quiet(&mut vm, "dladm delete-vnic vnic2");
    let g = groups(&mut vm);
    vm.check(g.iter().any(|(t, _, c)| t == "RX" && c == "--"), format!("vnic2's group was not freed: {g:?}"));
    quiet(&mut vm, "dladm create-vnic -l net0 vnic5");
    let g = groups(&mut vm);
    vm.check(group_of(&g, "vnic5").is_some(), format!("vnic5 did not get the freed group: {g:?}"));
    quiet(&mut vm, "ipadm create-addr -T static -a 10.0.0.9/24 vnic5");
    let before = lanes(&mut vm, "vnic5");
    vm.check(ping_ok(&vm, Ipv4Addr::new(10, 0, 0, 9)), "vnic5 on a reused group does not answer");
    let after = lanes(&mut vm, "vnic5");
    let sum = |v: &[Lane]| v.iter().filter(|l| l.id == "hw").map(|l| l.ipkts).sum::<u64>();
    vm.check(sum(&after) >= sum(&before) + 4, format!("vnic5's pings did not come in on its hardware lane: {before:?} -> {after:?}"));
    vm.check(ping_ok(&vm, GUEST_IP), "the primary link stopped answering");
}

#[test]
fn rxrings_moves_a_live_vnic_between_its_own_rings_and_software() {
    let mut vm = boot_igb_vmdq();
    quiet(&mut vm, "dladm create-vnic -l net0 vnic1");
    quiet(&mut vm, "ipadm create-addr -T static -a 10.0.0.5/24 vnic1");
    let vnic = Ipv4Addr::new(10, 0, 0, 5);
    vm.check(ping_ok(&vm, vnic), "the host cannot ping the hardware VNIC");
    let g = groups(&mut vm);
    vm.check(group_of(&g, "vnic1").is_some(), format!("vnic1 has no group of its own: {g:?}"));

    // rxrings=sw on the live VNIC: its group is freed, its lane is `sw`,
    // and it still answers (classified on the default group).
    quiet(&mut vm, "dladm set-linkprop -p rxrings=sw vnic1");
    let g = groups(&mut vm);
    vm.check(group_of(&g, "vnic1").is_none(), format!("vnic1 kept its group after rxrings=sw: {g:?}"));
    let ids = vm.run("dlstat show-link -r -p -o link,id vnic1");
    vm.check(ids.lines().any(|l| l.trim() == "vnic1:sw") && !ids.contains("vnic1:hw"), format!("vnic1 after rxrings=sw:\n{ids}"));
    let eff = vm.run("dladm show-linkprop -c -o value -p rxrings-effective vnic1");
    vm.check(eff.trim() == "sw", format!("rxrings-effective after rxrings=sw: {eff:?}"));
    vm.check(ping_ok(&vm, vnic), "vnic1 stopped answering after moving to software classification");

    // rxrings=hw: it takes a group again and its pings arrive on it.
    quiet(&mut vm, "dladm set-linkprop -p rxrings=hw vnic1");
    let g = groups(&mut vm);
    vm.check(group_of(&g, "vnic1").is_some(), format!("vnic1 got no group back with rxrings=hw: {g:?}"));
    let before = lanes(&mut vm, "vnic1");
    vm.check(ping_ok(&vm, vnic), "vnic1 stopped answering after moving back to hardware");
    let after = lanes(&mut vm, "vnic1");
    let sum = |v: &[Lane]| v.iter().filter(|l| l.id == "hw").map(|l| l.ipkts).sum::<u64>();
    vm.check(sum(&after) >= sum(&before) + 4, format!("vnic1's pings did not come in on its hardware lane: {before:?} -> {after:?}"));

    // Its lanes follow its own `cpus` and `priority`, not net0's.
    quiet(&mut vm, "dladm set-linkprop -p cpus=2,priority=medium vnic1");
    vm.check(ping_ok(&vm, vnic), "vnic1 stopped answering after cpus=2");
    let ring = lanes(&mut vm, "vnic1").into_iter().find(|l| l.id == "hw").map(|l| l.index).unwrap_or_default();
    let threads = vm.run("threads");
    let poll = threads.lines().find(|l| l.contains(&format!("net0/rx{ring}/poll"))).unwrap_or("").to_string();
    let f: Vec<&str> = poll.split_whitespace().collect();
    vm.check(f.len() >= 4 && f[2] == "2" && f[3] == "medium", format!("the poll thread of vnic1's ring {ring} is not on cpu 2 at medium: {poll:?}\n{threads}"));
    let eff = vm.run("dladm show-linkprop -c -o value -p cpus-effective vnic1");
    vm.check(eff.trim() == "2", format!("cpus-effective of vnic1: {eff:?}"));

    // With every pool taken, rxrings=hw on a software VNIC is refused and
    // changes nothing.
    for v in ["vnic2", "vnic3", "vnic4"] {
        quiet(&mut vm, &format!("dladm create-vnic -l net0 {v}"));
    }
    let g_before = groups(&mut vm);
    let out = vm.run("dladm set-linkprop -p rxrings=hw vnic4");
    vm.check(out.starts_with("dladm: cannot set rxrings on link 'vnic4'"), format!("rxrings=hw with no free group:\n{out}"));
    let g_after = groups(&mut vm);
    vm.check(g_after == g_before, format!("a refused rxrings changed the ring groups: {g_before:?} -> {g_after:?}"));
    let v = vm.run("dladm show-linkprop -c -o value -p rxrings vnic4");
    vm.check(v.trim() == "--", format!("a refused rxrings was stored: {v:?}"));
    vm.check(ping_ok(&vm, GUEST_IP), "the primary link stopped answering");
}
