//! Networking for the booted kernel: which NIC QEMU emulates and what it is
//! plugged into.
//!
//! Three layers:
//!
//! * [`Net`] (a field of [`crate::Config`]) is the concrete QEMU side: the
//!   NIC model, its MAC and queue count, and the backend ([`Backend`]: none,
//!   QEMU user networking with host forwards, or a TAP device, optionally one
//!   inside a network namespace, in which case QEMU is started through
//!   `ip netns exec NS`). It creates nothing; it only turns into arguments.
//! * [`NetRequest`] is what the command line asked for (`--net`, `--nic`,
//!   `--queues`) before anything exists. [`prepare_net`] resolves it into a
//!   [`Net`]: it picks free localhost ports for `user`, creates the
//!   namespace and TAP for `tap`, and appends the kernel's `ip=` argument.
//! * [`TapNamespace`] is the guard for a network namespace holding a
//!   multi-queue TAP: created by [`TapNamespace::create`], deleted (with the
//!   TAP inside it) when dropped. The boot tests use it too.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};

/// The guest NIC's MAC address (QEMU's customary first address).
pub const GUEST_MAC: &str = "52:54:00:12:34:56";

/// QEMU's id for the netdev backing the NIC (`-netdev ...,id=n0`); also the
/// name QMP's `set_link` takes.
pub const NETDEV_ID: &str = "n0";

/// Name of the TAP device inside a namespace made by `--net tap`.
pub const TAP_NAME: &str = "arbtap0";

/// Host side of the TAP made by `--net tap`.
pub const TAP_HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Guest address with `--net tap`.
pub const TAP_GUEST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Prefix length of the TAP network.
pub const TAP_PREFIX: u8 = 24;
/// Kernel argument added with `--net tap`.
pub const TAP_GUEST_ARG: &str = "ip=10.0.0.2/24,gw=10.0.0.1";

/// Guest address with QEMU user networking (QEMU's fixed default).
pub const USER_GUEST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// Kernel argument added with `--net user`.
pub const USER_GUEST_ARG: &str = "ip=10.0.2.15/24,gw=10.0.2.2";

/// Largest `--queues` accepted.
pub const MAX_QUEUES: usize = 64;

/// The emulated NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nic {
    /// `virtio-net-pci` (modern + legacy transitional device).
    Virtio,
    /// Intel 82576 (`igb`, QEMU >= 8): 16 queues and RSS inside the device.
    Igb,
}

impl Nic {
    pub fn parse(s: &str) -> Result<Nic, String> {
        match s {
            "virtio" => Ok(Nic::Virtio),
            "igb" => Ok(Nic::Igb),
            _ => Err(format!("unknown NIC '{s}' (expected virtio or igb)")),
        }
    }
}

impl fmt::Display for Nic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Nic::Virtio => "virtio",
            Nic::Igb => "igb",
        })
    }
}

/// Transport protocol of a host forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One QEMU user-networking forward: `127.0.0.1:host_port` on the host to
/// the guest's `guest_port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFwd {
    pub proto: Proto,
    pub host_port: u16,
    pub guest_port: u16,
    /// The kernel service behind `guest_port` (`echo`, `discard`, ...).
    pub service: String,
}

impl HostFwd {
    /// QEMU's `hostfwd=` value: `tcp:127.0.0.1:7007-:7`.
    pub fn qemu_value(&self) -> String {
        format!("{}:127.0.0.1:{}-:{}", self.proto, self.host_port, self.guest_port)
    }
}

/// The kernel services forwarded by `--net user`, with the first host port
/// tried for each: `(proto, preferred host port, guest port, service)`.
pub const USER_FORWARDS: [(Proto, u16, u16, &str); 4] = [
    (Proto::Tcp, 7007, 7, "echo"),
    (Proto::Tcp, 7009, 9, "discard"),
    (Proto::Tcp, 7019, 19, "chargen"),
    (Proto::Udp, 7007, 7, "echo"),
];

/// What the NIC is plugged into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// No NIC at all.
    None,
    /// QEMU user networking (slirp), single-queue, with these forwards.
    User { forwards: Vec<HostFwd> },
    /// An existing TAP device. With `netns`, QEMU runs inside that network
    /// namespace (`ip netns exec NETNS qemu-system-x86_64 ...`), where the
    /// TAP lives.
    Tap { ifname: String, netns: Option<String> },
}

