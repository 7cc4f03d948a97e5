//! Test harness: boot the real kernel in QEMU, drive its serial shell, read
//! its exit code.
//!
//! Every failure panics with the full serial transcript so a failing test
//! says what the kernel printed.
//!
//! Networked tests: [`net`] (the kernel on a multi-queue TAP in a network
//! namespace the test creates, [`net::NetVm`], and clients that run inside
//! that namespace), [`frames`] (crafted and malformed Ethernet frames),
//! [`peer`] (a Linux stand-in for the kernel, to check the harness alone),
//! [`impair`] (a userspace stand-in for netem: delay, reordering, loss),
//! [`netbench`] (load generators of the `net` bench).

pub mod frames;
pub mod impair;
pub mod net;
pub mod netbench;
pub mod peer;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use bootimage::{Accel, Config, ExitKind};

/// The shell prompt (with its trailing space).
pub const PROMPT: &str = "arbalest# ";

/// From QEMU spawn to the first prompt (TCG, 2 host cores, parallel tests).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default wait for one shell command's prompt.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// Default wait for QEMU to exit after `poweroff`.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default wait for a kernel test (`test=NAME`) to finish.
pub const KTEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Builds the kernel once per process (set-up + cargo build); panics with the
/// build output on failure.
pub fn kernel() -> PathBuf {
    match bootimage::build_kernel() {
        Ok(p) => p,
        Err(e) => panic!("cannot build the kernel:\n{e}"),
    }
}

// ---------------------------------------------------------------------------
// VM slots: bound how many QEMUs run at once so that timing inside the guests
// stays sane on a small host. `ARBALEST_TEST_VMS` overrides the default (the
// host's parallelism).

struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
}

static SLOTS: Slots = Slots { used: Mutex::new(0), freed: Condvar::new() };

fn max_vms() -> usize {
    std::env::var("ARBALEST_TEST_VMS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

thread_local! {
    /// Slots held by the current thread.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Permission to run one QEMU; released on drop (and by [`Vm::wait_exit`]
/// once QEMU has exited).
pub struct VmSlot(());

impl VmSlot {
    /// Blocks until fewer than the allowed number of QEMUs run. A thread that
    /// already holds a slot never waits (a test with several VMs must not
    /// deadlock against itself); it just oversubscribes.
    pub fn acquire() -> VmSlot {
        let max = max_vms();
        let mut used = SLOTS.used.lock().unwrap_or_else(|e| e.into_inner());
        if HELD.with(|h| h.get()) == 0 {
            while *used >= max {
                used = SLOTS.freed.wait(used).unwrap_or_else(|e| e.into_inner());
            }
        }
        *used += 1;
        HELD.with(|h| h.set(h.get() + 1));
        VmSlot(())
    }
}

impl Drop for VmSlot {
    fn drop(&mut self) {
        let mut used = SLOTS.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        HELD.with(|h| h.set(h.get().saturating_sub(1)));
        SLOTS.freed.notify_one();
    }
}

// ---------------------------------------------------------------------------
// Serial output collection.

/// Text decoded so far: lossy UTF-8 with "\r\n" turned into "\n".
#[derive(Default)]
struct Text {
    text: String,
    /// Bytes of an incomplete UTF-8 sequence at the end of the last read.
    partial: Vec<u8>,
    /// The last byte seen was '\r' (held back until we know what follows).
    cr: bool,
    eof: bool,
}

impl Text {
    fn push_char(&mut self, ch: char) {
        if self.cr {
            self.cr = false;
            if ch != '\n' {
                self.text.push('\r');
            }
        }
        if ch == '\r' {
            self.cr = true;
        } else {
            self.text.push(ch);
        }
    }

    fn push_str(&mut self, s: &str) {
        for ch in s.chars() {
            self.push_char(ch);
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        let mut buf = std::mem::take(&mut self.partial);
        buf.extend_from_slice(bytes);
        let mut rest: &[u8] = &buf;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    self.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    self.push_str(std::str::from_utf8(&rest[..good]).unwrap());
                    match e.error_len() {
                        Some(n) => {
                            self.push_char('\u{FFFD}');
                            rest = &rest[good + n..];
                        }
                        None => {
                            rest = &rest[good..];
                            break;
                        }
                    }
                }
            }
        }
        self.partial = rest.to_vec();
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let p = std::mem::take(&mut self.partial);
            self.push_str(&String::from_utf8_lossy(&p));
        }
        if self.cr {
            self.cr = false;
            self.text.push('\r');
        }
        self.eof = true;
    }
}

