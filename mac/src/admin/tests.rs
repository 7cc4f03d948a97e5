//! Tests of the admin commands over the fake NIC. Link names come from the
//! global registry shared with parallel tests, so expected lines pad the
//! actual name (`{link:<12}`) and spell out the rest literally.

use std::boxed::Box;
use std::cell::{Cell, RefCell};
use std::format;
use std::string::String;
use std::sync::Arc;
use std::vec;
use std::vec::Vec;

use core::sync::atomic::Ordering;

use super::getopt::{OptError, getopt};
use super::table::{self, Field, FieldError, Table};
use super::units::{Unit, format_count};
use super::{AdminEnv, DladmEnv, dladm, dlstat, valid_link_name};
use crate::dma::DmaAllocator;
use crate::dma::host::HeapDma;
use crate::fake::{FakeNic, fake_info};
use crate::link::{self, Datalink};
use crate::mac::Mac;
use crate::mblk::MblkChain;
use crate::provider::{Duplex, GroupInfo, LinkState};

pub(super) fn link(rx: usize, tx: usize) -> (Arc<FakeNic>, Arc<Mac>) {
    let nic = FakeNic::new(rx, tx);
    let mac = nic.register().unwrap();
    mac.start().unwrap();
    (nic, mac)
}

/// What `dladm` sees in a test: the physical links given, and the VNICs
/// and etherstubs whose names start with `prefix` (the registries are
/// shared by the tests running in parallel).
pub(super) struct DlEnv {
    phys: Vec<Arc<Mac>>,
    prefix: &'static str,
    pub(super) cpus: usize,
    entropy: Cell<u64>,
}

impl DlEnv {
    pub(super) fn new(phys: &[Arc<Mac>], prefix: &'static str) -> DlEnv {
        DlEnv { phys: phys.to_vec(), prefix, cpus: 4, entropy: Cell::new(0x1234_5678) }
    }

    pub(super) fn run(&self, args: &[&str]) -> (i32, String) {
        let mut argv = vec!["dladm"];
        argv.extend_from_slice(args);
        let mut out = String::new();
        let status = dladm(&argv, self, &mut out);
        (status, out)
    }
}

