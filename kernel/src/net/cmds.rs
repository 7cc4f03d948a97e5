//! Shell commands of the network: `scanpci`, `ndd`, `dladm`, `dlstat`,
//! `flowadm`, `flowstat` — thin wrappers over the host-tested
//! implementations in `drivers` and `mac`.

use alloc::string::String;

use alloc::sync::Arc;

use arbalest_drivers::hal::Hal;
use arbalest_mac::DmaAllocator;
use arbalest_mac::admin::{self, AdminEnv, DladmEnv};

use crate::shell::{Command, Ctx, ShellHost};

/// `dlstat -i` sleeps and stops on Ctrl-C through the shell's host.
struct Env<'a>(&'a dyn ShellHost);

impl AdminEnv for Env<'_> {
    fn sleep_ms(&self, ms: u64) {
        self.0.sleep_ms(ms)
    }
    fn interrupted(&self) -> bool {
        self.0.interrupted()
    }
}

/// What `dladm` needs: every data link (the default), entropy for random
/// VNIC addresses, the CPU count for `cpus`, DMA memory for etherstubs.
struct LinkEnv;

impl DladmEnv for LinkEnv {
    fn entropy(&self) -> u64 {
        let t = crate::arch::cpu::rdtsc();
        t ^ t.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn cpu_count(&self) -> usize {
        crate::hal::KernelHal.cpu_count()
    }
    fn dma(&self) -> Arc<dyn DmaAllocator> {
        crate::hal::KernelHal.dma()
    }
}

/// The network commands.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "scanpci",
        usage: "scanpci",
        summary: "list PCI functions: bus:dev.fn, vendor:device, class, driver bound",
        run: cmd_scanpci,
    },
    super::nicctl::COMMAND,
    Command {
        name: "ndd",
        usage: "ndd /dev/mac|/dev/ip|/dev/icmp|/dev/udp|/dev/tcp [name]\nndd -set /dev/mac|/dev/ip|/dev/icmp|/dev/udp|/dev/tcp name value",
        summary: "get and set tunables: the MAC layer's (/dev/mac) and FireEngine's (/dev/ip, /dev/icmp, /dev/udp, /dev/tcp)",
        run: cmd_ndd,
    },
    Command { name: "dladm", usage: admin::DLADM_USAGE, summary: "administer data links", run: cmd_dladm },
    Command { name: "dlstat", usage: admin::DLSTAT_USAGE, summary: "report data-link statistics", run: cmd_dlstat },
    Command { name: "flowadm", usage: admin::FLOWADM_USAGE, summary: "administer flows: classes of traffic with bandwidth and priority", run: cmd_flowadm },
    Command { name: "flowstat", usage: admin::FLOWSTAT_USAGE, summary: "report flow statistics", run: cmd_flowstat },
    Command {
        name: "ipadm",
        usage: "ipadm create-addr -T static -a address/prefixlen link[/addrobj]\nipadm delete-addr addrobj\nipadm show-addr [addrobj]\nipadm show-if [link]\nipadm create-if [-s fireengine|smoltcp] link\nipadm delete-if link\nipadm show-prop [[-c] -o field,...] [-p prop,...] [ip|ipv4|icmp|udp]\nipadm set-prop [-t] -p prop=value ip|ipv4|icmp|udp\nipadm reset-prop [-t] -p prop ip|ipv4|icmp|udp",
        summary: "configure IP interfaces and addresses",
        run: cmd_ip,
    },
    Command {
        name: "route",
        usage: "route add default|-net dest/prefix gateway\nroute delete default|-net dest/prefix [gateway]",
        summary: "manipulate the IPv4 routing table",
        run: cmd_ip,
    },
    Command { name: "netstat", usage: "netstat -r [-n] [-f inet]\nnetstat -s [-f inet]", summary: "show routes and IP statistics", run: cmd_ip },
    Command {
        name: "sqstat",
        usage: arbalest_netstack::admin::sqstat::USAGE,
        summary: "report squeue (vertical perimeter) statistics",
        run: cmd_ip,
    },
    Command {
        name: "ping",
        usage: "ping [-s] [-c count] [-i interface] [-I interval] host [timeout]",
        summary: "send ICMP echo requests",
        run: cmd_ip,
    },
    Command { name: "arp", usage: arbalest_netstack::admin::arp::USAGE, summary: "show the neighbour (ARP) caches", run: cmd_ip },
    Command {
        name: "ttcp",
        usage: "ttcp [-c count] [-e] [-i interface] [-n bytes] [-p port] [-t timeout] host",
        summary: "send a test pattern over TCP (verify the echo with -e or port 7)",
        run: cmd_ip,
    },
    Command {
        name: "udpecho",
        usage: arbalest_netstack::admin::udpecho::USAGE,
        summary: "send numbered datagrams to a UDP echo service and verify each reply",
        run: cmd_ip,
    },
    Command {
        name: "svcs",
        usage: arbalest_netstack::admin::svcs::SVCS_USAGE,
        summary: "list the in-kernel services of each IP interface (echo, discard, chargen, http...)",
        run: cmd_ip,
    },
    Command {
        name: "svcadm",
        usage: arbalest_netstack::admin::svcs::SVCADM_USAGE,
        summary: "enable or disable an in-kernel service (svcadm enable http)",
        run: cmd_ip,
    },
];

