//! Where Arbalest's cycles go: a sampling profiler from outside the guest.
//!
//! QEMU's `-d` tracing is far too slow under load, and `perf` on the QEMU
//! process sees translated code, not guest addresses. Instead this boots
//! Arbalest with a QMP socket and, while a client phase runs, asks QEMU
//! over and over for every vCPU's registers (`info registers -a` through
//! QMP's `human-monitor-command`). Each answer is one sample per CPU: its
//! RIP, whether it is halted (`HLT=1`: idle), and, through the frame-pointer
//! chain (the kernel is built with frame pointers), its caller. Addresses
//! are mapped to functions with the kernel ELF's own symbol table.
//!
//! Sampling pauses the vCPUs for a moment each time, so the figures of a
//! profiled phase are lower than the bench's; the distribution is what
//! counts.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{self, Timing};
use super::{Guest, Images, Knobs, Opts, Phase, RunningVm};
use crate::net::TAP_GUEST_ADDR;

/// Function symbols of an ELF64, sorted by address.
pub struct Symbols {
    syms: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// Reads `.symtab` (STT_FUNC entries) of the ELF at `path`.
    pub fn load(path: &Path) -> Result<Symbols, String> {
        let elf = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Symbols::parse(&elf).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The function symbols of an ELF64 image (the parser the kernel's
    /// own symbol table is made with, [`crate::ksyms`]).
    pub fn parse(elf: &[u8]) -> Result<Symbols, String> {
        let syms = crate::ksyms::function_symbols(elf).ok_or("not an ELF64 file with a symbol table")?;
        if syms.is_empty() {
            return Err("no function symbols (stripped?)".into());
        }
        Ok(Symbols { syms: syms.into_iter().map(|s| (s.addr, u64::from(s.size), s.name)).collect() })
    }

    /// The function containing `addr` (or the nearest one below it when
    /// sizes are missing).
    pub fn lookup(&self, addr: u64) -> Option<&str> {
        let i = self.syms.partition_point(|s| s.0 <= addr);
        let (start, size, name) = self.syms.get(i.checked_sub(1)?)?;
        if *size == 0 || addr < start + size { Some(name) } else { None }
    }
}


/// A QMP connection that speaks HMP through `human-monitor-command`.
pub struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Qmp {
    pub fn connect(path: &Path) -> Result<Qmp, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let s = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => return Err(format!("QMP {}: {e}", path.display())),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
        let w = s.try_clone().map_err(|e| e.to_string())?;
        let mut q = Qmp { r: BufReader::new(s), w };
        q.reply()?; // greeting
        q.execute(&json!({"execute": "qmp_capabilities"}))?;
        Ok(q)
    }

    fn reply(&mut self) -> Result<Value, String> {
        loop {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) => return Err("QMP closed".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("QMP read: {e}")),
            }
            let v: Value = serde_json::from_str(line.trim()).map_err(|e| format!("QMP: {e}: {line}"))?;
            if v.get("event").is_some() {
                continue;
            }
            if let Some(e) = v.get("error") {
                return Err(format!("QMP error: {e}"));
            }
            return Ok(v);
        }
    }

    pub fn execute(&mut self, cmd: &Value) -> Result<Value, String> {
        writeln!(self.w, "{cmd}").map_err(|e| format!("QMP write: {e}"))?;
        self.reply()
    }

    /// One HMP command's text output.
    pub fn hmp(&mut self, line: &str) -> Result<String, String> {
        let v = self.execute(&json!({"execute": "human-monitor-command", "arguments": {"command-line": line}}))?;
        Ok(v["return"].as_str().unwrap_or("").to_string())
    }
}

/// One vCPU's state in an `info registers -a` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuSample {
    pub cpu: usize,
    pub rip: u64,
    pub rbp: u64,
    pub halted: bool,
}