impl DladmEnv for DlEnv {
    fn datalinks(&self) -> Vec<Datalink> {
        let mut v: Vec<Datalink> = self.phys.iter().cloned().map(Datalink::Phys).collect();
        if !self.prefix.is_empty() {
            v.extend(
                link::datalinks()
                    .into_iter()
                    .filter(|l| !matches!(l, Datalink::Phys(_)) && l.name().starts_with(self.prefix)),
            );
        }
        v
    }
    fn entropy(&self) -> u64 {
        let e = self.entropy.get();
        self.entropy.set(e.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        e
    }
    fn cpu_count(&self) -> usize {
        self.cpus
    }
    fn dma(&self) -> Arc<dyn DmaAllocator> {
        Arc::new(HeapDma::default())
    }
}

fn run_dladm(args: &[&str], links: &[Arc<Mac>]) -> (i32, String) {
    DlEnv::new(links, "").run(args)
}

/// An environment whose clock is a counter: `hook(elapsed_ms)` runs at each
/// sleep, and the command is interrupted once `stop_ms` have passed.
pub(super) struct Env {
    elapsed: Cell<u64>,
    stop_ms: u64,
    hook: RefCell<Box<dyn FnMut(u64)>>,
}

impl Env {
    fn new(stop_ms: u64, hook: impl FnMut(u64) + 'static) -> Env {
        Env { elapsed: Cell::new(0), stop_ms, hook: RefCell::new(Box::new(hook)) }
    }
    pub(super) fn once() -> Env {
        Env::new(0, |_| panic!("no sleeping without -i"))
    }
}

impl AdminEnv for Env {
    fn sleep_ms(&self, ms: u64) {
        self.elapsed.set(self.elapsed.get() + ms);
        (self.hook.borrow_mut())(self.elapsed.get());
    }
    fn interrupted(&self) -> bool {
        self.elapsed.get() >= self.stop_ms
    }
}

fn run_dlstat(args: &[&str], links: &[Arc<Mac>]) -> (i32, String) {
    run_dlstat_env(args, links, &Env::once())
}

fn run_dlstat_env(args: &[&str], links: &[Arc<Mac>], env: &Env) -> (i32, String) {
    let links: Vec<Datalink> = links.iter().cloned().map(Datalink::Phys).collect();
    run_dlstat_links(args, &links, env)
}

pub(super) fn run_dlstat_links(args: &[&str], links: &[Datalink], env: &Env) -> (i32, String) {
    let mut argv = vec!["dlstat"];
    argv.extend_from_slice(args);
    let mut out = String::new();
    let status = dlstat(&argv, links, &mut out, env);
    (status, out)
}

fn set_ring(nic: &FakeNic, rx: bool, ring: usize, packets: u64, bytes: u64) {
    let s = if rx { nic.rx_stats(ring) } else { nic.tx_stats(ring) }.unwrap();
    s.packets.store(packets, Ordering::Relaxed);
    s.bytes.store(bytes, Ordering::Relaxed);
}

const DLADM_FULL_USAGE: &str = "usage: dladm show-link [-s] [-p] [-o field[,...]] [link]\n       \
    dladm show-phys [-H] [-p] [-o field[,...]] [link]\n       \
    dladm create-vnic [-t] -l link [-m auto|random|factory|MAC] [-v vid] [-p prop=value[,...]] vnic\n       \
    dladm delete-vnic [-t] vnic\n       \
    dladm show-vnic [-l link] [-p] [-o field[,...]] [vnic]\n       \
    dladm create-etherstub [-t] etherstub\n       \
    dladm delete-etherstub [-t] etherstub\n       \
    dladm show-etherstub [-p] [-o field[,...]] [etherstub]\n       \
    dladm set-linkprop [-t] -p prop=value[,...] link\n       \
    dladm reset-linkprop [-t] [-p prop[,...]] link\n       \
    dladm show-linkprop [-c] [-o field[,...]] [-p prop[,...]] [link]\n       \
    dladm help [subcommand]\n";

// ---- dladm show-phys ----

#[test]
fn show_phys_columns_are_exact() {
    let (nic, mac) = link(4, 4);
    nic.set_speed(1000);
    let (st, out) = run_dladm(&["show-phys"], std::slice::from_ref(&mac));
    assert_eq!(st, 0);
    let l = mac.link();
    let d = mac.device();
    assert!(d.starts_with("vioif"));
    assert_eq!(
        out,
        format!(
            "LINK         MEDIA                STATE       SPEED DUPLEX    DEVICE\n\
             {l:<12} Ethernet             up           1000 full      {d}\n"
        )
    );
}

#[test]
fn show_phys_follows_link_state_speed_and_duplex() {
    let (nic, mac) = link(1, 1);
    nic.set_link(LinkState::Down);
    nic.set_speed(0);
    nic.set_duplex(Duplex::Half);
    let (_, out) = run_dladm(&["show-phys"], std::slice::from_ref(&mac));
    let row = out.lines().nth(1).unwrap();
    assert_eq!(row, format!("{:<12} Ethernet             down            0 half      {}", mac.link(), mac.device()));
    nic.set_link(LinkState::Up);
    nic.set_speed(10000);
    nic.set_duplex(Duplex::Unknown);
    let (_, out) = run_dladm(&["show-phys", mac.link()], std::slice::from_ref(&mac));
    let row = out.lines().nth(1).unwrap();
    assert_eq!(row, format!("{:<12} Ethernet             up          10000 unknown   {}", mac.link(), mac.device()));
}

#[test]
fn show_phys_picks_one_link_of_several() {
    let (_, a) = link(1, 1);
    let (_, b) = link(1, 1);
    let links = [a.clone(), b.clone()];
    let (st, out) = run_dladm(&["show-phys"], &links);
    assert_eq!(st, 0);
    assert_eq!(out.lines().count(), 3);
    let (st, out) = run_dladm(&["show-phys", "-p", "-o", "link"], &links);
    assert_eq!(st, 0);
    assert_eq!(out, format!("{}\n{}\n", a.link(), b.link()));
    // Operand after options or before them.
    for args in [vec!["show-phys", "-p", "-o", "link", b.link()], vec!["show-phys", b.link(), "-po", "link"]] {
        let (st, out) = run_dladm(&args, &links);
        assert_eq!((st, out), (0, format!("{}\n", b.link())));
    }
}

#[test]
fn show_phys_parseable_and_field_selection() {
    let (nic, mac) = link(2, 2);
    nic.set_speed(1000);
    let links = [mac.clone()];
    let (st, out) = run_dladm(&["show-phys", "-p", "-o", "link,state,speed,duplex,device,media"], &links);
    assert_eq!(st, 0);
    assert_eq!(out, format!("{}:up:1000:full:{}:Ethernet\n", mac.link(), mac.device()));
    // Names are case-insensitive; the order is the one asked for.
    let (_, out) = run_dladm(&["show-phys", "-o", "DEVICE,Link"], &links);
    assert_eq!(out, format!("DEVICE       LINK\n{:<12} {}\n", mac.device(), mac.link()));
    // -o all: every field.
    let (_, all) = run_dladm(&["show-phys", "-o", "all"], &links);
    let (_, dflt) = run_dladm(&["show-phys"], &links);
    assert_eq!(all, dflt);
}

#[test]
fn show_phys_h_lists_ring_groups_and_clients() {
    let (_, mac) = link(4, 4);
    let links = [mac.clone()];
    let l = mac.link();
    let (st, out) = run_dladm(&["show-phys", "-H"], &links);
    assert_eq!(st, 0);
    // The primary client is in the default group (Mac::group_clients).
    assert_eq!(
        out,
        format!(
            "LINK         RINGTYPE RINGS                CLIENTS\n\
             {l:<12} RX       0-3                  {l}\n\
             {l:<12} TX       0-3                  {l}\n"
        )
    );
    mac.set_rx(Some(Arc::new(|_c: MblkChain| {})));
    let (_, out) = run_dladm(&["show-phys", "-H", "-p", "-o", "link,ringtype,rings,clients"], &links);
    assert_eq!(out, format!("{l}:RX:0-3:{l}\n{l}:TX:0-3:{l}\n"));

    // Several groups, rings not contiguous.
    let mut info = fake_info(4, 2);
    info.rx_groups = vec![GroupInfo { rings: vec![0, 2], unicast_slots: 1 }, GroupInfo { rings: vec![1, 3], unicast_slots: 1 }];
    info.tx_groups = vec![GroupInfo { rings: vec![0, 1], unicast_slots: 0 }, GroupInfo { rings: vec![], unicast_slots: 0 }];
    let m2 = FakeNic::with_info(info).register().unwrap();
    let l2 = m2.link();
    m2.set_rx(Some(Arc::new(|_c: MblkChain| {})));
    let (_, out) = run_dladm(&["show-phys", "-H", "-p", "-o", "ringtype,rings,clients"], std::slice::from_ref(&m2));
    assert_eq!(out, format!("RX:0,2:{l2}\nRX:1,3:--\nTX:0-1:{l2}\nTX:--:--\n"));
}

// ---- dladm show-link ----

#[test]
fn show_link_columns_are_exact() {
    let (_, mac) = link(1, 1);
    let (st, out) = run_dladm(&["show-link"], std::slice::from_ref(&mac));
    assert_eq!(st, 0);
    assert_eq!(
        out,
        format!(
            "LINK        CLASS        MTU STATE    BRIDGE     OVER\n\
             {:<11} phys        1500 up       --         --\n",
            mac.link()
        )
    );
    let (_, out) = run_dladm(&["show-link", "-p", "-o", "link,class,mtu,state,bridge,over"], std::slice::from_ref(&mac));
    assert_eq!(out, format!("{}:phys:1500:up:--:--\n", mac.link()));
}

#[test]
fn show_link_s_sums_rings_and_keeps_drops_out_of_errors() {
    let (nic, mac) = link(2, 2);
    set_ring(&nic, true, 0, 10, 1000);
    set_ring(&nic, true, 1, 5, 600);
    set_ring(&nic, false, 0, 7, 700);
    set_ring(&nic, false, 1, 1, 12_345_678);
    nic.rx_stats(1).unwrap().errors.store(2, Ordering::Relaxed);
    nic.rx_stats(1).unwrap().drops.store(99, Ordering::Relaxed);
    nic.tx_stats(0).unwrap().errors.store(3, Ordering::Relaxed);
    let (st, out) = run_dladm(&["show-link", "-s"], std::slice::from_ref(&mac));
    assert_eq!(st, 0);
    assert_eq!(
        out,
        format!(
            "LINK            IPACKETS  RBYTES   IERRORS    OPACKETS      OBYTES OERRORS\n\
             {:<14}        15    1600         2           8    12346378       3\n",
            mac.link()
        )
    );
    let (_, out) = run_dladm(&["show-link", "-s", "-p", "-o", "ipackets,ierrors,oerrors"], std::slice::from_ref(&mac));
    assert_eq!(out, "15:2:3\n");
}

// ---- dladm errors and help ----

#[test]
fn dladm_errors_name_the_problem_and_print_usage() {
    let (_, mac) = link(1, 1);
    let links = [mac.clone()];
    let phys_usage = "usage: dladm show-phys [-H] [-p] [-o field[,...]] [link]\n";
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (vec!["show-phys", "-z"], 2, format!("dladm: illegal option -- z\n{phys_usage}")),
        (vec!["show-phys", "-o"], 2, format!("dladm: option requires an argument -- o\n{phys_usage}")),
        (vec!["show-phys", "-p"], 2, format!("dladm: -p requires -o\n{phys_usage}")),
        (vec!["show-phys", "-p", "-o", "all"], 2, format!("dladm: \"-o all\" is invalid with -p\n{phys_usage}")),
        (vec!["show-phys", "-H", "-H"], 2, format!("dladm: the option -H cannot be specified more than once\n{phys_usage}")),
        (vec!["show-phys", "net0", "net1"], 2, format!("dladm: unexpected operand 'net1'\n{phys_usage}")),
        (vec!["show-phys", "x!"], 1, format!("dladm: invalid link name 'x!'\n{phys_usage}")),
        (vec!["show-phys", "nosuch0"], 1, format!("dladm: link 'nosuch0' is not valid: object not found\n{phys_usage}")),
        (vec!["show-phys", "-o", "link,foo"], 1, format!("dladm: unknown output field: 'foo'\n{phys_usage}")),
        (vec!["show-phys", "-o", "foo,bar"], 1, format!("dladm: unknown output fields: 'foo' 'bar'\n{phys_usage}")),
        (vec!["show-phys", "-o", ","], 1, format!("dladm: no output fields specified\n{phys_usage}")),
        (
            vec!["show-link", "-x"],
            2,
            "dladm: illegal option -- x\nusage: dladm show-link [-s] [-p] [-o field[,...]] [link]\n".into(),
        ),
    ];
    for (args, status, expect) in cases {
        let (st, out) = run_dladm(&args, &links);
        assert_eq!((st, out.as_str()), (status, expect.as_str()), "dladm {args:?}");
    }
    let full = DLADM_FULL_USAGE;
    assert_eq!(run_dladm(&["frobnicate"], &links), (2, format!("dladm: unknown subcommand 'frobnicate'\n{full}")));
    assert_eq!(run_dladm(&[], &links), (2, format!("dladm: missing subcommand\n{full}")));
    assert_eq!(run_dladm(&["help"], &links), (0, full.into()));
    assert_eq!(run_dladm(&["help", "show-phys"], &links), (0, phys_usage.into()));
    assert_eq!(run_dladm(&["help", "nope"], &links), (2, format!("dladm: unknown subcommand 'nope'\n{full}")));
    // Nothing to show: no output, success.
    assert_eq!(run_dladm(&["show-phys"], &[]), (0, String::new()));
}