/// The QEMU side of networking. `Net::none()` is the default (and what the
/// boot tests use unless they ask for a NIC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net {
    pub backend: Backend,
    pub nic: Nic,
    /// Backend queues (`-netdev tap,queues=N`). For virtio with N > 1 the
    /// device gets `mq=on,vectors=2N+2` (N queue pairs, one MSI-X vector per
    /// queue plus config and control). `igb` has its 16 queues and RSS in the
    /// device whatever this is.
    pub queues: usize,
    pub mac: String,
}

impl Default for Net {
    fn default() -> Net {
        Net::none()
    }
}

impl Net {
    /// No NIC.
    pub fn none() -> Net {
        Net { backend: Backend::None, nic: Nic::Virtio, queues: 1, mac: GUEST_MAC.to_string() }
    }

    /// virtio-net on QEMU user networking with `forwards`.
    pub fn user(forwards: Vec<HostFwd>) -> Net {
        Net { backend: Backend::User { forwards }, ..Net::none() }
    }

    /// virtio-net with `queues` queue pairs on the existing TAP `ifname`.
    pub fn tap(ifname: &str, queues: usize) -> Net {
        Net {
            backend: Backend::Tap { ifname: ifname.to_string(), netns: None },
            queues,
            ..Net::none()
        }
    }

    /// virtio-net with `queues` queue pairs on TAP `ifname` inside network
    /// namespace `netns` (QEMU is started inside it).
    pub fn tap_in_netns(netns: &str, ifname: &str, queues: usize) -> Net {
        Net {
            backend: Backend::Tap { ifname: ifname.to_string(), netns: Some(netns.to_string()) },
            queues,
            ..Net::none()
        }
    }

    /// The same with another NIC model.
    pub fn with_nic(self, nic: Nic) -> Net {
        Net { nic, ..self }
    }

    /// The namespace QEMU must run in, if any.
    pub fn netns(&self) -> Option<&str> {
        match &self.backend {
            Backend::Tap { netns: Some(ns), .. } => Some(ns),
            _ => None,
        }
    }

    /// `-netdev` and `-device` arguments (empty without a NIC).
    pub fn qemu_args(&self) -> Vec<String> {
        let netdev = match &self.backend {
            Backend::None => return Vec::new(),
            Backend::User { forwards } => {
                let mut s = format!("user,id={NETDEV_ID}");
                for f in forwards {
                    s.push_str(",hostfwd=");
                    s.push_str(&f.qemu_value());
                }
                s
            }
            Backend::Tap { ifname, .. } => {
                let mut s = format!("tap,id={NETDEV_ID},ifname={ifname},script=no,downscript=no");
                if self.queues > 1 {
                    s.push_str(&format!(",queues={}", self.queues));
                }
                s
            }
        };
        let device = match self.nic {
            Nic::Virtio if self.queues > 1 => format!(
                "virtio-net-pci,netdev={NETDEV_ID},mq=on,vectors={},mac={}",
                2 * self.queues + 2,
                self.mac
            ),
            Nic::Virtio => format!("virtio-net-pci,netdev={NETDEV_ID},mac={}", self.mac),
            Nic::Igb => format!("igb,netdev={NETDEV_ID},mac={}", self.mac),
        };
        vec!["-netdev".into(), netdev, "-device".into(), device]
    }
}

// ---------------------------------------------------------------------------
// Command-line request.

/// `--net` as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetMode {
    /// `--net none`
    None,
    /// `--net user` (the binary's default)
    User,
    /// `--net tap`: make a namespace with a multi-queue TAP.
    NewTap,
    /// `--net tap:IFNAME[,queues=N]`: an existing TAP.
    Tap { ifname: String },
}

/// What `--net`, `--nic` and `--queues` asked for, before anything exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetRequest {
    pub mode: NetMode,
    pub nic: Nic,
    /// `--queues N` or `tap:IFNAME,queues=N`; `None`: the mode's default
    /// (the CPU count for `--net tap` with virtio, else 1).
    pub queues: Option<usize>,
}

impl Default for NetRequest {
    /// The binary's default: virtio-net on user networking.
    fn default() -> NetRequest {
        NetRequest { mode: NetMode::User, nic: Nic::Virtio, queues: None }
    }
}

fn parse_queues(v: &str, what: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_QUEUES).contains(&n) => Ok(n),
        _ => Err(format!("{what}: '{v}' is not a queue count (1..={MAX_QUEUES})")),
    }
}