/// Parses `info registers -a` (blocks headed `CPU#n`).
pub fn parse_registers(text: &str) -> Vec<CpuSample> {
    let mut out = Vec::new();
    let mut cur: Option<CpuSample> = None;
    let reg = |line: &str, name: &str| -> Option<u64> {
        let i = line.find(&format!("{name}="))?;
        let v = &line[i + name.len() + 1..];
        let hex: String = v.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        u64::from_str_radix(&hex, 16).ok()
    };
    for line in text.lines() {
        if let Some(n) = line.trim().strip_prefix("CPU#") {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            let cpu = n.chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap_or(0);
            cur = Some(CpuSample { cpu, rip: 0, rbp: 0, halted: false });
            continue;
        }
        let Some(c) = cur.as_mut() else { continue };
        if (line.starts_with("RSI=") || line.contains(" RBP="))
            && let Some(v) = reg(line, "RBP") {
                c.rbp = v;
            }
        if line.starts_with("RIP=") {
            c.rip = reg(line, "RIP").unwrap_or(0);
            c.halted = line.contains("HLT=1");
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out
}

/// Counts per key, most first.
fn top(counts: &HashMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.iter().map(|(k, &c)| (k.clone(), c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// Phases worth profiling (one of each kind).
pub const PROFILED: [Phase; 6] = [Phase::StreamTx, Phase::StreamRx, Phase::Rr1, Phase::Crr, Phase::UdpRr, Phase::UdpFlood];

/// Boots Arbalest with `k` and samples it during each profiled phase for
/// `secs`; returns a Markdown report.
pub fn profile(k: &Knobs, opts: &Opts, images: &Images, secs: f64) -> Result<String, String> {
    let kernel = images.arbalest.as_ref().ok_or("no Arbalest kernel")?;
    let syms = Symbols::load(kernel)?;
    eprintln!("bench: profiling arbalest {k}: booting with QMP");
    let mut vm = RunningVm::boot(Guest::Arbalest, k, opts, images, true)?;
    let qmp_path = vm.qmp.clone().ok_or("no QMP socket")?;
    let mut qmp = Qmp::connect(&qmp_path)?;
    let mut out = format!("### Where Arbalest's CPU time goes: {k}\n\n");
    out.push_str(&format!(
        "Sampled every vCPU's RIP through QMP (`info registers -a`) while each phase ran for {secs} s; \
         caller from the frame-pointer chain. % of non-idle samples.\n\n"
    ));
    let phases: Vec<Phase> =
        PROFILED.iter().copied().filter(|p| opts.phases.contains(p)).collect();
    for phase in phases {
        eprintln!("bench: profiling {}", phase.name());
        let ns = vm.ns().to_string();
        let (parallel, senders) = (opts.parallel, opts.flood_senders);
        let t = Timing { warmup: Duration::ZERO, duration: Duration::from_secs_f64(secs) };
        let handle =
            std::thread::spawn(move || client::in_netns(&ns, || phase.run(TAP_GUEST_ADDR, parallel, senders, t)));
        let mut leaf: HashMap<String, u64> = HashMap::new();
        let mut pair: HashMap<String, u64> = HashMap::new();
        let (mut total, mut idle, mut rounds) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        while !handle.is_finished() && start.elapsed() < Duration::from_secs_f64(secs + 60.0) {
            let regs = qmp.hmp("info registers -a")?;
            rounds += 1;
            for s in parse_registers(&regs) {
                total += 1;
                if s.halted {
                    idle += 1;
                    continue;
                }
                let f = syms.lookup(s.rip).map(str::to_string).unwrap_or_else(|| format!("{:#x}", s.rip));
                *leaf.entry(f.clone()).or_default() += 1;
                // Caller: the return address above the saved frame pointer
                // (the kernel keeps frame pointers). Every 4th round only:
                // it costs two more monitor commands per CPU.
                if rounds % 4 == 0 && s.rbp != 0 {
                    let mem = qmp.hmp(&format!("cpu {}", s.cpu)).and_then(|_| qmp.hmp(&format!("x /2gx {:#x}", s.rbp)));
                    if let Ok(text) = mem {
                        // `ADDR: 0xSAVED_RBP 0xRETURN_ADDRESS`
                        let words: Vec<u64> = text
                            .split_whitespace()
                            .filter(|w| !w.ends_with(':'))
                            .filter_map(|w| w.strip_prefix("0x"))
                            .filter_map(|h| u64::from_str_radix(h, 16).ok())
                            .collect();
                        if let Some(&ret) = words.get(1)
                            && let Some(c) = syms.lookup(ret) {
                                *pair.entry(format!("{f} ← {c}")).or_default() += 1;
                            }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let sampled_secs = start.elapsed().as_secs_f64();
        let result = handle.join().map_err(|_| "client panicked".to_string())?;
        let busy = total - idle;
        let mut by_part: HashMap<String, u64> = HashMap::new();
        for (f, c) in &leaf {
            *by_part.entry(component(f)).or_default() += c;
        }
        // Guest vCPU time per unit of work: busy share × CPUs × time.
        let cpus = if rounds > 0 { total as f64 / rounds as f64 } else { 0.0 };
        let busy_secs = if total > 0 { busy as f64 / total as f64 * cpus * sampled_secs } else { 0.0 };
        let per_unit = match &result {
            Ok(f) => {
                let d = f.details();
                if let Some(b) = d["bytes"].as_u64().filter(|&b| b > 0) {
                    format!(", ≈{:.0} µs of busy vCPU time per MB", busy_secs * 1e6 / (b as f64 / 1e6))
                } else if let Some(n) = d["transactions"].as_u64().or(d["connections"].as_u64()).or(d["answered"].as_u64()).filter(|&n| n > 0) {
                    format!(", ≈{:.1} µs of busy vCPU time per transaction", busy_secs * 1e6 / n as f64)
                } else {
                    String::new()
                }
            }
            Err(_) => String::new(),
        };
        let figure = match &result {
            Ok(f) => format!("{:.1} {} while sampled", f.value(), f.unit()),
            Err(e) => format!("client failed: {e}"),
        };
        out.push_str(&format!(
            "#### {} — {figure}\n\n{total} CPU samples ({rounds} rounds), {:.0}% busy{per_unit}\n\n| % busy | component |\n|---:|---|\n",
            phase.title(opts.parallel),
            if total > 0 { busy as f64 * 100.0 / total as f64 } else { 0.0 }
        ));
        for (f, c) in top(&by_part, 8) {
            out.push_str(&format!("| {:.1} | {f} |\n", c as f64 * 100.0 / busy.max(1) as f64));
        }
        out.push_str("\n| % busy | function |\n|---:|---|\n");
        for (f, c) in top(&leaf, 15) {
            out.push_str(&format!("| {:.1} | `{}` |\n", c as f64 * 100.0 / busy.max(1) as f64, short(&f)));
        }
        let pairs_total: u64 = pair.values().sum();
        if pairs_total > 0 {
            out.push_str("\n| % of caller samples | function ← caller |\n|---:|---|\n");
            for (f, c) in top(&pair, 10) {
                out.push_str(&format!("| {:.1} | `{}` |\n", c as f64 * 100.0 / pairs_total as f64, short(&f)));
            }
        }
        out.push('\n');
        if !vm.alive() {
            return Err(format!("Arbalest died while profiled; console:\n{}", vm.tail(2000)));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    vm.stop();
    Ok(out)
}

/// The part of the system a function belongs to: `arbalest_kernel::sched`,
/// `arbalest_drivers::virtio`, `smoltcp::socket`, `alloc`, ...
pub fn component(f: &str) -> String {
    let f = f.trim_start_matches('<');
    if f.starts_with("memcpy") || f.starts_with("memset") || f.starts_with("memmove") || f.starts_with("memcmp") {
        return "mem* (compiler builtins)".into();
    }
    if f.contains("rust_alloc") || f.contains("rust_dealloc") || f.contains("rust_realloc") || f.starts_with("linked_list_allocator") {
        return "heap allocator".into();
    }
    let parts: Vec<&str> = f.split("::").collect();
    let n = if parts[0].starts_with("arbalest_") || parts[0] == "smoltcp" { 2 } else { 1 };
    parts[..n.min(parts.len())].join("::").split([' ', '<']).next().unwrap_or(f).to_string()
}

/// Drops generic arguments (`Vec<u8>` → `Vec<…>`) to keep names
/// readable; a qualified-self `<T as Trait>` stays.
fn short(name: &str) -> String {
    let mut out = String::new();
    let mut skip = 0usize;
    for ch in name.chars() {
        if skip > 0 {
            match ch {
                '<' => skip += 1,
                '>' => skip -= 1,
                _ => {}
            }
            continue;
        }
        if ch == '<' && out.chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            out.push_str("<…>");
            skip = 1;
            continue;
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short("<smoltcp::iface::Interface<'a> as core::fmt::Debug>::fmt"), "<smoltcp::iface::Interface<…> as core::fmt::Debug>::fmt");
        assert_eq!(short("alloc::vec::Vec<u8>::push"), "alloc::vec::Vec<…>::push");
    }

    #[test]
    fn components() {
        assert_eq!(component("<arbalest_drivers::hal::MmioRegion as arbalest_drivers::hal::Mmio>::write16"), "arbalest_drivers::hal");
        assert_eq!(component("arbalest_kernel::sched::cpu::schedule"), "arbalest_kernel::sched");
        assert_eq!(component("smoltcp::socket::tcp::Socket::process"), "smoltcp::socket");
        assert_eq!(component("memcpy"), "mem* (compiler builtins)");
        assert_eq!(component("_RNvCsfLfy6EI15iL_7___rustc12___rust_alloc"), "heap allocator");
        assert_eq!(component("core::ptr::drop_in_place<…>"), "core");
    }

    #[test]
    fn registers() {
        let text = "CPU#0\nRAX=0000000000000000 RBX=0000000000000001 RCX=0 RDX=0\nRSI=0000000000000000 RDI=0000000000000000 RBP=0000000000123450 RSP=0000000000123400\n\
                    RIP=0000000000101234 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\nES =0000\nCPU#1\nRSI=0 RDI=0 RBP=00000000000abcd0 RSP=0\nRIP=0000000000105678 RFL=00000202 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0\n";
        let s = parse_registers(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], CpuSample { cpu: 0, rip: 0x101234, rbp: 0x123450, halted: true });
        assert_eq!(s[1], CpuSample { cpu: 1, rip: 0x105678, rbp: 0xabcd0, halted: false });
    }

    #[test]
    fn symbols_of_this_binary() {
        let me = std::env::current_exe().unwrap();
        let s = Symbols::load(&me).unwrap();
        assert!(s.syms.len() > 100);
        let (a, _, name) = s.syms.iter().find(|x| x.1 > 4).unwrap().clone();
        assert_eq!(s.lookup(a + 1), Some(name.as_str()));
    }
}