// ---- dlstat ----

#[test]
fn dlstat_scales_by_1000_with_two_decimals() {
    let (nic, mac) = link(2, 1);
    set_ring(&nic, true, 0, 1000, 456_780_000);
    set_ring(&nic, true, 1, 234, 1);
    set_ring(&nic, false, 0, 999, 2_500_000_000_000);
    let (st, out) = run_dlstat(&[], std::slice::from_ref(&mac));
    assert_eq!(st, 0);
    assert_eq!(
        out,
        format!(
            "LINK              IPKTS   RBYTES    OPKTS   OBYTES\n\
             {:<14}    1.23K  456.78M      999    2.50T\n",
            mac.link()
        )
    );
    // -u R: raw; -u K: fixed unit; -p: raw, no header.
    let (_, out) = run_dlstat(&["-u", "R", mac.link()], std::slice::from_ref(&mac));
    assert_eq!(out.lines().nth(1).unwrap(), format!("{:<14}     1234 456780001      999 2500000000000", mac.link()));
    let (_, out) = run_dlstat(&["-u", "K", "-o", "ipkts,opkts"], std::slice::from_ref(&mac));
    assert_eq!(out, "   IPKTS    OPKTS\n   1.23K    1.00K\n");
    let (_, out) = run_dlstat(&["-p", "-o", "link,ipkts,rbytes,opkts,obytes"], std::slice::from_ref(&mac));
    assert_eq!(out, format!("{}:1234:456780001:999:2500000000000\n", mac.link()));
}