/// Parses the value of `--net`. Returns the mode and the queue count given
/// inside it (`tap:IFNAME,queues=N`).
pub fn parse_net_value(v: &str) -> Result<(NetMode, Option<usize>), String> {
    match v {
        "none" => return Ok((NetMode::None, None)),
        "user" => return Ok((NetMode::User, None)),
        "tap" => return Ok((NetMode::NewTap, None)),
        _ => {}
    }
    let Some(rest) = v.strip_prefix("tap:") else {
        return Err(format!("--net: '{v}' is not none, user, tap or tap:IFNAME[,queues=N]"));
    };
    let mut parts = rest.split(',');
    let ifname = parts.next().unwrap_or("");
    if !valid_ifname(ifname) {
        return Err(format!("--net: '{ifname}' is not an interface name"));
    }
    let mut queues = None;
    for p in parts {
        match p.split_once('=') {
            Some(("queues", n)) => queues = Some(parse_queues(n, "--net")?),
            _ => return Err(format!("--net: unknown TAP option '{p}' (expected queues=N)")),
        }
    }
    Ok((NetMode::Tap { ifname: ifname.to_string() }, queues))
}

/// A Linux interface name: 1..=15 bytes, no '/', ':', ',', '=' or whitespace.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.chars().all(|c| c.is_ascii_graphic() && !"/:,=".contains(c))
}

/// Checks a request against the CPU count; returns the queue count to use.
pub fn resolve_queues(req: &NetRequest, smp: usize) -> Result<usize, String> {
    match (&req.mode, req.queues) {
        (NetMode::None, Some(_)) => Err("--queues needs a NIC (not with --net none)".into()),
        (NetMode::User, Some(n)) if n > 1 => Err(
            "--net user is single-queue (QEMU user networking); use --net tap for more queues".into(),
        ),
        (_, Some(n)) => Ok(n),
        (NetMode::NewTap, None) if req.nic == Nic::Virtio => Ok(smp.clamp(1, MAX_QUEUES)),
        (_, None) => Ok(1),
    }
}

/// True when the kernel command line already has an `ip=` word.
pub fn append_has_ip(append: &str) -> bool {
    append.split_ascii_whitespace().any(|w| w.starts_with("ip="))
}

// ---------------------------------------------------------------------------
// Free localhost ports.

fn port_free(proto: Proto, port: u16) -> bool {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr).is_ok(),
        Proto::Udp => UdpSocket::bind(addr).is_ok(),
    }
}

/// The forwards of [`USER_FORWARDS`], each moved to the next free localhost
/// port when its preferred one is taken (never two forwards on one port).
pub fn pick_user_forwards() -> Result<Vec<HostFwd>, String> {
    pick_forwards_with(port_free)
}

/// [`pick_user_forwards`] with an injectable "is this port free" test.
pub fn pick_forwards_with(mut free: impl FnMut(Proto, u16) -> bool) -> Result<Vec<HostFwd>, String> {
    let mut out: Vec<HostFwd> = Vec::new();
    for (proto, first, guest_port, service) in USER_FORWARDS {
        let taken = |p: u16, out: &Vec<HostFwd>| out.iter().any(|f| f.proto == proto && f.host_port == p);
        let mut port = first;
        let mut tries = 0;
        loop {
            if !taken(port, &out) && free(proto, port) {
                break;
            }
            tries += 1;
            if tries > 200 || port == u16::MAX {
                return Err(format!("no free localhost {proto} port from {first} on for {service}"));
            }
            port += 1;
        }
        out.push(HostFwd { proto, host_port: port, guest_port, service: service.to_string() });
    }
    Ok(out)
}

/// The one line bootimage prints on stderr for user networking, e.g.
/// `bootimage: user networking: tcp/7007=echo tcp/7009=discard tcp/7019=chargen udp/7007=echo on 127.0.0.1 (try: nc 127.0.0.1 7007)`.
/// [`parse_forwards_line`] reads it back.
pub fn forwards_line(forwards: &[HostFwd]) -> String {
    let list: Vec<String> =
        forwards.iter().map(|f| format!("{}/{}={}", f.proto, f.host_port, f.service)).collect();
    let moved: Vec<String> = forwards
        .iter()
        .filter_map(|f| {
            let (_, first, _, _) = USER_FORWARDS
                .iter()
                .find(|(p, _, g, s)| *p == f.proto && *g == f.guest_port && *s == f.service)?;
            (*first != f.host_port).then(|| format!("{} {first} was busy, using {}", f.proto, f.host_port))
        })
        .collect();
    let echo = forwards
        .iter()
        .find(|f| f.proto == Proto::Tcp && f.service == "echo")
        .map(|f| f.host_port)
        .unwrap_or(7007);
    let mut s = format!(
        "bootimage: user networking: {} on 127.0.0.1 (try: nc 127.0.0.1 {echo})",
        list.join(" ")
    );
    if !moved.is_empty() {
        s.push_str(&format!("; {}", moved.join(", ")));
    }
    s
}

