//! IP interfaces: an IP stack instance (smoltcp for now, behind
//! `netstack::IpStack`) on a MAC client — the primary client of a physical
//! link or a VNIC — and the kernel thread that runs it. Each instance has
//! its own addresses, routes and services.
//!
//! The stack thread transmits through the client (to another client of
//! the same switch, or the wire); the soft rings only queue received
//! packets into the stack (lock-free) and kick the thread.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arbalest_mac::Mblk;
use arbalest_mac::client::MacClient;
use arbalest_netstack::fireengine::instance::FeInstance;
use arbalest_netstack::{InstanceConfig, IpArg, IpInstance, IpStack, Link, NetError, StackKind};
use spin::Mutex;

use crate::sched::{self, WaitQueue};
use crate::time::clock;

/// The netstack `Link` over a MAC client.
struct ClientLink {
    client: Arc<MacClient>,
}

impl Link for ClientLink {
    fn name(&self) -> &str {
        self.client.name()
    }
    fn mac_addr(&self) -> [u8; 6] {
        self.client.addr()
    }
    fn mtu(&self) -> usize {
        self.client.mtu()
    }
    fn alloc_tx(&self, len: usize) -> Option<Mblk> {
        self.client.alloc_tx(len)
    }
    fn tx(&self, m: Mblk) {
        self.client.tx(m)
    }
    fn lso_tcp4_max(&self) -> Option<usize> {
        self.client.lso_tcp4_max()
    }
    fn link_up(&self) -> bool {
        self.client.link_state() == arbalest_mac::LinkState::Up
    }
    fn tx_ready(&self) -> bool {
        self.client.tx_ready()
    }
}

/// One IP interface and its thread.
pub struct IpIf {
    pub link: String,
    pub stack: Arc<dyn IpStack>,
    client: Arc<MacClient>,
    kick: AtomicBool,
    stop: AtomicBool,
    wq: WaitQueue,
    /// The instance's thread.
    thread: spin::Once<Arc<sched::Thread>>,
    /// Where the thread should run (link `cpus`), and where it started.
    cpu: AtomicUsize,
    home: AtomicUsize,
}

impl IpIf {
    /// Moves the instance's thread to `cpu` (`None`: back where it
    /// started). Returns the CPU it is asked to run on.
    pub fn place(&self, cpu: Option<usize>) -> usize {
        let to = cpu.unwrap_or_else(|| self.home.load(Ordering::Acquire));
        self.cpu.store(to, Ordering::Release);
        self.kick();
        to
    }

    /// The instance's thread (it runs at its link's `priority`).
    pub fn thread(&self) -> Option<Arc<sched::Thread>> {
        self.thread.get().cloned()
    }

    /// Asks the stack thread to run now (packets arrived, a command
    /// queued work, or a Tx ring resumed).
    pub fn kick(&self) {
        self.kick.store(true, Ordering::Release);
        self.wq.wake_all();
    }

    fn run(&self) {
        // Poll at least this often even when the stack asks for nothing
        // sooner (keeps services' listeners re-armed and ARP fresh).
        const MAX_WAIT_US: u64 = 100_000;
        while !self.stop.load(Ordering::Acquire) {
            super::lane::Lane::follow(&self.cpu);
            self.kick.store(false, Ordering::Release);
            let now = clock::now_ns() / 1000;
            let wait = self.stack.poll_us(now).unwrap_or(MAX_WAIT_US).min(MAX_WAIT_US);
            if wait == 0 || self.stack.rx_pending() {
                sched::yield_now();
                continue;
            }
            let deadline = (now + wait) * 1000;
            self.wq.wait_until_deadline(|| self.kick.load(Ordering::Acquire) || self.stop.load(Ordering::Acquire), deadline);
        }
    }
}

static IFS: Mutex<Vec<Arc<IpIf>>> = Mutex::new(Vec::new());

/// All IP interfaces.
pub fn interfaces() -> Vec<Arc<IpIf>> {
    crate::arch::without_interrupts(|| IFS.lock().clone())
}

/// Kicks the IP interfaces whose link sits on NIC `mac` (its Tx rings
/// were unblocked: held-back segments can go).
pub fn kick_users_of(mac: &arbalest_mac::Mac) {
    for i in interfaces() {
        if i.client.lower().and_then(|s| s.wire()).is_some_and(|m| core::ptr::eq(&*m, mac)) {
            i.kick();
        }
    }
}

/// The IP interface on `link`.
pub fn interface(link: &str) -> Option<Arc<IpIf>> {
    interfaces().into_iter().find(|i| i.link == link)
}

