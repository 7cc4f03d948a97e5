//! Tests of the `dladm` link commands (VNICs, etherstubs, link
//! properties) and of `dlstat` over every link class, on the fake NIC.
//! The link and property registries are global and shared with the tests
//! running in parallel: each test names its links with its own prefix
//! (`qa`, `qb`, ...) and its [`DlEnv`] shows only those.

use std::format;
use std::string::String;
use std::sync::{Arc, Mutex};
use std::vec;
use std::vec::Vec;

use super::DladmEnv;
use super::tests::{DlEnv, Env, link as phys_link, run_dlstat_links};
use crate::client::MacClient;
use crate::fake::{FakeNic, fake_info, tcp4_frame};
use crate::link::{self, Datalink};
use crate::mac::Mac;
use crate::mblk::MblkChain;
use crate::props::{self, LinkProps, Priority};
use crate::provider::{GroupInfo, MacAddr};

fn vnic(name: &str) -> Arc<MacClient> {
    match link::datalink(name) {
        Some(Datalink::Vnic(c)) => c,
        _ => panic!("no VNIC {name}"),
    }
}

fn dl(name: &str) -> Datalink {
    link::datalink(name).unwrap_or_else(|| panic!("no link {name}"))
}

fn plumb(c: &MacClient) {
    c.set_rx(Some(Arc::new(|_c: MblkChain| {})));
}

/// A TCP frame to `dst`.
fn frame_to(dst: MacAddr, len: usize) -> Vec<u8> {
    let mut f = tcp4_frame(1000, 80, len);
    f[0..6].copy_from_slice(&dst);
    f
}

fn send(c: &Arc<MacClient>, f: &[u8]) {
    let mut m = c.alloc_tx(f.len()).expect("tx buffer");
    m.data_mut().copy_from_slice(f);
    c.tx(m);
}

/// Runs the lane of Rx ring `ring` until idle (interrupt mode pickups).
fn run_ring(mac: &Mac, ring: usize) {
    for _ in 0..16 {
        let step = mac.rx_poll_step(ring);
        while mac.rx_worker_step(ring) {}
        if step == crate::PollStep::Idle && mac.rx_rearm(ring) == crate::PollStep::Idle {
            return;
        }
    }
}

/// A started fake NIC with 4 Rx rings in two groups: the default group
/// (rings 0-1) and one group with a single unicast slot (rings 2-3), free
/// for one hardware VNIC.
fn two_group_link() -> (Arc<FakeNic>, Arc<Mac>) {
    let mut info = fake_info(4, 2);
    info.rx_groups = vec![GroupInfo { rings: vec![0, 1], unicast_slots: 4 }, GroupInfo { rings: vec![2, 3], unicast_slots: 1 }];
    let nic = FakeNic::with_info(info);
    let mac = nic.register().unwrap();
    mac.start().unwrap();
    (nic, mac)
}

fn dlstat(args: &[&str], links: &[Datalink]) -> (i32, String) {
    run_dlstat_links(args, links, &Env::once())
}

// ---- VNICs over a physical link ----

#[test]
fn create_show_and_delete_vnics_over_a_physical_link() {
    let (_, mac) = phys_link(1, 1);
    let l = mac.link();
    let env = DlEnv::new(std::slice::from_ref(&mac), "qa");
    assert_eq!(env.run(&["create-vnic", "-l", l, "qa0"]), (0, String::new()));
    assert_eq!(env.run(&["create-vnic", "-t", "-l", l, "-m", "2:8:20:0:0:99", "-v", "12", "qa1"]), (0, String::new()));
    let a = vnic("qa0");
    assert_eq!(&a.addr()[..3], &link::RANDOM_PREFIX, "auto without factory addresses is random");
    let am = link::fmt_mac(&a.addr());
    let (st, out) = env.run(&["show-vnic"]);
    assert_eq!(st, 0);
    assert_eq!(
        out,
        format!(
            "LINK         OVER          SPEED MACADDRESS         MACADDRTYPE    VID\n\
             qa0          {l:<12}  10000 {am:<18} random           0\n\
             qa1          {l:<12}  10000 2:8:20:0:0:99      fixed           12\n"
        )
    );
    let (_, out) = env.run(&["show-vnic", "-p", "-o", "link,macaddress,macaddrtype,vid", "qa1"]);
    assert_eq!(out, "qa1:2\\:8\\:20\\:0\\:0\\:99:fixed:12\n");
    let (_, out) = env.run(&["show-vnic", "-l", l, "-p", "-o", "link"]);
    assert_eq!(out, "qa0\nqa1\n");

    // show-link: every class, a VNIC over its link.
    let (st, out) = env.run(&["show-link"]);
    assert_eq!(st, 0);
    assert_eq!(
        out,
        format!(
            "LINK        CLASS        MTU STATE    BRIDGE     OVER\n\
             {l:<11} phys        1500 up       --         --\n\
             qa0         vnic        1500 up       --         {l}\n\
             qa1         vnic        1500 up       --         {l}\n"
        )
    );
    assert_eq!(env.run(&["show-link", "-p", "-o", "link,class,over", "qa1"]).1, format!("qa1:vnic:{l}\n"));

    // show-phys -H: the primary client, then software VNICs once plumbed.
    let (_, out) = env.run(&["show-phys", "-H", "-p", "-o", "ringtype,clients"]);
    assert_eq!(out, format!("RX:{l}\nTX:{l}\n"));
    plumb(&a);
    let (_, out) = env.run(&["show-phys", "-H", "-p", "-o", "ringtype,clients"]);
    assert_eq!(out, format!("RX:{l},qa0\nTX:{l},qa0\n"));

    // Plumbed: refused, nothing changes.
    let before = env.run(&["show-link"]).1;
    let (st, out) = env.run(&["delete-vnic", "qa0"]);
    assert_eq!(st, 1);
    assert!(out.starts_with("dladm: 'qa0' is busy: an IP interface is plumbed on it\nusage: dladm delete-vnic"), "{out}");
    assert_eq!(env.run(&["show-link"]).1, before);
    a.set_rx(None);
    assert_eq!(env.run(&["delete-vnic", "qa0"]), (0, String::new()));
    assert_eq!(env.run(&["show-vnic", "-p", "-o", "link"]).1, "qa1\n");
    assert_eq!(env.run(&["delete-vnic", "-t", "qa1"]), (0, String::new()));
    assert_eq!(env.run(&["show-vnic"]), (0, String::new()));
    assert!(mac.switch().clients().len() == 1);
}