struct Shared {
    text: Mutex<Text>,
    grew: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Text> {
        self.text.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn spawn_reader<R: Read + Send + 'static>(mut r: R, shared: Arc<Shared>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    shared.lock().push_bytes(&buf[..n]);
                    shared.grew.notify_all();
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        shared.lock().finish();
        shared.grew.notify_all();
    })
}

// ---------------------------------------------------------------------------

/// One QEMU running the kernel, its serial console on pipes.
pub struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Shared>,
    err: Arc<Shared>,
    readers: Vec<std::thread::JoinHandle<()>>,
    pos: usize,
    exit: Option<ExitKind>,
    started: Instant,
    config: Config,
    /// The command line, for failure messages.
    command_line: String,
    /// The child leads its own process group, and is killed as a group.
    group: bool,
    /// How the child's exit status maps to an [`ExitKind`]: QEMU's
    /// isa-debug-exit protocol, or bootimage's own statuses.
    decode: fn(std::process::ExitStatus) -> ExitKind,
    slot: Option<VmSlot>,
}

impl Vm {
    /// Builds the kernel (once per process) and starts QEMU with `cfg`.
    /// Waits for a free VM slot first (see `ARBALEST_TEST_VMS`); timeouts of
    /// later calls start after that.
    pub fn boot(cfg: Config) -> Vm {
        let kernel = kernel();
        let cmd = bootimage::qemu_command(&cfg, &kernel);
        let line = bootimage::qemu_command_line(&cfg, &kernel);
        Vm::spawn(cmd, line, cfg, false, bootimage::decode_exit)
    }

    /// Runs `cmd`, anything that ends up with the kernel's console on its
    /// stdin/stdout (e.g. `cargo run -p bootimage -- --net user`), as the
    /// leader of a new process group, so that a timeout or drop kills the
    /// whole tree (cargo, bootimage, QEMU). `description` names it in
    /// failure messages. Takes a VM slot like [`Vm::boot`]. Its exit status
    /// is read the way bootimage reports it (`poweroff N` → N).
    pub fn spawn_console(cmd: Command, description: &str) -> Vm {
        Vm::spawn(cmd, description.to_string(), Config::default(), true, bootimage::decode_bootimage_exit)
    }

    fn spawn(
        mut cmd: Command,
        command_line: String,
        cfg: Config,
        group: bool,
        decode: fn(std::process::ExitStatus) -> ExitKind,
    ) -> Vm {
        let slot = VmSlot::acquire();
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if group {
            cmd.process_group(0);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {command_line}: {e}"));
        let new = || Arc::new(Shared { text: Mutex::new(Text::default()), grew: Condvar::new() });
        let (out, err) = (new(), new());
        let readers = vec![
            spawn_reader(child.stdout.take().unwrap(), out.clone()),
            spawn_reader(child.stderr.take().unwrap(), err.clone()),
        ];
        Vm {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            readers,
            pos: 0,
            exit: None,
            started,
            config: cfg,
            command_line,
            group,
            decode,
            slot: Some(slot),
        }
    }

    /// Kills the child (its whole process group when it leads one).
    fn kill(&mut self) {
        if self.group {
            // SAFETY: kill(2) of the process group our child leads; the
            // child has not been reaped, so its pid (= pgid) is still ours.
            unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        }
        let _ = self.child.kill();
    }

    /// What the child wrote on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.err.lock().text.clone()
    }

