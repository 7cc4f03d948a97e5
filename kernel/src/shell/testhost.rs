//! A fake [`ShellHost`] for the shell's unit tests: a clock that moves only
//! when a command sleeps, CPUs whose counters grow with it, and a key press
//! that can be scheduled.

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::{CpuInfo, CpuStats, Outcome, Shell, ShellHost};

/// 2026-11-23 22:00:00 UTC.
pub const BOOT_UNIX: u64 = 1_795_471_200;

pub struct FakeHost {
    pub cpus: Vec<CpuInfo>,
    pub stats: RefCell<Vec<CpuStats>>,
    pub now_ns: Cell<u64>,
    pub load: [u32; 3],
    pub interrupted: Cell<bool>,
    /// The key is "pressed" once this much time has been slept in total.
    pub interrupt_after_ms: Cell<Option<u64>>,
    pub slept_ms: Cell<u64>,
    pub sleeps: Cell<u32>,
    /// What `profile_stop` returns; `None`: no profiler.
    pub profile: RefCell<Option<crate::prof::sampler::Samples>>,
    /// Function names by start: `(start, size, name)`.
    pub syms: Vec<(u64, u64, &'static str)>,
}

impl FakeHost {
    /// `n` CPUs, all on-line since boot, CPU `i` with APIC id `2 * i`; 60 s
    /// after boot; every CPU took 1000 interrupts, 100 IPIs, 500 csw, 50
    /// icsw and was 90% idle.
    pub fn new(n: u32) -> FakeHost {
        let cpus = (0..n)
            .map(|id| CpuInfo {
                id,
                apic_id: id * 2,
                online: true,
                online_since_unix: BOOT_UNIX,
            })
            .collect();
        let stats = (0..n)
            .map(|id| CpuStats {
                id,
                interrupts: 1000,
                ipis: 100,
                ticks: 600,
                csw: 500,
                icsw: 50,
                idle_ns: 54_000_000_000,
                total_ns: 60_000_000_000,
            })
            .collect();
        FakeHost {
            cpus,
            stats: RefCell::new(stats),
            now_ns: Cell::new(60_000_000_000),
            load: [0, 0, 0],
            interrupted: Cell::new(false),
            interrupt_after_ms: Cell::new(None),
            slept_ms: Cell::new(0),
            sleeps: Cell::new(0),
            profile: RefCell::new(None),
            syms: Vec::new(),
        }
    }

    /// Moves the clock; each CPU's counters grow per millisecond by
    /// `2 + id` interrupts, 1 IPI, 3 csw, 1 icsw, and it is 75% idle.
    pub fn advance_ms(&self, ms: u64) {
        self.now_ns.set(self.now_ns.get() + ms * 1_000_000);
        for s in self.stats.borrow_mut().iter_mut() {
            s.interrupts += (2 + u64::from(s.id)) * ms;
            s.ipis += ms;
            s.ticks += ms / 2;
            s.csw += 3 * ms;
            s.icsw += ms;
            s.idle_ns += 750_000 * ms;
            s.total_ns += 1_000_000 * ms;
        }
    }
}

impl ShellHost for FakeHost {
    fn cpus(&self) -> Vec<CpuInfo> {
        self.cpus.clone()
    }
    fn cpu_stats(&self) -> Vec<CpuStats> {
        self.stats.borrow().clone()
    }
    fn monotonic_ns(&self) -> u64 {
        self.now_ns.get()
    }
    fn unix_time(&self) -> u64 {
        BOOT_UNIX + self.now_ns.get() / 1_000_000_000
    }
    fn boot_unix_time(&self) -> u64 {
        BOOT_UNIX
    }
    fn load_average(&self) -> [u32; 3] {
        self.load
    }
    fn sleep_ms(&self, ms: u64) {
        self.sleeps.set(self.sleeps.get() + 1);
        self.slept_ms.set(self.slept_ms.get() + ms);
        self.advance_ms(ms);
        if self
            .interrupt_after_ms
            .get()
            .is_some_and(|at| self.slept_ms.get() >= at)
        {
            self.interrupted.set(true);
        }
    }
    fn interrupted(&self) -> bool {
        self.interrupted.get()
    }
    fn clear_interrupt(&self) {
        self.interrupted.set(false);
    }
    fn profile_start(&self) -> Result<(), &'static str> {
        match &*self.profile.borrow() {
            Some(_) => Ok(()),
            None => Err("the profiling interrupt is not available"),
        }
    }
    fn profile_stop(&self) -> crate::prof::sampler::Samples {
        self.profile.borrow().clone().unwrap_or_default()
    }
    fn ksym(&self, pc: u64) -> Option<(String, u64)> {
        self.syms.iter().find(|(a, n, _)| (*a..a + n).contains(&pc)).map(|(a, _, name)| (String::from(*name), pc - a))
    }
    fn version(&self) -> &str {
        "arbalest-test"
    }
}

/// Runs one line, returning the outcome and everything printed.
pub fn run(shell: &mut Shell, host: &FakeHost, line: &str) -> (Outcome, String) {
    let mut out = String::new();
    let outcome = shell.execute(line, host, &mut out);
    (outcome, out)
}