#[test]
fn dlstat_show_phys_rows_per_ring() {
    let (nic, mac) = link(2, 2);
    set_ring(&nic, true, 0, 1500, 2_000_000);
    set_ring(&nic, true, 1, 12, 900);
    set_ring(&nic, false, 0, 3, 180);
    set_ring(&nic, false, 1, 4_000_000, 6_000_000_000);
    let l = mac.link();
    let links = [mac.clone()];
    let (st, out) = run_dlstat(&["show-phys", "-r"], &links);
    assert_eq!(st, 0);
    assert_eq!(
        out,
        format!(
            "LINK           TYPE INDEX    IPKTS   RBYTES\n\
             {l:<14} rx       0    1.50K    2.00M\n\
             {l:<14} rx       1       12      900\n"
        )
    );
    let (_, out) = run_dlstat(&["show-phys", "-t"], &links);
    assert_eq!(
        out,
        format!(
            "LINK           TYPE INDEX    OPKTS   OBYTES\n\
             {l:<14} tx       0        3      180\n\
             {l:<14} tx       1    4.00M    6.00G\n"
        )
    );
    let (_, out) = run_dlstat(&["show-phys"], &links);
    assert_eq!(
        out,
        format!(
            "LINK           TYPE INDEX     PKTS    BYTES\n\
             {l:<14} rx       0    1.50K    2.00M\n\
             {l:<14} rx       1       12      900\n\
             {l:<14} tx       0        3      180\n\
             {l:<14} tx       1    4.00M    6.00G\n"
        )
    );
    let (_, out) = run_dlstat(&["show-phys", "-r", "-p", "-o", "index,ipkts,rbytes", l], &links);
    assert_eq!(out, "0:1500:2000000\n1:12:900\n");
    let (_, out) = run_dlstat(&["show-phys", "-t", "-u", "R", "-o", "type,index,obytes"], &links);
    assert_eq!(out, "TYPE INDEX     OBYTES\ntx       0        180\ntx       1 6000000000\n");
}

