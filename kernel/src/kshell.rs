//! The shell thread on the serial console: the kernel's side of
//! [`crate::shell::ShellHost`], the line-editing loop, and the commands
//! that need the kernel itself (`ktest`, `threads`, `meminfo`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use crate::console::{self, RawConsole};
use crate::dev::qemu_exit;
use crate::shell::{Command, CpuInfo, CpuStats, Ctx, LineEditor, LineEvent, Outcome, Shell, ShellHost};
use crate::time::clock;
use crate::{percpu, sched};

/// The prompt.
pub const PROMPT: &str = "arbalest# ";

struct KernelHost;

/// The kernel's symbol table, read from fw_cfg on first use.
fn ksyms() -> Option<&'static crate::prof::ksyms::Ksyms> {
    static KSYMS: spin::Once<Option<crate::prof::ksyms::Ksyms>> = spin::Once::new();
    KSYMS
        .call_once(|| {
            let bytes = crate::dev::fwcfg::read_file(crate::prof::ksyms::FW_CFG_NAME)?;
            crate::prof::ksyms::Ksyms::parse(&bytes).ok()
        })
        .as_ref()
}

impl ShellHost for KernelHost {
    fn cpus(&self) -> Vec<CpuInfo> {
        let boot = clock::boot_unix();
        percpu::all()
            .map(|p| CpuInfo {
                id: p.id as u32,
                apic_id: p.apic_id,
                online: p.online.load(Ordering::Acquire),
                online_since_unix: boot + p.online_since_ns.load(Ordering::Relaxed) / 1_000_000_000,
            })
            .collect()
    }

    fn cpu_stats(&self) -> Vec<CpuStats> {
        let now = clock::now_ns();
        percpu::all()
            .map(|p| {
                let since = p.online_since_ns.load(Ordering::Relaxed);
                CpuStats {
                    id: p.id as u32,
                    interrupts: p.stats.interrupts.load(Ordering::Relaxed),
                    ipis: p.stats.ipis.load(Ordering::Relaxed),
                    ticks: p.stats.ticks.load(Ordering::Relaxed),
                    csw: p.stats.csw.load(Ordering::Relaxed),
                    icsw: p.stats.icsw.load(Ordering::Relaxed),
                    idle_ns: p.sched.idle_ns_now(p.stats.idle_ns.load(Ordering::Relaxed)),
                    total_ns: now.saturating_sub(since),
                }
            })
            .collect()
    }

    fn monotonic_ns(&self) -> u64 {
        clock::now_ns()
    }

    fn unix_time(&self) -> u64 {
        clock::unix_now()
    }

    fn boot_unix_time(&self) -> u64 {
        clock::boot_unix()
    }

    fn load_average(&self) -> [u32; 3] {
        sched::load_average()
    }

    fn sleep_ms(&self, ms: u64) {
        // Sleep in slices so Ctrl-C stops a long interval promptly.
        let end = clock::now_ns() + ms * 1_000_000;
        while clock::now_ns() < end && !self.interrupted() {
            sched::sleep_until(end.min(clock::now_ns() + 50_000_000));
        }
    }

    fn profile_start(&self) -> Result<(), &'static str> {
        // Read the symbol table first, so that its slow port reads are
        // not in the profile.
        let _ = ksyms();
        if crate::prof::PROFILE.start() {
            Ok(())
        } else {
            Err("a profile is already running")
        }
    }

    fn profile_stop(&self) -> crate::prof::sampler::Samples {
        crate::prof::PROFILE.stop()
    }

    fn ksym(&self, pc: u64) -> Option<(String, u64)> {
        ksyms()?.lookup(pc).map(|(name, off)| (String::from(name), off))
    }

    fn interrupted(&self) -> bool {
        console::INTERRUPT.load(Ordering::Acquire)
    }

    fn clear_interrupt(&self) {
        console::INTERRUPT.store(false, Ordering::Release);
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }
}

fn poweroff(code: u32) -> ! {
    qemu_exit::exit(code)
}

/// The shell thread's body.
pub fn run() {
    let mut shell = Shell::new();
    for c in COMMANDS.iter().chain(crate::net::cmds::COMMANDS) {
        shell.register(*c);
    }
    let host = KernelHost;
    let ncpu = percpu::all().filter(|p| p.online.load(Ordering::Acquire)).count();
    let _ = write!(
        RawConsole,
        "\r\nArbalest {} — {} CPU{} on-line. Type 'help' for commands.\r\n{PROMPT}",
        env!("CARGO_PKG_VERSION"),
        ncpu,
        if ncpu == 1 { "" } else { "s" }
    );
    let mut ed = LineEditor::new();
    loop {
        let b = console::read_blocking();
        match ed.feed(b, &mut RawConsole) {
            Some(LineEvent::Line(line)) => {
                match shell.execute(&line, &host, &mut RawConsole) {
                    Outcome::Exit(code) => poweroff(code),
                    Outcome::Status(_) => {}
                }
                if console::INTERRUPT.swap(false, Ordering::AcqRel) {
                    console::discard_pending_interrupt();
                }
                console::write_raw(PROMPT);
            }
            Some(LineEvent::Interrupt) => {
                console::INTERRUPT.store(false, Ordering::Release);
                console::write_raw(PROMPT);
            }
            Some(LineEvent::Eof) => {
                console::write_raw("\r\n");
                poweroff(0)
            }
            None => {}
        }
    }
}

const COMMANDS: &[Command] = &[
    Command {
        name: "ktest",
        usage: "ktest [-l] [name]",
        summary: "list the built-in kernel tests (boot with test=NAME to run one)",
        run: cmd_ktest,
    },
    Command {
        name: "threads",
        usage: "threads",
        summary: "list kernel threads: id, CPU, priority, state, switches, CPU time",
        run: cmd_threads,
    },
    Command { name: "meminfo", usage: "meminfo", summary: "physical memory and heap use", run: cmd_meminfo },
];

fn cmd_ktest(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    let Some(p) = ctx.getopt(argv, "l") else { return crate::shell::EXIT_USAGE };
    if p.operands.len() > 1 {
        return ctx.usage_error();
    }
    for (n, d, _) in crate::ktest::TESTS {
        if p.operands.first().is_none_or(|o| o == n) {
            let _ = writeln!(ctx.out, "{n:<18} {d}");
        }
    }
    0
}

fn cmd_threads(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    if argv.len() > 1 {
        return ctx.usage_error();
    }
    let _ = writeln!(ctx.out, "{:>4} {:<16} {:>3} {:<6} {:<5} {:>10} {:>10}", "ID", "NAME", "CPU", "PRI", "STATE", "SWITCHES", "TIME(ms)");
    for t in sched::threads() {
        let _ = writeln!(
            ctx.out,
            "{:>4} {:<16} {:>3} {:<6} {:<5} {:>10} {:>10}",
            t.id,
            t.name,
            t.cpu,
            t.priority.name(),
            t.state,
            t.switches,
            t.run_ns / 1_000_000
        );
    }
    0
}

fn cmd_meminfo(ctx: &mut Ctx<'_>, argv: &[&str]) -> i32 {
    if argv.len() > 1 {
        return ctx.usage_error();
    }
    let (free, total) = crate::mem::frame::stats();
    let (used, hfree) = crate::mem::heap::stats();
    let _ = writeln!(ctx.out, "physical memory: {} KiB total, {} KiB free", total / 1024, free * 4);
    let _ = writeln!(ctx.out, "kernel heap:     {} KiB used, {} KiB free", used / 1024, hfree / 1024);
    let _: Option<String> = None;
    0
}
