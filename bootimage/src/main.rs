//! `cargo run --release [-- options]`: build the kernel and boot it in QEMU.

use std::io::{self, IsTerminal, Read, Write};
use std::process::{exit, Stdio};

use bootimage::{Cli, ExitKind, USAGE};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env_accel = std::env::var("ARBALEST_ACCEL").ok();
    let (config, dry_run) = match bootimage::parse_args(&args, env_accel.as_deref()) {
        Ok(Cli::Help) => {
            print!("{USAGE}");
            exit(0);
        }
        Ok(Cli::Run { config, dry_run }) => (config, dry_run),
        Err(e) => {
            eprintln!("bootimage: {e}");
            eprint!("{USAGE}");
            exit(2);
        }
    };

    if dry_run {
        // No set-up and no build: just show what would run.
        println!("{}", bootimage::qemu_command_line(&config, &bootimage::kernel_path()));
        exit(0);
    }

    let kernel = match bootimage::build_kernel() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("bootimage: {e}");
            exit(1);
        }
    };

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
            exit(125);
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

    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bootimage: waiting for QEMU failed: {e}");
            exit(125);
        }
    };
    if let Some(t) = copier {
        let _ = t.join();
    }
    let kind = bootimage::decode_exit(status);
    match kind {
        ExitKind::Code(_) => {}
        ExitKind::NoCode => {
            eprintln!("bootimage: QEMU exited without an exit code (triple fault or reset?)")
        }
        ExitKind::Other(s) => eprintln!("bootimage: QEMU failed: {s}"),
    }
    exit(bootimage::exit_status_for(kind));
}