/// The system's default stack: kernel argument `stack=fireengine|smoltcp`
/// (FireEngine when absent or not understood).
pub fn default_stack() -> StackKind {
    static DEFAULT: spin::Once<StackKind> = spin::Once::new();
    *DEFAULT.call_once(|| match crate::kmain::cmdline().get("stack") {
        None => StackKind::default(),
        Some(v) => StackKind::parse(v).unwrap_or_else(|| {
            log::error!("stack={v}: not fireengine or smoltcp; using {}", StackKind::default());
            StackKind::default()
        }),
    })
}

/// Creates an IP interface on data link `link` (a physical link or a
/// VNIC) running `stack` (`None`: [`default_stack`]) and starts its thread.
pub fn create(link: &str, stack: Option<StackKind>) -> Result<Arc<IpIf>, NetError> {
    let client = arbalest_mac::link::datalink(link).and_then(|l| l.client()).ok_or(NetError::NoSuchInterface)?;
    if interface(link).is_some() {
        return Err(NetError::InterfaceExists);
    }
    let seed = crate::arch::cpu::rdtsc() ^ 0x5eed_a4ba_1e57;
    let link_if: Arc<dyn Link> = Arc::new(ClientLink { client: client.clone() });
    let stack: Arc<dyn IpStack> = match stack.unwrap_or_else(default_stack) {
        StackKind::Smoltcp => {
            let cfg = InstanceConfig { random_seed: seed, ..InstanceConfig::default() };
            Arc::new(IpInstance::new(link_if, cfg)?)
        }
        StackKind::FireEngine => Arc::new(FeInstance::new(link_if, super::fe::system(), seed)?),
    };
    let ipif = Arc::new(IpIf {
        link: String::from(link),
        stack,
        client: client.clone(),
        kick: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        wq: WaitQueue::new(),
        thread: spin::Once::new(),
        cpu: AtomicUsize::new(usize::MAX),
        home: AtomicUsize::new(usize::MAX),
    });
    let rx_if = ipif.clone();
    client.set_rx(Some(Arc::new(move |chain| {
        rx_if.stack.input_chain(chain);
        // smoltcp queues what it receives for the instance thread;
        // FireEngine has processed it inline already.
        if rx_if.stack.rx_pending() {
            rx_if.kick();
        }
    })));
    let t = ipif.clone();
    let name = alloc::format!("ip/{link}");
    let prio = super::linkprops::sched_priority(arbalest_mac::props::get(link).priority);
    match sched::spawn(&name, prio, None, move || t.run()) {
        Some(th) => {
            ipif.home.store(th.cpu(), Ordering::Release);
            let _ = ipif.cpu.compare_exchange(usize::MAX, th.cpu(), Ordering::AcqRel, Ordering::Acquire);
            ipif.thread.call_once(|| th);
        }
        None => {
            client.set_rx(None);
            return Err(NetError::NoBuffers);
        }
    }
    crate::arch::without_interrupts(|| IFS.lock().push(ipif.clone()));
    // A link with `cpus` set keeps its stack thread there too.
    let cpus = arbalest_mac::props::get(link).cpus;
    if let Some(&c) = cpus.first() {
        ipif.place(Some(c));
    }
    Ok(ipif)
}

/// Removes the IP interface on `link` (its thread ends, its MAC client
/// detaches).
pub fn delete(link: &str) -> Result<(), NetError> {
    let ipif = crate::arch::without_interrupts(|| {
        let mut ifs = IFS.lock();
        let pos = ifs.iter().position(|i| i.link == link)?;
        Some(ifs.remove(pos))
    })
    .ok_or(NetError::NoSuchInterface)?;
    ipif.client.set_rx(None);
    ipif.stop.store(true, Ordering::Release);
    ipif.kick();
    Ok(())
}

/// Applies the kernel argument `ip=ADDR/PREFIX[,gw=ADDR]` to the first link.
pub fn configure_from_cmdline(value: &str) {
    let arg = match IpArg::parse(value) {
        Ok(a) => a,
        Err(e) => {
            log::error!("ip={value}: {e}");
            return;
        }
    };
    let Some(mac) = arbalest_mac::mac::links().into_iter().next() else {
        log::error!("ip={value}: no network link");
        return;
    };
    let ipif = match interface(mac.link()) {
        Some(i) => i,
        None => match create(mac.link(), None) {
            Ok(i) => i,
            Err(e) => {
                log::error!("{}: cannot create IP interface: {e}", mac.link());
                return;
            }
        },
    };
    let name = alloc::format!("{}/v4", mac.link());
    if let Err(e) = ipif.stack.add_addr(&name, arg.addr) {
        log::error!("{name}: {e}");
    }
    if let Some(gw) = arg.gateway {
        if let Err(e) = ipif.stack.add_route(arbalest_netstack::Ipv4Net::DEFAULT, gw) {
            log::error!("default route via {gw}: {e}");
        }
    }
    log::info!("{name}: {} (gateway {})", arg.addr, arg.gateway.map(|g| alloc::format!("{g}")).unwrap_or_else(|| "none".into()));
    ipif.kick();
}