/// What the IP commands need from the kernel.
struct IpEnv<'a>(&'a dyn ShellHost);

impl arbalest_netstack::admin::AdminEnv for IpEnv<'_> {
    fn instances(&self) -> alloc::vec::Vec<alloc::sync::Arc<dyn arbalest_netstack::IpStack>> {
        super::ip::interfaces().into_iter().map(|i| i.stack.clone()).collect()
    }
    fn squeue_stats(&self) -> alloc::vec::Vec<arbalest_netstack::fireengine::squeue::SqStats> {
        super::fe::squeue_stats()
    }
    fn fe_tunables(&self) -> Option<alloc::sync::Arc<arbalest_netstack::fireengine::tunables::Tunables>> {
        Some(super::fe::system().tunables.clone())
    }
    fn create_if(
        &mut self,
        link: &str,
        stack: Option<arbalest_netstack::StackKind>,
    ) -> Result<alloc::sync::Arc<dyn arbalest_netstack::IpStack>, arbalest_netstack::NetError> {
        super::ip::create(link, stack).map(|i| i.stack.clone())
    }
    fn delete_if(&mut self, link: &str) -> Result<(), arbalest_netstack::NetError> {
        super::ip::delete(link)
    }
    fn now_us(&self) -> u64 {
        crate::time::clock::now_ns() / 1000
    }
    fn unix_time(&self) -> Option<u64> {
        Some(self.0.unix_time())
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.0.sleep_ms(ms)
    }
    fn interrupted(&mut self) -> bool {
        self.0.interrupted()
    }
    fn poll_now(&mut self) {
        for i in super::ip::interfaces() {
            i.kick();
        }
    }
    fn heap_used(&self) -> Option<usize> {
        Some(crate::mem::heap::stats().0)
    }
}

fn cmd_ip(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let mut env = IpEnv(ctx.host);
    arbalest_netstack::admin::run(argv, &mut env, ctx.out).unwrap_or(127)
}

fn cmd_scanpci(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    if argv.len() > 1 {
        return ctx.usage_error();
    }
    let Some(st) = super::state() else {
        ctx.error(format_args!("PCI not scanned"));
        return 1;
    };
    let driver_of = |d: &arbalest_drivers::pci::PciDevice| -> Option<String> {
        st.bound.iter().find(|b| b.bdf == d.bdf).map(|b| b.device.clone())
    };
    match arbalest_drivers::pci::scanpci(&st.devices, &driver_of, ctx.out) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn cmd_dladm(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    admin::dladm(argv, &LinkEnv, ctx.out)
}

fn cmd_flowadm(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    admin::flowadm(argv, &LinkEnv, ctx.out)
}

fn cmd_flowstat(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let env = Env(ctx.host);
    admin::flowstat(argv, ctx.out, &env)
}

fn cmd_dlstat(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let links = arbalest_mac::link::datalinks();
    let env = Env(ctx.host);
    admin::dlstat(argv, &links, ctx.out, &env)
}

fn cmd_ndd(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    use arbalest_mac::srs::tunables;
    let (set, rest) = match argv.get(1) {
        Some(&"-set") => (true, &argv[2..]),
        Some(&"-get") => (false, &argv[2..]),
        _ => (false, &argv[1..]),
    };
    let Some((&dev, rest)) = rest.split_first() else { return ctx.usage_error() };
    if dev != "/dev/mac" {
        // FireEngine's drivers (and the error for any other name).
        return cmd_ip(ctx, argv);
    }
    if argv.get(1) == Some(&"-get") && rest.len() != 1 {
        return ctx.usage_error();
    }
    match (set, rest) {
        (false, []) => {
            for t in tunables::ALL.iter() {
                let _ = writeln!(ctx.out, "{:<26} {:>9}  (default {}, {}..{}) {}", t.name, t.get(), t.default, t.min, t.max, t.description);
            }
            0
        }
        (false, [name]) => match tunables::find(name) {
            Some(t) => {
                let _ = writeln!(ctx.out, "{}", t.get());
                0
            }
            None => {
                ctx.error(format_args!("{name}: no such tunable"));
                1
            }
        },
        (true, [name, value]) => {
            let Some(t) = tunables::find(name) else {
                ctx.error(format_args!("{name}: no such tunable"));
                return 1;
            };
            let Ok(v) = value.parse::<u64>() else {
                ctx.error(format_args!("{name}: invalid value '{value}'"));
                return 1;
            };
            match t.set(v) {
                Ok(()) => 0,
                Err((lo, hi)) => {
                    ctx.error(format_args!("{name}: value {v} out of range {lo}..{hi}"));
                    1
                }
            }
        }
        _ => ctx.usage_error(),
    }
}