#[test]
fn create_vnic_refuses_bad_input_and_changes_nothing() {
    let (_, mac) = phys_link(1, 1);
    let l = mac.link();
    let env = DlEnv::new(std::slice::from_ref(&mac), "qb");
    assert_eq!(env.run(&["create-vnic", "-l", l, "qb0"]).0, 0);
    let taken = link::fmt_mac(&vnic("qb0").addr());
    let usage = "usage: dladm create-vnic [-t] -l link [-m auto|random|factory|MAC] [-v vid] [-p prop=value[,...]] vnic\n";
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (vec!["qb1"], 2, "dladm: -l link is required\n".into()),
        (vec!["-l", l], 2, "dladm: missing vnic name\n".into()),
        (vec!["-l", l, "qb1", "qb2"], 2, "dladm: unexpected operand 'qb2'\n".into()),
        (vec!["-l", l, "-l", l, "qb1"], 2, "dladm: the option -l cannot be specified more than once\n".into()),
        (vec!["-l", l, "-x", "qb1"], 2, "dladm: illegal option -- x\n".into()),
        (vec!["-l", l, "x!"], 1, "dladm: invalid link name 'x!'\n".into()),
        (vec!["-l", l, "qb"], 1, "dladm: invalid link name 'qb'\n".into()),
        (vec!["-l", l, "qb0"], 1, "dladm: object 'qb0' already exists\n".into()),
        (vec!["-l", l, l], 1, format!("dladm: object '{l}' already exists\n")),
        (vec!["-l", "nosuch0", "qb1"], 1, "dladm: link 'nosuch0' is not valid: object not found\n".into()),
        (vec!["-l", "qb0", "qb1"], 1, "dladm: 'qb0' is not a physical link or an etherstub\n".into()),
        (vec!["-l", l, "-v", "0", "qb1"], 1, "dladm: invalid VLAN id '0' (1-4094)\n".into()),
        (vec!["-l", l, "-v", "4095", "qb1"], 1, "dladm: invalid VLAN id '4095' (1-4094)\n".into()),
        (vec!["-l", l, "-v", "x", "qb1"], 1, "dladm: invalid VLAN id 'x' (1-4094)\n".into()),
        (vec!["-l", l, "-v", "99999999999", "qb1"], 1, "dladm: invalid VLAN id '99999999999' (1-4094)\n".into()),
        (vec!["-l", l, "-m", "zz", "qb1"], 1, "dladm: invalid MAC address 'zz'\n".into()),
        (vec!["-l", l, "-m", "1:2:3:4:5:6", "qb1"], 1, "dladm: invalid MAC address '1:2:3:4:5:6'\n".into()),
        (vec!["-l", l, "-m", &taken, "qb1"], 1, format!("dladm: MAC address {taken} is already in use\n")),
        (vec!["-l", l, "-m", "factory", "qb1"], 1, "dladm: no free factory MAC address\n".into()),
        (
            vec!["-l", l, "-p", "maxbw=1M", "qb1"],
            1,
            "dladm: cannot create vnic 'qb1': property 'maxbw': invalid value '1M': the minimum is 1.2M\n".into(),
        ),
        (vec!["-l", l, "-p", "mtu=9000", "qb1"], 1, "dladm: cannot create vnic 'qb1': property 'mtu': read-only property\n".into()),
        (vec!["-l", l, "-p", "bogus=1", "qb1"], 1, "dladm: cannot create vnic 'qb1': property 'bogus': unknown property\n".into()),
        (
            vec!["-l", l, "-p", "maxbw=10M,maxbw=20M", "qb1"],
            1,
            "dladm: cannot create vnic 'qb1': property 'maxbw': specified more than once\n".into(),
        ),
        (
            vec!["-l", l, "-p", "maxbw=10M", "-p", "cpus=7", "qb1"],
            1,
            "dladm: cannot create vnic 'qb1': property 'cpus': invalid value '7': CPU 7 does not exist (CPUs 0-3)\n".into(),
        ),
        (
            vec!["-l", l, "-p", "rxrings=2", "qb1"],
            1,
            "dladm: cannot create vnic 'qb1': property 'rxrings': invalid value '2': no hardware rings can be given to this link (only sw)\n"
                .into(),
        ),
        (vec!["-l", l, "-p", "=1", "qb1"], 2, "dladm: invalid property specification '=1'\n".into()),
        (vec!["-l", l, "-p", "1,maxbw=2", "qb1"], 2, "dladm: invalid property specification '1,maxbw=2'\n".into()),
    ];
    let before = env.run(&["show-link"]).1;
    for (args, status, msg) in cases {
        let mut argv = vec!["create-vnic"];
        argv.extend_from_slice(&args);
        let (st, out) = env.run(&argv);
        assert_eq!((st, out.as_str()), (status, format!("{msg}{usage}").as_str()), "dladm {argv:?}");
        assert_eq!(env.run(&["show-link"]).1, before, "dladm {argv:?} changed something");
        assert!(link::datalink("qb1").is_none());
    }
    assert_eq!(props::get("qb1"), LinkProps::default());
    // Wrong class for delete/show.
    let (st, out) = env.run(&["delete-vnic", l]);
    assert_eq!((st, out.lines().next()), (1, Some(format!("dladm: link '{l}' is not a VNIC").as_str())));
    let (st, out) = env.run(&["show-vnic", l]);
    assert_eq!((st, out.lines().next()), (1, Some(format!("dladm: link '{l}' is not a VNIC").as_str())));
    let (st, out) = env.run(&["show-vnic", "-l", "nosuch0"]);
    assert_eq!((st, out.lines().next()), (1, Some("dladm: link 'nosuch0' is not valid: object not found")));
    let (st, out) = env.run(&["delete-vnic", "qb9"]);
    assert_eq!((st, out.lines().next()), (1, Some("dladm: link 'qb9' is not valid: object not found")));
    assert_eq!(env.run(&["delete-vnic"]).0, 2);
    assert_eq!(env.run(&["delete-vnic", "qb0"]).0, 0);
}

