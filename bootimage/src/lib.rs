//! bootimage: builds the Arbalest kernel and boots it under QEMU.
//!
//! The binary (`cargo run --release [-- options]`) is a thin wrapper around
//! this library; the host test harness in `tests/` uses the same functions so
//! that tests and humans boot the kernel the same way.
//!
//! Exit-code protocol: the kernel ends QEMU by writing `v` to the
//! `isa-debug-exit` port (0xf4); QEMU then exits with `(v << 1) | 1`.
//! [`decode_exit`] turns that back into `v`.
//!
//! Networking ([`net`]): [`Config::net`] says which NIC QEMU emulates and
//! what it is plugged into (nothing by default, so the boot tests stay
//! NIC-less); the binary's `--net`/`--nic`/`--queues` options become a
//! [`NetRequest`] that [`prepare_net`] resolves (free localhost ports for
//! `user`, a network namespace with a multi-queue TAP for `tap`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;

pub mod bench;
pub mod ksyms;
pub mod net;
pub use net::{
    prepare_net, reap_stale_namespaces, Backend, HostFwd, Net, NetMode, NetRequest, NetSetup, Nic, Proto,
    TapNamespace,
};

/// The QEMU system emulator we run.
pub const QEMU: &str = "qemu-system-x86_64";

/// Kernel command line used when nothing else is asked for.
pub const DEFAULT_APPEND: &str = "log=info";

/// Rust target the kernel is built for.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// QEMU accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation, one host thread per vCPU (`-accel tcg,thread=multi`).
    Tcg,
    /// Hardware virtualization (`-accel kvm`).
    Kvm,
}

impl Accel {
    /// Parses `tcg` or `kvm`.
    pub fn parse(s: &str) -> Result<Accel, String> {
        match s {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            _ => Err(format!("unknown accelerator '{s}' (expected tcg or kvm)")),
        }
    }

    /// Probes the host. KVM is chosen only when a *hardware* KVM module
    /// (`kvm_intel` or `kvm_amd`) is loaded and `/dev/kvm` can be opened.
    ///
    /// On some machines `/dev/kvm` is provided by `kvm_pvm`, a software PVM
    /// hypervisor that only runs PVM-aware guests: an ordinary kernel such as
    /// ours dies on instructions it cannot emulate. There the `/sys/module`
    /// check fails and we fall back to TCG (see ARCHITECTURE.md, "Boot and
    /// platform facts").
    pub fn detect() -> Accel {
        let hw = Path::new("/sys/module/kvm_intel").exists()
            || Path::new("/sys/module/kvm_amd").exists();
        let openable = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        if hw && openable { Accel::Kvm } else { Accel::Tcg }
    }

    /// `ARBALEST_ACCEL` when set (an invalid value is an error), else [`Accel::detect`].
    pub fn from_env_or_detect() -> Result<Accel, String> {
        match std::env::var("ARBALEST_ACCEL") {
            Ok(v) if !v.is_empty() => {
                Accel::parse(&v).map_err(|e| format!("ARBALEST_ACCEL: {e}"))
            }
            _ => Ok(Accel::detect()),
        }
    }

    /// The value given to QEMU's `-accel`.
    pub fn qemu_value(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg,thread=multi",
            Accel::Kvm => "kvm",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        })
    }
}

/// What to boot and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of CPUs (`-smp`).
    pub smp: usize,
    /// Memory size in QEMU syntax (`-m`), e.g. `512M`.
    pub mem: String,
    pub accel: Accel,
    /// The whole kernel command line (`-append`).
    pub append: String,
    /// The NIC and its backend ([`Net::none`] by default).
    pub net: Net,
    /// Extra QEMU arguments appended verbatim (after the NIC's).
    pub extra: Vec<String>,
}

impl Default for Config {
    /// 4 CPUs, 512M, accelerator from `ARBALEST_ACCEL` (ignored if invalid)
    /// or host detection, kernel command line `log=info`, no NIC, no extras.
    fn default() -> Config {
        Config {
            smp: 4,
            mem: "512M".to_string(),
            accel: Accel::from_env_or_detect().unwrap_or_else(|_| Accel::detect()),
            append: DEFAULT_APPEND.to_string(),
            net: Net::none(),
            extra: Vec::new(),
        }
    }
}

impl Config {
    /// Default configuration with `smp` CPUs.
    pub fn with_smp(smp: usize) -> Config {
        Config { smp, ..Config::default() }
    }

    /// Adds kernel arguments after the current command line.
    pub fn push_append(&mut self, args: &str) {
        let args = args.trim();
        if args.is_empty() {
            return;
        }
        if !self.append.is_empty() {
            self.append.push(' ');
        }
        self.append.push_str(args);
    }
}

/// The workspace root (parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bootimage lives inside the workspace")
        .to_path_buf()
}

/// Target directory of the kernel build.
pub fn kernel_target_dir() -> PathBuf {
    workspace_root().join("target").join("kernel")
}

/// Where the kernel ELF lands after [`build_kernel`].
pub fn kernel_elf_path() -> PathBuf {
    kernel_target_dir()
        .join(KERNEL_TARGET)
        .join("release")
        .join("arbalest-kernel")
}

/// The ELF that will be booted: `ARBALEST_KERNEL` if set, else [`kernel_elf_path`].
pub fn kernel_path() -> PathBuf {
    match std::env::var_os(KERNEL_ENV).filter(|k| !k.is_empty()) {
        Some(k) => PathBuf::from(k),
        None => kernel_elf_path(),
    }
}

fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn output_text(out: &std::process::Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    let o = String::from_utf8_lossy(&out.stdout);
    if !o.trim().is_empty() {
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&o);
    }
    s.trim_end().to_string()
}

/// Runs `scripts/setup.sh` (the Rust target, QEMU >= 8 and the host tools
/// the tests drive), at most once per process: concurrent callers wait for
/// the first and share its result, so no two apt-gets race and whatever
/// runs first (a boot, a namespace, the bench's machine description) finds
/// the machine set up. Idempotent and quiet when everything is in place.
/// Anything the script prints while succeeding is forwarded to stderr; on
/// failure the error holds its output.
pub fn setup() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(setup_uncached).clone()
}

fn setup_script() -> PathBuf {
    workspace_root().join("scripts").join("setup.sh")
}

fn setup_uncached() -> Result<(), String> {
    let script = setup_script();
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let text = output_text(&out);
    if out.status.success() {
        if !text.is_empty() {
            eprintln!("{text}");
        }
        Ok(())
    } else {
        Err(format!(
            "set-up failed ({}):\n{}",
            out.status,
            if text.is_empty() { "(no output)" } else { &text }
        ))
    }
}

/// `scripts/setup.sh --check`, which installs nothing: `Ok(())` when the
/// machine has everything, else the lines naming what is missing. `path`
/// replaces `PATH` for the script (to see what it makes of a machine
/// without some tool); `None` keeps this process's.
pub fn setup_check(path: Option<&std::ffi::OsStr>) -> Result<(), String> {
    let script = setup_script();
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg("--check").current_dir(workspace_root()).stdin(Stdio::null());
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let out = cmd.output().map_err(|e| format!("cannot run {} --check: {e}", script.display()))?;
    let text = output_text(&out);
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) if !text.is_empty() => Err(text),
        _ => Err(format!("{} --check failed ({}): {}", script.display(), out.status, text)),
    }
}

/// Where `program` is on the search path `path` (`PATH`'s syntax).
pub fn find_program(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The first line of `qemu-system-x86_64 --version` (`QEMU emulator
/// version 8.2.2 (...)`), the QEMU found on `path` (`None`: this process's
/// `PATH`). An error names what is missing: the program, or a version in
/// what it printed. Does not run set-up (see [`setup`]).
pub fn qemu_version_in(path: Option<&std::ffi::OsStr>) -> Result<String, String> {
    let path = path.map(|p| p.to_os_string()).or_else(|| std::env::var_os("PATH")).unwrap_or_default();
    let Some(qemu) = find_program(QEMU, &path) else {
        return Err(format!(
            "{QEMU} is not on PATH ({}): QEMU >= 8 is missing; scripts/setup.sh installs it",
            path.to_string_lossy()
        ));
    };
    let out = Command::new(&qemu)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} --version: {e}", qemu.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("").trim();
    if !out.status.success() {
        return Err(format!("{} --version failed ({}): {}", qemu.display(), out.status, output_text(&out)));
    }
    if !line.contains("QEMU emulator version ") {
        return Err(format!("{} --version printed no QEMU version: {:?}", qemu.display(), output_text(&out)));
    }
    Ok(line.to_string())
}

fn build_kernel_uncached() -> Result<PathBuf, String> {
    setup()?;
    if let Some(k) = std::env::var_os(KERNEL_ENV).filter(|k| !k.is_empty()) {
        let k = PathBuf::from(k);
        return if k.is_file() {
            let _ = ksyms::write_for(&k);
            Ok(k)
        } else {
            Err(format!("{KERNEL_ENV}={}: no such file", k.display()))
        };
    }
    let ws = workspace_root();
    let out = Command::new(cargo_program())
        .args(["build", "--release", "-p", "arbalest-kernel", "--features", "bare-metal"])
        .args(["--target", KERNEL_TARGET, "--target-dir"])
        .arg(kernel_target_dir())
        .current_dir(&ws)
        // Let the workspace .cargo/config.toml target rustflags apply, and
        // keep the kernel out of whatever target dir the caller uses.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("kernel build failed ({}):\n{}", out.status, output_text(&out)));
    }
    let elf = kernel_elf_path();
    if !elf.is_file() {
        return Err(format!("kernel build succeeded but {} is missing", elf.display()));
    }
    // The profiler's symbol table (absent: `lockstat` prints addresses).
    let _ = ksyms::write_for(&elf);
    Ok(elf)
}

/// Environment variable naming a prebuilt kernel ELF to boot instead of
/// building one (debugging aid; unset in normal use).
pub const KERNEL_ENV: &str = "ARBALEST_KERNEL";

/// Set-up plus the kernel build; returns the ELF path (or the file named by
/// `ARBALEST_KERNEL`, without building, when that is set). Runs at most once per
/// process: concurrent callers wait for the first one and share its result.
pub fn build_kernel() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(build_kernel_uncached).clone()
}