#[test]
fn dlstat_counts_real_traffic_through_the_mac() {
    let (nic, mac) = link(2, 1);
    mac.set_rx(Some(Arc::new(|_c: MblkChain| {})));
    for i in 0..3 {
        assert!(nic.inject(1, &crate::fake::tcp4_frame(i, 7, 100)));
    }
    assert_eq!(mac.rx_poll_step(1), crate::PollStep::Inline);
    while mac.rx_worker_step(1) {}
    assert_eq!(mac.rx_rearm(1), crate::PollStep::Idle);
    let mut m = mac.alloc_tx(60).unwrap();
    m.data_mut().copy_from_slice(&crate::fake::tcp4_frame(1, 2, 60));
    mac.tx(m);
    let (_, out) = run_dlstat(&["show-phys", "-r", "-p", "-o", "index,ipkts,rbytes"], std::slice::from_ref(&mac));
    assert_eq!(out, "0:0:0\n1:3:300\n");
    let (_, out) = run_dlstat(&["-p", "-o", "ipkts,rbytes,opkts,obytes"], std::slice::from_ref(&mac));
    assert_eq!(out, "3:300:1:60\n");
}

#[test]
fn dlstat_show_link_reports_lanes_fanout_and_tx() {
    let (nic, mac) = link(2, 2);
    mac.set_rx(Some(Arc::new(|_c: MblkChain| {})));
    for i in 0..3 {
        assert!(nic.inject(1, &crate::fake::tcp4_frame(i, 7, 100)));
    }
    assert_eq!(mac.rx_poll_step(1), crate::PollStep::Inline);
    while mac.rx_worker_step(1) {}
    assert_eq!(mac.rx_rearm(1), crate::PollStep::Idle);
    let links = std::slice::from_ref(&mac);
    let (st, out) = run_dlstat(&["show-link", "-r", "-p", "-o", "type,id,index,ipkts,rbytes,intrs,polls,sdrops"], links);
    assert_eq!((st, out.as_str()), (0, "rx:hw:0:0:0:0:0:0\nrx:hw:1:3:300:3:0:0\n"));
    let (st, out) = run_dlstat(&["show-link", "-r"], links);
    assert_eq!(st, 0);
    let header = out.lines().next().unwrap();
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(cols, ["LINK", "TYPE", "ID", "INDEX", "IPKTS", "RBYTES", "INTRS", "POLLS", "CH<10", "CH10-50", "CH>50"]);
    let (_, out) = run_dlstat(&["show-link", "-r", "-F", "-p", "-o", "index,fout,ipkts"], links);
    assert!(out.contains("1:tcp0:3\n"), "{out}");
    assert!(out.contains("0:udp0:0\n"), "{out}");
    let (_, out) = run_dlstat(&["show-link", "-t", "-p", "-o", "type,index,opkts,blkcnt,ublkcnt"], links);
    assert_eq!(out, "tx:0:0:0:0\ntx:1:0:0:0\n");
    let (st, out) = run_dlstat(&["show-link", "-a"], links);
    assert_eq!(st, 0);
    assert!(out.contains("rx hw 1\n    intrs          3\n"), "{out}");
    assert!(out.contains("poll_off"), "{out}");
    let (_, out) = run_dlstat(&["-r", "-p", "-o", "ipkts,intrs,polls"], links);
    assert_eq!(out, "3:3:0\n");
}