#[test]
fn vnic_addresses_factory_auto_random_and_vlan() {
    let mut info = fake_info(1, 1);
    info.extra_factory_addrs = vec![[0x52, 0x54, 0, 0, 0, 1]];
    let nic = FakeNic::with_info(info);
    let mac = nic.register().unwrap();
    mac.start().unwrap();
    let l = mac.link();
    let env = DlEnv::new(std::slice::from_ref(&mac), "qj");
    assert_eq!(env.run(&["create-vnic", "-l", l, "qj0"]).0, 0);
    assert_eq!(env.run(&["create-vnic", "-l", l, "-m", "random", "-v", "4094", "qj1"]).0, 0);
    let (st, out) = env.run(&["create-vnic", "-l", l, "-m", "factory", "qj2"]);
    assert_eq!((st, out.lines().next()), (1, Some("dladm: no free factory MAC address")));
    assert_eq!(env.run(&["create-vnic", "-l", l, "qj3"]).0, 0);
    let (_, out) = env.run(&["show-vnic", "-p", "-o", "link,macaddrtype,vid"]);
    assert_eq!(out, "qj0:factory:0\nqj1:random:4094\nqj3:random:0\n");
    assert_eq!(vnic("qj0").addr(), [0x52, 0x54, 0, 0, 0, 1]);
    assert_eq!(&vnic("qj1").addr()[..3], &link::RANDOM_PREFIX);
    assert_ne!(vnic("qj1").addr(), vnic("qj3").addr(), "fresh entropy each time");
    for n in ["qj0", "qj1", "qj3"] {
        assert_eq!(env.run(&["delete-vnic", n]).0, 0);
    }
}

// ---- etherstubs ----

#[test]
fn etherstubs_create_show_and_delete() {
    let env = DlEnv::new(&[], "qc");
    assert_eq!(env.run(&["create-etherstub", "qcstub0"]), (0, String::new()));
    let usage = "usage: dladm create-etherstub [-t] etherstub\n";
    assert_eq!(env.run(&["create-etherstub", "qcstub0"]), (1, format!("dladm: object 'qcstub0' already exists\n{usage}")));
    assert_eq!(env.run(&["create-etherstub", "qc!"]), (1, format!("dladm: invalid link name 'qc!'\n{usage}")));
    assert_eq!(env.run(&["create-etherstub"]), (2, format!("dladm: missing etherstub name\n{usage}")));
    assert_eq!(env.run(&["show-etherstub"]), (0, "LINK\nqcstub0\n".into()));
    assert_eq!(env.run(&["show-etherstub", "-p", "-o", "link", "qcstub0"]), (0, "qcstub0\n".into()));
    assert_eq!(
        env.run(&["show-link"]),
        (0, "LINK        CLASS        MTU STATE    BRIDGE     OVER\nqcstub0     etherstub   1500 up       --         --\n".into())
    );
    assert_eq!(env.run(&["create-vnic", "-l", "qcstub0", "qc1"]).0, 0);
    assert_eq!(env.run(&["create-vnic", "-l", "qcstub0", "qc2"]).0, 0);
    assert_eq!(env.run(&["show-vnic", "-p", "-o", "link,over,speed"]).1, "qc1:qcstub0:0\nqc2:qcstub0:0\n");
    let before = env.run(&["show-link"]).1;
    let (st, out) = env.run(&["delete-etherstub", "qcstub0"]);
    assert_eq!(st, 1);
    assert_eq!(out.lines().next(), Some("dladm: 'qcstub0' is busy: 2 VNIC(s) are still on it"));
    assert_eq!(env.run(&["show-link"]).1, before);
    assert_eq!(env.run(&["show-etherstub", "qc1"]).1.lines().next(), Some("dladm: link 'qc1' is not an etherstub"));
    assert_eq!(env.run(&["delete-etherstub", "qc1"]).1.lines().next(), Some("dladm: link 'qc1' is not an etherstub"));
    assert_eq!(env.run(&["delete-vnic", "qcstub0"]).1.lines().next(), Some("dladm: link 'qcstub0' is not a VNIC"));

    // Traffic on the stub: all local.
    let (a, b) = (vnic("qc1"), vnic("qc2"));
    plumb(&a);
    plumb(&b);
    send(&a, &frame_to(b.addr(), 100));
    let (_, out) = env.run(&["show-link", "-s", "-p", "-o", "link,ipackets,rbytes,opackets,obytes"]);
    assert_eq!(out, "qcstub0:1:100:1:100\nqc1:0:0:1:100\nqc2:1:100:0:0\n");
    a.set_rx(None);
    b.set_rx(None);

    assert_eq!(env.run(&["delete-vnic", "qc1"]).0, 0);
    assert_eq!(env.run(&["delete-vnic", "qc2"]).0, 0);
    assert_eq!(env.run(&["delete-etherstub", "qcstub0"]), (0, String::new()));
    assert_eq!(env.run(&["show-etherstub"]), (0, String::new()));
    assert_eq!(env.run(&["delete-etherstub", "qcstub0"]).1.lines().next(), Some("dladm: link 'qcstub0' is not valid: object not found"));
}