    /// Waits until a line of stderr satisfies `pred`; returns that line.
    pub fn expect_stderr_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut t = self.err.lock();
        loop {
            if let Some(l) = t.text.lines().find(|l| pred(l)) {
                return Ok(l.to_string());
            }
            let now = Instant::now();
            if t.eof || now >= deadline {
                drop(t);
                return Err(self.failure("the expected line did not appear on stderr"));
            }
            t = self.err.grew.wait_timeout(t, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Boots and waits for the first prompt (panics with the transcript
    /// after [`BOOT_TIMEOUT`]).
    pub fn boot_to_prompt(cfg: Config) -> Vm {
        let mut vm = Vm::boot(cfg);
        if let Err(e) = vm.expect(PROMPT, BOOT_TIMEOUT) {
            panic!("kernel did not reach the shell prompt:\n{e}");
        }
        vm
    }

    /// When QEMU was spawned.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Everything the kernel printed so far ("\r\n" normalised), followed by
    /// QEMU's stderr if it wrote any.
    pub fn transcript(&self) -> String {
        let mut s = self.out.lock().text.clone();
        let err = self.err.lock().text.clone();
        if !err.trim().is_empty() {
            s.push_str("\n--- QEMU stderr ---\n");
            s.push_str(&err);
        }
        s
    }

    fn failure(&self, what: &str) -> String {
        format!(
            "{what}\n--- command ---\n{}\n--- transcript ---\n{}\n--- end of transcript ---",
            self.command_line,
            self.transcript()
        )
    }

    /// Waits until `needle` appears after the current position; returns the
    /// text up to and including it and moves the position past it.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let out = self.out.clone();
        let mut t = out.lock();
        loop {
            if let Some(i) = t.text[self.pos..].find(needle) {
                let end = self.pos + i + needle.len();
                let found = t.text[self.pos..end].to_string();
                self.pos = end;
                return Ok(found);
            }
            if t.eof {
                drop(t);
                return Err(self.failure(&format!("QEMU's output ended before {needle:?} appeared")));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(t);
                return Err(self.failure(&format!("timed out after {timeout:?} waiting for {needle:?}")));
            }
            t = out.grew.wait_timeout(t, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Writes `s` to the serial console.
    pub fn send(&mut self, s: &str) {
        let res = match self.stdin.as_mut() {
            Some(w) => w.write_all(s.as_bytes()).and_then(|_| w.flush()),
            None => Err(std::io::Error::other("stdin already closed")),
        };
        if let Err(e) = res {
            panic!("{}", self.failure(&format!("cannot send {s:?} to QEMU: {e}")));
        }
    }

    /// Writes `s` and a newline.
    pub fn send_line(&mut self, s: &str) {
        self.send(&format!("{s}\n"));
    }

    /// Closes QEMU's stdin (the console sees end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Runs a shell command and returns its output: the text between the
    /// echoed command line and the next prompt. Panics with the transcript
    /// after [`CMD_TIMEOUT`].
    pub fn run(&mut self, cmd: &str) -> String {
        self.run_timeout(cmd, CMD_TIMEOUT)
    }

    /// [`Vm::run`] with an explicit timeout.
    pub fn run_timeout(&mut self, cmd: &str, timeout: Duration) -> String {
        self.try_run(cmd, timeout).unwrap_or_else(|e| panic!("command {cmd:?} failed:\n{e}"))
    }

    /// [`Vm::run`] returning the error instead of panicking.
    pub fn try_run(&mut self, cmd: &str, timeout: Duration) -> Result<String, String> {
        self.send_line(cmd);
        let text = self.expect(PROMPT, timeout)?;
        let body = &text[..text.len() - PROMPT.len()];
        // Skip the echo: everything up to the end of the line holding `cmd`.
        let after_echo = match body.find(cmd) {
            Some(i) => match body[i..].find('\n') {
                Some(j) => &body[i + j + 1..],
                None => "",
            },
            None => body,
        };
        Ok(after_echo.to_string())
    }

    /// Waits for QEMU to exit. On timeout QEMU is killed and the error holds
    /// the transcript.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitKind, String> {
        if let Some(k) = self.exit {
            return Ok(k);
        }
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(e) => return Err(self.failure(&format!("waiting for QEMU failed: {e}"))),
            }
            if Instant::now() >= deadline {
                self.kill();
                if let Ok(st) = self.child.wait() {
                    self.exit = Some(ExitKind::Other(st));
                }
                self.slot = None;
                self.join_readers();
                return Err(self.failure(&format!("QEMU did not exit within {timeout:?} (killed)")));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.slot = None;
        self.join_readers();
        let kind = (self.decode)(status);
        self.exit = Some(kind);
        Ok(kind)
    }

    /// [`Vm::wait_exit`] that panics on timeout.
    pub fn exit_kind(&mut self, timeout: Duration) -> ExitKind {
        self.wait_exit(timeout).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends `poweroff N` and asserts that the kernel exits with code `n`.
    pub fn poweroff(&mut self, n: u32) {
        self.send_line(&format!("poweroff {n}"));
        let kind = self.exit_kind(EXIT_TIMEOUT);
        if kind != ExitKind::Code(n) {
            panic!("{}", self.failure(&format!("poweroff {n}: expected Code({n}), got {kind:?} ({kind})")));
        }
    }

    /// Panics with `msg` and the transcript unless `cond` holds.
    #[track_caller]
    pub fn check(&self, cond: bool, msg: impl std::fmt::Display) {
        if !cond {
            panic!("{}", self.failure(&format!("check failed: {msg}")));
        }
    }

    fn join_readers(&mut self) {
        // QEMU has exited, so its pipes reach EOF unless a grandchild holds
        // them; don't wait forever for that.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.readers.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for h in std::mem::take(&mut self.readers) {
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stdin = None;
        if self.exit.is_none() {
            if let Ok(None) = self.child.try_wait() {
                self.kill();
            }
            let _ = self.child.wait();
        }
    }
}

/// Boots with `--append 'test=NAME'` on `smp` CPUs and waits for the kernel
/// test to end QEMU. Returns the exit and the whole output. Panics with the
/// transcript if QEMU does not exit within `timeout`.
pub fn run_ktest(name: &str, smp: usize, timeout: Duration) -> (ExitKind, String) {
    let mut cfg = Config::with_smp(smp);
    cfg.push_append(&format!("test={name}"));
    let mut vm = Vm::boot(cfg);
    let kind = match vm.wait_exit(timeout) {
        Ok(k) => k,
        Err(e) => panic!("kernel test {name} (smp {smp}):\n{e}"),
    };
    (kind, vm.transcript())
}

/// Panics with a readable message unless `kind == want`.
#[track_caller]
pub fn assert_exit(what: &str, kind: ExitKind, want: ExitKind, transcript: &str) {
    if kind != want {
        panic!(
            "{what}: expected {want:?}, got {kind:?} ({kind})\n--- transcript ---\n{transcript}\n--- end of transcript ---"
        );
    }
}

/// Panics with the transcript unless `haystack` contains `needle`.
#[track_caller]
pub fn assert_contains(what: &str, haystack: &str, needle: &str) {
    if !haystack.contains(needle) {
        panic!("{what}: output lacks {needle:?}\n--- output ---\n{haystack}\n--- end of output ---");
    }
}

// ---------------------------------------------------------------------------
// Small text matchers (no regex dependency).

/// Matches a `psrinfo` line, `^\d+\s+on-line\s+since \d\d/\d\d/\d{4} \d\d:\d\d:\d\d$`,
/// and returns the CPU id.
pub fn parse_psrinfo_line(line: &str) -> Option<usize> {
    let mut s = line;
    let id_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if id_len == 0 {
        return None;
    }
    let id = s[..id_len].parse().ok()?;
    s = &s[id_len..];
    let ws = |s: &str| -> Option<usize> {
        let n = s.len() - s.trim_start().len();
        (n > 0).then_some(n)
    };
    s = &s[ws(s)?..];
    s = s.strip_prefix("on-line")?;
    s = &s[ws(s)?..];
    s = s.strip_prefix("since ")?;
    // dd/dd/dddd dd:dd:dd
    let pat = b"00/00/0000 00:00:00";
    let b = s.as_bytes();
    if b.len() != pat.len() {
        return None;
    }
    for (&c, &p) in b.iter().zip(pat.iter()) {
        let ok = if p == b'0' { c.is_ascii_digit() } else { c == p };
        if !ok {
            return None;
        }
    }
    Some(id)
}

// ---------------------------------------------------------------------------
// ELF section sizes (for the bench).

/// `(name, size)` of every named section of a little-endian ELF64 file.
pub fn elf_sections(bytes: &[u8]) -> Result<Vec<(String, u64)>, String> {
    let u16_at = |o: usize| -> Result<u16, String> {
        bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or("truncated ELF".into())
    };
    let u32_at = |o: usize| -> Result<u32, String> {
        bytes.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).ok_or("truncated ELF".into())
    };
    let u64_at = |o: usize| -> Result<u64, String> {
        bytes.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).ok_or("truncated ELF".into())
    };
    if bytes.get(0..4) != Some(b"\x7fELF") || bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return Err("not a little-endian ELF64 file".into());
    }
    let shoff = u64_at(0x28)? as usize;
    let shentsize = u16_at(0x3a)? as usize;
    let shnum = u16_at(0x3c)? as usize;
    let shstrndx = u16_at(0x3e)? as usize;
    if shoff == 0 || shnum == 0 {
        return Ok(Vec::new());
    }
    let sh = |i: usize| shoff + i * shentsize;
    let str_off = u64_at(sh(shstrndx) + 0x18)? as usize;
    let mut out = Vec::new();
    for i in 0..shnum {
        let name_off = u32_at(sh(i))? as usize;
        let size = u64_at(sh(i) + 0x20)?;
        let start = str_off + name_off;
        let name_bytes = bytes.get(start..).ok_or("bad section name offset")?;
        let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(name_bytes.len());
        let name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
        if !name.is_empty() {
            out.push((name, size));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_normalises_crlf_and_utf8_splits() {
        let mut t = Text::default();
        t.push_bytes(b"a\r");
        assert_eq!(t.text, "a");
        t.push_bytes(b"\nb\rc\xc3");
        assert_eq!(t.text, "a\nb\rc");
        t.push_bytes(b"\xa9\xff\r");
        assert_eq!(t.text, "a\nb\rc\u{e9}\u{FFFD}");
        t.finish();
        assert_eq!(t.text, "a\nb\rc\u{e9}\u{FFFD}\r");
        assert!(t.eof);
    }

    #[test]
    fn psrinfo_lines() {
        assert_eq!(parse_psrinfo_line("0\ton-line   since 01/02/2025 03:04:05"), Some(0));
        assert_eq!(parse_psrinfo_line("12 on-line since 11/22/2033 23:59:59"), Some(12));
        assert_eq!(parse_psrinfo_line("x on-line since 01/02/2025 03:04:05"), None);
        assert_eq!(parse_psrinfo_line("0 off-line since 01/02/2025 03:04:05"), None);
        assert_eq!(parse_psrinfo_line("0 on-line since 01/02/25 03:04:05"), None);
        assert_eq!(parse_psrinfo_line("0 on-line since 01/02/2025 03:04:05 "), None);
        assert_eq!(parse_psrinfo_line("0on-line since 01/02/2025 03:04:05"), None);
    }

    #[test]
    fn elf_sections_of_this_test_binary() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let secs = elf_sections(&exe).unwrap();
        assert!(secs.iter().any(|(n, s)| n == ".text" && *s > 0), "{secs:?}");
        assert!(elf_sections(b"nope").is_err());
    }

    #[test]
    fn slots_bound_concurrency() {
        // Re-entrant on one thread: never blocks, even past the limit.
        let held: Vec<VmSlot> = (0..max_vms() + 2).map(|_| VmSlot::acquire()).collect();
        assert_eq!(HELD.with(|h| h.get()), held.len());
        drop(held);
        assert_eq!(HELD.with(|h| h.get()), 0);
    }
}