#[test]
fn dlstat_reset_counts_from_zero_without_touching_the_counters() {
    let (nic, mac) = link(1, 1);
    mac.set_rx(Some(Arc::new(|_c: MblkChain| {})));
    let inject = |n: u16| {
        for i in 0..n {
            assert!(nic.inject(0, &crate::fake::tcp4_frame(i, 7, 100)));
        }
        assert_eq!(mac.rx_poll_step(0), crate::PollStep::Inline);
        while mac.rx_worker_step(0) {}
        assert_eq!(mac.rx_rearm(0), crate::PollStep::Idle);
    };
    inject(3);
    let links = [mac.clone()];
    let name = String::from(mac.link());
    assert_eq!(run_dlstat(&["-p", "-o", "ipkts,rbytes", &name], &links).1, "3:300\n");
    assert_eq!(run_dlstat(&["reset", &name], &links), (0, String::new()));
    assert_eq!(run_dlstat(&["-p", "-o", "ipkts,rbytes", &name], &links).1, "0:0\n");
    assert_eq!(run_dlstat(&["show-link", "-r", "-p", "-o", "ipkts,intrs", &name], &links).1, "0:0\n");
    inject(2);
    assert_eq!(run_dlstat(&["-p", "-o", "ipkts,rbytes", &name], &links).1, "2:200\n");
    assert_eq!(run_dlstat(&["show-phys", "-r", "-p", "-o", "ipkts", &name], &links).1, "2\n");
    // The driver's own counters were not touched.
    assert_eq!(mac.rx_ring_counters()[0].packets, 5);
}

#[test]
fn dlstat_interval_shows_cumulative_then_changes_until_interrupted() {
    let (nic, mac) = link(1, 1);
    set_ring(&nic, true, 0, 5000, 100);
    let nic2 = nic.clone();
    // +10 packets during each second; interrupted after 2.5 s.
    let env = Env::new(2500, move |ms| {
        if ms % 1000 == 500 {
            nic2.rx_stats(0).unwrap().packets.fetch_add(10, Ordering::Relaxed);
        }
    });
    let (st, out) = run_dlstat_env(&["-i", "1", "-o", "link,ipkts"], std::slice::from_ref(&mac), &env);
    assert_eq!(st, 0);
    let l = mac.link();
    assert_eq!(out, format!("LINK              IPKTS\n{l:<14}    5.00K\n{l:<14}       10\n{l:<14}       10\n"));
    assert_eq!(env.elapsed.get(), 2500);

    // A counter that went backwards (reset) counts from zero.
    let (nic, mac) = link(1, 1);
    set_ring(&nic, true, 0, 50, 0);
    let nic2 = nic.clone();
    let env = Env::new(1500, move |ms| {
        if ms == 500 {
            nic2.rx_stats(0).unwrap().packets.store(7, Ordering::Relaxed);
        }
    });
    let (_, out) = run_dlstat_env(&["-i1", "-p", "-o", "ipkts"], std::slice::from_ref(&mac), &env);
    assert_eq!(out, "50\n7\n");
}

#[test]
fn dlstat_interval_reprints_the_header_only_when_columns_widen() {
    let (nic, mac) = link(1, 1);
    let nic2 = nic.clone();
    let env = Env::new(2500, move |ms| {
        if ms == 500 {
            nic2.rx_stats(0).unwrap().packets.store(123_456_789_012, Ordering::Relaxed);
        }
    });
    let (_, out) = run_dlstat_env(&["-i", "1", "-u", "R", "-o", "ipkts"], std::slice::from_ref(&mac), &env);
    assert_eq!(out, "   IPKTS\n       0\n       IPKTS\n123456789012\n           0\n");
}

