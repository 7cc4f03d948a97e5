//! `cargo run --release [-- options]`: build the kernel and boot it in QEMU.

use std::io::{self, IsTerminal, Read, Write};
use std::process::{exit, Child, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bootimage::{Cli, ExitKind, USAGE};

/// The last SIGINT/SIGTERM/SIGHUP received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP so that QEMU is stopped and the
/// namespace of `--net tap` removed before we exit.
fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; sigaction is given a zeroed, then filled struct.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn main() {
    exit(run());
}

/// Everything but the final `exit`, so that guards (the namespace) drop
/// before the process ends.
fn run() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("bench") {
        // `cargo run --release -- bench [options]`: see bootimage::bench.
        return bootimage::bench::main(&args[1..]);
    }
    let env_accel = std::env::var("ARBALEST_ACCEL").ok();
    let (mut config, dry_run, net) = match bootimage::parse_args(&args, env_accel.as_deref()) {
        Ok(Cli::Help) => {
            print!("{USAGE}");
            return 0;
        }
        Ok(Cli::Run { config, dry_run, net }) => (*config, dry_run, net),
        Err(e) => {
            eprintln!("bootimage: {e}");
            eprint!("{USAGE}");
            return 2;
        }
    };

    if dry_run {
        // No set-up, no build, nothing created: just show what would run.
        let setup = match bootimage::prepare_net(&mut config, &net, true, std::process::id()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bootimage: {e}");
                return 1;
            }
        };
        for n in &setup.notes {
            eprintln!("{n}");
        }
        println!("{}", bootimage::qemu_command_line(&config, &bootimage::kernel_path()));
        return 0;
    }

    let kernel = match bootimage::build_kernel() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("bootimage: {e}");
            return 1;
        }
    };

    catch_signals();
    // Holds the namespace of `--net tap`; dropped (deleted) when run() returns.
    let setup = match bootimage::prepare_net(&mut config, &net, false, std::process::id()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bootimage: {e}");
            return 1;
        }
    };
    for n in &setup.notes {
        eprintln!("{n}");
    }
    if SIGNAL.load(Ordering::SeqCst) != 0 {
        return 128 + SIGNAL.load(Ordering::SeqCst);
    }

    let stdin_tty = io::stdin().is_terminal();
    let stdout_tty = io::stdout().is_terminal();
    let mut cmd = bootimage::qemu_command(&config, &kernel);
    cmd.stdin(if stdin_tty { Stdio::inherit() } else { Stdio::piped() });
    cmd.stdout(if stdout_tty { Stdio::inherit() } else { Stdio::piped() });
    cmd.stderr(Stdio::inherit());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bootimage: cannot start {}: {e}", bootimage::QEMU);
            return 125;
        }
    };

    if let Some(mut to_qemu) = child.stdin.take() {
        // Scripting: forward our stdin; at EOF send Ctrl-D on an empty line
        // (the shell's `poweroff 0`) and close QEMU's stdin.
        std::thread::spawn(move || {
            let mut input = io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if to_qemu.write_all(&buf[..n]).and_then(|_| to_qemu.flush()).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = to_qemu.write_all(b"\n\x04");
            let _ = to_qemu.flush();
            // Dropping `to_qemu` closes QEMU's stdin.
        });
    }

    let copier = child.stdout.take().map(|mut from_qemu| {
        std::thread::spawn(move || {
            let mut out = io::stdout().lock();
            let mut buf = [0u8; 4096];
            let mut conv = Vec::with_capacity(4096);
            let mut pending_cr = false;
            loop {
                let n = match from_qemu.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                conv.clear();
                for &b in &buf[..n] {
                    if pending_cr && b != b'\n' {
                        conv.push(b'\r');
                    }
                    pending_cr = b == b'\r';
                    if !pending_cr {
                        conv.push(b);
                    }
                }
                if out.write_all(&conv).and_then(|_| out.flush()).is_err() {
                    // Reader went away; keep draining so QEMU never blocks.
                    continue;
                }
            }
            if pending_cr {
                let _ = out.write_all(b"\r");
            }
            let _ = out.flush();
        })
    });

    let (status, signalled) = match wait_or_signal(&mut child) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bootimage: waiting for QEMU failed: {e}");
            return 125;
        }
    };
    if let Some(t) = copier {
        let _ = t.join();
    }
    drop(setup);
    if let Some(sig) = signalled {
        return 128 + sig;
    }
    let kind = bootimage::decode_exit(status);
    match kind {
        ExitKind::Code(_) => {}
        ExitKind::NoCode => {
            eprintln!("bootimage: QEMU exited without an exit code (triple fault or reset?)")
        }
        ExitKind::Other(s) => eprintln!("bootimage: QEMU failed: {s}"),
    }
    bootimage::exit_status_for(kind)
}

/// Waits for QEMU; on SIGINT/SIGTERM/SIGHUP sends QEMU SIGTERM (SIGKILL
/// after 5 s) and reports the signal.
fn wait_or_signal(child: &mut Child) -> io::Result<(std::process::ExitStatus, Option<i32>)> {
    let mut signalled: Option<(i32, Instant)> = None;
    loop {
        if let Some(st) = child.try_wait()? {
            // A signal to our whole process group (Ctrl-C on a terminal
            // that is not in raw mode) may have ended QEMU before we looked.
            let sig = SIGNAL.load(Ordering::SeqCst);
            return Ok((st, signalled.map(|(s, _)| s).or((sig != 0).then_some(sig))));
        }
        let sig = SIGNAL.load(Ordering::SeqCst);
        match signalled {
            None if sig != 0 => {
                // SAFETY: plain kill(2) of our own child, which has not been
                // reaped yet (try_wait returned None), so the pid is ours.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                signalled = Some((sig, Instant::now()));
            }
            Some((_, t)) if t.elapsed() > Duration::from_secs(5) => {
                let _ = child.kill();
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