/// QEMU arguments (without the program name) to boot `kernel` with `cfg`.
pub fn qemu_args(cfg: &Config, kernel: &Path) -> Vec<String> {
    let mut a: Vec<String> = [
        "-nodefaults",
        "-machine",
        "q35",
        "-cpu",
        "max",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("-smp".into());
    a.push(cfg.smp.to_string());
    a.push("-m".into());
    a.push(cfg.mem.clone());
    a.push("-accel".into());
    a.push(cfg.accel.qemu_value().into());
    for s in [
        "-display",
        "none",
        "-vga",
        "none",
        "-no-reboot",
        "-monitor",
        "none",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-chardev",
        "stdio,id=con0,signal=off",
        "-serial",
        "chardev:con0",
    ] {
        a.push(s.into());
    }
    a.push("-kernel".into());
    a.push(kernel.to_string_lossy().into_owned());
    a.push("-append".into());
    a.push(cfg.append.clone());
    let syms = ksyms::path_for(kernel);
    if syms.is_file() {
        a.push("-fw_cfg".into());
        a.push(format!("name={},file={}", ksyms::FW_CFG_NAME, syms.display()));
    }
    a.extend(cfg.net.qemu_args());
    a.extend(cfg.extra.iter().cloned());
    a
}

/// The whole command as words: QEMU and [`qemu_args`], behind
/// `ip netns exec NS` when the NIC's TAP lives in a namespace.
pub fn command_words(cfg: &Config, kernel: &Path) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(ns) = cfg.net.netns() {
        w.extend(["ip", "netns", "exec", ns].map(String::from));
    }
    w.push(QEMU.to_string());
    w.extend(qemu_args(cfg, kernel));
    w
}

/// A `Command` for [`command_words`]; stdio is left to the caller. With a
/// namespace the child is `ip`, which `exec`s QEMU after entering the
/// namespace, so the child's pid is QEMU's.
pub fn qemu_command(cfg: &Config, kernel: &Path) -> Command {
    let w = command_words(cfg, kernel);
    let mut c = Command::new(&w[0]);
    c.args(&w[1..]);
    c
}

/// Quotes one word for a POSIX shell (only when needed).
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,:=@%+".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The full command line ([`command_words`]), shell-quoted, on one line.
pub fn qemu_command_line(cfg: &Config, kernel: &Path) -> String {
    command_words(cfg, kernel)
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How QEMU ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// The kernel wrote this value to isa-debug-exit.
    Code(u32),
    /// QEMU exited with status 0: triple fault (under `-no-reboot`) or reset.
    NoCode,
    /// Any other even status, or death by a signal.
    Other(ExitStatus),
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitKind::Code(v) => write!(f, "kernel exit code {v}"),
            ExitKind::NoCode => f.write_str("QEMU exited without an exit code (triple fault or reset?)"),
            ExitKind::Other(s) => write!(f, "QEMU {s}"),
        }
    }
}

/// Decodes QEMU's exit status (see the module documentation).
pub fn decode_exit(status: ExitStatus) -> ExitKind {
    match status.code() {
        Some(0) => ExitKind::NoCode,
        Some(c) if c & 1 == 1 => ExitKind::Code((c as u32) >> 1),
        _ => ExitKind::Other(status),
    }
}

/// Reads bootimage's own exit status back (the inverse of
/// [`exit_status_for`]): `N` → `Code(N)`, 124 → `NoCode`, 125 or a signal
/// → `Other`.
pub fn decode_bootimage_exit(status: ExitStatus) -> ExitKind {
    match status.code() {
        Some(124) => ExitKind::NoCode,
        Some(125) | None => ExitKind::Other(status),
        Some(c) => ExitKind::Code(c as u32),
    }
}

/// The status bootimage itself exits with for `kind`.
pub fn exit_status_for(kind: ExitKind) -> i32 {
    match kind {
        ExitKind::Code(v) => v as i32,
        ExitKind::NoCode => 124,
        ExitKind::Other(_) => 125,
    }
}

pub const USAGE: &str = "\
usage: cargo run --release -- [options]
  --smp N           number of CPUs (default 4)
  --mem SIZE        memory size, QEMU syntax (default 512M)
  --accel tcg|kvm   accelerator (default: kvm only with kvm_intel/kvm_amd, else tcg;
                    env ARBALEST_ACCEL also selects it, this flag wins)
  --append 'ARGS'   kernel arguments, added after the default 'log=info'
                    (--net adds no ip= argument when ARGS has one)
  --net MODE        the NIC's network (default user):
    none            no NIC
    user            QEMU user networking; the kernel's TCP echo/discard/chargen
                    and UDP echo are forwarded to 127.0.0.1 ports 7007, 7009,
                    7019 and udp 7007 (the next free port if one is busy; the
                    ports are printed on stderr); adds ip=10.0.2.15/24,gw=10.0.2.2
    tap             needs root: a new network namespace arb<pid> holding a
                    (multi-queue) TAP arbtap0 with 10.0.0.1/24; QEMU runs inside
                    it; adds ip=10.0.0.2/24,gw=10.0.0.1; all removed when QEMU
                    ends. Reach the guest with: ip netns exec arb<pid> ping 10.0.0.2
    tap:IFNAME[,queues=N]
                    an existing TAP, made multi_queue if and only if N > 1
                    (default N = 1); no ip= added
  --nic virtio|igb  the NIC (default virtio; igb needs QEMU >= 8)
  --queues N        TAP queues = virtio-net queue pairs (mq=on,vectors=2N+2);
                    default: --smp for --net tap with virtio, else 1
  --dry-run         print the command line (with ip netns exec) and exit;
                    creates nothing
  --help            this text
       cargo run --release -- bench [options]
                    the network benchmark: Arbalest against a Linux guest under
                    the identical QEMU command line (bench --help; docs/bench.md)