#[test]
fn dlstat_errors_and_help() {
    let (_, mac) = link(1, 1);
    let links = [mac.clone()];
    let phys = "usage: dlstat show-phys [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n";
    let total = "usage: dlstat [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n";
    let link = "usage: dlstat show-link [-r [-F] | -t] [-a] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n";
    let full = "usage: dlstat [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n       \
                dlstat show-phys [-r | -t] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n       \
                dlstat show-link [-r [-F] | -t] [-a] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-i interval] [link]\n       \
                dlstat show-link -h [-F gnuplot] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [link]\n       \
                dlstat reset [link]\n       \
                dlstat help [subcommand]\n";
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (vec!["show-phys", "-r", "-t"], 2, format!("dlstat: the options -t and -r are not compatible\n{phys}")),
        (vec!["show-phys", "-r", "-r"], 2, format!("dlstat: the option -r cannot be specified more than once\n{phys}")),
        (
            vec!["show-phys", "-p", "-o", "index", "-u", "R"],
            2,
            format!("dlstat: the options -u and -p are not compatible\n{phys}"),
        ),
        (vec!["show-phys", "-p"], 2, format!("dlstat: -p requires -o\n{phys}")),
        (vec!["show-phys", "-q"], 2, format!("dlstat: illegal option -- q\n{phys}")),
        (vec!["show-phys", "-i"], 2, format!("dlstat: option requires an argument -- i\n{phys}")),
        (vec!["show-phys", "-i", "0"], 1, format!("dlstat: invalid interval value '0'\n{phys}")),
        (vec!["show-phys", "-i", "x"], 1, format!("dlstat: invalid interval value 'x'\n{phys}")),
        (vec!["show-phys", "-i", "+1"], 1, format!("dlstat: invalid interval value '+1'\n{phys}")),
        (vec!["show-phys", "-u", "X"], 1, format!("dlstat: invalid unit value 'X', unit must be R|K|M|G|T|P\n{phys}")),
        (vec!["show-phys", "-r", "-o", "obytes"], 1, format!("dlstat: unknown output field: 'obytes'\n{phys}")),
        (vec!["show-phys", "nosuch0"], 1, format!("dlstat: link 'nosuch0' is not valid: object not found\n{phys}")),
        (vec!["show-phys", "bad-name"], 1, format!("dlstat: invalid link name 'bad-name'\n{phys}")),
        (vec!["nosuch0"], 1, format!("dlstat: link 'nosuch0' is not valid: object not found\n{total}")),
        (vec!["-z"], 2, format!("dlstat: illegal option -- z\n{total}")),
        (vec!["-r", "-t"], 2, format!("dlstat: the options -t and -r are not compatible\n{total}")),
        (vec!["reset", "nosuch0"], 1, "dlstat: link 'nosuch0' is not valid: object not found\nusage: dlstat reset [link]\n".into()),
        (vec!["reset", "-x"], 2, "dlstat: illegal option -- x\nusage: dlstat reset [link]\n".into()),
        (vec!["show-link", "-F"], 2, format!("dlstat: the option -F requires -r\n{link}")),
        (vec!["show-link", "-r", "-t"], 2, format!("dlstat: the options -t and -r are not compatible\n{link}")),
        (vec!["show-link", "-a", "-r"], 2, format!("dlstat: the option -a cannot be combined with -o, -r or -t\n{link}")),
        (vec!["show-link", "-r", "-o", "obytes"], 1, format!("dlstat: unknown output field: 'obytes'\n{link}")),
        (vec!["show-link", "-r", "nosuch0"], 1, format!("dlstat: link 'nosuch0' is not valid: object not found\n{link}")),
        (vec!["show-flows"], 2, format!("dlstat: unknown subcommand 'show-flows'\n{full}")),
        (vec!["help"], 0, full.into()),
        (vec!["help", "show-phys"], 0, phys.into()),
        (vec!["help", "bogus"], 2, format!("dlstat: unknown subcommand 'bogus'\n{full}")),
    ];
    for (args, status, expect) in cases {
        let (st, out) = run_dlstat(&args, &links);
        assert_eq!((st, out.as_str()), (status, expect.as_str()), "dlstat {args:?}");
    }
    assert_eq!(run_dlstat(&["show-phys"], &[]), (0, String::new()));
}

// ---- building blocks ----

#[test]
fn units_match_illumos_scaling() {
    let a = |n| format_count(n, Unit::Auto);
    assert_eq!(a(0), "0");
    assert_eq!(a(999), "999");
    assert_eq!(a(1000), "1.00K");
    assert_eq!(a(1234), "1.23K");
    assert_eq!(a(1235), "1.24K");
    assert_eq!(a(999_994), "999.99K");
    assert_eq!(a(999_995), "1.00M");
    assert_eq!(a(456_780_000), "456.78M");
    assert_eq!(a(12_345_678_901), "12.35G");
    assert_eq!(a(1_000_000_000_000_000), "1.00P");
    assert_eq!(a(u64::MAX), "18446.74P");
    assert_eq!(format_count(500, Unit::Fixed(1)), "0.50K");
    assert_eq!(format_count(1_234_567, Unit::Fixed(2)), "1.23M");
    assert_eq!(format_count(u64::MAX, Unit::Fixed(1)), "18446744073709551.62K");
    assert_eq!(format_count(u64::MAX, Unit::Raw), "18446744073709551615");
    assert_eq!(Unit::parse("T"), Some(Unit::Fixed(4)));
    assert_eq!(Unit::parse("k"), None);
}