// ---- dlstat over VNICs ----

#[test]
fn rxrings_sw_keeps_a_vnic_off_a_free_ring_group() {
    let (_nic, mac) = two_group_link();
    let l = mac.link();
    let env = DlEnv::new(std::slice::from_ref(&mac), "qs");
    assert_eq!(env.run(&["create-vnic", "-l", l, "-p", "rxrings=sw", "qs0"]).0, 0);
    assert_eq!(vnic("qs0").hw_group(), None, "rxrings=sw: software lane");
    // The group stayed free: the next VNIC gets it.
    assert_eq!(env.run(&["create-vnic", "-l", l, "qs1"]).0, 0);
    assert_eq!(vnic("qs1").hw_group(), Some(1));
}

#[test]
fn rxrings_moves_an_existing_vnic_between_hardware_and_software() {
    let (nic, mac) = two_group_link();
    let l = mac.link();
    let env = DlEnv::new(std::slice::from_ref(&mac), "qm");
    assert_eq!(env.run(&["create-vnic", "-l", l, "qm0"]).0, 0);
    assert_eq!(env.run(&["create-vnic", "-l", l, "qm1"]).0, 0);
    assert_eq!((vnic("qm0").hw_group(), vnic("qm1").hw_group()), (Some(1), None));
    // qm1 cannot take a group while qm0 holds the only one: refused, and
    // nothing changes (not even the stored value).
    let (st, out) = env.run(&["set-linkprop", "-p", "rxrings=hw", "qm1"]);
    assert_eq!(st, 1);
    assert!(out.starts_with("dladm: cannot set rxrings on link 'qm1': no free hardware ring group for 'qm1'"), "{out}");
    assert_eq!(env.run(&["show-linkprop", "-c", "-o", "value", "-p", "rxrings", "qm1"]).1, "--\n");
    // qm0 gives its group back; qm1 takes it.
    assert_eq!(env.run(&["set-linkprop", "-p", "rxrings=sw", "qm0"]), (0, String::new()));
    assert_eq!(vnic("qm0").hw_group(), None);
    assert_eq!(env.run(&["show-linkprop", "-c", "-o", "value", "-p", "rxrings,rxrings-effective", "qm0"]).1, "sw\nsw\n");
    assert_eq!(env.run(&["set-linkprop", "-p", "rxrings=hw", "qm1"]), (0, String::new()));
    assert_eq!(vnic("qm1").hw_group(), Some(1));
    let (_, out) = env.run(&["show-phys", "-H", "-p", "-o", "ringtype,rings,clients"]);
    assert!(out.contains("RX:2-3:qm1\n"), "{out}");
    let f = nic.unicast_filters();
    assert!(f.contains(&(1, vnic("qm1").addr())) && !f.contains(&(0, vnic("qm1").addr())), "{f:?}");
    assert!(f.contains(&(0, vnic("qm0").addr())) && !f.contains(&(1, vnic("qm0").addr())), "{f:?}");
    // Traffic follows: qm0's frames are classified in software on the
    // default group, qm1's arrive on its own rings.
    let (v0, v1) = (vnic("qm0"), vnic("qm1"));
    plumb(&v0);
    plumb(&v1);
    mac.set_rx(Some(Arc::new(|_c: MblkChain| {})));
    assert!(nic.inject(0, &frame_to(v0.addr(), 100)));
    assert!(nic.inject(2, &frame_to(v1.addr(), 100)));
    run_ring(&mac, 0);
    run_ring(&mac, 2);
    assert_eq!((v0.stats.snapshot().ipackets, v1.stats.snapshot().ipackets), (1, 1));
    // reset-linkprop lets the system choose again: qm0 stays in software
    // (no group is free) and says so.
    assert_eq!(env.run(&["reset-linkprop", "-p", "rxrings", "qm0"]), (0, String::new()));
    assert_eq!(vnic("qm0").hw_group(), None);
    assert_eq!(env.run(&["set-linkprop", "-p", "rxrings=sw", "qm1"]), (0, String::new()));
    assert_eq!(env.run(&["reset-linkprop", "-p", "rxrings", "qm0"]), (0, String::new()));
    assert_eq!(vnic("qm0").hw_group(), Some(1), "reset takes the group that became free");
    // A ring group changing hands through create/delete re-runs the
    // property hooks (the kernel re-places the group's lanes): for the
    // new hardware VNIC, and for the physical link when it is deleted.
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    let phys = String::from(l);
    let p2 = phys.clone();
    crate::props::on_change(Arc::new(move |link: &str, _p: &crate::props::LinkProps| {
        if link.starts_with("qm") || link == p2 {
            s2.lock().unwrap().push(String::from(link));
        }
    }));
    assert_eq!(env.run(&["set-linkprop", "-p", "rxrings=sw", "qm0"]), (0, String::new()));
    seen.lock().unwrap().clear();
    assert_eq!(env.run(&["create-vnic", "-l", l, "qm2"]).0, 0);
    assert_eq!(vnic("qm2").hw_group(), Some(1));
    assert_eq!(*seen.lock().unwrap(), vec![String::from("qm2")]);
    seen.lock().unwrap().clear();
    assert_eq!(env.run(&["delete-vnic", "qm2"]), (0, String::new()));
    assert_eq!(*seen.lock().unwrap(), vec![phys]);
}

