//! What the shell needs from the kernel: the [`ShellHost`] trait and the
//! plain data it returns.

use alloc::string::String;
use alloc::vec::Vec;
use core::any::Any;

/// One processor, as `psrinfo` shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// Logical CPU id (0 is the boot CPU).
    pub id: u32,
    /// Local APIC id.
    pub apic_id: u32,
    /// The CPU is running and taking work.
    pub online: bool,
    /// Wall-clock time (Unix seconds) of the last state change.
    pub online_since_unix: u64,
}

/// Per-CPU counters, cumulative since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Logical CPU id.
    pub id: u32,
    /// Interrupts taken (device, timer and IPI).
    pub interrupts: u64,
    /// Inter-processor interrupts received.
    pub ipis: u64,
    /// Timer (clock) interrupts among `interrupts`.
    pub ticks: u64,
    /// Context switches.
    pub csw: u64,
    /// Involuntary context switches (preemptions).
    pub icsw: u64,
    /// Time spent idle.
    pub idle_ns: u64,
    /// Time accounted in total (idle + busy).
    pub total_ns: u64,
}

/// The kernel services the shell commands use.
///
/// All methods take `&self`: the kernel's implementation reads shared state
/// (atomics, locks); a test implementation uses cells.
pub trait ShellHost {
    /// Every CPU the kernel knows, in id order.
    fn cpus(&self) -> Vec<CpuInfo>;
    /// Counters of every CPU, in id order.
    fn cpu_stats(&self) -> Vec<CpuStats>;
    /// Nanoseconds since boot.
    fn monotonic_ns(&self) -> u64;
    /// Wall-clock time, Unix seconds.
    fn unix_time(&self) -> u64;
    /// Wall-clock time of boot, Unix seconds.
    fn boot_unix_time(&self) -> u64;
    /// Load averages over 1, 5 and 15 minutes, in hundredths.
    fn load_average(&self) -> [u32; 3];
    /// Sleeps (or waits) for `ms` milliseconds.
    fn sleep_ms(&self, ms: u64);
    /// True once the user pressed a key or Ctrl-C since the last
    /// [`ShellHost::clear_interrupt`]; repeating commands stop on it.
    fn interrupted(&self) -> bool;
    /// Forgets any earlier key press; called as each command starts.
    fn clear_interrupt(&self);
    /// The kernel's version string.
    fn version(&self) -> &str;
    /// Starts the profiling interrupt's counters (`lockstat -I`); the
    /// reason when it cannot (a profile already running, no profiler).
    fn profile_start(&self) -> Result<(), &'static str> {
        Err("the profiling interrupt is not available")
    }
    /// Stops them and returns what they counted.
    fn profile_stop(&self) -> crate::prof::sampler::Samples {
        crate::prof::sampler::Samples::default()
    }
    /// The function holding `pc` and the offset in it, when the kernel has
    /// its symbol table.
    fn ksym(&self, _pc: u64) -> Option<(String, u64)> {
        None
    }
    /// The host as [`Any`], so that commands registered by the kernel can
    /// reach its concrete type (`ctx.host.as_any()?.downcast_ref::<K>()`).
    /// Hosts that do not need this keep the default.
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }
}
