//! The squeue tunables of one [`SquedSet`](super::SquedSet), read on every
//! entry and changed at run time by the admin commands (illumos sets them
//! in `/etc/system`; we take them through `ipadm`/`ndd`).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::SqMode;

/// Default `ip_squeue_wait`: 10 ms (the seed's value).
pub const IP_SQUEUE_WAIT_DEFAULT_MS: u32 = 10;
/// Largest `ip_squeue_wait` accepted, in ms.
pub const IP_SQUEUE_WAIT_MAX_MS: u32 = 1000;
/// Default `tcp_squeue_wput`: 2 (process your own and drain).
pub const TCP_SQUEUE_WPUT_DEFAULT: u32 = 2;
/// Default `squeue_drain_ms`: 20 ms.
pub const SQUEUE_DRAIN_DEFAULT_MS: u32 = 20;
/// Largest `squeue_drain_ms` accepted.
pub const SQUEUE_DRAIN_MAX_MS: u32 = 1000;

const NS_PER_MS: u64 = 1_000_000;

/// A value outside a tunable's range; nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqConfigError {
    /// The tunable's name.
    pub name: &'static str,
    /// The value refused.
    pub value: u64,
}

/// The squeue tunables, each an atomic so that readers take no lock.
#[derive(Debug)]
pub struct SqConfig {
    wait_ms: AtomicU32,
    wput: AtomicU32,
    fanout: AtomicU32,
    bind: AtomicU32,
    drain_ns: AtomicU64,
}

impl Default for SqConfig {
    fn default() -> Self {
        SqConfig::new()
    }
}

impl SqConfig {
    /// The defaults: `ip_squeue_wait` 10 ms, `tcp_squeue_wput` 2,
    /// `ip_squeue_fanout` 0, `ip_squeue_bind` 1, `squeue_drain_ms` 20.
    pub const fn new() -> SqConfig {
        SqConfig {
            wait_ms: AtomicU32::new(IP_SQUEUE_WAIT_DEFAULT_MS),
            wput: AtomicU32::new(TCP_SQUEUE_WPUT_DEFAULT),
            fanout: AtomicU32::new(0),
            bind: AtomicU32::new(1),
            drain_ns: AtomicU64::new(SQUEUE_DRAIN_DEFAULT_MS as u64 * NS_PER_MS),
        }
    }

    /// `ip_squeue_wait` in ms: how long queued entries wait for an
    /// entering thread before the worker runs (0 = wake it at once).
    pub fn ip_squeue_wait_ms(&self) -> u32 {
        self.wait_ms.load(Ordering::Relaxed)
    }

    /// `ip_squeue_wait` in ns, the delay passed to
    /// [`SqEnv::wake_worker`](super::SqEnv::wake_worker).
    pub fn worker_wait_ns(&self) -> u64 {
        u64::from(self.ip_squeue_wait_ms()) * NS_PER_MS
    }

    /// Sets `ip_squeue_wait` (0..=1000 ms).
    pub fn set_ip_squeue_wait_ms(&self, ms: u32) -> Result<(), SqConfigError> {
        if ms > IP_SQUEUE_WAIT_MAX_MS {
            return Err(SqConfigError { name: "ip_squeue_wait", value: u64::from(ms) });
        }
        self.wait_ms.store(ms, Ordering::Relaxed);
        Ok(())
    }

    /// `tcp_squeue_wput`: 1 = the sender processes its own entry but does
    /// not drain others, 2 = it processes its own and drains.
    pub fn tcp_squeue_wput(&self) -> u32 {
        self.wput.load(Ordering::Relaxed)
    }

    /// Sets `tcp_squeue_wput` (1 or 2).
    pub fn set_tcp_squeue_wput(&self, v: u32) -> Result<(), SqConfigError> {
        if !(1..=2).contains(&v) {
            return Err(SqConfigError { name: "tcp_squeue_wput", value: u64::from(v) });
        }
        self.wput.store(v, Ordering::Relaxed);
        Ok(())
    }

    /// The mode a sending thread enters with: `tcp_squeue_wput` 1 →
    /// [`SqMode::NoDrain`], 2 → [`SqMode::Process`] (illumos'
    /// `tcp_squeue_switch`).
    pub fn send_mode(&self) -> SqMode {
        if self.tcp_squeue_wput() == 1 { SqMode::NoDrain } else { SqMode::Process }
    }

    /// `ip_squeue_fanout`: 0 = a new conn takes the squeue of the CPU it
    /// starts on, 1 = new conns spread round-robin over all squeues.
    pub fn ip_squeue_fanout(&self) -> u32 {
        self.fanout.load(Ordering::Relaxed)
    }

    /// Sets `ip_squeue_fanout` (0 or 1).
    pub fn set_ip_squeue_fanout(&self, v: u32) -> Result<(), SqConfigError> {
        if v > 1 {
            return Err(SqConfigError { name: "ip_squeue_fanout", value: u64::from(v) });
        }
        self.fanout.store(v, Ordering::Relaxed);
        Ok(())
    }

    /// `ip_squeue_bind`: 1 = worker threads bound to their CPU. Recorded
    /// here for the kernel, which binds the threads.
    pub fn ip_squeue_bind(&self) -> u32 {
        self.bind.load(Ordering::Relaxed)
    }

    /// Sets `ip_squeue_bind` (0 or 1).
    pub fn set_ip_squeue_bind(&self, v: u32) -> Result<(), SqConfigError> {
        if v > 1 {
            return Err(SqConfigError { name: "ip_squeue_bind", value: u64::from(v) });
        }
        self.bind.store(v, Ordering::Relaxed);
        Ok(())
    }

    /// `squeue_drain_ms` in ns: how long a thread that is not the worker
    /// may drain before it hands the rest to the worker.
    pub fn drain_ns(&self) -> u64 {
        self.drain_ns.load(Ordering::Relaxed)
    }

    /// Sets `squeue_drain_ms` (1..=1000 ms).
    pub fn set_drain_ms(&self, ms: u32) -> Result<(), SqConfigError> {
        if ms == 0 || ms > SQUEUE_DRAIN_MAX_MS {
            return Err(SqConfigError { name: "squeue_drain_ms", value: u64::from(ms) });
        }
        self.drain_ns.store(u64::from(ms) * NS_PER_MS, Ordering::Relaxed);
        Ok(())
    }

    /// Sets the drain bound in ns (1 ns ..= 1000 ms), finer than
    /// [`set_drain_ms`](Self::set_drain_ms) for tests and tuning.
    pub fn set_drain_ns(&self, ns: u64) -> Result<(), SqConfigError> {
        if ns == 0 || ns > u64::from(SQUEUE_DRAIN_MAX_MS) * NS_PER_MS {
            return Err(SqConfigError { name: "squeue_drain_ns", value: ns });
        }
        self.drain_ns.store(ns, Ordering::Relaxed);
        Ok(())
    }
}