#[test]
fn a_hardware_vnic_owns_its_rings() {
    let (nic, mac) = two_group_link();
    let l = mac.link();
    let env = DlEnv::new(std::slice::from_ref(&mac), "qd");
    assert_eq!(env.run(&["create-vnic", "-l", l, "qd0"]).0, 0);
    assert_eq!(env.run(&["create-vnic", "-l", l, "qd1"]).0, 0);
    let (v, sw) = (vnic("qd0"), vnic("qd1"));
    assert_eq!((v.hw_group(), sw.hw_group()), (Some(1), None), "one free group");
    let (_, out) = env.run(&["show-phys", "-H", "-p", "-o", "ringtype,rings,clients"]);
    assert_eq!(out, format!("RX:0-1:{l}\nRX:2-3:qd0\nTX:0-1:{l},qd0\n"));
    let (_, out) = env.run(&["show-linkprop", "-c", "-o", "link,property,value", "-p", "rxrings-effective,rxrings-available"]);
    assert_eq!(
        out,
        format!(
            "{l}:rxrings-effective:2\n{l}:rxrings-available:0\n\
             qd0:rxrings-effective:2\nqd0:rxrings-available:0\n\
             qd1:rxrings-effective:sw\nqd1:rxrings-available:0\n"
        )
    );
    assert_eq!(env.run(&["show-linkprop", "-c", "-o", "value", "-p", "cpus-effective", "qd0"]).1, "2-3\n");

    plumb(&v);
    plumb(&sw);
    mac.set_rx(Some(Arc::new(|_c: MblkChain| {})));
    for _ in 0..3 {
        assert!(nic.inject(2, &frame_to(v.addr(), 100)));
    }
    for _ in 0..2 {
        assert!(nic.inject(0, &frame_to([0x52, 0x54, 0x00, 0x12, 0x34, 0x56], 100)));
    }
    assert!(nic.inject(1, &frame_to(sw.addr(), 100)));
    run_ring(&mac, 2);
    run_ring(&mac, 0);
    run_ring(&mac, 1);
    let links = [Datalink::Phys(mac.clone()), dl("qd0"), dl("qd1")];
    let (st, out) = dlstat(&["show-link", "-r", "-p", "-o", "link,id,index,ipkts,rbytes,intrs"], &links);
    assert_eq!(st, 0);
    assert_eq!(
        out,
        format!(
            "{l}:hw:0:2:200:2\n{l}:hw:1:1:100:1\n{l}:local:--:0:0:\n{l}:bcast:--:0::\n\
             qd0:hw:2:3:300:3\nqd0:hw:3:0:0:0\nqd0:local:--:0:0:\nqd0:bcast:--:0::\n\
             qd1:sw:--:1:100:\nqd1:local:--:0:0:\nqd1:bcast:--:0::\n"
        )
    );
    // Human output: `--` where a lane has no such counter.
    let (_, out) = dlstat(&["show-link", "-r", "qd1"], &links);
    assert_eq!(
        out,
        "LINK           TYPE ID    INDEX    IPKTS   RBYTES    INTRS    POLLS    CH<10  CH10-50    CH>50\n\
         qd1            rx   sw       --        1      100       --       --       --       --       --\n\
         qd1            rx   local    --        0        0       --       --       --       --       --\n\
         qd1            rx   bcast    --        0       --       --       --       --       --       --\n"
    );
    let (_, out) = dlstat(&["show-link", "-r", "-F", "-p", "-o", "link,index,fout,ipkts", "qd0"], &links);
    assert!(out.contains("qd0:2:tcp0:3\n") && !out.contains(&format!("{l}:")), "{out}");
    let (_, out) = dlstat(&["-p", "-o", "link,ipkts,rbytes"], &links);
    assert_eq!(out, format!("{l}:6:600\nqd0:3:300\nqd1:1:100\n"));
    let (_, out) = dlstat(&["-r", "-p", "-o", "link,ipkts,intrs"], &links);
    assert_eq!(out, format!("{l}:3:3\nqd0:3:3\nqd1:1:0\n"));
    let (_, out) = dlstat(&["show-link", "-a", "-u", "R", "qd0"], &links);
    assert!(out.starts_with("qd0 rx hw 2\n    intrs          3\n"), "{out}");
    assert!(out.contains("qd0 client local\n    ipkts          3\n"), "{out}");
    // show-phys is about the hardware: every ring, physical links only.
    let (_, out) = dlstat(&["show-phys", "-r", "-p", "-o", "index,ipkts"], &links);
    assert_eq!(out, "0:2\n1:1\n2:3\n3:0\n");
    let (st, out) = dlstat(&["show-phys", "qd0"], &links);
    assert_eq!((st, out.lines().next()), (1, Some("dlstat: link 'qd0' is not a physical link")));

    v.set_rx(None);
    sw.set_rx(None);
    assert_eq!(env.run(&["delete-vnic", "qd0"]).0, 0);
    assert_eq!(env.run(&["delete-vnic", "qd1"]).0, 0);
    let (_, out) = env.run(&["show-phys", "-H", "-p", "-o", "ringtype,rings,clients"]);
    assert_eq!(out, format!("RX:0-1:{l}\nRX:2-3:--\nTX:0-1:{l}\n"));
    let (_, out) = dlstat(&["show-link", "-r", "-p", "-o", "id,index", l], &[Datalink::Phys(mac.clone())]);
    assert_eq!(out, "hw:0\nhw:1\nhw:2\nhw:3\n", "the rings are the link's again, no local rows");
}