/// The host port of `proto`/`service` in a [`forwards_line`].
pub fn parse_forwards_line(line: &str, proto: Proto, service: &str) -> Option<u16> {
    let prefix = format!("{proto}/");
    line.split_ascii_whitespace().find_map(|w| {
        let (port, svc) = w.strip_prefix(&prefix)?.split_once('=')?;
        (svc == service).then(|| port.parse().ok()).flatten()
    })
}

// ---------------------------------------------------------------------------
// Network namespace with a multi-queue TAP.

fn run_ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

/// True when the named network namespace exists.
pub fn netns_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// A network namespace holding one TAP (multi-queue unless made for a
/// single queue) with the host address on it, link up. Deleted (TAP
/// included) on drop.
///
/// QEMU opens a TAP with `IFF_MULTI_QUEUE` exactly when `queues > 1`, and
/// the kernel refuses a mismatch with the flag the TAP was created with
/// (`could not configure /dev/net/tun: Invalid argument`): hence the
/// `multi_queue` argument.
#[derive(Debug)]
pub struct TapNamespace {
    name: String,
    tap: String,
    host_cidr: String,
    deleted: bool,
}

impl TapNamespace {
    /// The `ip` commands [`TapNamespace::create`] runs, for display.
    pub fn setup_commands(name: &str, tap: &str, host_cidr: &str, multi_queue: bool) -> Vec<String> {
        vec![
            format!("ip netns add {name}"),
            format!("ip -n {name} link set lo up"),
            format!("ip -n {name} tuntap add dev {tap} mode tap{}", if multi_queue { " multi_queue" } else { "" }),
            format!("ip -n {name} addr add {host_cidr} dev {tap}"),
            format!("ip -n {name} link set {tap} up"),
        ]
    }

    /// Creates namespace `name` (a stale one of that name is deleted first)
    /// with TAP `tap` (persistent; `multi_queue` for QEMU's `queues=N`,
    /// N > 1) carrying `host_cidr` (`10.0.0.1/24`), link up, and `lo` up.
    /// On failure nothing is left. Runs set-up ([`crate::setup`], once per
    /// process) first: on a fresh machine `ip` may arrive only then.
    pub fn create(name: &str, tap: &str, host_cidr: &str, multi_queue: bool) -> Result<TapNamespace, String> {
        if name.is_empty() || name.contains('/') || !valid_ifname(tap) {
            return Err(format!("bad namespace '{name}' or TAP name '{tap}'"));
        }
        crate::setup()?;
        if netns_exists(name) {
            run_ip(&["netns", "del", name])?;
        }
        run_ip(&["netns", "add", name])?;
        // From here on, Drop removes the namespace whatever fails.
        let ns = TapNamespace {
            name: name.to_string(),
            tap: tap.to_string(),
            host_cidr: host_cidr.to_string(),
            deleted: false,
        };
        run_ip(&["-n", name, "link", "set", "lo", "up"])?;
        let mut add = vec!["-n", name, "tuntap", "add", "dev", tap, "mode", "tap"];
        if multi_queue {
            add.push("multi_queue");
        }
        run_ip(&add)?;
        run_ip(&["-n", name, "addr", "add", host_cidr, "dev", tap])?;
        run_ip(&["-n", name, "link", "set", tap, "up"])?;
        Ok(ns)
    }

    /// The standard set-up of `--net tap` for `queues` queues: TAP
    /// [`TAP_NAME`] (multi-queue when `queues > 1`) with `10.0.0.1/24`.
    pub fn create_default(name: &str, queues: usize) -> Result<TapNamespace, String> {
        TapNamespace::create(name, TAP_NAME, &format!("{TAP_HOST_ADDR}/{TAP_PREFIX}"), queues > 1)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tap(&self) -> &str {
        &self.tap
    }

    pub fn host_cidr(&self) -> &str {
        &self.host_cidr
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend_from_slice(args);
        run_ip(&v)
    }

    /// Deletes the namespace now (and with it the TAP). Processes still
    /// running inside keep it alive until they exit, nameless. Idempotent.
    pub fn delete(&mut self) -> Result<(), String> {
        if self.deleted {
            return Ok(());
        }
        self.deleted = true;
        if !netns_exists(&self.name) {
            return Ok(());
        }
        // Remove the TAP explicitly too, so nothing depends on what the
        // kernel does with a persistent TAP when its namespace goes.
        let _ = run_ip(&["-n", &self.name, "link", "del", &self.tap]);
        run_ip(&["netns", "del", &self.name])
    }
}

impl Drop for TapNamespace {
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            eprintln!("bootimage: {e}");
        }
    }
}

