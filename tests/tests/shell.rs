//! The serial shell, driven through the harness, and `cargo run` (the
//! bootimage binary) driven the way a script would.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arbalest_tests::{parse_psrinfo_line, Accel, Config, Vm, VmSlot};

const SMP: usize = 2;

/// Data rows of `mpstat` output: lines whose first field is a CPU id.
fn mpstat_rows(out: &str) -> Vec<usize> {
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|f| f.parse::<usize>().ok())
        .collect()
}

fn mpstat_headers(out: &str) -> usize {
    out.lines().filter(|l| l.trim_start().starts_with("CPU")).count()
}

#[test]
fn scripted_session() {
    let mut vm = Vm::boot_to_prompt(Config::with_smp(SMP));

    let out = vm.run("help");
    for cmd in ["psrinfo", "mpstat", "uptime", "echo", "poweroff"] {
        vm.check(out.contains(cmd), format!("help does not list {cmd}:\n{out}"));
    }

    let out = vm.run("psrinfo");
    let ids: Vec<Option<usize>> = out.lines().map(parse_psrinfo_line).collect();
    vm.check(
        ids == (0..SMP).map(Some).collect::<Vec<_>>(),
        format!("psrinfo output is not {SMP} on-line cpus:\n{out}"),
    );

    let out = vm.run("mpstat");
    let first = out.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    vm.check(first.trim_start().starts_with("CPU"), format!("mpstat does not start with a CPU header:\n{out}"));
    vm.check(mpstat_headers(&out) == 1, format!("mpstat printed more than one header:\n{out}"));
    vm.check(
        mpstat_rows(&out) == (0..SMP).collect::<Vec<_>>(),
        format!("mpstat does not print one row per cpu (0..{SMP}):\n{out}"),
    );

    let out = vm.run("mpstat 1 2");
    vm.check(mpstat_headers(&out) == 2, format!("mpstat 1 2 did not print two header blocks:\n{out}"));
    vm.check(mpstat_rows(&out).len() == 2 * SMP, format!("mpstat 1 2 did not print {SMP} rows twice:\n{out}"));

    let out = vm.run("uptime");
    vm.check(out.contains("up"), format!("uptime output lacks 'up':\n{out}"));

    let out = vm.run("echo hello world");
    vm.check(out.lines().any(|l| l.trim_end() == "hello world"), format!("echo printed:\n{out}"));

    let out = vm.run("frobnicate");
    vm.check(
        out.contains("frobnicate: command not found"),
        format!("unknown command message missing:\n{out}"),
    );
    let out = vm.run("echo still-alive");
    vm.check(out.contains("still-alive"), format!("shell did not survive an unknown command:\n{out}"));

    let out = vm.run("psrinfo -z");
    vm.check(
        out.contains("psrinfo: illegal option") || out.to_lowercase().contains("usage"),
        format!("psrinfo -z printed no usage error:\n{out}"),
    );

    vm.poweroff(0);
}

// ---------------------------------------------------------------------------
// `cargo run --release -q -p bootimage -- ARGS` with a scripted stdin.

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn cargo_run_bootimage(args: &[&str], stdin: Option<&str>, timeout: Duration) -> Ran {
    let _slot = VmSlot::acquire();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "--release", "-q", "-p", "bootimage", "--"])
        .args(args)
        .current_dir(bootimage::workspace_root())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so a timeout can take QEMU down with it.
        .process_group(0);
    let mut child = cmd.spawn().expect("cannot run cargo");
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        let text = text.to_string();
        std::thread::spawn(move || {
            let _ = w.write_all(text.as_bytes());
        });
    }
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for cargo") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let ran = Ran { code: status.and_then(|s| s.code()), stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    if status.is_none() {
        panic!(
            "cargo run -p bootimage -- {args:?} did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            ran.stdout, ran.stderr
        );
    }
    ran
}

const CARGO_TIMEOUT: Duration = Duration::from_secs(600);

fn explain(r: &Ran) -> String {
    format!("exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- end ---", r.code, r.stdout, r.stderr)
}

#[test]
fn cargo_run_scripted_poweroff_code() {
    let r = cargo_run_bootimage(&["--smp", "2", "--net", "none"], Some("psrinfo\npoweroff 3\n"), CARGO_TIMEOUT);
    assert_eq!(r.code, Some(3), "{}", explain(&r));
    let online = r.stdout.lines().filter(|l| parse_psrinfo_line(l).is_some()).count();
    assert_eq!(online, 2, "expected two on-line cpus; {}", explain(&r));
    assert!(!r.stdout.contains("\r\n"), "\\r\\n not converted; {}", explain(&r));
}

#[test]
fn cargo_run_eof_is_poweroff_0() {
    let r = cargo_run_bootimage(&["--smp", "2", "--net", "none"], Some("echo hi\n"), CARGO_TIMEOUT);
    assert_eq!(r.code, Some(0), "{}", explain(&r));
    assert!(r.stdout.lines().any(|l| l.trim_end() == "hi"), "echo output missing; {}", explain(&r));
}

#[test]
fn cargo_run_dry_run() {
    let r = cargo_run_bootimage(&["--smp", "2", "--dry-run"], None, CARGO_TIMEOUT);
    assert_eq!(r.code, Some(0), "{}", explain(&r));
    let accel = match Accel::from_env_or_detect() {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    for needle in ["qemu-system-x86_64 ", "-smp 2", "isa-debug-exit", &format!("-accel {}", accel.qemu_value())] {
        assert!(r.stdout.contains(needle), "dry run lacks {needle:?}; {}", explain(&r));
    }
    if accel == Accel::Tcg {
        assert!(r.stdout.contains("tcg,thread=multi"), "{}", explain(&r));
    }
    assert_eq!(r.stdout.trim_end().lines().count(), 1, "not one line; {}", explain(&r));
}

#[test]
fn cargo_run_unknown_option() {
    let r = cargo_run_bootimage(&["--frobnicate"], None, CARGO_TIMEOUT);
    assert_eq!(r.code, Some(2), "{}", explain(&r));
    assert!(r.stderr.contains("--frobnicate") && r.stderr.contains("usage"), "{}", explain(&r));
}