#[test]
fn software_vnic_and_local_switching() {
    let (nic, mac) = phys_link(1, 1);
    let l = mac.link();
    let env = DlEnv::new(std::slice::from_ref(&mac), "qe");
    assert_eq!(env.run(&["create-vnic", "-l", l, "qe0"]).0, 0);
    let v = vnic("qe0");
    plumb(&v);
    mac.set_rx(Some(Arc::new(|_c: MblkChain| {})));
    for _ in 0..2 {
        assert!(nic.inject(0, &frame_to(v.addr(), 100)));
    }
    run_ring(&mac, 0);
    // To the primary client: switched locally; to anyone else: the wire.
    send(&v, &frame_to(mac.primary().addr(), 80));
    send(&v, &frame_to([2, 0, 0, 0, 0, 7], 60));
    let links = [Datalink::Phys(mac.clone()), dl("qe0")];
    let (_, out) = dlstat(&["show-link", "-r", "-p", "-o", "link,id,index,ipkts,rbytes"], &links);
    assert_eq!(out, format!("{l}:hw:0:2:200\n{l}:local:--:1:80\n{l}:bcast:--:0:\nqe0:sw:--:2:200\nqe0:local:--:0:0\nqe0:bcast:--:0:\n"));
    let (_, out) = dlstat(&["show-link", "-t", "-p", "-o", "link,id,index,opkts,obytes"], &links);
    assert_eq!(out, format!("{l}:hw:0:1:60\n{l}:local:--:0:0\nqe0:sw:--:1:60\nqe0:local:--:1:80\n"));
    let (_, out) = dlstat(&["-t", "-p", "-o", "link,opkts,obytes"], &links);
    assert_eq!(out, format!("{l}:1:60\nqe0:2:140\n"));
    let (_, out) = env.run(&["show-link", "-s", "-p", "-o", "link,ipackets,rbytes,opackets,obytes", "qe0"]);
    assert_eq!(out, "qe0:2:200:2:140\n");
    v.set_rx(None);
    assert_eq!(env.run(&["delete-vnic", "qe0"]).0, 0);
}

#[test]
fn etherstub_traffic_is_local_in_dlstat() {
    let env = DlEnv::new(&[], "qf");
    assert_eq!(env.run(&["create-etherstub", "qfstub0"]).0, 0);
    assert_eq!(env.run(&["create-vnic", "-l", "qfstub0", "qf1"]).0, 0);
    assert_eq!(env.run(&["create-vnic", "-l", "qfstub0", "qf2"]).0, 0);
    let (a, b) = (vnic("qf1"), vnic("qf2"));
    plumb(&a);
    plumb(&b);
    send(&a, &frame_to(b.addr(), 100));
    send(&a, &frame_to(b.addr(), 100));
    send(&b, &frame_to([0xff; 6], 60));
    let links = env.datalinks();
    let (_, out) = dlstat(&["show-link", "-r", "-p", "-o", "link,id,ipkts,rbytes"], &links);
    assert_eq!(out, "qfstub0:local:3:260\nqfstub0:bcast:1:\nqf1:local:1:60\nqf1:bcast:1:\nqf2:local:2:200\nqf2:bcast:0:\n");
    let (_, out) = dlstat(&["show-link", "-t", "-p", "-o", "link,id,opkts"], &links);
    assert_eq!(out, "qfstub0:local:3\nqf1:local:2\nqf2:local:1\n");
    let (_, out) = dlstat(&["-p", "-o", "link,ipkts,opkts"], &links);
    assert_eq!(out, "qfstub0:3:3\nqf1:1:2\nqf2:2:1\n");
    a.set_rx(None);
    b.set_rx(None);
    assert_eq!(env.run(&["delete-vnic", "qf1"]).0, 0);
    assert_eq!(env.run(&["delete-vnic", "qf2"]).0, 0);
    assert_eq!(env.run(&["delete-etherstub", "qfstub0"]).0, 0);
}

// ---- link properties ----