/// The pid encoded in a namespace name made by bootimage (`arb<pid>`) or
/// the test harness (`arbt<pid>n<seq>`).
pub fn netns_owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("arbt").or_else(|| name.strip_prefix("arb"))?;
    let digits = match rest.split_once('n') {
        Some((d, seq)) if !seq.is_empty() && seq.chars().all(|c| c.is_ascii_digit()) => d,
        Some(_) => return None,
        None => rest,
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Deletes namespaces left behind by killed bootimage or test processes:
/// names of the forms of [`netns_owner_pid`] whose pid no longer exists.
/// Returns the names deleted.
pub fn reap_stale_namespaces() -> Vec<String> {
    let mut gone = Vec::new();
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return gone;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = netns_owner_pid(&name) else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if run_ip(&["netns", "del", &name]).is_ok() {
            gone.push(name);
        }
    }
    gone
}

// ---------------------------------------------------------------------------
// Resolving a request.

/// What [`prepare_net`] set up: keep it alive while QEMU runs.
#[derive(Debug, Default)]
pub struct NetSetup {
    /// The namespace of `--net tap` (None in dry runs and other modes).
    pub namespace: Option<TapNamespace>,
    /// Lines for the user (stderr).
    pub notes: Vec<String>,
}

/// Resolves `req` into `cfg.net`, creating what it needs unless `dry_run`
/// (then it only says what it would create). Appends the kernel's `ip=`
/// argument for `user` and `tap` unless `cfg.append` already has one.
/// `pid` names the namespace of `--net tap` (`arb<pid>`).
pub fn prepare_net(
    cfg: &mut crate::Config,
    req: &NetRequest,
    dry_run: bool,
    pid: u32,
) -> Result<NetSetup, String> {
    let queues = resolve_queues(req, cfg.smp)?;
    let mut setup = NetSetup::default();
    match &req.mode {
        NetMode::None => cfg.net = Net::none(),
        NetMode::User => {
            let fwd = pick_user_forwards()?;
            setup.notes.push(forwards_line(&fwd));
            cfg.net = Net::user(fwd).with_nic(req.nic);
            if !append_has_ip(&cfg.append) {
                cfg.push_append(USER_GUEST_ARG);
            }
        }
        NetMode::Tap { ifname } => {
            cfg.net = Net { queues, ..Net::tap(ifname, queues).with_nic(req.nic) };
            setup.notes.push(format!(
                "bootimage: net0 is on TAP {ifname} ({queues} queue{}); bring your own addresses{}",
                if queues == 1 { "" } else { "s" },
                if queues > 1 { " (the TAP must be multi_queue)" } else { " (the TAP must not be multi_queue)" }
            ));
        }
        NetMode::NewTap => {
            let name = format!("arb{pid}");
            let host_cidr = format!("{TAP_HOST_ADDR}/{TAP_PREFIX}");
            if dry_run {
                setup.notes.push(format!(
                    "bootimage: would set up: {}",
                    TapNamespace::setup_commands(&name, TAP_NAME, &host_cidr, queues > 1).join("; ")
                ));
            } else {
                reap_stale_namespaces();
                setup.namespace = Some(TapNamespace::create(&name, TAP_NAME, &host_cidr, queues > 1)?);
            }
            cfg.net = Net::tap_in_netns(&name, TAP_NAME, queues).with_nic(req.nic);
            if !append_has_ip(&cfg.append) {
                cfg.push_append(TAP_GUEST_ARG);
            }
            setup.notes.push(format!(
                "bootimage: net0 is on TAP {TAP_NAME} ({queues} queue{}) in network namespace {name}, host side {host_cidr}; \
                 reach it with: ip netns exec {name} ping {TAP_GUEST_ADDR}",
                if queues == 1 { "" } else { "s" },
            ));
        }
    }
    Ok(setup)
}