#[test]
fn getopt_groups_attaches_and_permutes() {
    let o = getopt(&["-pH", "-olink,state", "net0", "-u", "R", "--", "-x"], "Hpo:u:").unwrap();
    assert_eq!(o.opts, vec![('p', None), ('H', None), ('o', Some("link,state")), ('u', Some("R"))]);
    assert_eq!(o.operands, vec!["net0", "-x"]);
    assert_eq!(o.value('o'), Some("link,state"));
    assert!(o.has('H') && !o.has('s'));
    assert_eq!(getopt(&["-"], "p").unwrap().operands, vec!["-"]);
    assert_eq!(getopt(&["-pz"], "p"), Err(OptError::Illegal('z')));
    assert_eq!(getopt(&["-:"], "o:"), Err(OptError::Illegal(':')));
    assert_eq!(getopt(&["-é"], "p"), Err(OptError::Illegal('é')));
    assert_eq!(getopt(&["-p", "-o"], "po:"), Err(OptError::MissingArgument('o')));
    let o = getopt(&["-o", "a", "-o", "b", "-p", "-p"], "po:").unwrap();
    assert_eq!(o.value('o'), Some("b"));
    assert_eq!(o.duplicate("o"), Some('p'));
    assert_eq!(o.duplicate("op"), None);
}

#[test]
fn link_names_follow_illumos_rules() {
    for good in ["net0", "net1", "vioif12", "e1000g0", "my_vnic.3", "a0", "stub10"] {
        assert!(valid_link_name(good), "{good}");
    }
    let long = "a".repeat(31) + "0";
    for bad in ["", "net", "0net0", "net01", "x!", "bad-name0", "net 0", long.as_str(), "nét0"] {
        assert!(!valid_link_name(bad), "{bad}");
    }
    assert!(valid_link_name(&("a".repeat(30) + "0")));
}

#[test]
fn ring_ranges() {
    assert_eq!(table::ranges(&[0, 1, 2, 3]), "0-3");
    assert_eq!(table::ranges(&[0, 2]), "0,2");
    assert_eq!(table::ranges(&[4, 0, 1]), "0-1,4");
    assert_eq!(table::ranges(&[5]), "5");
    assert_eq!(table::ranges(&[]), "--");
    assert_eq!(table::ranges(&[1, 1, 2]), "1-2");
    assert_eq!(table::ranges(&[usize::MAX - 1, usize::MAX]), format!("{}-{}", usize::MAX - 1, usize::MAX));
}

#[test]
fn table_aligns_escapes_and_widens() {
    const T: &[Field] = &[Field::left("NAME", 4), Field::right("N", 3), Field::left("NOTE", 2).extra()];
    let rows = vec![
        vec![String::from("a:b\\c"), String::from("7"), String::from("x:y")],
        vec![String::from("longername"), String::from("12345"), String::new()],
    ];
    let mut out = String::new();
    Table::new(T, table::select(T, None).unwrap(), false).print(&mut out, &rows).unwrap();
    assert_eq!(out, "NAME           N\na:b\\c          7\nlongername 12345\n");
    let mut out = String::new();
    Table::new(T, table::select(T, Some("all")).unwrap(), false).print(&mut out, &rows).unwrap();
    assert_eq!(out, "NAME           N NOTE\na:b\\c          7 x:y\nlongername 12345 --\n");
    let mut out = String::new();
    Table::new(T, table::select(T, Some("name,note")).unwrap(), true).print(&mut out, &rows).unwrap();
    assert_eq!(out, "a\\:b\\\\c:x\\:y\nlongername:\n");
    // One column: nothing to separate, nothing escaped.
    let mut out = String::new();
    Table::new(T, table::select(T, Some("NAME")).unwrap(), true).print(&mut out, &rows).unwrap();
    assert_eq!(out, "a:b\\c\nlongername\n");
    assert_eq!(table::select(T, Some("name,bogus,x")), Err(FieldError::Unknown(vec!["bogus".into(), "x".into()])));
    assert_eq!(table::select(T, Some(",,")), Err(FieldError::Empty));
    // Short rows do not panic.
    let mut out = String::new();
    Table::new(T, vec![0, 1, 2], false).print(&mut out, &[vec![String::from("z")]]).unwrap();
    assert_eq!(out, "NAME   N NOTE\nz     -- --\n");
}