#[test]
fn linkprops_set_show_reset_and_notify() {
    let (_, mac) = phys_link(2, 2);
    let l = mac.link();
    let env = DlEnv::new(std::slice::from_ref(&mac), "qg");
    let seen: Arc<Mutex<Vec<(String, LinkProps)>>> = Arc::default();
    let s2 = seen.clone();
    props::on_change(Arc::new(move |link: &str, p: &LinkProps| {
        if link.starts_with("qg") {
            s2.lock().unwrap().push((String::from(link), p.clone()));
        }
    }));
    assert_eq!(env.run(&["create-vnic", "-l", l, "-p", "maxbw=10M,priority=medium", "qg0"]).0, 0);
    assert_eq!(seen.lock().unwrap().last().map(|(n, p)| (n.as_str(), p.maxbw)), Some(("qg0", Some(10_000_000))));
    let (st, out) = env.run(&["show-linkprop", "-c", "-o", "property,perm,value,default,possible", "qg0"]);
    assert_eq!(st, 0);
    assert_eq!(
        out,
        "mtu:r-:1500:1500:--\n\
         maxbw:rw:10:--:--\n\
         cpus:rw:--:--:--\n\
         cpus-effective:r-:0-1:--:--\n\
         priority:rw:medium:high:low,medium,high\n\
         protection:rw:--:--:mac-nospoof,ip-nospoof,restricted\n\
         allowed-ips:rw:--:--:--\n\
         rxrings:rw:--:--:sw\n\
         rxrings-effective:r-:sw:--:--\n\
         rxrings-available:r-:0:--:--\n\
         txrings:rw:--:--:sw\n\
         txrings-effective:r-:sw:--:--\n\
         txrings-available:r-:0:--:--\n"
    );
    let (_, out) = env.run(&["show-linkprop", "-p", "maxbw,priority", "qg0"]);
    assert_eq!(
        out,
        "LINK         PROPERTY           PERM VALUE      DEFAULT    POSSIBLE\n\
         qg0          maxbw              rw   10         --         --\n\
         qg0          priority           rw   medium     high       low,medium,high\n"
    );

    let cmd = ["set-linkprop", "-p", "cpus=0,2-3,protection=mac-nospoof,ip-nospoof", "-p", "allowed-ips=10.0.0.1,10.1.2.3/16", "qg0"];
    assert_eq!(env.run(&cmd), (0, String::new()));
    let (_, out) = env.run(&["show-linkprop", "-c", "-o", "property,value", "-p", "allowed-ips,protection,cpus,cpus-effective", "qg0"]);
    assert_eq!(out, "allowed-ips:10.0.0.1,10.1.0.0/16\nprotection:mac-nospoof,ip-nospoof\ncpus:0,2-3\ncpus-effective:0,2-3\n");
    let p = props::get("qg0");
    assert_eq!((p.maxbw, &p.cpus[..], p.priority), (Some(10_000_000), &[0usize, 2, 3][..], Priority::Medium));
    assert!(p.protection.mac_nospoof && p.protection.ip_nospoof && !p.protection.restricted);
    assert!(p.ip_allowed("10.1.99.1".parse().unwrap()) && !p.ip_allowed("10.2.0.1".parse().unwrap()));

    // Errors: the message, the usage, exit 1 and nothing changed.
    let usage = "usage: dladm set-linkprop [-t] -p prop=value[,...] link\n";
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec!["-p", "maxbw=1.1M", "qg0"],
            1,
            "dladm: cannot set link property 'maxbw' on 'qg0': invalid value '1.1M': the minimum is 1.2M\n".into(),
        ),
        (
            vec!["-p", "maxbw=20M,cpus=9", "qg0"],
            1,
            "dladm: cannot set link property 'cpus' on 'qg0': invalid value '9': CPU 9 does not exist (CPUs 0-3)\n".into(),
        ),
        (vec!["-p", "mtu=9000", "qg0"], 1, "dladm: cannot set link property 'mtu' on 'qg0': read-only property\n".into()),
        (
            vec!["-p", "cpus-effective=1", "qg0"],
            1,
            "dladm: cannot set link property 'cpus-effective' on 'qg0': read-only property\n".into(),
        ),
        (vec!["-p", "foo=1", "qg0"], 1, "dladm: cannot set link property 'foo' on 'qg0': unknown property\n".into()),
        (
            vec!["-p", "priority=urgent", "qg0"],
            1,
            "dladm: cannot set link property 'priority' on 'qg0': invalid value 'urgent': expected low, medium or high\n".into(),
        ),
        (
            vec!["-p", "protection=mac-nospoof,nope", "qg0"],
            1,
            "dladm: cannot set link property 'protection' on 'qg0': invalid value 'mac-nospoof,nope': 'nope' is not one of mac-nospoof, ip-nospoof, restricted, --\n".into(),
        ),
        (
            vec!["-p", "allowed-ips=10.0.0.256", "qg0"],
            1,
            "dladm: cannot set link property 'allowed-ips' on 'qg0': invalid value '10.0.0.256': '10.0.0.256' is not an IPv4 address or address/prefix\n".into(),
        ),
        (
            vec!["-p", "maxbw=", "qg0"],
            1,
            "dladm: cannot set link property 'maxbw' on 'qg0': invalid value '': a value is required (reset-linkprop restores the default)\n".into(),
        ),
        (vec!["qg0"], 2, "dladm: -p prop=value is required\n".into()),
        (vec!["-p", "maxbw=20M"], 2, "dladm: missing link name\n".into()),
        (vec!["-p", "maxbw=20M", "nosuch0"], 1, "dladm: link 'nosuch0' is not valid: object not found\n".into()),
        (vec!["-p", "maxbw=20M", "bad!"], 1, "dladm: invalid link name 'bad!'\n".into()),
    ];
    let before = env.run(&["show-linkprop", "qg0"]).1;
    let hooks_before = seen.lock().unwrap().len();
    for (args, status, msg) in cases {
        let mut argv = vec!["set-linkprop"];
        argv.extend_from_slice(&args);
        let (st, out) = env.run(&argv);
        assert_eq!((st, out.as_str()), (status, format!("{msg}{usage}").as_str()), "dladm {argv:?}");
        assert_eq!(env.run(&["show-linkprop", "qg0"]).1, before, "dladm {argv:?} changed something");
    }
    assert_eq!(seen.lock().unwrap().len(), hooks_before, "no notification for refused changes");

    assert_eq!(env.run(&["set-linkprop", "-p", "maxbw=--", "qg0"]).0, 0);
    assert_eq!(props::get("qg0").maxbw, None);
    assert_eq!(env.run(&["set-linkprop", "-p", "maxbw=1200K", "qg0"]).0, 0);
    assert_eq!(env.run(&["show-linkprop", "-c", "-o", "value", "-p", "maxbw", "qg0"]).1, "1.200\n");
    assert_eq!(env.run(&["reset-linkprop", "-p", "priority,maxbw", "qg0"]), (0, String::new()));
    let p = props::get("qg0");
    assert_eq!((p.priority, p.maxbw, p.cpus.len()), (Priority::High, None, 3));
    let (st, out) = env.run(&["reset-linkprop", "-p", "mtu", "qg0"]);
    assert_eq!((st, out.lines().next()), (1, Some("dladm: cannot reset link property 'mtu' on 'qg0': read-only property")));
    let (st, out) = env.run(&["reset-linkprop", "-p", "maxbw=1", "qg0"]);
    assert_eq!((st, out.lines().next()), (2, Some("dladm: invalid property list 'maxbw=1'")));
    assert_eq!(env.run(&["reset-linkprop", "qg0"]), (0, String::new()));
    assert_eq!(props::get("qg0"), LinkProps::default());
    assert_eq!(seen.lock().unwrap().last().map(|(n, p)| (n.as_str(), p.clone())), Some(("qg0", LinkProps::default())));
    let (st, out) = env.run(&["show-linkprop", "-p", "bogus", "qg0"]);
    assert_eq!((st, out.lines().next()), (1, Some("dladm: unknown property 'bogus'")));
    let (st, out) = env.run(&["show-linkprop", "-c", "qg0"]);
    assert_eq!((st, out.lines().next()), (2, Some("dladm: -c requires -o")));

    // The physical link: rings up to its count.
    assert_eq!(env.run(&["set-linkprop", "-p", "rxrings=2,txrings=hw", l]).0, 0);
    let (_, out) = env.run(&["show-linkprop", "-c", "-o", "property,value,possible", "-p", "rxrings,txrings,txrings-effective", l]);
    assert_eq!(out, "rxrings:2:sw,hw,1-2\ntxrings:hw:sw,hw,1-2\ntxrings-effective:2:--\n");
    let (st, out) = env.run(&["set-linkprop", "-p", "rxrings=3", l]);
    assert_eq!(
        (st, out.lines().next()),
        (1, Some(format!("dladm: cannot set link property 'rxrings' on '{l}': invalid value '3': the ring count must be 1-2").as_str()))
    );

    // Deleting the link forgets its properties.
    assert_eq!(env.run(&["set-linkprop", "-p", "priority=low", "qg0"]).0, 0);
    assert_eq!(env.run(&["delete-vnic", "qg0"]).0, 0);
    assert_eq!(props::get("qg0"), LinkProps::default());
}