Env ARBALEST_KERNEL=ELF boots that file instead of building the kernel.
Exit status: the kernel's exit code (poweroff N -> N, panic 101, CPU exception 102),
124 if QEMU ended without one (triple fault), 125 on any other QEMU failure.
";

/// What the command line asks for. `config.net` is still [`Net::none`]:
/// [`prepare_net`] turns `net` into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cli {
    Help,
    Run { config: Box<Config>, dry_run: bool, net: NetRequest },
}

/// Parses bootimage's options (program name excluded). `env_accel` is the
/// value of `ARBALEST_ACCEL`; `--accel` wins over it.
pub fn parse_args<S: AsRef<str>>(args: &[S], env_accel: Option<&str>) -> Result<Cli, String> {
    let mut config = Config { accel: Accel::Tcg, ..Config::default() };
    let mut accel_flag: Option<Accel> = None;
    let mut dry_run = false;
    let mut net = NetRequest::default();
    let mut net_queues: Option<usize> = None;
    let mut queues_flag: Option<usize> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_ref();
        i += 1;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        let takes_value =
            matches!(name, "--smp" | "--mem" | "--accel" | "--append" | "--net" | "--nic" | "--queues");
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| format!("option {name} needs a value"))?;
                    i += 1;
                    v.as_ref().to_string()
                }
            }
        } else {
            if inline.is_some() {
                return Err(format!("option {name} takes no value"));
            }
            String::new()
        };
        match name {
            "--help" | "-h" => return Ok(Cli::Help),
            "--dry-run" => dry_run = true,
            "--smp" => {
                config.smp = match value.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(format!("--smp: '{value}' is not a positive number")),
                }
            }
            "--mem" => {
                let digits = value.trim_end_matches(|c: char| "KMGTkmgt".contains(c));
                let suffix_len = value.len() - digits.len();
                if digits.is_empty()
                    || suffix_len > 1
                    || !digits.chars().all(|c| c.is_ascii_digit())
                {
                    return Err(format!("--mem: '{value}' is not a size like 512M or 2G"));
                }
                config.mem = value;
            }
            "--accel" => accel_flag = Some(Accel::parse(&value).map_err(|e| format!("--accel: {e}"))?),
            "--append" => config.push_append(&value),
            "--net" => {
                let (mode, q) = net::parse_net_value(&value)?;
                net.mode = mode;
                net_queues = q;
            }
            "--nic" => net.nic = Nic::parse(&value).map_err(|e| format!("--nic: {e}"))?,
            "--queues" => {
                queues_flag = Some(match value.parse::<usize>() {
                    Ok(n) if (1..=net::MAX_QUEUES).contains(&n) => n,
                    _ => return Err(format!("--queues: '{value}' is not a queue count (1..={})", net::MAX_QUEUES)),
                })
            }
            _ if name.starts_with('-') => return Err(format!("unknown option '{arg}'")),
            _ => return Err(format!("unexpected argument '{arg}'")),
        }
    }
    config.accel = match accel_flag {
        Some(a) => a,
        None => match env_accel {
            Some(v) if !v.is_empty() => Accel::parse(v).map_err(|e| format!("ARBALEST_ACCEL: {e}"))?,
            _ => Accel::detect(),
        },
    };
    net.queues = match (queues_flag, net_queues) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!("--queues {a} contradicts --net ...,queues={b}"));
        }
        (a, b) => a.or(b),
    };
    net::resolve_queues(&net, config.smp)?;
    Ok(Cli::Run { config: Box::new(config), dry_run, net })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn run(args: &[&str]) -> (Config, bool) {
        let (c, d, _) = run_net(args);
        (c, d)
    }

    fn run_net(args: &[&str]) -> (Config, bool, NetRequest) {
        match parse_args(args, None).unwrap() {
            Cli::Run { config, dry_run, net } => (*config, dry_run, net),
            Cli::Help => panic!("unexpected help"),
        }
    }

    #[test]
    fn defaults() {
        let (c, dry) = run(&[]);
        assert_eq!(c.smp, 4);
        assert_eq!(c.mem, "512M");
        assert_eq!(c.append, "log=info");
        assert!(c.extra.is_empty());
        assert_eq!(c.net, Net::none());
        assert_eq!(c.accel, Accel::detect());
        assert!(!dry);
        // The library default stays NIC-less (the boot tests rely on it) ...
        assert_eq!(Config::default().net.backend, Backend::None);
        let a = qemu_args(&Config::default(), Path::new("/k"));
        assert!(!a.iter().any(|a| a == "-netdev" || a.contains("virtio-net") || a.starts_with("igb")), "{a:?}");
        // ... while the binary asks for user networking unless told otherwise.
        let (_, _, net) = run_net(&[]);
        assert_eq!(net, NetRequest { mode: NetMode::User, nic: Nic::Virtio, queues: None });
    }

    #[test]
    fn options() {
        let (c, dry) = run(&["--smp", "2", "--mem=1G", "--accel", "tcg", "--append", "test=foo x=1", "--dry-run"]);
        assert_eq!(c.smp, 2);
        assert_eq!(c.mem, "1G");
        assert_eq!(c.accel, Accel::Tcg);
        assert_eq!(c.append, "log=info test=foo x=1");
        assert!(dry);
        let (c, _) = run(&["--append", "a", "--append=b", "--accel=kvm", "--smp=8"]);
        assert_eq!(c.append, "log=info a b");
        assert_eq!(c.accel, Accel::Kvm);
        assert_eq!(c.smp, 8);
    }

    #[test]
    fn accel_env_and_flag() {
        let c = |args: &[&str], env| match parse_args(args, env).unwrap() {
            Cli::Run { config, .. } => config.accel,
            Cli::Help => unreachable!(),
        };
        assert_eq!(c(&[], Some("kvm")), Accel::Kvm);
        assert_eq!(c(&[], Some("tcg")), Accel::Tcg);
        assert_eq!(c(&["--accel", "tcg"], Some("kvm")), Accel::Tcg);
        assert_eq!(c(&["--accel", "kvm"], Some("tcg")), Accel::Kvm);
        assert_eq!(c(&["--accel", "kvm"], Some("bogus")), Accel::Kvm);
        assert!(parse_args(&[] as &[&str], Some("bogus")).is_err());
    }

    #[test]
    fn errors_and_help() {
        assert_eq!(parse_args(&["--help"], None).unwrap(), Cli::Help);
        assert_eq!(parse_args(&["--smp", "2", "-h"], None).unwrap(), Cli::Help);
        for bad in [
            &["--frob"][..],
            &["--smp"],
            &["--smp", "0"],
            &["--smp", "x"],
            &["--mem", "lots"],
            &["--mem", "12MG"],
            &["--accel", "hvf"],
            &["stray"],
            &["--dry-run=yes"],
        ] {
            assert!(parse_args(bad, None).is_err(), "{bad:?} should fail");
        }
        assert!(parse_args(&["--frob"], None).unwrap_err().contains("--frob"));
    }

    #[test]
    fn qemu_args_contents() {
        let cfg = Config {
            smp: 3,
            mem: "256M".into(),
            accel: Accel::Tcg,
            append: "log=info test=x".into(),
            net: Net::none(),
            extra: vec!["-netdev".into(), "user,id=n0".into()],
        };
        let a = qemu_args(&cfg, Path::new("/k/arbalest-kernel"));
        let has_pair = |k: &str, v: &str| a.windows(2).any(|w| w[0] == k && w[1] == v);
        assert!(has_pair("-smp", "3"));
        assert!(has_pair("-m", "256M"));
        assert!(has_pair("-accel", "tcg,thread=multi"));
        assert!(has_pair("-machine", "q35"));
        assert!(has_pair("-cpu", "max"));
        assert!(has_pair("-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"));
        assert!(has_pair("-chardev", "stdio,id=con0,signal=off"));
        assert!(has_pair("-serial", "chardev:con0"));
        assert!(has_pair("-kernel", "/k/arbalest-kernel"));
        assert!(has_pair("-append", "log=info test=x"));
        assert_eq!(a[0], "-nodefaults");
        for f in ["-no-reboot", "-display", "-vga", "-monitor"] {
            assert!(a.iter().any(|s| s == f), "{f} missing");
        }
        assert_eq!(&a[a.len() - 2..], &["-netdev", "user,id=n0"]);

        let kvm = Config { accel: Accel::Kvm, ..cfg };
        let a = qemu_args(&kvm, Path::new("/k"));
        assert!(a.windows(2).any(|w| w[0] == "-accel" && w[1] == "kvm"));

        let line = qemu_command_line(&kvm, Path::new("/k"));
        assert!(line.starts_with("qemu-system-x86_64 -nodefaults "));
        assert!(line.contains("-append 'log=info test=x'"));
        assert_eq!(qemu_command(&kvm, Path::new("/k")).get_program(), QEMU);
    }

    #[test]
    fn kvm_only_with_hardware_module() {
        let hw = Path::new("/sys/module/kvm_intel").exists() || Path::new("/sys/module/kvm_amd").exists();
        if !hw {
            // e.g. /dev/kvm backed by kvm_pvm: must not be used.
            assert_eq!(Accel::detect(), Accel::Tcg);
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a-b,c=d/e.f"), "a-b,c=d/e.f");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn exits() {
        // from_raw takes a wait(2) status: exit code c is c << 8.
        let st = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(decode_exit(st(1)), ExitKind::Code(0));
        assert_eq!(decode_exit(st(7)), ExitKind::Code(3));
        assert_eq!(decode_exit(st(203)), ExitKind::Code(101));
        assert_eq!(decode_exit(st(205)), ExitKind::Code(102));
        assert_eq!(decode_exit(st(0)), ExitKind::NoCode);
        assert_eq!(decode_exit(st(2)), ExitKind::Other(st(2)));
        let killed = ExitStatus::from_raw(9);
        assert_eq!(decode_exit(killed), ExitKind::Other(killed));
        assert_eq!(exit_status_for(ExitKind::Code(3)), 3);
        assert_eq!(exit_status_for(ExitKind::NoCode), 124);
        assert_eq!(exit_status_for(ExitKind::Other(killed)), 125);
        assert_eq!(decode_bootimage_exit(st(0)), ExitKind::Code(0));
        assert_eq!(decode_bootimage_exit(st(3)), ExitKind::Code(3));
        assert_eq!(decode_bootimage_exit(st(101)), ExitKind::Code(101));
        assert_eq!(decode_bootimage_exit(st(124)), ExitKind::NoCode);
        assert_eq!(decode_bootimage_exit(st(125)), ExitKind::Other(st(125)));
        assert_eq!(decode_bootimage_exit(killed), ExitKind::Other(killed));
    }

    /// A fresh directory under the temp dir for one test.
    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("arbalest-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Writes an executable shell script `dir/name`.
    fn script(dir: &Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The QEMU version of a machine without QEMU (a PATH lacking it) is an
    /// error that says QEMU is missing and what installs it, never `?`; a
    /// QEMU that fails or prints no version is an error too.
    #[test]
    fn qemu_version_without_qemu() {
        let d = scratch("noqemu");
        let e = qemu_version_in(Some(d.as_os_str())).unwrap_err();
        assert!(e.contains("qemu-system-x86_64 is not on PATH") && e.contains("QEMU >= 8 is missing"), "{e}");
        assert!(e.contains("scripts/setup.sh"), "{e}");
        assert!(qemu_version_in(Some(std::ffi::OsStr::new(""))).is_err());

        script(&d, QEMU, "echo 'qemu: cannot open display' >&2; exit 1");
        let e = qemu_version_in(Some(d.as_os_str())).unwrap_err();
        assert!(e.contains("--version failed") && e.contains("cannot open display"), "{e}");
        script(&d, QEMU, "echo '?'");
        let e = qemu_version_in(Some(d.as_os_str())).unwrap_err();
        assert!(e.contains("printed no QEMU version"), "{e}");
        script(&d, QEMU, "echo 'QEMU emulator version 9.1.0 (Debian 1:9.1.0+ds-1)'; echo 'Copyright (c)'");
        assert_eq!(qemu_version_in(Some(d.as_os_str())).unwrap(), "QEMU emulator version 9.1.0 (Debian 1:9.1.0+ds-1)");
        // Not executable: not found.
        std::fs::remove_file(d.join(QEMU)).unwrap();
        std::fs::write(d.join(QEMU), "").unwrap();
        assert!(qemu_version_in(Some(d.as_os_str())).unwrap_err().contains("not on PATH"));
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Set-up leaves nothing for `setup.sh --check` to report (it installs
    /// everything the check looks for), and a second run is instant and
    /// silent; `--check` on a PATH without the tools (a simulated fresh
    /// machine: only the shell utilities the script itself needs) names each
    /// one and installs nothing.
    #[test]
    fn setup_then_check() {
        setup().unwrap_or_else(|e| panic!("{e}"));
        setup_check(None).unwrap_or_else(|e| panic!("set-up succeeded but --check reports:\n{e}"));
        let t = std::time::Instant::now();
        let out = Command::new("bash").arg(setup_script()).stdin(Stdio::null()).output().unwrap();
        let (secs, text) = (t.elapsed().as_secs_f64(), output_text(&out));
        assert!(out.status.success() && text.is_empty(), "second set-up: {} {text}", out.status);
        assert!(secs < 10.0, "second set-up took {secs:.1} s: it should find everything in place");

        let d = scratch("bare-path");
        for tool in ["bash", "sed", "grep", "head", "id", "realpath"] {
            let real = find_program(tool, &std::env::var_os("PATH").unwrap()).unwrap_or_else(|| panic!("no {tool}"));
            std::os::unix::fs::symlink(real, d.join(tool)).unwrap();
        }
        let e = setup_check(Some(d.as_os_str())).unwrap_err();
        for what in [
            "missing: Rust target x86_64-unknown-none",
            "missing: qemu-system-x86_64 >= 8",
            "missing: tshark (Debian package tshark)",
            "missing: iperf3 (Debian package iperf3)",
            "missing: curl (Debian package curl)",
            "missing: wrk (Debian package wrk)",
        ] {
            assert!(e.contains(what), "`{what}` not reported by --check on a bare PATH:\n{e}");
        }
        assert!(e.lines().all(|l| l.starts_with("missing: ")), "{e}");
        // Still set up: --check installed and changed nothing.
        setup_check(None).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn paths() {
        let ws = workspace_root();
        assert!(ws.join("Cargo.toml").is_file());
        assert!(ws.join("scripts/setup.sh").is_file());
        assert!(kernel_elf_path().ends_with("target/kernel/x86_64-unknown-none/release/arbalest-kernel"));
    }

    fn has_pair(a: &[String], k: &str, v: &str) -> bool {
        a.windows(2).any(|w| w[0] == k && w[1] == v)
    }

    #[test]
    fn net_option_parsing() {
        let (_, _, n) = run_net(&["--net", "none"]);
        assert_eq!(n.mode, NetMode::None);
        let (_, _, n) = run_net(&["--net=tap", "--nic", "igb"]);
        assert_eq!((n.mode, n.nic, n.queues), (NetMode::NewTap, Nic::Igb, None));
        let (_, _, n) = run_net(&["--net", "tap:tap7,queues=3"]);
        assert_eq!((n.mode, n.queues), (NetMode::Tap { ifname: "tap7".into() }, Some(3)));
        let (_, _, n) = run_net(&["--net", "tap:tap7", "--queues", "2"]);
        assert_eq!(n.queues, Some(2));
        let (_, _, n) = run_net(&["--queues", "2", "--net", "tap"]);
        assert_eq!((n.mode, n.queues), (NetMode::NewTap, Some(2)));
        for bad in [
            &["--net", "bridge"][..],
            &["--net", "tap:"],
            &["--net", "tap:a/b"],
            &["--net", "tap:x,queues=0"],
            &["--net", "tap:x,queues=many"],
            &["--net", "tap:x,vhost=on"],
            &["--net", "tap:waytoolonginterfacename"],
            &["--nic", "e1000"],
            &["--queues", "0"],
            &["--queues", "65"],
            &["--net", "user", "--queues", "2"],
            &["--queues", "2"], // default user
            &["--net", "none", "--queues", "1"],
            &["--net", "tap:x,queues=2", "--queues", "3"],
            &["--net"],
        ] {
            assert!(parse_args(bad, None).is_err(), "{bad:?} should fail");
        }
        assert!(parse_args(&["--net", "user", "--queues", "1"], None).is_ok());
    }

    #[test]
    fn queue_defaults() {
        let q = |mode: NetMode, nic: Nic, smp| resolve_queues_for(mode, nic, None, smp);
        assert_eq!(q(NetMode::NewTap, Nic::Virtio, 4), Ok(4));
        assert_eq!(q(NetMode::NewTap, Nic::Virtio, 1), Ok(1));
        assert_eq!(q(NetMode::NewTap, Nic::Igb, 4), Ok(1));
        assert_eq!(q(NetMode::Tap { ifname: "t".into() }, Nic::Virtio, 4), Ok(1));
        assert_eq!(q(NetMode::User, Nic::Virtio, 4), Ok(1));
        assert_eq!(resolve_queues_for(NetMode::NewTap, Nic::Virtio, Some(2), 4), Ok(2));
    }

    fn resolve_queues_for(mode: NetMode, nic: Nic, queues: Option<usize>, smp: usize) -> Result<usize, String> {
        net::resolve_queues(&NetRequest { mode, nic, queues }, smp)
    }

    #[test]
    fn net_qemu_args() {
        let k = Path::new("/k");
        let mut cfg = Config { accel: Accel::Tcg, ..Config::default() };

        cfg.net = Net::tap_in_netns("arb42", "arbtap0", 4);
        let a = qemu_args(&cfg, k);
        assert!(has_pair(&a, "-netdev", "tap,id=n0,ifname=arbtap0,script=no,downscript=no,queues=4"), "{a:?}");
        assert!(has_pair(&a, "-device", "virtio-net-pci,netdev=n0,mq=on,vectors=10,mac=52:54:00:12:34:56"), "{a:?}");
        let w = command_words(&cfg, k);
        assert_eq!(&w[..5], &["ip", "netns", "exec", "arb42", QEMU]);
        assert!(qemu_command_line(&cfg, k).starts_with("ip netns exec arb42 qemu-system-x86_64 -nodefaults "));
        assert_eq!(qemu_command(&cfg, k).get_program(), "ip");

        cfg.net = Net::tap("tap9", 1);
        let a = qemu_args(&cfg, k);
        assert!(has_pair(&a, "-netdev", "tap,id=n0,ifname=tap9,script=no,downscript=no"), "{a:?}");
        assert!(has_pair(&a, "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"), "{a:?}");
        assert_eq!(command_words(&cfg, k)[0], QEMU);

        cfg.net = Net::tap("tap9", 2).with_nic(Nic::Igb);
        let a = qemu_args(&cfg, k);
        assert!(has_pair(&a, "-netdev", "tap,id=n0,ifname=tap9,script=no,downscript=no,queues=2"), "{a:?}");
        assert!(has_pair(&a, "-device", "igb,netdev=n0,mac=52:54:00:12:34:56"), "{a:?}");

        cfg.net = Net::user(net::pick_forwards_with(|_, _| true).unwrap());
        let a = qemu_args(&cfg, k);
        assert!(
            has_pair(
                &a,
                "-netdev",
                "user,id=n0,hostfwd=tcp:127.0.0.1:7007-:7,hostfwd=tcp:127.0.0.1:7009-:9,\
                 hostfwd=tcp:127.0.0.1:7019-:19,hostfwd=udp:127.0.0.1:7007-:7"
            ),
            "{a:?}"
        );
        // The NIC comes before the verbatim extras.
        cfg.extra = vec!["-X".into()];
        let a = qemu_args(&cfg, k);
        assert_eq!(a.last().unwrap(), "-X");
        assert_eq!(a[a.len() - 3], "-device");
    }

    #[test]
    fn busy_ports_move_on() {
        // 7007/tcp and 7008/tcp busy: echo gets 7010 (7009 is discard's).
        let busy = [(Proto::Tcp, 7007), (Proto::Tcp, 7008), (Proto::Udp, 7007)];
        let f = net::pick_forwards_with(|p, port| !busy.contains(&(p, port))).unwrap();
        let ports: Vec<(Proto, u16, u16)> = f.iter().map(|f| (f.proto, f.host_port, f.guest_port)).collect();
        // echo: 7007, 7008 busy -> 7009 free at that point (discard not yet chosen)
        assert_eq!(ports[0], (Proto::Tcp, 7009, 7));
        assert_eq!(ports[1], (Proto::Tcp, 7010, 9));
        assert_eq!(ports[2], (Proto::Tcp, 7019, 19));
        assert_eq!(ports[3], (Proto::Udp, 7008, 7));
        let line = net::forwards_line(&f);
        assert!(line.starts_with("bootimage: user networking: tcp/7009=echo tcp/7010=discard"), "{line}");
        assert!(line.contains("tcp 7007 was busy, using 7009"), "{line}");
        assert_eq!(net::parse_forwards_line(&line, Proto::Tcp, "echo"), Some(7009));
        assert_eq!(net::parse_forwards_line(&line, Proto::Udp, "echo"), Some(7008));
        assert_eq!(net::parse_forwards_line(&line, Proto::Tcp, "chargen"), Some(7019));
        assert_eq!(net::parse_forwards_line(&line, Proto::Udp, "discard"), None);
        assert!(net::pick_forwards_with(|_, _| false).is_err());
        // A real probe: a port we hold is skipped.
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        assert!(!net::pick_user_forwards().unwrap().iter().any(|f| f.proto == Proto::Tcp && f.host_port == port));
    }

    #[test]
    fn prepare_user_and_dry_tap() {
        let mut cfg = Config { accel: Accel::Tcg, ..Config::default() };
        let s = prepare_net(&mut cfg, &NetRequest::default(), false, 1).unwrap();
        assert!(s.namespace.is_none());
        assert_eq!(cfg.append, "log=info ip=10.0.2.15/24,gw=10.0.2.2");
        assert_eq!(s.notes.len(), 1);
        assert!(matches!(cfg.net.backend, Backend::User { ref forwards } if forwards.len() == 4));

        // An ip= given by the user wins.
        let mut cfg = Config { accel: Accel::Tcg, smp: 3, ..Config::default() };
        cfg.push_append("ip=192.0.2.5/24");
        let req = NetRequest { mode: NetMode::NewTap, nic: Nic::Virtio, queues: None };
        let s = prepare_net(&mut cfg, &req, true, 4242).unwrap();
        assert!(s.namespace.is_none(), "a dry run creates nothing");
        assert!(!net::netns_exists("arb4242"));
        assert_eq!(cfg.append, "log=info ip=192.0.2.5/24");
        assert_eq!(cfg.net, Net::tap_in_netns("arb4242", "arbtap0", 3));
        assert!(s.notes.iter().any(|n| n.contains("ip netns add arb4242")), "{:?}", s.notes);
        assert!(s.notes.iter().any(|n| n.contains("ip netns exec arb4242 ping 10.0.0.2")), "{:?}", s.notes);

        let mut cfg = Config { accel: Accel::Tcg, ..Config::default() };
        let req = NetRequest { mode: NetMode::Tap { ifname: "tapx".into() }, nic: Nic::Virtio, queues: Some(2) };
        prepare_net(&mut cfg, &req, false, 1).unwrap();
        assert_eq!(cfg.append, "log=info", "tap:IFNAME adds no ip=");
        assert_eq!(cfg.net, Net::tap("tapx", 2));

        let mut cfg = Config { accel: Accel::Tcg, ..Config::default() };
        let req = NetRequest { mode: NetMode::None, nic: Nic::Virtio, queues: None };
        prepare_net(&mut cfg, &req, false, 1).unwrap();
        assert_eq!((cfg.append.as_str(), &cfg.net), ("log=info", &Net::none()));
    }

    #[test]
    fn netns_names() {
        assert_eq!(net::netns_owner_pid("arb123"), Some(123));
        assert_eq!(net::netns_owner_pid("arbt123n4"), Some(123));
        for bad in ["arb", "arbt", "arbx1", "arb12n", "arbt1nx", "foo123", "arbtap0", "arb1 2"] {
            assert_eq!(net::netns_owner_pid(bad), None, "{bad}");
        }
        assert!(net::append_has_ip("log=info ip=1.2.3.4/8"));
        assert!(!net::append_has_ip("log=info vip=1 ip"));
        assert!(net::valid_ifname("arbtap0") && !net::valid_ifname("a:b") && !net::valid_ifname(""));
    }

    /// Creates and deletes a real namespace with a multi-queue TAP (needs
    /// root and `ip`, as `--net tap` does).
    #[test]
    fn tap_namespace_lifecycle() {
        let name = format!("arbt{}n900", std::process::id());
        let link = |ns: &str| {
            std::process::Command::new("ip").args(["-n", ns, "-d", "link", "show", "arbtap0"]).output().unwrap()
        };
        {
            let ns = TapNamespace::create_default(&name, 4).unwrap_or_else(|e| panic!("{e}"));
            assert!(net::netns_exists(&name));
            let out = link(&name);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("multi_queue") && text.contains("tap"), "{text}");
            assert!(text.contains("UP"), "{text}");
            let addr = std::process::Command::new("ip").args(["-n", &name, "-4", "addr", "show", "arbtap0"]).output().unwrap();
            assert!(String::from_utf8_lossy(&addr.stdout).contains("10.0.0.1/24"));
            assert_eq!(ns.name(), name);
            // Creating it again replaces the stale one.
            std::mem::forget(ns);
            let again = TapNamespace::create_default(&name, 1).unwrap();
            assert!(net::netns_exists(&name));
            let text = String::from_utf8_lossy(&link(&name).stdout).into_owned();
            assert!(!text.contains("multi_queue"), "one queue: no multi_queue flag: {text}");
            drop(again);
        }
        assert!(!net::netns_exists(&name), "namespace left behind");
        assert!(!link(&name).status.success());
        // A failing step leaves nothing behind.
        let bad = format!("arbt{}n901", std::process::id());
        assert!(TapNamespace::create(&bad, "arbtap0", "not-an-address", true).is_err());
        assert!(!net::netns_exists(&bad));
    }
}