#[test]
fn etherstubs_have_no_settable_properties() {
    let env = DlEnv::new(&[], "qh");
    assert_eq!(env.run(&["create-etherstub", "qhstub0"]).0, 0);
    assert_eq!(env.run(&["show-linkprop", "-c", "-o", "link,property,perm,value", "qhstub0"]).1, "qhstub0:mtu:r-:1500\n");
    let (st, out) = env.run(&["set-linkprop", "-p", "maxbw=10M", "qhstub0"]);
    assert_eq!(
        (st, out.lines().next()),
        (1, Some("dladm: cannot set link property 'maxbw' on 'qhstub0': not supported on etherstub links"))
    );
    assert_eq!(props::get("qhstub0"), LinkProps::default());
    assert_eq!(env.run(&["delete-etherstub", "qhstub0"]).0, 0);
}

#[test]
fn dladm_help_knows_every_subcommand() {
    let env = DlEnv::new(&[], "qi");
    for sub in [
        "create-vnic",
        "delete-vnic",
        "show-vnic",
        "create-etherstub",
        "delete-etherstub",
        "show-etherstub",
        "set-linkprop",
        "reset-linkprop",
        "show-linkprop",
    ] {
        let (st, out) = env.run(&["help", sub]);
        assert_eq!(st, 0);
        assert!(out.starts_with(&format!("usage: dladm {sub} ")), "{out}");
    }
}

#[test]
fn a_vnic_held_back_by_a_blocked_tx_ring_shows_blkcnt_and_ublkcnt() {
    let (nic, mac) = phys_link(1, 1);
    let env = DlEnv::new(std::slice::from_ref(&mac), "qb");
    assert_eq!(env.run(&["create-vnic", "-l", mac.link(), "qb0"]), (0, String::new()));
    let v = vnic("qb0");
    nic.set_tx_full(0);
    for _ in 0..crate::mac::TX_BLOCK {
        send(&v, &frame_to([0x52, 0x54, 0, 0, 0, 9], 64));
    }
    assert!(!v.tx_ready(), "the ring's backlog reached TX_BLOCK");
    nic.resume_tx(0);
    assert!(v.tx_ready());
    let links = [dl("qb0")];
    let (st, out) = dlstat(&["show-link", "-t", "-p", "-o", "link,id,opkts,blkcnt,ublkcnt"], &links);
    assert_eq!(st, 0);
    assert_eq!(out, format!("qb0:sw:{}:1:1\nqb0:local:0::\n", crate::mac::TX_BLOCK));
    assert_eq!(env.run(&["delete-vnic", "qb0"]), (0, String::new()));
}
